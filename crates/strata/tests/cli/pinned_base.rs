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

/// `strata --store STORE ARGS` (no chain around), its output.
fn strata_at(dir: &Path, args: &[&str]) -> std::process::Output {
    cargo_bin_cmd!("strata")
        .current_dir(dir)
        .env_remove("STRATA_STORE")
        .env_remove("STRATA_CHAIN")
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn from_lines_naming_a_registry_are_pulled_as_buildah_pulls_them() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let Some(first_digest) = vendor_store(d) else {
        return;
    };
    let store = strata_oci::Store::open(d.join("vendor-store")).unwrap();
    let server = strata_registry::RunningServer::start(
        store,
        strata_registry::ServerOptions::default(),
        "127.0.0.1:0".parse().unwrap(),
    )
    .unwrap();
    let base = format!("{}/vendor/busybox:1", server.addr());
    // A chain whose corebuild is FROM the vendor's registry (COPY only: no root needed).
    let chain_dir = d.join("chain");
    std::fs::create_dir_all(chain_dir.join("corebuild")).unwrap();
    std::fs::write(
        chain_dir.join("strata.toml"),
        "name = \"acme\"\n[teams.operations]\n\
         [[image]]\nname = \"corebuild\"\nowner = \"operations\"\ncontext = \"corebuild\"\n",
    )
    .unwrap();
    std::fs::write(
        chain_dir.join("corebuild/Dockerfile"),
        format!("FROM {base}\nCOPY motd /etc/motd\n"),
    )
    .unwrap();
    std::fs::write(chain_dir.join("corebuild/motd"), "acme\n").unwrap();
    let build = |args: &[&str]| -> (bool, Value, String) {
        let mut all = vec!["build", "--json"];
        all.extend_from_slice(args);
        let out = strata_at(&chain_dir, &all);
        let summary: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        (
            out.status.success(),
            summary,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let core = |summary: &Value| summary["images"][0].clone();

    // --pull never: the base is not in the store, and the error says so.
    let (ok, summary, stderr) = build(&["--pull", "never"]);
    assert!(!ok, "{stderr}");
    assert!(
        core(&summary)["message"]
            .as_str()
            .unwrap()
            .contains("is not in the store"),
        "{summary}"
    );
    // The default (missing): pulled once, then up to date without pulling again.
    let (ok, summary, stderr) = build(&[]);
    assert!(ok, "{stderr}");
    assert_eq!(core(&summary)["result"], "built", "{summary}");
    let (ok, summary, _) = build(&[]);
    assert!(ok);
    assert_eq!(core(&summary)["result"], "up-to-date", "{summary}");
    let log = strata_at(&chain_dir, &["log", "--json"]);
    let pulls = String::from_utf8_lossy(&log.stdout)
        .matches("\"pull\"")
        .count();
    assert_eq!(pulls, 1, "one pull on record");

    // The vendor moves the tag. Without --pull always nothing notices; with it, the corebuild is
    // stale because its parent's digest changed, and is rebuilt on the new base.
    let ctx = d.join("vendor2");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM vendor/busybox:1\nCOPY patch /patch\n",
    )
    .unwrap();
    std::fs::write(ctx.join("patch"), "CVE fixed\n").unwrap();
    let out = strata_at(
        d,
        &[
            "--store",
            "vendor-store",
            "build-image",
            "-t",
            "vendor/busybox:1",
            "vendor2",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (_, summary, _) = build(&[]);
    assert_eq!(core(&summary)["result"], "up-to-date", "{summary}");
    let (ok, summary, stderr) = build(&["--pull", "always"]);
    assert!(ok, "{stderr}");
    let rebuilt = core(&summary);
    assert_eq!(rebuilt["result"], "built", "{summary}");
    assert!(
        rebuilt["reasons"].to_string().contains(&base),
        "the reason names the moved base: {rebuilt}"
    );
    let run = strata_oci::Store::open(chain_dir.join(".strata/store")).unwrap();
    let image = run.image("acme/corebuild").unwrap();
    assert_eq!(image.layers().len(), 3, "rootfs + patch + motd");

    // build-image pulls too, and --pull never refuses.
    let app = d.join("app");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(
        app.join("Dockerfile"),
        format!("FROM {base}\nCMD [\"true\"]\n"),
    )
    .unwrap();
    let out = strata_at(
        d,
        &["--store", "fresh", "build-image", "--pull", "never", "app"],
    );
    assert!(!out.status.success());
    let out = strata_at(
        d,
        &["--store", "fresh", "build-image", "app", "-t", "acme/app"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("pulled {base}")));
    // A FROM pinned by digest is pulled by that digest (the vendor's first build, whose tag has
    // moved since), and checked against it.
    let pinned = format!("{}/vendor/busybox@{first_digest}", server.addr());
    std::fs::write(
        app.join("Dockerfile"),
        format!("FROM {pinned}\nCMD [\"true\"]\n"),
    )
    .unwrap();
    let out = strata_at(
        d,
        &[
            "--store",
            "pinned",
            "build-image",
            "app",
            "-t",
            "acme/pinned",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let built = strata_oci::Store::open(d.join("pinned")).unwrap();
    let image = built.image("acme/pinned").unwrap();
    assert_eq!(
        image.layers().len(),
        1,
        "the first vendor build: the rootfs only"
    );
}
