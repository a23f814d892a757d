//! `strata store gc` sweeps the builder's caches of what it removed (layer snapshots, COPY --from
//! trees, cached layer headers, gzip member memo entries, step-cache entries) and keeps those the
//! stored images still use.

#![allow(clippy::print_stderr)]

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use assert_cmd::cargo::cargo_bin_cmd;
use serde_json::Value;
use strata_oci::Store;

fn strata(dir: &Path) -> assert_cmd::Command {
    let mut cmd = cargo_bin_cmd!("strata");
    cmd.arg("-C")
        .arg(dir)
        .env_remove("STRATA_STORE")
        .env_remove("STRATA_CHAIN");
    cmd
}

/// The names in a directory (empty when it does not exist).
fn names(dir: &Path) -> BTreeSet<String> {
    fs::read_dir(dir)
        .map(|r| {
            r.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The diff_ids (hex) of an image in the store.
fn diff_ids(store: &Store, reference: &str) -> BTreeSet<String> {
    store
        .image(reference)
        .unwrap()
        .diff_ids()
        .unwrap()
        .iter()
        .map(|d| d.hex().to_string())
        .collect()
}

/// Blob digests (hex) of an image's layers.
fn layer_blobs(store: &Store, reference: &str) -> BTreeSet<String> {
    store
        .image(reference)
        .unwrap()
        .layers()
        .iter()
        .map(|l| {
            l.digest()
                .as_ref()
                .trim_start_matches("sha256:")
                .to_string()
        })
        .collect()
}

#[test]
fn gc_sweeps_the_caches_of_removed_layers_and_keeps_the_rest() {
    if !strata_testutil::can_build_example() {
        return;
    }
    let dir = strata_testutil::init_example(assert_cmd::cargo::cargo_bin!("strata"));
    let d = dir.path();
    // A COPY --from of the corebuild, so the build keeps an unpacked tree of it.
    let dockerfile = d.join("wordpress/Dockerfile");
    let mut text = fs::read_to_string(&dockerfile).unwrap();
    text.push_str("COPY --from=acme/corebuild /etc/motd /var/www/motd.txt\n");
    fs::write(&dockerfile, text).unwrap();
    strata(d).arg("build").assert().success();
    // Operations patches the corebuild: everything above it is rebuilt, the old builds stay
    // tagged by number (:1) until someone drops them.
    fs::write(d.join("corebuild/motd"), "patched\n").unwrap();
    strata(d).arg("build").assert().success();

    let store = Store::open(d.join(".strata/store")).unwrap();
    let cache = d.join(".strata/cache");
    let old = ["acme/corebuild:1", "acme/httpd-php:1", "acme/wordpress:1"];
    let new = [
        "acme/base",
        "acme/corebuild",
        "acme/httpd-php",
        "acme/wordpress",
    ];
    let live_ids: BTreeSet<String> = new.iter().flat_map(|r| diff_ids(&store, r)).collect();
    let dead_ids: BTreeSet<String> = old
        .iter()
        .flat_map(|r| diff_ids(&store, r))
        .filter(|id| !live_ids.contains(id))
        .collect();
    let live_blobs: BTreeSet<String> = new.iter().flat_map(|r| layer_blobs(&store, r)).collect();
    let dead_blobs: BTreeSet<String> = old
        .iter()
        .flat_map(|r| layer_blobs(&store, r))
        .filter(|b| !live_blobs.contains(b))
        .collect();
    assert!(!dead_ids.is_empty(), "the patch changed no layer");

    let snapshots_before = names(&cache.join("snapshots"));
    let headers_before = names(&d.join(".strata/store/.strata/layer-headers"));
    let trees_before = names(&cache.join("rootfs"));
    let steps_before = names(&cache.join("steps"));
    let snapshot_of = |id: &str| id[..16].to_string();
    // The builds left caches of the old layers: otherwise this test proves nothing.
    assert!(
        dead_ids
            .iter()
            .any(|id| snapshots_before.contains(&snapshot_of(id))),
        "no snapshot of an old layer: {snapshots_before:?}"
    );
    assert!(
        dead_blobs.iter().any(|b| headers_before.contains(b)),
        "no cached headers of an old layer"
    );
    assert!(trees_before.len() >= 2, "COPY --from kept no trees");
    // The gzip member memo names the blobs its members lie in: the base's (live) from the build,
    // and one planted as a member of an old layer would be.
    let members = d.join(".strata/store/.strata/gzip-members");
    let members_before = names(&members);
    assert!(
        !members_before.is_empty(),
        "the base layer left no memo entry"
    );
    let dead_member = "f".repeat(64);
    fs::write(
        members.join(&dead_member),
        format!(
            "sha256:{} 0 100 {}\n",
            dead_blobs.iter().next().unwrap(),
            "0".repeat(64)
        ),
    )
    .unwrap();
    // Leftovers of a crash: half an unpack and half a removal.
    fs::create_dir_all(cache.join("snapshots/.unpack-crashed/etc")).unwrap();
    fs::create_dir_all(cache.join("rootfs/.trash-0123456789abcdef/bin")).unwrap();

    // The old builds go: one by `strata rmi`, the others by gc's retention (--keep-builds 1 keeps
    // each repository's newest build, and base's only build, which `latest` still names).
    let out = strata(d)
        .args(["rmi", "acme/corebuild:1"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("untagged localhost/acme/corebuild:1"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    strata(d)
        .args(["rmi", "acme/nosuch:1", "acme/httpd-php:1"])
        .assert()
        .failure();
    assert!(
        store.refs().resolve("acme/httpd-php:1").is_ok(),
        "a failed rmi removes nothing"
    );
    let retention = [
        "localhost/acme/httpd-php:1".to_string(),
        "localhost/acme/wordpress:1".to_string(),
    ];
    // A dry run lists but removes nothing.
    let out = strata(d)
        .args(["store", "gc", "--dry-run", "--keep-builds", "1", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let dry: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(dry["untagged"], serde_json::json!(retention));
    assert!(!dry["caches"]["removed"].as_array().unwrap().is_empty());
    assert!(store.refs().resolve("acme/wordpress:1").is_ok());
    assert_eq!(
        names(&cache.join("snapshots")).len(),
        snapshots_before.len() + 1
    );

    let out = strata(d)
        .args(["store", "gc", "--keep-builds", "1", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["untagged"], serde_json::json!(retention));
    for reference in old {
        assert!(
            store.refs().resolve(reference).is_err(),
            "{reference} still tagged"
        );
    }
    assert!(
        store.refs().resolve("acme/base:1").is_ok(),
        "base's only build stays"
    );
    assert!(store.refs().resolve("acme/wordpress:6.4").is_ok());
    assert_eq!(report["caches"]["errors"], serde_json::json!([]));
    let removed_caches: BTreeSet<String> = report["caches"]["removed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["cache"].as_str().unwrap().to_string())
        .collect();
    for cache_kind in [
        "snapshot",
        "rootfs",
        "layer-headers",
        "gzip-members",
        "step",
        "leftover",
    ] {
        assert!(
            removed_caches.contains(cache_kind),
            "nothing removed from the {cache_kind} cache: {report}"
        );
    }

    let snapshots = names(&cache.join("snapshots"));
    let headers = names(&d.join(".strata/store/.strata/layer-headers"));
    for id in &dead_ids {
        assert!(!snapshots.contains(&snapshot_of(id)), "dead snapshot {id}");
    }
    for id in &live_ids {
        if snapshots_before.contains(&snapshot_of(id)) {
            assert!(
                snapshots.contains(&snapshot_of(id)),
                "live snapshot {id} removed"
            );
        }
    }
    for blob in &dead_blobs {
        assert!(!headers.contains(blob), "headers of removed blob {blob}");
    }
    for blob in &live_blobs {
        if headers_before.contains(blob) {
            assert!(
                headers.contains(blob),
                "headers of live blob {blob} removed"
            );
        }
    }
    let members_after = names(&members);
    assert!(
        !members_after.contains(&dead_member),
        "memo entry of a removed blob kept"
    );
    assert_eq!(
        members_after, members_before,
        "memo entries of live blobs removed"
    );
    assert!(!snapshots.iter().any(|n| n.starts_with('.')));
    assert!(
        !names(&cache.join("rootfs"))
            .iter()
            .any(|n| n.starts_with('.'))
    );
    assert!(names(&cache.join("rootfs")).len() < trees_before.len());
    assert!(names(&cache.join("steps")).len() < steps_before.len());

    // What is left is consistent: the store checks out, nothing needs rebuilding, and the kept
    // caches still serve a forced rebuild and a run.
    strata(d).args(["store", "fsck"]).assert().success();
    let plan = strata(d).args(["plan", "--json"]).output().unwrap();
    assert!(plan.status.success());
    let plan: Value = serde_json::from_slice(&plan.stdout).unwrap();
    assert_eq!(plan["steps"], serde_json::json!([]), "{plan}");
    strata(d)
        .args(["build", "--force", "wordpress"])
        .assert()
        .success();
    let out = strata(d)
        .args(["run", "acme/wordpress", "--", "cat", "/var/www/motd.txt"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "patched\n");
}
