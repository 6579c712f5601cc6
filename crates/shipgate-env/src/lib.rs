//! `check-env`: is this runtime environment complete and well-formed for a deploy?
//!
//! The rules come from three places: the required set (command line, `[env] required` or
//! `PROD_REQUIRED_ENV_VARS`, else the names of the `.env.sample`), the typed and conditional rules of
//! `[env.vars]`, and rules implied by the configuration (the smoke gate needs
//! `PRODUCTION_API_URL`, Helm needs `KUBE_CONFIG_DATA`, Railway its token and IDs…).
//! Production-like environments fail on a missing variable; development-like ones warn.
//! Reports name variables, never their values.
//!
//! ```
//! use std::collections::BTreeMap;
//! use shipgate_env::{check, CheckInput};
//!
//! let config = shipgate_config::Config::default();
//! let vars = BTreeMap::from([("ENVIRONMENT".to_owned(), "production".to_owned())]);
//! let mut input = CheckInput::new(&config, &vars);
//! input.required_override = Some(vec!["DATABASE_URL".to_owned()]);
//! let report = check(&input).unwrap();
//! assert!(!report.passed()); // DATABASE_URL is missing
//! ```

mod dotenv;
mod kinds;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use serde::Serialize;
use shipgate_config::{Config, VarKind, VarRule, is_variable_name};
use shipgate_core::{Classification, Environment, EnvironmentKind};

pub use dotenv::{DotenvError, DotenvFile, looks_like_real_secret};
pub use kinds::{
    KindError, KindOptions, check as check_value, check_kubeconfig, decode_base64, kubeconfig_text,
    parse_bool,
};

/// Version of the JSON report; bumped on any incompatible change.
pub const REPORT_SCHEMA_VERSION: u32 = 1;

/// Everything `check` looks at.
#[derive(Debug, Clone)]
pub struct CheckInput<'a> {
    /// The loaded configuration (defaults when there is no file).
    pub config: &'a Config,
    /// The variables to check, normally the process environment.
    pub vars: &'a BTreeMap<String, String>,
    /// Where the environment name came from, for the report.
    pub environment_origin: Option<String>,
    /// Where the configuration came from, for the report.
    pub config_origin: Option<String>,
    /// `--required` (or a variable naming the required set): replaces every other required
    /// set. Given but empty, it fails closed in production-like environments.
    pub required_override: Option<Vec<String>>,
    /// Check only what the configuration implies (targets, `[env.vars]`, the sample's drift,
    /// the smoke gate) when `[env] required` is unset, instead of requiring the sample's names:
    /// what a deploy's check-env step does.
    pub implied_only: bool,
    /// Where `config.env.required` came from, for the report (`PROD_REQUIRED_ENV_VARS`, a file).
    pub required_origin: Option<String>,
    /// Variables that are set to a value that is not UTF-8 text (absent from `vars`): a rule
    /// on one of them reports "set, but not text", never "not set".
    pub not_utf8: Vec<String>,
    /// `--env-file`: extra variables, allowed only in development-like environments.
    pub env_file: Option<&'a DotenvFile>,
    /// A `.env.sample` to check for drift.
    pub sample: Option<&'a DotenvFile>,
    /// Values of rule variables the process environment lacks, resolved by the configured
    /// secret sources (`[secrets]`), and the sources that failed.
    pub secrets: Option<&'a SecretValues>,
}

/// What the configured secret sources answered for variables missing from the process
/// environment. Built by the caller (the binary resolves them; this crate does no I/O).
#[derive(Debug, Default)]
pub struct SecretValues {
    /// Variable -> (value, source name).
    pub found: BTreeMap<String, (shipgate_core::Secret, String)>,
    /// Variable -> (source name, reason) for sources that could not answer.
    pub failed: BTreeMap<String, (String, String)>,
}

impl<'a> CheckInput<'a> {
    /// An input with no overrides, env file or sample.
    pub fn new(config: &'a Config, vars: &'a BTreeMap<String, String>) -> CheckInput<'a> {
        CheckInput {
            config,
            vars,
            environment_origin: None,
            config_origin: None,
            required_override: None,
            implied_only: false,
            required_origin: None,
            not_utf8: Vec::new(),
            env_file: None,
            sample: None,
            secrets: None,
        }
    }
}

/// Why `check` refused to run: a usage error, not a failed check.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckError {
    /// A dotenv file was given for a production-like environment.
    #[error(
        "refusing env file {} in production-like environment {environment}: production variables are injected at run time, never read from .env files",
        path.display()
    )]
    DotenvInProduction {
        /// The file.
        path: PathBuf,
        /// The environment, as displayed.
        environment: String,
    },
    /// A `--required` name is not a variable name.
    #[error("`{0}` is not a valid variable name; use letters, digits and `_`")]
    InvalidName(String),
}

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Fails the check.
    Error,
    /// Reported, does not fail.
    Warning,
    /// Information (how the environment was classified).
    Notice,
}

/// What kind of problem a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FindingCode {
    /// A required variable is not set.
    Missing,
    /// A required variable is set to an empty or whitespace-only value.
    Empty,
    /// A variable's value does not match its kind.
    Invalid,
    /// Two variables that exclude each other are both set.
    Conflict,
    /// A variable the config requires is absent from `.env.sample`.
    SampleMissing,
    /// `.env.sample` holds a value that looks like a real secret.
    SampleSecret,
    /// The environment name is not a documented one.
    EnvironmentUnrecognised,
    /// No environment name is set.
    EnvironmentUnset,
    /// A configured secret source failed while looking the variable up.
    SourceFailed,
    /// The required set was given but names no variable (`--required ""`,
    /// `PROD_REQUIRED_ENV_VARS=" , "`): nothing would be checked.
    RequiredSetEmpty,
    /// Nothing names a required set: no `--required`, `PROD_REQUIRED_ENV_VARS`, `[env]
    /// required`, `.env.sample` or configuration to imply one.
    RequiredSetUnknown,
}

/// One problem or notice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The variable concerned (for a conflict, the first of the pair).
    pub variable: String,
    /// How bad it is.
    pub severity: Severity,
    /// What kind of problem.
    pub code: FindingCode,
    /// What is wrong, without the value.
    pub message: String,
    /// How to fix it.
    pub hint: String,
    /// Why the variable is checked (the rule's origin).
    pub rule: String,
}

/// The state of one checked variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum VarStatus {
    /// Present and valid.
    Ok,
    /// Not required here and not set.
    NotRequired,
    /// Has a finding.
    Problem,
}

/// One variable the rules looked at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckedVar {
    /// Variable name.
    pub variable: String,
    /// Its state.
    pub status: VarStatus,
    /// Where the value came from: `process environment` or the env file, when set.
    pub source: Option<String>,
    /// The expected kind.
    pub kind: &'static str,
    /// Why it is checked.
    pub rule: String,
}

/// The result of a check. Serialises to the documented JSON report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// [`REPORT_SCHEMA_VERSION`].
    pub schema_version: u32,
    /// True when there is no error finding.
    pub ok: bool,
    /// The environment and its classification.
    pub environment: EnvironmentReport,
    /// Where the configuration came from.
    pub config: Option<String>,
    /// Where the required set came from.
    pub required_set: String,
    /// Counts.
    pub summary: Summary,
    /// Problems and notices, errors first.
    pub findings: Vec<Finding>,
    /// Every variable looked at, by name.
    pub variables: Vec<CheckedVar>,
}

/// The environment part of the report.
#[derive(Debug, Clone, Serialize)]
pub struct EnvironmentReport {
    /// The name, if set.
    pub name: Option<String>,
    /// `dev-like` or `prod-like`.
    pub kind: EnvironmentKind,
    /// `recognised`, `unrecognised` or `unset`.
    pub classification: Classification,
    /// Where the name came from.
    pub origin: Option<String>,
}

/// Counts of the report.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Summary {
    /// Variables looked at.
    pub checked: usize,
    /// Variables present and valid.
    pub ok: usize,
    /// Error findings.
    pub errors: usize,
    /// Warning findings.
    pub warnings: usize,
}

impl Report {
    /// True when nothing fails the check.
    pub fn passed(&self) -> bool {
        self.ok
    }
}

/// When a rule applies.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Need {
    Required,
    Optional,
}

#[derive(Debug, Clone)]
struct Rule {
    name: String,
    kind: VarKind,
    need: Need,
    origin: String,
    hint: Option<String>,
    options: RuleOptions,
    /// Other names that satisfy the requirement (`RAILWAY_API_TOKEN` for `RAILWAY_TOKEN`).
    alternatives: Vec<String>,
}

#[derive(Debug, Clone, Default)]
struct RuleOptions {
    values: Vec<String>,
    min: Option<i64>,
    max: Option<i64>,
    context: Option<String>,
    require_pinned: bool,
    tag_only: bool,
}

fn kind_name(kind: VarKind) -> &'static str {
    match kind {
        VarKind::NonEmpty => "non-empty",
        VarKind::Url => "url",
        VarKind::Bool => "bool",
        VarKind::Integer => "integer",
        VarKind::Port => "port",
        VarKind::Enum => "enum",
        VarKind::Base64 => "base64",
        VarKind::Ed25519Key => "ed25519-key",
        VarKind::Kubeconfig => "kubeconfig",
        VarKind::ImageRef => "image-ref",
    }
}

struct Rules {
    list: Vec<Rule>,
    /// Position of each variable's rule in `list`, so merging stays linear in the rule count.
    index: HashMap<String, usize>,
    required_set: String,
}

impl Rules {
    fn push(&mut self, rule: Rule) {
        match self.index.get(&rule.name).map(|&at| &mut self.list[at]) {
            // A stronger requirement or a typed kind refines an existing rule.
            Some(existing) => {
                if rule.need == Need::Required && existing.need == Need::Optional {
                    existing.need = Need::Required;
                    existing.origin = rule.origin;
                }
                if existing.kind == VarKind::NonEmpty {
                    existing.kind = rule.kind;
                    existing.options = rule.options;
                }
                existing.hint = existing.hint.take().or(rule.hint);
                existing.alternatives.extend(rule.alternatives);
            }
            None => {
                self.index.insert(rule.name.clone(), self.list.len());
                self.list.push(rule);
            }
        }
    }
}

fn simple(name: &str, kind: VarKind, need: Need, origin: &str) -> Rule {
    Rule {
        name: name.to_owned(),
        kind,
        need,
        origin: origin.to_owned(),
        hint: None,
        options: RuleOptions::default(),
        alternatives: Vec::new(),
    }
}

fn from_var_rule(name: &str, rule: &VarRule, vars: &Lookup<'_>) -> Rule {
    let (need, origin) = if rule.optional {
        (Need::Optional, format!("[env.vars.{name}] (optional)"))
    } else if let Some(flag) = &rule.required_when {
        let on = vars.get(flag).and_then(parse_bool).unwrap_or(false);
        let need = if on { Need::Required } else { Need::Optional };
        (
            need,
            format!("[env.vars.{name}] required when {flag} is true"),
        )
    } else if let Some(other) = &rule.required_when_set {
        let need = if vars.get(other).is_some() {
            Need::Required
        } else {
            Need::Optional
        };
        (
            need,
            format!("[env.vars.{name}] required when {other} is set"),
        )
    } else {
        (Need::Required, format!("[env.vars.{name}]"))
    };
    Rule {
        name: name.to_owned(),
        kind: rule.kind,
        need,
        origin,
        hint: rule.description.clone(),
        options: RuleOptions {
            values: rule.values.clone(),
            min: rule.min,
            max: rule.max,
            ..RuleOptions::default()
        },
        alternatives: Vec::new(),
    }
}

/// Variables with the env file layered under the process environment.
struct Lookup<'a> {
    vars: &'a BTreeMap<String, String>,
    file: Option<&'a DotenvFile>,
    secrets: Option<&'a SecretValues>,
}

impl<'a> Lookup<'a> {
    /// The raw value (possibly empty) and where it came from.
    fn raw(&self, name: &str) -> Option<(&'a str, String)> {
        if let Some(value) = self.vars.get(name) {
            return Some((value.as_str(), "process environment".to_owned()));
        }
        if let Some(file) = self.file
            && let Some(value) = file.entries.get(name)
        {
            return Some((value.as_str(), file.path.display().to_string()));
        }
        let (secret, source) = self.secrets?.found.get(name)?;
        Some((secret.expose(), format!("secret source {source}")))
    }

    /// The value when set and not blank.
    fn get(&self, name: &str) -> Option<&'a str> {
        self.raw(name)
            .map(|(v, _)| v)
            .filter(|v| !v.trim().is_empty())
    }
}

fn build_rules(input: &CheckInput<'_>, lookup: &Lookup<'_>, env: &Environment) -> Rules {
    let config = input.config;
    let (required, required_set): (Vec<String>, String) =
        match (&input.required_override, &config.env.required) {
            (Some(list), _) => (list.clone(), "--required".to_owned()),
            (None, None) if input.implied_only => {
                (Vec::new(), "implied by the configuration".to_owned())
            }
            (None, Some(list)) => (
                list.clone(),
                input
                    .required_origin
                    .clone()
                    .unwrap_or_else(|| "[env] required".to_owned()),
            ),
            // The sample lists what the app reads: each name is required, but for those
            // `[env.vars]` marks optional.
            (None, None) => match input.sample {
                Some(sample) => (
                    sample
                        .entries
                        .keys()
                        .filter(|name| !config.env.vars.get(*name).is_some_and(|r| r.optional))
                        .cloned()
                        .collect(),
                    format!("the names in {}", sample.path.display()),
                ),
                None => (Vec::new(), "none".to_owned()),
            },
        };
    let mut rules = Rules {
        list: Vec::new(),
        index: HashMap::new(),
        required_set: required_set.clone(),
    };
    for name in &required {
        rules.push(simple(
            name,
            VarKind::NonEmpty,
            Need::Required,
            &required_set,
        ));
    }
    for (name, rule) in &config.env.vars {
        let mut rule = from_var_rule(name, rule, lookup);
        // An image reference deployed to production is pinned, like the deploy's own tag.
        if rule.kind == VarKind::ImageRef {
            rule.options.require_pinned = env.kind().is_prod_like() && !config.image.allow_mutable;
        }
        // With --required, the command line decides what is required; [env.vars] only types.
        if input.required_override.is_some() && !required.contains(name) {
            rule.need = Need::Optional;
        }
        rules.push(rule);
    }

    let smoke = &config.smoke;
    if smoke.enabled {
        let mut rule = simple(
            "PRODUCTION_API_URL",
            VarKind::Url,
            if smoke.base_url.is_some() {
                Need::Optional
            } else {
                Need::Required
            },
            "the smoke gate is enabled (ENABLE_DEPLOY_SMOKE_GATE)",
        );
        rule.hint =
            Some("set PRODUCTION_API_URL or [smoke] base_url to the API the gate tests".to_owned());
        rules.push(rule);
    } else {
        rules.push(simple(
            "PRODUCTION_API_URL",
            VarKind::Url,
            Need::Optional,
            "smoke gate target",
        ));
    }

    let helm = &config.targets.helm;
    let mut kube = simple(
        &helm.kubeconfig_env,
        VarKind::Kubeconfig,
        if helm.enabled && helm.kubeconfig_path.is_none() {
            Need::Required
        } else {
            Need::Optional
        },
        "Helm is enabled (ENABLE_HELM_DEPLOY)",
    );
    kube.options.context = helm.context.clone();
    kube.hint =
        Some("set it to the kubeconfig, plain or base64 (`base64 -w0 < kubeconfig`)".to_owned());
    rules.push(kube);

    let railway = &config.targets.railway;
    if railway.enabled {
        let origin = "Railway is enabled (ENABLE_RAILWAY_DEPLOY)";
        let mut token = simple("RAILWAY_TOKEN", VarKind::NonEmpty, Need::Required, origin);
        token.alternatives = vec!["RAILWAY_API_TOKEN".to_owned()];
        token.hint = Some(
            "set RAILWAY_TOKEN (project token) or RAILWAY_API_TOKEN (account or workspace token)"
                .to_owned(),
        );
        rules.push(token);
        let keyed = [
            (
                "RAILWAY_PROJECT",
                railway.project.is_some(),
                "targets.railway.project",
                vec!["RAILWAY_PROJECT_ID"],
            ),
            (
                "RAILWAY_ENVIRONMENT",
                railway.environment.is_some(),
                "targets.railway.environment",
                vec![],
            ),
            (
                "RAILWAY_API_SERVICE",
                !railway.services.is_empty(),
                "targets.railway.services",
                vec![],
            ),
        ];
        for (name, satisfied, key, alternatives) in keyed {
            let mut rule = simple(
                name,
                VarKind::NonEmpty,
                if satisfied {
                    Need::Optional
                } else {
                    Need::Required
                },
                origin,
            );
            rule.alternatives = alternatives.into_iter().map(str::to_owned).collect();
            rule.hint = Some(format!("set {name} or `{key}` in shipgate.toml"));
            rules.push(rule);
        }
    }

    let fly = &config.targets.fly;
    if fly.enabled {
        let origin = "Fly.io is enabled (ENABLE_FLY_DEPLOY)";
        let mut token = simple("FLY_API_TOKEN", VarKind::NonEmpty, Need::Required, origin);
        token.alternatives = vec!["FLY_ACCESS_TOKEN".to_owned()];
        token.hint = Some(
            "create one with `fly tokens create deploy` and inject it as FLY_API_TOKEN".to_owned(),
        );
        rules.push(token);
        if fly.app.is_none() {
            let mut app = simple("FLY_APP", VarKind::NonEmpty, Need::Required, origin);
            app.hint = Some("set FLY_APP or `targets.fly.app` in shipgate.toml".to_owned());
            rules.push(app);
        }
    }

    if config.ci_gate.enabled {
        let mut token = simple(
            "GITHUB_TOKEN",
            VarKind::NonEmpty,
            Need::Required,
            "the CI gate is enabled ([ci_gate])",
        );
        token.hint = Some(
            "in GitHub Actions pass `GITHUB_TOKEN: ${{ github.token }}` with checks: read"
                .to_owned(),
        );
        rules.push(token);
    }

    for name in ["image_tag", "IMAGE_TAG"] {
        let mut rule = simple(
            name,
            VarKind::ImageRef,
            Need::Optional,
            "image tag to deploy",
        );
        rule.options.require_pinned = env.kind().is_prod_like() && !config.image.allow_mutable;
        rule.options.tag_only = true;
        rules.push(rule);
    }
    for name in shipgate_config::deploy_switches() {
        rules.push(simple(name, VarKind::Bool, Need::Optional, "deploy switch"));
    }
    rules
}

/// The variables the rules for `input` look at, in rule order, each with its alternatives
/// and whether it is required here: what a caller resolves through secret sources before
/// calling [`check`].
pub fn rule_variables(input: &CheckInput<'_>) -> Vec<(String, bool)> {
    let env = Environment::classify(input.config.environment.as_deref());
    let lookup = Lookup {
        vars: input.vars,
        file: input.env_file,
        secrets: None,
    };
    let rules = build_rules(input, &lookup, &env);
    rules
        .list
        .iter()
        .flat_map(|r| {
            let required = r.need == Need::Required;
            std::iter::once(r.name.clone())
                .chain(r.alternatives.iter().cloned())
                .map(move |name| (name, required))
        })
        .collect()
}

/// Runs the check. `Err` is a usage error (nothing was checked); a failed check is an `Ok`
/// report whose [`Report::passed`] is false. Never prints; values never reach the report.
pub fn check(input: &CheckInput<'_>) -> Result<Report, CheckError> {
    let env = Environment::classify(input.config.environment.as_deref());
    if let Some(file) = input.env_file
        && env.kind().is_prod_like()
    {
        return Err(CheckError::DotenvInProduction {
            path: file.path.clone(),
            environment: env.to_string(),
        });
    }
    if let Some(names) = &input.required_override
        && let Some(bad) = names.iter().find(|n| !is_variable_name(n))
    {
        return Err(CheckError::InvalidName(bad.clone()));
    }
    let lookup = Lookup {
        vars: input.vars,
        file: input.env_file,
        secrets: input.secrets,
    };
    let rules = build_rules(input, &lookup, &env);
    let missing_severity = if env.kind().is_prod_like() {
        Severity::Error
    } else {
        Severity::Warning
    };

    let mut findings = Vec::new();
    let mut variables = Vec::new();
    match env.classification() {
        Classification::Unset => findings.push(Finding {
            variable: "ENVIRONMENT".to_owned(),
            severity: Severity::Notice,
            code: FindingCode::EnvironmentUnset,
            message: "no environment is set; treated as production-like".to_owned(),
            hint: "set DEPLOY_ENVIRONMENT or ENVIRONMENT (dev, test, local, staging, prod, production)".to_owned(),
            rule: "fail-closed classification".to_owned(),
        }),
        Classification::Unrecognised => findings.push(Finding {
            variable: "ENVIRONMENT".to_owned(),
            severity: Severity::Warning,
            code: FindingCode::EnvironmentUnrecognised,
            message: format!("`{}` is not a documented environment name; treated as production-like", env.name().unwrap_or_default()),
            hint: "use dev, test or local for development; prod, production or staging otherwise".to_owned(),
            rule: "fail-closed classification".to_owned(),
        }),
        Classification::Recognised => {}
    }

    // A required set given on the command line or in a variable that names nothing checks
    // nothing: fail closed. (A file's `[env] required = []` is a deliberate "only what the
    // configuration implies".)
    if let Some(list) = &input.required_override
        && list.is_empty()
    {
        let origin = input
            .required_origin
            .clone()
            .unwrap_or_else(|| "--required".to_owned());
        findings.push(Finding {
            variable: "PROD_REQUIRED_ENV_VARS".to_owned(),
            severity: missing_severity,
            code: FindingCode::RequiredSetEmpty,
            message: format!("the required set ({origin}) names no variable, so nothing would be checked"),
            hint: "name the variables to require (space- or comma-separated), or leave --required / PROD_REQUIRED_ENV_VARS / [env] required unset to require the names of .env.sample".to_owned(),
            rule: "a required set checks something (fail closed)".to_owned(),
        });
    }

    if input.required_override.is_none()
        && input.config.env.required.is_none()
        && input.sample.is_none()
        && !input.implied_only
    {
        findings.push(Finding {
            variable: "PROD_REQUIRED_ENV_VARS".to_owned(),
            severity: missing_severity,
            code: FindingCode::RequiredSetUnknown,
            message: "nothing says which variables this app needs: no --required, PROD_REQUIRED_ENV_VARS, shipgate.toml or .env.sample".to_owned(),
            hint: "keep a .env.sample listing the app's variables (check-env requires each), run `shipgate init` to write shipgate.toml, or pass --required NAMES".to_owned(),
            rule: "a required set checks something (fail closed)".to_owned(),
        });
    }

    for rule in &rules.list {
        let found = std::iter::once(&rule.name)
            .chain(rule.alternatives.iter())
            .find_map(|name| lookup.raw(name).map(|(v, src)| (name.clone(), v, src)));
        let mut finding = |code, severity, message: String, hint: String| {
            findings.push(Finding {
                variable: rule.name.clone(),
                severity,
                code,
                message,
                hint,
                rule: rule.origin.clone(),
            });
        };
        let failed_source = input
            .secrets
            .and_then(|s| s.failed.get(&rule.name))
            .filter(|_| found.is_none());
        let (status, source) = match found {
            None if let Some((source, reason)) = failed_source => {
                finding(
                    FindingCode::SourceFailed,
                    Severity::Error,
                    format!(
                        "{} could not be read from secret source {source}: {reason}",
                        rule.name
                    ),
                    format!("fix secret source {source} (reachability, permissions) and run again"),
                );
                (VarStatus::Problem, Some(format!("secret source {source}")))
            }
            // Set, but not text: never "not set", and never its bytes.
            None if let Some(name) = std::iter::once(&rule.name)
                .chain(rule.alternatives.iter())
                .find(|n| input.not_utf8.contains(n)) =>
            {
                finding(
                    FindingCode::Invalid,
                    if rule.need == Need::Required {
                        missing_severity
                    } else {
                        Severity::Error
                    },
                    format!("{name} is set, but its value is not UTF-8 text"),
                    format!("set {name} to a text value (check the secret's encoding)"),
                );
                (VarStatus::Problem, Some("process environment".to_owned()))
            }
            None if rule.need == Need::Required => {
                let also = if rule.alternatives.is_empty() {
                    String::new()
                } else {
                    format!(" (nor {})", rule.alternatives.join(", "))
                };
                let hint = rule.hint.clone().unwrap_or_else(|| {
                    format!(
                        "inject {} at run time (CI secret or secret manager)",
                        rule.name
                    )
                });
                finding(
                    FindingCode::Missing,
                    missing_severity,
                    format!("{} is not set{also}", rule.name),
                    hint,
                );
                (VarStatus::Problem, None)
            }
            None => (VarStatus::NotRequired, None),
            Some((name, value, source)) if value.trim().is_empty() => {
                if rule.need == Need::Required {
                    finding(
                        FindingCode::Empty,
                        missing_severity,
                        format!("{name} is set but empty"),
                        format!(
                            "give {name} a value; an undefined `${{{{ secrets.X }}}}` expands to an empty string"
                        ),
                    );
                    (VarStatus::Problem, Some(source))
                } else {
                    (VarStatus::NotRequired, Some(source))
                }
            }
            Some((name, value, source)) => {
                let options = KindOptions {
                    values: &rule.options.values,
                    min: rule.options.min,
                    max: rule.options.max,
                    context: rule.options.context.as_deref(),
                    require_pinned: rule.options.require_pinned,
                    mutable_tags: &input.config.image.mutable_tags,
                    tag_only: rule.options.tag_only,
                };
                match kinds::check(rule.kind, value, &options) {
                    Ok(()) => (VarStatus::Ok, Some(source)),
                    Err(reason) => {
                        let hint = rule.hint.clone().unwrap_or_else(|| {
                            format!("set {name} to a valid {} value", kind_name(rule.kind))
                        });
                        finding(
                            FindingCode::Invalid,
                            Severity::Error,
                            format!("{name} {reason}"),
                            hint,
                        );
                        (VarStatus::Problem, Some(source))
                    }
                }
            }
        };
        variables.push(CheckedVar {
            variable: rule.name.clone(),
            status,
            source,
            kind: kind_name(rule.kind),
            rule: rule.origin.clone(),
        });
    }

    for (a, b) in [
        ("RAILWAY_TOKEN", "RAILWAY_API_TOKEN"),
        ("RAILWAY_PROJECT", "RAILWAY_PROJECT_ID"),
    ] {
        if lookup.get(a).is_some() && lookup.get(b).is_some() {
            findings.push(Finding {
                variable: a.to_owned(),
                severity: Severity::Error,
                code: FindingCode::Conflict,
                message: format!("{a} and {b} are both set"),
                hint: format!("unset one of them; Railway accepts one token kind per request, so shipgate will not guess between {a} and {b}"),
                rule: "contradictory settings".to_owned(),
            });
        }
    }

    if let Some(sample) = input.sample {
        let sample_name = sample.path.display().to_string();
        for rule in rules.list.iter().filter(|r| r.need == Need::Required) {
            let present = std::iter::once(&rule.name)
                .chain(rule.alternatives.iter())
                .any(|n| sample.entries.contains_key(n));
            if !present {
                findings.push(Finding {
                    variable: rule.name.clone(),
                    severity: Severity::Error,
                    code: FindingCode::SampleMissing,
                    message: format!("{} is required but missing from {sample_name}", rule.name),
                    hint: format!("add `{}=` with a placeholder to {sample_name}", rule.name),
                    rule: rule.origin.clone(),
                });
            }
        }
        for (name, value) in &sample.entries {
            if let Some(why) = looks_like_real_secret(name, value) {
                findings.push(Finding {
                    variable: name.clone(),
                    severity: Severity::Error,
                    code: FindingCode::SampleSecret,
                    message: format!("{name} in {sample_name} looks like a real secret ({why})"),
                    hint: format!("replace it with a placeholder such as `<{}>` and rotate the value if it was ever real", name.to_ascii_lowercase()),
                    rule: ".env.sample holds placeholders only".to_owned(),
                });
            }
        }
    }

    findings.sort_by(|a, b| {
        a.severity
            .cmp(&b.severity)
            .then_with(|| a.variable.cmp(&b.variable))
    });
    variables.sort_by(|a, b| a.variable.cmp(&b.variable));
    let summary = Summary {
        checked: variables.len(),
        ok: variables
            .iter()
            .filter(|v| v.status == VarStatus::Ok)
            .count(),
        errors: findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .count(),
        warnings: findings
            .iter()
            .filter(|f| f.severity == Severity::Warning)
            .count(),
    };
    Ok(Report {
        schema_version: REPORT_SCHEMA_VERSION,
        ok: summary.errors == 0,
        environment: EnvironmentReport {
            name: env.name().map(str::to_owned),
            kind: env.kind(),
            classification: env.classification(),
            origin: input.environment_origin.clone(),
        },
        config: input.config_origin.clone(),
        required_set: rules.required_set,
        summary,
        findings,
        variables,
    })
}

/// The README's examples, compiled (and run) as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
