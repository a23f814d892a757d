//! Tier tests: an image's promises, checked right after it is built, with no daemon.
//!
//! A test file is a container-structure-test file (schema 2.0.0: `commandTests`,
//! `fileExistenceTests`, `fileContentTests`, `metadataTest`, `licenseTests`, `globalEnvVars`),
//! read strictly by [`spec::load`] (every error `file:line:col: ...`). [`run()`] checks it against a
//! stored image and returns a [`Report`] that renders as text, container-structure-test's JSON or
//! its JUnit XML.
//!
//! The key decision: file and metadata tests never unpack the image. [`ImageView`] indexes the
//! layers' tar headers (whiteouts applied) and reads a file's bytes from the one layer that holds
//! them; only command tests start a sandbox, through the [`Sandbox`] the caller gives (the
//! builder's, which this crate does not link).

#![deny(missing_docs)]

pub mod checks;
pub mod command;
pub mod error;
pub mod expand;
pub mod image;
pub mod report;
pub mod run;
pub mod sandbox;
pub mod spec;

pub use error::TierTestError;
pub use image::{ImageView, ViewError};
pub use report::{Report, TestKind, TestResult};
pub use run::{RunOptions, run, run_file};
pub use sandbox::{Sandbox, SandboxError};
pub use spec::{TestFile, load, parse};

#[cfg(test)]
mod tests;
