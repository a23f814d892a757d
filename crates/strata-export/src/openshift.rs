//! OpenShift: per chain image an `ImageStream` and a `BuildConfig` (Docker strategy, its `from`
//! the parent's `ImageStreamTag`, `ImageChange` and `ConfigChange` triggers), a bought base as an
//! `ImageStream` tag importing its pinned digest, and per deployment a `Deployment` (with the
//! `image.openshift.io/triggers` annotation, not a deprecated `DeploymentConfig`) and a `Service`.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use strata_chain::{Build, Chain, UseKind};
use strata_deploy::config::{ImageSource, Network};
use strata_deploy::{DeployFile, Deployment, Trigger};

use crate::k8s::{is_dns1123_label, is_label_value};
use crate::{Document, Export, ExportError, ExportOptions, Unsupported};

/// Label carrying an image's owning team.
pub const OWNER_LABEL: &str = "strata.dev/owner";
/// Label carrying an image's tier.
pub const TIER_LABEL: &str = "strata.dev/tier";
/// Annotation naming the chain an object was exported from.
pub const CHAIN_ANNOTATION: &str = "strata.dev/chain";

/// Export `chain` (and `deploy`'s deployments) as OpenShift documents for `options.namespace`.
/// `digests` maps a chain image's name to its pushed digest, when known: deployments then start
/// on that digest instead of waiting for the first trigger.
pub fn export(
    chain: &Chain,
    deploy: Option<&DeployFile>,
    digests: &BTreeMap<String, String>,
    options: &ExportOptions,
) -> Result<Export, ExportError> {
    check_name("namespace", &options.namespace)?;
    let mut out = Export::default();
    let graph = chain.graph();
    for &i in graph.order() {
        let image = &chain.file.images[i];
        check_name(&image.name, &image.name)?;
        let meta = metadata(
            chain,
            &image.name,
            &image.owner,
            image.tier.as_deref(),
            options,
        );
        match &image.build {
            Build::Image { reference, .. } => {
                out.documents.push(Document {
                    file: format!("{}-imagestream.json", image.name),
                    value: json!({
                        "apiVersion": "image.openshift.io/v1",
                        "kind": "ImageStream",
                        "metadata": meta,
                        "spec": {
                            "lookupPolicy": {"local": true},
                            "tags": [{
                                "name": "latest",
                                "from": {"kind": "DockerImage", "name": reference},
                                "importPolicy": {"scheduled": true},
                                "referencePolicy": {"type": "Source"},
                            }],
                        },
                    }),
                });
                if image.args.is_empty() && image.test.is_none() {
                    continue;
                }
                if image.test.is_some() {
                    out.unsupported.push(Unsupported {
                        subject: image.name.clone(),
                        what: "the bought image's structure test has no BuildConfig to run in"
                            .into(),
                    });
                }
            }
            Build::Rootfs { path } => {
                out.documents.push(Document {
                    file: format!("{}-imagestream.json", image.name),
                    value: json!({
                        "apiVersion": "image.openshift.io/v1",
                        "kind": "ImageStream",
                        "metadata": meta,
                        "spec": {"lookupPolicy": {"local": true}},
                    }),
                });
                out.unsupported.push(Unsupported {
                    subject: image.name.clone(),
                    what: format!(
                        "a root filesystem tarball ({}) cannot be built by OpenShift: push the image to the ImageStream {}:latest (or declare it as source = {{ image = \"...@sha256:...\" }})",
                        chain.file.relative(path).display(),
                        image.name
                    ),
                });
            }
            Build::Dockerfile {
                context,
                dockerfile,
            } => {
                let text =
                    std::fs::read_to_string(dockerfile).map_err(|e| ExportError::Invalid {
                        subject: image.name.clone(),
                        message: format!("cannot read {}: {e}", dockerfile.display()),
                    })?;
                // The parent: the first FROM on a chain image, else an external FROM.
                let parent = graph
                    .parents(i)
                    .into_iter()
                    .find(|&p| graph.uses(p, i).iter().any(|u| u.kind == UseKind::From));
                let from = match parent {
                    Some(p) => {
                        let name = &chain.file.images[p].name;
                        json!({"kind": "ImageStreamTag", "name": format!("{name}:latest")})
                    }
                    None => match graph
                        .external_uses(i)
                        .iter()
                        .find(|u| u.kind == UseKind::From)
                    {
                        Some(u) => json!({"kind": "DockerImage", "name": u.reference}),
                        None => Value::Null,
                    },
                };
                for p in graph.parents(i) {
                    for u in graph.uses(p, i) {
                        if u.kind != UseKind::From {
                            out.unsupported.push(Unsupported {
                                subject: image.name.clone(),
                                what: format!(
                                    "line {}: {} {} is not an ImageChange trigger: a new {} does not rebuild it",
                                    u.line,
                                    u.kind.instruction(),
                                    u.reference,
                                    chain.file.images[p].name
                                ),
                            });
                        }
                    }
                }
                if text.contains("type=secret") {
                    out.unsupported.push(Unsupported {
                        subject: image.name.clone(),
                        what: "RUN --mount=type=secret needs a Secret created and named in the BuildConfig's source.secrets".into(),
                    });
                }
                let mut strategy = serde_json::Map::new();
                if !from.is_null() {
                    strategy.insert("from".into(), from.clone());
                }
                if !image.args.is_empty() {
                    let args: Vec<Value> = image
                        .args
                        .iter()
                        .map(|(k, v)| json!({"name": k, "value": v}))
                        .collect();
                    strategy.insert("buildArgs".into(), Value::Array(args));
                }
                let source = match &image.git {
                    Some(git) => {
                        let relative = dockerfile.strip_prefix(context).ok();
                        if let Some(rel) = relative
                            && rel != std::path::Path::new("Dockerfile")
                        {
                            strategy.insert(
                                "dockerfilePath".into(),
                                Value::String(rel.to_string_lossy().into_owned()),
                            );
                        }
                        let mut source = json!({
                            "type": "Git",
                            "git": {"uri": git.url, "ref": git.rev},
                        });
                        let dir = git.dir.to_string_lossy();
                        if !dir.is_empty() && dir != "." {
                            source["contextDir"] = Value::String(dir.into_owned());
                        }
                        source
                    }
                    None => {
                        if needs_context(&text) {
                            out.unsupported.push(Unsupported {
                                subject: image.name.clone(),
                                what: format!(
                                    "the Dockerfile copies files of its local context ({}): start a binary build (oc start-build {} --from-dir={}) or give the image a git context",
                                    chain.file.relative(context).display(),
                                    image.name,
                                    chain.file.relative(context).display()
                                ),
                            });
                        }
                        json!({"type": "Dockerfile", "dockerfile": text})
                    }
                };
                let mut triggers = vec![json!({"type": "ConfigChange"})];
                if from.get("kind").and_then(Value::as_str) == Some("ImageStreamTag") {
                    triggers.push(json!({"type": "ImageChange", "imageChange": {}}));
                }
                let mut spec = json!({
                    "runPolicy": "Serial",
                    "source": source,
                    "strategy": {"type": "Docker", "dockerStrategy": Value::Object(strategy)},
                    "output": {"to": {"kind": "ImageStreamTag", "name": format!("{}:latest", image.name)}},
                    "triggers": triggers,
                });
                if let Some(test) = &image.test {
                    match post_commit_script(test) {
                        Some(script) => spec["postCommit"] = json!({"script": script}),
                        None => out.unsupported.push(Unsupported {
                            subject: image.name.clone(),
                            what: format!(
                                "the structure test {} cannot run as a postCommit script (only commandTests without expectations on output can): run it with strata test",
                                chain.file.relative(test).display()
                            ),
                        }),
                    }
                }
                for tag in &image.tags {
                    out.unsupported.push(Unsupported {
                        subject: image.name.clone(),
                        what: format!(
                            "the extra tag {tag} is not moved by the BuildConfig: oc tag {0}:latest {0}:{tag} after a build",
                            image.name
                        ),
                    });
                }
                out.documents.push(Document {
                    file: format!("{}-imagestream.json", image.name),
                    value: json!({
                        "apiVersion": "image.openshift.io/v1",
                        "kind": "ImageStream",
                        "metadata": meta.clone(),
                        "spec": {"lookupPolicy": {"local": true}},
                    }),
                });
                out.documents.push(Document {
                    file: format!("{}-buildconfig.json", image.name),
                    value: json!({
                        "apiVersion": "build.openshift.io/v1",
                        "kind": "BuildConfig",
                        "metadata": meta,
                        "spec": spec,
                    }),
                });
            }
        }
    }
    if let Some(deploy) = deploy {
        for deployment in &deploy.deployments {
            export_deployment(chain, deploy, deployment, digests, options, &mut out)?;
        }
    }
    Ok(out)
}

/// Whether a Dockerfile's `COPY`/`ADD` read files of the build context (not `--from` a stage
/// or image), which an inline Dockerfile build does not have.
fn needs_context(text: &str) -> bool {
    let mut logical = String::new();
    let mut lines = Vec::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') && logical.is_empty() {
            continue;
        }
        if let Some(stripped) = trimmed.strip_suffix('\\') {
            logical.push_str(stripped);
            logical.push(' ');
            continue;
        }
        logical.push_str(trimmed);
        lines.push(std::mem::take(&mut logical));
    }
    lines.push(logical);
    lines.iter().any(|line| {
        let mut words = line.split_whitespace();
        let Some(instruction) = words.next() else {
            return false;
        };
        (instruction.eq_ignore_ascii_case("COPY") || instruction.eq_ignore_ascii_case("ADD"))
            && !words.any(|w| w.starts_with("--from="))
    })
}

/// The tier test as a shell script, when it is a structure test of commands only, with no
/// expectations on their output (a script cannot match Rust regular expressions faithfully),
/// no environment and no user of its own: each setup and command run in order, the command's
/// exit code compared. None otherwise (or when the file does not parse).
fn post_commit_script(test: &std::path::Path) -> Option<String> {
    let text = std::fs::read_to_string(test).ok()?;
    let file = strata_tiertest::parse(test, &text).ok()?;
    let scriptable = file.file_existence_tests.is_empty()
        && file.file_content_tests.is_empty()
        && file.metadata_test.is_none()
        && file.license_tests.is_empty()
        && file.global_env_vars.is_empty()
        && file.run_user.is_none()
        && !file.command_tests.is_empty()
        && file.command_tests.iter().all(|t| {
            t.env_vars.is_empty()
                && t.expected_output.is_empty()
                && t.excluded_output.is_empty()
                && t.expected_error.is_empty()
                && t.excluded_error.is_empty()
        });
    if !scriptable {
        return None;
    }
    let quote = |words: &[String]| -> String {
        words
            .iter()
            .map(|w| format!("'{}'", w.replace('\'', "'\\''")))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut script = String::new();
    for t in &file.command_tests {
        for setup in &t.setup {
            script.push_str(&format!("{} || exit 1\n", quote(setup)));
        }
        let mut command = vec![t.command.clone()];
        command.extend(t.args.iter().cloned());
        script.push_str(&format!(
            "{}; status=$?; if [ \"$status\" -ne {} ]; then echo {} \"$status\" >&2; exit 1; fi\n",
            quote(&command),
            t.exit_code,
            quote(&[format!(
                "{}: expected exit code {}, got",
                t.name, t.exit_code
            )])
        ));
        for teardown in &t.teardown {
            script.push_str(&format!("{} || true\n", quote(teardown)));
        }
    }
    Some(script)
}

/// `metadata` of an image's objects: its name, namespace, owner and tier as labels (when they
/// are valid label values) and annotations.
fn metadata(
    chain: &Chain,
    name: &str,
    owner: &str,
    tier: Option<&str>,
    options: &ExportOptions,
) -> Value {
    let mut labels = serde_json::Map::new();
    let mut annotations = serde_json::Map::new();
    annotations.insert(CHAIN_ANNOTATION.into(), chain.file.name.clone().into());
    annotations.insert(OWNER_LABEL.into(), owner.into());
    if is_label_value(owner) {
        labels.insert(OWNER_LABEL.into(), owner.into());
    }
    if let Some(tier) = tier {
        annotations.insert(TIER_LABEL.into(), tier.into());
        if is_label_value(tier) {
            labels.insert(TIER_LABEL.into(), tier.into());
        }
    }
    json!({
        "name": name,
        "namespace": options.namespace,
        "labels": labels,
        "annotations": annotations,
    })
}

/// One deployment as a `Deployment` and, when it publishes ports, a `Service`.
fn export_deployment(
    chain: &Chain,
    deploy: &DeployFile,
    d: &Deployment,
    digests: &BTreeMap<String, String>,
    options: &ExportOptions,
    out: &mut Export,
) -> Result<(), ExportError> {
    check_name(&d.name, &d.name)?;
    let unsupported = |what: String| Unsupported {
        subject: d.name.clone(),
        what,
    };
    // The image and, for a chain image, the ImageStreamTag that triggers a rollout.
    let (image, stream_tag, owner, tier) = match &d.image {
        ImageSource::Chain { reference } => {
            let Some(i) = chain.resolve(reference) else {
                return Err(ExportError::Invalid {
                    subject: d.name.clone(),
                    message: format!("image {reference} is not an image of the chain"),
                });
            };
            let img = &chain.file.images[i];
            let tag = tag_of(reference).unwrap_or("latest");
            let stream_tag = format!("{}:{tag}", img.name);
            let image = match digests.get(&img.name) {
                Some(digest) => format!(
                    "image-registry.openshift-image-registry.svc:5000/{}/{}@{digest}",
                    options.namespace, img.name
                ),
                None => stream_tag.clone(),
            };
            (
                image,
                Some(stream_tag),
                Some(img.owner.clone()),
                img.tier.clone(),
            )
        }
        ImageSource::Registry { reference } => (reference.clone(), None, None, None),
        ImageSource::Oci { dir, .. } => {
            out.unsupported.push(unsupported(format!(
                "its image is in a local OCI layout ({}), which a cluster cannot pull: the deployment is not exported",
                dir.display()
            )));
            return Ok(());
        }
    };
    let owner = owner.or_else(|| deploy.owner.clone());
    let meta_owner = owner.as_deref().unwrap_or_default();
    let mut meta = metadata(chain, &d.name, meta_owner, tier.as_deref(), options);
    if owner.is_none() {
        let m = meta.as_object_mut().expect("metadata is an object");
        m["labels"].as_object_mut().map(|l| l.remove(OWNER_LABEL));
        m["annotations"]
            .as_object_mut()
            .map(|a| a.remove(OWNER_LABEL));
    }
    let selector = json!({"app.kubernetes.io/name": d.name});
    let mut pod_labels = meta["labels"].clone();
    pod_labels["app.kubernetes.io/name"] = Value::String(d.name.clone());

    let mut container = json!({"name": d.name, "image": image});
    if !d.ports.is_empty() {
        container["ports"] = d
            .ports
            .iter()
            .map(|p| json!({"containerPort": p.container_port, "protocol": "TCP"}))
            .collect();
    }
    if !d.env.is_empty() {
        container["env"] = d
            .env
            .iter()
            .map(|(k, v)| json!({"name": k, "value": v}))
            .collect();
    }
    if let Some(health) = &d.health {
        let (startup, probe) = crate::k8s::probes(health);
        container["startupProbe"] = startup;
        container["readinessProbe"] = probe.clone();
        container["livenessProbe"] = probe;
    }
    let mut annotations = meta["annotations"].clone();
    if let Some(stream_tag) = &stream_tag {
        let triggers = json!([{
            "from": {"kind": "ImageStreamTag", "name": stream_tag},
            "fieldPath": format!("spec.template.spec.containers[?(@.name==\"{}\")].image", d.name),
            "paused": if d.trigger == Trigger::Manual { "true" } else { "false" },
        }]);
        annotations["image.openshift.io/triggers"] = Value::String(triggers.to_string());
    }
    let mut deployment_meta = meta.clone();
    deployment_meta["annotations"] = annotations;
    if d.trigger == Trigger::Manual {
        out.unsupported.push(unsupported(
            "trigger = \"manual\": the image trigger is paused; approve by rolling out by hand (oc set image or unpausing the trigger), strata deploy approve has no counterpart".into(),
        ));
    }
    if d.require_verified {
        out.unsupported.push(unsupported(
            "require.verified: the cluster does not check strata provenance; an image policy (sigstore ClusterImagePolicy) must do it".into(),
        ));
    }
    if d.network == Network::None {
        out.unsupported.push(unsupported(
            "network = \"none\": a NetworkPolicy denying egress must be written by hand".into(),
        ));
    }
    for p in &d.ports {
        if p.host_ip != "0.0.0.0" {
            out.unsupported.push(unsupported(format!(
                "the listen address {} of port {} has no Service counterpart",
                p.host_ip, p.host_port
            )));
        }
    }
    out.documents.push(Document {
        file: format!("{}-deployment.json", d.name),
        value: json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": deployment_meta,
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": selector},
                "strategy": {"type": "RollingUpdate"},
                "template": {
                    "metadata": {"labels": pod_labels},
                    "spec": {
                        "containers": [container],
                        "terminationGracePeriodSeconds": d.stop_grace.as_secs(),
                    },
                },
            },
        }),
    });
    if !d.ports.is_empty() {
        let ports: Vec<Value> = d
            .ports
            .iter()
            .map(|p| {
                json!({
                    "name": format!("tcp-{}", p.host_port),
                    "port": p.host_port,
                    "targetPort": p.container_port,
                    "protocol": "TCP",
                })
            })
            .collect();
        out.documents.push(Document {
            file: format!("{}-service.json", d.name),
            value: json!({
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": meta,
                "spec": {"selector": selector, "ports": ports},
            }),
        });
    }
    Ok(())
}

/// The tag of `name:tag` (not of a registry's `host:port` nor a digest).
fn tag_of(reference: &str) -> Option<&str> {
    let without_digest = reference.split('@').next().unwrap_or(reference);
    let last = without_digest.rsplit('/').next().unwrap_or(without_digest);
    last.split_once(':').map(|(_, tag)| tag)
}

/// An object name must be a DNS-1123 label (what Services and ImageStreams accept).
fn check_name(subject: &str, name: &str) -> Result<(), ExportError> {
    let ok = is_dns1123_label(name);
    if ok {
        Ok(())
    } else {
        Err(ExportError::Invalid {
            subject: subject.to_string(),
            message: format!(
                "{name:?} is not a valid OpenShift object name (lowercase letters, digits and -, at most 63)"
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_from_context_needs_a_binary_build() {
        assert!(needs_context("FROM a\nCOPY x /x\n"));
        assert!(needs_context("FROM a\nRUN true \\\n && true\nadd y /y\n"));
        assert!(!needs_context("FROM a\nCOPY --from=b /x /x\nRUN true\n"));
    }

    #[test]
    fn tags_and_names() {
        assert_eq!(tag_of("acme/wordpress:6.4"), Some("6.4"));
        assert_eq!(tag_of("reg:5000/acme/wordpress"), None);
        assert!(check_name("x", "httpd-php").is_ok());
        assert!(check_name("x", "Httpd_php").is_err());
    }
}
