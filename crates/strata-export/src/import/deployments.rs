//! Deployments and Services (OpenShift's and Kubernetes') back into `deploy.toml`'s deployments.

use super::*;

/// The deploy file of the export's Deployments (each with the Service of the same name), or
/// None when it holds none. `chain` resolves OpenShift's ImageStreamTag triggers.
pub(super) fn deployments(
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

/// One Deployment (and its Service) as a deployment.
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

/// A port number; a named port does not come back.
fn port(object: &Object, field: &str, value: Option<&Value>) -> Result<u16, ImportError> {
    value
        .and_then(Value::as_u64)
        .and_then(|p| u16::try_from(p).ok())
        .filter(|p| *p != 0)
        .ok_or_else(|| object.err(field, "not a port number (a named port does not come back)"))
}

/// The startup probe as a health check: the timeout is its period times its failure threshold.
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
