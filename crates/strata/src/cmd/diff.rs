//! `strata diff A B`: shared, added and removed layers, then the files that differ.

use std::process::ExitCode;

use anyhow::{Context, Result};

use super::graph::write_stdout;
use super::inspect::{OutputArgs, open, terminal};
use crate::global::GlobalArgs;

/// Arguments of `strata diff`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The first image: a tag, `sha256:…`, or `NAME@N` (`corebuild@3`: build 3 of corebuild).
    a: String,
    /// The second image.
    b: String,
    #[command(flatten)]
    output: OutputArgs,
}

/// Print what changed from A to B.
pub fn run(args: Args, global: &GlobalArgs) -> Result<ExitCode> {
    let (store, catalog) = open(global)?;
    let a = catalog.find(&store, &args.a)?;
    let b = catalog.find(&store, &args.b)?;
    let mut diff = strata_inspect::diff(&store, a, b)
        .with_context(|| format!("cannot compare {} and {}", args.a, args.b))?;
    // Name the images as asked (`corebuild@1`), not by their first tag.
    diff.a.0.clone_from(&args.a);
    diff.b.0.clone_from(&args.b);
    if args.output.is_json() {
        write_stdout(&(serde_json::to_string_pretty(&diff)? + "\n"))?;
    } else {
        let (width, paint) = terminal();
        write_stdout(&strata_inspect::text::diff(&diff, width, paint))?;
    }
    Ok(ExitCode::SUCCESS)
}
