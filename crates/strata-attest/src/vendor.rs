//! Vendor signatures of bought base images, checked before a base is imported.
//!
//! Two formats, the ones vendors really publish:
//! - containers/image "simple signing" (what Red Hat signs its images with, and what
//!   `skopeo copy --sign-by` makes): an OpenPGP-signed message whose literal data is a JSON
//!   payload naming the manifest digest and the reference; kept in a lookaside store as
//!   `NAME@sha256=HEX/signature-N`.
//! - cosign's key-pair signatures: the tag `sha256-HEX.sig` in the image's repository, a manifest
//!   whose layer is the (cosign flavour of the) same JSON payload, and whose annotation
//!   `dev.cosignproject.cosign/signature` is a base64 ECDSA P-256 signature over SHA-256 of it.
//!
//! It gets the key and the signature bytes (the caller fetches them) and says whether they vouch
//! for the pinned digest, with a reason when not. It is pure but for one thing: an OpenPGP signature is verified by GnuPG's `gpgv`, run
//! as a subprocess, as containers/image (podman, skopeo) verifies simple signing through gpgme.
//! `gpgv` is the verify-only GnuPG tool (Debian package `gpgv`, which apt depends on, so present on
//! every Debian system): it never reads the user's keyring or options, never starts an agent and
//! never reaches the network. It runs with a private temporary home (0700, removed afterwards)
//! holding a keyring made of the vendor's key file, and its verdict is read from its `--status-fd`
//! lines, never from its exit status alone. Implementing OpenPGP in-process (rpgp) cost 4 MB of
//! binary and a second RustCrypto generation; checking it where strata's other verification lives
//! keeps one place that decides what a vendor signature vouches for.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;
use serde::Deserialize;

use crate::keys::PublicKey;

/// `critical.type` of a containers/image simple-signing payload.
pub const SIMPLE_SIGNING_TYPE: &str = "atomic container signature";
/// `critical.type` of a cosign payload.
pub const COSIGN_TYPE: &str = "cosign container image signature";
/// The manifest annotation holding a cosign signature.
pub const COSIGN_SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// The media type of a cosign payload layer.
pub const COSIGN_PAYLOAD_MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// The largest signature or payload read (containers/image's limit for lookaside signatures).
pub const MAX_SIGNATURE_BYTES: u64 = 4 << 20;

/// A vendor's public key, as `signed_by` names it.
#[derive(Debug)]
pub enum VendorKey {
    /// OpenPGP public keys (a vendor's key file may hold several, as Red Hat's does).
    OpenPgp(OpenPgpKeyring),
    /// A cosign public key (PEM, P-256).
    Cosign(Box<PublicKey>),
}

/// The OpenPGP keys of a key file, as binary packets: `gpgv`'s keyring.
#[derive(Debug, Clone)]
pub struct OpenPgpKeyring {
    packets: Vec<u8>,
}

/// The armor line that starts an OpenPGP public key block.
const ARMOR_BEGIN: &str = "-----BEGIN PGP PUBLIC KEY BLOCK-----";
/// The armor line that ends it.
const ARMOR_END: &str = "-----END PGP PUBLIC KEY BLOCK-----";

impl OpenPgpKeyring {
    /// Keys from a key file's bytes: armored (one or more public key blocks) or binary. Only the
    /// framing is checked here; `gpgv` checks the keys' self-signatures when it uses them.
    pub fn from_bytes(bytes: &[u8]) -> Result<OpenPgpKeyring, KeyringError> {
        let text = String::from_utf8_lossy(bytes);
        let packets = if text.contains(ARMOR_BEGIN) {
            dearmor(&text)?
        } else {
            bytes.to_vec()
        };
        // A public key packet (tag 6), in the old format (0b10_0110_xx) or the new one.
        match packets.first() {
            Some(0x98..=0x9b | 0xc6) => Ok(OpenPgpKeyring { packets }),
            _ => Err(KeyringError::NotAKey),
        }
    }
}

/// The binary packets of every armored public key block in `text` (RFC 4880 section 6: header
/// lines, a blank line, base64, an optional `=CRC24` line).
fn dearmor(text: &str) -> Result<Vec<u8>, KeyringError> {
    let mut packets = Vec::new();
    let mut lines = text.lines().map(str::trim_end);
    while lines.any(|l| l == ARMOR_BEGIN) {
        // Armor headers ("Comment: ...") up to a blank line.
        for line in lines.by_ref() {
            if line.is_empty() {
                break;
            }
            if !line.contains(": ") {
                return Err(KeyringError::ArmorHeader(line.to_string()));
            }
        }
        let mut body = String::new();
        let mut checksum = None;
        let mut ended = false;
        for line in lines.by_ref() {
            if line == ARMOR_END {
                ended = true;
                break;
            }
            match line.strip_prefix('=') {
                Some(crc) if line.len() == 5 => checksum = Some(crc.to_string()),
                _ => body.push_str(line.trim()),
            }
        }
        if !ended {
            return Err(KeyringError::Unterminated);
        }
        let block = base64::engine::general_purpose::STANDARD
            .decode(&body)
            .map_err(KeyringError::Base64)?;
        if let Some(crc) = checksum {
            let crc = base64::engine::general_purpose::STANDARD
                .decode(&crc)
                .map_err(KeyringError::ChecksumBase64)?;
            let sum = crc24(&block).to_be_bytes();
            if crc != sum[1..] {
                return Err(KeyringError::Checksum);
            }
        }
        packets.extend_from_slice(&block);
    }
    Ok(packets)
}

/// The CRC-24 of RFC 4880 section 6.1.
fn crc24(bytes: &[u8]) -> u32 {
    let mut crc: u32 = 0x00b7_04ce;
    for &byte in bytes {
        crc ^= u32::from(byte) << 16;
        for _ in 0..8 {
            crc <<= 1;
            if crc & 0x0100_0000 != 0 {
                crc ^= 0x0186_4cfb;
            }
        }
    }
    crc & 0x00ff_ffff
}

/// A key file that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{}: {reason}", path.display())]
pub struct VendorKeyError {
    /// The key file.
    pub path: PathBuf,
    /// What is wrong with it.
    pub reason: String,
    /// Why an OpenPGP key file cannot be read, when that is the reason.
    #[source]
    pub source: Option<KeyringError>,
}

/// Why a file holds no usable OpenPGP public keys.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyringError {
    /// Neither armored nor binary public keys.
    #[error("it holds no public key packet (armored or binary)")]
    NotAKey,
    /// An armor header line is not `Key: value`.
    #[error("armor header {0:?} is not \"Key: value\"")]
    ArmorHeader(String),
    /// An armored block does not end.
    #[error("an armored key block has no {ARMOR_END} line")]
    Unterminated,
    /// An armored block's body is not base64.
    #[error("an armored key block is not base64")]
    Base64(#[source] base64::DecodeError),
    /// An armored block's checksum is not base64.
    #[error("an armor checksum is not base64")]
    ChecksumBase64(#[source] base64::DecodeError),
    /// An armored block does not match its checksum.
    #[error("an armored key block does not match its checksum")]
    Checksum,
}

impl VendorKey {
    /// Read `path`: a PEM `PUBLIC KEY` is cosign's; anything else must be OpenPGP public keys,
    /// armored or binary.
    pub fn load(path: &Path) -> Result<VendorKey, VendorKeyError> {
        let fail = |reason: String| VendorKeyError {
            path: path.to_path_buf(),
            reason,
            source: None,
        };
        let bytes = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
        let text = String::from_utf8_lossy(&bytes);
        if text.contains("-----BEGIN PUBLIC KEY-----") {
            return PublicKey::from_pem(&text)
                .map(|k| VendorKey::Cosign(Box::new(k)))
                .map_err(|e| fail(format!("not a cosign public key: {e}")));
        }
        OpenPgpKeyring::from_bytes(&bytes)
            .map(VendorKey::OpenPgp)
            .map_err(|e| VendorKeyError {
                source: Some(e),
                ..fail("not an OpenPGP public key file".into())
            })
    }
}

/// What a signature must vouch for.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    /// The pinned manifest digest (`sha256:...`).
    pub digest: &'a str,
    /// The repository the image is pulled from, `HOST/NAME` (a tag or digest is ignored).
    pub repository: &'a str,
}

/// Why a vendor signature does not vouch for an image. Each is one line, written to follow
/// "image X, key Y: ".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// No signature was found where it should be.
    #[error("no signature found ({where_})")]
    Missing {
        /// Where it was looked for.
        where_: String,
    },
    /// Signatures exist, but by other keys.
    #[error("signed by another key ({issuers}), not by this one")]
    ForeignKey {
        /// The issuers the signatures name.
        issuers: String,
    },
    /// A signature by this key does not verify: the payload or the signature was changed.
    #[error("the signature does not verify: the signed payload or the signature was changed")]
    BadSignature,
    /// The signature is good, but the key that made it has expired.
    #[error("the signature was made by an expired key")]
    KeyExpired,
    /// The signature is good, but the key that made it was revoked.
    #[error("the signature was made by a revoked key")]
    KeyRevoked,
    /// The signature is good, but has expired.
    #[error("the signature has expired")]
    SignatureExpired,
    /// A signature that names no key (cosign's) does not verify with this key: it was made by
    /// another key, or changed.
    #[error("the signature does not verify with this key: made by another key, or changed")]
    NotVerified,
    /// The signature or its payload is not well formed.
    #[error("malformed signature: {reason}")]
    Malformed {
        /// What is wrong.
        reason: String,
    },
    /// The signed payload is for another manifest.
    #[error("the signature is for {signed}, not for the pinned {pinned}")]
    DigestMismatch {
        /// The digest the payload names.
        signed: String,
        /// The pin.
        pinned: String,
    },
    /// The signed payload is for another repository.
    #[error("the signature is for {signed}, not for {expected}")]
    IdentityMismatch {
        /// The reference the payload names.
        signed: String,
        /// The repository pulled from.
        expected: String,
    },
}

#[derive(Deserialize)]
struct Payload {
    critical: Critical,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Critical {
    #[serde(rename = "type")]
    kind: String,
    image: PayloadImage,
    identity: PayloadIdentity,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PayloadImage {
    #[serde(rename = "docker-manifest-digest")]
    digest: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PayloadIdentity {
    #[serde(rename = "docker-reference")]
    reference: String,
}

/// Check a signed payload's `critical` section: its type, digest and identity.
pub fn check_payload(payload: &[u8], kind: &str, expected: Expected<'_>) -> Result<(), Refusal> {
    let payload: Payload = serde_json::from_slice(payload).map_err(|e| Refusal::Malformed {
        reason: format!("the payload is not a signature payload: {e}"),
    })?;
    let critical = payload.critical;
    if critical.kind != kind {
        return Err(Refusal::Malformed {
            reason: format!("payload type {:?}, expected {kind:?}", critical.kind),
        });
    }
    if critical.image.digest != expected.digest {
        return Err(Refusal::DigestMismatch {
            signed: critical.image.digest,
            pinned: expected.digest.to_string(),
        });
    }
    // As containers/image's matchRepoDigestOrExact for a reference pinned by digest: the digest
    // was checked above, the repository must be the same one.
    if repository_of(&critical.identity.reference) != repository_of(expected.repository) {
        return Err(Refusal::IdentityMismatch {
            signed: critical.identity.reference,
            expected: repository_of(expected.repository),
        });
    }
    Ok(())
}

/// `HOST/NAME` of a reference, without tag or digest, in its normalized docker form
/// (`busybox` → `docker.io/library/busybox`).
pub fn repository_of(reference: &str) -> String {
    let name = reference.split('@').next().unwrap_or(reference);
    let name = match name.rfind(':') {
        Some(colon) if !name[colon..].contains('/') => &name[..colon],
        _ => name,
    };
    let (host, path) = match name.split_once('/') {
        Some((first, rest))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            (first, rest.to_string())
        }
        _ => ("docker.io", name.to_string()),
    };
    let host = if host == "index.docker.io" {
        "docker.io"
    } else {
        host
    };
    if host == "docker.io" && !path.contains('/') {
        format!("docker.io/library/{path}")
    } else {
        format!("{host}/{path}")
    }
}

/// Why `gpgv` could not be asked about a signature (not a verdict on the signature).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GpgvError {
    /// `gpgv` is not installed.
    #[error("verifying OpenPGP signatures needs gpgv (Debian package gpgv)")]
    Missing,
    /// It did not finish in time (a hostile message can make it work for long).
    #[error("gpgv did not finish within {0:?} and was stopped")]
    TimedOut(std::time::Duration),
    /// Running it failed.
    #[error("{what}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        source: std::io::Error,
    },
}

/// Why a simple-signing signature was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum SimpleSigningError {
    /// The signature does not vouch for the image.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// It could not be checked.
    #[error(transparent)]
    Gpgv(#[from] GpgvError),
}

/// The most bytes of `gpgv`'s status lines read.
const MAX_STATUS_BYTES: u64 = 64 << 10;

/// How long `gpgv` may take over one signature before it is killed. A real check takes
/// milliseconds; a hostile message (deeply nested compression, a huge key) must not hang a build.
const GPGV_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Verify a simple-signing signature (`signature-N` of a lookaside store, an OpenPGP signed
/// message) with `keys`, by `gpgv`: the message must hold one signature, good, by one of the keys
/// (a primary key or a subkey it bound), neither expired nor revoked (as containers/image
/// requires), and its payload must name the pinned digest and the repository.
pub fn verify_simple_signing(
    keys: &OpenPgpKeyring,
    signature: &[u8],
    expected: Expected<'_>,
) -> Result<(), SimpleSigningError> {
    verify_simple_signing_by(Path::new("gpgv"), GPGV_TIMEOUT, keys, signature, expected)
}

/// [`verify_simple_signing`] by the gpgv at `program`, killed after `timeout`.
fn verify_simple_signing_by(
    program: &Path,
    timeout: std::time::Duration,
    keys: &OpenPgpKeyring,
    signature: &[u8],
    expected: Expected<'_>,
) -> Result<(), SimpleSigningError> {
    if signature.len() as u64 > MAX_SIGNATURE_BYTES {
        return Err(Refusal::Malformed {
            reason: "the signature is too large".into(),
        }
        .into());
    }
    let io = |what: &str| {
        let what = what.to_string();
        move |source| GpgvError::Io { what, source }
    };
    let home = tempfile::Builder::new()
        .prefix("strata-gpgv-")
        .tempdir()
        .map_err(io("creating a temporary directory for gpgv"))?;
    std::fs::set_permissions(
        home.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .map_err(io("creating a temporary directory for gpgv"))?;
    let keyring = home.path().join("vendor.gpg");
    let message = home.path().join("signature");
    std::fs::write(&keyring, &keys.packets).map_err(io("writing gpgv's keyring"))?;
    std::fs::write(&message, signature).map_err(io("writing the signature for gpgv"))?;
    // gpgv reads no options file and has no network access; its own home and keyring only.
    // Human messages go to a log file, so stderr carries status lines only.
    let mut child = match Command::new(program)
        .env("GNUPGHOME", home.path())
        .env("LC_ALL", "C")
        .arg("--homedir")
        .arg(home.path())
        .arg("--keyring")
        .arg(&keyring)
        .arg("--log-file")
        .arg(home.path().join("log"))
        .args(["--status-fd", "2", "--output", "-", "--"])
        .arg(&message)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(GpgvError::Missing.into()),
        Err(e) => return Err(io("running gpgv")(e).into()),
    };
    let stderr = child.stderr.take().expect("piped");
    let status_reader = std::thread::spawn(move || {
        let mut status = Vec::new();
        let mut stderr = stderr;
        let read = (&mut stderr)
            .take(MAX_STATUS_BYTES)
            .read_to_end(&mut status);
        // Drain the rest so gpgv never blocks on a full pipe.
        let _ = std::io::copy(&mut stderr, &mut std::io::sink());
        read.map(|_| status)
    });
    let stdout = child.stdout.take().expect("piped");
    let overflowed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let payload_reader = std::thread::spawn({
        let overflowed = overflowed.clone();
        move || {
            let mut payload = Vec::new();
            let read = stdout
                .take(MAX_SIGNATURE_BYTES + 1)
                .read_to_end(&mut payload);
            if payload.len() as u64 > MAX_SIGNATURE_BYTES || read.is_err() {
                overflowed.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            (payload, read)
        }
    });
    // Poll rather than block in wait(): a gpgv that never ends is killed at the deadline (the
    // readers then see end of file), and a child not yet reaped is the only one kill() may touch.
    let deadline = std::time::Instant::now() + timeout;
    let mut timed_out = false;
    let exit = loop {
        if let Some(exit) = child.try_wait().map_err(io("waiting for gpgv"))? {
            break exit;
        }
        if overflowed.load(std::sync::atomic::Ordering::Relaxed) {
            // A compressed message may expand without bound: stop gpgv rather than read on.
            let _ = child.kill();
        } else if std::time::Instant::now() >= deadline {
            timed_out = true;
            let _ = child.kill();
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    let (payload, read) = payload_reader
        .join()
        .expect("the payload reader does not panic");
    let too_large = payload.len() as u64 > MAX_SIGNATURE_BYTES;
    let status = status_reader
        .join()
        .expect("the status reader does not panic")
        .map_err(io("reading gpgv's status"))?;
    if timed_out {
        return Err(GpgvError::TimedOut(timeout).into());
    }
    read.map_err(io("reading gpgv's output"))?;
    if too_large {
        return Err(Refusal::Malformed {
            reason: "the signed payload is too large".into(),
        }
        .into());
    }
    verdict(&String::from_utf8_lossy(&status), exit.success())?;
    check_payload(&payload, SIMPLE_SIGNING_TYPE, expected)?;
    Ok(())
}

/// The verdict of `gpgv`'s status lines (`doc/DETAILS` of GnuPG): Ok when the message's one
/// signature is good and valid. `exited_ok` is required too, but never enough.
fn verdict(status: &str, exited_ok: bool) -> Result<(), Refusal> {
    let mut signatures = 0;
    let (mut good, mut valid, mut bad) = (false, None, false);
    let (mut expired_key, mut revoked_key, mut expired_sig) = (false, false, false);
    let mut errsig = None;
    let mut no_pubkey = false;
    for line in status.lines() {
        let Some(line) = line.strip_prefix("[GNUPG:] ") else {
            continue;
        };
        let mut fields = line.split(' ');
        match fields.next() {
            Some("NEWSIG") => signatures += 1,
            Some("GOODSIG") => good = true,
            Some("BADSIG") => bad = true,
            Some("EXPKEYSIG") => expired_key = true,
            Some("REVKEYSIG") => revoked_key = true,
            Some("EXPSIG") => expired_sig = true,
            Some("NO_PUBKEY") => no_pubkey = true,
            // VALIDSIG <fpr> <date> <ts> <expires> <version> <reserved> <pk-algo> <hash-algo>
            // <class> <primary-key-fpr>
            Some("VALIDSIG") => valid = fields.nth(9).map(str::to_string),
            // ERRSIG <keyid> <pkalgo> <hashalgo> <sig_class> <time> <rc> [<fpr>]
            Some("ERRSIG") => {
                let keyid = fields.next().unwrap_or_default().to_string();
                errsig = Some((keyid, fields.nth(4).unwrap_or_default().to_string()));
            }
            _ => {}
        }
    }
    let malformed = |reason: String| Refusal::Malformed { reason };
    match signatures {
        0 => return Err(malformed("not an OpenPGP signed message".into())),
        1 => {}
        n => {
            return Err(malformed(format!(
                "the OpenPGP message holds {n} signatures, a simple signing signature holds one"
            )));
        }
    }
    if bad {
        return Err(Refusal::BadSignature);
    }
    if let Some((keyid, rc)) = errsig {
        return Err(if no_pubkey {
            Refusal::ForeignKey {
                issuers: format!("OpenPGP key {keyid}"),
            }
        } else {
            malformed(format!(
                "gpgv cannot check the OpenPGP signature of key {keyid} (error code {rc})"
            ))
        });
    }
    if revoked_key {
        return Err(Refusal::KeyRevoked);
    }
    if expired_key {
        return Err(Refusal::KeyExpired);
    }
    if expired_sig {
        return Err(Refusal::SignatureExpired);
    }
    let primary = valid.filter(|fpr| !fpr.is_empty() && fpr.bytes().all(|b| b.is_ascii_hexdigit()));
    if good && primary.is_some() && exited_ok {
        Ok(())
    } else {
        Err(malformed("gpgv did not find a good signature".into()))
    }
}

/// Verify a cosign signature: `signature_b64`, the manifest annotation, must be `key`'s ECDSA
/// signature (ASN.1 DER, SHA-256) over `payload`, the layer's bytes, which must name the pinned
/// digest and the repository.
pub fn verify_cosign(
    key: &PublicKey,
    payload: &[u8],
    signature_b64: &str,
    expected: Expected<'_>,
) -> Result<(), Refusal> {
    let signature = base64::engine::general_purpose::STANDARD
        .decode(signature_b64.trim())
        .map_err(|e| Refusal::Malformed {
            reason: format!("the {COSIGN_SIGNATURE_ANNOTATION} annotation is not base64: {e}"),
        })?;
    if !key.verify(payload, &signature) {
        return Err(Refusal::NotVerified);
    }
    check_payload(payload, COSIGN_TYPE, expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repositories_are_compared_normalized() {
        assert_eq!(repository_of("busybox"), "docker.io/library/busybox");
        assert_eq!(
            repository_of("docker.io/busybox:1@sha256:00"),
            "docker.io/library/busybox"
        );
        assert_eq!(
            repository_of("127.0.0.1:5000/vendor/base:1"),
            "127.0.0.1:5000/vendor/base"
        );
        assert_eq!(
            repository_of("127.0.0.1:5000/vendor/base"),
            "127.0.0.1:5000/vendor/base"
        );
        assert_eq!(repository_of("acme/base:2"), "docker.io/acme/base");
    }

    fn payload(kind: &str, digest: &str, reference: &str) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "critical": {
                "identity": {"docker-reference": reference},
                "image": {"docker-manifest-digest": digest},
                "type": kind,
            },
            "optional": null,
        }))
        .unwrap()
    }

    #[test]
    fn a_payload_must_name_the_pin_and_the_repository() {
        let d = format!("sha256:{}", "a".repeat(64));
        let other = format!("sha256:{}", "b".repeat(64));
        let expected = Expected {
            digest: &d,
            repository: "reg.example/vendor/base:1",
        };
        let ok = payload(COSIGN_TYPE, &d, "reg.example/vendor/base");
        check_payload(&ok, COSIGN_TYPE, expected).unwrap();
        let tagged = payload(SIMPLE_SIGNING_TYPE, &d, "reg.example/vendor/base:2");
        check_payload(&tagged, SIMPLE_SIGNING_TYPE, expected).unwrap();
        assert!(matches!(
            check_payload(&ok, SIMPLE_SIGNING_TYPE, expected),
            Err(Refusal::Malformed { .. })
        ));
        let moved = payload(COSIGN_TYPE, &other, "reg.example/vendor/base");
        assert_eq!(
            check_payload(&moved, COSIGN_TYPE, expected),
            Err(Refusal::DigestMismatch {
                signed: other.clone(),
                pinned: d.clone()
            })
        );
        let elsewhere = payload(COSIGN_TYPE, &d, "reg.example/other/base");
        assert!(matches!(
            check_payload(&elsewhere, COSIGN_TYPE, expected),
            Err(Refusal::IdentityMismatch { .. })
        ));
        let mut extra: serde_json::Value = serde_json::from_slice(&ok).unwrap();
        extra["critical"]["unexpected"] = serde_json::json!(1);
        assert!(matches!(
            check_payload(&serde_json::to_vec(&extra).unwrap(), COSIGN_TYPE, expected),
            Err(Refusal::Malformed { .. })
        ));
    }

    #[test]
    fn a_cosign_signature_is_checked_over_the_payload_bytes() {
        let private = crate::keys::PrivateKey::generate(crate::keys::KeyKind::EcdsaP256).unwrap();
        let d = format!("sha256:{}", "a".repeat(64));
        let expected = Expected {
            digest: &d,
            repository: "reg.example/vendor/base",
        };
        let body = payload(COSIGN_TYPE, &d, "reg.example/vendor/base");
        let sig = base64::engine::general_purpose::STANDARD.encode(private.sign(&body));
        verify_cosign(private.public_key(), &body, &sig, expected).unwrap();
        let mut tampered = body.clone();
        tampered.extend_from_slice(b" ");
        assert_eq!(
            verify_cosign(private.public_key(), &tampered, &sig, expected),
            Err(Refusal::NotVerified)
        );
        let other = crate::keys::PrivateKey::generate(crate::keys::KeyKind::EcdsaP256).unwrap();
        assert_eq!(
            verify_cosign(other.public_key(), &body, &sig, expected),
            Err(Refusal::NotVerified)
        );
    }

    /// A private GNUPGHOME making keys and signatures with gpg (the peer that signs, as
    /// `skopeo --sign-by` does); its agent is stopped on drop.
    struct Gpg {
        dir: tempfile::TempDir,
    }

    impl Gpg {
        fn new() -> Option<Gpg> {
            strata_testutil::require_tool("gpg")?;
            strata_testutil::require_tool("gpgv")?;
            let dir = tempfile::tempdir().unwrap();
            std::fs::set_permissions(
                dir.path(),
                std::os::unix::fs::PermissionsExt::from_mode(0o700),
            )
            .unwrap();
            Some(Gpg { dir })
        }

        fn gpg(&self, args: &[&str]) -> std::process::Output {
            let out = Command::new("gpg")
                .env("GNUPGHOME", self.dir.path())
                .args(["--batch", "--no-tty", "--passphrase", ""])
                .args(args)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "gpg {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            out
        }

        /// A new signing key (made at `when`, a faked system time, if given) expiring at
        /// `expires`; its fingerprint.
        fn generate(&self, uid: &str, when: Option<&str>, expires: &str) -> String {
            let mut args = vec![];
            if let Some(when) = when {
                args.extend(["--faked-system-time", when]);
            }
            args.extend(["--quick-gen-key", uid, "default", "default", expires]);
            self.gpg(&args);
            let listing = self.gpg(&["--with-colons", "--list-keys", uid]).stdout;
            String::from_utf8(listing)
                .unwrap()
                .lines()
                .find_map(|l| l.strip_prefix("fpr:"))
                .map(|l| l.trim_matches(':').to_string())
                .unwrap()
        }

        fn export(&self, fingerprint: &str, armor: bool) -> Vec<u8> {
            let mut args = vec![];
            if armor {
                args.push("--armor");
            }
            args.extend(["--export", fingerprint]);
            self.gpg(&args).stdout
        }

        /// `payload` signed (uncompressed) by each of `signers`, at `when` if given.
        fn sign(&self, payload: &[u8], signers: &[&str], when: Option<&str>) -> Vec<u8> {
            let file = self.dir.path().join("payload");
            std::fs::write(&file, payload).unwrap();
            let mut args = vec!["-z", "0", "--output", "-"];
            if let Some(when) = when {
                args.extend(["--faked-system-time", when]);
            }
            for signer in signers {
                args.extend(["--local-user", signer]);
            }
            args.push("--sign");
            args.push(file.to_str().unwrap());
            self.gpg(&args).stdout
        }
    }

    impl Drop for Gpg {
        fn drop(&mut self) {
            let _ = Command::new("gpgconf")
                .env("GNUPGHOME", self.dir.path())
                .args(["--kill", "gpg-agent"])
                .status();
        }
    }

    fn refusal(result: Result<(), SimpleSigningError>) -> Refusal {
        match result {
            Err(SimpleSigningError::Refused(r)) => r,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn a_gpgv_that_never_ends_is_stopped_at_the_deadline() {
        // A gpgv kept busy by a hostile message: it writes nothing and never exits.
        let dir = tempfile::tempdir().unwrap();
        let program = dir.path().join("gpgv");
        std::fs::write(&program, "#!/bin/sh\nexec sleep 600\n").unwrap();
        std::fs::set_permissions(
            &program,
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        let d = format!("sha256:{}", "a".repeat(64));
        let expected = Expected {
            digest: &d,
            repository: "reg.example/vendor/base:1",
        };
        let keys = OpenPgpKeyring {
            packets: Vec::new(),
        };
        let err = verify_simple_signing_by(
            &program,
            std::time::Duration::from_millis(300),
            &keys,
            b"signature",
            expected,
        )
        .unwrap_err();
        assert!(
            matches!(err, SimpleSigningError::Gpgv(GpgvError::TimedOut(_))),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "gpgv did not finish within 300ms and was stopped"
        );
    }

    #[test]
    fn gpgv_verifies_simple_signing_signatures() {
        let Some(gpg) = Gpg::new() else { return };
        let vendor = gpg.generate("Vendor <security@vendor.example>", None, "never");
        let mallory = gpg.generate("Mallory <mallory@evil.example>", None, "never");
        let d = format!("sha256:{}", "a".repeat(64));
        let expected = Expected {
            digest: &d,
            repository: "reg.example/vendor/base:1",
        };
        let body = payload(SIMPLE_SIGNING_TYPE, &d, "reg.example/vendor/base");
        let signed = gpg.sign(&body, &[&vendor], None);
        let binary = OpenPgpKeyring::from_bytes(&gpg.export(&vendor, false)).unwrap();
        let armored = OpenPgpKeyring::from_bytes(&gpg.export(&vendor, true)).unwrap();
        assert_eq!(
            armored.packets, binary.packets,
            "dearmored as gpg exports it"
        );
        verify_simple_signing(&binary, &signed, expected).unwrap();

        // Two keys in one file (two armored blocks, as vendors ship them): either signs.
        let mut both = gpg.export(&mallory, true);
        both.extend_from_slice(b"\n");
        both.extend_from_slice(&gpg.export(&vendor, true));
        let both = OpenPgpKeyring::from_bytes(&both).unwrap();
        verify_simple_signing(&both, &signed, expected).unwrap();

        // By another key: named by its key ID.
        let foreign = gpg.sign(&body, &[&mallory], None);
        assert_eq!(
            refusal(verify_simple_signing(&binary, &foreign, expected)),
            Refusal::ForeignKey {
                issuers: format!("OpenPGP key {}", &mallory[24..])
            }
        );

        // One byte of the signed payload changed.
        let mut changed = signed.clone();
        let at = changed
            .windows(d.len())
            .position(|w| w == d.as_bytes())
            .expect("uncompressed");
        changed[at + 10] = b'b';
        assert_eq!(
            refusal(verify_simple_signing(&binary, &changed, expected)),
            Refusal::BadSignature
        );

        // Two signatures in one message; containers/image wants exactly one.
        let twice = gpg.sign(&body, &[&vendor, &mallory], None);
        assert!(matches!(
            refusal(verify_simple_signing(&binary, &twice, expected)),
            Refusal::Malformed { reason } if reason.contains("2 signatures")
        ));

        // Not a signed message at all.
        assert!(matches!(
            refusal(verify_simple_signing(&binary, &body, expected)),
            Refusal::Malformed { .. }
        ));

        // A good signature for another digest.
        let other = format!("sha256:{}", "b".repeat(64));
        let elsewhere = gpg.sign(
            &payload(SIMPLE_SIGNING_TYPE, &other, "reg.example/vendor/base"),
            &[&vendor],
            None,
        );
        assert!(matches!(
            refusal(verify_simple_signing(&binary, &elsewhere, expected)),
            Refusal::DigestMismatch { .. }
        ));
    }

    #[test]
    fn a_signature_by_an_expired_key_is_refused() {
        let Some(gpg) = Gpg::new() else { return };
        let when = "20200101T000000";
        let vendor = gpg.generate("Vendor <security@vendor.example>", Some(when), "1d");
        let d = format!("sha256:{}", "a".repeat(64));
        let expected = Expected {
            digest: &d,
            repository: "reg.example/vendor/base",
        };
        let body = payload(SIMPLE_SIGNING_TYPE, &d, "reg.example/vendor/base");
        let signed = gpg.sign(&body, &[&vendor], Some(when));
        let keys = OpenPgpKeyring::from_bytes(&gpg.export(&vendor, false)).unwrap();
        assert_eq!(
            refusal(verify_simple_signing(&keys, &signed, expected)),
            Refusal::KeyExpired
        );
    }

    #[test]
    fn a_key_file_must_hold_openpgp_keys() {
        assert!(OpenPgpKeyring::from_bytes(b"hello").is_err());
        assert!(OpenPgpKeyring::from_bytes(b"").is_err());
        let block = |body: &str, crc: &str| {
            format!("{ARMOR_BEGIN}\nComment: x\n\n{body}\n={crc}\n{ARMOR_END}\n")
        };
        // 0x99 0x00 0x01 0x04: a public key packet's framing; CRC-24 of it is checked.
        let bytes = [0x99u8, 0x00, 0x01, 0x04];
        let body = base64::engine::general_purpose::STANDARD.encode(bytes);
        let crc =
            base64::engine::general_purpose::STANDARD.encode(&crc24(&bytes).to_be_bytes()[1..]);
        let keys = OpenPgpKeyring::from_bytes(block(&body, &crc).as_bytes()).unwrap();
        assert_eq!(keys.packets, bytes);
        assert!(matches!(
            OpenPgpKeyring::from_bytes(block(&body, "AAAA").as_bytes()),
            Err(KeyringError::Checksum)
        ));
        let unended = format!("{ARMOR_BEGIN}\n\n{body}\n");
        assert!(OpenPgpKeyring::from_bytes(unended.as_bytes()).is_err());
    }

    #[test]
    fn gpgv_status_lines_decide_not_its_exit_status() {
        let good = "[GNUPG:] NEWSIG\n[GNUPG:] GOODSIG C33B117D7EE29D73 V <v@x>\n\
                    [GNUPG:] VALIDSIG 3137DDCA 2026-12-06 1796528632 0 4 0 1 10 00 3137DDCA\n";
        verdict(good, true).unwrap();
        assert!(
            verdict(good, false).is_err(),
            "a failed exit is not ignored"
        );
        assert!(
            verdict("gpgv: Good signature\n", true).is_err(),
            "human messages are not status"
        );
        let no_validsig = "[GNUPG:] NEWSIG\n[GNUPG:] GOODSIG C33B117D7EE29D73 V <v@x>\n";
        assert!(verdict(no_validsig, true).is_err());
        let revoked = format!("{good}[GNUPG:] REVKEYSIG C33B117D7EE29D73 V <v@x>\n");
        assert_eq!(verdict(&revoked, true), Err(Refusal::KeyRevoked));
    }
}
