//! The delivery report over a large ledger: 1,000,000 finished runs, each with one
//! deployment row (2,000,000 rows), over four environments and three services (the rollup is
//! built by the ledger's migration backfill, timed as part of seeding), on SQLite and
//! (when `SHIPGATE_TEST_POSTGRES_URL` is set, as `scripts/test` and the dev recipe do)
//! Postgres. Prints the median of 5 timed reports after one warm-up.
//!
//! ```sh
//! cargo bench -p shipgate-monitor --bench report
//! SHIPGATE_BENCH_RUNS=100000 cargo bench -p shipgate-monitor --bench report
//! ```
//!
//! Targets (the monitor issue): ≤ 200 ms on SQLite, ≤ 100 ms on Postgres.

#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::time::{Duration, Instant};

use shipgate_ledger::Ledger;
use shipgate_monitor::report::from_ledger;

const START: i64 = 1_700_000_000_000;
const MINUTE: i64 = 60_000;

/// The columns of one generated run `i` (SQL expressions over `i`): every minute a run of
/// 45 s; one in 10 rolled back, one in 10 failed before changing anything, one in 100 left
/// unhealthy, one in 200 with a failed rollback, the rest succeeded.
const RUN_COLUMNS: &str = "'run-' || i, 'shop', \
    CASE i % 4 WHEN 0 THEN 'production' WHEN 1 THEN 'staging' WHEN 2 THEN 'eu' ELSE 'us' END, \
    'v' || i, 'ci', 'runner', 1, START + i * 60000, START + i * 60000 + 45000, \
    CASE WHEN i % 200 = 8 THEN 'rollback_failed' WHEN i % 100 = 6 THEN 'unhealthy' \
    WHEN i % 10 = 2 THEN 'rolled_back' WHEN i % 10 = 4 THEN 'failed' ELSE 'succeeded' END";
const DEPLOYMENT_COLUMNS: &str = "'run-' || i, 0, 'helm', \
    CASE i % 3 WHEN 0 THEN 'api' WHEN 1 THEN 'worker' ELSE 'web' END, NULL, 'ghcr.io/acme/app:v' || i, \
    'r' || i, 'deploy', 'healthy'";

async fn seed(url: &str, runs: i64) -> Ledger {
    let ledger = Ledger::open(url).await.unwrap();
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(url).await.unwrap();
    let postgres = url.starts_with("postgres");
    let series = |columns: &str, table: &str, names: &str| {
        let columns = columns.replace("START", &START.to_string());
        shipgate_testkit::generated_rows(postgres, table, names, &columns, runs, "")
    };
    for statement in [
        series(
            RUN_COLUMNS,
            "runs",
            "id, app, environment, image_tag, owner, host, pid, started_ms, finished_ms, outcome",
        ),
        series(
            DEPLOYMENT_COLUMNS,
            "deployments",
            "run_id, position, target, service, from_image, to_image, revision, kind, verdict",
        ),
    ] {
        // Built from the constants above.
        sqlx::query(sqlx::AssertSqlSafe(statement))
            .execute(&pool)
            .await
            .unwrap();
    }
    // Rows inserted behind the ledger's back are not in the delivery rollup: drop it and
    // let the ledger's migration backfill it, as it does for a ledger that predates it.
    drop(ledger);
    pool.close().await;
    shipgate_testkit::forget_delivery_rollup(url).await;
    let ledger = Ledger::open(url).await.unwrap();
    if postgres {
        let pool = sqlx::AnyPool::connect(url).await.unwrap();
        sqlx::query("ANALYZE").execute(&pool).await.unwrap();
        pool.close().await;
    }
    ledger
}

async fn measure(name: &str, url: &str, runs: i64) {
    let seeding = Instant::now();
    let ledger = seed(url, runs).await;
    let seeded = seeding.elapsed();
    let until = START + runs * MINUTE;
    let warm = from_ledger(&ledger, START, until).await.unwrap();
    let attempts: u64 = warm.environments.iter().map(|e| e.attempts).sum();
    assert_eq!(attempts, u64::try_from(runs).unwrap());
    let mut times: Vec<Duration> = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let report = from_ledger(&ledger, START, until).await.unwrap();
        times.push(started.elapsed());
        assert_eq!(report, warm);
    }
    times.sort();
    let last_30_days = {
        let started = Instant::now();
        from_ledger(&ledger, until - 30 * 24 * 60 * MINUTE, until)
            .await
            .unwrap();
        started.elapsed()
    };
    println!(
        "report {name}: {runs} runs + {runs} deployments (seeded in {:.1} s): whole history median {:.0} ms (min {:.0} ms); last 30 days ({} runs) {:.0} ms",
        seeded.as_secs_f64(),
        times[2].as_secs_f64() * 1000.0,
        times[0].as_secs_f64() * 1000.0,
        (30 * 24 * 60).min(runs),
        last_30_days.as_secs_f64() * 1000.0
    );
}

fn main() {
    // `cargo test --all-targets` runs this as a quick check over 2,000 runs.
    shipgate_testkit::bench_on_both_ledgers("report", |name, url, runs| async move {
        measure(name, &url, runs).await;
    });
}
