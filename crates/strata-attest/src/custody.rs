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

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use oci_spec::image::{Descriptor, MediaType};
use serde::Serialize;
use strata_oci::{Digest, Image, Reference, Store};

use crate::artifact::{Attestation, find_each};
use crate::error::{AttestError, KeyError, VerifyError};
use crate::keys::{KeyId, PublicKey};
use crate::policy::{Policy, format_age};
use crate::provenance::{DEP_IMPORT, Provenance, rfc3339};

/// Whom to trust: each team's public keys, and each image's owner team (and tier), as the chain
/// file declares them. Images are named by repository path (`acme/corebuild`); the registry and
/// tag are ignored, so the same image verifies wherever it was pushed.
#[derive(Clone, Debug, Default)]
pub struct TrustConfig {
    teams: BTreeMap<String, Vec<PublicKey>>,
    owners: BTreeMap<String, String>,
    tiers: BTreeMap<String, String>,
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

    /// The owner team of `image`.
    pub fn owner_of(&self, image: &str) -> Option<&str> {
        self.owners.get(&image_key(image)).map(String::as_str)
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
    /// When it was built (`runDetails.metadata.finishedOn`).
    pub built: Option<String>,
    /// What it was built from: the parent `name@digest`, or an imported source `uri@digest`.
    pub from: Option<String>,
    /// The verdict.
    pub verdict: Verdict,
    /// Why the link is broken, most telling first (empty when ok).
    pub problems: Vec<Problem>,
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
    let descriptor = store.refs().resolve(reference)?;
    let top = store.image_from_descriptor(&descriptor)?;
    let top_digest = top.digest();
    let mut name = Reference::parse(reference)
        .ok()
        .filter(|_| !reference.starts_with("sha256:") && !reference.starts_with("sha512:"))
        .map(|r| r.repository().to_string());
    let mut image = top;
    let mut links = Vec::new();
    let mut seen = HashSet::new();
    loop {
        let (mut link, next) = check_link(store, &image, name.as_deref(), trust, policy, now)?;
        if !seen.insert(image.digest()) {
            link.problems.insert(
                0,
                Problem::Cycle {
                    digest: image.digest(),
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
            Some(Next::Parent {
                name: parent_name,
                image: parent,
            }) => {
                name = parent_name;
                image = *parent;
            }
            Some(Next::Bottom { import }) => {
                if !policy.allowed_base_digests.is_empty() {
                    let mut digests = vec![image.digest()];
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

/// Where the walk goes after a good link.
enum Next {
    /// Down to the recorded parent.
    Parent {
        name: Option<String>,
        image: Box<Image>,
    },
    /// Nowhere: this is the base; `import` holds the digests of what it was imported from.
    Bottom { import: Vec<Digest> },
}

/// Check one image; returns its link (verdict not yet set) and, when the link is good, where to
/// go next.
fn check_link(
    store: &Store,
    image: &Image,
    name: Option<&str>,
    trust: &TrustConfig,
    policy: &Policy,
    now: DateTime<Utc>,
) -> Result<(Link, Option<Next>), AttestError> {
    let digest = image.digest();
    let mut unreadable = Vec::new();
    let mut attestations = Vec::new();
    for found in find_each(store, &digest)? {
        match found {
            Ok(attestation) => attestations.push(attestation),
            Err(AttestError::BadAttestation { digest, reason }) => {
                unreadable.push(Problem::BadAttestation {
                    attestation: digest,
                    reason,
                })
            }
            Err(e) => return Err(e),
        }
    }
    // An image asked about by digest is named by what its attestations claim; the claim is then
    // checked against the keys of the team owning that name, so it cannot choose its own judge.
    let name = name.map(str::to_string).or_else(|| {
        attestations.iter().find_map(|a| {
            let statement = a.envelope.statement_unverified().ok()?;
            let subject = statement.subject.first()?;
            trust
                .owner_of(&subject.name)
                .map(|_| image_key(&subject.name))
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
        built: None,
        from: None,
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
    if attestations.is_empty() {
        // Only unreadable ones: name them; none at all: say so.
        if unreadable.is_empty() {
            link.problems.push(Problem::MissingAttestation);
        } else {
            link.problems.extend(unreadable);
        }
        return Ok((link, None));
    }
    // Several attestations (a rebuild re-signed, or a forgery added): one good one suffices;
    // otherwise report the one that got furthest through the checks.
    let mut best: Option<(usize, Link)> = None;
    for attestation in &attestations {
        let mut candidate = link.clone();
        let (stage, next) = check_attestation(
            store,
            image,
            attestation,
            owner,
            trust,
            policy,
            now,
            &mut candidate,
        )?;
        if candidate.problems.is_empty() {
            return Ok((candidate, next));
        }
        if best.as_ref().is_none_or(|(s, _)| stage > *s) {
            best = Some((stage, candidate));
        }
    }
    Ok((best.expect("at least one attestation").1, None))
}

/// Check one attestation of `image`, filling `link`. Returns how far the checks got (for choosing
/// among several bad attestations) and where to go next.
#[allow(clippy::too_many_arguments)]
fn check_attestation(
    store: &Store,
    image: &Image,
    attestation: &Attestation,
    owner: &str,
    trust: &TrustConfig,
    policy: &Policy,
    now: DateTime<Utc>,
    link: &mut Link,
) -> Result<(usize, Option<Next>), AttestError> {
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
    let next = match check_parent(store, image, &provenance, &internal.squash, link)? {
        Ok(next) => Some(next),
        Err(problem) => {
            link.problems.push(problem);
            None
        }
    };
    // 5. The subject.
    let subjects = verified.statement.subject_digests();
    if !subjects.contains(&image.digest()) {
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
        if built.is_none_or(|t| now.signed_duration_since(t) > max_age) {
            link.problems.push(Problem::PolicyTooOld {
                built: link.built.clone(),
                max_age: format_age(&max_age),
            });
        }
    }
    Ok((2, next))
}

/// Check that the recorded parent is the image underneath; `Ok(Err(problem))` when it is not.
fn check_parent(
    store: &Store,
    image: &Image,
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
    let annotated = image
        .manifest()
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
    link.from = Some(format!(
        "{}@{parent}",
        parent_name
            .as_deref()
            .map(image_key)
            .unwrap_or_else(|| "(unnamed)".into())
    ));
    if annotated.as_ref() != Some(&parent) {
        return Ok(Err(Problem::ParentMismatch {
            recorded: parent,
            annotated,
        }));
    }
    if !store.blobs().has(&parent) {
        return Ok(Err(Problem::ParentMissing { parent }));
    }
    let size = store.blobs().size(&parent)?;
    let parent_image = store.image_from_descriptor(&Descriptor::new(
        MediaType::ImageManifest,
        size,
        parent.to_oci(),
    ))?;
    if squash != "all" {
        let below: Vec<_> = parent_image.layers().iter().map(|l| l.digest()).collect();
        let here: Vec<_> = image.layers().iter().map(|l| l.digest()).collect();
        if !here.starts_with(&below) {
            return Ok(Err(Problem::ParentNotUnderneath { parent }));
        }
    }
    Ok(Ok(Next::Parent {
        name: parent_name.map(|n| image_key(&n)),
        image: Box::new(parent_image),
    }))
}
