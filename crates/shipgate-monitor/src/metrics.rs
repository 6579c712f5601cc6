//! The monitor's Prometheus metrics (`/metrics`, OpenMetrics text):
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `shipgate_monitor_check_duration_seconds` | histogram | `target`, `environment` |
//! | `shipgate_monitor_checks_total` | counter | `target`, `environment`, `result` (`pass`/`fail`) |
//! | `shipgate_monitor_alert_state` | gauge, 1 for the current state | `target`, `state` |
//! | `shipgate_last_deploy_outcome` | gauge, 1 for the last finished run's outcome | `app`, `environment`, `outcome` |
//! | `shipgate_last_deploy_timestamp_seconds` | gauge | `app`, `environment` |
//! | `shipgate_notifications_undelivered` | gauge | |
//!
//! Check latencies and counts are this replica's own checks; the alert state, deploy and
//! outbox gauges are read from the shared ledger, so every replica exports the same values
//! (aggregate them with `max`).

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use shipgate_ledger::{Ledger, LedgerError};

use crate::alert::AlertState;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TargetLabels {
    target: String,
    environment: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CheckLabels {
    target: String,
    environment: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    target: String,
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    app: String,
    environment: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EnvironmentLabels {
    app: String,
    environment: String,
}

/// The registry and its metrics.
pub struct Metrics {
    app: String,
    registry: Registry,
    check_duration: Family<TargetLabels, Histogram, fn() -> Histogram>,
    checks: Family<CheckLabels, Counter>,
    alert_state: Family<StateLabels, Gauge>,
    last_outcome: Family<OutcomeLabels, Gauge>,
    last_deploy_at: Family<EnvironmentLabels, Gauge<f64, AtomicU64>>,
    undelivered: Gauge,
    /// The outcome exported last per environment, so a new outcome zeroes the old one.
    exported_outcomes: Mutex<BTreeMap<String, String>>,
    /// The alert state last exported per target: a refresh touches only targets that moved.
    exported_states: Mutex<HashMap<String, AlertState>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("app", &self.app)
            .finish_non_exhaustive()
    }
}

fn latency_histogram() -> Histogram {
    // 5 ms … ~20 s.
    Histogram::new(exponential_buckets(0.005, 2.0, 13))
}

impl Metrics {
    /// Empty metrics for `app`.
    pub fn new(app: &str) -> Metrics {
        let mut registry = Registry::default();
        let check_duration =
            Family::<TargetLabels, Histogram, fn() -> Histogram>::new_with_constructor(
                latency_histogram as fn() -> Histogram,
            );
        let checks = Family::<CheckLabels, Counter>::default();
        let alert_state = Family::<StateLabels, Gauge>::default();
        let last_outcome = Family::<OutcomeLabels, Gauge>::default();
        let last_deploy_at = Family::<EnvironmentLabels, Gauge<f64, AtomicU64>>::default();
        let undelivered = Gauge::default();
        registry.register(
            "shipgate_monitor_check_duration_seconds",
            "Wall time of each monitor check",
            check_duration.clone(),
        );
        registry.register(
            "shipgate_monitor_checks",
            "Monitor checks run by this replica, by result",
            checks.clone(),
        );
        registry.register(
            "shipgate_monitor_alert_state",
            "1 for the alert state each target is in",
            alert_state.clone(),
        );
        registry.register(
            "shipgate_last_deploy_outcome",
            "1 for the outcome of the last finished deploy run per environment",
            last_outcome.clone(),
        );
        registry.register(
            "shipgate_last_deploy_timestamp_seconds",
            "When the last deploy run per environment finished (unix seconds)",
            last_deploy_at.clone(),
        );
        registry.register(
            "shipgate_notifications_undelivered",
            "Notifications queued in the ledger and not delivered yet",
            undelivered.clone(),
        );
        Metrics {
            app: app.to_owned(),
            registry,
            check_duration,
            checks,
            alert_state,
            last_outcome,
            last_deploy_at,
            undelivered,
            exported_outcomes: Mutex::default(),
            exported_states: Mutex::default(),
        }
    }

    /// Records one check.
    pub fn observe_check(&self, target: &str, environment: &str, passed: bool, took: Duration) {
        self.check_duration
            .get_or_create(&TargetLabels {
                target: target.to_owned(),
                environment: environment.to_owned(),
            })
            .observe(took.as_secs_f64());
        self.checks
            .get_or_create(&CheckLabels {
                target: target.to_owned(),
                environment: environment.to_owned(),
                result: if passed { "pass" } else { "fail" }.to_owned(),
            })
            .inc();
    }

    /// Reads the alert states, the last deploy per environment and the outbox from the ledger.
    pub async fn refresh(&self, ledger: &Ledger) -> Result<(), LedgerError> {
        let states = ledger.monitor_states(&self.app).await?;
        {
            let mut exported = self
                .exported_states
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for (id, state) in states {
                let current: AlertState = state.parse().unwrap_or(AlertState::Healthy);
                if exported.get(&id) == Some(&current) {
                    continue;
                }
                for state in AlertState::ALL {
                    self.alert_state
                        .get_or_create(&StateLabels {
                            target: id.clone(),
                            state: state.as_str().to_owned(),
                        })
                        .set(i64::from(*state == current));
                }
                exported.insert(id, current);
            }
        }
        let latest: Vec<(String, (String, i64))> = ledger
            .last_finished_runs(&self.app)
            .await?
            .into_iter()
            .filter_map(|run| Some((run.environment, (run.outcome?, run.finished_ms?))))
            .collect();
        let undelivered = ledger.undelivered().await?.len();
        self.undelivered
            .set(i64::try_from(undelivered).unwrap_or(i64::MAX));
        let mut exported = self
            .exported_outcomes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (environment, (outcome, finished)) in latest {
            if let Some(previous) = exported.insert(environment.clone(), outcome.clone())
                && previous != outcome
            {
                self.last_outcome
                    .get_or_create(&OutcomeLabels {
                        app: self.app.clone(),
                        environment: environment.clone(),
                        outcome: previous,
                    })
                    .set(0);
            }
            self.last_outcome
                .get_or_create(&OutcomeLabels {
                    app: self.app.clone(),
                    environment: environment.clone(),
                    outcome,
                })
                .set(1);
            #[allow(clippy::cast_precision_loss)] // milliseconds since 1970 fit in f64 exactly
            self.last_deploy_at
                .get_or_create(&EnvironmentLabels {
                    app: self.app.clone(),
                    environment,
                })
                .set(finished as f64 / 1000.0);
        }
        Ok(())
    }

    /// The OpenMetrics text of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = self.render_to(&mut out);
        out
    }

    /// Writes the OpenMetrics text to `out` as it is encoded (10,000 targets make ~20 MB of
    /// text: `/metrics` streams it in chunks instead of holding it whole).
    pub fn render_to(&self, out: &mut impl std::fmt::Write) -> std::fmt::Result {
        prometheus_client::encoding::text::encode(out, &self.registry)
    }
}
