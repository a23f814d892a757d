//! The default network of a run ([`crate::Network::Private`]): user-mode networking through
//! `slirp4netns` attached to the sandbox's own network namespace.
//!
//! `slirp4netns --configure` gives the namespace a `tap0` (10.0.2.100/24, default route via
//! 10.0.2.2, DNS forwarder at 10.0.2.3) and carries its TCP and UDP traffic out through ordinary
//! sockets of the caller: the step reaches what the caller reaches (package mirrors), but from
//! its own namespace, so the host's loopback services, abstract Unix sockets and ports stay out
//! of reach. `--disable-host-loopback` stops 10.0.2.2 from leading to the host's 127.0.0.1;
//! `--enable-sandbox` and `--enable-seccomp` confine slirp4netns itself; as root it starts in a
//! recursively private mount namespace of its own, so its sandbox's unmounts never reach the host.

use std::io::{Read, Seek};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::unistd::Pid;

use crate::error::SandboxError;

/// The nameserver the sandbox's `/etc/resolv.conf` names on the default network.
pub const SLIRP_DNS: &str = "10.0.2.3";

/// Where `slirp4netns` is, from the caller's `PATH`.
pub(crate) fn slirp4netns() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join("slirp4netns"))
        .find(|p| p.is_file())
}

/// The arguments of `slirp4netns` for the namespace of `pid`: ready and exit pipes at
/// descriptors 3 and 4.
pub(crate) fn slirp_args(pid: i32, rootless: bool) -> Vec<String> {
    let mut args: Vec<String> = [
        "--configure",
        "--mtu=65520",
        "--disable-host-loopback",
        "--enable-sandbox",
        "--enable-seccomp",
        "--ready-fd=3",
        "--exit-fd=4",
    ]
    .map(String::from)
    .to_vec();
    if rootless {
        // The namespace belongs to the sandbox's user namespace: join it to configure it.
        args.push(format!("--userns-path=/proc/{pid}/ns/user"));
    }
    args.push(pid.to_string());
    args.push("tap0".into());
    args
}

/// Give the calling process (the forked slirp4netns, before exec) a mount namespace of its own
/// in which every mount is private.
///
/// `--enable-sandbox` unshares a mount namespace but makes only `/` private, not recursively,
/// then pivots and lazily unmounts the old root: every unmount of a mount whose parent is a
/// shared mount propagates to that parent's peers, which as root are the host's own mounts (a
/// run with the default network unmounted `/run/netns/*` and broke podman's networks). In a
/// recursively private namespace nothing it unmounts reaches the host. Without root
/// slirp4netns joins the sandbox's user namespace, where the kernel already turns the shared
/// mounts it copies into slaves, and unsharing here would need a privilege the caller lacks.
fn own_private_mount_namespace() -> std::io::Result<()> {
    use rustix::mount::{MountPropagationFlags, mount_change};
    use rustix::thread::{UnshareFlags, unshare_unsafe};
    // SAFETY: NEWNS (which implies FS) only; no descriptor table is unshared.
    unsafe { unshare_unsafe(UnshareFlags::NEWNS) }?;
    mount_change(
        c"/",
        MountPropagationFlags::PRIVATE | MountPropagationFlags::REC,
    )?;
    Ok(())
}

/// A running `slirp4netns`; stopped (its exit pipe closed, then reaped) on drop.
#[derive(Debug)]
pub(crate) struct Slirp {
    child: Child,
    exit: Option<OwnedFd>,
}

impl Drop for Slirp {
    fn drop(&mut self) {
        drop(self.exit.take());
        // It exits when the pipe closes; do not wait forever on a stuck one.
        for _ in 0..500 {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Read one byte from `fd`: `Ok(false)` at end of file.
fn read_byte(fd: &OwnedFd) -> Result<bool, Errno> {
    let mut b = [0u8; 1];
    loop {
        match nix::unistd::read(fd, &mut b) {
            Ok(n) => return Ok(n == 1),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// A copy of `fd` numbered 10 or more, close-on-exec (so moving it to 3 or 4 in the child
/// cannot clobber the other).
fn high(fd: &OwnedFd) -> Result<OwnedFd, SandboxError> {
    rustix::io::fcntl_dupfd_cloexec(fd, 10)
        .map_err(|e| SandboxError::sys("fcntl", Errno::from_raw(e.raw_os_error())))
}

/// Wait until the keeper `pid` reports its network namespace on `netns_ready`, then start
/// `slirp4netns` on it and wait until the network is configured. `Ok(None)`: the keeper ended
/// first (it reports its own failure).
pub(crate) fn start(
    bin: &Path,
    netns_ready: &OwnedFd,
    pid: Pid,
    rootless: bool,
) -> Result<Option<Slirp>, SandboxError> {
    if !read_byte(netns_ready).map_err(|e| SandboxError::sys("waiting for the sandbox", e))? {
        return Ok(None);
    }
    let pipe = || nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| SandboxError::sys("pipe", e));
    let (ready_r, ready_w) = pipe()?;
    let (exit_r, exit_w) = pipe()?;
    let (ready_child, exit_child) = (high(&ready_w)?, high(&exit_r)?);
    drop((ready_w, exit_r));
    let tmp = |e| SandboxError::io(std::env::temp_dir(), e);
    let mut log = tempfile::tempfile().map_err(tmp)?;
    let (log_out, log_err) = (log.try_clone().map_err(tmp)?, log.try_clone().map_err(tmp)?);
    let (ready_raw, exit_raw) = (ready_child.as_raw_fd(), exit_child.as_raw_fd());
    let mut cmd = Command::new(bin);
    cmd.args(slirp_args(pid.as_raw(), rootless))
        .stdin(Stdio::null())
        .stdout(Stdio::from(log_out))
        .stderr(Stdio::from(log_err));
    // SAFETY: between fork and exec only dup2, unshare and mount, which are plain system calls
    // (async-signal-safe, no allocation: the path is a C string literal); the dup2 targets are
    // below the (>= 10) sources, and dup2 clears close-on-exec on the copies. Unsharing the mount
    // namespace of the forked child affects no other thread of ours.
    unsafe {
        cmd.pre_exec(move || {
            for (from, to) in [(ready_raw, 3), (exit_raw, 4)] {
                if libc::dup2(from, to) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            if !rootless {
                own_private_mount_namespace()?;
            }
            Ok(())
        });
    }
    let child = cmd.spawn().map_err(|e| SandboxError::io(bin, e))?;
    drop((ready_child, exit_child));
    let mut slirp = Slirp {
        child,
        exit: Some(exit_w),
    };
    let ready = read_byte(&ready_r).map_err(|e| SandboxError::sys("waiting for slirp4netns", e))?;
    if !ready {
        drop(slirp.exit.take());
        let status = slirp.child.wait().ok();
        let mut said = String::new();
        let _ = log.rewind().and_then(|()| log.read_to_string(&mut said));
        let said: Vec<&str> = said.lines().rev().take(5).collect();
        let hint = if rootless {
            "; without root it needs /dev/net/tun readable and writable by the caller: \
             or use --network host|none"
        } else {
            "; or use --network host|none"
        };
        return Err(SandboxError::Network {
            message: format!(
                "it ended before the network was up ({}): {}{hint}",
                status.map_or("not reaped".into(), |s| s.to_string()),
                said.into_iter().rev().collect::<Vec<_>>().join("; ")
            ),
        });
    }
    Ok(Some(slirp))
}

/// The sandbox's `resolv.conf` on the default network: slirp's DNS forwarder, then the host's
/// `search` and `options` lines (its nameservers may be loopback addresses, out of reach).
pub(crate) fn resolv_conf(host: &str) -> String {
    let mut out = format!("nameserver {SLIRP_DNS}\n");
    for line in host.lines() {
        let word = line.split_whitespace().next().unwrap_or("");
        if matches!(word, "search" | "domain" | "options") {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slirp_never_leads_to_the_hosts_loopback() {
        let args = slirp_args(42, false);
        assert!(args.contains(&"--disable-host-loopback".to_string()));
        assert_eq!(&args[args.len() - 2..], ["42", "tap0"]);
        assert!(!args.iter().any(|a| a.starts_with("--userns-path")));
        assert!(slirp_args(42, true).contains(&"--userns-path=/proc/42/ns/user".to_string()));
    }

    #[test]
    fn resolv_conf_names_slirps_dns_and_keeps_search() {
        let host = "nameserver 127.0.0.53\nsearch corp.example\noptions edns0\n# c\n";
        assert_eq!(
            resolv_conf(host),
            "nameserver 10.0.2.3\nsearch corp.example\noptions edns0\n"
        );
    }
}
