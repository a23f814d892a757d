//! Where deployments run, behind one small trait: the reconcile logic asks a [`Target`] to load an
//! image, start, list, probe and stop containers. [`Podman`] is the local target.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::error::DeployError;

/// The label every deployment container carries: `FILE/DEPLOYMENT`.
pub const LABEL_DEPLOYMENT: &str = "dev.strata.deploy";
/// The label naming the manifest digest a container runs.
pub const LABEL_DIGEST: &str = "dev.strata.deploy.digest";

/// A container to start.
#[derive(Debug, Clone)]
pub struct ContainerSpec {
    /// Its name.
    pub name: String,
    /// The image, as the target knows it (podman's image id).
    pub image: String,
    /// Labels.
    pub labels: Vec<(String, String)>,
    /// Environment.
    pub env: Vec<(String, String)>,
    /// Container ports to reach: each published on a private loopback port (bridge network), or
    /// reached inside the container's namespace (no network).
    pub ports: Vec<u16>,
    /// The container's network.
    pub network: crate::config::Network,
}

/// A container the target lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Container {
    /// Its name.
    pub name: String,
    /// Whether it runs.
    pub running: bool,
}

/// A place containers run.
pub trait Target {
    /// Make the image in `archive` (an oci-archive) available; returns the target's image id.
    fn load(&self, deployment: &str, archive: &Path) -> Result<String, DeployError>;
    /// Start a container; returns the endpoint ([`crate::proxy::Endpoint`]) of each container
    /// port.
    fn start(
        &self,
        deployment: &str,
        spec: &ContainerSpec,
    ) -> Result<Vec<(u16, String)>, DeployError>;
    /// The containers labelled `dev.strata.deploy=label`.
    fn list(&self, deployment: &str, label: &str) -> Result<Vec<Container>, DeployError>;
    /// Run `sh -c command` in a container; whether it exited 0.
    fn exec(&self, deployment: &str, container: &str, command: &str) -> Result<bool, DeployError>;
    /// Stop a container with its image's stop signal, SIGKILL after `grace`, and remove it.
    fn remove(&self, deployment: &str, container: &str, grace: Duration)
    -> Result<(), DeployError>;
}

/// Podman on this machine.
#[derive(Debug, Clone, Default)]
pub struct Podman {
    /// The podman program (default `podman`).
    pub program: PathBuf,
    /// Options before the subcommand (`--root DIR --storage-driver vfs`).
    pub global_args: Vec<String>,
    /// Extra options of `podman run` (`--runtime runc --ulimit ...`).
    pub run_args: Vec<String>,
}

impl Podman {
    fn command(&self) -> Command {
        let program = if self.program.as_os_str().is_empty() {
            Path::new("podman")
        } else {
            &self.program
        };
        let mut c = Command::new(program);
        c.args(&self.global_args);
        c
    }

    /// Run podman with `args`; its stdout, or its last stderr line as the error.
    fn run(&self, deployment: &str, action: &str, args: &[&str]) -> Result<String, DeployError> {
        let out = self
            .command()
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|source| DeployError::Spawn { source })?;
        if out.status.success() {
            return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        let message = stderr
            .lines()
            .rev()
            .find(|l| l.starts_with("Error"))
            .or_else(|| stderr.lines().rev().find(|l| !l.trim().is_empty()))
            .unwrap_or("no error output")
            .trim()
            .to_string();
        Err(DeployError::Target {
            deployment: deployment.to_string(),
            action: action.to_string(),
            message,
        })
    }
}

impl Target for Podman {
    fn load(&self, deployment: &str, archive: &Path) -> Result<String, DeployError> {
        let source = format!("oci-archive:{}", archive.display());
        let out = self.run(deployment, "pull", &["pull", "-q", &source])?;
        out.lines()
            .rev()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .map(str::to_string)
            .ok_or_else(|| DeployError::Target {
                deployment: deployment.to_string(),
                action: "pull".into(),
                message: "printed no image id".into(),
            })
    }

    fn start(
        &self,
        deployment: &str,
        spec: &ContainerSpec,
    ) -> Result<Vec<(u16, String)>, DeployError> {
        let mut args: Vec<String> = vec![
            "run".into(),
            "-d".into(),
            "--name".into(),
            spec.name.clone(),
        ];
        args.extend(self.run_args.iter().cloned());
        for (k, v) in &spec.labels {
            args.push("--label".into());
            args.push(format!("{k}={v}"));
        }
        for (k, v) in &spec.env {
            args.push("--env".into());
            args.push(format!("{k}={v}"));
        }
        let bridge = spec.network == crate::config::Network::Bridge;
        if bridge {
            for p in &spec.ports {
                args.push("--publish".into());
                args.push(format!("127.0.0.1::{p}"));
            }
        } else {
            args.push("--network".into());
            args.push("none".into());
        }
        args.push(spec.image.clone());
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        self.run(deployment, "run", &refs)?;
        if !bridge {
            let out = self.run(
                deployment,
                "inspect",
                &["inspect", "--format", "{{.State.Pid}}", &spec.name],
            )?;
            let pid: u32 =
                out.trim()
                    .parse()
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or_else(|| DeployError::Target {
                        deployment: deployment.to_string(),
                        action: "inspect".into(),
                        message: format!("the container has no process (pid {:?})", out.trim()),
                    })?;
            let ns = crate::proxy::netns_of(pid).map_err(|e| DeployError::Target {
                deployment: deployment.to_string(),
                action: "inspect".into(),
                message: format!("the network namespace of its process {pid}: {e}"),
            })?;
            return Ok(spec
                .ports
                .iter()
                .map(|p| {
                    (
                        *p,
                        crate::proxy::Endpoint::Netns { pid, ns, port: *p }.to_string(),
                    )
                })
                .collect());
        }
        let mut ports = Vec::new();
        for p in &spec.ports {
            let out = self.run(deployment, "port", &["port", &spec.name, &p.to_string()])?;
            let host = out
                .lines()
                .filter_map(|l| l.trim().rsplit_once(':'))
                .find_map(|(_, port)| port.parse::<u16>().ok())
                .ok_or_else(|| DeployError::Target {
                    deployment: deployment.to_string(),
                    action: "port".into(),
                    message: format!("no host port for container port {p}: {out:?}"),
                })?;
            ports.push((*p, crate::proxy::Endpoint::Host(host).to_string()));
        }
        Ok(ports)
    }

    fn list(&self, deployment: &str, label: &str) -> Result<Vec<Container>, DeployError> {
        let filter = format!("label={LABEL_DEPLOYMENT}={label}");
        let out = self.run(
            deployment,
            "ps",
            &[
                "ps",
                "-a",
                "--filter",
                &filter,
                "--format",
                "{{.Names}} {{.State}}",
            ],
        )?;
        Ok(out
            .lines()
            .filter_map(|l| {
                let (name, state) = l.trim().split_once(' ')?;
                Some(Container {
                    name: name.to_string(),
                    running: state.trim() == "running" || state.starts_with("Up"),
                })
            })
            .collect())
    }

    fn exec(&self, deployment: &str, container: &str, command: &str) -> Result<bool, DeployError> {
        let status = self
            .command()
            .args(["exec", container, "sh", "-c", command])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map_err(|source| DeployError::Spawn { source })?;
        let _ = deployment;
        Ok(status.success())
    }

    fn remove(
        &self,
        deployment: &str,
        container: &str,
        grace: Duration,
    ) -> Result<(), DeployError> {
        let secs = grace.as_secs().max(1).to_string();
        // `stop` sends the image's StopSignal, then SIGKILL after the grace period.
        let _ = self.run(deployment, "stop", &["stop", "-t", &secs, container]);
        match self.run(deployment, "rm", &["rm", "-f", "-t", &secs, container]) {
            Ok(_) => Ok(()),
            Err(DeployError::Target { message, .. }) if message.contains("no such container") => {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }
}
