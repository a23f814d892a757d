//! `strata import ENGINE DIR`: read an export (`strata export openshift|tekton|kubernetes -o
//! DIR`) back into the chain's graph and write it as a project — `strata.toml`, the Dockerfiles
//! an OpenShift export carried inline, `deploy.toml` — or print the graph as JSON. What the
//! export did not carry is said on stderr.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use strata_export::import::Engine;

use crate::global::GlobalArgs;
use crate::out::{errln, outln};

/// Arguments of `strata import`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The engine the export was written for: `openshift`, `tekton` or `kubernetes`.
    #[arg(value_parser = ["openshift", "tekton", "kubernetes"])]
    engine: String,
    /// The export's directory (its `.json`, `.yaml` and `.yml` files are read).
    dir: PathBuf,
    /// The project directory written (default: the working directory; with `--json`, nothing
    /// is written unless this is given).
    #[arg(long, short = 'o', value_name = "OUTDIR")]
    output: Option<PathBuf>,
    /// Overwrite files that exist in OUTDIR.
    #[arg(long)]
    force: bool,
    /// Print the graph recovered (images, parents, owners, tiers, deployments, what was lost)
    /// as JSON.
    #[arg(long)]
    json: bool,
}

/// Import the export and write the project, or print it.
pub fn run(args: Args, global: &GlobalArgs) -> Result<ExitCode> {
    let engine: Engine = args
        .engine
        .parse()
        .map_err(|e: String| anyhow::anyhow!(e))?;
    let workdir = global.workdir()?;
    let dir = workdir.join(&args.dir);
    let imported = strata_export::import::import(engine, &dir)
        .with_context(|| format!("strata import {}", args.engine))?;
    for lost in &imported.lost {
        errln!(
            "strata import {}: {}: not carried by the export: {}",
            args.engine,
            lost.subject,
            lost.what
        );
    }
    let output = match (&args.output, args.json) {
        (Some(out), _) => Some(workdir.join(out)),
        (None, false) => Some(workdir.clone()),
        (None, true) => None,
    };
    let written = match &output {
        Some(out) => imported
            .write(out, args.force)
            .with_context(|| format!("strata import {}", args.engine))?,
        None => Vec::new(),
    };
    if args.json {
        super::graph::write_stdout(&(serde_json::to_string_pretty(&imported)? + "\n"))?;
    } else {
        for path in &written {
            outln!("{}", path.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}
