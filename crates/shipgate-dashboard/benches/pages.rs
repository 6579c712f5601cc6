//! Server time and weight of each dashboard page over a large ledger: 1,000,000 finished
//! runs (one a minute, the newest just now) with one deployment row each and one rollback row
//! for each rolled-back run, over four environments, plus 7 days of latency rollups for 100
//! monitor targets (and their hourly rollups). The dashboard serves on a loopback port; each page is fetched once to
//! warm up and then 7 times, and the median time from request to last byte is reported with
//! the page's size. SQLite always; Postgres when `SHIPGATE_TEST_POSTGRES_URL` is set (as
//! `scripts/test` and the dev recipe do).
//!
//! ```sh
//! cargo bench -p shipgate-dashboard --bench pages
//! SHIPGATE_BENCH_RUNS=100000 cargo bench -p shipgate-dashboard --bench pages
//! ```
//!
//! Targets (the dashboard issue): ≤ 50 ms for the overview, a 90-day timeline and the
//! delivery page; ≤ 10 ms for a run page; every page under 150 KB.

#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::time::{Duration, Instant};

use shipgate_core::Redactor;
use shipgate_dashboard::{Access, Dashboard};
use shipgate_ledger::{Ledger, now_ms};
use tokio_util::sync::CancellationToken;

/// One run `i` every minute back from START (the newest, i = 0, just now): one in 10 rolled
/// back, one in 10 failed, one in 100 unhealthy, the rest succeeded.
const RUN_COLUMNS: &str = "'run-' || i, 'shop', \
    CASE i % 4 WHEN 0 THEN 'production' WHEN 1 THEN 'staging' WHEN 2 THEN 'eu' ELSE 'us' END, \
    'v' || i, 'ci', 'runner', 1, START - i * 60000, START - i * 60000 + 45000, \
    CASE WHEN i % 100 = 6 THEN 'unhealthy' \
    WHEN i % 10 = 2 THEN 'rolled_back' WHEN i % 10 = 4 THEN 'failed' ELSE 'succeeded' END, 'rolling'";
const DEPLOYMENT_COLUMNS: &str = "'run-' || i, 0, 'helm', \
    CASE i % 3 WHEN 0 THEN 'api' WHEN 1 THEN 'worker' ELSE 'web' END, NULL, 'ghcr.io/acme/app:v' || i, \
    'r' || i, 'deploy', CASE WHEN i % 10 = 4 THEN 'failed' ELSE 'healthy' END";
const ROLLBACK_COLUMNS: &str = "'run-' || i, 1, 'helm', \
    CASE i % 3 WHEN 0 THEN 'api' WHEN 1 THEN 'worker' ELSE 'web' END, 'ghcr.io/acme/app:v' || i, \
    'ghcr.io/acme/app:v' || (i + 4), 'r' || i, 'rollback', 'healthy'";
/// Seven days of hourly buckets for 100 targets (12 checks each).
const HOURLY_COLUMNS: &str = "'shop/production/t' || (i % 100), \
    (START - START % 3600000) - (i / 100) * 3600000, 12, CASE WHEN i % 50 = 0 THEN 1 ELSE 0 END, \
    12 * (20 + i % 30), 20 + i % 30, 0, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0";
/// Seven days of 5-minute buckets for 100 targets.
const LATENCY_COLUMNS: &str = "'shop/production/t' || (i % 100), \
    (START - START % 300000) - (i / 100) * 300000, 1, CASE WHEN i % 50 = 0 THEN 1 ELSE 0 END, \
    20 + i % 30, 20 + i % 30, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0";

async fn seed(url: &str, runs: i64, start: i64) -> Ledger {
    let ledger = Ledger::open(url).await.unwrap();
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(url).await.unwrap();
    let postgres = url.starts_with("postgres");
    let series = |columns: &str, table: &str, names: &str, count: i64, filter: &str| {
        let columns = columns.replace("START", &start.to_string());
        shipgate_testkit::generated_rows(postgres, table, names, &columns, count, filter)
    };
    let deployment_names =
        "run_id, position, target, service, from_image, to_image, revision, kind, verdict";
    for statement in [
        series(
            RUN_COLUMNS,
            "runs",
            "id, app, environment, image_tag, owner, host, pid, started_ms, finished_ms, outcome, strategy",
            runs,
            "",
        ),
        series(
            DEPLOYMENT_COLUMNS,
            "deployments",
            deployment_names,
            runs,
            "",
        ),
        series(
            ROLLBACK_COLUMNS,
            "deployments",
            deployment_names,
            runs,
            "WHERE i % 10 = 2",
        ),
    ] {
        // Built from the constants above.
        sqlx::query(sqlx::AssertSqlSafe(statement))
            .execute(&pool)
            .await
            .unwrap();
    }
    drop(ledger);
    pool.close().await;
    // Rows inserted behind the ledger's back are not in the delivery rollup nor in what
    // runs now: let the ledger's migrations backfill them, as for an older ledger.
    shipgate_testkit::forget_delivery_rollup(url).await;
    shipgate_testkit::forget_dashboard_tables(url).await;
    let ledger = Ledger::open(url).await.unwrap();
    let pool = sqlx::AnyPool::connect(url).await.unwrap();
    let columns = "target_id, bucket_ms, checks, failures, total_ms, max_ms, h0, h1, h2, h3, h4, h5, h6, h7, h8, h9, h10";
    for statement in [
        series(
            LATENCY_COLUMNS,
            "monitor_latency",
            columns,
            100 * 7 * 288,
            "",
        ),
        series(
            HOURLY_COLUMNS,
            "monitor_latency_hourly",
            columns,
            100 * 7 * 24,
            "",
        ),
    ] {
        // Built from the constants above.
        sqlx::query(sqlx::AssertSqlSafe(statement))
            .execute(&pool)
            .await
            .unwrap();
    }
    pool.close().await;
    let targets: Vec<(String, String)> = (0..100)
        .map(|t| ("production".to_owned(), format!("t{t}")))
        .collect();
    ledger.monitor_register("shop", &targets).await.unwrap();
    let summary = serde_json::json!({
        "message": "v0 succeeded",
        "smoke": {"passed": true, "base_url": "https://api.example.com/", "duration_ms": 80.0,
                  "checks": [{"name": "health", "method": "GET", "path": "/healthz", "outcome": "passed", "status": 200, "p50_ms": 12.0, "p95_ms": 18.0}]},
    });
    ledger
        .record_summary("run-0", &summary.to_string())
        .await
        .unwrap();
    if postgres {
        let pool = sqlx::AnyPool::connect(url).await.unwrap();
        sqlx::query("ANALYZE").execute(&pool).await.unwrap();
        pool.close().await;
    }
    ledger
}

async fn measure(name: &str, url: &str, runs: i64) {
    let start = now_ms();
    let seeding = Instant::now();
    let ledger = seed(url, runs, start).await;
    let seeded = seeding.elapsed();
    let dashboard = Dashboard::new(ledger, Access::LoopbackOnly, Redactor::default(), 0);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let cancel = CancellationToken::new();
    let server = tokio::spawn({
        let cancel = cancel.clone();
        async move { dashboard.serve(listener, cancel).await }
    });
    let client = shipgate_http::build_client(&shipgate_http::ClientOptions::default()).unwrap();
    println!(
        "dashboard {name}: {runs} runs, {} deployment rows, 201,600 5-minute and 16,800 hourly latency buckets (seeded in {:.1} s)",
        runs + runs / 10,
        seeded.as_secs_f64()
    );
    for (page, target_ms) in [
        ("/", 50.0),
        ("/timeline?app=shop&environment=production&days=90", 50.0),
        ("/delivery?app=shop&environment=production", 50.0),
        ("/runs/run-0", 10.0),
        ("/health", 50.0),
        ("/api/overview", 50.0),
        (
            "/api/timeline?app=shop&environment=production&days=90",
            50.0,
        ),
    ] {
        let url = format!("http://{address}{page}");
        let mut times: Vec<Duration> = Vec::new();
        let mut weight = 0;
        for round in 0..8 {
            let started = Instant::now();
            let response = client.get(&url).send().await.unwrap();
            assert_eq!(response.status().as_u16(), 200, "{page}");
            let body = response.bytes().await.unwrap();
            if round > 0 {
                times.push(started.elapsed());
            }
            weight = body.len();
        }
        times.sort();
        let median = times[times.len() / 2].as_secs_f64() * 1000.0;
        println!(
            "  {page:<58} median {median:>7.1} ms (min {:>6.1} ms) {:>7.1} KB  {}",
            times[0].as_secs_f64() * 1000.0,
            weight as f64 / 1024.0,
            if median <= target_ms && weight < 150 * 1024 {
                "ok"
            } else {
                "OVER TARGET"
            }
        );
    }
    cancel.cancel();
    let _ = server.await;
}

fn main() {
    // `cargo test --all-targets` runs this as a quick check over 2,000 runs.
    shipgate_testkit::bench_on_both_ledgers("dashboard", |name, url, runs| async move {
        measure(name, &url, runs).await;
    });
}
