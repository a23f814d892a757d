//! What command tests need from a builder, which this crate does not link: run a command in a
//! stored image with its changes thrown away, and commit setup commands as a new untagged image.
//!
//! The caller gives an implementation in [`crate::RunOptions::sandbox`] (strata's is
//! `strata_cascade::BuilderSandbox`, over `strata_build::exec` and `strata_build::builder::build`),
//! so reading and checking images needs no builder, and file and metadata tests run without one.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use strata_oci::Store;

/// A command to run in an image, with the image's entrypoint cleared.
#[derive(Debug, Clone)]
pub struct ExecRequest<'a> {
    /// The store holding the image.
    pub store: &'a Store,
    /// The image, pinned (`repo@sha256:...`).
    pub image: &'a str,
    /// The command and its arguments.
    pub argv: Vec<String>,
    /// `user[:group]`; None: the image's USER.
    pub user: Option<String>,
    /// Extra environment, after the image's.
    pub env: &'a [(String, String)],
    /// Where layer snapshots live (shared with builds).
    pub work_dir: &'a Path,
    /// Set to stop: the command is killed.
    pub cancel: Arc<AtomicBool>,
}

/// A Dockerfile to build into an untagged image.
#[derive(Debug, Clone)]
pub struct BuildRequest<'a> {
    /// The store to build in.
    pub store: &'a Store,
    /// The build context directory.
    pub context: &'a Path,
    /// The Dockerfile.
    pub dockerfile: &'a Path,
    /// Build arguments (a later pair overrides an earlier one of the same name).
    pub build_args: &'a [(String, String)],
    /// `FROM` names that stand for a stored image: name → pinned reference.
    pub base_overrides: &'a [(String, String)],
    /// Set to stop the build.
    pub cancel: Arc<AtomicBool>,
}

/// What a command printed and how it ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Captured {
    /// The exit code (128 + signal when killed).
    pub code: i32,
    /// Everything written to standard output.
    pub stdout: Vec<u8>,
    /// Everything written to standard error.
    pub stderr: Vec<u8>,
}

/// Why the sandbox could not run a command or build an image.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The run was cancelled.
    #[error("interrupted")]
    Interrupted,
    /// The command could not start, or the build failed.
    #[error(transparent)]
    Failed(Box<dyn std::error::Error + Send + Sync>),
}

/// Runs command tests' commands and commits their setup commands.
pub trait Sandbox: Send + Sync {
    /// Run `request.argv` in `request.image` (entrypoint cleared), capturing its output; the
    /// image's filesystem changes are thrown away.
    fn exec(&self, request: &ExecRequest<'_>) -> Result<Captured, SandboxError>;

    /// Build `request.dockerfile` with uncompressed layers, untagged; returns the manifest digest.
    fn build(&self, request: &BuildRequest<'_>) -> Result<String, SandboxError>;
}
