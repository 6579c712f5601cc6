//! The one place where a command's failure becomes a message and an exit code.

use shipgate_compose::ComposeError;
use shipgate_core::exit_code;

/// Why a command could not do its work. Commands return `Result<u8, Failure>`: `Ok` carries
/// the exit code of an outcome (a check that failed is an outcome, not a failure); `Err` is
/// printed once, by [`Failure::report`], and exits with [`Failure::exit_code`].
#[derive(Debug)]
pub(crate) enum Failure {
    /// Bad usage, configuration or credential: the message names the input and the fix.
    Usage(String),
    /// What the composition refused, or a platform that did not answer while targets were
    /// set up (nothing was changed either way).
    Compose(ComposeError),
}

/// What a command returns.
pub(crate) type CommandResult = Result<u8, Failure>;

impl Failure {
    /// A usage failure.
    pub(crate) fn usage(message: impl std::fmt::Display) -> Failure {
        Failure::Usage(message.to_string())
    }

    /// The documented exit code (docs/exit-codes.md): 1 when a platform was unavailable
    /// before anything changed, 2 for everything the user must fix.
    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            Failure::Compose(err) if err.is_unavailable() => exit_code::CHECK_FAILED,
            Failure::Usage(_) | Failure::Compose(_) => exit_code::USAGE,
        }
    }

    /// The line printed for people (`shipgate: …`), without any known secret, control
    /// character or huge quoted input.
    pub(crate) fn message(&self) -> String {
        let message = match self {
            Failure::Usage(message) => message.clone(),
            Failure::Compose(err) if err.is_unavailable() => {
                format!("deploy failed before anything changed: {err}")
            }
            Failure::Compose(err) => err.to_string(),
        };
        format!("shipgate: {}", shipgate_core::shorten_quoted(&message))
    }

    /// Prints the message on stderr and returns the exit code.
    pub(crate) fn report(&self) -> u8 {
        tell!("{}", self.message());
        self.exit_code()
    }
}

impl From<ComposeError> for Failure {
    fn from(err: ComposeError) -> Failure {
        Failure::Compose(err)
    }
}

impl From<shipgate_config::ConfigError> for Failure {
    fn from(err: shipgate_config::ConfigError) -> Failure {
        Failure::usage(err)
    }
}

impl From<shipgate_ledger::LedgerError> for Failure {
    fn from(err: shipgate_ledger::LedgerError) -> Failure {
        Failure::usage(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outage_exits_1_and_everything_else_2() {
        let outage = Failure::from(ComposeError::Unavailable {
            message: "[targets.fly] service `api`: 503".into(),
            source: "503".into(),
        });
        assert_eq!(outage.exit_code(), 1);
        assert!(outage.message().contains("before anything changed"));
        let setup = Failure::from(ComposeError::setup("no image tag"));
        assert_eq!(setup.exit_code(), 2);
        assert_eq!(setup.message(), "shipgate: no image tag");
        assert_eq!(Failure::usage("x").exit_code(), 2);
    }
}
