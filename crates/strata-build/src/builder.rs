//! Build one image: resolve the Dockerfile, execute the needed stages in order, write the result.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use strata_dockerfile::{Base, Command, ResolveOptions, Resolved, ResolvedInstruction, Source};
use strata_oci::tar::LayerOptions;
use strata_oci::{Compression, Descriptor, Digest, MediaType, Reference, Store};

/// The default pids limit of a RUN step (podman's).
pub use strata_sandbox::DEFAULT_PIDS_LIMIT;
/// The network of a RUN step (re-exported for callers without a sandbox dependency).
pub use strata_sandbox::Network as RunNetwork;

use crate::add;
use crate::context::{BuildContext, StatCache};
use crate::copy::{self, CopyOptions, CopySource};
use crate::error::{BuildError, StepError};
use crate::layer::{self, LayerRef, StepCache};
use crate::metadata::{self, StageFlags};
use crate::snapshot::Snapshots;
use crate::squash;
use crate::timings::{Phase, timed};
use crate::users::{self, Owner};
use strata_oci::Squash;
use strata_oci::annotations::{
    ANNOTATION_BASE_IMAGE_DIGEST, ANNOTATION_BASE_IMAGE_NAME, ANNOTATION_CREATED,
};
use strata_oci::fsindex::FsIndex;
use strata_oci::image_config::{History, ImageConfig};

/// What to build.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// The context directory.
    pub context: PathBuf,
    /// The Dockerfile (default `<context>/Dockerfile`).
    pub dockerfile: Option<PathBuf>,
    /// `--build-arg` values.
    pub build_args: BTreeMap<String, String>,
    /// `--target`.
    pub target: Option<String>,
    /// References to tag the result with.
    pub tags: Vec<String>,
    /// Squashing.
    pub squash: Squash,
    /// Layer compression.
    pub compression: Compression,
    /// Timestamps are clamped to this (seconds since the epoch; `SOURCE_DATE_EPOCH`).
    pub source_date_epoch: u64,
    /// Where step results and the context stat cache live; None disables the step cache.
    pub cache_dir: Option<PathBuf>,
    /// Extra manifest annotations (strata's build key, `--annotation`).
    pub annotations: BTreeMap<String, String>,
    /// Labels set on the final image's config after the Dockerfile's own (`--label`, as
    /// `buildah bud --label`: they win over a LABEL of the same key and leave the step cache
    /// alone).
    pub labels: BTreeMap<String, String>,
    /// Set to true to stop the build between steps (and kill a running RUN).
    pub cancel: Arc<AtomicBool>,
    /// The network of RUN steps without `--network` (the build's `--network`): their own with
    /// outbound access (the default), the host's, or none.
    pub network: strata_sandbox::Network,
    /// The most processes a RUN step may have at once (`--pids-limit`); None: unlimited.
    pub pids_limit: Option<u32>,
    /// Secrets for `RUN --mount=type=secret`: id → where the content comes from.
    pub secrets: BTreeMap<String, crate::secret::SecretSource>,
    /// Image references as written in the Dockerfile (after ARG expansion) → the store reference
    /// to use instead: the cascade pins each chain parent to the digest its build key was
    /// computed with.
    pub base_overrides: BTreeMap<String, String>,
    /// A context stat cache shared with the caller (a cascade keeps one for the whole run): used
    /// instead of loading and saving `<cache_dir>/stat-cache.json` for this build, which grows
    /// with every image built and made a long chain's builds quadratic. The caller saves it.
    pub stat_cache: Option<Arc<Mutex<StatCache>>>,
    /// Record where the build's time goes here (`--timings`), step by step.
    pub timings: Option<Arc<crate::timings::Timings>>,
}

impl BuildOptions {
    /// Options for `context` with every default.
    pub fn new(context: impl Into<PathBuf>) -> Self {
        Self {
            context: context.into(),
            dockerfile: None,
            build_args: BTreeMap::new(),
            target: None,
            tags: Vec::new(),
            squash: Squash::None,
            compression: Compression::Gzip,
            source_date_epoch: 0,
            cache_dir: None,
            annotations: BTreeMap::new(),
            labels: BTreeMap::new(),
            cancel: Arc::new(AtomicBool::new(false)),
            network: strata_sandbox::Network::default(),
            pids_limit: Some(strata_sandbox::DEFAULT_PIDS_LIMIT),
            secrets: BTreeMap::new(),
            base_overrides: BTreeMap::new(),
            stat_cache: None,
            timings: None,
        }
    }

    /// The store reference to read for `reference` as written.
    pub fn store_ref<'r>(&'r self, reference: &'r str) -> &'r str {
        self.base_overrides
            .get(reference)
            .map(String::as_str)
            .unwrap_or(reference)
    }

    fn dockerfile_path(&self) -> PathBuf {
        self.dockerfile
            .clone()
            .unwrap_or_else(|| self.context.join("Dockerfile"))
    }
}

/// Progress reported while building; only the CLI draws it.
#[derive(Debug, Clone)]
pub enum BuildEvent<'a> {
    /// A stage starts.
    Stage {
        /// Its index.
        index: usize,
        /// Its name.
        name: Option<&'a str>,
        /// Its base as written.
        base: &'a str,
    },
    /// A step starts.
    Step {
        /// 1-based step number over the whole build.
        number: usize,
        /// Number of steps in the build.
        total: usize,
        /// The instruction's text.
        text: &'a str,
    },
    /// The step's layer came from the cache.
    Cached,
    /// A line of a RUN step's output.
    Output(&'a str),
}

/// Receives [`BuildEvent`]s.
pub trait BuildSink: Sync {
    /// One event.
    fn event(&self, event: BuildEvent<'_>);
}

/// A sink that ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoSink;

impl BuildSink for NoSink {
    fn event(&self, _: BuildEvent<'_>) {}
}

/// The finished image.
#[derive(Debug, Clone)]
pub struct BuildResult {
    /// The manifest descriptor (untagged).
    pub descriptor: Descriptor,
    /// The manifest digest.
    pub digest: Digest,
    /// The tags set.
    pub tags: Vec<Reference>,
    /// Steps whose layer came from the cache, and steps that wrote one.
    pub cached_steps: usize,
    /// Steps that wrote a new layer.
    pub built_steps: usize,
    /// The final stage's base image, if it is an image: (reference, manifest digest).
    pub base: Option<(String, Digest)>,
}

/// The state of a stage being built.
#[derive(Debug, Clone)]
pub(crate) struct StageState {
    pub(crate) config: ImageConfig,
    pub(crate) layers: Vec<LayerRef>,
    pub(crate) fs: FsIndex,
    /// Index of the first layer this Dockerfile added (for `--squash`).
    pub(crate) own_from: usize,
    pub(crate) flags: StageFlags,
    /// The base image (reference, digest) when the stage starts from one.
    pub(crate) base: Option<(String, Digest)>,
    /// A running key of everything the stage did, for RUN step cache keys.
    pub(crate) chain_key: String,
}

impl StageState {
    fn scratch() -> Self {
        Self {
            config: ImageConfig::scratch(),
            layers: Vec::new(),
            fs: FsIndex::new(),
            own_from: 0,
            flags: StageFlags::default(),
            base: None,
            chain_key: "scratch".to_string(),
        }
    }

    fn workdir(&self) -> String {
        self.config
            .config
            .working_dir
            .clone()
            .filter(|w| !w.is_empty())
            .unwrap_or_else(|| "/".to_string())
    }

    fn push_layer(&mut self, layer: LayerRef, created: &str, created_by: &str) {
        self.chain_key = hash_strings(&[&self.chain_key, &layer.diff_id]);
        self.config.rootfs.diff_ids.push(layer.diff_id.clone());
        self.layers.push(layer);
        self.config.history.push(History {
            created: Some(created.to_string()),
            created_by: Some(created_by.to_string()),
            comment: Some("strata".to_string()),
            ..History::default()
        });
    }

    fn push_empty(&mut self, created: &str, created_by: &str) {
        self.chain_key = hash_strings(&[&self.chain_key, created_by]);
        self.config.history.push(History {
            created: Some(created.to_string()),
            created_by: Some(created_by.to_string()),
            comment: Some("strata".to_string()),
            empty_layer: true,
            ..History::default()
        });
    }
}

/// An instruction's `created_by` in the image history: for instructions whose words the
/// resolver expands (ENV, LABEL, ARG, WORKDIR, USER, EXPOSE, VOLUME, STOPSIGNAL) the expanded
/// instruction, as BuildKit writes it (`${...}` never reaches the history); for the others the
/// line as written (RUN/CMD/ENTRYPOINT text is the shell's to expand; COPY and ADD keep their
/// source patterns). An ARG given by `--build-arg` is written by name only: BuildKit never puts a
/// build argument's value in the history (it writes the declared default; strata writes neither).
fn history_text(ins: &ResolvedInstruction, build_args: &BTreeMap<String, String>) -> String {
    match &ins.instruction.command {
        Command::Arg(a) => {
            let mut a = a.clone();
            for decl in &mut a.args {
                if build_args.contains_key(&decl.name) {
                    decl.value = None;
                }
            }
            Command::Arg(a).to_string()
        }
        // The resolver sorts EXPOSE's ports; BuildKit keeps them in written order.
        Command::Expose(_) if !ins.instruction.logical_line().contains('$') => {
            ins.instruction.logical_line().trim().to_string()
        }
        Command::Env(_)
        | Command::Label(_)
        | Command::Workdir(_)
        | Command::User(_)
        | Command::Expose(_)
        | Command::Volume(_)
        | Command::StopSignal(_) => ins.instruction.command.to_string(),
        _ => ins.instruction.logical_line().trim().to_string(),
    }
}

pub(crate) fn hash_strings(parts: &[&str]) -> String {
    use sha2::{Digest as _, Sha256};
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    format!("sha256:{}", hex::encode(h.finalize()))
}

/// The directory name, under `<cache>/rootfs`, of the unpacked tree of a layer chain (diff_ids,
/// bottom first): 16 hex digits of their hash.
pub(crate) fn rootfs_cache_name(diff_ids: &[&str]) -> String {
    hash_strings(diff_ids).trim_start_matches("sha256:")[..16].to_string()
}

/// `FROM --platform=...` must name this machine's platform (`$BUILDPLATFORM` and
/// `$TARGETPLATFORM` do): strata reads the base for this machine and has no CPU emulation, so
/// another platform fails instead of silently building this machine's.
fn check_platform(platform: &str) -> Result<(), StepError> {
    if strata_oci::image::is_host_platform(platform) {
        return Ok(());
    }
    Err(StepError::Unsupported(format!(
        "--platform={platform}: strata builds for this machine's platform (linux/{}) only",
        strata_oci::image::host_architecture()
    )))
}

/// A loaded image: its state plus its ONBUILD triggers.
fn load_image(
    store: &Store,
    reference: &str,
    store_ref: &str,
) -> Result<(StageState, Vec<String>), StepError> {
    let descriptor = store.refs().resolve(store_ref).map_err(|e| match e {
        strata_oci::Error::ImageNotFound(_) => StepError::BaseNotFound(reference.to_string()),
        other => StepError::Store(other),
    })?;
    let image = store.image_from_descriptor(&descriptor)?;
    let raw = store.blobs().read_descriptor(image.manifest().config())?;
    let mut config: ImageConfig =
        serde_json::from_slice(&raw).map_err(|e| strata_oci::Error::Json {
            what: format!("config of {reference}"),
            source: e,
        })?;
    let triggers = config.config.on_build.take().unwrap_or_default();
    let diff_ids = image.diff_ids()?;
    let mut fs = FsIndex::new();
    let mut layers = Vec::new();
    for (desc, diff_id) in image.layers().iter().zip(diff_ids) {
        strata_oci::layer_index::index_layer(store, &mut fs, desc)?;
        layers.push(LayerRef {
            descriptor: desc.clone(),
            diff_id: diff_id.to_string(),
        });
    }
    let digest = image.digest();
    let state = StageState {
        own_from: layers.len(),
        layers,
        fs,
        flags: StageFlags::default(),
        base: Some((canonical_name(reference), digest.clone())),
        chain_key: digest.to_string(),
        config,
    };
    Ok((state, triggers))
}

/// Build one image into `store`.
///
/// A `FROM scratch` image made by `COPY` needs no sandbox (no RUN step), so no root:
///
/// ```
/// use std::io::Read;
/// use strata_build::builder::{BuildOptions, NoSink, build};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let context = dir.path().join("context");
/// std::fs::create_dir(&context)?;
/// std::fs::write(context.join("Dockerfile"), "FROM scratch\nCOPY motd /etc/motd\n")?;
/// std::fs::write(context.join("motd"), "hello\n")?;
/// let store = strata_oci::Store::init(dir.path().join("store"))?;
///
/// let mut options = BuildOptions::new(&context);
/// options.tags = vec!["acme/hello:1".into()];
/// let result = build(&store, &options, &NoSink)?;
/// assert_eq!(result.built_steps, 1);
///
/// // The tag names the built image, whose one layer holds the copied file.
/// let image = store.image("acme/hello:1")?;
/// assert_eq!(image.digest(), result.digest);
/// let [layer] = image.layers() else { panic!("one layer expected") };
/// let mut archive = store.open_layer(layer)?;
/// let mut motd = None;
/// for entry in archive.entries()? {
///     let mut entry = entry?;
///     if entry.path()?.as_os_str() == "etc/motd" {
///         let mut text = String::new();
///         entry.read_to_string(&mut text)?;
///         motd = Some(text);
///     }
/// }
/// assert_eq!(motd.as_deref(), Some("hello\n"));
/// # Ok(())
/// # }
/// ```
pub fn build(
    store: &Store,
    options: &BuildOptions,
    sink: &dyn BuildSink,
) -> Result<BuildResult, BuildError> {
    match &options.timings {
        Some(timings) => crate::timings::with_current(Some(timings.clone()), || {
            Builder::new(store, options, sink)?.run()
        }),
        None => Builder::new(store, options, sink)?.run(),
    }
}

fn lock_stat(stat: &Mutex<StatCache>) -> std::sync::MutexGuard<'_, StatCache> {
    stat.lock().unwrap_or_else(|e| e.into_inner())
}

struct Builder<'a> {
    store: &'a Store,
    options: &'a BuildOptions,
    sink: &'a dyn BuildSink,
    file: String,
    context: BuildContext,
    /// The context stat cache: the caller's (`BuildOptions::stat_cache`) or this build's own.
    stat: Arc<Mutex<StatCache>>,
    cache: StepCache,
    created: String,
    /// This build's scratch directory (`.strata/tmp/build-*`), made when a step first needs it:
    /// most images of a long chain (COPY only) never do, and making and removing one per image
    /// was a file system cost of its own.
    scratch_dir: std::cell::OnceCell<tempfile::TempDir>,
    tmp_root: PathBuf,
    /// Root filesystems materialised for `COPY --from`, by stage index or image reference.
    rootfs: HashMap<String, PathBuf>,
    cached_steps: usize,
    built_steps: usize,
}

impl<'a> Builder<'a> {
    fn new(
        store: &'a Store,
        options: &'a BuildOptions,
        sink: &'a dyn BuildSink,
    ) -> Result<Self, BuildError> {
        let dockerfile = options.dockerfile_path();
        let context = BuildContext::open(&options.context, Some(&dockerfile))?;
        let stat_path = options
            .cache_dir
            .as_ref()
            .map(|d| d.join("stat-cache.json"));
        let stat = match &options.stat_cache {
            Some(shared) => shared.clone(),
            None => Arc::new(Mutex::new(
                stat_path
                    .as_deref()
                    .map(StatCache::load)
                    .unwrap_or_default(),
            )),
        };
        lock_stat(&stat).skip_under(&store.tmp_dir());
        let created = chrono::DateTime::from_timestamp(
            i64::try_from(options.source_date_epoch).unwrap_or(0),
            0,
        )
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let tmp_root = store.tmp_dir();
        std::fs::create_dir_all(&tmp_root).map_err(|e| {
            BuildError::Store(strata_oci::Error::Io {
                path: tmp_root.clone(),
                source: e,
            })
        })?;
        Ok(Self {
            store,
            options,
            sink,
            file: dockerfile.display().to_string(),
            context,
            stat,
            cache: StepCache::new(options.cache_dir.clone()),
            created,
            scratch_dir: std::cell::OnceCell::new(),
            tmp_root,
            rootfs: HashMap::new(),
            cached_steps: 0,
            built_steps: 0,
        })
    }

    fn parse_error(&self, error: strata_dockerfile::Error) -> BuildError {
        BuildError::Dockerfile {
            file: self.file.clone(),
            error,
        }
    }

    /// Parse (bytes: a comment may hold non-UTF-8 bytes, as BuildKit accepts) and resolve with the
    /// base images' environments and ONBUILD triggers (`ResolveOptions::base_onbuild`: they run
    /// first in the child, as Docker runs them, and the Dockerfile's own lines keep their
    /// numbers). A trigger's `--from` can make another stage, and so another base, needed:
    /// resolve again until the set of bases read stops growing.
    fn resolve(&self) -> Result<Resolved, BuildError> {
        let path = self.options.dockerfile_path();
        let bytes =
            crate::context::read_context_bytes(&self.options.context, &path)?.ok_or_else(|| {
                BuildError::ReadDockerfile {
                    path,
                    source: std::io::ErrorKind::NotFound.into(),
                }
            })?;
        let parsed = strata_dockerfile::parse_bytes(&bytes).map_err(|e| self.parse_error(e))?;
        let mut options = ResolveOptions {
            build_args: self.options.build_args.clone(),
            target: self.options.target.clone(),
            ..ResolveOptions::default()
        };
        let mut read: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
        loop {
            let resolved = parsed
                .resolve_with(&options)
                .map_err(|e| self.parse_error(e))?;
            let mut grew = false;
            for stage in resolved.stages.iter().filter(|s| s.needed) {
                let Base::Image(reference) = &stage.base else {
                    continue;
                };
                if !read.insert(reference.clone()) {
                    continue;
                }
                let Ok(descriptor) = self.store.refs().resolve(self.options.store_ref(reference))
                else {
                    continue; // reported when the stage runs, with its line
                };
                let image = self.store.image_from_descriptor(&descriptor)?;
                let raw = self
                    .store
                    .blobs()
                    .read_descriptor(image.manifest().config())?;
                let config: ImageConfig =
                    serde_json::from_slice(&raw).map_err(|e| strata_oci::Error::Json {
                        what: format!("config of {reference}"),
                        source: e,
                    })?;
                options
                    .base_env
                    .insert(reference.clone(), config.env_pairs());
                if let Some(triggers) = config.config.on_build.filter(|t| !t.is_empty()) {
                    options.base_onbuild.insert(reference.clone(), triggers);
                }
                grew = true;
            }
            if !grew {
                return Ok(resolved);
            }
        }
    }

    fn run(mut self) -> Result<BuildResult, BuildError> {
        let _lease = self.store.lease()?;
        let resolved = self.resolve()?;
        let total: usize = resolved
            .stages
            .iter()
            .filter(|s| s.needed)
            .map(|s| s.instructions.len() + 1)
            .sum();
        let mut number = 0;
        let mut done: Vec<Option<StageState>> = vec![None; resolved.stages.len()];
        for stage in resolved.stages.iter().filter(|s| s.needed) {
            if stage.index > resolved.target {
                break;
            }
            number += 1;
            let base_text = stage.from.original.trim().to_string();
            self.sink.event(BuildEvent::Stage {
                index: stage.index,
                name: stage.name.as_deref(),
                base: &base_text,
            });
            self.sink.event(BuildEvent::Step {
                number,
                total,
                text: &base_text,
            });
            if let Some(t) = &self.options.timings {
                t.step(number, &base_text);
            }
            let mut state = match &stage.base {
                Base::Scratch => StageState::scratch(),
                Base::Stage(i) => {
                    let mut s = done[*i].clone().expect("stages resolve in order");
                    // The parent's ONBUILD triggers ran first in this stage (the resolver put
                    // them there); its config no longer carries them, as BuildKit clears them.
                    s.config.config.on_build = None;
                    s.own_from = s.layers.len();
                    s.flags = StageFlags::default();
                    s
                }
                Base::Image(reference) => {
                    if let Some(platform) = &stage.platform {
                        check_platform(platform).map_err(|e| self.step_error(&stage.from, e))?;
                    }
                    let (s, _triggers) = timed(Phase::Snapshot, || {
                        load_image(self.store, reference, self.options.store_ref(reference))
                    })
                    .map_err(|e| self.step_error(&stage.from, e))?;
                    s
                }
            };
            if state.config.env_get("PATH").is_none() {
                // BuildKit gives every image a PATH.
                state
                    .config
                    .env_set("PATH", strata_dockerfile::DEFAULT_PATH);
            }
            for ins in &stage.instructions {
                if self.options.cancel.load(Ordering::Relaxed) {
                    return Err(BuildError::Interrupted);
                }
                number += 1;
                let text = ins.instruction.original.trim().to_string();
                self.sink.event(BuildEvent::Step {
                    number,
                    total,
                    text: &text,
                });
                if let Some(t) = &self.options.timings {
                    t.step(number, &text);
                }
                self.execute(&mut state, ins, &done)
                    .map_err(|e| self.step_error(&ins.instruction, e))?;
            }
            done[stage.index] = Some(state);
        }
        let state = done[resolved.target]
            .take()
            .expect("the target stage was built");
        if let Some(cache_dir) = &self.options.cache_dir
            && self.options.stat_cache.is_none()
            && let Err(e) = lock_stat(&self.stat).save(&cache_dir.join("stat-cache.json"))
        {
            tracing::warn!("cannot save the stat cache: {e}");
        }
        let timings = self.options.timings.clone();
        if let Some(t) = &timings {
            t.step(0, "(write the image)");
        }
        let result = timed(Phase::Store, || self.finish(state));
        if let Some(t) = &timings {
            t.end_step();
        }
        result
    }

    fn step_error(
        &self,
        instruction: &strata_dockerfile::Instruction,
        source: StepError,
    ) -> BuildError {
        let mut text = instruction.logical_line().trim().to_string();
        if text.chars().count() > 60 {
            text = text.chars().take(57).collect::<String>() + "...";
        }
        BuildError::Step {
            file: self.file.clone(),
            line: instruction.start_line,
            instruction: text,
            source: Box::new(source),
        }
    }

    fn layer_options(&self) -> LayerOptions {
        LayerOptions {
            compression: self.options.compression,
            source_date_epoch: self.options.source_date_epoch,
        }
    }

    fn execute(
        &mut self,
        state: &mut StageState,
        ins: &ResolvedInstruction,
        done: &[Option<StageState>],
    ) -> Result<(), StepError> {
        let command = &ins.instruction.command;
        let created_by = history_text(ins, &self.options.build_args);
        if metadata::apply(&mut state.config, &mut state.flags, command) {
            state.push_empty(&self.created, &created_by);
            return Ok(());
        }
        match command {
            // BuildKit and buildah record ARG in the history as an empty layer.
            Command::Arg(_) => {
                state.push_empty(&self.created, &created_by);
                Ok(())
            }
            Command::Workdir(w) => self.workdir(state, &w.path, &created_by),
            Command::Copy(c) => {
                let from = ins.copy_from.clone();
                let sources = self.tree_sources(from.as_ref(), &c.sources, done)?;
                let opts = CopyOptions {
                    dest: c.dest.clone(),
                    workdir: state.workdir(),
                    owner: self.chown(state, c.chown.as_deref())?,
                    chmod: parse_chmod(c.chmod.as_deref())?,
                    excludes: c.exclude.clone(),
                    parents: c.parents,
                    // From the context files belong to root; from a stage or an image they keep
                    // their owner, as BuildKit and buildah do (unless --chown says otherwise).
                    preserve_owner: from.is_some(),
                };
                self.copy_layer(state, &sources, &opts, &created_by)
            }
            Command::Add(a) => self.add(state, a, &created_by),
            Command::Run(run) => self.run_step(state, ins, run, done, &created_by),
            other => Err(StepError::Unsupported(format!(
                "{} is not valid here",
                other.keyword()
            ))),
        }
    }

    /// The snapshot directories of the stage's layers, bottom first.
    fn lowers(&self, layers: &[LayerRef]) -> Result<Vec<PathBuf>, StepError> {
        let snapshots = Snapshots::new(self.work_dir()?.join("snapshots"));
        layers
            .iter()
            .map(|l| snapshots.get(self.store, &l.descriptor, &l.diff_id))
            .collect()
    }

    /// Make `dir`, the tree `layer` was just written from, the layer's snapshot
    /// ([`Snapshots::adopt`]). Never fails the step: a tree that cannot be adopted is left for
    /// its step to remove, and the layer is unpacked when a later step needs it.
    fn adopt_snapshot(
        &self,
        dir: &Path,
        layer: &LayerRef,
        entries: u64,
        opaque: Option<strata_sandbox::XattrNamespace>,
        utf8: bool,
    ) {
        let Ok(work) = self.work_dir() else { return };
        let form = strata_sandbox::LowerForm {
            source_date_epoch: self.options.source_date_epoch,
            opaque,
        };
        if let Err(e) =
            Snapshots::new(work.join("snapshots")).adopt(dir, &layer.diff_id, &form, entries, utf8)
        {
            tracing::debug!(
                "layer {} is unpacked when needed: {}",
                layer.diff_id,
                strata_oci::report(&e)
            );
        }
    }

    /// Where snapshots and cache mounts live: the cache directory, or this build's scratch.
    fn work_dir(&self) -> Result<PathBuf, StepError> {
        match &self.options.cache_dir {
            Some(dir) => Ok(dir.clone()),
            None => Ok(self.scratch()?.to_path_buf()),
        }
    }

    /// This build's scratch directory, made on first use.
    fn scratch(&self) -> Result<&Path, StepError> {
        if let Some(dir) = self.scratch_dir.get() {
            return Ok(dir.path());
        }
        let dir = tempfile::Builder::new()
            .prefix("build-")
            .tempdir_in(&self.tmp_root)
            .map_err(|source| StepError::Io {
                path: self.tmp_root.clone(),
                source,
            })?;
        Ok(self.scratch_dir.get_or_init(|| dir).path())
    }

    fn run_step(
        &mut self,
        state: &mut StageState,
        ins: &ResolvedInstruction,
        run: &strata_dockerfile::Run,
        done: &[Option<StageState>],
        created_by: &str,
    ) -> Result<(), StepError> {
        if state.layers.is_empty() {
            return Err(StepError::Run(
                "the stage's filesystem is empty (FROM scratch): there is nothing to run".into(),
            ));
        }
        if run.security == Some(strata_dockerfile::Security::Insecure) {
            return Err(StepError::Unsupported(
                "RUN --security=insecure needs the security.insecure entitlement, which strata does not grant".into(),
            ));
        }
        let command = crate::run::command(run, metadata::shell_of(&state.config));
        let env = ins
            .env
            .as_ref()
            .map(|e| e.vars())
            .unwrap_or_else(|| state.config.env_pairs());
        let cwd = state.workdir();
        let user_spec = state
            .config
            .config
            .user
            .clone()
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| "0".to_string());
        let mut from_roots = Vec::new();
        for from in &ins.mount_from {
            from_roots.push(self.tree_root(from.as_ref(), done)?);
        }
        let scratch = self.scratch()?.to_path_buf();
        let cache_root = self.work_dir()?.join("mounts");
        let crate::run::RunMounts {
            mounts,
            keys: mount_keys,
            secret_env,
        } = crate::run::mounts(
            &run.mounts,
            &crate::run::MountInputs {
                cache_root: &cache_root,
                context_root: self.context.root(),
                from_roots,
                secrets: &self.options.secrets,
                scratch: &scratch,
            },
        )?;
        let network = crate::run::network(run, self.options.network);
        let key = crate::cache_key::RunKey {
            chain_key: &state.chain_key,
            argv: &command.argv,
            env: &env,
            user: &user_spec,
            cwd: &cwd,
            network,
            mounts: &mount_keys,
            script: command
                .script
                .as_ref()
                .map(|(name, content)| (name.as_str(), content.as_slice())),
        }
        .key();
        if let Some(cached) = self.cache.get_step(self.store, &key) {
            self.sink.event(BuildEvent::Cached);
            self.cached_steps += 1;
            return self.apply_run_result(state, cached, created_by);
        }
        let lowers = timed(Phase::Snapshot, || self.lowers(&state.layers))?;
        let view = strata_sandbox::LayerView::new(&lowers);
        let user = strata_sandbox::resolve_user(&user_spec, &view).map_err(|source| {
            StepError::SandboxAt {
                what: format!("USER {user_spec}"),
                source,
            }
        })?;
        let (mut spec, run_dir) = crate::run::spec(lowers, &scratch, command.argv.clone())?;
        spec.env = env;
        // As runc does: HOME from the step user's /etc/passwd entry (`/` without one), unless
        // the environment sets it. The passwd file is in the parent layers, so the key covers it.
        if !spec.env.iter().any(|(k, _)| k == "HOME") {
            spec.env.push(("HOME".to_string(), user.home.clone()));
        }
        // After the cache key: a secret's value never reaches it (nor the image config).
        for (var, value) in secret_env {
            spec.env.retain(|(k, _)| *k != var);
            spec.env.push((var, value));
        }
        spec.cwd = cwd;
        spec.user = crate::run::identity(&user);
        spec.network = network;
        spec.pids_limit = self.options.pids_limit;
        spec.mounts = mounts;
        if let Some((name, content)) = &command.script {
            let path = scratch.join(format!("heredoc-{name}"));
            std::fs::write(&path, content).map_err(|source| StepError::Io {
                path: path.clone(),
                source,
            })?;
            std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
                .map_err(|source| StepError::Io {
                    path: path.clone(),
                    source,
                })?;
            spec.mounts.push(strata_sandbox::ExtraMount::Bind {
                source: path,
                target: format!("{}/{name}", crate::run::SCRIPT_DIR),
                readonly: true,
            });
        }
        let sink = self.sink;
        let mut output =
            crate::run::LineSplitter::new(|line: &str| sink.event(BuildEvent::Output(line)));
        let cancel = strata_sandbox::Cancel::from_flag(self.options.cancel.clone());
        let outcome = timed(Phase::Command, || {
            strata_sandbox::run(&spec, &mut output, &cancel)
        });
        output.flush();
        let outcome = outcome.map_err(|e| match e {
            strata_sandbox::SandboxError::Cancelled { .. } => StepError::Interrupted,
            other => StepError::Sandbox(other),
        })?;
        let changes = timed(Phase::Diff, || outcome.changes())?;
        let layer = if changes.is_empty() {
            None
        } else {
            let count = crate::run::layer_entry_count(&changes);
            let entries = timed(Phase::Diff, || crate::run::entries(changes))?;
            let layer = layer::write_entries(self.store, entries, self.layer_options())?;
            // The upper directory holds the layer's tree: it becomes the layer's snapshot, so
            // the next RUN does not unpack what this one just wrote. Only a plain overlay run
            // (a private copy holds the whole root; a user namespace maps owners).
            if outcome.isolation
                == (strata_sandbox::Isolation {
                    root: strata_sandbox::RootMode::Overlay,
                    user_namespace: false,
                })
            {
                let upper = run_dir.path().join("upper");
                let opaque = Some(strata_sandbox::XattrNamespace::for_current_user());
                timed(Phase::Snapshot, || {
                    self.adopt_snapshot(&upper, &layer, count, opaque, false)
                });
            }
            Some(layer)
        };
        self.cache.put_step(&key, layer.as_ref());
        self.built_steps += 1;
        self.apply_run_result(state, layer, created_by)
    }

    fn apply_run_result(
        &mut self,
        state: &mut StageState,
        layer: Option<LayerRef>,
        created_by: &str,
    ) -> Result<(), StepError> {
        match layer {
            None => state.push_empty(&self.created, created_by),
            Some(layer) => {
                timed(Phase::Store, || {
                    strata_oci::layer_index::index_layer(
                        self.store,
                        &mut state.fs,
                        &layer.descriptor,
                    )
                })?;
                state.push_layer(layer, &self.created, created_by);
            }
        }
        Ok(())
    }

    fn chown(&self, state: &StageState, spec: Option<&str>) -> Result<Option<Owner>, StepError> {
        let Some(spec) = spec else { return Ok(None) };
        let passwd = self.read_image_file(state, "/etc/passwd")?;
        let group = self.read_image_file(state, "/etc/group")?;
        Ok(Some(users::resolve_owner(
            spec,
            passwd.as_deref(),
            group.as_deref(),
        )?))
    }

    /// The text of a file of the image being built, read from the layer that holds it.
    fn read_image_file(&self, state: &StageState, path: &str) -> Result<Option<String>, StepError> {
        let resolved = strata_oci::scoped::resolve(&state.fs, path, true)
            .map_err(|e| StepError::Copy(e.into()))?;
        let Some(layer_index) = state.fs.layer_of(&resolved) else {
            return Ok(None);
        };
        let layer = &state.layers[layer_index];
        let mut archive = self.store.open_layer(&layer.descriptor)?;
        let wanted = resolved.trim_start_matches('/');
        let io = |source| StepError::Io {
            path: PathBuf::from(path),
            source,
        };
        for entry in archive.entries().map_err(io)? {
            let mut entry = entry.map_err(io)?;
            let name = entry.path().map_err(io)?.to_string_lossy().into_owned();
            if name.trim_start_matches("./").trim_start_matches('/') == wanted {
                let mut text = String::new();
                std::io::Read::read_to_string(&mut entry, &mut text).map_err(io)?;
                return Ok(Some(text));
            }
        }
        Ok(None)
    }

    fn workdir(
        &mut self,
        state: &mut StageState,
        path: &str,
        created_by: &str,
    ) -> Result<(), StepError> {
        let absolute = if path.starts_with('/') {
            strata_oci::fsindex::normalise(path)
        } else {
            strata_oci::fsindex::normalise(&format!("{}/{}", state.workdir(), path))
        };
        state.config.config.working_dir = Some(absolute.clone());
        let user = state.config.config.user.clone().filter(|u| !u.is_empty());
        let owner = match user {
            None => Owner { uid: 0, gid: 0 },
            Some(u) => self
                .chown(state, Some(&u))?
                .unwrap_or(Owner { uid: 0, gid: 0 }),
        };
        let plan = copy::plan_mkdir(&state.fs, &absolute, owner)?;
        if plan.is_empty() {
            state.push_empty(&self.created, created_by);
            return Ok(());
        }
        self.plan_layer(state, &plan, created_by)
    }

    fn plan_layer(
        &mut self,
        state: &mut StageState,
        plan: &copy::CopyPlan,
        created_by: &str,
    ) -> Result<(), StepError> {
        self.plan_layer_keyed(state, plan, created_by, true)
    }

    /// [`Self::plan_layer`]; with `keyed` false the plan is not hashed for the step cache (the
    /// caller keys the step itself, on the same content).
    fn plan_layer_keyed(
        &mut self,
        state: &mut StageState,
        plan: &copy::CopyPlan,
        created_by: &str,
        keyed: bool,
    ) -> Result<(), StepError> {
        // Link groups are found on the whole step's plan (ADD combines several plans).
        let mut linked = plan.clone();
        copy::link_groups(&mut linked);
        let plan = &linked;
        let options = self.layer_options();
        let key = if keyed {
            Some(timed(Phase::Hash, || {
                layer::plan_key(plan, &mut lock_stat(&self.stat), &options)
            })?)
        } else {
            None
        };
        let layer = match key.as_ref().and_then(|key| self.cache.get(self.store, key)) {
            Some(layer) => {
                self.sink.event(BuildEvent::Cached);
                self.cached_steps += 1;
                layer
            }
            None => {
                let layer = layer::write_plan(self.store, plan, options)?;
                if let Some(key) = &key {
                    self.cache.put(key, &layer);
                }
                self.built_steps += 1;
                layer
            }
        };
        layer::index_plan(&mut state.fs, plan);
        state.push_layer(layer, &self.created, created_by);
        Ok(())
    }

    fn copy_layer(
        &mut self,
        state: &mut StageState,
        sources: &[CopySource],
        opts: &CopyOptions,
        created_by: &str,
    ) -> Result<(), StepError> {
        let plan = copy::plan_copy(&state.fs, sources, opts)?;
        self.plan_layer(state, &plan, created_by)
    }

    /// The source tree for COPY: the context, a stage's or an image's root filesystem.
    fn tree_root(
        &mut self,
        from: Option<&Base>,
        done: &[Option<StageState>],
    ) -> Result<Option<PathBuf>, StepError> {
        let (key, layers): (String, Vec<LayerRef>) = match from {
            None => return Ok(None),
            Some(Base::Scratch) => ("scratch".to_string(), Vec::new()),
            Some(Base::Stage(i)) => {
                let state = done
                    .get(*i)
                    .and_then(Option::as_ref)
                    .ok_or_else(|| StepError::UnknownFrom(i.to_string()))?;
                (format!("stage-{i}"), state.layers.clone())
            }
            Some(Base::Image(reference)) => {
                let (state, _) =
                    load_image(self.store, reference, self.options.store_ref(reference))?;
                (format!("image-{reference}"), state.layers)
            }
        };
        if let Some(path) = self.rootfs.get(&key) {
            return Ok(Some(path.clone()));
        }
        let io = |path: &std::path::Path| {
            let path = path.to_path_buf();
            move |source| StepError::Io { path, source }
        };
        // With a cache directory, a layer chain's tree is unpacked once and kept (keyed by its
        // diff_ids), so `COPY --from` a big image does not unpack it at every build.
        let ids: Vec<&str> = layers.iter().map(|l| l.diff_id.as_str()).collect();
        let dir = match &self.options.cache_dir {
            Some(cache) => cache.join("rootfs").join(rootfs_cache_name(&ids)),
            None => self
                .scratch()?
                .join(format!("rootfs-{}", self.rootfs.len())),
        };
        if !dir.is_dir() {
            let parent = dir
                .parent()
                .expect("rootfs dirs have a parent")
                .to_path_buf();
            std::fs::create_dir_all(&parent).map_err(io(&parent))?;
            let staging = tempfile::Builder::new()
                .prefix(".unpack-")
                .tempdir_in(&parent)
                .map_err(io(&parent))?;
            for layer in &layers {
                self.store
                    .unpack_layer(&layer.descriptor, staging.path(), &Default::default())?;
            }
            let staged = staging.keep();
            if let Err(e) = std::fs::rename(&staged, &dir) {
                let _ = std::fs::remove_dir_all(&staged);
                if !dir.is_dir() {
                    return Err(io(&dir)(e));
                }
            }
        }
        self.rootfs.insert(key, dir.clone());
        Ok(Some(dir))
    }

    fn tree_sources(
        &mut self,
        from: Option<&Base>,
        sources: &[Source],
        done: &[Option<StageState>],
    ) -> Result<Vec<CopySource>, StepError> {
        let ctx = match self.tree_root(from, done)? {
            Some(dir) => BuildContext::without_ignore(&dir),
            None => self.context.clone(),
        };
        let mut paths = Vec::new();
        let mut out = Vec::new();
        for source in sources {
            match source {
                Source::Path(p) => paths.push(p.clone()),
                Source::Heredoc { name, content, .. } => out.push(CopySource::Inline(
                    name.clone(),
                    content.clone().into_bytes(),
                )),
            }
        }
        if !paths.is_empty() {
            out.insert(0, CopySource::Tree(ctx, paths));
        }
        Ok(out)
    }

    fn add(
        &mut self,
        state: &mut StageState,
        a: &strata_dockerfile::Add,
        created_by: &str,
    ) -> Result<(), StepError> {
        let scratch = self.scratch()?.to_path_buf();
        let download_dir = tempfile::tempdir_in(&scratch).map_err(|source| StepError::Io {
            path: scratch.clone(),
            source,
        })?;
        let unpack = a.unpack.unwrap_or(true);
        // Local sources only: the result is known from their content and the parent, so a hit
        // skips extracting archives (a rootfs tarball's ADD would otherwise unpack every time).
        let pre_key = timed(Phase::Hash, || self.add_key(state, a, created_by))?;
        if let Some(key) = &pre_key
            && let Some(cached) = self.cache.get_step(self.store, key)
        {
            self.sink.event(BuildEvent::Cached);
            self.cached_steps += 1;
            return self.apply_run_result(state, cached, created_by);
        }
        let mut plain: Vec<Source> = Vec::new();
        let mut downloaded: Vec<String> = Vec::new();
        let mut archives: Vec<PathBuf> = Vec::new();
        for source in &a.sources {
            match source {
                Source::Path(p) if add::is_git(p) => {
                    return Err(StepError::Unsupported(format!(
                        "ADD {p}: git sources need network access to a git server, which this builder does not fetch yet"
                    )));
                }
                Source::Path(p) if add::is_url(p) => {
                    let path = add::download(p, a.checksum.as_deref(), download_dir.path())?;
                    downloaded.push(
                        path.file_name()
                            .map(|n| n.to_string_lossy().into_owned())
                            .unwrap_or_default(),
                    );
                }
                Source::Path(p) if unpack => {
                    let entries = self.context.expand(p)?;
                    let mut rest = Vec::new();
                    for entry in entries {
                        match (entry.meta.is_file(), add::archive_kind(&entry.path)) {
                            (true, Some(_)) => archives.push(entry.path.clone()),
                            _ => rest.push(entry.rel.clone()),
                        }
                    }
                    plain.extend(rest.into_iter().map(Source::Path));
                }
                other => plain.push(other.clone()),
            }
        }
        if a.checksum.is_some() && downloaded.is_empty() {
            return Err(StepError::Unsupported(
                "ADD --checksum applies to URL sources only".to_string(),
            ));
        }
        let owner = self.chown(state, a.chown.as_deref())?;
        let chmod = parse_chmod(a.chmod.as_deref())?;
        let base_opts = CopyOptions {
            dest: a.dest.clone(),
            workdir: state.workdir(),
            owner,
            chmod,
            excludes: a.exclude.clone(),
            parents: false,
            preserve_owner: false,
        };
        let mut sources = self.tree_sources(None, &plain, &[])?;
        if !downloaded.is_empty() {
            let download_ctx = BuildContext::without_ignore(download_dir.path());
            sources.push(CopySource::Tree(download_ctx, downloaded));
        }
        let mut plan = copy::CopyPlan::new();
        if !sources.is_empty() {
            let mut opts = base_opts.clone();
            // Remote files get mode 0600 as Docker gives them, unless --chmod says otherwise.
            let remote_only = plain.is_empty();
            if remote_only && opts.chmod.is_none() {
                opts.chmod = Some(0o600);
            }
            plan.extend(copy::plan_copy(&state.fs, &sources, &opts)?);
        }
        for (i, archive) in archives.iter().enumerate() {
            let kind = add::archive_kind(archive).expect("checked above");
            let dir = download_dir.path().join(format!("archive-{i}"));
            std::fs::create_dir_all(&dir).map_err(|source| StepError::Io {
                path: dir.clone(),
                source,
            })?;
            timed(Phase::Snapshot, || {
                add::extract_archive(archive, kind, &dir)
            })?;
            let ctx = BuildContext::without_ignore(&dir);
            let mut opts = base_opts.clone();
            opts.preserve_owner = true;
            if !opts.dest.ends_with('/') {
                opts.dest.push('/');
            }
            let archive_plan =
                copy::plan_copy(&state.fs, &[CopySource::Tree(ctx, vec![".".into()])], &opts)?;
            plan.extend(archive_plan);
        }
        let layers_before = state.layers.len();
        // One archive extracted at `/` of an empty stage, with nothing else, no owner, mode or
        // exclusion: the extracted tree is the layer's (the base image's import), so it becomes
        // the layer's snapshot rather than the layer being unpacked again by the next RUN.
        let whole_tree = (layers_before == 0
            && state.fs.layer_count() == 0
            && archives.len() == 1
            && sources.is_empty()
            && a.chown.is_none()
            && a.chmod.is_none()
            && a.exclude.is_empty()
            && strata_oci::fsindex::normalise(&if a.dest.starts_with('/') {
                a.dest.clone()
            } else {
                format!("{}/{}", state.workdir(), a.dest)
            }) == "/")
            .then(|| (download_dir.path().join("archive-0"), plan.len() as u64));
        // Such an ADD is keyed by its archive's content already (`pre_key`): hashing every
        // extracted file again for the plan's key would read the whole tree once more.
        let keyed = whole_tree.is_none() || pre_key.is_none();
        self.plan_layer_keyed(state, &plan, created_by, keyed)?;
        if let Some((tree, entries)) = whole_tree
            && state.layers.len() > layers_before
            && let Some(layer) = state.layers.last()
        {
            timed(Phase::Snapshot, || {
                self.adopt_snapshot(&tree, layer, entries, None, true)
            });
        }
        if let Some(key) = &pre_key {
            let layer = (state.layers.len() > layers_before)
                .then(|| state.layers.last())
                .flatten();
            self.cache.put_step(key, layer);
        }
        Ok(())
    }

    /// The cache key of an ADD whose sources are all local: the stage so far, the instruction,
    /// and the content of every source file. None when a source is remote.
    fn add_key(
        &mut self,
        state: &StageState,
        a: &strata_dockerfile::Add,
        created_by: &str,
    ) -> Result<Option<String>, StepError> {
        let mut key = crate::cache_key::add_key(
            &state.chain_key,
            created_by,
            a.unpack,
            self.options.compression,
            self.options.source_date_epoch,
        );
        for source in &a.sources {
            match source {
                Source::Path(p) if add::is_url(p) || add::is_git(p) => return Ok(None),
                Source::Path(p) => {
                    for entry in self.context.expand(p)? {
                        let files = if entry.meta.is_dir() {
                            BuildContext::without_ignore(&entry.path).walk_all()?
                        } else {
                            vec![entry.clone()]
                        };
                        for f in files {
                            use std::os::unix::fs::MetadataExt;
                            let hash = if f.meta.is_file() {
                                lock_stat(&self.stat).file_hash(&f.path, &f.meta)?
                            } else {
                                String::new()
                            };
                            // The clamped mtime is part of the layer (rewrite-timestamp).
                            let mtime = u64::try_from(f.meta.mtime())
                                .unwrap_or(0)
                                .min(self.options.source_date_epoch);
                            key.str("file")
                                .bytes(f.path.as_os_str().as_encoded_bytes())
                                .u64(u64::from(f.meta.mode()))
                                .u64(u64::from(f.meta.uid()))
                                .u64(u64::from(f.meta.gid()))
                                .u64(mtime)
                                .str(&hash);
                        }
                    }
                }
                Source::Heredoc { content, .. } => {
                    key.str("heredoc").str(content);
                }
            }
        }
        Ok(Some(key.finish()))
    }

    fn finish(self, state: StageState) -> Result<BuildResult, BuildError> {
        let mut state = state;
        match self.options.squash {
            Squash::None => {}
            Squash::All => squash::squash(self.store, &mut state, 0, self.layer_options())
                .map_err(|e| BuildError::Step {
                    file: self.file.clone(),
                    line: 0,
                    instruction: "--squash-all".to_string(),
                    source: Box::new(e),
                })?,
            Squash::Own => {
                let from = state.own_from;
                squash::squash(self.store, &mut state, from, self.layer_options()).map_err(|e| {
                    BuildError::Step {
                        file: self.file.clone(),
                        line: 0,
                        instruction: "--squash".to_string(),
                        source: Box::new(e),
                    }
                })?
            }
        }
        state.config.created = Some(self.created.clone());
        for (key, value) in &self.options.labels {
            state
                .config
                .config
                .labels
                .insert(key.clone(), value.clone());
        }
        let config_descriptor = self
            .store
            .blobs()
            .put_json(&state.config, MediaType::ImageConfig)?;
        let layers: Vec<Descriptor> = state.layers.iter().map(|l| l.descriptor.clone()).collect();
        let mut manifest = strata_oci::image::new_manifest(config_descriptor, layers);
        let mut annotations: HashMap<String, String> = self
            .options
            .annotations
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        annotations.insert(ANNOTATION_CREATED.to_string(), self.created.clone());
        if let Some((name, digest)) = &state.base {
            annotations.insert(ANNOTATION_BASE_IMAGE_NAME.to_string(), name.clone());
            annotations.insert(ANNOTATION_BASE_IMAGE_DIGEST.to_string(), digest.to_string());
        }
        manifest.set_annotations(Some(annotations));
        let descriptor = self.store.blobs().put_manifest(&manifest)?;
        let digest = Digest::from_oci(descriptor.digest())?;
        let mut tags = Vec::new();
        for tag in &self.options.tags {
            tags.push(self.store.refs().tag(tag, &descriptor)?);
        }
        Ok(BuildResult {
            descriptor,
            digest,
            tags,
            cached_steps: self.cached_steps,
            built_steps: self.built_steps,
            base: state.base.clone(),
        })
    }
}

/// The full name of a reference as written (`acme/base` → `localhost/acme/base:latest`), for the
/// base-name annotation; the reference itself when it does not parse.
fn canonical_name(reference: &str) -> String {
    Reference::parse(reference)
        .map(|r| r.to_string())
        .unwrap_or_else(|_| reference.to_string())
}

/// `--chmod=0755` → 0o755.
fn parse_chmod(spec: Option<&str>) -> Result<Option<u32>, StepError> {
    spec.map(|s| {
        u32::from_str_radix(s, 8)
            .ok()
            .filter(|m| *m <= 0o7777)
            .ok_or_else(|| StepError::BadChmod(s.to_string()))
    })
    .transpose()
}
