//! A control group per run: a pids limit and, on cgroup v1, a device allow list.
//!
//! As root, [`StepCgroup::create`] makes `strata-step-<pid>-<n>` under the caller's own cgroup
//! in each hierarchy it can use, and the sandbox's keeper process joins it before it makes any
//! namespace, so every process of the step is counted and restricted. It is removed when the
//! value drops (after the run, failed or not).
//!
//! - cgroup v1 (`/sys/fs/cgroup/{pids,devices}`): `pids.max`, and `devices.deny` = `a` then
//!   runc's default allow list ([`DEVICE_ALLOW`]): the step can open only `/dev/null`, `zero`,
//!   `full`, `random`, `urandom`, `tty`, `ptmx` and its pseudo-terminals, whatever device node
//!   an image ships.
//! - cgroup v2 (a `cgroup.controllers` file at the root): `pids.max` when the `pids` controller
//!   can be enabled for the caller's cgroup. Device control on v2 needs an eBPF program
//!   (`BPF_PROG_TYPE_CGROUP_DEVICE`), which strata does not load: there, `nodev` mounts and the
//!   missing `CAP_MKNOD` are the defence against device nodes.
//! - Rootless runs (a user namespace) cannot create cgroups: no limit, no device list.
//!
//! When a hierarchy is present but refuses the new group (a read-only `/sys/fs/cgroup` in a
//! container), the run goes on without it and a warning is logged.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The devices a step may use on cgroup v1 (runc's default list): `/dev/null`, `zero`, `full`,
/// `random`, `urandom`, `tty`, `ptmx` and every pseudo-terminal.
pub const DEVICE_ALLOW: [&str; 8] = [
    "c 1:3 rwm",
    "c 1:5 rwm",
    "c 1:7 rwm",
    "c 1:8 rwm",
    "c 1:9 rwm",
    "c 5:0 rwm",
    "c 5:2 rwm",
    "c 136:* rwm",
];

/// Where the cgroup hierarchies this process can use are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Layout {
    /// cgroup v1: the caller's directory in the `pids` and `devices` hierarchies, when mounted.
    V1 {
        pids: Option<PathBuf>,
        devices: Option<PathBuf>,
    },
    /// The unified hierarchy: the caller's directory.
    V2(PathBuf),
    /// No usable hierarchy.
    None,
}

/// The layout under `root` (normally `/sys/fs/cgroup`), for a process whose `/proc/self/cgroup`
/// reads `self_cgroup`.
pub(crate) fn layout(root: &Path, self_cgroup: &str) -> Layout {
    let own = |want: &str| {
        self_cgroup.lines().find_map(|line| {
            let mut parts = line.splitn(3, ':');
            let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
            let hit = if want.is_empty() {
                controllers.is_empty()
            } else {
                controllers.split(',').any(|c| c == want)
            };
            hit.then(|| {
                (
                    controllers.to_string(),
                    path.trim_start_matches('/').to_string(),
                )
            })
        })
    };
    if root.join("cgroup.controllers").exists() {
        return match own("") {
            Some((_, path)) => Layout::V2(root.join(path)),
            None => Layout::None,
        };
    }
    let v1 = |controller: &str| {
        let (mount, path) = own(controller)?;
        let dir = root.join(mount).join(path);
        dir.join("cgroup.procs").exists().then_some(dir)
    };
    match (v1("pids"), v1("devices")) {
        (None, None) => Layout::None,
        (pids, devices) => Layout::V1 { pids, devices },
    }
}

/// The control groups of one run; removed on drop.
#[derive(Debug, Default)]
pub(crate) struct StepCgroup {
    /// Directories made, each removed on drop.
    dirs: Vec<PathBuf>,
    /// The `pids.events` file and the limit, when the run is limited.
    pids: Option<(PathBuf, u32)>,
    /// Whether a device allow list applies.
    devices: bool,
}

fn write(path: &Path, value: &str) -> io::Result<()> {
    fs::write(path, value).map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))
}

impl StepCgroup {
    /// Make the run's groups with `pids_limit` (None: unlimited) in the hierarchies of
    /// `layout`. A hierarchy that refuses is skipped with a warning.
    pub(crate) fn create(layout: &Layout, pids_limit: Option<u32>) -> StepCgroup {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "strata-step-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let mut cg = StepCgroup::default();
        let attempt = |what: &str, r: io::Result<()>| {
            if let Err(e) = r {
                tracing::warn!("no {what} cgroup for this step: {e}");
            }
        };
        match layout {
            Layout::V1 { pids, devices } => {
                if let (Some(parent), Some(limit)) = (pids, pids_limit) {
                    let r = cg.make(parent, &name).and_then(|dir| {
                        write(&dir.join("pids.max"), &limit.to_string())?;
                        cg.pids = Some((dir.join("pids.events"), limit));
                        Ok(())
                    });
                    attempt("pids", r);
                }
                if let Some(parent) = devices {
                    let r = cg.make(parent, &name).and_then(|dir| {
                        write(&dir.join("devices.deny"), "a")?;
                        for rule in DEVICE_ALLOW {
                            write(&dir.join("devices.allow"), rule)?;
                        }
                        cg.devices = true;
                        Ok(())
                    });
                    attempt("devices", r);
                }
            }
            Layout::V2(parent) => {
                if let Some(limit) = pids_limit {
                    let r = enable_pids(parent)
                        .and_then(|()| cg.make(parent, &name))
                        .and_then(|dir| {
                            write(&dir.join("pids.max"), &limit.to_string())?;
                            cg.pids = Some((dir.join("pids.events"), limit));
                            Ok(())
                        });
                    attempt("pids", r);
                }
            }
            Layout::None => {}
        }
        cg
    }

    fn make(&mut self, parent: &Path, name: &str) -> io::Result<PathBuf> {
        let dir = parent.join(name);
        fs::create_dir(&dir)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", dir.display())))?;
        self.dirs.push(dir.clone());
        Ok(dir)
    }

    /// The `cgroup.procs` files a process writes its pid to, to join every group of the run.
    pub(crate) fn procs_files(&self) -> Vec<PathBuf> {
        self.dirs.iter().map(|d| d.join("cgroup.procs")).collect()
    }

    /// The pids limit in force, when there is one.
    pub(crate) fn pids_limit(&self) -> Option<u32> {
        self.pids.as_ref().map(|(_, l)| *l)
    }

    /// Whether a device allow list applies to the run.
    pub(crate) fn restricts_devices(&self) -> bool {
        self.devices
    }

    /// Whether a fork of the run failed because of the pids limit.
    pub(crate) fn pids_limit_hit(&self) -> bool {
        let Some((events, _)) = &self.pids else {
            return false;
        };
        fs::read_to_string(events).is_ok_and(|s| max_events(&s) > 0)
    }
}

/// The `max` count of a `pids.events` file.
fn max_events(text: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix("max "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

/// Make sure the caller's v2 cgroup hands the `pids` controller to its children.
fn enable_pids(parent: &Path) -> io::Result<()> {
    let control = parent.join("cgroup.subtree_control");
    let on = fs::read_to_string(&control)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", control.display())))?;
    if on.split_whitespace().any(|c| c == "pids") {
        return Ok(());
    }
    write(&control, "+pids")
}

impl Drop for StepCgroup {
    fn drop(&mut self) {
        for dir in self.dirs.iter().rev() {
            // The run's processes are gone once its keeper is reaped; a straggler still exiting
            // makes rmdir fail with EBUSY for a moment: kill what is listed and try again.
            let mut removed = false;
            for _ in 0..500 {
                match fs::remove_dir(dir) {
                    Ok(()) => {
                        removed = true;
                        break;
                    }
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {
                        removed = true;
                        break;
                    }
                    Err(_) => {
                        if let Ok(procs) = fs::read_to_string(dir.join("cgroup.procs")) {
                            for pid in procs.lines().filter_map(|l| l.trim().parse().ok()) {
                                let _ = nix::sys::signal::kill(
                                    nix::unistd::Pid::from_raw(pid),
                                    nix::sys::signal::Signal::SIGKILL,
                                );
                            }
                        }
                        std::thread::sleep(std::time::Duration::from_millis(10));
                    }
                }
            }
            if !removed {
                tracing::warn!("cannot remove the step's cgroup {}", dir.display());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_layout_finds_the_callers_pids_and_devices_groups() {
        let t = tempfile::tempdir().unwrap();
        for d in ["pids/user.slice", "devices", "cpu,cpuacct"] {
            fs::create_dir_all(t.path().join(d)).unwrap();
            fs::write(t.path().join(d).join("cgroup.procs"), "").unwrap();
        }
        let cg = "12:pids:/user.slice\n5:devices:/\n2:cpu,cpuacct:/\n0::/\n";
        assert_eq!(
            layout(t.path(), cg),
            Layout::V1 {
                pids: Some(t.path().join("pids/user.slice")),
                devices: Some(t.path().join("devices")),
            }
        );
        assert_eq!(layout(t.path(), "2:cpu,cpuacct:/\n"), Layout::None);
    }

    #[test]
    fn v2_layout_is_the_callers_unified_group() {
        let t = tempfile::tempdir().unwrap();
        fs::write(t.path().join("cgroup.controllers"), "pids").unwrap();
        assert_eq!(
            layout(t.path(), "0::/build.slice/x\n"),
            Layout::V2(t.path().join("build.slice/x"))
        );
    }

    #[test]
    fn v1_groups_get_the_limit_and_the_device_list_and_go_away() {
        let t = tempfile::tempdir().unwrap();
        let (pids, devices) = (t.path().join("pids"), t.path().join("devices"));
        fs::create_dir_all(&pids).unwrap();
        fs::create_dir_all(&devices).unwrap();
        let layout = Layout::V1 {
            pids: Some(pids.clone()),
            devices: Some(devices.clone()),
        };
        let cg = StepCgroup::create(&layout, Some(64));
        assert_eq!(cg.pids_limit(), Some(64));
        assert!(cg.restricts_devices());
        let dirs = cg.dirs.clone();
        assert_eq!(dirs.len(), 2);
        assert_eq!(fs::read_to_string(dirs[0].join("pids.max")).unwrap(), "64");
        // A plain directory keeps the last write only: the last allow rule.
        assert_eq!(
            fs::read_to_string(dirs[1].join("devices.deny")).unwrap(),
            "a"
        );
        assert_eq!(
            fs::read_to_string(dirs[1].join("devices.allow")).unwrap(),
            "c 136:* rwm"
        );
        assert!(!cg.pids_limit_hit());
        fs::write(dirs[0].join("pids.events"), "max 3\n").unwrap();
        assert!(cg.pids_limit_hit());
        // Real cgroup directories vanish with rmdir; these hold files, so empty them first.
        for d in &dirs {
            for f in fs::read_dir(d).unwrap() {
                fs::remove_file(f.unwrap().path()).unwrap();
            }
        }
        drop(cg);
        assert!(dirs.iter().all(|d| !d.exists()));
    }

    #[test]
    fn unlimited_pids_make_no_pids_group() {
        let t = tempfile::tempdir().unwrap();
        let layout = Layout::V1 {
            pids: Some(t.path().to_path_buf()),
            devices: None,
        };
        let cg = StepCgroup::create(&layout, None);
        assert!(cg.procs_files().is_empty());
        assert_eq!(max_events("max 0\n"), 0);
    }
}
