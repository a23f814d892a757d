//! The vendor signature a bought base must carry (`source = { image = "...", signed_by = "KEY" }`),
//! fetched and checked before the image is pulled into the store or tagged for the chain. The
//! verification is `strata_attest::vendor`'s; this module finds the signatures: in the lookaside
//! store for simple signing, in the image's repository (`sha256-HEX.sig`) for cosign. The
//! signature that vouched is kept in the store as the base's referrer ([`keep`]), so `strata
//! verify` checks it again later (`strata_attest::evidence`).

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::Path;

use strata_attest::evidence::Evidence;

use strata_attest::vendor::{self, Expected, Refusal, VendorKey};
use strata_chain::{Lookaside, SignatureKind, SignedBy};
use strata_oci::{Descriptor, Digest, Store};
use strata_remote::{Client, RemoteRef};

use crate::error::ImageError;

/// The most `signature-N` files read from a lookaside store.
const MAX_LOOKASIDE_SIGNATURES: usize = 16;
/// The most signature layers of a cosign `.sig` manifest read (each is fetched).
const MAX_COSIGN_SIGNATURES: usize = 16;

/// Check that `reference` (pinned) is signed as `signed_by` requires. `shown_key` is the key file
/// as the chain file names it (for messages). Returns the signature that vouched, as fetched.
pub(crate) fn check(
    client: &dyn Fn() -> Result<Client, ImageError>,
    reference: &str,
    signed_by: &SignedBy,
    shown_key: &Path,
) -> Result<Evidence, ImageError> {
    let refused = |refusal: Refusal| ImageError::VendorSignature {
        reference: reference.to_string(),
        key: shown_key.to_path_buf(),
        source: refusal,
    };
    let fetch_failed = |source: strata_remote::RegistryError| ImageError::VendorFetch {
        reference: reference.to_string(),
        source: Box::new(source),
    };
    let remote = RemoteRef::parse(reference).map_err(fetch_failed)?;
    let Some(pin) = remote.digest.clone() else {
        return Err(fetch_failed(strata_remote::RegistryError::Invalid(
            format!("{reference} is not pinned"),
        )));
    };
    let pin_text = pin.to_string();
    let repository = format!("{}/{}", remote.registry, remote.repository);
    let expected = Expected {
        digest: &pin_text,
        repository: &repository,
    };
    let key = VendorKey::load(&signed_by.key).map_err(|source| ImageError::VendorKey {
        reference: reference.to_string(),
        source,
    })?;
    match (&signed_by.kind, &key) {
        (SignatureKind::SimpleSigning { sigstore }, VendorKey::OpenPgp(key)) => {
            let signatures =
                lookaside_signatures(client, sigstore, &remote, &pin).map_err(|e| match e {
                    Fetch::Refused(r) => refused(r),
                    Fetch::Failed(e) => fetch_failed(e),
                })?;
            let mut results = Vec::new();
            for signature in signatures {
                results.push(
                    match vendor::verify_simple_signing(key, &signature, expected) {
                        Ok(_) => Ok(Evidence::SimpleSigning { signature }),
                        Err(vendor::SimpleSigningError::Refused(r)) => Err(r),
                        Err(vendor::SimpleSigningError::Gpgv(source)) => {
                            return Err(ImageError::VendorCheck {
                                reference: reference.to_string(),
                                source,
                            });
                        }
                    },
                );
            }
            first_good(results.into_iter()).map_err(refused)
        }
        (SignatureKind::Cosign, VendorKey::Cosign(key)) => {
            let client = client()?;
            let tag = format!("{}-{}.sig", pin.algorithm().name(), pin.hex());
            let sig_ref = remote.with_reference(&tag);
            let manifest = match client.get_manifest(&sig_ref) {
                Ok(m) => m,
                Err(e) if e.status() == Some(404) => {
                    return Err(refused(Refusal::Missing {
                        where_: format!("no tag {tag} in {repository}"),
                    }));
                }
                Err(e) => return Err(fetch_failed(e)),
            };
            let layers = cosign_layers(&manifest.bytes).map_err(refused)?;
            if layers.len() > MAX_COSIGN_SIGNATURES {
                return Err(refused(Refusal::Malformed {
                    reason: format!(
                        "{tag} holds {} signatures, more than the {MAX_COSIGN_SIGNATURES} read",
                        layers.len()
                    ),
                }));
            }
            let mut results = Vec::new();
            for (digest, size, annotations) in layers {
                if size > vendor::MAX_SIGNATURE_BYTES {
                    results.push(Err(Refusal::Malformed {
                        reason: format!("the payload {digest} is too large ({size} bytes)"),
                    }));
                    continue;
                }
                let payload = blob(&client, &remote, &digest, size).map_err(fetch_failed)?;
                let signature = &annotations[vendor::COSIGN_SIGNATURE_ANNOTATION];
                results.push(
                    vendor::verify_cosign(key, &payload, signature, expected).map(|()| {
                        Evidence::Cosign {
                            payload,
                            annotations,
                        }
                    }),
                );
            }
            if results.is_empty() {
                return Err(refused(Refusal::Missing {
                    where_: format!("{tag} in {repository} holds no signed payload"),
                }));
            }
            first_good(results.into_iter()).map_err(refused)
        }
        (SignatureKind::SimpleSigning { .. }, VendorKey::Cosign(_))
        | (SignatureKind::Cosign, VendorKey::OpenPgp(_)) => {
            // The chain file told the kinds apart by the same test; a file changed since.
            Err(ImageError::VendorKey {
                reference: reference.to_string(),
                source: vendor::VendorKeyError {
                    path: shown_key.to_path_buf(),
                    reason: "the key file changed kind since strata.toml was read".into(),
                    source: None,
                },
            })
        }
    }
}

/// Keep `evidence`, the vendor signature that vouched for the bought base `reference`, in the
/// store as the referrer of its manifest `descriptor` (once the image is in the store).
pub(crate) fn keep(
    store: &Store,
    descriptor: &Descriptor,
    reference: &str,
    evidence: &Evidence,
) -> Result<(), ImageError> {
    strata_attest::evidence::keep(store, descriptor, reference, evidence)
        .map(drop)
        .map_err(|source| ImageError::VendorKeep {
            reference: reference.to_string(),
            source: Box::new(source),
        })
}

/// The first signature that verifies, else the first refusal.
fn first_good<T>(results: impl Iterator<Item = Result<T, Refusal>>) -> Result<T, Refusal> {
    let mut first = None;
    for result in results {
        match result {
            Ok(good) => return Ok(good),
            Err(e) => {
                first.get_or_insert(e);
            }
        }
    }
    Err(first.unwrap_or(Refusal::Missing {
        where_: "no signature".into(),
    }))
}

enum Fetch {
    Refused(Refusal),
    Failed(strata_remote::RegistryError),
}

/// `signature-1`, `signature-2`, ... of `BASE/NAME@sha256=HEX/` until one is missing.
fn lookaside_signatures(
    client: &dyn Fn() -> Result<Client, ImageError>,
    sigstore: &Lookaside,
    remote: &RemoteRef,
    pin: &Digest,
) -> Result<Vec<Vec<u8>>, Fetch> {
    let entry = format!(
        "{}@{}={}",
        remote.repository,
        pin.algorithm().name(),
        pin.hex()
    );
    let mut signatures = Vec::new();
    let where_;
    match sigstore {
        Lookaside::Dir(dir) => {
            let entry_dir = dir.join(&entry);
            where_ = entry_dir.join("signature-1").display().to_string();
            for n in 1..=MAX_LOOKASIDE_SIGNATURES {
                let path = entry_dir.join(format!("signature-{n}"));
                let file = match std::fs::File::open(&path) {
                    Ok(file) => file,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                    Err(source) => {
                        return Err(Fetch::Failed(strata_remote::RegistryError::Io {
                            path,
                            source,
                        }));
                    }
                };
                let mut bytes = Vec::new();
                file.take(vendor::MAX_SIGNATURE_BYTES)
                    .read_to_end(&mut bytes)
                    .map_err(|source| {
                        Fetch::Failed(strata_remote::RegistryError::Io {
                            path: path.clone(),
                            source,
                        })
                    })?;
                signatures.push(bytes);
            }
        }
        Lookaside::Url(base) => {
            let client = client().map_err(|e| match e {
                ImageError::Client { source, .. } => Fetch::Failed(*source),
                other => Fetch::Failed(strata_remote::RegistryError::Invalid(other.to_string())),
            })?;
            where_ = format!("{base}/{entry}/signature-1");
            for n in 1..=MAX_LOOKASIDE_SIGNATURES {
                let url = format!("{base}/{entry}/signature-{n}");
                match client
                    .get_plain(&url, vendor::MAX_SIGNATURE_BYTES)
                    .map_err(Fetch::Failed)?
                {
                    Some(bytes) => signatures.push(bytes),
                    None => break,
                }
            }
        }
    }
    if signatures.is_empty() {
        return Err(Fetch::Refused(Refusal::Missing {
            where_: format!("no {where_}"),
        }));
    }
    Ok(signatures)
}

/// A cosign signature layer: its digest, size and annotations (the signature among them).
type CosignLayer = (Digest, u64, BTreeMap<String, String>);

/// The layers of a cosign signature manifest that carry a signature.
fn cosign_layers(manifest: &[u8]) -> Result<Vec<CosignLayer>, Refusal> {
    let malformed = |reason: String| Refusal::Malformed { reason };
    let value: serde_json::Value = serde_json::from_slice(manifest)
        .map_err(|e| malformed(format!("the signature manifest is not JSON: {e}")))?;
    let layers = value["layers"]
        .as_array()
        .ok_or_else(|| malformed("the signature manifest has no layers".into()))?;
    let mut out = Vec::new();
    for layer in layers {
        if !layer["annotations"][vendor::COSIGN_SIGNATURE_ANNOTATION].is_string() {
            continue;
        }
        // Every annotation as fetched (cosign's certificate or bundle, when present, go with the
        // signature); those that are not strings are not annotations.
        let annotations = layer["annotations"]
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
            .collect();
        let digest = layer["digest"]
            .as_str()
            .and_then(|d| d.parse::<Digest>().ok())
            .ok_or_else(|| malformed("a signature layer has no valid digest".into()))?;
        let size = layer["size"]
            .as_u64()
            .ok_or_else(|| malformed("a signature layer has no size".into()))?;
        out.push((digest, size, annotations));
    }
    Ok(out)
}

/// A small blob, checked against its digest.
fn blob(
    client: &Client,
    remote: &RemoteRef,
    digest: &Digest,
    size: u64,
) -> Result<Vec<u8>, strata_remote::RegistryError> {
    let mut bytes = Vec::new();
    let what = format!("{}/{}@{digest}", remote.registry, remote.repository);
    client
        .get_blob(remote, digest, 0)?
        .take(size.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|source| strata_remote::RegistryError::Io {
            path: what.clone().into(),
            source,
        })?;
    let actual = Digest::of_with(digest.algorithm(), &bytes);
    if bytes.len() as u64 != size || actual != *digest {
        return Err(strata_remote::RegistryError::DigestMismatch {
            what,
            expected: digest.to_string(),
            actual: actual.to_string(),
        });
    }
    Ok(bytes)
}
