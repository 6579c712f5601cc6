//! The local provider's staged release with real processes: the staged release answers on
//! its own port while users keep the live one; `shift` moves them, `abort` brings them back
//! to the very same old process (never restarted), `promote` retires it.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{StopOnDrop, deploy, deploy_and_wait, free_port, get, options, target};
use shipgate_local::LocalProvider;
use shipgate_provider::{
    Provider, RevisionStatus, StageOutcome, Staged, TrafficObservation, Verdict, WaitProgress,
};
use tokio_util::sync::CancellationToken;

/// A demo target on a free port with v1 deployed and healthy; the guard stops every process
/// it started (before the directory goes).
async fn v1_live() -> (tempfile::TempDir, u16, StopOnDrop, LocalProvider) {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = target(dir.path(), port);
    let stop = StopOnDrop(config.clone());
    let provider = LocalProvider::new(&config, options()).unwrap();
    assert_eq!(
        deploy_and_wait(&provider, "v1").await.unwrap(),
        Verdict::Healthy
    );
    (dir, port, stop, provider)
}

async fn stage(provider: &LocalProvider, tag: &str) -> StageOutcome {
    provider
        .stage(
            &deploy(tag),
            Instant::now() + Duration::from_secs(10),
            &|_: &WaitProgress| {},
            &CancellationToken::new(),
        )
        .await
        .unwrap()
}

/// The revision serving the stable port, as the provider reads it back.
async fn live_revision(provider: &LocalProvider) -> String {
    provider.current().await.unwrap()[0].revision.0.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_staged_release_is_reachable_beside_the_live_one_and_an_abort_keeps_the_old_process() {
    let (_dir, port, _stop, provider) = v1_live().await;
    assert!(provider.can_stage());
    let v1_revision = live_revision(&provider).await;

    // Staged: v2 answers on its own endpoint; users on the stable port still get v1.
    let staged = stage(&provider, "v2").await.into_staged().unwrap();
    let endpoint = &staged.endpoints[&"api".parse().unwrap()];
    let staged_port: u16 = endpoint.rsplit(':').next().unwrap().parse().unwrap();
    assert_ne!(staged_port, port);
    assert_eq!(get(staged_port, "/version").await.as_deref(), Some("v2"));
    assert_eq!(get(port, "/version").await.as_deref(), Some("v1"));

    // Shifted: users get v2; v1 still runs.
    provider.shift(&staged.deployment, 100).await.unwrap();
    assert_eq!(get(port, "/version").await.as_deref(), Some("v2"));
    // Aborted: users are back on v1 at once, and it is the same revision (never restarted);
    // the staged process is gone.
    provider.abort(&staged.deployment).await.unwrap();
    assert_eq!(get(port, "/version").await.as_deref(), Some("v1"));
    assert_eq!(live_revision(&provider).await, v1_revision);
    assert_eq!(get(staged_port, "/version").await, None);
    let history = provider.history().await.unwrap();
    assert_eq!(history[0].status, RevisionStatus::Failed);
    assert_eq!(history[1].status, RevisionStatus::Deployed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_promoted_release_retires_the_old_one_and_shares_out_of_range_are_refused() {
    let (_dir, port, _stop, provider) = v1_live().await;

    let staged = stage(&provider, "v2").await.into_staged().unwrap();
    // Promoting what takes no traffic yet is refused; so is a share that is no share.
    assert!(provider.promote(&staged.deployment).await.is_err());
    for share in [0, 101] {
        let refused = provider.shift(&staged.deployment, share).await.unwrap_err();
        assert!(
            refused.to_string().contains("1 to 100 percent"),
            "{refused}"
        );
    }
    assert_eq!(get(port, "/version").await.as_deref(), Some("v1"));

    provider.shift(&staged.deployment, 100).await.unwrap();
    provider.promote(&staged.deployment).await.unwrap();
    assert_eq!(get(port, "/version").await.as_deref(), Some("v2"));
    let history = provider.history().await.unwrap();
    assert_eq!(
        (history[0].status, history[1].status),
        (RevisionStatus::Deployed, RevisionStatus::Superseded)
    );
}

/// Waits (up to 10 s) until the routers have written counts for `total` requests.
async fn observed(provider: &LocalProvider, staged: &Staged, total: u64) -> TrafficObservation {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let seen = provider.observe(&staged.deployment).await.unwrap().unwrap();
        if seen.staged.requests + seen.stable.requests >= total || Instant::now() > deadline {
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_share_is_exact_counted_per_release_and_an_abort_takes_it_back() {
    let (_dir, port, _stop, provider) = v1_live().await;
    let v1_revision = live_revision(&provider).await;
    let staged = stage(&provider, "v2-broken").await.into_staged().unwrap();
    let before = observed(&provider, &staged, 0).await;
    assert_eq!(before.staged.requests, 0);

    // 10 %: of any 100 consecutive user requests, exactly 10 reach the canary.
    provider.shift(&staged.deployment, 10).await.unwrap();
    let mut versions = std::collections::BTreeMap::new();
    for _ in 0..100 {
        let version = get(port, "/version")
            .await
            .unwrap_or_else(|| "failed".into());
        *versions.entry(version).or_insert(0) += 1;
    }
    assert_eq!(
        versions,
        [("v1".to_owned(), 90), ("v2-broken".to_owned(), 10)].into()
    );
    // The router counted them per release, and the canary's server errors.
    for _ in 0..100 {
        get(port, "/api/orders").await;
    }
    let step = observed(&provider, &staged, before.stable.requests + 200)
        .await
        .since(&before);
    assert_eq!((step.staged.requests, step.staged.errors), (20, 10));
    assert_eq!((step.stable.requests, step.stable.errors), (180, 0));
    assert!(step.staged.p95().is_some());
    // The live release is still the old one: a share is not a switch.
    assert_eq!(live_revision(&provider).await, v1_revision);

    // Aborted: every request is back on the same v1 process at once.
    provider.abort(&staged.deployment).await.unwrap();
    for _ in 0..20 {
        assert_eq!(get(port, "/version").await.as_deref(), Some("v1"));
    }
    assert_eq!(live_revision(&provider).await, v1_revision);
    let history = provider.history().await.unwrap();
    assert_eq!(history[0].status, RevisionStatus::Failed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_that_never_becomes_healthy_is_removed_without_touching_traffic() {
    let (_dir, port, _stop, provider) = v1_live().await;

    // The demo service's `unhealthy` versions fail /healthz.
    match stage(&provider, "v2-unhealthy").await {
        StageOutcome::NotHealthy(_, Verdict::Failed { .. } | Verdict::TimedOut { .. }) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(get(port, "/version").await.as_deref(), Some("v1"));
    assert_eq!(
        provider.history().await.unwrap()[0].status,
        RevisionStatus::Failed
    );
}
