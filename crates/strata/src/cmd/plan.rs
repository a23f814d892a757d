//! `strata plan`: what a change rebuilds, in build order, why, and which teams it affects.

use std::process::ExitCode;

use anyhow::Result;
use strata_chain::render;

use super::graph::{load_chain_git, statuses, statuses_with, write_stdout};
use crate::global::GlobalArgs;

/// Arguments of `strata plan`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Plan as if these images changed (what they cascade to). Without it: every image that is
    /// not up to date.
    #[arg(long, value_name = "IMAGE", num_args = 1..)]
    changed: Vec<String>,
    /// Re-resolve the upstreams on their registries first (as `strata update --dry-run`) and plan
    /// as if strata.lock had moved: what an update would rebuild, and whose images.
    #[arg(long)]
    update: bool,
    /// Print the plan as JSON.
    #[arg(long)]
    json: bool,
}

/// Print the plan.
pub fn run(args: Args, global: &GlobalArgs) -> Result<ExitCode> {
    // With --update, git contexts are resolved again too (their new commits fetched).
    let chain = load_chain_git(
        global,
        if args.update {
            strata_chain::GitMode::Follow
        } else {
            strata_chain::GitMode::Lock
        },
        None,
    )?;
    let (statuses, moves, git_moves) = if args.update {
        let (old, mut new) = super::update::resolve(&chain, &[])?;
        new.set_git(&chain.git_commits());
        let old = old.unwrap_or_default();
        let moves = new.diff(&old);
        let git_moves = new.git_diff(&old);
        (statuses_with(&chain, global, Some(new))?, moves, git_moves)
    } else {
        (statuses(&chain, global)?, Vec::new(), Vec::new())
    };
    let plan = chain.plan(&args.changed, &statuses)?;
    let text = if args.json {
        let mut value = serde_json::to_value(&plan)?;
        if args.update {
            value["upstream_moves"] = serde_json::to_value(&moves)?;
            value["git_moves"] = serde_json::to_value(&git_moves)?;
        }
        serde_json::to_string_pretty(&value)? + "\n"
    } else {
        let mut out = String::new();
        if args.update {
            if moves.is_empty() && git_moves.is_empty() {
                out.push_str("upstreams: nothing moved\n");
            }
            for m in &moves {
                out.push_str(&format!("upstream moved: {m}\n"));
            }
            for m in &git_moves {
                out.push_str(&format!("git moved: {m}\n"));
            }
        }
        out + &render::plan_text(&plan)
    };
    write_stdout(&text)?;
    Ok(ExitCode::SUCCESS)
}
