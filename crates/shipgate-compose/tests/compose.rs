//! The composition built from real configuration files, as an embedder builds it.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::Path;

use shipgate_compose::{ComposeError, ComposeOptions, Composition};

fn compose(file: &Path, vars: &[(&str, &str)], overrides: &[(&str, &str, &str)]) -> Composition {
    let vars: BTreeMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let loaded = shipgate_config::load(&shipgate_config::LoadOptions {
        file: Some(file),
        vars: &vars,
        overrides,
    })
    .unwrap();
    Composition::new(loaded, vars, ComposeOptions::default())
}

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// A relative `[secrets]` path written in the file is relative to the file, for every part
/// the composition builds: the notifier's webhook, the smoke gate's API key, the registry
/// check's token. (The test runs in the crate's directory, not the file's.)
#[tokio::test]
async fn secrets_beside_the_configuration_file_are_found_from_any_directory() {
    let project = tempfile::tempdir().unwrap();
    write(
        project.path(),
        "secrets.env",
        "SLACK_WEBHOOK=https://hooks.slack.test/services/canary-slack\n\
         PRODUCTION_API_KEY=canary-api-key\n\
         GITHUB_TOKEN=canary-github-token\n",
    );
    let config = write(
        project.path(),
        "shipgate.toml",
        "app = \"shop\"\nenvironment = \"dev\"\n\
         [secrets]\nsources = [{ kind = \"dotenv\", path = \"secrets.env\" }]\n\
         [[notify.slack]]\nwebhook_secret = \"SLACK_WEBHOOK\"\n\
         [smoke]\nenabled = true\nbase_url = \"https://api.shop.test\"\n\
         [[smoke.checks]]\nname = \"health\"\npath = \"/healthz\"\n",
    );
    assert_ne!(std::env::current_dir().unwrap(), project.path());
    let composition = compose(&config, &[], &[]);
    assert!(composition.notifier().await.unwrap().is_some());
    composition.smoke_spec(false).await.unwrap();
    composition.registry_check().await.unwrap();
    // Each value was found, and is masked in everything the composition hands out.
    let said = composition
        .redactor()
        .redact("https://hooks.slack.test/services/canary-slack canary-api-key canary-github-token")
        .into_owned();
    assert!(!said.contains("canary"), "{said}");
}

#[test]
fn a_release_is_refused_without_a_target_or_a_tag_and_with_a_mutable_tag_in_production() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(
        dir.path(),
        "shipgate.toml",
        "app = \"shop\"\n[services.api]\nimage = \"ghcr.io/acme/shop-api\"\n",
    );
    let refusal = |vars: &[(&str, &str)]| match compose(&config, vars, &[]).release() {
        Err(ComposeError::Setup { message, .. }) => message,
        other => panic!("{other:?}"),
    };
    assert!(refusal(&[("IMAGE_TAG", "3f2c1a9")]).contains("no target is enabled"));
    assert!(refusal(&[("ENABLE_HELM_DEPLOY", "true")]).contains("no image tag"));
    let mutable = refusal(&[("ENABLE_HELM_DEPLOY", "true"), ("IMAGE_TAG", "latest")]);
    assert!(
        mutable.contains("mutable tag") && mutable.contains("ghcr.io/acme/shop-api:latest"),
        "{mutable}"
    );
    // The same tag is fine in a development environment.
    let dev = compose(
        &config,
        &[
            ("ENABLE_HELM_DEPLOY", "true"),
            ("IMAGE_TAG", "latest"),
            ("ENVIRONMENT", "dev"),
        ],
        &[],
    );
    assert_eq!(dev.release().unwrap().tag, "latest");
}

#[test]
fn services_deploy_in_their_order_with_their_repositories() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(
        dir.path(),
        "shipgate.toml",
        "app = \"shop\"\n[image]\nregistry = \"ghcr.io\"\nowner = \"acme\"\n\
         [services.web]\norder = 2\n\
         [services.api]\norder = 1\n\
         [services.worker]\norder = 3\nimage = \"registry.example.com/ops/worker\"\n\
         [targets.helm]\nenabled = true\n",
    );
    let composition = compose(&config, &[], &[("image.tag", "3f2c1a9", "--image-tag")]);
    let release = composition.release().unwrap();
    let images: Vec<String> = release
        .images
        .iter()
        .map(|(s, i)| format!("{s}={i}"))
        .collect();
    assert_eq!(
        images,
        [
            "api=ghcr.io/acme/shop-api:3f2c1a9",
            "web=ghcr.io/acme/shop-web:3f2c1a9",
            "worker=registry.example.com/ops/worker:3f2c1a9"
        ]
    );
}

#[tokio::test]
async fn a_secret_source_that_fails_is_named_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    // The key's file is a directory: the source fails (it does not say "missing").
    std::fs::create_dir_all(dir.path().join("secrets/GITHUB_TOKEN")).unwrap();
    let config = write(
        dir.path(),
        "shipgate.toml",
        "app = \"shop\"\nenvironment = \"dev\"\n\
         [secrets]\nsources = [{ kind = \"dir\", path = \"secrets\" }]\n",
    );
    let composition = compose(&config, &[], &[]);
    match composition.github_client().await {
        Err(ComposeError::Setup { message, .. }) => assert!(
            message.contains("GITHUB_TOKEN could not be read from secret source"),
            "{message}"
        ),
        other => panic!("{other:?}"),
    }
}
