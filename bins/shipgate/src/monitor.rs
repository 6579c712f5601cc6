//! `shipgate monitor`: the `[[monitor.targets]]` checked on their schedules, alerts opened and
//! resolved, queued notifications delivered; once (`--once`, for cron and scheduled
//! workflows) or as a long-running service with `/metrics` and `/healthz`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use shipgate_compose::IssueTrackerChoice;
use shipgate_core::exit_code;
use shipgate_monitor::watch::{
    CheckResult, Inspect, Monitor, MonitorEventKind, MonitorOptions, MonitorParts,
};
use shipgate_smoke::SmokeRunner;

use crate::error::{CommandResult, Failure};
use crate::{Format, log_redactor, shutdown_signal};

/// Arguments of `monitor`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Each [[monitor.targets]] entry is checked on its schedule (an interval such as 15m, aligned to the clock like cron, or a cron expression in UTC such as \"0 2 * * *\") with a health URL or the [smoke] checks. open_after failures in a row open an alert: one GitHub issue (title and labels configurable, an open one is reused), Slack/webhook notifications through the ledger's outbox. While it stays open, at most one comment per comment_every; resolve_after passes in a row comment and close it. State lives in the ledger, so restarts keep it; with a Postgres ledger several replicas share the targets, each check claimed by one of them.

Without --once it runs until SIGINT/SIGTERM, serving /metrics and /healthz on [monitor] listen (or --listen), and also delivers notifications that failed earlier. The same address serves the dashboard (see `shipgate dashboard --help`) when it is the loopback or [dashboard] has an access rule. Each check's latency is kept in 5-minute rollups for [monitor] latency_retention (default 30d).

Exit codes: --once: 0 every check passed (or nothing was due), 1 a check failed; long-running: 0 after a clean shutdown; 2 usage, configuration or ledger error.

Examples:
  shipgate monitor --once                   # from cron or a scheduled workflow
  shipgate monitor --once --format json > health.json
  shipgate monitor --listen 0.0.0.0:9464      # as a Kubernetes Deployment")]
pub struct Args {
    /// Configuration file.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Run the checks that are due now, once, and exit 0 healthy / 1 unhealthy.
    #[arg(long)]
    once: bool,
    /// Address of /metrics and /healthz (default: [monitor] listen).
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// This replica's name in the ledger's claims (default: HOSTNAME:PID).
    #[arg(long, value_name = "NAME")]
    replica: Option<String>,
    /// Output format of --once results.
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
}

/// Runs `monitor`.
pub(crate) fn run(args: Args, vars: &BTreeMap<String, String>) -> CommandResult {
    let composition = crate::compose(args.config.clone(), &[], vars)?;
    let config = composition.config();
    if config.monitor.targets.is_empty() {
        return Err(Failure::usage(
            "there is nothing to monitor: add [[monitor.targets]] (name, schedule, url or smoke = true) to the configuration",
        ));
    }
    // One thread: the monitor waits on the network and the ledger; a single scheduler thread
    // spends less CPU on wake-ups than a pool (measured by the monitor benchmark).
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|err| Failure::usage(format!("cannot start the async runtime: {err}")))?;
    let json = args.format == Format::Json;
    let replica = args
        .replica
        .clone()
        .unwrap_or_else(|| format!("{}:{}", shipgate_compose::hostname(), std::process::id()));
    let mut options = MonitorOptions::new(composition.app(), replica);
    options.lease = config.monitor.lease.as_duration();
    options.concurrency = usize::try_from(config.monitor.concurrency.max(1)).unwrap_or(64);
    options.latency_retention = config.monitor.latency_retention.as_duration();
    let listen = args
        .listen
        .clone()
        .unwrap_or_else(|| config.monitor.listen.clone());
    rt.block_on(async move {
        let targets = composition.watch_targets().await?;
        let github = match composition.issue_tracker().await? {
            IssueTrackerChoice::Tracker(tracker) => Some(tracker),
            IssueTrackerChoice::NoRepository => {
                tell!(
                    "shipgate: alerts open no GitHub issue: set [github] repository (or GITHUB_REPOSITORY) and GITHUB_TOKEN"
                );
                None
            }
            _ => {
                tell!(
                    "shipgate: alerts open no GitHub issue: no secret source has GITHUB_TOKEN (it needs issues: write)"
                );
                None
            }
        };
        let notifier = composition.notifier().await?;
        let inspector = match composition.inspector().await {
            Ok(inspector) => inspector.map(|i| Arc::new(i) as Arc<dyn Inspect>),
            Err(err) => {
                tell!(
                    "shipgate: alert issues will not show what runs or provider logs: {err}"
                );
                None
            }
        };
        let runner = SmokeRunner::new(log_redactor().clone()).map_err(Failure::usage)?;
        let parts = MonitorParts {
            runner,
            github,
            notifier,
            inspector,
            redactor: log_redactor().clone(),
            events: Arc::new(move |event: &MonitorEventKind| print_event(event, json)),
        };
        let ledger = composition.ledger().await?;
        let dashboard = if args.once {
            None
        } else {
            Some(composition.dashboard().await?)
        };
        let monitor = Monitor::new(ledger, options, targets, parts)
            .await
            .map_err(Failure::usage)?;
        match dashboard {
            None => once(&monitor, json).await,
            Some(dashboard) => serve(&monitor, dashboard, &listen).await,
        }
    })
}

async fn once(monitor: &Arc<Monitor>, json: bool) -> CommandResult {
    let results = monitor.run_due().await.map_err(Failure::usage)?;
    let healthy = results.iter().all(|r| r.passed);
    if json {
        let report = serde_json::json!({
            "schema_version": 1,
            "healthy": healthy,
            "checks": results,
        });
        println!("{report:#}");
    } else if results.is_empty() {
        say!("shipgate: no check was due");
    } else {
        let failed = results.iter().filter(|r| !r.passed).count();
        say!("shipgate: {} check(s), {failed} failed", results.len());
    }
    Ok(if healthy {
        exit_code::OK
    } else {
        exit_code::CHECK_FAILED
    })
}

async fn serve(
    monitor: &Arc<Monitor>,
    dashboard: shipgate_dashboard::Dashboard,
    listen: &str,
) -> CommandResult {
    let listener = tokio::net::TcpListener::bind(listen).await.map_err(|err| {
        Failure::usage(format!(
            "cannot listen on {listen} ([monitor] listen or --listen): {err}"
        ))
    })?;
    let local = listener.local_addr().ok();
    let address = local.map_or_else(|| listen.to_owned(), |a| a.to_string());
    // The dashboard shows the ledger: on another address than the loopback only with an
    // access rule. /metrics and /healthz stay open for scrapers and probes either way.
    let extra = match local.map(|a| dashboard.access().check_bind(a)) {
        Some(Ok(())) => {
            tell!("shipgate: monitoring; /metrics, /healthz and the dashboard on http://{address}");
            Some(dashboard.router())
        }
        Some(Err(err)) => {
            tell!(
                "shipgate: monitoring; /metrics and /healthz on http://{address}; dashboard not mounted: {err}"
            );
            None
        }
        None => None,
    };
    let cancel = shutdown_signal();
    let server = tokio::spawn(shipgate_monitor::http::serve_with(
        listener,
        Arc::clone(monitor),
        extra,
        cancel.clone(),
    ));
    let outcome = monitor.run(&cancel).await;
    cancel.cancel();
    let _ = server.await;
    outcome.map_err(Failure::usage)?;
    tell!("shipgate: monitor stopped");
    Ok(exit_code::OK)
}

/// One line per event on stderr (stdout carries the --once report).
fn print_event(event: &MonitorEventKind, json: bool) {
    let line = match event {
        // A passing check that changes nothing is not a line (10,000 targets every 15 s
        // would be 58 million a day): the metrics count it, the summary adds it up.
        MonitorEventKind::Checked(CheckResult {
            target,
            passed,
            state,
            previous,
            failures,
            duration_ms,
        }) => {
            if json || (*passed && state == previous) {
                return;
            }
            if *passed {
                format!("{target}: passed in {duration_ms:.0} ms ({previous} → {state})")
            } else {
                format!("{target}: FAILED ({state}): {}", failures.join("; "))
            }
        }
        MonitorEventKind::Summary {
            checks,
            failed,
            period,
        } => format!(
            "{checks} check(s) in the last {} s, {failed} failed",
            period.as_secs()
        ),
        MonitorEventKind::AlertOpened { target, issue_url } => format!(
            "{target}: alert opened{}",
            issue_url
                .as_ref()
                .map_or_else(String::new, |u| format!(": {u}"))
        ),
        MonitorEventKind::Commented { target, issue_url } => {
            format!("{target}: still failing, commented on {issue_url}")
        }
        MonitorEventKind::AlertResolved { target, issue_url } => format!(
            "{target}: alert resolved{}",
            issue_url
                .as_ref()
                .map_or_else(String::new, |u| format!(", closed {u}"))
        ),
        MonitorEventKind::Delivered { delivered, failed } => {
            format!("notifications: {delivered} delivered, {failed} failed (kept queued)")
        }
        MonitorEventKind::Warning(warning) => format!("warning: {warning}"),
    };
    tell!("shipgate: {}", line);
}
