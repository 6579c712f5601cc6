//! A seeded ledger for the dashboard's tests, written through the ledger's own API (as the
//! pipeline and the monitor write it), and a dashboard served on a loopback port.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::json;
use shipgate_core::{Redactor, Secret};
use shipgate_dashboard::{Access, Dashboard};
use shipgate_ledger::{
    DeploymentRecord, Ledger, LockRequest, MonitorRecord, NewRun, StepRecord, now_ms,
};
use tokio_util::sync::CancellationToken;

pub const MINUTE: i64 = 60_000;
pub const HOUR: i64 = 60 * MINUTE;
pub const DAY: i64 = 24 * HOUR;

/// Names the seed uses; the hostile seed replaces them with markup, quotes and direction
/// marks.
#[derive(Debug, Clone)]
pub struct Names {
    pub app: String,
    pub environment: String,
    pub reason: String,
    pub detail: String,
}

impl Names {
    pub fn plain() -> Names {
        Names {
            app: "shop".into(),
            environment: "production".into(),
            reason: "smoke gate failed: 1 critical check(s) failed: orders".into(),
            detail: "GET /healthz → 200 in 12 ms".into(),
        }
    }

    /// Every shown value a would-be attack.
    pub fn hostile() -> Names {
        Names {
            app: "<script>alert('app')</script>".into(),
            environment: "prod\"'><img src=x onerror=alert(1)>".into(),
            reason: "<script>alert(\"reason\")</script> \u{202E}gnp.exe".into(),
            detail: "</td><script>alert('log')</script>\u{1b}[2K\u{2066}done".into(),
        }
    }
}

/// One run: its rows, its steps, its deployments, its summary.
pub struct SeedRun<'a> {
    pub id: &'a str,
    pub tag: &'a str,
    pub started_ms: i64,
    pub took_ms: i64,
    pub outcome: &'a str,
    /// (kind, from, to, verdict) per deployment of service `api` on target `local`.
    pub deployments: Vec<(&'a str, Option<&'a str>, &'a str, &'a str)>,
    pub strategy: &'a str,
}

pub async fn run(ledger: &Ledger, names: &Names, run: SeedRun<'_>, secret: &str) {
    ledger
        .start_run(&NewRun {
            id: run.id.into(),
            app: names.app.clone(),
            environment: names.environment.clone(),
            image_tag: run.tag.into(),
            owner: "octocat".into(),
            host: "runner-1".into(),
            pid: 42,
            started_ms: run.started_ms,
        })
        .await
        .unwrap();
    let third = run.took_ms / 3;
    for (seq, (name, outcome, detail)) in [
        ("lock", "ok", "acquired".to_owned()),
        ("deploy local", "ok", names.detail.clone()),
        (
            "smoke",
            if run.outcome == "succeeded" {
                "ok"
            } else {
                "failed"
            },
            // A step detail that quotes a URL with credentials and a server that echoed the
            // request's headers: masked on every page, in every shape.
            format!(
                "checked https://bot:{secret}@api.example.com/healthz; the server echoed {{\"authorization\": \"Bearer {secret}\"}}"
            ),
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let seq = i64::try_from(seq).unwrap();
        ledger
            .record_step(
                run.id,
                &StepRecord {
                    seq,
                    name: name.into(),
                    started_ms: run.started_ms + seq * third,
                    finished_ms: run.started_ms + (seq + 1) * third,
                    outcome: outcome.into(),
                    detail,
                },
            )
            .await
            .unwrap();
    }
    for (kind, from, to, verdict) in &run.deployments {
        ledger
            .record_deployment(&DeploymentRecord {
                run_id: run.id.into(),
                target: "local".into(),
                service: "api".into(),
                from_image: from.map(str::to_owned),
                to_image: (*to).into(),
                revision: format!("rev-{}", run.id),
                kind: (*kind).into(),
                verdict: (*verdict).into(),
            })
            .await
            .unwrap();
    }
    ledger
        .finish_run(run.id, run.outcome, run.started_ms + run.took_ms, None)
        .await
        .unwrap();
    ledger.record_strategy(run.id, run.strategy).await.unwrap();
    let summary = json!({
        "schema_version": 1,
        "run_id": run.id,
        "app": names.app,
        "environment": names.environment,
        "image_tag": run.tag,
        "outcome": run.outcome,
        // The summary is stored redacted by the pipeline; a secret the dashboard knows is
        // masked again on the way out (the second line of defence this seed exercises).
        "message": format!("{} {} (token {secret})", run.tag, run.outcome),
        "strategy": run.strategy,
        "targets": [{"target": "local", "verdict": "healthy", "services": [{"service": "api", "from": "demo/api:v0", "to": format!("demo/api:{}", run.tag)}]}],
        "smoke": {
            "passed": run.outcome == "succeeded",
            "base_url": format!("https://bot:{secret}@api.example.com/"),
            "duration_ms": 84.0,
            "checks": [
                {"name": "health", "method": "GET", "path": "/healthz", "outcome": "passed", "status": 200, "p50_ms": 12.0, "p95_ms": 18.0, "latency_ms": [12.0, 18.0]},
                {"name": "orders", "method": "GET", "path": "/api/orders", "outcome": if run.outcome == "succeeded" { "passed" } else { "failed" }, "status": 500, "p50_ms": 40.0, "p95_ms": 66.0, "latency_ms": [40.0], "failure": names.reason}
            ]
        },
        "rollback": if run.outcome == "rolled_back" { json!({
            "performed": true,
            "reasons": [names.reason, "rolling: the previous release demo/api:v1 was verified good"],
            "first_action_ms": 12.5,
            "targets": [],
            // The restored release's own gate.
            "smoke": {
                "passed": true,
                "base_url": "https://api.example.com/",
                "duration_ms": 31.0,
                "checks": [{"name": "health-after-rollback", "method": "GET", "path": "/healthz", "outcome": "passed", "status": 200, "p50_ms": 9.0, "p95_ms": 14.0, "latency_ms": [9.0, 14.0]}]
            },
        }) } else { serde_json::Value::Null },
        "links": [{"label": "Actions run", "url": "https://github.com/acme/shop/actions/runs/1"}],
    });
    ledger
        .record_summary(run.id, &summary.to_string())
        .await
        .unwrap();
}

/// The seeded story of one environment, ending at `now`: v1 succeeded, v2 rolled back to
/// v1, v3 succeeded, then a `shipgate rollback` run put v1 back (it undid v3); a monitor
/// target that is alerting with latencies, and a deploy lock held.
pub async fn story(ledger: &Ledger, names: &Names, secret: &str, now: i64) {
    let at = |hours_ago: i64| now - hours_ago * HOUR;
    let runs = [
        SeedRun {
            id: "run-1",
            tag: "v1",
            started_ms: at(48),
            took_ms: 90_000,
            outcome: "succeeded",
            deployments: vec![("deploy", None, "demo/api:v1", "healthy")],
            strategy: "rolling",
        },
        SeedRun {
            id: "run-2",
            tag: "v2",
            started_ms: at(30),
            took_ms: 120_000,
            outcome: "rolled_back",
            deployments: vec![
                ("deploy", Some("demo/api:v1"), "demo/api:v2", "healthy"),
                ("rollback", Some("demo/api:v2"), "demo/api:v1", "healthy"),
            ],
            strategy: "rolling",
        },
        SeedRun {
            id: "run-3",
            tag: "v3",
            started_ms: at(20),
            took_ms: 60_000,
            outcome: "succeeded",
            deployments: vec![("deploy", Some("demo/api:v1"), "demo/api:v3", "healthy")],
            strategy: "canary",
        },
        SeedRun {
            id: "run-4",
            tag: "v1",
            started_ms: at(10),
            took_ms: 30_000,
            outcome: "succeeded",
            deployments: vec![("rollback", Some("demo/api:v3"), "demo/api:v1", "healthy")],
            strategy: "rolling",
        },
    ];
    for r in runs {
        run(ledger, names, r, secret).await;
    }
    ledger
        .acquire_lock(
            &LockRequest {
                app: names.app.clone(),
                environment: names.environment.clone(),
                run_id: "run-5".into(),
                owner: "octocat".into(),
                host: "runner-2".into(),
                pid: 7,
                reason: names.reason.clone(),
                ttl: Duration::from_secs(3_600),
                supersede: false,
            },
            Duration::from_secs(5),
            &|_| {},
            &CancellationToken::new(),
        )
        .await
        .unwrap();
    monitor(ledger, names, secret, now).await;
}

/// A monitor target checked every 5 minutes for the last day: fast and passing, then
/// slow and failing for the last two hours (alerting).
pub async fn monitor(ledger: &Ledger, names: &Names, secret: &str, now: i64) {
    let ids = ledger
        .monitor_register(
            &names.app,
            &[(names.environment.clone(), "api-health".into())],
        )
        .await
        .unwrap();
    let id = ids[0].clone();
    let mut at = now - DAY;
    let mut i = 0;
    while at < now {
        let claimed = ledger
            .monitor_claim_due(&names.app, at, 10, 60_000, "seed")
            .await
            .unwrap();
        assert_eq!(claimed.len(), 1, "the target is due at {at}");
        let failing = at > now - 2 * HOUR;
        let record = MonitorRecord {
            state: if failing { "alerting" } else { "healthy" }.into(),
            streak: if failing { 3 } else { 0 },
            next_due_ms: at + 5 * MINUTE,
            checked_ms: at,
            passed: !failing,
            detail: if failing {
                format!("{} (https://bot:{secret}@api.example.com)", names.detail)
            } else {
                "passed".into()
            },
            latency_ms: if failing { 2_400 } else { 20 + (i % 7) * 5 },
            failing_since_ms: failing.then_some(now - 2 * HOUR),
            alert_opened_ms: failing.then_some(now - HOUR),
            issue_number: failing.then_some(12),
            issue_url: failing.then(|| "https://github.com/acme/shop/issues/12".to_owned()),
            last_comment_ms: None,
        };
        assert!(
            ledger
                .monitor_record(&id, "seed", &record, None)
                .await
                .unwrap()
        );
        at += 5 * MINUTE;
        i += 1;
    }
}

/// A long history for the charts: `days` days of runs, a few a day, most succeeding, with
/// commit times (lead time) and the occasional rollback or unhealthy release.
pub async fn history(ledger: &Ledger, names: &Names, now: i64, days: i64) {
    let mut n = 0;
    for day in (1..=days).rev() {
        let per_day = 2 + (day * 7) % 4;
        for k in 0..per_day {
            n += 1;
            let id = format!("hist-{n:05}");
            let started = now - day * DAY + k * 3 * HOUR + (n % 5) * MINUTE;
            let outcome = match n % 13 {
                3 => "rolled_back",
                7 if n % 2 == 0 => "failed",
                11 => "unhealthy",
                _ => "succeeded",
            };
            let tag = format!("v{n}");
            let to = format!("demo/api:{tag}");
            let deployments = match outcome {
                "rolled_back" => vec![
                    ("deploy", None, to.as_str(), "healthy"),
                    ("rollback", None, "demo/api:v1", "healthy"),
                ],
                "failed" => vec![("deploy", None, to.as_str(), "failed")],
                _ => vec![("deploy", None, to.as_str(), "healthy")],
            };
            let took = 60_000 + (n % 9) * 15_000;
            ledger
                .start_run(&NewRun {
                    id: id.clone(),
                    app: names.app.clone(),
                    environment: names.environment.clone(),
                    image_tag: tag.clone(),
                    owner: "octocat".into(),
                    host: "runner".into(),
                    pid: 1,
                    started_ms: started,
                })
                .await
                .unwrap();
            for (kind, from, to, verdict) in deployments {
                ledger
                    .record_deployment(&DeploymentRecord {
                        run_id: id.clone(),
                        target: "local".into(),
                        service: "api".into(),
                        from_image: from.map(str::to_owned),
                        to_image: to.into(),
                        revision: id.clone(),
                        kind: kind.into(),
                        verdict: verdict.into(),
                    })
                    .await
                    .unwrap();
            }
            ledger
                .record_commit_time(&id, started - (30 + (n % 11) * 20) * MINUTE)
                .await
                .unwrap();
            ledger
                .finish_run(&id, outcome, started + took, None)
                .await
                .unwrap();
        }
    }
}

/// A dashboard over `ledger` on a loopback port, served on its own thread; the redactor
/// knows `secret`.
pub fn serve(url: &str, access: Access, secret: &str) -> SocketAddr {
    let url = url.to_owned();
    let secret = secret.to_owned();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let ledger = Ledger::open(&url).await.unwrap();
            let redactor = Redactor::default();
            redactor.add(&Secret::new(secret));
            let dashboard = Dashboard::new(ledger, access, redactor, 0);
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            dashboard
                .serve(listener, CancellationToken::new())
                .await
                .unwrap();
        });
    });
    rx.recv().unwrap()
}

/// Now, as the seed sees it.
pub fn now() -> i64 {
    now_ms()
}
