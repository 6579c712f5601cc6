//! Candidates from the previous successful runs of a GitHub publish workflow.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::Deserialize;
use shipgate_core::{ImageRef, ServiceName};
use shipgate_github::{GithubClient, GithubError};

use crate::{Candidate, CandidateSource, RollbackError};

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
