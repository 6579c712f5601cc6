//! Properties of the smoke spec compiler over generated specs: checks with arbitrary paths,
//! methods, headers, statuses, asserts (JSONPath, regex), templates and captures. Compiling
//! never panics, and every problem names the key it is about and how to fix it.
//! CI runs proptest's default number of cases; for a long run:
//! `PROPTEST_CASES=1000000 cargo test --release -p shipgate-smoke --test properties`.

use proptest::prelude::*;
use shipgate_smoke::{SpecOptions, compile};
use shipgate_testkit::toml_string;

/// Text that is sometimes a template (`{{token}}`), a JSONPath, a regex or noise.
fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        "/[a-z/{}_.]{0,20}",
        "\\$[.\\[\\]a-z0-9*?@()=<>'\"]{0,20}",
        "[(\\[\\]^$.*+?|a-z\\\\]{0,15}",
        "\\{\\{[a-z_]{0,8}\\}?\\}?",
        "\\PC{0,20}",
    ]
}

fn check() -> impl Strategy<Value = String> {
    (
        "\\PC{0,12}",
        fragment(),
        proptest::option::of(prop_oneof![
            Just("GET"),
            Just("POST"),
            Just("BREW"),
            Just("g e t")
        ]),
        proptest::option::of(prop_oneof![
            (0u32..1000).prop_map(|n| n.to_string()),
            "[0-9x-]{0,8}".prop_map(|s| toml_string(&s)),
            Just("[200, 204]".to_owned()),
        ]),
        proptest::collection::vec(
            (
                prop_oneof![Just("jsonpath"), Just("header"), Just("body")],
                prop_oneof![
                    Just("equals"),
                    Just("exists"),
                    Just("matches"),
                    Just("contains"),
                    Just("max_bytes")
                ],
                fragment(),
            ),
            0..3,
        ),
        proptest::option::of(("[a-z_]{0,6}", fragment())),
        proptest::option::of(("[A-Za-z-]{0,8}", fragment())),
        proptest::option::of(prop_oneof![
            Just("json = { a = \"{{token}}\" }"),
            Just("body = \"x\""),
            Just("json = {}\nbody = \"y\"")
        ]),
    )
        .prop_map(
            |(name, path, method, status, asserts, capture, header, body)| {
                let mut text = format!(
                    "[[checks]]\nname = {}\npath = {}\n",
                    toml_string(&name),
                    toml_string(&path)
                );
                if let Some(method) = method {
                    text.push_str(&format!("method = {}\n", toml_string(method)));
                }
                if let Some(status) = status {
                    text.push_str(&format!("status = {status}\n"));
                }
                if let Some((name, path)) = capture {
                    text.push_str(&format!(
                        "captures = {{ {} = {} }}\n",
                        toml_string(&name),
                        toml_string(&path)
                    ));
                }
                if let Some((name, value)) = header {
                    text.push_str(&format!(
                        "headers = {{ {} = {} }}\n",
                        toml_string(&name),
                        toml_string(&value)
                    ));
                }
                if let Some(body) = body {
                    text.push_str(body);
                    text.push('\n');
                }
                for (subject, predicate, value) in asserts {
                    let subject = match subject {
                        "body" => "body = true".to_owned(),
                        other => format!("{other} = {}", toml_string(&value)),
                    };
                    let predicate = match predicate {
                        "exists" => "exists = true".to_owned(),
                        "max_bytes" => "max_bytes = 10".to_owned(),
                        other => format!("{other} = {}", toml_string(&value)),
                    };
                    text.push_str(&format!("[[checks.asserts]]\n{subject}\n{predicate}\n"));
                }
                text
            },
        )
}

proptest! {
    #[test]
    fn any_spec_compiles_or_every_problem_names_its_key(
        checks in proptest::collection::vec(check(), 0..4),
        base_url in proptest::option::of(prop_oneof!["https?://[a-z0-9.:@/-]{0,20}", "\\PC{0,20}"]),
        production_like in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("spec.toml");
        std::fs::write(&file, checks.concat()).unwrap();
        let Ok(loaded) = shipgate_config::load_smoke_spec(&file) else {
            // Refusals of the file itself are the configuration properties' business.
            return Ok(());
        };
        let options = SpecOptions { base_url, production_like, ..SpecOptions::default() };
        if let Err(err) = compile(&loaded.spec, &options) {
            prop_assert!(!err.problems.is_empty());
            for problem in &err.problems {
                prop_assert!(!problem.key.is_empty() && !problem.message.is_empty() && !problem.hint.is_empty(), "{:?}", problem);
            }
        }
    }
}
