//! Turn an extracted OCI layer's whiteout files into overlayfs' form, so the directory can be a
//! lower layer: `.wh.<name>` becomes a 0/0 character device `<name>`, `.wh..wh..opq` becomes the
//! opaque mark on its directory.

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::sys::stat::{Mode, SFlag};

use crate::error::SandboxError;
use crate::view::set_xattr;

/// Which overlay attribute names a layer is prepared for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XattrNamespace {
    /// `trusted.overlay.*`: overlays mounted by root.
    Trusted,
    /// `user.overlay.*`: overlays mounted with `userxattr` in a user namespace.
    User,
}

impl XattrNamespace {
    /// The one matching this process: `Trusted` as root, else `User`.
    pub fn for_current_user() -> Self {
        if nix::unistd::geteuid().is_root() {
            XattrNamespace::Trusted
        } else {
            XattrNamespace::User
        }
    }

    fn opaque(self) -> &'static str {
        match self {
            XattrNamespace::Trusted => "trusted.overlay.opaque",
            XattrNamespace::User => "user.overlay.opaque",
        }
    }
}

/// Convert the OCI whiteouts under `layer` (an extracted layer directory) in place; returns how
/// many markers were converted. Whiteout character devices need no privilege (Linux ≥ 5.8).
pub fn oci_whiteouts_to_overlay(layer: &Path, ns: XattrNamespace) -> Result<usize, SandboxError> {
    let mut count = 0;
    convert_dir(layer, ns, &mut count)?;
    Ok(count)
}

fn convert_dir(dir: &Path, ns: XattrNamespace, count: &mut usize) -> Result<(), SandboxError> {
    use std::os::unix::fs::MetadataExt;
    // Converting a marker changes the directory's mtime: it is put back to the layer's.
    let md = fs::symlink_metadata(dir).map_err(|e| SandboxError::io(dir, e))?;
    let before = *count;
    let mut names = Vec::new();
    for item in fs::read_dir(dir).map_err(|e| SandboxError::io(dir, e))? {
        let item = item.map_err(|e| SandboxError::io(dir, e))?;
        let is_dir = item
            .file_type()
            .map_err(|e| SandboxError::io(item.path(), e))?
            .is_dir();
        names.push((item.file_name(), is_dir));
    }
    names.sort();
    for (name, is_dir) in names {
        let path = dir.join(&name);
        let bytes = name.as_encoded_bytes();
        if bytes == b".wh..wh..opq" {
            fs::remove_file(&path).map_err(|e| SandboxError::io(&path, e))?;
            set_xattr(dir, ns.opaque(), b"y").map_err(|e| SandboxError::io(dir, e))?;
            *count += 1;
        } else if let Some(hidden) = bytes.strip_prefix(b".wh.") {
            let hidden = std::ffi::OsStr::from_bytes(hidden);
            let target = dir.join(hidden);
            fs::remove_file(&path).map_err(|e| SandboxError::io(&path, e))?;
            if target.symlink_metadata().is_ok() {
                return Err(SandboxError::io(
                    &target,
                    std::io::Error::other("a layer both whites out and contains this path"),
                ));
            }
            nix::sys::stat::mknod(&target, SFlag::S_IFCHR, Mode::empty(), 0)
                .map_err(|e| SandboxError::io(&target, e.into()))?;
            *count += 1;
        } else if is_dir {
            convert_dir(&path, ns, count)?;
        }
    }
    if *count > before {
        let atime = nix::sys::time::TimeSpec::new(md.atime(), md.atime_nsec());
        let mtime = nix::sys::time::TimeSpec::new(md.mtime(), md.mtime_nsec());
        nix::sys::stat::utimensat(
            nix::fcntl::AT_FDCWD,
            dir,
            &atime,
            &mtime,
            nix::sys::stat::UtimensatFlags::NoFollowSymlink,
        )
        .map_err(|e| SandboxError::io(dir, e.into()))?;
    }
    Ok(())
}

/// How [`settle_as_lower`] leaves a directory: the form the layer snapshot unpacker gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LowerForm {
    /// The layer writer clamps mtimes to this (`SOURCE_DATE_EPOCH`) and the unpacker sets whole
    /// seconds: every entry gets `min(mtime, epoch)` seconds, 0 nanoseconds.
    pub source_date_epoch: u64,
    /// Opaque directories to keep, marked in this namespace (a RUN step's upper directory, whose
    /// opaque directories its layer records); `None` for a tree whose layer has none (an
    /// extracted archive), where every extended attribute goes.
    pub opaque: Option<XattrNamespace>,
}

/// What [`settle_as_lower`] found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LowerReport {
    /// Entries below the directory after settling (whiteouts included, the directory itself
    /// not): a caller compares it with the number of entries its layer has.
    pub entries: u64,
    /// Sockets removed (layers do not carry them).
    pub sockets: u64,
    /// Whether every name and symlink target is UTF-8 (the COPY planner reads names as text).
    pub utf8: bool,
}

/// Make a directory that a step wrote in place (a RUN step's overlay upper directory after the
/// run, an ADD's extracted archive) equal to what unpacking the layer written from it gives, so
/// it can become that layer's snapshot instead of the layer being unpacked again:
///
/// - sockets are removed (no layer carries one);
/// - every extended attribute is removed but those a layer carries and the unpacker restores
///   ([`strata_oci::tar::layer_xattr`]: file capabilities and `user.*`); overlay's own `origin`
///   and `impure` marks go, except the opaque mark of an opaque directory when `form.opaque`
///   names a namespace (an opaque directory in either namespace is marked in that one, as the
///   unpacker's whiteout conversion marks it);
/// - every mtime becomes the layer's clamped one (`min(mtime, epoch)`, whole seconds), the
///   access time with it, as the unpacker sets both; directories after their children;
/// - the directory itself gets mode 0700 and no extended attributes, as the unpacker's
///   temporary directory has (a layer has no entry for its root).
///
/// Whiteouts (0/0 character devices) are left as they are: overlay reads only their type.
/// Owners, modes, content and hard links are what the layer was written from. Written by hand:
/// it is one walk with `lstat`, `llistxattr`/`lremovexattr` and `utimensat`, the unpacker's own
/// calls.
pub fn settle_as_lower(dir: &Path, form: &LowerForm) -> Result<LowerReport, SandboxError> {
    let mut report = LowerReport {
        utf8: true,
        ..LowerReport::default()
    };
    settle_dir(dir, form, &mut report)?;
    strip_xattrs(dir, None, false)?;
    fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .map_err(|e| SandboxError::io(dir, e))?;
    Ok(report)
}

fn settle_dir(dir: &Path, form: &LowerForm, report: &mut LowerReport) -> Result<(), SandboxError> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    for item in fs::read_dir(dir).map_err(|e| SandboxError::io(dir, e))? {
        let item = item.map_err(|e| SandboxError::io(dir, e))?;
        let path = item.path();
        let md = fs::symlink_metadata(&path).map_err(|e| SandboxError::io(&path, e))?;
        let kind = md.file_type();
        if kind.is_socket() {
            fs::remove_file(&path).map_err(|e| SandboxError::io(&path, e))?;
            report.sockets += 1;
            continue;
        }
        report.entries += 1;
        if item.file_name().to_str().is_none() {
            report.utf8 = false;
        }
        if crate::view::is_whiteout(&md) {
            continue;
        }
        if kind.is_symlink() {
            let target = fs::read_link(&path).map_err(|e| SandboxError::io(&path, e))?;
            if target.to_str().is_none() {
                report.utf8 = false;
            }
        }
        let keep = match form.opaque {
            Some(ns) if kind.is_dir() && crate::view::is_opaque(&path) => Some(ns),
            _ => None,
        };
        strip_xattrs(&path, keep, true)?;
        if kind.is_dir() {
            settle_dir(&path, form, report)?;
        }
        let secs = u64::try_from(md.mtime())
            .unwrap_or(0)
            .min(form.source_date_epoch);
        // A directory whose socket went has a new mtime: directories are always set.
        if kind.is_dir() || u64::try_from(md.mtime()).ok() != Some(secs) || md.mtime_nsec() != 0 {
            let t = nix::sys::time::TimeSpec::new(secs.min(i64::MAX as u64) as i64, 0);
            nix::sys::stat::utimensat(
                nix::fcntl::AT_FDCWD,
                &path,
                &t,
                &t,
                nix::sys::stat::UtimensatFlags::NoFollowSymlink,
            )
            .map_err(|e| SandboxError::io(&path, e.into()))?;
        }
    }
    Ok(())
}

/// Remove the extended attributes of `path` (not followed) that the unpacker would not have set:
/// for a layer's entry (`entry`), all but the layer's own ([`strata_oci::tar::layer_xattr`]: file
/// capabilities and `user.*`, which the layer was written with and the unpacker restores); for
/// the tree's root, which no entry describes, all. With `opaque`, leave it marked opaque in that
/// namespace. `security.selinux` is the system's label, set on every new file (the unpacker's
/// too): left alone.
fn strip_xattrs(
    path: &Path,
    opaque: Option<XattrNamespace>,
    entry: bool,
) -> Result<(), SandboxError> {
    let io = |e: std::io::Error| SandboxError::io(path, e);
    let mut marked = false;
    for name in crate::view::list_xattrs(path).map_err(io)? {
        if name == "security.selinux" || (entry && strata_oci::tar::layer_xattr(&name)) {
            continue;
        }
        if opaque.is_some_and(|ns| ns.opaque() == name)
            && crate::view::get_xattr(path, &name).map_err(io)?.as_deref() == Some(b"y")
        {
            marked = true;
            continue;
        }
        match rustix::fs::lremovexattr(path, name.as_str()) {
            Ok(()) | Err(rustix::io::Errno::NODATA) => {}
            Err(e) => return Err(io(e.into())),
        }
    }
    if let Some(ns) = opaque
        && !marked
    {
        set_xattr(path, ns.opaque(), b"y").map_err(io)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::{LayerView, is_opaque, is_whiteout};

    #[test]
    fn oci_markers_become_overlay_whiteouts_and_opaque_dirs() {
        let t = tempfile::tempdir().unwrap();
        let (l0, l1) = (t.path().join("l0"), t.path().join("l1"));
        for d in ["etc", "home/u", "var"] {
            fs::create_dir_all(l0.join(d)).unwrap();
        }
        fs::write(l0.join("etc/group"), "g").unwrap();
        fs::write(l0.join("home/u/f"), "f").unwrap();
        fs::create_dir_all(l1.join("etc")).unwrap();
        fs::create_dir_all(l1.join("home")).unwrap();
        fs::write(l1.join("etc/.wh.group"), "").unwrap();
        fs::write(l1.join("home/.wh..wh..opq"), "").unwrap();
        fs::write(l1.join("home/new"), "n").unwrap();
        let ns = XattrNamespace::for_current_user();
        assert_eq!(oci_whiteouts_to_overlay(&l1, ns).unwrap(), 2);
        assert!(is_whiteout(
            &fs::symlink_metadata(l1.join("etc/group")).unwrap()
        ));
        assert!(!l1.join("etc/.wh.group").exists());
        assert!(is_opaque(&l1.join("home")));
        let view = LayerView::new(&[l0, l1]);
        assert!(view.entry("etc/group").unwrap().is_none());
        let home: Vec<_> = view.read_dir("home").unwrap().into_keys().collect();
        assert_eq!(home, vec![std::ffi::OsString::from("new")]);
    }

    // See issue 22: a step's own tree becomes its layer's snapshot only in the unpacker's form.
    #[test]
    fn settling_clamps_times_drops_sockets_and_overlay_xattrs_and_keeps_opaque_marks() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let t = tempfile::tempdir().unwrap();
        let up = t.path().join("upper");
        fs::create_dir_all(up.join("dir/sub")).unwrap();
        fs::write(up.join("dir/f"), "f").unwrap();
        fs::write(up.join("old"), "o").unwrap();
        std::os::unix::fs::symlink("dir/f", up.join("link")).unwrap();
        let _socket = std::os::unix::net::UnixListener::bind(up.join("dir/sock")).unwrap();
        let old = nix::sys::time::TimeSpec::new(500, 7);
        nix::sys::stat::utimensat(
            nix::fcntl::AT_FDCWD,
            &up.join("old"),
            &old,
            &old,
            nix::sys::stat::UtimensatFlags::NoFollowSymlink,
        )
        .unwrap();
        // user.* attributes need file system support: without it there is nothing to drop.
        let xattrs = set_xattr(&up.join("dir/f"), "user.x", b"1").is_ok()
            && set_xattr(&up.join("dir/sub"), "user.overlay.opaque", b"y").is_ok()
            && set_xattr(&up.join("dir"), "user.overlay.origin", b"").is_ok()
            && set_xattr(&up, "user.root", b"1").is_ok();
        let form = LowerForm {
            source_date_epoch: 1000,
            opaque: Some(XattrNamespace::User),
        };
        let report = settle_as_lower(&up, &form).unwrap();
        assert_eq!(
            report,
            LowerReport {
                entries: 5,
                sockets: 1,
                utf8: true
            }
        );
        assert!(!up.join("dir/sock").exists());
        for (rel, secs) in [
            ("dir", 1000),
            ("dir/sub", 1000),
            ("dir/f", 1000),
            ("link", 1000),
        ] {
            let md = fs::symlink_metadata(up.join(rel)).unwrap();
            assert_eq!((md.mtime(), md.mtime_nsec()), (secs, 0), "{rel}");
        }
        let md = fs::symlink_metadata(up.join("old")).unwrap();
        assert_eq!((md.mtime(), md.mtime_nsec()), (500, 0));
        assert_eq!(
            fs::metadata(&up).unwrap().permissions().mode() & 0o7777,
            0o700
        );
        if xattrs {
            // The layer carries user.x and the unpacker restores it; the root has no entry.
            assert_eq!(
                crate::view::list_xattrs(&up.join("dir/f")).unwrap(),
                ["user.x"]
            );
            assert!(crate::view::list_xattrs(&up).unwrap().is_empty());
            assert!(
                crate::view::list_xattrs(&up.join("dir"))
                    .unwrap()
                    .is_empty()
            );
            assert_eq!(
                crate::view::list_xattrs(&up.join("dir/sub")).unwrap(),
                ["user.overlay.opaque"]
            );
            // Without a namespace to keep (an extracted archive), the mark goes too.
            let form = LowerForm {
                opaque: None,
                ..form
            };
            settle_as_lower(&up, &form).unwrap();
            assert!(
                crate::view::list_xattrs(&up.join("dir/sub"))
                    .unwrap()
                    .is_empty()
            );
        }
    }
}
