//! `shipgate init`: write a commented `shipgate.toml` and a deploy workflow for the repository.

use std::path::{Path, PathBuf};

use shipgate_core::exit_code;
use shipgate_init::{Level, Scaffold};

use crate::Format;
use crate::error::{CommandResult, Failure};

/// Arguments of `init`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
It reads, and never changes: a Helm chart (Chart.yaml and the image tags of its values.yaml), fly.toml, railway.json or railway.toml, .env.sample, a Makefile's check-prod-env and migrate-prod targets, and the workflows in .github/workflows (the deploy variables they use, an image-publishing workflow, CI job names, PR comments, a scheduled health check).

Examples:
  shipgate init --dry-run          # print what it would write
  shipgate init             # write shipgate.toml, .github/workflows/deploy.yml
  shipgate init --dir ../shop --force
Then: shipgate check-env --config shipgate.toml; shipgate doctor; shipgate plan.")]
pub struct Args {
    /// The repository to look at and write into.
    #[arg(long, value_name = "DIR", default_value = ".")]
    dir: PathBuf,
    /// Print the files instead of writing them.
    #[arg(long)]
    dry_run: bool,
    /// Overwrite files that exist (without it, nothing is written when one does).
    #[arg(long)]
    force: bool,
    /// Output format (json: what was found and the files' text, for tools).
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
}

/// Runs the command and returns its exit code.
pub(crate) fn run(args: &Args) -> CommandResult {
    let layout = shipgate_init::detect(&args.dir).map_err(|err| {
        Failure::usage(format!(
            "{err} (--dir): run shipgate init in the repository, or name it with --dir"
        ))
    })?;
    let scaffold = shipgate_init::scaffold(&layout);
    let existing: Vec<&str> = scaffold
        .files
        .iter()
        .map(|f| f.path.as_str())
        .filter(|path| args.dir.join(path).exists())
        .collect();
    if !args.dry_run && !args.force && !existing.is_empty() {
        return Err(Failure::usage(format!(
            "{} already exist{} in {}: nothing was written. Move {} aside, or run `shipgate init --force` to overwrite (`--dry-run` shows what would be written)",
            existing.join(" and "),
            if existing.len() == 1 { "s" } else { "" },
            args.dir.display(),
            if existing.len() == 1 { "it" } else { "them" },
        )));
    }
    if !args.dry_run {
        for file in &scaffold.files {
            write(&args.dir, &file.path, &file.contents)?;
        }
    }
    match args.format {
        Format::Json => {
            let report = serde_json::json!({
                "schema_version": 1,
                "dir": args.dir.display().to_string(),
                "dry_run": args.dry_run,
                "layout": layout,
                "scaffold": scaffold,
                "overwritten": if args.dry_run { Vec::new() } else { existing.clone() },
            });
            match serde_json::to_string_pretty(&report) {
                Ok(json) => println!("{json}"),
                Err(err) => return Err(Failure::usage(format!("cannot render the report: {err}"))),
            }
        }
        Format::Text => render_text(args, &layout, &scaffold, &existing),
    }
    Ok(exit_code::OK)
}

fn write(dir: &Path, relative: &str, contents: &str) -> Result<(), Failure> {
    let path = dir.join(relative);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|err| Failure::usage(format!("cannot create {}: {err}", parent.display())))?;
    }
    std::fs::write(&path, contents)
        .map_err(|err| Failure::usage(format!("cannot write {}: {err}", path.display())))
}

fn render_text(
    args: &Args,
    layout: &shipgate_init::Layout,
    scaffold: &Scaffold,
    existing: &[&str],
) {
    say!("shipgate init: looked at {}", args.dir.display());
    if layout.findings.is_empty() {
        say!(
            "  found nothing a deploy configuration can be derived from; writing a starting point"
        );
    }
    for finding in &layout.findings {
        let mark = match finding.level {
            Level::Info => "found",
            Level::Warning => "check",
        };
        say!("  {mark} {}: {}", finding.file, finding.what);
    }
    if args.dry_run {
        for file in &scaffold.files {
            say!("\n--- {} (not written: --dry-run)", file.path);
            print!("{}", crate::for_people(&file.contents));
        }
        say!("");
    } else {
        for file in &scaffold.files {
            let verb = if existing.contains(&file.path.as_str()) {
                "overwrote"
            } else {
                "wrote"
            };
            say!("  {verb} {}", file.path);
        }
    }
    if !scaffold.secrets.is_empty() {
        say!(
            "repository secrets the workflow reads: {}",
            scaffold.secrets.join(", ")
        );
    }
    if !scaffold.variables.is_empty() {
        say!(
            "repository variables it reads: {}",
            scaffold.variables.join(", ")
        );
    }
    for todo in &scaffold.todo {
        say!("to do: {todo}");
    }
    say!(
        "next: shipgate check-env --config {0}; shipgate doctor --config {0}; shipgate plan --config {0}",
        shipgate_init::CONFIG_PATH
    );
}
