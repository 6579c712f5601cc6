//! The Helm provider against a fake `helm` that records its arguments: exact flags for helm 3
//! and 4, the pending-release rule, failures, deadlines (SIGTERM), rollback targets, history.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use shipgate_helm::HelmProvider;
use shipgate_provider::{Provider, ProviderError, RevisionId, RevisionStatus, Verdict};
use tokio_util::sync::CancellationToken;

mod common;

use common::{Fake, request};

const HISTORY: &str = r#"[{"revision":1,"status":"superseded","chart":"demo-0.1.0","description":"Install complete"},
{"revision":2,"status":"failed","chart":"demo-0.1.0","description":"Upgrade failed"},
{"revision":3,"status":"deployed","chart":"demo-0.1.0","description":"Upgrade complete"}]"#;

async fn wait(
    provider: &HelmProvider,
    deployment: &shipgate_provider::Deployment,
    within: Duration,
) -> Verdict {
    provider
        .wait(
            deployment,
            Instant::now() + within,
            &|_: &shipgate_provider::WaitProgress| {},
            &CancellationToken::new(),
        )
        .await
        .unwrap()
}

#[tokio::test]
async fn helm4_upgrade_arguments_and_a_private_kubeconfig() {
    let fake = Fake::new("v4.1.4+g05fa379").await;
    fake.file("history.json", HISTORY);
    let provider = HelmProvider::new(fake.settings()).await.unwrap();
    assert_eq!(provider.helm_version(), "v4.1.4+g05fa379");
    let deployment = provider.deploy(&request("v2")).await.unwrap();
    assert_eq!(deployment.revision, RevisionId("4".into()));
    assert_eq!(
        wait(&provider, &deployment, Duration::from_secs(30)).await,
        Verdict::Healthy
    );

    let argv = fake.argv();
    let upgrade = argv.iter().find(|l| l.starts_with("upgrade")).unwrap();
    let chart = fake.dir.path().join("chart").display().to_string();
    assert!(
        upgrade.starts_with(&format!(
            "upgrade --install demo {chart} --namespace demo-ns --create-namespace --wait --timeout 90s --reset-then-reuse-values --set-string api.image.tag=v2 --output json --kubeconfig "
        )),
        "{upgrade}"
    );
    assert!(upgrade.ends_with("--kube-context fake"), "{upgrade}");
    let kubeconfig = upgrade
        .split("--kubeconfig ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap();
    let mode = std::fs::metadata(kubeconfig).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    // In a private directory of this user.
    let dir = std::path::Path::new(kubeconfig).parent().unwrap();
    assert_eq!(
        std::fs::metadata(dir).unwrap().permissions().mode() & 0o777,
        0o700
    );
    drop(provider);
    assert!(
        !std::path::Path::new(kubeconfig).exists(),
        "the kubeconfig is removed"
    );

    // A run killed with SIGKILL leaves its kubeconfig (token included); the next run removes it.
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    let dead = gone.id();
    gone.wait().unwrap();
    let left = dir.join(format!("kubeconfig-{dead}-left"));
    std::fs::write(&left, "token: secret").unwrap();
    let mine = dir.join(format!("kubeconfig-{}-mine", std::process::id()));
    std::fs::write(&mine, "token: still in use").unwrap();
    let provider = HelmProvider::new(fake.settings()).await.unwrap();
    assert!(!left.exists(), "the dead run's kubeconfig is removed");
    assert!(mine.exists(), "a live process's kubeconfig is kept");
    std::fs::remove_file(mine).unwrap();
    drop(provider);
}

#[tokio::test]
async fn helm3_asks_for_atomic_and_helm4_for_rollback_on_failure() {
    for (version, flag) in [("v3.19.0", "--atomic"), ("v4.1.4", "--rollback-on-failure")] {
        let fake = Fake::new(version).await;
        let mut settings = fake.settings();
        settings.rollback_on_failure = true;
        let provider = HelmProvider::new(settings).await.unwrap();
        let deployment = provider.deploy(&request("v2")).await.unwrap();
        assert_eq!(
            deployment.revision,
            RevisionId("1".into()),
            "a first install"
        );
        wait(&provider, &deployment, Duration::from_secs(30)).await;
        let argv = fake.argv();
        let upgrade = argv.iter().find(|l| l.starts_with("upgrade")).unwrap();
        assert!(upgrade.contains(flag), "{version}: {upgrade}");
        // helm's own rollback may take as long as the upgrade: both fit in shipgate's 100 s.
        assert!(upgrade.contains("--timeout 45s"), "{version}: {upgrade}");
    }
}

#[tokio::test]
async fn a_pending_upgrade_is_rolled_back_to_the_newest_good_revision_before_upgrading() {
    let fake = Fake::new("v4.1.4").await;
    fake.file(
        "history.json",
        r#"[{"revision":1,"status":"superseded"},{"revision":2,"status":"deployed"},{"revision":3,"status":"failed"},{"revision":4,"status":"pending-upgrade"}]"#,
    );
    let provider = HelmProvider::new(fake.settings()).await.unwrap();
    // The recovery is reported (the pipeline records it as a step of the run).
    assert_eq!(
        provider.recover().await.unwrap(),
        ["recovered release demo from pending revision 4 by rolling back to revision 2"]
    );
    let deployment = provider.deploy(&request("v5")).await.unwrap();
    assert_eq!(
        wait(&provider, &deployment, Duration::from_secs(30)).await,
        Verdict::Healthy
    );
    let argv = fake.argv();
    let rollback = argv
        .iter()
        .position(|l| l.starts_with("rollback demo 2 --namespace demo-ns --wait --timeout 90s"))
        .unwrap();
    let upgrade = argv.iter().position(|l| l.starts_with("upgrade")).unwrap();
    assert!(rollback < upgrade, "{argv:#?}");

    let mut settings = fake.settings();
    settings.recover_pending = false;
    let strict = HelmProvider::new(settings).await.unwrap();
    let err = strict.deploy(&request("v5")).await.unwrap_err();
    assert!(
        err.to_string().contains("locked by pending revision 4"),
        "{err}"
    );
}

#[tokio::test]
async fn a_pending_install_is_uninstalled_first() {
    let fake = Fake::new("v3.19.0").await;
    fake.file(
        "history.json",
        r#"[{"revision":1,"status":"pending-install"}]"#,
    );
    let provider = HelmProvider::new(fake.settings()).await.unwrap();
    let deployment = provider.deploy(&request("v1")).await.unwrap();
    wait(&provider, &deployment, Duration::from_secs(30)).await;
    assert!(
        fake.argv()
            .iter()
            .any(|l| l.starts_with("uninstall demo --namespace demo-ns --wait")),
        "{:#?}",
        fake.argv()
    );
}

#[tokio::test]
async fn a_failed_upgrade_is_a_failed_verdict_with_helms_words() {
    let fake = Fake::new("v4.1.4").await;
    fake.file("history.json", HISTORY);
    fake.file(
        "upgrade.stderr",
        "Error: UPGRADE FAILED: context deadline exceeded\n",
    );
    let provider = HelmProvider::new(fake.settings()).await.unwrap();
    let deployment = provider.deploy(&request("v2")).await.unwrap();
    match wait(&provider, &deployment, Duration::from_secs(30)).await {
        Verdict::Failed {
            reason,
            diagnostics,
        } => {
            assert!(
                reason.contains("did not finish within helm's --timeout"),
                "{reason}"
            );
            assert_eq!(
                diagnostics,
                ["Error: UPGRADE FAILED: context deadline exceeded"]
            );
            assert_eq!(
                provider.diagnostics(&deployment).await.unwrap(),
                diagnostics
            );
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn at_the_deadline_helm_gets_sigterm_not_sigkill() {
    let fake = Fake::new("v4.1.4").await;
    fake.file("history.json", HISTORY);
    fake.file("upgrade.sleep", "30");
    let provider = HelmProvider::new(fake.settings()).await.unwrap();
    let deployment = provider.deploy(&request("v2")).await.unwrap();
    match wait(&provider, &deployment, Duration::from_millis(500)).await {
        Verdict::TimedOut { diagnostics, .. } => {
            assert!(
                diagnostics
                    .iter()
                    .any(|l| l.contains("Release has been cancelled.")),
                "helm handled SIGTERM: {diagnostics:?}"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn rollback_goes_to_the_named_revision_and_refuses_a_failed_one() {
    let fake = Fake::new("v4.1.4").await;
    fake.file("history.json", HISTORY);
    fake.file("values-1.json", r#"{"api":{"image":{"tag":"v1"}}}"#);
    fake.file("values-3.json", r#"{"api":{"image":{"tag":"v3"}}}"#);
    let provider = HelmProvider::new(fake.settings()).await.unwrap();

    let history = provider.history().await.unwrap();
    let ids: Vec<(&str, RevisionStatus)> = history
        .iter()
        .map(|r| (r.id.0.as_str(), r.status))
        .collect();
    assert_eq!(
        ids,
        [
            ("3", RevisionStatus::Deployed),
            ("2", RevisionStatus::Failed),
            ("1", RevisionStatus::Superseded)
        ]
    );
    assert_eq!(
        history[0].images.values().next().unwrap().to_string(),
        "ghcr.io/acme/api:v3"
    );
    let current = provider.current().await.unwrap();
    assert_eq!(current[0].image.to_string(), "ghcr.io/acme/api:v3");

    let target = shipgate_provider::previous_good(&history, &RevisionId("3".into())).unwrap();
    assert_eq!(target.id.0, "1", "the failed revision 2 is skipped");
    let back = provider.rollback(&target.id).await.unwrap();
    assert_eq!(back.revision.0, "4");
    assert_eq!(
        back.request.images.values().next().unwrap().to_string(),
        "ghcr.io/acme/api:v1"
    );
    assert_eq!(
        wait(&provider, &back, Duration::from_secs(30)).await,
        Verdict::Healthy
    );
    assert!(
        fake.argv()
            .iter()
            .any(|l| l.starts_with("rollback demo 1 --namespace demo-ns --wait --timeout 90s"))
    );

    assert!(matches!(
        provider.rollback(&RevisionId("2".into())).await,
        Err(ProviderError::Invalid { .. })
    ));
    assert!(matches!(
        provider.rollback(&RevisionId("9".into())).await,
        Err(ProviderError::NotFound { .. })
    ));
}

#[tokio::test]
async fn bad_settings_are_refused_before_anything_runs() {
    let fake = Fake::new("v3.12.0").await;
    let err = HelmProvider::new(fake.settings()).await.unwrap_err();
    assert!(err.to_string().contains("too old"), "{err}");

    let fake = Fake::new("v4.1.4").await;
    let mut settings = fake.settings();
    settings.bin = "/nonexistent/helm".into();
    assert!(
        HelmProvider::new(settings)
            .await
            .unwrap_err()
            .to_string()
            .contains("cannot run helm")
    );

    let mut settings = fake.settings();
    settings.chart = fake.dir.path().join("missing-chart").display().to_string();
    assert!(
        HelmProvider::new(settings)
            .await
            .unwrap_err()
            .to_string()
            .contains("does not exist")
    );

    let mut settings = fake.settings();
    settings
        .tag_paths
        .insert("api".parse().unwrap(), "api.imag.tag".into());
    let err = HelmProvider::new(settings).await.unwrap_err().to_string();
    assert!(
        err.contains("value path `api.imag.tag` is not in the chart's values.yaml"),
        "{err}"
    );

    let mut settings = fake.settings();
    settings.context = Some("missing".into());
    assert!(
        HelmProvider::new(settings)
            .await
            .unwrap_err()
            .to_string()
            .contains("kubeconfig cannot be used")
    );

    let mut settings = fake.settings();
    settings.release = "Not_Valid".into();
    assert!(
        HelmProvider::new(settings)
            .await
            .unwrap_err()
            .to_string()
            .contains("not a valid release name")
    );

    let provider = HelmProvider::new(fake.settings()).await.unwrap();
    let mut unknown = request("v1");
    unknown.images = BTreeMap::from([(
        "worker".parse().unwrap(),
        "ghcr.io/acme/worker:v1".parse().unwrap(),
    )]);
    assert!(
        provider
            .deploy(&unknown)
            .await
            .unwrap_err()
            .to_string()
            .contains("no image tag path")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_helm_provider_passes_the_conformance_suite_on_a_stateful_fake() {
    let fake = Fake::new("v4.1.4").await;
    fake.file("stateful", "");
    let provider = HelmProvider::new(fake.settings()).await.unwrap();
    let scenario = shipgate_provider::conformance::Scenario {
        service: "api".parse().unwrap(),
        good: "ghcr.io/acme/api:v1".parse().unwrap(),
        upgrade: "ghcr.io/acme/api:v2".parse().unwrap(),
        unhealthy: "ghcr.io/acme/api:v3-unhealthy".parse().unwrap(),
        timeout: Duration::from_secs(30),
    };
    shipgate_provider::conformance::run(&provider, &scenario).await;
    assert!(
        fake.argv()
            .iter()
            .any(|l| l.starts_with("rollback demo 1 ")),
        "{:#?}",
        fake.argv()
    );
}
