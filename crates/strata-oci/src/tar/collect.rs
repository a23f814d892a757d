//! Collect layer entries from a directory tree on disk.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::{Entry, EntryKind, Metadata, sort_entries};
use crate::error::{Error, Result, io_err};

/// Every file, directory, symlink, device and fifo under `src` (not following symlinks), as layer
/// entries under `dest` (a layer path; `""` or `"/"` puts the tree's content at the layer root),
/// sorted by path. `src` itself becomes the entry `dest` unless `dest` is the root. Metadata
/// (mode, numeric owners, mtime, `user.*` and `security.capability` xattrs) is taken from disk;
/// callers may rewrite it (`--chown`, `--chmod`) since entries are plain data. Files with several
/// links inside the tree become one file and hard links to it. Sockets are skipped.
pub fn collect_tree(src: &Path, dest: &Path) -> Result<Vec<Entry>> {
    let dest: PathBuf = super::sort_key(dest);
    let mut entries = Vec::new();
    let mut inodes: HashMap<(u64, u64), PathBuf> = HashMap::new();
    let walker = walkdir::WalkDir::new(src)
        .follow_links(false)
        .sort_by_file_name();
    for item in walker {
        let item = item.map_err(|e| {
            let path = e.path().unwrap_or(src).to_path_buf();
            match e.into_io_error() {
                Some(io) => io_err(path)(io),
                None => Error::LayerEntry {
                    path: path.display().to_string(),
                    reason: "file system loop".into(),
                },
            }
        })?;
        let rel = item
            .path()
            .strip_prefix(src)
            .expect("walkdir yields paths under its root");
        let path = if rel.as_os_str().is_empty() {
            dest.clone()
        } else {
            dest.join(rel)
        };
        if path.as_os_str().is_empty() {
            continue;
        }
        let md = fs::symlink_metadata(item.path()).map_err(io_err(item.path()))?;
        let meta = Metadata {
            mode: md.mode() & 0o7777,
            uid: md.uid().into(),
            gid: md.gid().into(),
            mtime: md.mtime().max(0) as u64,
            xattrs: layer_xattrs(item.path()),
        };
        let ft = md.file_type();
        let kind = if ft.is_dir() {
            EntryKind::Dir
        } else if ft.is_symlink() {
            EntryKind::Symlink(fs::read_link(item.path()).map_err(io_err(item.path()))?)
        } else if ft.is_file() {
            if md.nlink() > 1 {
                match inodes.get(&(md.dev(), md.ino())) {
                    Some(first) => EntryKind::Hardlink(first.clone()),
                    None => {
                        inodes.insert((md.dev(), md.ino()), path.clone());
                        EntryKind::File(super::Content::Path(item.path().to_path_buf()))
                    }
                }
            } else {
                EntryKind::File(super::Content::Path(item.path().to_path_buf()))
            }
        } else if ft.is_char_device() || ft.is_block_device() {
            let (major, minor) = split_dev(md.rdev());
            if ft.is_char_device() {
                EntryKind::CharDevice { major, minor }
            } else {
                EntryKind::BlockDevice { major, minor }
            }
        } else if ft.is_fifo() {
            EntryKind::Fifo
        } else {
            continue; // sockets cannot be archived
        };
        entries.push(Entry { path, kind, meta });
    }
    // walkdir sorts by file name within each directory, which is already component order;
    // sorting again keeps the guarantee explicit and cheap.
    sort_entries(&mut entries);
    Ok(entries)
}

/// Linux `dev_t` → (major, minor), as glibc's `gnu_dev_major`/`gnu_dev_minor`.
pub(crate) fn split_dev(dev: u64) -> (u32, u32) {
    let major = ((dev >> 32) & 0xffff_f000) | ((dev >> 8) & 0x0000_0fff);
    let minor = ((dev >> 12) & 0xffff_ff00) | (dev & 0x0000_00ff);
    (major as u32, minor as u32)
}

/// The extended attributes of `path` (not followed) that a layer carries
/// ([`super::layer_xattr`]); none where the file system has no xattr support.
pub fn layer_xattrs(path: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut names = vec![0u8; 4096];
    let Ok(len) = rustix::fs::llistxattr(path, &mut names[..]) else {
        // No xattr support on this file system (or too many names): the entry simply has none.
        return out;
    };
    names.truncate(len);
    for name in names.split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let Ok(name_str) = std::str::from_utf8(name) else {
            continue;
        };
        if !super::layer_xattr(name_str) {
            continue;
        }
        let mut value = vec![0u8; 64 * 1024];
        if let Ok(n) = rustix::fs::lgetxattr(path, name_str, &mut value[..]) {
            value.truncate(n);
            out.insert(name_str.to_string(), value);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{PermissionsExt, symlink};

    #[test]
    fn collects_sorted_with_links() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        fs::create_dir_all(src.join("b/c")).unwrap();
        fs::write(src.join("a"), "A").unwrap();
        fs::write(src.join("b/c/d"), "D").unwrap();
        fs::write(src.join("b-x"), "X").unwrap();
        fs::hard_link(src.join("a"), src.join("z")).unwrap();
        symlink("a", src.join("link")).unwrap();
        fs::set_permissions(src.join("a"), fs::Permissions::from_mode(0o4755)).unwrap();

        let entries = collect_tree(&src, Path::new("/app")).unwrap();
        let paths: Vec<_> = entries
            .iter()
            .map(|e| e.path.display().to_string())
            .collect();
        assert_eq!(
            paths,
            [
                "app",
                "app/a",
                "app/b",
                "app/b/c",
                "app/b/c/d",
                "app/b-x",
                "app/link",
                "app/z"
            ]
        );
        let a = &entries[1];
        assert_eq!(a.meta.mode, 0o4755);
        assert!(matches!(a.kind, EntryKind::File(_)));
        assert_eq!(entries[6].kind, EntryKind::Symlink("a".into()));
        assert_eq!(entries[7].kind, EntryKind::Hardlink("app/a".into()));

        let at_root = collect_tree(&src, Path::new("/")).unwrap();
        assert_eq!(at_root[0].path, Path::new("a"));
    }

    #[test]
    fn a_single_file_maps_to_dest() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f.txt");
        fs::write(&file, "x").unwrap();
        let entries = collect_tree(&file, Path::new("/etc/app.conf")).unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].path, Path::new("etc/app.conf"));
        assert_eq!(
            entries[0].kind,
            EntryKind::File(super::super::Content::Path(file))
        );
    }

    #[test]
    fn splits_device_numbers() {
        // makedev(1, 3) = /dev/null; makedev(259, 65536) uses the extended bits.
        assert_eq!(split_dev(0x103), (1, 3));
        let (major, minor) = (259u64, 65536u64);
        let dev = ((major & 0xfff) << 8)
            | ((major & !0xfff) << 32)
            | (minor & 0xff)
            | ((minor & !0xff) << 12);
        assert_eq!(split_dev(dev), (259, 65536));
        assert_eq!(split_dev(libc::makedev(259, 65536)), (259, 65536));
    }
}
