//! `shipgate deploy`: load, compose, deploy, render the summary, exit with the outcome's code.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use shipgate_compose::{Composition, DeployOptions};
use shipgate_core::{ImageRef, exit_code};
use shipgate_pipeline::{PipelineEvent, Summary};

use crate::error::{CommandResult, Failure};
use crate::{Format, log_redactor, runtime, shutdown_signal};

/// Arguments of `deploy`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Flow: check-env → lock (one deploy per app and environment; a second one waits) → CI gate and migration when configured → deploy each enabled target → wait for its verdict → smoke gate ([smoke] / ENABLE_DEPLOY_SMOKE_GATE) → on failure and with [rollback] auto / ENABLE_AUTO_ROLLBACK: roll back to the newest verified good revision and smoke it → summary (always written) → ledger.

Exit codes: 0 succeeded, 1 failed (nothing live changed), 2 usage or configuration error, 3 rolled back (the previous release is live and passed its smoke), 4 rollback failed (production may be broken), 5 unhealthy (gate failed, rollback disabled), 6 lock timeout, 7 superseded (a newer deploy queued behind this one, or the release is older than the live one: see --allow-older), 8 succeeded but the summary file could not be written, 130 interrupted.

Examples:
  shipgate deploy --config shipgate.toml --image-tag 3f2c1a9
  image_tag=3f2c1a9 runtime_target=local shipgate deploy --summary summary.json
  shipgate deploy --dry-run")]
pub struct Args {
    /// Configuration file [default: $SHIPGATE_CONFIG, else ./shipgate.toml if present].
    #[arg(long, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// Targets to deploy: helm, railway, fly, local, both (helm+railway), all, or a list;
    /// overrides runtime_target and the file.
    #[arg(long, value_name = "TARGETS")]
    pub(crate) target: Option<String>,
    /// The image tag to deploy; overrides image_tag / IMAGE_TAG / GITHUB_SHA and the file.
    #[arg(long, value_name = "TAG")]
    pub(crate) image_tag: Option<String>,
    /// Environment name; overrides DEPLOY_ENVIRONMENT, ENVIRONMENT and the file.
    #[arg(long, value_name = "NAME")]
    pub(crate) environment: Option<String>,
    /// Where to write the JSON summary.
    #[arg(long, value_name = "FILE", default_value = ".shipgate/summary.json")]
    pub(crate) summary: PathBuf,
    /// Show what would change per target and service, and the rollback candidate; change
    /// nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Output format of the result on stdout.
    #[arg(long, value_enum, default_value = "text")]
    pub(crate) format: Format,
    /// No progress lines on stderr.
    #[arg(long, short)]
    pub(crate) quiet: bool,
    /// Deploy even when the ledger says the release is older than the live one (a newer
    /// commit time, or it went live before the live release replaced it): a deliberate
    /// roll-back by redeploy. Without it such a deploy ends `superseded` (exit 7).
    #[arg(long)]
    pub(crate) allow_older: bool,
}

impl Args {
    /// The same arguments as a dry run (`shipgate plan`).
    pub(crate) fn dry_run(self) -> Args {
        Args {
            dry_run: true,
            ..self
        }
    }
}

/// Loads the configuration with the deploy flags as the strongest overrides, and composes it.
pub(crate) fn compose(
    args: &Args,
    vars: &BTreeMap<String, String>,
) -> Result<Composition, Failure> {
    let mut overrides: Vec<(String, String, &str)> = Vec::new();
    if let Some(env) = &args.environment {
        overrides.push(("environment".into(), env.clone(), "--environment"));
    }
    if let Some(tag) = &args.image_tag {
        overrides.push(("image.tag".into(), tag.clone(), "--image-tag"));
    }
    if let Some(raw) = &args.target {
        overrides.extend(crate::target_overrides(raw)?);
    }
    crate::compose(args.config.clone(), &overrides, vars)
}

/// Runs `deploy` (and `plan`, its dry run).
pub(crate) fn run(args: Args, vars: &BTreeMap<String, String>) -> CommandResult {
    let composition = compose(&args, vars)?;
    let release = composition.release()?;
    let rt = runtime()?;
    if args.dry_run {
        let plan = rt.block_on(composition.dry_run(&release))?;
        return Ok(crate::plan::render(&plan, &release, args.format));
    }
    let quiet = args.quiet;
    let progress = crate::term::Progress::detect(vars);
    let events = |event: &PipelineEvent| {
        if !quiet {
            progress.event(event);
        }
    };
    let options = DeployOptions {
        run_id: None,
        allow_older: args.allow_older,
    };
    let summary = rt.block_on(async {
        let cancel = shutdown_signal();
        composition
            .deploy(&release, &options, &events, &cancel)
            .await
    });
    progress.finish();
    let summary = summary?;
    let written = write_summary(&summary, &args.summary, vars);
    if let Err(message) = &written {
        tell!("shipgate: the summary was NOT written: {}", message);
    }
    match args.format {
        Format::Json => match serde_json::to_string_pretty(&summary) {
            Ok(json) => println!("{}", log_redactor().redact(&json)),
            Err(err) => tell!("shipgate: cannot render the summary: {err}"),
        },
        Format::Text => print!(
            "{}",
            crate::for_people(&render(&summary, &args.summary, written.is_ok()))
        ),
    }
    let level = match summary.outcome {
        shipgate_pipeline::Outcome::Succeeded => None,
        shipgate_pipeline::Outcome::RolledBack => Some("warning"),
        _ => Some("error"),
    };
    // Annotations go to stdout with the text report (JSON output stays parseable).
    if let (Some(level), Format::Text) = (level, args.format) {
        let title = format!("shipgate deploy {}", summary.outcome.as_str());
        crate::annotate(vars, level, &title, &summary.message);
    }
    Ok(exit_code_with_summary(summary.exit_code, written.is_ok()))
}

/// The run's exit code, unless it succeeded and its summary (the promised artifact) could not
/// be written: then `SUMMARY_NOT_WRITTEN`. A failing outcome keeps its own code, which already
/// fails the job.
fn exit_code_with_summary(outcome_code: u8, written: bool) -> u8 {
    if outcome_code == exit_code::OK && !written {
        exit_code::SUMMARY_NOT_WRITTEN
    } else {
        outcome_code
    }
}

fn render(summary: &Summary, path: &Path, written: bool) -> String {
    let mut out = format!("deploy {}: {}\n", summary.outcome.as_str(), summary.message);
    for step in &summary.steps {
        out.push_str(&format!(
            "  {:<22} {:<7} {:>7} ms  {}\n",
            step.name, step.outcome, step.duration_ms, step.detail
        ));
    }
    out.push_str(&format!(
        "run {} in {} ms; summary: {}{}\n",
        summary.run_id,
        summary.duration_ms,
        path.display(),
        if written { "" } else { " (NOT written)" }
    ));
    out
}

/// Writes the JSON summary (`Err`: it was not written, and why), and in GitHub Actions the
/// step summary and outputs whatever became of the file (a failure there is a warning).
fn write_summary(
    summary: &Summary,
    path: &Path,
    vars: &BTreeMap<String, String>,
) -> Result<(), String> {
    let file = write_summary_file(summary, path);
    if let Err(message) = write_github_outputs(summary, path, vars) {
        tell!("shipgate: warning: {}", message);
    }
    file
}

fn write_summary_file(summary: &Summary, path: &Path) -> Result<(), String> {
    let json = serde_json::to_string_pretty(summary)
        .map_err(|e| format!("cannot render the summary: {e}"))?;
    let json = log_redactor().redact(&json).into_owned();
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| {
            format!(
                "cannot create {}: {e} (--summary names the file; choose a writable place)",
                dir.display()
            )
        })?;
    }
    std::fs::write(path, json + "\n").map_err(|e| {
        format!(
            "cannot write {}: {e} (--summary names the file; choose a writable place)",
            path.display()
        )
    })
}

/// `$GITHUB_STEP_SUMMARY` (the markdown) and `$GITHUB_OUTPUT` (outcome, tags, run id, path).
fn write_github_outputs(
    summary: &Summary,
    path: &Path,
    vars: &BTreeMap<String, String>,
) -> Result<(), String> {
    let actions = shipgate_compose::ActionsContext::from_vars(vars);
    let append = |var: &str, file: Option<&Path>, text: &str| -> Result<(), String> {
        if let Some(file) = file {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(file)
                .map_err(|e| format!("cannot open ${var}: {e}"))?;
            f.write_all(log_redactor().redact(text).as_bytes())
                .map_err(|e| format!("cannot write ${var}: {e}"))?;
        }
        Ok(())
    };
    append(
        "GITHUB_STEP_SUMMARY",
        actions.step_summary.as_deref(),
        &summary.to_markdown(),
    )?;
    // The tag the rollback went back to (its commit SHA for SHA-tagged images), if any.
    let rollback_tag = summary
        .rollback
        .as_ref()
        .filter(|r| r.performed)
        .and_then(|r| r.targets.first())
        .and_then(|t| t.services.first())
        .and_then(|s| s.to.parse::<ImageRef>().ok())
        .and_then(|i| i.tag().map(str::to_owned))
        .unwrap_or_default();
    append(
        "GITHUB_OUTPUT",
        actions.output.as_deref(),
        &format!(
            "outcome={}\nimage_tag={}\nrollback_tag={rollback_tag}\nrun_id={}\nsummary={}\n",
            summary.outcome.as_str(),
            summary.image_tag,
            summary.run_id,
            path.display()
        ),
    )
}
