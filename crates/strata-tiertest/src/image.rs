//! A stored image seen the way file and metadata tests see it: its config (Docker-extended, read
//! as raw JSON) and its merged filesystem, indexed from the layers' tar headers without unpacking.
//! File contents are read from the one layer that holds them, on demand.

use std::collections::BTreeMap;
use std::io::Read;

use strata_build::config::ImageConfig;
use strata_build::fsindex::{FsIndex, Node, NodeKind, normalise};
use strata_oci::{Digest, Store};

use crate::error::TierTestError;

/// An image opened for file and metadata tests.
pub struct ImageView<'s> {
    store: &'s Store,
    reference: String,
    image: strata_oci::Image,
    config: ImageConfig,
    fs: FsIndex,
}

impl<'s> ImageView<'s> {
    /// Read `reference`'s manifest, config and layer headers.
    pub fn open(store: &'s Store, reference: &str) -> Result<ImageView<'s>, TierTestError> {
        let image = store
            .image(reference)
            .map_err(TierTestError::store(reference))?;
        let raw = store
            .blobs()
            .read_descriptor(image.config_descriptor())
            .map_err(TierTestError::store(reference))?;
        let config: ImageConfig =
            serde_json::from_slice(&raw).map_err(|e| TierTestError::Image {
                image: reference.to_string(),
                message: format!("config: {e}"),
            })?;
        let mut fs = FsIndex::new();
        for layer in image.layers() {
            strata_build::layer::index_layer(store, &mut fs, layer).map_err(|e| {
                TierTestError::Image {
                    image: reference.to_string(),
                    message: format!("layer {}: {e}", layer.digest()),
                }
            })?;
        }
        Ok(ImageView {
            store,
            reference: reference.to_string(),
            image,
            config,
            fs,
        })
    }

    /// The image's manifest digest.
    pub fn digest(&self) -> Digest {
        self.image.digest()
    }

    /// The reference it was opened with.
    pub fn reference(&self) -> &str {
        &self.reference
    }

    /// The image config.
    pub fn config(&self) -> &ImageConfig {
        &self.config
    }

    /// The environment of the config as a map (later definitions win).
    pub fn env(&self) -> BTreeMap<String, String> {
        self.config.env_pairs().into_iter().collect()
    }

    /// The node at `path` without following a final symlink (parent symlinks are followed inside
    /// the image, as `lstat` in a chroot would). None when it does not exist.
    pub fn lstat(&self, path: &str) -> Option<&Node> {
        let resolved = strata_build::scoped::resolve(&self.fs, &absolute(path), false).ok()?;
        self.fs.get(&resolved)
    }

    /// The content of the regular file at `path`, symlinks followed inside the image.
    pub fn read_file(&self, path: &str) -> Result<Vec<u8>, String> {
        let resolved = strata_build::scoped::resolve(&self.fs, &absolute(path), true)
            .map_err(|e| format!("{path}: too many levels of symbolic links ({e:?})"))?;
        let node = self
            .fs
            .get(&resolved)
            .ok_or_else(|| format!("{path}: no such file or directory"))?;
        match &node.kind {
            NodeKind::File => self.read_from_layer(node.layer, &resolved),
            NodeKind::Hardlink(target) => self.read_from_layer(node.layer, target),
            NodeKind::Dir => Err(format!("{path} is a directory, not a file")),
            _ => Err(format!("{path} is not a regular file")),
        }
    }

    /// The entries directly under directory `path` (symlinks followed to reach it), sorted.
    pub fn read_dir(&self, path: &str) -> Result<Vec<(String, &Node)>, String> {
        let resolved = strata_build::scoped::resolve(&self.fs, &absolute(path), true)
            .map_err(|e| format!("{path}: {e:?}"))?;
        match self.fs.get(&resolved) {
            Some(n) if n.kind == NodeKind::Dir => {}
            Some(_) => return Err(format!("{path} is not a directory")),
            None => return Err(format!("{path}: no such file or directory")),
        }
        let prefix = if resolved == "/" {
            "/".to_string()
        } else {
            format!("{resolved}/")
        };
        Ok(self
            .fs
            .iter()
            .filter_map(|(p, n)| {
                let rest = p.strip_prefix(&prefix)?;
                (!rest.is_empty() && !rest.contains('/')).then(|| (rest.to_string(), n))
            })
            .collect())
    }

    /// Stream layer `index` until the entry at `wanted` (absolute, normalised) and return its
    /// content; a hard link inside the layer is followed to its target.
    fn read_from_layer(&self, index: usize, wanted: &str) -> Result<Vec<u8>, String> {
        let layer = self
            .image
            .layers()
            .get(index)
            .ok_or_else(|| format!("{wanted}: layer {index} is missing"))?;
        let fail = |e: &dyn std::fmt::Display| {
            format!("reading {wanted} from layer {}: {e}", layer.digest())
        };
        let mut archive = self.store.open_layer(layer).map_err(|e| fail(&e))?;
        let mut link_target = None;
        for entry in archive.entries().map_err(|e| fail(&e))? {
            let mut entry = entry.map_err(|e| fail(&e))?;
            let path = normalise(&entry.path().map_err(|e| fail(&e))?.to_string_lossy());
            if path != wanted {
                continue;
            }
            if entry.header().entry_type() == tar::EntryType::Link {
                let target = entry
                    .link_name()
                    .map_err(|e| fail(&e))?
                    .map(|t| normalise(&t.to_string_lossy()))
                    .unwrap_or_default();
                link_target = Some(target);
                break;
            }
            let mut content = Vec::new();
            entry.read_to_end(&mut content).map_err(|e| fail(&e))?;
            return Ok(content);
        }
        match link_target {
            Some(target) if target != wanted => self.read_from_layer(index, &target),
            _ => Err(format!("{wanted}: not found in layer {}", layer.digest())),
        }
    }
}

fn absolute(path: &str) -> String {
    if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    }
}

/// The mode of `node` as Go's `os.FileMode.String()` prints it after `lstat` on an unpacked image
/// (what container-structure-test compares `permissions` with): type letters from `dalTLDpSugct?`
/// (`-` when none), then `rwxrwxrwx`. Symlinks are always `Lrwxrwxrwx`, as on Linux.
pub fn mode_string(node: &Node) -> String {
    let mut out = String::new();
    let mode = if matches!(node.kind, NodeKind::Symlink(_)) {
        0o777
    } else {
        node.mode
    };
    match node.kind {
        NodeKind::Dir => out.push('d'),
        NodeKind::Symlink(_) => out.push('L'),
        NodeKind::CharDevice | NodeKind::BlockDevice => out.push('D'),
        NodeKind::Fifo => out.push('p'),
        NodeKind::File | NodeKind::Hardlink(_) => {}
    }
    if mode & 0o4000 != 0 {
        out.push('u');
    }
    if mode & 0o2000 != 0 {
        out.push('g');
    }
    if node.kind == NodeKind::CharDevice {
        out.push('c');
    }
    if mode & 0o1000 != 0 {
        out.push('t');
    }
    if out.is_empty() {
        out.push('-');
    }
    for (i, c) in "rwxrwxrwx".chars().enumerate() {
        out.push(if mode & (1 << (8 - i)) != 0 { c } else { '-' });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(kind: NodeKind, mode: u32) -> Node {
        Node {
            kind,
            mode,
            uid: 0,
            gid: 0,
            size: 0,
            layer: 0,
        }
    }

    #[test]
    fn modes_print_as_go_does() {
        assert_eq!(mode_string(&node(NodeKind::File, 0o755)), "-rwxr-xr-x");
        assert_eq!(mode_string(&node(NodeKind::File, 0o4755)), "urwxr-xr-x");
        assert_eq!(mode_string(&node(NodeKind::Dir, 0o1777)), "dtrwxrwxrwx");
        assert_eq!(mode_string(&node(NodeKind::Dir, 0o2755)), "dgrwxr-xr-x");
        assert_eq!(
            mode_string(&node(NodeKind::Symlink("x".into()), 0o644)),
            "Lrwxrwxrwx"
        );
        assert_eq!(
            mode_string(&node(NodeKind::CharDevice, 0o666)),
            "Dcrw-rw-rw-"
        );
        assert_eq!(mode_string(&node(NodeKind::Fifo, 0o600)), "prw-------");
        assert_eq!(mode_string(&node(NodeKind::File, 0)), "----------");
    }
}
