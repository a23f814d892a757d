//! The build context: a directory, filtered by `.dockerignore`, from which COPY and ADD take files.
//!
//! Paths are always relative to the context root and `/`-separated. A source can never leave the
//! context: `..` is clamped at the root and symlinks on the way to a source are followed inside it
//! (see [`strata_oci::scoped`]), as BuildKit does. The context's tree digest, used in build keys, hashes
//! file contents through a [`StatCache`] so unchanged files are not read again.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::dockerignore::{DockerIgnore, PatternError, clean_path};
use strata_oci::scoped;

/// What can go wrong reading a build context.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ContextError {
    /// The context directory itself is missing or unreadable.
    #[error("build context {path}")]
    Root {
        /// The context directory.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// A `.dockerignore` pattern is invalid.
    #[error("{file}")]
    Ignore {
        /// The ignore file.
        file: PathBuf,
        /// The bad pattern.
        source: PatternError,
    },
    /// A COPY/ADD source matches nothing (or only excluded files).
    #[error("{source_path:?}: not found in the build context (or excluded by .dockerignore)")]
    NotFound {
        /// The source as written.
        source_path: String,
    },
    /// A symlink loop on the way to a source.
    #[error(transparent)]
    Loop(#[from] scoped::SymlinkLoop),
    /// A context file (Dockerfile, `.dockerignore`) could not be read safely: among others, it
    /// is a symlink pointing outside the context (the error names it; it is never read).
    #[error("build context file")]
    File(#[from] strata_oci::RootError),
    /// Reading a file or directory failed.
    #[error("{path}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> ContextError + '_ {
    move |source| ContextError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// One file, directory or link of the context.
#[derive(Debug, Clone)]
pub struct ContextEntry {
    /// Path relative to the context root, `/`-separated (`.` for the root), as named: for a
    /// source that is a symlink, the link's own path.
    pub rel: String,
    /// Where it is on disk (for a followed symlink, its target inside the context).
    pub path: PathBuf,
    /// Its metadata (not following a final symlink).
    pub meta: fs::Metadata,
}

/// The largest Dockerfile or `.dockerignore` read.
pub const MAX_CONTEXT_FILE: u64 = 16 << 20;

/// Read `file` (a Dockerfile or `.dockerignore`) as text. When it lies inside the context `root`
/// it is resolved there: symlinks are followed only while they stay inside, and a file that
/// leads outside is an error naming it, never read (its content could be a host secret echoed
/// by a parse error). A file given outside the context (`-f /elsewhere/Dockerfile`) is read as
/// given. `Ok(None)` when it does not exist.
pub fn read_context_file(root: &Path, file: &Path) -> Result<Option<String>, ContextError> {
    match read_context_bytes(root, file)? {
        None => Ok(None),
        Some(bytes) => String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| ContextError::Io {
                path: file.to_path_buf(),
                source: io::Error::new(io::ErrorKind::InvalidData, "not UTF-8 text"),
            }),
    }
}

/// Read `file` inside the context `root` as bytes (a Dockerfile may hold non-UTF-8 bytes in its
/// comments: `strata_dockerfile::parse_bytes` decides), as [`read_context_file`] does otherwise.
pub fn read_context_bytes(root: &Path, file: &Path) -> Result<Option<Vec<u8>>, ContextError> {
    Ok(strata_oci::rootdir::read_inside(
        root,
        file,
        MAX_CONTEXT_FILE,
    )?)
}

/// A build context directory and its exclusion rules.
#[derive(Debug, Clone)]
pub struct BuildContext {
    root: PathBuf,
    ignore: DockerIgnore,
}

impl BuildContext {
    /// Open `root`. The exclusions come from `<dockerfile>.dockerignore` beside the Dockerfile when it
    /// exists (BuildKit's per-Dockerfile ignore file), else from `<root>/.dockerignore`.
    pub fn open(root: &Path, dockerfile: Option<&Path>) -> Result<Self, ContextError> {
        let meta = fs::metadata(root).map_err(|source| ContextError::Root {
            path: root.to_path_buf(),
            source,
        })?;
        if !meta.is_dir() {
            return Err(ContextError::Root {
                path: root.to_path_buf(),
                source: io::Error::other("not a directory"),
            });
        }
        let specific = dockerfile.map(|d| {
            let mut name = d.as_os_str().to_owned();
            name.push(".dockerignore");
            PathBuf::from(name)
        });
        let candidates = specific
            .into_iter()
            .chain(std::iter::once(root.join(".dockerignore")));
        let mut ignore = DockerIgnore::default();
        for file in candidates {
            if let Some(text) = read_context_file(root, &file)? {
                ignore = DockerIgnore::parse(&text)
                    .map_err(|source| ContextError::Ignore { file, source })?;
                break;
            }
        }
        Ok(Self {
            root: root.to_path_buf(),
            ignore,
        })
    }

    /// A source tree without exclusions: a stage's or an image's root filesystem for `COPY --from`.
    pub fn without_ignore(root: &Path) -> Self {
        Self {
            root: root.to_path_buf(),
            ignore: DockerIgnore::default(),
        }
    }

    /// The context directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Whether `.dockerignore` excludes `rel`.
    pub fn is_excluded(&self, rel: &str) -> bool {
        self.ignore.is_excluded(rel)
    }

    /// Expand one COPY/ADD source into the context paths it names, sorted. Wildcards (`*`, `?`,
    /// `[...]`) match within one path component as Go's `filepath.Match` does. The final component
    /// of a plain path is followed if it is a symlink. Excluded paths are never returned.
    pub fn expand(&self, source: &str) -> Result<Vec<ContextEntry>, ContextError> {
        let cleaned = clean_path(&format!("/{source}"));
        let has_wildcard = cleaned.contains(['*', '?', '[']);
        let mut found = Vec::new();
        if has_wildcard {
            let matcher = wildcard_regex(cleaned.trim_start_matches('/'));
            for entry in self.walk_all()? {
                if matcher.as_ref().is_some_and(|re| re.is_match(&entry.rel))
                    && let Some(entry) = self.named(&format!("/{}", entry.rel))?
                {
                    found.push(entry);
                }
            }
        } else if let Some(entry) = self.named(&cleaned)? {
            found.push(entry);
        }
        if found.is_empty() {
            return Err(ContextError::NotFound {
                source_path: source.to_string(),
            });
        }
        Ok(found)
    }

    /// The entry a source path names: parent symlinks and a final symlink followed inside the
    /// context (BuildKit follows a named source), but keeping the name as written, so
    /// `COPY link /dir/` gives `/dir/link` with the target's content. `None` when the path or its
    /// target is missing or excluded.
    fn named(&self, cleaned: &str) -> Result<Option<ContextEntry>, ContextError> {
        let links = scoped::DiskLinks::new(&self.root);
        let rel_of = |inner: String| match inner.trim_start_matches('/') {
            "" => ".".to_string(),
            other => other.to_string(),
        };
        let rel = rel_of(scoped::resolve(&links, cleaned, false)?);
        let target = rel_of(scoped::resolve(&links, cleaned, true)?);
        if [&rel, &target]
            .iter()
            .any(|r| r.as_str() != "." && self.is_excluded(r))
        {
            return Ok(None);
        }
        let path = self
            .root
            .join(if target == "." { "" } else { target.as_str() });
        Ok(fs::symlink_metadata(&path)
            .ok()
            .map(|meta| ContextEntry { rel, path, meta }))
    }

    /// Every entry under directory `rel` (not `rel` itself), sorted by path, skipping excluded ones.
    /// Symlinks are listed, not followed.
    pub fn walk(&self, rel: &str) -> Result<Vec<ContextEntry>, ContextError> {
        let mut out = Vec::new();
        let start = if rel == "." || rel.is_empty() {
            self.root.clone()
        } else {
            self.root.join(rel)
        };
        let prefix = if rel == "." || rel.is_empty() {
            String::new()
        } else {
            format!("{rel}/")
        };
        self.walk_into(&start, &prefix, &mut out)?;
        Ok(out)
    }

    /// Every entry of the context, sorted, excluded ones skipped.
    pub fn walk_all(&self) -> Result<Vec<ContextEntry>, ContextError> {
        self.walk(".")
    }

    fn walk_into(
        &self,
        dir: &Path,
        prefix: &str,
        out: &mut Vec<ContextEntry>,
    ) -> Result<(), ContextError> {
        let mut names: Vec<_> = fs::read_dir(dir)
            .map_err(io_err(dir))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()
            .map_err(io_err(dir))?;
        names.sort();
        for name in names {
            let rel = format!("{prefix}{}", name.to_string_lossy());
            let path = dir.join(&name);
            let meta = fs::symlink_metadata(&path).map_err(io_err(&path))?;
            let excluded = self.is_excluded(&rel);
            if meta.is_dir() {
                if excluded && !self.ignore.may_reinclude_under(&rel) {
                    continue;
                }
                if !excluded {
                    out.push(ContextEntry {
                        rel: rel.clone(),
                        path: path.clone(),
                        meta,
                    });
                }
                self.walk_into(&path, &format!("{rel}/"), out)?;
            } else if !excluded {
                out.push(ContextEntry { rel, path, meta });
            }
        }
        Ok(())
    }

    /// A digest of the whole context after `.dockerignore`: every entry's path, type, mode, link
    /// target and content hash. Two contexts with the same digest give the same COPY results.
    /// Content hashes come from `cache` when a file's stat is unchanged.
    pub fn tree_digest(&self, cache: &mut StatCache) -> Result<String, ContextError> {
        let mut hasher = Sha256::new();
        for entry in self.walk_all()? {
            hasher.update(entry_line(&entry, cache)?.as_bytes());
        }
        Ok(format!("sha256:{}", hex::encode(hasher.finalize())))
    }
}

/// One line of the tree digest's input for an entry.
fn entry_line(entry: &ContextEntry, cache: &mut StatCache) -> Result<String, ContextError> {
    let meta = &entry.meta;
    let mode = meta.permissions().mode();
    let kind_and_content = if meta.file_type().is_symlink() {
        let target = fs::read_link(&entry.path).map_err(io_err(&entry.path))?;
        format!("l {}", target.to_string_lossy())
    } else if meta.is_dir() {
        "d".to_string()
    } else if meta.is_file() {
        format!("f {}", cache.file_hash(&entry.path, meta)?)
    } else {
        format!("o {}", meta.rdev())
    };
    Ok(format!(
        "{}\0{:o}\0{}\0{}\0{}\n",
        entry.rel,
        mode,
        meta.uid(),
        meta.gid(),
        kind_and_content
    ))
}

/// Regex for a COPY source with wildcards: each component matched with `filepath.Match` rules.
fn wildcard_regex(pattern: &str) -> Option<regex::Regex> {
    let mut re = String::from("^");
    let mut chars = pattern.chars().peekable();
    let mut in_class = false;
    while let Some(c) = chars.next() {
        match c {
            '*' if !in_class => re.push_str("[^/]*"),
            '?' if !in_class => re.push_str("[^/]"),
            '[' if !in_class => {
                in_class = true;
                re.push('[');
                if matches!(chars.peek(), Some('^') | Some('!')) {
                    chars.next();
                    re.push('^');
                }
            }
            ']' if in_class => {
                in_class = false;
                re.push(']');
            }
            '\\' => {
                if let Some(next) = chars.next() {
                    re.push_str(&regex::escape(&next.to_string()));
                }
            }
            c if in_class => re.push(c),
            c => re.push_str(&regex::escape(&c.to_string())),
        }
    }
    re.push('$');
    regex::Regex::new(&re).ok()
}

/// File content hashes keyed by what `stat` says, as git's index does: a file whose size, mtime,
/// inode and mode are unchanged is not read again.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct StatCache {
    entries: BTreeMap<PathBuf, StatEntry>,
    #[serde(skip)]
    dirty: bool,
    /// Directories whose files are hashed but never remembered (see [`StatCache::skip_under`]).
    #[serde(skip)]
    volatile: Vec<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct StatEntry {
    size: u64,
    mtime_ns: i128,
    ino: u64,
    mode: u32,
    sha256: String,
}

impl StatCache {
    /// Load a cache file; a missing or unreadable cache is an empty one (it is only an optimisation).
    pub fn load(path: &Path) -> Self {
        fs::read(path)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default()
    }

    /// Write the cache back atomically (temp file, fsync, rename) if anything changed. Entries of
    /// files that no longer exist are dropped first: files hashed in a build's temporary
    /// directories (`COPY --from` root filesystems, extracted archives, downloads) would otherwise
    /// pile up build after build.
    pub fn save(&mut self, path: &Path) -> io::Result<()> {
        if !self.dirty {
            return Ok(());
        }
        self.entries
            .retain(|file, _| fs::symlink_metadata(file).is_ok());
        let dir = path.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(dir)?;
        let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
        // Buffered: unbuffered, serde wrote each token with its own system call.
        let mut out = io::BufWriter::new(&mut tmp);
        serde_json::to_writer(&mut out, self).map_err(io::Error::other)?;
        io::Write::flush(&mut out)?;
        drop(out);
        tmp.as_file().sync_all()?;
        tmp.persist(path).map_err(|e| e.error)?;
        Ok(())
    }

    /// Hash files under `dir` without remembering them: a build's temporary files (`COPY --from`
    /// root filesystems, extracted archives, downloads) are deleted after the build, and recording
    /// them would rewrite the whole cache file on every such build.
    pub fn skip_under(&mut self, dir: &Path) {
        if !self.volatile.iter().any(|d| d == dir) {
            self.volatile.push(dir.to_path_buf());
        }
    }

    /// Number of cached files.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The sha256 (hex) of a regular file's content, from the cache when its stat is unchanged.
    pub fn file_hash(&mut self, path: &Path, meta: &fs::Metadata) -> Result<String, ContextError> {
        let mtime_ns = i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec());
        if let Some(hit) = self.entries.get(path)
            && hit.size == meta.len()
            && hit.mtime_ns == mtime_ns
            && hit.ino == meta.ino()
            && hit.mode == meta.mode()
        {
            return Ok(hit.sha256.clone());
        }
        let sha256 = hash_file(path)?;
        if self.volatile.iter().any(|dir| path.starts_with(dir)) {
            return Ok(sha256);
        }
        self.entries.insert(
            path.to_path_buf(),
            StatEntry {
                size: meta.len(),
                mtime_ns,
                ino: meta.ino(),
                mode: meta.mode(),
                sha256: sha256.clone(),
            },
        );
        self.dirty = true;
        Ok(sha256)
    }
}

/// sha256 (hex) of a file's content.
pub fn hash_file(path: &Path) -> Result<String, ContextError> {
    let mut file = fs::File::open(path).map_err(io_err(path))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = file.read(&mut buf).map_err(io_err(path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context(files: &[(&str, &str)], ignore: &str) -> (tempfile::TempDir, BuildContext) {
        let dir = tempfile::tempdir().unwrap();
        for (path, content) in files {
            let p = dir.path().join(path);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, content).unwrap();
        }
        if !ignore.is_empty() {
            fs::write(dir.path().join(".dockerignore"), ignore).unwrap();
        }
        let ctx = BuildContext::open(dir.path(), None).unwrap();
        (dir, ctx)
    }

    fn rels(entries: &[ContextEntry]) -> Vec<&str> {
        entries.iter().map(|e| e.rel.as_str()).collect()
    }

    #[test]
    fn walk_is_sorted_and_respects_dockerignore() {
        let (_d, ctx) = context(
            &[
                ("b.txt", "b"),
                ("a/x.log", "x"),
                ("a/keep.txt", "k"),
                ("secret/k", "s"),
            ],
            "*.log\na/*.log\nsecret\n",
        );
        assert_eq!(
            rels(&ctx.walk_all().unwrap()),
            [".dockerignore", "a", "a/keep.txt", "b.txt"]
        );
    }

    #[test]
    fn expand_wildcards_within_one_component() {
        let (_d, ctx) = context(
            &[("a.php", ""), ("b.php", ""), ("sub/c.php", "")],
            "b.php\n",
        );
        assert_eq!(rels(&ctx.expand("*.php").unwrap()), ["a.php"]);
        assert_eq!(rels(&ctx.expand("sub/*.php").unwrap()), ["sub/c.php"]);
        assert!(matches!(
            ctx.expand("b.php"),
            Err(ContextError::NotFound { .. })
        ));
        assert!(ctx.expand("nothing*").is_err());
    }

    #[test]
    fn sources_cannot_leave_the_context() {
        let (d, ctx) = context(&[("inside", "i")], "");
        std::os::unix::fs::symlink("/etc", d.path().join("etc-link")).unwrap();
        // `..` clamps at the root: ../inside is the context's own file.
        assert_eq!(rels(&ctx.expand("../../inside").unwrap()), ["inside"]);
        // An absolute symlink is resolved inside the context, where there is no etc/passwd.
        assert!(ctx.expand("etc-link/passwd").is_err());
    }

    #[test]
    fn a_named_symlink_keeps_its_name_and_gives_its_target() {
        let (d, ctx) = context(
            &[("data.txt", "d"), ("dir/x", "x"), ("hidden", "h")],
            "hidden\n",
        );
        std::os::unix::fs::symlink("data.txt", d.path().join("alias.txt")).unwrap();
        std::os::unix::fs::symlink("/dir", d.path().join("dir-link")).unwrap();
        std::os::unix::fs::symlink("hidden", d.path().join("to-hidden")).unwrap();
        let ctx = BuildContext::open(d.path(), None).unwrap_or(ctx);
        let found = ctx.expand("alias.txt").unwrap();
        assert_eq!(rels(&found), ["alias.txt"]);
        assert!(found[0].meta.is_file());
        assert_eq!(found[0].path, d.path().join("data.txt"));
        let found = ctx.expand("dir-link").unwrap();
        assert_eq!(rels(&found), ["dir-link"]);
        assert!(found[0].meta.is_dir());
        // Wildcard matches are followed too.
        let found = ctx.expand("alias.*").unwrap();
        assert!(found[0].meta.is_file());
        // A link to an excluded file does not expose it.
        assert!(ctx.expand("to-hidden").is_err());
    }

    #[test]
    fn tree_digest_changes_with_content_and_uses_the_stat_cache() {
        let (d, ctx) = context(&[("a", "1"), ("b/c", "2")], "");
        let mut cache = StatCache::default();
        let first = ctx.tree_digest(&mut cache).unwrap();
        assert_eq!(cache.len(), 2);
        assert_eq!(first, ctx.tree_digest(&mut cache).unwrap());
        fs::write(d.path().join("b/c"), "changed").unwrap();
        let second = ctx.tree_digest(&mut cache).unwrap();
        assert_ne!(first, second);
        // An excluded file does not count.
        fs::write(d.path().join(".dockerignore"), "ignored\n").unwrap();
        let ctx = BuildContext::open(d.path(), None).unwrap();
        let before = ctx.tree_digest(&mut cache).unwrap();
        fs::write(d.path().join("ignored"), "x").unwrap();
        assert_eq!(before, ctx.tree_digest(&mut cache).unwrap());
    }

    #[test]
    fn stat_cache_round_trips() {
        let (d, ctx) = context(&[("a", "1")], "");
        let mut cache = StatCache::default();
        ctx.tree_digest(&mut cache).unwrap();
        let file = d.path().join("cache.json");
        cache.save(&file).unwrap();
        assert_eq!(StatCache::load(&file).len(), 1);
        // Files that are gone are dropped when the cache is next written.
        let gone = d.path().join("gone");
        fs::write(&gone, "g").unwrap();
        let mut cache = StatCache::load(&file);
        cache
            .file_hash(&gone, &fs::metadata(&gone).unwrap())
            .unwrap();
        fs::remove_file(&gone).unwrap();
        fs::write(d.path().join("b"), "2").unwrap();
        let b = d.path().join("b");
        cache.file_hash(&b, &fs::metadata(&b).unwrap()).unwrap();
        cache.save(&file).unwrap();
        assert_eq!(StatCache::load(&file).len(), 2);
        // Files under a volatile directory are hashed, never recorded.
        let tmp = d.path().join("tmp");
        fs::create_dir(&tmp).unwrap();
        let t = tmp.join("t");
        fs::write(&t, "t").unwrap();
        let mut cache = StatCache::load(&file);
        cache.skip_under(&tmp);
        let hash = cache.file_hash(&t, &fs::metadata(&t).unwrap()).unwrap();
        assert_eq!(hash, hash_file(&t).unwrap());
        assert_eq!(cache.len(), 2);
        assert!(!cache.dirty);
    }
}
