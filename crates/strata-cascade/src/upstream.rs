//! Upstreams and `strata.lock` in the cascade: builds read an upstream at its locked digest,
//! lock what a build resolves for the first time, and `strata update` re-resolves by manifest
//! HEAD (no layer is downloaded).
//!
//! The provenance fields of a lock entry (who built the upstream, with which key, when) are filled
//! only from an in-toto provenance attestation attached to the upstream as a referrer, whose DSSE
//! signature verifies with a key of this chain's `[teams]` and whose subject is the upstream's
//! digest: the team is the one trusting that key, never what the statement claims.

use std::io::Read;
use std::path::Path;
use std::sync::Mutex;

use strata_attest::{Envelope, TrustConfig};
use strata_chain::lock::is_upstream;
use strata_chain::{Chain, Lock, Locked};
use strata_oci::{Digest, Store};
use strata_remote::{Client, RegistryError, RemoteRef};

/// What a run knows of the chain's upstreams: the lock as read, plus what the run resolved.
#[derive(Debug, Default)]
pub struct Upstreams {
    lock: Mutex<Lock>,
    mode: LockMode,
}

/// How a run treats the lock.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LockMode {
    /// Use locked digests; lock an upstream met for the first time (`strata build`).
    #[default]
    Lock,
    /// Use locked digests, never add or move one (`strata build --locked`; the caller checked
    /// that the lock covers every upstream).
    Frozen,
    /// Follow the tags: re-resolve every upstream this run pulls and move the lock
    /// (`strata build --pull always`).
    Follow,
}

/// Why an upstream could not be resolved, or its lock written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UpstreamError {
    /// The registry did not answer as asked.
    #[error("cannot resolve {reference}")]
    Resolve {
        /// The upstream.
        reference: String,
        /// Why.
        #[source]
        source: RegistryError,
    },
    /// The registry has no manifest under the upstream's tag.
    #[error("cannot resolve {reference}: the registry has no such manifest")]
    NotFound {
        /// The upstream.
        reference: String,
    },
    /// `strata update REF` named something no Dockerfile of the chain names as an upstream.
    #[error("{reference} is not an upstream of chain \"{chain}\" (its upstreams: {known})")]
    Unknown {
        /// As given.
        reference: String,
        /// The chain.
        chain: String,
        /// The chain's upstreams, comma separated (or "none").
        known: String,
    },
    /// The chain's team keys could not be read.
    #[error("cannot read the chain's team keys")]
    Keys(#[source] strata_attest::KeyError),
    /// The lock could not be written.
    #[error("cannot write {}", path.display())]
    Write {
        /// The lock file.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: strata_oci::Error,
    },
}

impl Upstreams {
    /// The upstreams of a run starting from `lock`.
    pub fn new(lock: Lock, mode: LockMode) -> Upstreams {
        Upstreams {
            lock: Mutex::new(lock),
            mode,
        }
    }

    /// How this run treats the lock.
    pub fn mode(&self) -> LockMode {
        self.mode
    }

    /// The digest `reference` is locked to, if it is locked.
    pub fn pinned(&self, reference: &str) -> Option<String> {
        let lock = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        lock.get(reference).map(|e| e.digest.clone())
    }

    /// The lock as it stands now (what the run read, plus what it resolved).
    pub fn lock(&self) -> Lock {
        self.lock.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// After image `i`'s upstreams were pulled: lock those met for the first time (or, when
    /// following tags, those whose tag now names another digest) at the digest the store has.
    /// An upstream the store lacks is left to the build, which says so.
    pub(crate) fn record_image(&self, chain: &Chain, store: &Store, i: usize) {
        if self.mode == LockMode::Frozen {
            return;
        }
        for reference in chain.graph().external_of(i) {
            if !is_upstream(reference) {
                continue;
            }
            let mut lock = self.lock.lock().unwrap_or_else(|e| e.into_inner());
            let known = lock.get(reference).map(|e| e.digest.clone());
            if known.is_some() && self.mode != LockMode::Follow {
                continue;
            }
            let Ok(descriptor) = store.refs().resolve(reference) else {
                continue;
            };
            let digest = descriptor.digest().to_string();
            if known.as_deref() == Some(digest.as_str()) {
                continue;
            }
            let Ok(remote) = RemoteRef::parse(reference) else {
                continue;
            };
            let mut entry = new_entry(reference, &remote.registry, &digest);
            if let Ok(trust) = crate::sign::trust_config(chain)
                && let Ok(digest) = digest.parse::<Digest>()
                && let Ok(envelopes) = strata_attest::find(store, &digest)
            {
                signed_provenance(&mut entry, &trust, &teams(chain), &digest, &envelopes);
            }
            lock.insert(entry);
        }
    }
}

fn teams(chain: &Chain) -> Vec<&str> {
    chain.file.teams.keys().map(String::as_str).collect()
}

fn new_entry(reference: &str, registry: &str, digest: &str) -> Locked {
    Locked {
        reference: reference.to_string(),
        digest: digest.to_string(),
        registry: registry.to_string(),
        resolved: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        built_by: None,
        key: None,
        built: None,
    }
}

/// Fill `entry`'s provenance fields from the first of `envelopes` that a key of `trust`
/// verifies and whose statement is provenance about `digest`.
fn signed_provenance(
    entry: &mut Locked,
    trust: &TrustConfig,
    teams: &[&str],
    digest: &Digest,
    envelopes: &[Envelope],
) {
    let keys: Vec<strata_attest::PublicKey> = teams
        .iter()
        .flat_map(|team| trust.keys_of(team).iter().cloned())
        .collect();
    if keys.is_empty() {
        return;
    }
    for envelope in envelopes {
        let Ok(verified) = envelope.verify(&keys) else {
            continue;
        };
        if !verified.statement.subject_digests().contains(digest) {
            continue;
        }
        // Other signed statements (the SBOMs) are about the same digest: only provenance says
        // who built it and when.
        let Ok(provenance) = verified.statement.provenance() else {
            continue;
        };
        let Some(team) = trust.team_of_key(&verified.key_id) else {
            continue;
        };
        entry.built_by = Some(team.to_string());
        entry.key = Some(verified.key_id.as_str().to_string());
        entry.built = provenance.run_details.metadata.and_then(|m| m.finished_on);
        return;
    }
}

/// The upstreams `strata update ARGS` re-resolves: all of the chain's when `only` is empty, else
/// those named (as written in the Dockerfile, or by repository with or without the tag).
pub fn select_upstreams(chain: &Chain, only: &[String]) -> Result<Vec<String>, UpstreamError> {
    let all: Vec<String> = chain.upstreams().into_keys().collect();
    if only.is_empty() {
        return Ok(all);
    }
    let mut chosen = Vec::new();
    for wanted in only {
        let matches: Vec<&String> = all
            .iter()
            .filter(|r| {
                *r == wanted
                    || strata_reference::parse(r).is_ok_and(|p| {
                        p.path() == wanted
                            || p.tag()
                                .is_some_and(|t| format!("{}:{t}", p.path()) == *wanted)
                    })
            })
            .collect();
        if matches.is_empty() {
            return Err(UpstreamError::Unknown {
                reference: wanted.clone(),
                chain: chain.file.name.clone(),
                known: if all.is_empty() {
                    "none".to_string()
                } else {
                    all.join(", ")
                },
            });
        }
        chosen.extend(matches.into_iter().cloned());
    }
    chosen.sort();
    chosen.dedup();
    Ok(chosen)
}

/// `strata update`: re-resolve `references` (from [`select_upstreams`]) on their registries by
/// manifest HEAD, and return the new lock. An upstream whose digest did not move keeps its entry
/// as it was; a moved or new one gets a new entry, with the provenance its registry publishes.
/// When every upstream is re-resolved (`all`), entries no Dockerfile names any more are dropped.
pub fn update(
    chain: &Chain,
    old: &Lock,
    references: &[String],
    all: bool,
    client: &Client,
) -> Result<Lock, UpstreamError> {
    let trust = crate::sign::trust_config(chain).map_err(UpstreamError::Keys)?;
    let mut lock = old.clone();
    if all {
        let named = chain.upstreams();
        lock.retain(|r| named.contains_key(r));
    }
    for reference in references {
        let err = |source| UpstreamError::Resolve {
            reference: reference.clone(),
            source,
        };
        let remote = RemoteRef::parse(reference).map_err(err)?;
        let digest = match &remote.digest {
            Some(pin) => pin.clone(),
            None => match client.head_manifest(&remote).map_err(err)? {
                Some(digest) => digest,
                // A registry that omits Docker-Content-Digest: the manifest's own bytes decide.
                None => match client.get_manifest(&remote) {
                    Ok(manifest) => manifest.digest,
                    Err(RegistryError::Api { status: 404, .. }) => {
                        return Err(UpstreamError::NotFound {
                            reference: reference.clone(),
                        });
                    }
                    Err(e) => return Err(err(e)),
                },
            },
        };
        if old
            .get(reference)
            .is_some_and(|e| e.digest == digest.to_string())
        {
            continue;
        }
        let mut entry = new_entry(reference, &remote.registry, &digest.to_string());
        let envelopes = remote_attestations(client, &remote, &digest);
        signed_provenance(&mut entry, &trust, &teams(chain), &digest, &envelopes);
        lock.insert(entry);
    }
    Ok(lock)
}

/// The DSSE envelopes attached to `digest` as attestation referrers on its registry (referrers
/// API). Unreadable ones are skipped: the provenance fields are then left absent.
fn remote_attestations(client: &Client, remote: &RemoteRef, digest: &Digest) -> Vec<Envelope> {
    let Ok(Some(referrers)) = client.referrers(remote, digest) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for referrer in referrers {
        let is_attestation = referrer
            .artifact_type()
            .as_ref()
            .is_some_and(|t| t.to_string() == strata_attest::artifact::ATTESTATION_ARTIFACT_TYPE);
        if !is_attestation {
            continue;
        }
        let Ok(referrer_digest) = Digest::from_oci(referrer.digest()) else {
            continue;
        };
        let at = remote.with_reference(&referrer_digest.to_string());
        let Ok(manifest) = client.get_manifest(&at) else {
            continue;
        };
        let Ok(manifest) = serde_json::from_slice::<strata_oci::ImageManifest>(&manifest.bytes)
        else {
            continue;
        };
        let [layer] = manifest.layers().as_slice() else {
            continue;
        };
        if layer.media_type().to_string() != strata_attest::artifact::ENVELOPE_MEDIA_TYPE
            || layer.size() > 4 << 20
        {
            continue;
        }
        let Ok(layer_digest) = Digest::from_oci(layer.digest()) else {
            continue;
        };
        let Ok(reader) = client.get_blob(remote, &layer_digest, 0) else {
            continue;
        };
        let mut bytes = Vec::new();
        if reader.take(4 << 20).read_to_end(&mut bytes).is_err()
            || Digest::of_with(layer_digest.algorithm(), &bytes) != layer_digest
        {
            continue;
        }
        if let Ok(envelope) = serde_json::from_slice::<Envelope>(&bytes) {
            found.push(envelope);
        }
    }
    found
}

/// Write `lock` to `path` atomically (temp file, fsync, rename).
pub fn write_lock(path: &Path, lock: &Lock) -> Result<(), UpstreamError> {
    // A bare file name has an empty parent: the temp file goes in the current directory.
    let target = match path.parent() {
        Some(p) if p.as_os_str().is_empty() => Path::new(".").join(path),
        _ => path.to_path_buf(),
    };
    strata_oci::layout::atomic_write(&target, lock.to_toml().as_bytes()).map_err(|source| {
        UpstreamError::Write {
            path: path.to_path_buf(),
            source,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_attest::statement::{STATEMENT_TYPE, Statement, Subject};
    use strata_attest::{KeyKind, PrivateKey};

    fn envelope(key: &PrivateKey, subject: &Digest) -> Envelope {
        let statement = Statement {
            type_: STATEMENT_TYPE.into(),
            subject: vec![Subject::image("r.example/ops/corebuild:latest", subject)],
            predicate_type: "https://slsa.dev/provenance/v1".into(),
            predicate: serde_json::json!({
                "buildDefinition": {"buildType": "x", "externalParameters": {}},
                "runDetails": {"builder": {"id": "x"},
                               "metadata": {"finishedOn": "2026-12-06T14:02:00Z"}}
            }),
        };
        strata_attest::sign(&statement, key)
    }

    /// Only a signature by a key this chain trusts, over a statement about this very digest,
    /// fills the provenance fields; the team is the key's, not the statement's claim.
    #[test]
    fn provenance_fields_come_only_from_a_trusted_signature_over_this_digest() {
        let ops = PrivateKey::generate(KeyKind::EcdsaP256).unwrap();
        let foreign = PrivateKey::generate(KeyKind::EcdsaP256).unwrap();
        let mut trust = TrustConfig::new();
        trust.add_key("operations", ops.public_key().clone());
        let teams = ["operations", "middleware"];
        let digest = Digest::of(b"corebuild");
        let other = Digest::of(b"another image");
        let fill = |envelopes: &[Envelope]| {
            let mut entry = new_entry("r.example/ops/corebuild:latest", "r.example", "d");
            signed_provenance(&mut entry, &trust, &teams, &digest, envelopes);
            (entry.built_by, entry.key, entry.built)
        };
        assert_eq!(fill(&[]), (None, None, None));
        assert_eq!(fill(&[envelope(&foreign, &digest)]), (None, None, None));
        assert_eq!(fill(&[envelope(&ops, &other)]), (None, None, None));
        assert_eq!(
            fill(&[envelope(&foreign, &digest), envelope(&ops, &digest)]),
            (
                Some("operations".to_string()),
                Some(ops.id().as_str().to_string()),
                Some("2026-12-06T14:02:00Z".to_string())
            )
        );
    }
}
