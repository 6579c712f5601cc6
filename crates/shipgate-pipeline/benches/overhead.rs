//! Pipeline overhead with the local provider:
//!
//! `cargo bench -p shipgate-pipeline --bench overhead`
//!
//! Each run deploys a release that is healthy but fails its smoke gate, so the pipeline goes
//! through lock → deploy → wait → smoke → rollback → wait → smoke → summary → ledger. Reported:
//! the wall time minus the provider and probe steps (what shipgate itself adds: lock, ledger
//! writes, bookkeeping), and the time from the failing smoke result to the first rollback
//! action. `cargo test` runs it once as a check.

#![allow(clippy::unwrap_used, clippy::print_stdout, missing_docs)]

use std::collections::BTreeMap;
use std::time::Duration;

use shipgate_config::{LocalService, LocalTarget, SmokeCheck, SmokeConfig};
use shipgate_core::{HumanDuration, Redactor};
use shipgate_ledger::Ledger;
use shipgate_local::{LocalOptions, LocalProvider};
use shipgate_pipeline::{Plan, Target};
use shipgate_smoke::{SmokeRunner, SpecOptions};
use tokio_util::sync::CancellationToken;

fn provider(dir: &std::path::Path, port: u16) -> LocalProvider {
    let service = LocalService {
        command: vec![
            shipgate_testkit::workspace_binary("shipgate-local", "shipgate-demo-service")
                .display()
                .to_string(),
            "--port".into(),
            "{port}".into(),
            "--version".into(),
            "{tag}".into(),
        ],
        port,
        health_path: "/healthz".into(),
        env: BTreeMap::new(),
    };
    let config = LocalTarget {
        enabled: true,
        state_dir: dir.join("local"),
        services: BTreeMap::from([("api".parse().unwrap(), service)]),
        timeout: HumanDuration::from_secs(10),
    };
    let router = shipgate_testkit::workspace_binary("shipgate-local", "shipgate-local-router");
    let options = LocalOptions {
        router: vec![router.display().to_string()],
        shipgate: None,
    };
    LocalProvider::new(&config, options).unwrap()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let runs = if std::env::args().any(|a| a == "--bench") {
        10
    } else {
        1
    };
    let dir = tempfile::tempdir().unwrap();
    let port = shipgate_testkit::closed_port().port();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let smoke = SmokeConfig {
        checks: vec![SmokeCheck::get("/healthz"), SmokeCheck::get("/api/orders")],
        ..SmokeConfig::default()
    };
    let spec = shipgate_smoke::compile(
        &smoke,
        &SpecOptions {
            base_url: Some(format!("http://127.0.0.1:{port}")),
            ..SpecOptions::default()
        },
    )
    .unwrap();
    let (overheads, first_actions) = runtime.block_on(async {
        let ledger = Ledger::open(&format!(
            "sqlite://{}",
            dir.path().join("ledger.db").display()
        ))
        .await
        .unwrap();
        let mut runner = SmokeRunner::new(Redactor::default()).unwrap();
        let quiet = |_: &shipgate_pipeline::PipelineEvent| {};
        let plan = |tag: &str| Plan {
            run_id: format!("bench-{tag}"),
            app: "bench".into(),
            environment: "production".into(),
            image_tag: tag.into(),
            images: vec![(
                "api".parse().unwrap(),
                format!("demo/api:{tag}").parse().unwrap(),
            )],
            targets: vec![Target {
                name: "local".into(),
                provider: Box::new(provider(dir.path(), port)),
                timeout: Duration::from_secs(10),
            }],
            smoke: Some(spec.clone()),
            preflight: Vec::new(),
            ci_gate: None,
            migration: None,
            redactor: Redactor::default(),
            auto_rollback: true,
            smoke_after_rollback: true,
            image_check: None,
            owner: "bench".into(),
            host: "localhost".into(),
            pid: i64::from(std::process::id()),
            lock_timeout: Duration::from_secs(10),
            lock_ttl: Duration::from_secs(60),
            commit_ms: None,
            allow_older: false,
            strategy: shipgate_pipeline::Strategy::Rolling,
            canary: shipgate_pipeline::Canary::default(),
            links: Vec::new(),
        };
        let cancel = CancellationToken::new();
        shipgate_pipeline::run(&plan("v1"), &ledger, &mut runner, &quiet, &cancel)
            .await
            .unwrap();
        let mut overheads = Vec::new();
        let mut first_actions = Vec::new();
        for i in 0..runs {
            let summary = shipgate_pipeline::run(
                &plan(&format!("v{}-broken", i + 2)),
                &ledger,
                &mut runner,
                &quiet,
                &cancel,
            )
            .await
            .unwrap();
            assert_eq!(
                summary.outcome,
                shipgate_pipeline::Outcome::RolledBack,
                "{}",
                summary.message
            );
            let waits: i64 = summary
                .steps
                .iter()
                .filter(|s| {
                    s.name.starts_with("deploy")
                        || s.name.starts_with("rollback")
                        || s.name.starts_with("smoke")
                })
                .map(|s| s.duration_ms)
                .sum();
            overheads.push((summary.duration_ms - waits) as f64);
            first_actions.push(summary.rollback.unwrap().first_action_ms.unwrap());
        }
        provider(dir.path(), port).shutdown().await.unwrap();
        (overheads, first_actions)
    });
    println!(
        "pipeline overhead with the local provider, {runs} gate-fail-and-rollback runs (median):"
    );
    println!(
        "  wall time minus provider and probe steps: {:.1} ms (target <= 150 ms)",
        median(overheads)
    );
    println!(
        "  failing smoke result to first rollback action: {:.3} ms (target <= 50 ms)",
        median(first_actions)
    );
}
