//! Each seed's deploy flow, from its fixture config (`fixtures/`), through `shipgate deploy`
//! against the platform fakes: only URLs, tokens and IDs are supplied the way CI would
//! (seed variables and `SHIPGATE_*` overrides); the fixture files are used unchanged, except
//! seed 002's, which gets the local target and migration this machine runs instead of the
//! seed's compose host.

#![allow(clippy::unwrap_used)]

use std::path::Path;

use assert_cmd::Command;
use shipgate_testkit::fakes::FakeGithub;
use shipgate_testkit::fly::FakeFly;
use shipgate_testkit::railway::{FakeRailway, FakeToken};
use shipgate_testkit::{Canary, runtime};

const SHA: &str = "3f2c1a9e0b7d4c5a6f8e9d0c1b2a3f4e5d6c7b8a";

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../../fixtures/{name}/shipgate.toml"))
}

/// Every path answers 200: the production site the smoke gate checks.
fn site(rt: &tokio::runtime::Runtime) -> std::net::SocketAddr {
    let app = axum::Router::new().fallback(|| async { "ok" });
    rt.block_on(shipgate_testkit::serve(app))
}

/// `shipgate deploy` in `dir` (its working directory, ledger and summary) with only `env`;
/// the canary must reach neither the output nor the summary.
fn deploy(dir: &Path, config: &Path, env: &[(&str, String)], canary: &Canary) -> (i32, String) {
    let output = Command::cargo_bin("shipgate")
        .unwrap()
        .current_dir(dir)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env(
            "SHIPGATE_LEDGER__URL",
            format!("sqlite://{}", dir.join("ledger.db").display()),
        )
        .args(["deploy", "--summary"])
        .arg(dir.join("summary.json"))
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
        &std::fs::read_to_string(dir.join("summary.json")).unwrap_or_default(),
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
        ("SHIPGATE_TARGETS__RAILWAY__STABLE_FOR", "300ms".to_owned()),
        ("SHIPGATE_SMOKE__ALLOW_INSECURE", "true".to_owned()),
        ("PRODUCTION_API_URL", format!("http://{site}")),
    ];
    let (code, out) = deploy(
        tempfile::tempdir().unwrap().path(),
        &fixture("railway-auto"),
        &env,
        &canary,
    );
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
    let (code, out) = deploy(
        tempfile::tempdir().unwrap().path(),
        &fixture("proofkit"),
        &env,
        &canary,
    );
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        fly.images("app"),
        vec![format!("registry.fly.io/proofkit-prod/proofkit-prod:{SHA}"); 2]
    );
    assert_eq!(fly.violations(), Vec::<String>::new());
    assert_eq!(fly.leases_held(), 0);
}

#[test]
fn seed_000_provenance_deploys_pinned_images_to_helm_and_railway_both() {
    use base64::Engine;
    let canary = Canary::new("railway");
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    // The chart the fixture names, relative to the job's checkout.
    let chart = dir.path().join("deploy/helm/provenance-stack");
    std::fs::create_dir_all(&chart).unwrap();
    std::fs::write(
        chart.join("values.yaml"),
        "api:\n  image:\n    tag: \"0\"\nworker:\n  image:\n    tag: \"0\"\n",
    )
    .unwrap();
    let helm_state = dir.path().join("helm");
    let fake_helm = shipgate_testkit::fake_helm(&helm_state, "v3.19.0");
    std::fs::write(helm_state.join("stateful"), "").unwrap();
    let kube = rt.block_on(shipgate_testkit::fakes::FakeKube::new("kube-token").start());
    let kubeconfig = base64::engine::general_purpose::STANDARD.encode(
        shipgate_testkit::fakes::FakeKube::kubeconfig(kube, "kube-token"),
    );
    let railway = FakeRailway::new(FakeToken::Account(canary.value().to_owned()));
    let railway_url = rt.block_on(railway.clone().start());
    let site = site(&rt);
    let env = [
        ("image_tag", SHA.to_owned()),
        ("runtime_target", "both".to_owned()),
        ("DEPLOY_ENVIRONMENT", "production".to_owned()),
        ("ENABLE_DEPLOY_SMOKE_GATE", "true".to_owned()),
        ("ENABLE_AUTO_ROLLBACK", "true".to_owned()),
        ("PRODUCTION_API_URL", format!("http://{site}")),
        ("SHIPGATE_SMOKE__ALLOW_INSECURE", "true".to_owned()),
        ("HELM_BIN", fake_helm.display().to_string()),
        ("FAKE_HELM_DIR", helm_state.display().to_string()),
        ("KUBE_CONFIG_DATA", kubeconfig),
        ("RAILWAY_API_TOKEN", canary.value().to_owned()),
        ("RAILWAY_PROJECT", "shop".to_owned()),
        ("RAILWAY_WORKSPACE", "Acme".to_owned()),
        ("RAILWAY_ENVIRONMENT", "production".to_owned()),
        ("RAILWAY_API_SERVICE", "api".to_owned()),
        ("RAILWAY_WORKER_SERVICE", "worker".to_owned()),
        ("SHIPGATE_TARGETS__RAILWAY__API_URL", railway_url),
        (
            "SHIPGATE_TARGETS__RAILWAY__POLL_INTERVAL",
            "100ms".to_owned(),
        ),
        ("SHIPGATE_TARGETS__RAILWAY__STABLE_FOR", "300ms".to_owned()),
        ("SHIPGATE_ROLLBACK__VERIFY_IMAGE", "false".to_owned()),
    ];
    let (code, out) = deploy(dir.path(), &fixture("provenance"), &env, &canary);
    assert_eq!(code, 0, "{out}");
    for service in ["api", "worker"] {
        assert_eq!(
            railway
                .live_image("env-prod", &format!("svc-{service}"))
                .unwrap(),
            format!("ghcr.io/acme/provenance-{service}:{SHA}")
        );
    }
    let argv = std::fs::read_to_string(helm_state.join("argv.log")).unwrap();
    let upgrade = argv.lines().find(|l| l.starts_with("upgrade")).unwrap();
    assert!(
        upgrade.contains(&format!(
            "--set-string api.image.tag={SHA} --set-string worker.image.tag={SHA}"
        )),
        "{upgrade}"
    );
    assert_eq!(railway.violations(), Vec::<String>::new());
}

#[test]
fn seed_002_waxwatch_checks_env_migrates_then_brings_the_release_up() {
    let dir = tempfile::tempdir().unwrap();
    let port = shipgate_testkit::closed_port().port();
    // The fixture as is, plus what this machine runs instead of seed 002's compose host: the
    // release as a local process, and the migration as a command that reads DATABASE_URL.
    let mut config = std::fs::read_to_string(fixture("waxwatch")).unwrap();
    config.push_str(&format!(
        "\n[services.api]\nimage = \"waxwatch/api\"\n\
         [targets.local]\nenabled = true\nstate_dir = \"{state}\"\ntimeout = \"20s\"\n\
         [targets.local.services.api]\ncommand = [\"{{shipgate}}\", \"demo-service\", \"--port\", \"{{port}}\", \"--version\", \"{{tag}}\"]\nport = {port}\nhealth_path = \"/healthz\"\n\
         [migrate]\ncommand = [\"sh\", \"-c\", \"test -n \\\"$DATABASE_URL\\\" && echo migrated > {marker}\"]\nsecrets = [\"DATABASE_URL\"]\n\
         [smoke]\nenabled = true\nbase_url = \"http://127.0.0.1:{port}\"\nallow_insecure = true\n",
        state = dir.path().join("local").display(),
        marker = dir.path().join("migrated").display(),
    ));
    let config_path = dir.path().join("shipgate.toml");
    std::fs::write(&config_path, config).unwrap();
    std::fs::write(dir.path().join(".env.sample"), "DATABASE_URL=\nAUTH_ISSUER=\nAUTH_JWKS_URL=\nTOKEN_CRYPTO_KMS_KEY_ID=\nDISCOGS_USER_AGENT=\nDISCOGS_TOKEN=\nEBAY_CLIENT_ID=\nEBAY_CLIENT_SECRET=\n").unwrap();
    let password = Canary::new("db-password");
    let env: Vec<(&str, String)> = vec![
        ("ENVIRONMENT", "staging".into()),
        (
            "DATABASE_URL",
            format!(
                "postgresql+psycopg://app:{}@db:5432/waxwatch",
                password.value()
            ),
        ),
        ("AUTH_ISSUER", "https://auth.example.com/".into()),
        (
            "AUTH_JWKS_URL",
            "https://auth.example.com/.well-known/jwks.json".into(),
        ),
        (
            "TOKEN_CRYPTO_KMS_KEY_ID",
            "arn:aws:kms:eu-west-1:123456789012:key/1".into(),
        ),
        ("DISCOGS_USER_AGENT", "waxwatch/1.0".into()),
        ("DISCOGS_TOKEN", "discogs-token-value".into()),
        ("EBAY_CLIENT_ID", "ebay-client".into()),
        ("EBAY_CLIENT_SECRET", "ebay-secret-value".into()),
        (
            "SHIPGATE_LEDGER__URL",
            format!("sqlite://{}", dir.path().join("ledger.db").display()),
        ),
    ];
    let run_with = |args: &[&str], extra: &[(&str, &str)]| {
        let output = Command::cargo_bin("shipgate")
            .unwrap()
            .current_dir(dir.path())
            .env_clear()
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .envs(extra.iter().copied())
            .args(args)
            .arg("--config")
            .arg(&config_path)
            .output()
            .unwrap();
        let out = format!(
            "{}{}",
            String::from_utf8(output.stdout).unwrap(),
            String::from_utf8(output.stderr).unwrap()
        );
        password.assert_absent("output", &out);
        (output.status.code().unwrap(), out)
    };
    let run = |args: &[&str]| run_with(args, &[]);
    // deploy runs check-env first: a malformed variable stops it before the migration.
    let (code, out) = run_with(
        &["deploy", "--image-tag", "v0"],
        &[("AUTH_ISSUER", "not a url")],
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("check-env failed: AUTH_ISSUER"), "{out}");
    assert!(
        !dir.path().join("migrated").exists(),
        "the migration did not run"
    );
    // make check-prod-env
    let (code, out) = run(&["check-env"]);
    assert_eq!(code, 0, "{out}");
    // migrate-prod → prod-up → smoke
    let (code, out) = run(&["deploy", "--image-tag", "v1"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("migrated"))
            .unwrap()
            .trim(),
        "migrated"
    );
    let (code, _) = run(&["local", "stop"]);
    assert_eq!(code, 0);
}
