//! `strata init`: the article's three-tier chain (base → corebuild → httpd-php → wordpress),
//! written from the files of `examples/three-tier/` embedded at compile time, so there is one copy.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::rootfs::{self, RootfsError};

/// The example chain's files (path relative to the chain directory, content).
pub const EXAMPLE_FILES: &[(&str, &str)] = &[
    (
        "strata.toml",
        include_str!("../../../examples/three-tier/strata.toml"),
    ),
    (
        ".gitignore",
        include_str!("../../../examples/three-tier/.gitignore"),
    ),
    (
        "base/README.md",
        include_str!("../../../examples/three-tier/base/README.md"),
    ),
    (
        "corebuild/Dockerfile",
        include_str!("../../../examples/three-tier/corebuild/Dockerfile"),
    ),
    (
        "corebuild/motd",
        include_str!("../../../examples/three-tier/corebuild/motd"),
    ),
    (
        "httpd-php/Dockerfile",
        include_str!("../../../examples/three-tier/httpd-php/Dockerfile"),
    ),
    (
        "httpd-php/httpd.conf",
        include_str!("../../../examples/three-tier/httpd-php/httpd.conf"),
    ),
    (
        "wordpress/Dockerfile",
        include_str!("../../../examples/three-tier/wordpress/Dockerfile"),
    ),
    (
        "wordpress/index.php",
        include_str!("../../../examples/three-tier/wordpress/index.php"),
    ),
    (
        "wordpress/wp-config.php",
        include_str!("../../../examples/three-tier/wordpress/wp-config.php"),
    ),
];

/// The example's base rootfs tarball, relative to the chain directory.
pub const EXAMPLE_ROOTFS: &str = "base/rootfs.tar";

/// Why `strata init` failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScaffoldError {
    /// The directory already holds a chain file.
    #[error("{} already exists: not overwriting it", path.display())]
    Exists {
        /// The existing chain file.
        path: PathBuf,
    },
    /// The base rootfs could not be prepared (busybox-static missing, I/O).
    #[error(transparent)]
    Rootfs(#[from] RootfsError),
    /// Writing a file failed.
    #[error("{}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Write the example chain into `dir` (created if needed) with its base rootfs made from
/// `busybox`. Refuses when `dir/strata.toml` or any other file of the example exists (nothing is
/// overwritten); checks busybox before writing anything.
/// Returns the files written, relative to `dir`.
pub fn init_example(dir: &Path, busybox: &Path) -> Result<Vec<PathBuf>, ScaffoldError> {
    let chain_file = dir.join("strata.toml");
    // the chain file first, then any other file the example would replace
    let targets = std::iter::once("strata.toml")
        .chain(EXAMPLE_FILES.iter().map(|(rel, _)| *rel))
        .chain(std::iter::once(EXAMPLE_ROOTFS));
    for rel in targets {
        let path = dir.join(rel);
        if path.symlink_metadata().is_ok() {
            return Err(ScaffoldError::Exists { path });
        }
    }
    rootfs::check_busybox(busybox)?;
    let mut written = Vec::new();
    for (rel, content) in EXAMPLE_FILES {
        // the chain file last: a failure part way leaves no chain that looks complete
        if *rel == "strata.toml" {
            continue;
        }
        write_atomic(&dir.join(rel), content.as_bytes())?;
        written.push(PathBuf::from(rel));
    }
    rootfs::write_busybox_rootfs(busybox, &dir.join(EXAMPLE_ROOTFS))?;
    written.push(PathBuf::from(EXAMPLE_ROOTFS));
    let (_, chain_text) = EXAMPLE_FILES
        .iter()
        .find(|(rel, _)| *rel == "strata.toml")
        .expect("the example has a strata.toml");
    write_atomic(&chain_file, chain_text.as_bytes())?;
    written.push(PathBuf::from("strata.toml"));
    Ok(written)
}

/// Write only the example's base rootfs, `dir/base/rootfs.tar` (for a checkout of
/// `examples/three-tier`, where the tarball is not committed). Returns its path.
pub fn init_rootfs(dir: &Path, busybox: &Path) -> Result<PathBuf, ScaffoldError> {
    let dest = dir.join(EXAMPLE_ROOTFS);
    rootfs::write_busybox_rootfs(busybox, &dest)?;
    Ok(dest)
}

/// Write `bytes` to `path` atomically: a temp file in the same directory, fsynced, renamed.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ScaffoldError> {
    let io = |source| ScaffoldError::Io {
        path: path.to_path_buf(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
    tmp.write_all(bytes).map_err(io)?;
    // a temp file is created 0600; the example's files are ordinary, readable files
    tmp.as_file()
        .set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))
        .map_err(io)?;
    tmp.as_file().sync_all().map_err(io)?;
    tmp.persist(path).map_err(|e| io(e.error))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_overwrites_nothing() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("wordpress")).unwrap();
        std::fs::write(dir.path().join("wordpress/index.php"), "mine").unwrap();
        // the busybox is never looked at: the refusal comes first
        let err = init_example(dir.path(), Path::new("/nonexistent/busybox")).unwrap_err();
        assert!(
            matches!(&err, ScaffoldError::Exists { path } if path.ends_with("wordpress/index.php")),
            "{err}"
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("wordpress/index.php")).unwrap(),
            "mine"
        );
        assert!(!dir.path().join("strata.toml").exists());
    }

    /// Every file of examples/three-tier (but the generated rootfs) is written by init.
    #[test]
    fn init_writes_every_file_of_the_example() {
        fn walk(dir: &Path, base: &Path, out: &mut Vec<String>) {
            for e in std::fs::read_dir(dir).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    walk(&p, base, out);
                } else {
                    out.push(p.strip_prefix(base).unwrap().display().to_string());
                }
            }
        }
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/three-tier");
        let mut files = Vec::new();
        walk(&example, &example, &mut files);
        files.retain(|f| f != EXAMPLE_ROOTFS);
        files.sort();
        let mut embedded: Vec<String> = EXAMPLE_FILES.iter().map(|(r, _)| r.to_string()).collect();
        embedded.sort();
        assert_eq!(files, embedded);
    }
}
