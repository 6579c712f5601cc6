//! Properties of the configuration parsers over generated input: `shipgate.toml` text, smoke
//! spec files, `SHIPGATE_*` and seed variables. None panics; every error is located (a file
//! and line, a variable, or a flag) and bounded, and never quotes a value of the wrong type.
//! CI runs proptest's default number of cases; for a long run:
//! `PROPTEST_CASES=1000000 cargo test --release -p shipgate-config --test properties`.

use std::collections::BTreeMap;

use proptest::prelude::*;
use shipgate_config::{ConfigError, LoadOptions, Origin, load, load_smoke_spec};
use shipgate_testkit::toml_string;

/// Table headers and keys shipgate knows, plus some it does not.
const HEADERS: &[&str] = &[
    "",
    "[smoke]",
    "[[smoke.checks]]",
    "[[checks]]",
    "[ledger]",
    "[image]",
    "[services.api]",
    "[targets.local.services.api]",
    "[targets.helm]",
    "[targets.railway]",
    "[targets.fly]",
    "[deploy]",
    "[monitor]",
    "[[monitor.targets]]",
    "[secrets]",
    "[env.vars.DATABASE_URL]",
    "[github]",
    "[nonsense]",
];
const KEYS: &[&str] = &[
    "environment",
    "app",
    "base_url",
    "timeout",
    "concurrency",
    "name",
    "path",
    "status",
    "samples",
    "url",
    "lock_ttl",
    "lock_timeout",
    "command",
    "port",
    "tag",
    "image",
    "order",
    "schedule",
    "open_after",
    "resolve_after",
    "headers",
    "asserts",
    "retry",
    "method",
    "kind",
    "enabled",
    "release",
    "namespace",
    "app_name",
    "stable_for",
    "critical",
    "json",
    "body",
    "captures",
    "max_latency",
    "allow_insecure",
    "mutable_tags",
    "values",
    "min",
    "max",
    "x",
];

/// A TOML value of any kind, sometimes absurd.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<bool>().prop_map(|b| b.to_string()),
        any::<f64>().prop_map(|f| format!("{f:?}")
            .replace("inf", "1e400")
            .replace("NaN", "nan")),
        "\\PC{0,40}".prop_map(|s| toml_string(&s)),
        "[0-9]{1,12} ?(ms|s|m|h|d|years|parsecs)".prop_map(|s| toml_string(&s)),
        "(https?|ftp|postgres|sqlite)://[a-z:@./0-9]{0,30}".prop_map(|s| toml_string(&s)),
        proptest::collection::vec(any::<u16>(), 0..4).prop_map(|v| format!("{v:?}")),
        "\\PC{0,10}".prop_map(|s| format!("{{ {} = 1 }}", toml_string(&s))),
        Just("[]".to_owned()),
        Just("{}".to_owned()),
    ]
}

/// A TOML document made of known headers and keys with arbitrary values, or raw text.
fn document() -> impl Strategy<Value = String> {
    let line = (
        proptest::sample::select(HEADERS),
        proptest::collection::vec((proptest::sample::select(KEYS), value()), 0..4),
    )
        .prop_map(|(header, entries)| {
            let mut text = format!("{header}\n");
            for (key, value) in entries {
                text.push_str(&format!("{key} = {value}\n"));
            }
            text
        });
    prop_oneof![
        4 => proptest::collection::vec(line, 0..6).prop_map(|parts| parts.concat()),
        1 => "(?s).{0,200}",
    ]
}

/// Every problem of an invalid configuration is located, and bounded.
fn assert_located(err: &ConfigError, file: &std::path::Path) -> Result<(), TestCaseError> {
    match err {
        ConfigError::Invalid(problems) => {
            prop_assert!(!problems.is_empty());
            for problem in problems {
                match &problem.origin {
                    Origin::File { path, .. } => prop_assert_eq!(path, file),
                    Origin::Variable(name) => prop_assert!(!name.is_empty()),
                    Origin::Flag(flag) => prop_assert!(flag.starts_with("--")),
                    Origin::Default => prop_assert!(problem.key.is_some(), "{}", problem),
                }
                let text = problem.to_string();
                prop_assert!(text.len() < 2_000, "{} bytes: {}", text.len(), text);
            }
        }
        other => prop_assert!(other.to_string().contains(&file.display().to_string())),
    }
    Ok(())
}

proptest! {
    #[test]
    fn any_configuration_file_loads_or_every_problem_is_located(text in document()) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("shipgate.toml");
        std::fs::write(&file, &text).unwrap();
        let vars = BTreeMap::new();
        if let Err(err) = load(&LoadOptions { file: Some(&file), vars: &vars, overrides: &[] }) {
            assert_located(&err, &file)?;
        }
    }

    #[test]
    fn any_smoke_spec_file_loads_or_every_problem_is_located(text in document()) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("spec.toml");
        std::fs::write(&file, text.replace("[[smoke.checks]]", "[[checks]]")).unwrap();
        if let Err(err) = load_smoke_spec(&file) {
            assert_located(&err, &file)?;
        }
    }

    #[test]
    fn any_variables_load_or_the_problem_names_a_variable(
        vars in proptest::collection::btree_map(
            prop_oneof![
                "SHIPGATE_[A-Z_]{1,40}",
                proptest::sample::select(&[
                    "DEPLOY_ENVIRONMENT", "ENVIRONMENT", "ENABLE_HELM_DEPLOY", "ENABLE_RAILWAY_DEPLOY",
                    "ENABLE_FLY_DEPLOY", "RUNTIME_TARGET", "PRODUCTION_API_URL", "IMAGE_TAG",
                    "PROD_REQUIRED_ENV_VARS", "HELM_RELEASE", "K8S_NAMESPACE", "FLY_APP_NAME",
                    "SHIPGATE_SMOKE__TIMEOUT", "SHIPGATE_LEDGER__LOCK_TTL",
                    "SHIPGATE_TARGETS__LOCAL__SERVICES__API__PORT",
                ][..]).prop_map(str::to_owned),
            ],
            "\\PC{0,30}",
            0..6,
        )
    ) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("none.toml");
        if let Err(err) = load(&LoadOptions { file: None, vars: &vars, overrides: &[] }) {
            match &err {
                ConfigError::Invalid(problems) => {
                    for problem in problems {
                        let located = matches!(&problem.origin, Origin::Variable(name) if !name.is_empty())
                            || problem.key.is_some();
                        prop_assert!(located, "{}", problem);
                    }
                }
                other => assert_located(other, &file)?,
            }
        }
    }
}
