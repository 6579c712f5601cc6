//! The candidate sources every build has: the ledger's good runs and a provider's history;
//! and the ledger's gate verdicts.

use async_trait::async_trait;
use shipgate_core::ImageRef;
use shipgate_ledger::Ledger;
use shipgate_provider::{Provider, RevisionStatus};

use crate::{Candidate, CandidateSource, GateRecord, GateVerdict, RollbackError};

/// The ledger's successful runs of this app and environment, newest first.
pub struct LedgerSource {
    /// The ledger.
    pub ledger: Ledger,
    /// The app.
    pub app: String,
    /// The environment.
    pub environment: String,
}

#[async_trait]
impl CandidateSource for LedgerSource {
    fn name(&self) -> &'static str {
        "ledger"
    }

    async fn candidates(&self, _failing: &str) -> Result<Vec<Candidate>, RollbackError> {
        let good = self
            .ledger
            .good_releases(&self.app, &self.environment, 20)
            .await?;
        Ok(good
            .into_iter()
            .map(|(run, images)| Candidate {
                label: run.image_tag.clone(),
                images: images
                    .into_iter()
                    .filter_map(|(s, i)| Some((s.parse().ok()?, i.parse().ok()?)))
                    .collect(),
                origin: format!("ledger run {}", run.id),
                target: None,
            })
            .collect())
    }
}

/// The ledger's gate verdicts of this app and environment.
pub struct LedgerVerdicts {
    /// The ledger.
    pub ledger: Ledger,
    /// The app.
    pub app: String,
    /// The environment.
    pub environment: String,
}

#[async_trait]
impl GateRecord for LedgerVerdicts {
    async fn verdicts(&self, image: &ImageRef) -> Result<Vec<GateVerdict>, RollbackError> {
        self.ledger
            .gate_verdicts(&self.app, &self.environment, &image.to_string())
            .await
            .map_err(RollbackError::from)
    }
}

/// A provider's own history: revisions that were live, newest first.
pub struct ProviderSource {
    /// The target's name (`helm`, `railway:api`).
    pub target: String,
    /// The provider.
    pub provider: Box<dyn Provider>,
}

#[async_trait]
impl CandidateSource for ProviderSource {
    fn name(&self) -> &'static str {
        "provider"
    }

    async fn candidates(&self, _failing: &str) -> Result<Vec<Candidate>, RollbackError> {
        let history = self.provider.history().await?;
        Ok(history
            .into_iter()
            .filter(|r| {
                matches!(
                    r.status,
                    RevisionStatus::Deployed | RevisionStatus::Superseded
                )
            })
            .map(|r| Candidate {
                label: r
                    .images
                    .values()
                    .next()
                    .and_then(|i| i.tag().map(str::to_owned))
                    .unwrap_or_else(|| r.id.to_string()),
                images: r.images,
                origin: format!("{} revision {}", self.target, r.id),
                target: Some(self.target.clone()),
            })
            .collect())
    }
}
