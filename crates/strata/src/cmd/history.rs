//! `strata history IMAGE`: each step with created_by, size, time, empty or not, owner and team.

use std::process::ExitCode;

use anyhow::Result;

use super::graph::write_stdout;
use super::inspect::{OutputArgs, open, terminal};
use crate::global::GlobalArgs;

/// Arguments of `strata history`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The image: a tag (`acme/corebuild`), `sha256:…`, or `NAME@N` (build number N).
    image: String,
    #[command(flatten)]
    output: OutputArgs,
}

/// Print an image's history.
pub fn run(args: Args, global: &GlobalArgs) -> Result<ExitCode> {
    let (store, catalog) = open(global)?;
    let image = catalog.find(&store, &args.image)?;
    let rows = strata_inspect::history(&catalog, image);
    if args.output.is_json() {
        write_stdout(&(serde_json::to_string_pretty(&rows)? + "\n"))?;
    } else {
        let (width, paint) = terminal();
        write_stdout(&strata_inspect::text::history(
            &image.name(),
            &rows,
            width,
            paint,
        ))?;
    }
    Ok(ExitCode::SUCCESS)
}
