//! `strata key generate`: key files OpenSSL reads, private keys 0600, never overwritten, optional
//! passphrase, and a key id anyone can recompute from the public key.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command as Process;

use assert_cmd::Command;
use predicates::prelude::*;
use sha2::{Digest as _, Sha256};

fn strata(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("strata").unwrap();
    cmd.env_remove("STRATA_STORE")
        .env_remove("STRATA_CHAIN")
        .env_remove("STRATA_KEY_PASSWORD")
        .arg("-C")
        .arg(dir);
    cmd
}

fn openssl(args: &[&str]) -> std::process::Output {
    Process::new("openssl").args(args).output().unwrap()
}

#[test]
fn generates_an_ecdsa_key_pair_openssl_reads() {
    let Some(_) = strata_testutil::require_tool("openssl") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = strata(dir.path())
        .args(["key", "generate", "--team", "operations", "--out", "keys"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let stdout = String::from_utf8(out).unwrap();
    let key_id = stdout.lines().next().unwrap();
    assert_eq!(key_id.len(), 64, "{stdout}");
    assert!(stdout.contains("not encrypted"), "{stdout}");

    let private = dir.path().join("keys/operations.key");
    let public = dir.path().join("keys/operations.pub");
    assert_eq!(
        fs::metadata(&private).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(
        fs::read_to_string(&private)
            .unwrap()
            .starts_with("-----BEGIN PRIVATE KEY-----")
    );

    // OpenSSL reads both; the private key's public half is the .pub file; it is a P-256 key.
    let text = openssl(&["pkey", "-in", private.to_str().unwrap(), "-noout", "-text"]);
    assert!(text.status.success(), "{text:?}");
    assert!(
        String::from_utf8_lossy(&text.stdout).contains("prime256v1"),
        "{text:?}"
    );
    let derived = openssl(&["pkey", "-in", private.to_str().unwrap(), "-pubout"]);
    assert!(derived.status.success());
    assert_eq!(
        String::from_utf8(derived.stdout).unwrap(),
        fs::read_to_string(&public).unwrap()
    );

    // The key id is the sha256 of the public key's DER, as documented.
    let der = openssl(&[
        "pkey",
        "-pubin",
        "-in",
        public.to_str().unwrap(),
        "-outform",
        "DER",
    ]);
    assert!(der.status.success());
    assert_eq!(hex::encode(Sha256::digest(&der.stdout)), key_id);

    // A second run never overwrites the team's key.
    let before = fs::read(&private).unwrap();
    strata(dir.path())
        .args(["key", "generate", "--team", "operations", "--out", "keys"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("operations.key already exists"));
    assert_eq!(fs::read(&private).unwrap(), before);
}

#[test]
fn ed25519_and_json() {
    let Some(_) = strata_testutil::require_tool("openssl") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = strata(dir.path())
        .args(["key", "generate", "--team", "web", "--ed25519", "--json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let json: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(json["team"], "web");
    assert_eq!(json["kind"], "ed25519");
    assert_eq!(json["encrypted"], false);
    assert_eq!(
        json["private_key"],
        dir.path().join("web.key").to_str().unwrap()
    );
    let text = openssl(&[
        "pkey",
        "-in",
        dir.path().join("web.key").to_str().unwrap(),
        "-noout",
        "-text",
    ]);
    assert!(
        String::from_utf8_lossy(&text.stdout).contains("ED25519"),
        "{text:?}"
    );
    let loaded = strata_attest::PublicKey::load(&dir.path().join("web.pub")).unwrap();
    assert_eq!(json["key_id"], loaded.id().as_str());
}

#[test]
fn a_passphrase_encrypts_the_private_key() {
    let Some(_) = strata_testutil::require_tool("openssl") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    strata(dir.path())
        .env("STRATA_KEY_PASSWORD", "s3cret phrase")
        .args(["key", "generate", "--team", "operations"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "encrypted with STRATA_KEY_PASSWORD",
        ));
    let private = dir.path().join("operations.key");
    let pem = fs::read_to_string(&private).unwrap();
    assert!(
        pem.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"),
        "{pem}"
    );
    let path = private.to_str().unwrap();
    let wrong = openssl(&["pkey", "-in", path, "-passin", "pass:wrong", "-noout"]);
    assert!(!wrong.status.success());
    let right = openssl(&[
        "pkey",
        "-in",
        path,
        "-passin",
        "pass:s3cret phrase",
        "-pubout",
    ]);
    assert!(right.status.success(), "{right:?}");
    assert_eq!(
        String::from_utf8(right.stdout).unwrap(),
        fs::read_to_string(dir.path().join("operations.pub")).unwrap()
    );
    // strata reads it back with the passphrase only.
    let err = strata_oci::report(&strata_attest::PrivateKey::load(&private, None).unwrap_err());
    assert!(err.contains("STRATA_KEY_PASSWORD"), "{err}");
    strata_attest::PrivateKey::load(&private, Some("s3cret phrase")).unwrap();
}

#[test]
fn bad_team_names_are_refused_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = strata(dir.path())
        .args(["key", "generate", "--team", "../etc"])
        .assert()
        .failure()
        .get_output()
        .stderr
        .clone();
    let stderr = String::from_utf8(out).unwrap();
    assert!(stderr.contains("invalid team name \"../etc\""), "{stderr}");
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
}
