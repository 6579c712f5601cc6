//! `shipgate doctor` on what `shipgate init` wrote for the repositories of `fixtures/init/`,
//! against the platform fakes, a real registry and real HTTP servers: all good, then each
//! wrong case (expired token, project token for another environment, registry without the
//! tag, smoke target down, GitHub token refused) fails its line with the fix, exit 1.

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

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A copy of `fixtures/init/NAME` after `shipgate init --force`.
fn initialised(name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join(name);
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../../fixtures/init/{name}")),
        &repo,
    );
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

/// The line of check `name`, and the fix line after it when there is one.
fn line<'a>(out: &'a str, name: &str) -> (&'a str, &'a str) {
    let lines: Vec<&str> = out.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.get(5..).is_some_and(|rest| rest.starts_with(name)))
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
    assert!(line(&out, "target fly").0.contains("runs app"), "{out}");
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
    let (failed, fix) = line(&out, "target");
    assert!(failed.starts_with("FAIL"), "{out}");
    assert!(fix.contains("token"), "{out}");

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

    // Read-only: no lease, update or stop was sent, and the machines run what they ran.
    let writes: Vec<_> = fly
        .calls()
        .into_iter()
        .skip(before)
        .filter(|(method, _, _)| method != "GET")
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
    assert!(line(&out, "target railway").0.starts_with("ok "), "{out}");
    assert!(
        line(&out, "registry")
            .0
            .contains("Railway builds the commit"),
        "{out}"
    );
    assert!(
        line(&out, "github").0.starts_with("ok ") && out.contains("reads check runs of acme/web"),
        "{out}"
    );
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

    // A GitHub token the repository refuses.
    let (_, url) = serve(FakeToken::Account(canary.value().to_owned()));
    let env = with(
        &base(&url, canary.value()),
        "GITHUB_TOKEN",
        "ghs_revoked".to_owned(),
    );
    let (code, out) = doctor(&repo, &env, &canary);
    assert_eq!(code, 1, "{out}");
    let (failed, fix) = line(&out, "github");
    assert!(failed.starts_with("FAIL"), "{out}");
    assert!(fix.contains("checks: read"), "{out}");
}
