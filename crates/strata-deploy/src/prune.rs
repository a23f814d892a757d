//! Deployments taken out of the deploy file (or renamed) are not forgotten: their state, their
//! containers (labelled `dev.strata.deploy=FILE/NAME`), their front listeners and their gc root
//! stay until `strata deploy prune` removes them, as Argo CD's prune and `kubectl apply --prune`
//! do: reported at every pass, removed only when asked. Only this deploy file's label is touched,
//! and the state and history stay (marked removed), so `strata deploy history NAME` still answers.
//! A prune is idempotent: the deployment is marked removed only once everything is gone, so a
//! crash in the middle leaves an orphan the next prune finishes.

use std::path::Path;
use std::time::{Duration, Instant};

use serde::Serialize;
use strata_events::{Event, Kind};
use strata_oci::Store;

use crate::config::TargetKind;
use crate::error::DeployError;
use crate::reconcile::Deployer;
use crate::state::DeploymentState;

/// The grace period of an orphan whose state recorded none.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(10);

/// A deployment with state under this deploy file's name that the file no longer has.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Orphan {
    /// The deployment.
    pub name: String,
    /// Always true: tells an orphan from a deployment in `strata deploy status --json`.
    pub orphan: bool,
    /// The digest it still runs (or was last handed over at).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub running: Option<String>,
    /// Its containers (labelled with this deploy file's name and its own).
    pub containers: Vec<String>,
    /// The public addresses its front listeners still hold.
    pub listening: Vec<String>,
    /// Its gc root (`deploy-FILE-NAME`), when it still pins digests.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub root: Option<String>,
    /// Where it ran when it is not here (`gitops`, `kubernetes`): prune refuses to act there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub elsewhere: Option<TargetKind>,
    /// In words.
    pub message: String,
}

/// What `strata deploy prune` did with one orphan.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Pruned {
    /// The deployment.
    pub deployment: String,
    /// `pruned`, `would-prune` (`--dry-run`), `refused` (it runs elsewhere).
    pub result: String,
    /// The containers stopped (or that would be).
    pub containers: Vec<String>,
    /// The listeners stopped (or that would be).
    pub listening: Vec<String>,
    /// The gc root removed (or that would be).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub root: Option<String>,
    /// In words.
    pub message: String,
}

/// Whether `pid` is a front listener of `name` in the state directory `dir` (a reused pid is
/// not): its command line holds one of `name`'s backend files, `DIR/NAME.PORT.backend`.
fn listener_of(pid: u32, dir: &Path, name: &str) -> bool {
    let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let prefix = dir.join(format!("{name}."));
    let prefix = prefix.as_os_str().as_encoded_bytes();
    cmd.split(|b| *b == 0).any(|arg| {
        arg.strip_prefix(prefix)
            .and_then(|rest| rest.strip_suffix(b".backend"))
            .is_some_and(|port| !port.is_empty() && port.iter().all(u8::is_ascii_digit))
    })
}

impl Deployer<'_> {
    fn orphan_label(&self, name: &str) -> String {
        format!("{}/{name}", self.file.name)
    }

    fn root_holder(&self, name: &str) -> String {
        format!("deploy-{}-{name}", self.file.name)
    }

    /// The store holding `state`'s gc root.
    fn roots_store(&self, state: &DeploymentState) -> Option<Store> {
        state
            .roots_in
            .as_ref()
            .and_then(|dir| Store::open(dir).ok())
    }

    /// The deployments with state under this deploy file's name that it no longer has, by
    /// name (pruned ones included).
    fn stale(&self) -> Result<Vec<(String, DeploymentState)>, DeployError> {
        let mut out = Vec::new();
        for name in self.states.names()? {
            if self.file.deployment(&name).is_none() {
                let state = self.states.load(&name)?;
                out.push((name, state));
            }
        }
        Ok(out)
    }

    fn describe(&self, name: &str, state: &DeploymentState) -> Result<Orphan, DeployError> {
        let file = self.file.path.file_name().map_or_else(
            || self.file.path.display().to_string(),
            |f| f.to_string_lossy().into_owned(),
        );
        let elsewhere = state.target.filter(|t| *t != TargetKind::Local);
        let containers = match elsewhere {
            Some(_) => Vec::new(),
            None => self
                .target
                .list(name, &self.orphan_label(name))?
                .into_iter()
                .map(|c| c.name)
                .collect(),
        };
        let listening: Vec<String> = state
            .proxies
            .iter()
            .filter(|p| listener_of(p.pid, self.states.path(), name))
            .map(|p| p.listen.clone())
            .collect();
        let holder = self.root_holder(name);
        let roots_store = self.roots_store(state);
        let root = roots_store
            .as_ref()
            .unwrap_or(self.store)
            .roots()
            .dir()
            .join(&holder)
            .is_file()
            .then_some(holder);
        let running = state.running.as_ref().map(|r| r.digest.clone());
        let message = match elsewhere {
            Some(t) => format!(
                "deployment {name} is no longer in {file} but was handed over to its {} target \
                 at {}{}: take it out of service there (strata only hands digests over, and \
                 `strata deploy prune` refuses to act on it)",
                serde_json::to_value(t)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                running.as_deref().unwrap_or("no digest"),
                state
                    .running
                    .as_ref()
                    .map(|r| format!(" ({})", r.container))
                    .unwrap_or_default(),
            ),
            None => {
                let mut what = Vec::new();
                if !containers.is_empty() {
                    what.push(format!(
                        "container{} {}",
                        if containers.len() == 1 { "" } else { "s" },
                        containers.join(", ")
                    ));
                }
                if !listening.is_empty() {
                    what.push(format!("listening on {}", listening.join(", ")));
                }
                if let Some(r) = &root {
                    what.push(format!("gc root {r}"));
                }
                let runs = match (&running, containers.is_empty()) {
                    (Some(d), false) => format!("still runs {d}"),
                    _ => "still has state".to_string(),
                };
                format!(
                    "deployment {name} is no longer in {file} but {runs} ({}): \
                     `strata deploy prune` stops it",
                    if what.is_empty() {
                        "nothing runs".to_string()
                    } else {
                        what.join(", ")
                    }
                )
            }
        };
        Ok(Orphan {
            name: name.to_string(),
            orphan: true,
            running: if containers.is_empty() && elsewhere.is_none() {
                None
            } else {
                running
            },
            containers,
            listening,
            root,
            elsewhere,
            message,
        })
    }

    /// The orphans: deployments with state under this deploy file's name that the file no longer
    /// has and that were not pruned.
    pub fn orphans(&self) -> Result<Vec<Orphan>, DeployError> {
        let mut out = Vec::new();
        for (name, state) in self.stale()? {
            // A pruned one is not looked at again (no podman call per pass for it).
            if state.removed.is_none() {
                out.push(self.describe(&name, &state)?);
            }
        }
        Ok(out)
    }

    /// The error for `name`, which neither the file nor the state knows.
    fn unknown(&self, name: &str) -> DeployError {
        match self.find(name) {
            Err(e) => e,
            Ok(_) => DeployError::Unsupported {
                deployment: name.to_string(),
                message: format!(
                    "it is still in {}: take it out of the file first, or `strata deploy down \
                     {name}` to stop it",
                    self.file.path.display()
                ),
            },
        }
    }

    /// Prune the orphans named (all when `names` is empty): stop their front listeners and
    /// containers, remove their gc roots, record a `pruned` event, keep their state and history
    /// marked removed. With `dry_run`, only say what would be done. An orphan that ran elsewhere
    /// is refused (strata only hands digests over). A name still in the file, or never deployed,
    /// is an error naming the file and the known names.
    pub fn prune(&self, names: &[String], dry_run: bool) -> Result<Vec<Pruned>, DeployError> {
        let _lock = (!dry_run).then(|| self.states.lock()).transpose()?;
        let stale = self.stale()?;
        let chosen: Vec<&(String, DeploymentState)> = if names.is_empty() {
            stale.iter().collect()
        } else {
            names
                .iter()
                .map(|n| {
                    stale
                        .iter()
                        .find(|(name, _)| name == n)
                        .ok_or_else(|| self.unknown(n))
                })
                .collect::<Result<_, _>>()?
        };
        let mut out = Vec::new();
        for (name, state) in chosen {
            let orphan = self.describe(name, state)?;
            let already = state.removed.is_some() && orphan.containers.is_empty();
            if already && names.is_empty() {
                continue;
            }
            let mut pruned = Pruned {
                deployment: name.clone(),
                result: String::new(),
                containers: orphan.containers.clone(),
                listening: orphan.listening.clone(),
                root: orphan.root.clone(),
                message: String::new(),
            };
            if orphan.elsewhere.is_some() {
                pruned.result = "refused".into();
                pruned.message = orphan.message;
            } else if already {
                pruned.result = "pruned".into();
                pruned.message = format!(
                    "already pruned at {}",
                    state.removed.as_deref().unwrap_or("?")
                );
            } else if dry_run {
                pruned.result = "would-prune".into();
                pruned.message = format!("would stop and remove: {}", summary(&orphan));
            } else {
                self.prune_one(name, state.clone(), &orphan)?;
                pruned.result = "pruned".into();
                pruned.message = format!("stopped and removed: {}", summary(&orphan));
            }
            out.push(pruned);
        }
        Ok(out)
    }

    /// Take orphan `name` out of service, in an order a crash at any point leaves to the next
    /// prune: listeners, containers, gc root, then the state marked removed, then the event.
    fn prune_one(
        &self,
        name: &str,
        mut state: DeploymentState,
        orphan: &Orphan,
    ) -> Result<(), DeployError> {
        for p in &state.proxies {
            if listener_of(p.pid, self.states.path(), name) {
                stop_listener(p.pid, || listener_of(p.pid, self.states.path(), name));
            }
        }
        state.proxies.clear();
        self.states.save(name, &state)?;
        let grace = state
            .stop_grace_ms
            .map_or(DEFAULT_GRACE, Duration::from_millis);
        for c in self.target.list(name, &self.orphan_label(name))? {
            self.target.remove(name, &c.name, grace)?;
        }
        let roots_store = self.roots_store(&state);
        roots_store
            .as_ref()
            .unwrap_or(self.store)
            .roots()
            .set(&self.root_holder(name), &[])
            .map_err(|source| DeployError::Roots {
                deployment: name.to_string(),
                source: Box::new(source),
            })?;
        let old = state.running.take().map(|r| r.digest);
        state.in_flight = None;
        state.pending = None;
        state.removed = Some(strata_events::now());
        self.states.save(name, &state)?;
        if let Some(log) = self.events {
            log.record(&Event {
                kind: Some(Kind::Deploy),
                image: self.orphan_label(name),
                team: self.file.owner.clone(),
                user: Some(strata_events::current_user()),
                old_digest: old,
                reason: Some(format!(
                    "no longer in {}: {}",
                    self.file.path.display(),
                    summary(orphan)
                )),
                result: "pruned".into(),
                ..Default::default()
            })?;
        }
        Ok(())
    }
}

/// What an orphan holds, in words.
fn summary(o: &Orphan) -> String {
    let mut what = Vec::new();
    for c in &o.containers {
        what.push(format!("container {c}"));
    }
    for l in &o.listening {
        what.push(format!("listener on {l}"));
    }
    if let Some(r) = &o.root {
        what.push(format!("gc root {r}"));
    }
    if what.is_empty() {
        "nothing runs".into()
    } else {
        what.join(", ")
    }
}

/// Stop a front listener: SIGTERM, then SIGKILL when it is still there after a few seconds; return
/// once it is gone (`alive` says whether it still is), so its port is free.
fn stop_listener(pid: u32, alive: impl Fn() -> bool) {
    use nix::sys::signal::{Signal, kill};
    let pid_t = nix::unistd::Pid::from_raw(i32::try_from(pid).unwrap_or(i32::MAX));
    let _ = kill(pid_t, Signal::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(5);
    while alive() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    if alive() {
        let _ = kill(pid_t, Signal::SIGKILL);
        let deadline = Instant::now() + Duration::from_secs(5);
        while alive() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
