//! The local provider with real processes: the demo service, the router, the conformance
//! suite, a release that crashes after start, and a second provider reading the same state.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use shipgate_local::{LocalOptions, LocalProvider};
use shipgate_provider::conformance::{Scenario, run};
use shipgate_provider::{Provider, ProviderError, Verdict};
use tokio_util::sync::CancellationToken;

mod common;

use common::{StopOnDrop, deploy, deploy_and_wait, free_port, get, options, target};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_provider_passes_the_conformance_suite() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let _stop = StopOnDrop(target(dir.path(), port));
    let provider = LocalProvider::new(&target(dir.path(), port), options()).unwrap();
    let scenario = Scenario {
        service: "api".parse().unwrap(),
        good: "demo/api:v1".parse().unwrap(),
        upgrade: "demo/api:v2".parse().unwrap(),
        unhealthy: "demo/api:v3-unhealthy".parse().unwrap(),
        timeout: Duration::from_secs(4),
    };
    run(&provider, &scenario).await;
    // After the rollback the stable port serves v1 through the router.
    assert_eq!(get(port, "/version").await.as_deref(), Some("v1"));
    provider.shutdown().await.unwrap();
    assert_eq!(
        get(port, "/version").await,
        None,
        "shutdown stops the router too"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_that_crashes_after_start_fails_and_the_old_one_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let _stop = StopOnDrop(target(dir.path(), port));
    let provider = LocalProvider::new(&target(dir.path(), port), options()).unwrap();
    let cancel = CancellationToken::new();
    let quiet = |_: &shipgate_provider::WaitProgress| {};
    let deadline = || Instant::now() + Duration::from_secs(10);

    let first = provider.deploy(&deploy("v1")).await.unwrap();
    assert_eq!(
        provider
            .wait(&first, deadline(), &quiet, &cancel)
            .await
            .unwrap(),
        Verdict::Healthy
    );
    let old_pid_file = std::fs::read_to_string(dir.path().join("state.json")).unwrap();

    let crash = provider.deploy(&deploy("v2-crash")).await.unwrap();
    match provider
        .wait(&crash, deadline(), &quiet, &cancel)
        .await
        .unwrap()
    {
        Verdict::Failed {
            reason,
            diagnostics,
        } => {
            assert!(reason.contains("exit status: 3"), "{reason}");
            assert!(
                diagnostics
                    .iter()
                    .any(|l| l.contains("crashing on purpose")),
                "{diagnostics:?}"
            );
        }
        other => panic!("a crashing release must fail: {other:?}"),
    }
    assert_eq!(get(port, "/version").await.as_deref(), Some("v1"));

    // A second provider (another shipgate process) reads the same state.
    let second = LocalProvider::new(&target(dir.path(), port), options()).unwrap();
    let running = second.current().await.unwrap();
    assert_eq!(running.len(), 1);
    assert_eq!(running[0].image.to_string(), "demo/api:v1");
    assert!(old_pid_file.contains("\"revision\": 1"));
}

#[tokio::test]
async fn bad_configuration_and_requests_are_errors_before_anything_starts() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = target(dir.path(), free_port());
    let _stop = StopOnDrop(config.clone());

    let missing_router = LocalOptions {
        router: vec![dir.path().join("nope").display().to_string()],
        shipgate: None,
    };
    let err = LocalProvider::new(&config, missing_router).unwrap_err();
    assert!(err.to_string().contains("does not exist"), "{err}");

    // `{shipgate}` stands for the shipgate binary, which an embedding program is not.
    let mut uses_shipgate = config.clone();
    for service in uses_shipgate.services.values_mut() {
        service.command[0] = "{shipgate}".into();
    }
    let err = LocalProvider::new(&uses_shipgate, options()).unwrap_err();
    assert!(err.to_string().contains("{shipgate}"), "{err}");

    let provider = LocalProvider::new(&config, options()).unwrap();
    let mut unknown = deploy("v1");
    unknown.images =
        BTreeMap::from([("worker".parse().unwrap(), "demo/worker:v1".parse().unwrap())]);
    assert!(
        matches!(provider.deploy(&unknown).await, Err(ProviderError::Invalid { message: m, .. }) if m.contains("`worker`"))
    );

    config
        .services
        .get_mut(&"api".parse().unwrap())
        .unwrap()
        .command = vec!["/nonexistent/program".into()];
    let provider = LocalProvider::new(&config, options()).unwrap();
    let err = provider.deploy(&deploy("v1")).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("cannot start `/nonexistent/program`"),
        "{err}"
    );
    let history = provider.history().await.unwrap();
    assert_eq!(history[0].status, shipgate_provider::RevisionStatus::Failed);

    config
        .services
        .get_mut(&"api".parse().unwrap())
        .unwrap()
        .command = Vec::new();
    assert!(LocalProvider::new(&config, options()).is_err());
}

/// When another process holds the stable port, the router cannot listen: the deploy fails
/// saying so, instead of reporting healthy because something answers there. A port changed
/// in the configuration gets a router of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_router_must_be_the_one_serving_the_stable_port() {
    let dir = tempfile::tempdir().unwrap();
    // Another process listens on the stable port (and would answer a health check).
    let squatter = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = squatter.local_addr().unwrap().port();
    let _stop = StopOnDrop(target(dir.path(), port));
    let provider = LocalProvider::new(&target(dir.path(), port), options()).unwrap();
    let message = match deploy_and_wait(&provider, "v1").await {
        Ok(Verdict::Failed { reason, .. }) => reason,
        other => panic!("reported {other:?} while another process holds the port"),
    };
    assert!(
        message.contains(&format!("could not listen on its stable port {port}")),
        "{message}"
    );
    drop(squatter);

    // The port is free now: v1 goes live on it; then the configuration moves the service to
    // another port, whose own router serves v2.
    assert_eq!(
        deploy_and_wait(&provider, "v1").await.unwrap(),
        Verdict::Healthy
    );
    assert_eq!(get(port, "/version").await.as_deref(), Some("v1"));
    let moved = free_port();
    let provider = LocalProvider::new(&target(dir.path(), moved), options()).unwrap();
    assert_eq!(
        deploy_and_wait(&provider, "v2").await.unwrap(),
        Verdict::Healthy
    );
    assert_eq!(get(moved, "/version").await.as_deref(), Some("v2"));
}
