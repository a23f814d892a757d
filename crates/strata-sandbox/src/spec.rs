//! What to run and where: the plain-data description of one sandboxed command.

use std::fmt;
use std::path::PathBuf;

use crate::error::SandboxError;

/// The default `PATH` when the spec's environment has none (Docker's).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The root filesystem the command sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootFs {
    /// Layer directories stacked with overlayfs; changes go to `upper`.
    ///
    /// Lower directories hold whiteouts in overlay form (0/0 character devices, opaque directories
    /// marked `trusted.overlay.opaque=y`). `upper` must be empty; `work` must be an empty directory
    /// on the same filesystem as `upper`. When overlayfs is unavailable, the merged lowers are copied
    /// into `upper` instead (see [`Strategy`]) and `work` is unused.
    Overlay {
        /// Layer directories, bottom (the base image's first layer) to top.
        lowers: Vec<PathBuf>,
        /// Receives the changes.
        upper: PathBuf,
        /// overlayfs' work directory.
        work: PathBuf,
    },
    /// One directory used in place: the command's changes are written into it.
    Dir(PathBuf),
}

/// What the command reads on standard input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Stdin {
    /// `/dev/null` (build steps).
    #[default]
    Null,
    /// The caller's standard input (`strata run` for debugging; no terminal is allocated).
    Inherit,
}

/// The default pids limit of a run ([`SandboxSpec::pids_limit`]), podman's.
pub const DEFAULT_PIDS_LIMIT: u32 = 2048;

/// The network the command sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Network {
    /// Its own network namespace (the default): `lo`, and `tap0` with outbound access through
    /// user-mode networking (`slirp4netns`, 10.0.2.100/24, gateway 10.0.2.2, DNS 10.0.2.3), so
    /// package managers work while the host's loopback services, abstract Unix sockets and
    /// ports stay out of reach (slirp runs with `--disable-host-loopback`: 10.0.2.2 does not
    /// lead to the host's 127.0.0.1).
    #[default]
    Private,
    /// The host's network namespace (an explicit opt-in, as `docker build --network host`).
    Host,
    /// A new network namespace with only `lo`, up.
    None,
}

impl Network {
    /// Parse `default` (or `private`), `host` or `none`, as `--network` spells them.
    pub fn parse(s: &str) -> Option<Network> {
        match s {
            "default" | "private" => Some(Network::Private),
            "host" => Some(Network::Host),
            "none" => Some(Network::None),
            _ => None,
        }
    }
}

/// How an overlay root filesystem is realised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strategy {
    /// overlayfs when the kernel allows it here, else a private copy (probed once per process).
    #[default]
    Auto,
    /// overlayfs, or fail.
    Overlay,
    /// A private copy of the merged lowers in `upper`, diffed against them afterwards.
    Copy,
}

/// Secret bytes, never printed by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretBytes(pub Vec<u8>);

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretBytes({} bytes, redacted)", self.0.len())
    }
}

/// An extra mount for one command (`RUN --mount=...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExtraMount {
    /// A host file or directory (from the build context or a stage), bound at `target`.
    Bind {
        /// Host path.
        source: PathBuf,
        /// Absolute path inside the sandbox.
        target: String,
        /// Read-only (BuildKit's default for bind mounts).
        readonly: bool,
    },
    /// A persistent host directory, created when missing, kept across runs.
    Cache {
        /// Host directory.
        dir: PathBuf,
        /// Absolute path inside the sandbox.
        target: String,
    },
    /// A fresh tmpfs.
    Tmpfs {
        /// Absolute path inside the sandbox.
        target: String,
        /// Size limit in bytes (the kernel's default, half the RAM, when `None`).
        size: Option<u64>,
    },
    /// A file with secret content, read-only, at `/run/secrets/<id>` or `target`; never in a layer.
    Secret {
        /// Secret id (a single path component).
        id: String,
        /// Its content.
        content: SecretBytes,
        /// Absolute path inside the sandbox; `/run/secrets/<id>` when `None`.
        target: Option<String>,
        /// Owner and mode of the file (BuildKit's default: 0, 0, 0o400).
        uid: u32,
        /// Group of the file.
        gid: u32,
        /// Permission bits.
        mode: u32,
    },
}

impl ExtraMount {
    /// The absolute path inside the sandbox where this mount appears.
    pub fn target(&self) -> String {
        match self {
            ExtraMount::Bind { target, .. }
            | ExtraMount::Cache { target, .. }
            | ExtraMount::Tmpfs { target, .. } => target.clone(),
            ExtraMount::Secret { id, target, .. } => target
                .clone()
                .unwrap_or_else(|| format!("/run/secrets/{id}")),
        }
    }
}

/// The identity the command runs as, already resolved to numbers (see [`crate::resolve_user`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Identity {
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Supplementary groups.
    pub groups: Vec<u32>,
}

/// One command to run in a root filesystem. Plain data: build it, then [`crate::run()`] it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxSpec {
    /// The root filesystem.
    pub rootfs: RootFs,
    /// The command; `argv[0]` is looked up in the spec's `PATH` inside the root when it has no `/`.
    pub argv: Vec<String>,
    /// The environment, exactly (plus `PATH` = [`DEFAULT_PATH`] when absent).
    pub env: Vec<(String, String)>,
    /// Absolute working directory inside the root; it must exist (the builder creates WORKDIR).
    pub cwd: String,
    /// Who runs the command.
    pub user: Identity,
    /// The UTS hostname.
    pub hostname: String,
    /// Its own network with outbound access, the host's, or none.
    pub network: Network,
    /// Standard input.
    pub stdin: Stdin,
    /// Give the command a terminal (`run -t`): a new pseudo-terminal is its stdin, stdout and
    /// stderr and its controlling terminal; its output arrives as [`crate::Stream::Stdout`], and
    /// with [`Stdin::Inherit`] the caller's stdin is copied into it.
    pub tty: bool,
    /// Extra mounts, applied in order of target depth.
    pub mounts: Vec<ExtraMount>,
    /// Bind the host's `/etc/resolv.conf` and `/etc/hosts` read-only (copies of them).
    pub host_files: bool,
    /// overlayfs or a private copy, for [`RootFs::Overlay`].
    pub strategy: Strategy,
    /// Where the sandbox's private state (merged mount point, mountpoints layer, secrets) lives;
    /// the system temp directory when `None`.
    pub scratch_dir: Option<PathBuf>,
    /// How many trailing output lines to keep for error messages.
    pub tail_lines: usize,
    /// The most processes the run may have at once (a pids cgroup, where the host allows one:
    /// see the `cgroup` module); `None`: unlimited. A run that reaches it fails with
    /// [`crate::SandboxError::PidsLimit`].
    pub pids_limit: Option<u32>,
}

impl SandboxSpec {
    /// A spec with Docker's defaults: root, `/`, its own network ([`Network::Private`]), no env
    /// but `PATH`, hostname `strata`, at most [`DEFAULT_PIDS_LIMIT`] processes.
    pub fn new(rootfs: RootFs, argv: Vec<String>) -> Self {
        SandboxSpec {
            rootfs,
            argv,
            env: Vec::new(),
            cwd: "/".into(),
            user: Identity::default(),
            hostname: "strata".into(),
            network: Network::Private,
            stdin: Stdin::Null,
            tty: false,
            mounts: Vec::new(),
            host_files: true,
            strategy: Strategy::Auto,
            scratch_dir: None,
            tail_lines: 20,
            pids_limit: Some(DEFAULT_PIDS_LIMIT),
        }
    }

    /// The command as one shell-quoted line, for messages.
    pub fn command_line(&self) -> String {
        self.argv
            .iter()
            .map(|a| shell_quote(a))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The environment as `K=V` strings, with the default `PATH` added when absent.
    pub fn effective_env(&self) -> Vec<String> {
        let mut env: Vec<String> = self.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        if !self.env.iter().any(|(k, _)| k == "PATH") {
            env.push(format!("PATH={DEFAULT_PATH}"));
        }
        env
    }

    /// Check what can be checked without touching the filesystem.
    pub fn validate(&self) -> Result<(), SandboxError> {
        let bad = |m: String| Err(SandboxError::InvalidSpec(m));
        if self.argv.is_empty() {
            return bad("empty command".into());
        }
        for arg in self.argv.iter().chain(std::iter::once(&self.cwd)) {
            if arg.contains('\0') {
                return bad(format!("NUL byte in {arg:?}"));
            }
        }
        for (k, v) in &self.env {
            if k.is_empty() || k.contains('=') || k.contains('\0') || v.contains('\0') {
                return bad(format!("invalid environment variable {k:?}"));
            }
        }
        if !self.cwd.starts_with('/') {
            return bad(format!("working directory {:?} is not absolute", self.cwd));
        }
        if self.pids_limit == Some(0) {
            return bad("a pids limit of 0 allows no process (use None for unlimited)".into());
        }
        if self.hostname.is_empty() || self.hostname.len() > 64 {
            return bad(format!("invalid hostname {:?}", self.hostname));
        }
        match &self.rootfs {
            RootFs::Overlay {
                lowers,
                upper,
                work,
            } => {
                if lowers.is_empty() {
                    return bad("an overlay root needs at least one lower directory".into());
                }
                for p in lowers.iter().chain([upper, work]) {
                    if !p.is_absolute() {
                        return bad(format!("{} is not absolute", p.display()));
                    }
                }
            }
            RootFs::Dir(dir) => {
                if !dir.is_absolute() {
                    return bad(format!("{} is not absolute", dir.display()));
                }
            }
        }
        for m in &self.mounts {
            let target = m.target();
            if !target.starts_with('/') || target.contains('\0') {
                return bad(format!("mount target {target:?} is not an absolute path"));
            }
            let clean = crate::view::clean(&target);
            if clean.is_empty() {
                return bad("cannot mount over /".into());
            }
            for reserved in ["proc", "sys", "dev"] {
                if clean == reserved
                    || (reserved != "dev" && clean.starts_with(&format!("{reserved}/")))
                {
                    return bad(format!(
                        "cannot mount at {target}: /{reserved} is the sandbox's"
                    ));
                }
            }
            match m {
                ExtraMount::Bind { source, .. } | ExtraMount::Cache { dir: source, .. } => {
                    if !source.is_absolute() {
                        return bad(format!("mount source {} is not absolute", source.display()));
                    }
                }
                ExtraMount::Secret { id, .. } => {
                    if id.is_empty() || id.contains('/') || id == "." || id == ".." {
                        return bad(format!("invalid secret id {id:?}"));
                    }
                }
                ExtraMount::Tmpfs { .. } => {}
            }
        }
        Ok(())
    }
}

/// Quote `s` for a POSIX shell when it needs it.
pub fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> SandboxSpec {
        SandboxSpec::new(
            RootFs::Dir("/r".into()),
            vec!["sh".into(), "-c".into(), "echo 'a b'".into()],
        )
    }

    #[test]
    fn default_path_added_only_when_absent() {
        let mut s = spec();
        assert_eq!(s.effective_env(), vec![format!("PATH={DEFAULT_PATH}")]);
        s.env = vec![("PATH".into(), "/bin".into()), ("A".into(), "1".into())];
        assert_eq!(
            s.effective_env(),
            vec!["PATH=/bin".to_string(), "A=1".into()]
        );
    }

    #[test]
    fn command_line_is_quoted() {
        assert_eq!(spec().command_line(), r#"sh -c 'echo '\''a b'\'''"#);
    }

    #[test]
    fn validation_rejects_bad_specs() {
        let mut s = spec();
        s.validate().unwrap();
        s.cwd = "rel".into();
        assert!(s.validate().is_err());
        let mut s = spec();
        s.argv.clear();
        assert!(s.validate().is_err());
        let mut s = spec();
        s.mounts.push(ExtraMount::Tmpfs {
            target: "/proc/x".into(),
            size: None,
        });
        assert!(s.validate().unwrap_err().to_string().contains("/proc"));
        let mut s = spec();
        s.mounts.push(ExtraMount::Tmpfs {
            target: "/../".into(),
            size: None,
        });
        assert!(s.validate().is_err());
        let mut s = spec();
        s.mounts.push(ExtraMount::Secret {
            id: "../x".into(),
            content: SecretBytes(b"s".to_vec()),
            target: None,
            uid: 0,
            gid: 0,
            mode: 0o400,
        });
        assert!(s.validate().is_err());
    }

    #[test]
    fn secret_debug_is_redacted() {
        let dbg = format!("{:?}", SecretBytes(b"hunter2".to_vec()));
        assert!(!dbg.contains("hunter2"));
    }
}
