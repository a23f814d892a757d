//! `strata graph`: the chain's images as a tree, DOT, Mermaid or JSON.

use std::process::ExitCode;

use std::path::Path;

use anyhow::{Result, bail};
use strata_chain::{Chain, NothingBuilt, Statuses, render};

use crate::global::GlobalArgs;

/// Output formats of `strata graph`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Format {
    /// A tree: roots at the top, one line per image with owner, tier and status.
    Text,
    /// Graphviz DOT (render with `dot -Tsvg`), a cluster per team.
    Dot,
    /// JSON, schema strata.chain/v1 (docs/chain.md).
    Json,
    /// A Mermaid `graph TD` flowchart.
    Mermaid,
}

/// Arguments of `strata graph`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    /// Show each image's own layer count and size (from the store) beside its owner.
    #[arg(long)]
    layers: bool,
}

/// Print the chain's graph.
pub fn run(args: Args, global: &GlobalArgs) -> Result<ExitCode> {
    let chain = load_chain(global)?;
    let statuses = statuses(&chain, global)?;
    if args.layers {
        return with_layers(&chain, &statuses, args.format, global);
    }
    let text = match args.format {
        Format::Text => render::tree(&chain, &statuses),
        Format::Dot => render::dot(&chain),
        Format::Mermaid => render::mermaid(&chain),
        Format::Json => serde_json::to_string_pretty(&render::document(&chain, &statuses))? + "\n",
    };
    write_stdout(&text)?;
    Ok(ExitCode::SUCCESS)
}

/// `strata graph --layers`: each chain image's own layers (of its `latest` tag), as text or JSON.
fn with_layers(
    chain: &Chain,
    statuses: &Statuses,
    format: Format,
    global: &GlobalArgs,
) -> Result<ExitCode> {
    let (store, catalog) = super::inspect::open(global)?;
    let own: Vec<Option<strata_inspect::OwnLayers>> = (0..chain.file.images.len())
        .map(|i| {
            let reference = strata_cascade::refs::tagged(chain, i, "latest");
            let image = catalog.find(&store, &reference).ok()?;
            Some(strata_inspect::own_layers(&catalog, image))
        })
        .collect();
    let text = match format {
        Format::Text => {
            let notes: Vec<String> = own
                .iter()
                .map(|o| match o {
                    Some(o) => format!(
                        "{} layer{}, {}",
                        o.count,
                        if o.count == 1 { "" } else { "s" },
                        strata_inspect::size::human(o.size)
                    ),
                    None => "not in store".to_string(),
                })
                .collect();
            render::tree_with_notes(chain, statuses, &notes)
        }
        Format::Json => {
            let mut doc = serde_json::to_value(render::document(chain, statuses))?;
            if let Some(images) = doc["images"].as_array_mut() {
                for (image, o) in images.iter_mut().zip(&own) {
                    image["layers"] = serde_json::to_value(o)?;
                }
            }
            serde_json::to_string_pretty(&doc)? + "\n"
        }
        Format::Dot | Format::Mermaid => {
            bail!("--layers works with --format text or json")
        }
    };
    write_stdout(&text)?;
    Ok(ExitCode::SUCCESS)
}

/// Every image's status: from the store and the events log when a store exists, else never built.
/// Upstreams are read at the digests `strata.lock` locks them to.
pub(super) fn statuses(chain: &Chain, global: &GlobalArgs) -> Result<Statuses> {
    let lock = strata_chain::Lock::load(&chain.lock_path())?;
    statuses_with(chain, global, lock)
}

/// [`statuses`] with upstreams read at the digests `lock` locks them to (None: the store's tags).
pub(super) fn statuses_with(
    chain: &Chain,
    global: &GlobalArgs,
    lock: Option<strata_chain::Lock>,
) -> Result<Statuses> {
    let store_path = global.store_path()?;
    let Ok(store) = strata_oci::Store::open(&store_path) else {
        return Ok(chain.statuses(&NothingBuilt)?);
    };
    let strata_dir = &crate::global::state_dir_of(&store_path);
    let events = strata_events::EventLog::open(&strata_dir.join("events.db"))
        .ok()
        .map(std::sync::Mutex::new);
    let stat = Some(strata_dir.join("cache").join("stat-cache.json"));
    let upstreams =
        lock.map(|l| strata_cascade::Upstreams::new(l, strata_cascade::LockMode::Frozen));
    let mut resolver = strata_cascade::InputsResolver::new(chain, &store, stat);
    if let Some(upstreams) = &upstreams {
        resolver = resolver.with_upstreams(upstreams);
    }
    let source = strata_cascade::StoreStatus::new(&resolver, events.as_ref());
    let statuses = chain.statuses(&source)?;
    resolver.save();
    Ok(statuses)
}

/// Load the chain named by `-C`, `--chain` or `STRATA_CHAIN`. Paths in errors are relative to the
/// current directory when inside it, so they read `strata.toml:7:9: ...`.
pub(super) fn load_chain(global: &GlobalArgs) -> Result<Chain> {
    load_chain_git(global, strata_chain::GitMode::Lock, None)
}

/// [`load_chain`], with git contexts resolved as `mode` says (`follow_only`: in follow mode, only
/// these repositories move) and fetched into the store's state directory (`<state>/git`).
pub(super) fn load_chain_git(
    global: &GlobalArgs,
    mode: strata_chain::GitMode,
    follow_only: Option<Vec<String>>,
) -> Result<Chain> {
    let path = global.chain_path()?;
    if !path.exists() {
        bail!(
            "no chain file at {} (create one with `strata init`, or pass --chain FILE)",
            path.display()
        );
    }
    let cwd = std::env::current_dir()?;
    let shown = path.strip_prefix(&cwd).unwrap_or(&path);
    let shown = if shown.as_os_str().is_empty() {
        Path::new(&path)
    } else {
        shown
    };
    let mut cache = git_cache(global, mode)?;
    if let Some(urls) = follow_only {
        cache = cache.follow_only(urls);
    }
    Ok(Chain::load_with(shown, &mut cache)?)
}

/// The git checkouts of the chain's store (`<state>/git`), with the commits strata.lock locks.
pub(super) fn git_cache(
    global: &GlobalArgs,
    mode: strata_chain::GitMode,
) -> Result<strata_chain::GitCache> {
    let path = global.chain_path()?;
    let lock_path = path
        .parent()
        .map(|dir| dir.join(strata_chain::LOCK_FILE))
        .unwrap_or_else(|| strata_chain::LOCK_FILE.into());
    let locked = match strata_chain::Lock::load(&lock_path) {
        Ok(lock) => lock.map(|l| l.git_commits()).unwrap_or_default(),
        // --locked builds only what the lock says: a lock that does not read is the error.
        Err(e) if mode == strata_chain::GitMode::Frozen => return Err(e.into()),
        // Otherwise it locks nothing here; `strata build` and `strata update` report it.
        Err(_) => Default::default(),
    };
    let state = crate::global::state_dir_of(&global.store_path()?);
    Ok(strata_chain::GitCache::new(&state, mode, locked))
}

pub(super) use crate::out::write_stdout;
