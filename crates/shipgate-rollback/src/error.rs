//! Why a candidate source, the gate record or a registry could not answer.

/// Any error a cause may carry.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a source of candidates, the gate record or a registry could not answer. The resolver
/// turns each into a line of the decision's `source_errors` and goes on with the next source.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RollbackError {
    /// The ledger could not be read.
    #[error(transparent)]
    Ledger(#[from] shipgate_ledger::LedgerError),
    /// GitHub could not be read.
    #[cfg(feature = "github")]
    #[error(transparent)]
    Github(#[from] shipgate_github::GithubError),
    /// A provider could not say its history.
    #[error(transparent)]
    Provider(#[from] shipgate_provider::ProviderError),
    /// A commit or tag did not make a valid image reference.
    #[error(transparent)]
    Image(#[from] shipgate_core::ImageRefError),
    /// A registry could not tell whether an image exists (credentials already masked).
    #[error("{message}")]
    Registry {
        /// What the registry answered, or why it could not be asked.
        message: String,
        /// The HTTP client's error, when there is one.
        #[source]
        source: Option<BoxError>,
    },
    /// An answer that is not what the source's API promises, or a source set up wrongly; the
    /// message says which and how to fix it.
    #[error("{message}")]
    Source {
        /// What was wrong.
        message: String,
        /// The underlying error, when there is one.
        #[source]
        source: Option<BoxError>,
    },
}

impl RollbackError {
    /// A source error with a message and a cause.
    pub fn source_caused(message: impl Into<String>, source: impl Into<BoxError>) -> Self {
        RollbackError::Source {
            message: message.into(),
            source: Some(source.into()),
        }
    }

    /// A registry error without a cause.
    pub fn registry(message: impl Into<String>) -> Self {
        RollbackError::Registry {
            message: message.into(),
            source: None,
        }
    }
}
