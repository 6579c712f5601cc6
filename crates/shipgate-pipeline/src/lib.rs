//! The deploy pipeline (DESIGN.md's flow): lock → deploy each target → wait for each verdict →
//! smoke gate → on failure, when enabled, roll back to the newest good revision and smoke it →
//! summary → ledger. One run ends in exactly one [`Outcome`], which is one exit code.
//!
//! The pipeline never prints: it reports progress lines to a callback and returns a
//! [`Summary`] (versioned JSON) that the caller always writes, whatever happened.

mod analysis;
#[cfg(test)]
mod decisions;
mod event;
mod record;
mod staged;
mod summary;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use shipgate_core::{DeploymentKind, DeploymentVerdict, ImageRef, ServiceName, StepResult};
use shipgate_ledger::{DeploymentRecord, LedgerError, LockRequest, NewRun, StepRecord, now_ms};
use shipgate_provider::{DeployRequest, Deployment, MigrationError, Provider, Verdict};
use shipgate_rollback::describe_images;
use shipgate_smoke::{SmokeReport, SmokeRunner, Spec};
use tokio_util::sync::CancellationToken;

#[cfg(any(test, feature = "mock"))]
pub use analysis::MockMetricQuery;
pub use analysis::{Analysis, Canary, MetricError, MetricQuery, PrometheusQuery};
pub use event::{Events, PipelineEvent};
#[cfg(any(test, feature = "mock"))]
pub use record::MockRunLedger;
pub use record::{LockProgress, RunLedger};
pub use summary::{
    CanaryStep, Link, Outcome, RollbackSummary, SCHEMA_VERSION, ServiceSummary, StepMetric,
    StepSummary, StepTraffic, Strategy, Summary, TargetSummary,
};

/// A provider with the name of its target (`local`, `helm`, …).
pub struct Target {
    /// `local`, `helm`, `railway`, `fly`.
    pub name: String,
    /// The adapter.
    pub provider: Box<dyn Provider>,
    /// How long its rollout may take.
    pub timeout: Duration,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("name", &self.name)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// The CI gate run first: the commit's required checks must have passed.
pub struct CiGate {
    /// The GitHub client (token, API URL).
    pub client: shipgate_github::GithubClient,
    /// `OWNER/NAME`.
    pub repository: String,
    /// The full commit SHA.
    pub sha: String,
    /// Required checks, timeout, interval.
    pub spec: shipgate_github::GateSpec,
}

/// A migration run once before any target changes.
pub struct Migration {
    /// Program and arguments.
    pub argv: Vec<String>,
    /// Extra environment (secrets the migration needs).
    pub env: Vec<(String, shipgate_core::Secret)>,
    /// How long it may run.
    pub timeout: Duration,
    /// Runs on the platform instead of `argv` here (a Kubernetes Job).
    pub job: Option<Box<dyn shipgate_provider::MigrationJob>>,
}

/// A check the caller ran before the pipeline (check-env), recorded as the run's first step;
/// a failed one stops the run before anything changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preflight {
    /// The step name (`check-env`).
    pub name: String,
    /// When it started (ms since the epoch).
    pub started_ms: i64,
    /// Whether it passed.
    pub passed: bool,
    /// What it found, in a line.
    pub detail: String,
}

/// Everything a run needs, resolved by the caller.
pub struct Plan {
    /// Unique run id.
    pub run_id: String,
    /// The app.
    pub app: String,
    /// The environment's name.
    pub environment: String,
    /// The tag deployed.
    pub image_tag: String,
    /// Service → image, in deploy order.
    pub images: Vec<(ServiceName, ImageRef)>,
    /// The targets, in order.
    pub targets: Vec<Target>,
    /// The smoke gate, when enabled.
    pub smoke: Option<Spec>,
    /// Checks run before the pipeline, recorded first (a failed one stops the run).
    pub preflight: Vec<Preflight>,
    /// The CI gate, run first (after the lock).
    pub ci_gate: Option<CiGate>,
    /// A migration to run after the lock and before the rollout.
    pub migration: Option<Migration>,
    /// Masks secret values in step details before they reach the ledger or the summary.
    pub redactor: shipgate_core::Redactor,
    /// Roll back automatically when the gate fails.
    pub auto_rollback: bool,
    /// Smoke-test the rolled-back release.
    pub smoke_after_rollback: bool,
    /// Checks that a rollback candidate's images still exist in their registries
    /// (`[rollback] verify_image`); a candidate with a missing image is skipped for the next
    /// older good revision. A registry that cannot answer does not block the rollback.
    pub image_check: Option<Box<dyn shipgate_rollback::ImageCheck>>,
    /// Who runs it (`$GITHUB_ACTOR`, the user).
    pub owner: String,
    /// This host.
    pub host: String,
    /// This process.
    pub pid: i64,
    /// Waiting for the lock, at most.
    pub lock_timeout: Duration,
    /// The lock's time to live without renewal.
    pub lock_ttl: Duration,
    /// When the deployed commit was made (unix milliseconds), if known: the ledger's lead
    /// time for changes, and how releases are ordered.
    pub commit_ms: Option<i64>,
    /// Deploy even when the release is older than the live one (see
    /// `Ledger::newer_live_release`); otherwise such a run ends [`Outcome::Superseded`].
    pub allow_older: bool,
    /// How the release reaches users. `Bluegreen` and `Canary` need every target to be able
    /// to stage ([`Provider::can_stage`]); otherwise the run deploys rolling and says why.
    pub strategy: Strategy,
    /// With [`Strategy::Canary`]: the steps, the pause and the analysis.
    pub canary: Canary,
    /// Links the summary carries (the CI run, the commit, the GitHub deployment).
    pub links: Vec<Link>,
}

impl std::fmt::Debug for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plan")
            .field("run_id", &self.run_id)
            .field("app", &self.app)
            .field("environment", &self.environment)
            .finish_non_exhaustive()
    }
}

/// Recovers what an interrupted run left on `target` (a pending Helm release, orphaned Fly
/// green machines) as a step of its own; `Err`: the run stops, with what to say.
async fn recover(
    rec: &mut Recorder<'_>,
    target: &Target,
    request: &DeployRequest,
) -> Result<(), (Outcome, String)> {
    let step_started = now_ms();
    match target.provider.recover().await {
        Ok(notes) if notes.is_empty() => {}
        Ok(notes) => {
            for note in &notes {
                (rec.events)(&PipelineEvent::Recovered {
                    target: target.name.clone(),
                    note: note.clone(),
                });
            }
            rec.step(
                &format!("recover {}", target.name),
                step_started,
                StepResult::Ok,
                notes.join("; "),
            )
            .await;
        }
        Err(err) => {
            rec.step(
                &format!("recover {}", target.name),
                step_started,
                StepResult::Failed,
                err.to_string(),
            )
            .await;
            let seen = read_back(target).await;
            return Err((
                Outcome::Failed,
                format!(
                    "{}: cannot recover what an interrupted run left: {err}; nothing new was deployed; read back, it runs {}",
                    target.name,
                    describe_live(&seen, request.images.keys())
                ),
            ));
        }
    }
    Ok(())
}

/// Passes a waiting line on when it says something new, or every 10 s when it does not.
struct Throttle<'a> {
    events: Events<'a>,
    last: std::sync::Mutex<(String, Option<Instant>)>,
}

impl<'a> Throttle<'a> {
    fn new(events: Events<'a>) -> Self {
        Throttle {
            events,
            last: std::sync::Mutex::new((String::new(), None)),
        }
    }

    fn report(&self, target: &str, label: &str, p: &shipgate_provider::WaitProgress) {
        let mut last = self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let stale = last
            .1
            .is_none_or(|at| at.elapsed() >= Duration::from_secs(10));
        if last.0 != p.waiting_for || stale {
            (self.events)(&PipelineEvent::Waiting {
                target: target.to_owned(),
                label: label.to_owned(),
                remaining: p.remaining,
                waiting_for: p.waiting_for.clone(),
            });
            *last = (p.waiting_for.clone(), Some(Instant::now()));
        }
    }
}

struct Recorder<'a> {
    redactor: shipgate_core::Redactor,
    /// When the failure that may lead to a rollback was known (the failing smoke report or
    /// verdict): the start of the "time to first rollback action" measure.
    failed_at: Option<Instant>,
    ledger: &'a dyn RunLedger,
    run_id: String,
    summary: Summary,
    events: Events<'a>,
}

impl Recorder<'_> {
    async fn step(&mut self, name: &str, started: i64, outcome: StepResult, detail: String) {
        let detail = self.redactor.redact(&detail).into_owned();
        let finished = now_ms();
        let step = StepRecord {
            seq: i64::try_from(self.summary.steps.len()).unwrap_or(i64::MAX),
            name: name.to_owned(),
            started_ms: started,
            finished_ms: finished,
            outcome: outcome.as_str().to_owned(),
            detail: detail.clone(),
        };
        if let Err(err) = self.ledger.record_step(&self.run_id, &step).await {
            (self.events)(&PipelineEvent::Warning {
                message: err.to_string(),
            });
        }
        self.summary.steps.push(StepSummary {
            name: name.to_owned(),
            outcome: outcome.as_str().to_owned(),
            duration_ms: finished - started,
            detail,
        });
    }

    /// A target's deploy (rolling or staged): its ledger rows and its line in the summary.
    async fn deployed(
        &mut self,
        target: &str,
        from: &BTreeMap<ServiceName, ImageRef>,
        deployment: &Deployment,
        verdict: &Verdict,
    ) {
        self.deployment(
            target,
            DeploymentKind::Deploy,
            from,
            deployment,
            verdict_word(verdict),
        )
        .await;
        self.summary
            .targets
            .push(TargetSummary::new(target, from, deployment, verdict));
    }

    async fn deployment(
        &mut self,
        target: &str,
        kind: DeploymentKind,
        from: &BTreeMap<ServiceName, ImageRef>,
        deployment: &Deployment,
        verdict: DeploymentVerdict,
    ) {
        for (service, image) in &deployment.request.images {
            let record = DeploymentRecord {
                run_id: self.run_id.clone(),
                target: target.to_owned(),
                service: service.to_string(),
                from_image: from.get(service).map(ToString::to_string),
                to_image: image.to_string(),
                revision: deployment.revision.to_string(),
                kind: kind.as_str().to_owned(),
                verdict: verdict.as_str().to_owned(),
            };
            if let Err(err) = self.ledger.record_deployment(&record).await {
                (self.events)(&PipelineEvent::Warning {
                    message: err.to_string(),
                });
            }
        }
    }
}

fn verdict_word(verdict: &Verdict) -> DeploymentVerdict {
    match verdict {
        Verdict::Healthy => DeploymentVerdict::Healthy,
        Verdict::Failed { .. } => DeploymentVerdict::Failed,
        Verdict::TimedOut { .. } => DeploymentVerdict::TimedOut,
        Verdict::Cancelled => DeploymentVerdict::Cancelled,
    }
}

fn verdict_detail(verdict: &Verdict) -> String {
    match verdict {
        Verdict::Healthy => DeploymentVerdict::Healthy.as_str().to_owned(),
        Verdict::Failed { reason, .. } => reason.clone(),
        Verdict::TimedOut { waiting_for, .. } => format!("timed out waiting for {waiting_for}"),
        Verdict::Cancelled => DeploymentVerdict::Cancelled.as_str().to_owned(),
    }
}

/// Errors that stop a run before it starts (nothing was changed).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PipelineError {
    /// The ledger could not be used. (A lock not obtained in time is an outcome,
    /// [`Outcome::LockTimeout`], with a summary and a ledger row.)
    #[error(transparent)]
    Ledger(#[from] shipgate_ledger::LedgerError),
}

/// Runs the pipeline. `Err` only when the ledger cannot be used (nothing was changed); every
/// other ending, a lock not obtained in time included, is a [`Summary`] with its outcome and a
/// ledger row.
pub async fn run(
    plan: &Plan,
    ledger: &dyn RunLedger,
    runner: &mut SmokeRunner,
    events: Events<'_>,
    cancel: &CancellationToken,
) -> Result<Summary, PipelineError> {
    let started = Instant::now();
    let mut summary = Summary::new(plan);
    events(&PipelineEvent::Started {
        run_id: plan.run_id.clone(),
        app: plan.app.clone(),
        image_tag: plan.image_tag.clone(),
        environment: plan.environment.clone(),
        targets: plan.targets.iter().map(|t| t.name.clone()).collect(),
    });

    // Lock: one run per (app, environment); wait with progress.
    let lock_started = now_ms();
    let request = LockRequest {
        app: plan.app.clone(),
        environment: plan.environment.clone(),
        run_id: plan.run_id.clone(),
        owner: plan.owner.clone(),
        host: plan.host.clone(),
        pid: plan.pid,
        reason: format!("deploy {}", plan.image_tag),
        ttl: plan.lock_ttl,
        supersede: true,
    };
    let last_report = std::sync::Mutex::new(Instant::now() - Duration::from_secs(60));
    let lock_progress = |wait: &shipgate_ledger::LockWait| {
        let mut last = last_report
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if last.elapsed() >= Duration::from_secs(10) {
            *last = Instant::now();
            events(&PipelineEvent::LockWaiting {
                app: plan.app.clone(),
                environment: plan.environment.clone(),
                holder_run: wait.holder.run_id.clone(),
                holder_owner: wait.holder.owner.clone(),
                holder_host: wait.holder.host.clone(),
                waited: wait.waited,
            });
        }
    };
    let new_run = NewRun {
        id: plan.run_id.clone(),
        app: plan.app.clone(),
        environment: plan.environment.clone(),
        image_tag: plan.image_tag.clone(),
        owner: plan.owner.clone(),
        host: plan.host.clone(),
        pid: plan.pid,
        started_ms: summary.started_ms,
    };
    let notes = match ledger
        .acquire_lock(&request, plan.lock_timeout, &lock_progress, cancel)
        .await
    {
        Ok(notes) => notes,
        Err(
            err @ (LedgerError::LockTimeout { .. }
            | LedgerError::Cancelled
            | LedgerError::Superseded { .. }),
        ) => {
            let outcome = match err {
                LedgerError::Cancelled => Outcome::Aborted,
                LedgerError::Superseded { .. } => Outcome::Superseded,
                _ => Outcome::LockTimeout,
            };
            return Ok(ended_without_lock(
                plan,
                ledger,
                summary,
                &new_run,
                lock_started,
                outcome,
                &err,
                started,
                events,
            )
            .await);
        }
        Err(err) => return Err(err.into()),
    };
    for note in &notes {
        events(&PipelineEvent::LockNote {
            message: note.clone(),
        });
    }
    for id in ledger
        .abandon_dead_runs(&plan.app, &plan.environment, now_ms())
        .await?
    {
        events(&PipelineEvent::DeadRunAborted { run_id: id });
    }
    ledger.start_run(&new_run).await?;
    if let Some(commit_ms) = plan.commit_ms {
        ledger.record_commit_time(&plan.run_id, commit_ms).await?;
    }
    let mut recorder = Recorder {
        redactor: plan.redactor.clone(),
        failed_at: None,
        ledger,
        run_id: plan.run_id.clone(),
        summary: std::mem::take(&mut summary),
        events,
    };
    let lock_detail = if notes.is_empty() {
        "acquired".to_owned()
    } else {
        notes.join("; ")
    };
    for check in &plan.preflight {
        let outcome = StepResult::from_passed(check.passed);
        recorder
            .step(&check.name, check.started_ms, outcome, check.detail.clone())
            .await;
    }
    recorder
        .step("lock", lock_started, StepResult::Ok, lock_detail)
        .await;

    // Keep the lock alive while the run lasts.
    let heartbeat_stop = CancellationToken::new();
    let lock_lost = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let heartbeat = {
        let (ledger, stop, ttl) = (ledger.handle(), heartbeat_stop.clone(), plan.lock_ttl);
        let lost = lock_lost.clone();
        let (app, environment, run_id) = (
            plan.app.clone(),
            plan.environment.clone(),
            plan.run_id.clone(),
        );
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = tokio::time::sleep((ttl / 3).max(Duration::from_millis(100))) => {}
                    () = stop.cancelled() => return,
                }
                if let Ok(false) = ledger.renew_lock(&app, &environment, &run_id, ttl).await {
                    lost.store(true, std::sync::atomic::Ordering::SeqCst);
                }
            }
        })
    };

    let outcome = deploy_and_gate(plan, &mut recorder, runner, cancel).await;
    recorder.summary.outcome = outcome.0;
    recorder.summary.message = outcome.1;
    recorder.summary.duration_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);

    heartbeat_stop.cancel();
    let _ = heartbeat.await;
    let mut summary = recorder.summary;
    match ledger
        .finish_run(&plan.run_id, summary.outcome, summary.strategy, now_ms())
        .await
    {
        Ok(None) => {}
        // Another run took this one's lock as stale and recorded it: the summary says what
        // the ledger holds, and why.
        Ok(Some(recorded)) => {
            let ours = summary.outcome;
            summary.outcome = Outcome::parse(&recorded).unwrap_or(Outcome::Aborted);
            summary.message = format!(
                "{} (this run ended {}, but another run took its deploy lock as stale meanwhile and recorded it {recorded}: deploys may have overlapped; check the ledger)",
                summary.message,
                ours.as_str()
            );
        }
        Err(err) => events(&PipelineEvent::Warning {
            message: err.to_string(),
        }),
    }
    if lock_lost.load(std::sync::atomic::Ordering::SeqCst) {
        events(&PipelineEvent::Warning {
            message: format!(
                "run {} lost its deploy lock of {}/{} while it worked (renewal found another holder)",
                plan.run_id, plan.app, plan.environment
            ),
        });
    }
    summary.exit_code = summary.outcome.exit_code();
    store_summary(plan, ledger, &summary, events).await;
    if let Err(err) = ledger
        .release_lock(&plan.app, &plan.environment, &plan.run_id)
        .await
    {
        events(&PipelineEvent::Warning {
            message: err.to_string(),
        });
    }
    summary.exit_code = summary.outcome.exit_code();
    Ok(summary)
}

/// A run that ended before it held the lock (timed out waiting, or interrupted): its summary
/// and its ledger row, recorded finished in one transaction; nothing was changed.
#[allow(clippy::too_many_arguments)]
async fn ended_without_lock(
    plan: &Plan,
    ledger: &dyn RunLedger,
    mut summary: Summary,
    run: &NewRun,
    lock_started: i64,
    outcome: Outcome,
    err: &LedgerError,
    started: Instant,
    events: Events<'_>,
) -> Summary {
    let mut steps = Vec::new();
    for check in &plan.preflight {
        steps.push((
            check.name.clone(),
            check.started_ms,
            StepResult::from_passed(check.passed),
            check.detail.clone(),
        ));
    }
    steps.push((
        "lock".to_owned(),
        lock_started,
        StepResult::Failed,
        err.to_string(),
    ));
    let finished = now_ms();
    let mut records = Vec::new();
    for (seq, (name, started_ms, step_outcome, detail)) in steps.into_iter().enumerate() {
        let detail = plan.redactor.redact(&detail).into_owned();
        records.push(StepRecord {
            seq: i64::try_from(seq).unwrap_or(i64::MAX),
            name: name.clone(),
            started_ms,
            finished_ms: finished,
            outcome: step_outcome.as_str().to_owned(),
            detail: detail.clone(),
        });
        summary.steps.push(StepSummary {
            name,
            outcome: step_outcome.as_str().to_owned(),
            duration_ms: finished - started_ms,
            detail,
        });
    }
    summary.outcome = outcome;
    summary.exit_code = outcome.exit_code();
    summary.message = format!("{err}; nothing was deployed");
    summary.duration_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    if let Err(err) = ledger
        .record_run_without_lock(run, &records, outcome, finished)
        .await
    {
        events(&PipelineEvent::Warning {
            message: err.to_string(),
        });
    } else {
        store_summary(plan, ledger, &summary, events).await;
    }
    summary
}

/// Stores the summary as the file says it, for the dashboard's run page (wherever the run
/// ran); a failure is a warning.
async fn store_summary(plan: &Plan, ledger: &dyn RunLedger, summary: &Summary, events: Events<'_>) {
    let Ok(json) = serde_json::to_string(summary) else {
        return;
    };
    if let Err(err) = ledger
        .record_summary(&plan.run_id, &plan.redactor.redact(&json))
        .await
    {
        events(&PipelineEvent::Warning {
            message: err.to_string(),
        });
    }
}

/// Waits for a target's verdict within its timeout, with throttled progress lines
/// (`local: waiting (19 s left): …`); a provider error is a failed verdict.
async fn watch(
    target: &Target,
    deployment: &Deployment,
    label: &str,
    events: Events<'_>,
    cancel: &CancellationToken,
) -> Verdict {
    let throttle = Throttle::new(events);
    let progress = |p: &shipgate_provider::WaitProgress| throttle.report(&target.name, label, p);
    let grace = wait_grace(target.timeout);
    let wait = target.provider.wait(
        deployment,
        Instant::now() + target.timeout,
        &progress,
        cancel,
    );
    // A provider must answer by its deadline; one that does not is a timed-out verdict, not a
    // run that hangs.
    match tokio::time::timeout(target.timeout + grace, wait).await {
        Ok(Ok(verdict)) => verdict,
        Ok(Err(err)) => Verdict::Failed {
            reason: err.to_string(),
            diagnostics: Vec::new(),
        },
        Err(_) => Verdict::TimedOut {
            waiting_for: format!(
                "an answer from {} (none within its {} s timeout and {} s more)",
                target.name,
                target.timeout.as_secs(),
                grace.as_secs()
            ),
            diagnostics: Vec::new(),
        },
    }
}

/// How long past its deadline a provider's wait may take to answer before the pipeline stops
/// waiting for it: a tenth of the timeout, between 1 s and 30 s.
fn wait_grace(timeout: Duration) -> Duration {
    (timeout / 10).clamp(Duration::from_secs(1), Duration::from_secs(30))
}

/// Runs a provider call that is safe to repeat (reading what runs or its history, going back to
/// a revision) again when it fails with a retryable error (an outage, a rate limit): 3 attempts
/// in all, 0.5 s then 1 s apart with jitter. Other errors are returned at once.
async fn retrying<T, F, Fut>(call: F) -> Result<T, shipgate_provider::ProviderError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, shipgate_provider::ProviderError>>,
{
    use backon::Retryable;
    call.retry(
        backon::ExponentialBuilder::new()
            .with_min_delay(Duration::from_millis(500))
            .with_max_delay(Duration::from_secs(1))
            .with_max_times(2)
            .with_jitter(),
    )
    .sleep(tokio::time::sleep)
    .when(shipgate_provider::ProviderError::is_retryable)
    .await
}

/// Deploys every target, gates, rolls back; returns the outcome and its one-line message.
async fn deploy_and_gate(
    plan: &Plan,
    rec: &mut Recorder<'_>,
    runner: &mut SmokeRunner,
    cancel: &CancellationToken,
) -> (Outcome, String) {
    let request = DeployRequest {
        images: plan.images.iter().cloned().collect(),
        description: format!("deploy {} (run {})", plan.image_tag, plan.run_id),
    };
    if let Some(failed) = plan.preflight.iter().find(|c| !c.passed) {
        return (
            Outcome::Failed,
            format!(
                "{} failed: {}; nothing was changed",
                failed.name, failed.detail
            ),
        );
    }
    // Never put an older release over a newer one by accident.
    if !plan.allow_older {
        let started = now_ms();
        match rec
            .ledger
            .newer_live_release(
                &plan.app,
                &plan.environment,
                &plan.image_tag,
                plan.commit_ms,
            )
            .await
        {
            Ok(None) => {}
            Ok(Some(why)) => {
                rec.step("release order", started, StepResult::Failed, why.clone())
                    .await;
                return (
                    Outcome::Superseded,
                    format!(
                        "{} is older than the live release: {why}; nothing was deployed (pass --allow-older to deploy it anyway)",
                        plan.image_tag
                    ),
                );
            }
            Err(err) => (rec.events)(&PipelineEvent::Warning {
                message: format!("the release order could not be checked: {err}"),
            }),
        }
    }
    if let Some(gate) = &plan.ci_gate {
        let started = now_ms();
        let events = rec.events;
        let progress = |line: &str| {
            events(&PipelineEvent::CiGate {
                message: line.to_owned(),
            });
        };
        let outcome = shipgate_github::run_gate(
            &gate.client,
            &gate.repository,
            &gate.sha,
            &gate.spec,
            &progress,
            cancel,
        )
        .await;
        let short = &gate.sha[..gate.sha.len().min(12)];
        let failure = match outcome {
            Ok(shipgate_github::GateOutcome::Passed(names)) => {
                rec.step(
                    "ci-gate",
                    started,
                    StepResult::Ok,
                    format!("{} required check(s) passed for {short}", names.len()),
                )
                .await;
                None
            }
            Ok(shipgate_github::GateOutcome::Failed(failures)) => Some(format!(
                "CI failed for {short}: {}",
                failures
                    .iter()
                    .map(|f| format!("{} ({})", f.name, f.reason))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            Ok(shipgate_github::GateOutcome::TimedOut { waiting, no_checks }) => {
                Some(if no_checks {
                    format!("no CI checks were reported for {short} before the deadline")
                } else {
                    format!(
                        "CI still running for {short} at the deadline: {}",
                        waiting.join("; ")
                    )
                })
            }
            Ok(shipgate_github::GateOutcome::Cancelled) => {
                rec.step(
                    "ci-gate",
                    started,
                    StepResult::Failed,
                    "interrupted".to_owned(),
                )
                .await;
                return (
                    Outcome::Aborted,
                    "interrupted during the CI gate; nothing was deployed".to_owned(),
                );
            }
            Err(err) => Some(format!("the CI gate could not read GitHub: {err}")),
        };
        if let Some(why) = failure {
            rec.step("ci-gate", started, StepResult::Failed, why.clone())
                .await;
            return (Outcome::Failed, format!("{why}; nothing was deployed"));
        }
    }
    if let Some(migration) = &plan.migration {
        let started = now_ms();
        let what = migration
            .job
            .as_ref()
            .map_or_else(|| migration.argv.join(" "), |job| job.describe());
        (rec.events)(&PipelineEvent::Migrating { what: what.clone() });
        match migrate(migration, cancel).await {
            Ok(tail) => rec.step("migrate", started, StepResult::Ok, tail).await,
            Err(err) => {
                let (cancelled, why) = (err.is_interrupted(), err.to_string());
                rec.step("migrate", started, StepResult::Failed, why.clone())
                    .await;
                let message = format!(
                    "the migration failed ({}); nothing was deployed",
                    rec.redactor.redact(&why)
                );
                return (
                    if cancelled {
                        Outcome::Aborted
                    } else {
                        Outcome::Failed
                    },
                    message,
                );
            }
        }
    }
    rec.summary.strategy = Strategy::Rolling;
    if matches!(plan.strategy, Strategy::Bluegreen | Strategy::Canary) {
        let cannot: Vec<&str> = plan
            .targets
            .iter()
            .filter(|t| !t.provider.can_stage())
            .map(|t| t.name.as_str())
            .collect();
        let cannot_split: Vec<&str> = if cannot.is_empty() && plan.strategy == Strategy::Canary {
            plan.targets
                .iter()
                .filter(|t| !t.provider.can_split())
                .map(|t| t.name.as_str())
                .collect()
        } else {
            Vec::new()
        };
        if !cannot_split.is_empty() {
            let note = format!(
                "canary was asked for, but {} cannot split traffic: deployed bluegreen (tested before traffic, then switched at once)",
                cannot_split.join(", ")
            );
            (rec.events)(&PipelineEvent::Warning {
                message: note.clone(),
            });
            rec.summary.strategy_note = Some(note);
            rec.summary.strategy = Strategy::Bluegreen;
            return staged::deploy(plan, Strategy::Bluegreen, rec, runner, &request, cancel).await;
        }
        if cannot.is_empty() {
            rec.summary.strategy = plan.strategy;
            return staged::deploy(plan, plan.strategy, rec, runner, &request, cancel).await;
        }
        let note = format!(
            "{} was asked for, but {} cannot stage a release: deployed rolling",
            plan.strategy.word(),
            cannot.join(", ")
        );
        (rec.events)(&PipelineEvent::Warning {
            message: note.clone(),
        });
        rec.summary.strategy_note = Some(note);
    }
    let mut live: Vec<(usize, Deployment)> = Vec::new();
    for (index, target) in plan.targets.iter().enumerate() {
        let step_started = now_ms();
        let events = rec.events;
        let from: BTreeMap<ServiceName, ImageRef> = match target.provider.current().await {
            Ok(running) => running.into_iter().map(|r| (r.service, r.image)).collect(),
            Err(err) => {
                rec.step(
                    &format!("deploy {}", target.name),
                    step_started,
                    StepResult::Failed,
                    err.to_string(),
                )
                .await;
                return (
                    Outcome::Failed,
                    format!("{}: cannot read what runs: {err}", target.name),
                );
            }
        };
        // What an interrupted run left locked is recovered as a step of its own.
        if let Err(stop) = recover(rec, target, &request).await {
            return stop;
        }
        events(&PipelineEvent::Deploying {
            target: target.name.clone(),
            images: describe_images(&request.images),
        });
        let deployment = match target.provider.deploy(&request).await {
            Ok(deployment) => deployment,
            Err(err) => {
                rec.step(
                    &format!("deploy {}", target.name),
                    step_started,
                    StepResult::Failed,
                    err.to_string(),
                )
                .await;
                return (
                    Outcome::Failed,
                    format!(
                        "{}: deploy refused: {err}; nothing changed there",
                        target.name
                    ),
                );
            }
        };
        let verdict = watch(target, &deployment, "waiting", events, cancel).await;
        rec.deployed(&target.name, &from, &deployment, &verdict)
            .await;
        rec.step(
            &format!("deploy {}", target.name),
            step_started,
            StepResult::from_passed(verdict == Verdict::Healthy),
            verdict_detail(&verdict),
        )
        .await;
        match verdict {
            Verdict::Healthy => events(&PipelineEvent::Healthy {
                target: target.name.clone(),
                revision: deployment.revision.to_string(),
            }),
            Verdict::Cancelled => {
                let seen = read_back(target).await;
                if let Some(summary) = rec.summary.targets.last_mut() {
                    summary.set_read_back(&seen);
                }
                return (
                    Outcome::Aborted,
                    format!(
                        "interrupted while {} rolled out; read back, it runs {}",
                        target.name,
                        describe_live(&seen, deployment.request.images.keys())
                    ),
                );
            }
            other => {
                rec.failed_at = Some(Instant::now());
                // What the failed rollout left behind decides what to say and to do.
                let seen = read_back(target).await;
                if let Some(summary) = rec.summary.targets.last_mut() {
                    summary.set_read_back(&seen);
                }
                // The services this target deployed (a Railway or Fly target has one).
                let services = deployment.request.images.keys();
                let what = describe_live(&seen, services.clone());
                let failure = format!(
                    "{}: the new release did not become healthy ({})",
                    target.name,
                    verdict_detail(&other)
                );
                let untouched = matches!(&seen, Ok(now) if runs_as_before(now, &from, services));
                let message = if untouched {
                    format!(
                        "{failure}; read back, the previous release still serves there ({what})"
                    )
                } else {
                    // The failed release is applied there (or the target cannot say what it
                    // runs): it is rolled back like the targets that took the release.
                    live.push((index, deployment));
                    format!("{failure}; read back, it runs {what}")
                };
                if live.is_empty() {
                    return (Outcome::Failed, message);
                }
                events(&PipelineEvent::TargetFailed {
                    message: message.clone(),
                });
                return decide_after_gate(plan, rec, runner, &live, cancel, message).await;
            }
        }
        live.push((index, deployment));
    }

    let Some(spec) = &plan.smoke else {
        return (
            Outcome::Succeeded,
            format!("{} is live on {}", plan.image_tag, target_names(plan)),
        );
    };
    let smoke_started = now_ms();
    (rec.events)(&PipelineEvent::Smoke {
        checks: spec.len(),
        base_url: spec.base_url().to_string(),
    });
    let report = runner.run(spec, cancel).await;
    rec.failed_at = Some(Instant::now());
    let report = match report {
        Ok(report) => report,
        Err(err) => {
            rec.step("smoke", smoke_started, StepResult::Failed, err.to_string())
                .await;
            return decide_after_gate(
                plan,
                rec,
                runner,
                &live,
                cancel,
                format!("smoke gate could not run: {err}"),
            )
            .await;
        }
    };
    let gate_detail = gate_detail(&report);
    rec.step(
        "smoke",
        smoke_started,
        StepResult::from_passed(report.passed),
        gate_detail,
    )
    .await;
    let passed = report.passed;
    let failing = failing_checks(&report);
    rec.summary.smoke = Some(report);
    if cancel.is_cancelled() {
        return (
            Outcome::Aborted,
            "interrupted during the smoke gate; the new release is live".to_owned(),
        );
    }
    if passed {
        return (
            Outcome::Succeeded,
            format!(
                "{} is live on {} and passed the smoke gate",
                plan.image_tag,
                target_names(plan)
            ),
        );
    }
    decide_after_gate(
        plan,
        rec,
        runner,
        &live,
        cancel,
        format!("smoke gate failed: {failing}"),
    )
    .await
}

async fn decide_after_gate(
    plan: &Plan,
    rec: &mut Recorder<'_>,
    runner: &mut SmokeRunner,
    live: &[(usize, Deployment)],
    cancel: &CancellationToken,
    why: String,
) -> (Outcome, String) {
    if !plan.auto_rollback {
        rec.summary.rollback = Some(RollbackSummary::declined(vec![
            why.clone(),
            "automatic rollback is disabled (ENABLE_AUTO_ROLLBACK / [rollback] auto)".to_owned(),
        ]));
        let names: Vec<&str> = live
            .iter()
            .map(|(index, _)| plan.targets[*index].name.as_str())
            .collect();
        return (
            Outcome::Unhealthy,
            format!(
                "{why}; rollback is disabled, so {} stays applied on {}",
                plan.image_tag,
                names.join(", ")
            ),
        );
    }
    rollback(
        plan,
        rec,
        runner,
        live,
        cancel,
        vec![why, "automatic rollback is enabled".to_owned()],
    )
    .await
}

/// A rollback that cannot proceed: reads back what `target` runs, records the failed step and
/// the decision so far, and says what is live there.
#[allow(clippy::too_many_arguments)]
async fn give_up(
    rec: &mut Recorder<'_>,
    rollback: RollbackSummary,
    reasons: Vec<String>,
    target: &Target,
    services: &BTreeMap<ServiceName, ImageRef>,
    started: i64,
    detail: String,
    why: String,
) -> (Outcome, String) {
    let seen = read_back(target).await;
    rec.step(
        &format!("rollback {}", target.name),
        started,
        StepResult::Failed,
        detail,
    )
    .await;
    rec.summary.rollback = Some(rollback.with_reasons(reasons));
    (
        Outcome::RollbackFailed,
        format!(
            "{}: {why}; read back, it runs {}",
            target.name,
            describe_live(&seen, services.keys())
        ),
    )
}

/// Rolls every target in `live` back to its newest verified-good earlier revision
/// (`shipgate_rollback::choose_revision`), reads back that each runs it, then smokes it.
async fn rollback(
    plan: &Plan,
    rec: &mut Recorder<'_>,
    runner: &mut SmokeRunner,
    live: &[(usize, Deployment)],
    cancel: &CancellationToken,
    mut reasons: Vec<String>,
) -> (Outcome, String) {
    let decided = rec.failed_at.unwrap_or_else(Instant::now);
    let mut rollback = RollbackSummary::declined(Vec::new());
    rollback.performed = true;
    let record = rec.ledger.gate_record(&plan.app, &plan.environment);
    // Last deployed, first rolled back: the targets unwind in the reverse of deploy order.
    for (index, deployment) in live.iter().rev() {
        let target = &plan.targets[*index];
        let current = &deployment.request.images;
        let step_started = now_ms();
        let history = match retrying(|| target.provider.history()).await {
            Ok(history) => history,
            Err(err) => {
                return give_up(
                    rec,
                    rollback,
                    reasons,
                    target,
                    current,
                    step_started,
                    err.to_string(),
                    format!("cannot read history to roll back: {err}"),
                )
                .await;
            }
        };
        let choice = shipgate_rollback::choose_revision(
            shipgate_rollback::rollback_candidates(&history, Some(&deployment.revision), None),
            &target.name,
            Some(record.as_ref()),
            plan.image_check.as_deref(),
        )
        .await;
        reasons.extend(choice.reasons);
        let Some(good) = choice.chosen else {
            return give_up(
                rec,
                rollback,
                reasons,
                target,
                current,
                step_started,
                "no earlier revision is verified good".to_owned(),
                "nothing to roll back to".to_owned(),
            )
            .await;
        };
        if rollback.first_action_ms.is_none() {
            rollback.first_action_ms = Some((decided.elapsed().as_secs_f64() * 1e6).round() / 1e3);
        }
        (rec.events)(&PipelineEvent::RollingBack {
            target: target.name.clone(),
            revision: good.id.to_string(),
        });
        let back = match retrying(|| target.provider.rollback(&good.id)).await {
            Ok(back) => back,
            Err(err) => {
                return give_up(
                    rec,
                    rollback,
                    reasons,
                    target,
                    current,
                    step_started,
                    err.to_string(),
                    format!("rollback refused: {err}"),
                )
                .await;
            }
        };
        let verdict = watch(target, &back, "rollback waiting", rec.events, cancel).await;
        // Read back what runs: a rollback is done when the target runs the chosen revision's
        // images, not when the platform says so.
        let seen = read_back(target).await;
        let restored = verdict == Verdict::Healthy
            && matches!(&seen, Ok(now) if good.images.iter().all(|(s, i)| now.get(s) == Some(i)));
        let what = describe_live(&seen, current.keys());
        rec.deployment(
            &target.name,
            DeploymentKind::Rollback,
            current,
            &back,
            if restored {
                verdict_word(&verdict)
            } else if verdict == Verdict::Healthy {
                DeploymentVerdict::Failed
            } else {
                verdict_word(&verdict)
            },
        )
        .await;
        let mut summary = TargetSummary::new(&target.name, current, &back, &verdict);
        summary.set_read_back(&seen);
        rollback.targets.push(summary);
        let detail = if restored {
            format!("{}; read back: {what}", verdict_detail(&verdict))
        } else if verdict == Verdict::Healthy {
            format!(
                "the platform reported the rollback healthy, but read back it runs {what}, not {}",
                describe_images(&good.images)
            )
        } else {
            format!("{}; read back: {what}", verdict_detail(&verdict))
        };
        rec.step(
            &format!("rollback {}", target.name),
            step_started,
            StepResult::from_passed(restored),
            detail.clone(),
        )
        .await;
        if !restored {
            rec.summary.rollback = Some(rollback.with_reasons(reasons));
            let outcome = if verdict == Verdict::Cancelled {
                Outcome::Aborted
            } else {
                Outcome::RollbackFailed
            };
            return (
                outcome,
                format!(
                    "{}: the rollback to revision {} did not complete ({detail})",
                    target.name, good.id,
                ),
            );
        }
        (rec.events)(&PipelineEvent::RolledBack {
            target: target.name.clone(),
            revision: good.id.to_string(),
            read_back: what.clone(),
        });
    }
    let names: Vec<&str> = live
        .iter()
        .map(|(index, _)| plan.targets[*index].name.as_str())
        .collect();
    let names = names.join(", ");

    if let (Some(spec), true) = (&plan.smoke, plan.smoke_after_rollback) {
        let started = now_ms();
        let report = runner.run(spec, cancel).await;
        let (passed, detail, report) = match report {
            Ok(report) => (report.passed, gate_detail(&report), Some(report)),
            Err(err) => (false, err.to_string(), None),
        };
        rec.step(
            "smoke after rollback",
            started,
            StepResult::from_passed(passed),
            detail,
        )
        .await;
        let failing = report.as_ref().map(failing_checks).unwrap_or_default();
        rollback.smoke = report;
        rec.summary.rollback = Some(rollback.with_reasons(reasons));
        if !passed {
            return (
                Outcome::RollbackFailed,
                format!(
                    "rolled back on {names} (read back), but the previous release fails its smoke too ({failing}): production may be broken"
                ),
            );
        }
        return (
            Outcome::RolledBack,
            format!(
                "{} failed and was rolled back; read back, the previous release runs on {names} and passed its smoke",
                plan.image_tag
            ),
        );
    }
    rec.summary.rollback = Some(rollback.with_reasons(reasons));
    (
        Outcome::RolledBack,
        format!(
            "{} failed and was rolled back; read back, the previous release runs on {names} (not smoke-tested: {})",
            plan.image_tag,
            if plan.smoke.is_some() {
                "smoke after rollback is off"
            } else {
                "there is no smoke gate"
            }
        ),
    )
}

/// What a target runs now, read back from it (service → image), or why it could not say.
pub(crate) type LiveNow = Result<BTreeMap<ServiceName, ImageRef>, String>;

/// Asks `target` what it runs now.
async fn read_back(target: &Target) -> LiveNow {
    retrying(|| target.provider.current())
        .await
        .map(|running| running.into_iter().map(|r| (r.service, r.image)).collect())
        .map_err(|e| e.to_string())
}

/// `api=demo/api:v1, worker=nothing` for `services`, or `an unknown release (cannot read what
/// runs: …)`.
fn describe_live<'a>(seen: &LiveNow, services: impl Iterator<Item = &'a ServiceName>) -> String {
    match seen {
        Ok(now) => services
            .map(|s| {
                format!(
                    "{s}={}",
                    now.get(s)
                        .map_or_else(|| "nothing".to_owned(), ToString::to_string)
                )
            })
            .collect::<Vec<_>>()
            .join(", "),
        Err(err) => format!("an unknown release (cannot read what runs: {err})"),
    }
}

/// Whether each of `services` runs what it ran before the deploy (`from`; nothing when it ran
/// nothing).
fn runs_as_before<'a>(
    now: &BTreeMap<ServiceName, ImageRef>,
    from: &BTreeMap<ServiceName, ImageRef>,
    mut services: impl Iterator<Item = &'a ServiceName>,
) -> bool {
    services.all(|s| now.get(s) == from.get(s))
}

/// Runs the migration: its last output lines on success; on failure (exit status, timeout,
/// cancellation) whether it was cancelled and why, with the last lines.
async fn migrate(
    migration: &Migration,
    cancel: &CancellationToken,
) -> Result<String, MigrationError> {
    if let Some(job) = &migration.job {
        return job.run(migration.timeout, cancel).await;
    }
    let Some((program, args)) = migration.argv.split_first() else {
        return Err(MigrationError::Failed("empty command".to_owned()));
    };
    let mut command = tokio::process::Command::new(program);
    command
        .args(args)
        .envs(migration.env.iter().map(|(k, v)| (k, v.expose())))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let child = command
        .spawn()
        .map_err(|e| MigrationError::Failed(format!("cannot start `{program}`: {e}")))?;
    let pid = child.id();
    let output = child.wait_with_output();
    tokio::pin!(output);
    let tail = |out: &std::process::Output| {
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(5)..].join(" | ");
        shipgate_core::one_line(&shipgate_core::excerpt(&tail, 1000)).into_owned()
    };
    let stop = |why: &str| {
        if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        why.to_owned()
    };
    let stopped = tokio::select! {
        out = &mut output => {
            let out = out.map_err(|e| MigrationError::Failed(e.to_string()))?;
            return if out.status.success() {
                Ok(tail(&out))
            } else {
                Err(MigrationError::Failed(format!("{}: {}", out.status, tail(&out))))
            };
        }
        () = tokio::time::sleep(migration.timeout) => MigrationError::TimedOut(stop(&format!(
            "still running after {} s; stopped",
            migration.timeout.as_secs()
        ))),
        () = cancel.cancelled() => MigrationError::Interrupted(stop("interrupted; stopped")),
    };
    // Give it a moment to stop after SIGTERM; kill_on_drop sends SIGKILL after that.
    let _ = tokio::time::timeout(Duration::from_secs(10), &mut output).await;
    Err(stopped)
}

/// `2/2 checks passed`, or `1/2 checks passed; orders: status 500 (expected 200)`.
fn gate_detail(report: &SmokeReport) -> String {
    let mut detail = format!(
        "{}/{} checks passed",
        report.summary.passed, report.summary.total
    );
    for check in report.checks.iter().filter(|c| c.fails_gate()) {
        detail.push_str(&format!(
            "; {}: {}",
            check.name,
            check.failure.as_deref().unwrap_or("failed")
        ));
    }
    detail
}

fn failing_checks(report: &SmokeReport) -> String {
    let names: Vec<&str> = report
        .checks
        .iter()
        .filter(|c| c.fails_gate())
        .map(|c| c.name.as_str())
        .collect();
    format!(
        "{} critical check(s) failed: {}",
        names.len(),
        names.join(", ")
    )
}

fn target_names(plan: &Plan) -> String {
    plan.targets
        .iter()
        .map(|t| t.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The README's examples, compiled (and run) as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
