//! `strata packages` over a hand-made store (no root needed): the table, `--json`, `--layer`, and a
//! malformed database refused in one line naming the image, layer and file.

use std::collections::HashMap;
use std::path::Path;

use assert_cmd::cargo::cargo_bin_cmd;
use serde_json::Value;
use strata_oci::annotations::{ANNOTATION_CHAIN_IMAGE, ANNOTATION_OWNER};
use strata_oci::image_config::{History, ImageConfig};
use strata_oci::tar::{Entry, LayerOptions, Metadata};
use strata_oci::{Descriptor, MediaType, Store};

pub(crate) fn layer(store: &Store, entries: Vec<Entry>) -> (Descriptor, String) {
    let mut writer = store.layer_writer(LayerOptions::default()).unwrap();
    writer.append_all(entries).unwrap();
    let layer = writer.finish().unwrap();
    (layer.descriptor, layer.diff_id.to_string())
}

fn status(packages: &[(&str, &str)]) -> Entry {
    let text: String = packages
        .iter()
        .map(|(n, v)| {
            format!(
                "Package: {n}\nStatus: install ok installed\nArchitecture: amd64\nVersion: {v}\n\n"
            )
        })
        .collect();
    Entry::file_bytes(
        "var/lib/dpkg/status",
        text.into_bytes(),
        Metadata::new(0o644, 0, 0),
    )
}

pub(crate) fn image(
    store: &Store,
    name: &str,
    team: &str,
    base: Option<&Descriptor>,
    layers: &[&(Descriptor, String)],
) -> Descriptor {
    let mut config = ImageConfig::scratch();
    for (k, (_, diff_id)) in layers.iter().enumerate() {
        config.rootfs.diff_ids.push(diff_id.clone());
        config.history.push(History {
            created_by: Some(format!("RUN step {k}")),
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
        (ANNOTATION_CHAIN_IMAGE.to_string(), name.to_string()),
        (ANNOTATION_OWNER.to_string(), team.to_string()),
    ]);
    if let Some(base) = base {
        annotations.insert(
            "org.opencontainers.image.base.digest".to_string(),
            base.digest().to_string(),
        );
    }
    manifest.set_annotations(Some(annotations));
    let descriptor = store.blobs().put_manifest(&manifest).unwrap();
    store.refs().tag(name, &descriptor).unwrap();
    descriptor
}

fn store(dir: &Path) {
    let store = Store::init(dir).unwrap();
    let l0 = layer(
        &store,
        vec![status(&[("libc6", "2.36-9"), ("libssl3", "3.0.11-1")])],
    );
    let l1 = layer(
        &store,
        vec![status(&[
            ("libc6", "2.36-9"),
            ("libssl3", "3.0.11-2"),
            ("procps", "2:4.0.2-3"),
        ])],
    );
    let l2 = layer(
        &store,
        vec![status(&[
            ("apache2", "2.4.62-1"),
            ("libc6", "2.36-9"),
            ("libssl3", "3.0.11-2"),
            ("procps", "2:4.0.2-3"),
        ])],
    );
    let base = image(&store, "acme/base", "platform", None, &[&l0]);
    let core = image(
        &store,
        "acme/corebuild",
        "operations",
        Some(&base),
        &[&l0, &l1],
    );
    image(
        &store,
        "acme/httpd-php",
        "middleware",
        Some(&core),
        &[&l0, &l1, &l2],
    );
    let bad = layer(
        &store,
        vec![Entry::file_bytes(
            "var/lib/rpm/Packages",
            vec![7u8; 4096],
            Metadata::new(0o644, 0, 0),
        )],
    );
    image(&store, "acme/broken", "platform", None, &[&bad]);
}

fn packages(store: &Path, args: &[&str]) -> std::process::Output {
    cargo_bin_cmd!("strata")
        .arg("--store")
        .arg(store)
        .arg("packages")
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn packages_are_listed_with_the_tier_and_team_that_installed_them() {
    let dir = tempfile::tempdir().unwrap();
    store(dir.path());
    let out = packages(dir.path(), &["acme/httpd-php"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let line = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name} missing:\n{text}"))
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(
        line("apache2"),
        "apache2 2.4.62-1 amd64 apache2 acme/httpd-php (middleware)"
    );
    assert_eq!(
        line("procps"),
        "procps 2:4.0.2-3 amd64 procps acme/corebuild (operations)"
    );
    assert_eq!(
        line("libssl3"),
        "libssl3 3.0.11-2 amd64 libssl3 acme/base (platform) acme/corebuild (operations)"
    );

    let out = packages(dir.path(), &["acme/httpd-php", "--json"]);
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let libc = json["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "libc6")
        .unwrap();
    assert_eq!(libc["ecosystem"], "deb");
    assert_eq!(libc["installedBy"]["owner"], "platform");
    assert_eq!(libc["installedBy"]["index"], 0);
    assert_eq!(libc["installedBy"]["createdBy"], "RUN step 0");
    assert!(libc["upgradedBy"].is_null());

    let out = packages(dir.path(), &["acme/httpd-php", "--layer"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("layer 1  acme/corebuild (operations)  RUN step 1\n  + procps 2:4.0.2-3 amd64\n  ^ libssl3 3.0.11-1 -> 3.0.11-2 amd64\n"), "{text}");
    assert!(
        text.contains(
            "layer 2  acme/httpd-php (middleware)  RUN step 2\n  + apache2 2.4.62-1 amd64\n"
        ),
        "{text}"
    );
}

#[test]
fn a_malformed_database_fails_in_one_line_naming_image_layer_and_file() {
    let dir = tempfile::tempdir().unwrap();
    store(dir.path());
    let out = packages(dir.path(), &["acme/broken"]);
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("acme/broken"), "{err}");
    assert!(err.contains("after layer 0"), "{err}");
    assert!(
        err.contains("/var/lib/rpm/Packages: page 0 (metadata)"),
        "{err}"
    );
}
