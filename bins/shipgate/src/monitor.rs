//! `shipgate monitor`: the `[[monitor.targets]]` checked on their schedules, alerts opened and
//! resolved, queued notifications delivered; once (`--once`, for cron and scheduled
//! workflows) or as a long-running service with `/metrics` and `/healthz`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use shipgate_config::Config;
use shipgate_core::{Environment, exit_code};
use shipgate_ledger::Ledger;
use shipgate_monitor::alert::Thresholds;
use shipgate_monitor::watch::{
    CheckResult, Inspect, Inspection, IssueTracker, Monitor, MonitorEventKind, MonitorOptions,
    MonitorParts, WatchTarget, health_check_spec,
};
use shipgate_pipeline::Target;
use shipgate_provider::{DeployRequest, Deployment};
use shipgate_smoke::SmokeRunner;

use crate::deploy::spec_error;
use crate::{Format, load_config, log_redactor, shutdown_signal, usage_error};

/// Arguments of `monitor`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Each [[monitor.targets]] entry is checked on its schedule (an interval such as 15m, aligned to
the clock like cron, or a cron expression in UTC such as \"0 2 * * *\") with a health URL or the
[smoke] checks. open_after failures in a row open an alert: one GitHub issue (title and labels
configurable, an open one is reused), Slack/webhook notifications through the ledger's outbox.
While it stays open, at most one comment per comment_every; resolve_after passes in a row
comment and close it. State lives in the ledger, so restarts keep it; with a Postgres ledger
several replicas share the targets, each check claimed by one of them.

Without --once it runs until SIGINT/SIGTERM, serving /metrics and /healthz on [monitor] listen
(or --listen), and also delivers notifications that failed earlier.

Exit codes: --once: 0 every check passed (or nothing was due), 1 a check failed; long-running:
0 after a clean shutdown; 2 usage, configuration or ledger error.

Examples:
  shipgate monitor --once                     # from cron or a scheduled workflow
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
pub(crate) fn run(args: Args, vars: &BTreeMap<String, String>) -> u8 {
    let config = match load_config(args.config.clone(), None, vars) {
        Ok((loaded, _)) => loaded.config,
        Err(code) => return code,
    };
    if config.monitor.targets.is_empty() {
        return usage_error(
            "there is nothing to monitor: add [[monitor.targets]] (name, schedule, url or smoke = true) to the configuration",
        );
    }
    // One thread: the monitor waits on the network and the ledger; a single scheduler thread
    // spends less CPU on wake-ups than a pool (measured by the monitor benchmark).
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => return usage_error(format!("cannot start the async runtime: {err}")),
    };
    let targets = match watch_targets(&config, vars, &rt) {
        Ok(targets) => targets,
        Err(code) => return code,
    };
    let github = match issue_tracker(&config, vars, &rt) {
        Ok(github) => github,
        Err(code) => return code,
    };
    let notifier = match crate::notify::notifier(&config, vars, &rt) {
        Ok(notifier) => notifier,
        Err(code) => return code,
    };
    let runner = match SmokeRunner::new(log_redactor().clone()) {
        Ok(runner) => runner,
        Err(err) => return usage_error(err),
    };
    let replica = args
        .replica
        .clone()
        .unwrap_or_else(|| format!("{}:{}", crate::deploy::hostname(), std::process::id()));
    let mut options = MonitorOptions::new(
        config.app.clone().unwrap_or_else(|| "app".to_owned()),
        replica,
    );
    options.lease = config.monitor.lease.as_duration();
    options.concurrency = usize::try_from(config.monitor.concurrency.max(1)).unwrap_or(64);
    let json = args.format == Format::Json;
    let events: shipgate_monitor::watch::EventSink =
        Arc::new(move |event: &MonitorEventKind| print_event(event, json));
    let inspector = provider_inspector(&config, args.config.clone(), vars, &rt);
    let parts = MonitorParts {
        runner,
        github,
        notifier,
        inspector,
        redactor: log_redactor().clone(),
        events,
    };
    let listen = args.listen.unwrap_or_else(|| config.monitor.listen.clone());
    rt.block_on(async move {
        let ledger = match Ledger::open(&config.ledger.url).await {
            Ok(ledger) => ledger,
            Err(err) => return usage_error(err),
        };
        let monitor = match Monitor::new(ledger, options, targets, parts).await {
            Ok(monitor) => monitor,
            Err(err) => return usage_error(err),
        };
        if args.once {
            once(&monitor, json).await
        } else {
            serve(&monitor, &listen).await
        }
    })
}

async fn once(monitor: &Arc<Monitor>, json: bool) -> u8 {
    let results = match monitor.run_due().await {
        Ok(results) => results,
        Err(err) => return usage_error(err),
    };
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
    if healthy {
        exit_code::OK
    } else {
        exit_code::CHECK_FAILED
    }
}

async fn serve(monitor: &Arc<Monitor>, listen: &str) -> u8 {
    let listener = match tokio::net::TcpListener::bind(listen).await {
        Ok(listener) => listener,
        Err(err) => {
            return usage_error(format!(
                "cannot listen on {listen} ([monitor] listen or --listen): {err}"
            ));
        }
    };
    let address = listener
        .local_addr()
        .map_or_else(|_| listen.to_owned(), |a| a.to_string());
    tell!("shipgate: monitoring; /metrics and /healthz on http://{address}");
    let cancel = shutdown_signal();
    let server = tokio::spawn(shipgate_monitor::http::serve(
        listener,
        Arc::clone(monitor),
        cancel.clone(),
    ));
    let outcome = monitor.run(&cancel).await;
    cancel.cancel();
    let _ = server.await;
    match outcome {
        Ok(()) => {
            tell!("shipgate: monitor stopped");
            exit_code::OK
        }
        Err(err) => usage_error(err),
    }
}

/// The deploy targets' providers, for the "running now" and "recent provider logs" sections
/// of alert issues; `None` (said once) when no target is enabled or one cannot be built.
fn provider_inspector(
    config: &Config,
    file: Option<PathBuf>,
    vars: &BTreeMap<String, String>,
    rt: &tokio::runtime::Runtime,
) -> Option<Arc<dyn Inspect>> {
    if config.targets.enabled().is_empty() {
        return None;
    }
    match crate::deploy::inspection_targets(file, vars, rt) {
        Ok((environment, targets)) => Some(Arc::new(ProviderInspector {
            environment,
            targets,
        })),
        Err(_) => {
            tell!(
                "shipgate: alert issues will not show what runs or provider logs (the deploy targets above could not be built)"
            );
            None
        }
    }
}

/// Reads what each deploy target runs and its recent logs.
struct ProviderInspector {
    environment: String,
    targets: Vec<Target>,
}

/// A provider that does not answer within this is reported as unavailable.
const INSPECTION_TIMEOUT: Duration = Duration::from_secs(20);

#[async_trait::async_trait]
impl Inspect for ProviderInspector {
    async fn inspect(&self, environment: &str) -> Inspection {
        let mut inspection = Inspection::default();
        if environment != self.environment {
            return inspection;
        }
        for target in &self.targets {
            let name = &target.name;
            let running =
                match tokio::time::timeout(INSPECTION_TIMEOUT, target.provider.current()).await {
                    Ok(Ok(running)) if !running.is_empty() => running,
                    Ok(Ok(_)) => {
                        inspection.running.push(format!("{name}: nothing running"));
                        continue;
                    }
                    Ok(Err(err)) => {
                        inspection
                            .running
                            .push(format!("{name}: unavailable ({err})"));
                        continue;
                    }
                    Err(_) => {
                        inspection.running.push(format!(
                            "{name}: no answer within {} s",
                            INSPECTION_TIMEOUT.as_secs()
                        ));
                        continue;
                    }
                };
            for r in &running {
                inspection.running.push(format!(
                    "{name}: {} = {} (revision {})",
                    r.service, r.image, r.revision
                ));
            }
            let deployment = Deployment {
                revision: running[0].revision.clone(),
                request: DeployRequest {
                    images: running
                        .iter()
                        .map(|r| (r.service.clone(), r.image.clone()))
                        .collect(),
                    description: "monitor".into(),
                },
            };
            match tokio::time::timeout(INSPECTION_TIMEOUT, target.provider.diagnostics(&deployment))
                .await
            {
                Ok(Ok(lines)) => {
                    let skip = lines.len().saturating_sub(MAX_LOG_LINES);
                    inspection
                        .logs
                        .extend(lines.into_iter().skip(skip).map(|l| format!("{name}: {l}")));
                }
                Ok(Err(err)) => inspection.logs.push(format!("{name}: no logs ({err})")),
                Err(_) => inspection.logs.push(format!(
                    "{name}: no logs within {} s",
                    INSPECTION_TIMEOUT.as_secs()
                )),
            }
        }
        inspection
    }
}

/// Log lines per target in an alert issue.
const MAX_LOG_LINES: usize = 40;

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

/// The configured targets, each with its schedule parsed and its spec compiled.
fn watch_targets(
    config: &Config,
    vars: &BTreeMap<String, String>,
    rt: &tokio::runtime::Runtime,
) -> Result<Vec<WatchTarget>, u8> {
    let mut smoke_spec = None;
    let mut targets = Vec::new();
    for (i, target) in config.monitor.targets.iter().enumerate() {
        let key = format!("monitor.targets.{i}");
        let environment = target
            .environment
            .clone()
            .or_else(|| config.environment.clone())
            .unwrap_or_else(|| "production".to_owned());
        let production_like = Environment::classify(Some(&environment))
            .kind()
            .is_prod_like();
        let schedule = target
            .schedule
            .parse()
            .map_err(|e| usage_error(format!("{key}.schedule: {e}")))?;
        let spec = if let Some(url) = &target.url {
            health_check_spec(
                url,
                config.smoke.timeout.as_duration(),
                config.smoke.allow_insecure,
                production_like,
            )
            .map_err(|e| spec_error("a monitor target's health check is invalid", &key, &e))?
        } else if let Some(spec) = &smoke_spec {
            Clone::clone(spec)
        } else {
            let spec = crate::deploy::smoke_spec(config, vars, rt, production_like)?;
            smoke_spec = Some(spec.clone());
            spec
        };
        targets.push(WatchTarget {
            name: target.name.clone(),
            environment,
            schedule,
            spec,
            thresholds: Thresholds {
                open_after: target.open_after,
                resolve_after: target.resolve_after,
            },
            issue_title: target.issue_title.clone(),
            issue_labels: target.issue_labels.clone(),
            comment_every: target.comment_every.as_duration(),
        });
    }
    Ok(targets)
}

/// GitHub issues when `[github] repository` (GITHUB_REPOSITORY in Actions) and GITHUB_TOKEN are set;
/// otherwise alerts are reported without an issue (said once at start).
fn issue_tracker(
    config: &Config,
    vars: &BTreeMap<String, String>,
    rt: &tokio::runtime::Runtime,
) -> Result<Option<IssueTracker>, u8> {
    let Some(repository) = config.github.repository.clone() else {
        tell!(
            "shipgate: alerts open no GitHub issue: set [github] repository (or GITHUB_REPOSITORY) and GITHUB_TOKEN"
        );
        return Ok(None);
    };
    let token = crate::deploy::github_token(config, vars, rt)?;
    if token.is_none() {
        tell!(
            "shipgate: alerts open no GitHub issue: no secret source has GITHUB_TOKEN (it needs issues: write)"
        );
        return Ok(None);
    }
    let client =
        shipgate_github::GithubClient::new(&config.github.api_url, token).map_err(usage_error)?;
    Ok(Some(IssueTracker { client, repository }))
}
