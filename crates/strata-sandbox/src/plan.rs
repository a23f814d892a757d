//! Every mount of a sandbox, computed as plain data before anything is mounted.
//!
//! [`plan_mounts`] reads the root's layers (to resolve mount targets inside the root and find
//! which mount points are missing) but changes nothing; [`crate::sys::apply`] then performs the
//! [`MountOp`]s through a [`crate::sys::Sys`], inside the sandbox's own mount namespace.

use std::path::{Path, PathBuf};

use nix::mount::MsFlags;

use crate::error::SandboxError;
use crate::spec::{ExtraMount, Network, SandboxSpec};
use crate::view::{LayerView, clean};

/// Longest mount data the kernel accepts in one page, with room to spare.
const MAX_MOUNT_DATA: usize = 4000;

/// Device nodes bound from the host into the sandbox's `/dev`.
pub const DEVICES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

/// `/proc` paths made read-only (as runc does).
const PROC_READONLY: [&str; 4] = ["sys", "sysrq-trigger", "irq", "bus"];

/// `/proc` files hidden behind `/dev/null` when present (as runc does).
const PROC_MASKED: [&str; 5] = [
    "kcore",
    "keys",
    "timer_list",
    "latency_stats",
    "sched_debug",
];

/// One mount-related step, in the sandbox's mount namespace, before `pivot_root`.
/// Paths are host paths (under the merged root).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountOp {
    /// `mount --make-rprivate /`: nothing propagates back to the host.
    MakeRootPrivate,
    /// A filesystem mount (`overlay`, `proc`, `tmpfs`, `devpts`, `sysfs`).
    Mount {
        /// Source (the filesystem type for virtual filesystems).
        source: String,
        /// Mount point.
        target: PathBuf,
        /// Filesystem type.
        fstype: String,
        /// `MS_*` flags.
        flags: MsFlags,
        /// Filesystem options.
        data: Option<String>,
    },
    /// An overlay with more layers than `mount(2)`'s one page of options can name, through the
    /// new mount API (`fsopen`, one `fsconfig` `lowerdir+` per layer; Linux 6.8+), with the same
    /// options as [`overlay_options`], mounted `nodev` like every root.
    OverlayManyLayers {
        /// Lower directories, top first.
        lowers_top_first: Vec<PathBuf>,
        /// The upper directory.
        upper: PathBuf,
        /// The work directory.
        work: PathBuf,
        /// Use `userxattr`.
        userxattr: bool,
        /// Mount point.
        target: PathBuf,
    },
    /// A bind mount.
    Bind {
        /// What to bind.
        source: PathBuf,
        /// Where.
        target: PathBuf,
        /// With submounts (`MS_REC`).
        recursive: bool,
    },
    /// Make an existing bind mount read-only and `nodev` (keeping the flags it already has).
    RemountReadOnly {
        /// The mount point.
        target: PathBuf,
    },
    /// Make an existing bind mount `nodev` (keeping the flags it already has): device nodes
    /// under it cannot be opened.
    RemountNoDev {
        /// The mount point.
        target: PathBuf,
    },
    /// Bind `target` onto itself read-only, when it exists.
    ReadOnlyIfExists {
        /// The path to protect.
        target: PathBuf,
    },
    /// Bind the sandbox's `/dev/null` over `target` when it exists.
    Mask {
        /// The path to hide.
        target: PathBuf,
        /// The sandbox's `/dev/null` (host path, under the merged root).
        null: PathBuf,
    },
    /// Create a directory and its parents, inside an already mounted tmpfs.
    Mkdir {
        /// The directory.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// Create an empty file (a mount point), inside an already mounted tmpfs.
    CreateFile {
        /// The file.
        path: PathBuf,
    },
    /// Create a symlink.
    Symlink {
        /// What the link points to.
        target: String,
        /// The link.
        link: PathBuf,
    },
    /// Change directory (overlay layer paths may be relative to it).
    Chdir {
        /// The directory.
        path: PathBuf,
    },
    /// `pivot_root` into `new_root` and detach the old root entirely.
    PivotRoot {
        /// The merged root.
        new_root: PathBuf,
    },
}

/// How the root filesystem is mounted at the merged path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootMount {
    /// overlayfs over `lowers_top_first` (the mountpoints layer first, then the image's layers
    /// top to bottom).
    Overlay {
        /// Lower directories, top first (overlayfs' `lowerdir` order).
        lowers_top_first: Vec<PathBuf>,
        /// The upper directory.
        upper: PathBuf,
        /// The work directory.
        work: PathBuf,
        /// Use `userxattr` (overlay in a user namespace).
        userxattr: bool,
    },
    /// A directory bound onto itself (the merged path is the directory).
    Bind(PathBuf),
}

/// Where things are for one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanEnv {
    /// How the root is mounted.
    pub root: RootMount,
    /// Where the root appears (the overlay mount point, or the directory itself).
    pub merged: PathBuf,
    /// The sandbox's private state directory: `resolv.conf`, `hosts`, `secrets/<n>`.
    pub state: PathBuf,
    /// Running in a user namespace (as non-root): sysfs is bound, devpts has no `gid=5`.
    pub rootless: bool,
}

impl PlanEnv {
    /// The host file holding secret number `index` of the spec's mounts.
    pub fn secret_file(&self, index: usize) -> PathBuf {
        self.state.join("secrets").join(index.to_string())
    }
}

/// A mount point missing from the root, to create before mounting (in the mountpoints layer, or
/// in the directory itself, recorded and removed afterwards).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mountpoint {
    /// Clean relative path in the root.
    pub path: String,
    /// A directory (else an empty file).
    pub dir: bool,
}

/// The result of planning: what to create first, then what to mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountPlan {
    /// Missing mount points, parents first.
    pub mountpoints: Vec<Mountpoint>,
    /// Mount steps, in order.
    pub ops: Vec<MountOp>,
}

/// The overlay mount options for `lowers_top_first`, `upper` and `work`: redirects neither
/// created nor followed (`redirect_dir=nofollow`: `off` means `follow` on kernels built with
/// `redirect_always_follow`, which `userxattr` rejects), metacopy and index off, so the upper
/// directory is a plain tree of whole files, whiteouts and opaque markers (a renamed lower
/// directory is copied whole: `rename` gets `EXDEV` and tools fall back to copying), and
/// `volatile`: no `syncfs` of the upper filesystem at unmount (a step's upper directory is read
/// right after the run and thrown away after a crash; syncing the whole filesystem per step
/// costs milliseconds when idle and seconds on a busy build machine). A volatile work directory
/// cannot be mounted again: use a fresh one per run.
///
/// When the absolute paths do not fit in one page, they are made relative to their common
/// parent, returned as the directory to change into first; `Ok(None)` when even that does not
/// fit (the plan then uses the new mount API, one `lowerdir+` per layer).
pub fn overlay_options(
    lowers_top_first: &[PathBuf],
    upper: &Path,
    work: &Path,
    userxattr: bool,
) -> Result<Option<(Option<PathBuf>, String)>, SandboxError> {
    let all = || {
        lowers_top_first
            .iter()
            .map(PathBuf::as_path)
            .chain([upper, work])
    };
    for p in all() {
        let s = p.to_string_lossy();
        if s.contains([',', ':', '\\']) || p.to_str().is_none() {
            return Err(SandboxError::InvalidSpec(format!(
                "overlay layer path {} contains ',', ':', '\\' or non-UTF-8 bytes",
                p.display()
            )));
        }
    }
    let build = |base: Option<&Path>| {
        let show = |p: &Path| match base {
            Some(b) => p
                .strip_prefix(b)
                .unwrap_or(p)
                .to_string_lossy()
                .into_owned(),
            None => p.to_string_lossy().into_owned(),
        };
        let lowers: Vec<String> = lowers_top_first.iter().map(|p| show(p)).collect();
        let mut s = format!(
            "lowerdir={},upperdir={},workdir={},redirect_dir=nofollow,metacopy=off,index=off,volatile",
            lowers.join(":"),
            show(upper),
            show(work)
        );
        if userxattr {
            s.push_str(",userxattr");
        }
        s
    };
    let absolute = build(None);
    if absolute.len() <= MAX_MOUNT_DATA {
        return Ok(Some((None, absolute)));
    }
    let mut base = upper.parent().unwrap_or(Path::new("/")).to_path_buf();
    while !all().all(|p| p.starts_with(&base)) {
        base = base.parent().unwrap_or(Path::new("/")).to_path_buf();
    }
    let relative = build(Some(&base));
    if relative.len() <= MAX_MOUNT_DATA && base != Path::new("/") {
        return Ok(Some((Some(base), relative)));
    }
    Ok(None)
}

/// What a mount target must be.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Dir,
    File,
}

/// Plan every mount of `spec` for a root seen through `view` (the image's layers, or the
/// directory) and mounted as `env` says.
pub fn plan_mounts(
    spec: &SandboxSpec,
    view: &LayerView,
    env: &PlanEnv,
) -> Result<MountPlan, SandboxError> {
    spec.validate()?;
    let mut planner = Planner {
        view,
        merged: &env.merged,
        mountpoints: Vec::new(),
    };
    let m = |rel: &str| env.merged.join(rel);
    let mut ops = vec![MountOp::MakeRootPrivate];

    // The root.
    match &env.root {
        RootMount::Overlay {
            lowers_top_first,
            upper,
            work,
            userxattr,
        } => match overlay_options(lowers_top_first, upper, work, *userxattr)? {
            Some((cwd, data)) => {
                if let Some(path) = cwd {
                    ops.push(MountOp::Chdir { path });
                }
                ops.push(MountOp::Mount {
                    source: "overlay".into(),
                    target: env.merged.clone(),
                    fstype: "overlay".into(),
                    // Device nodes shipped in a layer stay in it but cannot be opened.
                    flags: MsFlags::MS_NODEV,
                    data: Some(data),
                });
            }
            None => ops.push(MountOp::OverlayManyLayers {
                lowers_top_first: lowers_top_first.clone(),
                upper: upper.clone(),
                work: work.clone(),
                userxattr: *userxattr,
                target: env.merged.clone(),
            }),
        },
        RootMount::Bind(dir) => {
            ops.push(MountOp::Bind {
                source: dir.clone(),
                target: env.merged.clone(),
                recursive: false,
            });
            ops.push(MountOp::RemountNoDev {
                target: env.merged.clone(),
            });
        }
    }

    // /proc, /dev, /sys.
    let proc_ = planner.target("/proc", Kind::Dir)?;
    let dev = planner.target("/dev", Kind::Dir)?;
    let sys = planner.target("/sys", Kind::Dir)?;
    ops.push(MountOp::Mount {
        source: "proc".into(),
        target: m(&proc_),
        fstype: "proc".into(),
        flags: MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        data: None,
    });
    for p in PROC_READONLY {
        ops.push(MountOp::ReadOnlyIfExists {
            target: m(&proc_).join(p),
        });
    }
    let devdir = m(&dev);
    ops.push(MountOp::Mount {
        source: "tmpfs".into(),
        target: devdir.clone(),
        fstype: "tmpfs".into(),
        // nodev too: the device nodes below are binds, mounts of their own with the host
        // /dev's flags, and devpts is its own mount.
        flags: MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_STRICTATIME,
        data: Some("mode=755,size=65536k".into()),
    });
    for d in DEVICES {
        ops.push(MountOp::CreateFile {
            path: devdir.join(d),
        });
        ops.push(MountOp::Bind {
            source: Path::new("/dev").join(d),
            target: devdir.join(d),
            recursive: false,
        });
    }
    ops.push(MountOp::Mkdir {
        path: devdir.join("pts"),
        mode: 0o755,
    });
    let mut pts = String::from("newinstance,ptmxmode=0666,mode=0620");
    if !env.rootless {
        pts.push_str(",gid=5");
    }
    ops.push(MountOp::Mount {
        source: "devpts".into(),
        target: devdir.join("pts"),
        fstype: "devpts".into(),
        flags: MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        data: Some(pts),
    });
    ops.push(MountOp::Symlink {
        target: "pts/ptmx".into(),
        link: devdir.join("ptmx"),
    });
    ops.push(MountOp::Mkdir {
        path: devdir.join("shm"),
        mode: 0o1777,
    });
    ops.push(MountOp::Mount {
        source: "shm".into(),
        target: devdir.join("shm"),
        fstype: "tmpfs".into(),
        flags: MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        data: Some("mode=1777,size=65536k".into()),
    });
    for (link, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        ops.push(MountOp::Symlink {
            target: target.into(),
            link: devdir.join(link),
        });
    }
    for p in PROC_MASKED {
        ops.push(MountOp::Mask {
            target: m(&proc_).join(p),
            null: devdir.join("null"),
        });
    }
    if env.rootless && spec.network == Network::Host {
        // sysfs can only be mounted by the owner of the network namespace.
        ops.push(MountOp::Bind {
            source: "/sys".into(),
            target: m(&sys),
            recursive: true,
        });
        ops.push(MountOp::RemountReadOnly { target: m(&sys) });
    } else {
        ops.push(MountOp::Mount {
            source: "sysfs".into(),
            target: m(&sys),
            fstype: "sysfs".into(),
            flags: MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            data: None,
        });
    }

    // The host's resolver configuration and hosts, as read-only copies.
    if spec.host_files {
        for name in ["resolv.conf", "hosts"] {
            let rel = planner.target(&format!("/etc/{name}"), Kind::File)?;
            ops.push(MountOp::Bind {
                source: env.state.join(name),
                target: m(&rel),
                recursive: false,
            });
            ops.push(MountOp::RemountReadOnly { target: m(&rel) });
        }
    }

    // Extra mounts, parents first.
    let mut order: Vec<usize> = (0..spec.mounts.len()).collect();
    order.sort_by_key(|&i| clean(&spec.mounts[i].target()).split('/').count());
    // Mounted targets that others may nest in: (clean rel, is a tmpfs).
    let mut mounted: Vec<(String, bool)> = vec![(dev.clone(), true)];
    for i in order {
        let mount = &spec.mounts[i];
        let lexical = clean(&mount.target());
        let kind = match mount {
            ExtraMount::Bind { source, .. } => {
                if source.is_dir() {
                    Kind::Dir
                } else if source.exists() {
                    Kind::File
                } else {
                    return Err(SandboxError::io(
                        source,
                        std::io::Error::from(std::io::ErrorKind::NotFound),
                    ));
                }
            }
            ExtraMount::Cache { .. } | ExtraMount::Tmpfs { .. } => Kind::Dir,
            ExtraMount::Secret { .. } => Kind::File,
        };
        let parent = mounted
            .iter()
            .filter(|(t, _)| lexical.starts_with(&format!("{t}/")))
            .max_by_key(|(t, _)| t.len())
            .cloned();
        let rel = match parent {
            Some((_, true)) => {
                let target = m(&lexical);
                if kind == Kind::File
                    && let Some(dir) = target.parent()
                {
                    ops.push(MountOp::Mkdir {
                        path: dir.to_path_buf(),
                        mode: 0o755,
                    });
                }
                ops.push(match kind {
                    Kind::Dir => MountOp::Mkdir {
                        path: target,
                        mode: 0o755,
                    },
                    Kind::File => MountOp::CreateFile { path: target },
                });
                lexical
            }
            Some((t, false)) => {
                return Err(SandboxError::InvalidSpec(format!(
                    "mount target {} lies inside the mount at /{t}; nest mounts only in a tmpfs",
                    mount.target()
                )));
            }
            None => planner.target(&mount.target(), kind)?,
        };
        let target = m(&rel);
        match mount {
            ExtraMount::Bind {
                source, readonly, ..
            } => {
                ops.push(MountOp::Bind {
                    source: source.clone(),
                    target: target.clone(),
                    recursive: false,
                });
                ops.push(if *readonly {
                    MountOp::RemountReadOnly { target }
                } else {
                    MountOp::RemountNoDev { target }
                });
            }
            ExtraMount::Cache { dir, .. } => {
                ops.push(MountOp::Bind {
                    source: dir.clone(),
                    target: target.clone(),
                    recursive: false,
                });
                ops.push(MountOp::RemountNoDev { target });
            }
            ExtraMount::Tmpfs { size, .. } => {
                let mut data = String::from("mode=1777");
                if let Some(size) = size {
                    data.push_str(&format!(",size={size}"));
                }
                ops.push(MountOp::Mount {
                    source: "tmpfs".into(),
                    target,
                    fstype: "tmpfs".into(),
                    flags: MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
                    data: Some(data),
                });
            }
            ExtraMount::Secret { .. } => {
                ops.push(MountOp::Bind {
                    source: env.secret_file(i),
                    target: target.clone(),
                    recursive: false,
                });
                ops.push(MountOp::RemountReadOnly { target });
            }
        }
        mounted.push((rel, matches!(mount, ExtraMount::Tmpfs { .. })));
    }

    ops.push(MountOp::PivotRoot {
        new_root: env.merged.clone(),
    });
    Ok(MountPlan {
        mountpoints: planner.mountpoints,
        ops,
    })
}

struct Planner<'a> {
    view: &'a LayerView,
    merged: &'a Path,
    mountpoints: Vec<Mountpoint>,
}

impl Planner<'_> {
    /// Resolve `target` inside the root and note the mount points it lacks; returns the clean
    /// relative path to mount on.
    fn target(&mut self, target: &str, kind: Kind) -> Result<String, SandboxError> {
        let io = |e| SandboxError::io(self.merged.join(clean(target)), e);
        let rel = self.view.resolve(target).map_err(io)?;
        if rel.is_empty() {
            return Err(SandboxError::InvalidSpec(format!(
                "mount target {target} resolves to /"
            )));
        }
        let parts: Vec<&str> = rel.split('/').collect();
        for n in 1..=parts.len() {
            let path = parts[..n].join("/");
            let last = n == parts.len();
            match self.view.entry(&path).map_err(io)? {
                Some(e) => {
                    let is_dir = e.metadata.is_dir();
                    let ok = if !last || kind == Kind::Dir {
                        is_dir
                    } else {
                        !is_dir
                    };
                    if !ok {
                        let want = if !last || kind == Kind::Dir {
                            "a directory"
                        } else {
                            "a file"
                        };
                        return Err(SandboxError::InvalidSpec(format!(
                            "cannot mount at {target}: /{path} in the image is not {want}"
                        )));
                    }
                }
                None => {
                    let dir = !last || kind == Kind::Dir;
                    if !self.mountpoints.iter().any(|m| m.path == path) {
                        self.mountpoints.push(Mountpoint { path, dir });
                    }
                }
            }
        }
        Ok(rel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{RootFs, SecretBytes};
    use std::fs;

    fn image() -> (tempfile::TempDir, LayerView) {
        let t = tempfile::tempdir().unwrap();
        let l = t.path().join("l0");
        for d in ["etc", "proc", "usr/lib", "var/cache"] {
            fs::create_dir_all(l.join(d)).unwrap();
        }
        fs::write(l.join("etc/hosts"), "").unwrap();
        std::os::unix::fs::symlink("/usr/lib", l.join("lib")).unwrap();
        let view = LayerView::new(&[l]);
        (t, view)
    }

    fn env(rootless: bool) -> PlanEnv {
        PlanEnv {
            root: RootMount::Overlay {
                lowers_top_first: vec!["/s/mp".into(), "/s/l1".into(), "/s/l0".into()],
                upper: "/s/up".into(),
                work: "/s/work".into(),
                userxattr: rootless,
            },
            merged: "/s/m".into(),
            state: "/s/state".into(),
            rootless,
        }
    }

    fn spec() -> SandboxSpec {
        SandboxSpec::new(RootFs::Dir("/unused".into()), vec!["true".into()])
    }

    #[test]
    fn overlay_options_order_lowers_and_disable_redirects() {
        let (cwd, data) = overlay_options(
            &["/a/top".into(), "/a/bottom".into()],
            Path::new("/a/up"),
            Path::new("/a/work"),
            false,
        )
        .unwrap()
        .unwrap();
        assert_eq!(cwd, None);
        assert_eq!(
            data,
            "lowerdir=/a/top:/a/bottom,upperdir=/a/up,workdir=/a/work,\
             redirect_dir=nofollow,metacopy=off,index=off,volatile"
        );
        assert!(
            overlay_options(&["/a:b".into()], Path::new("/u"), Path::new("/w"), false).is_err()
        );
    }

    #[test]
    fn long_overlay_options_become_relative_then_use_the_new_mount_api() {
        let base = format!("/var/lib/strata/{}", "x".repeat(60));
        let lowers: Vec<PathBuf> = (0..45)
            .map(|i| PathBuf::from(format!("{base}/snapshots/{i:064}")))
            .collect();
        let upper = PathBuf::from(format!("{base}/run/up"));
        let work = PathBuf::from(format!("{base}/run/work"));
        let (cwd, data) = overlay_options(&lowers, &upper, &work, true)
            .unwrap()
            .unwrap();
        assert_eq!(cwd, Some(PathBuf::from(&base)));
        assert!(
            data.starts_with(&format!("lowerdir=snapshots/{:064}:", 0)),
            "{data}"
        );
        assert!(data.ends_with(
            ",upperdir=run/up,workdir=run/work,redirect_dir=nofollow,metacopy=off,index=off,volatile,userxattr"
        ));
        let many: Vec<PathBuf> = (0..200)
            .map(|i| format!("{base}/snapshots/{i:064}").into())
            .collect();
        assert_eq!(overlay_options(&many, &upper, &work, false).unwrap(), None);
        let env = PlanEnv {
            root: RootMount::Overlay {
                lowers_top_first: many.clone(),
                upper: upper.clone(),
                work: work.clone(),
                userxattr: false,
            },
            merged: "/s/m".into(),
            state: "/s/state".into(),
            rootless: false,
        };
        let t = tempfile::tempdir().unwrap();
        let plan = plan_mounts(&spec(), &LayerView::single(t.path()), &env).unwrap();
        assert_eq!(
            plan.ops[1],
            MountOp::OverlayManyLayers {
                lowers_top_first: many,
                upper,
                work,
                userxattr: false,
                target: "/s/m".into()
            }
        );
    }

    #[test]
    fn plan_mounts_the_standard_filesystems_in_order() {
        let (_t, view) = image();
        let plan = plan_mounts(&spec(), &view, &env(false)).unwrap();
        // Missing in the image: /dev, /sys, /etc/resolv.conf (/proc and /etc/hosts exist).
        assert_eq!(
            plan.mountpoints,
            vec![
                Mountpoint {
                    path: "dev".into(),
                    dir: true
                },
                Mountpoint {
                    path: "sys".into(),
                    dir: true
                },
                Mountpoint {
                    path: "etc/resolv.conf".into(),
                    dir: false
                },
            ]
        );
        let ops = &plan.ops;
        assert_eq!(ops[0], MountOp::MakeRootPrivate);
        assert_eq!(
            ops[1],
            MountOp::Mount {
                source: "overlay".into(),
                target: "/s/m".into(),
                fstype: "overlay".into(),
                flags: MsFlags::MS_NODEV,
                data: Some(
                    "lowerdir=/s/mp:/s/l1:/s/l0,upperdir=/s/up,workdir=/s/work,\
                     redirect_dir=nofollow,metacopy=off,index=off,volatile"
                        .into()
                ),
            }
        );
        assert!(
            matches!(&ops[2], MountOp::Mount { fstype, target, .. } if fstype == "proc" && target == Path::new("/s/m/proc"))
        );
        assert!(ops.contains(&MountOp::Bind {
            source: "/dev/urandom".into(),
            target: "/s/m/dev/urandom".into(),
            recursive: false
        }));
        assert!(ops.contains(&MountOp::Symlink {
            target: "pts/ptmx".into(),
            link: "/s/m/dev/ptmx".into()
        }));
        let pts = ops
            .iter()
            .position(|o| matches!(o, MountOp::Mount { fstype, .. } if fstype == "devpts"))
            .unwrap();
        let dev = ops
            .iter()
            .position(
                |o| matches!(o, MountOp::Mount { target, .. } if target == Path::new("/s/m/dev")),
            )
            .unwrap();
        assert!(dev < pts, "/dev before /dev/pts");
        assert!(
            matches!(&ops[pts], MountOp::Mount { data: Some(d), .. } if d.contains("newinstance") && d.contains("gid=5"))
        );
        let resolv = MountOp::Bind {
            source: "/s/state/resolv.conf".into(),
            target: "/s/m/etc/resolv.conf".into(),
            recursive: false,
        };
        let at = ops.iter().position(|o| *o == resolv).unwrap();
        assert_eq!(
            ops[at + 1],
            MountOp::RemountReadOnly {
                target: "/s/m/etc/resolv.conf".into()
            }
        );
        assert!(ops.contains(&MountOp::Mount {
            source: "sysfs".into(),
            target: "/s/m/sys".into(),
            fstype: "sysfs".into(),
            flags: MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            data: None
        }));
        assert_eq!(
            ops.last(),
            Some(&MountOp::PivotRoot {
                new_root: "/s/m".into()
            })
        );
    }

    #[test]
    fn every_mount_a_command_reaches_is_nodev_but_the_device_binds() {
        // See issue 13: device nodes shipped in a layer must not open.
        let (_t, view) = image();
        let src = tempfile::tempdir().unwrap();
        let mut s = spec();
        s.mounts = vec![
            ExtraMount::Bind {
                source: src.path().into(),
                target: "/rw".into(),
                readonly: false,
            },
            ExtraMount::Bind {
                source: src.path().into(),
                target: "/ro".into(),
                readonly: true,
            },
            ExtraMount::Cache {
                dir: "/host/cache".into(),
                target: "/cache".into(),
            },
        ];
        let mut dir_env = env(false);
        dir_env.root = RootMount::Bind("/s/dir".into());
        for env in [env(false), env(true), dir_env] {
            let plan = plan_mounts(&s, &view, &env).unwrap();
            let ops = &plan.ops;
            let mut remounted: Vec<&Path> = Vec::new();
            for op in ops {
                match op {
                    MountOp::RemountNoDev { target } | MountOp::RemountReadOnly { target } => {
                        remounted.push(target)
                    }
                    MountOp::Mount {
                        fstype,
                        flags,
                        target,
                        ..
                    } => assert!(
                        fstype == "devpts" || flags.contains(MsFlags::MS_NODEV),
                        "{fstype} on {} is not nodev",
                        target.display()
                    ),
                    _ => {}
                }
            }
            for op in ops {
                if let MountOp::Bind { source, target, .. } = op {
                    let device = source.starts_with("/dev/");
                    assert!(
                        device || remounted.contains(&target.as_path()),
                        "the bind on {} is not made nodev",
                        target.display()
                    );
                }
            }
        }
    }

    #[test]
    fn rootless_plans_bind_sysfs_and_devpts_without_gid() {
        let (_t, view) = image();
        let mut host = spec();
        host.network = Network::Host;
        let plan = plan_mounts(&host, &view, &env(true)).unwrap();
        assert!(plan.ops.contains(&MountOp::Bind {
            source: "/sys".into(),
            target: "/s/m/sys".into(),
            recursive: true
        }));
        // With a network namespace of its own (the default), the sandbox owns sysfs.
        let own = plan_mounts(&spec(), &view, &env(true)).unwrap();
        assert!(
            own.ops
                .iter()
                .any(|o| matches!(o, MountOp::Mount { fstype, .. } if fstype == "sysfs"))
        );
        assert!(plan.ops.iter().any(|o| matches!(o, MountOp::Mount { fstype, data: Some(d), .. } if fstype == "devpts" && !d.contains("gid"))));
        assert!(plan.ops.iter().any(
            |o| matches!(o, MountOp::Mount { data: Some(d), .. } if d.ends_with(",userxattr"))
        ));
    }

    #[test]
    fn extra_mounts_resolve_inside_the_root_and_nest_in_tmpfs() {
        let (_t, view) = image();
        let src = tempfile::tempdir().unwrap();
        let mut s = spec();
        s.host_files = false;
        s.mounts = vec![
            ExtraMount::Tmpfs {
                target: "/scratch/deep".into(),
                size: None,
            },
            ExtraMount::Cache {
                dir: "/host/cache".into(),
                target: "/lib/apt".into(),
            },
            ExtraMount::Tmpfs {
                target: "/scratch".into(),
                size: Some(1 << 20),
            },
            ExtraMount::Bind {
                source: src.path().into(),
                target: "/ctx".into(),
                readonly: true,
            },
            ExtraMount::Secret {
                id: "tok".into(),
                content: SecretBytes(b"s".to_vec()),
                target: None,
                uid: 0,
                gid: 0,
                mode: 0o400,
            },
        ];
        let plan = plan_mounts(&s, &view, &env(false)).unwrap();
        let paths: Vec<&str> = plan.mountpoints.iter().map(|m| m.path.as_str()).collect();
        // /lib -> /usr/lib: the cache lands in usr/lib/apt; /scratch/deep is made inside the tmpfs.
        assert_eq!(
            paths,
            [
                "dev",
                "sys",
                "scratch",
                "ctx",
                "usr/lib/apt",
                "run",
                "run/secrets",
                "run/secrets/tok"
            ]
        );
        assert!(
            !plan
                .mountpoints
                .iter()
                .find(|m| m.path == "run/secrets/tok")
                .unwrap()
                .dir
        );
        let ops = &plan.ops;
        let pos = |op: &MountOp| {
            ops.iter()
                .position(|o| o == op)
                .unwrap_or_else(|| panic!("{op:?} missing"))
        };
        let scratch = pos(&MountOp::Mount {
            source: "tmpfs".into(),
            target: "/s/m/scratch".into(),
            fstype: "tmpfs".into(),
            flags: MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            data: Some("mode=1777,size=1048576".into()),
        });
        let mkdir = pos(&MountOp::Mkdir {
            path: "/s/m/scratch/deep".into(),
            mode: 0o755,
        });
        assert!(scratch < mkdir);
        let cache = pos(&MountOp::Bind {
            source: "/host/cache".into(),
            target: "/s/m/usr/lib/apt".into(),
            recursive: false,
        });
        assert_eq!(
            ops[cache + 1],
            MountOp::RemountNoDev {
                target: "/s/m/usr/lib/apt".into()
            }
        );
        let ctx = pos(&MountOp::Bind {
            source: src.path().into(),
            target: "/s/m/ctx".into(),
            recursive: false,
        });
        assert_eq!(
            ops[ctx + 1],
            MountOp::RemountReadOnly {
                target: "/s/m/ctx".into()
            }
        );
        let secret = pos(&MountOp::Bind {
            source: "/s/state/secrets/4".into(),
            target: "/s/m/run/secrets/tok".into(),
            recursive: false,
        });
        assert_eq!(
            ops[secret + 1],
            MountOp::RemountReadOnly {
                target: "/s/m/run/secrets/tok".into()
            }
        );
    }

    #[test]
    fn bad_targets_fail_clearly() {
        let (_t, view) = image();
        let mut s = spec();
        s.mounts = vec![ExtraMount::Secret {
            id: "x".into(),
            content: SecretBytes(vec![]),
            target: Some("/etc".into()),
            uid: 0,
            gid: 0,
            mode: 0o400,
        }];
        let e = plan_mounts(&s, &view, &env(false)).unwrap_err().to_string();
        assert!(e.contains("/etc") && e.contains("not a file"), "{e}");
        let mut s = spec();
        s.mounts = vec![
            ExtraMount::Cache {
                dir: "/c".into(),
                target: "/a".into(),
            },
            ExtraMount::Tmpfs {
                target: "/a/b".into(),
                size: None,
            },
        ];
        let e = plan_mounts(&s, &view, &env(false)).unwrap_err().to_string();
        assert!(e.contains("inside the mount at /a"), "{e}");
    }
}
