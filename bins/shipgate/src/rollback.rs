//! `shipgate rollback plan`: which release a rollback would go back to, and why.

use std::collections::BTreeMap;
use std::path::PathBuf;

use shipgate_core::exit_code;

use crate::error::{CommandResult, Failure};
use crate::{Format, log_redactor, runtime};

/// `shipgate rollback …`.
#[derive(Debug, clap::Subcommand)]
pub enum RollbackCommand {
    /// Decide which release to roll back to, and say why, without changing anything.
    ///
    /// Candidates come from [rollback] sources in order (ledger, github-workflow, provider); each
    /// is skipped if it is the failing release, if one of its images was recorded as failed in
    /// the ledger, or (with [rollback] verify_image) if an image is missing in its registry.
    /// Exit codes: 0 a candidate was chosen, 1 none qualifies, 2 usage.
    #[command(after_help = "Examples:
  shipgate rollback plan --failing 3f2c1a9e0b7d4c5a6f8e9d0c1b2a3f4e5d6c7b8a
  shipgate rollback plan --failing $GITHUB_SHA --environment production \\
    --format json")]
    Plan {
        /// Configuration file [default: $SHIPGATE_CONFIG, else ./shipgate.toml if present].
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// The commit (or image tag) being rolled back from; short SHAs match as prefixes.
        #[arg(long, value_name = "SHA")]
        failing: String,
        /// Environment name.
        #[arg(long, value_name = "NAME")]
        environment: Option<String>,
        /// Targets whose history the provider source reads (as for deploy).
        #[arg(long, value_name = "TARGETS")]
        target: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
}

/// Runs `rollback plan`.
pub(crate) fn run(command: RollbackCommand, vars: &BTreeMap<String, String>) -> CommandResult {
    let RollbackCommand::Plan {
        config,
        failing,
        environment,
        target,
        format,
    } = command;
    if let Err(err) = shipgate_core::ImageRef::check_tag(&failing) {
        return Err(Failure::usage(format!(
            "--failing: {err}; give the commit SHA (full, or at least 7 characters) or the image tag being rolled back from"
        )));
    }
    let mut overrides: Vec<(String, String, &str)> =
        vec![("image.tag".into(), failing.clone(), "--failing")];
    if let Some(env) = environment {
        overrides.push(("environment".into(), env, "--environment"));
    }
    if let Some(raw) = &target {
        overrides.extend(crate::target_overrides(raw)?);
    }
    let composition = crate::compose(config, &overrides, vars)?;
    let release = composition.release()?;
    let rt = runtime()?;
    let decision = rt.block_on(async {
        let (resolver, notes) = composition.rollback_resolver(&release).await?;
        let mut decision = resolver.resolve(&failing).await;
        decision.source_errors.extend(notes);
        Ok::<_, Failure>(decision)
    })?;
    match format {
        Format::Json => match serde_json::to_string_pretty(&decision) {
            Ok(json) => println!("{}", log_redactor().redact(&json)),
            Err(err) => return Err(Failure::usage(format!("cannot render the decision: {err}"))),
        },
        Format::Text => {
            for line in decision.reasons() {
                say!("{}", line);
            }
            if let Some(chosen) = &decision.chosen {
                for (service, image) in &chosen.images {
                    say!("  {service}: {image}");
                }
            }
        }
    }
    Ok(if decision.chosen.is_some() {
        exit_code::OK
    } else {
        exit_code::CHECK_FAILED
    })
}
