//! `shipgate doctor` on what `shipgate init` wrote for the repositories of `fixtures/init/`,
//! against the platform fakes, a real registry and real HTTP servers: all good, then each
//! wrong case (expired token, read-only token, project token for another environment,
//! namespace missing, a right the identity lacks, helm missing, label missing, registry
//! without the tag, smoke target down, GitHub token refused) fails its line with the fix,
//! exit 1, and doctor writes nothing.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use shipgate_testkit::fakes::FakeGithub;
use shipgate_testkit::fly::FakeFly;
use shipgate_testkit::railway::{FakeRailway, FakeToken};
use shipgate_testkit::registry::Registry;
use shipgate_testkit::{Canary, runtime};

const SHA: &str = "3f2c1a9e0b7d4c5a6f8e9d0c1b2a3f4e5d6c7b8a";
const UNPUBLISHED: &str = "9999999e0b7d4c5a6f8e9d0c1b2a3f4e5d6c7b8a";

/// A copy of `fixtures/init/NAME` after `shipgate init --force`.
fn initialised(name: &str) -> (tempfile::TempDir, PathBuf) {
    let (dir, repo) = shipgate_testkit::init_fixture(name);
    let status = Command::cargo_bin("shipgate")
        .unwrap()
        .current_dir(&repo)
        .env_clear()
        .args(["init", "--force"])
        .output()
        .unwrap();
    assert!(status.status.success());
    (dir, repo)
}

fn doctor(repo: &Path, env: &[(&str, String)], canary: &Canary) -> (i32, String) {
    let output = Command::cargo_bin("shipgate")
        .unwrap()
        .current_dir(repo)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env(
            "SHIPGATE_LEDGER__URL",
            format!("sqlite://{}", repo.join("ledger.db").display()),
        )
        .args(["doctor", "--config", "shipgate.toml"])
        .output()
        .unwrap();
    let out =
        String::from_utf8(output.stdout).unwrap() + &String::from_utf8(output.stderr).unwrap();
    canary.assert_absent("doctor's output", &out);
    (output.status.code().unwrap(), out)
}

/// The line of check `name` (`target fly`, `github: checks`), and the fix line after it when
/// there is one.
fn line<'a>(out: &'a str, name: &str) -> (&'a str, &'a str) {
    let lines: Vec<&str> = out.lines().collect();
    let at = lines
        .iter()
        .position(|l| {
            l.get(5..)
                .is_some_and(|rest| rest.starts_with(&format!("{name}:")))
        })
        .unwrap_or_else(|| panic!("no `{name}` line in:\n{out}"));
    let fix = lines
        .get(at + 1)
        .filter(|l| l.trim_start().starts_with("fix:"))
        .copied()
        .unwrap_or("");
    (lines[at], fix)
}

fn with(env: &[(&str, String)], key: &'static str, value: String) -> Vec<(&'static str, String)> {
    let mut env: Vec<(&'static str, String)> = env
        .iter()
        .filter(|(k, _)| *k != key)
        .map(|(k, v)| {
            let k: &'static str = Box::leak(k.to_string().into_boxed_str());
            (k, v.clone())
        })
        .collect();
    env.push((key, value));
    env
}

#[test]
fn doctor_checks_the_fly_configuration_and_names_each_fix() {
    let rt = runtime();
    let canary = Canary::new("fly-token");
    let token = format!("FlyV1 fm2_{}", canary.value());
    let registry = Registry::start();
    rt.block_on(registry.push("proofkit-prod", SHA));
    let fly = FakeFly::new("proofkit-prod", &token);
    fly.machines(
        "app",
        2,
        &format!("{}/proofkit-prod:0000000", registry.host),
    );
    let fly_url = rt.block_on(fly.clone().start());
    let site = rt.block_on(shipgate_testkit::serve(
        axum::Router::new().fallback(|| async { "ok" }),
    ));
    let (_dir, repo) = initialised("proofkit");
    let env = vec![
        ("IMAGE_TAG", SHA.to_owned()),
        ("FLY_API_TOKEN", token.clone()),
        ("SHIPGATE_TARGETS__FLY__API_URL", fly_url),
        ("SHIPGATE_IMAGE__REGISTRY", registry.host.clone()),
        ("SHIPGATE_SMOKE__BASE_URL", format!("http://{site}")),
        ("SHIPGATE_SMOKE__ALLOW_INSECURE", "true".to_owned()),
    ];
    let (code, out) = doctor(&repo, &env, &canary);
    assert_eq!(code, 0, "{out}");
    for name in [
        "environment",
        "release",
        "ledger",
        "target fly",
        "registry",
        "smoke target",
    ] {
        assert!(line(&out, name).0.starts_with("ok "), "{name}: {out}");
    }
    assert!(line(&out, "github").0.starts_with("skip"), "{out}");
    assert!(out.contains("doctor: a deploy has what it needs"), "{out}");
    let before = fly.calls().len();

    // An expired (or wrong) token.
    let (code, out) = doctor(
        &repo,
        &with(&env, "FLY_API_TOKEN", "FlyV1 fm2_expired".to_owned()),
        &canary,
    );
    assert_eq!(code, 1, "{out}");
    let (failed, _) = line(&out, "targets");
    assert!(
        failed.starts_with("FAIL")
            && failed.contains("Fly refused")
            && failed.contains("fly tokens create deploy"),
        "{out}"
    );

    // A read-only token: it reads the app, so the deploy would fail only at the first lease.
    let readonly = FakeFly::new("proofkit-prod", &token);
    readonly.machines(
        "app",
        1,
        &format!("{}/proofkit-prod:0000000", registry.host),
    );
    readonly.read_only();
    let readonly_url = rt.block_on(readonly.clone().start());
    let (code, out) = doctor(
        &repo,
        &with(&env, "SHIPGATE_TARGETS__FLY__API_URL", readonly_url),
        &canary,
    );
    assert_eq!(code, 1, "{out}");
    let (failed, fix) = line(&out, "target fly:app: may lease and update machines");
    assert!(
        failed.starts_with("FAIL") && failed.contains("not write"),
        "{out}"
    );
    assert!(
        fix.contains("fly tokens create deploy -a proofkit-prod"),
        "{out}"
    );
    assert!(
        line(&out, "target fly:app: what runs").0.starts_with("ok "),
        "{out}"
    );

    // The registry has no image at the tag about to be deployed.
    let (code, out) = doctor(
        &repo,
        &with(&env, "IMAGE_TAG", UNPUBLISHED.to_owned()),
        &canary,
    );
    assert_eq!(code, 1, "{out}");
    let (failed, fix) = line(&out, "registry");
    assert!(
        failed.starts_with("FAIL")
            && failed.contains("no such tag")
            && failed.contains(UNPUBLISHED),
        "{out}"
    );
    assert!(fix.contains("publish the images"), "{out}");

    // The smoke target does not answer.
    let closed = shipgate_testkit::closed_port();
    let (code, out) = doctor(
        &repo,
        &with(&env, "SHIPGATE_SMOKE__BASE_URL", format!("http://{closed}")),
        &canary,
    );
    assert_eq!(code, 1, "{out}");
    let (failed, fix) = line(&out, "smoke target");
    assert!(
        failed.starts_with("FAIL") && failed.contains("does not answer"),
        "{out}"
    );
    assert!(fix.contains("PRODUCTION_API_URL"), "{out}");

    // Read-only: no lease, update or stop was sent (the one POST verifies the token against
    // a scope), and the machines run what they ran.
    let writes: Vec<_> = fly
        .calls()
        .into_iter()
        .skip(before)
        .filter(|(method, path, _)| method != "GET" && path != "/v1/tokens/authorize")
        .collect();
    assert_eq!(writes, Vec::new(), "doctor sent writes");
    assert_eq!(
        fly.images("app"),
        vec![format!("{}/proofkit-prod:0000000", registry.host); 2]
    );
}

#[test]
fn doctor_checks_the_railway_configuration_and_names_each_fix() {
    let rt = runtime();
    let canary = Canary::new("railway-token");
    let (_dir, repo) = initialised("railway-auto");
    let github = FakeGithub::new("acme/web", "ghs_token");
    github.check("Build Verification", "success", 0);
    github.repo.lock().unwrap().labels = vec!["deployment-alert".into(), "urgent".into()];
    let github_url = rt.block_on(github.clone().start());
    let site = rt.block_on(shipgate_testkit::serve(
        axum::Router::new().fallback(|| async { "ok" }),
    ));
    let serve = |token: FakeToken| {
        let railway = FakeRailway::new(token);
        railway.push_commit("svc-web", SHA, "ok");
        (railway.clone(), rt.block_on(railway.start()))
    };
    let base = |url: &str, token: &str| {
        vec![
            ("GITHUB_SHA", SHA.to_owned()),
            ("GITHUB_REPOSITORY", "acme/web".to_owned()),
            ("GITHUB_API_URL", github_url.clone()),
            ("GITHUB_TOKEN", "ghs_token".to_owned()),
            ("RAILWAY_PROJECT_ID", "proj-shop".to_owned()),
            ("RAILWAY_ENVIRONMENT", "production".to_owned()),
            (
                "SHIPGATE_TARGETS__RAILWAY__SERVICES__BACKEND",
                "web".to_owned(),
            ),
            ("SHIPGATE_TARGETS__RAILWAY__API_URL", url.to_owned()),
            ("SHIPGATE_SMOKE__ALLOW_INSECURE", "true".to_owned()),
            ("PRODUCTION_API_URL", format!("http://{site}")),
            ("RAILWAY_API_TOKEN", token.to_owned()),
        ]
    };

    let (railway, url) = serve(FakeToken::Account(canary.value().to_owned()));
    let env = base(&url, canary.value());
    let (code, out) = doctor(&repo, &env, &canary);
    assert_eq!(code, 0, "{out}");
    for name in [
        "target railway:backend: token",
        "target railway:backend: service",
        "target railway:backend: what runs",
        "github: checks",
        "github: label deployment-alert",
        "github: label urgent",
    ] {
        assert!(line(&out, name).0.starts_with("ok "), "{name}: {out}");
    }
    assert!(
        line(&out, "target railway:backend: token")
            .0
            .contains("an account or workspace token (RAILWAY_API_TOKEN); it sees project `shop` and environment `production`"),
        "{out}"
    );
    assert!(
        line(&out, "target railway:backend: service")
            .0
            .contains("builds from GitHub repo acme/web"),
        "{out}"
    );
    assert!(
        line(&out, "github: rights").0.starts_with("??")
            && out.contains("pull-requests: write (the PR comment)"),
        "GitHub does not show a GITHUB_TOKEN's rights; doctor says so and lists them: {out}"
    );
    assert!(
        line(&out, "registry")
            .0
            .contains("Railway builds the commit"),
        "{out}"
    );
    assert!(out.contains("reads check runs of acme/web"), "{out}");
    assert!(
        !railway.calls().iter().any(|(op, _)| matches!(
            op.as_str(),
            "DeployCommit" | "DeployV2" | "SetImage" | "Rollback"
        )),
        "doctor only reads"
    );

    // An expired token.
    let (code, out) = doctor(
        &repo,
        &with(&env, "RAILWAY_API_TOKEN", "expired".to_owned()),
        &canary,
    );
    assert_eq!(code, 1, "{out}");
    let (failed, _) = line(&out, "targets");
    assert!(
        failed.starts_with("FAIL") && failed.contains("Not Authorized"),
        "{out}"
    );

    // A project token for another environment (staging) used for production.
    let (_, url) = serve(FakeToken::Project(
        canary.value().to_owned(),
        "proj-shop".to_owned(),
        "env-stg".to_owned(),
    ));
    let mut env = base(&url, canary.value());
    env.retain(|(k, _)| *k != "RAILWAY_API_TOKEN");
    env.push(("RAILWAY_TOKEN", canary.value().to_owned()));
    let (code, out) = doctor(&repo, &env, &canary);
    assert_eq!(code, 1, "{out}");
    let (failed, fix) = line(&out, "targets");
    assert!(
        failed.starts_with("FAIL") && failed.contains("staging"),
        "the message names the token's environment: {out}"
    );
    assert!(fix.contains("token"), "{out}");

    // An alert label missing: the monitor finds its open issue again by its labels.
    github.repo.lock().unwrap().labels = vec!["deployment-alert".into()];
    let (_, url) = serve(FakeToken::Account(canary.value().to_owned()));
    let (code, out) = doctor(&repo, &base(&url, canary.value()), &canary);
    assert_eq!(code, 1, "{out}");
    let (failed, fix) = line(&out, "github: label urgent");
    assert!(failed.starts_with("FAIL"), "{out}");
    assert!(
        fix.contains("gh label create \"urgent\" --repo acme/web"),
        "{out}"
    );
    assert!(
        line(&out, "github: label deployment-alert")
            .0
            .starts_with("ok "),
        "{out}"
    );

    // A classic personal access token says its scopes: without `repo` it could not comment or
    // open issues.
    github.repo.lock().unwrap().labels = vec!["deployment-alert".into(), "urgent".into()];
    for (scopes, ok) in [("read:org, gist", false), ("repo, workflow", true)] {
        github.repo.lock().unwrap().oauth_scopes = Some(scopes.to_owned());
        let (_, url) = serve(FakeToken::Account(canary.value().to_owned()));
        let (code, out) = doctor(&repo, &base(&url, canary.value()), &canary);
        let (rights, fix) = line(&out, "github: rights");
        if ok {
            assert_eq!(code, 0, "{out}");
            assert!(
                rights.starts_with("ok ") && rights.contains(scopes),
                "{out}"
            );
        } else {
            assert_eq!(code, 1, "{out}");
            assert!(
                rights.starts_with("FAIL") && rights.contains("without `repo`"),
                "{out}"
            );
            assert!(fix.contains("`repo` scope"), "{out}");
        }
    }
    github.repo.lock().unwrap().oauth_scopes = None;

    // A GitHub token the repository refuses.
    let (_, url) = serve(FakeToken::Account(canary.value().to_owned()));
    let env = with(
        &base(&url, canary.value()),
        "GITHUB_TOKEN",
        "ghs_revoked".to_owned(),
    );
    let (code, out) = doctor(&repo, &env, &canary);
    assert_eq!(code, 1, "{out}");
    let (failed, fix) = line(&out, "github: checks");
    assert!(failed.starts_with("FAIL"), "{out}");
    assert!(fix.contains("checks: read"), "{out}");
}

#[test]
fn doctor_checks_the_helm_configuration_and_the_cluster_rights() {
    use base64::Engine;
    let rt = runtime();
    let canary = Canary::new("kube-token");
    let (_dir, repo) = initialised("provenance");
    let registry = Registry::start();
    for image in ["acme/provenance-api", "acme/provenance-worker"] {
        rt.block_on(registry.push(image, SHA));
    }
    let kube = shipgate_testkit::fakes::FakeKube::new(canary.value());
    kube.namespace("provenance");
    let api = rt.block_on(kube.clone().start());
    let kubeconfig = base64::engine::general_purpose::STANDARD.encode(
        shipgate_testkit::fakes::FakeKube::kubeconfig(api, canary.value()),
    );
    let helm_state = repo.join("helm-state");
    let fake_helm = shipgate_testkit::fake_helm(&helm_state, "v3.19.0");
    let site = rt.block_on(shipgate_testkit::serve(
        axum::Router::new().fallback(|| async { "ok" }),
    ));
    let env = vec![
        ("image_tag", SHA.to_owned()),
        ("DEPLOY_ENVIRONMENT", "production".to_owned()),
        ("ENABLE_HELM_DEPLOY", "true".to_owned()),
        ("ENABLE_DEPLOY_SMOKE_GATE", "true".to_owned()),
        ("HELM_BIN", fake_helm.display().to_string()),
        ("FAKE_HELM_DIR", helm_state.display().to_string()),
        ("KUBE_CONFIG_DATA", kubeconfig),
        ("SHIPGATE_IMAGE__REGISTRY", registry.host.clone()),
        ("PRODUCTION_API_URL", format!("http://{site}")),
        ("SHIPGATE_SMOKE__ALLOW_INSECURE", "true".to_owned()),
        // The rollback's workflow history is another check (github); this one is the cluster's.
        ("SHIPGATE_ROLLBACK__SOURCES", "[ledger,provider]".to_owned()),
    ];
    let (code, out) = doctor(&repo, &env, &canary);
    assert_eq!(code, 0, "{out}");
    for name in [
        "target helm: helm",
        "target helm: namespace",
        "target helm: rights",
        "target helm: what runs",
        "registry",
    ] {
        assert!(line(&out, name).0.starts_with("ok "), "{name}: {out}");
    }
    assert!(
        line(&out, "target helm: helm").0.contains("v3.19.0"),
        "{out}"
    );
    assert!(
        line(&out, "target helm: rights")
            .0
            .contains("may get secrets, list secrets, create secrets, update secrets, get deployments, list deployments, patch deployments"),
        "{out}"
    );

    // The identity may not patch Deployments: helm's upgrade would fail half-way.
    kube.deny("patch", "deployments");
    let (code, out) = doctor(&repo, &env, &canary);
    assert_eq!(code, 1, "{out}");
    let (failed, fix) = line(&out, "target helm: may patch deployments");
    assert!(failed.starts_with("FAIL"), "{out}");
    assert!(
        fix.contains("Role and RoleBinding in `provenance`: patch on deployments.apps"),
        "{out}"
    );

    // The namespace does not exist.
    let (code, out) = doctor(
        &repo,
        &[
            env.clone(),
            vec![("HELM_NAMESPACE", "staging-eu".to_owned())],
        ]
        .concat(),
        &canary,
    );
    assert_eq!(code, 1, "{out}");
    let (failed, fix) = line(&out, "target helm: namespace");
    assert!(
        failed.starts_with("FAIL") && failed.contains("`staging-eu` does not exist"),
        "{out}"
    );
    assert!(fix.contains("kubectl create namespace staging-eu"), "{out}");

    // The kubeconfig names an API server that does not answer.
    let unreachable = base64::engine::general_purpose::STANDARD.encode(
        shipgate_testkit::fakes::FakeKube::kubeconfig(
            shipgate_testkit::closed_port(),
            canary.value(),
        ),
    );
    let (code, out) = doctor(&repo, &with(&env, "KUBE_CONFIG_DATA", unreachable), &canary);
    assert_eq!(code, 1, "{out}");
    let (failed, fix) = line(&out, "target helm: cluster");
    assert!(
        failed.starts_with("FAIL") && failed.contains("does not answer"),
        "{out}"
    );
    assert!(fix.contains("KUBE_CONFIG_DATA"), "{out}");

    // helm is not installed.
    let (code, out) = doctor(
        &repo,
        &with(&env, "HELM_BIN", repo.join("no-helm").display().to_string()),
        &canary,
    );
    assert_eq!(code, 1, "{out}");
    let (failed, _) = line(&out, "targets");
    assert!(
        failed.starts_with("FAIL") && failed.contains("helm"),
        "{out}"
    );
    let argv = std::fs::read_to_string(helm_state.join("argv.log")).unwrap_or_default();
    assert!(
        argv.lines().all(|l| l.starts_with("version")
            || l.starts_with("history")
            || l.starts_with("status")),
        "doctor ran only read-only helm commands: {argv}"
    );
}

/// The waxwatch layout deploys with compose on a host, which no provider drives: what init
/// wrote checks the environment and says that a target is still to be chosen.
#[test]
fn doctor_on_the_waxwatch_configuration_names_the_missing_target_and_variables() {
    let canary = Canary::new("database-url");
    let (_dir, repo) = initialised("waxwatch");
    let env = vec![
        ("ENVIRONMENT", "production".to_owned()),
        (
            "DATABASE_URL",
            format!("postgresql+psycopg://app:{}@db/app", canary.value()),
        ),
    ];
    let (code, out) = doctor(&repo, &env, &canary);
    assert_eq!(code, 1, "{out}");
    let (failed, fix) = line(&out, "environment");
    assert!(
        failed.starts_with("FAIL")
            && failed.contains("AUTH_ISSUER is not set")
            && !failed.contains("DATABASE_URL is not set"),
        "{out}"
    );
    assert!(fix.contains("shipgate check-env"), "{out}");
    let (failed, fix) = line(&out, "release");
    assert!(failed.contains("no target is enabled"), "{out}");
    assert!(fix.contains("enable a target"), "{out}");
    assert!(line(&out, "targets").0.starts_with("skip"), "{out}");
    assert!(line(&out, "ledger").0.starts_with("ok "), "{out}");

    // The same for machines: one object per check, the fix beside each failure.
    let output = Command::cargo_bin("shipgate")
        .unwrap()
        .current_dir(&repo)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .args(["doctor", "--config", "shipgate.toml", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8(output.stdout).unwrap();
    canary.assert_absent("doctor's JSON", &stdout);
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["schema_version"], 1);
    assert_eq!(report["passed"], false);
    let release = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "release")
        .unwrap();
    assert_eq!(release["status"], "failed");
    assert!(release["fix"].as_str().unwrap().contains("enable a target"));
}

/// A key mapped to a Vault source: found while the Vault answers, a failed line naming the
/// source when it does not; the value never printed.
#[test]
fn doctor_looks_each_mapped_key_up_in_its_secret_source() {
    use shipgate_testkit::fakes::FakeVault;
    let rt = runtime();
    let canary = Canary::new("vault-value");
    let vault_token = Canary::new("vault-token");
    let vault = FakeVault::new(vault_token.value());
    vault.put(
        "secret",
        "app/prod",
        serde_json::json!({ "signing": canary.value() }),
    );
    let vault = rt.block_on(vault.start());
    let (_dir, repo) = initialised("proofkit");
    let with_vault = |address: String| {
        let mut config = std::fs::read_to_string(repo.join("shipgate.toml")).unwrap();
        config.push_str(&format!(
            "\n[[secrets.sources]]\nkind = \"env\"\n\n[[secrets.sources]]\nkind = \"vault\"\naddress = \"{address}\"\npath = \"app/prod\"\n\n[secrets.keys.SIGNING_KEY]\nsource = \"vault\"\nfield = \"signing\"\n"
        ));
        std::fs::write(repo.join("shipgate.toml"), config).unwrap();
    };
    let original = std::fs::read_to_string(repo.join("shipgate.toml")).unwrap();
    with_vault(format!("http://{vault}"));
    // Only the secrets matter here: no target (so no platform or registry call) and no gate.
    let env = vec![
        ("IMAGE_TAG", SHA.to_owned()),
        ("VAULT_TOKEN", vault_token.value().to_owned()),
        ("SHIPGATE_TARGETS__FLY__ENABLED", "false".to_owned()),
        ("SHIPGATE_SMOKE__ENABLED", "false".to_owned()),
    ];
    let (_, out) = doctor(&repo, &env, &canary);
    vault_token.assert_absent("doctor's output", &out);
    assert!(line(&out, "targets").0.starts_with("skip"), "{out}");
    let (found, _) = line(&out, "secret SIGNING_KEY");
    assert!(
        found.starts_with("ok ") && found.contains("found in vault"),
        "{out}"
    );

    std::fs::write(repo.join("shipgate.toml"), &original).unwrap();
    with_vault(format!("http://{}", shipgate_testkit::closed_port()));
    let (code, out) = doctor(&repo, &env, &canary);
    assert_eq!(code, 1, "{out}");
    let (failed, fix) = line(&out, "secret SIGNING_KEY");
    assert!(
        failed.starts_with("FAIL") && failed.contains("vault did not answer"),
        "{out}"
    );
    assert!(fix.contains("address and credentials"), "{out}");
}
