//! OpenShift: ImageStreams (owner, tier, bought bases), BuildConfigs (parents, build args,
//! git or inline Dockerfile sources) and the deployments.

use super::*;

/// Read an OpenShift export: the chain from its ImageStreams and BuildConfigs, the deploy file
/// from its Deployments and Services.
pub(super) fn read(dir: &Path, objects: &[Object]) -> Result<Imported, ImportError> {
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
        what: "the registry, the teams' descriptions, contacts and keys, extra tags and the \
               tier-test files are not exported"
            .into(),
    });
    let deploy = deployments::deployments(objects, Some(&chain), &mut lost, Engine::Openshift)?;
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

/// A BuildConfig into its image: the parent from `from`, build args, the git or inline source.
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
