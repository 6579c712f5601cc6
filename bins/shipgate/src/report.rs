//! `shipgate report`: delivery metrics (DORA) from the ledger.

use std::collections::BTreeMap;
use std::path::PathBuf;

use shipgate_ledger::{Ledger, now_ms};

use crate::error::{CommandResult, Failure};
use crate::{load_config, runtime};

/// Arguments of `report`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Per app and environment, from runs that started in the window: deploys per day, lead time for changes (commit to live, for deploys whose commit time came with the GitHub push or workflow_run event), change failure rate (rolled_back, rollback_failed, unhealthy over runs that changed production), mean time to restore, average deploy duration, success rate, per service counts.

Exit codes: 0 report written, 2 usage or ledger error.

Examples:
  shipgate report --since 30d
  shipgate report --since 7d --format json > dora.json
  shipgate report --format markdown >> \"$GITHUB_STEP_SUMMARY\"")]
pub struct Args {
    /// Configuration file (for [ledger] url).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The window, back from now (`30d`, `12h`).
    #[arg(long, value_name = "DURATION", default_value = "30d")]
    since: String,
    /// Output format.
    #[arg(long, value_enum, default_value = "markdown")]
    format: ReportFormat,
}

/// How the report is written.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum ReportFormat {
    /// A markdown table (a health report to keep as an artifact).
    Markdown,
    /// The figures as JSON.
    Json,
}

/// Runs `report`.
pub(crate) fn run(args: Args, vars: &BTreeMap<String, String>) -> CommandResult {
    let window = humantime::parse_duration(&args.since).map_err(|e| {
        Failure::usage(format!("--since `{}`: {e} (use 30d, 12h, 90m)", args.since))
    })?;
    let config = load_config(args.config, None, vars)?.0.config;
    let rt = runtime()?;
    let until = now_ms();
    let since = until
        - i64::try_from(window.as_millis())
            .unwrap_or(i64::MAX)
            .min(until);
    let report = rt.block_on(async {
        let ledger = Ledger::open(&config.ledger.url).await?;
        shipgate_monitor::report::from_ledger(&ledger, since, until).await
    });
    let report = report.map_err(Failure::usage)?;
    match args.format {
        ReportFormat::Markdown => print!("{}", crate::for_people(&report.to_markdown())),
        ReportFormat::Json => match serde_json::to_string_pretty(&report) {
            Ok(json) => println!("{json}"),
            Err(err) => return Err(Failure::usage(format!("cannot render the report: {err}"))),
        },
    }
    Ok(shipgate_core::exit_code::OK)
}
