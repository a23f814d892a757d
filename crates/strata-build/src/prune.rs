//! Sweeping the builder's caches that derive from stored blobs: layer snapshots, the `COPY --from`
//! trees, cached layer headers and step-cache entries. Each is only a faster way to get at blobs
//! the store keeps; once gc has removed those blobs (or no image uses a layer any more) the entry
//! is dead weight that the next build would never read.
//!
//! [`prune_caches`] is meant to run inside [`strata_oci::Maintenance::gc_then`], while gc holds the
//! store exclusively, so no build is reading a snapshot it removes. Cache mounts
//! (`RUN --mount=type=cache`) are kept: like BuildKit's, they live until removed on purpose.
//! A directory is renamed to a `.trash-` name before it is removed, so a crash mid-way never
//! leaves half a snapshot under a live name; leftovers of crashed unpacks and removals are swept.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use strata_oci::{Digest, GcReport, Store};

use crate::builder::rootfs_cache_name;
use crate::layer::LayerRef;
use crate::snapshot::snapshot_name;
use strata_oci::layer_index::headers_dir;
use strata_oci::member_memo::{MemberMemo, members_dir};

/// One cache entry removed (or, in a dry run, that would be).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PrunedEntry {
    /// Which cache: `snapshot`, `rootfs`, `layer-headers`, `step` or `leftover`.
    pub cache: &'static str,
    /// The file or directory.
    pub path: PathBuf,
    /// Its size on disk (apparent size of its files).
    pub bytes: u64,
}

/// What [`prune_caches`] removed and kept.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct CachePruneReport {
    /// Whether this was a dry run.
    pub dry_run: bool,
    /// Entries removed.
    pub removed: Vec<PrunedEntry>,
    /// Their total size.
    pub removed_bytes: u64,
    /// Entries kept because a stored image still needs them.
    pub kept: usize,
    /// Entries that could not be removed, with the reason (they stay; nothing else is affected).
    pub errors: Vec<String>,
}

/// Sweep the caches under `cache_dir` (and the store's cached layer headers) against the store's
/// state after `gc`. Never fails as a whole: an entry that cannot be read or removed is reported
/// in `errors` and left in place.
pub fn prune_caches(store: &Store, cache_dir: &Path, gc: &GcReport) -> CachePruneReport {
    let mut report = CachePruneReport {
        dry_run: gc.dry_run,
        ..CachePruneReport::default()
    };
    let gone: HashSet<&Digest> = gc.removed.iter().map(|b| &b.digest).collect();
    let blob_live = |d: &Digest| !gone.contains(d) && store.blobs().has(d);
    let chains = match store.maintenance().layer_chains() {
        Ok(chains) => chains,
        Err(e) => {
            report.errors.push(format!(
                "caches kept: cannot list the store's images: {}",
                strata_oci::report(&e)
            ));
            return report;
        }
    };
    // gc removes no blob an indexed image uses, so the images listed now are the ones that stay,
    // in a dry run as well.
    let mut snapshots = HashSet::new();
    let mut trees = HashSet::new();
    for chain in &chains {
        let ids: Vec<String> = chain.iter().map(ToString::to_string).collect();
        for id in &ids {
            snapshots.insert(snapshot_name(id).to_string());
        }
        for end in 0..=ids.len() {
            let prefix: Vec<&str> = ids[..end].iter().map(String::as_str).collect();
            trees.insert(rootfs_cache_name(&prefix));
        }
    }
    let mut pruner = Pruner {
        report: &mut report,
    };
    pruner.sweep_dirs(&cache_dir.join("snapshots"), "snapshot", |name| {
        snapshots.contains(name)
    });
    pruner.sweep_dirs(&cache_dir.join("rootfs"), "rootfs", |name| {
        trees.contains(name)
    });
    pruner.sweep_files(&headers_dir(store), "layer-headers", |name, _| {
        name.parse::<Digest>()
            .or_else(|_| format!("sha256:{name}").parse())
            .is_ok_and(|d| blob_live(&d))
    });
    pruner.sweep_files(&members_dir(store), "gzip-members", |_, path| {
        MemberMemo::entry_blob(path).is_some_and(|d| blob_live(&d))
    });
    pruner.sweep_files(&cache_dir.join("steps"), "step", |_, path| {
        // `empty` marks a RUN step that changed nothing: it needs no blob.
        match crate::layer::read_entry(path) {
            Some(bytes) if bytes == b"empty" => true,
            Some(bytes) => serde_json::from_slice::<LayerRef>(&bytes)
                .ok()
                .and_then(|l| Digest::from_oci(l.descriptor.digest()).ok())
                .is_some_and(|d| blob_live(&d)),
            None => false,
        }
    });
    report
}

/// Removes entries and keeps the tally.
struct Pruner<'a> {
    report: &'a mut CachePruneReport,
}

impl Pruner<'_> {
    /// Entries of `dir`, sorted; none when it does not exist.
    fn entries(&mut self, dir: &Path) -> Vec<(String, PathBuf)> {
        let read = match fs::read_dir(dir) {
            Ok(read) => read,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
            Err(e) => {
                self.report.errors.push(format!("{}: {e}", dir.display()));
                return Vec::new();
            }
        };
        let mut entries: Vec<(String, PathBuf)> = read
            .filter_map(Result::ok)
            .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
            .collect();
        entries.sort();
        entries
    }

    /// Remove the subdirectories of `dir` that `live` does not claim, and leftovers of crashed
    /// unpacks (`.unpack-*`) and removals (`.trash-*`).
    fn sweep_dirs(&mut self, dir: &Path, cache: &'static str, live: impl Fn(&str) -> bool) {
        for (name, path) in self.entries(dir) {
            let leftover = name.starts_with(".unpack-") || name.starts_with(".trash-");
            if !leftover && live(&name) {
                self.report.kept += 1;
                continue;
            }
            let cache = if leftover { "leftover" } else { cache };
            self.remove(cache, &path, dir, &name);
        }
    }

    /// Remove the files of `dir` that `live` does not claim, and stale temp files.
    fn sweep_files(&mut self, dir: &Path, cache: &'static str, live: impl Fn(&str, &Path) -> bool) {
        for (name, path) in self.entries(dir) {
            let leftover = name.starts_with(".tmp") || name.starts_with(".trash-");
            if !leftover && live(&name, &path) {
                self.report.kept += 1;
                continue;
            }
            let cache = if leftover { "leftover" } else { cache };
            self.remove(cache, &path, dir, &name);
        }
    }

    fn remove(&mut self, cache: &'static str, path: &Path, dir: &Path, name: &str) {
        let bytes = disk_usage(path);
        if !self.report.dry_run {
            let result = if path.is_dir() && !name.starts_with(".trash-") {
                // Out of the live name first: a crash mid-removal leaves only a `.trash-` dir.
                let trash = dir.join(format!(".trash-{name}"));
                fs::rename(path, &trash).and_then(|()| fs::remove_dir_all(&trash))
            } else if path.is_dir() {
                fs::remove_dir_all(path)
            } else {
                fs::remove_file(path)
            };
            if let Err(e) = result {
                self.report
                    .errors
                    .push(format!("cannot remove {}: {e}", path.display()));
                return;
            }
        }
        self.report.removed_bytes += bytes;
        self.report.removed.push(PrunedEntry {
            cache,
            path: path.to_path_buf(),
            bytes,
        });
    }
}

/// The apparent size of the regular files under `path` (symlinks are not followed).
fn disk_usage(path: &Path) -> u64 {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return if meta.is_file() { meta.len() } else { 0 };
    }
    let mut total = 0;
    let mut stack = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(read) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in read.filter_map(Result::ok) {
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                stack.push(entry.path());
            } else if meta.is_file() {
                total += meta.len();
            }
        }
    }
    total
}
