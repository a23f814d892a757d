//! The example chain's bought base: a busybox root filesystem tarball, written deterministically.
//!
//! [`write_busybox_rootfs`] takes a statically linked busybox (Debian's busybox-static installs one
//! at `/bin/busybox`) and writes a tar with `/bin/busybox`, its applets as symlinks, and
//! `/etc/passwd`, `/etc/group`, `/etc/shadow` with root, www-data (33) and nobody. Entries are
//! sorted, owned by root (uid 0, names `root`), with mtime 0: the same busybox gives the same bytes.

use std::collections::BTreeMap;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Where Debian's busybox-static installs busybox.
pub const DEFAULT_BUSYBOX: &str = "/bin/busybox";

/// The applets linked in `/bin`.
pub const APPLETS: &[&str] = &[
    "[",
    "ash",
    "awk",
    "basename",
    "cat",
    "chgrp",
    "chmod",
    "chown",
    "cp",
    "cut",
    "date",
    "dd",
    "df",
    "diff",
    "dirname",
    "du",
    "echo",
    "env",
    "expr",
    "false",
    "find",
    "grep",
    "gunzip",
    "gzip",
    "head",
    "hostname",
    "httpd",
    "id",
    "kill",
    "less",
    "ln",
    "ls",
    "md5sum",
    "mkdir",
    "mktemp",
    "more",
    "mv",
    "nc",
    "printf",
    "ps",
    "pwd",
    "readlink",
    "realpath",
    "rm",
    "rmdir",
    "sed",
    "seq",
    "sh",
    "sha256sum",
    "sleep",
    "sort",
    "stat",
    "tail",
    "tar",
    "tee",
    "test",
    "touch",
    "tr",
    "true",
    "uname",
    "uniq",
    "vi",
    "wc",
    "wget",
    "which",
    "whoami",
    "xargs",
    "yes",
];

/// The example's `/etc/passwd`: root, www-data (33) and nobody.
pub const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
www-data:x:33:33:www-data:/var/www:/bin/sh\n\
nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";
/// The example's `/etc/group`: root, www-data (33) and nogroup.
pub const GROUP: &str = "root:x:0:\nwww-data:x:33:\nnogroup:x:65534:\n";
const SHADOW: &str =
    "root:*:19000:0:99999:7:::\nwww-data:*:19000:0:99999:7:::\nnobody:*:19000:0:99999:7:::\n";

/// Why the rootfs could not be written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RootfsError {
    /// No busybox at the given path.
    #[error("{} not found: install busybox-static (apt-get install busybox-static)", path.display())]
    BusyboxMissing {
        /// Where busybox was looked for.
        path: PathBuf,
    },
    /// The busybox found needs a dynamic loader the root filesystem does not have.
    #[error(
        "{} is dynamically linked and would not run in the image: install busybox-static (apt-get install busybox-static)",
        path.display()
    )]
    NotStatic {
        /// The busybox binary.
        path: PathBuf,
    },
    /// Reading busybox or writing the tarball failed.
    #[error("{}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> RootfsError + '_ {
    move |source| RootfsError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Check that `busybox` exists and is a statically linked ELF executable.
pub fn check_busybox(busybox: &Path) -> Result<(), RootfsError> {
    let mut file = match std::fs::File::open(busybox) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(RootfsError::BusyboxMissing {
                path: busybox.to_path_buf(),
            });
        }
        Err(e) => return Err(io_err(busybox)(e)),
    };
    if has_interpreter(&mut file).map_err(io_err(busybox))? {
        return Err(RootfsError::NotStatic {
            path: busybox.to_path_buf(),
        });
    }
    Ok(())
}

/// Whether an ELF file has a PT_INTERP program header (is dynamically linked). Not ELF: an error.
fn has_interpreter(file: &mut (impl Read + Seek)) -> io::Result<bool> {
    let mut ident = [0u8; 64];
    file.read_exact(&mut ident)?;
    if &ident[..4] != b"\x7fELF" {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "not an ELF executable",
        ));
    }
    let is64 = ident[4] == 2;
    let le = ident[5] == 1;
    let u16_at = |b: &[u8], o: usize| {
        let v = [b[o], b[o + 1]];
        if le {
            u16::from_le_bytes(v)
        } else {
            u16::from_be_bytes(v)
        }
    };
    let u32_at = |b: &[u8], o: usize| {
        let v = [b[o], b[o + 1], b[o + 2], b[o + 3]];
        if le {
            u32::from_le_bytes(v)
        } else {
            u32::from_be_bytes(v)
        }
    };
    let (phoff, phentsize, phnum) = if is64 {
        let v: [u8; 8] = ident[32..40].try_into().expect("8 bytes");
        let off = if le {
            u64::from_le_bytes(v)
        } else {
            u64::from_be_bytes(v)
        };
        (off, u16_at(&ident, 54), u16_at(&ident, 56))
    } else {
        (
            u64::from(u32_at(&ident, 28)),
            u16_at(&ident, 42),
            u16_at(&ident, 44),
        )
    };
    let mut entry = vec![0u8; usize::from(phentsize).max(4)];
    for k in 0..u64::from(phnum) {
        file.seek(SeekFrom::Start(phoff + k * u64::from(phentsize)))?;
        file.read_exact(&mut entry)?;
        if u32_at(&entry, 0) == 3 {
            return Ok(true); // PT_INTERP
        }
    }
    Ok(false)
}

/// One entry of a root filesystem tarball; every entry is owned by root with mtime 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A directory with this mode.
    Dir(u32),
    /// A regular file: its bytes and mode.
    File(Vec<u8>, u32),
    /// A symbolic link to this target.
    Symlink(&'static str),
}

/// Write the busybox root filesystem tarball to `dest` (atomically: a temp file beside it, fsynced,
/// renamed), creating `dest`'s directory. `busybox` must be statically linked.
pub fn write_busybox_rootfs(busybox: &Path, dest: &Path) -> Result<(), RootfsError> {
    check_busybox(busybox)?;
    let binary = std::fs::read(busybox).map_err(io_err(busybox))?;
    let mut entries: BTreeMap<String, Entry> = BTreeMap::new();
    for d in [
        "bin", "dev", "etc", "home", "proc", "sbin", "sys", "usr", "usr/bin", "usr/sbin", "var",
    ] {
        entries.insert(d.to_string(), Entry::Dir(0o755));
    }
    entries.insert("root".into(), Entry::Dir(0o700));
    entries.insert("tmp".into(), Entry::Dir(0o1777));
    entries.insert("bin/busybox".into(), Entry::File(binary, 0o755));
    for applet in APPLETS {
        entries.insert(format!("bin/{applet}"), Entry::Symlink("busybox"));
    }
    entries.insert("etc/passwd".into(), Entry::File(PASSWD.into(), 0o644));
    entries.insert("etc/group".into(), Entry::File(GROUP.into(), 0o644));
    entries.insert("etc/shadow".into(), Entry::File(SHADOW.into(), 0o640));
    write_rootfs(&entries, dest)
}

/// Write `entries` (path relative to the root → entry) as a tarball at `dest`, in path order,
/// owned by root with mtime 0 (the same entries give the same bytes), atomically: a temp file
/// beside it, fsynced, renamed; `dest`'s directory is created.
pub fn write_rootfs(entries: &BTreeMap<String, Entry>, dest: &Path) -> Result<(), RootfsError> {
    let dir = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
    let tmp = tempfile::NamedTempFile::new_in(&dir).map_err(io_err(&dir))?;
    let mut builder = tar::Builder::new(io::BufWriter::new(tmp.as_file()));
    for (path, entry) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_username("root").map_err(io_err(dest))?;
        h.set_groupname("root").map_err(io_err(dest))?;
        let written = match entry {
            Entry::Dir(mode) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(*mode);
                h.set_size(0);
                builder.append_data(&mut h, format!("{path}/"), io::empty())
            }
            Entry::File(bytes, mode) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(*mode);
                h.set_size(bytes.len() as u64);
                builder.append_data(&mut h, path, bytes.as_slice())
            }
            Entry::Symlink(target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                h.set_size(0);
                builder.append_link(&mut h, path, target)
            }
        };
        written.map_err(io_err(dest))?;
    }
    let mut out = builder.into_inner().map_err(io_err(dest))?;
    out.flush().map_err(io_err(dest))?;
    drop(out);
    tmp.as_file()
        .set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))
        .map_err(io_err(dest))?;
    tmp.as_file().sync_all().map_err(io_err(dest))?;
    tmp.persist(dest).map_err(|e| io_err(dest)(e.error))?;
    if let Ok(d) = std::fs::File::open(&dir) {
        d.sync_all().map_err(io_err(&dir))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_busybox_says_how_to_install_it() {
        let err = write_busybox_rootfs(Path::new("/nonexistent/busybox"), Path::new("/tmp/x.tar"))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "/nonexistent/busybox not found: install busybox-static (apt-get install busybox-static)"
        );
    }

    #[test]
    fn a_dynamic_executable_is_refused() {
        // the test binary itself is dynamically linked (it needs libc's loader)
        let me = std::env::current_exe().unwrap();
        let err = check_busybox(&me).unwrap_err();
        assert!(matches!(err, RootfsError::NotStatic { .. }), "{err}");
        assert!(err.to_string().contains("apt-get install busybox-static"));
    }

    #[test]
    fn not_elf_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("busybox");
        std::fs::write(&fake, [b'#'; 80]).unwrap();
        assert!(matches!(check_busybox(&fake), Err(RootfsError::Io { .. })));
    }
}
