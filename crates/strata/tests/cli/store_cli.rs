//! `strata images`, `strata store fsck`, `strata store gc` against real stores.

use std::fs;
use std::path::Path;

use assert_cmd::Command;
use predicates::prelude::*;
use strata_oci::{Digest, Store, random};

fn strata(store: &Path) -> Command {
    let mut cmd = Command::cargo_bin("strata").unwrap();
    cmd.env_remove("STRATA_STORE")
        .env_remove("STRATA_CHAIN")
        .arg("--store")
        .arg(store);
    cmd
}

fn store_with_image() -> (tempfile::TempDir, Store, strata_oci::Image) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::init(dir.path().join("store")).unwrap();
    let image = random::image(&store, 2, 2000).unwrap();
    store.refs().tag("acme/app:1", image.descriptor()).unwrap();
    (dir, store, image)
}

#[test]
fn images_lists_tags() {
    let (_dir, store, image) = store_with_image();
    strata(store.root())
        .arg("images")
        .assert()
        .success()
        .stdout(predicate::str::contains("REFERENCE"))
        .stdout(predicate::str::contains("localhost/acme/app:1"))
        .stdout(predicate::str::contains(format!(
            "sha256:{}",
            image.digest().short()
        )));
    let out = strata(store.root())
        .args(["images", "--json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let rows: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 1);
    assert_eq!(rows[0]["reference"], "localhost/acme/app:1");
    assert_eq!(rows[0]["digest"], image.digest().to_string());
    assert_eq!(rows[0]["size"], image.size());
}

#[test]
fn store_beside_the_chain_file_is_the_default() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::init(dir.path().join(".strata/store")).unwrap();
    let image = random::image(&store, 1, 10).unwrap();
    store.refs().tag("acme/x", image.descriptor()).unwrap();
    Command::cargo_bin("strata")
        .unwrap()
        .env_remove("STRATA_STORE")
        .env_remove("STRATA_CHAIN")
        .arg("-C")
        .arg(dir.path())
        .arg("images")
        .assert()
        .success()
        .stdout(predicate::str::contains("localhost/acme/x:latest"));
}

#[test]
fn missing_store_is_a_one_line_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nowhere");
    strata(&missing)
        .arg("images")
        .assert()
        .failure()
        .stderr(predicate::str::contains(format!(
            "cannot open the store {}",
            missing.display()
        )))
        .stderr(predicate::str::contains("not an OCI image layout"));
}

#[test]
fn fsck_passes_then_names_a_corrupt_blob() {
    let (_dir, store, image) = store_with_image();
    strata(store.root())
        .args(["store", "fsck"])
        .assert()
        .success()
        .stdout(predicate::str::contains("checked 4 blobs"))
        .stdout(predicate::str::contains(": ok"));

    let layer = Digest::from_oci(image.layers()[1].digest()).unwrap();
    fs::write(store.blobs().path(&layer), b"flipped bits").unwrap();
    strata(store.root())
        .args(["store", "fsck"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(format!("corrupt blob {layer}")))
        .stderr(predicate::str::contains("localhost/acme/app:1"))
        .stdout(predicate::str::contains("1 problem"));

    let out = strata(store.root())
        .args(["store", "fsck", "--json"])
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let report: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(report["problems"][0]["kind"], "corrupt");
    assert_eq!(report["problems"][0]["digest"], layer.to_string());
    assert_eq!(
        report["problems"][0]["referenced_by"][0],
        "localhost/acme/app:1"
    );
}

#[test]
fn gc_removes_only_unreferenced_blobs() {
    let (_dir, store, kept) = store_with_image();
    let orphan = random::image(&store, 1, 1000).unwrap();
    strata(store.root())
        .args(["store", "gc", "--dry-run"])
        .assert()
        .success()
        .stdout(predicate::str::contains(format!(
            "would remove {}",
            orphan.digest()
        )))
        .stdout(predicate::str::contains("would remove 3 blobs"));
    assert!(store.blobs().has(&orphan.digest()));

    let out = strata(store.root())
        .args(["store", "gc", "--json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let report: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(report["removed"].as_array().unwrap().len(), 3);
    assert_eq!(report["kept"], 4);
    assert!(!store.blobs().has(&orphan.digest()));
    assert!(store.blobs().has(&kept.digest()));
    strata_oci::validate::image(&store, "acme/app:1").unwrap();
    strata(store.root())
        .args(["store", "fsck"])
        .assert()
        .success();
}

#[test]
fn gc_refuses_while_a_build_holds_a_lease() {
    let (_dir, store, _image) = store_with_image();
    let lease = store.lease().unwrap();
    strata(store.root())
        .args(["store", "gc"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("is busy"));
    drop(lease);
    strata(store.root())
        .args(["store", "gc"])
        .assert()
        .success();
}

// Issue 14: a gc killed between unlinking blobs and rewriting index.json left entries pointing
// at missing blobs forever; `fsck --repair` drops them (and orphaned temp files) and says so.
#[test]
fn fsck_repair_drops_entries_whose_blobs_are_missing_and_orphaned_temp_files() {
    let (_dir, store, image) = store_with_image();
    let kept = random::image(&store, 1, 500).unwrap();
    store.refs().tag("acme/kept:1", kept.descriptor()).unwrap();
    // What the killed gc left: a layer of acme/app:1 gone, a writer's temp file, a build's dir.
    fs::remove_file(
        store
            .blobs()
            .path(&Digest::from_oci(image.layers()[0].digest()).unwrap()),
    )
    .unwrap();
    fs::write(store.tmp_dir().join("blob-orphan"), b"half").unwrap();
    fs::create_dir_all(store.tmp_dir().join("build-7/rootfs")).unwrap();
    strata(store.root())
        .args(["store", "fsck"])
        .assert()
        .failure();
    let out = strata(store.root())
        .args(["store", "fsck", "--repair", "--json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(
        v["repair"]["dropped_entries"],
        serde_json::json!(["localhost/acme/app:1"])
    );
    assert_eq!(
        v["repair"]["temp_files"].as_array().unwrap().len(),
        2,
        "{v}"
    );
    assert_eq!(v["fsck"]["problems"], serde_json::json!([]));
    // Nothing else was lost.
    assert_eq!(
        store.refs().resolve("acme/kept:1").unwrap().digest(),
        kept.descriptor().digest()
    );
    assert!(store.maintenance().fsck().unwrap().is_ok());
    assert_eq!(fs::read_dir(store.tmp_dir()).unwrap().count(), 0);
}

// Issue 14: two stores under one parent (`--store /x/a`, `--store /x/b`) shared `/x/events.db`
// and `/x/cache`; each store's own files now live inside it (the default `.strata/store`
// layout keeps `.strata/events.db` and `.strata/cache`).
#[test]
fn two_stores_under_one_parent_share_no_events_log() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    let b = dir.path().join("b");
    let store = Store::init(&a).unwrap();
    let image = random::image(&store, 1, 100).unwrap();
    store.refs().tag("acme/app:1", image.descriptor()).unwrap();
    Store::init(&b).unwrap();
    strata(&a).args(["rmi", "acme/app:1"]).assert().success();
    assert!(!dir.path().join("events.db").exists());
    assert!(a.join(".strata/events.db").exists());
    let log = |store: &Path| -> serde_json::Value {
        serde_json::from_slice(
            &strata(store)
                .args(["log", "--json"])
                .assert()
                .success()
                .get_output()
                .stdout,
        )
        .unwrap()
    };
    assert_eq!(log(&a).as_array().unwrap().len(), 1);
    let out = strata(&b)
        .args(["log", "--json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8_lossy(&out);
    assert!(
        text.contains("nothing recorded") || text.trim() == "[]",
        "{text}"
    );
}
