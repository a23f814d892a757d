//! The safe extractor: apply a layer onto a directory, never writing outside it.
//!
//! Every entry path is cleaned lexically (`a/../b` is `b`; a path that climbs above the root is
//! refused; a leading `/` is dropped). Each parent directory is then resolved component by
//! component *inside* the root, as if the root were `/`: a symlinked parent is followed, but an
//! absolute target restarts at the root and `..` stops at it, so `a -> /tmp` then `a/evil` writes
//! `ROOT/tmp/evil`. The final component is never followed: whatever is there is replaced.
//! Hard-link targets are resolved the same way and must already exist inside the root.

use std::collections::HashSet;
use std::ffi::{CString, OsStr, OsString};
use std::fs::{self, OpenOptions};
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use ::tar::EntryType;
use oci_spec::image::Descriptor;

use super::{OPAQUE_WHITEOUT, WHITEOUT_PREFIX};
use crate::digest::Digest;
use crate::error::{Error, Result, io_err, stream_err};
use crate::layout::Store;

/// Symlinks followed while resolving one path before giving up (Linux's limit).
const MAX_SYMLINKS: usize = 40;

/// How to unpack.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnpackOptions {
    /// Set owners from the archive (needs root or a user namespace). Default: when running as
    /// root.
    pub chown: bool,
    /// Apply OCI whiteouts (`.wh.name` deletes, `.wh..wh..opq` empties); when false they are
    /// written as ordinary files. Default true.
    pub whiteouts: bool,
}

impl Default for UnpackOptions {
    fn default() -> Self {
        UnpackOptions {
            // SAFETY: geteuid has no preconditions and cannot fail.
            chown: unsafe { libc::geteuid() } == 0,
            whiteouts: true,
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
    /// xattrs that could not be set (`path: name`).
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

struct Unpacker<'a> {
    root: PathBuf,
    options: &'a UnpackOptions,
    /// Paths (relative, resolved) this layer created: an opaque marker keeps them.
    created: HashSet<PathBuf>,
    /// Directory modes and mtimes, applied last (creating children changes mtimes, and a
    /// read-only mode would block them).
    dirs: Vec<(PathBuf, u32, u64)>,
    report: UnpackReport,
}

fn unsafe_entry(path: &[u8], reason: impl Into<String>) -> Error {
    Error::UnsafeEntry {
        path: String::from_utf8_lossy(path).into_owned(),
        reason: reason.into(),
    }
}

/// Clean an archive path lexically into normal components; refuse paths climbing above the root.
fn clean(raw: &[u8]) -> Result<Vec<OsString>> {
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

impl<'a> Unpacker<'a> {
    fn new(dest: &Path, options: &'a UnpackOptions) -> Result<Unpacker<'a>> {
        let root = fs::canonicalize(dest).map_err(io_err(dest))?;
        if !root.is_dir() {
            return Err(Error::Io {
                path: root,
                source: io::Error::new(io::ErrorKind::NotADirectory, "not a directory"),
            });
        }
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
        for entry in archive.entries().map_err(err())? {
            let entry = entry.map_err(err())?;
            self.apply(entry)?;
        }
        for (path, mode, mtime) in self.dirs.iter().rev() {
            let full = self.root.join(path);
            // A later entry may have replaced the directory (or a whiteout removed it).
            if !fs::symlink_metadata(&full).is_ok_and(|m| m.is_dir()) {
                continue;
            }
            fs::set_permissions(&full, fs::Permissions::from_mode(*mode)).map_err(io_err(&full))?;
            set_mtime(&full, *mtime)?;
        }
        Ok(self.report)
    }

    /// Resolve directory components inside the root, following symlinks scoped to the root.
    /// Missing directories are created when `create`. Returns the resolved relative path, which
    /// contains no symlinks.
    fn resolve_dir(&self, raw: &[u8], components: &[OsString], create: bool) -> Result<PathBuf> {
        let mut resolved = PathBuf::new();
        let mut queue: std::collections::VecDeque<OsString> = components.iter().cloned().collect();
        let mut links = 0;
        while let Some(part) = queue.pop_front() {
            if part == "." || part.is_empty() {
                continue;
            }
            if part == ".." {
                resolved.pop();
                continue;
            }
            let candidate = self.root.join(&resolved).join(&part);
            match fs::symlink_metadata(&candidate) {
                Ok(md) if md.file_type().is_symlink() => {
                    links += 1;
                    if links > MAX_SYMLINKS {
                        return Err(unsafe_entry(raw, "too many levels of symbolic links"));
                    }
                    let target = fs::read_link(&candidate).map_err(io_err(&candidate))?;
                    let target = target.as_os_str().as_bytes();
                    if target.starts_with(b"/") {
                        resolved = PathBuf::new();
                    }
                    for piece in target.split(|&b| b == b'/').rev() {
                        if !piece.is_empty() {
                            queue.push_front(OsStr::from_bytes(piece).to_os_string());
                        }
                    }
                }
                Ok(md) if md.is_dir() => resolved.push(&part),
                Ok(_) => {
                    return Err(unsafe_entry(
                        raw,
                        format!(
                            "parent {} is not a directory",
                            resolved.join(&part).display()
                        ),
                    ));
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound && create => {
                    fs::create_dir(&candidate).map_err(io_err(&candidate))?;
                    fs::set_permissions(&candidate, fs::Permissions::from_mode(0o755))
                        .map_err(io_err(&candidate))?;
                    resolved.push(&part);
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    return Err(unsafe_entry(
                        raw,
                        format!("{} does not exist", resolved.join(&part).display()),
                    ));
                }
                Err(e) => return Err(io_err(candidate)(e)),
            }
        }
        Ok(resolved)
    }

    fn apply<R: Read>(&mut self, mut entry: ::tar::Entry<'_, R>) -> Result<()> {
        let raw = entry.path_bytes().into_owned();
        let components = clean(&raw)?;
        let Some((name, parents)) = components.split_last() else {
            return Ok(()); // the root itself: leave dest's own metadata alone
        };
        let parent = self.resolve_dir(&raw, parents, true)?;
        self.report.entries += 1;
        let name_bytes = name.as_bytes();

        if self.options.whiteouts && name_bytes.starts_with(WHITEOUT_PREFIX.as_bytes()) {
            self.report.whiteouts += 1;
            if name_bytes == OPAQUE_WHITEOUT.as_bytes() {
                return self.opaque(&parent);
            }
            if name_bytes.starts_with(b".wh..wh.") {
                return Ok(()); // other aufs metadata: nothing to apply
            }
            let victim = &name_bytes[WHITEOUT_PREFIX.len()..];
            if victim.is_empty() || victim == b"." || victim == b".." {
                return Err(unsafe_entry(&raw, "malformed whiteout"));
            }
            return remove_any(&self.root.join(&parent).join(OsStr::from_bytes(victim)));
        }

        let rel = parent.join(name);
        let target = self.root.join(&rel);
        let header = entry.header().clone();
        let kind = header.entry_type();
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
        let existing = fs::symlink_metadata(&target).ok();
        let keep_dir =
            kind == EntryType::Directory && existing.as_ref().is_some_and(|m| m.is_dir());
        if existing.is_some() && !keep_dir {
            remove_any(&target)?;
        }

        match kind {
            EntryType::Directory => {
                if !keep_dir {
                    fs::create_dir(&target).map_err(io_err(&target))?;
                }
            }
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                let mut file = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .custom_flags(libc::O_NOFOLLOW)
                    .open(&target)
                    .map_err(io_err(&target))?;
                io::copy(&mut entry, &mut file).map_err(stream_err(format!(
                    "extracting {}",
                    String::from_utf8_lossy(&raw)
                )))?;
            }
            EntryType::Symlink => {
                let link = entry
                    .link_name_bytes()
                    .ok_or_else(|| unsafe_entry(&raw, "symlink without a target"))?;
                std::os::unix::fs::symlink(OsStr::from_bytes(&link), &target)
                    .map_err(io_err(&target))?;
            }
            EntryType::Link => {
                let link = entry
                    .link_name_bytes()
                    .ok_or_else(|| unsafe_entry(&raw, "hard link without a target"))?;
                let link_components = clean(&link)?;
                let Some((link_name, link_parents)) = link_components.split_last() else {
                    return Err(unsafe_entry(&raw, "hard link to the root"));
                };
                let link_parent = self.resolve_dir(&link, link_parents, false)?;
                let source = self.root.join(link_parent).join(link_name);
                match fs::symlink_metadata(&source) {
                    Ok(md) if md.is_dir() => {
                        return Err(unsafe_entry(&raw, "hard link to a directory"));
                    }
                    Ok(_) => {}
                    Err(_) => {
                        return Err(unsafe_entry(
                            &raw,
                            format!(
                                "hard link target {} is not inside the root",
                                String::from_utf8_lossy(&link)
                            ),
                        ));
                    }
                }
                fs::hard_link(&source, &target).map_err(io_err(&target))?;
                // A hard link shares the target's inode: no metadata of its own to apply.
                self.created.insert(rel);
                return Ok(());
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                let major = header.device_major().ok().flatten().unwrap_or(0);
                let minor = header.device_minor().ok().flatten().unwrap_or(0);
                let file_type = match kind {
                    EntryType::Char => libc::S_IFCHR,
                    EntryType::Block => libc::S_IFBLK,
                    _ => libc::S_IFIFO,
                };
                if !mknod(&target, file_type | 0o600, major, minor)? {
                    self.report.skipped_devices.push(rel);
                    return Ok(());
                }
            }
            EntryType::XGlobalHeader => return Ok(()),
            other => {
                return Err(unsafe_entry(
                    &raw,
                    format!("unsupported entry type {:?}", other.as_byte() as char),
                ));
            }
        }

        if self.options.chown {
            std::os::unix::fs::lchown(&target, Some(uid as u32), Some(gid as u32))
                .map_err(io_err(&target))?;
        }
        if kind != EntryType::Symlink && kind != EntryType::Directory {
            // After chown, which clears setuid/setgid. Directories get their mode at the end, so
            // a read-only directory can still receive its children.
            fs::set_permissions(&target, fs::Permissions::from_mode(mode))
                .map_err(io_err(&target))?;
        }
        for (name, value) in xattrs {
            if !set_xattr(&target, &name, &value) {
                self.report
                    .skipped_xattrs
                    .push(format!("{}: {name}", rel.display()));
            }
        }
        if kind == EntryType::Directory {
            self.dirs.push((rel.clone(), mode, mtime));
        } else {
            set_mtime(&target, mtime)?;
        }
        self.created.insert(rel);
        Ok(())
    }

    /// Remove everything in `dir` that this layer did not create.
    fn opaque(&mut self, dir: &Path) -> Result<()> {
        let full = self.root.join(dir);
        for child in fs::read_dir(&full).map_err(io_err(&full))? {
            let child = child.map_err(io_err(&full))?;
            let rel = dir.join(child.file_name());
            if !self.created.contains(&rel) {
                remove_any(&child.path())?;
            }
        }
        Ok(())
    }
}

/// Remove a file, symlink or directory tree at `path` without following symlinks; absent is fine.
fn remove_any(path: &Path) -> Result<()> {
    match fs::symlink_metadata(path) {
        Ok(md) if md.is_dir() => fs::remove_dir_all(path).map_err(io_err(path)),
        Ok(_) => fs::remove_file(path).map_err(io_err(path)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err(path)(e)),
    }
}

fn c_path(path: &Path) -> Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| Error::UnsafeEntry {
        path: path.display().to_string(),
        reason: "path contains a NUL byte".into(),
    })
}

/// Create a device node or fifo. Returns false when the kernel refuses for lack of privilege.
fn mknod(path: &Path, mode: libc::mode_t, major: u32, minor: u32) -> Result<bool> {
    let c = c_path(path)?;
    let dev = libc::makedev(major, minor);
    // SAFETY: `c` is a NUL-terminated path; mknod only reads it.
    let rc = unsafe { libc::mknod(c.as_ptr(), mode, dev) };
    if rc == 0 {
        return Ok(true);
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::EPERM) | Some(libc::EACCES) => Ok(false),
        _ => Err(io_err(path)(err)),
    }
}

/// Set atime and mtime of `path` (not following a symlink).
fn set_mtime(path: &Path, mtime: u64) -> Result<()> {
    let c = c_path(path)?;
    let t = libc::timespec {
        tv_sec: mtime.min(i64::MAX as u64) as libc::time_t,
        tv_nsec: 0,
    };
    let times = [t, t];
    // SAFETY: `c` is NUL-terminated and `times` points at two timespecs, as utimensat requires.
    let rc = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if rc != 0 {
        return Err(io_err(path)(io::Error::last_os_error()));
    }
    Ok(())
}

/// Set one xattr without following symlinks; false when refused (privilege, no fs support).
fn set_xattr(path: &Path, name: &str, value: &[u8]) -> bool {
    let (Ok(c), Ok(n)) = (c_path(path), CString::new(name)) else {
        return false;
    };
    // SAFETY: both strings are NUL-terminated; the value pointer and length describe `value`.
    let rc = unsafe {
        libc::lsetxattr(
            c.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    rc == 0
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
