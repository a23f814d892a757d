//! The system calls a sandbox makes, behind a trait (youki's `Syscall`): [`LinuxSys`] makes them,
//! [`RecordingSys`] records them so plans are tested without root.

use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags};
use nix::sys::stat::Mode;
use nix::unistd::{Gid, Uid};

use crate::plan::MountOp;
use crate::spec::Identity;

/// Capabilities kept in the bounding set: Docker's default set minus `CAP_MKNOD` (no device
/// nodes for the host's disks) and `CAP_NET_RAW` (no raw sockets: with the host network one
/// would sniff its loopback traffic; buildah's chroot isolation drops it too).
pub const KEPT_CAPS: [u32; 12] = [
    0,  // CHOWN
    1,  // DAC_OVERRIDE
    3,  // FOWNER
    4,  // FSETID
    5,  // KILL
    6,  // SETGID
    7,  // SETUID
    8,  // SETPCAP
    10, // NET_BIND_SERVICE
    18, // SYS_CHROOT
    29, // AUDIT_WRITE
    31, // SETFCAP
];

/// The system calls of sandbox setup. Paths are as seen by the calling process.
pub trait Sys {
    /// `mount(2)`.
    fn mount(
        &mut self,
        source: Option<&str>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> nix::Result<()>;
    /// Mount overlayfs at `target` with one `lowerdir+` per layer (new mount API) and
    /// `options` (key, value; an empty value sets a flag).
    fn mount_overlay_layers(
        &mut self,
        lowers_top_first: &[PathBuf],
        options: &[(&str, String)],
        target: &Path,
    ) -> nix::Result<()>;
    /// `mount(2)` with `MS_BIND` (and `MS_REC` when `recursive`).
    fn bind(&mut self, source: &Path, target: &Path, recursive: bool) -> nix::Result<()>;
    /// Remount bind mount `target` read-only and `nodev`, keeping its other flags.
    fn remount_readonly(&mut self, target: &Path) -> nix::Result<()>;
    /// Remount bind mount `target` `nodev`, keeping its other flags.
    fn remount_nodev(&mut self, target: &Path) -> nix::Result<()>;
    /// Whether `path` exists (without following a final symlink).
    fn exists(&mut self, path: &Path) -> bool;
    /// `mkdir -p` with `mode` for the last component.
    fn mkdir_all(&mut self, path: &Path, mode: u32) -> nix::Result<()>;
    /// Create an empty file if missing.
    fn create_file(&mut self, path: &Path) -> nix::Result<()>;
    /// `symlink(2)`.
    fn symlink(&mut self, target: &str, link: &Path) -> nix::Result<()>;
    /// `chdir(2)`.
    fn chdir(&mut self, path: &Path) -> nix::Result<()>;
    /// `pivot_root` into `new_root`, then detach the old root and `chdir /`.
    fn pivot_root(&mut self, new_root: &Path) -> nix::Result<()>;
    /// `sethostname(2)`.
    fn set_hostname(&mut self, name: &str) -> nix::Result<()>;
    /// Bring the loopback interface up.
    fn loopback_up(&mut self) -> nix::Result<()>;
    /// Drop every capability not in `keep` from the bounding set.
    fn drop_bounding_caps(&mut self, keep: &[u32]) -> nix::Result<()>;
    /// `setgroups` (when `groups`), `setgid`, `setuid`.
    fn set_identity(&mut self, id: &Identity, groups: bool) -> nix::Result<()>;
}

/// A failed mount step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyError {
    /// The step.
    pub op: MountOp,
    /// The errno.
    pub errno: Errno,
}

impl std::fmt::Display for ApplyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match &self.op {
            MountOp::MakeRootPrivate => "making / private".to_string(),
            MountOp::Mount {
                fstype,
                target,
                data,
                ..
            } => format!(
                "mounting {fstype} on {} ({})",
                target.display(),
                data.as_deref().unwrap_or("")
            ),
            MountOp::OverlayManyLayers {
                lowers_top_first,
                target,
                ..
            } => format!(
                "mounting an overlay of {} layers on {}",
                lowers_top_first.len(),
                target.display()
            ),
            MountOp::Bind { source, target, .. } => {
                format!("binding {} on {}", source.display(), target.display())
            }
            MountOp::RemountReadOnly { target } => {
                format!("making {} read-only", target.display())
            }
            MountOp::RemountNoDev { target } => {
                format!("making {} nodev", target.display())
            }
            MountOp::Mask { target, .. } => format!("masking {}", target.display()),
            MountOp::ReadOnlyIfExists { target } => {
                format!("making {} read-only", target.display())
            }
            MountOp::Mkdir { path, .. } => format!("creating directory {}", path.display()),
            MountOp::CreateFile { path } => format!("creating {}", path.display()),
            MountOp::Symlink { link, .. } => format!("creating symlink {}", link.display()),
            MountOp::Chdir { path } => format!("entering {}", path.display()),
            MountOp::PivotRoot { new_root } => format!("pivot_root into {}", new_root.display()),
        };
        write!(f, "{what}: {}", self.errno.desc())
    }
}

/// Perform `ops` in order through `sys`; stops at the first failure.
pub fn apply(ops: &[MountOp], sys: &mut dyn Sys) -> Result<(), ApplyError> {
    for op in ops {
        let r = match op {
            MountOp::MakeRootPrivate => sys.mount(
                None,
                Path::new("/"),
                None,
                MsFlags::MS_REC | MsFlags::MS_PRIVATE,
                None,
            ),
            MountOp::Mount {
                source,
                target,
                fstype,
                flags,
                data,
            } => sys.mount(Some(source), target, Some(fstype), *flags, data.as_deref()),
            MountOp::OverlayManyLayers {
                lowers_top_first,
                upper,
                work,
                userxattr,
                target,
            } => {
                let mut options = vec![
                    ("upperdir", upper.to_string_lossy().into_owned()),
                    ("workdir", work.to_string_lossy().into_owned()),
                    ("redirect_dir", "nofollow".to_string()),
                    ("metacopy", "off".to_string()),
                    ("index", "off".to_string()),
                    ("volatile", String::new()),
                ];
                if *userxattr {
                    options.push(("userxattr", String::new()));
                }
                sys.mount_overlay_layers(lowers_top_first, &options, target)
            }
            MountOp::Bind {
                source,
                target,
                recursive,
            } => sys.bind(source, target, *recursive),
            MountOp::RemountReadOnly { target } => sys.remount_readonly(target),
            MountOp::RemountNoDev { target } => sys.remount_nodev(target),
            MountOp::Mask { target, null } => {
                if sys.exists(target) {
                    sys.bind(null, target, false)
                } else {
                    Ok(())
                }
            }
            MountOp::ReadOnlyIfExists { target } => {
                if sys.exists(target) {
                    sys.bind(target, target, false)
                        .and_then(|()| sys.remount_readonly(target))
                } else {
                    Ok(())
                }
            }
            MountOp::Mkdir { path, mode } => sys.mkdir_all(path, *mode),
            MountOp::CreateFile { path } => sys.create_file(path),
            MountOp::Symlink { target, link } => sys.symlink(target, link),
            MountOp::Chdir { path } => sys.chdir(path),
            MountOp::PivotRoot { new_root } => sys.pivot_root(new_root),
        };
        r.map_err(|errno| ApplyError {
            op: op.clone(),
            errno,
        })?;
    }
    Ok(())
}

/// The real system calls.
#[derive(Debug, Default, Clone, Copy)]
pub struct LinuxSys;

impl Sys for LinuxSys {
    fn mount(
        &mut self,
        source: Option<&str>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> nix::Result<()> {
        nix::mount::mount(source, target, fstype, flags, data)
    }

    fn mount_overlay_layers(
        &mut self,
        lowers_top_first: &[PathBuf],
        options: &[(&str, String)],
        target: &Path,
    ) -> nix::Result<()> {
        fsconfig_overlay(lowers_top_first, options, target)
    }

    fn bind(&mut self, source: &Path, target: &Path, recursive: bool) -> nix::Result<()> {
        let mut flags = MsFlags::MS_BIND;
        if recursive {
            flags |= MsFlags::MS_REC;
        }
        nix::mount::mount(Some(source), target, None::<&str>, flags, None::<&str>)
    }

    fn remount_readonly(&mut self, target: &Path) -> nix::Result<()> {
        remount_bind(target, MsFlags::MS_RDONLY | MsFlags::MS_NODEV)
    }

    fn remount_nodev(&mut self, target: &Path) -> nix::Result<()> {
        remount_bind(target, MsFlags::MS_NODEV)
    }

    fn exists(&mut self, path: &Path) -> bool {
        std::fs::symlink_metadata(path).is_ok()
    }

    fn mkdir_all(&mut self, path: &Path, mode: u32) -> nix::Result<()> {
        if let Some(parent) = path.parent()
            && !parent.as_os_str().is_empty()
            && !self.exists(parent)
        {
            self.mkdir_all(parent, 0o755)?;
        }
        match nix::unistd::mkdir(path, Mode::from_bits_truncate(mode)) {
            Ok(()) => {
                // mkdir applies the umask; set the exact mode (sticky bit included).
                nix::sys::stat::fchmodat(
                    nix::fcntl::AT_FDCWD,
                    path,
                    Mode::from_bits_truncate(mode),
                    nix::sys::stat::FchmodatFlags::FollowSymlink,
                )
            }
            Err(Errno::EEXIST) => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn create_file(&mut self, path: &Path) -> nix::Result<()> {
        let fd = nix::fcntl::open(
            path,
            nix::fcntl::OFlag::O_CREAT | nix::fcntl::OFlag::O_WRONLY | nix::fcntl::OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o644),
        )?;
        drop(fd);
        Ok(())
    }

    fn symlink(&mut self, target: &str, link: &Path) -> nix::Result<()> {
        nix::unistd::symlinkat(target, nix::fcntl::AT_FDCWD, link)
    }

    fn chdir(&mut self, path: &Path) -> nix::Result<()> {
        nix::unistd::chdir(path)
    }

    fn pivot_root(&mut self, new_root: &Path) -> nix::Result<()> {
        // runc's trick: stack the old root under the new one, then detach it; no directory for
        // the old root is needed in the image.
        nix::unistd::chdir(new_root)?;
        nix::unistd::pivot_root(".", ".")?;
        nix::mount::umount2(".", MntFlags::MNT_DETACH)?;
        nix::unistd::chdir("/")
    }

    fn set_hostname(&mut self, name: &str) -> nix::Result<()> {
        nix::unistd::sethostname(name)
    }

    fn loopback_up(&mut self) -> nix::Result<()> {
        // SAFETY: plain socket and ioctl calls on a zeroed `ifreq` naming "lo"; the fd is closed.
        unsafe {
            let sock = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
            if sock < 0 {
                return Err(Errno::last());
            }
            let mut req: libc::ifreq = std::mem::zeroed();
            for (i, b) in b"lo".iter().enumerate() {
                req.ifr_name[i] = *b as libc::c_char;
            }
            let mut r = libc::ioctl(sock, libc::SIOCGIFFLAGS, &mut req);
            if r == 0 {
                req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
                r = libc::ioctl(sock, libc::SIOCSIFFLAGS, &mut req);
            }
            let err = Errno::last();
            libc::close(sock);
            if r == 0 { Ok(()) } else { Err(err) }
        }
    }

    fn drop_bounding_caps(&mut self, keep: &[u32]) -> nix::Result<()> {
        let last = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
            .unwrap_or(40);
        for cap in 0..=last {
            if keep.contains(&cap) {
                continue;
            }
            let set = rustix::thread::CapabilitySet::from_bits_retain(1u64 << cap);
            match rustix::thread::remove_capability_from_bounding_set(set) {
                Ok(()) | Err(rustix::io::Errno::INVAL) => {}
                Err(e) => return Err(Errno::from_raw(e.raw_os_error())),
            }
        }
        Ok(())
    }

    fn set_identity(&mut self, id: &Identity, groups: bool) -> nix::Result<()> {
        if groups {
            let gids: Vec<Gid> = id.groups.iter().map(|g| Gid::from_raw(*g)).collect();
            nix::unistd::setgroups(&gids)?;
        }
        nix::unistd::setgid(Gid::from_raw(id.gid))?;
        nix::unistd::setuid(Uid::from_raw(id.uid))
    }
}

/// Remount bind mount `target` with `add` on top of the flags it has (flags locked by a user
/// namespace, nosuid, nodev, noexec and atime, must be kept).
fn remount_bind(target: &Path, add: MsFlags) -> nix::Result<()> {
    use nix::sys::statvfs::FsFlags;
    let f = nix::sys::statvfs::statvfs(target)?.flags();
    let mut flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | add;
    for (fs, ms) in [
        (FsFlags::ST_RDONLY, MsFlags::MS_RDONLY),
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if f.contains(fs) {
            flags |= ms;
        }
    }
    nix::mount::mount(None::<&str>, target, None::<&str>, flags, None::<&str>)
}

/// overlayfs through `fsopen`/`fsconfig`/`fsmount`/`move_mount` (rustix wraps them; nix does not).
fn fsconfig_overlay(
    lowers_top_first: &[PathBuf],
    options: &[(&str, String)],
    target: &Path,
) -> nix::Result<()> {
    use rustix::mount::{
        FsMountFlags, FsOpenFlags, MountAttrFlags, MoveMountFlags, fsconfig_create,
        fsconfig_set_flag, fsconfig_set_string, fsmount, fsopen, move_mount,
    };
    let errno = |e: rustix::io::Errno| Errno::from_raw(e.raw_os_error());
    let fs = fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC).map_err(errno)?;
    for lower in lowers_top_first {
        fsconfig_set_string(&fs, "lowerdir+", lower.as_path()).map_err(errno)?;
    }
    for (key, value) in options {
        if value.is_empty() {
            fsconfig_set_flag(&fs, *key).map_err(errno)?;
        } else {
            fsconfig_set_string(&fs, *key, value.as_str()).map_err(errno)?;
        }
    }
    fsconfig_create(&fs).map_err(errno)?;
    let mnt = fsmount(
        &fs,
        FsMountFlags::FSMOUNT_CLOEXEC,
        MountAttrFlags::MOUNT_ATTR_NODEV,
    )
    .map_err(errno)?;
    move_mount(
        &mnt,
        "",
        rustix::fs::CWD,
        target,
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )
    .map_err(errno)
}

/// One recorded call of [`RecordingSys`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    /// [`Sys::mount`].
    Mount {
        /// Source.
        source: Option<String>,
        /// Target.
        target: PathBuf,
        /// Filesystem type.
        fstype: Option<String>,
        /// Flags.
        flags: MsFlags,
        /// Options.
        data: Option<String>,
    },
    /// [`Sys::mount_overlay_layers`]: lowers, options, target.
    OverlayLayers(Vec<PathBuf>, Vec<(String, String)>, PathBuf),
    /// [`Sys::bind`].
    Bind(PathBuf, PathBuf, bool),
    /// [`Sys::remount_readonly`].
    RemountReadOnly(PathBuf),
    /// [`Sys::remount_nodev`].
    RemountNoDev(PathBuf),
    /// [`Sys::mkdir_all`].
    Mkdir(PathBuf, u32),
    /// [`Sys::create_file`].
    CreateFile(PathBuf),
    /// [`Sys::symlink`].
    Symlink(String, PathBuf),
    /// [`Sys::chdir`].
    Chdir(PathBuf),
    /// [`Sys::pivot_root`].
    PivotRoot(PathBuf),
    /// [`Sys::set_hostname`].
    Hostname(String),
    /// [`Sys::loopback_up`].
    LoopbackUp,
    /// [`Sys::drop_bounding_caps`].
    DropCaps(Vec<u32>),
    /// [`Sys::set_identity`].
    Identity(Identity, bool),
}

/// A fake [`Sys`] that records calls; `exists` answers from `existing`; `fail_on` makes the
/// matching call fail with `EPERM`.
#[derive(Debug, Default, Clone)]
pub struct RecordingSys {
    /// The calls made, in order.
    pub calls: Vec<Call>,
    /// Paths [`Sys::exists`] reports as present.
    pub existing: Vec<PathBuf>,
    /// A call that fails.
    pub fail_on: Option<Call>,
}

impl RecordingSys {
    fn record(&mut self, call: Call) -> nix::Result<()> {
        let fail = self.fail_on.as_ref() == Some(&call);
        self.calls.push(call);
        if fail { Err(Errno::EPERM) } else { Ok(()) }
    }
}

impl Sys for RecordingSys {
    fn mount(
        &mut self,
        source: Option<&str>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> nix::Result<()> {
        self.record(Call::Mount {
            source: source.map(str::to_string),
            target: target.to_path_buf(),
            fstype: fstype.map(str::to_string),
            flags,
            data: data.map(str::to_string),
        })
    }
    fn mount_overlay_layers(
        &mut self,
        lowers_top_first: &[PathBuf],
        options: &[(&str, String)],
        target: &Path,
    ) -> nix::Result<()> {
        self.record(Call::OverlayLayers(
            lowers_top_first.to_vec(),
            options
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            target.into(),
        ))
    }
    fn bind(&mut self, source: &Path, target: &Path, recursive: bool) -> nix::Result<()> {
        self.record(Call::Bind(source.into(), target.into(), recursive))
    }
    fn remount_readonly(&mut self, target: &Path) -> nix::Result<()> {
        self.record(Call::RemountReadOnly(target.into()))
    }
    fn remount_nodev(&mut self, target: &Path) -> nix::Result<()> {
        self.record(Call::RemountNoDev(target.into()))
    }
    fn exists(&mut self, path: &Path) -> bool {
        self.existing.iter().any(|p| p == path)
    }
    fn mkdir_all(&mut self, path: &Path, mode: u32) -> nix::Result<()> {
        self.record(Call::Mkdir(path.into(), mode))
    }
    fn create_file(&mut self, path: &Path) -> nix::Result<()> {
        self.record(Call::CreateFile(path.into()))
    }
    fn symlink(&mut self, target: &str, link: &Path) -> nix::Result<()> {
        self.record(Call::Symlink(target.into(), link.into()))
    }
    fn chdir(&mut self, path: &Path) -> nix::Result<()> {
        self.record(Call::Chdir(path.into()))
    }
    fn pivot_root(&mut self, new_root: &Path) -> nix::Result<()> {
        self.record(Call::PivotRoot(new_root.into()))
    }
    fn set_hostname(&mut self, name: &str) -> nix::Result<()> {
        self.record(Call::Hostname(name.into()))
    }
    fn loopback_up(&mut self) -> nix::Result<()> {
        self.record(Call::LoopbackUp)
    }
    fn drop_bounding_caps(&mut self, keep: &[u32]) -> nix::Result<()> {
        self.record(Call::DropCaps(keep.to_vec()))
    }
    fn set_identity(&mut self, id: &Identity, groups: bool) -> nix::Result<()> {
        self.record(Call::Identity(id.clone(), groups))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apply_translates_ops_to_calls() {
        let ops = vec![
            MountOp::MakeRootPrivate,
            MountOp::Bind {
                source: "/d".into(),
                target: "/m".into(),
                recursive: false,
            },
            MountOp::RemountReadOnly {
                target: "/m".into(),
            },
            MountOp::Mask {
                target: "/m/proc/kcore".into(),
                null: "/m/dev/null".into(),
            },
            MountOp::Mask {
                target: "/m/proc/keys".into(),
                null: "/m/dev/null".into(),
            },
            MountOp::PivotRoot {
                new_root: "/m".into(),
            },
        ];
        let mut sys = RecordingSys {
            existing: vec!["/m/proc/keys".into()],
            ..Default::default()
        };
        apply(&ops, &mut sys).unwrap();
        assert_eq!(
            sys.calls,
            vec![
                Call::Mount {
                    source: None,
                    target: "/".into(),
                    fstype: None,
                    flags: MsFlags::MS_REC | MsFlags::MS_PRIVATE,
                    data: None
                },
                Call::Bind("/d".into(), "/m".into(), false),
                Call::RemountReadOnly("/m".into()),
                // kcore is absent: not masked.
                Call::Bind("/m/dev/null".into(), "/m/proc/keys".into(), false),
                Call::PivotRoot("/m".into()),
            ]
        );
    }

    #[test]
    fn apply_stops_at_the_first_failure_and_names_it() {
        let ops = vec![
            MountOp::Bind {
                source: "/d".into(),
                target: "/m".into(),
                recursive: false,
            },
            MountOp::Mkdir {
                path: "/m/dev/pts".into(),
                mode: 0o755,
            },
            MountOp::PivotRoot {
                new_root: "/m".into(),
            },
        ];
        let mut sys = RecordingSys {
            fail_on: Some(Call::Mkdir("/m/dev/pts".into(), 0o755)),
            ..Default::default()
        };
        let e = apply(&ops, &mut sys).unwrap_err();
        assert_eq!(e.errno, Errno::EPERM);
        assert_eq!(sys.calls.len(), 2, "nothing after the failure");
        assert_eq!(
            e.to_string(),
            "creating directory /m/dev/pts: Operation not permitted"
        );
    }
}
