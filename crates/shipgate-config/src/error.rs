//! Configuration errors that name the origin, the key, the line and the fix.

use std::fmt;
use std::path::{Path, PathBuf};

use figment::error::Kind;

/// Where a configuration value (or problem) came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A configuration file, with the line when known.
    File {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: Option<usize>,
    },
    /// An environment variable.
    Variable(String),
    /// A command-line flag.
    Flag(String),
    /// A built-in default.
    Default,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File {
                path,
                line: Some(line),
            } => write!(f, "{}:{line}", path.display()),
            Origin::File { path, line: None } => write!(f, "{}", path.display()),
            Origin::Variable(name) => write!(f, "environment variable {name}"),
            Origin::Flag(flag) => write!(f, "flag {flag}"),
            Origin::Default => f.write_str("built-in default"),
        }
    }
}

/// One thing wrong with the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// Where the bad value came from.
    pub origin: Origin,
    /// The dotted key, when the problem is about one.
    pub key: Option<String>,
    /// 1-based line in the file, when known (also inside `origin`).
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: Option<String>,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.origin)?;
        if let Some(key) = &self.key {
            write!(f, "`{key}`: ")?;
        }
        // A quoted value is cut to an excerpt: a 10 MB value is not echoed whole.
        f.write_str(&shipgate_core::shorten_quoted(&self.message))?;
        if let Some(hint) = &self.hint {
            write!(f, " (fix: {})", shipgate_core::shorten_quoted(hint))?;
        }
        Ok(())
    }
}

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read configuration file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The configuration is invalid; every problem found is listed.
    #[error("invalid configuration:\n{}", ProblemList(.0))]
    Invalid(Vec<ConfigProblem>),
}

struct ProblemList<'a>(&'a [ConfigProblem]);

impl fmt::Display for ProblemList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "  - {problem}")?;
        }
        Ok(())
    }
}

/// The closest candidate to `input`, if it is close enough to be a likely typo.
pub(crate) fn nearest<'a>(input: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (strsim::jaro_winkler(input, c), *c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// The kind of a value figment found (`a string`), without the value itself.
fn kind_of(actual: &figment::error::Actual) -> &'static str {
    use figment::error::Actual;
    match actual {
        Actual::Bool(_) => "a boolean",
        Actual::Unsigned(_) | Actual::Signed(_) => "an integer",
        Actual::Float(_) => "a number",
        Actual::Char(_) => "a character",
        Actual::Str(_) => "a string",
        Actual::Bytes(_) => "bytes",
        Actual::Unit | Actual::Option => "nothing",
        Actual::Seq => "a list",
        Actual::Map => "a table",
        _ => "another kind of value",
    }
}

/// What serde expected, in words (`u32` is Rust's name for a whole number).
fn in_words(expected: &str) -> String {
    match expected {
        "u8" => "a whole number from 0 to 255".to_owned(),
        "u16" => "a whole number from 0 to 65535".to_owned(),
        "u32" | "u64" | "usize" => "a whole number, 0 or more".to_owned(),
        "i32" | "i64" | "isize" => "a whole number".to_owned(),
        "f32" | "f64" => "a number".to_owned(),
        "bool" => "true or false".to_owned(),
        other => other.to_owned(),
    }
}

pub(crate) fn problem_from_figment(
    err: figment::Error,
    file: Option<&Path>,
    lines: Option<&crate::locate::SourceLines>,
) -> ConfigProblem {
    let mut segments: Vec<String> = err.path.clone();
    let (message, hint) = match &err.kind {
        Kind::UnknownField(field, expected) => {
            if segments.last() != Some(field) {
                segments.push(field.clone());
            }
            let hint = match nearest(field, expected) {
                Some(near) => format!("did you mean `{near}`?"),
                None if expected.is_empty() => "remove it".to_owned(),
                None => format!("valid keys here: {}", expected.join(", ")),
            };
            (format!("unknown key `{field}`"), Some(hint))
        }
        Kind::MissingField(field) => {
            if segments.last().map(String::as_str) != Some(field.as_ref()) {
                segments.push(field.to_string());
            }
            (
                format!("missing required key `{field}`"),
                Some(format!("add `{field} = …`")),
            )
        }
        // What was found is named by its kind, never quoted: a value may be a secret.
        Kind::InvalidType(actual, expected) => (
            format!("expected {}, found {}", in_words(expected), kind_of(actual)),
            None,
        ),
        Kind::InvalidValue(actual, expected) => (
            format!(
                "invalid {}, expected {}",
                kind_of(actual),
                in_words(expected)
            ),
            None,
        ),
        Kind::UnknownVariant(variant, expected) => (
            format!("unknown value `{variant}`"),
            Some(match nearest(variant, expected) {
                Some(near) => format!("did you mean `{near}`?"),
                None => format!("use one of: {}", expected.join(", ")),
            }),
        ),
        Kind::DuplicateField(field) => (format!("key `{field}` is set twice"), None),
        Kind::InvalidLength(len, expected) => {
            (format!("has {len} elements, expected {expected}"), None)
        }
        Kind::Message(message) => (message.clone(), None),
        other => (other.to_string(), None),
    };
    let refs: Vec<&str> = segments.iter().map(String::as_str).collect();
    let origin = match &err.metadata {
        Some(metadata) => crate::origin_from(metadata, &refs, file, lines),
        None => Origin::Default,
    };
    let line = match &origin {
        Origin::File { line, .. } => *line,
        _ => None,
    };
    // A table made by variables alone misses a key: say how to set it either way.
    let hint = match (&err.kind, &origin) {
        (Kind::MissingField(field), Origin::Variable(_)) => Some(format!(
            "the table [{}] comes from the variable(s) named; it also needs `{field}`: add it \
             to shipgate.toml or set SHIPGATE_{}",
            segments[..segments.len().saturating_sub(1)].join("."),
            segments.join("__").to_ascii_uppercase()
        )),
        _ => hint,
    };
    ConfigProblem {
        origin,
        key: (!segments.is_empty()).then(|| segments.join(".")),
        line,
        message,
        hint,
    }
}
