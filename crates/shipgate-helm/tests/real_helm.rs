//! The Helm provider driving the real helm binaries (v3.19.0 and v4.1.4, installed by
//! `scripts/test` from `scripts/install-helm.sh`) with helm's memory driver
//! (`HELM_DRIVER=memory`, releases seeded from `HELM_MEMORY_DRIVER_DATA`) and a loopback stub of
//! the Kubernetes discovery endpoints: real flag parsing, real JSON, real error text.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use shipgate_helm::{HelmProvider, HelmSettings, Values};
use shipgate_provider::{DeployRequest, Provider, RevisionId, RevisionStatus, Verdict};
use shipgate_testkit::fakes::FakeKube;
use tokio_util::sync::CancellationToken;

/// The helm binaries `scripts/test` installs.
fn helms() -> Vec<PathBuf> {
    ["SHIPGATE_TEST_HELM3", "SHIPGATE_TEST_HELM4"]
        .iter()
        .map(|var| {
            PathBuf::from(std::env::var(var).unwrap_or_else(|_| {
                panic!("{var} is not set: run ./scripts/test, which installs helm 3 and 4 with scripts/install-helm.sh")
            }))
        })
        .collect()
}

struct World {
    dir: tempfile::TempDir,
    /// The Kubernetes API: discovery for helm, workloads and pods for the rollout check.
    kube: FakeKube,
    api: SocketAddr,
}

impl World {
    async fn new(seed: Option<&str>) -> World {
        let dir = tempfile::tempdir().unwrap();
        let chart = dir.path().join("chart");
        std::fs::create_dir_all(chart.join("templates")).unwrap();
        std::fs::write(
            chart.join("Chart.yaml"),
            "apiVersion: v2\nname: demo\nversion: 0.1.0\nappVersion: \"1.0.0\"\n",
        )
        .unwrap();
        std::fs::write(
            chart.join("values.yaml"),
            "api:\n  image:\n    repository: ghcr.io/acme/api\n    tag: \"0\"\n",
        )
        .unwrap();
        std::fs::write(
            chart.join("templates/configmap.yaml"),
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-api\ndata:\n  image: \"{{ .Values.api.image.repository }}:{{ .Values.api.image.tag }}\"\n",
        )
        .unwrap();
        // Helm 3's memory driver insists on a data file, even an empty one.
        std::fs::write(dir.path().join("releases.yaml"), seed.unwrap_or("[]\n")).unwrap();
        let kube = FakeKube::new("stub-token");
        let api = kube.clone().start().await;
        World { dir, kube, api }
    }

    fn settings(&self, bin: &std::path::Path) -> HelmSettings {
        let home = |name: &str| self.dir.path().join(name).display().to_string();
        let env = vec![
            ("HELM_DRIVER".to_owned(), "memory".to_owned()),
            ("HELM_CACHE_HOME".to_owned(), home("cache")),
            ("HELM_CONFIG_HOME".to_owned(), home("config")),
            ("HELM_DATA_HOME".to_owned(), home("data")),
            ("HELM_MEMORY_DRIVER_DATA".to_owned(), home("releases.yaml")),
        ];
        HelmSettings {
            bin: bin.to_owned(),
            release: "demo".into(),
            namespace: "default".into(),
            chart: self.dir.path().join("chart").display().to_string(),
            chart_version: None,
            values_files: Vec::new(),
            tag_paths: BTreeMap::from([("api".parse().unwrap(), "api.image.tag".into())]),
            repositories: BTreeMap::from([("api".parse().unwrap(), "ghcr.io/acme/api".into())]),
            values: Values::ResetThenReuse,
            timeout: Duration::from_secs(60),
            rollback_on_failure: false,
            recover_pending: true,
            kubeconfig: Some(FakeKube::kubeconfig(self.api, "stub-token")),
            context: Some("fake".into()),
            env,
            rollout: None,
        }
    }
}

fn request(tag: &str) -> DeployRequest {
    DeployRequest {
        images: BTreeMap::from([(
            "api".parse().unwrap(),
            format!("ghcr.io/acme/api:{tag}").parse().unwrap(),
        )]),
        description: format!("deploy {tag}"),
    }
}

async fn wait(provider: &HelmProvider, deployment: &shipgate_provider::Deployment) -> Verdict {
    provider
        .wait(
            deployment,
            Instant::now() + Duration::from_secs(60),
            &|_: &shipgate_provider::WaitProgress| {},
            &CancellationToken::new(),
        )
        .await
        .unwrap()
}

fn seed(last: &str) -> String {
    let release = |version: u32, status: &str, tag: &str| {
        format!(
            "- name: demo\n  version: {version}\n  namespace: default\n  info: {{status: {status}, description: seeded, last_deployed: \"2026-11-0{version}T10:00:00Z\"}}\n  chart: {{metadata: {{name: demo, version: 0.1.0, appVersion: \"1.0.0\"}}}}\n  config: {{api: {{image: {{tag: \"{tag}\"}}}}}}\n"
        )
    };
    format!(
        "{}{}{}",
        release(1, "superseded", "v1"),
        release(2, "failed", "v2"),
        release(3, last, "v3")
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_helm_accepts_our_upgrade_arguments_on_a_first_install() {
    for bin in helms() {
        let world = World::new(None).await;
        let provider = HelmProvider::new(world.settings(&bin)).await.unwrap();
        let deployment = provider.deploy(&request("3f2c1a9")).await.unwrap();
        assert_eq!(deployment.revision, RevisionId("1".into()));
        assert_eq!(
            wait(&provider, &deployment).await,
            Verdict::Healthy,
            "{}",
            provider.helm_version()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_helm_history_values_and_rollback_to_a_computed_revision() {
    for bin in helms() {
        let world = World::new(Some(&seed("deployed"))).await;
        let provider = HelmProvider::new(world.settings(&bin)).await.unwrap();
        let history = provider.history().await.unwrap();
        let seen: Vec<(&str, RevisionStatus, String)> = history
            .iter()
            .map(|r| {
                (
                    r.id.0.as_str(),
                    r.status,
                    r.images
                        .values()
                        .next()
                        .map(ToString::to_string)
                        .unwrap_or_default(),
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                (
                    "3",
                    RevisionStatus::Deployed,
                    "ghcr.io/acme/api:v3".to_owned()
                ),
                (
                    "2",
                    RevisionStatus::Failed,
                    "ghcr.io/acme/api:v2".to_owned()
                ),
                (
                    "1",
                    RevisionStatus::Superseded,
                    "ghcr.io/acme/api:v1".to_owned()
                ),
            ],
            "{}",
            provider.helm_version()
        );
        let target = shipgate_provider::previous_good(&history, &RevisionId("3".into())).unwrap();
        assert_eq!(target.id.0, "1");
        let back = provider.rollback(&target.id).await.unwrap();
        assert_eq!(wait(&provider, &back).await, Verdict::Healthy);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_helm_reports_a_pending_release_as_locked() {
    for bin in helms() {
        // The memory driver forgets between helm processes, so after shipgate's recovery
        // rollback the upgrade still sees the seeded pending revision: real helm's words.
        let world = World::new(Some(&seed("pending-upgrade"))).await;
        let provider = HelmProvider::new(world.settings(&bin)).await.unwrap();
        let deployment = provider.deploy(&request("v4")).await.unwrap();
        match wait(&provider, &deployment).await {
            Verdict::Failed { reason, .. } => {
                assert!(
                    reason.contains("locked by another operation"),
                    "{}: {reason}",
                    provider.helm_version()
                );
            }
            other => panic!("{}: {other:?}", provider.helm_version()),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollout_that_exceeds_its_progress_deadline_fails_with_pod_reasons() {
    for bin in helms() {
        let world = World::new(None).await;
        let deployment = serde_json::json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "demo-api", "namespace": "default", "generation": 2, "labels": {"app.kubernetes.io/instance": "demo"}},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "demo-api"}}, "template": {}},
            "status": {"observedGeneration": 2, "replicas": 2, "updatedReplicas": 1, "availableReplicas": 1,
                "conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]}
        });
        let pod = serde_json::json!({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "demo-api-7d9f", "namespace": "default", "labels": {"app": "demo-api"}},
            "status": {"containerStatuses": [{"name": "api", "image": "ghcr.io/acme/api:bad", "imageID": "", "ready": false, "restartCount": 4,
                "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 1m20s restarting failed container"}}}]}
        });
        {
            let mut objects = world.kube.objects.lock().unwrap();
            objects.insert(("default".into(), "deployments".into()), vec![deployment]);
            objects.insert(("default".into(), "pods".into()), vec![pod]);
            world.kube.logs.lock().unwrap().insert(
                ("default".into(), "demo-api-7d9f".into()),
                "panic: DATABASE_URL is not set\n".into(),
            );
        }
        let provider = HelmProvider::new(world.settings(&bin)).await.unwrap();
        let deployment = provider.deploy(&request("bad")).await.unwrap();
        match wait(&provider, &deployment).await {
            Verdict::Failed {
                reason,
                diagnostics,
            } => {
                assert_eq!(
                    reason,
                    "deployment demo-api exceeded its progress deadline",
                    "{}",
                    provider.helm_version()
                );
                assert!(
                    diagnostics
                        .iter()
                        .any(|l| l.contains("container api CrashLoopBackOff")),
                    "{diagnostics:?}"
                );
                assert!(
                    diagnostics
                        .iter()
                        .any(|l| l.contains("panic: DATABASE_URL is not set")),
                    "{diagnostics:?}"
                );
            }
            other => panic!("{}: {other:?}", provider.helm_version()),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_cluster_fails_the_deploy_with_helms_words() {
    for bin in helms() {
        let world = World::new(None).await;
        let mut settings = world.settings(&bin);
        settings.kubeconfig = Some(FakeKube::kubeconfig(
            shipgate_testkit::closed_port(),
            "stub-token",
        ));
        let provider = HelmProvider::new(settings).await.unwrap();
        let deployment = provider.deploy(&request("v1")).await.unwrap();
        match wait(&provider, &deployment).await {
            Verdict::Failed { reason, .. } => {
                assert!(
                    reason.contains("unreachable"),
                    "{}: {reason}",
                    provider.helm_version()
                );
            }
            other => panic!("{}: {other:?}", provider.helm_version()),
        }
    }
}

/// A token the Kubernetes API refuses is an authorisation failure naming the kubeconfig, never
/// "unreachable" or "temporarily unavailable": here the API fake refuses the rollout check's
/// reads (403) after helm ran; helm's own wording of a 401 ("cluster unreachable: the server
/// has asked for the client to provide credentials") is classified the same way (unit test in
/// `cli.rs`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_is_an_authorisation_failure_not_an_outage() {
    for bin in helms() {
        let world = World::new(None).await;
        let mut settings = world.settings(&bin);
        settings.kubeconfig = Some(FakeKube::kubeconfig(world.api, "revoked-token"));
        let provider = HelmProvider::new(settings).await.unwrap();
        let deployment = provider.deploy(&request("v1")).await.unwrap();
        match wait(&provider, &deployment).await {
            Verdict::Failed { reason, .. } => {
                assert!(
                    reason.contains("refused the kubeconfig's credentials")
                        && reason.contains("KUBE_CONFIG_DATA"),
                    "{}: {reason}",
                    provider.helm_version()
                );
                assert!(
                    !reason.contains("is unreachable"),
                    "{}: {reason}",
                    provider.helm_version()
                );
            }
            other => panic!("{}: {other:?}", provider.helm_version()),
        }
    }
}
