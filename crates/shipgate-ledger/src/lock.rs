//! The deploy lock: one run per (app, environment) at a time.
//!
//! A lock row names its run, owner, host, pid, reason and expiry. A second run **waits** (with
//! progress) up to a timeout instead of failing at once. A lock is **stale** when it expired
//! (its holder stopped renewing it) or when its holder ran on this host and that process is
//! gone; a stale lock is taken over and the takeover recorded in `lock_events`. Taking a lock
//! is one `INSERT … ON CONFLICT DO NOTHING`, and a takeover deletes the stale row by its run id,
//! so two waiters can never both win, on SQLite or Postgres.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use sqlx::Row;
use tokio_util::sync::CancellationToken;

use shipgate_core::Outcome;

use crate::{Ledger, LedgerError};

/// Who asks for the lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockRequest {
    /// The app.
    pub app: String,
    /// The environment.
    pub environment: String,
    /// The run that will hold it.
    pub run_id: String,
    /// Who (`$GITHUB_ACTOR`, the user).
    pub owner: String,
    /// This host.
    pub host: String,
    /// This process.
    pub pid: i64,
    /// Why (`deploy 3f2c1a9`).
    pub reason: String,
    /// How long the lock lives without renewal.
    pub ttl: Duration,
    /// Give up ([`LedgerError::Superseded`]) when a newer deploy queues behind this one or
    /// runs and finishes while it waits: what `shipgate deploy` does. Without, wait in turn.
    pub supersede: bool,
}

/// Who holds a lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LockHolder {
    /// The holding run.
    pub run_id: String,
    /// Its owner.
    pub owner: String,
    /// Its host.
    pub host: String,
    /// Its pid.
    pub pid: i64,
    /// Why it holds it.
    pub reason: String,
    /// Since, unix milliseconds.
    pub acquired_ms: i64,
    /// Until, unless renewed, unix milliseconds.
    pub expires_ms: i64,
}

/// A progress event while waiting for the lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockWait {
    /// Who holds it.
    pub holder: LockHolder,
    /// How long we have waited.
    pub waited: Duration,
}

/// Now, in unix milliseconds: the ledger's timestamps.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Whether a process of this host is alive (Linux `/proc`).
fn pid_alive(pid: i64) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

fn ttl_ms(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX / 2)
}

impl Ledger {
    /// Takes the lock of `request.app`/`request.environment`, waiting up to `timeout` while
    /// another run holds it. Returns notes about stale locks taken over. While it waits, the
    /// request stands in the lock queue; it gives up with [`LedgerError::Superseded`] when a
    /// newer deploy queues behind it or runs and finishes meanwhile.
    pub async fn acquire_lock(
        &self,
        request: &LockRequest,
        timeout: Duration,
        progress: &(dyn Fn(&LockWait) + Send + Sync),
        cancel: &CancellationToken,
    ) -> Result<Vec<String>, LedgerError> {
        let mut queued_ms = None;
        let result = self
            .wait_for_lock(request, timeout, progress, cancel, &mut queued_ms)
            .await;
        if queued_ms.is_some() && result.is_err() {
            sqlx::query("DELETE FROM lock_queue WHERE run_id = $1")
                .bind(&request.run_id)
                .execute(self.pool())
                .await
                .map_err(self.db("leave the lock queue"))?;
        }
        // A waiter that took the lock keeps its place in the queue until it releases the
        // lock: an older waiter that polls after this one took the lock still sees that a
        // newer deploy queued behind it (it would otherwise wait for the newer run to end).
        result
    }

    async fn wait_for_lock(
        &self,
        request: &LockRequest,
        timeout: Duration,
        progress: &(dyn Fn(&LockWait) + Send + Sync),
        cancel: &CancellationToken,
        queued_ms: &mut Option<i64>,
    ) -> Result<Vec<String>, LedgerError> {
        let started = Instant::now();
        let mut notes = Vec::new();
        loop {
            let now = now_ms();
            // A newer deploy queued behind this one: give up before taking the lock it frees.
            if let Some(queued) = *queued_ms
                && request.supersede
                && let Some(newer) = self.newer_deploy(request, queued, now).await?
            {
                return Err(newer);
            }
            let inserted = sqlx::query(
                "INSERT INTO locks (app, environment, run_id, owner, host, pid, reason, acquired_ms, expires_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (app, environment) DO NOTHING",
            )
            .bind(&request.app)
            .bind(&request.environment)
            .bind(&request.run_id)
            .bind(&request.owner)
            .bind(&request.host)
            .bind(request.pid)
            .bind(&request.reason)
            .bind(now)
            .bind(now + ttl_ms(request.ttl))
            .execute(self.pool())
            .await
            .map_err(self.db("take lock"))?
            .rows_affected();
            if inserted == 1 {
                self.lock_event(request, "acquired", &request.reason)
                    .await?;
                return Ok(notes);
            }
            let Some(holder) = self.lock_status(&request.app, &request.environment).await? else {
                continue; // released between our insert and our read
            };
            let stale = if holder.expires_ms < now {
                Some(format!(
                    "expired {} s ago",
                    (now - holder.expires_ms) / 1000
                ))
            } else if holder.host == request.host && !pid_alive(holder.pid) {
                Some(format!("its process {} on this host is gone", holder.pid))
            } else {
                None
            };
            if let Some(why) = stale {
                let deleted = sqlx::query(
                    "DELETE FROM locks WHERE app = $1 AND environment = $2 AND run_id = $3",
                )
                .bind(&request.app)
                .bind(&request.environment)
                .bind(&holder.run_id)
                .execute(self.pool())
                .await
                .map_err(self.db("recover lock"))?
                .rows_affected();
                if deleted == 1 {
                    let note = format!(
                        "recovered the lock of run {} ({} on {}, pid {}): {why}",
                        holder.run_id, holder.owner, holder.host, holder.pid
                    );
                    self.lock_event(request, "recovered", &note).await?;
                    notes.push(note);
                }
                continue;
            }
            if queued_ms.is_none() {
                self.join_queue(request, now, timeout).await?;
                *queued_ms = Some(now);
            }
            let waited = started.elapsed();
            if waited >= timeout {
                return Err(LedgerError::LockTimeout {
                    app: request.app.clone(),
                    environment: request.environment.clone(),
                    holder: Box::new(holder),
                    waited_s: waited.as_secs(),
                });
            }
            progress(&LockWait { holder, waited });
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(250).min(timeout - waited)) => {}
                () = cancel.cancelled() => return Err(LedgerError::Cancelled),
            }
        }
    }

    /// The deploys waiting for the lock of `app`/`environment` (run id, reason), oldest
    /// first; entries whose wait is over, and the run that holds the lock (it keeps its
    /// place until it releases the lock), are left out.
    pub async fn lock_waiters(
        &self,
        app: &str,
        environment: &str,
    ) -> Result<Vec<(String, String)>, LedgerError> {
        sqlx::query(
            "SELECT run_id, reason FROM lock_queue WHERE app = $1 AND environment = $2 \
             AND expires_ms > $3 AND run_id NOT IN (SELECT run_id FROM locks WHERE app = $1 AND environment = $2) \
             ORDER BY queued_ms, run_id",
        )
        .bind(app)
        .bind(environment)
        .bind(now_ms())
        .fetch_all(self.pool())
        .await
        .map_err(self.db("read the lock queue"))?
        .iter()
        .map(|row| {
            Ok((
                row.try_get(0).map_err(self.db("read the lock queue"))?,
                row.try_get(1).map_err(self.db("read the lock queue"))?,
            ))
        })
        .collect()
    }

    async fn join_queue(
        &self,
        request: &LockRequest,
        now: i64,
        timeout: Duration,
    ) -> Result<(), LedgerError> {
        sqlx::query(
            "INSERT INTO lock_queue (run_id, app, environment, reason, host, pid, queued_ms, expires_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&request.run_id)
        .bind(&request.app)
        .bind(&request.environment)
        .bind(&request.reason)
        .bind(&request.host)
        .bind(request.pid)
        .bind(now)
        .bind(now + ttl_ms(timeout))
        .execute(self.pool())
        .await
        .map_err(self.db("join the lock queue"))?;
        Ok(())
    }

    /// A newer deploy than `request` (queued at `queued`): one still waiting that queued after
    /// it (its process alive, its wait not over), or a run that started after it queued and
    /// has finished.
    async fn newer_deploy(
        &self,
        request: &LockRequest,
        queued: i64,
        now: i64,
    ) -> Result<Option<LedgerError>, LedgerError> {
        let superseded = |by_run: String, by: String, how| LedgerError::Superseded {
            app: request.app.clone(),
            environment: request.environment.clone(),
            by_run,
            by,
            how,
        };
        let waiting = sqlx::query(
            "SELECT run_id, reason, host, pid FROM lock_queue WHERE app = $1 AND environment = $2 \
             AND run_id <> $3 AND expires_ms > $4 AND (queued_ms > $5 OR (queued_ms = $5 AND run_id > $3)) \
             ORDER BY queued_ms DESC",
        )
        .bind(&request.app)
        .bind(&request.environment)
        .bind(&request.run_id)
        .bind(now)
        .bind(queued)
        .fetch_all(self.pool())
        .await
        .map_err(self.db("read the lock queue"))?;
        for row in &waiting {
            let host: String = row.try_get(2).map_err(self.db("read the lock queue"))?;
            let pid: i64 = row.try_get(3).map_err(self.db("read the lock queue"))?;
            if host == request.host && !pid_alive(pid) {
                continue; // left by a process that is gone
            }
            return Ok(Some(superseded(
                row.try_get(0).map_err(self.db("read the lock queue"))?,
                row.try_get(1).map_err(self.db("read the lock queue"))?,
                "queued behind it",
            )));
        }
        let finished = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT id, image_tag FROM runs WHERE app = $1 AND environment = $2 AND id <> $3 \
             AND started_ms > $4 AND finished_ms IS NOT NULL \
             AND outcome IN ({}) \
             ORDER BY started_ms DESC LIMIT 1",
            crate::words::outcomes(Outcome::is_attempt)
        )))
        .bind(&request.app)
        .bind(&request.environment)
        .bind(&request.run_id)
        .bind(queued)
        .fetch_optional(self.pool())
        .await
        .map_err(self.db("read finished runs"))?;
        match finished {
            Some(row) => {
                let tag: String = row.try_get(1).map_err(self.db("read finished runs"))?;
                Ok(Some(superseded(
                    row.try_get(0).map_err(self.db("read finished runs"))?,
                    format!("deploy {tag}"),
                    "ran and finished",
                )))
            }
            None => Ok(None),
        }
    }

    async fn lock_event(
        &self,
        request: &LockRequest,
        event: &str,
        detail: &str,
    ) -> Result<(), LedgerError> {
        sqlx::query("INSERT INTO lock_events (app, environment, at_ms, event, run_id, detail) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(&request.app)
            .bind(&request.environment)
            .bind(now_ms())
            .bind(event)
            .bind(&request.run_id)
            .bind(detail)
            .execute(self.pool())
            .await
            .map_err(self.db("record lock event"))?;
        Ok(())
    }

    /// Extends the lock held by `run_id`; false when it no longer holds it.
    pub async fn renew_lock(
        &self,
        app: &str,
        environment: &str,
        run_id: &str,
        ttl: Duration,
    ) -> Result<bool, LedgerError> {
        let updated = sqlx::query(
            "UPDATE locks SET expires_ms = $1 WHERE app = $2 AND environment = $3 AND run_id = $4",
        )
        .bind(now_ms() + ttl_ms(ttl))
        .bind(app)
        .bind(environment)
        .bind(run_id)
        .execute(self.pool())
        .await
        .map_err(self.db("renew lock"))?
        .rows_affected();
        Ok(updated == 1)
    }

    /// Releases the lock if `run_id` holds it.
    pub async fn release_lock(
        &self,
        app: &str,
        environment: &str,
        run_id: &str,
    ) -> Result<bool, LedgerError> {
        let deleted =
            sqlx::query("DELETE FROM locks WHERE app = $1 AND environment = $2 AND run_id = $3")
                .bind(app)
                .bind(environment)
                .bind(run_id)
                .execute(self.pool())
                .await
                .map_err(self.db("release lock"))?
                .rows_affected();
        sqlx::query("DELETE FROM lock_queue WHERE run_id = $1")
            .bind(run_id)
            .execute(self.pool())
            .await
            .map_err(self.db("leave the lock queue"))?;
        Ok(deleted == 1)
    }

    /// Who holds the lock, if anyone.
    pub async fn lock_status(
        &self,
        app: &str,
        environment: &str,
    ) -> Result<Option<LockHolder>, LedgerError> {
        let row = sqlx::query(
            "SELECT run_id, owner, host, pid, reason, acquired_ms, expires_ms FROM locks WHERE app = $1 AND environment = $2",
        )
        .bind(app)
        .bind(environment)
        .fetch_optional(self.pool())
        .await
        .map_err(self.db("read lock"))?;
        row.map(|r| {
            Ok(LockHolder {
                run_id: r.try_get(0).map_err(self.db("read lock"))?,
                owner: r.try_get(1).map_err(self.db("read lock"))?,
                host: r.try_get(2).map_err(self.db("read lock"))?,
                pid: r.try_get(3).map_err(self.db("read lock"))?,
                reason: r.try_get(4).map_err(self.db("read lock"))?,
                acquired_ms: r.try_get(5).map_err(self.db("read lock"))?,
                expires_ms: r.try_get(6).map_err(self.db("read lock"))?,
            })
        })
        .transpose()
    }

    /// Removes the lock whoever holds it (`shipgate lock release`); returns the old holder.
    pub async fn force_release(
        &self,
        app: &str,
        environment: &str,
    ) -> Result<Option<LockHolder>, LedgerError> {
        let holder = self.lock_status(app, environment).await?;
        if let Some(holder) = &holder {
            self.release_lock(app, environment, &holder.run_id).await?;
        }
        Ok(holder)
    }
}
