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
        Engine::Openshift => openshift(dir, &objects),
        Engine::Tekton => tekton(dir, &objects),
        Engine::Kubernetes => kubernetes(dir, &objects),
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

// ---- OpenShift ----

fn openshift(dir: &Path, objects: &[Object]) -> Result<Imported, ImportError> {
    let mut lost = Vec::new();
    let mut chain_name: Option<String> = None;
    let mut streams = BTreeMap::new();
    let mut builds = BTreeMap::new();
    for object in objects {
        match object.kind.as_str() {
            "ImageStream" => {
                check_object_name(object, "metadata.name", &object.name)?;
                if streams.insert(object.name.clone(), object).is_some() {
                    return Err(object.err("metadata.name", "declared twice"));
                }
            }
            "BuildConfig" => {
                check_object_name(object, "metadata.name", &object.name)?;
                if builds.insert(object.name.clone(), object).is_some() {
                    return Err(object.err("metadata.name", "declared twice"));
                }
            }
            _ => {}
        }
    }
    if streams.is_empty() {
        return Err(ImportError::Incomplete {
            dir: dir.to_path_buf(),
            message: "no ImageStream: not an OpenShift export of a chain".into(),
        });
    }
    let mut images = Vec::new();
    let mut teams = BTreeSet::new();
    for (name, stream) in &streams {
        if let Some(chain) = stream.annotation(crate::openshift::CHAIN_ANNOTATION)? {
            if !strata_chain::names::is_repository_path(chain) {
                return Err(stream.err(
                    "metadata.annotations.strata.dev/chain",
                    format!("{chain:?} is not a chain name"),
                ));
            }
            match &chain_name {
                Some(known) if known != chain => {
                    return Err(stream.err(
                        "metadata.annotations.strata.dev/chain",
                        format!("chain {chain} where the other objects say {known}"),
                    ));
                }
                _ => chain_name = Some(chain.to_string()),
            }
        }
        let owner_field = "metadata.annotations.strata.dev/owner";
        let owner = match stream.annotation(crate::openshift::OWNER_LABEL)? {
            Some(owner) => owner,
            None => stream
                .label_value(crate::openshift::OWNER_LABEL)?
                .ok_or_else(|| stream.err(owner_field, "missing: the owning team"))?,
        };
        check_team(stream, owner_field, owner)?;
        teams.insert(owner.to_string());
        let tier = match stream.annotation(crate::openshift::TIER_LABEL)? {
            Some(tier) => Some(tier),
            None => stream.label_value(crate::openshift::TIER_LABEL)?,
        };
        if let Some(tier) = tier {
            check_tier(stream, "metadata.annotations.strata.dev/tier", tier)?;
        }
        let mut image = ImportedImage {
            name: name.clone(),
            owner: owner.to_string(),
            tier: tier.map(str::to_string),
            parents: Vec::new(),
            source: ImportedSource::Rootfs {
                path: format!("{name}/rootfs.tar"),
            },
            args: BTreeMap::new(),
            test: None,
            squash: None,
            platform: None,
        };
        match builds.get(name) {
            Some(build) => openshift_build(build, &streams, &mut image, &mut lost)?,
            None => {
                let tag = stream
                    .at(&["spec", "tags"])
                    .and_then(Value::as_array)
                    .and_then(|tags| tags.first());
                let from = tag.and_then(|t| at(t, &["from"]));
                match from {
                    Some(from) if at(from, &["kind"]) == Some(&Value::from("DockerImage")) => {
                        let field = "spec.tags[0].from.name";
                        let reference = at(from, &["name"])
                            .and_then(Value::as_str)
                            .ok_or_else(|| stream.err(field, "missing"))?;
                        strata_chain::names::check_pinned(reference)
                            .map_err(|e| stream.err(field, e.to_string()))?;
                        image.source = ImportedSource::Image {
                            reference: reference.to_string(),
                        };
                        lost.push(Unsupported {
                            subject: name.clone(),
                            what: "a vendor signature the bought image had to carry (signed_by) \
                                   is not exported"
                                .into(),
                        });
                    }
                    _ => lost.push(Unsupported {
                        subject: name.clone(),
                        what: format!(
                            "an ImageStream with no build and no import: a base pushed by hand \
                             (a root filesystem tarball); put the tarball at {name}/rootfs.tar"
                        ),
                    }),
                }
            }
        }
        images.push(image);
    }
    for build in builds.keys() {
        if !streams.contains_key(build) {
            let object = builds[build];
            return Err(object.err("metadata.name", "a BuildConfig without its ImageStream"));
        }
    }
    let chain_name = chain_name.ok_or_else(|| ImportError::Incomplete {
        dir: dir.to_path_buf(),
        message: "no ImageStream carries the strata.dev/chain annotation: not a strata export"
            .into(),
    })?;
    inline_parents(&chain_name, &mut images, &builds)?;
    let chain = ImportedChain {
        name: chain_name.clone(),
        registry: None,
        teams: teams.clone(),
        images: ordered(dir, images)?,
    };
    lost.push(Unsupported {
        subject: format!("chain {chain_name}"),
        what: "the registry, the teams' descriptions, contacts and keys, and extra tags are \
               not exported"
            .into(),
    });
    let deploy = deployments(objects, Some(&chain), &mut lost, Engine::Openshift)?;
    Ok(Imported {
        engine: Engine::Openshift,
        chain: Some(chain),
        deploy,
        lost,
    })
}

/// The parents of each image built from an inline Dockerfile, as strata will read them from
/// that Dockerfile once imported (every chain image it names); the BuildConfig's `from` must be
/// the image its first FROM names, or the import would change the graph behind the engine's back.
fn inline_parents(
    chain: &str,
    images: &mut [ImportedImage],
    builds: &BTreeMap<String, &Object>,
) -> Result<(), ImportError> {
    let mut resolver =
        strata_chain::graph::Resolver::new(chain, None, images.iter().map(|i| i.name.as_str()));
    for (i, image) in images.iter().enumerate() {
        if let ImportedSource::Image { reference } = &image.source {
            resolver.add_pinned(reference, i);
        }
    }
    let names: Vec<String> = images.iter().map(|i| i.name.clone()).collect();
    for (i, image) in images.iter_mut().enumerate() {
        let ImportedSource::Inline { dockerfile } = &image.source else {
            continue;
        };
        let build = builds[&image.name];
        let uses = strata_chain::chain::dockerfile_uses(i, dockerfile, &image.args)
            .map_err(|e| build.err("spec.source.dockerfile", e.to_string()))?;
        let first_from = uses
            .iter()
            .find(|u| u.kind == strata_chain::UseKind::From)
            .and_then(|u| resolver.resolve(&u.reference))
            .map(|p| names[p].clone());
        if first_from.as_ref() != image.parents.first() {
            return Err(build.err(
                "spec.strategy.dockerStrategy.from",
                format!(
                    "names {} but the Dockerfile's first FROM names {}",
                    image
                        .parents
                        .first()
                        .map_or("no chain image", String::as_str),
                    first_from.as_deref().unwrap_or("no chain image")
                ),
            ));
        }
        let mut parents: Vec<String> = uses
            .iter()
            .filter_map(|u| resolver.resolve(&u.reference))
            .filter(|&p| p != i)
            .map(|p| names[p].clone())
            .collect();
        parents.sort();
        parents.dedup();
        image.parents = parents;
    }
    Ok(())
}

fn openshift_build(
    build: &Object,
    streams: &BTreeMap<String, &Object>,
    image: &mut ImportedImage,
    lost: &mut Vec<Unsupported>,
) -> Result<(), ImportError> {
    let strategy = ["spec", "strategy", "dockerStrategy"];
    if build.str_at(&["spec", "strategy", "type"])? != Some("Docker") {
        return Err(build.err("spec.strategy.type", "not a Docker strategy build"));
    }
    let field = |f: &str| format!("spec.strategy.dockerStrategy.{f}");
    if let Some(from) = build.at(&[strategy[0], strategy[1], strategy[2], "from"]) {
        let kind = at(from, &["kind"]).and_then(Value::as_str);
        let name = at(from, &["name"])
            .and_then(Value::as_str)
            .ok_or_else(|| build.err(&field("from.name"), "missing"))?;
        if kind == Some("ImageStreamTag") {
            let parent = name.split(':').next().unwrap_or(name);
            if !streams.contains_key(parent) {
                return Err(build.err(
                    &field("from.name"),
                    format!("{name}: no ImageStream {parent} in the export"),
                ));
            }
            image.parents.push(parent.to_string());
        }
    }
    if let Some(args) = build.at(&[strategy[0], strategy[1], strategy[2], "buildArgs"]) {
        let args = args
            .as_array()
            .ok_or_else(|| build.err(&field("buildArgs"), "not a list"))?;
        for arg in args {
            let key = at(arg, &["name"]).and_then(Value::as_str);
            let value = at(arg, &["value"]).and_then(Value::as_str).unwrap_or("");
            let key = key.ok_or_else(|| build.err(&field("buildArgs"), "an arg has no name"))?;
            check_arg(build, &field("buildArgs"), key)?;
            image.args.insert(key.to_string(), value.to_string());
        }
    }
    let dockerfile_path = build
        .str_at(&[strategy[0], strategy[1], strategy[2], "dockerfilePath"])?
        .map(|p| check_path(build, &field("dockerfilePath"), p))
        .transpose()?;
    match build.str_at(&["spec", "source", "type"])? {
        Some("Git") => {
            let url = build
                .str_at(&["spec", "source", "git", "uri"])?
                .ok_or_else(|| build.err("spec.source.git.uri", "missing"))?;
            strata_chain::git::check_url(url)
                .map_err(|e| build.err("spec.source.git.uri", e.to_string()))?;
            let rev = build
                .str_at(&["spec", "source", "git", "ref"])?
                .ok_or_else(|| build.err("spec.source.git.ref", "missing"))?;
            strata_chain::git::check_rev(rev)
                .map_err(|e| build.err("spec.source.git.ref", e.to_string()))?;
            let dir = match build.str_at(&["spec", "source", "contextDir"])? {
                Some(d) => check_path(build, "spec.source.contextDir", d)?,
                None => ".".to_string(),
            };
            image.source = ImportedSource::Git {
                url: url.to_string(),
                rev: rev.to_string(),
                dir,
                dockerfile: dockerfile_path,
            };
        }
        Some("Dockerfile") => {
            let text = build
                .str_at(&["spec", "source", "dockerfile"])?
                .ok_or_else(|| build.err("spec.source.dockerfile", "missing"))?;
            image.source = ImportedSource::Inline {
                dockerfile: text.to_string(),
            };
            lost.push(Unsupported {
                subject: image.name.clone(),
                what: format!(
                    "the build context's files (only the Dockerfile was inline): put them in {}/",
                    image.name
                ),
            });
        }
        other => {
            return Err(build.err(
                "spec.source.type",
                format!("{other:?}: only Git and Dockerfile sources come back"),
            ));
        }
    }
    if build.at(&["spec", "postCommit"]).is_some() {
        lost.push(Unsupported {
            subject: image.name.clone(),
            what: "the tier test ran as a postCommit script: its structure-test file is not \
                   exported"
                .into(),
        });
    }
    Ok(())
}

// ---- Deployments (OpenShift and Kubernetes) ----

fn deployments(
    objects: &[Object],
    chain: Option<&ImportedChain>,
    lost: &mut Vec<Unsupported>,
    engine: Engine,
) -> Result<Option<ImportedDeploy>, ImportError> {
    let mut services = BTreeMap::new();
    for object in objects.iter().filter(|o| o.kind == "Service") {
        check_object_name(object, "metadata.name", &object.name)?;
        services.insert(object.name.clone(), object);
    }
    let mut out = Vec::new();
    let mut namespace = None;
    let mut owner = None;
    for object in objects.iter().filter(|o| o.kind == "Deployment") {
        check_object_name(object, "metadata.name", &object.name)?;
        if out
            .iter()
            .any(|d: &ImportedDeployment| d.name == object.name)
        {
            return Err(object.err("metadata.name", "declared twice"));
        }
        if namespace.is_none() {
            namespace = object
                .str_at(&["metadata", "namespace"])?
                .map(str::to_string);
        }
        if let Some(o) = object.annotation("strata.dev/deploy-owner")? {
            check_team(object, "metadata.annotations.strata.dev/deploy-owner", o)?;
            owner = Some(o.to_string());
        }
        out.push(deployment(
            object,
            services.get(&object.name),
            chain,
            engine,
        )?);
    }
    if out.is_empty() {
        return Ok(None);
    }
    let name = namespace.unwrap_or_else(|| "deployments".into());
    if !is_dns1123_label(&name) {
        return Err(ImportError::Field {
            file: objects
                .iter()
                .find(|o| o.kind == "Deployment")
                .map(|o| o.file.clone())
                .unwrap_or_default(),
            object: "Deployment".into(),
            field: "metadata.namespace".into(),
            message: format!("{name:?} is not a namespace"),
        });
    }
    lost.push(Unsupported {
        subject: format!("deploy file {name}"),
        what: format!(
            "its name (the namespace stands in), {}require.verified, network = \"none\" and \
             listen addresses are not exported",
            if owner.is_none() { "its owner, " } else { "" }
        ),
    });
    Ok(Some(ImportedDeploy {
        name,
        owner,
        deployments: out,
    }))
}

fn deployment(
    object: &Object,
    service: Option<&&Object>,
    chain: Option<&ImportedChain>,
    engine: Engine,
) -> Result<ImportedDeployment, ImportError> {
    let containers = object
        .at(&["spec", "template", "spec", "containers"])
        .and_then(Value::as_array)
        .ok_or_else(|| object.err("spec.template.spec.containers", "missing"))?;
    let [container] = containers.as_slice() else {
        return Err(object.err(
            "spec.template.spec.containers",
            "a strata deployment runs one container",
        ));
    };
    let cfield = |f: &str| format!("spec.template.spec.containers[0].{f}");
    let mut image = at(container, &["image"])
        .and_then(Value::as_str)
        .ok_or_else(|| object.err(&cfield("image"), "missing"))?
        .to_string();
    let mut manual = false;
    match engine {
        Engine::Openshift => {
            if let Some(triggers) = object.annotation("image.openshift.io/triggers")? {
                let field = "metadata.annotations.image.openshift.io/triggers";
                let triggers: Value = serde_json::from_str(triggers)
                    .map_err(|e| object.err(field, format!("not JSON: {e}")))?;
                let trigger = triggers
                    .get(0)
                    .ok_or_else(|| object.err(field, "no trigger"))?;
                let from = at(trigger, &["from", "name"])
                    .and_then(Value::as_str)
                    .ok_or_else(|| object.err(field, "a trigger without from.name"))?;
                let (stream, tag) = from.split_once(':').unwrap_or((from, "latest"));
                let chain = chain.ok_or_else(|| object.err(field, "no chain"))?;
                if !chain.images.iter().any(|i| i.name == stream) {
                    return Err(object.err(
                        field,
                        format!("{from}: no image {stream} in the chain exported"),
                    ));
                }
                if !strata_chain::names::is_tag(tag) {
                    return Err(object.err(field, format!("{tag:?} is not a tag")));
                }
                image = format!("{}/{stream}:{tag}", chain.name);
                manual = at(trigger, &["paused"]) == Some(&Value::from("true"))
                    || at(trigger, &["paused"]) == Some(&Value::from(true));
            }
        }
        _ => {
            if !image.contains('@') {
                return Err(object.err(
                    &cfield("image"),
                    format!("{image:?} is not pinned by digest, as a kubernetes export pins it"),
                ));
            }
            if let Some(chain_image) = object.annotation("strata.dev/chain-image")? {
                let chain_name = object
                    .label_value("strata.dev/chain")?
                    .ok_or_else(|| object.err("metadata.labels.strata.dev/chain", "missing"))?;
                check_object_name(
                    object,
                    "metadata.annotations.strata.dev/chain-image",
                    chain_image,
                )?;
                if !strata_chain::names::is_repository_path(chain_name) {
                    return Err(object.err(
                        "metadata.labels.strata.dev/chain",
                        format!("{chain_name:?} is not a chain name"),
                    ));
                }
                image = format!("{chain_name}/{chain_image}");
            }
            manual = object.annotation("strata.dev/trigger")? == Some("manual");
        }
    }
    if image.is_empty()
        || image.chars().any(|c| c.is_whitespace() || c.is_control())
        || image.starts_with("oci:")
    {
        return Err(object.err(
            &cfield("image"),
            format!("{image:?} is not an image reference"),
        ));
    }
    let mut ports = Vec::new();
    let container_ports: Vec<u16> = match at(container, &["ports"]) {
        Some(Value::Array(list)) => list
            .iter()
            .map(|p| port(object, &cfield("ports"), at(p, &["containerPort"])))
            .collect::<Result<_, _>>()?,
        _ => Vec::new(),
    };
    match service {
        Some(service) => {
            let list = service
                .at(&["spec", "ports"])
                .and_then(Value::as_array)
                .ok_or_else(|| service.err("spec.ports", "missing"))?;
            for p in list {
                let host = port(service, "spec.ports.port", at(p, &["port"]))?;
                let target = match at(p, &["targetPort"]) {
                    None => host,
                    Some(v) => port(service, "spec.ports.targetPort", Some(v))?,
                };
                ports.push(format!("{host}:{target}"));
            }
        }
        None => ports.extend(container_ports.iter().map(|p| format!("{p}:{p}"))),
    }
    let mut env = BTreeMap::new();
    if let Some(list) = at(container, &["env"]).and_then(Value::as_array) {
        for e in list {
            let name = at(e, &["name"])
                .and_then(Value::as_str)
                .ok_or_else(|| object.err(&cfield("env"), "a variable has no name"))?;
            let Some(value) = at(e, &["value"]).and_then(Value::as_str) else {
                return Err(object.err(
                    &cfield("env"),
                    format!("{name}: only literal values come back (no valueFrom)"),
                ));
            };
            if name.is_empty() || name.contains('=') || name.chars().any(char::is_control) {
                return Err(object.err(&cfield("env"), format!("{name:?} is not a name")));
            }
            env.insert(name.to_string(), value.to_string());
        }
    }
    let health = match at(container, &["startupProbe"]) {
        None => None,
        Some(probe) => Some(health(object, &cfield("startupProbe"), probe)?),
    };
    let stop_grace_seconds =
        match object.at(&["spec", "template", "spec", "terminationGracePeriodSeconds"]) {
            None => None,
            Some(v) => Some(v.as_u64().filter(|s| *s <= 86_400).ok_or_else(|| {
                object.err(
                    "spec.template.spec.terminationGracePeriodSeconds",
                    "not a number of seconds (at most a day)",
                )
            })?),
        };
    Ok(ImportedDeployment {
        name: object.name.clone(),
        image,
        manual,
        ports,
        env,
        health,
        stop_grace_seconds,
    })
}

fn port(object: &Object, field: &str, value: Option<&Value>) -> Result<u16, ImportError> {
    value
        .and_then(Value::as_u64)
        .and_then(|p| u16::try_from(p).ok())
        .filter(|p| *p != 0)
        .ok_or_else(|| object.err(field, "not a port number (a named port does not come back)"))
}

fn health(object: &Object, field: &str, probe: &Value) -> Result<ImportedHealth, ImportError> {
    let period = at(probe, &["periodSeconds"])
        .and_then(Value::as_u64)
        .unwrap_or(10);
    let failures = at(probe, &["failureThreshold"])
        .and_then(Value::as_u64)
        .unwrap_or(3);
    let timeout_seconds = period
        .checked_mul(failures)
        .filter(|t| *t <= 86_400)
        .ok_or_else(|| object.err(field, "a timeout longer than a day"))?;
    let port_of = |path: &[&str]| -> Result<u16, ImportError> {
        port(
            object,
            &format!("{field}.{}", path.join(".")),
            at(probe, path),
        )
    };
    let (kind, target, port) = if let Some(get) = at(probe, &["httpGet"]) {
        let path = at(get, &["path"]).and_then(Value::as_str).unwrap_or("/");
        if !path.starts_with('/') || path.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(object.err(&format!("{field}.httpGet.path"), "not a path"));
        }
        (
            "http",
            Some(path.to_string()),
            Some(port_of(&["httpGet", "port"])?),
        )
    } else if at(probe, &["tcpSocket"]).is_some() {
        ("tcp", None, Some(port_of(&["tcpSocket", "port"])?))
    } else if let Some(command) = at(probe, &["exec", "command"]).and_then(Value::as_array) {
        let words: Vec<&str> = command.iter().filter_map(Value::as_str).collect();
        match words.as_slice() {
            ["sh", "-c", command] => ("exec", Some(command.to_string()), None),
            _ => {
                return Err(object.err(
                    &format!("{field}.exec.command"),
                    "only [sh, -c, COMMAND] comes back",
                ));
            }
        }
    } else {
        return Err(object.err(field, "neither httpGet, tcpSocket nor exec"));
    };
    Ok(ImportedHealth {
        probe: kind.to_string(),
        target,
        port,
        timeout_seconds,
    })
}

// ---- Kubernetes ----

fn kubernetes(dir: &Path, objects: &[Object]) -> Result<Imported, ImportError> {
    let mut lost = vec![Unsupported {
        subject: "chain".into(),
        what: "a kubernetes export carries only the deployments: the images, their builds, \
               parents, owners and tiers do not come back (import the openshift or tekton \
               export for them)"
            .into(),
    }];
    // A strata kubernetes export always ends with its kustomization (an OpenShift export has
    // Deployments too, naming ImageStreamTags: not images a cluster pulls).
    if !objects.iter().any(|o| o.kind == "Kustomization") {
        return Err(ImportError::Incomplete {
            dir: dir.to_path_buf(),
            message: "no kustomization: not a strata kubernetes export".into(),
        });
    }
    let mut deploy = deployments(objects, None, &mut lost, Engine::Kubernetes)?;
    // The deployments in the kustomization's order, which is the deploy file's.
    let resources: Vec<&str> = objects
        .iter()
        .filter(|o| o.kind == "Kustomization")
        .filter_map(|o| o.at(&["resources"]).and_then(Value::as_array))
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if let Some(deploy) = &mut deploy {
        deploy.deployments.sort_by_key(|d| {
            let file = format!("{}-deployment.json", d.name);
            resources.iter().position(|r| *r == file)
        });
    }
    if let Some(deploy) = &deploy {
        for d in &deploy.deployments {
            if !d.image.contains('@') {
                lost.push(Unsupported {
                    subject: format!("deployment {}", d.name),
                    what: "the tag it followed (the export names the digest it ran): it now \
                           follows latest"
                        .into(),
                });
            }
        }
    }
    Ok(Imported {
        engine: Engine::Kubernetes,
        chain: None,
        deploy,
        lost,
    })
}

// ---- Tekton ----

fn tekton(dir: &Path, objects: &[Object]) -> Result<Imported, ImportError> {
    let pipelines: Vec<&Object> = objects.iter().filter(|o| o.kind == "Pipeline").collect();
    let [pipeline] = pipelines.as_slice() else {
        return Err(ImportError::Incomplete {
            dir: dir.to_path_buf(),
            message: format!(
                "{} Pipelines: a strata export holds exactly one",
                pipelines.len()
            ),
        });
    };
    let pipeline = *pipeline;
    let mut lost = Vec::new();
    let chain_name = pipeline
        .label_value("strata.dev/chain")?
        .unwrap_or(&pipeline.name)
        .to_string();
    check_object_name(pipeline, "metadata.name", &chain_name)?;
    let map = |key: &str| -> Result<BTreeMap<String, String>, ImportError> {
        let field = format!("metadata.annotations.{key}");
        let text = pipeline
            .annotation(key)?
            .ok_or_else(|| pipeline.err(&field, "missing"))?;
        serde_json::from_str(text).map_err(|e| pipeline.err(&field, format!("not a JSON map: {e}")))
    };
    let owners = map("strata.dev/owner")?;
    let tiers = map("strata.dev/tier")?;
    let registry = match pipeline.at(&["spec", "params"]).and_then(Value::as_array) {
        Some(params) => params
            .iter()
            .find(|p| at(p, &["name"]) == Some(&Value::from("registry")))
            .and_then(|p| at(p, &["default"]))
            .and_then(Value::as_str)
            .map(str::to_string),
        None => None,
    };
    if let Some(r) = &registry
        && !strata_chain::names::is_registry_host(r)
    {
        return Err(pipeline.err(
            "spec.params.registry.default",
            format!("{r:?} is not a host"),
        ));
    }
    let tasks = pipeline
        .at(&["spec", "tasks"])
        .and_then(Value::as_array)
        .ok_or_else(|| pipeline.err("spec.tasks", "missing"))?;
    let mut by_name = BTreeMap::new();
    for task in tasks {
        let name = at(task, &["name"])
            .and_then(Value::as_str)
            .ok_or_else(|| pipeline.err("spec.tasks", "a task has no name"))?;
        by_name.insert(name.to_string(), task);
    }
    let param = |task: &Value, name: &str| -> Option<Value> {
        at(task, &["params"])?
            .as_array()?
            .iter()
            .find(|p| at(p, &["name"]) == Some(&Value::from(name)))
            .and_then(|p| at(p, &["value"]))
            .cloned()
    };
    let str_param =
        |task: &str, value: &Value, name: &str| -> Result<Option<String>, ImportError> {
            match param(value, name) {
                None => Ok(None),
                Some(Value::String(s)) => Ok(Some(s)),
                Some(_) => {
                    Err(pipeline.err(&format!("spec.tasks.{task}.params.{name}"), "not a string"))
                }
            }
        };
    for task in by_name.keys() {
        if let Some(image) = task.strip_prefix("build-")
            && !owners.contains_key(image)
        {
            return Err(pipeline.err(
                "metadata.annotations.strata.dev/owner",
                format!("no owner for the image of task {task}"),
            ));
        }
    }
    let mut teams = BTreeSet::new();
    let mut images = Vec::new();
    // Bought and pushed bases: their references, as children were pinned to them.
    let mut bases: BTreeMap<String, String> = BTreeMap::new();
    for (name, owner) in &owners {
        check_object_name(pipeline, "metadata.annotations.strata.dev/owner", name)?;
        check_team(pipeline, "metadata.annotations.strata.dev/owner", owner)?;
        teams.insert(owner.clone());
        if let Some(tier) = tiers.get(name) {
            check_tier(pipeline, "metadata.annotations.strata.dev/tier", tier)?;
        }
        let task_name = format!("build-{name}");
        let Some(task) = by_name.get(&task_name) else {
            continue;
        };
        let field = |p: &str| format!("spec.tasks.{task_name}.params.{p}");
        let mut image = ImportedImage {
            name: name.clone(),
            owner: owner.clone(),
            tier: tiers.get(name).cloned(),
            parents: Vec::new(),
            source: ImportedSource::Rootfs {
                path: String::new(),
            },
            args: BTreeMap::new(),
            test: None,
            squash: None,
            platform: None,
        };
        let context = str_param(&task_name, task, "CONTEXT")?
            .ok_or_else(|| pipeline.err(&field("CONTEXT"), "missing"))?;
        let context = check_path(pipeline, &field("CONTEXT"), &context)?;
        let dockerfile = str_param(&task_name, task, "DOCKERFILE")?
            .ok_or_else(|| pipeline.err(&field("DOCKERFILE"), "missing"))?;
        let dockerfile = check_path(pipeline, &field("DOCKERFILE"), &dockerfile)?;
        for word in str_param(&task_name, task, "BUILD_EXTRA_ARGS")?
            .unwrap_or_default()
            .split_whitespace()
        {
            match word {
                "--squash" => image.squash = Some("own".into()),
                "--squash-all" => image.squash = Some("all".into()),
                w if w.starts_with("--from=") => {}
                w => match w.strip_prefix("--platform=") {
                    Some(p) if p.split('/').count() >= 2 && !p.contains("..") => {
                        image.platform = Some(p.to_string());
                    }
                    _ => {
                        return Err(pipeline.err(
                            &field("BUILD_EXTRA_ARGS"),
                            format!("{w:?} is not a flag strata writes"),
                        ));
                    }
                },
            }
        }
        if let Some(args) = param(task, "BUILD_ARGS") {
            let args = args
                .as_array()
                .ok_or_else(|| pipeline.err(&field("BUILD_ARGS"), "not a list"))?;
            for arg in args {
                let arg = arg
                    .as_str()
                    .ok_or_else(|| pipeline.err(&field("BUILD_ARGS"), "not a string"))?;
                let (key, value) = arg.split_once('=').ok_or_else(|| {
                    pipeline.err(&field("BUILD_ARGS"), format!("{arg:?} is not KEY=VALUE"))
                })?;
                let parent = owners
                    .keys()
                    .find(|p| *p != name && build_arg_name(p) == key);
                match parent {
                    Some(parent) => {
                        image.parents.push(parent.clone());
                        if !value.contains(&format!("$(tasks.build-{parent}.")) {
                            bases.insert(parent.clone(), value.to_string());
                        }
                    }
                    None => {
                        check_arg(pipeline, &field("BUILD_ARGS"), key)?;
                        image.args.insert(key.to_string(), value.to_string());
                    }
                }
            }
        }
        let git_task = format!("git-{name}");
        image.source = match by_name.get(&git_task) {
            Some(git) => {
                let gfield = |p: &str| format!("spec.tasks.{git_task}.params.{p}");
                let url = str_param(&git_task, git, "url")?
                    .ok_or_else(|| pipeline.err(&gfield("url"), "missing"))?;
                strata_chain::git::check_url(&url)
                    .map_err(|e| pipeline.err(&gfield("url"), e.to_string()))?;
                let rev = str_param(&git_task, git, "revision")?
                    .ok_or_else(|| pipeline.err(&gfield("revision"), "missing"))?;
                strata_chain::git::check_rev(&rev)
                    .map_err(|e| pipeline.err(&gfield("revision"), e.to_string()))?;
                let checkout = format!("git/{name}");
                let inside = |path: &str, f: &str| -> Result<String, ImportError> {
                    if path == checkout {
                        Ok(".".into())
                    } else {
                        path.strip_prefix(&format!("{checkout}/"))
                            .map(str::to_string)
                            .ok_or_else(|| {
                                pipeline.err(&field(f), format!("{path:?} is not in {checkout}"))
                            })
                    }
                };
                let dir = inside(&context, "CONTEXT")?;
                let in_context = if dir == "." {
                    inside(&dockerfile, "DOCKERFILE")?
                } else {
                    dockerfile
                        .strip_prefix(&format!("{context}/"))
                        .map(str::to_string)
                        .ok_or_else(|| {
                            pipeline.err(
                                &field("DOCKERFILE"),
                                "a git context's Dockerfile outside its context directory",
                            )
                        })?
                };
                lost.push(Unsupported {
                    subject: name.clone(),
                    what: format!(
                        "the branch or tag its git context followed (the pipeline clones the \
                         commit it resolved to): it is pinned at {rev}"
                    ),
                });
                ImportedSource::Git {
                    url,
                    rev,
                    dir,
                    dockerfile: (in_context != "Dockerfile").then_some(in_context),
                }
            }
            None => ImportedSource::Context {
                dockerfile: (dockerfile != format!("{context}/Dockerfile")
                    && !(context == "." && dockerfile == "Dockerfile"))
                    .then(|| dockerfile.clone()),
                context,
            },
        };
        let test_task = format!("test-{name}");
        if let Some(test) = by_name.get(&test_task) {
            let config = str_param(&test_task, test, "CONFIG")?.ok_or_else(|| {
                pipeline.err(&format!("spec.tasks.{test_task}.params.CONFIG"), "missing")
            })?;
            image.test = Some(check_path(
                pipeline,
                &format!("spec.tasks.{test_task}.params.CONFIG"),
                &config,
            )?);
        }
        images.push(image);
    }
    for (name, owner) in &owners {
        if images.iter().any(|i| &i.name == name) {
            continue;
        }
        let registry_prefix = "$(params.registry)/";
        let source = match bases.get(name) {
            Some(reference) if !reference.starts_with(registry_prefix) => {
                strata_chain::names::check_pinned(reference).map_err(|e| {
                    pipeline.err(
                        "spec.tasks.params.BUILD_ARGS",
                        format!("the base {name}: {e}"),
                    )
                })?;
                lost.push(Unsupported {
                    subject: name.clone(),
                    what: "a vendor signature the bought image had to carry (signed_by) is not \
                           exported"
                        .into(),
                });
                ImportedSource::Image {
                    reference: reference.clone(),
                }
            }
            _ => {
                lost.push(Unsupported {
                    subject: name.clone(),
                    what: format!(
                        "a base the pipeline does not build (a root filesystem tarball, or a \
                         bought image no image is built from): put its tarball at \
                         {name}/rootfs.tar, or declare source = {{ image = \"...@sha256:...\" }}"
                    ),
                });
                ImportedSource::Rootfs {
                    path: format!("{name}/rootfs.tar"),
                }
            }
        };
        images.push(ImportedImage {
            name: name.clone(),
            owner: owner.clone(),
            tier: tiers.get(name).cloned(),
            parents: Vec::new(),
            source,
            args: BTreeMap::new(),
            test: None,
            squash: None,
            platform: None,
        });
    }
    lost.push(Unsupported {
        subject: format!("chain {chain_name}"),
        what: "the teams' descriptions, contacts and keys, extra tags and the tier tests' \
               files (the pipeline reads them from its workspace, the chain directory: so do \
               the contexts) are not in the export"
            .into(),
    });
    lost.push(Unsupported {
        subject: "deployments".into(),
        what: "a Tekton export carries no deployments: import the kubernetes or openshift \
               export for them"
            .into(),
    });
    Ok(Imported {
        engine: Engine::Tekton,
        chain: Some(ImportedChain {
            name: chain_name,
            registry,
            teams,
            images: ordered(dir, images)?,
        }),
        deploy: None,
        lost,
    })
}

/// The build arg a Tekton child reads its parent's pinned reference from (as the export names it).
fn build_arg_name(parent: &str) -> String {
    let upper: String = parent
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("STRATA_{upper}_IMAGE")
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

    #[test]
    fn build_arg_names_match_the_export() {
        assert_eq!(build_arg_name("httpd-php"), "STRATA_HTTPD_PHP_IMAGE");
    }
}
