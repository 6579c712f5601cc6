//! The one error type of the composition, and how severe each is.

/// Any error a cause may carry.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why the composition could not build a part or run a deploy. Nothing was changed on any
/// target when one of these is returned: a deploy that started ends in a
/// [`Summary`](shipgate_pipeline::Summary) instead, whatever its outcome.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ComposeError {
    /// The configuration, a variable or a credential cannot work as given; the message names
    /// the input and the fix. (The CLI's exit code 2.)
    #[error("{message}")]
    Setup {
        /// What is wrong and how to fix it.
        message: String,
        /// The underlying error, when there is one.
        #[source]
        source: Option<BoxError>,
    },
    /// A platform did not answer usably while its targets were set up (an outage, a rate
    /// limit); the configuration may well be right. (The CLI's exit code 1.)
    #[error("{message}")]
    Unavailable {
        /// Which target, and what the platform said.
        message: String,
        /// The platform client's error.
        #[source]
        source: BoxError,
    },
    /// A smoke spec does not compile: one problem per line, each with its key and its fix.
    #[error("{headline}:\n{}", problems(.prefix, .source))]
    Spec {
        /// What the spec is for (`the smoke gate is invalid`).
        headline: String,
        /// Where its keys live (`smoke`, `monitor.targets.0`).
        prefix: String,
        /// The spec's problems.
        #[source]
        source: shipgate_smoke::SpecError,
    },
    /// The ledger could not be opened or used before the run started.
    #[error(transparent)]
    Ledger(#[from] shipgate_ledger::LedgerError),
    /// The pipeline could not start (its ledger).
    #[error(transparent)]
    Pipeline(#[from] shipgate_pipeline::PipelineError),
}

fn problems(prefix: &str, err: &shipgate_smoke::SpecError) -> String {
    err.problems
        .iter()
        .map(|p| format!("  - {prefix}.{}: {} (fix: {})", p.key, p.message, p.hint))
        .collect::<Vec<_>>()
        .join("\n")
}

impl ComposeError {
    /// A setup error without a cause.
    pub fn setup(message: impl Into<String>) -> ComposeError {
        ComposeError::Setup {
            message: message.into(),
            source: None,
        }
    }

    /// A setup error with its cause kept.
    pub fn setup_caused(message: impl Into<String>, source: impl Into<BoxError>) -> ComposeError {
        ComposeError::Setup {
            message: message.into(),
            source: Some(source.into()),
        }
    }

    /// A spec that does not compile, for `headline` with its keys under `prefix`.
    pub fn spec(
        headline: impl Into<String>,
        prefix: impl Into<String>,
        source: shipgate_smoke::SpecError,
    ) -> ComposeError {
        ComposeError::Spec {
            headline: headline.into(),
            prefix: prefix.into(),
            source,
        }
    }

    /// Whether the platform was unavailable (retrying later may work) rather than the setup
    /// being wrong.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, ComposeError::Unavailable { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_are_kept_and_setup_is_told_from_an_outage() {
        let io = std::io::Error::other("disk on fire");
        let err = ComposeError::setup_caused("cannot read the kubeconfig", io);
        assert!(!err.is_unavailable());
        let source = std::error::Error::source(&err).map(ToString::to_string);
        assert_eq!(source.as_deref(), Some("disk on fire"));
        let outage = ComposeError::Unavailable {
            message: "railway: 503".into(),
            source: "503".into(),
        };
        assert!(outage.is_unavailable());
    }
}
