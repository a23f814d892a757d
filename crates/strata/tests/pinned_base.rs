//! A bought base pinned by digest (`source = { image = "reg/name:tag@sha256:..." }`) is pulled by
//! `strata build` on demand from a registry, and the pulled digest is checked against the pin.

#![allow(clippy::print_stderr)]

use std::path::Path;

use assert_cmd::cargo::cargo_bin_cmd;
use serde_json::Value;
use strata_testutil::is_root;

/// A vendor store holding `vendor/busybox:1`; returns its manifest digest.
fn vendor_store(dir: &Path) -> Option<String> {
    let ctx = dir.join("vendor");
    std::fs::create_dir_all(&ctx).unwrap();
    strata_testutil::busybox_rootfs_tar(&ctx.join("rootfs.tar"))?;
    std::fs::write(ctx.join("Dockerfile"), "FROM scratch\nADD rootfs.tar /\n").unwrap();
    let out = cargo_bin_cmd!("strata")
        .arg("--store")
        .arg(dir.join("vendor-store"))
        .args(["build-image", "--json", "-t", "vendor/busybox:1"])
        .arg(&ctx)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result: Value = serde_json::from_slice(&out.stdout).unwrap();
    Some(result["digest"].as_str().unwrap().to_string())
}

fn chain(dir: &Path, pinned: &str) {
    std::fs::create_dir_all(dir.join("corebuild")).unwrap();
    std::fs::write(
        dir.join("strata.toml"),
        format!(
            "name = \"acme\"\n[teams.operations]\n\
             [[image]]\nname = \"base\"\nowner = \"operations\"\nsource = {{ image = \"{pinned}\" }}\n\
             [[image]]\nname = \"corebuild\"\nowner = \"operations\"\ncontext = \"corebuild\"\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("corebuild/Dockerfile"),
        "FROM acme/base\nRUN echo hardened > /etc/corebuild\n",
    )
    .unwrap();
}

#[test]
fn a_pinned_base_is_pulled_on_demand_and_checked_against_its_pin() {
    if !is_root() {
        assert!(!strata_testutil::in_ci(), "CI runs as root");
        eprintln!("skipping: RUN needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let Some(digest) = vendor_store(dir.path()) else {
        return;
    };
    let store = strata_oci::Store::open(dir.path().join("vendor-store")).unwrap();
    let server = strata_registry::RunningServer::start(
        store,
        strata_registry::ServerOptions::default(),
        "127.0.0.1:0".parse().unwrap(),
    )
    .unwrap();
    let host = server.addr().to_string();

    let good = dir.path().join("good");
    chain(&good, &format!("{host}/vendor/busybox:1@{digest}"));
    let out = cargo_bin_cmd!("strata")
        .arg("-C")
        .arg(&good)
        .args(["build", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["images"][0]["image"], "base");
    assert_eq!(
        summary["images"][0]["new"],
        digest.as_str(),
        "the pinned digest becomes acme/base"
    );
    assert_eq!(summary["images"][1]["result"], "built");
    cargo_bin_cmd!("strata")
        .arg("-C")
        .arg(&good)
        .args(["run", "acme/corebuild", "--", "cat", "/etc/corebuild"])
        .assert()
        .success()
        .stdout("hardened\n");

    // A pin the registry does not have: the build fails naming the image, nothing is tagged.
    let bad = dir.path().join("bad");
    let wrong = format!("sha256:{}", "0".repeat(64));
    chain(&bad, &format!("{host}/vendor/busybox:1@{wrong}"));
    let out = cargo_bin_cmd!("strata")
        .arg("-C")
        .arg(&bad)
        .args(["build", "--json"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["images"][0]["result"], "failed");
    assert!(
        summary["images"][0]["message"]
            .as_str()
            .unwrap()
            .contains("bought image"),
        "{summary}"
    );
    assert_eq!(summary["images"][1]["result"], "skipped");
    drop(server);
}
