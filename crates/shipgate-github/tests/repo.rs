//! What shipgate writes to GitHub, against the loopback GitHub serving GitHub's own example
//! bodies: deployments and statuses, the sticky PR comment, alert issues with label checks,
//! de-duplication that ignores pull requests, closing; writes a second apart.

#![allow(clippy::unwrap_used, clippy::panic)]

use std::time::{Duration, Instant};

use serde_json::json;
use shipgate_core::Secret;
use shipgate_github::{DeploymentState, GithubClient, NewDeployment, StatusUpdate, Sticky};
use shipgate_testkit::fakes::FakeGithub;

const SHA: &str = "ce587453ced02b1526dfb4cb910479d431683101";
const REPO: &str = "acme/shop";

async fn client() -> (FakeGithub, GithubClient) {
    let fake = FakeGithub::new(REPO, "ghs_token");
    let url = fake.clone().start().await;
    (
        fake,
        GithubClient::new(&url, Some(Secret::new("ghs_token"))).unwrap(),
    )
}

fn deployment() -> NewDeployment {
    NewDeployment {
        sha: SHA.into(),
        environment: "production".into(),
        description: "deploy 3f2c1a9".into(),
        required_contexts: Vec::new(),
        production: true,
    }
}

fn deadline() -> Instant {
    Instant::now() + Duration::from_secs(30)
}

#[tokio::test]
async fn a_deployment_gets_statuses_with_short_descriptions() {
    let (fake, gh) = client().await;
    let id = gh
        .create_deployment(REPO, &deployment(), deadline())
        .await
        .unwrap();
    for state in [DeploymentState::InProgress, DeploymentState::Failure] {
        gh.deployment_status(
            REPO,
            id,
            &StatusUpdate {
                state,
                description: "x".repeat(300),
                environment_url: Some("https://shop.example.com".into()),
                log_url: Some("https://github.com/acme/shop/actions/runs/1".into()),
            },
            deadline(),
        )
        .await
        .unwrap();
    }
    let repo = fake.repo.lock().unwrap();
    assert_eq!(repo.deployments[0]["ref"], SHA);
    assert_eq!(repo.deployments[0]["required_contexts"], json!([]));
    let states: Vec<&str> = repo
        .deployment_statuses
        .iter()
        .map(|(_, b)| b["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["in_progress", "failure"]);
    assert_eq!(repo.violations, Vec::<String>::new(), "auto_merge false");
    assert_eq!(
        repo.throttled, 0,
        "one client spaces its writes a second apart"
    );
}

#[tokio::test]
async fn one_sticky_comment_per_pull_request() {
    let (fake, gh) = client().await;
    fake.repo.lock().unwrap().pulls.push((SHA.into(), 42));
    let pr = gh
        .pull_request_for_commit(REPO, SHA, deadline())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(pr.number, 42);
    assert!(
        gh.pull_request_for_commit(REPO, "0000000000000000000000000000000000000000", deadline())
            .await
            .unwrap()
            .is_none()
    );

    let marker = "<!-- shipgate:deploy production -->";
    let first = gh
        .upsert_sticky_comment(REPO, 42, marker, "deployed 3f2c1a9", deadline())
        .await
        .unwrap();
    gh.comment(REPO, 42, "a human comment", deadline())
        .await
        .unwrap();
    let second = gh
        .upsert_sticky_comment(REPO, 42, marker, "rolled back to 1a2b3c4", deadline())
        .await
        .unwrap();
    let Sticky::Created(id) = first else {
        panic!("{first:?}")
    };
    assert_eq!(second, Sticky::Updated(id));
    let repo = fake.repo.lock().unwrap();
    assert_eq!(repo.comments.len(), 2);
    assert!(repo.comments[0].1.contains("rolled back to 1a2b3c4"));
    assert_eq!(repo.violations, Vec::<String>::new());
    assert_eq!(repo.throttled, 0);
}

#[tokio::test]
async fn alert_issues_are_deduplicated_and_dropped_labels_reported() {
    let (fake, gh) = client().await;
    let title = "Production Deployment Health Check Failed";
    let labels = vec!["deployment-alert".to_owned(), "urgent".to_owned()];
    // A pull request carrying the label (GitHub lists PRs as issues) is not an alert issue.
    {
        let mut repo = fake.repo.lock().unwrap();
        repo.issues.push(json!({"number": 7, "title": title, "state": "open", "html_url": "https://github.com/acme/shop/pull/7",
            "labels": [{"name": "deployment-alert"}], "pull_request": {"url": "x"}}));
    }
    assert!(
        gh.find_open_issue(REPO, "deployment-alert", title, deadline())
            .await
            .unwrap()
            .is_none()
    );

    let created = gh
        .create_issue(REPO, title, "api: GET /health → 503", &labels, deadline())
        .await
        .unwrap();
    assert!(created.dropped_labels.is_empty());
    let found = gh
        .find_open_issue(REPO, "deployment-alert", title, deadline())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.number, created.issue.number);
    gh.close_issue(REPO, found.number, deadline())
        .await
        .unwrap();
    assert!(
        gh.find_open_issue(REPO, "deployment-alert", title, deadline())
            .await
            .unwrap()
            .is_none()
    );

    // Without push access GitHub drops the labels silently; shipgate says which.
    fake.repo.lock().unwrap().drop_labels = true;
    let created = gh
        .create_issue(REPO, title, "again", &labels, deadline())
        .await
        .unwrap();
    assert_eq!(created.dropped_labels, labels);
    assert_eq!(fake.repo.lock().unwrap().violations, Vec::<String>::new());
}

/// GitHub's one-second spacing is per token, whichever process writes: when another process
/// with the same token has just written, GitHub answers a secondary rate limit; the client
/// waits the `retry-after` out and sends again, creating nothing twice.
#[tokio::test]
async fn a_secondary_rate_limit_on_a_write_is_waited_out_and_never_duplicates() {
    let (fake, gh) = client().await;
    fake.repo.lock().unwrap().throttle_next_write = true;
    gh.create_deployment(REPO, &deployment(), deadline())
        .await
        .unwrap();
    let repo = fake.repo.lock().unwrap();
    assert_eq!(repo.deployments.len(), 1);
    assert_eq!(repo.throttled, 1);
}
