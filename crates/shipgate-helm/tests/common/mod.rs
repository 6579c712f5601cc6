//! The fake `helm` (tests/fake-helm) in a temporary directory, with a Kubernetes API fake for
//! the rollout checks, shared by the Helm provider's tests.

#![allow(clippy::unwrap_used, dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use shipgate_helm::{HelmSettings, Values};
use shipgate_provider::DeployRequest;
use shipgate_testkit::fakes::FakeKube;

pub(crate) struct Fake {
    pub(crate) dir: tempfile::TempDir,
    kubeconfig: String,
}

impl Fake {
    /// A fake helm reporting `version`, and an empty Kubernetes API for the rollout check.
    pub(crate) async fn new(version: &str) -> Fake {
        Fake::with_kube(version, FakeKube::new("token")).await
    }

    /// As [`Fake::new`], against `kube` (which must accept the token `token`).
    pub(crate) async fn with_kube(version: &str, kube: FakeKube) -> Fake {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("version"), version).unwrap();
        std::fs::create_dir(dir.path().join("chart")).unwrap();
        std::fs::write(
            dir.path().join("chart/values.yaml"),
            "api:\n  image:\n    tag: \"0\"\n",
        )
        .unwrap();
        let api = kube.start().await;
        Fake {
            dir,
            kubeconfig: FakeKube::kubeconfig(api, "token"),
        }
    }

    pub(crate) fn file(&self, name: &str, text: &str) {
        std::fs::write(self.dir.path().join(name), text).unwrap();
    }

    pub(crate) fn argv(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("argv.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    pub(crate) fn settings(&self) -> HelmSettings {
        HelmSettings {
            bin: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fake-helm"),
            release: "demo".into(),
            namespace: "demo-ns".into(),
            chart: self.dir.path().join("chart").display().to_string(),
            chart_version: None,
            values_files: Vec::new(),
            tag_paths: BTreeMap::from([("api".parse().unwrap(), "api.image.tag".into())]),
            repositories: BTreeMap::from([("api".parse().unwrap(), "ghcr.io/acme/api".into())]),
            values: Values::ResetThenReuse,
            timeout: Duration::from_secs(100),
            rollback_on_failure: false,
            recover_pending: true,
            kubeconfig: Some(self.kubeconfig.clone()),
            context: Some("fake".into()),
            env: vec![(
                "FAKE_HELM_DIR".into(),
                self.dir.path().display().to_string(),
            )],
            rollout: None,
        }
    }
}

pub(crate) fn request(tag: &str) -> DeployRequest {
    DeployRequest {
        images: BTreeMap::from([(
            "api".parse().unwrap(),
            format!("ghcr.io/acme/api:{tag}").parse().unwrap(),
        )]),
        description: format!("deploy {tag}"),
    }
}
