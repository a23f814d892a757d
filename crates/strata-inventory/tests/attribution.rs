//! Attribution over a hand-made store: a three-tier chain whose every tier rewrites
//! `/var/lib/dpkg/status`. Each package is credited to the tier that first added it, not the last
//! one that wrote the database (syft#645); upgrades, removals, whiteouts and opaque directories
//! are followed.

use strata_inspect::Catalog;
use strata_inventory::{Ecosystem, Inventory, inventory};
use strata_oci::tar::Entry;
use strata_oci::{MediaType, Store};

mod common;
use common::{image, layer, meta, status};

fn chain(store: &Store) {
    let l0 = layer(
        store,
        vec![
            Entry::file_bytes(
                "etc/os-release",
                b"ID=debian\nVERSION_ID=\"12\"\n".to_vec(),
                meta(),
            ),
            status(&[
                ("base-files", "12.4+deb12u5", "base-files"),
                ("libc6", "2.36-9+deb12u4", "glibc"),
                ("libssl3", "3.0.11-1~deb12u1", "openssl"),
            ]),
        ],
    );
    // corebuild: apt-get install procps, and an upgrade of libssl3.
    let l1 = layer(
        store,
        vec![status(&[
            ("base-files", "12.4+deb12u5", "base-files"),
            ("libc6", "2.36-9+deb12u4", "glibc"),
            ("libssl3", "3.0.11-1~deb12u2", "openssl"),
            ("procps", "2:4.0.2-3", "procps"),
        ])],
    );
    // a layer that touches no database
    let l2 = layer(
        store,
        vec![Entry::file_bytes("etc/motd", b"hi".to_vec(), meta())],
    );
    // app: apt-get install apache2 (the status file rewritten whole)
    let l3 = layer(
        store,
        vec![status(&[
            ("apache2", "2.4.62-1~deb12u2", "apache2"),
            ("base-files", "12.4+deb12u5", "base-files"),
            ("libc6", "2.36-9+deb12u4", "glibc"),
            ("libssl3", "3.0.11-1~deb12u2", "openssl"),
            ("procps", "2:4.0.2-3", "procps"),
        ])],
    );
    // app: /var/lib/dpkg made opaque, a status without procps
    let l4 = layer(
        store,
        vec![
            Entry::opaque("var/lib/dpkg"),
            status(&[
                ("apache2", "2.4.62-1~deb12u2", "apache2"),
                ("base-files", "12.4+deb12u5", "base-files"),
                ("libc6", "2.36-9+deb12u4", "glibc"),
                ("libssl3", "3.0.11-1~deb12u2", "openssl"),
            ]),
        ],
    );
    let base = image(
        store,
        Some("acme/base"),
        "acme/base",
        "platform",
        None,
        &[&l0],
        &["ADD rootfs.tar /"],
    );
    let core = image(
        store,
        Some("acme/corebuild"),
        "acme/corebuild",
        "operations",
        Some(&base),
        &[&l0, &l1, &l2],
        &[
            "ADD rootfs.tar /",
            "RUN apt-get install -y procps",
            "COPY motd /etc/motd",
        ],
    );
    image(
        store,
        Some("acme/app"),
        "acme/app",
        "development",
        Some(&core),
        &[&l0, &l1, &l2, &l3, &l4],
        &[
            "ADD rootfs.tar /",
            "RUN apt-get install -y procps",
            "COPY motd /etc/motd",
            "RUN apt-get install -y apache2",
            "RUN dpkg --purge procps",
        ],
    );
    // a database deleted by a whiteout of its directory
    let l5 = layer(store, vec![Entry::whiteout("var/lib/dpkg").unwrap()]);
    image(
        store,
        Some("acme/slim"),
        "acme/slim",
        "development",
        Some(&base),
        &[&l0, &l5],
        &["ADD rootfs.tar /", "RUN rm -rf /var/lib/dpkg"],
    );
}

fn inventory_of(store: &Store, name: &str) -> Inventory {
    let catalog = Catalog::load(store).unwrap();
    let image = catalog.find(store, name).unwrap();
    inventory(store, &catalog, image).unwrap()
}

fn credit(inv: &Inventory, name: &str) -> (String, String, Option<String>) {
    let p = inv
        .packages
        .iter()
        .find(|p| p.package.name == name)
        .unwrap_or_else(|| panic!("{name} not in {}", inv.image));
    (
        p.installed_by.chain_image.clone().unwrap(),
        p.installed_by.owner.clone().unwrap(),
        p.upgraded_by.as_ref().and_then(|u| u.chain_image.clone()),
    )
}

#[test]
fn each_package_is_credited_to_the_tier_that_installed_it_not_the_last_writer() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::init(dir.path()).unwrap();
    chain(&store);
    let app = inventory_of(&store, "acme/app");
    let names: Vec<&str> = app
        .packages
        .iter()
        .map(|p| p.package.name.as_str())
        .collect();
    assert_eq!(names, ["apache2", "base-files", "libc6", "libssl3"]);
    assert_eq!(
        credit(&app, "libc6"),
        ("acme/base".into(), "platform".into(), None)
    );
    assert_eq!(
        credit(&app, "libssl3"),
        (
            "acme/base".into(),
            "platform".into(),
            Some("acme/corebuild".into())
        )
    );
    assert_eq!(
        credit(&app, "apache2"),
        ("acme/app".into(), "development".into(), None)
    );
    let libc = app
        .packages
        .iter()
        .find(|p| p.package.name == "libc6")
        .unwrap();
    assert_eq!(libc.package.ecosystem, Ecosystem::Deb);
    assert_eq!(libc.package.source_name, "glibc");
    assert_eq!(libc.installed_by.index, 0);
    assert_eq!(
        libc.installed_by.created_by.as_deref(),
        Some("ADD rootfs.tar /")
    );
    assert_eq!(app.distro.as_ref().unwrap().version_id, "12");

    // per layer: what each did
    let l = &app.layers;
    assert_eq!(l[0].added.len(), 3);
    assert_eq!(
        l[1].added
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>(),
        ["procps"]
    );
    assert_eq!(l[1].upgraded[0].1.version, "3.0.11-1~deb12u2");
    assert!(!l[2].touched_databases);
    assert!(l[3].touched_databases && l[3].upgraded.is_empty());
    assert_eq!(
        l[4].removed
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>(),
        ["procps"]
    );

    let core = inventory_of(&store, "acme/corebuild");
    assert_eq!(
        credit(&core, "procps"),
        ("acme/corebuild".into(), "operations".into(), None)
    );

    let slim = inventory_of(&store, "acme/slim");
    assert!(slim.packages.is_empty(), "{:?}", slim.packages);
    assert_eq!(slim.layers[1].removed.len(), 3);
}

#[test]
fn rpm_and_apk_databases_in_layers_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::init(dir.path()).unwrap();
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let l0 = layer(
        &store,
        vec![
            Entry::file_bytes(
                "var/lib/rpm/Packages",
                std::fs::read(fixtures.join("rpm/Packages")).unwrap(),
                meta(),
            ),
            Entry::file_bytes(
                "lib/apk/db/installed",
                std::fs::read(fixtures.join("apk/installed")).unwrap(),
                meta(),
            ),
        ],
    );
    // RHEL 8 → a sqlite database beside it: the sqlite one is preferred
    let l1 = layer(
        &store,
        vec![Entry::file_bytes(
            "var/lib/rpm/rpmdb.sqlite",
            std::fs::read(fixtures.join("rpm/rpmdb.sqlite")).unwrap(),
            meta(),
        )],
    );
    image(
        &store,
        Some("acme/mixed"),
        "acme/mixed",
        "platform",
        None,
        &[&l0, &l1],
        &["ADD a", "ADD b"],
    );
    let inv = inventory_of(&store, "acme/mixed");
    let rpm: Vec<&str> = inv
        .packages
        .iter()
        .filter(|p| p.package.ecosystem == Ecosystem::Rpm)
        .map(|p| p.package.version.as_str())
        .collect();
    assert_eq!(rpm, ["1:2.10-3.fc40", "1:2.10-3.fc40", "1.2.13-5.el9"]);
    assert_eq!(inv.by_source("openssl").count(), 1);
    assert!(inv.packages.iter().all(|p| p.installed_by.index == 0));
}

#[test]
fn a_malformed_database_in_a_layer_names_the_image_layer_and_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::init(dir.path()).unwrap();
    let l0 = layer(
        &store,
        vec![Entry::file_bytes(
            "var/lib/rpm/Packages",
            vec![0u8; 5000],
            meta(),
        )],
    );
    image(
        &store,
        Some("acme/bad"),
        "acme/bad",
        "platform",
        None,
        &[&l0],
        &["ADD a"],
    );
    let catalog = Catalog::load(&store).unwrap();
    let image = catalog.find(&store, "acme/bad").unwrap();
    let err = inventory(&store, &catalog, image).unwrap_err();
    let chain = strata_oci::report(&err);
    assert!(chain.contains("acme/bad"), "{chain}");
    assert!(chain.contains("after layer 0"), "{chain}");
    assert!(
        chain.contains("/var/lib/rpm/Packages: page 0 (metadata): not a BerkeleyDB"),
        "{chain}"
    );
}

#[test]
fn a_database_file_over_the_size_bound_is_refused_before_it_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::init(dir.path()).unwrap();
    // A tar header announcing a 600 MiB status file, and none of its bytes: the bound is checked
    // against the header, before anything is read or allocated.
    let mut header = tar::Header::new_gnu();
    header.set_path("var/lib/dpkg/status").unwrap();
    header.set_size(600 << 20);
    header.set_mode(0o644);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    let mut bytes = header.as_bytes().to_vec();
    bytes.extend_from_slice(&[0u8; 1024]);
    let blob = store.blobs().put(&bytes).unwrap();
    let descriptor = blob.descriptor(MediaType::ImageLayer);
    let diff_id = blob.digest.to_string();
    image(
        &store,
        Some("acme/huge"),
        "acme/huge",
        "platform",
        None,
        &[&(descriptor, diff_id)],
        &["ADD a"],
    );
    let catalog = Catalog::load(&store).unwrap();
    let image = catalog.find(&store, "acme/huge").unwrap();
    let chain = strata_oci::report(&inventory(&store, &catalog, image).unwrap_err());
    assert!(
        chain.contains("/var/lib/dpkg/status: size is 629145600, over the limit of 536870912"),
        "{chain}"
    );
}
