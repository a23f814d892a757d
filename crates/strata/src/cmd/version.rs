//! `strata version`.

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
#[allow(clippy::print_stdout)]
pub fn run(args: Args, _global: &GlobalArgs) -> Result<std::process::ExitCode> {
    let version = env!("CARGO_PKG_VERSION");
    if args.json {
        println!("{}", serde_json::json!({ "version": version }));
    } else {
        println!("strata {version}");
    }
    Ok(ExitCode::SUCCESS)
}
