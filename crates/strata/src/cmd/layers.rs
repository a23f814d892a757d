//! `strata layers IMAGE [--files]`: per layer its files, the bytes wasted by files later layers
//! overwrite or delete, and dive's efficiency score.

use std::process::ExitCode;

use anyhow::{Context, Result};

use super::graph::write_stdout;
use super::inspect::{OutputArgs, open, terminal};
use crate::global::GlobalArgs;

/// Arguments of `strata layers`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The image: a tag (`acme/corebuild`), `sha256:…`, or `NAME@N` (build number N).
    image: String,
    /// List each layer's files, with what became of them.
    #[arg(long)]
    files: bool,
    #[command(flatten)]
    output: OutputArgs,
}

/// Print an image's layer accounting.
pub fn run(args: Args, global: &GlobalArgs) -> Result<ExitCode> {
    let (store, catalog) = open(global)?;
    let image = catalog.find(&store, &args.image)?;
    let report = strata_inspect::layers(&store, &catalog, image, args.files)
        .with_context(|| format!("cannot read the layers of {}", args.image))?;
    if args.output.is_json() {
        write_stdout(&(serde_json::to_string_pretty(&report)? + "\n"))?;
    } else {
        let (width, paint) = terminal();
        write_stdout(&strata_inspect::text::layers(
            &report, args.files, width, paint,
        ))?;
    }
    Ok(ExitCode::SUCCESS)
}
