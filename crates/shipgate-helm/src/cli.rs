//! The helm command line: version detection, version-correct arguments, JSON parsing, stderr
//! classification, and running helm so that it is never left holding a release (SIGTERM,
//! then SIGKILL only after a grace period: helm records a SIGTERMed upgrade as `failed`, a
//! SIGKILLed one stays `pending-upgrade` forever).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde::Deserialize;
use tokio::io::AsyncReadExt;
use tokio_util::sync::CancellationToken;

/// The oldest helm shipgate drives: `--reset-then-reuse-values` arrived in 3.14.
pub const MIN_VERSION: (u32, u32) = (3, 14);

/// How long helm gets to finish after SIGTERM before SIGKILL.
const TERM_GRACE: Duration = Duration::from_secs(15);

/// What went wrong with helm, classified from its stderr (it exits 1 for everything).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HelmError {
    /// The binary is missing or cannot run.
    #[error("cannot run helm ({bin}): {message}")]
    Missing {
        /// The path tried.
        bin: String,
        /// Why.
        message: String,
    },
    /// Older than [`MIN_VERSION`].
    #[error("helm {0} is too old: shipgate needs 3.14 or newer (for --reset-then-reuse-values)")]
    TooOld(String),
    /// Another install/upgrade/rollback holds the release (a `pending-*` revision).
    #[error("the release is locked by another operation (a pending revision): {0}")]
    Pending(String),
    /// The release does not exist.
    #[error("release not found: {0}")]
    NotFound(String),
    /// The cluster cannot be reached.
    #[error("the Kubernetes cluster is unreachable: {0}")]
    Unreachable(String),
    /// `--wait` ran out of time.
    #[error("the rollout did not finish within helm's --timeout: {0}")]
    WaitTimeout(String),
    /// Any other failure, with helm's own words.
    #[error("helm failed: {0}")]
    Failed(String),
    /// Stopped by shipgate (deadline or cancellation) with SIGTERM.
    #[error("helm was stopped: {0}")]
    Stopped(String),
    /// The cluster refused the kubeconfig's credentials (401) or their rights (403). Never
    /// retried: the credential must change.
    #[error(
        "the Kubernetes API refused the kubeconfig's credentials ({0}); check KUBE_CONFIG_DATA / [targets.helm] kubeconfig_path and the identity's RBAC rights"
    )]
    Unauthorized(String),
    /// Killed by a signal from outside shipgate (the OOM killer, a runner shutting down).
    #[error(
        "helm was killed by signal {signal} before it finished; an upgrade or rollback it had started is left `pending-*` and blocks the next one until recovered{detail}"
    )]
    Killed {
        /// The signal's name (`SIGKILL`).
        signal: String,
        /// Whatever helm wrote before, `: …`, or nothing.
        detail: String,
    },
}

/// Classifies helm's stderr of a failed command.
pub fn classify(stderr: &str) -> HelmError {
    let text = stderr
        .lines()
        .filter(|l| !l.contains("has been deprecated"))
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .trim_start_matches("Error: ")
        .to_owned();
    let lower = text.to_ascii_lowercase();
    // client-go words a 401 as "Kubernetes cluster unreachable: the server has asked for the
    // client to provide credentials": an authorisation failure, not an outage.
    if lower.contains("provide credentials")
        || lower.contains("unauthorized")
        || lower.contains("is forbidden")
        || lower.contains("forbidden:")
    {
        HelmError::Unauthorized(text)
    } else if lower.contains("another operation (install/upgrade/rollback) is in progress") {
        HelmError::Pending(text)
    } else if lower.contains("release: not found") || lower.contains("has no deployed releases") {
        HelmError::NotFound(text)
    } else if lower.contains("kubernetes cluster unreachable")
        || lower.contains("could not get server version")
    {
        HelmError::Unreachable(text)
    } else if lower.contains("context deadline exceeded")
        || lower.contains("timed out waiting for the condition")
        || lower.contains("status: inprogress")
    {
        HelmError::WaitTimeout(text)
    } else {
        HelmError::Failed(text)
    }
}

/// A release status (`pkg/release/common/status.go`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReleaseStatus {
    /// Live.
    Deployed,
    /// Replaced by a later revision.
    Superseded,
    /// Failed.
    Failed,
    /// An install in progress (or abandoned).
    PendingInstall,
    /// An upgrade in progress (or abandoned).
    PendingUpgrade,
    /// A rollback in progress (or abandoned).
    PendingRollback,
    /// Uninstalled.
    Uninstalled,
    /// Being uninstalled.
    Uninstalling,
    /// Unknown.
    Unknown,
    /// A value this version of shipgate does not know: never treated as healthy.
    #[serde(other)]
    Other,
}

impl ReleaseStatus {
    /// `pending-install`, `pending-upgrade`, `pending-rollback`.
    pub fn is_pending(&self) -> bool {
        matches!(
            self,
            ReleaseStatus::PendingInstall
                | ReleaseStatus::PendingUpgrade
                | ReleaseStatus::PendingRollback
        )
    }
}

/// One entry of `helm history -o json` (oldest first).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct HistoryEntry {
    /// The revision.
    pub revision: u64,
    /// Its status.
    pub status: ReleaseStatus,
    /// `NAME-VERSION`.
    #[serde(default)]
    pub chart: String,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// RFC 3339; may be absent in Helm 4.
    #[serde(default)]
    pub updated: Option<String>,
}

/// Parses `helm history -o json`.
pub fn parse_history(json: &str) -> Result<Vec<HistoryEntry>, HelmError> {
    serde_json::from_str(json)
        .map_err(|e| HelmError::Failed(format!("unexpected `helm history -o json` output: {e}")))
}

/// Parses `major.minor` from `v3.19.0` / `v4.1.4+g05fa379`.
pub fn parse_version(text: &str) -> Option<(u32, u32)> {
    let text = text.trim().trim_start_matches('v');
    let mut parts = text.split(['.', '+', '-']);
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

/// How previous values are treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Values {
    /// `--reset-then-reuse-values`.
    ResetThenReuse,
    /// `--reuse-values`.
    Reuse,
    /// `--reset-values`.
    Reset,
}

/// What an upgrade sets.
#[derive(Debug, Clone)]
pub struct Upgrade<'a> {
    /// The release.
    pub release: &'a str,
    /// The chart path or reference.
    pub chart: &'a str,
    /// The chart version, for repository charts.
    pub chart_version: Option<&'a str>,
    /// The namespace.
    pub namespace: &'a str,
    /// `-f` files.
    pub values_files: &'a [PathBuf],
    /// `--set-string PATH=VALUE` pairs (image tags are strings: `1e10` must not become a number).
    pub set_strings: &'a [(String, String)],
    /// The previous-values strategy.
    pub values: Values,
    /// Helm's own timeout.
    pub timeout: Duration,
    /// Ask helm to roll back a failed upgrade itself.
    pub rollback_on_failure: bool,
}

/// `--timeout` with a unit (helm rejects a bare number).
fn timeout_arg(d: Duration) -> String {
    format!("{}s", d.as_secs().max(1))
}

/// The `helm upgrade --install` arguments for helm `major` (3 or 4).
pub fn upgrade_args(major: u32, u: &Upgrade<'_>) -> Vec<String> {
    let mut args: Vec<String> = [
        "upgrade",
        "--install",
        u.release,
        u.chart,
        "--namespace",
        u.namespace,
        "--create-namespace",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    if let Some(version) = u.chart_version {
        args.extend(["--version".to_owned(), version.to_owned()]);
    }
    // Bare `--wait` is valid in both: Helm 3's bool, Helm 4's `watcher` (kstatus).
    args.push("--wait".to_owned());
    args.extend(["--timeout".to_owned(), timeout_arg(u.timeout)]);
    args.push(
        match u.values {
            Values::ResetThenReuse => "--reset-then-reuse-values",
            Values::Reuse => "--reuse-values",
            Values::Reset => "--reset-values",
        }
        .to_owned(),
    );
    if u.rollback_on_failure {
        args.push(
            if major >= 4 {
                "--rollback-on-failure"
            } else {
                "--atomic"
            }
            .to_owned(),
        );
    }
    for file in u.values_files {
        args.extend(["-f".to_owned(), file.display().to_string()]);
    }
    for (path, value) in u.set_strings {
        args.extend(["--set-string".to_owned(), format!("{path}={value}")]);
    }
    args.extend(["--output".to_owned(), "json".to_owned()]);
    args
}

/// The `helm rollback` arguments.
pub fn rollback_args(
    release: &str,
    namespace: &str,
    revision: u64,
    timeout: Duration,
) -> Vec<String> {
    vec![
        "rollback".into(),
        release.into(),
        revision.to_string(),
        "--namespace".into(),
        namespace.into(),
        "--wait".into(),
        "--timeout".into(),
        timeout_arg(timeout),
    ]
}

/// A helm command's result.
#[derive(Debug, Clone)]
pub(crate) struct Output {
    /// Exit status 0.
    pub(crate) success: bool,
    /// Standard output.
    pub(crate) stdout: String,
    /// Standard error.
    pub(crate) stderr: String,
    /// The signal that killed helm, if one did.
    pub(crate) signal: Option<i32>,
}

impl Output {
    /// What went wrong, for a failed command: the signal that killed helm, or its stderr
    /// classified.
    pub(crate) fn error(&self) -> HelmError {
        match self.signal {
            Some(signal) => HelmError::Killed {
                signal: nix::sys::signal::Signal::try_from(signal)
                    .map_or_else(|_| format!("{signal}"), |s| s.as_str().to_owned()),
                detail: match self.stderr.trim() {
                    "" => String::new(),
                    text => format!(": {text}"),
                },
            },
            None => classify(&self.stderr),
        }
    }
}

/// Runs helm with `args` and extra environment, stopping it politely on `deadline` or
/// `cancel` (SIGTERM, then SIGKILL after a grace period).
pub(crate) async fn run(
    bin: &Path,
    args: &[String],
    env: &[(String, String)],
    deadline: tokio::time::Instant,
    cancel: &CancellationToken,
) -> Result<Output, HelmError> {
    tracing::debug!(bin = %bin.display(), ?args, "running helm");
    let mut child = tokio::process::Command::new(bin)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(false)
        .spawn()
        .map_err(|e| HelmError::Missing {
            bin: bin.display().to_string(),
            message: e.to_string(),
        })?;
    let pid = child.id();
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let read_out = async {
        let mut buf = Vec::new();
        if let Some(s) = stdout.as_mut() {
            let _ = s.read_to_end(&mut buf).await;
        }
        buf
    };
    let read_err = async {
        let mut buf = Vec::new();
        if let Some(s) = stderr.as_mut() {
            let _ = s.read_to_end(&mut buf).await;
        }
        buf
    };
    let reading = async { tokio::join!(read_out, read_err, child.wait()) };
    tokio::pin!(reading);
    let stop_reason = tokio::select! {
        (out, err, status) = &mut reading => {
            let status = status.map_err(|e| HelmError::Failed(e.to_string()))?;
            return Ok(Output {
                success: status.success(),
                stdout: String::from_utf8_lossy(&out).into_owned(),
                stderr: String::from_utf8_lossy(&err).into_owned(),
                signal: std::os::unix::process::ExitStatusExt::signal(&status),
            });
        }
        () = tokio::time::sleep_until(deadline) => "deadline reached",
        () = cancel.cancelled() => "cancelled",
    };
    // Stop helm the way it can record: SIGTERM, then SIGKILL only if it hangs.
    if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
    let finished = tokio::time::timeout(TERM_GRACE, &mut reading).await;
    let stderr = match finished {
        Ok((_, err, _)) => String::from_utf8_lossy(&err).into_owned(),
        Err(_) => {
            if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            String::from(
                "helm did not stop within the grace period and was killed; the release may be left pending",
            )
        }
    };
    Err(HelmError::Stopped(format!(
        "{stop_reason}; {}",
        stderr.trim()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upgrade(rollback_on_failure: bool) -> Vec<String> {
        let sets = vec![("api.image.tag".to_owned(), "3f2c1a9".to_owned())];
        let files = vec![PathBuf::from("deploy/values-prod.yaml")];
        let u = Upgrade {
            release: "provenance",
            chart: "deploy/helm/provenance-stack",
            chart_version: None,
            namespace: "provenance",
            values_files: &files,
            set_strings: &sets,
            values: Values::ResetThenReuse,
            timeout: Duration::from_secs(300),
            rollback_on_failure,
        };
        upgrade_args(if rollback_on_failure { 3 } else { 4 }, &u)
    }

    #[test]
    fn upgrade_arguments_are_version_correct() {
        assert_eq!(
            upgrade(false).join(" "),
            "upgrade --install provenance deploy/helm/provenance-stack --namespace provenance --create-namespace \
             --wait --timeout 300s --reset-then-reuse-values -f deploy/values-prod.yaml --set-string api.image.tag=3f2c1a9 --output json"
        );
        assert!(upgrade(true).contains(&"--atomic".to_owned()));
        let sets = Vec::new();
        let u = Upgrade {
            release: "r",
            chart: "c",
            chart_version: Some("1.2.3"),
            namespace: "n",
            values_files: &[],
            set_strings: &sets,
            values: Values::Reuse,
            timeout: Duration::from_millis(10),
            rollback_on_failure: true,
        };
        let args = upgrade_args(4, &u);
        assert!(
            args.contains(&"--rollback-on-failure".to_owned())
                && !args.contains(&"--atomic".to_owned())
        );
        assert!(args.windows(2).any(|w| w == ["--timeout", "1s"]));
        assert!(args.windows(2).any(|w| w == ["--version", "1.2.3"]));
    }

    #[test]
    fn stderr_is_classified() {
        assert!(matches!(
            classify(
                "Error: UPGRADE FAILED: another operation (install/upgrade/rollback) is in progress"
            ),
            HelmError::Pending(_)
        ));
        assert!(matches!(
            classify("Error: release: not found"),
            HelmError::NotFound(_)
        ));
        assert!(matches!(
            classify("Error: kubernetes cluster unreachable: dial tcp"),
            HelmError::Unreachable(_)
        ));
        assert!(matches!(
            classify("Error: Kubernetes cluster unreachable: x"),
            HelmError::Unreachable(_)
        ));
        assert!(matches!(
            classify("Error: UPGRADE FAILED: context deadline exceeded"),
            HelmError::WaitTimeout(_)
        ));
        // A 401 reads as "unreachable" in client-go's words; a 403 names the verb.
        assert!(matches!(
            classify(
                "Error: Kubernetes cluster unreachable: the server has asked for the client to provide credentials"
            ),
            HelmError::Unauthorized(_)
        ));
        assert!(matches!(
            classify(
                "Error: UPGRADE FAILED: deployments.apps \"shop\" is forbidden: User \"ci\" cannot patch resource"
            ),
            HelmError::Unauthorized(_)
        ));
        let killed = Output {
            success: false,
            stdout: String::new(),
            stderr: String::new(),
            signal: Some(9),
        };
        assert_eq!(
            killed.error().to_string(),
            "helm was killed by signal SIGKILL before it finished; an upgrade or rollback it had started is left `pending-*` and blocks the next one until recovered"
        );
        let other = classify(
            "Flag --atomic has been deprecated, use --rollback-on-failure instead\nError: chart not found",
        );
        assert_eq!(other, HelmError::Failed("chart not found".into()));
    }

    #[test]
    fn history_and_versions_parse() {
        let json = r#"[{"revision":1,"updated":"2026-01-01T10:00:00Z","status":"superseded","chart":"demo-0.1.0","app_version":"1.0.0","description":"Install complete"},
                       {"revision":2,"status":"pending-upgrade","chart":"demo-0.1.0","app_version":"1.0.0","description":"Preparing upgrade"},
                       {"revision":3,"status":"brand-new-status","chart":"demo-0.1.0","app_version":"1.0.0","description":""}]"#;
        let history = parse_history(json).unwrap();
        assert_eq!(history[0].status, ReleaseStatus::Superseded);
        assert!(history[1].status.is_pending());
        assert_eq!(history[1].updated, None);
        assert_eq!(history[2].status, ReleaseStatus::Other);
        assert!(parse_history("not json").is_err());
        assert_eq!(parse_version("v3.19.0"), Some((3, 19)));
        assert_eq!(parse_version("v4.1.4+g05fa379"), Some((4, 1)));
        assert_eq!(parse_version("garbage"), None);
    }
}
