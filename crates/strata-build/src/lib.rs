//! Build one OCI image from a Dockerfile, natively and daemonless.

#![deny(missing_docs)]

pub mod add;
pub mod builder;
mod cache_key;
pub mod context;
pub mod copy;
pub mod dockerignore;
pub mod error;
pub mod exec;
pub mod import;
pub mod layer;
pub mod metadata;
pub mod prune;
mod run;
pub mod secret;
pub mod snapshot;
mod squash;
pub mod timings;
pub mod users;
