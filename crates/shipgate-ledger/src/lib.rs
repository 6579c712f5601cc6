//! The deploy ledger: every run, its steps and its deployments, and the deploy lock of each
//! (app, environment), in SQLite (the embedded default, `sqlite://.shipgate/ledger.db`) or
//! Postgres (`postgres://…`, for teams whose runners share one ledger). The same portable SQL
//! runs on both through sqlx's `Any` driver; the schema migrations are embedded.
//!
//! ```no_run
//! # async fn demo() -> Result<(), shipgate_ledger::LedgerError> {
//! let ledger = shipgate_ledger::Ledger::open("sqlite://.shipgate/ledger.db").await?;
//! for run in ledger.runs(Some("provenance"), 10).await? {
//!     println!("{} {} {:?}", run.id, run.environment, run.outcome);
//! }
//! # Ok(()) }
//! ```

mod dashboard;
mod delivery;
mod lock;
mod monitor;
mod words;

use std::path::Path;

use serde::Serialize;
use shipgate_core::{DeploymentKind, DeploymentVerdict, Outcome, redact_credentials};
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Row};

pub use dashboard::{
    DayCount, LATENCY_BOUNDS_MS, LATENCY_BUCKET_MS, LATENCY_HOUR_MS, LatencyStats, LiveRelease,
    TimelineQuery, TimelineRun,
};
pub use delivery::{DayOutcomes, DeliveryAggregates, OutcomeCount};
pub use lock::{LockHolder, LockRequest, LockWait, now_ms};
pub use monitor::{MonitorEvent, MonitorRecord, MonitorTargetRow};

/// Ledger errors. Messages name the database (never its password) and the operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LedgerError {
    /// The URL is not `sqlite:` or `postgres://`.
    #[error("ledger URL must start with sqlite: or postgres://, got `{0}`")]
    InvalidUrl(String),
    /// The database could not be opened.
    #[error("cannot open the ledger {database}: {reason}")]
    Open {
        /// The database ([`database_name`]: a path, or a host and database; never a password).
        database: String,
        /// Why, and what to do.
        reason: String,
    },
    /// A query failed.
    #[error("ledger {database}: {operation}: {message}")]
    Database {
        /// The database ([`database_name`]).
        database: String,
        /// What was being done.
        operation: &'static str,
        /// The driver's message.
        message: String,
    },
    /// The lock was not obtained before the timeout.
    #[error("deploy lock for {app}/{environment} still held by run {} ({} on {}, pid {}) after waiting {waited_s} s", holder.run_id, holder.owner, holder.host, holder.pid)]
    LockTimeout {
        /// The app.
        app: String,
        /// The environment.
        environment: String,
        /// Who holds it.
        holder: Box<LockHolder>,
        /// How long we waited.
        waited_s: u64,
    },
    /// Waiting for the lock was cancelled.
    #[error("cancelled while waiting for the deploy lock")]
    Cancelled,
    /// A newer deploy of the same app and environment queued behind this one, or ran and
    /// finished, while it waited for the lock: it gives up so that an older release never
    /// goes live over a newer one.
    #[error(
        "a newer deploy of {app}/{environment} ({by}, run {by_run}) {how} while this one waited for the deploy lock; this one gives up so the older release does not go live over it"
    )]
    Superseded {
        /// The app.
        app: String,
        /// The environment.
        environment: String,
        /// The newer run.
        by_run: String,
        /// What it deploys (`deploy 4a5b6c7`).
        by: String,
        /// `queued behind it` or `finished`.
        how: &'static str,
    },
}

/// The database a ledger URL names, as errors and status lines show it: `SQLite file PATH`, or
/// `Postgres HOST[:PORT]/DATABASE` (never the user or password).
///
/// ```
/// use shipgate_ledger::database_name;
/// assert_eq!(database_name("sqlite://.shipgate/ledger.db"), "SQLite file .shipgate/ledger.db");
/// assert_eq!(database_name("postgres://app:s3cret@db:5432/ledger?sslmode=require"), "Postgres db:5432/ledger");
/// ```
pub fn database_name(url: &str) -> String {
    if let Some(path) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    {
        let path = path.split('?').next().unwrap_or(path);
        return if path == ":memory:" {
            "SQLite in memory".to_owned()
        } else {
            format!("SQLite file {path}")
        };
    }
    if let Some(rest) = url
        .strip_prefix("postgres://")
        .or_else(|| url.strip_prefix("postgresql://"))
    {
        let rest = rest.split(['?', '#']).next().unwrap_or(rest);
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let host = authority
            .rsplit_once('@')
            .map_or(authority, |(_, host)| host);
        return format!("Postgres {host}/{path}");
    }
    format!("`{}`", redact_credentials(url))
}

/// Refuses a SQLite path that cannot be a ledger file before the driver tries it: a
/// directory, or an existing file that does not start with SQLite's header. Creates the
/// missing parent directory.
fn check_sqlite_file(path: &Path) -> Result<(), String> {
    const HEADER: &[u8] = b"SQLite format 3\0";
    if path.is_dir() {
        return Err(format!(
            "{} is a directory; the ledger URL names a file, such as sqlite://{}/ledger.db",
            path.display(),
            path.display()
        ));
    }
    if let Ok(mut file) = std::fs::File::open(path) {
        use std::io::Read as _;
        let mut head = [0_u8; 16];
        let read = file.read(&mut head).unwrap_or(0);
        if read > 0 && (read < HEADER.len() || &head[..] != HEADER) {
            return Err(
                "the file is not a SQLite database (corrupt, or another kind of file); move it \
                 aside and shipgate creates a new ledger, or restore it from a backup"
                    .to_owned(),
            );
        }
    } else if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create the directory {}: {e}", dir.display()))?;
    }
    Ok(())
}

/// A driver error as a reason: SQLite's "file is not a database" and "malformed" say what to
/// do; passwords in URLs are masked.
fn driver_reason(err: &sqlx::Error) -> String {
    let message = redact_credentials(&err.to_string()).into_owned();
    if message.contains("file is not a database") || message.contains("malformed") {
        format!(
            "the file is not a readable SQLite database ({message}); move it aside and \
             shipgate creates a new ledger, or restore it from a backup"
        )
    } else {
        message
    }
}

/// Which database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite, one file.
    Sqlite,
    /// Postgres.
    Postgres,
}

/// The Postgres advisory lock key that serialises migrations ("shipgate" in ASCII, cut).
const MIGRATION_LOCK: i64 = 0x7368_6970_6761_7465;

/// Embedded schema migrations, in order. Portable SQL: the same text runs on SQLite and
/// Postgres.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/0001_init.sql")),
    (2, include_str!("../migrations/0002_outbox.sql")),
    (3, include_str!("../migrations/0003_monitor.sql")),
    (4, include_str!("../migrations/0004_delivery_rollup.sql")),
    (5, include_str!("../migrations/0005_lock_queue.sql")),
    (6, include_str!("../migrations/0006_run_strategy.sql")),
    (7, include_str!("../migrations/0007_dashboard.sql")),
];

/// Inserts a run, unfinished or (`finished`: when and how) already finished.
async fn insert_run<'e>(
    executor: impl sqlx::Executor<'e, Database = sqlx::Any>,
    run: &NewRun,
    finished: Option<(i64, &str)>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO runs (id, app, environment, image_tag, owner, host, pid, started_ms, finished_ms, outcome) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&run.id)
    .bind(&run.app)
    .bind(&run.environment)
    .bind(&run.image_tag)
    .bind(&run.owner)
    .bind(&run.host)
    .bind(run.pid)
    .bind(run.started_ms)
    .bind(finished.map(|(ms, _)| ms))
    .bind(finished.map(|(_, outcome)| outcome))
    .execute(executor)
    .await?;
    Ok(())
}

/// Inserts a finished step of `run_id`.
async fn insert_step<'e>(
    executor: impl sqlx::Executor<'e, Database = sqlx::Any>,
    run_id: &str,
    step: &StepRecord,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO steps (run_id, seq, name, started_ms, finished_ms, outcome, detail) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(run_id)
    .bind(step.seq)
    .bind(&step.name)
    .bind(step.started_ms)
    .bind(step.finished_ms)
    .bind(&step.outcome)
    .bind(&step.detail)
    .execute(executor)
    .await?;
    Ok(())
}

/// The most recent record of one image on one target: the evidence behind "verified good".
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GateVerdict {
    /// The target (`helm`, `railway`, `fly`, `local`).
    pub target: String,
    /// The image.
    pub image: String,
    /// The run that deployed it (or rolled back to it).
    pub run_id: String,
    /// `deploy` or `rollback`.
    pub kind: String,
    /// The target's verdict on it: `healthy`, `failed`, `timed_out`, `cancelled`.
    pub verdict: String,
    /// How that run ended (`None` while it runs).
    pub outcome: Option<String>,
}

impl GateVerdict {
    /// Whether the image passed its gate in that run: deployed healthy in a run that
    /// `succeeded` (its smoke gate passed, or there was none), or rolled back to healthy in a
    /// run that ended `rolled_back` (its smoke after the rollback passed, or was off). A run
    /// that was interrupted, left unhealthy, failed or is still running verified nothing.
    pub fn passed(&self) -> bool {
        let outcome = self.outcome.as_deref().and_then(Outcome::parse);
        DeploymentVerdict::parse(&self.verdict) == Some(DeploymentVerdict::Healthy)
            && match DeploymentKind::parse(&self.kind) {
                Some(DeploymentKind::Deploy) => outcome == Some(Outcome::Succeeded),
                Some(DeploymentKind::Rollback) => outcome == Some(Outcome::RolledBack),
                None => false,
            }
    }

    /// `deployed healthy in run R, which ended rolled_back`, for reason chains.
    pub fn describe(&self) -> String {
        let action = if DeploymentKind::parse(&self.kind) == Some(DeploymentKind::Rollback) {
            "rolled back to"
        } else {
            "deployed"
        };
        format!(
            "{action} on {} in run {} ({}), which {}",
            self.target,
            self.run_id,
            self.verdict,
            self.outcome
                .as_deref()
                .map_or_else(|| "has not finished".to_owned(), |o| format!("ended {o}"))
        )
    }
}

/// A new run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewRun {
    /// Unique id (`20261123T101500Z-4f2a`).
    pub id: String,
    /// The app.
    pub app: String,
    /// The environment.
    pub environment: String,
    /// The image tag deployed.
    pub image_tag: String,
    /// Who started it (`$GITHUB_ACTOR`, the user).
    pub owner: String,
    /// The host it runs on.
    pub host: String,
    /// Its pid.
    pub pid: i64,
    /// Start, unix milliseconds.
    pub started_ms: i64,
}

/// A run as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunRecord {
    /// Unique id.
    pub id: String,
    /// The app.
    pub app: String,
    /// The environment.
    pub environment: String,
    /// The image tag.
    pub image_tag: String,
    /// Who started it.
    pub owner: String,
    /// The host.
    pub host: String,
    /// Start, unix milliseconds.
    pub started_ms: i64,
    /// End, unix milliseconds; `None` while running (or when the run died).
    pub finished_ms: Option<i64>,
    /// `succeeded`, `failed`, `rolled_back`, `rollback_failed`, `unhealthy`, `aborted`.
    pub outcome: Option<String>,
    /// Where the summary was written.
    pub summary_path: Option<String>,
    /// How the release reached users: `rolling`, `bluegreen`, `canary` (absent for runs
    /// recorded before the ledger kept it, and while a run is in progress).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub strategy: Option<String>,
}

/// One step of a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepRecord {
    /// Position.
    pub seq: i64,
    /// `lock`, `deploy local`, `smoke`, `rollback local`, …
    pub name: String,
    /// Start, unix milliseconds.
    pub started_ms: i64,
    /// End, unix milliseconds.
    pub finished_ms: i64,
    /// `ok`, `failed`, `skipped`, …
    pub outcome: String,
    /// A redacted sentence.
    pub detail: String,
}

/// One service deployment (or rollback) of a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeploymentRecord {
    /// The run.
    pub run_id: String,
    /// `local`, `helm`, …
    pub target: String,
    /// The service.
    pub service: String,
    /// What ran before.
    pub from_image: Option<String>,
    /// What was deployed.
    pub to_image: String,
    /// The provider's revision.
    pub revision: String,
    /// `deploy` or `rollback`.
    pub kind: String,
    /// `healthy`, `failed`, `timed_out`, `cancelled`.
    pub verdict: String,
}

/// A notification to queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxMessage {
    /// Unique id (the run id and the channel name).
    pub id: String,
    /// The run it reports.
    pub run_id: String,
    /// The channel's configured name (never its URL or key).
    pub channel: String,
    /// The JSON body to send, built from a redacted summary.
    pub payload: String,
}

/// A claimed notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxItem {
    /// Its id.
    pub id: String,
    /// The run it reports.
    pub run_id: String,
    /// The channel's name.
    pub channel: String,
    /// The JSON body.
    pub payload: String,
    /// Attempts so far.
    pub attempts: i64,
}

/// The ledger.
#[derive(Debug, Clone)]
pub struct Ledger {
    pool: AnyPool,
    backend: Backend,
    /// The database as errors name it (see [`database_name`]).
    database: String,
}

impl Ledger {
    /// Maps a driver error of `operation` to a [`LedgerError::Database`] naming this ledger.
    pub(crate) fn db(&self, operation: &'static str) -> impl FnOnce(sqlx::Error) -> LedgerError {
        let database = self.database.clone();
        move |err| LedgerError::Database {
            database,
            operation,
            message: redact_credentials(&err.to_string()).into_owned(),
        }
    }

    /// Opens (creating a SQLite file and its directory if needed) and migrates. Every error
    /// names the database ([`database_name`]); a SQLite path that is a directory, or a file
    /// that is not a SQLite database, is refused at once.
    pub async fn open(url: &str) -> Result<Ledger, LedgerError> {
        install_default_drivers();
        let database = database_name(url);
        let refused = |reason: String| LedgerError::Open {
            database: database.clone(),
            reason,
        };
        let (backend, connect_url) = if let Some(path) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            let path = path.split('?').next().unwrap_or(path);
            if path != ":memory:" {
                check_sqlite_file(Path::new(path)).map_err(refused)?;
            }
            if path == ":memory:" {
                (Backend::Sqlite, "sqlite::memory:".to_owned())
            } else {
                (Backend::Sqlite, format!("sqlite://{path}?mode=rwc"))
            }
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (Backend::Postgres, url.to_owned())
        } else {
            return Err(LedgerError::InvalidUrl(
                redact_credentials(url).into_owned(),
            ));
        };
        let built = match backend {
            Backend::Sqlite => cfg!(feature = "sqlite"),
            Backend::Postgres => cfg!(feature = "postgres"),
        };
        if !built {
            let feature = match backend {
                Backend::Sqlite => "sqlite",
                Backend::Postgres => "postgres",
            };
            return Err(refused(format!(
                "this build of shipgate-ledger has no `{feature}` feature; build it with that feature to use this ledger"
            )));
        }
        if backend == Backend::Sqlite {
            // One connection first, outside the pool: a file SQLite cannot read fails here at
            // once, where the pool would retry it until its acquire timeout.
            use sqlx::Connection as _;
            let mut probe = sqlx::AnyConnection::connect(&connect_url)
                .await
                .map_err(|e| refused(driver_reason(&e)))?;
            let read = sqlx::query("SELECT count(*) FROM sqlite_master")
                .execute(&mut probe)
                .await;
            let _ = probe.close().await;
            read.map_err(|e| refused(driver_reason(&e)))?;
        }
        // An in-memory database lives as long as its one connection: never recycle it.
        let in_memory = connect_url == "sqlite::memory:";
        let pool = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { 1 } else { 5 })
            .idle_timeout((!in_memory).then_some(std::time::Duration::from_secs(600)))
            .max_lifetime((!in_memory).then_some(std::time::Duration::from_secs(1800)))
            .acquire_timeout(std::time::Duration::from_secs(5))
            // Per-connection settings go on every connection the pool opens (it replaces
            // idle ones): wait up to 30 s for another process's write instead of failing with
            // "database is locked", and sync at checkpoints rather than every commit (WAL
            // keeps the file consistent; a power cut may lose the last commits, never the file).
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        use sqlx::Executor as _;
                        conn.execute("PRAGMA busy_timeout=30000").await?;
                        conn.execute("PRAGMA synchronous=NORMAL").await?;
                    }
                    Ok(())
                })
            })
            .connect(&connect_url)
            .await
            .map_err(|e| refused(driver_reason(&e)))?;
        let ledger = Ledger {
            pool,
            backend,
            database,
        };
        ledger.migrate().await?;
        Ok(ledger)
    }

    /// The database kind.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    async fn migrate(&self) -> Result<(), LedgerError> {
        // One connection for the whole migration. On Postgres it holds an advisory lock, so
        // processes that start together (monitor replicas, parallel deploy jobs) migrate one
        // after the other instead of racing on CREATE TABLE (which Postgres does not make
        // safe, even with IF NOT EXISTS); on SQLite the file's single writer serialises them.
        let mut conn = self.pool.acquire().await.map_err(self.db("migrate"))?;
        if self.backend == Backend::Sqlite {
            sqlx::query("PRAGMA journal_mode=WAL")
                .execute(&mut *conn)
                .await
                .map_err(self.db("migrate"))?;
        } else {
            sqlx::query("SELECT pg_advisory_lock($1)")
                .bind(MIGRATION_LOCK)
                .execute(&mut *conn)
                .await
                .map_err(self.db("migrate"))?;
        }
        let outcome = self.apply_migrations(&mut conn).await;
        if self.backend == Backend::Postgres {
            // Also released when the connection closes, should this fail.
            let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
                .bind(MIGRATION_LOCK)
                .execute(&mut *conn)
                .await;
        }
        outcome
    }

    async fn apply_migrations(&self, conn: &mut sqlx::AnyConnection) -> Result<(), LedgerError> {
        use sqlx::Connection as _;
        sqlx::query("CREATE TABLE IF NOT EXISTS shipgate_schema (version BIGINT PRIMARY KEY)")
            .execute(&mut *conn)
            .await
            .map_err(self.db("migrate"))?;
        for (version, sql) in MIGRATIONS {
            let applied = sqlx::query("SELECT version FROM shipgate_schema WHERE version = $1")
                .bind(*version)
                .fetch_optional(&mut *conn)
                .await
                .map_err(self.db("migrate"))?;
            if applied.is_some() {
                continue;
            }
            let mut tx = conn.begin().await.map_err(self.db("migrate"))?;
            // Claiming the version is the transaction's first statement: a write, so on SQLite
            // it waits for any other writer and then reads the latest state. Someone else
            // applied it meanwhile: nothing to do.
            let claimed = sqlx::query(
                "INSERT INTO shipgate_schema (version) VALUES ($1) ON CONFLICT (version) DO NOTHING",
            )
            .bind(*version)
            .execute(&mut *tx)
            .await
            .map_err(self.db("migrate"))?
            .rows_affected()
                == 1;
            if !claimed {
                tx.rollback().await.map_err(self.db("migrate"))?;
                continue;
            }
            // Comment lines go first, so a `;` in a comment never splits a statement.
            let sql: String = sql
                .lines()
                .filter(|l| !l.trim_start().starts_with("--"))
                .collect::<Vec<_>>()
                .join("\n");
            for statement in sql.split(';').map(str::trim).filter(|s| !s.is_empty()) {
                // Embedded migration text, not input: safe to run as built.
                sqlx::query(sqlx::AssertSqlSafe(statement.to_owned()))
                    .execute(&mut *tx)
                    .await
                    .map_err(self.db("migrate"))?;
            }
            tx.commit().await.map_err(self.db("migrate"))?;
        }
        Ok(())
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Records the start of a run.
    pub async fn start_run(&self, run: &NewRun) -> Result<(), LedgerError> {
        insert_run(&self.pool, run, None)
            .await
            .map_err(self.db("start run"))
    }

    /// Records a finished step.
    pub async fn record_step(&self, run_id: &str, step: &StepRecord) -> Result<(), LedgerError> {
        insert_step(&self.pool, run_id, step)
            .await
            .map_err(self.db("record step"))
    }

    /// Records a service deployment or rollback.
    pub async fn record_deployment(&self, d: &DeploymentRecord) -> Result<(), LedgerError> {
        let position: i64 = sqlx::query("SELECT COUNT(*) FROM deployments WHERE run_id = $1")
            .bind(&d.run_id)
            .fetch_one(&self.pool)
            .await
            .map_err(self.db("record deployment"))?
            .try_get(0)
            .map_err(self.db("record deployment"))?;
        sqlx::query(
            "INSERT INTO deployments (run_id, position, target, service, from_image, to_image, revision, kind, verdict) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&d.run_id)
        .bind(position)
        .bind(&d.target)
        .bind(&d.service)
        .bind(d.from_image.as_deref())
        .bind(&d.to_image)
        .bind(&d.revision)
        .bind(&d.kind)
        .bind(&d.verdict)
        .execute(&self.pool)
        .await
        .map_err(self.db("record deployment"))?;
        if d.verdict == DeploymentVerdict::Healthy.as_str() {
            // It runs now: the dashboard's overview reads this instead of every deployment.
            sqlx::query(
                "INSERT INTO live_releases (app, environment, target, service, image, run_id, kind, since_ms) \
                 SELECT app, environment, $1, $2, $3, id, $4, $5 FROM runs WHERE id = $6 \
                 ON CONFLICT (app, environment, target, service) DO UPDATE SET image = excluded.image, \
                 run_id = excluded.run_id, kind = excluded.kind, since_ms = excluded.since_ms",
            )
            .bind(&d.target)
            .bind(&d.service)
            .bind(&d.to_image)
            .bind(&d.kind)
            .bind(now_ms())
            .bind(&d.run_id)
            .execute(&self.pool)
            .await
            .map_err(self.db("record what runs now"))?;
        }
        Ok(())
    }

    /// Records how run `run_id`'s release reached users (`rolling`, `bluegreen`, `canary`).
    pub async fn record_strategy(&self, run_id: &str, strategy: &str) -> Result<(), LedgerError> {
        sqlx::query("UPDATE runs SET strategy = $1 WHERE id = $2")
            .bind(strategy)
            .bind(run_id)
            .execute(&self.pool)
            .await
            .map_err(self.db("record the strategy"))?;
        Ok(())
    }

    /// Records the end of a run (once: a finished run is left as it is) and counts it in
    /// the delivery rollup, in one transaction. `Ok(None)`: this call finished it;
    /// `Ok(Some(outcome))`: it had already been finished (by another process that recovered
    /// its lock as stale), with that outcome, which stands.
    pub async fn finish_run(
        &self,
        run_id: &str,
        outcome: &str,
        finished_ms: i64,
        summary_path: Option<&str>,
    ) -> Result<Option<String>, LedgerError> {
        let mut tx = self.pool.begin().await.map_err(self.db("finish run"))?;
        let finished = sqlx::query(
            "UPDATE runs SET outcome = $1, finished_ms = $2, summary_path = $3 WHERE id = $4 AND finished_ms IS NULL",
        )
        .bind(outcome)
        .bind(finished_ms)
        .bind(summary_path)
        .bind(run_id)
        .execute(&mut *tx)
        .await
        .map_err(self.db("finish run"))?
        .rows_affected()
            == 1;
        let recorded = if finished {
            self.roll_up(&mut tx, run_id).await?;
            None
        } else {
            sqlx::query("SELECT outcome FROM runs WHERE id = $1")
                .bind(run_id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(self.db("finish run"))?
                .map(|row| row.try_get::<Option<String>, _>(0))
                .transpose()
                .map_err(self.db("finish run"))?
                .flatten()
        };
        tx.commit().await.map_err(self.db("finish run"))?;
        Ok(recorded)
    }

    /// Records a run that ended before it held the deploy lock (it timed out waiting, or was
    /// interrupted), finished at once with its steps, in one transaction: no other run can
    /// take it for a dead one meanwhile.
    pub async fn record_run_without_lock(
        &self,
        run: &NewRun,
        steps: &[StepRecord],
        outcome: &str,
        finished_ms: i64,
    ) -> Result<(), LedgerError> {
        let mut tx = self.pool.begin().await.map_err(self.db("record run"))?;
        insert_run(&mut *tx, run, Some((finished_ms, outcome)))
            .await
            .map_err(self.db("record run"))?;
        for step in steps {
            insert_step(&mut *tx, &run.id, step)
                .await
                .map_err(self.db("record run"))?;
        }
        self.roll_up(&mut tx, &run.id).await?;
        tx.commit().await.map_err(self.db("record run"))?;
        Ok(())
    }

    /// The newest runs first, optionally of one app.
    pub async fn runs(&self, app: Option<&str>, limit: i64) -> Result<Vec<RunRecord>, LedgerError> {
        let rows = sqlx::query(
            "SELECT id, app, environment, image_tag, owner, host, started_ms, finished_ms, outcome, summary_path, strategy \
             FROM runs WHERE ($1 = '' OR app = $1) ORDER BY started_ms DESC, id DESC LIMIT $2",
        )
        .bind(app.unwrap_or(""))
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(self.db("list runs"))?;
        rows.iter()
            .map(|r| run_from_row(r).map_err(self.db("read run")))
            .collect()
    }

    /// The last finished run (by start) of each environment of `app`, sorted by environment:
    /// what the monitor's issues and metrics call the last deploy.
    pub async fn last_finished_runs(&self, app: &str) -> Result<Vec<RunRecord>, LedgerError> {
        let rows = sqlx::query(
            "SELECT id, app, environment, image_tag, owner, host, started_ms, finished_ms, outcome, summary_path, strategy \
             FROM runs r WHERE app = $1 AND finished_ms IS NOT NULL AND started_ms = (\
             SELECT MAX(started_ms) FROM runs n WHERE n.app = r.app AND n.environment = r.environment \
             AND n.finished_ms IS NOT NULL) ORDER BY environment, id DESC",
        )
        .bind(app)
        .fetch_all(&self.pool)
        .await
        .map_err(self.db("list last runs"))?;
        let mut runs: Vec<RunRecord> = Vec::new();
        for row in &rows {
            let run = run_from_row(row).map_err(self.db("read run"))?;
            // Two runs that started in the same millisecond: the first (highest id) wins, as
            // in `runs`.
            if runs
                .last()
                .is_none_or(|last| last.environment != run.environment)
            {
                runs.push(run);
            }
        }
        Ok(runs)
    }

    /// Releases that went live and passed their gate: the newest `limit` succeeded runs of
    /// `app` in `environment`, each with the (service, image) pairs it deployed. The rollback
    /// resolver's "last known good".
    pub async fn good_releases(
        &self,
        app: &str,
        environment: &str,
        limit: i64,
    ) -> Result<Vec<(RunRecord, Vec<(String, String)>)>, LedgerError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT id, app, environment, image_tag, owner, host, started_ms, finished_ms, outcome, summary_path, strategy \
             FROM runs WHERE app = $1 AND environment = $2 AND outcome = {} \
             ORDER BY started_ms DESC, id DESC LIMIT $3",
            words::quoted(Outcome::Succeeded.as_str())
        )))
        .bind(app)
        .bind(environment)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(self.db("list good releases"))?;
        let mut out = Vec::new();
        for row in &rows {
            let run = run_from_row(row).map_err(self.db("read run"))?;
            let images = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT service, to_image FROM deployments WHERE run_id = $1 AND kind = {} AND verdict = {} ORDER BY position",
                words::quoted(DeploymentKind::Deploy.as_str()),
                words::quoted(DeploymentVerdict::Healthy.as_str())
            )))
            .bind(&run.id)
            .fetch_all(&self.pool)
            .await
            .map_err(self.db("list good releases"))?
            .iter()
            .map(|r| {
                Ok((
                    r.try_get::<String, _>(0).map_err(self.db("read deployment"))?,
                    r.try_get::<String, _>(1).map_err(self.db("read deployment"))?,
                ))
            })
            .collect::<Result<Vec<_>, LedgerError>>()?;
            out.push((run, images));
        }
        Ok(out)
    }

    /// The most recent verdict on `image` for each target of `app` in `environment` that
    /// deployed it (or rolled back to it), newest run first. Whether each one passed its gate
    /// is [`GateVerdict::passed`]: the one definition of "verified good". A rollout that was
    /// cancelled before its verdict says nothing about the image and is not counted.
    pub async fn gate_verdicts(
        &self,
        app: &str,
        environment: &str,
        image: &str,
    ) -> Result<Vec<GateVerdict>, LedgerError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT d.target, d.run_id, d.kind, d.verdict, r.outcome FROM deployments d \
             JOIN runs r ON r.id = d.run_id \
             WHERE r.app = $1 AND r.environment = $2 AND d.to_image = $3 AND d.verdict <> {} \
             ORDER BY r.started_ms DESC, d.run_id DESC, d.position DESC",
            words::quoted(DeploymentVerdict::Cancelled.as_str())
        )))
        .bind(app)
        .bind(environment)
        .bind(image)
        .fetch_all(&self.pool)
        .await
        .map_err(self.db("read gate verdicts"))?;
        let mut latest: Vec<GateVerdict> = Vec::new();
        for row in &rows {
            let target: String = row.try_get(0).map_err(self.db("read gate verdicts"))?;
            if latest.iter().any(|v| v.target == target) {
                continue;
            }
            latest.push(GateVerdict {
                target,
                image: image.to_owned(),
                run_id: row.try_get(1).map_err(self.db("read gate verdicts"))?,
                kind: row.try_get(2).map_err(self.db("read gate verdicts"))?,
                verdict: row.try_get(3).map_err(self.db("read gate verdicts"))?,
                outcome: row.try_get(4).map_err(self.db("read gate verdicts"))?,
            });
        }
        Ok(latest)
    }

    /// Why deploying `image_tag` (committed at `commit_ms`, when known) to `app` in
    /// `environment` would put an older release over the live one, or `None`. The live release
    /// is the newest `succeeded` run. It is newer when both commit times are known and its is
    /// later, or else when `image_tag` went live in an earlier run that the live one replaced.
    pub async fn newer_live_release(
        &self,
        app: &str,
        environment: &str,
        image_tag: &str,
        commit_ms: Option<i64>,
    ) -> Result<Option<String>, LedgerError> {
        let live = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT id, image_tag, started_ms, commit_ms FROM runs WHERE app = $1 AND environment = $2 \
             AND outcome = {} ORDER BY started_ms DESC, id DESC LIMIT 1",
            words::quoted(Outcome::Succeeded.as_str())
        )))
        .bind(app)
        .bind(environment)
        .fetch_optional(&self.pool)
        .await
        .map_err(self.db("read the live release"))?;
        let Some(live) = live else {
            return Ok(None);
        };
        let live_id: String = live.try_get(0).map_err(self.db("read the live release"))?;
        let live_tag: String = live.try_get(1).map_err(self.db("read the live release"))?;
        let live_started: i64 = live.try_get(2).map_err(self.db("read the live release"))?;
        let live_commit: Option<i64> = live.try_get(3).map_err(self.db("read the live release"))?;
        if live_tag == image_tag {
            return Ok(None);
        }
        if let (Some(ours), Some(theirs)) = (commit_ms, live_commit) {
            return Ok((theirs > ours).then(|| {
                format!(
                    "the live release {live_tag} (run {live_id}) was committed {} s after it",
                    (theirs - ours) / 1000
                )
            }));
        }
        let earlier = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT id FROM runs WHERE app = $1 AND environment = $2 AND image_tag = $3 \
             AND outcome = {} AND started_ms < $4 ORDER BY started_ms DESC LIMIT 1",
            words::quoted(Outcome::Succeeded.as_str())
        )))
        .bind(app)
        .bind(environment)
        .bind(image_tag)
        .bind(live_started)
        .fetch_optional(&self.pool)
        .await
        .map_err(self.db("read the live release"))?;
        match earlier {
            Some(row) => {
                let run: String = row.try_get(0).map_err(self.db("read the live release"))?;
                Ok(Some(format!(
                    "it went live in run {run}, and the live release {live_tag} (run {live_id}) replaced it since"
                )))
            }
            None => Ok(None),
        }
    }

    /// Queues a notification for delivery.
    pub async fn enqueue(&self, message: &OutboxMessage, now_ms: i64) -> Result<(), LedgerError> {
        sqlx::query(
            "INSERT INTO outbox (id, run_id, channel, payload, created_ms, attempts, next_attempt_ms) VALUES ($1, $2, $3, $4, $5, 0, $5)",
        )
        .bind(&message.id)
        .bind(&message.run_id)
        .bind(&message.channel)
        .bind(&message.payload)
        .bind(now_ms)
        .execute(&self.pool)
        .await
        .map_err(self.db("queue a notification"))?;
        Ok(())
    }

    /// Claims up to `limit` undelivered messages that are due, for `lease_ms`: one claiming
    /// `UPDATE` whose subquery skips rows other claimers hold (`FOR UPDATE SKIP LOCKED` on
    /// Postgres, the single writer on SQLite), so a message is claimed by one worker at a time;
    /// a claim that is never settled expires so another worker can retry it.
    pub async fn claim_due(
        &self,
        now_ms: i64,
        limit: i64,
        lease_ms: i64,
    ) -> Result<Vec<OutboxItem>, LedgerError> {
        let sql = format!(
            "UPDATE outbox SET claimed_until_ms = $1 WHERE id IN (\
             SELECT id FROM outbox WHERE delivered_ms IS NULL AND next_attempt_ms <= $2 \
             AND (claimed_until_ms IS NULL OR claimed_until_ms < $2) \
             ORDER BY created_ms, id LIMIT $3{}) \
             RETURNING id, run_id, channel, payload, attempts, created_ms",
            self.skip_locked()
        );
        // Built from constants: the only variable part is the backend's locking clause.
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(now_ms + lease_ms)
            .bind(now_ms)
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(self.db("claim due notifications"))?;
        let mut claimed = rows
            .iter()
            .map(|row| {
                Ok((
                    row.try_get::<i64, _>(5)
                        .map_err(self.db("read notification"))?,
                    OutboxItem {
                        id: row.try_get(0).map_err(self.db("read notification"))?,
                        run_id: row.try_get(1).map_err(self.db("read notification"))?,
                        channel: row.try_get(2).map_err(self.db("read notification"))?,
                        payload: row.try_get(3).map_err(self.db("read notification"))?,
                        attempts: row.try_get(4).map_err(self.db("read notification"))?,
                    },
                ))
            })
            .collect::<Result<Vec<_>, LedgerError>>()?;
        // RETURNING has no order: deliver oldest first.
        claimed.sort_by(|a, b| (a.0, &a.1.id).cmp(&(b.0, &b.1.id)));
        Ok(claimed.into_iter().map(|(_, item)| item).collect())
    }

    /// Marks a claimed message delivered.
    pub async fn delivered(&self, id: &str, now_ms: i64) -> Result<(), LedgerError> {
        sqlx::query("UPDATE outbox SET delivered_ms = $1, attempts = attempts + 1, claimed_until_ms = NULL, last_error = NULL WHERE id = $2")
            .bind(now_ms)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(self.db("mark a notification delivered"))?;
        Ok(())
    }

    /// Records a failed attempt and when to try again.
    pub async fn delivery_failed(
        &self,
        id: &str,
        error: &str,
        next_attempt_ms: i64,
    ) -> Result<(), LedgerError> {
        sqlx::query("UPDATE outbox SET attempts = attempts + 1, next_attempt_ms = $1, claimed_until_ms = NULL, last_error = $2 WHERE id = $3")
            .bind(next_attempt_ms)
            .bind(error)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(self.db("record a failed delivery"))?;
        Ok(())
    }

    /// Messages not delivered yet: (id, channel, attempts, last error), oldest first.
    pub async fn undelivered(
        &self,
    ) -> Result<Vec<(String, String, i64, Option<String>)>, LedgerError> {
        sqlx::query("SELECT id, channel, attempts, last_error FROM outbox WHERE delivered_ms IS NULL ORDER BY created_ms, id")
            .fetch_all(&self.pool)
            .await
            .map_err(self.db("list undelivered notifications"))?
            .iter()
            .map(|r| {
                Ok((
                    r.try_get(0).map_err(self.db("read notification"))?,
                    r.try_get(1).map_err(self.db("read notification"))?,
                    r.try_get(2).map_err(self.db("read notification"))?,
                    r.try_get(3).map_err(self.db("read notification"))?,
                ))
            })
            .collect()
    }

    /// One run with its steps and deployments.
    pub async fn run(
        &self,
        id: &str,
    ) -> Result<Option<(RunRecord, Vec<StepRecord>, Vec<DeploymentRecord>)>, LedgerError> {
        let Some(row) = sqlx::query(
            "SELECT id, app, environment, image_tag, owner, host, started_ms, finished_ms, outcome, summary_path, strategy FROM runs WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(self.db("show run"))?
        else {
            return Ok(None);
        };
        let run = run_from_row(&row).map_err(self.db("read run"))?;
        let steps = sqlx::query("SELECT seq, name, started_ms, finished_ms, outcome, detail FROM steps WHERE run_id = $1 ORDER BY seq")
            .bind(id)
            .fetch_all(&self.pool)
            .await
            .map_err(self.db("show run"))?
            .iter()
            .map(|r| {
                Ok(StepRecord {
                    seq: r.try_get(0).map_err(self.db("read step"))?,
                    name: r.try_get(1).map_err(self.db("read step"))?,
                    started_ms: r.try_get(2).map_err(self.db("read step"))?,
                    finished_ms: r.try_get(3).map_err(self.db("read step"))?,
                    outcome: r.try_get(4).map_err(self.db("read step"))?,
                    detail: r.try_get(5).map_err(self.db("read step"))?,
                })
            })
            .collect::<Result<Vec<_>, LedgerError>>()?;
        let deployments = sqlx::query(
            "SELECT run_id, target, service, from_image, to_image, revision, kind, verdict FROM deployments WHERE run_id = $1 ORDER BY position",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await
        .map_err(self.db("show run"))?
        .iter()
        .map(|r| deployment_from_row(r).map_err(self.db("read deployment")))
        .collect::<Result<Vec<_>, LedgerError>>()?;
        Ok(Some((run, steps, deployments)))
    }

    /// Marks runs that never finished and no longer hold their lock as `aborted` (their
    /// process died: kill -9, a lost runner). Returns their ids.
    pub async fn abandon_dead_runs(
        &self,
        app: &str,
        environment: &str,
        now_ms: i64,
    ) -> Result<Vec<String>, LedgerError> {
        let rows = sqlx::query(
            "SELECT id FROM runs WHERE app = $1 AND environment = $2 AND finished_ms IS NULL \
             AND id NOT IN (SELECT run_id FROM locks WHERE app = $1 AND environment = $2)",
        )
        .bind(app)
        .bind(environment)
        .fetch_all(&self.pool)
        .await
        .map_err(self.db("recover runs"))?;
        let mut ids = Vec::new();
        for row in rows {
            let id: String = row.try_get(0).map_err(self.db("recover runs"))?;
            self.finish_run(&id, Outcome::Aborted.as_str(), now_ms, None)
                .await?;
            ids.push(id);
        }
        Ok(ids)
    }
}

fn run_from_row(r: &sqlx::any::AnyRow) -> Result<RunRecord, sqlx::Error> {
    Ok(RunRecord {
        id: r.try_get(0)?,
        app: r.try_get(1)?,
        environment: r.try_get(2)?,
        image_tag: r.try_get(3)?,
        owner: r.try_get(4)?,
        host: r.try_get(5)?,
        started_ms: r.try_get(6)?,
        finished_ms: r.try_get(7)?,
        outcome: r.try_get(8)?,
        summary_path: r.try_get(9)?,
        strategy: r.try_get(10)?,
    })
}

fn deployment_from_row(r: &sqlx::any::AnyRow) -> Result<DeploymentRecord, sqlx::Error> {
    Ok(DeploymentRecord {
        run_id: r.try_get(0)?,
        target: r.try_get(1)?,
        service: r.try_get(2)?,
        from_image: r.try_get(3)?,
        to_image: r.try_get(4)?,
        revision: r.try_get(5)?,
        kind: r.try_get(6)?,
        verdict: r.try_get(7)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_is_named_without_its_password() {
        assert_eq!(
            database_name("postgresql://app:s3cret@db.internal/ledger"),
            "Postgres db.internal/ledger"
        );
        assert_eq!(database_name("sqlite::memory:"), "SQLite in memory");
        assert_eq!(
            database_name("mysql://root:pw@db/x"),
            "`mysql://root:[redacted]@db/x`"
        );
    }
}

/// The README's examples, compiled (and run) as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
