//! `shipgate smoke`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use shipgate_config::{
    ConfigError, ConfigProblem, LoadOptions, Origin, SmokeCheck, SmokeConfig, StatusExpectation,
};
use shipgate_core::{Environment, HumanDuration, Secret, exit_code};
use shipgate_smoke::{CheckOutcome, Progress, SmokeReport, SmokeRunner, SpecOptions};

use crate::error::{CommandResult, Failure};
use crate::{Format, config_path, shutdown_signal};

/// Arguments of `smoke`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Where the checks come from, first match wins:
  --spec FILE      a smoke spec file (the keys of [smoke] at top level)
  --config FILE    the [smoke] section of a shipgate.toml
                   ($SHIPGATE_CONFIG, ./shipgate.toml)
  otherwise        GET each --check path (default /healthz) on --url or
                   PRODUCTION_API_URL, sending PRODUCTION_API_KEY in
                   PRODUCTION_API_KEY_HEADER (default X-API-Key)

Production-like environments (ENVIRONMENT/DEPLOY_ENVIRONMENT unset, prod, staging, unknown) refuse http:// URLs and unverified TLS unless the spec sets allow_insecure = true or you pass --allow-insecure.

Examples:
  shipgate smoke                    # PRODUCTION_API_URL + /healthz
  shipgate smoke --url https://api.example.com --check /healthz --check /readyz
  shipgate smoke --spec smoke.toml --report-junit smoke.xml
  ENVIRONMENT=dev shipgate smoke --url http://localhost:8080 --format json

Exit codes: 0 every critical check passed, 1 a critical check failed, 2 bad spec or usage, 130 interrupted.")]
pub struct Args {
    /// A smoke spec file.
    #[arg(long, value_name = "FILE", conflicts_with = "config")]
    spec: Option<PathBuf>,
    /// Configuration file whose [smoke] section to run.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Base URL; overrides the spec's and PRODUCTION_API_URL.
    #[arg(long, value_name = "URL")]
    url: Option<String>,
    /// A path to GET without a spec (repeatable) [default: /healthz].
    #[arg(long = "check", value_name = "PATH", conflicts_with_all = ["spec", "config"])]
    checks: Vec<String>,
    /// Per-request timeout without a spec.
    #[arg(long, value_name = "DURATION", default_value = "10s", conflicts_with_all = ["spec", "config"])]
    timeout: HumanDuration,
    /// Checks run at once; overrides the spec.
    #[arg(long, value_name = "N")]
    concurrency: Option<u32>,
    /// Environment name [default: DEPLOY_ENVIRONMENT, ENVIRONMENT]; decides whether plain
    /// http is allowed.
    #[arg(long, value_name = "NAME")]
    environment: Option<String>,
    /// Allow http:// and unverified TLS in a production-like environment.
    #[arg(long)]
    allow_insecure: bool,
    /// Write the JSON report to FILE.
    #[arg(long, value_name = "FILE")]
    report_json: Option<PathBuf>,
    /// Write a JUnit XML report to FILE (for CI test views).
    #[arg(long, value_name = "FILE")]
    report_junit: Option<PathBuf>,
    /// Format of the report on stdout.
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    /// No progress lines on stderr.
    #[arg(long, short)]
    quiet: bool,
}

/// The smoke section to run and how to locate its keys for error messages.
struct Source {
    smoke: SmokeConfig,
    /// What the spec's keys are called where the user wrote them (`smoke.` in shipgate.toml).
    key_prefix: &'static str,
    locate: Box<dyn Fn(&str) -> Origin>,
    /// Where the base URL comes from when the spec has none.
    fallback_url: Option<String>,
    environment: Option<String>,
}

/// Runs the command and returns its exit code.
pub(crate) fn run(args: Args, vars: &BTreeMap<String, String>) -> CommandResult {
    let source = source(&args, vars)?;
    let mut smoke = source.smoke;
    if let Some(n) = args.concurrency {
        smoke.concurrency = n;
    }
    if args.allow_insecure {
        smoke.allow_insecure = true;
    }
    let environment = args.environment.clone().or(source.environment);
    let production_like = Environment::classify(environment.as_deref())
        .kind()
        .is_prod_like();
    let api_key = vars
        .get(&smoke.api_key_secret)
        .filter(|v| !v.is_empty())
        .map(|v| Secret::new(v.clone()));
    let options = SpecOptions {
        base_url: args.url.clone().or_else(|| {
            smoke
                .base_url
                .is_none()
                .then(|| source.fallback_url.clone())
                .flatten()
        }),
        api_key,
        production_like,
    };
    let spec = match shipgate_smoke::compile(&smoke, &options) {
        Ok(spec) => spec,
        Err(err) => {
            let problems = err
                .problems
                .into_iter()
                .map(|p| {
                    // A value a flag set is blamed on the flag the user typed.
                    let origin = match p.key.as_str() {
                        "base_url" if args.url.is_some() => Origin::Flag("--url".to_owned()),
                        "concurrency" if args.concurrency.is_some() => {
                            Origin::Flag("--concurrency".to_owned())
                        }
                        key => (source.locate)(key),
                    };
                    ConfigProblem {
                        line: match &origin {
                            Origin::File { line, .. } => *line,
                            _ => None,
                        },
                        origin,
                        key: Some(format!("{}{}", source.key_prefix, p.key)),
                        message: p.message,
                        hint: Some(p.hint),
                    }
                })
                .collect();
            return Err(Failure::usage(ConfigError::Invalid(problems)));
        }
    };

    let runtime = crate::runtime()?;
    let quiet = args.quiet;
    let outcome = runtime.block_on(async move {
        let cancel = shutdown_signal();
        let mut runner = match SmokeRunner::new(crate::log_redactor().clone()) {
            Ok(runner) => runner,
            Err(err) => return Err(err.to_string()),
        };
        if !quiet {
            runner = runner.with_progress(Arc::new(print_progress));
            tell!(
                "smoke: {} check(s) against {}",
                spec.len(),
                crate::log_redactor().redact(spec.base_url().as_ref())
            );
        }
        let report = runner
            .run(&spec, &cancel)
            .await
            .map_err(|e| e.to_string())?;
        Ok((report, cancel.is_cancelled()))
    });
    let (report, cancelled) = outcome.map_err(Failure::usage)?;
    write_reports(&args, &report)?;
    match args.format {
        Format::Text => print!("{}", crate::for_people(&report.to_text())),
        Format::Json => match serde_json::to_string_pretty(&report) {
            Ok(json) => println!("{json}"),
            Err(err) => {
                return Err(Failure::usage(format!(
                    "cannot render the JSON report: {err}"
                )));
            }
        },
    }
    Ok(if cancelled {
        exit_code::ABORTED
    } else if report.passed {
        exit_code::OK
    } else {
        exit_code::CHECK_FAILED
    })
}

fn source(args: &Args, vars: &BTreeMap<String, String>) -> Result<Source, Failure> {
    let seed_url = vars
        .get("PRODUCTION_API_URL")
        .filter(|v| !v.is_empty())
        .cloned();
    let environment = ["DEPLOY_ENVIRONMENT", "ENVIRONMENT"]
        .iter()
        .find_map(|name| vars.get(*name).filter(|v| !v.is_empty()).cloned());
    if let Some(path) = &args.spec {
        let loaded = shipgate_config::load_smoke_spec(path).map_err(Failure::usage)?;
        let smoke = loaded.spec.clone();
        return Ok(Source {
            smoke,
            key_prefix: "",
            locate: Box::new(move |key| loaded.origin_of(key)),
            fallback_url: seed_url,
            environment,
        });
    }
    if args.checks.is_empty()
        && let Some(file) = config_path(args.config.clone(), vars)
    {
        let loaded = shipgate_config::load(&LoadOptions {
            file: Some(&file),
            vars,
            overrides: &[],
        })?;
        if !loaded.config.smoke.checks.is_empty() || args.config.is_some() {
            let smoke = loaded.config.smoke.clone();
            let environment = loaded.config.environment.clone();
            return Ok(Source {
                smoke,
                key_prefix: "smoke.",
                locate: Box::new(move |key| {
                    loaded
                        .origin_of(&format!("smoke.{key}"))
                        .unwrap_or(Origin::Default)
                }),
                fallback_url: None,
                environment,
            });
        }
    }
    Ok(Source {
        smoke: quick_spec(args, vars),
        key_prefix: "",
        locate: Box::new(|key| match key {
            "base_url" => Origin::Variable("PRODUCTION_API_URL".to_owned()),
            _ => Origin::Flag("--check".to_owned()),
        }),
        fallback_url: seed_url,
        environment,
    })
}

/// The spec of a run without a spec file: GET each `--check` path, expecting 2xx.
fn quick_spec(args: &Args, vars: &BTreeMap<String, String>) -> SmokeConfig {
    let paths = if args.checks.is_empty() {
        vec!["/healthz".to_owned()]
    } else {
        args.checks.clone()
    };
    let mut smoke = SmokeConfig {
        timeout: args.timeout,
        ..SmokeConfig::default()
    };
    if let Some(header) = vars
        .get("PRODUCTION_API_KEY_HEADER")
        .filter(|v| !v.is_empty())
    {
        smoke.api_key_header = header.clone();
    }
    smoke.checks = paths
        .into_iter()
        .map(|path| SmokeCheck {
            status: Some(StatusExpectation::Pattern("2xx".to_owned())),
            ..SmokeCheck::get(path)
        })
        .collect();
    smoke
}

fn write_reports(args: &Args, report: &SmokeReport) -> Result<(), Failure> {
    let write = |path: &Path, text: String| {
        std::fs::write(path, text)
            .map_err(|err| Failure::usage(format!("cannot write {}: {err}", path.display())))
    };
    if let Some(path) = &args.report_json {
        let json = serde_json::to_string_pretty(report)
            .map_err(|err| Failure::usage(format!("cannot render the JSON report: {err}")))?;
        write(path, json + "\n")?;
    }
    if let Some(path) = &args.report_junit {
        write(path, report.to_junit())?;
    }
    Ok(())
}

fn print_progress(progress: &Progress) {
    match progress {
        Progress::Retrying {
            check,
            attempt,
            of,
            reason,
            retry_in,
        } => tell!(
            "smoke: {check}: attempt {attempt}/{of} failed ({}); retrying in {}",
            crate::log_redactor().redact(reason),
            humantime::format_duration(round(*retry_in))
        ),
        Progress::Finished {
            check,
            outcome,
            latency,
        } => {
            let word = match outcome {
                CheckOutcome::Passed => "passed",
                CheckOutcome::Failed => "FAILED",
                CheckOutcome::Skipped => "skipped",
                CheckOutcome::Cancelled => "cancelled",
            };
            let latency = latency
                .map(|l| format!(" in {:.1} ms", l.as_secs_f64() * 1000.0))
                .unwrap_or_default();
            tell!("smoke: {check}: {word}{latency}");
        }
    }
}

/// Rounds to milliseconds for display.
fn round(d: Duration) -> Duration {
    Duration::from_millis(d.as_millis() as u64)
}
