//! `strata plan`: what a change rebuilds, in build order, why, and which teams it affects.

use std::process::ExitCode;

use anyhow::Result;
use strata_chain::render;

use super::graph::{load_chain, statuses, write_stdout};
use crate::global::GlobalArgs;

/// Arguments of `strata plan`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Plan as if these images changed (what they cascade to). Without it: every image that is
    /// not up to date.
    #[arg(long, value_name = "IMAGE", num_args = 1..)]
    changed: Vec<String>,
    /// Print the plan as JSON.
    #[arg(long)]
    json: bool,
}

/// Print the plan.
pub fn run(args: Args, global: &GlobalArgs) -> Result<ExitCode> {
    let chain = load_chain(global)?;
    let statuses = statuses(&chain, global)?;
    let plan = chain.plan(&args.changed, &statuses)?;
    let text = if args.json {
        serde_json::to_string_pretty(&plan)? + "\n"
    } else {
        render::plan_text(&plan)
    };
    write_stdout(&text)?;
    Ok(ExitCode::SUCCESS)
}
