//! Interop: strata's DSSE envelopes checked by securesystemslib (Python, the library in-toto itself
//! uses) and its statements parsed strictly with the in-toto attestation framework's own schemas
//! (in-toto-attestation); securesystemslib's envelopes verified by strata. Through
//! `scripts/interop-dsse.py`. Under CI=true a missing python3 or securesystemslib fails the test.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use chrono::{DateTime, Utc};
use strata_attest::provenance::{
    DockerfileBuild, DockerfileParameters, GitSource, InternalParameters, Run,
};
use strata_attest::{Envelope, KeyKind, PrivateKey, PublicKey, Statement, VerifyError, dsse};
use strata_oci::Digest;

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/interop-dsse.py")
}

/// python3 with securesystemslib, or None (skip) outside CI.
fn python() -> Option<PathBuf> {
    let python = strata_testutil::require_tool("python3")?;
    let probe = Command::new(&python)
        .args([
            "-c",
            "import securesystemslib, cryptography, in_toto_attestation",
        ])
        .output()
        .unwrap();
    if probe.status.success() {
        return Some(python);
    }
    if strata_testutil::in_ci() {
        panic!(
            "securesystemslib and in-toto-attestation are required under CI=true but cannot be \
             imported (scripts/install-test-deps installs them): {}",
            String::from_utf8_lossy(&probe.stderr)
        );
    }
    #[allow(clippy::print_stderr)]
    {
        eprintln!(
            "skipping: python3 cannot import securesystemslib and in-toto-attestation \
             (scripts/install-test-deps)"
        );
    }
    None
}

fn statement(subject: &Digest) -> Statement {
    let at = |s: &str| -> DateTime<Utc> { DateTime::parse_from_rfc3339(s).unwrap().into() };
    let provenance = DockerfileBuild {
        parameters: DockerfileParameters {
            dockerfile: "wordpress/Dockerfile".into(),
            context: "wordpress".into(),
            target: Some("final".into()),
            build_args: BTreeMap::from([("WP_VERSION".into(), "6.7".into())]),
        },
        internal: InternalParameters {
            owner: "web".into(),
            tier: Some("application".into()),
            ..Default::default()
        },
        base: Some((
            "localhost/acme/httpd-php:latest".into(),
            Digest::of(b"httpd-php"),
        )),
        other_images: vec![],
        context_digest: Some(Digest::of(b"context tree")),
        git: Some(GitSource {
            repository: "https://git.example/acme/chain".into(),
            commit: "89abcdef0123456789abcdef0123456789abcdef".into(),
        }),
        builder_version: "0.1.0".into(),
        run: Run {
            invocation_id: "7d1f".into(),
            started_on: at("2026-11-23T10:00:00Z"),
            finished_on: at("2026-11-23T10:01:00Z"),
        },
    }
    .provenance();
    Statement::provenance_for("localhost/acme/wordpress:latest", subject, &provenance)
}

fn run_verify(
    python: &Path,
    dir: &Path,
    envelope: &Envelope,
    key: &PrivateKey,
    subject: &Digest,
) -> Output {
    let envelope_path = dir.join("envelope.json");
    let key_path = dir.join("key.pub");
    std::fs::write(&envelope_path, serde_json::to_vec(envelope).unwrap()).unwrap();
    std::fs::write(&key_path, key.public_key().to_pem()).unwrap();
    Command::new(python)
        .arg(script())
        .arg("verify")
        .arg(&envelope_path)
        .arg(&key_path)
        .arg(key.id().as_str())
        .arg(subject.hex())
        .arg("web")
        .output()
        .unwrap()
}

#[test]
fn securesystemslib_verifies_strata_envelopes() {
    let Some(python) = python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let subject = Digest::of(b"wordpress manifest");
    for kind in [KeyKind::EcdsaP256, KeyKind::Ed25519] {
        let key = PrivateKey::generate(kind).unwrap();
        let envelope = dsse::sign(&statement(&subject), &key);
        let out = run_verify(&python, dir.path(), &envelope, &key, &subject);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.trim() == "verified",
            "{kind}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );

        // The same check fails on a changed payload byte and on another key: it can fail.
        let mut tampered = envelope.clone();
        let mut payload = tampered.payload_bytes().unwrap();
        let at = String::from_utf8_lossy(&payload).find("6.7").unwrap();
        payload[at] = b'9';
        use base64::Engine as _;
        tampered.payload = base64::engine::general_purpose::STANDARD.encode(&payload);
        let out = run_verify(&python, dir.path(), &tampered, &key, &subject);
        assert!(!out.status.success(), "{kind}: tampered payload accepted");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("signature does not verify"),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        // A correctly signed statement with a misspelt SLSA field fails the schema check.
        let mut misspelt = statement(&subject);
        let metadata = misspelt.predicate["runDetails"]["metadata"]
            .as_object_mut()
            .unwrap();
        let finished = metadata.remove("finishedOn").unwrap();
        metadata.insert("finishedAt".into(), finished);
        let out = run_verify(
            &python,
            dir.path(),
            &dsse::sign(&misspelt, &key),
            &key,
            &subject,
        );
        assert!(!out.status.success(), "{kind}: misspelt field accepted");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("not an in-toto statement"),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );

        let stranger = PrivateKey::generate(kind).unwrap();
        let mut forged = dsse::sign(&statement(&subject), &stranger);
        forged.signatures[0].keyid = key.id().to_string();
        let out = run_verify(&python, dir.path(), &forged, &key, &subject);
        assert!(
            !out.status.success(),
            "{kind}: another key's signature accepted"
        );
    }
}

#[test]
fn strata_verifies_securesystemslib_envelopes() {
    let Some(python) = python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let subject = Digest::of(b"python-signed image");
    let out = Command::new(&python)
        .arg(script())
        .arg("sign")
        .arg(dir.path())
        .arg(subject.hex())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let their_keyid = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let envelope: Envelope =
        serde_json::from_slice(&std::fs::read(dir.path().join("envelope.json")).unwrap()).unwrap();
    let key = PublicKey::load(&dir.path().join("key.pub")).unwrap();
    assert_eq!(envelope.signatures[0].keyid, their_keyid);
    // securesystemslib computes its key ids its own way; the signature still verifies.
    let verified = envelope.verify(std::slice::from_ref(&key)).unwrap();
    assert_eq!(&verified.key_id, key.id());
    assert_eq!(verified.statement.subject_digests(), vec![subject]);
    assert_eq!(verified.statement.predicate["signedBy"], "securesystemslib");
    // And not under another key.
    let other = PrivateKey::generate(KeyKind::EcdsaP256).unwrap();
    assert!(matches!(
        envelope.verify(&[other.public_key().clone()]),
        Err(VerifyError::UnknownKey { .. })
    ));
}
