//! Resolve a path inside a root the way a chroot would: `..` never climbs above the root and symlinks,
//! absolute or relative, are followed inside it. Used for the build context (COPY sources) and for the
//! image's own tree (COPY destinations, WORKDIR), so no source or destination can reach the host.
//!
//! The lookup of a link is abstract ([`LinkReader`]) so the same logic serves a directory on disk and
//! the image filesystem index that lives only in memory.

use std::path::{Path, PathBuf};

/// Too many symlinks followed while resolving one path (a loop, or a hostile chain).
#[derive(Debug, thiserror::Error)]
#[error("too many levels of symbolic links resolving {path}")]
pub struct SymlinkLoop {
    /// The path being resolved, relative to the root.
    pub path: String,
}

/// Reads a symlink's target, if `path` (absolute within the root, `/`-separated) is a symlink.
pub trait LinkReader {
    /// The link's target when `path` is a symlink, `None` otherwise (missing paths included).
    fn read_link(&self, path: &str) -> Option<String>;
}

/// A [`LinkReader`] over a real directory: links are read relative to a descriptor of the root
/// ([`crate::Root`]), never by joining paths onto its host path.
#[derive(Debug, Clone)]
pub struct DiskLinks<'a> {
    root: Option<std::sync::Arc<crate::Root>>,
    _path: std::marker::PhantomData<&'a Path>,
}

impl<'a> DiskLinks<'a> {
    /// Links read under `root` (none when `root` cannot be opened).
    pub fn new(root: &'a Path) -> Self {
        Self {
            root: crate::Root::open(root).ok().map(std::sync::Arc::new),
            _path: std::marker::PhantomData,
        }
    }
}

impl LinkReader for DiskLinks<'_> {
    fn read_link(&self, path: &str) -> Option<String> {
        let target = self.root.as_ref()?.read_link(path).ok()??;
        Some(target.to_string_lossy().into_owned())
    }
}

const MAX_LINKS: usize = 255;

/// Resolve `path` (relative or absolute, as seen from inside the root) to a canonical absolute path
/// inside the root: `.`/`..` handled lexically against the root, every symlink in a parent component
/// followed inside the root, and the final component followed too when `follow_final` is set.
pub fn resolve(
    links: &dyn LinkReader,
    path: &str,
    follow_final: bool,
) -> Result<String, SymlinkLoop> {
    let mut resolved: Vec<String> = Vec::new();
    // Components still to walk, in reverse order (a stack), so link targets can be spliced in.
    let mut pending: Vec<String> = components(path).into_iter().rev().collect();
    let mut followed = 0usize;
    while let Some(part) = pending.pop() {
        match part.as_str() {
            "." => continue,
            ".." => {
                resolved.pop();
                continue;
            }
            _ => {}
        }
        resolved.push(part);
        let is_final = pending.is_empty();
        if is_final && !follow_final {
            break;
        }
        let current = format!("/{}", resolved.join("/"));
        if let Some(target) = links.read_link(&current) {
            followed += 1;
            if followed > MAX_LINKS {
                return Err(SymlinkLoop {
                    path: path.to_string(),
                });
            }
            resolved.pop();
            if target.starts_with('/') {
                resolved.clear();
            }
            for comp in components(&target).into_iter().rev() {
                pending.push(comp);
            }
        }
    }
    Ok(format!("/{}", resolved.join("/")))
}

/// Resolve `path` inside `root` on disk and return the host path it designates.
pub fn resolve_on_disk(
    root: &Path,
    path: &str,
    follow_final: bool,
) -> Result<PathBuf, SymlinkLoop> {
    let inner = resolve(&DiskLinks::new(root), path, follow_final)?;
    Ok(root.join(inner.trim_start_matches('/')))
}

fn components(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|c| !c.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    struct Links(HashMap<&'static str, &'static str>);
    impl LinkReader for Links {
        fn read_link(&self, path: &str) -> Option<String> {
            self.0.get(path).map(|t| t.to_string())
        }
    }

    #[test]
    fn dotdot_never_climbs_above_root() {
        let links = Links(HashMap::new());
        assert_eq!(
            resolve(&links, "../../etc/passwd", true).unwrap(),
            "/etc/passwd"
        );
        assert_eq!(resolve(&links, "a/../../b", true).unwrap(), "/b");
        assert_eq!(resolve(&links, "/", true).unwrap(), "/");
    }

    #[test]
    fn absolute_symlinks_stay_inside() {
        let links = Links(HashMap::from([("/a", "/tmp"), ("/usr/local", "../opt")]));
        assert_eq!(resolve(&links, "a/evil", true).unwrap(), "/tmp/evil");
        assert_eq!(resolve(&links, "/usr/local/bin", true).unwrap(), "/opt/bin");
        assert_eq!(resolve(&links, "/a", false).unwrap(), "/a");
        assert_eq!(resolve(&links, "/a", true).unwrap(), "/tmp");
    }

    #[test]
    fn relative_symlinks_climbing_out_are_clamped() {
        let links = Links(HashMap::from([("/x/up", "../../../../../../etc")]));
        assert_eq!(
            resolve(&links, "/x/up/shadow", true).unwrap(),
            "/etc/shadow"
        );
    }

    #[test]
    fn loops_are_errors() {
        let links = Links(HashMap::from([("/a", "/b"), ("/b", "/a")]));
        assert!(resolve(&links, "/a/x", true).is_err());
    }

    #[test]
    fn on_disk_links_are_followed_inside_root() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("real")).unwrap();
        std::os::unix::fs::symlink("/real", dir.path().join("abs")).unwrap();
        std::os::unix::fs::symlink("/etc", dir.path().join("escape")).unwrap();
        let p = resolve_on_disk(dir.path(), "abs/file", true).unwrap();
        assert_eq!(p, dir.path().join("real/file"));
        let p = resolve_on_disk(dir.path(), "escape/passwd", true).unwrap();
        assert_eq!(p, dir.path().join("etc/passwd"));
    }
}
