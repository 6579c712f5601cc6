//! Properties of the variable-kind checks over generated values: none panics, every refusal
//! says what is wrong, and none repeats the value (check-env never prints one). Kubeconfigs
//! are generated as YAML built from kubeconfig parts, plain and base64-encoded.
//! CI runs proptest's default number of cases; for a long run:
//! `PROPTEST_CASES=1000000 cargo test --release -p shipgate-env --test properties`.

use base64::Engine;
use proptest::prelude::*;
use shipgate_config::VarKind;
use shipgate_env::{KindOptions, check_kubeconfig, check_value};

const KINDS: &[VarKind] = &[
    VarKind::NonEmpty,
    VarKind::Url,
    VarKind::Bool,
    VarKind::Integer,
    VarKind::Port,
    VarKind::Enum,
    VarKind::Base64,
    VarKind::Ed25519Key,
    VarKind::Kubeconfig,
    VarKind::ImageRef,
];

/// A value that could be a secret: long and random enough that finding it in a message
/// means the message repeats it.
fn secret_like() -> impl Strategy<Value = String> {
    "[A-Za-z0-9]{12,40}"
}

/// Kubeconfig-shaped YAML: clusters, users and contexts that may or may not agree.
fn kubeconfig_like() -> impl Strategy<Value = String> {
    (
        proptest::option::of("[a-z]{1,6}"),
        proptest::collection::vec(
            (
                "[a-z]{1,6}",
                proptest::option::of("(https?://)?[a-z0-9.:]{0,20}"),
            ),
            0..3,
        ),
        proptest::collection::vec("[a-z]{1,6}", 0..3),
        proptest::collection::vec(("[a-z]{1,6}", "[a-z]{1,6}", "[a-z]{1,6}"), 0..3),
        "(?s).{0,20}",
    )
        .prop_map(|(current, clusters, users, contexts, noise)| {
            let mut yaml = String::from("apiVersion: v1\nkind: Config\n");
            if let Some(current) = current {
                yaml.push_str(&format!("current-context: {current}\n"));
            }
            yaml.push_str("clusters:\n");
            for (name, server) in clusters {
                yaml.push_str(&format!("- name: {name}\n  cluster:\n"));
                if let Some(server) = server {
                    yaml.push_str(&format!("    server: \"{server}\"\n"));
                }
            }
            yaml.push_str("users:\n");
            for name in users {
                yaml.push_str(&format!("- name: {name}\n  user:\n    token: t\n"));
            }
            yaml.push_str("contexts:\n");
            for (name, cluster, user) in contexts {
                yaml.push_str(&format!(
                    "- name: {name}\n  context:\n    cluster: {cluster}\n    user: {user}\n"
                ));
            }
            yaml.push_str(&noise);
            yaml
        })
}

proptest! {
    #[test]
    fn every_kind_accepts_or_refuses_without_repeating_the_value(
        kind in proptest::sample::select(KINDS),
        value in prop_oneof![secret_like(), "\\PC{0,80}", "(?s).{0,80}"],
        min in proptest::option::of(any::<i64>()),
        max in proptest::option::of(any::<i64>()),
    ) {
        let values = vec!["a".to_owned(), "b".to_owned()];
        let options = KindOptions { values: &values, min, max, require_pinned: true, ..KindOptions::default() };
        if let Err(err) = check_value(kind, &value, &options) {
            let message = err.message();
            prop_assert!(!message.trim().is_empty());
            if value.len() >= 12 && value.chars().all(|c| c.is_ascii_alphanumeric()) {
                prop_assert!(!message.contains(&value), "{:?}: {}", kind, message);
            }
        }
    }

    #[test]
    fn kubeconfigs_plain_or_base64_are_checked_without_panicking(
        yaml in kubeconfig_like(),
        encode in any::<bool>(),
        context in proptest::option::of("[a-z]{1,6}"),
    ) {
        let value = if encode {
            base64::engine::general_purpose::STANDARD.encode(&yaml)
        } else {
            yaml
        };
        if let Err(err) = check_kubeconfig(&value, context.as_deref()) {
            let message = err.message();
            prop_assert!(message.starts_with("is ") || message.contains("context") || message.contains("cluster") || message.contains("user"), "{}", message);
            prop_assert!(message.len() < 1_000);
        }
    }
}
