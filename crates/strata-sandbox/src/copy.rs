//! A private copy of a layer view: the root filesystem when overlayfs is unavailable.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;

use nix::sys::stat::{Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;

use crate::error::SandboxError;
use crate::view::{LayerView, ViewEntry, get_xattr, list_xattrs, set_xattr};

/// Copy the merged `view` into the empty directory `dest`, keeping modes, owners (when allowed),
/// times, extended attributes (but overlay's own), hard links, symlinks, FIFOs and devices (when
/// allowed). Sockets are skipped.
pub fn copy_view(view: &LayerView, dest: &Path) -> Result<(), SandboxError> {
    let mut links = HashMap::new();
    copy_dir(view, "", dest, &mut links)?;
    let root = view.entry("").map_err(|e| SandboxError::io(dest, e))?;
    if let Some(root) = root {
        set_meta(&root, dest).map_err(|e| SandboxError::io(dest, e))?;
    }
    Ok(())
}

fn copy_dir(
    view: &LayerView,
    rel: &str,
    dest_root: &Path,
    links: &mut HashMap<(u64, u64), std::path::PathBuf>,
) -> Result<(), SandboxError> {
    let entries = view
        .read_dir(rel)
        .map_err(|e| SandboxError::io(dest_root.join(rel), e))?;
    for (name, entry) in entries {
        let child_rel = if rel.is_empty() {
            name.to_string_lossy().into_owned()
        } else {
            format!("{rel}/{}", name.to_string_lossy())
        };
        let dest = dest_root.join(&child_rel);
        let io = |e| SandboxError::io(&dest, e);
        let md = &entry.metadata;
        let ft = md.file_type();
        if ft.is_dir() {
            fs::create_dir(&dest).map_err(io)?;
            copy_dir(view, &child_rel, dest_root, links)?;
        } else if ft.is_socket() {
            continue;
        } else {
            if md.nlink() > 1 {
                if let Some(first) = links.get(&(md.dev(), md.ino())) {
                    fs::hard_link(first, &dest).map_err(io)?;
                    continue;
                }
                links.insert((md.dev(), md.ino()), dest.clone());
            }
            if ft.is_symlink() {
                let target = fs::read_link(&entry.host).map_err(io)?;
                std::os::unix::fs::symlink(target, &dest).map_err(io)?;
            } else if ft.is_file() {
                fs::copy(&entry.host, &dest).map_err(io)?;
            } else {
                let kind = if ft.is_fifo() {
                    SFlag::S_IFIFO
                } else if ft.is_char_device() {
                    SFlag::S_IFCHR
                } else {
                    SFlag::S_IFBLK
                };
                nix::sys::stat::mknod(&dest, kind, Mode::from_bits_truncate(0o600), md.rdev())
                    .map_err(|e| io(io::Error::from(e)))?;
            }
        }
        // After a directory's contents, so copying them does not change its times.
        set_meta(&entry, &dest).map_err(io)?;
    }
    Ok(())
}

fn set_meta(entry: &ViewEntry, dest: &Path) -> io::Result<()> {
    let md = &entry.metadata;
    let symlink = md.file_type().is_symlink();
    match nix::unistd::fchownat(
        nix::fcntl::AT_FDCWD,
        dest,
        Some(nix::unistd::Uid::from_raw(md.uid())),
        Some(nix::unistd::Gid::from_raw(md.gid())),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    ) {
        Ok(()) | Err(nix::errno::Errno::EPERM) | Err(nix::errno::Errno::EINVAL) => {}
        Err(e) => return Err(e.into()),
    }
    if !symlink {
        fs::set_permissions(dest, fs::Permissions::from_mode(md.mode() & 0o7777))?;
    }
    for name in list_xattrs(&entry.host)? {
        if name.starts_with("trusted.overlay.") || name.starts_with("user.overlay.") {
            continue;
        }
        if let Some(value) = get_xattr(&entry.host, &name)? {
            match set_xattr(dest, &name, &value) {
                Ok(()) => {}
                Err(e) if matches!(e.raw_os_error(), Some(libc::EPERM | libc::ENOTSUP)) => {}
                Err(e) => return Err(e),
            }
        }
    }
    nix::sys::stat::utimensat(
        nix::fcntl::AT_FDCWD,
        dest,
        &TimeSpec::new(md.atime(), md.atime_nsec()),
        &TimeSpec::new(md.mtime(), md.mtime_nsec()),
        UtimensatFlags::NoFollowSymlink,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::changes::diff_tree;

    #[test]
    fn a_copy_diffs_clean_against_its_source() {
        let t = tempfile::tempdir().unwrap();
        let (l0, l1, dest) = (
            t.path().join("l0"),
            t.path().join("l1"),
            t.path().join("copy"),
        );
        fs::create_dir_all(l0.join("bin")).unwrap();
        fs::create_dir_all(l1.join("etc")).unwrap();
        fs::create_dir(&dest).unwrap();
        fs::write(l0.join("bin/tool"), "#!/bin/sh\n").unwrap();
        fs::set_permissions(l0.join("bin/tool"), fs::Permissions::from_mode(0o4755)).unwrap();
        fs::hard_link(l0.join("bin/tool"), l0.join("bin/alias")).unwrap();
        std::os::unix::fs::symlink("tool", l0.join("bin/link")).unwrap();
        nix::unistd::mkfifo(&l0.join("fifo"), Mode::from_bits_truncate(0o644)).unwrap();
        fs::write(l1.join("etc/conf"), "x").unwrap();
        let view = LayerView::new(&[l0, l1]);
        copy_view(&view, &dest).unwrap();
        assert_eq!(fs::read_to_string(dest.join("etc/conf")).unwrap(), "x");
        let tool = fs::metadata(dest.join("bin/tool")).unwrap();
        assert_eq!(tool.mode() & 0o7777, 0o4755);
        assert_eq!(
            tool.ino(),
            fs::metadata(dest.join("bin/alias")).unwrap().ino()
        );
        assert_eq!(
            fs::read_link(dest.join("bin/link")).unwrap(),
            Path::new("tool")
        );
        // Everything matches, even without a ctime mark.
        let changes = diff_tree(&view, &dest, None).unwrap();
        assert!(changes.is_empty(), "{changes:?}");
    }
}
