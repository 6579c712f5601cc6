//! Secret loading: ordered [`SecretSource`]s, a caching [`SecretResolver`], fingerprints, and
//! a log writer that masks every known secret value.
//!
//! Seed 002's rule is the default: production secrets are injected at run time (the process
//! environment); dotenv files are refused in production-like environments; a missing secret
//! stays missing and whatever needs it is reported disabled, never half-configured.
//!
//! ```
//! use std::collections::BTreeMap;
//! use shipgate_secrets::{EnvSource, Resolution, SecretResolver};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let vars = BTreeMap::from([("RAILWAY_TOKEN".to_owned(), "t0k3n-value".to_owned())]);
//! let resolver = SecretResolver::new(vec![Box::new(EnvSource::new("env", &vars))], BTreeMap::new());
//! match resolver.resolve("RAILWAY_TOKEN").await {
//!     Resolution::Found { source, .. } => assert_eq!(source, "env"),
//!     other => panic!("{other:?}"),
//! }
//! assert!(matches!(resolver.resolve("FLY_API_TOKEN").await, Resolution::Missing { .. }));
//! # });
//! ```

mod build;
mod files;
mod kubernetes;
mod log;
mod vault;

#[cfg(feature = "aws")]
mod aws;

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use sha2::{Digest, Sha256};
use shipgate_config::SecretKeyOverride;
use shipgate_core::{Redactor, Secret};
use tokio::sync::Mutex;

#[cfg(feature = "aws")]
pub use aws::{AwsCredentials, AwsSecretsManagerSource, WHOLE_SECRET};
pub use build::{BuildContext, BuildError, build_sources};
pub use files::{DirSource, DotenvSource, EnvSource};
pub use log::RedactingMakeWriter;
pub use vault::VaultSource;

/// What one source says about one key.
#[derive(Debug, Clone)]
pub enum Lookup {
    /// The source holds the key.
    Found(Secret),
    /// The source does not hold the key.
    Missing,
    /// The source could not answer (unreachable, denied, malformed). The reason names the
    /// source and key, never a value.
    Failed(String),
}

/// A place secrets come from.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait::async_trait]
pub trait SecretSource: Send + Sync {
    /// The name used in reports and `[secrets.keys]` overrides.
    fn name(&self) -> &str;

    /// The kind (`env`, `dir`, `dotenv`, `kubernetes`, `vault`, `aws-secrets-manager`).
    fn kind(&self) -> &'static str;

    /// Looks up `key`; `field` is the name inside the source when it differs from the key
    /// (`[secrets.keys.KEY] field = "…"`).
    async fn lookup<'a>(&'a self, key: &'a str, field: Option<&'a str>) -> Lookup;
}

/// The resolver's answer for one key.
#[derive(Debug, Clone)]
pub enum Resolution {
    /// Found in `source`.
    Found {
        /// The value.
        secret: Secret,
        /// The source's name.
        source: String,
    },
    /// No source holds it.
    Missing {
        /// The sources asked, in order.
        searched: Vec<String>,
    },
    /// A source failed before the key was found; resolution stopped there (fail closed: a
    /// later source must not silently stand in for a broken one).
    SourceFailed {
        /// The source's name.
        source: String,
        /// Why.
        reason: String,
    },
}

/// Ordered sources with per-key overrides and a per-run cache. Every value found is added to
/// the resolver's [`Redactor`].
pub struct SecretResolver {
    sources: Vec<Box<dyn SecretSource>>,
    overrides: BTreeMap<String, SecretKeyOverride>,
    cache: Mutex<HashMap<String, Resolution>>,
    redactor: Redactor,
}

impl std::fmt::Debug for SecretResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.sources.iter().map(|s| s.name()).collect();
        f.debug_struct("SecretResolver")
            .field("sources", &names)
            .finish_non_exhaustive()
    }
}

impl SecretResolver {
    /// A resolver over `sources` (first match wins) with `[secrets.keys]` overrides.
    pub fn new(
        sources: Vec<Box<dyn SecretSource>>,
        overrides: BTreeMap<String, SecretKeyOverride>,
    ) -> SecretResolver {
        SecretResolver {
            sources,
            overrides,
            cache: Mutex::new(HashMap::new()),
            redactor: Redactor::default(),
        }
    }

    /// Shares `redactor`: every value found is registered in it.
    pub fn with_redactor(mut self, redactor: Redactor) -> SecretResolver {
        self.redactor = redactor;
        self
    }

    /// The redactor holding every value found so far.
    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    /// The sources' names, in order.
    pub fn source_names(&self) -> Vec<String> {
        self.sources.iter().map(|s| s.name().to_owned()).collect()
    }

    /// Resolves `key`: its override's source only, else each source in order. Answers are
    /// cached for the resolver's lifetime (one run).
    pub async fn resolve(&self, key: &str) -> Resolution {
        let mut cache = self.cache.lock().await;
        if let Some(hit) = cache.get(key) {
            return hit.clone();
        }
        let resolution = self.resolve_uncached(key).await;
        if let Resolution::Found { secret, .. } = &resolution {
            self.redactor.add(secret);
        }
        cache.insert(key.to_owned(), resolution.clone());
        resolution
    }

    async fn resolve_uncached(&self, key: &str) -> Resolution {
        let (candidates, field): (Vec<&dyn SecretSource>, Option<&str>) =
            match self.overrides.get(key) {
                Some(over) => (
                    self.sources
                        .iter()
                        .filter(|s| s.name() == over.source)
                        .map(|s| s.as_ref())
                        .collect(),
                    over.field.as_deref(),
                ),
                None => (self.sources.iter().map(|s| s.as_ref()).collect(), None),
            };
        let mut searched = Vec::new();
        for source in candidates {
            searched.push(source.name().to_owned());
            tracing::debug!(key, source = source.name(), "looking up secret");
            match source.lookup(key, field).await {
                Lookup::Found(secret) => {
                    return Resolution::Found {
                        secret,
                        source: source.name().to_owned(),
                    };
                }
                Lookup::Missing => {}
                Lookup::Failed(reason) => {
                    tracing::warn!(key, source = source.name(), %reason, "secret source failed");
                    return Resolution::SourceFailed {
                        source: source.name().to_owned(),
                        reason,
                    };
                }
            }
        }
        Resolution::Missing { searched }
    }

    /// Resolves every key a provider needs: all found enables it; any missing disables it
    /// with the missing names (seed 002: "providers remain disabled"); a failed source is
    /// reported as such.
    pub async fn provider(&self, provider: &str, keys: &[&str]) -> ProviderSecrets {
        let mut found = BTreeMap::new();
        let mut missing = Vec::new();
        let mut failed = Vec::new();
        for key in keys {
            match self.resolve(key).await {
                Resolution::Found { secret, .. } => {
                    found.insert((*key).to_owned(), secret);
                }
                Resolution::Missing { .. } => missing.push((*key).to_owned()),
                Resolution::SourceFailed { source, reason } => {
                    failed.push(format!("{key} ({source}: {reason})"));
                }
            }
        }
        if !failed.is_empty() {
            ProviderSecrets::Failed {
                provider: provider.to_owned(),
                reasons: failed,
            }
        } else if !missing.is_empty() {
            ProviderSecrets::Disabled {
                provider: provider.to_owned(),
                missing,
            }
        } else {
            ProviderSecrets::Enabled(found)
        }
    }
}

/// The secrets of one provider: all of them, or why it is off.
#[derive(Debug, Clone)]
pub enum ProviderSecrets {
    /// Every key resolved.
    Enabled(BTreeMap<String, Secret>),
    /// Some keys are missing; the provider stays off.
    Disabled {
        /// The provider.
        provider: String,
        /// The missing keys.
        missing: Vec<String>,
    },
    /// A source failed for some keys.
    Failed {
        /// The provider.
        provider: String,
        /// `KEY (source: reason)` per key.
        reasons: Vec<String>,
    },
}

/// A short, salted fingerprint of a secret: the first 8 hex digits of SHA-256(salt ‖ value).
/// It tells two versions of a secret apart without revealing either; with a per-installation
/// salt it cannot be looked up in a precomputed table.
pub fn fingerprint(secret: &Secret, salt: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(salt);
    hasher.update(secret.expose().as_bytes());
    let digest = hasher.finalize();
    digest[..4].iter().map(|b| format!("{b:02x}")).collect()
}

/// One key's line in `shipgate secrets check`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyStatus {
    /// The key.
    pub key: String,
    /// `found`, `missing` or `source-failed`.
    pub status: &'static str,
    /// The source that answered (found or failed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The salted fingerprint of the value, when found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// Why the source failed, or which sources were searched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl KeyStatus {
    /// The status of `key` from its resolution.
    pub fn from_resolution(key: &str, resolution: &Resolution, salt: &[u8]) -> KeyStatus {
        match resolution {
            Resolution::Found { secret, source } => KeyStatus {
                key: key.to_owned(),
                status: "found",
                source: Some(source.clone()),
                fingerprint: Some(fingerprint(secret, salt)),
                detail: None,
            },
            Resolution::Missing { searched } => KeyStatus {
                key: key.to_owned(),
                status: "missing",
                source: None,
                fingerprint: None,
                detail: Some(format!("searched: {}", searched.join(", "))),
            },
            Resolution::SourceFailed { source, reason } => KeyStatus {
                key: key.to_owned(),
                status: "source-failed",
                source: Some(source.clone()),
                fingerprint: None,
                detail: Some(reason.clone()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(&'static str, Lookup);

    #[async_trait::async_trait]
    impl SecretSource for Fixed {
        fn name(&self) -> &str {
            self.0
        }
        fn kind(&self) -> &'static str {
            "fixed"
        }
        async fn lookup<'a>(&'a self, _key: &'a str, _field: Option<&'a str>) -> Lookup {
            self.1.clone()
        }
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
    }

    #[test]
    fn first_source_with_the_key_wins_and_a_failure_stops_the_search() {
        rt().block_on(async {
            let resolver = SecretResolver::new(
                vec![
                    Box::new(Fixed("a", Lookup::Missing)),
                    Box::new(Fixed("b", Lookup::Found(Secret::new("from-b-value")))),
                    Box::new(Fixed("c", Lookup::Found(Secret::new("from-c-value")))),
                ],
                BTreeMap::new(),
            );
            match resolver.resolve("K").await {
                Resolution::Found { secret, source } => {
                    assert_eq!((secret.expose(), source.as_str()), ("from-b-value", "b"));
                }
                other => panic!("{other:?}"),
            }
            assert_eq!(resolver.redactor().redact("x from-b-value"), "x [redacted]");

            let failing = SecretResolver::new(
                vec![
                    Box::new(Fixed("down", Lookup::Failed("unreachable".into()))),
                    Box::new(Fixed("b", Lookup::Found(Secret::new("v")))),
                ],
                BTreeMap::new(),
            );
            assert!(matches!(failing.resolve("K").await, Resolution::SourceFailed { source, .. } if source == "down"));
        });
    }

    #[test]
    fn an_override_asks_only_its_source() {
        rt().block_on(async {
            let overrides = BTreeMap::from([(
                "K".to_owned(),
                SecretKeyOverride {
                    source: "c".into(),
                    field: Some("f".into()),
                },
            )]);
            let resolver = SecretResolver::new(
                vec![
                    Box::new(Fixed("b", Lookup::Found(Secret::new("from-b")))),
                    Box::new(Fixed("c", Lookup::Missing)),
                ],
                overrides,
            );
            match resolver.resolve("K").await {
                Resolution::Missing { searched } => assert_eq!(searched, ["c"]),
                other => panic!("{other:?}"),
            }
        });
    }

    #[test]
    fn a_provider_with_a_missing_key_is_disabled_with_the_names() {
        rt().block_on(async {
            let resolver =
                SecretResolver::new(vec![Box::new(Fixed("a", Lookup::Missing))], BTreeMap::new());
            match resolver.provider("railway", &["RAILWAY_TOKEN"]).await {
                ProviderSecrets::Disabled { provider, missing } => {
                    assert_eq!(
                        (provider.as_str(), missing),
                        ("railway", vec!["RAILWAY_TOKEN".to_owned()])
                    );
                }
                other => panic!("{other:?}"),
            }
        });
    }

    #[test]
    fn debug_and_display_of_results_never_show_a_value() {
        let canary = "canary-lib-debug-5e1f";
        let found = Resolution::Found {
            secret: Secret::new(canary),
            source: "env".into(),
        };
        let provider =
            ProviderSecrets::Enabled(BTreeMap::from([("K".to_owned(), Secret::new(canary))]));
        let lookup = Lookup::Found(Secret::new(canary));
        for text in [
            format!("{found:?}"),
            format!("{provider:?}"),
            format!("{lookup:?}"),
        ] {
            assert!(!text.contains(canary), "{text}");
            assert!(text.contains("[redacted]"), "{text}");
        }
    }

    #[test]
    fn fingerprints_are_salted_and_short() {
        let s = Secret::new("hunter2");
        assert_eq!(fingerprint(&s, b"salt").len(), 8);
        assert_eq!(
            fingerprint(&s, b"salt"),
            fingerprint(&Secret::new("hunter2"), b"salt")
        );
        assert_ne!(fingerprint(&s, b"salt"), fingerprint(&s, b"pepper"));
        assert_ne!(
            fingerprint(&s, b"salt"),
            fingerprint(&Secret::new("hunter3"), b"salt")
        );
    }
}

/// The README's examples, compiled (and run) as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
