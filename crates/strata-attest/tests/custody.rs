//! Chain-of-custody verification over images written directly into a temp store: a clean
//! three-tier chain verifies, and each tamper is caught and named at the right link.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use chrono::{DateTime, Duration, Utc};
use oci_spec::image::{MediaType, RootFs};
use strata_attest::custody::{FetchError, Upstream};
use strata_attest::custody::{Problem, Verdict};
use strata_attest::provenance::{
    DockerfileBuild, DockerfileParameters, ImportBuild, ImportParameters, InternalParameters, Run,
};
use strata_attest::{
    KeyKind, Policy, PrivateKey, Report, Statement, TrustConfig, VerifyError, attach, dsse, find,
    verify_chain, verify_chain_with,
};
use strata_oci::{Digest, Image, Store};

const BASE: &str = "acme/base";
const CORE: &str = "acme/corebuild";
const APP: &str = "acme/wordpress";

struct Chain {
    _dir: tempfile::TempDir,
    store: Store,
    ops: PrivateKey,
    web: PrivateKey,
    trust: TrustConfig,
    base: Image,
    core: Image,
    app: Image,
}

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-23T12:00:00Z")
        .unwrap()
        .into()
}

fn run(hours_ago: i64) -> Run {
    Run {
        invocation_id: format!("run-{hours_ago}"),
        started_on: now() - Duration::hours(hours_ago) - Duration::minutes(2),
        finished_on: now() - Duration::hours(hours_ago),
    }
}

/// An image of `parent`'s layers plus one layer holding `file`, annotated with its base.
fn image_on(store: &Store, parent: Option<&Image>, file: &str) -> Image {
    strata_oci::random::image_on(store, parent, file).unwrap()
}

fn internal(owner: &str, tier: &str) -> InternalParameters {
    InternalParameters {
        owner: owner.into(),
        tier: Some(tier.into()),
        chain: Some("acme".into()),
        ..Default::default()
    }
}

/// Signed provenance of `image` (named `name`) built on `parent`, attached in the store.
fn sign_build(
    store: &Store,
    image: &Image,
    name: &str,
    owner: &str,
    tier: &str,
    parent: Option<(&str, &Image)>,
    key: &PrivateKey,
) -> dsse::Envelope {
    let parent = parent.map(|(n, p)| (format!("localhost/{n}:latest"), p));
    sign_build_on(
        store,
        image,
        name,
        owner,
        tier,
        parent.as_ref().map(|(n, p)| (n.as_str(), *p)),
        key,
    )
}

/// [`sign_build`] with the parent's full reference as the build saw it.
fn sign_build_on(
    store: &Store,
    image: &Image,
    name: &str,
    owner: &str,
    tier: &str,
    parent: Option<(&str, &Image)>,
    key: &PrivateKey,
) -> dsse::Envelope {
    let provenance = DockerfileBuild {
        parameters: DockerfileParameters {
            dockerfile: format!("{tier}/Dockerfile"),
            context: tier.into(),
            target: None,
            build_args: BTreeMap::new(),
        },
        internal: internal(owner, tier),
        base: parent.map(|(n, p)| (n.to_string(), p.digest())),
        other_images: vec![],
        context_digest: Some(Digest::of(tier.as_bytes())),
        git: None,
        builder_version: "0.1.0".into(),
        run: run(1),
    }
    .provenance();
    let statement = Statement::provenance_for(
        format!("localhost/{name}:latest"),
        &image.digest(),
        &provenance,
    );
    let envelope = dsse::sign(&statement, key);
    attach(store, image.descriptor(), &envelope).unwrap();
    envelope
}

fn sign_import(store: &Store, image: &Image, key: &PrivateKey, hours_ago: i64) {
    let provenance = ImportBuild {
        parameters: ImportParameters {
            source: "rootfs".into(),
            location: "base/rootfs.tar".into(),
        },
        internal: internal("operations", "base"),
        source_digest: Digest::of(b"rootfs tarball"),
        builder_version: "0.1.0".into(),
        run: run(hours_ago),
    }
    .provenance();
    let statement = Statement::provenance_for(
        format!("localhost/{BASE}:latest"),
        &image.digest(),
        &provenance,
    );
    attach(store, image.descriptor(), &dsse::sign(&statement, key)).unwrap();
}

/// base (imported by operations) → corebuild (operations) → wordpress (web), tagged; signed when
/// `signed`.
fn chain(signed: bool) -> Chain {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::init(dir.path()).unwrap();
    let ops = PrivateKey::generate(KeyKind::EcdsaP256).unwrap();
    let web = PrivateKey::generate(KeyKind::Ed25519).unwrap();
    let mut trust = TrustConfig::new();
    trust.add_key("operations", ops.public_key().clone());
    trust.add_key("web", web.public_key().clone());
    trust.set_owner(BASE, "operations", Some("base"));
    trust.set_owner(CORE, "operations", Some("corebuild"));
    trust.set_owner(APP, "web", Some("application"));
    let base = image_on(&store, None, "etc/os-release");
    let core = image_on(&store, Some(&base), "etc/corebuild");
    let app = image_on(&store, Some(&core), "var/www/index.php");
    for (name, image) in [(BASE, &base), (CORE, &core), (APP, &app)] {
        store.refs().tag(name, image.descriptor()).unwrap();
    }
    if signed {
        sign_import(&store, &base, &ops, 3);
        sign_build(
            &store,
            &core,
            CORE,
            "operations",
            "corebuild",
            Some((BASE, &base)),
            &ops,
        );
        sign_build(
            &store,
            &app,
            APP,
            "web",
            "application",
            Some((CORE, &core)),
            &web,
        );
    }
    Chain {
        _dir: dir,
        store,
        ops,
        web,
        trust,
        base,
        core,
        app,
    }
}

fn verify(c: &Chain, reference: &str) -> Report {
    verify_chain(&c.store, reference, &c.trust, &Policy::default(), now()).unwrap()
}

/// Remove every attestation of `image` (as if it had never been signed).
fn strip(store: &Store, image: &Image) {
    for referrer in store.referrers(&image.digest(), None).unwrap() {
        store
            .refs()
            .remove_root(&Digest::from_oci(referrer.digest()).unwrap())
            .unwrap();
    }
    assert!(find(store, &image.digest()).unwrap().is_empty());
}

/// The report is broken at link `index` (0 = the image asked about), first problem `problem`.
fn assert_broken_at(report: &Report, index: usize, expected: impl Fn(&Problem) -> bool) {
    assert!(!report.verified, "{report}");
    assert_eq!(report.links.len(), index + 1, "{report}");
    for link in &report.links[..index] {
        assert_eq!(link.verdict, Verdict::Ok, "{report}");
    }
    let link = &report.links[index];
    assert_eq!(link.verdict, Verdict::Broken, "{report}");
    assert!(expected(&link.problems[0]), "{report}\n{:?}", link.problems);
    assert!(
        report.summary().starts_with("chain of custody broken at "),
        "{report}"
    );
}

#[test]
fn a_clean_chain_verifies_from_app_to_base() {
    let c = chain(true);
    let report = verify(&c, APP);
    assert!(report.verified, "{report}");
    assert_eq!(report.digest, c.app.digest());
    let summary: Vec<_> = report
        .links
        .iter()
        .map(|l| {
            (
                l.tier.as_deref().unwrap(),
                l.image.as_deref().unwrap(),
                l.digest.clone(),
                l.team.as_deref().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("application", APP, c.app.digest(), "web"),
            ("corebuild", CORE, c.core.digest(), "operations"),
            ("base", BASE, c.base.digest(), "operations"),
        ]
    );
    assert_eq!(report.links[0].key_id.as_ref(), Some(c.web.id()));
    assert_eq!(report.links[1].key_id.as_ref(), Some(c.ops.id()));
    assert_eq!(
        report.links[0].from.as_deref(),
        Some(format!("{CORE}@{}", c.core.digest()).as_str())
    );
    assert_eq!(
        report.links[2].from.as_deref(),
        Some(format!("file:base/rootfs.tar@{}", Digest::of(b"rootfs tarball")).as_str())
    );
    assert_eq!(
        report.links[0].built.as_deref(),
        Some("2026-11-23T11:00:00Z")
    );
    assert_eq!(
        report.summary(),
        format!("verified: 3 tiers from {APP} down to its base")
    );

    // The JSON form carries the same facts.
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["verified"], true);
    assert_eq!(json["links"][1]["team"], "operations");
    assert_eq!(json["links"][1]["verdict"], "ok");
    assert_eq!(json["links"][2]["tier"], "base");

    // Any reference form works, and a middle tier verifies down from itself.
    assert!(verify(&c, &format!("localhost/{APP}:latest")).verified);
    let core = verify(&c, CORE);
    assert!(core.verified, "{core}");
    assert_eq!(core.links.len(), 2);
}

#[test]
fn an_image_asked_about_by_digest_is_named_by_its_verified_statement() {
    let c = chain(true);
    let report = verify(&c, &c.app.digest().to_string());
    assert!(report.verified, "{report}");
    assert_eq!(report.links[0].image.as_deref(), Some(APP));
}

#[test]
fn a_changed_payload_byte_is_a_bad_signature() {
    let c = chain(true);
    let mut envelope = find(&c.store, &c.app.digest()).unwrap().remove(0);
    strip(&c.store, &c.app);
    let mut payload = envelope.payload_bytes().unwrap();
    // Flip the build's invocation id: a change that keeps the JSON valid.
    let at = String::from_utf8_lossy(&payload).find("run-1").unwrap();
    payload[at + 4] = b'7';
    use base64::Engine as _;
    envelope.payload = base64::engine::general_purpose::STANDARD.encode(&payload);
    attach(&c.store, c.app.descriptor(), &envelope).unwrap();
    let report = verify(&c, APP);
    assert_broken_at(
        &report,
        0,
        |p| matches!(p, Problem::Signature { reason: VerifyError::BadSignature { key_id } } if key_id == c.web.id()),
    );
    assert!(
        report.summary().contains("bad signature"),
        "{}",
        report.summary()
    );
}

#[test]
fn a_signature_by_the_wrong_teams_key_is_named() {
    let c = chain(true);
    strip(&c.store, &c.app);
    // Operations signs the web team's image.
    sign_build(
        &c.store,
        &c.app,
        APP,
        "web",
        "application",
        Some((CORE, &c.core)),
        &c.ops,
    );
    let report = verify(&c, APP);
    assert_broken_at(
        &report,
        0,
        |p| matches!(p, Problem::WrongTeam { owner, signed_by, .. } if owner == "web" && signed_by == "operations"),
    );
    // A key nobody trusts.
    strip(&c.store, &c.app);
    let stranger = PrivateKey::generate(KeyKind::EcdsaP256).unwrap();
    sign_build(
        &c.store,
        &c.app,
        APP,
        "web",
        "application",
        Some((CORE, &c.core)),
        &stranger,
    );
    assert_broken_at(&verify(&c, APP), 0, |p| {
        matches!(
            p,
            Problem::Signature {
                reason: VerifyError::UnknownKey { .. }
            }
        )
    });
}

#[test]
fn provenance_moved_to_another_image_is_caught() {
    let c = chain(true);
    // A second app on the same corebuild, unsigned; the first app's provenance is copied onto it.
    let other = image_on(&c.store, Some(&c.core), "var/www/evil.php");
    c.store.refs().tag(APP, other.descriptor()).unwrap();
    let envelope = find(&c.store, &c.app.digest()).unwrap().remove(0);
    attach(&c.store, other.descriptor(), &envelope).unwrap();
    let report = verify(&c, APP);
    assert_eq!(report.digest, other.digest());
    assert_broken_at(
        &report,
        0,
        |p| matches!(p, Problem::SubjectMismatch { subjects } if subjects == &vec![c.app.digest()]),
    );
}

#[test]
fn a_parent_swapped_under_an_app_is_caught() {
    let c = chain(true);
    // A new, properly signed corebuild.
    let core2 = image_on(&c.store, Some(&c.base), "etc/corebuild-2");
    sign_build(
        &c.store,
        &core2,
        CORE,
        "operations",
        "corebuild",
        Some((BASE, &c.base)),
        &c.ops,
    );
    // crane rebase: the app's own layer moved onto core2, the base annotation updated, the old
    // provenance carried along without re-signing.
    let own = c.app.layers().last().unwrap().clone();
    let own_diff = c.app.diff_ids().unwrap().last().unwrap().to_string();
    let rebased = {
        let mut layers = core2.layers().to_vec();
        layers.push(own);
        let mut diff_ids: Vec<String> = core2
            .diff_ids()
            .unwrap()
            .iter()
            .map(Digest::to_string)
            .collect();
        diff_ids.push(own_diff);
        let mut config = c.app.config().clone();
        let mut rootfs = RootFs::default();
        rootfs.set_diff_ids(diff_ids);
        config.set_rootfs(rootfs);
        let annotations = HashMap::from([(
            "org.opencontainers.image.base.digest".to_string(),
            core2.digest().to_string(),
        )]);
        c.store
            .write_image(&config, &layers, Some(annotations))
            .unwrap()
    };
    c.store.refs().tag(APP, rebased.descriptor()).unwrap();
    let envelope = find(&c.store, &c.app.digest()).unwrap().remove(0);
    attach(&c.store, rebased.descriptor(), &envelope).unwrap();
    let report = verify(&c, APP);
    assert_broken_at(&report, 0, |p| {
        matches!(p, Problem::ParentMismatch { recorded, annotated: Some(annotated) }
            if *recorded == c.core.digest() && *annotated == core2.digest())
    });
    assert!(
        report.summary().contains("parent swapped"),
        "{}",
        report.summary()
    );
    // The subject is wrong too, and named.
    assert!(
        report.links[0]
            .problems
            .iter()
            .any(|p| matches!(p, Problem::SubjectMismatch { .. })),
        "{report}"
    );

    // The same rebase leaving the old annotation: the layers give it away. This time the app team
    // even re-signs the lie.
    let sneaky = {
        let mut layers = core2.layers().to_vec();
        layers.push(c.app.layers().last().unwrap().clone());
        let mut diff_ids: Vec<String> = core2
            .diff_ids()
            .unwrap()
            .iter()
            .map(Digest::to_string)
            .collect();
        diff_ids.push(c.app.diff_ids().unwrap().last().unwrap().to_string());
        let mut config = c.app.config().clone();
        let mut rootfs = RootFs::default();
        rootfs.set_diff_ids(diff_ids);
        config.set_rootfs(rootfs);
        c.store
            .write_image(&config, &layers, c.app.manifest().annotations().clone())
            .unwrap()
    };
    c.store.refs().tag(APP, sneaky.descriptor()).unwrap();
    sign_build(
        &c.store,
        &sneaky,
        APP,
        "web",
        "application",
        Some((CORE, &c.core)),
        &c.web,
    );
    assert_broken_at(
        &verify(&c, APP),
        0,
        |p| matches!(p, Problem::ParentNotUnderneath { parent } if *parent == c.core.digest()),
    );
}

#[test]
fn a_missing_attestation_is_named() {
    let c = chain(true);
    strip(&c.store, &c.app);
    let report = verify(&c, APP);
    assert_broken_at(&report, 0, |p| matches!(p, Problem::MissingAttestation));
    assert_eq!(
        report.summary(),
        format!(
            "chain of custody broken at {APP} ({}): no signed provenance is attached",
            c.app.digest()
        )
    );
}

#[test]
fn an_image_on_an_unsigned_parent_breaks_at_the_parent() {
    let c = chain(true);
    strip(&c.store, &c.core);
    let report = verify(&c, APP);
    assert_broken_at(&report, 1, |p| matches!(p, Problem::MissingAttestation));
    assert_eq!(report.links[1].image.as_deref(), Some(CORE));

    // The app rebuilt (and properly signed by its team) on a new corebuild nobody signed.
    let c = chain(true);
    let core2 = image_on(&c.store, Some(&c.base), "etc/corebuild-unsigned");
    c.store.refs().tag(CORE, core2.descriptor()).unwrap();
    let app2 = image_on(&c.store, Some(&core2), "var/www/index.php");
    c.store.refs().tag(APP, app2.descriptor()).unwrap();
    sign_build(
        &c.store,
        &app2,
        APP,
        "web",
        "application",
        Some((CORE, &core2)),
        &c.web,
    );
    let report = verify(&c, APP);
    assert_broken_at(&report, 1, |p| matches!(p, Problem::MissingAttestation));
    assert_eq!(report.links[1].digest, core2.digest());
    // An unsigned chain breaks at its top.
    let unsigned = chain(false);
    assert_broken_at(&verify(&unsigned, APP), 0, |p| {
        matches!(p, Problem::MissingAttestation)
    });
}

#[test]
fn the_owner_in_the_provenance_must_be_the_chains() {
    let c = chain(true);
    strip(&c.store, &c.app);
    // The web team signs, but the provenance claims operations owns the app.
    sign_build(
        &c.store,
        &c.app,
        APP,
        "operations",
        "application",
        Some((CORE, &c.core)),
        &c.web,
    );
    assert_broken_at(
        &verify(&c, APP),
        0,
        |p| matches!(p, Problem::OwnerMismatch { chain, provenance } if chain == "web" && provenance == "operations"),
    );
}

#[test]
fn images_outside_the_chain_and_teams_without_keys_are_refused() {
    let c = chain(true);
    let mut trust = TrustConfig::new();
    trust.set_owner(CORE, "operations", None);
    let report = verify_chain(&c.store, APP, &trust, &Policy::default(), now()).unwrap();
    assert_broken_at(
        &report,
        0,
        |p| matches!(p, Problem::UnknownImage { image } if image == APP),
    );
    trust.set_owner(APP, "web", None);
    let report = verify_chain(&c.store, APP, &trust, &Policy::default(), now()).unwrap();
    assert_broken_at(
        &report,
        0,
        |p| matches!(p, Problem::NoTrustedKeys { team } if team == "web"),
    );
    // Not in the store at all: an error, not a report.
    let err = verify_chain(
        &c.store,
        "acme/nothing",
        &c.trust,
        &Policy::default(),
        now(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("acme/nothing"), "{err}");
}

/// Attach a referrer of the attestation type whose layer is not a DSSE envelope.
fn attach_junk(store: &Store, image: &Image) {
    let layer = store
        .blobs()
        .put(b"not an envelope")
        .unwrap()
        .descriptor(MediaType::Other("text/plain".into()));
    let config = store
        .blobs()
        .put(b"{}")
        .unwrap()
        .descriptor(MediaType::EmptyJSON);
    let mut manifest = strata_oci::image::new_manifest(config, vec![layer]);
    manifest.set_artifact_type(Some(MediaType::Other(
        "application/vnd.in-toto+json".into(),
    )));
    manifest.set_subject(Some(image.descriptor().clone()));
    store.put_referrer(&manifest).unwrap();
}

#[test]
fn unreadable_attestations_are_named_and_do_not_hide_good_ones() {
    let c = chain(true);
    attach_junk(&c.store, &c.app);
    assert!(verify(&c, APP).verified);
    strip(&c.store, &c.app);
    attach_junk(&c.store, &c.app);
    let report = verify(&c, APP);
    assert_broken_at(
        &report,
        0,
        |p| matches!(p, Problem::BadAttestation { reason, .. } if reason.contains("text/plain")),
    );
    // find() is strict.
    assert!(find(&c.store, &c.app.digest()).is_err());
}

#[test]
fn a_good_attestation_wins_over_a_forged_one() {
    let c = chain(true);
    let stranger = PrivateKey::generate(KeyKind::EcdsaP256).unwrap();
    sign_build(
        &c.store,
        &c.app,
        APP,
        "web",
        "application",
        Some((CORE, &c.core)),
        &stranger,
    );
    assert_eq!(find(&c.store, &c.app.digest()).unwrap().len(), 2);
    assert!(verify(&c, APP).verified);
}

#[test]
fn policies_demand_more() {
    let c = chain(true);
    let policy = |text: &str| Policy::from_toml(Path::new("policy.toml"), text).unwrap();
    let check = |p: &Policy| verify_chain(&c.store, APP, &c.trust, p, now()).unwrap();

    // Allowed bases: the base manifest or its imported tarball.
    assert!(
        check(&policy(&format!(
            "allowed-base-digests = [\"{}\"]",
            c.base.digest()
        )))
        .verified
    );
    let tarball = Digest::of(b"rootfs tarball");
    assert!(check(&policy(&format!("allowed-base-digests = [\"{tarball}\"]"))).verified);
    let report = check(&policy(&format!(
        "allowed-base-digests = [\"{}\"]",
        Digest::of(b"other")
    )));
    assert_broken_at(&report, 2, |p| matches!(p, Problem::PolicyBase { .. }));

    // Teams per tier.
    assert!(check(&policy("[tier-teams]\ncorebuild = \"operations\"")).verified);
    let report = check(&policy("[tier-teams]\napplication = \"operations\""));
    assert_broken_at(
        &report,
        0,
        |p| matches!(p, Problem::PolicyTierTeam { required, owner, .. } if required == "operations" && owner == "web"),
    );

    // Maximum age: the base was imported 3 hours before `now`, the others 1 hour.
    assert!(check(&policy("max-age = \"4h\"")).verified);
    let report = check(&policy("max-age = \"2h\""));
    assert_broken_at(&report, 2, |p| matches!(p, Problem::PolicyTooOld { .. }));
    assert!(
        report.summary().contains("more than 2h ago"),
        "{}",
        report.summary()
    );
}

#[test]
fn the_chains_tier_must_match_the_provenance() {
    let c = chain(true);
    let mut trust = c.trust.clone();
    trust.set_owner(APP, "web", Some("middleware"));
    let report = verify_chain(&c.store, APP, &trust, &Policy::default(), now()).unwrap();
    assert_broken_at(
        &report,
        0,
        |p| matches!(p, Problem::TierMismatch { chain, .. } if chain == "middleware"),
    );
}

/// Another project's registry, played by its store: what `strata verify` reads through the
/// referrers API. Records what it was asked; may answer tampered manifests.
struct Registry {
    store: Store,
    asked: std::cell::RefCell<Vec<String>>,
    tamper: bool,
}

impl Upstream for Registry {
    fn manifest(&self, repository: &str, digest: &Digest) -> Result<Vec<u8>, FetchError> {
        self.asked
            .borrow_mut()
            .push(format!("{repository}@{digest}"));
        let mut bytes = self.store.blobs().read(digest)?;
        if self.tamper {
            bytes.extend_from_slice(b" ");
        }
        Ok(bytes)
    }
    fn referrers(
        &self,
        repository: &str,
        digest: &Digest,
    ) -> Result<Vec<oci_spec::image::Descriptor>, FetchError> {
        self.asked
            .borrow_mut()
            .push(format!("{repository} referrers of {digest}"));
        Ok(self.store.referrers(digest, None)?)
    }
    fn blob(&self, _repository: &str, digest: &Digest) -> Result<Vec<u8>, FetchError> {
        Ok(self.store.blobs().read(digest)?)
    }
}

const UPSTREAM: &str = "registry.acme.example/acme/corebuild";

/// Project "ops" (its own store, played as its registry) holds base → corebuild, signed by
/// operations; project "dev" pulled corebuild's manifest and layers (not its base, not its
/// attestations) and built dev/app on it, signed by web. dev trusts operations for
/// `registry.acme.example/acme/*` when `rule`.
type TwoProjects = (Chain, Store, tempfile::TempDir, TrustConfig);

fn two_projects(rule: bool, base_key: Option<&PrivateKey>) -> TwoProjects {
    let ops = chain(true);
    if let Some(key) = base_key {
        strip(&ops.store, &ops.base);
        sign_import(&ops.store, &ops.base, key, 3);
    }
    let dir = tempfile::tempdir().unwrap();
    let dev = Store::init(dir.path().join("dev")).unwrap();
    let core = &ops.core;
    for descriptor in core.layers().iter().chain([core.config_descriptor()]) {
        let digest = Digest::from_oci(descriptor.digest()).unwrap();
        dev.blobs()
            .put(&ops.store.blobs().read(&digest).unwrap())
            .unwrap();
    }
    dev.blobs()
        .put(&ops.store.blobs().read(&core.digest()).unwrap())
        .unwrap();
    dev.refs()
        .tag(&format!("{UPSTREAM}:1"), core.descriptor())
        .unwrap();
    let pulled = dev.image(&format!("{UPSTREAM}:1")).unwrap();
    let app = image_on(&dev, Some(&pulled), "var/www/app.php");
    dev.refs().tag("dev/app", app.descriptor()).unwrap();
    sign_build_on(
        &dev,
        &app,
        "dev/app",
        "web",
        "application",
        Some((&format!("{UPSTREAM}:1"), &pulled)),
        &ops.web,
    );
    let mut trust = TrustConfig::new();
    trust.add_key("operations", ops.ops.public_key().clone());
    trust.add_key("web", ops.web.public_key().clone());
    trust.set_owner("dev/app", "web", Some("application"));
    if rule {
        trust.set_external_owner("registry.acme.example/acme/*", "operations");
    }
    (ops, dev, dir, trust)
}

#[test]
fn an_upstream_of_another_project_is_verified_through_its_registry() {
    let (ops, dev, _dir, trust) = two_projects(true, None);
    // Without a registry to ask, the chain breaks at the upstream: its attestation is elsewhere.
    let offline = verify_chain(&dev, "dev/app", &trust, &Policy::default(), now()).unwrap();
    assert_broken_at(&offline, 1, |p| *p == Problem::MissingAttestation);
    assert_eq!(offline.links[1].image.as_deref(), Some(UPSTREAM));

    let registry = Registry {
        store: ops.store,
        asked: Default::default(),
        tamper: false,
    };
    let report = verify_chain_with(
        &dev,
        "dev/app",
        &trust,
        &Policy::default(),
        now(),
        Some(&registry),
    )
    .unwrap();
    assert!(report.verified, "{report}");
    let links: Vec<_> = report
        .links
        .iter()
        .map(|l| (l.image.as_deref().unwrap(), l.team.as_deref().unwrap()))
        .collect();
    assert_eq!(
        links,
        [
            ("dev/app", "web"),
            (UPSTREAM, "operations"),
            ("registry.acme.example/acme/base", "operations"),
        ]
    );
    assert_eq!(report.links[0].fetched_from, None);
    assert_eq!(report.links[1].fetched_from.as_deref(), Some(UPSTREAM));
    // The base's manifest is not in dev's store: it was read from the registry its child came
    // from (its provenance names it `localhost/acme/base`, ops having no `registry`).
    let asked = registry.asked.borrow();
    assert!(
        asked.contains(&format!(
            "registry.acme.example/acme/base@{}",
            ops.base.digest()
        )),
        "{asked:?}"
    );
    assert!(
        report.to_string().contains("attestation read from"),
        "{report}"
    );
}

#[test]
fn an_upstream_signed_by_another_team_unsigned_unowned_or_tampered_breaks_its_link() {
    // The bought base signed by web, not by operations whose rule covers it.
    let web = PrivateKey::generate(KeyKind::Ed25519).unwrap();
    let (ops, dev, _dir, mut trust) = two_projects(true, Some(&web));
    trust.add_key("web", web.public_key().clone());
    let registry = |store| Registry {
        store,
        asked: Default::default(),
        tamper: false,
    };
    let verify_dev = |trust: &TrustConfig, registry: &Registry| {
        verify_chain_with(
            &dev,
            "dev/app",
            trust,
            &Policy::default(),
            now(),
            Some(registry),
        )
        .unwrap()
    };
    let report = verify_dev(&trust, &registry(ops.store));
    assert_broken_at(
        &report,
        2,
        |p| matches!(p, Problem::WrongTeam { owner, signed_by, .. } if owner == "operations" && signed_by == "web"),
    );
    assert_eq!(
        report.links[2].image.as_deref(),
        Some("registry.acme.example/acme/base")
    );

    // Unsigned upstream: nothing in the store, nothing in the registry.
    let (ops, dev, _dir, trust) = two_projects(true, None);
    strip(&ops.store, &ops.core);
    let report = verify_chain_with(
        &dev,
        "dev/app",
        &trust,
        &Policy::default(),
        now(),
        Some(&registry(ops.store)),
    )
    .unwrap();
    assert_broken_at(&report, 1, |p| *p == Problem::MissingAttestation);

    // No owner rule: the upstream is nobody's, and the registry is not asked.
    let (ops, dev, _dir, trust) = two_projects(false, None);
    let asking = registry(ops.store);
    let report = verify_chain_with(
        &dev,
        "dev/app",
        &trust,
        &Policy::default(),
        now(),
        Some(&asking),
    )
    .unwrap();
    assert_broken_at(
        &report,
        1,
        |p| matches!(p, Problem::UnknownImage { image } if image == UPSTREAM),
    );
    assert!(asking.asked.borrow().is_empty());

    // A registry answering manifests that do not hash to their digest.
    let (ops, dev, _dir, trust) = two_projects(true, None);
    let lying = Registry {
        store: ops.store,
        asked: Default::default(),
        tamper: true,
    };
    let report = verify_chain_with(
        &dev,
        "dev/app",
        &trust,
        &Policy::default(),
        now(),
        Some(&lying),
    )
    .unwrap();
    assert_broken_at(&report, 1, |p| matches!(p, Problem::BadAttestation { .. }));
    assert!(
        report.summary().contains("other bytes than its digest"),
        "{}",
        report.summary()
    );
}

/// A vendor's cosign signature of `base` bought from `repository`, by `key`.
fn cosign_evidence(
    base: &Image,
    repository: &str,
    key: &PrivateKey,
) -> strata_attest::evidence::Evidence {
    use base64::Engine as _;
    let payload = serde_json::to_vec(&serde_json::json!({
        "critical": {
            "identity": {"docker-reference": repository},
            "image": {"docker-manifest-digest": base.digest().to_string()},
            "type": strata_attest::vendor::COSIGN_TYPE,
        },
        "optional": null,
    }))
    .unwrap();
    strata_attest::evidence::Evidence::Cosign {
        annotations: BTreeMap::from([(
            strata_attest::vendor::COSIGN_SIGNATURE_ANNOTATION.to_string(),
            base64::engine::general_purpose::STANDARD.encode(key.sign(&payload)),
        )]),
        payload,
    }
}

#[test]
fn a_bought_base_needs_its_vendor_signature_in_the_store() {
    use strata_attest::custody::VendorRequirement;
    use strata_attest::evidence;
    use strata_attest::vendor::VendorKey;

    let mut c = chain(true);
    // Without signed_by: the base link is as before, and says nothing of a vendor.
    let report = verify(&c, APP);
    assert!(report.verified, "{report}");
    assert!(report.links[2].vendor.is_none());
    let json = serde_json::to_value(&report).unwrap();
    assert!(json["links"][2].get("vendor").is_none(), "{json:#}");

    let vendor = PrivateKey::generate(KeyKind::EcdsaP256).unwrap();
    let mallory = PrivateKey::generate(KeyKind::EcdsaP256).unwrap();
    let reference = format!("reg.example/vendor/base:1@{}", c.base.digest());
    c.trust.set_vendor(
        BASE,
        VendorRequirement {
            reference: reference.clone(),
            key_file: "vendor.pub".into(),
            key: VendorKey::Cosign(Box::new(vendor.public_key().clone())),
        },
    );
    // Nothing kept: the bottom link is broken, named in one line.
    let report = verify(&c, APP);
    assert_broken_at(
        &report,
        2,
        |p| matches!(p, Problem::MissingVendorSignature { key, .. } if key == "vendor.pub"),
    );
    assert_eq!(
        report.summary(),
        format!(
            "chain of custody broken at {BASE} ({}): bought base reg.example/vendor/base@{}: \
             no vendor signature in the store (signed_by vendor.pub in strata.toml)",
            c.base.digest(),
            c.base.digest()
        )
    );

    // Signed by another key only: named with the reason.
    let foreign = evidence::keep(
        &c.store,
        c.base.descriptor(),
        &reference,
        &cosign_evidence(&c.base, "reg.example/vendor/base", &mallory),
    )
    .unwrap();
    let report = verify(&c, APP);
    assert_broken_at(&report, 2, |p| {
        matches!(p, Problem::VendorSignature { reason, .. }
            if reason.contains("does not verify with this key"))
    });
    // The vendor's signature for another repository: a replay.
    let kept = evidence::keep(
        &c.store,
        c.base.descriptor(),
        &reference,
        &cosign_evidence(&c.base, "reg.example/other/base", &vendor),
    )
    .unwrap();
    let report = verify(&c, APP);
    assert!(!report.verified, "{report}");
    c.store
        .refs()
        .remove_root(&Digest::from_oci(kept.digest()).unwrap())
        .unwrap();

    // The vendor's signature kept: verified, the link names the vendor's key.
    let good = evidence::keep(
        &c.store,
        c.base.descriptor(),
        &reference,
        &cosign_evidence(&c.base, "reg.example/vendor/base", &vendor),
    )
    .unwrap();
    let report = verify(&c, APP);
    assert!(report.verified, "{report}");
    let link = report.links[2].vendor.as_ref().expect("the vendor link");
    assert_eq!(link.key, vendor.public_key().id().to_string());
    assert_eq!(link.format, "cosign");
    assert_eq!(link.evidence, Digest::from_oci(good.digest()).unwrap());
    assert!(
        report.to_string().contains(&format!(
            "base: signed by the vendor, key {}",
            vendor.public_key().id()
        )),
        "{report}"
    );
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(
        json["links"][2]["vendor"]["key"],
        vendor.public_key().id().to_string()
    );
    // The other links carry no vendor.
    assert!(json["links"][0].get("vendor").is_none());
    let _ = foreign;
}
