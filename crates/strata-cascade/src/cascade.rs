//! The scheduler: visit the selected images in build order, rebuild the ones whose build key
//! changed, run independent images in parallel, stop only the descendants of a failure.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Instant;

use serde::Serialize;
use strata_build::builder::{BuildEvent, BuildOptions, BuildSink, Squash};
use strata_build::import::{ImportOptions, import_rootfs};
use strata_chain::{Build, Chain, Status, StatusSource};
use strata_events::{Event, EventLog, Kind};
use strata_oci::{Compression, Store};

use crate::error::CascadeError;
use crate::inputs::{
    ANNOTATION_BUILD_INPUTS, ANNOTATION_BUILD_KEY, ANNOTATION_CHAIN_IMAGE, ANNOTATION_OWNER,
    InputsResolver,
};
use crate::refs;
use crate::status::StoreStatus;

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
    pub pull: strata_registry::PullPolicy,
    /// The network of RUN steps without `--network` (`--network`): their own with outbound
    /// access (the default), the host's, or none.
    pub network: strata_build::builder::RunNetwork,
    /// The most processes a RUN step may have at once (`--pids-limit`); None: unlimited.
    pub pids_limit: Option<u32>,
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
            pull: strata_registry::PullPolicy::Missing,
            network: strata_build::builder::RunNetwork::default(),
            pids_limit: Some(strata_build::builder::DEFAULT_PIDS_LIMIT),
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

/// Build the chain: see the crate docs.
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
    for name in options.targets.iter().chain(&options.force) {
        if chain.index(name).is_none() {
            return Err(CascadeError::UnknownImage(name.clone()));
        }
    }
    let stat_path = options
        .cache_dir
        .as_ref()
        .map(|d| d.join("stat-cache.json"));
    let resolver = InputsResolver::new(chain, store, stat_path);
    let graph = chain.graph();
    let n = chain.file.images.len();

    // The images to visit: the whole chain, or the targets and everything they need.
    let selected: Vec<usize> = if options.targets.is_empty() {
        graph.order().to_vec()
    } else {
        let mut marked = vec![false; n];
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
        graph
            .order()
            .iter()
            .copied()
            .filter(|&i| marked[i])
            .collect()
    };
    let forced: Vec<bool> = (0..n)
        .map(|i| options.force.contains(&chain.file.images[i].name))
        .collect();

    if options.dry_run {
        let status = StoreStatus::new(&resolver, events);
        let statuses = chain.statuses(&status)?;
        let mut rebuilt = vec![false; n];
        let mut images = Vec::new();
        for &i in &selected {
            let mut reasons: Vec<String> = Vec::new();
            if forced[i] {
                reasons.push("forced".into());
            }
            match statuses.get(i) {
                Status::UpToDate => {}
                other => reasons.push(status_reason(other)),
            }
            for p in graph.parents(i) {
                if rebuilt[p] {
                    reasons.push(format!("parent {} rebuilt", chain.file.images[p].name));
                }
            }
            rebuilt[i] = !reasons.is_empty();
            let image = &chain.file.images[i];
            images.push(ImageReport {
                image: image.name.clone(),
                owner: image.owner.clone(),
                tier: image.tier.clone(),
                outcome: if rebuilt[i] {
                    Outcome::WouldBuild
                } else {
                    Outcome::UpToDate {
                        digest: resolver.stored(i)?.map(|(d, _)| d).unwrap_or_default(),
                    }
                },
                reasons,
                signed_by: None,
            });
        }
        return Ok(Summary {
            run_id: options.run_id.clone(),
            images,
            interrupted: false,
        });
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
    let puller = crate::pull::BasePuller::new(options.pull);
    let in_selection: Vec<bool> = (0..n).map(|i| selected.contains(&i)).collect();
    let mut outcomes: Vec<Option<ImageReport>> = vec![None; n];
    let mut running = 0usize;
    let mut pending: Vec<usize> = selected.clone();
    let mut rebuilt = vec![false; n];
    for &i in &pending {
        sink.event(CascadeEvent::Queued {
            image: &chain.file.images[i].name,
        });
    }
    let (tx, rx) = mpsc::channel::<(usize, ImageReport)>();
    std::thread::scope(|scope| -> Result<(), CascadeError> {
        loop {
            // Start every image whose selected parents are finished, up to --jobs.
            let mut k = 0;
            while k < pending.len() && running < options.jobs {
                let i = pending[k];
                let parents: Vec<usize> = graph
                    .parents(i)
                    .into_iter()
                    .filter(|&p| in_selection[p])
                    .collect();
                if parents.iter().any(|&p| outcomes[p].is_none()) {
                    k += 1;
                    continue;
                }
                pending.remove(k);
                let image = &chain.file.images[i];
                let blocked = parents.iter().find_map(|&p| {
                    let r = outcomes[p].as_ref().expect("finished");
                    match &r.outcome {
                        Outcome::Failed { .. } => Some(format!("parent {} failed", r.image)),
                        Outcome::Skipped { .. } => Some(format!("parent {} was skipped", r.image)),
                        _ => None,
                    }
                });
                let interrupted = options.cancel.load(Ordering::SeqCst);
                if blocked.is_some() || interrupted {
                    let because = blocked.unwrap_or_else(|| "interrupted".into());
                    let report = ImageReport {
                        image: image.name.clone(),
                        owner: image.owner.clone(),
                        tier: image.tier.clone(),
                        reasons: Vec::new(),
                        outcome: Outcome::Skipped { because },
                        signed_by: None,
                    };
                    record(events, options, &report, None, None);
                    sink.event(CascadeEvent::Finished {
                        image: &image.name,
                        outcome: &report.outcome,
                    });
                    outcomes[i] = Some(report);
                    continue;
                }
                let parent_rebuilt: Vec<String> = parents
                    .iter()
                    .filter(|&&p| rebuilt[p])
                    .map(|&p| chain.file.images[p].name.clone())
                    .collect();
                let tx = tx.clone();
                let resolver = &resolver;
                let puller = &puller;
                running += 1;
                let force = forced[i];
                scope.spawn(move || {
                    let report = build_one(
                        chain,
                        store,
                        resolver,
                        puller,
                        events,
                        options,
                        sink,
                        i,
                        force,
                        &parent_rebuilt,
                    );
                    let _ = tx.send((i, report));
                });
            }
            if running == 0 && pending.is_empty() {
                break;
            }
            if running == 0 {
                // Nothing can start: cannot happen with an acyclic graph, guard anyway.
                return Err(CascadeError::Options("the build order is stuck".into()));
            }
            let (i, report) = rx.recv().expect("a worker reports");
            running -= 1;
            rebuilt[i] = matches!(report.outcome, Outcome::Built { .. });
            sink.event(CascadeEvent::Finished {
                image: &chain.file.images[i].name,
                outcome: &report.outcome,
            });
            outcomes[i] = Some(report);
        }
        Ok(())
    })?;
    resolver.save();
    let images: Vec<ImageReport> = selected
        .iter()
        .filter_map(|&i| outcomes[i].take())
        .collect();
    Ok(Summary {
        run_id: options.run_id.clone(),
        images,
        interrupted: options.cancel.load(Ordering::SeqCst),
    })
}

/// Build (or find up to date) one image.
#[allow(clippy::too_many_arguments)]
fn build_one(
    chain: &Chain,
    store: &Store,
    resolver: &InputsResolver<'_>,
    puller: &crate::pull::BasePuller,
    events: Option<&Mutex<EventLog>>,
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
    };
    let started = Instant::now();
    let started_utc = chrono::Utc::now();
    let started_at = strata_events::now();
    let result = (|| -> Result<Outcome, String> {
        check_platform(image.platform.as_deref())?;
        // External bases first: their digests are part of the build key.
        for reference in puller.pull_for(chain, store, i, events)? {
            sink.event(CascadeEvent::Output {
                image: &image.name,
                line: &format!("pulled {reference}"),
            });
        }
        let status = StoreStatus::new(resolver, events)
            .status(chain, i)
            .map_err(|e| e.to_string())?;
        let stored = resolver.stored(i).map_err(|e| e.to_string())?;
        let old = stored.as_ref().map(|(d, _)| d.clone());
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
        let number = refs::next_build_number(store, chain, i).map_err(|e| e.to_string())?;
        let mut tags = vec![
            refs::tagged(chain, i, "latest"),
            refs::tagged(chain, i, &number.to_string()),
        ];
        tags.extend(image.tags.iter().map(|t| refs::tagged(chain, i, t)));
        // With tier tests the image is built untagged and tagged only once they pass (gate.rs);
        // the lease keeps gc off the untagged blobs meanwhile.
        let gated = image.test.is_some();
        let _lease = gated
            .then(|| store.lease())
            .transpose()
            .map_err(|e| e.to_string())?;
        let final_tags = std::mem::take(&mut tags);
        if !gated {
            tags.clone_from(&final_tags);
        }
        let digest = match &image.build {
            Build::Image { reference } => {
                // A pinned bought base is pulled on demand; the pulled digest must be the pin.
                let descriptor = match store.refs().resolve(reference) {
                    Ok(descriptor) => descriptor,
                    Err(_) => pull_pinned(store, reference)?,
                };
                for tag in &tags {
                    store
                        .refs()
                        .tag(tag, &descriptor)
                        .map_err(|e| e.to_string())?;
                }
                descriptor.digest().to_string()
            }
            Build::Rootfs { path } => {
                let current = resolver.resolve(i).map_err(|e| e.to_string())?;
                resolved = Some(current.clone());
                let result = import_rootfs(
                    store,
                    path,
                    &ImportOptions {
                        tags,
                        compression: options.compression,
                        source_date_epoch: options.source_date_epoch,
                        annotations: annotations(chain, i, &current.inputs),
                    },
                )
                .map_err(|e| e.to_string())?;
                result.digest.to_string()
            }
            Build::Dockerfile {
                context,
                dockerfile,
            } => {
                let current = resolver.resolve(i).map_err(|e| e.to_string())?;
                let mut build = BuildOptions::new(context);
                build.dockerfile = Some(dockerfile.clone());
                build.build_args = image.args.clone();
                build.tags = tags;
                build.squash = match image.squash {
                    strata_chain::Squash::None => Squash::None,
                    strata_chain::Squash::Own => Squash::Own,
                    strata_chain::Squash::All => Squash::All,
                };
                build.compression = options.compression;
                build.source_date_epoch = options.source_date_epoch;
                build.cache_dir = options.cache_dir.clone();
                build.cancel = options.cancel.clone();
                build.secrets = options.secrets.clone();
                build.network = options.network;
                build.pids_limit = options.pids_limit;
                build.base_overrides = current.overrides.clone();
                build.annotations = annotations(chain, i, &current.inputs);
                let step_sink = StepSink {
                    image: &image.name,
                    sink,
                };
                let result = strata_build::builder::build(store, &build, &step_sink)
                    .map_err(|e| e.to_string())?;
                base = result.base.clone();
                resolved = Some(current);
                result.digest.to_string()
            }
        };
        if let Some(test) = &image.test {
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
            report.signed_by = Some(crate::sign::sign(store, chain, i, key, &built, events)?);
        }
        Ok(Outcome::Built {
            old,
            new: digest,
            number,
            duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        })
    })();
    report.outcome = match result {
        Ok(outcome) => outcome,
        Err(message) => Outcome::Failed { message },
    };
    let key = resolver.resolve(i).ok().map(|r| r.inputs.key());
    record(
        events,
        options,
        &report,
        key,
        Some((started_at, started.elapsed().as_millis())),
    );
    report
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
fn pull_pinned(store: &Store, reference: &str) -> Result<strata_oci::Descriptor, String> {
    let client = strata_registry::Client::new(strata_registry::ClientOptions::default())
        .map_err(|e| format!("bought image {reference}: {e}"))?;
    strata_registry::pull_pinned(&client, store, reference)
        .map_err(|e| format!("bought image {reference}: pulling it failed: {e}"))
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
fn check_platform(platform: Option<&str>) -> Result<(), String> {
    let Some(platform) = platform else {
        return Ok(());
    };
    if strata_oci::image::is_host_platform(platform) {
        return Ok(());
    }
    let host = strata_oci::image::host_architecture();
    Err(format!(
        "platform {platform}: strata builds for this machine's platform (linux/{host}) only; \
         building for another needs CPU emulation, which strata does not do"
    ))
}

/// Why an image is rebuilt, in a few words. A previous failure is named, not repeated: its
/// message is in the log, and repeating it made each failure's reason contain the last one's.
fn status_reason(status: &Status) -> String {
    match status {
        Status::Failed { .. } => "last build failed".to_string(),
        other => other.to_string(),
    }
}

fn record(
    events: Option<&Mutex<EventLog>>,
    options: &CascadeOptions,
    report: &ImageReport,
    key: Option<String>,
    timing: Option<(String, u128)>,
) {
    let Some(events) = events else { return };
    let (result, old, new, reason) = match &report.outcome {
        Outcome::Built { old, new, .. } => ("ok", old.clone(), Some(new.clone()), None),
        Outcome::UpToDate { digest } => (
            "up-to-date",
            Some(digest.clone()),
            Some(digest.clone()),
            None,
        ),
        Outcome::WouldBuild => return,
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
    let event = Event {
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
    };
    let log = events.lock().unwrap_or_else(|e| e.into_inner());
    if let Err(e) = log.record(&event) {
        tracing::warn!("cannot record the build of {}: {e}", report.image);
    }
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
        let err = check_platform(Some(other)).unwrap_err();
        assert!(err.contains(other) && err.contains(&host), "{err}");
        assert!(check_platform(Some("windows/amd64")).is_err());
    }
}
