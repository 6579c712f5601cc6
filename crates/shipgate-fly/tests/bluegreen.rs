//! Blue-green on Fly against the spec-checked Machines API fake: green machines are created
//! cordoned beside the blue ones, traffic moves by uncordoning green and cordoning blue, and
//! every failure, at each switch point, ends with the app on one whole colour and no orphaned
//! machine. What the proxy routes is read from the fake (`serving`), not from the provider.

#![allow(clippy::unwrap_used, clippy::panic)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use shipgate_core::{Redactor, Secret, ServiceName};
use shipgate_fly::{FlyProvider, FlySettings, FlyToken, STAGED_KEY, Strategy};
use shipgate_provider::{DeployRequest, Provider, StageOutcome, Verdict, WaitProgress};
use shipgate_testkit::fly::FakeFly;
use tokio_util::sync::CancellationToken;

const BLUE: &str = "ghcr.io/acme/api:0000000";
const GREEN: &str = "ghcr.io/acme/api:1111111";

/// The provider's settings against the fake at `url`, staging through the private network.
fn settings(url: String) -> FlySettings {
    FlySettings {
        api_url: url,
        token: FlyToken::parse(&Secret::new("FlyV1 fm2_deploytoken")).unwrap(),
        app: "shop".into(),
        service: "api".parse().unwrap(),
        process_group: "app".into(),
        strategy: Strategy::Rolling {
            max_unavailable: 0.33,
        },
        lease_ttl: Duration::from_secs(13),
        poll_interval: Duration::from_millis(20),
        require_pinned: true,
        redactor: Redactor::default(),
        staged_url: Some("http://{machine_id}.vm.{app}.internal:8080".into()),
    }
}

async fn world() -> (FakeFly, FlyProvider) {
    let fake = FakeFly::new("shop", "FlyV1 fm2_deploytoken");
    fake.machines("app", 3, BLUE);
    let url = fake.clone().start().await;
    let provider = FlyProvider::connect(settings(url)).await.unwrap();
    (fake, provider)
}

fn request(image: &str) -> DeployRequest {
    DeployRequest {
        images: BTreeMap::from([(
            "api".parse::<ServiceName>().unwrap(),
            image.parse().unwrap(),
        )]),
        description: "test".into(),
    }
}

async fn stage(provider: &FlyProvider, image: &str) -> StageOutcome {
    provider
        .stage(
            &request(image),
            Instant::now() + Duration::from_secs(20),
            &|_: &WaitProgress| {},
            &CancellationToken::new(),
        )
        .await
        .unwrap()
}

/// Three blue machines serving the old image, nothing else present, no lease left, and no
/// request or answer outside Fly's spec.
fn exactly_as_before(fake: &FakeFly) {
    assert_eq!(fake.serving("app"), [BLUE; 3]);
    assert_eq!(fake.present("app"), 3);
    assert_eq!(fake.leases_held(), 0);
    assert_eq!(fake.violations(), Vec::<String>::new());
}

#[tokio::test]
async fn green_is_staged_cordoned_switched_and_aborted_back_to_the_same_blue_machines() {
    let (fake, provider) = world().await;
    assert!(provider.can_stage());
    let release = stage(&provider, GREEN).await.into_staged().unwrap();
    // Six machines run; users reach only the three blue ones.
    assert_eq!(fake.present("app"), 6);
    assert_eq!(fake.serving("app"), [BLUE; 3]);
    let endpoint = &release.endpoints[&"api".parse::<ServiceName>().unwrap()];
    assert!(
        endpoint.starts_with("http://") && endpoint.ends_with(".vm.shop.internal:8080"),
        "{endpoint}"
    );
    let created: Vec<_> = fake
        .calls()
        .into_iter()
        .filter(|(method, path, _)| method == "POST" && path == "/v1/apps/{app_name}/machines")
        .collect();
    assert_eq!(created.len(), 3);
    for (_, _, body) in &created {
        assert_eq!(body["skip_service_registration"], true);
        assert_eq!(body["config"]["image"], GREEN);
        assert!(body["config"]["metadata"][STAGED_KEY].is_string());
    }
    // The switch: every user on green; blue still runs, cordoned.
    provider.shift(&release.deployment, 100).await.unwrap();
    assert_eq!(fake.serving("app"), [GREEN; 3]);
    assert_eq!(fake.present("app"), 6);
    assert_eq!(
        provider.current().await.unwrap()[0].image.to_string(),
        GREEN
    );
    // The abort: blue takes traffic again (never restarted), green is destroyed.
    provider.abort(&release.deployment).await.unwrap();
    exactly_as_before(&fake);
    assert_eq!(fake.states("app")[..3], ["started"; 3]);
    assert_eq!(provider.current().await.unwrap()[0].image.to_string(), BLUE);
}

#[tokio::test]
async fn a_promoted_green_release_replaces_the_blue_machines() {
    let (fake, provider) = world().await;
    let release = stage(&provider, GREEN).await.into_staged().unwrap();
    // Promoting before the switch is refused and changes nothing.
    assert!(provider.promote(&release.deployment).await.is_err());
    assert_eq!(fake.serving("app"), [BLUE; 3]);
    assert!(provider.shift(&release.deployment, 0).await.is_err());
    provider.shift(&release.deployment, 100).await.unwrap();
    provider.promote(&release.deployment).await.unwrap();
    assert_eq!(fake.serving("app"), [GREEN; 3]);
    assert_eq!(fake.present("app"), 3);
    assert_eq!(fake.leases_held(), 0);
    assert_eq!(fake.violations(), Vec::<String>::new());
    assert_eq!(
        provider.current().await.unwrap()[0].image.to_string(),
        GREEN
    );
}

#[tokio::test]
async fn a_green_release_that_never_becomes_healthy_is_destroyed_before_any_traffic() {
    let (fake, provider) = world().await;
    match stage(&provider, "ghcr.io/acme/api:2222222-unhealthy").await {
        StageOutcome::NotHealthy(_, Verdict::Failed { reason, .. }) => {
            assert!(
                reason.contains("every green machine was destroyed"),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
    exactly_as_before(&fake);
}

#[tokio::test]
async fn a_failed_create_leaves_nothing_behind() {
    let (fake, provider) = world().await;
    fake.fail_action("create", 1, 10);
    match stage(&provider, GREEN).await {
        StageOutcome::NotHealthy(_, Verdict::Failed { reason, .. }) => {
            assert!(reason.contains("creating the green machine"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    exactly_as_before(&fake);
}

#[tokio::test]
async fn a_switch_that_fails_at_any_point_is_aborted_back_to_blue() {
    // Fails uncordoning the second green machine; then cordoning the second blue one.
    for (action, succeed) in [("uncordon", 1), ("cordon", 1)] {
        let (fake, provider) = world().await;
        let release = stage(&provider, GREEN).await.into_staged().unwrap();
        fake.fail_action(action, succeed, 10);
        let err = provider.shift(&release.deployment, 100).await.unwrap_err();
        assert!(err.to_string().contains("unavailable"), "{action}: {err}");
        fake.fail_action(action, 0, 0);
        provider.abort(&release.deployment).await.unwrap();
        exactly_as_before(&fake);
    }
}

#[tokio::test]
async fn when_blue_cannot_take_traffic_back_green_keeps_serving_whole() {
    let (fake, provider) = world().await;
    let release = stage(&provider, GREEN).await.into_staged().unwrap();
    provider.shift(&release.deployment, 100).await.unwrap();
    // Every uncordon of a blue machine fails.
    fake.fail_action("uncordon", 0, 100);
    let err = provider.abort(&release.deployment).await.unwrap_err();
    assert!(
        err.to_string().contains("green machines were kept serving"),
        "{err}"
    );
    // One whole colour serves: the three green machines.
    assert_eq!(fake.serving("app"), [GREEN; 3]);
    assert_eq!(fake.leases_held(), 0);
}

#[tokio::test]
async fn a_canary_moves_users_machine_by_machine_and_an_abort_takes_them_back() {
    let (fake, provider) = world().await;
    let release = stage(&provider, GREEN).await.into_staged().unwrap();
    // 10 % asked; one green machine beside three blue ones takes 25 %.
    assert_eq!(provider.shift(&release.deployment, 10).await.unwrap(), 25);
    let mut serving = fake.serving("app");
    serving.sort();
    assert_eq!(serving, [BLUE, BLUE, BLUE, GREEN]);
    // 50 %: every green machine beside every blue one.
    assert_eq!(provider.shift(&release.deployment, 50).await.unwrap(), 50);
    assert_eq!(fake.serving("app").len(), 6);
    // The analysis failed: users back on blue, green destroyed.
    provider.abort(&release.deployment).await.unwrap();
    exactly_as_before(&fake);
}

#[tokio::test]
async fn a_canary_that_reaches_every_step_ends_on_green_alone() {
    let (fake, provider) = world().await;
    let release = stage(&provider, GREEN).await.into_staged().unwrap();
    for (asked, reached) in [(10, 25), (50, 50), (100, 100)] {
        assert_eq!(
            provider.shift(&release.deployment, asked).await.unwrap(),
            reached
        );
    }
    provider.promote(&release.deployment).await.unwrap();
    assert_eq!(fake.serving("app"), [GREEN; 3]);
    assert_eq!(fake.present("app"), 3);
    assert_eq!(fake.leases_held(), 0);
    assert_eq!(fake.violations(), Vec::<String>::new());
}

#[tokio::test]
async fn green_machines_left_by_a_run_that_died_are_destroyed_by_the_next_one() {
    let (fake, provider) = world().await;
    // A run stages, then dies (no abort, no promotion): three cordoned green machines stay.
    stage(&provider, GREEN).await.into_staged().unwrap();
    assert_eq!(fake.present("app"), 6);
    let url = fake.clone().start().await;
    let next = FlyProvider::connect(settings(url)).await.unwrap();
    let notes = next.recover().await.unwrap();
    assert_eq!(notes.len(), 3, "{notes:?}");
    assert!(notes[0].contains("cordoned, never served"), "{notes:?}");
    assert_eq!(fake.present("app"), 3);
    assert_eq!(fake.serving("app"), [BLUE; 3]);
    // Nothing left to recover.
    assert!(next.recover().await.unwrap().is_empty());
}
