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
}
