//! Build status of each image, and where it comes from.
//!
//! The status comes from a [`StatusSource`]: the build issue implements one over the store and the
//! events database. Until something has been built, [`NothingBuilt`] is the truth: every image is
//! [`Status::NeverBuilt`].

use std::fmt;

use serde::Serialize;

use crate::chain::Chain;

/// Where an image stands with respect to its inputs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum Status {
    /// The stored image was built from the current inputs: nothing to do.
    UpToDate,
    /// The stored image was built from other inputs; the reasons say which changed.
    Stale {
        /// What changed since the stored image was built.
        reasons: Vec<StaleReason>,
    },
    /// No image has been built yet.
    NeverBuilt,
    /// The last build failed.
    Failed {
        /// The build's error, one line.
        message: String,
    },
}

/// Why a stored image no longer matches its inputs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum StaleReason {
    /// The Dockerfile's bytes changed.
    DockerfileChanged,
    /// A file of the build context changed (after .dockerignore).
    ContextChanged,
    /// The build args changed.
    ArgsChanged,
    /// A parent (FROM or COPY --from image) now has another digest.
    ParentChanged {
        /// The parent's name (a chain image) or reference (an external one).
        parent: String,
    },
    /// A bought image's source (rootfs tarball or pinned image) changed.
    SourceChanged,
    /// The builder's format version changed.
    BuilderChanged,
}

impl Status {
    /// True when the image needs no build.
    pub fn is_up_to_date(&self) -> bool {
        matches!(self, Status::UpToDate)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Status::UpToDate => f.write_str("up to date"),
            Status::NeverBuilt => f.write_str("never built"),
            Status::Failed { message } => write!(f, "failed: {message}"),
            Status::Stale { reasons } => {
                f.write_str("stale (")?;
                for (i, r) in reasons.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{r}")?;
                }
                f.write_str(")")
            }
        }
    }
}

impl fmt::Display for StaleReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StaleReason::DockerfileChanged => f.write_str("Dockerfile changed"),
            StaleReason::ContextChanged => f.write_str("context changed"),
            StaleReason::ArgsChanged => f.write_str("build args changed"),
            StaleReason::ParentChanged { parent } => write!(f, "parent {parent} changed"),
            StaleReason::SourceChanged => f.write_str("source changed"),
            StaleReason::BuilderChanged => f.write_str("builder changed"),
        }
    }
}

/// Something that knows each image's build status (the store, the events database).
pub trait StatusSource {
    /// Why a status could not be determined.
    type Error: std::error::Error + Send + Sync + 'static;

    /// The status of image `image` (an index into `chain.file.images`).
    fn status(&self, chain: &Chain, image: usize) -> Result<Status, Self::Error>;
}

/// The status source for a chain nothing has been built from: every image is never built.
#[derive(Debug, Clone, Copy, Default)]
pub struct NothingBuilt;

impl StatusSource for NothingBuilt {
    type Error = std::convert::Infallible;

    fn status(&self, _chain: &Chain, _image: usize) -> Result<Status, Self::Error> {
        Ok(Status::NeverBuilt)
    }
}

/// The status of every image of a chain, by image index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statuses(pub Vec<Status>);

impl Statuses {
    /// The status of image `i`.
    pub fn get(&self, i: usize) -> &Status {
        &self.0[i]
    }
}
