//! Chain-of-custody verification: from an image down to its base, who built every tier, from
//! what, on top of exactly which parent.
//!
//! [`verify_chain`] checks, at each tier (a "link"):
//! 1. an attestation exists ([`crate::artifact::find`]) and its DSSE signature verifies against the
//!    keys of the image's owner team (a key of another team is named as such);
//! 2. the payload is an in-toto statement with strata's SLSA v1 provenance;
//! 3. the owner in the provenance is the owner in the trust configuration (the chain);
//! 4. the recorded parent is the image actually underneath: the manifest's
//!    `org.opencontainers.image.base.digest` annotation agrees, the parent is in the store, and its
//!    layers are a prefix of this image's layers (unless the provenance says everything was squashed);
//! 5. the statement's subject is this manifest's digest;
//! 6. the policy: the team required for the tier, the maximum age, and at the bottom the allowed
//!    base digests.
//!
//! The walk stops at the first broken link and names it; the [`Report`] lists the links checked,
//! top first, and serialises to JSON.
//!
//! Across projects ([`verify_chain_with`]): an image of another project (named with its
//! registry, owned through an external rule, [`TrustConfig::set_external_owner`]) whose attestation
//! or parent manifest the store lacks is read through an [`Upstream`] from the registry it came
//! from, and checked like any other link.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use oci_spec::image::{Descriptor, ImageManifest, MediaType};
use serde::Serialize;
use strata_oci::{Digest, Reference, Store};

use crate::artifact::{ATTESTATION_ARTIFACT_TYPE, Attestation, attestation_from, find_each};
use crate::error::{AttestError, KeyError, VerifyError};
use crate::evidence;
use crate::keys::{KeyId, PublicKey};
use crate::policy::{Policy, format_age};
use crate::provenance::{DEP_IMPORT, Provenance, rfc3339};
use crate::vendor::{Expected, VendorKey, repository_of};

/// Whom to trust: each team's public keys, and each image's owner team (and tier), as the chain
/// file declares them. Images are named by repository path (`acme/corebuild`); the registry and
/// tag are ignored, so the same image verifies wherever it was pushed.
#[derive(Clone, Debug, Default)]
pub struct TrustConfig {
    teams: BTreeMap<String, Vec<PublicKey>>,
    owners: BTreeMap<String, String>,
    tiers: BTreeMap<String, String>,
    /// Owner rules for other projects' images: a full name (`HOST/PATH`) or prefix (`HOST/PATH/*`).
    external: BTreeMap<String, String>,
    /// The chain's bought bases that must carry their vendor's signature, by repository path.
    vendors: BTreeMap<String, VendorRequirement>,
}

/// A bought base that must carry its vendor's signature (`signed_by` in the chain file): the walk
/// finds the signature kept in the store at its link and verifies it again with `key`.
#[derive(Clone, Debug)]
pub struct VendorRequirement {
    /// The reference the base is bought as (`HOST/NAME:TAG@sha256:...`): its repository is the
    /// one the signature must name.
    pub reference: String,
    /// The key file, as the chain file names it (for messages).
    pub key_file: String,
    /// The vendor's key.
    pub key: VendorKey,
}

impl TrustConfig {
    /// An empty configuration: trusts nobody.
    pub fn new() -> TrustConfig {
        TrustConfig::default()
    }

    /// Trust `key` for `team`.
    pub fn add_key(&mut self, team: &str, key: PublicKey) {
        let keys = self.teams.entry(team.to_string()).or_default();
        if !keys.contains(&key) {
            keys.push(key);
        }
    }

    /// Trust the keys in the PEM files `paths` for `team`; an error names the file at fault.
    pub fn add_key_files(&mut self, team: &str, paths: &[PathBuf]) -> Result<(), KeyError> {
        self.teams.entry(team.to_string()).or_default();
        for path in paths {
            self.add_key(team, PublicKey::load(path)?);
        }
        Ok(())
    }

    /// Declare that `image` (any reference form: `acme/corebuild`, `localhost/acme/corebuild:7`) is
    /// owned by `team`, with an optional tier label.
    pub fn set_owner(&mut self, image: &str, team: &str, tier: Option<&str>) {
        let key = image_key(image);
        self.owners.insert(key.clone(), team.to_string());
        match tier {
            Some(tier) => self.tiers.insert(key, tier.to_string()),
            None => self.tiers.remove(&key),
        };
    }

    /// Declare that the images of another project matching `rule` must be signed by `team`:
    /// `rule` is a repository with its registry (`registry.acme.example/ops/corebuild`) or a prefix
    /// ending in `/*` (`registry.acme.example/ops/*`, `registry.acme.example/*`). An image that is not one of the chain's is
    /// owned by the team of the exact rule naming it, else of the longest prefix rule it is under.
    pub fn set_external_owner(&mut self, rule: &str, team: &str) {
        let rule = match rule.strip_suffix("/*") {
            // Everything under a registry host.
            Some(host) if !host.contains('/') => rule.to_string(),
            Some(prefix) => format!("{}/*", full_name(prefix)),
            None => full_name(rule),
        };
        self.external.insert(rule, team.to_string());
    }

    /// The owner team of `image`: the chain's owner of its repository path (whatever the
    /// registry), else the external rule covering its full name.
    pub fn owner_of(&self, image: &str) -> Option<&str> {
        self.chain_owner_of(image)
            .or_else(|| self.external_owner_of(image))
    }

    /// The chain's owner of `image`'s repository path.
    fn chain_owner_of(&self, image: &str) -> Option<&str> {
        self.owners.get(&image_key(image)).map(String::as_str)
    }

    /// The team an external owner rule gives `image` (a reference with its registry).
    pub fn external_owner_of(&self, image: &str) -> Option<&str> {
        let name = full_name(image);
        if let Some(team) = self.external.get(&name) {
            return Some(team);
        }
        self.external
            .iter()
            .filter_map(|(rule, team)| {
                let prefix = rule.strip_suffix("/*")?;
                name.strip_prefix(prefix)
                    .is_some_and(|rest| rest.starts_with('/'))
                    .then_some((prefix.len(), team.as_str()))
            })
            .max_by_key(|(len, _)| *len)
            .map(|(_, team)| team)
    }

    /// The name a link shows and is judged by: a chain image's repository path (`acme/app`), or
    /// for an image of another registry not in the chain its full name (`HOST/ops/corebuild`).
    fn link_name(&self, reference: &str) -> String {
        if self.chain_owner_of(reference).is_some() {
            return image_key(reference);
        }
        match Reference::parse(reference) {
            Ok(r) if r.registry() != strata_oci::reference::DEFAULT_REGISTRY => {
                format!("{}/{}", r.registry(), r.repository())
            }
            _ => image_key(reference),
        }
    }

    /// Declare that the chain image `image` is a bought base that must carry the vendor signature
    /// `requirement` describes.
    pub fn set_vendor(&mut self, image: &str, requirement: VendorRequirement) {
        self.vendors.insert(image_key(image), requirement);
    }

    /// [`TrustConfig::set_vendor`] with the key read from `path` (`shown`: the file as the chain
    /// file names it); an error names the image and the file.
    pub fn add_vendor_key_file(
        &mut self,
        image: &str,
        reference: &str,
        path: &Path,
        shown: &str,
    ) -> Result<(), KeyError> {
        let key = VendorKey::load(path).map_err(|source| KeyError::VendorKey {
            image: image.to_string(),
            source,
        })?;
        self.set_vendor(
            image,
            VendorRequirement {
                reference: reference.to_string(),
                key_file: shown.to_string(),
                key,
            },
        );
        Ok(())
    }

    /// The vendor signature the chain image `image` must carry, if it is a bought base with
    /// `signed_by`.
    pub fn vendor_of(&self, image: &str) -> Option<&VendorRequirement> {
        self.chain_owner_of(image)?;
        self.vendors.get(&image_key(image))
    }

    /// The tier label the chain gives `image`.
    pub fn tier_of(&self, image: &str) -> Option<&str> {
        self.tiers.get(&image_key(image)).map(String::as_str)
    }

    /// The trusted keys of `team` (empty for an unknown team).
    pub fn keys_of(&self, team: &str) -> &[PublicKey] {
        self.teams.get(team).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The team trusting the key `id`, if any.
    pub fn team_of_key(&self, id: &KeyId) -> Option<&str> {
        self.teams
            .iter()
            .find(|(_, keys)| keys.iter().any(|k| k.id() == id))
            .map(|(team, _)| team.as_str())
    }
}

/// The repository path of a reference, the key of owners and tiers.
fn image_key(image: &str) -> String {
    Reference::parse(image)
        .map(|r| r.repository().to_string())
        .unwrap_or_else(|_| image.to_string())
}

/// `HOST/PATH` of a reference (`localhost/PATH` for one without a registry), or the text itself
/// when it does not parse.
fn full_name(image: &str) -> String {
    Reference::parse(image)
        .map(|r| format!("{}/{}", r.registry(), r.repository()))
        .unwrap_or_else(|_| image.to_string())
}

/// The registry host of a link name, when it names one other than the store's `localhost`.
fn registry_of(name: &str) -> Option<String> {
    Reference::parse(name)
        .ok()
        .map(|r| r.registry().to_string())
        .filter(|r| r != strata_oci::reference::DEFAULT_REGISTRY)
}

/// A fetch from a registry failed; any error the implementation has, with its causes.
pub type FetchError = Box<dyn std::error::Error + Send + Sync>;

/// Where [`verify_chain_with`] reads what the local store lacks about an image of another project
/// (an external image, owned through [`TrustConfig::set_external_owner`]): its manifest and its
/// attestations, from the registry it came from. strata-attest does no HTTP: the CLI implements
/// this with strata-remote. Nothing fetched is trusted: manifests and blobs are checked here
/// against their digests, envelopes against the owner's keys.
pub trait Upstream {
    /// The bytes of manifest `digest` in `repository` (`HOST/PATH`).
    fn manifest(&self, repository: &str, digest: &Digest) -> Result<Vec<u8>, FetchError>;
    /// The referrers of manifest `digest` in `repository`: the referrers API, or the
    /// `<alg>-<hex>` tag schema on a registry without it. None known is an empty list.
    fn referrers(&self, repository: &str, digest: &Digest) -> Result<Vec<Descriptor>, FetchError>;
    /// The bytes of blob `digest` in `repository` (an envelope: small; the implementation bounds
    /// what it reads).
    fn blob(&self, repository: &str, digest: &Digest) -> Result<Vec<u8>, FetchError>;
}

/// At most this many referrers of one image are read from a registry.
const MAX_REMOTE_REFERRERS: usize = 64;

/// The verdict of one link.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Every check passed.
    Ok,
    /// A check failed: the chain of custody is broken here.
    Broken,
}

/// Why a link is broken.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Problem {
    /// The image is not in the trust configuration: nobody owns it.
    UnknownImage {
        /// The image's name, or its digest when it has none.
        image: String,
    },
    /// The owner team has no trusted key.
    NoTrustedKeys {
        /// The team.
        team: String,
    },
    /// No attestation is attached to the image.
    MissingAttestation,
    /// An attestation in the store is not a DSSE envelope.
    BadAttestation {
        /// The attestation manifest.
        attestation: Digest,
        /// What is wrong.
        reason: String,
    },
    /// The attestation's signature does not verify.
    Signature {
        /// Why.
        reason: VerifyError,
    },
    /// The attestation is signed by a key trusted for another team.
    WrongTeam {
        /// The owner team, whose key was expected.
        owner: String,
        /// The team whose key signed.
        signed_by: String,
        /// The key.
        key_id: KeyId,
    },
    /// The statement is not strata's SLSA v1 provenance.
    NotProvenance {
        /// What is wrong.
        reason: String,
    },
    /// The provenance names another owner than the chain.
    OwnerMismatch {
        /// The owner the chain declares.
        chain: String,
        /// The owner the provenance records.
        provenance: String,
    },
    /// The provenance records a different tier than the chain.
    TierMismatch {
        /// The chain's tier.
        chain: String,
        /// The provenance's tier.
        provenance: Option<String>,
    },
    /// The provenance records a parent other than the one the image says it is built on.
    ParentMismatch {
        /// The parent in the signed provenance.
        recorded: Digest,
        /// The parent in the manifest's base annotation (None: no annotation).
        annotated: Option<Digest>,
    },
    /// The image says it is built on a parent that the provenance does not record.
    UnrecordedParent {
        /// The parent in the base annotation.
        annotated: Digest,
    },
    /// The recorded parent is not in the store.
    ParentMissing {
        /// The parent.
        parent: Digest,
    },
    /// The recorded parent's layers are not the first layers of this image.
    ParentNotUnderneath {
        /// The parent.
        parent: Digest,
    },
    /// The statement is about another image.
    SubjectMismatch {
        /// The digests in the statement's subject.
        subjects: Vec<Digest>,
    },
    /// The policy requires another team for this tier.
    PolicyTierTeam {
        /// The tier.
        tier: String,
        /// The team the policy requires.
        required: String,
        /// The owner.
        owner: String,
    },
    /// The image was built longer ago than the policy allows (or records no build time).
    PolicyTooOld {
        /// When it was built, if recorded.
        built: Option<String>,
        /// The policy's maximum age.
        max_age: String,
    },
    /// The bottom tier is not an allowed base.
    PolicyBase {
        /// The digests checked (the manifest's and its imported source's).
        digests: Vec<Digest>,
    },
    /// What the store lacks could not be read from the registry the image came from.
    Upstream {
        /// The repository asked (`HOST/PATH@DIGEST`).
        image: String,
        /// Why (the error and its causes).
        reason: String,
    },
    /// A bought base that must be signed by its vendor has no vendor signature in the store.
    MissingVendorSignature {
        /// The base, `HOST/NAME@DIGEST`.
        image: String,
        /// The vendor key file, as the chain file names it.
        key: String,
    },
    /// The vendor signature kept in the store does not vouch for the bought base.
    VendorSignature {
        /// The base, `HOST/NAME@DIGEST`.
        image: String,
        /// The vendor key file, as the chain file names it.
        key: String,
        /// Why (the refusal, or why the stored signature cannot be read or checked).
        reason: String,
    },
    /// The parents loop back to an image already walked.
    Cycle {
        /// The image seen twice.
        digest: Digest,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::UnknownImage { image } => {
                write!(
                    f,
                    "{image} is not an image of the chain: no owner team is known"
                )
            }
            Problem::NoTrustedKeys { team } => {
                write!(f, "team {team} has no trusted public key")
            }
            Problem::MissingAttestation => write!(f, "no signed provenance is attached"),
            Problem::BadAttestation {
                attestation,
                reason,
            } => write!(f, "attestation {attestation} is unreadable: {reason}"),
            Problem::Signature { reason } => write!(f, "{reason}"),
            Problem::WrongTeam {
                owner,
                signed_by,
                key_id,
            } => write!(
                f,
                "signed by team {signed_by}'s key {}, not by the owner {owner}",
                key_id.short()
            ),
            Problem::NotProvenance { reason } => write!(f, "{reason}"),
            Problem::OwnerMismatch { chain, provenance } => write!(
                f,
                "the provenance says the owner is {provenance}, the chain says {chain}"
            ),
            Problem::TierMismatch { chain, provenance } => write!(
                f,
                "the provenance says the tier is {}, the chain says {chain}",
                provenance.as_deref().unwrap_or("(none)")
            ),
            Problem::ParentMismatch {
                recorded,
                annotated: Some(annotated),
            } => write!(
                f,
                "parent swapped: the image sits on {annotated} but its provenance records {recorded}"
            ),
            Problem::ParentMismatch {
                recorded,
                annotated: None,
            } => write!(
                f,
                "the provenance records parent {recorded} but the image has no base annotation"
            ),
            Problem::UnrecordedParent { annotated } => write!(
                f,
                "the image sits on {annotated} but its provenance records no parent"
            ),
            Problem::ParentMissing { parent } => {
                write!(f, "the recorded parent {parent} is not in the store")
            }
            Problem::ParentNotUnderneath { parent } => write!(
                f,
                "parent swapped: the layers of the recorded parent {parent} are not this image's first layers"
            ),
            Problem::SubjectMismatch { subjects } => write!(
                f,
                "the provenance is about another image ({})",
                subjects
                    .iter()
                    .map(Digest::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Problem::PolicyTierTeam {
                tier,
                required,
                owner,
            } => write!(
                f,
                "policy: tier {tier} must be owned by {required}, not {owner}"
            ),
            Problem::PolicyTooOld {
                built: Some(built),
                max_age,
            } => write!(f, "policy: built {built}, more than {max_age} ago"),
            Problem::PolicyTooOld {
                built: None,
                max_age,
            } => write!(
                f,
                "policy: the provenance records no build time (max age {max_age})"
            ),
            Problem::PolicyBase { digests } => write!(
                f,
                "policy: the base {} is not an allowed base",
                digests.first().map(Digest::to_string).unwrap_or_default()
            ),
            Problem::Upstream { image, reason } => {
                write!(f, "cannot read {image} from its registry: {reason}")
            }
            Problem::MissingVendorSignature { image, key } => write!(
                f,
                "bought base {image}: no vendor signature in the store (signed_by {key} in strata.toml)"
            ),
            Problem::VendorSignature { image, key, reason } => write!(
                f,
                "bought base {image}: the vendor signature in the store does not verify with \
                 signed_by {key}: {reason}"
            ),
            Problem::Cycle { digest } => write!(f, "the parents loop back to {digest}"),
        }
    }
}

/// One tier of the chain of custody.
#[derive(Clone, Debug, Serialize)]
pub struct Link {
    /// The tier label (the chain's, else the provenance's).
    pub tier: Option<String>,
    /// The image's name (repository path), when known.
    pub image: Option<String>,
    /// The image's manifest digest.
    pub digest: Digest,
    /// The owner team.
    pub team: Option<String>,
    /// The key that signed its provenance.
    pub key_id: Option<KeyId>,
    /// The attestation manifest that was checked.
    pub attestation: Option<Digest>,
    /// The registry repository the attestation was read from, when it was not in the store.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fetched_from: Option<String>,
    /// When it was built (`runDetails.metadata.finishedOn`).
    pub built: Option<String>,
    /// What it was built from: the parent `name@digest`, or an imported source `uri@digest`.
    pub from: Option<String>,
    /// A bought base's vendor signature, verified again from the store (when the chain requires
    /// one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vendor: Option<VendorLink>,
    /// The verdict.
    pub verdict: Verdict,
    /// Why the link is broken, most telling first (empty when ok).
    pub problems: Vec<Problem>,
}

/// The vendor signature that vouched for a bought base at its link.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct VendorLink {
    /// The reference the base is bought as.
    pub reference: String,
    /// The vendor key file, as the chain file names it.
    pub key_file: String,
    /// The key that signed: an OpenPGP primary key's fingerprint, or a cosign key's id (the
    /// sha256 of its SubjectPublicKeyInfo).
    pub key: String,
    /// `simple_signing` or `cosign`.
    pub format: &'static str,
    /// The vendor signature artifact in the store.
    pub evidence: Digest,
}

/// The result of [`verify_chain`]: the links walked, top (the image asked about) first.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The reference asked about.
    pub image: String,
    /// Its manifest digest.
    pub digest: Digest,
    /// True when every link, base included, is ok.
    pub verified: bool,
    /// The links, top first; the walk stops after the first broken one.
    pub links: Vec<Link>,
}

impl Report {
    /// The first broken link, if any.
    pub fn broken(&self) -> Option<&Link> {
        self.links.iter().find(|l| l.verdict == Verdict::Broken)
    }

    /// A one-line summary: `verified: ...` or the broken link and its first problem.
    pub fn summary(&self) -> String {
        match self.broken() {
            None => format!(
                "verified: {} tier{} from {} down to its base",
                self.links.len(),
                if self.links.len() == 1 { "" } else { "s" },
                self.image
            ),
            Some(link) => format!(
                "chain of custody broken at {} ({}): {}",
                link.image.as_deref().unwrap_or("(unnamed image)"),
                link.digest,
                link.problems
                    .first()
                    .map(Problem::to_string)
                    .unwrap_or_default()
            ),
        }
    }
}

impl fmt::Display for Report {
    /// The chain of custody as a table, then the summary line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for link in &self.links {
            let mark = match link.verdict {
                Verdict::Ok => "ok",
                Verdict::Broken => "BROKEN",
            };
            writeln!(
                f,
                "{mark:<6} {:<12} {:<24} {}  team={} key={} built={} from={}",
                link.tier.as_deref().unwrap_or("-"),
                link.image.as_deref().unwrap_or("-"),
                link.digest.short(),
                link.team.as_deref().unwrap_or("-"),
                link.key_id.as_ref().map(KeyId::short).unwrap_or("-"),
                link.built.as_deref().unwrap_or("-"),
                link.from.as_deref().unwrap_or("-"),
            )?;
            if let Some(remote) = &link.fetched_from {
                writeln!(f, "       (attestation read from {remote})")?;
            }
            if let Some(vendor) = &link.vendor {
                writeln!(
                    f,
                    "       base: signed by the vendor, key {} ({} signature {}, signed_by {})",
                    vendor.key,
                    vendor.format,
                    vendor.evidence.short(),
                    vendor.key_file
                )?;
            }
            for problem in &link.problems {
                writeln!(f, "       {problem}")?;
            }
        }
        write!(f, "{}", self.summary())
    }
}

/// Walk from the image `reference` down to its base, checking every link (see the module docs).
/// `now` is the time the policy's maximum age is measured from. Errors are for a store that cannot
/// be read or an image that is not in it; a broken chain is a [`Report`] with `verified: false`.
///
/// A one-image chain: a base imported by the `ops` team, its provenance signed with their key:
///
/// ```
/// use strata_attest::provenance::{ImportBuild, ImportParameters, InternalParameters, Run};
/// use strata_attest::{KeyKind, Policy, PrivateKey, Statement, TrustConfig, attach, dsse};
/// use strata_attest::verify_chain;
/// use strata_oci::{Digest, ImageConfiguration, Store};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let store = Store::init(dir.path())?;
/// let base = store.write_image(&ImageConfiguration::default(), &[], None)?;
/// store.refs().tag("acme/base", base.descriptor())?;
///
/// // The owner team signs the import's provenance; it is attached to the image in the store.
/// let ops = PrivateKey::generate(KeyKind::Ed25519)?;
/// let now = chrono::Utc::now();
/// let provenance = ImportBuild {
///     parameters: ImportParameters {
///         source: "rootfs".into(),
///         location: "base/rootfs.tar".into(),
///     },
///     internal: InternalParameters {
///         owner: "ops".into(),
///         tier: Some("base".into()),
///         ..Default::default()
///     },
///     source_digest: Digest::of(b"the rootfs tarball"),
///     builder_version: "0.1.0".into(),
///     run: Run {
///         invocation_id: "import-1".into(),
///         started_on: now,
///         finished_on: now,
///     },
/// }
/// .provenance();
/// let statement =
///     Statement::provenance_for("localhost/acme/base:latest", &base.digest(), &provenance);
/// attach(&store, base.descriptor(), &dsse::sign(&statement, &ops))?;
///
/// // The verifier trusts the team's public key and knows which team owns the image.
/// let mut trust = TrustConfig::new();
/// trust.add_key("ops", ops.public_key().clone());
/// trust.set_owner("acme/base", "ops", Some("base"));
/// let report = verify_chain(&store, "acme/base", &trust, &Policy::default(), now)?;
/// assert!(report.verified, "{report}");
/// assert_eq!(report.links.len(), 1);
///
/// // Signed by a key the team does not hold, the same chain is broken.
/// let mut strangers = TrustConfig::new();
/// let other = PrivateKey::generate(KeyKind::Ed25519)?;
/// strangers.add_key("ops", other.public_key().clone());
/// strangers.set_owner("acme/base", "ops", Some("base"));
/// let report = verify_chain(&store, "acme/base", &strangers, &Policy::default(), now)?;
/// assert!(!report.verified);
/// # Ok(())
/// # }
/// ```
pub fn verify_chain(
    store: &Store,
    reference: &str,
    trust: &TrustConfig,
    policy: &Policy,
    now: DateTime<Utc>,
) -> Result<Report, AttestError> {
    verify_chain_with(store, reference, trust, policy, now, None)
}

/// [`verify_chain`], following images of other projects through `upstream`: when a link is an
/// external image (owned by an external rule of `trust`, named with its registry) and the store
/// lacks its manifest or holds no attestation of it that verifies, they are read from the
/// registry the image came from. The parent of an external image recorded under a `localhost/`
/// name (its project had no `registry`) is looked for in the same registry as its child.
pub fn verify_chain_with(
    store: &Store,
    reference: &str,
    trust: &TrustConfig,
    policy: &Policy,
    now: DateTime<Utc>,
    upstream: Option<&dyn Upstream>,
) -> Result<Report, AttestError> {
    let descriptor = store.refs().resolve(reference)?;
    let top = store.image_from_descriptor(&descriptor)?;
    let top_digest = top.digest();
    let name = Reference::parse(reference)
        .ok()
        .filter(|_| !reference.starts_with("sha256:") && !reference.starts_with("sha512:"))
        .map(|_| trust.link_name(reference));
    let walk = Walk {
        store,
        trust,
        policy,
        now,
        upstream,
    };
    let mut node = Node {
        digest: top_digest.clone(),
        manifest: top.manifest().clone(),
        name,
    };
    let mut links = Vec::new();
    let mut seen = HashSet::new();
    loop {
        let (mut link, next) = walk.check_link(&node)?;
        if link.problems.is_empty()
            && let Some(required) = node.name.as_deref().and_then(|n| trust.vendor_of(n))
        {
            walk.check_vendor(&node, required, &mut link)?;
        }
        if !seen.insert(node.digest.clone()) {
            link.problems.insert(
                0,
                Problem::Cycle {
                    digest: node.digest.clone(),
                },
            );
        }
        let broken = !link.problems.is_empty();
        link.verdict = if broken { Verdict::Broken } else { Verdict::Ok };
        links.push(link);
        if broken {
            break;
        }
        match next {
            Some(Next::Parent(parent)) => node = *parent,
            Some(Next::Bottom { import }) => {
                if !policy.allowed_base_digests.is_empty() {
                    let mut digests = vec![node.digest.clone()];
                    digests.extend(import);
                    if !digests
                        .iter()
                        .any(|d| policy.allowed_base_digests.contains(d))
                    {
                        let last = links.last_mut().expect("a link was just pushed");
                        last.problems.push(Problem::PolicyBase { digests });
                        last.verdict = Verdict::Broken;
                    }
                }
                break;
            }
            None => break,
        }
    }
    let verified = links.iter().all(|l| l.verdict == Verdict::Ok);
    Ok(Report {
        image: reference.to_string(),
        digest: top_digest,
        verified,
        links,
    })
}

/// One image on the walk: its manifest, and the name it is judged by ([`TrustConfig::link_name`]).
struct Node {
    digest: Digest,
    manifest: ImageManifest,
    name: Option<String>,
}

/// Where the walk goes after a good link.
enum Next {
    /// Down to the recorded parent.
    Parent(Box<Node>),
    /// Nowhere: this is the base; `import` holds the digests of what it was imported from.
    Bottom { import: Vec<Digest> },
}

/// What one walk checks against.
struct Walk<'a> {
    store: &'a Store,
    trust: &'a TrustConfig,
    policy: &'a Policy,
    now: DateTime<Utc>,
    upstream: Option<&'a dyn Upstream>,
}

/// Attestations of one image, each read on its own (a malformed one is a problem, not an error).
type Found = Vec<Result<Attestation, Problem>>;

impl Walk<'_> {
    /// The registry repository (`HOST/PATH`) to read what the store lacks about the image named
    /// `name` from, when it is another project's (owned by an external rule, not the chain) and
    /// there is an [`Upstream`].
    fn remote_of(&self, name: Option<&str>) -> Option<String> {
        let name = name?;
        self.upstream?;
        if self.trust.chain_owner_of(name).is_some() {
            return None;
        }
        self.trust.external_owner_of(name)?;
        registry_of(name).map(|_| full_name(name))
    }

    /// The attestations of `digest` in the store.
    fn local_attestations(&self, digest: &Digest) -> Result<Found, AttestError> {
        let mut found = Vec::new();
        for each in find_each(self.store, digest)? {
            match each {
                Ok(attestation) => found.push(Ok(attestation)),
                Err(AttestError::BadAttestation { digest, reason }) => {
                    found.push(Err(Problem::BadAttestation {
                        attestation: digest,
                        reason,
                    }))
                }
                Err(e) => return Err(e),
            }
        }
        Ok(found)
    }

    /// The attestations of `digest` in the registry repository `remote`, except those in
    /// `skip`. `Err` when the registry cannot be asked at all.
    fn remote_attestations(
        &self,
        remote: &str,
        digest: &Digest,
        skip: &HashSet<Digest>,
    ) -> Result<Found, Problem> {
        let upstream = self.upstream.expect("remote_of checked the upstream");
        let unreachable = |what: String, e: FetchError| Problem::Upstream {
            image: what,
            reason: strata_oci::report(e.as_ref()),
        };
        let referrers = upstream
            .referrers(remote, digest)
            .map_err(|e| unreachable(format!("{remote}@{digest} (referrers)"), e))?;
        let mut found = Vec::new();
        for descriptor in referrers
            .iter()
            .filter(|d| {
                d.artifact_type()
                    .as_ref()
                    .is_none_or(|t| t.to_string() == ATTESTATION_ARTIFACT_TYPE)
            })
            .take(MAX_REMOTE_REFERRERS)
        {
            let Ok(manifest_digest) = Digest::from_oci(descriptor.digest()) else {
                continue;
            };
            if skip.contains(&manifest_digest) {
                continue;
            }
            let at = format!("{remote}@{manifest_digest}");
            let bytes = match upstream.manifest(remote, &manifest_digest) {
                Ok(bytes) => bytes,
                Err(e) => {
                    found.push(Err(unreachable(at, e)));
                    continue;
                }
            };
            let bad = |reason: String| Problem::BadAttestation {
                attestation: manifest_digest.clone(),
                reason,
            };
            if Digest::of_with(manifest_digest.algorithm(), &bytes) != manifest_digest {
                found.push(Err(bad(format!(
                    "the registry answered {remote} with other bytes than its digest"
                ))));
                continue;
            }
            let manifest: ImageManifest = match serde_json::from_slice(&bytes) {
                Ok(m) => m,
                Err(e) => {
                    found.push(Err(bad(format!("not an OCI manifest: {e}"))));
                    continue;
                }
            };
            if manifest
                .artifact_type()
                .as_ref()
                .is_none_or(|t| t.to_string() != ATTESTATION_ARTIFACT_TYPE)
            {
                continue;
            }
            let about = manifest
                .subject()
                .as_ref()
                .and_then(|s| Digest::from_oci(s.digest()).ok());
            if about.as_ref() != Some(digest) {
                continue;
            }
            let read = attestation_from(manifest_digest.clone(), &manifest, |layer| {
                let layer_digest = Digest::from_oci(layer.digest())?;
                let bytes = upstream.blob(remote, &layer_digest).map_err(|e| {
                    AttestError::BadAttestation {
                        digest: manifest_digest.clone(),
                        reason: format!(
                            "cannot read its envelope from {remote}: {}",
                            strata_oci::report(e.as_ref())
                        ),
                    }
                })?;
                if Digest::of_with(layer_digest.algorithm(), &bytes) != layer_digest {
                    return Err(AttestError::BadAttestation {
                        digest: manifest_digest.clone(),
                        reason: format!(
                            "the registry answered its envelope {layer_digest} with other bytes"
                        ),
                    });
                }
                Ok(bytes)
            });
            found.push(match read {
                Ok(attestation) => Ok(attestation),
                Err(AttestError::BadAttestation { digest, reason }) => {
                    Err(Problem::BadAttestation {
                        attestation: digest,
                        reason,
                    })
                }
                Err(e) => Err(bad(strata_oci::report(&e))),
            });
        }
        Ok(found)
    }

    /// Check one image; returns its link (verdict not yet set) and, when the link is good, where
    /// to go next.
    fn check_link(&self, node: &Node) -> Result<(Link, Option<Next>), AttestError> {
        let trust = self.trust;
        let digest = &node.digest;
        let local = self.local_attestations(digest)?;
        // An image asked about by digest is named by what its attestations claim; the claim is
        // then checked against the keys of the team owning that name, so it cannot choose its own
        // judge.
        let name = node.name.clone().or_else(|| {
            local.iter().flatten().find_map(|a| {
                let statement = a.envelope.statement_unverified().ok()?;
                let subject = statement.subject.first()?;
                trust
                    .owner_of(&subject.name)
                    .map(|_| trust.link_name(&subject.name))
            })
        });
        let mut link = Link {
            tier: name
                .as_deref()
                .and_then(|n| trust.tier_of(n))
                .map(str::to_string),
            image: name.clone(),
            digest: digest.clone(),
            team: None,
            key_id: None,
            attestation: None,
            fetched_from: None,
            built: None,
            from: None,
            vendor: None,
            verdict: Verdict::Broken,
            problems: Vec::new(),
        };
        let Some(owner) = name.as_deref().and_then(|n| trust.owner_of(n)) else {
            link.problems.push(Problem::UnknownImage {
                image: name.unwrap_or_else(|| digest.to_string()),
            });
            return Ok((link, None));
        };
        link.team = Some(owner.to_string());
        if trust.keys_of(owner).is_empty() {
            link.problems.push(Problem::NoTrustedKeys {
                team: owner.to_string(),
            });
            return Ok((link, None));
        }
        // Several attestations (a rebuild re-signed, or a forgery added): one good one suffices;
        // otherwise report the one that got furthest through the checks. The store's first; an
        // external image's registry next, when none of the store's holds.
        let mut best: Option<(usize, Link)> = None;
        let mut unreadable = Vec::new();
        let mut seen = HashSet::new();
        let remote = self.remote_of(name.as_deref());
        let rounds = [Some(local), None];
        for round in rounds {
            let (found, from) = match round {
                Some(local) => (local, None),
                None => {
                    let Some(remote) = &remote else { break };
                    match self.remote_attestations(remote, digest, &seen) {
                        Ok(found) => (found, Some(remote.clone())),
                        Err(problem) => {
                            unreadable.push(problem);
                            break;
                        }
                    }
                }
            };
            for each in found {
                let attestation = match each {
                    Ok(attestation) => attestation,
                    Err(problem) => {
                        unreadable.push(problem);
                        continue;
                    }
                };
                seen.insert(attestation.manifest.clone());
                let mut candidate = link.clone();
                candidate.fetched_from = from.clone();
                let (stage, next) =
                    self.check_attestation(node, &attestation, owner, &mut candidate)?;
                if candidate.problems.is_empty() {
                    return Ok((candidate, next));
                }
                if best.as_ref().is_none_or(|(s, _)| stage > *s) {
                    best = Some((stage, candidate));
                }
            }
        }
        if let Some((_, best)) = best {
            return Ok((best, None));
        }
        // Only unreadable ones: name them; none at all: say so.
        if unreadable.is_empty() {
            link.problems.push(Problem::MissingAttestation);
        } else {
            link.problems.extend(unreadable);
        }
        Ok((link, None))
    }

    /// Check one attestation of `node`, filling `link`. Returns how far the checks got (for
    /// choosing among several bad attestations) and where to go next.
    fn check_attestation(
        &self,
        node: &Node,
        attestation: &Attestation,
        owner: &str,
        link: &mut Link,
    ) -> Result<(usize, Option<Next>), AttestError> {
        let trust = self.trust;
        let policy = self.policy;
        link.attestation = Some(attestation.manifest.clone());
        // 1. The signature, against the owner's keys.
        let verified = match attestation.envelope.verify(trust.keys_of(owner)) {
            Ok(verified) => verified,
            Err(VerifyError::UnknownKey { key_ids }) => {
                let other = key_ids
                    .iter()
                    .find_map(|id| trust.team_of_key(id).map(|team| (team, id)));
                link.problems.push(match other {
                    Some((team, id)) => Problem::WrongTeam {
                        owner: owner.to_string(),
                        signed_by: team.to_string(),
                        key_id: id.clone(),
                    },
                    None => Problem::Signature {
                        reason: VerifyError::UnknownKey { key_ids },
                    },
                });
                return Ok((0, None));
            }
            Err(reason) => {
                link.problems.push(Problem::Signature { reason });
                return Ok((0, None));
            }
        };
        link.key_id = Some(verified.key_id.clone());
        // 2. strata's SLSA provenance.
        let parsed = verified
            .statement
            .provenance()
            .and_then(|p| p.internal().map(|i| (p, i)));
        let (provenance, internal) = match parsed {
            Ok(parsed) => parsed,
            Err(e) => {
                link.problems.push(Problem::NotProvenance {
                    reason: strata_oci::report(&e),
                });
                return Ok((1, None));
            }
        };
        link.built = provenance.finished_on().map(|t| rfc3339(&t));
        if link.tier.is_none() {
            link.tier = internal.tier.clone();
        }
        // 3. The owner (and the tier, when the chain names one).
        if internal.owner != owner {
            link.problems.push(Problem::OwnerMismatch {
                chain: owner.to_string(),
                provenance: internal.owner.clone(),
            });
        }
        if let Some(tier) = link.image.as_deref().and_then(|n| trust.tier_of(n))
            && internal.tier.as_deref() != Some(tier)
        {
            link.problems.push(Problem::TierMismatch {
                chain: tier.to_string(),
                provenance: internal.tier.clone(),
            });
        }
        // 4. The parent underneath.
        let next = match self.check_parent(node, &provenance, &internal.squash, link)? {
            Ok(next) => Some(next),
            Err(problem) => {
                link.problems.push(problem);
                None
            }
        };
        // 5. The subject.
        let subjects = verified.statement.subject_digests();
        if !subjects.contains(&node.digest) {
            link.problems.push(Problem::SubjectMismatch { subjects });
        }
        // 6. The policy.
        if let Some(tier) = &link.tier
            && let Some(required) = policy.tier_teams.get(tier)
            && required != owner
        {
            link.problems.push(Problem::PolicyTierTeam {
                tier: tier.clone(),
                required: required.clone(),
                owner: owner.to_string(),
            });
        }
        if let Some(max_age) = policy.max_age {
            let built = provenance.finished_on();
            if built.is_none_or(|t| self.now.signed_duration_since(t) > max_age) {
                link.problems.push(Problem::PolicyTooOld {
                    built: link.built.clone(),
                    max_age: format_age(&max_age),
                });
            }
        }
        Ok((2, next))
    }

    /// Check a bought base's vendor signature kept in the store: one must verify with the
    /// required key for this digest and the repository it was bought from. Fills `link.vendor`,
    /// or adds the problem (the first stored signature's, when none verifies).
    fn check_vendor(
        &self,
        node: &Node,
        required: &VendorRequirement,
        link: &mut Link,
    ) -> Result<(), AttestError> {
        let digest = node.digest.to_string();
        let repository = repository_of(&required.reference);
        let image = format!("{repository}@{digest}");
        let expected = Expected {
            digest: &digest,
            repository: &repository,
        };
        let mut first = None;
        for each in evidence::find(self.store, &node.digest)?
            .into_iter()
            .take(evidence::MAX_CHECKED)
        {
            let reason = match each {
                Ok(stored) => match evidence::verify(&required.key, &stored.evidence, expected) {
                    Ok(key) => {
                        link.vendor = Some(VendorLink {
                            reference: required.reference.clone(),
                            key_file: required.key_file.clone(),
                            key,
                            format: stored.evidence.format(),
                            evidence: stored.manifest,
                        });
                        return Ok(());
                    }
                    Err(e) => strata_oci::report(&e),
                },
                Err(e) => strata_oci::report(&e),
            };
            first.get_or_insert_with(|| Problem::VendorSignature {
                image: image.clone(),
                key: required.key_file.clone(),
                reason,
            });
        }
        link.problems
            .push(first.unwrap_or(Problem::MissingVendorSignature {
                image,
                key: required.key_file.clone(),
            }));
        Ok(())
    }

    /// Check that the recorded parent is the image underneath; `Ok(Err(problem))` when it is not.
    fn check_parent(
        &self,
        node: &Node,
        provenance: &Provenance,
        squash: &str,
        link: &mut Link,
    ) -> Result<Result<Next, Problem>, AttestError> {
        let recorded = match provenance.base() {
            Ok(recorded) => recorded,
            Err(e) => {
                return Ok(Err(Problem::NotProvenance {
                    reason: strata_oci::report(&e),
                }));
            }
        };
        let annotated = node
            .manifest
            .annotations()
            .as_ref()
            .and_then(|a| a.get(strata_oci::annotations::ANNOTATION_BASE_IMAGE_DIGEST))
            .map(|d| d.parse::<Digest>());
        let annotated = match annotated {
            None => None,
            Some(Ok(d)) => Some(d),
            // An unreadable annotation cannot agree with anything.
            Some(Err(_)) => Some(Digest::of(b"")),
        };
        let Some((parent_name, parent)) = recorded else {
            let import: Vec<Digest> = provenance
                .dependencies(DEP_IMPORT)
                .filter_map(|d| d.sha256())
                .collect();
            link.from = provenance
                .dependencies(DEP_IMPORT)
                .next()
                .and_then(|d| Some(format!("{}@{}", d.uri.as_deref()?, d.sha256()?)));
            if let Some(annotated) = annotated {
                return Ok(Err(Problem::UnrecordedParent { annotated }));
            }
            return Ok(Ok(Next::Bottom { import }));
        };
        let parent_name = parent_name.map(|n| self.parent_name(node, &n));
        link.from = Some(format!(
            "{}@{parent}",
            parent_name.as_deref().unwrap_or("(unnamed)")
        ));
        if annotated.as_ref() != Some(&parent) {
            return Ok(Err(Problem::ParentMismatch {
                recorded: parent,
                annotated,
            }));
        }
        let manifest = if self.store.blobs().has(&parent) {
            let size = self.store.blobs().size(&parent)?;
            self.store
                .image_from_descriptor(&Descriptor::new(
                    MediaType::ImageManifest,
                    size,
                    parent.to_oci(),
                ))?
                .manifest()
                .clone()
        } else {
            match self.remote_of(parent_name.as_deref()) {
                None => return Ok(Err(Problem::ParentMissing { parent })),
                Some(remote) => match self.remote_manifest(&remote, &parent) {
                    Ok(manifest) => manifest,
                    Err(problem) => return Ok(Err(problem)),
                },
            }
        };
        if squash != "all" {
            let below: Vec<_> = manifest.layers().iter().map(|l| l.digest()).collect();
            let here: Vec<_> = node.manifest.layers().iter().map(|l| l.digest()).collect();
            if !here.starts_with(&below) {
                return Ok(Err(Problem::ParentNotUnderneath { parent }));
            }
        }
        Ok(Ok(Next::Parent(Box::new(Node {
            digest: parent,
            manifest,
            name: parent_name,
        }))))
    }

    /// The name the parent recorded as `recorded` is judged by. An external image's parent
    /// recorded under a local name (`localhost/ops/base`: its project pushes without a
    /// `registry`) is looked for in the registry its child came from.
    fn parent_name(&self, child: &Node, recorded: &str) -> String {
        let child_registry = child
            .name
            .as_deref()
            .filter(|n| self.trust.chain_owner_of(n).is_none())
            .and_then(registry_of);
        match child_registry {
            Some(registry)
                if self.trust.chain_owner_of(recorded).is_none()
                    && registry_of(recorded).is_none() =>
            {
                self.trust
                    .link_name(&format!("{registry}/{}", image_key(recorded)))
            }
            _ => self.trust.link_name(recorded),
        }
    }

    /// The image manifest `digest` from the registry repository `remote`, checked against its
    /// digest.
    fn remote_manifest(&self, remote: &str, digest: &Digest) -> Result<ImageManifest, Problem> {
        let upstream = self.upstream.expect("remote_of checked the upstream");
        let at = format!("{remote}@{digest}");
        let bytes = upstream
            .manifest(remote, digest)
            .map_err(|e| Problem::Upstream {
                image: at.clone(),
                reason: strata_oci::report(e.as_ref()),
            })?;
        if Digest::of_with(digest.algorithm(), &bytes) != *digest {
            return Err(Problem::Upstream {
                image: at,
                reason: "the registry answered other bytes than the digest names".into(),
            });
        }
        serde_json::from_slice(&bytes).map_err(|e| Problem::Upstream {
            image: at,
            reason: format!("not an OCI image manifest: {e}"),
        })
    }
}
