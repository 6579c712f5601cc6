//! Blue-green through an Argo Rollouts `Rollout`, against the stateful fake helm and the
//! Kubernetes API fake with Rollout objects of the CRD's shape and a controller that reacts to
//! the kubectl plugin's patches: staged behind the preview Service (reached through the API's
//! service proxy), promoted, aborted back to the old ReplicaSet with the Helm release rolled
//! back, and a Degraded rollout undone. What users reach is read from the active Service.

#![allow(clippy::unwrap_used, clippy::panic)]

use std::time::{Duration, Instant};

use shipgate_helm::HelmProvider;
use shipgate_provider::{Provider, StageOutcome, Verdict, WaitProgress};
use shipgate_testkit::fakes::FakeKube;
use tokio_util::sync::CancellationToken;

mod common;

use common::{Fake, request};

/// v1 deployed (Helm revision 1) and a healthy blue-green Rollout `demo` on pod hash `h1`.
async fn world() -> (Fake, FakeKube, HelmProvider) {
    world_with(None).await
}

/// As [`world`], with a canary Rollout of `steps` instead when given.
async fn world_with(steps: Option<serde_json::Value>) -> (Fake, FakeKube, HelmProvider) {
    let kube = FakeKube::new("token");
    match steps {
        Some(steps) => kube
            .argo
            .canary_rollout("demo-ns", "demo", "h1", "v1", steps),
        None => kube.argo.rollout("demo-ns", "demo", "h1", "v1"),
    }
    let fake = Fake::with_kube("v4.1.4", kube.clone()).await;
    fake.file("stateful", "");
    let mut settings = fake.settings();
    settings.rollout = Some("demo".into());
    let provider = HelmProvider::new(settings).await.unwrap();
    let first = provider.deploy(&request("v1")).await.unwrap();
    let verdict = provider
        .wait(
            &first,
            Instant::now() + Duration::from_secs(30),
            &|_: &WaitProgress| {},
            &CancellationToken::new(),
        )
        .await
        .unwrap();
    assert_eq!(verdict, Verdict::Healthy);
    (fake, kube, provider)
}

async fn stage(provider: &HelmProvider, tag: &str) -> StageOutcome {
    provider
        .stage(
            &request(tag),
            Instant::now() + Duration::from_secs(30),
            &|_: &WaitProgress| {},
            &CancellationToken::new(),
        )
        .await
        .unwrap()
}

/// `GET base/path` through the preview bridge: (status, body).
async fn get(base: &str, path: &str) -> (u16, String) {
    let client = shipgate_http::build_client(&shipgate_http::ClientOptions::default()).unwrap();
    let response = client.get(format!("{base}{path}")).send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_staged_release_is_tested_behind_the_preview_service_then_promoted() {
    let (fake, kube, provider) = world().await;
    assert!(provider.can_stage());
    kube.argo.next_revision("h2", "v2", true);
    let release = stage(&provider, "v2").await.into_staged().unwrap();
    // The preview, reached through the Kubernetes API: v2. Users: still v1.
    let endpoint = release.endpoints.values().next().unwrap().clone();
    assert_eq!(get(&endpoint, "/version").await, (200, "v2".to_owned()));
    assert_eq!(kube.argo.serving("demo-ns", "demo").as_deref(), Some("v1"));
    // Promotion is the plugin's patch; the active Service moves to v2.
    provider.shift(&release.deployment, 100).await.unwrap();
    assert_eq!(
        kube.argo.patches(),
        [serde_json::json!({"status": {"pauseConditions": null}})]
    );
    assert_eq!(kube.argo.serving("demo-ns", "demo").as_deref(), Some("v2"));
    let rollout = kube.argo.get("demo-ns", "demo");
    assert_eq!(
        (
            rollout["status"]["phase"].as_str(),
            rollout["status"]["stableRS"].as_str()
        ),
        (Some("Healthy"), Some("h2"))
    );
    provider.promote(&release.deployment).await.unwrap();
    assert!(!fake.argv().iter().any(|l| l.starts_with("rollback")));
    assert_eq!(
        provider.current().await.unwrap()[0].image.to_string(),
        "ghcr.io/acme/api:v2"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aborted_release_puts_users_back_and_rolls_the_helm_release_back() {
    let (fake, kube, provider) = world().await;
    kube.argo.next_revision("h2", "v2-broken", true);
    let release = stage(&provider, "v2-broken").await.into_staged().unwrap();
    let endpoint = release.endpoints.values().next().unwrap().clone();
    // What the pre-traffic gate sees: the broken critical path.
    assert_eq!(get(&endpoint, "/api/orders").await.0, 500);
    provider.abort(&release.deployment).await.unwrap();
    assert_eq!(
        kube.argo.patches(),
        [serde_json::json!({"status": {"abort": true}})]
    );
    // Users never left v1; the template is back (Helm's rollback to revision 1).
    assert_eq!(kube.argo.serving("demo-ns", "demo").as_deref(), Some("v1"));
    assert!(
        fake.argv()
            .iter()
            .any(|l| l.starts_with("rollback demo 1 ")),
        "{:#?}",
        fake.argv()
    );
    assert_eq!(
        provider.current().await.unwrap()[0].image.to_string(),
        "ghcr.io/acme/api:v1"
    );
    // The bridge is closed.
    let client = shipgate_http::build_client(&shipgate_http::ClientOptions::default()).unwrap();
    assert!(
        client
            .get(format!("{endpoint}/version"))
            .send()
            .await
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_degraded_rollout_is_not_healthy_and_is_undone_before_any_traffic() {
    let (fake, kube, provider) = world().await;
    kube.argo.next_revision("h3", "v3", false);
    match stage(&provider, "v3").await {
        StageOutcome::NotHealthy(_, Verdict::Failed { reason, .. }) => {
            assert!(
                reason.contains("Degraded") && reason.contains("ProgressDeadlineExceeded"),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        kube.argo.patches(),
        [serde_json::json!({"status": {"abort": true}})]
    );
    assert_eq!(kube.argo.serving("demo-ns", "demo").as_deref(), Some("v1"));
    assert!(
        fake.argv()
            .iter()
            .any(|l| l.starts_with("rollback demo 1 "))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_rollout_the_helm_provider_cannot_stage() {
    let fake = Fake::new("v4.1.4").await;
    let provider = HelmProvider::new(fake.settings()).await.unwrap();
    assert!(!provider.can_stage());
}

/// A canary that can be tested before traffic: one canary pod at weight 0, then 20 % and 50 %.
fn canary_steps() -> serde_json::Value {
    serde_json::json!([
        {"setCanaryScale": {"replicas": 1}}, {"setWeight": 0}, {"pause": {}},
        {"setWeight": 20}, {"pause": {}},
        {"setWeight": 50}, {"pause": {}}
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_rollout_is_tested_at_weight_zero_then_resumed_step_by_step() {
    let (_fake, kube, provider) = world_with(Some(canary_steps())).await;
    assert!(provider.can_split());
    kube.argo.next_revision("h2", "v2", true);
    let release = stage(&provider, "v2").await.into_staged().unwrap();
    // The canary Service, through the Kubernetes API: v2; the stable one: v1.
    let endpoint = release.endpoints.values().next().unwrap().clone();
    assert_eq!(get(&endpoint, "/version").await, (200, "v2".to_owned()));
    assert_eq!(kube.argo.serving("demo-ns", "demo").as_deref(), Some("v1"));
    // 10 % asked: the Rollout's next pause is at 20 %, which is what the canary has.
    assert_eq!(provider.shift(&release.deployment, 10).await.unwrap(), 20);
    assert_eq!(provider.shift(&release.deployment, 50).await.unwrap(), 50);
    assert_eq!(provider.shift(&release.deployment, 100).await.unwrap(), 100);
    let rollout = kube.argo.get("demo-ns", "demo");
    assert_eq!(
        (
            rollout["status"]["phase"].as_str(),
            rollout["status"]["stableRS"].as_str()
        ),
        (Some("Healthy"), Some("h2"))
    );
    assert_eq!(kube.argo.serving("demo-ns", "demo").as_deref(), Some("v2"));
    provider.promote(&release.deployment).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aborted_canary_step_goes_back_to_the_stable_pods_and_helm_rolls_back() {
    let (fake, kube, provider) = world_with(Some(canary_steps())).await;
    kube.argo.next_revision("h2", "v2-flaky", true);
    let release = stage(&provider, "v2-flaky").await.into_staged().unwrap();
    assert_eq!(provider.shift(&release.deployment, 20).await.unwrap(), 20);
    provider.abort(&release.deployment).await.unwrap();
    let patches = kube.argo.patches();
    assert_eq!(
        patches.last(),
        Some(&serde_json::json!({"status": {"abort": true}}))
    );
    assert_eq!(kube.argo.serving("demo-ns", "demo").as_deref(), Some("v1"));
    assert_eq!(
        kube.argo.serving("demo-ns", "demo-canary").as_deref(),
        Some("v1")
    );
    assert!(
        fake.argv()
            .iter()
            .any(|l| l.starts_with("rollback demo 1 "))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_whose_first_pause_already_has_users_is_refused_and_undone() {
    let steps = serde_json::json!([{"setWeight": 20}, {"pause": {}}]);
    let (fake, kube, provider) = world_with(Some(steps)).await;
    kube.argo.next_revision("h2", "v2", true);
    match stage(&provider, "v2").await {
        StageOutcome::NotHealthy(_, Verdict::Failed { reason, .. }) => {
            assert!(
                reason.contains("first pauses with 20% of traffic"),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(kube.argo.serving("demo-ns", "demo").as_deref(), Some("v1"));
    assert!(
        fake.argv()
            .iter()
            .any(|l| l.starts_with("rollback demo 1 "))
    );
}
