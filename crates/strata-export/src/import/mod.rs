//! The way back: `strata import openshift|tekton|kubernetes DIR` reads the documents an export
//! wrote (JSON, or YAML as `oc get -o yaml` gives it) into the chain's graph again — images,
//! parents, owners, tiers, build args, contexts, bought bases, deployments — and writes it as a
//! `strata.toml` (plus the Dockerfiles an OpenShift export carried inline) and a `deploy.toml`.
//!
//! What an export could not carry cannot come back either; what the import cannot recover is
//! returned as [`Unsupported`] (the CLI says it on stderr), never guessed silently.
//!
//! The documents are hostile input: a file is at most [`MAX_FILE_BYTES`], a directory holds at
//! most [`MAX_FILES`] documents' files, YAML anchors and aliases are refused (an export never
//! writes them, a YAML bomb needs them), every name must be a Kubernetes object name (so never
//! `..` nor `/`), every path relative without `..`, and nothing is written outside the output
//! directory nor through a symlink.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use crate::Unsupported;
use crate::k8s::is_dns1123_label;

mod deployments;
mod kubernetes;
mod openshift;
mod tekton;

/// The largest document file read.
pub const MAX_FILE_BYTES: u64 = 4 << 20;
/// The most document files a directory may hold.
pub const MAX_FILES: usize = 1000;
/// The most objects all files together may hold.
pub const MAX_OBJECTS: usize = 10_000;

/// The engine an export was written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    /// ImageStreams, BuildConfigs, Deployments and Services.
    Openshift,
    /// A Pipeline (with its TriggerTemplate and EventListener).
    Tekton,
    /// Deployments, Services and a kustomization.
    Kubernetes,
}

impl std::str::FromStr for Engine {
    type Err = String;
    fn from_str(s: &str) -> Result<Engine, String> {
        match s {
            "openshift" => Ok(Engine::Openshift),
            "tekton" => Ok(Engine::Tekton),
            "kubernetes" => Ok(Engine::Kubernetes),
            other => Err(format!(
                "unknown engine {other:?} (openshift, tekton or kubernetes)"
            )),
        }
    }
}

/// What an import recovered: the chain (none from a kubernetes export), the deployments (none
/// from a tekton export), and what could not come back.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Imported {
    /// The engine read.
    pub engine: Engine,
    /// The chain's graph.
    pub chain: Option<ImportedChain>,
    /// The deploy file.
    pub deploy: Option<ImportedDeploy>,
    /// What the export did not carry.
    pub lost: Vec<Unsupported>,
}

/// A chain as recovered: what `strata.toml` says.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImportedChain {
    /// The chain's name.
    pub name: String,
    /// The registry its images are pushed to, when the export named it.
    pub registry: Option<String>,
    /// The teams (owners); their descriptions, contacts and keys are not exported.
    pub teams: BTreeSet<String>,
    /// The images, parents before children.
    pub images: Vec<ImportedImage>,
}

/// One image of the chain.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImportedImage {
    /// Its name.
    pub name: String,
    /// The owning team.
    pub owner: String,
    /// Its tier.
    pub tier: Option<String>,
    /// The chain images it is built from.
    pub parents: Vec<String>,
    /// How it is made.
    pub source: ImportedSource,
    /// Build arguments.
    pub args: BTreeMap<String, String>,
    /// The tier-test file, relative to the chain directory.
    pub test: Option<String>,
    /// `own` or `all` when the export squashed it.
    pub squash: Option<String>,
    /// The target platform.
    pub platform: Option<String>,
}

/// How an image is made.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ImportedSource {
    /// A context directory relative to the chain directory (Tekton's workspace), with its
    /// Dockerfile relative to the chain directory when not `<context>/Dockerfile`.
    Context {
        /// The context directory.
        context: String,
        /// The Dockerfile.
        dockerfile: Option<String>,
    },
    /// A Dockerfile the export carried inline (OpenShift's Dockerfile source): written to
    /// `<image>/Dockerfile`, which is then its context.
    Inline {
        /// The Dockerfile's text.
        dockerfile: String,
    },
    /// A git context.
    Git {
        /// The repository.
        url: String,
        /// The branch, tag or commit.
        rev: String,
        /// The context directory in the repository.
        dir: String,
        /// The Dockerfile relative to the context, when not `Dockerfile`.
        dockerfile: Option<String>,
    },
    /// A root filesystem tarball, which no export carries: expected at this path.
    Rootfs {
        /// The tarball, relative to the chain directory.
        path: String,
    },
    /// A bought image pinned by digest.
    Image {
        /// The pinned reference.
        reference: String,
    },
}

/// The deploy file as recovered.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImportedDeploy {
    /// Its name (not exported: the namespace stands in).
    pub name: String,
    /// The team that approves.
    pub owner: Option<String>,
    /// The deployments.
    pub deployments: Vec<ImportedDeployment>,
}

/// One deployment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImportedDeployment {
    /// Its name.
    pub name: String,
    /// The image, as `deploy.toml` writes it.
    pub image: String,
    /// `manual` when its rollouts wait for approval.
    pub manual: bool,
    /// `HOST:CONTAINER` ports.
    pub ports: Vec<String>,
    /// Environment.
    pub env: BTreeMap<String, String>,
    /// The health check.
    pub health: Option<ImportedHealth>,
    /// Grace between the stop signal and SIGKILL, in seconds.
    pub stop_grace_seconds: Option<u64>,
}

/// A health check.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImportedHealth {
    /// `http`, `tcp` or `exec`.
    pub probe: String,
    /// The HTTP path or the command.
    pub target: Option<String>,
    /// The container port probed.
    pub port: Option<u16>,
    /// How long a new container has to pass, in seconds.
    pub timeout_seconds: u64,
}

/// An import failed.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// A file or directory could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file is refused before it is parsed (too big, a symlink, too many files).
    #[error("{path}: {message}")]
    Refused {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// A JSON file does not parse.
    #[error("{path}: not a JSON document")]
    Json {
        /// The file.
        path: PathBuf,
        /// The parser's error.
        source: serde_json::Error,
    },
    /// A YAML file does not parse (or holds anchors, aliases, too many nodes).
    #[error("{path}: not a plain YAML document")]
    Yaml {
        /// The file.
        path: PathBuf,
        /// The parser's error.
        source: Box<serde_saphyr::Error>,
    },
    /// An object holds something the import cannot take.
    #[error("{file}: {object}: {field}: {message}")]
    Field {
        /// The file.
        file: String,
        /// `Kind/name`.
        object: String,
        /// The field, e.g. `spec.strategy.dockerStrategy.from.name`.
        field: String,
        /// Why.
        message: String,
    },
    /// The export does not hold what the engine's import needs.
    #[error("{dir}: {message}")]
    Incomplete {
        /// The export directory.
        dir: PathBuf,
        /// What is missing.
        message: String,
    },
    /// An output file exists.
    #[error("{path} exists (use --force to overwrite it)")]
    Exists {
        /// The file.
        path: PathBuf,
    },
    /// An output path would go through a symlink.
    #[error("{path} is a symlink: refusing to write through it")]
    Symlink {
        /// The path.
        path: PathBuf,
    },
    /// An output file could not be written.
    #[error("cannot write {path}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A written file would not parse back (a bug, or input that slipped through the checks).
    #[error("the {what} written would not load")]
    Check {
        /// `deploy.toml`.
        what: String,
        /// Why.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// One object of the export.
#[derive(Debug, Clone)]
struct Object {
    file: String,
    kind: String,
    name: String,
    value: Value,
}

impl Object {
    fn label(&self) -> String {
        format!("{}/{}", self.kind, self.name)
    }

    fn err(&self, field: &str, message: impl Into<String>) -> ImportError {
        ImportError::Field {
            file: self.file.clone(),
            object: self.label(),
            field: field.to_string(),
            message: message.into(),
        }
    }

    /// The value at `path` (keys), if present and not null.
    fn at(&self, path: &[&str]) -> Option<&Value> {
        at(&self.value, path)
    }

    /// The string at `path`, an error if present and not a string.
    fn str_at(&self, path: &[&str]) -> Result<Option<&str>, ImportError> {
        match self.at(path) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(self.err(&path.join("."), "not a string")),
        }
    }

    fn annotation(&self, key: &str) -> Result<Option<&str>, ImportError> {
        self.str_at(&["metadata", "annotations", key])
    }

    fn label_value(&self, key: &str) -> Result<Option<&str>, ImportError> {
        self.str_at(&["metadata", "labels", key])
    }
}

fn at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a Value> {
    let mut v = value;
    for key in path {
        v = v.get(key)?;
    }
    (!v.is_null()).then_some(v)
}

/// Read the export in `dir` written for `engine`.
pub fn import(engine: Engine, dir: &Path) -> Result<Imported, ImportError> {
    let objects = read_objects(dir)?;
    match engine {
        Engine::Openshift => openshift::read(dir, &objects),
        Engine::Tekton => tekton::read(dir, &objects),
        Engine::Kubernetes => kubernetes::read(dir, &objects),
    }
}

/// Every object of the `.json`, `.yaml` and `.yml` files directly in `dir` (in file-name order;
/// other files are not documents and are skipped). A `List` is read as its items.
fn read_objects(dir: &Path) -> Result<Vec<Object>, ImportError> {
    let read_err = |source| ImportError::Read {
        path: dir.to_path_buf(),
        source,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read_err)? {
        let entry = entry.map_err(read_err)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let lower = name.to_ascii_lowercase();
        if !(lower.ends_with(".json") || lower.ends_with(".yaml") || lower.ends_with(".yml")) {
            continue;
        }
        files.push((name, entry.path()));
        if files.len() > MAX_FILES {
            return Err(ImportError::Refused {
                path: dir.to_path_buf(),
                message: format!("more than {MAX_FILES} document files"),
            });
        }
    }
    files.sort();
    let mut objects = Vec::new();
    for (name, path) in files {
        let meta = std::fs::symlink_metadata(&path).map_err(|source| ImportError::Read {
            path: path.clone(),
            source,
        })?;
        if !meta.file_type().is_file() {
            return Err(ImportError::Refused {
                path,
                message: "not a regular file (a symlink or a directory)".into(),
            });
        }
        if meta.len() > MAX_FILE_BYTES {
            return Err(ImportError::Refused {
                path,
                message: format!(
                    "{} bytes, more than the {MAX_FILE_BYTES} a document may hold",
                    meta.len()
                ),
            });
        }
        let bytes = read_capped(&path)?;
        let text = String::from_utf8(bytes).map_err(|_| ImportError::Refused {
            path: path.clone(),
            message: "not UTF-8 text".into(),
        })?;
        let documents: Vec<Value> = if name.to_ascii_lowercase().ends_with(".json") {
            vec![
                serde_json::from_str(&text).map_err(|source| ImportError::Json {
                    path: path.clone(),
                    source,
                })?,
            ]
        } else {
            serde_saphyr::from_multiple_with_options(&text, yaml_options()).map_err(|source| {
                ImportError::Yaml {
                    path: path.clone(),
                    source: Box::new(source),
                }
            })?
        };
        for document in documents {
            let items = match document.get("kind").and_then(Value::as_str) {
                Some("List") | Some("ImageStreamList") | Some("BuildConfigList") => {
                    match document.get("items") {
                        Some(Value::Array(items)) => items.clone(),
                        _ => Vec::new(),
                    }
                }
                _ => vec![document],
            };
            for value in items {
                if !value.is_object() {
                    return Err(ImportError::Refused {
                        path: path.clone(),
                        message: "a document is not an object".into(),
                    });
                }
                let kind = value.get("kind").and_then(Value::as_str).unwrap_or("");
                let object_name = at(&value, &["metadata", "name"])
                    .and_then(Value::as_str)
                    .unwrap_or("");
                let object = Object {
                    file: path.display().to_string(),
                    kind: kind.to_string(),
                    name: object_name.to_string(),
                    value: value.clone(),
                };
                if kind.is_empty() && object.at(&["resources"]).is_none() {
                    return Err(object.err("kind", "missing"));
                }
                objects.push(object);
                if objects.len() > MAX_OBJECTS {
                    return Err(ImportError::Refused {
                        path: dir.to_path_buf(),
                        message: format!("more than {MAX_OBJECTS} objects"),
                    });
                }
            }
        }
    }
    Ok(objects)
}

/// A file's bytes, never more than [`MAX_FILE_BYTES`] (it may grow after it was measured).
fn read_capped(path: &Path) -> Result<Vec<u8>, ImportError> {
    use std::io::Read;
    let read_err = |source| ImportError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_err)?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(read_err)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(ImportError::Refused {
            path: path.to_path_buf(),
            message: format!("more than the {MAX_FILE_BYTES} bytes a document may hold"),
        });
    }
    Ok(bytes)
}

/// YAML as exports hold it: no anchors nor aliases (what a YAML bomb needs), no merge keys, a
/// bounded depth and node count, errors on one line.
fn yaml_options() -> serde_saphyr::Options {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_aliases = 0;
    budget.max_anchors = 0;
    budget.max_depth = 48;
    budget.max_documents = 1000;
    budget.max_nodes = 200_000;
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    options.merge_keys = serde_saphyr::MergeKeyPolicy::Error;
    options.with_snippet = false;
    options
}

/// An object name taken into the graph: a Kubernetes name (DNS-1123 label) and an image or
/// deployment name strata accepts, so never `..`, `/` nor anything else that would make a path.
fn check_object_name(object: &Object, field: &str, name: &str) -> Result<(), ImportError> {
    if is_dns1123_label(name) && strata_chain::names::is_path_component(name) {
        Ok(())
    } else {
        Err(object.err(
            field,
            format!(
                "{name:?} is not an object name (lower-case letters, digits and '-', at most 63)"
            ),
        ))
    }
}

/// A relative path inside the chain directory (no `..`, not absolute), normalised with `/`.
fn check_path(object: &Object, field: &str, path: &str) -> Result<String, ImportError> {
    if path.is_empty() || path.chars().any(char::is_control) {
        return Err(object.err(field, format!("{path:?} is not a path")));
    }
    let mut parts = Vec::new();
    for component in Path::new(path).components() {
        match component {
            Component::Normal(c) => parts.push(c.to_string_lossy().into_owned()),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => {
                return Err(object.err(
                    field,
                    format!("{path:?} leaves the chain directory (absolute or with ..)"),
                ));
            }
        }
    }
    Ok(if parts.is_empty() {
        ".".to_string()
    } else {
        parts.join("/")
    })
}

fn check_team(object: &Object, field: &str, team: &str) -> Result<(), ImportError> {
    if strata_chain::names::is_team_name(team) {
        Ok(())
    } else {
        Err(object.err(field, format!("{team:?} is not a team name")))
    }
}

fn check_tier(object: &Object, field: &str, tier: &str) -> Result<(), ImportError> {
    if tier.len() <= 63 && !tier.chars().any(char::is_control) {
        Ok(())
    } else {
        Err(object.err(field, "a tier is one line of at most 63 characters"))
    }
}

fn check_arg(object: &Object, field: &str, key: &str) -> Result<(), ImportError> {
    let ok = key.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(object.err(field, format!("{key:?} is not a build argument name")))
    }
}

/// The chain's images in an order where parents come first (ties by name), or the cycle.
fn ordered(dir: &Path, mut images: Vec<ImportedImage>) -> Result<Vec<ImportedImage>, ImportError> {
    let names: BTreeSet<String> = images.iter().map(|i| i.name.clone()).collect();
    for image in &images {
        for parent in &image.parents {
            if !names.contains(parent) {
                return Err(ImportError::Incomplete {
                    dir: dir.to_path_buf(),
                    message: format!(
                        "image {} is built from {parent}, which the export does not hold",
                        image.name
                    ),
                });
            }
        }
    }
    images.sort_by(|a, b| a.name.cmp(&b.name));
    let mut done = BTreeSet::new();
    let mut out = Vec::new();
    while !images.is_empty() {
        let Some(next) = images
            .iter()
            .position(|i| i.parents.iter().all(|p| done.contains(p)))
        else {
            return Err(ImportError::Incomplete {
                dir: dir.to_path_buf(),
                message: format!(
                    "the images {} are built from each other (a cycle)",
                    images
                        .iter()
                        .map(|i| i.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        };
        let image = images.remove(next);
        done.insert(image.name.clone());
        out.push(image);
    }
    Ok(out)
}

// ---- Writing strata.toml and deploy.toml ----

#[derive(Serialize)]
struct TomlChain<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    registry: Option<&'a str>,
    teams: BTreeMap<&'a str, BTreeMap<String, String>>,
    image: Vec<TomlImage<'a>>,
}

#[derive(Serialize)]
struct TomlImage<'a> {
    name: &'a str,
    owner: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    tier: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    context: Option<TomlContext<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dockerfile: Option<&'a str>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    source: BTreeMap<&'static str, &'a str>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    args: &'a BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    test: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    squash: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    platform: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum TomlContext<'a> {
    Dir(&'a str),
    Git {
        git: &'a str,
        rev: &'a str,
        dir: &'a str,
    },
}

#[derive(Serialize)]
struct TomlDeploy<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    owner: Option<&'a str>,
    deployment: Vec<TomlDeployment<'a>>,
}

#[derive(Serialize)]
struct TomlDeployment<'a> {
    name: &'a str,
    image: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    trigger: Option<&'static str>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    ports: &'a [String],
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    env: &'a BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    health: Option<BTreeMap<&'static str, toml::Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stop_grace: Option<String>,
}

impl Imported {
    /// The files of the project, relative to its directory, with their contents: `strata.toml`,
    /// each inline Dockerfile as `<image>/Dockerfile`, and `deploy.toml`.
    pub fn files(&self) -> Result<Vec<(PathBuf, String)>, ImportError> {
        let mut files = Vec::new();
        if let Some(chain) = &self.chain {
            let mut images = Vec::new();
            for image in &chain.images {
                let mut t = TomlImage {
                    name: &image.name,
                    owner: &image.owner,
                    tier: image.tier.as_deref(),
                    context: None,
                    dockerfile: None,
                    source: BTreeMap::new(),
                    args: &image.args,
                    test: image.test.as_deref(),
                    squash: image.squash.as_deref(),
                    platform: image.platform.as_deref(),
                };
                match &image.source {
                    ImportedSource::Context {
                        context,
                        dockerfile,
                    } => {
                        t.context = Some(TomlContext::Dir(context));
                        t.dockerfile = dockerfile.as_deref();
                    }
                    ImportedSource::Inline { dockerfile } => {
                        t.context = Some(TomlContext::Dir(&image.name));
                        files.push((
                            Path::new(&image.name).join("Dockerfile"),
                            dockerfile.clone(),
                        ));
                    }
                    ImportedSource::Git {
                        url,
                        rev,
                        dir,
                        dockerfile,
                    } => {
                        t.context = Some(TomlContext::Git { git: url, rev, dir });
                        t.dockerfile = dockerfile.as_deref();
                    }
                    ImportedSource::Rootfs { path } => {
                        t.source.insert("rootfs", path);
                    }
                    ImportedSource::Image { reference } => {
                        t.source.insert("image", reference);
                    }
                }
                images.push(t);
            }
            let toml = TomlChain {
                name: &chain.name,
                registry: chain.registry.as_deref(),
                teams: chain
                    .teams
                    .iter()
                    .map(|t| (t.as_str(), BTreeMap::new()))
                    .collect(),
                image: images,
            };
            let text = toml::to_string(&toml).map_err(|e| ImportError::Check {
                what: "strata.toml".into(),
                source: Box::new(e),
            })?;
            files.insert(
                0,
                (
                    PathBuf::from("strata.toml"),
                    format!(
                        "# Imported from a strata export for {} ({} images).\n{text}",
                        engine_name(self.engine),
                        chain.images.len()
                    ),
                ),
            );
        }
        if let Some(deploy) = &self.deploy {
            let deployments = deploy
                .deployments
                .iter()
                .map(|d| TomlDeployment {
                    name: &d.name,
                    image: &d.image,
                    trigger: d.manual.then_some("manual"),
                    ports: &d.ports,
                    env: &d.env,
                    health: d.health.as_ref().map(|h| {
                        let mut t = BTreeMap::new();
                        match h.probe.as_str() {
                            "http" => t.insert("http", h.target.clone().unwrap_or_default().into()),
                            "tcp" => t.insert("tcp", true.into()),
                            _ => t.insert("exec", h.target.clone().unwrap_or_default().into()),
                        };
                        if let Some(port) = h.port {
                            t.insert("port", i64::from(port).into());
                        }
                        t.insert("timeout", format!("{}s", h.timeout_seconds).into());
                        t
                    }),
                    stop_grace: d.stop_grace_seconds.map(|s| format!("{s}s")),
                })
                .collect();
            let text = toml::to_string(&TomlDeploy {
                name: &deploy.name,
                owner: deploy.owner.as_deref(),
                deployment: deployments,
            })
            .map_err(|e| ImportError::Check {
                what: "deploy.toml".into(),
                source: Box::new(e),
            })?;
            // What is written must load as strata deploy reads it.
            strata_deploy::DeployFile::parse(Path::new("deploy.toml"), &text).map_err(|e| {
                ImportError::Check {
                    what: "deploy.toml".into(),
                    source: Box::new(e),
                }
            })?;
            files.push((PathBuf::from("deploy.toml"), text));
        }
        Ok(files)
    }

    /// Write [`Imported::files`] into `dir` (created if missing), each atomically; an existing
    /// file is refused unless `force`, and nothing is written through a symlink. Checked before
    /// anything is written: a refusal leaves `dir` as it was.
    pub fn write(&self, dir: &Path, force: bool) -> Result<Vec<PathBuf>, ImportError> {
        let files = self.files()?;
        for (relative, _) in &files {
            debug_assert!(
                relative
                    .components()
                    .all(|c| matches!(c, Component::Normal(_)))
            );
            let mut at = dir.to_path_buf();
            for component in relative.components() {
                at.push(component);
                match std::fs::symlink_metadata(&at) {
                    Ok(m) if m.file_type().is_symlink() => {
                        return Err(ImportError::Symlink { path: at });
                    }
                    Ok(m) if at == dir.join(relative) && !force && m.is_file() => {
                        return Err(ImportError::Exists { path: at });
                    }
                    Ok(m) if at == dir.join(relative) && !m.is_file() => {
                        return Err(ImportError::Exists { path: at });
                    }
                    _ => {}
                }
            }
        }
        let mut written = Vec::new();
        for (relative, text) in files {
            let path = dir.join(&relative);
            let parent = path.parent().unwrap_or(dir).to_path_buf();
            std::fs::create_dir_all(&parent).map_err(|source| ImportError::Write {
                path: parent.clone(),
                source,
            })?;
            let write_err = |source| ImportError::Write {
                path: path.clone(),
                source,
            };
            let mut temp = tempfile::NamedTempFile::new_in(&parent).map_err(write_err)?;
            std::io::Write::write_all(&mut temp, text.as_bytes()).map_err(write_err)?;
            temp.persist(&path).map_err(|e| ImportError::Write {
                path: path.clone(),
                source: e.error,
            })?;
            written.push(path);
        }
        Ok(written)
    }
}

fn engine_name(engine: Engine) -> &'static str {
    match engine {
        Engine::Openshift => "openshift",
        Engine::Tekton => "tekton",
        Engine::Kubernetes => "kubernetes",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_inside() {
        let object = Object {
            file: "f.json".into(),
            kind: "Pipeline".into(),
            name: "p".into(),
            value: Value::Null,
        };
        assert_eq!(check_path(&object, "x", "./a/b").unwrap(), "a/b");
        assert_eq!(check_path(&object, "x", ".").unwrap(), ".");
        for bad in ["../a", "/etc", "a/../../b", ""] {
            assert!(check_path(&object, "x", bad).is_err(), "{bad}");
        }
        for bad in ["..", "a/b", "A", "a_b"] {
            assert!(check_object_name(&object, "x", bad).is_err(), "{bad}");
        }
    }
}
