//! Compiling a `[smoke]` section (or a spec file) into a [`Spec`] the engine runs: every
//! regular expression, JSONPath, status pattern, method, header and placeholder is checked
//! before the first request, so a typo fails the gate as a usage error, not as a flaky check.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use regex::Regex;
use reqwest::Method;
use reqwest::header::{HeaderName, HeaderValue};
use serde_json_path::JsonPath;
use shipgate_config::{
    AssertSpec, Backoff as BackoffSpec, MAX_ATTEMPTS, MAX_SAMPLES, MAX_SMOKE_CONCURRENCY,
    SmokeConfig, StatusExpectation,
};
use shipgate_core::Secret;
use shipgate_http::Backoff;
use url::Url;

use crate::template::{JsonTemplate, Template, is_capture_name};

/// What the spec needs besides the `[smoke]` section.
#[derive(Debug, Clone, Default)]
pub struct SpecOptions {
    /// Use this base URL instead of the spec's (`--url`, or `PRODUCTION_API_URL` for a spec
    /// file that names none).
    pub base_url: Option<String>,
    /// The API key sent in the spec's `api_key_header` with every request.
    pub api_key: Option<Secret>,
    /// The target environment is production-like: `http://` and unverified TLS are refused
    /// unless the spec sets `allow_insecure = true`.
    pub production_like: bool,
}

/// One problem in a spec, located by its key relative to the spec root
/// (`checks.2.asserts.0.matches`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecProblem {
    /// The key, relative to `[smoke]` (or to the spec file's root).
    pub key: String,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: String,
}

/// A spec that did not compile.
#[derive(Debug, thiserror::Error)]
#[error("the smoke spec is invalid ({} problem(s))", .problems.len())]
pub struct SpecError {
    /// Every problem found.
    pub problems: Vec<SpecProblem>,
}

/// A compiled, runnable smoke spec.
#[derive(Debug, Clone)]
pub struct Spec {
    pub(crate) base_url: Url,
    pub(crate) headers: Vec<(HeaderName, HeaderValue)>,
    pub(crate) api_key: Option<(HeaderName, Secret)>,
    pub(crate) concurrency: usize,
    pub(crate) allow_insecure: bool,
    pub(crate) checks: Vec<Check>,
}

impl Spec {
    /// The base URL the checks run against.
    pub fn base_url(&self) -> &Url {
        &self.base_url
    }

    /// The same checks against another origin (scheme, host and port of `origin`), the base
    /// URL's path kept: a staged release's own endpoint, tested before it takes traffic.
    /// `None` when `origin` is not an absolute http(s) URL.
    pub fn at_origin(&self, origin: &str) -> Option<Spec> {
        let origin = Url::parse(origin).ok()?;
        if !matches!(origin.scheme(), "http" | "https") || origin.host_str().is_none() {
            return None;
        }
        let mut base_url = origin;
        base_url.set_path(self.base_url.path());
        Some(Spec {
            base_url,
            ..self.clone()
        })
    }

    /// The number of checks.
    pub fn len(&self) -> usize {
        self.checks.len()
    }

    /// Always false: a spec without checks does not compile.
    pub fn is_empty(&self) -> bool {
        self.checks.is_empty()
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Check {
    pub(crate) name: String,
    pub(crate) method: Method,
    pub(crate) path: Template,
    pub(crate) headers: Vec<(HeaderName, Template)>,
    pub(crate) body: Option<Body>,
    pub(crate) status: StatusMatcher,
    pub(crate) asserts: Vec<Assert>,
    pub(crate) max_latency: Option<Duration>,
    pub(crate) max_p95_latency: Option<Duration>,
    pub(crate) timeout: Duration,
    pub(crate) critical: bool,
    pub(crate) attempts: u32,
    pub(crate) backoff: Backoff,
    pub(crate) wait_until_healthy: bool,
    pub(crate) samples: u32,
    pub(crate) captures: Vec<(String, JsonPath, String)>,
    /// Indexes of the checks whose captures this one uses.
    pub(crate) depends_on: Vec<usize>,
}

impl Check {
    /// Whether any assert or capture reads the body as JSON.
    pub(crate) fn needs_json(&self) -> bool {
        !self.captures.is_empty()
            || self
                .asserts
                .iter()
                .any(|a| matches!(a.subject, Subject::JsonPath(..)))
    }
}

#[derive(Debug, Clone)]
pub(crate) enum Body {
    Json(JsonTemplate),
    Text(Template),
}

/// An expected status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StatusMatcher {
    AnyOf(Vec<u16>),
    Range(u16, u16),
}

impl StatusMatcher {
    pub(crate) fn matches(&self, status: u16) -> bool {
        match self {
            StatusMatcher::AnyOf(codes) => codes.contains(&status),
            StatusMatcher::Range(lo, hi) => (*lo..=*hi).contains(&status),
        }
    }

    pub(crate) fn describe(&self) -> String {
        match self {
            StatusMatcher::AnyOf(codes) if codes.len() == 1 => codes[0].to_string(),
            StatusMatcher::AnyOf(codes) => codes
                .iter()
                .map(u16::to_string)
                .collect::<Vec<_>>()
                .join(" or "),
            StatusMatcher::Range(lo, hi) if lo % 100 == 0 && hi - lo == 99 => {
                format!("{}xx", lo / 100)
            }
            StatusMatcher::Range(lo, hi) => format!("{lo}-{hi}"),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Assert {
    pub(crate) subject: Subject,
    pub(crate) predicate: Predicate,
}

#[derive(Debug, Clone)]
pub(crate) enum Subject {
    JsonPath(JsonPath, String),
    Header(HeaderName),
    Body,
}

#[derive(Debug, Clone)]
pub(crate) enum Predicate {
    Equals(serde_json::Value),
    Exists(bool),
    Matches(Regex),
    Contains(String),
    MaxBytes(u64),
}

impl Assert {
    /// `$.status equals "ok"`, `header content-type matches ^application/json`.
    pub(crate) fn describe(&self) -> String {
        let subject = match &self.subject {
            Subject::JsonPath(_, source) => source.clone(),
            Subject::Header(name) => format!("header {name}"),
            Subject::Body => "body".to_owned(),
        };
        let predicate = match &self.predicate {
            Predicate::Equals(value) => format!("equals {value}"),
            Predicate::Exists(true) => "exists".to_owned(),
            Predicate::Exists(false) => "does not exist".to_owned(),
            Predicate::Matches(regex) => format!("matches /{}/", regex.as_str()),
            Predicate::Contains(text) => format!("contains {text:?}"),
            Predicate::MaxBytes(n) => format!("is at most {n} bytes"),
        };
        format!("{subject} {predicate}")
    }
}

struct Problems(Vec<SpecProblem>);

impl Problems {
    fn add(&mut self, key: impl Into<String>, message: impl Into<String>, hint: impl Into<String>) {
        self.0.push(SpecProblem {
            key: key.into(),
            message: message.into(),
            hint: hint.into(),
        });
    }

    /// A count must be between 1 and `max` (0 does nothing; a huge value is a typo that
    /// would send billions of requests).
    fn count(&mut self, key: &str, value: u32, max: u32) {
        if value == 0 || value > max {
            self.add(
                key,
                format!("must be between 1 and {max}, not {value}"),
                "1 means once (or one at a time)",
            );
        }
    }
}

/// Compiles `config` into a runnable spec, or lists every problem.
pub fn compile(config: &SmokeConfig, options: &SpecOptions) -> Result<Spec, SpecError> {
    let mut p = Problems(Vec::new());

    let base_url = compile_base_url(config, options, &mut p);
    let headers = compile_static_headers(&config.headers, &mut p);
    let api_key_header = match HeaderName::from_bytes(config.api_key_header.as_bytes()) {
        Ok(name) => Some(name),
        Err(_) => {
            p.add(
                "api_key_header",
                format!("`{}` is not a valid header name", config.api_key_header),
                "use letters, digits and `-`, e.g. `X-API-Key`",
            );
            None
        }
    };
    if config.checks.is_empty() {
        p.add(
            "checks",
            "the spec has no checks; a gate that checks nothing would always pass",
            "add at least one [[checks]] entry (for example `path = \"/healthz\"`)",
        );
    }
    p.count("concurrency", config.concurrency, MAX_SMOKE_CONCURRENCY);

    let default_timeout = config.timeout.as_duration();
    if default_timeout.is_zero() {
        p.add("timeout", "must be longer than 0s", "for example `10s`");
    }
    let mut checks = Vec::new();
    let mut names = HashSet::new();
    // Capture name -> index of the check that defines it.
    let mut defined: BTreeMap<String, usize> = BTreeMap::new();
    for (i, spec) in config.checks.iter().enumerate() {
        let key = format!("checks.{i}");
        if !names.insert(spec.name.as_str()) {
            p.add(
                format!("{key}.name"),
                format!("check name `{}` is used twice", spec.name),
                "give every check a unique name",
            );
        }
        if let Some(check) = compile_check(i, spec, default_timeout, &defined, &mut p) {
            for (name, _, _) in &check.captures {
                if let Some(earlier) = defined.insert(name.clone(), i) {
                    p.add(
                        format!("{key}.captures.{name}"),
                        format!(
                            "capture `{name}` is already defined by check `{}`",
                            config.checks[earlier].name
                        ),
                        "give the capture another name",
                    );
                }
            }
            checks.push(check);
        }
    }

    // Monitors keep one compiled spec per target: no spare capacity (a one-check spec held
    // room for four, 10 MB over 10,000 targets).
    checks.shrink_to_fit();
    if !p.0.is_empty() {
        return Err(SpecError { problems: p.0 });
    }
    let (Some(base_url), Some(api_key_header)) = (base_url, api_key_header) else {
        return Err(SpecError { problems: p.0 });
    };
    Ok(Spec {
        base_url,
        headers,
        api_key: options.api_key.clone().map(|key| (api_key_header, key)),
        concurrency: config.concurrency.max(1) as usize,
        allow_insecure: config.allow_insecure,
        checks,
    })
}

fn compile_base_url(config: &SmokeConfig, options: &SpecOptions, p: &mut Problems) -> Option<Url> {
    let Some(raw) = options.base_url.as_deref().or(config.base_url.as_deref()) else {
        p.add(
            "base_url",
            "no base URL to test",
            "set `base_url`, PRODUCTION_API_URL, or pass --url",
        );
        return None;
    };
    let url = match Url::parse(raw.trim()) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => url,
        Ok(_) | Err(_) => {
            p.add(
                "base_url",
                format!("`{raw}` is not an http(s) URL with a host"),
                "write it like `https://api.example.com`",
            );
            return None;
        }
    };
    if url.scheme() == "http" && options.production_like && !config.allow_insecure {
        p.add(
            "base_url",
            format!("`{raw}` is plain http in a production-like environment"),
            "use https; for a development target set ENVIRONMENT=dev; to accept it anyway set `allow_insecure = true` (or pass --allow-insecure)",
        );
        return None;
    }
    Some(url)
}

fn compile_static_headers(
    headers: &BTreeMap<String, String>,
    p: &mut Problems,
) -> Vec<(HeaderName, HeaderValue)> {
    let mut out = Vec::new();
    for (name, value) in headers {
        let key = format!("headers.{name}");
        match (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            (Ok(name), Ok(value)) => out.push((name, value)),
            (Err(_), _) => p.add(
                key,
                format!("`{name}` is not a valid header name"),
                "use letters, digits and `-`",
            ),
            (_, Err(_)) => p.add(
                key,
                "the value is not a valid header value",
                "remove control characters and line breaks",
            ),
        }
    }
    out
}

fn compile_check(
    index: usize,
    spec: &shipgate_config::SmokeCheck,
    default_timeout: Duration,
    defined: &BTreeMap<String, usize>,
    p: &mut Problems,
) -> Option<Check> {
    let key = format!("checks.{index}");
    let before = p.0.len();
    let mut used: Vec<String> = Vec::new();

    let method = match Method::from_bytes(spec.method.trim().to_ascii_uppercase().as_bytes()) {
        Ok(method) => Some(method),
        Err(_) => {
            p.add(
                format!("{key}.method"),
                format!("`{}` is not an HTTP method", spec.method),
                "use GET, POST, PUT, PATCH, DELETE or HEAD",
            );
            None
        }
    };
    if !spec.path.starts_with('/') {
        p.add(
            format!("{key}.path"),
            format!("`{}` does not start with `/`", spec.path),
            "paths are joined to the base URL: write `/healthz`",
        );
    }
    let path = template(&format!("{key}.path"), &spec.path, &mut used, p);

    let mut headers = Vec::new();
    for (name, value) in &spec.headers {
        let header_key = format!("{key}.headers.{name}");
        match HeaderName::from_bytes(name.as_bytes()) {
            // The written text must be a valid header value; only what a capture fills
            // in is known at run time.
            Ok(_) if HeaderValue::from_str(value).is_err() => p.add(
                header_key,
                "the value is not a valid header value",
                "remove control characters and line breaks",
            ),
            Ok(header) => {
                if let Some(t) = template(&header_key, value, &mut used, p) {
                    headers.push((header, t));
                }
            }
            Err(_) => p.add(
                header_key,
                format!("`{name}` is not a valid header name"),
                "use letters, digits and `-`",
            ),
        }
    }

    let body = match (&spec.json, &spec.body) {
        (Some(_), Some(_)) => {
            p.add(
                key.clone(),
                "`json` and `body` are both set",
                "keep one request body",
            );
            None
        }
        (Some(json), None) => match JsonTemplate::parse(json) {
            Ok(t) => {
                used.extend(t.captures().map(str::to_owned));
                Some(Body::Json(t))
            }
            Err(message) => {
                p.add(
                    format!("{key}.json"),
                    message,
                    "write placeholders as `{{name}}`",
                );
                None
            }
        },
        (None, Some(text)) => template(&format!("{key}.body"), text, &mut used, p).map(Body::Text),
        (None, None) => None,
    };

    let status = compile_status(&format!("{key}.status"), spec.status.as_ref(), p);
    let asserts: Vec<Assert> = spec
        .asserts
        .iter()
        .enumerate()
        .filter_map(|(i, a)| compile_assert(&format!("{key}.asserts.{i}"), a, p))
        .collect();

    let mut captures = Vec::new();
    for (name, path) in &spec.captures {
        let capture_key = format!("{key}.captures.{name}");
        if !is_capture_name(name) {
            p.add(
                capture_key.clone(),
                format!("`{name}` is not a capture name"),
                "use letters, digits and `_`, starting with a letter",
            );
        }
        match JsonPath::parse(path) {
            Ok(compiled) => captures.push((name.clone(), compiled, path.clone())),
            Err(err) => p.add(
                capture_key,
                format!("invalid JSONPath `{path}`: {err}"),
                "write it like `$.data.token`",
            ),
        }
    }

    let mut depends_on = Vec::new();
    for name in &used {
        match defined.get(name) {
            Some(&provider) => {
                if !depends_on.contains(&provider) {
                    depends_on.push(provider);
                }
            }
            None => p.add(
                key.clone(),
                format!("capture `{name}` is used before any earlier check defines it"),
                format!(
                    "add `captures = {{ {name} = \"$.…\" }}` to a check listed before `{}`",
                    spec.name
                ),
            ),
        }
    }

    p.count(
        &format!("{key}.retry.attempts"),
        spec.retry.attempts,
        MAX_ATTEMPTS,
    );
    p.count(&format!("{key}.samples"), spec.samples, MAX_SAMPLES);
    if spec.name.trim().is_empty() {
        p.add(
            format!("{key}.name"),
            "a check needs a name: reports, progress lines and captures refer to it",
            "name it for what it checks, e.g. `name = \"health\"`",
        );
    }
    // A zero default is reported once, at `[smoke] timeout` (see `compile`).
    let timeout = spec.timeout.map_or(default_timeout, |t| t.as_duration());
    if spec.timeout.is_some() && timeout.is_zero() {
        p.add(
            format!("{key}.timeout"),
            "must be longer than 0s",
            "for example `10s`",
        );
    }

    if p.0.len() > before {
        return None;
    }
    let interval = spec.retry.interval.as_duration();
    let backoff = match spec.retry.backoff {
        BackoffSpec::Constant => Backoff::Constant(interval),
        BackoffSpec::Exponential => Backoff::Exponential {
            initial: interval,
            max: interval.saturating_mul(32),
        },
    };
    Some(Check {
        name: spec.name.clone(),
        method: method?,
        path: path?,
        headers,
        body,
        status: status?,
        asserts,
        max_latency: spec.max_latency.map(|d| d.as_duration()),
        max_p95_latency: spec.max_p95_latency.map(|d| d.as_duration()),
        timeout,
        critical: spec.critical,
        attempts: spec.retry.attempts,
        backoff,
        wait_until_healthy: spec.wait_until_healthy,
        samples: spec.samples,
        captures,
        depends_on,
    })
}

fn template(key: &str, text: &str, used: &mut Vec<String>, p: &mut Problems) -> Option<Template> {
    match Template::parse(text) {
        Ok(t) => {
            used.extend(t.captures().map(str::to_owned));
            Some(t)
        }
        Err(message) => {
            p.add(key, message, "write placeholders as `{{name}}`");
            None
        }
    }
}

fn compile_status(
    key: &str,
    status: Option<&StatusExpectation>,
    p: &mut Problems,
) -> Option<StatusMatcher> {
    let valid = |code: u16| (100..=599).contains(&code);
    let hint = "use a code (200), a list ([200, 204]), a class (\"2xx\") or a range (\"200-299\")";
    match status {
        None => Some(StatusMatcher::Range(200, 299)),
        Some(StatusExpectation::Code(code)) if valid(*code) => {
            Some(StatusMatcher::AnyOf(vec![*code]))
        }
        Some(StatusExpectation::Code(code)) => {
            p.add(key, format!("{code} is not an HTTP status (100-599)"), hint);
            None
        }
        Some(StatusExpectation::AnyOf(codes))
            if !codes.is_empty() && codes.iter().all(|c| valid(*c)) =>
        {
            Some(StatusMatcher::AnyOf(codes.clone()))
        }
        Some(StatusExpectation::AnyOf(codes)) => {
            p.add(
                key,
                format!("{codes:?} is not a list of HTTP statuses (100-599)"),
                hint,
            );
            None
        }
        Some(StatusExpectation::Pattern(pattern)) => match parse_status_pattern(pattern) {
            Some((lo, hi)) if valid(lo) && valid(hi) && lo <= hi => {
                Some(StatusMatcher::Range(lo, hi))
            }
            _ => {
                p.add(
                    key,
                    format!("`{pattern}` is not a status class or range"),
                    hint,
                );
                None
            }
        },
    }
}

fn parse_status_pattern(pattern: &str) -> Option<(u16, u16)> {
    let pattern = pattern.trim().to_ascii_lowercase();
    if let Some(class) = pattern.strip_suffix("xx") {
        let digit: u16 = class.parse().ok()?;
        return (class.len() == 1).then_some((digit * 100, digit * 100 + 99));
    }
    if let Some((lo, hi)) = pattern.split_once('-') {
        return Some((lo.trim().parse().ok()?, hi.trim().parse().ok()?));
    }
    let code = pattern.parse().ok()?;
    Some((code, code))
}

fn compile_assert(key: &str, spec: &AssertSpec, p: &mut Problems) -> Option<Assert> {
    let subjects = usize::from(spec.jsonpath.is_some())
        + usize::from(spec.header.is_some())
        + usize::from(spec.body);
    let predicates = usize::from(spec.equals.is_some())
        + usize::from(spec.exists.is_some())
        + usize::from(spec.matches.is_some())
        + usize::from(spec.contains.is_some())
        + usize::from(spec.max_bytes.is_some());
    let subject_hint = "set exactly one of `jsonpath`, `header` or `body = true`";
    let predicate_hint =
        "set exactly one of `equals`, `exists`, `matches`, `contains`, `max_bytes`";
    // `max_bytes` alone is an assert on the body.
    let implicit_body = subjects == 0 && spec.max_bytes.is_some();
    if subjects != 1 && !implicit_body {
        p.add(
            key,
            format!("an assert needs one subject, found {subjects}"),
            subject_hint,
        );
        return None;
    }
    if predicates != 1 {
        p.add(
            key,
            format!("an assert needs one predicate, found {predicates}"),
            predicate_hint,
        );
        return None;
    }
    let subject = if let Some(path) = &spec.jsonpath {
        match JsonPath::parse(path) {
            Ok(compiled) => Subject::JsonPath(compiled, path.clone()),
            Err(err) => {
                p.add(
                    format!("{key}.jsonpath"),
                    format!("invalid JSONPath `{path}`: {err}"),
                    "write it like `$.status` or `$.items[0].id`",
                );
                return None;
            }
        }
    } else if let Some(name) = &spec.header {
        match HeaderName::from_bytes(name.as_bytes()) {
            Ok(name) => Subject::Header(name),
            Err(_) => {
                p.add(
                    format!("{key}.header"),
                    format!("`{name}` is not a valid header name"),
                    "use letters, digits and `-`",
                );
                return None;
            }
        }
    } else {
        Subject::Body
    };
    let predicate = if let Some(value) = &spec.equals {
        Predicate::Equals(value.clone())
    } else if let Some(exists) = spec.exists {
        Predicate::Exists(exists)
    } else if let Some(pattern) = &spec.matches {
        match Regex::new(pattern) {
            Ok(regex) => Predicate::Matches(regex),
            Err(err) => {
                p.add(
                    format!("{key}.matches"),
                    format!("invalid regular expression: {err}"),
                    "check the pattern's syntax (Rust regex)",
                );
                return None;
            }
        }
    } else if let Some(text) = &spec.contains {
        Predicate::Contains(text.clone())
    } else if let Some(n) = spec.max_bytes {
        Predicate::MaxBytes(n)
    } else {
        return None;
    };
    match (&subject, &predicate) {
        (Subject::Body, Predicate::Exists(_)) => {
            p.add(
                format!("{key}.exists"),
                "`exists` needs a `jsonpath` or `header` subject",
                "use `max_bytes`, `contains` or `matches` on the body",
            );
            None
        }
        (Subject::JsonPath(..) | Subject::Header(_), Predicate::MaxBytes(_)) => {
            p.add(
                format!("{key}.max_bytes"),
                "`max_bytes` applies to the body only",
                "write `max_bytes` without `jsonpath` or `header`",
            );
            None
        }
        _ => Some(Assert { subject, predicate }),
    }
}
