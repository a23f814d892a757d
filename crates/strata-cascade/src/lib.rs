//! Cascade builds: `strata build` rebuilds exactly what a change affects, in order, in parallel,
//! and records every build in the events log.
//!
//! The key decision: staleness is a hash. An image's [`BuildInputs`] (Dockerfile bytes, context tree
//! after `.dockerignore`, build args, the manifest digest of every parent, the builder's format
//! version) hash to its build key, stored as a manifest annotation. [`build_chain`] visits the
//! selected images in build order; each one is rebuilt only when its key differs from the stored
//! image's, recomputed after its parents finished, so a parent that rebuilt to the same digest
//! stops the cascade there. Independent images build in parallel; a failure stops only its
//! descendants. [`StoreStatus`] gives `strata plan` and `strata graph` the same answers.

#![deny(missing_docs)]

pub mod cascade;
pub mod error;
mod gate;
pub mod inputs;
pub mod pull;
pub mod refs;
pub mod sandbox;
pub mod schedule;
mod sign;
pub mod status;
pub mod trigger;
pub mod upstream;
mod vendor;

pub use cascade::{
    CascadeEvent, CascadeOptions, CascadeSink, ImageReport, Outcome, Summary, build_chain, select,
};
pub use error::{CascadeError, ImageError};
pub use inputs::{BuildInputs, InputsResolver};
pub use sandbox::BuilderSandbox;
pub use sign::trust_config;
pub use status::StoreStatus;
pub use upstream::{LockMode, Upstreams};
