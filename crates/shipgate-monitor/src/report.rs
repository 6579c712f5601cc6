//! Delivery metrics from the ledger, per app and environment, over a window.
//!
//! Definitions (every figure is computed from finished runs that started in the window):
//! - **attempts**: every finished run; **deployments**: runs that `succeeded`.
//! - **deployment frequency**: deployments per day of the window.
//! - **change failure rate**: runs that changed production and failed — `rolled_back`,
//!   `rollback_failed`, `unhealthy` — over every run that changed production (those plus
//!   `succeeded`). `failed` (nothing live changed) and `aborted` runs changed nothing.
//! - **time to restore**: for a `rolled_back` run, its own duration (the rollback restored
//!   service); for `rollback_failed` or `unhealthy`, from its start to the end of the next run
//!   of the same app and environment that left a good release live (`succeeded` or
//!   `rolled_back`). The mean over restored failures; unrestored ones are counted apart.
//! - **average deploy duration** and **success rate** (`succeeded` over attempts).
//! - **lead time for changes** needs commit times, which the ledger does not record: it is
//!   reported as unknown rather than guessed.

use std::collections::BTreeMap;

use serde::Serialize;
use shipgate_ledger::{Ledger, LedgerError};

const DAY_MS: f64 = 86_400_000.0;

/// One finished run, as the report needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunFacts {
    /// The app.
    pub app: String,
    /// The environment.
    pub environment: String,
    /// Its outcome (`succeeded`, `rolled_back`, …).
    pub outcome: String,
    /// Start, ms since the epoch.
    pub started_ms: i64,
    /// End, ms since the epoch.
    pub finished_ms: i64,
    /// Services it deployed.
    pub services: Vec<String>,
}

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
    /// Change failures with no restoring run in the window yet.
    pub unrestored_failures: u64,
    /// Lead time for changes: unknown (commit times are not recorded).
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

fn is_change_failure(outcome: &str) -> bool {
    matches!(outcome, "rolled_back" | "rollback_failed" | "unhealthy")
}

fn leaves_good_release(outcome: &str) -> bool {
    matches!(outcome, "succeeded" | "rolled_back")
}

fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

/// Computes the report over `runs` (any order) for the window `[since_ms, until_ms]`.
pub fn compute(runs: &[RunFacts], since_ms: i64, until_ms: i64) -> Report {
    let mut groups: BTreeMap<(String, String), Vec<&RunFacts>> = BTreeMap::new();
    for run in runs
        .iter()
        .filter(|r| r.started_ms >= since_ms && r.started_ms <= until_ms)
    {
        groups
            .entry((run.app.clone(), run.environment.clone()))
            .or_default()
            .push(run);
    }
    let days = ((until_ms - since_ms).max(1) as f64 / DAY_MS).max(1.0 / 24.0);
    let environments = groups
        .into_iter()
        .map(|((app, environment), mut runs)| {
            runs.sort_by_key(|r| (r.started_ms, r.finished_ms));
            let attempts = runs.len() as u64;
            let deployments = runs.iter().filter(|r| r.outcome == "succeeded").count() as u64;
            let change_failures = runs
                .iter()
                .filter(|r| is_change_failure(&r.outcome))
                .count() as u64;
            let durations: Vec<f64> = runs
                .iter()
                .map(|r| (r.finished_ms - r.started_ms) as f64)
                .collect();
            let mut restores = Vec::new();
            let mut unrestored = 0;
            for (i, run) in runs.iter().enumerate() {
                match run.outcome.as_str() {
                    "rolled_back" => restores.push((run.finished_ms - run.started_ms) as f64),
                    "rollback_failed" | "unhealthy" => {
                        match runs[i + 1..]
                            .iter()
                            .find(|r| leaves_good_release(&r.outcome))
                        {
                            Some(next) => restores.push((next.finished_ms - run.started_ms) as f64),
                            None => unrestored += 1,
                        }
                    }
                    _ => {}
                }
            }
            let mut services: BTreeMap<String, ServiceFigures> = BTreeMap::new();
            for run in &runs {
                for service in &run.services {
                    let figures = services.entry(service.clone()).or_default();
                    figures.attempts += 1;
                    figures.deployments += u64::from(run.outcome == "succeeded");
                    figures.change_failures += u64::from(is_change_failure(&run.outcome));
                }
            }
            let changed = deployments + change_failures;
            EnvironmentFigures {
                app,
                environment,
                attempts,
                deployments,
                deployments_per_day: deployments as f64 / days,
                change_failures,
                change_failure_rate: (changed > 0).then(|| change_failures as f64 / changed as f64),
                success_rate: (attempts > 0).then(|| deployments as f64 / attempts as f64),
                average_duration_ms: mean(&durations),
                mean_time_to_restore_ms: mean(&restores),
                unrestored_failures: unrestored,
                lead_time_ms: None,
                services,
            }
        })
        .collect();
    Report {
        schema_version: 1,
        since_ms,
        until_ms,
        environments,
    }
}

/// The report over the ledger's runs that started since `since_ms`.
pub async fn from_ledger(
    ledger: &Ledger,
    since_ms: i64,
    until_ms: i64,
) -> Result<Report, LedgerError> {
    let runs: Vec<RunFacts> = ledger
        .finished_runs(since_ms)
        .await?
        .into_iter()
        .filter_map(|(run, services)| {
            Some(RunFacts {
                app: run.app,
                environment: run.environment,
                outcome: run.outcome?,
                started_ms: run.started_ms,
                finished_ms: run.finished_ms?,
                services,
            })
        })
        .collect();
    Ok(compute(&runs, since_ms, until_ms))
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
        out.push_str("| app | environment | deploys/day | change failure rate | time to restore | avg deploy | success rate | attempts |\n|---|---|---|---|---|---|---|---|\n");
        for e in &self.environments {
            out.push_str(&format!(
                "| {} | {} | {:.2} | {} | {} | {} | {} | {} |\n",
                e.app,
                e.environment,
                e.deployments_per_day,
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
        out.push_str(
            "\nLead time for changes: unknown (the ledger does not record commit times).\n",
        );
        out
    }
}
