//! `shipgate local`: the local provider's processes.

use std::collections::BTreeMap;
use std::path::PathBuf;

use shipgate_core::exit_code;
use shipgate_provider::Provider;

use crate::error::{CommandResult, Failure};
use crate::runtime;

/// `shipgate local …`.
#[derive(Debug, clap::Subcommand)]
pub enum LocalCommand {
    /// Stop every process and router of [targets.local] (what `deploy` started).
    Stop {
        /// Configuration file.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Show what runs and the revision history.
    Status {
        /// Configuration file.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
}

/// Runs `local …`.
pub(crate) fn run(command: LocalCommand, vars: &BTreeMap<String, String>) -> CommandResult {
    let (config, stop) = match command {
        LocalCommand::Stop { config } => (config, true),
        LocalCommand::Status { config } => (config, false),
    };
    let composition = crate::compose(config, &[], vars)?;
    let provider = composition.local_provider()?;
    let rt = runtime()?;
    rt.block_on(async {
        if stop {
            return match provider.shutdown().await {
                Ok(()) => {
                    say!(
                        "stopped every local service and router ({})",
                        composition.config().targets.local.state_dir.display()
                    );
                    Ok(exit_code::OK)
                }
                Err(err) => Err(Failure::usage(err)),
            };
        }
        let (Ok(current), Ok(history)) = (provider.current().await, provider.history().await)
        else {
            return Err(Failure::usage("cannot read the local provider's state"));
        };
        for running in &current {
            say!(
                "{}: {} (revision {})",
                running.service,
                running.image,
                running.revision
            );
        }
        if current.is_empty() {
            say!("nothing runs");
        }
        for revision in history.iter().take(10) {
            let images: Vec<String> = revision.images.values().map(ToString::to_string).collect();
            say!(
                "  revision {:<4} {:<11} {}  {}",
                revision.id,
                format!("{:?}", revision.status).to_lowercase(),
                images.join(", "),
                revision.description
            );
        }
        Ok(exit_code::OK)
    })
}
