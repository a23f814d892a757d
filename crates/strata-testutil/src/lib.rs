//! Test helpers shared by strata's crates.
//!
//! The key decision: a test that needs a peer tool (skopeo, umoci, podman, buildah, busybox) calls
//! [`require_tool`]. Outside CI a missing tool skips the test with a message; under `CI=true` it fails
//! the test, so CI never passes by silently skipping.

#![deny(missing_docs)]
#![allow(clippy::print_stderr)]

use std::path::{Path, PathBuf};
use std::process::Command;

pub mod kube_mock;

/// True when running under CI (`CI=true`).
pub fn in_ci() -> bool {
    std::env::var("CI")
        .map(|v| v == "true" || v == "1")
        .unwrap_or(false)
}

/// True when the tests run as root (uid 0): RUN steps, overlay mounts and namespaces need it.
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .is_some_and(|l| l.split_whitespace().nth(1) == Some("0"))
}

/// Whether this machine can build the example chain that `strata init` writes (a busybox base and
/// RUN steps): it needs root and busybox-static. Outside CI a missing one skips the test (false,
/// with a message); under `CI=true` it fails the test.
pub fn can_build_example() -> bool {
    if !is_root() {
        assert!(!in_ci(), "CI runs as root");
        eprintln!("skipping: the example's RUN steps need root");
        return false;
    }
    Path::new("/bin/busybox").exists() || require_tool("busybox").is_some()
}

/// A temp directory holding the example chain, written by `strata init` run from the binary
/// `strata` (a test passes `assert_cmd::cargo::cargo_bin!("strata")`).
pub fn init_example(strata: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temp directory");
    run_ok(Command::new(strata).arg("init").arg(dir.path()));
    dir
}

/// Find `tool` on PATH. Returns `None` (the caller should return early: the test is skipped) when it
/// is missing outside CI; panics when it is missing under `CI=true`.
pub fn require_tool(tool: &str) -> Option<PathBuf> {
    if let Some(path) = which(tool) {
        return Some(path);
    }
    if in_ci() {
        panic!("{tool} is required under CI=true but is not installed (scripts/test installs it)");
    }
    eprintln!("skipping: {tool} is not installed (scripts/test installs it)");
    None
}

/// The first executable named `tool` on PATH (or in /usr/sbin, /sbin).
pub fn which(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|dir| dir.join(tool))
        .find(|candidate| candidate.is_file())
}

/// Run a command, panicking with its stderr when it fails; returns its stdout.
pub fn run_ok(command: &mut Command) -> String {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
    assert!(
        out.status.success(),
        "{command:?} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A path podman accepts in `oci:PATH:REF`: podman 4 derives an image name from the path, so a
/// component with a leading dot or an upper-case letter (as in temp dirs) makes it fail. Returns a
/// lower-case symlink in the system temp dir pointing at `path` (left behind: it is tiny).
pub fn podman_safe_path(path: &Path) -> PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let link = std::env::temp_dir().join(format!(
        "strata-oci-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(path, &link).expect("symlink for podman");
    link
}

/// Write a minimal busybox root filesystem tarball at `dest`: /bin/busybox (static) with the applets
/// `sh`, `ls`, `cat`, `echo`, ... as symlinks, plus /etc/passwd and /etc/group with root and nobody.
/// Returns `None` when busybox-static is not installed (see [`require_tool`] for CI behaviour).
pub fn busybox_rootfs_tar(dest: &Path) -> Option<()> {
    let busybox = Path::new("/bin/busybox");
    if !busybox.is_file() {
        require_tool("busybox")?;
    }
    write_busybox_tar(busybox, dest).expect("write busybox rootfs tarball");
    Some(())
}

const APPLETS: &[&str] = &[
    "sh",
    "ls",
    "cat",
    "echo",
    "mkdir",
    "rm",
    "cp",
    "mv",
    "touch",
    "id",
    "env",
    "test",
    "true",
    "false",
    "chmod",
    "chown",
    "ln",
    "sleep",
    "grep",
    "sed",
    "wc",
    "head",
    "tail",
    "find",
    "stat",
    "printf",
    "pwd",
    "whoami",
    "hostname",
    "mount",
    "uname",
    "sha256sum",
    "tar",
    "gzip",
    "date",
    "ps",
    "kill",
    "yes",
    "dd",
    "readlink",
    "basename",
    "dirname",
    "sort",
    "tr",
    "cut",
    "awk",
    "vi",
    "wget",
    "xargs",
    "md5sum",
];

/// The test root filesystem: fewer directories and applets than the example's (a test sees the
/// sandbox create `/proc`, `/dev` and `/sys`), `mount` linked, no `/etc/shadow`; written by the
/// example's writer.
fn write_busybox_tar(
    busybox: &Path,
    dest: &Path,
) -> Result<(), strata_scaffold::rootfs::RootfsError> {
    use strata_scaffold::rootfs::{Entry, GROUP, PASSWD, RootfsError, write_rootfs};
    let mut entries = std::collections::BTreeMap::new();
    for d in ["bin", "etc", "tmp", "root", "usr", "usr/bin", "var", "home"] {
        let mode = if d == "tmp" { 0o1777 } else { 0o755 };
        entries.insert(d.to_string(), Entry::Dir(mode));
    }
    let bytes = std::fs::read(busybox).map_err(|source| RootfsError::Io {
        path: busybox.to_path_buf(),
        source,
    })?;
    entries.insert("bin/busybox".to_string(), Entry::File(bytes, 0o755));
    for applet in APPLETS {
        entries.insert(format!("bin/{applet}"), Entry::Symlink("busybox"));
    }
    entries.insert("etc/passwd".to_string(), Entry::File(PASSWD.into(), 0o644));
    entries.insert("etc/group".to_string(), Entry::File(GROUP.into(), 0o644));
    write_rootfs(&entries, dest)
}

/// A Debian bookworm root filesystem tarball made by `debootstrap --variant=minbase` from Debian's
/// mirror, as the official image's `rootfs.tar` is made (device nodes in /dev included), cached in
/// `/var/cache/strata-test` (`STRATA_TEST_CACHE` overrides) so it is made once per machine. The
/// one maker is `scripts/debian-rootfs` (also run by `scripts/test` while the workspace compiles,
/// and by the benchmarks); its lock makes concurrent callers wait for one tarball. `None` (skip)
/// when debootstrap is missing outside CI; under `CI=true` a missing debootstrap or a failed
/// bootstrap fails the test.
pub fn debian_rootfs_tar() -> Option<PathBuf> {
    require_tool("debootstrap")?;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/debian-rootfs");
    let printed = run_ok(&mut Command::new(script));
    Some(PathBuf::from(printed.trim_end()))
}

/// Plant a symbolic link at `link` to a new FIFO beside it: an entry that a reader which follows
/// links would block on for ever (what cache readers must refuse).
pub fn link_to_fifo(link: &Path) {
    let fifo = link.with_extension("fifo");
    rustix::fs::mkfifoat(
        rustix::fs::CWD,
        &fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
    )
    .expect("a FIFO");
    std::os::unix::fs::symlink(&fifo, link).expect("a link to the FIFO");
}

/// Every extended attribute of `path` (not followed), by name: what a test compares trees or
/// checks an unpack with. Empty where the file system has none.
pub fn xattrs(path: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut names = vec![0u8; 64 * 1024];
    let len = rustix::fs::llistxattr(path, &mut names[..]).unwrap_or(0);
    names[..len]
        .split(|&b| b == 0)
        .filter(|n| !n.is_empty())
        .map(|name| {
            let name = String::from_utf8_lossy(name).into_owned();
            let mut value = vec![0u8; 64 * 1024];
            let n = rustix::fs::lgetxattr(path, name.as_str(), &mut value[..]).unwrap_or(0);
            value.truncate(n);
            (name, value)
        })
        .collect()
}

/// The mount points in this process's mount namespace at or under `dir` (from
/// `/proc/self/mountinfo`, octal escapes decoded). A test checks that it left no mount behind with
/// this, over the directories it made: never by diffing the whole table, which changes whenever
/// anything else on the machine mounts.
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|field| PathBuf::from(unescape_mountinfo(field)))
        .filter(|point| point.starts_with(&dir))
        .collect()
}

/// Decode mountinfo's `\NNN` octal escapes (space, tab, newline, backslash).
fn unescape_mountinfo(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            let value =
                (bytes[i + 1] - b'0') * 64 + (bytes[i + 2] - b'0') * 8 + (bytes[i + 3] - b'0');
            out.push(value);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The busybox root filesystem of [`busybox_rootfs_tar`] unpacked as directory `dest` (created;
/// the tarball is written beside it as `dest.tar`). `None` when busybox-static is missing (see
/// [`require_tool`] for CI behaviour).
pub fn busybox_rootfs_dir(dest: &Path) -> Option<()> {
    let tar = dest.with_extension("tar");
    busybox_rootfs_tar(&tar)?;
    std::fs::create_dir(dest).expect("the root filesystem directory");
    run_ok(Command::new("tar").arg("-xf").arg(&tar).arg("-C").arg(dest));
    Some(())
}
