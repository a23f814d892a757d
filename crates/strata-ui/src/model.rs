//! What each page shows, as plain data: the HTML pages render it and their JSON twins serialize
//! it, so the two never disagree.

use serde::Serialize;
use strata_events::Event;

/// The chain page: every chain image with its team, tier, status, digest and build number.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ChainView {
    /// The chain's name (`acme`); empty when the store has no chain file beside it.
    pub chain: String,
    /// The teams, in the chain file's order (their colours follow it).
    pub teams: Vec<String>,
    /// The images, in the chain file's order.
    pub nodes: Vec<NodeView>,
    /// `(parent, child)` indexes into `nodes`.
    pub edges: Vec<(usize, usize)>,
}

/// One image of the chain.
#[derive(Debug, Clone, Default, Serialize)]
pub struct NodeView {
    /// The chain image's name (`corebuild`).
    pub name: String,
    /// The owning team.
    pub owner: String,
    /// Its tier label (`corebuild`), when the chain file gives one.
    pub tier: Option<String>,
    /// Its depth in the graph: 0 for images built from nothing of the chain.
    pub wave: usize,
    /// Where it stands.
    pub status: NodeStatus,
    /// The manifest digest its `latest` tag names, when built.
    pub digest: Option<String>,
    /// The build number of that digest (its highest numeric tag).
    pub build: Option<u64>,
}

/// An image's state, as one word and why.
#[derive(Debug, Clone, Default, Serialize)]
pub struct NodeStatus {
    /// `up-to-date`, `stale`, `never-built`, `building`, `failed` or `tests-failing`.
    pub state: String,
    /// Why, in words (`parent corebuild changed`, the build's error, the failed test).
    pub why: Option<String>,
}

/// The image page.
#[derive(Debug, Clone, Serialize)]
pub struct ImageView {
    /// The chain image (or, for a store image outside the chain, its repository).
    pub name: String,
    /// Its node on the chain page, when it is a chain image.
    pub node: Option<NodeView>,
    /// The image shown: its full reference.
    pub reference: String,
    /// Its manifest digest.
    pub digest: String,
    /// Every tag of its repository, newest build first, with the digest each names.
    pub tags: Vec<TagView>,
    /// The layers, bottom first, with the team and instruction that added each, its size and
    /// the bytes of it later layers overwrote or deleted.
    pub layers: Vec<strata_inspect::LayerReport>,
    /// Sum of the layers' wasted bytes.
    pub wasted_bytes: u64,
    /// Sum of the layers' blob sizes.
    pub size: u64,
    /// The Dockerfile that built it, as the chain file names it now.
    pub dockerfile: Option<SourceFile>,
    /// Its tier tests' results, newest first.
    pub tests: Vec<Event>,
    /// The chain of custody, as `strata verify --offline` sees it.
    pub custody: Option<strata_attest::custody::Report>,
    /// Why custody could not be checked at all (no chain file, no keys).
    pub custody_error: Option<String>,
    /// Where it runs.
    pub deployed: Vec<DeploymentView>,
    /// The difference between two builds, when asked for (`?a=N&b=M`).
    pub diff: Option<DiffView>,
    /// The packages it holds, each credited to the layer, tier and team that installed it.
    pub packages: Option<strata_inventory::Inventory>,
    /// Why the packages could not be read.
    pub packages_error: Option<String>,
}

/// A tag and the digest it names.
#[derive(Debug, Clone, Serialize)]
pub struct TagView {
    /// The tag (`3`, `latest`).
    pub tag: String,
    /// The build number, when the tag is one.
    pub build: Option<u64>,
    /// The manifest digest.
    pub digest: String,
}

/// A file shown on a page.
#[derive(Debug, Clone, Serialize)]
pub struct SourceFile {
    /// Its path, relative to the chain file's directory.
    pub path: String,
    /// Its text (at most [`crate::data::MAX_SOURCE_BYTES`]).
    pub text: String,
    /// Whether the text was cut.
    pub truncated: bool,
}

/// A diff between two builds of an image.
#[derive(Debug, Clone, Serialize)]
pub struct DiffView {
    /// The older build's tag.
    pub a: String,
    /// The newer build's tag.
    pub b: String,
    /// strata-inspect's diff, its file list cut to [`crate::data::MAX_DIFF_FILES`].
    pub diff: strata_inspect::ImageDiff,
    /// How many file changes were left out.
    pub files_left_out: usize,
}

/// The timeline page.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TimelineView {
    /// The filters it was asked for.
    pub filter: TimelineFilter,
    /// The stories of this page, newest first: a cascade's run is one story.
    pub stories: Vec<Story>,
    /// The row id to ask `before=` for the next (older) page, when there is one.
    pub next_before: Option<i64>,
    /// The highest row id of the log when the page was made: the live feed resumes after it.
    pub last_id: i64,
}

/// Filters of the timeline (query parameters).
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
pub struct TimelineFilter {
    /// Only this team's events.
    pub team: Option<String>,
    /// Only this image's events.
    pub image: Option<String>,
    /// Only this kind (`build`, `test`, `sign`, `push`, `deploy`, ...).
    pub kind: Option<String>,
    /// Only rows older than this row id (the next page).
    pub before: Option<i64>,
}

/// A run's events together: the change that started it and what it caused.
#[derive(Debug, Clone, Serialize)]
pub struct Story {
    /// The run id, when the events came from one run (a build, a cascade).
    pub run_id: Option<String>,
    /// One line: what started it and what it reached.
    pub headline: String,
    /// Its events, oldest first.
    pub events: Vec<Event>,
}

/// The deployments page.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DeploymentsView {
    /// Every deployment strata keeps state for.
    pub deployments: Vec<DeploymentView>,
}

/// One deployment.
#[derive(Debug, Clone, Serialize)]
pub struct DeploymentView {
    /// The deploy file it is declared in (the state directory's name for it).
    pub file: String,
    /// Its name.
    pub name: String,
    /// The image (chain image or repository) its running digest is tagged as, when known.
    pub image: Option<String>,
    /// Its state, as strata-deploy keeps it.
    pub state: strata_deploy::state::DeploymentState,
}
