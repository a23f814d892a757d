//! The image's filesystem as an index of paths, built from layer tar headers without unpacking.
//!
//! The builder needs to know what the parent image holds to place COPY results (is the destination
//! an existing directory? is `/usr/local` a symlink?), to resolve `--chown` names through
//! `/etc/passwd`, and to tell which directories a COPY creates. Reading headers is cheap; contents are
//! fetched only for the few files that are needed ([`FsIndex::layer_of`] says which layer has them).

use std::collections::BTreeMap;
use std::io::{self, Read};

use serde::{Deserialize, Serialize};

use crate::scoped::LinkReader;

/// What kind of filesystem object a path is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum NodeKind {
    /// A directory.
    Dir,
    /// A regular file.
    File,
    /// A symbolic link and its target.
    Symlink(String),
    /// A hard link to another path of the image (absolute).
    Hardlink(String),
    /// A character device.
    CharDevice,
    /// A block device.
    BlockDevice,
    /// A named pipe.
    Fifo,
}

/// One path of the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Its kind.
    pub kind: NodeKind,
    /// Permission bits including setuid, setgid and sticky.
    pub mode: u32,
    /// Owner.
    pub uid: u64,
    /// Group.
    pub gid: u64,
    /// Size in bytes (regular files).
    pub size: u64,
    /// Index of the layer that last wrote it.
    pub layer: usize,
}

/// The merged view of an image's layers: absolute path → node. Paths are normalised: `/a/b`.
#[derive(Debug, Clone, Default)]
pub struct FsIndex {
    nodes: BTreeMap<String, Node>,
    layers: usize,
}

/// One tar header as the index needs it: the entry's path as written, its kind and metadata. A
/// layer's headers are small beside its content, so they can be cached and replayed with
/// [`FsIndex::apply_headers`] instead of decompressing the layer again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeaderRecord {
    /// The entry path as written in the archive.
    pub path: String,
    /// Its kind (whiteouts are regular files named `.wh.*`).
    pub kind: NodeKind,
    /// Permission bits including setuid, setgid and sticky.
    pub mode: u32,
    /// Owner.
    pub uid: u64,
    /// Group.
    pub gid: u64,
    /// Size in bytes (regular files; 0 otherwise).
    pub size: u64,
}

/// Read the headers of an uncompressed tar layer, in archive order.
pub fn read_headers<R: Read>(tar: R) -> io::Result<Vec<HeaderRecord>> {
    let mut archive = tar::Archive::new(tar);
    let mut out = Vec::new();
    for entry in archive.entries()? {
        let entry = entry?;
        let header = entry.header();
        let path = entry.path()?.to_string_lossy().into_owned();
        let link = || -> io::Result<String> {
            Ok(entry
                .link_name()?
                .map(|l| l.to_string_lossy().into_owned())
                .unwrap_or_default())
        };
        let kind = match header.entry_type() {
            tar::EntryType::Directory => NodeKind::Dir,
            tar::EntryType::Symlink => NodeKind::Symlink(link()?),
            tar::EntryType::Link => NodeKind::Hardlink(normalise(&link()?)),
            tar::EntryType::Char => NodeKind::CharDevice,
            tar::EntryType::Block => NodeKind::BlockDevice,
            tar::EntryType::Fifo => NodeKind::Fifo,
            _ => NodeKind::File,
        };
        out.push(HeaderRecord {
            path,
            mode: header.mode()? & 0o7777,
            uid: header.uid()?,
            gid: header.gid()?,
            size: if kind == NodeKind::File {
                header.size()?
            } else {
                0
            },
            kind,
        });
    }
    Ok(out)
}

/// What applying one tar layer to the index did, for accounting (`strata layers`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LayerEffect {
    /// Paths the layer wrote (files, dirs, links), in tar order.
    pub written: Vec<String>,
    /// Paths it deleted with a whiteout (each deleted subtree counted by its root).
    pub deleted: Vec<String>,
    /// Bytes of earlier files the layer overwrote or deleted (space wasted in the image).
    pub shadowed_bytes: u64,
    /// The earlier paths the layer overwrote or deleted, with their nodes (whose `layer` says
    /// which layer's bytes became dead), in removal order.
    pub shadowed: Vec<(String, Node)>,
}

impl LayerEffect {
    /// Account for nodes the layer removed from lower layers.
    fn shadow(&mut self, removed: Vec<(String, Node)>) {
        self.shadowed_bytes += removed.iter().map(|(_, n)| n.size).sum::<u64>();
        self.shadowed.extend(removed);
    }
}

impl FsIndex {
    /// An empty filesystem with only `/`.
    pub fn new() -> Self {
        let mut nodes = BTreeMap::new();
        nodes.insert(
            "/".to_string(),
            Node {
                kind: NodeKind::Dir,
                mode: 0o755,
                uid: 0,
                gid: 0,
                size: 0,
                layer: 0,
            },
        );
        Self { nodes, layers: 0 }
    }

    /// Number of layers applied.
    pub fn layer_count(&self) -> usize {
        self.layers
    }

    /// The node at `path`, not following symlinks.
    pub fn get(&self, path: &str) -> Option<&Node> {
        self.nodes.get(&normalise(path))
    }

    /// Every path and node, sorted.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Node)> {
        self.nodes.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// The layer index holding the current content of `path`, if it is a regular file.
    pub fn layer_of(&self, path: &str) -> Option<usize> {
        self.get(path)
            .filter(|n| n.kind == NodeKind::File)
            .map(|n| n.layer)
    }

    /// Start a new layer whose paths are added with [`FsIndex::insert`]; returns its index.
    pub fn begin_layer(&mut self) -> usize {
        self.layers += 1;
        self.layers - 1
    }

    /// Add or replace `path` (a whole subtree is replaced unless both old and new are directories).
    pub fn insert(&mut self, path: &str, node: Node) {
        let path = normalise(path);
        if let Some(old) = self.nodes.get(&path)
            && !(old.kind == NodeKind::Dir && node.kind == NodeKind::Dir)
        {
            self.remove_tree(&path);
        }
        self.nodes.insert(path, node);
    }

    /// Apply one uncompressed tar layer on top: entries add or replace paths, `.wh.<name>` deletes a
    /// path and its subtree, `.wh..wh..opq` empties a directory of what lower layers put there.
    pub fn apply_tar<R: Read>(&mut self, tar: R) -> io::Result<LayerEffect> {
        Ok(self.apply_headers(&read_headers(tar)?))
    }

    /// Apply one layer given by its headers (see [`read_headers`]), as [`FsIndex::apply_tar`] does.
    pub fn apply_headers(&mut self, headers: &[HeaderRecord]) -> LayerEffect {
        let layer = self.layers;
        self.layers += 1;
        let mut effect = LayerEffect::default();
        for record in headers {
            let path = normalise(&record.path);
            let (dir, name) = split(&path);
            if name == ".wh..wh..opq" {
                let removed = self.remove_below(dir, layer);
                effect.shadow(removed);
                continue;
            }
            if let Some(deleted) = name.strip_prefix(".wh.") {
                let target = join(dir, deleted);
                let removed = self.remove_tree(&target);
                effect.shadow(removed);
                effect.deleted.push(target);
                continue;
            }
            let node = Node {
                kind: record.kind.clone(),
                mode: record.mode,
                uid: record.uid,
                gid: record.gid,
                size: record.size,
                layer,
            };
            if let Some(old) = self.nodes.get(&path) {
                // A directory entry re-stating a directory does not hide its contents.
                if !(old.kind == NodeKind::Dir && node.kind == NodeKind::Dir) {
                    let removed = self.remove_tree(&path);
                    effect.shadow(removed);
                }
            }
            effect.written.push(path.clone());
            self.nodes.insert(path, node);
        }
        effect
    }

    /// Remove `path` and everything under it; returns the removed paths and nodes.
    fn remove_tree(&mut self, path: &str) -> Vec<(String, Node)> {
        let mut removed: Vec<(String, Node)> = self.nodes.remove_entry(path).into_iter().collect();
        let prefix = if path == "/" {
            "/".to_string()
        } else {
            format!("{path}/")
        };
        let doomed: Vec<String> = self
            .nodes
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .map(|(k, _)| k.clone())
            .collect();
        removed.extend(
            doomed
                .into_iter()
                .filter_map(|k| self.nodes.remove_entry(&k)),
        );
        removed
    }

    /// Remove everything under directory `dir` written by layers below `layer`.
    fn remove_below(&mut self, dir: &str, layer: usize) -> Vec<(String, Node)> {
        let prefix = if dir == "/" {
            "/".to_string()
        } else {
            format!("{dir}/")
        };
        let doomed: Vec<String> = self
            .nodes
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .filter(|(_, n)| n.layer < layer)
            .map(|(k, _)| k.clone())
            .collect();
        doomed
            .into_iter()
            .filter_map(|k| self.nodes.remove_entry(&k))
            .collect()
    }
}

impl LinkReader for FsIndex {
    fn read_link(&self, path: &str) -> Option<String> {
        match &self.get(path)?.kind {
            NodeKind::Symlink(target) => Some(target.clone()),
            _ => None,
        }
    }
}

/// `a/./b/` → `/a/b`; the root is `/`.
pub fn normalise(path: &str) -> String {
    let parts: Vec<&str> = path
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    format!("/{}", parts.join("/"))
}

fn split(path: &str) -> (&str, &str) {
    match path.rfind('/') {
        Some(0) => ("/", &path[1..]),
        Some(pos) => (&path[..pos], &path[pos + 1..]),
        None => ("/", path),
    }
}

fn join(dir: &str, name: &str) -> String {
    if dir == "/" {
        format!("/{name}")
    } else {
        format!("{dir}/{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    enum E<'a> {
        Dir(&'a str),
        File(&'a str, &'a [u8]),
        Link(&'a str, &'a str),
    }

    fn tar(entries: &[E]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for e in entries {
            let mut h = tar::Header::new_gnu();
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(0);
            match e {
                E::Dir(p) => {
                    h.set_entry_type(tar::EntryType::Directory);
                    h.set_mode(0o755);
                    h.set_size(0);
                    b.append_data(&mut h, p, io::empty()).unwrap();
                }
                E::File(p, data) => {
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_mode(0o644);
                    h.set_size(data.len() as u64);
                    b.append_data(&mut h, p, *data).unwrap();
                }
                E::Link(p, target) => {
                    h.set_entry_type(tar::EntryType::Symlink);
                    h.set_mode(0o777);
                    h.set_size(0);
                    b.append_link(&mut h, p, target).unwrap();
                }
            }
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn layers_merge_with_whiteouts_and_opaque_dirs() {
        let mut fs = FsIndex::new();
        fs.apply_tar(
            &tar(&[
                E::Dir("etc"),
                E::File("etc/passwd", b"root"),
                E::File("etc/group", b"g"),
                E::Dir("var/www"),
                E::File("var/www/old.html", b"12345"),
                E::Link("usr/local", "/opt"),
            ])[..],
        )
        .unwrap();
        let effect = fs
            .apply_tar(
                &tar(&[
                    E::File("etc/.wh.group", b""),
                    E::Dir("var/www"),
                    E::File("var/www/.wh..wh..opq", b""),
                    E::File("var/www/new.html", b"n"),
                    E::File("etc/passwd", b"root2"),
                ])[..],
            )
            .unwrap();
        assert!(fs.get("/etc/group").is_none());
        assert!(fs.get("/var/www/old.html").is_none());
        assert_eq!(fs.get("/var/www/new.html").unwrap().layer, 1);
        assert_eq!(fs.layer_of("/etc/passwd"), Some(1));
        assert_eq!(fs.read_link("/usr/local").as_deref(), Some("/opt"));
        assert_eq!(effect.deleted, ["/etc/group"]);
        // group (1) + old.html (5) + the first passwd (4)
        assert_eq!(effect.shadowed_bytes, 10);
        let shadowed: Vec<&str> = effect.shadowed.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(shadowed, ["/etc/group", "/var/www/old.html", "/etc/passwd"]);
        assert!(effect.shadowed.iter().all(|(_, n)| n.layer == 0));
    }

    #[test]
    fn normalise_paths() {
        assert_eq!(normalise("./a//b/"), "/a/b");
        assert_eq!(normalise(""), "/");
        assert_eq!(split("/a"), ("/", "a"));
        assert_eq!(split("/a/b"), ("/a", "b"));
    }
}
