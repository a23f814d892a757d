//! The filesystem changes of a run, as layer entries: from an overlay upper directory, or from a
//! private copy diffed against the layers it was copied from.
//!
//! Both walks are depth-first with each directory's entries sorted by name (bytes), a directory
//! before its contents. The builder turns [`Change::Whiteout`] into a `.wh.<name>` tar entry and
//! [`Change::Opaque`] into `<dir>/.wh..wh..opq`.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fs::{self, File, Metadata};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::error::SandboxError;
use crate::view::{LayerView, get_xattr, is_opaque, is_whiteout};

/// One change of the root filesystem.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)] // entries dominate; boxing each `Metadata` buys nothing
pub enum Change {
    /// A file, directory, symlink, device or FIFO that is new or modified.
    Entry {
        /// Relative path in the root (`etc/passwd`).
        path: PathBuf,
        /// Host path to read its content, link target and extended attributes from.
        source: PathBuf,
        /// Its `lstat`.
        metadata: Metadata,
        /// Owner as seen inside the sandbox (differs from `metadata.uid()` in a user namespace).
        uid: u32,
        /// Group as seen inside the sandbox.
        gid: u32,
    },
    /// A deleted path (`.wh.<name>` in the layer).
    Whiteout(PathBuf),
    /// A directory whose lower contents are all hidden (`<dir>/.wh..wh..opq`); it also appears as
    /// an [`Change::Entry`] just before.
    Opaque(PathBuf),
}

impl Change {
    /// The relative path the change is about.
    pub fn path(&self) -> &Path {
        match self {
            Change::Entry { path, .. } | Change::Whiteout(path) | Change::Opaque(path) => path,
        }
    }

    /// The path of this change's entry in an OCI layer tar: the path itself for entries,
    /// `dir/.wh.name` for whiteouts, `dir/.wh..wh..opq` for opaque directories.
    pub fn layer_path(&self) -> PathBuf {
        match self {
            Change::Entry { path, .. } => path.clone(),
            Change::Whiteout(path) => {
                let mut name = std::ffi::OsString::from(".wh.");
                name.push(path.file_name().unwrap_or_default());
                path.with_file_name(name)
            }
            Change::Opaque(path) => path.join(".wh..wh..opq"),
        }
    }

    fn entry(rel: PathBuf, source: PathBuf, metadata: Metadata) -> Change {
        Change::Entry {
            path: rel,
            uid: metadata.uid(),
            gid: metadata.gid(),
            source,
            metadata,
        }
    }
}

/// Map owners from host ids to sandbox ids for a user namespace mapping sandbox root to
/// `host_uid`/`host_gid` (other ids show as the overflow id 65534).
pub fn map_owners(changes: &mut [Change], host_uid: u32, host_gid: u32) {
    for c in changes {
        if let Change::Entry { uid, gid, .. } = c {
            *uid = if *uid == host_uid { 0 } else { 65534 };
            *gid = if *gid == host_gid { 0 } else { 65534 };
        }
    }
}

fn sorted_names(dir: &Path) -> Result<Vec<OsString>, SandboxError> {
    let mut names = Vec::new();
    for item in fs::read_dir(dir).map_err(|e| SandboxError::io(dir, e))? {
        names.push(item.map_err(|e| SandboxError::io(dir, e))?.file_name());
    }
    names.sort();
    Ok(names)
}

fn lstat(path: &Path) -> Result<Metadata, SandboxError> {
    fs::symlink_metadata(path).map_err(|e| SandboxError::io(path, e))
}

/// The changes recorded in an overlay upper directory (mounted with redirect_dir, metacopy and
/// index off): whiteouts (0/0 character devices), opaque directories, and everything else as
/// entries. A redirect or metacopy marker is an error: that upper is not a self-contained layer.
pub fn upper_changes(upper: &Path) -> Result<Vec<Change>, SandboxError> {
    let mut out = Vec::new();
    walk_upper(upper, Path::new(""), &mut out)?;
    Ok(out)
}

fn walk_upper(root: &Path, rel: &Path, out: &mut Vec<Change>) -> Result<(), SandboxError> {
    let dir = root.join(rel);
    for name in sorted_names(&dir)? {
        let host = dir.join(&name);
        let rel = rel.join(&name);
        let md = lstat(&host)?;
        if is_whiteout(&md) {
            out.push(Change::Whiteout(rel));
            continue;
        }
        for marker in [
            "trusted.overlay.redirect",
            "trusted.overlay.metacopy",
            "user.overlay.redirect",
            "user.overlay.metacopy",
        ] {
            if get_xattr(&host, marker)
                .map_err(|e| SandboxError::io(&host, e))?
                .is_some()
            {
                return Err(SandboxError::io(
                    &host,
                    io::Error::other(format!("overlay {marker} marker: not a plain upper layer")),
                ));
            }
        }
        let is_dir = md.is_dir();
        out.push(Change::entry(rel.clone(), host.clone(), md));
        if is_dir {
            if is_opaque(&host) {
                out.push(Change::Opaque(rel.clone()));
            }
            walk_upper(root, &rel, out)?;
        }
    }
    Ok(())
}

/// A change-time threshold: files whose ctime is older were not touched by the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct CtimeMark(i128);

impl CtimeMark {
    /// The ctime of `path` (a marker file created right after copying the root).
    pub fn of(path: &Path) -> io::Result<CtimeMark> {
        Ok(CtimeMark::from_metadata(&fs::symlink_metadata(path)?))
    }

    fn from_metadata(md: &Metadata) -> CtimeMark {
        CtimeMark(md.ctime() as i128 * 1_000_000_000 + md.ctime_nsec() as i128)
    }
}

/// The changes between `lower` (the layers a private root was copied from) and `root` (that copy
/// after the run), as [`upper_changes`] would report them: new and modified entries (with their
/// parent directories), and deleted paths as whiteouts (never opaque markers).
///
/// A non-directory is unchanged when its ctime is older than `since` (ctime cannot be set by the
/// command). Otherwise type, mode, owner, size, mtime, device number and link target are compared,
/// and when they all match the content is compared byte by byte.
pub fn diff_tree(
    lower: &LayerView,
    root: &Path,
    since: Option<CtimeMark>,
) -> Result<Vec<Change>, SandboxError> {
    let mut out = Vec::new();
    diff_dir(lower, root, Path::new(""), since, &mut out)?;
    Ok(out)
}

fn diff_dir(
    lower: &LayerView,
    root: &Path,
    rel: &Path,
    since: Option<CtimeMark>,
    out: &mut Vec<Change>,
) -> Result<(), SandboxError> {
    let rel_str = rel.to_string_lossy();
    let lower_entries = lower
        .read_dir(&rel_str)
        .map_err(|e| SandboxError::io(root.join(rel), e))?;
    let names: BTreeSet<OsString> = sorted_names(&root.join(rel))?
        .into_iter()
        .chain(lower_entries.keys().cloned())
        .collect();
    for name in names {
        let relp = rel.join(&name);
        let host = root.join(&relp);
        let copy = crate::view::lstat_opt(&host).map_err(|e| SandboxError::io(&host, e))?;
        let old = lower_entries.get(&name);
        let Some(md) = copy else {
            out.push(Change::Whiteout(relp));
            continue;
        };
        match old {
            None => {
                let is_dir = md.is_dir();
                out.push(Change::entry(relp.clone(), host, md));
                if is_dir {
                    diff_dir(lower, root, &relp, since, out)?;
                }
            }
            Some(old) => {
                let same_type = old.metadata.file_type() == md.file_type();
                if md.is_dir() {
                    let at = out.len();
                    let changed = !same_type || !same_meta(&old.metadata, &md);
                    diff_dir(lower, root, &relp, since, out)?;
                    if changed || out.len() > at {
                        out.insert(at, Change::entry(relp.clone(), host, md));
                    }
                } else if !same_type
                    || changed_file(&old.host, &old.metadata, &host, &md, since)
                        .map_err(|e| SandboxError::io(&host, e))?
                {
                    out.push(Change::entry(relp, host, md));
                }
            }
        }
    }
    Ok(())
}

fn same_meta(a: &Metadata, b: &Metadata) -> bool {
    a.mode() == b.mode()
        && a.uid() == b.uid()
        && a.gid() == b.gid()
        && a.mtime() == b.mtime()
        && a.mtime_nsec() == b.mtime_nsec()
}

fn changed_file(
    old_path: &Path,
    old: &Metadata,
    path: &Path,
    md: &Metadata,
    since: Option<CtimeMark>,
) -> io::Result<bool> {
    if let Some(since) = since
        && CtimeMark::from_metadata(md) < since
    {
        return Ok(false);
    }
    if !same_meta(old, md) || old.len() != md.len() || old.rdev() != md.rdev() {
        return Ok(true);
    }
    let ft = md.file_type();
    if ft.is_symlink() {
        return Ok(fs::read_link(old_path)? != fs::read_link(path)?);
    }
    if ft.is_file() {
        return Ok(!same_content(old_path, path)?);
    }
    Ok(ft.is_block_device() && old.rdev() != md.rdev())
}

fn same_content(a: &Path, b: &Path) -> io::Result<bool> {
    let (mut fa, mut fb) = (File::open(a)?, File::open(b)?);
    let (mut ba, mut bb) = (vec![0u8; 64 << 10], vec![0u8; 64 << 10]);
    loop {
        let na = read_full(&mut fa, &mut ba)?;
        let nb = read_full(&mut fb, &mut bb)?;
        if na != nb || ba[..na] != bb[..nb] {
            return Ok(false);
        }
        if na == 0 {
            return Ok(true);
        }
    }
}

fn read_full(f: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn summary(changes: &[Change]) -> Vec<String> {
        changes
            .iter()
            .map(|c| match c {
                Change::Entry { path, .. } => format!("+{}", path.display()),
                Change::Whiteout(p) => format!("-{}", p.display()),
                Change::Opaque(p) => format!("opaque {}", p.display()),
            })
            .collect()
    }

    #[test]
    fn diff_walk_reports_new_modified_and_deleted_entries() {
        let t = tempfile::tempdir().unwrap();
        let (lower, root) = (t.path().join("lower"), t.path().join("root"));
        for base in [&lower, &root] {
            for d in ["etc", "usr/lib", "home/u", "same"] {
                fs::create_dir_all(base.join(d)).unwrap();
            }
            fs::write(base.join("etc/group"), "root:x:0:\n").unwrap();
            fs::write(base.join("etc/passwd"), "root\n").unwrap();
            fs::write(base.join("same/f"), "same").unwrap();
            fs::write(base.join("home/u/f"), "1").unwrap();
            symlink("usr/lib", base.join("lib")).unwrap();
        }
        // Align metadata of the copy with the lower, as the private copy does.
        let sync = |rel: &str| {
            let md = fs::symlink_metadata(lower.join(rel)).unwrap();
            let t = nix::sys::time::TimeSpec::new(md.mtime(), md.mtime_nsec());
            nix::sys::stat::utimensat(
                nix::fcntl::AT_FDCWD,
                &root.join(rel),
                &t,
                &t,
                nix::sys::stat::UtimensatFlags::NoFollowSymlink,
            )
            .unwrap();
        };
        // The "run": same-size content change with the mtime forged back, a new file, a deleted
        // file, a deleted directory tree, a retargeted symlink.
        fs::write(root.join("etc/passwd"), "ROOT\n").unwrap();
        fs::write(root.join("new"), "n").unwrap();
        fs::remove_file(root.join("etc/group")).unwrap();
        fs::remove_dir_all(root.join("home/u")).unwrap();
        fs::remove_file(root.join("lib")).unwrap();
        symlink("usr/lib64", root.join("lib")).unwrap();
        for rel in [
            "etc/group",
            "etc/passwd",
            "same/f",
            "home/u/f",
            "lib",
            "",
            "etc",
            "usr",
            "usr/lib",
            "same",
        ] {
            if root.join(rel).symlink_metadata().is_ok() {
                sync(rel);
            }
        }
        if root.join("home").exists() {
            // home's mtime changed with the deletion; keep it so the whiteout is reported inside.
        }
        let view = LayerView::single(&lower);
        let changes = diff_tree(&view, &root, None).unwrap();
        assert_eq!(
            summary(&changes),
            [
                "+etc",
                "-etc/group",
                "+etc/passwd",
                "+home",
                "-home/u",
                "+lib",
                "+new"
            ],
        );
        // With a ctime mark later than every change, no existing file looks touched.
        let mark = CtimeMark(i128::MAX);
        let changes = diff_tree(&view, &root, Some(mark)).unwrap();
        // Only deletions and new entries remain (they don't depend on ctime).
        assert_eq!(
            summary(&changes),
            ["+etc", "-etc/group", "+home", "-home/u", "+new"]
        );
    }

    #[test]
    fn upper_walk_reports_whiteouts_and_opaque_dirs() {
        let t = tempfile::tempdir().unwrap();
        let up = t.path();
        fs::create_dir_all(up.join("home")).unwrap();
        fs::write(up.join("home/a"), "").unwrap();
        fs::write(up.join("new"), "").unwrap();
        fs::create_dir(up.join("etc")).unwrap();
        let root = nix::unistd::geteuid().is_root();
        if root {
            nix::sys::stat::mknod(
                &up.join("etc/group"),
                nix::sys::stat::SFlag::S_IFCHR,
                nix::sys::stat::Mode::empty(),
                0,
            )
            .unwrap();
            crate::view::set_xattr(&up.join("home"), "trusted.overlay.opaque", b"y").unwrap();
        }
        let changes = upper_changes(up).unwrap();
        if root {
            assert_eq!(
                summary(&changes),
                [
                    "+etc",
                    "-etc/group",
                    "+home",
                    "opaque home",
                    "+home/a",
                    "+new"
                ]
            );
        } else {
            assert_eq!(summary(&changes), ["+etc", "+home", "+home/a", "+new"]);
        }
        if root {
            let names: Vec<PathBuf> = changes.iter().map(Change::layer_path).collect();
            let want: Vec<PathBuf> = [
                "etc",
                "etc/.wh.group",
                "home",
                "home/.wh..wh..opq",
                "home/a",
                "new",
            ]
            .iter()
            .map(PathBuf::from)
            .collect();
            assert_eq!(names, want);
        }
        let mut mapped = changes.clone();
        map_owners(
            &mut mapped,
            nix::unistd::geteuid().as_raw(),
            nix::unistd::getegid().as_raw(),
        );
        assert!(
            mapped
                .iter()
                .all(|c| !matches!(c, Change::Entry { uid, .. } if *uid != 0))
        );
    }
}
