//! Build errors: each names the Dockerfile, the line and the instruction at fault.

use std::path::PathBuf;

use crate::context::ContextError;
use crate::copy::CopyError;
use crate::users::UserError;

/// Why a build failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The Dockerfile could not be read.
    #[error("{}", path.display())]
    ReadDockerfile {
        /// The Dockerfile.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The Dockerfile does not parse or resolve (`file:line:col: INSTRUCTION: message`).
    #[error("{file}:{error}")]
    Dockerfile {
        /// The Dockerfile, as given.
        file: String,
        /// The parser's error (`LINE:COL: INSTRUCTION: message`): a position that continues the
        /// file name, so part of this message rather than a `source()`.
        error: strata_dockerfile::Error,
    },
    /// The build context is unusable.
    #[error(transparent)]
    Context(#[from] ContextError),
    /// One instruction failed.
    #[error("{file}:{line}: {instruction}")]
    Step {
        /// The Dockerfile, as given.
        file: String,
        /// The instruction's first line.
        line: usize,
        /// The instruction's keyword and arguments, shortened.
        instruction: String,
        /// What went wrong.
        source: Box<StepError>,
    },
    /// The store failed outside any step (writing the final image, tagging).
    #[error(transparent)]
    Store(#[from] strata_oci::Error),
    /// Invalid options.
    #[error("invalid build options: {0}")]
    Options(String),
    /// The build was cancelled (Ctrl-C, SIGTERM).
    #[error("build interrupted")]
    Interrupted,
}

/// What went wrong in one instruction.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StepError {
    /// The base image is not in the store.
    #[error("image {0} is not in the store (build, import or pull it first)")]
    BaseNotFound(String),
    /// COPY/ADD planning failed.
    #[error(transparent)]
    Copy(#[from] CopyError),
    /// `--chown`, USER or WORKDIR named an unknown user or group.
    #[error(transparent)]
    User(#[from] UserError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] strata_oci::Error),
    /// A context error.
    #[error(transparent)]
    Context(#[from] ContextError),
    /// A file operation failed.
    #[error("{}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// An ADDed archive could not be extracted (hostile or broken).
    #[error("{}: cannot extract archive", path.display())]
    Extract {
        /// The archive.
        path: PathBuf,
        /// Why.
        source: strata_oci::Error,
    },
    /// A build secret cannot be read.
    #[error(transparent)]
    Secret(#[from] crate::secret::SecretError),
    /// `--chmod` is not an octal mode.
    #[error("invalid --chmod {0:?}: expected an octal mode such as 0755")]
    BadChmod(String),
    /// ADD of a URL failed.
    #[error("downloading {url}: {reason}")]
    Download {
        /// The URL.
        url: String,
        /// What failed.
        reason: String,
    },
    /// ADD `--checksum` does not match the downloaded content.
    #[error("checksum mismatch for {url}: expected {expected}, got {actual}")]
    Checksum {
        /// The URL.
        url: String,
        /// `--checksum`.
        expected: String,
        /// What the content hashes to.
        actual: String,
    },
    /// A feature this builder does not have.
    #[error("{0}")]
    Unsupported(String),
    /// A RUN step cannot run (the message is the whole story: no underlying error).
    #[error("{0}")]
    Run(String),
    /// The sandbox failed: the command could not start, failed, or its changes could not be read.
    #[error(transparent)]
    Sandbox(#[from] strata_sandbox::SandboxError),
    /// A sandbox operation on something named failed (`USER app`, `snapshot of layer ...`).
    #[error("{what}")]
    SandboxAt {
        /// What was being done.
        what: String,
        /// The sandbox's error.
        #[source]
        source: strata_sandbox::SandboxError,
    },
    /// The build was cancelled during this step.
    #[error("interrupted")]
    Interrupted,
    /// A stage or image referenced by `--from` is unknown.
    #[error("--from={0}: no such stage or image")]
    UnknownFrom(String),
}
