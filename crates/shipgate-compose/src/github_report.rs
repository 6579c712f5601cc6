//! What `deploy` tells GitHub when `[notify] github_deployments` / `github_pr_comment` are on: a deployment
//! for the exact commit with an `in_progress` status before anything changes, the final
//! status after, and one sticky comment with the summary on the pull request that merged the
//! commit. Reporting never changes the deploy's outcome: a GitHub failure is a warning.

use std::time::{Duration, Instant};

use shipgate_config::Config;
use shipgate_github::{DeploymentState, GithubClient, NewDeployment, StatusUpdate};
use shipgate_pipeline::{Outcome, Summary};

use crate::{ActionsContext, ComposeError};

/// Where warnings go: reporting never changes a deploy's outcome.
type Warn<'a> = &'a (dyn Fn(String) + Send + Sync);

/// A started report.
pub(crate) struct Reporter {
    client: GithubClient,
    repository: String,
    sha: String,
    deployment: Option<u64>,
    pr_comment: bool,
    environment: String,
    environment_url: Option<String>,
    log_url: Option<String>,
    server_url: String,
}

fn deadline() -> Instant {
    Instant::now() + Duration::from_secs(60)
}

impl Reporter {
    /// Creates the deployment (when enabled) with an `in_progress` status. `None` when neither
    /// feature is on; an error when they are on but cannot work (no repository, token, SHA).
    pub(crate) async fn start(
        config: &Config,
        client: GithubClient,
        sha: String,
        environment: String,
        production: bool,
        actions: &ActionsContext,
        warn: Warn<'_>,
    ) -> Result<Reporter, ComposeError> {
        let repository = config.github.repository.clone().ok_or_else(|| ComposeError::setup(
            "[notify] github_deployments / github_pr_comment need the repository: set [github] repository or GITHUB_REPOSITORY",
        ))?;
        let mut reporter = Reporter {
            client,
            repository,
            sha,
            deployment: None,
            pr_comment: config.notify.github_pr_comment,
            environment,
            environment_url: config.github.environment_url.clone(),
            log_url: actions.run_url(),
            server_url: actions
                .server_url
                .clone()
                .unwrap_or_else(|| "https://github.com".to_owned()),
        };
        if config.notify.github_deployments {
            let new = NewDeployment {
                sha: reporter.sha.clone(),
                environment: reporter.environment.clone(),
                description: format!("shipgate deploy of {}", &reporter.sha[..7]),
                required_contexts: Vec::new(),
                production,
            };
            match reporter
                .client
                .create_deployment(&reporter.repository, &new, deadline())
                .await
            {
                Ok(id) => {
                    reporter.deployment = Some(id);
                    reporter
                        .status(DeploymentState::InProgress, "deploying", warn)
                        .await;
                }
                Err(err) => warn(format!("GitHub deployment not recorded: {err}")),
            }
        }
        Ok(reporter)
    }

    /// The link to the GitHub deployment, once created.
    pub(crate) fn link(&self) -> Option<shipgate_pipeline::Link> {
        self.deployment.map(|id| shipgate_pipeline::Link {
            label: format!("GitHub deployment {id}"),
            url: format!("{}/{}/deployments", self.server_url, self.repository),
        })
    }

    async fn status(&self, state: DeploymentState, description: &str, warn: Warn<'_>) {
        let Some(id) = self.deployment else {
            return;
        };
        let update = StatusUpdate {
            state,
            description: description.to_owned(),
            environment_url: self.environment_url.clone(),
            log_url: self.log_url.clone(),
        };
        if let Err(err) = self
            .client
            .deployment_status(&self.repository, id, &update, deadline())
            .await
        {
            warn(format!("GitHub deployment status not posted: {err}"));
        }
    }

    /// Posts the final status and the PR comment; returns the link to the pull request it
    /// commented on.
    pub(crate) async fn finish(
        &self,
        summary: &Summary,
        markdown: &str,
        warn: Warn<'_>,
    ) -> Option<shipgate_pipeline::Link> {
        let state = match summary.outcome {
            Outcome::Succeeded => DeploymentState::Success,
            Outcome::Aborted | Outcome::LockTimeout | Outcome::Superseded => DeploymentState::Error,
            Outcome::Failed
            | Outcome::RolledBack
            | Outcome::RollbackFailed
            | Outcome::Unhealthy => DeploymentState::Failure,
            // An outcome added later: GitHub's `error` says the deploy did not complete.
            _ => DeploymentState::Error,
        };
        self.status(
            state,
            &format!("{}: {}", summary.outcome.as_str(), summary.message),
            warn,
        )
        .await;
        if !self.pr_comment {
            return None;
        }
        let pr = match self
            .client
            .pull_request_for_commit(&self.repository, &self.sha, deadline())
            .await
        {
            Ok(Some(pr)) => pr,
            Ok(None) => return None, // a direct push: no pull request to comment on
            Err(err) => {
                warn(format!("GitHub pull request lookup failed: {err}"));
                return None;
            }
        };
        let marker = format!("<!-- shipgate:deploy {} -->", self.environment);
        if let Err(err) = self
            .client
            .upsert_sticky_comment(&self.repository, pr.number, &marker, markdown, deadline())
            .await
        {
            warn(format!("GitHub PR comment not posted: {err}"));
        }
        Some(shipgate_pipeline::Link {
            label: format!("Pull request #{}", pr.number),
            url: pr.html_url,
        })
    }
}
