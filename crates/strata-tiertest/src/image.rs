//! A stored image seen the way file and metadata tests see it: its config (Docker-extended, read
//! as raw JSON) and its merged filesystem, indexed from the layers' tar headers without unpacking.
//! File contents are read from the one layer that holds them, on demand.

use std::collections::BTreeMap;
use std::io::Read;

use strata_oci::fsindex::{FsIndex, Node, NodeKind, normalise};
use strata_oci::image_config::ImageConfig;
use strata_oci::{Digest, Store};

use crate::error::TierTestError;

/// A file or directory of an image that cannot be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ViewError {
    /// Resolving the path met a symlink loop.
    #[error("{path}: too many levels of symbolic links")]
    Loop {
        /// The path asked for.
        path: String,
        /// The resolver's error.
        source: strata_oci::scoped::SymlinkLoop,
    },
    /// Nothing at the path.
    #[error("{path}: no such file or directory")]
    NotFound {
        /// The path asked for.
        path: String,
    },
    /// A directory where a file was expected.
    #[error("{path} is a directory, not a file")]
    IsADirectory {
        /// The path asked for.
        path: String,
    },
    /// Neither a regular file nor a hard link to one.
    #[error("{path} is not a regular file")]
    NotAFile {
        /// The path asked for.
        path: String,
    },
    /// Not a directory.
    #[error("{path} is not a directory")]
    NotADirectory {
        /// The path asked for.
        path: String,
    },
    /// The index names a layer the image does not have.
    #[error("{path}: layer {index} is missing")]
    LayerMissing {
        /// The path.
        path: String,
        /// The layer's index.
        index: usize,
    },
    /// The layer holding the file could not be read.
    #[error("reading {path} from layer {layer}")]
    Read {
        /// The path.
        path: String,
        /// The layer's digest.
        layer: String,
        /// Why.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The index says the layer has the file, and it has not.
    #[error("{path}: not found in layer {layer}")]
    NotInLayer {
        /// The path.
        path: String,
        /// The layer's digest.
        layer: String,
    },
}

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
            strata_oci::layer_index::index_layer(store, &mut fs, layer).map_err(|e| {
                TierTestError::Image {
                    image: reference.to_string(),
                    message: format!("layer {}: {}", layer.digest(), strata_oci::report(&e)),
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
        let resolved = strata_oci::scoped::resolve(&self.fs, &absolute(path), false).ok()?;
        self.fs.get(&resolved)
    }

    /// The content of the regular file at `path`, symlinks followed inside the image.
    pub fn read_file(&self, path: &str) -> Result<Vec<u8>, ViewError> {
        let path_of = || path.to_string();
        let resolved =
            strata_oci::scoped::resolve(&self.fs, &absolute(path), true).map_err(|source| {
                ViewError::Loop {
                    path: path_of(),
                    source,
                }
            })?;
        let node = self
            .fs
            .get(&resolved)
            .ok_or_else(|| ViewError::NotFound { path: path_of() })?;
        match &node.kind {
            NodeKind::File => self.read_from_layer(node.layer, &resolved),
            NodeKind::Hardlink(target) => self.read_from_layer(node.layer, target),
            NodeKind::Dir => Err(ViewError::IsADirectory { path: path_of() }),
            _ => Err(ViewError::NotAFile { path: path_of() }),
        }
    }

    /// The entries directly under directory `path` (symlinks followed to reach it), sorted.
    pub fn read_dir(&self, path: &str) -> Result<Vec<(String, &Node)>, ViewError> {
        let path_of = || path.to_string();
        let resolved =
            strata_oci::scoped::resolve(&self.fs, &absolute(path), true).map_err(|source| {
                ViewError::Loop {
                    path: path_of(),
                    source,
                }
            })?;
        match self.fs.get(&resolved) {
            Some(n) if n.kind == NodeKind::Dir => {}
            Some(_) => return Err(ViewError::NotADirectory { path: path_of() }),
            None => return Err(ViewError::NotFound { path: path_of() }),
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
    fn read_from_layer(&self, index: usize, wanted: &str) -> Result<Vec<u8>, ViewError> {
        let layer = self
            .image
            .layers()
            .get(index)
            .ok_or_else(|| ViewError::LayerMissing {
                path: wanted.to_string(),
                index,
            })?;
        let fail = |e: Box<dyn std::error::Error + Send + Sync>| ViewError::Read {
            path: wanted.to_string(),
            layer: layer.digest().to_string(),
            source: e,
        };
        let mut archive = self
            .store
            .open_layer(layer)
            .map_err(|e| fail(Box::new(e)))?;
        let mut link_target = None;
        for entry in archive.entries().map_err(|e| fail(Box::new(e)))? {
            let mut entry = entry.map_err(|e| fail(Box::new(e)))?;
            let path = normalise(
                &entry
                    .path()
                    .map_err(|e| fail(Box::new(e)))?
                    .to_string_lossy(),
            );
            if path != wanted {
                continue;
            }
            if entry.header().entry_type() == tar::EntryType::Link {
                let target = entry
                    .link_name()
                    .map_err(|e| fail(Box::new(e)))?
                    .map(|t| normalise(&t.to_string_lossy()))
                    .unwrap_or_default();
                link_target = Some(target);
                break;
            }
            let mut content = Vec::new();
            entry
                .read_to_end(&mut content)
                .map_err(|e| fail(Box::new(e)))?;
            return Ok(content);
        }
        match link_target {
            Some(target) if target != wanted => self.read_from_layer(index, &target),
            _ => Err(ViewError::NotInLayer {
                path: wanted.to_string(),
                layer: layer.digest().to_string(),
            }),
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
