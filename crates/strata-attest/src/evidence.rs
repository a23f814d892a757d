//! A bought base's vendor signature, kept in the store as the evidence that the vendor signed it.
//!
//! When a build's vendor check passes ([`crate::vendor`]), the signature that vouched for the
//! base is stored exactly as it was fetched, in an OCI 1.1 artifact whose `subject` is the base's
//! manifest: `artifactType` [`VENDOR_SIGNATURE_ARTIFACT_TYPE`], the empty config, one layer:
//! - simple signing: the lookaside store's `signature-N` bytes (an OpenPGP signed message),
//!   media type [`SIMPLE_SIGNING_MEDIA_TYPE`];
//! - cosign: the signed payload (media type [`crate::vendor::COSIGN_PAYLOAD_MEDIA_TYPE`]) with
//!   the annotations its layer had in the `.sig` manifest, `dev.cosignproject.cosign/signature`
//!   (the base64 signature) among them.
//!
//! Like the attestations, it is an untagged root of `index.json` found through the base's
//! referrers, and gc keeps it exactly as long as the base. Nothing stored is trusted:
//! [`verify`] checks it again, offline, with the vendor key the chain file names, against the
//! base's digest and the repository it was bought from.

use std::collections::{BTreeMap, HashMap};

use oci_spec::image::{Descriptor, ImageManifest, MediaType};
use strata_oci::{Digest, Store};

use crate::error::AttestError;
use crate::vendor::{
    self, COSIGN_PAYLOAD_MEDIA_TYPE, COSIGN_SIGNATURE_ANNOTATION, Expected, GpgvError, Refusal,
    VendorKey,
};

/// At most this many stored vendor signatures of one image are checked (each may run `gpgv`).
pub const MAX_CHECKED: usize = 16;
/// The `artifactType` of a stored vendor signature.
pub const VENDOR_SIGNATURE_ARTIFACT_TYPE: &str = "application/vnd.strata.vendor-signature.v1+json";
/// The media type of a stored simple-signing signature (an OpenPGP signed message).
pub const SIMPLE_SIGNING_MEDIA_TYPE: &str = "application/vnd.strata.simple-signing.signature.v1";
/// The annotation naming the reference the base was bought as (a hint; never trusted).
pub const ANNOTATION_VENDOR_REFERENCE: &str = "dev.strata.vendor.reference";

/// A vendor signature as fetched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Evidence {
    /// A simple-signing `signature-N`: an OpenPGP signed message.
    SimpleSigning {
        /// Its bytes.
        signature: Vec<u8>,
    },
    /// A cosign signature layer.
    Cosign {
        /// The signed payload (the layer's bytes).
        payload: Vec<u8>,
        /// The layer's annotations in the `.sig` manifest (the signature among them).
        annotations: BTreeMap<String, String>,
    },
}

impl Evidence {
    /// `simple_signing` or `cosign`.
    pub fn format(&self) -> &'static str {
        match self {
            Evidence::SimpleSigning { .. } => "simple_signing",
            Evidence::Cosign { .. } => "cosign",
        }
    }
}

/// A vendor signature found in the store.
#[derive(Clone, Debug)]
pub struct Stored {
    /// The artifact manifest's digest.
    pub manifest: Digest,
    /// The signature.
    pub evidence: Evidence,
}

/// Store `evidence` as the vendor signature of the base whose manifest is `subject`, bought as
/// `reference`; returns the artifact's descriptor. The subject must be in the store; keeping the
/// same evidence twice stores it once.
pub fn keep(
    store: &Store,
    subject: &Descriptor,
    reference: &str,
    evidence: &Evidence,
) -> Result<Descriptor, AttestError> {
    let (bytes, media_type, annotations) = match evidence {
        Evidence::SimpleSigning { signature } => (signature, SIMPLE_SIGNING_MEDIA_TYPE, None),
        Evidence::Cosign {
            payload,
            annotations,
        } => (
            payload,
            COSIGN_PAYLOAD_MEDIA_TYPE,
            Some(annotations.clone().into_iter().collect::<HashMap<_, _>>()),
        ),
    };
    let mut layer = store
        .blobs()
        .put(bytes)?
        .descriptor(MediaType::Other(media_type.into()));
    layer.set_annotations(annotations);
    let config = store.blobs().put(b"{}")?.descriptor(MediaType::EmptyJSON);
    let mut subject = subject.clone();
    subject.set_annotations(None);
    subject.set_platform(None);
    let mut manifest = strata_oci::image::new_manifest(config, vec![layer]);
    manifest.set_artifact_type(Some(MediaType::Other(
        VENDOR_SIGNATURE_ARTIFACT_TYPE.into(),
    )));
    manifest.set_subject(Some(subject));
    manifest.set_annotations(Some(HashMap::from([(
        ANNOTATION_VENDOR_REFERENCE.to_string(),
        reference.to_string(),
    )])));
    Ok(store.put_referrer(&manifest)?)
}

/// The vendor signatures stored for the image whose manifest is `subject`, each read on its own:
/// one that cannot be read (a blob changed or missing, an unknown layout) is an `Err` in the
/// list, so a verifier can name it and still use the others. A store whose index cannot be read
/// fails the call.
pub fn find(
    store: &Store,
    subject: &Digest,
) -> Result<Vec<Result<Stored, AttestError>>, AttestError> {
    let mut found = Vec::new();
    for referrer in store.referrers(subject, Some(VENDOR_SIGNATURE_ARTIFACT_TYPE))? {
        let digest = Digest::from_oci(referrer.digest())?;
        found.push(read(store, digest));
    }
    Ok(found)
}

fn read(store: &Store, digest: Digest) -> Result<Stored, AttestError> {
    let bad = |reason: String| AttestError::BadEvidence {
        digest: digest.clone(),
        reason,
    };
    let manifest: ImageManifest = store
        .blobs()
        .read_manifest(&digest)
        .map_err(|e| bad(strata_oci::report(&e)))?;
    let [layer] = manifest.layers().as_slice() else {
        return Err(bad(format!(
            "expected one layer, found {}",
            manifest.layers().len()
        )));
    };
    if layer.size() > vendor::MAX_SIGNATURE_BYTES {
        return Err(bad(format!(
            "its layer is {} bytes, more than a signature's {}",
            layer.size(),
            vendor::MAX_SIGNATURE_BYTES
        )));
    }
    let bytes = store
        .blobs()
        .read_descriptor(layer)
        .map_err(|e| bad(strata_oci::report(&e)))?;
    let evidence = match layer.media_type().to_string().as_str() {
        SIMPLE_SIGNING_MEDIA_TYPE => Evidence::SimpleSigning { signature: bytes },
        COSIGN_PAYLOAD_MEDIA_TYPE => Evidence::Cosign {
            payload: bytes,
            annotations: layer
                .annotations()
                .clone()
                .unwrap_or_default()
                .into_iter()
                .collect(),
        },
        other => return Err(bad(format!("its layer is {other}, not a vendor signature"))),
    };
    Ok(Stored {
        manifest: digest,
        evidence,
    })
}

/// Why stored evidence does not vouch for a base.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EvidenceError {
    /// The signature does not vouch for the image.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// `gpgv` could not be asked.
    #[error(transparent)]
    Gpgv(#[from] GpgvError),
    /// The evidence is of the other format than the key's.
    #[error("a {found} signature, but the key is {key}")]
    WrongFormat {
        /// The evidence's format.
        found: &'static str,
        /// The key's kind.
        key: &'static str,
    },
}

/// Verify `evidence` with `key`, offline: the signature must be the key's and its payload must
/// name `expected` (the base's digest and the repository it was bought from), as at import.
/// Returns the key that signed: an OpenPGP primary key's fingerprint, or a cosign key's id (the
/// sha256 of its SubjectPublicKeyInfo, as strata's key ids).
pub fn verify(
    key: &VendorKey,
    evidence: &Evidence,
    expected: Expected<'_>,
) -> Result<String, EvidenceError> {
    match (key, evidence) {
        (VendorKey::OpenPgp(keys), Evidence::SimpleSigning { signature }) => {
            match vendor::verify_simple_signing(keys, signature, expected) {
                Ok(fingerprint) => Ok(fingerprint),
                Err(vendor::SimpleSigningError::Refused(r)) => Err(r.into()),
                Err(vendor::SimpleSigningError::Gpgv(e)) => Err(e.into()),
            }
        }
        (
            VendorKey::Cosign(key),
            Evidence::Cosign {
                payload,
                annotations,
            },
        ) => {
            let signature = annotations
                .get(COSIGN_SIGNATURE_ANNOTATION)
                .ok_or_else(|| Refusal::Malformed {
                    reason: format!("the payload has no {COSIGN_SIGNATURE_ANNOTATION} annotation"),
                })?;
            vendor::verify_cosign(key, payload, signature, expected)?;
            Ok(key.id().to_string())
        }
        (key, evidence) => Err(EvidenceError::WrongFormat {
            found: evidence.format(),
            key: key.kind(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;

    use super::*;
    use crate::keys::{KeyKind, PrivateKey};

    fn payload(digest: &Digest, reference: &str) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "critical": {
                "identity": {"docker-reference": reference},
                "image": {"docker-manifest-digest": digest.to_string()},
                "type": vendor::COSIGN_TYPE,
            },
            "optional": null,
        }))
        .unwrap()
    }

    #[test]
    fn kept_evidence_is_found_and_verified_again_offline() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::init(dir.path()).unwrap();
        let base = strata_oci::random::image(&store, 1, 16).unwrap();
        let vendor = PrivateKey::generate(KeyKind::EcdsaP256).unwrap();
        let body = payload(&base.digest(), "reg.example/vendor/base");
        let evidence = Evidence::Cosign {
            annotations: BTreeMap::from([(
                COSIGN_SIGNATURE_ANNOTATION.to_string(),
                base64::engine::general_purpose::STANDARD.encode(vendor.sign(&body)),
            )]),
            payload: body,
        };
        assert!(find(&store, &base.digest()).unwrap().is_empty());
        let reference = format!("reg.example/vendor/base:1@{}", base.digest());
        let kept = keep(&store, base.descriptor(), &reference, &evidence).unwrap();
        keep(&store, base.descriptor(), &reference, &evidence).unwrap();
        let found = find(&store, &base.digest()).unwrap();
        assert_eq!(found.len(), 1, "kept once");
        let stored = found.into_iter().next().unwrap().unwrap();
        assert_eq!(stored.manifest, Digest::from_oci(kept.digest()).unwrap());
        assert_eq!(stored.evidence, evidence);
        // An attestation lookup does not see it.
        assert!(
            crate::artifact::find(&store, &base.digest())
                .unwrap()
                .is_empty()
        );

        let digest = base.digest().to_string();
        let expected = Expected {
            digest: &digest,
            repository: &reference,
        };
        let key = VendorKey::Cosign(Box::new(vendor.public_key().clone()));
        assert_eq!(
            verify(&key, &stored.evidence, expected).unwrap(),
            vendor.public_key().id().to_string()
        );
        let other = PrivateKey::generate(KeyKind::EcdsaP256).unwrap();
        let other = VendorKey::Cosign(Box::new(other.public_key().clone()));
        assert!(matches!(
            verify(&other, &stored.evidence, expected),
            Err(EvidenceError::Refused(Refusal::NotVerified))
        ));
        let elsewhere = Expected {
            digest: &digest,
            repository: "reg.example/other/base",
        };
        assert!(matches!(
            verify(&key, &stored.evidence, elsewhere),
            Err(EvidenceError::Refused(Refusal::IdentityMismatch { .. }))
        ));
        let gpg = Evidence::SimpleSigning {
            signature: b"x".to_vec(),
        };
        assert_eq!(
            verify(&key, &gpg, expected).unwrap_err().to_string(),
            "a simple_signing signature, but the key is a cosign key"
        );

        // A changed blob is named, not an error of the whole lookup.
        let layer = store
            .blobs()
            .read_manifest(&stored.manifest)
            .unwrap()
            .layers()[0]
            .clone();
        let path = dir
            .path()
            .join("blobs/sha256")
            .join(Digest::from_oci(layer.digest()).unwrap().hex());
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[0] ^= 1;
        std::fs::write(&path, bytes).unwrap();
        let found = find(&store, &base.digest()).unwrap();
        assert!(
            matches!(&found[..], [Err(AttestError::BadEvidence { .. })]),
            "{found:?}"
        );
    }
}
