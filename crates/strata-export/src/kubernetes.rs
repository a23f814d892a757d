//! Plain Kubernetes: each deployment of `deploy.toml` as an `apps/v1 Deployment` and a `v1
//! Service`, the image by digest (never a mutable tag), the health check as readiness and
//! liveness probes; and a `kustomization.yaml` whose `images:` carry the digests, for Argo CD or
//! Flux to apply.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use strata_chain::{Build, Chain};
use strata_deploy::config::{DeployFile, Deployment, ImageSource, Network, Trigger};

use crate::k8s::{is_dns1123_label, is_label_value};
use crate::{Document, Export, ExportError, ExportOptions, Unsupported};

/// Export the deployments of `deploy` (none: an empty export with a kustomization only) as
/// Kubernetes documents, in the namespace of `options`, the kustomization last.
///
/// `digests` maps a chain image name to its pushed digest; a deployment of a chain image runs
/// `REGISTRY/CHAIN/NAME@DIGEST`, the registry being the chain's `registry` setting (a digest
/// written in the deploy file wins; a bought image is pulled from its own pinned reference). A
/// deployment whose digest is unknown, an image outside the chain not pinned by digest, an OCI
/// layout directory, or a chain without a registry is an error: a mutable tag would deploy
/// whatever is pushed next. So is a name a cluster would reject.
pub fn export(
    chain: &Chain,
    deploy: Option<&DeployFile>,
    digests: &BTreeMap<String, String>,
    options: &ExportOptions,
) -> Result<Export, ExportError> {
    check_label("namespace", &options.namespace)?;
    let mut export = Export::default();
    export.unsupported.push(Unsupported {
        subject: format!("chain {}", chain.file.name),
        what: "the images' builds, their triggers and tier tests: plain Kubernetes runs the \
               deployments only (build with strata, or export to openshift or tekton)"
            .to_string(),
    });
    let mut resources = Vec::new();
    // repository -> the digests its deployments run
    let mut images: BTreeMap<String, BTreeMap<String, Vec<String>>> = BTreeMap::new();
    for deployment in deploy.map_or(&[][..], |d| &d.deployments) {
        check_label(&format!("deployment {}", deployment.name), &deployment.name)?;
        check_env(deployment)?;
        let image = pinned_image(chain, deployment, digests)?;
        let (repository, digest) = image
            .reference
            .split_once('@')
            .expect("a pinned reference holds a digest");
        images
            .entry(repository.to_string())
            .or_default()
            .entry(digest.to_string())
            .or_default()
            .push(deployment.name.clone());
        let (deployment_doc, service_doc) = documents(chain, deploy, deployment, &image, options);
        let file = format!("{}-deployment.json", deployment.name);
        resources.push(file.clone());
        export.documents.push(Document {
            file,
            value: deployment_doc,
        });
        if !service_doc.is_null() {
            let file = format!("{}-service.json", deployment.name);
            resources.push(file.clone());
            export.documents.push(Document {
                file,
                value: service_doc,
            });
        }
        export
            .unsupported
            .extend(unsupported(deployment, deploy.map(|d| d.name.as_str())));
    }
    let mut entries = Vec::new();
    for (name, digests) in images {
        if digests.len() == 1 {
            let digest = digests.into_keys().next().expect("one digest");
            entries.push(json!({ "name": name, "digest": digest }));
        } else {
            let runs: Vec<String> = digests
                .iter()
                .map(|(digest, deployments)| format!("{} at {digest}", deployments.join(", ")))
                .collect();
            export.unsupported.push(Unsupported {
                subject: format!("image {name}"),
                what: format!(
                    "kustomization images: sets one digest per image, and it runs at several \
                     ({}); it is left out there (each Deployment names its own digest)",
                    runs.join("; ")
                ),
            });
        }
    }
    export.documents.push(Document {
        file: "kustomization.yaml".to_string(),
        value: json!({
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "namespace": options.namespace,
            "resources": resources,
            "images": entries,
        }),
    });
    Ok(export)
}

/// The image a deployment runs, pinned.
struct Pinned {
    /// `HOST/NAME@sha256:...`.
    reference: String,
    /// The chain image, when it is one of the chain's.
    chain_image: Option<usize>,
}

/// The registry reference by digest of the image `deployment` follows: a digest written in
/// the deploy file is kept; a chain image otherwise takes its digest from `digests` and its
/// repository from the chain's registry, a bought image its own pinned reference.
fn pinned_image(
    chain: &Chain,
    deployment: &Deployment,
    digests: &BTreeMap<String, String>,
) -> Result<Pinned, ExportError> {
    let invalid = |message: String| ExportError::Invalid {
        subject: format!("deployment {}", deployment.name),
        message,
    };
    let reference = match &deployment.image {
        ImageSource::Chain { reference } | ImageSource::Registry { reference } => reference,
        ImageSource::Oci { .. } => {
            return Err(invalid(format!(
                "image {} is an OCI layout directory, which a cluster cannot pull from; push it \
                 to a registry and name that",
                deployment.image
            )));
        }
    };
    let written = reference.split_once('@');
    if let Some((_, digest)) = written {
        check_digest(digest).map_err(|m| invalid(format!("image {reference}: {m}")))?;
    }
    let Some(i) = chain.resolve(reference) else {
        let Some((repository, digest)) = written else {
            return Err(invalid(format!(
                "image {reference} is not one of the chain's and is not pinned by digest; a tag \
                 would deploy whatever is pushed next"
            )));
        };
        return Ok(Pinned {
            reference: format!("{}@{digest}", without_tag(repository)),
            chain_image: None,
        });
    };
    let image = &chain.file.images[i];
    let name = &image.name;
    if let Build::Image { reference, .. } = &image.build {
        // A bought image is pulled from where it was bought, at the digest it is pinned to.
        let (repository, pinned) = reference
            .split_once('@')
            .expect("a bought image is pinned by digest (checked when the chain loads)");
        let digest = written.map_or(pinned, |(_, digest)| digest);
        return Ok(Pinned {
            reference: format!("{}@{digest}", without_tag(repository)),
            chain_image: Some(i),
        });
    }
    let registry = chain.file.registry.as_deref().ok_or_else(|| {
        invalid(format!(
            "the chain {} has no `registry`, so a cluster has nowhere to pull {name} from",
            chain.file.name
        ))
    })?;
    let digest = match written {
        Some((_, digest)) => digest,
        None => {
            let digest = digests.get(name).ok_or_else(|| {
                invalid(format!(
                    "no digest is known for chain image {name} (build and push it first); a \
                     tag would deploy whatever is pushed next"
                ))
            })?;
            check_digest(digest).map_err(|m| invalid(format!("chain image {name}: {m}")))?;
            digest
        }
    };
    Ok(Pinned {
        reference: format!("{registry}/{}/{name}@{digest}", chain.file.name),
        chain_image: Some(i),
    })
}

/// `host:5000/name:tag` without its tag (a `:` after the last `/`).
fn without_tag(repository: &str) -> &str {
    match repository.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => name,
        _ => repository,
    }
}

/// `sha256:` and 64 lower-case hex digits.
fn check_digest(digest: &str) -> Result<(), String> {
    match digest.strip_prefix("sha256:") {
        Some(hex)
            if hex.len() == 64
                && hex
                    .chars()
                    .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)) =>
        {
            Ok(())
        }
        _ => Err(format!("{digest:?} is not a sha256 digest")),
    }
}

/// A deployment name or namespace must be a DNS-1123 label to name a Service or a namespace.
fn check_label(subject: &str, name: &str) -> Result<(), ExportError> {
    // Services need a DNS-1035 label: a DNS-1123 one that starts with a letter.
    let ok = is_dns1123_label(name) && name.starts_with(|c: char| c.is_ascii_lowercase());
    if ok {
        Ok(())
    } else {
        Err(ExportError::Invalid {
            subject: subject.to_string(),
            message: format!(
                "\"{name}\" is not a Kubernetes name (a DNS-1123 label: lower-case letters, \
                 digits and '-', starting with a letter, at most 63 characters)"
            ),
        })
    }
}

/// Environment names every supported Kubernetes accepts (`[-._a-zA-Z][-._a-zA-Z0-9]*`: the
/// relaxed rule of 1.30 is not in the older ones).
fn check_env(deployment: &Deployment) -> Result<(), ExportError> {
    for name in deployment.env.keys() {
        let ok = name.starts_with(|c: char| c.is_ascii_alphabetic() || "-._".contains(c))
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c));
        if !ok {
            return Err(ExportError::Invalid {
                subject: format!("deployment {}", deployment.name),
                message: format!(
                    "environment name {name:?} is not one Kubernetes accepts (letters, digits, \
                     '-', '.', '_', not starting with a digit)"
                ),
            });
        }
    }
    Ok(())
}

/// The labels of every document of a deployment: its name, the chain, the owning team and tier.
fn labels(chain: &Chain, deployment: &Deployment, image: &Pinned) -> Value {
    let mut labels = serde_json::Map::new();
    labels.insert("app.kubernetes.io/name".into(), json!(deployment.name));
    labels.insert("app.kubernetes.io/managed-by".into(), json!("strata"));
    let mut label = |key: &str, value: &str| {
        if is_label_value(value) {
            labels.insert(key.into(), json!(value));
        }
    };
    label("strata.dev/chain", &chain.file.name);
    if let Some(i) = image.chain_image {
        let image = &chain.file.images[i];
        label("strata.dev/owner", &image.owner);
        if let Some(tier) = &image.tier {
            label("strata.dev/tier", tier);
        }
    }
    Value::Object(labels)
}

/// The annotations: the chain image, its owner and tier, and who approves the deployment (never
/// the digest: a bump of the kustomization's `images:` would leave it stale).
fn annotations(
    chain: &Chain,
    deploy: Option<&DeployFile>,
    deployment: &Deployment,
    image: &Pinned,
) -> Value {
    let mut annotations = serde_json::Map::new();
    if let Some(i) = image.chain_image {
        let image = &chain.file.images[i];
        annotations.insert("strata.dev/chain-image".into(), json!(image.name));
        annotations.insert("strata.dev/owner".into(), json!(image.owner));
        if let Some(tier) = &image.tier {
            annotations.insert("strata.dev/tier".into(), json!(tier));
        }
    }
    if let Some(owner) = deploy.and_then(|d| d.owner.as_ref()) {
        annotations.insert("strata.dev/deploy-owner".into(), json!(owner));
    }
    annotations.insert(
        "strata.dev/trigger".into(),
        json!(match deployment.trigger {
            Trigger::Auto => "auto",
            Trigger::Manual => "manual",
        }),
    );
    Value::Object(annotations)
}

/// The `apps/v1 Deployment` and `v1 Service` of `deployment`, built by the same function
/// `strata deploy`'s kubernetes target applies with, so an export and a deploy agree.
fn documents(
    chain: &Chain,
    deploy: Option<&DeployFile>,
    deployment: &Deployment,
    image: &Pinned,
    options: &ExportOptions,
) -> (Value, Value) {
    let (d, s) = strata_deploy::kubernetes::documents(
        deployment,
        &image.reference,
        &options.namespace,
        1,
        &labels(chain, deployment, image),
        &annotations(chain, deploy, deployment, image),
    );
    (d, s.unwrap_or(Value::Null))
}

/// What of `deployment` Kubernetes documents cannot carry.
fn unsupported(deployment: &Deployment, file: Option<&str>) -> Vec<Unsupported> {
    let subject = match file {
        Some(file) => format!("deployment {file}/{}", deployment.name),
        None => format!("deployment {}", deployment.name),
    };
    let mut lost = Vec::new();
    if deployment.trigger == Trigger::Manual {
        lost.push(
            "trigger = \"manual\": a cluster applies whatever digest the manifest names; approve \
             by committing the bump (gitops) instead"
                .to_string(),
        );
    }
    if deployment.require_verified {
        lost.push(
            "require.verified: a cluster checks signatures only with an admission policy \
             (e.g. sigstore policy-controller), which this export does not write"
                .to_string(),
        );
    }
    if deployment.network == Network::None {
        lost.push(
            "network = \"none\": a pod always has a network; isolate it with a NetworkPolicy"
                .to_string(),
        );
    }
    for port in &deployment.ports {
        if port.host_ip != "0.0.0.0" {
            lost.push(format!(
                "port {}:{}:{}: a Service listens on every address of the cluster, not on {}",
                port.host_ip, port.host_port, port.container_port, port.host_ip
            ));
        }
    }
    lost.into_iter()
        .map(|what| Unsupported {
            subject: subject.clone(),
            what,
        })
        .collect()
}
