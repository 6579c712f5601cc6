//! The monitor itself: claims due targets from the ledger, checks them with the smoke engine,
//! moves each target's alert state, and acts on transitions (a de-duplicated GitHub issue,
//! notifications through the ledger's outbox). Several replicas may share one Postgres
//! ledger: each due target is claimed by one of them (see the ledger's `monitor_claim_due`).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use shipgate_core::{MonitorNotice, NotificationEvent, Redactor};
use shipgate_github::{GithubClient, GithubError};
use shipgate_ledger::{
    Ledger, LedgerError, MonitorEvent, MonitorRecord, MonitorTargetRow, RunRecord, now_ms,
};
use shipgate_notify::{Notification, Notifier};
use shipgate_smoke::{CheckOutcome, SmokeReport, SmokeRunner, Spec};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::alert::{self, Action, AlertState, Thresholds};
use crate::metrics::Metrics;
use crate::schedule::Schedule;

/// A target to watch.
#[derive(Debug, Clone)]
pub struct WatchTarget {
    /// Its configured name.
    pub name: String,
    /// The environment it watches.
    pub environment: String,
    /// When it is checked.
    pub schedule: Schedule,
    /// What a check runs (a health URL is a one-check spec).
    pub spec: Spec,
    /// Results in a row that open and resolve an alert.
    pub thresholds: Thresholds,
    /// Title of the alert's GitHub issue.
    pub issue_title: String,
    /// Its labels (the first one is used to find an open issue to reuse).
    pub issue_labels: Vec<String>,
    /// At most one "still failing" comment per this period.
    pub comment_every: Duration,
}

/// Where alerts open issues.
#[derive(Debug, Clone)]
pub struct IssueTracker {
    /// The client (with a token that may create issues).
    pub client: GithubClient,
    /// `OWNER/NAME`.
    pub repository: String,
}

/// What a provider says about an environment, for an alert's issue.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inspection {
    /// `service = image (revision)` per service running now.
    pub running: Vec<String>,
    /// Recent log lines or events.
    pub logs: Vec<String>,
}

/// A source of [`Inspection`]s (the deploy targets' providers).
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait::async_trait]
pub trait Inspect: Send + Sync {
    /// What runs in `environment` and its recent logs; errors become lines of the result.
    async fn inspect(&self, environment: &str) -> Inspection;
}

/// How the monitor runs.
#[derive(Debug, Clone)]
pub struct MonitorOptions {
    /// The app whose targets this monitor watches.
    pub app: String,
    /// This replica's name in claims (`host:pid`).
    pub replica: String,
    /// How long a claim lasts; a check gets half of it, the rest is for the issue and the
    /// write-back. A dead replica's targets come back after this.
    pub lease: Duration,
    /// Checks run at once.
    pub concurrency: usize,
    /// How often the long-running loop looks for due targets.
    pub poll: Duration,
    /// How often it delivers the outbox and refreshes the state metrics.
    pub housekeeping: Duration,
    /// How often the long-running loop reports a [`MonitorEventKind::Summary`] of the checks
    /// since the last one (passing checks are otherwise not reported one by one).
    pub summary_every: Duration,
    /// How long the check latency rollups (the dashboard's health page) are kept.
    pub latency_retention: Duration,
}

impl MonitorOptions {
    /// Defaults for `app` and `replica`: 2 min lease, 64 checks at once, a 1 s poll, 15 s
    /// housekeeping, a summary every minute, latency rollups kept 30 days.
    pub fn new(app: impl Into<String>, replica: impl Into<String>) -> MonitorOptions {
        MonitorOptions {
            app: app.into(),
            replica: replica.into(),
            lease: Duration::from_secs(120),
            concurrency: 64,
            poll: Duration::from_secs(1),
            housekeeping: Duration::from_secs(15),
            summary_every: Duration::from_secs(60),
            latency_retention: Duration::from_secs(30 * 86_400),
        }
    }
}

/// Monitor errors (the ledger; every other problem is reported as an event and retried).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MonitorError {
    /// The ledger failed.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The task writing checks back has stopped (the runtime is shutting down).
    #[error("the monitor's ledger writer has stopped")]
    RecorderStopped,
}

/// What happened, for the caller to print or log.
#[derive(Debug, Clone, PartialEq)]
pub enum MonitorEventKind {
    /// A target was checked.
    Checked(CheckResult),
    /// An alert was opened (with its issue, when GitHub is configured).
    AlertOpened {
        /// The target.
        target: String,
        /// The issue's URL.
        issue_url: Option<String>,
    },
    /// An open alert was commented on.
    Commented {
        /// The target.
        target: String,
        /// The issue's URL.
        issue_url: String,
    },
    /// An alert was resolved.
    AlertResolved {
        /// The target.
        target: String,
        /// The issue's URL (closed, unless another target still alerts on it).
        issue_url: Option<String>,
    },
    /// Queued notifications were delivered or failed.
    Delivered {
        /// Delivered now.
        delivered: usize,
        /// Failed now (queued for a retry).
        failed: usize,
    },
    /// Something failed and will be retried (GitHub down, a notification not queued).
    Warning(String),
    /// What the long-running loop checked since its last summary (every
    /// [`MonitorOptions::summary_every`]).
    Summary {
        /// Checks finished.
        checks: u64,
        /// Of which failed.
        failed: u64,
        /// The time covered.
        period: Duration,
    },
}

/// Receives [`MonitorEventKind`]s.
pub type EventSink = Arc<dyn Fn(&MonitorEventKind) + Send + Sync>;

/// One check's result.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CheckResult {
    /// `app/environment/name`.
    pub target: String,
    /// Whether every critical check passed.
    pub passed: bool,
    /// The state after the check.
    pub state: AlertState,
    /// The state before it: a check that moved the target is one to log.
    pub previous: AlertState,
    /// What failed (redacted), empty when passed.
    pub failures: Vec<String>,
    /// Wall time of the check, in milliseconds.
    pub duration_ms: f64,
}

/// The monitor.
pub struct Monitor {
    ledger: Ledger,
    options: MonitorOptions,
    targets: HashMap<String, Arc<WatchTarget>>,
    runner: SmokeRunner,
    github: Option<IssueTracker>,
    notifier: Option<Notifier>,
    inspector: Option<Arc<dyn Inspect>>,
    redactor: Redactor,
    metrics: Metrics,
    events: EventSink,
    heartbeat: std::sync::atomic::AtomicI64,
    /// Checks and failures since the last summary.
    tally: (AtomicU64, AtomicU64),
    /// Writes checks back to the ledger, those that finish together in one transaction.
    recorder: Recorder,
}

/// Group commit of check write-backs: a task takes every write-back waiting and commits them
/// in one transaction (at 10,000 targets every 15 s, one commit per check was most of the
/// monitor's system time).
struct Recorder {
    queue: tokio::sync::mpsc::UnboundedSender<PendingWrite>,
}

struct PendingWrite {
    id: String,
    record: MonitorRecord,
    event: Option<MonitorEvent>,
    done: tokio::sync::oneshot::Sender<Result<bool, LedgerError>>,
}

/// The most write-backs in one transaction.
const MAX_GROUP_COMMIT: usize = 256;

impl Recorder {
    /// Starts the writing task; it ends when the recorder is dropped.
    fn start(ledger: Ledger, claimer: String) -> Recorder {
        let (queue, mut waiting) = tokio::sync::mpsc::unbounded_channel::<PendingWrite>();
        tokio::spawn(async move {
            while let Some(first) = waiting.recv().await {
                let mut batch = vec![first];
                while batch.len() < MAX_GROUP_COMMIT {
                    match waiting.try_recv() {
                        Ok(next) => batch.push(next),
                        Err(_) => break,
                    }
                }
                let writes: Vec<_> = batch
                    .iter()
                    .map(|w| (w.id.as_str(), &w.record, w.event.as_ref()))
                    .collect();
                let outcome = ledger.monitor_record_batch(&claimer, &writes).await;
                drop(writes);
                match outcome {
                    Ok(written) => {
                        for (write, written) in batch.into_iter().zip(written) {
                            let _ = write.done.send(Ok(written));
                        }
                    }
                    // Each on its own, so each gets its own answer.
                    Err(_) => {
                        for write in batch {
                            let outcome = ledger
                                .monitor_record(
                                    &write.id,
                                    &claimer,
                                    &write.record,
                                    write.event.as_ref(),
                                )
                                .await;
                            let _ = write.done.send(outcome);
                        }
                    }
                }
            }
        });
        Recorder { queue }
    }

    /// Writes one check back; `Ok(false)` when the claim was lost (see
    /// [`Ledger::monitor_record`]).
    async fn record(
        &self,
        id: String,
        record: MonitorRecord,
        event: Option<MonitorEvent>,
    ) -> Result<bool, MonitorError> {
        let (done, answer) = tokio::sync::oneshot::channel();
        let lost = || MonitorError::RecorderStopped;
        self.queue
            .send(PendingWrite {
                id,
                record,
                event,
                done,
            })
            .map_err(|_| lost())?;
        Ok(answer.await.map_err(|_| lost())??)
    }
}

impl std::fmt::Debug for Monitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Monitor")
            .field("options", &self.options)
            .field("targets", &self.targets.len())
            .finish_non_exhaustive()
    }
}

/// What [`Monitor::new`] needs besides the ledger and targets.
pub struct MonitorParts {
    /// Runs the checks.
    pub runner: SmokeRunner,
    /// Opens issues, when configured.
    pub github: Option<IssueTracker>,
    /// Slack and webhooks, when configured.
    pub notifier: Option<Notifier>,
    /// Providers for the issue's "deployed" and "logs" sections.
    pub inspector: Option<Arc<dyn Inspect>>,
    /// Masks secret values in issue bodies and details.
    pub redactor: Redactor,
    /// Told what happens.
    pub events: EventSink,
}

impl Monitor {
    /// Registers `targets` in the ledger (new ones due at once, known ones keep their state,
    /// the app's others retired) and returns the monitor.
    pub async fn new(
        ledger: Ledger,
        options: MonitorOptions,
        targets: Vec<WatchTarget>,
        parts: MonitorParts,
    ) -> Result<Arc<Monitor>, MonitorError> {
        let names: Vec<(String, String)> = targets
            .iter()
            .map(|t| (t.environment.clone(), t.name.clone()))
            .collect();
        let ids = ledger.monitor_register(&options.app, &names).await?;
        let targets: HashMap<String, Arc<WatchTarget>> = ids
            .into_iter()
            .zip(targets.into_iter().map(Arc::new))
            .collect();
        let metrics = Metrics::new(&options.app);
        let recorder = Recorder::start(ledger.clone(), options.replica.clone());
        Ok(Arc::new(Monitor {
            ledger,
            options,
            targets,
            runner: parts.runner,
            github: parts.github,
            notifier: parts.notifier,
            inspector: parts.inspector,
            redactor: parts.redactor,
            metrics,
            events: parts.events,
            heartbeat: std::sync::atomic::AtomicI64::new(now_ms()),
            tally: (AtomicU64::new(0), AtomicU64::new(0)),
            recorder,
        }))
    }

    /// The Prometheus metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// When the loop last went round (unix milliseconds), for `/healthz`.
    pub fn heartbeat_ms(&self) -> i64 {
        self.heartbeat.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Runs every target that is due now, once, and returns their results (targets another
    /// replica holds are left to it). For `--once`.
    pub async fn run_due(self: &Arc<Self>) -> Result<Vec<CheckResult>, MonitorError> {
        self.run_due_at(now_ms()).await
    }

    /// [`Monitor::run_due`] as if the clock read `now` (unix milliseconds): schedules,
    /// streak timestamps and comment periods follow `now`, so a test or a replay can walk an
    /// alert through hours in seconds. The checks themselves run for real.
    pub async fn run_due_at(self: &Arc<Self>, now: i64) -> Result<Vec<CheckResult>, MonitorError> {
        let mut results = Vec::new();
        loop {
            let claimed = self.claim(now, self.options.concurrency).await?;
            if claimed.is_empty() {
                break;
            }
            let mut set = JoinSet::new();
            for row in claimed {
                let me = Arc::clone(self);
                set.spawn(async move { me.check(row, now).await });
            }
            while let Some(done) = set.join_next().await {
                if let Ok(Some(result)) = done {
                    results.push(result?);
                }
            }
        }
        self.housekeeping().await;
        results.sort_by(|a, b| a.target.cmp(&b.target));
        Ok(results)
    }

    /// Runs until `cancel` fires: claims due targets as slots free up, delivers the outbox and
    /// refreshes metrics every `housekeeping`, and reports a summary every `summary_every` and
    /// when it stops. On cancellation it claims nothing more and
    /// waits for the checks in flight (each bounded by half the lease).
    pub async fn run(self: &Arc<Self>, cancel: &CancellationToken) -> Result<(), MonitorError> {
        let mut in_flight = JoinSet::new();
        let mut next_housekeeping = Instant::now();
        let mut last_summary = Instant::now();
        // Claims are batched: one every `poll`, and between polls only while the last claim
        // came back full (more are due) and a quarter of the slots are free. Claiming after
        // every finished check made the claim query as frequent as the checks.
        let mut next_claim = Instant::now();
        let mut more_due = false;
        let claim_batch = (self.options.concurrency / 4).max(1);
        while !cancel.is_cancelled() {
            self.heartbeat
                .store(now_ms(), std::sync::atomic::Ordering::Relaxed);
            while let Some(done) = in_flight.try_join_next() {
                self.settle(done);
            }
            let free = self.options.concurrency.saturating_sub(in_flight.len());
            let now = Instant::now();
            if free > 0 && (now >= next_claim || (more_due && free >= claim_batch)) {
                if now >= next_claim {
                    next_claim = now + self.options.poll;
                }
                match self.claim(now_ms(), free).await {
                    Ok(claimed) => {
                        more_due = claimed.len() == free;
                        for row in claimed {
                            let me = Arc::clone(self);
                            in_flight.spawn(async move { me.check(row, now_ms()).await });
                        }
                    }
                    Err(err) => (self.events)(&MonitorEventKind::Warning(format!(
                        "cannot claim due checks: {err}; retrying"
                    ))),
                }
            }
            if Instant::now() >= next_housekeeping {
                self.housekeeping().await;
                next_housekeeping = Instant::now() + self.options.housekeeping;
            }
            if last_summary.elapsed() >= self.options.summary_every {
                self.summarise(last_summary);
                last_summary = Instant::now();
            }
            tokio::select! {
                () = cancel.cancelled() => {}
                () = tokio::time::sleep_until(next_claim.into()) => {}
                Some(done) = in_flight.join_next(), if !in_flight.is_empty() => self.settle(done),
            }
        }
        while let Some(done) = in_flight.join_next().await {
            self.settle(done);
        }
        self.summarise(last_summary);
        Ok(())
    }

    /// Reports the checks since `since` and starts counting again.
    fn summarise(&self, since: Instant) {
        (self.events)(&MonitorEventKind::Summary {
            checks: self.tally.0.swap(0, Ordering::Relaxed),
            failed: self.tally.1.swap(0, Ordering::Relaxed),
            period: since.elapsed(),
        });
    }

    fn settle(
        &self,
        done: Result<Option<Result<CheckResult, MonitorError>>, tokio::task::JoinError>,
    ) {
        match done {
            Ok(Some(Err(err))) => (self.events)(&MonitorEventKind::Warning(format!(
                "a check could not be recorded: {err}; it runs again when its claim expires"
            ))),
            Err(err) => (self.events)(&MonitorEventKind::Warning(format!(
                "a check task failed: {err}"
            ))),
            Ok(_) => {}
        }
    }

    async fn claim(&self, now: i64, limit: usize) -> Result<Vec<MonitorTargetRow>, MonitorError> {
        Ok(self
            .ledger
            .monitor_claim_due(
                &self.options.app,
                now,
                i64::try_from(limit).unwrap_or(i64::MAX),
                millis(self.options.lease),
                &self.options.replica,
            )
            .await?)
    }

    /// Delivers due notifications and refreshes the state metrics from the ledger.
    async fn housekeeping(&self) {
        if let Some(notifier) = &self.notifier {
            match notifier.deliver_due(&self.ledger, 50).await {
                Ok(report) if report.delivered.is_empty() && report.failed.is_empty() => {}
                Ok(report) => (self.events)(&MonitorEventKind::Delivered {
                    delivered: report.delivered.len(),
                    failed: report.failed.len(),
                }),
                Err(err) => (self.events)(&MonitorEventKind::Warning(format!(
                    "notifications not delivered: {err}"
                ))),
            }
        }
        if let Err(err) = self.metrics.refresh(&self.ledger).await {
            (self.events)(&MonitorEventKind::Warning(format!(
                "metrics not refreshed: {err}"
            )));
        }
        let retention =
            i64::try_from(self.options.latency_retention.as_millis()).unwrap_or(i64::MAX);
        if let Err(err) = self
            .ledger
            .monitor_prune_latency(now_ms().saturating_sub(retention))
            .await
        {
            (self.events)(&MonitorEventKind::Warning(format!(
                "old check latencies not pruned: {err}"
            )));
        }
    }

    /// Checks one claimed target, moves its state, acts, writes back. `None` when the target
    /// is not in this replica's configuration (released for a replica that knows it).
    async fn check(
        self: Arc<Self>,
        row: MonitorTargetRow,
        now: i64,
    ) -> Option<Result<CheckResult, MonitorError>> {
        let Some(target) = self.targets.get(&row.id).cloned() else {
            let _ = self
                .ledger
                .monitor_release(&row.id, &self.options.replica)
                .await;
            return None;
        };
        Some(self.check_target(&target, row, now).await)
    }

    async fn check_target(
        &self,
        target: &WatchTarget,
        row: MonitorTargetRow,
        checked_ms: i64,
    ) -> Result<CheckResult, MonitorError> {
        let started = Instant::now();
        let budget = self.options.lease / 2;
        let cancel = CancellationToken::new();
        let mut runner = self.runner.clone();
        let report = tokio::time::timeout(budget, runner.run(&target.spec, &cancel)).await;
        let elapsed = started.elapsed();
        let failures = match &report {
            Ok(Ok(report)) if report.passed => Vec::new(),
            Ok(Ok(report)) => failures(report),
            Ok(Err(err)) => vec![err.to_string()],
            Err(_) => {
                cancel.cancel();
                vec![format!(
                    "the check did not finish within {}",
                    humantime::format_duration(budget)
                )]
            }
        };
        let failures: Vec<String> = failures
            .iter()
            .map(|f| self.redactor.redact(f).into_owned())
            .collect();
        let passed = failures.is_empty();
        self.metrics
            .observe_check(&row.id, &target.environment, passed, elapsed);

        let before: AlertState = row.state.parse().unwrap_or(AlertState::Healthy);
        let step = alert::step(
            before,
            u32::try_from(row.streak).unwrap_or(u32::MAX),
            passed,
            target.thresholds,
        );
        let detail = if passed {
            "passed".to_owned()
        } else {
            failures.join("; ")
        };
        let mut record = MonitorRecord {
            state: step.state.as_str().to_owned(),
            streak: i64::from(step.streak),
            next_due_ms: target.schedule.next_after_spread(checked_ms, &row.id),
            checked_ms,
            passed,
            detail: detail.clone(),
            latency_ms: i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX),
            failing_since_ms: match step.state {
                AlertState::Healthy => None,
                _ if passed => row.failing_since_ms,
                _ => row.failing_since_ms.or(Some(checked_ms)),
            },
            alert_opened_ms: row.alert_opened_ms,
            issue_number: row.issue_number,
            issue_url: row.issue_url.clone(),
            last_comment_ms: row.last_comment_ms,
        };
        match step.action {
            Some(Action::Open) => {
                record.alert_opened_ms = Some(checked_ms);
                self.open_alert(target, &row, &mut record, &failures).await;
                self.notify(target, &row.id, MonitorNotice::Alerting, &failures, &record)
                    .await;
            }
            Some(Action::StillFailing) if record.issue_number.is_none() => {
                self.open_alert(target, &row, &mut record, &failures).await;
            }
            Some(Action::StillFailing) => self.comment(target, &row, &mut record, &failures).await,
            Some(Action::Resolve) => {
                self.resolve(&row, &mut record).await;
                self.notify(target, &row.id, MonitorNotice::Recovered, &[], &record)
                    .await;
                record.alert_opened_ms = None;
            }
            // A close that failed earlier is retried while healthy.
            None if step.state == AlertState::Healthy && record.issue_number.is_some() => {
                self.resolve(&row, &mut record).await;
            }
            None => {}
        }
        let event = (step.state != before).then(|| MonitorEvent {
            target_id: row.id.clone(),
            at_ms: checked_ms,
            from_state: before.as_str().to_owned(),
            to_state: step.state.as_str().to_owned(),
            detail: detail.clone(),
        });
        self.recorder.record(row.id.clone(), record, event).await?;
        let result = CheckResult {
            target: row.id.clone(),
            passed,
            state: step.state,
            previous: before,
            failures,
            duration_ms: elapsed.as_secs_f64() * 1000.0,
        };
        self.tally.0.fetch_add(1, Ordering::Relaxed);
        if !passed {
            self.tally.1.fetch_add(1, Ordering::Relaxed);
        }
        (self.events)(&MonitorEventKind::Checked(result.clone()));
        Ok(result)
    }

    /// Opens the alert's issue: reuses the open issue with the same title and first label
    /// (de-duplication across restarts, replicas and hand-made issues), else creates one.
    /// On failure the record keeps no issue and the next failing check tries again.
    async fn open_alert(
        &self,
        target: &WatchTarget,
        row: &MonitorTargetRow,
        record: &mut MonitorRecord,
        failures: &[String],
    ) {
        let Some(github) = &self.github else {
            (self.events)(&MonitorEventKind::AlertOpened {
                target: row.id.clone(),
                issue_url: None,
            });
            return;
        };
        let body = self.issue_body(target, row, record, failures).await;
        match self.find_or_create(github, target, &body).await {
            Ok((number, url, reused)) => {
                record.issue_number = i64::try_from(number).ok();
                record.issue_url = Some(url.clone());
                record.last_comment_ms = Some(record.checked_ms);
                if reused {
                    // The issue exists: the report goes in as a comment instead of a new issue.
                    if let Err(err) = github
                        .client
                        .comment(&github.repository, number, &body, deadline())
                        .await
                    {
                        self.warn_github("comment on the reused alert issue", &err);
                    }
                }
                (self.events)(&MonitorEventKind::AlertOpened {
                    target: row.id.clone(),
                    issue_url: Some(url),
                });
            }
            Err(err) => self.warn_github("open the alert issue", &err),
        }
    }

    async fn find_or_create(
        &self,
        github: &IssueTracker,
        target: &WatchTarget,
        body: &str,
    ) -> Result<(u64, String, bool), GithubError> {
        if let Some(label) = target.issue_labels.first()
            && let Some(issue) = github
                .client
                .find_open_issue(&github.repository, label, &target.issue_title, deadline())
                .await?
        {
            return Ok((issue.number, issue.html_url, true));
        }
        let created = github
            .client
            .create_issue(
                &github.repository,
                &target.issue_title,
                body,
                &target.issue_labels,
                deadline(),
            )
            .await?;
        if !created.dropped_labels.is_empty() {
            (self.events)(&MonitorEventKind::Warning(format!(
                "GitHub dropped the labels {} from issue #{} (the token needs push access to set labels); \
                 shipgate still finds this alert's issue by its number in the ledger",
                created.dropped_labels.join(", "),
                created.issue.number
            )));
        }
        Ok((created.issue.number, created.issue.html_url, false))
    }

    /// At most one comment per `comment_every` while the alert stays open.
    async fn comment(
        &self,
        target: &WatchTarget,
        row: &MonitorTargetRow,
        record: &mut MonitorRecord,
        failures: &[String],
    ) {
        let (Some(github), Some(number), Some(url)) = (
            &self.github,
            record.issue_number.and_then(|n| u64::try_from(n).ok()),
            record.issue_url.clone(),
        ) else {
            return;
        };
        let last = record.last_comment_ms.unwrap_or(0);
        if record.checked_ms - last < millis(target.comment_every) {
            return;
        }
        let since = record.failing_since_ms.map_or_else(String::new, |ms| {
            format!(" (failing since {})", rfc3339(ms))
        });
        let body = format!(
            "Still failing at {}{since}, {} check(s) in a row:\n\n{}",
            rfc3339(record.checked_ms),
            record.streak,
            bullet_list(failures)
        );
        match github
            .client
            .comment(
                &github.repository,
                number,
                &self.redactor.redact(&body),
                deadline(),
            )
            .await
        {
            Ok(_) => {
                record.last_comment_ms = Some(record.checked_ms);
                (self.events)(&MonitorEventKind::Commented {
                    target: row.id.clone(),
                    issue_url: url,
                });
            }
            Err(err) => self.warn_github("comment on the alert issue", &err),
        }
    }

    /// Comments and closes the issue, unless another target of the app still alerts on the
    /// same issue (shared title); then it only comments. A failed close keeps the issue
    /// number so the next (healthy) check retries it.
    async fn resolve(&self, row: &MonitorTargetRow, record: &mut MonitorRecord) {
        let issue_url = record.issue_url.clone();
        let (Some(github), Some(number)) = (
            &self.github,
            record.issue_number.and_then(|n| u64::try_from(n).ok()),
        ) else {
            (self.events)(&MonitorEventKind::AlertResolved {
                target: row.id.clone(),
                issue_url,
            });
            return;
        };
        let shared = match self.ledger.monitor_targets(&self.options.app).await {
            Ok(rows) => rows.iter().any(|other| {
                other.id != row.id
                    && other.issue_number == record.issue_number
                    && other
                        .state
                        .parse::<AlertState>()
                        .is_ok_and(AlertState::alert_open)
            }),
            Err(_) => false,
        };
        let opened = row.alert_opened_ms.map_or_else(String::new, |ms| {
            format!(" The alert was opened at {}.", rfc3339(ms))
        });
        let body = format!(
            "Recovered: `{}` passed {} check(s) in a row at {}.{opened}{}",
            row.id,
            record.streak.max(1),
            rfc3339(record.checked_ms),
            if shared {
                " Another target still alerts on this issue, so it stays open."
            } else {
                " Closing."
            }
        );
        let outcome = async {
            github
                .client
                .comment(&github.repository, number, &body, deadline())
                .await?;
            if !shared {
                github
                    .client
                    .close_issue(&github.repository, number, deadline())
                    .await?;
            }
            Ok::<(), GithubError>(())
        }
        .await;
        match outcome {
            Ok(()) => {
                record.issue_number = None;
                record.issue_url = None;
                record.last_comment_ms = None;
                (self.events)(&MonitorEventKind::AlertResolved {
                    target: row.id.clone(),
                    issue_url,
                });
            }
            Err(err) => self.warn_github("close the alert issue", &err),
        }
    }

    async fn notify(
        &self,
        target: &WatchTarget,
        id: &str,
        outcome: MonitorNotice,
        failures: &[String],
        record: &MonitorRecord,
    ) {
        let Some(notifier) = &self.notifier else {
            return;
        };
        let last = self.last_run(&target.environment).await;
        let message = if outcome == MonitorNotice::Alerting {
            format!(
                "{} is failing: {} check(s) in a row",
                target.name, record.streak
            )
        } else {
            format!("{} recovered", target.name)
        };
        let notification = Notification {
            schema_version: 1,
            event: NotificationEvent::Monitor.as_str().into(),
            run_id: format!("monitor:{id}:{}", record.checked_ms),
            app: self.options.app.clone(),
            environment: target.environment.clone(),
            image_tag: last.map_or_else(|| "unknown".to_owned(), |run| run.image_tag),
            outcome: outcome.as_str().into(),
            exit_code: u8::from(outcome == MonitorNotice::Alerting),
            message,
            rollback_reasons: failures.to_vec(),
            run_url: record.issue_url.clone(),
            strategy: None,
            steps: Vec::new(),
        };
        if let Err(err) = notifier.enqueue(&self.ledger, &notification).await {
            (self.events)(&MonitorEventKind::Warning(format!(
                "the {outcome} notification was not queued: {err}"
            )));
        }
    }

    async fn last_run(&self, environment: &str) -> Option<RunRecord> {
        self.ledger
            .last_finished_runs(&self.options.app)
            .await
            .ok()?
            .into_iter()
            .find(|run| run.environment == environment)
    }

    /// The issue: failing checks, timestamps, the deployed image and last deploy from the
    /// ledger, what the provider runs and its recent logs.
    async fn issue_body(
        &self,
        target: &WatchTarget,
        row: &MonitorTargetRow,
        record: &MonitorRecord,
        failures: &[String],
    ) -> String {
        use std::fmt::Write as _;
        let mut body = String::new();
        let _ = writeln!(
            body,
            "**{}** ({}) failed {} health check(s) in a row.\n",
            target.name, target.environment, record.streak
        );
        let _ = writeln!(
            body,
            "- First failure: {}\n- Alert opened: {}\n- Checked against: {}\n",
            record
                .failing_since_ms
                .map_or_else(|| "unknown".into(), rfc3339),
            rfc3339(record.checked_ms),
            target.spec.base_url()
        );
        let _ = writeln!(body, "### Failing checks\n\n{}\n", bullet_list(failures));
        let _ = writeln!(body, "### Deployed\n");
        match self.last_run(&target.environment).await {
            Some(run) => {
                let _ = writeln!(
                    body,
                    "- Last deploy: run `{}`, image tag `{}`, {} at {}",
                    run.id,
                    run.image_tag,
                    run.outcome.as_deref().unwrap_or("unfinished"),
                    run.finished_ms.map_or_else(|| "unknown".into(), rfc3339)
                );
            }
            None => {
                let _ = writeln!(body, "- Last deploy: none recorded in the ledger");
            }
        }
        if let Ok(good) = self
            .ledger
            .good_releases(&self.options.app, &target.environment, 1)
            .await
            && let Some((run, images)) = good.first()
        {
            for (service, image) in images {
                let _ = writeln!(
                    body,
                    "- Last good release (run `{}`): {service} = `{image}`",
                    run.id
                );
            }
        }
        if let Some(inspector) = &self.inspector {
            let inspection = inspector.inspect(&target.environment).await;
            for line in &inspection.running {
                let _ = writeln!(body, "- Running now: {line}");
            }
            if !inspection.logs.is_empty() {
                let _ = writeln!(
                    body,
                    "\n### Recent provider logs\n\n```\n{}\n```",
                    inspection.logs.join("\n")
                );
            }
        }
        let _ = writeln!(
            body,
            "\n_Opened by `shipgate monitor` ({}). While the alert is open it comments at most every {}; \
             it comments and closes this issue after {} passing check(s) in a row._\n\n<!-- shipgate-monitor:{} -->",
            self.options.replica,
            humantime::format_duration(target.comment_every),
            target.thresholds.resolve_after,
            row.id
        );
        self.redactor.redact(&body).into_owned()
    }

    fn warn_github(&self, what: &str, err: &GithubError) {
        (self.events)(&MonitorEventKind::Warning(format!(
            "could not {what} on GitHub: {}; retried at the next check",
            self.redactor.redact(&err.to_string())
        )));
    }
}

/// The failing checks of a report, one line each: `GET /healthz → 503: why`.
fn failures(report: &SmokeReport) -> Vec<String> {
    let lines: Vec<String> = report
        .checks
        .iter()
        .filter(|c| c.outcome != CheckOutcome::Passed && c.critical)
        .map(|c| {
            let status = c.status.map_or_else(String::new, |s| format!(" → {s}"));
            let why = c.failure.as_deref().unwrap_or("failed");
            let body = c.body_excerpt.as_deref().map_or_else(String::new, |b| {
                format!(" (body: {})", shipgate_core::quote_outside(b.trim()))
            });
            format!("{} {}{status}: {why}{body}", c.method, c.path)
        })
        .collect();
    if lines.is_empty() {
        vec!["no check passed".to_owned()]
    } else {
        lines
    }
}

fn bullet_list(lines: &[String]) -> String {
    lines
        .iter()
        .map(|l| format!("- {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn rfc3339(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms).map_or_else(
        || ms.to_string(),
        |t| t.to_rfc3339_opts(SecondsFormat::Secs, true),
    )
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// GitHub calls made while a claim is held get 30 s.
fn deadline() -> Instant {
    Instant::now() + Duration::from_secs(30)
}

/// The spec of a health-URL target: one `GET` named `health` that must answer 2xx within
/// `timeout`, with the smoke engine's redaction, body cap and TLS rules (`http://` refused in
/// a production-like environment unless `allow_insecure`).
pub fn health_check_spec(
    url: &str,
    timeout: Duration,
    allow_insecure: bool,
    production_like: bool,
) -> Result<Spec, shipgate_smoke::SpecError> {
    let invalid = |message: String| shipgate_smoke::SpecError {
        problems: vec![shipgate_smoke::SpecProblem {
            key: "url".into(),
            message,
            hint: "write a full URL like https://api.example.com/health".into(),
        }],
    };
    let parsed = url::Url::parse(url).map_err(|e| invalid(format!("`{url}`: {e}")))?;
    let mut path = parsed.path().to_owned();
    if let Some(query) = parsed.query() {
        path.push('?');
        path.push_str(query);
    }
    let mut check = shipgate_config::SmokeCheck::get(path);
    check.name = "health".into();
    let config = shipgate_config::SmokeConfig {
        enabled: true,
        base_url: Some(parsed.origin().ascii_serialization()),
        timeout: shipgate_core::HumanDuration::new(timeout),
        allow_insecure,
        checks: vec![check],
        ..shipgate_config::SmokeConfig::default()
    };
    shipgate_smoke::compile(
        &config,
        &shipgate_smoke::SpecOptions {
            base_url: None,
            api_key: None,
            production_like,
        },
    )
}
