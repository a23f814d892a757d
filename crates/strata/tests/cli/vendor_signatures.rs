//! A bought base that requires its vendor's signature (`source = { image = "...@sha256:...",
//! signed_by = "KEY" }`) is imported only when the signature vouches for the pin: simple-signing
//! signatures made by skopeo `--sign-by` with gpg, and cosign key-pair signatures made with
//! openssl. A missing, foreign, replayed or changed signature refuses the import, naming the image
//! and the key, and nothing enters the store.

#![allow(clippy::print_stderr)]

use std::path::{Path, PathBuf};
use std::process::Command;

use assert_cmd::cargo::cargo_bin_cmd;
use serde_json::Value;
use strata_testutil::{require_tool, run_ok};

use crate::common::{Serve, openssl_key, push_cosign_signature};

/// A private GNUPGHOME; its agent is stopped on drop.
struct Gpg {
    home: PathBuf,
}

impl Gpg {
    fn new(home: PathBuf) -> Gpg {
        std::fs::create_dir_all(&home).unwrap();
        std::fs::set_permissions(&home, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .unwrap();
        Gpg { home }
    }

    fn cmd(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("GNUPGHOME", &self.home);
        c
    }

    /// A new signing key without passphrase; its fingerprint.
    fn generate(&self, uid: &str) -> String {
        run_ok(self.cmd("gpg").args([
            "--batch",
            "--passphrase",
            "",
            "--quick-gen-key",
            uid,
            "default",
            "default",
            "never",
        ]));
        let listing = run_ok(self.cmd("gpg").args(["--with-colons", "--list-keys", uid]));
        listing
            .lines()
            .find_map(|l| l.strip_prefix("fpr:"))
            .map(|l| l.trim_matches(':').to_string())
            .unwrap()
    }

    fn export(&self, fingerprint: &str, armor: bool, dest: &Path) {
        let mut c = self.cmd("gpg");
        c.arg("--batch");
        if armor {
            c.arg("--armor");
        }
        let out = c.args(["--export", fingerprint]).output().unwrap();
        assert!(out.status.success() && !out.stdout.is_empty());
        std::fs::write(dest, out.stdout).unwrap();
    }
}

impl Drop for Gpg {
    fn drop(&mut self) {
        let _ = self.cmd("gpgconf").args(["--kill", "gpg-agent"]).status();
    }
}

/// `vendor/base:TAG` built into `store` holding the file `content`.
fn vendor_image(dir: &Path, store: &Path, tag: &str, content: &str) {
    let ctx = dir.join(format!("ctx-{tag}"));
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("hello"), content).unwrap();
    std::fs::write(ctx.join("Dockerfile"), "FROM scratch\nCOPY hello /hello\n").unwrap();
    let out = cargo_bin_cmd!("strata")
        .env_remove("STRATA_STORE")
        .env_remove("STRATA_CHAIN")
        .arg("--store")
        .arg(store)
        .args(["build-image", "-t", &format!("vendor/base:{tag}")])
        .arg(&ctx)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// skopeo pushes `vendor/base:TAG` to the registry, signed by `fingerprint` into the lookaside
/// directory `sigstore`; the pushed manifest digest.
fn skopeo_push_signed(
    gpg: &Gpg,
    dir: &Path,
    store: &Path,
    host: &str,
    tag: &str,
    fingerprint: &str,
    sigstore: &Path,
) -> String {
    let registries_d = dir.join(format!("registries.d-{}", &fingerprint[..8]));
    std::fs::create_dir_all(&registries_d).unwrap();
    std::fs::write(
        registries_d.join("vendor.yaml"),
        format!(
            "docker:\n  {host}:\n    lookaside-staging: file://{}\n",
            sigstore.display()
        ),
    )
    .unwrap();
    let digest_file = dir.join("digest");
    run_ok(
        gpg.cmd("skopeo")
            .args([
                "copy",
                "--quiet",
                "--dest-tls-verify=false",
                "--registries.d",
            ])
            .arg(&registries_d)
            .args(["--sign-by", fingerprint, "--digestfile"])
            .arg(&digest_file)
            .arg(format!(
                "oci:{}:localhost/vendor/base:{tag}",
                store.display()
            ))
            .arg(format!("docker://{host}/vendor/base:{tag}")),
    );
    std::fs::read_to_string(&digest_file)
        .unwrap()
        .trim()
        .to_string()
}

/// A chain whose one image is the bought base `source` (an inline TOML table's fields).
fn chain(dir: &Path, source: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("strata.toml"),
        format!(
            "name = \"acme\"\n[teams.operations]\n\
             [[image]]\nname = \"base\"\nowner = \"operations\"\nsource = {{ {source} }}\n"
        ),
    )
    .unwrap();
}

/// `strata build --json` in `dir`: (success, the base's summary entry, stderr).
fn build(dir: &Path) -> (bool, Value, String) {
    let out = cargo_bin_cmd!("strata")
        .env_remove("STRATA_STORE")
        .env_remove("STRATA_CHAIN")
        .arg("-C")
        .arg(dir)
        .args(["build", "--json"])
        .output()
        .unwrap();
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (
        out.status.success(),
        summary["images"][0].clone(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The import is refused with a message naming the image, the key file and `why`; the chain's
/// store does not hold the image's manifest.
fn assert_refused(dir: &Path, reference: &str, key: &str, why: &str) {
    let (ok, base, stderr) = build(dir);
    assert!(!ok, "{stderr}");
    assert_eq!(base["result"], "failed", "{base}");
    let message = base["message"].as_str().unwrap();
    assert!(
        message.contains(&format!(
            "bought image {reference} refused: vendor key {key}: "
        )),
        "{message}"
    );
    assert!(message.contains(why), "{message}");
    assert!(!message.contains('\n'), "one line: {message}");
    assert!(stderr.contains(why), "{stderr}");
    let digest = reference.rsplit_once("@sha256:").unwrap().1;
    assert!(
        !dir.join(".strata/store/blobs/sha256").join(digest).exists(),
        "nothing of the refused image enters the store"
    );
}

#[test]
fn a_bought_base_needs_its_vendors_simple_signing_signature() {
    let (Some(_), Some(_), Some(_)) = (
        require_tool("gpg"),
        require_tool("gpgv"),
        require_tool("skopeo"),
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let gpg = Gpg::new(d.join("gnupg"));
    let vendor = gpg.generate("Vendor <security@vendor.example>");
    let mallory = gpg.generate("Mallory <mallory@evil.example>");
    gpg.export(&vendor, true, &d.join("vendor.asc"));
    gpg.export(&vendor, false, &d.join("vendor.gpg"));

    let vstore = d.join("vstore");
    vendor_image(d, &vstore, "1", "one\n");
    vendor_image(d, &vstore, "2", "two\n");
    let registry = Serve::start(&d.join("registry"), &[]);
    let host = registry.host.clone();
    let sigs = d.join("sigs");
    let foreign = d.join("sigs-foreign");
    let one = skopeo_push_signed(&gpg, d, &vstore, &host, "1", &vendor, &sigs);
    let two = skopeo_push_signed(&gpg, d, &vstore, &host, "2", &vendor, &sigs);
    let again = skopeo_push_signed(&gpg, d, &vstore, &host, "1", &mallory, &foreign);
    assert_eq!(one, again);
    let pinned = format!("{host}/vendor/base:1@{one}");
    let signature_of = |sigstore: &Path, digest: &str| {
        sigstore
            .join(format!("vendor/base@{}", digest.replace(':', "=")))
            .join("signature-1")
    };
    assert!(
        signature_of(&sigs, &one).is_file(),
        "skopeo's lookaside layout"
    );

    // Signed by the vendor (armored key): imported as the chain's base.
    let good = d.join("good");
    chain(
        &good,
        &format!("image = \"{pinned}\", signed_by = \"../vendor.asc\", sigstore = \"../sigs\""),
    );
    let (ok, base, stderr) = build(&good);
    assert!(ok, "{stderr}");
    assert_eq!(base["new"], one.as_str(), "{base}");

    // The same lookaside store served over HTTP (python's http.server, a peer web server).
    if let Some(python) = require_tool("python3") {
        let mut web = Command::new(python)
            .args([
                "-u",
                "-m",
                "http.server",
                "0",
                "--bind",
                "127.0.0.1",
                "--directory",
            ])
            .arg(&sigs)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(web.stdout.as_mut().unwrap()),
            &mut line,
        )
        .unwrap();
        // "Serving HTTP on 127.0.0.1 port 41234 (http://127.0.0.1:41234/) ..."
        let port = line
            .split(" port ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("http.server said {line:?}"))
            .to_string();
        let over_http = d.join("over-http");
        chain(
            &over_http,
            &format!(
                "image = \"{pinned}\", signed_by = \"../vendor.asc\", sigstore = \"http://127.0.0.1:{port}/\""
            ),
        );
        let (ok, base, stderr) = build(&over_http);
        let _ = web.kill();
        let _ = web.wait();
        assert!(ok, "{stderr}");
        assert_eq!(base["new"], one.as_str(), "{base}");
    }

    // Without gpgv (PATH holds no tools), nothing is imported unchecked: one line says what is
    // missing.
    let no_gpgv = d.join("no-gpgv");
    chain(
        &no_gpgv,
        &format!("image = \"{pinned}\", signed_by = \"../vendor.asc\", sigstore = \"../sigs\""),
    );
    let empty_path = d.join("no-tools");
    std::fs::create_dir_all(&empty_path).unwrap();
    let out = cargo_bin_cmd!("strata")
        .env_remove("STRATA_STORE")
        .env_remove("STRATA_CHAIN")
        .env("PATH", &empty_path)
        .arg("-C")
        .arg(&no_gpgv)
        .args(["build", "--json"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "bought image {pinned}: checking its vendor signature failed: verifying OpenPGP signatures needs gpgv (Debian package gpgv)"
        )),
        "{stderr}"
    );
    assert!(
        !no_gpgv
            .join(".strata/store/blobs/sha256")
            .join(one.strip_prefix("sha256:").unwrap())
            .exists(),
        "nothing enters the store unchecked"
    );

    // No signature in the lookaside store.
    let missing = d.join("missing");
    std::fs::create_dir_all(d.join("empty")).unwrap();
    chain(
        &missing,
        &format!("image = \"{pinned}\", signed_by = \"../vendor.gpg\", sigstore = \"../empty\""),
    );
    assert_refused(&missing, &pinned, "../vendor.gpg", "no signature found");

    // Signed, but by another key (binary key file).
    let other = d.join("foreign");
    chain(
        &other,
        &format!(
            "image = \"{pinned}\", signed_by = \"../vendor.gpg\", sigstore = \"../sigs-foreign\""
        ),
    );
    assert_refused(&other, &pinned, "../vendor.gpg", "signed by another key");

    // The vendor's genuine signature of image 2, replayed for image 1.
    let replay = d.join("sigs-replay");
    let slot = signature_of(&replay, &one);
    std::fs::create_dir_all(slot.parent().unwrap()).unwrap();
    std::fs::copy(signature_of(&sigs, &two), &slot).unwrap();
    let replayed = d.join("replayed");
    chain(
        &replayed,
        &format!(
            "image = \"{pinned}\", signed_by = \"../vendor.asc\", sigstore = \"../sigs-replay\""
        ),
    );
    assert_refused(
        &replayed,
        &pinned,
        "../vendor.asc",
        &format!("the signature is for {two}, not for the pinned {one}"),
    );

    // The vendor's payload for image 1, signed by the vendor (uncompressed, so the payload's
    // bytes are in the clear), then one character of the signed digest changed.
    let payload = gpg
        .cmd("gpg")
        .args(["--batch", "--decrypt"])
        .arg(signature_of(&sigs, &one))
        .output()
        .unwrap();
    assert!(payload.status.success());
    assert!(String::from_utf8_lossy(&payload.stdout).contains(&one));
    std::fs::write(d.join("payload.json"), &payload.stdout).unwrap();
    let resigned = d.join("resigned.gpg");
    run_ok(
        gpg.cmd("gpg")
            .args([
                "--batch",
                "-z",
                "0",
                "--local-user",
                &vendor,
                "--sign",
                "-o",
            ])
            .arg(&resigned)
            .arg(d.join("payload.json")),
    );
    let mut bytes = std::fs::read(&resigned).unwrap();
    let hex = one.strip_prefix("sha256:").unwrap().as_bytes();
    let at = bytes
        .windows(hex.len())
        .position(|w| w == hex)
        .expect("the payload is in the clear");
    bytes[at] = if bytes[at] == b'0' { b'1' } else { b'0' };
    std::fs::write(&slot, bytes).unwrap();
    assert_refused(
        &replayed,
        &pinned,
        "../vendor.asc",
        "the signature does not verify: the signed payload or the signature was changed",
    );
    drop(registry);
}

#[test]
fn a_bought_base_needs_its_vendors_cosign_signature() {
    let (Some(_), Some(_)) = (require_tool("openssl"), require_tool("skopeo")) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let vstore = d.join("vstore");
    vendor_image(d, &vstore, "1", "one\n");
    vendor_image(d, &vstore, "2", "two\n");
    let registry = Serve::start(&d.join("registry"), &[]);
    let host = registry.host.clone();
    let push = |tag: &str| {
        let digest_file = d.join("digest");
        run_ok(
            Command::new("skopeo")
                .args(["copy", "--quiet", "--dest-tls-verify=false", "--digestfile"])
                .arg(&digest_file)
                .arg(format!(
                    "oci:{}:localhost/vendor/base:{tag}",
                    vstore.display()
                ))
                .arg(format!("docker://{host}/vendor/base:{tag}")),
        );
        std::fs::read_to_string(&digest_file)
            .unwrap()
            .trim()
            .to_string()
    };
    let one = push("1");
    let two = push("2");
    let (vendor_key, vendor_pub) = openssl_key(d, "cosign");
    let _ = openssl_key(d, "other");
    let image = format!("{host}/vendor/base");
    push_cosign_signature(d, &image, &one, &one, &vendor_key);
    // Image 2's signature names image 1: a replay.
    push_cosign_signature(d, &image, &two, &one, &vendor_key);

    let pinned = format!("{host}/vendor/base:1@{one}");
    let good = d.join("good");
    chain(
        &good,
        &format!("image = \"{pinned}\", signed_by = \"../cosign.pub\""),
    );
    let (ok, base, stderr) = build(&good);
    assert!(ok, "{stderr}");
    assert_eq!(base["new"], one.as_str(), "{base}");

    let foreign = d.join("foreign");
    chain(
        &foreign,
        &format!("image = \"{pinned}\", signed_by = \"../other.pub\""),
    );
    assert_refused(
        &foreign,
        &pinned,
        "../other.pub",
        "the signature does not verify with this key",
    );

    let pinned_two = format!("{host}/vendor/base:2@{two}");
    let replayed = d.join("replayed");
    chain(
        &replayed,
        &format!("image = \"{pinned_two}\", signed_by = \"../cosign.pub\""),
    );
    assert_refused(
        &replayed,
        &pinned_two,
        "../cosign.pub",
        &format!("the signature is for {one}, not for the pinned {two}"),
    );

    // Image 3 was never signed.
    vendor_image(d, &vstore, "3", "three\n");
    let three = push("3");
    let pinned_three = format!("{host}/vendor/base:3@{three}");
    let missing = d.join("missing");
    chain(
        &missing,
        &format!("image = \"{pinned_three}\", signed_by = \"../cosign.pub\""),
    );
    assert_refused(
        &missing,
        &pinned_three,
        "../cosign.pub",
        &format!("no signature found (no tag {}", three.replace(':', "-")),
    );
    drop(vendor_pub);
    drop(registry);
}
