//! `shipgate doctor`: what a deploy of this configuration will need, checked read-only.

use std::collections::BTreeMap;
use std::path::PathBuf;

use shipgate_compose::CheckStatus;
use shipgate_core::exit_code;

use crate::error::{CommandResult, Failure};
use crate::{Format, runtime};

/// Arguments of `doctor`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Checks, with read-only calls: the environment (check-env), the release (tag, images), the ledger, each target (the token resolves the project, app or cluster and reads what runs), the registry has the tag, GitHub's check runs (when the CI gate is on), and the smoke target answers. One line per check: ok, FAIL (a deploy would fail; the next line says how to fix it), skip (not configured) or ?? (the platform does not tell read-only).

Examples:
  shipgate doctor
  shipgate doctor --config shipgate.toml --image-tag \"$GITHUB_SHA\" --format json")]
pub struct Args {
    /// Configuration file [default: $SHIPGATE_CONFIG, else ./shipgate.toml if present].
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Environment name; overrides DEPLOY_ENVIRONMENT, ENVIRONMENT and the file.
    #[arg(long, value_name = "NAME")]
    environment: Option<String>,
    /// The image tag a deploy would ship; overrides image_tag / IMAGE_TAG / GITHUB_SHA.
    #[arg(long, value_name = "TAG")]
    image_tag: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
}

/// Runs the checks; exit 0 when none failed, 1 when a deploy would fail.
pub(crate) fn run(args: Args, vars: &BTreeMap<String, String>) -> CommandResult {
    let mut overrides = Vec::new();
    if let Some(environment) = &args.environment {
        overrides.push((
            "environment".to_owned(),
            environment.clone(),
            "--environment",
        ));
    }
    if let Some(tag) = &args.image_tag {
        overrides.push(("image.tag".to_owned(), tag.clone(), "--image-tag"));
    }
    let composition = crate::compose(args.config, &overrides, vars)?;
    let checks = runtime()?.block_on(composition.doctor());
    let failed = checks
        .iter()
        .filter(|c| c.status == CheckStatus::Failed)
        .count();
    match args.format {
        Format::Json => {
            let report = serde_json::json!({
                "schema_version": 1,
                "passed": failed == 0,
                "checks": checks,
            });
            match serde_json::to_string_pretty(&report) {
                Ok(json) => say!("{}", json),
                Err(err) => return Err(Failure::usage(format!("cannot render the report: {err}"))),
            }
        }
        Format::Text => {
            use crate::term::{Tone, paint, styled};
            use std::io::IsTerminal as _;
            let styled = styled(vars, std::io::stdout().is_terminal());
            for check in &checks {
                let (mark, tone) = match check.status {
                    CheckStatus::Ok => ("ok  ", Tone::Good),
                    CheckStatus::Failed => ("FAIL", Tone::Bad),
                    CheckStatus::Skipped => ("skip", Tone::Dim),
                    CheckStatus::Unknown => ("??  ", Tone::Warn),
                };
                // The mark is shipgate's own text; the rest is made printable.
                println!(
                    "{} {}",
                    paint(styled, tone, mark),
                    crate::for_people(&format!("{}: {}", check.name, check.detail))
                );
                if let Some(fix) = &check.fix {
                    say!("     fix: {fix}");
                }
            }
            if failed == 0 {
                say!("doctor: a deploy has what it needs");
            } else {
                say!(
                    "doctor: {failed} check{} would fail a deploy",
                    if failed == 1 { "" } else { "s" }
                );
            }
        }
    }
    Ok(if failed == 0 {
        exit_code::OK
    } else {
        exit_code::CHECK_FAILED
    })
}
