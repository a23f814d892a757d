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
//! bounding set keeps Docker's default capabilities minus `CAP_MKNOD` and `CAP_NET_RAW` (no
//! `CAP_SYS_ADMIN`: no mount, no remount of the read-only binds; no raw sockets); `/proc/sys`,
//! `/proc/sysrq-trigger`, `/proc/irq`, `/proc/bus` are read-only, `/proc/kcore` and friends
//! masked, `/sys` read-only.
//!
//! - **Network.** By default ([`Network::Private`]) the command has its own network namespace
//!   with outbound access through `slirp4netns` (without host loopback): it cannot reach the
//!   host's 127.0.0.1 services, abstract Unix sockets or ports, nor see the host's traffic.
//!   [`Network::Host`] is the explicit opt-in to the host's namespace (as
//!   `docker build --network host`); [`Network::None`] has only `lo`.
//! - **Devices.** `/dev` is a small tmpfs with `null`, `zero`, `full`, `random`, `urandom`, `tty`
//!   bound from the host, a new devpts and `shm`. The root, `/dev` itself and every bind, cache
//!   and secret mount are `nodev`, so a device node shipped in a layer cannot be opened; with no
//!   `CAP_MKNOD` none can be made; as root on cgroup v1 a `devices` cgroup allows only runc's
//!   default list ([`DEVICE_ALLOW`]). On cgroup v2 there is no device program: `nodev` and the
//!   missing `CAP_MKNOD` are the defence.
//! - **Limits.** As root, each run gets a pids cgroup with [`SandboxSpec::pids_limit`] (default
//!   [`DEFAULT_PIDS_LIMIT`]); reaching it fails the run ([`SandboxError::PidsLimit`]). The
//!   cgroups are removed after the run. Rootless runs cannot make cgroups: no limit. No memory
//!   limit, as in BuildKit's default.
//! - **System calls.** A seccomp filter (see `seccomp.rs`) refuses what Docker's default profile
//!   refuses past the capabilities: new user namespaces, the kernel keyring, bpf,
//!   perf_event_open, userfaultfd, io_uring, and the mount API.

#![deny(missing_docs)]

mod cgroup;
pub mod changes;
pub mod copy;
pub mod error;
mod network;
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

pub use cgroup::DEVICE_ALLOW;
pub use changes::{Change, CtimeMark, diff_tree, map_owners, upper_changes};
pub use error::SandboxError;
pub use network::SLIRP_DNS;
pub use output::{Discard, Output, Stream, Tail, ToWriter};
pub use plan::{MountOp, MountPlan, Mountpoint, PlanEnv, RootMount, overlay_options, plan_mounts};
pub use run::{Cancel, ExitStatus, Isolation, RootMode, RunOutcome, run};
pub use spec::{
    DEFAULT_PIDS_LIMIT, ExtraMount, Identity, Network, RootFs, SandboxSpec, SecretBytes, Stdin,
    Strategy,
};
pub use sys::{LinuxSys, RecordingSys, Sys, apply};
pub use user::{GroupLine, PasswdLine, ResolvedUser, parse_group, parse_passwd, resolve_user};
pub use view::LayerView;
pub use whiteout::{
    LowerForm, LowerReport, XattrNamespace, oci_whiteouts_to_overlay, settle_as_lower,
};
