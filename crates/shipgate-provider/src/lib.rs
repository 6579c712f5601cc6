//! The contract between shipgate and a deploy target.
//!
//! A [`Provider`] puts pinned images live for one or more services, says truthfully whether
//! they became healthy, keeps a history of revisions, and rolls back to an earlier one. The
//! pipeline drives every provider the same way:
//!
//! ```text
//! plan → deploy → wait (deadline, progress, cancellation) → [smoke] → rollback(to) → wait
//! ```
//!
//! Shared machinery lives here too: [`wait_until`] (polling with a deadline, backoff, progress
//! and cancellation), [`ProviderError`] with its retry classification, and, behind the
//! `conformance` feature, the suite every adapter runs (`conformance::run`).

#[cfg(feature = "conformance")]
pub mod conformance;
mod traffic;

pub use traffic::{LATENCY_BOUNDS_MS, TrafficCounts, TrafficObservation};

use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;
use shipgate_core::{ImageRef, ServiceName};
use tokio_util::sync::CancellationToken;

/// The images to put live, one per service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeployRequest {
    /// Service → pinned image. Services not named keep what they run.
    pub images: BTreeMap<ServiceName, ImageRef>,
    /// Why (shown in history): `deploy 3f2c1a9`, `rollback to revision 4`.
    pub description: String,
}

/// A revision's identity within its provider (a Helm revision, a Railway deployment id).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct RevisionId(pub String);

impl std::fmt::Display for RevisionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What became of a revision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RevisionStatus {
    /// Being rolled out.
    Pending,
    /// Live now.
    Deployed,
    /// Was live; replaced by a later revision.
    Superseded,
    /// Never became healthy; what was live before stayed or came back.
    Failed,
}

/// One entry of a provider's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Revision {
    /// Its id.
    pub id: RevisionId,
    /// Service → image of this revision.
    pub images: BTreeMap<ServiceName, ImageRef>,
    /// What became of it.
    pub status: RevisionStatus,
    /// When it was created.
    #[serde(with = "unix_seconds")]
    pub created_at: SystemTime,
    /// Why it was made.
    pub description: String,
}

/// What runs now for one service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Running {
    /// The service.
    pub service: ServiceName,
    /// Its image.
    pub image: ImageRef,
    /// The revision it belongs to.
    pub revision: RevisionId,
}

/// A deploy that was started: what `wait` watches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployment {
    /// The revision being rolled out.
    pub revision: RevisionId,
    /// What it puts live.
    pub request: DeployRequest,
}

/// The verdict on a deployment.
///
/// Deliberately exhaustive (not `#[non_exhaustive]`): it is the provider contract, and a new
/// kind of verdict must fail the build of every consumer (the pipeline decides a rollback on
/// each one) instead of falling into a wildcard arm.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", rename_all = "kebab-case")]
pub enum Verdict {
    /// Every service is up and healthy; the revision is live.
    Healthy,
    /// It failed; what was live before is still (or again) live.
    Failed {
        /// Why, in a sentence.
        reason: String,
        /// Pod reasons, exit statuses, last log lines.
        diagnostics: Vec<String>,
    },
    /// The deadline passed before it became healthy.
    TimedOut {
        /// What was still missing.
        waiting_for: String,
        /// Last log lines or events.
        diagnostics: Vec<String>,
    },
    /// Cancelled (SIGINT/SIGTERM); the provider stopped cleanly.
    Cancelled,
}

/// A change a deploy would make.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedChange {
    /// The service.
    pub service: ServiceName,
    /// What runs now, if anything.
    pub from: Option<ImageRef>,
    /// What would run.
    pub to: ImageRef,
}

/// A progress event while waiting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitProgress {
    /// What is being waited for (`api: 1/3 replicas updated`, `api: GET /healthz → 503`).
    pub waiting_for: String,
    /// Time left before the deadline.
    pub remaining: Duration,
}

/// Where progress events go.
pub trait ProgressSink: Send + Sync {
    /// Reports one step of progress.
    fn report(&self, progress: &WaitProgress);
}

/// Any `Fn(&WaitProgress)` closure is a progress sink.
impl<F: Fn(&WaitProgress) + Send + Sync> ProgressSink for F {
    fn report(&self, progress: &WaitProgress) {
        self(progress);
    }
}

/// The cause of a [`ProviderError`], shared so that errors stay cheap to clone.
pub type Cause = std::sync::Arc<dyn std::error::Error + Send + Sync + 'static>;

/// Errors of a provider operation (not a verdict: a deploy that failed its health checks is a
/// `Verdict::Failed`, not an error). Each kind keeps the error that caused it, when there is
/// one ([`std::error::Error::source`]).
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ProviderError {
    /// The configuration or request is unusable (bad chart path, unknown service). Nothing
    /// was changed.
    #[error("{message}")]
    Invalid {
        /// What is wrong, and the fix.
        message: String,
        /// The underlying error.
        #[source]
        source: Option<Cause>,
    },
    /// Credentials were refused (401/403).
    #[error("access denied: {message}")]
    Unauthorized {
        /// Who refused what.
        message: String,
        /// The underlying error.
        #[source]
        source: Option<Cause>,
    },
    /// What was asked for does not exist (404): a revision, a service, a release.
    #[error("not found: {message}")]
    NotFound {
        /// What was not found.
        message: String,
        /// The underlying error.
        #[source]
        source: Option<Cause>,
    },
    /// A temporary failure (5xx, 429, a connection error) that outlasted the retries.
    #[error("temporarily unavailable: {message}")]
    Unavailable {
        /// What failed.
        message: String,
        /// The underlying error.
        #[source]
        source: Option<Cause>,
    },
    /// Anything else the platform answered.
    #[error("{message}")]
    Platform {
        /// What the platform said.
        message: String,
        /// The underlying error.
        #[source]
        source: Option<Cause>,
    },
}

impl ProviderError {
    /// An unusable configuration or request.
    pub fn invalid(message: impl Into<String>) -> ProviderError {
        ProviderError::Invalid {
            message: message.into(),
            source: None,
        }
    }

    /// Refused credentials.
    pub fn unauthorized(message: impl Into<String>) -> ProviderError {
        ProviderError::Unauthorized {
            message: message.into(),
            source: None,
        }
    }

    /// Something that does not exist.
    pub fn not_found(message: impl Into<String>) -> ProviderError {
        ProviderError::NotFound {
            message: message.into(),
            source: None,
        }
    }

    /// A temporary failure.
    pub fn unavailable(message: impl Into<String>) -> ProviderError {
        ProviderError::Unavailable {
            message: message.into(),
            source: None,
        }
    }

    /// Anything else the platform answered.
    pub fn platform(message: impl Into<String>) -> ProviderError {
        ProviderError::Platform {
            message: message.into(),
            source: None,
        }
    }

    /// The same error, keeping `cause` as its source.
    #[must_use]
    pub fn caused_by(
        mut self,
        cause: impl std::error::Error + Send + Sync + 'static,
    ) -> ProviderError {
        let slot = match &mut self {
            ProviderError::Invalid { source, .. }
            | ProviderError::Unauthorized { source, .. }
            | ProviderError::NotFound { source, .. }
            | ProviderError::Unavailable { source, .. }
            | ProviderError::Platform { source, .. } => source,
        };
        *slot = Some(std::sync::Arc::new(cause));
        self
    }

    /// The message, without the kind's prefix.
    pub fn message(&self) -> &str {
        match self {
            ProviderError::Invalid { message, .. }
            | ProviderError::Unauthorized { message, .. }
            | ProviderError::NotFound { message, .. }
            | ProviderError::Unavailable { message, .. }
            | ProviderError::Platform { message, .. } => message,
        }
    }

    /// Classifies an HTTP status from a platform API: 401/403 unauthorised, 404 not found,
    /// 400/409/422 invalid, 408/429/5xx unavailable (retryable), others platform errors.
    pub fn from_status(status: u16, message: impl Into<String>) -> ProviderError {
        match status {
            401 | 403 => ProviderError::unauthorized(message),
            404 => ProviderError::not_found(message),
            400 | 409 | 422 => ProviderError::invalid(message),
            408 | 429 | 500..=599 => ProviderError::unavailable(message),
            _ => ProviderError::platform(message),
        }
    }

    /// Whether trying again later can help.
    pub fn is_retryable(&self) -> bool {
        matches!(self, ProviderError::Unavailable { .. })
    }
}

/// One read-only check of a target's readiness ([`Provider::readiness`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Readiness {
    /// What was checked (`token`, `namespace`, `may patch deployments`).
    pub what: String,
    /// `Some(true)`: what a deploy needs is there; `Some(false)`: a deploy would fail;
    /// `None`: the platform could not tell.
    pub ready: Option<bool>,
    /// What was found (never a secret).
    pub detail: String,
    /// How to fix it, when not ready.
    pub fix: Option<String>,
}

impl Readiness {
    /// What a deploy needs is there.
    pub fn ready(what: impl Into<String>, detail: impl Into<String>) -> Readiness {
        Readiness {
            what: what.into(),
            ready: Some(true),
            detail: detail.into(),
            fix: None,
        }
    }

    /// A deploy would fail here; `fix` says what to change.
    pub fn not_ready(
        what: impl Into<String>,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Readiness {
        Readiness {
            what: what.into(),
            ready: Some(false),
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }

    /// The platform could not tell.
    pub fn unknown(what: impl Into<String>, detail: impl Into<String>) -> Readiness {
        Readiness {
            what: what.into(),
            ready: None,
            detail: detail.into(),
            fix: None,
        }
    }
}

/// A deploy target.
// mockall needs the explicit trait-object lifetime of `wait`'s progress sink, and repeats it
// in parentheses the compiler then calls unnecessary.
#[cfg_attr(any(test, feature = "mock"), mockall::automock, allow(unused_parens))]
#[async_trait::async_trait]
pub trait Provider: Send + Sync {
    /// `local`, `helm`, `railway`, `fly`.
    fn kind(&self) -> &'static str;

    /// What runs now, per service.
    async fn current(&self) -> Result<Vec<Running>, ProviderError>;

    /// Brings the target back to a state a deploy can start from, when an interrupted run
    /// left it locked (a Helm release stuck `pending-*`), before anything new is deployed.
    /// Returns what it did, one sentence each; the pipeline records that as a step of the run.
    /// The default has nothing to recover.
    async fn recover(&self) -> Result<Vec<String>, ProviderError> {
        Ok(Vec::new())
    }

    /// Read-only checks of what a deploy to this target needs beyond reading what runs (the
    /// token's kind and rights, the namespace, the tool's version), for `shipgate doctor`.
    /// Nothing is changed. The default has none.
    async fn readiness(&self) -> Vec<Readiness> {
        Vec::new()
    }

    /// What `deploy(request)` would change, without changing anything.
    async fn plan(&self, request: &DeployRequest) -> Result<Vec<PlannedChange>, ProviderError>;

    /// Starts putting `request` live and returns at once; [`Provider::wait`] gives the verdict.
    async fn deploy(&self, request: &DeployRequest) -> Result<Deployment, ProviderError>;

    /// Waits for the verdict on `deployment` until `deadline`, reporting progress. On
    /// cancellation it stops waiting without leaving the target mid-operation.
    async fn wait<'a>(
        &'a self,
        deployment: &'a Deployment,
        deadline: Instant,
        progress: &'a (dyn ProgressSink + 'a),
        cancel: &'a CancellationToken,
    ) -> Result<Verdict, ProviderError>;

    /// Revisions, newest first.
    async fn history(&self) -> Result<Vec<Revision>, ProviderError>;

    /// Starts putting revision `to`'s images back; wait on the result like a deploy.
    async fn rollback(&self, to: &RevisionId) -> Result<Deployment, ProviderError>;

    /// Recent logs or events of a deployment, for a failure report.
    async fn diagnostics(&self, deployment: &Deployment) -> Result<Vec<String>, ProviderError>;

    // A staged release (blue-green, canary): the new release runs beside the live one and is
    // tested before any user request reaches it; traffic then moves to it, or goes back at
    // once. The order is `stage` → (test it) → `shift` (up to 100 percent) → `promote`;
    // `abort` may come at any point after `stage` and puts every user back on the release
    // that served before, without restarting it. A provider that cannot stage keeps the
    // defaults: `can_stage` is false and the operations refuse.

    /// Whether this provider can stage a release.
    fn can_stage(&self) -> bool {
        false
    }

    /// Whether a staged release can take a share of traffic below 100 % (a canary step).
    fn can_split(&self) -> bool {
        false
    }

    /// Starts `request` beside the live release and waits until `deadline` for it to be
    /// healthy, reporting progress. It takes no user traffic.
    async fn stage<'a>(
        &'a self,
        request: &'a DeployRequest,
        deadline: Instant,
        progress: &'a (dyn ProgressSink + 'a),
        cancel: &'a CancellationToken,
    ) -> Result<StageOutcome, ProviderError> {
        let _ = (request, deadline, progress, cancel);
        Err(cannot_stage(self.kind()))
    }

    /// Moves `percent` (1 to 100) of new user traffic to the staged release; the release that
    /// served before keeps running. Returns the share the staged release takes now, as near
    /// to `percent` as the platform can split (one canary machine among n takes about
    /// 100 / (n + 1)). A provider that cannot split traffic refuses anything but 100 with
    /// [`ProviderError::Invalid`].
    async fn shift<'a>(&'a self, staged: &'a Deployment, percent: u8) -> Result<u8, ProviderError> {
        let _ = (staged, percent);
        Err(cannot_stage(self.kind()))
    }

    /// Puts all traffic back on the release that served before, at once, and removes the
    /// staged one. Safe to call in any state after `stage`.
    async fn abort<'a>(&'a self, staged: &'a Deployment) -> Result<(), ProviderError> {
        let _ = staged;
        Err(cannot_stage(self.kind()))
    }

    /// Makes the staged release the live one for good (after `shift` to 100): the release
    /// that served before is stopped.
    async fn promote<'a>(&'a self, staged: &'a Deployment) -> Result<(), ProviderError> {
        let _ = staged;
        Err(cannot_stage(self.kind()))
    }

    /// The user traffic the staged release and the release beside it have received so far,
    /// where this provider sees it (the local router counts it). `None`: it cannot observe
    /// user traffic, and a canary's analysis relies on its other sources.
    async fn observe<'a>(
        &'a self,
        staged: &'a Deployment,
    ) -> Result<Option<TrafficObservation>, ProviderError> {
        let _ = staged;
        Ok(None)
    }
}

/// `Ok` for a share of traffic `shift` can be asked for: 1 to 100 percent.
pub fn check_share(percent: u8) -> Result<(), ProviderError> {
    if (1..=100).contains(&percent) {
        Ok(())
    } else {
        Err(ProviderError::invalid(format!(
            "a traffic share is 1 to 100 percent, not {percent}"
        )))
    }
}

/// For a provider that moves traffic all at once (blue-green only): `Ok` for 100 percent,
/// otherwise the refusal naming `what` moves it (`Fly blue-green`).
pub fn require_full_shift(what: &str, percent: u8) -> Result<(), ProviderError> {
    if percent == 100 {
        Ok(())
    } else {
        Err(ProviderError::invalid(format!(
            "{what} moves all traffic at once; it cannot send {percent}% to the staged release"
        )))
    }
}

/// The refusal of an operation on a staged release this provider did not stage (or already
/// aborted or promoted).
pub fn not_staged(staged: &Deployment) -> ProviderError {
    ProviderError::not_found(format!(
        "revision {} was not staged by this process",
        staged.revision
    ))
}

/// The refusal of a provider that cannot stage a release.
fn cannot_stage(kind: &str) -> ProviderError {
    ProviderError::invalid(format!(
        "the {kind} provider cannot stage a release beside the live one; use the rolling strategy"
    ))
}

/// A release running beside the live one, healthy, taking no user traffic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Staged {
    /// The staged deployment (its revision).
    pub deployment: Deployment,
    /// Where each service of the staged release answers, for testing it before traffic moves
    /// (a base URL such as `http://127.0.0.1:41873`).
    pub endpoints: BTreeMap<ServiceName, String>,
}

/// What staging a release came to.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum StageOutcome {
    /// It runs beside the live release and is healthy.
    Staged(Staged),
    /// It never became healthy (the [`Verdict`] says why); it was removed, and the live
    /// release never stopped serving.
    NotHealthy(Deployment, Verdict),
}

impl StageOutcome {
    /// The staged release, or the deployment and verdict of one that never became healthy.
    pub fn into_staged(self) -> Result<Staged, Box<(Deployment, Verdict)>> {
        match self {
            StageOutcome::Staged(staged) => Ok(staged),
            StageOutcome::NotHealthy(deployment, verdict) => Err(Box::new((deployment, verdict))),
        }
    }
}

/// A database migration that runs on the platform rather than on the deploy runner (a
/// Kubernetes Job), started once before the rollout.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait::async_trait]
pub trait MigrationJob: Send + Sync {
    /// What runs (`Kubernetes Job shop-migrate-… in namespace shop`).
    fn describe(&self) -> String;

    /// Runs it to completion within `timeout`. `Ok` carries the last lines of its output;
    /// `Err`: it failed, timed out or was interrupted, and was stopped.
    async fn run(
        &self,
        timeout: Duration,
        cancel: &CancellationToken,
    ) -> Result<String, MigrationError>;
}

/// Why a migration did not complete. It was stopped in every case.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MigrationError {
    /// It could not start, exited with an error, or its Job failed: what it said last.
    #[error("{0}")]
    Failed(String),
    /// It was still running at its timeout, and was stopped.
    #[error("{0}")]
    TimedOut(String),
    /// The run was interrupted, and the migration stopped.
    #[error("{0}")]
    Interrupted(String),
}

impl MigrationError {
    /// Whether the run was interrupted (the deploy ends `aborted`, not `failed`).
    pub fn is_interrupted(&self) -> bool {
        matches!(self, MigrationError::Interrupted(_))
    }
}

/// The newest revision before `current` that was healthy (`deployed` or `superseded`): the
/// rollback target when no other is given. Never "current − 1", which may have failed.
pub fn previous_good(history: &[Revision], current: &RevisionId) -> Option<Revision> {
    history
        .iter()
        .skip_while(|r| &r.id != current)
        .skip(1)
        .find(|r| {
            matches!(
                r.status,
                RevisionStatus::Deployed | RevisionStatus::Superseded
            )
        })
        .cloned()
}

/// What one poll saw.
#[derive(Debug)]
pub enum Poll<T> {
    /// Done.
    Ready(T),
    /// Not yet; the text says what is still awaited.
    Waiting(String),
}

/// Polls `check` until it is ready, `deadline` passes (`Err(last waiting text)`), or `cancel`
/// fires (`Ok(None)`). Waits `interval` between polls, doubling up to `max_interval`, and
/// reports each waiting state to `progress`.
pub async fn wait_until<T, F, Fut>(
    deadline: Instant,
    interval: Duration,
    max_interval: Duration,
    progress: &dyn ProgressSink,
    cancel: &CancellationToken,
    mut check: F,
) -> Result<Option<T>, String>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Poll<T>>,
{
    let mut wait = interval;
    loop {
        let waiting_for = match check().await {
            Poll::Ready(value) => return Ok(Some(value)),
            Poll::Waiting(what) => what,
        };
        let now = Instant::now();
        if now >= deadline {
            return Err(waiting_for);
        }
        let remaining = deadline - now;
        progress.report(&WaitProgress {
            waiting_for: waiting_for.clone(),
            remaining,
        });
        tokio::select! {
            () = tokio::time::sleep(wait.min(remaining)) => {}
            () = cancel.cancelled() => return Ok(None),
        }
        wait = (wait * 2).min(max_interval);
    }
}

mod unix_seconds {
    use std::time::{SystemTime, UNIX_EPOCH};

    pub(super) fn serialize<S: serde::Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn revision(id: &str, status: RevisionStatus) -> Revision {
        Revision {
            id: RevisionId(id.into()),
            images: BTreeMap::new(),
            status,
            created_at: SystemTime::UNIX_EPOCH,
            description: String::new(),
        }
    }

    #[test]
    fn previous_good_skips_failed_revisions() {
        let history = vec![
            revision("5", RevisionStatus::Deployed),
            revision("4", RevisionStatus::Failed),
            revision("3", RevisionStatus::Superseded),
            revision("2", RevisionStatus::Superseded),
        ];
        assert_eq!(
            previous_good(&history, &RevisionId("5".into()))
                .unwrap()
                .id
                .0,
            "3"
        );
        assert_eq!(previous_good(&history, &RevisionId("2".into())), None);
        assert_eq!(previous_good(&history, &RevisionId("9".into())), None);
    }

    #[test]
    fn statuses_classify_into_errors() {
        assert!(matches!(
            ProviderError::from_status(403, "x"),
            ProviderError::Unauthorized { .. }
        ));
        assert!(matches!(
            ProviderError::from_status(404, "x"),
            ProviderError::NotFound { .. }
        ));
        assert!(matches!(
            ProviderError::from_status(422, "x"),
            ProviderError::Invalid { .. }
        ));
        assert!(ProviderError::from_status(503, "x").is_retryable());
        assert!(ProviderError::from_status(429, "x").is_retryable());
        assert!(!ProviderError::from_status(401, "x").is_retryable());
    }

    #[tokio::test]
    async fn wait_until_reports_progress_and_stops_at_the_deadline_or_on_cancel() {
        let seen = std::sync::Mutex::new(Vec::new());
        let sink = |p: &WaitProgress| seen.lock().unwrap().push(p.waiting_for.clone());
        let mut n = 0;
        let ready = wait_until(
            Instant::now() + Duration::from_secs(10),
            Duration::from_millis(1),
            Duration::from_millis(4),
            &sink,
            &CancellationToken::new(),
            || {
                n += 1;
                let n = n;
                async move {
                    if n < 3 {
                        Poll::Waiting(format!("poll {n}"))
                    } else {
                        Poll::Ready(n)
                    }
                }
            },
        )
        .await;
        assert_eq!(ready, Ok(Some(3)));
        assert_eq!(*seen.lock().unwrap(), ["poll 1", "poll 2"]);

        let timed_out: Result<Option<()>, String> = wait_until(
            Instant::now(),
            Duration::from_millis(1),
            Duration::from_millis(1),
            &sink,
            &CancellationToken::new(),
            || async { Poll::Waiting("still starting".into()) },
        )
        .await;
        assert_eq!(timed_out, Err("still starting".into()));

        let cancel = CancellationToken::new();
        cancel.cancel();
        let cancelled: Result<Option<()>, String> = wait_until(
            Instant::now() + Duration::from_secs(60),
            Duration::from_secs(30),
            Duration::from_secs(30),
            &sink,
            &cancel,
            || async { Poll::Waiting("x".into()) },
        )
        .await;
        assert_eq!(cancelled, Ok(None));
    }
}

/// The README's examples, compiled (and run) as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
