//! What to rebuild, in which order, and why: the planner.
//!
//! A plan starts from seeds (the images named as changed, or else every image whose status is not
//! up to date) and adds everything downstream of them. Steps come in build order (parents first,
//! ties broken by name) and are grouped in waves that can build in parallel.

use std::fmt;

use serde::Serialize;

use crate::chain::Chain;
use crate::error::ChainError;
use crate::status::{StaleReason, Status, Statuses};

/// The rebuild plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// The images named as changed (`--changed`), empty when the plan follows the statuses.
    pub changed: Vec<String>,
    /// What to build, in build order.
    pub steps: Vec<Step>,
    /// Image names per wave: an image's parents in the plan are all in earlier waves.
    pub waves: Vec<Vec<String>>,
    /// The teams owning a planned image, in order of first step.
    pub teams: Vec<String>,
}

/// One image to build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    /// The image.
    pub image: String,
    /// Its owning team.
    pub owner: String,
    /// Its tier label.
    pub tier: Option<String>,
    /// Its wave, 1-based.
    pub wave: usize,
    /// Why it is built.
    pub reasons: Vec<Reason>,
}

/// Why a step is in the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Reason {
    /// Named as changed.
    Changed,
    /// Rebuilt on request (`strata build --force`), whatever its status.
    Forced,
    /// Never built.
    NeverBuilt,
    /// Built from inputs that changed since.
    Stale {
        /// What changed.
        reasons: Vec<StaleReason>,
    },
    /// Its last build failed.
    Failed {
        /// The last build's error.
        message: String,
    },
    /// A chain parent is rebuilt by this plan.
    ParentRebuilt {
        /// The parent's name.
        parent: String,
    },
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Changed => f.write_str("changed"),
            Reason::Forced => f.write_str("forced"),
            Reason::NeverBuilt => f.write_str("never built"),
            Reason::Stale { reasons } => {
                let parts: Vec<String> = reasons.iter().map(ToString::to_string).collect();
                write!(f, "stale ({})", parts.join(", "))
            }
            Reason::Failed { message } => write!(f, "last build failed: {message}"),
            Reason::ParentRebuilt { parent } => write!(f, "parent {parent} rebuilt"),
        }
    }
}

impl Plan {
    /// True when nothing needs building.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }
}

/// Plan the rebuild of `chain`: from `changed` when it is not empty, else from `statuses`.
pub fn plan(chain: &Chain, changed: &[String], statuses: &Statuses) -> Result<Plan, ChainError> {
    let n = chain.file.images.len();
    let mut own: Vec<Vec<Reason>> = vec![Vec::new(); n];
    if changed.is_empty() {
        for (i, reasons) in own.iter_mut().enumerate() {
            reasons.extend(status_reason(statuses.get(i)));
        }
    } else {
        for name in changed {
            own[index_of(chain, name)?].push(Reason::Changed);
        }
    }
    Ok(plan_from(chain, changed, own))
}

/// Plan the rebuild of `chain` from `statuses`, with the `forced` images rebuilt whatever their
/// status (`strata build --force`): what `strata build --dry-run` shows.
pub fn plan_forced(
    chain: &Chain,
    forced: &[String],
    statuses: &Statuses,
) -> Result<Plan, ChainError> {
    let n = chain.file.images.len();
    let mut own: Vec<Vec<Reason>> = vec![Vec::new(); n];
    for name in forced {
        own[index_of(chain, name)?].push(Reason::Forced);
    }
    for (i, reasons) in own.iter_mut().enumerate() {
        reasons.extend(status_reason(statuses.get(i)));
    }
    Ok(plan_from(chain, &[], own))
}

/// Why an image's own status puts it in a plan (None: up to date).
fn status_reason(status: &Status) -> Option<Reason> {
    match status {
        Status::UpToDate => None,
        Status::NeverBuilt => Some(Reason::NeverBuilt),
        Status::Stale { reasons } => Some(Reason::Stale {
            reasons: reasons.clone(),
        }),
        Status::Failed { message } => Some(Reason::Failed {
            message: message.clone(),
        }),
    }
}

fn index_of(chain: &Chain, name: &str) -> Result<usize, ChainError> {
    chain.index(name).ok_or_else(|| ChainError::UnknownImage {
        name: name.to_string(),
        known: {
            let mut k: Vec<String> = chain.file.images.iter().map(|i| i.name.clone()).collect();
            k.sort();
            k
        },
    })
}

/// The plan from each image's own reasons: those with one, and everything downstream of them.
fn plan_from(chain: &Chain, changed: &[String], own: Vec<Vec<Reason>>) -> Plan {
    let graph = chain.graph();
    let n = chain.file.images.len();
    let seeds: Vec<usize> = (0..n).filter(|&i| !own[i].is_empty()).collect();
    let planned = graph.downstream(&seeds);
    let mut in_plan = vec![false; n];
    for &i in &planned {
        in_plan[i] = true;
    }
    let waves = graph.waves(&planned);
    let mut wave_of = vec![0; n];
    for (w, members) in waves.iter().enumerate() {
        for &i in members {
            wave_of[i] = w + 1;
        }
    }
    let mut teams: Vec<String> = Vec::new();
    let steps = planned
        .iter()
        .map(|&i| {
            let image = &chain.file.images[i];
            if !teams.contains(&image.owner) {
                teams.push(image.owner.clone());
            }
            let reasons = if own[i].is_empty() {
                graph
                    .parents(i)
                    .into_iter()
                    .filter(|&p| in_plan[p])
                    .map(|p| Reason::ParentRebuilt {
                        parent: graph.name(p).to_string(),
                    })
                    .collect()
            } else {
                own[i].clone()
            };
            Step {
                image: image.name.clone(),
                owner: image.owner.clone(),
                tier: image.tier.clone(),
                wave: wave_of[i],
                reasons,
            }
        })
        .collect();
    Plan {
        changed: changed.to_vec(),
        steps,
        waves: waves
            .into_iter()
            .map(|w| w.into_iter().map(|i| graph.name(i).to_string()).collect())
            .collect(),
        teams,
    }
}
