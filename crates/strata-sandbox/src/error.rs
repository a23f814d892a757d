//! The sandbox's error type.

use std::io;
use std::path::PathBuf;

use crate::run::ExitStatus;

/// Everything that can go wrong while planning, running or diffing a sandboxed command.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SandboxError {
    /// The spec is inconsistent (empty command, relative path, bad mount target, ...).
    #[error("invalid sandbox spec: {0}")]
    InvalidSpec(String),
    /// A file of the root filesystem or of the host could not be read or written.
    #[error("{path}")]
    Io {
        /// The file at fault.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// A `user[:group]` spec could not be resolved through the image's passwd and group files.
    #[error("{0}")]
    User(String),
    /// Neither overlayfs nor a private copy can be isolated here (no mount namespaces).
    #[error("no isolation available: {0}")]
    Unsupported(String),
    /// Setting the sandbox up failed before the command started (mount, pivot_root, chdir, exec).
    #[error("sandbox setup for `{command}` failed: {message}")]
    Setup {
        /// The command, shell-quoted.
        command: String,
        /// What failed, as reported from inside the sandbox.
        message: String,
    },
    /// overlayfs could not be mounted for this root (e.g. upper and work on different
    /// filesystems, or an upper on overlayfs); [`crate::Strategy::Auto`] then falls back to a
    /// private copy.
    #[error("cannot mount the overlay root for `{command}`: {message}")]
    RootMount {
        /// The command, shell-quoted.
        command: String,
        /// What the kernel said.
        message: String,
    },
    /// The command ran and failed.
    #[error("`{command}` {status}{}", tail_suffix(.tail))]
    CommandFailed {
        /// The command, shell-quoted.
        command: String,
        /// How it ended.
        status: ExitStatus,
        /// Its last lines of output.
        tail: Vec<String>,
    },
    /// The run reached its pids limit: a fork failed (a fork bomb, or a limit too low).
    #[error(
        "`{command}` reached its limit of {limit} processes (a fork failed; raise it with \
         --pids-limit if the step needs more){}",
        tail_suffix(.tail)
    )]
    PidsLimit {
        /// The command, shell-quoted.
        command: String,
        /// The limit.
        limit: u32,
        /// Its last lines of output.
        tail: Vec<String>,
    },
    /// The default network cannot be set up: `slirp4netns` is missing.
    #[error(
        "the default network needs slirp4netns (Debian package slirp4netns); or use --network none|host"
    )]
    NoSlirp,
    /// `slirp4netns` failed to set up the run's network.
    #[error("setting up the network with slirp4netns failed: {message}")]
    Network {
        /// What slirp4netns said.
        message: String,
    },
    /// The caller cancelled the run; every process and mount of the sandbox is gone.
    #[error("`{command}` was cancelled")]
    Cancelled {
        /// The command, shell-quoted.
        command: String,
    },
    /// A system call of the supervising process failed.
    #[error("{context}")]
    Sys {
        /// What was being done.
        context: String,
        /// The errno.
        source: nix::Error,
    },
}

fn tail_suffix(tail: &[String]) -> String {
    if tail.is_empty() {
        String::new()
    } else {
        format!("; last output:\n{}", tail.join("\n"))
    }
}

impl SandboxError {
    /// An I/O error on `path`.
    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        SandboxError::Io {
            path: path.into(),
            source,
        }
    }

    /// A failed system call of the supervisor.
    pub(crate) fn sys(context: impl Into<String>, source: nix::Error) -> Self {
        SandboxError::Sys {
            context: context.into(),
            source,
        }
    }
}
