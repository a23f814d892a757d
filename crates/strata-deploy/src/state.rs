//! What strata knows about each deployment, kept beside the store: one JSON file per deployment
//! under `<state dir>/deploy/<file name>/`, written atomically (temp file, fsync, rename), and a lock
//! file that one reconcile holds at a time, so `strata watch`, `strata deploy` and `hold` never
//! interleave their writes.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::DeployError;

/// One deployment's state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DeploymentState {
    /// The digest the image resolved to at the last reconcile.
    pub desired: Option<String>,
    /// What runs.
    pub running: Option<Running>,
    /// The last digest that passed its health check.
    pub last_healthy: Option<String>,
    /// Every rollout, rollback and failure, oldest first, numbered from 1.
    pub history: Vec<Revision>,
    /// A pin: nothing replaces this digest until released.
    pub hold: Option<Hold>,
    /// Digests that failed their health check: not retried until a newer digest appears.
    pub bad: BTreeSet<String>,
    /// A new digest waiting for `strata deploy approve` (manual trigger).
    pub pending: Option<Pending>,
    /// The digest last approved.
    pub approved: Option<String>,
    /// The digest last refused by policy, and why (recorded once, not at every reconcile).
    pub refused: Option<Refusal>,
    /// A rollout started and not finished (a crash leaves it; the next reconcile cleans up).
    pub in_flight: Option<InFlight>,
    /// The front listeners' process ids, by public address.
    pub proxies: Vec<Proxy>,
    /// Where it ran when last saved (`local`, `gitops`, `kubernetes`): what `strata deploy
    /// prune` acts on once the deployment is gone from the deploy file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<crate::config::TargetKind>,
    /// Its stop grace period in milliseconds when last saved (prune stops an orphan with it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_grace_ms: Option<u64>,
    /// The store holding its gc root, when not the store of `strata deploy` (an `oci:` image).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub roots_in: Option<PathBuf>,
    /// When `strata deploy prune` took it out of service (RFC 3339); its history stays.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub removed: Option<String>,
}

/// The container that serves the deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Running {
    /// The image's manifest digest.
    pub digest: String,
    /// The container's name.
    pub container: String,
    /// Since when (RFC 3339).
    pub since: String,
    /// Whether its health check passed.
    pub healthy: bool,
    /// Where each container port is reached ([`crate::proxy::Endpoint`]): what the front
    /// listeners forward to.
    pub ports: Vec<(u16, String)>,
}

/// One line of history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Revision {
    /// 1, 2, ...
    pub n: u64,
    /// The digest.
    pub digest: String,
    /// When (RFC 3339).
    pub time: String,
    /// `deploy`, `rollback`.
    pub action: String,
    /// `ok` (healthy), `failed` (health check failed).
    pub result: String,
    /// Why, in words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
}

/// A pin on a digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Hold {
    /// The digest held.
    pub digest: String,
    /// Who held it.
    pub by: String,
    /// Since when.
    pub since: String,
    /// Why (`hold`, `rollback`).
    pub reason: String,
}

/// A digest waiting for approval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pending {
    /// The digest.
    pub digest: String,
    /// Since when.
    pub since: String,
}

/// A policy refusal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Refusal {
    /// The digest.
    pub digest: String,
    /// Why.
    pub reason: String,
}

/// A rollout in progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InFlight {
    /// The digest being rolled out.
    pub digest: String,
    /// The new container's name.
    pub container: String,
}

/// A front listener process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Proxy {
    /// `IP:PORT` it listens on.
    pub listen: String,
    /// Its process id.
    pub pid: u32,
}

/// How many of the latest healthy digests of the history stay in the store (gc roots) for a
/// rollback, besides what runs, is held, waits or is being rolled out.
pub const ROLLBACK_WINDOW: usize = 10;

impl DeploymentState {
    /// The digests gc must keep: what runs, the rollout in flight, the hold, the digest waiting
    /// for approval, the last healthy one, and the latest [`ROLLBACK_WINDOW`] healthy digests of
    /// the history (newest first, no repeats).
    pub fn keep(&self) -> Vec<String> {
        let mut keep: Vec<String> = Vec::new();
        let mut add = |d: &str| {
            if !keep.iter().any(|k| k == d) {
                keep.push(d.to_string());
            }
        };
        for d in [
            self.running.as_ref().map(|r| r.digest.as_str()),
            self.in_flight.as_ref().map(|f| f.digest.as_str()),
            self.hold.as_ref().map(|h| h.digest.as_str()),
            self.pending.as_ref().map(|p| p.digest.as_str()),
            self.last_healthy.as_deref(),
        ]
        .into_iter()
        .flatten()
        {
            add(d);
        }
        let mut healthy = 0;
        let mut seen: Vec<&str> = Vec::new();
        for r in self.history.iter().rev().filter(|r| r.result == "ok") {
            if healthy == ROLLBACK_WINDOW {
                break;
            }
            if !seen.contains(&r.digest.as_str()) {
                seen.push(&r.digest);
                healthy += 1;
                add(&r.digest);
            }
        }
        keep
    }

    /// The next revision number.
    pub fn next_revision(&self) -> u64 {
        self.history.last().map_or(1, |r| r.n + 1)
    }

    /// Append a revision.
    pub fn record(&mut self, digest: &str, action: &str, result: &str, cause: Option<String>) {
        let n = self.next_revision();
        self.history.push(Revision {
            n,
            digest: digest.to_string(),
            time: strata_events::now(),
            action: action.to_string(),
            result: result.to_string(),
            cause,
        });
    }
}

/// The state directory of one deploy file, and its lock.
#[derive(Debug, Clone)]
pub struct StateDir {
    dir: PathBuf,
}

/// An exclusive hold on a deploy file's state; released on drop.
#[derive(Debug)]
pub struct StateLock {
    _file: File,
}

impl StateDir {
    /// The state of deploy file `file_name` under `state_root` (the store's state directory).
    pub fn new(state_root: &Path, file_name: &str) -> StateDir {
        StateDir {
            dir: state_root.join("deploy").join(file_name),
        }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    fn io(&self, path: &Path) -> impl FnOnce(std::io::Error) -> DeployError {
        let path = path.to_path_buf();
        move |source| DeployError::State { path, source }
    }

    /// Wait for, then take, the exclusive lock.
    pub fn lock(&self) -> Result<StateLock, DeployError> {
        std::fs::create_dir_all(&self.dir).map_err(self.io(&self.dir))?;
        let path = self.dir.join(".lock");
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(self.io(&path))?;
        rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)
            .map_err(|e| self.io(&path)(e.into()))?;
        Ok(StateLock { _file: file })
    }

    fn file(&self, deployment: &str) -> PathBuf {
        self.dir.join(format!("{deployment}.json"))
    }

    /// Every deployment with saved state under `state_root` (the store's state directory), as
    /// (deploy file name, deployment name), sorted: what the web pages list.
    pub fn all(state_root: &Path) -> Result<Vec<(String, String)>, DeployError> {
        let names = |dir: &Path| -> Result<Vec<String>, DeployError> {
            let entries = match std::fs::read_dir(dir) {
                Ok(entries) => entries,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
                Err(source) => {
                    return Err(DeployError::State {
                        path: dir.to_path_buf(),
                        source,
                    });
                }
            };
            let mut names: Vec<String> = entries
                .flatten()
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| !n.starts_with('.'))
                .collect();
            names.sort();
            Ok(names)
        };
        let root = state_root.join("deploy");
        let mut all = Vec::new();
        for file in names(&root)? {
            if !root.join(&file).is_dir() {
                continue;
            }
            for entry in names(&root.join(&file))? {
                if let Some(name) = entry.strip_suffix(".json") {
                    all.push((file.clone(), name.to_string()));
                }
            }
        }
        Ok(all)
    }

    /// A deployment's state (the default when none was saved).
    pub fn load(&self, deployment: &str) -> Result<DeploymentState, DeployError> {
        let path = self.file(deployment);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|source| DeployError::StateFormat { path, source }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(DeploymentState::default()),
            Err(e) => Err(self.io(&path)(e)),
        }
    }

    /// Save a deployment's state atomically: a crash leaves the old file or the new, never half.
    pub fn save(&self, deployment: &str, state: &DeploymentState) -> Result<(), DeployError> {
        let path = self.file(deployment);
        self.write_atomic(&path, &serde_json::to_vec_pretty(state).unwrap_or_default())
    }

    /// The deployments that have a saved state, by name, sorted.
    pub fn names(&self) -> Result<Vec<String>, DeployError> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(self.io(&self.dir)(e)),
        };
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(self.io(&self.dir))?;
            let file = entry.file_name();
            let Some(file) = file.to_str() else { continue };
            if let Some(name) = file.strip_suffix(".json")
                && !name.is_empty()
                && !name.starts_with('.')
            {
                names.push(name.to_string());
            }
        }
        names.sort();
        Ok(names)
    }

    /// Where the front listener of `deployment`'s public `listen` address reads its backend.
    pub fn backend_file(&self, deployment: &str, container_port: u16) -> PathBuf {
        self.dir
            .join(format!("{deployment}.{container_port}.backend"))
    }

    /// Write `bytes` to `path` atomically.
    pub fn write_atomic(&self, path: &Path, bytes: &[u8]) -> Result<(), DeployError> {
        std::fs::create_dir_all(&self.dir).map_err(self.io(&self.dir))?;
        let mut tmp = tempfile::NamedTempFile::new_in(&self.dir).map_err(self.io(path))?;
        tmp.write_all(bytes).map_err(self.io(path))?;
        tmp.as_file().sync_all().map_err(self.io(path))?;
        tmp.persist(path).map_err(|e| self.io(path)(e.error))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_and_starts_empty() {
        let dir = tempfile::tempdir().unwrap();
        let states = StateDir::new(dir.path(), "prod");
        let _lock = states.lock().unwrap();
        assert_eq!(states.load("web").unwrap(), DeploymentState::default());
        let mut s = DeploymentState::default();
        s.record("sha256:aa", "deploy", "ok", Some("first".into()));
        s.record("sha256:bb", "deploy", "failed", None);
        s.bad.insert("sha256:bb".into());
        states.save("web", &s).unwrap();
        let back = states.load("web").unwrap();
        assert_eq!(back, s);
        assert_eq!(back.history[1].n, 2);
    }

    // Issue 21: the web pages list every deployment with state.
    #[test]
    fn every_saved_deployment_is_listed_by_deploy_file_and_name() {
        let dir = tempfile::tempdir().unwrap();
        assert!(StateDir::all(dir.path()).unwrap().is_empty());
        for (file, name) in [("prod", "web"), ("prod", "api"), ("staging", "web")] {
            let states = StateDir::new(dir.path(), file);
            let _lock = states.lock().unwrap();
            states.save(name, &DeploymentState::default()).unwrap();
        }
        let all = StateDir::all(dir.path()).unwrap();
        let all: Vec<(&str, &str)> = all.iter().map(|(f, n)| (f.as_str(), n.as_str())).collect();
        assert_eq!(all, [("prod", "api"), ("prod", "web"), ("staging", "web")]);
    }

    #[test]
    fn a_damaged_state_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let states = StateDir::new(dir.path(), "prod");
        std::fs::create_dir_all(states.path()).unwrap();
        std::fs::write(states.path().join("web.json"), "{not json").unwrap();
        let e = states.load("web").unwrap_err().to_string();
        assert!(e.contains("web.json") && e.contains("damaged"), "{e}");
    }
}
