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

use figment::providers::{Format, Toml};
use figment::value::Value;
use figment::{Figment, Metadata, Provider};

pub use error::{ConfigError, ConfigProblem, Origin};
pub use schema::*;
pub use validate::is_variable_name;
pub use variables::{
    AMBIENT_VARIABLES, CONFLICTING_VARIABLES, RESERVED_SHIPGATE_VARIABLES,
    RUNTIME_TARGET_VARIABLES, SEED_VARIABLES, SeedValue, SeedVariable, parse_runtime_target,
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
    document: Option<toml_edit::ImDocument<String>>,
}

impl Loaded {
    /// Describes where a key's value came from: `shipgate.toml:12`, `environment variable
    /// DEPLOY_ENVIRONMENT`, `flag --environment`, or `None` for a built-in default.
    ///
    /// A key that is absent (or inside an array) is attributed to its deepest present parent,
    /// with the line of the deepest part found in the file.
    pub fn origin_of(&self, key: &str) -> Option<Origin> {
        let segments: Vec<&str> = key.split('.').collect();
        let metadata = (1..=segments.len())
            .rev()
            .find_map(|n| self.figment.find_metadata(&segments[..n].join(".")))?;
        Some(origin_from(
            metadata,
            &segments,
            self.file.as_deref(),
            self.document.as_ref(),
        ))
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

    let mut document = None;
    if let Some(path) = options.file {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let parsed = match locate::parse(&text, path) {
            Ok(parsed) => parsed,
            Err(problem) => return Err(ConfigError::Invalid(vec![*problem])),
        };
        figment = figment.merge(TomlFile {
            path: path.to_owned(),
            text,
        });
        document = Some(parsed);
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
                .map(|e| error::problem_from_figment(e, options.file, document.as_ref()))
                .collect(),
        )
    })?;

    let loaded = Loaded {
        config,
        file: options.file.map(Path::to_owned),
        figment,
        document,
    };
    let problems = validate::validate(&loaded);
    if problems.is_empty() {
        Ok(loaded)
    } else {
        Err(ConfigError::Invalid(problems))
    }
}

pub(crate) fn origin_from(
    metadata: &Metadata,
    segments: &[&str],
    file: Option<&Path>,
    document: Option<&toml_edit::ImDocument<String>>,
) -> Origin {
    match &metadata.source {
        Some(figment::Source::File(path)) => Origin::File {
            path: path.clone(),
            line: document.and_then(|d| locate::line_of(d, segments)),
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

/// The TOML file as a figment provider whose metadata names the file.
struct TomlFile {
    path: PathBuf,
    text: String,
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
        Toml::string(&self.text).data()
    }
}
