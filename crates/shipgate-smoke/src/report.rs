//! The smoke report: typed, serialisable as stable JSON (`schema_version` 1), and rendered as
//! text for humans and JUnit XML for CI test views. Every string in it has been redacted.

use std::time::Duration;

use serde::Serialize;
use shipgate_core::one_line;

use crate::engine::ms;
use crate::spec::Check;

/// The JSON schema version of [`SmokeReport`].
pub const SCHEMA_VERSION: u32 = 1;

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckOutcome {
    /// Every sample passed.
    Passed,
    /// It failed; `failure` says why.
    Failed,
    /// It did not run because a check it depends on did not pass.
    Skipped,
    /// The run was cancelled before it finished.
    Cancelled,
}

/// One assert's result (of the last attempt).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AssertReport {
    /// `$.status equals "ok"`.
    pub assert: String,
    /// Whether it held.
    pub passed: bool,
    /// The value seen, shortened and redacted, when it helps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actual: Option<String>,
}

/// One check's report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckReport {
    /// The check's name.
    pub name: String,
    /// HTTP method.
    pub method: String,
    /// The path, with captures shown as `{{name}}`.
    pub path: String,
    /// Whether a failure fails the gate.
    pub critical: bool,
    /// The outcome.
    pub outcome: CheckOutcome,
    /// Requests sent (every attempt of every sample).
    pub attempts: u32,
    /// The last status seen.
    pub status: Option<u16>,
    /// Latency of each passing sample, in milliseconds (to the last body byte).
    pub latency_ms: Vec<f64>,
    /// Median latency.
    pub p50_ms: Option<f64>,
    /// 95th percentile latency (nearest rank).
    pub p95_ms: Option<f64>,
    /// Assert results of the last attempt.
    pub asserts: Vec<AssertReport>,
    /// Why it failed or was skipped.
    pub failure: Option<String>,
    /// The start of the failing response's body (redacted).
    pub body_excerpt: Option<String>,
}

impl CheckReport {
    pub(crate) fn started(check: &Check, path: String) -> CheckReport {
        CheckReport {
            name: check.name.clone(),
            method: check.method.to_string(),
            path,
            critical: check.critical,
            outcome: CheckOutcome::Failed,
            attempts: 0,
            status: None,
            latency_ms: Vec::new(),
            p50_ms: None,
            p95_ms: None,
            asserts: Vec::new(),
            failure: None,
            body_excerpt: None,
        }
    }

    pub(crate) fn skipped(check: &Check, reason: String) -> CheckReport {
        let mut report = CheckReport::started(check, check.path.display());
        report.outcome = CheckOutcome::Skipped;
        report.failure = Some(reason);
        report
    }

    pub(crate) fn fail(&mut self, reason: String) {
        self.outcome = CheckOutcome::Failed;
        self.failure = Some(reason);
    }

    pub(crate) fn set_latencies(&mut self, latencies: &[Duration]) {
        self.latency_ms = latencies.iter().map(|d| round_ms(*d)).collect();
        if !latencies.is_empty() {
            self.p50_ms = Some(round_ms(percentile(latencies, 50.0)));
            self.p95_ms = Some(round_ms(percentile(latencies, 95.0)));
        }
    }

    /// A critical check that did not pass.
    pub fn fails_gate(&self) -> bool {
        self.critical && self.outcome != CheckOutcome::Passed
    }
}

/// Counts by outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Checks in the spec.
    pub total: usize,
    /// Passed.
    pub passed: usize,
    /// Failed (critical or not).
    pub failed: usize,
    /// Skipped because a dependency failed.
    pub skipped: usize,
    /// Cancelled.
    pub cancelled: usize,
    /// Critical checks that did not pass: the gate fails when this is not 0.
    pub critical_failures: usize,
}

/// The result of a smoke run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SmokeReport {
    /// Always [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// True when every critical check passed.
    pub passed: bool,
    /// The base URL tested.
    pub base_url: String,
    /// Wall time of the run, in milliseconds.
    pub duration_ms: f64,
    /// Counts.
    pub summary: Summary,
    /// Each check, in spec order.
    pub checks: Vec<CheckReport>,
}

impl SmokeReport {
    pub(crate) fn new(
        base_url: String,
        duration: Duration,
        checks: Vec<CheckReport>,
    ) -> SmokeReport {
        let count = |o: CheckOutcome| checks.iter().filter(|c| c.outcome == o).count();
        let summary = Summary {
            total: checks.len(),
            passed: count(CheckOutcome::Passed),
            failed: count(CheckOutcome::Failed),
            skipped: count(CheckOutcome::Skipped),
            cancelled: count(CheckOutcome::Cancelled),
            critical_failures: checks.iter().filter(|c| c.fails_gate()).count(),
        };
        SmokeReport {
            schema_version: SCHEMA_VERSION,
            // Fail closed: a report without checks never passes.
            passed: summary.critical_failures == 0 && !checks.is_empty(),
            base_url,
            duration_ms: round_ms(duration),
            summary,
            checks,
        }
    }

    /// The human report: one line per check, then the failures with their asserts and a body
    /// excerpt.
    pub fn to_text(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        let verdict = if self.passed { "passed" } else { "FAILED" };
        let s = &self.summary;
        let _ = writeln!(
            out,
            "smoke {verdict}: {}/{} checks passed against {} in {}",
            s.passed,
            s.total,
            self.base_url,
            ms(Duration::from_secs_f64(self.duration_ms / 1000.0))
        );
        for check in &self.checks {
            let mark = match check.outcome {
                CheckOutcome::Passed => "PASS",
                CheckOutcome::Failed if check.critical => "FAIL",
                CheckOutcome::Failed => "WARN",
                CheckOutcome::Skipped => "SKIP",
                CheckOutcome::Cancelled => "STOP",
            };
            let status = check
                .status
                .map_or_else(|| "---".to_owned(), |s| s.to_string());
            let latency = match (check.p50_ms, check.latency_ms.len()) {
                (Some(p50), n) if n > 1 => format!(
                    "p50 {p50:.1} ms, p95 {:.1} ms ({n} samples)",
                    check.p95_ms.unwrap_or(p50)
                ),
                (Some(p50), _) => format!("{p50:.1} ms"),
                (None, _) => String::new(),
            };
            let attempts = if check.attempts > 1 {
                format!(", {} attempts", check.attempts)
            } else {
                String::new()
            };
            let _ = writeln!(
                out,
                "  {mark} {:<24} {} {} {status} {latency}{attempts}",
                check.name, check.method, check.path
            );
            if let Some(failure) = &check.failure {
                let _ = writeln!(out, "       {}", one_line(failure));
                // Failing asserts the failure line does not already name.
                for assert in check
                    .asserts
                    .iter()
                    .filter(|a| !a.passed && !failure.contains(&a.assert))
                {
                    let _ = writeln!(
                        out,
                        "       assert: {}{}",
                        assert.assert,
                        assert
                            .actual
                            .as_ref()
                            .map(|a| format!(" (actual: {})", one_line(a)))
                            .unwrap_or_default()
                    );
                }
                if let Some(body) = &check.body_excerpt {
                    let _ = writeln!(out, "       body: {}", one_line(body));
                }
            }
        }
        out
    }

    /// JUnit XML: one test suite, one test case per check; non-critical failures are
    /// reported as failures too, with "non-critical" in the message. (Feature `junit`.)
    #[cfg(feature = "junit")]
    pub fn to_junit(&self) -> String {
        use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
        use shipgate_core::printable;
        let mut report = Report::new("shipgate smoke");
        let mut suite = TestSuite::new(self.base_url.clone());
        for check in &self.checks {
            let status = match check.outcome {
                CheckOutcome::Passed => TestCaseStatus::success(),
                CheckOutcome::Skipped | CheckOutcome::Cancelled => {
                    let mut status = TestCaseStatus::skipped();
                    if let Some(reason) = &check.failure {
                        status.set_message(printable(reason));
                    }
                    status
                }
                CheckOutcome::Failed => {
                    let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
                    // XML 1.0 cannot carry control characters, even escaped.
                    let reason =
                        printable(check.failure.as_deref().unwrap_or_default()).into_owned();
                    status.set_message(if check.critical {
                        reason
                    } else {
                        format!("non-critical: {reason}")
                    });
                    let mut description = String::new();
                    for assert in &check.asserts {
                        description.push_str(&format!(
                            "{} {}\n",
                            if assert.passed { "ok  " } else { "FAIL" },
                            assert.assert
                        ));
                    }
                    if let Some(body) = &check.body_excerpt {
                        description.push_str(&format!("body: {}\n", printable(body)));
                    }
                    status.set_description(description);
                    status
                }
            };
            let mut case = TestCase::new(check.name.clone(), status);
            case.set_classname(format!("{} {}", check.method, check.path));
            if let Some(p50) = check.p50_ms {
                case.set_time(Duration::from_secs_f64(p50 / 1000.0));
            }
            suite.add_test_case(case);
        }
        suite.set_time(Duration::from_secs_f64(self.duration_ms / 1000.0));
        report.add_test_suite(suite);
        report.to_string().unwrap_or_default()
    }
}

/// Nearest-rank percentile of `samples` (`p` in 0..=100).
pub(crate) fn percentile(samples: &[Duration], p: f64) -> Duration {
    if samples.is_empty() {
        return Duration::ZERO;
    }
    let mut sorted = samples.to_vec();
    sorted.sort();
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn round_ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1_000_000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let ms = |v: &[u64]| {
            v.iter()
                .map(|m| Duration::from_millis(*m))
                .collect::<Vec<_>>()
        };
        let samples = ms(&[5, 1, 4, 2, 3]);
        assert_eq!(percentile(&samples, 50.0), Duration::from_millis(3));
        assert_eq!(percentile(&samples, 95.0), Duration::from_millis(5));
        assert_eq!(percentile(&ms(&[7]), 95.0), Duration::from_millis(7));
        assert_eq!(percentile(&[], 50.0), Duration::ZERO);
    }

    #[test]
    fn a_report_without_checks_does_not_pass() {
        assert!(!SmokeReport::new("http://x".into(), Duration::ZERO, Vec::new()).passed);
    }
}
