//! Build one OCI image from a Dockerfile, natively and daemonless.

pub mod dockerignore;
