//! Cascade errors.

/// Why a cascade could not run (a failed image is not an error: it is in the summary).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CascadeError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] strata_oci::Error),
    /// The events log failed.
    #[error(transparent)]
    Events(#[from] strata_events::EventError),
    /// The planner failed.
    #[error(transparent)]
    Plan(#[from] strata_chain::ChainError),
    /// An image named on the command line is not in the chain.
    #[error("{0}: no such image in the chain")]
    UnknownImage(String),
    /// A build input could not be read.
    #[error("{image}: {message}")]
    Inputs {
        /// The chain image.
        image: String,
        /// What failed.
        message: String,
    },
    /// Invalid options.
    #[error("{0}")]
    Options(String),
}
