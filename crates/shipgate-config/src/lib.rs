//! shipgate configuration: `shipgate.toml`, `SHIPGATE_*` variables and the seed workflows'
//! variable names, merged by figment into one typed [`Config`] and validated.
//!
//! Precedence, lowest first:
//! 1. built-in defaults;
//! 2. CI variables that are always set (`GITHUB_SHA`, `GITHUB_REPOSITORY`, `GITHUB_API_URL`),
//!    which only fill keys the file leaves unset;
//! 3. `shipgate.toml`;
//! 4. seed variables ([`SEED_VARIABLES`], `runtime_target`);
//! 5. `SHIPGATE_*` variables (`SHIPGATE_SMOKE__BASE_URL`);
//! 6. command-line overrides ([`LoadOptions::overrides`]).
//!
//! Variables are passed in as a map: this crate never reads the process environment.
//!
//! ```
//! use std::collections::BTreeMap;
//! use shipgate_config::{load, LoadOptions};
//!
//! let vars = BTreeMap::from([
//!     ("ENVIRONMENT".to_owned(), "staging".to_owned()),
//!     ("ENABLE_HELM_DEPLOY".to_owned(), "true".to_owned()),
//! ]);
//! let loaded = load(&LoadOptions { file: None, vars: &vars, overrides: &[] }).unwrap();
//! assert_eq!(loaded.config.environment.as_deref(), Some("staging"));
//! assert!(loaded.config.targets.helm.enabled);
//! ```

mod error;
mod locate;
mod schema;
mod validate;
mod variables;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use figment::value::{Dict, Value};
use figment::{Figment, Metadata, Provider};

pub use error::{ConfigError, ConfigProblem, Origin};
pub use schema::*;
pub use validate::{
    MAX_ATTEMPTS, MAX_MONITOR_CONCURRENCY, MAX_SAMPLES, MAX_SMOKE_CONCURRENCY, MAX_STREAK,
    MIN_FLY_LEASE_TTL_S, MIN_LOCK_TTL_S, is_variable_name,
};
pub use variables::{
    AMBIENT_VARIABLES, CONFLICTING_VARIABLES, RESERVED_SHIPGATE_VARIABLES,
    RUNTIME_TARGET_VARIABLES, SEED_VARIABLES, SeedValue, SeedVariable, TargetListError,
    deploy_switches, parse_runtime_target,
};

/// The conventional configuration file name, looked up in the working directory.
pub const DEFAULT_FILE_NAME: &str = "shipgate.toml";

/// What to load.
#[derive(Debug, Clone, Copy)]
pub struct LoadOptions<'a> {
    /// The configuration file; `None` means defaults and variables only.
    pub file: Option<&'a Path>,
    /// The variables to read (normally a snapshot of the process environment, taken by the
    /// binary).
    pub vars: &'a BTreeMap<String, String>,
    /// Command-line overrides: (dotted key, value, flag name), highest precedence.
    pub overrides: &'a [(&'a str, &'a str, &'a str)],
}

/// A loaded, validated configuration.
#[derive(Debug)]
pub struct Loaded {
    /// The configuration.
    pub config: Config,
    /// The file it came from, if any.
    pub file: Option<PathBuf>,
    figment: Figment,
    /// The merged value tree, computed on the first origin lookup and reused: figment clones
    /// the whole tree on every lookup of its own.
    merged: std::sync::OnceLock<Value>,
    lines: Option<locate::SourceLines>,
}

impl Loaded {
    /// Describes where a key's value came from: `shipgate.toml:12`, `environment variable
    /// DEPLOY_ENVIRONMENT`, `flag --environment`, or `None` for a built-in default.
    ///
    /// A key that is absent (or inside an array) is attributed to its deepest present parent,
    /// with the line of the deepest part found in the file.
    pub fn origin_of(&self, key: &str) -> Option<Origin> {
        let segments: Vec<&str> = key.split('.').collect();
        let metadata = (1..=segments.len()).rev().find_map(|n| {
            let merged = self.merged.get_or_init(|| {
                self.figment
                    .find_value("")
                    .unwrap_or_else(|_| Value::from(Dict::new()))
            });
            let value = merged.find_ref(&segments[..n].join("."))?;
            self.figment.get_metadata(value.tag())
        })?;
        Some(origin_from(
            metadata,
            &segments,
            self.file.as_deref(),
            self.lines.as_ref(),
        ))
    }
}

impl Loaded {
    /// Makes the relative paths written in the file relative to the file, not to the
    /// directory shipgate runs in (`[secrets]` `dir` and `dotenv` sources, `[env] sample`),
    /// so that every command finds them wherever it is started. Paths set by variables or
    /// flags stay relative to the current directory, as a shell user expects.
    fn anchor_file_paths(&mut self) {
        let Some(dir) = self.file.as_deref().and_then(Path::parent) else {
            return;
        };
        if matches!(self.origin_of("env.sample"), Some(Origin::File { .. }))
            && let Some(sample) = self.config.env.sample.as_mut()
            && sample.is_relative()
        {
            *sample = dir.join(&*sample);
        }
        let from_file: Vec<usize> = (0..self.config.secrets.sources.len())
            .filter(|i| {
                matches!(
                    self.origin_of(&format!("secrets.sources.{i}.path")),
                    Some(Origin::File { .. })
                )
            })
            .collect();
        for i in from_file {
            if let Some(
                SecretSourceConfig::Dir { path, .. } | SecretSourceConfig::Dotenv { path, .. },
            ) = self.config.secrets.sources.get_mut(i)
                && path.is_relative()
            {
                *path = dir.join(&*path);
            }
        }
    }
}

/// Loads and validates the configuration. On error nothing is partially returned: every
/// problem found is listed, each with its origin, key and (for files) line.
pub fn load(options: &LoadOptions<'_>) -> Result<Loaded, ConfigError> {
    let mut figment = Figment::new();
    let ambient = variables::ambient(options.vars);
    if !ambient.is_empty() {
        figment = figment.merge(ambient);
    }

    let mut lines = None;
    if let Some(path) = options.file {
        let (values, file_lines) = read_toml(path)?;
        figment = figment.merge(TomlFile {
            path: path.to_owned(),
            values: std::sync::Mutex::new(Some(values)),
        });
        lines = Some(file_lines);
    }

    let (seed, seed_problems) = variables::seed(options.vars);
    if !seed_problems.is_empty() {
        let problems = seed_problems
            .into_iter()
            .map(|(name, message)| ConfigProblem {
                origin: Origin::Variable(name),
                key: None,
                line: None,
                message,
                hint: None,
            })
            .collect();
        return Err(ConfigError::Invalid(problems));
    }
    figment = figment.merge(seed).merge(variables::shipgate(options.vars));

    let mut flags = variables::EntriesProvider::new("command line");
    for (key, value, flag) in options.overrides {
        flags.set(key, Value::from((*value).to_owned()), flag);
    }
    figment = figment.merge(flags);

    let config: Config = figment.extract_lossy().map_err(|err| {
        ConfigError::Invalid(
            err.into_iter()
                .map(|e| error::problem_from_figment(e, options.file, lines.as_ref()))
                .collect(),
        )
    })?;

    let mut loaded = Loaded {
        config,
        file: options.file.map(Path::to_owned),
        figment,
        merged: std::sync::OnceLock::new(),
        lines,
    };
    loaded.anchor_file_paths();
    let problems = validate::validate(&loaded);
    if problems.is_empty() {
        Ok(loaded)
    } else {
        Err(ConfigError::Invalid(problems))
    }
}

/// A standalone smoke spec file (`shipgate smoke --spec FILE`): the keys of `[smoke]` at the
/// top level, validated like `[smoke]` in `shipgate.toml`.
#[derive(Debug)]
pub struct LoadedSpec {
    /// The spec.
    pub spec: SmokeConfig,
    /// The file it came from.
    pub file: PathBuf,
    lines: locate::SourceLines,
}

impl LoadedSpec {
    /// The origin of a key of the spec (`checks.0.path`): the file and the key's line.
    pub fn origin_of(&self, key: &str) -> Origin {
        let segments: Vec<&str> = key.split('.').collect();
        Origin::File {
            path: self.file.clone(),
            line: self.lines.line_of(&segments),
        }
    }
}

/// Loads a standalone smoke spec file. Errors are located like [`load`]'s.
pub fn load_smoke_spec(path: &Path) -> Result<LoadedSpec, ConfigError> {
    let (values, lines) = read_toml(path)?;
    let figment = Figment::new().merge(TomlFile {
        path: path.to_owned(),
        values: std::sync::Mutex::new(Some(values)),
    });
    let spec: SmokeConfig = figment.extract_lossy().map_err(|err| {
        ConfigError::Invalid(
            err.into_iter()
                .map(|e| error::problem_from_figment(e, Some(path), Some(&lines)))
                .collect(),
        )
    })?;
    let loaded = LoadedSpec {
        spec,
        file: path.to_owned(),
        lines,
    };
    let problems = validate::validate_spec(&loaded.spec, &|key| loaded.origin_of(key));
    if problems.is_empty() {
        Ok(loaded)
    } else {
        Err(ConfigError::Invalid(problems))
    }
}

/// Reads and parses a TOML file once: its values for figment, its text for line lookups.
fn read_toml(path: &Path) -> Result<(Dict, locate::SourceLines), ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    let parsed = locate::parse(&text, path).map_err(|p| ConfigError::Invalid(vec![*p]))?;
    let values = toml_edit::de::from_document::<Dict>(parsed).map_err(|err| {
        ConfigError::Invalid(vec![ConfigProblem {
            origin: Origin::File {
                path: path.to_owned(),
                line: None,
            },
            key: None,
            line: None,
            message: err.message().to_owned(),
            hint: None,
        }])
    })?;
    Ok((values, locate::SourceLines::new(text)))
}

pub(crate) fn origin_from(
    metadata: &Metadata,
    segments: &[&str],
    file: Option<&Path>,
    lines: Option<&locate::SourceLines>,
) -> Origin {
    match &metadata.source {
        Some(figment::Source::File(path)) => Origin::File {
            path: path.clone(),
            line: lines.and_then(|l| l.line_of(segments)),
        },
        _ if metadata.name == "command line" => {
            Origin::Flag(metadata.interpolate(&figment::Profile::Default, segments))
        }
        _ if metadata.name.ends_with("variables") => {
            Origin::Variable(metadata.interpolate(&figment::Profile::Default, segments))
        }
        _ => match file {
            Some(path) if metadata.name == DEFAULT_FILE_NAME => Origin::File {
                path: path.to_owned(),
                line: None,
            },
            _ => Origin::Default,
        },
    }
}

/// The parsed TOML file as a figment provider whose metadata names the file. Figment asks for
/// the data once, when the provider is merged, so the values are handed over rather than
/// cloned (a 500-variable file made that clone a measurable share of `check-env`).
struct TomlFile {
    path: PathBuf,
    values: std::sync::Mutex<Option<Dict>>,
}

impl Provider for TomlFile {
    fn metadata(&self) -> Metadata {
        Metadata::from(
            self.path.display().to_string(),
            figment::Source::File(self.path.clone()),
        )
    }

    fn data(
        &self,
    ) -> Result<figment::value::Map<figment::Profile, figment::value::Dict>, figment::Error> {
        let values = match self.values.lock() {
            Ok(mut slot) => slot.take().unwrap_or_default(),
            Err(poisoned) => poisoned.into_inner().take().unwrap_or_default(),
        };
        Ok(figment::Profile::Default.collect(values))
    }
}

/// The README's examples, compiled (and run) as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
