//! A canary step's analysis: what each source says about the staged release after the step's
//! pause, and whether the step passes. Sources: the smoke spec against the staged release,
//! user traffic where the platform observes it ([`shipgate_provider::Provider::observe`]),
//! and an optional metric query ([`MetricQuery`], Prometheus in [`PrometheusQuery`]). A
//! source that is configured and cannot answer fails the step (closed).

use std::time::Duration;

use serde::Deserialize;
use shipgate_provider::TrafficObservation;
use tokio_util::sync::CancellationToken;

use crate::{CanaryStep, StepMetric, StepTraffic};

/// A canary: the traffic shares, the pause before each analysis, and what must hold.
#[derive(Default)]
pub struct Canary {
    /// Shares of new user traffic in percent, increasing, each 1 to 100. After the last one
    /// traffic moves to 100 % if it is not there yet.
    pub steps: Vec<u8>,
    /// How long each step runs before its analysis.
    pub pause: Duration,
    /// What each step's analysis requires.
    pub analysis: Analysis,
}

impl std::fmt::Debug for Canary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Canary")
            .field("steps", &self.steps)
            .field("pause", &self.pause)
            .finish_non_exhaustive()
    }
}

/// What a canary step's analysis requires.
pub struct Analysis {
    /// The most user requests (percent) the staged release may fail during a step.
    pub max_error_percent: f64,
    /// The slowest 95th-percentile latency allowed; `None`: reported, not judged.
    pub max_p95: Option<Duration>,
    /// Fewer user requests than this: the traffic check cannot judge, and says so.
    pub min_requests: u64,
    /// A metric whose value must not exceed its maximum.
    pub metric: Option<Box<dyn MetricQuery>>,
}

impl Default for Analysis {
    /// At most 1 % failed requests, judged from 20 requests, no latency bound, no metric.
    fn default() -> Self {
        Analysis {
            max_error_percent: 1.0,
            max_p95: None,
            min_requests: 20,
            metric: None,
        }
    }
}

/// Why a metric query gave no value. Every case fails the step.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MetricError {
    /// The server could not be asked or refused the query.
    #[error("{0}")]
    Unavailable(String),
    /// The query ran and gave no number (an empty vector, NaN).
    #[error("{0}")]
    NoValue(String),
}

/// A number to judge a canary step by (an error ratio, a latency) and its largest passing
/// value.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait::async_trait]
pub trait MetricQuery: Send + Sync {
    /// The query, as a person reads it.
    fn query(&self) -> String;
    /// The largest value that passes.
    fn max(&self) -> f64;
    /// Its value now.
    async fn value(&self, cancel: &CancellationToken) -> Result<f64, MetricError>;
}

/// A Prometheus instant query (`GET /api/v1/query`): the value of a scalar, or of the first
/// sample of a vector.
pub struct PrometheusQuery {
    client: reqwest::Client,
    endpoint: url::Url,
    query: String,
    max: f64,
    timeout: Duration,
}

impl PrometheusQuery {
    /// A query against the server at `base_url` (`http://prometheus:9090`), answered within
    /// `timeout` retries included. Fails when `base_url` is not a URL.
    pub fn new(
        client: reqwest::Client,
        base_url: &str,
        query: impl Into<String>,
        max: f64,
        timeout: Duration,
    ) -> Result<PrometheusQuery, url::ParseError> {
        let query = query.into();
        let mut endpoint =
            url::Url::parse(&format!("{}/api/v1/query", base_url.trim_end_matches('/')))?;
        endpoint.query_pairs_mut().append_pair("query", &query);
        Ok(PrometheusQuery {
            client,
            endpoint,
            query,
            max,
            timeout,
        })
    }

    async fn ask(&self) -> Result<f64, MetricError> {
        let policy = shipgate_http::RetryPolicy {
            timeout: self.timeout,
            max_wait: self.timeout,
            body_cap: 1024 * 1024,
            ..shipgate_http::RetryPolicy::default()
        };
        let fetched =
            shipgate_http::send_with_retry(|| self.client.get(self.endpoint.clone()), &policy)
                .await
                .map_err(|e| MetricError::Unavailable(format!("Prometheus did not answer: {e}")))?;
        let answer: QueryAnswer = serde_json::from_slice(&fetched.body.bytes).map_err(|e| {
            MetricError::Unavailable(format!(
                "Prometheus answered {} with something that is not a query result: {e}",
                fetched.status.as_u16()
            ))
        })?;
        if answer.status != "success" {
            return Err(MetricError::Unavailable(format!(
                "Prometheus refused the query ({}): {}",
                answer.error_type.unwrap_or_default(),
                shipgate_core::printable(&answer.error.unwrap_or_default())
            )));
        }
        let data = answer
            .data
            .ok_or_else(|| MetricError::NoValue("the answer has no data".to_owned()))?;
        let sample = match data.result_type.as_str() {
            "scalar" => data.result.get(1).cloned(),
            "vector" => data
                .result
                .get(0)
                .and_then(|first| first.get("value"))
                .and_then(|value| value.get(1))
                .cloned(),
            other => {
                return Err(MetricError::NoValue(format!(
                    "the query gives a {other}; it must give a scalar or a vector"
                )));
            }
        };
        let text = sample
            .as_ref()
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| MetricError::NoValue("the query returned no sample".to_owned()))?;
        match text.parse::<f64>() {
            Ok(value) if value.is_finite() => Ok(value),
            _ => Err(MetricError::NoValue(format!(
                "the query's value `{}` is not a number",
                shipgate_core::printable(text)
            ))),
        }
    }
}

#[derive(Deserialize)]
struct QueryAnswer {
    status: String,
    data: Option<QueryData>,
    #[serde(rename = "errorType")]
    error_type: Option<String>,
    error: Option<String>,
}

#[derive(Deserialize)]
struct QueryData {
    #[serde(rename = "resultType")]
    result_type: String,
    result: serde_json::Value,
}

#[async_trait::async_trait]
impl MetricQuery for PrometheusQuery {
    fn query(&self) -> String {
        self.query.clone()
    }

    fn max(&self) -> f64 {
        self.max
    }

    async fn value(&self, cancel: &CancellationToken) -> Result<f64, MetricError> {
        tokio::select! {
            () = cancel.cancelled() => Err(MetricError::Unavailable("interrupted".to_owned())),
            answer = tokio::time::timeout(self.timeout, self.ask()) => answer.unwrap_or_else(|_| {
                Err(MetricError::Unavailable(format!(
                    "Prometheus did not answer within {}s",
                    self.timeout.as_secs()
                )))
            }),
        }
    }
}

/// Judges one step from what each source gave: the smoke result (`None` without a spec), the
/// traffic seen during the step (`None`: not observed on this platform), and the metric.
pub(crate) fn judge(
    analysis: &Analysis,
    percent: u8,
    smoke_passed: Option<bool>,
    traffic: Option<&TrafficObservation>,
    metric: Option<(String, f64, Result<f64, MetricError>)>,
) -> CanaryStep {
    let mut step = CanaryStep {
        percent,
        reached: percent,
        passed: true,
        smoke_passed,
        ..CanaryStep::default()
    };
    if smoke_passed == Some(false) {
        step.passed = false;
        step.notes
            .push("the smoke spec failed against the staged release".to_owned());
    }
    if let Some(seen) = traffic {
        let canary = &seen.staged;
        step.traffic = Some(StepTraffic {
            requests: canary.requests,
            errors: canary.errors,
            error_percent: canary.error_percent().map(|p| (p * 100.0).round() / 100.0),
            p95_ms: canary
                .p95()
                .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            stable_requests: seen.stable.requests,
            stable_errors: seen.stable.errors,
        });
        if canary.requests < analysis.min_requests {
            step.notes.push(format!(
                "too few user requests to judge the error rate ({} < {})",
                canary.requests, analysis.min_requests
            ));
        } else {
            if let Some(errors) = canary.error_percent()
                && errors > analysis.max_error_percent
            {
                step.passed = false;
                step.notes.push(format!(
                    "{errors:.1}% of user requests failed on the canary (max {}%)",
                    analysis.max_error_percent
                ));
            }
            if let (Some(max), Some(p95)) = (analysis.max_p95, canary.p95())
                && p95 > max
            {
                step.passed = false;
                step.notes.push(format!(
                    "p95 latency up to {} ms (max {} ms)",
                    p95.as_millis(),
                    max.as_millis()
                ));
            }
            if analysis.max_p95.is_some() && canary.p95().is_none() {
                step.passed = false;
                step.notes
                    .push("p95 latency beyond the slowest bucket (30 s)".to_owned());
            }
        }
    }
    if let Some((query, max, value)) = metric {
        match value {
            Ok(value) => {
                if value > max {
                    step.passed = false;
                    step.notes
                        .push(format!("{query} = {value}, above its max {max}"));
                }
                step.metric = Some(StepMetric {
                    query,
                    value: Some(value),
                    max,
                });
            }
            Err(err) => {
                step.passed = false;
                step.notes.push(format!(
                    "the metric gave no value, so the step fails: {err}"
                ));
                step.metric = Some(StepMetric {
                    query,
                    value: None,
                    max,
                });
            }
        }
    }
    step
}

#[cfg(test)]
mod tests {
    use super::*;
    use shipgate_provider::TrafficCounts;

    fn seen(requests: u64, errors: u64, latency_ms: u64) -> TrafficObservation {
        let mut staged = TrafficCounts::default();
        for i in 0..requests {
            staged.record(
                if i < errors { 500 } else { 200 },
                Duration::from_millis(latency_ms),
            );
        }
        TrafficObservation {
            staged,
            stable: TrafficCounts::default(),
        }
    }

    #[test]
    fn error_rate_and_latency_fail_a_step() {
        let analysis = Analysis {
            max_p95: Some(Duration::from_millis(100)),
            ..Analysis::default()
        };
        let good = judge(&analysis, 10, Some(true), Some(&seen(100, 1, 20)), None);
        assert!(good.passed, "{good:?}");
        let errors = judge(&analysis, 10, Some(true), Some(&seen(100, 20, 20)), None);
        assert!(!errors.passed);
        assert!(
            errors.describe().contains("20.0% of user requests failed"),
            "{}",
            errors.describe()
        );
        let slow = judge(&analysis, 10, Some(true), Some(&seen(100, 0, 400)), None);
        assert!(!slow.passed);
        assert!(
            slow.describe().contains("p95 latency up to 500 ms"),
            "{}",
            slow.describe()
        );
    }

    #[test]
    fn too_few_requests_is_said_not_judged_and_smoke_still_decides() {
        let analysis = Analysis::default();
        let few = judge(&analysis, 10, Some(true), Some(&seen(5, 5, 1)), None);
        assert!(few.passed);
        assert!(
            few.describe().contains("too few user requests"),
            "{}",
            few.describe()
        );
        let smoke = judge(&analysis, 10, Some(false), None, None);
        assert!(!smoke.passed);
        assert!(
            smoke.describe().contains("not observed"),
            "{}",
            smoke.describe()
        );
    }

    #[test]
    fn a_metric_without_a_value_fails_closed() {
        let analysis = Analysis::default();
        let none = judge(
            &analysis,
            50,
            None,
            None,
            Some((
                "q".into(),
                0.1,
                Err(MetricError::NoValue("the query returned no sample".into())),
            )),
        );
        assert!(!none.passed);
        assert!(none.describe().contains("no sample"), "{}", none.describe());
        let above = judge(&analysis, 50, None, None, Some(("q".into(), 0.1, Ok(0.2))));
        assert!(!above.passed);
        let below = judge(&analysis, 50, None, None, Some(("q".into(), 0.1, Ok(0.05))));
        assert!(below.passed);
    }
}
