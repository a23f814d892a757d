//! Build one OCI image from a Dockerfile, natively and daemonless.

pub mod config;
pub mod context;
pub mod copy;
pub mod dockerignore;
pub mod fsindex;
pub mod scoped;
pub mod users;
