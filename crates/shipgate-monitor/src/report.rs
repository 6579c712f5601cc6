//! Delivery metrics from the ledger, per app and environment, over a window. The ledger keeps
//! them rolled up per day as runs finish, so a report over a million runs reads a few
//! thousand rows (`cargo bench -p shipgate-monitor --bench report`).
//!
//! Definitions (every figure is computed from finished runs that started in the window):
//! - **attempts**: every finished run that tried to deploy (a `lock_timeout` or `superseded`
//!   run never did and is not counted); **deployments**: runs that `succeeded`.
//! - **deployment frequency**: deployments per day of the window.
//! - **change failure rate**: runs that changed production and failed — `rolled_back`,
//!   `rollback_failed`, `unhealthy` — over every run that changed production (those plus
//!   `succeeded`). `failed` (nothing live changed) and `aborted` runs changed nothing.
//! - **time to restore**: for a `rolled_back` run, its own duration (the rollback restored
//!   service); for `rollback_failed` or `unhealthy`, from its start to the end of the next run
//!   of the same app and environment that left a good release live (`succeeded` or
//!   `rolled_back`), even when that run came after the window. The mean over restored
//!   failures; those not restored yet are counted apart.
//! - **average deploy duration** and **success rate** (`succeeded` over attempts).
//! - **lead time for changes**: from the commit to the end of the run that put it live, the
//!   mean over `succeeded` runs whose commit time is known (`Ledger::record_commit_time`; the
//!   CLI reads it from the GitHub event); unknown (`None`) when no run has one.

use shipgate_core::Outcome;
use std::collections::BTreeMap;

use serde::Serialize;
use shipgate_ledger::{DeliveryAggregates, Ledger, LedgerError};

const DAY_MS: f64 = 86_400_000.0;

/// Counts and rates of one service.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ServiceFigures {
    /// Runs that deployed it.
    pub attempts: u64,
    /// Of those, runs that succeeded.
    pub deployments: u64,
    /// Of those, change failures.
    pub change_failures: u64,
}

/// The figures of one app and environment.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct EnvironmentFigures {
    /// The app.
    pub app: String,
    /// The environment.
    pub environment: String,
    /// Finished runs.
    pub attempts: u64,
    /// Runs that succeeded.
    pub deployments: u64,
    /// Deployments per day of the window.
    pub deployments_per_day: f64,
    /// rolled_back + rollback_failed + unhealthy.
    pub change_failures: u64,
    /// change_failures / (change_failures + deployments); `None` without such runs.
    pub change_failure_rate: Option<f64>,
    /// deployments / attempts; `None` without attempts.
    pub success_rate: Option<f64>,
    /// Mean run duration, ms.
    pub average_duration_ms: Option<f64>,
    /// Mean time to restore, ms, over restored failures.
    pub mean_time_to_restore_ms: Option<f64>,
    /// Change failures not restored yet.
    pub unrestored_failures: u64,
    /// Mean lead time for changes (commit to live), ms, over succeeded runs whose commit
    /// time is known; `None` when none is.
    pub lead_time_ms: Option<f64>,
    /// Per service.
    pub services: BTreeMap<String, ServiceFigures>,
}

/// The report.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Report {
    /// Report format version.
    pub schema_version: u32,
    /// Window start, ms.
    pub since_ms: i64,
    /// Window end, ms.
    pub until_ms: i64,
    /// Per app and environment, sorted.
    pub environments: Vec<EnvironmentFigures>,
}

fn mean(sum: f64, count: u64) -> Option<f64> {
    (count > 0).then(|| sum / count as f64)
}

fn count(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

/// Running sums of one app and environment.
#[derive(Debug, Clone, Copy, Default)]
struct Sums {
    duration_ms: f64,
    restore_ms: f64,
    restored: u64,
    lead_time_ms: f64,
    lead_runs: u64,
}

/// Builds the report for the window `[since_ms, until_ms]` from the ledger's aggregates.
pub fn compute(aggregates: &DeliveryAggregates, since_ms: i64, until_ms: i64) -> Report {
    let days = ((until_ms - since_ms).max(1) as f64 / DAY_MS).max(1.0 / 24.0);
    let mut groups: BTreeMap<(String, String), EnvironmentFigures> = BTreeMap::new();
    // Per group: sums of durations, of restore times and of lead times, and the restored
    // failures and the runs with a lead time they are over.
    let mut sums: BTreeMap<(String, String), Sums> = BTreeMap::new();
    for row in &aggregates.outcomes {
        // The words come from the ledger; one this version does not know is not counted.
        let Some(outcome) = Outcome::parse(&row.outcome).filter(|o| o.is_attempt()) else {
            continue;
        };
        let key = (row.app.clone(), row.environment.clone());
        let figures = groups
            .entry(key.clone())
            .or_insert_with(|| EnvironmentFigures {
                app: row.app.clone(),
                environment: row.environment.clone(),
                ..EnvironmentFigures::default()
            });
        let (runs, succeeded, failed) = (
            count(row.runs),
            outcome == Outcome::Succeeded,
            outcome.is_change_failure(),
        );
        if let Some(service) = &row.service {
            let service = figures.services.entry(service.clone()).or_default();
            service.attempts += runs;
            service.deployments += if succeeded { runs } else { 0 };
            service.change_failures += if failed { runs } else { 0 };
            continue;
        }
        figures.attempts += runs;
        figures.deployments += if succeeded { runs } else { 0 };
        figures.change_failures += if failed { runs } else { 0 };
        let sum = sums.entry(key).or_default();
        sum.duration_ms += row.duration_ms as f64;
        sum.lead_time_ms += row.lead_time_ms as f64;
        sum.lead_runs += count(row.lead_runs);
        if outcome == Outcome::RolledBack {
            // A rollback restored service by the end of its own run.
            sum.restore_ms += row.duration_ms as f64;
            sum.restored += runs;
        } else if outcome.awaits_restore() {
            // Any other change failure when a later run left a good release live.
            sum.restore_ms += row.restore_ms as f64;
            sum.restored += count(row.restored);
            figures.unrestored_failures += runs.saturating_sub(count(row.restored));
        }
    }
    let environments = groups
        .into_iter()
        .map(|(key, mut figures)| {
            let sum = sums.get(&key).copied().unwrap_or_default();
            let changed = figures.deployments + figures.change_failures;
            figures.deployments_per_day = figures.deployments as f64 / days;
            figures.change_failure_rate =
                (changed > 0).then(|| figures.change_failures as f64 / changed as f64);
            figures.success_rate = (figures.attempts > 0)
                .then(|| figures.deployments as f64 / figures.attempts as f64);
            figures.average_duration_ms = mean(sum.duration_ms, figures.attempts);
            figures.mean_time_to_restore_ms = mean(sum.restore_ms, sum.restored);
            figures.lead_time_ms = mean(sum.lead_time_ms, sum.lead_runs);
            figures
        })
        .collect();
    Report {
        schema_version: 1,
        since_ms,
        until_ms,
        environments,
    }
}

/// The report over the ledger's finished runs that started in `[since_ms, until_ms]`,
/// aggregated by the database.
pub async fn from_ledger(
    ledger: &Ledger,
    since_ms: i64,
    until_ms: i64,
) -> Result<Report, LedgerError> {
    let aggregates = ledger.delivery_aggregates(since_ms, until_ms).await?;
    Ok(compute(&aggregates, since_ms, until_ms))
}

fn percent(value: Option<f64>) -> String {
    value.map_or_else(|| "n/a".to_owned(), |v| format!("{:.1} %", v * 100.0))
}

fn duration(ms: Option<f64>) -> String {
    ms.map_or_else(
        || "n/a".to_owned(),
        |ms| {
            humantime::format_duration(std::time::Duration::from_millis(ms.round() as u64))
                .to_string()
        },
    )
}

impl Report {
    /// The markdown report (seed 004's health report artifact).
    pub fn to_markdown(&self) -> String {
        let days = (self.until_ms - self.since_ms) as f64 / DAY_MS;
        let mut out = format!("# Delivery report — last {days:.0} days\n\n");
        if self.environments.is_empty() {
            out.push_str("No finished deploys in this window.\n");
            return out;
        }
        out.push_str("| app | environment | deploys/day | lead time | change failure rate | time to restore | avg deploy | success rate | attempts |\n|---|---|---|---|---|---|---|---|---|\n");
        for e in &self.environments {
            out.push_str(&format!(
                "| {} | {} | {:.2} | {} | {} | {} | {} | {} | {} |\n",
                e.app,
                e.environment,
                e.deployments_per_day,
                duration(e.lead_time_ms),
                percent(e.change_failure_rate),
                duration(e.mean_time_to_restore_ms),
                duration(e.average_duration_ms),
                percent(e.success_rate),
                e.attempts
            ));
        }
        for e in &self.environments {
            if e.unrestored_failures > 0 {
                out.push_str(&format!(
                    "\n**{}/{}: {} failure(s) not restored yet.**\n",
                    e.app, e.environment, e.unrestored_failures
                ));
            }
        }
        if self.environments.iter().any(|e| e.lead_time_ms.is_none()) {
            out.push_str(
                "\nLead time n/a: no succeeded deploy in the window knew its commit time (it comes from the GitHub push or workflow_run event).\n",
            );
        }
        out
    }
}
