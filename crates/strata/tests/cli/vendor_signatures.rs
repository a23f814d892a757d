//! A bought base that requires its vendor's signature (`source = { image = "...@sha256:...",
//! signed_by = "KEY" }`) is imported only when the signature vouches for the pin: simple-signing
//! signatures made by skopeo `--sign-by` with gpg, and cosign key-pair signatures made with
//! openssl. A missing, foreign, replayed or changed signature refuses the import, naming the image
//! and the key, and nothing enters the store. The signature that vouched is kept in the store as
//! the base's referrer, and `strata verify` checks it again at the base's link: deleted, swapped
//! for another key's or changed, the chain of custody is broken there.

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

/// A chain like [`chain`] whose operations team signs what it builds: its key pair is made in
/// `dir/keys` and trusted by strata.toml.
fn signed_chain(dir: &Path, source: &str) {
    std::fs::create_dir_all(dir).unwrap();
    let out = cargo_bin_cmd!("strata")
        .args(["key", "generate", "--team", "operations", "--out"])
        .arg(dir.join("keys"))
        .env_remove("STRATA_KEY_PASSWORD")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(
        dir.join("strata.toml"),
        format!(
            "name = \"acme\"\n[teams.operations]\nkeys = [\"keys/operations.pub\"]\n\
             [[image]]\nname = \"base\"\nowner = \"operations\"\ntier = \"base\"\n\
             source = {{ {source} }}\n"
        ),
    )
    .unwrap();
}

/// `strata build --key operations=keys/operations.key` in a [`signed_chain`]; must succeed.
fn build_signed(dir: &Path) {
    let out = cargo_bin_cmd!("strata")
        .env_remove("STRATA_STORE")
        .env_remove("STRATA_CHAIN")
        .arg("-C")
        .arg(dir)
        .args(["build", "--key", "operations=keys/operations.key"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `strata verify [--json] acme/base --offline` in `dir`: (success, stdout, stderr).
fn verify(dir: &Path, json: bool) -> (bool, String, String) {
    let mut cmd = cargo_bin_cmd!("strata");
    cmd.env_remove("STRATA_STORE")
        .env_remove("STRATA_CHAIN")
        .arg("-C")
        .arg(dir)
        .args(["verify", "--offline", "acme/base"]);
    if json {
        cmd.arg("--json");
    }
    let out = cmd.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The store of the chain in `dir`.
fn store_of(dir: &Path) -> strata_oci::Store {
    strata_oci::Store::open(dir.join(".strata/store")).unwrap()
}

/// The vendor signatures kept for `digest` in the chain's store: (artifact, its one layer).
fn kept(dir: &Path, digest: &str) -> Vec<(strata_oci::Digest, strata_oci::Descriptor)> {
    let store = store_of(dir);
    let digest: strata_oci::Digest = digest.parse().unwrap();
    store
        .referrers(
            &digest,
            Some(strata_attest::evidence::VENDOR_SIGNATURE_ARTIFACT_TYPE),
        )
        .unwrap()
        .iter()
        .map(|r| {
            let d = strata_oci::Digest::from_oci(r.digest()).unwrap();
            let manifest = store.blobs().read_manifest(&d).unwrap();
            (d, manifest.layers()[0].clone())
        })
        .collect()
}

/// Replace the kept vendor signatures of the base `digest` (bought as `reference`) with
/// `evidence` (none: delete them).
fn replace_kept(
    dir: &Path,
    reference: &str,
    digest: &str,
    evidence: Option<&strata_attest::evidence::Evidence>,
) {
    let store = store_of(dir);
    for (artifact, _) in kept(dir, digest) {
        assert!(store.refs().remove_root(&artifact).unwrap());
    }
    if let Some(evidence) = evidence {
        let base = store.refs().resolve(reference).unwrap();
        strata_attest::evidence::keep(&store, &base, reference, evidence).unwrap();
    }
}

/// `strata verify` in `dir` fails at the base `image` (`HOST/NAME@DIGEST`), one line naming it and
/// `why`.
fn assert_verify_broken(dir: &Path, image: &str, why: &str) {
    let (ok, out, stderr) = verify(dir, false);
    assert!(!ok, "{out}{stderr}");
    let last = out.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("chain of custody broken at acme/base (")
            && last.contains(&format!("): bought base {image}: "))
            && last.contains(why),
        "{out}"
    );
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

    // Signed by its team too: `strata verify` checks the kept vendor signature again, offline.
    let custody = d.join("custody");
    signed_chain(
        &custody,
        &format!("image = \"{pinned}\", signed_by = \"../vendor.asc\", sigstore = \"../sigs\""),
    );
    build_signed(&custody);
    let evidence = kept(&custody, &one);
    assert_eq!(evidence.len(), 1, "the signature that vouched is kept");
    assert_eq!(
        evidence[0].1.media_type().to_string(),
        strata_attest::evidence::SIMPLE_SIGNING_MEDIA_TYPE
    );
    let blob = |layer: &strata_oci::Descriptor| {
        custody
            .join(".strata/store/blobs/sha256")
            .join(strata_oci::Digest::from_oci(layer.digest()).unwrap().hex())
    };
    assert_eq!(
        std::fs::read(blob(&evidence[0].1)).unwrap(),
        std::fs::read(signature_of(&sigs, &one)).unwrap(),
        "exactly as fetched"
    );
    let (ok, out, stderr) = verify(&custody, false);
    assert!(ok, "{out}{stderr}");
    assert!(
        out.contains(&format!("base: signed by the vendor, key {vendor} ")),
        "{out}"
    );
    let (ok, out, _) = verify(&custody, true);
    assert!(ok);
    let report: Value = serde_json::from_str(&out).unwrap();
    let link = &report["links"][0];
    assert_eq!(link["verdict"], "ok", "{report:#}");
    assert_eq!(link["vendor"]["key"], vendor.as_str(), "{report:#}");
    assert_eq!(link["vendor"]["format"], "simple_signing", "{report:#}");
    assert_eq!(link["vendor"]["key_file"], "../vendor.asc", "{report:#}");

    // Swapped for Mallory's signature of the same image: broken at the base, naming the key.
    let base_image = format!("{host}/vendor/base@{one}");
    let mallorys = strata_attest::evidence::Evidence::SimpleSigning {
        signature: std::fs::read(signature_of(&foreign, &one)).unwrap(),
    };
    replace_kept(&custody, &pinned, &one, Some(&mallorys));
    assert_verify_broken(
        &custody,
        &base_image,
        &format!(
            "the vendor signature in the store does not verify with signed_by ../vendor.asc: \
             signed by another key (OpenPGP key {}), not by this one",
            &mallory[24..]
        ),
    );

    // The vendor's own signature back, then one byte of it changed in the store.
    let vendors = strata_attest::evidence::Evidence::SimpleSigning {
        signature: std::fs::read(signature_of(&sigs, &one)).unwrap(),
    };
    replace_kept(&custody, &pinned, &one, Some(&vendors));
    assert!(verify(&custody, false).0);
    let path = blob(&kept(&custody, &one)[0].1);
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    std::fs::write(&path, bytes).unwrap();
    assert_verify_broken(
        &custody,
        &base_image,
        "the vendor signature in the store does not verify with signed_by ../vendor.asc: vendor signature sha256:",
    );

    // Deleted.
    replace_kept(&custody, &pinned, &one, None);
    assert_verify_broken(
        &custody,
        &base_image,
        "no vendor signature in the store (signed_by ../vendor.asc in strata.toml)",
    );

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

    // Signed by its team too: verify checks the kept cosign signature again, offline.
    let custody = d.join("custody");
    signed_chain(
        &custody,
        &format!("image = \"{pinned}\", signed_by = \"../cosign.pub\""),
    );
    build_signed(&custody);
    // gc keeps the kept signature as long as the base lives; fsck finds it sound.
    for args in [["store", "gc"], ["store", "fsck"]] {
        let out = cargo_bin_cmd!("strata")
            .env_remove("STRATA_STORE")
            .env_remove("STRATA_CHAIN")
            .arg("-C")
            .arg(&custody)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(kept(&custody, &one).len(), 1);
    let (ok, out, _) = verify(&custody, true);
    assert!(ok, "{out}");
    let report: Value = serde_json::from_str(&out).unwrap();
    let key_id = strata_attest::PublicKey::load(&vendor_pub)
        .unwrap()
        .id()
        .to_string();
    assert_eq!(
        report["links"][0]["vendor"]["key"],
        key_id.as_str(),
        "{report:#}"
    );
    assert_eq!(
        report["links"][0]["vendor"]["format"], "cosign",
        "{report:#}"
    );
    let (ok, out, _) = verify(&custody, false);
    assert!(ok);
    assert!(
        out.contains(&format!("base: signed by the vendor, key {key_id} ")),
        "{out}"
    );
    let base_image = format!("{host}/vendor/base@{one}");
    let stored = store_of(&custody);
    let (_, layer) = kept(&custody, &one).remove(0);
    let payload = stored.blobs().read_descriptor(&layer).unwrap();
    let annotations = layer.annotations().clone().unwrap();
    drop(stored);
    let signature = annotations[strata_attest::vendor::COSIGN_SIGNATURE_ANNOTATION].clone();
    // The payload as the registry served it, its signature and annotations as fetched.
    let layer_map: std::collections::BTreeMap<String, String> = annotations.into_iter().collect();

    // One byte of the signed payload changed (stored consistently, under its new digest).
    let mut changed = payload.clone();
    let at = changed.len() - 2;
    changed[at] ^= 1;
    replace_kept(
        &custody,
        &pinned,
        &one,
        Some(&strata_attest::evidence::Evidence::Cosign {
            payload: changed,
            annotations: layer_map.clone(),
        }),
    );
    assert_verify_broken(
        &custody,
        &base_image,
        "signed_by ../cosign.pub: the signature does not verify with this key",
    );

    // The signature swapped for one made by another key over the same payload.
    std::fs::write(d.join("kept-payload.json"), &payload).unwrap();
    run_ok(
        Command::new("openssl")
            .args(["dgst", "-sha256", "-sign"])
            .arg(d.join("other.key"))
            .arg("-out")
            .arg(d.join("other.sig"))
            .arg(d.join("kept-payload.json")),
    );
    let mut swapped = layer_map.clone();
    swapped.insert(
        strata_attest::vendor::COSIGN_SIGNATURE_ANNOTATION.to_string(),
        run_ok(
            Command::new("openssl")
                .args(["base64", "-A", "-in"])
                .arg(d.join("other.sig")),
        )
        .trim()
        .to_string(),
    );
    assert_ne!(swapped, layer_map);
    replace_kept(
        &custody,
        &pinned,
        &one,
        Some(&strata_attest::evidence::Evidence::Cosign {
            payload: payload.clone(),
            annotations: swapped,
        }),
    );
    assert_verify_broken(
        &custody,
        &base_image,
        "signed_by ../cosign.pub: the signature does not verify with this key",
    );
    assert!(!signature.is_empty());

    // A bought base without signed_by: verified as before, no vendor in the report.
    let unsigned = d.join("unsigned");
    signed_chain(&unsigned, &format!("image = \"{pinned}\""));
    build_signed(&unsigned);
    assert!(
        kept(&unsigned, &one).is_empty(),
        "nothing kept without signed_by"
    );
    let (ok, out, _) = verify(&unsigned, true);
    assert!(ok, "{out}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["links"][0]["verdict"], "ok", "{report:#}");
    assert!(report["links"][0].get("vendor").is_none(), "{report:#}");
    assert!(!verify(&unsigned, false).1.contains("signed by the vendor"));

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
