//! The rollback resolver against a real OCI registry (Debian's docker-registry on loopback,
//! images pushed by the test, one manifest deleted), the fake GitHub serving GitHub's own
//! workflow-run examples, and a real SQLite ledger: every skip reason, the choice, the reason
//! chain; plus the registry token flow, a registry answering HTML, and a missing workflow.

#![allow(clippy::unwrap_used, clippy::panic)]

use std::collections::BTreeMap;

use shipgate_core::{ImageRef, Redactor, Secret, ServiceName};
use shipgate_github::GithubClient;
use shipgate_ledger::{DeploymentRecord, Ledger, NewRun};
use shipgate_rollback::{
    Existence, ImageCheck, LedgerVerdicts, OciRegistry, RegistryLogin, Resolver, WorkflowSource,
};
use shipgate_testkit::fakes::FakeGithub;
use shipgate_testkit::registry::Registry;

const REPO: &str = "acme/shop";

fn sha(c: char) -> String {
    std::iter::repeat_n(c, 40).collect()
}

fn images_for(host: String) -> shipgate_rollback::ImagesFor {
    Box::new(move |sha: &str| {
        let image: ImageRef = format!("{host}/acme/api:{sha}").parse()?;
        Ok(BTreeMap::from([(
            "api".parse::<ServiceName>().unwrap(),
            image,
        )]))
    })
}

async fn github(runs: Vec<(String, u64, String, String)>) -> (FakeGithub, GithubClient) {
    let fake = FakeGithub::new(REPO, "ghs_token");
    fake.repo
        .lock()
        .unwrap()
        .workflows
        .push(("publish-images.yml".into(), runs));
    let url = fake.clone().start().await;
    (
        fake,
        GithubClient::new(&url, Some(Secret::new("ghs_token"))).unwrap(),
    )
}

#[tokio::test]
async fn the_first_verified_candidate_is_chosen_with_the_reason_chain() {
    let registry = Registry::start();
    let (a, b, c, d, e) = (sha('a'), sha('b'), sha('c'), sha('d'), sha('e'));
    // e: present. d: pushed then deleted. c: never pushed. b: present but recorded as failed.
    registry.push("acme/api", &e).await;
    let deleted = registry.push("acme/api", &d).await;
    registry.delete("acme/api", &deleted).await;
    registry.push("acme/api", &b).await;
    let run = |s: &str, n: u64, conclusion: &str| {
        (s.to_owned(), n, conclusion.to_owned(), "main".to_owned())
    };
    let (_fake, client) = github(vec![
        run(&c, 813, "success"),
        run(&a, 815, "success"),
        run(&e, 811, "success"),
        run(&b, 814, "success"),
        run(&d, 812, "success"),
        run(&sha('f'), 816, "failure"),
        (sha('9'), 817, "success".into(), "feature".into()),
    ])
    .await;

    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(&format!("sqlite://{}", dir.path().join("l.db").display()))
        .await
        .unwrap();
    ledger
        .start_run(&NewRun {
            id: "r1".into(),
            app: "shop".into(),
            environment: "production".into(),
            image_tag: b.clone(),
            owner: "ci".into(),
            host: "h".into(),
            pid: 1,
            started_ms: 1,
        })
        .await
        .unwrap();
    ledger
        .record_deployment(&DeploymentRecord {
            run_id: "r1".into(),
            target: "helm".into(),
            service: "api".into(),
            from_image: None,
            to_image: format!("{}/acme/api:{b}", registry.host),
            revision: "1".into(),
            kind: "deploy".into(),
            verdict: "failed".into(),
        })
        .await
        .unwrap();

    let resolver = Resolver::new(
        vec![Box::new(WorkflowSource {
            client,
            repository: REPO.into(),
            workflow: "publish-images.yml".into(),
            branch: Some("main".into()),
            images: images_for(registry.host.clone()),
        })],
        Some(Box::new(LedgerVerdicts {
            ledger,
            app: "shop".into(),
            environment: "production".into(),
        })),
        Some(Box::new(
            OciRegistry::new(Vec::new(), Redactor::default()).unwrap(),
        )),
    );
    let decision = resolver.resolve(&a[..7]).await;
    let chosen = decision.chosen.clone().unwrap();
    assert_eq!(chosen.origin, "publish-images.yml run #811");
    let reasons = decision.reasons();
    assert_eq!(
        reasons[0], "chose eeeeeeeeeeee from publish-images.yml run #811",
        "{reasons:#?}"
    );
    let skips: Vec<&str> = reasons[1..].iter().map(String::as_str).collect();
    assert_eq!(skips.len(), 4, "{skips:#?}");
    assert!(
        skips[0].starts_with(
            "skipped aaaaaaaaaaaa (publish-images.yml run #815): it is the failing release"
        ),
        "{skips:#?}"
    );
    assert!(
        skips[1].contains("run #814): image")
            && skips[1].ends_with("did not pass its gate when last deployed on helm in run r1 (failed), which has not finished"),
        "{skips:#?}"
    );
    assert!(
        skips[2].contains("run #813): image") && skips[2].ends_with("missing in its registry"),
        "{skips:#?}"
    );
    assert!(
        skips[3].contains("run #812): image") && skips[3].ends_with("missing in its registry"),
        "{skips:#?}"
    );
}

#[tokio::test]
async fn a_missing_workflow_is_a_source_error_naming_the_file() {
    let (_fake, client) = github(Vec::new()).await;
    let resolver = Resolver::new(
        vec![Box::new(WorkflowSource {
            client,
            repository: REPO.into(),
            workflow: "publish.yml".into(),
            branch: None,
            images: images_for("ghcr.io".into()),
        })],
        None,
        None,
    );
    let decision = resolver.resolve(&sha('a')).await;
    assert!(decision.chosen.is_none());
    assert!(decision.reasons()[0].starts_with("no rollback candidate"));
    assert!(
        decision.source_errors[0].contains("workflow `publish.yml` does not exist in acme/shop"),
        "{:?}",
        decision.source_errors
    );
}

/// A registry that demands a bearer token from its realm (GHCR's flow), or answers HTML.
async fn token_registry(password: &'static str) -> String {
    use axum::http::{HeaderMap, StatusCode, header};
    use axum::response::IntoResponse;
    let app = axum::Router::new()
        .route(
            "/token",
            axum::routing::get(move |headers: HeaderMap| async move {
                use base64::Engine;
                let expected = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("bot:{password}")));
                if headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(expected.as_str()) {
                    axum::Json(serde_json::json!({"token": "registry-token"})).into_response()
                } else {
                    StatusCode::UNAUTHORIZED.into_response()
                }
            }),
        )
        .route(
            "/v2/{owner}/{name}/manifests/{reference}",
            axum::routing::head(|headers: HeaderMap, axum::extract::Path((_, _, reference)): axum::extract::Path<(String, String, String)>| async move {
                if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some("Bearer registry-token") {
                    let host = headers.get("host").unwrap().to_str().unwrap().to_owned();
                    return (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, format!("Bearer realm=\"http://{host}/token\",service=\"test\",scope=\"repository:acme/api:pull\""))]).into_response();
                }
                if reference == "present" {
                    (StatusCode::OK, [("docker-content-digest", "sha256:abc")]).into_response()
                } else {
                    StatusCode::NOT_FOUND.into_response()
                }
            }),
        )
        .route("/v2/html/page/manifests/{reference}", axum::routing::head(|| async { ([(header::CONTENT_TYPE, "text/html")], "<html>login</html>") }));
    shipgate_testkit::serve(app).await.to_string()
}

#[tokio::test]
async fn the_token_flow_html_answers_and_refused_credentials_are_told_apart() {
    let host = token_registry("s3cret-registry-pass").await;
    let image = |path: &str| -> ImageRef { format!("{host}/{path}").parse().unwrap() };
    let login = RegistryLogin {
        host: host.clone(),
        username: "bot".into(),
        password: Secret::new("s3cret-registry-pass"),
    };
    let registry = OciRegistry::new(vec![login], Redactor::default()).unwrap();
    assert_eq!(
        registry.exists(&image("acme/api:present")).await.unwrap(),
        Existence::Exists(Some("sha256:abc".into()))
    );
    assert_eq!(
        registry.exists(&image("acme/api:gone")).await.unwrap(),
        Existence::Missing
    );
    let err = registry
        .exists(&image("html/page:x"))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("HTML page"), "{err}");

    let anonymous = OciRegistry::new(Vec::new(), Redactor::default()).unwrap();
    let err = anonymous
        .exists(&image("acme/api:present"))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("refused a pull token") && err.contains("configure credentials"),
        "{err}"
    );
}
