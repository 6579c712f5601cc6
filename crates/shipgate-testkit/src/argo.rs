//! Argo Rollouts in the Kubernetes API fake: `Rollout` objects shaped by the published CRD
//! (`shared/specs/argo-rollouts/rollout-crd.yaml`: `argoproj.io/v1alpha1`, plural `rollouts`,
//! a status subresource), a controller that reacts as `shared/specs/argo-rollouts/NOTES.md`
//! describes, and the API's service proxy to the pods behind the active and preview Services.
//!
//! The controller: [`FakeArgo::next_revision`] says what the next template (a `helm upgrade`)
//! becomes, applied after the next read of the Rollout (the reader's "before"): `healthy` pods
//! pause the blue-green Rollout for promotion (`phase: Paused`, a `BlueGreenPause` condition,
//! the preview Service on the new pod hash), unhealthy ones leave it `Degraded`. A merge patch
//! of the status subresource with `pauseConditions: null` promotes (the active Service moves,
//! the new ReplicaSet becomes stable, `Healthy`); `abort: true` aborts (the preview Service
//! back on the stable hash, `Degraded` with `RolloutAborted`). Pods answer by their version
//! like the demo service: `/healthz` 200 (503 when `unhealthy`), `/api/orders` 200 JSON (500
//! when `broken`), `/version`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::fakes::FakeKube;

/// The Argo Rollouts side of [`FakeKube`]. Cheap to clone; clones share the state.
#[derive(Clone, Default)]
pub struct FakeArgo {
    state: Arc<Mutex<ArgoState>>,
}

#[derive(Default)]
struct ArgoState {
    /// (namespace, name) → Rollout.
    rollouts: HashMap<(String, String), Value>,
    /// The next template's pod hash and whether its pods become healthy, with the reads left
    /// before the controller applies it.
    next: Option<(String, bool, u32)>,
    /// Pod hash → the version its pods run.
    versions: HashMap<String, String>,
    /// Status patches received, in order.
    patches: Vec<Value>,
}

impl FakeArgo {
    /// A healthy blue-green Rollout `name` whose pods (hash `stable_hash`) run `version`,
    /// behind `active` and `preview` Services, with `autoPromotionEnabled: false`.
    pub fn rollout(&self, namespace: &str, name: &str, stable_hash: &str, version: &str) {
        let mut state = self.state.lock().unwrap();
        state
            .versions
            .insert(stable_hash.to_owned(), version.to_owned());
        state.rollouts.insert(
            (namespace.to_owned(), name.to_owned()),
            json!({
                "apiVersion": "argoproj.io/v1alpha1",
                "kind": "Rollout",
                "metadata": {"name": name, "namespace": namespace, "generation": 1, "resourceVersion": "1", "uid": format!("uid-{name}")},
                "spec": {
                    "replicas": 2,
                    "selector": {"matchLabels": {"app": name}},
                    "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "api", "image": format!("ghcr.io/acme/api:{version}")}]}},
                    "strategy": {"blueGreen": {"activeService": name, "previewService": format!("{name}-preview"), "autoPromotionEnabled": false}}
                },
                "status": {
                    "phase": "Healthy", "message": "", "observedGeneration": "1",
                    "stableRS": stable_hash, "currentPodHash": stable_hash,
                    "replicas": 2, "readyReplicas": 2, "availableReplicas": 2, "updatedReplicas": 2,
                    "blueGreen": {"activeSelector": stable_hash, "previewSelector": stable_hash},
                    "abort": false
                }
            }),
        );
    }

    /// A healthy canary Rollout `name` whose pods (hash `stable_hash`) run `version`, behind
    /// a stable Service `name` and a canary Service `{name}-canary`, with `steps` (the CRD's
    /// `setWeight`, `pause`, `setCanaryScale` steps).
    pub fn canary_rollout(
        &self,
        namespace: &str,
        name: &str,
        stable_hash: &str,
        version: &str,
        steps: Value,
    ) {
        self.rollout(namespace, name, stable_hash, version);
        let mut state = self.state.lock().unwrap();
        let rollout = state
            .rollouts
            .get_mut(&(namespace.to_owned(), name.to_owned()))
            .unwrap_or_else(|| unreachable!());
        rollout["spec"]["strategy"] = json!({"canary": {
            "canaryService": format!("{name}-canary"), "stableService": name, "steps": steps
        }});
        if let Some(status) = rollout["status"].as_object_mut() {
            status.remove("blueGreen");
        }
        let steps = rollout["spec"]["strategy"]["canary"]["steps"]
            .as_array()
            .map_or(0, Vec::len);
        rollout["status"]["currentStepIndex"] = json!(steps);
    }

    /// The next template (after the next read of a Rollout) runs `version` as pod hash
    /// `hash`; `healthy` pods pause for promotion, others leave the Rollout `Degraded`.
    pub fn next_revision(&self, hash: &str, version: &str, healthy: bool) {
        let mut state = self.state.lock().unwrap();
        state.versions.insert(hash.to_owned(), version.to_owned());
        state.next = Some((hash.to_owned(), healthy, 1));
    }

    /// The Rollout as stored.
    pub fn get(&self, namespace: &str, name: &str) -> Value {
        self.state.lock().unwrap().rollouts[&(namespace.to_owned(), name.to_owned())].clone()
    }

    /// The version users reach through Service `service` of `namespace` (the active one, or
    /// any other), as the pods behind it answer `/version`.
    pub fn serving(&self, namespace: &str, service: &str) -> Option<String> {
        let state = self.state.lock().unwrap();
        let hash = selected_hash(&state, namespace, service)?;
        state.versions.get(&hash).cloned()
    }

    /// Status patches received, in order.
    pub fn patches(&self) -> Vec<Value> {
        self.state.lock().unwrap().patches.clone()
    }
}

/// The pod hash Service `service` selects: a Rollout's active or preview Service.
fn selected_hash(state: &ArgoState, namespace: &str, service: &str) -> Option<String> {
    state.rollouts.iter().find_map(|((ns, _), rollout)| {
        if ns != namespace {
            return None;
        }
        let canary = &rollout["spec"]["strategy"]["canary"];
        if canary.is_object() {
            let status = &rollout["status"];
            return if canary["stableService"] == service {
                status["stableRS"].as_str().map(str::to_owned)
            } else if canary["canaryService"] == service {
                let aborted = status["abort"] == json!(true);
                status[if aborted {
                    "stableRS"
                } else {
                    "currentPodHash"
                }]
                .as_str()
                .map(str::to_owned)
            } else {
                None
            };
        }
        let strategy = &rollout["spec"]["strategy"]["blueGreen"];
        let selectors = &rollout["status"]["blueGreen"];
        if strategy["activeService"] == service {
            selectors["activeSelector"].as_str().map(str::to_owned)
        } else if strategy["previewService"] == service {
            selectors["previewSelector"].as_str().map(str::to_owned)
        } else {
            None
        }
    })
}

/// RFC 7386: a JSON merge patch.
fn merge(target: &mut Value, patch: &Value) {
    let Some(fields) = patch.as_object() else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    for (key, value) in fields {
        if value.is_null() {
            if let Some(map) = target.as_object_mut() {
                map.remove(key);
            }
        } else {
            merge(&mut target[key], value);
        }
    }
}

fn not_found(name: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404,
            "message": format!("rollouts.argoproj.io \"{name}\" not found")})),
    )
        .into_response()
}

/// `GET` (the controller applies a pending template after the read that precedes it) and
/// `PATCH` of `…/rollouts/{name}` and its `/status` subresource.
pub(crate) async fn rollout(
    State(kube): State<FakeKube>,
    Path((ns, name)): Path<(String, String)>,
    method: Method,
    headers: HeaderMap,
    body: String,
) -> Response {
    rollout_call(kube, ns, name, method, headers, body, false)
}

/// The status subresource.
pub(crate) async fn rollout_status(
    State(kube): State<FakeKube>,
    Path((ns, name)): Path<(String, String)>,
    method: Method,
    headers: HeaderMap,
    body: String,
) -> Response {
    rollout_call(kube, ns, name, method, headers, body, true)
}

fn rollout_call(
    kube: FakeKube,
    ns: String,
    name: String,
    method: Method,
    headers: HeaderMap,
    body: String,
    status_subresource: bool,
) -> Response {
    if !crate::fakes::authorised(&kube, &headers) {
        return crate::fakes::status(403, "Forbidden", "rollouts.argoproj.io is forbidden".into());
    }
    let mut state = kube.argo.state.lock().unwrap();
    let key = (ns, name.clone());
    if !state.rollouts.contains_key(&key) {
        return not_found(&name);
    }
    if method == Method::PATCH {
        let content_type = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if content_type != "application/merge-patch+json" {
            return crate::fakes::status(
                415,
                "UnsupportedMediaType",
                format!("the fake takes merge patches, not {content_type}"),
            );
        }
        let Ok(patch) = serde_json::from_str::<Value>(&body) else {
            return crate::fakes::status(400, "BadRequest", "the patch is not JSON".into());
        };
        // The status subresource ignores spec changes and the main resource status changes.
        let part = if status_subresource { "status" } else { "spec" };
        let effective = json!({ part: patch[part].clone() });
        if status_subresource {
            state.patches.push(patch.clone());
        }
        let rollout = state
            .rollouts
            .get_mut(&key)
            .unwrap_or_else(|| unreachable!());
        merge(rollout, &effective);
        react(rollout, &patch);
        return axum::Json(rollout.clone()).into_response();
    }
    // A read: the controller may act on a template that changed since the previous read.
    let answer = state.rollouts[&key].clone();
    if let Some((hash, healthy, reads)) = state.next.take() {
        if reads > 0 {
            state.next = Some((hash, healthy, reads - 1));
        } else {
            let rollout = state
                .rollouts
                .get_mut(&key)
                .unwrap_or_else(|| unreachable!());
            let first_pause = next_pause(rollout, 0);
            let status = &mut rollout["status"];
            status["currentPodHash"] = json!(hash);
            if healthy && let Some(index) = first_pause {
                status["phase"] = json!("Paused");
                status["message"] = json!("CanaryPauseStep");
                status["currentStepIndex"] = json!(index);
                status["pauseConditions"] =
                    json!([{"reason": "CanaryPauseStep", "startTime": "2026-12-07T10:00:00Z"}]);
            } else if healthy {
                status["phase"] = json!("Paused");
                status["message"] = json!("BlueGreenPause");
                status["pauseConditions"] =
                    json!([{"reason": "BlueGreenPause", "startTime": "2026-12-07T10:00:00Z"}]);
                status["blueGreen"]["previewSelector"] = json!(hash);
            } else {
                status["phase"] = json!("Degraded");
                status["message"] = json!(format!(
                    "ProgressDeadlineExceeded: ReplicaSet \"{name}-{hash}\" has timed out progressing."
                ));
            }
            return axum::Json(rollout.clone()).into_response();
        }
    }
    axum::Json(answer).into_response()
}

/// The controller's answer to a status patch, as `kubectl argo rollouts` relies on it.
fn react(rollout: &mut Value, patch: &Value) {
    let status = &mut rollout["status"];
    if patch["status"]["abort"] == json!(true) {
        let stable = status["stableRS"].clone();
        status["phase"] = json!("Degraded");
        status["message"] = json!("RolloutAborted: Rollout aborted update to revision 2");
        status["blueGreen"]["previewSelector"] = stable;
        if let Some(map) = status.as_object_mut() {
            map.remove("pauseConditions");
        }
        return;
    }
    let resumed = patch["status"]
        .as_object()
        .is_some_and(|s| s.get("pauseConditions").is_some_and(Value::is_null));
    let index = status["currentStepIndex"].as_u64();
    if resumed
        && status["phase"] == "Paused"
        && let Some(index) = index
    {
        // A canary: on to the next pause step, or to the end.
        let after = usize::try_from(index)
            .unwrap_or(usize::MAX)
            .saturating_add(1);
        let next = next_pause(rollout, after);
        let status = &mut rollout["status"];
        if let Some(next) = next {
            status["currentStepIndex"] = json!(next);
            status["pauseConditions"] =
                json!([{"reason": "CanaryPauseStep", "startTime": "2026-12-07T10:00:01Z"}]);
        } else {
            let current = status["currentPodHash"].clone();
            status["stableRS"] = current;
            status["phase"] = json!("Healthy");
            status["message"] = json!("");
        }
        return;
    }
    if resumed && status["phase"] == "Paused" && status["abort"] != json!(true) {
        let current = status["currentPodHash"].clone();
        status["stableRS"] = current.clone();
        status["blueGreen"]["activeSelector"] = current;
        status["phase"] = json!("Healthy");
        status["message"] = json!("");
    }
}

/// The index of the first `pause` step at or after `from` of a canary Rollout.
fn next_pause(rollout: &Value, from: usize) -> Option<usize> {
    let steps = rollout["spec"]["strategy"]["canary"]["steps"].as_array()?;
    (from..steps.len()).find(|&i| steps[i].get("pause").is_some())
}

/// `…/services/{name}/proxy/{path}`: the pods the Service selects answer by their version.
pub(crate) async fn service_proxy(
    State(kube): State<FakeKube>,
    Path(params): Path<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if !crate::fakes::authorised(&kube, &headers) {
        return crate::fakes::status(403, "Forbidden", "services/proxy is forbidden".into());
    }
    let service = params["name"].split(':').next().unwrap_or_default();
    let path = format!("/{}", params.get("path").map_or("", String::as_str));
    let state = kube.argo.state.lock().unwrap();
    let Some(version) = selected_hash(&state, &params["ns"], service)
        .and_then(|hash| state.versions.get(&hash).cloned())
    else {
        return crate::fakes::status(
            503,
            "ServiceUnavailable",
            format!("no endpoints available for service \"{service}\""),
        );
    };
    match path.as_str() {
        "/healthz" if version.contains("unhealthy") => {
            (StatusCode::SERVICE_UNAVAILABLE, "database unreachable").into_response()
        }
        "/healthz" | "/readyz" => "ok".into_response(),
        "/api/orders" if version.contains("broken") => {
            (StatusCode::INTERNAL_SERVER_ERROR, "orders query failed").into_response()
        }
        "/api/orders" => {
            axum::Json(json!({"orders": [{"id": 1, "status": "paid"}], "version": version}))
                .into_response()
        }
        "/version" => version.into_response(),
        _ => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}
