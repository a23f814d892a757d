//! Deployments that follow the chain: a `deploy.toml` names the image each deployment follows, and
//! [`Deployer::reconcile`] brings what runs to where it should be.
//!
//! The key decision: reconciling is level-triggered. Each pass resolves the desired digest and
//! compares it with the running one ([`decide::decide`], a pure function over the state), so a
//! lost, late or repeated notification changes nothing, and a restarted `strata watch` finds the
//! rollout already done. Deployments run by digest, never by a mutable tag. A rollout starts the
//! new container on a private port, waits for its health check, then switches the deployment's
//! front listener ([`proxy`]) to it and stops the old one with its stop signal and grace period; a
//! failed check leaves the old one serving and marks the digest bad until a newer one appears.
//! Holds, approvals, refusals and every rollout go into the state ([`state`]) and the events log.
//! The container engine is behind the [`target::Target`] trait; [`target::Podman`] is the local one.
//! Targets that run elsewhere (`gitops`: a commit in a manifest repository; `kubernetes`: a server-side apply) are behind
//! [`handoff::Handoff`], under the same decision and the same records.

#![deny(missing_docs)]

pub mod actor;
pub mod config;
pub mod decide;
pub mod error;
pub mod gitops;
pub mod handoff;
pub mod health;
pub mod kubernetes;
pub mod proxy;
pub mod prune;
pub mod reconcile;
pub mod state;
pub mod target;
pub mod yamledit;

pub use actor::Actor;
pub use config::{DeployFile, Deployment, ImageSource, Trigger};
pub use decide::{Action, Observed, decide};
pub use error::DeployError;
pub use prune::{Orphan, Pruned};
pub use reconcile::{Deployer, Outcome, RollbackTo, Status};
pub use state::{DeploymentState, StateDir};
pub use target::{Podman, Target};
