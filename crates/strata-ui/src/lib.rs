//! strata's read-only web views, served by `strata serve` beside the registry at `/ui/`: the
//! chain as a server-drawn SVG graph coloured by team and status, each image's page (tags and
//! builds with a diff between two, the layer tree with the team and instruction of each layer,
//! the Dockerfile, tier-test results, the chain of custody as `strata verify` sees it, where it
//! runs), the timeline of the events log grouped into one story per cascade, the deployments,
//! and a live feed of new events as Server-Sent Events whose ids are the log's row ids.
//!
//! One job: render. The data comes from the lower crates ([`data`]), the pages are plain data
//! ([`model`]) rendered as HTML with maud ([`pages`], [`svg`]) or serialized as their JSON twin
//! (`?format=json`), and the routes ([`router`]) check the registry's read rule first
//! ([`strata_registry::Registry::authorize_read`]). Nothing here writes anything.

#![deny(missing_docs)]

pub mod data;
pub mod error;
pub mod model;
pub mod pages;
mod server;
pub mod svg;

pub use data::UiConfig;
pub use error::{Result, UiError};
pub use server::{MAX_FEEDS, MAX_RENDERS, router};
