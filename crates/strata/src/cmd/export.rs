//! `strata export ENGINE`: hand the chain (and its deploy file) to an engine that runs it at
//! scale — `openshift`, `tekton`, `kubernetes` — as documents its own tools apply. `strata export IMAGE --format`
//! (archives, before `strata save` existed) still works, with a deprecation note.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use strata_export::ExportOptions;

use crate::global::GlobalArgs;
use crate::out::{errln, outln};

/// The engines `strata export` writes for.
const ENGINES: [&str; 3] = ["openshift", "tekton", "kubernetes"];

/// Arguments of `strata export`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The engine: `openshift` (ImageStreams, BuildConfigs with ImageChange triggers, Deployments
    /// with the image trigger annotation), `tekton` (one Pipeline, a buildah task per image, a
    /// registry-push EventListener) or `kubernetes` (Deployments and Services by digest, with a
    /// kustomization). An image name here writes an archive instead (deprecated: use `strata
    /// save`).
    target: String,
    /// The namespace the documents go to (default: the chain's name).
    #[arg(long)]
    namespace: Option<String>,
    /// The deploy file whose deployments are exported (default: deploy.toml in the working
    /// directory, when there is one).
    #[arg(long, value_name = "FILE", env = "STRATA_DEPLOY_FILE")]
    deploy: Option<PathBuf>,
    /// With an image: `docker-archive` or `oci-archive` (deprecated: use `strata save`).
    #[arg(long, value_parser = ["oci-archive", "docker-archive"], default_value = "oci-archive")]
    format: String,
    /// The directory the documents go to (default: `export-ENGINE`); with an image, the archive.
    #[arg(long, short = 'o', value_name = "PATH")]
    output: Option<PathBuf>,
    /// Print what was written and what the engine cannot carry as JSON.
    #[arg(long)]
    json: bool,
}

/// Export for an engine, or write an archive through `strata save`.
pub fn run(args: Args, global: &GlobalArgs) -> Result<ExitCode> {
    if !ENGINES.contains(&args.target.as_str()) {
        return archive(args, global);
    }
    let chain = super::graph::load_chain(global)?;
    let workdir = global.workdir()?;
    let deploy_path = match &args.deploy {
        Some(path) => Some(workdir.join(path)),
        None => Some(workdir.join("deploy.toml")).filter(|p| p.is_file()),
    };
    let deploy = deploy_path
        .as_deref()
        .map(strata_deploy::DeployFile::load)
        .transpose()?;
    // The digest each chain image's `latest` tag names in the store: what was built (and pushed).
    let store_path = global.store_path()?;
    let mut digests = BTreeMap::new();
    if let Ok(store) = strata_oci::Store::open(&store_path) {
        for (i, image) in chain.file.images.iter().enumerate() {
            let reference = strata_cascade::refs::tagged(&chain, i, "latest");
            if let Ok(descriptor) = store.refs().resolve(&reference) {
                digests.insert(image.name.clone(), descriptor.digest().to_string());
            }
        }
    }
    let options = ExportOptions {
        namespace: args
            .namespace
            .clone()
            .unwrap_or_else(|| chain.file.name.clone()),
    };
    let export = match args.target.as_str() {
        "kubernetes" => {
            strata_export::kubernetes::export(&chain, deploy.as_ref(), &digests, &options)
        }
        "tekton" => strata_export::tekton::export(&chain, deploy.as_ref(), &digests, &options),
        "openshift" => {
            strata_export::openshift::export(&chain, deploy.as_ref(), &digests, &options)
        }
        other => unreachable!("{other} is not in ENGINES"),
    }
    .with_context(|| format!("strata export {}", args.target))?;
    let dir = workdir.join(
        args.output
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!("export-{}", args.target))),
    );
    let written = export.write(&dir)?;
    for unsupported in &export.unsupported {
        errln!(
            "strata export {}: {}: not carried: {}",
            args.target,
            unsupported.subject,
            unsupported.what
        );
    }
    if args.json {
        let report = serde_json::json!({
            "engine": args.target,
            "namespace": options.namespace,
            "written": written.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
            "unsupported": export.unsupported.iter().map(|u| serde_json::json!({
                "subject": u.subject, "what": u.what,
            })).collect::<Vec<_>>(),
        });
        super::graph::write_stdout(&(serde_json::to_string_pretty(&report)? + "\n"))?;
    } else {
        for path in &written {
            outln!("{}", path.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `strata export IMAGE --format F -o FILE`: `strata save`, with a note saying so.
fn archive(args: Args, global: &GlobalArgs) -> Result<ExitCode> {
    let Some(output) = args.output else {
        anyhow::bail!(
            "strata export {}: not an engine ({}); to write an image archive use `strata save {} -o FILE`",
            args.target,
            ENGINES.join(", "),
            args.target
        );
    };
    errln!(
        "note: `strata export IMAGE --format` is deprecated; use `strata save {} --format {} -o {}`",
        args.target,
        args.format,
        output.display()
    );
    super::save::run(
        super::save::Args {
            image: args.target,
            format: args.format,
            output,
        },
        global,
    )
}
