//! What the dashboard reads: the environments the ledger knows, what each target runs now,
//! an environment's runs over a time range, a run's stored summary, and the monitor's latency
//! rollups. Every query here is a read (the summary and the latency rollups are written by
//! the pipeline and the monitor) and is bounded: by an index range and a limit, never a scan
//! of all runs.

use serde::Serialize;
use sqlx::Row;

use shipgate_core::DeploymentKind;

use crate::monitor::LATENCY_TABLES;
use crate::{Ledger, LedgerError, MonitorTargetRow, RunRecord, run_from_row, words};

/// The width of a latency rollup bucket: 5 minutes.
pub const LATENCY_BUCKET_MS: i64 = 300_000;

/// The width of an hourly latency rollup bucket.
pub const LATENCY_HOUR_MS: i64 = 3_600_000;

/// The upper bounds (inclusive, ms) of the latency histogram's buckets; one more bucket
/// counts everything slower.
pub const LATENCY_BOUNDS_MS: [i64; 10] = [10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000];

/// One service on one target, as it runs now: the newest healthy deployment (or rollback).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LiveRelease {
    /// `local`, `helm`, …
    pub target: String,
    /// The service.
    pub service: String,
    /// The image it runs.
    pub image: String,
    /// The run that put it there.
    pub run_id: String,
    /// Since when, unix ms: when its healthy verdict was recorded (for deployments recorded
    /// before the ledger kept this, the end of the run).
    pub since_ms: i64,
    /// `deploy`, or `rollback` when a rollback put it back.
    pub kind: String,
}

/// Which runs of an environment the timeline shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelineQuery {
    /// The app.
    pub app: String,
    /// The environment.
    pub environment: String,
    /// Runs that started at or after this (unix ms)…
    pub since_ms: i64,
    /// …and at or before this.
    pub until_ms: i64,
    /// Only runs that deployed (or rolled back) this service.
    pub service: Option<String>,
    /// Only runs that ended so.
    pub outcome: Option<String>,
}

/// A run on the timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TimelineRun {
    /// The run.
    #[serde(flatten)]
    pub run: RunRecord,
    /// Its deployments (service × target).
    pub deploys: i64,
    /// Its rollbacks (service × target).
    pub rollbacks: i64,
}

/// An environment's runs on one UTC day that ended one way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DayCount {
    /// The day's start, unix ms.
    pub day_ms: i64,
    /// The outcome (`running` for runs without one).
    pub outcome: String,
    /// How many.
    pub runs: i64,
}

/// A monitor target's checks over a window, from the latency rollups.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LatencyStats {
    /// `app/environment/name`.
    pub target_id: String,
    /// Checks in the window.
    pub checks: i64,
    /// Of which failed.
    pub failures: i64,
    /// The sum of their durations, ms.
    pub total_ms: i64,
    /// The slowest, ms.
    pub max_ms: i64,
    /// Counts per bucket of [`LATENCY_BOUNDS_MS`] (and one above the last bound).
    pub histogram: [i64; 11],
}

impl LatencyStats {
    /// The `q` quantile (0 < q ≤ 1) in ms, read from the histogram: the upper bound of the
    /// bucket it falls in, linearly interpolated inside it; capped at the slowest check.
    /// `None` without checks.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total: i64 = self.histogram.iter().sum();
        if total <= 0 {
            return None;
        }
        let rank = (q.clamp(0.0, 1.0) * total as f64).max(1.0);
        let mut below = 0i64;
        for (i, &count) in self.histogram.iter().enumerate() {
            if count > 0 && (below + count) as f64 >= rank {
                let lower = if i == 0 { 0 } else { LATENCY_BOUNDS_MS[i - 1] } as f64;
                let upper = LATENCY_BOUNDS_MS
                    .get(i)
                    .map_or(self.max_ms as f64, |b| *b as f64);
                let within = (rank - below as f64) / count as f64;
                let value = lower + (upper - lower) * within;
                return Some(value.min(self.max_ms as f64).max(0.0));
            }
            below += count;
        }
        Some(self.max_ms as f64)
    }
}

/// The histogram bucket of a check that took `ms`.
pub(crate) fn latency_bucket(ms: i64) -> usize {
    LATENCY_BOUNDS_MS
        .iter()
        .position(|bound| ms <= *bound)
        .unwrap_or(LATENCY_BOUNDS_MS.len())
}

impl Ledger {
    /// Every (app, environment) with a run, sorted. Index seeks only (a skip scan of
    /// `runs_by_app`, two seeks per environment), so it costs the same on a ledger of a
    /// million runs: a condition with `OR` would make Postgres and SQLite scan every run.
    pub async fn environments(&self) -> Result<Vec<(String, String)>, LedgerError> {
        let read = || self.db("list environments");
        let pair =
            |row: Option<sqlx::any::AnyRow>| -> Result<Option<(String, String)>, LedgerError> {
                row.map(|r| Ok((r.try_get(0).map_err(read())?, r.try_get(1).map_err(read())?)))
                    .transpose()
            };
        let mut found: Vec<(String, String)> = Vec::new();
        let mut next = pair(
            sqlx::query("SELECT app, environment FROM runs ORDER BY app, environment LIMIT 1")
                .fetch_optional(self.pool())
                .await
                .map_err(read())?,
        )?;
        while let Some((app, environment)) = next {
            // The next environment of the same app, else the first of the next app.
            let same_app = sqlx::query(
                "SELECT app, environment FROM runs WHERE app = $1 AND environment > $2 \
                 ORDER BY environment LIMIT 1",
            )
            .bind(&app)
            .bind(&environment)
            .fetch_optional(self.pool())
            .await
            .map_err(read())?;
            next = match pair(same_app)? {
                Some(found) => Some(found),
                None => pair(
                    sqlx::query(
                        "SELECT app, environment FROM runs WHERE app > $1 \
                         ORDER BY app, environment LIMIT 1",
                    )
                    .bind(&app)
                    .fetch_optional(self.pool())
                    .await
                    .map_err(read())?,
                )?,
            };
            found.push((app, environment));
        }
        Ok(found)
    }

    /// The newest `limit` runs of an environment, newest first.
    pub async fn latest_runs(
        &self,
        app: &str,
        environment: &str,
        limit: i64,
    ) -> Result<Vec<RunRecord>, LedgerError> {
        sqlx::query(
            "SELECT id, app, environment, image_tag, owner, host, started_ms, finished_ms, outcome, summary_path, strategy \
             FROM runs WHERE app = $1 AND environment = $2 ORDER BY started_ms DESC LIMIT $3",
        )
        .bind(app)
        .bind(environment)
        .bind(limit)
        .fetch_all(self.pool())
        .await
        .map_err(self.db("list runs"))?
        .iter()
        .map(|r| run_from_row(r).map_err(self.db("read run")))
        .collect()
    }

    /// What each target and service of an environment runs now: the newest healthy
    /// deployment or rollback of each, kept current as deployments are recorded. Sorted by
    /// target, then service.
    pub async fn live_releases(
        &self,
        app: &str,
        environment: &str,
    ) -> Result<Vec<LiveRelease>, LedgerError> {
        sqlx::query(
            "SELECT target, service, image, run_id, since_ms, kind FROM live_releases \
             WHERE app = $1 AND environment = $2 ORDER BY target, service",
        )
        .bind(app)
        .bind(environment)
        .fetch_all(self.pool())
        .await
        .map_err(self.db("read what runs now"))?
        .iter()
        .map(|r| {
            Ok(LiveRelease {
                target: r.try_get(0).map_err(self.db("read what runs now"))?,
                service: r.try_get(1).map_err(self.db("read what runs now"))?,
                image: r.try_get(2).map_err(self.db("read what runs now"))?,
                run_id: r.try_get(3).map_err(self.db("read what runs now"))?,
                since_ms: r.try_get(4).map_err(self.db("read what runs now"))?,
                kind: r.try_get(5).map_err(self.db("read what runs now"))?,
            })
        })
        .collect()
    }

    /// A timeline query: `sql` gets the WHERE clause over runs `r` (parameters from `$1`)
    /// and the number of the next free parameter; the filter's values are bound.
    fn timeline_query(
        query: &TimelineQuery,
        sql: impl FnOnce(&str, usize) -> String,
    ) -> sqlx::query::Query<'static, sqlx::Any, sqlx::any::AnyArguments> {
        let mut clause =
            "r.app = $1 AND r.environment = $2 AND r.started_ms >= $3 AND r.started_ms <= $4"
                .to_owned();
        let mut values = Vec::new();
        if let Some(outcome) = &query.outcome {
            values.push(outcome.clone());
            clause.push_str(&format!(" AND r.outcome = ${}", values.len() + 4));
        }
        if let Some(service) = &query.service {
            values.push(service.clone());
            clause.push_str(&format!(
                " AND EXISTS (SELECT 1 FROM deployments s WHERE s.run_id = r.id AND s.service = ${})",
                values.len() + 4
            ));
        }
        // Built from constants and vocabulary words; every value is bound.
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql(&clause, values.len() + 5)))
            .bind(query.app.clone())
            .bind(query.environment.clone())
            .bind(query.since_ms)
            .bind(query.until_ms);
        for value in values {
            q = q.bind(value);
        }
        q
    }

    /// An environment's runs in a time range, newest first, at most `limit`.
    pub async fn timeline(
        &self,
        query: &TimelineQuery,
        limit: i64,
    ) -> Result<Vec<TimelineRun>, LedgerError> {
        let deploy = words::quoted(DeploymentKind::Deploy.as_str());
        let rollback = words::quoted(DeploymentKind::Rollback.as_str());
        Self::timeline_query(query, |filter, next| format!(
            "SELECT r.id, r.app, r.environment, r.image_tag, r.owner, r.host, r.started_ms, r.finished_ms, r.outcome, r.summary_path, r.strategy, \
             (SELECT COUNT(*) FROM deployments d WHERE d.run_id = r.id AND d.kind = {deploy}), \
             (SELECT COUNT(*) FROM deployments d WHERE d.run_id = r.id AND d.kind = {rollback}) \
             FROM runs r WHERE {filter} ORDER BY r.started_ms DESC LIMIT ${next}"
        ))
        .bind(limit)
            .fetch_all(self.pool())
            .await
            .map_err(self.db("read the timeline"))?
            .iter()
            .map(|r| {
                Ok(TimelineRun {
                    run: run_from_row(r).map_err(self.db("read the timeline"))?,
                    deploys: r.try_get(11).map_err(self.db("read the timeline"))?,
                    rollbacks: r.try_get(12).map_err(self.db("read the timeline"))?,
                })
            })
            .collect()
    }

    /// An environment's runs in a time range counted per UTC day and outcome, oldest first:
    /// the timeline of a range with too many runs to draw one mark each.
    pub async fn timeline_days(&self, query: &TimelineQuery) -> Result<Vec<DayCount>, LedgerError> {
        Self::timeline_query(query, |filter, _| format!(
            "SELECT r.started_ms - r.started_ms % 86400000 AS day_ms, COALESCE(r.outcome, 'running') AS outcome, COUNT(*) \
             FROM runs r WHERE {filter} GROUP BY r.started_ms - r.started_ms % 86400000, COALESCE(r.outcome, 'running') \
             ORDER BY day_ms, outcome"
        ))
        .fetch_all(self.pool())
            .await
            .map_err(self.db("count the timeline's runs"))?
            .iter()
            .map(|r| {
                Ok(DayCount {
                    day_ms: r.try_get(0).map_err(self.db("count the timeline's runs"))?,
                    outcome: r.try_get(1).map_err(self.db("count the timeline's runs"))?,
                    runs: r.try_get(2).map_err(self.db("count the timeline's runs"))?,
                })
            })
            .collect()
    }

    /// Stores run `run_id`'s summary (redacted JSON), replacing an earlier one.
    pub async fn record_summary(&self, run_id: &str, summary: &str) -> Result<(), LedgerError> {
        sqlx::query(
            "INSERT INTO run_summaries (run_id, summary) VALUES ($1, $2) \
             ON CONFLICT (run_id) DO UPDATE SET summary = excluded.summary",
        )
        .bind(run_id)
        .bind(summary)
        .execute(self.pool())
        .await
        .map_err(self.db("record the summary"))?;
        Ok(())
    }

    /// Run `run_id`'s stored summary JSON, if it has one.
    pub async fn run_summary(&self, run_id: &str) -> Result<Option<String>, LedgerError> {
        sqlx::query("SELECT summary FROM run_summaries WHERE run_id = $1")
            .bind(run_id)
            .fetch_optional(self.pool())
            .await
            .map_err(self.db("read the summary"))?
            .map(|r| r.try_get(0))
            .transpose()
            .map_err(self.db("read the summary"))
    }

    /// The latency of every monitor target's checks since `since_ms` (to the 5 minutes),
    /// from the 5-minute rollups.
    pub async fn monitor_latency(&self, since_ms: i64) -> Result<Vec<LatencyStats>, LedgerError> {
        self.latency_sums(LATENCY_TABLES[0], since_ms).await
    }

    /// The same to the hour, from the hourly rollups: a week reads 168 rows per target.
    pub async fn monitor_latency_hourly(
        &self,
        since_ms: i64,
    ) -> Result<Vec<LatencyStats>, LedgerError> {
        self.latency_sums(LATENCY_TABLES[1], since_ms).await
    }

    async fn latency_sums(
        &self,
        (table, width_ms): (&str, i64),
        since_ms: i64,
    ) -> Result<Vec<LatencyStats>, LedgerError> {
        let read = || self.db("read check latencies");
        // Postgres sums BIGINTs as NUMERIC: cast back. Built from the constant table names.
        let sums: Vec<String> = ["checks", "failures", "total_ms"]
            .into_iter()
            .map(str::to_owned)
            .chain((0..11).map(|i| format!("h{i}")))
            .map(|c| format!("CAST(SUM({c}) AS BIGINT)"))
            .collect();
        let sql = format!(
            "SELECT target_id, MAX(max_ms), {} FROM {table} WHERE bucket_ms >= $1 \
             GROUP BY target_id ORDER BY target_id",
            sums.join(", ")
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(since_ms - since_ms.rem_euclid(width_ms))
            .fetch_all(self.pool())
            .await
            .map_err(read())?
            .iter()
            .map(|r| {
                let mut histogram = [0i64; 11];
                for (i, slot) in histogram.iter_mut().enumerate() {
                    *slot = r.try_get(5 + i).map_err(read())?;
                }
                Ok(LatencyStats {
                    target_id: r.try_get(0).map_err(read())?,
                    max_ms: r.try_get(1).map_err(read())?,
                    checks: r.try_get(2).map_err(read())?,
                    failures: r.try_get(3).map_err(read())?,
                    total_ms: r.try_get(4).map_err(read())?,
                    histogram,
                })
            })
            .collect()
    }

    /// Deletes latency buckets (5-minute and hourly) that started before `before_ms`;
    /// returns how many.
    pub async fn monitor_prune_latency(&self, before_ms: i64) -> Result<u64, LedgerError> {
        let mut deleted = 0;
        for (table, _) in LATENCY_TABLES {
            // Built from the constant table names.
            deleted += sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM {table} WHERE bucket_ms < $1"
            )))
            .bind(before_ms)
            .execute(self.pool())
            .await
            .map_err(self.db("prune check latencies"))?
            .rows_affected();
        }
        Ok(deleted)
    }

    /// Every watched (not retired) monitor target, sorted by id.
    pub async fn monitor_all_targets(&self) -> Result<Vec<MonitorTargetRow>, LedgerError> {
        self.monitor_target_rows(None).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(histogram: [i64; 11], max_ms: i64) -> LatencyStats {
        LatencyStats {
            target_id: "a/p/x".into(),
            checks: histogram.iter().sum(),
            failures: 0,
            total_ms: 0,
            max_ms,
            histogram,
        }
    }

    #[test]
    fn a_check_falls_in_the_first_bucket_whose_bound_holds_it() {
        assert_eq!(latency_bucket(0), 0);
        assert_eq!(latency_bucket(10), 0);
        assert_eq!(latency_bucket(11), 1);
        assert_eq!(latency_bucket(10_000), 9);
        assert_eq!(latency_bucket(10_001), 10);
    }

    #[test]
    fn quantiles_interpolate_inside_a_bucket_and_never_pass_the_slowest_check() {
        // 100 checks between 50 and 100 ms, the slowest 90 ms.
        let s = stats([0, 0, 0, 100, 0, 0, 0, 0, 0, 0, 0], 90);
        assert_eq!(s.quantile(0.5), Some(75.0));
        assert_eq!(s.quantile(0.95), Some(90.0));
        // 90 fast ones and 10 slow ones: p50 is fast, p95 is slow.
        let s = stats([90, 0, 0, 0, 0, 0, 0, 10, 0, 0, 0], 2_400);
        assert!(s.quantile(0.5).unwrap() <= 10.0);
        assert!(s.quantile(0.95).unwrap() > 1_000.0);
        // Above the last bound: up to the slowest.
        let s = stats([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4], 30_000);
        assert_eq!(s.quantile(1.0), Some(30_000.0));
        assert_eq!(stats([0; 11], 0).quantile(0.5), None);
    }
}
