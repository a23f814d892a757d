//! The supply chain: `strata.toml`, the image graph derived from the Dockerfiles' FROM lines, and
//! the planner that says what a change rebuilds, in which order, and why.
//!
//! The main type is [`Chain`]: [`Chain::load`] reads the chain file and every Dockerfile, checks
//! them (every error is one line naming the file, line and field at fault) and builds the
//! [`ImageGraph`]. The key decision: graph algorithms work on plain data ([`Use`]: image, reference,
//! instruction, line), so they are tested and benchmarked without files, and the Dockerfile parser
//! is only asked for each file's references. [`render`] turns a chain or a plan into text, DOT,
//! Mermaid or JSON; [`status`] holds the build status model that the build issue fills in.

#![deny(missing_docs)]

pub mod chain;
mod dockerfile;
pub mod error;
pub mod git;
pub mod graph;
pub mod lock;
pub mod manifest;
pub mod names;
pub mod plan;
pub mod render;
pub mod status;

pub use chain::Chain;
pub use error::{ChainError, LineIndex, Location};
pub use git::{GitCache, GitCheckouts, GitContext, GitError, GitMode};
pub use graph::{ImageGraph, Use, UseKind};
pub use lock::{GitLocked, GitMove, LOCK_FILE, Lock, LockError, Locked, Move};
pub use manifest::{Build, ChainFile, Image, Lookaside, SignatureKind, SignedBy, Team};
pub use plan::{Plan, Reason, Step, plan_forced};
pub use status::{NothingBuilt, StaleReason, Status, StatusSource, Statuses};
