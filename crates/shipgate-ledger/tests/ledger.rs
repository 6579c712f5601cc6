//! The ledger on a real SQLite file: runs, steps, deployments, and the deploy lock under
//! contention, expiry and dead holders.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use shipgate_ledger::{DeploymentRecord, Ledger, LedgerError, LockRequest, NewRun, StepRecord};
use tokio_util::sync::CancellationToken;

fn url(dir: &tempfile::TempDir) -> String {
    format!("sqlite://{}", dir.path().join("nested/ledger.db").display())
}

/// Every backend: a SQLite file and a Postgres database.
async fn backends(dir: &tempfile::TempDir) -> Vec<String> {
    vec![url(dir), shipgate_testkit::postgres_database().await]
}

fn run(id: &str, started_ms: i64) -> NewRun {
    NewRun {
        id: id.into(),
        app: "demo".into(),
        environment: "production".into(),
        image_tag: "v1".into(),
        owner: "ci".into(),
        host: "runner-1".into(),
        pid: 1,
        started_ms,
    }
}

fn lock(run_id: &str, host: &str, pid: i64, ttl: Duration) -> LockRequest {
    LockRequest {
        app: "demo".into(),
        environment: "production".into(),
        run_id: run_id.into(),
        owner: "ci".into(),
        host: host.into(),
        pid,
        reason: format!("deploy by {run_id}"),
        ttl,
        supersede: false,
    }
}

const QUIET: &(dyn Fn(&shipgate_ledger::LockWait) + Send + Sync) = &|_| {};

#[tokio::test]
async fn runs_steps_and_deployments_round_trip_and_migrations_are_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    for url in backends(&dir).await {
        round_trip(&url).await;
    }
}

async fn round_trip(url: &str) {
    let ledger = Ledger::open(url).await.unwrap();
    let again = Ledger::open(url).await.unwrap();

    ledger.start_run(&run("r1", 1_000)).await.unwrap();
    ledger.start_run(&run("r2", 2_000)).await.unwrap();
    ledger
        .record_step(
            "r2",
            &StepRecord {
                seq: 0,
                name: "deploy local".into(),
                started_ms: 2_000,
                finished_ms: 2_500,
                outcome: "ok".into(),
                detail: "healthy".into(),
            },
        )
        .await
        .unwrap();
    for kind in ["deploy", "rollback"] {
        ledger
            .record_deployment(&DeploymentRecord {
                run_id: "r2".into(),
                target: "local".into(),
                service: "api".into(),
                from_image: Some("demo/api:v1".into()),
                to_image: "demo/api:v2".into(),
                revision: "2".into(),
                kind: kind.into(),
                verdict: "healthy".into(),
            })
            .await
            .unwrap();
    }
    ledger
        .finish_run("r2", "rolled_back", 3_000, Some(".shipgate/summary.json"))
        .await
        .unwrap();

    let runs = again.runs(Some("demo"), 10).await.unwrap();
    assert_eq!(
        runs.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        ["r2", "r1"]
    );
    assert_eq!(runs[0].outcome.as_deref(), Some("rolled_back"));
    assert_eq!(runs[1].outcome, None);
    let (shown, steps, deployments) = again.run("r2").await.unwrap().unwrap();
    assert_eq!(
        shown.summary_path.as_deref(),
        Some(".shipgate/summary.json")
    );
    assert_eq!(steps[0].name, "deploy local");
    assert_eq!(
        deployments
            .iter()
            .map(|d| d.kind.as_str())
            .collect::<Vec<_>>(),
        ["deploy", "rollback"]
    );
    assert!(again.run("nope").await.unwrap().is_none());
    assert!(again.runs(Some("other"), 10).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_held_lock_makes_the_next_run_wait_then_time_out_naming_the_holder() {
    let dir = tempfile::tempdir().unwrap();
    for url in backends(&dir).await {
        held_lock(&url).await;
    }
}

async fn held_lock(url: &str) {
    let ledger = Ledger::open(url).await.unwrap();
    let cancel = CancellationToken::new();
    let me = std::process::id() as i64;
    ledger
        .acquire_lock(
            &lock("r1", "runner-1", me, Duration::from_secs(60)),
            Duration::from_secs(1),
            QUIET,
            &cancel,
        )
        .await
        .unwrap();

    let waits = Arc::new(AtomicUsize::new(0));
    let counter = waits.clone();
    let progress = move |_: &shipgate_ledger::LockWait| {
        counter.fetch_add(1, Ordering::SeqCst);
    };
    let err = ledger
        .acquire_lock(
            &lock("r2", "runner-1", me, Duration::from_secs(60)),
            Duration::from_millis(600),
            &progress,
            &cancel,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, LedgerError::LockTimeout { holder, .. } if holder.run_id == "r1"),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("still held by run r1 (ci on runner-1"),
        "{err}"
    );
    assert!(
        waits.load(Ordering::SeqCst) >= 1,
        "waiting reports progress"
    );

    assert!(
        ledger
            .release_lock("demo", "production", "r1")
            .await
            .unwrap()
    );
    ledger
        .acquire_lock(
            &lock("r2", "runner-1", me, Duration::from_secs(60)),
            Duration::from_secs(1),
            QUIET,
            &cancel,
        )
        .await
        .unwrap();
    assert_eq!(
        ledger
            .lock_status("demo", "production")
            .await
            .unwrap()
            .unwrap()
            .run_id,
        "r2"
    );
}

#[tokio::test]
async fn stale_locks_are_recovered_expired_or_with_a_dead_holder_on_this_host() {
    let dir = tempfile::tempdir().unwrap();
    for url in backends(&dir).await {
        stale_locks(&url).await;
    }
}

async fn stale_locks(url: &str) {
    let ledger = Ledger::open(url).await.unwrap();
    let cancel = CancellationToken::new();
    let me = std::process::id() as i64;

    // Expired: the holder stopped renewing.
    ledger
        .acquire_lock(
            &lock("r1", "elsewhere", 1, Duration::ZERO),
            Duration::from_secs(1),
            QUIET,
            &cancel,
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let notes = ledger
        .acquire_lock(
            &lock("r2", "runner-1", me, Duration::from_secs(60)),
            Duration::from_secs(1),
            QUIET,
            &cancel,
        )
        .await
        .unwrap();
    assert!(
        notes[0].contains("recovered the lock of run r1") && notes[0].contains("expired"),
        "{notes:?}"
    );

    // Dead holder on this host: a pid that cannot exist.
    ledger.force_release("demo", "production").await.unwrap();
    ledger
        .acquire_lock(
            &lock("r3", "runner-1", 999_999_999, Duration::from_secs(600)),
            Duration::from_secs(1),
            QUIET,
            &cancel,
        )
        .await
        .unwrap();
    let notes = ledger
        .acquire_lock(
            &lock("r4", "runner-1", me, Duration::from_secs(60)),
            Duration::from_secs(1),
            QUIET,
            &cancel,
        )
        .await
        .unwrap();
    assert!(
        notes[0].contains("its process 999999999 on this host is gone"),
        "{notes:?}"
    );

    // The run that died is marked aborted once its lock is gone.
    ledger.start_run(&run("r3", 10)).await.unwrap();
    let abandoned = ledger
        .abandon_dead_runs("demo", "production", 20)
        .await
        .unwrap();
    assert_eq!(abandoned, ["r3"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_concurrent_deploys_hold_the_lock_one_at_a_time_and_none_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    for url in backends(&dir).await {
        concurrent(url).await;
    }
}

async fn concurrent(url: String) {
    Ledger::open(&url).await.unwrap();
    let inside = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for i in 0..10 {
        let (url, inside, most, done) = (url.clone(), inside.clone(), most.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            // A ledger per task, like separate processes.
            let ledger = Ledger::open(&url).await.unwrap();
            let id = format!("r{i}");
            let me = std::process::id() as i64;
            ledger
                .acquire_lock(
                    &lock(&id, "runner-1", me, Duration::from_secs(60)),
                    Duration::from_secs(60),
                    QUIET,
                    &CancellationToken::new(),
                )
                .await
                .unwrap();
            let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
            most.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(20)).await;
            inside.fetch_sub(1, Ordering::SeqCst);
            assert!(
                ledger
                    .release_lock("demo", "production", &id)
                    .await
                    .unwrap()
            );
            done.fetch_add(1, Ordering::SeqCst);
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(most.load(Ordering::SeqCst), 1);
    assert_eq!(done.load(Ordering::SeqCst), 10);
}

#[tokio::test]
async fn bad_urls_are_rejected_without_their_password() {
    let err = Ledger::open("mysql://app:s3cret@db/ledger")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("must start with sqlite: or postgres://") && !err.contains("s3cret"),
        "{err}"
    );
    let err = Ledger::open("postgres://app:s3cret@127.0.0.1:1/ledger")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        !err.contains("s3cret")
            && err.contains("cannot open the ledger Postgres 127.0.0.1:1/ledger"),
        "{err}"
    );
}

async fn open_error(path: &std::path::Path) -> String {
    Ledger::open(&format!("sqlite://{}", path.display()))
        .await
        .unwrap_err()
        .to_string()
}

/// A ledger path that is a directory, or a file that is not a SQLite database, is refused at
/// once with the path and what to do, and the file is left as it was.
#[tokio::test]
async fn a_directory_or_a_corrupt_file_is_named_and_refused() {
    let dir = tempfile::tempdir().unwrap();
    let err = Ledger::open(&format!("sqlite://{}", dir.path().display()))
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, LedgerError::Open { .. }), "{err:?}");
    assert!(
        text.contains(&format!("SQLite file {}", dir.path().display()))
            && text.contains("is a directory")
            && text.contains("ledger.db"),
        "{text}"
    );

    let corrupt = dir.path().join("ledger.db");
    let garbage =
        b"this is not a database, it is a text file that happens to be here\n".repeat(100);
    std::fs::write(&corrupt, &garbage).unwrap();
    let text = open_error(&corrupt).await;
    assert!(
        text.contains(&corrupt.display().to_string())
            && text.contains("not a SQLite database")
            && text.contains("move it aside"),
        "{text}"
    );
    assert_eq!(std::fs::read(&corrupt).unwrap(), garbage);

    // A valid header over pages that are garbage: SQLite itself finds it unreadable.
    let mut damaged = b"SQLite format 3\0".to_vec();
    damaged.extend(std::iter::repeat_n(0xa5_u8, 8192));
    std::fs::write(&corrupt, &damaged).unwrap();
    let text = open_error(&corrupt).await;
    assert!(
        text.contains(&corrupt.display().to_string())
            && text.contains("not a readable SQLite database"),
        "{text}"
    );
}

#[tokio::test]
async fn last_known_good_and_gate_verdicts_for_the_rollback_resolver() {
    let dir = tempfile::tempdir().unwrap();
    for url in backends(&dir).await {
        good_and_failed(&url).await;
    }
}

async fn good_and_failed(url: &str) {
    let ledger = Ledger::open(url).await.unwrap();
    // v1 succeeded, v2 failed its gate and was rolled back, v3 never became healthy; v4 failed
    // for a transient reason, then deployed again and passed; v5 failed its gate and the run
    // was interrupted during its rollback (aborted).
    for (id, tag, started, verdict, outcome) in [
        ("g1", "v1", 1_000, "healthy", "succeeded"),
        ("g2", "v2", 2_000, "healthy", "rolled_back"),
        ("g3", "v3", 3_000, "failed", "failed"),
        ("g4", "v4", 4_000, "timed_out", "failed"),
        ("g5", "v4", 5_000, "healthy", "succeeded"),
        ("g6", "v5", 6_000, "healthy", "aborted"),
    ] {
        let mut new = run(id, started);
        new.image_tag = tag.into();
        ledger.start_run(&new).await.unwrap();
        ledger
            .record_deployment(&DeploymentRecord {
                run_id: id.into(),
                target: "helm".into(),
                service: "api".into(),
                from_image: None,
                to_image: format!("ghcr.io/acme/api:{tag}"),
                revision: id.into(),
                kind: "deploy".into(),
                verdict: verdict.into(),
            })
            .await
            .unwrap();
        if id == "g6" {
            // Its rollback to v1 was interrupted: no verdict on v1.
            ledger
                .record_deployment(&DeploymentRecord {
                    run_id: id.into(),
                    target: "helm".into(),
                    service: "api".into(),
                    from_image: Some("ghcr.io/acme/api:v5".into()),
                    to_image: "ghcr.io/acme/api:v1".into(),
                    revision: "g6-back".into(),
                    kind: "rollback".into(),
                    verdict: "cancelled".into(),
                })
                .await
                .unwrap();
        }
        if id == "g2" {
            // The rollback went back to v1, healthy, and passed its smoke.
            ledger
                .record_deployment(&DeploymentRecord {
                    run_id: id.into(),
                    target: "helm".into(),
                    service: "api".into(),
                    from_image: Some("ghcr.io/acme/api:v2".into()),
                    to_image: "ghcr.io/acme/api:v1".into(),
                    revision: "g2-back".into(),
                    kind: "rollback".into(),
                    verdict: "healthy".into(),
                })
                .await
                .unwrap();
        }
        ledger
            .finish_run(id, outcome, started + 500, None)
            .await
            .unwrap();
    }
    let passed = |tag: &'static str| {
        let ledger = ledger.clone();
        async move {
            let verdicts = ledger
                .gate_verdicts("demo", "production", &format!("ghcr.io/acme/api:{tag}"))
                .await
                .unwrap();
            verdicts
                .iter()
                .map(|v| (v.run_id.clone(), v.passed()))
                .collect::<Vec<_>>()
        }
    };
    // The most recent verdict decides: v1's latest is the healthy rollback of g2.
    assert_eq!(passed("v1").await, [("g2".to_owned(), true)]);
    assert_eq!(passed("v2").await, [("g2".to_owned(), false)]);
    assert_eq!(passed("v3").await, [("g3".to_owned(), false)]);
    assert_eq!(passed("v4").await, [("g5".to_owned(), true)]);
    assert_eq!(passed("v5").await, [("g6".to_owned(), false)]);
    assert!(passed("v9").await.is_empty());
    let v5 = ledger
        .gate_verdicts("demo", "production", "ghcr.io/acme/api:v5")
        .await
        .unwrap();
    assert_eq!(
        v5[0].describe(),
        "deployed on helm in run g6 (healthy), which ended aborted"
    );
    assert!(
        ledger
            .gate_verdicts("demo", "staging", "ghcr.io/acme/api:v1")
            .await
            .unwrap()
            .is_empty()
    );
    let good = ledger
        .good_releases("demo", "production", 10)
        .await
        .unwrap();
    let tags: Vec<&str> = good.iter().map(|(run, _)| run.image_tag.as_str()).collect();
    assert_eq!(tags, ["v4", "v1"]);
    assert_eq!(
        good[1].1,
        vec![("api".to_owned(), "ghcr.io/acme/api:v1".to_owned())]
    );
    assert!(
        ledger
            .good_releases("demo", "staging", 10)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn the_outbox_claims_each_message_once_and_retries_failures_later() {
    let dir = tempfile::tempdir().unwrap();
    for url in backends(&dir).await {
        outbox(&url).await;
    }
}

async fn outbox(url: &str) {
    use shipgate_ledger::OutboxMessage;
    let ledger = Ledger::open(url).await.unwrap();
    let other = Ledger::open(url).await.unwrap();
    for channel in ["slack", "ops-webhook"] {
        ledger
            .enqueue(
                &OutboxMessage {
                    id: format!("r1:{channel}"),
                    run_id: "r1".into(),
                    channel: channel.into(),
                    payload: "{}".into(),
                },
                1_000,
            )
            .await
            .unwrap();
    }
    // Two workers at the same moment: each message goes to exactly one.
    let (a, b) = tokio::join!(
        ledger.claim_due(1_000, 10, 30_000),
        other.claim_due(1_000, 10, 30_000)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.len() + b.len(), 2, "{a:?} {b:?}");
    assert!(
        ledger
            .claim_due(2_000, 10, 30_000)
            .await
            .unwrap()
            .is_empty(),
        "claimed ones are not handed out again"
    );

    ledger.delivered("r1:slack", 2_000).await.unwrap();
    ledger
        .delivery_failed("r1:ops-webhook", "HTTP 503", 61_000)
        .await
        .unwrap();
    assert!(
        ledger
            .claim_due(60_000, 10, 30_000)
            .await
            .unwrap()
            .is_empty(),
        "not due before its retry time"
    );
    let retry = ledger.claim_due(61_000, 10, 30_000).await.unwrap();
    assert_eq!(retry.len(), 1);
    assert_eq!(
        (retry[0].channel.as_str(), retry[0].attempts),
        ("ops-webhook", 1)
    );
    // A claim that is never settled (the worker died) expires and the message comes back.
    let again = other.claim_due(61_000 + 30_001, 10, 30_000).await.unwrap();
    assert_eq!(again.len(), 1);
    let undelivered = ledger.undelivered().await.unwrap();
    assert_eq!(undelivered.len(), 1);
    assert_eq!(undelivered[0].3.as_deref(), Some("HTTP 503"));
}

#[tokio::test]
async fn monitor_targets_are_claimed_once_fenced_and_keep_their_state() {
    let dir = tempfile::tempdir().unwrap();
    for url in backends(&dir).await {
        monitor_targets(&url).await;
    }
}

async fn monitor_targets(url: &str) {
    use shipgate_ledger::{MonitorEvent, MonitorRecord};
    let ledger = Ledger::open(url).await.unwrap();
    let targets: Vec<(String, String)> = (0..40)
        .map(|i| ("production".to_owned(), format!("t{i:02}")))
        .collect();
    let ids = ledger.monitor_register("demo", &targets).await.unwrap();
    assert_eq!(ids[0], "demo/production/t00");

    // Eight replicas (separate pools) claim at the same moment, five at a time: every target
    // goes to exactly one of them.
    let mut replicas = Vec::new();
    for _ in 0..8 {
        replicas.push(Ledger::open(url).await.unwrap());
    }
    let mut claims = Vec::new();
    for (i, replica) in replicas.iter().enumerate() {
        let replica = replica.clone();
        claims.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let batch = replica
                    .monitor_claim_due("demo", 1_000, 5, 30_000, &format!("r{i}"))
                    .await
                    .unwrap();
                if batch.is_empty() {
                    return mine;
                }
                mine.extend(batch.into_iter().map(|t| t.id));
            }
        }));
    }
    let mut all = Vec::new();
    for claim in claims {
        all.extend(claim.await.unwrap());
    }
    all.sort();
    assert_eq!(all, ids, "each target claimed exactly once");

    // A write from a replica that no longer holds the claim is refused (fencing).
    let record = |state: &str, next_due_ms: i64| MonitorRecord {
        state: state.into(),
        streak: 1,
        next_due_ms,
        checked_ms: 1_000,
        passed: false,
        detail: "GET /healthz → 503".into(),
        latency_ms: 120,
        failing_since_ms: Some(1_000),
        alert_opened_ms: None,
        issue_number: None,
        issue_url: None,
        last_comment_ms: None,
    };
    assert!(
        !ledger
            .monitor_record(
                "demo/production/t00",
                "nobody",
                &record("failing", 16_000),
                None
            )
            .await
            .unwrap()
    );
    // The claim expires (the replica died): another takes the target over and records it.
    let taken = ledger
        .monitor_claim_due("demo", 31_001, 100, 30_000, "survivor")
        .await
        .unwrap();
    assert_eq!(taken.len(), 40, "expired claims are claimable again");
    let event = MonitorEvent {
        target_id: "demo/production/t00".into(),
        at_ms: 31_001,
        from_state: "healthy".into(),
        to_state: "failing".into(),
        detail: "GET /healthz → 503".into(),
    };
    // Checks that finish together are written in one transaction (group commit); each is
    // fenced on its own claim.
    let (failing, passing) = (record("failing", 46_000), record("healthy", 46_000));
    assert_eq!(
        ledger
            .monitor_record_batch(
                "survivor",
                &[
                    ("demo/production/t00", &failing, Some(&event)),
                    ("demo/production/t01", &passing, None),
                ],
            )
            .await
            .unwrap(),
        [true, true]
    );
    assert_eq!(
        ledger
            .monitor_record_batch("nobody", &[("demo/production/t02", &passing, Some(&event))])
            .await
            .unwrap(),
        [false],
        "a batch writes nothing (not even the event) for a claim it does not hold"
    );
    assert!(
        ledger
            .monitor_events("demo/production/t02")
            .await
            .unwrap()
            .is_empty()
    );
    for t in &taken[1..] {
        ledger.monitor_release(&t.id, "survivor").await.unwrap();
    }
    assert!(
        ledger
            .monitor_claim_due("demo", 45_999, 100, 30_000, "x")
            .await
            .unwrap()
            .iter()
            .all(|t| t.id != "demo/production/t00"),
        "not due before its next slot"
    );

    // A restart (new pool, same targets registered again) keeps the state; a target dropped
    // from the configuration is retired.
    drop(ledger);
    let restarted = Ledger::open(url).await.unwrap();
    restarted
        .monitor_register("demo", &targets[..39])
        .await
        .unwrap();
    let rows = restarted.monitor_targets("demo").await.unwrap();
    assert_eq!(rows.len(), 39);
    let t00 = &rows[0];
    assert_eq!(
        (
            t00.state.as_str(),
            t00.streak,
            t00.next_due_ms,
            t00.checks,
            t00.failures
        ),
        ("failing", 1, 46_000, 1, 1)
    );
    assert_eq!(t00.last_passed, Some(false));
    assert_eq!(
        restarted
            .monitor_events("demo/production/t00")
            .await
            .unwrap(),
        vec![event]
    );
}

#[tokio::test]
async fn processes_opening_a_new_ledger_together_migrate_it_once() {
    let dir = tempfile::tempdir().unwrap();
    for url in backends(&dir).await {
        // Six pools at once, as monitor replicas or parallel deploy jobs starting together.
        let opens: Vec<_> = (0..6)
            .map(|_| {
                let url = url.clone();
                tokio::spawn(async move { Ledger::open(&url).await.map(|_| ()) })
            })
            .collect();
        for open in opens {
            open.await.unwrap().unwrap();
        }
    }
}

#[tokio::test]
async fn the_delivery_rollup_follows_finished_runs_and_is_backfilled_for_older_ledgers() {
    let dir = tempfile::tempdir().unwrap();
    for url in backends(&dir).await {
        delivery_rollup(&url).await;
    }
}

async fn delivery_rollup(url: &str) {
    const HOUR: i64 = 3_600_000;
    let ledger = Ledger::open(url).await.unwrap();
    let runs_of = |aggregates: &shipgate_ledger::DeliveryAggregates, outcome: &str| {
        aggregates
            .outcomes
            .iter()
            .find(|o| o.outcome == outcome && o.service.is_none())
            .map(|o| (o.runs, o.restored, o.restore_ms))
    };
    // An unhealthy release at 10:00 is waiting for a good one.
    ledger.start_run(&run("bad", 10 * HOUR)).await.unwrap();
    ledger
        .record_deployment(&DeploymentRecord {
            run_id: "bad".into(),
            target: "helm".into(),
            service: "api".into(),
            from_image: None,
            to_image: "ghcr.io/acme/api:v2".into(),
            revision: "2".into(),
            kind: "deploy".into(),
            verdict: "healthy".into(),
        })
        .await
        .unwrap();
    ledger
        .finish_run("bad", "unhealthy", 10 * HOUR + 60_000, None)
        .await
        .unwrap();
    let window = (0, 48 * HOUR);
    let before = ledger
        .delivery_aggregates(window.0, window.1)
        .await
        .unwrap();
    assert_eq!(runs_of(&before, "unhealthy"), Some((1, 0, 0)));
    // The next good release, finished at 12:01, restores it (2 h 1 min after it started);
    // finishing a run twice changes nothing.
    ledger.start_run(&run("good", 12 * HOUR)).await.unwrap();
    // Its commit was made at 11:00: a lead time of 1 h 1 min.
    ledger.record_commit_time("good", 11 * HOUR).await.unwrap();
    for _ in 0..2 {
        ledger
            .finish_run("good", "succeeded", 12 * HOUR + 60_000, None)
            .await
            .unwrap();
    }
    let after = ledger
        .delivery_aggregates(window.0, window.1)
        .await
        .unwrap();
    assert_eq!(
        runs_of(&after, "unhealthy"),
        Some((1, 1, 2 * HOUR + 60_000))
    );
    assert_eq!(runs_of(&after, "succeeded"), Some((1, 0, 0)));
    let good = after
        .outcomes
        .iter()
        .find(|o| o.outcome == "succeeded" && o.service.is_none())
        .unwrap();
    assert_eq!((good.lead_runs, good.lead_time_ms), (1, HOUR + 60_000));
    // The last deploy of the environment is the last finished run, not one still running.
    ledger.start_run(&run("running", 13 * HOUR)).await.unwrap();
    let last: Vec<String> = ledger
        .last_finished_runs("demo")
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(last, ["good"]);
    let api = after
        .outcomes
        .iter()
        .find(|o| o.service.as_deref() == Some("api"))
        .unwrap();
    assert_eq!((api.outcome.as_str(), api.runs), ("unhealthy", 1));
    // A window inside one day (no whole day: read from the runs) gives the same counts.
    let partial = ledger
        .delivery_aggregates(9 * HOUR, 13 * HOUR)
        .await
        .unwrap();
    assert_eq!(partial, after);

    // A ledger from before the rollup: its migration builds it from the runs.
    drop(ledger);
    shipgate_testkit::forget_delivery_rollup(url).await;
    let migrated = Ledger::open(url).await.unwrap();
    // Everything but lead times, which such a ledger never knew.
    let mut expected = after.clone();
    for outcome in &mut expected.outcomes {
        (outcome.lead_runs, outcome.lead_time_ms) = (0, 0);
    }
    assert_eq!(
        migrated
            .delivery_aggregates(window.0, window.1)
            .await
            .unwrap(),
        expected
    );
}

#[tokio::test]
async fn a_run_without_the_lock_is_recorded_finished_at_once_and_finishing_twice_says_who_won() {
    let dir = tempfile::tempdir().unwrap();
    for url in backends(&dir).await {
        let ledger = Ledger::open(&url).await.unwrap();
        let step = StepRecord {
            seq: 0,
            name: "lock".into(),
            started_ms: 1_000,
            finished_ms: 2_000,
            outcome: "failed".into(),
            detail: "deploy lock still held".into(),
        };
        ledger
            .record_run_without_lock(&run("waited", 1_000), &[step], "lock_timeout", 2_000)
            .await
            .unwrap();
        let (record, steps, _) = ledger.run("waited").await.unwrap().unwrap();
        assert_eq!(
            (record.outcome.as_deref(), record.finished_ms),
            (Some("lock_timeout"), Some(2_000))
        );
        assert_eq!(steps.len(), 1);
        // Nobody takes it for a dead run.
        assert!(
            ledger
                .abandon_dead_runs("demo", "production", 3_000)
                .await
                .unwrap()
                .is_empty()
        );
        // finish_run reports the outcome that stands when the run was already finished.
        ledger.start_run(&run("overlap", 4_000)).await.unwrap();
        assert_eq!(
            ledger
                .abandon_dead_runs("demo", "production", 5_000)
                .await
                .unwrap(),
            ["overlap"]
        );
        assert_eq!(
            ledger
                .finish_run("overlap", "succeeded", 6_000, None)
                .await
                .unwrap()
                .as_deref(),
            Some("aborted")
        );
    }
}

/// Deploys that wait for the lock give up as superseded when a newer one queues behind them:
/// with the lock held, v1..v4 queue in turn; only the newest waits on, the others give up,
/// and when the holder releases, v4 takes the lock. A run that started after a waiter queued
/// and finished supersedes it too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_deploys_are_superseded_by_a_newer_one_queued_behind_them() {
    let dir = tempfile::tempdir().unwrap();
    for url in backends(&dir).await {
        let ledger = Ledger::open(&url).await.unwrap();
        ledger
            .acquire_lock(
                &lock(
                    "holder",
                    "runner-1",
                    i64::from(std::process::id()),
                    Duration::from_secs(60),
                ),
                Duration::from_secs(1),
                QUIET,
                &CancellationToken::new(),
            )
            .await
            .unwrap();
        let mut waiters = Vec::new();
        for n in 1..=4 {
            let ledger = ledger.clone();
            let mut request = lock(
                &format!("v{n}"),
                "runner-1",
                i64::from(std::process::id()),
                Duration::from_secs(60),
            );
            request.supersede = true;
            // Each one is in the queue before the next starts (queued in release order).
            let queued = Arc::new(tokio::sync::Notify::new());
            let signal = queued.clone();
            let progress = move |_: &shipgate_ledger::LockWait| signal.notify_one();
            waiters.push(tokio::spawn(async move {
                ledger
                    .acquire_lock(
                        &request,
                        Duration::from_secs(60),
                        &progress,
                        &CancellationToken::new(),
                    )
                    .await
            }));
            queued.notified().await;
        }
        ledger
            .release_lock("demo", "production", "holder")
            .await
            .unwrap();
        let mut outcomes = Vec::new();
        for waiter in waiters {
            outcomes.push(match waiter.await.unwrap() {
                Ok(_) => "acquired".to_owned(),
                Err(LedgerError::Superseded { by_run, .. }) => format!("superseded by {by_run}"),
                Err(other) => format!("{other}"),
            });
        }
        assert_eq!(
            outcomes,
            [
                "superseded by v4",
                "superseded by v4",
                "superseded by v4",
                "acquired"
            ],
            "{url}"
        );
        assert_eq!(
            ledger
                .lock_status("demo", "production")
                .await
                .unwrap()
                .unwrap()
                .run_id,
            "v4"
        );
    }
}

#[tokio::test]
async fn check_latencies_roll_up_per_five_minutes_and_old_buckets_are_pruned() {
    let dir = tempfile::tempdir().unwrap();
    for url in backends(&dir).await {
        latency_rollups(&url).await;
    }
}

async fn latency_rollups(url: &str) {
    use shipgate_ledger::{LATENCY_BUCKET_MS, MonitorRecord};
    let ledger = Ledger::open(url).await.unwrap();
    let id = ledger
        .monitor_register("demo", &[("production".into(), "api".into())])
        .await
        .unwrap()
        .remove(0);
    let day0 = 1_796_601_600_000; // a bucket boundary
    // Three checks in the first bucket, one in the bucket an hour later.
    for (at, latency_ms, passed) in [
        (day0, 12, true),
        (day0 + 60_000, 480, true),
        (day0 + 240_000, 3_000, false),
        (day0 + 3_600_000, 40, true),
    ] {
        let claimed = ledger
            .monitor_claim_due("demo", at, 1, 60_000, "r1")
            .await
            .unwrap();
        assert_eq!(claimed.len(), 1, "{url}: due at {at}");
        let record = MonitorRecord {
            state: "healthy".into(),
            streak: 0,
            next_due_ms: at + 1,
            checked_ms: at,
            passed,
            detail: "checked".into(),
            latency_ms,
            failing_since_ms: None,
            alert_opened_ms: None,
            issue_number: None,
            issue_url: None,
            last_comment_ms: None,
        };
        assert!(
            ledger
                .monitor_record(&id, "r1", &record, None)
                .await
                .unwrap()
        );
    }
    // A write from a replica that lost the claim counts nothing.
    let stale = ledger
        .monitor_record(
            &id,
            "r2",
            &MonitorRecord {
                state: "healthy".into(),
                streak: 0,
                next_due_ms: 0,
                checked_ms: day0,
                passed: true,
                detail: String::new(),
                latency_ms: 1,
                failing_since_ms: None,
                alert_opened_ms: None,
                issue_number: None,
                issue_url: None,
                last_comment_ms: None,
            },
            None,
        )
        .await
        .unwrap();
    assert!(!stale);

    let all = ledger.monitor_latency(day0).await.unwrap();
    assert_eq!(all.len(), 1, "{url}");
    let stats = &all[0];
    assert_eq!(stats.target_id, "demo/production/api");
    assert_eq!((stats.checks, stats.failures), (4, 1), "{url}");
    assert_eq!(stats.total_ms, 12 + 480 + 3_000 + 40);
    assert_eq!(stats.max_ms, 3_000);
    // 12 ms ≤ 25, 40 ≤ 50, 480 ≤ 500, 3 s ≤ 5 s.
    assert_eq!(stats.histogram, [0, 1, 1, 0, 0, 1, 0, 0, 1, 0, 0], "{url}");
    // Since the second bucket: the later check alone.
    let later = ledger
        .monitor_latency(day0 + LATENCY_BUCKET_MS)
        .await
        .unwrap();
    assert_eq!(later[0].checks, 1, "{url}");
    // Hourly: the first three checks in one hour, the last in the next.
    let hourly = ledger.monitor_latency_hourly(day0).await.unwrap();
    assert_eq!(
        (hourly[0].checks, hourly[0].histogram),
        (stats.checks, stats.histogram),
        "{url}"
    );
    let next_hour = ledger
        .monitor_latency_hourly(day0 + 3_600_000)
        .await
        .unwrap();
    assert_eq!(next_hour[0].checks, 1, "{url}");
    // Retention: buckets that started before the cut go (the first 5 minutes and the first
    // hour), the later ones stay.
    let pruned = ledger
        .monitor_prune_latency(day0 + LATENCY_BUCKET_MS)
        .await
        .unwrap();
    assert_eq!(pruned, 2, "{url}");
    let kept = ledger.monitor_latency(0).await.unwrap();
    assert_eq!(kept[0].checks, 1, "{url}");
    assert_eq!(kept[0].max_ms, 40);
    assert_eq!(ledger.monitor_latency_hourly(0).await.unwrap()[0].checks, 1);
}

#[tokio::test]
async fn the_dashboard_reads_environments_what_runs_now_and_stored_summaries() {
    let dir = tempfile::tempdir().unwrap();
    for url in backends(&dir).await {
        dashboard_reads(&url).await;
    }
}

async fn dashboard_reads(url: &str) {
    use shipgate_ledger::TimelineQuery;
    let ledger = Ledger::open(url).await.unwrap();
    assert!(ledger.environments().await.unwrap().is_empty());
    let deployment = |run_id: &str, to: &str, kind: &str, verdict: &str| DeploymentRecord {
        run_id: run_id.into(),
        target: "helm".into(),
        service: "api".into(),
        from_image: None,
        to_image: to.into(),
        revision: "1".into(),
        kind: kind.into(),
        verdict: verdict.into(),
    };
    for (id, env, started, rows) in [
        (
            "a1",
            "production",
            1_000,
            vec![deployment("a1", "api:v1", "deploy", "healthy")],
        ),
        (
            "a2",
            "production",
            2_000,
            vec![
                deployment("a2", "api:v2", "deploy", "healthy"),
                deployment("a2", "api:v1", "rollback", "healthy"),
            ],
        ),
        (
            "a3",
            "production",
            3_000,
            vec![deployment("a3", "api:v3", "deploy", "failed")],
        ),
        (
            "b1",
            "staging",
            1_500,
            vec![deployment("b1", "api:v9", "deploy", "healthy")],
        ),
    ] {
        let mut new = run(id, started);
        new.environment = env.into();
        ledger.start_run(&new).await.unwrap();
        for row in rows {
            ledger.record_deployment(&row).await.unwrap();
        }
        ledger
            .finish_run(id, "succeeded", started + 10, None)
            .await
            .unwrap();
    }
    assert_eq!(
        ledger.environments().await.unwrap(),
        [
            ("demo".to_owned(), "production".to_owned()),
            ("demo".to_owned(), "staging".to_owned())
        ],
        "{url}"
    );
    // Production runs v1: a2 rolled back to it, a3's deploy failed (it never went live).
    let live = ledger.live_releases("demo", "production").await.unwrap();
    assert_eq!(live.len(), 1, "{url}");
    assert_eq!(
        (live[0].image.as_str(), live[0].run_id.as_str()),
        ("api:v1", "a2")
    );
    assert_eq!(live[0].kind, "rollback");
    assert_eq!(
        ledger.latest_runs("demo", "production", 1).await.unwrap()[0].id,
        "a3"
    );
    // A ledger from before this table: the migration backfills the same answer.
    drop(ledger);
    shipgate_testkit::forget_dashboard_tables(url).await;
    let ledger = Ledger::open(url).await.unwrap();
    let backfilled = ledger.live_releases("demo", "production").await.unwrap();
    assert_eq!(backfilled.len(), 1, "{url}");
    assert_eq!(
        (
            backfilled[0].image.as_str(),
            backfilled[0].run_id.as_str(),
            backfilled[0].kind.as_str()
        ),
        ("api:v1", "a2", "rollback"),
        "{url}"
    );
    assert_eq!(
        ledger.live_releases("demo", "staging").await.unwrap()[0].image,
        "api:v9"
    );

    let query = TimelineQuery {
        app: "demo".into(),
        environment: "production".into(),
        since_ms: 0,
        until_ms: 10_000,
        service: None,
        outcome: None,
    };
    let runs = ledger.timeline(&query, 2).await.unwrap();
    let ids: Vec<&str> = runs.iter().map(|r| r.run.id.as_str()).collect();
    assert_eq!(ids, ["a3", "a2"], "{url}: newest first, limited");
    assert_eq!((runs[1].deploys, runs[1].rollbacks), (1, 1));
    let days = ledger.timeline_days(&query).await.unwrap();
    assert_eq!(days.iter().map(|d| d.runs).sum::<i64>(), 3);
    let other = TimelineQuery {
        service: Some("worker".into()),
        ..query
    };
    assert!(ledger.timeline(&other, 10).await.unwrap().is_empty());

    // Per day, the same counts as the report's aggregates over the window.
    let days = ledger
        .delivery_days("demo", "production", 0, 3 * 86_400_000)
        .await
        .unwrap();
    let runs: i64 = days.iter().map(|d| d.count.runs).sum();
    assert_eq!(runs, 3, "{url}");
    assert!(
        days.iter().all(|d| d.day_ms == 0),
        "{url}: every run started on day 0"
    );
    assert_eq!(ledger.run_summary("a1").await.unwrap(), None);
    ledger.record_summary("a1", "{\"v\":1}").await.unwrap();
    ledger.record_summary("a1", "{\"v\":2}").await.unwrap();
    assert_eq!(
        ledger.run_summary("a1").await.unwrap().as_deref(),
        Some("{\"v\":2}")
    );
}
