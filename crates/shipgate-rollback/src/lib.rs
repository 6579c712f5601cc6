//! The rollback resolver: which images to roll back to, and why.
//!
//! Candidates come from ordered sources ([`CandidateSource`]): the ledger's last known good
//! run, the previous successful run of a publish workflow on GitHub (seed 000's
//! `publish-images.yml`), and a provider's own history. Each candidate is verified before it is
//! chosen: it is not the failing commit, it is *verified good* ([`verify_release`]: the most
//! recent verdict the ledger holds on each of its images for that target passed its gate, see
//! [`GateRecord`]), and every image exists in its registry ([`ImageCheck`], the OCI
//! distribution API). The pipeline's automatic rollback, the dry run and `rollback plan` all
//! choose through this one definition ([`choose_revision`] for one provider's history). The [`Decision`] carries the reason chain: "chose abc1234 from
//! publish-images.yml run #812; skipped def5678 (publish-images.yml run #811): image
//! ghcr.io/acme/api:def5678 missing in its registry".

mod check;
mod error;
#[cfg(feature = "registry")]
mod registry;
mod sources;
#[cfg(feature = "github")]
mod workflow;

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::Serialize;
use shipgate_core::{ImageRef, ServiceName};
pub use shipgate_ledger::GateVerdict;
use shipgate_provider::{Revision, RevisionId, RevisionStatus};

pub use check::{Existence, ImageCheck};
pub use error::{BoxError, RollbackError};
#[cfg(feature = "registry")]
pub use registry::{OciRegistry, RegistryLogin};
pub use sources::{LedgerSource, LedgerVerdicts, ProviderSource};
#[cfg(feature = "github")]
pub use workflow::{ImagesFor, WorkflowSource};

/// A release that could be rolled back to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Candidate {
    /// What identifies it to a person: a commit SHA or tag.
    pub label: String,
    /// Service → image.
    pub images: BTreeMap<ServiceName, ImageRef>,
    /// Where it came from (`publish-images.yml run #812`, `ledger run 20261123T…`).
    pub origin: String,
    /// The one target it belongs to (a provider's history); `None` for a release of every
    /// target (a ledger run, a publish workflow run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

/// A source of candidates, newest first.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait CandidateSource: Send + Sync {
    /// `ledger`, `github-workflow`, `provider`.
    fn name(&self) -> &'static str;
    /// Candidates, newest first; `failing` is the commit or tag being rolled back from.
    async fn candidates(&self, failing: &str) -> Result<Vec<Candidate>, RollbackError>;
}

/// The gate verdicts on record (the ledger's): the evidence behind "verified good".
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait GateRecord: Send + Sync {
    /// The most recent verdict on `image` for each target that ran it.
    async fn verdicts(&self, image: &ImageRef) -> Result<Vec<GateVerdict>, RollbackError>;
}

/// What the record says of a release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verification {
    /// The most recent verdict on each of its images passed its gate.
    Verified,
    /// The most recent verdict on one of its images did not pass its gate: why.
    Failed(String),
    /// None failed, but the record holds no verdict on this image (deployed by another
    /// tool or before this ledger): only the platform's own status speaks for it.
    Unrecorded(String),
}

/// Whether a release is *verified good*, the one definition shipgate uses everywhere: for each
/// image, the most recent verdict on it for `target` (for every target that ran it, when
/// `target` is `None`) passed its gate ([`GateVerdict::passed`]). An older failure does not
/// count against an image that later passed; an older pass does not count for an image that
/// later failed.
pub async fn verify_release<'a>(
    record: &dyn GateRecord,
    target: Option<&str>,
    images: impl IntoIterator<Item = &'a ImageRef>,
) -> Result<Verification, RollbackError> {
    let mut unrecorded = None;
    for image in images {
        let verdicts = record.verdicts(image).await?;
        let mut relevant = verdicts
            .iter()
            .filter(|v| target.is_none_or(|t| v.target == t))
            .peekable();
        if relevant.peek().is_none() {
            unrecorded.get_or_insert_with(|| image.to_string());
            continue;
        }
        if let Some(failed) = relevant.find(|v| !v.passed()) {
            return Ok(Verification::Failed(format!(
                "image {image} did not pass its gate when last {}",
                failed.describe()
            )));
        }
    }
    Ok(unrecorded.map_or(Verification::Verified, Verification::Unrecorded))
}

/// The rollback choice on one target, with its reason chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevisionChoice {
    /// The revision to roll back to, if any.
    pub chosen: Option<Revision>,
    /// One sentence per candidate looked at, the choice last.
    pub reasons: Vec<String>,
}

/// The revisions a rollback from `failing` may go to: those older than it in `history`
/// (newest first). When `failing` is not in the history (a dry run, before the new revision
/// exists), every revision from `live` on, `live` included.
pub fn rollback_candidates<'a>(
    history: &'a [Revision],
    failing: Option<&RevisionId>,
    live: Option<&RevisionId>,
) -> &'a [Revision] {
    let position = |id: &RevisionId| history.iter().position(|r| &r.id == id);
    match (failing.and_then(position), live.and_then(position)) {
        (Some(at), _) => &history[at + 1..],
        (None, Some(at)) => &history[at..],
        (None, None) => &[],
    }
}

/// Chooses the rollback target of one provider: the newest of `candidates` (newest first, see
/// [`rollback_candidates`]) that the platform recorded as healthy (deployed or superseded),
/// that is not recorded as failing its gate ([`verify_release`]; a release the record does
/// not know is used on the platform's word, and the reasons say so), and whose images all
/// still exist when `check` is given (a registry that cannot answer does not block the way
/// back: the platform still holds the revision).
pub async fn choose_revision(
    candidates: &[Revision],
    target: &str,
    record: Option<&dyn GateRecord>,
    check: Option<&dyn ImageCheck>,
) -> RevisionChoice {
    let mut reasons = Vec::new();
    let mut record = record;
    for candidate in candidates {
        if !matches!(
            candidate.status,
            RevisionStatus::Deployed | RevisionStatus::Superseded
        ) {
            continue;
        }
        let mut evidence = "the platform recorded it healthy; no gate verdict on record".to_owned();
        if let Some(gates) = record {
            match verify_release(gates, Some(target), candidate.images.values()).await {
                Ok(Verification::Verified) => {
                    evidence = "its most recent gate verdict on record passed".to_owned();
                }
                Ok(Verification::Failed(why)) => {
                    reasons.push(format!(
                        "{target}: skipped revision {}: {why}",
                        candidate.id
                    ));
                    continue;
                }
                Ok(Verification::Unrecorded(image)) => {
                    evidence = format!(
                        "the platform recorded it healthy; the ledger holds no verdict on {image}"
                    );
                }
                Err(err) => {
                    reasons.push(format!(
                        "{target}: gate verdicts unavailable ({err}); the platform's statuses alone decide"
                    ));
                    record = None;
                }
            }
        }
        if let Some(check) = check {
            let mut missing = None;
            for (image, presence) in registry_presence(check, candidate.images.values()).await {
                match presence {
                    Presence::Present => {}
                    Presence::Missing => missing = Some(image),
                    Presence::Unanswered(err) => reasons.push(format!(
                        "{target}: revision {}: image {image} could not be checked ({err}); used anyway",
                        candidate.id
                    )),
                }
            }
            if let Some(image) = missing {
                reasons.push(format!(
                    "{target}: skipped revision {}: image {image} missing in its registry",
                    candidate.id
                ));
                continue;
            }
        }
        reasons.push(format!(
            "{target}: candidate revision {} ({}): {evidence}",
            candidate.id,
            describe_images(&candidate.images),
        ));
        return RevisionChoice {
            chosen: Some(candidate.clone()),
            reasons,
        };
    }
    reasons.push(format!("{target}: no earlier revision is verified good"));
    RevisionChoice {
        chosen: None,
        reasons,
    }
}

/// `api=ghcr.io/acme/api:v1, worker=…`.
pub fn describe_images(images: &BTreeMap<ServiceName, ImageRef>) -> String {
    images
        .iter()
        .map(|(s, i)| format!("{s}={i}"))
        .collect::<Vec<_>>()
        .join(", ")
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
            Err(e) => Presence::Unanswered(e.to_string()),
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
    record: Option<Box<dyn GateRecord>>,
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
    /// A resolver over `sources` (tried in order), optionally verifying candidates against
    /// the gate verdicts on record and checking registries.
    pub fn new(
        sources: Vec<Box<dyn CandidateSource>>,
        record: Option<Box<dyn GateRecord>>,
        check: Option<Box<dyn ImageCheck>>,
    ) -> Resolver {
        Resolver {
            sources,
            record,
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
        let mut record = self.record.as_deref();
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
                let skipped = match self.verify(&candidate, failing, record).await {
                    Ok(skipped) => skipped,
                    Err(e) => {
                        decision.source_errors.push(format!("ledger verdicts: {e}"));
                        record = None;
                        self.verify(&candidate, failing, None).await.unwrap_or(None)
                    }
                };
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

    /// Why `candidate` is skipped (`None`: chosen); `Err` when the record cannot answer.
    async fn verify(
        &self,
        candidate: &Candidate,
        failing: &str,
        record: Option<&dyn GateRecord>,
    ) -> Result<Option<String>, RollbackError> {
        if candidate.images.is_empty() {
            return Ok(Some("no images recorded".into()));
        }
        if is_failing(candidate, failing) {
            return Ok(Some("it is the failing release".into()));
        }
        if let Some(record) = record
            && let Verification::Failed(why) = verify_release(
                record,
                candidate.target.as_deref(),
                candidate.images.values(),
            )
            .await?
        {
            return Ok(Some(why));
        }
        if let Some(check) = &self.check {
            for (image, presence) in
                registry_presence(check.as_ref(), candidate.images.values()).await
            {
                match presence {
                    Presence::Present => {}
                    Presence::Missing => {
                        return Ok(Some(format!("image {image} missing in its registry")));
                    }
                    Presence::Unanswered(e) => {
                        return Ok(Some(format!("image {image} could not be checked: {e}")));
                    }
                }
            }
        }
        Ok(None)
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
            target: None,
        }
    }

    fn revision(id: &str, tag: &str, status: RevisionStatus) -> Revision {
        Revision {
            id: RevisionId(id.into()),
            images: candidate("x", tag).images,
            status,
            created_at: std::time::SystemTime::UNIX_EPOCH,
            description: String::new(),
        }
    }

    fn verdict(target: &str, run: &str, kind: &str, verdict: &str, outcome: &str) -> GateVerdict {
        GateVerdict {
            target: target.into(),
            image: String::new(),
            run_id: run.into(),
            kind: kind.into(),
            verdict: verdict.into(),
            outcome: Some(outcome.into()),
        }
    }

    /// A record answering from a table of tag → most recent verdicts.
    fn record(table: Vec<(&'static str, Vec<GateVerdict>)>) -> MockGateRecord {
        let mut record = MockGateRecord::new();
        record.expect_verdicts().returning(move |image| {
            Ok(table
                .iter()
                .find(|(tag, _)| image.tag() == Some(*tag))
                .map(|(_, v)| v.clone())
                .unwrap_or_default())
        });
        record
    }

    #[tokio::test]
    async fn the_most_recent_verdict_on_the_target_decides() {
        let history = vec![
            revision("6", "v6", RevisionStatus::Failed),
            revision("5", "v5", RevisionStatus::Superseded),
            revision("4", "v4", RevisionStatus::Superseded),
            revision("3", "v3", RevisionStatus::Superseded),
            revision("2", "v2", RevisionStatus::Superseded),
        ];
        let record = record(vec![
            // v5 failed its gate and the run was interrupted during its rollback.
            (
                "v5",
                vec![verdict("local", "r5", "deploy", "healthy", "aborted")],
            ),
            // v4 failed once for a transient reason, then deployed again and passed (the
            // record holds only the most recent verdict per target).
            (
                "v4",
                vec![verdict("local", "r4b", "deploy", "healthy", "succeeded")],
            ),
        ]);
        let choice = choose_revision(
            rollback_candidates(&history, Some(&RevisionId("6".into())), None),
            "local",
            Some(&record),
            None,
        )
        .await;
        assert_eq!(choice.chosen.unwrap().id.0, "4", "{:#?}", choice.reasons);
        assert!(
            choice.reasons[0].starts_with("local: skipped revision 5: image ghcr.io/acme/api:v5 did not pass its gate when last deployed on local in run r5 (healthy), which ended aborted"),
            "{:#?}",
            choice.reasons
        );
        assert!(choice.reasons[1].ends_with("its most recent gate verdict on record passed"));

        // A verdict on another target does not speak for this one.
        let elsewhere = record_for_other_target();
        let choice = choose_revision(&history[1..], "local", Some(&elsewhere), None).await;
        assert_eq!(choice.chosen.unwrap().id.0, "5");
        assert!(
            choice.reasons[0].contains("the ledger holds no verdict on ghcr.io/acme/api:v5"),
            "{:#?}",
            choice.reasons
        );
    }

    fn record_for_other_target() -> MockGateRecord {
        record(vec![(
            "v5",
            vec![verdict("helm", "r5", "deploy", "failed", "failed")],
        )])
    }

    #[tokio::test]
    async fn a_dry_run_considers_the_live_revision_as_the_real_rollback_will() {
        let history = vec![
            revision("3", "v3", RevisionStatus::Deployed),
            revision("2", "v2", RevisionStatus::Superseded),
        ];
        // Before the deploy the new revision does not exist: the live one is the candidate,
        // exactly what the run will choose once the new revision sits above it.
        let dry = rollback_candidates(&history, None, Some(&RevisionId("3".into())));
        assert_eq!(dry.len(), 2);
        let record = record(Vec::new());
        let choice = choose_revision(dry, "railway", Some(&record), None).await;
        assert_eq!(choice.chosen.unwrap().id.0, "3");
        let mut after = history.clone();
        after.insert(0, revision("4", "v4", RevisionStatus::Failed));
        let real = rollback_candidates(&after, Some(&RevisionId("4".into())), None);
        let choice = choose_revision(real, "railway", Some(&record), None).await;
        assert_eq!(choice.chosen.unwrap().id.0, "3");
        // No evidence at all: nothing to choose.
        assert!(rollback_candidates(&history, None, None).is_empty());
    }

    #[tokio::test]
    async fn a_record_that_cannot_answer_leaves_the_platform_statuses_to_decide() {
        let mut record = MockGateRecord::new();
        record
            .expect_verdicts()
            .times(1)
            .returning(|_| Err(RollbackError::registry("database is locked")));
        let history = vec![revision("2", "v2", RevisionStatus::Superseded)];
        let choice = choose_revision(&history, "fly", Some(&record), None).await;
        assert_eq!(choice.chosen.unwrap().id.0, "2");
        assert!(choice.reasons[0].contains("gate verdicts unavailable (database is locked)"));
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

/// The README's examples, compiled (and run) as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
