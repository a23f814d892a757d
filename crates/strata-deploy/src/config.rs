//! The deploy file, `deploy.toml`: which image each deployment follows, how a new digest is let in
//! (trigger, policy), where it runs and how its health is judged.
//!
//! Parsed with serde (unknown keys rejected) and checked after; every error is one line naming
//! `deploy.toml:LINE:COL`, located with the spans toml keeps for each value, as `strata.toml` is.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use strata_chain::{LineIndex, Location};
use toml::Spanned;

use crate::error::DeployError;

/// A parsed and checked `deploy.toml`.
#[derive(Debug, Clone)]
pub struct DeployFile {
    /// The file.
    pub path: PathBuf,
    /// Its directory: relative `oci:` paths are relative to it.
    pub dir: PathBuf,
    /// The name of this set of deployments (`acme-prod`); containers are named after it.
    pub name: String,
    /// The team that may approve, hold and roll back.
    pub owner: Option<String>,
    /// The deployments, in file order.
    pub deployments: Vec<Deployment>,
}

/// One `[[deployment]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Deployment {
    /// Its name, unique in the file.
    pub name: String,
    /// The image it follows.
    pub image: ImageSource,
    /// How a new digest is let in.
    pub trigger: Trigger,
    /// Where it runs.
    pub target: TargetKind,
    /// Published ports.
    pub ports: Vec<PortMap>,
    /// Environment of the container.
    pub env: BTreeMap<String, String>,
    /// How a new container is judged healthy (none: running is healthy).
    pub health: Option<Health>,
    /// Deploy only images whose chain of custody verifies.
    pub require_verified: bool,
    /// How long the old container gets between its stop signal and SIGKILL.
    pub stop_grace: Duration,
    /// The container's network.
    pub network: Network,
    /// Where its `name` is written.
    pub declared_at: Location,
    /// The repository and manifest of `target = "gitops"`.
    pub gitops: Option<crate::gitops::GitopsTarget>,
    /// The cluster of `target = "kubernetes"`.
    pub kubernetes: Option<crate::kubernetes::KubernetesTarget>,
}

/// The image a deployment follows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ImageSource {
    /// An image of the chain, in the local store (`acme/wordpress:latest`).
    Chain {
        /// As written.
        reference: String,
    },
    /// An image in a registry (`registry.example.com:5000/acme/wordpress:latest`), pulled into
    /// the store by digest.
    Registry {
        /// As written.
        reference: String,
    },
    /// An image in an OCI layout directory (`oci:DIR:REF`).
    Oci {
        /// The layout directory, joined to the deploy file's directory.
        dir: PathBuf,
        /// The tag or digest in it.
        reference: String,
    },
}

impl std::fmt::Display for ImageSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ImageSource::Chain { reference } | ImageSource::Registry { reference } => {
                f.write_str(reference)
            }
            ImageSource::Oci { dir, reference } => write!(f, "oci:{}:{reference}", dir.display()),
        }
    }
}

/// How a new digest is let in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Trigger {
    /// Deployed as soon as it is seen.
    Auto,
    /// Waits for `strata deploy approve`.
    Manual,
}

/// Where a deployment runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetKind {
    /// Podman on this machine.
    Local,
    /// A commit of the digest into manifests in a git repository (`gitops = { ... }`).
    Gitops,
    /// A server-side apply to a cluster (`kubernetes = { ... }`).
    Kubernetes,
}

/// The container's network.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Network {
    /// podman's default network: the container reaches out; its ports are published on private
    /// loopback ports of this machine, behind the front listeners.
    #[default]
    Bridge,
    /// No network but its own loopback: nothing in or out except through the front listeners,
    /// which connect inside the container's namespace (needs root, as podman does here).
    None,
}

/// A published port: the public `host:port` the deployment's front listener owns, and the
/// container's port it forwards to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PortMap {
    /// Address the front listener binds (`0.0.0.0` unless written).
    pub host_ip: String,
    /// The public port.
    pub host_port: u16,
    /// The container's port.
    pub container_port: u16,
}

/// How health is judged: a probe repeated until it passes or `timeout` runs out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Health {
    /// The probe.
    pub probe: Probe,
    /// How long the new container has to pass.
    pub timeout: Duration,
}

/// A health probe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Probe {
    /// `GET path` on the container's `port` answers 2xx or 3xx.
    Http {
        /// The path.
        path: String,
        /// The container port.
        port: u16,
    },
    /// A TCP connection to the container's `port` is accepted.
    Tcp {
        /// The container port.
        port: u16,
    },
    /// `sh -c command` in the container exits 0.
    Exec {
        /// The command.
        command: String,
    },
}

// ---- the schema, as written ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    name: Spanned<String>,
    owner: Option<Spanned<String>>,
    #[serde(default)]
    deployment: Vec<Spanned<RawDeployment>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDeployment {
    name: Spanned<String>,
    image: Spanned<String>,
    #[serde(default)]
    trigger: Option<Spanned<Trigger>>,
    #[serde(default)]
    target: Option<Spanned<TargetKind>>,
    #[serde(default)]
    ports: Vec<Spanned<String>>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    health: Option<Spanned<RawHealth>>,
    require: Option<RawRequire>,
    stop_grace: Option<Spanned<String>>,
    #[serde(default)]
    network: Option<Network>,
    gitops: Option<Spanned<RawGitops>>,
    kubernetes: Option<Spanned<RawKubernetes>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKubernetes {
    namespace: Spanned<String>,
    #[serde(default)]
    context: Option<String>,
    #[serde(default)]
    kubeconfig: Option<String>,
    #[serde(default)]
    image: Option<Spanned<String>>,
    #[serde(default)]
    replicas: Option<u32>,
    #[serde(default)]
    poll: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGitops {
    repo: Spanned<String>,
    path: Spanned<String>,
    #[serde(default)]
    branch: Option<Spanned<String>>,
    #[serde(default)]
    image: Option<Spanned<String>>,
    #[serde(default)]
    new_name: Option<Spanned<String>>,
    #[serde(default)]
    yaml_path: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHealth {
    http: Option<String>,
    tcp: Option<bool>,
    exec: Option<String>,
    port: Option<u16>,
    timeout: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRequire {
    #[serde(default)]
    verified: bool,
}

/// Default time a new container has to become healthy.
const DEFAULT_HEALTH_TIMEOUT: Duration = Duration::from_secs(30);
/// Default grace between the stop signal and SIGKILL (podman's default).
const DEFAULT_STOP_GRACE: Duration = Duration::from_secs(10);

impl DeployFile {
    /// Read and check the deploy file at `path`.
    pub fn load(path: &Path) -> Result<DeployFile, DeployError> {
        let text = std::fs::read_to_string(path).map_err(|source| DeployError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        DeployFile::parse(path, &text)
    }

    /// Parse and check `text`, the deploy file at `path`.
    pub fn parse(path: &Path, text: &str) -> Result<DeployFile, DeployError> {
        let raw: RawFile = toml::from_str(text).map_err(|e| {
            let offset = e.span().map_or(0, |s| s.start);
            DeployError::Syntax {
                location: Location::at_offset(path, text, offset),
                message: e
                    .message()
                    .lines()
                    .next()
                    .unwrap_or("invalid TOML")
                    .to_string(),
            }
        })?;
        let lines = LineIndex::new(text);
        let err = |span: Range<usize>, message: String| DeployError::Syntax {
            location: lines.locate(path, span.start),
            message,
        };
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        if !is_name(raw.name.get_ref()) {
            return Err(err(raw.name.span(), name_rule("name", raw.name.get_ref())));
        }
        let mut deployments: Vec<Deployment> = Vec::new();
        for (n, spanned) in raw.deployment.into_iter().enumerate() {
            let raw_span = spanned.span();
            let d = spanned.into_inner();
            let name = d.name.get_ref().clone();
            if !is_name(&name) {
                return Err(err(
                    d.name.span(),
                    name_rule(&format!("deployment[{n}].name"), &name),
                ));
            }
            if deployments.iter().any(|x| x.name == name) {
                return Err(err(
                    d.name.span(),
                    format!("deployment \"{name}\" is declared twice"),
                ));
            }
            let image = parse_image(d.image.get_ref(), &dir)
                .map_err(|m| err(d.image.span(), format!("deployment[{n}].image: {m}")))?;
            let mut ports = Vec::new();
            for p in &d.ports {
                ports.push(
                    parse_port(p.get_ref())
                        .map_err(|m| err(p.span(), format!("deployment[{n}].ports: {m}")))?,
                );
            }
            let health = match d.health {
                None => None,
                Some(h) => {
                    let span = h.span();
                    Some(check_health(h.into_inner(), &ports).map_err(|(s, m)| {
                        err(s.unwrap_or(span), format!("deployment[{n}].health: {m}"))
                    })?)
                }
            };
            let stop_grace = match &d.stop_grace {
                None => DEFAULT_STOP_GRACE,
                Some(s) => parse_duration(s.get_ref())
                    .map_err(|m| err(s.span(), format!("deployment[{n}].stop_grace: {m}")))?,
            };
            if d.env.keys().any(|k| k.is_empty() || k.contains('=')) {
                return Err(err(
                    raw_span,
                    format!("deployment[{n}].env: a name is empty or holds '='"),
                ));
            }
            let target = d
                .target
                .as_ref()
                .map_or(TargetKind::Local, |t| *t.get_ref());
            let gitops = match (target, d.gitops) {
                (TargetKind::Gitops, Some(g)) => {
                    let local_only = [
                        (!d.ports.is_empty(), "ports"),
                        (!d.env.is_empty(), "env"),
                        (health.is_some(), "health"),
                        (d.network.is_some(), "network"),
                        (d.stop_grace.is_some(), "stop_grace"),
                    ];
                    if let Some((_, key)) = local_only.iter().find(|(set, _)| *set) {
                        return Err(err(
                            raw_span,
                            format!(
                                "deployment[{n}].{key}: target = \"gitops\" writes only the \
                                 digest; {key} belongs in the manifests of the repository"
                            ),
                        ));
                    }
                    Some(
                        check_gitops(g.into_inner(), &image, &dir)
                            .map_err(|(s, m)| err(s, format!("deployment[{n}].gitops.{m}")))?,
                    )
                }
                (TargetKind::Gitops, None) => {
                    return Err(err(
                        d.target.as_ref().map_or(raw_span.clone(), Spanned::span),
                        format!(
                            "deployment[{n}]: target = \"gitops\" needs gitops = {{ repo = \
                             \"DIR or URL\", path = \"FILE\" }}"
                        ),
                    ));
                }
                (_, Some(g)) => {
                    return Err(err(
                        g.span(),
                        format!("deployment[{n}].gitops is set but target is not \"gitops\""),
                    ));
                }
                (_, None) => None,
            };
            let kubernetes = match (target, d.kubernetes) {
                (TargetKind::Kubernetes, Some(k)) => {
                    if d.network.is_some() {
                        return Err(err(
                            raw_span,
                            format!(
                                "deployment[{n}].network: a podman network; the cluster's \
                                 network policies decide it for target = \"kubernetes\""
                            ),
                        ));
                    }
                    let span = k.span();
                    Some(
                        check_kubernetes(k.into_inner(), &image, &dir).map_err(|(s, m)| {
                            err(s.unwrap_or(span), format!("deployment[{n}].kubernetes.{m}"))
                        })?,
                    )
                }
                (TargetKind::Kubernetes, None) => {
                    return Err(err(
                        d.target.as_ref().map_or(raw_span.clone(), Spanned::span),
                        format!(
                            "deployment[{n}]: target = \"kubernetes\" needs kubernetes = {{ \
                             namespace = \"NS\" }}"
                        ),
                    ));
                }
                (_, Some(k)) => {
                    return Err(err(
                        k.span(),
                        format!(
                            "deployment[{n}].kubernetes is set but target is not \"kubernetes\""
                        ),
                    ));
                }
                (_, None) => None,
            };
            deployments.push(Deployment {
                name,
                image,
                trigger: d.trigger.map_or(Trigger::Auto, Spanned::into_inner),
                target,
                ports,
                env: d.env,
                health,
                require_verified: d.require.is_some_and(|r| r.verified),
                stop_grace,
                network: d.network.unwrap_or_default(),
                declared_at: lines.locate(path, d.name.span().start),
                gitops,
                kubernetes,
            });
        }
        Ok(DeployFile {
            path: path.to_path_buf(),
            dir,
            name: raw.name.into_inner(),
            owner: raw.owner.map(Spanned::into_inner),
            deployments,
        })
    }

    /// The deployment named `name`.
    pub fn deployment(&self, name: &str) -> Option<&Deployment> {
        self.deployments.iter().find(|d| d.name == name)
    }
}

/// Check `gitops = { ... }`; an error is (span, `key: message`).
fn check_gitops(
    raw: RawGitops,
    image: &ImageSource,
    dir: &Path,
) -> Result<crate::gitops::GitopsTarget, (Range<usize>, String)> {
    use crate::gitops::{Edit, GitopsTarget, Repo, repository_of};
    let repo_text = raw.repo.get_ref();
    let repo = if repo_text.contains("://") {
        strata_chain::git::check_url(repo_text)
            .map_err(|e| (raw.repo.span(), format!("repo: {e}")))?;
        Repo::Url(repo_text.clone())
    } else if repo_text.is_empty() || repo_text.starts_with('-') || repo_text.contains("::") {
        return Err((
            raw.repo.span(),
            format!("repo: {repo_text:?} is not a directory or a URL"),
        ));
    } else {
        Repo::Dir(dir.join(repo_text))
    };
    let path_text = raw.path.get_ref();
    let path = PathBuf::from(path_text);
    if path_text.is_empty()
        || path
            .components()
            .any(|c| !matches!(c, std::path::Component::Normal(_)))
    {
        return Err((
            raw.path.span(),
            format!(
                "path: {path_text:?} must be a relative path inside the repository, without .."
            ),
        ));
    }
    let branch = match raw.branch {
        None => "main".to_string(),
        Some(b) => {
            strata_chain::git::check_rev(b.get_ref())
                .map_err(|e| (b.span(), format!("branch: {e}")))?;
            b.into_inner()
        }
    };
    let default_repository = match image {
        ImageSource::Chain { reference } | ImageSource::Registry { reference } => {
            repository_of(reference)
        }
        // An `oci:DIR:TAG` names no repository: `image` or `new_name` must.
        ImageSource::Oci { .. } => match (&raw.image, &raw.new_name) {
            (Some(_), _) | (_, Some(_)) => String::new(),
            (None, None) => {
                return Err((
                    raw.repo.span(),
                    "image: needed for an oci: image (the name the manifests use), or new_name"
                        .into(),
                ));
            }
        },
    };
    for v in [&raw.image, &raw.new_name].into_iter().flatten() {
        if v.get_ref().is_empty()
            || v.get_ref()
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || "#'\"{}[],&*!|>%@`".contains(c))
        {
            return Err((v.span(), format!("{:?} is not an image name", v.get_ref())));
        }
    }
    let edit = match raw.yaml_path {
        Some(p) => {
            if let Some(i) = &raw.image {
                return Err((
                    i.span(),
                    "image: names a kustomization images: entry; with yaml_path use new_name"
                        .into(),
                ));
            }
            let steps = crate::yamledit::parse_path(p.get_ref())
                .map_err(|e| (p.span(), format!("yaml_path: {e}")))?;
            Edit::YamlPath {
                text: p.get_ref().clone(),
                steps,
                repository: raw.new_name.map_or(default_repository, Spanned::into_inner),
            }
        }
        None if raw.image.is_none() && default_repository.is_empty() => {
            return Err((
                raw.repo.span(),
                "image: needed for an oci: image (the images: entry's name)".into(),
            ));
        }
        None => Edit::Kustomize {
            name: raw.image.map_or(default_repository, Spanned::into_inner),
            new_name: raw.new_name.map(Spanned::into_inner),
        },
    };
    Ok(GitopsTarget {
        repo,
        path,
        branch,
        edit,
    })
}

/// Check `kubernetes = { ... }`; an error is (span, `key: message`).
fn check_kubernetes(
    raw: RawKubernetes,
    image: &ImageSource,
    dir: &Path,
) -> Result<crate::kubernetes::KubernetesTarget, (Option<Range<usize>>, String)> {
    let ns = raw.namespace.get_ref();
    let dns = ns.len() <= 63
        && !ns.is_empty()
        && ns
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !ns.starts_with('-')
        && !ns.ends_with('-');
    if !dns {
        return Err((
            Some(raw.namespace.span()),
            format!("namespace: {ns:?} is not a namespace name (lower-case letters, digits, '-')"),
        ));
    }
    let repository = match (raw.image, image) {
        (Some(i), _) => {
            let r = i.get_ref();
            if r.is_empty()
                || r.contains('@')
                || r.chars().any(|c| c.is_whitespace() || c.is_control())
            {
                return Err((
                    Some(i.span()),
                    format!("image: {r:?} is not an image repository"),
                ));
            }
            i.into_inner()
        }
        (None, ImageSource::Registry { reference }) => crate::gitops::repository_of(reference),
        (None, _) => {
            return Err((
                None,
                "image: needed: the registry repository the cluster pulls this chain image from \
                 (image = \"registry.example.com/acme/web\"; strata push or strata watch puts \
                 it there)"
                    .into(),
            ));
        }
    };
    let poll = match &raw.poll {
        None => Duration::from_secs(1),
        Some(p) => {
            parse_duration(p.get_ref()).map_err(|m| (Some(p.span()), format!("poll: {m}")))?
        }
    };
    Ok(crate::kubernetes::KubernetesTarget {
        namespace: raw.namespace.into_inner(),
        context: raw.context,
        kubeconfig: raw.kubeconfig.map(|k| dir.join(k)),
        repository,
        replicas: raw.replicas.unwrap_or(1),
        poll,
    })
}

/// A name that can be part of a container name: `[a-z0-9][a-z0-9_.-]*`, at most 63 characters.
fn is_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= 63
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.-".contains(c))
}

fn name_rule(field: &str, name: &str) -> String {
    format!(
        "{field} \"{name}\" must be lower-case letters, digits, '.', '_' or '-', starting with a \
         letter or digit, at most 63 characters"
    )
}

/// `oci:DIR[:REF]`, a registry reference (first component has a `.` or `:`), or a chain image in the
/// store (`acme/web`, `localhost/acme/web:3`).
fn parse_image(text: &str, dir: &Path) -> Result<ImageSource, String> {
    if text.is_empty() {
        return Err("empty image reference".into());
    }
    if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("\"{text}\" holds white space"));
    }
    if let Some(rest) = text.strip_prefix("oci:") {
        let (path, reference) = match rest.rsplit_once(':') {
            Some((p, r)) if !r.contains('/') && !p.is_empty() => (p, r.to_string()),
            _ => (rest, "latest".to_string()),
        };
        if path.is_empty() {
            return Err("oci: needs a directory (oci:DIR:REF)".into());
        }
        return Ok(ImageSource::Oci {
            dir: dir.join(path),
            reference,
        });
    }
    // `localhost/...` without a port is how the store names chain images, not a registry.
    let first = text.split('/').next().unwrap_or_default();
    if text.contains('/') && (first.contains('.') || first.contains(':')) {
        Ok(ImageSource::Registry {
            reference: text.to_string(),
        })
    } else {
        Ok(ImageSource::Chain {
            reference: text.to_string(),
        })
    }
}

/// `[IP:]HOST_PORT:CONTAINER_PORT` or `PORT` (the same on both sides).
fn parse_port(text: &str) -> Result<PortMap, String> {
    let parts: Vec<&str> = text.rsplitn(3, ':').collect();
    let port = |s: &str| {
        s.parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("\"{s}\" is not a port (1-65535) in \"{text}\""))
    };
    let (ip, host, container) = match parts.as_slice() {
        [c] => ("0.0.0.0", port(c)?, port(c)?),
        [c, h] => ("0.0.0.0", port(h)?, port(c)?),
        [c, h, ip] => (*ip, port(h)?, port(c)?),
        _ => return Err(format!("\"{text}\" is not [IP:]HOST:CONTAINER")),
    };
    if ip.parse::<std::net::IpAddr>().is_err() {
        return Err(format!("\"{ip}\" is not an IP address in \"{text}\""));
    }
    Ok(PortMap {
        host_ip: ip.to_string(),
        host_port: host,
        container_port: container,
    })
}

fn check_health(
    raw: RawHealth,
    ports: &[PortMap],
) -> Result<Health, (Option<Range<usize>>, String)> {
    let timeout = match &raw.timeout {
        None => DEFAULT_HEALTH_TIMEOUT,
        Some(t) => parse_duration(t.get_ref()).map_err(|m| (Some(t.span()), m))?,
    };
    let port = || {
        raw.port
            .or_else(|| (ports.len() == 1).then(|| ports[0].container_port))
            .ok_or((
                None,
                "needs `port` (the container port to probe)".to_string(),
            ))
    };
    let probe = match (&raw.http, raw.tcp, &raw.exec) {
        (Some(path), None, None) => {
            if !path.starts_with('/') || path.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err((None, format!("http path \"{path}\" must start with '/'")));
            }
            Probe::Http {
                path: path.clone(),
                port: port()?,
            }
        }
        (None, Some(true), None) => Probe::Tcp { port: port()? },
        (None, None, Some(command)) => Probe::Exec {
            command: command.clone(),
        },
        _ => {
            return Err((
                None,
                "needs exactly one of `http = \"/path\"`, `tcp = true`, `exec = \"command\"`"
                    .into(),
            ));
        }
    };
    Ok(Health { probe, timeout })
}

/// `500ms`, `30s`, `2m`, `1h`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("\"{text}\" is not a duration (500ms, 30s, 2m)");
    let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().map_err(|_| bad())?;
    let ms = match unit {
        "ms" => n,
        "s" => n.checked_mul(1000).ok_or_else(bad)?,
        "m" => n.checked_mul(60_000).ok_or_else(bad)?,
        "h" => n.checked_mul(3_600_000).ok_or_else(bad)?,
        _ => return Err(bad()),
    };
    Ok(Duration::from_millis(ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<DeployFile, DeployError> {
        DeployFile::parse(Path::new("/d/deploy.toml"), text)
    }

    const GOOD: &str = r#"
name = "acme-prod"
owner = "development"
[[deployment]]
name = "wordpress"
image = "acme/wordpress:latest"
trigger = "manual"
target = "local"
ports = ["8080:80"]
env = { DB = "db:3306" }
health = { http = "/", port = 80, timeout = "5s" }
require = { verified = true }
stop_grace = "2s"

[[deployment]]
name = "remote"
image = "registry.example.com:5000/acme/x:1"
health = { tcp = true }
ports = ["127.0.0.1:9000:9000"]

[[deployment]]
name = "layout"
image = "oci:images/out:v1"
network = "none"
health = { exec = "test -e /ready" }
"#;

    #[test]
    fn a_full_file_parses() {
        let file = parse(GOOD).unwrap();
        assert_eq!(file.name, "acme-prod");
        assert_eq!(file.owner.as_deref(), Some("development"));
        let wp = &file.deployments[0];
        assert_eq!(wp.trigger, Trigger::Manual);
        assert!(wp.require_verified);
        assert_eq!(wp.stop_grace, Duration::from_secs(2));
        assert_eq!(
            wp.health.as_ref().unwrap().probe,
            Probe::Http {
                path: "/".into(),
                port: 80
            }
        );
        assert_eq!(wp.ports[0].host_port, 8080);
        assert_eq!(wp.ports[0].container_port, 80);
        assert_eq!(wp.declared_at.line, 5);
        let remote = &file.deployments[1];
        assert!(matches!(remote.image, ImageSource::Registry { .. }));
        assert_eq!(remote.trigger, Trigger::Auto);
        assert_eq!(
            remote.health.as_ref().unwrap().probe,
            Probe::Tcp { port: 9000 }
        );
        assert_eq!(remote.ports[0].host_ip, "127.0.0.1");
        assert_eq!(remote.network, Network::Bridge);
        assert_eq!(file.deployments[2].network, Network::None);
        assert_eq!(
            file.deployments[2].image,
            ImageSource::Oci {
                dir: "/d/images/out".into(),
                reference: "v1".into()
            }
        );
    }

    #[test]
    fn unknown_keys_are_errors_with_file_and_line() {
        let text = "name = \"a\"\n[[deployment]]\nname = \"w\"\nimage = \"x\"\nrepliacs = 3\n";
        let e = parse(text).unwrap_err().to_string();
        assert!(e.starts_with("/d/deploy.toml:5:"), "{e}");
        assert!(e.contains("repliacs"), "{e}");
        let text =
            "name = \"a\"\n[[deployment]]\nname = \"w\"\nimage = \"x\"\nhealth = { htp = \"/\" }\n";
        let e = parse(text).unwrap_err().to_string();
        assert!(e.starts_with("/d/deploy.toml:5:"), "{e}");
        assert!(e.contains("htp"), "{e}");
    }

    #[test]
    fn bad_values_name_their_line() {
        for (text, line, what) in [
            (
                "name = \"a\"\n[[deployment]]\nname = \"w\"\nimage = \"x\"\nports = [\"99999:1\"]\n",
                5,
                "99999",
            ),
            (
                "name = \"a\"\n[[deployment]]\nname = \"w\"\nimage = \"x\"\ntrigger = \"sometimes\"\n",
                5,
                "sometimes",
            ),
            (
                "name = \"a\"\n[[deployment]]\nname = \"W W\"\nimage = \"x\"\n",
                3,
                "W W",
            ),
            (
                "name = \"a\"\n[[deployment]]\nname = \"w\"\nimage = \"x\"\n[[deployment]]\nname = \"w\"\nimage = \"y\"\n",
                6,
                "twice",
            ),
            (
                "name = \"a\"\n[[deployment]]\nname = \"w\"\nimage = \"x\"\nhealth = { http = \"/\", timeout = \"soon\", port = 1 }\n",
                5,
                "soon",
            ),
            (
                "name = \"a\"\n[[deployment]]\nname = \"w\"\nimage = \"x\"\nhealth = { http = \"/\" }\n",
                5,
                "port",
            ),
        ] {
            let e = parse(text).unwrap_err().to_string();
            assert!(e.starts_with(&format!("/d/deploy.toml:{line}:")), "{e}");
            assert!(e.contains(what), "{e}");
        }
    }

    #[test]
    fn image_forms() {
        let d = Path::new("/d");
        for (text, registry) in [
            ("acme/web", false),
            ("localhost/acme/web:3", false),
            ("localhost:5000/acme/web", true),
            ("registry.example.com/acme/web@sha256:00", true),
        ] {
            let parsed = parse_image(text, d).unwrap();
            assert_eq!(
                matches!(parsed, ImageSource::Registry { .. }),
                registry,
                "{text}"
            );
        }
        assert!(parse_image("acme/web latest", d).is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert!(parse_duration("2").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("99999999999999999999h").is_err());
    }
}
