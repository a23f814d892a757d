//! Hand-made stores for the inventory's tests: dpkg databases in layers, and images of those
//! layers with the annotations strata's builds put on them (chain image, owner team, base).

use std::collections::HashMap;

use strata_oci::annotations::{ANNOTATION_CHAIN_IMAGE, ANNOTATION_OWNER};
use strata_oci::image_config::{History, ImageConfig};
use strata_oci::tar::{Entry, LayerOptions, Metadata};
use strata_oci::{Descriptor, MediaType, Store};

const BASE_DIGEST: &str = "org.opencontainers.image.base.digest";

/// A root-owned 0644 file's metadata.
pub fn meta() -> Metadata {
    Metadata::new(0o644, 0, 0)
}

/// Write a layer of `entries`; its descriptor and diff_id.
pub fn layer(store: &Store, entries: Vec<Entry>) -> (Descriptor, String) {
    let mut writer = store.layer_writer(LayerOptions::default()).unwrap();
    writer.append_all(entries).unwrap();
    let layer = writer.finish().unwrap();
    (layer.descriptor, layer.diff_id.to_string())
}

fn stanza(name: &str, version: &str, source: &str) -> String {
    format!(
        "Package: {name}\nStatus: install ok installed\nArchitecture: amd64\nSource: {source}\nVersion: {version}\nDescription: {name}\n\n"
    )
}

/// `/var/lib/dpkg/status` listing `(name, version, source)` packages, installed.
pub fn status(packages: &[(&str, &str, &str)]) -> Entry {
    let text: String = packages.iter().map(|(n, v, s)| stanza(n, v, s)).collect();
    Entry::file_bytes("var/lib/dpkg/status", text.into_bytes(), meta())
}

/// An image of `layers` (each made by the step of the same rank in `created_by`), built by chain
/// image `chain` of `team` on `base`, tagged `tag` when given.
pub fn image(
    store: &Store,
    tag: Option<&str>,
    chain: &str,
    team: &str,
    base: Option<&Descriptor>,
    layers: &[&(Descriptor, String)],
    created_by: &[&str],
) -> Descriptor {
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
    let mut manifest =
        strata_oci::image::new_manifest(config, layers.iter().map(|(d, _)| d.clone()).collect());
    let mut annotations = HashMap::from([
        (ANNOTATION_CHAIN_IMAGE.to_string(), chain.to_string()),
        (ANNOTATION_OWNER.to_string(), team.to_string()),
    ]);
    if let Some(base) = base {
        annotations.insert(BASE_DIGEST.to_string(), base.digest().to_string());
    }
    manifest.set_annotations(Some(annotations));
    let descriptor = store.blobs().put_manifest(&manifest).unwrap();
    if let Some(tag) = tag {
        store.refs().tag(tag, &descriptor).unwrap();
    }
    descriptor
}
