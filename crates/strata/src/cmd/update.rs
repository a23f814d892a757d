//! `strata update`: re-resolve the chain's upstreams (manifest HEAD, no layer download), move
//! `strata.lock` and say what moved.

use std::process::ExitCode;

use anyhow::Result;
use serde::Serialize;
use strata_cascade::upstream;
use strata_chain::{GitMove, Lock, Move};

use super::graph::{load_chain_git, write_stdout};
use crate::global::GlobalArgs;

/// Arguments of `strata update`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Re-resolve only these upstreams (as the Dockerfile names them, or by repository, with or
    /// without the tag); default: all of them.
    references: Vec<String>,
    /// Show what would move; write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Print what moved as JSON.
    #[arg(long)]
    json: bool,
}

/// What `strata update --json` prints.
#[derive(Serialize)]
struct Report {
    /// The lock file.
    lock: String,
    /// What moved (or was locked anew, or dropped).
    moves: Vec<Move>,
    /// The git contexts whose commit moved (or were locked anew, or dropped).
    git_moves: Vec<GitMove>,
    /// Whether the lock was written.
    written: bool,
}

/// Re-resolve, write the lock (unless `--dry-run`), print what moved.
pub fn run(args: Args, global: &GlobalArgs) -> Result<ExitCode> {
    let (git_urls, references): (Vec<String>, Vec<String>) =
        args.references.iter().cloned().partition(|r| {
            strata_chain::git::check_url(r).is_ok() && !strata_chain::lock::is_upstream(r)
        });
    // Git contexts are resolved again by `strata update` alone or naming their URLs.
    let chain = load_chain_git(
        global,
        if !git_urls.is_empty() || references.is_empty() {
            strata_chain::GitMode::Follow
        } else {
            strata_chain::GitMode::Lock
        },
        (!git_urls.is_empty()).then(|| git_urls.clone()),
    )?;
    let (old, new) = if references.is_empty() && !git_urls.is_empty() {
        let old = Lock::load(&chain.lock_path())?;
        let new = old.clone().unwrap_or_default();
        (old, new)
    } else {
        resolve(&chain, &references)?
    };
    let mut new = new;
    new.set_git(&chain.git_commits());
    let path = chain.lock_path();
    let moves = new.diff(old.as_ref().unwrap_or(&Lock::new()));
    let git_moves = new.git_diff(old.as_ref().unwrap_or(&Lock::new()));
    let changed = match &old {
        Some(old) => old.to_toml() != new.to_toml(),
        None => !new.is_empty(),
    };
    let written = changed && !args.dry_run;
    if written {
        upstream::write_lock(&path, &new)?;
    }
    let text = if args.json {
        serde_json::to_string_pretty(&Report {
            lock: path.display().to_string(),
            moves,
            git_moves,
            written,
        })? + "\n"
    } else if moves.is_empty() && git_moves.is_empty() {
        format!("{}: nothing moved\n", path.display())
    } else {
        let mut out = String::new();
        for m in &moves {
            out.push_str(&format!("{m}\n"));
        }
        for m in &git_moves {
            out.push_str(&format!("{m}\n"));
        }
        if !written {
            out.push_str(&format!("dry run: {} not written\n", path.display()));
        }
        out
    };
    write_stdout(&text)?;
    Ok(ExitCode::SUCCESS)
}

/// The lock as read (None: no lock file) and as it would be with `references` (all upstreams
/// when empty) re-resolved on their registries.
pub(super) fn resolve(
    chain: &strata_chain::Chain,
    references: &[String],
) -> Result<(Option<Lock>, Lock)> {
    let old = Lock::load(&chain.lock_path())?;
    let chosen = upstream::select_upstreams(chain, references)?;
    let client = strata_remote::Client::new(strata_remote::ClientOptions::default())?;
    let new = upstream::update(
        chain,
        old.as_ref().unwrap_or(&Lock::new()),
        &chosen,
        references.is_empty(),
        &client,
    )?;
    Ok((old, new))
}
