//! The merged view of a stack of layer directories, read without mounting anything.
//!
//! Used to resolve users before a run, to decide which mount points must be created, to copy the
//! root when overlayfs is unavailable and to diff that copy afterwards. Lookups follow overlayfs'
//! rules: the topmost entry wins, a 0/0 character device hides lower entries, a directory marked
//! opaque hides lower directories' contents, and a non-directory ends the merge below it.

use rustix::io::Errno;
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::fs::{self, Metadata};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// Most symlinks followed while resolving one path (Linux's limit).
const MAX_LINKS: usize = 40;

/// A read-only merged view of layer directories (top first internally).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerView {
    top_first: Vec<PathBuf>,
}

/// One entry of the merged view: where it lives on the host and its `lstat`.
#[derive(Debug, Clone)]
pub struct ViewEntry {
    /// Host path of the topmost copy.
    pub host: PathBuf,
    /// Its metadata (not following symlinks).
    pub metadata: Metadata,
}

/// The overlay opaque markers, privileged and `userxattr` forms.
pub(crate) const OPAQUE_XATTRS: [&str; 2] = ["trusted.overlay.opaque", "user.overlay.opaque"];

impl LayerView {
    /// A view of `layers`, listed bottom to top.
    pub fn new(bottom_to_top: &[PathBuf]) -> Self {
        LayerView {
            top_first: bottom_to_top.iter().rev().cloned().collect(),
        }
    }

    /// A view of one plain directory.
    pub fn single(dir: &Path) -> Self {
        LayerView {
            top_first: vec![dir.to_path_buf()],
        }
    }

    /// The layers whose copy of directory `rel` takes part in the merge, top first; empty when
    /// `rel` is not a directory of the view. `rel` is clean and relative ("" is the root).
    fn dir_layers(&self, rel: &str) -> io::Result<Vec<&Path>> {
        let mut active: Vec<&Path> = self.top_first.iter().map(PathBuf::as_path).collect();
        let mut prefix = String::new();
        for name in rel.split('/').filter(|c| !c.is_empty()) {
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(name);
            let mut next = Vec::new();
            for layer in &active {
                let host = layer.join(&prefix);
                let Some(md) = lstat_opt(&host)? else {
                    continue;
                };
                if is_whiteout(&md) || !md.is_dir() {
                    break;
                }
                next.push(*layer);
                if is_opaque(&host) {
                    break;
                }
            }
            active = next;
            if active.is_empty() {
                break;
            }
        }
        Ok(active)
    }

    /// The entry at clean relative path `rel`, without following a final symlink.
    pub fn entry(&self, rel: &str) -> io::Result<Option<ViewEntry>> {
        let rel = rel.trim_matches('/');
        if rel.is_empty() {
            let host = self.top_first[0].clone();
            let metadata = fs::symlink_metadata(&host)?;
            return Ok(Some(ViewEntry { host, metadata }));
        }
        let (parent, name) = rel.rsplit_once('/').unwrap_or(("", rel));
        for layer in self.dir_layers(parent)? {
            let host = layer.join(parent).join(name);
            if let Some(metadata) = lstat_opt(&host)? {
                if is_whiteout(&metadata) {
                    return Ok(None);
                }
                return Ok(Some(ViewEntry { host, metadata }));
            }
        }
        Ok(None)
    }

    /// The merged contents of directory `rel`, sorted by name.
    pub fn read_dir(&self, rel: &str) -> io::Result<BTreeMap<OsString, ViewEntry>> {
        let mut out = BTreeMap::new();
        let mut hidden: BTreeSet<OsString> = BTreeSet::new();
        for layer in self.dir_layers(rel.trim_matches('/'))? {
            let dir = layer.join(rel.trim_matches('/'));
            for item in fs::read_dir(&dir)? {
                let item = item?;
                let name = item.file_name();
                if out.contains_key(&name) || hidden.contains(&name) {
                    continue;
                }
                let metadata = fs::symlink_metadata(item.path())?;
                if is_whiteout(&metadata) {
                    hidden.insert(name);
                } else {
                    out.insert(
                        name,
                        ViewEntry {
                            host: item.path(),
                            metadata,
                        },
                    );
                }
            }
        }
        Ok(out)
    }

    /// Resolve absolute sandbox path `path` inside the view, following symlinks without ever
    /// leaving the root (`..` stops at `/`, absolute links restart at the root). Components past
    /// the first missing one are kept as written. Returns a clean relative path ("" for `/`).
    pub fn resolve(&self, path: &str) -> io::Result<String> {
        let mut done: Vec<String> = Vec::new();
        let mut todo: Vec<String> = components(path).into_iter().rev().collect();
        let mut links = 0;
        let mut missing = false;
        while let Some(comp) = todo.pop() {
            if comp == ".." {
                if !missing {
                    done.pop();
                }
                continue;
            }
            done.push(comp);
            if missing {
                continue;
            }
            let rel = done.join("/");
            match self.entry(&rel)? {
                None => missing = true,
                Some(e) if e.metadata.file_type().is_symlink() => {
                    links += 1;
                    if links > MAX_LINKS {
                        return Err(io::Error::other(format!(
                            "too many symlinks resolving {path}"
                        )));
                    }
                    let target = fs::read_link(&e.host)?;
                    let target = target.as_os_str().as_bytes();
                    done.pop();
                    if target.starts_with(b"/") {
                        done.clear();
                    }
                    let target = String::from_utf8_lossy(target).into_owned();
                    todo.extend(components(&target).into_iter().rev());
                }
                Some(_) => {}
            }
        }
        Ok(done.join("/"))
    }

    /// Read a small regular file of the view at absolute path `path`, resolving symlinks inside
    /// the root. `Ok(None)` when it does not exist; an error when it is not a regular file or is
    /// larger than `limit` bytes. Never blocks on FIFOs and never reads devices. The file is
    /// opened relative to a descriptor of its layer ([`strata_oci::Root`]) with no symlink
    /// allowed on the way, the path being one [`LayerView::resolve`] made symlink-free.
    pub fn read_file(&self, path: &str, limit: u64) -> io::Result<Option<Vec<u8>>> {
        let rel = self.resolve(path)?;
        let Some(entry) = self.entry(&rel)? else {
            return Ok(None);
        };
        if !entry.metadata.is_file() {
            return Err(io::Error::other(format!("{path} is not a regular file")));
        }
        let Some(layer) = self
            .top_first
            .iter()
            .find(|layer| layer.join(&rel) == entry.host)
        else {
            return Err(io::Error::other(format!("{path}: no layer holds it")));
        };
        let root = strata_oci::Root::open(layer).map_err(io::Error::other)?;
        match root.read_file(&rel, strata_oci::Follow::Never, limit) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(strata_oci::RootError::Io { source, .. })
                if source.kind() == io::ErrorKind::Other =>
            {
                Err(io::Error::other(format!("{path}: {source}")))
            }
            Err(e) => Err(io::Error::other(e)),
        }
    }
}

/// The components of `path`, without empty ones and `.`.
fn components(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .map(str::to_string)
        .collect()
}

/// `path` made clean and relative, lexically (`..` stops at the root): "/a/./b/../c" → "a/c".
pub fn clean(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out.join("/")
}

/// `lstat`, with "not found" and "not a directory" as `None`.
pub(crate) fn lstat_opt(path: &Path) -> io::Result<Option<Metadata>> {
    match fs::symlink_metadata(path) {
        Ok(md) => Ok(Some(md)),
        Err(e)
            if e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ENOTDIR) =>
        {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// An overlay whiteout: a character device 0/0.
pub fn is_whiteout(md: &Metadata) -> bool {
    md.file_type().is_char_device() && md.rdev() == 0
}

/// A directory overlay marked opaque (`trusted.overlay.opaque=y` or `user.overlay.opaque=y`).
pub fn is_opaque(path: &Path) -> bool {
    OPAQUE_XATTRS
        .iter()
        .any(|name| matches!(get_xattr(path, name), Ok(Some(v)) if v == b"y"))
}

/// `lgetxattr`: the value of extended attribute `name` of `path`, `None` when absent.
pub(crate) fn get_xattr(path: &Path, name: &str) -> io::Result<Option<Vec<u8>>> {
    let mut buf = vec![0u8; 256];
    loop {
        match rustix::fs::lgetxattr(path, name, &mut buf[..]) {
            Ok(n) => {
                buf.truncate(n);
                return Ok(Some(buf));
            }
            Err(Errno::NODATA | Errno::NOTSUP) => return Ok(None),
            Err(Errno::RANGE) if buf.len() < 1 << 20 => buf.resize(buf.len() * 4, 0),
            Err(e) => return Err(e.into()),
        }
    }
}

/// `llistxattr`: the names of the extended attributes of `path`.
pub(crate) fn list_xattrs(path: &Path) -> io::Result<Vec<String>> {
    let mut buf = vec![0u8; 1024];
    loop {
        match rustix::fs::llistxattr(path, &mut buf[..]) {
            Ok(n) => {
                buf.truncate(n);
                return Ok(buf
                    .split(|b| *b == 0)
                    .filter(|n| !n.is_empty())
                    .map(|n| String::from_utf8_lossy(n).into_owned())
                    .collect());
            }
            Err(Errno::NOTSUP) => return Ok(Vec::new()),
            Err(Errno::RANGE) if buf.len() < 1 << 20 => buf.resize(buf.len() * 4, 0),
            Err(e) => return Err(e.into()),
        }
    }
}

/// `lsetxattr`.
pub(crate) fn set_xattr(path: &Path, name: &str, value: &[u8]) -> io::Result<()> {
    rustix::fs::lsetxattr(path, name, value, rustix::fs::XattrFlags::empty()).map_err(Into::into)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn layers() -> (tempfile::TempDir, LayerView) {
        let t = tempfile::tempdir().unwrap();
        let (l0, l1) = (t.path().join("l0"), t.path().join("l1"));
        for d in ["etc", "usr/lib", "var", "gone"] {
            fs::create_dir_all(l0.join(d)).unwrap();
        }
        fs::write(l0.join("etc/passwd"), "root:x:0:0::/root:/bin/sh\n").unwrap();
        fs::write(l0.join("etc/old"), "old").unwrap();
        fs::write(l0.join("var/a"), "a").unwrap();
        fs::write(l0.join("gone/f"), "f").unwrap();
        symlink("/usr/lib", l0.join("lib")).unwrap();
        symlink("../../etc/passwd", l0.join("usr/lib/pw")).unwrap();
        fs::create_dir_all(l1.join("etc")).unwrap();
        fs::create_dir_all(l1.join("var")).unwrap();
        fs::write(l1.join("etc/passwd"), "root:x:0:0::/root:/bin/ash\n").unwrap();
        fs::write(l1.join("var/b"), "b").unwrap();
        // l1 deletes /gone (whiteout needs mknod: root only) and makes /var opaque (xattr).
        let whiteouts = nix::sys::stat::mknod(
            &l1.join("gone"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::empty(),
            0,
        )
        .is_ok();
        let opaque = set_xattr(&l1.join("var"), "trusted.overlay.opaque", b"y").is_ok();
        assert_eq!(whiteouts, opaque, "run as root or as non-root, not half");
        (t, LayerView::new(&[l0, l1]))
    }

    #[test]
    fn topmost_entry_wins_and_symlinks_stay_inside() {
        let (_t, view) = layers();
        let pw = view.read_file("/etc/passwd", 1 << 20).unwrap().unwrap();
        assert_eq!(pw, b"root:x:0:0::/root:/bin/ash\n");
        // /lib -> /usr/lib, pw -> ../../etc/passwd: resolved inside the view.
        assert_eq!(view.resolve("/lib/pw").unwrap(), "etc/passwd");
        assert_eq!(view.resolve("/../../lib/x/y").unwrap(), "usr/lib/x/y");
        assert_eq!(view.read_file("/lib/pw", 1 << 20).unwrap().unwrap(), pw);
        assert!(view.read_file("/etc/passwd", 4).is_err(), "size limit");
        assert!(
            view.read_file("/etc", 1 << 20).is_err(),
            "not a regular file"
        );
        assert_eq!(view.read_file("/nope", 10).unwrap(), None);
    }

    #[test]
    fn whiteouts_and_opaque_dirs_hide_lower_entries() {
        let (_t, view) = layers();
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        assert!(view.entry("gone").unwrap().is_none());
        assert!(view.entry("gone/f").unwrap().is_none());
        let var: Vec<_> = view.read_dir("var").unwrap().into_keys().collect();
        assert_eq!(var, vec![OsString::from("b")]);
        let root: Vec<_> = view.read_dir("").unwrap().into_keys().collect();
        assert_eq!(root, ["etc", "lib", "usr", "var"].map(OsString::from));
        let etc: Vec<_> = view.read_dir("etc").unwrap().into_keys().collect();
        assert_eq!(etc, ["old", "passwd"].map(OsString::from));
    }

    #[test]
    fn clean_is_lexical() {
        assert_eq!(clean("/a/./b/../c/"), "a/c");
        assert_eq!(clean("/../.."), "");
    }
}
