//! A stored layer read into an image's filesystem index ([`crate::fsindex`]), without unpacking it.
//!
//! A layer's tar headers are read once and cached beside the store, keyed by the blob's digest
//! (so an entry never goes stale): the builder, the tier tests and the views index a base image
//! without decompressing it again.

use std::fs;
use std::path::{Path, PathBuf};

use crate::fsindex::{FsIndex, HeaderRecord, read_headers};
use crate::{Descriptor, Digest, Error, Result, Store};

/// Read a stored layer into the filesystem index. The layer's headers are cached beside the store
/// (keyed by the blob's digest, so an entry never goes stale), so a base image is decompressed
/// once, not at every build on top of it.
pub fn index_layer(store: &Store, fs: &mut FsIndex, layer: &Descriptor) -> Result<()> {
    let digest = Digest::from_oci(layer.digest())?;
    fs.apply_headers(&layer_headers(store, &digest)?);
    Ok(())
}

/// The largest cached header file read (a layer of millions of entries); a larger one is read
/// from the blob again.
const HEADERS_MAX: u64 = 1 << 30;

/// Where the store's layer headers are cached (one file per layer blob, named by its hex digest).
pub fn headers_dir(store: &Store) -> PathBuf {
    store.state_dir().join("layer-headers")
}

/// Where the headers of layer `digest` are cached.
fn headers_path(store: &Store, digest: &Digest) -> PathBuf {
    headers_dir(store).join(digest.hex())
}

/// The headers of a stored layer: from the cache, else read from the blob and cached.
pub fn layer_headers(store: &Store, digest: &Digest) -> Result<Vec<HeaderRecord>> {
    let cached = headers_path(store, digest);
    if let Some(bytes) = crate::layout::read_cache_file(&cached, HEADERS_MAX)
        && let Ok(headers) = serde_json::from_slice(&bytes)
    {
        return Ok(headers);
    }
    let io = |source| Error::Io {
        path: store.blobs().path(digest),
        source,
    };
    let reader = store.blobs().open(digest)?;
    let decoder = crate::compress::Decoder::detect(reader).map_err(io)?;
    let headers = read_headers(decoder).map_err(io)?;
    cache_headers(&headers_dir(store), digest, &headers);
    Ok(headers)
}

/// Cache the headers of layer `digest` in `dir` (the store's [`headers_dir`]); a failure only
/// loses the cache entry (the headers are read from the blob when next needed).
pub(crate) fn cache_headers(dir: &Path, digest: &Digest, headers: &[HeaderRecord]) {
    let cached = dir.join(digest.hex());
    let write = || -> std::io::Result<()> {
        fs::create_dir_all(dir)?;
        let bytes = serde_json::to_vec(headers).map_err(std::io::Error::other)?;
        crate::layout::atomic_write(&cached, &bytes).map_err(std::io::Error::other)
    };
    if let Err(e) = write() {
        tracing::warn!("layer header cache: cannot write {}: {e}", cached.display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fsindex::NodeKind;
    use crate::tar::{Entry, LayerOptions, Metadata};

    #[test]
    fn layer_headers_are_cached_by_digest() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::init(dir.path().join("store")).unwrap();
        let meta = Metadata::new(0o750, 33, 33);
        let mut writer = store.layer_writer(LayerOptions::default()).unwrap();
        writer
            .append_all(vec![
                Entry::dir("srv", meta.clone()),
                Entry::file_bytes("srv/a.txt", b"a".to_vec(), meta.clone()),
                Entry::symlink("srv/link", "a.txt", meta),
            ])
            .unwrap();
        let layer = writer.finish().unwrap();
        let mut first = FsIndex::new();
        index_layer(&store, &mut first, &layer.descriptor).unwrap();
        assert_eq!(first.get("/srv/a.txt").unwrap().uid, 33);
        assert_eq!(first.get("/srv").unwrap().mode, 0o750);
        // The second index comes from the cache: it works without the blob.
        let digest = Digest::from_oci(layer.descriptor.digest()).unwrap();
        assert!(headers_path(&store, &digest).is_file());
        fs::remove_file(store.blobs().path(&digest)).unwrap();
        let mut second = FsIndex::new();
        index_layer(&store, &mut second, &layer.descriptor).unwrap();
        assert_eq!(
            first.iter().collect::<Vec<_>>(),
            second.iter().collect::<Vec<_>>()
        );
        assert_eq!(
            second.get("/srv/link").unwrap().kind,
            NodeKind::Symlink("a.txt".to_string())
        );
    }

    // See issue 22: a layer just written is indexed without decompressing it; its headers are
    // cached by the writer exactly as reading them back from the blob gives them.
    #[test]
    fn the_writer_caches_the_headers_a_read_of_the_blob_gives() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::init(dir.path().join("store")).unwrap();
        let meta = Metadata::new(0o4755, 1000, 1000);
        let big = Metadata::new(0o644, 5_000_000, 3_000_000);
        let long = format!("srv/{}", "n".repeat(150));
        let mut writer = store.layer_writer(LayerOptions::default()).unwrap();
        writer
            .append_all(vec![
                Entry::dir("srv", meta.clone()),
                Entry::file_bytes("srv/a", b"abc".to_vec(), meta.clone()),
                Entry::hardlink("srv/b", "srv/a", meta.clone()),
                Entry::file_bytes(&long, b"x".to_vec(), big),
                Entry::symlink("srv/link", "a", meta.clone()),
                Entry::char_device("srv/null", 1, 3, meta.clone()),
                Entry::fifo("srv/pipe", meta.clone()),
                Entry::whiteout("srv/gone").unwrap(),
            ])
            .unwrap();
        let layer = writer.finish().unwrap();
        let digest = Digest::from_oci(layer.descriptor.digest()).unwrap();
        let cached: Vec<HeaderRecord> =
            serde_json::from_slice(&fs::read(headers_path(&store, &digest)).unwrap()).unwrap();
        let decoder =
            crate::compress::Decoder::detect(store.blobs().open(&digest).unwrap()).unwrap();
        let read = read_headers(decoder).unwrap();
        assert_eq!(read.len(), 8);
        assert_eq!(cached, read);
    }
}
