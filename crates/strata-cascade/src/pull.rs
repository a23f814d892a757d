//! Fetching the external images a chain image's Dockerfile names (`FROM registry/x:tag`,
//! `COPY --from=...`), as buildah's `--pull` does, before the image's build key is computed: under
//! `--pull always` a tag that moved upstream makes every image on it stale.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Mutex;

use strata_chain::{Build, Chain};
use strata_events::{Event, EventLog, Kind};
use strata_oci::Store;
use strata_registry::{Client, ClientOptions, PullPolicy};

/// Pulls each external reference at most once per run, for every image that names it.
pub struct BasePuller {
    policy: PullPolicy,
    /// Created on first use: a chain with no external images never builds a client.
    client: Mutex<Option<Client>>,
    /// reference → the outcome of its one attempt this run (Ok: whether it was pulled).
    done: Mutex<HashMap<String, Result<bool, String>>>,
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

    /// Make the external images of chain image `i` present as the policy says. Returns the
    /// references pulled now; the error names the Dockerfile line and the image.
    pub(crate) fn pull_for(
        &self,
        chain: &Chain,
        store: &Store,
        i: usize,
        events: Option<&Mutex<EventLog>>,
    ) -> Result<Vec<String>, String> {
        let image = &chain.file.images[i];
        let Build::Dockerfile {
            context,
            dockerfile,
        } = &image.build
        else {
            return Ok(Vec::new());
        };
        self.pull_dockerfile(
            store,
            context,
            dockerfile,
            &image.args,
            |reference| chain.resolve(reference).is_some(),
            events,
        )
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
    ) -> Result<Vec<String>, String> {
        if self.policy == PullPolicy::Never {
            return Ok(Vec::new());
        }
        let Ok(Some(text)) = strata_build::context::read_context_file(context, dockerfile) else {
            return Ok(Vec::new());
        };
        let Ok(deps) = strata_dockerfile::parse(&text).and_then(|d| d.dependencies(build_args))
        else {
            return Ok(Vec::new());
        };
        let mut pulled = Vec::new();
        for dep in deps {
            if is_local(&dep.reference) {
                continue;
            }
            // One attempt per reference and run; holding the map serialises concurrent images
            // that need the same base, so the second finds it pulled.
            let mut done = self.done.lock().unwrap_or_else(|e| e.into_inner());
            let outcome = match done.get(&dep.reference) {
                Some(outcome) => outcome.clone(),
                None => {
                    let outcome = self.pull(store, &dep.reference, events);
                    done.insert(dep.reference.clone(), outcome.clone());
                    if outcome == Ok(true) {
                        pulled.push(dep.reference.clone());
                    }
                    outcome
                }
            };
            if let Err(e) = outcome {
                return Err(format!(
                    "{}:{}: cannot pull {}: {e}",
                    dockerfile.display(),
                    dep.line,
                    dep.reference
                ));
            }
        }
        Ok(pulled)
    }

    fn pull(
        &self,
        store: &Store,
        reference: &str,
        events: Option<&Mutex<EventLog>>,
    ) -> Result<bool, String> {
        let mut client = self.client.lock().unwrap_or_else(|e| e.into_inner());
        if client.is_none() {
            *client = Some(Client::new(ClientOptions::default()).map_err(|e| e.to_string())?);
        }
        let client = client.as_ref().expect("created above");
        let result = strata_registry::ensure_base(client, store, reference, self.policy)
            .map_err(|e| e.to_string());
        if let (Some(events), Ok(true) | Err(_)) = (events, &result) {
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
                    Err(e) => e.clone(),
                    Ok(_) => "a FROM line names it".to_string(),
                }),
                result: if result.is_ok() { "ok" } else { "failed" }.to_string(),
                ..Event::default()
            });
        }
        result
    }
}
