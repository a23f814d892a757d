//! Run a command in a root filesystem, isolated from the host, and collect what it changed.
//!
//! The main entry point is [`run()`]: it takes a [`SandboxSpec`] (plain data: the root's layers,
//! the command, environment, user, mounts, network) and returns a [`RunOutcome`] whose
//! [`RunOutcome::changes`] lists the new layer's [`Change`]s.
//!
//! The key design decision, after youki: everything the sandbox will mount is computed first as
//! plain data ([`plan_mounts`] → [`MountOp`]s), then performed through the [`Sys`] trait inside
//! the sandbox's own mount namespace, so plans are unit-tested with [`RecordingSys`] and no root,
//! and nothing is ever mounted in the caller's namespace.
//!
//! Mount points missing from an overlay root (`/proc`, `/dev`, `/etc/resolv.conf`,
//! `/run/secrets/<id>`, ...) are created in a separate top lower directory, the *mountpoints
//! layer*, so they never reach the upper directory and the builder has nothing to filter. A
//! [`RootFs::Dir`] root (and the private-copy fallback) gets them in place: they are listed in
//! [`RunOutcome::created_mountpoints`] and removed after the run.
//!
//! Lower layer directories hold whiteouts in overlayfs' form; [`oci_whiteouts_to_overlay`]
//! converts an extracted OCI layer's `.wh.` files to it.
//!
//! When overlayfs or namespaces are missing ([`probe::capabilities`]), [`Strategy::Auto`] falls
//! back to a private copy of the layers diffed afterwards ([`diff_tree`]); as non-root the sandbox
//! runs in a user namespace mapping the caller to root.
//!
//! # What a command can and cannot do
//! It sees only the merged root and its declared mounts (after `pivot_root` the old root is
//! detached); every process it starts dies with the step (PID namespace); every mount lives in
//! the sandbox's mount namespace and vanishes with it, on success, failure or cancellation. The
//! bounding set keeps Docker's default capabilities minus `CAP_MKNOD` (no `CAP_SYS_ADMIN`: no
//! mount, no remount of the read-only binds); `/proc/sys`, `/proc/sysrq-trigger`, `/proc/irq`,
//! `/proc/bus` are read-only, `/proc/kcore` and friends masked, `/sys` read-only. Limits: with the
//! host network (the default, as in `docker build`) the step reaches the host's loopback services
//! and abstract Unix sockets. A seccomp filter (see `seccomp.rs`) refuses what Docker's default
//! profile refuses past the capabilities: new user namespaces, the kernel keyring, bpf,
//! perf_event_open, userfaultfd, and the mount API. There is no cgroup (memory, pids) limit, as
//! in BuildKit's default.

#![deny(missing_docs)]

pub mod changes;
pub mod copy;
pub mod error;
pub mod output;
pub mod plan;
mod prepare;
pub mod probe;
mod process;
pub mod run;
mod seccomp;
pub mod spec;
pub mod sys;
pub mod user;
pub mod view;
pub mod whiteout;

pub use changes::{Change, CtimeMark, diff_tree, map_owners, upper_changes};
pub use error::SandboxError;
pub use output::{Discard, Output, Stream, Tail, ToWriter};
pub use plan::{MountOp, MountPlan, Mountpoint, PlanEnv, RootMount, overlay_options, plan_mounts};
pub use run::{Cancel, ExitStatus, Isolation, RootMode, RunOutcome, run};
pub use spec::{ExtraMount, Identity, Network, RootFs, SandboxSpec, SecretBytes, Stdin, Strategy};
pub use sys::{LinuxSys, RecordingSys, Sys, apply};
pub use user::{GroupLine, PasswdLine, ResolvedUser, parse_group, parse_passwd, resolve_user};
pub use view::LayerView;
pub use whiteout::{XattrNamespace, oci_whiteouts_to_overlay};
