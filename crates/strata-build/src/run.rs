//! RUN: execute a command in the sandbox over the stage's layer snapshots and turn what it changed
//! into a layer.

use std::collections::BTreeMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use strata_dockerfile::{Mount, MountType, Network, Run, RunScript};
use strata_oci::tar::{Entry, Metadata};
use strata_sandbox::{Change, ExtraMount, Identity, SandboxSpec, SecretBytes, Stream};

use crate::error::StepError;

/// The argv of a RUN, and a script file to mount when its heredoc is a `#!` script.
pub(crate) struct RunCommand {
    pub(crate) argv: Vec<String>,
    pub(crate) script: Option<(String, Vec<u8>)>,
}

/// Where a heredoc script is mounted for execution (BuildKit uses `/dev/pipes/`).
pub(crate) const SCRIPT_DIR: &str = "/run/strata-heredoc";

/// What a RUN executes, as BuildKit decides it.
pub(crate) fn command(run: &Run, shell: Vec<String>) -> RunCommand {
    match run.script() {
        RunScript::Exec(argv) => RunCommand { argv, script: None },
        RunScript::Shell(text) => {
            let mut argv = shell;
            argv.push(text);
            RunCommand { argv, script: None }
        }
        RunScript::ShebangFile { name, content } => RunCommand {
            argv: vec![format!("{SCRIPT_DIR}/{name}")],
            script: Some((name, content.into_bytes())),
        },
    }
}

/// A RUN's network: its `--network` flag, else the build's default (`--network` of the build:
/// the step's own network with outbound access unless it says `host` or `none`), as BuildKit
/// does.
pub(crate) fn network(
    run: &Run,
    build_default: strata_sandbox::Network,
) -> strata_sandbox::Network {
    match run.network {
        Some(Network::None) => strata_sandbox::Network::None,
        Some(Network::Host) => strata_sandbox::Network::Host,
        Some(Network::Default) | None => build_default,
    }
}

/// Inputs for turning `--mount` options into sandbox mounts.
pub(crate) struct MountInputs<'a> {
    /// Persistent cache mounts live under here, one directory per id.
    pub(crate) cache_root: &'a Path,
    /// The root a bind mount without `from=` reads (the build context).
    pub(crate) context_root: &'a Path,
    /// For each mount, the root filesystem its `from=` names (None: no `from=`).
    pub(crate) from_roots: Vec<Option<PathBuf>>,
    /// `--secret id=...,src=...` files.
    pub(crate) secrets: &'a BTreeMap<String, crate::secret::SecretSource>,
    /// Where read-write bind copies are made.
    pub(crate) scratch: &'a Path,
}

/// What a RUN's `--mount` options give the sandbox.
pub(crate) struct RunMounts {
    /// The mounts.
    pub(crate) mounts: Vec<ExtraMount>,
    /// A description of each, for the cache key (never a secret's content).
    pub(crate) keys: Vec<String>,
    /// Secrets exposed as environment variables (`type=secret,env=VAR`): for this step only,
    /// never in the image config or the cache key.
    pub(crate) secret_env: Vec<(String, String)>,
}

/// Sandbox mounts for a RUN's `--mount` options.
pub(crate) fn mounts(mounts: &[Mount], inputs: &MountInputs<'_>) -> Result<RunMounts, StepError> {
    let mut out = Vec::new();
    let mut keys = Vec::new();
    let mut secret_env = Vec::new();
    for (i, m) in mounts.iter().enumerate() {
        let target = m.target.clone().unwrap_or_default();
        match m.kind {
            MountType::Cache => {
                let id = m.id.clone().unwrap_or_else(|| target.clone());
                let dir = inputs
                    .cache_root
                    .join(crate::builder::hash_strings(&[&id]).trim_start_matches("sha256:"));
                if !dir.exists() {
                    std::fs::create_dir_all(&dir).map_err(|source| StepError::Io {
                        path: dir.clone(),
                        source,
                    })?;
                    let mode = m.mode.unwrap_or(0o755);
                    std::fs::set_permissions(
                        &dir,
                        std::os::unix::fs::PermissionsExt::from_mode(mode),
                    )
                    .map_err(|source| StepError::Io {
                        path: dir.clone(),
                        source,
                    })?;
                    let _ = std::os::unix::fs::chown(&dir, m.uid.or(Some(0)), m.gid.or(Some(0)));
                }
                keys.push(format!("cache {target} {id}"));
                out.push(ExtraMount::Cache { dir, target });
            }
            MountType::Tmpfs => {
                keys.push(format!("tmpfs {target}"));
                out.push(ExtraMount::Tmpfs {
                    target,
                    size: m.size,
                });
            }
            MountType::Bind => {
                let root = inputs
                    .from_roots
                    .get(i)
                    .cloned()
                    .flatten()
                    .unwrap_or_else(|| inputs.context_root.to_path_buf());
                let inner = m.source.clone().unwrap_or_else(|| "/".to_string());
                let source = strata_oci::scoped::resolve_on_disk(&root, &inner, true)
                    .map_err(|e| StepError::Copy(e.into()))?;
                if !source.exists() {
                    return Err(StepError::Run(format!(
                        "--mount=type=bind: source {inner:?} not found"
                    )));
                }
                // BuildKit keys a bind on the content it mounts: a changed file reruns the step.
                let content = tree_digest(&source)?;
                let source = if m.readonly {
                    source
                } else {
                    // A writable bind gets a private copy: writes never reach the context.
                    let dir = tempfile::Builder::new()
                        .prefix("bind-")
                        .tempdir_in(inputs.scratch)
                        .map_err(|source| StepError::Io {
                            path: inputs.scratch.to_path_buf(),
                            source,
                        })?
                        .keep();
                    // A directory's content goes into the copy; a file is copied into it and
                    // the copy of the file is what is mounted.
                    let (from, copy) = if source.is_dir() {
                        (format!("{}/.", source.display()), dir.clone())
                    } else {
                        (source.display().to_string(), dir.join("file"))
                    };
                    let status = std::process::Command::new("cp")
                        .arg("-a")
                        .arg(from)
                        .arg(&copy)
                        .status()
                        .map_err(|source| StepError::Io {
                            path: copy.clone(),
                            source,
                        })?;
                    if !status.success() {
                        return Err(StepError::Run(format!(
                            "cannot copy bind source {}",
                            source.display()
                        )));
                    }
                    copy
                };
                keys.push(format!("bind {target} {inner} {} {content}", m.readonly));
                out.push(ExtraMount::Bind {
                    source,
                    target,
                    readonly: m.readonly,
                });
            }
            MountType::Secret => {
                let id =
                    m.id.clone()
                        .or_else(|| target.rsplit('/').next().map(str::to_string))
                        .unwrap_or_default();
                let Some(source) = inputs.secrets.get(&id) else {
                    if m.required {
                        return Err(StepError::Run(format!(
                            "secret {id:?} is required but was not given (--secret id={id},src=FILE)"
                        )));
                    }
                    continue;
                };
                let content = source.read(&id)?;
                keys.push(format!("secret {id}"));
                // `env=VAR` (Dockerfile 1.10): the secret as a variable; a file too only when a
                // target is also given, as BuildKit does.
                if let Some(var) = &m.env {
                    let value = String::from_utf8(content.clone()).map_err(|_| {
                        StepError::Run(format!(
                            "secret {id:?} is not UTF-8 text, so it cannot be the variable {var}"
                        ))
                    })?;
                    keys.push(format!("secret {id} as ${var}"));
                    secret_env.push((var.clone(), value));
                }
                if m.env.is_none() || m.target.is_some() {
                    out.push(ExtraMount::Secret {
                        id,
                        content: SecretBytes(content),
                        target: m.target.clone(),
                        uid: m.uid.unwrap_or(0),
                        gid: m.gid.unwrap_or(0),
                        mode: m.mode.unwrap_or(0o400),
                    });
                }
            }
            MountType::Ssh => {
                return Err(StepError::Unsupported(
                    "RUN --mount=type=ssh: SSH agent forwarding is not supported".to_string(),
                ));
            }
        }
    }
    Ok(RunMounts {
        mounts: out,
        keys,
        secret_env,
    })
}

/// A digest of the tree at `root` (a directory, file or symlink, not followed): every path with
/// its type, mode, owner and content (symlink target, file bytes), in sorted order.
pub(crate) fn tree_digest(root: &Path) -> Result<String, StepError> {
    use sha2::{Digest as _, Sha256};
    use std::io::Read as _;
    fn walk(root: &Path, rel: &Path, h: &mut Sha256) -> Result<(), StepError> {
        // `join("")` would add a trailing slash, which a file does not take.
        let path = if rel.as_os_str().is_empty() {
            root.to_path_buf()
        } else {
            root.join(rel)
        };
        let io = |source| StepError::Io {
            path: path.clone(),
            source,
        };
        let meta = std::fs::symlink_metadata(&path).map_err(io)?;
        h.update(rel.as_os_str().as_encoded_bytes());
        h.update(format!(
            "\0{:o} {}:{}\0",
            meta.mode(),
            meta.uid(),
            meta.gid()
        ));
        let kind = meta.file_type();
        if kind.is_symlink() {
            let target = std::fs::read_link(&path).map_err(io)?;
            h.update(target.as_os_str().as_encoded_bytes());
        } else if kind.is_file() {
            let mut file = std::fs::File::open(&path).map_err(io)?;
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = file.read(&mut buf).map_err(io)?;
                if n == 0 {
                    break;
                }
                h.update(&buf[..n]);
            }
        } else if kind.is_dir() {
            let mut names: Vec<_> = std::fs::read_dir(&path)
                .map_err(io)?
                .map(|e| e.map(|e| e.file_name()))
                .collect::<Result<_, _>>()
                .map_err(io)?;
            names.sort();
            for name in names {
                walk(root, &rel.join(name), h)?;
            }
        }
        h.update(b"\n");
        Ok(())
    }
    let mut h = Sha256::new();
    walk(root, Path::new(""), &mut h)?;
    Ok(format!("sha256:{}", hex::encode(h.finalize())))
}

/// The sandbox spec's identity from a resolved user.
pub(crate) fn identity(user: &strata_sandbox::ResolvedUser) -> Identity {
    user.identity.clone()
}

/// How many entries the layer of `changes` has, opaque markers not counted: every change but
/// sockets (not carried) and opaque markers.
pub(crate) fn layer_entry_count(changes: &[Change]) -> u64 {
    changes
        .iter()
        .filter(|c| match c {
            Change::Entry { metadata, .. } => !metadata.file_type().is_socket(),
            Change::Whiteout(_) => true,
            Change::Opaque(_) => false,
        })
        .count() as u64
}

/// Turn the sandbox's changes into layer entries.
pub(crate) fn entries(changes: Vec<Change>) -> Result<Vec<Entry>, StepError> {
    // Regular files that are one inode (a link group the step made) become one file and hard
    // links to it, as buildah and BuildKit write them: the first path in layer order (`Path`
    // compares component by component, as the layer writer sorts) is the file.
    let mut groups: BTreeMap<(u64, u64), Vec<PathBuf>> = BTreeMap::new();
    for change in &changes {
        if let Change::Entry { path, metadata, .. } = change
            && metadata.file_type().is_file()
            && metadata.nlink() > 1
        {
            groups
                .entry((metadata.dev(), metadata.ino()))
                .or_default()
                .push(path.clone());
        }
    }
    let first_of: BTreeMap<(u64, u64), PathBuf> = groups
        .into_iter()
        .filter(|(_, paths)| paths.len() > 1)
        .filter_map(|(id, paths)| paths.into_iter().min().map(|first| (id, first)))
        .collect();
    let mut out = Vec::with_capacity(changes.len());
    for change in changes {
        match change {
            Change::Whiteout(path) => out.push(Entry::whiteout(&path)?),
            Change::Opaque(path) => out.push(Entry::opaque(&path)),
            Change::Entry {
                path,
                source,
                metadata,
                uid,
                gid,
            } => {
                let meta = Metadata {
                    mode: metadata.mode() & 0o7777,
                    uid: u64::from(uid),
                    gid: u64::from(gid),
                    mtime: u64::try_from(metadata.mtime()).unwrap_or(0),
                    // File capabilities (`RUN setcap ...`) and user attributes are the
                    // layer's content, as in BuildKit's and buildah's RUN layers.
                    xattrs: strata_oci::tar::layer_xattrs(&source),
                };
                let ft = metadata.file_type();
                let entry = if ft.is_dir() {
                    Entry::dir(&path, meta)
                } else if ft.is_symlink() {
                    let target = std::fs::read_link(&source).map_err(|e| StepError::Io {
                        path: source.clone(),
                        source: e,
                    })?;
                    Entry::symlink(&path, target, meta)
                } else if ft.is_char_device() || ft.is_block_device() {
                    let rdev = metadata.rdev();
                    let major = (((rdev >> 32) & 0xffff_f000) | ((rdev >> 8) & 0xfff)) as u32;
                    let minor = (((rdev >> 12) & 0xffff_ff00) | (rdev & 0xff)) as u32;
                    if ft.is_char_device() {
                        Entry::char_device(&path, major, minor, meta)
                    } else {
                        Entry::block_device(&path, major, minor, meta)
                    }
                } else if ft.is_fifo() {
                    Entry::fifo(&path, meta)
                } else if ft.is_socket() {
                    continue; // sockets are not carried in layers
                } else if let Some(first) = first_of
                    .get(&(metadata.dev(), metadata.ino()))
                    .filter(|first| **first != path)
                {
                    Entry::hardlink(&path, first, meta)
                } else {
                    Entry::file_from_path(&path, &source, meta)
                };
                out.push(entry);
            }
        }
    }
    Ok(out)
}

/// Splits a RUN's output into lines for the progress sink, keeping partial lines per stream.
pub(crate) struct LineSplitter<F: FnMut(&str)> {
    pub(crate) emit: F,
    pending: [Vec<u8>; 2],
}

impl<F: FnMut(&str)> LineSplitter<F> {
    pub(crate) fn new(emit: F) -> Self {
        Self {
            emit,
            pending: [Vec::new(), Vec::new()],
        }
    }

    pub(crate) fn flush(&mut self) {
        for i in 0..2 {
            if !self.pending[i].is_empty() {
                let line = String::from_utf8_lossy(&self.pending[i]).into_owned();
                (self.emit)(&line);
                self.pending[i].clear();
            }
        }
    }
}

impl<F: FnMut(&str)> strata_sandbox::Output for LineSplitter<F> {
    fn output(&mut self, stream: Stream, bytes: &[u8]) {
        let i = usize::from(matches!(stream, Stream::Stderr));
        for &b in bytes {
            if b == b'\n' {
                let line = String::from_utf8_lossy(&self.pending[i]).into_owned();
                (self.emit)(&line);
                self.pending[i].clear();
            } else {
                self.pending[i].push(b);
            }
        }
    }
}

/// A spec over `lowers` with fresh upper and work directories under `scratch`.
pub(crate) fn spec(
    lowers: Vec<PathBuf>,
    scratch: &Path,
    argv: Vec<String>,
) -> Result<(SandboxSpec, tempfile::TempDir), StepError> {
    let dir = tempfile::Builder::new()
        .prefix("run-")
        .tempdir_in(scratch)
        .map_err(|source| StepError::Io {
            path: scratch.to_path_buf(),
            source,
        })?;
    let rootfs = strata_sandbox::RootFs::Overlay {
        lowers,
        upper: dir.path().join("upper"),
        work: dir.path().join("work"),
    };
    let mut spec = SandboxSpec::new(rootfs, argv);
    spec.scratch_dir = Some(dir.path().to_path_buf());
    Ok((spec, dir))
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_sandbox::Network as Sandbox;

    fn run_with(network: Option<Network>) -> Run {
        Run {
            command: strata_dockerfile::CommandLine::Shell("true".into()),
            heredocs: Vec::new(),
            mounts: Vec::new(),
            network,
            security: None,
            devices: Vec::new(),
        }
    }

    // See issue 13: a RUN that does not choose gets its own network, never the host's.
    #[test]
    fn a_run_without_network_gets_the_builds_default_which_is_private() {
        let build_default = strata_sandbox::SandboxSpec::new(
            strata_sandbox::RootFs::Dir("/".into()),
            vec!["true".into()],
        )
        .network;
        assert_eq!(build_default, Sandbox::Private);
        for flag in [None, Some(Network::Default)] {
            assert_eq!(network(&run_with(flag), Sandbox::Private), Sandbox::Private);
            assert_eq!(network(&run_with(flag), Sandbox::None), Sandbox::None);
            assert_eq!(network(&run_with(flag), Sandbox::Host), Sandbox::Host);
        }
        assert_eq!(
            network(&run_with(Some(Network::Host)), Sandbox::None),
            Sandbox::Host
        );
        assert_eq!(
            network(&run_with(Some(Network::None)), Sandbox::Private),
            Sandbox::None
        );
    }
}
