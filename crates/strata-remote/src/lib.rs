//! The registry client: push, pull and copy images between registries, OCI layout directories
//! and the store, and pull the bases builds name.
//!
//! The main types are [`Client`] (a blocking OCI distribution client: credentials, the
//! bearer-token dance, manifests, chunked and resumable blob uploads, referrers), [`copy()`]
//! (`strata push`, `pull`, `copy`) and [`BasePuller`] (the images FROM lines name, under a
//! [`PullPolicy`]). The key decision, after go-containerregistry's `remote`: the client is one
//! more source and sink of the store's vocabulary (digests, descriptors, manifests), not a
//! second image model, and it lives apart from the server (`strata-registry`, as
//! go-containerregistry's `registry`), so what only pulls (the cascade, `build-image`) links no
//! HTTP server. Errors are one type, [`RegistryError`], with the HTTP status, the spec's error
//! code and [`RegistryError::is_temporary`], which drives retries; the server answers with the
//! same codes. References are parsed by strata's one grammar (`strata_reference`).

#![deny(missing_docs)]

pub mod auth;
pub mod client;
pub mod copy;
pub mod error;
pub mod media;
pub mod pull;

pub use auth::Credentials;
pub use client::{Client, ClientOptions, RemoteRef};
pub use copy::{CopyReport, Location, copy};
pub use error::{ErrorCode, RegistryError, Result};
pub use pull::{BasePullError, BasePuller, PullPolicy, ensure_base, pull_pinned};
