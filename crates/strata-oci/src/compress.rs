//! Layer compression: gzip (default, no mtime or file name in its header), zstd, or none; and
//! detection of a stream's compression by its magic bytes.

use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::str::FromStr;

use flate2::bufread::MultiGzDecoder;
use oci_spec::image::MediaType;
use sha2::Digest as _;

/// How a layer is compressed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Compression {
    /// Plain tar (`application/vnd.oci.image.layer.v1.tar`).
    None,
    /// gzip (`...tar+gzip`), the default: every tool reads it.
    #[default]
    Gzip,
    /// zstd (`...tar+zstd`): about 3x faster to write than gzip here.
    Zstd,
}

/// gzip level used for layers: libdeflate's 4. On the real Debian chain's layers it writes 1.6% to
/// 3.7% less than zlib's default level 6 (what strata wrote before), in half the time; libdeflate's
/// own 6 would save 1-2% more for 1.35x the time.
pub const GZIP_LEVEL: i32 = 4;
/// zstd level used for layers (zstd's default).
pub const ZSTD_LEVEL: i32 = 3;

/// Bytes of a chunk tried at level 1 to tell whether deflating it is worth it.
const SAMPLE: usize = 64 * 1024;

/// True when a level-1 deflate of the chunk's first [`SAMPLE`] bytes saves less than 3%.
fn incompressible(chunk: &[u8]) -> bool {
    if chunk.len() < SAMPLE {
        return false;
    }
    let sample = &chunk[..SAMPLE];
    deflate_gzip(sample, 1)
        .map(|out| out.len() * 100 > sample.len() * 97)
        .unwrap_or(false)
}

impl Compression {
    /// The OCI layer media type for this compression.
    pub fn media_type(self) -> MediaType {
        match self {
            Compression::None => MediaType::ImageLayer,
            Compression::Gzip => MediaType::ImageLayerGzip,
            Compression::Zstd => MediaType::ImageLayerZstd,
        }
    }

    /// The compression a layer media type implies (OCI and Docker types), if known.
    pub fn from_media_type(media_type: &MediaType) -> Option<Compression> {
        match media_type.to_string().as_str() {
            "application/vnd.oci.image.layer.v1.tar"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar" => Some(Compression::None),
            "application/vnd.oci.image.layer.v1.tar+gzip"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
            | "application/vnd.docker.image.rootfs.diff.tar.gzip"
            | "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" => {
                Some(Compression::Gzip)
            }
            "application/vnd.oci.image.layer.v1.tar+zstd"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd" => {
                Some(Compression::Zstd)
            }
            _ => None,
        }
    }

    /// Guess from the first bytes of a stream: gzip `1f 8b`, zstd `28 b5 2f fd`, else none.
    pub fn detect(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        })
    }
}

/// A compression name [`Compression`] does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown compression {0:?} (expected gzip, zstd or none)")]
pub struct UnknownCompression(pub String);

impl FromStr for Compression {
    type Err = UnknownCompression;

    fn from_str(s: &str) -> Result<Self, UnknownCompression> {
        match s {
            "none" | "uncompressed" => Ok(Compression::None),
            "gzip" => Ok(Compression::Gzip),
            "zstd" => Ok(Compression::Zstd),
            other => Err(UnknownCompression(other.to_string())),
        }
    }
}

/// A compressing writer; [`Encoder::finish`] writes the trailer and returns the sink.
pub enum Encoder<W: Write> {
    /// Pass-through.
    None(W),
    /// gzip, header without mtime or file name (see [`ChunkedGzip`]).
    Gzip(ChunkedGzip<W>),
    /// zstd, single-threaded (the output does not depend on the machine).
    Zstd(zstd::Encoder<'static, W>),
}

impl<W: Write> Encoder<W> {
    /// Start compressing into `sink`.
    pub fn new(sink: W, compression: Compression) -> io::Result<Encoder<W>> {
        Ok(match compression {
            Compression::None => Encoder::None(sink),
            Compression::Gzip => Encoder::Gzip(ChunkedGzip::new(sink, default_threads())),
            Compression::Zstd => Encoder::Zstd(zstd::Encoder::new(sink, ZSTD_LEVEL)?),
        })
    }

    /// Start compressing a layer into `sink`: as [`Encoder::new`], and gzip members are looked up
    /// in and reported for the store's `memo` ([`crate::member_memo`]).
    pub fn with_memo(
        sink: W,
        compression: Compression,
        memo: crate::member_memo::MemberMemo,
    ) -> io::Result<Encoder<W>> {
        Ok(match Encoder::new(sink, compression)? {
            Encoder::Gzip(gzip) => Encoder::Gzip(gzip.with_memo(memo)),
            other => other,
        })
    }

    /// Finish the stream and return the sink.
    pub fn finish(self) -> io::Result<W> {
        self.finish_members().map(|(sink, _)| sink)
    }

    /// [`Encoder::finish`], with the gzip members to remember (none for zstd or none).
    pub fn finish_members(self) -> io::Result<(W, MemberReport)> {
        match self {
            Encoder::None(w) => Ok((w, MemberReport::default())),
            Encoder::Gzip(e) => e.finish_members(),
            Encoder::Zstd(e) => Ok((e.finish()?, MemberReport::default())),
        }
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Encoder::None(w) => w.write(buf),
            Encoder::Gzip(e) => e.write(buf),
            Encoder::Zstd(e) => e.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Encoder::None(w) => w.flush(),
            Encoder::Gzip(e) => e.flush(),
            Encoder::Zstd(e) => e.flush(),
        }
    }
}

/// Smallest uncompressed chunk of a gzip member written by [`ChunkedGzip`] (but the last).
pub const GZIP_MEMBER_MIN: usize = 512 * 1024;
/// Average uncompressed chunk of a gzip member written by [`ChunkedGzip`].
pub const GZIP_MEMBER_AVG: usize = 1 << 20;
/// Largest uncompressed chunk of a gzip member written by [`ChunkedGzip`].
pub const GZIP_MEMBER_MAX: usize = 2 << 20;

/// Worker threads for gzip: the machine's parallelism, at most 4.
fn default_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(4)
}

/// One complete gzip member of `chunk`, as every layer member is written: mtime 0, no file name,
/// OS "unknown", level [`GZIP_LEVEL`] (stored when the chunk is incompressible).
///
/// libdeflate rather than flate2's zlib-rs: it compresses a whole buffer at once, which a member
/// is, and at level 6 took 1.35-1.6x less time than zlib-rs's 6 and wrote 3.6-5.1% less (the real
/// chain's base and httpd-php layers, 1 MiB members, one core).
pub(crate) fn gzip_member(chunk: &[u8]) -> io::Result<Vec<u8>> {
    // Incompressible data (already-compressed payloads, random bytes) is stored rather than
    // deflated: a level-1 trial on a sample decides, from the chunk's bytes alone, so the output
    // still depends only on the input. Deflating such data costs most of a cold build's time and
    // saves nothing.
    let level = if incompressible(chunk) { 0 } else { GZIP_LEVEL };
    deflate_gzip(chunk, level)
}

/// `data` as one gzip member at libdeflate `level` (0 stores).
fn deflate_gzip(data: &[u8], level: i32) -> io::Result<Vec<u8>> {
    let level = libdeflater::CompressionLvl::new(level)
        .map_err(|e| io::Error::other(format!("gzip level {level}: {e:?}")))?;
    let mut compressor = libdeflater::Compressor::new(level);
    let mut out = vec![0; compressor.gzip_compress_bound(data.len())];
    let written = compressor
        .gzip_compress(data, &mut out)
        .map_err(|e| io::Error::other(format!("gzip: {e:?}")))?;
    out.truncate(written);
    Ok(out)
}

/// The length of the first content-defined chunk of `data` (FastCDC, 2020): all of it when it is
/// no longer than [`GZIP_MEMBER_MIN`], never more than [`GZIP_MEMBER_MAX`].
fn cut_point(data: &[u8]) -> usize {
    // The constants are within fastcdc's limits (min <= 1 MiB, avg <= 4 MiB, max <= 16 MiB).
    let chunker = fastcdc::v2020::FastCDC::new(
        data,
        GZIP_MEMBER_MIN as u32,
        GZIP_MEMBER_AVG as u32,
        GZIP_MEMBER_MAX as u32,
    );
    chunker.cut(0, data.len()).1
}

/// A member compressed (or found in the memo) on a worker thread.
struct Produced {
    member: Vec<u8>,
    /// The memo key and the member's sha256, for chunks the memo handles.
    memo: Option<([u8; 32], [u8; 32])>,
    /// Uncompressed bytes, when the member came from the memo.
    reused: u64,
}

/// gzip in parallel, deterministically: the input is cut into content-defined chunks (FastCDC,
/// [`GZIP_MEMBER_MIN`]..[`GZIP_MEMBER_MAX`] bytes, about [`GZIP_MEMBER_AVG`]), each compressed on a
/// worker thread into a complete gzip member (mtime 0, no file name, OS "unknown"), and the
/// members are written in order. RFC 1952 allows concatenated members and every gzip reader (Go's,
/// zlib's, GNU gzip) reads them as one stream. The output depends only on the input, never on the
/// number of threads, nor on the memo: cut points depend on the bytes around them, so a run of
/// bytes an earlier layer had gives the same chunks, whose members a [`MemberMemo`] finds again
/// instead of compressing them (see [`crate::member_memo`]).
///
/// [`MemberMemo`]: crate::member_memo::MemberMemo
pub struct ChunkedGzip<W: Write> {
    sink: W,
    threads: usize,
    chunk: Vec<u8>,
    in_flight: std::collections::VecDeque<std::thread::JoinHandle<io::Result<Produced>>>,
    members: u64,
    memo: Option<std::sync::Arc<crate::member_memo::MemberMemo>>,
    /// Bytes written to the sink so far: the next member's offset.
    written: u64,
    records: Vec<crate::member_memo::MemberRecord>,
    reused: u64,
}

/// What [`ChunkedGzip::finish_members`] gives besides the sink.
#[derive(Debug, Default)]
pub struct MemberReport {
    /// The members the memo should remember (chunks of at least [`crate::member_memo::MEMO_MIN`]).
    pub records: Vec<crate::member_memo::MemberRecord>,
    /// Uncompressed bytes whose member was found in the memo rather than compressed.
    pub reused: u64,
}

impl<W: Write> ChunkedGzip<W> {
    /// Compress into `sink` with up to `threads` workers (1: compress inline).
    pub fn new(sink: W, threads: usize) -> ChunkedGzip<W> {
        ChunkedGzip {
            sink,
            threads: threads.max(1),
            chunk: Vec::with_capacity(GZIP_MEMBER_MAX),
            in_flight: std::collections::VecDeque::new(),
            members: 0,
            memo: None,
            written: 0,
            records: Vec::new(),
            reused: 0,
        }
    }

    /// Also look chunks up in `memo`, and report the members to remember there.
    pub fn with_memo(mut self, memo: crate::member_memo::MemberMemo) -> ChunkedGzip<W> {
        self.memo = Some(std::sync::Arc::new(memo));
        self
    }

    fn produce(
        chunk: &[u8],
        memo: Option<&crate::member_memo::MemberMemo>,
    ) -> io::Result<Produced> {
        let Some(memo) = memo.filter(|_| chunk.len() >= crate::member_memo::MEMO_MIN) else {
            return Ok(Produced {
                member: gzip_member(chunk)?,
                memo: None,
                reused: 0,
            });
        };
        let key = crate::member_memo::MemberMemo::key(chunk);
        // A member found was hashed as it was checked; a new one is hashed for its record.
        let (member, sha, reused) = match memo.find(&key, chunk) {
            Some((member, sha)) => (member, sha, chunk.len() as u64),
            None => {
                let member = gzip_member(chunk)?;
                let sha = sha2::Sha256::digest(&member).into();
                (member, sha, 0)
            }
        };
        Ok(Produced {
            member,
            memo: Some((key, sha)),
            reused,
        })
    }

    /// Send the first `len` buffered bytes off as one member.
    fn dispatch(&mut self, len: usize) -> io::Result<()> {
        let rest = self.chunk.split_off(len);
        let chunk = std::mem::replace(&mut self.chunk, rest);
        self.members += 1;
        if self.threads == 1 {
            let produced = Self::produce(&chunk, self.memo.as_deref())?;
            return self.emit(produced);
        }
        while self.in_flight.len() >= self.threads {
            self.write_oldest()?;
        }
        let memo = self.memo.clone();
        self.in_flight.push_back(std::thread::spawn(move || {
            Self::produce(&chunk, memo.as_deref())
        }));
        Ok(())
    }

    fn emit(&mut self, produced: Produced) -> io::Result<()> {
        self.sink.write_all(&produced.member)?;
        let length = produced.member.len() as u64;
        if let Some((key, sha256)) = produced.memo {
            self.records.push(crate::member_memo::MemberRecord {
                key,
                offset: self.written,
                length,
                sha256,
            });
        }
        self.written += length;
        self.reused += produced.reused;
        Ok(())
    }

    fn write_oldest(&mut self) -> io::Result<()> {
        if let Some(handle) = self.in_flight.pop_front() {
            let produced = handle
                .join()
                .map_err(|_| io::Error::other("a gzip worker thread panicked"))??;
            self.emit(produced)?;
        }
        Ok(())
    }

    /// Compress what is buffered, write every member in order and return the sink. Empty input
    /// still gives one (empty) member, so the result is always a valid gzip stream.
    pub fn finish(self) -> io::Result<W> {
        self.finish_members().map(|(sink, _)| sink)
    }

    /// [`ChunkedGzip::finish`], with the members to remember and the bytes the memo saved.
    pub fn finish_members(mut self) -> io::Result<(W, MemberReport)> {
        while !self.chunk.is_empty() {
            let cut = cut_point(&self.chunk);
            self.dispatch(cut)?;
        }
        if self.members == 0 {
            self.dispatch(0)?;
        }
        while !self.in_flight.is_empty() {
            self.write_oldest()?;
        }
        let report = MemberReport {
            records: std::mem::take(&mut self.records),
            reused: self.reused,
        };
        Ok((self.sink, report))
    }
}

impl<W: Write> Write for ChunkedGzip<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let room = GZIP_MEMBER_MAX - self.chunk.len();
        let n = buf.len().min(room);
        self.chunk.extend_from_slice(&buf[..n]);
        if self.chunk.len() == GZIP_MEMBER_MAX {
            // A full window: the cut point depends only on these bytes.
            let cut = cut_point(&self.chunk);
            self.dispatch(cut)?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        // Members are only cut at content-defined points (determinism); flush what is complete.
        while !self.in_flight.is_empty() {
            self.write_oldest()?;
        }
        self.sink.flush()
    }
}

/// A decompressing reader whose compression was detected from the stream's magic bytes.
pub enum Decoder<R: Read> {
    /// Uncompressed.
    None(BufReader<R>),
    /// gzip (multi-member).
    Gzip(Box<MultiGzDecoder<BufReader<R>>>),
    /// zstd.
    Zstd(zstd::Decoder<'static, BufReader<R>>),
}

impl<R: Read> Decoder<R> {
    /// Peek at the first bytes of `reader` and decompress accordingly.
    pub fn detect(reader: R) -> io::Result<Decoder<R>> {
        let mut buffered = BufReader::with_capacity(128 * 1024, reader);
        let head = buffered.fill_buf()?;
        Ok(match Compression::detect(head) {
            Compression::None => Decoder::None(buffered),
            Compression::Gzip => Decoder::Gzip(Box::new(MultiGzDecoder::new(buffered))),
            Compression::Zstd => Decoder::Zstd(zstd::Decoder::with_buffer(buffered)?),
        })
    }

    /// The compression detected.
    pub fn compression(&self) -> Compression {
        match self {
            Decoder::None(_) => Compression::None,
            Decoder::Gzip(_) => Compression::Gzip,
            Decoder::Zstd(_) => Compression::Zstd,
        }
    }

    /// The underlying reader (bytes it buffered are dropped).
    pub fn into_inner(self) -> R {
        match self {
            Decoder::None(r) => r.into_inner(),
            Decoder::Gzip(d) => (*d).into_inner().into_inner(),
            Decoder::Zstd(d) => d.finish().into_inner(),
        }
    }
}

impl<R: Read> Read for Decoder<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Decoder::None(r) => r.read(buf),
            Decoder::Gzip(d) => d.read(buf),
            Decoder::Zstd(d) => d.read(buf),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(compression: Compression) -> Vec<u8> {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let mut enc = Encoder::new(Vec::new(), compression).unwrap();
        enc.write_all(&data).unwrap();
        let compressed = enc.finish().unwrap();
        let mut dec = Decoder::detect(compressed.as_slice()).unwrap();
        assert_eq!(dec.compression(), compression);
        let mut out = Vec::new();
        dec.read_to_end(&mut out).unwrap();
        assert_eq!(out, data);
        compressed
    }

    #[test]
    fn roundtrips_and_detects() {
        roundtrip(Compression::None);
        let gz = roundtrip(Compression::Gzip);
        // gzip header: magic, deflate, no flags (no file name), mtime 0.
        assert_eq!(&gz[..8], &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0]);
        let zst = roundtrip(Compression::Zstd);
        assert_eq!(&zst[..4], &[0x28, 0xb5, 0x2f, 0xfd]);
    }

    #[test]
    fn chunked_gzip_is_independent_of_threads_and_readable_by_gzip() {
        let data: Vec<u8> = (0..(3 * GZIP_MEMBER_MAX + 12345) as u64)
            .map(|i| ((i * 7919) % 251) as u8 ^ (i >> 13) as u8)
            .collect();
        let compress = |threads| {
            let mut gz = ChunkedGzip::new(Vec::new(), threads);
            for piece in data.chunks(100_000) {
                gz.write_all(piece).unwrap();
            }
            gz.finish().unwrap()
        };
        let one = compress(1);
        assert_eq!(compress(2), one);
        assert_eq!(compress(4), one);
        let mut out = Vec::new();
        Decoder::detect(one.as_slice())
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, data);
        // GNU gzip agrees.
        let mut child = std::process::Command::new("gzip")
            .arg("-dc")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let input = one.clone();
        let feeder = std::thread::spawn(move || stdin.write_all(&input).unwrap());
        let output = child.wait_with_output().unwrap();
        feeder.join().unwrap();
        assert!(output.status.success());
        assert_eq!(output.stdout, data);
        // Empty input is still a valid gzip stream.
        let empty = ChunkedGzip::new(Vec::new(), 2).finish().unwrap();
        let mut out = Vec::new();
        Decoder::detect(empty.as_slice())
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        assert!(out.is_empty());
    }

    /// Text-like bytes that differ everywhere (so chunks are never equal by accident).
    fn text(len: usize, seed: u64) -> Vec<u8> {
        let mut out = Vec::with_capacity(len + 64);
        let mut i = seed;
        while out.len() < len {
            i += 1;
            out.extend_from_slice(
                format!("/usr/share/doc/pkg{}/file{} {}\n", i % 977, i, i * 31).as_bytes(),
            );
        }
        out.truncate(len);
        out
    }

    /// The members of a [`ChunkedGzip`] stream, found by decoding them one at a time.
    fn members(stream: &[u8]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut rest = stream;
        while !rest.is_empty() {
            let mut decoder = flate2::bufread::GzDecoder::new(rest);
            std::io::copy(&mut decoder, &mut std::io::sink()).unwrap();
            let left = decoder.into_inner().len();
            out.push(rest[..rest.len() - left].to_vec());
            rest = &rest[rest.len() - left..];
        }
        out
    }

    #[test]
    fn members_are_cut_by_content_so_an_insertion_changes_only_its_own() {
        let data = text(12 << 20, 0);
        let mut inserted = b"a new file near the start\n".to_vec();
        inserted.extend_from_slice(&data);
        let compress = |bytes: &[u8]| {
            let mut gz = ChunkedGzip::new(Vec::new(), 2);
            gz.write_all(bytes).unwrap();
            gz.finish().unwrap()
        };
        let before = members(&compress(&data));
        let after = members(&compress(&inserted));
        assert!(before.len() >= 6, "{} members", before.len());
        let unchanged = after.iter().filter(|m| before.contains(m)).count();
        // Fixed-size chunks would shift every member after the insertion; content-defined ones
        // change only the first.
        assert!(
            unchanged + 1 >= after.len(),
            "{unchanged} of {} members kept",
            after.len()
        );
        for member in &before[..before.len() - 1] {
            let mut chunk = Vec::new();
            flate2::read::GzDecoder::new(&member[..])
                .read_to_end(&mut chunk)
                .unwrap();
            assert!(
                (GZIP_MEMBER_MIN..=GZIP_MEMBER_MAX).contains(&chunk.len()),
                "{}",
                chunk.len()
            );
        }
    }

    #[test]
    fn incompressible_chunks_are_stored_and_still_read_back() {
        // A xorshift stream: incompressible, reproducible.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let random: Vec<u8> = (0..3 * 1024 * 1024)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        assert!(incompressible(&random[..1024 * 1024]));
        assert!(!incompressible(&vec![b'a'; 1024 * 1024]));
        let mut gz = ChunkedGzip::new(Vec::new(), 2);
        gz.write_all(&random).unwrap();
        let out = gz.finish().unwrap();
        // Stored blocks: a few bytes of framing per 64 KiB, never a real shrink.
        assert!(out.len() >= random.len() && out.len() < random.len() + random.len() / 100);
        let mut back = Vec::new();
        flate2::read::MultiGzDecoder::new(&out[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, random);
    }

    #[test]
    fn output_is_deterministic() {
        assert_eq!(roundtrip(Compression::Gzip), roundtrip(Compression::Gzip));
        assert_eq!(roundtrip(Compression::Zstd), roundtrip(Compression::Zstd));
    }

    #[test]
    fn names_and_media_types() {
        for c in [Compression::None, Compression::Gzip, Compression::Zstd] {
            assert_eq!(c.to_string().parse::<Compression>().unwrap(), c);
            assert_eq!(Compression::from_media_type(&c.media_type()), Some(c));
        }
        assert!("lz4".parse::<Compression>().is_err());
        assert_eq!(Compression::default(), Compression::Gzip);
    }
}
