//! Blobs: atomic, digest-checked writes and verifying reads.
//!
//! A blob is written to a temp file inside the store, hashed while written, fsynced, checked against
//! its expected digest (when one is given), renamed into `blobs/<algorithm>/<hex>` and the
//! directory is fsynced. A writer hashes with one algorithm as bytes pass (sha256 unless told
//! otherwise); a commit under another algorithm's digest (a chunked upload whose `sha512:` digest
//! only arrives at the end) hashes the written file once more, as distribution does. A crash leaves either no blob or the whole blob, never a partial one under its name.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use oci_spec::image::{Descriptor, MediaType};

use crate::digest::{Algorithm, Digest, Hasher, HashingReader};
use crate::error::{Error, Result, io_err};
use crate::layout::{Lease, Store, sync_dir};

/// A blob's digest and size, as stored.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct BlobInfo {
    /// The content's digest (sha256 unless stored under a sha512 digest).
    pub digest: Digest,
    /// The content's length in bytes.
    pub size: u64,
}

impl BlobInfo {
    /// An OCI descriptor for this blob.
    pub fn descriptor(&self, media_type: MediaType) -> Descriptor {
        Descriptor::new(media_type, self.size, self.digest.to_oci())
    }
}

/// Streams a new blob into the store; [`BlobWriter::commit`] makes it visible.
///
/// Dropping a writer without committing removes its temp file. While a writer is open it holds a
/// [`Lease`] on the store, so `gc` never removes its temp file.
pub struct BlobWriter {
    store: Store,
    file: BufWriter<tempfile::NamedTempFile>,
    hasher: Hasher,
    size: u64,
    _lease: Lease,
}

impl BlobWriter {
    pub(crate) fn new(store: &Store, algorithm: Algorithm) -> Result<BlobWriter> {
        let lease = store.lease()?;
        let tmp_dir = store.tmp_dir();
        fs::create_dir_all(&tmp_dir).map_err(io_err(&tmp_dir))?;
        let file = tempfile::Builder::new()
            .prefix("blob-")
            .tempfile_in(&tmp_dir)
            .map_err(io_err(&tmp_dir))?;
        Ok(BlobWriter {
            store: store.clone(),
            file: BufWriter::with_capacity(256 * 1024, file),
            hasher: Hasher::with_algorithm(algorithm),
            size: 0,
            _lease: lease,
        })
    }

    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Flush, fsync, check the digest against `expected` (when given), then rename the blob into
    /// place. On a mismatch nothing is stored and [`Error::DigestMismatch`] is returned. An
    /// `expected` digest of another algorithm than the writer's is checked by hashing the written
    /// file again.
    pub fn commit(self, expected: Option<&Digest>) -> Result<BlobInfo> {
        let tmp = self
            .file
            .into_inner()
            .map_err(|e| e.into_error())
            .map_err(io_err(self.store.tmp_dir()))?;
        let tmp_path = tmp.path().to_path_buf();
        let digest = match expected {
            Some(expected) if expected.algorithm() != self.hasher.algorithm() => {
                let file = File::open(&tmp_path).map_err(io_err(&tmp_path))?;
                let mut reader = HashingReader::with_algorithm(file, expected.algorithm());
                io::copy(&mut reader, &mut io::sink()).map_err(io_err(&tmp_path))?;
                reader.finish().0
            }
            _ => self.hasher.finish(),
        };
        if let Some(expected) = expected
            && *expected != digest
        {
            return Err(Error::DigestMismatch {
                expected: expected.clone(),
                actual: digest,
            });
        }
        crate::fault::point(crate::fault::Op::Fsync);
        tmp.as_file().sync_all().map_err(io_err(&tmp_path))?;
        let dest = self.store.blobs().path(&digest);
        if !dest.exists() {
            let dir = self.store.blobs().dir_for(digest.algorithm());
            if digest.algorithm() != Algorithm::Sha256 {
                fs::create_dir_all(&dir).map_err(io_err(&dir))?;
            }
            fs::set_permissions(&tmp_path, fs::Permissions::from_mode(0o644))
                .map_err(io_err(&tmp_path))?;
            crate::fault::point(crate::fault::Op::Rename);
            tmp.persist(&dest)
                .map_err(|e| e.error)
                .map_err(io_err(&dest))?;
            sync_dir(&dir)?;
        }
        Ok(BlobInfo {
            digest,
            size: self.size,
        })
    }
}

/// A blob being written that holds no open file (see [`BlobWriter::park`]): its temp file's path,
/// the hash state and the size so far. Dropping it removes the temp file.
///
/// A parked blob holds no [`Lease`] either: whoever keeps it must hold one of its own, or `gc`
/// may take the temp file.
pub struct ParkedBlob {
    path: tempfile::TempPath,
    hasher: Hasher,
    size: u64,
}

impl ParkedBlob {
    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Reopen the temp file (appending) and carry on writing.
    pub fn resume(self, store: &Store) -> Result<BlobWriter> {
        let lease = store.lease()?;
        let file = fs::OpenOptions::new()
            .append(true)
            .open(&self.path)
            .map_err(io_err(&self.path))?;
        Ok(BlobWriter {
            store: store.clone(),
            file: BufWriter::with_capacity(
                256 * 1024,
                tempfile::NamedTempFile::from_parts(file, self.path),
            ),
            hasher: self.hasher,
            size: self.size,
            _lease: lease,
        })
    }
}

impl BlobWriter {
    /// Flush and close the temp file, keeping what was written, so a writer idle between requests
    /// holds no file descriptor. [`ParkedBlob::resume`] carries on.
    pub fn park(self) -> Result<ParkedBlob> {
        let tmp = self
            .file
            .into_inner()
            .map_err(|e| e.into_error())
            .map_err(io_err(self.store.tmp_dir()))?;
        let (file, path) = tmp.into_parts();
        drop(file);
        Ok(ParkedBlob {
            path,
            hasher: self.hasher,
            size: self.size,
        })
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// A reader that checks the content against its digest (and size) when it reaches the end.
///
/// At EOF a mismatch turns into an `io::Error` of kind `InvalidData` that wraps
/// [`Error::DigestMismatch`] (or [`Error::SizeMismatch`]); reading past the expected size fails at
/// once. Only a reader read to EOF has been verified.
pub struct VerifyingReader<R> {
    inner: R,
    hasher: Hasher,
    read: u64,
    expected: Digest,
    expected_size: Option<u64>,
    verified: bool,
}

impl<R: Read> VerifyingReader<R> {
    /// Wrap `inner`, whose content should hash to `expected` and, when given, have `expected_size`
    /// bytes.
    pub fn new(inner: R, expected: Digest, expected_size: Option<u64>) -> Self {
        VerifyingReader {
            inner,
            hasher: expected.hasher(),
            read: 0,
            expected,
            expected_size,
            verified: false,
        }
    }

    /// True once EOF was reached and the content matched.
    pub fn is_verified(&self) -> bool {
        self.verified
    }

    /// Read the rest of the content, discarding it, so the digest is checked.
    pub fn finish(mut self) -> Result<()> {
        io::copy(&mut self, &mut io::sink()).map_err(crate::error::stream_err(format!(
            "reading blob {}",
            self.expected
        )))?;
        Ok(())
    }

    fn mismatch(&self, error: Error) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, error)
    }
}

impl<R: Read> Read for VerifyingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.read += n as u64;
        if let Some(size) = self.expected_size
            && self.read > size
        {
            return Err(self.mismatch(Error::SizeMismatch {
                digest: self.expected.clone(),
                expected: size,
                actual: self.read,
            }));
        }
        if n == 0 && !buf.is_empty() && !self.verified {
            if let Some(size) = self.expected_size
                && self.read != size
            {
                return Err(self.mismatch(Error::SizeMismatch {
                    digest: self.expected.clone(),
                    expected: size,
                    actual: self.read,
                }));
            }
            let fresh = self.expected.hasher();
            let actual = std::mem::replace(&mut self.hasher, fresh).finish();
            if actual != self.expected {
                return Err(self.mismatch(Error::DigestMismatch {
                    expected: self.expected.clone(),
                    actual,
                }));
            }
            self.verified = true;
        }
        Ok(n)
    }
}

/// The store's blobs: `blobs/sha256/<hex>`, written atomically and checked against their digest
/// when read. Made by [`Store::blobs`].
#[derive(Clone, Copy, Debug)]
pub struct Blobs<'a> {
    pub(crate) store: &'a Store,
}

impl<'a> Blobs<'a> {
    pub(crate) fn new(store: &'a Store) -> Self {
        Blobs { store }
    }

    /// `blobs/sha256`, where strata's own blobs go.
    pub fn dir(&self) -> PathBuf {
        self.dir_for(Algorithm::Sha256)
    }

    /// `blobs/<algorithm>`.
    pub fn dir_for(&self, algorithm: Algorithm) -> PathBuf {
        self.store.root().join("blobs").join(algorithm.name())
    }

    /// Where a blob lives (whether or not it exists): `blobs/<algorithm>/<hex>`.
    pub fn path(&self, digest: &Digest) -> PathBuf {
        self.dir_for(digest.algorithm()).join(digest.hex())
    }

    /// Every blob file name under `blobs/sha256` and `blobs/sha512` that is a valid digest,
    /// sorted; other names are returned separately. A missing `blobs/sha512` holds nothing.
    pub fn list(&self) -> Result<(Vec<Digest>, Vec<PathBuf>)> {
        let mut digests = Vec::new();
        let mut strays = Vec::new();
        for algorithm in Algorithm::ALL {
            let dir = self.dir_for(algorithm);
            let entries = match fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) if e.kind() == io::ErrorKind::NotFound && algorithm != Algorithm::Sha256 => {
                    continue;
                }
                Err(e) => return Err(io_err(&dir)(e)),
            };
            for entry in entries {
                let entry = entry.map_err(io_err(&dir))?;
                let name = entry.file_name();
                match name.to_str().map(|hex| Digest::from_parts(algorithm, hex)) {
                    Some(Ok(digest)) => digests.push(digest),
                    _ => strays.push(entry.path()),
                }
            }
        }
        digests.sort();
        strays.sort();
        Ok((digests, strays))
    }

    /// A writer for a new blob, hashing with sha256. See [`BlobWriter::commit`].
    pub fn writer(&self) -> Result<BlobWriter> {
        BlobWriter::new(self.store, Algorithm::Sha256)
    }

    /// A writer for a new blob whose digest will be of `algorithm` (a pull or an upload that
    /// names its `sha512:` digest up front). See [`BlobWriter::commit`].
    pub fn writer_for(&self, algorithm: Algorithm) -> Result<BlobWriter> {
        BlobWriter::new(self.store, algorithm)
    }

    /// Store `bytes` as a blob (a no-op when it is already present) and return its sha256 digest
    /// and size.
    pub fn put(&self, bytes: &[u8]) -> Result<BlobInfo> {
        self.put_as(bytes, Algorithm::Sha256)
    }

    /// Store `bytes` as a blob under its `algorithm` digest (a no-op when already present).
    pub fn put_as(&self, bytes: &[u8], algorithm: Algorithm) -> Result<BlobInfo> {
        let digest = Digest::of_with(algorithm, bytes);
        if self.has(&digest) {
            return Ok(BlobInfo {
                digest,
                size: bytes.len() as u64,
            });
        }
        let mut writer = self.writer_for(algorithm)?;
        writer
            .write_all(bytes)
            .map_err(io_err(self.path(&digest)))?;
        writer.commit(Some(&digest))
    }

    /// True when the blob is present (its content is not checked).
    pub fn has(&self, digest: &Digest) -> bool {
        self.path(digest).is_file()
    }

    /// The size of a stored blob.
    pub fn size(&self, digest: &Digest) -> Result<u64> {
        let path = self.path(digest);
        match fs::metadata(&path) {
            Ok(meta) => Ok(meta.len()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(Error::BlobNotFound(digest.clone()))
            }
            Err(e) => Err(io_err(path)(e)),
        }
    }

    /// Open a blob for reading; the reader checks the digest at EOF.
    pub fn open(&self, digest: &Digest) -> Result<VerifyingReader<File>> {
        let path = self.path(digest);
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(Error::BlobNotFound(digest.clone()));
            }
            Err(e) => return Err(io_err(path)(e)),
        };
        let size = file.metadata().map_err(io_err(&path))?.len();
        Ok(VerifyingReader::new(file, digest.clone(), Some(size)))
    }

    /// Read a whole blob into memory, checking its digest.
    pub fn read(&self, digest: &Digest) -> Result<Vec<u8>> {
        let mut reader = self.open(digest)?;
        let mut bytes = Vec::new();
        reader
            .read_to_end(&mut bytes)
            .map_err(crate::error::stream_err(format!("reading blob {digest}")))?;
        Ok(bytes)
    }

    /// Read a blob described by `descriptor`, checking digest and declared size.
    pub fn read_descriptor(&self, descriptor: &Descriptor) -> Result<Vec<u8>> {
        let digest = Digest::from_oci(descriptor.digest())?;
        let bytes = self.read(&digest)?;
        if bytes.len() as u64 != descriptor.size() {
            return Err(Error::SizeMismatch {
                digest,
                expected: descriptor.size(),
                actual: bytes.len() as u64,
            });
        }
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::init(dir.path().join("store")).unwrap();
        (dir, store)
    }

    #[test]
    fn put_and_read_back() {
        let (_dir, store) = store();
        let info = store.blobs().put(b"hello").unwrap();
        assert_eq!(info.digest, Digest::of(b"hello"));
        assert_eq!(info.size, 5);
        assert!(store.blobs().has(&info.digest));
        assert_eq!(store.blobs().size(&info.digest).unwrap(), 5);
        assert_eq!(store.blobs().read(&info.digest).unwrap(), b"hello");
        let path = store.blobs().path(&info.digest);
        assert!(path.ends_with(format!("blobs/sha256/{}", info.digest.hex())));
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644);
        // Writing the same blob again is a no-op.
        assert_eq!(store.blobs().put(b"hello").unwrap(), info);
    }

    #[test]
    fn streaming_writer_checks_expected_digest() {
        let (_dir, store) = store();
        let mut w = store.blobs().writer().unwrap();
        w.write_all(b"abc").unwrap();
        let wrong = Digest::of(b"abd");
        let err = w.commit(Some(&wrong)).unwrap_err();
        assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
        assert!(!store.blobs().has(&Digest::of(b"abc")));
        assert!(!store.blobs().has(&wrong));
        // No temp file left behind.
        assert_eq!(fs::read_dir(store.tmp_dir()).unwrap().count(), 0);

        let mut w = store.blobs().writer().unwrap();
        w.write_all(b"abc").unwrap();
        assert_eq!(w.size(), 3);
        let info = w.commit(Some(&Digest::of(b"abc"))).unwrap();
        assert!(store.blobs().has(&info.digest));
    }

    #[test]
    fn dropped_writer_leaves_nothing() {
        let (_dir, store) = store();
        let mut w = store.blobs().writer().unwrap();
        w.write_all(b"partial").unwrap();
        drop(w);
        assert_eq!(fs::read_dir(store.tmp_dir()).unwrap().count(), 0);
        assert_eq!(fs::read_dir(store.blobs().dir()).unwrap().count(), 0);
    }

    #[test]
    fn a_parked_writer_resumes_and_drops_clean() {
        let (_dir, store) = store();
        let mut w = store.blobs().writer().unwrap();
        w.write_all(b"hello ").unwrap();
        let parked = w.park().unwrap();
        assert_eq!(parked.size(), 6);
        let mut w = parked.resume(&store).unwrap();
        w.write_all(b"world").unwrap();
        let info = w.commit(Some(&Digest::of(b"hello world"))).unwrap();
        assert_eq!(store.blobs().read(&info.digest).unwrap(), b"hello world");
        let mut w = store.blobs().writer().unwrap();
        w.write_all(b"partial").unwrap();
        drop(w.park().unwrap());
        assert_eq!(fs::read_dir(store.tmp_dir()).unwrap().count(), 0);
    }

    #[test]
    fn sha512_blobs_are_stored_under_their_own_directory_and_verified() {
        let (_dir, store) = store();
        let digest = Digest::of_with(Algorithm::Sha512, b"hello world");
        // A sha256 writer (a chunked upload) committed under a sha512 digest: hashed again.
        let mut w = store.blobs().writer().unwrap();
        w.write_all(b"hello ").unwrap();
        let mut w = w.park().unwrap().resume(&store).unwrap();
        w.write_all(b"world").unwrap();
        let info = w.commit(Some(&digest)).unwrap();
        assert_eq!(info.digest, digest);
        let path = store.blobs().path(&digest);
        assert!(
            path.ends_with(format!("blobs/sha512/{}", digest.hex())),
            "{path:?}"
        );
        assert_eq!(store.blobs().read(&digest).unwrap(), b"hello world");
        assert!(!store.blobs().has(&Digest::of(b"hello world")));
        // The wrong content under a sha512 digest is refused, whichever way it is hashed.
        for algorithm in Algorithm::ALL {
            let mut w = store.blobs().writer_for(algorithm).unwrap();
            w.write_all(b"hello there").unwrap();
            let err = w.commit(Some(&digest)).unwrap_err();
            assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
        }
        assert_eq!(
            store
                .blobs()
                .put_as(b"hello world", Algorithm::Sha512)
                .unwrap(),
            info
        );
        // Reads check sha512 content too.
        fs::write(&path, b"evil world!").unwrap();
        let err = store.blobs().read(&digest).unwrap_err();
        assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
    }

    #[test]
    fn reads_detect_corruption() {
        let (_dir, store) = store();
        let info = store.blobs().put(b"good content").unwrap();
        fs::write(store.blobs().path(&info.digest), b"evil content").unwrap();
        let err = store.blobs().read(&info.digest).unwrap_err();
        match err {
            Error::DigestMismatch { expected, actual } => {
                assert_eq!(expected, info.digest);
                assert_eq!(actual, Digest::of(b"evil content"));
            }
            other => panic!("unexpected {other}"),
        }
        // The streaming reader errors at EOF, not before.
        let mut r = store.blobs().open(&info.digest).unwrap();
        let mut first = [0u8; 4];
        r.read_exact(&mut first).unwrap();
        let mut rest = Vec::new();
        let err = r.read_to_end(&mut rest).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn verifying_reader_checks_size() {
        let d = Digest::of(b"abc");
        let mut r = VerifyingReader::new(&b"abc"[..], d.clone(), Some(2));
        assert!(r.read_to_end(&mut Vec::new()).is_err());
        let mut r = VerifyingReader::new(&b"abc"[..], d.clone(), Some(3));
        r.read_to_end(&mut Vec::new()).unwrap();
        assert!(r.is_verified());
        let r = VerifyingReader::new(&b"abc"[..], d, None);
        r.finish().unwrap();
    }

    #[test]
    fn missing_blob_is_named() {
        let (_dir, store) = store();
        let d = Digest::of(b"nothing");
        let err = store.blobs().open(&d).err().unwrap();
        assert!(err.to_string().contains(&d.to_string()), "{err}");
        assert!(matches!(
            store.blobs().size(&d),
            Err(Error::BlobNotFound(_))
        ));
    }
}
