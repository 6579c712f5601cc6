//! The delivery report over a real SQLite ledger seeded with 2,000 runs, checked against
//! figures computed by hand from the seeding pattern.

#![allow(clippy::unwrap_used)]

use shipgate_ledger::{DeploymentRecord, Ledger, NewRun};
use shipgate_monitor::report::from_ledger;

const HOUR: i64 = 3_600_000;
const START: i64 = 1_763_856_000_000; // 2025-11-23T00:00:00Z

/// Every block of ten hourly runs, each 60 s long.
const PATTERN: [&str; 10] = [
    "succeeded",
    "succeeded",
    "rolled_back",
    "succeeded",
    "failed",
    "succeeded",
    "unhealthy",
    "succeeded",
    "succeeded",
    "succeeded",
];

#[tokio::test]
async fn dora_figures_match_the_hand_computed_ones() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = format!("sqlite://{}", dir.path().join("l.db").display());
    for url in [sqlite, shipgate_testkit::postgres_database().await] {
        dora_figures(&url).await;
    }
}

async fn dora_figures(url: &str) {
    let ledger = Ledger::open(url).await.unwrap();
    for i in 0..2_000_i64 {
        let id = format!("run-{i:05}");
        let started = START + i * HOUR;
        ledger
            .start_run(&NewRun {
                id: id.clone(),
                app: "shop".into(),
                environment: "production".into(),
                image_tag: format!("v{i}"),
                owner: "ci".into(),
                host: "runner".into(),
                pid: 1,
                started_ms: started,
            })
            .await
            .unwrap();
        ledger
            .record_deployment(&DeploymentRecord {
                run_id: id.clone(),
                target: "helm".into(),
                service: "api".into(),
                from_image: None,
                to_image: format!("ghcr.io/acme/api:v{i}"),
                revision: i.to_string(),
                kind: "deploy".into(),
                verdict: "healthy".into(),
            })
            .await
            .unwrap();
        // Every 100th run also deploys `api` through a second target (still one run for
        // `api`) and a `worker`.
        if i % 100 == 0 {
            for (target, service) in [("railway", "api"), ("helm", "worker")] {
                ledger
                    .record_deployment(&DeploymentRecord {
                        run_id: id.clone(),
                        target: target.into(),
                        service: service.into(),
                        from_image: None,
                        to_image: format!("ghcr.io/acme/{service}:v{i}"),
                        revision: i.to_string(),
                        kind: "deploy".into(),
                        verdict: "healthy".into(),
                    })
                    .await
                    .unwrap();
            }
        }
        // Half the runs know their commit: made 30 minutes before the run started.
        if i % 2 == 0 {
            ledger
                .record_commit_time(&id, started - 30 * 60_000)
                .await
                .unwrap();
        }
        ledger
            .finish_run(&id, PATTERN[(i % 10) as usize], started + 60_000, None)
            .await
            .unwrap();
    }
    // A run that never finished (still running, or died) does not count.
    ledger
        .start_run(&NewRun {
            id: "run-unfinished".into(),
            app: "shop".into(),
            environment: "production".into(),
            image_tag: "v-next".into(),
            owner: "ci".into(),
            host: "runner".into(),
            pid: 1,
            started_ms: START + 1_999 * HOUR + 1,
        })
        .await
        .unwrap();
    let until = START + 2_000 * HOUR;
    let report = from_ledger(&ledger, START, until).await.unwrap();
    assert_eq!(report.environments.len(), 1);
    let e = &report.environments[0];
    // 200 blocks: 7 succeeded, 1 rolled back, 1 unhealthy, 1 failed each.
    assert_eq!(
        (e.attempts, e.deployments, e.change_failures),
        (2_000, 1_400, 400)
    );
    // 1,400 deployments over 2,000 hours = 83.33 days.
    assert!(
        (e.deployments_per_day - 16.8).abs() < 1e-9,
        "{}",
        e.deployments_per_day
    );
    // 400 change failures over 1,800 runs that changed production.
    assert!((e.change_failure_rate.unwrap() - 400.0 / 1_800.0).abs() < 1e-12);
    assert!((e.success_rate.unwrap() - 0.7).abs() < 1e-12);
    assert!((e.average_duration_ms.unwrap() - 60_000.0).abs() < 1e-6);
    // rolled_back: restored by its own rollback, 60 s. unhealthy at hour h: restored by the
    // succeeded run at h+1, which ends 1 h 60 s after h. Mean: (60 + 3,660) / 2 s = 1,860 s.
    assert!((e.mean_time_to_restore_ms.unwrap() - 1_860_000.0).abs() < 1e-6);
    assert_eq!(e.unrestored_failures, 0);
    // Commit to live: 30 min before the start + the 60 s run.
    assert!((e.lead_time_ms.unwrap() - 1_860_000.0).abs() < 1e-6);
    assert_eq!(e.services["api"].attempts, 2_000);
    assert_eq!(e.services["api"].change_failures, 400);
    // Runs 0, 100, …, 1,900 (pattern position 0: succeeded).
    assert_eq!(
        (
            e.services["worker"].attempts,
            e.services["worker"].deployments,
            e.services["worker"].change_failures
        ),
        (20, 20, 0)
    );

    let markdown = report.to_markdown();
    assert!(
        markdown
            .contains("| shop | production | 16.80 | 31m | 22.2 % | 31m | 1m | 70.0 % | 2000 |"),
        "{markdown}"
    );

    // A window that starts later sees only the runs started in it.
    let later = from_ledger(&ledger, START + 1_990 * HOUR, until)
        .await
        .unwrap();
    assert_eq!(later.environments[0].attempts, 10);
    // A window that ends right after an unhealthy run (hour 1,996): the run that restored it
    // came after the window, and it still counts as restored.
    let cut = from_ledger(&ledger, START + 1_990 * HOUR, START + 1_996 * HOUR)
        .await
        .unwrap();
    let e = &cut.environments[0];
    assert_eq!(
        (e.attempts, e.change_failures, e.unrestored_failures),
        (7, 2, 0)
    );
    assert!((e.mean_time_to_restore_ms.unwrap() - 1_860_000.0).abs() < 1e-6);
    // A window starting mid-hour (its first, partial day read from the runs themselves).
    let mid = from_ledger(&ledger, START + 1_990 * HOUR + 1_800_000, until)
        .await
        .unwrap();
    assert_eq!(mid.environments[0].attempts, 9);
}
