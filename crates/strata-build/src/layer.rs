//! Turn a planned set of paths into a stored layer, through the step cache.
//!
//! A step's cache key is computed from what the step will write (paths, modes, owners, content
//! hashes), not from the parent image, so an unchanged COPY is found again on a new parent. The cache
//! maps keys to layers already in the store; a hit costs one small file read.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use strata_oci::tar::{Entry, LayerOptions, Metadata};
use strata_oci::{Descriptor, Digest, Store};

use crate::context::StatCache;
use crate::copy::{CopyPlan, PlannedContent, PlannedEntry};
use crate::error::StepError;
use strata_oci::fsindex::{FsIndex, Node, NodeKind};

/// A layer of the image being built: its blob descriptor and its uncompressed digest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerRef {
    /// The blob (compressed) descriptor, for the manifest.
    pub descriptor: Descriptor,
    /// The uncompressed digest, for the config.
    pub diff_id: String,
}

/// The largest step-cache entry read (a layer reference is a few hundred bytes).
const ENTRY_MAX: u64 = 64 * 1024;

/// A step-cache entry's bytes, read as every cache file is (no link followed, bounded).
pub(crate) fn read_entry(path: &Path) -> Option<Vec<u8>> {
    strata_oci::layout::read_cache_file(path, ENTRY_MAX)
}

/// Keys → layers already written, one small JSON file per key under `<dir>/steps/`.
#[derive(Debug, Clone)]
pub struct StepCache {
    dir: Option<PathBuf>,
}

impl StepCache {
    /// A cache in `dir`, or a disabled one (`--no-cache`).
    pub fn new(dir: Option<PathBuf>) -> Self {
        Self { dir }
    }

    fn path(&self, key: &str) -> Option<PathBuf> {
        self.dir
            .as_ref()
            .map(|d| d.join("steps").join(key.trim_start_matches("sha256:")))
    }

    /// The layer cached under `key`, if its blob is still in the store.
    pub fn get(&self, store: &Store, key: &str) -> Option<LayerRef> {
        let bytes = read_entry(&self.path(key)?)?;
        let layer: LayerRef = serde_json::from_slice(&bytes).ok()?;
        let digest = Digest::from_oci(layer.descriptor.digest()).ok()?;
        store.blobs().has(&digest).then_some(layer)
    }

    /// A cached RUN result: `Some(None)` when the step is known to change nothing.
    pub fn get_step(&self, store: &Store, key: &str) -> Option<Option<LayerRef>> {
        let bytes = read_entry(&self.path(key)?)?;
        if bytes == b"empty" {
            return Some(None);
        }
        let layer: LayerRef = serde_json::from_slice(&bytes).ok()?;
        let digest = Digest::from_oci(layer.descriptor.digest()).ok()?;
        store.blobs().has(&digest).then_some(Some(layer))
    }

    /// Remember a RUN result (`None`: it changed nothing).
    pub fn put_step(&self, key: &str, layer: Option<&LayerRef>) {
        match layer {
            Some(layer) => self.put(key, layer),
            None => {
                if let Some(path) = self.path(key) {
                    let _ = fs::create_dir_all(path.parent().unwrap_or(Path::new(".")));
                    let _ = strata_oci::layout::atomic_write(&path, b"empty");
                }
            }
        }
    }

    /// Remember `layer` under `key` (atomically; a failure only loses the cache entry).
    pub fn put(&self, key: &str, layer: &LayerRef) {
        let Some(path) = self.path(key) else { return };
        let write = || -> std::io::Result<()> {
            let dir = path.parent().unwrap_or(Path::new("."));
            fs::create_dir_all(dir)?;
            let bytes = serde_json::to_vec(layer).map_err(std::io::Error::other)?;
            strata_oci::layout::atomic_write(&path, &bytes).map_err(std::io::Error::other)
        };
        if let Err(e) = write() {
            tracing::warn!("step cache: cannot write {}: {e}", path.display());
        }
    }
}

/// The cache key of a planned layer: every path with its kind, mode, owner and content hash.
pub fn plan_key(
    plan: &CopyPlan,
    stat: &mut StatCache,
    options: &LayerOptions,
) -> Result<String, StepError> {
    let mut key = crate::cache_key::KeyWriter::new("strata-build/plan/v4");
    key.compression(options.compression)
        .u64(options.source_date_epoch);
    for (path, entry) in plan {
        key.str(path)
            .u64(u64::from(entry.mode))
            .u64(u64::from(entry.owner.uid))
            .u64(u64::from(entry.owner.gid))
            .u64(clamped_mtime(entry, options.source_date_epoch));
        match &entry.content {
            PlannedContent::Dir => key.str("dir"),
            PlannedContent::Symlink(target) => key.str("symlink").str(target),
            PlannedContent::Hardlink(target) => key.str("hardlink").str(target),
            PlannedContent::CharDevice { major, minor } => key
                .str("char")
                .u64(u64::from(*major))
                .u64(u64::from(*minor)),
            PlannedContent::BlockDevice { major, minor } => key
                .str("block")
                .u64(u64::from(*major))
                .u64(u64::from(*minor)),
            PlannedContent::Fifo => key.str("fifo"),
            PlannedContent::Bytes(bytes) => {
                key.str("bytes").str(&hex::encode(Sha256::digest(bytes)))
            }
            PlannedContent::File(src) => {
                let meta = fs::metadata(src).map_err(|source| StepError::Io {
                    path: src.clone(),
                    source,
                })?;
                key.str("file").str(&stat.file_hash(src, &meta)?)
            }
        };
        // Only entries with attributes add to the key, so the keys of every other plan stay; the tag
        // holds a NUL, which no path can, so it never reads as the next entry's path.
        for (name, value) in &entry.xattrs {
            key.str("\0xattr").str(name).bytes(value);
        }
    }
    Ok(key.finish())
}

/// A planned entry's mtime in the layer: its source's, clamped to `epoch` (BuildKit's
/// `rewrite-timestamp`); what the step creates itself gets `epoch`.
fn clamped_mtime(entry: &PlannedEntry, epoch: u64) -> u64 {
    entry.mtime.map_or(epoch, |m| m.min(epoch))
}

/// Write a planned layer to the store.
pub fn write_plan(
    store: &Store,
    plan: &CopyPlan,
    options: LayerOptions,
) -> Result<LayerRef, StepError> {
    let entries: Vec<Entry> = plan
        .iter()
        .map(|(path, e)| {
            let meta = Metadata {
                mode: e.mode,
                uid: u64::from(e.owner.uid),
                gid: u64::from(e.owner.gid),
                mtime: clamped_mtime(e, options.source_date_epoch),
                xattrs: e.xattrs.clone(),
            };
            match &e.content {
                PlannedContent::Dir => Entry::dir(path, meta),
                PlannedContent::File(src) => Entry::file_from_path(path, src, meta),
                PlannedContent::Bytes(bytes) => Entry::file_bytes(path, bytes.clone(), meta),
                PlannedContent::Symlink(target) => Entry::symlink(path, target, meta),
                PlannedContent::Hardlink(target) => Entry::hardlink(path, target, meta),
                PlannedContent::CharDevice { major, minor } => {
                    Entry::char_device(path, *major, *minor, meta)
                }
                PlannedContent::BlockDevice { major, minor } => {
                    Entry::block_device(path, *major, *minor, meta)
                }
                PlannedContent::Fifo => Entry::fifo(path, meta),
            }
        })
        .collect();
    write_entries(store, entries, options)
}

/// Write entries (sorted by the writer) as one layer.
pub fn write_entries(
    store: &Store,
    entries: Vec<Entry>,
    options: LayerOptions,
) -> Result<LayerRef, StepError> {
    let mut writer = store.layer_writer(options)?;
    writer.append_all(entries)?;
    let (layer, times) = writer.finish_timed()?;
    crate::timings::record_layer(&times);
    Ok(LayerRef {
        descriptor: layer.descriptor,
        diff_id: layer.diff_id.to_string(),
    })
}

/// Record a planned layer in the filesystem index.
pub fn index_plan(fs: &mut FsIndex, plan: &CopyPlan) {
    let layer = fs.begin_layer();
    for (path, e) in plan {
        let (kind, size) = match &e.content {
            PlannedContent::Dir => (NodeKind::Dir, 0),
            PlannedContent::File(src) => (
                NodeKind::File,
                fs::metadata(src).map(|m| m.len()).unwrap_or(0),
            ),
            PlannedContent::Bytes(b) => (NodeKind::File, b.len() as u64),
            PlannedContent::Symlink(t) => (NodeKind::Symlink(t.clone()), 0),
            PlannedContent::Hardlink(t) => (NodeKind::Hardlink(format!("/{t}")), 0),
            PlannedContent::CharDevice { .. } => (NodeKind::CharDevice, 0),
            PlannedContent::BlockDevice { .. } => (NodeKind::BlockDevice, 0),
            PlannedContent::Fifo => (NodeKind::Fifo, 0),
        };
        fs.insert(
            path,
            Node {
                kind,
                mode: e.mode,
                uid: u64::from(e.owner.uid),
                gid: u64::from(e.owner.gid),
                size,
                layer,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_cache_entry_that_is_a_link_to_a_fifo_is_a_miss_not_a_hang() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::init(dir.path().join("store")).unwrap();
        let cache = StepCache::new(Some(dir.path().join("cache")));
        let key = "sha256:".to_string() + &"ab".repeat(32);
        let entry = cache.path(&key).unwrap();
        fs::create_dir_all(entry.parent().unwrap()).unwrap();
        strata_testutil::link_to_fifo(&entry);
        assert_eq!(cache.get_step(&store, &key), None);
        assert_eq!(cache.get(&store, &key), None);
        // What the cache writes itself still reads back.
        cache.put_step(&key, None);
        assert_eq!(cache.get_step(&store, &key), Some(None));
    }
}
