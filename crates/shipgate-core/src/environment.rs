//! Environment classification: development-like or production-like, fail-closed.

use std::fmt;

use serde::Serialize;

/// Names that make an environment development-like (compared case-insensitively).
pub const DEV_LIKE_NAMES: &[&str] = &["dev", "test", "local"];
/// Names that make an environment production-like (compared case-insensitively). Any other
/// name, and no name at all, is production-like too, but is reported as unrecognised.
pub const PROD_LIKE_NAMES: &[&str] = &["prod", "production", "staging"];

/// How strictly shipgate treats an environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EnvironmentKind {
    /// `dev`, `test`, `local`: missing variables are warnings, dotenv files are allowed.
    DevLike,
    /// `prod`, `production`, `staging`, anything else, or unset: missing variables fail,
    /// dotenv files, mutable tags and disabled TLS verification are refused.
    ProdLike,
}

impl EnvironmentKind {
    /// True for [`EnvironmentKind::ProdLike`].
    pub fn is_prod_like(self) -> bool {
        self == EnvironmentKind::ProdLike
    }
}

impl fmt::Display for EnvironmentKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EnvironmentKind::DevLike => "development-like",
            EnvironmentKind::ProdLike => "production-like",
        })
    }
}

/// Why an environment got its kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Classification {
    /// The name is one of [`DEV_LIKE_NAMES`] or [`PROD_LIKE_NAMES`].
    Recognised,
    /// The name is not a documented one: treated as production-like.
    Unrecognised,
    /// No environment was given: treated as production-like.
    Unset,
}

/// A named environment and its kind. The original name is kept as written.
///
/// ```
/// use shipgate_core::{Environment, EnvironmentKind};
/// assert_eq!(Environment::classify(Some("dev")).kind(), EnvironmentKind::DevLike);
/// assert_eq!(Environment::classify(Some("qa-eu")).kind(), EnvironmentKind::ProdLike);
/// assert_eq!(Environment::classify(None).kind(), EnvironmentKind::ProdLike);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Environment {
    name: Option<String>,
    kind: EnvironmentKind,
    classification: Classification,
}

impl Environment {
    /// Classifies an environment name. Surrounding whitespace is ignored and an empty name
    /// counts as unset; comparison is case-insensitive.
    pub fn classify(name: Option<&str>) -> Environment {
        let name = name.map(str::trim).filter(|n| !n.is_empty());
        let Some(name) = name else {
            return Environment {
                name: None,
                kind: EnvironmentKind::ProdLike,
                classification: Classification::Unset,
            };
        };
        let matches = |list: &[&str]| list.iter().any(|n| n.eq_ignore_ascii_case(name));
        let (kind, classification) = if matches(DEV_LIKE_NAMES) {
            (EnvironmentKind::DevLike, Classification::Recognised)
        } else if matches(PROD_LIKE_NAMES) {
            (EnvironmentKind::ProdLike, Classification::Recognised)
        } else {
            (EnvironmentKind::ProdLike, Classification::Unrecognised)
        };
        Environment {
            name: Some(name.to_owned()),
            kind,
            classification,
        }
    }

    /// The name as given, if any.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The kind.
    pub fn kind(&self) -> EnvironmentKind {
        self.kind
    }

    /// Whether the name was recognised, unrecognised or missing.
    pub fn classification(&self) -> Classification {
        self.classification
    }
}

impl fmt::Display for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.name, self.classification) {
            (None, _) => write!(f, "(unset, treated as {})", self.kind),
            (Some(name), Classification::Unrecognised) => {
                write!(
                    f,
                    "{name} (not a documented name, treated as {})",
                    self.kind
                )
            }
            (Some(name), _) => write!(f, "{name} ({})", self.kind),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_names() {
        for name in ["dev", "test", "local", "DEV", " Local "] {
            let env = Environment::classify(Some(name));
            assert_eq!(env.kind(), EnvironmentKind::DevLike, "{name}");
            assert_eq!(env.classification(), Classification::Recognised);
        }
        for name in ["prod", "production", "staging", "Production"] {
            let env = Environment::classify(Some(name));
            assert_eq!(env.kind(), EnvironmentKind::ProdLike, "{name}");
            assert_eq!(env.classification(), Classification::Recognised);
        }
    }

    #[test]
    fn unknown_and_unset_fail_closed() {
        let env = Environment::classify(Some("development"));
        assert_eq!(env.kind(), EnvironmentKind::ProdLike);
        assert_eq!(env.classification(), Classification::Unrecognised);
        assert_eq!(env.name(), Some("development"));
        assert!(env.to_string().contains("treated as production-like"));
        for unset in [None, Some(""), Some("   ")] {
            let env = Environment::classify(unset);
            assert_eq!(env.kind(), EnvironmentKind::ProdLike);
            assert_eq!(env.classification(), Classification::Unset);
        }
    }
}
