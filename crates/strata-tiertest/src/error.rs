//! The errors of tier tests: a test file that cannot be used, or an image that cannot be read.

use std::path::PathBuf;

/// Why tests could not run. A test that ran and failed is not an error: it is a failing
/// [`crate::TestResult`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TierTestError {
    /// The test file could not be read.
    #[error("{path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The test file is not a valid structure-test file: `file:line:col: message`.
    #[error("{path}:{line}:{column}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based line (0 when unknown).
        line: u64,
        /// 1-based column (0 when unknown).
        column: u64,
        /// What is wrong.
        message: String,
    },
    /// The image or one of its blobs could not be read from the store.
    #[error("image {image}")]
    Store {
        /// The image reference.
        image: String,
        /// The store's error.
        source: strata_oci::Error,
    },
    /// The image's config or a layer is malformed.
    #[error("image {image}: {message}")]
    Image {
        /// The image reference.
        image: String,
        /// What is wrong.
        message: String,
    },
    /// Writing an archive failed.
    #[error("{path}")]
    Write {
        /// The file being written.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The file has command tests but the run was given no sandbox to run them in.
    #[error("command tests need a sandbox to run in, and none was given")]
    NoSandbox,
    /// The run was interrupted.
    #[error("interrupted")]
    Interrupted,
}

impl TierTestError {
    pub(crate) fn store(image: &str) -> impl FnOnce(strata_oci::Error) -> TierTestError + '_ {
        move |source| TierTestError::Store {
            image: image.to_string(),
            source,
        }
    }
}
