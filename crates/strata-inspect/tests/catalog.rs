//! Finding images (tags, bare names, `NAME@N`), owners through base digests, and the tree drawn
//! with and without colour, over a small hand-made store.

use std::collections::HashMap;

use strata_inspect::render::{TextOptions, tree_text};
use strata_inspect::{Catalog, InspectError, LayerTree, Lineage, own_layers};
use strata_oci::image_config::{History, ImageConfig};
use strata_oci::tar::{Entry, LayerOptions, Metadata};
use strata_oci::{Descriptor, MediaType, Store};

fn layer(store: &Store, name: &str) -> (Descriptor, String) {
    let mut writer = store.layer_writer(LayerOptions::default()).unwrap();
    writer
        .append(&Entry::file_bytes(
            name,
            name.as_bytes().to_vec(),
            Metadata::new(0o644, 0, 0),
        ))
        .unwrap();
    let layer = writer.finish().unwrap();
    (layer.descriptor, layer.diff_id.to_string())
}

/// Write an image; annotate it as chain image `chain` of `team` built on `base`.
fn image(
    store: &Store,
    layers: &[&(Descriptor, String)],
    chain: &str,
    team: &str,
    base: Option<&Descriptor>,
    tags: &[&str],
) -> Descriptor {
    let mut config = ImageConfig::scratch();
    for (k, (_, diff_id)) in layers.iter().enumerate() {
        config.rootfs.diff_ids.push(diff_id.clone());
        config.history.push(History {
            created_by: Some(format!("step {k}")),
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
        ("dev.strata.chain.image".to_string(), chain.to_string()),
        ("dev.strata.chain.owner".to_string(), team.to_string()),
    ]);
    if let Some(base) = base {
        annotations.insert(
            "org.opencontainers.image.base.digest".to_string(),
            base.digest().to_string(),
        );
    }
    manifest.set_annotations(Some(annotations));
    let descriptor = store.blobs().put_manifest(&manifest).unwrap();
    for tag in tags {
        store.refs().tag(tag, &descriptor).unwrap();
    }
    descriptor
}

/// base (1 layer) ← core builds 1 and 2 (2 own layers each; build 1 untagged as latest) ← app.
fn store(dir: &std::path::Path) -> Store {
    let store = Store::init(dir).unwrap();
    let b = layer(&store, "b");
    let c1 = layer(&store, "c1");
    let c2 = layer(&store, "c2");
    let c3 = layer(&store, "c3");
    let a = layer(&store, "a");
    // The base is untagged: found through the base digest only.
    let base = image(&store, &[&b], "acme/base", "operations", None, &[]);
    image(
        &store,
        &[&b, &c1, &c2],
        "acme/core",
        "operations",
        Some(&base),
        &["acme/core:1"],
    );
    let core2 = image(
        &store,
        &[&b, &c1, &c3],
        "acme/core",
        "operations",
        Some(&base),
        &["acme/core:latest", "acme/core:2"],
    );
    image(
        &store,
        &[&b, &c1, &c3, &a],
        "acme/app",
        "development",
        Some(&core2),
        &["acme/app:latest", "other/app:latest"],
    );
    store
}

#[test]
fn references_name_tags_bare_names_and_build_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    let catalog = Catalog::load(&store).unwrap();
    assert_eq!(catalog.tagged().count(), 3);
    assert_eq!(catalog.images().len(), 4, "the untagged base is read too");
    let core2 = catalog.find(&store, "acme/core").unwrap();
    assert_eq!(core2.tags.len(), 2);
    assert_eq!(catalog.find(&store, "core").unwrap().digest, core2.digest);
    assert_eq!(catalog.find(&store, "core@2").unwrap().digest, core2.digest);
    let core1 = catalog.find(&store, "core@1").unwrap();
    assert_ne!(core1.digest, core2.digest);
    assert_eq!(
        catalog
            .find(&store, "localhost/acme/core:1")
            .unwrap()
            .digest,
        core1.digest
    );
    let digest = core1.digest.to_string();
    assert_eq!(catalog.find(&store, &digest).unwrap().digest, core1.digest);
    match catalog.find(&store, "core@7") {
        Err(InspectError::NotFound { hint, .. }) => assert!(hint.contains("1, 2"), "{hint}"),
        other => panic!("{other:?}"),
    }
    // Two repositories end in /app, but both tags point to one image: not ambiguous.
    assert!(catalog.find(&store, "app").is_ok());
    assert!(matches!(
        catalog.find(&store, "nothing"),
        Err(InspectError::NotFound { .. })
    ));
}

#[test]
fn owners_follow_base_digests() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    let catalog = Catalog::load(&store).unwrap();
    let app = catalog.find(&store, "acme/app").unwrap();
    let lineage = Lineage::of(&catalog, app);
    let owners: Vec<(Option<&str>, (usize, usize))> = lineage
        .levels
        .iter()
        .map(|l| (l.chain_image.as_deref(), l.layers))
        .collect();
    assert_eq!(
        owners,
        [
            (Some("acme/base"), (0, 1)),
            (Some("acme/core"), (1, 3)),
            (Some("acme/app"), (3, 4)),
        ]
    );
    assert_eq!(
        lineage.layer_owner(2).unwrap().owner.as_deref(),
        Some("operations")
    );
    assert_eq!(own_layers(&catalog, app).count, 1);
    let core = catalog.find(&store, "acme/core").unwrap();
    assert_eq!(own_layers(&catalog, core).count, 2);
}

#[test]
fn a_lineage_catalog_holds_the_image_and_its_bases_as_the_whole_catalog_does() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    let whole = Catalog::load(&store).unwrap();
    let app = whole.find(&store, "acme/app").unwrap();
    let only = Catalog::load_lineage(&store, &app.digest).unwrap();
    // The app, core build 2 and the untagged base; not core build 1, which is not underneath.
    assert_eq!(only.images().len(), 3);
    assert!(whole.find(&store, "acme/core:1").is_ok());
    assert!(only.find(&store, "acme/core:1").is_err());
    let mine = only.get(&app.digest).unwrap();
    assert_eq!(mine.tags, app.tags);
    // The same levels, with the same names (tags) and owners.
    assert_eq!(Lineage::of(&only, mine), Lineage::of(&whole, app));
    let missing = Catalog::load_lineage(&store, &strata_oci::Digest::of(b"not here")).unwrap();
    assert!(missing.images().is_empty());
}

#[test]
fn the_tree_merges_prefixes_and_colours_only_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    let catalog = Catalog::load(&store).unwrap();
    let tree = LayerTree::build(&catalog, None);
    // b, c1, then c2 (core:1) and c3 (core:2) → a (app): 5 nodes, one root.
    assert_eq!(tree.nodes.len(), 5);
    assert_eq!(tree.roots.len(), 1);
    assert_eq!(tree.image_count(), 3);
    let plain = tree_text(&tree, &TextOptions::default());
    assert!(!plain.contains('\x1b'));
    assert!(
        plain.contains("img: localhost/acme/core:latest, :2"),
        "{plain}"
    );
    assert!(
        plain.contains("img: localhost/acme/app:latest, localhost/other/app:latest"),
        "{plain}"
    );
    let colour = tree_text(
        &tree,
        &TextOptions {
            color: true,
            ..TextOptions::default()
        },
    );
    assert!(colour.contains("\x1b[1;32m"));
    let narrow = tree_text(
        &tree,
        &TextOptions {
            width: 50,
            ..TextOptions::default()
        },
    );
    assert!(narrow.lines().all(|l| l.chars().count() <= 50), "{narrow}");
}
