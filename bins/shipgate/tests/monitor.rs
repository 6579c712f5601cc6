//! `shipgate monitor` as a user runs it: `--once` from cron (exit codes, the JSON report, an
//! alert issue on the fake GitHub, nothing due on the next call), the long-running service
//! (`/healthz`, `/metrics`, graceful shutdown on SIGTERM), and three replicas sharing the
//! targets of one real Postgres ledger while one of them is killed.

#![allow(clippy::unwrap_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command as Process, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use assert_cmd::Command;
use axum::Router;
use axum::extract::Path as UrlPath;
use axum::http::StatusCode;
use axum::routing::get;
use shipgate_testkit::fakes::FakeGithub;

/// A loopback service: `/t/{name}` answers the shared status after `delay`, counting hits.
struct Service {
    base: String,
    status: Arc<AtomicU16>,
    hits: Arc<Mutex<Vec<String>>>,
}

fn service(delay: Duration) -> Service {
    let status = Arc::new(AtomicU16::new(200));
    let hits: Arc<Mutex<Vec<String>>> = Arc::default();
    let (current, seen) = (Arc::clone(&status), Arc::clone(&hits));
    let app = Router::new().route(
        "/t/{name}",
        get(move |UrlPath(name): UrlPath<String>| {
            seen.lock().unwrap().push(name);
            let code = current.load(Ordering::SeqCst);
            async move {
                tokio::time::sleep(delay).await;
                StatusCode::from_u16(code).unwrap()
            }
        }),
    );
    let addr = shipgate_testkit::serve_on_thread(app);
    Service {
        base: format!("http://{addr}"),
        status,
        hits,
    }
}

fn write_config(dir: &Path, body: &str) -> PathBuf {
    let path = dir.join("shipgate.toml");
    std::fs::write(&path, body).unwrap();
    path
}

fn shipgate(config: &Path, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let output = Command::cargo_bin("shipgate")
        .unwrap()
        .env_clear()
        .envs(env.iter().copied())
        .arg("monitor")
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .unwrap();
    (
        output.status.code().unwrap(),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

fn spawn(config: &Path, args: &[&str]) -> Child {
    Process::new(assert_cmd::cargo::cargo_bin("shipgate"))
        .env_clear()
        .arg("monitor")
        .args(args)
        .arg("--config")
        .arg(config)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn signal(child: &Child, name: &str) {
    let status = Process::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

fn finish(child: Child) -> (Option<i32>, String) {
    let output = child.wait_with_output().unwrap();
    (
        output.status.code(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

fn http_get(url: &str) -> Option<(u16, String)> {
    shipgate_testkit::http_get(url, None)
}

#[test]
fn once_exits_1_on_a_failing_check_opens_an_issue_and_then_has_nothing_due() {
    let dir = tempfile::tempdir().unwrap();
    let service = service(Duration::ZERO);
    service.status.store(503, Ordering::SeqCst);
    let runtime = shipgate_testkit::runtime();
    let github = FakeGithub::new("acme/shop", "ghs_token");
    let github_url = runtime.block_on(github.clone().start());
    let config = write_config(
        dir.path(),
        &format!(
            r#"app = "shop"
environment = "production"
[ledger]
url = "sqlite://{dir}/ledger.db"
[github]
repository = "acme/shop"
api_url = "{github_url}"
[smoke]
allow_insecure = true
[[monitor.targets]]
name = "api-health"
schedule = "15m"
url = "{base}/t/api"
open_after = 1
"#,
            dir = dir.path().display(),
            base = service.base
        ),
    );
    let env = [("GITHUB_TOKEN", "ghs_token")];
    let (code, stdout, stderr) = shipgate(&config, &["--once", "--format", "json"], &env);
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["healthy"], false);
    assert_eq!(report["checks"][0]["target"], "shop/production/api-health");
    assert_eq!(report["checks"][0]["state"], "alerting");
    assert!(
        report["checks"][0]["failures"][0]
            .as_str()
            .unwrap()
            .starts_with("GET /t/api → 503"),
        "{report}"
    );
    assert!(
        stderr.contains("alert opened: https://github.com/acme/shop/issues/1"),
        "{stderr}"
    );
    assert_eq!(github.repo.lock().unwrap().issues.len(), 1);

    // Run again from cron a minute later: the next 15-minute slot has not come.
    let (code, stdout, stderr) = shipgate(&config, &["--once"], &env);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("no check was due"), "{stdout}");
    assert_eq!(github.repo.lock().unwrap().issues.len(), 1);

    // No targets is a usage error that says what to add.
    let empty = write_config(dir.path(), "app = \"shop\"\n");
    let (code, _, stderr) = shipgate(&empty, &["--once"], &[]);
    assert_eq!(code, 2);
    assert!(stderr.contains("add [[monitor.targets]]"), "{stderr}");
    // A schedule that is neither an interval nor cron names its key.
    let bad = write_config(
        dir.path(),
        "app = \"shop\"\n[[monitor.targets]]\nname = \"x\"\nschedule = \"every day\"\nurl = \"https://example.com/health\"\n",
    );
    let (code, _, stderr) = shipgate(&bad, &["--once"], &[]);
    assert_eq!(code, 2);
    assert!(stderr.contains("monitor.targets.0.schedule"), "{stderr}");
}

#[test]
fn the_service_serves_healthz_and_metrics_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let service = service(Duration::ZERO);
    let port = shipgate_testkit::closed_port().port();
    let config = write_config(
        dir.path(),
        &format!(
            r#"app = "shop"
environment = "staging"
[ledger]
url = "sqlite://{dir}/ledger.db"
[smoke]
allow_insecure = true
[monitor]
listen = "127.0.0.1:{port}"
[[monitor.targets]]
name = "api-health"
schedule = "1s"
url = "{base}/t/api"
"#,
            dir = dir.path().display(),
            base = service.base
        ),
    );
    let child = spawn(&config, &[]);
    let deadline = Instant::now() + Duration::from_secs(30);
    let metrics = loop {
        assert!(
            Instant::now() < deadline,
            "no checks in /metrics within 30 s"
        );
        std::thread::sleep(Duration::from_millis(200));
        if let Some((200, text)) = http_get(&format!("http://127.0.0.1:{port}/metrics"))
            && text.contains("result=\"pass\"} 2")
        {
            break text;
        }
    };
    assert!(
        metrics.contains(
            "shipgate_monitor_alert_state{target=\"shop/staging/api-health\",state=\"healthy\"} 1"
        ),
        "{metrics}"
    );
    assert!(metrics.contains("shipgate_monitor_check_duration_seconds_bucket"));
    assert_eq!(
        http_get(&format!("http://127.0.0.1:{port}/healthz")),
        Some((200, "ok\n".to_owned()))
    );
    // The same address serves the dashboard: the monitor's own checks, with their latency
    // from the ledger's rollups, are on its health page.
    let (status, health) = http_get(&format!("http://127.0.0.1:{port}/api/health")).unwrap();
    assert_eq!(status, 200, "{health}");
    let health: serde_json::Value = serde_json::from_str(&health).unwrap();
    let target = &health["targets"][0];
    assert_eq!(target["id"], "shop/staging/api-health");
    assert!(target["day"]["checks"].as_i64().unwrap() >= 2, "{health}");
    assert!(target["day"]["p50_ms"].as_f64().unwrap() > 0.0, "{health}");
    let (status, page) = http_get(&format!("http://127.0.0.1:{port}/health")).unwrap();
    assert_eq!(status, 200);
    assert!(page.contains("shop/staging/api-health"), "{page}");
    signal(&child, "TERM");
    let (code, stderr) = finish(child);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("monitor stopped"), "{stderr}");
    assert!(
        stderr.contains("and the dashboard on http://127.0.0.1"),
        "{stderr}"
    );
    // A passing check that changes nothing is no line of its own; the summary on stop adds
    // them up.
    assert!(!stderr.contains("api-health: passed"), "{stderr}");
    assert!(
        summarised_checks(&stderr) > 0 && stderr.contains(", 0 failed"),
        "{stderr}"
    );
}

#[test]
fn three_replicas_share_the_checks_on_one_postgres_and_take_over_from_a_dead_one() {
    const TARGETS: usize = 30;
    const SLOT_MS: i64 = 2_000;
    const LEASE_MS: i64 = 3_000;
    let runtime = shipgate_testkit::runtime();
    let ledger_url = runtime.block_on(shipgate_testkit::postgres_database());
    // Each check takes 400 ms and a replica runs 5 at once: no replica can do a slot's 30
    // checks alone within the slot, so the others must claim some.
    let service = service(Duration::from_millis(400));
    let dir = tempfile::tempdir().unwrap();
    let mut text = format!(
        "app = \"shop\"\nenvironment = \"staging\"\n[ledger]\nurl = \"{ledger_url}\"\n[smoke]\nallow_insecure = true\n\
         [monitor]\nlease = \"{LEASE_MS}ms\"\nconcurrency = 5\n"
    );
    for i in 0..TARGETS {
        text.push_str(&format!(
            "[[monitor.targets]]\nname = \"t{i:02}\"\nschedule = \"{SLOT_MS}ms\"\nurl = \"{}/t/t{i:02}\"\n",
            service.base
        ));
    }
    let config = write_config(dir.path(), &text);
    let started = now_ms();
    let replicas: Vec<Child> = (0..3)
        .map(|i| {
            let port = shipgate_testkit::closed_port().port().to_string();
            spawn(
                &config,
                &[
                    "--replica",
                    &format!("r{i}"),
                    "--listen",
                    &format!("127.0.0.1:{port}"),
                ],
            )
        })
        .collect();
    std::thread::sleep(Duration::from_secs(5));
    // Replica r0 dies without a word (kill -9): whatever it held comes back after the lease.
    let mut replicas = replicas.into_iter();
    let victim = replicas.next().unwrap();
    signal(&victim, "KILL");
    let killed = now_ms();
    let _ = finish(victim);
    std::thread::sleep(Duration::from_secs(7));
    let mut logs = Vec::new();
    for child in replicas {
        signal(&child, "TERM");
        let (code, stderr) = finish(child);
        assert_eq!(code, Some(0), "{stderr}");
        logs.push(stderr);
    }
    let stopped = now_ms();

    let rows = runtime.block_on(async {
        let ledger = shipgate_ledger::Ledger::open(&ledger_url).await.unwrap();
        ledger.monitor_targets("shop").await.unwrap()
    });
    assert_eq!(rows.len(), TARGETS);
    // A new target is due at once (first sight), then once per slot of its own phase: at most
    // one check per slot the run spans, plus that first one.
    let slots = (stopped - started) / SLOT_MS + 1;
    for row in &rows {
        // Never twice in a slot: a target is claimed by one replica at a time and is not due
        // again before its next slot.
        assert!(
            row.checks <= slots + 1,
            "{} checked {} times in {slots} slots",
            row.id,
            row.checks
        );
        // The survivors kept every target going, including those r0 held when it died.
        assert!(
            row.last_checked_ms.unwrap() >= killed + LEASE_MS,
            "{} not checked after r0's claims expired",
            row.id
        );
    }
    let recorded: i64 = rows.iter().map(|r| r.checks).sum();
    let hits = service.hits.lock().unwrap().len();
    assert!(
        i64::try_from(hits).unwrap() >= recorded,
        "{hits} requests for {recorded} recorded checks"
    );
    // Both survivors did part of the work.
    for log in &logs {
        assert!(
            summarised_checks(log) > 0,
            "a replica checked nothing:\n{log}"
        );
    }
    let t00 = service
        .hits
        .lock()
        .unwrap()
        .iter()
        .filter(|name| *name == "t00")
        .count();
    assert!(t00 >= 3, "t00 checked regularly, {t00} times");
}

fn now_ms() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

/// The checks the monitor's summary lines (`N check(s) in the last S s, F failed`) add up to.
fn summarised_checks(stderr: &str) -> u64 {
    stderr
        .lines()
        .filter(|l| l.contains(" check(s) in the last "))
        .filter_map(|l| {
            l.trim_start_matches("shipgate: ")
                .split(' ')
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum()
}
