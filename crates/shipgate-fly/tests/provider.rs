//! The Fly provider against a loopback Machines API that checks every request and answer
//! against Fly's OpenAPI description: conformance, silent reverts, leases, secrets, bad input
//! and the canary.

#![allow(clippy::unwrap_used, clippy::panic)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use shipgate_core::{ImageRef, Redactor, Secret, ServiceName};
use shipgate_fly::{FlyProvider, FlySettings, FlyToken, REVERTED_KEY, Strategy};
use shipgate_provider::conformance::{Scenario, run};
use shipgate_provider::{DeployRequest, Provider, ProviderError, Verdict};
use shipgate_testkit::Canary;
use shipgate_testkit::fly::FakeFly;
use tokio_util::sync::CancellationToken;

const OLD: &str = "ghcr.io/acme/api:0000000";

fn image(s: &str) -> ImageRef {
    s.parse().unwrap()
}

fn fake() -> FakeFly {
    let fake = FakeFly::new("shop", "FlyV1 fm2_deploytoken");
    fake.machines("app", 3, OLD)
        .machines("worker", 1, "ghcr.io/acme/worker:0000000");
    fake
}

fn settings(url: &str) -> FlySettings {
    FlySettings {
        api_url: url.to_owned(),
        token: FlyToken::parse(&Secret::new("FlyV1 fm2_deploytoken")).unwrap(),
        app: "shop".into(),
        service: "api".parse().unwrap(),
        process_group: "app".into(),
        strategy: Strategy::Rolling {
            max_unavailable: 0.33,
        },
        lease_ttl: Duration::from_secs(13),
        poll_interval: Duration::from_millis(50),
        require_pinned: true,
        redactor: Redactor::default(),
        staged_url: None,
    }
}

/// Serves `fake` and connects a provider to it with [`settings`].
async fn connected(fake: &FakeFly) -> FlyProvider {
    let url = fake.clone().start().await;
    FlyProvider::connect(settings(&url)).await.unwrap()
}

fn request(img: &str) -> DeployRequest {
    DeployRequest {
        images: BTreeMap::from([("api".parse::<ServiceName>().unwrap(), image(img))]),
        description: "test".into(),
    }
}

async fn deploy_and_wait(provider: &FlyProvider, img: &str, timeout: Duration) -> Verdict {
    let deployment = provider.deploy(&request(img)).await.unwrap();
    provider
        .wait(
            &deployment,
            Instant::now() + timeout,
            &|_: &shipgate_provider::WaitProgress| {},
            &CancellationToken::new(),
        )
        .await
        .unwrap()
}

#[tokio::test]
async fn conformance() {
    let fake = fake();
    let provider = connected(&fake).await;
    run(
        &provider,
        &Scenario {
            service: "api".parse().unwrap(),
            good: image("ghcr.io/acme/api:1111111"),
            upgrade: image("ghcr.io/acme/api:2222222"),
            unhealthy: image("ghcr.io/acme/api-unhealthy:3333333"),
            timeout: Duration::from_secs(4),
        },
    )
    .await;
    assert_eq!(fake.violations(), Vec::<String>::new());
    assert_eq!(fake.leases_held(), 0, "every lease was released");
    assert_eq!(fake.images("app"), vec!["ghcr.io/acme/api:1111111"; 3]);
    assert_eq!(
        fake.images("worker"),
        vec!["ghcr.io/acme/worker:0000000"],
        "other groups untouched"
    );
    // Every update carried the full config and the version it was read at.
    let updates: Vec<_> = fake
        .calls()
        .into_iter()
        .filter(|(m, t, _)| m == "POST" && t == "/v1/apps/{app_name}/machines/{machine_id}")
        .collect();
    assert!(
        updates
            .iter()
            .all(|(_, _, b)| b["current_version"].is_string() && b["config"]["guest"].is_object())
    );
}

#[tokio::test]
async fn a_silently_reverted_update_is_a_failure_and_nothing_else_changes() {
    let fake = fake();
    let provider = connected(&fake).await;
    let verdict = deploy_and_wait(
        &provider,
        "ghcr.io/acme/api-revert:4444444",
        Duration::from_secs(5),
    )
    .await;
    let Verdict::Failed { reason, .. } = verdict else {
        panic!("a reverted update was reported {verdict:?}");
    };
    assert!(reason.contains("Fly reverted machine"), "{reason}");
    // The spearhead failed: the other machines were never touched.
    assert_eq!(fake.images("app"), vec![OLD; 3]);
    assert_eq!(fake.violations(), Vec::<String>::new());
}

#[tokio::test]
async fn a_failed_rollout_restores_the_machines_it_changed() {
    let fake = fake();
    let provider = connected(&fake).await;
    let verdict = deploy_and_wait(
        &provider,
        "ghcr.io/acme/api-unhealthy:5555555",
        Duration::from_secs(2),
    )
    .await;
    let (Verdict::Failed {
        reason,
        diagnostics,
    }
    | Verdict::TimedOut {
        waiting_for: reason,
        diagnostics,
    }) = verdict
    else {
        panic!("{verdict:?}");
    };
    assert!(reason.contains("restored"), "{reason}");
    assert!(
        diagnostics.iter().any(|d| d.contains("503")),
        "{diagnostics:?}"
    );
    assert_eq!(fake.images("app"), vec![OLD; 3]);
    assert_eq!(fake.leases_held(), 0);
    let history = provider.history().await.unwrap();
    assert_eq!(
        history[1].status,
        shipgate_provider::RevisionStatus::Failed,
        "{history:?}"
    );
    assert!(
        fake.calls()
            .iter()
            .any(|(_, _, b)| b["config"]["metadata"][REVERTED_KEY].is_string())
    );
}

#[tokio::test]
async fn a_machine_leased_elsewhere_stops_the_rollout_before_anything_changes() {
    let fake = fake();
    fake.lease_elsewhere(0);
    let provider = connected(&fake).await;
    let verdict = deploy_and_wait(
        &provider,
        "ghcr.io/acme/api:6666666",
        Duration::from_secs(5),
    )
    .await;
    let Verdict::Failed { reason, .. } = verdict else {
        panic!("{verdict:?}")
    };
    assert!(
        reason.contains("lease currently held by someone@example.com"),
        "{reason}"
    );
    assert_eq!(fake.images("app"), vec![OLD; 3]);
}

#[tokio::test]
async fn secrets_are_set_once_and_their_version_goes_with_the_update() {
    let canary = Canary::new("fly");
    let fake = fake();
    let provider = connected(&fake).await;
    let version = provider
        .set_secrets(&BTreeMap::from([(
            "DATABASE_URL".to_owned(),
            Some(Secret::new(canary.value())),
        )]))
        .await
        .unwrap();
    assert_eq!(fake.secrets()["DATABASE_URL"], canary.value());
    let verdict = deploy_and_wait(
        &provider,
        "ghcr.io/acme/api:7777777",
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(verdict, Verdict::Healthy);
    assert_eq!(fake.min_secrets_versions(), vec![version; 3]);
    canary.assert_absent("provider debug output", &format!("{provider:?}"));
    assert_eq!(fake.violations(), Vec::<String>::new());
}

#[tokio::test]
async fn bad_input_is_refused_before_anything_changes() {
    let fake = fake();
    fake.unmanaged_machine("legacy", OLD);
    let url = fake.clone().start().await;

    let mut s = settings(&url);
    s.app = "nope".into();
    let err = FlyProvider::connect(s).await.unwrap_err().to_string();
    assert!(err.contains("no Fly app `nope`"), "{err}");

    let mut s = settings(&url);
    s.process_group = "web".into();
    let err = FlyProvider::connect(s).await.unwrap_err().to_string();
    assert!(err.contains("no machines in process group `web`"), "{err}");

    let mut s = settings(&url);
    s.process_group = "legacy".into();
    let err = FlyProvider::connect(s).await.unwrap_err().to_string();
    assert!(err.contains("fly_platform_version=v2"), "{err}");

    let mut s = settings(&url);
    s.token = FlyToken::parse(&Secret::new("Bearer wrong-token")).unwrap();
    let err = FlyProvider::connect(s).await.unwrap_err().to_string();
    assert!(
        err.contains("with the `Bearer` scheme") && !err.contains("wrong-token"),
        "{err}"
    );

    let provider = FlyProvider::connect(settings(&url)).await.unwrap();
    let err = provider
        .deploy(&request("ghcr.io/acme/api:latest"))
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::Invalid { .. }), "{err}");
    assert!(
        !fake.calls().iter().any(|(m, _, _)| m == "POST"),
        "nothing was changed"
    );
}

#[tokio::test]
async fn rate_limits_are_waited_out() {
    let fake = fake();
    let url = fake.clone().start().await;
    fake.rate_limit_next(2);
    let started = Instant::now();
    let provider = FlyProvider::connect(settings(&url)).await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "Retry-After: 1 was honoured twice"
    );
    let verdict = deploy_and_wait(
        &provider,
        "ghcr.io/acme/api:8888888",
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(verdict, Verdict::Healthy);
}

/// A `/wait` answering 408 with a terminal state ("currently failed") ends the wait at once:
/// the verdict is a failure, not a timeout after the whole deadline.
#[tokio::test]
async fn a_machine_that_ends_failed_fails_the_wait_at_once() {
    let fake = fake();
    let provider = connected(&fake).await;
    let verdict = deploy_and_wait(
        &provider,
        "ghcr.io/acme/api-failing:7777777",
        Duration::from_secs(60),
    )
    .await;
    let Verdict::Failed { reason, .. } = &verdict else {
        panic!("{verdict:?}");
    };
    assert!(reason.contains("currently failed"), "{reason}");
    // One /wait for the failed machine: the HTTP layer does not retry a 408 under the
    // provider's loop, and the terminal state ends it (the calls after the restore's update
    // wait for the old version to start again).
    let calls = fake.calls();
    let update = |(m, t, _): &&(String, String, serde_json::Value)| {
        m == "POST" && t == "/v1/apps/{app_name}/machines/{machine_id}"
    };
    let restore_at = calls
        .iter()
        .enumerate()
        .filter(|(_, c)| update(c))
        .nth(1)
        .map(|(i, _)| i)
        .unwrap();
    let waits = calls[..restore_at]
        .iter()
        .filter(|(_, t, _)| t.ends_with("/wait"))
        .count();
    assert_eq!(waits, 1, "{calls:#?}");
    assert_eq!(fake.images("app"), vec![OLD; 3]);
    assert_eq!(fake.states("app"), vec!["started"; 3]);
}

/// A lease held elsewhere on a later machine stops the rollout before the first update:
/// every lease is taken first, and the report says only what happened.
#[tokio::test]
async fn a_lease_held_on_a_later_machine_stops_the_rollout_before_any_update() {
    let fake = fake();
    fake.lease_elsewhere(1);
    let provider = connected(&fake).await;
    let verdict = deploy_and_wait(
        &provider,
        "ghcr.io/acme/api:6666666",
        Duration::from_secs(5),
    )
    .await;
    let Verdict::Failed { reason, .. } = verdict else {
        panic!("{verdict:?}")
    };
    assert!(
        reason.contains("lease currently held by someone@example.com")
            && reason.contains("nothing was changed"),
        "{reason}"
    );
    assert!(!reason.contains("restor"), "{reason}");
    assert_eq!(fake.images("app"), vec![OLD; 3]);
    let updates = fake
        .calls()
        .iter()
        .filter(|(m, t, _)| m == "POST" && t == "/v1/apps/{app_name}/machines/{machine_id}")
        .count();
    assert_eq!(updates, 0);
    assert_eq!(fake.leases_held(), 1, "only the foreign lease is left");
}

/// Restoring puts each machine back in the state it had before the deploy, and verifies it:
/// a machine that was started and crashed on the new image is started again on the old one;
/// a machine that was stopped stays stopped. The spearhead is a started machine.
#[tokio::test]
async fn a_restore_puts_each_machine_back_in_its_state_before_the_deploy() {
    let fake = fake();
    fake.stop_machine(0);
    let provider = connected(&fake).await;
    let verdict = deploy_and_wait(
        &provider,
        "ghcr.io/acme/api-crashing:8888888",
        Duration::from_secs(5),
    )
    .await;
    let Verdict::Failed { reason, .. } = verdict else {
        panic!("{verdict:?}")
    };
    assert!(reason.contains("restored"), "{reason}");
    assert_eq!(fake.images("app"), vec![OLD; 3]);
    assert_eq!(fake.states("app"), ["stopped", "started", "started"]);
    // The spearhead (the first machine updated) was a started one, not the stopped machine 0.
    let first_update = fake
        .calls()
        .into_iter()
        .find(|(m, t, _)| m == "POST" && t == "/v1/apps/{app_name}/machines/{machine_id}")
        .unwrap();
    assert_ne!(first_update.2["skip_launch"], true, "{first_update:?}");
    assert_eq!(fake.violations(), Vec::<String>::new());
}

/// A machine on a host Fly cannot reach has only an incomplete config: the deploy is refused
/// before anything changes, with a message that says so.
#[tokio::test]
async fn a_machine_on_an_unreachable_host_is_refused_before_anything_changes() {
    let fake = fake();
    fake.unreachable_host(1);
    let url = fake.clone().start().await;
    let err = FlyProvider::connect(settings(&url))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("host Fly cannot reach") && err.contains("(host unreachable)"),
        "{err}"
    );
    assert_eq!(fake.images("app"), vec![OLD; 3]);
    assert_eq!(fake.violations(), Vec::<String>::new());
}
