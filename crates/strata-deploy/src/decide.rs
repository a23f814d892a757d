//! The reconcile decision as a pure function: desired digest, state and what the target reports →
//! the next action. Level-triggered: it compares what should run with what runs, never "an event
//! happened", so a repeated or late call decides the same.

use serde::Serialize;

use crate::config::Trigger;
use crate::state::DeploymentState;

/// What the target reports about the deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observed {
    /// Whether the container the state names as running is running.
    pub running_alive: bool,
}

/// What to do next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Action {
    /// Nothing: the running digest is where it should be.
    UpToDate {
        /// The digest.
        digest: String,
    },
    /// Nothing: a hold pins the running digest.
    Held {
        /// The held digest.
        digest: String,
        /// The newer digest it keeps out, if any.
        #[serde(skip_serializing_if = "Option::is_none")]
        keeping_out: Option<String>,
    },
    /// Nothing: the desired digest failed its health check before.
    KnownBad {
        /// The bad digest.
        digest: String,
    },
    /// The desired digest waits for approval (manual trigger).
    AwaitApproval {
        /// The digest.
        digest: String,
    },
    /// Roll this digest out (after the policy check).
    Deploy {
        /// The digest.
        digest: String,
        /// `deploy` (a new digest), `rollback` (back to the last healthy one), `restore` (the
        /// container was gone), `hold` (the held digest's container was gone).
        why: &'static str,
    },
}

/// The next action for a deployment whose image resolves to `desired`.
///
/// ```
/// use strata_deploy::state::Hold;
/// use strata_deploy::{Action, DeploymentState, Observed, Trigger, decide};
///
/// let alive = Observed { running_alive: true };
/// // Nothing runs yet: roll the desired digest out.
/// let mut state = DeploymentState::default();
/// assert_eq!(
///     decide(Trigger::Auto, &state, "sha256:aa", alive),
///     Action::Deploy { digest: "sha256:aa".into(), why: "deploy" }
/// );
/// // Under a manual trigger the same digest waits for `strata deploy approve`.
/// assert_eq!(
///     decide(Trigger::Manual, &state, "sha256:aa", alive),
///     Action::AwaitApproval { digest: "sha256:aa".into() }
/// );
/// // A hold pins what runs: a newer digest is kept out, and deciding again decides the same.
/// state.hold = Some(Hold {
///     digest: "sha256:aa".into(),
///     by: "development".into(),
///     since: "2026-12-06T00:00:00Z".into(),
///     reason: "hold".into(),
/// });
/// state.running = Some(strata_deploy::state::Running {
///     digest: "sha256:aa".into(),
///     container: "web-1".into(),
///     since: "2026-12-06T00:00:00Z".into(),
///     healthy: true,
///     ports: vec![],
/// });
/// for _ in 0..2 {
///     assert_eq!(
///         decide(Trigger::Auto, &state, "sha256:bb", alive),
///         Action::Held { digest: "sha256:aa".into(), keeping_out: Some("sha256:bb".into()) }
///     );
/// }
/// ```
pub fn decide(
    trigger: Trigger,
    state: &DeploymentState,
    desired: &str,
    observed: Observed,
) -> Action {
    let running = state.running.as_ref().filter(|_| observed.running_alive);
    if let Some(hold) = &state.hold {
        return match running {
            Some(r) if r.digest == hold.digest => Action::Held {
                digest: hold.digest.clone(),
                keeping_out: (desired != hold.digest).then(|| desired.to_string()),
            },
            _ => Action::Deploy {
                digest: hold.digest.clone(),
                why: "hold",
            },
        };
    }
    if let Some(r) = running
        && r.digest == desired
    {
        return Action::UpToDate {
            digest: desired.to_string(),
        };
    }
    if state.bad.contains(desired) {
        return match (running, &state.last_healthy) {
            (None, Some(good)) if !state.bad.contains(good) => Action::Deploy {
                digest: good.clone(),
                why: "rollback",
            },
            _ => Action::KnownBad {
                digest: desired.to_string(),
            },
        };
    }
    if trigger == Trigger::Manual && state.approved.as_deref() != Some(desired) {
        // A manual deployment whose container vanished comes back at the digest it ran.
        if running.is_none()
            && let Some(r) = &state.running
        {
            return Action::Deploy {
                digest: r.digest.clone(),
                why: "restore",
            };
        }
        return Action::AwaitApproval {
            digest: desired.to_string(),
        };
    }
    Action::Deploy {
        digest: desired.to_string(),
        why: if state.running.as_ref().is_some_and(|r| r.digest == desired) {
            "restore"
        } else {
            "deploy"
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{Hold, Running};

    fn running(digest: &str) -> DeploymentState {
        DeploymentState {
            running: Some(Running {
                digest: digest.into(),
                container: "c".into(),
                since: String::new(),
                healthy: true,
                ports: vec![],
            }),
            last_healthy: Some(digest.into()),
            ..Default::default()
        }
    }

    const ALIVE: Observed = Observed {
        running_alive: true,
    };
    const GONE: Observed = Observed {
        running_alive: false,
    };

    #[test]
    fn first_digest_deploys_and_the_same_digest_is_up_to_date() {
        let empty = DeploymentState::default();
        assert_eq!(
            decide(Trigger::Auto, &empty, "a", GONE),
            Action::Deploy {
                digest: "a".into(),
                why: "deploy"
            }
        );
        assert_eq!(
            decide(Trigger::Auto, &running("a"), "a", ALIVE),
            Action::UpToDate { digest: "a".into() }
        );
        assert_eq!(
            decide(Trigger::Auto, &running("a"), "a", GONE),
            Action::Deploy {
                digest: "a".into(),
                why: "restore"
            }
        );
    }

    #[test]
    fn a_bad_digest_is_not_retried_until_a_newer_one_appears() {
        let mut s = running("a");
        s.bad.insert("b".into());
        assert_eq!(
            decide(Trigger::Auto, &s, "b", ALIVE),
            Action::KnownBad { digest: "b".into() }
        );
        assert_eq!(
            decide(Trigger::Auto, &s, "c", ALIVE),
            Action::Deploy {
                digest: "c".into(),
                why: "deploy"
            }
        );
        // the container died meanwhile: back to the last healthy one, not the bad one
        assert_eq!(
            decide(Trigger::Auto, &s, "b", GONE),
            Action::Deploy {
                digest: "a".into(),
                why: "rollback"
            }
        );
    }

    #[test]
    fn a_hold_pins_through_any_number_of_new_digests() {
        let mut s = running("a");
        s.hold = Some(Hold {
            digest: "a".into(),
            by: "ops".into(),
            since: String::new(),
            reason: "hold".into(),
        });
        for n in 0..100 {
            let new = format!("d{n}");
            assert_eq!(
                decide(Trigger::Auto, &s, &new, ALIVE),
                Action::Held {
                    digest: "a".into(),
                    keeping_out: Some(new.clone())
                }
            );
        }
        assert_eq!(
            decide(Trigger::Auto, &s, "z", GONE),
            Action::Deploy {
                digest: "a".into(),
                why: "hold"
            }
        );
    }

    #[test]
    fn manual_waits_for_approval_of_that_digest() {
        let mut s = running("a");
        assert_eq!(
            decide(Trigger::Manual, &s, "b", ALIVE),
            Action::AwaitApproval { digest: "b".into() }
        );
        s.approved = Some("b".into());
        assert_eq!(
            decide(Trigger::Manual, &s, "b", ALIVE),
            Action::Deploy {
                digest: "b".into(),
                why: "deploy"
            }
        );
        // approving b does not let c in
        assert_eq!(
            decide(Trigger::Manual, &s, "c", ALIVE),
            Action::AwaitApproval { digest: "c".into() }
        );
        assert_eq!(
            decide(Trigger::Manual, &s, "c", GONE),
            Action::Deploy {
                digest: "a".into(),
                why: "restore"
            }
        );
    }
}
