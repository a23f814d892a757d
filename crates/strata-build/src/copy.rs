//! Plan a COPY or ADD: which paths of the image it writes, with what content, mode and owner.
//!
//! The plan is plain data computed from metadata only (no content is read), so it can be hashed into
//! the step's cache key before any layer work, and the layer writer then streams it. The rules are
//! BuildKit's: a directory source copies its contents, several sources need a directory destination
//! ending in `/`, a relative destination is under WORKDIR, missing parent directories are created
//! (owned by `--chown`), and the destination is resolved through the image's own symlinks without ever
//! leaving the image root. Existing parent directories are not re-emitted, so a COPY layer's bytes do
//! not depend on the parent image beyond which directories exist: unchanged sources give the same
//! layer on a new parent.

use std::collections::BTreeMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::PathBuf;

use crate::context::{BuildContext, ContextEntry, ContextError};
use crate::dockerignore::DockerIgnore;
use crate::users::Owner;
use strata_oci::fsindex::{FsIndex, NodeKind, normalise};
use strata_oci::scoped;

/// Why a COPY cannot be planned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CopyError {
    /// A source is missing, excluded, or unreadable.
    #[error(transparent)]
    Context(#[from] ContextError),
    /// Several sources need a directory destination.
    #[error(
        "when copying more than one source ({count}), the destination must be a directory ending with /: {dest:?}"
    )]
    DestNotDirectory {
        /// How many sources matched.
        count: usize,
        /// The destination as written.
        dest: String,
    },
    /// A path on the way to the destination is a file in the image.
    #[error("cannot copy to {target}: {blocker} is not a directory in the image")]
    ParentNotDirectory {
        /// The path being written.
        target: String,
        /// The existing non-directory.
        blocker: String,
    },
    /// A symlink loop in the image on the way to the destination.
    #[error(transparent)]
    Loop(#[from] scoped::SymlinkLoop),
    /// An `--exclude` pattern is invalid.
    #[error("--exclude: {0}")]
    Exclude(String),
    /// A source is a socket, which a layer cannot carry.
    #[error("{0}: unsupported file type (socket) in a COPY source")]
    Unsupported(String),
}

/// What one planned path holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlannedContent {
    /// A directory.
    Dir,
    /// A regular file whose bytes are read from this host path when the layer is written.
    File(PathBuf),
    /// A regular file with inline bytes (heredoc sources).
    Bytes(Vec<u8>),
    /// A symbolic link.
    Symlink(String),
    /// A hard link to another planned regular file of the same step (its plan key), written as a
    /// tar hard-link entry, as buildah and BuildKit write a link group.
    Hardlink(String),
    /// A character device (an ADDed root filesystem's `/dev/console`).
    CharDevice {
        /// Major number.
        major: u32,
        /// Minor number.
        minor: u32,
    },
    /// A block device.
    BlockDevice {
        /// Major number.
        major: u32,
        /// Minor number.
        minor: u32,
    },
    /// A named pipe.
    Fifo,
}

/// One path the step writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedEntry {
    /// Content.
    pub content: PlannedContent,
    /// Permission bits (including setuid/setgid/sticky).
    pub mode: u32,
    /// Owner.
    pub owner: Owner,
    /// The source's modification time (seconds since the epoch); `None` for what the step
    /// creates itself (parent directories, heredocs), which gets `SOURCE_DATE_EPOCH`. The layer
    /// writer clamps it to `SOURCE_DATE_EPOCH`, as BuildKit's `rewrite-timestamp` does.
    pub mtime: Option<u64>,
    /// Extended attributes the layer keeps ([`strata_oci::tar::layer_xattr`]: file capabilities,
    /// `user.*`): a source's own where it keeps its owner ([`CopyOptions::preserve_owner`]);
    /// empty otherwise.
    pub xattrs: BTreeMap<String, Vec<u8>>,
}

/// Every path a COPY/ADD writes, keyed by image path without the leading `/` (`usr/bin/x`), sorted.
pub type CopyPlan = BTreeMap<String, PlannedEntry>;

/// Where sources come from.
#[derive(Debug)]
pub enum CopySource {
    /// Paths (with wildcards) in a context or a stage's root filesystem.
    Tree(BuildContext, Vec<String>),
    /// A heredoc: its name (used as the file name when the destination is a directory) and bytes.
    Inline(String, Vec<u8>),
}

/// Options of one COPY/ADD.
#[derive(Debug, Clone, Default)]
pub struct CopyOptions {
    /// The destination as written (after variable expansion).
    pub dest: String,
    /// The current WORKDIR (absolute).
    pub workdir: String,
    /// `--chown`, resolved; `None` means root (0:0).
    pub owner: Option<Owner>,
    /// `--chmod`, applied to copied files and directories.
    pub chmod: Option<u32>,
    /// `--exclude` patterns, matched against paths relative to each source.
    pub excludes: Vec<String>,
    /// `--parents`: keep each source's path below the destination.
    pub parents: bool,
    /// The sources are an image's own files (COPY `--from` a stage or an image, ADD of a local
    /// archive): they keep their owners and the attributes a layer carries (file capabilities,
    /// `user.*`), unless `--chown` gives them another owner, which keeps neither (as a chown
    /// drops a file's capabilities).
    pub preserve_owner: bool,
}

/// One matched source item before placement.
struct Item {
    /// Name relative to what is kept below the destination (basename, or full path with --parents).
    keep: String,
    entry: ContextEntry,
}

/// Plan a COPY/ADD of `sources` into the image described by `image`.
pub fn plan_copy(
    image: &FsIndex,
    sources: &[CopySource],
    opts: &CopyOptions,
) -> Result<CopyPlan, CopyError> {
    let owner = opts.owner.unwrap_or(Owner { uid: 0, gid: 0 });
    let excludes = DockerIgnore::parse(&opts.excludes.join("\n"))
        .map_err(|e| CopyError::Exclude(strata_oci::report(&e)))?;
    let dest_abs = if opts.dest.starts_with('/') {
        opts.dest.clone()
    } else {
        format!("{}/{}", opts.workdir.trim_end_matches('/'), opts.dest)
    };
    let dest_says_dir = opts.dest.ends_with('/')
        || opts.dest.ends_with("/.")
        || opts.dest == "."
        || opts.dest.is_empty();

    // Match every source.
    let mut items: Vec<Item> = Vec::new();
    let mut inline: Vec<(String, &[u8])> = Vec::new();
    for source in sources {
        match source {
            CopySource::Inline(name, bytes) => inline.push((name.clone(), bytes)),
            CopySource::Tree(ctx, patterns) => {
                for pattern in patterns {
                    for entry in ctx.expand(pattern)? {
                        let keep = if opts.parents {
                            parents_path(pattern, &entry.rel)
                        } else {
                            basename(&entry.rel).to_string()
                        };
                        items.push(Item { keep, entry });
                    }
                }
            }
        }
    }
    let count = items.len() + inline.len();
    let single_file = count == 1
        && inline.len() + items.iter().filter(|i| !i.entry.meta.is_dir()).count() == 1
        && !opts.parents;
    let dest_exists_as_dir = {
        let resolved = scoped::resolve(image, &dest_abs, true)?;
        matches!(image.get(&resolved).map(|n| &n.kind), Some(NodeKind::Dir))
    };
    if count > 1 && !dest_says_dir && !dest_exists_as_dir {
        return Err(CopyError::DestNotDirectory {
            count,
            dest: opts.dest.clone(),
        });
    }

    let mut plan = CopyPlan::new();
    let mut placer = Placer {
        image,
        plan: &mut plan,
        owner,
        preserve_owner: opts.preserve_owner && opts.owner.is_none(),
    };
    if single_file && !dest_says_dir && !dest_exists_as_dir {
        // One file to a file path.
        let target = placer.target_path(&dest_abs)?;
        match (items.pop(), inline.pop()) {
            (Some(item), _) => placer.put_entry(&target, &item.entry, opts.chmod)?,
            (None, Some((_, bytes))) => placer.put(
                &target,
                PlannedContent::Bytes(bytes.to_vec()),
                opts.chmod.unwrap_or(0o644),
            )?,
            (None, None) => {}
        }
        return Ok(plan);
    }
    let dest_dir = scoped::resolve(image, &dest_abs, true)?;
    placer.ensure_dir(&dest_dir)?;
    for (name, bytes) in inline {
        let target = placer.target_path(&join(&dest_dir, &name))?;
        placer.put(
            &target,
            PlannedContent::Bytes(bytes.to_vec()),
            opts.chmod.unwrap_or(0o644),
        )?;
    }
    for item in items {
        let base = if item.entry.meta.is_dir() && !opts.parents {
            dest_dir.clone()
        } else {
            join(&dest_dir, &item.keep)
        };
        if item.entry.meta.is_dir() {
            if opts.parents {
                let target = placer.target_path(&base)?;
                placer.put_entry(&target, &item.entry, opts.chmod)?;
            }
            let ctx_root = item.entry.path.clone();
            let walker = BuildContext::without_ignore(&ctx_root);
            for sub in walker.walk_all()? {
                if excludes.is_excluded(&sub.rel) {
                    continue;
                }
                if source_excluded(sources, &sub.path) {
                    continue;
                }
                let target = placer.target_path(&join(&base, &sub.rel))?;
                placer.put_entry(&target, &sub, opts.chmod)?;
            }
        } else {
            if excludes.is_excluded(&item.entry.rel) {
                continue;
            }
            let target = placer.target_path(&base)?;
            placer.put_entry(&target, &item.entry, opts.chmod)?;
        }
    }
    Ok(plan)
}

/// Turn planned regular files that are one inode on the host (a hard-link group in the context,
/// a stage or an extracted archive) into one file and hard links to it, as buildah and BuildKit
/// write them: the first path in layer order is the file, the others link to it. Run on a
/// step's whole plan, just before it is keyed and written.
pub fn link_groups(plan: &mut CopyPlan) {
    let mut groups: BTreeMap<(u64, u64), Vec<String>> = BTreeMap::new();
    for (key, entry) in plan.iter() {
        if let PlannedContent::File(src) = &entry.content
            && let Ok(meta) = std::fs::metadata(src)
            && meta.nlink() > 1
        {
            groups
                .entry((meta.dev(), meta.ino()))
                .or_default()
                .push(key.clone());
        }
    }
    for (_, mut keys) in groups {
        if keys.len() < 2 {
            continue;
        }
        // Layer order compares component by component, as `Path` does.
        keys.sort_by(|a, b| std::path::Path::new(a).cmp(std::path::Path::new(b)));
        let first = keys[0].clone();
        for key in &keys[1..] {
            if let Some(entry) = plan.get_mut(key) {
                entry.content = PlannedContent::Hardlink(first.clone());
            }
        }
    }
}

/// Linux `dev_t` to (major, minor), glibc's `gnu_dev_major`/`gnu_dev_minor` split.
fn split_dev(dev: u64) -> (u32, u32) {
    let major = ((dev >> 32) & 0xffff_f000) | ((dev >> 8) & 0x0000_0fff);
    let minor = ((dev >> 12) & 0xffff_ff00) | (dev & 0x0000_00ff);
    (major as u32, minor as u32)
}

/// Whether the source tree holding host path `path` (a path below a copied directory) excludes
/// it; matched on its real path in the tree, so a directory reached through a symlink keeps its
/// `.dockerignore` rules.
fn source_excluded(sources: &[CopySource], path: &std::path::Path) -> bool {
    sources.iter().any(|s| match s {
        CopySource::Tree(ctx, _) => path
            .strip_prefix(ctx.root())
            .ok()
            .and_then(|rel| rel.to_str())
            .is_some_and(|rel| !rel.is_empty() && ctx.is_excluded(rel)),
        CopySource::Inline(..) => false,
    })
}

/// Places planned entries, creating missing parents and refusing to pass through files.
struct Placer<'a> {
    image: &'a FsIndex,
    plan: &'a mut CopyPlan,
    owner: Owner,
    preserve_owner: bool,
}

impl Placer<'_> {
    /// Resolve the parent of `path` through the image's symlinks (inside the root); the last
    /// component is kept as is so a COPY replaces a symlink rather than writing through it.
    fn target_path(&mut self, path: &str) -> Result<String, CopyError> {
        let path = normalise(path);
        let (parent, name) = match path.rfind('/') {
            Some(0) => ("/".to_string(), path[1..].to_string()),
            Some(pos) => (path[..pos].to_string(), path[pos + 1..].to_string()),
            None => ("/".to_string(), path.clone()),
        };
        let parent = scoped::resolve(self.image, &parent, true)?;
        self.ensure_dir(&parent)?;
        Ok(join(&parent, &name))
    }

    /// Make sure directory `dir` exists, planning every missing ancestor (0755, owned by --chown).
    fn ensure_dir(&mut self, dir: &str) -> Result<(), CopyError> {
        let mut current = String::new();
        for part in dir.split('/').filter(|p| !p.is_empty()) {
            current.push('/');
            current.push_str(part);
            let key = current[1..].to_string();
            if let Some(planned) = self.plan.get(&key) {
                if planned.content != PlannedContent::Dir {
                    return Err(CopyError::ParentNotDirectory {
                        target: dir.to_string(),
                        blocker: current.clone(),
                    });
                }
                continue;
            }
            match self.image.get(&current).map(|n| &n.kind) {
                Some(NodeKind::Dir) => {}
                None => {
                    self.plan.insert(
                        key,
                        PlannedEntry {
                            content: PlannedContent::Dir,
                            mode: 0o755,
                            owner: self.owner,
                            mtime: None,
                            xattrs: BTreeMap::new(),
                        },
                    );
                }
                Some(_) => {
                    return Err(CopyError::ParentNotDirectory {
                        target: dir.to_string(),
                        blocker: current.clone(),
                    });
                }
            }
        }
        Ok(())
    }

    fn put(&mut self, target: &str, content: PlannedContent, mode: u32) -> Result<(), CopyError> {
        let key = target.trim_start_matches('/').to_string();
        if key.is_empty() {
            return Ok(()); // the root itself keeps its metadata
        }
        self.plan.insert(
            key,
            PlannedEntry {
                content,
                mode,
                owner: self.owner,
                mtime: None,
                xattrs: BTreeMap::new(),
            },
        );
        Ok(())
    }

    fn put_entry(
        &mut self,
        target: &str,
        entry: &ContextEntry,
        chmod: Option<u32>,
    ) -> Result<(), CopyError> {
        let file_type = entry.meta.file_type();
        let own_mode = entry.meta.permissions().mode() & 0o7777;
        let (content, mode) = if file_type.is_symlink() {
            let link = std::fs::read_link(&entry.path).map_err(|source| ContextError::Io {
                path: entry.path.clone(),
                source,
            })?;
            (
                PlannedContent::Symlink(link.to_string_lossy().into_owned()),
                0o777,
            )
        } else if file_type.is_dir() {
            (PlannedContent::Dir, chmod.unwrap_or(own_mode))
        } else if file_type.is_file() {
            (
                PlannedContent::File(entry.path.clone()),
                chmod.unwrap_or(own_mode),
            )
        } else if file_type.is_char_device() || file_type.is_block_device() {
            // Kept as BuildKit keeps them: steps cannot open them (nodev, no CAP_MKNOD).
            let (major, minor) = split_dev(entry.meta.rdev());
            let content = if file_type.is_char_device() {
                PlannedContent::CharDevice { major, minor }
            } else {
                PlannedContent::BlockDevice { major, minor }
            };
            (content, chmod.unwrap_or(own_mode))
        } else if file_type.is_fifo() {
            (PlannedContent::Fifo, chmod.unwrap_or(own_mode))
        } else {
            return Err(CopyError::Unsupported(entry.rel.clone()));
        };
        self.put(target, content, mode)?;
        let key = target.trim_start_matches('/');
        if let Some(planned) = self.plan.get_mut(key) {
            planned.mtime = Some(u64::try_from(entry.meta.mtime()).unwrap_or(0));
            if self.preserve_owner {
                planned.owner = Owner {
                    uid: entry.meta.uid(),
                    gid: entry.meta.gid(),
                };
                planned.xattrs = strata_oci::tar::layer_xattrs(&entry.path);
            }
        }
        Ok(())
    }
}

/// Plan the creation of directory `dir` (absolute, already resolved against WORKDIR) and its
/// missing parents, owned by `owner` (WORKDIR creates its directory as the current USER).
pub fn plan_mkdir(image: &FsIndex, dir: &str, owner: Owner) -> Result<CopyPlan, CopyError> {
    let mut plan = CopyPlan::new();
    let resolved = scoped::resolve(image, dir, true)?;
    Placer {
        image,
        plan: &mut plan,
        owner,
        preserve_owner: false,
    }
    .ensure_dir(&resolved)?;
    Ok(plan)
}

/// With `--parents`, what is kept below the destination: the path after a `/./` pivot in the
/// pattern, or the whole context path.
fn parents_path(pattern: &str, rel: &str) -> String {
    let pattern = pattern.trim_start_matches("./");
    match pattern.find("/./") {
        Some(pos) => {
            let prefix = &pattern[..pos];
            rel.strip_prefix(prefix)
                .map(|r| r.trim_start_matches('/').to_string())
                .unwrap_or_else(|| rel.to_string())
        }
        None => rel.to_string(),
    }
}

fn basename(rel: &str) -> &str {
    rel.rsplit('/').next().unwrap_or(rel)
}

fn join(dir: &str, name: &str) -> String {
    if name.is_empty() || name == "." {
        return dir.to_string();
    }
    if dir.ends_with('/') {
        format!("{dir}{name}")
    } else {
        format!("{dir}/{name}")
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    fn ctx(files: &[(&str, &str)]) -> (tempfile::TempDir, BuildContext) {
        let dir = tempfile::tempdir().unwrap();
        for (path, content) in files {
            let p = dir.path().join(path);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(&p, content).unwrap();
            fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
        }
        let c = BuildContext::open(dir.path(), None).unwrap();
        (dir, c)
    }

    fn image_with(entries: &[(&str, bool)], links: &[(&str, &str)]) -> FsIndex {
        let mut b = tar::Builder::new(Vec::new());
        for (path, is_dir) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(0);
            h.set_mode(if *is_dir { 0o755 } else { 0o644 });
            h.set_size(0);
            h.set_entry_type(if *is_dir {
                tar::EntryType::Directory
            } else {
                tar::EntryType::Regular
            });
            b.append_data(&mut h, path, std::io::empty()).unwrap();
        }
        for (path, target) in links {
            let mut h = tar::Header::new_gnu();
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(0);
            h.set_mode(0o777);
            h.set_size(0);
            h.set_entry_type(tar::EntryType::Symlink);
            b.append_link(&mut h, path, target).unwrap();
        }
        let mut fs = FsIndex::new();
        fs.apply_tar(&b.into_inner().unwrap()[..]).unwrap();
        fs
    }

    fn opts(dest: &str) -> CopyOptions {
        CopyOptions {
            dest: dest.to_string(),
            workdir: "/".to_string(),
            ..CopyOptions::default()
        }
    }

    fn keys(plan: &CopyPlan) -> Vec<&str> {
        plan.keys().map(String::as_str).collect()
    }

    #[test]
    fn file_to_file_and_file_into_dir() {
        let (_d, c) = ctx(&[("motd", "hi")]);
        let image = image_with(&[("etc", true)], &[]);
        let src = [CopySource::Tree(c.clone(), vec!["motd".into()])];
        assert_eq!(
            keys(&plan_copy(&image, &src, &opts("/etc/motd")).unwrap()),
            ["etc/motd"]
        );
        // An existing directory as destination: copied into it.
        assert_eq!(
            keys(&plan_copy(&image, &src, &opts("/etc")).unwrap()),
            ["etc/motd"]
        );
        // A trailing slash creates the directory.
        assert_eq!(
            keys(&plan_copy(&image, &src, &opts("/srv/x/")).unwrap()),
            ["srv", "srv/x", "srv/x/motd"]
        );
    }

    #[test]
    fn directory_sources_copy_their_contents() {
        let (_d, c) = ctx(&[("app/index.php", "<?php"), ("app/inc/a.php", "a")]);
        let image = image_with(&[("var", true)], &[]);
        let src = [CopySource::Tree(c.clone(), vec!["app".into()])];
        let mut o = opts("html");
        o.workdir = "/var/www".into();
        o.owner = Some(Owner { uid: 33, gid: 33 });
        let plan = plan_copy(&image, &src, &o).unwrap();
        assert_eq!(
            keys(&plan),
            [
                "var/www",
                "var/www/html",
                "var/www/html/inc",
                "var/www/html/inc/a.php",
                "var/www/html/index.php"
            ]
        );
        assert_eq!(plan["var/www/html/index.php"].owner.uid, 33);
        assert_eq!(plan["var/www"].owner.uid, 33, "created parents get --chown");
        assert_eq!(plan["var/www/html/index.php"].mode, 0o644);
    }

    #[test]
    fn several_sources_need_a_directory() {
        let (_d, c) = ctx(&[("a", ""), ("b", "")]);
        let image = FsIndex::new();
        let src = [CopySource::Tree(c.clone(), vec!["a".into(), "b".into()])];
        assert!(matches!(
            plan_copy(&image, &src, &opts("/x")),
            Err(CopyError::DestNotDirectory { count: 2, .. })
        ));
        assert_eq!(
            keys(&plan_copy(&image, &src, &opts("/x/")).unwrap()),
            ["x", "x/a", "x/b"]
        );
    }

    #[test]
    fn destinations_follow_image_symlinks_inside_the_root() {
        let (_d, c) = ctx(&[("tool", "#!")]);
        let image = image_with(
            &[("opt", true)],
            &[("usr/local", "/opt"), ("escape", "../../../../etc")],
        );
        let src = [CopySource::Tree(c.clone(), vec!["tool".into()])];
        assert_eq!(
            keys(&plan_copy(&image, &src, &opts("/usr/local/bin/")).unwrap()),
            ["opt/bin", "opt/bin/tool"]
        );
        // A symlink pointing above the root lands inside the image, never on the host.
        assert_eq!(
            keys(&plan_copy(&image, &src, &opts("/escape/")).unwrap()),
            ["etc", "etc/tool"]
        );
    }

    #[test]
    fn a_file_in_the_way_is_an_error() {
        let (_d, c) = ctx(&[("a", "")]);
        let image = image_with(&[("etc", true), ("etc/hosts", false)], &[]);
        let src = [CopySource::Tree(c.clone(), vec!["a".into()])];
        let err = plan_copy(&image, &src, &opts("/etc/hosts/x/")).unwrap_err();
        assert!(
            err.to_string().contains("/etc/hosts is not a directory"),
            "{err}"
        );
    }

    #[test]
    fn chmod_exclude_parents_and_heredocs() {
        let (_d, c) = ctx(&[("src/a.txt", ""), ("src/b.log", ""), ("src/sub/c.txt", "")]);
        let image = FsIndex::new();
        let mut o = opts("/out/");
        o.chmod = Some(0o600);
        o.excludes = vec!["*.log".into()];
        let src = [CopySource::Tree(c.clone(), vec!["src".into()])];
        let plan = plan_copy(&image, &src, &o).unwrap();
        assert_eq!(
            keys(&plan),
            ["out", "out/a.txt", "out/sub", "out/sub/c.txt"]
        );
        assert_eq!(plan["out/a.txt"].mode, 0o600);

        let mut o = opts("/p/");
        o.parents = true;
        let src = [CopySource::Tree(c.clone(), vec!["src/sub/c.txt".into()])];
        assert_eq!(
            keys(&plan_copy(&image, &src, &o).unwrap()),
            ["p", "p/src", "p/src/sub", "p/src/sub/c.txt"]
        );

        let src = [CopySource::Inline("EOF".into(), b"hello\n".to_vec())];
        let plan = plan_copy(&image, &src, &opts("/etc/greeting")).unwrap();
        assert_eq!(
            plan["etc/greeting"].content,
            PlannedContent::Bytes(b"hello\n".to_vec())
        );
    }

    #[test]
    fn dockerignore_applies_inside_copied_directories() {
        let (d, _) = ctx(&[("app/keep.php", ""), ("app/secret.key", "")]);
        fs::write(d.path().join(".dockerignore"), "app/*.key\n").unwrap();
        let c = BuildContext::open(d.path(), None).unwrap();
        let src = [CopySource::Tree(c.clone(), vec![".".into()])];
        let plan = plan_copy(&FsIndex::new(), &src, &opts("/srv/")).unwrap();
        assert!(plan.contains_key("srv/app/keep.php"));
        assert!(!plan.contains_key("srv/app/secret.key"));
        assert!(
            !plan.keys().any(|k| k.ends_with(".dockerignore"))
                || plan.contains_key("srv/.dockerignore")
        );
    }
}
