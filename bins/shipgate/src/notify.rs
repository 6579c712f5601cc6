//! `shipgate notify deliver`: queued notifications delivered (the channels come from the
//! composition, as for `deploy`).

use std::collections::BTreeMap;

use crate::error::{CommandResult, Failure};

/// `shipgate notify …`.
#[derive(Debug, clap::Subcommand)]
pub enum NotifyCommand {
    /// Deliver queued notifications that are due (failed earlier, or queued by another run).
    ///
    /// Exit codes: 0 nothing failed this round, 1 a delivery failed (it stays queued), 2 usage.
    Deliver {
        /// Configuration file (for [notify] and [ledger] url).
        #[arg(long, value_name = "FILE")]
        config: Option<std::path::PathBuf>,
    },
}

/// Runs `notify deliver`.
pub(crate) fn run(command: NotifyCommand, vars: &BTreeMap<String, String>) -> CommandResult {
    let NotifyCommand::Deliver { config } = command;
    let composition = crate::compose(config, &[], vars)?;
    let rt = crate::runtime()?;
    let report = rt.block_on(async {
        let Some(notifier) = composition.notifier().await? else {
            return Err(Failure::usage("[notify] has no slack or webhooks channel"));
        };
        let ledger = composition.ledger().await?;
        Ok(notifier.deliver_due(&ledger, 500).await)
    })?;
    match report {
        Ok(report) => {
            say!(
                "{} delivered, {} failed",
                report.delivered.len(),
                report.failed.len()
            );
            for (channel, run, error) in &report.failed {
                say!("  {channel} {run}: {}", error);
            }
            Ok(if report.failed.is_empty() {
                shipgate_core::exit_code::OK
            } else {
                shipgate_core::exit_code::CHECK_FAILED
            })
        }
        Err(err) => Err(Failure::usage(err)),
    }
}
