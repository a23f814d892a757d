//! `strata images --tree` over a generated store of 1,000 images with 20 layers each: reading the
//! index, 1,000 manifests and configs (digest-checked), building the tree of shared prefixes and
//! drawing it as text. Target: under 200 ms.
//!
//! The store is written directly (blobs, manifests, configs, `index.json`), without fsync: only
//! the reading side is measured. Layers are tiny distinct blobs; images share prefixes like a
//! supply chain: 5 base layers shared by all, then 5 of one of 10 middlewares, 5 of one of 100
//! applications, and 5 of their own, each image annotated with its chain image, team and base.
//! The base, middleware and application images are untagged (read through base digests); the
//! 1,000 tagged images have 20 layers each.

#![allow(clippy::print_stdout)]

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;
use strata_inspect::render::{TextOptions, tree_text};
use strata_inspect::{Catalog, LayerTree};
use strata_oci::{Digest, Store};

const IMAGES: usize = 1000;

fn put(root: &Path, bytes: &[u8]) -> Digest {
    let digest = Digest::of(bytes);
    std::fs::write(root.join("blobs/sha256").join(digest.hex()), bytes).unwrap();
    digest
}

/// Write an image of `layers` (digest, size) and return its manifest (digest, size).
fn image(
    root: &Path,
    layers: &[(Digest, u64)],
    chain_image: &str,
    team: &str,
    base: Option<&Digest>,
) -> (Digest, u64) {
    let history: Vec<_> = (0..layers.len())
        .map(|k| json!({"created": "2026-11-23T00:00:00Z", "created_by": format!("RUN step {k} of {chain_image}")}))
        .collect();
    let config = json!({
        "architecture": "amd64", "os": "linux", "config": {},
        "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|(d, _)| d.to_string()).collect::<Vec<_>>()},
        "history": history,
    });
    let config_bytes = serde_json::to_vec(&config).unwrap();
    let config_digest = put(root, &config_bytes);
    let mut annotations = json!({
        "dev.strata.chain.image": chain_image,
        "dev.strata.chain.owner": team,
    });
    if let Some(base) = base {
        annotations["org.opencontainers.image.base.digest"] = json!(base.to_string());
    }
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest.to_string(), "size": config_bytes.len()},
        "layers": layers.iter().map(|(d, s)| json!({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d.to_string(), "size": s})).collect::<Vec<_>>(),
        "annotations": annotations,
    });
    let bytes = serde_json::to_vec(&manifest).unwrap();
    (put(root, &bytes), bytes.len() as u64)
}

fn layers(root: &Path, name: &str, count: usize) -> Vec<(Digest, u64)> {
    (0..count)
        .map(|k| {
            let bytes = format!("layer {k} of {name}").into_bytes();
            (put(root, &bytes), bytes.len() as u64)
        })
        .collect()
}

fn generate(root: &Path) {
    Store::init(root).unwrap();
    let mut entries = Vec::new();
    let entry = |name: String, (digest, size): (Digest, u64)| {
        json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest.to_string(), "size": size,
               "annotations": {"org.opencontainers.image.ref.name": name}})
    };
    let base_layers = layers(root, "base", 5);
    let base = image(root, &base_layers, "acme/base", "operations", None);
    for m in 0..10 {
        let mid_layers = [base_layers.clone(), layers(root, &format!("mid{m}"), 5)].concat();
        let mid = image(
            root,
            &mid_layers,
            &format!("acme/mid{m}"),
            "middleware",
            Some(&base.0),
        );
        for a in 0..10 {
            let app = format!("app{m}-{a}");
            let app_layers = [mid_layers.clone(), layers(root, &app, 5)].concat();
            let app_image = image(
                root,
                &app_layers,
                &format!("acme/{app}"),
                "development",
                Some(&mid.0),
            );
            // The tagged images: 10 variants of each application, 5 layers of their own each.
            for v in 0..IMAGES / 100 {
                let name = format!("{app}-v{v}");
                let own = [app_layers.clone(), layers(root, &name, 5)].concat();
                let variant = image(
                    root,
                    &own,
                    &format!("acme/{name}"),
                    "qa",
                    Some(&app_image.0),
                );
                entries.push(entry(format!("localhost/acme/{name}:1"), variant));
            }
        }
    }
    let index = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": entries});
    std::fs::write(root.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let started = Instant::now();
    generate(&root);
    let store = Store::open(&root).unwrap();
    let generated = started.elapsed();
    let mut times: Vec<Duration> = Vec::new();
    let mut summary = (0, 0, 0);
    for _ in 0..15 {
        let t = Instant::now();
        let catalog = Catalog::load(&store).unwrap();
        let tree = LayerTree::build(&catalog, None);
        let text = tree_text(&tree, &TextOptions::default());
        times.push(t.elapsed());
        summary = (tree.image_count(), tree.nodes.len(), text.lines().count());
    }
    times.sort();
    let (images, nodes, lines) = summary;
    assert_eq!(images, IMAGES, "the store holds {IMAGES} tagged images");
    let median = times[times.len() / 2];
    println!(
        "images --tree: {images} images x 20 layers ({nodes} distinct layer nodes, {lines} lines), store generated in {:.0} ms",
        generated.as_secs_f64() * 1000.0
    );
    println!(
        "  load + tree + text: median {:.1} ms, min {:.1} ms, max {:.1} ms over {} runs (target < 200 ms)",
        median.as_secs_f64() * 1000.0,
        times[0].as_secs_f64() * 1000.0,
        times[times.len() - 1].as_secs_f64() * 1000.0,
        times.len()
    );
}
