//! Content digests: `sha256:<64 lowercase hex>` or `sha512:<128 lowercase hex>`, and
//! writers/readers that hash as bytes pass.
//!
//! strata writes sha256; sha512 (which the OCI image spec also registers) is accepted, stored
//! under `blobs/sha512/` and verified like sha256 wherever a digest comes from outside (a push, a
//! pull, a reference).

use std::fmt;
use std::io::{self, Read, Write};
use std::str::FromStr;

use sha2::{Digest as _, Sha256, Sha512};

use crate::error::{Error, Result};

/// A digest algorithm strata stores and verifies.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    /// SHA-256: what strata writes.
    #[default]
    Sha256,
    /// SHA-512: accepted from clients and registries.
    Sha512,
}

impl Algorithm {
    /// Every supported algorithm.
    pub const ALL: [Algorithm; 2] = [Algorithm::Sha256, Algorithm::Sha512];

    /// The name used in digests and under `blobs/`.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    /// The length of an encoded digest, in hex characters.
    pub fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }

    /// The algorithm named `name`, if supported.
    pub fn from_name(name: &str) -> Option<Algorithm> {
        Algorithm::ALL.into_iter().find(|a| a.name() == name)
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A content digest (sha256 or sha512). Displays as `<algorithm>:<hex>`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    algorithm: Algorithm,
    hex: String,
}

impl Digest {
    /// The algorithm strata writes its own content with.
    pub const ALGORITHM: &'static str = "sha256";

    /// The sha256 digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        Digest::of_with(Algorithm::Sha256, bytes)
    }

    /// The digest of `bytes` under `algorithm`.
    pub fn of_with(algorithm: Algorithm, bytes: &[u8]) -> Digest {
        let mut hasher = Hasher::with_algorithm(algorithm);
        hasher.update(bytes);
        hasher.finish()
    }

    /// A sha256 digest from its 64 lowercase hex characters (no `sha256:` prefix).
    pub fn from_hex(hex: &str) -> Result<Digest> {
        Digest::from_parts(Algorithm::Sha256, hex)
    }

    /// A digest from its algorithm and lowercase hex encoding.
    pub fn from_parts(algorithm: Algorithm, hex: &str) -> Result<Digest> {
        let invalid = |reason| Error::InvalidDigest {
            input: hex.to_string(),
            reason,
        };
        if hex.len() != algorithm.hex_len() {
            return Err(invalid(match algorithm {
                Algorithm::Sha256 => "a sha256 digest has 64 hex characters",
                Algorithm::Sha512 => "a sha512 digest has 128 hex characters",
            }));
        }
        if !hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(invalid("only lowercase hex characters are allowed"));
        }
        Ok(Digest {
            algorithm,
            hex: hex.to_string(),
        })
    }

    /// The algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The hex encoding (64 characters for sha256, 128 for sha512).
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// The first 12 hex characters, for display.
    pub fn short(&self) -> &str {
        &self.hex[..12]
    }

    /// A fresh hasher of this digest's algorithm.
    pub fn hasher(&self) -> Hasher {
        Hasher::with_algorithm(self.algorithm)
    }

    /// This digest as an `oci-spec` digest.
    pub fn to_oci(&self) -> oci_spec::image::Digest {
        oci_spec::image::Digest::from_str(&self.to_string())
            .expect("a validated sha256/sha512 digest is a valid OCI digest")
    }

    /// A digest from an `oci-spec` digest; fails for algorithms other than sha256 and sha512.
    pub fn from_oci(digest: &oci_spec::image::Digest) -> Result<Digest> {
        digest.as_ref().parse()
    }
}

impl FromStr for Digest {
    type Err = Error;

    fn from_str(s: &str) -> Result<Digest> {
        let Some((algorithm, hex)) = s.split_once(':') else {
            return Err(Error::InvalidDigest {
                input: s.to_string(),
                reason: "expected sha256:<64 hex characters> or sha512:<128 hex characters>",
            });
        };
        let Some(algorithm) = Algorithm::from_name(algorithm) else {
            return Err(Error::InvalidDigest {
                input: s.to_string(),
                reason: "only sha256 and sha512 digests are supported",
            });
        };
        Digest::from_parts(algorithm, hex).map_err(|_| Error::InvalidDigest {
            input: s.to_string(),
            reason: match algorithm {
                Algorithm::Sha256 => "a sha256 digest has 64 lowercase hex characters",
                Algorithm::Sha512 => "a sha512 digest has 128 lowercase hex characters",
            },
        })
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm, self.hex)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({}:{})", self.algorithm, self.hex)
    }
}

impl From<Digest> for oci_spec::image::Digest {
    fn from(digest: Digest) -> Self {
        digest.to_oci()
    }
}

impl TryFrom<&oci_spec::image::Digest> for Digest {
    type Error = Error;

    fn try_from(digest: &oci_spec::image::Digest) -> Result<Digest> {
        Digest::from_oci(digest)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// An incremental hash (sha256 unless told otherwise).
#[derive(Clone)]
pub struct Hasher {
    inner: HasherState,
}

#[derive(Clone)]
enum HasherState {
    Sha256(Sha256),
    Sha512(Sha512),
}

impl Default for Hasher {
    fn default() -> Self {
        Hasher::new()
    }
}

impl Hasher {
    /// A fresh sha256 hasher.
    pub fn new() -> Hasher {
        Hasher::with_algorithm(Algorithm::Sha256)
    }

    /// A fresh hasher of `algorithm`.
    pub fn with_algorithm(algorithm: Algorithm) -> Hasher {
        Hasher {
            inner: match algorithm {
                Algorithm::Sha256 => HasherState::Sha256(Sha256::new()),
                Algorithm::Sha512 => HasherState::Sha512(Sha512::new()),
            },
        }
    }

    /// The algorithm this hasher computes.
    pub fn algorithm(&self) -> Algorithm {
        match self.inner {
            HasherState::Sha256(_) => Algorithm::Sha256,
            HasherState::Sha512(_) => Algorithm::Sha512,
        }
    }

    /// Feed bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        match &mut self.inner {
            HasherState::Sha256(h) => h.update(bytes),
            HasherState::Sha512(h) => h.update(bytes),
        }
    }

    /// The digest of everything fed so far.
    pub fn finish(self) -> Digest {
        let (algorithm, hex) = match self.inner {
            HasherState::Sha256(h) => (Algorithm::Sha256, hex::encode(h.finalize())),
            HasherState::Sha512(h) => (Algorithm::Sha512, hex::encode(h.finalize())),
        };
        Digest { algorithm, hex }
    }
}

/// A writer that hashes and counts every byte it passes on.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Hasher,
    count: u64,
}

impl<W: Write> HashingWriter<W> {
    /// Wrap `inner`.
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Hasher::new(),
            count: 0,
        }
    }

    /// Bytes written so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The inner writer, the digest and the size of what was written.
    pub fn finish(self) -> (W, Digest, u64) {
        (self.inner, self.hasher.finish(), self.count)
    }

    /// The inner writer.
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A reader that hashes and counts every byte it yields.
pub struct HashingReader<R> {
    inner: R,
    hasher: Hasher,
    count: u64,
}

impl<R: Read> HashingReader<R> {
    /// Wrap `inner`, hashing with sha256.
    pub fn new(inner: R) -> Self {
        HashingReader::with_algorithm(inner, Algorithm::Sha256)
    }

    /// Wrap `inner`, hashing with `algorithm`.
    pub fn with_algorithm(inner: R, algorithm: Algorithm) -> Self {
        HashingReader {
            inner,
            hasher: Hasher::with_algorithm(algorithm),
            count: 0,
        }
    }

    /// The digest and size of everything read so far.
    pub fn finish(self) -> (Digest, u64) {
        (self.hasher.finish(), self.count)
    }

    /// The inner reader, and the digest and size of everything read so far.
    pub fn into_parts(self) -> (R, Digest, u64) {
        (self.inner, self.hasher.finish(), self.count)
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn hashes_like_sha256sum() {
        assert_eq!(Digest::of(b"").hex(), EMPTY);
        assert_eq!(Digest::of(b"").to_string(), format!("sha256:{EMPTY}"));
        let mut w = HashingWriter::new(Vec::new());
        w.write_all(b"hello ").unwrap();
        w.write_all(b"world").unwrap();
        let (bytes, digest, size) = w.finish();
        assert_eq!(bytes, b"hello world");
        assert_eq!(size, 11);
        assert_eq!(digest, Digest::of(b"hello world"));
        assert_eq!(
            digest.hex(),
            "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
        );
    }

    #[test]
    fn parses_and_refuses() {
        let d: Digest = format!("sha256:{EMPTY}").parse().unwrap();
        assert_eq!(d.hex(), EMPTY);
        assert_eq!(d.short(), &EMPTY[..12]);
        for bad in [
            "",
            "sha256",
            "sha256:",
            "sha256:abc",
            &format!("sha512:{EMPTY}"),
            &format!("md5:{EMPTY}"),
            &format!("sha512:{}", "A".repeat(128)),
            &format!("sha256:{}", EMPTY.to_uppercase()),
            &format!("sha256:{}g", &EMPTY[..63]),
            &format!("sha256:{EMPTY}0"),
        ] {
            let err = bad.parse::<Digest>().unwrap_err();
            assert!(matches!(err, Error::InvalidDigest { .. }), "{bad}: {err}");
        }
    }

    #[test]
    fn sha512_digests_hash_parse_and_display() {
        // `printf '' | sha512sum` and `printf 'hello world' | sha512sum`.
        let empty = Digest::of_with(Algorithm::Sha512, b"");
        assert_eq!(
            empty.to_string(),
            "sha512:cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce\
             47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e"
        );
        let parsed: Digest = empty.to_string().parse().unwrap();
        assert_eq!(parsed, empty);
        assert_eq!(parsed.algorithm(), Algorithm::Sha512);
        assert_ne!(parsed, Digest::of(b""));
        let mut reader = HashingReader::with_algorithm(&b"hello world"[..], Algorithm::Sha512);
        io::copy(&mut reader, &mut io::sink()).unwrap();
        let (digest, size) = reader.finish();
        assert_eq!(size, 11);
        assert!(
            digest.hex().starts_with("309ecc489c12d6eb4cc40f50c902f2b4"),
            "{digest}"
        );
        let oci = digest.to_oci();
        assert_eq!(Digest::from_oci(&oci).unwrap(), digest);
        let json = serde_json::to_string(&digest).unwrap();
        assert_eq!(serde_json::from_str::<Digest>(&json).unwrap(), digest);
    }

    #[test]
    fn converts_to_and_from_oci_spec() {
        let d = Digest::of(b"x");
        let oci = d.to_oci();
        assert_eq!(oci.to_string(), d.to_string());
        assert_eq!(Digest::from_oci(&oci).unwrap(), d);
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(json, format!("\"{d}\""));
        assert_eq!(serde_json::from_str::<Digest>(&json).unwrap(), d);
    }
}
