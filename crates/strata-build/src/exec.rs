//! Run a command in a stored image with the build sandbox and throw its changes away: `strata run`,
//! and the command tests of the tier tests.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use strata_oci::Store;
use strata_sandbox::{ExitStatus, Network, Output, SandboxError};

use crate::error::StepError;
use crate::snapshot::Snapshots;
use strata_oci::image_config::ImageConfig;

/// What to run.
#[derive(Debug, Clone)]
pub struct ExecRequest {
    /// The command; empty: the image's ENTRYPOINT + CMD.
    pub argv: Vec<String>,
    /// Replace the entrypoint (`--entrypoint`); the command then follows it.
    pub entrypoint: Option<Vec<String>>,
    /// `user[:group]`; None: the image's USER.
    pub user: Option<String>,
    /// Working directory; None: the image's WORKDIR.
    pub workdir: Option<String>,
    /// Extra environment, after the image's.
    pub env: Vec<(String, String)>,
    /// The network: its own with outbound access (the default), the host's, or none.
    pub network: Network,
    /// The most processes the command may have at once; None: unlimited.
    pub pids_limit: Option<u32>,
    /// Give the command this process's stdin (`-i`); otherwise it reads /dev/null.
    pub interactive: bool,
    /// Give the command a terminal (`-t`), with `TERM=xterm` unless the image or `env` sets it.
    pub tty: bool,
}

impl Default for ExecRequest {
    fn default() -> Self {
        ExecRequest {
            argv: Vec::new(),
            entrypoint: None,
            user: None,
            workdir: None,
            env: Vec::new(),
            network: Network::default(),
            pids_limit: Some(strata_sandbox::DEFAULT_PIDS_LIMIT),
            interactive: false,
            tty: false,
        }
    }
}

/// How the command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutcome {
    /// The exit code (128 + signal when killed).
    pub code: i32,
}

/// Run `request` in image `reference`. Snapshots are kept in `work_dir/snapshots` (shared with
/// builds); the writable layer lives in a temp directory under the store and is removed.
pub fn exec(
    store: &Store,
    reference: &str,
    request: &ExecRequest,
    work_dir: &Path,
    output: &mut dyn Output,
    cancel: Arc<AtomicBool>,
) -> Result<ExecOutcome, StepError> {
    // Held while the image's snapshots are mounted: gc (which sweeps snapshots) waits for it.
    let _lease = store.lease()?;
    let descriptor = store.refs().resolve(reference).map_err(|e| match e {
        strata_oci::Error::ImageNotFound(_) => StepError::BaseNotFound(reference.to_string()),
        other => StepError::Store(other),
    })?;
    let image = store.image_from_descriptor(&descriptor)?;
    let raw = store.blobs().read_descriptor(image.manifest().config())?;
    let config: ImageConfig =
        serde_json::from_slice(&raw).map_err(|e| strata_oci::Error::Json {
            what: format!("config of {reference}"),
            source: e,
        })?;
    let diff_ids = image.diff_ids()?;
    let snapshots = Snapshots::new(work_dir.join("snapshots"));
    let lowers: Vec<PathBuf> = image
        .layers()
        .iter()
        .zip(&diff_ids)
        .map(|(l, d)| snapshots.get(store, l, &d.to_string()))
        .collect::<Result<_, _>>()?;
    if lowers.is_empty() {
        return Err(StepError::Run(format!(
            "{reference} has no layers: nothing to run"
        )));
    }
    let argv = command_of(&config, request);
    if argv.is_empty() {
        return Err(StepError::Run(format!(
            "{reference} has no ENTRYPOINT or CMD: give a command"
        )));
    }
    let user_spec = request
        .user
        .clone()
        .or_else(|| config.config.user.clone())
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "0".to_string());
    let view = strata_sandbox::LayerView::new(&lowers);
    let user =
        strata_sandbox::resolve_user(&user_spec, &view).map_err(|source| StepError::SandboxAt {
            what: format!("user {user_spec}"),
            source,
        })?;
    let scratch = store.tmp_dir();
    std::fs::create_dir_all(&scratch).map_err(|source| StepError::Io {
        path: scratch.clone(),
        source,
    })?;
    let (mut spec, _dir) = crate::run::spec(lowers, &scratch, argv)?;
    let mut env = config.env_pairs();
    for (k, v) in &request.env {
        env.retain(|(key, _)| key != k);
        env.push((k.clone(), v.clone()));
    }
    if !env.iter().any(|(k, _)| k == "HOME") {
        env.push(("HOME".to_string(), user.home.clone()));
    }
    if request.tty && !env.iter().any(|(k, _)| k == "TERM") {
        env.push(("TERM".to_string(), "xterm".to_string()));
    }
    spec.env = env;
    spec.tty = request.tty;
    spec.cwd = request
        .workdir
        .clone()
        .or_else(|| config.config.working_dir.clone())
        .filter(|w| !w.is_empty())
        .unwrap_or_else(|| "/".to_string());
    spec.user = user.identity.clone();
    spec.network = request.network;
    spec.pids_limit = request.pids_limit;
    if request.interactive {
        spec.stdin = strata_sandbox::Stdin::Inherit;
    }
    let cancel = strata_sandbox::Cancel::from_flag(cancel);
    match strata_sandbox::run(&spec, output, &cancel) {
        Ok(_) => Ok(ExecOutcome { code: 0 }),
        Err(SandboxError::CommandFailed { status, .. }) => Ok(ExecOutcome {
            code: match status {
                ExitStatus::Code(c) => c,
                ExitStatus::Signal(s) => 128 + s,
            },
        }),
        Err(SandboxError::Cancelled { .. }) => Err(StepError::Interrupted),
        Err(e) => Err(StepError::Sandbox(e)),
    }
}

/// ENTRYPOINT + CMD as Docker combines them with a command given on the command line.
fn command_of(config: &ImageConfig, request: &ExecRequest) -> Vec<String> {
    let entrypoint = request
        .entrypoint
        .clone()
        .or_else(|| config.config.entrypoint.clone())
        .unwrap_or_default();
    let cmd = if request.argv.is_empty() && request.entrypoint.is_none() {
        config.config.cmd.clone().unwrap_or_default()
    } else {
        request.argv.clone()
    };
    entrypoint.into_iter().chain(cmd).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entrypoint_and_cmd_combine_as_docker_does() {
        let mut config = ImageConfig::scratch();
        config.config.entrypoint = Some(vec!["/entry".into()]);
        config.config.cmd = Some(vec!["default".into()]);
        let req = ExecRequest::default();
        assert_eq!(command_of(&config, &req), ["/entry", "default"]);
        let req = ExecRequest {
            argv: vec!["x".into()],
            ..Default::default()
        };
        assert_eq!(command_of(&config, &req), ["/entry", "x"]);
        let req = ExecRequest {
            entrypoint: Some(vec!["/bin/sh".into()]),
            ..Default::default()
        };
        assert_eq!(command_of(&config, &req), ["/bin/sh"]);
    }
}
