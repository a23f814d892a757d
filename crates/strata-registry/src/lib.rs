//! The strata registry: an OCI distribution server on the strata store.
//!
//! The main type is [`Registry`] (`strata serve`). The client (push, pull, copy) is
//! `strata-remote`, apart from the server as go-containerregistry keeps `remote` apart from
//! `registry`; the server shares its error type ([`RegistryError`], with the spec's error
//! codes) and its manifest media types ([`media`]).
//!
//! The server serves the store the builder writes: a built image is in the registry the moment it
//! is tagged. Repositories map to store tags by reference normalisation (`acme/app:1` is
//! `localhost/acme/app:1` in the store, see [`server::route`]). Uploads stream to temp files in
//! the store and become visible only when their digest checks out. Pushes are allowed by team
//! ownership ([`auth`]), and every push, delete and refusal goes to the events log.

#![deny(missing_docs)]

pub mod auth;
pub mod server;

pub use strata_remote::{error, media};

pub use auth::{AuthConfig, Identity};
pub use error::{ErrorCode, RegistryError, Result};
pub use server::tls::TlsConfig;
pub use server::{Registry, RunningServer, ServerOptions, serve, serve_with};
