//! The pipeline's decisions, driven through mocked providers (mockall at the `Provider` seam)
//! and a real SQLite ledger: the failure paths the real-process tests cannot reach cheaply.
//! Each test checks what the platforms run at the end, not only the outcome.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use shipgate_core::{ImageRef, Redactor, ServiceName};
use shipgate_ledger::Ledger;
use shipgate_provider::{
    Deployment, MockProvider, ProviderError, Revision, RevisionId, RevisionStatus, Running,
    StageOutcome, Staged, Verdict,
};
use shipgate_smoke::SmokeRunner;
use tokio_util::sync::CancellationToken;

use crate::{Outcome, PipelineEvent, Plan, Summary, Target};

/// One fake platform: what it runs (a tag), its revisions, and what happened to it, in a log
/// shared by every platform of a test.
struct Platform {
    name: &'static str,
    runs: Mutex<String>,
    revisions: Mutex<Vec<Revision>>,
    log: Arc<Mutex<Vec<String>>>,
}

fn service() -> ServiceName {
    "api".parse().unwrap()
}

fn image(tag: &str) -> ImageRef {
    format!("ghcr.io/acme/api:{tag}").parse().unwrap()
}

impl Platform {
    /// A platform running `v1` as revision 1.
    fn new(name: &'static str, log: &Arc<Mutex<Vec<String>>>) -> Arc<Platform> {
        Arc::new(Platform {
            name,
            runs: Mutex::new("v1".into()),
            revisions: Mutex::new(vec![revision("1", "v1", RevisionStatus::Deployed)]),
            log: Arc::clone(log),
        })
    }

    fn running(&self) -> String {
        self.runs.lock().unwrap().clone()
    }

    fn note(&self, what: String) {
        self.log
            .lock()
            .unwrap()
            .push(format!("{} {what}", self.name));
    }

    /// Puts `tag` live as a new revision; returns its deployment.
    fn apply(&self, tag: &str) -> Deployment {
        let mut revisions = self.revisions.lock().unwrap();
        for r in revisions.iter_mut() {
            r.status = RevisionStatus::Superseded;
        }
        let id = (revisions.len() + 1).to_string();
        revisions.insert(0, revision(&id, tag, RevisionStatus::Deployed));
        *self.runs.lock().unwrap() = tag.to_owned();
        Deployment {
            revision: RevisionId(id),
            request: shipgate_provider::DeployRequest {
                images: BTreeMap::from([(service(), image(tag))]),
                description: String::new(),
            },
        }
    }
}

fn revision(id: &str, tag: &str, status: RevisionStatus) -> Revision {
    Revision {
        id: RevisionId(id.into()),
        images: BTreeMap::from([(service(), image(tag))]),
        status,
        created_at: SystemTime::UNIX_EPOCH,
        description: String::new(),
    }
}

/// A wait's answer for a deployment.
type WaitFn = Box<dyn Fn(&Deployment) -> Result<Verdict, ProviderError> + Send + Sync>;
/// A history read.
type HistoryFn = Box<dyn Fn() -> Result<Vec<Revision>, ProviderError> + Send + Sync>;
/// A rollback call.
type RollbackFn = Box<dyn Fn(&RevisionId) -> Result<Deployment, ProviderError> + Send + Sync>;

/// How a mocked provider over a [`Platform`] behaves: by default it reads what the platform
/// runs, deploys and rolls back by changing it, and answers `wait` with `wait`; a test replaces
/// `history` or `rollback` to inject a failure.
struct Behaviour {
    wait: WaitFn,
    history: Option<HistoryFn>,
    rollback: Option<RollbackFn>,
}

impl Behaviour {
    /// Healthy for every release but `bad`, which crash-loops.
    fn healthy_unless(bad: &'static str) -> Behaviour {
        Behaviour {
            wait: Box::new(move |deployment| {
                Ok(
                    if deployment.request.images[&service()].tag() == Some(bad) {
                        Verdict::Failed {
                            reason: "crash-looping".into(),
                            diagnostics: Vec::new(),
                        }
                    } else {
                        Verdict::Healthy
                    },
                )
            }),
            history: None,
            rollback: None,
        }
    }
}

/// A mocked provider (mockall, at the `Provider` seam) over `platform`.
fn provider(platform: &Arc<Platform>, behaviour: Behaviour) -> MockProvider {
    let Behaviour {
        wait,
        history,
        rollback,
    } = behaviour;
    let mut mock = MockProvider::new();
    mock.expect_kind().return_const("mock");
    let p = Arc::clone(platform);
    mock.expect_current().returning(move || {
        Ok(vec![Running {
            service: service(),
            image: image(&p.running()),
            revision: p.revisions.lock().unwrap()[0].id.clone(),
        }])
    });
    mock.expect_recover().returning(|| Ok(Vec::new()));
    let p = Arc::clone(platform);
    mock.expect_deploy().returning(move |request| {
        let tag = request.images[&service()].tag().unwrap().to_owned();
        p.note(format!("deploy {tag}"));
        Ok(p.apply(&tag))
    });
    mock.expect_wait()
        .returning(move |deployment, _, _, _| wait(deployment));
    let p = Arc::clone(platform);
    mock.expect_history().returning(move || match &history {
        Some(history) => history(),
        None => Ok(p.revisions.lock().unwrap().clone()),
    });
    let p = Arc::clone(platform);
    mock.expect_rollback().returning(move |id| {
        if let Some(rollback) = &rollback {
            return rollback(id);
        }
        let tag = p
            .revisions
            .lock()
            .unwrap()
            .iter()
            .find(|r| &r.id == id)
            .and_then(|r| r.images[&service()].tag().map(str::to_owned))
            .unwrap();
        p.note(format!("rollback to {tag}"));
        Ok(p.apply(&tag))
    });
    mock.expect_diagnostics().returning(|_| Ok(Vec::new()));
    mock
}

fn target(name: &str, provider: MockProvider) -> Target {
    Target {
        name: name.into(),
        provider: Box::new(provider),
        timeout: Duration::from_secs(5),
    }
}

fn plan(targets: Vec<Target>) -> Plan {
    Plan {
        run_id: format!("run-{:?}", std::time::Instant::now()),
        app: "shop".into(),
        environment: "production".into(),
        image_tag: "v2".into(),
        images: vec![(service(), image("v2"))],
        targets,
        smoke: None,
        preflight: Vec::new(),
        ci_gate: None,
        migration: None,
        redactor: Redactor::default(),
        auto_rollback: true,
        smoke_after_rollback: false,
        image_check: None,
        owner: "test".into(),
        host: "localhost".into(),
        pid: 1,
        lock_timeout: Duration::from_secs(5),
        lock_ttl: Duration::from_secs(60),
        commit_ms: None,
        allow_older: true,
        strategy: crate::Strategy::Rolling,
        canary: crate::Canary::default(),
        links: Vec::new(),
    }
}

/// Runs `plan` against a fresh SQLite ledger, collecting the events.
async fn run(plan: &Plan, cancel: &CancellationToken) -> (Summary, Vec<PipelineEvent>) {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(&format!("sqlite://{}", dir.path().join("l.db").display()))
        .await
        .unwrap();
    let mut runner = SmokeRunner::new(Redactor::default()).unwrap();
    let seen = Mutex::new(Vec::new());
    let events = |e: &PipelineEvent| seen.lock().unwrap().push(e.clone());
    let summary = crate::run(plan, &ledger, &mut runner, &events, cancel)
        .await
        .unwrap();
    (summary, seen.into_inner().unwrap())
}

#[tokio::test]
async fn a_second_target_failing_rolls_back_both_in_reverse_order() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let (first, second) = (Platform::new("helm", &log), Platform::new("fly", &log));
    let plan = plan(vec![
        target("helm", provider(&first, Behaviour::healthy_unless("never"))),
        target("fly", provider(&second, Behaviour::healthy_unless("v2"))),
    ]);
    let (summary, _) = run(&plan, &CancellationToken::new()).await;
    assert_eq!(summary.outcome, Outcome::RolledBack, "{}", summary.message);
    assert_eq!(
        *log.lock().unwrap(),
        [
            "helm deploy v2",
            "fly deploy v2",
            "fly rollback to v1",
            "helm rollback to v1"
        ]
    );
    // What the platforms run at the end: the previous release, on both.
    assert_eq!(
        (first.running(), second.running()),
        ("v1".into(), "v1".into())
    );
}

#[tokio::test]
async fn history_that_cannot_be_read_ends_rollback_failed_saying_what_runs() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let platform = Platform::new("helm", &log);
    let behaviour = Behaviour {
        history: Some(Box::new(|| {
            Err(ProviderError::unauthorized("token expired"))
        })),
        ..Behaviour::healthy_unless("v2")
    };
    let plan = plan(vec![target("helm", provider(&platform, behaviour))]);
    let (summary, _) = run(&plan, &CancellationToken::new()).await;
    assert_eq!(summary.outcome, Outcome::RollbackFailed);
    assert!(
        summary.message.contains("cannot read history") && summary.message.contains("api:v2"),
        "{}",
        summary.message
    );
    assert_eq!(platform.running(), "v2", "nothing was rolled back");
}

#[tokio::test]
async fn a_refused_rollback_ends_rollback_failed_and_the_failed_release_is_read_back() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let platform = Platform::new("helm", &log);
    let behaviour = Behaviour {
        rollback: Some(Box::new(|_| {
            Err(ProviderError::invalid(
                "release is locked by another operation",
            ))
        })),
        ..Behaviour::healthy_unless("v2")
    };
    let plan = plan(vec![target("helm", provider(&platform, behaviour))]);
    let (summary, _) = run(&plan, &CancellationToken::new()).await;
    assert_eq!(summary.outcome, Outcome::RollbackFailed);
    assert!(
        summary.message.contains("rollback refused") && summary.message.contains("api:v2"),
        "{}",
        summary.message
    );
    assert_eq!(platform.running(), "v2");
}

#[tokio::test]
async fn an_outage_during_the_rollback_is_retried_and_the_rollback_completes() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let platform = Platform::new("helm", &log);
    // One 503 from history and one 429 from the rollback itself, then the platform answers.
    let (history_calls, rollback_calls) = (Arc::new(Mutex::new(0)), Arc::new(Mutex::new(0)));
    let (p, calls) = (Arc::clone(&platform), Arc::clone(&history_calls));
    let history: HistoryFn = Box::new(move || {
        let mut n = calls.lock().unwrap();
        *n += 1;
        if *n == 1 {
            Err(ProviderError::unavailable("503 from the API server"))
        } else {
            Ok(p.revisions.lock().unwrap().clone())
        }
    });
    let (p, calls) = (Arc::clone(&platform), Arc::clone(&rollback_calls));
    let rollback: RollbackFn = Box::new(move |id| {
        let mut n = calls.lock().unwrap();
        *n += 1;
        if *n == 1 {
            return Err(ProviderError::unavailable("429 rate limited"));
        }
        assert_eq!(id.0, "1");
        Ok(p.apply("v1"))
    });
    let behaviour = Behaviour {
        history: Some(history),
        rollback: Some(rollback),
        ..Behaviour::healthy_unless("v2")
    };
    let plan = plan(vec![target("helm", provider(&platform, behaviour))]);
    let (summary, _) = run(&plan, &CancellationToken::new()).await;
    assert_eq!(summary.outcome, Outcome::RolledBack, "{}", summary.message);
    assert_eq!(*history_calls.lock().unwrap(), 2);
    assert_eq!(*rollback_calls.lock().unwrap(), 2);
    assert_eq!(platform.running(), "v1");
}

#[tokio::test]
async fn an_error_that_retrying_cannot_fix_is_not_retried() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let platform = Platform::new("helm", &log);
    let calls = Arc::new(Mutex::new(0));
    let counted = Arc::clone(&calls);
    let behaviour = Behaviour {
        history: Some(Box::new(move || {
            *counted.lock().unwrap() += 1;
            Err(ProviderError::unauthorized("token expired"))
        })),
        ..Behaviour::healthy_unless("v2")
    };
    let plan = plan(vec![target("helm", provider(&platform, behaviour))]);
    let (summary, _) = run(&plan, &CancellationToken::new()).await;
    assert_eq!(summary.outcome, Outcome::RollbackFailed);
    assert_eq!(*calls.lock().unwrap(), 1);
}

#[tokio::test]
async fn an_interruption_during_the_rollback_is_aborted_with_what_runs_read_back() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let platform = Platform::new("helm", &log);
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    // v2 fails; SIGTERM arrives while the rollback's rollout is awaited.
    let behaviour = Behaviour {
        wait: Box::new(move |deployment| {
            if deployment.request.images[&service()].tag() == Some("v2") {
                return Ok(Verdict::Failed {
                    reason: "crash-looping".into(),
                    diagnostics: Vec::new(),
                });
            }
            trigger.cancel();
            Ok(Verdict::Cancelled)
        }),
        history: None,
        rollback: None,
    };
    let plan = plan(vec![target("helm", provider(&platform, behaviour))]);
    let (summary, _) = run(&plan, &cancel).await;
    assert_eq!(summary.outcome, Outcome::Aborted, "{}", summary.message);
    assert_eq!(summary.exit_code, 130);
    assert!(summary.rollback.as_ref().is_some_and(|r| r.performed));
    // The rollback had been applied when the run stopped; the message says what was read back.
    assert_eq!(platform.running(), "v1");
    assert!(
        summary.message.contains("did not complete") && summary.message.contains("api:v1"),
        "{}",
        summary.message
    );
}

/// A provider whose `wait` never answers for `v2` (it ignores its deadline); everything else
/// is the mocked provider's. mockall's `returning` gives values, not a future that never
/// resolves, so this one seam is written by hand.
struct Stalls(MockProvider);

#[async_trait::async_trait]
impl shipgate_provider::Provider for Stalls {
    fn kind(&self) -> &'static str {
        self.0.kind()
    }
    async fn current(&self) -> Result<Vec<Running>, ProviderError> {
        self.0.current().await
    }
    async fn plan(
        &self,
        request: &shipgate_provider::DeployRequest,
    ) -> Result<Vec<shipgate_provider::PlannedChange>, ProviderError> {
        self.0.plan(request).await
    }
    async fn deploy(
        &self,
        request: &shipgate_provider::DeployRequest,
    ) -> Result<Deployment, ProviderError> {
        self.0.deploy(request).await
    }
    async fn wait<'a>(
        &'a self,
        deployment: &'a Deployment,
        deadline: std::time::Instant,
        progress: &'a (dyn shipgate_provider::ProgressSink + 'a),
        cancel: &'a CancellationToken,
    ) -> Result<Verdict, ProviderError> {
        if deployment.request.images[&service()].tag() == Some("v2") {
            return std::future::pending().await;
        }
        self.0.wait(deployment, deadline, progress, cancel).await
    }
    async fn history(&self) -> Result<Vec<Revision>, ProviderError> {
        self.0.history().await
    }
    async fn rollback(&self, to: &RevisionId) -> Result<Deployment, ProviderError> {
        self.0.rollback(to).await
    }
    async fn diagnostics(&self, deployment: &Deployment) -> Result<Vec<String>, ProviderError> {
        self.0.diagnostics(deployment).await
    }
}

#[tokio::test]
async fn a_wait_that_never_answers_is_a_timed_out_verdict_and_is_rolled_back() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let platform = Platform::new("fly", &log);
    let plan = plan(vec![Target {
        name: "fly".into(),
        provider: Box::new(Stalls(provider(
            &platform,
            Behaviour::healthy_unless("never"),
        ))),
        timeout: Duration::from_millis(100),
    }]);
    let (summary, _) = run(&plan, &CancellationToken::new()).await;
    assert!(
        summary
            .steps
            .iter()
            .any(|s| s.name == "deploy fly" && s.detail.contains("an answer from fly")),
        "{:?}",
        summary.steps
    );
    // Timed out, then rolled back: nothing is left waiting, and v1 runs again.
    assert_eq!(summary.outcome, Outcome::RolledBack, "{}", summary.message);
    assert_eq!(platform.running(), "v1");
}

// The ledger seam (`RunLedger`, mocked): what a run does when its record cannot be kept.

fn ledger_down(operation: &'static str) -> shipgate_ledger::LedgerError {
    shipgate_ledger::LedgerError::Database {
        database: "SQLite file /var/lib/shipgate/ledger.db".into(),
        operation,
        message: "disk I/O error".into(),
    }
}

/// A mocked ledger that records everything; tests replace single expectations first (mockall
/// uses the first expectation that matches).
fn recording_ledger(mock: &mut crate::MockRunLedger) {
    mock.expect_acquire_lock()
        .returning(|_, _, _, _| Ok(Vec::new()));
    mock.expect_abandon_dead_runs()
        .returning(|_, _, _| Ok(Vec::new()));
    mock.expect_start_run().returning(|_| Ok(()));
    mock.expect_record_commit_time().returning(|_, _| Ok(()));
    mock.expect_record_step().returning(|_, _| Ok(()));
    mock.expect_record_deployment().returning(|_| Ok(()));
    mock.expect_newer_live_release()
        .returning(|_, _, _, _| Ok(None));
    mock.expect_finish_run().returning(|_, _, _, _| Ok(None));
    mock.expect_record_summary().returning(|_, _| Ok(()));
    mock.expect_release_lock().returning(|_, _, _| Ok(true));
    mock.expect_record_run_without_lock()
        .returning(|_, _, _, _| Ok(()));
    mock.expect_handle().returning(|| {
        let mut heartbeat = crate::MockRunLedger::new();
        heartbeat
            .expect_renew_lock()
            .returning(|_, _, _, _| Ok(true));
        Arc::new(heartbeat)
    });
}

async fn run_on(
    plan: &Plan,
    ledger: &dyn crate::RunLedger,
) -> (Result<Summary, crate::PipelineError>, Vec<PipelineEvent>) {
    let mut runner = SmokeRunner::new(Redactor::default()).unwrap();
    let seen = Mutex::new(Vec::new());
    let events = |e: &PipelineEvent| seen.lock().unwrap().push(e.clone());
    let result = crate::run(
        plan,
        ledger,
        &mut runner,
        &events,
        &CancellationToken::new(),
    )
    .await;
    (result, seen.into_inner().unwrap())
}

#[tokio::test]
async fn a_run_that_cannot_be_recorded_stops_before_anything_changes() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let platform = Platform::new("helm", &log);
    let mut ledger = crate::MockRunLedger::new();
    ledger
        .expect_start_run()
        .returning(|_| Err(ledger_down("record run")));
    recording_ledger(&mut ledger);
    let plan = plan(vec![target(
        "helm",
        provider(&platform, Behaviour::healthy_unless("never")),
    )]);
    let (result, _) = run_on(&plan, &ledger).await;
    assert!(
        matches!(result, Err(crate::PipelineError::Ledger(_))),
        "{result:?}"
    );
    // Nothing was deployed anywhere.
    assert!(log.lock().unwrap().is_empty());
    assert_eq!(platform.running(), "v1");
}

#[tokio::test]
async fn a_ledger_failing_mid_run_is_a_warning_and_the_release_still_goes_out_gated() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let platform = Platform::new("helm", &log);
    let mut ledger = crate::MockRunLedger::new();
    ledger
        .expect_record_step()
        .returning(|_, _| Err(ledger_down("record step")));
    ledger
        .expect_record_deployment()
        .returning(|_| Err(ledger_down("record deployment")));
    recording_ledger(&mut ledger);
    let plan = plan(vec![target(
        "helm",
        provider(&platform, Behaviour::healthy_unless("never")),
    )]);
    let (result, events) = run_on(&plan, &ledger).await;
    let summary = result.unwrap();
    assert_eq!(summary.outcome, Outcome::Succeeded, "{}", summary.message);
    assert!(
        events.iter().any(|e| matches!(
            e,
            PipelineEvent::Warning { message } if message.contains("disk I/O error")
        )),
        "{events:?}"
    );
    // The summary still holds every step, though the ledger could not.
    assert!(summary.steps.iter().any(|s| s.name == "deploy helm"));
    assert_eq!(platform.running(), "v2");
}

#[tokio::test]
async fn a_lock_not_obtained_in_time_changes_nothing_and_is_recorded_as_such() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let platform = Platform::new("helm", &log);
    let mut ledger = crate::MockRunLedger::new();
    ledger.expect_acquire_lock().returning(|request, _, _, _| {
        Err(shipgate_ledger::LedgerError::LockTimeout {
            app: request.app.clone(),
            environment: request.environment.clone(),
            holder: Box::new(shipgate_ledger::LockHolder {
                run_id: "other-run".into(),
                owner: "ci".into(),
                host: "runner-7".into(),
                pid: 42,
                reason: "deploy v9".into(),
                acquired_ms: 0,
                expires_ms: i64::MAX,
            }),
            waited_s: 30,
        })
    });
    ledger
        .expect_record_run_without_lock()
        .times(1)
        .returning(|_, _, outcome, _| {
            assert_eq!(outcome, Outcome::LockTimeout);
            Ok(())
        });
    recording_ledger(&mut ledger);
    let plan = plan(vec![target(
        "helm",
        provider(&platform, Behaviour::healthy_unless("never")),
    )]);
    let (result, _) = run_on(&plan, &ledger).await;
    let summary = result.unwrap();
    assert_eq!(
        (summary.outcome, summary.exit_code),
        (Outcome::LockTimeout, 6)
    );
    assert!(log.lock().unwrap().is_empty(), "nothing was deployed");
    assert_eq!(platform.running(), "v1");
}

#[tokio::test]
async fn bluegreen_on_a_target_that_cannot_stage_deploys_rolling_and_says_so() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let platform = Platform::new("railway:api", &log);
    let mut mock = provider(&platform, Behaviour::healthy_unless("never"));
    mock.expect_can_stage().return_const(false);
    let mut plan = plan(vec![target("railway:api", mock)]);
    plan.strategy = crate::Strategy::Bluegreen;
    let (summary, events) = run(&plan, &CancellationToken::new()).await;
    assert_eq!(summary.outcome, Outcome::Succeeded, "{}", summary.message);
    assert_eq!(summary.strategy, crate::Strategy::Rolling);
    let note = summary.strategy_note.as_deref().unwrap();
    assert!(note.contains("railway:api cannot stage"), "{note}");
    assert!(
        events
            .iter()
            .any(|e| matches!(e, PipelineEvent::Warning { .. }))
    );
    assert_eq!(platform.running(), "v2");
}

#[tokio::test]
async fn canary_on_a_target_that_stages_but_cannot_split_deploys_bluegreen_and_says_so() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let platform = Platform::new("helm", &log);
    let mut mock = provider(&platform, Behaviour::healthy_unless("never"));
    mock.expect_can_stage().return_const(true);
    mock.expect_can_split().return_const(false);
    let p = Arc::clone(&platform);
    mock.expect_stage().returning(move |request, _, _, _| {
        let tag = request.images[&service()].tag().unwrap().to_owned();
        p.note(format!("stage {tag}"));
        Ok(StageOutcome::Staged(Staged {
            deployment: Deployment {
                revision: RevisionId("2".into()),
                request: request.clone(),
            },
            endpoints: BTreeMap::new(),
        }))
    });
    let p = Arc::clone(&platform);
    mock.expect_shift().returning(move |deployment, percent| {
        // Only a whole switch is asked of a target that cannot split.
        assert_eq!(percent, 100);
        let tag = deployment.request.images[&service()]
            .tag()
            .unwrap()
            .to_owned();
        p.apply(&tag);
        Ok(100)
    });
    mock.expect_promote().returning(|_| Ok(()));
    let mut plan = plan(vec![target("helm", mock)]);
    plan.strategy = crate::Strategy::Canary;
    let (summary, _) = run(&plan, &CancellationToken::new()).await;
    assert_eq!(summary.outcome, Outcome::Succeeded, "{}", summary.message);
    assert_eq!(summary.strategy, crate::Strategy::Bluegreen);
    let note = summary.strategy_note.as_deref().unwrap();
    assert!(note.contains("helm cannot split traffic"), "{note}");
    assert_eq!(platform.running(), "v2");
}

#[tokio::test]
async fn a_staged_run_that_cannot_recover_a_target_stages_nothing_and_reads_back() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let platform = Platform::new("fly", &log);
    let mut mock = MockProvider::new();
    mock.expect_kind().return_const("mock");
    let p = Arc::clone(&platform);
    mock.expect_current().returning(move || {
        Ok(vec![Running {
            service: service(),
            image: image(&p.running()),
            revision: RevisionId("1".into()),
        }])
    });
    mock.expect_can_stage().return_const(true);
    mock.expect_recover()
        .returning(|| Err(ProviderError::unavailable("503 from the Machines API")));
    // No stage expectation: a call would fail the test.
    let mut plan = plan(vec![target("fly", mock)]);
    plan.strategy = crate::Strategy::Bluegreen;
    let (summary, _) = run(&plan, &CancellationToken::new()).await;
    assert_eq!(summary.outcome, Outcome::Failed, "{}", summary.message);
    assert!(
        summary
            .message
            .contains("cannot recover what an interrupted run left")
            && summary
                .message
                .contains("read back, it runs api=ghcr.io/acme/api:v1"),
        "{}",
        summary.message
    );
    assert_eq!(platform.running(), "v1");
    assert!(log.lock().unwrap().is_empty(), "nothing was staged");
}
