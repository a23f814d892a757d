//! `strata inspect`: everything the store knows about one image.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;
use strata_oci::Store;

use crate::catalog::{Catalog, StoredImage};
use crate::error::{InspectError, Result};
use crate::lineage::Lineage;

/// Provenance of an image: the SLSA attestations attached to it as referrers, as they say.
///
/// `strata inspect` shows what the attestations claim and which key ids signed them; it does not
/// check the signatures against the teams' keys — `strata verify IMAGE` does, tier by tier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Provenance {
    /// No attestation is attached to the image.
    None,
    /// Attestations are attached (signatures not checked here: see `strata verify`).
    Attested {
        /// One entry per attestation.
        attestations: Vec<AttestationSummary>,
    },
}

/// What one attestation claims.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AttestationSummary {
    /// The key ids of its signatures.
    pub key_ids: Vec<String>,
    /// The in-toto predicate type.
    pub predicate_type: String,
    /// The SLSA build type, when it is provenance.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub build_type: Option<String>,
    /// The team recorded as owner.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// The tier recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tier: Option<String>,
    /// The base recorded: name and digest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base: Option<String>,
    /// When the build finished.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_on: Option<String>,
    /// Why it could not be read, if it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unreadable: Option<String>,
}

/// The attestations attached to the image `digest`, read but not verified.
fn provenance_of(store: &Store, digest: &strata_oci::Digest) -> Result<Provenance> {
    let envelopes = strata_attest::find(store, digest).map_err(|e| InspectError::Provenance {
        digest: digest.to_string(),
        message: strata_oci::report(&e),
    })?;
    if envelopes.is_empty() {
        return Ok(Provenance::None);
    }
    let attestations = envelopes
        .iter()
        .map(|envelope| {
            let key_ids = envelope
                .signatures
                .iter()
                .map(|s| s.keyid.clone())
                .collect();
            let mut summary = AttestationSummary {
                key_ids,
                predicate_type: String::new(),
                build_type: None,
                owner: None,
                tier: None,
                base: None,
                finished_on: None,
                unreadable: None,
            };
            match envelope.statement_unverified() {
                Err(e) => summary.unreadable = Some(strata_oci::report(&e)),
                Ok(statement) => {
                    summary.predicate_type = statement.predicate_type.clone();
                    if let Ok(p) = statement.provenance() {
                        summary.build_type = Some(p.build_definition.build_type.clone());
                        if let Ok(internal) = p.internal() {
                            summary.owner = Some(internal.owner);
                            summary.tier = internal.tier;
                        }
                        if let Ok(Some((name, d))) = p.base() {
                            summary.base = Some(format!("{}@{d}", name.unwrap_or_default()));
                        }
                        summary.finished_on = p.finished_on().map(|t| t.to_rfc3339());
                    }
                }
            }
            summary
        })
        .collect();
    Ok(Provenance::Attested { attestations })
}

/// A layer of the inspected image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LayerSummary {
    /// The blob digest.
    pub digest: String,
    /// The uncompressed digest.
    pub diff_id: String,
    /// The blob's media type.
    pub media_type: String,
    /// The blob's size in bytes.
    pub size: u64,
    /// Whether the image added it (rather than inheriting it from its base).
    pub own: bool,
}

/// The base an image was built on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BaseSummary {
    /// `org.opencontainers.image.base.name`.
    pub name: Option<String>,
    /// `org.opencontainers.image.base.digest`.
    pub digest: Option<String>,
    /// Whether the store holds that manifest.
    pub in_store: bool,
    /// Tags pointing to it now.
    pub tags: Vec<String>,
}

/// Everything `strata inspect` shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Inspection {
    /// The reference asked for.
    pub reference: String,
    /// The manifest digest.
    pub digest: String,
    /// The manifest media type.
    pub media_type: String,
    /// Every tag pointing to this manifest.
    pub tags: Vec<String>,
    /// Manifest + config + layers, in bytes.
    pub size: u64,
    /// The chain image that built it (`dev.strata.chain.image`).
    pub chain_image: Option<String>,
    /// Its owning team (`dev.strata.chain.owner`).
    pub owner: Option<String>,
    /// The build key (`dev.strata.build.key`).
    pub build_key: Option<String>,
    /// The base image.
    pub base: Option<BaseSummary>,
    /// The manifest annotations.
    pub annotations: BTreeMap<String, String>,
    /// The layers, base first.
    pub layers: Vec<LayerSummary>,
    /// Signatures and attestations: not read yet (see [`Provenance`]).
    pub provenance: Provenance,
    /// The manifest as stored.
    pub manifest: Value,
    /// The config as stored.
    pub config: Value,
}

/// Inspect `image` (found under `reference`).
pub fn inspect(
    store: &Store,
    catalog: &Catalog,
    image: &StoredImage,
    reference: &str,
) -> Result<Inspection> {
    let json = |bytes: Vec<u8>, what: String| {
        serde_json::from_slice::<Value>(&bytes)
            .map_err(|source| InspectError::Json { what, source })
    };
    let manifest = json(
        store.blobs().read_descriptor(&image.descriptor)?,
        format!("manifest {}", image.digest),
    )?;
    let config = json(
        store.blobs().read_descriptor(image.manifest.config())?,
        format!("config of {}", image.digest),
    )?;
    let own_from = Lineage::of(catalog, image).own_layers_start();
    let base = (image.base_name().is_some() || image.base_digest().is_some()).then(|| {
        let stored = image.base_digest().and_then(|d| catalog.get(&d));
        BaseSummary {
            name: image.base_name().map(str::to_string),
            digest: image
                .annotation(strata_oci::annotations::ANNOTATION_BASE_IMAGE_DIGEST)
                .map(str::to_string),
            in_store: image.base_digest().is_some_and(|d| store.blobs().has(&d)),
            tags: stored.map(|s| s.tags.clone()).unwrap_or_default(),
        }
    });
    Ok(Inspection {
        reference: reference.to_string(),
        digest: image.digest.to_string(),
        media_type: image.descriptor.media_type().to_string(),
        tags: image.tags.clone(),
        size: image.size(),
        chain_image: image.chain_image().map(str::to_string),
        owner: image.owner().map(str::to_string),
        build_key: image.build_key().map(str::to_string),
        base,
        annotations: image.annotations(),
        layers: image
            .layers()
            .iter()
            .zip(&image.diff_ids)
            .enumerate()
            .map(|(i, (l, d))| LayerSummary {
                digest: l.digest().to_string(),
                diff_id: d.to_string(),
                media_type: l.media_type().to_string(),
                size: l.size(),
                own: i >= own_from,
            })
            .collect(),
        provenance: provenance_of(store, &image.digest)?,
        manifest,
        config,
    })
}
