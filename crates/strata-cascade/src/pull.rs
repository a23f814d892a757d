//! Fetching the external images a chain image's Dockerfile names (`FROM registry/x:tag`,
//! `COPY --from=...`), as buildah's `--pull` does, before the image's build key is computed: under
//! `--pull always` a tag that moved upstream makes every image on it stale. The pulling is
//! `strata_remote::BasePuller`'s; this module reads the Dockerfile from the build context and
//! records each pull in the events log.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;

use strata_chain::{Build, Chain};
use strata_events::{Event, EventLog, Kind};
use strata_oci::Store;
use strata_remote::{BasePullError, PullPolicy, RegistryError, RemoteRef};

use crate::upstream::{LockMode, Upstreams};

/// Pulls each external reference at most once per run, for every image that names it.
pub struct BasePuller {
    inner: strata_remote::BasePuller,
}

impl BasePuller {
    /// A puller following `policy`.
    pub fn new(policy: PullPolicy) -> Self {
        Self {
            inner: strata_remote::BasePuller::new(policy),
        }
    }

    /// Make the external images of chain image `i` present as the policy says. Returns the
    /// references pulled now; the error names the Dockerfile line and the image, with its causes.
    ///
    /// An upstream locked in `upstreams` is pulled by its locked digest when the store lacks it,
    /// never by its tag (unless the run follows tags: `--pull always`).
    pub(crate) fn pull_for(
        &self,
        chain: &Chain,
        store: &Store,
        i: usize,
        upstreams: Option<&Upstreams>,
        events: Option<&Mutex<EventLog>>,
    ) -> Result<Vec<String>, BasePullError> {
        let image = &chain.file.images[i];
        let Build::Dockerfile {
            context,
            dockerfile,
        } = &image.build
        else {
            return Ok(Vec::new());
        };
        let pinned = |reference: &str| {
            upstreams
                .filter(|u| u.mode() != LockMode::Follow)
                .and_then(|u| u.pinned(reference))
        };
        // The chain parsed every Dockerfile when it loaded (a load fails on one that does not
        // parse): one naming no image outside the chain has nothing to pull, and is not read and
        // parsed again here (once per image, a few percent of a large no-op cascade).
        let mut pulled = if chain.graph().external_uses(i).is_empty() {
            Vec::new()
        } else {
            self.pull_dockerfile(
                store,
                context,
                dockerfile,
                &image.args,
                |reference| chain.resolve(reference).is_some() || pinned(reference).is_some(),
                events,
            )?
        };
        for site in chain.graph().external_uses(i) {
            let Some(digest) = pinned(&site.reference) else {
                continue;
            };
            let Ok(remote) = RemoteRef::parse(&site.reference) else {
                continue;
            };
            let by_digest = format!("{}/{}@{digest}", remote.registry, remote.repository);
            let record = |reference: &str, result: Result<bool, &RegistryError>| {
                if let Some(events) = events {
                    log_pull(store, events, reference, result);
                }
            };
            match self.inner.ensure(store, &by_digest, &record) {
                Ok(true) => pulled.push(by_digest),
                Ok(false) => {}
                Err(source) => {
                    return Err(BasePullError {
                        dockerfile: dockerfile.clone(),
                        line: site.line,
                        reference: by_digest,
                        source,
                    });
                }
            }
        }
        Ok(pulled)
    }

    /// Make the images `dockerfile` names (after `build_args`; not those `is_local` claims, such
    /// as chain images) present as the policy says. Returns the references pulled now; the
    /// error names the Dockerfile line and the image. A Dockerfile that does not parse is left
    /// to the build, which reports it, and so is one that is a symlink leading outside the
    /// `context` (never read).
    pub fn pull_dockerfile(
        &self,
        store: &Store,
        context: &Path,
        dockerfile: &Path,
        build_args: &BTreeMap<String, String>,
        is_local: impl Fn(&str) -> bool,
        events: Option<&Mutex<EventLog>>,
    ) -> Result<Vec<String>, BasePullError> {
        if self.inner.policy() == PullPolicy::Never {
            return Ok(Vec::new());
        }
        let Ok(Some(text)) = strata_build::context::read_context_file(context, dockerfile) else {
            return Ok(Vec::new());
        };
        let record = |reference: &str, result: Result<bool, &RegistryError>| {
            if let Some(events) = events {
                log_pull(store, events, reference, result);
            }
        };
        self.inner
            .pull_dockerfile(store, dockerfile, &text, build_args, is_local, &record)
    }
}

/// Record a pull (or a failed one) in the events log.
fn log_pull(
    store: &Store,
    events: &Mutex<EventLog>,
    reference: &str,
    result: Result<bool, &RegistryError>,
) {
    let digest = store
        .refs()
        .resolve(reference)
        .ok()
        .map(|d| d.digest().to_string());
    let log = events.lock().unwrap_or_else(|e| e.into_inner());
    let _ = log.record(&Event {
        kind: Some(Kind::Pull),
        image: reference.to_string(),
        user: Some(strata_events::current_user()),
        new_digest: digest,
        reason: Some(match &result {
            Err(e) => e.to_string(),
            Ok(_) => "a FROM line names it".to_string(),
        }),
        result: if result.is_ok() { "ok" } else { "failed" }.to_string(),
        ..Event::default()
    });
}
