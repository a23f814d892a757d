//! `strata build`: rebuild what changed in the chain, and everything above it, in order, in parallel.

use crate::out::errln;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, bail};
use strata_cascade::{
    CascadeEvent, CascadeOptions, CascadeSink, ImageReport, LockMode, Outcome, Summary, Upstreams,
    build_chain,
};
use strata_chain::Lock;

use super::graph::{load_chain_git, write_stdout};
use crate::global::GlobalArgs;

/// Arguments of `strata build`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Build these images and what they need (default: the whole chain).
    images: Vec<String>,
    /// Images built at once (default: the number of cores).
    #[arg(long, short = 'j')]
    jobs: Option<usize>,
    /// Print what would be built, and why; build nothing.
    #[arg(long)]
    dry_run: bool,
    /// Rebuild this image even if it is up to date (repeatable).
    #[arg(long, value_name = "IMAGE")]
    force: Vec<String>,
    /// Layer compression.
    #[arg(long, value_parser = ["gzip", "zstd", "none"], default_value = "gzip")]
    compression: String,
    /// Do not reuse cached steps.
    #[arg(long)]
    no_cache: bool,
    /// Sign the images of TEAM with this private key (repeatable: `--key operations=ops.key`);
    /// a team without one uses `STRATA_KEY_<TEAM>` (a PEM or a file path).
    #[arg(long, value_name = "TEAM=FILE")]
    key: Vec<String>,
    /// A secret for `RUN --mount=type=secret` in any image (repeatable): `id=ID,src=FILE`,
    /// `id=ID,env=VAR`, or `id=ID` (the variable ID if set, else the file ID).
    #[arg(long, value_name = "id=ID,src=FILE|env=VAR")]
    secret: Vec<String>,
    #[command(flatten)]
    sandbox: super::sandbox_args::SandboxArgs,
    /// When to pull the external images FROM lines name: `missing` (not in the store),
    /// `always` (a moved tag makes the images on it stale), `never`.
    #[arg(long, value_parser = ["missing", "always", "never"], default_value = "missing")]
    pull: String,
    /// Refuse to build unless strata.lock locks exactly the upstreams the Dockerfiles name; never
    /// change the lock (for CI).
    #[arg(long)]
    locked: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
    /// Time each built image's steps: the RUN commands' own time and strata's phases (snapshot,
    /// diff, tar, compress, hash, store, sign, test), as a table on stderr and as JSON in
    /// `.strata/timings/<time>.json` (and in `--json`'s output).
    #[arg(long)]
    timings: bool,
}

/// Build the chain; exit non-zero when any image failed or was skipped.
pub fn run(args: Args, global: &GlobalArgs) -> Result<ExitCode> {
    // Git contexts move as upstreams do: frozen with --locked, followed with --pull always.
    let git_mode = if args.locked {
        strata_chain::GitMode::Frozen
    } else if args.pull == "always" {
        strata_chain::GitMode::Follow
    } else {
        strata_chain::GitMode::Lock
    };
    let chain = load_chain_git(global, git_mode, None)?;
    let store_path = global.store_path()?;
    let store = strata_oci::Store::init(&store_path)
        .with_context(|| format!("cannot open the store {}", store_path.display()))?;
    let strata_dir = crate::global::state_dir_of(&store_path);
    let events = strata_events::EventLog::open(&strata_dir.join("events.db"))?;
    let events = Mutex::new(events);
    let cancel = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, cancel.clone())
            .context("cannot install the interrupt handler")?;
    }
    let mut options = CascadeOptions {
        targets: args.images,
        force: args.force,
        dry_run: args.dry_run,
        compression: match args.compression.as_str() {
            "zstd" => strata_oci::Compression::Zstd,
            "none" => strata_oci::Compression::None,
            _ => strata_oci::Compression::Gzip,
        },
        source_date_epoch: super::build_image::source_date_epoch()?,
        cache_dir: (!args.no_cache).then(|| strata_dir.join("cache")),
        cancel,
        secrets: super::build_image::parse_secrets(&args.secret, &global.workdir()?)?,
        pull: super::build_image::pull_policy(&args.pull),
        network: args.sandbox.network(),
        pids_limit: args.sandbox.pids_limit(),
        timings: args.timings,
        ..CascadeOptions::default()
    };
    if let Some(jobs) = args.jobs {
        options.jobs = jobs;
    }
    for spec in &args.key {
        let (team, file) = spec
            .split_once('=')
            .with_context(|| format!("invalid --key {spec:?}: expected TEAM=FILE"))?;
        // A misspelt team would otherwise leave its images silently unsigned.
        if !chain.file.teams.contains_key(team) {
            let known: Vec<&str> = chain.file.teams.keys().map(String::as_str).collect();
            bail!(
                "--key {spec:?}: unknown team {team:?} (teams in {}: {})",
                chain.file.path.display(),
                known.join(", ")
            );
        }
        options
            .keys
            .insert(team.to_string(), global.workdir()?.join(file));
    }
    let (upstreams, old_lock) = open_lock(&chain, args.locked, &args.pull)?;
    options.upstreams = Some(upstreams.clone());
    let tty = !args.json && std::io::stderr().is_terminal();
    let progress = Progress::new(tty, strata_cascade::select(&chain, &options)?.len());
    let summary = build_chain(&chain, &store, Some(&events), &options, &progress)?;
    progress.finish();
    if !args.dry_run {
        save_lock(&chain, &upstreams, old_lock)?;
    }
    let timings = (args.timings && !args.dry_run).then(|| {
        super::timings::RunTimings::new(
            summary
                .images
                .iter()
                .filter_map(|r| {
                    r.timings
                        .as_ref()
                        .map(|timing| super::timings::NamedTiming {
                            image: &r.image,
                            timing,
                        })
                })
                .collect(),
        )
    });
    if let Some(timings) = &timings {
        let path = timings.write(&strata_dir)?;
        if !args.json {
            errln!("{}wrote {}", timings.table(), path.display());
        }
    }
    if args.json {
        let mut value = serde_json::to_value(&summary)?;
        if let (Some(timings), Some(map)) = (&timings, value.as_object_mut()) {
            map.insert("timings".into(), serde_json::to_value(timings)?);
        }
        write_stdout(&(serde_json::to_string_pretty(&value)? + "\n"))?;
    } else {
        // On a terminal the summary names only what was (or would be) built, failed or was
        // skipped, and counts the rest; piped, it keeps one line per image for scripts and logs.
        let terminal = std::io::stdout().is_terminal();
        write_stdout(&summary_text(&summary, args.dry_run, terminal))?;
    }
    Ok(if summary.failed() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// The chain's lock as this build uses it, and the lock as read (None: there was no lock file).
/// `--locked` refuses a missing lock or one that does not lock exactly the Dockerfiles' upstreams.
fn open_lock(
    chain: &strata_chain::Chain,
    locked: bool,
    pull: &str,
) -> Result<(Arc<Upstreams>, Option<Lock>)> {
    let path = chain.lock_path();
    let lock = Lock::load(&path)?;
    let mode = if locked {
        if pull == "always" {
            bail!("--locked never moves strata.lock, and --pull always does: choose one");
        }
        let Some(lock) = &lock else {
            return Err(strata_chain::LockError::NoLock { path }.into());
        };
        lock.check_covers(&path, &chain.upstreams())?;
        let contexts = chain.git_commits();
        if let Some(unused) = lock
            .git_entries()
            .find(|e| !contexts.contains_key(&(e.url.clone(), e.rev.clone())))
        {
            bail!(
                "{}: git {} rev {} is locked but no image's context names it: run `strata update`",
                path.display(),
                unused.url,
                unused.rev
            );
        }
        LockMode::Frozen
    } else if pull == "always" {
        LockMode::Follow
    } else {
        LockMode::Lock
    };
    let upstreams = Upstreams::new(lock.clone().unwrap_or_default(), mode);
    Ok((Arc::new(upstreams), lock))
}

/// Write the lock when the build locked or moved an upstream, saying what changed on stderr.
/// Upstreams no Dockerfile names any more are dropped. A chain without upstreams gets no lock.
fn save_lock(chain: &strata_chain::Chain, upstreams: &Upstreams, old: Option<Lock>) -> Result<()> {
    if upstreams.mode() == LockMode::Frozen {
        return Ok(());
    }
    let mut lock = upstreams.lock();
    let named = chain.upstreams();
    lock.retain(|r| named.contains_key(r));
    lock.set_git(&chain.git_commits());
    let path = chain.lock_path();
    let changed = match &old {
        Some(old) => old.to_toml() != lock.to_toml(),
        None => !lock.is_empty(),
    };
    if !changed {
        return Ok(());
    }
    let old = old.unwrap_or_default();
    for moved in lock.diff(&old) {
        errln!("{}: {moved}", path.display());
    }
    for moved in lock.git_diff(&old) {
        errln!("{}: {moved}", path.display());
    }
    strata_cascade::upstream::write_lock(&path, &lock)?;
    Ok(())
}

/// How many skipped images a terminal summary names, one line each, before it counts the rest.
const SKIPPED_NAMED: usize = 10;

/// The summary table: one line per image with its owner, then the counts. On a `terminal` it
/// leaves out the up-to-date images (counted on the last line: at 5,000 images a no-op printed
/// 5,000 lines) and names at most [`SKIPPED_NAMED`] skipped ones.
fn summary_text(summary: &Summary, dry_run: bool, terminal: bool) -> String {
    let mut skipped = 0;
    let shown: Vec<&ImageReport> = summary
        .images
        .iter()
        .filter(|r| match r.outcome {
            Outcome::UpToDate { .. } => !terminal,
            Outcome::Skipped { .. } if terminal => {
                skipped += 1;
                skipped <= SKIPPED_NAMED
            }
            _ => true,
        })
        .collect();
    let width = shown.iter().map(|r| r.image.len()).max().unwrap_or(5);
    let mut out = String::new();
    if dry_run {
        out.push_str("dry run: nothing was built\n");
    }
    for r in shown {
        let (word, detail) = match &r.outcome {
            Outcome::Built {
                old,
                new,
                number,
                duration_ms,
            } => (
                "built",
                format!(
                    "#{number} {} → {} in {:.1}s",
                    old.as_deref().map(short).unwrap_or("(none)"),
                    short(new),
                    *duration_ms as f64 / 1000.0
                ),
            ),
            Outcome::UpToDate { digest } => ("up to date", short(digest).to_string()),
            Outcome::WouldBuild => ("would build", String::new()),
            Outcome::Failed { message } => ("FAILED", message.clone()),
            Outcome::Skipped { because } => ("skipped", because.clone()),
        };
        let why = if r.reasons.is_empty() {
            String::new()
        } else {
            format!(" ({})", r.reasons.join(", "))
        };
        let detail = match &r.signed_by {
            Some(key) => format!("{detail}, signed by key {}", &key[..key.len().min(12)]),
            None => detail,
        };
        out.push_str(&format!(
            "{:<width$}  {:<12} {:<11}{why} {detail}\n",
            r.image, r.owner, word
        ));
    }
    if skipped > SKIPPED_NAMED {
        out.push_str(&format!(
            "... and {} more skipped\n",
            skipped - SKIPPED_NAMED
        ));
    }
    let count = |f: fn(&Outcome) -> bool| summary.images.iter().filter(|r| f(&r.outcome)).count();
    out.push_str(&format!(
        "{} built, {} up to date, {} failed, {} skipped{}\n",
        count(|o| matches!(o, Outcome::Built { .. })),
        count(|o| matches!(o, Outcome::UpToDate { .. })),
        count(|o| matches!(o, Outcome::Failed { .. })),
        count(|o| matches!(o, Outcome::Skipped { .. })),
        if summary.interrupted {
            " (interrupted)"
        } else {
            ""
        }
    ));
    out
}

fn short(digest: &str) -> &str {
    let end = digest.len().min("sha256:".len() + 12);
    &digest[..end]
}

/// Progress on stderr. On a terminal (indicatif): one line per image being built and a total
/// line (images done of all, how many built, up to date, failed); an up-to-date image only moves
/// the total, a finished build leaves one line above. Otherwise one timestamped line per event.
struct Progress {
    bars: Option<Bars>,
}

struct Bars {
    multi: indicatif::MultiProgress,
    running: Mutex<std::collections::HashMap<String, indicatif::ProgressBar>>,
    total: indicatif::ProgressBar,
    counts: Mutex<[usize; 3]>,
}

impl Progress {
    fn new(tty: bool, images: usize) -> Self {
        Self {
            bars: tty.then(|| {
                let multi = indicatif::MultiProgress::new();
                let total = multi.add(indicatif::ProgressBar::new(images as u64));
                total.set_style(
                    indicatif::ProgressStyle::with_template(
                        "{elapsed:>4} [{bar:30}] {pos}/{len} images {wide_msg}",
                    )
                    .expect("valid template")
                    .progress_chars("=> "),
                );
                total.enable_steady_tick(std::time::Duration::from_millis(120));
                Bars {
                    multi,
                    running: Mutex::new(Default::default()),
                    total,
                    counts: Mutex::new([0; 3]),
                }
            }),
        }
    }

    fn finish(&self) {
        if let Some(bars) = &self.bars {
            bars.total.finish_and_clear();
            let _ = bars.multi.clear();
        }
    }

    fn line(&self, image: &str, text: &str) {
        match &self.bars {
            Some(bars) => {
                let mut running = bars.running.lock().unwrap_or_else(|e| e.into_inner());
                let bar = running.entry(image.to_string()).or_insert_with(|| {
                    let bar = bars
                        .multi
                        .insert_before(&bars.total, indicatif::ProgressBar::new_spinner());
                    bar.set_style(
                        indicatif::ProgressStyle::with_template(
                            "{spinner} {prefix:<16} {wide_msg}",
                        )
                        .expect("valid template"),
                    );
                    bar.set_prefix(image.to_string());
                    bar.enable_steady_tick(std::time::Duration::from_millis(120));
                    bar
                });
                bar.set_message(clip(text));
            }
            None => {
                let now = chrono::Utc::now().format("%H:%M:%S");
                errln!("{now} {image}: {text}");
            }
        }
    }

    fn done(&self, image: &str, outcome: &Outcome, text: &str) {
        let Some(bars) = &self.bars else {
            return self.line(image, text);
        };
        let bar = bars
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(image);
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        if !matches!(outcome, Outcome::UpToDate { .. }) {
            let _ = bars.multi.println(format!("{image}: {}", clip(text)));
        }
        let mut counts = bars.counts.lock().unwrap_or_else(|e| e.into_inner());
        match outcome {
            Outcome::Built { .. } | Outcome::WouldBuild => counts[0] += 1,
            Outcome::UpToDate { .. } => counts[1] += 1,
            Outcome::Failed { .. } | Outcome::Skipped { .. } => counts[2] += 1,
        }
        bars.total.inc(1);
        bars.total.set_message(format!(
            "({} built, {} up to date, {} failed or skipped)",
            counts[0], counts[1], counts[2]
        ));
    }
}

/// A progress text cut to 90 characters.
fn clip(text: &str) -> String {
    let mut shown: String = text.chars().take(90).collect();
    if text.chars().count() > 90 {
        shown.push('…');
    }
    shown
}

impl CascadeSink for Progress {
    fn event(&self, event: CascadeEvent<'_>) {
        match event {
            // A queued image gets its line when it starts building.
            CascadeEvent::Queued { .. } => {}
            CascadeEvent::Started { image, reasons } => {
                self.line(image, &format!("building ({})", reasons.join(", ")))
            }
            CascadeEvent::Step {
                image,
                number,
                total,
                text,
            } => self.line(
                image,
                &format!(
                    "step {number}/{total} {}",
                    text.lines().next().unwrap_or("")
                ),
            ),
            CascadeEvent::Output { image, line } => self.line(image, &format!("| {line}")),
            CascadeEvent::Finished { image, outcome } => {
                let text = match outcome {
                    Outcome::Built { new, .. } => format!("done {}", short(new)),
                    Outcome::UpToDate { .. } => "up to date".to_string(),
                    Outcome::WouldBuild => "would build".to_string(),
                    Outcome::Failed { message } => {
                        format!("failed: {}", message.lines().next().unwrap_or(""))
                    }
                    Outcome::Skipped { because } => format!("skipped: {because}"),
                };
                self.done(image, outcome, &text);
            }
        }
    }
}
