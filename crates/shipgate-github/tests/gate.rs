//! The CI gate against a loopback GitHub serving GitHub's own example bodies: pagination,
//! checks that finish over time, fail-fast, nothing reported, a primary rate limit, bad
//! credentials, an unknown repository.

#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use shipgate_core::Secret;
use shipgate_github::{GateOutcome, GateSpec, GithubClient, GithubError, run_gate};
use shipgate_testkit::fakes::FakeGithub;
use tokio_util::sync::CancellationToken;

const SHA: &str = "ce587453ced02b1526dfb4cb910479d431683101";
const TOKEN: &str = "ghs_canaryTokenValue123";

fn spec(required: &[&str]) -> GateSpec {
    GateSpec {
        required: required.iter().map(|s| (*s).to_owned()).collect(),
        allow_neutral: false,
        allow_skipped: false,
        timeout: Duration::from_secs(10),
        interval: Duration::from_millis(20),
    }
}

async fn gate(
    url: &str,
    token: &str,
    repo: &str,
    spec: &GateSpec,
) -> (Result<GateOutcome, GithubError>, Vec<String>) {
    let client = GithubClient::new(url, Some(Secret::new(token))).unwrap();
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    let progress = move |line: &str| sink.lock().unwrap().push(line.to_owned());
    let outcome = run_gate(
        &client,
        repo,
        SHA,
        spec,
        &progress,
        &CancellationToken::new(),
    )
    .await;
    let lines = lines.lock().unwrap().clone();
    (outcome, lines)
}

#[tokio::test]
async fn seed_004_gate_waits_for_sharded_tests_across_pages_then_passes() {
    let gh = FakeGithub::new("acme/backend", TOKEN);
    gh.check("Code Quality Checks", "success", 0)
        .check("Security Scan", "success", 0)
        .check("Run Tests (shards 1)", "success", 1)
        .check("Run Tests (shards 2)", "success", 3)
        .check("Build Verification", "success", 0);
    gh.statuses
        .lock()
        .unwrap()
        .push(("continuous-integration/jenkins".into(), "success".into()));
    let url = gh.start().await;
    let required = [
        "Code Quality Checks",
        "Security Scan",
        "Run Tests (shards *)",
        "Build Verification",
        "continuous-integration/*",
    ];
    let (outcome, progress) = gate(&url, TOKEN, "acme/backend", &spec(&required)).await;
    match outcome.unwrap() {
        GateOutcome::Passed(names) => assert_eq!(names.len(), 6, "{names:?}"),
        other => panic!("{other:?}"),
    }
    assert!(
        progress
            .iter()
            .any(|l| l.contains("Run Tests (shards 2): in_progress")),
        "{progress:?}"
    );
}

#[tokio::test]
async fn a_failed_required_check_fails_the_gate_with_its_link() {
    let gh = FakeGithub::new("acme/backend", TOKEN);
    gh.check("build", "success", 0)
        .check("test", "failure", 0)
        .check("lint", "success", 5);
    let url = gh.start().await;
    match gate(
        &url,
        TOKEN,
        "acme/backend",
        &spec(&["build", "test", "lint"]),
    )
    .await
    .0
    .unwrap()
    {
        GateOutcome::Failed(failures) => {
            assert_eq!(failures[0].name, "test");
            assert_eq!(failures[0].reason, "failure");
            assert_eq!(
                failures[0].url.as_deref(),
                Some("https://github.com/acme/backend/runs/2")
            );
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn nothing_reported_times_out_as_no_checks_not_as_pending() {
    let url = FakeGithub::new("acme/backend", TOKEN).start().await;
    let mut short = spec(&["build"]);
    short.timeout = Duration::from_millis(200);
    match gate(&url, TOKEN, "acme/backend", &short).await.0.unwrap() {
        GateOutcome::TimedOut { waiting, no_checks } => {
            assert!(no_checks);
            assert_eq!(waiting, ["build: not reported yet"]);
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_primary_rate_limit_is_waited_out_until_its_reset() {
    let gh = FakeGithub::new("acme/backend", TOKEN);
    gh.check("build", "success", 0);
    gh.rate_limit_first
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let url = gh.start().await;
    assert!(matches!(
        gate(&url, TOKEN, "acme/backend", &spec(&["build"]))
            .await
            .0
            .unwrap(),
        GateOutcome::Passed(_)
    ));
}

#[tokio::test]
async fn bad_credentials_and_unknown_repositories_are_typed_errors_without_the_token() {
    let gh = FakeGithub::new("acme/backend", TOKEN);
    let url = gh.start().await;
    let err = gate(
        &url,
        "ghs_wrong_canary_token",
        "acme/backend",
        &spec(&["build"]),
    )
    .await
    .0
    .unwrap_err();
    assert!(matches!(err, GithubError::Unauthorized { .. }), "{err:?}");
    assert!(
        !err.to_string().contains("ghs_wrong_canary_token")
            && !format!("{err:?}").contains("ghs_wrong")
    );
    let err = gate(&url, TOKEN, "acme/other", &spec(&["build"]))
        .await
        .0
        .unwrap_err();
    assert!(matches!(err, GithubError::NotFound { .. }), "{err:?}");
    assert!(err.to_string().contains("check the repository name"));
}
