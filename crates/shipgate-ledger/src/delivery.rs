//! The delivery report's inputs. Finished runs are counted as they finish into
//! `delivery_rollup` (per app, environment, service, UTC day of start and outcome), so a report
//! over months of history reads whole days from the rollup and only the runs of the window's
//! partial first and last days from `runs`. The definitions (what counts as a deployment, a
//! change failure, a restore) are the report's; see `shipgate_monitor::report`.

use serde::Serialize;
use sqlx::{Any, Row, Transaction};

use shipgate_core::{DeploymentKind, Outcome};

use crate::{Ledger, LedgerError, words};

const DAY_MS: i64 = 86_400_000;

/// Finished runs of one outcome, for one app and environment (and one service, or the runs
/// themselves).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutcomeCount {
    /// The app.
    pub app: String,
    /// The environment.
    pub environment: String,
    /// `None`: the runs themselves; `Some(service)`: the runs that deployed it (each once).
    pub service: Option<String>,
    /// `succeeded`, `rolled_back`, …
    pub outcome: String,
    /// How many.
    pub runs: i64,
    /// The sum of their durations, ms.
    pub duration_ms: i64,
    /// Of these runs (change failures that a later run had to restore: `rollback_failed`,
    /// `unhealthy`), those restored so far.
    pub restored: i64,
    /// The sum of their times to restore (start of the failure to the end of the run that
    /// left a good release live), ms.
    pub restore_ms: i64,
    /// Of these runs (`succeeded`), those whose commit time is known.
    pub lead_runs: i64,
    /// The sum of their lead times (commit to the end of the run), ms.
    pub lead_time_ms: i64,
}

/// Everything the delivery report needs for one window.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DeliveryAggregates {
    /// Counts per app, environment, service and outcome (one row per combination, sorted).
    pub outcomes: Vec<OutcomeCount>,
}

/// 1 for a succeeded run whose commit time is known (it counts toward the lead time), else 0;
/// over `runs` aliased `t` (`""` or `"r."`).
fn lead_runs(t: &str) -> String {
    let succeeded = words::quoted(Outcome::Succeeded.as_str());
    format!("CASE WHEN {t}outcome = {succeeded} AND {t}commit_ms IS NOT NULL THEN 1 ELSE 0 END")
}

/// Such a run's lead time, from the commit to the end of the run, else 0.
fn lead_time(t: &str) -> String {
    let succeeded = words::quoted(Outcome::Succeeded.as_str());
    format!(
        "CASE WHEN {t}outcome = {succeeded} AND {t}commit_ms IS NOT NULL THEN {t}finished_ms - {t}commit_ms ELSE 0 END"
    )
}

/// Counts run `run_id`, just finished, in the rollup: the run itself and each service it
/// deployed; when it left a good release live, it restores the failures of its app and
/// environment that started before it and were waiting. Part of `finish_run`'s transaction.
impl Ledger {
    pub(crate) async fn roll_up(
        &self,
        tx: &mut Transaction<'_, Any>,
        run_id: &str,
    ) -> Result<(), LedgerError> {
        const ADD: &str = " ON CONFLICT (app, environment, service, day_ms, outcome) DO UPDATE SET \
        runs = delivery_rollup.runs + excluded.runs, \
        duration_ms = delivery_rollup.duration_ms + excluded.duration_ms, \
        lead_runs = delivery_rollup.lead_runs + excluded.lead_runs, \
        lead_time_ms = delivery_rollup.lead_time_ms + excluded.lead_time_ms";
        let run = format!(
            "INSERT INTO delivery_rollup (app, environment, service, day_ms, outcome, runs, duration_ms, restored, restore_ms, lead_runs, lead_time_ms) \
         SELECT app, environment, '', started_ms - started_ms % {DAY_MS}, outcome, 1, finished_ms - started_ms, 0, 0, \
         {}, {} FROM runs WHERE id = $1{ADD}",
            lead_runs(""),
            lead_time("")
        );
        let deploy = words::quoted(DeploymentKind::Deploy.as_str());
        let services = format!(
            "INSERT INTO delivery_rollup (app, environment, service, day_ms, outcome, runs, duration_ms, restored, restore_ms, lead_runs, lead_time_ms) \
         SELECT DISTINCT r.app, r.environment, d.service, r.started_ms - r.started_ms % {DAY_MS}, r.outcome, 1, \
         r.finished_ms - r.started_ms, 0, 0, 0, 0 FROM runs r JOIN deployments d ON d.run_id = r.id \
         WHERE r.id = $1 AND d.kind = {deploy}{ADD}"
        );
        for statement in [run, services] {
            // Built from constants; the run id is bound.
            sqlx::query(sqlx::AssertSqlSafe(statement))
                .bind(run_id)
                .execute(&mut **tx)
                .await
                .map_err(self.db("count a run in the delivery rollup"))?;
        }
        let restoring = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT app, environment, started_ms, finished_ms FROM runs WHERE id = $1 \
         AND outcome IN ({})",
            words::outcomes(Outcome::leaves_good_release_live)
        )))
        .bind(run_id)
        .fetch_optional(&mut **tx)
        .await
        .map_err(self.db("restore failures"))?;
        let Some(restoring) = restoring else {
            return Ok(());
        };
        let app: String = restoring.try_get(0).map_err(self.db("restore failures"))?;
        let environment: String = restoring.try_get(1).map_err(self.db("restore failures"))?;
        let started_ms: i64 = restoring.try_get(2).map_err(self.db("restore failures"))?;
        let finished_ms: i64 = restoring.try_get(3).map_err(self.db("restore failures"))?;
        // The partial index runs_unrestored holds exactly these candidates.
        let waiting = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT id, started_ms, outcome FROM runs WHERE app = $1 AND environment = $2 \
         AND restored_ms IS NULL AND outcome IN ({}) \
         AND started_ms <= $3 AND id <> $4 AND finished_ms IS NOT NULL",
            words::outcomes(Outcome::awaits_restore)
        )))
        .bind(&app)
        .bind(&environment)
        .bind(started_ms)
        .bind(run_id)
        .fetch_all(&mut **tx)
        .await
        .map_err(self.db("restore failures"))?;
        for failure in &waiting {
            let id: String = failure.try_get(0).map_err(self.db("restore failures"))?;
            let failed_ms: i64 = failure.try_get(1).map_err(self.db("restore failures"))?;
            let outcome: String = failure.try_get(2).map_err(self.db("restore failures"))?;
            sqlx::query("UPDATE runs SET restored_ms = $1 WHERE id = $2")
                .bind(finished_ms)
                .bind(&id)
                .execute(&mut **tx)
                .await
                .map_err(self.db("restore failures"))?;
            sqlx::query(
                "UPDATE delivery_rollup SET restored = restored + 1, restore_ms = restore_ms + $1 \
             WHERE app = $2 AND environment = $3 AND service = '' AND day_ms = $4 AND outcome = $5",
            )
            .bind(finished_ms - failed_ms)
            .bind(&app)
            .bind(&environment)
            .bind(failed_ms - failed_ms.rem_euclid(DAY_MS))
            .bind(&outcome)
            .execute(&mut **tx)
            .await
            .map_err(self.db("restore failures"))?;
        }
        Ok(())
    }
}

/// Runs (grouped like the rollup) that started in `[$1, $2]`, straight from `runs`.
fn raw_counts() -> String {
    let window = "r.started_ms >= $1 AND r.started_ms <= $2 AND r.finished_ms IS NOT NULL AND r.outcome IS NOT NULL";
    let (lead_runs, lead_time) = (lead_runs("r."), lead_time("r."));
    let deploy = words::quoted(DeploymentKind::Deploy.as_str());
    format!(
        "SELECT r.app, r.environment, '', r.outcome, COUNT(*), CAST(SUM(r.finished_ms - r.started_ms) AS BIGINT), \
         CAST(SUM(CASE WHEN r.restored_ms IS NULL THEN 0 ELSE 1 END) AS BIGINT), \
         CAST(SUM(CASE WHEN r.restored_ms IS NULL THEN 0 ELSE r.restored_ms - r.started_ms END) AS BIGINT), \
         CAST(SUM({lead_runs}) AS BIGINT), CAST(SUM({lead_time}) AS BIGINT) \
         FROM runs r WHERE {window} GROUP BY r.app, r.environment, r.outcome \
         UNION ALL \
         SELECT app, environment, service, outcome, COUNT(*), CAST(SUM(duration_ms) AS BIGINT), \
         CAST(0 AS BIGINT), CAST(0 AS BIGINT), CAST(0 AS BIGINT), CAST(0 AS BIGINT) FROM (\
         SELECT DISTINCT r.id AS id, r.app AS app, r.environment AS environment, d.service AS service, \
         r.outcome AS outcome, r.finished_ms - r.started_ms AS duration_ms \
         FROM runs r JOIN deployments d ON d.run_id = r.id WHERE d.kind = {deploy} AND {window}) per_run \
         GROUP BY app, environment, service, outcome"
    )
}

/// Rollup days in `[$1, $2]`.
const ROLLUP_COUNTS: &str = "SELECT app, environment, service, outcome, CAST(SUM(runs) AS BIGINT), \
     CAST(SUM(duration_ms) AS BIGINT), CAST(SUM(restored) AS BIGINT), CAST(SUM(restore_ms) AS BIGINT), \
     CAST(SUM(lead_runs) AS BIGINT), CAST(SUM(lead_time_ms) AS BIGINT) \
     FROM delivery_rollup WHERE day_ms >= $1 AND day_ms <= $2 \
     GROUP BY app, environment, service, outcome";

/// A range of unix milliseconds, both ends included.
type Span = (i64, i64);

/// A window's whole UTC days (read from the rollup) and the rest of it, each part within
/// one day (read from `runs`): the days cut at either end, or every day's part of a window
/// with no whole day.
fn split_days(since_ms: i64, until_ms: i64) -> (Option<Span>, Vec<Span>) {
    let mut partial = Vec::new();
    let whole = whole_days(since_ms, until_ms);
    if let Some((first, last)) = whole {
        if since_ms < first {
            partial.push((since_ms, first - 1));
        }
        if last + DAY_MS <= until_ms {
            partial.push((last + DAY_MS, until_ms));
        }
    } else {
        let mut from = since_ms;
        while from <= until_ms {
            let day_end = from - from.rem_euclid(DAY_MS) + DAY_MS - 1;
            partial.push((from, day_end.min(until_ms)));
            from = day_end + 1;
        }
    }
    (whole, partial)
}

/// The first and last start of the UTC days lying wholly inside `[since_ms, until_ms]`, if any.
fn whole_days(since_ms: i64, until_ms: i64) -> Option<(i64, i64)> {
    let first = since_ms.div_euclid(DAY_MS) * DAY_MS
        + if since_ms.rem_euclid(DAY_MS) == 0 {
            0
        } else {
            DAY_MS
        };
    let last = (until_ms + 1).div_euclid(DAY_MS) * DAY_MS - DAY_MS;
    (first <= last).then_some((first, last))
}

impl Ledger {
    /// Records when the commit that run `run_id` deploys was made (unix milliseconds), so its
    /// lead time counts once the run succeeds. Call it before `finish_run`.
    pub async fn record_commit_time(
        &self,
        run_id: &str,
        commit_ms: i64,
    ) -> Result<(), LedgerError> {
        sqlx::query("UPDATE runs SET commit_ms = $1 WHERE id = $2")
            .bind(commit_ms)
            .bind(run_id)
            .execute(self.pool())
            .await
            .map_err(self.db("record the commit time"))?;
        Ok(())
    }

    /// The delivery report's inputs over finished runs that started between `since_ms` and
    /// `until_ms` (inclusive): whole days from the rollup, the partial days at either end
    /// from `runs`.
    pub async fn delivery_aggregates(
        &self,
        since_ms: i64,
        until_ms: i64,
    ) -> Result<DeliveryAggregates, LedgerError> {
        let (whole, partial) = split_days(since_ms, until_ms);
        let mut parts: Vec<(String, i64, i64)> = Vec::new();
        if let Some((first, last)) = whole {
            parts.push((ROLLUP_COUNTS.to_owned(), first, last));
        }
        parts.extend(
            partial
                .into_iter()
                .map(|(from, to)| (raw_counts(), from, to)),
        );
        let mut counts: std::collections::BTreeMap<(String, String, String, String), [i64; 6]> =
            std::collections::BTreeMap::new();
        for (sql, from, to) in parts {
            // Built from constants; the bounds are bound.
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(from)
                .bind(to)
                .fetch_all(self.pool())
                .await
                .map_err(self.db("count runs for the delivery report"))?;
            for r in &rows {
                let key = (
                    r.try_get(0).map_err(self.db("read run counts"))?,
                    r.try_get(1).map_err(self.db("read run counts"))?,
                    r.try_get(2).map_err(self.db("read run counts"))?,
                    r.try_get(3).map_err(self.db("read run counts"))?,
                );
                let entry = counts.entry(key).or_default();
                for (i, sum) in entry.iter_mut().enumerate() {
                    *sum += r
                        .try_get::<i64, _>(4 + i)
                        .map_err(self.db("read run counts"))?;
                }
            }
        }
        let outcomes = counts
            .into_iter()
            .map(
                |(
                    (app, environment, service, outcome),
                    [
                        runs,
                        duration_ms,
                        restored,
                        restore_ms,
                        lead_runs,
                        lead_time_ms,
                    ],
                )| {
                    OutcomeCount {
                        app,
                        environment,
                        service: (!service.is_empty()).then_some(service),
                        outcome,
                        runs,
                        duration_ms,
                        restored,
                        restore_ms,
                        lead_runs,
                        lead_time_ms,
                    }
                },
            )
            .collect();
        Ok(DeliveryAggregates { outcomes })
    }
}

/// The delivery report's inputs of one UTC day (see [`Ledger::delivery_days`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DayOutcomes {
    /// The day's start, unix ms.
    pub day_ms: i64,
    /// The day's counts of the runs themselves (`service` is `None`); for a partial day at
    /// either end of the window, of its runs in the window.
    pub count: OutcomeCount,
}

/// The runs of one app and environment in `[$1, $2]` grouped like the rollup's run rows
/// (`service` ''), straight from `runs` (the `runs_by_app` index).
fn raw_run_counts() -> String {
    let (lead_runs, lead_time) = (lead_runs("r."), lead_time("r."));
    format!(
        "SELECT r.outcome, COUNT(*), CAST(SUM(r.finished_ms - r.started_ms) AS BIGINT), \
         CAST(SUM(CASE WHEN r.restored_ms IS NULL THEN 0 ELSE 1 END) AS BIGINT), \
         CAST(SUM(CASE WHEN r.restored_ms IS NULL THEN 0 ELSE r.restored_ms - r.started_ms END) AS BIGINT), \
         CAST(SUM({lead_runs}) AS BIGINT), CAST(SUM({lead_time}) AS BIGINT) \
         FROM runs r WHERE r.app = $3 AND r.environment = $4 AND r.started_ms >= $1 AND r.started_ms <= $2 \
         AND r.finished_ms IS NOT NULL AND r.outcome IS NOT NULL GROUP BY r.outcome"
    )
}

impl Ledger {
    /// The delivery report's inputs of one app and environment per UTC day, for the runs
    /// themselves (not per service): the rollup's rows of the whole days in
    /// `[since_ms, until_ms]`, the partial days at either end from `runs`. One read for a
    /// chart of many weeks instead of one report per week; `shipgate_monitor::report`
    /// computes the figures of any set of days from them.
    pub async fn delivery_days(
        &self,
        app: &str,
        environment: &str,
        since_ms: i64,
        until_ms: i64,
    ) -> Result<Vec<DayOutcomes>, LedgerError> {
        let read = || self.db("read the delivery rollup");
        let count = |r: &sqlx::any::AnyRow, at: usize| -> Result<OutcomeCount, LedgerError> {
            Ok(OutcomeCount {
                app: app.to_owned(),
                environment: environment.to_owned(),
                service: None,
                outcome: r.try_get(at).map_err(read())?,
                runs: r.try_get(at + 1).map_err(read())?,
                duration_ms: r.try_get(at + 2).map_err(read())?,
                restored: r.try_get(at + 3).map_err(read())?,
                restore_ms: r.try_get(at + 4).map_err(read())?,
                lead_runs: r.try_get(at + 5).map_err(read())?,
                lead_time_ms: r.try_get(at + 6).map_err(read())?,
            })
        };
        let mut days = Vec::new();
        let (whole, partial) = split_days(since_ms, until_ms);
        if let Some((first, last)) = whole {
            let rows = sqlx::query(
                "SELECT day_ms, outcome, runs, duration_ms, restored, restore_ms, lead_runs, lead_time_ms \
                 FROM delivery_rollup WHERE day_ms >= $1 AND day_ms <= $2 AND app = $3 \
                 AND environment = $4 AND service = ''",
            )
            .bind(first)
            .bind(last)
            .bind(app)
            .bind(environment)
            .fetch_all(self.pool())
            .await
            .map_err(read())?;
            for r in &rows {
                days.push(DayOutcomes {
                    day_ms: r.try_get(0).map_err(read())?,
                    count: count(r, 1)?,
                });
            }
        }
        for (from, to) in partial {
            // Built from constants; the values are bound.
            let rows = sqlx::query(sqlx::AssertSqlSafe(raw_run_counts()))
                .bind(from)
                .bind(to)
                .bind(app)
                .bind(environment)
                .fetch_all(self.pool())
                .await
                .map_err(read())?;
            for r in &rows {
                days.push(DayOutcomes {
                    day_ms: from - from.rem_euclid(DAY_MS),
                    count: count(r, 0)?,
                });
            }
        }
        days.sort_by_key(|d| d.day_ms);
        Ok(days)
    }
}

#[cfg(test)]
mod tests {
    use super::{DAY_MS as D, split_days, whole_days};

    #[test]
    fn whole_days_are_the_ones_inside_the_window() {
        assert_eq!(whole_days(0, 2 * D - 1), Some((0, D)));
        assert_eq!(whole_days(1, 2 * D), Some((D, D)));
        assert_eq!(whole_days(1, 2 * D - 2), None);
        assert_eq!(whole_days(10, D - 10), None);
        assert_eq!(whole_days(-D, 0), Some((-D, -D)));
    }

    #[test]
    fn a_window_splits_into_whole_days_and_day_parts() {
        assert_eq!(split_days(0, 2 * D - 1), (Some((0, D)), vec![]));
        assert_eq!(
            split_days(5, 3 * D + 7),
            (Some((D, 2 * D)), vec![(5, D - 1), (3 * D, 3 * D + 7)])
        );
        assert_eq!(split_days(5, D + 7), (None, vec![(5, D - 1), (D, D + 7)]));
        assert_eq!(split_days(5, 7), (None, vec![(5, 7)]));
    }
}
