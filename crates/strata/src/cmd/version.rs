//! `strata version`.

use crate::out::outln;
use std::process::ExitCode;

use anyhow::Result;

use crate::global::GlobalArgs;

/// Arguments of `strata version`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Print the version.
pub fn run(args: Args, _global: &GlobalArgs) -> Result<std::process::ExitCode> {
    let version = env!("CARGO_PKG_VERSION");
    if args.json {
        outln!("{}", serde_json::json!({ "version": version }));
    } else {
        outln!("strata {version}");
    }
    Ok(ExitCode::SUCCESS)
}
