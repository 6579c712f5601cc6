//! Every GraphQL operation shipgate sends is valid against Railway's real schema, and every
//! `DeploymentStatus` the schema defines has a deliberate meaning.

#![allow(clippy::unwrap_used, clippy::panic)]

use shipgate_railway::{Phase, phase};
use shipgate_testkit::graphql::railway_schema;

#[test]
fn every_operation_file_validates_against_railways_schema() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("graphql");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "graphql") {
            let text = std::fs::read_to_string(&path).unwrap();
            if let Err(errors) = railway_schema().validate(&text) {
                panic!(
                    "{} is not valid against Railway's schema:\n{errors}",
                    path.display()
                );
            }
            let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
            assert!(
                text.contains(&format!("query {stem}"))
                    || text.contains(&format!("mutation {stem}")),
                "{}: the operation must be named after its file",
                path.display()
            );
            checked += 1;
        }
    }
    assert!(checked >= 15, "only {checked} operations found");
}

#[test]
fn every_deployment_status_in_the_schema_is_classified() {
    let values = railway_schema().enum_values("DeploymentStatus");
    assert_eq!(values.len(), 13, "{values:?}");
    for value in values {
        let p = phase(&value, false);
        assert!(
            !matches!(p, Phase::InProgress(what) if what.contains("does not know")),
            "DeploymentStatus {value} is not classified"
        );
    }
}
