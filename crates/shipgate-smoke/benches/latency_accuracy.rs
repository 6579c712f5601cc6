//! How close the engine's latency is to a delay the server injects.
//!
//! `cargo bench -p shipgate-smoke --bench latency_accuracy`
//!
//! A loopback server sleeps exactly D ms (a blocking `std::thread::sleep`, precise to tens of
//! microseconds on Linux) before answering; a check with `samples = 50` measures it. The error
//! is the measured p50 minus D: loopback, HTTP and timer overhead together.

#![allow(clippy::unwrap_used, clippy::print_stdout, missing_docs)]

use std::collections::HashMap;
use std::time::Duration;

use axum::Router;
use axum::extract::Query;
use axum::routing::get;
use shipgate_core::Redactor;
use shipgate_smoke::{SmokeRunner, SpecOptions, compile};
use tokio_util::sync::CancellationToken;

const DELAYS_MS: [u64; 4] = [5, 20, 50, 100];

async fn delayed(Query(q): Query<HashMap<String, u64>>) -> &'static str {
    let ms = q.get("ms").copied().unwrap_or(0);
    tokio::task::spawn_blocking(move || std::thread::sleep(Duration::from_millis(ms)))
        .await
        .unwrap();
    "ok"
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this as a quick check.
    let samples: u32 = if std::env::args().any(|a| a == "--bench") {
        50
    } else {
        3
    };
    let addr = shipgate_testkit::serve_on_thread(Router::new().route("/delay", get(delayed)));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("spec.toml");
    let mut toml = String::from("concurrency = 1\n");
    for ms in DELAYS_MS {
        toml.push_str(&format!(
            "[[checks]]\nname = \"delay-{ms}ms\"\npath = \"/delay?ms={ms}\"\nsamples = {samples}\n"
        ));
    }
    std::fs::write(&path, toml).unwrap();
    let spec = shipgate_config::load_smoke_spec(&path).unwrap().spec;
    let spec = compile(
        &spec,
        &SpecOptions {
            base_url: Some(format!("http://{addr}")),
            ..SpecOptions::default()
        },
    )
    .unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let report = runtime.block_on(async {
        let mut runner = SmokeRunner::new(Redactor::default()).unwrap();
        runner.run(&spec, &CancellationToken::new()).await.unwrap()
    });
    println!("latency accuracy, {samples} samples per delay (measured p50 - injected delay):");
    for (check, ms) in report.checks.iter().zip(DELAYS_MS) {
        let p50 = check.p50_ms.unwrap();
        println!(
            "  delay {ms:>3} ms: p50 {p50:.3} ms, p95 {:.3} ms, p50 error {:+.3} ms",
            check.p95_ms.unwrap(),
            p50 - ms as f64
        );
    }
}
