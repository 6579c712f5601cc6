//! Building a [`Spec`] in code, for programs that embed the smoke engine without a
//! configuration file. The builder fills the same `[smoke]` structure a file would and
//! compiles it with [`compile`], so a spec built in code is checked exactly like one read from
//! a file: every problem comes back as a [`SpecError`] naming the check and key.

use std::time::Duration;

use shipgate_config::{AssertSpec, SmokeCheck, SmokeConfig, StatusExpectation};
use shipgate_core::{HumanDuration, Secret};

use crate::spec::{Spec, SpecError, SpecOptions, compile};

/// Builds a [`Spec`] against a base URL.
///
/// ```
/// use shipgate_smoke::{CheckBuilder, SpecBuilder};
/// let spec = SpecBuilder::new("https://api.example.com")
///     .check(CheckBuilder::get("health", "/healthz").status(200))
///     .check(
///         CheckBuilder::post_json("detect", "/api/detect", serde_json::json!({"text": "hi"}))
///             .json_exists("$.result"),
///     )
///     .build()
///     .unwrap();
/// assert_eq!(spec.len(), 2);
/// ```
#[derive(Debug, Clone)]
pub struct SpecBuilder {
    config: SmokeConfig,
    options: SpecOptions,
}

impl SpecBuilder {
    /// A spec without checks against `base_url` (`https://…`; `http://` needs
    /// [`SpecBuilder::allow_insecure`] when [`SpecBuilder::production_like`]).
    pub fn new(base_url: impl Into<String>) -> SpecBuilder {
        SpecBuilder {
            config: SmokeConfig {
                base_url: Some(base_url.into()),
                ..SmokeConfig::default()
            },
            options: SpecOptions::default(),
        }
    }

    /// Adds a check; checks run in the order added, at most [`SpecBuilder::concurrency`] at
    /// once.
    pub fn check(mut self, check: CheckBuilder) -> SpecBuilder {
        self.config.checks.push(check.0);
        self
    }

    /// Sends `key` in `header` with every request (masked in every report).
    pub fn api_key(mut self, header: impl Into<String>, key: Secret) -> SpecBuilder {
        self.config.api_key_header = header.into();
        self.options.api_key = Some(key);
        self
    }

    /// Refuses `http://` and unverified TLS unless [`SpecBuilder::allow_insecure`].
    pub fn production_like(mut self, production_like: bool) -> SpecBuilder {
        self.options.production_like = production_like;
        self
    }

    /// Accepts `http://` and unverified TLS even when production-like.
    pub fn allow_insecure(mut self) -> SpecBuilder {
        self.config.allow_insecure = true;
        self
    }

    /// Checks run at once (default 4).
    pub fn concurrency(mut self, checks: u32) -> SpecBuilder {
        self.config.concurrency = checks;
        self
    }

    /// Per-request timeout of checks that set none (default 10 s).
    pub fn timeout(mut self, timeout: Duration) -> SpecBuilder {
        self.config.timeout = HumanDuration::new(timeout);
        self
    }

    /// Compiles the spec, or lists every problem (keys as in a file: `checks.1.status`).
    pub fn build(self) -> Result<Spec, SpecError> {
        compile(&self.config, &self.options)
    }
}

/// One check of a [`SpecBuilder`].
#[derive(Debug, Clone)]
pub struct CheckBuilder(SmokeCheck);

impl CheckBuilder {
    /// A `GET` of `path` named `name`, expecting a 2xx status.
    pub fn get(name: impl Into<String>, path: impl Into<String>) -> CheckBuilder {
        let mut check = SmokeCheck::get(path);
        check.name = name.into();
        CheckBuilder(check)
    }

    /// A `POST` of `body` as JSON to `path` (placeholders such as `{{token}}` are filled from
    /// earlier captures).
    pub fn post_json(
        name: impl Into<String>,
        path: impl Into<String>,
        body: serde_json::Value,
    ) -> CheckBuilder {
        let mut check = CheckBuilder::get(name, path);
        check.0.method = "POST".to_owned();
        check.0.json = Some(body);
        check
    }

    /// Expects exactly this status.
    pub fn status(mut self, code: u16) -> CheckBuilder {
        self.0.status = Some(StatusExpectation::Code(code));
        self
    }

    /// Sends a header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> CheckBuilder {
        self.0.headers.insert(name.into(), value.into());
        self
    }

    /// Expects the JSONPath to match at least one value.
    pub fn json_exists(self, jsonpath: impl Into<String>) -> CheckBuilder {
        self.assert(AssertSpec {
            jsonpath: Some(jsonpath.into()),
            exists: Some(true),
            ..AssertSpec::default()
        })
    }

    /// Expects the JSONPath's value to equal `value`.
    pub fn json_equals(
        self,
        jsonpath: impl Into<String>,
        value: serde_json::Value,
    ) -> CheckBuilder {
        self.assert(AssertSpec {
            jsonpath: Some(jsonpath.into()),
            equals: Some(value),
            ..AssertSpec::default()
        })
    }

    /// Expects the body to contain `text`.
    pub fn body_contains(self, text: impl Into<String>) -> CheckBuilder {
        self.assert(AssertSpec {
            body: true,
            contains: Some(text.into()),
            ..AssertSpec::default()
        })
    }

    /// Takes the value at `jsonpath` of the response as `name`, for later checks' templates
    /// (a secret: masked in every report).
    pub fn capture(mut self, name: impl Into<String>, jsonpath: impl Into<String>) -> CheckBuilder {
        self.0.captures.insert(name.into(), jsonpath.into());
        self
    }

    /// Fails the check when the response takes longer.
    pub fn max_latency(mut self, limit: Duration) -> CheckBuilder {
        self.0.max_latency = Some(HumanDuration::new(limit));
        self
    }

    /// Tries up to `attempts` times, `interval` apart.
    pub fn retry(mut self, attempts: u32, interval: Duration) -> CheckBuilder {
        self.0.retry.attempts = attempts;
        self.0.retry.interval = HumanDuration::new(interval);
        self
    }

    /// A failure of this check is reported but does not fail the gate.
    pub fn non_critical(mut self) -> CheckBuilder {
        self.0.critical = false;
        self
    }

    fn assert(mut self, assert: AssertSpec) -> CheckBuilder {
        self.0.asserts.push(assert);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spec_built_in_code_is_checked_like_a_file() {
        let err = SpecBuilder::new("http://api.example.com")
            .production_like(true)
            .check(CheckBuilder::get("health", "/healthz").status(999))
            .check(CheckBuilder::get("", "/x").header("X-A", "a\nb"))
            .concurrency(0)
            .build()
            .unwrap_err();
        let keys: Vec<&str> = err.problems.iter().map(|p| p.key.as_str()).collect();
        for key in [
            "base_url",
            "concurrency",
            "checks.0.status",
            "checks.1.headers.X-A",
            "checks.1.name",
        ] {
            assert!(keys.contains(&key), "{key} missing from {keys:?}");
        }
    }

    #[test]
    fn captures_flow_into_later_checks_and_insecure_is_explicit() {
        let spec = SpecBuilder::new("http://127.0.0.1:8080")
            .production_like(true)
            .allow_insecure()
            .api_key("X-API-Key", Secret::new("k"))
            .check(
                CheckBuilder::post_json("login", "/login", serde_json::json!({"user": "a"}))
                    .capture("token", "$.token"),
            )
            .check(
                CheckBuilder::get("me", "/me")
                    .header("Authorization", "Bearer {{token}}")
                    .json_equals("$.user", serde_json::json!("a"))
                    .body_contains("a")
                    .max_latency(Duration::from_millis(500))
                    .retry(3, Duration::from_millis(100))
                    .non_critical(),
            )
            .timeout(Duration::from_secs(2))
            .build()
            .unwrap();
        assert_eq!(spec.len(), 2);
        assert_eq!(spec.base_url().as_str(), "http://127.0.0.1:8080/");
    }
}
