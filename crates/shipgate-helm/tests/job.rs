//! Migrations as Kubernetes Jobs against the loopback Kubernetes API: success with the pod's
//! output, failure with its last log lines, a Job still running at the deadline is deleted,
//! and an interrupted deploy deletes it too. The Secret's values never enter the Job spec.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use shipgate_helm::KubernetesJob;
use shipgate_provider::{MigrationError, MigrationJob};
use shipgate_testkit::fakes::FakeKube;
use tokio_util::sync::CancellationToken;

async fn job(
    kube: &FakeKube,
    addr: std::net::SocketAddr,
    name: &str,
    image: &str,
) -> KubernetesJob {
    let yaml = FakeKube::kubeconfig(addr, &kube.token);
    KubernetesJob::new(
        Some(&yaml),
        None,
        "shop",
        name,
        image,
        vec!["./bin/migrate".into(), "up".into()],
        Some("shop-db".into()),
    )
    .await
    .unwrap()
    .with_poll(Duration::from_millis(20))
}

#[tokio::test]
async fn a_migration_job_succeeds_fails_or_is_deleted() {
    let kube = FakeKube::new("kube-token");
    let addr = kube.clone().start().await;
    let never = CancellationToken::new();

    let ok = job(&kube, addr, "shop-migrate-1", "ghcr.io/acme/shop:1111111").await;
    assert!(ok.describe().contains("shop-migrate-1 in namespace shop"));
    let out = ok.run(Duration::from_secs(5), &never).await.unwrap();
    assert!(out.contains("migrations complete"), "{out}");
    let created =
        kube.jobs.lock().unwrap()[&("shop".to_owned(), "shop-migrate-1".to_owned())].clone();
    let container = &created["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["envFrom"][0]["secretRef"]["name"], "shop-db");
    assert_eq!(created["spec"]["backoffLimit"], 0);
    assert_eq!(
        created["spec"]["template"]["spec"]["restartPolicy"],
        "Never"
    );

    let failing = job(
        &kube,
        addr,
        "shop-migrate-2",
        "ghcr.io/acme/shop-fail:2222222",
    )
    .await;
    let err = failing
        .run(Duration::from_secs(5), &never)
        .await
        .unwrap_err();
    assert!(matches!(err, MigrationError::Failed(_)), "{err}");
    let why = err.to_string();
    assert!(
        why.contains("failed") && why.contains("relation \"orders\" does not exist"),
        "{why}"
    );

    let hanging = job(
        &kube,
        addr,
        "shop-migrate-3",
        "ghcr.io/acme/shop-hang:3333333",
    )
    .await;
    let err = hanging
        .run(Duration::from_millis(200), &never)
        .await
        .unwrap_err();
    assert!(matches!(err, MigrationError::TimedOut(_)), "{err}");
    let why = err.to_string();
    assert!(
        why.contains("still running") && why.contains("deleted"),
        "{why}"
    );
    assert!(
        !kube
            .jobs
            .lock()
            .unwrap()
            .contains_key(&("shop".to_owned(), "shop-migrate-3".to_owned()))
    );

    let interrupted = job(
        &kube,
        addr,
        "shop-migrate-4",
        "ghcr.io/acme/shop-hang:4444444",
    )
    .await;
    let cancel = CancellationToken::new();
    let stopper = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        stopper.cancel();
    });
    let err = interrupted
        .run(Duration::from_secs(30), &cancel)
        .await
        .unwrap_err();
    assert!(err.is_interrupted(), "{err}");
    assert!(
        !kube
            .jobs
            .lock()
            .unwrap()
            .contains_key(&("shop".to_owned(), "shop-migrate-4".to_owned()))
    );
}
