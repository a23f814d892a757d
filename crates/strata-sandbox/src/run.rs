//! Running a command in the sandbox: the outcome types and [`run`], which prepares the root,
//! plans the mounts ([`crate::plan`]) and runs the processes.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use nix::sys::signal::Signal;

use crate::changes::{Change, CtimeMark, diff_tree, map_owners, upper_changes};
use crate::copy::copy_view;
use crate::error::SandboxError;
use crate::output::Output;
use crate::plan::{PlanEnv, RootMount, plan_mounts};
use crate::prepare::{Created, WorkDir, make_mountpoint_layer, write_state_files};
use crate::process::execute;
use crate::spec::{RootFs, SandboxSpec, Strategy};
use crate::view::LayerView;

/// A cancellation flag shared with the caller's Ctrl-C handler: once set, the sandbox is killed.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    /// A fresh, unset flag.
    pub fn new() -> Self {
        Cancel::default()
    }

    /// Wrap an existing flag.
    pub fn from_flag(flag: Arc<AtomicBool>) -> Self {
        Cancel(flag)
    }

    /// Ask every running sandbox using this flag to stop.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether [`Cancel::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// How the command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// It exited with this code.
    Code(i32),
    /// It was killed by this signal.
    Signal(i32),
}

impl ExitStatus {
    /// Exit code 0.
    pub fn success(self) -> bool {
        self == ExitStatus::Code(0)
    }
}

impl std::fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExitStatus::Code(c) => write!(f, "exited with code {c}"),
            ExitStatus::Signal(s) => match Signal::try_from(*s) {
                Ok(sig) => write!(f, "was killed by signal {s} ({sig})"),
                Err(_) => write!(f, "was killed by signal {s}"),
            },
        }
    }
}

/// How the root filesystem was realised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RootMode {
    /// overlayfs: the changes are in the upper directory.
    Overlay,
    /// A private copy of the layers in the upper directory, diffed afterwards.
    Copy,
    /// A [`RootFs::Dir`] used in place.
    Direct,
}

/// The isolation a run got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Isolation {
    /// How the root was realised.
    pub root: RootMode,
    /// In a user namespace mapping the caller to root (the caller is not root).
    pub user_namespace: bool,
}

/// A successful run.
#[derive(Debug)]
pub struct RunOutcome {
    /// How the command ended (always success: failures are [`SandboxError::CommandFailed`]).
    pub status: ExitStatus,
    /// The last lines of output.
    pub tail: Vec<String>,
    /// The isolation used (also logged at info level when it is a fallback).
    pub isolation: Isolation,
    /// Mount points the sandbox had to create inside a [`RootFs::Dir`] root (or the private copy),
    /// as relative paths; they were removed again (and their parents' times restored) after the
    /// run. Empty for overlay roots: their mount points live in a separate top lower layer (the
    /// "mountpoints layer") and never reach the upper directory.
    pub created_mountpoints: Vec<PathBuf>,
    lowers: Option<LayerView>,
    root: PathBuf,
    mark: Option<CtimeMark>,
    host_ids: (u32, u32),
}

impl RunOutcome {
    /// The changes the command made, for an overlay root (from the upper directory or the diff of
    /// the private copy). Entries' `source` paths point into the upper directory.
    pub fn changes(&self) -> Result<Vec<Change>, SandboxError> {
        let mut changes = match (self.isolation.root, &self.lowers) {
            (RootMode::Overlay, _) => upper_changes(&self.root)?,
            (RootMode::Copy, Some(lowers)) => diff_tree(lowers, &self.root, self.mark)?,
            _ => {
                return Err(SandboxError::InvalidSpec(
                    "a directory root used in place has no record of its changes".into(),
                ));
            }
        };
        if self.isolation.user_namespace {
            map_owners(&mut changes, self.host_ids.0, self.host_ids.1);
        }
        Ok(changes)
    }
}

/// Run `spec`'s command, streaming its output to `output`, until it ends or `cancel` is set.
/// A non-zero exit is [`SandboxError::CommandFailed`] with the command, status and output tail.
pub fn run(
    spec: &SandboxSpec,
    output: &mut dyn Output,
    cancel: &Cancel,
) -> Result<RunOutcome, SandboxError> {
    spec.validate()?;
    let rootless = !nix::unistd::geteuid().is_root();
    let host_ids = (
        nix::unistd::geteuid().as_raw(),
        nix::unistd::getegid().as_raw(),
    );
    if rootless && (spec.user.uid != 0 || spec.user.gid != 0) {
        return Err(SandboxError::Unsupported(format!(
            "running as uid {} needs root: without it only root is mapped in the user namespace",
            spec.user.uid
        )));
    }
    let root_mode = choose_root(spec)?;
    let isolation = Isolation {
        root: root_mode,
        user_namespace: rootless,
    };
    if root_mode == RootMode::Copy || rootless {
        tracing::info!(
            ?isolation,
            "sandbox fallback: {}{}",
            if root_mode == RootMode::Copy {
                "overlayfs unavailable, using a private copy of the root"
            } else {
                "overlayfs"
            },
            if rootless { " in a user namespace" } else { "" }
        );
    }

    let scratch = spec.scratch_dir.clone().unwrap_or_else(std::env::temp_dir);
    let state = tempfile::Builder::new()
        .prefix("strata-sandbox-")
        .tempdir_in(&scratch)
        .map_err(|e| SandboxError::io(&scratch, e))?;
    let st = state.path().to_path_buf();
    let io = |p: &Path| {
        let p = p.to_path_buf();
        move |e| SandboxError::io(p, e)
    };

    let mut lowers = None;
    let mut mark = None;
    let mut work_guard = None;
    let (view, env, root_dir) = match (&spec.rootfs, root_mode) {
        (
            RootFs::Overlay {
                lowers: l,
                upper,
                work,
            },
            RootMode::Overlay,
        ) => {
            fs::create_dir_all(upper).map_err(io(upper))?;
            fs::create_dir_all(work).map_err(io(work))?;
            // A fresh overlay work directory per run (a volatile one cannot be mounted twice),
            // inside the caller's, so on the upper's filesystem; removed after the run.
            let run_work = tempfile::Builder::new()
                .prefix("run-")
                .tempdir_in(work)
                .map_err(io(work))?;
            let work = run_work.path().to_path_buf();
            work_guard = Some(WorkDir(run_work));
            let layer = st.join("mountpoints");
            let merged = st.join("merged");
            fs::create_dir(&layer).map_err(io(&layer))?;
            fs::create_dir(&merged).map_err(io(&merged))?;
            let mut top_first = vec![layer];
            top_first.extend(l.iter().rev().cloned());
            let env = PlanEnv {
                root: RootMount::Overlay {
                    lowers_top_first: top_first,
                    upper: upper.clone(),
                    work: work.clone(),
                    userxattr: rootless,
                },
                merged,
                state: st.clone(),
                rootless,
            };
            lowers = Some(LayerView::new(l));
            // Mount targets resolve in the merged view, the upper included (it is normally
            // empty, but a reused one must not redirect a mount through its symlinks).
            let mut stack = l.clone();
            stack.push(upper.clone());
            (LayerView::new(&stack), env, upper.clone())
        }
        (
            RootFs::Overlay {
                lowers: l, upper, ..
            },
            _,
        ) => {
            fs::create_dir_all(upper).map_err(io(upper))?;
            if fs::read_dir(upper).map_err(io(upper))?.next().is_some() {
                return Err(SandboxError::InvalidSpec(format!(
                    "upper directory {} is not empty",
                    upper.display()
                )));
            }
            let view = LayerView::new(l);
            copy_view(&view, upper)?;
            let m = st.join("mark");
            fs::write(&m, b"").map_err(io(&m))?;
            mark = Some(CtimeMark::of(&m).map_err(io(&m))?);
            lowers = Some(view);
            let env = PlanEnv {
                root: RootMount::Bind(upper.clone()),
                merged: upper.clone(),
                state: st.clone(),
                rootless,
            };
            (LayerView::single(upper), env, upper.clone())
        }
        (RootFs::Dir(dir), _) => {
            let env = PlanEnv {
                root: RootMount::Bind(dir.clone()),
                merged: dir.clone(),
                state: st.clone(),
                rootless,
            };
            (LayerView::single(dir), env, dir.clone())
        }
    };

    let plan = plan_mounts(spec, &view, &env)?;
    write_state_files(spec, &env)?;
    let created = match root_mode {
        RootMode::Overlay => {
            let RootMount::Overlay {
                lowers_top_first, ..
            } = &env.root
            else {
                unreachable!("overlay root mode has an overlay root mount")
            };
            make_mountpoint_layer(&view, &lowers_top_first[0], &plan.mountpoints)?;
            Created::default()
        }
        RootMode::Copy | RootMode::Direct => Created::make(&root_dir, &plan.mountpoints)?,
    };

    let result = execute(spec, &plan.ops, rootless, host_ids, output, cancel);
    let created_mountpoints = created.undo(&root_dir);
    drop(state);
    drop(work_guard);
    let created_mountpoints = created_mountpoints?;
    let (status, tail) = match result {
        Err(SandboxError::RootMount { message, .. })
            if spec.strategy == Strategy::Auto && root_mode == RootMode::Overlay =>
        {
            // The probe's filesystem took an overlay but this one does not: nothing ran and
            // nothing was written, so start over with a private copy.
            tracing::info!(
                %message,
                "sandbox fallback: overlayfs refused this root, using a private copy"
            );
            let mut copy = spec.clone();
            copy.strategy = Strategy::Copy;
            return run(&copy, output, cancel);
        }
        other => other?,
    };
    Ok(RunOutcome {
        status,
        tail,
        isolation,
        created_mountpoints,
        lowers,
        root: root_dir,
        mark,
        host_ids,
    })
}

fn choose_root(spec: &SandboxSpec) -> Result<RootMode, SandboxError> {
    let RootFs::Overlay { .. } = spec.rootfs else {
        return Ok(RootMode::Direct);
    };
    match spec.strategy {
        Strategy::Overlay => Ok(RootMode::Overlay),
        Strategy::Copy => Ok(RootMode::Copy),
        Strategy::Auto => {
            let caps = crate::probe::capabilities();
            if caps.overlay {
                Ok(RootMode::Overlay)
            } else if caps.namespaces {
                Ok(RootMode::Copy)
            } else {
                Err(SandboxError::Unsupported(
                    "this process cannot create mount and PID namespaces (nor a user namespace); \
                     a build step cannot be isolated here"
                        .into(),
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_status_reads_well() {
        assert_eq!(ExitStatus::Code(3).to_string(), "exited with code 3");
        assert_eq!(
            ExitStatus::Signal(9).to_string(),
            "was killed by signal 9 (SIGKILL)"
        );
    }
}
