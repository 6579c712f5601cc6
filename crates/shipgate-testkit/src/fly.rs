//! A loopback fake of Fly's Machines API, checked against Fly's OpenAPI description.
//!
//! Every request (path, query parameters, body) and every answer is checked with
//! [`crate::openapi::fly_spec`]; a mismatch is recorded in [`FakeFly::violations`]. Behaviour
//! follows `shared/notes/fly.md`: leases with nonces (409 when held by someone else, the
//! `{"status","data"}` wrapper), full-config updates with `current_version` (409 when stale),
//! `/wait` answering 408 before the machine is there, fresh machines without check results,
//! the documented per-machine, per-action rate limit (more than 3 calls in a second → 429 and a
//! violation), secrets with versions.
//!
//! Images decide what happens after an update: `unhealthy` starts but its checks stay
//! `critical`; `revert` is silently reverted by "flyd" to the previous version while `/wait`
//! still says started (Fly's real failure mode); `failing` ends in state `failed`, so `/wait`
//! answers 408 "…, currently failed" for good; `crashing` starts and exits at once (state
//! `stopped`); anything else becomes healthy. A lease held by someone else on any machine
//! ([`FakeFly::lease_elsewhere`]) refuses that machine's lease and updates (409).
//!
//! Blue-green: machines are created (`POST …/machines`, cordoned with
//! `skip_service_registration`, coming up like an update), cordoned and uncordoned (the spec:
//! a cordoned machine gets no requests from the Fly Proxy), and destroyed (`DELETE`, state
//! `destroyed`). [`FakeFly::fail_action`] makes calls of one action fail with 503 after some
//! succeed, for failures at each switch point.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::openapi::fly_spec;
use crate::serve;

#[derive(Debug, Clone)]
struct Machine {
    id: String,
    state: String,
    version: String,
    config: Value,
    /// Older (version, config) pairs, oldest first.
    versions: Vec<(String, Value)>,
    /// (nonce, owner)
    lease: Option<(String, String)>,
    /// Answer `/wait` with 408 this many more times.
    not_ready_waits: u32,
    /// Reads left before check results appear.
    checks_after: u32,
    /// `ok`, or `unreachable` for a machine whose host Fly cannot reach.
    host_status: &'static str,
    /// Services disabled: the proxy routes nothing to it.
    cordoned: bool,
}

#[derive(Debug, Default)]
struct World {
    machines: Vec<Machine>,
    seq: u64,
    secrets_version: u64,
    secrets: BTreeMap<String, String>,
    calls: Vec<(String, String, Value)>,
    violations: Vec<String>,
    recent: HashMap<(String, String), Vec<Instant>>,
    min_secrets_versions: Vec<u64>,
    rate_limit_next: u32,
    /// Action (`create`, `cordon`, `uncordon`, `destroy`) → (calls that still succeed, calls
    /// that then fail with 503).
    failing: HashMap<String, (u32, u32)>,
    /// The token may read but not write (`fly tokens create readonly`).
    read_only: bool,
}

/// The fake. Cheap to clone; clones share the world.
#[derive(Clone)]
pub struct FakeFly {
    app: String,
    authorization: String,
    world: Arc<Mutex<World>>,
}

impl std::fmt::Debug for FakeFly {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FakeFly")
    }
}

fn version_id(seq: u64) -> String {
    format!("01JD{seq:022}")
}

impl FakeFly {
    /// An app `app` that accepts exactly `authorization` (`FlyV1 fm2_…` or `Bearer …`) and
    /// has no machines yet.
    pub fn new(app: &str, authorization: &str) -> FakeFly {
        FakeFly {
            app: app.to_owned(),
            authorization: authorization.to_owned(),
            world: Arc::default(),
        }
    }

    /// Makes the accepted token read-only: reads work, `POST /v1/tokens/authorize` for write
    /// access answers 403, and every write is refused with 403.
    pub fn read_only(&self) -> &Self {
        self.world.lock().unwrap().read_only = true;
        self
    }

    /// Adds `count` started Fly Launch machines of `group` running `image`, each with one
    /// HTTP check.
    pub fn machines(&self, group: &str, count: usize, image: &str) -> &Self {
        self.add(group, count, image, true)
    }

    /// Adds a machine without `fly_platform_version=v2` (created by hand, not by Fly Launch).
    pub fn unmanaged_machine(&self, group: &str, image: &str) -> &Self {
        self.add(group, 1, image, false)
    }

    fn add(&self, group: &str, count: usize, image: &str, managed: bool) -> &Self {
        let mut w = self.world.lock().unwrap();
        for _ in 0..count {
            w.seq += 1;
            let mut metadata = json!({"fly_process_group": group});
            if managed {
                metadata["fly_platform_version"] = json!("v2");
            }
            let id = format!("{:014x}", 0x1d8e_0000_0000_u64 + w.seq);
            let version = version_id(w.seq);
            w.machines.push(Machine {
                id,
                state: "started".into(),
                version,
                config: json!({
                    "image": image,
                    "metadata": metadata,
                    "env": {"PORT": "8080"},
                    "guest": {"cpu_kind": "shared", "cpus": 1, "memory_mb": 256},
                    "services": [{"protocol": "tcp", "internal_port": 8080, "ports": [{"port": 443, "handlers": ["tls", "http"]}]}],
                    "checks": {"http": {"type": "http", "port": 8080, "path": "/healthz", "interval": "15s", "timeout": "2s"}},
                }),
                versions: Vec::new(),
                lease: None,
                not_ready_waits: 0,
                checks_after: 0,
                host_status: "ok",
                cordoned: false,
            });
        }
        self
    }

    /// After `succeed` more calls of `action` (`create`, `cordon`, `uncordon`, `destroy`),
    /// the next `fail` calls of it answer 503 (the client retries, then gives up).
    pub fn fail_action(&self, action: &str, succeed: u32, fail: u32) {
        self.world
            .lock()
            .unwrap()
            .failing
            .insert(action.to_owned(), (succeed, fail));
    }

    /// Images of the machines of `group` the proxy routes requests to (started, not cordoned,
    /// not destroyed), in id order.
    pub fn serving(&self, group: &str) -> Vec<String> {
        let w = self.world.lock().unwrap();
        w.machines
            .iter()
            .filter(|m| m.config["metadata"]["fly_process_group"] == group)
            .filter(|m| m.state == "started" && !m.cordoned)
            .map(|m| m.config["image"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// Machines of `group` that are not destroyed (whatever their state), in id order.
    pub fn present(&self, group: &str) -> usize {
        let w = self.world.lock().unwrap();
        w.machines
            .iter()
            .filter(|m| m.config["metadata"]["fly_process_group"] == group)
            .filter(|m| m.state != "destroyed")
            .count()
    }

    /// Answers the next `n` requests with 429 and `Retry-After: 1`.
    pub fn rate_limit_next(&self, n: u32) {
        self.world.lock().unwrap().rate_limit_next = n;
    }

    /// Marks machine number `index` (in id order) as leased by someone else.
    pub fn lease_elsewhere(&self, index: usize) {
        let mut w = self.world.lock().unwrap();
        w.machines[index].lease = Some(("foreign-nonce".into(), "someone@example.com".into()));
    }

    /// Puts machine number `index` (in id order) on a host Fly cannot reach: its listing says
    /// `host_status: unreachable` and carries `incomplete_config` instead of `config`.
    pub fn unreachable_host(&self, index: usize) {
        self.world.lock().unwrap().machines[index].host_status = "unreachable";
    }

    /// Stops machine number `index` (in id order), as `fly machine stop` would.
    pub fn stop_machine(&self, index: usize) {
        self.world.lock().unwrap().machines[index].state = "stopped".into();
    }

    /// States of the machines of `group` (`started`, `stopped`, `failed`), in id order.
    pub fn states(&self, group: &str) -> Vec<String> {
        let w = self.world.lock().unwrap();
        w.machines
            .iter()
            .filter(|m| m.config["metadata"]["fly_process_group"] == group)
            .map(|m| m.state.clone())
            .collect()
    }

    /// Images the machines of `group` run, in id order.
    pub fn images(&self, group: &str) -> Vec<String> {
        let w = self.world.lock().unwrap();
        w.machines
            .iter()
            .filter(|m| m.config["metadata"]["fly_process_group"] == group)
            .map(|m| m.config["image"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// Leases currently held.
    pub fn leases_held(&self) -> usize {
        self.world
            .lock()
            .unwrap()
            .machines
            .iter()
            .filter(|m| m.lease.is_some())
            .count()
    }

    /// `min_secrets_version` values sent with updates.
    pub fn min_secrets_versions(&self) -> Vec<u64> {
        self.world.lock().unwrap().min_secrets_versions.clone()
    }

    /// Secrets set, by name.
    pub fn secrets(&self) -> BTreeMap<String, String> {
        self.world.lock().unwrap().secrets.clone()
    }

    /// Spec violations seen so far; must stay empty.
    pub fn violations(&self) -> Vec<String> {
        self.world.lock().unwrap().violations.clone()
    }

    /// (method, path template, body) of every call, in order.
    pub fn calls(&self) -> Vec<(String, String, Value)> {
        self.world.lock().unwrap().calls.clone()
    }

    /// Serves it; returns the base URL.
    pub async fn start(self) -> String {
        let m = "/v1/apps/{app_name}/machines/{machine_id}";
        let router = Router::new()
            .route(
                "/v1/apps/{app_name}",
                get(|s, p, q, h, b| handle(s, "/v1/apps/{app_name}", Method::GET, p, q, h, b)),
            )
            .route(
                "/v1/apps/{app_name}/machines",
                get(|s, p, q, h, b| {
                    handle(s, "/v1/apps/{app_name}/machines", Method::GET, p, q, h, b)
                })
                .post(|s, p, q, h, b| {
                    handle(s, "/v1/apps/{app_name}/machines", Method::POST, p, q, h, b)
                }),
            )
            .route(
                "/v1/apps/{app_name}/machines/{machine_id}/cordon",
                post(|s, p, q, h, b| {
                    handle(
                        s,
                        "/v1/apps/{app_name}/machines/{machine_id}/cordon",
                        Method::POST,
                        p,
                        q,
                        h,
                        b,
                    )
                }),
            )
            .route(
                "/v1/apps/{app_name}/machines/{machine_id}/uncordon",
                post(|s, p, q, h, b| {
                    handle(
                        s,
                        "/v1/apps/{app_name}/machines/{machine_id}/uncordon",
                        Method::POST,
                        p,
                        q,
                        h,
                        b,
                    )
                }),
            )
            .route(
                m,
                get(|s, p, q, h, b| {
                    handle(
                        s,
                        "/v1/apps/{app_name}/machines/{machine_id}",
                        Method::GET,
                        p,
                        q,
                        h,
                        b,
                    )
                })
                .post(|s, p, q, h, b| {
                    handle(
                        s,
                        "/v1/apps/{app_name}/machines/{machine_id}",
                        Method::POST,
                        p,
                        q,
                        h,
                        b,
                    )
                })
                .delete(|s, p, q, h, b| {
                    handle(
                        s,
                        "/v1/apps/{app_name}/machines/{machine_id}",
                        Method::DELETE,
                        p,
                        q,
                        h,
                        b,
                    )
                }),
            )
            .route(
                "/v1/apps/{app_name}/machines/{machine_id}/wait",
                get(|s, p, q, h, b| {
                    handle(
                        s,
                        "/v1/apps/{app_name}/machines/{machine_id}/wait",
                        Method::GET,
                        p,
                        q,
                        h,
                        b,
                    )
                }),
            )
            .route(
                "/v1/apps/{app_name}/machines/{machine_id}/versions",
                get(|s, p, q, h, b| {
                    handle(
                        s,
                        "/v1/apps/{app_name}/machines/{machine_id}/versions",
                        Method::GET,
                        p,
                        q,
                        h,
                        b,
                    )
                }),
            )
            .route(
                "/v1/apps/{app_name}/machines/{machine_id}/lease",
                post(|s, p, q, h, b| {
                    handle(
                        s,
                        "/v1/apps/{app_name}/machines/{machine_id}/lease",
                        Method::POST,
                        p,
                        q,
                        h,
                        b,
                    )
                })
                .delete(|s, p, q, h, b| {
                    handle(
                        s,
                        "/v1/apps/{app_name}/machines/{machine_id}/lease",
                        Method::DELETE,
                        p,
                        q,
                        h,
                        b,
                    )
                }),
            )
            .route(
                "/v1/tokens/current",
                get(|s, p, q, h, b| handle(s, "/v1/tokens/current", Method::GET, p, q, h, b)),
            )
            .route(
                "/v1/tokens/authorize",
                post(|s, p, q, h, b| handle(s, "/v1/tokens/authorize", Method::POST, p, q, h, b)),
            )
            .route(
                "/v1/apps/{app_name}/secrets",
                post(|s, p, q, h, b| {
                    handle(s, "/v1/apps/{app_name}/secrets", Method::POST, p, q, h, b)
                }),
            )
            .with_state(self);
        format!("http://{}", serve(router).await)
    }
}

fn machine_json(m: &Machine, with_checks: bool) -> Value {
    let image = m.config["image"].as_str().unwrap_or_default();
    let (repository, tag) = image.rsplit_once(':').unwrap_or((image, "latest"));
    let checks = if !with_checks || m.state != "started" {
        json!([])
    } else if image.contains("unhealthy") {
        json!([{"name": "http", "status": "critical", "output": "GET /healthz: 503 Service Unavailable", "updated_at": "2026-11-23T10:00:00Z"}])
    } else {
        json!([{"name": "http", "status": "passing", "output": "200 OK", "updated_at": "2026-11-23T10:00:00Z"}])
    };
    let config_key = if m.host_status == "ok" {
        "config"
    } else {
        "incomplete_config"
    };
    let mut machine = json!({
        "id": m.id, "name": format!("m-{}", m.id), "state": m.state, "region": "ams",
        "instance_id": m.version, "version": m.version, "private_ip": "fdaa::3",
        "image_ref": {"registry": "ghcr.io", "repository": repository, "tag": tag, "digest": format!("sha256:{:064x}", image.len())},
        "checks": checks,
        "events": [{"id": "ev1", "type": "start", "status": "started", "source": "flyd", "timestamp": 1_763_892_000_000_u64}],
        "host_status": m.host_status,
        "cordoned": m.cordoned,
        "created_at": "2026-11-23T10:00:00Z", "updated_at": "2026-11-23T10:00:00Z",
    });
    machine[config_key] = m.config.clone();
    machine
}

/// `GET /v1/tokens/current` (a deploy token for the app) and `POST /v1/tokens/authorize`
/// (the header given must be the accepted token; write or control access needs a token that
/// is not read-only).
fn tokens(fake: &FakeFly, w: &World, template: &str, body: Option<&Value>) -> (StatusCode, Value) {
    if template.ends_with("/current") {
        return (
            StatusCode::OK,
            json!({"tokens": [{"apps": [fake.app], "org_slug": "personal", "organization": "personal", "token_id": "tok_fake"}]}),
        );
    }
    let body = body.cloned().unwrap_or(Value::Null);
    if body["header"].as_str() != Some(fake.authorization.as_str()) {
        return error(StatusCode::UNAUTHORIZED, "unauthorized: token not verified");
    }
    let access = &body["access"];
    if access["app_name"].as_str().is_some_and(|a| a != fake.app) {
        return error(
            StatusCode::FORBIDDEN,
            "unauthorized: app not in token scope",
        );
    }
    let action = access["action"].as_u64().unwrap_or(0);
    if w.read_only && action & (2 | 4 | 8 | 16) != 0 {
        return error(StatusCode::FORBIDDEN, "unauthorized: read-only token");
    }
    (
        StatusCode::OK,
        json!({"access": {"action": action, "cluster": ""}, "verified_token": {"header": "FlyV1", "caveats": {"caveats": []}}}),
    )
}

fn error(status: StatusCode, message: &str) -> (StatusCode, Value) {
    (status, json!({"error": message}))
}

#[allow(clippy::too_many_arguments)]
async fn handle(
    State(fake): State<FakeFly>,
    template: &'static str,
    method: Method,
    Path(params): Path<HashMap<String, String>>,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let body: Option<Value> = if body.is_empty() {
        None
    } else {
        serde_json::from_str(&body).ok()
    };
    let spec = fly_spec();
    let mut w = fake.world.lock().unwrap();
    if w.rate_limit_next > 0 {
        w.rate_limit_next -= 1;
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "1")],
            axum::Json(json!({"error": "rate limit exceeded"})),
        )
            .into_response();
    }
    if let Err(problem) = spec.check_request(method.as_str(), template, &query, body.as_ref()) {
        w.violations.push(problem);
    }
    w.calls.push((
        method.to_string(),
        template.to_owned(),
        body.clone().unwrap_or(Value::Null),
    ));
    let (status, answer) = if headers.get("authorization").and_then(|v| v.to_str().ok())
        != Some(fake.authorization.as_str())
    {
        error(StatusCode::UNAUTHORIZED, "unauthorized")
    } else if template.starts_with("/v1/tokens/") {
        tokens(&fake, &w, template, body.as_ref())
    } else if w.read_only && method != Method::GET {
        error(StatusCode::FORBIDDEN, "unauthorized: read-only token")
    } else if params.get("app_name") != Some(&fake.app) {
        error(StatusCode::NOT_FOUND, "app not found")
    } else {
        // The documented rate limits as token buckets (1 req/s with bursts of 3 per action per
        // machine; 5 req/s with bursts of 10 for reads): at most burst + rate in any second.
        let machine = params.get("machine_id").cloned().unwrap_or_default();
        let key = (machine, format!("{method} {template}"));
        let now = Instant::now();
        let recent = w.recent.entry(key.clone()).or_default();
        recent.retain(|t| now.duration_since(*t) < Duration::from_secs(1));
        recent.push(now);
        let limit = if method == Method::GET { 10 + 5 } else { 3 + 1 };
        if recent.len() > limit && !template.ends_with("/wait") {
            w.violations.push(format!("rate limit exceeded: {key:?}"));
            let response = (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", "1")],
                axum::Json(json!({"error": "rate limit exceeded"})),
            )
                .into_response();
            return response;
        }
        let nonce = headers
            .get("fly-machine-lease-nonce")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        route(
            &mut w,
            template,
            &method,
            &params,
            &query,
            body.as_ref(),
            nonce,
        )
    };
    let checked = if spec
        .check_response(method.as_str(), template, status.as_u16(), &answer)
        .is_ok()
    {
        Ok(())
    } else if status.as_u16() >= 400 {
        spec.check(
            &json!({"$ref": "#/components/schemas/ErrorResponse"}),
            &answer,
            template,
        )
    } else {
        spec.check_response(method.as_str(), template, status.as_u16(), &answer)
    };
    if let Err(problem) = checked {
        w.violations.push(format!("answer: {problem}"));
    }
    (
        status,
        [("fly-request-id", "01FAKEREQUEST")],
        axum::Json(answer),
    )
        .into_response()
}

fn route(
    w: &mut World,
    template: &str,
    method: &Method,
    params: &HashMap<String, String>,
    query: &[(String, String)],
    body: Option<&Value>,
    nonce: Option<String>,
) -> (StatusCode, Value) {
    let q = |k: &str| {
        query
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    let id = params.get("machine_id").cloned().unwrap_or_default();
    let action = match (
        method.as_str(),
        template.rsplit('/').next().unwrap_or_default(),
    ) {
        ("POST", "machines") => "create",
        ("POST", "cordon") => "cordon",
        ("POST", "uncordon") => "uncordon",
        ("DELETE", "{machine_id}") => "destroy",
        _ => "",
    };
    if let Some((succeed, fail)) = w.failing.get_mut(action) {
        if *succeed > 0 {
            *succeed -= 1;
        } else if *fail > 0 {
            *fail -= 1;
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "fly api: service unavailable",
            );
        }
    }
    match (
        method.as_str(),
        template.rsplit('/').next().unwrap_or_default(),
    ) {
        ("POST", "machines") => {
            let Some(body) = body else {
                return error(StatusCode::BAD_REQUEST, "body required");
            };
            w.seq += 1;
            let seq = w.seq;
            if let Some(v) = body["min_secrets_version"].as_u64() {
                w.min_secrets_versions.push(v);
            }
            let config = body["config"].clone();
            let image = config["image"].as_str().unwrap_or_default().to_owned();
            let launch = body["skip_launch"] != json!(true);
            let mut machine = Machine {
                id: format!("{:014x}", 0x1d8e_0000_0000_u64 + seq),
                state: if launch { "started" } else { "stopped" }.into(),
                version: version_id(seq),
                config,
                versions: Vec::new(),
                lease: None,
                not_ready_waits: 1,
                checks_after: 1,
                host_status: "ok",
                cordoned: body["skip_service_registration"] == json!(true),
            };
            let answer = machine_json(&machine, false);
            if launch && image.contains("failing") {
                machine.state = "failed".into();
            }
            if launch && image.contains("crashing") {
                machine.state = "stopped".into();
                machine.not_ready_waits = 0;
            }
            w.machines.push(machine);
            (StatusCode::OK, answer)
        }
        ("GET", "{app_name}") => (
            StatusCode::OK,
            json!({"id": "app1", "name": params["app_name"], "status": "deployed", "machine_count": w.machines.len()}),
        ),
        ("GET", "machines") => {
            let group = q("metadata.fly_process_group");
            let list: Vec<Value> = w
                .machines
                .iter()
                .filter(|m| {
                    group
                        .as_deref()
                        .is_none_or(|g| m.config["metadata"]["fly_process_group"] == g)
                })
                .map(|m| machine_json(m, true))
                .collect();
            (StatusCode::OK, Value::Array(list))
        }
        ("POST", "secrets") => {
            let values = body
                .and_then(|b| b["values"].as_object())
                .cloned()
                .unwrap_or_default();
            for (k, v) in values {
                match v.as_str() {
                    Some(v) => w.secrets.insert(k, v.to_owned()),
                    None => w.secrets.remove(&k),
                };
            }
            w.secrets_version += 1;
            let secrets: Vec<Value> = w.secrets.keys().map(|k| json!({"name": k, "digest": "d", "created_at": "2026-11-23T10:00:00Z", "updated_at": "2026-11-23T10:00:00Z"})).collect();
            (
                StatusCode::OK,
                json!({"secrets": secrets, "version": w.secrets_version}),
            )
        }
        _ => {
            let seq = w.seq + 1;
            let Some(m) = w.machines.iter_mut().find(|m| m.id == id) else {
                return error(StatusCode::NOT_FOUND, "machine not found");
            };
            machine_route(
                m,
                seq,
                template,
                method,
                query,
                body,
                nonce,
                &mut w.seq,
                &mut w.min_secrets_versions,
            )
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn machine_route(
    m: &mut Machine,
    seq: u64,
    template: &str,
    method: &Method,
    query: &[(String, String)],
    body: Option<&Value>,
    nonce: Option<String>,
    counter: &mut u64,
    min_secrets: &mut Vec<u64>,
) -> (StatusCode, Value) {
    let q = |k: &str| {
        query
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    match (
        method.as_str(),
        template.rsplit('/').next().unwrap_or_default(),
    ) {
        ("GET", "{machine_id}") => {
            let with_checks = m.checks_after == 0;
            m.checks_after = m.checks_after.saturating_sub(1);
            (StatusCode::OK, machine_json(m, with_checks))
        }
        ("GET", "versions") => {
            let mut all: Vec<Value> = m
                .versions
                .iter()
                .map(|(v, c)| json!({"version": v, "user_config": c}))
                .collect();
            all.push(json!({"version": m.version, "user_config": m.config}));
            (StatusCode::OK, Value::Array(all))
        }
        ("GET", "wait") => {
            if m.state == "failed" {
                return error(
                    StatusCode::REQUEST_TIMEOUT,
                    "machine failed to reach desired state, started, currently failed",
                );
            }
            if m.not_ready_waits > 0 {
                m.not_ready_waits -= 1;
                return error(
                    StatusCode::REQUEST_TIMEOUT,
                    "machine failed to reach desired state, started, currently starting",
                );
            }
            (
                StatusCode::OK,
                json!({"ok": true, "state": m.state, "version": q("version").unwrap_or_else(|| m.version.clone())}),
            )
        }
        ("POST", "lease") => match (&m.lease, nonce) {
            (Some((held, owner)), sent) if sent.as_deref() != Some(held.as_str()) => error(
                StatusCode::CONFLICT,
                &format!("lease currently held by {owner}"),
            ),
            (_, _) => {
                let nonce = m
                    .lease
                    .as_ref()
                    .map_or_else(|| format!("nonce-{seq}"), |l| l.0.clone());
                m.lease = Some((nonce.clone(), "shipgate@ci".into()));
                let ttl = body.and_then(|b| b["ttl"].as_u64()).unwrap_or(30);
                (
                    StatusCode::CREATED,
                    json!({"status": "success", "data": {"nonce": nonce, "expires_at": 1_763_892_000 + ttl, "owner": "shipgate@ci", "description": body.and_then(|b| b["description"].as_str()).unwrap_or_default(), "version": m.version}}),
                )
            }
        },
        ("DELETE", "lease") => match (&m.lease, nonce) {
            (Some((held, _)), Some(sent)) if *held == sent => {
                m.lease = None;
                (
                    StatusCode::OK,
                    json!({"status": "success", "data": {"ok": true}}),
                )
            }
            _ => error(StatusCode::NOT_FOUND, "lease not found"),
        },
        ("POST", "{machine_id}") => {
            if let Some((held, _)) = &m.lease
                && nonce.as_deref() != Some(held.as_str())
            {
                return error(
                    StatusCode::CONFLICT,
                    "machine is leased; send fly-machine-lease-nonce",
                );
            }
            let Some(body) = body else {
                return error(StatusCode::BAD_REQUEST, "body required");
            };
            if let Some(current) = body["current_version"].as_str()
                && current != m.version
            {
                return error(
                    StatusCode::CONFLICT,
                    &format!("current_version {current} does not match {}", m.version),
                );
            }
            if let Some(v) = body["min_secrets_version"].as_u64() {
                min_secrets.push(v);
            }
            *counter = seq;
            let new_version = version_id(seq);
            let previous = (m.version.clone(), m.config.clone());
            m.versions.push(previous.clone());
            m.version = new_version.clone();
            m.config = body["config"].clone();
            if body["skip_launch"] != json!(true) {
                m.state = "started".into();
                m.not_ready_waits = 1;
                m.checks_after = 1;
            }
            let answer = machine_json(m, false);
            let image = m.config["image"].as_str().unwrap_or_default().to_owned();
            if body["skip_launch"] != json!(true) && image.contains("failing") {
                m.state = "failed".into();
            }
            if body["skip_launch"] != json!(true) && image.contains("crashing") {
                m.state = "stopped".into();
                m.not_ready_waits = 0;
            }
            if image.contains("revert") {
                // flyd could not run the new config and put the previous one back.
                m.versions.push((m.version.clone(), m.config.clone()));
                m.version = previous.0;
                m.config = previous.1;
            }
            (StatusCode::OK, answer)
        }
        ("POST", "cordon" | "uncordon") | ("DELETE", "{machine_id}") => {
            if let Some((held, _)) = &m.lease
                && nonce.as_deref() != Some(held.as_str())
            {
                return error(
                    StatusCode::CONFLICT,
                    "machine is leased; send fly-machine-lease-nonce",
                );
            }
            match template.rsplit('/').next().unwrap_or_default() {
                "cordon" => m.cordoned = true,
                "uncordon" => m.cordoned = false,
                _ => {
                    if m.state == "started" && q("force").as_deref() != Some("true") {
                        return error(
                            StatusCode::PRECONDITION_FAILED,
                            "machine is started; stop it or pass force=true",
                        );
                    }
                    m.state = "destroyed".into();
                    m.lease = None;
                }
            }
            (StatusCode::OK, json!({"ok": true}))
        }
        _ => error(StatusCode::NOT_FOUND, "no such route"),
    }
}
