//! A loopback fake of Railway's public GraphQL API, checked against Railway's schema.
//!
//! Every request's document is validated against `specs/railway/schema.json` and every answer
//! is cut to the operation's selection and type-checked against the same schema; a mismatch is
//! recorded in [`FakeRailway::violations`] (tests assert it stays empty) and answered with a
//! GraphQL error. Behaviour follows `shared/notes/railway.md`: the two token headers, project
//! tokens bound to one environment, `errors[]` on HTTP 200, 429 with `Retry-After` in seconds,
//! `X-RateLimit-*` on every answer, statuses that move one step per poll, `SUCCESS` replacing
//! the previous live deployment (which becomes `REMOVED`), `deploymentRollback` answering a
//! Boolean and creating a new deployment.
//!
//! Images decide how a deployment ends: a name containing `unhealthy` crashes after starting,
//! `approval` stops at `NEEDS_APPROVAL`, `slow` never leaves `DEPLOYING`, `stale` goes live
//! with the previous image (Railway re-running the old image), `crash-after-success` reaches
//! `SUCCESS` (replacing the live deployment) and crashes one poll later, `crash-replacing`
//! removes the live deployment as soon as it starts deploying and then crashes (Railway does
//! not document whether a crashed deployment has already replaced the previous one, so the
//! fake models the case where it has); anything else succeeds.
//!
//! A GitHub-sourced service (`web`, repo `acme/web`) deploys commits: `serviceInstanceDeployV2`
//! with a `commitSha` the repo has ([`FakeRailway::push_commit`]) builds it (`BUILDING` first)
//! and reports `meta.commitHash`; an unknown SHA is refused with "Commit not found", and no SHA
//! deploys the newest commit. A commit's outcome label works as an image name does above
//! (`stale`: the deployment that goes live built the previous live commit).
//!
//! As on Railway, `deploymentRollback` creates a new deployment of the earlier image but leaves
//! the service's configured `source.image` as it was (naming the failed image), so a later
//! redeploy would bring the failed image back unless the caller restores it.
//! `serviceInstance.activeDeployments` lists the deployments live now.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

use crate::graphql::railway_schema;
use crate::serve;

/// Which token the fake accepts.
#[derive(Debug, Clone)]
pub enum FakeToken {
    /// A project token bound to (project ID, environment ID).
    Project(String, String, String),
    /// An account token that sees every workspace.
    Account(String),
}

#[derive(Debug, Clone)]
struct Service {
    id: String,
    name: String,
    project: String,
    repo: Option<String>,
    image: HashMap<String, String>,
    /// Commits of the connected repo, oldest first, with their outcome labels.
    commits: Vec<(String, String)>,
}

#[derive(Debug, Clone)]
struct Deployment {
    id: String,
    service: String,
    environment: String,
    /// What runs (`meta.image`).
    image: Option<String>,
    /// The commit built (`meta.commitHash`), for GitHub-sourced services.
    commit: Option<String>,
    status: &'static str,
    steps: Vec<&'static str>,
    seq: u64,
    /// Removes the live deployment as soon as it starts deploying.
    replaces_on_start: bool,
}

#[derive(Debug, Default)]
struct World {
    workspaces: Vec<(String, String)>,
    /// (id, name, workspace id, deleted)
    projects: Vec<(String, String, String, bool)>,
    /// (id, name, project id, can access)
    environments: Vec<(String, String, String, bool)>,
    services: Vec<Service>,
    deployments: Vec<Deployment>,
    variables: HashMap<(String, String), BTreeMap<String, String>>,
    seq: u64,
    rate_limit_next: u32,
    fail_events: bool,
    violations: Vec<String>,
    calls: Vec<(String, Value)>,
}

/// The fake. Cheap to clone; clones share the world.
#[derive(Clone)]
pub struct FakeRailway {
    token: FakeToken,
    world: Arc<Mutex<World>>,
}

impl std::fmt::Debug for FakeRailway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FakeRailway")
    }
}

impl FakeRailway {
    /// A world with workspace `Acme` (`ws-acme`) holding project `shop` (`proj-shop`) with
    /// environments `production` (`env-prod`) and `staging` (`env-stg`), services `api`
    /// (`svc-api`, image-sourced), `worker` (`svc-worker`, image-sourced) and `web`
    /// (`svc-web`, deploying from GitHub repo `acme/web`); and workspace `Side` (`ws-side`)
    /// with another project called `Shop` (`proj-shop-2`), for ambiguous names.
    pub fn new(token: FakeToken) -> FakeRailway {
        let service = |id: &str, name: &str, repo: Option<&str>| Service {
            id: id.into(),
            name: name.into(),
            project: "proj-shop".into(),
            repo: repo.map(str::to_owned),
            image: HashMap::new(),
            commits: Vec::new(),
        };
        let w = World {
            workspaces: vec![
                ("ws-acme".into(), "Acme".into()),
                ("ws-side".into(), "Side".into()),
            ],
            projects: vec![
                ("proj-shop".into(), "shop".into(), "ws-acme".into(), false),
                ("proj-shop-2".into(), "Shop".into(), "ws-side".into(), false),
                ("proj-old".into(), "old".into(), "ws-acme".into(), true),
            ],
            environments: vec![
                (
                    "env-prod".into(),
                    "production".into(),
                    "proj-shop".into(),
                    true,
                ),
                ("env-stg".into(), "staging".into(), "proj-shop".into(), true),
                (
                    "env-prod-2".into(),
                    "production".into(),
                    "proj-shop-2".into(),
                    true,
                ),
            ],
            services: vec![
                service("svc-api", "api", None),
                service("svc-worker", "worker", None),
                service("svc-web", "web", Some("acme/web")),
            ],
            ..World::default()
        };
        FakeRailway {
            token,
            world: Arc::new(Mutex::new(w)),
        }
    }

    /// Answers the next `n` requests with 429 and `Retry-After: 1`.
    pub fn rate_limit_next(&self, n: u32) {
        self.world.lock().unwrap().rate_limit_next = n;
    }

    /// Makes every `deploymentEvents` query fail (a Railway error), as seen in the field.
    pub fn fail_events(&self) {
        self.world.lock().unwrap().fail_events = true;
    }

    /// The image a service's configuration names in an environment (`source.image`): what a
    /// redeploy would run.
    pub fn source_image(&self, environment: &str, service: &str) -> Option<String> {
        let w = self.world.lock().unwrap();
        w.services
            .iter()
            .find(|s| s.id == service)
            .and_then(|s| s.image.get(environment).cloned())
    }

    /// Adds a commit to a GitHub-sourced service's repo; `outcome` decides how a deployment
    /// of it ends, as image names do (`ok`, `unhealthy`, `crash-after-success`, `stale`…).
    pub fn push_commit(&self, service: &str, sha: &str, outcome: &str) {
        let mut w = self.world.lock().unwrap();
        let s = w.services.iter_mut().find(|s| s.id == service).unwrap();
        assert!(s.repo.is_some(), "{service} is not GitHub-sourced");
        s.commits.push((sha.to_owned(), outcome.to_owned()));
    }

    /// The commit live for a GitHub-sourced service in an environment.
    pub fn live_commit(&self, environment: &str, service: &str) -> Option<String> {
        let w = self.world.lock().unwrap();
        w.deployments
            .iter()
            .rev()
            .find(|d| d.environment == environment && d.service == service && d.status == "SUCCESS")
            .and_then(|d| d.commit.clone())
    }

    /// Schema violations seen so far (documents or answers); must stay empty.
    pub fn violations(&self) -> Vec<String> {
        self.world.lock().unwrap().violations.clone()
    }

    /// Operations received, in order, with their variables.
    pub fn calls(&self) -> Vec<(String, Value)> {
        self.world.lock().unwrap().calls.clone()
    }

    /// The image live for a service in an environment (its newest `SUCCESS` deployment).
    pub fn live_image(&self, environment: &str, service: &str) -> Option<String> {
        let w = self.world.lock().unwrap();
        w.deployments
            .iter()
            .rev()
            .find(|d| d.environment == environment && d.service == service && d.status == "SUCCESS")
            .and_then(|d| d.image.clone())
    }

    /// A service's variables in an environment.
    pub fn variables(&self, environment: &str, service: &str) -> BTreeMap<String, String> {
        self.world
            .lock()
            .unwrap()
            .variables
            .get(&(environment.to_owned(), service.to_owned()))
            .cloned()
            .unwrap_or_default()
    }

    /// Serves it; returns the GraphQL endpoint URL.
    pub async fn start(self) -> String {
        let addr = serve(
            Router::new()
                .route("/graphql/v2", post(railway_graphql))
                .with_state(self),
        )
        .await;
        format!("http://{addr}/graphql/v2")
    }
}

/// Who the caller is.
enum Caller {
    /// Bound to (project, environment).
    Project(String, String),
    Account,
}

fn gql_error(message: &str) -> Response {
    (
        StatusCode::OK,
        axum::Json(
            json!({"data": null, "errors": [{"message": message, "locations": [], "path": []}]}),
        ),
    )
        .into_response()
}

fn with_rate_headers(response: Response) -> Response {
    let mut response = response;
    let headers = response.headers_mut();
    headers.insert("x-ratelimit-limit", "1000".parse().unwrap());
    headers.insert("x-ratelimit-remaining", "999".parse().unwrap());
    headers.insert("x-ratelimit-reset", "2026-11-23T11:00:00Z".parse().unwrap());
    response
}

async fn railway_graphql(
    State(fake): State<FakeRailway>,
    headers: HeaderMap,
    body: String,
) -> Response {
    {
        let mut w = fake.world.lock().unwrap();
        if w.rate_limit_next > 0 {
            w.rate_limit_next -= 1;
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", "1")],
                axum::Json(json!({"errors": [{"message": "You are being ratelimited"}]})),
            )
                .into_response();
        }
    }
    with_rate_headers(answer(&fake, &headers, &body))
}

fn answer(fake: &FakeRailway, headers: &HeaderMap, body: &str) -> Response {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let project_header = header("project-access-token");
    let bearer = header("authorization").and_then(|v| v.strip_prefix("Bearer ").map(str::to_owned));
    if project_header.is_some() && bearer.is_some() {
        fake.world
            .lock()
            .unwrap()
            .violations
            .push("both token headers sent".into());
    }
    let caller = match (&fake.token, project_header, bearer) {
        (FakeToken::Project(token, project, env), Some(sent), None) if &sent == token => {
            Caller::Project(project.clone(), env.clone())
        }
        (_, Some(_), _) => return gql_error("Project Token not found"),
        (FakeToken::Account(token), None, Some(sent)) if &sent == token => Caller::Account,
        _ => return gql_error("Not Authorized"),
    };

    let request: Value = match serde_json::from_str(body) {
        Ok(v) => v,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("not JSON: {e}")).into_response(),
    };
    let query = request["query"].as_str().unwrap_or_default();
    let name = request["operationName"].as_str().map(str::to_owned);
    let vars = request["variables"].clone();
    let schema = railway_schema();
    let document = match schema.validate(query) {
        Ok(doc) => doc,
        Err(errors) => {
            let message = format!("{name:?}: invalid document: {errors}");
            fake.world.lock().unwrap().violations.push(message.clone());
            return gql_error(&message);
        }
    };
    let mut w = fake.world.lock().unwrap();
    let op = name.clone().unwrap_or_default();
    w.calls.push((op.clone(), vars.clone()));
    let full = match resolve(&mut w, &caller, &op, &vars) {
        Ok(full) => full,
        Err(message) => return gql_error(&message),
    };
    let data = schema.select(&document, name.as_deref(), &full);
    if let Err(problem) = schema.check_data(&document, name.as_deref(), &data) {
        w.violations
            .push(format!("{op}: answer does not fit the schema: {problem}"));
    }
    axum::Json(json!({"data": data})).into_response()
}

fn var(vars: &Value, key: &str) -> String {
    vars[key].as_str().unwrap_or_default().to_owned()
}

fn timestamp(seq: u64) -> String {
    format!("2026-11-23T10:{:02}:{:02}.000Z", (seq / 60) % 60, seq % 60)
}

fn deployment_json(d: &Deployment) -> Value {
    let running = d.status == "SUCCESS";
    json!({
        "id": d.id,
        "status": d.status,
        "createdAt": timestamp(d.seq),
        "canRollback": d.status == "SUCCESS" || d.status == "REMOVED",
        "deploymentStopped": false,
        "meta": match (&d.image, &d.commit) {
            (_, Some(commit)) => json!({"commitHash": commit, "branch": "main", "repo": "acme/web"}),
            (Some(image), None) => json!({"image": image}),
            (None, None) => Value::Null,
        },
        "instances": [{"id": format!("{}-i0", d.id), "status": if running { "RUNNING" } else if d.status == "CRASHED" { "CRASHED" } else { "INITIALIZING" }}],
    })
}

fn check_scope(caller: &Caller, project: &str, environment: Option<&str>) -> Result<(), String> {
    match caller {
        Caller::Project(p, e) if p != project || environment.is_some_and(|env| env != e) => {
            Err("Not Authorized".into())
        }
        _ => Ok(()),
    }
}

fn outcome_steps(image: &str) -> Vec<&'static str> {
    if image.contains("crash-after-success") {
        vec!["INITIALIZING", "DEPLOYING", "SUCCESS", "CRASHED"]
    } else if image.contains("unhealthy") || image.contains("crash-replacing") {
        vec!["INITIALIZING", "DEPLOYING", "DEPLOYING", "CRASHED"]
    } else if image.contains("approval") {
        vec!["QUEUED", "NEEDS_APPROVAL"]
    } else if image.contains("slow") {
        vec!["INITIALIZING", "DEPLOYING"]
    } else {
        vec!["INITIALIZING", "DEPLOYING", "SUCCESS"]
    }
}

/// What a new deployment runs: an image (its name decides how it ends), or a commit of a
/// GitHub-sourced service (built first; its outcome label decides how it ends).
enum Source<'a> {
    Image(&'a str),
    Commit { sha: &'a str, outcome: &'a str },
}

fn create_deployment(
    w: &mut World,
    service: &str,
    environment: &str,
    source: &Source<'_>,
) -> String {
    w.seq += 1;
    let seq = w.seq;
    let live_before =
        w.deployments.iter().rev().find(|d| {
            d.service == service && d.environment == environment && d.status == "SUCCESS"
        });
    let (label, image, commit, mut steps) = match source {
        Source::Image(image) => {
            let before = live_before.and_then(|d| d.image.clone());
            let runs = if image.contains("stale") {
                before.unwrap_or_else(|| (*image).to_owned())
            } else {
                (*image).to_owned()
            };
            (*image, Some(runs), None, Vec::new())
        }
        Source::Commit { sha, outcome } => {
            let before = live_before.and_then(|d| d.commit.clone());
            let built = if outcome.contains("stale") {
                before.unwrap_or_else(|| (*sha).to_owned())
            } else {
                (*sha).to_owned()
            };
            (*outcome, None, Some(built), vec!["BUILDING"])
        }
    };
    steps.extend(outcome_steps(label));
    let id = format!("dep-{seq}");
    w.deployments.push(Deployment {
        id: id.clone(),
        service: service.to_owned(),
        environment: environment.to_owned(),
        image,
        commit,
        status: steps[0],
        steps: steps[1..].to_vec(),
        seq,
        replaces_on_start: label.contains("crash-replacing"),
    });
    id
}

/// Marks every other live deployment of the service in the environment `REMOVED`.
fn remove_live_others(w: &mut World, index: usize) {
    let (id, service, environment) = (
        w.deployments[index].id.clone(),
        w.deployments[index].service.clone(),
        w.deployments[index].environment.clone(),
    );
    for other in &mut w.deployments {
        if other.id != id
            && other.service == service
            && other.environment == environment
            && other.status == "SUCCESS"
        {
            other.status = "REMOVED";
        }
    }
}

/// Moves a deployment one step on; on SUCCESS the previous live one becomes REMOVED.
fn advance(w: &mut World, id: &str) {
    let Some(index) = w.deployments.iter().position(|d| d.id == id) else {
        return;
    };
    if w.deployments[index].steps.is_empty() {
        return;
    }
    let next = w.deployments[index].steps.remove(0);
    w.deployments[index].status = next;
    if next == "SUCCESS" || (next == "DEPLOYING" && w.deployments[index].replaces_on_start) {
        remove_live_others(w, index);
    }
}

fn find_deployment(w: &World, id: &str) -> Result<Deployment, String> {
    w.deployments
        .iter()
        .find(|d| d.id == id)
        .cloned()
        .ok_or_else(|| "Deployment not found".to_owned())
}

fn resolve(w: &mut World, caller: &Caller, op: &str, vars: &Value) -> Result<Value, String> {
    match op {
        "ProjectToken" => match caller {
            Caller::Project(project, env) => {
                let p = w
                    .projects
                    .iter()
                    .find(|p| &p.0 == project)
                    .cloned()
                    .unwrap_or_default();
                let e = w
                    .environments
                    .iter()
                    .find(|e| &e.0 == env)
                    .cloned()
                    .unwrap_or_default();
                Ok(
                    json!({"projectToken": {"projectId": project, "environmentId": env, "project": {"id": p.0, "name": p.1}, "environment": {"id": e.0, "name": e.1}}}),
                )
            }
            Caller::Account => Err("Project Token not found".into()),
        },
        "ApiTokenWorkspaces" => match caller {
            Caller::Account => Ok(
                json!({"apiToken": {"workspaces": w.workspaces.iter().map(|(id, name)| json!({"id": id, "name": name})).collect::<Vec<_>>()}}),
            ),
            Caller::Project(..) => Err("Not Authorized".into()),
        },
        "WorkspaceProjects" => {
            if matches!(caller, Caller::Project(..)) {
                return Err("Not Authorized".into());
            }
            let ws = var(vars, "workspaceId");
            let edges: Vec<Value> = w.projects.iter().filter(|p| p.2 == ws).map(|p| json!({"node": {"id": p.0, "name": p.1, "deletedAt": if p.3 { json!("2026-01-01T00:00:00Z") } else { Value::Null }}})).collect();
            Ok(
                json!({"projects": {"edges": edges, "pageInfo": {"hasNextPage": false, "endCursor": null}}}),
            )
        }
        "ProjectTopology" => {
            let id = var(vars, "projectId");
            let Some(p) = w.projects.iter().find(|p| p.0 == id).cloned() else {
                return Err("Project not found".into());
            };
            check_scope(caller, &p.0, None)?;
            let envs: Vec<Value> = w.environments.iter().filter(|e| e.2 == p.0).map(|e| json!({"node": {"id": e.0, "name": e.1, "canAccess": e.3, "deletedAt": null}})).collect();
            let services: Vec<Value> = w
                .services
                .iter()
                .filter(|s| s.project == p.0)
                .map(|s| json!({"node": {"id": s.id, "name": s.name}}))
                .collect();
            Ok(
                json!({"project": {"id": p.0, "name": p.1, "deletedAt": if p.3 { json!("2026-01-01T00:00:00Z") } else { Value::Null }, "environments": {"edges": envs}, "services": {"edges": services}}}),
            )
        }
        "ServiceInstance" | "ActiveDeployments" => {
            let (env, svc) = (var(vars, "environmentId"), var(vars, "serviceId"));
            let s = w
                .services
                .iter()
                .find(|s| s.id == svc)
                .cloned()
                .ok_or("Service not found")?;
            check_scope(caller, &s.project, Some(&env))?;
            if !w
                .environments
                .iter()
                .any(|e| e.0 == env && e.2 == s.project)
            {
                return Err("ServiceInstance not found".into());
            }
            let image = s.image.get(&env).cloned();
            let mine: Vec<&Deployment> = w
                .deployments
                .iter()
                .filter(|d| d.service == svc && d.environment == env)
                .collect();
            let active: Vec<Value> = mine
                .iter()
                .filter(|d| d.status == "SUCCESS")
                .map(|d| deployment_json(d))
                .collect();
            let latest = mine.last().map(|d| deployment_json(d));
            Ok(
                json!({"serviceInstance": {"id": format!("{svc}-{env}"), "serviceName": s.name, "source": {"image": image, "repo": s.repo}, "activeDeployments": active, "latestDeployment": latest}}),
            )
        }
        "SetImage" => {
            let (env, svc) = (var(vars, "environmentId"), var(vars, "serviceId"));
            if env.is_empty() {
                w.violations.push(
                    "serviceInstanceUpdate without environmentId updates every environment".into(),
                );
            }
            let image = vars["input"]["source"]["image"]
                .as_str()
                .ok_or("input.source.image is required")?
                .to_owned();
            let s = w
                .services
                .iter_mut()
                .find(|s| s.id == svc)
                .ok_or("Service not found")?;
            check_scope(caller, &s.project, Some(&env))?;
            s.image.insert(env, image);
            Ok(json!({"serviceInstanceUpdate": true}))
        }
        "ServiceDisconnect" => {
            let svc = var(vars, "id");
            let s = w
                .services
                .iter_mut()
                .find(|s| s.id == svc)
                .ok_or("Service not found")?;
            s.repo = None;
            Ok(json!({"serviceDisconnect": {"id": svc}}))
        }
        "DeployV2" | "DeployCommit" => {
            let (env, svc) = (var(vars, "environmentId"), var(vars, "serviceId"));
            let s = w
                .services
                .iter()
                .find(|s| s.id == svc)
                .cloned()
                .ok_or("Service not found")?;
            check_scope(caller, &s.project, Some(&env))?;
            let sha = vars["commitSha"].as_str().map(str::to_owned);
            if s.repo.is_some() {
                let (commit, outcome) = match &sha {
                    Some(sha) => s
                        .commits
                        .iter()
                        .find(|(c, _)| c == sha)
                        .cloned()
                        .ok_or("Commit not found")?,
                    None => s.commits.last().cloned().ok_or("No commits found")?,
                };
                let id = create_deployment(
                    w,
                    &svc,
                    &env,
                    &Source::Commit {
                        sha: &commit,
                        outcome: &outcome,
                    },
                );
                return Ok(json!({"serviceInstanceDeployV2": id}));
            }
            if sha.is_some() {
                w.violations
                    .push("commitSha sent for an image-sourced service (meaningless)".into());
            }
            let image = s
                .image
                .get(&env)
                .cloned()
                .ok_or("service has no source to deploy")?;
            let id = create_deployment(w, &svc, &env, &Source::Image(&image));
            Ok(json!({"serviceInstanceDeployV2": id}))
        }
        "Deployment" => {
            let id = var(vars, "id");
            advance(w, &id);
            let d = w
                .deployments
                .iter()
                .find(|d| d.id == id)
                .ok_or("Deployment not found")?;
            Ok(json!({"deployment": deployment_json(d)}))
        }
        "Deployments" => {
            let input = (var(vars, "environmentId"), var(vars, "serviceId"));
            let edges: Vec<Value> = w
                .deployments
                .iter()
                .rev()
                .filter(|d| d.environment == input.0 && d.service == input.1)
                .map(|d| json!({"node": deployment_json(d)}))
                .collect();
            Ok(json!({"deployments": {"edges": edges}}))
        }
        "Rollback" => {
            let id = var(vars, "id");
            let d = find_deployment(w, &id)?;
            if !(d.status == "SUCCESS" || d.status == "REMOVED") {
                return Err("Cannot rollback to this deployment".into());
            }
            // A new deployment of the earlier image (or commit); the service's configured
            // source is left as it was.
            let source = match (&d.commit, &d.image) {
                (Some(sha), _) => Source::Commit { sha, outcome: "ok" },
                (None, image) => Source::Image(image.as_deref().unwrap_or_default()),
            };
            create_deployment(w, &d.service, &d.environment, &source);
            Ok(json!({"deploymentRollback": true}))
        }
        "Cancel" => {
            let id = var(vars, "id");
            let d = w
                .deployments
                .iter_mut()
                .find(|d| d.id == id)
                .ok_or("Deployment not found")?;
            if !matches!(d.status, "SUCCESS" | "FAILED" | "CRASHED" | "REMOVED") {
                d.status = "REMOVED";
                d.steps.clear();
            }
            Ok(json!({"deploymentCancel": true}))
        }
        "UpsertVariables" => {
            let input = &vars["input"];
            if input["skipDeploys"] != json!(true) {
                w.violations.push(
                    "variableCollectionUpsert without skipDeploys: true races the deploy".into(),
                );
            }
            let key = (var(input, "environmentId"), var(input, "serviceId"));
            let values: BTreeMap<String, String> = input["variables"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect();
            w.variables.entry(key).or_default().extend(values);
            Ok(json!({"variableCollectionUpsert": true}))
        }
        "DeploymentLogs" => {
            let id = var(vars, "deploymentId");
            let d = find_deployment(w, &id)?;
            let secrets: Vec<String> = w
                .variables
                .get(&(d.environment.clone(), d.service.clone()))
                .map(|v| v.values().cloned().collect())
                .unwrap_or_default();
            let mut lines = vec![format!("starting {}", d.image.clone().unwrap_or_default())];
            if d.status == "CRASHED" {
                lines.push(format!(
                    "connecting with password {}",
                    secrets.first().cloned().unwrap_or_default()
                ));
                lines.push("Error: connection refused; exit code 1".into());
            }
            let logs: Vec<Value> = lines.into_iter().map(|m| json!({"timestamp": timestamp(d.seq), "message": m, "severity": "info", "attributes": []})).collect();
            Ok(json!({"deploymentLogs": logs}))
        }
        "DeploymentEvents" => {
            if w.fail_events {
                return Err("Problem processing request".into());
            }
            let id = var(vars, "id");
            let d = find_deployment(w, &id)?;
            let error = (d.status == "CRASHED")
                .then_some("Healthcheck failed: /healthz never answered 200");
            Ok(
                json!({"deploymentEvents": {"edges": [{"node": {"id": format!("{id}-ev"), "step": "HEALTHCHECK", "createdAt": timestamp(d.seq), "completedAt": null, "payload": {"error": error, "reason": null, "detail": null}}}]}}),
            )
        }
        other => {
            w.violations
                .push(format!("operation {other} is not modelled by the fake"));
            Err(format!("unknown operation {other}"))
        }
    }
}
