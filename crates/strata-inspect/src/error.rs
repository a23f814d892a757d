//! The errors of strata-inspect: each names the image, blob or reference at fault.

/// Why an inspection failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InspectError {
    /// The store could not be read (missing blob, bad digest, I/O).
    #[error(transparent)]
    Store(#[from] strata_oci::Error),
    /// An image's manifest or config could not be read from the store.
    #[error("image {image}")]
    Image {
        /// The image (its tag or digest).
        image: String,
        /// The store's error.
        source: strata_oci::Error,
    },
    /// A manifest or config blob is not the JSON it should be.
    #[error("{what}")]
    Json {
        /// Which blob (e.g. `config sha256:… of image localhost/acme/corebuild:latest`).
        what: String,
        /// The parser's error.
        source: serde_json::Error,
    },
    /// The attestations attached to an image could not be read.
    #[error("provenance of {digest}: {message}")]
    Provenance {
        /// The image's manifest digest.
        digest: String,
        /// What failed.
        message: String,
    },
    /// No image in the store answers to a reference.
    #[error("no image {reference} in the store{hint}")]
    NotFound {
        /// The reference as given.
        reference: String,
        /// A hint: what the store does hold, or an empty string.
        hint: String,
    },
    /// `NAME@N` matches images of more than one repository.
    #[error("{reference} is ambiguous: it matches {}", candidates.join(", "))]
    Ambiguous {
        /// The reference as given.
        reference: String,
        /// The full references it matches.
        candidates: Vec<String>,
    },
    /// An image is malformed (e.g. its config lists a different number of layers than its
    /// manifest).
    #[error("image {image}: {reason}")]
    Invalid {
        /// The image.
        image: String,
        /// What is wrong.
        reason: String,
    },
}

/// The result type of this crate.
pub type Result<T> = std::result::Result<T, InspectError>;
