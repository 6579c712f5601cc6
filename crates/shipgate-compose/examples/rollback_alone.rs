//! The rollback resolver alone: where would a rollback from `v4` go? Candidates come from a
//! source of this program's own (a release list, as a team's release registry would give
//! it); the gate record says `v3` failed its smoke gate when it was last deployed, so the
//! resolver skips it for `v2` and says why.
//!
//! ```sh
//! cargo run -p shipgate-compose --example rollback_alone
//! ```

#![allow(clippy::print_stdout)]

use std::collections::BTreeMap;

use async_trait::async_trait;
use shipgate_core::ImageRef;
use shipgate_rollback::{
    Candidate, CandidateSource, GateRecord, GateVerdict, Resolver, RollbackError,
};

/// This program's own releases, newest first.
struct ReleaseList(Vec<&'static str>);

#[async_trait]
impl CandidateSource for ReleaseList {
    fn name(&self) -> &'static str {
        "release-list"
    }

    async fn candidates(&self, _failing: &str) -> Result<Vec<Candidate>, RollbackError> {
        self.0
            .iter()
            .map(|tag| {
                Ok(Candidate {
                    label: (*tag).to_owned(),
                    images: BTreeMap::from([(
                        "api".parse().map_err(|e| RollbackError::Source {
                            message: format!("service name: {e}"),
                            source: None,
                        })?,
                        format!("ghcr.io/acme/shop-api:{tag}").parse::<ImageRef>()?,
                    )]),
                    origin: "the release list".into(),
                    target: None,
                })
            })
            .collect()
    }
}

/// What the gates said: v3 was deployed healthy but its run failed the smoke gate.
struct Verdicts;

#[async_trait]
impl GateRecord for Verdicts {
    async fn verdicts(&self, image: &ImageRef) -> Result<Vec<GateVerdict>, RollbackError> {
        let outcome = match image.tag() {
            Some("v3") => "unhealthy",
            _ => "succeeded",
        };
        Ok(vec![GateVerdict {
            target: "helm".into(),
            image: image.to_string(),
            run_id: format!("run-{}", image.tag().unwrap_or("?")),
            kind: "deploy".into(),
            verdict: "healthy".into(),
            outcome: Some(outcome.into()),
        }])
    }
}

#[tokio::main]
async fn main() {
    let resolver = Resolver::new(
        vec![Box::new(ReleaseList(vec!["v4", "v3", "v2", "v1"]))],
        Some(Box::new(Verdicts)),
        None,
    );
    let decision = resolver.resolve("v4").await;
    for line in decision.reasons() {
        println!("{line}");
    }
    let chosen = decision.chosen.as_ref().map(|c| c.label.as_str());
    assert_eq!(
        chosen,
        Some("v2"),
        "the resolver must skip v4 (failing) and v3 (failed its gate)"
    );
}
