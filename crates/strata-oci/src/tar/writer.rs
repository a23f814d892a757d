//! The deterministic tar writer, and the layer writer that streams it into the store.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use ::tar::{EntryType, Header};
use oci_spec::image::Descriptor;

use super::{Content, Entry, EntryKind, Metadata, layer_path, sort_entries};
use crate::blob::BlobWriter;
use crate::compress::{Compression, Encoder};
use crate::digest::{Digest, HashingWriter};
use crate::error::{Error, Result, io_err, stream_err};
use crate::fsindex::{HeaderRecord, NodeKind};
use crate::layout::Store;

const BLOCK: usize = 512;
/// Largest value an 8-byte octal ustar field holds (uid, gid).
const MAX_OCTAL_8: u64 = 0o7_777_777;
/// Largest value a 12-byte octal ustar field holds (size, mtime).
const MAX_OCTAL_12: u64 = 0o77_777_777_777;
/// ustar name and linkname fields hold 100 bytes.
const MAX_NAME: usize = 100;

/// Writes a tar archive deterministically: ustar headers with the given metadata, empty user and
/// group names, mtimes clamped to `source_date_epoch`, no atime/ctime, PAX records only for long
/// names or link targets, large ids, sizes or times, and xattrs. Entries must come in sorted
/// order (see [`super::sort_entries`]); a hard link's target must come before it.
pub struct TarWriter<W: Write> {
    out: W,
    source_date_epoch: u64,
    last: Option<PathBuf>,
    files: HashSet<PathBuf>,
    entries: u64,
    /// Each entry's header as [`crate::fsindex::read_headers`] reads it back.
    headers: Vec<HeaderRecord>,
}

impl<W: Write> TarWriter<W> {
    /// Write to `out`, clamping mtimes to `source_date_epoch`.
    pub fn new(out: W, source_date_epoch: u64) -> TarWriter<W> {
        TarWriter {
            out,
            source_date_epoch,
            last: None,
            files: HashSet::new(),
            entries: 0,
            headers: Vec::new(),
        }
    }

    /// The headers written so far, as [`crate::fsindex::read_headers`] would read them back
    /// from the archive.
    pub fn headers(&self) -> &[HeaderRecord] {
        &self.headers
    }

    /// Entries written so far.
    pub fn entries(&self) -> u64 {
        self.entries
    }

    /// Append one entry. Its path must sort after the previous entry's.
    pub fn append(&mut self, entry: &Entry) -> Result<()> {
        match &entry.kind {
            EntryKind::File(Content::Bytes(bytes)) => self.append_file(
                &entry.path,
                &entry.meta,
                bytes.len() as u64,
                &mut &bytes[..],
            ),
            EntryKind::File(Content::Path(source)) => {
                let mut file = File::open(source).map_err(io_err(source))?;
                let size = file.metadata().map_err(io_err(source))?.len();
                self.append_file(&entry.path, &entry.meta, size, &mut file)
            }
            kind => {
                let path = self.next_path(&entry.path)?;
                let (ty, link, device) = match kind {
                    EntryKind::Dir => (EntryType::Directory, None, None),
                    EntryKind::Symlink(target) => (
                        EntryType::Symlink,
                        Some(target.as_os_str().as_bytes().to_vec()),
                        None,
                    ),
                    EntryKind::Hardlink(target) => {
                        let target = layer_path(target)?;
                        if !self.files.contains(&target) {
                            return Err(Error::LayerEntry {
                                path: entry.path.display().to_string(),
                                reason: format!(
                                    "hard link target {} is not an earlier file of this layer",
                                    target.display()
                                ),
                            });
                        }
                        (
                            EntryType::Link,
                            Some(target.as_os_str().as_bytes().to_vec()),
                            None,
                        )
                    }
                    EntryKind::CharDevice { major, minor } => {
                        (EntryType::Char, None, Some((*major, *minor)))
                    }
                    EntryKind::BlockDevice { major, minor } => {
                        (EntryType::Block, None, Some((*major, *minor)))
                    }
                    EntryKind::Fifo => (EntryType::Fifo, None, None),
                    EntryKind::File(_) => unreachable!("handled above"),
                };
                self.write_header(&path, ty, &entry.meta, 0, link.as_deref(), device)?;
                Ok(())
            }
        }
    }

    /// Append a regular file of exactly `size` bytes read from `reader`; fails when the reader
    /// yields fewer (a file that shrank while being read).
    pub fn append_file(
        &mut self,
        path: &Path,
        meta: &Metadata,
        size: u64,
        reader: &mut dyn Read,
    ) -> Result<()> {
        let name = self.next_path(path)?;
        self.write_header(&name, EntryType::Regular, meta, size, None, None)?;
        let context = || format!("writing {} into the layer", name.display());
        let copied =
            io::copy(&mut reader.take(size), &mut self.out).map_err(stream_err(context()))?;
        if copied != size {
            return Err(Error::LayerEntry {
                path: name.display().to_string(),
                reason: format!("expected {size} bytes, the source gave {copied} (did it change?)"),
            });
        }
        self.pad(size)?;
        self.files.insert(name);
        Ok(())
    }

    /// Write the end-of-archive marker and return the sink.
    pub fn finish(mut self) -> Result<W> {
        self.out
            .write_all(&[0u8; 2 * BLOCK])
            .map_err(stream_err("finishing the tar archive"))?;
        Ok(self.out)
    }

    /// Normalise `path`, check ordering, and remember it. Returns the normalised path.
    fn next_path(&mut self, path: &Path) -> Result<PathBuf> {
        let path = layer_path(path)?;
        if let Some(last) = &self.last
            && path <= *last
        {
            return Err(Error::LayerEntry {
                path: path.display().to_string(),
                reason: if path == *last {
                    "duplicate entry".into()
                } else {
                    format!(
                        "entries must be sorted by path; it comes after {}",
                        last.display()
                    )
                },
            });
        }
        self.last = Some(path.clone());
        self.entries += 1;
        Ok(path)
    }

    fn write_header(
        &mut self,
        path: &Path,
        ty: EntryType,
        meta: &Metadata,
        size: u64,
        link: Option<&[u8]>,
        device: Option<(u32, u32)>,
    ) -> Result<()> {
        let mut name = path.as_os_str().as_bytes().to_vec();
        if ty == EntryType::Directory {
            name.push(b'/');
        }
        let mut pax: Vec<(String, Vec<u8>)> = Vec::new();
        let mut header = Header::new_ustar();
        header.set_entry_type(ty);
        if name.len() > MAX_NAME {
            pax.push(("path".into(), name.clone()));
        }
        let field = &mut header.as_old_mut().name;
        let n = name.len().min(MAX_NAME);
        field[..n].copy_from_slice(&name[..n]);
        if let Some(link) = link {
            if link.len() > MAX_NAME {
                pax.push(("linkpath".into(), link.to_vec()));
            }
            let field = &mut header.as_old_mut().linkname;
            let n = link.len().min(MAX_NAME);
            field[..n].copy_from_slice(&link[..n]);
        }
        header.set_mode(meta.mode & 0o7777);
        for (key, value, set) in [
            ("uid", meta.uid, Header::set_uid as fn(&mut Header, u64)),
            ("gid", meta.gid, Header::set_gid),
        ] {
            if value > MAX_OCTAL_8 {
                pax.push((key.into(), value.to_string().into_bytes()));
                set(&mut header, 0);
            } else {
                set(&mut header, value);
            }
        }
        let mtime = meta.mtime.min(self.source_date_epoch);
        if mtime > MAX_OCTAL_12 {
            pax.push(("mtime".into(), mtime.to_string().into_bytes()));
            header.set_mtime(0);
        } else {
            header.set_mtime(mtime);
        }
        if size > MAX_OCTAL_12 {
            pax.push(("size".into(), size.to_string().into_bytes()));
            header.set_size(0);
        } else {
            header.set_size(size);
        }
        if let Some((major, minor)) = device {
            let err = |e: io::Error| Error::LayerEntry {
                path: path.display().to_string(),
                reason: format!("device number: {e}"),
            };
            header.set_device_major(major).map_err(err)?;
            header.set_device_minor(minor).map_err(err)?;
        }
        for (key, value) in &meta.xattrs {
            pax.push((format!("SCHILY.xattr.{key}"), value.clone()));
        }
        header.set_cksum();
        self.headers
            .push(header_record(&name, ty, meta, size, link));
        if !pax.is_empty() {
            self.write_pax(&pax)?;
        }
        self.out
            .write_all(header.as_bytes())
            .map_err(stream_err(format!("writing {}", path.display())))?;
        Ok(())
    }

    fn write_pax(&mut self, records: &[(String, Vec<u8>)]) -> Result<()> {
        let mut data = Vec::new();
        for (key, value) in records {
            // "<len> <key>=<value>\n", where <len> counts the whole record including itself.
            let rest = key.len() + value.len() + 3;
            let mut len = rest + 1;
            while rest + len.to_string().len() != len {
                len = rest + len.to_string().len();
            }
            data.extend_from_slice(format!("{len} {key}=").as_bytes());
            data.extend_from_slice(value);
            data.push(b'\n');
        }
        let mut header = Header::new_ustar();
        header.set_entry_type(EntryType::XHeader);
        let name = b"././@PaxHeader";
        header.as_old_mut().name[..name.len()].copy_from_slice(name);
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header.set_size(data.len() as u64);
        header.set_cksum();
        let err = stream_err("writing a PAX header");
        self.out
            .write_all(header.as_bytes())
            .and_then(|()| self.out.write_all(&data))
            .map_err(err)?;
        self.pad(data.len() as u64)
    }

    fn pad(&mut self, size: u64) -> Result<()> {
        let rem = (size % BLOCK as u64) as usize;
        if rem != 0 {
            self.out
                .write_all(&[0u8; BLOCK][..BLOCK - rem])
                .map_err(stream_err("padding the tar archive"))?;
        }
        Ok(())
    }
}

/// A written header as [`crate::fsindex::read_headers`] reads it: the full name, the link
/// target, and the metadata (PAX records applied, as the reader applies them).
fn header_record(
    name: &[u8],
    ty: EntryType,
    meta: &Metadata,
    size: u64,
    link: Option<&[u8]>,
) -> HeaderRecord {
    let link = || String::from_utf8_lossy(link.unwrap_or_default()).into_owned();
    let kind = match ty {
        EntryType::Directory => NodeKind::Dir,
        EntryType::Symlink => NodeKind::Symlink(link()),
        EntryType::Link => NodeKind::Hardlink(crate::fsindex::normalise(&link())),
        EntryType::Char => NodeKind::CharDevice,
        EntryType::Block => NodeKind::BlockDevice,
        EntryType::Fifo => NodeKind::Fifo,
        _ => NodeKind::File,
    };
    HeaderRecord {
        path: String::from_utf8_lossy(name).into_owned(),
        mode: meta.mode & 0o7777,
        uid: meta.uid,
        gid: meta.gid,
        size: if kind == NodeKind::File { size } else { 0 },
        kind,
    }
}

/// Options of a [`LayerWriter`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LayerOptions {
    /// How the layer blob is compressed (default gzip).
    pub compression: Compression,
    /// Entry mtimes later than this (seconds since the epoch) are clamped to it; default 0.
    pub source_date_epoch: u64,
}

/// A layer written to the store: its descriptor (compressed digest and size, media type) and its
/// diff_id (the digest of the uncompressed tar).
#[derive(Clone, Debug, PartialEq)]
pub struct Layer {
    /// The layer blob's descriptor, for the manifest.
    pub descriptor: Descriptor,
    /// The sha256 of the uncompressed tar, for the config's `rootfs.diff_ids`.
    pub diff_id: Digest,
    /// The uncompressed tar's size.
    pub uncompressed_size: u64,
    /// The number of entries written.
    pub entries: u64,
}

impl Layer {
    /// The compressed blob's digest.
    pub fn digest(&self) -> Digest {
        Digest::from_oci(self.descriptor.digest()).expect("layer digests are written by us")
    }
}

/// Where a layer's writing spent its time, measured around each stage of the pipeline (the
/// stages run interleaved in one pass; each figure is a stage's own time, its downstream stages'
/// time taken out).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LayerTimes {
    /// Making the tar stream: headers, and reading the files' content.
    pub tar: std::time::Duration,
    /// Hashing the uncompressed stream (the diff_id).
    pub hash: std::time::Duration,
    /// Compressing.
    pub compress: std::time::Duration,
    /// Writing the blob (with its digest) and committing it to the store (fsync, rename).
    pub store: std::time::Duration,
    /// Uncompressed bytes whose gzip member the store's memo gave back, so they were not
    /// compressed again ([`crate::member_memo`]).
    pub reused: u64,
}

/// A writer that adds up the time spent in its inner writer's calls.
struct Timed<W> {
    inner: W,
    spent: std::time::Duration,
}

impl<W> Timed<W> {
    fn new(inner: W) -> Self {
        Timed {
            inner,
            spent: std::time::Duration::ZERO,
        }
    }
}

impl<W: Write> Write for Timed<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let start = std::time::Instant::now();
        let n = self.inner.write(buf);
        self.spent += start.elapsed();
        n
    }

    fn flush(&mut self) -> io::Result<()> {
        let start = std::time::Instant::now();
        let r = self.inner.flush();
        self.spent += start.elapsed();
        r
    }
}

/// The compressing stage of the layer pipeline, timed with the blob writer after it.
type TimedEncoder = Timed<Encoder<Timed<BlobWriter>>>;

/// Streams a deterministic layer into the store: tar → (diff_id hash) → compression → blob
/// (digest hash), all in one pass.
pub struct LayerWriter {
    tar: TarWriter<Timed<HashingWriter<TimedEncoder>>>,
    /// Where the store caches layer headers ([`crate::layer_index`]).
    headers_dir: PathBuf,
    /// Where the store remembers gzip members ([`crate::member_memo`]).
    memo: crate::member_memo::MemberMemo,
    compression: Compression,
    started: std::time::Instant,
}

impl LayerWriter {
    /// Start a new layer in `store`.
    pub fn new(store: &Store, options: LayerOptions) -> Result<LayerWriter> {
        let started = std::time::Instant::now();
        let blob = store.blobs().writer()?;
        let memo = crate::member_memo::MemberMemo::for_store(store);
        let encoder = Encoder::with_memo(Timed::new(blob), options.compression, memo.clone())
            .map_err(stream_err("starting the layer compressor"))?;
        Ok(LayerWriter {
            tar: TarWriter::new(
                Timed::new(HashingWriter::new(Timed::new(encoder))),
                options.source_date_epoch,
            ),
            compression: options.compression,
            headers_dir: crate::layer_index::headers_dir(store),
            memo,
            started,
        })
    }

    /// Append an entry; entries must come sorted by path.
    pub fn append(&mut self, entry: &Entry) -> Result<()> {
        self.tar.append(entry)
    }

    /// Append a regular file of `size` bytes read from `reader`.
    pub fn append_file(
        &mut self,
        path: &Path,
        meta: &Metadata,
        size: u64,
        reader: &mut dyn Read,
    ) -> Result<()> {
        self.tar.append_file(path, meta, size, reader)
    }

    /// Sort `entries` by path and append them all.
    pub fn append_all(&mut self, mut entries: Vec<Entry>) -> Result<()> {
        sort_entries(&mut entries);
        entries.iter().try_for_each(|e| self.append(e))
    }

    /// Finish the tar and the compression, commit the blob, and describe the layer.
    pub fn finish(self) -> Result<Layer> {
        self.finish_timed().map(|(layer, _)| layer)
    }

    /// [`LayerWriter::finish`], with where the layer's writing spent its time.
    pub fn finish_timed(mut self) -> Result<(Layer, LayerTimes)> {
        let entries = self.tar.entries();
        let headers = std::mem::take(&mut self.tar.headers);
        let hashing = self.tar.finish()?;
        let in_hashing = hashing.spent;
        let (encoder, diff_id, uncompressed_size) = hashing.inner.finish();
        let in_encoder = encoder.spent;
        let start = std::time::Instant::now();
        let (blob, members) = encoder
            .inner
            .finish_members()
            .map_err(stream_err("finishing the layer compressor"))?;
        let finishing = start.elapsed();
        let in_blob = blob.spent;
        let start = std::time::Instant::now();
        let info = blob.inner.commit(None)?;
        // The headers are at hand: cached now, indexing the new layer (the next step's, the
        // next image's) needs no decompression of it.
        crate::layer_index::cache_headers(&self.headers_dir, &info.digest, &headers);
        self.memo.record(&info.digest, &members.records);
        let commit = start.elapsed();
        let total = self.started.elapsed();
        let encoder_total = in_encoder + finishing;
        let times = LayerTimes {
            tar: total.saturating_sub(in_hashing + finishing + commit),
            hash: in_hashing.saturating_sub(in_encoder),
            compress: encoder_total.saturating_sub(in_blob),
            store: in_blob + commit,
            reused: members.reused,
        };
        Ok((
            Layer {
                descriptor: info.descriptor(self.compression.media_type()),
                diff_id,
                uncompressed_size,
                entries,
            },
            times,
        ))
    }
}

impl Store {
    /// Start writing a layer into this store.
    pub fn layer_writer(&self, options: LayerOptions) -> Result<LayerWriter> {
        LayerWriter::new(self, options)
    }
}
