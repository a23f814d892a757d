//! The store's memory of gzip members it already wrote, so a layer that repeats most of an earlier
//! one is not compressed again.
//!
//! A gzip layer is written as content-defined members ([`crate::compress::ChunkedGzip`]): a run of
//! unchanged bytes gives the same chunks, and the same chunk always compresses to the same member.
//! A RUN step rebuilt on a patched parent (apt installing the same packages) repeats almost every
//! chunk of its previous layer; the memo finds each one's member in the earlier layer blob and
//! copies it instead of deflating the chunk again. The layer's bytes are the ones a fresh
//! compression gives: the memo is only ever a shortcut.
//!
//! One small file per chunk, `STORE/.strata/gzip-members/<key hex>`, says where its member lies:
//! `<blob digest> <offset> <length> <member sha256>`. The key hashes the chunk with a fingerprint of
//! the compressor (the output of a fixed sample), so a different deflate implementation or level
//! never reuses a member it would not write itself. A member is reused only after its bytes, read
//! from the blob, match the recorded sha256 and its gzip trailer matches the chunk's CRC-32 and
//! length; anything else (a removed blob, a torn entry, a changed file) is a miss and the chunk is
//! compressed. Entries are written without fsync, as a crash costs nothing but a miss; `store gc`
//! removes the entries whose blob is gone.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use sha2::{Digest as _, Sha256};

use crate::Store;
use crate::digest::Digest;

/// Chunks shorter than this are never looked up nor remembered: compressing them costs less than
/// the memo's file operations (and a store of one-COPY images writes none).
pub const MEMO_MIN: usize = 256 * 1024;

/// Where the store remembers its gzip members (one file per chunk key).
pub fn members_dir(store: &Store) -> PathBuf {
    store.state_dir().join("gzip-members")
}

/// One member written into a layer blob: the chunk it compresses and where it lies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberRecord {
    /// The chunk's memo key ([`MemberMemo::key`]).
    pub key: [u8; 32],
    /// The member's offset in the blob.
    pub offset: u64,
    /// The member's length in bytes.
    pub length: u64,
    /// The sha256 of the member's bytes.
    pub sha256: [u8; 32],
}

/// Where a remembered member lies, as read from its entry.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Location {
    blob: Digest,
    offset: u64,
    length: u64,
    sha256: [u8; 32],
}

impl Location {
    fn parse(text: &str) -> Option<Location> {
        let mut words = text.split_ascii_whitespace();
        let blob: Digest = words.next()?.parse().ok()?;
        let offset = words.next()?.parse().ok()?;
        let length = words.next()?.parse().ok()?;
        let sha256 = hex::decode(words.next()?).ok()?.try_into().ok()?;
        words.next().is_none().then_some(Location {
            blob,
            offset,
            length,
            sha256,
        })
    }

    fn line(&self) -> String {
        format!(
            "{} {} {} {}\n",
            self.blob,
            self.offset,
            self.length,
            hex::encode(self.sha256)
        )
    }
}

/// The store's gzip member memo (see the module documentation).
#[derive(Clone, Debug)]
pub struct MemberMemo {
    dir: PathBuf,
    store: Store,
}

impl MemberMemo {
    /// The memo of `store`.
    pub fn for_store(store: &Store) -> MemberMemo {
        MemberMemo {
            dir: members_dir(store),
            store: store.clone(),
        }
    }

    /// The memo key of `chunk`: its sha256 together with the compressor's fingerprint.
    pub fn key(chunk: &[u8]) -> [u8; 32] {
        let mut hasher = Sha256::new();
        hasher.update(b"strata gzip member v1\0");
        hasher.update(compressor_fingerprint());
        hasher.update(chunk);
        hasher.finalize().into()
    }

    fn entry_path(&self, key: &[u8; 32]) -> PathBuf {
        self.dir.join(hex::encode(key))
    }

    /// The remembered member of `chunk` (whose key is `key`) and its sha256, read from its blob and
    /// checked; `None` when there is none or it does not check out.
    pub fn find(&self, key: &[u8; 32], chunk: &[u8]) -> Option<(Vec<u8>, [u8; 32])> {
        let text = read_entry(&self.entry_path(key))?;
        let at = Location::parse(&text)?;
        // A member is a header, a deflate stream and an 8-byte trailer; never more than the chunk
        // stored plus framing (a bound that keeps a torn entry from asking for a huge read).
        let bound = chunk.len() as u64 + chunk.len() as u64 / 100 + 1024;
        if at.length < 18 || at.length > bound {
            return None;
        }
        let file = fs::File::open(self.store.blobs().path(&at.blob)).ok()?;
        let mut member = vec![0u8; usize::try_from(at.length).ok()?];
        file.read_exact_at(&mut member, at.offset).ok()?;
        if <[u8; 32]>::from(Sha256::digest(&member)) != at.sha256 {
            return None;
        }
        let trailer = &member[member.len() - 8..];
        let crc = u32::from_le_bytes(trailer[..4].try_into().ok()?);
        let size = u32::from_le_bytes(trailer[4..].try_into().ok()?);
        let whole = member.starts_with(&[0x1f, 0x8b, 8])
            && crc == crc32fast::hash(chunk)
            && size == chunk.len() as u32;
        whole.then_some((member, at.sha256))
    }

    /// Remember the members just written into `blob`. A failure only loses entries (a later layer
    /// compresses those chunks again).
    pub fn record(&self, blob: &Digest, members: &[MemberRecord]) {
        if members.is_empty() {
            return;
        }
        if let Err(e) = fs::create_dir_all(&self.dir) {
            tracing::debug!("gzip member memo: cannot make {}: {e}", self.dir.display());
            return;
        }
        for member in members {
            let line = Location {
                blob: blob.clone(),
                offset: member.offset,
                length: member.length,
                sha256: member.sha256,
            }
            .line();
            if let Err(e) = write_entry(&self.dir, &self.entry_path(&member.key), line.as_bytes()) {
                tracing::debug!("gzip member memo: cannot write an entry: {e}");
                return;
            }
        }
    }

    /// The blob an entry file names, if it parses: what `store gc` asks to keep it.
    pub fn entry_blob(path: &Path) -> Option<Digest> {
        Location::parse(&read_entry(path)?).map(|at| at.blob)
    }
}

/// An entry's text, read as every cache file is ([`crate::layout::read_cache_file`]): a planted
/// link to a FIFO or a device must not hang or flood a build or gc.
fn read_entry(path: &Path) -> Option<String> {
    String::from_utf8(crate::layout::read_cache_file(path, ENTRY_MAX)?).ok()
}

/// The longest entry read: a digest, two numbers and a sha256 in hex fit in far less.
const ENTRY_MAX: u64 = 512;

/// Write `bytes` to `path` through a temporary file and a rename, without fsync: an entry is
/// whole or absent after a crash, or (on a file system that reorders) empty, which reads as a miss.
fn write_entry(dir: &Path, path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut tmp = tempfile::Builder::new().prefix(".tmp-").tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// The sha256 of what this build's gzip writes for a fixed sample (text-like and random bytes):
/// changes when the deflate implementation or the level changes what it writes.
fn compressor_fingerprint() -> &'static [u8; 32] {
    static FINGERPRINT: OnceLock<[u8; 32]> = OnceLock::new();
    FINGERPRINT.get_or_init(|| {
        let mut sample = Vec::with_capacity(192 * 1024);
        for i in 0..8000u32 {
            sample.extend_from_slice(
                format!("line {i} of {} /usr/lib/x{}\n", i % 97, i % 13).as_bytes(),
            );
        }
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        sample.extend((0..65536).map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        }));
        let mut hasher = Sha256::new();
        match crate::compress::gzip_member(&sample) {
            Ok(member) => hasher.update(&member),
            // Never reached with an in-memory sink; a fingerprint that matches nothing disables reuse.
            Err(_) => hasher.update(b"no fingerprint"),
        }
        hasher.finalize().into()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_parse_strictly() {
        let at = Location {
            blob: Digest::of(b"x"),
            offset: 7,
            length: 99,
            sha256: [3; 32],
        };
        assert_eq!(Location::parse(&at.line()), Some(at.clone()));
        assert_eq!(Location::parse(""), None);
        assert_eq!(Location::parse(&format!("{} 7 99", at.blob)), None);
        assert_eq!(
            Location::parse(&format!("{} 7 99 {} extra", at.blob, hex::encode([3; 32]))),
            None
        );
        assert_eq!(
            Location::parse(&format!("{} -7 99 {}", at.blob, hex::encode([3; 32]))),
            None
        );
    }
}
