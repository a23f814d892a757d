//! The reconcile loop: resolve the desired digest, decide ([`crate::decide()`]), check the policy,
//! roll out health-gated, record; and the manual commands (hold, release, approve, rollback).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;
use strata_events::{Event, EventLog, Kind, Query};
use strata_oci::Store;

use crate::actor::Actor;
use crate::config::{DeployFile, Deployment, ImageSource, TargetKind};
use crate::decide::{Action, Observed, decide};
use crate::error::{DeployError, ResolveError};
use crate::handoff::{Applied, Change, Handoff};
use crate::health::wait_healthy;
use crate::state::{DeploymentState, Hold, InFlight, Proxy, Refusal, Running, StateDir};
use crate::target::{ContainerSpec, LABEL_DEPLOYMENT, LABEL_DIGEST, Target};

/// How long the store's index must stay unchanged before `watch` acts on a burst of changes.
const QUIET: Duration = Duration::from_millis(500);
/// The longest `watch` waits for a burst to end before it reconciles anyway.
const BURST: Duration = Duration::from_secs(5);

/// Everything a reconcile needs: the deploy file, the store, the state, the target and the log.
pub struct Deployer<'a> {
    /// The deploy file.
    pub file: &'a DeployFile,
    /// The store chain images are resolved in.
    pub store: &'a Store,
    /// The deploy file's state.
    pub states: StateDir,
    /// Where containers run.
    pub target: &'a dyn Target,
    /// The events log (none: nothing recorded).
    pub events: Option<&'a EventLog>,
    /// Who verifies chains of custody (`require.verified`).
    pub trust: Option<&'a strata_attest::TrustConfig>,
    /// The registry client for registry references.
    pub client: Option<&'a strata_remote::Client>,
    /// Where `require.verified` reads other projects' images and attestations (their
    /// registries); none: the chain of custody is walked in the store only.
    pub upstream: Option<&'a dyn strata_attest::custody::Upstream>,
    /// The program that runs front listeners (`strata`, run as `strata deploy proxy ...`); none:
    /// no front listeners (the containers' private ports only).
    pub proxy_program: Option<PathBuf>,
}

/// What one reconcile of one deployment did.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    /// The deployment.
    pub deployment: String,
    /// The digest its image resolved to.
    pub desired: String,
    /// What was decided.
    pub action: Action,
    /// What came of it: `up-to-date`, `held`, `known-bad`, `pending`, `refused`, `deployed`,
    /// `rolled-back`, `failed`.
    pub result: String,
    /// What runs now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub running: Option<String>,
    /// In words.
    pub message: String,
}

/// One line of `strata deploy status`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    /// The deployment.
    pub name: String,
    /// The image it follows.
    pub image: String,
    /// `auto` or `manual`.
    pub trigger: crate::config::Trigger,
    /// Where it runs: `local`, `gitops`.
    pub target: TargetKind,
    /// For a target elsewhere, where in words (`git DIR (PATH, branch main)`); what runs there
    /// is `running.container` (`git commit 1a2b3c4d5e6f of ...`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub place: Option<String>,
    /// Its state.
    #[serde(flatten)]
    pub state: DeploymentState,
}

/// What a rollback goes back to.
#[derive(Debug, Clone)]
pub enum RollbackTo {
    /// The last healthy digest before the running one.
    Previous,
    /// Revision N of the history.
    Revision(u64),
    /// A digest.
    Digest(String),
}

impl<'a> Deployer<'a> {
    fn label(&self, d: &Deployment) -> String {
        format!("{}/{}", self.file.name, d.name)
    }

    /// The deployments named (all when `names` is empty), or an error naming an unknown one.
    pub fn select(&self, names: &[String]) -> Result<Vec<&'a Deployment>, DeployError> {
        if names.is_empty() {
            return Ok(self.file.deployments.iter().collect());
        }
        names.iter().map(|n| self.find(n)).collect()
    }

    pub(crate) fn find(&self, name: &str) -> Result<&'a Deployment, DeployError> {
        self.file
            .deployment(name)
            .ok_or_else(|| DeployError::UnknownDeployment {
                file: self.file.path.display().to_string(),
                name: name.to_string(),
                known: self
                    .file
                    .deployments
                    .iter()
                    .map(|d| d.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    /// Save `d`'s state, then list the digests it runs or may roll back to as gc roots of the
    /// store they live in, so `strata store gc` keeps them after their tags move on.
    fn save(&self, d: &Deployment, state: &DeploymentState) -> Result<(), DeployError> {
        // What prune needs once `d` is gone from the file: where it ran, how it stops, where its
        // root is. A deployment back in the file is no longer removed.
        let mut state = state.clone();
        state.target = Some(d.target);
        state.stop_grace_ms = Some(u64::try_from(d.stop_grace.as_millis()).unwrap_or(u64::MAX));
        state.roots_in = match &d.image {
            ImageSource::Oci { dir, .. } => Some(dir.clone()),
            _ => None,
        };
        state.removed = None;
        self.states.save(&d.name, &state)?;
        let held_in = match &d.image {
            ImageSource::Oci { dir, .. } => Store::open(dir).ok(),
            _ => None,
        };
        let digests: Vec<strata_oci::Digest> =
            state.keep().iter().filter_map(|x| x.parse().ok()).collect();
        held_in
            .as_ref()
            .unwrap_or(self.store)
            .roots()
            .set(&format!("deploy-{}-{}", self.file.name, d.name), &digests)
            .map_err(|source| DeployError::Roots {
                deployment: d.name.clone(),
                source: Box::new(source),
            })
    }

    /// Every deployment's state.
    pub fn status(&self, names: &[String]) -> Result<Vec<Status>, DeployError> {
        self.select(names)?
            .into_iter()
            .map(|d| {
                Ok(Status {
                    name: d.name.clone(),
                    image: d.image.to_string(),
                    trigger: d.trigger,
                    target: d.target,
                    place: self.handoff(d).map(|h| h.place()),
                    state: self.states.load(&d.name)?,
                })
            })
            .collect()
    }

    /// Reconcile the named deployments (all when empty) once, each under the state lock.
    pub fn reconcile(&self, names: &[String]) -> Result<Vec<Outcome>, DeployError> {
        let mut outcomes = Vec::new();
        for d in self.select(names)? {
            let _lock = self.states.lock()?;
            outcomes.push(self.reconcile_one(d)?);
        }
        Ok(outcomes)
    }

    /// Reconcile every deployment until `stop` is set: at once, whenever the store's index changes
    /// (a burst of changes is coalesced into one pass), and every `interval`. Each pass's outcomes
    /// (or error) go to `report`. Returns early, between passes, when `reload` says the deploy
    /// file changed (asked every 100 ms while waiting): the caller reads it again and watches on.
    pub fn watch(
        &self,
        interval: Duration,
        stop: &AtomicBool,
        mut report: impl FnMut(Result<Vec<Outcome>, DeployError>),
        mut reload: impl FnMut() -> bool,
    ) {
        let index = self.store.root().join("index.json");
        let mtime = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        while !stop.load(Ordering::Relaxed) {
            let seen = mtime(&index);
            let mut outcomes = Vec::new();
            let mut failed = None;
            for d in &self.file.deployments {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                match self.states.lock().and_then(|_lock| self.reconcile_one(d)) {
                    Ok(o) => outcomes.push(o),
                    Err(e) => failed = Some(e),
                }
            }
            match failed {
                Some(e) => report(Err(e)),
                None => report(Ok(outcomes)),
            }
            // Wait for a change of the store's index, the interval, or stop.
            let until = Instant::now() + interval;
            let mut changed: Option<SystemTime> = None;
            while !stop.load(Ordering::Relaxed) && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(100));
                if reload() {
                    return;
                }
                let now = mtime(&index);
                if now != seen {
                    changed = now;
                    break;
                }
            }
            // Coalesce a burst: wait until the index has been quiet for QUIET (at most BURST).
            if let Some(mut last) = changed {
                let give_up = Instant::now() + BURST;
                while !stop.load(Ordering::Relaxed) && Instant::now() < give_up {
                    std::thread::sleep(QUIET);
                    match mtime(&index) {
                        Some(t) if t != last => last = t,
                        _ => break,
                    }
                }
            }
        }
    }

    /// Resolve the image a deployment follows to a digest in a store: (digest, the store holding
    /// it, the reference that resolved).
    fn resolve(&self, d: &Deployment) -> Result<(String, Option<Store>, String), DeployError> {
        let fail = |source: ResolveError| DeployError::Resolve {
            deployment: d.name.clone(),
            image: d.image.to_string(),
            source,
        };
        match &d.image {
            ImageSource::Chain { reference } => {
                let mut candidates = vec![reference.clone()];
                if !reference.starts_with("localhost/") {
                    let tagged = if reference
                        .rsplit('/')
                        .next()
                        .is_some_and(|l| l.contains(':'))
                    {
                        reference.clone()
                    } else {
                        format!("{reference}:latest")
                    };
                    candidates.push(format!("localhost/{tagged}"));
                }
                let mut last = None;
                for c in candidates {
                    match self.store.refs().resolve(&c) {
                        Ok(desc) => return Ok((desc.digest().to_string(), None, c)),
                        Err(e) => last = Some(e),
                    }
                }
                Err(fail(ResolveError::Store(Box::new(
                    last.expect("at least one candidate"),
                ))))
            }
            ImageSource::Oci { dir, reference } => {
                let other = Store::open(dir).map_err(|e| fail(ResolveError::Store(Box::new(e))))?;
                let desc = other
                    .refs()
                    .resolve(reference)
                    .map_err(|e| fail(ResolveError::Store(Box::new(e))))?;
                Ok((desc.digest().to_string(), Some(other), reference.clone()))
            }
            ImageSource::Registry { reference } => {
                let client = self.client.ok_or_else(|| fail(ResolveError::NoClient))?;
                let remote = strata_remote::RemoteRef::parse(reference)
                    .map_err(|e| fail(ResolveError::Registry(Box::new(e))))?;
                let digest = client
                    .head_manifest(&remote)
                    .map_err(|e| fail(ResolveError::Registry(Box::new(e))))?
                    .ok_or_else(|| fail(ResolveError::NoManifest))?
                    .to_string();
                if self.store.refs().resolve(&digest).is_err() {
                    let src = strata_remote::Location::Remote(remote.with_reference(&digest));
                    let dst = strata_remote::Location::Layout {
                        dir: self.store.root().to_path_buf(),
                        reference: format!("{}/{}@{digest}", remote.registry, remote.repository),
                    };
                    strata_remote::copy(client, &src, &dst)
                        .map_err(|e| fail(ResolveError::Registry(Box::new(e))))?;
                }
                Ok((digest.clone(), None, digest))
            }
        }
    }

    /// The hand-over of a deployment that runs elsewhere (none: it runs here, on `target`).
    pub fn handoff(&self, d: &Deployment) -> Option<Box<dyn Handoff>> {
        match d.target {
            TargetKind::Local => None,
            TargetKind::Gitops => d.gitops.clone().map(|target| {
                Box::new(crate::gitops::Gitops {
                    deployment: d.name.clone(),
                    target,
                    clone_dir: self.states.path().join(format!("{}.gitops", d.name)),
                }) as Box<dyn Handoff>
            }),
            TargetKind::Kubernetes => d.kubernetes.clone().map(|target| {
                Box::new(crate::kubernetes::Kubernetes {
                    deployment: d.clone(),
                    target,
                    owner: self.file.owner.clone(),
                }) as Box<dyn Handoff>
            }),
        }
    }

    fn reconcile_one(&self, d: &Deployment) -> Result<Outcome, DeployError> {
        let mut state = self.states.load(&d.name)?;
        let handoff = self.handoff(d);
        let alive = match &handoff {
            // What runs there is what the target names: a digest edited in by hand is not
            // what strata put there, and is written back (a hold is how to pin one).
            Some(h) => {
                let now = h.current()?;
                state
                    .running
                    .as_ref()
                    .is_some_and(|r| now.as_deref() == Some(r.digest.as_str()))
            }
            None => self.clean_up(d, &mut state)?,
        };
        let (desired, other_store, reference) = self.resolve(d)?;
        let store = other_store.as_ref().unwrap_or(self.store);
        state.desired = Some(desired.clone());
        if state.refused.as_ref().is_some_and(|r| r.digest != desired) {
            state.refused = None;
        }
        let action = decide(
            d.trigger,
            &state,
            &desired,
            Observed {
                running_alive: alive,
            },
        );
        let outcome = |result: &str, state: &DeploymentState, message: String| Outcome {
            deployment: d.name.clone(),
            desired: desired.clone(),
            action: action.clone(),
            result: result.to_string(),
            running: state.running.as_ref().map(|r| r.digest.clone()),
            message,
        };
        match &action {
            Action::UpToDate { digest } => {
                self.save(d, &state)?;
                Ok(outcome("up-to-date", &state, format!("runs {digest}")))
            }
            Action::Held { digest, .. } => {
                self.save(d, &state)?;
                Ok(outcome("held", &state, format!("held at {digest}")))
            }
            Action::KnownBad { digest } => {
                self.save(d, &state)?;
                Ok(outcome(
                    "known-bad",
                    &state,
                    format!("{digest} failed its health check before; waiting for a newer digest"),
                ))
            }
            Action::AwaitApproval { digest } => {
                if state.pending.as_ref().is_none_or(|p| &p.digest != digest) {
                    state.pending = Some(crate::state::Pending {
                        digest: digest.clone(),
                        since: strata_events::now(),
                    });
                    self.record(
                        d,
                        "pending",
                        Some(digest),
                        state.running.as_ref().map(|r| r.digest.as_str()),
                        format!("{digest} waits for `strata deploy approve {}`", d.name),
                        None,
                    )?;
                }
                self.save(d, &state)?;
                Ok(outcome(
                    "pending",
                    &state,
                    format!("{digest} waits for approval"),
                ))
            }
            Action::Deploy { digest, why } => {
                let verify_ref = if digest == &desired {
                    reference.as_str()
                } else {
                    digest.as_str()
                };
                if d.require_verified
                    && let Some(reason) = self.refusal(store, verify_ref, digest)
                {
                    if state.refused.as_ref().is_none_or(|r| &r.digest != digest) {
                        self.record(
                            d,
                            "refused",
                            Some(digest),
                            state.running.as_ref().map(|r| r.digest.as_str()),
                            format!("refused {digest}: {reason}"),
                            None,
                        )?;
                        state.refused = Some(Refusal {
                            digest: digest.clone(),
                            reason: reason.clone(),
                        });
                    }
                    self.save(d, &state)?;
                    return Ok(outcome("refused", &state, reason));
                }
                let (result, message) = match &handoff {
                    Some(h) => self.hand_off(d, h.as_ref(), &mut state, digest, why)?,
                    None => self.roll_out(d, store, &mut state, digest, why, alive)?,
                };
                Ok(outcome(&result, &state, message))
            }
        }
    }

    /// Why `digest` may not be deployed (its chain of custody does not verify), if it may not.
    fn refusal(&self, store: &Store, reference: &str, digest: &str) -> Option<String> {
        let Some(trust) = self.trust else {
            return Some("require.verified is set but no trust configuration was given".into());
        };
        let reference = match store.refs().resolve(reference) {
            Ok(desc) if desc.digest().to_string() == digest => reference,
            _ => digest,
        };
        match strata_attest::verify_chain_with(
            store,
            reference,
            trust,
            &strata_attest::Policy::default(),
            chrono::Utc::now(),
            self.upstream,
        ) {
            // The reference is a tag: it must still name the digest that will run.
            Ok(report) if report.digest.to_string() != digest => Some(format!(
                "{reference} moved to {} while {digest} was being verified",
                report.digest
            )),
            Ok(report) if report.broken().is_none() => None,
            Ok(report) => Some(report.summary()),
            Err(e) => Some(error_chain(&e)),
        }
    }

    /// Remove every container of `d` but the running one (a crash mid-rollout leaves the new one);
    /// put the front listeners back on the running one. Whether the running container is alive.
    fn clean_up(&self, d: &Deployment, state: &mut DeploymentState) -> Result<bool, DeployError> {
        let containers = self.target.list(&d.name, &self.label(d))?;
        let running_name = state.running.as_ref().map(|r| r.container.clone());
        let mut alive = false;
        for c in containers {
            if Some(&c.name) == running_name.as_ref() && c.running {
                alive = true;
            } else {
                self.target
                    .remove(&d.name, &c.name, Duration::from_secs(1))?;
            }
        }
        let interrupted = state.in_flight.take();
        if let Some(f) = &interrupted {
            tracing::info!(
                "{}: a rollout of {} was interrupted; cleaned up",
                d.name,
                f.digest
            );
        }
        if alive && let Some(r) = state.running.clone() {
            self.switch(d, state, &r.ports)?;
        }
        if interrupted.is_some() {
            self.save(d, state)?;
        }
        Ok(alive)
    }

    fn roll_out(
        &self,
        d: &Deployment,
        store: &Store,
        state: &mut DeploymentState,
        digest: &str,
        why: &str,
        old_alive: bool,
    ) -> Result<(String, String), DeployError> {
        let started = Instant::now();
        let hex = digest.trim_start_matches("sha256:");
        let archive =
            self.states
                .path()
                .join(format!("{}.{}.oci.tar", d.name, &hex[..12.min(hex.len())]));
        strata_oci::archive::export(
            store,
            digest,
            strata_oci::archive::ArchiveFormat::OciArchive,
            &archive,
        )
        .map_err(|source| DeployError::Export {
            deployment: d.name.clone(),
            digest: digest.to_string(),
            source: Box::new(source),
        })?;
        let loaded = self.target.load(&d.name, &archive);
        let _ = std::fs::remove_file(&archive);
        let image = loaded?;
        let name = format!(
            "{}-{}-{}-{}",
            self.file.name,
            d.name,
            state.next_revision(),
            &hex[..8.min(hex.len())]
        );
        state.in_flight = Some(InFlight {
            digest: digest.to_string(),
            container: name.clone(),
        });
        self.save(d, state)?;
        let spec = ContainerSpec {
            name: name.clone(),
            image,
            labels: vec![
                (LABEL_DEPLOYMENT.into(), self.label(d)),
                (LABEL_DIGEST.into(), digest.to_string()),
            ],
            env: d.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            ports: d.ports.iter().map(|p| p.container_port).collect(),
            network: d.network,
        };
        let app_started = Instant::now();
        let healthy = match self.target.start(&d.name, &spec) {
            Ok(ports) => {
                let ok = match &d.health {
                    Some(h) => wait_healthy(self.target, &d.name, &name, h, &ports)?,
                    None => true,
                };
                ok.then_some(ports)
            }
            Err(e) => {
                tracing::warn!("{e}");
                None
            }
        };
        let cause = self.cause_of(digest);
        let old = state.running.clone().filter(|_| old_alive);
        state.in_flight = None;
        match healthy {
            Some(ports) => {
                let healthy_in = app_started.elapsed();
                self.switch(d, state, &ports)?;
                // Recorded as the rollout's duration: new digest → serving (stopping the old
                // container comes after and is not part of it).
                let serving_after = started.elapsed();
                state.running = Some(Running {
                    digest: digest.to_string(),
                    container: name,
                    since: strata_events::now(),
                    healthy: true,
                    ports,
                });
                state.last_healthy = Some(digest.to_string());
                if state.pending.as_ref().is_some_and(|p| p.digest == digest) {
                    state.pending = None;
                }
                let action = if why == "rollback" {
                    "rollback"
                } else {
                    "deploy"
                };
                state.record(digest, action, "ok", cause.clone());
                self.save(d, state)?;
                if let Some(old) = &old {
                    // The front listeners send new connections to the new container already:
                    // drain the connections still open to the old one (within the grace period),
                    // then stop it with its stop signal and the grace period.
                    let private: Vec<String> = old.ports.iter().map(|(_, e)| e.clone()).collect();
                    crate::proxy::drain(&private, d.stop_grace);
                    self.target.remove(&d.name, &old.container, d.stop_grace)?;
                }
                let mut message = format!("deployed {digest}");
                if let Some(c) = &cause {
                    message.push_str(&format!(" ({c})"));
                }
                message.push_str(&format!(", healthy in {:.1} s", healthy_in.as_secs_f64()));
                if let Some(old) = &old
                    && old.digest != digest
                {
                    message.push_str(&format!(", replacing {}", old.digest));
                }
                self.record(
                    d,
                    "ok",
                    Some(digest),
                    old.as_ref().map(|o| o.digest.as_str()),
                    message.clone(),
                    Some(serving_after),
                )?;
                Ok(("deployed".into(), message))
            }
            None => {
                self.target.remove(&d.name, &name, Duration::from_secs(1))?;
                state.bad.insert(digest.to_string());
                state.record(
                    digest,
                    if why == "rollback" {
                        "rollback"
                    } else {
                        "deploy"
                    },
                    "failed",
                    cause,
                );
                self.save(d, state)?;
                let running = old.as_ref().map(|o| o.digest.clone());
                let mut message = format!("{digest} failed its health check; marked bad");
                match (&running, &state.last_healthy) {
                    (Some(r), _) => {
                        message.push_str(&format!(", rolled back: {r} kept serving"));
                        self.record(
                            d,
                            "rolled-back",
                            Some(digest),
                            Some(r),
                            message.clone(),
                            Some(started.elapsed()),
                        )?;
                        Ok(("rolled-back".into(), message))
                    }
                    (None, Some(good)) if !state.bad.contains(good) => {
                        let good = good.clone();
                        self.record(
                            d,
                            "failed",
                            Some(digest),
                            None,
                            message.clone(),
                            Some(started.elapsed()),
                        )?;
                        let (_, back) = self.roll_out(d, store, state, &good, "rollback", false)?;
                        Ok(("rolled-back".into(), format!("{message}; {back}")))
                    }
                    _ => {
                        self.record(
                            d,
                            "failed",
                            Some(digest),
                            None,
                            message.clone(),
                            Some(started.elapsed()),
                        )?;
                        Ok(("failed".into(), message))
                    }
                }
            }
        }
    }

    /// Hand `digest` over to a target elsewhere and record what came of it, as [`Self::roll_out`]
    /// does for containers: a failed rollout marks the digest bad and hands the last healthy
    /// digest over again.
    fn hand_off(
        &self,
        d: &Deployment,
        h: &dyn Handoff,
        state: &mut DeploymentState,
        digest: &str,
        why: &str,
    ) -> Result<(String, String), DeployError> {
        let started = Instant::now();
        let cause = self.cause_of(digest);
        let old = state.running.clone();
        let replacing = old
            .as_ref()
            .map(|o| o.digest.as_str())
            .filter(|o| *o != digest);
        // A hold whose digest does not run yet is a manual rollback or a hold being restored.
        let why = match (why, &state.hold) {
            ("hold", Some(hold)) if hold.reason == "rollback" => "rollback",
            _ => why,
        };
        let label = self.label(d);
        let change = Change {
            deployment: &label,
            why,
            cause: cause.as_deref(),
            replacing,
        };
        let action = if why == "rollback" {
            "rollback"
        } else {
            "deploy"
        };
        match h.apply(digest, &change)? {
            Applied::Done { at, changed } => {
                let moved = old.as_ref().is_none_or(|o| o.digest != digest);
                state.running = Some(Running {
                    digest: digest.to_string(),
                    container: at.clone(),
                    since: match &old {
                        Some(o) if !moved => o.since.clone(),
                        _ => strata_events::now(),
                    },
                    healthy: true,
                    ports: vec![],
                });
                state.last_healthy = Some(digest.to_string());
                if state.pending.as_ref().is_some_and(|p| p.digest == digest) {
                    state.pending = None;
                }
                let mut message = format!(
                    "{} {digest}",
                    if action == "rollback" {
                        "rolled back to"
                    } else {
                        "deployed"
                    }
                );
                if let Some(c) = &cause {
                    message.push_str(&format!(" ({c})"));
                }
                message.push_str(&format!(
                    ": {}{at}",
                    if changed { "" } else { "already in " }
                ));
                if let Some(r) = replacing {
                    message.push_str(&format!(", replacing {r}"));
                }
                if moved || changed {
                    state.record(digest, action, "ok", cause.clone());
                }
                self.save(d, state)?;
                if moved || changed {
                    self.record(
                        d,
                        "ok",
                        Some(digest),
                        replacing,
                        message.clone(),
                        Some(started.elapsed()),
                    )?;
                }
                Ok(("deployed".into(), message))
            }
            Applied::Failed { reason } => {
                state.bad.insert(digest.to_string());
                state.record(digest, action, "failed", cause);
                self.save(d, state)?;
                let message = format!("{digest} failed to roll out: {reason}; marked bad");
                self.record(
                    d,
                    "failed",
                    Some(digest),
                    replacing,
                    message.clone(),
                    Some(started.elapsed()),
                )?;
                match state.last_healthy.clone() {
                    Some(good) if good != digest && !state.bad.contains(&good) => {
                        let (_, back) = self.hand_off(d, h, state, &good, "rollback")?;
                        Ok(("rolled-back".into(), format!("{message}; {back}")))
                    }
                    _ => Ok(("failed".into(), message)),
                }
            }
        }
    }

    /// Put a hold or a release on the target's own record (a gitops commit), before the state
    /// changes: a refused commit leaves the state as it was.
    fn note(&self, d: &Deployment, message: &str) -> Result<(), DeployError> {
        match self.handoff(d) {
            Some(h) => h.note(message),
            None => Ok(()),
        }
    }

    /// Point the front listeners of `d` at `ports` (container port → endpoint), starting
    /// any listener that is not running.
    fn switch(
        &self,
        d: &Deployment,
        state: &mut DeploymentState,
        ports: &[(u16, String)],
    ) -> Result<(), DeployError> {
        let Some(program) = &self.proxy_program else {
            return Ok(());
        };
        for p in &d.ports {
            let Some((_, private)) = ports.iter().find(|(c, _)| *c == p.container_port) else {
                continue;
            };
            let backend = self.states.backend_file(&d.name, p.container_port);
            self.states
                .write_atomic(&backend, format!("{private}\n").as_bytes())?;
            let listen = format!("{}:{}", p.host_ip, p.host_port);
            let alive = state
                .proxies
                .iter()
                .find(|x| x.listen == listen)
                .is_some_and(|x| proxy_alive(x.pid, &backend));
            if alive {
                continue;
            }
            let pid =
                spawn_proxy(program, &listen, &backend).map_err(|message| DeployError::Proxy {
                    deployment: d.name.clone(),
                    listen: listen.clone(),
                    message,
                })?;
            state.proxies.retain(|x| x.listen != listen);
            state.proxies.push(Proxy { listen, pid });
        }
        Ok(())
    }

    /// The chain change that made `digest`, from the build events: `corebuild patched → httpd-php
    /// → wordpress`-like text.
    fn cause_of(&self, digest: &str) -> Option<String> {
        let log = self.events?;
        let builds = log
            .query(&Query {
                kinds: vec![Kind::Build],
                limit: 2000,
                ..Default::default()
            })
            .ok()?;
        let build = builds
            .iter()
            .rev()
            .find(|e| e.new_digest.as_deref() == Some(digest) && e.result == "ok")?;
        // Up the causes within the same run to the build that started the cascade.
        let mut path = vec![build];
        while let Some(cause) = path.last().and_then(|e| e.cause.as_ref())
            && path.len() < 64
        {
            let Some(up) = builds.iter().rev().find(|e| {
                &e.image == cause
                    && e.run_id == build.run_id
                    && e.result == "ok"
                    && !path.iter().any(|p| p.image == e.image)
            }) else {
                break;
            };
            path.push(up);
        }
        let origin = path.last().copied().unwrap_or(build);
        let mut text = format!(
            "{} {}{}",
            origin.image,
            origin.reason.as_deref().unwrap_or("rebuilt"),
            origin
                .team
                .as_deref()
                .map(|t| format!(" by {t}"))
                .unwrap_or_default()
        );
        for e in path.iter().rev().skip(1) {
            text.push_str(" → ");
            text.push_str(&e.image);
        }
        Some(text)
    }

    fn record(
        &self,
        d: &Deployment,
        result: &str,
        new: Option<&str>,
        old: Option<&str>,
        reason: String,
        took: Option<Duration>,
    ) -> Result<(), DeployError> {
        self.record_as(d, None, result, new, old, reason, took)
    }

    /// Record an event; `by` (the team that acted, proven by its key) is on record as its team
    /// and user, else the deploy file's owner and the OS user.
    #[allow(clippy::too_many_arguments)]
    fn record_as(
        &self,
        d: &Deployment,
        by: Option<&Actor>,
        result: &str,
        new: Option<&str>,
        old: Option<&str>,
        reason: String,
        took: Option<Duration>,
    ) -> Result<(), DeployError> {
        let Some(log) = self.events else {
            return Ok(());
        };
        log.record(&Event {
            kind: Some(Kind::Deploy),
            image: self.label(d),
            team: by
                .map(|a| a.team().to_string())
                .or_else(|| self.file.owner.clone()),
            user: Some(by.map_or_else(strata_events::current_user, Actor::describe)),
            old_digest: old.map(str::to_string),
            new_digest: new.map(str::to_string),
            reason: Some(reason),
            cause: new.and_then(|n| self.cause_of(n)),
            duration_ms: took.map(|t| i64::try_from(t.as_millis()).unwrap_or(i64::MAX)),
            result: result.to_string(),
            ..Default::default()
        })?;
        Ok(())
    }

    /// Whether `team` may `action` (`approve`, `hold`, `release`, `roll back`) deployment `name`:
    /// only the deploy file's owner team may (any team when the file names no owner). The manual
    /// commands check it again with their proven [`Actor`]; a caller checks it first to refuse
    /// another team before asking for its key.
    pub fn authorize(&self, name: &str, team: &str, action: &str) -> Result<(), DeployError> {
        let d = self.find(name)?;
        match &self.file.owner {
            Some(owner) if owner != team => Err(DeployError::NotOwner {
                deployment: d.name.clone(),
                team: team.to_string(),
                action: action.to_string(),
                owner: owner.clone(),
                file: self.file.path.display().to_string(),
            }),
            _ => Ok(()),
        }
    }

    /// Pin `name` at its running digest, as `actor` (the owner team).
    pub fn hold(&self, name: &str, actor: &Actor) -> Result<DeploymentState, DeployError> {
        let d = self.find(name)?;
        self.authorize(name, actor.team(), "hold")?;
        let _lock = self.states.lock()?;
        let mut state = self.states.load(name)?;
        let digest = state
            .running
            .as_ref()
            .map(|r| r.digest.clone())
            .ok_or_else(|| DeployError::Rollback {
                deployment: name.to_string(),
                message: "nothing runs, nothing to hold".into(),
            })?;
        self.note(
            d,
            &format!(
                "hold {} at {digest}\n\nHeld by {}: new images wait until it is released.\n\
                 Strata-Deployment: {}\nStrata-Digest: {digest}\n",
                self.label(d),
                actor.describe(),
                self.label(d)
            ),
        )?;
        state.hold = Some(Hold {
            digest: digest.clone(),
            by: actor.describe(),
            since: strata_events::now(),
            reason: "hold".into(),
        });
        self.save(d, &state)?;
        self.record_as(
            d,
            Some(actor),
            "held",
            Some(&digest),
            None,
            format!("held at {digest}"),
            None,
        )?;
        Ok(state)
    }

    /// Remove the pin, as `actor` (the owner team); the next reconcile follows the image again.
    pub fn release(&self, name: &str, actor: &Actor) -> Result<DeploymentState, DeployError> {
        let d = self.find(name)?;
        self.authorize(name, actor.team(), "release")?;
        let _lock = self.states.lock()?;
        let mut state = self.states.load(name)?;
        if let Some(h) = state.hold.take() {
            self.note(
                d,
                &format!(
                    "release {} (held at {})\n\nReleased by {}: it follows its image again.\n\
                     Strata-Deployment: {}\n",
                    self.label(d),
                    h.digest,
                    actor.describe(),
                    self.label(d)
                ),
            )?;
            self.save(d, &state)?;
            self.record_as(
                d,
                Some(actor),
                "released",
                Some(&h.digest),
                None,
                format!("released the hold on {}", h.digest),
                None,
            )?;
        }
        Ok(state)
    }

    /// Approve the digest waiting (or `digest`, which must be the one waiting or the desired one),
    /// as `actor` (the owner team), then reconcile.
    pub fn approve(
        &self,
        name: &str,
        digest: Option<&str>,
        actor: &Actor,
    ) -> Result<Outcome, DeployError> {
        let d = self.find(name)?;
        self.authorize(name, actor.team(), "approve")?;
        {
            let _lock = self.states.lock()?;
            let mut state = self.states.load(name)?;
            let waiting = state.pending.as_ref().map(|p| p.digest.clone());
            let chosen = match (digest, &waiting) {
                (Some(want), _) => {
                    let known =
                        waiting.as_deref() == Some(want) || state.desired.as_deref() == Some(want);
                    if !known {
                        return Err(DeployError::Approve {
                            deployment: name.to_string(),
                            message: format!(
                                "{want} is not the digest waiting for approval ({})",
                                waiting.as_deref().unwrap_or("none")
                            ),
                        });
                    }
                    want.to_string()
                }
                (None, Some(w)) => w.clone(),
                (None, None) => {
                    return Err(DeployError::Approve {
                        deployment: name.to_string(),
                        message: "no digest waits for approval".into(),
                    });
                }
            };
            state.approved = Some(chosen.clone());
            self.save(d, &state)?;
            self.record_as(
                d,
                Some(actor),
                "approved",
                Some(&chosen),
                None,
                format!("approved {chosen}"),
                None,
            )?;
        }
        let mut outcomes = self.reconcile(&[name.to_string()])?;
        Ok(outcomes.remove(0))
    }

    /// Roll `name` back and hold it there (a later image does not overwrite a manual rollback), as
    /// `actor` (the owner team).
    pub fn rollback(
        &self,
        name: &str,
        to: &RollbackTo,
        actor: &Actor,
    ) -> Result<Outcome, DeployError> {
        let d = self.find(name)?;
        self.authorize(name, actor.team(), "roll back")?;
        {
            let _lock = self.states.lock()?;
            let mut state = self.states.load(name)?;
            let err = |message: String| DeployError::Rollback {
                deployment: name.to_string(),
                message,
            };
            let current = state.running.as_ref().map(|r| r.digest.clone());
            let digest = match to {
                RollbackTo::Digest(x) => x.clone(),
                RollbackTo::Revision(n) => state
                    .history
                    .iter()
                    .find(|r| r.n == *n)
                    .map(|r| r.digest.clone())
                    .ok_or_else(|| {
                        err(format!(
                            "no revision {n} (see `strata deploy history {name}`)"
                        ))
                    })?,
                RollbackTo::Previous => state
                    .history
                    .iter()
                    .rev()
                    .find(|r| r.result == "ok" && Some(&r.digest) != current.as_ref())
                    .map(|r| r.digest.clone())
                    .ok_or_else(|| err("no earlier healthy revision to roll back to".into()))?,
            };
            let held_in = match &d.image {
                ImageSource::Oci { dir, .. } => Store::open(dir).ok(),
                _ => None,
            };
            if held_in
                .as_ref()
                .unwrap_or(self.store)
                .refs()
                .resolve(&digest)
                .is_err()
            {
                return Err(err(format!("{digest} is not in the store any more")));
            }
            state.bad.remove(&digest);
            state.hold = Some(Hold {
                digest: digest.clone(),
                by: actor.describe(),
                since: strata_events::now(),
                reason: "rollback".into(),
            });
            self.save(d, &state)?;
            self.record_as(
                d,
                Some(actor),
                "rollback",
                Some(&digest),
                current.as_deref(),
                format!("manual rollback to {digest}, held there"),
                None,
            )?;
        }
        let mut outcomes = self.reconcile(&[name.to_string()])?;
        Ok(outcomes.remove(0))
    }

    /// Stop a deployment: its containers and its front listeners; its state and history stay.
    pub fn down(&self, name: &str) -> Result<(), DeployError> {
        let d = match self.find(name) {
            Ok(d) => d,
            // A deployment taken out of the file: `down` prunes it.
            Err(e) => {
                if !self.states.names()?.iter().any(|n| n == name) {
                    return Err(e);
                }
                let pruned = self.prune(&[name.to_string()], false)?;
                return match pruned.into_iter().find(|p| p.result == "refused") {
                    Some(p) => Err(DeployError::Unsupported {
                        deployment: name.to_string(),
                        message: p.message,
                    }),
                    None => Ok(()),
                };
            }
        };
        if let Some(h) = self.handoff(d) {
            return Err(DeployError::Unsupported {
                deployment: d.name.clone(),
                message: format!(
                    "it runs elsewhere ({}); take it out of service there, strata only hands \
                     digests over",
                    h.place()
                ),
            });
        }
        let _lock = self.states.lock()?;
        let mut state = self.states.load(name)?;
        // The listeners first: they are ours alone, and go even when podman fails below.
        for p in state.proxies.drain(..) {
            let backend = self.states.backend_file(
                name,
                d.ports
                    .iter()
                    .find(|x| format!("{}:{}", x.host_ip, x.host_port) == p.listen)
                    .map_or(0, |x| x.container_port),
            );
            if proxy_alive(p.pid, &backend) {
                let pid = nix::unistd::Pid::from_raw(i32::try_from(p.pid).unwrap_or(i32::MAX));
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            }
        }
        self.save(d, &state)?;
        for c in self.target.list(&d.name, &self.label(d))? {
            self.target.remove(&d.name, &c.name, d.stop_grace)?;
        }
        state.running = None;
        state.in_flight = None;
        self.save(d, &state)?;
        self.record(d, "down", None, None, "stopped".into(), None)?;
        Ok(())
    }
}

/// Whether `pid` is a front listener reading `backend` (a reused pid is not).
pub(crate) fn proxy_alive(pid: u32, backend: &Path) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|cmd| {
        let want = backend.as_os_str().as_encoded_bytes();
        cmd.split(|b| *b == 0).any(|arg| arg == want)
    })
}

/// Start `program deploy proxy --listen LISTEN --backend-file BACKEND` in its own process group and
/// wait for its readiness line.
fn spawn_proxy(program: &Path, listen: &str, backend: &Path) -> Result<u32, String> {
    use std::os::unix::process::CommandExt;
    let mut child = Command::new(program)
        .args(["deploy", "proxy", "--listen", listen, "--backend-file"])
        .arg(backend)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", program.display()))?;
    let mut line = String::new();
    let stdout = child.stdout.take().expect("piped");
    let _ = BufReader::new(stdout).read_line(&mut line);
    if line.trim() == "ready" {
        let pid = child.id();
        // Reap it when it ends, so a long-running `strata watch` leaves no zombie.
        std::thread::spawn(move || child.wait());
        Ok(pid)
    } else {
        let _ = child.kill();
        let _ = child.wait();
        Err(if line.trim().is_empty() {
            "the listener exited".into()
        } else {
            line.trim().to_string()
        })
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let t = s.to_string();
        if !text.contains(&t) {
            text.push_str(": ");
            text.push_str(&t);
        }
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;
    use crate::target::Container;

    /// A target that records what it is asked and answers from data: containers "run" once
    /// started; `exec` health answers `healthy`.
    #[derive(Default)]
    struct Recording {
        containers: RefCell<Vec<Container>>,
        calls: RefCell<Vec<String>>,
        healthy: RefCell<bool>,
        /// `remove` fails (a crash in the middle of a prune).
        fail_remove: RefCell<bool>,
    }

    impl Target for Recording {
        fn load(&self, _: &str, archive: &Path) -> Result<String, DeployError> {
            assert!(archive.is_file(), "an archive to load");
            self.calls.borrow_mut().push("load".into());
            Ok("image-id".into())
        }
        fn start(&self, _: &str, spec: &ContainerSpec) -> Result<Vec<(u16, String)>, DeployError> {
            self.calls.borrow_mut().push(format!("start {}", spec.name));
            self.containers.borrow_mut().push(Container {
                name: spec.name.clone(),
                running: true,
            });
            Ok(vec![])
        }
        fn list(&self, _: &str, _: &str) -> Result<Vec<Container>, DeployError> {
            Ok(self.containers.borrow().clone())
        }
        fn exec(&self, _: &str, _: &str, _: &str) -> Result<bool, DeployError> {
            Ok(*self.healthy.borrow())
        }
        fn remove(&self, _: &str, name: &str, _: Duration) -> Result<(), DeployError> {
            if *self.fail_remove.borrow() {
                return Err(DeployError::Target {
                    deployment: "web".into(),
                    action: "stop".into(),
                    message: "killed".into(),
                });
            }
            self.calls.borrow_mut().push(format!("remove {name}"));
            self.containers.borrow_mut().retain(|c| c.name != name);
            Ok(())
        }
    }

    const FILE: &str = r#"
name = "t"
[[deployment]]
name = "web"
image = "localhost/acme/web:latest"
health = { exec = "true", timeout = "100ms" }
"#;

    struct Fixture {
        dir: tempfile::TempDir,
        store: Store,
        file: DeployFile,
        target: Recording,
    }

    impl Fixture {
        fn new() -> Fixture {
            let dir = tempfile::tempdir().unwrap();
            let store = Store::init(dir.path().join("store")).unwrap();
            let file = DeployFile::parse(&dir.path().join("deploy.toml"), FILE).unwrap();
            let target = Recording::default();
            *target.healthy.borrow_mut() = true;
            Fixture {
                dir,
                store,
                file,
                target,
            }
        }

        /// A new image tagged `acme/web:latest`; its digest.
        fn push(&self) -> String {
            let image = strata_oci::random::image(&self.store, 1, 64).unwrap();
            self.store
                .refs()
                .tag("localhost/acme/web:latest", image.descriptor())
                .unwrap();
            image.digest().to_string()
        }

        fn deployer(&self) -> Deployer<'_> {
            Deployer {
                file: &self.file,
                store: &self.store,
                states: StateDir::new(self.dir.path(), "t"),
                target: &self.target,
                events: None,
                trust: None,
                client: None,
                upstream: None,
                proxy_program: None,
            }
        }

        fn reconcile(&self) -> Outcome {
            self.deployer().reconcile(&[]).unwrap().remove(0)
        }
    }

    #[test]
    fn a_failed_health_check_removes_the_new_container_and_keeps_the_old() {
        let f = Fixture::new();
        let good = f.push();
        assert_eq!(f.reconcile().result, "deployed");
        let bad = f.push();
        *f.target.healthy.borrow_mut() = false;
        let out = f.reconcile();
        assert_eq!(out.result, "rolled-back");
        assert_eq!(out.running.as_deref(), Some(good.as_str()));
        let names: Vec<String> = f
            .target
            .containers
            .borrow()
            .iter()
            .map(|c| c.name.clone())
            .collect();
        assert_eq!(names.len(), 1);
        assert!(names[0].starts_with("t-web-1-"), "{names:?}");
        let state = f.deployer().states.load("web").unwrap();
        assert!(state.bad.contains(&bad));
        // not retried: nothing loaded or started again
        let calls = f.target.calls.borrow().len();
        *f.target.healthy.borrow_mut() = true;
        assert_eq!(f.reconcile().result, "known-bad");
        assert_eq!(f.target.calls.borrow().len(), calls);
    }

    #[test]
    fn a_container_left_by_a_crash_is_removed_and_the_rollout_redone_once() {
        let f = Fixture::new();
        f.push();
        assert_eq!(f.reconcile().result, "deployed");
        let new = f.push();
        // as if a rollout had been killed after starting its container
        let mut state = f.deployer().states.load("web").unwrap();
        state.in_flight = Some(InFlight {
            digest: new.clone(),
            container: "t-web-2-crashed".into(),
        });
        f.deployer().states.save("web", &state).unwrap();
        f.target.containers.borrow_mut().push(Container {
            name: "t-web-2-crashed".into(),
            running: true,
        });
        let out = f.reconcile();
        assert_eq!(out.result, "deployed");
        assert_eq!(out.running.as_deref(), Some(new.as_str()));
        let containers = f.target.containers.borrow();
        assert_eq!(containers.len(), 1, "{containers:?}");
        assert!(
            f.target
                .calls
                .borrow()
                .contains(&"remove t-web-2-crashed".to_string())
        );
        assert!(f.deployer().states.load("web").unwrap().in_flight.is_none());
    }

    #[test]
    fn a_vanished_container_is_restored_at_its_digest() {
        let f = Fixture::new();
        let d = f.push();
        assert_eq!(f.reconcile().result, "deployed");
        f.target.containers.borrow_mut().clear();
        let out = f.reconcile();
        assert_eq!(out.result, "deployed");
        assert_eq!(out.running.as_deref(), Some(d.as_str()));
        assert_eq!(f.target.containers.borrow().len(), 1);
    }

    /// The deploy file without `web`, and a deployer over it with the fixture's state and target.
    fn without_web(f: &Fixture) -> DeployFile {
        DeployFile::parse(&f.dir.path().join("deploy.toml"), "name = \"t\"\n").unwrap()
    }

    fn deployer_of<'a>(f: &'a Fixture, file: &'a DeployFile) -> Deployer<'a> {
        Deployer {
            file,
            ..f.deployer()
        }
    }

    #[test]
    fn a_crash_in_the_middle_of_a_prune_is_finished_by_the_next() {
        let f = Fixture::new();
        let digest = f.push();
        assert_eq!(f.reconcile().result, "deployed");
        let file = without_web(&f);
        let d = deployer_of(&f, &file);
        let orphans = d.orphans().unwrap();
        assert_eq!(orphans.len(), 1);
        assert_eq!(orphans[0].running.as_deref(), Some(digest.as_str()));
        assert!(
            orphans[0].message.contains("no longer in deploy.toml"),
            "{}",
            orphans[0].message
        );
        // the dry run removes nothing
        assert_eq!(d.prune(&[], true).unwrap()[0].result, "would-prune");
        assert_eq!(f.target.containers.borrow().len(), 1);
        // killed while stopping the container: not marked removed, still an orphan
        *f.target.fail_remove.borrow_mut() = true;
        assert!(d.prune(&[], false).is_err());
        assert!(d.states.load("web").unwrap().removed.is_none());
        assert_eq!(d.orphans().unwrap().len(), 1);
        // the next prune (here `down web`, which prunes an orphan) finishes; the history stays
        *f.target.fail_remove.borrow_mut() = false;
        d.down("web").unwrap();
        assert!(f.target.containers.borrow().is_empty());
        let state = d.states.load("web").unwrap();
        assert!(state.removed.is_some() && state.running.is_none());
        assert_eq!(state.history.len(), 1);
        assert!(d.orphans().unwrap().is_empty());
        assert!(d.prune(&[], false).unwrap().is_empty());
        // back in the file, it is a deployment again
        assert_eq!(f.reconcile().result, "deployed");
        assert!(f.deployer().states.load("web").unwrap().removed.is_none());
    }

    #[test]
    fn prune_refuses_an_orphan_that_ran_elsewhere_and_an_unknown_name() {
        let f = Fixture::new();
        let file = without_web(&f);
        let d = deployer_of(&f, &file);
        let state = DeploymentState {
            target: Some(TargetKind::Gitops),
            running: Some(Running {
                digest: "sha256:aa".into(),
                container: "git commit 1a2b".into(),
                since: strata_events::now(),
                healthy: true,
                ports: vec![],
            }),
            ..Default::default()
        };
        d.states.save("api", &state).unwrap();
        let pruned = d.prune(&[], false).unwrap();
        assert_eq!(pruned[0].result, "refused");
        assert!(
            pruned[0].message.contains("take it out of service there"),
            "{}",
            pruned[0].message
        );
        assert!(d.states.load("api").unwrap().removed.is_none());
        assert!(f.target.calls.borrow().is_empty(), "nothing stopped here");
        let e = d
            .prune(&["never".to_string()], false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("deploy.toml") && e.contains("never"), "{e}");
        // `down` of an orphan is its prune, refused alike
        let e = d.down("api").unwrap_err().to_string();
        assert!(e.contains("take it out of service there"), "{e}");
        let e = d.down("never").unwrap_err().to_string();
        assert!(e.contains("deploy.toml") && e.contains("never"), "{e}");
    }
}
