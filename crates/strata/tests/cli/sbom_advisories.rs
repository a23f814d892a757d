//! `strata sbom`, `strata advisories` and `strata affected` over a hand-made Debian-like store (no
//! root needed): the SBOMs pass the reference validators from PyPI (`pyspdxtools`,
//! `cyclonedx-python-lib`), OSV records match by source package in dpkg's order, `affected`
//! names the tier and team that brought a package in and the newer build that dropped it, and
//! hostile OSV files are refused in one line.

#![allow(clippy::print_stderr)]

use std::path::Path;
use std::process::Command as StdCommand;

use assert_cmd::cargo::cargo_bin_cmd;
use serde_json::Value;
use strata_oci::Store;
use strata_oci::tar::{Entry, Metadata};
use strata_testutil::require_tool;

use crate::packages::{image, layer};

/// dpkg status text: (name, version, source field).
fn status(packages: &[(&str, &str, &str)]) -> Entry {
    let text: String = packages
        .iter()
        .map(|(n, v, s)| {
            let source = if s.is_empty() {
                String::new()
            } else {
                format!("Source: {s}\n")
            };
            format!(
                "Package: {n}\nStatus: install ok installed\nArchitecture: amd64\n{source}Version: {v}\n\n"
            )
        })
        .collect();
    Entry::file_bytes(
        "var/lib/dpkg/status",
        text.into_bytes(),
        Metadata::new(0o644, 0, 0),
    )
}

const BASE: [(&str, &str, &str); 2] = [
    ("libc6", "2.36-9+deb12u4", "glibc"),
    ("libssl3", "3.0.11-1~deb12u1", "openssl"),
];
const PROCPS: (&str, &str, &str) = ("procps", "2:4.0.2-3", "");
const APACHE: (&str, &str, &str) = ("apache2", "2.4.62-1~deb12u1", "");

/// base (platform) → corebuild (operations) → httpd-php (middleware) → wordpress (development),
/// wordpress built twice: build 2 upgrades libssl3 to the fixed version.
fn store(dir: &Path) {
    let store = Store::init(dir).unwrap();
    let os_release = Entry::file_bytes(
        "etc/os-release",
        b"PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n".to_vec(),
        Metadata::new(0o644, 0, 0),
    );
    let l0 = layer(&store, vec![os_release, status(&BASE)]);
    let l1 = layer(&store, vec![status(&[BASE[0], BASE[1], PROCPS])]);
    let l2 = layer(&store, vec![status(&[APACHE, BASE[0], BASE[1], PROCPS])]);
    let l3 = layer(
        &store,
        vec![Entry::file_bytes(
            "var/www/index.php",
            b"<?php".to_vec(),
            Metadata::new(0o644, 0, 0),
        )],
    );
    let l3_fixed = layer(
        &store,
        vec![status(&[
            APACHE,
            BASE[0],
            ("libssl3", "3.0.11-1~deb12u2", "openssl"),
            PROCPS,
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
    let php = image(
        &store,
        "acme/httpd-php",
        "middleware",
        Some(&core),
        &[&l0, &l1, &l2],
    );
    let wp1 = image(
        &store,
        "acme/wordpress",
        "development",
        Some(&php),
        &[&l0, &l1, &l2, &l3],
    );
    store.refs().tag("acme/wordpress:1", &wp1).unwrap();
    let wp2 = image(
        &store,
        "acme/wordpress",
        "development",
        Some(&php),
        &[&l0, &l1, &l2, &l3_fixed],
    );
    store.refs().tag("acme/wordpress:2", &wp2).unwrap();
}

fn osv(dir: &Path) {
    std::fs::create_dir_all(dir.join("debian")).unwrap();
    let record = |id: &str, cve: &str, eco: &str, name: &str, fixed: &str| {
        serde_json::json!({
            "schema_version": "1.6.0",
            "id": id,
            "aliases": [cve],
            "summary": format!("{name} advisory"),
            "affected": [{
                "package": {"ecosystem": eco, "name": name},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}]
            }]
        })
        .to_string()
    };
    // Debian's record names the source package, openssl; the binary libssl3 carries it.
    std::fs::write(
        dir.join("debian/DSA-9001-1.json"),
        record(
            "DSA-9001-1",
            "CVE-2099-0001",
            "Debian:12",
            "openssl",
            "3.0.11-1~deb12u2",
        ),
    )
    .unwrap();
    // Another release, another distribution: not these images'.
    std::fs::write(
        dir.join("debian/DSA-9002-1.json"),
        record("DSA-9002-1", "CVE-2099-0002", "Debian:11", "openssl", "9.9"),
    )
    .unwrap();
    std::fs::write(
        dir.join("ALPINE-9003.json"),
        record(
            "ALPINE-9003",
            "CVE-2099-0003",
            "Alpine:v3.20",
            "openssl",
            "9.9",
        ),
    )
    .unwrap();
    // `~` sorts before the end: 3.0.11-1~deb12u1 is below 3.0.11-1, so it is affected.
    std::fs::write(
        dir.join("debian/DSA-9004-1.json"),
        record(
            "DSA-9004-1",
            "CVE-2099-0004",
            "Debian:12",
            "glibc",
            "2.36-9+deb12u3",
        ),
    )
    .unwrap();
}

fn strata(store: &Path, args: &[&str]) -> std::process::Output {
    cargo_bin_cmd!("strata")
        .arg("--store")
        .arg(store)
        .args(args)
        .output()
        .unwrap()
}

fn ok(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// The CycloneDX 1.6 JSON validator of `cyclonedx-python-lib`, strict (the schema rejects
/// unknown fields); `None` when the library is missing outside CI.
pub(crate) fn cyclonedx_validate(file: &Path) -> Option<()> {
    let python = require_tool("python3")?;
    let script = "import sys\n\
        from cyclonedx.validation.json import JsonStrictValidator\n\
        from cyclonedx.schema import SchemaVersion\n\
        err = JsonStrictValidator(SchemaVersion.V1_6).validate_str(open(sys.argv[1]).read())\n\
        print(err or 'valid')\n\
        sys.exit(1 if err else 0)\n";
    let probe = StdCommand::new(&python)
        .args(["-c", "import cyclonedx.validation.json, jsonschema"])
        .output()
        .unwrap();
    if !probe.status.success() {
        assert!(
            !strata_testutil::in_ci(),
            "cyclonedx-python-lib[json-validation] is required under CI=true"
        );
        eprintln!("skipping the CycloneDX validator: cyclonedx-python-lib is missing");
        return None;
    }
    let out = StdCommand::new(&python)
        .args(["-c", script])
        .arg(file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cyclonedx-python-lib rejects {}: {}{}",
        file.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Some(())
}

#[test]
fn sboms_pass_the_reference_validators_with_purls_sources_tiers_and_teams() {
    let dir = tempfile::tempdir().unwrap();
    let s = dir.path().join("store");
    store(&s);
    let spdx = dir.path().join("httpd.spdx.json");
    let cdx = dir.path().join("httpd.cdx.json");
    ok(&strata(
        &s,
        &[
            "sbom",
            "acme/httpd-php",
            "--format",
            "spdx",
            "-o",
            spdx.to_str().unwrap(),
        ],
    ));
    ok(&strata(
        &s,
        &[
            "sbom",
            "acme/httpd-php",
            "--format",
            "cyclonedx",
            "-o",
            cdx.to_str().unwrap(),
        ],
    ));

    let doc: Value = serde_json::from_slice(&std::fs::read(&spdx).unwrap()).unwrap();
    assert_eq!(doc["spdxVersion"], "SPDX-2.3");
    let packages = doc["packages"].as_array().unwrap();
    let by_name = |name: &str| {
        packages
            .iter()
            .find(|p| p["name"] == name && p["primaryPackagePurpose"] != "SOURCE")
            .unwrap_or_else(|| panic!("{name} missing"))
    };
    let libssl = by_name("libssl3");
    assert_eq!(
        libssl["externalRefs"][0]["referenceLocator"],
        "pkg:deb/debian/libssl3@3.0.11-1~deb12u1?arch=amd64&distro=debian-12"
    );
    let comments: Vec<&str> = libssl["annotations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["comment"].as_str().unwrap())
        .collect();
    assert!(comments.contains(&"strata:tier=acme/base"), "{comments:?}");
    assert!(comments.contains(&"strata:team=platform"), "{comments:?}");
    let procps = by_name("procps");
    assert_eq!(
        procps["externalRefs"][0]["referenceLocator"],
        "pkg:deb/debian/procps@2%3A4.0.2-3?arch=amd64&distro=debian-12"
    );
    assert!(
        procps["annotations"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["comment"] == "strata:tier=acme/corebuild")
    );
    // libssl3 GENERATED_FROM the source package openssl.
    let source = packages
        .iter()
        .find(|p| p["name"] == "openssl")
        .expect("the source package openssl");
    assert_eq!(source["primaryPackagePurpose"], "SOURCE");
    assert!(doc["relationships"].as_array().unwrap().iter().any(|r| {
        r["spdxElementId"] == libssl["SPDXID"]
            && r["relationshipType"] == "GENERATED_FROM"
            && r["relatedSpdxElement"] == source["SPDXID"]
    }));

    let bom: Value = serde_json::from_slice(&std::fs::read(&cdx).unwrap()).unwrap();
    assert_eq!(bom["specVersion"], "1.6");
    let apache = bom["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "apache2")
        .unwrap();
    let prop = |c: &Value, name: &str| {
        c["properties"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .map(|p| p["value"].as_str().unwrap().to_string())
    };
    assert_eq!(
        prop(apache, "strata:tier").as_deref(),
        Some("acme/httpd-php")
    );
    assert_eq!(prop(apache, "strata:team").as_deref(), Some("middleware"));
    let libssl = bom["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "libssl3")
        .unwrap();
    assert_eq!(libssl["pedigree"]["ancestors"][0]["name"], "openssl");

    if require_tool("pyspdxtools").is_some() {
        let out = StdCommand::new("pyspdxtools")
            .arg("-i")
            .arg(&spdx)
            .output()
            .unwrap();
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "pyspdxtools rejects the SBOM: {said}");
        assert!(!said.contains("invalid"), "pyspdxtools: {said}");
    }
    cyclonedx_validate(&cdx);
}

#[test]
fn advisories_match_debian_records_by_source_package_in_dpkg_order() {
    let dir = tempfile::tempdir().unwrap();
    let s = dir.path().join("store");
    store(&s);
    let o = dir.path().join("osv");
    osv(&o);
    let out = ok(&strata(
        &s,
        &[
            "advisories",
            "--osv",
            o.to_str().unwrap(),
            "acme/httpd-php",
            "--json",
        ],
    ));
    let findings: Vec<Value> = serde_json::from_str(&out).unwrap();
    let ids: Vec<(&str, &str)> = findings
        .iter()
        .map(|f| {
            (
                f["id"].as_str().unwrap(),
                f["package"]["name"].as_str().unwrap(),
            )
        })
        .collect();
    // openssl's record hits libssl3 (source openssl); glibc's is fixed below the installed
    // +deb12u4; the Debian 11 and Alpine records are other distributions'.
    assert_eq!(ids, [("DSA-9001-1", "libssl3")], "{out}");
    assert_eq!(findings[0]["fixed"], "3.0.11-1~deb12u2");
    assert_eq!(findings[0]["package"]["installedBy"]["owner"], "platform");

    // Every repository's latest build: wordpress's build 2 has the fix.
    let out = ok(&strata(&s, &["advisories", "--osv", o.to_str().unwrap()]));
    assert!(out.contains("localhost/acme/corebuild"), "{out}");
    assert!(!out.contains("acme/wordpress"), "{out}");
    assert!(out.ends_with("3 findings\n"), "{out}");
}

#[test]
fn affected_names_the_tier_team_and_the_newer_build_that_fixed_it() {
    let dir = tempfile::tempdir().unwrap();
    let s = dir.path().join("store");
    store(&s);
    let o = dir.path().join("osv");
    osv(&o);
    for target in [
        vec!["affected", "openssl@<3.0.11-1~deb12u2", "--json"],
        vec![
            "affected",
            "CVE-2099-0001",
            "--osv",
            o.to_str().unwrap(),
            "--json",
        ],
    ] {
        let out = ok(&strata(&s, &target));
        let report: Value = serde_json::from_str(&out).unwrap();
        let images = report["images"].as_array().unwrap();
        let repo = |name: &str| {
            images
                .iter()
                .find(|i| i["repository"] == format!("localhost/{name}"))
                .unwrap_or_else(|| panic!("{name} not in {out}"))
        };
        let php = repo("acme/httpd-php");
        assert_eq!(php["packages"][0]["name"], "libssl3");
        assert_eq!(php["packages"][0]["installedBy"]["chainImage"], "acme/base");
        let wp = repo("acme/wordpress");
        assert!(wp["packages"].as_array().unwrap().is_empty(), "{out}");
        assert_eq!(wp["fixedSince"][0], "localhost/acme/wordpress:1", "{out}");
        assert_eq!(report["fixes"][0]["tier"], "acme/base");
        assert_eq!(report["fixes"][0]["team"], "platform");
    }
    // procps came with corebuild, whoever rewrote the status file after.
    let out = ok(&strata(&s, &["affected", "procps"]));
    assert!(
        out.contains("procps comes from acme/corebuild (operations)"),
        "{out}"
    );
    assert!(!out.contains("acme/base"), "{out}");
    let out = ok(&strata(&s, &["affected", "procps@>=3:0"]));
    assert_eq!(out, "procps@>=3:0: no image carries it\n");
}

/// `affected` and `advisories` answer from the package index (`.strata/packages.db`) the same as
/// from the layers, and a corrupt index is rebuilt without changing an answer or failing.
#[test]
fn the_package_index_answers_as_the_layers_do_and_a_corrupt_one_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let s = dir.path().join("store");
    store(&s);
    let o = dir.path().join("osv");
    osv(&o);
    let runs: [Vec<&str>; 4] = [
        vec!["affected", "openssl@<3.0.11-1~deb12u2", "--json"],
        vec!["affected", "procps"],
        vec!["affected", "CVE-2099-0001", "--osv", o.to_str().unwrap()],
        vec!["advisories", "--osv", o.to_str().unwrap(), "--json"],
    ];
    let index = s.join(".strata/packages.db");
    let cold: Vec<String> = runs.iter().map(|args| ok(&strata(&s, args))).collect();
    assert!(index.is_file(), "no package index after a run");
    let size = std::fs::metadata(&index).unwrap().len();
    for (args, expected) in runs.iter().zip(&cold) {
        assert_eq!(&ok(&strata(&s, args)), expected, "{args:?} from the index");
    }
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(s.join(format!(".strata/packages.db{suffix}")));
    }
    std::fs::write(&index, vec![0xa5; size.max(4096) as usize]).unwrap();
    for (args, expected) in runs.iter().zip(&cold) {
        assert_eq!(
            &ok(&strata(&s, args)),
            expected,
            "{args:?} after corruption"
        );
    }
    let header = std::fs::read(&index).unwrap();
    assert!(header.starts_with(b"SQLite format 3\0"), "not rebuilt");
    // fsck and gc leave it alone and stay clean; the answers stay the same after gc.
    ok(&strata(&s, &["store", "fsck"]));
    ok(&strata(&s, &["store", "gc"]));
    for (args, expected) in runs.iter().zip(&cold) {
        assert_eq!(&ok(&strata(&s, args)), expected, "{args:?} after gc");
    }
}

#[test]
fn hostile_osv_files_are_refused_in_one_line_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let s = dir.path().join("store");
    store(&s);
    let cases: [(&str, Vec<u8>, &str); 3] = [
        ("huge.json", vec![b' '; (8 << 20) + 1], "over the limit"),
        (
            "not-osv.json",
            b"{\"affected\": 7}".to_vec(),
            "not an OSV record",
        ),
        (
            "deep.json",
            format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)).into_bytes(),
            "not an OSV record",
        ),
    ];
    for (name, bytes, says) in cases {
        let o = dir.path().join(format!("osv-{name}"));
        osv(&o);
        std::fs::write(o.join(name), bytes).unwrap();
        let out = strata(&s, &["advisories", "--osv", o.to_str().unwrap()]);
        assert!(!out.status.success(), "{name}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(name) && err.contains(says), "{err}");
    }
    // A symbolic link out of the directory is not followed.
    let o = dir.path().join("osv-link");
    osv(&o);
    std::os::unix::fs::symlink("/dev/zero", o.join("zero.json")).unwrap();
    ok(&strata(&s, &["advisories", "--osv", o.to_str().unwrap()]));
}

/// Every signed build attaches its SBOMs beside its provenance, signed by the same team's key;
/// `strata sbom --verify` prints the signed one and refuses one signed by another team's key.
#[test]
fn signed_builds_attach_sboms_that_verify_against_the_owners_keys() {
    use crate::custody_cli::{TEAMS, signed_example, strata as in_dir, with_keys};
    let Some(dir) = signed_example() else { return };
    let d = dir.path();
    // middleware's image signed with development's key: its SBOM must not verify.
    let keys: Vec<(&str, &str)> = TEAMS
        .iter()
        .map(|t| {
            (
                *t,
                if *t == "middleware" {
                    "development"
                } else {
                    *t
                },
            )
        })
        .collect();
    with_keys(in_dir(d), d, &keys)
        .arg("build")
        .assert()
        .success();
    for format in ["spdx", "cyclonedx"] {
        let out = in_dir(d)
            .args(["sbom", "acme/corebuild", "--verify", "--format", format])
            .output()
            .unwrap();
        let text = ok(&out);
        let doc: Value = serde_json::from_str(&text).unwrap();
        let packages = in_dir(d)
            .args(["packages", "acme/corebuild", "--json"])
            .output()
            .unwrap();
        let digest = serde_json::from_slice::<Value>(&packages.stdout).unwrap()["digest"]
            .as_str()
            .unwrap()
            .to_string();
        if format == "spdx" {
            assert_eq!(doc["packages"][0]["versionInfo"], digest.as_str());
        } else {
            assert_eq!(doc["metadata"]["component"]["version"], digest.as_str());
        }
    }
    let out = in_dir(d)
        .args(["sbom", "acme/httpd-php", "--verify"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("acme/httpd-php has no SPDX SBOM signed by a key of middleware"),
        "{err}"
    );
}
