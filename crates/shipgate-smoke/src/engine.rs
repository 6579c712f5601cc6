//! Running a compiled [`Spec`]: checks in dependency layers (a check that uses a capture runs
//! after the check that defines it), the checks of one layer concurrently up to the spec's
//! concurrency, one shared connection pool, latency measured to the last body byte.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use futures_util::StreamExt;
use reqwest::header::{HeaderMap, HeaderValue};
use shipgate_core::{Redactor, Secret};
use shipgate_http::{
    CappedBody, ClientOptions, FailureKind, build_client, classify_error, is_retryable_status,
    next_wait, read_body_capped, retry_after,
};
use tokio_util::sync::CancellationToken;

use crate::report::{AssertReport, CheckOutcome, CheckReport, SmokeReport, percentile};
use crate::spec::{Assert, Body, Check, Predicate, Spec, Subject};

/// Bodies are read up to this many bytes; the rest is never read.
pub const BODY_CAP: usize = 4 * 1024 * 1024;

/// How much of a failing response's body a report shows.
const EXCERPT_CHARS: usize = 300;

/// What the runner reports while it works, for progress lines.
#[derive(Debug, Clone, PartialEq)]
pub enum Progress {
    /// An attempt failed and another follows after `retry_in`.
    Retrying {
        /// The check.
        check: String,
        /// The attempt that failed (1-based).
        attempt: u32,
        /// Attempts allowed.
        of: u32,
        /// Why it failed (redacted).
        reason: String,
        /// The wait before the next attempt.
        retry_in: Duration,
    },
    /// A check finished.
    Finished {
        /// The check.
        check: String,
        /// Its outcome.
        outcome: CheckOutcome,
        /// Its latency (p50 when sampled), if it got a response.
        latency: Option<Duration>,
    },
}

/// A progress callback.
pub type ProgressFn = Arc<dyn Fn(&Progress) + Send + Sync>;

/// Errors before any check runs.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// The HTTP client could not be built.
    #[error(transparent)]
    Client(#[from] shipgate_http::HttpError),
}

/// Runs smoke specs. Holds the connection pool: reuse one runner for many runs.
#[derive(Clone)]
pub struct SmokeRunner {
    client: reqwest::Client,
    /// Built on the first spec that allows insecure targets, then shared by every clone (a
    /// monitor clones the runner per check; each clone must not open its own pool).
    insecure_client: Arc<std::sync::OnceLock<reqwest::Client>>,
    redactor: Redactor,
    progress: Option<ProgressFn>,
}

impl std::fmt::Debug for SmokeRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmokeRunner").finish_non_exhaustive()
    }
}

impl SmokeRunner {
    /// A runner with its own connection pool. `redactor` masks secret values in reports; the
    /// runner adds the API key and every captured value to it.
    pub fn new(redactor: Redactor) -> Result<SmokeRunner, RunError> {
        Ok(SmokeRunner {
            client: build_client(&ClientOptions::default())?,
            insecure_client: Arc::default(),
            redactor,
            progress: None,
        })
    }

    /// Reports progress to `progress` (called from the runner's tasks).
    pub fn with_progress(mut self, progress: ProgressFn) -> SmokeRunner {
        self.progress = Some(progress);
        self
    }

    /// Runs every check of `spec` and reports. Never prints. When `cancel` fires, waiting
    /// stops, requests in flight are dropped, and unfinished checks are reported cancelled.
    pub async fn run(
        &mut self,
        spec: &Spec,
        cancel: &CancellationToken,
    ) -> Result<SmokeReport, RunError> {
        if let Some((_, key)) = &spec.api_key {
            self.redactor.add(key);
        }
        let client = if spec.allow_insecure {
            match self.insecure_client.get() {
                Some(client) => client.clone(),
                None => {
                    let client = build_client(&ClientOptions {
                        accept_invalid_certs: true,
                        ..ClientOptions::default()
                    })?;
                    // Another clone may have won the race: use whichever was stored.
                    self.insecure_client.get_or_init(|| client).clone()
                }
            }
        } else {
            self.client.clone()
        };
        let started = Instant::now();
        let captures: Arc<Mutex<HashMap<String, Secret>>> = Arc::default();
        let mut reports: Vec<Option<CheckReport>> = vec![None; spec.checks.len()];

        for layer in layers(&spec.checks) {
            let ctx = RunContext {
                client: &client,
                spec,
                redactor: &self.redactor,
                progress: self.progress.as_ref(),
                cancel,
                captures: &captures,
            };
            let done: Vec<(usize, CheckReport)> = futures_util::stream::iter(layer)
                .map(|i| {
                    let ctx = &ctx;
                    let reports = &reports;
                    async move {
                        let check = &spec.checks[i];
                        let blocked = check.depends_on.iter().find_map(|&d| {
                            let report = reports[d].as_ref()?;
                            (report.outcome != CheckOutcome::Passed).then(|| report.name.clone())
                        });
                        let report = match blocked {
                            Some(provider) => CheckReport::skipped(
                                check,
                                format!("skipped: check `{provider}` did not pass, so its captures are missing"),
                            ),
                            None => ctx.run_check(check).await,
                        };
                        if let Some(progress) = ctx.progress {
                            progress(&Progress::Finished {
                                check: report.name.clone(),
                                outcome: report.outcome,
                                latency: report.p50_ms.map(|ms| Duration::from_secs_f64(ms / 1000.0)),
                            });
                        }
                        (i, report)
                    }
                })
                .buffer_unordered(spec.concurrency)
                .collect()
                .await;
            for (i, report) in done {
                reports[i] = Some(report);
            }
        }

        let checks = reports.into_iter().flatten().collect();
        Ok(SmokeReport::new(
            self.redactor.redact(spec.base_url.as_str()).into_owned(),
            started.elapsed(),
            checks,
        ))
    }
}

/// Groups checks into layers: a check runs in the layer after the last check it depends on.
fn layers(checks: &[Check]) -> Vec<Vec<usize>> {
    let mut depth = vec![0usize; checks.len()];
    for (i, check) in checks.iter().enumerate() {
        // Dependencies always point to earlier checks (the compiler enforces it).
        depth[i] = check
            .depends_on
            .iter()
            .map(|&d| depth[d] + 1)
            .max()
            .unwrap_or(0);
    }
    let deepest = depth.iter().copied().max().unwrap_or(0);
    (0..=deepest)
        .map(|level| (0..checks.len()).filter(|&i| depth[i] == level).collect())
        .filter(|layer: &Vec<usize>| !layer.is_empty())
        .collect()
}

struct RunContext<'a> {
    client: &'a reqwest::Client,
    spec: &'a Spec,
    redactor: &'a Redactor,
    progress: Option<&'a ProgressFn>,
    cancel: &'a CancellationToken,
    captures: &'a Arc<Mutex<HashMap<String, Secret>>>,
}

/// A response as observed.
struct Observed {
    status: u16,
    headers: HeaderMap,
    body: CappedBody,
    latency: Duration,
}

/// One attempt's verdict.
enum Verdict {
    Pass,
    Fail {
        reason: String,
        /// Another attempt can help (transport error, 5xx, 429).
        transient: bool,
        retry_after: Option<Duration>,
    },
}

impl RunContext<'_> {
    async fn run_check(&self, check: &Check) -> CheckReport {
        let captured = match self.captures.lock() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        let mut report = CheckReport::started(
            check,
            self.redactor.redact(&check.path.display()).into_owned(),
        );
        let mut last: Option<Observed> = None;
        let mut latencies = Vec::new();

        for _sample in 0..check.samples {
            let (observed, failure) = self.attempts(check, &captured, &mut report).await;
            if let Some(observed) = &observed {
                report.status = Some(observed.status);
            }
            if let Some(reason) = failure {
                report.fail(self.redactor.redact(&reason).into_owned());
                if let Some(observed) = &observed {
                    report.body_excerpt = Some(self.excerpt(&observed.body));
                }
                if report.outcome == CheckOutcome::Failed && self.cancel.is_cancelled() {
                    report.outcome = CheckOutcome::Cancelled;
                }
                return report;
            }
            if let Some(observed) = observed {
                latencies.push(observed.latency);
                last = Some(observed);
            }
        }

        report.set_latencies(&latencies);
        if check.samples > 1 {
            let p50 = percentile(&latencies, 50.0);
            let p95 = percentile(&latencies, 95.0);
            if let Some(max) = check.max_latency
                && p50 > max
            {
                report.fail(format!(
                    "p50 latency {} over {} samples exceeds max_latency {}",
                    ms(p50),
                    check.samples,
                    ms(max)
                ));
                return report;
            }
            if let Some(max) = check.max_p95_latency
                && p95 > max
            {
                report.fail(format!(
                    "p95 latency {} over {} samples exceeds max_p95_latency {}",
                    ms(p95),
                    check.samples,
                    ms(max)
                ));
                return report;
            }
        }

        if let Some(observed) = last
            && !check.captures.is_empty()
            && let Err(reason) = self.capture(check, &observed)
        {
            report.fail(reason);
            report.body_excerpt = Some(self.excerpt(&observed.body));
            return report;
        }
        report.outcome = CheckOutcome::Passed;
        report
    }

    /// One sample: attempts until one passes, a failure is final, or attempts run out.
    async fn attempts(
        &self,
        check: &Check,
        captured: &HashMap<String, Secret>,
        report: &mut CheckReport,
    ) -> (Option<Observed>, Option<String>) {
        let mut delays = check.backoff.delays(check.attempts);
        let mut attempt = 0;
        loop {
            attempt += 1;
            report.attempts += 1;
            let (observed, verdict) = match self.request(check, captured).await {
                Ok(observed) => {
                    let (verdict, asserts) = self.judge(check, &observed);
                    report.asserts = asserts;
                    (Some(observed), verdict)
                }
                Err((kind, reason)) => (
                    None,
                    Verdict::Fail {
                        reason,
                        transient: kind.is_transient(),
                        retry_after: None,
                    },
                ),
            };
            let (reason, transient, server_wait) = match verdict {
                Verdict::Pass => return (observed, None),
                Verdict::Fail {
                    reason,
                    transient,
                    retry_after,
                } => (reason, transient, retry_after),
            };
            let retryable = transient || check.wait_until_healthy;
            let planned = if retryable { delays.next() } else { None };
            let (Some(planned), false) = (planned, self.cancel.is_cancelled()) else {
                let reason = if attempt > 1 {
                    format!("{reason} (after {attempt} attempts)")
                } else {
                    reason
                };
                return (observed, Some(reason));
            };
            // The server's Retry-After may lengthen a wait, but never beyond ten intervals.
            let wait = next_wait(
                planned,
                server_wait,
                planned.saturating_mul(10).max(Duration::from_secs(60)),
            );
            if let Some(progress) = self.progress {
                progress(&Progress::Retrying {
                    check: check.name.clone(),
                    attempt,
                    of: check.attempts,
                    reason: self.redactor.redact(&reason).into_owned(),
                    retry_in: wait,
                });
            }
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = self.cancel.cancelled() => {
                    return (observed, Some(format!("{reason}; cancelled while waiting to retry")));
                }
            }
        }
    }

    /// Sends one request and reads the body (capped), timing it to the last byte.
    async fn request(
        &self,
        check: &Check,
        captured: &HashMap<String, Secret>,
    ) -> Result<Observed, (FailureKind, String)> {
        let url = join_url(self.spec.base_url.as_str(), &check.path.render(captured));
        let mut request = self
            .client
            .request(check.method.clone(), url)
            .timeout(check.timeout);
        for (name, value) in &self.spec.headers {
            request = request.header(name, value);
        }
        if let Some((name, key)) = &self.spec.api_key {
            let mut value = HeaderValue::from_str(key.expose()).map_err(|_| {
                (
                    FailureKind::Other,
                    "the API key is not a valid header value".to_owned(),
                )
            })?;
            value.set_sensitive(true);
            request = request.header(name, value);
        }
        for (name, template) in &check.headers {
            let mut value = HeaderValue::from_str(&template.render(captured)).map_err(|_| {
                (
                    FailureKind::Other,
                    format!("header {name} is not a valid header value once filled in"),
                )
            })?;
            value.set_sensitive(template.captures().next().is_some());
            request = request.header(name, value);
        }
        request = match &check.body {
            Some(Body::Json(template)) => request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(template.render(captured).to_string()),
            Some(Body::Text(template)) => request.body(template.render(captured)),
            None => request,
        };

        let started = Instant::now();
        let exchange = async {
            let response = request.send().await?;
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let body = read_body_capped(response, BODY_CAP).await?;
            Ok::<_, reqwest::Error>((status, headers, body))
        };
        let outcome = tokio::select! {
            outcome = tokio::time::timeout(check.timeout, exchange) => outcome,
            () = self.cancel.cancelled() => return Err((FailureKind::Other, "cancelled".to_owned())),
        };
        match outcome {
            Err(_) => Err((
                FailureKind::Timeout,
                format!("no complete response within {}", ms(check.timeout)),
            )),
            Ok(Err(err)) => {
                let (kind, message) = classify_error(&err);
                let message = match kind {
                    FailureKind::Timeout => format!(
                        "no complete response within {} ({message})",
                        ms(check.timeout)
                    ),
                    FailureKind::Tls => format!("TLS failure: {message}"),
                    _ => message,
                };
                Err((kind, self.redactor.redact(&message).into_owned()))
            }
            Ok(Ok((status, headers, body))) => Ok(Observed {
                status,
                headers,
                body,
                latency: started.elapsed(),
            }),
        }
    }

    /// Judges a response: status, asserts, latency (single samples).
    fn judge(&self, check: &Check, observed: &Observed) -> (Verdict, Vec<AssertReport>) {
        if !check.status.matches(observed.status) {
            let transient = is_retryable_status(
                reqwest::StatusCode::from_u16(observed.status)
                    .unwrap_or(reqwest::StatusCode::INTERNAL_SERVER_ERROR),
            );
            let verdict = Verdict::Fail {
                reason: format!(
                    "status {} (expected {})",
                    observed.status,
                    check.status.describe()
                ),
                transient,
                retry_after: retry_after(&observed.headers, SystemTime::now()),
            };
            return (verdict, Vec::new());
        }

        let json = if check.needs_json() {
            match parse_json(&observed.body) {
                Ok(json) => Some(json),
                Err(reason) => {
                    let verdict = Verdict::Fail {
                        reason,
                        transient: false,
                        retry_after: None,
                    };
                    return (verdict, Vec::new());
                }
            }
        } else {
            None
        };

        let mut results = Vec::new();
        let mut first_failure = None;
        for assert in &check.asserts {
            let (passed, actual) = evaluate(assert, observed, json.as_ref());
            let actual = actual.map(|a| self.redactor.redact(&a).into_owned());
            if !passed && first_failure.is_none() {
                first_failure = Some(match &actual {
                    Some(actual) => {
                        format!("assert failed: {} (actual: {actual})", assert.describe())
                    }
                    None => format!("assert failed: {}", assert.describe()),
                });
            }
            results.push(AssertReport {
                assert: assert.describe(),
                passed,
                actual,
            });
        }
        if let Some(reason) = first_failure {
            return (
                Verdict::Fail {
                    reason,
                    transient: false,
                    retry_after: None,
                },
                results,
            );
        }

        if check.samples == 1
            && let Some(max) = check.max_latency
            && observed.latency > max
        {
            let reason = format!(
                "took {}, over max_latency {}",
                ms(observed.latency),
                ms(max)
            );
            return (
                Verdict::Fail {
                    reason,
                    transient: false,
                    retry_after: None,
                },
                results,
            );
        }
        (Verdict::Pass, results)
    }

    fn capture(&self, check: &Check, observed: &Observed) -> Result<(), String> {
        let json = parse_json(&observed.body)?;
        let mut values = Vec::new();
        for (name, path, source) in &check.captures {
            let value = path.query(&json).exactly_one().map_err(|_| {
                format!("capture `{name}`: {source} did not match exactly one value")
            })?;
            let text = match value {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let secret = Secret::new(text);
            self.redactor.add(&secret);
            values.push((name.clone(), secret));
        }
        let mut captures = match self.captures.lock() {
            Ok(c) => c,
            Err(poisoned) => poisoned.into_inner(),
        };
        captures.extend(values);
        Ok(())
    }

    fn excerpt(&self, body: &CappedBody) -> String {
        let text = String::from_utf8_lossy(&body.bytes);
        let mut excerpt: String = text.chars().take(EXCERPT_CHARS).collect();
        if text.chars().count() > EXCERPT_CHARS || body.truncated {
            excerpt.push('…');
        }
        self.redactor.redact(&excerpt).into_owned()
    }
}

fn parse_json(body: &CappedBody) -> Result<serde_json::Value, String> {
    if body.truncated {
        return Err(format!(
            "the body is larger than the {BODY_CAP}-byte cap, so its JSON cannot be checked"
        ));
    }
    if body.bytes.iter().all(u8::is_ascii_whitespace) {
        return Err("empty body where a JSON assert or capture is declared".to_owned());
    }
    serde_json::from_slice(&body.bytes).map_err(|err| format!("the body is not JSON: {err}"))
}

/// Evaluates an assert: (passed, the actual value when useful to show).
fn evaluate(
    assert: &Assert,
    observed: &Observed,
    json: Option<&serde_json::Value>,
) -> (bool, Option<String>) {
    match &assert.subject {
        Subject::JsonPath(path, _) => {
            let Some(json) = json else {
                return (false, None);
            };
            let nodes = path.query(json).all();
            match &assert.predicate {
                Predicate::Exists(expected) => (
                    nodes.is_empty() != *expected,
                    Some(format!("{} match(es)", nodes.len())),
                ),
                _ if nodes.is_empty() => (false, Some("no match".to_owned())),
                predicate => {
                    let value = if nodes.len() == 1 {
                        nodes[0].clone()
                    } else {
                        serde_json::Value::Array(nodes.into_iter().cloned().collect())
                    };
                    let text = match &value {
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    let passed = match predicate {
                        Predicate::Equals(expected) => json_equals(expected, &value),
                        Predicate::Matches(regex) => regex.is_match(&text),
                        Predicate::Contains(needle) => text.contains(needle.as_str()),
                        Predicate::Exists(_) | Predicate::MaxBytes(_) => false,
                    };
                    (passed, Some(shorten(&value.to_string())))
                }
            }
        }
        Subject::Header(name) => {
            let value = observed
                .headers
                .get(name)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
            let passed = match (&assert.predicate, &value) {
                (Predicate::Exists(expected), v) => v.is_some() == *expected,
                (_, None) => false,
                (Predicate::Equals(expected), Some(v)) => match expected {
                    serde_json::Value::String(s) => s == v,
                    other => *v == format!("{other}"),
                },
                (Predicate::Matches(regex), Some(v)) => regex.is_match(v),
                (Predicate::Contains(needle), Some(v)) => v.contains(needle.as_str()),
                (Predicate::MaxBytes(_), Some(_)) => false,
            };
            (
                passed,
                Some(value.map_or_else(|| "absent".to_owned(), |v| shorten(&v))),
            )
        }
        Subject::Body => {
            let text = String::from_utf8_lossy(&observed.body.bytes);
            match &assert.predicate {
                Predicate::MaxBytes(max) => {
                    let len = observed.body.bytes.len() as u64;
                    let over = observed.body.truncated || len > *max;
                    let shown = if observed.body.truncated {
                        format!("more than {len} bytes")
                    } else {
                        format!("{len} bytes")
                    };
                    (!over, Some(shown))
                }
                _ if observed.body.truncated => {
                    (false, Some(format!("body over the {BODY_CAP}-byte cap")))
                }
                Predicate::Contains(needle) => (text.contains(needle.as_str()), None),
                Predicate::Matches(regex) => (regex.is_match(&text), None),
                Predicate::Equals(expected) => {
                    let passed = match expected {
                        serde_json::Value::String(s) => *s == text,
                        other => serde_json::from_str::<serde_json::Value>(&text)
                            .is_ok_and(|v| v == *other),
                    };
                    (passed, Some(shorten(&text)))
                }
                Predicate::Exists(_) => (false, None),
            }
        }
    }
}

/// JSON equality; a string expectation also matches a scalar with that text (`"200"` = 200).
fn json_equals(expected: &serde_json::Value, actual: &serde_json::Value) -> bool {
    if expected == actual {
        return true;
    }
    match (expected, actual) {
        (
            serde_json::Value::String(s),
            serde_json::Value::Number(_) | serde_json::Value::Bool(_),
        ) => format!("{actual}") == *s,
        (serde_json::Value::Number(a), serde_json::Value::Number(b)) => a.as_f64() == b.as_f64(),
        _ => false,
    }
}

fn shorten(text: &str) -> String {
    const MAX: usize = 120;
    if text.chars().count() <= MAX {
        text.to_owned()
    } else {
        let mut out: String = text.chars().take(MAX).collect();
        out.push('…');
        out
    }
}

/// `https://h/base/` + `/x` → `https://h/base/x`.
fn join_url(base: &str, path: &str) -> String {
    format!("{}{}", base.trim_end_matches('/'), path)
}

/// `12.3 ms`, `1.50 s`.
pub(crate) fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 1000.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{:.2} s", ms / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_paths_under_the_base_path() {
        assert_eq!(join_url("https://h/", "/x"), "https://h/x");
        assert_eq!(join_url("https://h/api/", "/x?y=1"), "https://h/api/x?y=1");
        assert_eq!(join_url("https://h/api", "/x"), "https://h/api/x");
    }

    #[test]
    fn string_expectations_match_scalars_by_text() {
        assert!(json_equals(
            &serde_json::json!("200"),
            &serde_json::json!(200)
        ));
        assert!(json_equals(
            &serde_json::json!("true"),
            &serde_json::json!(true)
        ));
        assert!(json_equals(&serde_json::json!(1), &serde_json::json!(1.0)));
        assert!(!json_equals(
            &serde_json::json!("ok"),
            &serde_json::json!("OK")
        ));
        assert!(!json_equals(&serde_json::json!(1), &serde_json::json!("1")));
    }

    #[test]
    fn empty_truncated_and_non_json_bodies_fail_closed() {
        let body = |b: &[u8], truncated| CappedBody {
            bytes: b.to_vec(),
            truncated,
        };
        assert!(
            parse_json(&body(b"", false))
                .unwrap_err()
                .contains("empty body")
        );
        assert!(
            parse_json(&body(b"  \n", false))
                .unwrap_err()
                .contains("empty body")
        );
        assert!(
            parse_json(&body(b"<html>", false))
                .unwrap_err()
                .contains("not JSON")
        );
        assert!(parse_json(&body(b"{}", true)).unwrap_err().contains("cap"));
        assert!(parse_json(&body(b"{\"a\":1}", false)).is_ok());
    }
}
