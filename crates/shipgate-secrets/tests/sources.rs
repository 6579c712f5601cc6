//! Each source against the real thing or a loopback fake of its documented API; moto's AWS
//! server for Secrets Manager (started by `scripts/test`).

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::json;
use shipgate_config::{SecretKeyOverride, SecretSourceConfig, SecretsConfig};
use shipgate_core::Environment;
use shipgate_http::{Backoff, ClientOptions, RetryPolicy, build_client};
use shipgate_secrets::{
    BuildContext, BuildError, Lookup, Resolution, SecretResolver, build_sources,
};
use shipgate_testkit::fakes::{FakeKube, FakeVault};

fn fast_policy() -> RetryPolicy {
    RetryPolicy {
        attempts: 3,
        backoff: Backoff::Constant(Duration::from_millis(5)),
        timeout: Duration::from_secs(5),
        ..RetryPolicy::default()
    }
}

fn resolver(
    config: &SecretsConfig,
    vars: &BTreeMap<String, String>,
    environment: &str,
) -> Result<SecretResolver, BuildError> {
    let environment = Environment::classify(Some(environment));
    let ctx = BuildContext {
        vars,
        environment: &environment,
        base_dir: std::path::Path::new("/"),
        client: build_client(&ClientOptions::default()).unwrap(),
        policy: fast_policy(),
    };
    Ok(SecretResolver::new(
        build_sources(config, &ctx)?,
        config.keys.clone(),
    ))
}

fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn found(resolution: Resolution) -> (String, String) {
    match resolution {
        Resolution::Found { secret, source } => (secret.expose().to_owned(), source),
        other => panic!("expected a value, got {other:?}"),
    }
}

fn failed(resolution: Resolution) -> String {
    match resolution {
        Resolution::SourceFailed { reason, .. } => reason,
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[tokio::test]
async fn dir_source_reads_one_file_per_key_and_strips_one_line_break() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("DB_PASSWORD"), "p4ss word \n\n").unwrap();
    std::fs::write(dir.path().join("CRLF"), "value\r\n").unwrap();
    std::fs::write(dir.path().join("BINARY"), [0xff, 0xfe]).unwrap();
    std::fs::create_dir(dir.path().join("NESTED")).unwrap();
    let config = SecretsConfig {
        sources: vec![SecretSourceConfig::Dir {
            name: Some("run".into()),
            path: dir.path().to_owned(),
        }],
        keys: BTreeMap::new(),
    };
    let r = resolver(&config, &BTreeMap::new(), "production").unwrap();
    assert_eq!(
        found(r.resolve("DB_PASSWORD").await),
        ("p4ss word \n".into(), "run".into())
    );
    assert_eq!(found(r.resolve("CRLF").await).0, "value");
    assert!(failed(r.resolve("BINARY").await).contains("not UTF-8"));
    assert!(failed(r.resolve("NESTED").await).contains("is a directory"));
    assert!(matches!(
        r.resolve("ABSENT").await,
        Resolution::Missing { .. }
    ));
}

#[tokio::test]
async fn dotenv_sources_are_refused_in_production_like_environments() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(".env.dev");
    std::fs::write(&path, "API_TOKEN=dev-token-value\n").unwrap();
    let config = SecretsConfig {
        sources: vec![SecretSourceConfig::Dotenv {
            name: None,
            path: path.clone(),
        }],
        keys: BTreeMap::new(),
    };
    for environment in ["production", "staging", "qa"] {
        let err = resolver(&config, &BTreeMap::new(), environment)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("refusing dotenv file") && err.contains("injected at run time"),
            "{err}"
        );
    }
    let r = resolver(&config, &BTreeMap::new(), "dev").unwrap();
    assert_eq!(
        found(r.resolve("API_TOKEN").await),
        ("dev-token-value".into(), "dotenv".into())
    );
}

#[tokio::test]
async fn the_fake_vault_answers_like_vaults_documented_kv_v2_api() {
    let vault = FakeVault::new("s.token");
    vault.put("secret", "app/prod", json!({"A": "1"}));
    vault.put("secret", "app/prod", json!({"A": "2"}));
    let addr = vault.start().await;
    let client = build_client(&ClientOptions::default()).unwrap();
    let get = |path: &str, token: &str| {
        client
            .get(format!("http://{addr}{path}"))
            .header("X-Vault-Token", token.to_owned())
            .send()
    };

    let ok = get("/v1/secret/data/app/prod", "s.token").await.unwrap();
    assert_eq!(ok.status(), 200);
    let body: serde_json::Value = serde_json::from_str(&ok.text().await.unwrap()).unwrap();
    assert_eq!(body["data"]["data"]["A"], "2");
    assert_eq!(body["data"]["metadata"]["version"], 2);
    let v1: serde_json::Value = serde_json::from_str(
        &get("/v1/secret/data/app/prod?version=1", "s.token")
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(v1["data"]["data"]["A"], "1");
    let denied = get("/v1/secret/data/app/prod", "wrong").await.unwrap();
    assert_eq!(denied.status(), 403);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&denied.text().await.unwrap()).unwrap(),
        json!({"errors": ["permission denied"]})
    );
    let missing = get("/v1/secret/data/app/none", "s.token").await.unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&missing.text().await.unwrap()).unwrap(),
        json!({"errors": []})
    );
}

fn vault_config(
    addr: std::net::SocketAddr,
    path: &str,
    version: Option<u64>,
    namespace: Option<&str>,
) -> SecretsConfig {
    SecretsConfig {
        sources: vec![SecretSourceConfig::Vault {
            name: None,
            address: format!("http://{addr}"),
            mount: "secret".into(),
            path: path.into(),
            namespace: namespace.map(str::to_owned),
            token_env: "VAULT_TOKEN".into(),
            version,
        }],
        keys: BTreeMap::from([(
            "DATABASE_URL".to_owned(),
            SecretKeyOverride {
                source: "vault".into(),
                field: Some("database_url".into()),
            },
        )]),
    }
}

#[tokio::test]
async fn vault_source_reads_fields_versions_and_namespaces_and_retries_a_sealed_vault() {
    let mut vault = FakeVault::new("s.token");
    vault.namespace = Some("team-a".into());
    vault.put(
        "secret",
        "app/prod",
        json!({"database_url": "postgres://old", "PORT": 5432}),
    );
    vault.put(
        "secret",
        "app/prod",
        json!({"database_url": "postgres://new", "PORT": 5432}),
    );
    vault
        .sealed_for
        .store(2, std::sync::atomic::Ordering::SeqCst);
    let addr = vault.start().await;
    let token = vars(&[("VAULT_TOKEN", "s.token")]);

    let r = resolver(
        &vault_config(addr, "app/prod", None, Some("team-a")),
        &token,
        "production",
    )
    .unwrap();
    assert_eq!(
        found(r.resolve("DATABASE_URL").await),
        ("postgres://new".into(), "vault".into())
    );
    assert_eq!(found(r.resolve("PORT").await).0, "5432");
    assert!(matches!(
        r.resolve("NOPE").await,
        Resolution::Missing { .. }
    ));

    let r = resolver(
        &vault_config(addr, "app/prod", Some(1), Some("team-a")),
        &token,
        "production",
    )
    .unwrap();
    assert_eq!(found(r.resolve("DATABASE_URL").await).0, "postgres://old");

    let r = resolver(
        &vault_config(addr, "app/other", None, Some("team-a")),
        &token,
        "production",
    )
    .unwrap();
    assert!(matches!(
        r.resolve("DATABASE_URL").await,
        Resolution::Missing { .. }
    ));
}

#[tokio::test]
async fn vault_permission_denied_and_unreachable_are_failures_that_name_the_source_not_the_token() {
    let mut vault = FakeVault::new("s.right");
    vault.echo_token = true;
    let addr = vault.start().await;
    let token = vars(&[("VAULT_TOKEN", "s.wrong-canary-token")]);
    let r = resolver(
        &vault_config(addr, "app/prod", None, None),
        &token,
        "production",
    )
    .unwrap();
    let reason = failed(r.resolve("DATABASE_URL").await);
    assert!(
        reason.contains("permission denied") && reason.contains("403"),
        "{reason}"
    );
    assert!(!reason.contains("s.wrong-canary-token"), "{reason}");

    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let r = resolver(
        &vault_config(closed, "app/prod", None, None),
        &token,
        "production",
    )
    .unwrap();
    let reason = failed(r.resolve("DATABASE_URL").await);
    assert!(
        reason.contains("unreachable") && reason.contains("after 3 attempt(s)"),
        "{reason}"
    );

    let err = resolver(
        &vault_config(closed, "app/prod", None, None),
        &BTreeMap::new(),
        "production",
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "secret source `vault` needs VAULT_TOKEN, which is not set (a Vault token with read access to the path)"
    );
}

fn kube_config(kubeconfig_env: &str) -> SecretsConfig {
    SecretsConfig {
        sources: vec![SecretSourceConfig::Kubernetes {
            name: None,
            namespace: "provenance".into(),
            secret: "api-secrets".into(),
            kubeconfig_env: kubeconfig_env.into(),
        }],
        keys: BTreeMap::new(),
    }
}

/// Built inside a current-thread runtime (what `#[tokio::main(flavor = "current_thread")]`
/// programs have), the source works: it cannot block that runtime's only thread in place.
#[tokio::test(flavor = "current_thread")]
async fn a_kubernetes_source_works_on_a_current_thread_runtime() {
    let kube = FakeKube::new("kube-token");
    kube.put("provenance", "api-secrets", &[("SIGNING_KEY", "seed")], &[]);
    let addr = kube.start().await;
    let plain = vars(&[(
        "KUBE_CONFIG_DATA",
        &FakeKube::kubeconfig(addr, "kube-token"),
    )]);
    let r = resolver(&kube_config("KUBE_CONFIG_DATA"), &plain, "production").unwrap();
    assert_eq!(found(r.resolve("SIGNING_KEY").await).0, "seed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubernetes_source_reads_base64_data_and_string_data() {
    let kube = FakeKube::new("kube-token");
    kube.put(
        "provenance",
        "api-secrets",
        &[("SIGNING_KEY", "ed25519-seed")],
        &[("EXTRA", "plain")],
    );
    let addr = kube.start().await;

    let plain = vars(&[(
        "KUBE_CONFIG_DATA",
        &FakeKube::kubeconfig(addr, "kube-token"),
    )]);
    let r = resolver(&kube_config("KUBE_CONFIG_DATA"), &plain, "production").unwrap();
    assert_eq!(
        found(r.resolve("SIGNING_KEY").await),
        ("ed25519-seed".into(), "kubernetes".into())
    );
    assert_eq!(found(r.resolve("EXTRA").await).0, "plain");
    assert!(matches!(
        r.resolve("NOPE").await,
        Resolution::Missing { .. }
    ));

    use base64::Engine;
    let encoded =
        base64::engine::general_purpose::STANDARD.encode(FakeKube::kubeconfig(addr, "wrong-token"));
    let b64 = vars(&[("KUBECONFIG_B64", &encoded)]);
    let r = resolver(&kube_config("KUBECONFIG_B64"), &b64, "production").unwrap();
    let reason = failed(r.resolve("SIGNING_KEY").await);
    assert!(
        reason.contains("permission denied reading Secret provenance/api-secrets"),
        "{reason}"
    );
}

#[tokio::test]
async fn a_source_that_fails_hides_later_sources_fail_closed() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("TOKEN")).unwrap();
    let config = SecretsConfig {
        sources: vec![
            SecretSourceConfig::Dir {
                name: None,
                path: dir.path().to_owned(),
            },
            SecretSourceConfig::Env { name: None },
        ],
        keys: BTreeMap::new(),
    };
    let r = resolver(&config, &vars(&[("TOKEN", "from-env")]), "production").unwrap();
    assert!(
        matches!(r.resolve("TOKEN").await, Resolution::SourceFailed { source, .. } if source == "dir")
    );
}

use shipgate_testkit::{moto_create_secret as moto_create, moto_url};

fn aws_config(secret_id: &str, keys: &[(&str, &str)]) -> SecretsConfig {
    SecretsConfig {
        sources: vec![SecretSourceConfig::AwsSecretsManager {
            name: None,
            secret_id: secret_id.into(),
            region: Some("us-east-1".into()),
            endpoint: Some(moto_url()),
        }],
        keys: keys
            .iter()
            .map(|(k, f)| {
                (
                    (*k).to_owned(),
                    SecretKeyOverride {
                        source: "aws".into(),
                        field: Some((*f).to_owned()),
                    },
                )
            })
            .collect(),
    }
}

fn aws_vars() -> BTreeMap<String, String> {
    vars(&[
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing-secret-key"),
    ])
}

#[tokio::test]
async fn aws_secrets_manager_reads_json_fields_whole_strings_and_binaries_from_moto() {
    let json_secret = r#"{"DATABASE_URL":"postgres://aws/db","PORT":5432}"#;
    moto_create("shipgate/test/json", "SecretString", json_secret).await;
    moto_create("shipgate/test/plain", "SecretString", "just-a-token").await;
    use base64::Engine;
    moto_create(
        "shipgate/test/binary",
        "SecretBinary",
        &base64::engine::general_purpose::STANDARD.encode("binary-token"),
    )
    .await;

    let r = resolver(
        &aws_config("shipgate/test/json", &[("DB", "DATABASE_URL")]),
        &aws_vars(),
        "production",
    )
    .unwrap();
    assert_eq!(
        found(r.resolve("DB").await),
        ("postgres://aws/db".into(), "aws".into())
    );
    assert_eq!(found(r.resolve("PORT").await).0, "5432");
    assert!(matches!(
        r.resolve("NOPE").await,
        Resolution::Missing { .. }
    ));

    let r = resolver(
        &aws_config("shipgate/test/plain", &[("TOKEN", "*")]),
        &aws_vars(),
        "production",
    )
    .unwrap();
    assert_eq!(found(r.resolve("TOKEN").await).0, "just-a-token");
    let reason = failed(r.resolve("OTHER").await);
    assert!(
        reason.contains("not a JSON object, so field `OTHER` cannot be read"),
        "{reason}"
    );

    let r = resolver(
        &aws_config("shipgate/test/binary", &[("BIN", "*")]),
        &aws_vars(),
        "production",
    )
    .unwrap();
    assert_eq!(found(r.resolve("BIN").await).0, "binary-token");

    let r = resolver(
        &aws_config("shipgate/test/absent", &[]),
        &aws_vars(),
        "production",
    )
    .unwrap();
    assert!(matches!(r.resolve("DB").await, Resolution::Missing { .. }));
}

#[tokio::test]
async fn aws_needs_credentials_and_a_region() {
    let source = |region: Option<&str>| SecretsConfig {
        sources: vec![SecretSourceConfig::AwsSecretsManager {
            name: None,
            secret_id: "x".into(),
            region: region.map(str::to_owned),
            endpoint: None,
        }],
        keys: BTreeMap::new(),
    };
    let err = resolver(&source(None), &aws_vars(), "production")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("AWS_DEFAULT_REGION") && err.contains("`region`"),
        "{err}"
    );
    let err = resolver(&source(Some("eu-west-1")), &BTreeMap::new(), "production")
        .unwrap_err()
        .to_string();
    assert!(err.contains("needs AWS_ACCESS_KEY_ID"), "{err}");
}

#[tokio::test]
async fn sources_report_their_kind() {
    let config = SecretsConfig::default();
    let environment = Environment::classify(Some("production"));
    let ctx = BuildContext {
        vars: &BTreeMap::new(),
        environment: &environment,
        base_dir: std::path::Path::new("/"),
        client: build_client(&ClientOptions::default()).unwrap(),
        policy: fast_policy(),
    };
    let sources = build_sources(&config, &ctx).unwrap();
    assert_eq!((sources[0].name(), sources[0].kind()), ("env", "env"));
    assert!(matches!(
        sources[0].lookup("X", None).await,
        Lookup::Missing
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_aws_and_kubernetes_fail_after_their_retries() {
    let closed = shipgate_testkit::closed_port();
    let config = SecretsConfig {
        sources: vec![SecretSourceConfig::AwsSecretsManager {
            name: None,
            secret_id: "prod/app".into(),
            region: Some("us-east-1".into()),
            endpoint: Some(format!("http://{closed}/")),
        }],
        keys: BTreeMap::new(),
    };
    let r = resolver(&config, &aws_vars(), "production").unwrap();
    let reason = failed(r.resolve("DB").await);
    assert!(
        reason.contains("AWS Secrets Manager at") && reason.contains("after 3 attempt(s)"),
        "{reason}"
    );
    assert!(!reason.contains("testing-secret-key"), "{reason}");

    let kube = vars(&[("KUBE_CONFIG_DATA", &FakeKube::kubeconfig(closed, "token"))]);
    let r = resolver(&kube_config("KUBE_CONFIG_DATA"), &kube, "production").unwrap();
    let reason = failed(r.resolve("SIGNING_KEY").await);
    assert!(
        reason.contains("cannot read Secret provenance/api-secrets")
            && reason.contains("after 3 attempts"),
        "{reason}"
    );
}
