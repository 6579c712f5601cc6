//! The write side of the fake GitHub: issues (listing by label returns pull requests too, as
//! GitHub does), comments (create, list, update), closing, the pull request of a commit, and
//! deployments with statuses. Answers are GitHub's own example bodies adapted per call.
//! Protocol rules GitHub documents are checked and recorded in [`RepoState::violations`]:
//! `auto_merge: false` on deployments, status descriptions of at most 140 characters. Writes
//! less than a second apart (GitHub's advice is per token, whichever process sends them) are
//! answered as GitHub enforces it, with a secondary rate limit (`403`, `retry-after: 1`),
//! and counted in [`RepoState::throttled`].

use std::sync::MutexGuard;
use std::time::Instant;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use serde_json::{Value, json};

use crate::fakes::{FakeGithub, github_examples, github_guard};

/// A workflow run: (head SHA, run number, conclusion, branch).
pub type WorkflowRun = (String, u64, String, String);

/// What the fake repository holds.
#[derive(Debug, Default)]
pub struct RepoState {
    /// Issues by number (each the example `issue` body, adapted). Pull requests listed as
    /// issues carry a `pull_request` key.
    pub issues: Vec<Value>,
    /// (issue number, comment body) by comment id − 1.
    pub comments: Vec<(u64, String)>,
    /// Merged pull request number for a commit SHA.
    pub pulls: Vec<(String, u64)>,
    /// Created deployments (request bodies).
    pub deployments: Vec<Value>,
    /// (deployment id, status request body).
    pub deployment_statuses: Vec<(u64, Value)>,
    /// Workflow file name → its runs.
    pub workflows: Vec<(String, Vec<WorkflowRun>)>,
    /// Drop labels on issue creation, as GitHub does for a token without push access.
    pub drop_labels: bool,
    /// Labels the repository has (`GET /repos/{o}/{r}/labels/{name}`; others answer 404).
    pub labels: Vec<String>,
    /// The scopes of a classic personal access token, sent as `X-OAuth-Scopes` with each
    /// label answered (GitHub sends it on every answer to such a token); `None`: a
    /// GITHUB_TOKEN or app token, which has no such header.
    pub oauth_scopes: Option<String>,
    /// Rule breaks seen.
    pub violations: Vec<String>,
    /// Writes refused with a secondary rate limit for coming less than a second after the
    /// previous write with the same token.
    pub throttled: u32,
    /// Refuse the next write with a secondary rate limit whatever its timing, as GitHub does
    /// when another process with the same token has just written.
    pub throttle_next_write: bool,
    last_write: Option<Instant>,
}

pub(crate) fn routes() -> Router<FakeGithub> {
    Router::new()
        .route("/repos/{owner}/{repo}/labels/{name}", get(label))
        .route("/repos/{owner}/{repo}/commits/{sha}/pulls", get(pulls))
        .route(
            "/repos/{owner}/{repo}/issues",
            get(list_issues).post(create_issue),
        )
        .route("/repos/{owner}/{repo}/issues/{number}", patch(update_issue))
        .route(
            "/repos/{owner}/{repo}/issues/{number}/comments",
            get(list_comments).post(create_comment),
        )
        .route(
            "/repos/{owner}/{repo}/issues/comments/{id}",
            patch(update_comment),
        )
        .route(
            "/repos/{owner}/{repo}/actions/workflows/{workflow}",
            get(workflow),
        )
        .route(
            "/repos/{owner}/{repo}/actions/workflows/{workflow}/runs",
            get(workflow_runs),
        )
        .route("/repos/{owner}/{repo}/deployments", post(create_deployment))
        .route(
            "/repos/{owner}/{repo}/deployments/{id}/statuses",
            post(create_status),
        )
}

/// A label of the repository (`issues/get-label`), or 404.
async fn label(
    State(gh): State<FakeGithub>,
    Path((owner, repo, name)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    let state = match read(&gh, &owner, &repo, &headers) {
        Ok(state) => state,
        Err(refused) => return *refused,
    };
    if !state.labels.contains(&name) {
        return (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"message": "Not Found", "documentation_url": "https://docs.github.com/rest/issues/labels#get-a-label", "status": "404"})),
        )
            .into_response();
    }
    let mut body = example("issue")["labels"][0].clone();
    body["name"] = json!(name);
    match &state.oauth_scopes {
        Some(scopes) => ([("x-oauth-scopes", scopes.clone())], axum::Json(body)).into_response(),
        None => axum::Json(body).into_response(),
    }
}

fn example(name: &str) -> Value {
    github_examples()[name]["value"].clone()
}

/// Checks the token and repository, then locks the repository state.
fn read<'a>(
    gh: &'a FakeGithub,
    owner: &str,
    repo: &str,
    headers: &HeaderMap,
) -> Result<MutexGuard<'a, RepoState>, Box<Response>> {
    match github_guard(gh, owner, repo, headers) {
        Some(refused) => Err(Box::new(refused)),
        None => Ok(gh.repo.lock().unwrap()),
    }
}

/// As [`read`], for a write: one less than a second after the previous accepted write is
/// refused with GitHub's secondary rate limit answer.
fn write<'a>(
    gh: &'a FakeGithub,
    owner: &str,
    repo: &str,
    headers: &HeaderMap,
) -> Result<MutexGuard<'a, RepoState>, Box<Response>> {
    let mut state = read(gh, owner, repo, headers)?;
    let now = Instant::now();
    let too_soon = state
        .last_write
        .is_some_and(|last| now.duration_since(last).as_millis() < 1_000);
    if too_soon || std::mem::take(&mut state.throttle_next_write) {
        state.throttled += 1;
        let body = json!({
            "message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
            "documentation_url": "https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api#about-secondary-rate-limits",
        });
        return Err(Box::new(
            (
                StatusCode::FORBIDDEN,
                [("retry-after", "1")],
                axum::Json(body),
            )
                .into_response(),
        ));
    }
    state.last_write = Some(now);
    Ok(state)
}

fn comment_json(id: usize, number: u64, body: &str) -> Value {
    let mut c = example("issue-comment");
    c["id"] = json!(id);
    c["body"] = json!(body);
    c["issue_url"] = json!(format!("https://api.github.com/repos/o/r/issues/{number}"));
    c
}

async fn pulls(
    State(gh): State<FakeGithub>,
    Path((owner, repo, sha)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    let state = match read(&gh, &owner, &repo, &headers) {
        Ok(state) => state,
        Err(refused) => return *refused,
    };
    let list: Vec<Value> = state
        .pulls
        .iter()
        .filter(|(s, _)| *s == sha)
        .map(|(_, number)| {
            let mut pr = example("pull-request-simple-items")[0].clone();
            pr["number"] = json!(number);
            pr["merge_commit_sha"] = json!(sha);
            pr["merged_at"] = json!("2026-11-23T10:00:00Z");
            pr["html_url"] = json!(format!("https://github.com/{owner}/{repo}/pull/{number}"));
            pr
        })
        .collect();
    axum::Json(Value::Array(list)).into_response()
}

async fn list_issues(
    State(gh): State<FakeGithub>,
    Path((owner, repo)): Path<(String, String)>,
    Query(query): Query<std::collections::HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let state = match read(&gh, &owner, &repo, &headers) {
        Ok(state) => state,
        Err(refused) => return *refused,
    };
    let wanted: Vec<&str> = query
        .get("labels")
        .map(|l| l.split(',').collect())
        .unwrap_or_default();
    let state_filter = query.get("state").map_or("open", String::as_str);
    let list: Vec<Value> = state
        .issues
        .iter()
        .filter(|i| state_filter == "all" || i["state"] == state_filter)
        .filter(|i| {
            wanted.iter().all(|w| {
                i["labels"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|l| l["name"] == *w)
            })
        })
        .cloned()
        .collect();
    axum::Json(Value::Array(list)).into_response()
}

async fn create_issue(
    State(gh): State<FakeGithub>,
    Path((owner, repo)): Path<(String, String)>,
    headers: HeaderMap,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    let mut state = match write(&gh, &owner, &repo, &headers) {
        Ok(state) => state,
        Err(refused) => return *refused,
    };
    let number = state.issues.len() as u64 + 1;
    let mut issue = example("issue");
    issue["number"] = json!(number);
    issue["title"] = body["title"].clone();
    issue["body"] = body["body"].clone();
    issue["state"] = json!("open");
    issue["html_url"] = json!(format!("https://github.com/{owner}/{repo}/issues/{number}"));
    if let Some(map) = issue.as_object_mut() {
        map.remove("pull_request");
    }
    let template = example("issue")["labels"][0].clone();
    let labels: Vec<Value> = if state.drop_labels {
        Vec::new()
    } else {
        body["labels"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|name| {
                let mut label = template.clone();
                label["name"] = name.clone();
                label
            })
            .collect()
    };
    issue["labels"] = Value::Array(labels);
    state.issues.push(issue.clone());
    (StatusCode::CREATED, axum::Json(issue)).into_response()
}

async fn update_issue(
    State(gh): State<FakeGithub>,
    Path((owner, repo, number)): Path<(String, String, u64)>,
    headers: HeaderMap,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    let mut state = match write(&gh, &owner, &repo, &headers) {
        Ok(state) => state,
        Err(refused) => return *refused,
    };
    let Some(issue) = state.issues.iter_mut().find(|i| i["number"] == number) else {
        return (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"message": "Not Found"})),
        )
            .into_response();
    };
    if let Some(s) = body.get("state") {
        issue["state"] = s.clone();
    }
    axum::Json(issue.clone()).into_response()
}

async fn list_comments(
    State(gh): State<FakeGithub>,
    Path((owner, repo, number)): Path<(String, String, u64)>,
    headers: HeaderMap,
) -> Response {
    let state = match read(&gh, &owner, &repo, &headers) {
        Ok(state) => state,
        Err(refused) => return *refused,
    };
    let list: Vec<Value> = state
        .comments
        .iter()
        .enumerate()
        .filter(|(_, (n, _))| *n == number)
        .map(|(i, (n, body))| comment_json(i + 1, *n, body))
        .collect();
    axum::Json(Value::Array(list)).into_response()
}

async fn create_comment(
    State(gh): State<FakeGithub>,
    Path((owner, repo, number)): Path<(String, String, u64)>,
    headers: HeaderMap,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    let mut state = match write(&gh, &owner, &repo, &headers) {
        Ok(state) => state,
        Err(refused) => return *refused,
    };
    let text = body["body"].as_str().unwrap_or_default().to_owned();
    state.comments.push((number, text.clone()));
    let id = state.comments.len();
    (
        StatusCode::CREATED,
        axum::Json(comment_json(id, number, &text)),
    )
        .into_response()
}

async fn update_comment(
    State(gh): State<FakeGithub>,
    Path((owner, repo, id)): Path<(String, String, usize)>,
    headers: HeaderMap,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    let mut state = match write(&gh, &owner, &repo, &headers) {
        Ok(state) => state,
        Err(refused) => return *refused,
    };
    let Some(comment) = id.checked_sub(1).and_then(|i| state.comments.get_mut(i)) else {
        return (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"message": "Not Found"})),
        )
            .into_response();
    };
    comment.1 = body["body"].as_str().unwrap_or_default().to_owned();
    let (number, text) = comment.clone();
    axum::Json(comment_json(id, number, &text)).into_response()
}

async fn create_deployment(
    State(gh): State<FakeGithub>,
    Path((owner, repo)): Path<(String, String)>,
    headers: HeaderMap,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    let mut state = match write(&gh, &owner, &repo, &headers) {
        Ok(state) => state,
        Err(refused) => return *refused,
    };
    if body["auto_merge"] != json!(false) {
        state.violations.push("deployment without auto_merge: false (GitHub would merge the default branch into the ref)".into());
    }
    state.deployments.push(body.clone());
    let id = state.deployments.len() as u64;
    let mut deployment = example("deployment-simple-example");
    deployment["id"] = json!(id);
    deployment["sha"] = body["ref"].clone();
    deployment["ref"] = body["ref"].clone();
    deployment["environment"] = body["environment"].clone();
    (StatusCode::CREATED, axum::Json(deployment)).into_response()
}

async fn create_status(
    State(gh): State<FakeGithub>,
    Path((owner, repo, id)): Path<(String, String, u64)>,
    headers: HeaderMap,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    let mut state = match write(&gh, &owner, &repo, &headers) {
        Ok(state) => state,
        Err(refused) => return *refused,
    };
    if body["description"]
        .as_str()
        .is_some_and(|d| d.chars().count() > 140)
    {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            axum::Json(json!({"message": "Validation Failed", "errors": [{"field": "description", "code": "too_long"}]})),
        )
            .into_response();
    }
    state.deployment_statuses.push((id, body.clone()));
    let mut status = example("deployment-status");
    status["state"] = body["state"].clone();
    status["description"] = body["description"].clone();
    (StatusCode::CREATED, axum::Json(status)).into_response()
}

async fn workflow(
    State(gh): State<FakeGithub>,
    Path((owner, repo, file)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    let state = match read(&gh, &owner, &repo, &headers) {
        Ok(state) => state,
        Err(refused) => return *refused,
    };
    if !state.workflows.iter().any(|(f, _)| *f == file) {
        return (StatusCode::NOT_FOUND, axum::Json(json!({"message": "Not Found", "documentation_url": "https://docs.github.com/rest/actions/workflows#get-a-workflow"}))).into_response();
    }
    let mut body = example("workflow");
    body["path"] = json!(format!(".github/workflows/{file}"));
    axum::Json(body).into_response()
}

/// Runs of a workflow, filtered by `status` (a conclusion) and `branch` as GitHub does, in
/// an order that is not by run number (clients must sort).
async fn workflow_runs(
    State(gh): State<FakeGithub>,
    Path((owner, repo, file)): Path<(String, String, String)>,
    Query(query): Query<std::collections::HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let state = match read(&gh, &owner, &repo, &headers) {
        Ok(state) => state,
        Err(refused) => return *refused,
    };
    let template = example("workflow-run-paginated")["workflow_runs"][0].clone();
    let runs: Vec<Value> = state
        .workflows
        .iter()
        .filter(|(f, _)| *f == file)
        .flat_map(|(_, runs)| runs.iter())
        .filter(|(_, _, conclusion, _)| query.get("status").is_none_or(|s| s == conclusion))
        .filter(|(_, _, _, branch)| query.get("branch").is_none_or(|b| b == branch))
        .map(|(sha, number, conclusion, branch)| {
            let mut run = template.clone();
            run["head_sha"] = json!(sha);
            run["run_number"] = json!(number);
            run["conclusion"] = json!(conclusion);
            run["status"] = json!("completed");
            run["head_branch"] = json!(branch);
            run["event"] = json!("push");
            run
        })
        .collect();
    axum::Json(json!({"total_count": runs.len(), "workflow_runs": runs})).into_response()
}
