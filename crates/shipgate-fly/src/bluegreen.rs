//! Blue-green on Fly, as flyctl does it but gated by shipgate and reversible: a green machine
//! per blue one, created cordoned (`skip_service_registration`: the Fly Proxy routes nothing
//! to it), waited until started and healthy, and tested directly at `staged_url` (Fly's
//! private network) before any user request reaches it. The switch uncordons every green
//! machine, then cordons every blue one; blue machines keep running, leased, until the release
//! is promoted, so an abort is one uncordon per blue machine (no cold start) and then the
//! green machines are destroyed. Promotion destroys the blue machines.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;
use shipgate_provider::{
    DeployRequest, Deployment, ProgressSink, ProviderError, RevisionId, StageOutcome, Staged,
    Verdict,
};
use tokio_util::sync::CancellationToken;

use crate::{FlyError, FlyProvider, Leases, Machine, RELEASE_KEY, REVERTED_KEY, now_ms};

/// Metadata key marking a machine created for a staged (green) release, with the release id.
pub const STAGED_KEY: &str = "shipgate_staged";

/// A release staged by this process.
pub(crate) struct StagedFly {
    /// The machines that served before (blue), as they were.
    blue: Vec<Machine>,
    /// Their leases, held and refreshed until promotion or abort.
    leases: Leases,
    /// The green machines created for the release.
    green: Vec<String>,
    /// Blue machines cordoned by the switch so far.
    cordoned_blue: Vec<String>,
    /// Green machines uncordoned so far (the first ones of `green`).
    uncordoned_green: usize,
}

impl FlyProvider {
    /// Whether blue-green can run: a URL that reaches single machines.
    pub(crate) fn can_stage_machines(&self) -> bool {
        self.settings.staged_url.is_some()
    }

    fn staged_endpoint(&self, machine_id: &str) -> Option<String> {
        self.settings.staged_url.as_ref().map(|template| {
            template
                .replace("{machine_id}", machine_id)
                .replace("{app}", &self.settings.app)
        })
    }

    /// Creates a cordoned green machine per blue one with `image`, waits for each to start and
    /// pass its checks. On any failure every green machine is destroyed and the blue leases
    /// released: the app is exactly as it was.
    pub(crate) async fn stage_green(
        &self,
        request: &DeployRequest,
        deadline: Instant,
        progress: &dyn ProgressSink,
        cancel: &CancellationToken,
    ) -> Result<StageOutcome, ProviderError> {
        let image = request.images.get(&self.settings.service).ok_or_else(|| {
            ProviderError::invalid(format!(
                "the deploy names no image for service `{}`",
                self.settings.service
            ))
        })?;
        if self.settings.require_pinned && !image.pinning(&[]).is_pinned() {
            return Err(FlyError::Invalid(format!(
                "image `{image}` is not pinned; production-like environments deploy a commit SHA tag or a digest"
            ))
            .into());
        }
        let release = format!("sg-{}", now_ms());
        let deployment = Deployment {
            revision: RevisionId(release.clone()),
            request: request.clone(),
        };
        let blue: Vec<Machine> = self
            .machines()
            .await?
            .into_iter()
            .filter(|m| m.metadata(STAGED_KEY).is_none() || !m.cordoned)
            .collect();
        let ids: Vec<String> = blue.iter().map(|m| m.id.clone()).collect();
        let leases = match self.lease_all(&ids, &release).await {
            Ok(leases) => leases,
            Err(reason) => {
                return Ok(StageOutcome::NotHealthy(
                    deployment,
                    Verdict::Failed {
                        reason: format!("{reason}; no machine was created, nothing was changed"),
                        diagnostics: Vec::new(),
                    },
                ));
            }
        };
        let min_secrets_version = *self.min_secrets_version.lock().await;
        let mut green = Vec::new();
        let mut failure = None;
        for machine in &blue {
            let mut config = machine.config.clone();
            config["image"] = json!(image.to_string());
            config["metadata"][RELEASE_KEY] = json!(release);
            config["metadata"][STAGED_KEY] = json!(release);
            if let Some(meta) = config["metadata"].as_object_mut() {
                meta.remove(REVERTED_KEY);
            }
            let mut body = json!({
                "config": config,
                "region": machine.region,
                "skip_service_registration": true,
            });
            if let Some(v) = min_secrets_version {
                body["min_secrets_version"] = json!(v);
            }
            let created = self
                .client
                .call(
                    Method::POST,
                    &format!("v1/apps/{}/machines", self.settings.app),
                    &[],
                    Some(&body),
                    None,
                    "create",
                    None,
                    Duration::from_secs(60),
                )
                .await;
            let answer = match created {
                Ok(answer) => answer,
                Err(err) => {
                    failure = Some((
                        format!("creating the green machine for {}: {err}", machine.id),
                        Vec::new(),
                    ));
                    break;
                }
            };
            let id = answer.body["id"].as_str().unwrap_or_default().to_owned();
            let version = answer.body["version"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            if id.is_empty() {
                failure = Some((
                    "Fly created a machine but named no id".to_owned(),
                    Vec::new(),
                ));
                break;
            }
            green.push(id.clone());
            let wanted = image.to_string();
            let healthy = match self
                .wait_started(&id, &version, &wanted, deadline, progress, cancel)
                .await
            {
                Ok(()) => self.wait_checks(&id, deadline, progress, cancel).await,
                Err(failure) => Err(failure),
            };
            if let Err(failed) = healthy {
                failure = Some((failed.reason, failed.diagnostics));
                break;
            }
        }
        if let Some((reason, diagnostics)) = failure {
            let problems = self.destroy_all(&green, &HashMap::new()).await;
            self.release_all(leases).await;
            let cleanup = if problems.is_empty() {
                "every green machine was destroyed; the blue machines never stopped serving"
                    .to_owned()
            } else {
                format!("could not destroy {}", problems.join("; "))
            };
            let verdict = if cancel.is_cancelled() {
                Verdict::Cancelled
            } else {
                Verdict::Failed {
                    reason: format!("{reason}; {cleanup}"),
                    diagnostics,
                }
            };
            return Ok(StageOutcome::NotHealthy(deployment, verdict));
        }
        let endpoints = green
            .first()
            .and_then(|id| self.staged_endpoint(id))
            .map(|url| (self.settings.service.clone(), url))
            .into_iter()
            .collect();
        self.staged.lock().await.insert(
            release,
            StagedFly {
                blue,
                leases,
                green,
                cordoned_blue: Vec::new(),
                uncordoned_green: 0,
            },
        );
        Ok(StageOutcome::Staged(Staged {
            deployment,
            endpoints,
        }))
    }

    /// Moves traffic to green. Below 100 %, a canary step: green machines are uncordoned one
    /// by one beside the blue ones until their share (k green among n blue take k / (n + k))
    /// is as near to `percent` as machines allow, at least one; the share reached is
    /// returned. At 100 %: every green machine uncordoned, then every blue one cordoned (still
    /// running). A failure stops at once; the pipeline then aborts.
    pub(crate) async fn switch_to_green(
        &self,
        staged: &Deployment,
        percent: u8,
    ) -> Result<u8, ProviderError> {
        shipgate_provider::check_share(percent)?;
        let mut all = self.staged.lock().await;
        let state = all
            .get_mut(&staged.revision.0)
            .ok_or_else(|| shipgate_provider::not_staged(staged))?;
        let blue = state.blue.len();
        let wanted = if percent == 100 {
            state.green.len()
        } else {
            green_for_share(percent, blue, state.green.len())
        };
        while state.uncordoned_green < wanted {
            let id = state.green[state.uncordoned_green].clone();
            self.machine_action(&id, "uncordon", None).await?;
            state.uncordoned_green += 1;
        }
        if percent < 100 {
            return Ok(share(state.uncordoned_green, blue));
        }
        for machine in &state.blue {
            if state.cordoned_blue.contains(&machine.id) {
                continue;
            }
            let nonce = state.leases.nonces.get(&machine.id).map(String::as_str);
            self.machine_action(&machine.id, "cordon", nonce).await?;
            state.cordoned_blue.push(machine.id.clone());
        }
        Ok(100)
    }

    /// Traffic back to blue (every blue machine the switch cordoned is uncordoned, all at
    /// once; after a canary step, the serving green machines are cordoned, all at once), then
    /// the green machines are destroyed and the leases released. If a blue machine cannot be
    /// uncordoned, the green machines stay and serve (every one uncordoned), so the app ends
    /// on one whole colour, and the error says so.
    pub(crate) async fn abort_green(&self, staged: &Deployment) -> Result<(), ProviderError> {
        let state = self
            .staged
            .lock()
            .await
            .remove(&staged.revision.0)
            .ok_or_else(|| shipgate_provider::not_staged(staged))?;
        // Every blue machine at once: traffic is back after one API round trip.
        let nonces = &state.leases.nonces;
        let back =
            futures_util::future::join_all(state.cordoned_blue.iter().map(|id| async move {
                let nonce = nonces.get(id).map(String::as_str);
                self.machine_action(id, "uncordon", nonce)
                    .await
                    .map_err(|err| format!("machine {id}: {err}"))
            }))
            .await;
        let problems: Vec<String> = back.into_iter().filter_map(Result::err).collect();
        if !problems.is_empty() {
            for id in &state.green {
                let _ = self.machine_action(id, "uncordon", None).await;
            }
            self.release_all(state.leases).await;
            return Err(FlyError::Unavailable {
                call: "abort".into(),
                message: format!(
                    "blue machines could not take traffic back ({}); the green machines were kept serving so the app runs one whole release",
                    problems.join("; ")
                ),
            }
            .into());
        }
        // A canary's green machines leave the proxy at once (one round trip), then go.
        let serving_green = &state.green[..state.uncordoned_green.min(state.green.len())];
        if state.cordoned_blue.is_empty() {
            futures_util::future::join_all(
                serving_green
                    .iter()
                    .map(|id| self.machine_action(id, "cordon", None)),
            )
            .await;
        }
        let problems = self.destroy_all(&state.green, &HashMap::new()).await;
        self.release_all(state.leases).await;
        if problems.is_empty() {
            Ok(())
        } else {
            Err(FlyError::Unavailable {
                call: "abort".into(),
                message: format!(
                    "traffic is back on the blue machines, but green machines could not be destroyed: {}",
                    problems.join("; ")
                ),
            }
            .into())
        }
    }

    /// Destroys the blue machines (green serves).
    pub(crate) async fn promote_green(&self, staged: &Deployment) -> Result<(), ProviderError> {
        let state = self
            .staged
            .lock()
            .await
            .remove(&staged.revision.0)
            .ok_or_else(|| shipgate_provider::not_staged(staged))?;
        if state.cordoned_blue.len() != state.blue.len() {
            let release = staged.revision.0.clone();
            self.staged.lock().await.insert(release, state);
            return Err(ProviderError::invalid(
                "the green machines take no traffic yet; shift to 100% before promoting",
            ));
        }
        state.leases.stop.cancel();
        let ids: Vec<String> = state.blue.iter().map(|m| m.id.clone()).collect();
        let problems = self.destroy_all(&ids, &state.leases.nonces).await;
        let _ = state.leases.refresher.await;
        if problems.is_empty() {
            Ok(())
        } else {
            Err(FlyError::Unavailable {
                call: "promote".into(),
                message: format!(
                    "the green machines serve, but blue machines could not be destroyed (they are cordoned): {}",
                    problems.join("; ")
                ),
            }
            .into())
        }
    }

    /// Destroys the green machines a run that died mid-stage left behind: cordoned (they never
    /// served), marked with a staged release this process is not working on. Returns what it
    /// did, one note per machine.
    pub(crate) async fn destroy_orphaned_green(&self) -> Result<Vec<String>, ProviderError> {
        let ours: Vec<String> = self.staged.lock().await.keys().cloned().collect();
        let orphans: Vec<(String, String)> = self
            .machines()
            .await?
            .into_iter()
            .filter(|m| m.cordoned)
            .filter_map(|m| {
                let release = m.metadata(STAGED_KEY)?.to_owned();
                (!ours.contains(&release)).then_some((m.id, release))
            })
            .collect();
        let ids: Vec<String> = orphans.iter().map(|(id, _)| id.clone()).collect();
        let problems = self.destroy_all(&ids, &HashMap::new()).await;
        if !problems.is_empty() {
            return Err(FlyError::Unavailable {
                call: "recover".into(),
                message: format!(
                    "green machines left by an interrupted deploy could not be destroyed: {}",
                    problems.join("; ")
                ),
            }
            .into());
        }
        Ok(orphans
            .into_iter()
            .map(|(id, release)| {
                format!("destroyed green machine {id} (cordoned, never served) left by the interrupted release {release}")
            })
            .collect())
    }

    /// `POST …/machines/{id}/{action}` (cordon, uncordon), with the lease nonce when held.
    async fn machine_action(
        &self,
        id: &str,
        action: &'static str,
        nonce: Option<&str>,
    ) -> Result<(), FlyError> {
        self.client
            .call(
                Method::POST,
                &format!("v1/apps/{}/machines/{id}/{action}", self.settings.app),
                &[],
                None,
                nonce,
                action,
                Some(id),
                Duration::from_secs(30),
            )
            .await
            .map(|_| ())
    }

    /// Destroys each machine of `ids` (force: running ones are killed); returns what failed.
    async fn destroy_all(&self, ids: &[String], nonces: &HashMap<String, String>) -> Vec<String> {
        let mut problems = Vec::new();
        for id in ids {
            let result = self
                .client
                .call(
                    Method::DELETE,
                    &format!("v1/apps/{}/machines/{id}", self.settings.app),
                    &[("force", "true".to_owned())],
                    None,
                    nonces.get(id).map(String::as_str),
                    "destroy",
                    Some(id),
                    Duration::from_secs(60),
                )
                .await;
            if let Err(err) = result {
                problems.push(format!("machine {id}: {err}"));
            }
        }
        problems
    }
}

/// How many of `green` machines to put beside `blue` ones for a share near `percent` (< 100):
/// k / (blue + k) ≈ percent / 100, at least one.
fn green_for_share(percent: u8, blue: usize, green: usize) -> usize {
    let p = f64::from(percent) / 100.0;
    #[allow(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss
    )]
    let k = (p * blue as f64 / (1.0 - p)).round() as usize;
    k.clamp(1, green.max(1))
}

/// The share (percent) `green` uncordoned machines take beside `blue` ones.
fn share(green: usize, blue: usize) -> u8 {
    let total = green + blue;
    if total == 0 {
        return 0;
    }
    u8::try_from((green * 100 + total / 2) / total).unwrap_or(100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canary_shares_are_machine_sized() {
        // Three blue machines: one green is 25 %, three are 50 %.
        assert_eq!(green_for_share(10, 3, 3), 1);
        assert_eq!(share(1, 3), 25);
        assert_eq!(green_for_share(50, 3, 3), 3);
        assert_eq!(share(3, 3), 50);
        assert_eq!(green_for_share(90, 3, 3), 3);
        // One blue machine: one green is half the traffic.
        assert_eq!(green_for_share(10, 1, 1), 1);
        assert_eq!(share(1, 1), 50);
        assert_eq!(share(0, 0), 0);
    }
}
