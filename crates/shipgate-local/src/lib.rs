//! The local provider: each service is a process on this host, started from a command
//! template with the image tag, health-checked over HTTP, and put live blue/green.
//!
//! **No-downtime scheme.** Clients use the service's stable port, where a small router
//! process (`shipgate-local-router`) forwards each new connection to the port written in
//! `STATE_DIR/SERVICE/backend`. A deploy starts the new release on a fresh port; only when
//! every new process answers its health path does shipgate rewrite the backend files (new
//! connections move at once), then stop the old processes (SIGTERM, then SIGKILL after a
//! grace period). A release that never becomes healthy is stopped and the old one never
//! stopped serving.
//!
//! **State** (`STATE_DIR/state.json`, written atomically) holds what runs (pid, port, image,
//! revision per service), the routers' pids, and the history of revisions, so that a second
//! `shipgate` process sees what the first one deployed. Rollback starts an earlier revision's
//! images as a new revision, the same way.
//!
//! ```no_run
//! // `config` is `[targets.local]` as shipgate_config::load returns it.
//! # async fn demo(config: shipgate_config::LocalTarget) -> Result<(), Box<dyn std::error::Error>> {
//! use std::collections::BTreeMap;
//! use std::time::{Duration, Instant};
//! use shipgate_local::{LocalOptions, LocalProvider};
//! use shipgate_provider::{DeployRequest, Provider, Verdict, previous_good};
//! use tokio_util::sync::CancellationToken;
//!
//! let provider = LocalProvider::new(&config, LocalOptions::beside_current_exe()?)?;
//! let request = DeployRequest {
//!     images: BTreeMap::from([("api".parse()?, "demo/api:v2".parse()?)]),
//!     description: "deploy v2".into(),
//! };
//! let deployment = provider.deploy(&request).await?;
//! let cancel = CancellationToken::new();
//! let progress = |p: &shipgate_provider::WaitProgress| eprintln!("waiting: {}", p.waiting_for);
//! let verdict = provider.wait(&deployment, Instant::now() + Duration::from_secs(30), &progress, &cancel).await?;
//! if verdict != Verdict::Healthy {
//!     let history = provider.history().await?;
//!     if let Some(target) = previous_good(&history, &deployment.revision) {
//!         let back = provider.rollback(&target.id).await?;
//!         provider.wait(&back, Instant::now() + Duration::from_secs(30), &progress, &cancel).await?;
//!     }
//! }
//! # Ok(()) }
//! ```

#[cfg(feature = "demo")]
pub mod demo;
mod process;
pub mod proxy;
pub mod routing;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};
use shipgate_config::{LocalService, LocalTarget};
use shipgate_core::{ImageRef, ServiceName};
use shipgate_provider::{
    DeployRequest, Deployment, PlannedChange, Poll, ProgressSink, Provider, ProviderError,
    Revision, RevisionId, RevisionStatus, Running, StageOutcome, Staged, TrafficObservation,
    Verdict, wait_until,
};
use tokio::sync::Mutex;

use crate::routing::{Route, RouterStats};
use tokio_util::sync::CancellationToken;

/// The router's executable name, for programs that run it beside themselves.
pub const ROUTER_BIN: &str = "shipgate-local-router";

/// The `shipgate` subcommand that runs the router.
pub const ROUTER_SUBCOMMAND: &str = "local-router";

/// Part of every router's command line (`shipgate-local-router …` and `shipgate local-router
/// …`): a process is taken for a router only when its command line has it.
const ROUTER_MARK: &str = "local-router";

/// How long an old process gets to finish its requests after SIGTERM.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// How long every new process must stay up and healthy before traffic moves to it (like
/// Kubernetes' `minReadySeconds`): a release that answers once and then crashes is caught.
pub const STABLE_FOR: Duration = Duration::from_secs(1);

/// Where the helper programs are.
#[derive(Debug, Clone)]
pub struct LocalOptions {
    /// The router: a program and its leading arguments (`[".../shipgate", "local-router"]`,
    /// or `[".../shipgate-local-router"]`); the provider appends `--listen …`.
    pub router: Vec<String>,
    /// What `{shipgate}` in a service's command stands for: the `shipgate` executable (whose
    /// `demo-service` subcommand is the README demo's service). `None`: a command using it is
    /// refused.
    pub shipgate: Option<PathBuf>,
}

impl LocalOptions {
    /// The `shipgate-local-router` executable next to the running one (where cargo puts a
    /// workspace's binaries).
    pub fn beside_current_exe() -> std::io::Result<LocalOptions> {
        let exe = std::env::current_exe()?;
        let dir = exe.parent().unwrap_or_else(|| Path::new("."));
        Ok(LocalOptions {
            router: vec![dir.join(ROUTER_BIN).display().to_string()],
            shipgate: None,
        })
    }

    /// Everything from one `shipgate` executable: `shipgate local-router` is the router and
    /// `{shipgate}` in a command is `shipgate` (an installed binary is complete).
    pub fn within(shipgate: &Path) -> LocalOptions {
        LocalOptions {
            router: vec![shipgate.display().to_string(), ROUTER_SUBCOMMAND.to_owned()],
            shipgate: Some(shipgate.to_owned()),
        }
    }
}

/// One service's process, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Process {
    pid: u32,
    port: u16,
    image: ImageRef,
    revision: u64,
    log: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredRevision {
    number: u64,
    images: BTreeMap<ServiceName, ImageRef>,
    status: RevisionStatus,
    created_unix: u64,
    description: String,
    /// The processes started for it (kept for diagnostics).
    #[serde(default)]
    processes: BTreeMap<ServiceName, Process>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct State {
    /// What serves each service now.
    live: BTreeMap<ServiceName, Process>,
    /// Router pid per service.
    routers: BTreeMap<ServiceName, u32>,
    /// Oldest first.
    revisions: Vec<StoredRevision>,
    /// What served each service before the last switch, still running until that release is
    /// promoted (a staged release can go back to it at once).
    #[serde(default)]
    previous: BTreeMap<ServiceName, Process>,
}

/// The local provider.
pub struct LocalProvider {
    state_dir: PathBuf,
    services: BTreeMap<ServiceName, LocalService>,
    options: LocalOptions,
    http: reqwest::Client,
    /// Children this process started, so that their exit status can be read and they are
    /// reaped.
    children: Mutex<HashMap<u32, tokio::process::Child>>,
}

impl std::fmt::Debug for LocalProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalProvider")
            .field("state_dir", &self.state_dir)
            .field("services", &self.services.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

fn io(context: &str, err: std::io::Error) -> ProviderError {
    ProviderError::platform(format!("{context}: {err}")).caused_by(err)
}

impl LocalProvider {
    /// A provider for `[targets.local]`. Checks the commands and the router executable;
    /// starts nothing.
    pub fn new(
        config: &LocalTarget,
        options: LocalOptions,
    ) -> Result<LocalProvider, ProviderError> {
        if config.services.is_empty() {
            return Err(ProviderError::invalid("[targets.local] has no services"));
        }
        for (name, service) in &config.services {
            if service.command.is_empty() {
                return Err(ProviderError::invalid(format!(
                    "[targets.local.services.{name}] has an empty command"
                )));
            }
            if !service.health_path.starts_with('/') {
                return Err(ProviderError::invalid(format!(
                    "[targets.local.services.{name}] health_path `{}` must start with `/`",
                    service.health_path
                )));
            }
        }
        match options.router.first() {
            Some(program) if Path::new(program).is_file() => {}
            Some(program) => {
                return Err(ProviderError::invalid(format!(
                    "the router {program} does not exist (the shipgate binary runs it as `shipgate local-router`; programs embedding the local provider build it with `cargo build -p shipgate-local`)"
                )));
            }
            None => return Err(ProviderError::invalid("no router program is set")),
        }
        if options.shipgate.is_none() {
            for (name, service) in &config.services {
                if service
                    .command
                    .iter()
                    .any(|part| part.contains("{shipgate}"))
                {
                    return Err(ProviderError::invalid(format!(
                        "[targets.local.services.{name}] command uses {{shipgate}}, which only the shipgate binary can stand for; name the program instead"
                    )));
                }
            }
        }
        let http = shipgate_http::build_client(&shipgate_http::ClientOptions {
            max_redirects: 0,
            ..shipgate_http::ClientOptions::default()
        })
        .map_err(|e| ProviderError::platform(e.to_string()))?;
        Ok(LocalProvider {
            state_dir: config.state_dir.clone(),
            services: config.services.clone(),
            options,
            http,
            children: Mutex::new(HashMap::new()),
        })
    }

    fn state_path(&self) -> PathBuf {
        self.state_dir.join("state.json")
    }

    fn load(&self) -> Result<State, ProviderError> {
        match std::fs::read(self.state_path()) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                ProviderError::platform(format!("{} is corrupt: {e}", self.state_path().display()))
            }),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(State::default()),
            Err(err) => Err(io(
                &format!("cannot read {}", self.state_path().display()),
                err,
            )),
        }
    }

    fn save(&self, state: &State) -> Result<(), ProviderError> {
        std::fs::create_dir_all(&self.state_dir)
            .map_err(|e| io("cannot create the state directory", e))?;
        let tmp = self.state_dir.join("state.json.tmp");
        let json =
            serde_json::to_vec_pretty(state).map_err(|e| ProviderError::platform(e.to_string()))?;
        std::fs::write(&tmp, json).map_err(|e| io("cannot write the state", e))?;
        std::fs::rename(&tmp, self.state_path()).map_err(|e| io("cannot write the state", e))
    }

    fn backend_file(&self, service: &ServiceName) -> PathBuf {
        self.state_dir.join(service.as_str()).join("backend")
    }

    fn stats_file(&self, service: &ServiceName) -> PathBuf {
        self.state_dir.join(service.as_str()).join("stats.json")
    }

    /// Points `service`'s router at `route`, from its next request on.
    fn set_route(&self, service: &ServiceName, route: &Route) -> Result<(), ProviderError> {
        std::fs::create_dir_all(self.state_dir.join(service.as_str()))
            .map_err(|e| io("cannot create the service directory", e))?;
        routing::write_atomically(&self.backend_file(service), route.render().as_bytes())
            .map_err(|e| io("cannot move traffic", e))
    }

    fn service(&self, name: &ServiceName) -> Result<&LocalService, ProviderError> {
        self.services.get(name).ok_or_else(|| {
            ProviderError::invalid(format!(
                "service `{name}` is not in [targets.local.services]"
            ))
        })
    }

    /// The file a router writes (`PID ADDR`) once it listens.
    fn ready_file(&self, service: &ServiceName) -> PathBuf {
        self.state_dir.join(service.as_str()).join("router.ready")
    }

    /// Whether the router `pid` of `service` is alive and listening on `port`, by its own
    /// word (the ready file), not because something answers on the port.
    fn router_serves(&self, service: &ServiceName, pid: u32, port: u16) -> bool {
        let ready = std::fs::read_to_string(self.ready_file(service)).unwrap_or_default();
        process::alive_as(pid, ROUTER_MARK) && ready.trim() == format!("{pid} 127.0.0.1:{port}")
    }

    /// Starts the router of `service` unless its router runs on the configured port (a router
    /// on a port the configuration no longer names is stopped and replaced). Fails clearly when
    /// the router cannot listen (another process holds the port).
    async fn ensure_router(
        &self,
        state: &mut State,
        service: &ServiceName,
    ) -> Result<(), ProviderError> {
        let port = self.service(service)?.port;
        if let Some(&pid) = state.routers.get(service) {
            if self.router_serves(service, pid, port) {
                return Ok(());
            }
            if process::alive_as(pid, ROUTER_MARK) {
                self.stop(pid).await;
            }
            state.routers.remove(service);
        }
        let ready = self.ready_file(service);
        let _ = std::fs::remove_file(&ready);
        let mut argv = self.options.router.clone();
        argv.extend([
            "--listen".to_owned(),
            format!("127.0.0.1:{port}"),
            "--backend-file".to_owned(),
            self.backend_file(service).display().to_string(),
            "--ready-file".to_owned(),
            ready.display().to_string(),
            "--stats-file".to_owned(),
            self.stats_file(service).display().to_string(),
        ]);
        let log = self.state_dir.join(service.as_str()).join("router.log");
        let child = process::spawn_detached(&argv, &[], &log)
            .map_err(|e| io("cannot start the router", e))?;
        let pid = child.id().unwrap_or_default();
        self.children.lock().await.insert(pid, child);
        for _ in 0..200 {
            if self.router_serves(service, pid, port) {
                state.routers.insert(service.clone(), pid);
                return Ok(());
            }
            if self.exit_status(pid).await.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.stop(pid).await;
        let mut lines = process::tail(&log, 5);
        lines.insert(
            0,
            format!(
                "the router for `{service}` could not listen on its stable port {port} (is another process using it? free the port or change [targets.local.services.{service}] port)"
            ),
        );
        Err(ProviderError::platform(lines.join("\n")))
    }

    async fn stop(&self, pid: u32) {
        process::terminate(pid, STOP_GRACE).await;
        if let Some(mut child) = self.children.lock().await.remove(&pid) {
            let _ = child.wait().await;
        }
    }

    /// Stops every service process and router this provider's state knows (for tests and
    /// `shipgate`'s demo cleanup).
    pub async fn shutdown(&self) -> Result<(), ProviderError> {
        let mut state = self.load()?;
        for process in state.live.values() {
            self.stop(process.pid).await;
        }
        for &pid in state.routers.values() {
            self.stop(pid).await;
        }
        state.live.clear();
        state.routers.clear();
        self.save(&state)
    }

    /// The exit status of a process this provider started, if it has exited.
    async fn exit_status(&self, pid: u32) -> Option<String> {
        let mut children = self.children.lock().await;
        match children.get_mut(&pid).map(tokio::process::Child::try_wait) {
            Some(Ok(Some(status))) => Some(status.to_string()),
            Some(_) => None,
            None => (!process::alive(pid)).then(|| "exited".to_owned()),
        }
    }

    async fn healthy(&self, service: &LocalService, port: u16) -> Result<(), String> {
        let url = format!("http://127.0.0.1:{port}{}", service.health_path);
        match self
            .http
            .get(&url)
            .timeout(Duration::from_secs(2))
            .send()
            .await
        {
            Ok(response) if response.status().is_success() => Ok(()),
            Ok(response) => Err(format!(
                "GET {} → {}",
                service.health_path,
                response.status().as_u16()
            )),
            Err(err) => Err(format!(
                "GET {} → {}",
                service.health_path,
                shipgate_http::classify_error(&err).1
            )),
        }
    }

    fn start_revision(
        &self,
        state: &mut State,
        request: &DeployRequest,
    ) -> Result<u64, ProviderError> {
        for name in request.images.keys() {
            self.service(name)?;
        }
        if request.images.is_empty() {
            return Err(ProviderError::invalid(
                "a deploy needs at least one service",
            ));
        }
        let number = state.revisions.last().map_or(1, |r| r.number + 1);
        state.revisions.push(StoredRevision {
            number,
            images: request.images.clone(),
            status: RevisionStatus::Pending,
            created_unix: SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            description: request.description.clone(),
            processes: BTreeMap::new(),
        });
        Ok(number)
    }

    fn revision_mut(state: &mut State, number: u64) -> Result<&mut StoredRevision, ProviderError> {
        state
            .revisions
            .iter_mut()
            .find(|r| r.number == number)
            .ok_or_else(|| ProviderError::not_found(format!("revision {number}")))
    }

    async fn launch(&self, request: &DeployRequest) -> Result<Deployment, ProviderError> {
        self.abandon_pending().await?;
        let mut state = self.load()?;
        let number = self.start_revision(&mut state, request)?;
        let mut started = BTreeMap::new();
        for (name, image) in &request.images {
            let service = self.service(name)?;
            let port = process::free_port().map_err(|e| io("no free port", e))?;
            let tag = image
                .tag()
                .or(image.digest())
                .unwrap_or("latest")
                .to_owned();
            let argv: Vec<String> = service
                .command
                .iter()
                .map(|part| {
                    let shipgate = self
                        .options
                        .shipgate
                        .as_ref()
                        .map(|p| p.display().to_string())
                        .unwrap_or_default();
                    part.replace("{shipgate}", &shipgate)
                        .replace("{image}", &image.to_string())
                        .replace("{tag}", &tag)
                        .replace("{port}", &port.to_string())
                })
                .collect();
            let mut env: Vec<(String, String)> = service
                .env
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            env.push(("PORT".into(), port.to_string()));
            env.push(("SHIPGATE_IMAGE".into(), image.to_string()));
            env.push(("SHIPGATE_TAG".into(), tag.clone()));
            let log = self
                .state_dir
                .join(name.as_str())
                .join(format!("revision-{number}.log"));
            let child = match process::spawn_detached(&argv, &env, &log) {
                Ok(child) => child,
                Err(err) => {
                    for process in started.values() {
                        let process: &Process = process;
                        self.stop(process.pid).await;
                    }
                    Self::revision_mut(&mut state, number)?.status = RevisionStatus::Failed;
                    self.save(&state)?;
                    return Err(ProviderError::invalid(format!(
                        "cannot start `{}` for service `{name}`: {err}",
                        argv[0]
                    )));
                }
            };
            let pid = child.id().unwrap_or_default();
            self.children.lock().await.insert(pid, child);
            tracing::info!(service = %name, pid, port, image = %image, "started");
            started.insert(
                name.clone(),
                Process {
                    pid,
                    port,
                    image: image.clone(),
                    revision: number,
                    log,
                },
            );
        }
        Self::revision_mut(&mut state, number)?.processes = started;
        self.save(&state)?;
        Ok(Deployment {
            revision: RevisionId(number.to_string()),
            request: request.clone(),
        })
    }

    /// A revision still `pending` when a new deploy starts was left by a shipgate process that
    /// died mid-wait (the deploy lock guarantees no other is running): its processes are
    /// stopped and it is marked failed, so nothing it started lingers.
    async fn abandon_pending(&self) -> Result<(), ProviderError> {
        let mut state = self.load()?;
        let mut orphans = Vec::new();
        for revision in state
            .revisions
            .iter_mut()
            .filter(|r| r.status == RevisionStatus::Pending)
        {
            revision.status = RevisionStatus::Failed;
            orphans.extend(revision.processes.values().map(|p| p.pid));
        }
        if orphans.is_empty() {
            return Ok(());
        }
        self.save(&state)?;
        for pid in orphans {
            tracing::warn!(pid, "stopping a process left by an interrupted deploy");
            self.stop(pid).await;
        }
        Ok(())
    }

    fn number(id: &RevisionId) -> Result<u64, ProviderError> {
        id.0.parse()
            .map_err(|_| ProviderError::not_found(format!("revision `{id}`")))
    }

    async fn fail(&self, number: u64) -> Result<Vec<String>, ProviderError> {
        let mut state = self.load()?;
        let revision = Self::revision_mut(&mut state, number)?;
        revision.status = RevisionStatus::Failed;
        let processes: Vec<Process> = revision.processes.values().cloned().collect();
        self.save(&state)?;
        let mut diagnostics = Vec::new();
        for process in processes {
            if let Some(status) = self.exit_status(process.pid).await {
                diagnostics.push(format!("pid {} {status}", process.pid));
            }
            self.stop(process.pid).await;
            diagnostics.extend(process::tail(&process.log, 20));
        }
        Ok(diagnostics)
    }

    /// Waits until every process of revision `number` answers its health path and has stayed
    /// healthy for a while. `None`: healthy. Otherwise the revision failed (its processes are
    /// stopped) and the verdict says why; what served before never stopped.
    async fn await_healthy(
        &self,
        number: u64,
        deadline: Instant,
        progress: &dyn ProgressSink,
        cancel: &CancellationToken,
    ) -> Result<Option<Verdict>, ProviderError> {
        let processes = {
            let mut state = self.load()?;
            Self::revision_mut(&mut state, number)?.processes.clone()
        };
        // Healthy since when (all services at once); reset by any failing check.
        let healthy_since: std::sync::Mutex<Option<Instant>> = std::sync::Mutex::new(None);
        let outcome = wait_until(
            deadline,
            Duration::from_millis(100),
            Duration::from_millis(250),
            progress,
            cancel,
            || async {
                let mut waiting = Vec::new();
                for (name, process) in &processes {
                    if let Some(status) = self.exit_status(process.pid).await {
                        return Poll::Ready(Err(format!(
                            "`{name}` {status} before becoming healthy"
                        )));
                    }
                    if let Err(why) = self.healthy(&self.services[name], process.port).await {
                        waiting.push(format!("{name}: {why}"));
                    }
                }
                let mut since = healthy_since
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if !waiting.is_empty() {
                    *since = None;
                    return Poll::Waiting(waiting.join("; "));
                }
                let first = *since.get_or_insert_with(Instant::now);
                if first.elapsed() >= STABLE_FOR {
                    Poll::Ready(Ok(()))
                } else {
                    Poll::Waiting(format!(
                        "healthy, staying up for {}s before traffic moves",
                        STABLE_FOR.as_secs()
                    ))
                }
            },
        )
        .await;
        Ok(match outcome {
            Ok(Some(Ok(()))) => None,
            Ok(Some(Err(reason))) => {
                let diagnostics = self.fail(number).await?;
                Some(Verdict::Failed {
                    reason,
                    diagnostics,
                })
            }
            Ok(None) => {
                self.fail(number).await?;
                Some(Verdict::Cancelled)
            }
            Err(waiting_for) => {
                let diagnostics = self.fail(number).await?;
                Some(Verdict::TimedOut {
                    waiting_for,
                    diagnostics,
                })
            }
        })
    }

    /// Points every service's router at revision `number`'s processes (new connections move
    /// at once). What served before keeps running, recorded as `previous` until
    /// [`LocalProvider::retire_previous`] or an abort. `Some(verdict)`: a router could not
    /// start; traffic stayed where it was and the revision failed.
    async fn switch(&self, number: u64) -> Result<Option<Verdict>, ProviderError> {
        let mut state = self.load()?;
        let processes = Self::revision_mut(&mut state, number)?.processes.clone();
        for (name, process) in &processes {
            self.set_route(name, &Route::single(process.port))?;
            if let Err(err) = self.ensure_router(&mut state, name).await {
                // Traffic stays with what served before, if anything did.
                if let Some(old) = state.live.get(name) {
                    self.set_route(name, &Route::single(old.port))?;
                }
                self.save(&state)?;
                let diagnostics = self.fail(number).await?;
                return Ok(Some(Verdict::Failed {
                    reason: err.to_string(),
                    diagnostics,
                }));
            }
            if let Some(old) = state.live.insert(name.clone(), process.clone())
                && old.revision != number
            {
                state.previous.insert(name.clone(), old);
            }
        }
        Self::revision_mut(&mut state, number)?.status = RevisionStatus::Deployed;
        self.save(&state)?;
        Ok(None)
    }

    /// Stops what the last switch replaced, and marks the revisions no longer live
    /// superseded.
    async fn retire_previous(&self) -> Result<(), ProviderError> {
        let mut state = self.load()?;
        let replaced: Vec<Process> = std::mem::take(&mut state.previous).into_values().collect();
        for revision in &mut state.revisions {
            if revision.status == RevisionStatus::Deployed
                && !state.live.values().any(|p| p.revision == revision.number)
            {
                revision.status = RevisionStatus::Superseded;
            }
        }
        self.save(&state)?;
        for old in replaced {
            tracing::info!(
                pid = old.pid,
                revision = old.revision,
                "stopping replaced process"
            );
            self.stop(old.pid).await;
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl Provider for LocalProvider {
    fn kind(&self) -> &'static str {
        "local"
    }

    async fn current(&self) -> Result<Vec<Running>, ProviderError> {
        let state = self.load()?;
        Ok(state
            .live
            .iter()
            .filter(|(_, p)| process::alive(p.pid))
            .map(|(service, p)| Running {
                service: service.clone(),
                image: p.image.clone(),
                revision: RevisionId(p.revision.to_string()),
            })
            .collect())
    }

    async fn plan(&self, request: &DeployRequest) -> Result<Vec<PlannedChange>, ProviderError> {
        let state = self.load()?;
        let mut changes = Vec::new();
        for (service, image) in &request.images {
            self.service(service)?;
            let from = state
                .live
                .get(service)
                .filter(|p| process::alive(p.pid))
                .map(|p| p.image.clone());
            if from.as_ref() != Some(image) {
                changes.push(PlannedChange {
                    service: service.clone(),
                    from,
                    to: image.clone(),
                });
            }
        }
        Ok(changes)
    }

    async fn deploy(&self, request: &DeployRequest) -> Result<Deployment, ProviderError> {
        self.launch(request).await
    }

    async fn wait<'a>(
        &'a self,
        deployment: &'a Deployment,
        deadline: Instant,
        progress: &'a (dyn ProgressSink + 'a),
        cancel: &'a CancellationToken,
    ) -> Result<Verdict, ProviderError> {
        // Rolling, for the local provider: stage, switch every user at once, promote.
        let number = Self::number(&deployment.revision)?;
        if let Some(verdict) = self
            .await_healthy(number, deadline, progress, cancel)
            .await?
        {
            return Ok(verdict);
        }
        if let Some(verdict) = self.switch(number).await? {
            return Ok(verdict);
        }
        self.retire_previous().await?;
        Ok(Verdict::Healthy)
    }

    async fn history(&self) -> Result<Vec<Revision>, ProviderError> {
        let state = self.load()?;
        Ok(state
            .revisions
            .iter()
            .rev()
            .map(|r| Revision {
                id: RevisionId(r.number.to_string()),
                images: r.images.clone(),
                status: r.status,
                created_at: SystemTime::UNIX_EPOCH + Duration::from_secs(r.created_unix),
                description: r.description.clone(),
            })
            .collect())
    }

    async fn rollback(&self, to: &RevisionId) -> Result<Deployment, ProviderError> {
        let number = Self::number(to)?;
        let state = self.load()?;
        let target = state
            .revisions
            .iter()
            .find(|r| r.number == number)
            .ok_or_else(|| ProviderError::not_found(format!("revision {number}")))?;
        if target.status == RevisionStatus::Failed || target.status == RevisionStatus::Pending {
            return Err(ProviderError::invalid(format!(
                "revision {number} never became healthy; choose a deployed or superseded one"
            )));
        }
        let request = DeployRequest {
            images: target.images.clone(),
            description: format!("rollback to revision {number}"),
        };
        self.launch(&request).await
    }

    fn can_stage(&self) -> bool {
        true
    }

    /// The router splits requests by exact shares.
    fn can_split(&self) -> bool {
        true
    }

    /// Starts the release on fresh ports beside the live one; its endpoints are those ports
    /// (the stable ports keep serving the live release).
    async fn stage<'a>(
        &'a self,
        request: &'a DeployRequest,
        deadline: Instant,
        progress: &'a (dyn ProgressSink + 'a),
        cancel: &'a CancellationToken,
    ) -> Result<StageOutcome, ProviderError> {
        let deployment = self.launch(request).await?;
        let number = Self::number(&deployment.revision)?;
        if let Some(verdict) = self
            .await_healthy(number, deadline, progress, cancel)
            .await?
        {
            return Ok(StageOutcome::NotHealthy(deployment, verdict));
        }
        let mut state = self.load()?;
        let endpoints = Self::revision_mut(&mut state, number)?
            .processes
            .iter()
            .map(|(name, p)| (name.clone(), format!("http://127.0.0.1:{}", p.port)))
            .collect();
        Ok(StageOutcome::Staged(Staged {
            deployment,
            endpoints,
        }))
    }

    /// Moves `percent` of requests to the staged release: below 100 the router splits them
    /// between the live process and the staged one (a canary; nothing stops); at 100 the
    /// staged release becomes the live one and the old processes keep running until
    /// [`Provider::promote`] or [`Provider::abort`]. A service that has no live process yet
    /// sends everything to the staged one.
    async fn shift<'a>(&'a self, staged: &'a Deployment, percent: u8) -> Result<u8, ProviderError> {
        let number = Self::number(&staged.revision)?;
        shipgate_provider::check_share(percent)?;
        if percent == 100 {
            return match self.switch(number).await? {
                None => Ok(100),
                Some(verdict) => Err(ProviderError::platform(format!(
                    "traffic could not move to revision {number}: {verdict:?}"
                ))),
            };
        }
        let mut state = self.load()?;
        let processes = Self::revision_mut(&mut state, number)?.processes.clone();
        let mut reached = percent;
        for (name, process) in &processes {
            let route = match state.live.get(name) {
                Some(live) if live.revision != number && process::alive(live.pid) => {
                    Route::split(live.port, process.port, percent)
                }
                _ => {
                    // Nothing else serves this service: the staged release takes it all.
                    reached = 100;
                    Route::single(process.port)
                }
            };
            self.set_route(name, &route)?;
            if let Err(err) = self.ensure_router(&mut state, name).await {
                if let Some(live) = state.live.get(name) {
                    self.set_route(name, &Route::single(live.port))?;
                }
                self.save(&state)?;
                return Err(err);
            }
        }
        self.save(&state)?;
        Ok(reached)
    }

    /// Traffic back to what served before (its processes never stopped), then the staged
    /// processes are stopped and the revision marked failed. Works after a partial shift
    /// (the live release still takes the rest) and after a full one.
    async fn abort<'a>(&'a self, staged: &'a Deployment) -> Result<(), ProviderError> {
        let number = Self::number(&staged.revision)?;
        let mut state = self.load()?;
        let previous = std::mem::take(&mut state.previous);
        let mut orphans = Vec::new();
        for (name, old) in &previous {
            if state.live.get(name).is_none_or(|p| p.revision != number) {
                // Left by a run that died between a switch and its promotion: serves nobody.
                orphans.push(old.pid);
                continue;
            }
            state.live.insert(name.clone(), old.clone());
        }
        let services: Vec<ServiceName> = Self::revision_mut(&mut state, number)?
            .processes
            .keys()
            .cloned()
            .collect();
        for name in &services {
            if let Some(live) = state.live.get(name).filter(|p| p.revision != number) {
                self.set_route(name, &Route::single(live.port))?;
            } else {
                // Nothing served before: the service stops answering with its release.
                state.live.remove(name);
                let _ = std::fs::remove_file(self.backend_file(name));
            }
        }
        let live: Vec<u64> = state.live.values().map(|p| p.revision).collect();
        for revision in &mut state.revisions {
            if live.contains(&revision.number) {
                revision.status = RevisionStatus::Deployed;
            }
        }
        self.save(&state)?;
        self.fail(number).await?;
        for pid in orphans {
            self.stop(pid).await;
        }
        Ok(())
    }

    /// What each router counted for the staged release's processes and for the ones beside
    /// them (written by the routers every few tens of milliseconds).
    async fn observe<'a>(
        &'a self,
        staged: &'a Deployment,
    ) -> Result<Option<TrafficObservation>, ProviderError> {
        let number = Self::number(&staged.revision)?;
        let mut state = self.load()?;
        let processes = Self::revision_mut(&mut state, number)?.processes.clone();
        let mut observation = TrafficObservation::default();
        for (name, process) in &processes {
            let stats = RouterStats::read(&self.stats_file(name))
                .map_err(|e| io("cannot read the router's counts", e))?;
            observation.staged.add(&stats.of(process.port));
            let stable = state
                .live
                .get(name)
                .filter(|p| p.revision != number)
                .or_else(|| state.previous.get(name));
            if let Some(stable) = stable {
                observation.stable.add(&stats.of(stable.port));
            }
        }
        Ok(Some(observation))
    }

    async fn promote<'a>(&'a self, staged: &'a Deployment) -> Result<(), ProviderError> {
        let number = Self::number(&staged.revision)?;
        let state = self.load()?;
        if !state.live.values().any(|p| p.revision == number) {
            return Err(ProviderError::invalid(format!(
                "revision {number} takes no traffic yet; shift it to 100% before promoting it"
            )));
        }
        self.retire_previous().await
    }

    async fn diagnostics(&self, deployment: &Deployment) -> Result<Vec<String>, ProviderError> {
        let number = Self::number(&deployment.revision)?;
        let mut state = self.load()?;
        let revision = Self::revision_mut(&mut state, number)?;
        let mut lines = Vec::new();
        for (name, process) in &revision.processes {
            lines.push(format!(
                "{name} (pid {}, port {}, {}):",
                process.pid, process.port, process.image
            ));
            lines.extend(
                process::tail(&process.log, 20)
                    .into_iter()
                    .map(|l| format!("  {l}")),
            );
        }
        Ok(lines)
    }
}

/// The README's examples, compiled (and run) as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
