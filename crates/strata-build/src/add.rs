//! ADD's extra sources: URLs (downloaded, `--checksum` verified) and local archives (extracted).

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest as _, Sha256};

use crate::error::StepError;

/// The compression of a local file that ADD would unpack; None when the file is not an archive
/// ADD unpacks. Decided as BuildKit decides it: the compression by its magic bytes, then the
/// (decompressed) start must be a tar header with a valid checksum (V7 headers included). A
/// gzip or bzip2 file that holds no tar, or an empty stream, is copied as it is.
pub fn archive_kind(path: &Path) -> Option<ArchiveKind> {
    let mut magic = [0u8; 6];
    let n = read_full(&mut fs::File::open(path).ok()?, &mut magic)?;
    let magic = &magic[..n];
    let kind = if magic.starts_with(&[0x1f, 0x8b]) {
        ArchiveKind::Gzip
    } else if magic.starts_with(b"BZh") {
        ArchiveKind::Bzip2
    } else if magic.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        ArchiveKind::Xz
    } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        ArchiveKind::Zstd
    } else {
        ArchiveKind::Tar
    };
    let file = fs::File::open(path).ok()?;
    let mut reader: Box<dyn Read> = match kind {
        ArchiveKind::Tar => Box::new(file),
        ArchiveKind::Gzip => Box::new(flate2::read::MultiGzDecoder::new(file)),
        ArchiveKind::Bzip2 => Box::new(bzip2::read::BzDecoder::new(file)),
        ArchiveKind::Xz => Box::new(xz2::read::XzDecoder::new(file)),
        ArchiveKind::Zstd => Box::new(zstd::stream::read::Decoder::new(file).ok()?),
    };
    let mut block = [0u8; 512];
    let n = read_full(&mut reader, &mut block)?;
    (n == block.len() && is_tar_header(&block)).then_some(kind)
}

/// Read until `buf` is full or the stream ends; None on a read error (a corrupt stream).
fn read_full(reader: &mut dyn Read, buf: &mut [u8]) -> Option<usize> {
    let mut n = 0;
    while n < buf.len() {
        match reader.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    Some(n)
}

/// Whether `block` is a tar header Go's `archive/tar` reads: not all zeros, and its checksum
/// field (octal) matches the unsigned or signed byte sum with that field counted as spaces.
fn is_tar_header(block: &[u8; 512]) -> bool {
    if block.iter().all(|b| *b == 0) {
        return false;
    }
    let field = &block[148..156];
    let text: String = field
        .iter()
        .map(|b| *b as char)
        .filter(|c| *c != ' ' && *c != '\0')
        .collect();
    let Ok(want) = i64::from_str_radix(&text, 8) else {
        return false;
    };
    let (mut unsigned, mut signed) = (0i64, 0i64);
    for (i, b) in block.iter().enumerate() {
        let b = if (148..156).contains(&i) { b' ' } else { *b };
        unsigned += i64::from(b);
        signed += i64::from(b as i8);
    }
    want == unsigned || want == signed
}

/// A local archive's compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveKind {
    /// Plain tar.
    Tar,
    /// tar.gz.
    Gzip,
    /// tar.bz2.
    Bzip2,
    /// tar.xz.
    Xz,
    /// tar.zst.
    Zstd,
}

/// Extract a local archive into `dest` (an empty directory), owners kept, never writing outside
/// `dest` (the store's safe unpacker). An entry named `.wh.*` is refused: written into the step's
/// layer it would act as a whiteout. A path that is not a valid tar after decompression is an
/// error.
pub fn extract_archive(path: &Path, kind: ArchiveKind, dest: &Path) -> Result<(), StepError> {
    let io = |source| StepError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = fs::File::open(path).map_err(io)?;
    let reader: Box<dyn Read> = match kind {
        // gzip and zstd are detected by the unpacker itself.
        ArchiveKind::Tar | ArchiveKind::Gzip | ArchiveKind::Zstd => Box::new(file),
        ArchiveKind::Bzip2 => Box::new(bzip2::read::BzDecoder::new(file)),
        ArchiveKind::Xz => Box::new(xz2::read::XzDecoder::new(file)),
    };
    // A `.wh.` file would become a whiteout once the result is written into a layer, and
    // delete a lower layer's file: refused, naming the entry.
    let options = strata_oci::tar::UnpackOptions {
        whiteouts: strata_oci::tar::Whiteouts::Refuse,
        ..Default::default()
    };
    strata_oci::tar::unpack_layer(reader, dest, &options).map_err(|source| StepError::Extract {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(())
}

/// How long ADD waits to connect to a URL's server.
pub const DOWNLOAD_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long ADD waits for the next bytes of a download.
pub const DOWNLOAD_READ_TIMEOUT: Duration = Duration::from_secs(60);

/// Download `url` into `dir`, named after the URL's last path segment; verify `checksum`
/// (`sha256:<hex>`) when given. Returns the file path.
pub fn download(url: &str, checksum: Option<&str>, dir: &Path) -> Result<PathBuf, StepError> {
    let fail = |reason: String| StepError::Download {
        url: url.to_string(),
        reason,
    };
    let name = url
        .split(['?', '#'])
        .next()
        .and_then(|u| u.rsplit('/').next())
        .filter(|n| !n.is_empty() && *n != "." && *n != "..")
        .unwrap_or("download")
        .to_string();
    // A server that stops answering fails the step instead of hanging the build.
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(DOWNLOAD_CONNECT_TIMEOUT))
        .timeout_per_read(Some(DOWNLOAD_READ_TIMEOUT))
        .build()
        .into();
    let response = agent.get(url).call().map_err(|e| fail(e.to_string()))?;
    let mut body = response.into_body().into_reader();
    let path = dir.join(&name);
    let mut out = fs::File::create(&path).map_err(|source| StepError::Io {
        path: path.clone(),
        source,
    })?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = body.read(&mut buf).map_err(|e| fail(e.to_string()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n]).map_err(|source| StepError::Io {
            path: path.clone(),
            source,
        })?;
    }
    let actual = format!("sha256:{}", hex::encode(hasher.finalize()));
    if let Some(expected) = checksum
        && expected != actual
    {
        return Err(StepError::Checksum {
            url: url.to_string(),
            expected: expected.to_string(),
            actual,
        });
    }
    Ok(path)
}

/// True when an ADD source is a URL.
pub fn is_url(source: &str) -> bool {
    source.starts_with("http://") || source.starts_with("https://")
}

/// True when an ADD source is a git repository, which this builder cannot fetch.
pub fn is_git(source: &str) -> bool {
    source.starts_with("git@")
        || source.starts_with("git://")
        || (is_url(source)
            && source
                .split(['?', '#'])
                .next()
                .is_some_and(|u| u.ends_with(".git")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tar at `path` holding one regular file `name` with `data`.
    fn one_file_tar(path: &Path, name: &str, data: &[u8]) {
        let mut b = tar::Builder::new(fs::File::create(path).unwrap());
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        b.append_data(&mut h, name, data).unwrap();
        b.finish().unwrap();
    }

    #[test]
    fn archives_are_recognised_by_content() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("a.tar");
        one_file_tar(&plain, "f", b"x");
        assert_eq!(archive_kind(&plain), Some(ArchiveKind::Tar));
        let text = dir.path().join("notes.tar");
        fs::write(&text, "not an archive").unwrap();
        assert_eq!(archive_kind(&text), None);
        let bz = dir.path().join("a.tar.bz2");
        let mut enc = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
        enc.write_all(&fs::read(&plain).unwrap()).unwrap();
        fs::write(&bz, enc.finish().unwrap()).unwrap();
        assert_eq!(archive_kind(&bz), Some(ArchiveKind::Bzip2));
        let out = dir.path().join("out");
        fs::create_dir(&out).unwrap();
        extract_archive(&bz, ArchiveKind::Bzip2, &out).unwrap();
        assert_eq!(fs::read(out.join("f")).unwrap(), b"x");
    }

    // Issue 13: a `.wh.` file from an ADDed archive would delete a lower layer's file once the
    // step's layer is stacked.
    #[test]
    fn whiteout_names_in_an_added_archive_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("a.tar");
        one_file_tar(&plain, "etc/.wh.passwd", b"");
        let out = dir.path().join("out");
        fs::create_dir(&out).unwrap();
        let err = strata_oci::report(&extract_archive(&plain, ArchiveKind::Tar, &out).unwrap_err());
        assert!(err.contains("a.tar: cannot extract archive: "), "{err}");
        assert!(err.contains("etc/.wh.passwd"), "{err}");
        assert!(err.contains("whiteout"), "{err}");
        assert!(!out.join("etc/.wh.passwd").exists());
    }

    #[test]
    fn git_and_url_sources() {
        assert!(is_url("https://example.com/a.tgz"));
        assert!(is_git("https://example.com/repo.git#main"));
        assert!(is_git("git@example.com:org/repo"));
        assert!(!is_git("https://example.com/a.tgz"));
    }
}
