//! `strata store fsck` and `strata store gc`: check and clean the content store.

use crate::out::{errln, outln};
use std::process::ExitCode;

use anyhow::{Context, Result};
use strata_build::prune::{CachePruneReport, prune_caches};
use strata_oci::{GcOptions, Store};

use crate::global::GlobalArgs;
use strata_inspect::size::human;

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
        /// First repair what a crash left: drop index entries and membership links that reach a
        /// missing blob, remove orphaned temp files; report what was done.
        #[arg(long)]
        repair: bool,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove blobs no image references (and stale temp files), never a referenced one; then the
    /// builder's caches of what is gone (layer snapshots, COPY --from trees, layer headers, step
    /// cache entries), and what killed git fetches left. Cache mounts and git checkouts are kept.
    Gc {
        /// Print what would be removed, remove nothing.
        #[arg(long)]
        dry_run: bool,
        /// First untag each repository's build-number tags (`:1`, `:2`, ...) but the newest N,
        /// keeping any that another tag of the repository (`latest`, `6.4`) still points at.
        #[arg(long, value_name = "N")]
        keep_builds: Option<usize>,
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
        StoreCommand::Fsck { repair, json } => fsck(&store, repair, json),
        StoreCommand::Gc {
            dry_run,
            keep_builds,
            json,
        } => gc(&store, dry_run, keep_builds, json),
    }
}

fn fsck(store: &Store, repair: bool, json: bool) -> Result<ExitCode> {
    let repaired = repair
        .then(|| store.maintenance().repair())
        .transpose()
        .with_context(|| format!("repair of {} failed", store.root().display()))?;
    let report = store
        .maintenance()
        .fsck()
        .with_context(|| format!("fsck of {} failed", store.root().display()))?;
    if json {
        match &repaired {
            Some(repaired) => outln!(
                "{}",
                serde_json::to_string_pretty(
                    &serde_json::json!({ "repair": repaired, "fsck": report })
                )?
            ),
            None => outln!("{}", serde_json::to_string_pretty(&report)?),
        }
    } else {
        if let Some(repaired) = &repaired {
            for entry in &repaired.dropped_entries {
                outln!("dropped index entry {entry} (a blob it needs is missing)");
            }
            for link in &repaired.dropped_links {
                outln!("dropped membership link {link} (a blob it needs is missing)");
            }
            for temp in &repaired.temp_files {
                outln!("removed orphaned temp file {}", temp.display());
            }
        }
        for problem in &report.problems {
            errln!("{problem}");
        }
        outln!(
            "checked {} blobs ({}) from {} roots: {}",
            report.blobs,
            human(report.bytes),
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

/// `strata store gc --json`: gc's report with the cache sweep and the retention beside it.
#[derive(serde::Serialize)]
struct GcOutput<'a> {
    #[serde(flatten)]
    store: &'a strata_oci::GcReport,
    caches: &'a CachePruneReport,
    /// The temporary directories of killed git fetches removed (`<state>/git/tmp/fetch-*`).
    git_fetches: &'a [std::path::PathBuf],
    /// Build-number tags removed by `--keep-builds`.
    untagged: &'a [String],
}

/// The build-number tags `--keep-builds keep` drops: per repository, numeric tags but the `keep`
/// highest, except those whose manifest another (non-numeric) tag of the repository still
/// names.
fn old_builds(store: &Store, keep: usize) -> Result<Vec<String>> {
    use std::collections::{BTreeMap, HashSet};
    let mut numbered: BTreeMap<String, Vec<(u64, String, String)>> = BTreeMap::new();
    let mut pinned: HashSet<(String, String)> = HashSet::new();
    for tag in store.refs().list()? {
        let Ok(reference) = strata_oci::Reference::parse(&tag.name) else {
            continue;
        };
        let repo = reference.name();
        let digest = tag.descriptor.digest().to_string();
        match reference.tag().and_then(|t| t.parse::<u64>().ok()) {
            Some(number) => {
                numbered
                    .entry(repo)
                    .or_default()
                    .push((number, tag.name.clone(), digest))
            }
            None => {
                pinned.insert((repo, digest));
            }
        }
    }
    let mut drop = Vec::new();
    for (repo, mut builds) in numbered {
        builds.sort_by_key(|b| std::cmp::Reverse(b.0));
        for (_, name, digest) in builds.into_iter().skip(keep) {
            if !pinned.contains(&(repo.clone(), digest)) {
                drop.push(name);
            }
        }
    }
    Ok(drop)
}

fn gc(store: &Store, dry_run: bool, keep_builds: Option<usize>, json: bool) -> Result<ExitCode> {
    let untagged = match keep_builds {
        Some(keep) => old_builds(store, keep)?,
        None => Vec::new(),
    };
    if !dry_run {
        for name in &untagged {
            store.refs().untag(name)?;
        }
    }
    // The builder's caches sit beside the store (`.strata/cache` for `.strata/store`).
    let cache_dir = crate::global::state_dir_of(store.root()).join("cache");
    let (report, caches) = store
        .maintenance()
        .gc_then(&GcOptions { dry_run }, |report| {
            prune_caches(store, &cache_dir, report)
        })
        .with_context(|| format!("gc of {} failed", store.root().display()))?;
    // Git checkouts sit beside the store too (`.strata/git`): a killed fetch leaves `tmp/fetch-*`.
    let state_dir = crate::global::state_dir_of(store.root());
    let git_fetches = match strata_chain::git::sweep_killed_fetches(&state_dir, dry_run) {
        Ok(swept) => swept,
        Err(e) => {
            errln!("warning: git fetches kept: {:#}", anyhow::Error::new(e));
            Vec::new()
        }
    };
    if json {
        let out = GcOutput {
            store: &report,
            caches: &caches,
            git_fetches: &git_fetches,
            untagged: &untagged,
        };
        outln!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(ExitCode::SUCCESS);
    }
    let verb = if dry_run { "would remove" } else { "removed" };
    for name in &untagged {
        outln!(
            "{verb} tag {name} (older than the newest {} builds)",
            keep_builds.unwrap_or(0)
        );
    }
    for blob in &report.removed {
        outln!("{verb} {} ({})", blob.digest, human(blob.size));
    }
    for temp in &report.temp_files {
        outln!("{verb} stale temp file {}", temp.display());
    }
    for referrer in &report.dangling_referrers {
        outln!("{verb} referrer {referrer} (its subject is gone)");
    }
    for entry in &caches.removed {
        outln!(
            "{verb} {} cache {} ({})",
            entry.cache,
            entry.path.display(),
            human(entry.bytes)
        );
    }
    for error in &caches.errors {
        errln!("warning: {error}");
    }
    for fetch in &git_fetches {
        outln!("{verb} killed git fetch {}", fetch.display());
    }
    outln!(
        "{verb} {} blobs ({}), kept {}; {verb} {} cache entries ({}), kept {}",
        report.removed.len(),
        human(report.removed_bytes),
        report.kept,
        caches.removed.len(),
        human(caches.removed_bytes),
        caches.kept
    );
    Ok(ExitCode::SUCCESS)
}
