//! `strata watch` in a chain project: follow the chain's upstreams and git contexts. Each pass
//! observes (the lock, the upstreams re-resolved by manifest HEAD, the git contexts' revs
//! re-resolved by `git ls-remote`, the images' build states, their digests on the chain's
//! registry), asks [`strata_cascade::trigger::decide`] for the next action, does it
//! (move the lock, cascade, push), and observes again until nothing is left to do.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use serde::{Deserialize, Serialize};
use strata_cascade::trigger::{self, Action, ImageState, Observation, Watched};
use strata_cascade::{
    CascadeEvent, CascadeOptions, CascadeSink, LockMode, Outcome, Upstreams, build_chain, refs,
    upstream,
};
use strata_chain::{Chain, GitMove, Lock, Move, Status};
use strata_remote::{Client, Location, RemoteRef};

use super::graph::{load_chain, statuses_with};
use crate::global::GlobalArgs;
use crate::out::errln;

/// The most actions one pass takes (move, cascade, push, and a move that came meanwhile...):
/// a bound, so a registry that never shows what was pushed cannot keep a pass busy.
const MAX_STEPS: usize = 8;

/// What the follower remembers between passes and restarts (`.strata/watch/<chain>.json`).
#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    /// The lock (its id) the last cascade failed on: not retried until the lock moves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    failed_on: Option<String>,
}

/// Follows one chain's upstreams.
pub struct Follower {
    client: Client,
    commit: bool,
    stop: Arc<AtomicBool>,
    /// The last thing said about a pass that did nothing (an error, a wait): said once.
    said: Option<String>,
    /// The refused moves (reference, digest) already said and recorded.
    refused: std::collections::HashSet<(String, String)>,
}

impl Follower {
    /// A follower using `client` for the registries; `commit`: commit each lock move to git.
    pub fn new(client: Client, commit: bool, stop: Arc<AtomicBool>) -> Follower {
        Follower {
            client,
            commit,
            stop,
            said: None,
            refused: Default::default(),
        }
    }

    /// Pass every `interval` until stopped.
    pub fn run(&mut self, global: &GlobalArgs, interval: Duration) {
        while !self.stop.load(Ordering::Relaxed) {
            if let Err(e) = self.pass(global) {
                self.say_once(format!("error: {e:#} (watch goes on)"));
            }
            let until = Instant::now() + interval;
            while !self.stop.load(Ordering::Relaxed) && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }

    fn say_once(&mut self, line: String) {
        if self.said.as_ref() != Some(&line) {
            errln!("watch: {line}");
            self.said = Some(line);
        }
    }

    /// Observe, decide, act, until idle (or waiting).
    pub fn pass(&mut self, global: &GlobalArgs) -> Result<()> {
        let mut cascaded_at = None;
        for _ in 0..MAX_STEPS {
            if self.stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            let chain = load_chain(global)?;
            let observed = self.observe(&chain, global)?;
            for refusal in trigger::refusals(&observed) {
                self.refuse(global, &refusal)?;
            }
            match trigger::decide(&observed) {
                // A chain with no upstream has nothing to say, pass after pass.
                Action::Idle if observed.lock.is_empty() && observed.images.is_empty() => {
                    return Ok(());
                }
                Action::Idle => {
                    let contexts = observed.lock.git_entries().count();
                    self.say_once(format!(
                        "up to date: upstreams locked: {}{}, images on them built{}: {}",
                        observed.lock.entries().count(),
                        if contexts > 0 {
                            format!(", git contexts locked: {contexts}")
                        } else {
                            String::new()
                        },
                        if observed.registry { " and pushed" } else { "" },
                        observed.images.len(),
                    ));
                    return Ok(());
                }
                Action::Wait { images } => {
                    self.say_once(format!(
                        "{} not rebuilt: the last cascade on this strata.lock failed; \
                         waiting for the next upstream or git move (or `strata build`)",
                        images.join(", ")
                    ));
                    return Ok(());
                }
                Action::MoveLock {
                    lock,
                    moves,
                    git_moves,
                } => {
                    self.said = None;
                    self.move_lock(&chain, global, &lock, &moves, &git_moves)?
                }
                // Still stale after a cascade that did not fail, on the same lock: what the
                // status sees and what the cascade builds disagree; not again until it moves.
                Action::Cascade { images } if cascaded_at.as_ref() == Some(&observed.lock) => {
                    let state = State {
                        failed_on: Some(trigger::lock_id(&observed.lock)),
                    };
                    save_state(&state_path(&chain, global)?, &state)?;
                    self.say_once(format!(
                        "{} still not up to date after a cascade: see `strata plan`",
                        images.join(", ")
                    ));
                    return Ok(());
                }
                Action::Cascade { images } => {
                    self.said = None;
                    self.cascade(&chain, global, &observed.lock, images)?;
                    cascaded_at = Some(observed.lock.clone());
                }
                Action::Push { images } => {
                    self.said = None;
                    self.push(&chain, global, &images)?
                }
            }
        }
        Ok(())
    }

    fn observe(&self, chain: &Chain, global: &GlobalArgs) -> Result<Observation> {
        let lock = Lock::load(&chain.lock_path())?.unwrap_or_default();
        let references: Vec<String> = chain.upstreams().into_keys().collect();
        // A chain naming no upstream asks no registry and reads no key.
        let mut resolved = if references.is_empty() {
            let mut kept = lock.clone();
            kept.retain(|_| false);
            kept
        } else {
            upstream::update(chain, &lock, &references, true, &self.client)?
        };
        // Each git context's rev as its repository names it now (one `git ls-remote` per
        // context; a rev that is a commit id never moves and is not locked).
        let mut commits = chain.git_commits();
        for ((url, rev), commit) in commits.iter_mut() {
            *commit = strata_chain::git::ls_remote(url, rev)?;
        }
        resolved.set_git(&commits);
        let store_path = global.store_path()?;
        let store = strata_oci::Store::open(&store_path).ok();
        let graph = chain.graph();
        let seeds: Vec<usize> = (0..chain.file.images.len())
            .filter(|&i| {
                let image = &chain.file.images[i];
                graph
                    .external_of(i)
                    .iter()
                    .any(|r| strata_chain::lock::is_upstream(r))
                    || image
                        .git
                        .as_ref()
                        .is_some_and(|g| !strata_chain::git::is_commit_id(&g.rev))
            })
            .collect();
        let registry = chain.file.registry.is_some();
        let mut owners = std::collections::BTreeMap::new();
        if !references.is_empty() {
            let trust = strata_cascade::trust_config(chain)?;
            for r in &references {
                if let Some(team) = trust.external_owner_of(r) {
                    owners.insert(r.clone(), team.to_string());
                }
            }
        }
        let reached = graph.downstream(&seeds);
        // The build keys only when some image is on an upstream or a git context (a chain
        // without any is idle).
        let statuses = if reached.is_empty() {
            None
        } else {
            Some(statuses_with(chain, global, Some(lock.clone()))?)
        };
        let mut images = Vec::new();
        for i in reached {
            let tagged = refs::tagged(chain, i, "latest");
            let stored = store
                .as_ref()
                .and_then(|s| s.refs().resolve(&tagged).ok())
                .map(|d| d.digest().to_string());
            let pushed = match (registry, &stored) {
                (true, Some(_)) => {
                    let remote = RemoteRef::parse(&tagged)?;
                    self.client
                        .head_manifest(&remote)
                        .with_context(|| format!("cannot read {remote} on the chain's registry"))?
                        .map(|d| d.to_string())
                }
                _ => None,
            };
            images.push(Watched {
                name: chain.file.images[i].name.clone(),
                state: match statuses.as_ref().map(|s| &s.0[i]) {
                    None | Some(Status::UpToDate) => ImageState::Current,
                    Some(Status::Failed { .. }) => ImageState::Failed,
                    Some(Status::Stale { .. } | Status::NeverBuilt) => ImageState::Stale,
                },
                stored,
                pushed,
            });
        }
        Ok(Observation {
            lock,
            resolved,
            images,
            registry,
            failed_on: load_state(&state_path(chain, global)?).failed_on,
            owners,
        })
    }

    /// Say and record a refused move, once per digest.
    fn refuse(&mut self, global: &GlobalArgs, refusal: &trigger::Refusal) -> Result<()> {
        let key = (refusal.reference.clone(), refusal.digest.clone());
        if !self.refused.insert(key) {
            return Ok(());
        }
        errln!(
            "watch: refused: {refusal}; {} not moved",
            strata_chain::LOCK_FILE
        );
        // The pass's end is said again after this news.
        self.said = None;
        let said = refusal.to_string();
        let reason = said
            .strip_prefix(&format!("{} ", refusal.reference))
            .unwrap_or(&said);
        let event = strata_events::Event {
            time: strata_events::now(),
            kind: Some(strata_events::Kind::Update),
            image: refusal.reference.clone(),
            team: Some(refusal.owner.clone()),
            user: Some(strata_events::current_user()),
            new_digest: Some(refusal.digest.clone()),
            reason: Some(format!(
                "REFUSED: {reason}; {} not moved",
                strata_chain::LOCK_FILE
            )),
            result: "refused".into(),
            ..strata_events::Event::default()
        };
        let events = open_events(global)?;
        if let Err(error) = events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .record(&event)
        {
            tracing::warn!(%error, "could not record the refusal in the events log");
        }
        Ok(())
    }

    fn move_lock(
        &self,
        chain: &Chain,
        global: &GlobalArgs,
        lock: &Lock,
        moves: &[Move],
        git_moves: &[GitMove],
    ) -> Result<()> {
        let path = chain.lock_path();
        upstream::write_lock(&path, lock)?;
        let events = open_events(global)?;
        let record = |event: &strata_events::Event| {
            if let Err(error) = events
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .record(event)
            {
                tracing::warn!(%error, "could not record the lock move in the events log");
            }
        };
        for m in moves {
            errln!("watch: {}: {m}", path.display());
            let said = m.to_string();
            let reason = said
                .strip_prefix(&format!("{}: ", m.reference))
                .unwrap_or(&said);
            let event = strata_events::Event {
                time: strata_events::now(),
                kind: Some(strata_events::Kind::Update),
                image: m.reference.clone(),
                team: m.entry.as_ref().and_then(|e| e.built_by.clone()),
                user: Some(strata_events::current_user()),
                old_digest: m.from.clone(),
                new_digest: m.to.clone(),
                reason: Some(format!("{} moved: {reason}", strata_chain::LOCK_FILE)),
                result: "ok".into(),
                detail: serde_json::to_value(m).ok(),
                ..strata_events::Event::default()
            };
            record(&event);
        }
        for m in git_moves {
            errln!("watch: {}: {m}", path.display());
            let said = m.to_string();
            let reason = said.strip_prefix(&format!("{} ", m.url)).unwrap_or(&said);
            // The team is the owner of the (first) image whose context it is.
            let team = chain
                .file
                .images
                .iter()
                .find(|i| {
                    i.git
                        .as_ref()
                        .is_some_and(|g| g.url == m.url && g.rev == m.rev)
                })
                .map(|i| i.owner.clone());
            record(&strata_events::Event {
                time: strata_events::now(),
                kind: Some(strata_events::Kind::Update),
                image: m.url.clone(),
                team,
                user: Some(strata_events::current_user()),
                reason: Some(format!("{} moved: rev {reason}", strata_chain::LOCK_FILE)),
                result: "ok".into(),
                detail: serde_json::to_value(m).ok(),
                ..strata_events::Event::default()
            });
        }
        if self.commit {
            let said: Vec<String> = moves
                .iter()
                .map(ToString::to_string)
                .chain(git_moves.iter().map(ToString::to_string))
                .collect();
            match commit_lock(&path, &said) {
                Ok(Some(subject)) => errln!("watch: committed {}: {subject}", path.display()),
                Ok(None) => errln!(
                    "watch: --commit: {} is not in a git work tree: not committed",
                    path.display()
                ),
                Err(e) => errln!("watch: error: {e:#} (the lock moved, uncommitted)"),
            }
        }
        Ok(())
    }

    fn cascade(
        &self,
        chain: &Chain,
        global: &GlobalArgs,
        lock: &Lock,
        images: Vec<String>,
    ) -> Result<()> {
        let store_path = global.store_path()?;
        let store = strata_oci::Store::init(&store_path)
            .with_context(|| format!("cannot open the store {}", store_path.display()))?;
        let strata_dir = crate::global::state_dir_of(&store_path);
        let events = open_events(global)?;
        errln!("watch: cascading from {}", images.join(", "));
        let options = CascadeOptions {
            targets: images,
            source_date_epoch: super::build_image::source_date_epoch()?,
            cache_dir: Some(strata_dir.join("cache")),
            cancel: self.stop.clone(),
            upstreams: Some(Arc::new(Upstreams::new(lock.clone(), LockMode::Frozen))),
            ..CascadeOptions::default()
        };
        let summary = build_chain(chain, &store, Some(&events), &options, &Lines)?;
        if summary.interrupted {
            return Ok(());
        }
        let state = State {
            failed_on: summary.failed().then(|| trigger::lock_id(lock)),
        };
        save_state(&state_path(chain, global)?, &state)
    }

    fn push(&self, chain: &Chain, global: &GlobalArgs, images: &[(String, String)]) -> Result<()> {
        let store_path = global.store_path()?;
        for (name, _) in images {
            let i = chain
                .index(name)
                .with_context(|| format!("no image {name} in the chain"))?;
            let tagged = refs::tagged(chain, i, "latest");
            let remote = RemoteRef::parse(&tagged)?;
            let src = Location::Layout {
                dir: store_path.clone(),
                reference: tagged.clone(),
            };
            let outcome =
                strata_remote::copy(&self.client, &src, &Location::Remote(remote.clone()));
            super::copy::record_for(
                global,
                strata_events::Kind::Push,
                &remote.to_string(),
                Some(&chain.file.images[i].owner),
                &outcome,
            );
            let report = outcome.with_context(|| format!("cannot push {name} to {remote}"))?;
            errln!(
                "watch: pushed {remote}: {} ({} referrers)",
                report.digest,
                report.referrers
            );
        }
        Ok(())
    }
}

/// The events log beside the store.
fn open_events(global: &GlobalArgs) -> Result<Mutex<strata_events::EventLog>> {
    let store_path = global.store_path()?;
    let path = crate::global::state_dir_of(&store_path).join("events.db");
    Ok(Mutex::new(strata_events::EventLog::open(&path)?))
}

fn state_path(chain: &Chain, global: &GlobalArgs) -> Result<PathBuf> {
    let store_path = global.store_path()?;
    Ok(crate::global::state_dir_of(&store_path)
        .join("watch")
        .join(format!("{}.json", chain.file.name)))
}

/// The state as saved; a missing or unreadable file is no memory (the worst case is one more
/// cascade on a lock that failed before).
fn load_state(path: &Path) -> State {
    std::fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

fn save_state(path: &Path, state: &State) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let bytes = serde_json::to_vec_pretty(state)?;
    strata_oci::layout::atomic_write(path, &bytes)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Commit the moved lock at `path` in its git work tree, with a message naming the moves (as
/// said: `REF: sha256:… → sha256:…`, `URL REV: abc → def`). None: the directory is not in a git
/// work tree.
fn commit_lock(path: &Path, moves: &[String]) -> Result<Option<String>> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file = path
        .file_name()
        .context("the lock path has no file name")?
        .to_os_string();
    let git = |args: &[&std::ffi::OsStr]| {
        std::process::Command::new("git")
            .arg("-C")
            .arg(&dir)
            .args(args)
            .output()
            .context("cannot run git")
    };
    let inside = git(&["rev-parse".as_ref(), "--is-inside-work-tree".as_ref()])?;
    if !inside.status.success() || String::from_utf8_lossy(&inside.stdout).trim() != "true" {
        return Ok(None);
    }
    let subject = match moves {
        [one] => format!("strata.lock: {one}"),
        _ => format!(
            "strata.lock: {} upstreams or git contexts moved",
            moves.len()
        ),
    };
    let mut body = String::new();
    for m in moves {
        body.push_str(&format!("{m}\n"));
    }
    body.push_str("\nMoved by strata watch.");
    for args in [
        vec!["add".as_ref(), "--".as_ref(), file.as_os_str()],
        vec![
            "commit".as_ref(),
            "-q".as_ref(),
            "-m".as_ref(),
            subject.as_ref(),
            "-m".as_ref(),
            body.as_ref(),
            "--".as_ref(),
            file.as_os_str(),
        ],
    ] {
        let out = git(&args)?;
        if !out.status.success() {
            // One line: git's own verdict (`fatal: ...`), not its advice around it.
            let stderr = String::from_utf8_lossy(&out.stderr);
            let lines = || stderr.lines().map(str::trim).filter(|l| !l.is_empty());
            let verdict = lines()
                .find(|l| l.starts_with("fatal:") || l.starts_with("error:"))
                .or_else(|| lines().next_back())
                .unwrap_or("no message");
            anyhow::bail!(
                "git {} in {} failed: {verdict}",
                args[0].to_string_lossy(),
                dir.display()
            );
        }
    }
    Ok(Some(subject))
}

/// Cascade progress as timestamped lines on stderr: what started and how it ended.
struct Lines;

impl CascadeSink for Lines {
    fn event(&self, event: CascadeEvent<'_>) {
        let now = chrono::Utc::now().format("%H:%M:%S");
        match event {
            CascadeEvent::Started { image, reasons } => {
                errln!("{now} {image}: building ({})", reasons.join(", "))
            }
            CascadeEvent::Finished { image, outcome } => {
                let text = match outcome {
                    Outcome::Built { new, .. } => format!("built {new}"),
                    Outcome::UpToDate { .. } => "up to date".to_string(),
                    Outcome::WouldBuild => "would build".to_string(),
                    Outcome::Failed { message } => {
                        format!("FAILED: {}", message.lines().next().unwrap_or(""))
                    }
                    Outcome::Skipped { because } => format!("skipped: {because}"),
                };
                errln!("{now} {image}: {text}");
            }
            _ => {}
        }
    }
}
