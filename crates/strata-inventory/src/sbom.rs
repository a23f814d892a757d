//! Software bills of materials of an [`Inventory`]: SPDX 2.3 JSON and CycloneDX 1.6 JSON, each
//! package with its purl, its source package, and the tier, team, build and layer that installed it.
//!
//! The documents are written with serde structs here, by hand: no maintained Rust crate writes both
//! formats (`spdx-rs` is unmaintained and stops at SPDX 2.2; the `cyclonedx-bom` crate does not
//! write 1.6 with the fields used here). Only the fields strata fills are modelled. The outputs are
//! checked by the reference validators from PyPI (`pyspdxtools`, `cyclonedx-python-lib`) in the
//! CLI tests.
//!
//! Where strata's own facts go:
//! - SPDX: each binary package is `CONTAINS`-ed by the image package and `GENERATED_FROM` its
//!   source package (a package of purpose `SOURCE`); tier, team, build and layer are package
//!   annotations whose comment reads `strata:tier=acme/corebuild` and so on.
//! - CycloneDX: the source package is the component's `pedigree.ancestors[0]`; tier, team, build
//!   and layer are `properties` named [`PROP_TIER`], [`PROP_TEAM`], [`PROP_BUILD`],
//!   [`PROP_LAYER`] (and the source's name and version [`PROP_SOURCE_NAME`],
//!   [`PROP_SOURCE_VERSION`], for readers that do not follow pedigree).

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::attribution::{InstalledPackage, Inventory, LayerCredit};
use crate::package::{Distro, Ecosystem, Package};

/// The in-toto predicate type of an SPDX document (the in-toto attestation framework's SPDX
/// predicate).
pub const SPDX_PREDICATE_TYPE: &str = "https://spdx.dev/Document";
/// The in-toto predicate type of a CycloneDX document.
pub const CYCLONEDX_PREDICATE_TYPE: &str = "https://cyclonedx.org/bom";

/// CycloneDX property: the chain image (tier) whose layer installed the package.
pub const PROP_TIER: &str = "strata:tier";
/// CycloneDX property: the team owning that tier.
pub const PROP_TEAM: &str = "strata:team";
/// CycloneDX property: the build (image name in the store) that added the layer.
pub const PROP_BUILD: &str = "strata:build";
/// CycloneDX property: the digest of the layer that installed the package.
pub const PROP_LAYER: &str = "strata:layer";
/// CycloneDX property: the tier that last upgraded the package, when one did.
pub const PROP_UPGRADED_BY: &str = "strata:upgradedBy";
/// CycloneDX property: the source package's name.
pub const PROP_SOURCE_NAME: &str = "strata:sourceName";
/// CycloneDX property: the source package's version.
pub const PROP_SOURCE_VERSION: &str = "strata:sourceVersion";

/// The two SBOM formats strata writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// SPDX 2.3 JSON.
    Spdx,
    /// CycloneDX 1.6 JSON.
    CycloneDx,
}

impl Format {
    /// The in-toto predicate type an attestation of this format carries.
    pub fn predicate_type(self) -> &'static str {
        match self {
            Format::Spdx => SPDX_PREDICATE_TYPE,
            Format::CycloneDx => CYCLONEDX_PREDICATE_TYPE,
        }
    }
}

/// What an SBOM says about its making, beside the inventory.
#[derive(Debug, Clone)]
pub struct SbomInfo {
    /// When it was made (for a reproducible SBOM: the image's creation time).
    pub created: DateTime<Utc>,
    /// The version of strata that made it.
    pub tool_version: String,
}

/// The SBOM of `inventory` in `format`, as a JSON value.
pub fn to_json(inventory: &Inventory, format: Format, info: &SbomInfo) -> serde_json::Value {
    let value = match format {
        Format::Spdx => serde_json::to_value(spdx(inventory, info)),
        Format::CycloneDx => serde_json::to_value(cyclonedx(inventory, info)),
    };
    value.expect("SBOM structs serialise to JSON")
}

// ---------------------------------------------------------------------------------------------
// purl

/// Percent-encode everything but the purl spec's unreserved characters.
fn pct(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The purl namespace of a distribution: its os-release `ID` (`debian`, `alpine`), lower case;
/// `rhel` is `redhat`, as the purl spec's examples and the scanners spell it.
fn namespace(ecosystem: Ecosystem, distro: Option<&Distro>) -> Option<String> {
    let id = distro.map(|d| d.id.to_ascii_lowercase());
    match (ecosystem, id.as_deref()) {
        (_, Some("rhel")) => Some("redhat".to_string()),
        (_, Some(id)) if !id.is_empty() => Some(id.to_string()),
        (Ecosystem::Deb, _) => Some("debian".to_string()),
        (Ecosystem::Apk, _) => Some("alpine".to_string()),
        (Ecosystem::Rpm, _) => None,
    }
}

/// The `distro` qualifier: `debian-12`, `alpine-3.20.1`.
fn distro_qualifier(distro: Option<&Distro>) -> Option<String> {
    let d = distro?;
    if d.version_id.is_empty() {
        Some(d.id.clone())
    } else {
        Some(format!("{}-{}", d.id, d.version_id))
    }
}

/// The package URL of a package (<https://github.com/package-url/purl-spec>):
/// `pkg:deb/debian/libssl3@3.0.19-1~deb12u2?arch=amd64&distro=debian-12`; rpm puts the epoch in an
/// `epoch` qualifier (`pkg:rpm/redhat/openssl@1.1.1k-7.el8?arch=x86_64&distro=rhel-8.9&epoch=1`).
pub fn purl(package: &Package, distro: Option<&Distro>) -> String {
    purl_of(
        package.ecosystem,
        &package.name,
        &package.version,
        Some(&package.arch)
            .filter(|a| !a.is_empty())
            .map(String::as_str),
        distro,
    )
}

/// The purl of a package's source package (`arch=source`, as Debian names source packages).
pub fn source_purl(package: &Package, distro: Option<&Distro>) -> String {
    purl_of(
        package.ecosystem,
        &package.source_name,
        &package.source_version,
        Some("source"),
        distro,
    )
}

fn purl_of(
    ecosystem: Ecosystem,
    name: &str,
    version: &str,
    arch: Option<&str>,
    distro: Option<&Distro>,
) -> String {
    let mut version = version.to_string();
    let mut qualifiers: BTreeMap<&str, String> = BTreeMap::new();
    if ecosystem == Ecosystem::Rpm
        && let Some((epoch, rest)) = version.split_once(':')
    {
        if epoch != "0" {
            qualifiers.insert("epoch", epoch.to_string());
        }
        version = rest.to_string();
    }
    if let Some(arch) = arch {
        qualifiers.insert("arch", arch.to_string());
    }
    if let Some(d) = distro_qualifier(distro) {
        qualifiers.insert("distro", d);
    }
    let mut out = format!("pkg:{}/", ecosystem.as_str());
    if let Some(ns) = namespace(ecosystem, distro) {
        out.push_str(&pct(&ns));
        out.push('/');
    }
    out.push_str(&pct(name));
    if !version.is_empty() {
        out.push('@');
        out.push_str(&pct(&version));
    }
    for (i, (k, v)) in qualifiers.iter().enumerate() {
        out.push(if i == 0 { '?' } else { '&' });
        out.push_str(k);
        out.push('=');
        out.push_str(&pct(v));
    }
    out
}

fn has_source(p: &Package) -> bool {
    p.source_name != p.name || p.source_version != p.version
}

fn rfc3339(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn hash_hex(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    hex::encode(h.finalize())
}

/// The tier as written in an SBOM: the chain image, else the build, else the layer's place.
pub fn tier_of(credit: &LayerCredit) -> String {
    credit
        .chain_image
        .clone()
        .or_else(|| credit.build.clone())
        .unwrap_or_else(|| format!("layer {}", credit.index))
}

/// strata's facts about one package as (name, value) pairs, in a fixed order.
fn facts(p: &InstalledPackage) -> Vec<(&'static str, String)> {
    let mut out = vec![(PROP_TIER, tier_of(&p.installed_by))];
    if let Some(team) = &p.installed_by.owner {
        out.push((PROP_TEAM, team.clone()));
    }
    if let Some(build) = &p.installed_by.build {
        out.push((PROP_BUILD, build.clone()));
    }
    out.push((PROP_LAYER, p.installed_by.digest.clone()));
    if let Some(up) = &p.upgraded_by {
        out.push((PROP_UPGRADED_BY, tier_of(up)));
    }
    out
}

// ---------------------------------------------------------------------------------------------
// SPDX 2.3

/// An SPDX 2.3 document (the fields strata writes).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SpdxDocument {
    /// `SPDX-2.3`.
    pub spdx_version: String,
    /// `CC0-1.0`, as the spec requires.
    pub data_license: String,
    /// `SPDXRef-DOCUMENT`.
    #[serde(rename = "SPDXID")]
    pub spdx_id: String,
    /// The document's name: the image.
    pub name: String,
    /// A unique URI for this document.
    pub document_namespace: String,
    /// When and by what it was made.
    pub creation_info: SpdxCreationInfo,
    /// The image, its packages, and their source packages.
    pub packages: Vec<SpdxPackage>,
    /// DESCRIBES, CONTAINS, GENERATED_FROM.
    pub relationships: Vec<SpdxRelationship>,
}

/// `creationInfo`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SpdxCreationInfo {
    /// RFC 3339 UTC time.
    pub created: String,
    /// `Tool: strata-VERSION`.
    pub creators: Vec<String>,
}

/// One SPDX package.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SpdxPackage {
    /// `SPDXRef-…`.
    #[serde(rename = "SPDXID")]
    pub spdx_id: String,
    /// The package's name.
    pub name: String,
    /// Its version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_info: Option<String>,
    /// `NOASSERTION`.
    pub download_location: String,
    /// `false`: no files are listed.
    pub files_analyzed: bool,
    /// `CONTAINER`, `OPERATING-SYSTEM`, `SOURCE`, …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_package_purpose: Option<String>,
    /// The package's name in the source package (`sourceInfo`), free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_info: Option<String>,
    /// The purl.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub external_refs: Vec<SpdxExternalRef>,
    /// strata's facts (tier, team, build, layer).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub annotations: Vec<SpdxAnnotation>,
}

/// An external reference (`PACKAGE-MANAGER` `purl`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SpdxExternalRef {
    /// `PACKAGE-MANAGER`.
    pub reference_category: String,
    /// `purl`.
    pub reference_type: String,
    /// The purl.
    pub reference_locator: String,
}

/// An annotation.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SpdxAnnotation {
    /// RFC 3339 UTC time.
    pub annotation_date: String,
    /// `OTHER`.
    pub annotation_type: String,
    /// `Tool: strata-VERSION`.
    pub annotator: String,
    /// `strata:tier=acme/corebuild`.
    pub comment: String,
}

/// A relationship between two SPDX elements.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SpdxRelationship {
    /// The subject.
    pub spdx_element_id: String,
    /// `DESCRIBES`, `CONTAINS`, `GENERATED_FROM`.
    pub relationship_type: String,
    /// The object.
    pub related_spdx_element: String,
}

fn rel(a: &str, kind: &str, b: &str) -> SpdxRelationship {
    SpdxRelationship {
        spdx_element_id: a.to_string(),
        relationship_type: kind.to_string(),
        related_spdx_element: b.to_string(),
    }
}

fn purl_ref(purl: String) -> Vec<SpdxExternalRef> {
    vec![SpdxExternalRef {
        reference_category: "PACKAGE-MANAGER".to_string(),
        reference_type: "purl".to_string(),
        reference_locator: purl,
    }]
}

/// The SPDX 2.3 document of `inventory`.
pub fn spdx(inventory: &Inventory, info: &SbomInfo) -> SpdxDocument {
    let created = rfc3339(&info.created);
    let tool = format!("Tool: strata-{}", info.tool_version);
    let distro = inventory.distro.as_ref();
    let image_id = "SPDXRef-Image".to_string();
    let mut packages = vec![SpdxPackage {
        spdx_id: image_id.clone(),
        name: inventory.image.clone(),
        version_info: Some(inventory.digest.clone()),
        download_location: "NOASSERTION".to_string(),
        files_analyzed: false,
        primary_package_purpose: Some("CONTAINER".to_string()),
        source_info: None,
        external_refs: Vec::new(),
        annotations: Vec::new(),
    }];
    let mut relationships = vec![rel("SPDXRef-DOCUMENT", "DESCRIBES", &image_id)];
    // Source packages, one element each however many binaries they build.
    let mut sources: BTreeMap<(Ecosystem, &str, &str), String> = BTreeMap::new();
    for (i, p) in inventory.packages.iter().enumerate() {
        let pkg = &p.package;
        let id = format!("SPDXRef-Package-{i}");
        packages.push(SpdxPackage {
            spdx_id: id.clone(),
            name: pkg.name.clone(),
            version_info: Some(pkg.version.clone()),
            download_location: "NOASSERTION".to_string(),
            files_analyzed: false,
            primary_package_purpose: Some("LIBRARY".to_string()),
            source_info: Some(format!(
                "built from source package {} {}",
                pkg.source_name, pkg.source_version
            )),
            external_refs: purl_ref(purl(pkg, distro)),
            annotations: facts(p)
                .into_iter()
                .map(|(k, v)| SpdxAnnotation {
                    annotation_date: created.clone(),
                    annotation_type: "OTHER".to_string(),
                    annotator: tool.clone(),
                    comment: format!("{k}={v}"),
                })
                .collect(),
        });
        relationships.push(rel(&image_id, "CONTAINS", &id));
        if has_source(pkg) {
            let key = (
                pkg.ecosystem,
                pkg.source_name.as_str(),
                pkg.source_version.as_str(),
            );
            let source_id = match sources.get(&key) {
                Some(id) => id.clone(),
                None => {
                    let source_id = format!("SPDXRef-Source-{}", sources.len());
                    sources.insert(key, source_id.clone());
                    packages.push(SpdxPackage {
                        spdx_id: source_id.clone(),
                        name: pkg.source_name.clone(),
                        version_info: Some(pkg.source_version.clone()),
                        download_location: "NOASSERTION".to_string(),
                        files_analyzed: false,
                        primary_package_purpose: Some("SOURCE".to_string()),
                        source_info: None,
                        external_refs: purl_ref(source_purl(pkg, distro)),
                        annotations: Vec::new(),
                    });
                    source_id
                }
            };
            relationships.push(rel(&id, "GENERATED_FROM", &source_id));
        }
    }
    SpdxDocument {
        spdx_version: "SPDX-2.3".to_string(),
        data_license: "CC0-1.0".to_string(),
        spdx_id: "SPDXRef-DOCUMENT".to_string(),
        name: inventory.image.clone(),
        document_namespace: format!(
            "https://strata.dev/spdx/{}",
            hash_hex(&[&inventory.image, &inventory.digest, &created])
        ),
        creation_info: SpdxCreationInfo {
            created,
            creators: vec![tool],
        },
        packages,
        relationships,
    }
}

// ---------------------------------------------------------------------------------------------
// CycloneDX 1.6

/// A CycloneDX 1.6 BOM (the fields strata writes).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CycloneDxBom {
    /// `CycloneDX`.
    pub bom_format: String,
    /// `1.6`.
    pub spec_version: String,
    /// `urn:uuid:…`, derived from the image and the time.
    pub serial_number: String,
    /// 1.
    pub version: u32,
    /// The image and the tool.
    pub metadata: CdxMetadata,
    /// The packages.
    pub components: Vec<CdxComponent>,
}

/// `metadata`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CdxMetadata {
    /// RFC 3339 UTC time.
    pub timestamp: String,
    /// strata.
    pub tools: CdxTools,
    /// The image (`type: container`).
    pub component: CdxComponent,
}

/// `metadata.tools` (1.5+ form).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CdxTools {
    /// The tools as components.
    pub components: Vec<CdxComponent>,
}

/// A CycloneDX component.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CdxComponent {
    /// `container`, `application`, `library`.
    #[serde(rename = "type")]
    pub type_: String,
    /// A reference unique in the BOM (the purl).
    #[serde(rename = "bom-ref", default, skip_serializing_if = "Option::is_none")]
    pub bom_ref: Option<String>,
    /// The name.
    pub name: String,
    /// The version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The purl.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purl: Option<String>,
    /// The source package.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pedigree: Option<CdxPedigree>,
    /// strata's facts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub properties: Vec<CdxProperty>,
}

/// `pedigree`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CdxPedigree {
    /// The source package.
    pub ancestors: Vec<CdxComponent>,
}

/// A name/value property.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CdxProperty {
    /// The name (`strata:tier`).
    pub name: String,
    /// The value.
    pub value: String,
}

fn prop(name: &str, value: String) -> CdxProperty {
    CdxProperty {
        name: name.to_string(),
        value,
    }
}

/// The CycloneDX 1.6 BOM of `inventory`.
pub fn cyclonedx(inventory: &Inventory, info: &SbomInfo) -> CycloneDxBom {
    let timestamp = rfc3339(&info.created);
    let distro = inventory.distro.as_ref();
    let h = hash_hex(&[&inventory.image, &inventory.digest, &timestamp]);
    // A name-based UUID (version 8 layout: the variant and version bits set on a hash).
    let serial = format!(
        "urn:uuid:{}-{}-8{}-{:x}{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        8 | (u8::from_str_radix(&h[16..17], 16).unwrap_or(0) & 3),
        &h[17..20],
        &h[20..32]
    );
    let components = inventory
        .packages
        .iter()
        .map(|p| {
            let pkg = &p.package;
            let purl = purl(pkg, distro);
            let mut properties: Vec<CdxProperty> =
                facts(p).into_iter().map(|(k, v)| prop(k, v)).collect();
            properties.push(prop(PROP_SOURCE_NAME, pkg.source_name.clone()));
            properties.push(prop(PROP_SOURCE_VERSION, pkg.source_version.clone()));
            if !pkg.arch.is_empty() {
                properties.push(prop("strata:arch", pkg.arch.clone()));
            }
            CdxComponent {
                type_: "library".to_string(),
                bom_ref: Some(purl.clone()),
                name: pkg.name.clone(),
                version: Some(pkg.version.clone()),
                purl: Some(purl),
                pedigree: has_source(pkg).then(|| CdxPedigree {
                    ancestors: vec![CdxComponent {
                        type_: "library".to_string(),
                        name: pkg.source_name.clone(),
                        version: Some(pkg.source_version.clone()),
                        purl: Some(source_purl(pkg, distro)),
                        ..CdxComponent::default()
                    }],
                }),
                properties,
            }
        })
        .collect();
    CycloneDxBom {
        bom_format: "CycloneDX".to_string(),
        spec_version: "1.6".to_string(),
        serial_number: serial,
        version: 1,
        metadata: CdxMetadata {
            timestamp,
            tools: CdxTools {
                components: vec![CdxComponent {
                    type_: "application".to_string(),
                    name: "strata".to_string(),
                    version: Some(info.tool_version.clone()),
                    ..CdxComponent::default()
                }],
            },
            component: CdxComponent {
                type_: "container".to_string(),
                bom_ref: Some(format!("image:{}", inventory.digest)),
                name: inventory.image.clone(),
                version: Some(inventory.digest.clone()),
                ..CdxComponent::default()
            },
        },
        components,
    }
}

// ---------------------------------------------------------------------------------------------
// Signed SBOM referrers

/// Why an SBOM could not be made, attached or verified.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SbomError {
    /// The image's inventory could not be read.
    #[error("cannot read the packages of {image}")]
    Inventory {
        /// The image.
        image: String,
        /// Why.
        source: Box<crate::InventoryError>,
    },
    /// The attestation could not be stored or read.
    #[error("the SBOM attestation of {image}")]
    Attest {
        /// The image.
        image: String,
        /// Why.
        source: Box<strata_attest::AttestError>,
    },
    /// No attached SBOM of the asked format carries a signature by the image's owner.
    #[error("{image} has no {format} SBOM signed by a key of {team}{}", reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default())]
    NotSigned {
        /// The image.
        image: String,
        /// `SPDX` or `CycloneDX`.
        format: &'static str,
        /// The owner team whose keys were tried.
        team: String,
        /// Why the best candidate failed, when there was one.
        reason: Option<String>,
    },
}

impl Format {
    fn label(self) -> &'static str {
        match self {
            Format::Spdx => "SPDX",
            Format::CycloneDx => "CycloneDX",
        }
    }
}

/// The in-toto statement that `document` (an SBOM in `format`) describes image `name` with
/// manifest `digest`.
pub fn statement(
    name: &str,
    digest: &strata_oci::Digest,
    format: Format,
    document: serde_json::Value,
) -> strata_attest::Statement {
    strata_attest::Statement {
        type_: strata_attest::statement::STATEMENT_TYPE.to_string(),
        subject: vec![strata_attest::statement::Subject::image(name, digest)],
        predicate_type: format.predicate_type().to_string(),
        predicate: document,
    }
}

/// What a build calls once its image is stored and its provenance attached: the SPDX and the
/// CycloneDX SBOM of `image` (named `name`, its full reference), each signed with `key` and
/// attached as a referrer beside the provenance. Returns the attestation manifests.
pub fn attest(
    store: &strata_oci::Store,
    catalog: &strata_inspect::Catalog,
    image: &strata_inspect::StoredImage,
    name: &str,
    key: &strata_attest::PrivateKey,
    info: &SbomInfo,
) -> Result<Vec<oci_spec::image::Descriptor>, SbomError> {
    let inventory =
        crate::inventory(store, catalog, image).map_err(|source| SbomError::Inventory {
            image: name.to_string(),
            source: Box::new(source),
        })?;
    let mut out = Vec::new();
    for format in [Format::Spdx, Format::CycloneDx] {
        let statement = statement(
            name,
            &image.digest,
            format,
            to_json(&inventory, format, info),
        );
        let envelope = strata_attest::sign(&statement, key);
        out.push(
            strata_attest::attach(store, &image.descriptor, &envelope).map_err(|source| {
                SbomError::Attest {
                    image: name.to_string(),
                    source: Box::new(source),
                }
            })?,
        );
    }
    Ok(out)
}

/// The SBOM in `format` attached to the image whose manifest is `digest`, signed by one of
/// `trusted` (the owner `team`'s keys) and naming that digest as its subject. The newest such
/// attestation is not chosen by time: any that verifies is the image's (they describe the same
/// immutable image).
pub fn verified(
    store: &strata_oci::Store,
    image: &str,
    digest: &strata_oci::Digest,
    format: Format,
    team: &str,
    trusted: &[strata_attest::PublicKey],
) -> Result<serde_json::Value, SbomError> {
    let found =
        strata_attest::artifact::find_each(store, digest).map_err(|source| SbomError::Attest {
            image: image.to_string(),
            source: Box::new(source),
        })?;
    let mut reason = None;
    for attestation in found.into_iter().flatten() {
        let Ok(statement) = attestation.envelope.statement_unverified() else {
            continue;
        };
        if statement.predicate_type != format.predicate_type() {
            continue;
        }
        match attestation.envelope.verify(trusted) {
            Ok(v) if v.statement.subject_digests().contains(digest) => {
                return Ok(v.statement.predicate);
            }
            Ok(_) => reason = Some("its subject is another image".to_string()),
            Err(e) => reason = Some(e.to_string()),
        }
    }
    Err(SbomError::NotSigned {
        image: image.to_string(),
        format: format.label(),
        team: team.to_string(),
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkg(eco: Ecosystem, name: &str, version: &str, arch: &str) -> Package {
        Package {
            ecosystem: eco,
            name: name.into(),
            version: version.into(),
            arch: arch.into(),
            source_name: name.into(),
            source_version: version.into(),
        }
    }

    fn distro(id: &str, v: &str) -> Distro {
        Distro {
            id: id.into(),
            version_id: v.into(),
            pretty_name: String::new(),
        }
    }

    #[test]
    fn purls_follow_the_spec() {
        let d = distro("debian", "12");
        assert_eq!(
            purl(
                &pkg(Ecosystem::Deb, "libssl3", "3.0.19-1~deb12u2", "amd64"),
                Some(&d)
            ),
            "pkg:deb/debian/libssl3@3.0.19-1~deb12u2?arch=amd64&distro=debian-12"
        );
        // An epoch's colon and a plus are percent-encoded.
        assert_eq!(
            purl(
                &pkg(Ecosystem::Deb, "libstdc++6", "1:2.3+b1", "amd64"),
                Some(&d)
            ),
            "pkg:deb/debian/libstdc%2B%2B6@1%3A2.3%2Bb1?arch=amd64&distro=debian-12"
        );
        let r = distro("rhel", "8.9");
        assert_eq!(
            purl(
                &pkg(Ecosystem::Rpm, "openssl", "1:1.1.1k-7.el8", "x86_64"),
                Some(&r)
            ),
            "pkg:rpm/redhat/openssl@1.1.1k-7.el8?arch=x86_64&distro=rhel-8.9&epoch=1"
        );
        let a = distro("alpine", "3.20.1");
        assert_eq!(
            purl(&pkg(Ecosystem::Apk, "musl", "1.2.5-r0", "x86_64"), Some(&a)),
            "pkg:apk/alpine/musl@1.2.5-r0?arch=x86_64&distro=alpine-3.20.1"
        );
    }
}
