//! The Fly.io provider: a rolling update of one process group's Machines through the Machines
//! REST API (no flyctl), verified machine by machine, restored exactly on failure.
//!
//! For each machine, in order (the first alone, then batches):
//! lease (short TTL, refreshed in the background, always released) → full-config update with
//! the new image and `current_version` → `/wait` for the new version in ≤ 60 s slices (408
//! means "not yet") → read the machine back: its `version` and image must be the ones just
//! deployed (Fly silently reverts a failed update) → every configured check `passing`, with at
//! least one result per check.
//!
//! When a machine fails, the rollout stops and every machine already changed gets its previous
//! full configuration back (recorded before anything changed), so "failed" means the previous
//! release is what runs again. Releases are recorded in machine metadata
//! (`shipgate_release`; a restore adds `shipgate_reverted`), which is where [`Provider::history`]
//! reads them from.

mod bluegreen;
mod client;

pub use bluegreen::STAGED_KEY;

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};
use shipgate_core::{ImageRef, Redactor, Secret, ServiceName, quote_outside};
use shipgate_provider::{
    DeployRequest, Deployment, PlannedChange, ProgressSink, Provider, ProviderError, Readiness,
    Revision, RevisionId, RevisionStatus, Running, StageOutcome, Verdict, WaitProgress,
};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use client::Client;
pub use client::FlyToken;

/// Metadata key naming the shipgate release a machine config belongs to.
pub const RELEASE_KEY: &str = "shipgate_release";
/// Metadata key a restore writes: the release that failed and was undone.
pub const REVERTED_KEY: &str = "shipgate_reverted";

/// Errors of the Machines API. Messages never contain the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FlyError {
    /// The configuration or the app cannot be deployed (no machines, unmanaged machines, an
    /// unpinned image). Nothing was changed.
    #[error("{0}")]
    Invalid(String),
    /// 401/403.
    #[error(
        "Fly refused {call}: {message}. shipgate sent FLY_API_TOKEN with the `{scheme}` scheme; use a deploy token for this app (`fly tokens create deploy -a APP`)"
    )]
    Unauthorized {
        /// The call.
        call: String,
        /// `FlyV1` or `Bearer`.
        scheme: &'static str,
        /// Fly's message.
        message: String,
    },
    /// 404.
    #[error("Fly has no {call}: {message}")]
    NotFound {
        /// The call.
        call: String,
        /// Fly's message.
        message: String,
    },
    /// 409: a lease held by someone else, or the machine changed since it was read.
    #[error("Fly {call} conflicts: {message}")]
    Conflict {
        /// The call.
        call: String,
        /// Fly's message.
        message: String,
    },
    /// Another 4xx.
    #[error("Fly rejected {call} ({status}): {message}")]
    Rejected {
        /// The call.
        call: String,
        /// HTTP status.
        status: u16,
        /// Fly's message.
        message: String,
    },
    /// No usable answer (network, 5xx, 429) after the retries.
    #[error("Fly {call} unavailable: {message}")]
    Unavailable {
        /// The call.
        call: String,
        /// Why.
        message: String,
    },
}

impl From<FlyError> for ProviderError {
    fn from(err: FlyError) -> Self {
        let kind: fn(String) -> ProviderError = match &err {
            FlyError::Invalid(_) | FlyError::Conflict { .. } | FlyError::Rejected { .. } => {
                ProviderError::invalid
            }
            FlyError::Unauthorized { .. } => ProviderError::unauthorized,
            FlyError::NotFound { .. } => ProviderError::not_found,
            FlyError::Unavailable { .. } => ProviderError::unavailable,
        };
        kind(err.to_string()).caused_by(err)
    }
}

/// How machines are updated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Strategy {
    /// The first machine alone, then batches of `max_unavailable` (a fraction of the group
    /// below 1, or a count), each machine verified before the next batch.
    Rolling {
        /// flyctl's default is 0.33.
        max_unavailable: f64,
    },
    /// Every machine at once, each still verified.
    Immediate,
}

/// How to reach one Fly app's process group.
#[derive(Debug, Clone)]
pub struct FlySettings {
    /// Machines API base URL (`https://api.machines.dev`).
    pub api_url: String,
    /// The token.
    pub token: FlyToken,
    /// The Fly app (`FLY_APP`).
    pub app: String,
    /// shipgate's service name (the key in deploy requests).
    pub service: ServiceName,
    /// The Fly process group its machines belong to (`app` by default in fly.toml).
    pub process_group: String,
    /// Update strategy.
    pub strategy: Strategy,
    /// Lease TTL (flyctl uses 13 s, refreshed every TTL/3, so an interrupted deploy blocks the
    /// next one for seconds, not minutes).
    pub lease_ttl: Duration,
    /// Time between machine reads while waiting for checks.
    pub poll_interval: Duration,
    /// Refuse unpinned images (production-like environments).
    pub require_pinned: bool,
    /// Masks the token and the run's secrets in messages.
    pub redactor: Redactor,
    /// Where this runner reaches one machine directly, for testing a staged (green) release
    /// before it takes traffic: a URL template with `{machine_id}` and `{app}`, such as
    /// `http://{machine_id}.vm.{app}.internal:8080` over Fly's private network. Green
    /// machines are cordoned, and the Fly Proxy routes nothing to a cordoned machine, so the
    /// public URL cannot reach them. Without it, the provider cannot stage.
    pub staged_url: Option<String>,
}

/// A machine as shipgate reads it.
#[derive(Debug, Clone, Deserialize)]
struct Machine {
    id: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    version: String,
    #[serde(default)]
    config: Value,
    #[serde(default)]
    checks: Vec<Check>,
    #[serde(default)]
    events: Vec<Value>,
    /// `ok`, `unknown` or `unreachable`: the machine's host as Fly last saw it.
    #[serde(default)]
    host_status: Option<String>,
    #[serde(default)]
    region: String,
    /// Services disabled: the Fly Proxy routes no request to it.
    #[serde(default)]
    cordoned: bool,
}

#[derive(Debug, Clone, Deserialize)]
struct Check {
    name: String,
    status: String,
    #[serde(default)]
    output: String,
}

impl Machine {
    fn image(&self) -> Option<ImageRef> {
        self.config["image"].as_str()?.parse().ok()
    }

    fn metadata(&self, key: &str) -> Option<&str> {
        self.config["metadata"][key].as_str()
    }

    /// Checks configured in the config: top-level `checks` and every service's `checks`.
    fn configured_checks(&self) -> usize {
        let top = self.config["checks"].as_object().map_or(0, |c| c.len());
        let services: usize = self.config["services"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|s| s["checks"].as_array().map_or(0, Vec::len))
            .sum();
        top + services
    }

    /// The last exit that was not asked for, as text.
    fn last_crash(&self) -> Option<String> {
        self.events.iter().find_map(|e| {
            let exit = &e["request"]["exit_event"];
            let code = exit["exit_code"].as_i64()?;
            (code != 0 && exit["requested_stop"] != json!(true))
                .then(|| format!("machine {} exited with code {code}", self.id))
        })
    }
}

/// A rollout in progress: its machines as they were, and the release id.
#[derive(Debug, Clone)]
struct Rollout {
    release: String,
    /// The machines as they were before the rollout touched them.
    before: Vec<Machine>,
    /// The configs to put on each machine (by id); a rollback carries old configs.
    configs: HashMap<String, Value>,
    min_secrets_version: Option<u64>,
}

/// The Fly provider for one process group of one app.
pub struct FlyProvider {
    client: Client,
    settings: FlySettings,
    rollouts: Mutex<HashMap<String, Rollout>>,
    min_secrets_version: Mutex<Option<u64>>,
    /// Blue-green releases staged by this process, by release id.
    staged: Mutex<HashMap<String, bluegreen::StagedFly>>,
}

impl std::fmt::Debug for FlyProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlyProvider")
            .field("app", &self.settings.app)
            .field("process_group", &self.settings.process_group)
            .finish_non_exhaustive()
    }
}

/// The leases of a rollout's machines, taken before the first change and refreshed until
/// released.
struct Leases {
    /// Machine id → nonce.
    nonces: HashMap<String, String>,
    stop: CancellationToken,
    refresher: tokio::task::JoinHandle<()>,
}

/// The state named by a `/wait` 408 (`"machine failed to reach desired state, started,
/// currently failed"`) when the machine cannot leave it by itself.
fn terminal_state(message: &str) -> Option<&str> {
    let (_, state) = message.rsplit_once("currently ")?;
    let state = state.trim().trim_end_matches('.');
    matches!(state, "failed" | "destroyed" | "destroying").then_some(state)
}

/// A machine-level failure during a rollout.
struct MachineFailure {
    reason: String,
    diagnostics: Vec<String>,
}

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}

/// `resset.Action` of the Machines API: write (lease, update, stop machines).
const ACTION_WRITE: u8 = 2;

impl FlyProvider {
    /// What the token is (`GET /v1/tokens/current`) and whether it may write the app's
    /// machines, which leasing and updating them needs (`POST /v1/tokens/authorize` verifies
    /// the token against that scope and changes nothing).
    async fn token_readiness(&self) -> Vec<Readiness> {
        let app = &self.settings.app;
        let mut checks = Vec::new();
        let current: Result<Value, FlyError> =
            self.client.get("v1/tokens/current", &[], None).await;
        checks.push(match current {
            Ok(body) => {
                let tokens = body["tokens"].as_array().cloned().unwrap_or_default();
                let apps: Vec<String> = tokens
                    .iter()
                    .flat_map(|t| t["apps"].as_array().cloned().unwrap_or_default())
                    .filter_map(|a| a.as_str().map(str::to_owned))
                    .collect();
                let orgs: Vec<String> = tokens
                    .iter()
                    .filter_map(|t| t["org_slug"].as_str().map(str::to_owned))
                    .collect();
                if !apps.is_empty() && !apps.iter().any(|a| a == app) {
                    Readiness::not_ready(
                        "token",
                        format!(
                            "GET /v1/tokens/current: the token is for app(s) {}, not `{app}`",
                            apps.join(", ")
                        ),
                        format!(
                            "create a deploy token for this app: fly tokens create deploy -a {app}"
                        ),
                    )
                } else if apps.is_empty() {
                    Readiness::ready(
                        "token",
                        format!(
                            "GET /v1/tokens/current: an organization token ({})",
                            if orgs.is_empty() {
                                "organization not named".to_owned()
                            } else {
                                orgs.join(", ")
                            }
                        ),
                    )
                } else {
                    Readiness::ready(
                        "token",
                        format!("GET /v1/tokens/current: a token for app `{app}`"),
                    )
                }
            }
            Err(FlyError::Unauthorized { message, .. }) => Readiness::not_ready(
                "token",
                format!("GET /v1/tokens/current refused it: {message}"),
                format!("the token is expired or revoked: fly tokens create deploy -a {app}"),
            ),
            Err(err) => Readiness::unknown("token", format!("GET /v1/tokens/current: {err}")),
        });
        let request = serde_json::json!({
            "header": self.client.token_header().expose(),
            "access": {"app_name": app, "action": ACTION_WRITE},
        });
        let authorized = self
            .client
            .call(
                reqwest::Method::POST,
                "v1/tokens/authorize",
                &[],
                Some(&request),
                None,
                "get",
                None,
                std::time::Duration::from_secs(30),
            )
            .await;
        checks.push(match authorized {
            Ok(_) => Readiness::ready(
                "may lease and update machines",
                format!("POST /v1/tokens/authorize: the token may write the machines of `{app}`"),
            ),
            Err(FlyError::Unauthorized { message, .. }) => Readiness::not_ready(
                "may lease and update machines",
                format!(
                    "POST /v1/tokens/authorize: the token may read `{app}` but not write its machines ({message})"
                ),
                format!("use a deploy token, not a read-only one: fly tokens create deploy -a {app}"),
            ),
            Err(err) => Readiness::unknown(
                "may lease and update machines",
                format!("POST /v1/tokens/authorize could not tell: {err}"),
            ),
        });
        checks
    }

    /// Checks that the app exists and the token works, and that the process group has Fly
    /// Launch machines (`fly_platform_version = v2`). Changes nothing.
    pub async fn connect(settings: FlySettings) -> Result<FlyProvider, FlyError> {
        let client = Client::new(
            &settings.api_url,
            settings.token.clone(),
            settings.redactor.clone(),
        )?;
        let provider = FlyProvider {
            client,
            settings,
            rollouts: Mutex::default(),
            min_secrets_version: Mutex::default(),
            staged: Mutex::default(),
        };
        let app: Value = provider
            .client
            .get(&format!("v1/apps/{}", provider.settings.app), &[], None)
            .await
            .map_err(|e| match e {
                FlyError::NotFound { .. } => FlyError::Invalid(format!(
                    "there is no Fly app `{}` (or the token cannot see it); check FLY_APP",
                    provider.settings.app
                )),
                other => other,
            })?;
        tracing::debug!(app = %app["name"], "Fly app found");
        provider.machines().await?;
        Ok(provider)
    }

    /// The group's deployable machines, sorted by id. Errors when there are none, or when some
    /// are not Fly Launch machines (flyctl would not touch them either).
    async fn machines(&self) -> Result<Vec<Machine>, FlyError> {
        let s = &self.settings;
        let listed: Vec<Machine> = self
            .client
            .get(
                &format!("v1/apps/{}/machines", s.app),
                &[("metadata.fly_process_group", s.process_group.clone())],
                None,
            )
            .await?;
        let mut machines: Vec<Machine> = listed
            .into_iter()
            .filter(|m| !matches!(m.state.as_str(), "destroyed" | "destroying"))
            .collect();
        if machines.is_empty() {
            return Err(FlyError::Invalid(format!(
                "Fly app `{}` has no machines in process group `{}`; create them once with `fly deploy` (or `fly scale count`), then shipgate updates them",
                s.app, s.process_group
            )));
        }
        // A machine whose host Fly cannot reach reports an incomplete config: updating it (or
        // restoring it later) from that would be a guess.
        let unreachable: Vec<String> = machines
            .iter()
            .filter(|m| m.host_status.as_deref().is_some_and(|h| h != "ok"))
            .map(|m| {
                format!(
                    "{} (host {})",
                    m.id,
                    m.host_status.as_deref().unwrap_or_default()
                )
            })
            .collect();
        if !unreachable.is_empty() {
            return Err(FlyError::Invalid(format!(
                "machines {} of app `{}` are on a host Fly cannot reach now; their configuration cannot be read whole, so nothing was changed. Wait for the host to come back (fly machine status), or destroy and recreate those machines",
                unreachable.join(", "),
                s.app
            )));
        }
        let unmanaged: Vec<&str> = machines
            .iter()
            .filter(|m| m.metadata("fly_platform_version") != Some("v2"))
            .map(|m| m.id.as_str())
            .collect();
        if !unmanaged.is_empty() {
            return Err(FlyError::Invalid(format!(
                "machines {} of app `{}` lack metadata fly_platform_version=v2 (not Fly Launch machines); shipgate, like `fly deploy`, only updates Fly Launch machines",
                unmanaged.join(", "),
                s.app
            )));
        }
        machines.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(machines)
    }

    async fn machine(&self, id: &str) -> Result<Machine, FlyError> {
        self.client
            .get(
                &format!("v1/apps/{}/machines/{id}", self.settings.app),
                &[],
                Some(id),
            )
            .await
    }

    /// Sets (or, with `None`, unsets) app secrets in one call and remembers the returned
    /// version: the next rollout passes it as `min_secrets_version`, so machines restart once
    /// with the new image and the new secrets.
    pub async fn set_secrets(
        &self,
        values: &BTreeMap<String, Option<Secret>>,
    ) -> Result<u64, FlyError> {
        let body: serde_json::Map<String, Value> = values
            .iter()
            .map(|(k, v)| {
                if let Some(v) = v {
                    self.client.redactor().add(v);
                }
                (
                    k.clone(),
                    v.as_ref()
                        .map_or(Value::Null, |v| Value::String(v.expose().to_owned())),
                )
            })
            .collect();
        let answer = self
            .client
            .call(
                Method::POST,
                &format!("v1/apps/{}/secrets", self.settings.app),
                &[],
                Some(&json!({"values": body})),
                None,
                "secrets",
                None,
                Duration::from_secs(30),
            )
            .await?;
        let version = answer.body["version"]
            .as_u64()
            .ok_or_else(|| FlyError::Unavailable {
                call: "POST secrets".into(),
                message: "the answer has no version".into(),
            })?;
        *self.min_secrets_version.lock().await = Some(version);
        Ok(version)
    }

    async fn start_rollout(
        &self,
        image: &ImageRef,
        release: String,
        configs: Option<HashMap<String, Value>>,
    ) -> Result<Deployment, FlyError> {
        if self.settings.require_pinned && !image.pinning(&[]).is_pinned() {
            return Err(FlyError::Invalid(format!(
                "image `{image}` is not pinned; production-like environments deploy a commit SHA tag or a digest"
            )));
        }
        let machines = self.machines().await?;
        let configs = configs.unwrap_or_else(|| {
            machines
                .iter()
                .map(|m| {
                    let mut config = m.config.clone();
                    config["image"] = json!(image.to_string());
                    config["metadata"][RELEASE_KEY] = json!(release);
                    if let Some(meta) = config["metadata"].as_object_mut() {
                        meta.remove(REVERTED_KEY);
                    }
                    (m.id.clone(), config)
                })
                .collect()
        });
        let rollout = Rollout {
            release: release.clone(),
            before: machines,
            configs,
            min_secrets_version: *self.min_secrets_version.lock().await,
        };
        self.rollouts.lock().await.insert(release.clone(), rollout);
        Ok(Deployment {
            revision: RevisionId(release),
            request: DeployRequest {
                images: BTreeMap::from([(self.settings.service.clone(), image.clone())]),
                description: String::new(),
            },
        })
    }

    /// Takes a lease on `id`; returns the nonce.
    async fn lease(&self, id: &str, release: &str) -> Result<String, FlyError> {
        let answer = self
            .client
            .call(
                Method::POST,
                &format!("v1/apps/{}/machines/{id}/lease", self.settings.app),
                &[],
                Some(&json!({"ttl": self.settings.lease_ttl.as_secs().max(1), "description": format!("shipgate release {release}")})),
                None,
                "lease",
                Some(id),
                Duration::from_secs(30),
            )
            .await
            .map_err(|e| match e {
                FlyError::Conflict { message, .. } => FlyError::Conflict {
                    call: format!("lease on machine {id}"),
                    message: format!("{message}; another deploy holds it (it expires within its TTL)"),
                },
                other => other,
            })?;
        // The API wraps the lease in {"status","data"}; the description does not.
        let lease = answer.body.get("data").unwrap_or(&answer.body);
        lease["nonce"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| FlyError::Unavailable {
                call: format!("lease on machine {id}"),
                message: "the answer has no nonce".into(),
            })
    }

    async fn release_lease(&self, id: &str, nonce: &str) {
        let result = self
            .client
            .call(
                Method::DELETE,
                &format!("v1/apps/{}/machines/{id}/lease", self.settings.app),
                &[],
                None,
                Some(nonce),
                "lease-release",
                Some(id),
                Duration::from_secs(10),
            )
            .await;
        if let Err(err) = result {
            tracing::warn!(
                machine = id,
                "could not release the lease (it expires by itself): {err}"
            );
        }
    }

    /// Takes a lease on every machine of `ids`, in order, before anything changes, and keeps
    /// them refreshed in the background. When one is held by someone else, the leases taken
    /// so far are released and the error says which machine and who holds it.
    async fn lease_all(&self, ids: &[String], release: &str) -> Result<Leases, String> {
        let mut nonces: Vec<(String, String)> = Vec::new();
        for id in ids {
            match self.lease(id, release).await {
                Ok(nonce) => nonces.push((id.clone(), nonce)),
                Err(err) => {
                    for (id, nonce) in &nonces {
                        self.release_lease(id, nonce).await;
                    }
                    return Err(format!("machine {id}: {err}"));
                }
            }
        }
        let stop = CancellationToken::new();
        let refresher = {
            let client = self.client.clone();
            let app = self.settings.app.clone();
            let ttl = self.settings.lease_ttl;
            let nonces = nonces.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                let every = (ttl.saturating_sub(Duration::from_secs(1)) / 3)
                    .max(Duration::from_millis(500));
                loop {
                    tokio::select! {
                        () = stop.cancelled() => break,
                        () = tokio::time::sleep(every) => {}
                    }
                    let body = json!({"ttl": ttl.as_secs().max(1)});
                    for (machine, nonce) in &nonces {
                        if let Err(err) = client
                            .call(
                                Method::POST,
                                &format!("v1/apps/{app}/machines/{machine}/lease"),
                                &[],
                                Some(&body),
                                Some(nonce),
                                "lease",
                                Some(machine),
                                Duration::from_secs(10),
                            )
                            .await
                        {
                            tracing::warn!(machine, "lease refresh failed: {err}");
                        }
                    }
                }
            })
        };
        Ok(Leases {
            nonces: nonces.into_iter().collect(),
            stop,
            refresher,
        })
    }

    /// Stops refreshing and releases every lease of `leases`.
    async fn release_all(&self, leases: Leases) {
        leases.stop.cancel();
        let _ = leases.refresher.await;
        for (id, nonce) in &leases.nonces {
            self.release_lease(id, nonce).await;
        }
    }

    /// Updates one leased machine (read at `before.version`) to `config` and verifies it:
    /// with `launch` it must start the new version and pass its checks; without, it stays
    /// down (`skip_launch`). Either way the version and image are read back.
    #[allow(clippy::too_many_arguments)]
    async fn update_leased(
        &self,
        before: &Machine,
        config: &Value,
        nonce: &str,
        launch: bool,
        min_secrets_version: Option<u64>,
        deadline: Instant,
        progress: &dyn ProgressSink,
        cancel: &CancellationToken,
    ) -> Result<(), MachineFailure> {
        let id = before.id.as_str();
        let app = &self.settings.app;
        let fail = |reason: String| MachineFailure {
            reason,
            diagnostics: Vec::new(),
        };
        let mut body = json!({"config": config, "current_version": before.version});
        if !launch {
            body["skip_launch"] = json!(true);
        }
        if let Some(v) = min_secrets_version {
            body["min_secrets_version"] = json!(v);
        }
        let answer = self
            .client
            .call(
                Method::POST,
                &format!("v1/apps/{app}/machines/{id}"),
                &[],
                Some(&body),
                Some(nonce),
                "update",
                Some(id),
                Duration::from_secs(60),
            )
            .await
            .map_err(|e| fail(e.to_string()))?;
        let new_version = answer.body["version"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let wanted_image = config["image"].as_str().unwrap_or_default();

        if launch {
            self.wait_started(id, &new_version, wanted_image, deadline, progress, cancel)
                .await?;
        }

        // Read it back: Fly can revert a failed update to the previous version, and then
        // "started" and passing checks describe the old image.
        let machine = self.machine(id).await.map_err(|e| fail(e.to_string()))?;
        let running = machine.config["image"].as_str().unwrap_or_default();
        if (!new_version.is_empty() && machine.version != new_version) || running != wanted_image {
            return Err(self.failure(id, format!(
                "Fly reverted machine {id}: it runs version {} with image `{running}`, not version {new_version} with `{wanted_image}`; the update did not take",
                machine.version
            )).await);
        }
        if !launch {
            return Ok(());
        }
        self.wait_checks(id, deadline, progress, cancel).await
    }

    /// Waits until machine `id` has started `version` (`/wait` in slices of at most 60 s; a
    /// 408 means "not yet" unless the machine is in a state it cannot leave).
    async fn wait_started(
        &self,
        id: &str,
        version: &str,
        wanted_image: &str,
        deadline: Instant,
        progress: &dyn ProgressSink,
        cancel: &CancellationToken,
    ) -> Result<(), MachineFailure> {
        let app = &self.settings.app;
        let fail = |reason: String| MachineFailure {
            reason,
            diagnostics: Vec::new(),
        };
        loop {
            if cancel.is_cancelled() {
                return Err(fail("cancelled".into()));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(self
                    .failure(
                        id,
                        format!("machine {id} did not start version {version} before the deadline"),
                    )
                    .await);
            }
            progress.report(&WaitProgress {
                waiting_for: format!(
                    "{}: machine {id} starting {wanted_image}",
                    self.settings.service
                ),
                remaining: left,
            });
            let slice = left.as_secs().clamp(1, 60);
            let wait_path = format!("v1/apps/{app}/machines/{id}/wait");
            let mut query = vec![
                ("state", "started".to_owned()),
                ("timeout", slice.to_string()),
            ];
            if !version.is_empty() {
                query.push(("version", version.to_owned()));
            }
            let answer = tokio::select! {
                a = self.client.call(
                    Method::GET, &wait_path, &query,
                    None, None, "wait", Some(id), Duration::from_secs(slice + 2),
                ) => a,
                () = cancel.cancelled() => return Err(fail("cancelled".into())),
            };
            match answer {
                Ok(a) if a.status == 200 => return Ok(()),
                // 408: not there yet, unless the machine is in a state it cannot leave.
                Ok(a) => {
                    let message = a.body["error"].as_str().unwrap_or_default();
                    if let Some(state) = terminal_state(message) {
                        return Err(self
                            .failure(
                                id,
                                format!(
                                    "machine {id} did not start version {version}: it is {state} ({message})"
                                ),
                            )
                            .await);
                    }
                }
                // A 404 right after a create is normal for a moment.
                Err(FlyError::Unavailable { message, .. } | FlyError::NotFound { message, .. }) => {
                    tracing::debug!(machine = id, "wait failed, trying again: {message}");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(err) => return Err(self.failure(id, err.to_string()).await),
            }
        }
    }

    /// Polls the machine until every configured check has a result and all are passing.
    async fn wait_checks(
        &self,
        id: &str,
        deadline: Instant,
        progress: &dyn ProgressSink,
        cancel: &CancellationToken,
    ) -> Result<(), MachineFailure> {
        loop {
            let machine = self.machine(id).await.map_err(|e| MachineFailure {
                reason: e.to_string(),
                diagnostics: Vec::new(),
            })?;
            if matches!(machine.state.as_str(), "stopped" | "failed") {
                let why = machine
                    .last_crash()
                    .unwrap_or_else(|| format!("machine {id} is {}", machine.state));
                return Err(self.failure(id, why).await);
            }
            let results: Vec<&Check> = machine
                .checks
                .iter()
                .filter(|c| !c.name.starts_with("bg_deployments_compat"))
                .collect();
            let configured = machine.configured_checks();
            let pending: Vec<String> = results
                .iter()
                .filter(|c| c.status != "passing")
                .map(|c| format!("{}={}", c.name, c.status))
                .collect();
            if results.len() >= configured && pending.is_empty() {
                return Ok(());
            }
            let waiting = if results.len() < configured {
                format!("{} of {configured} check results", results.len())
            } else {
                pending.join(", ")
            };
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                let outputs: Vec<String> = results
                    .iter()
                    .filter(|c| c.status != "passing")
                    .map(|c| format!("check {}: {} {}", c.name, c.status, c.output))
                    .collect();
                let mut failure = self.failure(id, format!("machine {id} health checks did not pass before the deadline ({waiting})")).await;
                failure.diagnostics.extend(outputs);
                return Err(failure);
            }
            progress.report(&WaitProgress {
                waiting_for: format!("{}: machine {id} checks: {waiting}", self.settings.service),
                remaining: left,
            });
            tokio::select! {
                () = tokio::time::sleep(self.settings.poll_interval.min(left)) => {}
                () = cancel.cancelled() => return Err(MachineFailure { reason: "cancelled".into(), diagnostics: Vec::new() }),
            }
        }
    }

    /// A failure with the machine's recent events as diagnostics.
    async fn failure(&self, id: &str, reason: String) -> MachineFailure {
        let mut diagnostics = Vec::new();
        if let Ok(machine) = self.machine(id).await {
            diagnostics.push(format!(
                "machine {id}: state {}, version {}",
                machine.state, machine.version
            ));
            for check in &machine.checks {
                diagnostics.push(format!(
                    "check {}: {} {}",
                    check.name, check.status, check.output
                ));
            }
            for event in machine.events.iter().take(5) {
                diagnostics.push(format!(
                    "event {} {} ({})",
                    event["type"].as_str().unwrap_or("?"),
                    event["status"].as_str().unwrap_or("?"),
                    event["source"].as_str().unwrap_or("?")
                ));
            }
        }
        let redactor = self.client.redactor();
        MachineFailure {
            reason: quote_outside(&redactor.redact(&reason)),
            diagnostics: diagnostics
                .into_iter()
                .map(|d| quote_outside(&redactor.redact(&d)))
                .collect(),
        }
    }

    /// Puts the machines in `touched` back to their configs and states from before the
    /// rollout (a machine that was started is started and verified: version, image, checks;
    /// one that was stopped stays stopped), marking the release undone. Returns what could not
    /// be restored.
    async fn restore(
        &self,
        rollout: &Rollout,
        touched: &[String],
        leases: &Leases,
        deadline: Instant,
        cancel: &CancellationToken,
    ) -> Vec<String> {
        let mut problems = Vec::new();
        let quiet = |_: &WaitProgress| {};
        for before in rollout.before.iter().filter(|m| touched.contains(&m.id)) {
            let current = match self.machine(&before.id).await {
                Ok(m) => m,
                Err(e) => {
                    problems.push(e.to_string());
                    continue;
                }
            };
            let mut config = before.config.clone();
            config["metadata"][REVERTED_KEY] = json!(rollout.release);
            let Some(nonce) = leases.nonces.get(&before.id) else {
                problems.push(format!("machine {}: no lease held", before.id));
                continue;
            };
            if let Err(failure) = self
                .update_leased(
                    &current,
                    &config,
                    nonce,
                    before.state == "started",
                    None,
                    deadline,
                    &quiet,
                    cancel,
                )
                .await
            {
                problems.push(format!("machine {}: {}", before.id, failure.reason));
            }
        }
        problems
    }
}

#[async_trait::async_trait]
impl Provider for FlyProvider {
    async fn readiness(&self) -> Vec<Readiness> {
        self.token_readiness().await
    }

    fn kind(&self) -> &'static str {
        "fly"
    }

    async fn current(&self) -> Result<Vec<Running>, ProviderError> {
        let machines = self.machines().await?;
        // What serves: cordoned machines take no requests (a staged green release, or blue
        // machines kept after a switch), unless every machine is cordoned.
        let serving: Vec<&Machine> = if machines.iter().all(|m| m.cordoned) {
            machines.iter().collect()
        } else {
            machines.iter().filter(|m| !m.cordoned).collect()
        };
        // The image most machines run (a group is mixed only mid-rollout).
        let mut counts: BTreeMap<String, (usize, &Machine)> = BTreeMap::new();
        for m in serving {
            let key = m.config["image"].as_str().unwrap_or_default().to_owned();
            counts.entry(key).or_insert((0, m)).0 += 1;
        }
        if counts.len() > 1 {
            tracing::warn!(app = %self.settings.app, "machines run different images: {:?}", counts.keys().collect::<Vec<_>>());
        }
        Ok(counts
            .values()
            .max_by_key(|(n, _)| *n)
            .and_then(|(_, m)| {
                Some(Running {
                    service: self.settings.service.clone(),
                    image: m.image()?,
                    revision: RevisionId(m.metadata(RELEASE_KEY).unwrap_or(&m.version).to_owned()),
                })
            })
            .into_iter()
            .collect())
    }

    async fn plan(&self, request: &DeployRequest) -> Result<Vec<PlannedChange>, ProviderError> {
        let Some(to) = request.images.get(&self.settings.service) else {
            return Ok(Vec::new());
        };
        let from = self.current().await?.into_iter().next().map(|r| r.image);
        Ok(vec![PlannedChange {
            service: self.settings.service.clone(),
            from,
            to: to.clone(),
        }])
    }

    async fn deploy(&self, request: &DeployRequest) -> Result<Deployment, ProviderError> {
        let image = request.images.get(&self.settings.service).ok_or_else(|| {
            ProviderError::invalid(format!(
                "the deploy names no image for service `{}`",
                self.settings.service
            ))
        })?;
        let mut deployment = self
            .start_rollout(image, format!("sg-{}", now_ms()), None)
            .await?;
        deployment.request.description = request.description.clone();
        Ok(deployment)
    }

    async fn wait<'a>(
        &'a self,
        deployment: &'a Deployment,
        deadline: Instant,
        progress: &'a (dyn ProgressSink + 'a),
        cancel: &'a CancellationToken,
    ) -> Result<Verdict, ProviderError> {
        let rollout = self
            .rollouts
            .lock()
            .await
            .get(&deployment.revision.0)
            .cloned()
            .ok_or_else(|| {
                ProviderError::not_found(format!(
                    "rollout {} was not started by this process",
                    deployment.revision
                ))
            })?;
        // The spearhead is a started machine: a stopped one gives no health signal.
        let mut ids: Vec<String> = rollout.before.iter().map(|m| m.id.clone()).collect();
        ids.sort_by_key(|id| {
            rollout
                .before
                .iter()
                .any(|m| &m.id == id && m.state != "started")
        });
        // Every lease before the first change: a machine leased elsewhere stops the rollout
        // with nothing changed.
        let leases = match self.lease_all(&ids, &rollout.release).await {
            Ok(leases) => leases,
            Err(reason) => {
                return Ok(Verdict::Failed {
                    reason: format!("{reason}; no machine was updated, nothing was changed"),
                    diagnostics: Vec::new(),
                });
            }
        };
        let verdict = self
            .roll(&rollout, &ids, &leases, deadline, progress, cancel)
            .await;
        self.release_all(leases).await;
        Ok(verdict)
    }

    async fn history(&self) -> Result<Vec<Revision>, ProviderError> {
        self.machine_history().await
    }

    async fn rollback(&self, to: &RevisionId) -> Result<Deployment, ProviderError> {
        self.rollback_to(to).await
    }

    async fn diagnostics(&self, deployment: &Deployment) -> Result<Vec<String>, ProviderError> {
        self.machine_diagnostics(deployment).await
    }

    /// Green machines a run that died mid-stage left (cordoned, never served) are destroyed.
    async fn recover(&self) -> Result<Vec<String>, ProviderError> {
        self.destroy_orphaned_green().await
    }

    /// With `staged_url` set: green machines beside the blue ones (see the `bluegreen`
    /// module).
    fn can_stage(&self) -> bool {
        self.can_stage_machines()
    }

    /// In machine-sized steps.
    fn can_split(&self) -> bool {
        self.can_stage_machines()
    }

    async fn stage<'a>(
        &'a self,
        request: &'a DeployRequest,
        deadline: Instant,
        progress: &'a (dyn ProgressSink + 'a),
        cancel: &'a CancellationToken,
    ) -> Result<StageOutcome, ProviderError> {
        if !self.can_stage_machines() {
            return Err(ProviderError::invalid(
                "the Fly provider stages only with [targets.fly] staged_url (how this runner reaches one machine)",
            ));
        }
        self.stage_green(request, deadline, progress, cancel).await
    }

    async fn shift<'a>(&'a self, staged: &'a Deployment, percent: u8) -> Result<u8, ProviderError> {
        self.switch_to_green(staged, percent).await
    }

    async fn abort<'a>(&'a self, staged: &'a Deployment) -> Result<(), ProviderError> {
        self.abort_green(staged).await
    }

    async fn promote<'a>(&'a self, staged: &'a Deployment) -> Result<(), ProviderError> {
        self.promote_green(staged).await
    }
}

impl FlyProvider {
    /// Updates the machines `ids` (leased in `leases`) batch by batch; on a failure, restores
    /// what was touched. The verdict says what happened, and only that.
    async fn roll(
        &self,
        rollout: &Rollout,
        ids: &[String],
        leases: &Leases,
        deadline: Instant,
        progress: &dyn ProgressSink,
        cancel: &CancellationToken,
    ) -> Verdict {
        let batches: Vec<Vec<String>> = match self.settings.strategy {
            Strategy::Immediate => vec![ids.to_vec()],
            Strategy::Rolling { max_unavailable } => {
                let rest = ids.len().saturating_sub(1);
                let size = if max_unavailable >= 1.0 {
                    max_unavailable as usize
                } else {
                    (ids.len() as f64 * max_unavailable).ceil() as usize
                }
                .max(1);
                let mut batches = vec![ids[..1.min(ids.len())].to_vec()];
                batches.extend(ids[ids.len() - rest..].chunks(size).map(<[String]>::to_vec));
                batches
            }
        };
        let mut touched: Vec<String> = Vec::new();
        for batch in batches {
            if cancel.is_cancelled() {
                return Verdict::Cancelled;
            }
            touched.extend(batch.iter().cloned());
            let updates = batch.iter().map(|id| {
                let before = rollout.before.iter().find(|m| &m.id == id).cloned();
                let config = rollout.configs.get(id).cloned().unwrap_or(Value::Null);
                let nonce = leases.nonces.get(id).cloned();
                async move {
                    let (Some(before), Some(nonce)) = (before, nonce) else {
                        return Err(MachineFailure {
                            reason: format!("machine {id} vanished"),
                            diagnostics: Vec::new(),
                        });
                    };
                    self.update_leased(
                        &before,
                        &config,
                        &nonce,
                        before.state == "started",
                        rollout.min_secrets_version,
                        deadline,
                        progress,
                        cancel,
                    )
                    .await
                }
            });
            let results = futures_util::future::join_all(updates).await;
            let failures: Vec<MachineFailure> =
                results.into_iter().filter_map(Result::err).collect();
            if failures.is_empty() {
                continue;
            }
            if cancel.is_cancelled() {
                tracing::warn!(release = %rollout.release, machines = ?touched, "cancelled mid-rollout; leases released, the machines listed may run the new image");
                return Verdict::Cancelled;
            }
            let reason = failures
                .iter()
                .map(|f| f.reason.clone())
                .collect::<Vec<_>>()
                .join("; ");
            let mut diagnostics: Vec<String> =
                failures.into_iter().flat_map(|f| f.diagnostics).collect();
            // Put back what changed, with a deadline of its own.
            let problems = self
                .restore(
                    rollout,
                    &touched,
                    leases,
                    Instant::now() + Duration::from_secs(300),
                    cancel,
                )
                .await;
            let reason = if problems.is_empty() {
                format!(
                    "{reason}; the {} machine(s) updated were restored to their previous configuration",
                    touched.len()
                )
            } else {
                diagnostics.extend(problems.iter().cloned());
                format!(
                    "{reason}; restoring the previous configuration FAILED: {}",
                    problems.join("; ")
                )
            };
            if diagnostics.is_empty() {
                diagnostics.push(reason.clone());
            }
            return if Instant::now() >= deadline && reason.contains("before the deadline") {
                Verdict::TimedOut {
                    waiting_for: reason,
                    diagnostics,
                }
            } else {
                Verdict::Failed {
                    reason,
                    diagnostics,
                }
            };
        }
        Verdict::Healthy
    }

    /// Revisions from the first machine's versions (see [`Provider::history`]).
    async fn machine_history(&self) -> Result<Vec<Revision>, ProviderError> {
        let machines = self.machines().await?;
        let first = &machines[0];
        #[derive(Deserialize)]
        struct Version {
            version: String,
            #[serde(default)]
            user_config: Value,
        }
        let mut versions: Vec<Version> = self
            .client
            .get(
                &format!(
                    "v1/apps/{}/machines/{}/versions",
                    self.settings.app, first.id
                ),
                &[],
                Some(&first.id),
            )
            .await?;
        versions.sort_by(|a, b| b.version.cmp(&a.version));
        let reverted: Vec<&str> = versions
            .iter()
            .filter_map(|v| v.user_config["metadata"][REVERTED_KEY].as_str())
            .collect();
        let mut seen: Vec<String> = Vec::new();
        let mut out = Vec::new();
        for v in &versions {
            let release = v.user_config["metadata"][RELEASE_KEY]
                .as_str()
                .or(v.user_config["metadata"]["fly_release_id"].as_str())
                .unwrap_or(&v.version)
                .to_owned();
            if seen.contains(&release) {
                continue;
            }
            let status = if seen.is_empty() && !reverted.contains(&release.as_str()) {
                RevisionStatus::Deployed
            } else if reverted.contains(&release.as_str()) {
                RevisionStatus::Failed
            } else {
                RevisionStatus::Superseded
            };
            seen.push(release.clone());
            let images = v.user_config["image"]
                .as_str()
                .and_then(|i| i.parse().ok())
                .map(|i| BTreeMap::from([(self.settings.service.clone(), i)]))
                .unwrap_or_default();
            out.push(Revision {
                id: RevisionId(release),
                images,
                status,
                created_at: ulid_time(&v.version),
                description: format!("machine {} version {}", first.id, v.version),
            });
        }
        Ok(out)
    }

    /// Starts a rollback to release `to` (see [`Provider::rollback`]).
    async fn rollback_to(&self, to: &RevisionId) -> Result<Deployment, ProviderError> {
        let history = self.history().await?;
        let target = history.iter().find(|r| &r.id == to).ok_or_else(|| {
            ProviderError::not_found(format!(
                "release {to} is not in the machines' version history"
            ))
        })?;
        if target.status == RevisionStatus::Failed {
            return Err(ProviderError::invalid(format!(
                "release {to} failed and was restored; choose one that was live"
            )));
        }
        let image = target
            .images
            .get(&self.settings.service)
            .cloned()
            .ok_or_else(|| ProviderError::invalid(format!("release {to} has no image recorded")))?;
        // Each machine gets its own config of that release when it still has it, else its
        // current config with the image swapped back.
        let machines = self.machines().await?;
        let mut configs = HashMap::new();
        for m in &machines {
            #[derive(Deserialize)]
            struct Version {
                #[serde(default)]
                user_config: Value,
            }
            let versions: Vec<Version> = self
                .client
                .get(
                    &format!("v1/apps/{}/machines/{}/versions", self.settings.app, m.id),
                    &[],
                    Some(&m.id),
                )
                .await?;
            let old = versions.into_iter().map(|v| v.user_config).find(|c| {
                c["metadata"][RELEASE_KEY]
                    .as_str()
                    .or(c["metadata"]["fly_release_id"].as_str())
                    == Some(to.0.as_str())
            });
            let mut config = old.unwrap_or_else(|| {
                let mut c = m.config.clone();
                c["image"] = json!(image.to_string());
                c["metadata"][RELEASE_KEY] = json!(to.0);
                c
            });
            if let Some(meta) = config["metadata"].as_object_mut() {
                meta.remove(REVERTED_KEY);
            }
            configs.insert(m.id.clone(), config);
        }
        let mut deployment = self
            .start_rollout(&image, to.0.clone(), Some(configs))
            .await?;
        deployment.request.description = format!("rollback to {to}");
        Ok(deployment)
    }

    /// Recent events and checks of the machines (see [`Provider::diagnostics`]).
    async fn machine_diagnostics(
        &self,
        deployment: &Deployment,
    ) -> Result<Vec<String>, ProviderError> {
        let machines = self.machines().await?;
        let mut lines = vec![format!("release {}", deployment.revision)];
        for m in machines {
            lines.push(format!(
                "machine {}: {} {} ({})",
                m.id,
                m.state,
                m.config["image"].as_str().unwrap_or("?"),
                m.metadata(REVERTED_KEY)
                    .map_or_else(String::new, |r| format!("restored after release {r}"))
            ));
            for check in m.checks {
                lines.push(format!(
                    "  check {}: {} {}",
                    check.name, check.status, check.output
                ));
            }
        }
        let redactor = self.client.redactor();
        Ok(lines
            .into_iter()
            .map(|l| quote_outside(&redactor.redact(&l)))
            .collect())
    }
}

/// The time a ULID encodes (its first 10 Crockford base32 characters are milliseconds).
fn ulid_time(ulid: &str) -> SystemTime {
    const ALPHABET: &str = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let mut ms: u64 = 0;
    for c in ulid.chars().take(10) {
        let Some(v) = ALPHABET.find(c.to_ascii_uppercase()) else {
            return UNIX_EPOCH;
        };
        ms = ms.saturating_mul(32).saturating_add(v as u64);
    }
    UNIX_EPOCH + Duration::from_millis(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulids_give_their_time() {
        let ms = |n| UNIX_EPOCH + Duration::from_millis(n);
        assert_eq!(ulid_time("000000000ZTSV4RRFFQ69G5FAV"), ms(31));
        assert_eq!(ulid_time("0000000010TSV4RRFFQ69G5FAV"), ms(32));
        assert_eq!(ulid_time("00000000z0TSV4RRFFQ69G5FAV"), ms(31 * 32));
        assert_eq!(ulid_time("not-a-ulid"), UNIX_EPOCH);
    }
}

/// The README's examples, compiled (and run) as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
