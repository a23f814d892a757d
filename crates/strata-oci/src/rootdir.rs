//! One symlink-safe path resolver: a directory handle under which every path is resolved as if
//! the directory were `/`.
//!
//! The main type is [`Root`], an open directory. Paths given to it are resolved *relative to its
//! file descriptor*, never by joining strings onto its host path, so a symlink planted by an
//! archive, an image or a build context cannot lead a write out of it. The key decision: the
//! kernel does the resolving where it can (`openat2` with `RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS`,
//! probed once per process), and a component-by-component walk with `openat(O_NOFOLLOW |
//! O_DIRECTORY)` does it otherwise, with the same semantics as a chroot: an absolute symlink
//! restarts at the root, `..` stops at the root, and at most [`MAX_SYMLINKS`] links are followed.
//!
//! Resolution gives a [`Dir`], an open directory inside the root. Every write is an `*at` call
//! relative to a `Dir` on a single file name, and that final name is never followed
//! (`O_NOFOLLOW`, `AT_SYMLINK_NOFOLLOW`): whatever a caller creates, removes, chowns or chmods is
//! the entry itself, never what a symlink there points to. Callers re-resolve at the moment of
//! each write, so a parent replaced by an earlier write cannot redirect a later one.
//!
//! Three ways to treat symlinks on the way ([`Follow`]): inside the root like a chroot (archives,
//! image trees), only while they stay inside (build context files, where leaving is an error that
//! names the file), or never (re-opening a directory that must be the one made earlier).
//!
//! Setting `STRATA_RESOLVER=walk` in the environment makes [`Resolver::Auto`] use the walk even
//! where `openat2` exists; tests use it to run both code paths.

use std::ffi::{CString, OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use rustix::fs::{
    self as rfs, AtFlags, FileType, Mode, OFlags, ResolveFlags, Timespec, Timestamps,
};
use rustix::io::Errno;

/// Symlinks followed while resolving one path before giving up (Linux's limit).
pub const MAX_SYMLINKS: usize = 40;
/// The longest path (in bytes) a [`Root`] resolves, as Linux's `PATH_MAX`.
pub const MAX_PATH: usize = 4096;
/// How deep [`Dir::remove_all`] descends before giving up.
const MAX_REMOVE_DEPTH: usize = 4096;

/// How a [`Root`] resolves paths.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Resolver {
    /// `openat2` where the kernel has it (and `STRATA_RESOLVER` is not `walk`), else the walk.
    #[default]
    Auto,
    /// Always the component-by-component `O_NOFOLLOW` walk.
    Walk,
}

/// How symlinks met while resolving a path are treated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Follow {
    /// Followed inside the root, as in a chroot: absolute targets restart at the root and `..`
    /// stops at it (`RESOLVE_IN_ROOT`).
    InRoot,
    /// Followed while they stay inside the root; an absolute target or a `..` above the root is
    /// [`RootError::Outside`] (`RESOLVE_BENEATH`).
    Beneath,
    /// Not followed: any symlink on the way is [`RootError::Symlink`] (`RESOLVE_NO_SYMLINKS`).
    Never,
}

/// What can go wrong resolving or writing under a [`Root`]. Paths are relative to the root.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RootError {
    /// A system call failed.
    #[error("{}", path.display())]
    Io {
        /// The host path concerned (the root joined with the relative path).
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// Too many symlinks (a loop, or a hostile chain).
    #[error("{path}: too many levels of symbolic links")]
    Loop {
        /// The path being resolved.
        path: String,
    },
    /// A component on the way is neither a directory nor a symlink.
    #[error("{path}: a parent is not a directory")]
    NotADirectory {
        /// The path being resolved.
        path: String,
    },
    /// The path leads outside the root ([`Follow::Beneath`]).
    #[error("{path}: points outside {}; not read", root.display())]
    Outside {
        /// The path being resolved.
        path: String,
        /// The root.
        root: PathBuf,
    },
    /// A symlink was met where none may be ([`Follow::Never`]).
    #[error("{path}: a component is a symbolic link")]
    Symlink {
        /// The path being resolved.
        path: String,
    },
    /// A component does not exist.
    #[error("{path}: does not exist")]
    NotFound {
        /// The path being resolved.
        path: String,
    },
    /// The path is longer than [`MAX_PATH`] bytes.
    #[error("path of {len} bytes is longer than {MAX_PATH}")]
    TooLong {
        /// Its length.
        len: usize,
    },
    /// An entry name that is not one plain file name (empty, `.`, `..`, or with a `/` or NUL).
    #[error("{name:?} is not a file name")]
    BadName {
        /// The name.
        name: String,
    },
}

impl RootError {
    /// True for a missing component.
    pub fn is_not_found(&self) -> bool {
        match self {
            RootError::NotFound { .. } => true,
            RootError::Io { source, .. } => source.kind() == io::ErrorKind::NotFound,
            _ => false,
        }
    }
}

/// Result of this module.
pub type Result<T, E = RootError> = std::result::Result<T, E>;

/// An open directory under which paths are resolved as if it were `/` (see the module docs).
#[derive(Debug)]
pub struct Root {
    fd: OwnedFd,
    path: PathBuf,
    openat2: bool,
}

/// An open directory inside a [`Root`]; its methods act on one file name inside it and never
/// follow that name.
#[derive(Debug)]
pub struct Dir {
    fd: OwnedFd,
    /// The host path it was reached by, for messages only (never used to access it).
    shown: PathBuf,
}

fn lossy(p: &[u8]) -> String {
    String::from_utf8_lossy(p).into_owned()
}

/// The components of `path` without empty ones and `.`; `..` kept.
fn components(path: &[u8]) -> Vec<OsString> {
    path.split(|&b| b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
        .map(|c| OsStr::from_bytes(c).to_os_string())
        .collect()
}

fn check_name(name: &OsStr) -> Result<()> {
    let b = name.as_bytes();
    if b.is_empty() || b == b"." || b == b".." || b.contains(&b'/') || b.contains(&0) {
        return Err(RootError::BadName {
            name: name.to_string_lossy().into_owned(),
        });
    }
    Ok(())
}

fn dir_flags() -> OFlags {
    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC
}

fn forced_walk() -> bool {
    static FORCED: OnceLock<bool> = OnceLock::new();
    *FORCED.get_or_init(|| std::env::var("STRATA_RESOLVER").is_ok_and(|v| v == "walk"))
}

/// Whether this kernel (and seccomp profile) allows `openat2` with `RESOLVE_IN_ROOT`; probed once.
fn openat2_works(fd: BorrowedFd<'_>) -> bool {
    static PROBE: OnceLock<bool> = OnceLock::new();
    *PROBE.get_or_init(|| {
        rfs::openat2(
            fd,
            ".",
            dir_flags(),
            Mode::empty(),
            ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
        )
        .is_ok()
    })
}

impl Root {
    /// Open directory `path` as a root, resolving with [`Resolver::Auto`].
    pub fn open(path: &Path) -> Result<Root> {
        Root::open_with(path, Resolver::Auto)
    }

    /// Open directory `path` as a root with the given resolver.
    pub fn open_with(path: &Path, resolver: Resolver) -> Result<Root> {
        let fd = rfs::open(path, dir_flags(), Mode::empty()).map_err(|e| RootError::Io {
            path: path.to_path_buf(),
            source: e.into(),
        })?;
        let openat2 = resolver == Resolver::Auto && !forced_walk() && openat2_works(fd.as_fd());
        Ok(Root {
            fd,
            path: path.to_path_buf(),
            openat2,
        })
    }

    /// The host path the root was opened by (for messages).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// True when paths are resolved by `openat2`, false when by the walk.
    pub fn uses_openat2(&self) -> bool {
        self.openat2
    }

    fn io(&self, rel: &[u8]) -> impl FnOnce(Errno) -> RootError + '_ {
        let path = self.path.join(OsStr::from_bytes(rel));
        move |e| RootError::Io {
            path,
            source: e.into(),
        }
    }

    fn dir(&self, fd: OwnedFd, rel: &[u8]) -> Dir {
        Dir {
            fd,
            shown: self.path.join(OsStr::from_bytes(trim_slashes(rel))),
        }
    }

    /// Open directory `rel` (relative to the root; a leading `/` means the root), resolving
    /// symlinks as `follow` says. With `create`, missing directories are made (mode 0755).
    pub fn open_dir(&self, rel: impl AsRef<Path>, follow: Follow, create: bool) -> Result<Dir> {
        let rel = rel.as_ref().as_os_str().as_bytes();
        if rel.len() > MAX_PATH {
            return Err(RootError::TooLong { len: rel.len() });
        }
        if self.openat2 {
            let resolve = match follow {
                Follow::InRoot => ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
                Follow::Beneath => ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS,
                Follow::Never => ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS,
            };
            let trimmed = trim_slashes(rel);
            let path: &[u8] = if trimmed.is_empty() { b"." } else { trimmed };
            for _attempt in 0..16 {
                match rfs::openat2(
                    &self.fd,
                    OsStr::from_bytes(path),
                    dir_flags(),
                    Mode::empty(),
                    resolve,
                ) {
                    Ok(fd) => return Ok(self.dir(fd, rel)),
                    // A rename elsewhere raced the lookup: the kernel asks to retry.
                    Err(Errno::AGAIN) | Err(Errno::INTR) => continue,
                    Err(Errno::NOENT) if create => break,
                    Err(e) => return Err(self.classify(rel, e, follow)),
                }
            }
        }
        let (fd, _) = self.walk(rel, follow, create, false)?;
        Ok(self.dir(fd, rel))
    }

    /// Open the parent directory of `rel` (see [`Root::open_dir`]) and return it with the final
    /// name, which is not looked at. `rel` must end in a plain name.
    pub fn open_parent(
        &self,
        rel: impl AsRef<Path>,
        follow: Follow,
        create: bool,
    ) -> Result<(Dir, OsString)> {
        let rel = rel.as_ref().as_os_str().as_bytes();
        let trimmed = trim_slashes(rel);
        let (parent, name) = match trimmed.iter().rposition(|&b| b == b'/') {
            Some(i) => (&trimmed[..i], &trimmed[i + 1..]),
            None => (&b""[..], trimmed),
        };
        let name = OsStr::from_bytes(name);
        check_name(name)?;
        let dir = self.open_dir(OsStr::from_bytes(parent), follow, create)?;
        Ok((dir, name.to_os_string()))
    }

    /// Read regular file `rel`, following symlinks as `follow` says (the final one too), at
    /// most `limit` bytes. Never opens a FIFO or device for reading.
    pub fn read_file(&self, rel: impl AsRef<Path>, follow: Follow, limit: u64) -> Result<Vec<u8>> {
        let rel = rel.as_ref().as_os_str().as_bytes();
        if rel.len() > MAX_PATH {
            return Err(RootError::TooLong { len: rel.len() });
        }
        let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY;
        let fd = if self.openat2 {
            let resolve = match follow {
                Follow::InRoot => ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
                Follow::Beneath => ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS,
                Follow::Never => ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS,
            };
            let mut result = Err(Errno::AGAIN);
            for _attempt in 0..16 {
                result = rfs::openat2(
                    &self.fd,
                    OsStr::from_bytes(trim_slashes(rel)),
                    flags,
                    Mode::empty(),
                    resolve,
                );
                if !matches!(result, Err(Errno::AGAIN) | Err(Errno::INTR)) {
                    break;
                }
            }
            result.map_err(|e| self.classify(rel, e, follow))?
        } else {
            let (parent, name) = self.walk(rel, follow, false, true)?;
            let name = name.ok_or_else(|| RootError::BadName { name: lossy(rel) })?;
            rfs::openat(&parent, &name, flags | OFlags::NOFOLLOW, Mode::empty())
                .map_err(|e| self.classify(rel, e, follow))?
        };
        let stat = rfs::fstat(&fd).map_err(self.io(rel))?;
        if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
            return Err(RootError::Io {
                path: self.path.join(OsStr::from_bytes(rel)),
                source: io::Error::other("not a regular file"),
            });
        }
        let mut buf = Vec::new();
        io::Read::read_to_end(&mut io::Read::take(File::from(fd), limit + 1), &mut buf).map_err(
            |source| RootError::Io {
                path: self.path.join(OsStr::from_bytes(rel)),
                source,
            },
        )?;
        if buf.len() as u64 > limit {
            return Err(RootError::Io {
                path: self.path.join(OsStr::from_bytes(rel)),
                source: io::Error::other(format!("larger than {limit} bytes")),
            });
        }
        Ok(buf)
    }

    /// Turn an errno from a resolution into the error kind it means.
    fn classify(&self, rel: &[u8], e: Errno, follow: Follow) -> RootError {
        let path = lossy(rel);
        match e {
            Errno::LOOP if follow == Follow::Never => RootError::Symlink { path },
            Errno::LOOP => RootError::Loop { path },
            Errno::NOTDIR => RootError::NotADirectory { path },
            Errno::XDEV => RootError::Outside {
                path,
                root: self.path.clone(),
            },
            Errno::NOENT => RootError::NotFound { path },
            e => self.io(rel)(e),
        }
    }

    /// A fresh descriptor of the root directory itself.
    fn reopen_root(&self) -> Result<OwnedFd> {
        rfs::openat(&self.fd, ".", dir_flags(), Mode::empty()).map_err(self.io(b""))
    }

    /// Open the symlink-free directory path `done` (each component a real directory).
    fn reopen(&self, done: &[OsString], rel: &[u8]) -> Result<OwnedFd> {
        let mut cur = self.reopen_root()?;
        for part in done {
            cur = rfs::openat(&cur, part, dir_flags() | OFlags::NOFOLLOW, Mode::empty())
                .map_err(|e| self.classify(rel, e, Follow::Never))?;
        }
        Ok(cur)
    }

    /// The walk: resolve `rel` one component at a time from the root with `openat(O_NOFOLLOW)`,
    /// splicing symlink targets into the components still to walk. With `leaf`, the final
    /// component is not opened as a directory: the walk stops at its parent and returns the
    /// name (following a final symlink first, as `follow` allows).
    fn walk(
        &self,
        rel: &[u8],
        follow: Follow,
        create: bool,
        leaf: bool,
    ) -> Result<(OwnedFd, Option<OsString>)> {
        let mut todo: Vec<OsString> = components(rel).into_iter().rev().collect();
        let mut done: Vec<OsString> = Vec::new();
        let mut cur = self.reopen_root()?;
        let mut links = 0usize;
        while let Some(part) = todo.pop() {
            if part == ".." {
                if done.pop().is_none() {
                    if follow != Follow::InRoot {
                        return Err(self.classify(rel, Errno::XDEV, follow));
                    }
                    continue;
                }
                cur = self.reopen(&done, rel)?;
                continue;
            }
            let last = todo.is_empty();
            if leaf && last {
                match rfs::statat(&cur, &part, AtFlags::SYMLINK_NOFOLLOW) {
                    Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Symlink => {}
                    _ => return Ok((cur, Some(part))),
                }
            }
            match rfs::openat(&cur, &part, dir_flags() | OFlags::NOFOLLOW, Mode::empty()) {
                Ok(fd) => {
                    cur = fd;
                    done.push(part);
                }
                Err(Errno::LOOP) | Err(Errno::NOTDIR) => {
                    let st = rfs::statat(&cur, &part, AtFlags::SYMLINK_NOFOLLOW)
                        .map_err(self.io(rel))?;
                    if FileType::from_raw_mode(st.st_mode) != FileType::Symlink {
                        return Err(RootError::NotADirectory { path: lossy(rel) });
                    }
                    if follow == Follow::Never {
                        return Err(RootError::Symlink { path: lossy(rel) });
                    }
                    links += 1;
                    if links > MAX_SYMLINKS {
                        return Err(RootError::Loop { path: lossy(rel) });
                    }
                    let target = rfs::readlinkat(&cur, &part, Vec::new()).map_err(self.io(rel))?;
                    let target = target.as_bytes();
                    if target.starts_with(b"/") {
                        if follow != Follow::InRoot {
                            return Err(self.classify(rel, Errno::XDEV, follow));
                        }
                        done.clear();
                        cur = self.reopen_root()?;
                    }
                    let spliced = components(target);
                    if spliced.is_empty() && leaf && last {
                        // A link to "/" (or "."): the final component is a directory.
                        return Err(RootError::BadName { name: lossy(rel) });
                    }
                    todo.extend(spliced.into_iter().rev());
                }
                Err(Errno::NOENT) if create && !(leaf && last) => {
                    match rfs::mkdirat(&cur, &part, Mode::from_raw_mode(0o755)) {
                        Ok(()) => {
                            let fd = rfs::openat(
                                &cur,
                                &part,
                                dir_flags() | OFlags::NOFOLLOW,
                                Mode::empty(),
                            )
                            .map_err(self.io(rel))?;
                            // Not the umask's choice: 0755, as the archive did not say.
                            rfs::fchmod(&fd, Mode::from_raw_mode(0o755)).map_err(self.io(rel))?;
                            cur = fd;
                            done.push(part);
                        }
                        Err(e) => return Err(self.io(rel)(e)),
                    }
                }
                Err(e) => return Err(self.classify(rel, e, follow)),
            }
        }
        // The whole path resolved to a directory (or the root): no final name.
        Ok((cur, None))
    }
}

fn trim_slashes(p: &[u8]) -> &[u8] {
    let start = p.iter().position(|&b| b != b'/').unwrap_or(p.len());
    let mut end = p.len();
    while end > start && p[end - 1] == b'/' {
        end -= 1;
    }
    &p[start..end]
}

fn cstr(name: &OsStr) -> Result<CString> {
    check_name(name)?;
    CString::new(name.as_bytes()).map_err(|_| RootError::BadName {
        name: name.to_string_lossy().into_owned(),
    })
}

fn times(secs: u64) -> Timestamps {
    let t = Timespec {
        tv_sec: secs.min(i64::MAX as u64) as i64,
        tv_nsec: 0,
    };
    Timestamps {
        last_access: t,
        last_modification: t,
    }
}

/// What an entry is, as [`Dir::kind`] sees it (not following symlinks).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A directory.
    Dir,
    /// A symlink.
    Symlink,
    /// Anything else (regular file, device, fifo, socket).
    Other,
}

impl Dir {
    /// The host path this directory was reached by (for messages only).
    pub fn shown(&self) -> &Path {
        &self.shown
    }

    fn io(&self, name: &OsStr) -> impl FnOnce(Errno) -> RootError + '_ {
        let path = self.shown.join(name);
        move |e| RootError::Io {
            path,
            source: e.into(),
        }
    }

    /// The `(device, inode)` of this directory.
    pub fn identity(&self) -> Result<(u64, u64)> {
        let st = rfs::fstat(&self.fd).map_err(self.io(OsStr::new("")))?;
        Ok((st.st_dev, st.st_ino))
    }

    /// What `name` is, `None` when absent.
    pub fn kind(&self, name: &OsStr) -> Result<Option<Kind>> {
        let c = cstr(name)?;
        match rfs::statat(&self.fd, c.as_c_str(), AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => Ok(Some(match FileType::from_raw_mode(st.st_mode) {
                FileType::Directory => Kind::Dir,
                FileType::Symlink => Kind::Symlink,
                _ => Kind::Other,
            })),
            Err(Errno::NOENT) => Ok(None),
            Err(e) => Err(self.io(name)(e)),
        }
    }

    /// Open subdirectory `name`, which must be a directory (a symlink is not followed).
    pub fn open_subdir(&self, name: &OsStr) -> Result<Dir> {
        let c = cstr(name)?;
        let fd = rfs::openat(
            &self.fd,
            c.as_c_str(),
            dir_flags() | OFlags::NOFOLLOW,
            Mode::empty(),
        )
        .map_err(self.io(name))?;
        Ok(Dir {
            fd,
            shown: self.shown.join(name),
        })
    }

    /// Create regular file `name` (it must not exist), mode 0600 until set, open for writing.
    pub fn create_file(&self, name: &OsStr) -> Result<File> {
        let c = cstr(name)?;
        let fd = rfs::openat(
            &self.fd,
            c.as_c_str(),
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .map_err(self.io(name))?;
        Ok(File::from(fd))
    }

    /// Create directory `name` (mode 0755 until set).
    pub fn mkdir(&self, name: &OsStr) -> Result<()> {
        let c = cstr(name)?;
        rfs::mkdirat(&self.fd, c.as_c_str(), Mode::from_raw_mode(0o755)).map_err(self.io(name))
    }

    /// Create symlink `name` pointing at `target` (stored verbatim).
    pub fn symlink(&self, name: &OsStr, target: &OsStr) -> Result<()> {
        let c = cstr(name)?;
        let t = CString::new(target.as_bytes()).map_err(|_| RootError::BadName {
            name: target.to_string_lossy().into_owned(),
        })?;
        rfs::symlinkat(t.as_c_str(), &self.fd, c.as_c_str()).map_err(self.io(name))
    }

    /// Hard-link `src_name` in `src` (not followed: a symlink is linked itself) as `name` here.
    pub fn hardlink(&self, name: &OsStr, src: &Dir, src_name: &OsStr) -> Result<()> {
        let c = cstr(name)?;
        let s = cstr(src_name)?;
        rfs::linkat(
            &src.fd,
            s.as_c_str(),
            &self.fd,
            c.as_c_str(),
            AtFlags::empty(),
        )
        .map_err(self.io(name))
    }

    /// Create device node or FIFO `name` (`kind` is `CharacterDevice`, `BlockDevice` or
    /// `Fifo`), mode 0600 until set. `Ok(false)` when refused for lack of privilege.
    pub fn mknod(&self, name: &OsStr, kind: FileType, major: u32, minor: u32) -> Result<bool> {
        let c = cstr(name)?;
        match rfs::mknodat(
            &self.fd,
            c.as_c_str(),
            kind,
            Mode::from_raw_mode(0o600),
            rfs::makedev(major, minor),
        ) {
            Ok(()) => Ok(true),
            Err(Errno::PERM) | Err(Errno::ACCESS) => Ok(false),
            Err(e) => Err(self.io(name)(e)),
        }
    }

    /// Remove `name` whatever it is (a directory with its whole tree), never following a
    /// symlink; absent is fine.
    pub fn remove_all(&self, name: &OsStr) -> Result<()> {
        self.remove_depth(name, 0)
    }

    fn remove_depth(&self, name: &OsStr, depth: usize) -> Result<()> {
        match self.kind(name)? {
            None => Ok(()),
            Some(Kind::Dir) => {
                if depth > MAX_REMOVE_DEPTH {
                    return Err(self.io(name)(Errno::NAMETOOLONG));
                }
                let sub = self.open_subdir(name)?;
                for child in sub.list()? {
                    sub.remove_depth(&child, depth + 1)?;
                }
                let c = cstr(name)?;
                rfs::unlinkat(&self.fd, c.as_c_str(), AtFlags::REMOVEDIR).map_err(self.io(name))
            }
            Some(_) => {
                let c = cstr(name)?;
                match rfs::unlinkat(&self.fd, c.as_c_str(), AtFlags::empty()) {
                    Ok(()) | Err(Errno::NOENT) => Ok(()),
                    Err(e) => Err(self.io(name)(e)),
                }
            }
        }
    }

    /// The names in this directory (without `.` and `..`), sorted.
    pub fn list(&self) -> Result<Vec<OsString>> {
        let err = self.io(OsStr::new(""));
        let dir = match rfs::Dir::read_from(&self.fd) {
            Ok(d) => d,
            Err(e) => return Err(err(e)),
        };
        let mut out = Vec::new();
        for entry in dir {
            let entry = entry.map_err(|e| RootError::Io {
                path: self.shown.clone(),
                source: e.into(),
            })?;
            let name = entry.file_name().to_bytes();
            if name != b"." && name != b".." {
                out.push(OsStr::from_bytes(name).to_os_string());
            }
        }
        out.sort();
        Ok(out)
    }

    /// Set owners of `name` (a symlink itself, not its target).
    pub fn chown(&self, name: &OsStr, uid: u32, gid: u32) -> Result<()> {
        let c = cstr(name)?;
        rfs::chownat(
            &self.fd,
            c.as_c_str(),
            Some(rfs::Uid::from_raw(uid)),
            Some(rfs::Gid::from_raw(gid)),
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(self.io(name))
    }

    /// Set atime and mtime of `name` (a symlink itself, not its target).
    pub fn set_mtime(&self, name: &OsStr, secs: u64) -> Result<()> {
        let c = cstr(name)?;
        rfs::utimensat(
            &self.fd,
            c.as_c_str(),
            &times(secs),
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(self.io(name))
    }

    /// Set the permission bits of `name`; a symlink is left alone (Linux symlinks have none).
    pub fn set_mode(&self, name: &OsStr, mode: u32) -> Result<()> {
        let c = cstr(name)?;
        match self.kind(name)? {
            None | Some(Kind::Symlink) => Ok(()),
            Some(_) => {
                // Opening with O_PATH|O_NOFOLLOW pins the very inode checked above; chmod
                // through its /proc/self/fd link acts on it even for devices and FIFOs.
                let fd = rfs::openat(
                    &self.fd,
                    c.as_c_str(),
                    OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(self.io(name))?;
                let st = rfs::fstat(&fd).map_err(self.io(name))?;
                if FileType::from_raw_mode(st.st_mode) == FileType::Symlink {
                    return Ok(());
                }
                let proc = format!("/proc/self/fd/{}", fd.as_raw_fd());
                match rfs::chmod(proc.as_str(), Mode::from_raw_mode(mode)) {
                    Ok(()) => Ok(()),
                    // No /proc: the name was checked not to be a symlink just above.
                    Err(Errno::NOENT) => rfs::chmodat(
                        &self.fd,
                        c.as_c_str(),
                        Mode::from_raw_mode(mode),
                        AtFlags::empty(),
                    )
                    .map_err(self.io(name)),
                    Err(e) => Err(self.io(name)(e)),
                }
            }
        }
    }

    /// Set extended attribute `key` on `name` (not following a symlink). `false` when the
    /// file system or privilege refuses it.
    pub fn set_xattr(&self, name: &OsStr, key: &str, value: &[u8]) -> Result<bool> {
        let c = cstr(name)?;
        let fd = rfs::openat(
            &self.fd,
            c.as_c_str(),
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(self.io(name))?;
        // setxattr through the O_PATH descriptor's /proc link jumps to the pinned inode (the
        // symlink itself when `name` is one), never to what a symlink points at.
        let proc = format!("/proc/self/fd/{}", fd.as_raw_fd());
        Ok(rfs::setxattr(proc.as_str(), key, value, rfs::XattrFlags::empty()).is_ok())
    }

    /// Owner, permission bits and atime/mtime of `file`, a regular file this directory just
    /// made ([`Dir::create_file`], named `name` for errors), set through its descriptor: no name
    /// is looked up again, so nothing can have replaced it in between, and it costs three calls
    /// where the name-based ones take seven. The owner goes first (chown clears setuid and
    /// setgid), the times last.
    pub fn finish_file(
        &self,
        name: &OsStr,
        file: &File,
        owner: Option<(u32, u32)>,
        mode: u32,
        secs: u64,
    ) -> Result<()> {
        if let Some((uid, gid)) = owner {
            rfs::fchown(
                file,
                Some(rfs::Uid::from_raw(uid)),
                Some(rfs::Gid::from_raw(gid)),
            )
            .map_err(self.io(name))?;
        }
        rfs::fchmod(file, Mode::from_raw_mode(mode)).map_err(self.io(name))?;
        rfs::futimens(file, &times(secs)).map_err(self.io(name))
    }

    /// Set extended attribute `key` on `file`, a regular file this directory just made, through
    /// its descriptor. `false` when the file system or privilege refuses it.
    pub fn set_file_xattr(file: &File, key: &str, value: &[u8]) -> bool {
        rfs::fsetxattr(file, key, value, rfs::XattrFlags::empty()).is_ok()
    }

    /// Set this directory's own permission bits.
    pub fn set_own_mode(&self, mode: u32) -> Result<()> {
        rfs::fchmod(&self.fd, Mode::from_raw_mode(mode)).map_err(self.io(OsStr::new("")))
    }

    /// Set this directory's own atime and mtime.
    pub fn set_own_mtime(&self, secs: u64) -> Result<()> {
        rfs::futimens(&self.fd, &times(secs)).map_err(self.io(OsStr::new("")))
    }
}

impl AsFd for Dir {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsFd for Root {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// `path` made absolute (against the current directory) and cleaned lexically: `.` dropped,
/// `..` removing the previous component. No symlink is looked at.
fn lexical_absolute(path: &Path) -> io::Result<PathBuf> {
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()?.join(path)
    };
    let mut out = PathBuf::from("/");
    for c in joined.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::Normal(n) => out.push(n),
            _ => {}
        }
    }
    Ok(out)
}

/// Read `file`, a file that may lie inside directory `root` (a build context). When `file` is
/// lexically inside `root`, it is resolved from `root` with [`Follow::Beneath`]: symlinks are
/// followed while they stay inside, and one leading outside is [`RootError::Outside`], the file
/// never read. A `file` lexically elsewhere (an explicit `-f /other/Dockerfile`) is read as
/// given. `Ok(None)` when it does not exist; at most `limit` bytes.
pub fn read_inside(root: &Path, file: &Path, limit: u64) -> Result<Option<Vec<u8>>> {
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| RootError::Io { path, source }
    };
    let abs_root = lexical_absolute(root).map_err(io_err(root))?;
    let abs_file = lexical_absolute(file).map_err(io_err(file))?;
    let Ok(rel) = abs_file.strip_prefix(&abs_root) else {
        return match std::fs::read(file) {
            Ok(bytes) if bytes.len() as u64 <= limit => Ok(Some(bytes)),
            Ok(_) => Err(io_err(file)(io::Error::other(format!(
                "larger than {limit} bytes"
            )))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(file)(e)),
        };
    };
    let root_dir = Root::open(root)?;
    match root_dir.read_file(rel, Follow::Beneath, limit) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(RootError::Outside { root, .. }) => Err(RootError::Outside {
            path: file.display().to_string(),
            root,
        }),
        Err(e) => Err(e),
    }
}

impl Root {
    /// The target of symlink `rel` (its parent resolved with no symlink allowed on the way:
    /// `rel` is a path a resolver already made symlink-free), `None` when `rel` is missing or not
    /// a symlink.
    pub fn read_link(&self, rel: impl AsRef<Path>) -> Result<Option<OsString>> {
        let rel = rel.as_ref();
        if trim_slashes(rel.as_os_str().as_bytes()).is_empty() {
            return Ok(None);
        }
        let (parent, name) = match self.open_parent(rel, Follow::Never, false) {
            Ok(found) => found,
            Err(RootError::NotFound { .. } | RootError::NotADirectory { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        match rfs::readlinkat(&parent.fd, name.as_os_str(), Vec::new()) {
            Ok(target) => Ok(Some(OsStr::from_bytes(target.as_bytes()).to_os_string())),
            Err(Errno::INVAL) | Err(Errno::NOENT) | Err(Errno::NOTDIR) => Ok(None),
            Err(e) => Err(parent.io(&name)(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// A root with `real/file`, `abs -> /real`, `up -> ../../..`, `out -> <outside>`,
    /// `loop -> loop/x`, and a sibling `outside/secret`.
    fn tree() -> (tempfile::TempDir, PathBuf) {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        std::fs::create_dir_all(root.join("real")).unwrap();
        std::fs::write(root.join("real/file"), "inside").unwrap();
        std::fs::create_dir(t.path().join("outside")).unwrap();
        std::fs::write(t.path().join("outside/secret"), "secret").unwrap();
        symlink("/real", root.join("abs")).unwrap();
        symlink("../../..", root.join("up")).unwrap();
        symlink(t.path().join("outside"), root.join("out")).unwrap();
        symlink("loop/x", root.join("loop")).unwrap();
        symlink("real/file", root.join("rel-file")).unwrap();
        (t, root)
    }

    fn roots(path: &Path) -> Vec<Root> {
        vec![
            Root::open(path).unwrap(),
            Root::open_with(path, Resolver::Walk).unwrap(),
        ]
    }

    #[test]
    fn in_root_follows_like_a_chroot() {
        let (_t, path) = tree();
        for root in roots(&path) {
            let read = |rel: &str| root.read_file(rel, Follow::InRoot, 100);
            assert_eq!(read("abs/file").unwrap(), b"inside");
            assert_eq!(read("up/real/file").unwrap(), b"inside");
            assert_eq!(read("/../../real/file").unwrap(), b"inside");
            assert_eq!(read("rel-file").unwrap(), b"inside");
            assert!(read("out/secret").unwrap_err().is_not_found());
            assert!(matches!(read("loop/y"), Err(RootError::Loop { .. })));
        }
    }

    #[test]
    fn beneath_refuses_to_leave() {
        let (_t, path) = tree();
        for root in roots(&path) {
            let read = |rel: &str| root.read_file(rel, Follow::Beneath, 100);
            assert_eq!(read("rel-file").unwrap(), b"inside");
            assert!(matches!(read("out/secret"), Err(RootError::Outside { .. })));
            assert!(matches!(read("up/x"), Err(RootError::Outside { .. })));
            assert!(matches!(read("../x"), Err(RootError::Outside { .. })));
        }
    }

    #[test]
    fn never_refuses_any_symlink() {
        let (_t, path) = tree();
        for root in roots(&path) {
            assert!(root.open_dir("real", Follow::Never, false).is_ok());
            assert!(matches!(
                root.open_dir("abs", Follow::Never, false),
                Err(RootError::Symlink { .. })
            ));
            assert!(matches!(
                root.read_file("rel-file", Follow::Never, 100),
                Err(RootError::Symlink { .. })
            ));
        }
    }

    #[test]
    fn creating_directories_stays_inside() {
        let (t, path) = tree();
        for (i, root) in roots(&path).into_iter().enumerate() {
            let dir = root
                .open_dir(format!("out/new{i}/deeper"), Follow::InRoot, true)
                .unwrap();
            dir.create_file(OsStr::new("f")).unwrap();
        }
        for i in 0..2 {
            let host = t.path().join(format!("outside/new{i}/deeper/f"));
            assert!(path.join(host.strip_prefix("/").unwrap()).is_file());
            assert!(!t.path().join(format!("outside/new{i}")).exists());
        }
    }

    #[test]
    fn read_link_and_read_inside() {
        let (t, path) = tree();
        let root = Root::open(&path).unwrap();
        assert_eq!(
            root.read_link("abs").unwrap(),
            Some(OsString::from("/real"))
        );
        assert_eq!(root.read_link("real").unwrap(), None);
        assert_eq!(root.read_link("nope/x").unwrap(), None);
        assert_eq!(
            read_inside(&path, &path.join("rel-file"), 100).unwrap(),
            Some(b"inside".to_vec())
        );
        let err = read_inside(&path, &path.join("out/secret"), 100).unwrap_err();
        assert!(err.to_string().contains("points outside"), "{err}");
        assert!(!err.to_string().contains("secret\n"), "{err}");
        // A file named outside the root is read as given.
        assert_eq!(
            read_inside(&path, &t.path().join("outside/secret"), 100).unwrap(),
            Some(b"secret".to_vec())
        );
        assert_eq!(
            read_inside(&path, &path.join("missing"), 100).unwrap(),
            None
        );
    }
}
