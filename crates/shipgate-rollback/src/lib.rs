//! The rollback resolver: which images to roll back to, and why.
//!
//! Candidates come from ordered sources ([`CandidateSource`]): the ledger's last known good
//! run, the previous successful run of a publish workflow on GitHub (seed 000's
//! `publish-images.yml`), and a provider's own history. Each candidate is verified before it is
//! chosen: it is not the failing commit, none of its images was ever recorded as failed
//! ([`FailureRecord`]), and every image exists in its registry ([`ImageCheck`], the OCI
//! distribution API). The [`Decision`] carries the reason chain: "chose abc1234 from
//! publish-images.yml run #812; skipped def5678 (publish-images.yml run #811): image
//! ghcr.io/acme/api:def5678 missing in its registry".

mod registry;
mod sources;

use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;
use serde::Serialize;
use shipgate_core::{ImageRef, ServiceName};

pub use registry::{Existence, ImageCheck, OciRegistry, RegistryLogin};
pub use sources::{ImagesFor, LedgerFailures, LedgerSource, ProviderSource, WorkflowSource};

/// A release that could be rolled back to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Candidate {
    /// What identifies it to a person: a commit SHA or tag.
    pub label: String,
    /// Service → image.
    pub images: BTreeMap<ServiceName, ImageRef>,
    /// Where it came from (`publish-images.yml run #812`, `ledger run 20261123T…`).
    pub origin: String,
}

/// A source of candidates, newest first.
#[async_trait]
pub trait CandidateSource: Send + Sync {
    /// `ledger`, `github-workflow`, `provider`.
    fn name(&self) -> &'static str;
    /// Candidates, newest first; `failing` is the commit or tag being rolled back from.
    async fn candidates(&self, failing: &str) -> Result<Vec<Candidate>, String>;
}

/// Images known to have failed (from the ledger).
#[async_trait]
pub trait FailureRecord: Send + Sync {
    /// Every image recorded in a failed or rolled-back deployment.
    async fn failed_images(&self) -> Result<BTreeSet<String>, String>;
}

/// One candidate looked at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Considered {
    /// The source.
    pub source: &'static str,
    /// The candidate.
    pub candidate: Candidate,
    /// `None` when chosen, else why it was skipped.
    pub skipped: Option<String>,
}

/// The resolver's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// The commit or tag rolled back from.
    pub failing: String,
    /// The chosen candidate, if any.
    pub chosen: Option<Candidate>,
    /// Every candidate looked at, in order.
    pub considered: Vec<Considered>,
    /// Sources that could not answer, with why.
    pub source_errors: Vec<String>,
}

impl Decision {
    /// The reason chain, one sentence per step, the choice first.
    pub fn reasons(&self) -> Vec<String> {
        let mut out = Vec::new();
        match &self.chosen {
            Some(c) => out.push(format!("chose {} from {}", c.label, c.origin)),
            None => out.push(format!(
                "no rollback candidate for {}: every source was empty or every candidate failed verification",
                self.failing
            )),
        }
        for c in &self.considered {
            if let Some(why) = &c.skipped {
                out.push(format!(
                    "skipped {} ({}): {why}",
                    c.candidate.label, c.candidate.origin
                ));
            }
        }
        for e in &self.source_errors {
            out.push(format!("source failed: {e}"));
        }
        out
    }
}

/// Whether `candidate` is the failing release (its label or any image tag is the failing SHA
/// or tag, a short SHA matching as a prefix).
fn is_failing(candidate: &Candidate, failing: &str) -> bool {
    let same = |s: &str| {
        s == failing
            || (failing.len() >= 7 && s.starts_with(failing))
            || (s.len() >= 7 && failing.starts_with(s))
    };
    same(&candidate.label) || candidate.images.values().any(|i| i.tag().is_some_and(same))
}

/// The first of `images` the ledger recorded as failed (`failed` holds image references).
pub fn recorded_failure<'a>(
    images: impl IntoIterator<Item = &'a ImageRef>,
    failed: &BTreeSet<String>,
) -> Option<&'a ImageRef> {
    images.into_iter().find(|i| failed.contains(&i.to_string()))
}

/// What a registry said about one image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presence {
    /// It exists.
    Present,
    /// It does not (never pushed, or deleted).
    Missing,
    /// The registry could not tell (network, credentials, not a registry).
    Unanswered(String),
}

/// Asks `check` about each image in order, stopping after the first missing one: the answers
/// so far, so a caller can skip the candidate (missing) or decide what an unanswered check
/// means for it.
pub async fn registry_presence<'a>(
    check: &dyn ImageCheck,
    images: impl IntoIterator<Item = &'a ImageRef>,
) -> Vec<(&'a ImageRef, Presence)> {
    let mut answers = Vec::new();
    for image in images {
        let presence = match check.exists(image).await {
            Ok(Existence::Exists(_)) => Presence::Present,
            Ok(Existence::Missing) => Presence::Missing,
            Err(e) => Presence::Unanswered(e),
        };
        let missing = presence == Presence::Missing;
        answers.push((image, presence));
        if missing {
            break;
        }
    }
    answers
}

/// Resolves rollback targets from ordered sources.
pub struct Resolver {
    sources: Vec<Box<dyn CandidateSource>>,
    failures: Option<Box<dyn FailureRecord>>,
    check: Option<Box<dyn ImageCheck>>,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver")
            .field(
                "sources",
                &self.sources.iter().map(|s| s.name()).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl Resolver {
    /// A resolver over `sources` (tried in order), optionally excluding recorded failures and
    /// checking registries.
    pub fn new(
        sources: Vec<Box<dyn CandidateSource>>,
        failures: Option<Box<dyn FailureRecord>>,
        check: Option<Box<dyn ImageCheck>>,
    ) -> Resolver {
        Resolver {
            sources,
            failures,
            check,
        }
    }

    /// Chooses the first candidate that passes every check.
    pub async fn resolve(&self, failing: &str) -> Decision {
        let mut decision = Decision {
            failing: failing.to_owned(),
            chosen: None,
            considered: Vec::new(),
            source_errors: Vec::new(),
        };
        let failed = match &self.failures {
            Some(f) => match f.failed_images().await {
                Ok(set) => set,
                Err(e) => {
                    decision.source_errors.push(format!("ledger failures: {e}"));
                    BTreeSet::new()
                }
            },
            None => BTreeSet::new(),
        };
        for source in &self.sources {
            let candidates = match source.candidates(failing).await {
                Ok(c) => c,
                Err(e) => {
                    decision
                        .source_errors
                        .push(format!("{}: {e}", source.name()));
                    continue;
                }
            };
            for candidate in candidates {
                let skipped = self.verify(&candidate, failing, &failed).await;
                let chosen = skipped.is_none();
                decision.considered.push(Considered {
                    source: source.name(),
                    candidate: candidate.clone(),
                    skipped,
                });
                if chosen {
                    decision.chosen = Some(candidate);
                    return decision;
                }
            }
        }
        decision
    }

    async fn verify(
        &self,
        candidate: &Candidate,
        failing: &str,
        failed: &BTreeSet<String>,
    ) -> Option<String> {
        if candidate.images.is_empty() {
            return Some("no images recorded".into());
        }
        if is_failing(candidate, failing) {
            return Some("it is the failing release".into());
        }
        if let Some(image) = recorded_failure(candidate.images.values(), failed) {
            return Some(format!("image {image} was recorded as failed"));
        }
        if let Some(check) = &self.check {
            for (image, presence) in
                registry_presence(check.as_ref(), candidate.images.values()).await
            {
                match presence {
                    Presence::Present => {}
                    Presence::Missing => {
                        return Some(format!("image {image} missing in its registry"));
                    }
                    Presence::Unanswered(e) => {
                        return Some(format!("image {image} could not be checked: {e}"));
                    }
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(label: &str, tag: &str) -> Candidate {
        Candidate {
            label: label.into(),
            images: BTreeMap::from([(
                "api".parse().unwrap(),
                format!("ghcr.io/acme/api:{tag}").parse().unwrap(),
            )]),
            origin: "test".into(),
        }
    }

    #[test]
    fn the_failing_release_is_recognised_by_full_or_short_sha() {
        let full = "3f2c1a9e0b7d4c5a6f8e9d0c1b2a3f4e5d6c7b8a";
        assert!(is_failing(&candidate(full, full), full));
        assert!(is_failing(&candidate("x", "3f2c1a9"), full));
        assert!(is_failing(&candidate(full, "v1"), "3f2c1a9"));
        assert!(!is_failing(&candidate("1a2b3c4", "1a2b3c4"), full));
    }
}
