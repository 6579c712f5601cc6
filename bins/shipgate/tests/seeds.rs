//! Each seed's deploy flow, from its fixture config (`fixtures/`), through `shipgate deploy`
//! against the platform fakes: only URLs, tokens and IDs are supplied the way CI would
//! (seed variables and `SHIPGATE_*` overrides); the fixture files are used unchanged.

#![allow(clippy::unwrap_used)]

use std::path::Path;

use assert_cmd::Command;
use shipgate_testkit::Canary;
use shipgate_testkit::fakes::FakeGithub;
use shipgate_testkit::fly::FakeFly;
use shipgate_testkit::railway::{FakeRailway, FakeToken};

const SHA: &str = "3f2c1a9e0b7d4c5a6f8e9d0c1b2a3f4e5d6c7b8a";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../../fixtures/{name}/shipgate.toml"))
}

/// Every path answers 200: the production site the smoke gate checks.
fn site(rt: &tokio::runtime::Runtime) -> std::net::SocketAddr {
    let app = axum::Router::new().fallback(|| async { "ok" });
    rt.block_on(shipgate_testkit::serve(app))
}

fn deploy(config: &Path, env: &[(&str, String)], canary: &Canary) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::cargo_bin("shipgate")
        .unwrap()
        .current_dir(dir.path())
        .env_clear()
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env(
            "SHIPGATE_LEDGER__URL",
            format!("sqlite://{}", dir.path().join("ledger.db").display()),
        )
        .args(["deploy", "--summary"])
        .arg(dir.path().join("summary.json"))
        .arg("--config")
        .arg(config)
        .output()
        .unwrap();
    let out = format!(
        "{}{}",
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap()
    );
    canary.assert_absent("output", &out);
    canary.assert_absent(
        "summary",
        &std::fs::read_to_string(dir.path().join("summary.json")).unwrap_or_default(),
    );
    (output.status.code().unwrap(), out)
}

#[test]
fn seed_004_railway_auto_deploy_gates_on_ci_deploys_smokes_and_comments() {
    let canary = Canary::new("railway");
    let rt = runtime();
    let railway = FakeRailway::new(FakeToken::Account(canary.value().to_owned()));
    let railway_url = rt.block_on(railway.clone().start());
    let github = FakeGithub::new("acme/shop", "ghs_token");
    for name in [
        "Code Quality Checks",
        "Security Scan",
        "Run Tests (shards 1-4)",
        "Coverage Report",
        "Build Verification",
    ] {
        github.check(name, "success", 1);
    }
    github.repo.lock().unwrap().pulls.push((SHA.into(), 7));
    let github_url = rt.block_on(github.clone().start());
    let site = site(&rt);
    let env = [
        ("IMAGE_TAG", SHA.to_owned()),
        ("GITHUB_SHA", SHA.to_owned()),
        ("GITHUB_REPOSITORY", "acme/shop".to_owned()),
        ("GITHUB_API_URL", github_url),
        ("GITHUB_TOKEN", "ghs_token".to_owned()),
        ("RAILWAY_API_TOKEN", canary.value().to_owned()),
        ("RAILWAY_PROJECT_ID", "proj-shop".to_owned()),
        ("RAILWAY_ENVIRONMENT", "production".to_owned()),
        (
            "SHIPGATE_TARGETS__RAILWAY__SERVICES__BACKEND",
            "api".to_owned(),
        ),
        ("SHIPGATE_TARGETS__RAILWAY__API_URL", railway_url),
        (
            "SHIPGATE_TARGETS__RAILWAY__POLL_INTERVAL",
            "100ms".to_owned(),
        ),
        ("SHIPGATE_SMOKE__ALLOW_INSECURE", "true".to_owned()),
        ("PRODUCTION_API_URL", format!("http://{site}")),
    ];
    let (code, out) = deploy(&fixture("railway-auto"), &env, &canary);
    assert_eq!(code, 0, "{out}");
    let gate = out
        .lines()
        .find(|l| l.trim_start().starts_with("ci-gate"))
        .unwrap_or_default();
    assert!(
        gate.contains(" ok "),
        "the CI gate ran first and passed: {out}"
    );
    assert_eq!(
        railway.live_image("env-prod", "svc-api").unwrap(),
        format!("backend-backend:{SHA}")
    );
    assert_eq!(railway.violations(), Vec::<String>::new());
    let repo = github.repo.lock().unwrap();
    assert_eq!(repo.comments.len(), 1, "seed 004's PR comment");
    assert_eq!(repo.comments[0].0, 7);
}

#[test]
fn seed_003_proofkit_deploys_to_fly_and_runs_the_live_smoke_suite() {
    let canary = Canary::new("fly");
    let token = format!("FlyV1 fm2_{}", canary.value());
    let rt = runtime();
    let fly = FakeFly::new("proofkit-prod", &token);
    fly.machines(
        "app",
        2,
        "registry.fly.io/proofkit-prod/proofkit-prod:0000000",
    );
    let fly_url = rt.block_on(fly.clone().start());
    let site = site(&rt);
    let env = [
        ("IMAGE_TAG", SHA.to_owned()),
        ("FLY_API_TOKEN", token.clone()),
        ("SHIPGATE_TARGETS__FLY__API_URL", fly_url),
        ("SHIPGATE_SMOKE__BASE_URL", format!("http://{site}")),
        ("SHIPGATE_SMOKE__ALLOW_INSECURE", "true".to_owned()),
    ];
    let (code, out) = deploy(&fixture("proofkit"), &env, &canary);
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        fly.images("app"),
        vec![format!("registry.fly.io/proofkit-prod/proofkit-prod:{SHA}"); 2]
    );
    assert_eq!(fly.violations(), Vec::<String>::new());
    assert_eq!(fly.leases_held(), 0);
}
