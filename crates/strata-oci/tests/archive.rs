//! `strata export`'s archives of one stored image: `docker save`'s layout and an OCI layout in a
//! tar, read back entry by entry.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use strata_oci::archive::{ArchiveFormat, export};
use strata_oci::tar::{Entry, LayerOptions, Metadata};
use strata_oci::{Compression, Store};

/// A store with `t/img:1`: two gzip layers, the upper one deleting a file of the lower.
fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::init(dir.path().join("store")).unwrap();
    let options = LayerOptions {
        compression: Compression::Gzip,
        source_date_epoch: 0,
    };
    let meta = Metadata::new(0o644, 0, 0);
    let mut lower = store.layer_writer(options).unwrap();
    lower
        .append_all(vec![
            Entry::dir("etc", Metadata::new(0o755, 0, 0)),
            Entry::file_bytes("etc/old", b"old".to_vec(), meta.clone()),
        ])
        .unwrap();
    let lower = lower.finish().unwrap();
    let mut upper = store.layer_writer(options).unwrap();
    upper
        .append_all(vec![
            Entry::whiteout("etc/old").unwrap(),
            Entry::file_bytes("etc/motd", b"Welcome\n".to_vec(), meta),
        ])
        .unwrap();
    let upper = upper.finish().unwrap();
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": [lower.diff_id.to_string(), upper.diff_id.to_string()]},
    });
    let config: strata_oci::ImageConfiguration = serde_json::from_value(config).unwrap();
    let image = store
        .write_image(&config, &[lower.descriptor, upper.descriptor], None)
        .unwrap();
    store.refs().tag("t/img:1", image.descriptor()).unwrap();
    (dir, store)
}

fn entries(path: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut archive = tar::Archive::new(std::fs::File::open(path).unwrap());
    archive
        .entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let name = e.path().unwrap().to_string_lossy().into_owned();
            let mut bytes = Vec::new();
            e.read_to_end(&mut bytes).unwrap();
            (name, bytes)
        })
        .collect()
}

#[test]
fn docker_archive_has_docker_saves_layout_with_uncompressed_layers() {
    let (dir, store) = store();
    let image = store.image("t/img:1").unwrap();
    let dest = dir.path().join("out/img.tar");
    std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
    let report = export(&store, "t/img:1", ArchiveFormat::DockerArchive, &dest).unwrap();
    assert_eq!(report.tag.as_deref(), Some("localhost/t/img:1"));
    let files = entries(&dest);
    let manifest: serde_json::Value = serde_json::from_slice(&files["manifest.json"]).unwrap();
    assert_eq!(manifest[0]["RepoTags"][0], "localhost/t/img:1");
    let config_name = manifest[0]["Config"].as_str().unwrap();
    assert_eq!(
        files[config_name],
        store
            .blobs()
            .read_descriptor(image.config_descriptor())
            .unwrap()
    );
    let diff_ids = image.diff_ids().unwrap();
    for (layer, diff_id) in manifest[0]["Layers"]
        .as_array()
        .unwrap()
        .iter()
        .zip(&diff_ids)
    {
        let bytes = &files[layer.as_str().unwrap()];
        assert_eq!(
            strata_oci::Digest::of(bytes),
            *diff_id,
            "layers are stored uncompressed"
        );
    }
    let repositories: serde_json::Value = serde_json::from_slice(&files["repositories"]).unwrap();
    assert_eq!(repositories["localhost/t/img"]["1"], diff_ids[1].hex());
    // Nothing but the archive is left in the directory.
    let left: Vec<_> = std::fs::read_dir(dest.parent().unwrap()).unwrap().collect();
    assert_eq!(left.len(), 1);
}

#[test]
fn oci_archive_holds_the_image_blobs_as_stored() {
    let (dir, store) = store();
    let image = store.image("t/img:1").unwrap();
    let dest = dir.path().join("img-oci.tar");
    export(&store, "t/img:1", ArchiveFormat::OciArchive, &dest).unwrap();
    let files = entries(&dest);
    assert_eq!(
        files["oci-layout"],
        strata_oci::layout::OCI_LAYOUT.as_bytes()
    );
    let index: serde_json::Value = serde_json::from_slice(&files["index.json"]).unwrap();
    assert_eq!(index["manifests"][0]["digest"], image.digest().to_string());
    assert_eq!(
        index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"],
        "localhost/t/img:1"
    );
    let blobs: Vec<&String> = files
        .keys()
        .filter(|k| k.len() > "blobs/sha256/".len())
        .filter(|k| k.starts_with("blobs/sha256/"))
        .collect();
    assert_eq!(blobs.len(), 4, "manifest, config, two layers");
    for (name, bytes) in &files {
        if let Some(hex) = name.strip_prefix("blobs/sha256/").filter(|h| !h.is_empty()) {
            assert_eq!(strata_oci::Digest::of(bytes).hex(), hex);
        }
    }
    assert!(
        export(&store, "t/none:1", ArchiveFormat::OciArchive, &dest)
            .unwrap_err()
            .to_string()
            .contains("t/none:1")
    );
}
