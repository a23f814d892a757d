//! `strata layers`, `strata diff` and `strata images --tree` over a hand-made store (no root
//! needed): wasted bytes of files later layers overwrite or delete, dive's efficiency score,
//! file-level diffs, and a tree where a shared prefix appears once.

use std::path::Path;

use assert_cmd::cargo::cargo_bin_cmd;
use serde_json::Value;
use strata_oci::image_config::{History, ImageConfig};
use strata_oci::tar::{Entry, LayerOptions, Metadata};
use strata_oci::{Descriptor, MediaType, Store};

fn meta() -> Metadata {
    Metadata::new(0o644, 0, 0)
}

fn layer(store: &Store, entries: Vec<Entry>) -> (Descriptor, String) {
    let mut writer = store.layer_writer(LayerOptions::default()).unwrap();
    writer.append_all(entries).unwrap();
    let layer = writer.finish().unwrap();
    (layer.descriptor, layer.diff_id.to_string())
}

/// Write and tag an image of `layers`, each made by the `created_by` beside it.
fn image(store: &Store, tag: &str, layers: &[&(Descriptor, String)], created_by: &[&str]) {
    let mut config = ImageConfig::scratch();
    for ((_, diff_id), step) in layers.iter().zip(created_by) {
        config.rootfs.diff_ids.push(diff_id.clone());
        config.history.push(History {
            created_by: Some(step.to_string()),
            ..History::default()
        });
    }
    let config = store
        .blobs()
        .put_json(&config, MediaType::ImageConfig)
        .unwrap();
    let manifest =
        strata_oci::image::new_manifest(config, layers.iter().map(|(d, _)| d.clone()).collect());
    let descriptor = store.blobs().put_manifest(&manifest).unwrap();
    store.refs().tag(tag, &descriptor).unwrap();
}

/// Layer 0 writes /a (100 B), /b (50 B), /d/x (30 B) and /keep; layer 1 deletes /a and rewrites
/// /b (60 B); layer 2 deletes the directory /d.
fn store(dir: &Path) -> Store {
    let store = Store::init(dir).unwrap();
    let l0 = layer(
        &store,
        vec![
            Entry::file_bytes("a", vec![b'a'; 100], meta()),
            Entry::file_bytes("b", vec![b'b'; 50], meta()),
            Entry::dir("d", Metadata::new(0o755, 0, 0)),
            Entry::file_bytes("d/x", vec![b'x'; 30], meta()),
            Entry::file_bytes("keep", b"same".to_vec(), meta()),
        ],
    );
    let l1 = layer(
        &store,
        vec![
            Entry::whiteout("a").unwrap(),
            Entry::file_bytes("b", vec![b'B'; 60], Metadata::new(0o600, 33, 33)),
        ],
    );
    let l2 = layer(&store, vec![Entry::whiteout("d").unwrap()]);
    let other = layer(
        &store,
        vec![Entry::file_bytes("other", b"o".to_vec(), meta())],
    );
    image(&store, "acme/one", &[&l0], &["COPY one"]);
    image(&store, "acme/two", &[&l0, &l1], &["COPY one", "RUN two"]);
    image(
        &store,
        "acme/three",
        &[&l0, &l1, &l2],
        &["COPY one", "RUN two", "RUN rm -r /d"],
    );
    image(
        &store,
        "acme/sibling",
        &[&l0, &other],
        &["COPY one", "COPY other"],
    );
    store
}

fn strata_json(store: &Path, args: &[&str]) -> Value {
    let out = cargo_bin_cmd!("strata")
        .arg("--store")
        .arg(store)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "strata {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn wasted_bytes_are_charged_to_the_layer_holding_them_and_efficiency_is_dives() {
    let dir = tempfile::tempdir().unwrap();
    store(dir.path());
    let report = strata_json(dir.path(), &["layers", "acme/three", "--files", "--json"]);
    let layers = report["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 3);
    // /a (deleted by layer 1), /b (overwritten by layer 1), /d/x (deleted with /d by layer 2).
    assert_eq!(layers[0]["wastedBytes"], 180);
    assert_eq!(layers[1]["wastedBytes"], 0);
    assert_eq!(layers[1]["shadowedBytes"], 150);
    assert_eq!(layers[2]["shadowedBytes"], 30);
    assert_eq!(layers[2]["deleted"][0], "/d");
    assert_eq!(report["wastedBytes"], 180);
    let fate = |path: &str| {
        layers[0]["files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["path"] == path)
            .unwrap_or_else(|| panic!("{path} not listed"))
            .clone()
    };
    assert_eq!(fate("/a")["fate"], "deleted");
    assert_eq!(fate("/a")["by"], 1);
    assert_eq!(fate("/b")["fate"], "overwritten");
    assert_eq!(fate("/d/x")["fate"], "deleted");
    assert_eq!(fate("/d/x")["by"], 2);
    assert_eq!(fate("/keep")["fate"], "kept");
    // dive: /a 100+0 (min 0), /b 50+60 (min 50), /d/x 30, whiteout of dir /d 30, /keep 4:
    // (0 + 50 + 30 + 30 + 4) / (100 + 110 + 30 + 30 + 4).
    let expected = 114.0 / 274.0;
    let efficiency = report["efficiency"].as_f64().unwrap();
    assert!((efficiency - expected).abs() < 1e-9, "{efficiency}");
    assert_eq!(report["potentialWastedBytes"], 210);
    assert_eq!(report["inefficiencies"][0]["path"], "/b");
    assert_eq!(report["inefficiencies"][0]["count"], 2);

    // The text form reports the same and fits 100 columns.
    let out = cargo_bin_cmd!("strata")
        .arg("--store")
        .arg(dir.path())
        .args(["layers", "acme/three", "--files"])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("deleted by layer 1"), "{text}");
    assert!(text.contains("41.61 %"), "{text}");
    assert!(
        !text.contains('\x1b'),
        "no colour when stdout is not a terminal"
    );
    assert!(text.lines().all(|l| l.chars().count() <= 100), "{text}");
}

#[test]
fn diff_lists_changed_files_only() {
    let dir = tempfile::tempdir().unwrap();
    store(dir.path());
    let diff = strata_json(dir.path(), &["diff", "acme/one", "acme/three", "--json"]);
    assert_eq!(diff["commonPrefix"], 1);
    assert_eq!(diff["shared"].as_array().unwrap().len(), 1);
    assert_eq!(diff["added"].as_array().unwrap().len(), 2);
    assert_eq!(diff["removed"].as_array().unwrap().len(), 0);
    let files: Vec<(String, String)> = diff["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_string(),
                f["change"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        files,
        [
            ("/a".to_string(), "removed".to_string()),
            ("/b".to_string(), "modified".to_string()),
            ("/d".to_string(), "removed".to_string()),
            ("/d/x".to_string(), "removed".to_string()),
        ]
    );
    let b = &diff["files"][1];
    assert_eq!(b["before"]["size"], 50);
    assert_eq!(b["after"]["size"], 60);
    assert_eq!(b["after"]["mode"], 0o600);
    assert_eq!(b["after"]["uid"], 33);
    assert_ne!(b["before"]["contentDigest"], b["after"]["contentDigest"]);
}

#[test]
fn the_tree_shows_a_shared_prefix_once() {
    let dir = tempfile::tempdir().unwrap();
    store(dir.path());
    let tree = strata_json(dir.path(), &["images", "--tree", "--format", "json"]);
    assert_eq!(tree["images"], 4);
    let roots = tree["roots"].as_array().unwrap();
    assert_eq!(roots.len(), 1, "one bottom layer for all four images");
    let root = &roots[0];
    assert_eq!(root["createdBy"], "COPY one");
    assert_eq!(root["images"][0]["tags"][0], "localhost/acme/one:latest");
    // Two branches: RUN two (→ two, then three) and COPY other (→ sibling).
    let children = root["children"].as_array().unwrap();
    assert_eq!(children.len(), 2);
    // Cumulative sizes grow along a path.
    for child in children {
        assert!(child["cumulativeSize"].as_u64() > root["cumulativeSize"].as_u64());
    }
    // Only the branch of acme/two: its prefix and acme/three above it, not the sibling.
    let only = strata_json(dir.path(), &["images", "--tree", "--json", "acme/two"]);
    assert_eq!(only["images"], 2);
    assert_eq!(only["roots"][0]["children"].as_array().unwrap().len(), 1);
}
