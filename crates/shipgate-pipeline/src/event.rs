//! What a run reports while it works: typed events, each with the line a terminal shows.

use std::time::Duration;

/// Progress of a run, in the order it happens. Match the variants you care about and show
/// the rest with their [`Display`](std::fmt::Display) line; new variants may be added.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum PipelineEvent {
    /// The run starts: what goes where.
    Started {
        /// The run's id.
        run_id: String,
        /// The app.
        app: String,
        /// The tag deployed.
        image_tag: String,
        /// The environment.
        environment: String,
        /// The targets, in order.
        targets: Vec<String>,
    },
    /// Another run holds the deploy lock; this one waits (reported every 10 s at most).
    LockWaiting {
        /// The app.
        app: String,
        /// The environment.
        environment: String,
        /// The run holding the lock.
        holder_run: String,
        /// Who started it.
        holder_owner: String,
        /// Where it runs.
        holder_host: String,
        /// How long this run has waited.
        waited: Duration,
    },
    /// Something the lock found on the way (a stale lock taken over, a superseded waiter).
    LockNote {
        /// What happened.
        message: String,
    },
    /// A run that died without finishing was recorded as aborted.
    DeadRunAborted {
        /// That run's id.
        run_id: String,
    },
    /// The CI gate's progress.
    CiGate {
        /// What it waits for or found.
        message: String,
    },
    /// The migration starts.
    Migrating {
        /// The command or Job run.
        what: String,
    },
    /// A target recovered from an earlier run's leftovers (a pending Helm release).
    Recovered {
        /// The target.
        target: String,
        /// What was done.
        note: String,
    },
    /// A target gets the release.
    Deploying {
        /// The target.
        target: String,
        /// The images, `service=image` listed.
        images: String,
    },
    /// Waiting for a target's verdict (reported when the reason changes, or every 10 s).
    Waiting {
        /// The target.
        target: String,
        /// What is awaited (`waiting`, `waiting for the rollback`).
        label: String,
        /// Time left before the target's timeout.
        remaining: Duration,
        /// What the platform is waiting for, in its words.
        waiting_for: String,
    },
    /// A target's release is live and healthy.
    Healthy {
        /// The target.
        target: String,
        /// The revision live.
        revision: String,
    },
    /// A target's release failed; what it runs now was read back.
    TargetFailed {
        /// The failure and what was read back.
        message: String,
    },
    /// The smoke gate starts.
    Smoke {
        /// How many checks.
        checks: usize,
        /// Against which base URL.
        base_url: String,
    },
    /// A target rolls back.
    RollingBack {
        /// The target.
        target: String,
        /// The revision it goes back to.
        revision: String,
    },
    /// A target rolled back; what it runs now was read back.
    RolledBack {
        /// The target.
        target: String,
        /// The revision it went back to.
        revision: String,
        /// What it runs, as read back.
        read_back: String,
    },
    /// A staged release (blue-green) took all new user traffic; the previous release still
    /// runs until the post-traffic gate passes.
    Switched {
        /// The target.
        target: String,
        /// The revision now serving.
        revision: String,
    },
    /// A canary step: a share of new user traffic moved to the staged release.
    Shifted {
        /// The target.
        target: String,
        /// The share of traffic on the staged release, in percent.
        percent: u8,
    },
    /// A canary step runs before its analysis (sent when it starts, then about every 10 s).
    Observing {
        /// The share of traffic on the staged release, in percent.
        percent: u8,
        /// Time left before the analysis.
        remaining: Duration,
    },
    /// A canary step's analysis.
    Analysed {
        /// The step's result.
        step: crate::CanaryStep,
    },
    /// A staged release is being aborted: traffic goes back to the previous release.
    Aborting {
        /// The target.
        target: String,
    },
    /// Traffic is back on the previous release (never stopped); what runs was read back.
    Aborted {
        /// The target.
        target: String,
        /// What it runs, as read back.
        read_back: String,
    },
    /// A problem that does not change the outcome (a ledger write, a report to GitHub).
    Warning {
        /// What went wrong.
        message: String,
    },
}

impl std::fmt::Display for PipelineEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PipelineEvent::Started {
                run_id,
                app,
                image_tag,
                environment,
                targets,
            } => write!(
                f,
                "run {run_id}: {app} {image_tag} → {environment} ({})",
                targets.join(", ")
            ),
            PipelineEvent::LockWaiting {
                app,
                environment,
                holder_run,
                holder_owner,
                holder_host,
                waited,
            } => write!(
                f,
                "waiting for the deploy lock of {app}/{environment}: held by run {holder_run} ({holder_owner} on {holder_host}) for {} s",
                waited.as_secs()
            ),
            PipelineEvent::LockNote { message } | PipelineEvent::TargetFailed { message } => {
                f.write_str(message)
            }
            PipelineEvent::DeadRunAborted { run_id } => {
                write!(
                    f,
                    "run {run_id} died without finishing; recorded as aborted"
                )
            }
            PipelineEvent::CiGate { message } => write!(f, "ci-gate: {message}"),
            PipelineEvent::Migrating { what } => write!(f, "migrate: running {what}"),
            PipelineEvent::Recovered { target, note } => write!(f, "{target}: {note}"),
            PipelineEvent::Deploying { target, images } => {
                write!(f, "{target}: deploying {images}")
            }
            PipelineEvent::Waiting {
                target,
                label,
                remaining,
                waiting_for,
            } => write!(
                f,
                "{target}: {label} ({} s left): {waiting_for}",
                remaining.as_secs()
            ),
            PipelineEvent::Healthy { target, revision } => {
                write!(f, "{target}: revision {revision} is live and healthy")
            }
            PipelineEvent::Smoke { checks, base_url } => {
                write!(f, "smoke: {checks} check(s) against {base_url}")
            }
            PipelineEvent::RollingBack { target, revision } => {
                write!(f, "{target}: rolling back to revision {revision}")
            }
            PipelineEvent::RolledBack {
                target,
                revision,
                read_back,
            } => write!(
                f,
                "{target}: rolled back to revision {revision}; read back: {read_back}"
            ),
            PipelineEvent::Switched { target, revision } => write!(
                f,
                "{target}: all new traffic on revision {revision}; the previous release still runs"
            ),
            PipelineEvent::Shifted { target, percent } => write!(
                f,
                "{target}: {percent}% of new user traffic on the staged release"
            ),
            PipelineEvent::Observing { percent, remaining } => write!(
                f,
                "canary at {percent}%: analysis in {}s",
                remaining.as_secs()
            ),
            PipelineEvent::Analysed { step } => {
                write!(f, "canary at {}%: {}", step.percent, step.describe())
            }
            PipelineEvent::Aborting { target } => write!(
                f,
                "{target}: aborting: traffic back to the previous release (it never stopped)"
            ),
            PipelineEvent::Aborted { target, read_back } => write!(
                f,
                "{target}: traffic is back on the previous release; read back: {read_back}"
            ),
            PipelineEvent::Warning { message } => write!(f, "warning: {message}"),
        }
    }
}

/// Where a run's events go.
pub type Events<'a> = &'a (dyn Fn(&PipelineEvent) + Send + Sync);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_event_reads_as_one_line() {
        let events = [
            PipelineEvent::Started {
                run_id: "r1".into(),
                app: "shop".into(),
                image_tag: "v1".into(),
                environment: "production".into(),
                targets: vec!["helm".into(), "fly:api".into()],
            },
            PipelineEvent::Waiting {
                target: "helm".into(),
                label: "waiting".into(),
                remaining: Duration::from_secs(19),
                waiting_for: "1 of 2 pods ready".into(),
            },
            PipelineEvent::Warning {
                message: "ledger busy".into(),
            },
        ];
        let lines: Vec<String> = events.iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            [
                "run r1: shop v1 → production (helm, fly:api)",
                "helm: waiting (19 s left): 1 of 2 pods ready",
                "warning: ledger busy",
            ]
        );
    }
}
