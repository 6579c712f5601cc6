//! The monitor's footprint: the release `shipgate monitor` process watching 10,000 health-URL
//! targets every 15 s (~667 checks/s) against a local server, with a SQLite ledger (the
//! embedded default).
//! Reports the process's peak and steady resident memory and its CPU use (user + system time
//! over wall time, after a warm-up slot), and the checks it ran, from its own /metrics.
//!
//! ```sh
//! cargo bench -p shipgate --bench monitor                           # 10,000 targets, 120 s
//! SHIPGATE_BENCH_TARGETS=200 SHIPGATE_BENCH_SECONDS=60 cargo bench -p shipgate --bench monitor
//! SHIPGATE_BENCH_LEDGER=postgres://… cargo bench -p shipgate --bench monitor
//! ```
//!
//! Targets (the hardening issue): resident memory ≤ 64 MB, CPU ≤ 15 % of a core at 10,000
//! targets (the monitor issue's ≤ 40 MB and ≤ 3 % were for 1,000).

#![allow(clippy::unwrap_used, clippy::print_stdout, clippy::panic)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// (resident kB, peak resident kB) from /proc/PID/status.
fn memory_kb(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// (user, system) CPU time of the process, in clock ticks, from /proc/PID/stat.
fn cpu_ticks(pid: u32) -> (u64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (field(11), field(12))
}

fn clock_ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

fn checks_run(metrics_url: &str) -> u64 {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let text = runtime.block_on(async {
        let client = shipgate_http::build_client(&shipgate_http::ClientOptions::default()).unwrap();
        client.get(metrics_url).send().await?.text().await
    });
    text.unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with("shipgate_monitor_checks_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this as a quick check
    // (20 targets every second for a few seconds) that the monitor runs and stops cleanly.
    let full = std::env::args().any(|a| a == "--bench");
    let targets = env_number("SHIPGATE_BENCH_TARGETS", if full { 10_000 } else { 20 });
    let seconds = env_number("SHIPGATE_BENCH_SECONDS", if full { 120 } else { 3 });
    let every: u64 = if full { 15 } else { 1 };
    let server =
        shipgate_testkit::serve_on_thread(Router::new().route("/t/{name}", get(|| async { "ok" })));
    let dir = tempfile::tempdir().unwrap();
    let ledger = std::env::var("SHIPGATE_BENCH_LEDGER")
        .unwrap_or_else(|_| format!("sqlite://{}/ledger.db", dir.path().display()));
    let port = shipgate_testkit::closed_port().port();
    let mut config = format!(
        "app = \"bench\"\nenvironment = \"staging\"\n[ledger]\nurl = \"{ledger}\"\n\
         [smoke]\nallow_insecure = true\n[monitor]\nlisten = \"127.0.0.1:{port}\"\n"
    );
    for i in 0..targets {
        config.push_str(&format!(
            "[[monitor.targets]]\nname = \"t{i}\"\nschedule = \"{every}s\"\nurl = \"http://{server}/t/{i}\"\n"
        ));
    }
    let path = dir.path().join("shipgate.toml");
    std::fs::write(&path, config).unwrap();

    let mut child = Command::new(env!("CARGO_BIN_EXE_shipgate"))
        .args(["monitor", "--config"])
        .arg(&path)
        .env_clear()
        .envs(
            std::env::var("MALLOC_ARENA_MAX")
                .ok()
                .map(|v| ("MALLOC_ARENA_MAX", v)),
        )
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("stderr")).unwrap())
        .spawn()
        .unwrap();
    let pid = child.id();
    let metrics_url = format!("http://127.0.0.1:{port}/metrics");

    // Warm-up: the first slot checks every target (new targets are due at once).
    let warm_up = Duration::from_secs(if full { 20 } else { 3 });
    std::thread::sleep(warm_up);
    if let Some(status) = child.try_wait().unwrap() {
        panic!(
            "the monitor exited with {status}:\n{}",
            std::fs::read_to_string(dir.path().join("stderr")).unwrap_or_default()
        );
    }
    let start_ticks = cpu_ticks(pid);
    let start_checks = checks_run(&metrics_url);
    let started = Instant::now();
    let mut rss_samples = Vec::new();
    while started.elapsed() < Duration::from_secs(seconds) {
        std::thread::sleep(Duration::from_secs(1));
        rss_samples.push(memory_kb(pid).0);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let end_ticks = cpu_ticks(pid);
    let user_seconds = (end_ticks.0 - start_ticks.0) as f64 / clock_ticks_per_second();
    let system_seconds = (end_ticks.1 - start_ticks.1) as f64 / clock_ticks_per_second();
    let cpu_seconds = user_seconds + system_seconds;
    let checks = checks_run(&metrics_url) - start_checks;
    let (_, peak_kb) = memory_kb(pid);
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let status = child.wait().unwrap();
    rss_samples.sort_unstable();
    let median_kb = rss_samples[rss_samples.len() / 2];
    println!(
        "monitor: {targets} targets every {every} s, {} ledger, measured {elapsed:.0} s after a {} s warm-up",
        if ledger.starts_with("postgres") {
            "Postgres"
        } else {
            "SQLite"
        },
        warm_up.as_secs()
    );
    println!(
        "  checks run: {checks} ({:.1}/s; expected {:.1}/s)",
        checks as f64 / elapsed,
        targets as f64 / every as f64
    );
    println!(
        "  resident memory: median {:.1} MB, peak {:.1} MB (target ≤ 64 MB at 10,000 targets)",
        median_kb as f64 / 1024.0,
        peak_kb as f64 / 1024.0
    );
    println!(
        "  CPU: {:.2} % of one core ({:.2} % user, {:.2} % system; target ≤ 15 % at 10,000 targets)",
        100.0 * cpu_seconds / elapsed,
        100.0 * user_seconds / elapsed,
        100.0 * system_seconds / elapsed
    );
    assert!(
        status.success(),
        "the monitor did not stop cleanly: {status}"
    );
}
