//! Layer entries and the merged filesystem of an image, through the builder's
//! [`FsIndex`] (whiteouts, opaque directories, subtree replacement are applied there, once).

use std::collections::{BTreeMap, HashMap};

use strata_oci::Store;
use strata_oci::fsindex::{FsIndex, HeaderRecord, LayerEffect, NodeKind, normalise};
use strata_oci::tar::{EntryInfo, EntryKindInfo};

use crate::catalog::StoredImage;
use crate::error::Result;

/// Every layer's entries (with file content hashes), base first; each blob's digest is verified.
pub fn read_layers(store: &Store, image: &StoredImage) -> Result<Vec<Vec<EntryInfo>>> {
    image
        .layers()
        .iter()
        .map(|layer| Ok(store.layer_entries(layer)?))
        .collect()
}

/// The index's header record of a tar entry.
pub fn header(entry: &EntryInfo) -> HeaderRecord {
    let link = || {
        entry
            .link
            .as_ref()
            .map(|l| l.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let kind = match entry.kind {
        EntryKindInfo::Dir => NodeKind::Dir,
        EntryKindInfo::Symlink => NodeKind::Symlink(link()),
        EntryKindInfo::Hardlink => NodeKind::Hardlink(normalise(&link())),
        EntryKindInfo::Char => NodeKind::CharDevice,
        EntryKindInfo::Block => NodeKind::BlockDevice,
        EntryKindInfo::Fifo => NodeKind::Fifo,
        EntryKindInfo::File | EntryKindInfo::Other(_) => NodeKind::File,
    };
    HeaderRecord {
        path: entry.path.to_string_lossy().into_owned(),
        size: if kind == NodeKind::File {
            entry.size
        } else {
            0
        },
        kind,
        mode: entry.mode & 0o7777,
        uid: entry.uid,
        gid: entry.gid,
    }
}

/// The merged filesystem after every layer, and what each layer did to the layers below.
#[derive(Debug, Default)]
pub struct Merged {
    /// The final index.
    pub fs: FsIndex,
    /// Per layer: its effect on the index.
    pub effects: Vec<LayerEffect>,
}

/// Apply `layers` in order.
pub fn merge(layers: &[Vec<EntryInfo>]) -> Merged {
    let mut fs = FsIndex::new();
    let effects = layers
        .iter()
        .map(|entries| {
            let headers: Vec<HeaderRecord> = entries.iter().map(header).collect();
            fs.apply_headers(&headers)
        })
        .collect();
    Merged { fs, effects }
}

/// Per layer: normalised path → its entry (the last one when a layer repeats a path).
pub fn by_path(layers: &[Vec<EntryInfo>]) -> Vec<HashMap<String, &EntryInfo>> {
    layers
        .iter()
        .map(|entries| {
            entries
                .iter()
                .map(|e| (normalise(&e.path.to_string_lossy()), e))
                .collect()
        })
        .collect()
}

/// One path of a merged image, as the diff compares it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FileState {
    /// `dir`, `file`, `symlink`, `hardlink`, `char`, `block` or `fifo`.
    pub kind: &'static str,
    /// Content size (regular files).
    pub size: u64,
    /// Permission bits incl. setuid, setgid, sticky.
    pub mode: u32,
    /// Owner.
    pub uid: u64,
    /// Group.
    pub gid: u64,
    /// `sha256:…` of a regular file's content.
    pub content_digest: Option<String>,
    /// A link's target.
    pub link: Option<String>,
}

/// The merged filesystem of an image as path → state (the root `/` left out).
pub fn files(layers: &[Vec<EntryInfo>]) -> BTreeMap<String, FileState> {
    let merged = merge(layers);
    let index = by_path(layers);
    merged
        .fs
        .iter()
        .filter(|(path, _)| *path != "/")
        .map(|(path, node)| {
            let entry = index.get(node.layer).and_then(|m| m.get(path));
            let (kind, link) = match &node.kind {
                NodeKind::Dir => ("dir", None),
                NodeKind::File => ("file", None),
                NodeKind::Symlink(t) => ("symlink", Some(t.clone())),
                NodeKind::Hardlink(t) => ("hardlink", Some(t.clone())),
                NodeKind::CharDevice => ("char", None),
                NodeKind::BlockDevice => ("block", None),
                NodeKind::Fifo => ("fifo", None),
            };
            let state = FileState {
                kind,
                size: node.size,
                mode: node.mode,
                uid: node.uid,
                gid: node.gid,
                content_digest: entry
                    .and_then(|e| e.content_digest.as_ref())
                    .map(ToString::to_string),
                link,
            };
            (path.to_string(), state)
        })
        .collect()
}
