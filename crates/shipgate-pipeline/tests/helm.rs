//! The pipeline with the Helm provider when the Helm target's own rollout fails after helm
//! recorded the revision `deployed` (helm's `--wait` passed, the rollout check through the
//! Kubernetes API did not): the run reads back what the target runs, and rolls it back like a
//! failed gate instead of saying the previous release still serves. Helm is the stateful
//! stand-in of `shipgate-helm` (history and values move as helm's do); the Kubernetes API is
//! the loopback fake, whose workload recovers only once the rollback has started.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::json;
use shipgate_core::Redactor;
use shipgate_helm::{HelmProvider, HelmSettings, Values};
use shipgate_ledger::Ledger;
use shipgate_pipeline::{Outcome, Target};
use shipgate_smoke::SmokeRunner;
use shipgate_testkit::fakes::FakeKube;
use tokio_util::sync::CancellationToken;

/// The demo release's Deployment as the Kubernetes API reports it: stuck or available.
fn workload(generation: u64, stuck: bool) -> serde_json::Value {
    let (available, progressing) = if stuck {
        (
            1,
            json!({"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}),
        )
    } else {
        (
            2,
            json!({"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}),
        )
    };
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "demo-api", "namespace": "demo-ns", "generation": generation, "labels": {"app.kubernetes.io/instance": "demo"}},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "demo-api"}}, "template": {}},
        "status": {"observedGeneration": generation, "replicas": 2, "updatedReplicas": 2, "availableReplicas": available, "readyReplicas": available,
            "conditions": [progressing]}
    })
}

/// The stateful helm stand-in in `fake` with v1 live (revision 1, deployed).
fn helm_with_v1_live(fake: &std::path::Path) {
    std::fs::write(fake.join("version"), "v3.19.0").unwrap();
    std::fs::write(fake.join("stateful"), "").unwrap();
    std::fs::create_dir(fake.join("chart")).unwrap();
    std::fs::write(
        fake.join("chart/values.yaml"),
        "api:\n  image:\n    tag: \"0\"\n",
    )
    .unwrap();
    std::fs::write(
        fake.join("history.json"),
        r#"[{"revision":1,"status":"deployed","description":"Install complete"}]"#,
    )
    .unwrap();
    std::fs::write(
        fake.join("values-1.json"),
        r#"{"api":{"image":{"tag":"v1"}}}"#,
    )
    .unwrap();
}

/// The Helm target of release `demo` in `demo-ns` through the stand-in in `fake` and the
/// Kubernetes API fake at `api`, driving Argo Rollout `rollout` when given.
async fn helm_target(
    fake: &std::path::Path,
    api: std::net::SocketAddr,
    rollout: Option<&str>,
) -> Target {
    let settings = HelmSettings {
        bin: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shipgate-helm/tests/fake-helm"),
        release: "demo".into(),
        namespace: "demo-ns".into(),
        chart: fake.join("chart").display().to_string(),
        chart_version: None,
        values_files: Vec::new(),
        tag_paths: BTreeMap::from([("api".parse().unwrap(), "api.image.tag".into())]),
        repositories: BTreeMap::from([("api".parse().unwrap(), "ghcr.io/acme/api".into())]),
        values: Values::ResetThenReuse,
        timeout: Duration::from_secs(30),
        rollback_on_failure: false,
        recover_pending: true,
        kubeconfig: Some(FakeKube::kubeconfig(api, "token")),
        context: Some("fake".into()),
        env: vec![("FAKE_HELM_DIR".into(), fake.display().to_string())],
        rollout: rollout.map(str::to_owned),
    };
    Target {
        name: "helm".into(),
        provider: Box::new(HelmProvider::new(settings).await.unwrap()),
        timeout: Duration::from_secs(30),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_helm_rollout_that_fails_after_helm_recorded_it_deployed_is_rolled_back() {
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path();
    // v1 is live: revision 1, deployed.
    helm_with_v1_live(fake);
    let kube = FakeKube::new("token");
    kube.objects.lock().unwrap().insert(
        ("demo-ns".into(), "deployments".into()),
        vec![workload(2, true)],
    );
    let api = kube.clone().start().await;
    let ledger = Ledger::open(&format!("sqlite://{}", fake.join("ledger.db").display()))
        .await
        .unwrap();
    let target = helm_target(fake, api, None).await;
    let images = vec![(
        "api".parse().unwrap(),
        "ghcr.io/acme/api:v2".parse().unwrap(),
    )];
    let plan = common::plan(
        "run-v2".into(),
        "v2",
        images,
        target,
        Duration::from_secs(30),
    );
    // The cluster recovers once the rollback is under way (the old ReplicaSet scales back).
    let objects = kube.objects.clone();
    let events = move |event: &shipgate_pipeline::PipelineEvent| {
        if matches!(event, shipgate_pipeline::PipelineEvent::RollingBack { .. }) {
            objects.lock().unwrap().insert(
                ("demo-ns".into(), "deployments".into()),
                vec![workload(3, false)],
            );
        }
    };
    let mut runner = SmokeRunner::new(Redactor::default()).unwrap();
    let summary = shipgate_pipeline::run(
        &plan,
        &ledger,
        &mut runner,
        &events,
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(summary.outcome, Outcome::RolledBack, "{}", summary.message);
    assert!(
        summary
            .message
            .contains("read back, the previous release runs on helm"),
        "{}",
        summary.message
    );
    // What the run stood on: the failed target read back running v2, the rollback v1.
    assert_eq!(
        summary.targets[0].read_back.as_ref().unwrap()["api"],
        "ghcr.io/acme/api:v2"
    );
    let rollback = summary.rollback.as_ref().unwrap();
    assert_eq!(
        rollback.targets[0].read_back.as_ref().unwrap()["api"],
        "ghcr.io/acme/api:v1"
    );
    // Helm's own record: revision 2 (v2) superseded by the rollback to revision 1.
    let history: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fake.join("history.json")).unwrap()).unwrap();
    assert_eq!(history[2]["description"], "Rollback to 1", "{history}");
    assert_eq!(history[2]["status"], "deployed");
}

/// Blue-green through an Argo Rollout: the release failing its smoke spec is caught behind
/// the preview Service (reached through the Kubernetes API's service proxy), the Rollout is
/// aborted and the Helm release rolled back; users, on the active Service, never left v1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bluegreen_rollout_failing_its_smoke_spec_is_aborted_before_any_user_request() {
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path();
    // v1 is live: revision 1, deployed.
    helm_with_v1_live(fake);
    let kube = FakeKube::new("token");
    kube.argo.rollout("demo-ns", "demo", "h1", "v1");
    kube.argo.next_revision("h2", "v2-broken", true);
    let api = kube.clone().start().await;
    let ledger = Ledger::open(&format!("sqlite://{}", fake.join("ledger.db").display()))
        .await
        .unwrap();
    let target = helm_target(fake, api, Some("demo")).await;
    let images = vec![(
        "api".parse().unwrap(),
        "ghcr.io/acme/api:v2-broken".parse().unwrap(),
    )];
    let mut orders = shipgate_config::SmokeCheck::get("/api/orders");
    orders.status = Some(shipgate_config::StatusExpectation::Code(200));
    let smoke = shipgate_config::SmokeConfig {
        checks: vec![orders],
        ..shipgate_config::SmokeConfig::default()
    };
    let spec = shipgate_smoke::compile(
        &smoke,
        &shipgate_smoke::SpecOptions {
            // The public URL; before traffic the gate goes to the preview instead.
            base_url: Some("http://shop.example.invalid".into()),
            api_key: None,
            production_like: false,
        },
    )
    .unwrap();
    let plan = shipgate_pipeline::Plan {
        smoke: Some(spec),
        strategy: shipgate_pipeline::Strategy::Bluegreen,
        ..common::plan(
            "run-v2".into(),
            "v2-broken",
            images,
            target,
            Duration::from_secs(30),
        )
    };
    let mut runner = SmokeRunner::new(Redactor::default()).unwrap();
    let summary = shipgate_pipeline::run(
        &plan,
        &ledger,
        &mut runner,
        &|_: &shipgate_pipeline::PipelineEvent| {},
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(summary.outcome, Outcome::RolledBack, "{}", summary.message);
    assert_eq!(summary.strategy, shipgate_pipeline::Strategy::Bluegreen);
    let steps: Vec<&str> = summary.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        steps,
        ["lock", "stage helm", "smoke before traffic", "abort helm"]
    );
    assert!(!summary.smoke_before_traffic.as_ref().unwrap().passed);
    // Read back: users on v1 (the active Service); Helm's record rolled back to revision 1.
    assert_eq!(kube.argo.serving("demo-ns", "demo").as_deref(), Some("v1"));
    assert_eq!(
        summary.rollback.as_ref().unwrap().targets[0]
            .read_back
            .as_ref()
            .unwrap()["api"],
        "ghcr.io/acme/api:v1"
    );
    let history: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fake.join("history.json")).unwrap()).unwrap();
    assert_eq!(history[2]["description"], "Rollback to 1", "{history}");
}
