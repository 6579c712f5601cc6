//! The monitor's rows: one per watched target (schedule position, alert state, the GitHub issue
//! of an open alert) and its state transitions. Replicas share targets by claiming due rows
//! as leases: on Postgres with `SELECT … FOR UPDATE SKIP LOCKED` inside the claiming
//! `UPDATE`, on SQLite by the database's single writer. A claim that is never settled (the
//! replica died) expires and another replica takes the target.

use serde::Serialize;
use sqlx::Row;

use crate::dashboard::{LATENCY_BUCKET_MS, LATENCY_HOUR_MS, latency_bucket};
use crate::{Backend, Ledger, LedgerError};

/// A watched target as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MonitorTargetRow {
    /// `app/environment/name`.
    pub id: String,
    /// The app.
    pub app: String,
    /// The environment.
    pub environment: String,
    /// The target's configured name.
    pub name: String,
    /// `healthy`, `failing`, `alerting` or `recovering`.
    pub state: String,
    /// Consecutive results that count toward the next transition (failures while
    /// `failing`/`alerting`, passes while `recovering`).
    pub streak: i64,
    /// When the next check is due, unix milliseconds.
    pub next_due_ms: i64,
    /// Checks run so far.
    pub checks: i64,
    /// Checks failed so far.
    pub failures: i64,
    /// The last check, unix milliseconds.
    pub last_checked_ms: Option<i64>,
    /// Whether the last check passed.
    pub last_passed: Option<bool>,
    /// What the last check found (redacted).
    pub last_detail: Option<String>,
    /// The first failure of the current failing streak.
    pub failing_since_ms: Option<i64>,
    /// When the open alert was opened.
    pub alert_opened_ms: Option<i64>,
    /// The GitHub issue of the open alert.
    pub issue_number: Option<i64>,
    /// Its URL.
    pub issue_url: Option<String>,
    /// The last comment posted on it (or its opening).
    pub last_comment_ms: Option<i64>,
}

/// What a finished check writes back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonitorRecord {
    /// The new state.
    pub state: String,
    /// The new streak.
    pub streak: i64,
    /// When the next check is due.
    pub next_due_ms: i64,
    /// When the check ran.
    pub checked_ms: i64,
    /// Whether it passed.
    pub passed: bool,
    /// What it found (redacted).
    pub detail: String,
    /// How long the check took, ms (counted in the latency rollups).
    pub latency_ms: i64,
    /// See [`MonitorTargetRow::failing_since_ms`].
    pub failing_since_ms: Option<i64>,
    /// See [`MonitorTargetRow::alert_opened_ms`].
    pub alert_opened_ms: Option<i64>,
    /// See [`MonitorTargetRow::issue_number`].
    pub issue_number: Option<i64>,
    /// See [`MonitorTargetRow::issue_url`].
    pub issue_url: Option<String>,
    /// See [`MonitorTargetRow::last_comment_ms`].
    pub last_comment_ms: Option<i64>,
}

/// A state transition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MonitorEvent {
    /// The target's id.
    pub target_id: String,
    /// When, unix milliseconds.
    pub at_ms: i64,
    /// From this state.
    pub from_state: String,
    /// To this one.
    pub to_state: String,
    /// Why (redacted).
    pub detail: String,
}

const COLUMNS: &str = "id, app, environment, name, state, streak, next_due_ms, checks, failures, \
     last_checked_ms, last_passed, last_detail, failing_since_ms, alert_opened_ms, issue_number, \
     issue_url, last_comment_ms";

/// The target id of (app, environment, name).
pub(crate) fn target_id(app: &str, environment: &str, name: &str) -> String {
    format!("{app}/{environment}/{name}")
}

impl Ledger {
    /// The row-locking clause of a claiming subquery: `FOR UPDATE SKIP LOCKED` on Postgres
    /// (concurrent claimers skip each other's rows instead of waiting or double-claiming);
    /// nothing on SQLite, whose single writer already serialises the claiming `UPDATE`.
    pub(crate) fn skip_locked(&self) -> &'static str {
        match self.backend {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        }
    }

    /// Makes `targets` (names) of `app` the watched set: new ones are added healthy and due at
    /// once, known ones keep their state (a restart changes nothing), and the app's targets no
    /// longer configured are retired (kept for their history, never claimed). Returns the ids.
    pub async fn monitor_register(
        &self,
        app: &str,
        targets: &[(String, String)],
    ) -> Result<Vec<String>, LedgerError> {
        let mut ids = Vec::new();
        for (environment, name) in targets {
            let id = target_id(app, environment, name);
            sqlx::query(
                "INSERT INTO monitor_targets (id, app, environment, name, retired, state, streak, next_due_ms, checks, failures) \
                 VALUES ($1, $2, $3, $4, 0, $5, 0, 0, 0, 0) \
                 ON CONFLICT (id) DO UPDATE SET retired = 0",
            )
            .bind(&id)
            .bind(app)
            .bind(environment)
            .bind(name)
            .bind(shipgate_core::AlertState::Healthy.as_str())
            .execute(self.pool())
            .await
            .map_err(self.db("register monitor targets"))?;
            ids.push(id);
        }
        let known: Vec<String> =
            sqlx::query("SELECT id FROM monitor_targets WHERE app = $1 AND retired = 0")
                .bind(app)
                .fetch_all(self.pool())
                .await
                .map_err(self.db("register monitor targets"))?
                .iter()
                .map(|r| r.try_get(0).map_err(self.db("register monitor targets")))
                .collect::<Result<_, _>>()?;
        for id in known.iter().filter(|id| !ids.contains(id)) {
            sqlx::query("UPDATE monitor_targets SET retired = 1 WHERE id = $1")
                .bind(id)
                .execute(self.pool())
                .await
                .map_err(self.db("retire a monitor target"))?;
        }
        Ok(ids)
    }

    /// Claims up to `limit` of `app`'s targets that are due at `now_ms` for `claimer`, until
    /// `now_ms + lease_ms`. Each due target is claimed by exactly one caller, whichever replica
    /// asks first; an expired claim is claimable again.
    pub async fn monitor_claim_due(
        &self,
        app: &str,
        now_ms: i64,
        limit: i64,
        lease_ms: i64,
        claimer: &str,
    ) -> Result<Vec<MonitorTargetRow>, LedgerError> {
        let sql = format!(
            "UPDATE monitor_targets SET claimed_by = $1, claimed_until_ms = $2 WHERE id IN (\
             SELECT id FROM monitor_targets WHERE app = $3 AND retired = 0 AND next_due_ms <= $4 \
             AND (claimed_until_ms IS NULL OR claimed_until_ms < $4) \
             ORDER BY next_due_ms, id LIMIT $5{}) RETURNING {COLUMNS}",
            self.skip_locked()
        );
        // Built from constants: the only variable part is the backend's locking clause.
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(claimer)
            .bind(now_ms + lease_ms)
            .bind(app)
            .bind(now_ms)
            .bind(limit)
            .fetch_all(self.pool())
            .await
            .map_err(self.db("claim due monitor checks"))?
            .iter()
            .map(|r| target_from_row(r).map_err(self.db("read monitor target")))
            .collect()
    }

    /// Writes a finished check back and releases the claim, only if `claimer` still holds it
    /// (a replica whose lease expired and was taken over writes nothing). A state change is
    /// recorded as an event. Returns whether the write happened.
    pub async fn monitor_record(
        &self,
        id: &str,
        claimer: &str,
        record: &MonitorRecord,
        event: Option<&MonitorEvent>,
    ) -> Result<bool, LedgerError> {
        // The state, its event and the latency rollup are written in one transaction.
        Ok(self
            .monitor_record_batch(claimer, &[(id, record, event)])
            .await?
            .first()
            .copied()
            .unwrap_or(false))
    }

    /// [`Ledger::monitor_record`] for many checks in one transaction (a busy monitor's group
    /// commit: one WAL commit for dozens of checks instead of one each). Returns, per check,
    /// whether its write happened.
    pub async fn monitor_record_batch(
        &self,
        claimer: &str,
        writes: &[(&str, &MonitorRecord, Option<&MonitorEvent>)],
    ) -> Result<Vec<bool>, LedgerError> {
        let mut tx = self
            .pool()
            .begin()
            .await
            .map_err(self.db("record checks"))?;
        let mut written = Vec::with_capacity(writes.len());
        for (id, record, event) in writes {
            let done = record_update(id, claimer, record)
                .execute(&mut *tx)
                .await
                .map_err(self.db("record a check"))?
                .rows_affected()
                == 1;
            if done {
                for (table, width_ms) in LATENCY_TABLES {
                    add_latency(table, width_ms, id, record)
                        .execute(&mut *tx)
                        .await
                        .map_err(self.db("record a check's latency"))?;
                }
            }
            if done && let Some(event) = event {
                sqlx::query(
                    "INSERT INTO monitor_events (target_id, at_ms, from_state, to_state, detail) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(&event.target_id)
                .bind(event.at_ms)
                .bind(&event.from_state)
                .bind(&event.to_state)
                .bind(&event.detail)
                .execute(&mut *tx)
                .await
                .map_err(self.db("record a monitor event"))?;
            }
            written.push(done);
        }
        tx.commit().await.map_err(self.db("record checks"))?;
        Ok(written)
    }

    /// Gives a claimed target back unchecked (shutdown before it ran).
    pub async fn monitor_release(&self, id: &str, claimer: &str) -> Result<(), LedgerError> {
        sqlx::query(
            "UPDATE monitor_targets SET claimed_by = NULL, claimed_until_ms = NULL WHERE id = $1 AND claimed_by = $2",
        )
        .bind(id)
        .bind(claimer)
        .execute(self.pool())
        .await
        .map_err(self.db("release a monitor target"))?;
        Ok(())
    }

    /// The watched (not retired) targets of `app`, by id.
    pub async fn monitor_targets(&self, app: &str) -> Result<Vec<MonitorTargetRow>, LedgerError> {
        self.monitor_target_rows(Some(app)).await
    }

    /// The watched (not retired) targets of one app or of all, by id.
    pub(crate) async fn monitor_target_rows(
        &self,
        app: Option<&str>,
    ) -> Result<Vec<MonitorTargetRow>, LedgerError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM monitor_targets WHERE ($1 IS NULL OR app = $1) AND retired = 0 ORDER BY id"
        );
        // Built from constants.
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(app)
            .fetch_all(self.pool())
            .await
            .map_err(self.db("list monitor targets"))?
            .iter()
            .map(|r| target_from_row(r).map_err(self.db("read monitor target")))
            .collect()
    }

    /// The id and alert state of each of `app`'s watched targets (what the metrics export,
    /// without reading whole rows).
    pub async fn monitor_states(&self, app: &str) -> Result<Vec<(String, String)>, LedgerError> {
        sqlx::query("SELECT id, state FROM monitor_targets WHERE app = $1 AND retired = 0")
            .bind(app)
            .fetch_all(self.pool())
            .await
            .map_err(self.db("list monitor states"))?
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(self.db("read monitor states"))
    }

    /// The state transitions of target `id`, oldest first.
    pub async fn monitor_events(&self, id: &str) -> Result<Vec<MonitorEvent>, LedgerError> {
        sqlx::query(
            "SELECT target_id, at_ms, from_state, to_state, detail FROM monitor_events WHERE target_id = $1 ORDER BY at_ms",
        )
        .bind(id)
        .fetch_all(self.pool())
        .await
        .map_err(self.db("list monitor events"))?
        .iter()
        .map(|r| {
            Ok(MonitorEvent {
                target_id: r.try_get(0).map_err(self.db("read monitor event"))?,
                at_ms: r.try_get(1).map_err(self.db("read monitor event"))?,
                from_state: r.try_get(2).map_err(self.db("read monitor event"))?,
                to_state: r.try_get(3).map_err(self.db("read monitor event"))?,
                detail: r.try_get(4).map_err(self.db("read monitor event"))?,
            })
        })
        .collect()
    }
}

/// The latency rollups: table and bucket width.
pub(crate) const LATENCY_TABLES: [(&str, i64); 2] = [
    ("monitor_latency", LATENCY_BUCKET_MS),
    ("monitor_latency_hourly", LATENCY_HOUR_MS),
];

/// Counts one check in its target's bucket of rollup `table` (of width `width_ms`).
fn add_latency<'q>(
    table: &str,
    width_ms: i64,
    id: &'q str,
    record: &'q MonitorRecord,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    let mut histogram = [0i64; 11];
    histogram[latency_bucket(record.latency_ms)] = 1;
    let latency = record.latency_ms.max(0);
    let add = |c: &str| format!("{c} = {table}.{c} + excluded.{c}");
    let sums: Vec<String> = ["failures", "total_ms"]
        .into_iter()
        .map(add)
        .chain((0..11).map(|i| add(&format!("h{i}"))))
        .collect();
    let sql = format!(
        "INSERT INTO {table} (target_id, bucket_ms, checks, failures, total_ms, max_ms, \
         h0, h1, h2, h3, h4, h5, h6, h7, h8, h9, h10) \
         VALUES ($1, $2, 1, $3, $4, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) \
         ON CONFLICT (target_id, bucket_ms) DO UPDATE SET checks = {table}.checks + 1, {}, \
         max_ms = CASE WHEN excluded.max_ms > {table}.max_ms THEN excluded.max_ms ELSE {table}.max_ms END",
        sums.join(", ")
    );
    // Built from the constant table names; the values are bound.
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .bind(record.checked_ms - record.checked_ms.rem_euclid(width_ms))
        .bind(i64::from(!record.passed))
        .bind(latency);
    for count in histogram {
        query = query.bind(count);
    }
    query
}

/// The write-back of one check, if `claimer` still holds the target.
fn record_update<'q>(
    id: &'q str,
    claimer: &'q str,
    record: &'q MonitorRecord,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    sqlx::query(
        "UPDATE monitor_targets SET state = $1, streak = $2, next_due_ms = $3, \
         checks = checks + 1, failures = failures + $4, last_checked_ms = $5, last_passed = $6, \
         last_detail = $7, failing_since_ms = $8, alert_opened_ms = $9, issue_number = $10, \
         issue_url = $11, last_comment_ms = $12, claimed_by = NULL, claimed_until_ms = NULL \
         WHERE id = $13 AND claimed_by = $14",
    )
    .bind(&record.state)
    .bind(record.streak)
    .bind(record.next_due_ms)
    .bind(i64::from(!record.passed))
    .bind(record.checked_ms)
    .bind(i64::from(record.passed))
    .bind(&record.detail)
    .bind(record.failing_since_ms)
    .bind(record.alert_opened_ms)
    .bind(record.issue_number)
    .bind(record.issue_url.as_deref())
    .bind(record.last_comment_ms)
    .bind(id)
    .bind(claimer)
}

fn target_from_row(r: &sqlx::any::AnyRow) -> Result<MonitorTargetRow, sqlx::Error> {
    let get_bool = |i: usize| -> Result<Option<bool>, sqlx::Error> {
        Ok(r.try_get::<Option<i64>, _>(i)?.map(|v| v != 0))
    };
    Ok(MonitorTargetRow {
        id: r.try_get(0)?,
        app: r.try_get(1)?,
        environment: r.try_get(2)?,
        name: r.try_get(3)?,
        state: r.try_get(4)?,
        streak: r.try_get(5)?,
        next_due_ms: r.try_get(6)?,
        checks: r.try_get(7)?,
        failures: r.try_get(8)?,
        last_checked_ms: r.try_get(9)?,
        last_passed: get_bool(10)?,
        last_detail: r.try_get(11)?,
        failing_since_ms: r.try_get(12)?,
        alert_opened_ms: r.try_get(13)?,
        issue_number: r.try_get(14)?,
        issue_url: r.try_get(15)?,
        last_comment_ms: r.try_get(16)?,
    })
}
