//! `shipgate init`: look at a repository and write the deploy configuration it needs.
//!
//! [`detect`] reads what a repository already holds: a Helm chart (`Chart.yaml` and the
//! image tags of its `values.yaml`), `fly.toml` (app, process groups, HTTP health checks),
//! `railway.json` / `railway.toml` (a service Railway builds from the repository), a dotenv
//! sample, a Makefile's `check-prod-env` / `migrate-prod` targets, and the GitHub workflows
//! (the deploy variables they use, an image-publishing workflow, CI job names, PR comments, a
//! scheduled health check). [`scaffold`] turns that [`Layout`] into a commented
//! `shipgate.toml` and a `.github/workflows/deploy.yml` that runs shipgate through its GitHub
//! Action. Neither writes anything: the caller decides (the CLI never overwrites without
//! `--force`).
//!
//! ```
//! let repo = tempfile::tempdir()?;
//! std::fs::write(repo.path().join("fly.toml"), "app = \"shop\"\n[[http_service.checks]]\npath = \"/health\"\n")?;
//! let layout = shipgate_init::detect(repo.path())?;
//! let scaffold = shipgate_init::scaffold(&layout);
//! let config = &scaffold.files[0];
//! assert_eq!(config.path, "shipgate.toml");
//! assert!(config.contents.contains("[targets.fly]"));
//! assert!(config.contents.contains("path = \"/health\""));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod detect;
mod render;

use std::path::PathBuf;

pub use detect::{
    FlyLayout, HelmLayout, HelmService, KNOWN_VARIABLES, Layout, MakeLayout, RailwayLayout,
    WorkflowLayout, detect,
};
pub use render::{CONFIG_PATH, WORKFLOW_PATH, scaffold};

/// Why `init` cannot look at a repository.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// The path is not a directory that can be read.
    #[error("{} is not a directory that can be read", .0.display())]
    NotADirectory(PathBuf),
}

/// How much a finding matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Something found and used.
    Info,
    /// Something skipped or guessed: check the written configuration.
    Warning,
}

/// One thing `init` found (or skipped) in a file of the repository.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    /// How much it matters.
    pub level: Level,
    /// The file, relative to the repository root.
    pub file: String,
    /// What was found, or why it was skipped.
    pub what: String,
}

impl Finding {
    fn info(file: &str, what: impl Into<String>) -> Finding {
        Finding {
            level: Level::Info,
            file: file.to_owned(),
            what: what.into(),
        }
    }

    fn warning(file: &str, what: impl Into<String>) -> Finding {
        Finding {
            level: Level::Warning,
            file: file.to_owned(),
            what: what.into(),
        }
    }
}

/// What `init` would write.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Scaffold {
    /// The files, relative to the repository root: `shipgate.toml` first.
    pub files: Vec<ScaffoldFile>,
    /// Repository secrets the workflow reads (set them in GitHub: Settings → Secrets).
    pub secrets: Vec<String>,
    /// Repository variables the workflow reads (Settings → Variables).
    pub variables: Vec<String>,
    /// What still needs a person: no target found, a guessed health path…
    pub todo: Vec<String>,
}

/// One file to write.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ScaffoldFile {
    /// The path, relative to the repository root, with `/` separators.
    pub path: String,
    /// The whole text.
    pub contents: String,
}

/// The README's examples, compiled (and run) as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
