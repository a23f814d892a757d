//! The safe extractor: apply a layer onto a directory, never writing outside it.
//!
//! Every entry path is cleaned lexically (`a/../b` is `b`; a path that climbs above the root is
//! refused; a leading `/` is dropped; paths and link targets over 4096 bytes are refused). All
//! writes go through [`crate::rootdir::Root`]: the entry's parent directory is opened *by
//! descriptor*, resolved inside the root as if the root were `/` (a symlinked parent is followed,
//! but an absolute target restarts at the root and `..` stops at it, so `a -> /tmp` then `a/evil`
//! writes `ROOT/tmp/evil`), and the final component is created, replaced, chowned, chmodded or
//! timestamped with `*at` calls that never follow it (a regular file, through the descriptor it
//! was created with). Each entry resolves its parent at the moment of its write, so a parent
//! replaced by an earlier entry cannot redirect it; consecutive entries of one directory share a
//! resolution, since an entry only ever changes a child of its parent, never the path to it.
//! Hard-link targets are resolved the same way and must already exist inside the root.
//!
//! Directory modes and mtimes are applied after the last entry (children change a directory's
//! mtime, and a read-only mode would block them). That pass holds no descriptors: it re-opens
//! each directory with no symlink allowed on the way (falling back to resolution inside the
//! root only when the entry's own path went through a symlink) and applies the mode and mtime
//! with `fchmod`/`futimens` only when the opened directory is the very inode the entry made
//! (same device and inode number). A directory replaced later in the layer, by a symlink or
//! anything else, keeps its new owner's metadata.

use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::io::{self, Read, Write as _};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use ::tar::EntryType;
use oci_spec::image::Descriptor;
use rustix::fs::FileType;

use super::{OPAQUE_WHITEOUT, WHITEOUT_PREFIX};
use crate::digest::Digest;
use crate::error::{Error, Result, stream_err};
use crate::layout::Store;
use crate::rootdir::{Dir, Follow, Kind, MAX_PATH, Resolver, Root, RootError};

/// What to do with entries named `.wh.*`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Whiteouts {
    /// Apply them as OCI whiteouts (`.wh.name` deletes, `.wh..wh..opq` empties): image layers.
    Apply,
    /// Write them as ordinary files: a snapshot of one layer, converted afterwards.
    Keep,
    /// Refuse them with [`Error::UnsafeEntry`] naming the entry: archives that are not layers
    /// (`ADD`), whose `.wh.` files would become whiteouts once written into a layer.
    Refuse,
}

/// How to unpack.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnpackOptions {
    /// Set owners from the archive (needs root or a user namespace). Default: when running as
    /// root.
    pub chown: bool,
    /// What `.wh.*` entries mean. Default [`Whiteouts::Apply`].
    pub whiteouts: Whiteouts,
    /// How paths are resolved inside the destination. Default [`Resolver::Auto`].
    pub resolver: Resolver,
}

impl Default for UnpackOptions {
    fn default() -> Self {
        UnpackOptions {
            chown: rustix::process::geteuid().is_root(),
            whiteouts: Whiteouts::Apply,
            resolver: Resolver::Auto,
        }
    }
}

/// What an unpack did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct UnpackReport {
    /// Entries applied (whiteouts included).
    pub entries: u64,
    /// Whiteouts applied.
    pub whiteouts: u64,
    /// Device nodes not created for lack of privilege (their paths).
    pub skipped_devices: Vec<PathBuf>,
    /// xattrs not set (`path: name`): refused by the file system or privilege, or overlayfs' own
    /// (`trusted.overlay.*`, `user.overlay.*`), which a layer may not carry.
    pub skipped_xattrs: Vec<String>,
}

/// Unpack a (possibly gzip/zstd-compressed) layer tar from `reader` onto `dest`, which must exist.
pub fn unpack_layer<R: Read>(
    reader: R,
    dest: &Path,
    options: &UnpackOptions,
) -> Result<UnpackReport> {
    let mut archive = super::layer_archive(reader)?;
    Unpacker::new(dest, options)?.run(&mut archive)
}

impl Store {
    /// Unpack a stored layer onto `dest`; the blob's digest is verified (the unpack fails at the
    /// end when it does not match).
    pub fn unpack_layer(
        &self,
        descriptor: &Descriptor,
        dest: &Path,
        options: &UnpackOptions,
    ) -> Result<UnpackReport> {
        let digest = Digest::from_oci(descriptor.digest())?;
        let mut archive = self.open_layer(descriptor)?;
        let report = Unpacker::new(dest, options)?.run(&mut archive)?;
        archive
            .into_inner()
            .into_inner()
            .finish()
            .map_err(|e| match e {
                Error::Stream { source, .. } => stream_err(format!("layer {digest}"))(source),
                other => other,
            })?;
        Ok(report)
    }
}

/// A directory whose mode and mtime wait for the end of the unpack.
struct PendingDir {
    /// Its cleaned entry path.
    components: Vec<OsString>,
    /// The `(device, inode)` the entry made or kept.
    identity: (u64, u64),
    /// Whether the entry's path reached it with no symlink on the way.
    direct: bool,
    mode: u32,
    mtime: u64,
}

/// The parent directory the previous entry resolved, kept for the next entry of the same
/// directory (a layer lists a directory's children together).
struct ResolvedParent {
    components: Vec<OsString>,
    dir: Dir,
    identity: (u64, u64),
}

/// How much of a file's content is written per call: a tar entry's reader hands out 8 KiB at a
/// time, which made extracting a Debian base five write calls per file.
const WRITE_BUFFER: usize = 256 * 1024;

struct Unpacker<'a> {
    root: Root,
    options: &'a UnpackOptions,
    /// Entries this layer created, as (parent device, parent inode, name): an opaque marker
    /// keeps them. Keyed by the parent's identity, not a path, so no symlink can alias them.
    created: HashSet<(u64, u64, OsString)>,
    dirs: Vec<PendingDir>,
    report: UnpackReport,
}

fn unsafe_entry(path: &[u8], reason: impl Into<String>) -> Error {
    Error::UnsafeEntry {
        path: String::from_utf8_lossy(path).into_owned(),
        reason: reason.into(),
    }
}

/// A resolver error on entry `raw`: I/O stays I/O, anything else is a refused entry.
fn entry_err(raw: &[u8]) -> impl FnOnce(RootError) -> Error + '_ {
    move |e| match e {
        RootError::Io { path, source } => Error::Io { path, source },
        other => unsafe_entry(raw, other.to_string()),
    }
}

/// Clean an archive path lexically into normal components; refuse paths climbing above the root
/// and paths longer than [`MAX_PATH`].
fn clean(raw: &[u8]) -> Result<Vec<OsString>> {
    if raw.len() > MAX_PATH {
        return Err(unsafe_entry(
            &raw[..64],
            format!("path of {} bytes is longer than {MAX_PATH}", raw.len()),
        ));
    }
    let mut out: Vec<OsString> = Vec::new();
    for part in raw.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => {
                if out.pop().is_none() {
                    return Err(unsafe_entry(raw, "path climbs above the root with '..'"));
                }
            }
            name => out.push(OsStr::from_bytes(name).to_os_string()),
        }
    }
    Ok(out)
}

fn join(components: &[OsString]) -> PathBuf {
    components.iter().collect()
}

impl<'a> Unpacker<'a> {
    fn new(dest: &Path, options: &'a UnpackOptions) -> Result<Unpacker<'a>> {
        let root = Root::open_with(dest, options.resolver).map_err(|e| match e {
            RootError::Io { path, source } => Error::Io { path, source },
            other => Error::Io {
                path: dest.to_path_buf(),
                source: io::Error::other(other),
            },
        })?;
        Ok(Unpacker {
            root,
            options,
            created: HashSet::new(),
            dirs: Vec::new(),
            report: UnpackReport::default(),
        })
    }

    fn run<R: Read>(mut self, archive: &mut ::tar::Archive<R>) -> Result<UnpackReport> {
        let err = || stream_err("reading the layer");
        let mut parent = None;
        for entry in archive.entries().map_err(err())? {
            let entry = entry.map_err(err())?;
            self.apply(entry, &mut parent)?;
        }
        // Children before parents; of several entries for one directory the last one wins.
        let mut applied = HashSet::new();
        for pending in self.dirs.iter().rev() {
            let rel = join(&pending.components);
            let raw = rel.as_os_str().as_bytes();
            // No symlink may be on the way now; only when the entry's own path went through
            // one (a lower layer's `lib -> usr/lib`) is it resolved inside the root. Either
            // way the directory must be the inode the entry made: a replaced one is skipped.
            let follow = if pending.direct {
                Follow::Never
            } else {
                Follow::InRoot
            };
            let Ok(dir) = self.root.open_dir(&rel, follow, false) else {
                continue;
            };
            let identity = dir.identity().map_err(entry_err(raw))?;
            if identity != pending.identity || !applied.insert(identity) {
                continue;
            }
            dir.set_own_mode(pending.mode).map_err(entry_err(raw))?;
            dir.set_own_mtime(pending.mtime).map_err(entry_err(raw))?;
        }
        Ok(self.report)
    }

    fn apply<R: Read>(
        &mut self,
        mut entry: ::tar::Entry<'_, R>,
        resolved: &mut Option<ResolvedParent>,
    ) -> Result<()> {
        let raw = entry.path_bytes().into_owned();
        let components = clean(&raw)?;
        let Some((name, parents)) = components.split_last() else {
            return Ok(()); // the root itself: leave dest's own metadata alone
        };
        let header = entry.header().clone();
        let kind = header.entry_type();
        match kind {
            EntryType::XGlobalHeader => return Ok(()),
            EntryType::Directory
            | EntryType::Regular
            | EntryType::Continuous
            | EntryType::GNUSparse
            | EntryType::Symlink
            | EntryType::Link
            | EntryType::Char
            | EntryType::Block
            | EntryType::Fifo => {}
            other => {
                return Err(unsafe_entry(
                    &raw,
                    format!("unsupported entry type {:?}", other.as_byte() as char),
                ));
            }
        }
        if resolved.as_ref().is_none_or(|r| r.components != parents) {
            // Dropped first: a failed resolution must not leave the previous one in place.
            *resolved = None;
            let dir = self
                .root
                .open_dir(join(parents), Follow::InRoot, true)
                .map_err(entry_err(&raw))?;
            let identity = dir.identity().map_err(entry_err(&raw))?;
            *resolved = Some(ResolvedParent {
                components: parents.to_vec(),
                dir,
                identity,
            });
        }
        let resolved = resolved.as_ref().expect("resolved just above");
        let (parent, parent_id) = (&resolved.dir, resolved.identity);
        self.report.entries += 1;
        let name_bytes = name.as_bytes();

        if name_bytes.starts_with(WHITEOUT_PREFIX.as_bytes()) {
            match self.options.whiteouts {
                Whiteouts::Keep => {}
                Whiteouts::Refuse => {
                    return Err(unsafe_entry(
                        &raw,
                        "a file named .wh.* would act as a whiteout once in a layer",
                    ));
                }
                Whiteouts::Apply => {
                    self.report.whiteouts += 1;
                    if name_bytes == OPAQUE_WHITEOUT.as_bytes() {
                        return self.opaque(parent, &raw);
                    }
                    if name_bytes.starts_with(b".wh..wh.") {
                        return Ok(()); // other aufs metadata: nothing to apply
                    }
                    let victim = OsStr::from_bytes(&name_bytes[WHITEOUT_PREFIX.len()..]);
                    if victim.is_empty() || victim == "." || victim == ".." {
                        return Err(unsafe_entry(&raw, "malformed whiteout"));
                    }
                    return parent.remove_all(victim).map_err(entry_err(&raw));
                }
            }
        }

        let mode = header.mode().unwrap_or(0o644) & 0o7777;
        let uid = header.uid().unwrap_or(0);
        let gid = header.gid().unwrap_or(0);
        let mut mtime = header.mtime().unwrap_or(0);
        let mut xattrs = Vec::new();
        if let Some(extensions) = entry.pax_extensions().map_err(stream_err("reading PAX"))? {
            for ext in extensions.flatten() {
                let Ok(key) = ext.key() else { continue };
                if let Some(xattr) = key.strip_prefix("SCHILY.xattr.") {
                    xattrs.push((xattr.to_string(), ext.value_bytes().to_vec()));
                } else if key == "mtime"
                    && let Some(t) = ext
                        .value()
                        .ok()
                        .and_then(|v| v.split('.').next()?.parse().ok())
                {
                    mtime = t;
                }
            }
        }

        // Replace whatever is at the final component, never following it; keep existing dirs.
        let existing = parent.kind(name).map_err(entry_err(&raw))?;
        let keep_dir = kind == EntryType::Directory && existing == Some(Kind::Dir);
        if existing.is_some() && !keep_dir {
            parent.remove_all(name).map_err(entry_err(&raw))?;
        }

        match kind {
            EntryType::Directory => {
                if !keep_dir {
                    parent.mkdir(name).map_err(entry_err(&raw))?;
                }
            }
            EntryType::Symlink => {
                let link = entry
                    .link_name_bytes()
                    .ok_or_else(|| unsafe_entry(&raw, "symlink without a target"))?;
                if link.len() > MAX_PATH {
                    return Err(unsafe_entry(&raw, "symlink target longer than 4096 bytes"));
                }
                parent
                    .symlink(name, OsStr::from_bytes(&link))
                    .map_err(entry_err(&raw))?;
            }
            EntryType::Link => {
                let link = entry
                    .link_name_bytes()
                    .ok_or_else(|| unsafe_entry(&raw, "hard link without a target"))?
                    .into_owned();
                let link_components = clean(&link).map_err(|e| match e {
                    Error::UnsafeEntry { reason, .. } => unsafe_entry(
                        &raw,
                        format!(
                            "hard link target {}: {reason}",
                            String::from_utf8_lossy(&link)
                        ),
                    ),
                    other => other,
                })?;
                let Some((link_name, link_parents)) = link_components.split_last() else {
                    return Err(unsafe_entry(&raw, "hard link to the root"));
                };
                let outside = || {
                    unsafe_entry(
                        &raw,
                        format!(
                            "hard link target {} is not inside the root",
                            String::from_utf8_lossy(&link)
                        ),
                    )
                };
                let source = match self
                    .root
                    .open_dir(join(link_parents), Follow::InRoot, false)
                {
                    Ok(dir) => dir,
                    Err(RootError::Io { path, source }) => return Err(Error::Io { path, source }),
                    Err(_) => return Err(outside()),
                };
                match source.kind(link_name).map_err(entry_err(&raw))? {
                    None => return Err(outside()),
                    Some(Kind::Dir) => return Err(unsafe_entry(&raw, "hard link to a directory")),
                    Some(_) => {}
                }
                parent
                    .hardlink(name, &source, link_name)
                    .map_err(entry_err(&raw))?;
                // A hard link shares the target's inode: no metadata of its own to apply.
                self.created
                    .insert((parent_id.0, parent_id.1, name.clone()));
                return Ok(());
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                let major = header.device_major().ok().flatten().unwrap_or(0);
                let minor = header.device_minor().ok().flatten().unwrap_or(0);
                let file_type = match kind {
                    EntryType::Char => FileType::CharacterDevice,
                    EntryType::Block => FileType::BlockDevice,
                    _ => FileType::Fifo,
                };
                if !parent
                    .mknod(name, file_type, major, minor)
                    .map_err(entry_err(&raw))?
                {
                    self.report.skipped_devices.push(join(&components));
                    return Ok(());
                }
            }
            _ => {
                // Regular, contiguous and sparse files: their content, then their metadata
                // through the descriptor they were created with.
                let mut file = parent.create_file(name).map_err(entry_err(&raw))?;
                let extracting =
                    || stream_err(format!("extracting {}", String::from_utf8_lossy(&raw)));
                let mut out = io::BufWriter::with_capacity(WRITE_BUFFER, &mut file);
                io::copy(&mut entry, &mut out).map_err(extracting())?;
                out.flush().map_err(extracting())?;
                drop(out);
                let owner = self.options.chown.then_some((uid as u32, gid as u32));
                parent
                    .finish_file(name, &file, owner, mode, mtime)
                    .map_err(entry_err(&raw))?;
                self.set_xattrs(&components, xattrs, |key, value| {
                    Ok(Dir::set_file_xattr(&file, key, value))
                })?;
                self.created
                    .insert((parent_id.0, parent_id.1, name.clone()));
                return Ok(());
            }
        }

        if self.options.chown {
            parent
                .chown(name, uid as u32, gid as u32)
                .map_err(entry_err(&raw))?;
        }
        if kind != EntryType::Symlink && kind != EntryType::Directory {
            // After chown, which clears setuid/setgid. Directories get their mode at the end, so
            // a read-only directory can still receive its children.
            parent.set_mode(name, mode).map_err(entry_err(&raw))?;
        }
        self.set_xattrs(&components, xattrs, |key, value| {
            parent.set_xattr(name, key, value).map_err(entry_err(&raw))
        })?;
        if kind == EntryType::Directory {
            let dir = parent.open_subdir(name).map_err(entry_err(&raw))?;
            let direct = match self.root.open_dir(join(parents), Follow::Never, false) {
                Ok(same) => same.identity().map_err(entry_err(&raw))? == parent_id,
                Err(_) => false,
            };
            self.dirs.push(PendingDir {
                components: components.clone(),
                direct,
                identity: dir.identity().map_err(entry_err(&raw))?,
                mode,
                mtime,
            });
        } else {
            parent.set_mtime(name, mtime).map_err(entry_err(&raw))?;
        }
        self.created
            .insert((parent_id.0, parent_id.1, name.clone()));
        Ok(())
    }

    /// Set an entry's extended attributes with `set` (`false`: refused by the file system or
    /// privilege), naming in the report each one not set. overlayfs' own attributes would be
    /// obeyed when this tree is an overlay's lower layer (opaque marks, redirects): never set from
    /// a layer's entries.
    fn set_xattrs(
        &mut self,
        components: &[OsString],
        xattrs: Vec<(String, Vec<u8>)>,
        mut set: impl FnMut(&str, &[u8]) -> Result<bool>,
    ) -> Result<()> {
        for (key, value) in xattrs {
            if super::overlay_xattr(&key) || !set(&key, &value)? {
                self.report
                    .skipped_xattrs
                    .push(format!("{}: {key}", join(components).display()));
            }
        }
        Ok(())
    }

    /// Remove everything in `dir` that this layer did not create.
    fn opaque(&mut self, dir: &Dir, raw: &[u8]) -> Result<()> {
        let (dev, ino) = dir.identity().map_err(entry_err(raw))?;
        for child in dir.list().map_err(entry_err(raw))? {
            if !self.created.contains(&(dev, ino, child.clone())) {
                dir.remove_all(&child).map_err(entry_err(raw))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_paths() {
        let c = |s: &str| {
            clean(s.as_bytes()).map(|v| {
                v.iter()
                    .map(|p| p.to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join("/")
            })
        };
        assert_eq!(c("a/b/c").unwrap(), "a/b/c");
        assert_eq!(c("./a//b/").unwrap(), "a/b");
        assert_eq!(c("/etc/passwd").unwrap(), "etc/passwd");
        assert_eq!(c("a/../b").unwrap(), "b");
        assert_eq!(c("./").unwrap(), "");
        assert!(c("../evil").is_err());
        assert!(c("a/../../evil").is_err());
        assert!(c("/../evil").is_err());
    }
}
