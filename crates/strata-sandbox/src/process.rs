//! Running a command in the sandbox: processes, namespaces, output, cancellation.
//!
//! Processes: the caller forks a *keeper* that joins the run's control groups (see
//! [`crate::cgroup`]), unshares the namespaces (mount, PID, UTS, IPC, network unless
//! [`Network::Host`], user when not root) and forks the PID namespace's *init*. For
//! [`Network::Private`] the keeper then tells the caller (a pipe) that its network namespace
//! exists and waits; the caller starts `slirp4netns` on the keeper's pid, waits for its ready
//! signal (another pipe), and lets the keeper go on: the command never starts before its network
//! is up. `slirp4netns` stops when the caller closes its exit pipe after the run. Init
//! performs the mount plan, `pivot_root`s, sets the hostname, drops capabilities from the bounding
//! set and forks the *command*, which takes its identity, changes directory and `execve`s. Init
//! reaps every process and exits when the command does; the kernel then kills whatever is left in
//! the namespace, and the mount namespace, with every sandbox mount, disappears with its last
//! process. The keeper and init die with their parent (`PR_SET_PDEATHSIG`), so cancelling (or the
//! caller dying) tears everything down. Nothing is ever mounted in the caller's namespace.
//!
//! The forked children allocate (glibc's `fork` keeps `malloc` usable) but take no other lock.

use std::ffi::CString;
use std::fs;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sched::CloneFlags;
use nix::sys::signal::{SigSet, SigmaskHow, Signal, kill};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid};
use rustix::event::{PollFd, PollFlags, Timespec};

use crate::cgroup::StepCgroup;
use crate::error::SandboxError;
use crate::output::{Output, Stream, Tail};
use crate::plan::MountOp;
use crate::run::{Cancel, ExitStatus};
use crate::spec::{Identity, Network, SandboxSpec, Stdin};
use crate::sys::{KEPT_CAPS, LinuxSys, Sys, apply};

/// Everything the children need, prepared before forking.
struct ChildPlan<'a> {
    ops: &'a [MountOp],
    hostname: &'a str,
    identity: &'a Identity,
    rootless: bool,
    host_ids: (u32, u32),
    /// A network namespace of its own (with `lo` up).
    new_netns: bool,
    /// Wait for the caller's go (slirp4netns is up) after unsharing.
    wait_for_network: bool,
    /// `cgroup.procs` files the keeper joins first.
    cgroup_procs: Vec<CString>,
    argv: Vec<CString>,
    env: Vec<CString>,
    candidates: Vec<CString>,
    cwd: CString,
    cwd_display: &'a str,
    /// Built before forking; installed by the command's process.
    seccomp: crate::seccomp::Filter,
    /// stdin, stdout and stderr are a terminal: make it the command's controlling terminal.
    tty: bool,
}

const FD_REPORT: RawFd = 3;
/// The keeper writes a byte here once its network namespace exists.
const FD_NETNS_READY: RawFd = 4;
/// The keeper reads a byte here before going on (the network is up).
const FD_NETWORK_GO: RawFd = 5;

fn cstr(s: &str) -> Result<CString, SandboxError> {
    CString::new(s).map_err(|_| SandboxError::InvalidSpec(format!("NUL byte in {s:?}")))
}

pub(crate) fn execute(
    spec: &SandboxSpec,
    ops: &[MountOp],
    rootless: bool,
    host_ids: (u32, u32),
    output: &mut dyn Output,
    cancel: &Cancel,
) -> Result<(ExitStatus, Vec<String>), SandboxError> {
    let command = spec.command_line();
    let slirp_bin = if spec.network == Network::Private {
        Some(crate::network::slirp4netns().ok_or(SandboxError::NoSlirp)?)
    } else {
        None
    };
    let cgroup = if rootless {
        StepCgroup::default()
    } else {
        let self_cgroup = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        StepCgroup::create(
            &crate::cgroup::layout(std::path::Path::new("/sys/fs/cgroup"), &self_cgroup),
            spec.pids_limit,
        )
    };
    tracing::debug!(
        pids_limit = ?cgroup.pids_limit(),
        devices = cgroup.restricts_devices(),
        "the run's cgroups"
    );
    let env = spec.effective_env();
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(crate::spec::DEFAULT_PATH);
    let argv0 = &spec.argv[0];
    let candidates = if argv0.contains('/') {
        vec![cstr(argv0)?]
    } else {
        path.split(':')
            .map(|d| if d.is_empty() { "." } else { d })
            .map(|d| cstr(&format!("{}/{argv0}", d.trim_end_matches('/'))))
            .collect::<Result<_, _>>()?
    };
    let child = ChildPlan {
        ops,
        hostname: &spec.hostname,
        identity: &spec.user,
        rootless,
        host_ids,
        new_netns: spec.network != Network::Host,
        wait_for_network: spec.network == Network::Private,
        cgroup_procs: cgroup
            .procs_files()
            .iter()
            .map(|p| cstr(&p.to_string_lossy()))
            .collect::<Result<_, _>>()?,
        argv: spec
            .argv
            .iter()
            .map(|a| cstr(a))
            .collect::<Result<_, _>>()?,
        env: env.iter().map(|e| cstr(e)).collect::<Result<_, _>>()?,
        candidates,
        cwd: cstr(&spec.cwd)?,
        cwd_display: &spec.cwd,
        seccomp: crate::seccomp::filter(),
        tty: spec.tty,
    };

    let pipe = || nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| SandboxError::sys("pipe", e));
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let (rep_r, rep_w) = pipe()?;
    // For the private network: the keeper's "namespace made" and the caller's "network up".
    let (netns_r, netns_w) = pipe()?;
    let (go_r, go_w) = pipe()?;
    let stdin = match spec.stdin {
        Stdin::Null => nix::fcntl::open(
            "/dev/null",
            OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(|e| SandboxError::sys("open /dev/null", e))?,
        Stdin::Inherit => {
            nix::unistd::dup(std::io::stdin()).map_err(|e| SandboxError::sys("dup stdin", e))?
        }
    };
    // With a terminal, its slave end is the command's stdin, stdout and stderr, and its master
    // end is read in place of the stdout pipe (the stderr pipe just closes).
    let terminal = if spec.tty {
        Some(open_terminal(matches!(spec.stdin, Stdin::Inherit))?)
    } else {
        None
    };
    let (stdin, out_w, err_w, out_r) = match terminal {
        Some((master, slave)) => {
            // The pipes' ends are closed here, so the stderr pipe reads as closed at once.
            drop((stdin, out_w, err_w, out_r));
            let dup = |fd: &OwnedFd| {
                nix::unistd::dup(fd).map_err(|e| SandboxError::sys("dup the terminal", e))
            };
            (dup(&slave)?, dup(&slave)?, slave, master)
        }
        None => (stdin, out_w, err_w, out_r),
    };
    let parent = nix::unistd::getpid();

    // SAFETY: the child runs `keeper`, which never returns (it ends with `_exit`).
    let keeper_pid = match unsafe { nix::unistd::fork() } {
        Err(e) => return Err(SandboxError::sys("fork", e)),
        Ok(ForkResult::Child) => {
            let fds = [&stdin, &out_w, &err_w, &rep_w, &netns_w, &go_r].map(|f| f.as_raw_fd());
            let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                keeper(&child, parent, fds)
            }))
            .unwrap_or(101);
            // SAFETY: leave the forked child without running the parent's destructors.
            unsafe { libc::_exit(code) }
        }
        Ok(ForkResult::Parent { child }) => child,
    };
    drop((out_w, err_w, rep_w, stdin, netns_w, go_r));
    let _slirp = match slirp_bin {
        Some(bin) => {
            match crate::network::start(&bin, &netns_r, keeper_pid, rootless) {
                Ok(slirp) => {
                    // None: the keeper ended before making its namespace, and reports why.
                    if slirp.is_some() {
                        write_fd(go_w.as_raw_fd(), b"g");
                    }
                    slirp
                }
                Err(e) => {
                    let _ = kill(keeper_pid, Signal::SIGKILL);
                    let _ = waitpid(keeper_pid, None);
                    return Err(e);
                }
            }
        }
        None => None,
    };
    drop((go_w, netns_r));

    let mut tail = Tail::new(spec.tail_lines);
    let killed = pump(&[out_r, err_r], keeper_pid, output, &mut tail, cancel);
    let keeper_status = loop {
        match waitpid(keeper_pid, None) {
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(SandboxError::sys("waitpid", e)),
            Ok(status) => break status,
        }
    };
    let tail = tail.finish();
    let report = read_all(&rep_r);
    let (error, status) = parse_report(&report);
    if killed {
        return Err(SandboxError::Cancelled { command });
    }
    if let Some(limit) = cgroup.pids_limit()
        && cgroup.pids_limit_hit()
    {
        return Err(SandboxError::PidsLimit {
            command,
            limit,
            tail,
        });
    }
    if let Some(Reported {
        root_mount,
        message,
    }) = error
    {
        if root_mount {
            return Err(SandboxError::RootMount { command, message });
        }
        return Err(SandboxError::Setup { command, message });
    }
    match status {
        Some(s) if s.success() => Ok((s, tail)),
        Some(status) => Err(SandboxError::CommandFailed {
            command,
            status,
            tail,
        }),
        None => Err(SandboxError::Setup {
            command,
            message: match keeper_status {
                WaitStatus::Signaled(_, sig, _) => format!("the sandbox was killed by {sig}"),
                other => format!("the sandbox's init process ended without a report ({other:?})"),
            },
        }),
    }
}

/// A new pseudo-terminal (master, slave) the size of the caller's, when it has one. With
/// `forward_stdin`, a thread copies the caller's stdin into the master until either ends.
fn open_terminal(forward_stdin: bool) -> Result<(OwnedFd, OwnedFd), SandboxError> {
    // The caller's size when its stdout is a terminal, otherwise 80x24.
    let size = match rustix::termios::tcgetwinsize(std::io::stdout()) {
        Ok(w) => libc::winsize {
            ws_row: w.ws_row,
            ws_col: w.ws_col,
            ws_xpixel: w.ws_xpixel,
            ws_ypixel: w.ws_ypixel,
        },
        Err(_) => libc::winsize {
            ws_row: 24,
            ws_col: 80,
            ws_xpixel: 0,
            ws_ypixel: 0,
        },
    };
    let pty = nix::pty::openpty(Some(&size), None).map_err(|e| SandboxError::sys("openpty", e))?;
    for fd in [&pty.master, &pty.slave] {
        nix::fcntl::fcntl(
            fd,
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
        )
        .map_err(|e| SandboxError::sys("fcntl", e))?;
    }
    if forward_stdin {
        let master =
            nix::unistd::dup(&pty.master).map_err(|e| SandboxError::sys("dup the terminal", e))?;
        std::thread::spawn(move || {
            let mut to = std::fs::File::from(master);
            let _ = std::io::copy(&mut std::io::stdin().lock(), &mut to);
        });
    }
    Ok((pty.master, pty.slave))
}

/// Forward output until both pipes close; kill the keeper when cancelled. Returns whether it
/// was killed.
fn pump(
    fds: &[OwnedFd; 2],
    keeper: Pid,
    output: &mut dyn Output,
    tail: &mut Tail,
    cancel: &Cancel,
) -> bool {
    let mut open = [true, true];
    let mut killed = false;
    let mut buf = vec![0u8; 64 << 10];
    while open.iter().any(|o| *o) {
        if cancel.is_cancelled() && !killed {
            let _ = kill(keeper, Signal::SIGKILL);
            killed = true;
        }
        let streams: Vec<usize> = (0..2).filter(|i| open[*i]).collect();
        let mut pfds: Vec<PollFd<'_>> = streams
            .iter()
            .map(|i| PollFd::new(&fds[*i], PollFlags::IN))
            .collect();
        let tick = Timespec {
            tv_sec: 0,
            tv_nsec: 100_000_000,
        };
        match rustix::event::poll(&mut pfds, Some(&tick)) {
            Ok(0) | Err(rustix::io::Errno::INTR) => continue,
            Ok(_) => {}
            Err(_) => break,
        }
        let ready: Vec<bool> = pfds.iter().map(|p| !p.revents().is_empty()).collect();
        for (k, i) in streams.into_iter().enumerate() {
            if !ready[k] {
                continue;
            }
            match nix::unistd::read(&fds[i], &mut buf) {
                Ok(0) => open[i] = false,
                Ok(n) => {
                    let stream = if i == 0 {
                        Stream::Stdout
                    } else {
                        Stream::Stderr
                    };
                    output.output(stream, &buf[..n]);
                    tail.push(stream, &buf[..n]);
                }
                Err(Errno::EINTR) | Err(Errno::EAGAIN) => {}
                Err(_) => open[i] = false,
            }
        }
    }
    killed
}

fn read_all(fd: &OwnedFd) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match nix::unistd::read(fd, &mut buf) {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(Errno::EINTR) => continue,
            Err(_) => return out,
        }
    }
}

/// A setup failure reported from inside the sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Reported {
    /// Mounting the root filesystem itself failed.
    root_mount: bool,
    message: String,
}

/// Report records: `E` (or `R`, the root mount failed) + u32 length + message; `S` + kind
/// (0 code, 1 signal) + i32.
fn parse_report(mut b: &[u8]) -> (Option<Reported>, Option<ExitStatus>) {
    let (mut error, mut status) = (None, None);
    while let Some((&tag, rest)) = b.split_first() {
        match tag {
            b'E' | b'R' if rest.len() >= 4 => {
                let n = u32::from_le_bytes(rest[..4].try_into().unwrap_or_default()) as usize;
                let msg = &rest[4..(4 + n).min(rest.len())];
                error.get_or_insert_with(|| Reported {
                    root_mount: tag == b'R',
                    message: String::from_utf8_lossy(msg).into_owned(),
                });
                b = &rest[(4 + n).min(rest.len())..];
            }
            b'S' if rest.len() >= 5 => {
                let v = i32::from_le_bytes(rest[1..5].try_into().unwrap_or_default());
                status = Some(if rest[0] == 0 {
                    ExitStatus::Code(v)
                } else {
                    ExitStatus::Signal(v)
                });
                b = &rest[5..];
            }
            _ => break,
        }
    }
    (error, status)
}

fn report_error(msg: &str) {
    report(b'E', msg)
}

fn report(tag: u8, msg: &str) {
    let mut rec = Vec::with_capacity(msg.len() + 5);
    rec.push(tag);
    rec.extend_from_slice(&(msg.len() as u32).to_le_bytes());
    rec.extend_from_slice(msg.as_bytes());
    write_fd(FD_REPORT, &rec);
}

fn report_status(s: ExitStatus) {
    let (kind, v) = match s {
        ExitStatus::Code(c) => (0u8, c),
        ExitStatus::Signal(sig) => (1u8, sig),
    };
    let mut rec = vec![b'S', kind];
    rec.extend_from_slice(&v.to_le_bytes());
    write_fd(FD_REPORT, &rec);
}

fn write_fd(fd: RawFd, mut bytes: &[u8]) {
    while !bytes.is_empty() {
        // SAFETY: writing a valid buffer to a file descriptor we own.
        let n = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
        if n < 0 && Errno::last() == Errno::EINTR {
            continue;
        }
        if n <= 0 {
            return;
        }
        bytes = &bytes[n as usize..];
    }
}

/// Write this process's user namespace maps: root inside is `uid`/`gid` outside.
pub(crate) fn write_id_maps(uid: u32, gid: u32) -> std::io::Result<()> {
    fs::write("/proc/self/setgroups", b"deny")?;
    fs::write("/proc/self/uid_map", format!("0 {uid} 1"))?;
    fs::write("/proc/self/gid_map", format!("0 {gid} 1"))
}

/// The keeper: namespaces, then init. Returns its exit code.
fn keeper(plan: &ChildPlan<'_>, parent: Pid, fds: [RawFd; 6]) -> i32 {
    if nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).is_err() || nix::unistd::getppid() != parent
    {
        return 1;
    }
    // Terminal signals are the caller's to handle (it cancels, or dies and takes us along).
    for sig in [Signal::SIGINT, Signal::SIGQUIT, Signal::SIGTSTP] {
        // SAFETY: setting a signal to be ignored.
        let _ = unsafe { nix::sys::signal::signal(sig, nix::sys::signal::SigHandler::SigIgn) };
    }
    // stdin, stdout, stderr, report, netns ready, network go: 0..=5; everything else closed.
    // The sources are first moved above the targets, so no dup2 overwrites a later source.
    let mut high = [0; 6];
    for (i, fd) in fds.iter().enumerate() {
        // SAFETY: duplicating a descriptor of this process to a free one above 5.
        high[i] = unsafe { libc::fcntl(*fd, libc::F_DUPFD_CLOEXEC, 6) };
        if high[i] < 0 {
            return 1;
        }
    }
    for (target, fd) in high.iter().enumerate() {
        // SAFETY: dup2 onto the low descriptors; the sources stay open until close_range.
        if unsafe { libc::dup2(*fd, target as RawFd) } < 0 {
            return 1;
        }
    }
    // SAFETY: fcntl and close_range on descriptors of this process.
    unsafe {
        for fd in [FD_REPORT, FD_NETNS_READY, FD_NETWORK_GO] {
            libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
        }
        libc::close_range(6, libc::c_uint::MAX, 0);
    }
    // Into the run's control groups before anything else, so every process of it counts.
    let pid = std::process::id().to_string();
    for procs in &plan.cgroup_procs {
        if let Err(e) = fs::write(procs.to_string_lossy().as_ref(), &pid) {
            report_error(&format!(
                "joining the cgroup {}: {e}",
                procs.to_string_lossy()
            ));
            return 1;
        }
    }
    let mut flags = CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWPID
        | CloneFlags::CLONE_NEWUTS
        | CloneFlags::CLONE_NEWIPC;
    if plan.new_netns {
        flags |= CloneFlags::CLONE_NEWNET;
    }
    if plan.rootless {
        flags |= CloneFlags::CLONE_NEWUSER;
    }
    if let Err(e) = nix::sched::unshare(flags) {
        report_error(&format!("creating namespaces: {}", e.desc()));
        return 1;
    }
    if plan.rootless
        && let Err(e) = write_id_maps(plan.host_ids.0, plan.host_ids.1)
    {
        report_error(&format!("mapping the user namespace: {e}"));
        return 1;
    }
    // SAFETY: closing and reading descriptors of this process.
    unsafe {
        if plan.wait_for_network {
            // The namespace exists: the caller starts slirp4netns on our pid, then says go.
            write_fd(FD_NETNS_READY, b"n");
            libc::close(FD_NETNS_READY);
            let mut go = [0u8; 1];
            let n = loop {
                let n = libc::read(FD_NETWORK_GO, go.as_mut_ptr().cast(), 1);
                if n < 0 && Errno::last() == Errno::EINTR {
                    continue;
                }
                break n;
            };
            libc::close(FD_NETWORK_GO);
            if n != 1 {
                // The caller could not start the network and reports why itself.
                return 1;
            }
        } else {
            libc::close(FD_NETNS_READY);
            libc::close(FD_NETWORK_GO);
        }
    }
    let (life_r, life_w) = match nix::unistd::pipe2(OFlag::O_CLOEXEC) {
        Ok(p) => p,
        Err(e) => {
            report_error(&format!("pipe: {}", e.desc()));
            return 1;
        }
    };
    // SAFETY: the child runs `init`, which ends with `_exit`.
    match unsafe { nix::unistd::fork() } {
        Err(e) => {
            report_error(&format!("fork: {}", e.desc()));
            1
        }
        Ok(ForkResult::Child) => {
            drop(life_w);
            let code = init(plan, life_r.as_raw_fd());
            // SAFETY: leave without running destructors.
            unsafe { libc::_exit(code) }
        }
        Ok(ForkResult::Parent { child }) => {
            drop(life_r);
            // `life_w` stays open until the keeper exits.
            let _life = life_w;
            // SAFETY: closing our copies of the pipes; init holds its own.
            unsafe {
                libc::close(1);
                libc::close(2);
                libc::close(FD_REPORT);
            }
            loop {
                match waitpid(child, None) {
                    Err(Errno::EINTR) => continue,
                    _ => return 0,
                }
            }
        }
    }
}

/// Init's setup, in order: the mount plan (ending with `pivot_root`), the hostname, loopback
/// (own network namespace), the capability bounding set. On failure: the report tag (`R` when
/// the root mount itself failed) and the message.
fn setup(plan: &ChildPlan<'_>, sys: &mut dyn Sys) -> Result<(), (u8, String)> {
    if let Err(e) = apply(plan.ops, sys) {
        let root_mount = match &e.op {
            MountOp::OverlayManyLayers { .. } => true,
            MountOp::Mount { fstype, .. } => fstype == "overlay",
            _ => false,
        };
        return Err((if root_mount { b'R' } else { b'E' }, e.to_string()));
    }
    let fail = |what: &str, e: Errno| (b'E', format!("{what}: {}", e.desc()));
    sys.set_hostname(plan.hostname)
        .map_err(|e| fail("sethostname", e))?;
    if plan.new_netns {
        sys.loopback_up().map_err(|e| fail("bringing lo up", e))?;
    }
    sys.drop_bounding_caps(&KEPT_CAPS)
        .map_err(|e| fail("dropping capabilities", e))
}

/// PID 1 of the sandbox: mounts, then the command, then reaping until it ends.
fn init(plan: &ChildPlan<'_>, life_r: RawFd) -> i32 {
    // Die with the keeper; if it died before that took effect, its end of the life pipe is
    // closed (its pid reads as 0 from inside the namespace, so getppid cannot tell).
    let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL);
    let mut life = libc::pollfd {
        fd: life_r,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: polling one valid descriptor without waiting, then closing it.
    unsafe {
        let r = libc::poll(&mut life, 1, 0);
        libc::close(life_r);
        if r != 0 {
            return 1;
        }
    }
    let mut sys = LinuxSys;
    if let Err((tag, message)) = setup(plan, &mut sys) {
        report(tag, &message);
        return 1;
    }
    // SAFETY: the child runs `command`, which execs or `_exit`s.
    let command_pid = match unsafe { nix::unistd::fork() } {
        Err(e) => {
            report_error(&format!("fork: {}", e.desc()));
            return 1;
        }
        Ok(ForkResult::Child) => {
            command(plan, &mut sys);
            // SAFETY: leave without running destructors.
            unsafe { libc::_exit(127) }
        }
        Ok(ForkResult::Parent { child }) => child,
    };
    let mut status = None;
    loop {
        match waitpid(None, None) {
            Ok(WaitStatus::Exited(pid, code)) if pid == command_pid => {
                status = Some(ExitStatus::Code(code));
                break;
            }
            Ok(WaitStatus::Signaled(pid, sig, _)) if pid == command_pid => {
                status = Some(ExitStatus::Signal(sig as i32));
                break;
            }
            Ok(_) | Err(Errno::EINTR) => continue,
            Err(_) => break,
        }
    }
    if let Some(s) = status {
        report_status(s);
    }
    0
}

/// The command's process: identity, directory, exec. Returns only on failure (reported).
fn command(plan: &ChildPlan<'_>, sys: &mut dyn Sys) {
    // A clean signal state: nothing blocked, default dispositions (Rust ignores SIGPIPE).
    let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
    for sig in Signal::iterator() {
        if !matches!(sig, Signal::SIGKILL | Signal::SIGSTOP) {
            // SAFETY: restoring the default disposition.
            let _ = unsafe { nix::sys::signal::signal(sig, nix::sys::signal::SigHandler::SigDfl) };
        }
    }
    let _ = nix::unistd::setsid();
    if plan.tty {
        // stdin is the terminal; this process leads a new session without one.
        if let Err(e) = rustix::process::ioctl_tiocsctty(std::io::stdin()) {
            report_error(&format!("making the terminal the controlling one: {e}"));
            return;
        }
    }
    // Before the identity: installing without no_new_privs needs the root it is about to drop.
    if let Err(e) = crate::seccomp::install(&plan.seccomp) {
        report_error(&format!("installing the seccomp filter: {e}"));
        return;
    }
    if let Err(e) = sys.set_identity(plan.identity, !plan.rootless) {
        report_error(&format!(
            "switching to uid {} gid {}: {}",
            plan.identity.uid,
            plan.identity.gid,
            e.desc()
        ));
        return;
    }
    if let Err(e) = nix::unistd::chdir(plan.cwd.as_c_str()) {
        report_error(&format!(
            "working directory {}: {}",
            plan.cwd_display,
            e.desc()
        ));
        return;
    }
    let mut last = Errno::ENOENT;
    for cand in &plan.candidates {
        let e = match nix::unistd::execve(cand, &plan.argv, &plan.env) {
            Err(e) => e,
            Ok(never) => match never {},
        };
        // Keep the first telling error: "permission denied" beats "not found".
        if last == Errno::ENOENT && !matches!(e, Errno::ENOENT | Errno::ENOTDIR) {
            last = e;
        }
    }
    report_error(&format!(
        "cannot execute {}: {}",
        plan.argv[0].to_string_lossy(),
        last.desc()
    ));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::{Call, RecordingSys};
    use std::path::PathBuf;

    fn child_plan<'a>(ops: &'a [MountOp], identity: &'a Identity, none: bool) -> ChildPlan<'a> {
        ChildPlan {
            ops,
            hostname: "box",
            identity,
            rootless: false,
            host_ids: (0, 0),
            new_netns: none,
            wait_for_network: false,
            cgroup_procs: vec![],
            argv: vec![],
            env: vec![],
            candidates: vec![],
            cwd: CString::new("/").unwrap(),
            cwd_display: "/",
            seccomp: crate::seccomp::filter(),
            tty: false,
        }
    }

    #[test]
    fn init_setup_mounts_then_names_then_bounds_capabilities() {
        let ops = vec![MountOp::PivotRoot {
            new_root: PathBuf::from("/m"),
        }];
        let id = Identity::default();
        let mut sys = RecordingSys::default();
        setup(&child_plan(&ops, &id, true), &mut sys).unwrap();
        assert_eq!(
            sys.calls,
            vec![
                Call::PivotRoot("/m".into()),
                Call::Hostname("box".into()),
                Call::LoopbackUp,
                Call::DropCaps(KEPT_CAPS.to_vec()),
            ]
        );
        let mut sys = RecordingSys::default();
        setup(&child_plan(&ops, &id, false), &mut sys).unwrap();
        assert!(
            !sys.calls.contains(&Call::LoopbackUp),
            "host network: lo untouched"
        );
    }

    #[test]
    fn a_failed_root_mount_is_tagged_for_the_fallback() {
        let ops = vec![MountOp::Mount {
            source: "overlay".into(),
            target: "/m".into(),
            fstype: "overlay".into(),
            flags: nix::mount::MsFlags::empty(),
            data: Some("lowerdir=/l".into()),
        }];
        let id = Identity::default();
        let mut sys = RecordingSys {
            fail_on: Some(Call::Mount {
                source: Some("overlay".into()),
                target: "/m".into(),
                fstype: Some("overlay".into()),
                flags: nix::mount::MsFlags::empty(),
                data: Some("lowerdir=/l".into()),
            }),
            ..Default::default()
        };
        let (tag, msg) = setup(&child_plan(&ops, &id, false), &mut sys).unwrap_err();
        assert_eq!(tag, b'R');
        assert!(msg.starts_with("mounting overlay on /m"), "{msg}");
        let mut sys = RecordingSys {
            fail_on: Some(Call::Hostname("box".into())),
            ..Default::default()
        };
        let (tag, msg) = setup(&child_plan(&[], &id, false), &mut sys).unwrap_err();
        assert_eq!(
            (tag, msg.as_str()),
            (b'E', "sethostname: Operation not permitted")
        );
    }

    #[test]
    fn reports_round_trip() {
        let mut b = vec![b'E'];
        b.extend_from_slice(&5u32.to_le_bytes());
        b.extend_from_slice(b"boom!");
        b.extend_from_slice(&[b'S', 1]);
        b.extend_from_slice(&9i32.to_le_bytes());
        let boom = Reported {
            root_mount: false,
            message: "boom!".into(),
        };
        assert_eq!(parse_report(&b), (Some(boom), Some(ExitStatus::Signal(9))));
        b[0] = b'R';
        assert!(parse_report(&b).0.unwrap().root_mount);
        assert_eq!(
            parse_report(b"S\0\x02\0\0\0"),
            (None, Some(ExitStatus::Code(2)))
        );
        assert_eq!(parse_report(b""), (None, None));
    }
}
