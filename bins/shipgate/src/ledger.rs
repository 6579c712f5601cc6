//! `shipgate ledger` (runs, steps, deployments) and `shipgate lock` (the deploy lock).

use std::collections::BTreeMap;
use std::path::PathBuf;

use shipgate_config::Config;
use shipgate_core::{Environment, exit_code};
use shipgate_ledger::{Ledger, now_ms};

use crate::error::{CommandResult, Failure};
use crate::{Format, runtime};

/// `shipgate ledger …`.
#[derive(Debug, clap::Subcommand)]
pub enum LedgerCommand {
    /// List runs, newest first.
    List {
        /// Configuration file (for [ledger] url).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Only this app.
        #[arg(long)]
        app: Option<String>,
        /// How many.
        #[arg(long, default_value_t = 20)]
        limit: i64,
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Show one run with its steps and deployments.
    Show {
        /// The run id.
        run: String,
        /// Configuration file (for [ledger] url).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
}

/// `shipgate lock …`.
#[derive(Debug, clap::Subcommand)]
pub enum LockCommand {
    /// Who holds the deploy lock of the app and environment.
    Status(LockArgs),
    /// Remove the lock whoever holds it (after checking that its run is really gone).
    Release(LockArgs),
}

/// Arguments of `lock status|release`.
#[derive(Debug, clap::Args)]
pub struct LockArgs {
    /// Configuration file (for app, environment and [ledger] url).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Environment name [default: DEPLOY_ENVIRONMENT, ENVIRONMENT, the file].
    #[arg(long, value_name = "NAME")]
    environment: Option<String>,
}

fn load(
    config: Option<PathBuf>,
    environment: Option<&str>,
    vars: &BTreeMap<String, String>,
) -> Result<Config, Failure> {
    crate::load_config(config, environment, vars).map(|(loaded, _)| loaded.config)
}

fn with_ledger<T>(
    config: &Config,
    f: impl AsyncFnOnce(Ledger) -> Result<T, shipgate_ledger::LedgerError>,
) -> Result<T, Failure> {
    let rt = runtime()?;
    Ok(rt.block_on(async {
        let ledger = Ledger::open(&config.ledger.url).await?;
        f(ledger).await
    })?)
}

/// Runs `ledger …`.
pub(crate) fn ledger(command: LedgerCommand, vars: &BTreeMap<String, String>) -> CommandResult {
    match command {
        LedgerCommand::List {
            config,
            app,
            limit,
            format,
        } => {
            let config = load(config, None, vars)?;
            let runs = with_ledger(&config, async |l| l.runs(app.as_deref(), limit).await)?;
            match format {
                Format::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&runs).unwrap_or_default()
                ),
                Format::Text => {
                    say!(
                        "{:<26} {:<10} {:<12} {:<18} {:<16} {:>8}",
                        "RUN",
                        "APP",
                        "ENVIRONMENT",
                        "TAG",
                        "OUTCOME",
                        "SECONDS"
                    );
                    for run in &runs {
                        let seconds = run.finished_ms.map_or_else(
                            || "-".to_owned(),
                            |f| format!("{:.1}", (f - run.started_ms) as f64 / 1000.0),
                        );
                        say!(
                            "{:<26} {:<10} {:<12} {:<18} {:<16} {:>8}",
                            run.id,
                            run.app,
                            run.environment,
                            run.image_tag,
                            run.outcome.as_deref().unwrap_or("running"),
                            seconds
                        );
                    }
                }
            }
            Ok(exit_code::OK)
        }
        LedgerCommand::Show {
            run,
            config,
            format,
        } => {
            let config = load(config, None, vars)?;
            let found = with_ledger(&config, async |l| l.run(&run).await)?;
            let Some((record, steps, deployments)) = found else {
                return Err(Failure::usage(format!(
                    "no run `{run}` in the ledger {}",
                    shipgate_ledger::database_name(&config.ledger.url)
                )));
            };
            match format {
                Format::Json => println!("{}", serde_json::to_string_pretty(&serde_json::json!({"run": record, "steps": steps, "deployments": deployments})).unwrap_or_default()),
                Format::Text => {
                    say!("run {} — {} {} to {}: {}{}", record.id, record.app, record.image_tag, record.environment, record.outcome.as_deref().unwrap_or("running"), record.strategy.as_deref().map(|s| format!(" ({s})")).unwrap_or_default());
                    for step in steps {
                        say!("  {:<22} {:<7} {:>7} ms  {}", step.name, step.outcome, step.finished_ms - step.started_ms, step.detail);
                    }
                    for d in deployments {
                        say!("  {} {} {}: {} → {} (revision {}, {})", d.kind, d.target, d.service, d.from_image.as_deref().unwrap_or("nothing"), d.to_image, d.revision, d.verdict);
                    }
                }
            }
            Ok(exit_code::OK)
        }
    }
}

/// Runs `lock …`.
pub(crate) fn lock(command: LockCommand, vars: &BTreeMap<String, String>) -> CommandResult {
    let (args, release) = match command {
        LockCommand::Status(args) => (args, false),
        LockCommand::Release(args) => (args, true),
    };
    let config = load(args.config, args.environment.as_deref(), vars)?;
    let app = config.app.clone().unwrap_or_else(|| "app".to_owned());
    let environment = Environment::classify(config.environment.as_deref())
        .name()
        .unwrap_or("production")
        .to_owned();
    let result = with_ledger(&config, async |l| {
        let holder = if release {
            l.force_release(&app, &environment).await?
        } else {
            l.lock_status(&app, &environment).await?
        };
        Ok((holder, l.lock_waiters(&app, &environment).await?))
    });
    let (holder, waiters) = result?;
    match holder {
        None => say!("no deploy lock on {app}/{environment}"),
        Some(h) => {
            let verb = if release {
                "released the lock held by"
            } else {
                "locked by"
            };
            let left = (h.expires_ms - now_ms()) / 1000;
            say!(
                "{app}/{environment}: {verb} run {} ({} on {}, pid {}): {}; expires in {left} s",
                h.run_id,
                h.owner,
                h.host,
                h.pid,
                h.reason
            );
        }
    }
    for (run_id, reason) in &waiters {
        say!("  waiting: run {run_id}: {reason}");
    }
    Ok(exit_code::OK)
}
