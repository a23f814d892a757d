//! `strata diff A B`: which layers two images share, which one added or dropped, and which files
//! differ (added, removed, modified: size, mode, owner, content hash). Unchanged files are left out.

use std::collections::HashSet;

use serde::Serialize;
use strata_oci::Store;

use crate::catalog::StoredImage;
use crate::error::Result;
use crate::fsview::{FileState, files, read_layers};

/// A layer in a diff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LayerRef {
    /// Its position in its image (0 = bottom).
    pub index: usize,
    /// The uncompressed digest.
    pub diff_id: String,
    /// The blob's size in bytes.
    pub size: u64,
    /// The history step that made it.
    pub created_by: Option<String>,
}

/// How a path differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    /// Only in B.
    Added,
    /// Only in A.
    Removed,
    /// In both, with a different kind, size, mode, owner, content or link target.
    Modified,
}

/// One path that differs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileChange {
    /// The absolute path.
    pub path: String,
    /// How.
    pub change: Change,
    /// In A.
    pub before: Option<FileState>,
    /// In B.
    pub after: Option<FileState>,
}

/// The difference between images A and B.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageDiff {
    /// A's name and digest.
    pub a: (String, String),
    /// B's name and digest.
    pub b: (String, String),
    /// How many bottom layers both have in the same order.
    pub common_prefix: usize,
    /// Layers (by diff_id) in both images (positions in B).
    pub shared: Vec<LayerRef>,
    /// Layers of A that B lacks.
    pub removed: Vec<LayerRef>,
    /// Layers of B that A lacks.
    pub added: Vec<LayerRef>,
    /// Paths that differ in the merged filesystems, sorted.
    pub files: Vec<FileChange>,
}

fn layer_refs(image: &StoredImage) -> Vec<LayerRef> {
    let created = image.layer_created_by();
    image
        .diff_ids
        .iter()
        .zip(image.layers())
        .zip(created)
        .enumerate()
        .map(|(index, ((d, l), created_by))| LayerRef {
            index,
            diff_id: d.to_string(),
            size: l.size(),
            created_by,
        })
        .collect()
}

/// Compare A and B: layers by diff_id, then the files of their merged filesystems.
pub fn diff(store: &Store, a: &StoredImage, b: &StoredImage) -> Result<ImageDiff> {
    let common_prefix = a
        .diff_ids
        .iter()
        .zip(&b.diff_ids)
        .take_while(|(x, y)| x == y)
        .count();
    let in_a: HashSet<&str> = a
        .config
        .rootfs
        .diff_ids
        .iter()
        .map(String::as_str)
        .collect();
    let in_b: HashSet<&str> = b
        .config
        .rootfs
        .diff_ids
        .iter()
        .map(String::as_str)
        .collect();
    let (layers_a, layers_b) = (layer_refs(a), layer_refs(b));
    let shared = layers_b
        .iter()
        .filter(|l| in_a.contains(l.diff_id.as_str()))
        .cloned()
        .collect();
    let added = layers_b
        .into_iter()
        .filter(|l| !in_a.contains(l.diff_id.as_str()))
        .collect();
    let removed = layers_a
        .into_iter()
        .filter(|l| !in_b.contains(l.diff_id.as_str()))
        .collect();
    let files_a = files(&read_layers(store, a)?);
    let files_b = files(&read_layers(store, b)?);
    let mut changes = Vec::new();
    for (path, before) in &files_a {
        match files_b.get(path) {
            None => changes.push(FileChange {
                path: path.clone(),
                change: Change::Removed,
                before: Some(before.clone()),
                after: None,
            }),
            Some(after) if after != before => changes.push(FileChange {
                path: path.clone(),
                change: Change::Modified,
                before: Some(before.clone()),
                after: Some(after.clone()),
            }),
            Some(_) => {}
        }
    }
    for (path, after) in &files_b {
        if !files_a.contains_key(path) {
            changes.push(FileChange {
                path: path.clone(),
                change: Change::Added,
                before: None,
                after: Some(after.clone()),
            });
        }
    }
    changes.sort_by(|x, y| x.path.cmp(&y.path));
    Ok(ImageDiff {
        a: (a.name(), a.digest.to_string()),
        b: (b.name(), b.digest.to_string()),
        common_prefix,
        shared,
        removed,
        added,
        files: changes,
    })
}
