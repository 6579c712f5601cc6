//! Loopback fakes of remote secret stores, following their documented HTTP APIs.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use crate::serve;

/// (namespace, kind) -> listed objects.
pub type Objects = Arc<Mutex<HashMap<(String, String), Vec<Value>>>>;

/// (mount, path) -> versions, oldest first.
type Versions = Arc<Mutex<HashMap<(String, String), Vec<Value>>>>;

/// Vault's KV v2 read endpoint (`GET /v1/{mount}/data/{path}`), as documented: `X-Vault-Token`
/// required (403 `{"errors":["permission denied"]}` otherwise), `X-Vault-Namespace` selects a
/// namespace, `?version=N`, 404 `{"errors":[]}` for a missing path, `data.data` and
/// `data.metadata` on success. `sealed_for` answers 503 `{"errors":["Vault is sealed"]}` that
/// many times first.
#[derive(Clone)]
pub struct FakeVault {
    /// The one token it accepts.
    pub token: String,
    /// The namespace requests must name, if any.
    pub namespace: Option<String>,
    /// The stored secrets.
    pub secrets: Versions,
    /// Answer 503 "Vault is sealed" this many times first.
    pub sealed_for: Arc<AtomicU32>,
    /// Echo the token in 403 bodies, like a misbehaving proxy.
    pub echo_token: bool,
}

impl FakeVault {
    /// A fake accepting `token`.
    pub fn new(token: &str) -> FakeVault {
        FakeVault {
            token: token.to_owned(),
            namespace: None,
            secrets: Arc::default(),
            sealed_for: Arc::new(AtomicU32::new(0)),
            echo_token: false,
        }
    }

    /// Stores a new version of `mount`/`path`.
    pub fn put(&self, mount: &str, path: &str, data: Value) {
        self.secrets
            .lock()
            .unwrap()
            .entry((mount.to_owned(), path.to_owned()))
            .or_default()
            .push(data);
    }

    /// Serves it on a loopback port.
    pub async fn start(self) -> SocketAddr {
        serve(
            Router::new()
                .route("/v1/{mount}/data/{*path}", get(vault_read))
                .with_state(self),
        )
        .await
    }
}

async fn vault_read(
    State(vault): State<FakeVault>,
    Path((mount, path)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let errors = |status: StatusCode, errors: Vec<String>| {
        (status, axum::Json(json!({ "errors": errors }))).into_response()
    };
    if vault.sealed_for.load(Ordering::SeqCst) > 0 {
        vault.sealed_for.fetch_sub(1, Ordering::SeqCst);
        return errors(
            StatusCode::SERVICE_UNAVAILABLE,
            vec!["Vault is sealed".into()],
        );
    }
    let token = headers
        .get("x-vault-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if token != vault.token {
        let mut list = vec!["permission denied".to_owned()];
        if vault.echo_token {
            list.push(format!("token {token} is not valid"));
        }
        return errors(StatusCode::FORBIDDEN, list);
    }
    let namespace = headers
        .get("x-vault-namespace")
        .and_then(|v| v.to_str().ok());
    if namespace != vault.namespace.as_deref() {
        return errors(StatusCode::NOT_FOUND, Vec::new());
    }
    let secrets = vault.secrets.lock().unwrap();
    let Some(versions) = secrets.get(&(mount, path)) else {
        return errors(StatusCode::NOT_FOUND, Vec::new());
    };
    let version = match query.get("version").map(|v| v.parse::<usize>()) {
        None => versions.len(),
        Some(Ok(v)) if v >= 1 && v <= versions.len() => v,
        Some(_) => return errors(StatusCode::NOT_FOUND, Vec::new()),
    };
    axum::Json(json!({
        "request_id": "4f3e6b9c-0000-4000-8000-000000000000",
        "lease_id": "",
        "renewable": false,
        "lease_duration": 0,
        "data": {
            "data": versions[version - 1],
            "metadata": {
                "created_time": "2026-11-23T10:00:00.000000Z",
                "custom_metadata": null,
                "deletion_time": "",
                "destroyed": false,
                "version": version
            }
        },
        "wrap_info": null,
        "warnings": null,
        "auth": null
    }))
    .into_response()
}

/// The Kubernetes API's Secret read (`GET /api/v1/namespaces/{ns}/secrets/{name}`): a bearer
/// token, `data` values base64, `Status` objects for 403 and 404.
#[derive(Clone)]
pub struct FakeKube {
    /// The one bearer token it accepts.
    pub token: String,
    /// (namespace, name) -> Secret object.
    pub secrets: Arc<Mutex<HashMap<(String, String), Value>>>,
    /// (namespace, kind) -> objects listed by `GET …/{kind}` (`deployments`, `statefulsets`,
    /// `pods`); equality label selectors (`a=b,c=d`) are applied.
    pub objects: Objects,
    /// (namespace, pod) -> its log.
    pub logs: Arc<Mutex<HashMap<(String, String), String>>>,
    /// (namespace, name) -> Job, as created; its status moves on when it is read (see
    /// [`FakeKube::start`]).
    pub jobs: Arc<Mutex<HashMap<(String, String), Value>>>,
    /// Argo Rollouts: Rollout objects, their controller, and the service proxy to their pods.
    pub argo: crate::argo::FakeArgo,
    /// Namespaces that exist (`GET /api/v1/namespaces/{name}`; others answer 404).
    pub namespaces: Arc<Mutex<std::collections::BTreeSet<String>>>,
    /// (verb, resource) the identity may not do: SelfSubjectAccessReviews of them answer
    /// `allowed: false` (every other review is allowed).
    pub denied: Arc<Mutex<std::collections::BTreeSet<(String, String)>>>,
}

impl FakeKube {
    /// A fake accepting `token`.
    pub fn new(token: &str) -> FakeKube {
        FakeKube {
            token: token.to_owned(),
            secrets: Arc::default(),
            objects: Arc::default(),
            logs: Arc::default(),
            jobs: Arc::default(),
            argo: crate::argo::FakeArgo::default(),
            namespaces: Arc::default(),
            denied: Arc::default(),
        }
    }

    /// Makes namespace `name` exist.
    pub fn namespace(&self, name: &str) -> &Self {
        self.namespaces.lock().unwrap().insert(name.to_owned());
        self
    }

    /// Denies `verb` on `resource` (`patch`, `deployments`) to the identity.
    pub fn deny(&self, verb: &str, resource: &str) -> &Self {
        self.denied
            .lock()
            .unwrap()
            .insert((verb.to_owned(), resource.to_owned()));
        self
    }

    /// Stores a Secret (`data` is base64-encoded as the API does).
    pub fn put(
        &self,
        namespace: &str,
        name: &str,
        data: &[(&str, &str)],
        string_data: &[(&str, &str)],
    ) {
        use base64::Engine;
        let encode = |v: &str| base64::engine::general_purpose::STANDARD.encode(v);
        let data: serde_json::Map<String, Value> = data
            .iter()
            .map(|(k, v)| ((*k).to_owned(), json!(encode(v))))
            .collect();
        let string_data: serde_json::Map<String, Value> = string_data
            .iter()
            .map(|(k, v)| ((*k).to_owned(), json!(v)))
            .collect();
        let mut secret = json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": { "name": name, "namespace": namespace, "resourceVersion": "1" },
            "type": "Opaque",
            "data": data,
        });
        if !string_data.is_empty() {
            secret["stringData"] = Value::Object(string_data);
        }
        self.secrets
            .lock()
            .unwrap()
            .insert((namespace.to_owned(), name.to_owned()), secret);
    }

    /// Serves it on a loopback port.
    pub async fn start(self) -> SocketAddr {
        serve(
            Router::new()
                .route("/api/v1/namespaces/{ns}", get(kube_namespace))
                .route("/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", axum::routing::post(kube_access_review))
                .route("/api/v1/namespaces/{ns}/secrets/{name}", get(kube_read))
                .route("/apis/apps/v1/namespaces/{ns}/{kind}", get(kube_list))
                .route("/api/v1/namespaces/{ns}/{kind}", get(kube_list))
                .route("/api/v1/namespaces/{ns}/pods/{name}/log", get(kube_log))
                .route("/apis/batch/v1/namespaces/{ns}/jobs", axum::routing::post(kube_job_create))
                .route("/apis/batch/v1/namespaces/{ns}/jobs/{name}", get(kube_job_read).delete(kube_job_delete))
                .route("/apis/argoproj.io/v1alpha1/namespaces/{ns}/rollouts/{name}", get(crate::argo::rollout).patch(crate::argo::rollout))
                .route("/apis/argoproj.io/v1alpha1/namespaces/{ns}/rollouts/{name}/status", get(crate::argo::rollout_status).patch(crate::argo::rollout_status))
                .route("/api/v1/namespaces/{ns}/services/{name}/proxy/{*path}", axum::routing::any(crate::argo::service_proxy))
                .route("/api/v1/namespaces/{ns}/services/{name}/proxy", axum::routing::any(crate::argo::service_proxy))
                .route("/version", get(|| async { axum::Json(json!({"major": "1", "minor": "33", "gitVersion": "v1.33.0", "platform": "linux/amd64"})) }))
                .route("/api", get(|| async { axum::Json(json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]})) }))
                .route("/apis", get(|| async { axum::Json(json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": []})) }))
                .route("/api/v1", get(|| async { axum::Json(json!({"kind": "APIResourceList", "groupVersion": "v1", "resources": [
                    {"name": "configmaps", "singularName": "configmap", "namespaced": true, "kind": "ConfigMap", "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"]}
                ]})) }))
                .with_state(self),
        )
        .await
    }

    /// A kubeconfig for this server, with the token as credentials.
    pub fn kubeconfig(addr: SocketAddr, token: &str) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: http://{addr}\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: smoke\ncurrent-context: fake\nusers:\n- name: smoke\n  user:\n    token: {token}\n"
        )
    }
}

pub(crate) fn status(code: u16, reason: &str, message: String) -> Response {
    let body = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code
    });
    (StatusCode::from_u16(code).unwrap(), axum::Json(body)).into_response()
}

async fn kube_namespace(
    State(kube): State<FakeKube>,
    Path(ns): Path<String>,
    headers: HeaderMap,
) -> Response {
    if !authorised(&kube, &headers) {
        return status(
            403,
            "Forbidden",
            format!("namespaces \"{ns}\" is forbidden"),
        );
    }
    if !kube.namespaces.lock().unwrap().contains(&ns) {
        return status(404, "NotFound", format!("namespaces \"{ns}\" not found"));
    }
    axum::Json(json!({"kind": "Namespace", "apiVersion": "v1", "metadata": {"name": ns, "resourceVersion": "1"}, "status": {"phase": "Active"}})).into_response()
}

/// A SelfSubjectAccessReview: `allowed` unless the (verb, resource) was denied. The review is
/// not stored (as on a real API server).
async fn kube_access_review(
    State(kube): State<FakeKube>,
    headers: HeaderMap,
    axum::Json(mut review): axum::Json<Value>,
) -> Response {
    if !authorised(&kube, &headers) {
        return status(401, "Unauthorized", "Unauthorized".to_owned());
    }
    let attributes = &review["spec"]["resourceAttributes"];
    let key = (
        attributes["verb"].as_str().unwrap_or_default().to_owned(),
        attributes["resource"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    );
    let allowed = !kube.denied.lock().unwrap().contains(&key);
    review["status"] = if allowed {
        json!({"allowed": true, "reason": "RBAC: allowed by RoleBinding \"deployer\""})
    } else {
        json!({"allowed": false, "reason": ""})
    };
    (StatusCode::CREATED, axum::Json(review)).into_response()
}

pub(crate) fn authorised(kube: &FakeKube, headers: &HeaderMap) -> bool {
    let expected = format!("Bearer {}", kube.token);
    headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(expected.as_str())
}

async fn kube_list(
    State(kube): State<FakeKube>,
    Path((ns, kind)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if !authorised(&kube, &headers) {
        return status(403, "Forbidden", format!("{kind} is forbidden"));
    }
    let items = kube
        .objects
        .lock()
        .unwrap()
        .get(&(ns, kind.clone()))
        .cloned()
        .unwrap_or_default();
    // Equality selectors (`job-name=x,app=y`), the only kind shipgate sends.
    let selector: Vec<(String, String)> = query
        .get("labelSelector")
        .map(|s| {
            s.split(',')
                .filter_map(|p| p.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect()
        })
        .unwrap_or_default();
    let items: Vec<Value> = items
        .into_iter()
        .filter(|item| {
            selector
                .iter()
                .all(|(k, v)| item["metadata"]["labels"][k] == v.as_str())
        })
        .collect();
    let list_kind = match kind.as_str() {
        "deployments" => "DeploymentList",
        "statefulsets" => "StatefulSetList",
        "pods" => "PodList",
        _ => "List",
    };
    let api_version = if kind == "pods" { "v1" } else { "apps/v1" };
    axum::Json(json!({"kind": list_kind, "apiVersion": api_version, "metadata": {"resourceVersion": "1"}, "items": items})).into_response()
}

/// Creates a Job; its pod appears at once with a log.
async fn kube_job_create(
    State(kube): State<FakeKube>,
    Path(ns): Path<String>,
    headers: HeaderMap,
    axum::Json(mut job): axum::Json<Value>,
) -> Response {
    if !authorised(&kube, &headers) {
        return status(403, "Forbidden", "jobs.batch is forbidden".into());
    }
    let name = job["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    if kube
        .jobs
        .lock()
        .unwrap()
        .contains_key(&(ns.clone(), name.clone()))
    {
        return status(
            409,
            "AlreadyExists",
            format!("jobs.batch \"{name}\" already exists"),
        );
    }
    job["metadata"]["namespace"] = json!(ns);
    job["metadata"]["uid"] = json!(format!("uid-{name}"));
    job["status"] = json!({"active": 1});
    let pod = format!("{name}-x7k2p");
    kube.objects.lock().unwrap().entry((ns.clone(), "pods".into())).or_default().push(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": pod, "namespace": ns, "labels": {"job-name": name}},
        "spec": {"containers": [{"name": "migrate", "image": job["spec"]["template"]["spec"]["containers"][0]["image"]}]},
    }));
    let image = job["spec"]["template"]["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let log = if image.contains("fail") {
        "applying 0042_add_index\nERROR: relation \"orders\" does not exist\n"
    } else {
        "applying 0042_add_index\nmigrations complete\n"
    };
    kube.logs
        .lock()
        .unwrap()
        .insert((ns.clone(), pod), log.to_owned());
    kube.jobs.lock().unwrap().insert((ns, name), job.clone());
    (StatusCode::CREATED, axum::Json(job)).into_response()
}

/// Reads a Job. The first read after creation finishes it: images containing `fail` fail
/// (`failed: 1` and a `Failed` condition), `hang` never finish, others succeed.
async fn kube_job_read(
    State(kube): State<FakeKube>,
    Path((ns, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if !authorised(&kube, &headers) {
        return status(403, "Forbidden", "jobs.batch is forbidden".into());
    }
    let mut jobs = kube.jobs.lock().unwrap();
    let Some(job) = jobs.get_mut(&(ns, name.clone())) else {
        return status(404, "NotFound", format!("jobs.batch \"{name}\" not found"));
    };
    let image = job["spec"]["template"]["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    if !image.contains("hang") {
        job["status"] = if image.contains("fail") {
            json!({"failed": 1, "conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]})
        } else {
            json!({"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]})
        };
    }
    axum::Json(job.clone()).into_response()
}

async fn kube_job_delete(
    State(kube): State<FakeKube>,
    Path((ns, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if !authorised(&kube, &headers) {
        return status(403, "Forbidden", "jobs.batch is forbidden".into());
    }
    match kube.jobs.lock().unwrap().remove(&(ns, name.clone())) {
        Some(job) => axum::Json(job).into_response(),
        None => status(404, "NotFound", format!("jobs.batch \"{name}\" not found")),
    }
}

async fn kube_log(
    State(kube): State<FakeKube>,
    Path((ns, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if !authorised(&kube, &headers) {
        return status(403, "Forbidden", "pods/log is forbidden".into());
    }
    match kube.logs.lock().unwrap().get(&(ns, name.clone())) {
        Some(log) => log.clone().into_response(),
        None => status(404, "NotFound", format!("pods \"{name}\" not found")),
    }
}

async fn kube_read(
    State(kube): State<FakeKube>,
    Path((ns, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let expected = format!("Bearer {}", kube.token);
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
        return status(
            403,
            "Forbidden",
            format!(
                "secrets \"{name}\" is forbidden: User \"system:anonymous\" cannot get resource \"secrets\" in API group \"\" in the namespace \"{ns}\""
            ),
        );
    }
    match kube.secrets.lock().unwrap().get(&(ns, name.clone())) {
        Some(secret) => axum::Json(secret.clone()).into_response(),
        None => status(404, "NotFound", format!("secrets \"{name}\" not found")),
    }
}

/// GitHub's check-runs and combined-status endpoints for one commit, serving GitHub's own
/// example bodies (`crates/shipgate-github/tests/fixtures`) adapted per scenario: check runs
/// two per page with a `Link` header, checks that complete after some polls, a token, and an
/// optional rate limit on the first request.
#[derive(Clone)]
pub struct FakeGithub {
    /// The accepted token.
    pub token: String,
    /// `OWNER/NAME` it knows.
    pub repository: String,
    /// (name, conclusion once complete, polls before it completes).
    pub checks: Arc<Mutex<Vec<(String, String, u32)>>>,
    /// (context, state) of legacy statuses.
    pub statuses: Arc<Mutex<Vec<(String, String)>>>,
    /// Answer the first request with a primary rate limit that resets in one second.
    pub rate_limit_first: Arc<std::sync::atomic::AtomicBool>,
    /// Issues, comments, pull requests and deployments (see [`crate::github`]).
    pub repo: Arc<Mutex<crate::github::RepoState>>,
    polls: Arc<AtomicU32>,
}

impl FakeGithub {
    /// A fake for `repository` accepting `token`, with no checks.
    pub fn new(repository: &str, token: &str) -> FakeGithub {
        FakeGithub {
            token: token.to_owned(),
            repository: repository.to_owned(),
            checks: Arc::default(),
            statuses: Arc::default(),
            rate_limit_first: Arc::default(),
            repo: Arc::default(),
            polls: Arc::default(),
        }
    }

    /// Adds a check run that completes with `conclusion` after `after_polls` polls.
    pub fn check(&self, name: &str, conclusion: &str, after_polls: u32) -> &Self {
        self.checks
            .lock()
            .unwrap()
            .push((name.to_owned(), conclusion.to_owned(), after_polls));
        self
    }

    /// Serves it; returns its base URL.
    pub async fn start(self) -> String {
        let addr = serve(
            Router::new()
                .route(
                    "/repos/{owner}/{repo}/commits/{sha}/check-runs",
                    get(github_check_runs),
                )
                .route(
                    "/repos/{owner}/{repo}/commits/{sha}/status",
                    get(github_status),
                )
                .merge(crate::github::routes())
                .with_state(self),
        )
        .await;
        format!("http://{addr}")
    }
}

pub(crate) fn github_examples() -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shipgate-github/tests/fixtures/github-examples.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

pub(crate) fn github_guard(
    gh: &FakeGithub,
    owner: &str,
    repo: &str,
    headers: &HeaderMap,
) -> Option<Response> {
    if gh.rate_limit_first.swap(false, Ordering::SeqCst) {
        let reset = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 1;
        return Some(
            (
                StatusCode::FORBIDDEN,
                [("x-ratelimit-remaining", "0".to_owned()), ("x-ratelimit-reset", reset.to_string())],
                axum::Json(json!({"message": "API rate limit exceeded", "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"})),
            )
                .into_response(),
        );
    }
    let expected = format!("Bearer {}", gh.token);
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
        return Some((StatusCode::UNAUTHORIZED, axum::Json(json!({"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"}))).into_response());
    }
    if format!("{owner}/{repo}") != gh.repository {
        return Some((StatusCode::NOT_FOUND, axum::Json(json!({"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}))).into_response());
    }
    None
}

async fn github_check_runs(
    State(gh): State<FakeGithub>,
    Path((owner, repo, sha)): Path<(String, String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = github_guard(&gh, &owner, &repo, &headers) {
        return refused;
    }
    let page: usize = query.get("page").and_then(|p| p.parse().ok()).unwrap_or(1);
    let poll = if page == 1 {
        gh.polls.fetch_add(1, Ordering::SeqCst)
    } else {
        gh.polls.load(Ordering::SeqCst).saturating_sub(1)
    };
    let template = github_examples()["check-run-paginated"]["value"]["check_runs"][0].clone();
    let checks = gh.checks.lock().unwrap().clone();
    let runs: Vec<Value> = checks
        .iter()
        .enumerate()
        .map(|(i, (name, conclusion, after))| {
            let mut run = template.clone();
            run["id"] = json!(i + 1);
            run["name"] = json!(name);
            run["head_sha"] = json!(sha);
            run["html_url"] = json!(format!("https://github.com/{owner}/{repo}/runs/{}", i + 1));
            if poll >= *after {
                run["status"] = json!("completed");
                run["conclusion"] = json!(conclusion);
            } else {
                run["status"] = json!("in_progress");
                run["conclusion"] = Value::Null;
                run["completed_at"] = Value::Null;
            }
            run
        })
        .collect();
    let per_page = 2;
    let chunk: Vec<Value> = runs
        .iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .cloned()
        .collect();
    let body = json!({"total_count": runs.len(), "check_runs": chunk});
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1")
        .to_owned();
    let mut response = axum::Json(body).into_response();
    if page * per_page < runs.len() {
        let link = format!(
            "<http://{host}/repos/{owner}/{repo}/commits/{sha}/check-runs?filter=latest&per_page=100&page={}>; rel=\"next\"",
            page + 1
        );
        response.headers_mut().insert("link", link.parse().unwrap());
    }
    response
}

async fn github_status(
    State(gh): State<FakeGithub>,
    Path((owner, repo, sha)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = github_guard(&gh, &owner, &repo, &headers) {
        return refused;
    }
    let mut body = github_examples()["combined-commit-status"]["value"].clone();
    let template = body["statuses"][0].clone();
    let statuses: Vec<Value> = gh
        .statuses
        .lock()
        .unwrap()
        .iter()
        .map(|(context, state)| {
            let mut status = template.clone();
            status["context"] = json!(context);
            status["state"] = json!(state);
            status
        })
        .collect();
    let overall = if statuses.is_empty() {
        "pending"
    } else {
        "success"
    };
    body["state"] = json!(overall);
    body["sha"] = json!(sha);
    body["total_count"] = json!(statuses.len());
    body["statuses"] = Value::Array(statuses);
    axum::Json(body).into_response()
}
