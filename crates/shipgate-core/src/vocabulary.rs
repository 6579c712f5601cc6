//! The words shipgate records: how a run ended, how a step went, what a deployment was and
//! what its target said, where a monitored target stands, what a notification is about.
//!
//! Every crate that writes or reads these words (the pipeline, the ledger's SQL, the delivery
//! report, the monitor, the notifier) uses these enums and their [`as_str`](Outcome::as_str)
//! words, never a literal of its own: the words are stored in ledgers that outlive a release,
//! so each enum's tests pin every word, and a variant renamed or added fails them.

use std::fmt;

use serde::Serialize;

use crate::exit_code;

/// A word that is not in a vocabulary (read from a ledger written by another version, say).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {vocabulary} `{word}`")]
pub struct UnknownWord {
    /// The vocabulary (`Outcome`, `AlertState`, …).
    pub vocabulary: &'static str,
    /// The word (at most 40 characters of it).
    pub word: String,
}

/// Defines a vocabulary enum: its variants with their stored words, `ALL`, `as_str`, `parse`,
/// `Display`, and `Serialize` as the word.
macro_rules! vocabulary {
    (
        $(#[$meta:meta])*
        pub enum $name:ident { $( $(#[$vmeta:meta])* $variant:ident => $word:literal ),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant ),+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stored word.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $word),+
                }
            }

            /// The variant whose stored word is `word`, if any.
            pub fn parse(word: &str) -> Option<$name> {
                $name::ALL.iter().copied().find(|v| v.as_str() == word)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = UnknownWord;

            fn from_str(word: &str) -> Result<$name, UnknownWord> {
                $name::parse(word).ok_or_else(|| UnknownWord {
                    vocabulary: stringify!($name),
                    word: crate::excerpt(word, 40).into_owned(),
                })
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }
    };
}

vocabulary! {
    /// How a run ended. Exactly one per run; each is one exit code. New outcomes may come
    /// (match with a wildcard arm); the other vocabularies are closed state sets that their
    /// owners match exhaustively.
    #[non_exhaustive]
    pub enum Outcome {
        /// Live and (when gated) passed the smoke gate. Exit 0.
        Succeeded => "succeeded",
        /// Stopped before anything live changed (or a new release never became healthy and the
        /// previous one still serves). Exit 1.
        Failed => "failed",
        /// The new release failed; the previous one is back and passed its smoke. Exit 3.
        RolledBack => "rolled_back",
        /// The new release failed and so did the rollback: production may be broken. Exit 4.
        RollbackFailed => "rollback_failed",
        /// The gate failed and rollback is disabled: the unhealthy release is live. Exit 5.
        Unhealthy => "unhealthy",
        /// Interrupted (SIGINT/SIGTERM). Exit 130.
        Aborted => "aborted",
        /// The deploy lock was not obtained before `[ledger] lock_timeout`; nothing changed.
        /// Exit 6.
        LockTimeout => "lock_timeout",
        /// A newer deploy of the same app and environment queued behind this one or finished
        /// while it waited, or the release is older than the live one; nothing changed. Exit 7.
        Superseded => "superseded",
    }
}

// Not derived: the vocabulary macro's derive list is shared with enums that have no default.
#[allow(clippy::derivable_impls)]
impl Default for Outcome {
    /// `failed`: a run that ended without deciding otherwise changed nothing it can vouch for.
    fn default() -> Self {
        Outcome::Failed
    }
}

impl Outcome {
    /// The documented exit code.
    pub const fn exit_code(self) -> u8 {
        match self {
            Outcome::Succeeded => exit_code::OK,
            Outcome::Failed => exit_code::CHECK_FAILED,
            Outcome::RolledBack => exit_code::ROLLED_BACK,
            Outcome::RollbackFailed => exit_code::ROLLBACK_FAILED,
            Outcome::Unhealthy => exit_code::UNHEALTHY,
            Outcome::Aborted => exit_code::ABORTED,
            Outcome::LockTimeout => exit_code::LOCK_TIMEOUT,
            Outcome::Superseded => exit_code::SUPERSEDED,
        }
    }

    /// A deploy attempt in the delivery figures: every outcome but a lock never obtained
    /// and a superseded run (nothing was attempted).
    pub const fn is_attempt(self) -> bool {
        !matches!(self, Outcome::LockTimeout | Outcome::Superseded)
    }

    /// A change failure (DORA): the release failed once live, whatever became of it.
    pub const fn is_change_failure(self) -> bool {
        matches!(
            self,
            Outcome::RolledBack | Outcome::RollbackFailed | Outcome::Unhealthy
        )
    }

    /// A change failure still to be restored when the run ended (a later run that leaves a
    /// good release live restores it).
    pub const fn awaits_restore(self) -> bool {
        matches!(self, Outcome::RollbackFailed | Outcome::Unhealthy)
    }

    /// The run ended with a verified-good release live (restoring earlier failures).
    pub const fn leaves_good_release_live(self) -> bool {
        matches!(self, Outcome::Succeeded | Outcome::RolledBack)
    }
}

vocabulary! {
    /// How one step of a run went.
    pub enum StepResult {
        /// It did what it should.
        Ok => "ok",
        /// It did not.
        Failed => "failed",
    }
}

impl StepResult {
    /// `Ok` when `passed`.
    pub const fn from_passed(passed: bool) -> StepResult {
        if passed {
            StepResult::Ok
        } else {
            StepResult::Failed
        }
    }
}

vocabulary! {
    /// What a recorded deployment was.
    pub enum DeploymentKind {
        /// The run's release put live.
        Deploy => "deploy",
        /// A rollback to an earlier revision.
        Rollback => "rollback",
    }
}

vocabulary! {
    /// What a target said of a deployment once it was awaited.
    pub enum DeploymentVerdict {
        /// Every service up and healthy.
        Healthy => "healthy",
        /// It failed.
        Failed => "failed",
        /// The deadline passed first.
        TimedOut => "timed_out",
        /// The run was interrupted while it was awaited.
        Cancelled => "cancelled",
    }
}

vocabulary! {
    /// Where a monitored target stands.
    pub enum AlertState {
        /// Passing.
        Healthy => "healthy",
        /// Failing, not yet for `open_after` checks in a row: no alert.
        Failing => "failing",
        /// Failed `open_after` times in a row: the alert is open.
        Alerting => "alerting",
        /// Passing again, not yet `resolve_after` times in a row: the alert stays open.
        Recovering => "recovering",
    }
}

impl AlertState {
    /// An alert is open in this state.
    pub const fn alert_open(self) -> bool {
        matches!(self, AlertState::Alerting | AlertState::Recovering)
    }
}

vocabulary! {
    /// What a notification is about. New kinds of notification may come.
    #[non_exhaustive]
    pub enum NotificationEvent {
        /// A deploy run ended (its outcome is an [`Outcome`] word).
        Deploy => "deploy",
        /// A monitored target's alert opened or resolved (its outcome is a [`MonitorNotice`]).
        Monitor => "monitor",
    }
}

vocabulary! {
    /// What a monitor notification says happened.
    pub enum MonitorNotice {
        /// The alert opened.
        Alerting => "alerting",
        /// The alert resolved.
        Recovered => "recovered",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Each test lists every variant with its word in an exhaustive match: a new variant does
    // not compile here until its word is pinned, and a changed word fails. Stored words are
    // forever: ledgers written by earlier releases hold them.

    #[test]
    fn every_outcome_has_its_stored_word_and_exit_code() {
        for &outcome in Outcome::ALL {
            let (word, code) = match outcome {
                Outcome::Succeeded => ("succeeded", 0),
                Outcome::Failed => ("failed", 1),
                Outcome::RolledBack => ("rolled_back", 3),
                Outcome::RollbackFailed => ("rollback_failed", 4),
                Outcome::Unhealthy => ("unhealthy", 5),
                Outcome::Aborted => ("aborted", 130),
                Outcome::LockTimeout => ("lock_timeout", 6),
                Outcome::Superseded => ("superseded", 7),
            };
            assert_eq!((outcome.as_str(), outcome.exit_code()), (word, code));
            assert_eq!(Outcome::parse(word), Some(outcome));
        }
        assert_eq!(Outcome::ALL.len(), 8);
        assert_eq!(Outcome::parse("success"), None);
    }

    #[test]
    fn the_delivery_classes_of_outcomes_are_pinned() {
        let class = |o: Outcome| {
            (
                o.is_attempt(),
                o.is_change_failure(),
                o.awaits_restore(),
                o.leaves_good_release_live(),
            )
        };
        for &outcome in Outcome::ALL {
            let expected = match outcome {
                Outcome::Succeeded => (true, false, false, true),
                Outcome::Failed | Outcome::Aborted => (true, false, false, false),
                Outcome::RolledBack => (true, true, false, true),
                Outcome::RollbackFailed | Outcome::Unhealthy => (true, true, true, false),
                Outcome::LockTimeout | Outcome::Superseded => (false, false, false, false),
            };
            assert_eq!(class(outcome), expected, "{outcome}");
        }
    }

    #[test]
    fn every_other_vocabulary_word_is_pinned() {
        for &v in StepResult::ALL {
            let word = match v {
                StepResult::Ok => "ok",
                StepResult::Failed => "failed",
            };
            assert_eq!((v.as_str(), StepResult::parse(word)), (word, Some(v)));
        }
        for &v in DeploymentKind::ALL {
            let word = match v {
                DeploymentKind::Deploy => "deploy",
                DeploymentKind::Rollback => "rollback",
            };
            assert_eq!((v.as_str(), DeploymentKind::parse(word)), (word, Some(v)));
        }
        for &v in DeploymentVerdict::ALL {
            let word = match v {
                DeploymentVerdict::Healthy => "healthy",
                DeploymentVerdict::Failed => "failed",
                DeploymentVerdict::TimedOut => "timed_out",
                DeploymentVerdict::Cancelled => "cancelled",
            };
            assert_eq!(
                (v.as_str(), DeploymentVerdict::parse(word)),
                (word, Some(v))
            );
        }
        for &v in AlertState::ALL {
            let (word, open) = match v {
                AlertState::Healthy => ("healthy", false),
                AlertState::Failing => ("failing", false),
                AlertState::Alerting => ("alerting", true),
                AlertState::Recovering => ("recovering", true),
            };
            assert_eq!((v.as_str(), v.alert_open()), (word, open));
            assert_eq!(AlertState::parse(word), Some(v));
        }
        for &v in NotificationEvent::ALL {
            let word = match v {
                NotificationEvent::Deploy => "deploy",
                NotificationEvent::Monitor => "monitor",
            };
            assert_eq!(
                (v.as_str(), NotificationEvent::parse(word)),
                (word, Some(v))
            );
        }
        for &v in MonitorNotice::ALL {
            let word = match v {
                MonitorNotice::Alerting => "alerting",
                MonitorNotice::Recovered => "recovered",
            };
            assert_eq!((v.as_str(), MonitorNotice::parse(word)), (word, Some(v)));
        }
        assert_eq!(
            serde_json::to_string(&Outcome::RolledBack).ok().as_deref(),
            Some("\"rolled_back\"")
        );
    }
}
