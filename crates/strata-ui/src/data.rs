//! Reading the pages' data from the lower crates: the chain and its statuses (`strata-chain`,
//! `strata-cascade`), the store's images (`strata-inspect`), custody (`strata-attest`), the
//! events log (`strata-events`) and deployments (`strata-deploy`). Read-only: nothing here writes
//! the store, the chain, the log or a deployment's state (the stat cache the status check keeps is
//! not saved either).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use strata_chain::{Chain, Status};
use strata_events::{Event, EventLog, Kind, Query};
use strata_inspect::{Catalog, StoredImage};
use strata_oci::Store;

use crate::error::{Result, UiError};
use crate::model::{
    ChainView, DeploymentView, DeploymentsView, DiffView, ImageView, NodeStatus, NodeView,
    SourceFile, Story, TagView, TimelineFilter, TimelineView,
};

/// A Dockerfile is shown up to this many bytes.
pub const MAX_SOURCE_BYTES: usize = 256 * 1024;
/// A diff lists at most this many changed paths.
pub const MAX_DIFF_FILES: usize = 500;
/// A timeline page holds at most this many events.
pub const PAGE_EVENTS: usize = 200;
/// An image page lists at most this many tier-test results.
const MAX_TESTS: usize = 20;

/// Where the pages read from.
#[derive(Debug, Clone)]
pub struct UiConfig {
    /// The store (`.strata/store`).
    pub store: PathBuf,
    /// The store's state directory (events.db, deploy state, git checkouts).
    pub state_dir: PathBuf,
    /// The chain file, when there is one.
    pub chain: Option<PathBuf>,
}

impl UiConfig {
    fn events_path(&self) -> PathBuf {
        self.state_dir.join("events.db")
    }

    fn open_store(&self) -> Result<Store> {
        Store::open(&self.store).map_err(|source| UiError::Store {
            path: self.store.clone(),
            source,
        })
    }

    /// The events log, when one was recorded.
    pub fn events(&self) -> Result<Option<EventLog>> {
        let path = self.events_path();
        if !path.exists() {
            return Ok(None);
        }
        Ok(Some(EventLog::open(&path)?))
    }

    /// The chain, with git contexts at the commits strata.lock locks, read from the checkouts
    /// builds left (never fetched or resolved here: a page request runs no git).
    pub fn load_chain(&self) -> Result<Option<Chain>> {
        let Some(path) = &self.chain else {
            return Ok(None);
        };
        if !path.exists() {
            return Ok(None);
        }
        let lock_path = path
            .parent()
            .map(|d| d.join(strata_chain::LOCK_FILE))
            .unwrap_or_else(|| strata_chain::LOCK_FILE.into());
        let locked = strata_chain::Lock::load(&lock_path)
            .ok()
            .flatten()
            .map(|l| l.git_commits())
            .unwrap_or_default();
        let mut git =
            strata_chain::GitCache::new(&self.state_dir, strata_chain::GitMode::Lock, locked)
                .offline();
        Ok(Some(Chain::load_with(path, &mut git)?))
    }
}

/// What the chain page's data depends on, cheaply: the chain file, its lock, the store's index and
/// the events log (sizes and modification times). Equal fingerprints a moment apart mean the page
/// can be served again; a Dockerfile or context edit is not in it (see [`ChainCache`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint(Vec<Option<(u64, std::time::SystemTime)>>);

/// The fingerprint of `config`'s inputs now.
pub fn fingerprint(config: &UiConfig) -> Fingerprint {
    let stat = |path: &Path| {
        std::fs::metadata(path)
            .ok()
            .map(|m| (m.len(), m.modified().unwrap_or(std::time::UNIX_EPOCH)))
    };
    let chain = config.chain.clone().unwrap_or_default();
    let lock = chain
        .parent()
        .map(|d| d.join(strata_chain::LOCK_FILE))
        .unwrap_or_default();
    let events = config.events_path();
    Fingerprint(vec![
        stat(&chain),
        stat(&lock),
        stat(&config.store.join("index.json")),
        stat(&events),
        stat(&events.with_extension("db-wal")),
    ])
}

/// The last chain page's data, served again while its [`Fingerprint`] holds and it is younger
/// than [`ChainCache::MAX_AGE`]: working out 5,000 images' statuses takes longer than rendering
/// them, and a build, a tag or an event changes the fingerprint at once. An edit to a Dockerfile
/// or a context shows within `MAX_AGE`.
#[derive(Debug, Default)]
pub struct ChainCache(Mutex<Option<(Fingerprint, std::time::Instant, std::sync::Arc<ChainView>)>>);

impl ChainCache {
    /// How long a computed chain view is served without looking at the contexts again.
    pub const MAX_AGE: std::time::Duration = std::time::Duration::from_secs(5);

    /// The chain page's data, from the cache when it still holds.
    pub fn get(&self, config: &UiConfig) -> Result<std::sync::Arc<ChainView>> {
        let now = fingerprint(config);
        if let Ok(cached) = self.0.lock()
            && let Some((print, at, view)) = cached.as_ref()
            && *print == now
            && at.elapsed() < Self::MAX_AGE
        {
            return Ok(view.clone());
        }
        let view = std::sync::Arc::new(chain_view(config)?);
        if let Ok(mut cached) = self.0.lock() {
            *cached = Some((now, std::time::Instant::now(), view.clone()));
        }
        Ok(view)
    }
}

/// What an image page reads from an image's layers: their accounting and the packages.
#[derive(Debug)]
pub struct LayerData {
    /// strata-inspect's accounting of the layers.
    pub layers: strata_inspect::LayersReport,
    /// The packages, or why they could not be read.
    pub packages: std::result::Result<strata_inventory::Inventory, String>,
}

/// [`LayerData`] of the last images shown, by manifest digest: reading every layer is the costly
/// part of an image page, and an image's layers never change (its base's lineage neither).
#[derive(Debug, Default)]
pub struct LayerCache(Mutex<std::collections::VecDeque<(String, std::sync::Arc<LayerData>)>>);

impl LayerCache {
    /// How many images' layer data are kept.
    pub const CAPACITY: usize = 32;

    fn get(
        &self,
        store: &Store,
        catalog: &Catalog,
        image: &StoredImage,
    ) -> Result<std::sync::Arc<LayerData>> {
        let digest = image.digest.to_string();
        if let Ok(cached) = self.0.lock()
            && let Some((_, data)) = cached.iter().find(|(d, _)| *d == digest)
        {
            return Ok(data.clone());
        }
        let layers = strata_inspect::layers(store, catalog, image, false).map_err(|source| {
            UiError::Inspect {
                what: format!("the layers of {digest}"),
                source,
            }
        })?;
        let packages = strata_inventory::inventory(store, catalog, image)
            .map_err(|e| crate::error::report(&e));
        let data = std::sync::Arc::new(LayerData { layers, packages });
        if let Ok(mut cached) = self.0.lock() {
            if cached.len() >= Self::CAPACITY {
                cached.pop_front();
            }
            cached.push_back((digest, data.clone()));
        }
        Ok(data)
    }
}

/// The caches the pages share.
#[derive(Debug, Default)]
pub struct Caches {
    /// The chain page's data.
    pub chain: ChainCache,
    /// The image pages' layer data.
    pub layers: LayerCache,
}

/// The chain page's data.
pub fn chain_view(config: &UiConfig) -> Result<ChainView> {
    let Some(chain) = config.load_chain()? else {
        return Ok(ChainView::default());
    };
    let store = config.open_store().ok();
    let events = config.events()?;
    let statuses = statuses(config, &chain, store.as_ref(), events.as_ref())?;
    let tags = store.as_ref().map(Tags::read).unwrap_or_default();
    let graph = chain.graph();
    let file = &chain.file;
    let mut nodes = Vec::with_capacity(file.images.len());
    let mut edges = Vec::new();
    for (i, image) in file.images.iter().enumerate() {
        for p in graph.parents(i) {
            edges.push((p, i));
        }
        let (digest, build) = tags.current(&chain, i);
        nodes.push(NodeView {
            name: image.name.clone(),
            owner: image.owner.clone(),
            tier: image.tier.clone(),
            wave: graph.wave(i),
            status: node_status(&statuses[i], events.as_ref(), &image.name),
            digest,
            build,
        });
    }
    Ok(ChainView {
        chain: file.name.clone(),
        teams: file.teams.keys().cloned().collect(),
        nodes,
        edges,
    })
}

/// Every image's status, from the store and the events log (as `strata graph`), upstreams at
/// the digests strata.lock locks.
fn statuses(
    config: &UiConfig,
    chain: &Chain,
    store: Option<&Store>,
    events: Option<&EventLog>,
) -> Result<Vec<Status>> {
    let Some(store) = store else {
        return Ok(vec![Status::NeverBuilt; chain.file.images.len()]);
    };
    let lock = strata_chain::Lock::load(&chain.lock_path()).ok().flatten();
    let upstreams =
        lock.map(|l| strata_cascade::Upstreams::new(l, strata_cascade::LockMode::Frozen));
    let stat = Some(config.state_dir.join("cache").join("stat-cache.json"));
    let mut resolver = strata_cascade::InputsResolver::new(chain, store, stat);
    if let Some(upstreams) = &upstreams {
        resolver = resolver.with_upstreams(upstreams);
    }
    // StoreStatus wants the log behind a mutex; a second read-only connection is cheap.
    let log = match events {
        Some(_) => config.events()?.map(Mutex::new),
        None => None,
    };
    let source = strata_cascade::StoreStatus::new(&resolver, log.as_ref());
    let statuses = chain
        .statuses(&source)
        .map_err(|e| UiError::Status(Box::new(e)))?;
    Ok(statuses.0)
}

/// The status word and why: the planner's, then what the events log says is going on now (a
/// build started and not ended, a tier test that failed on the current build).
fn node_status(status: &Status, events: Option<&EventLog>, image: &str) -> NodeStatus {
    let last_build = events.and_then(|l| l.last(image, Kind::Build).ok().flatten());
    if let Some(build) = &last_build
        && build.result == "started"
    {
        return NodeStatus {
            state: "building".into(),
            why: Some(format!("started {}", build.time)),
        };
    }
    let (state, why) = match status {
        Status::UpToDate => ("up-to-date", None),
        Status::NeverBuilt => ("never-built", None),
        Status::Failed { message } => ("failed", Some(message.clone())),
        Status::Stale { reasons } => (
            "stale",
            Some(
                reasons
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
        ),
    };
    if state == "up-to-date"
        && let Some(test) = events.and_then(|l| l.last(image, Kind::Test).ok().flatten())
        && test.result == "failed"
    {
        return NodeStatus {
            state: "tests-failing".into(),
            why: test.reason.clone(),
        };
    }
    NodeStatus {
        state: state.into(),
        why,
    }
}

/// The store's tags, read once per page.
#[derive(Default)]
struct Tags {
    /// Full reference → manifest digest.
    digests: HashMap<String, String>,
    /// Repository → its highest numeric tag (build number).
    highest: HashMap<String, u64>,
}

impl Tags {
    fn read(store: &Store) -> Tags {
        let mut tags = Tags::default();
        for t in store.refs().list().unwrap_or_default() {
            if let Some((repository, tag)) = t.name.rsplit_once(':')
                && let Ok(n) = tag.parse::<u64>()
            {
                let highest = tags.highest.entry(repository.to_string()).or_default();
                *highest = (*highest).max(n);
            }
            tags.digests
                .insert(t.name.clone(), t.descriptor.digest().to_string());
        }
        tags
    }

    /// The digest `latest` of chain image `i` names, and its build number (the highest numeric
    /// tag naming the same digest).
    fn current(&self, chain: &Chain, i: usize) -> (Option<String>, Option<u64>) {
        let Some(digest) = self
            .digests
            .get(&strata_cascade::refs::tagged(chain, i, "latest"))
        else {
            return (None, None);
        };
        let repository = strata_cascade::refs::repository(chain, i);
        let highest = self.highest.get(&repository).copied().unwrap_or(0);
        // A tag per build, newest first: the latest build is found within a step or two.
        let build = (1..=highest)
            .rev()
            .find(|n| self.digests.get(&format!("{repository}:{n}")) == Some(digest));
        (Some(digest.clone()), build)
    }
}

/// The image page's data: `name` is a chain image's name or a store reference; `diff` two build
/// tags to compare; its status and layers come from `caches` when they hold.
pub fn image_view(
    config: &UiConfig,
    caches: &Caches,
    name: &str,
    diff: Option<(&str, &str)>,
) -> Result<ImageView> {
    let chain = config.load_chain()?;
    let store = config.open_store()?;
    let catalog = Catalog::load(&store).map_err(|source| UiError::Inspect {
        what: format!("the images of {}", config.store.display()),
        source,
    })?;
    let index = chain.as_ref().and_then(|c| c.index(name));
    let (reference, repository) = match (&chain, index) {
        (Some(chain), Some(i)) => (
            strata_cascade::refs::tagged(chain, i, "latest"),
            strata_cascade::refs::repository(chain, i),
        ),
        _ => {
            let image = catalog.find(&store, name).map_err(|_| UiError::NotFound {
                what: format!("image {name}"),
            })?;
            let tag = image
                .tags
                .first()
                .cloned()
                .unwrap_or_else(|| image.digest.to_string());
            let repository = tag.rsplit_once(':').map(|(r, _)| r.to_string());
            (tag.clone(), repository.unwrap_or(tag))
        }
    };
    let image = catalog
        .find(&store, &reference)
        .map_err(|_| UiError::NotFound {
            what: format!("image {name} (no {reference} in the store)"),
        })?;
    let tags = repository_tags(&catalog, &repository);
    let layer_data = caches.layers.get(&store, &catalog, image)?;
    let layers = &layer_data.layers;
    let events = config.events()?;
    let node = match (&chain, index) {
        (Some(_), Some(_)) => caches
            .chain
            .get(config)?
            .nodes
            .iter()
            .find(|n| n.name == name)
            .cloned(),
        _ => None,
    };
    let tests = match &events {
        Some(log) => log
            .query(&Query {
                image: Some(name.to_string()),
                kinds: vec![Kind::Test],
                limit: MAX_TESTS,
                ..Query::default()
            })?
            .into_iter()
            .rev()
            .collect(),
        None => Vec::new(),
    };
    let dockerfile = match (&chain, index) {
        (Some(chain), Some(i)) => dockerfile_of(chain, i),
        _ => None,
    };
    let (custody, custody_error) = match &chain {
        Some(chain) => match strata_cascade::trust_config(chain) {
            Ok(trust) => match strata_attest::verify_chain_with(
                &store,
                &reference,
                &trust,
                &strata_attest::Policy::default(),
                chrono::Utc::now(),
                None,
            ) {
                Ok(report) => (Some(report), None),
                Err(e) => (None, Some(crate::error::report(&e))),
            },
            Err(e) => (None, Some(crate::error::report(&e))),
        },
        None => (None, Some("no chain file: no keys to verify with".into())),
    };
    let (packages, packages_error) = match &layer_data.packages {
        Ok(inventory) => (Some(inventory.clone()), None),
        Err(e) => (None, Some(e.clone())),
    };
    let digests: Vec<String> = tags.iter().map(|t| t.digest.clone()).collect();
    let deployed = deployments(config, &catalog)?
        .deployments
        .into_iter()
        .filter(|d| {
            d.state
                .running
                .as_ref()
                .is_some_and(|r| digests.contains(&r.digest))
        })
        .collect();
    let diff = match diff {
        Some((a, b)) => Some(diff_builds(&store, &catalog, &repository, a, b)?),
        None => None,
    };
    Ok(ImageView {
        name: name.to_string(),
        node,
        reference,
        digest: image.digest.to_string(),
        size: layers.layers.iter().map(|l| l.size).sum(),
        wasted_bytes: layers.wasted_bytes,
        layers: layers.layers.clone(),
        tags,
        dockerfile,
        tests,
        custody,
        custody_error,
        deployed,
        diff,
        packages,
        packages_error,
    })
}

/// Every tag of `repository`, build numbers newest first, then the others.
fn repository_tags(catalog: &Catalog, repository: &str) -> Vec<TagView> {
    let prefix = format!("{repository}:");
    let mut tags: Vec<TagView> = catalog
        .images()
        .iter()
        .flat_map(|image| {
            image.tags.iter().filter_map(|t| {
                let tag = t.strip_prefix(&prefix)?;
                Some(TagView {
                    tag: tag.to_string(),
                    build: tag.parse().ok(),
                    digest: image.digest.to_string(),
                })
            })
        })
        .collect();
    tags.sort_by(|a, b| b.build.cmp(&a.build).then_with(|| a.tag.cmp(&b.tag)));
    tags
}

/// The Dockerfile of chain image `i`, at most [`MAX_SOURCE_BYTES`] of it.
fn dockerfile_of(chain: &Chain, i: usize) -> Option<SourceFile> {
    let strata_chain::Build::Dockerfile { dockerfile, .. } = &chain.file.images[i].build else {
        return None;
    };
    let path = if dockerfile.is_absolute() {
        dockerfile.clone()
    } else {
        chain.file.dir.join(dockerfile)
    };
    let bytes = std::fs::read(&path).ok()?;
    let truncated = bytes.len() > MAX_SOURCE_BYTES;
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(MAX_SOURCE_BYTES)]).into_owned();
    Some(SourceFile {
        path: chain.file.relative(&path).display().to_string(),
        text,
        truncated,
    })
}

/// The diff between builds `a` and `b` (tags) of `repository`.
fn diff_builds(
    store: &Store,
    catalog: &Catalog,
    repository: &str,
    a: &str,
    b: &str,
) -> Result<DiffView> {
    let find = |tag: &str| -> Result<&StoredImage> {
        // A tag is a build number or a word; never a path or another repository.
        if tag.is_empty()
            || tag.len() > 128
            || !tag
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
        {
            return Err(UiError::BadRequest(format!("invalid tag {tag:?}")));
        }
        catalog
            .find(store, &format!("{repository}:{tag}"))
            .map_err(|_| UiError::NotFound {
                what: format!("{repository}:{tag}"),
            })
    };
    let (ia, ib) = (find(a)?, find(b)?);
    let mut diff = strata_inspect::diff(store, ia, ib).map_err(|source| UiError::Inspect {
        what: format!("the diff of {a} and {b}"),
        source,
    })?;
    let left_out = diff.files.len().saturating_sub(MAX_DIFF_FILES);
    diff.files.truncate(MAX_DIFF_FILES);
    Ok(DiffView {
        a: a.to_string(),
        b: b.to_string(),
        diff,
        files_left_out: left_out,
    })
}

/// The timeline page's data.
pub fn timeline_view(config: &UiConfig, filter: &TimelineFilter) -> Result<TimelineView> {
    let Some(log) = config.events()? else {
        return Ok(TimelineView {
            filter: filter.clone(),
            ..TimelineView::default()
        });
    };
    let kinds = match &filter.kind {
        Some(k) => vec![
            Kind::from_name(k)
                .ok_or_else(|| UiError::BadRequest(format!("unknown event kind {k:?}")))?,
        ],
        None => Vec::new(),
    };
    let last_id = last_id(&log)?;
    let events = log.query(&Query {
        image: filter.image.clone(),
        team: filter.team.clone(),
        kinds,
        before_id: Some(filter.before.unwrap_or(i64::MAX)),
        // One more than a page: whether there is a next one.
        limit: PAGE_EVENTS + 1,
        ..Query::default()
    })?;
    let mut events = events;
    let next_before = if events.len() > PAGE_EVENTS {
        events.remove(0);
        events.first().map(|e| e.id)
    } else {
        None
    };
    let events = strata_events::readable_timeline(events);
    Ok(TimelineView {
        filter: filter.clone(),
        stories: stories(events),
        next_before,
        last_id,
    })
}

/// The highest row id of the log (0 when empty).
pub fn last_id(log: &EventLog) -> Result<i64> {
    Ok(log
        .query(&Query {
            before_id: Some(i64::MAX),
            limit: 1,
            ..Query::default()
        })?
        .first()
        .map(|e| e.id)
        .unwrap_or(0))
}

/// Events after row `after`, oldest first, at most `limit`.
pub fn events_after(log: &EventLog, after: i64, limit: usize) -> Result<Vec<Event>> {
    Ok(log.query(&Query {
        after_id: Some(after),
        limit,
        ..Query::default()
    })?)
}

/// Events grouped by run, newest story first: a cascade (patch → rebuilds → tests, signatures,
/// pushes, deploys) is one story; an event of no run is a story of its own.
pub fn stories(events: Vec<Event>) -> Vec<Story> {
    let mut order: Vec<Option<String>> = Vec::new();
    let mut by_run: HashMap<String, Vec<Event>> = HashMap::new();
    let mut stories: Vec<Story> = Vec::new();
    for event in events {
        match &event.run_id {
            Some(run) => {
                if !by_run.contains_key(run) {
                    order.push(Some(run.clone()));
                }
                by_run.entry(run.clone()).or_default().push(event);
            }
            None => {
                order.push(None);
                stories.push(Story {
                    run_id: None,
                    headline: String::new(),
                    events: vec![event],
                });
            }
        }
    }
    let mut singles = stories.into_iter();
    let mut out: Vec<Story> = order
        .into_iter()
        .filter_map(|run| match run {
            Some(run) => {
                let mut events = by_run.remove(&run)?;
                events.sort_by(|a, b| a.time.cmp(&b.time).then(a.id.cmp(&b.id)));
                Some(Story {
                    run_id: Some(run),
                    headline: String::new(),
                    events,
                })
            }
            None => singles.next(),
        })
        .collect();
    for story in &mut out {
        story.headline = headline(&story.events);
    }
    out.sort_by_key(|s| std::cmp::Reverse(s.events.iter().map(|e| e.id).max().unwrap_or(0)));
    out
}

/// One line for a story: what started it and what it reached.
fn headline(events: &[Event]) -> String {
    let Some(first) = events.first() else {
        return String::new();
    };
    let rebuilt: Vec<&str> = events
        .iter()
        .filter(|e| e.kind == Some(Kind::Build) && e.result == "ok")
        .map(|e| e.image.as_str())
        .collect();
    let failed: Vec<&str> = events
        .iter()
        .filter(|e| e.result == "failed")
        .map(|e| e.image.as_str())
        .collect();
    let root = events
        .iter()
        .find(|e| e.kind == Some(Kind::Build) && e.cause.is_none() && e.result == "ok")
        .or_else(|| events.iter().find(|e| e.cause.is_none()))
        .unwrap_or(first);
    let team = root.team.as_deref().unwrap_or("?");
    let mut line = if rebuilt.is_empty() {
        let kind = first.kind.map(kind_name).unwrap_or("event");
        format!("{team}: {kind} {} {}", first.image, first.result)
    } else if rebuilt.len() == 1 {
        format!("{team}: rebuilt {}", rebuilt[0])
    } else {
        let reached = &rebuilt[1..];
        format!(
            "{team}: {} changed, cascaded to {}",
            rebuilt[0],
            reached.join(", ")
        )
    };
    let count = |k: Kind| {
        events
            .iter()
            .filter(|e| e.kind == Some(k) && e.result == "ok")
            .count()
    };
    let (tests, signs, pushes, deploys) = (
        count(Kind::Test),
        count(Kind::Sign),
        count(Kind::Push),
        count(Kind::Deploy),
    );
    let mut parts = Vec::new();
    for (n, what) in [
        (tests, "tested"),
        (signs, "signed"),
        (pushes, "pushed"),
        (deploys, "deployed"),
    ] {
        if n > 0 && events.len() > 1 {
            parts.push(format!("{n} {what}"));
        }
    }
    if !parts.is_empty() {
        line.push_str(&format!(" ({})", parts.join(", ")));
    }
    if !failed.is_empty() && events.len() > 1 {
        line.push_str(&format!("; FAILED: {}", failed.join(", ")));
    }
    line
}

/// An event kind's name.
pub fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Build => "build",
        Kind::Test => "test",
        Kind::Sign => "sign",
        Kind::Import => "import",
        Kind::Push => "push",
        Kind::Pull => "pull",
        Kind::Delete => "delete",
        Kind::Deploy => "deploy",
        Kind::Update => "update",
    }
}

/// The deployments page's data.
pub fn deployments_view(config: &UiConfig) -> Result<DeploymentsView> {
    let catalog = match config.open_store() {
        Ok(store) => Catalog::load(&store).ok(),
        Err(_) => None,
    };
    match catalog {
        Some(catalog) => deployments(config, &catalog),
        None => deployments_named(config, &BTreeMap::new()),
    }
}

fn deployments(config: &UiConfig, catalog: &Catalog) -> Result<DeploymentsView> {
    let mut names: BTreeMap<String, String> = BTreeMap::new();
    for image in catalog.images() {
        let name = image
            .chain_image()
            .map(str::to_string)
            .or_else(|| image.tags.first().cloned());
        if let Some(name) = name {
            names.insert(image.digest.to_string(), name);
        }
    }
    deployments_named(config, &names)
}

/// Every deployment with saved state, read through strata-deploy.
fn deployments_named(
    config: &UiConfig,
    names: &BTreeMap<String, String>,
) -> Result<DeploymentsView> {
    let mut deployments = Vec::new();
    for (file, name) in strata_deploy::StateDir::all(&config.state_dir)? {
        let state = strata_deploy::StateDir::new(&config.state_dir, &file).load(&name)?;
        let image = state
            .running
            .as_ref()
            .and_then(|r| names.get(&r.digest).cloned());
        deployments.push(DeploymentView {
            file,
            name,
            image,
            state,
        });
    }
    Ok(DeploymentsView { deployments })
}
