//! The package index (`STORE/.strata/packages.db`) over a hand-made store: it answers exactly as
//! reading the layers does, it is used on the next run, and it is never trusted blindly: a corrupt
//! file is rebuilt, a corrupt entry is read again from the layers, an entry whose lineage changed
//! (a base gc removed, or one that came back) is computed again, and build names follow the tags.

use strata_inspect::Catalog;
use strata_inventory::index::{IndexStats, Inventories, index_path};
use strata_inventory::inventory;
use strata_oci::tar::Entry;
use strata_oci::{Descriptor, Digest, Store};

mod common;
use common::{image, layer, meta, status};

/// The steps of every image here, by layer rank.
const STEPS: &[&str] = &["RUN step 0", "RUN step 1", "RUN step 2"];

const LIBC: (&str, &str, &str) = ("libc6", "2.36-9", "glibc");
const SSL: (&str, &str, &str) = ("libssl3", "3.0.11-1", "openssl");
const PROCPS: (&str, &str, &str) = ("procps", "2:4.0.2-3", "procps");

/// base (platform, untagged when `tag_base` is false) → corebuild (operations) → app:1, app:2
/// (development); app:2 upgrades libssl3 in its own layer. Returns the base, corebuild and app:2
/// descriptors.
fn chain(store: &Store, tag_base: bool) -> (Descriptor, Descriptor, Descriptor) {
    let l0 = layer(
        store,
        vec![
            Entry::file_bytes(
                "etc/os-release",
                b"ID=debian\nVERSION_ID=\"12\"\n".to_vec(),
                meta(),
            ),
            status(&[LIBC, SSL]),
        ],
    );
    let l1 = layer(store, vec![status(&[LIBC, SSL, PROCPS])]);
    let app1 = layer(
        store,
        vec![Entry::file_bytes("srv/index.php", b"1".to_vec(), meta())],
    );
    let app2 = layer(
        store,
        vec![status(&[LIBC, ("libssl3", "3.0.11-2", "openssl"), PROCPS])],
    );
    let base = image(
        store,
        tag_base.then_some("acme/base"),
        "acme/base",
        "platform",
        None,
        &[&l0],
        STEPS,
    );
    let core = image(
        store,
        Some("acme/corebuild"),
        "acme/corebuild",
        "operations",
        Some(&base),
        &[&l0, &l1],
        STEPS,
    );
    image(
        store,
        Some("acme/app:1"),
        "acme/app",
        "development",
        Some(&core),
        &[&l0, &l1, &app1],
        STEPS,
    );
    let second = image(
        store,
        Some("acme/app:2"),
        "acme/app",
        "development",
        Some(&core),
        &[&l0, &l1, &app2],
        STEPS,
    );
    (base, core, second)
}

fn digest(d: &Descriptor) -> Digest {
    Digest::from_oci(d.digest()).unwrap()
}

/// Every tagged image through the index must equal a cold read of its layers; returns how the
/// run answered.
fn same_as_cold_read(store: &Store) -> IndexStats {
    let catalog = Catalog::load(store).unwrap();
    let mut inventories = Inventories::open(store).unwrap();
    for image in catalog.tagged() {
        let cold = inventory(store, &catalog, image).unwrap();
        let indexed = inventories.get(&image.digest).unwrap();
        assert_eq!(indexed.image, cold.image);
        assert_eq!(indexed.digest.to_string(), cold.digest);
        assert_eq!(indexed.packages.distro, cold.distro, "{}", cold.image);
        assert_eq!(indexed.packages.packages, cold.packages, "{}", cold.image);
    }
    let stats = inventories.stats();
    inventories.save();
    stats
}

#[test]
fn the_index_answers_as_the_layers_do_and_is_used_on_the_next_run() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::init(dir.path()).unwrap();
    let (_, _, app2) = chain(&store, true);
    let first = same_as_cold_read(&store);
    assert_eq!(
        first,
        IndexStats {
            from_index: 0,
            from_layers: 4
        }
    );
    assert!(index_path(&store).is_file());
    let second = same_as_cold_read(&store);
    assert_eq!(
        second,
        IndexStats {
            from_index: 4,
            from_layers: 0
        }
    );
    // The next run does not read the layers: it answers with app:2's own layer gone.
    let own = store
        .blobs()
        .read_manifest(&digest(&app2))
        .unwrap()
        .layers()[2]
        .clone();
    std::fs::remove_file(store.blobs().path(&digest(&own))).unwrap();
    let mut inventories = Inventories::open(&store).unwrap();
    let app = inventories.get(&digest(&app2)).unwrap();
    let ssl = app
        .packages
        .packages
        .iter()
        .find(|p| p.package.name == "libssl3")
        .unwrap();
    assert_eq!(ssl.package.version, "3.0.11-2");
    assert_eq!(ssl.installed_by.chain_image.as_deref(), Some("acme/base"));
    assert_eq!(
        ssl.upgraded_by.as_ref().unwrap().build.as_deref(),
        Some("localhost/acme/app:2")
    );
    assert_eq!(inventories.stats().from_index, 1);
}

#[test]
fn a_corrupt_index_file_or_entry_is_rebuilt_and_answers_right() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::init(dir.path()).unwrap();
    chain(&store, true);
    same_as_cold_read(&store);
    let path = index_path(&store);

    // Garbage over the whole file (and its WAL): read from the layers, then rebuilt.
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    std::fs::write(&path, vec![0x5a; 8192]).unwrap();
    assert_eq!(same_as_cold_read(&store).from_layers, 4);
    assert_eq!(same_as_cold_read(&store).from_index, 4);

    // A package list whose bytes changed (a flipped version) no longer hashes to its key: the
    // images using it are read again from their layers, never answered with the changed list.
    let conn = rusqlite::Connection::open(&path).unwrap();
    let changed = conn
        .execute(
            "UPDATE package_sets SET body = CAST(replace(CAST(body AS TEXT), '3.0.11-1', '3.0.99-1') AS BLOB)",
            [],
        )
        .unwrap();
    assert!(changed > 0);
    drop(conn);
    let stats = same_as_cold_read(&store);
    assert!(stats.from_layers >= 1, "{stats:?}");
    assert_eq!(same_as_cold_read(&store).from_index, 4);
}

#[test]
fn an_entry_whose_lineage_changed_is_computed_again_and_names_follow_the_tags() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::init(dir.path()).unwrap();
    let (base, _, app2) = chain(&store, false);
    let credit = |store: &Store| {
        let mut inventories = Inventories::open(store).unwrap();
        let app = inventories.get(&digest(&app2)).unwrap();
        let libc = app
            .packages
            .packages
            .iter()
            .find(|p| p.package.name == "libc6")
            .unwrap()
            .installed_by
            .clone();
        (libc, inventories.stats())
    };
    same_as_cold_read(&store);
    let (libc, _) = credit(&store);
    assert_eq!(libc.chain_image.as_deref(), Some("acme/base"));
    // The untagged base is credited by digest.
    assert_eq!(
        libc.build.as_deref(),
        Some(format!("@sha256:{}", digest(&base).short()).as_str())
    );

    // gc takes the untagged base: its layer is now corebuild's, as a cold read says.
    let base_path = store.blobs().path(&digest(&base));
    let base_bytes = std::fs::read(&base_path).unwrap();
    std::fs::remove_file(&base_path).unwrap();
    let stats = same_as_cold_read(&store);
    assert_eq!(stats.from_layers, 3, "app:1, app:2, corebuild: {stats:?}");
    let (libc, _) = credit(&store);
    assert_eq!(libc.chain_image.as_deref(), Some("acme/corebuild"));

    // It comes back (pulled again): credited to the base again.
    std::fs::write(&base_path, base_bytes).unwrap();
    assert_eq!(same_as_cold_read(&store).from_layers, 3);
    let (libc, _) = credit(&store);
    assert_eq!(libc.chain_image.as_deref(), Some("acme/base"));

    // Tagged later, the base is named by its tag, without reading anything again.
    store.refs().tag("acme/base:7", &base).unwrap();
    let (libc, stats) = credit(&store);
    assert_eq!(libc.build.as_deref(), Some("localhost/acme/base:7"));
    assert_eq!(stats.from_layers, 0);
    // Only the base itself, now tagged and asked for, is read.
    assert_eq!(same_as_cold_read(&store).from_layers, 1);
}
