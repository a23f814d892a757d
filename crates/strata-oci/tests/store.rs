//! The store as a whole: images, fsck, gc, referrers, and concurrent taggers across processes.

use std::collections::HashMap;
use std::fs;
use std::process::Command;

use oci_spec::image::{Descriptor, ImageManifest, MediaType};
use strata_oci::fsck::ProblemKind;
use strata_oci::image::new_manifest;
use strata_oci::{Digest, Error, GcOptions, Store, random, validate};

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::init(dir.path().join("store")).unwrap();
    (dir, store)
}

/// An artifact manifest (empty config) pointing at `subject`.
fn referrer(store: &Store, subject: &Descriptor, artifact_type: &str, note: &str) -> ImageManifest {
    let empty = store
        .blobs()
        .put(b"{}")
        .unwrap()
        .descriptor(MediaType::EmptyJSON);
    let payload = store
        .blobs()
        .put(note.as_bytes())
        .unwrap()
        .descriptor(MediaType::Other("text/plain".into()));
    let mut m = new_manifest(empty, vec![payload]);
    m.set_artifact_type(Some(MediaType::Other(artifact_type.into())));
    let mut subject = subject.clone();
    subject.set_annotations(None);
    m.set_subject(Some(subject));
    m.set_annotations(Some(HashMap::from([(
        "note".to_string(),
        note.to_string(),
    )])));
    m
}

#[test]
fn random_images_validate_and_read_back() {
    let (_dir, store) = store();
    let img = random::image(&store, 3, 4096).unwrap();
    store.refs().tag("acme/random:1", img.descriptor()).unwrap();
    validate::image(&store, "acme/random:1").unwrap();
    let read = store.image("localhost/acme/random:1").unwrap();
    assert_eq!(read.digest(), img.digest());
    assert_eq!(read.layers().len(), 3);
    assert_eq!(read.diff_ids().unwrap().len(), 3);
    assert!(read.size() > 3 * 4096 / 2);
    // Seeded images are reproducible; unseeded ones differ.
    let a = random::image_with_seed(&store, 2, 100, 7).unwrap();
    let b = random::image_with_seed(&store, 2, 100, 7).unwrap();
    assert_eq!(a.digest(), b.digest());
    assert_ne!(random::image(&store, 1, 10).unwrap().digest(), img.digest());
}

#[test]
fn layer_chains_lists_every_indexed_images_diff_ids_and_gc_then_runs_under_the_lock() {
    let (_dir, store) = store();
    let tagged = random::image(&store, 2, 64).unwrap();
    store.refs().tag("acme/a:1", tagged.descriptor()).unwrap();
    let orphan = random::image(&store, 1, 64).unwrap();
    let chains = store.maintenance().layer_chains().unwrap();
    assert_eq!(chains, vec![tagged.diff_ids().unwrap()]);
    let (report, busy) = store
        .maintenance()
        .gc_then(&GcOptions::default(), |report| {
            // No lease can be taken while gc_then's hook runs: a build waits for it.
            assert!(report.removed.iter().any(|b| b.digest == orphan.digest()));
            let probe = std::process::Command::new("flock")
                .args(["--shared", "--nonblock"])
                .arg(store.root().join(".strata/gc.lock"))
                .arg("true")
                .status()
                .unwrap();
            !probe.success()
        })
        .unwrap();
    assert!(busy, "the hook ran without the exclusive gc lock");
    assert_eq!(report.removed.len(), 3);
}

#[test]
fn validate_catches_a_wrong_diff_id() {
    let (_dir, store) = store();
    let img = random::image(&store, 1, 64).unwrap();
    let mut config = img.config().clone();
    let mut rootfs = config.rootfs().clone();
    rootfs.set_diff_ids(vec![Digest::of(b"not it").to_string()]);
    config.set_rootfs(rootfs);
    let bad = store.write_image(&config, img.layers(), None).unwrap();
    store.refs().tag("bad/image", bad.descriptor()).unwrap();
    let err = validate::image(&store, "bad/image").unwrap_err();
    assert!(err.to_string().contains("uncompresses to"), "{err}");
}

#[test]
fn write_image_checks_its_inputs() {
    let (_dir, store) = store();
    let img = random::image(&store, 2, 64).unwrap();
    let err = store
        .write_image(img.config(), &img.layers()[..1], None)
        .unwrap_err();
    assert!(err.to_string().contains("2 diff_ids for 1 layers"), "{err}");
    let mut missing = img.layers().to_vec();
    missing[0].set_digest(Digest::of(b"gone").to_oci());
    assert!(matches!(
        store.write_image(img.config(), &missing, None),
        Err(Error::BlobNotFound(_))
    ));
}

#[test]
fn fsck_reports_corrupt_and_missing_blobs_with_their_images() {
    let (_dir, store) = store();
    let img = random::image(&store, 2, 1000).unwrap();
    store.refs().tag("acme/app:1", img.descriptor()).unwrap();
    store.refs().tag("acme/app:2", img.descriptor()).unwrap();
    let clean = store.maintenance().fsck().unwrap();
    assert!(clean.is_ok(), "{:?}", clean.problems);
    assert_eq!(clean.roots, 2);
    assert_eq!(clean.blobs, 4);

    let layer0 = Digest::from_oci(img.layers()[0].digest()).unwrap();
    let layer1 = Digest::from_oci(img.layers()[1].digest()).unwrap();
    fs::write(store.blobs().path(&layer0), b"garbage").unwrap();
    fs::remove_file(store.blobs().path(&layer1)).unwrap();
    let report = store.maintenance().fsck().unwrap();
    assert!(!report.is_ok());
    let corrupt = report
        .problems
        .iter()
        .find(|p| p.kind == ProblemKind::Corrupt)
        .unwrap();
    assert_eq!(corrupt.digest.as_ref(), Some(&layer0));
    assert_eq!(
        corrupt.referenced_by,
        ["localhost/acme/app:1", "localhost/acme/app:2"]
    );
    assert!(
        corrupt
            .to_string()
            .starts_with(&format!("corrupt blob {layer0}"))
    );
    let missing = report
        .problems
        .iter()
        .find(|p| p.kind == ProblemKind::Missing)
        .unwrap();
    assert_eq!(missing.digest.as_ref(), Some(&layer1));
    assert_eq!(report.problems.len(), 2);
}

#[test]
fn fsck_reports_size_mismatch_and_bad_manifests() {
    let (_dir, store) = store();
    let not_json = store.blobs().put(b"not json").unwrap();
    let mut d = not_json.descriptor(MediaType::ImageManifest);
    store.refs().tag("x/broken", &d).unwrap();
    d.set_size(1);
    store
        .refs()
        .update(|index| {
            let mut list = index.manifests().clone();
            let mut wrong = d.clone();
            wrong.set_annotations(Some(HashMap::from([(
                "org.opencontainers.image.ref.name".to_string(),
                "localhost/x/wrong:latest".to_string(),
            )])));
            list.push(wrong);
            index.set_manifests(list);
            Ok((true, ()))
        })
        .unwrap();
    let report = store.maintenance().fsck().unwrap();
    let kinds: Vec<_> = report.problems.iter().map(|p| p.kind).collect();
    assert_eq!(
        kinds,
        [ProblemKind::SizeMismatch, ProblemKind::InvalidManifest]
    );
    assert_eq!(
        report.problems[0].referenced_by,
        ["localhost/x/wrong:latest"]
    );
    assert_eq!(
        report.problems[1].referenced_by,
        ["localhost/x/broken:latest"]
    );
}

#[test]
fn gc_keeps_referenced_blobs_and_removes_the_rest() {
    let (_dir, store) = store();
    let kept = random::image(&store, 2, 500).unwrap();
    store.refs().tag("acme/kept", kept.descriptor()).unwrap();
    let dropped = random::image(&store, 2, 500).unwrap();
    store
        .refs()
        .tag("acme/dropped", dropped.descriptor())
        .unwrap();
    store.refs().untag("acme/dropped").unwrap();
    let stray_temp = store.tmp_dir().join("blob-crashed");
    fs::write(&stray_temp, b"half").unwrap();

    let dry = store
        .maintenance()
        .gc(&GcOptions { dry_run: true })
        .unwrap();
    assert_eq!(dry.removed.len(), 4, "manifest, config, 2 layers");
    assert_eq!(dry.temp_files, vec![stray_temp.clone()]);
    assert!(stray_temp.exists(), "dry run removes nothing");
    assert!(store.blobs().has(&dropped.digest()));

    let report = store.maintenance().gc(&GcOptions::default()).unwrap();
    assert_eq!(report.removed, dry.removed);
    assert_eq!(report.kept, 4);
    assert!(!stray_temp.exists());
    assert!(!store.blobs().has(&dropped.digest()));
    validate::image(&store, "acme/kept").unwrap();
    assert!(store.maintenance().fsck().unwrap().is_ok());
    // A second gc finds nothing.
    assert!(
        store
            .maintenance()
            .gc(&GcOptions::default())
            .unwrap()
            .removed
            .is_empty()
    );
}

#[test]
fn gc_waits_for_leases() {
    let (_dir, store) = store();
    let lease = store.lease().unwrap();
    let err = store.maintenance().gc(&GcOptions::default()).unwrap_err();
    assert!(matches!(err, Error::Busy { .. }), "{err}");
    drop(lease);
    store.maintenance().gc(&GcOptions::default()).unwrap();
}

#[test]
fn referrers_are_found_kept_with_their_subject_and_dropped_after_it() {
    let (_dir, store) = store();
    let img = random::image(&store, 1, 100).unwrap();
    store.refs().tag("acme/signed", img.descriptor()).unwrap();
    let sig = store
        .put_referrer(&referrer(
            &store,
            img.descriptor(),
            "application/vnd.dev.sig",
            "sig",
        ))
        .unwrap();
    let att = store
        .put_referrer(&referrer(
            &store,
            img.descriptor(),
            "application/vnd.in-toto+json",
            "att",
        ))
        .unwrap();
    // A referrer of the signature (e.g. a countersignature).
    let counter = store
        .put_referrer(&referrer(
            &store,
            &sig,
            "application/vnd.dev.sig",
            "counter",
        ))
        .unwrap();

    let all = store.referrers(&img.digest(), None).unwrap();
    assert_eq!(all.len(), 2);
    let only_sig = store
        .referrers(&img.digest(), Some("application/vnd.dev.sig"))
        .unwrap();
    assert_eq!(only_sig.len(), 1);
    assert_eq!(only_sig[0].digest(), sig.digest());
    assert_eq!(
        only_sig[0].artifact_type().as_ref().unwrap().to_string(),
        "application/vnd.dev.sig"
    );
    assert_eq!(only_sig[0].annotations().as_ref().unwrap()["note"], "sig");
    // Referrers carry no tag.
    assert_eq!(store.refs().list().unwrap().len(), 1);

    let report = store.maintenance().gc(&GcOptions::default()).unwrap();
    assert!(report.removed.is_empty(), "{:?}", report.removed);
    assert!(report.dangling_referrers.is_empty());

    store.refs().untag("acme/signed").unwrap();
    let report = store.maintenance().gc(&GcOptions::default()).unwrap();
    let mut dangling = report.dangling_referrers.clone();
    dangling.sort();
    let mut expected: Vec<Digest> = [&sig, &att, &counter]
        .iter()
        .map(|d| Digest::from_oci(d.digest()).unwrap())
        .collect();
    expected.sort();
    assert_eq!(dangling, expected);
    assert!(store.refs().index().unwrap().manifests().is_empty());
    let (blobs, _) = store.blobs().list().unwrap();
    assert!(blobs.is_empty(), "{blobs:?}");
    assert!(store.referrers(&img.digest(), None).unwrap().is_empty());
}

#[test]
fn put_referrer_needs_a_subject() {
    let (_dir, store) = store();
    let empty = store
        .blobs()
        .put(b"{}")
        .unwrap()
        .descriptor(MediaType::EmptyJSON);
    let err = store
        .put_referrer(&new_manifest(empty, vec![]))
        .unwrap_err();
    assert!(err.to_string().contains("subject"), "{err}");
}

/// Helper run in a child process by `two_processes_tagging_lose_nothing`.
#[test]
fn child_tagger() {
    let (Ok(dir), Ok(prefix)) = (
        std::env::var("STRATA_OCI_TEST_STORE"),
        std::env::var("STRATA_OCI_TEST_PREFIX"),
    ) else {
        return; // only meaningful as a child process
    };
    let store = Store::open(&dir).unwrap();
    let d = store.refs().resolve("seed/image").unwrap();
    let count: usize = std::env::var("STRATA_OCI_TEST_COUNT")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(40);
    for i in 0..count {
        store.refs().tag(&format!("{prefix}/img:v{i}"), &d).unwrap();
    }
}

fn spawn_tagger(store: &Store, prefix: &str, count: usize) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_tagger", "--test-threads=1"])
        .env("STRATA_OCI_TEST_STORE", store.root())
        .env("STRATA_OCI_TEST_PREFIX", prefix)
        .env("STRATA_OCI_TEST_COUNT", count.to_string())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn two_processes_tagging_lose_nothing() {
    let (_dir, store) = store();
    let img = random::image(&store, 1, 10).unwrap();
    store.refs().tag("seed/image", img.descriptor()).unwrap();
    let children: Vec<_> = ["p1", "p2", "p3"]
        .iter()
        .map(|prefix| spawn_tagger(&store, prefix, 40))
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    assert_eq!(store.refs().list().unwrap().len(), 1 + 3 * 40);
    assert!(store.maintenance().fsck().unwrap().is_ok());
}

#[test]
fn a_killed_tagger_leaves_a_valid_index() {
    let (_dir, store) = store();
    let img = random::image(&store, 1, 10).unwrap();
    store.refs().tag("seed/image", img.descriptor()).unwrap();
    for round in 0..3 {
        let before = store.refs().list().unwrap().len();
        let mut child = spawn_tagger(&store, &format!("k{round}"), 100_000);
        // Kill it mid-stream, once it has written some tags (no timing involved).
        while store.refs().list().unwrap().len() < before + 3 {
            std::thread::yield_now();
        }
        child.kill().unwrap();
        child.wait().unwrap();
        // index.json is always whole: the old or the new version.
        let tags = store.refs().list().unwrap();
        assert!(tags.iter().any(|t| t.name == "localhost/seed/image:latest"));
        assert!(store.maintenance().fsck().unwrap().is_ok());
    }
    // Temp files a killed writer may leave are gc's to remove; nothing referenced goes.
    let report = store.maintenance().gc(&GcOptions::default()).unwrap();
    assert!(report.removed.is_empty());
    validate::image(&store, "seed/image").unwrap();
}

// Issue 14: sha512 content (pushed or pulled) lives under blobs/sha512; fsck hashes it with
// sha512 and gc keeps what a tag reaches.
#[test]
fn sha512_blobs_are_checked_by_fsck_and_kept_by_gc() {
    use std::io::Write;
    use strata_oci::Algorithm::Sha512;
    let (_dir, store) = store();
    let config = store.blobs().put_as(b"{}", Sha512).unwrap();
    let layer = store.blobs().put_as(b"layer bytes", Sha512).unwrap();
    let unreferenced = store.blobs().put_as(b"nobody's", Sha512).unwrap();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config.digest.to_string(), "size": config.size},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": layer.digest.to_string(), "size": layer.size}],
    });
    let bytes = serde_json::to_vec(&manifest).unwrap();
    let mut writer = store.blobs().writer_for(Sha512).unwrap();
    writer.write_all(&bytes).unwrap();
    let info = writer.commit(None).unwrap();
    assert_eq!(info.digest, Digest::of_with(Sha512, &bytes));
    store
        .refs()
        .tag("acme/sha512:1", &info.descriptor(MediaType::ImageManifest))
        .unwrap();
    assert_eq!(
        store
            .refs()
            .resolve(&format!("acme/sha512@{}", info.digest))
            .unwrap()
            .digest()
            .to_string(),
        info.digest.to_string()
    );
    let report = store.maintenance().fsck().unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    assert_eq!(report.blobs, 4);
    let gc = store.maintenance().gc(&GcOptions::default()).unwrap();
    assert_eq!(
        gc.removed.iter().map(|b| &b.digest).collect::<Vec<_>>(),
        [&unreferenced.digest]
    );
    assert!(store.blobs().has(&layer.digest));
    // Corrupt content under a sha512 name is found and blamed on the tag.
    fs::write(store.blobs().path(&layer.digest), b"other bytes").unwrap();
    let report = store.maintenance().fsck().unwrap();
    let problem = report
        .problems
        .iter()
        .find(|p| p.kind == ProblemKind::Corrupt)
        .expect("a corrupt blob");
    assert_eq!(problem.digest.as_ref(), Some(&layer.digest));
    assert_eq!(problem.referenced_by, ["localhost/acme/sha512:1"]);
}
