//! Vendor signatures of bought base images, checked before a base is imported.
//!
//! Two formats, the ones vendors really publish:
//! - containers/image "simple signing" (what Red Hat signs its images with, and what
//!   `skopeo copy --sign-by` makes): an OpenPGP-signed message whose literal data is a JSON
//!   payload naming the manifest digest and the reference; kept in a lookaside store as
//!   `NAME@sha256=HEX/signature-N`.
//! - cosign's key-pair signatures: the tag `sha256-HEX.sig` in the image's repository, a manifest
//!   whose layer is the (cosign flavour of the) same JSON payload, and whose annotation
//!   `dev.cosignproject.cosign/signature` is a base64 ECDSA P-256 signature over SHA-256 of it.
//!
//! This module is pure: it gets the key and the signature bytes (the caller fetches them) and says
//! whether they vouch for the pinned digest, with a reason when not.
//!
//! OpenPGP is read by `pgp` (rpgp): a maintained, pure-Rust implementation of RFC 9580/4880,
//! built from crates.io without a C toolchain, gpgme or a gpg binary (shelling out to gpg would
//! make the verdict depend on the host's keyring and agent). Only its verifying side is used; the
//! RSA timing advisory (RUSTSEC-2023-0071) concerns decryption and signing with secret keys,
//! which strata never does with it.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use pgp::composed::{Deserializable as _, Message, SignedPublicKey};
use pgp::types::KeyDetails as _;
use serde::Deserialize;

use crate::keys::PublicKey;

/// `critical.type` of a containers/image simple-signing payload.
pub const SIMPLE_SIGNING_TYPE: &str = "atomic container signature";
/// `critical.type` of a cosign payload.
pub const COSIGN_TYPE: &str = "cosign container image signature";
/// The manifest annotation holding a cosign signature.
pub const COSIGN_SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// The media type of a cosign payload layer.
pub const COSIGN_PAYLOAD_MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// The largest signature or payload read (containers/image's limit for lookaside signatures).
pub const MAX_SIGNATURE_BYTES: u64 = 4 << 20;

/// A vendor's public key, as `signed_by` names it.
pub enum VendorKey {
    /// An OpenPGP transferable public key (its primary key and its signing subkeys).
    OpenPgp(Box<SignedPublicKey>),
    /// A cosign public key (PEM, P-256).
    Cosign(Box<PublicKey>),
}

impl std::fmt::Debug for VendorKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VendorKey::OpenPgp(k) => write!(f, "OpenPgp({:X})", k.fingerprint()),
            VendorKey::Cosign(k) => write!(f, "Cosign({k:?})"),
        }
    }
}

/// A key file that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{}: {reason}", path.display())]
pub struct VendorKeyError {
    /// The key file.
    pub path: PathBuf,
    /// What is wrong with it.
    pub reason: String,
}

impl VendorKey {
    /// Read `path`: a PEM `PUBLIC KEY` is cosign's; anything else must be an OpenPGP public key,
    /// armored or binary, whose self-signatures verify.
    pub fn load(path: &Path) -> Result<VendorKey, VendorKeyError> {
        let fail = |reason: String| VendorKeyError {
            path: path.to_path_buf(),
            reason,
        };
        let bytes = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
        let text = String::from_utf8_lossy(&bytes);
        if text.contains("-----BEGIN PUBLIC KEY-----") {
            return PublicKey::from_pem(&text)
                .map(|k| VendorKey::Cosign(Box::new(k)))
                .map_err(|e| fail(format!("not a cosign public key: {e}")));
        }
        let (key, _) = SignedPublicKey::from_reader_single(&bytes[..])
            .map_err(|e| fail(format!("not an OpenPGP public key: {e}")))?;
        key.verify_bindings().map_err(|e| {
            fail(format!(
                "the OpenPGP key's self-signatures do not verify: {e}"
            ))
        })?;
        Ok(VendorKey::OpenPgp(Box::new(key)))
    }
}

/// What a signature must vouch for.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    /// The pinned manifest digest (`sha256:...`).
    pub digest: &'a str,
    /// The repository the image is pulled from, `HOST/NAME` (a tag or digest is ignored).
    pub repository: &'a str,
}

/// Why a vendor signature does not vouch for an image. Each is one line, written to follow
/// "image X, key Y: ".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// No signature was found where it should be.
    #[error("no signature found ({where_})")]
    Missing {
        /// Where it was looked for.
        where_: String,
    },
    /// Signatures exist, but by other keys.
    #[error("signed by another key ({issuers}), not by this one")]
    ForeignKey {
        /// The issuers the signatures name.
        issuers: String,
    },
    /// A signature by this key does not verify: the payload or the signature was changed.
    #[error("the signature does not verify: the signed payload or the signature was changed")]
    BadSignature,
    /// A signature that names no key (cosign's) does not verify with this key: it was made by
    /// another key, or changed.
    #[error("the signature does not verify with this key: made by another key, or changed")]
    NotVerified,
    /// The signature or its payload is not well formed.
    #[error("malformed signature: {reason}")]
    Malformed {
        /// What is wrong.
        reason: String,
    },
    /// The signed payload is for another manifest.
    #[error("the signature is for {signed}, not for the pinned {pinned}")]
    DigestMismatch {
        /// The digest the payload names.
        signed: String,
        /// The pin.
        pinned: String,
    },
    /// The signed payload is for another repository.
    #[error("the signature is for {signed}, not for {expected}")]
    IdentityMismatch {
        /// The reference the payload names.
        signed: String,
        /// The repository pulled from.
        expected: String,
    },
}

#[derive(Deserialize)]
struct Payload {
    critical: Critical,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Critical {
    #[serde(rename = "type")]
    kind: String,
    image: PayloadImage,
    identity: PayloadIdentity,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PayloadImage {
    #[serde(rename = "docker-manifest-digest")]
    digest: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PayloadIdentity {
    #[serde(rename = "docker-reference")]
    reference: String,
}

/// Check a signed payload's `critical` section: its type, digest and identity.
pub fn check_payload(payload: &[u8], kind: &str, expected: Expected<'_>) -> Result<(), Refusal> {
    let payload: Payload = serde_json::from_slice(payload).map_err(|e| Refusal::Malformed {
        reason: format!("the payload is not a signature payload: {e}"),
    })?;
    let critical = payload.critical;
    if critical.kind != kind {
        return Err(Refusal::Malformed {
            reason: format!("payload type {:?}, expected {kind:?}", critical.kind),
        });
    }
    if critical.image.digest != expected.digest {
        return Err(Refusal::DigestMismatch {
            signed: critical.image.digest,
            pinned: expected.digest.to_string(),
        });
    }
    // As containers/image's matchRepoDigestOrExact for a reference pinned by digest: the digest
    // was checked above, the repository must be the same one.
    if repository_of(&critical.identity.reference) != repository_of(expected.repository) {
        return Err(Refusal::IdentityMismatch {
            signed: critical.identity.reference,
            expected: repository_of(expected.repository),
        });
    }
    Ok(())
}

/// `HOST/NAME` of a reference, without tag or digest, in its normalized docker form
/// (`busybox` → `docker.io/library/busybox`).
pub fn repository_of(reference: &str) -> String {
    let name = reference.split('@').next().unwrap_or(reference);
    let name = match name.rfind(':') {
        Some(colon) if !name[colon..].contains('/') => &name[..colon],
        _ => name,
    };
    let (host, path) = match name.split_once('/') {
        Some((first, rest))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            (first, rest.to_string())
        }
        _ => ("docker.io", name.to_string()),
    };
    let host = if host == "index.docker.io" {
        "docker.io"
    } else {
        host
    };
    if host == "docker.io" && !path.contains('/') {
        format!("docker.io/library/{path}")
    } else {
        format!("{host}/{path}")
    }
}

/// Verify a simple-signing signature (`signature-N` of a lookaside store, an OpenPGP message)
/// with `key`: the signature must be by the key (its primary key or a subkey bound to it), and
/// its payload must name the pinned digest and the repository.
pub fn verify_simple_signing(
    key: &SignedPublicKey,
    signature: &[u8],
    expected: Expected<'_>,
) -> Result<(), Refusal> {
    let malformed = |what: &str, e: &dyn std::fmt::Display| Refusal::Malformed {
        reason: format!("{what}: {e}"),
    };
    let message =
        Message::from_bytes(signature).map_err(|e| malformed("not an OpenPGP message", &e))?;
    let mut message = message
        .decompress()
        .map_err(|e| malformed("cannot decompress the OpenPGP message", &e))?;
    if !message.is_signed() {
        return Err(Refusal::Malformed {
            reason: "the OpenPGP message is not signed".into(),
        });
    }
    let mut payload = Vec::new();
    (&mut message)
        .take(MAX_SIGNATURE_BYTES + 1)
        .read_to_end(&mut payload)
        .map_err(|e| malformed("cannot read the signed payload", &e))?;
    if payload.len() as u64 > MAX_SIGNATURE_BYTES {
        return Err(Refusal::Malformed {
            reason: "the signed payload is too large".into(),
        });
    }
    // The signing keys: the primary and every subkey whose binding the primary signed.
    let mut keys: Vec<&dyn pgp::types::VerifyingKey> = vec![&key.primary_key];
    let mut ids = vec![(
        key.primary_key.legacy_key_id(),
        key.primary_key.fingerprint(),
    )];
    for sub in &key.public_subkeys {
        if sub.verify_bindings(&key.primary_key).is_ok() {
            keys.push(&sub.key);
            ids.push((sub.key.legacy_key_id(), sub.key.fingerprint()));
        }
    }
    let results = message
        .verify_nested(&keys)
        .map_err(|e| malformed("cannot check the OpenPGP signature", &e))?;
    if results
        .iter()
        .any(|r| matches!(r, pgp::composed::VerificationResult::Valid(_)))
    {
        return check_payload(&payload, SIMPLE_SIGNING_TYPE, expected);
    }
    // Not verified: by one of our keys (then it was changed) or by another one?
    let Message::Signed { reader, .. } = &message else {
        unreachable!("checked to be signed above");
    };
    let mut issuers = Vec::new();
    let mut ours = false;
    for i in 0..reader.num_signatures() {
        let Some(sig) = reader.signature(i) else {
            continue;
        };
        for id in sig.issuer_key_id() {
            ours |= ids.iter().any(|(k, _)| k == id);
            issuers.push(hex::encode_upper(id.as_ref()));
        }
        for fp in sig.issuer_fingerprint() {
            ours |= ids.iter().any(|(_, f)| f == fp);
        }
    }
    if ours || issuers.is_empty() {
        Err(Refusal::BadSignature)
    } else {
        issuers.dedup();
        Err(Refusal::ForeignKey {
            issuers: format!("OpenPGP key {}", issuers.join(", ")),
        })
    }
}

/// Verify a cosign signature: `signature_b64`, the manifest annotation, must be `key`'s ECDSA
/// signature (ASN.1 DER, SHA-256) over `payload`, the layer's bytes, which must name the pinned
/// digest and the repository.
pub fn verify_cosign(
    key: &PublicKey,
    payload: &[u8],
    signature_b64: &str,
    expected: Expected<'_>,
) -> Result<(), Refusal> {
    let signature = base64::engine::general_purpose::STANDARD
        .decode(signature_b64.trim())
        .map_err(|e| Refusal::Malformed {
            reason: format!("the {COSIGN_SIGNATURE_ANNOTATION} annotation is not base64: {e}"),
        })?;
    if !key.verify(payload, &signature) {
        return Err(Refusal::NotVerified);
    }
    check_payload(payload, COSIGN_TYPE, expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repositories_are_compared_normalized() {
        assert_eq!(repository_of("busybox"), "docker.io/library/busybox");
        assert_eq!(
            repository_of("docker.io/busybox:1@sha256:00"),
            "docker.io/library/busybox"
        );
        assert_eq!(
            repository_of("127.0.0.1:5000/vendor/base:1"),
            "127.0.0.1:5000/vendor/base"
        );
        assert_eq!(
            repository_of("127.0.0.1:5000/vendor/base"),
            "127.0.0.1:5000/vendor/base"
        );
        assert_eq!(repository_of("acme/base:2"), "docker.io/acme/base");
    }

    fn payload(kind: &str, digest: &str, reference: &str) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "critical": {
                "identity": {"docker-reference": reference},
                "image": {"docker-manifest-digest": digest},
                "type": kind,
            },
            "optional": null,
        }))
        .unwrap()
    }

    #[test]
    fn a_payload_must_name_the_pin_and_the_repository() {
        let d = format!("sha256:{}", "a".repeat(64));
        let other = format!("sha256:{}", "b".repeat(64));
        let expected = Expected {
            digest: &d,
            repository: "reg.example/vendor/base:1",
        };
        let ok = payload(COSIGN_TYPE, &d, "reg.example/vendor/base");
        check_payload(&ok, COSIGN_TYPE, expected).unwrap();
        let tagged = payload(SIMPLE_SIGNING_TYPE, &d, "reg.example/vendor/base:2");
        check_payload(&tagged, SIMPLE_SIGNING_TYPE, expected).unwrap();
        assert!(matches!(
            check_payload(&ok, SIMPLE_SIGNING_TYPE, expected),
            Err(Refusal::Malformed { .. })
        ));
        let moved = payload(COSIGN_TYPE, &other, "reg.example/vendor/base");
        assert_eq!(
            check_payload(&moved, COSIGN_TYPE, expected),
            Err(Refusal::DigestMismatch {
                signed: other.clone(),
                pinned: d.clone()
            })
        );
        let elsewhere = payload(COSIGN_TYPE, &d, "reg.example/other/base");
        assert!(matches!(
            check_payload(&elsewhere, COSIGN_TYPE, expected),
            Err(Refusal::IdentityMismatch { .. })
        ));
        let mut extra: serde_json::Value = serde_json::from_slice(&ok).unwrap();
        extra["critical"]["unexpected"] = serde_json::json!(1);
        assert!(matches!(
            check_payload(&serde_json::to_vec(&extra).unwrap(), COSIGN_TYPE, expected),
            Err(Refusal::Malformed { .. })
        ));
    }

    #[test]
    fn a_cosign_signature_is_checked_over_the_payload_bytes() {
        let private = crate::keys::PrivateKey::generate(crate::keys::KeyKind::EcdsaP256).unwrap();
        let d = format!("sha256:{}", "a".repeat(64));
        let expected = Expected {
            digest: &d,
            repository: "reg.example/vendor/base",
        };
        let body = payload(COSIGN_TYPE, &d, "reg.example/vendor/base");
        let sig = base64::engine::general_purpose::STANDARD.encode(private.sign(&body));
        verify_cosign(private.public_key(), &body, &sig, expected).unwrap();
        let mut tampered = body.clone();
        tampered.extend_from_slice(b" ");
        assert_eq!(
            verify_cosign(private.public_key(), &tampered, &sig, expected),
            Err(Refusal::NotVerified)
        );
        let other = crate::keys::PrivateKey::generate(crate::keys::KeyKind::EcdsaP256).unwrap();
        assert_eq!(
            verify_cosign(other.public_key(), &body, &sig, expected),
            Err(Refusal::NotVerified)
        );
    }
}
