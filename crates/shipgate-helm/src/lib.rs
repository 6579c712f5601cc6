//! The Helm provider: `helm upgrade --install --wait` of the configured chart with each
//! service's image tag at its value path, history and status read as JSON, rollback to a
//! revision shipgate computes itself (never helm's "current − 1"), and recovery of a release
//! left pending by a killed helm.
//!
//! **Pending-release rule.** Helm's only lock is a `pending-*` latest revision. shipgate holds
//! the ledger's deploy lock for the (app, environment) while it runs helm, and stops helm with
//! SIGTERM (which helm records as `failed`), so a pending revision found at the start of a
//! shipgate deploy was left by a process that is gone (a SIGKILLed helm, a lost runner, a
//! manual run). shipgate then recovers: `pending-upgrade`/`pending-rollback` → `helm rollback`
//! to the newest `deployed`/`superseded` revision; `pending-install` → `helm uninstall`. With
//! `recover_pending = false` it refuses instead, naming the revision.
//!
//! ```no_run
//! # async fn demo(settings: shipgate_helm::HelmSettings) -> Result<(), shipgate_provider::ProviderError> {
//! use std::collections::BTreeMap;
//! use std::time::{Duration, Instant};
//! use shipgate_provider::{DeployRequest, Provider, Verdict, previous_good};
//! use tokio_util::sync::CancellationToken;
//!
//! let helm = shipgate_helm::HelmProvider::new(settings).await?; // checks helm, chart, kubeconfig
//! let request = DeployRequest {
//!     images: BTreeMap::from([("api".parse().unwrap(), "ghcr.io/acme/api:3f2c1a9".parse().unwrap())]),
//!     description: "deploy 3f2c1a9".into(),
//! };
//! let cancel = CancellationToken::new();
//! let deployment = helm.deploy(&request).await?;
//! let verdict = helm.wait(&deployment, Instant::now() + Duration::from_secs(600), &|_: &shipgate_provider::WaitProgress| {}, &cancel).await?;
//! if verdict != Verdict::Healthy {
//!     if let Some(good) = previous_good(&helm.history().await?, &deployment.revision) {
//!         let back = helm.rollback(&good.id).await?;
//!         helm.wait(&back, Instant::now() + Duration::from_secs(600), &|_: &shipgate_provider::WaitProgress| {}, &cancel).await?;
//!     }
//! }
//! # Ok(()) }
//! ```

mod argo;
mod cli;
mod job;
mod readiness;
mod rollout;

use std::collections::{BTreeMap, HashMap};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use shipgate_core::{ImageRef, ServiceName};
use shipgate_provider::{
    DeployRequest, Deployment, PlannedChange, ProgressSink, Provider, ProviderError, Readiness,
    Revision, RevisionId, RevisionStatus, Running, StageOutcome, Verdict, WaitProgress,
};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

pub use cli::{
    HelmError, HistoryEntry, MIN_VERSION, ReleaseStatus, Upgrade, Values, classify, parse_history,
    parse_version, rollback_args, upgrade_args,
};
pub use job::KubernetesJob;
pub use rollout::{Rollout, deployment_rollout, pod_problems, statefulset_rollout};

/// How many revisions `history` reads.
const HISTORY_MAX: u32 = 20;

/// Everything the provider needs, resolved from `[targets.helm]`.
#[derive(Debug, Clone)]
pub struct HelmSettings {
    /// The helm executable.
    pub bin: PathBuf,
    /// Release name (a DNS-1123 label of at most 53 characters).
    pub release: String,
    /// Namespace.
    pub namespace: String,
    /// Chart directory or `repo/chart` reference.
    pub chart: String,
    /// Chart version, for repository charts.
    pub chart_version: Option<String>,
    /// `-f` files.
    pub values_files: Vec<PathBuf>,
    /// Service → value path of its image tag (`api.image.tag`).
    pub tag_paths: BTreeMap<ServiceName, String>,
    /// Service → image repository (without tag), to report what runs.
    pub repositories: BTreeMap<ServiceName, String>,
    /// Previous-values strategy.
    pub values: Values,
    /// How long an upgrade or rollback may take; helm's own `--timeout` is 90 % of it so
    /// that helm reports its failure before shipgate's deadline (45 % for an upgrade with
    /// `rollback_on_failure`, whose own rollback may take as long again).
    pub timeout: Duration,
    /// Ask helm to roll back a failed upgrade itself.
    pub rollback_on_failure: bool,
    /// Recover a release left pending (see the crate documentation). Default true.
    pub recover_pending: bool,
    /// The kubeconfig's YAML (decoded from base64 if it was), written to a 0600 file for helm.
    pub kubeconfig: Option<String>,
    /// The kubeconfig context.
    pub context: Option<String>,
    /// Extra environment for helm (`HELM_CACHE_HOME`, …).
    pub env: Vec<(String, String)>,
    /// The Argo Rollouts `Rollout` the chart renders, for blue-green (see the `argo` module);
    /// `None`: the provider cannot stage.
    pub rollout: Option<String>,
}

struct Running_ {
    task: tokio::task::JoinHandle<Result<cli::Output, HelmError>>,
    stop: CancellationToken,
}

/// The Helm provider.
pub struct HelmProvider {
    settings: HelmSettings,
    major: u32,
    version: String,
    /// Keeps the kubeconfig file alive (and removes it on drop).
    kubeconfig: Option<tempfile::NamedTempFile>,
    running: Mutex<HashMap<String, Running_>>,
    failures: Mutex<HashMap<String, Vec<String>>>,
    /// The same cluster through the Kubernetes API, to verify rollouts and explain failures.
    kube: Option<kube::Client>,
    /// Releases staged behind an Argo Rollout's preview Service, by revision.
    staged: Mutex<HashMap<String, argo::StagedRollout>>,
    /// Whether `[targets.helm] rollout` named a canary Rollout when the provider was made.
    rollout_canary: bool,
}

impl std::fmt::Debug for HelmProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HelmProvider")
            .field("release", &self.settings.release)
            .field("namespace", &self.settings.namespace)
            .field("helm", &self.version)
            .finish_non_exhaustive()
    }
}

fn invalid(message: impl Into<String>) -> ProviderError {
    ProviderError::invalid(message.into())
}

fn from_helm(err: HelmError) -> ProviderError {
    let kind: fn(String) -> ProviderError = match &err {
        HelmError::Missing { .. } | HelmError::TooOld(_) => ProviderError::invalid,
        HelmError::NotFound(_) => ProviderError::not_found,
        HelmError::Unreachable(_) => ProviderError::unavailable,
        HelmError::Unauthorized(_) => ProviderError::unauthorized,
        _ => ProviderError::platform,
    };
    kind(err.to_string()).caused_by(err)
}

/// A DNS-1123 label of at most 53 characters (helm's release name rule).
fn valid_release(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 53
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

/// Writes the kubeconfig helm reads into a private directory of this user
/// (`$TMPDIR/shipgate-kubeconfigs-UID`, 0700) as `kubeconfig-PID-…` (0600, removed on drop),
/// after removing the files there of processes that are gone: a run killed with SIGKILL
/// cannot remove its own, so the next run does.
fn private_kubeconfig(yaml: &str) -> Result<tempfile::NamedTempFile, ProviderError> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    let fail = |e: std::io::Error| invalid(format!("cannot write the kubeconfig for helm: {e}"));
    let uid = nix::unistd::geteuid().as_raw();
    let dir = std::env::temp_dir().join(format!("shipgate-kubeconfigs-{uid}"));
    match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(fail(e)),
    }
    let meta = std::fs::symlink_metadata(&dir).map_err(fail)?;
    if !meta.is_dir() || meta.uid() != uid || meta.permissions().mode() & 0o077 != 0 {
        return Err(invalid(format!(
            "{} is not a private directory of this user; remove it and run again",
            dir.display()
        )));
    }
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for entry in entries.flatten() {
            let name = entry.file_name();
            let pid = name
                .to_str()
                .and_then(|n| n.strip_prefix("kubeconfig-"))
                .and_then(|rest| rest.split('-').next())
                .and_then(|pid| pid.parse::<u32>().ok());
            if let Some(pid) = pid
                && !std::path::Path::new(&format!("/proc/{pid}")).exists()
            {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
    // NamedTempFile is created 0600 and removed on drop.
    let mut file = tempfile::Builder::new()
        .prefix(&format!("kubeconfig-{}-", std::process::id()))
        .tempfile_in(&dir)
        .map_err(fail)?;
    file.write_all(yaml.as_bytes()).map_err(fail)?;
    Ok(file)
}

/// The value at a dotted path of a JSON object.
fn value_at<'a>(values: &'a serde_json::Value, path: &str) -> Option<&'a serde_json::Value> {
    path.split('.').try_fold(values, |node, key| node.get(key))
}

impl HelmProvider {
    /// Checks the settings and the helm binary (its version), writes the kubeconfig; changes
    /// nothing in the cluster.
    pub async fn new(settings: HelmSettings) -> Result<HelmProvider, ProviderError> {
        if !valid_release(&settings.release) {
            return Err(invalid(format!(
                "`{}` is not a valid release name (lowercase letters, digits and `-`, at most 53)",
                settings.release
            )));
        }
        let chart_path = Path::new(&settings.chart);
        let looks_local = settings.chart.starts_with('.')
            || settings.chart.starts_with('/')
            || settings.chart.matches('/').count() != 1;
        if looks_local && !chart_path.is_dir() && !settings.chart.contains("://") {
            return Err(invalid(format!(
                "the chart {} does not exist",
                settings.chart
            )));
        }
        for file in &settings.values_files {
            if !file.is_file() {
                return Err(invalid(format!(
                    "the values file {} does not exist",
                    file.display()
                )));
            }
        }
        check_tag_paths(&settings)?;
        let cancel = CancellationToken::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let args = vec![
            "version".to_owned(),
            "--template".to_owned(),
            "{{.Version}}".to_owned(),
        ];
        let out = cli::run(&settings.bin, &args, &settings.env, deadline, &cancel)
            .await
            .map_err(from_helm)?;
        let version = out.stdout.trim().to_owned();
        let Some((major, minor)) = parse_version(&version) else {
            return Err(invalid(format!(
                "cannot read the version of {} (`{version}`)",
                settings.bin.display()
            )));
        };
        if (major, minor) < MIN_VERSION {
            return Err(from_helm(HelmError::TooOld(version)));
        }
        let kubeconfig = match &settings.kubeconfig {
            Some(yaml) => Some(private_kubeconfig(yaml)?),
            None => None,
        };
        let kube = match &settings.kubeconfig {
            Some(yaml) => Some(kube_client(yaml, settings.context.as_deref()).await?),
            // helm's own default: $KUBECONFIG, ~/.kube/config, or the pod's service account.
            None => match kube::Config::infer().await {
                Ok(config) => kube::Client::try_from(config).ok(),
                Err(_) => None,
            },
        };
        let mut provider = HelmProvider {
            settings,
            major,
            version,
            kubeconfig,
            running: Mutex::new(HashMap::new()),
            failures: Mutex::new(HashMap::new()),
            kube,
            staged: Mutex::default(),
            rollout_canary: false,
        };
        if provider.settings.rollout.is_some() && provider.kube.is_some() {
            provider.rollout_canary = provider.rollout_is_canary().await;
        }
        Ok(provider)
    }

    /// The detected helm version (`v4.1.4`).
    pub fn helm_version(&self) -> &str {
        &self.version
    }

    fn with_cluster(&self, mut args: Vec<String>) -> Vec<String> {
        if let Some(file) = &self.kubeconfig {
            args.extend(["--kubeconfig".to_owned(), file.path().display().to_string()]);
        }
        if let Some(context) = &self.settings.context {
            args.extend(["--kube-context".to_owned(), context.clone()]);
        }
        args
    }

    async fn helm(&self, args: Vec<String>) -> Result<cli::Output, HelmError> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        let out = cli::run(
            &self.settings.bin,
            &self.with_cluster(args),
            &self.settings.env,
            deadline,
            &CancellationToken::new(),
        )
        .await?;
        if out.success {
            Ok(out)
        } else {
            Err(out.error())
        }
    }

    async fn history_entries(&self) -> Result<Vec<HistoryEntry>, ProviderError> {
        let args = vec![
            "history".to_owned(),
            self.settings.release.clone(),
            "--namespace".to_owned(),
            self.settings.namespace.clone(),
            "--max".to_owned(),
            HISTORY_MAX.to_string(),
            "--output".to_owned(),
            "json".to_owned(),
        ];
        match self.helm(args).await {
            Ok(out) => parse_history(&out.stdout).map_err(from_helm),
            Err(HelmError::NotFound(_)) => Ok(Vec::new()),
            Err(err) => Err(from_helm(err)),
        }
    }

    /// The images of a revision (`None`: the current one), from its user values.
    async fn images(
        &self,
        revision: Option<u64>,
    ) -> Result<BTreeMap<ServiceName, ImageRef>, ProviderError> {
        let mut args = vec![
            "get".to_owned(),
            "values".to_owned(),
            self.settings.release.clone(),
            "--namespace".to_owned(),
            self.settings.namespace.clone(),
            "--output".to_owned(),
            "json".to_owned(),
        ];
        if let Some(revision) = revision {
            args.extend(["--revision".to_owned(), revision.to_string()]);
        }
        let out = self.helm(args).await.map_err(from_helm)?;
        let values: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap_or_default();
        let mut images = BTreeMap::new();
        for (service, path) in &self.settings.tag_paths {
            let Some(tag) = value_at(&values, path).and_then(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .or_else(|| v.as_number().map(ToString::to_string))
            }) else {
                continue;
            };
            let repository = self
                .settings
                .repositories
                .get(service)
                .map_or(service.as_str(), String::as_str);
            if let Ok(image) = format!("{repository}:{tag}").parse() {
                images.insert(service.clone(), image);
            }
        }
        Ok(images)
    }

    /// helm's `--timeout` for one operation: 90 % of shipgate's, so that helm reports its
    /// failure before shipgate's deadline.
    fn helm_timeout(&self) -> Duration {
        (self.settings.timeout.mul_f64(0.9)).max(Duration::from_secs(1))
    }

    /// helm's `--timeout` for an upgrade. With `rollback_on_failure` helm may spend it twice
    /// (the upgrade's wait, then its own rollback's), so it gets 45 %: both fit in shipgate's
    /// deadline, which never interrupts helm's rollback.
    fn upgrade_timeout(&self) -> Duration {
        if self.settings.rollback_on_failure {
            (self.settings.timeout.mul_f64(0.45)).max(Duration::from_secs(1))
        } else {
            self.helm_timeout()
        }
    }

    /// Applies the pending-release rule before an upgrade.
    async fn recover_pending(
        &self,
        history: &[HistoryEntry],
    ) -> Result<Option<String>, ProviderError> {
        let Some(last) = history.last() else {
            return Ok(None);
        };
        if !last.status.is_pending() {
            return Ok(None);
        }
        if !self.settings.recover_pending {
            return Err(ProviderError::platform(format!(
                "release {} is locked by pending revision {} ({:?}); recover it (helm rollback) or set recover_pending",
                self.settings.release, last.revision, last.status
            )));
        }
        let timeout = self.helm_timeout();
        if last.status == ReleaseStatus::PendingInstall {
            let args = vec![
                "uninstall".to_owned(),
                self.settings.release.clone(),
                "--namespace".to_owned(),
                self.settings.namespace.clone(),
                "--wait".to_owned(),
                "--timeout".to_owned(),
                format!("{}s", timeout.as_secs()),
            ];
            self.helm(args).await.map_err(from_helm)?;
            return Ok(Some(format!(
                "uninstalled release {} left pending-install at revision {}",
                self.settings.release, last.revision
            )));
        }
        let target = history
            .iter()
            .rev()
            .find(|e| {
                matches!(
                    e.status,
                    ReleaseStatus::Deployed | ReleaseStatus::Superseded
                )
            })
            .ok_or_else(|| {
                ProviderError::platform(format!(
                    "release {} is pending at revision {} with no healthy revision to roll back to",
                    self.settings.release, last.revision
                ))
            })?;
        self.helm(rollback_args(
            &self.settings.release,
            &self.settings.namespace,
            target.revision,
            timeout,
        ))
        .await
        .map_err(from_helm)?;
        Ok(Some(format!(
            "recovered release {} from pending revision {} by rolling back to revision {}",
            self.settings.release, last.revision, target.revision
        )))
    }

    /// Pod-level reasons for a stuck release, when the Kubernetes API answers.
    async fn explain(&self) -> Vec<String> {
        let Some(client) = &self.kube else {
            return Vec::new();
        };
        match rollout::check(client, &self.settings.namespace, &self.settings.release).await {
            Ok((_, diagnostics)) => diagnostics,
            Err(err) => vec![format!("could not read the workloads: {err}")],
        }
    }

    /// After helm's `--wait`, checks every Deployment and StatefulSet of the release with
    /// kubectl's rollout logic until done, failed, or the deadline.
    async fn verify_rollout(
        &self,
        deployment: &Deployment,
        deadline: Instant,
        progress: &dyn ProgressSink,
        cancel: &CancellationToken,
    ) -> Result<Verdict, ProviderError> {
        let Some(client) = &self.kube else {
            return Ok(Verdict::Healthy);
        };
        let last = std::sync::Mutex::new(Vec::new());
        let outcome = shipgate_provider::wait_until(
            deadline,
            Duration::from_millis(500),
            Duration::from_secs(5),
            progress,
            cancel,
            || async {
                match rollout::check(client, &self.settings.namespace, &self.settings.release).await
                {
                    Ok((rollout::Rollout::Done, _)) => shipgate_provider::Poll::Ready(Ok(())),
                    Ok((rollout::Rollout::Failed(reason), diagnostics)) => {
                        shipgate_provider::Poll::Ready(Err((reason, diagnostics)))
                    }
                    Ok((rollout::Rollout::Waiting(what), diagnostics)) => {
                        *last
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner) = diagnostics;
                        shipgate_provider::Poll::Waiting(what)
                    }
                    Err(kube::Error::Api(status)) if matches!(status.code, 401 | 403) => {
                        shipgate_provider::Poll::Ready(Err((
                            HelmError::Unauthorized(format!(
                                "reading the release's workloads: {} {}",
                                status.code, status.message
                            ))
                            .to_string(),
                            Vec::new(),
                        )))
                    }
                    Err(err) => shipgate_provider::Poll::Ready(Err((
                        format!("cannot verify the rollout through the Kubernetes API: {err}"),
                        Vec::new(),
                    ))),
                }
            },
        )
        .await;
        let verdict = match outcome {
            Ok(Some(Ok(()))) => Verdict::Healthy,
            Ok(Some(Err((reason, diagnostics)))) => Verdict::Failed {
                reason,
                diagnostics,
            },
            Ok(None) => Verdict::Cancelled,
            Err(waiting_for) => Verdict::TimedOut {
                waiting_for,
                diagnostics: last
                    .into_inner()
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
            },
        };
        if let Verdict::Failed { diagnostics, .. } | Verdict::TimedOut { diagnostics, .. } =
            &verdict
        {
            self.failures
                .lock()
                .await
                .insert(deployment.revision.0.clone(), diagnostics.clone());
        }
        Ok(verdict)
    }

    /// Waits for the helm operation started for `deployment` to end. `None`: helm succeeded;
    /// otherwise what went wrong (helm failed, timed out at `deadline`, or was cancelled).
    async fn await_helm(
        &self,
        deployment: &Deployment,
        deadline: Instant,
        progress: &dyn ProgressSink,
        cancel: &CancellationToken,
    ) -> Result<Option<Verdict>, ProviderError> {
        let Some(mut running) = self.running.lock().await.remove(&deployment.revision.0) else {
            return Err(ProviderError::not_found(format!(
                "no helm operation in flight for revision {}",
                deployment.revision
            )));
        };
        let tick = Duration::from_secs(10);
        let outcome = loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            tokio::select! {
                result = &mut running.task => break Some(result),
                () = tokio::time::sleep(remaining.min(tick)) => {
                    if Instant::now() >= deadline { break None; }
                    progress.report(&WaitProgress {
                        waiting_for: format!("helm upgrade of {} (revision {}) with --wait", self.settings.release, deployment.revision),
                        remaining: deadline.saturating_duration_since(Instant::now()),
                    });
                }
                () = cancel.cancelled() => {
                    running.stop.cancel();
                    let _ = (&mut running.task).await;
                    return Ok(Some(Verdict::Cancelled));
                }
            }
        };
        let result = match outcome {
            Some(joined) => {
                joined.map_err(|e| ProviderError::platform(format!("the helm task failed: {e}")))?
            }
            None => {
                running.stop.cancel();
                let stderr = match (&mut running.task).await {
                    Ok(Err(err)) => err.to_string(),
                    _ => String::new(),
                };
                let diagnostics: Vec<String> = stderr.lines().map(str::to_owned).collect();
                self.failures
                    .lock()
                    .await
                    .insert(deployment.revision.0.clone(), diagnostics.clone());
                return Ok(Some(Verdict::TimedOut {
                    waiting_for: format!("helm on revision {}", deployment.revision),
                    diagnostics,
                }));
            }
        };
        match result {
            Ok(out) if out.success => Ok(None),
            Ok(out) => {
                let mut diagnostics: Vec<String> = out.stderr.lines().map(str::to_owned).collect();
                diagnostics.extend(self.explain().await);
                self.failures
                    .lock()
                    .await
                    .insert(deployment.revision.0.clone(), diagnostics.clone());
                Ok(Some(Verdict::Failed {
                    reason: out.error().to_string(),
                    diagnostics,
                }))
            }
            Err(err) => {
                let diagnostics = vec![err.to_string()];
                self.failures
                    .lock()
                    .await
                    .insert(deployment.revision.0.clone(), diagnostics.clone());
                Ok(Some(Verdict::Failed {
                    reason: err.to_string(),
                    diagnostics,
                }))
            }
        }
    }

    async fn start(&self, args: Vec<String>, revision: u64) {
        let stop = CancellationToken::new();
        let (bin, env) = (self.settings.bin.clone(), self.settings.env.clone());
        let args = self.with_cluster(args);
        let token = stop.clone();
        // The task's own deadline is a backstop; `wait` stops it at the caller's deadline.
        let deadline =
            tokio::time::Instant::now() + self.settings.timeout + Duration::from_secs(60);
        let task = tokio::spawn(async move { cli::run(&bin, &args, &env, deadline, &token).await });
        self.running
            .lock()
            .await
            .insert(revision.to_string(), Running_ { task, stop });
    }
}

/// For a chart directory: every image tag path must exist in the chart's `values.yaml`
/// (merged with the `-f` files), so that a typo does not deploy an unchanged image.
fn check_tag_paths(settings: &HelmSettings) -> Result<(), ProviderError> {
    let chart = Path::new(&settings.chart);
    if !chart.is_dir() {
        return Ok(()); // a repository chart: its values are not local
    }
    let mut documents = vec![chart.join("values.yaml")];
    documents.extend(settings.values_files.iter().cloned());
    let mut values: Vec<serde_json::Value> = Vec::new();
    for file in documents.iter().filter(|f| f.is_file()) {
        let text = std::fs::read_to_string(file)
            .map_err(|e| invalid(format!("cannot read {}: {e}", file.display())))?;
        let parsed: serde_json::Value = serde_saphyr::from_str(&text)
            .map_err(|_| invalid(format!("{} is not valid YAML", file.display())))?;
        values.push(parsed);
    }
    for (service, path) in &settings.tag_paths {
        if !values.iter().any(|v| value_at(v, path).is_some()) {
            return Err(invalid(format!(
                "service `{service}`: value path `{path}` is not in the chart's values.yaml or the values files; fix [targets.helm] image_tag_paths"
            )));
        }
    }
    Ok(())
}

/// A Kubernetes client for the kubeconfig helm gets. Parse errors would quote the file: only
/// their kind is reported.
async fn kube_client(yaml: &str, context: Option<&str>) -> Result<kube::Client, ProviderError> {
    let kubeconfig = kube::config::Kubeconfig::from_yaml(yaml)
        .map_err(|_| invalid("the kubeconfig is not valid YAML"))?;
    let options = kube::config::KubeConfigOptions {
        context: context.map(str::to_owned),
        ..Default::default()
    };
    let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .map_err(|e| invalid(format!("the kubeconfig cannot be used: {e}")))?;
    config.connect_timeout = Some(Duration::from_secs(10));
    config.read_timeout = Some(Duration::from_secs(30));
    kube::Client::try_from(config)
        .map_err(|e| invalid(format!("cannot build the Kubernetes client: {e}")))
}

fn to_status(status: &ReleaseStatus) -> RevisionStatus {
    match status {
        ReleaseStatus::Deployed => RevisionStatus::Deployed,
        ReleaseStatus::Superseded => RevisionStatus::Superseded,
        ReleaseStatus::PendingInstall
        | ReleaseStatus::PendingUpgrade
        | ReleaseStatus::PendingRollback => RevisionStatus::Pending,
        _ => RevisionStatus::Failed,
    }
}

#[async_trait::async_trait]
impl Provider for HelmProvider {
    async fn readiness(&self) -> Vec<Readiness> {
        readiness::check(&self.version, self.kube.as_ref(), &self.settings.namespace).await
    }

    fn kind(&self) -> &'static str {
        "helm"
    }

    async fn current(&self) -> Result<Vec<Running>, ProviderError> {
        let history = self.history_entries().await?;
        let Some(live) = history
            .iter()
            .rev()
            .find(|e| e.status == ReleaseStatus::Deployed)
        else {
            return Ok(Vec::new());
        };
        let images = self.images(Some(live.revision)).await?;
        Ok(images
            .into_iter()
            .map(|(service, image)| Running {
                service,
                image,
                revision: RevisionId(live.revision.to_string()),
            })
            .collect())
    }

    async fn plan(&self, request: &DeployRequest) -> Result<Vec<PlannedChange>, ProviderError> {
        let current: BTreeMap<ServiceName, ImageRef> = self
            .current()
            .await?
            .into_iter()
            .map(|r| (r.service, r.image))
            .collect();
        let mut changes = Vec::new();
        for (service, image) in &request.images {
            if !self.settings.tag_paths.contains_key(service) {
                return Err(invalid(format!(
                    "service `{service}` has no image tag path in [targets.helm] image_tag_paths"
                )));
            }
            if current.get(service) != Some(image) {
                changes.push(PlannedChange {
                    service: service.clone(),
                    from: current.get(service).cloned(),
                    to: image.clone(),
                });
            }
        }
        Ok(changes)
    }

    async fn recover(&self) -> Result<Vec<String>, ProviderError> {
        let history = self.history_entries().await?;
        Ok(self.recover_pending(&history).await?.into_iter().collect())
    }

    async fn deploy(&self, request: &DeployRequest) -> Result<Deployment, ProviderError> {
        let mut sets = Vec::new();
        for (service, image) in &request.images {
            let path = self.settings.tag_paths.get(service).ok_or_else(|| {
                invalid(format!(
                    "service `{service}` has no image tag path in [targets.helm] image_tag_paths"
                ))
            })?;
            let tag = image
                .tag()
                .or(image.digest())
                .ok_or_else(|| invalid(format!("`{image}` has neither tag nor digest")))?;
            sets.push((path.clone(), tag.to_owned()));
        }
        // `recover` normally ran first (as its own step of the run); a release that became
        // pending since is recovered here too.
        let history = self.history_entries().await?;
        if let Some(note) = self.recover_pending(&history).await? {
            tracing::warn!("{note}");
        }
        let history = self.history_entries().await?;
        let next = history.last().map_or(1, |e| e.revision + 1);
        let upgrade = Upgrade {
            release: &self.settings.release,
            chart: &self.settings.chart,
            chart_version: self.settings.chart_version.as_deref(),
            namespace: &self.settings.namespace,
            values_files: &self.settings.values_files,
            set_strings: &sets,
            values: self.settings.values,
            timeout: self.upgrade_timeout(),
            rollback_on_failure: self.settings.rollback_on_failure,
        };
        self.start(upgrade_args(self.major, &upgrade), next).await;
        Ok(Deployment {
            revision: RevisionId(next.to_string()),
            request: request.clone(),
        })
    }

    async fn wait<'a>(
        &'a self,
        deployment: &'a Deployment,
        deadline: Instant,
        progress: &'a (dyn ProgressSink + 'a),
        cancel: &'a CancellationToken,
    ) -> Result<Verdict, ProviderError> {
        match self
            .await_helm(deployment, deadline, progress, cancel)
            .await?
        {
            Some(verdict) => Ok(verdict),
            None => {
                self.verify_rollout(deployment, deadline, progress, cancel)
                    .await
            }
        }
    }

    /// With `[targets.helm] rollout`: the release is staged behind the Rollout's preview
    /// Service (see the `argo` module).
    fn can_stage(&self) -> bool {
        self.settings.rollout.is_some() && self.kube.is_some()
    }

    /// With a canary Rollout (read when the provider was made), traffic moves by its
    /// `setWeight` steps.
    fn can_split(&self) -> bool {
        self.can_stage() && self.rollout_canary
    }

    async fn stage<'a>(
        &'a self,
        request: &'a DeployRequest,
        deadline: Instant,
        progress: &'a (dyn ProgressSink + 'a),
        cancel: &'a CancellationToken,
    ) -> Result<StageOutcome, ProviderError> {
        self.stage_rollout(request, deadline, progress, cancel)
            .await
    }

    async fn shift<'a>(&'a self, staged: &'a Deployment, percent: u8) -> Result<u8, ProviderError> {
        self.promote_rollout(staged, percent).await
    }

    async fn abort<'a>(&'a self, staged: &'a Deployment) -> Result<(), ProviderError> {
        self.abort_rollout(staged).await
    }

    async fn promote<'a>(&'a self, staged: &'a Deployment) -> Result<(), ProviderError> {
        self.finish_rollout(staged).await
    }

    async fn history(&self) -> Result<Vec<Revision>, ProviderError> {
        let entries = self.history_entries().await?;
        let mut revisions = Vec::new();
        for entry in entries.iter().rev() {
            let images = self.images(Some(entry.revision)).await.unwrap_or_default();
            revisions.push(Revision {
                id: RevisionId(entry.revision.to_string()),
                images,
                status: to_status(&entry.status),
                created_at: SystemTime::UNIX_EPOCH,
                description: entry.description.clone(),
            });
        }
        Ok(revisions)
    }

    async fn rollback(&self, to: &RevisionId) -> Result<Deployment, ProviderError> {
        let target: u64 =
            to.0.parse()
                .map_err(|_| ProviderError::not_found(format!("revision `{to}`")))?;
        let history = self.history_entries().await?;
        let entry = history
            .iter()
            .find(|e| e.revision == target)
            .ok_or_else(|| {
                ProviderError::not_found(format!(
                    "revision {target} of release {}",
                    self.settings.release
                ))
            })?;
        if !matches!(
            entry.status,
            ReleaseStatus::Deployed | ReleaseStatus::Superseded
        ) {
            return Err(invalid(format!(
                "revision {target} is {:?}; roll back to a deployed or superseded one",
                entry.status
            )));
        }
        let images = self.images(Some(target)).await?;
        let next = history.last().map_or(1, |e| e.revision + 1);
        self.start(
            rollback_args(
                &self.settings.release,
                &self.settings.namespace,
                target,
                self.helm_timeout(),
            ),
            next,
        )
        .await;
        Ok(Deployment {
            revision: RevisionId(next.to_string()),
            request: DeployRequest {
                images,
                description: format!("rollback to revision {target}"),
            },
        })
    }

    async fn diagnostics(&self, deployment: &Deployment) -> Result<Vec<String>, ProviderError> {
        Ok(self
            .failures
            .lock()
            .await
            .get(&deployment.revision.0)
            .cloned()
            .unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_names_follow_helm_rules() {
        assert!(valid_release("provenance"));
        assert!(valid_release("api-2"));
        assert!(!valid_release("Provenance"));
        assert!(!valid_release("-api"));
        assert!(!valid_release(&"a".repeat(54)));
        assert!(!valid_release("api_v2"));
    }

    #[test]
    fn values_are_read_at_dotted_paths() {
        let v = serde_json::json!({"api": {"image": {"tag": "3f2c1a9"}}, "worker": {"image": {"tag": 42}}});
        assert_eq!(value_at(&v, "api.image.tag").unwrap(), "3f2c1a9");
        assert_eq!(value_at(&v, "worker.image.tag").unwrap(), 42);
        assert!(value_at(&v, "api.image.repo").is_none());
    }
}

/// The README's examples, compiled (and run) as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
