//! `--squash` and `--squash-all`: replace layers with one that gives the same filesystem.
//!
//! All layers are unpacked into one directory (the merged filesystem). With `--squash-all` the new
//! layer is that whole tree. With `--squash` only the paths the Dockerfile's own layers wrote are
//! taken, and paths the base had but the result lacks become whiteouts, so the new layer still
//! applies on top of the base's untouched layers.

use std::os::unix::fs::{FileTypeExt, MetadataExt};

use strata_oci::Store;
use strata_oci::tar::{Entry, LayerOptions, Metadata};

use crate::builder::StageState;
use crate::error::StepError;
use crate::layer::{self, LayerRef};
use strata_oci::fsindex::{FsIndex, NodeKind};

/// Squash `state.layers[from..]` into one layer (`from` = 0: every layer).
pub(crate) fn squash(
    store: &Store,
    state: &mut StageState,
    from: usize,
    options: LayerOptions,
) -> Result<(), StepError> {
    if state.layers.len().saturating_sub(from) <= 1 && from > 0 {
        return Ok(()); // nothing to merge
    }
    let tmp_root = store.tmp_dir();
    let merged = tempfile::Builder::new()
        .prefix("squash-")
        .tempdir_in(&tmp_root)
        .map_err(|source| StepError::Io {
            path: tmp_root.clone(),
            source,
        })?;
    for l in &state.layers {
        store.unpack_layer(&l.descriptor, merged.path(), &Default::default())?;
    }
    let entries = if from == 0 {
        strata_oci::tar::collect_tree(merged.path(), std::path::Path::new(""))?
    } else {
        let mut base = FsIndex::new();
        for l in &state.layers[..from] {
            strata_oci::layer_index::index_layer(store, &mut base, &l.descriptor)?;
        }
        own_entries(merged.path(), &base, &state.fs, from)?
    };
    let entries = entries
        .into_iter()
        .map(|mut e| {
            e.meta.mtime = options.source_date_epoch;
            e
        })
        .collect();
    let new_layer: LayerRef = layer::write_entries(store, entries, options)?;
    let kept = state.layers[..from].to_vec();
    let kept_ids: Vec<String> = kept.iter().map(|l| l.diff_id.clone()).collect();
    state.layers = kept;
    state.layers.push(new_layer.clone());
    state.config.rootfs.diff_ids = kept_ids;
    state.config.rootfs.diff_ids.push(new_layer.diff_id.clone());
    // History: keep the base's entries, mark the squashed steps empty, and one entry for the layer.
    let mut seen_layers = 0;
    for h in state.config.history.iter_mut() {
        if h.empty_layer {
            continue;
        }
        if seen_layers >= from {
            h.empty_layer = true;
        }
        seen_layers += 1;
    }
    state
        .config
        .history
        .push(strata_oci::image_config::History {
            created: state.config.history.last().and_then(|h| h.created.clone()),
            created_by: Some(if from == 0 { "squash-all" } else { "squash" }.to_string()),
            comment: Some("strata".to_string()),
            ..Default::default()
        });
    Ok(())
}

/// The entries of the own layers' result: paths written by layers `from..`, plus whiteouts for
/// base paths that are gone.
fn own_entries(
    merged: &std::path::Path,
    base: &FsIndex,
    result: &FsIndex,
    from: usize,
) -> Result<Vec<Entry>, StepError> {
    let mut entries = Vec::new();
    for (path, node) in result.iter() {
        if path == "/" || node.layer < from {
            continue;
        }
        let rel = path.trim_start_matches('/');
        let host = merged.join(rel);
        let meta = std::fs::symlink_metadata(&host).map_err(|source| StepError::Io {
            path: host.clone(),
            source,
        })?;
        let m = Metadata::new(
            meta.mode() & 0o7777,
            u64::from(meta.uid()),
            u64::from(meta.gid()),
        );
        let ft = meta.file_type();
        let entry = if ft.is_dir() {
            Entry::dir(rel, m)
        } else if ft.is_symlink() {
            let target = std::fs::read_link(&host).map_err(|source| StepError::Io {
                path: host.clone(),
                source,
            })?;
            Entry::symlink(rel, target, m)
        } else if ft.is_char_device() {
            let (major, minor) = dev(meta.rdev());
            Entry::char_device(rel, major, minor, m)
        } else if ft.is_block_device() {
            let (major, minor) = dev(meta.rdev());
            Entry::block_device(rel, major, minor, m)
        } else if ft.is_fifo() {
            Entry::fifo(rel, m)
        } else {
            Entry::file_from_path(rel, &host, m)
        };
        entries.push(entry);
    }
    // Base paths that no longer exist: one whiteout per deleted subtree root.
    let mut deleted_root: Option<String> = None;
    for (path, _) in base.iter() {
        if path == "/" || result.get(path).is_some() {
            continue;
        }
        if let Some(root) = &deleted_root
            && path.starts_with(&format!("{root}/"))
        {
            continue;
        }
        // Below a path the result holds as a file or link (a directory replaced by `rm -rf d &&
        // touch d`), the base's subtree goes with the entry that replaces it; a whiteout under a
        // file would make the layer invalid.
        if ancestors(path).any(|a| result.get(a).is_some_and(|n| n.kind != NodeKind::Dir)) {
            continue;
        }
        deleted_root = Some(path.to_string());
        entries.push(Entry::whiteout(path.trim_start_matches('/'))?);
    }
    Ok(entries)
}

/// The proper ancestors of an absolute path, nearest first, without `/`: `/a/b/c` → `/a/b`, `/a`.
fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    let mut current = path;
    std::iter::from_fn(move || {
        let pos = current.rfind('/').filter(|p| *p > 0)?;
        current = &current[..pos];
        Some(current)
    })
}

fn dev(rdev: u64) -> (u32, u32) {
    // Linux's encoding of dev_t (glibc's gnu_dev_major / gnu_dev_minor).
    let major = ((rdev >> 32) & 0xffff_f000) | ((rdev >> 8) & 0x0000_0fff);
    let minor = ((rdev >> 12) & 0xffff_ff00) | (rdev & 0x0000_00ff);
    (major as u32, minor as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_oci::fsindex::Node;

    fn node(kind: NodeKind, layer: usize) -> Node {
        Node {
            kind,
            mode: 0o755,
            uid: 0,
            gid: 0,
            size: 0,
            layer,
        }
    }

    #[test]
    fn ancestors_nearest_first() {
        assert_eq!(ancestors("/a/b/c").collect::<Vec<_>>(), ["/a/b", "/a"]);
        assert_eq!(ancestors("/a").count(), 0);
    }

    #[test]
    fn a_directory_replaced_by_a_file_needs_no_whiteouts_below_it() {
        let merged = tempfile::tempdir().unwrap();
        std::fs::write(merged.path().join("data"), "file").unwrap();
        std::fs::create_dir(merged.path().join("kept")).unwrap();
        let mut base = FsIndex::new();
        base.begin_layer();
        for dir in ["/data", "/data/sub", "/gone", "/kept"] {
            base.insert(dir, node(NodeKind::Dir, 0));
        }
        for file in ["/data/x", "/data/sub/y", "/gone/z", "/kept/old"] {
            base.insert(file, node(NodeKind::File, 0));
        }
        // The result: /data is now a file, /gone and /kept/old deleted.
        let mut result = FsIndex::new();
        result.begin_layer();
        result.insert("/kept", node(NodeKind::Dir, 0));
        result.begin_layer();
        result.insert("/data", node(NodeKind::File, 1));
        let entries = own_entries(merged.path(), &base, &result, 1).unwrap();
        let paths: Vec<String> = entries
            .iter()
            .map(|e| e.path.display().to_string())
            .collect();
        assert_eq!(paths, ["data", ".wh.gone", "kept/.wh.old"]);
    }
}
