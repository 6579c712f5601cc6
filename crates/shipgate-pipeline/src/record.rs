//! The seam between the pipeline and the ledger: what a run needs recorded, as a trait that
//! `shipgate_ledger::Ledger` implements and the pipeline's unit tests mock.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use shipgate_core::Outcome;

use crate::Strategy;
use shipgate_ledger::{
    DeploymentRecord, Ledger, LedgerError, LockRequest, LockWait, NewRun, StepRecord,
};
use shipgate_rollback::GateRecord;
use tokio_util::sync::CancellationToken;

/// Where waiting for the deploy lock reports. Any `Fn(&LockWait)` closure is one.
pub trait LockProgress: Send + Sync {
    /// Reports that the run still waits.
    fn report(&self, wait: &LockWait);
}

impl<F: Fn(&LockWait) + Send + Sync> LockProgress for F {
    fn report(&self, wait: &LockWait) {
        self(wait);
    }
}

/// What a run records, and where: the deploy lock, the run with its steps and deployments,
/// the release order, and the gate verdicts behind "verified good". `Ledger` (SQLite or
/// Postgres) is the implementation; the methods are `Ledger`'s of the same name.
// mockall needs the explicit lifetimes, and repeats the progress sink's parentheses, which
// the compiler then calls unnecessary.
#[cfg_attr(any(test, feature = "mock"), mockall::automock, allow(unused_parens))]
#[async_trait]
pub trait RunLedger: Send + Sync {
    /// Waits for the deploy lock of the request's app and environment (see
    /// `Ledger::acquire_lock`); returns what it found on the way.
    async fn acquire_lock<'a>(
        &'a self,
        request: &'a LockRequest,
        timeout: Duration,
        progress: &'a (dyn LockProgress + 'a),
        cancel: &'a CancellationToken,
    ) -> Result<Vec<String>, LedgerError>;

    /// Records runs whose process died without finishing as aborted; returns their ids.
    async fn abandon_dead_runs<'a>(
        &'a self,
        app: &'a str,
        environment: &'a str,
        now_ms: i64,
    ) -> Result<Vec<String>, LedgerError>;

    /// Records a run's start.
    async fn start_run<'a>(&'a self, run: &'a NewRun) -> Result<(), LedgerError>;

    /// Records when the deployed commit was made.
    async fn record_commit_time<'a>(
        &'a self,
        run_id: &'a str,
        commit_ms: i64,
    ) -> Result<(), LedgerError>;

    /// Extends the lock; `false` when another run holds it now.
    async fn renew_lock<'a>(
        &'a self,
        app: &'a str,
        environment: &'a str,
        run_id: &'a str,
        ttl: Duration,
    ) -> Result<bool, LedgerError>;

    /// Records a run's end and how its release reached users; `Some(outcome)` when another
    /// run had recorded it already.
    async fn finish_run<'a>(
        &'a self,
        run_id: &'a str,
        outcome: Outcome,
        strategy: Strategy,
        finished_ms: i64,
    ) -> Result<Option<String>, LedgerError>;

    /// Stores the run's summary (redacted JSON) for the dashboard.
    async fn record_summary<'a>(
        &'a self,
        run_id: &'a str,
        summary: &'a str,
    ) -> Result<(), LedgerError>;

    /// Releases the lock if this run holds it.
    async fn release_lock<'a>(
        &'a self,
        app: &'a str,
        environment: &'a str,
        run_id: &'a str,
    ) -> Result<bool, LedgerError>;

    /// Records one step.
    async fn record_step<'a>(
        &'a self,
        run_id: &'a str,
        step: &'a StepRecord,
    ) -> Result<(), LedgerError>;

    /// Records one deployment (or rollback) of one service on one target.
    async fn record_deployment<'a>(
        &'a self,
        record: &'a DeploymentRecord,
    ) -> Result<(), LedgerError>;

    /// Records, in one go, a run that ended before it held the lock.
    async fn record_run_without_lock<'a>(
        &'a self,
        run: &'a NewRun,
        steps: &'a [StepRecord],
        outcome: Outcome,
        finished_ms: i64,
    ) -> Result<(), LedgerError>;

    /// Why the release is older than the live one, if it is.
    async fn newer_live_release<'a>(
        &'a self,
        app: &'a str,
        environment: &'a str,
        image_tag: &'a str,
        commit_ms: Option<i64>,
    ) -> Result<Option<String>, LedgerError>;

    /// The gate verdicts of an app and environment, for the rollback's choice.
    fn gate_record(&self, app: &str, environment: &str) -> Box<dyn GateRecord>;

    /// A handle of its own, for work that outlives the run's borrow (the lock heartbeat).
    fn handle(&self) -> Arc<dyn RunLedger>;
}

#[async_trait]
impl RunLedger for Ledger {
    async fn acquire_lock<'a>(
        &'a self,
        request: &'a LockRequest,
        timeout: Duration,
        progress: &'a (dyn LockProgress + 'a),
        cancel: &'a CancellationToken,
    ) -> Result<Vec<String>, LedgerError> {
        let report = |wait: &LockWait| progress.report(wait);
        Ledger::acquire_lock(self, request, timeout, &report, cancel).await
    }

    async fn abandon_dead_runs<'a>(
        &'a self,
        app: &'a str,
        environment: &'a str,
        now_ms: i64,
    ) -> Result<Vec<String>, LedgerError> {
        Ledger::abandon_dead_runs(self, app, environment, now_ms).await
    }

    async fn start_run<'a>(&'a self, run: &'a NewRun) -> Result<(), LedgerError> {
        Ledger::start_run(self, run).await
    }

    async fn record_commit_time<'a>(
        &'a self,
        run_id: &'a str,
        commit_ms: i64,
    ) -> Result<(), LedgerError> {
        Ledger::record_commit_time(self, run_id, commit_ms).await
    }

    async fn renew_lock<'a>(
        &'a self,
        app: &'a str,
        environment: &'a str,
        run_id: &'a str,
        ttl: Duration,
    ) -> Result<bool, LedgerError> {
        Ledger::renew_lock(self, app, environment, run_id, ttl).await
    }

    async fn finish_run<'a>(
        &'a self,
        run_id: &'a str,
        outcome: Outcome,
        strategy: Strategy,
        finished_ms: i64,
    ) -> Result<Option<String>, LedgerError> {
        let recorded =
            Ledger::finish_run(self, run_id, outcome.as_str(), finished_ms, None).await?;
        Ledger::record_strategy(self, run_id, strategy.word()).await?;
        Ok(recorded)
    }

    async fn record_summary<'a>(
        &'a self,
        run_id: &'a str,
        summary: &'a str,
    ) -> Result<(), LedgerError> {
        Ledger::record_summary(self, run_id, summary).await
    }

    async fn release_lock<'a>(
        &'a self,
        app: &'a str,
        environment: &'a str,
        run_id: &'a str,
    ) -> Result<bool, LedgerError> {
        Ledger::release_lock(self, app, environment, run_id).await
    }

    async fn record_step<'a>(
        &'a self,
        run_id: &'a str,
        step: &'a StepRecord,
    ) -> Result<(), LedgerError> {
        Ledger::record_step(self, run_id, step).await
    }

    async fn record_deployment<'a>(
        &'a self,
        record: &'a DeploymentRecord,
    ) -> Result<(), LedgerError> {
        Ledger::record_deployment(self, record).await
    }

    async fn record_run_without_lock<'a>(
        &'a self,
        run: &'a NewRun,
        steps: &'a [StepRecord],
        outcome: Outcome,
        finished_ms: i64,
    ) -> Result<(), LedgerError> {
        Ledger::record_run_without_lock(self, run, steps, outcome.as_str(), finished_ms).await
    }

    async fn newer_live_release<'a>(
        &'a self,
        app: &'a str,
        environment: &'a str,
        image_tag: &'a str,
        commit_ms: Option<i64>,
    ) -> Result<Option<String>, LedgerError> {
        Ledger::newer_live_release(self, app, environment, image_tag, commit_ms).await
    }

    fn gate_record(&self, app: &str, environment: &str) -> Box<dyn GateRecord> {
        Box::new(shipgate_rollback::LedgerVerdicts {
            ledger: self.clone(),
            app: app.to_owned(),
            environment: environment.to_owned(),
        })
    }

    fn handle(&self) -> Arc<dyn RunLedger> {
        Arc::new(self.clone())
    }
}
