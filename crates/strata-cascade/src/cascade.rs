//! The scheduler: visit the selected images in build order, rebuild the ones whose build key
//! changed, run independent images in parallel, stop only the descendants of a failure.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use strata_build::builder::{BuildEvent, BuildOptions, BuildSink};
use strata_build::import::{ImportOptions, import_rootfs};
use strata_chain::{Build, Chain, Status};
use strata_events::{Event, EventLog, Kind};
use strata_oci::{Compression, Store};

use crate::error::{CascadeError, ImageError};
use crate::inputs::InputsResolver;
use crate::refs;
use crate::schedule::{ImageBuilder, Schedule};
use crate::status::StoreStatus;
use strata_oci::annotations::{
    ANNOTATION_BUILD_INPUTS, ANNOTATION_BUILD_KEY, ANNOTATION_CHAIN_IMAGE, ANNOTATION_OWNER,
};

/// How to run the cascade.
#[derive(Debug, Clone)]
pub struct CascadeOptions {
    /// Images to build with what they need (empty: the whole chain).
    pub targets: Vec<String>,
    /// Images to rebuild even when up to date (their descendants follow when their digest changes).
    pub force: Vec<String>,
    /// Images built at once.
    pub jobs: usize,
    /// Say what would be built, build nothing.
    pub dry_run: bool,
    /// Layer compression.
    pub compression: Compression,
    /// Timestamps are clamped to this.
    pub source_date_epoch: u64,
    /// Step cache, snapshots, stat cache (None: no step cache).
    pub cache_dir: Option<PathBuf>,
    /// Set to stop: running steps are killed, queued images are skipped.
    pub cancel: Arc<AtomicBool>,
    /// Groups this run's events in the log.
    pub run_id: String,
    /// Signing keys by team (`--key TEAM=FILE`); a team without one uses `STRATA_KEY_<TEAM>`.
    pub keys: BTreeMap<String, PathBuf>,
    /// Build secrets (`--secret`), offered to every image's `RUN --mount=type=secret`.
    pub secrets: BTreeMap<String, strata_build::secret::SecretSource>,
    /// When to pull the external images FROM lines name (`--pull`).
    pub pull: strata_remote::PullPolicy,
    /// The network of RUN steps without `--network` (`--network`): their own with outbound
    /// access (the default), the host's, or none.
    pub network: strata_build::builder::RunNetwork,
    /// The most processes a RUN step may have at once (`--pids-limit`); None: unlimited.
    pub pids_limit: Option<u32>,
    /// The chain's `strata.lock` as this run uses it (None: upstreams are read at the store's
    /// tags, as before locks).
    pub upstreams: Option<Arc<crate::upstream::Upstreams>>,
    /// Record where each built image's time goes (`--timings`): [`ImageReport::timings`].
    pub timings: bool,
}

impl Default for CascadeOptions {
    fn default() -> Self {
        Self {
            targets: Vec::new(),
            force: Vec::new(),
            jobs: std::thread::available_parallelism().map_or(2, |n| n.get()),
            dry_run: false,
            compression: Compression::Gzip,
            source_date_epoch: 0,
            cache_dir: None,
            cancel: Arc::new(AtomicBool::new(false)),
            run_id: strata_events::now(),
            keys: BTreeMap::new(),
            secrets: BTreeMap::new(),
            pull: strata_remote::PullPolicy::Missing,
            network: strata_build::builder::RunNetwork::default(),
            pids_limit: Some(strata_build::builder::DEFAULT_PIDS_LIMIT),
            upstreams: None,
            timings: false,
        }
    }
}

/// What happened to one image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "kebab-case")]
pub enum Outcome {
    /// Built (or imported); `old` is the previous `:latest`.
    Built {
        /// The previous digest.
        old: Option<String>,
        /// The new digest.
        new: String,
        /// The build number tag given.
        number: u64,
        /// Milliseconds.
        duration_ms: u64,
    },
    /// Its build key matched the stored image: nothing to do.
    UpToDate {
        /// The current digest.
        digest: String,
    },
    /// Would be built (`--dry-run`).
    WouldBuild,
    /// The build failed.
    Failed {
        /// The error, one line (plus a RUN's output tail).
        message: String,
    },
    /// Not built because a parent failed or the run was interrupted.
    Skipped {
        /// Why.
        because: String,
    },
}

/// One image of the run.
#[derive(Debug, Clone, Serialize)]
pub struct ImageReport {
    /// The chain image.
    pub image: String,
    /// Its owner.
    pub owner: String,
    /// Its tier.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tier: Option<String>,
    /// Why it was (or would be) built, in words.
    pub reasons: Vec<String>,
    /// What happened.
    #[serde(flatten)]
    pub outcome: Outcome,
    /// The key id that signed the new image's provenance.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signed_by: Option<String>,
    /// Where a built image's time went (with [`CascadeOptions::timings`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timings: Option<strata_build::timings::ImageTiming>,
}

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// The run's id in the events log.
    pub run_id: String,
    /// Every visited image, in build order.
    pub images: Vec<ImageReport>,
    /// True when interrupted.
    pub interrupted: bool,
}

impl Summary {
    /// True when some image failed or was skipped, or the run was interrupted.
    pub fn failed(&self) -> bool {
        self.interrupted
            || self
                .images
                .iter()
                .any(|r| matches!(r.outcome, Outcome::Failed { .. } | Outcome::Skipped { .. }))
    }
}

/// Progress of the cascade; only the CLI draws it.
#[derive(Debug, Clone)]
pub enum CascadeEvent<'a> {
    /// The image waits for its parents.
    Queued {
        /// The image.
        image: &'a str,
    },
    /// Its build started.
    Started {
        /// The image.
        image: &'a str,
        /// Why.
        reasons: &'a [String],
    },
    /// A build step.
    Step {
        /// The image.
        image: &'a str,
        /// Step number.
        number: usize,
        /// Steps in all.
        total: usize,
        /// The instruction.
        text: &'a str,
    },
    /// A line of RUN output.
    Output {
        /// The image.
        image: &'a str,
        /// The line.
        line: &'a str,
    },
    /// The image is finished.
    Finished {
        /// The image.
        image: &'a str,
        /// What happened.
        outcome: &'a Outcome,
    },
}

/// Receives [`CascadeEvent`]s from every worker thread.
pub trait CascadeSink: Sync {
    /// One event.
    fn event(&self, event: CascadeEvent<'_>);
}

struct StepSink<'a> {
    image: &'a str,
    sink: &'a dyn CascadeSink,
}

impl BuildSink for StepSink<'_> {
    fn event(&self, event: BuildEvent<'_>) {
        match event {
            BuildEvent::Step {
                number,
                total,
                text,
            } => self.sink.event(CascadeEvent::Step {
                image: self.image,
                number,
                total,
                text,
            }),
            BuildEvent::Output(line) => self.sink.event(CascadeEvent::Output {
                image: self.image,
                line,
            }),
            _ => {}
        }
    }
}

/// Build the chain: see the crate docs. Three steps: [`select`] the images to visit, then either
/// show the plan (`dry_run`, from [`strata_chain::plan_forced`]) or run them through the scheduler
/// ([`crate::schedule::run`]), which builds each one whose build key changed.
///
/// ```
/// use strata_cascade::{CascadeEvent, CascadeOptions, CascadeSink, Outcome, build_chain};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let file = |rel: &str, content: &[u8]| -> std::io::Result<()> {
///     let path = dir.path().join(rel);
///     std::fs::create_dir_all(path.parent().unwrap())?;
///     std::fs::write(path, content)
/// };
/// // A bought base imported from a root filesystem tarball, and an image on it made by COPY
/// // (no RUN step, so no sandbox is needed).
/// let mut rootfs = tar::Builder::new(Vec::new());
/// let mut header = tar::Header::new_gnu();
/// header.set_entry_type(tar::EntryType::Regular);
/// header.set_mode(0o644);
/// header.set_size(3);
/// rootfs.append_data(&mut header, "etc/os", &b"v1\n"[..])?;
/// file("rootfs.tar", &rootfs.into_inner()?)?;
/// file("app/Dockerfile", b"FROM acme/base\nCOPY motd /etc/motd\n")?;
/// file("app/motd", b"hello\n")?;
/// file(
///     "strata.toml",
///     b"name = \"acme\"\n[teams.ops]\n[teams.dev]\n\
///       [[image]]\nname = \"base\"\nowner = \"ops\"\nsource = { rootfs = \"rootfs.tar\" }\n\
///       [[image]]\nname = \"app\"\nowner = \"dev\"\ncontext = \"app\"\n",
/// )?;
/// let chain = strata_chain::Chain::load(&dir.path().join("strata.toml"))?;
/// let store = strata_oci::Store::init(&dir.path().join("store"))?;
///
/// /// Progress goes nowhere here; the CLI draws it.
/// struct Quiet;
/// impl CascadeSink for Quiet {
///     fn event(&self, _: CascadeEvent<'_>) {}
/// }
///
/// let options = CascadeOptions::default();
/// let built = |summary: &strata_cascade::Summary| -> Vec<String> {
///     let images = summary.images.iter();
///     images.filter(|r| matches!(r.outcome, Outcome::Built { .. })).map(|r| r.image.clone()).collect()
/// };
/// let first = build_chain(&chain, &store, None, &options, &Quiet)?;
/// assert_eq!(built(&first), ["base", "app"]);
/// // Nothing changed: nothing is built.
/// let again = build_chain(&chain, &store, None, &options, &Quiet)?;
/// assert!(built(&again).is_empty());
/// // A changed context file rebuilds the image it belongs to, not its parent.
/// file("app/motd", b"hello again\n")?;
/// let changed = build_chain(&chain, &store, None, &options, &Quiet)?;
/// assert_eq!(built(&changed), ["app"]);
/// assert_eq!(changed.images[1].reasons, ["context changed"]);
/// # Ok(())
/// # }
/// ```
pub fn build_chain(
    chain: &Chain,
    store: &Store,
    events: Option<&Mutex<EventLog>>,
    options: &CascadeOptions,
    sink: &dyn CascadeSink,
) -> Result<Summary, CascadeError> {
    if options.jobs == 0 {
        return Err(CascadeError::Options("--jobs must be at least 1".into()));
    }
    let selected = select(chain, options)?;
    let stat_path = options
        .cache_dir
        .as_ref()
        .map(|d| d.join("stat-cache.json"));
    let mut resolver = InputsResolver::new(chain, store, stat_path);
    if let Some(upstreams) = &options.upstreams {
        resolver = resolver.with_upstreams(upstreams);
    }
    if options.dry_run {
        return dry_run(chain, &resolver, events, options, &selected);
    }

    let Some(_build_lock) = wait_for_build_lock(store, options)? else {
        return Ok(Summary {
            run_id: options.run_id.clone(),
            images: Vec::new(),
            interrupted: true,
        });
    };
    // Under the build lock no other build runs: a build recorded as started and never finished
    // was killed; say so in the log.
    if let Some(events) = events {
        let log = events.lock().unwrap_or_else(|e| e.into_inner());
        match log.mark_interrupted() {
            Ok(marked) => {
                for event in marked {
                    tracing::warn!(image = event.image, "an earlier build was interrupted");
                }
            }
            Err(e) => tracing::warn!("cannot mark interrupted builds: {e}"),
        }
    }
    let rows = BuildRows::new(events);
    let graph = chain.graph();
    let schedule = Schedule {
        order: selected,
        names: chain.file.images.iter().map(|i| i.name.clone()).collect(),
        parents: (0..chain.file.images.len())
            .map(|i| graph.parents(i))
            .collect(),
    };
    let builder = ChainBuilder {
        chain,
        store,
        resolver: &resolver,
        puller: crate::pull::BasePuller::new(options.pull),
        events,
        rows: &rows,
        options,
        sink,
    };
    // The run's tags reach index.json a few times a second, not one write per tag (each write
    // is the whole index: per image, that made a large chain's build quadratic).
    let batch = store.batch_index_writes();
    let images = crate::schedule::run(&schedule, options.jobs, &options.cancel, &builder, sink)?;
    rows.flush();
    batch.finish()?;
    resolver.save();
    Ok(Summary {
        run_id: options.run_id.clone(),
        images,
        interrupted: options.cancel.load(Ordering::SeqCst),
    })
}

/// The images a run visits, in build order: the whole chain, or the targets and everything they
/// need (not what is above them). Errors name a target or forced image not in the chain.
pub fn select(chain: &Chain, options: &CascadeOptions) -> Result<Vec<usize>, CascadeError> {
    for name in options.targets.iter().chain(&options.force) {
        if chain.index(name).is_none() {
            return Err(CascadeError::UnknownImage(name.clone()));
        }
    }
    let graph = chain.graph();
    if options.targets.is_empty() {
        return Ok(graph.order().to_vec());
    }
    let mut marked = vec![false; chain.file.images.len()];
    let mut stack: Vec<usize> = options
        .targets
        .iter()
        .filter_map(|t| chain.index(t))
        .collect();
    while let Some(i) = stack.pop() {
        if !std::mem::replace(&mut marked[i], true) {
            stack.extend(graph.parents(i));
        }
    }
    Ok(graph
        .order()
        .iter()
        .copied()
        .filter(|&i| marked[i])
        .collect())
}

/// `--dry-run`: the planner's answer for the selected images, from the store's statuses.
fn dry_run(
    chain: &Chain,
    resolver: &InputsResolver<'_>,
    events: Option<&Mutex<EventLog>>,
    options: &CascadeOptions,
    selected: &[usize],
) -> Result<Summary, CascadeError> {
    let statuses = chain.statuses(&StoreStatus::new(resolver, events))?;
    let plan = strata_chain::plan_forced(chain, &options.force, &statuses)?;
    let mut images = Vec::new();
    for &i in selected {
        let image = &chain.file.images[i];
        // The selection holds every ancestor of what it holds, so no planned parent is missing.
        let step = plan.steps.iter().find(|s| s.image == image.name);
        images.push(ImageReport {
            image: image.name.clone(),
            owner: image.owner.clone(),
            tier: image.tier.clone(),
            reasons: step
                .map(|s| s.reasons.iter().map(reason_text).collect())
                .unwrap_or_default(),
            outcome: match step {
                Some(_) => Outcome::WouldBuild,
                None => Outcome::UpToDate {
                    digest: resolver.stored(i)?.map(|(d, _)| d).unwrap_or_default(),
                },
            },
            signed_by: None,
            timings: None,
        });
    }
    Ok(Summary {
        run_id: options.run_id.clone(),
        images,
        interrupted: false,
    })
}

/// A plan reason in a few words. A previous failure is named, not repeated: its message is in the
/// log, and repeating it made each failure's reason contain the last one's.
fn reason_text(reason: &strata_chain::Reason) -> String {
    match reason {
        strata_chain::Reason::Failed { .. } => "last build failed".to_string(),
        other => other.to_string(),
    }
}

/// The cascade's [`ImageBuilder`]: pulls bases, checks the build key, builds, tests, signs.
struct ChainBuilder<'a> {
    chain: &'a Chain,
    store: &'a Store,
    resolver: &'a InputsResolver<'a>,
    puller: crate::pull::BasePuller,
    events: Option<&'a Mutex<EventLog>>,
    /// Where the build rows go (up-to-date ones batched).
    rows: &'a BuildRows<'a>,
    options: &'a CascadeOptions,
    sink: &'a dyn CascadeSink,
}

impl ImageBuilder for ChainBuilder<'_> {
    fn build(&self, i: usize, parents_rebuilt: &[String]) -> ImageReport {
        let force = self.options.force.contains(&self.chain.file.images[i].name);
        build_one(
            self.chain,
            self.store,
            self.resolver,
            &self.puller,
            self.events,
            self.rows,
            self.options,
            self.sink,
            i,
            force,
            parents_rebuilt,
        )
    }

    fn skip(&self, i: usize, because: String) -> ImageReport {
        let image = &self.chain.file.images[i];
        let report = ImageReport {
            image: image.name.clone(),
            owner: image.owner.clone(),
            tier: image.tier.clone(),
            reasons: Vec::new(),
            outcome: Outcome::Skipped { because },
            signed_by: None,
            timings: None,
        };
        self.rows.record(self.options, &report, None, None);
        report
    }
}

/// Build (or find up to date) one image.
#[allow(clippy::too_many_arguments)]
fn build_one(
    chain: &Chain,
    store: &Store,
    resolver: &InputsResolver<'_>,
    puller: &crate::pull::BasePuller,
    events: Option<&Mutex<EventLog>>,
    rows: &BuildRows<'_>,
    options: &CascadeOptions,
    sink: &dyn CascadeSink,
    i: usize,
    force: bool,
    parent_rebuilt: &[String],
) -> ImageReport {
    let image = &chain.file.images[i];
    let mut report = ImageReport {
        image: image.name.clone(),
        owner: image.owner.clone(),
        tier: image.tier.clone(),
        reasons: Vec::new(),
        outcome: Outcome::WouldBuild,
        signed_by: None,
        timings: None,
    };
    let started = Instant::now();
    let timings = options
        .timings
        .then(|| Arc::new(strata_build::timings::Timings::new()));
    let mut built = false;
    // The build key of the inputs this run saw, for the log.
    let mut key = None;
    let started_utc = chrono::Utc::now();
    let started_at = strata_events::now();
    let result = (|| -> Result<Outcome, ImageError> {
        check_platform(image.platform.as_deref())?;
        // External bases first: their digests are part of the build key.
        let upstreams = options.upstreams.as_deref();
        for reference in puller.pull_for(chain, store, i, upstreams, events)? {
            sink.event(CascadeEvent::Output {
                image: &image.name,
                line: &format!("pulled {reference}"),
            });
        }
        // Upstreams met for the first time are locked at what was just pulled (or found).
        if let Some(upstreams) = upstreams {
            upstreams.record_image(chain, store, i);
        }
        // The status, the stored image and the current inputs, each read once: the build and
        // the events log reuse them (a no-op cascade did each twice per image).
        let checked = StoreStatus::new(resolver, events).check(chain, i)?;
        let status = checked.status;
        let old = checked.stored.map(|(d, _)| d);
        if let Some(current) = &checked.current {
            key = Some(current.inputs.key());
        }
        let mut checked_inputs = checked.current;
        let mut resolve = || match checked_inputs.take() {
            Some(current) => Ok(current),
            None => resolver.resolve(i),
        };
        if force {
            report.reasons.push("forced".into());
        }
        match &status {
            Status::UpToDate if !force => {
                return Ok(Outcome::UpToDate {
                    digest: old.unwrap_or_default(),
                });
            }
            Status::UpToDate => {}
            Status::Stale { reasons } => {
                for r in reasons {
                    report.reasons.push(match r {
                        strata_chain::StaleReason::ParentChanged { parent }
                            if parent_rebuilt.contains(parent) =>
                        {
                            format!("parent {parent} rebuilt")
                        }
                        other => other.to_string(),
                    });
                }
            }
            other => report.reasons.push(status_reason(other)),
        }
        // A chain that requires signatures fails before building, not after tagging.
        let signing_key = crate::sign::key_for(chain, i, &options.keys)?;
        sink.event(CascadeEvent::Started {
            image: &image.name,
            reasons: &report.reasons,
        });
        // Recorded before anything is built, so a build killed from here on leaves a trace.
        if let Some(events) = events {
            let started = Event {
                kind: Some(Kind::Build),
                image: image.name.clone(),
                team: Some(image.owner.clone()),
                user: Some(strata_events::current_user()),
                run_id: Some(options.run_id.clone()),
                reason: (!report.reasons.is_empty()).then(|| report.reasons.join(", ")),
                result: "started".into(),
                ..Event::default()
            };
            let log = events.lock().unwrap_or_else(|e| e.into_inner());
            if let Err(e) = log.record(&started) {
                tracing::warn!("cannot record the start of {}: {e}", image.name);
            }
        }
        let mut base = None;
        let mut resolved = None;
        let number = refs::next_build_number(store, chain, i)?;
        let mut tags = vec![
            refs::tagged(chain, i, "latest"),
            refs::tagged(chain, i, &number.to_string()),
        ];
        tags.extend(image.tags.iter().map(|t| refs::tagged(chain, i, t)));
        // With tier tests the image is built untagged and tagged only once they pass (gate.rs);
        // the lease keeps gc off the untagged blobs meanwhile.
        let gated = image.test.is_some();
        let _lease = gated.then(|| store.lease()).transpose()?;
        let final_tags = std::mem::take(&mut tags);
        if !gated {
            tags.clone_from(&final_tags);
        }
        let digest = match &image.build {
            Build::Image {
                reference,
                signed_by,
            } => {
                // A vendor signature is checked before the image enters the store, and again
                // (it may have come in unchecked, by a FROM line) before it is tagged; the
                // signature that vouched is kept in the store, for `strata verify`.
                let evidence = match signed_by {
                    Some(signed_by) => Some(crate::vendor::check(
                        &|| registry_client(reference),
                        reference,
                        signed_by,
                        chain.file.relative(&signed_by.key),
                    )?),
                    None => None,
                };
                // A pinned bought base is pulled on demand; the pulled digest must be the pin.
                let descriptor = match store.refs().resolve(reference) {
                    Ok(descriptor) => descriptor,
                    Err(_) => pull_pinned(store, reference)?,
                };
                if let Some(evidence) = &evidence {
                    crate::vendor::keep(store, &descriptor, reference, evidence)?;
                }
                for tag in &tags {
                    store.refs().tag(tag, &descriptor)?;
                }
                descriptor.digest().to_string()
            }
            Build::Rootfs { path } => {
                let current = resolve()?;
                key = Some(current.inputs.key());
                resolved = Some(current.clone());
                if let Some(t) = &timings {
                    t.step(1, &format!("import {}", path.display()));
                }
                let import = || {
                    import_rootfs(
                        store,
                        path,
                        &ImportOptions {
                            tags,
                            compression: options.compression,
                            source_date_epoch: options.source_date_epoch,
                            annotations: annotations(chain, i, &current.inputs),
                        },
                    )
                };
                let result = strata_build::timings::with_current(timings.clone(), import)?;
                if let Some(t) = &timings {
                    t.end_step();
                }
                result.digest.to_string()
            }
            Build::Dockerfile {
                context,
                dockerfile,
            } => {
                let current = resolve()?;
                key = Some(current.inputs.key());
                let mut build = BuildOptions::new(context);
                build.dockerfile = Some(dockerfile.clone());
                build.build_args = image.args.clone();
                build.tags = tags;
                build.squash = image.squash;
                build.compression = options.compression;
                build.source_date_epoch = options.source_date_epoch;
                build.cache_dir = options.cache_dir.clone();
                build.cancel = options.cancel.clone();
                build.secrets = options.secrets.clone();
                build.network = options.network;
                build.pids_limit = options.pids_limit;
                build.base_overrides = current.overrides.clone();
                build.annotations = annotations(chain, i, &current.inputs);
                build.stat_cache = Some(resolver.stat_cache());
                build.timings = timings.clone();
                let step_sink = StepSink {
                    image: &image.name,
                    sink,
                };
                let result = strata_build::builder::build(store, &build, &step_sink)?;
                base = result.base.clone();
                resolved = Some(current);
                result.digest.to_string()
            }
        };
        built = true;
        if let Some(test) = &image.test {
            if let Some(t) = &timings {
                t.step(0, "(tier tests)");
            }
            let _timed = TimedPhase::start(timings.as_deref(), strata_build::timings::Phase::Test);
            crate::gate::test_then_tag(
                store,
                chain,
                i,
                &digest,
                test,
                &final_tags,
                events,
                options,
            )?;
        }
        if let Some(key) = &signing_key {
            let built = crate::sign::Built {
                digest: &digest,
                base,
                inputs: resolved.as_ref(),
                started: started_utc,
                run_id: &options.run_id,
            };
            if let Some(t) = &timings {
                t.step(0, "(sign)");
            }
            let _timed = TimedPhase::start(timings.as_deref(), strata_build::timings::Phase::Sign);
            report.signed_by = Some(crate::sign::sign(store, chain, i, key, &built, events)?);
        }
        Ok(Outcome::Built {
            old,
            new: digest,
            number,
            duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        })
    })();
    if built && let Some(t) = &timings {
        report.timings = Some(t.report());
    }
    report.outcome = match result {
        Ok(outcome) => outcome,
        Err(error) => Outcome::Failed {
            message: strata_oci::report(&error),
        },
    };
    let key = key.or_else(|| resolver.resolve(i).ok().map(|r| r.inputs.key()));
    rows.record(
        options,
        &report,
        key,
        Some((started_at, started.elapsed().as_millis())),
    );
    report
}

/// Adds the time from its making to its drop to a phase of an image's timings.
struct TimedPhase<'a>(
    Option<&'a strata_build::timings::Timings>,
    strata_build::timings::Phase,
    Instant,
);

impl<'a> TimedPhase<'a> {
    fn start(
        timings: Option<&'a strata_build::timings::Timings>,
        phase: strata_build::timings::Phase,
    ) -> Self {
        TimedPhase(timings, phase, Instant::now())
    }
}

impl Drop for TimedPhase<'_> {
    fn drop(&mut self) {
        if let Some(t) = self.0 {
            t.add(self.1, self.2.elapsed());
        }
    }
}

/// One cascade at a time per store: a second `strata build` waits here (saying so once), then
/// finds what the first one built up to date, and never takes the same build number. `None`
/// when interrupted while waiting.
fn wait_for_build_lock(
    store: &Store,
    options: &CascadeOptions,
) -> Result<Option<strata_oci::NamedLock>, CascadeError> {
    let mut said = false;
    loop {
        if let Some(lock) = store.try_lock_named("build")? {
            return Ok(Some(lock));
        }
        if options.cancel.load(std::sync::atomic::Ordering::SeqCst) {
            return Ok(None);
        }
        if !std::mem::replace(&mut said, true) {
            tracing::warn!("another strata build is running on this store; waiting for it");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Fetch a pinned image into the store with the registry client (credentials from the Docker
/// config; plain HTTP only for loopback registries).
fn pull_pinned(store: &Store, reference: &str) -> Result<strata_oci::Descriptor, ImageError> {
    let client = registry_client(reference)?;
    strata_remote::pull_pinned(&client, store, reference).map_err(|source| ImageError::PullPinned {
        reference: reference.to_string(),
        source: Box::new(source),
    })
}

/// The registry client for a bought image (credentials from the Docker config; plain HTTP only
/// for loopback registries).
fn registry_client(reference: &str) -> Result<strata_remote::Client, ImageError> {
    strata_remote::Client::new(strata_remote::ClientOptions::default()).map_err(|source| {
        ImageError::Client {
            reference: reference.to_string(),
            source: Box::new(source),
        }
    })
}

fn annotations(
    chain: &Chain,
    i: usize,
    inputs: &crate::inputs::BuildInputs,
) -> BTreeMap<String, String> {
    let image = &chain.file.images[i];
    BTreeMap::from([
        (ANNOTATION_BUILD_KEY.to_string(), inputs.key()),
        (
            ANNOTATION_BUILD_INPUTS.to_string(),
            serde_json::to_string(inputs).expect("inputs serialize"),
        ),
        (
            ANNOTATION_CHAIN_IMAGE.to_string(),
            format!("{}/{}", chain.file.name, image.name),
        ),
        (ANNOTATION_OWNER.to_string(), image.owner.clone()),
    ])
}

/// strata builds for the machine it runs on: an image whose `platform` names another one fails
/// rather than being built for this machine under the other's name (cross-building needs CPU
/// emulation, which strata does not do).
fn check_platform(platform: Option<&str>) -> Result<(), ImageError> {
    let Some(platform) = platform else {
        return Ok(());
    };
    if strata_oci::image::is_host_platform(platform) {
        return Ok(());
    }
    Err(ImageError::Platform {
        platform: platform.to_string(),
        host: strata_oci::image::host_architecture().to_string(),
    })
}

/// Why an image is rebuilt, in a few words. A previous failure is named, not repeated: its
/// message is in the log, and repeating it made each failure's reason contain the last one's.
fn status_reason(status: &Status) -> String {
    match status {
        Status::Failed { .. } => "last build failed".to_string(),
        other => other.to_string(),
    }
}

/// How long an up-to-date image's row may wait in memory before it is written.
const ROWS_WAIT: Duration = Duration::from_millis(500);

/// Where the cascade's build rows go. A build's rows (its start, its end, a failure, a skip) are
/// written at once, as a crash must find them; an up-to-date image's row waits in memory and is
/// written with the others in one transaction ([`EventLog::record_all`]), at most [`ROWS_WAIT`]
/// later or when the run ends (or unwinds: on drop). One write per up-to-date image was a large
/// no-op's largest cost; a crash now loses at most the last half second of "found up to date"
/// rows, which the next run records again.
struct BuildRows<'a> {
    events: Option<&'a Mutex<EventLog>>,
    /// Rows waiting, and when the oldest of them was queued.
    waiting: Mutex<(Vec<Event>, Option<Instant>)>,
}

impl<'a> BuildRows<'a> {
    fn new(events: Option<&'a Mutex<EventLog>>) -> Self {
        BuildRows {
            events,
            waiting: Mutex::new((Vec::new(), None)),
        }
    }

    /// Record what happened to an image (its key and its start time and duration, when known).
    fn record(
        &self,
        options: &CascadeOptions,
        report: &ImageReport,
        key: Option<String>,
        timing: Option<(String, u128)>,
    ) {
        let Some(events) = self.events else { return };
        let Some(event) = build_event(options, report, key, timing) else {
            return;
        };
        if !matches!(report.outcome, Outcome::UpToDate { .. }) {
            let log = events.lock().unwrap_or_else(|e| e.into_inner());
            if let Err(e) = log.record(&event) {
                tracing::warn!("cannot record the build of {}: {e}", report.image);
            }
            return;
        }
        let due = {
            let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
            let oldest = *waiting.1.get_or_insert_with(Instant::now);
            waiting.0.push(event);
            oldest.elapsed() >= ROWS_WAIT
        };
        if due {
            self.flush();
        }
    }

    /// Write the waiting rows.
    fn flush(&self) {
        let Some(events) = self.events else { return };
        let rows = {
            let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
            waiting.1 = None;
            std::mem::take(&mut waiting.0)
        };
        if rows.is_empty() {
            return;
        }
        let log = events.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = log.record_all(&rows) {
            tracing::warn!("cannot record {} up-to-date images: {e}", rows.len());
        }
    }
}

impl Drop for BuildRows<'_> {
    fn drop(&mut self) {
        self.flush();
    }
}

/// The log row of an image's outcome (None for a dry run's "would build").
fn build_event(
    options: &CascadeOptions,
    report: &ImageReport,
    key: Option<String>,
    timing: Option<(String, u128)>,
) -> Option<Event> {
    let (result, old, new, reason) = match &report.outcome {
        Outcome::Built { old, new, .. } => ("ok", old.clone(), Some(new.clone()), None),
        Outcome::UpToDate { digest } => (
            "up-to-date",
            Some(digest.clone()),
            Some(digest.clone()),
            None,
        ),
        Outcome::WouldBuild => return None,
        Outcome::Failed { message } => ("failed", None, None, Some(message.clone())),
        Outcome::Skipped { because } => ("skipped", None, None, Some(because.clone())),
    };
    let cause = report
        .reasons
        .iter()
        .find_map(|r| {
            r.strip_prefix("parent ")
                .and_then(|r| r.strip_suffix(" rebuilt"))
        })
        .map(str::to_string);
    let why = if report.reasons.is_empty() {
        reason
    } else {
        let joined = report.reasons.join(", ");
        Some(match reason {
            Some(r) => format!("{joined}: {r}"),
            None => joined,
        })
    };
    let (time, duration_ms) = match timing {
        Some((start, ms)) => (start, Some(ms)),
        None => (String::new(), None),
    };
    Some(Event {
        time,
        kind: Some(Kind::Build),
        image: report.image.clone(),
        team: Some(report.owner.clone()),
        user: Some(strata_events::current_user()),
        old_digest: old,
        new_digest: new,
        build_key: key,
        reason: why,
        cause,
        run_id: Some(options.run_id.clone()),
        duration_ms: duration_ms.map(|d| i64::try_from(d).unwrap_or(i64::MAX)),
        result: result.to_string(),
        // The failure itself, apart from why the build ran: `status` reads it back.
        detail: match &report.outcome {
            Outcome::Failed { message } => Some(serde_json::json!({ "error": message })),
            _ => None,
        },
        ..Event::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_this_machines_platform_is_built() {
        let host = format!("linux/{}", strata_oci::image::host_architecture());
        assert!(check_platform(None).is_ok());
        assert!(check_platform(Some(&host)).is_ok());
        assert!(check_platform(Some(&format!("{host}/v8"))).is_ok());
        let other = if host.ends_with("amd64") {
            "linux/arm64"
        } else {
            "linux/amd64"
        };
        let err = check_platform(Some(other)).unwrap_err().to_string();
        assert!(err.contains(other) && err.contains(&host), "{err}");
        assert!(check_platform(Some("windows/amd64")).is_err());
    }
}
