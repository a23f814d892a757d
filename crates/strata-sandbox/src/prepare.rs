//! Preparing a root before a run: private copies of host files and secrets, the mountpoints
//! layer, mount points made in place (and undone), the per-run overlay work directory.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::error::SandboxError;
use crate::plan::{Mountpoint, PlanEnv};
use crate::spec::{ExtraMount, Network, SandboxSpec};
use crate::view::LayerView;

/// Copies of the host's resolver files and the secrets, in the private state directory.
pub(crate) fn write_state_files(spec: &SandboxSpec, env: &PlanEnv) -> Result<(), SandboxError> {
    if spec.host_files {
        for (name, default) in [
            ("resolv.conf", ""),
            (
                "hosts",
                "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n",
            ),
        ] {
            let host = Path::new("/etc").join(name);
            let mut content = fs::read(&host).unwrap_or_else(|_| default.as_bytes().to_vec());
            if name == "hosts" {
                add_hostname(&mut content, &spec.hostname);
            }
            if name == "resolv.conf" && spec.network == Network::Private {
                content =
                    crate::network::resolv_conf(&String::from_utf8_lossy(&content)).into_bytes();
            }
            let dest = env.state.join(name);
            fs::write(&dest, content).map_err(|e| SandboxError::io(&dest, e))?;
            fs::set_permissions(&dest, fs::Permissions::from_mode(0o644))
                .map_err(|e| SandboxError::io(&dest, e))?;
        }
    }
    for (i, m) in spec.mounts.iter().enumerate() {
        match m {
            ExtraMount::Secret {
                content,
                uid,
                gid,
                mode,
                ..
            } => {
                let dest = env.secret_file(i);
                let io = |e| SandboxError::io(&dest, e);
                fs::create_dir_all(dest.parent().unwrap_or(&env.state)).map_err(io)?;
                fs::write(&dest, &content.0).map_err(io)?;
                if !env.rootless {
                    std::os::unix::fs::chown(&dest, Some(*uid), Some(*gid)).map_err(io)?;
                }
                fs::set_permissions(&dest, fs::Permissions::from_mode(mode & 0o7777))
                    .map_err(io)?;
            }
            ExtraMount::Cache { dir, .. } => {
                fs::create_dir_all(dir).map_err(|e| SandboxError::io(dir, e))?;
            }
            ExtraMount::Bind { .. } | ExtraMount::Tmpfs { .. } => {}
        }
    }
    Ok(())
}

/// Make the sandbox's hostname resolve (as Docker and buildah do): `hostname -f` and sudo need
/// it, and package scripts call them.
fn add_hostname(hosts: &mut Vec<u8>, hostname: &str) {
    let text = String::from_utf8_lossy(hosts);
    let known = text.lines().any(|l| {
        let l = l.split('#').next().unwrap_or("");
        l.split_whitespace().skip(1).any(|name| name == hostname)
    });
    if !known {
        if !hosts.is_empty() && !hosts.ends_with(b"\n") {
            hosts.push(b'\n');
        }
        hosts.extend_from_slice(format!("127.0.1.1\t{hostname}\n").as_bytes());
    }
}

/// Fill the mountpoints layer: each missing mount point, with its ancestors carrying the
/// image's mode, owner and times (this layer is on top, so the merged view shows them).
pub(crate) fn make_mountpoint_layer(
    view: &LayerView,
    layer: &Path,
    mountpoints: &[Mountpoint],
) -> Result<(), SandboxError> {
    let mut copied: Vec<(PathBuf, fs::Metadata)> = Vec::new();
    for mp in mountpoints {
        let parts: Vec<&str> = mp.path.split('/').collect();
        for n in 1..parts.len() {
            let rel = parts[..n].join("/");
            let dest = layer.join(&rel);
            if dest.exists() {
                continue;
            }
            fs::create_dir(&dest).map_err(|e| SandboxError::io(&dest, e))?;
            if let Some(e) = view.entry(&rel).map_err(|e| SandboxError::io(&dest, e))?
                && e.metadata.is_dir()
            {
                copied.push((dest, e.metadata));
            }
        }
        let dest = layer.join(&mp.path);
        let r = if mp.dir {
            fs::create_dir(&dest)
        } else {
            fs::write(&dest, b"")
        };
        r.map_err(|e| SandboxError::io(&dest, e))?;
    }
    for (dest, md) in copied.iter().rev() {
        let io = |e| SandboxError::io(dest, e);
        match std::os::unix::fs::lchown(dest, Some(md.uid()), Some(md.gid())) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EPERM) => {}
            Err(e) => return Err(io(e)),
        }
        fs::set_permissions(dest, fs::Permissions::from_mode(md.mode() & 0o7777)).map_err(io)?;
        set_times(dest, md).map_err(io)?;
    }
    Ok(())
}

fn set_times(path: &Path, md: &fs::Metadata) -> std::io::Result<()> {
    use nix::sys::time::TimeSpec;
    nix::sys::stat::utimensat(
        nix::fcntl::AT_FDCWD,
        path,
        &TimeSpec::new(md.atime(), md.atime_nsec()),
        &TimeSpec::new(md.mtime(), md.mtime_nsec()),
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    )?;
    Ok(())
}

/// A per-run overlay work directory; overlayfs leaves a mode-000 `work` inside, which a
/// non-root caller must make readable before removing.
pub(crate) struct WorkDir(pub(crate) tempfile::TempDir);

impl Drop for WorkDir {
    fn drop(&mut self) {
        fn open_up(dir: &Path) {
            if let Ok(entries) = fs::read_dir(dir) {
                for e in entries.flatten() {
                    if e.file_type().is_ok_and(|t| t.is_dir()) {
                        let _ = fs::set_permissions(e.path(), fs::Permissions::from_mode(0o700));
                        open_up(&e.path());
                    }
                }
            }
        }
        open_up(self.0.path());
    }
}

/// Mount points created inside a directory root, undone after the run.
#[derive(Default)]
pub(crate) struct Created {
    /// Relative paths, in creation order.
    paths: Vec<PathBuf>,
    /// Parents that existed before, with their metadata (to restore their times).
    parents: Vec<(PathBuf, fs::Metadata)>,
}

impl Created {
    pub(crate) fn make(root: &Path, mountpoints: &[Mountpoint]) -> Result<Created, SandboxError> {
        let mut created = Created::default();
        for mp in mountpoints {
            let rel = PathBuf::from(&mp.path);
            let dest = root.join(&rel);
            let parent = dest.parent().unwrap_or(root).to_path_buf();
            if !created.paths.iter().any(|p| root.join(p) == parent)
                && !created.parents.iter().any(|(p, _)| *p == parent)
            {
                match fs::symlink_metadata(&parent) {
                    Ok(md) => created.parents.push((parent, md)),
                    Err(e) => {
                        let _ = created.undo(root);
                        return Err(SandboxError::io(&parent, e));
                    }
                }
            }
            let r = if mp.dir {
                fs::create_dir(&dest)
            } else {
                fs::write(&dest, b"")
            };
            if let Err(e) = r {
                // Leave the root as it was.
                let _ = created.undo(root);
                return Err(SandboxError::io(&dest, e));
            }
            created.paths.push(rel);
        }
        Ok(created)
    }

    /// Remove what was created (only if still empty) and restore the parents' times.
    pub(crate) fn undo(self, root: &Path) -> Result<Vec<PathBuf>, SandboxError> {
        for rel in self.paths.iter().rev() {
            let p = root.join(rel);
            let r = match fs::symlink_metadata(&p) {
                Ok(md) if md.is_dir() => fs::remove_dir(&p),
                Ok(md) if md.is_file() && md.len() == 0 => fs::remove_file(&p),
                _ => Ok(()),
            };
            r.map_err(|e| SandboxError::io(&p, e))?;
        }
        for (parent, md) in &self.parents {
            set_times(parent, md).map_err(|e| SandboxError::io(parent, e))?;
        }
        Ok(self.paths)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hostname_is_added_to_hosts_once() {
        let mut hosts = b"127.0.0.1 localhost".to_vec();
        add_hostname(&mut hosts, "box");
        assert_eq!(hosts, b"127.0.0.1 localhost\n127.0.1.1\tbox\n");
        add_hostname(&mut hosts, "box");
        assert_eq!(hosts, b"127.0.0.1 localhost\n127.0.1.1\tbox\n");
        let mut hosts = b"# box\n10.0.0.1 boxy\n".to_vec();
        add_hostname(&mut hosts, "box");
        assert!(hosts.ends_with(b"127.0.1.1\tbox\n"));
    }
}
