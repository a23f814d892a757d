//! Tekton: the Pipeline's build tasks (parents from the pinned-parent build args, contexts,
//! git clones, tier tests) and its owner and tier annotations.

use super::*;
use crate::tekton::build_arg_name;

/// Read a Tekton export: the chain from its one Pipeline (no deployments).
pub(super) fn read(dir: &Path, objects: &[Object]) -> Result<Imported, ImportError> {
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
