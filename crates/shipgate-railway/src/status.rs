//! What each Railway `DeploymentStatus` means for a deploy gate.

/// Where a deployment stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// Not decided yet (`what` says which stage).
    InProgress(&'static str),
    /// Serving: `SUCCESS` with instances running, or `SLEEPING` (serverless, after being
    /// healthy).
    Live,
    /// Stopped by something only a person can clear (`NEEDS_APPROVAL`).
    Blocked(&'static str),
    /// Will not serve: failed, crashed, skipped, removed, or exited.
    Failed(&'static str),
}

/// Classifies a `DeploymentStatus` value (and `deploymentStopped`, which turns `SUCCESS` into
/// "the process exited", a failure for a long-running service). Values this version does not
/// know are in progress, so a new status never reads as success; the deadline ends the wait.
pub fn phase(status: &str, deployment_stopped: bool) -> Phase {
    match status {
        "INITIALIZING" => Phase::InProgress("is initializing"),
        "QUEUED" => Phase::InProgress("is queued"),
        "BUILDING" => Phase::InProgress("is building"),
        "DEPLOYING" => Phase::InProgress("is deploying (waiting for the healthcheck)"),
        "WAITING" => Phase::InProgress("is waiting for CI (GitHub check suites)"),
        "SUCCESS" if deployment_stopped => {
            Phase::Failed("completed: its process exited, so the service is not running")
        }
        "SUCCESS" | "SLEEPING" => Phase::Live,
        "NEEDS_APPROVAL" => Phase::Blocked(
            "needs approval in the Railway dashboard; shipgate never approves deployments",
        ),
        "FAILED" => Phase::Failed("failed (build, deploy or healthcheck)"),
        "CRASHED" => Phase::Failed("crashed after starting"),
        "SKIPPED" => Phase::Failed("was skipped (failed check suites, or nothing to deploy)"),
        "REMOVING" | "REMOVED" => Phase::Failed("was removed (superseded or cancelled)"),
        _ => Phase::InProgress("is in a status this version of shipgate does not know"),
    }
}

/// Whether a deployment in `status` may have been live before it ended (`REMOVED` is what
/// a superseded deployment becomes), so it is history, not a failure.
pub(crate) fn was_live(status: &str) -> bool {
    matches!(status, "REMOVED" | "REMOVING")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_only_counts_while_running() {
        assert_eq!(phase("SUCCESS", false), Phase::Live);
        assert!(matches!(phase("SUCCESS", true), Phase::Failed(_)));
        assert!(matches!(phase("NEEDS_APPROVAL", false), Phase::Blocked(_)));
        assert!(matches!(
            phase("SOMETHING_NEW", false),
            Phase::InProgress(_)
        ));
        assert!(matches!(phase("CRASHED", false), Phase::Failed(_)));
    }
}
