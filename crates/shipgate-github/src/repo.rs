//! What the pipeline and the monitor write to GitHub: deployments and their statuses, the
//! pull request of a merged commit, one sticky comment per pull request, and alert issues
//! (create with labels verified, find an open one for de-duplication, comment, close).

use std::time::Instant;

use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{GithubClient, GithubError};

/// GitHub limits deployment status descriptions to 140 characters.
pub const STATUS_DESCRIPTION_MAX: usize = 140;

/// A deployment to create for an exact commit.
#[derive(Debug, Clone)]
pub struct NewDeployment {
    /// The full commit SHA.
    pub sha: String,
    /// The environment name (`production`, `staging`).
    pub environment: String,
    /// A short description.
    pub description: String,
    /// Status contexts GitHub must see green first; empty (the default) because shipgate runs
    /// its own CI gate.
    pub required_contexts: Vec<String>,
    /// Whether the environment is production.
    pub production: bool,
}

/// A deployment status state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeploymentState {
    /// Being deployed.
    InProgress,
    /// Live and healthy.
    Success,
    /// The release failed.
    Failure,
    /// shipgate could not finish (an infrastructure error).
    Error,
    /// Superseded.
    Inactive,
}

impl DeploymentState {
    fn as_str(self) -> &'static str {
        match self {
            DeploymentState::InProgress => "in_progress",
            DeploymentState::Success => "success",
            DeploymentState::Failure => "failure",
            DeploymentState::Error => "error",
            DeploymentState::Inactive => "inactive",
        }
    }
}

/// A status to post on a deployment.
#[derive(Debug, Clone)]
pub struct StatusUpdate {
    /// The state.
    pub state: DeploymentState,
    /// What happened (cut to 140 characters).
    pub description: String,
    /// The live app's URL.
    pub environment_url: Option<String>,
    /// The CI run's URL.
    pub log_url: Option<String>,
}

/// An issue as shipgate uses it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Issue {
    /// Its number.
    pub number: u64,
    /// Its title.
    pub title: String,
    /// Its URL.
    pub html_url: String,
    /// Label names it carries.
    #[serde(default, deserialize_with = "label_names")]
    pub labels: Vec<String>,
}

fn label_names<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let labels: Vec<Value> = Vec::deserialize(d)?;
    Ok(labels
        .into_iter()
        .filter_map(|l| match l {
            Value::String(name) => Some(name),
            other => other["name"].as_str().map(str::to_owned),
        })
        .collect())
}

/// A created issue, and the labels GitHub dropped (it drops them silently when the token
/// lacks push access, which breaks label-based de-duplication).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedIssue {
    /// The issue.
    pub issue: Issue,
    /// Labels asked for but missing on the created issue.
    pub dropped_labels: Vec<String>,
}

/// A pull request.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PullRequest {
    /// Its number.
    pub number: u64,
    /// Its URL.
    pub html_url: String,
    /// Its title.
    pub title: String,
    /// The merge commit, when merged.
    #[serde(default)]
    pub merge_commit_sha: Option<String>,
    /// When it was merged.
    #[serde(default)]
    pub merged_at: Option<String>,
}

/// Whether a sticky comment was created or updated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sticky {
    /// A new comment (its id).
    Created(u64),
    /// The existing comment with the marker (its id).
    Updated(u64),
}

/// Cuts `text` to `max` characters, ending with `…` when cut.
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

fn unexpected(path: &str, e: impl std::fmt::Display) -> GithubError {
    GithubError::Unavailable {
        path: path.to_owned(),
        message: format!("unexpected response: {e}"),
    }
}

impl GithubClient {
    /// Creates a deployment of `deployment.sha` (`auto_merge: false`: shipgate deploys the
    /// exact commit) and returns its id.
    pub async fn create_deployment(
        &self,
        repository: &str,
        deployment: &NewDeployment,
        deadline: Instant,
    ) -> Result<u64, GithubError> {
        let path = format!("repos/{repository}/deployments");
        let body = json!({
            "ref": deployment.sha,
            "task": "deploy",
            "auto_merge": false,
            "required_contexts": deployment.required_contexts,
            "environment": deployment.environment,
            "description": truncate(&deployment.description, STATUS_DESCRIPTION_MAX),
            "production_environment": deployment.production,
        });
        let answer = self.send(Method::POST, &path, &body, deadline).await?;
        answer["id"].as_u64().ok_or_else(|| {
            unexpected(
                &path,
                answer["message"].as_str().unwrap_or("no deployment id"),
            )
        })
    }

    /// Posts a status on deployment `id`.
    pub async fn deployment_status(
        &self,
        repository: &str,
        id: u64,
        update: &StatusUpdate,
        deadline: Instant,
    ) -> Result<(), GithubError> {
        let mut body = json!({
            "state": update.state.as_str(),
            "description": truncate(&update.description, STATUS_DESCRIPTION_MAX),
        });
        if let Some(url) = &update.environment_url {
            body["environment_url"] = json!(url);
        }
        if let Some(url) = &update.log_url {
            body["log_url"] = json!(url);
        }
        let path = format!("repos/{repository}/deployments/{id}/statuses");
        self.send(Method::POST, &path, &body, deadline).await?;
        Ok(())
    }

    /// The merged pull request that introduced `sha`, if any (none for direct pushes).
    pub async fn pull_request_for_commit(
        &self,
        repository: &str,
        sha: &str,
        deadline: Instant,
    ) -> Result<Option<PullRequest>, GithubError> {
        let path = format!("repos/{repository}/commits/{sha}/pulls");
        let (pulls, _): (Vec<PullRequest>, _) = self.get(&path, deadline).await?;
        Ok(pulls
            .iter()
            .find(|p| p.merged_at.is_some() && p.merge_commit_sha.as_deref() == Some(sha))
            .or_else(|| pulls.first())
            .cloned())
    }

    /// Creates or updates the one comment on issue or PR `number` that contains `marker` (a
    /// hidden HTML comment such as `<!-- shipgate:deploy production -->`), so each deploy
    /// refreshes one comment instead of adding another.
    pub async fn upsert_sticky_comment(
        &self,
        repository: &str,
        number: u64,
        marker: &str,
        body: &str,
        deadline: Instant,
    ) -> Result<Sticky, GithubError> {
        #[derive(Deserialize)]
        struct Comment {
            id: u64,
            #[serde(default)]
            body: Option<String>,
        }
        let text = format!("{marker}\n{body}");
        let list_path = format!("repos/{repository}/issues/{number}/comments?per_page=100");
        let comments: Vec<Comment> = self
            .get_all(&list_path, deadline, |v| v.as_array().cloned())
            .await?;
        if let Some(existing) = comments
            .iter()
            .find(|c| c.body.as_deref().is_some_and(|b| b.contains(marker)))
        {
            let path = format!("repos/{repository}/issues/comments/{}", existing.id);
            self.send(Method::PATCH, &path, &json!({"body": text}), deadline)
                .await?;
            return Ok(Sticky::Updated(existing.id));
        }
        let path = format!("repos/{repository}/issues/{number}/comments");
        let created = self
            .send(Method::POST, &path, &json!({"body": text}), deadline)
            .await?;
        created["id"]
            .as_u64()
            .map(Sticky::Created)
            .ok_or_else(|| unexpected(&path, "no comment id"))
    }

    /// The open issue (never a pull request) carrying `label` whose title is `title`, for
    /// de-duplicating alerts.
    pub async fn find_open_issue(
        &self,
        repository: &str,
        label: &str,
        title: &str,
        deadline: Instant,
    ) -> Result<Option<Issue>, GithubError> {
        let label: String = url::form_urlencoded::byte_serialize(label.as_bytes()).collect();
        let path = format!("repos/{repository}/issues?state=open&labels={label}&per_page=100");
        let items: Vec<Value> = self
            .get_all(&path, deadline, |v| v.as_array().cloned())
            .await?;
        items
            .into_iter()
            .filter(|i| i.get("pull_request").is_none())
            .map(|i| serde_json::from_value::<Issue>(i).map_err(|e| unexpected(&path, e)))
            .find(|i| i.as_ref().map_or(true, |i| i.title == title))
            .transpose()
    }

    /// Opens an issue and reports the labels GitHub dropped.
    pub async fn create_issue(
        &self,
        repository: &str,
        title: &str,
        body: &str,
        labels: &[String],
        deadline: Instant,
    ) -> Result<CreatedIssue, GithubError> {
        let path = format!("repos/{repository}/issues");
        let answer = self
            .send(
                Method::POST,
                &path,
                &json!({"title": title, "body": body, "labels": labels}),
                deadline,
            )
            .await?;
        let issue: Issue = serde_json::from_value(answer).map_err(|e| unexpected(&path, e))?;
        let dropped_labels = labels
            .iter()
            .filter(|l| !issue.labels.contains(l))
            .cloned()
            .collect();
        Ok(CreatedIssue {
            issue,
            dropped_labels,
        })
    }

    /// Comments on issue or PR `number`; returns the comment id.
    pub async fn comment(
        &self,
        repository: &str,
        number: u64,
        body: &str,
        deadline: Instant,
    ) -> Result<u64, GithubError> {
        let path = format!("repos/{repository}/issues/{number}/comments");
        let answer = self
            .send(Method::POST, &path, &json!({"body": body}), deadline)
            .await?;
        answer["id"]
            .as_u64()
            .ok_or_else(|| unexpected(&path, "no comment id"))
    }

    /// Closes issue `number`.
    pub async fn close_issue(
        &self,
        repository: &str,
        number: u64,
        deadline: Instant,
    ) -> Result<(), GithubError> {
        let path = format!("repos/{repository}/issues/{number}");
        self.send(
            Method::PATCH,
            &path,
            &json!({"state": "closed", "state_reason": "completed"}),
            deadline,
        )
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_are_cut_to_140_characters() {
        assert_eq!(truncate("short", 140), "short");
        let long = "é".repeat(200);
        let cut = truncate(&long, STATUS_DESCRIPTION_MAX);
        assert_eq!(cut.chars().count(), 140);
        assert!(cut.ends_with('…'));
    }
}
