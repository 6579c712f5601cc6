//! The alert state machine of one target, a pure function of its state and the latest check:
//!
//! ```text
//!            fail (streak < open_after)            pass
//! healthy ──────────────────────────▶ failing ──────────▶ healthy   (a blip: nobody paged)
//!    │                                   │ fail (streak = open_after)
//!    │ fail, open_after = 1              ▼
//!    └─────────────────────────────▶ alerting ◀─────────┐  open the alert (issue, notifications)
//!                                        │ pass          │ fail: still failing
//!                                        ▼               │
//!                                    recovering ─────────┘
//!                                        │ pass (streak = resolve_after)
//!                                        ▼
//!                                     healthy                resolve the alert (comment, close)
//! ```
//!
//! While `alerting`, every failure is [`Action::StillFailing`]; the caller decides whether a
//! comment is due (at most one per period).

pub use shipgate_core::AlertState;

/// How many results in a row change the state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    /// Consecutive failures that open an alert (at least 1).
    pub open_after: u32,
    /// Consecutive passes that resolve it (at least 1).
    pub resolve_after: u32,
}

/// What the caller must do after a transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Open the alert.
    Open,
    /// The alert is open and the target failed again.
    StillFailing,
    /// Resolve the alert.
    Resolve,
}

/// The result of one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// The new state.
    pub state: AlertState,
    /// The new streak (see the ledger's `streak`).
    pub streak: u32,
    /// What to do, if anything.
    pub action: Option<Action>,
}

/// One check result applied to (`state`, `streak`).
pub fn step(state: AlertState, streak: u32, passed: bool, thresholds: Thresholds) -> Step {
    let open_after = thresholds.open_after.max(1);
    let resolve_after = thresholds.resolve_after.max(1);
    let to = |state, streak, action| Step {
        state,
        streak,
        action,
    };
    match (state, passed) {
        (AlertState::Healthy, true) => to(AlertState::Healthy, 0, None),
        (AlertState::Failing, true) => to(AlertState::Healthy, 0, None),
        (AlertState::Healthy | AlertState::Failing, false) => {
            let failures = if state == AlertState::Failing {
                streak.saturating_add(1)
            } else {
                1
            };
            if failures >= open_after {
                to(AlertState::Alerting, failures, Some(Action::Open))
            } else {
                to(AlertState::Failing, failures, None)
            }
        }
        (AlertState::Alerting, false) => to(
            AlertState::Alerting,
            streak.saturating_add(1),
            Some(Action::StillFailing),
        ),
        (AlertState::Recovering, false) => to(AlertState::Alerting, 1, Some(Action::StillFailing)),
        (AlertState::Alerting | AlertState::Recovering, true) => {
            let passes = if state == AlertState::Recovering {
                streak.saturating_add(1)
            } else {
                1
            };
            if passes >= resolve_after {
                to(AlertState::Healthy, 0, Some(Action::Resolve))
            } else {
                to(AlertState::Recovering, passes, None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Thresholds = Thresholds {
        open_after: 3,
        resolve_after: 2,
    };

    fn walk(results: &[bool], thresholds: Thresholds) -> Vec<(AlertState, Option<Action>)> {
        let (mut state, mut streak) = (AlertState::Healthy, 0);
        results
            .iter()
            .map(|passed| {
                let s = step(state, streak, *passed, thresholds);
                (state, streak) = (s.state, s.streak);
                (s.state, s.action)
            })
            .collect()
    }

    #[test]
    fn a_blip_pages_nobody() {
        use AlertState::*;
        assert_eq!(
            walk(&[false, false, true, false], T),
            vec![
                (Failing, None),
                (Failing, None),
                (Healthy, None),
                (Failing, None)
            ]
        );
    }

    #[test]
    fn the_whole_lifecycle_opens_once_and_resolves_once() {
        use Action::*;
        use AlertState::*;
        assert_eq!(
            walk(
                &[false, false, false, false, true, false, true, true, true],
                T
            ),
            vec![
                (Failing, None),
                (Failing, None),
                (Alerting, Some(Open)),
                (Alerting, Some(StillFailing)),
                (Recovering, None),
                (Alerting, Some(StillFailing)),
                (Recovering, None),
                (Healthy, Some(Resolve)),
                (Healthy, None),
            ]
        );
    }

    #[test]
    fn thresholds_of_one_act_on_the_first_result() {
        use Action::*;
        use AlertState::*;
        let one = Thresholds {
            open_after: 1,
            resolve_after: 1,
        };
        assert_eq!(
            walk(&[false, true], one),
            vec![(Alerting, Some(Open)), (Healthy, Some(Resolve))]
        );
    }

    #[test]
    fn states_round_trip_through_their_names() {
        for &state in AlertState::ALL {
            assert_eq!(state.as_str().parse::<AlertState>(), Ok(state));
        }
        assert!("paging".parse::<AlertState>().is_err());
    }
}
