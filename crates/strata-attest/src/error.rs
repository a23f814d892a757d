//! The error types of this crate: keys, envelope verification, and the store.

use std::path::{Path, PathBuf};

use crate::keys::KeyId;

/// A provenance statement is not one strata reads.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProvenanceError {
    /// The statement's predicate is not SLSA provenance v1.
    #[error(
        "predicate type is {found:?}, expected {:?}",
        crate::statement::SLSA_PROVENANCE_V1
    )]
    PredicateType {
        /// The predicate type found.
        found: String,
    },
    /// The predicate does not parse as SLSA provenance.
    #[error("the SLSA provenance predicate is malformed")]
    Malformed(#[source] serde_json::Error),
    /// The provenance has no `internalParameters`.
    #[error("the provenance has no internalParameters")]
    NoInternalParameters,
    /// The `internalParameters` are not strata's.
    #[error("internalParameters are not strata's")]
    NotStrata(#[source] serde_json::Error),
    /// More than one base image is recorded.
    #[error("the provenance records more than one base image")]
    SeveralBases,
    /// The base image has no sha256 digest.
    #[error("the provenance's base image has no sha256 digest")]
    BaseWithoutDigest,
}

/// Reading, writing or generating a key failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// A key file could not be read or written.
    #[error("{}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A key could not be parsed.
    #[error("invalid {what}: {reason}")]
    Parse {
        /// `public key`, `private key`, `encrypted private key`.
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// A key in a file could not be parsed.
    #[error("{}", path.display())]
    InFile {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        inner: Box<KeyError>,
    },
    /// A key in an environment variable could not be parsed.
    #[error("{variable}")]
    InVariable {
        /// The variable.
        variable: String,
        /// The error.
        #[source]
        inner: Box<KeyError>,
    },
    /// The private key is encrypted and no passphrase was given.
    #[error("the private key is encrypted: set STRATA_KEY_PASSWORD to its passphrase")]
    PassphraseNeeded,
    /// A key could not be encoded.
    #[error("cannot encode the key: {0}")]
    Encode(String),
    /// The operating system's random source failed.
    #[error("cannot read random bytes: {0}")]
    Random(String),
    /// A key file already exists.
    #[error("{} already exists: strata never overwrites a key", .0.display())]
    Exists(PathBuf),
    /// A team name that cannot be a file name.
    #[error("invalid team name {0:?}: use letters, digits, '-', '_' and '.'")]
    BadTeamName(String),
    /// A bought base's vendor key file (`signed_by`) cannot be used.
    #[error("vendor key of the bought base {image}")]
    VendorKey {
        /// The chain image.
        image: String,
        /// Why.
        #[source]
        source: crate::vendor::VendorKeyError,
    },
}

impl KeyError {
    /// This error, located in `path` (I/O errors already name their file).
    pub(crate) fn in_file(self, path: &Path) -> KeyError {
        match self {
            KeyError::Io { .. } | KeyError::InFile { .. } | KeyError::InVariable { .. } => self,
            other => KeyError::InFile {
                path: path.to_path_buf(),
                inner: Box::new(other),
            },
        }
    }
}

/// Why a DSSE envelope did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum VerifyError {
    /// The envelope's `payloadType` is not `application/vnd.in-toto+json`.
    #[error("payload type is {found:?}, expected \"application/vnd.in-toto+json\"")]
    WrongPayloadType {
        /// The type found.
        found: String,
    },
    /// The envelope, its payload or its statement is not well formed.
    #[error("malformed envelope: {reason}")]
    Malformed {
        /// What is wrong.
        reason: String,
    },
    /// No signature is by a trusted key.
    #[error("signed by unknown key{} {}", if key_ids.len() == 1 { "" } else { "s" }, join(key_ids))]
    UnknownKey {
        /// The key ids the envelope's signatures name.
        key_ids: Vec<KeyId>,
    },
    /// A signature names a trusted key but does not verify: the payload or the signature was changed.
    #[error("bad signature by key {key_id}: the payload or the signature was changed")]
    BadSignature {
        /// The trusted key whose signature failed.
        key_id: KeyId,
    },
}

fn join(ids: &[KeyId]) -> String {
    if ids.is_empty() {
        return "(none: the envelope has no signature)".into();
    }
    ids.iter().map(KeyId::as_str).collect::<Vec<_>>().join(", ")
}

/// Storing or finding attestations in the store failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AttestError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] strata_oci::Error),
    /// An attestation blob is not a DSSE envelope.
    #[error("attestation {digest}: {reason}")]
    BadAttestation {
        /// The attestation manifest.
        digest: strata_oci::Digest,
        /// What is wrong.
        reason: String,
    },
    /// A stored vendor signature cannot be read.
    #[error("vendor signature {digest}: {reason}")]
    BadEvidence {
        /// The vendor signature artifact's manifest.
        digest: strata_oci::Digest,
        /// What is wrong.
        reason: String,
    },
}
