//! `shipgate ci-gate`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use shipgate_core::{HumanDuration, exit_code};
use shipgate_github::{GateOutcome, GateSpec, GithubError, run_gate};

use crate::error::{CommandResult, Failure};
use crate::{Format, load_config, runtime, shutdown_signal};

/// Arguments of `ci-gate`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Reads the commit's check runs and commit statuses, waits while required checks run, fails at the first failed one (failure, cancelled, timed_out, action_required, stale; neutral and skipped unless allowed; any unknown conclusion), and never passes a commit with nothing reported. The token is GITHUB_TOKEN (checks: read, statuses: read); GITHUB_API_URL selects GitHub Enterprise.

Examples:
  shipgate ci-gate --repo acme/backend --sha \"$GITHUB_SHA\" \\
    --require 'Run Tests (shards *)' --require 'Security Scan'
  shipgate ci-gate --config shipgate.toml
    # [ci_gate] required_checks, GITHUB_REPOSITORY, GITHUB_SHA

Exit codes: 0 every required check passed, 1 a check failed or the wait timed out, 2 usage (bad repository or SHA, bad token, unknown repository), 130 interrupted.")]
pub struct Args {
    /// Configuration file ([ci_gate], [github]).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// OWNER/NAME [default: [github] repository, GITHUB_REPOSITORY].
    #[arg(long, value_name = "OWNER/NAME")]
    repo: Option<String>,
    /// The full 40-character commit SHA [default: GITHUB_SHA].
    #[arg(long, value_name = "SHA")]
    sha: Option<String>,
    /// A required check or status name, exact or glob (repeatable) [default: [ci_gate]
    /// required_checks; none: every reported check].
    #[arg(long = "require", value_name = "NAME")]
    required: Vec<String>,
    /// How long to wait [default: [ci_gate] timeout, 5m].
    #[arg(long, value_name = "DURATION")]
    timeout: Option<HumanDuration>,
    /// Time between polls [default: [ci_gate] interval, 10s].
    #[arg(long, value_name = "DURATION")]
    interval: Option<HumanDuration>,
    /// Count `neutral` conclusions as passing.
    #[arg(long)]
    allow_neutral: bool,
    /// Count `skipped` conclusions as passing.
    #[arg(long)]
    allow_skipped: bool,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    /// No progress lines on stderr.
    #[arg(long, short)]
    quiet: bool,
}

/// Runs `ci-gate`.
pub(crate) fn run(args: Args, vars: &BTreeMap<String, String>) -> CommandResult {
    let (loaded, _) = load_config(args.config.clone(), None, vars)?;
    let composition = crate::composition(loaded, vars);
    let config = composition.config();
    let Some(repo) = args.repo.clone().or(config.github.repository.clone()) else {
        return Err(Failure::usage(
            "no repository: pass --repo OWNER/NAME, or set [github] repository or GITHUB_REPOSITORY",
        ));
    };
    if repo.split('/').count() != 2 || repo.split('/').any(str::is_empty) {
        return Err(Failure::usage(format!("--repo `{repo}` is not OWNER/NAME")));
    }
    let Some(sha) = args
        .sha
        .clone()
        .or_else(|| composition.actions().sha.clone())
        .filter(|s| !s.is_empty())
    else {
        return Err(Failure::usage("no commit: pass --sha, or set GITHUB_SHA"));
    };
    if sha.len() != 40 || !sha.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(Failure::usage(format!(
            "--sha `{sha}` is not a full 40-character commit SHA; pass the full SHA (git rev-parse HEAD) so the gate checks exactly the commit you deploy"
        )));
    }
    let spec = GateSpec {
        required: if args.required.is_empty() {
            config.ci_gate.required_checks.clone()
        } else {
            args.required.clone()
        },
        allow_neutral: args.allow_neutral || config.ci_gate.allow_neutral,
        allow_skipped: args.allow_skipped || config.ci_gate.allow_skipped,
        timeout: args.timeout.unwrap_or(config.ci_gate.timeout).as_duration(),
        interval: args
            .interval
            .unwrap_or(config.ci_gate.interval)
            .as_duration(),
    };
    let rt = runtime()?;
    let client = rt.block_on(composition.github_client())?;
    let quiet = args.quiet;
    let progress = move |line: &str| {
        if !quiet {
            tell!("ci-gate: {}", line);
        }
    };
    let outcome = rt.block_on(async {
        let cancel = shutdown_signal();
        run_gate(&client, &repo, &sha, &spec, &progress, &cancel).await
    });
    let short = &sha[..12];
    let (code, verdict, detail): (u8, &str, Vec<String>) = match outcome {
        Ok(GateOutcome::Passed(names)) => (
            exit_code::OK,
            "passed",
            vec![format!(
                "{} check(s) green for {short}: {}",
                names.len(),
                names.join(", ")
            )],
        ),
        Ok(GateOutcome::Failed(failures)) => (
            exit_code::CHECK_FAILED,
            "failed",
            failures
                .iter()
                .map(|f| {
                    format!(
                        "{}: {}{}",
                        f.name,
                        f.reason,
                        f.url
                            .as_ref()
                            .map(|u| format!(" ({u})"))
                            .unwrap_or_default()
                    )
                })
                .collect(),
        ),
        Ok(GateOutcome::TimedOut { waiting, no_checks }) => {
            let mut lines = vec![if no_checks {
                format!(
                    "no checks have been reported for {short} after {}",
                    humantime::format_duration(spec.timeout)
                )
            } else {
                format!(
                    "still waiting after {}",
                    humantime::format_duration(spec.timeout)
                )
            }];
            lines.extend(waiting);
            (exit_code::CHECK_FAILED, "timed_out", lines)
        }
        Ok(GateOutcome::Cancelled) => (
            exit_code::ABORTED,
            "cancelled",
            vec!["interrupted".to_owned()],
        ),
        Err(err @ (GithubError::RateLimited { .. } | GithubError::Unavailable { .. })) => {
            (exit_code::CHECK_FAILED, "error", vec![err.to_string()])
        }
        Err(err) => return Err(Failure::usage(err)),
    };
    if code != exit_code::OK && args.format == Format::Text {
        crate::annotate(
            vars,
            "error",
            &format!("shipgate ci-gate {verdict}"),
            &detail.join("; "),
        );
    }
    match args.format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({"schema_version": 1, "repository": repo, "sha": sha, "verdict": verdict, "details": detail})).unwrap_or_default()
        ),
        Format::Text => {
            say!("ci-gate {}: {repo}@{short}", if code == exit_code::OK { "passed".to_owned() } else { verdict.to_uppercase() });
            for line in detail {
                say!("  {line}");
            }
        }
    }
    Ok(code)
}
