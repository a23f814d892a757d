//! `strata store fsck` and `strata store gc`: check and clean the content store.

use std::process::ExitCode;

use anyhow::{Context, Result};
use strata_build::prune::{CachePruneReport, prune_caches};
use strata_oci::{GcOptions, Store};

use crate::cmd::images::human_size;
use crate::global::GlobalArgs;

/// Arguments of `strata store`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: StoreCommand,
}

/// The `strata store` subcommands.
#[derive(Debug, clap::Subcommand)]
enum StoreCommand {
    /// Verify every blob's digest and every reference from index.json; exit 1 on any problem.
    Fsck {
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove blobs no image references (and stale temp files), never a referenced one; then the
    /// builder's caches of what is gone (layer snapshots, COPY --from trees, layer headers, step
    /// cache entries). Cache mounts are kept.
    Gc {
        /// Print what would be removed, remove nothing.
        #[arg(long)]
        dry_run: bool,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Run a store subcommand.
pub fn run(args: Args, global: &GlobalArgs) -> Result<ExitCode> {
    let path = global.store_path()?;
    let store =
        Store::open(&path).with_context(|| format!("cannot open the store {}", path.display()))?;
    match args.command {
        StoreCommand::Fsck { json } => fsck(&store, json),
        StoreCommand::Gc { dry_run, json } => gc(&store, dry_run, json),
    }
}

#[allow(clippy::print_stdout, clippy::print_stderr)]
fn fsck(store: &Store, json: bool) -> Result<ExitCode> {
    let report = store
        .fsck()
        .with_context(|| format!("fsck of {} failed", store.root().display()))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for problem in &report.problems {
            eprintln!("{problem}");
        }
        println!(
            "checked {} blobs ({}) from {} roots: {}",
            report.blobs,
            human_size(report.bytes),
            report.roots,
            match report.problems.len() {
                0 => "ok".to_string(),
                1 => "1 problem".to_string(),
                n => format!("{n} problems"),
            }
        );
    }
    Ok(if report.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `strata store gc --json`: gc's report with the cache sweep beside it.
#[derive(serde::Serialize)]
struct GcOutput<'a> {
    #[serde(flatten)]
    store: &'a strata_oci::GcReport,
    caches: &'a CachePruneReport,
}

#[allow(clippy::print_stdout, clippy::print_stderr)]
fn gc(store: &Store, dry_run: bool, json: bool) -> Result<ExitCode> {
    // The builder's caches sit beside the store (`.strata/cache` for `.strata/store`).
    let cache_dir = store.root().parent().unwrap_or(store.root()).join("cache");
    let (report, caches) = store
        .gc_then(&GcOptions { dry_run }, |report| {
            prune_caches(store, &cache_dir, report)
        })
        .with_context(|| format!("gc of {} failed", store.root().display()))?;
    if json {
        let out = GcOutput {
            store: &report,
            caches: &caches,
        };
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(ExitCode::SUCCESS);
    }
    let verb = if dry_run { "would remove" } else { "removed" };
    for blob in &report.removed {
        println!("{verb} {} ({})", blob.digest, human_size(blob.size));
    }
    for temp in &report.temp_files {
        println!("{verb} stale temp file {}", temp.display());
    }
    for referrer in &report.dangling_referrers {
        println!("{verb} referrer {referrer} (its subject is gone)");
    }
    for entry in &caches.removed {
        println!(
            "{verb} {} cache {} ({})",
            entry.cache,
            entry.path.display(),
            human_size(entry.bytes)
        );
    }
    for error in &caches.errors {
        eprintln!("warning: {error}");
    }
    println!(
        "{verb} {} blobs ({}), kept {}; {verb} {} cache entries ({}), kept {}",
        report.removed.len(),
        human_size(report.removed_bytes),
        report.kept,
        caches.removed.len(),
        human_size(caches.removed_bytes),
        caches.kept
    );
    Ok(ExitCode::SUCCESS)
}
