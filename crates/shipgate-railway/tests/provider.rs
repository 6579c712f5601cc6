//! The Railway provider against a loopback Railway that validates every document and answer
//! against Railway's schema: conformance, both token kinds, name resolution, bad input, a
//! stale image, approval, rate limits, timeouts, rollback and the canary.

#![allow(clippy::unwrap_used, clippy::panic)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value;
use shipgate_core::{ImageRef, Redactor, Secret, ServiceName};
use shipgate_provider::conformance::{Scenario, run};
use shipgate_provider::{DeployRequest, Provider, ProviderError, Verdict};
use shipgate_railway::{
    RailwayError, RailwayProvider, RailwaySettings, RailwayToken, ServiceSource,
};
use shipgate_testkit::Canary;
use shipgate_testkit::railway::{FakeRailway, FakeToken};
use tokio_util::sync::CancellationToken;

fn image(s: &str) -> ImageRef {
    s.parse().unwrap()
}

fn account() -> FakeRailway {
    FakeRailway::new(FakeToken::Account("acct-token".into()))
}

fn settings(url: &str, token: RailwayToken) -> RailwaySettings {
    RailwaySettings {
        api_url: url.to_owned(),
        token,
        project: Some("shop".into()),
        environment: Some("Production".into()),
        workspace: Some("acme".into()),
        service: "api".parse().unwrap(),
        railway_service: "API".into(),
        switch_source_to_image: false,
        source: ServiceSource::Image,
        require_pinned: true,
        poll_interval: Duration::from_millis(20),
        stable_for: Duration::from_millis(100),
        redactor: Redactor::default(),
    }
}

/// The fake with an account token, served, and a provider connected to it.
async fn connected() -> (FakeRailway, RailwayProvider) {
    let fake = account();
    let url = fake.clone().start().await;
    let provider = RailwayProvider::connect(settings(&url, account_token()))
        .await
        .unwrap();
    (fake, provider)
}

fn account_token() -> RailwayToken {
    RailwayToken::Account(Secret::new("acct-token"))
}

fn request(service: &str, img: &str) -> DeployRequest {
    DeployRequest {
        images: BTreeMap::from([(service.parse::<ServiceName>().unwrap(), image(img))]),
        description: "test".into(),
    }
}

async fn deploy_and_wait(provider: &RailwayProvider, img: &str, timeout: Duration) -> Verdict {
    let deployment = provider.deploy(&request("api", img)).await.unwrap();
    wait_within(provider, &deployment, timeout).await
}

/// The verdict on `deployment` within `timeout`, without progress output.
async fn wait_within(
    provider: &RailwayProvider,
    deployment: &shipgate_provider::Deployment,
    timeout: Duration,
) -> Verdict {
    provider
        .wait(
            deployment,
            Instant::now() + timeout,
            &|_: &shipgate_provider::WaitProgress| {},
            &CancellationToken::new(),
        )
        .await
        .unwrap()
}

/// The verdict on `deployment` within 5 s.
async fn wait(provider: &RailwayProvider, deployment: &shipgate_provider::Deployment) -> Verdict {
    wait_within(provider, deployment, Duration::from_secs(5)).await
}

#[tokio::test]
async fn conformance_with_an_account_token() {
    let (fake, provider) = connected().await;
    assert_eq!(provider.resolved().project_id, "proj-shop");
    assert_eq!(provider.resolved().environment_id, "env-prod");
    assert_eq!(provider.resolved().service_id, "svc-api");
    run(
        &provider,
        &Scenario {
            service: "api".parse().unwrap(),
            good: image("ghcr.io/acme/api:1111111"),
            upgrade: image("ghcr.io/acme/api:2222222"),
            unhealthy: image("ghcr.io/acme/api-unhealthy:3333333"),
            timeout: Duration::from_secs(10),
        },
    )
    .await;
    assert_eq!(fake.violations(), Vec::<String>::new());
    // Deploys are an explicit update of this environment, then DeployV2; never a redeploy.
    let calls = fake.calls();
    let set = calls.iter().find(|(op, _)| op == "SetImage").unwrap();
    assert_eq!(set.1["environmentId"], "env-prod");
    assert!(calls.iter().any(|(op, _)| op == "DeployV2"));
    assert!(
        calls.iter().any(|(op, _)| op == "Rollback"),
        "the rollback used deploymentRollback"
    );
}

#[tokio::test]
async fn a_project_token_uses_its_own_scope_and_header() {
    let fake = FakeRailway::new(FakeToken::Project(
        "proj-token".into(),
        "proj-shop".into(),
        "env-stg".into(),
    ));
    let url = fake.clone().start().await;
    let token = RailwayToken::Project(Secret::new("proj-token"));
    let mut s = settings(&url, token.clone());
    s.project = None;
    s.environment = None;
    s.workspace = None;
    let provider = RailwayProvider::connect(s).await.unwrap();
    assert_eq!(provider.resolved().environment_name, "staging");
    let verdict = deploy_and_wait(
        &provider,
        "ghcr.io/acme/api:1111111",
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(verdict, Verdict::Healthy);

    // Naming another environment than the token's is refused before anything changes.
    let err = RailwayProvider::connect(settings(&url, token))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("project token for environment `staging`"),
        "{err}"
    );

    // The same token sent as Bearer is "Not Authorized", and the message says what was sent.
    let err = RailwayProvider::connect(settings(
        &url,
        RailwayToken::Account(Secret::new("proj-token")),
    ))
    .await
    .unwrap_err();
    assert!(matches!(err, RailwayError::NotAuthorized { .. }), "{err}");
    assert!(err.to_string().contains("RAILWAY_API_TOKEN"), "{err}");
    assert!(
        !err.to_string().contains("proj-token"),
        "the token leaked: {err}"
    );
    assert_eq!(fake.violations(), Vec::<String>::new());
}

#[tokio::test]
async fn names_resolve_case_insensitively_and_bad_names_are_clear() {
    let fake = account();
    let url = fake.clone().start().await;

    // Without the workspace, `shop` matches a project in two workspaces.
    let mut s = settings(&url, account_token());
    s.workspace = None;
    let err = RailwayProvider::connect(s).await.unwrap_err().to_string();
    assert!(
        err.contains("ambiguous") && err.contains("proj-shop") && err.contains("proj-shop-2"),
        "{err}"
    );

    // IDs always work.
    let mut s = settings(&url, account_token());
    s.workspace = None;
    s.project = Some("proj-shop".into());
    s.environment = Some("env-prod".into());
    s.railway_service = "svc-api".into();
    RailwayProvider::connect(s).await.unwrap();

    for (field, value, expected) in [
        ("project", "nope", "no Railway project named `nope`"),
        (
            "environment",
            "qa",
            "no Railway environment named `qa`; there are: `production`, `staging`",
        ),
        ("service", "billing", "no Railway service named `billing`"),
    ] {
        let mut s = settings(&url, account_token());
        match field {
            "project" => s.project = Some(value.into()),
            "environment" => s.environment = Some(value.into()),
            _ => s.railway_service = value.into(),
        }
        let err = RailwayProvider::connect(s).await.unwrap_err().to_string();
        assert!(err.contains(expected), "{field}: {err}");
    }
    // The deleted project `old` is not a match.
    let mut s = settings(&url, account_token());
    s.project = Some("old".into());
    let err = RailwayProvider::connect(s).await.unwrap_err().to_string();
    assert!(err.contains("no Railway project named `old`"), "{err}");
    assert_eq!(fake.violations(), Vec::<String>::new());
}

#[tokio::test]
async fn a_github_sourced_service_is_refused_unless_the_config_opts_in() {
    let fake = account();
    let url = fake.clone().start().await;
    let mut s = settings(&url, account_token());
    s.railway_service = "web".into();
    let err = RailwayProvider::connect(s.clone())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("GitHub repo `acme/web`") && err.contains("switch_source_to_image"),
        "{err}"
    );
    assert!(
        !fake.calls().iter().any(|(op, _)| op == "SetImage"),
        "nothing changed"
    );

    s.switch_source_to_image = true;
    let provider = RailwayProvider::connect(s).await.unwrap();
    let verdict = deploy_and_wait(
        &provider,
        "ghcr.io/acme/web:1111111",
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(verdict, Verdict::Healthy);
    let ops: Vec<String> = fake.calls().into_iter().map(|(op, _)| op).collect();
    let disconnect = ops.iter().position(|op| op == "ServiceDisconnect").unwrap();
    let set = ops.iter().position(|op| op == "SetImage").unwrap();
    assert!(disconnect < set, "{ops:?}");
}

#[tokio::test]
async fn an_unpinned_image_is_refused_before_anything_changes() {
    let (fake, provider) = connected().await;
    let err = provider
        .deploy(&request("api", "ghcr.io/acme/api:latest"))
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::Invalid { .. }), "{err}");
    assert!(!fake.calls().iter().any(|(op, _)| op == "SetImage"));
    // A request without this service's image is a usage error too.
    let err = provider
        .deploy(&request("worker", "ghcr.io/acme/w:1111111"))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("no image for service `api`"),
        "{err}"
    );
}

#[tokio::test]
async fn a_success_running_the_old_image_is_a_failure() {
    let (_fake, provider) = connected().await;
    assert_eq!(
        deploy_and_wait(
            &provider,
            "ghcr.io/acme/api:1111111",
            Duration::from_secs(5)
        )
        .await,
        Verdict::Healthy
    );
    let verdict = deploy_and_wait(
        &provider,
        "ghcr.io/acme/api-stale:2222222",
        Duration::from_secs(5),
    )
    .await;
    let Verdict::Failed { reason, .. } = verdict else {
        panic!("a deployment running the previous image was reported {verdict:?}");
    };
    assert!(
        reason.contains("ghcr.io/acme/api:1111111") && reason.contains("api-stale:2222222"),
        "{reason}"
    );
}

#[tokio::test]
async fn needs_approval_stops_the_wait_and_a_timeout_cancels_the_deployment() {
    let (fake, provider) = connected().await;
    let verdict = deploy_and_wait(
        &provider,
        "ghcr.io/acme/api-approval:1111111",
        Duration::from_secs(5),
    )
    .await;
    assert!(
        matches!(&verdict, Verdict::Failed { reason, .. } if reason.contains("needs approval")),
        "{verdict:?}"
    );

    let deployment = provider
        .deploy(&request("api", "ghcr.io/acme/api-slow:2222222"))
        .await
        .unwrap();
    let seen = std::sync::Mutex::new(Vec::new());
    let verdict = provider
        .wait(
            &deployment,
            Instant::now() + Duration::from_millis(300),
            &|p: &shipgate_provider::WaitProgress| seen.lock().unwrap().push(p.waiting_for.clone()),
            &CancellationToken::new(),
        )
        .await
        .unwrap();
    assert!(
        matches!(&verdict, Verdict::TimedOut { waiting_for, .. } if waiting_for.contains("deploying")),
        "{verdict:?}"
    );
    assert!(!seen.lock().unwrap().is_empty(), "progress was reported");
    assert!(
        fake.calls()
            .iter()
            .any(|(op, v)| op == "Cancel" && v["id"] == deployment.revision.0.as_str())
    );
    assert_eq!(fake.violations(), Vec::<String>::new());
}

#[tokio::test]
async fn rate_limits_are_waited_out() {
    let fake = account();
    let url = fake.clone().start().await;
    fake.rate_limit_next(2);
    let started = Instant::now();
    RailwayProvider::connect(settings(&url, account_token()))
        .await
        .unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "Retry-After: 1 was honoured twice"
    );
}

#[tokio::test]
async fn variables_skip_deploys_and_secrets_never_leak() {
    let canary = Canary::new("railway");
    let fake = account();
    let url = fake.clone().start().await;
    let redactor = Redactor::default();
    let mut s = settings(&url, account_token());
    s.redactor = redactor.clone();
    let provider = RailwayProvider::connect(s).await.unwrap();
    provider
        .upsert_variables(&BTreeMap::from([(
            "DB_PASSWORD".to_owned(),
            Secret::new(canary.value()),
        )]))
        .await
        .unwrap();
    assert_eq!(
        fake.variables("env-prod", "svc-api")["DB_PASSWORD"],
        canary.value()
    );
    let deployments_before = fake
        .calls()
        .iter()
        .filter(|(op, _)| op == "DeployV2")
        .count();
    assert_eq!(
        deployments_before, 0,
        "setting variables started no deployment"
    );

    // The crashing release logs the password; the diagnostics mask it.
    let verdict = deploy_and_wait(
        &provider,
        "ghcr.io/acme/api-unhealthy:1111111",
        Duration::from_secs(5),
    )
    .await;
    let Verdict::Failed {
        reason,
        diagnostics,
    } = verdict
    else {
        panic!()
    };
    let text = format!("{reason}\n{}", diagnostics.join("\n"));
    assert!(text.contains("Healthcheck failed"), "{text}");
    assert!(text.contains("connecting with password"), "{text}");
    canary.assert_absent("Railway diagnostics", &text);
    assert_eq!(fake.violations(), Vec::<String>::new());
}

#[tokio::test]
async fn both_token_variables_set_is_an_error_naming_both() {
    let err =
        RailwayToken::from_values(Some(Secret::new("a")), Some(Secret::new("b"))).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("RAILWAY_TOKEN") && text.contains("RAILWAY_API_TOKEN"),
        "{text}"
    );
}

/// A deployment that reaches SUCCESS and crashes moments later is not healthy: the provider
/// keeps watching for a stability window and re-reads the service's active deployments.
#[tokio::test]
async fn a_deployment_that_crashes_right_after_success_is_a_failure() {
    let (fake, provider) = connected().await;
    assert_eq!(
        deploy_and_wait(
            &provider,
            "ghcr.io/acme/api:1111111",
            Duration::from_secs(5)
        )
        .await,
        Verdict::Healthy
    );
    let verdict = deploy_and_wait(
        &provider,
        "ghcr.io/acme/api-crash-after-success:2222222",
        Duration::from_secs(5),
    )
    .await;
    assert!(
        matches!(&verdict, Verdict::Failed { reason, .. } if reason.contains("crashed")),
        "{verdict:?}"
    );
    // Read back: nothing runs (the crashed deployment had replaced the previous one).
    assert_eq!(provider.current().await.unwrap(), Vec::new());
    assert_eq!(fake.live_image("env-prod", "svc-api"), None);
    assert_eq!(fake.violations(), Vec::<String>::new());
}

/// A crashed deployment that had already replaced the previous one: read back, nothing is
/// live; rolling back restores the previous image as a new deployment and the service's
/// configured source (which would otherwise bring the failed image back on the next deploy).
#[tokio::test]
async fn a_crash_that_replaced_the_live_deployment_reads_back_empty_and_rolls_back_with_its_source()
{
    let (fake, provider) = connected().await;
    assert_eq!(
        deploy_and_wait(
            &provider,
            "ghcr.io/acme/api:1111111",
            Duration::from_secs(5)
        )
        .await,
        Verdict::Healthy
    );
    let good = provider.current().await.unwrap().remove(0).revision;
    let verdict = deploy_and_wait(
        &provider,
        "ghcr.io/acme/api-crash-replacing:2222222",
        Duration::from_secs(5),
    )
    .await;
    assert!(matches!(verdict, Verdict::Failed { .. }), "{verdict:?}");
    assert_eq!(provider.current().await.unwrap(), Vec::new());
    assert_eq!(
        fake.source_image("env-prod", "svc-api").as_deref(),
        Some("ghcr.io/acme/api-crash-replacing:2222222")
    );

    let back = provider.rollback(&good).await.unwrap();
    let verdict = wait(&provider, &back).await;
    assert_eq!(verdict, Verdict::Healthy);
    assert_eq!(
        fake.live_image("env-prod", "svc-api").as_deref(),
        Some("ghcr.io/acme/api:1111111")
    );
    assert_eq!(
        fake.source_image("env-prod", "svc-api").as_deref(),
        Some("ghcr.io/acme/api:1111111"),
        "the service's source names the restored image"
    );
    let running = provider.current().await.unwrap();
    assert_eq!(running[0].image, image("ghcr.io/acme/api:1111111"));
    assert_eq!(fake.violations(), Vec::<String>::new());
}

/// Each diagnostic is best-effort on its own: a failing events query does not stop the logs.
#[tokio::test]
async fn a_failing_events_query_does_not_stop_the_failure_report() {
    let (fake, provider) = connected().await;
    fake.fail_events();
    let verdict = deploy_and_wait(
        &provider,
        "ghcr.io/acme/api-unhealthy:1111111",
        Duration::from_secs(5),
    )
    .await;
    let Verdict::Failed { diagnostics, .. } = verdict else {
        panic!("{verdict:?}");
    };
    assert!(
        diagnostics.iter().any(|l| l.contains("events unavailable")),
        "{diagnostics:#?}"
    );
    assert!(
        fake.calls().iter().any(|(op, _)| op == "DeploymentLogs"),
        "the logs were still asked for"
    );
}

const C1: &str = "1111111aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const C2: &str = "2222222bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const C3: &str = "3333333ccccccccccccccccccccccccccccccccc";

/// `web` (svc-web) is connected to GitHub repo `acme/web`; its releases are named `acme-web`.
async fn repo_sourced(fake: &FakeRailway) -> RailwayProvider {
    let url = fake.clone().start().await;
    let mut s = settings(&url, account_token());
    s.service = "web".parse().unwrap();
    s.railway_service = "web".into();
    s.source = ServiceSource::Repo {
        repository: "acme-web".into(),
    };
    RailwayProvider::connect(s).await.unwrap()
}

fn commit(sha: &str) -> ImageRef {
    image(&format!("acme-web:{sha}"))
}

async fn deploy_commit(provider: &RailwayProvider, sha: &str) -> Verdict {
    let deployment = provider
        .deploy(&DeployRequest {
            images: BTreeMap::from([("web".parse::<ServiceName>().unwrap(), commit(sha))]),
            description: "test".into(),
        })
        .await
        .unwrap();
    wait(provider, &deployment).await
}

#[tokio::test]
async fn a_github_sourced_service_deploys_the_exact_commit_and_passes_conformance() {
    let fake = account();
    for (sha, outcome) in [(C1, "ok"), (C2, "ok"), (C3, "unhealthy")] {
        fake.push_commit("svc-web", sha, outcome);
    }
    let provider = repo_sourced(&fake).await;
    run(
        &provider,
        &Scenario {
            service: "web".parse().unwrap(),
            good: commit(C1),
            upgrade: commit(C2),
            unhealthy: commit(C3),
            timeout: Duration::from_secs(10),
        },
    )
    .await;
    assert_eq!(fake.violations(), Vec::<String>::new());
    let calls = fake.calls();
    assert!(
        !calls
            .iter()
            .any(|(op, _)| op == "SetImage" || op == "ServiceDisconnect"),
        "the repo source is left as it is: {calls:?}"
    );
    let deploys: Vec<&Value> = calls
        .iter()
        .filter(|(op, _)| op == "DeployCommit")
        .map(|(_, vars)| vars)
        .collect();
    assert_eq!(
        deploys[0]["commitSha"], C1,
        "the exact commit, never the branch head"
    );
}

#[tokio::test]
async fn a_deployment_that_built_another_commit_is_a_failure_read_back() {
    let fake = account();
    fake.push_commit("svc-web", C1, "ok");
    fake.push_commit("svc-web", C2, "stale");
    let provider = repo_sourced(&fake).await;
    assert_eq!(deploy_commit(&provider, C1).await, Verdict::Healthy);
    let verdict = deploy_commit(&provider, C2).await;
    assert!(
        matches!(&verdict, Verdict::Failed { reason, .. }
            if reason.contains(&format!("built commit {C1}, not the requested {C2}"))),
        "{verdict:?}"
    );
    // What runs, read back: the earlier commit, reported as a release of the service.
    assert_eq!(provider.current().await.unwrap()[0].image, commit(C1));
    assert_eq!(fake.live_commit("env-prod", "svc-web").as_deref(), Some(C1));
    assert_eq!(fake.violations(), Vec::<String>::new());
}

#[tokio::test]
async fn a_crash_after_success_rolls_back_to_the_last_good_commit() {
    let fake = account();
    fake.push_commit("svc-web", C1, "ok");
    fake.push_commit("svc-web", C2, "crash-after-success");
    let provider = repo_sourced(&fake).await;
    assert_eq!(deploy_commit(&provider, C1).await, Verdict::Healthy);
    let good = provider.current().await.unwrap().remove(0).revision;
    let verdict = deploy_commit(&provider, C2).await;
    assert!(matches!(verdict, Verdict::Failed { .. }), "{verdict:?}");
    assert_eq!(
        provider.current().await.unwrap(),
        Vec::new(),
        "nothing runs"
    );
    let history = provider.history().await.unwrap();
    assert!(
        history
            .iter()
            .any(|r| r.id == good && r.images.values().any(|i| *i == commit(C1))),
        "{history:?}"
    );
    let back = provider.rollback(&good).await.unwrap();
    let verdict = wait(&provider, &back).await;
    assert_eq!(verdict, Verdict::Healthy);
    assert_eq!(fake.live_commit("env-prod", "svc-web").as_deref(), Some(C1));
    assert_eq!(provider.current().await.unwrap()[0].image, commit(C1));
    assert_eq!(fake.violations(), Vec::<String>::new());
}

#[tokio::test]
async fn an_unknown_commit_or_an_image_service_is_refused_naming_the_fix() {
    let fake = account();
    fake.push_commit("svc-web", C1, "ok");
    let provider = repo_sourced(&fake).await;
    let err = provider
        .deploy(&DeployRequest {
            images: BTreeMap::from([("web".parse::<ServiceName>().unwrap(), commit(C2))]),
            description: "test".into(),
        })
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!("cannot find commit {C2} in acme/web")) && err.contains("push it"),
        "{err}"
    );
    assert_eq!(
        fake.live_commit("env-prod", "svc-web"),
        None,
        "nothing deployed"
    );

    let url = fake.clone().start().await;
    let mut s = settings(&url, account_token());
    s.source = ServiceSource::Repo {
        repository: "acme-api".into(),
    };
    let err = RailwayProvider::connect(s).await.unwrap_err().to_string();
    assert!(
        err.contains("is not connected to a GitHub repo") && err.contains("source = \"image\""),
        "{err}"
    );
}
