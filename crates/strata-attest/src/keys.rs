//! Team keys: ECDSA P-256 (the default, cosign's kind) or Ed25519 key pairs in PEM.
//!
//! Private keys are PKCS#8 PEM (`PRIVATE KEY`), or encrypted PKCS#8 PEM (`ENCRYPTED PRIVATE KEY`,
//! PBES2 with scrypt and AES-256-CBC) when a passphrase is given; public keys are SubjectPublicKeyInfo
//! PEM (`PUBLIC KEY`). Both are what OpenSSL, cosign and Python's `cryptography` read.
//!
//! A key's id ([`KeyId`]) is the lowercase hex sha256 of its public key's SubjectPublicKeyInfo DER:
//! anyone holding the `.pub` file computes it with
//! `openssl pkey -pubin -in team.pub -outform DER | sha256sum`.

use std::fmt;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use ed25519_dalek::Signer as _;
use pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use sha2::{Digest as _, Sha256};

use crate::error::KeyError;

/// The environment variable holding the passphrase of encrypted private keys.
pub const PASSWORD_ENV: &str = "STRATA_KEY_PASSWORD";

/// The kind of a key pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyKind {
    /// ECDSA over NIST P-256 with SHA-256; signatures are ASN.1 DER. The default.
    EcdsaP256,
    /// Ed25519; signatures are the raw 64 bytes.
    Ed25519,
}

impl KeyKind {
    /// The name used in JSON and on the command line (`ecdsa-p256`, `ed25519`).
    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::EcdsaP256 => "ecdsa-p256",
            KeyKind::Ed25519 => "ed25519",
        }
    }
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A key id: the lowercase hex sha256 of the public key's SubjectPublicKeyInfo DER.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct KeyId(String);

impl KeyId {
    /// The id of a public key given as SubjectPublicKeyInfo DER.
    pub fn of_spki_der(der: &[u8]) -> KeyId {
        KeyId(hex::encode(Sha256::digest(der)))
    }

    /// An id as found in an envelope (any string: ids of keys we do not hold are still named).
    pub fn from_string(id: impl Into<String>) -> KeyId {
        KeyId(id.into())
    }

    /// The hex string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first 12 characters, for display.
    pub fn short(&self) -> &str {
        self.0.get(..12).unwrap_or(&self.0)
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({})", self.0)
    }
}

/// A public key that verifies signatures.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    inner: PublicInner,
    id: KeyId,
}

#[derive(Clone, PartialEq, Eq)]
enum PublicInner {
    EcdsaP256(p256::ecdsa::VerifyingKey),
    Ed25519(ed25519_dalek::VerifyingKey),
}

impl PublicKey {
    fn new(inner: PublicInner) -> PublicKey {
        let der = match &inner {
            PublicInner::EcdsaP256(k) => k.to_public_key_der(),
            PublicInner::Ed25519(k) => k.to_public_key_der(),
        }
        .expect("encoding a valid public key as SPKI cannot fail");
        PublicKey {
            id: KeyId::of_spki_der(der.as_bytes()),
            inner,
        }
    }

    /// Read a SubjectPublicKeyInfo PEM (`-----BEGIN PUBLIC KEY-----`) of a P-256 or Ed25519 key.
    pub fn from_pem(pem: &str) -> Result<PublicKey, KeyError> {
        if let Ok(k) = p256::ecdsa::VerifyingKey::from_public_key_pem(pem) {
            return Ok(PublicKey::new(PublicInner::EcdsaP256(k)));
        }
        match ed25519_dalek::VerifyingKey::from_public_key_pem(pem) {
            Ok(k) => Ok(PublicKey::new(PublicInner::Ed25519(k))),
            Err(e) => Err(KeyError::Parse {
                what: "public key",
                reason: format!(
                    "not a PEM SubjectPublicKeyInfo of an ECDSA P-256 or Ed25519 key ({e})"
                ),
            }),
        }
    }

    /// Read a public key file.
    pub fn load(path: &Path) -> Result<PublicKey, KeyError> {
        let text = fs::read_to_string(path).map_err(|source| KeyError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        PublicKey::from_pem(&text).map_err(|e| e.in_file(path))
    }

    /// The key as SubjectPublicKeyInfo PEM.
    pub fn to_pem(&self) -> String {
        match &self.inner {
            PublicInner::EcdsaP256(k) => k.to_public_key_pem(LineEnding::LF),
            PublicInner::Ed25519(k) => k.to_public_key_pem(LineEnding::LF),
        }
        .expect("encoding a valid public key as PEM cannot fail")
    }

    /// The key's id.
    pub fn id(&self) -> &KeyId {
        &self.id
    }

    /// The key's kind.
    pub fn kind(&self) -> KeyKind {
        match self.inner {
            PublicInner::EcdsaP256(_) => KeyKind::EcdsaP256,
            PublicInner::Ed25519(_) => KeyKind::Ed25519,
        }
    }

    /// Does `signature` sign `message` under this key? ECDSA signatures must be ASN.1 DER over the
    /// SHA-256 of `message`; Ed25519 signatures the raw 64 bytes (strict verification).
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        match &self.inner {
            PublicInner::EcdsaP256(k) => {
                use p256::ecdsa::signature::Verifier as _;
                p256::ecdsa::DerSignature::try_from(signature)
                    .is_ok_and(|sig| k.verify(message, &sig).is_ok())
            }
            PublicInner::Ed25519(k) => ed25519_dalek::Signature::from_slice(signature)
                .is_ok_and(|sig| k.verify_strict(message, &sig).is_ok()),
        }
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({} {})", self.kind(), self.id)
    }
}

/// A private key that signs. Its memory is zeroed when dropped.
pub struct PrivateKey {
    inner: PrivateInner,
    public: PublicKey,
}

enum PrivateInner {
    EcdsaP256(p256::ecdsa::SigningKey),
    Ed25519(ed25519_dalek::SigningKey),
}

impl PrivateKey {
    fn new(inner: PrivateInner) -> PrivateKey {
        let public = PublicKey::new(match &inner {
            PrivateInner::EcdsaP256(k) => PublicInner::EcdsaP256(*k.verifying_key()),
            PrivateInner::Ed25519(k) => PublicInner::Ed25519(k.verifying_key()),
        });
        PrivateKey { inner, public }
    }

    /// A new random key pair of `kind`, from the operating system's random source.
    pub fn generate(kind: KeyKind) -> Result<PrivateKey, KeyError> {
        use p256::elliptic_curve::Generate as _;
        let random =
            |e: p256::elliptic_curve::common::getrandom::Error| KeyError::Random(e.to_string());
        Ok(PrivateKey::new(match kind {
            KeyKind::EcdsaP256 => {
                PrivateInner::EcdsaP256(p256::ecdsa::SigningKey::try_generate().map_err(random)?)
            }
            KeyKind::Ed25519 => {
                PrivateInner::Ed25519(ed25519_dalek::SigningKey::try_generate().map_err(random)?)
            }
        }))
    }

    /// Read a PKCS#8 PEM private key; an encrypted one (`ENCRYPTED PRIVATE KEY`) needs `passphrase`.
    pub fn from_pem(pem: &str, passphrase: Option<&str>) -> Result<PrivateKey, KeyError> {
        let encrypted = pem.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----");
        if encrypted {
            let Some(passphrase) = passphrase else {
                return Err(KeyError::PassphraseNeeded);
            };
            if let Ok(k) = p256::ecdsa::SigningKey::from_pkcs8_encrypted_pem(pem, passphrase) {
                return Ok(PrivateKey::new(PrivateInner::EcdsaP256(k)));
            }
            return match ed25519_dalek::SigningKey::from_pkcs8_encrypted_pem(pem, passphrase) {
                Ok(k) => Ok(PrivateKey::new(PrivateInner::Ed25519(k))),
                Err(_) => Err(KeyError::Parse {
                    what: "encrypted private key",
                    reason: "wrong passphrase, or not an ECDSA P-256 or Ed25519 key".into(),
                }),
            };
        }
        if let Ok(k) = p256::ecdsa::SigningKey::from_pkcs8_pem(pem) {
            return Ok(PrivateKey::new(PrivateInner::EcdsaP256(k)));
        }
        match ed25519_dalek::SigningKey::from_pkcs8_pem(pem) {
            Ok(k) => Ok(PrivateKey::new(PrivateInner::Ed25519(k))),
            Err(e) => Err(KeyError::Parse {
                what: "private key",
                reason: format!("not a PEM PKCS#8 ECDSA P-256 or Ed25519 key ({e})"),
            }),
        }
    }

    /// Read a private key file; an encrypted one needs `passphrase`.
    pub fn load(path: &Path, passphrase: Option<&str>) -> Result<PrivateKey, KeyError> {
        let text = fs::read_to_string(path).map_err(|source| KeyError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        PrivateKey::from_pem(&text, passphrase).map_err(|e| e.in_file(path))
    }

    /// The key as PKCS#8 PEM, encrypted (PBES2: scrypt + AES-256-CBC) when `passphrase` is given.
    /// The string is zeroed when dropped.
    pub fn to_pem(
        &self,
        passphrase: Option<&str>,
    ) -> Result<p256::elliptic_curve::zeroize::Zeroizing<String>, KeyError> {
        let encode = |e: pkcs8::Error| KeyError::Encode(e.to_string());
        match (&self.inner, passphrase) {
            (PrivateInner::EcdsaP256(k), None) => k.to_pkcs8_pem(LineEnding::LF).map_err(encode),
            (PrivateInner::EcdsaP256(k), Some(p)) => {
                k.to_pkcs8_encrypted_pem(p, LineEnding::LF).map_err(encode)
            }
            // PKCS#8 v1 (RFC 8410, without the optional public key): OpenSSL 3.0 refuses the v2
            // form ed25519-dalek writes by default.
            (PrivateInner::Ed25519(k), None) => {
                ed25519_v1(k).to_pkcs8_pem(LineEnding::LF).map_err(encode)
            }
            (PrivateInner::Ed25519(k), Some(p)) => ed25519_v1(k)
                .to_pkcs8_encrypted_pem(p, LineEnding::LF)
                .map_err(encode),
        }
    }

    /// The matching public key.
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// The key's id (its public key's id).
    pub fn id(&self) -> &KeyId {
        self.public.id()
    }

    /// The key's kind.
    pub fn kind(&self) -> KeyKind {
        self.public.kind()
    }

    /// Sign `message`: ECDSA P-256 over its SHA-256, ASN.1 DER encoded (deterministic, RFC 6979);
    /// Ed25519 raw 64 bytes.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        match &self.inner {
            PrivateInner::EcdsaP256(k) => {
                use p256::ecdsa::signature::Signer as _;
                let sig: p256::ecdsa::Signature = k.sign(message);
                sig.to_der().as_bytes().to_vec()
            }
            PrivateInner::Ed25519(k) => k.sign(message).to_bytes().to_vec(),
        }
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PrivateKey({} {})", self.kind(), self.id())
    }
}

/// The environment variable that may hold `team`'s private key: `STRATA_KEY_<TEAM>`, the team
/// name upper-cased with every other character than a letter or digit turned into `_`
/// (`web-ops` → `STRATA_KEY_WEB_OPS`).
pub fn team_key_env(team: &str) -> String {
    let suffix: String = team
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("STRATA_KEY_{suffix}")
}

/// The private key a build signs `team`'s images with: the file `explicit` (`--key`) when given,
/// else the team's variable ([`team_key_env`]) read through `env`, holding either a PEM key itself
/// or the path of a key file. The passphrase of an encrypted key is `env(`[`PASSWORD_ENV`]`)`.
/// `Ok(None)` when neither is set; errors name the file or the variable at fault.
pub fn signing_key_for_team(
    team: &str,
    explicit: Option<&Path>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Option<PrivateKey>, KeyError> {
    let passphrase = env(PASSWORD_ENV).filter(|p| !p.is_empty());
    if let Some(path) = explicit {
        return PrivateKey::load(path, passphrase.as_deref()).map(Some);
    }
    let var = team_key_env(team);
    let Some(value) = env(&var).filter(|v| !v.trim().is_empty()) else {
        return Ok(None);
    };
    if value.contains("-----BEGIN") {
        return PrivateKey::from_pem(&value, passphrase.as_deref())
            .map(Some)
            .map_err(|e| KeyError::InVariable {
                variable: var,
                inner: Box::new(e),
            });
    }
    PrivateKey::load(Path::new(value.trim()), passphrase.as_deref()).map(Some)
}

/// An Ed25519 key in PKCS#8 v1 form (no public key inside).
fn ed25519_v1(key: &ed25519_dalek::SigningKey) -> ed25519_dalek::ed25519::pkcs8::KeypairBytes {
    ed25519_dalek::ed25519::pkcs8::KeypairBytes {
        secret_key: key.to_bytes(),
        public_key: None,
    }
}

/// The two files of a team's key pair, as written by [`write_key_pair`].
#[derive(Clone, Debug, serde::Serialize)]
pub struct KeyPairFiles {
    /// `<team>.key`: the private key, mode 0600.
    pub private_key: PathBuf,
    /// `<team>.pub`: the public key, mode 0644.
    pub public_key: PathBuf,
    /// The key's id.
    pub key_id: KeyId,
    /// The key's kind.
    pub kind: KeyKind,
    /// Whether the private key is encrypted with a passphrase.
    pub encrypted: bool,
}

/// Write `key` as `<dir>/<team>.key` (mode 0600, encrypted when `passphrase` is given) and
/// `<dir>/<team>.pub`. Each file is written atomically (temp file, fsync, rename); neither may exist
/// already, so a team's key is never overwritten by accident.
pub fn write_key_pair(
    dir: &Path,
    team: &str,
    key: &PrivateKey,
    passphrase: Option<&str>,
) -> Result<KeyPairFiles, KeyError> {
    if team.is_empty()
        || !team
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        || team.starts_with('.')
    {
        return Err(KeyError::BadTeamName(team.to_string()));
    }
    let private_path = dir.join(format!("{team}.key"));
    let public_path = dir.join(format!("{team}.pub"));
    for path in [&private_path, &public_path] {
        if path.exists() {
            return Err(KeyError::Exists(path.clone()));
        }
    }
    fs::create_dir_all(dir).map_err(|source| KeyError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let pem = key.to_pem(passphrase)?;
    write_new_file(&private_path, pem.as_bytes(), 0o600)?;
    write_new_file(&public_path, key.public_key().to_pem().as_bytes(), 0o644)?;
    Ok(KeyPairFiles {
        private_key: private_path,
        public_key: public_path,
        key_id: key.id().clone(),
        kind: key.kind(),
        encrypted: passphrase.is_some(),
    })
}

/// Write a file that must not exist yet, atomically: a temp file beside it (created 0600), fsync,
/// chmod, rename without replacing, fsync the directory.
fn write_new_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), KeyError> {
    use std::os::unix::fs::PermissionsExt;
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| KeyError::Io { path, source }
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-key-")
        .tempfile_in(dir)
        .map_err(io(dir))?;
    tmp.write_all(bytes).map_err(io(path))?;
    tmp.as_file().sync_all().map_err(io(path))?;
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(mode)).map_err(io(path))?;
    tmp.persist_noclobber(path).map_err(|e| {
        if e.error.kind() == std::io::ErrorKind::AlreadyExists {
            KeyError::Exists(path.to_path_buf())
        } else {
            KeyError::Io {
                path: path.to_path_buf(),
                source: e.error,
            }
        }
    })?;
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generate_sign_verify_both_kinds() {
        for kind in [KeyKind::EcdsaP256, KeyKind::Ed25519] {
            let key = PrivateKey::generate(kind).unwrap();
            assert_eq!(key.kind(), kind);
            let sig = key.sign(b"hello");
            assert!(key.public_key().verify(b"hello", &sig), "{kind}");
            assert!(!key.public_key().verify(b"hellp", &sig), "{kind}");
            let other = PrivateKey::generate(kind).unwrap();
            assert!(!other.public_key().verify(b"hello", &sig), "{kind}");
            assert_ne!(key.id(), other.id());
        }
        // ECDSA signatures are DER: a SEQUENCE of two INTEGERs.
        let key = PrivateKey::generate(KeyKind::EcdsaP256).unwrap();
        let sig = key.sign(b"x");
        assert_eq!(sig[0], 0x30, "{sig:02x?}");
        assert_eq!(usize::from(sig[1]) + 2, sig.len());
        assert_eq!(
            PrivateKey::generate(KeyKind::Ed25519)
                .unwrap()
                .sign(b"x")
                .len(),
            64
        );
    }

    #[test]
    fn pem_round_trips_and_key_id_is_spki_sha256() {
        for kind in [KeyKind::EcdsaP256, KeyKind::Ed25519] {
            let key = PrivateKey::generate(kind).unwrap();
            let pem = key.to_pem(None).unwrap();
            assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"), "{kind}");
            let back = PrivateKey::from_pem(&pem, None).unwrap();
            assert_eq!(back.id(), key.id());
            assert_eq!(back.kind(), kind);
            let public_pem = key.public_key().to_pem();
            assert!(public_pem.starts_with("-----BEGIN PUBLIC KEY-----\n"));
            let public = PublicKey::from_pem(&public_pem).unwrap();
            assert_eq!(&public, key.public_key());
            // The id is the sha256 of the DER inside the PEM.
            let b64: String = public_pem
                .lines()
                .filter(|l| !l.starts_with("-----"))
                .collect();
            use base64::Engine as _;
            let der = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .unwrap();
            assert_eq!(public.id().as_str(), hex::encode(Sha256::digest(&der)));
            assert_eq!(public.id().as_str().len(), 64);
        }
    }

    #[test]
    fn encrypted_keys_need_the_passphrase() {
        for kind in [KeyKind::EcdsaP256, KeyKind::Ed25519] {
            let key = PrivateKey::generate(kind).unwrap();
            let pem = key.to_pem(Some("correct horse")).unwrap();
            assert!(pem.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----\n"));
            assert!(matches!(
                PrivateKey::from_pem(&pem, None),
                Err(KeyError::PassphraseNeeded)
            ));
            let err = PrivateKey::from_pem(&pem, Some("wrong")).unwrap_err();
            assert!(err.to_string().contains("wrong passphrase"), "{err}");
            let back = PrivateKey::from_pem(&pem, Some("correct horse")).unwrap();
            assert_eq!(back.id(), key.id());
        }
    }

    #[test]
    fn garbage_is_refused_clearly() {
        let err = PublicKey::from_pem("not a key").unwrap_err();
        assert!(err.to_string().starts_with("invalid public key:"), "{err}");
        let err = PrivateKey::from_pem(
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
            None,
        )
        .unwrap_err();
        assert!(err.to_string().starts_with("invalid private key:"), "{err}");
    }

    #[test]
    fn a_teams_signing_key_comes_from_the_flag_or_its_variable() {
        let dir = tempfile::tempdir().unwrap();
        let key = PrivateKey::generate(KeyKind::EcdsaP256).unwrap();
        let files = write_key_pair(dir.path(), "web-ops", &key, Some("pw")).unwrap();
        assert_eq!(team_key_env("web-ops"), "STRATA_KEY_WEB_OPS");
        let path = files.private_key.to_str().unwrap().to_string();
        let pem = fs::read_to_string(&files.private_key).unwrap();
        let env = |vars: Vec<(&'static str, String)>| {
            move |name: &str| {
                vars.iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.clone())
            }
        };
        // Nothing set: no key.
        assert!(
            signing_key_for_team("web-ops", None, env(vec![]))
                .unwrap()
                .is_none()
        );
        // The variable names a file, or holds the PEM; the passphrase comes from its variable.
        for value in [path.clone(), pem.clone()] {
            let found = signing_key_for_team(
                "web-ops",
                None,
                env(vec![
                    ("STRATA_KEY_WEB_OPS", value),
                    (PASSWORD_ENV, "pw".into()),
                ]),
            )
            .unwrap()
            .unwrap();
            assert_eq!(found.id(), key.id());
        }
        let err = signing_key_for_team(
            "web-ops",
            None,
            env(vec![("STRATA_KEY_WEB_OPS", pem.clone())]),
        )
        .unwrap_err();
        // The message names the variable; the parse error is its cause.
        assert_eq!(err.to_string(), "STRATA_KEY_WEB_OPS");
        let line = strata_oci::report(&err);
        assert!(
            line.starts_with("STRATA_KEY_WEB_OPS: the private key is encrypted"),
            "{line}"
        );
        // --key wins over the variable.
        let other = PrivateKey::generate(KeyKind::Ed25519).unwrap();
        let other_files = write_key_pair(dir.path(), "other", &other, None).unwrap();
        let found = signing_key_for_team(
            "web-ops",
            Some(&other_files.private_key),
            env(vec![("STRATA_KEY_WEB_OPS", path)]),
        )
        .unwrap()
        .unwrap();
        assert_eq!(found.id(), other.id());
    }

    #[test]
    fn key_pair_files_are_private_and_never_overwritten() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let key = PrivateKey::generate(KeyKind::EcdsaP256).unwrap();
        let files = write_key_pair(dir.path(), "operations", &key, None).unwrap();
        assert_eq!(files.private_key, dir.path().join("operations.key"));
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&files.private_key), 0o600);
        assert_eq!(mode(&files.public_key), 0o644);
        let loaded = PrivateKey::load(&files.private_key, None).unwrap();
        assert_eq!(loaded.id(), key.id());
        assert_eq!(PublicKey::load(&files.public_key).unwrap().id(), key.id());
        let err = write_key_pair(dir.path(), "operations", &key, None).unwrap_err();
        assert!(matches!(err, KeyError::Exists(_)), "{err}");
        assert!(matches!(
            write_key_pair(dir.path(), "../evil", &key, None),
            Err(KeyError::BadTeamName(_))
        ));
        // No temp files are left behind.
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
        let err = PublicKey::load(&files.private_key).unwrap_err();
        assert!(err.to_string().contains("operations.key"), "{err}");
    }
}
