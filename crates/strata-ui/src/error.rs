//! What can go wrong serving a page.

use std::path::PathBuf;

/// A page that could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UiError {
    /// The store could not be opened.
    #[error("cannot open the store {}", path.display())]
    Store {
        /// The store's directory.
        path: PathBuf,
        /// The store's error.
        source: strata_oci::Error,
    },
    /// The chain file could not be read.
    #[error("cannot read the chain")]
    Chain(#[from] strata_chain::ChainError),
    /// The events log could not be read.
    #[error("cannot read the events log")]
    Events(#[from] strata_events::EventError),
    /// The store's images could not be read.
    #[error("cannot read {what}")]
    Inspect {
        /// What was being read.
        what: String,
        /// strata-inspect's error.
        source: strata_inspect::InspectError,
    },
    /// A deployment's state could not be read.
    #[error("cannot read the deployments")]
    Deploy(#[from] strata_deploy::DeployError),
    /// The images' statuses could not be worked out.
    #[error("cannot work out the images' statuses")]
    Status(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// What the URL names does not exist.
    #[error("no {what}")]
    NotFound {
        /// What was asked for.
        what: String,
    },
    /// The request itself is wrong (a bad parameter).
    #[error("{0}")]
    BadRequest(String),
}

/// The result of reading a page's data.
pub type Result<T, E = UiError> = std::result::Result<T, E>;

/// An error and its causes, `: `-joined (one line for a page or a log).
pub fn report(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
