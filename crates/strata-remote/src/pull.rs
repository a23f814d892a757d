//! Pulling what builds need: the images FROM lines name ([`BasePuller`], [`ensure_base`], as
//! buildah's `--pull` does) and pinned bases ([`pull_pinned`]).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use strata_oci::{Descriptor, Store};

use crate::client::{Client, ClientOptions, RemoteRef};
use crate::copy::{Location, copy};
use crate::error::{RegistryError, Result};

/// Make sure the store has the image a pinned reference (`HOST/NAME[:TAG]@sha256:...`) names,
/// pulling it (and its referrers) when it is missing, and return its descriptor. The pulled
/// manifest must hash to the pin; it is stored under `HOST/NAME:TAG` when there is a tag.
/// This is how `source = { image = "...@sha256:..." }` bases are fetched on demand.
pub fn pull_pinned(client: &Client, store: &Store, reference: &str) -> Result<Descriptor> {
    let remote = RemoteRef::parse(reference)?;
    let Some(pin) = remote.digest.clone() else {
        return Err(RegistryError::Invalid(format!(
            "{reference} is not pinned: add @sha256:<digest>"
        )));
    };
    if store.blobs().has(&pin)
        && let Ok(descriptor) = store.refs().resolve(&pin.to_string())
    {
        return Ok(descriptor);
    }
    let stored_as = match &remote.tag {
        Some(tag) => format!("{}/{}:{tag}", remote.registry, remote.repository),
        None => pin.to_string(),
    };
    let report = copy(
        client,
        &Location::Remote(remote),
        &Location::Layout {
            dir: store.root().to_path_buf(),
            reference: stored_as,
        },
    )?;
    if report.digest != pin.to_string() {
        return Err(RegistryError::DigestMismatch {
            what: reference.to_string(),
            expected: pin.to_string(),
            actual: report.digest,
        });
    }
    Ok(store.refs().resolve(&pin.to_string())?)
}

/// When a build fetches the images its FROM lines name (buildah's `--pull`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PullPolicy {
    /// Pull an image the store does not have (the default).
    #[default]
    Missing,
    /// Pull every time, so a moved tag is seen (a digest-pinned image is never re-pulled).
    Always,
    /// Never pull: a missing image fails the build.
    Never,
}

/// Make the image a FROM line names (`reference`, as written) present in the store as `policy`
/// says, pulling it with `client`. Returns whether it was pulled. References without a registry
/// host, and `localhost/...` (strata's own local names), are never pulled: they are the store's
/// or the chain's. A pulled image is stored under `<registry>/<repository>:<tag>` and under the
/// reference as written (so `docker.io/busybox` finds `docker.io/library/busybox`); a pinned one
/// must hash to its pin.
pub fn ensure_base(
    client: &Client,
    store: &Store,
    reference: &str,
    policy: PullPolicy,
) -> Result<bool> {
    if policy == PullPolicy::Never {
        return Ok(false);
    }
    let Ok(remote) = RemoteRef::parse(reference) else {
        return Ok(false);
    };
    if remote.registry == "localhost" {
        return Ok(false);
    }
    if remote.digest.is_some() {
        if store.refs().resolve(reference).is_ok() {
            return Ok(false);
        }
        // A pinned reference resolves by its digest: there is no tag to add.
        pull_pinned(client, store, &remote.to_string())?;
        return Ok(true);
    }
    if policy == PullPolicy::Missing && store.refs().resolve(reference).is_ok() {
        return Ok(false);
    }
    let tag = remote.tag.clone().unwrap_or_else(|| "latest".to_string());
    let stored_as = format!("{}/{}:{tag}", remote.registry, remote.repository);
    copy(
        client,
        &Location::Remote(remote),
        &Location::Layout {
            dir: store.root().to_path_buf(),
            reference: stored_as.clone(),
        },
    )?;
    let descriptor = store.refs().resolve(&stored_as)?;
    store.refs().tag(reference, &descriptor)?;
    Ok(true)
}

/// A base a Dockerfile names could not be pulled.
#[derive(Debug, thiserror::Error)]
#[error("{}:{line}: cannot pull {reference}", dockerfile.display())]
pub struct BasePullError {
    /// The Dockerfile.
    pub dockerfile: PathBuf,
    /// The line of the FROM (or `--from`) naming the image.
    pub line: usize,
    /// The reference, as the Dockerfile names it (after build args).
    pub reference: String,
    /// Why the pull failed (shared: one failed attempt answers every image naming the base).
    #[source]
    pub source: Arc<RegistryError>,
}

/// Reports each pull a [`BasePuller`] made or failed, for the caller's log: the reference, and
/// `Ok(true)` or why it failed. Bases already present, local names and reused answers are not
/// reported.
pub type OnAttempt<'a> = &'a dyn Fn(&str, std::result::Result<bool, &RegistryError>);

/// Pulls each external image at most once per run, for every Dockerfile that names it, as a
/// [`PullPolicy`] says.
pub struct BasePuller {
    policy: PullPolicy,
    /// Created on first use: a run with no external images never builds a client.
    client: Mutex<Option<Client>>,
    /// reference → the outcome of its one attempt this run (Ok: whether it was pulled).
    done: Mutex<HashMap<String, std::result::Result<bool, Arc<RegistryError>>>>,
}

impl BasePuller {
    /// A puller following `policy`.
    pub fn new(policy: PullPolicy) -> Self {
        Self {
            policy,
            client: Mutex::new(None),
            done: Mutex::new(HashMap::new()),
        }
    }

    /// The policy it follows.
    pub fn policy(&self) -> PullPolicy {
        self.policy
    }

    /// Make the images the Dockerfile `text` (read from `dockerfile`) names present, after
    /// `build_args`, except those `is_local` claims (such as a chain's own images). Returns the
    /// references pulled now. A Dockerfile that does not parse is left to the build, which
    /// reports it.
    pub fn pull_dockerfile(
        &self,
        store: &Store,
        dockerfile: &Path,
        text: &str,
        build_args: &BTreeMap<String, String>,
        is_local: impl Fn(&str) -> bool,
        on_attempt: OnAttempt<'_>,
    ) -> std::result::Result<Vec<String>, BasePullError> {
        if self.policy == PullPolicy::Never {
            return Ok(Vec::new());
        }
        let Ok(deps) = strata_dockerfile::parse(text).and_then(|d| d.dependencies(build_args))
        else {
            return Ok(Vec::new());
        };
        let mut pulled = Vec::new();
        for dep in deps {
            if is_local(&dep.reference) {
                continue;
            }
            let outcome = self.ensure_once(store, &dep.reference, on_attempt);
            if matches!(outcome, Ok((true, true))) {
                pulled.push(dep.reference.clone());
            }
            if let Err(source) = outcome {
                return Err(BasePullError {
                    dockerfile: dockerfile.to_path_buf(),
                    line: dep.line,
                    reference: dep.reference,
                    source,
                });
            }
        }
        Ok(pulled)
    }

    /// Make the image `reference` names present as the policy says, at most once per run (a
    /// second call gives the first one's outcome). Returns whether it was pulled; local names
    /// are never pulled.
    pub fn ensure(
        &self,
        store: &Store,
        reference: &str,
        on_attempt: OnAttempt<'_>,
    ) -> std::result::Result<bool, Arc<RegistryError>> {
        if self.policy == PullPolicy::Never {
            return Ok(false);
        }
        self.ensure_once(store, reference, on_attempt)
            .map(|(pulled, first)| pulled && first)
    }

    /// One attempt per reference and run: (pulled, whether this call made the attempt).
    fn ensure_once(
        &self,
        store: &Store,
        reference: &str,
        on_attempt: OnAttempt<'_>,
    ) -> std::result::Result<(bool, bool), Arc<RegistryError>> {
        // Holding the map serialises concurrent images that need the same base, so the second
        // finds it pulled.
        let mut done = self.done.lock().unwrap_or_else(|e| e.into_inner());
        match done.get(reference) {
            Some(outcome) => outcome.clone().map(|pulled| (pulled, false)),
            None => {
                let outcome = self.pull(store, reference, on_attempt);
                done.insert(reference.to_string(), outcome.clone());
                outcome.map(|pulled| (pulled, true))
            }
        }
    }

    fn pull(
        &self,
        store: &Store,
        reference: &str,
        on_attempt: OnAttempt<'_>,
    ) -> std::result::Result<bool, Arc<RegistryError>> {
        let mut client = self.client.lock().unwrap_or_else(|e| e.into_inner());
        let result = match &*client {
            Some(client) => ensure_base(client, store, reference, self.policy),
            None => Client::new(ClientOptions::default()).and_then(|new| {
                let client = client.insert(new);
                ensure_base(client, store, reference, self.policy)
            }),
        };
        if !matches!(result, Ok(false)) {
            on_attempt(reference, result.as_ref().copied());
        }
        result.map_err(Arc::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    #[test]
    fn each_base_is_tried_once_per_run_and_local_names_never() {
        // A registry that is down: connections are refused.
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let dir = tempfile::tempdir().unwrap();
        let store = Store::init(dir.path()).unwrap();
        let puller = BasePuller::new(PullPolicy::Missing);
        let attempts = RefCell::new(Vec::new());
        let record = |reference: &str, result: std::result::Result<bool, &RegistryError>| {
            attempts
                .borrow_mut()
                .push((reference.to_string(), result.is_ok()));
        };
        let text = format!(
            "FROM acme/chain-image\nFROM localhost/own\nFROM 127.0.0.1:{port}/vendor/base:1\n"
        );
        for _ in 0..2 {
            let err = puller
                .pull_dockerfile(
                    &store,
                    Path::new("Dockerfile"),
                    &text,
                    &BTreeMap::new(),
                    |r| r == "acme/chain-image",
                    &record,
                )
                .unwrap_err();
            assert_eq!(err.line, 3);
            assert_eq!(err.reference, format!("127.0.0.1:{port}/vendor/base:1"));
            assert!(
                err.to_string()
                    .starts_with(&format!("Dockerfile:3: cannot pull 127.0.0.1:{port}/")),
                "{err}"
            );
        }
        assert_eq!(
            attempts.into_inner(),
            vec![(format!("127.0.0.1:{port}/vendor/base:1"), false)],
            "localhost/own and the chain's image are not pulled, and the failure is not retried"
        );
    }

    #[test]
    fn never_pulls_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::init(dir.path()).unwrap();
        let puller = BasePuller::new(PullPolicy::Never);
        let pulled = puller
            .pull_dockerfile(
                &store,
                Path::new("Dockerfile"),
                "FROM 127.0.0.1:1/x:1\n",
                &BTreeMap::new(),
                |_| false,
                &|_, _| panic!("no attempt under --pull never"),
            )
            .unwrap();
        assert!(pulled.is_empty());
    }
}
