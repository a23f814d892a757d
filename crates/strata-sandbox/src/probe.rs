//! What isolation this process can get: namespaces, and overlayfs inside them. Probed once, in a
//! throwaway child, and cached.

use std::sync::OnceLock;

use nix::sched::CloneFlags;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::ForkResult;

/// What the kernel allows here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// Mount, PID, UTS and IPC namespaces can be created (with a user namespace when not root).
    pub namespaces: bool,
    /// overlayfs can be mounted in them (with `userxattr` when not root).
    pub overlay: bool,
}

/// Probe once per process (a forked child tries; nothing changes on the host).
pub fn capabilities() -> Capabilities {
    static CAPS: OnceLock<Capabilities> = OnceLock::new();
    *CAPS.get_or_init(probe)
}

fn probe() -> Capabilities {
    let none = Capabilities {
        namespaces: false,
        overlay: false,
    };
    let Ok(dir) = tempfile::Builder::new().prefix("strata-probe-").tempdir() else {
        return none;
    };
    let d = dir.path();
    for sub in ["lower", "upper", "work", "merged"] {
        if std::fs::create_dir(d.join(sub)).is_err() {
            return none;
        }
    }
    let rootless = !nix::unistd::geteuid().is_root();
    let (uid, gid) = (
        nix::unistd::geteuid().as_raw(),
        nix::unistd::getegid().as_raw(),
    );
    let mut data = format!(
        "lowerdir={0}/lower,upperdir={0}/upper,workdir={0}/work,redirect_dir=nofollow,metacopy=off,index=off,volatile",
        d.display()
    );
    if rootless {
        data.push_str(",userxattr");
    }
    let merged = d.join("merged");
    // SAFETY: the child only makes system calls and exits with `_exit`.
    match unsafe { nix::unistd::fork() } {
        Ok(ForkResult::Child) => {
            let mut flags = CloneFlags::CLONE_NEWNS
                | CloneFlags::CLONE_NEWPID
                | CloneFlags::CLONE_NEWUTS
                | CloneFlags::CLONE_NEWIPC;
            if rootless {
                flags |= CloneFlags::CLONE_NEWUSER;
            }
            let private = |()| {
                nix::mount::mount(
                    None::<&str>,
                    "/",
                    None::<&str>,
                    nix::mount::MsFlags::MS_REC | nix::mount::MsFlags::MS_PRIVATE,
                    None::<&str>,
                )
            };
            let namespaces = nix::sched::unshare(flags)
                .and_then(|()| {
                    if rootless {
                        crate::process::write_id_maps(uid, gid)
                            .map_err(|_| nix::errno::Errno::EPERM)
                    } else {
                        Ok(())
                    }
                })
                .and_then(private);
            let code = if namespaces.is_err() {
                2
            } else if nix::mount::mount(
                Some("overlay"),
                &merged,
                Some("overlay"),
                nix::mount::MsFlags::empty(),
                Some(data.as_str()),
            )
            .is_err()
            {
                1
            } else {
                0
            };
            // SAFETY: leaving the forked child without running the parent's destructors.
            unsafe { libc::_exit(code) }
        }
        Ok(ForkResult::Parent { child }) => loop {
            match waitpid(child, None) {
                Ok(WaitStatus::Exited(_, code)) => {
                    let caps = Capabilities {
                        namespaces: code != 2,
                        overlay: code == 0,
                    };
                    tracing::debug!(?caps, "sandbox capabilities probed");
                    return caps;
                }
                Err(nix::errno::Errno::EINTR) => continue,
                _ => return none,
            }
        },
        Err(_) => none,
    }
}
