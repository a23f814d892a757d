//! Layers as tar archives: a deterministic writer, a tree collector, a reader and a safe unpacker.
//!
//! The key decision: headers are written by hand with `tar::Header` (ustar, PAX only when needed)
//! rather than with the tar crate's `Builder` in deterministic mode, which zeroes owners and drops
//! setuid bits. Every entry carries explicit [`Metadata`]; nothing is read from the writing machine
//! except file contents, so the same entries give the same bytes anywhere.

mod collect;
mod reader;
mod unpack;
mod writer;

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

pub use collect::{collect_tree, layer_xattrs};
pub use reader::{EntryInfo, EntryKindInfo, layer_archive, list_entries};
pub use unpack::{UnpackOptions, UnpackReport, Whiteouts, unpack_layer};
pub use writer::{Layer, LayerOptions, LayerTimes, LayerWriter, TarWriter};

use crate::error::{Error, Result};

/// The prefix of a whiteout file: `dir/.wh.name` deletes `dir/name` from lower layers.
pub const WHITEOUT_PREFIX: &str = ".wh.";
/// The opaque-directory marker: `dir/.wh..wh..opq` hides everything lower layers put in `dir`.
pub const OPAQUE_WHITEOUT: &str = ".wh..wh..opq";

/// Whether extended attribute `name` belongs to a layer's content: file capabilities
/// (`security.capability`) and user attributes (`user.*`), the ones the collector writes into
/// layers. Others describe the host (`security.selinux`) or are overlayfs' own bookkeeping
/// (`trusted.overlay.*`, `user.overlay.*`: opaque marks, redirects, metacopy), which an overlay
/// mount obeys; a layer's entries must never carry those, or a hostile layer could hide or
/// redirect what a RUN step sees of the image.
pub fn layer_xattr(name: &str) -> bool {
    (name == "security.capability" || name.starts_with("user.")) && !overlay_xattr(name)
}

/// Whether extended attribute `name` is overlayfs' own (`trusted.overlay.*` or
/// `user.overlay.*`, the latter under `userxattr` in a user namespace).
pub fn overlay_xattr(name: &str) -> bool {
    name.starts_with("trusted.overlay.") || name.starts_with("user.overlay.")
}

/// Owner, permissions and time of an entry; written exactly as given (mtime clamped).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Metadata {
    /// Permission bits including setuid (0o4000), setgid (0o2000) and sticky (0o1000); file-type
    /// bits are ignored.
    pub mode: u32,
    /// Numeric owner (the tar's user name is always empty).
    pub uid: u64,
    /// Numeric group (the tar's group name is always empty).
    pub gid: u64,
    /// Modification time, seconds since the epoch; clamped to the writer's `source_date_epoch`.
    pub mtime: u64,
    /// Extended attributes, written as PAX `SCHILY.xattr.<name>` records.
    pub xattrs: BTreeMap<String, Vec<u8>>,
}

impl Metadata {
    /// Mode and owners; mtime 0, no xattrs.
    pub fn new(mode: u32, uid: u64, gid: u64) -> Metadata {
        Metadata {
            mode,
            uid,
            gid,
            ..Metadata::default()
        }
    }
}

/// Where a regular file's content comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Content {
    /// A file on disk, read when the entry is written.
    Path(PathBuf),
    /// Bytes in memory.
    Bytes(Vec<u8>),
}

/// What an entry is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EntryKind {
    /// A directory.
    Dir,
    /// A regular file.
    File(Content),
    /// A symbolic link to the given target (stored verbatim).
    Symlink(PathBuf),
    /// A hard link to an earlier entry of the same layer (a layer path).
    Hardlink(PathBuf),
    /// A character device.
    CharDevice {
        /// Major number.
        major: u32,
        /// Minor number.
        minor: u32,
    },
    /// A block device.
    BlockDevice {
        /// Major number.
        major: u32,
        /// Minor number.
        minor: u32,
    },
    /// A named pipe.
    Fifo,
}

/// One entry of a layer: its path inside the layer (relative; leading `/` and `./` are dropped),
/// what it is, and its metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Path inside the layer.
    pub path: PathBuf,
    /// Kind and content.
    pub kind: EntryKind,
    /// Owner, mode, time, xattrs.
    pub meta: Metadata,
}

impl Entry {
    /// A directory.
    pub fn dir(path: impl Into<PathBuf>, meta: Metadata) -> Entry {
        Entry {
            path: path.into(),
            kind: EntryKind::Dir,
            meta,
        }
    }

    /// A regular file whose content is read from `source` when written.
    pub fn file_from_path(
        path: impl Into<PathBuf>,
        source: impl Into<PathBuf>,
        meta: Metadata,
    ) -> Entry {
        Entry {
            path: path.into(),
            kind: EntryKind::File(Content::Path(source.into())),
            meta,
        }
    }

    /// A regular file with in-memory content.
    pub fn file_bytes(
        path: impl Into<PathBuf>,
        bytes: impl Into<Vec<u8>>,
        meta: Metadata,
    ) -> Entry {
        Entry {
            path: path.into(),
            kind: EntryKind::File(Content::Bytes(bytes.into())),
            meta,
        }
    }

    /// A symlink.
    pub fn symlink(path: impl Into<PathBuf>, target: impl Into<PathBuf>, meta: Metadata) -> Entry {
        Entry {
            path: path.into(),
            kind: EntryKind::Symlink(target.into()),
            meta,
        }
    }

    /// A hard link to `target`, an earlier regular-file entry of the same layer.
    pub fn hardlink(path: impl Into<PathBuf>, target: impl Into<PathBuf>, meta: Metadata) -> Entry {
        Entry {
            path: path.into(),
            kind: EntryKind::Hardlink(target.into()),
            meta,
        }
    }

    /// A character device.
    pub fn char_device(path: impl Into<PathBuf>, major: u32, minor: u32, meta: Metadata) -> Entry {
        Entry {
            path: path.into(),
            kind: EntryKind::CharDevice { major, minor },
            meta,
        }
    }

    /// A block device.
    pub fn block_device(path: impl Into<PathBuf>, major: u32, minor: u32, meta: Metadata) -> Entry {
        Entry {
            path: path.into(),
            kind: EntryKind::BlockDevice { major, minor },
            meta,
        }
    }

    /// A named pipe.
    pub fn fifo(path: impl Into<PathBuf>, meta: Metadata) -> Entry {
        Entry {
            path: path.into(),
            kind: EntryKind::Fifo,
            meta,
        }
    }

    /// A whiteout deleting `path` (as seen by lower layers): the empty file `parent/.wh.name`.
    pub fn whiteout(path: impl AsRef<Path>) -> Result<Entry> {
        let path = path.as_ref();
        let name = path.file_name().ok_or_else(|| Error::LayerEntry {
            path: path.display().to_string(),
            reason: "a whiteout needs a file name".into(),
        })?;
        let mut wh = std::ffi::OsString::from(WHITEOUT_PREFIX);
        wh.push(name);
        let parent = path.parent().unwrap_or(Path::new(""));
        Ok(Entry::file_bytes(
            parent.join(wh),
            Vec::new(),
            Metadata::new(0o644, 0, 0),
        ))
    }

    /// An opaque marker for directory `dir`: lower layers' content of `dir` is hidden.
    pub fn opaque(dir: impl AsRef<Path>) -> Entry {
        Entry::file_bytes(
            dir.as_ref().join(OPAQUE_WHITEOUT),
            Vec::new(),
            Metadata::new(0o644, 0, 0),
        )
    }
}

/// Normalise a layer path: drop the root and `.` components; refuse `..` and the empty path.
pub fn layer_path(path: &Path) -> Result<PathBuf> {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            Component::ParentDir => {
                return Err(Error::LayerEntry {
                    path: path.display().to_string(),
                    reason: "'..' is not allowed in a layer path".into(),
                });
            }
            Component::Normal(part) => out.push(part),
        }
    }
    if out.as_os_str().is_empty() {
        return Err(Error::LayerEntry {
            path: path.display().to_string(),
            reason: "the layer root itself cannot be an entry".into(),
        });
    }
    Ok(out)
}

/// Sort entries the way layers are written: by path, component by component (a directory's
/// subtree follows it directly).
pub fn sort_entries(entries: &mut [Entry]) {
    entries.sort_by_cached_key(|e| sort_key(&e.path));
}

/// The ordering key of a layer path: its normal components (root and `.` dropped).
pub(crate) fn sort_key(path: &Path) -> PathBuf {
    path.components()
        .filter(|c| matches!(c, Component::Normal(_) | Component::ParentDir))
        .collect()
}
