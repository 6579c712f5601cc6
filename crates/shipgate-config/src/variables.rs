//! Configuration from variables: the seed workflows' names and `SHIPGATE_*`.
//!
//! The caller passes the variables as a map; this crate never reads the process environment.
//! An empty value counts as unset, because GitHub Actions expands an undefined
//! `${{ vars.X }}` to an empty string.

use std::collections::BTreeMap;
use std::sync::Arc;

use figment::value::{Dict, Map, Value};
use figment::{Error, Metadata, Profile, Provider};

/// How a variable's value becomes a configuration value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeedValue {
    /// Taken as written; booleans and numbers are interpreted where the schema expects them.
    Text,
    /// A list separated by spaces and/or commas.
    List,
}

/// One seed variable and the configuration key it sets.
#[derive(Debug, Clone, Copy)]
pub struct SeedVariable {
    /// Variable name, exactly as the seed workflows spell it.
    pub name: &'static str,
    /// Dotted configuration key.
    pub key: &'static str,
    /// How the value is read.
    pub value: SeedValue,
}

const fn text(name: &'static str, key: &'static str) -> SeedVariable {
    SeedVariable {
        name,
        key,
        value: SeedValue::Text,
    }
}

/// Seed variables that override `shipgate.toml`. When several set one key, the first listed
/// that is set wins (`DEPLOY_ENVIRONMENT` before `ENVIRONMENT`, `image_tag` before
/// `IMAGE_TAG`).
pub const SEED_VARIABLES: &[SeedVariable] = &[
    text("DEPLOY_ENVIRONMENT", "environment"),
    text("ENVIRONMENT", "environment"),
    text("ENABLE_HELM_DEPLOY", "targets.helm.enabled"),
    text("ENABLE_RAILWAY_DEPLOY", "targets.railway.enabled"),
    text("ENABLE_FLY_DEPLOY", "targets.fly.enabled"),
    text("ENABLE_DEPLOY_SMOKE_GATE", "smoke.enabled"),
    text("ENABLE_AUTO_ROLLBACK", "rollback.auto"),
    text("PRODUCTION_API_URL", "smoke.base_url"),
    text("PRODUCTION_API_KEY_HEADER", "smoke.api_key_header"),
    text("image_tag", "image.tag"),
    text("IMAGE_TAG", "image.tag"),
    text("HELM_RELEASE_NAME", "targets.helm.release"),
    text("HELM_NAMESPACE", "targets.helm.namespace"),
    text("HELM_BIN", "targets.helm.helm_bin"),
    text("RAILWAY_PROJECT", "targets.railway.project"),
    text("RAILWAY_PROJECT_ID", "targets.railway.project"),
    text("RAILWAY_ENVIRONMENT", "targets.railway.environment"),
    text("RAILWAY_WORKSPACE", "targets.railway.workspace"),
    text("RAILWAY_API_SERVICE", "targets.railway.services.api"),
    text("RAILWAY_WORKER_SERVICE", "targets.railway.services.worker"),
    text("FLY_APP", "targets.fly.app"),
    SeedVariable {
        name: "PROD_REQUIRED_ENV_VARS",
        key: "env.required",
        value: SeedValue::List,
    },
];

/// The deploy switches among the seed variables (`ENABLE_HELM_DEPLOY`, …,
/// `ENABLE_AUTO_ROLLBACK`), booleans that turn a target or a step on, in table order.
pub fn deploy_switches() -> impl Iterator<Item = &'static str> {
    SEED_VARIABLES
        .iter()
        .map(|v| v.name)
        .filter(|name| name.starts_with("ENABLE_"))
}

/// Variables every CI run sets by itself; they fill a key only when `shipgate.toml` leaves
/// it unset (a `GITHUB_SHA` must not override a tag pinned in the file).
pub const AMBIENT_VARIABLES: &[SeedVariable] = &[
    text("GITHUB_SHA", "image.tag"),
    text("GITHUB_REPOSITORY", "github.repository"),
    text("GITHUB_API_URL", "github.api_url"),
];

/// Variables that choose targets: `helm`, `railway`, `fly`, `local`, `both` (helm and
/// railway), `all` (helm, railway and fly), or a comma-separated list. They override
/// `ENABLE_*_DEPLOY`: the named targets are enabled and the others disabled.
pub const RUNTIME_TARGET_VARIABLES: &[&str] = &["runtime_target", "RUNTIME_TARGET"];

/// The `SHIPGATE_` variables that are not configuration keys.
pub const RESERVED_SHIPGATE_VARIABLES: &[&str] = &["SHIPGATE_CONFIG", "SHIPGATE_LOG"];

/// Variable pairs that contradict each other when both are set to different values.
pub const CONFLICTING_VARIABLES: &[(&str, &str)] = &[("RAILWAY_PROJECT", "RAILWAY_PROJECT_ID")];

/// Why a `runtime_target` (or `--target`) value names no targets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TargetListError {
    /// A part names no target.
    #[error(
        "`{part}` is not a target; use helm, railway, fly, local, both, all, or a comma-separated list"
    )]
    Unknown {
        /// The part.
        part: String,
    },
    /// The value names nothing.
    #[error("no target named; use helm, railway, fly, local, both or all")]
    Empty,
}

/// Parses a `runtime_target` value into target names.
pub fn parse_runtime_target(raw: &str) -> Result<Vec<&'static str>, TargetListError> {
    let mut out: Vec<&'static str> = Vec::new();
    for part in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let names: &[&'static str] = match part.to_ascii_lowercase().as_str() {
            "helm" => &["helm"],
            "railway" => &["railway"],
            "fly" => &["fly"],
            "local" => &["local"],
            "both" => &["helm", "railway"],
            "all" => &["helm", "railway", "fly"],
            _ => {
                return Err(TargetListError::Unknown {
                    part: part.to_owned(),
                });
            }
        };
        for name in names {
            if !out.contains(name) {
                out.push(name);
            }
        }
    }
    if out.is_empty() {
        return Err(TargetListError::Empty);
    }
    Ok(out)
}

/// A figment provider over (key, value, origin) entries, whose errors name the origin
/// (a variable or a flag) instead of a key.
#[derive(Debug, Clone)]
pub(crate) struct EntriesProvider {
    name: &'static str,
    entries: Vec<(String, Value, String)>,
}

impl EntriesProvider {
    pub(crate) fn new(name: &'static str) -> EntriesProvider {
        EntriesProvider {
            name,
            entries: Vec::new(),
        }
    }

    /// Adds an entry unless the key is already set by an earlier one.
    pub(crate) fn set_if_absent(&mut self, key: &str, value: Value, origin: &str) {
        if !self.entries.iter().any(|(k, _, _)| k == key) {
            self.entries
                .push((key.to_owned(), value, origin.to_owned()));
        }
    }

    /// Adds or replaces an entry.
    pub(crate) fn set(&mut self, key: &str, value: Value, origin: &str) {
        self.entries.retain(|(k, _, _)| k != key);
        self.entries
            .push((key.to_owned(), value, origin.to_owned()));
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl Provider for EntriesProvider {
    fn metadata(&self) -> Metadata {
        let origins: Arc<BTreeMap<String, String>> = Arc::new(
            self.entries
                .iter()
                .map(|(k, _, origin)| (k.clone(), origin.clone()))
                .collect(),
        );
        Metadata::named(self.name).interpolater(move |_profile: &Profile, keys: &[&str]| {
            // The deepest entry that is a prefix of the failing key names its origin; else
            // (a key missing from a table the entries created) the entries under the deepest
            // table that has some.
            let mut path = keys.join(".");
            loop {
                if let Some(origin) = origins.get(&path) {
                    return origin.clone();
                }
                let under = format!("{path}.");
                let inside: Vec<&str> = origins
                    .iter()
                    .filter(|(key, _)| key.starts_with(&under))
                    .map(|(_, origin)| origin.as_str())
                    .collect();
                if !inside.is_empty() {
                    return inside.join(", ");
                }
                match path.rfind('.') {
                    Some(i) => path.truncate(i),
                    None => return keys.join("."),
                }
            }
        })
    }

    fn data(&self) -> Result<Map<Profile, Dict>, Error> {
        let mut root = Dict::new();
        for (key, value, _) in &self.entries {
            insert_dotted(&mut root, key, value.clone());
        }
        Ok(Profile::Default.collect(root))
    }
}

fn insert_dotted(root: &mut Dict, key: &str, value: Value) {
    let mut parts: Vec<&str> = key.split('.').collect();
    let Some(last) = parts.pop() else { return };
    let mut dict = root;
    for part in parts {
        let entry = dict
            .entry(part.to_owned())
            .or_insert_with(|| Value::from(Dict::new()));
        if !matches!(entry, Value::Dict(..)) {
            *entry = Value::from(Dict::new());
        }
        let Value::Dict(_, inner) = entry else { return };
        dict = inner;
    }
    dict.insert(last.to_owned(), value);
}

fn list_value(raw: &str) -> Value {
    let items: Vec<Value> = raw
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(Value::from)
        .collect();
    Value::from(items)
}

fn value_of(raw: &str) -> Value {
    let trimmed = raw.trim();
    match trimmed.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
        Some(inner) => list_value(inner),
        None => Value::from(trimmed.to_owned()),
    }
}

/// Reads a variable, treating an empty or whitespace-only value as unset.
pub(crate) fn get<'a>(vars: &'a BTreeMap<String, String>, name: &str) -> Option<&'a str> {
    vars.get(name).map(|v| v.trim()).filter(|v| !v.is_empty())
}

/// Builds the provider for [`AMBIENT_VARIABLES`].
pub(crate) fn ambient(vars: &BTreeMap<String, String>) -> EntriesProvider {
    let mut provider = EntriesProvider::new("CI variables");
    for seed in AMBIENT_VARIABLES {
        if let Some(raw) = get(vars, seed.name) {
            provider.set_if_absent(seed.key, Value::from(raw.to_owned()), seed.name);
        }
    }
    provider
}

/// Builds the provider for [`SEED_VARIABLES`] and [`RUNTIME_TARGET_VARIABLES`]. Returns
/// problems (variable, message) for values that cannot be read at all.
pub(crate) fn seed(vars: &BTreeMap<String, String>) -> (EntriesProvider, Vec<(String, String)>) {
    let mut provider = EntriesProvider::new("seed variables");
    let mut problems = Vec::new();
    for seed in SEED_VARIABLES {
        if let Some(raw) = get(vars, seed.name) {
            let value = match seed.value {
                SeedValue::Text => Value::from(raw.to_owned()),
                SeedValue::List => list_value(raw),
            };
            provider.set_if_absent(seed.key, value, seed.name);
        }
    }
    for (a, b) in CONFLICTING_VARIABLES {
        if let (Some(va), Some(vb)) = (get(vars, a), get(vars, b))
            && va != vb
        {
            problems.push((
                (*a).to_owned(),
                format!("{a} and {b} are both set, to different values; set only one"),
            ));
        }
    }
    if let Some((name, raw)) = RUNTIME_TARGET_VARIABLES
        .iter()
        .find_map(|n| get(vars, n).map(|v| (*n, v)))
    {
        match parse_runtime_target(raw) {
            Ok(chosen) => {
                for target in ["helm", "railway", "fly", "local"] {
                    let key = format!("targets.{target}.enabled");
                    provider.set(&key, Value::from(chosen.contains(&target)), name);
                }
            }
            Err(err) => problems.push((name.to_owned(), err.to_string())),
        }
    }
    (provider, problems)
}

/// Builds the provider for `SHIPGATE_*` variables: `SHIPGATE_SMOKE__BASE_URL` sets
/// `smoke.base_url` (`__` separates levels; names are lowercased). `[a, b]` is a list.
pub(crate) fn shipgate(vars: &BTreeMap<String, String>) -> EntriesProvider {
    let mut provider = EntriesProvider::new("SHIPGATE_ variables");
    for (name, raw) in vars {
        let Some(rest) = name.strip_prefix("SHIPGATE_") else {
            continue;
        };
        if RESERVED_SHIPGATE_VARIABLES.contains(&name.as_str()) || rest.is_empty() {
            continue;
        }
        if raw.trim().is_empty() {
            continue;
        }
        let key = rest.to_ascii_lowercase().replace("__", ".");
        provider.set(&key, value_of(raw), name);
    }
    provider
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_target_values() {
        assert_eq!(
            parse_runtime_target("both").unwrap(),
            vec!["helm", "railway"]
        );
        assert_eq!(parse_runtime_target("HELM").unwrap(), vec!["helm"]);
        assert_eq!(
            parse_runtime_target("fly, local").unwrap(),
            vec!["fly", "local"]
        );
        assert_eq!(
            parse_runtime_target("all,helm").unwrap(),
            vec!["helm", "railway", "fly"]
        );
        assert!(
            parse_runtime_target("kubernetes")
                .unwrap_err()
                .to_string()
                .contains("`kubernetes`")
        );
        assert!(parse_runtime_target(" , ").is_err());
    }

    #[test]
    fn lists_split_on_spaces_and_commas() {
        let Value::Array(_, items) = list_value("A B,C ,, D") else {
            panic!("not a list")
        };
        let names: Vec<_> = items.iter().filter_map(|v| v.as_str()).collect();
        assert_eq!(names, ["A", "B", "C", "D"]);
    }
}
