//! The canary test: a unique value planted in every secret source (environment, directory,
//! dotenv in development, Kubernetes, Vault, AWS Secrets Manager on moto) must appear in no
//! output of `check-env` or `secrets check` — stdout, stderr with TRACE logs, JSON reports —
//! on the passing paths and the error paths (wrong type, source down, upstream errors that
//! echo a credential, a dotenv in production).

#![allow(clippy::unwrap_used)]

use std::path::Path;

use assert_cmd::Command;
use serde_json::json;
use shipgate_testkit::fakes::{FakeKube, FakeVault};
use shipgate_testkit::{Canary, moto_url};

struct World {
    _runtime: tokio::runtime::Runtime,
    dir: tempfile::TempDir,
    canaries: Vec<Canary>,
    vars: Vec<(String, String)>,
    vault: std::net::SocketAddr,
    echoing_vault: std::net::SocketAddr,
    /// The AWS secret's name, unique per run (moto keeps state between runs).
    aws_secret_id: String,
}

/// Every source, each holding its own canary, plus canary credentials.
fn world() -> World {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let c = |label: &str| Canary::new(label);
    let (env, dir_c, dotenv, k8s, k8s_token, vault_c, vault_token, aws, aws_key) = (
        c("env"),
        c("dir"),
        c("dotenv"),
        c("k8s"),
        c("k8s-token"),
        c("vault"),
        c("vault-token"),
        c("aws"),
        c("aws-key"),
    );

    let vault = FakeVault::new(vault_token.value());
    vault.put(
        "secret",
        "app/prod",
        json!({ "VAULT_SECRET": vault_c.value() }),
    );
    let mut echoing = FakeVault::new("another-token");
    echoing.echo_token = true;
    let kube = FakeKube::new(k8s_token.value());
    kube.put("app", "app-secrets", &[("K8S_SECRET", k8s.value())], &[]);
    let (vault_addr, echoing_addr, kube_addr) = runtime.block_on(async {
        (
            vault.start().await,
            echoing.start().await,
            kube.start().await,
        )
    });

    let aws_secret_id = format!("shipgate/{}", Canary::new("id").value());
    let aws_json = json!({ "AWS_SECRET": aws.value() }).to_string();
    runtime.block_on(shipgate_testkit::moto_create_secret(
        &aws_secret_id,
        "SecretString",
        &aws_json,
    ));

    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("run")).unwrap();
    std::fs::write(
        dir.path().join("run/DIR_SECRET"),
        format!("{}\n", dir_c.value()),
    )
    .unwrap();
    std::fs::write(
        dir.path().join(".env.dev"),
        format!("DOTENV_SECRET={}\n", dotenv.value()),
    )
    .unwrap();

    let vars = vec![
        ("ENV_SECRET".to_owned(), env.value().to_owned()),
        ("VAULT_TOKEN".to_owned(), vault_token.value().to_owned()),
        (
            "KUBE_CONFIG_DATA".to_owned(),
            FakeKube::kubeconfig(kube_addr, k8s_token.value()),
        ),
        ("AWS_ACCESS_KEY_ID".to_owned(), "testing".to_owned()),
        (
            "AWS_SECRET_ACCESS_KEY".to_owned(),
            aws_key.value().to_owned(),
        ),
        ("AWS_REGION".to_owned(), "us-east-1".to_owned()),
        ("SHIPGATE_LOG".to_owned(), "trace".to_owned()),
    ];
    World {
        _runtime: runtime,
        dir,
        canaries: vec![
            env,
            dir_c,
            dotenv,
            k8s,
            k8s_token,
            vault_c,
            vault_token,
            aws,
            aws_key,
        ],
        vars,
        vault: vault_addr,
        echoing_vault: echoing_addr,
        aws_secret_id,
    }
}

impl World {
    /// Writes shipgate.toml with every source; `vault` picks the Vault to use.
    fn config(
        &self,
        environment: &str,
        vault: std::net::SocketAddr,
        extra: &str,
    ) -> std::path::PathBuf {
        let dotenv = if environment == "dev" {
            "[[secrets.sources]]\nkind = \"dotenv\"\npath = \".env.dev\"\n"
        } else {
            ""
        };
        let text = format!(
            r#"app = "canary"
environment = "{environment}"

[env]
required = ["ENV_SECRET", "DIR_SECRET", "K8S_SECRET", "VAULT_SECRET", "AWS_SECRET"{dotenv_key}]

[env.vars.VAULT_SECRET]
kind = "url"

[[secrets.sources]]
kind = "env"

[[secrets.sources]]
kind = "dir"
path = "run"

{dotenv}
[[secrets.sources]]
kind = "kubernetes"
namespace = "app"
secret = "app-secrets"

[[secrets.sources]]
kind = "vault"
address = "http://{vault}"
path = "app/prod"

[[secrets.sources]]
kind = "aws-secrets-manager"
secret_id = "{aws_secret_id}"
endpoint = "{moto}"
{extra}"#,
            dotenv_key = if environment == "dev" {
                ", \"DOTENV_SECRET\""
            } else {
                ""
            },
            moto = moto_url(),
            aws_secret_id = self.aws_secret_id,
        );
        let path = self.dir.path().join("shipgate.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Runs shipgate and checks every canary against stdout and stderr (TRACE logs included).
    fn run(&self, config: &Path, args: &[&str]) -> (i32, String, String) {
        let output = Command::cargo_bin("shipgate")
            .unwrap()
            .current_dir(self.dir.path())
            .env_clear()
            .envs(self.vars.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .args(args)
            .arg("--config")
            .arg(config)
            .output()
            .unwrap();
        let stdout = String::from_utf8(output.stdout).unwrap();
        let stderr = String::from_utf8(output.stderr).unwrap();
        for canary in &self.canaries {
            canary.assert_absent(&format!("stdout of {args:?}"), &stdout);
            canary.assert_absent(&format!("stderr of {args:?}"), &stderr);
        }
        (output.status.code().unwrap(), stdout, stderr)
    }
}

#[test]
fn no_canary_reaches_any_output_of_check_env_or_secrets_check() {
    let world = world();

    // Production: every source answers; VAULT_SECRET is not a URL (a wrong-type error path).
    let config = world.config("production", world.vault, "");
    let (code, stdout, stderr) = world.run(&config, &["check-env"]);
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(stdout.contains("1 error"), "{stdout}");
    assert!(
        stdout.contains("VAULT_SECRET is not an absolute URL"),
        "{stdout}"
    );
    assert!(
        stderr.contains("looking up secret"),
        "TRACE logs are on: {stderr}"
    );
    let (code, json_out, _) = world.run(&config, &["check-env", "--format", "json"]);
    assert_eq!(code, 1);
    let report: serde_json::Value = serde_json::from_str(&json_out).unwrap();
    let sources: Vec<&str> = report["variables"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v["source"].as_str())
        .collect();
    for expected in [
        "process environment",
        "secret source dir",
        "secret source kubernetes",
        "secret source vault",
        "secret source aws",
    ] {
        assert!(sources.contains(&expected), "{expected} in {sources:?}");
    }

    let (code, stdout, _) = world.run(&config, &["secrets", "check"]);
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("5/5 keys resolve"), "{stdout}");
    let (_, json_out, _) = world.run(&config, &["secrets", "check", "--format", "json"]);
    let report: serde_json::Value = serde_json::from_str(&json_out).unwrap();
    assert!(
        report["keys"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["fingerprint"].as_str().is_some_and(|f| f.len() == 8))
    );

    // Development: the dotenv source is allowed.
    let dev = world.config("dev", world.vault, "");
    let (code, stdout, _) = world.run(&dev, &["secrets", "check"]);
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("6/6 keys resolve"), "{stdout}");

    // A dotenv source in production is a usage error.
    let dotenv_in_prod = world.config(
        "production",
        world.vault,
        "\n[[secrets.sources]]\nkind = \"dotenv\"\npath = \".env.dev\"\n",
    );
    let (code, _, stderr) = world.run(&dotenv_in_prod, &["check-env"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("refusing dotenv file"), "{stderr}");

    // Vault down, and a Vault that echoes the (canary) token in its error body.
    for vault in [shipgate_testkit::closed_port(), world.echoing_vault] {
        let config = world.config("production", vault, "");
        let (code, stdout, _) = world.run(&config, &["check-env"]);
        assert_eq!(code, 1);
        assert!(
            stdout.contains("could not be read from secret source vault"),
            "{stdout}"
        );
        let (code, stdout, _) = world.run(&config, &["secrets", "check"]);
        assert_eq!(code, 1);
        assert!(stdout.contains("source-failed"), "{stdout}");
    }

    // An AWS field asked of a secret that is a JSON object, with `*`: an error naming the key.
    let star = world.config(
        "production",
        world.vault,
        "\n[secrets.keys.AWS_SECRET]\nsource = \"aws\"\nfield = \"*\"\n",
    );
    let (code, stdout, _) = world.run(&star, &["secrets", "check"]);
    assert_eq!(code, 1);
    assert!(
        stdout.contains("is a JSON object; name one of its fields"),
        "{stdout}"
    );
}

#[test]
fn in_github_actions_every_loaded_secret_is_masked_with_add_mask_first() {
    let canary = Canary::new("mask");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("shipgate.toml");
    std::fs::write(&config, "app = \"shop\"\nenvironment = \"production\"\n").unwrap();
    let run = |actions: bool| {
        let mut cmd = Command::cargo_bin("shipgate").unwrap();
        cmd.current_dir(dir.path())
            .env_clear()
            .env("MY_SECRET", canary.value())
            .args(["secrets", "check", "--key", "MY_SECRET", "--config"])
            .arg(&config);
        if actions {
            cmd.env("GITHUB_ACTIONS", "true");
        }
        let output = cmd.output().unwrap();
        (
            output.status.code().unwrap(),
            String::from_utf8(output.stdout).unwrap(),
        )
    };
    let (code, stdout) = run(true);
    assert_eq!(code, 0, "{stdout}");
    let first = stdout.lines().next().unwrap_or_default();
    assert_eq!(first, format!("::add-mask::{}", canary.value()));
    let rest: Vec<&str> = stdout.lines().skip(1).collect();
    canary.assert_absent("stdout after the mask command", &rest.join("\n"));

    // Outside GitHub Actions nothing is printed about it at all.
    let (code, stdout) = run(false);
    assert_eq!(code, 0, "{stdout}");
    canary.assert_absent("stdout", &stdout);
}

/// A relative `[secrets]` path is relative to the configuration file, for every command:
/// `notify deliver` run from another directory finds the Slack webhook in the dotenv file
/// beside `shipgate.toml` (it looked in the current directory, as `deploy`, the smoke spec
/// and the rollback registry check did).
#[test]
fn relative_secret_paths_are_relative_to_the_configuration_file() {
    let project = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    std::fs::write(
        project.path().join("secrets.env"),
        "SLACK_WEBHOOK=https://hooks.slack.test/services/canary\n",
    )
    .unwrap();
    let config = project.path().join("shipgate.toml");
    std::fs::write(
        &config,
        format!(
            "app = \"shop\"\nenvironment = \"dev\"\n\
             [secrets]\nsources = [{{ kind = \"env\" }}, {{ kind = \"dotenv\", path = \"secrets.env\" }}]\n\
             [[notify.slack]]\nwebhook_secret = \"SLACK_WEBHOOK\"\n\
             [ledger]\nurl = \"sqlite://{}\"\n",
            project.path().join("ledger.db").display()
        ),
    )
    .unwrap();
    let output = Command::cargo_bin("shipgate")
        .unwrap()
        .current_dir(elsewhere.path())
        .env_clear()
        .args(["notify", "deliver", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("which no source has"), "{stderr}");
}
