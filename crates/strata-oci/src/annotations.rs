//! The manifest annotation keys strata writes and reads: the OCI ones (from oci-spec) and strata's
//! own `dev.strata.*` keys, in one place so the builder, the cascade and the views agree.

pub use oci_spec::image::{
    ANNOTATION_BASE_IMAGE_DIGEST, ANNOTATION_BASE_IMAGE_NAME, ANNOTATION_CREATED,
    ANNOTATION_REF_NAME,
};

/// The build key: a hash of everything the image's content depends on.
pub const ANNOTATION_BUILD_KEY: &str = "dev.strata.build.key";
/// The build inputs as JSON (to tell why an image is stale).
pub const ANNOTATION_BUILD_INPUTS: &str = "dev.strata.build.inputs";
/// The chain image (`acme/corebuild`).
pub const ANNOTATION_CHAIN_IMAGE: &str = "dev.strata.chain.image";
/// The owning team.
pub const ANNOTATION_OWNER: &str = "dev.strata.chain.owner";
/// The sha256 of the tarball an image was imported from.
pub const ANNOTATION_SOURCE_DIGEST: &str = "dev.strata.source.digest";
