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

/// Why one image of a cascade failed. The image's [`crate::Outcome::Failed`] message is this
/// error with its causes ([`strata_oci::report`]); each message holds only its own text.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImageError {
    /// The image is for another platform than this machine's.
    #[error(
        "platform {platform}: strata builds for this machine's platform (linux/{host}) only; \
         building for another needs CPU emulation, which strata does not do"
    )]
    Platform {
        /// The image's platform.
        platform: String,
        /// This machine's architecture.
        host: String,
    },
    /// Pulling an external base failed (the Dockerfile line and the reference, then why).
    #[error(transparent)]
    Pull(#[from] strata_remote::BasePullError),
    /// The image's status, inputs or build number could not be read.
    #[error(transparent)]
    Cascade(#[from] CascadeError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] strata_oci::Error),
    /// The build (or the rootfs import) failed.
    #[error(transparent)]
    Build(Box<strata_build::error::BuildError>),
    /// A pinned bought image could not be fetched.
    #[error("bought image {reference}: pulling it failed")]
    PullPinned {
        /// The pinned reference.
        reference: String,
        /// The registry client's error.
        source: Box<strata_remote::RegistryError>,
    },
    /// A bought image's vendor signature is missing, bad or by another key: it is not imported.
    #[error("bought image {reference} refused: vendor key {}", key.display())]
    VendorSignature {
        /// The pinned reference.
        reference: String,
        /// The key file, as strata.toml names it.
        key: std::path::PathBuf,
        /// Why the signature does not vouch for the image.
        source: strata_attest::vendor::Refusal,
    },
    /// A bought image's vendor signature could not be checked (gpgv is missing or failed).
    #[error("bought image {reference}: checking its vendor signature failed")]
    VendorCheck {
        /// The pinned reference.
        reference: String,
        /// Why gpgv could not be asked.
        source: strata_attest::vendor::GpgvError,
    },
    /// A bought image's vendor key file cannot be used.
    #[error("bought image {reference}: vendor key")]
    VendorKey {
        /// The pinned reference.
        reference: String,
        /// Why.
        source: strata_attest::vendor::VendorKeyError,
    },
    /// A bought image's vendor signature could not be fetched.
    #[error("bought image {reference}: fetching its vendor signature failed")]
    VendorFetch {
        /// The pinned reference.
        reference: String,
        /// The registry client's error.
        source: Box<strata_remote::RegistryError>,
    },
    /// A bought image's vendor signature could not be kept in the store.
    #[error("bought image {reference}: keeping its vendor signature in the store failed")]
    VendorKeep {
        /// The pinned reference.
        reference: String,
        /// The store's error.
        source: Box<strata_attest::AttestError>,
    },
    /// The registry client could not be set up.
    #[error("bought image {reference}")]
    Client {
        /// The pinned reference.
        reference: String,
        /// Why.
        source: Box<strata_remote::RegistryError>,
    },
    /// The image's tier tests could not run.
    #[error("tier tests of {image} could not run")]
    TierTests {
        /// The chain image.
        image: String,
        /// Why.
        source: Box<strata_tiertest::TierTestError>,
    },
    /// A tier test failed: the failing test, the owner, and where `:latest` stays.
    #[error("{0}")]
    TierTestFailed(String),
    /// The owning team's signing key could not be read.
    #[error("signing key of team {team}")]
    SigningKey {
        /// The team.
        team: String,
        /// Why.
        source: Box<strata_attest::KeyError>,
    },
    /// The chain requires signatures and the team has no key.
    #[error(
        "the chain requires signatures and team {team} has no signing key (--key {team}=FILE or {variable})"
    )]
    KeyRequired {
        /// The team.
        team: String,
        /// The environment variable that could hold the key.
        variable: String,
    },
    /// The rootfs tarball could not be hashed for the provenance.
    #[error("provenance of {image}")]
    Provenance {
        /// The chain image.
        image: String,
        /// Why.
        source: Box<strata_build::context::ContextError>,
    },
    /// The provenance was signed but could not be attached.
    #[error("signing")]
    Sign(#[source] Box<strata_attest::AttestError>),
}

impl From<strata_build::error::BuildError> for ImageError {
    fn from(error: strata_build::error::BuildError) -> Self {
        ImageError::Build(Box::new(error))
    }
}
