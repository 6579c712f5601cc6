//! `shipgate check-env` as a user runs it: a clean environment, real files, exit codes and
//! the exact output (insta snapshots).

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use base64::Engine;

const CANARY: &str = "canary-9f3b1c2d7e-secret";

const WAXWATCH_PROD: &[(&str, &str)] = &[
    ("ENVIRONMENT", "production"),
    (
        "DATABASE_URL",
        "postgresql+psycopg://app:canary-9f3b1c2d7e-secret@db.internal/app",
    ),
    ("AUTH_ISSUER", "https://demo.supabase.co/auth/v1"),
    (
        "AUTH_JWKS_URL",
        "https://demo.supabase.co/auth/v1/.well-known/jwks.json",
    ),
    (
        "TOKEN_CRYPTO_KMS_KEY_ID",
        "arn:aws:kms:us-east-1:123456789012:key/abcd",
    ),
    ("DISCOGS_USER_AGENT", "waxwatch/1.0"),
    ("DISCOGS_TOKEN", CANARY),
    ("EBAY_CLIENT_ID", "ebay-id"),
    ("EBAY_CLIENT_SECRET", CANARY),
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs `shipgate` in the repository root with only the given variables.
fn run(args: &[&str], vars: &[(&str, &str)]) -> (i32, String, String) {
    let output = Command::cargo_bin("shipgate")
        .unwrap()
        .current_dir(root())
        .env_clear()
        .envs(vars.iter().copied())
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        !stdout.contains(CANARY) && !stderr.contains(CANARY),
        "canary leaked:\n{stdout}\n{stderr}"
    );
    assert!(
        !stdout.contains("canary-token") && !stderr.contains("canary-token"),
        "kubeconfig leaked"
    );
    (output.status.code().unwrap(), stdout, stderr)
}

fn temp_file(text: &str) -> tempfile::NamedTempFile {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), text).unwrap();
    file
}

fn with(
    base: &[(&'static str, &'static str)],
    extra: &[(&'static str, &'static str)],
) -> Vec<(&'static str, &'static str)> {
    let mut vars: Vec<_> = base
        .iter()
        .filter(|(k, _)| !extra.iter().any(|(e, _)| e == k))
        .copied()
        .collect();
    vars.extend_from_slice(extra);
    vars
}

/// Runs `shipgate` in `dir` with only the given variables.
fn run_in(dir: &Path, args: &[&str], vars: &[(&str, &str)]) -> (i32, String) {
    let output = Command::cargo_bin("shipgate")
        .unwrap()
        .current_dir(dir)
        .env_clear()
        .envs(vars.iter().copied())
        .args(args)
        .output()
        .unwrap();
    (
        output.status.code().unwrap(),
        String::from_utf8(output.stdout).unwrap() + &String::from_utf8(output.stderr).unwrap(),
    )
}

#[test]
fn no_config_requires_the_names_of_env_sample_like_make_check_prod_env() {
    // The app's .env.sample is the list (the repository root has none: see below).
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        root().join("fixtures/waxwatch/.env.sample"),
        dir.path().join(".env.sample"),
    )
    .unwrap();
    let (code, stdout) = run_in(
        dir.path(),
        &["check-env"],
        &[("ENVIRONMENT", "production"), ("DATABASE_URL", "x")],
    );
    assert_eq!(code, 1);
    insta::assert_snapshot!(stdout);
    let (code, stdout) = run_in(dir.path(), &["check-env"], WAXWATCH_PROD);
    assert_eq!(code, 0, "{stdout}");

    // Another app's sample asks for its own names only: a newcomer is never asked for
    // another topology's variables.
    std::fs::write(
        dir.path().join(".env.sample"),
        "SHOP_DB_URL=\nSTRIPE_KEY=\n",
    )
    .unwrap();
    let (code, stdout) = run_in(
        dir.path(),
        &["check-env"],
        &[("ENVIRONMENT", "production"), ("SHOP_DB_URL", "x")],
    );
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.contains("STRIPE_KEY is not set") && !stdout.contains("DISCOGS_TOKEN"),
        "{stdout}"
    );
    assert!(
        stdout.contains("required set: the names in .env.sample"),
        "{stdout}"
    );

    // Nothing at all: check-env cannot know what the app needs, and fails closed.
    std::fs::remove_file(dir.path().join(".env.sample")).unwrap();
    let (code, stdout) = run_in(dir.path(), &["check-env"], &[("ENVIRONMENT", "production")]);
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.contains("nothing says which variables this app needs")
            && stdout.contains("shipgate init"),
        "{stdout}"
    );
    let (code, stdout) = run_in(dir.path(), &["check-env"], &[("ENVIRONMENT", "dev")]);
    assert_eq!(code, 0, "a warning in development: {stdout}");
}

#[test]
fn waxwatch_production_passes_when_everything_is_injected() {
    let (code, stdout, _) = run(
        &["check-env", "--config", "fixtures/waxwatch/shipgate.toml"],
        WAXWATCH_PROD,
    );
    assert_eq!(code, 0, "{stdout}");
    insta::assert_snapshot!(stdout);
}

#[test]
fn waxwatch_production_fails_on_missing_and_invalid() {
    let vars = with(
        WAXWATCH_PROD,
        &[("AUTH_ISSUER", "not-a-url"), ("EBAY_CLIENT_SECRET", "  ")],
    );
    let vars: Vec<_> = vars
        .into_iter()
        .filter(|(k, _)| *k != "DISCOGS_TOKEN")
        .collect();
    let (code, stdout, _) = run(
        &["check-env", "--config", "fixtures/waxwatch/shipgate.toml"],
        &vars,
    );
    assert_eq!(code, 1);
    insta::assert_snapshot!(stdout);
}

#[test]
fn dev_environments_warn_instead_of_failing() {
    let (code, stdout, _) = run(
        &["check-env", "--config", "fixtures/waxwatch/shipgate.toml"],
        &[
            ("ENVIRONMENT", "dev"),
            ("DATABASE_URL", "postgres://localhost/db"),
        ],
    );
    assert_eq!(code, 0, "{stdout}");
    insta::assert_snapshot!(stdout);
}

#[test]
fn unknown_and_unset_environments_are_production_like() {
    let (code, stdout, _) = run(
        &["check-env", "--required", "A"],
        &[("ENVIRONMENT", "qa-eu"), ("A", "1")],
    );
    assert_eq!(code, 0);
    assert!(
        stdout.contains("qa-eu (not a documented name, treated as production-like)"),
        "{stdout}"
    );
    assert!(stdout.contains("treated as production-like"), "{stdout}");
    let (code, stdout, _) = run(&["check-env", "--required", "A"], &[]);
    assert_eq!(code, 1);
    assert!(
        stdout.contains("(unset) (treated as production-like)"),
        "{stdout}"
    );
    assert!(stdout.contains("no environment is set"), "{stdout}");
}

#[test]
fn prod_required_env_vars_and_required_flag_override_the_default_set() {
    let (code, stdout, _) = run(
        &["check-env"],
        &[
            ("ENVIRONMENT", "prod"),
            ("PROD_REQUIRED_ENV_VARS", "DATABASE_URL AUTH_ISSUER"),
            ("DATABASE_URL", "x"),
        ],
    );
    assert_eq!(code, 1);
    assert!(
        stdout.contains("required set: environment variable PROD_REQUIRED_ENV_VARS"),
        "{stdout}"
    );
    assert!(
        stdout.contains("AUTH_ISSUER is not set") && !stdout.contains("EBAY"),
        "{stdout}"
    );
    let (code, stdout, _) = run(
        &[
            "check-env",
            "--required",
            "DATABASE_URL,X",
            "--required",
            "Y",
        ],
        &[("ENVIRONMENT", "prod"), ("DATABASE_URL", "x")],
    );
    assert_eq!(code, 1);
    assert!(
        stdout.contains("X is not set") && stdout.contains("Y is not set"),
        "{stdout}"
    );
    let (code, _, stderr) = run(&["check-env", "--required", "BAD-NAME"], &[]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("`BAD-NAME` is not a valid variable name"),
        "{stderr}"
    );
}

#[test]
fn conditional_rules_follow_the_enabled_targets_and_gate() {
    let base = [
        ("ENVIRONMENT", "production"),
        ("PROD_REQUIRED_ENV_VARS", ""),
    ];
    let (code, stdout, _) = run(
        &["check-env", "--config", "fixtures/provenance/shipgate.toml"],
        &with(
            &base,
            &[
                ("ENABLE_DEPLOY_SMOKE_GATE", "true"),
                ("ENABLE_HELM_DEPLOY", "true"),
                ("ENABLE_RAILWAY_DEPLOY", "true"),
            ],
        ),
    );
    assert_eq!(code, 1);
    insta::assert_snapshot!(stdout);
    // With everything off, nothing is required.
    let (code, stdout, _) = run(
        &["check-env", "--config", "fixtures/provenance/shipgate.toml"],
        &base,
    );
    assert_eq!(code, 0, "{stdout}");
}

#[test]
fn typed_checks_kubeconfig_ed25519_image_tag() {
    let kubeconfig = "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://k8s.example.com\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\nusers:\n- name: u\n  user:\n    token: canary-token\ncurrent-context: c\n";
    let b64 = base64::engine::general_purpose::STANDARD;
    let good_kube = b64.encode(kubeconfig);
    let bad_kube = b64.encode(kubeconfig.replace("current-context: c", "current-context: missing"));
    let config = temp_file(
        "[env.vars.SIGNING_KEY]\nkind = \"ed25519-key\"\n[env.vars.PORT]\nkind = \"port\"\n[targets.helm]\nenabled = true\n[env]\nrequired = []\n",
    );
    let path = config.path().to_str().unwrap().to_owned();
    let good_key = b64.encode([5u8; 32]);
    let vars = [
        ("ENVIRONMENT", "production"),
        ("KUBE_CONFIG_DATA", good_kube.as_str()),
        ("SIGNING_KEY", good_key.as_str()),
        ("PORT", "8080"),
        ("image_tag", "3f2c1a9"),
    ];
    let (code, stdout, _) = run(&["check-env", "--config", &path], &vars);
    assert_eq!(code, 0, "{stdout}");
    let bad_key = b64.encode([5u8; 16]);
    let vars = [
        ("ENVIRONMENT", "production"),
        ("KUBE_CONFIG_DATA", bad_kube.as_str()),
        ("SIGNING_KEY", bad_key.as_str()),
        ("PORT", "http"),
        ("image_tag", "latest"),
    ];
    let (code, stdout, _) = run(&["check-env", "--config", &path, "--format", "json"], &vars);
    assert_eq!(code, 1);
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let messages: Vec<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["message"].as_str().unwrap())
        .collect();
    insta::assert_debug_snapshot!(messages);
    // The same tag is fine in a development environment.
    let vars = [("ENVIRONMENT", "dev"), ("image_tag", "latest")];
    let (code, stdout, _) = run(&["check-env", "--required", "image_tag"], &vars);
    assert_eq!(code, 0, "{stdout}");
}

#[test]
fn both_railway_tokens_are_a_conflict() {
    let (code, stdout, _) = run(
        &["check-env", "--required", "X"],
        &[
            ("ENVIRONMENT", "dev"),
            ("X", "1"),
            ("RAILWAY_TOKEN", CANARY),
            ("RAILWAY_API_TOKEN", CANARY),
        ],
    );
    assert_eq!(code, 1);
    assert!(
        stdout.contains("RAILWAY_TOKEN and RAILWAY_API_TOKEN are both set"),
        "{stdout}"
    );
}

#[test]
fn env_files_are_for_development_only() {
    let env_file = temp_file(&format!("A={CANARY}\n"));
    let path = env_file.path().to_str().unwrap().to_owned();
    let (code, stdout, _) = run(
        &["check-env", "--required", "A", "--env-file", &path],
        &[("ENVIRONMENT", "dev")],
    );
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("1 ok"), "{stdout}");
    let (code, stdout, stderr) = run(
        &["check-env", "--required", "A", "--env-file", &path],
        &[("ENVIRONMENT", "production")],
    );
    assert_eq!(code, 2);
    assert!(stdout.is_empty());
    assert!(
        stderr.contains("refusing env file") && stderr.contains("injected at run time"),
        "{stderr}"
    );
}

#[test]
fn env_sample_drift_and_real_looking_secrets() {
    let sample = temp_file(
        "DATABASE_URL=postgres://u:p@localhost/db\nAUTH_ISSUER=https://<project>.supabase.co\nGITHUB_TOKEN=ghp_abcdefghijklmnopqrstuvwxyz0123456789\n",
    );
    let path = sample.path().to_str().unwrap().to_owned();
    let (code, stdout, _) = run(
        &[
            "check-env",
            "--required",
            "DATABASE_URL,AUTH_ISSUER,EBAY_CLIENT_SECRET",
            "--env-sample",
            &path,
            "--format",
            "json",
        ],
        &[("ENVIRONMENT", "dev")],
    );
    assert_eq!(code, 1);
    assert!(!stdout.contains("ghp_"), "{stdout}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let codes: Vec<(&str, &str)> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["severity"] == "error")
        .map(|f| (f["variable"].as_str().unwrap(), f["code"].as_str().unwrap()))
        .collect();
    assert_eq!(
        codes,
        [
            ("EBAY_CLIENT_SECRET", "sample-missing"),
            ("GITHUB_TOKEN", "sample-secret")
        ]
    );
    // The waxwatch fixture's own sample is in sync.
    let (code, stdout, _) = run(
        &["check-env", "--config", "fixtures/waxwatch/shipgate.toml"],
        WAXWATCH_PROD,
    );
    assert_eq!(code, 0, "{stdout}");
}

#[test]
fn json_report_is_stable() {
    let (code, stdout, _) = run(
        &[
            "check-env",
            "--required",
            "DATABASE_URL,AUTH_ISSUER",
            "--format",
            "json",
        ],
        &[("DEPLOY_ENVIRONMENT", "staging"), ("DATABASE_URL", CANARY)],
    );
    assert_eq!(code, 1);
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    insta::assert_json_snapshot!(report);
}

#[test]
fn bad_configuration_is_a_usage_error_that_names_file_key_and_line() {
    let config = temp_file("app = \"demo\"\n\n[smoke]\nenabeld = true\n");
    let path = config.path().to_str().unwrap().to_owned();
    let (code, stdout, stderr) = run(&["check-env", "--config", &path], &[]);
    assert_eq!(code, 2);
    assert!(stdout.is_empty());
    assert!(
        stderr.contains(&format!(
            "{path}:4: `smoke.enabeld`: unknown key `enabeld` (fix: did you mean `enabled`?)"
        )),
        "{stderr}"
    );
    let config = temp_file("[smoke\n");
    let path = config.path().to_str().unwrap().to_owned();
    let (code, _, stderr) = run(&["check-env", "--config", &path], &[]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains(&format!("{path}:1: TOML syntax error")),
        "{stderr}"
    );
    let (code, _, stderr) = run(&["check-env", "--config", "/nonexistent.toml"], &[]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("cannot read configuration file /nonexistent.toml"),
        "{stderr}"
    );
    let (code, _, stderr) = run(&["check-env"], &[("ENABLE_HELM_DEPLOY", "maybe")]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("environment variable ENABLE_HELM_DEPLOY: `targets.helm.enabled`"),
        "{stderr}"
    );
}

#[test]
fn usage_errors_and_help() {
    let (code, _, stderr) = run(&["check-env", "--format", "xml"], &[]);
    assert_eq!(code, 2);
    assert!(stderr.contains("invalid value 'xml'"), "{stderr}");
    let (code, stdout, _) = run(&["check-env", "--help"], &[]);
    assert_eq!(code, 0);
    insta::assert_snapshot!(stdout);
    // `shipgate` alone shows the help but is a usage error: a CI step must not pass doing
    // nothing.
    let (code, _, stderr) = run(&[], &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("Usage: shipgate <COMMAND>"), "{stderr}");
}

#[test]
fn proofkit_fly_fixture_requires_the_fly_token_only() {
    let args = ["check-env", "--config", "fixtures/proofkit/shipgate.toml"];
    let (code, stdout, _) = run(&args, &[("ENVIRONMENT", "production")]);
    assert_eq!(code, 1);
    insta::assert_snapshot!(stdout);
    let (code, _, _) = run(
        &args,
        &[("ENVIRONMENT", "production"), ("FLY_API_TOKEN", CANARY)],
    );
    assert_eq!(code, 0);
}

#[test]
fn railway_auto_fixture_requires_railway_ids_gate_url_and_github_token() {
    let args = [
        "check-env",
        "--config",
        "fixtures/railway-auto/shipgate.toml",
    ];
    let (code, stdout, _) = run(&args, &[("ENVIRONMENT", "production")]);
    assert_eq!(code, 1);
    insta::assert_snapshot!(stdout);
    let (code, _, _) = run(
        &args,
        &[
            ("ENVIRONMENT", "production"),
            ("RAILWAY_TOKEN", CANARY),
            ("RAILWAY_PROJECT_ID", "5f9c8a52-0000-4000-8000-000000000001"),
            ("RAILWAY_ENVIRONMENT", "production"),
            ("GITHUB_TOKEN", CANARY),
            ("PRODUCTION_API_URL", "https://backend.up.railway.app"),
        ],
    );
    assert_eq!(code, 0);
}

/// A required set that was given but names nothing checks nothing: it fails in
/// production-like environments (naming where the set came from) and warns in dev-like ones.
#[test]
fn an_empty_required_set_fails_closed() {
    let (code, stdout, _) = run(
        &["check-env", "--required", ""],
        &[("ENVIRONMENT", "production")],
    );
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.contains("the required set (--required) names no variable"),
        "{stdout}"
    );
    let (code, stdout, _) = run(
        &["check-env"],
        &[
            ("ENVIRONMENT", "production"),
            ("PROD_REQUIRED_ENV_VARS", " , "),
        ],
    );
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.contains("names no variable") && stdout.contains("PROD_REQUIRED_ENV_VARS"),
        "{stdout}"
    );
    let (code, stdout, _) = run(&["check-env", "--required", ""], &[("ENVIRONMENT", "dev")]);
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("names no variable"), "{stdout}");
}

/// An `image-ref` variable is pinned in production like the deploy's own tag: `latest` fails
/// (naming the rule), a commit SHA passes; dev-like environments allow it.
#[test]
fn a_mutable_image_reference_fails_in_production() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("shipgate.toml");
    std::fs::write(
        &config,
        "[env]\nrequired = [\"WORKER_IMAGE\"]\n[env.vars.WORKER_IMAGE]\nkind = \"image-ref\"\n",
    )
    .unwrap();
    let config = config.display().to_string();
    let args = ["check-env", "--config", config.as_str()];
    let (code, stdout, _) = run(
        &args,
        &[
            ("ENVIRONMENT", "production"),
            ("WORKER_IMAGE", "ghcr.io/acme/worker:latest"),
        ],
    );
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.contains("WORKER_IMAGE is not pinned: its tag `latest` moves between builds"),
        "{stdout}"
    );
    let (code, stdout, _) = run(
        &args,
        &[
            ("ENVIRONMENT", "production"),
            ("WORKER_IMAGE", "ghcr.io/acme/worker:3f2c1a9"),
        ],
    );
    assert_eq!(code, 0, "{stdout}");
    let (code, stdout, _) = run(
        &args,
        &[
            ("ENVIRONMENT", "dev"),
            ("WORKER_IMAGE", "ghcr.io/acme/worker:latest"),
        ],
    );
    assert_eq!(code, 0, "{stdout}");
}

/// A variable set to bytes that are not UTF-8 is reported as set but not text (failing in
/// production), never as "not set", and its bytes never reach the output.
#[test]
fn a_value_that_is_not_utf8_is_set_but_invalid() {
    use std::os::unix::ffi::OsStrExt;
    let output = Command::cargo_bin("shipgate")
        .unwrap()
        .current_dir(root())
        .env_clear()
        .env("ENVIRONMENT", "production")
        .env(
            "DATABASE_URL",
            std::ffi::OsStr::from_bytes(b"postgres://app:\xff\xfe@db/app"),
        )
        .args(["check-env", "--required", "DATABASE_URL"])
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("DATABASE_URL is set, but its value is not UTF-8 text")
            && !stdout.contains("is not set"),
        "{stdout}"
    );
    assert!(!stdout.contains("postgres://"), "{stdout}");
}
