//! The candidate sources: the ledger, a GitHub publish workflow, a provider's history.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::Deserialize;
use shipgate_core::{ImageRef, ServiceName};
use shipgate_github::{GithubClient, GithubError};
use shipgate_ledger::Ledger;
use shipgate_provider::{Provider, RevisionStatus};

use crate::{Candidate, CandidateSource, GateRecord, GateVerdict, RollbackError};

/// Maps a commit SHA (or tag) to the images built from it.
pub type ImagesFor = Box<
    dyn Fn(&str) -> Result<BTreeMap<ServiceName, ImageRef>, shipgate_core::ImageRefError>
        + Send
        + Sync,
>;

/// The previous successful runs of a publish workflow (seed 000's `publish-images.yml`) on a
/// branch, newest first by run number; each run's `head_sha` names the images.
pub struct WorkflowSource {
    /// The client.
    pub client: GithubClient,
    /// `OWNER/NAME`.
    pub repository: String,
    /// The workflow file name (`publish-images.yml`) or ID.
    pub workflow: String,
    /// Only runs of this branch (the default branch when `None`).
    pub branch: Option<String>,
    /// SHA → images.
    pub images: ImagesFor,
}

#[derive(Deserialize)]
struct WorkflowRun {
    head_sha: String,
    run_number: u64,
    #[serde(default)]
    conclusion: Option<String>,
    #[serde(default)]
    event: Option<String>,
}

#[async_trait]
impl CandidateSource for WorkflowSource {
    fn name(&self) -> &'static str {
        "github-workflow"
    }

    async fn candidates(&self, _failing: &str) -> Result<Vec<Candidate>, RollbackError> {
        let deadline = Instant::now() + Duration::from_secs(60);
        let (repository, workflow) = (&self.repository, &self.workflow);
        // A wrong file name is a configuration error, not "no candidates".
        let _: (serde_json::Value, _) = self
            .client
            .get(&format!("repos/{repository}/actions/workflows/{workflow}"), deadline)
            .await
            .map_err(|e| match e {
                GithubError::NotFound { .. } => RollbackError::source_caused(
                    format!(
                        "workflow `{workflow}` does not exist in {repository}; set [rollback] workflow to a file under .github/workflows"
                    ),
                    e,
                ),
                other => RollbackError::Github(other),
            })?;
        let mut path = format!(
            "repos/{repository}/actions/workflows/{workflow}/runs?status=success&exclude_pull_requests=true&per_page=50"
        );
        if let Some(branch) = &self.branch {
            let branch: String = url::form_urlencoded::byte_serialize(branch.as_bytes()).collect();
            path.push_str(&format!("&branch={branch}"));
        }
        let (page, _): (serde_json::Value, _) = self.client.get(&path, deadline).await?;
        let mut runs: Vec<WorkflowRun> = serde_json::from_value(page["workflow_runs"].clone())
            .map_err(|e| {
                RollbackError::source_caused(format!("unexpected workflow runs: {e}"), e)
            })?;
        // Re-check the conclusion client-side and order by run number ourselves.
        runs.retain(|r| {
            r.conclusion.as_deref() == Some("success") && r.event.as_deref() != Some("pull_request")
        });
        runs.sort_by_key(|r| std::cmp::Reverse(r.run_number));
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for run in runs {
            if !seen.insert(run.head_sha.clone()) {
                continue;
            }
            out.push(Candidate {
                label: run.head_sha[..run.head_sha.len().min(12)].to_owned(),
                images: (self.images)(&run.head_sha)?,
                origin: format!("{workflow} run #{}", run.run_number),
                target: None,
            });
        }
        Ok(out)
    }
}

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
