//! Tekton: the chain as one `tekton.dev/v1` `Pipeline`, started by a registry push.
//!
//! Each Dockerfile-built chain image becomes a pipeline task `build-<image>` running the Tekton
//! catalog's `buildah` task (0.10: `taskRef: {name: buildah}`, params `IMAGE`, `DOCKERFILE`,
//! `CONTEXT`, `BUILD_EXTRA_ARGS`, `BUILD_ARGS`), `runAfter` the tasks of its chain parents. A parent's digest comes down
//! from the parent task's `IMAGE_DIGEST` result, so every FROM is pinned by digest:
//!
//! - `BUILD_EXTRA_ARGS` carries `--from=<registry>/<chain>/<parent>@$(tasks.build-<parent>.results.IMAGE_DIGEST)`,
//!   buildah's flag that replaces the image of the Dockerfile's first `FROM` line (as OpenShift's
//!   Docker strategy does), so `FROM acme/corebuild` needs no change;
//! - and, for every chain parent, the build arg `STRATA_<PARENT>_IMAGE=<that same pinned reference>`
//!   in `BUILD_ARGS` (`STRATA_HTTPD_PHP_IMAGE` for `httpd-php`), which a Dockerfile with more than one chain
//!   parent (a second stage, a `COPY --from`) reads as `ARG STRATA_HTTPD_PHP_IMAGE` then
//!   `FROM ${STRATA_HTTPD_PHP_IMAGE}`. A use other than the first FROM is listed as
//!   [`Unsupported`] since strata cannot make the Dockerfile read the ARG.
//!
//! Sources are in the pipeline workspace `source` (the chain directory: each context at its path
//! relative to `strata.toml`); a git context is cloned into it first by a `git-clone` catalog task
//! (`git-<image>`, at the commit the rev resolved to). A tier test (a container-structure-test
//! file) runs as task `test-<image>` after the build, with the `container-structure-test` image's
//! tar driver on the pushed digest, and the images above wait for it, as strata's own cascade does.
//! The tar driver cannot run `commandTests`: those are listed as [`Unsupported`].
//!
//! Bought bases: a pinned image (`source = { image = "...@sha256:..." }`) needs no task, its
//! children get the pinned reference. A rootfs tarball cannot be imported by a Tekton task
//! here ([`Unsupported`]); its children are pinned to the digest strata pushed, when the caller
//! knows it, else to its `latest` tag.
//!
//! Tekton has no image-change trigger of its own (unlike OpenShift's `ImageChange`): the export
//! adds a `triggers.tekton.dev/v1beta1` `TriggerTemplate` creating a `PipelineRun` and an
//! `EventListener` that receives the registry's push notifications (the Distribution registry's
//! `notifications` envelope, `events[].action == "push"`) and starts the pipeline when one of the
//! chain's bought bases is pushed. The pipeline's own pushes are never watched, so a run cannot
//! start itself. Deployments are not Tekton's job: a deploy file's deployments are listed as
//! [`Unsupported`] (the kubernetes or openshift export carries them).

use std::collections::BTreeMap;

use serde_json::{Value, json};
use strata_chain::{Build, Chain, UseKind};
use strata_deploy::DeployFile;

use crate::{Document, Export, ExportError, ExportOptions, Unsupported};

/// The pipeline workspace holding the chain's sources.
const WORKSPACE: &str = "source";
/// The image the tier-test tasks run.
const STRUCTURE_TEST_IMAGE: &str = "gcr.io/gcp-runtimes/container-structure-test:v1.16.0";

/// Export `chain` as a Tekton `Pipeline`, `TriggerTemplate` and `EventListener`.
///
/// `digests` maps a chain image name to the digest strata stored or pushed, used to pin the
/// children of a base the pipeline cannot build (a rootfs tarball). `deploy` is only read to say
/// that its deployments are not carried.
pub fn export(
    chain: &Chain,
    deploy: Option<&DeployFile>,
    digests: &BTreeMap<String, String>,
    options: &ExportOptions,
) -> Result<Export, ExportError> {
    let file = &chain.file;
    let graph = chain.graph();
    let pipeline_name = dns_name(&file.name, "chain name")?;
    let mut unsupported = Vec::new();
    let mut tasks = Vec::new();
    let mut owners = BTreeMap::new();
    let mut tiers = BTreeMap::new();
    // Per chain image: the pinned reference its children build from, and the task they wait for.
    let mut pinned: BTreeMap<usize, (String, Option<String>)> = BTreeMap::new();
    let mut watched = Vec::new();

    for &i in graph.order() {
        let image = &file.images[i];
        let name = dns_name(&image.name, "image name")?;
        // The longest task name is `build-<image>` / `test-<image>` / `git-<image>`.
        dns_name(&format!("build-{name}"), "image name with its task prefix")?;
        owners.insert(image.name.clone(), image.owner.clone());
        if let Some(tier) = &image.tier {
            tiers.insert(image.name.clone(), tier.clone());
        }
        let repository = format!("{}/{}", file.name, image.name);
        let (context, dockerfile) = match &image.build {
            Build::Image { reference, .. } => {
                pinned.insert(i, (reference.clone(), None));
                watched.push(repository_of(reference));
                continue;
            }
            Build::Rootfs { path } => {
                unsupported.push(Unsupported {
                    subject: image.name.clone(),
                    what: format!(
                        "a root filesystem tarball ({}) cannot be imported by a Tekton task: push it \
                         with strata (its push starts the pipeline)",
                        file.relative(path).display()
                    ),
                });
                let reference = match digests.get(&image.name) {
                    Some(digest) => format!("$(params.registry)/{repository}@{digest}"),
                    None => {
                        unsupported.push(Unsupported {
                            subject: image.name.clone(),
                            what: "its digest is not known (not pushed yet): its children build \
                                   from its latest tag, not by digest"
                                .to_string(),
                        });
                        format!("$(params.registry)/{repository}:latest")
                    }
                };
                pinned.insert(i, (reference, None));
                watched.push(repository);
                continue;
            }
            Build::Dockerfile {
                context,
                dockerfile,
            } => (context, dockerfile),
        };

        let mut run_after = Vec::new();
        // BUILD_EXTRA_ARGS is split on blanks by the task's shell: only strata's own flags go
        // there, each checked to hold no blank. Build args (a team's free text) go in the
        // BUILD_ARGS array, one argument each, so a value cannot smuggle in a buildah flag.
        let mut extra_args = Vec::new();
        let mut build_args = Vec::new();
        let mut first_from = graph
            .external_uses(i)
            .iter()
            .chain(graph.parents(i).iter().flat_map(|&p| graph.uses(p, i)))
            .filter(|site| site.kind == UseKind::From)
            .map(|site| site.line)
            .min();
        for site in graph.external_uses(i) {
            if !site.reference.contains("@sha256:") {
                unsupported.push(Unsupported {
                    subject: image.name.clone(),
                    what: format!(
                        "line {} ({} {}) names an image outside the chain by tag: the pipeline \
                         builds from whatever it points to then, not strata.lock's digest",
                        site.line,
                        site.kind.instruction(),
                        site.reference
                    ),
                });
            }
        }
        for p in graph.parents(i) {
            let (reference, task) =
                pinned
                    .get(&p)
                    .cloned()
                    .ok_or_else(|| ExportError::Invalid {
                        subject: image.name.clone(),
                        message: format!(
                            "parent {} comes after it in the build order",
                            graph.name(p)
                        ),
                    })?;
            if let Some(task) = task {
                run_after.push(task);
            }
            for site in graph.uses(p, i) {
                if site.kind == UseKind::From && Some(site.line) == first_from {
                    extra_args.push(format!("--from={reference}"));
                    first_from = None;
                } else {
                    unsupported.push(Unsupported {
                        subject: image.name.clone(),
                        what: format!(
                            "line {} ({} {}) is pinned by digest only if the Dockerfile reads it \
                             through ARG {}",
                            site.line,
                            site.kind.instruction(),
                            site.reference,
                            build_arg_name(graph.name(p))
                        ),
                    });
                }
            }
            build_args.push(format!("{}={reference}", build_arg_name(graph.name(p))));
        }
        for (key, value) in &image.args {
            build_args.push(format!("{key}={value}"));
        }
        match image.squash.as_str() {
            "own" => extra_args.push("--squash".to_string()),
            "all" => extra_args.push("--squash-all".to_string()),
            _ => {}
        }
        if let Some(platform) = &image.platform {
            extra_args.push(format!("--platform={platform}"));
        }

        if let Some(arg) = extra_args
            .iter()
            .find(|a| a.chars().any(char::is_whitespace))
        {
            return Err(ExportError::Invalid {
                subject: image.name.clone(),
                message: format!("{arg:?} holds a blank, which BUILD_EXTRA_ARGS would split"),
            });
        }

        let (context_path, dockerfile_path) = match &image.git {
            Some(git) => {
                let clone = format!("git-{name}");
                let subdirectory = format!("git/{}", image.name);
                tasks.push(json!({
                    "name": clone,
                    "displayName": format!("clone {} for {}", git.url, image.name),
                    "taskRef": { "name": "git-clone" },
                    "params": [
                        param("url", &git.url),
                        param("revision", &git.commit),
                        param("subdirectory", &subdirectory),
                        param("deleteExisting", "true"),
                    ],
                    "workspaces": [{ "name": "output", "workspace": WORKSPACE }],
                }));
                run_after.push(clone);
                // The context is `<checkout>/<dir>`: the checkout's root is the context less
                // dir's components (components, not `parent()`, since `dir` may be `.`).
                let depth = git
                    .dir
                    .components()
                    .filter(|c| matches!(c, std::path::Component::Normal(_)))
                    .count();
                let parts: Vec<_> = context.components().collect();
                let root: std::path::PathBuf =
                    parts[..parts.len().saturating_sub(depth)].iter().collect();
                (
                    inside(&subdirectory, &rel(context.strip_prefix(&root).ok())),
                    inside(&subdirectory, &rel(dockerfile.strip_prefix(&root).ok())),
                )
            }
            None => (
                rel(Some(file.relative(context))),
                rel(Some(file.relative(dockerfile))),
            ),
        };

        let build = format!("build-{name}");
        let output = format!("$(params.registry)/{repository}:latest");
        let mut description = format!("{} (owner {}", image.name, image.owner);
        if let Some(tier) = &image.tier {
            description.push_str(&format!(", tier {tier}"));
        }
        description.push(')');
        let mut task = json!({
            "name": build,
            "displayName": description,
            "taskRef": { "name": "buildah" },
            "params": [
                param("IMAGE", &output),
                param("DOCKERFILE", &format!("./{dockerfile_path}")),
                param("CONTEXT", &context_path),
                param("BUILD_EXTRA_ARGS", &extra_args.join(" ")),
            ],
            "workspaces": [{ "name": "source", "workspace": WORKSPACE }],
        });
        if !build_args.is_empty() {
            task["params"]
                .as_array_mut()
                .expect("params is a list")
                .push(json!({ "name": "BUILD_ARGS", "value": build_args }));
        }
        if !run_after.is_empty() {
            task["runAfter"] = json!(run_after);
        }
        tasks.push(task);
        for tag in &image.tags {
            unsupported.push(Unsupported {
                subject: image.name.clone(),
                what: format!(
                    "the extra tag {tag} is not pushed: the buildah task pushes one tag (latest)"
                ),
            });
        }
        let digest_ref =
            format!("$(params.registry)/{repository}@$(tasks.{build}.results.IMAGE_DIGEST)");
        let mut waited = build.clone();
        if let Some(test) = &image.test {
            let test_task = format!("test-{name}");
            let config = rel(Some(file.relative(test)));
            tasks.push(json!({
                "name": test_task,
                "displayName": format!("tier test of {}", image.name),
                "runAfter": [build],
                "params": [
                    param("IMAGE", &digest_ref),
                    param("CONFIG", &config),
                ],
                "workspaces": [{ "name": "source", "workspace": WORKSPACE }],
                "taskSpec": {
                    "params": [
                        { "name": "IMAGE", "type": "string", "description": "The image, by digest" },
                        { "name": "CONFIG", "type": "string", "description": "The container-structure-test file, in the source workspace" },
                    ],
                    "workspaces": [{ "name": "source" }],
                    "steps": [{
                        "name": "structure-test",
                        "image": STRUCTURE_TEST_IMAGE,
                        "workingDir": "$(workspaces.source.path)",
                        "args": [
                            "test", "--driver", "tar", "--pull",
                            "--image", "$(params.IMAGE)",
                            "--config", "$(params.CONFIG)",
                        ],
                    }],
                },
            }));
            unsupported.push(Unsupported {
                subject: image.name.clone(),
                what: format!(
                    "the tier test {config} runs with container-structure-test's tar driver, which \
                     skips commandTests"
                ),
            });
            waited = test_task;
        }
        pinned.insert(i, (digest_ref, Some(waited)));
    }

    if let Some(deploy) = deploy {
        for deployment in &deploy.deployments {
            unsupported.push(Unsupported {
                subject: deployment.name.clone(),
                what: "a deployment is not a Tekton object: export it with the kubernetes or \
                       openshift engine"
                    .to_string(),
            });
        }
    }

    let labels = json!({
        "app.kubernetes.io/part-of": pipeline_name,
        "app.kubernetes.io/managed-by": "strata",
        "strata.dev/chain": pipeline_name,
    });
    let annotations = json!({
        "strata.dev/owner": serde_json::to_string(&owners).expect("a map of strings serialises"),
        "strata.dev/tier": serde_json::to_string(&tiers).expect("a map of strings serialises"),
    });
    let registry_param = match &file.registry {
        Some(registry) => json!({
            "name": "registry", "type": "string", "default": registry,
            "description": "The registry the chain's images are pushed to",
        }),
        None => json!({
            "name": "registry", "type": "string",
            "description": "The registry the chain's images are pushed to",
        }),
    };
    let pipeline = json!({
        "apiVersion": "tekton.dev/v1",
        "kind": "Pipeline",
        "metadata": {
            "name": pipeline_name,
            "namespace": options.namespace,
            "labels": labels,
            "annotations": annotations,
        },
        "spec": {
            "description": format!(
                "The {} chain, built in its order: each image from its parents' digests",
                file.name
            ),
            "params": [registry_param],
            "workspaces": [{
                "name": WORKSPACE,
                "description": "The chain directory (strata.toml's); git contexts are cloned into git/<image>",
            }],
            "tasks": tasks,
        },
    });

    let template_name = format!("{pipeline_name}-run");
    let mut template_params = vec![json!({
        "name": "pushed",
        "description": "The repository whose push started the run",
        "default": "",
    })];
    let mut run_params = Vec::new();
    if let Some(registry) = &file.registry {
        template_params.push(json!({ "name": "registry", "default": registry }));
    } else {
        template_params.push(json!({ "name": "registry" }));
    }
    run_params.push(param("registry", "$(tt.params.registry)"));
    let template = json!({
        "apiVersion": "triggers.tekton.dev/v1beta1",
        "kind": "TriggerTemplate",
        "metadata": {
            "name": template_name,
            "namespace": options.namespace,
            "labels": labels,
        },
        "spec": {
            "params": template_params,
            "resourcetemplates": [{
                "apiVersion": "tekton.dev/v1",
                "kind": "PipelineRun",
                "metadata": {
                    "generateName": format!("{pipeline_name}-"),
                    "labels": labels,
                    "annotations": { "strata.dev/pushed": "$(tt.params.pushed)" },
                },
                "spec": {
                    "pipelineRef": { "name": pipeline_name },
                    "params": run_params,
                    "workspaces": [{
                        "name": WORKSPACE,
                        "volumeClaimTemplate": {
                            "spec": {
                                "accessModes": ["ReadWriteOnce"],
                                "resources": { "requests": { "storage": "1Gi" } },
                            },
                        },
                    }],
                },
            }],
        },
    });

    watched.sort();
    watched.dedup();
    let filter = watched
        .iter()
        .map(|repository| format!("e.target.repository == '{}'", cel_string(repository)))
        .collect::<Vec<_>>()
        .join(" || ");
    let filter = if filter.is_empty() {
        unsupported.push(Unsupported {
            subject: file.name.clone(),
            what: "the chain has no bought base whose push could start the pipeline: the \
                   EventListener never fires"
                .to_string(),
        });
        "false".to_string()
    } else {
        format!("body.events.exists(e, e.action == 'push' && ({filter}))")
    };
    let mut bindings = vec![json!({
        "name": "pushed",
        "value": "$(body.events[0].target.repository)",
    })];
    if let Some(registry) = &file.registry {
        bindings.push(json!({ "name": "registry", "value": registry }));
    } else {
        unsupported.push(Unsupported {
            subject: file.name.clone(),
            what: "strata.toml names no registry: set the EventListener's registry binding by hand"
                .to_string(),
        });
        bindings.push(json!({ "name": "registry", "value": "REGISTRY" }));
    }
    let listener = json!({
        "apiVersion": "triggers.tekton.dev/v1beta1",
        "kind": "EventListener",
        "metadata": {
            "name": format!("{pipeline_name}-push"),
            "namespace": options.namespace,
            "labels": labels,
        },
        "spec": {
            "serviceAccountName": "tekton-triggers",
            "triggers": [{
                "name": "registry-push",
                "interceptors": [{
                    "ref": { "name": "cel" },
                    "params": [{ "name": "filter", "value": filter }],
                }],
                "bindings": bindings,
                "template": { "ref": template_name },
            }],
        },
    });

    Ok(Export {
        documents: vec![
            Document {
                file: format!("{pipeline_name}-pipeline.json"),
                value: pipeline,
            },
            Document {
                file: format!("{pipeline_name}-triggertemplate.json"),
                value: template,
            },
            Document {
                file: format!("{pipeline_name}-eventlistener.json"),
                value: listener,
            },
        ],
        unsupported,
    })
}

/// A pipeline or task param.
fn param(name: &str, value: &str) -> Value {
    json!({ "name": name, "value": value })
}

/// The build arg a child reads its parent's pinned reference from: `STRATA_HTTPD_PHP_IMAGE`.
pub(crate) fn build_arg_name(parent: &str) -> String {
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

/// A path relative to the workspace, `.` for its root, with `/` separators.
fn rel(path: Option<&std::path::Path>) -> String {
    let text = path
        .map(|p| {
            p.components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/")
        })
        .unwrap_or_default();
    if text.is_empty() {
        ".".to_string()
    } else {
        text
    }
}

/// `path` (from [`rel`]) inside the workspace directory `dir`.
fn inside(dir: &str, path: &str) -> String {
    if path == "." {
        dir.to_string()
    } else {
        format!("{dir}/{path}")
    }
}

/// The repository of a pinned reference, without registry-less tag or digest:
/// `reg.example/vendor/os:1@sha256:..` → `vendor/os`.
fn repository_of(reference: &str) -> String {
    let name = reference.split('@').next().unwrap_or(reference);
    let (first, rest) = name.split_once('/').unwrap_or(("", name));
    let path = if first.contains('.') || first.contains(':') || first == "localhost" {
        rest
    } else {
        name
    };
    match path.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => repo.to_string(),
        _ => path.to_string(),
    }
}

/// A string safe inside a CEL single-quoted literal.
fn cel_string(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\'', "\\'")
}

/// `text` as a Kubernetes object name (DNS-1123 label), or an error naming what it is.
fn dns_name(text: &str, what: &str) -> Result<String, ExportError> {
    let ok = crate::k8s::is_dns1123_label(text);
    if ok {
        Ok(text.to_string())
    } else {
        Err(ExportError::Invalid {
            subject: text.to_string(),
            message: format!(
                "the {what} is not a Kubernetes object name (lower-case letters, digits and '-', \
                 at most 63)"
            ),
        })
    }
}
