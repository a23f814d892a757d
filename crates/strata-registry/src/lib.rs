//! The strata registry: an OCI distribution server on the strata store, and a registry client.
//!
//! The main types are [`Registry`] (the server: `strata serve`) and [`Client`] (push, pull and
//! copy against any registry: `strata push`, `pull`, `copy`). The key decision, after
//! go-containerregistry: the client is one more source and sink of the store's vocabulary
//! (digests, descriptors, manifests), not a second image model, and both halves share one error
//! type, [`RegistryError`], with the HTTP status, the spec's error code and
//! [`RegistryError::is_temporary`], which drives retries.
//!
//! The server serves the store the builder writes: a built image is in the registry the moment it
//! is tagged. Repositories map to store tags by reference normalisation (`acme/app:1` is
//! `localhost/acme/app:1` in the store, see [`server::route`]). Uploads stream to temp files in
//! the store and become visible only when their digest checks out. Pushes are allowed by team
//! ownership ([`auth`]), and every push, delete and refusal goes to the events log.

#![deny(missing_docs)]

pub mod auth;
pub mod client;
pub mod copy;
pub mod error;
pub mod media;
pub mod server;

pub use auth::{AuthConfig, Identity};
pub use client::{Client, ClientOptions, Credentials, RemoteRef};
pub use copy::{Location, PullPolicy, copy, ensure_base, pull_pinned};
pub use error::{ErrorCode, RegistryError, Result};
pub use server::tls::TlsConfig;
pub use server::{Registry, RunningServer, ServerOptions, serve};
