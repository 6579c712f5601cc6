//! Blue-green through an Argo Rollouts `Rollout` the chart renders (`[targets.helm] rollout`),
//! driven the way `kubectl argo rollouts` drives it, with shipgate's gates in between:
//!
//! 1. **Stage**: `helm upgrade` (as a rolling deploy) changes the Rollout's template; the
//!    controller brings up the new ReplicaSet behind the *preview* Service and, with
//!    `autoPromotionEnabled: false`, pauses (`phase: Paused`, a `BlueGreenPause` condition).
//!    The *active* Service, which users reach, still selects the old ReplicaSet.
//! 2. **Test before traffic**: the preview Service is reached through the Kubernetes API's
//!    service proxy (`/api/v1/namespaces/NS/services/NAME/proxy/…`), so a CI runner without
//!    ingress can test it: a loopback bridge forwards each request with the cluster's
//!    credentials, and its address is the staged endpoint.
//! 3. **Promote** (`shift` 100): the plugin's patch on the status subresource,
//!    `{"status":{"pauseConditions":null}}` (and `{"spec":{"paused":false}}` when set); the
//!    controller moves the active Service to the new ReplicaSet. shipgate waits until the
//!    Rollout is `Healthy` with the new ReplicaSet stable.
//! 4. **Abort**: `{"status":{"abort":true}}` puts the active Service back on the old
//!    ReplicaSet at once; then, because the template still describes the new version, the
//!    Helm release is rolled back to the revision that served before (the notes: leaving the
//!    aborted state would otherwise go to the new version again).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use serde_json::{Value, json};
use shipgate_provider::{
    DeployRequest, Deployment, ProgressSink, Provider, ProviderError, RevisionId, StageOutcome,
    Staged, Verdict, WaitProgress,
};
use tokio_util::sync::CancellationToken;

use crate::HelmProvider;

/// The largest request or response body the preview bridge carries.
const BRIDGE_BODY_CAP: usize = 8 * 1024 * 1024;

/// A release staged behind the preview Service by this process.
pub(crate) struct StagedRollout {
    /// The pod hash that served before (`status.stableRS`).
    stable_hash: String,
    /// The Helm revision that served before, for the rollback after an abort.
    previous_revision: Option<u64>,
    /// Stops the preview bridge.
    bridge: CancellationToken,
}

fn rollouts_resource() -> ApiResource {
    ApiResource {
        group: "argoproj.io".into(),
        version: "v1alpha1".into(),
        api_version: "argoproj.io/v1alpha1".into(),
        kind: "Rollout".into(),
        plural: "rollouts".into(),
    }
}

/// What a Rollout says, as far as staging needs it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RolloutStatus {
    phase: String,
    message: String,
    stable_hash: String,
    current_hash: String,
    /// Paused where shipgate decides: `BlueGreenPause`, or `CanaryPauseStep`.
    paused_for_promotion: bool,
    /// A canary strategy (`spec.strategy.canary`) rather than blue-green.
    canary: bool,
    /// The Service in front of the new pods: `previewService` or `canaryService`.
    staged_service: String,
    spec_paused: bool,
    /// Canary: the step the Rollout is at.
    step_index: Option<usize>,
    /// Canary: the share of traffic the canary has (`status.canary.weights`, or the last
    /// `setWeight` before the current step).
    weight: u8,
}

impl RolloutStatus {
    fn read(object: &DynamicObject) -> RolloutStatus {
        let status = &object.data["status"];
        let strategy = &object.data["spec"]["strategy"];
        let word = |v: &Value| v.as_str().unwrap_or_default().to_owned();
        let canary = strategy["canary"].is_object();
        let step_index = status["currentStepIndex"]
            .as_u64()
            .and_then(|i| usize::try_from(i).ok());
        let weight = status["canary"]["weights"]["canary"]["weight"]
            .as_u64()
            .or_else(|| {
                let steps = strategy["canary"]["steps"].as_array()?;
                steps[..step_index.unwrap_or(0).min(steps.len())]
                    .iter()
                    .rev()
                    .find_map(|step| step["setWeight"].as_u64())
            })
            .unwrap_or(0);
        RolloutStatus {
            phase: word(&status["phase"]),
            message: word(&status["message"]),
            stable_hash: word(&status["stableRS"]),
            current_hash: word(&status["currentPodHash"]),
            paused_for_promotion: status["pauseConditions"].as_array().is_some_and(|c| {
                c.iter()
                    .any(|c| c["reason"] == "BlueGreenPause" || c["reason"] == "CanaryPauseStep")
            }),
            canary,
            staged_service: if canary {
                word(&strategy["canary"]["canaryService"])
            } else {
                word(&strategy["blueGreen"]["previewService"])
            },
            spec_paused: object.data["spec"]["paused"] == json!(true),
            step_index,
            weight: u8::try_from(weight.min(100)).unwrap_or(100),
        }
    }
}

impl HelmProvider {
    fn rollouts(&self) -> Result<(Api<DynamicObject>, String), ProviderError> {
        let (Some(client), Some(name)) = (&self.kube, &self.settings.rollout) else {
            return Err(ProviderError::invalid(
                "the Helm provider stages only with [targets.helm] rollout (an Argo Rollout the chart renders) and a Kubernetes API it can reach",
            ));
        };
        Ok((
            Api::namespaced_with(
                client.clone(),
                &self.settings.namespace,
                &rollouts_resource(),
            ),
            name.clone(),
        ))
    }

    /// Whether the Rollout (read now) has a canary strategy; `false` when it cannot be read
    /// (not installed yet, no Argo Rollouts).
    pub(crate) async fn rollout_is_canary(&self) -> bool {
        self.rollout_status().await.is_ok_and(|s| s.canary)
    }

    async fn rollout_status(&self) -> Result<RolloutStatus, ProviderError> {
        let (api, name) = self.rollouts()?;
        let object = api.get(&name).await.map_err(|e| kube_error(&name, e))?;
        Ok(RolloutStatus::read(&object))
    }

    /// `helm upgrade`, then waits for the Rollout to pause for promotion with the new
    /// ReplicaSet behind the preview Service.
    pub(crate) async fn stage_rollout(
        &self,
        request: &DeployRequest,
        deadline: Instant,
        progress: &dyn ProgressSink,
        cancel: &CancellationToken,
    ) -> Result<StageOutcome, ProviderError> {
        let before = self.rollout_status().await?;
        if before.staged_service.is_empty() {
            return Err(ProviderError::invalid(format!(
                "Rollout `{}` has neither spec.strategy.blueGreen.previewService nor spec.strategy.canary.canaryService; shipgate tests the new pods through that Service",
                self.settings.rollout.as_deref().unwrap_or_default()
            )));
        }
        let previous_revision = self.live_revision().await?;
        let deployment = self.deploy(request).await?;
        if let Some(verdict) = self
            .await_helm(&deployment, deadline, progress, cancel)
            .await?
        {
            return Ok(StageOutcome::NotHealthy(deployment, verdict));
        }
        let name = self.settings.rollout.clone().unwrap_or_default();
        let verdict = loop {
            let status = self.rollout_status().await?;
            let new = !status.current_hash.is_empty() && status.current_hash != before.stable_hash;
            if new && status.phase == "Paused" && status.paused_for_promotion {
                if status.weight > 0 {
                    // A canary's first pause already gives it users: nothing could be tested
                    // before traffic.
                    break Some(Verdict::Failed {
                        reason: format!(
                            "Rollout {name} first pauses with {}% of traffic on the canary; shipgate tests a release before any user request, so the canary steps must begin with a pause at weight 0 (setCanaryScale and setWeight: 0, then pause: {{}})",
                            status.weight
                        ),
                        diagnostics: Vec::new(),
                    });
                }
                break None;
            }
            if new && status.phase == "Degraded" {
                break Some(Verdict::Failed {
                    reason: format!(
                        "Rollout {name} is Degraded: {}",
                        shipgate_core::printable(&status.message)
                    ),
                    diagnostics: self.explain().await,
                });
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let waiting_for = format!(
                "Rollout {name}: {} ({}), waiting for the new ReplicaSet to pause for promotion",
                if status.phase.is_empty() {
                    "no phase yet"
                } else {
                    &status.phase
                },
                shipgate_core::printable(&status.message)
            );
            if left.is_zero() {
                break Some(Verdict::TimedOut {
                    waiting_for,
                    diagnostics: self.explain().await,
                });
            }
            progress.report(&WaitProgress {
                waiting_for,
                remaining: left,
            });
            tokio::select! {
                () = cancel.cancelled() => break Some(Verdict::Cancelled),
                () = tokio::time::sleep(Duration::from_millis(500).min(left)) => {}
            }
        };
        let state = StagedRollout {
            stable_hash: before.stable_hash.clone(),
            previous_revision,
            bridge: CancellationToken::new(),
        };
        if let Some(verdict) = verdict {
            // Nothing reached users; put the template back so the controller settles on the
            // release that serves.
            self.undo(&state).await?;
            return Ok(StageOutcome::NotHealthy(deployment, verdict));
        }
        let endpoint = self
            .bridge(&before.staged_service, state.bridge.clone())
            .await?;
        let endpoints = request
            .images
            .keys()
            .map(|service| (service.clone(), endpoint.clone()))
            .collect();
        self.staged
            .lock()
            .await
            .insert(deployment.revision.0.clone(), state);
        Ok(StageOutcome::Staged(Staged {
            deployment,
            endpoints,
        }))
    }

    /// Moves traffic with the plugin's promote patch (`pauseConditions: null`, and
    /// `spec.paused: false` when set). Blue-green: only all at once; waits until the Rollout
    /// is `Healthy` with the new ReplicaSet stable (the active Service selects it). Canary:
    /// resumes from pause to pause until the canary's weight reaches `percent` (100: until the
    /// Rollout is `Healthy` with the new ReplicaSet stable); returns the weight reached.
    pub(crate) async fn promote_rollout(
        &self,
        staged: &Deployment,
        percent: u8,
    ) -> Result<u8, ProviderError> {
        if !self.staged.lock().await.contains_key(&staged.revision.0) {
            return Err(shipgate_provider::not_staged(staged));
        }
        let (api, name) = self.rollouts()?;
        let mut status = self.rollout_status().await?;
        if !status.canary {
            shipgate_provider::require_full_shift("a blue-green Rollout", percent)?;
        }
        let new_hash = status.current_hash.clone();
        let deadline = Instant::now() + self.settings.timeout;
        loop {
            let promoted = status.phase == "Healthy" && status.stable_hash == new_hash;
            if promoted {
                return Ok(100);
            }
            if status.canary
                && percent < 100
                && status.paused_for_promotion
                && status.weight >= percent
            {
                return Ok(status.weight);
            }
            let params = PatchParams::default();
            api.patch_status(
                &name,
                &params,
                &Patch::Merge(json!({"status": {"pauseConditions": null}})),
            )
            .await
            .map_err(|e| kube_error(&name, e))?;
            if status.spec_paused {
                api.patch(
                    &name,
                    &params,
                    &Patch::Merge(json!({"spec": {"paused": false}})),
                )
                .await
                .map_err(|e| kube_error(&name, e))?;
            }
            // Until the next pause, or the end.
            let from = status.step_index;
            status = loop {
                let now = self.rollout_status().await?;
                let moved_on =
                    now.phase == "Paused" && now.paused_for_promotion && now.step_index != from;
                if now.phase == "Healthy" && now.stable_hash == new_hash || moved_on {
                    break now;
                }
                if now.phase == "Degraded" || Instant::now() >= deadline {
                    return Err(ProviderError::platform(format!(
                        "Rollout {name} did not reach {percent}%: {} ({})",
                        now.phase,
                        shipgate_core::printable(&now.message)
                    )));
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            };
        }
    }

    /// Aborts the Rollout (the active Service goes back to the old ReplicaSet at once), then
    /// rolls the Helm release back to the revision that served before.
    pub(crate) async fn abort_rollout(&self, staged: &Deployment) -> Result<(), ProviderError> {
        let state = self
            .staged
            .lock()
            .await
            .remove(&staged.revision.0)
            .ok_or_else(|| shipgate_provider::not_staged(staged))?;
        state.bridge.cancel();
        self.undo(&state).await
    }

    /// The release serves from the new ReplicaSet; the bridge closes. Argo scales the old
    /// ReplicaSet down after its `scaleDownDelaySeconds`.
    pub(crate) async fn finish_rollout(&self, staged: &Deployment) -> Result<(), ProviderError> {
        let state = self
            .staged
            .lock()
            .await
            .remove(&staged.revision.0)
            .ok_or_else(|| shipgate_provider::not_staged(staged))?;
        state.bridge.cancel();
        Ok(())
    }

    /// Abort, then the Helm rollback; then waits until the active Service selects the old
    /// ReplicaSet again (read back from the Rollout's status).
    async fn undo(&self, state: &StagedRollout) -> Result<(), ProviderError> {
        let (api, name) = self.rollouts()?;
        api.patch_status(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"abort": true}})),
        )
        .await
        .map_err(|e| kube_error(&name, e))?;
        if let Some(previous) = state.previous_revision {
            let back = self.rollback(&RevisionId(previous.to_string())).await?;
            let deadline = Instant::now() + self.settings.timeout;
            let quiet = |_: &WaitProgress| {};
            if let Some(verdict) = self
                .await_helm(&back, deadline, &quiet, &CancellationToken::new())
                .await?
            {
                return Err(ProviderError::platform(format!(
                    "Rollout {name} was aborted (users are on the previous ReplicaSet), but the Helm rollback to revision {previous} failed: {verdict:?}"
                )));
            }
        }
        let status = self.rollout_status().await?;
        if !state.stable_hash.is_empty() && status.stable_hash != state.stable_hash {
            return Err(ProviderError::platform(format!(
                "Rollout {name} was aborted, but its stable ReplicaSet is {} rather than {}",
                status.stable_hash, state.stable_hash
            )));
        }
        Ok(())
    }

    /// A loopback HTTP server that forwards every request to `service` through the Kubernetes
    /// API's service proxy with the cluster's credentials, until `stop`. Returns its base URL.
    async fn bridge(
        &self,
        service: &str,
        stop: CancellationToken,
    ) -> Result<String, ProviderError> {
        let Some(client) = self.kube.clone() else {
            return Err(ProviderError::invalid(
                "no Kubernetes API to reach the preview Service",
            ));
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| ProviderError::platform(format!("cannot open the preview bridge: {e}")))?;
        let addr = listener
            .local_addr()
            .map_err(|e| ProviderError::platform(format!("cannot open the preview bridge: {e}")))?;
        let prefix: Arc<str> = format!(
            "/api/v1/namespaces/{}/services/{service}/proxy",
            self.settings.namespace
        )
        .into();
        tokio::spawn(async move {
            loop {
                let inbound = tokio::select! {
                    () = stop.cancelled() => break,
                    accepted = listener.accept() => match accepted {
                        Ok((inbound, _)) => inbound,
                        Err(_) => continue,
                    },
                };
                let (client, prefix) = (client.clone(), Arc::clone(&prefix));
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        forward(client.clone(), Arc::clone(&prefix), request)
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(inbound), service)
                        .await;
                });
            }
        });
        Ok(format!("http://{addr}"))
    }

    /// The Helm revision that serves now (`deployed`), if any.
    async fn live_revision(&self) -> Result<Option<u64>, ProviderError> {
        Ok(self
            .history_entries()
            .await?
            .iter()
            .rev()
            .find(|e| e.status == crate::cli::ReleaseStatus::Deployed)
            .map(|e| e.revision))
    }
}

/// One request through the service proxy; a failure is a 502 naming the cause.
async fn forward(
    client: kube::Client,
    prefix: Arc<str>,
    request: hyper::Request<hyper::body::Incoming>,
) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    let bad_gateway = |message: String| {
        let mut response = hyper::Response::new(Full::new(Bytes::from(message)));
        *response.status_mut() = hyper::StatusCode::BAD_GATEWAY;
        response
    };
    let (parts, body) = request.into_parts();
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", hyper::http::uri::PathAndQuery::as_str);
    let body = match Limited::new(body, BRIDGE_BODY_CAP).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(err) => return Ok(bad_gateway(format!("request body: {err}\n"))),
    };
    let mut outbound = hyper::Request::builder()
        .method(parts.method)
        .uri(format!("{prefix}{path}"));
    for (name, value) in &parts.headers {
        if name != hyper::header::HOST && name != hyper::header::AUTHORIZATION {
            outbound = outbound.header(name, value);
        }
    }
    let Ok(outbound) = outbound.body(body.to_vec()) else {
        return Ok(bad_gateway("cannot build the proxied request\n".to_owned()));
    };
    let response = match client.send(outbound.map(kube::client::Body::from)).await {
        Ok(response) => response,
        Err(err) => {
            return Ok(bad_gateway(format!(
                "the Kubernetes API service proxy did not answer: {err}\n"
            )));
        }
    };
    let (parts, body) = response.into_parts();
    match Limited::new(body, BRIDGE_BODY_CAP).collect().await {
        Ok(collected) => Ok(hyper::Response::from_parts(
            parts,
            Full::new(collected.to_bytes()),
        )),
        Err(err) => Ok(bad_gateway(format!("response body: {err}\n"))),
    }
}

fn kube_error(name: &str, err: kube::Error) -> ProviderError {
    let message = format!("Rollout {name}: {err}");
    match &err {
        kube::Error::Api(status) if matches!(status.code, 401 | 403) => {
            ProviderError::unauthorized(message)
        }
        kube::Error::Api(status) if status.code == 404 => ProviderError::not_found(format!(
            "{message} (is Argo Rollouts installed, and does the chart render Rollout `{name}` in this namespace?)"
        )),
        kube::Error::Api(_) => ProviderError::invalid(message),
        _ => ProviderError::unavailable(message),
    }
    .caused_by(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_paused_blue_green_rollout_is_read_from_its_status() {
        let object: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
            "metadata": {"name": "shop"},
            "spec": {"paused": true, "strategy": {"blueGreen": {"activeService": "shop", "previewService": "shop-preview"}}},
            "status": {"phase": "Paused", "message": "BlueGreenPause", "stableRS": "a1", "currentPodHash": "b2",
                       "pauseConditions": [{"reason": "BlueGreenPause", "startTime": "2026-12-07T10:00:00Z"}]}
        }))
        .unwrap();
        let status = RolloutStatus::read(&object);
        assert_eq!(
            (status.stable_hash.as_str(), status.current_hash.as_str()),
            ("a1", "b2")
        );
        assert!(status.paused_for_promotion && status.spec_paused && !status.canary);
        assert_eq!(status.staged_service, "shop-preview");
        let canary: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
            "metadata": {"name": "shop"},
            "spec": {"strategy": {"canary": {"canaryService": "shop-canary", "stableService": "shop",
                "steps": [{"setCanaryScale": {"replicas": 1}}, {"setWeight": 0}, {"pause": {}}, {"setWeight": 20}, {"pause": {}}]}}},
            "status": {"phase": "Paused", "currentStepIndex": 4, "stableRS": "a1", "currentPodHash": "b2",
                       "pauseConditions": [{"reason": "CanaryPauseStep", "startTime": "2026-12-07T10:00:00Z"}]}
        }))
        .unwrap();
        let status = RolloutStatus::read(&canary);
        assert!(status.canary && status.paused_for_promotion);
        assert_eq!(
            (status.staged_service.as_str(), status.weight),
            ("shop-canary", 20)
        );
    }
}
