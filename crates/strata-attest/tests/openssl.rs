//! Keys and signatures checked by OpenSSL: it reads strata's key files (plain and encrypted, both
//! kinds), derives the same public key and key id, and verifies strata's signatures.

use std::path::Path;
use std::process::{Command, Output};

use sha2::{Digest as _, Sha256};
use strata_attest::keys::write_key_pair;
use strata_attest::{KeyKind, PrivateKey, PublicKey};

fn openssl(args: &[&str]) -> Output {
    Command::new("openssl").args(args).output().unwrap()
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn openssl_reads_strata_keys_and_verifies_its_signatures() {
    let Some(_) = strata_testutil::require_tool("openssl") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for (kind, team, passphrase, name) in [
        (KeyKind::EcdsaP256, "ops", None, "prime256v1"),
        (
            KeyKind::EcdsaP256,
            "ops-enc",
            Some("pass phrase"),
            "prime256v1",
        ),
        (KeyKind::Ed25519, "web", None, "ED25519"),
        (KeyKind::Ed25519, "web-enc", Some("pass phrase"), "ED25519"),
    ] {
        let key = PrivateKey::generate(kind).unwrap();
        let files = write_key_pair(dir.path(), team, &key, passphrase).unwrap();
        let pass = format!("pass:{}", passphrase.unwrap_or(""));
        let text = openssl(&[
            "pkey",
            "-in",
            s(&files.private_key),
            "-passin",
            &pass,
            "-noout",
            "-text",
        ]);
        assert!(text.status.success(), "{team}: {text:?}");
        assert!(
            String::from_utf8_lossy(&text.stdout).contains(name),
            "{team}: {text:?}"
        );
        if passphrase.is_some() {
            let wrong = openssl(&[
                "pkey",
                "-in",
                s(&files.private_key),
                "-passin",
                "pass:nope",
                "-noout",
            ]);
            assert!(!wrong.status.success(), "{team}: wrong passphrase accepted");
        }
        // OpenSSL derives the same public key file.
        let derived = openssl(&[
            "pkey",
            "-in",
            s(&files.private_key),
            "-passin",
            &pass,
            "-pubout",
        ]);
        assert!(derived.status.success(), "{team}: {derived:?}");
        assert_eq!(
            String::from_utf8(derived.stdout).unwrap(),
            std::fs::read_to_string(&files.public_key).unwrap(),
            "{team}"
        );
        // The key id is the sha256 of the public key's DER.
        let der = openssl(&[
            "pkey",
            "-pubin",
            "-in",
            s(&files.public_key),
            "-outform",
            "DER",
        ]);
        assert_eq!(
            hex::encode(Sha256::digest(&der.stdout)),
            files.key_id.as_str()
        );
        assert_eq!(
            PublicKey::load(&files.public_key).unwrap().id(),
            &files.key_id
        );

        // OpenSSL verifies strata's signature (ECDSA: DER over SHA-256; Ed25519: raw).
        let message = dir.path().join(format!("{team}.msg"));
        let signature = dir.path().join(format!("{team}.sig"));
        std::fs::write(&message, b"DSSEv1 28 application/vnd.in-toto+json 2 {}").unwrap();
        std::fs::write(&signature, key.sign(&std::fs::read(&message).unwrap())).unwrap();
        let verify = match kind {
            KeyKind::EcdsaP256 => openssl(&[
                "dgst",
                "-sha256",
                "-verify",
                s(&files.public_key),
                "-signature",
                s(&signature),
                s(&message),
            ]),
            KeyKind::Ed25519 => openssl(&[
                "pkeyutl",
                "-verify",
                "-pubin",
                "-inkey",
                s(&files.public_key),
                "-rawin",
                "-in",
                s(&message),
                "-sigfile",
                s(&signature),
            ]),
        };
        assert!(verify.status.success(), "{team}: {verify:?}");
        // And refuses it for another message.
        std::fs::write(&message, b"something else").unwrap();
        let refused = match kind {
            KeyKind::EcdsaP256 => openssl(&[
                "dgst",
                "-sha256",
                "-verify",
                s(&files.public_key),
                "-signature",
                s(&signature),
                s(&message),
            ]),
            KeyKind::Ed25519 => openssl(&[
                "pkeyutl",
                "-verify",
                "-pubin",
                "-inkey",
                s(&files.public_key),
                "-rawin",
                "-in",
                s(&message),
                "-sigfile",
                s(&signature),
            ]),
        };
        assert!(!refused.status.success(), "{team}: {refused:?}");
    }
}

#[test]
fn strata_reads_keys_openssl_wrote() {
    let Some(_) = strata_testutil::require_tool("openssl") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let ec = dir.path().join("ec.key");
    let ed = dir.path().join("ed.key");
    let enc = dir.path().join("enc.key");
    assert!(
        openssl(&[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            s(&ec)
        ])
        .status
        .success()
    );
    assert!(
        openssl(&["genpkey", "-algorithm", "ed25519", "-out", s(&ed)])
            .status
            .success()
    );
    assert!(
        openssl(&[
            "pkcs8",
            "-topk8",
            "-in",
            s(&ec),
            "-out",
            s(&enc),
            "-passout",
            "pass:pw",
            "-v2",
            "aes-256-cbc"
        ])
        .status
        .success()
    );
    assert_eq!(
        PrivateKey::load(&ec, None).unwrap().kind(),
        KeyKind::EcdsaP256
    );
    assert_eq!(
        PrivateKey::load(&ed, None).unwrap().kind(),
        KeyKind::Ed25519
    );
    let decrypted = PrivateKey::load(&enc, Some("pw")).unwrap();
    assert_eq!(decrypted.id(), PrivateKey::load(&ec, None).unwrap().id());
}
