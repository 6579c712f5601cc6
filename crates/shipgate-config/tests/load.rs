//! Loading real files and variable maps: precedence, seed names, and located errors.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use shipgate_config::{ConfigError, LoadOptions, Loaded, Origin, TargetKind, load};

fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures")
        .join(name)
        .join("shipgate.toml")
}

fn load_with(file: Option<&Path>, pairs: &[(&str, &str)]) -> Result<Loaded, ConfigError> {
    let vars = vars(pairs);
    load(&LoadOptions {
        file,
        vars: &vars,
        overrides: &[],
    })
}

fn write(text: &str) -> tempfile::NamedTempFile {
    let file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    std::fs::write(file.path(), text).unwrap();
    file
}

fn problems(result: Result<Loaded, ConfigError>) -> Vec<shipgate_config::ConfigProblem> {
    match result {
        Err(ConfigError::Invalid(problems)) => problems,
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("expected an error"),
    }
}

#[test]
fn every_fixture_loads() {
    for name in [
        "provenance",
        "waxwatch",
        "proofkit",
        "railway-auto",
        "monitor",
    ] {
        let loaded = load_with(Some(&fixture(name)), &[]).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(loaded.config.app.is_some(), "{name}");
    }
}

#[test]
fn seed_variables_drive_the_provenance_fixture() {
    let loaded = load_with(
        Some(&fixture("provenance")),
        &[
            ("ENABLE_HELM_DEPLOY", "true"),
            ("ENABLE_RAILWAY_DEPLOY", "false"),
            ("DEPLOY_ENVIRONMENT", "production"),
            ("ENVIRONMENT", "dev"),
            ("ENABLE_DEPLOY_SMOKE_GATE", "true"),
            ("ENABLE_AUTO_ROLLBACK", "yes"),
            ("PRODUCTION_API_URL", "https://api.example.com"),
            ("HELM_NAMESPACE", "prov"),
            ("RAILWAY_API_SERVICE", "prov-api"),
            ("image_tag", "abc123"),
            ("GITHUB_SHA", "ffffffffffffffffffffffffffffffffffffffff"),
        ],
    )
    .unwrap();
    let c = &loaded.config;
    assert_eq!(c.targets.enabled(), vec![TargetKind::Helm]);
    assert_eq!(c.environment.as_deref(), Some("production"));
    assert!(c.smoke.enabled && c.rollback.auto);
    assert_eq!(c.smoke.base_url.as_deref(), Some("https://api.example.com"));
    assert_eq!(c.targets.helm.namespace.as_deref(), Some("prov"));
    assert_eq!(
        c.targets.railway.services[&"api".parse().unwrap()],
        "prov-api"
    );
    assert_eq!(c.image.tag.as_deref(), Some("abc123"));
    assert_eq!(
        loaded.origin_of("environment"),
        Some(Origin::Variable("DEPLOY_ENVIRONMENT".into()))
    );
    assert!(matches!(
        loaded.origin_of("targets.helm.chart"),
        Some(Origin::File { line: Some(23), .. })
    ));
}

#[test]
fn github_sha_only_fills_an_unset_tag() {
    let sha = "ffffffffffffffffffffffffffffffffffffffff";
    let loaded = load_with(None, &[("GITHUB_SHA", sha)]).unwrap();
    assert_eq!(loaded.config.image.tag.as_deref(), Some(sha));
    let file = write("[image]\ntag = \"v1.2.3\"\n");
    let loaded = load_with(Some(file.path()), &[("GITHUB_SHA", sha)]).unwrap();
    assert_eq!(loaded.config.image.tag.as_deref(), Some("v1.2.3"));
}

#[test]
fn runtime_target_overrides_enable_flags() {
    let loaded = load_with(
        None,
        &[("runtime_target", "both"), ("ENABLE_HELM_DEPLOY", "false")],
    )
    .unwrap();
    assert_eq!(
        loaded.config.targets.enabled(),
        vec![TargetKind::Helm, TargetKind::Railway]
    );
    let p = problems(load_with(None, &[("runtime_target", "kubernetes")]));
    assert_eq!(p[0].origin, Origin::Variable("runtime_target".into()));
    assert!(p[0].message.contains("`kubernetes` is not a target"));
}

#[test]
fn empty_variables_count_as_unset() {
    let loaded = load_with(None, &[("ENABLE_HELM_DEPLOY", ""), ("ENVIRONMENT", "  ")]).unwrap();
    assert!(!loaded.config.targets.helm.enabled);
    assert_eq!(loaded.config.environment, None);
}

#[test]
fn a_bad_boolean_variable_names_the_variable() {
    let p = problems(load_with(None, &[("ENABLE_DEPLOY_SMOKE_GATE", "ture")]));
    assert_eq!(p.len(), 1);
    assert_eq!(
        p[0].origin,
        Origin::Variable("ENABLE_DEPLOY_SMOKE_GATE".into())
    );
    assert_eq!(p[0].key.as_deref(), Some("smoke.enabled"));
    assert!(
        p[0].message.contains("expected a boolean"),
        "{}",
        p[0].message
    );
    // The value is never quoted: it could be a secret pasted into the wrong variable.
    let p = problems(load_with(
        None,
        &[("ENABLE_HELM_DEPLOY", "canary-9f3b1c2d7e-value")],
    ));
    let text = p[0].to_string();
    assert!(
        text.contains("ENABLE_HELM_DEPLOY") && text.contains("expected a boolean, found a string"),
        "{text}"
    );
    assert!(!text.contains("canary-9f3b1c2d7e"), "{text}");
}

#[test]
fn prod_required_env_vars_splits_on_spaces_and_commas() {
    let loaded = load_with(
        None,
        &[(
            "PROD_REQUIRED_ENV_VARS",
            "DATABASE_URL AUTH_ISSUER,AUTH_JWKS_URL",
        )],
    )
    .unwrap();
    assert_eq!(
        loaded.config.env.required.unwrap(),
        vec!["DATABASE_URL", "AUTH_ISSUER", "AUTH_JWKS_URL"]
    );
}

#[test]
fn shipgate_variables_set_nested_keys_and_win_over_seed_names() {
    let loaded = load_with(
        None,
        &[
            ("SHIPGATE_LEDGER__URL", "postgres://db/shipgate"),
            ("SHIPGATE_SMOKE__ENABLED", "true"),
            ("ENABLE_DEPLOY_SMOKE_GATE", "false"),
            ("SHIPGATE_CONFIG", "ignored.toml"),
        ],
    )
    .unwrap();
    assert_eq!(loaded.config.ledger.url, "postgres://db/shipgate");
    assert!(loaded.config.smoke.enabled);
}

#[test]
fn flags_win_over_everything() {
    let vars = vars(&[("DEPLOY_ENVIRONMENT", "production")]);
    let loaded = load(&LoadOptions {
        file: None,
        vars: &vars,
        overrides: &[("environment", "dev", "--environment")],
    })
    .unwrap();
    assert_eq!(loaded.config.environment.as_deref(), Some("dev"));
    assert_eq!(
        loaded.origin_of("environment"),
        Some(Origin::Flag("--environment".into()))
    );
}

#[test]
fn malformed_toml_names_file_line_and_column() {
    let file = write("app = \"x\"\n[smoke\nenabled = true\n");
    let p = problems(load_with(Some(file.path()), &[]));
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].line, Some(2));
    assert!(
        p[0].message.starts_with("TOML syntax error"),
        "{}",
        p[0].message
    );
    assert!(
        p[0].to_string()
            .contains(&format!("{}:2", file.path().display()))
    );
}

#[test]
fn unknown_keys_are_rejected_with_the_nearest_valid_key() {
    let file = write("app = \"x\"\n\n[smoke]\nenabeld = true\n");
    let p = problems(load_with(Some(file.path()), &[]));
    assert_eq!(p[0].key.as_deref(), Some("smoke.enabeld"));
    assert_eq!(p[0].line, Some(4));
    assert_eq!(p[0].hint.as_deref(), Some("did you mean `enabled`?"));
    let file = write("[targets.helmm]\nenabled = true\n");
    let p = problems(load_with(Some(file.path()), &[]));
    assert_eq!(p[0].hint.as_deref(), Some("did you mean `helm`?"));
}

#[test]
fn wrong_types_name_the_key_and_line() {
    let file = write("[smoke]\nconcurrency = \"many\"\n");
    let p = problems(load_with(Some(file.path()), &[]));
    assert_eq!(p[0].key.as_deref(), Some("smoke.concurrency"));
    assert_eq!(p[0].line, Some(2));
    let file = write("[[smoke.checks]]\nname = \"a\"\npath = \"/\"\ntimeout = \"soon\"\n");
    let p = problems(load_with(Some(file.path()), &[]));
    assert_eq!(p[0].key.as_deref(), Some("smoke.checks.0.timeout"));
    assert_eq!(p[0].line, Some(4));
    assert!(
        p[0].message.contains("is not a duration"),
        "{}",
        p[0].message
    );
    let file = write("[targets.helm]\nvalues_strategy = \"reuse-then-reset\"\n");
    let p = problems(load_with(Some(file.path()), &[]));
    assert!(
        p[0].hint.as_deref().unwrap().contains("reset-then-reuse"),
        "{:?}",
        p[0]
    );
}

#[test]
fn semantic_problems_are_all_reported_with_lines() {
    let file = write(
        "app = \"Bad App\"\n\
         [image]\nregistry = \"ghcr.io\"\nowner = \"Acme\"\n\
         [services.api]\nimage = \"ghcr.io/acme/api:latest\"\n\
         [targets.railway]\nservices = { web = \"x\" }\n\
         [smoke]\nbase_url = \"not a url\"\napi_key_header = \"X API Key\"\n\
         [[smoke.checks]]\nname = \"h\"\npath = \"/\"\n\
         [[smoke.checks]]\nname = \"h\"\npath = \"/x\"\n\
         [github]\nrepository = \"acme\"\n\
         [ledger]\nurl = \"mysql://x\"\n\
         [env.vars.MODE]\nkind = \"enum\"\n",
    );
    let p = problems(load_with(Some(file.path()), &[]));
    let keys: Vec<_> = p.iter().filter_map(|p| p.key.as_deref()).collect();
    for key in [
        "app",
        "image.owner",
        "services.api.image",
        "targets.railway.services.web",
        "smoke.base_url",
        "smoke.api_key_header",
        "smoke.checks.1.name",
        "github.repository",
        "ledger.url",
        "env.vars.MODE.values",
    ] {
        assert!(keys.contains(&key), "missing {key} in {keys:?}");
    }
    assert!(p.iter().all(|p| p.line.is_some()), "{p:#?}");
}

#[test]
fn conflicting_project_variables_are_an_error() {
    let p = problems(load_with(
        None,
        &[("RAILWAY_PROJECT", "a"), ("RAILWAY_PROJECT_ID", "b")],
    ));
    assert!(
        p[0].message
            .contains("RAILWAY_PROJECT and RAILWAY_PROJECT_ID are both set")
    );
}

#[test]
fn a_missing_file_is_a_read_error() {
    let err = load_with(Some(Path::new("/nonexistent/shipgate.toml")), &[]).unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }));
    assert!(err.to_string().contains("/nonexistent/shipgate.toml"));
}

#[test]
fn durations_that_guard_safety_have_minimums() {
    // A lock TTL of 0s let a running deploy's lock be "recovered" as expired, and two
    // deploys ran at once.
    let file = write("[ledger]\nlock_ttl = \"0s\"\n[targets.fly]\nlease_ttl = \"1s\"\n");
    let p = problems(load_with(Some(file.path()), &[]));
    let ttl = p
        .iter()
        .find(|p| p.key.as_deref() == Some("ledger.lock_ttl"))
        .expect("lock_ttl rejected");
    assert_eq!(ttl.line, Some(2));
    assert!(ttl.message.contains("minimum is 10s"), "{ttl:?}");
    assert!(
        p.iter()
            .any(|p| p.key.as_deref() == Some("targets.fly.lease_ttl")),
        "{p:#?}"
    );
    // The same through a variable names the variable.
    let p = problems(load_with(None, &[("SHIPGATE_LEDGER__LOCK_TTL", "5s")]));
    assert!(
        p[0].to_string().contains("SHIPGATE_LEDGER__LOCK_TTL"),
        "{}",
        p[0]
    );
    // The minimum itself is accepted.
    let file = write("[ledger]\nlock_ttl = \"10s\"\n");
    assert!(load_with(Some(file.path()), &[]).is_ok());
}

/// A table made by `SHIPGATE_*` variables alone that misses a key blames the variable the
/// user set, and says how to add the missing key.
#[test]
fn a_table_made_by_a_variable_names_that_variable() {
    let p = problems(load_with(
        None,
        &[("SHIPGATE_TARGETS__LOCAL__SERVICES__API__PORT", "8080")],
    ));
    assert_eq!(p.len(), 1, "{p:?}");
    let text = p[0].to_string();
    assert!(
        text.starts_with("environment variable SHIPGATE_TARGETS__LOCAL__SERVICES__API__PORT:")
            && text.contains("missing required key `command`")
            && text.contains("SHIPGATE_TARGETS__LOCAL__SERVICES__API__COMMAND"),
        "{text}"
    );
}

#[test]
fn paths_written_in_the_file_are_relative_to_the_file_and_variables_to_the_current_directory() {
    let file = write("[env]\nsample = \".env.sample\"\n");
    let dir = file.path().parent().unwrap();
    let loaded = load_with(Some(file.path()), &[]).unwrap();
    assert_eq!(loaded.config.env.sample, Some(dir.join(".env.sample")));
    let from_variable = load_with(
        Some(file.path()),
        &[("SHIPGATE_ENV__SAMPLE", "from-cwd.sample")],
    )
    .unwrap();
    assert_eq!(
        from_variable.config.env.sample,
        Some(PathBuf::from("from-cwd.sample"))
    );
}

#[test]
fn canary_steps_that_cannot_run_are_located_errors() {
    for (steps, says) in [
        ("[]", "the canary step list is empty"),
        ("[10, 10, 100]", "must increase: 10% comes after 10%"),
        ("[50, 20]", "must increase: 20% comes after 50%"),
        (
            "[10, 150]",
            "a canary step of 150% is not a share of traffic",
        ),
        ("[0, 100]", "a canary step of 0% is not a share of traffic"),
    ] {
        let file = write(&format!(
            "[deploy]\nstrategy = \"canary\"\nsteps = {steps}\n"
        ));
        let p = problems(load_with(Some(file.path()), &[]));
        assert_eq!(p.len(), 1, "{steps}: {p:#?}");
        assert_eq!(p[0].key.as_deref(), Some("deploy.steps"));
        assert_eq!(p[0].line, Some(3), "{steps}");
        assert!(p[0].message.contains(says), "{steps}: {}", p[0].message);
    }
    // Over 255 does not even parse as a share.
    let file = write("[deploy]\nsteps = [10, 300]\n");
    assert!(load_with(Some(file.path()), &[]).is_err());
}

#[test]
fn analysis_thresholds_and_the_prometheus_source_are_checked() {
    let file = write(
        "[analysis]\nmax_error_percent = 150\n\
         [analysis.prometheus]\nurl = \"prometheus:9090\"\nquery = \" \"\nmax = 0.1\n",
    );
    let p = problems(load_with(Some(file.path()), &[]));
    let keys: Vec<_> = p.iter().filter_map(|p| p.key.as_deref()).collect();
    assert_eq!(
        keys,
        [
            "analysis.max_error_percent",
            "analysis.prometheus.url",
            "analysis.prometheus.query"
        ]
    );
    let good = write(
        "[deploy]\nstrategy = \"canary\"\nsteps = [5, 25]\npause = \"10s\"\n\
         [analysis]\nmax_p95 = \"250ms\"\n\
         [analysis.prometheus]\nurl = \"http://prometheus:9090\"\nquery = \"up\"\nmax = 1\n",
    );
    let loaded = load_with(Some(good.path()), &[]).unwrap();
    assert_eq!(loaded.config.deploy.steps, [5, 25]);
    assert_eq!(loaded.config.deploy.pause.as_duration().as_secs(), 10);
    let prometheus = loaded.config.analysis.prometheus.as_ref().unwrap();
    assert_eq!((prometheus.query.as_str(), prometheus.max), ("up", 1.0));
}
