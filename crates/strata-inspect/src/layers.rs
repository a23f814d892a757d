//! `strata layers`: per layer, its files and the bytes wasted by files later layers overwrite or
//! delete, and the image's efficiency score as dive computes it.
//!
//! Two measures, both from the same walk over the layers (through the builder's `FsIndex`):
//! - **wasted bytes** of a layer: the sizes of its files that a later layer overwrote or deleted.
//!   They are stored and pulled but invisible in the running image.
//! - **efficiency** (dive's score, `filetree.Efficiency`): every path of every layer's tree leaves
//!   is an occurrence with a size (a whiteout of a directory counts the size of what it deletes, a
//!   whiteout of a file counts 0); score = Σ per path of its smallest occurrence ÷ Σ of all
//!   occurrences, 1.0 when nothing has a size. dive's "potential wasted space" is the total size of
//!   the paths that occur more than once; it is reported as `potentialWastedBytes`.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;
use strata_oci::Store;
use strata_oci::fsindex::normalise;
use strata_oci::tar::{EntryInfo, EntryKindInfo, OPAQUE_WHITEOUT, WHITEOUT_PREFIX};

use crate::catalog::{Catalog, StoredImage};
use crate::error::Result;
use crate::fsview::{merge, read_layers};
use crate::lineage::Lineage;

/// What became of a file a layer wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "fate", rename_all = "lowercase")]
pub enum Fate {
    /// Visible in the final image.
    Kept,
    /// Replaced by layer `by`.
    Overwritten {
        /// The layer that replaced it.
        by: usize,
    },
    /// Deleted by layer `by` (a whiteout, an opaque directory, or its parent replaced).
    Deleted {
        /// The layer that deleted it.
        by: usize,
    },
}

/// One entry a layer wrote (whiteouts are listed in [`LayerReport::deleted`] instead).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LayerFile {
    /// Absolute path.
    pub path: String,
    /// `dir`, `file`, `symlink`, `hardlink`, `char`, `block`, `fifo` or `other`.
    pub kind: &'static str,
    /// Content size.
    pub size: u64,
    /// Permission bits.
    pub mode: u32,
    /// Owner.
    pub uid: u64,
    /// Group.
    pub gid: u64,
    /// `sha256:…` of a regular file's content.
    pub content_digest: Option<String>,
    /// Kept, or overwritten or deleted by a later layer.
    #[serde(flatten)]
    pub fate: Fate,
}

/// One layer's accounting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LayerReport {
    /// Position (0 = bottom).
    pub index: usize,
    /// Blob digest.
    pub digest: String,
    /// Uncompressed digest.
    pub diff_id: String,
    /// Blob size in bytes.
    pub size: u64,
    /// Sum of its regular files' sizes.
    pub content_bytes: u64,
    /// Number of tar entries.
    pub entries: usize,
    /// The history step that made it.
    pub created_by: Option<String>,
    /// The chain image that added it.
    pub chain_image: Option<String>,
    /// Its team.
    pub owner: Option<String>,
    /// Bytes of its files that later layers overwrote or deleted.
    pub wasted_bytes: u64,
    /// Bytes of earlier layers' files this layer overwrote or deleted.
    pub shadowed_bytes: u64,
    /// Paths it deleted with whiteouts.
    pub deleted: Vec<String>,
    /// Its entries, when asked for.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<LayerFile>,
}

/// A path stored more than once (dive's "inefficiencies" table).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Inefficiency {
    /// Absolute path.
    pub path: String,
    /// Occurrences across layers (writes and whiteouts).
    pub count: usize,
    /// Their total size.
    pub cumulative_size: u64,
}

/// The whole image's accounting.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LayersReport {
    /// The image's name.
    pub image: String,
    /// Its manifest digest.
    pub digest: String,
    /// Per layer, bottom first.
    pub layers: Vec<LayerReport>,
    /// Sum of every layer's file bytes.
    pub content_bytes: u64,
    /// Sum of the layers' wasted bytes.
    pub wasted_bytes: u64,
    /// dive's efficiency score, 0..=1.
    pub efficiency: f64,
    /// dive's "potential wasted space": total size of paths stored more than once.
    pub potential_wasted_bytes: u64,
    /// Paths stored more than once, largest first.
    pub inefficiencies: Vec<Inefficiency>,
}

fn kind_name(kind: &EntryKindInfo) -> &'static str {
    match kind {
        EntryKindInfo::Dir => "dir",
        EntryKindInfo::File => "file",
        EntryKindInfo::Symlink => "symlink",
        EntryKindInfo::Hardlink => "hardlink",
        EntryKindInfo::Char => "char",
        EntryKindInfo::Block => "block",
        EntryKindInfo::Fifo => "fifo",
        EntryKindInfo::Other(_) => "other",
    }
}

/// `dir/.wh.name` → `Some(("dir", "name"))`; the opaque marker gives `name` = `.wh..opq`.
fn whiteout_of(path: &str) -> Option<(&str, &str)> {
    let (dir, name) = match path.rfind('/') {
        Some(0) => ("/", &path[1..]),
        Some(i) => (&path[..i], &path[i + 1..]),
        None => ("/", path),
    };
    name.strip_prefix(WHITEOUT_PREFIX).map(|n| (dir, n))
}

fn join(dir: &str, name: &str) -> String {
    if dir == "/" {
        format!("/{name}")
    } else {
        format!("{dir}/{name}")
    }
}

fn under(path: &str, root: &str) -> bool {
    path == root || root == "/" || path.strip_prefix(root).is_some_and(|r| r.starts_with('/'))
}

/// Account for `image`'s layers; `with_files` lists every layer's entries.
pub fn layers(
    store: &Store,
    catalog: &Catalog,
    image: &StoredImage,
    with_files: bool,
) -> Result<LayersReport> {
    let entries = read_layers(store, image)?;
    Ok(account(catalog, image, &entries, with_files))
}

/// The accounting of `image` given its layers' entries (see [`layers`]).
pub fn account(
    catalog: &Catalog,
    image: &StoredImage,
    entries: &[Vec<EntryInfo>],
    with_files: bool,
) -> LayersReport {
    let merged = merge(entries);
    let lineage = Lineage::of(catalog, image);
    let created = image.layer_created_by();
    let n = entries.len();
    let mut wasted = vec![0u64; n];
    // (layer, path) → fate of what that layer wrote there.
    let mut fates: HashMap<(usize, String), Fate> = HashMap::new();
    for (k, effect) in merged.effects.iter().enumerate() {
        let written: HashSet<&str> = effect.written.iter().map(String::as_str).collect();
        for (path, node) in &effect.shadowed {
            if node.layer < n {
                wasted[node.layer] += node.size;
            }
            let fate = if written.contains(path.as_str()) {
                Fate::Overwritten { by: k }
            } else {
                Fate::Deleted { by: k }
            };
            fates.insert((node.layer, path.clone()), fate);
        }
    }
    // dive's efficiency: occurrences of each path over the layers' tree leaves.
    let mut occurrences: BTreeMap<String, (usize, u64, u64)> = BTreeMap::new();
    let mut add = |path: String, size: u64| {
        let slot = occurrences.entry(path).or_insert((0, 0, u64::MAX));
        slot.0 += 1;
        slot.1 += size;
        slot.2 = slot.2.min(size);
    };
    for (k, layer) in entries.iter().enumerate() {
        let mut paths: Vec<(String, &EntryInfo)> = layer
            .iter()
            .map(|e| (normalise(&e.path.to_string_lossy()), e))
            .collect();
        paths.sort_by(|a, b| a.0.cmp(&b.0));
        let shadowed = &merged.effects[k].shadowed;
        for (i, (path, entry)) in paths.iter().enumerate() {
            if let Some((dir, name)) = whiteout_of(path) {
                let (target, opaque) = if format!("{WHITEOUT_PREFIX}{name}") == OPAQUE_WHITEOUT {
                    (dir.to_string(), true)
                } else {
                    (join(dir, name), false)
                };
                let was_dir = opaque
                    || shadowed.iter().any(|(p, node)| {
                        *p == target && node.kind == strata_oci::fsindex::NodeKind::Dir
                    });
                let size = if was_dir {
                    shadowed
                        .iter()
                        .filter(|(p, _)| under(p, &target))
                        .map(|(_, node)| node.size)
                        .sum()
                } else {
                    0
                };
                add(target, size);
                continue;
            }
            let leaf = paths
                .get(i + 1)
                .is_none_or(|(next, _)| !under(next, path) || next == path);
            if entry.kind == EntryKindInfo::Dir && !leaf {
                continue;
            }
            let size = if entry.kind == EntryKindInfo::File {
                entry.size
            } else {
                0
            };
            add(path.clone(), size);
        }
    }
    let (mut minimum, mut total) = (0u64, 0u64);
    let mut inefficiencies = Vec::new();
    for (path, (count, cumulative, min)) in occurrences {
        minimum += min;
        total += cumulative;
        if count > 1 {
            inefficiencies.push(Inefficiency {
                path,
                count,
                cumulative_size: cumulative,
            });
        }
    }
    inefficiencies.sort_by(|a, b| {
        b.cumulative_size
            .cmp(&a.cumulative_size)
            .then_with(|| a.path.cmp(&b.path))
    });
    let efficiency = if total == 0 {
        1.0
    } else {
        minimum as f64 / total as f64
    };
    let reports: Vec<LayerReport> = entries
        .iter()
        .enumerate()
        .map(|(k, layer)| {
            let level = lineage.layer_owner(k);
            let files = if with_files {
                layer
                    .iter()
                    .filter_map(|e| {
                        let path = normalise(&e.path.to_string_lossy());
                        if whiteout_of(&path).is_some() {
                            return None;
                        }
                        let fate = fates.get(&(k, path.clone())).copied().unwrap_or(Fate::Kept);
                        Some(LayerFile {
                            path,
                            kind: kind_name(&e.kind),
                            size: e.size,
                            mode: e.mode & 0o7777,
                            uid: e.uid,
                            gid: e.gid,
                            content_digest: e.content_digest.as_ref().map(ToString::to_string),
                            fate,
                        })
                    })
                    .collect()
            } else {
                Vec::new()
            };
            LayerReport {
                index: k,
                digest: image.layers()[k].digest().to_string(),
                diff_id: image.diff_ids[k].to_string(),
                size: image.layers()[k].size(),
                content_bytes: layer
                    .iter()
                    .filter(|e| e.kind == EntryKindInfo::File)
                    .map(|e| e.size)
                    .sum(),
                entries: layer.len(),
                created_by: created[k].clone(),
                chain_image: level.and_then(|l| l.chain_image.clone()),
                owner: level.and_then(|l| l.owner.clone()),
                wasted_bytes: wasted[k],
                shadowed_bytes: merged.effects[k].shadowed_bytes,
                deleted: merged.effects[k].deleted.clone(),
                files,
            }
        })
        .collect();
    LayersReport {
        image: image.name(),
        digest: image.digest.to_string(),
        content_bytes: reports.iter().map(|r| r.content_bytes).sum(),
        wasted_bytes: wasted.iter().sum(),
        potential_wasted_bytes: inefficiencies.iter().map(|i| i.cumulative_size).sum(),
        layers: reports,
        efficiency,
        inefficiencies,
    }
}
