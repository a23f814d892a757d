//! Kubernetes: the deployments only, in the kustomization's order.

use super::*;

/// Read a Kubernetes export: its Deployments and Services, as a deploy file only.
pub(super) fn read(dir: &Path, objects: &[Object]) -> Result<Imported, ImportError> {
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
    let mut deploy = deployments::deployments(objects, None, &mut lost, Engine::Kubernetes)?;
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
