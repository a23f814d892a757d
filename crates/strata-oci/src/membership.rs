//! Membership: which repositories hold which manifests and blobs.
//!
//! A store shared by teams (the registry's) answers reads and deletes per repository, as
//! distribution does with its per-repository links. What a repository holds comes from two
//! sources:
//!
//! - `index.json`, which already says it: a tag `localhost/acme/app:1` is held by `localhost/acme/app`;
//!   an untagged root with a `subject` that no record lists (a referrer attached locally, e.g. by
//!   `strata attest`) is held by every repository that holds its subject.
//! - a membership record per repository, `.strata/repos/<registry>+<path>.json` (`/` written as `+`),
//!   for what the index cannot say: manifests pushed to the repository through the registry (by
//!   tag or digest; they stay readable by digest after their tag is deleted, until deleted by
//!   digest) and blobs uploaded or mounted into it that none of its manifests uses yet.
//!
//! On top of its roots a repository holds everything they reference (configs, layers, the
//! manifests of an index). Records are written under the index lock, before the `index.json`
//! they go with, so a crash between the two leaves a record that keeps a little more alive than
//! needed, never a tag whose content is unowned. A store without records (older strata) is
//! described by its index alone: nothing to migrate. `gc` keeps every record's manifests and
//! blobs alive; `fsck` checks records name only blobs that exist, and `fsck --repair` drops those
//! that do not.
//!
//! Repository names in this module are full names (`localhost/acme/app`, `docker.io/library/x`):
//! [`repository_key`] turns a short name into one.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fs;
use std::io;
use std::path::PathBuf;

use oci_spec::image::{Descriptor, ImageIndex, MediaType};
use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::error::{Error, Result, io_err};
use crate::index::ref_name;
use crate::layout::{Store, atomic_write};
use crate::reference::Reference;
use crate::walk::is_node;

/// What the index cannot say about one repository (see the module docs).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepoRecord {
    /// Manifests pushed to the repository, with their media types.
    #[serde(default)]
    pub manifests: BTreeMap<Digest, String>,
    /// Blobs uploaded or mounted into the repository that none of its manifests uses (yet).
    #[serde(default)]
    pub blobs: BTreeSet<Digest>,
}

impl RepoRecord {
    /// True when the record holds nothing.
    pub fn is_empty(&self) -> bool {
        self.manifests.is_empty() && self.blobs.is_empty()
    }
}

/// The full name (`registry/path`) of a repository name (`acme/app` → `localhost/acme/app`).
pub fn repository_key(name: &str) -> Result<String> {
    Ok(Reference::parse(&format!("{name}:latest"))?.name())
}

fn file_name(key: &str) -> String {
    format!("{}.json", key.replace('/', "+"))
}

fn key_of(file_name: &str) -> Option<String> {
    file_name
        .strip_suffix(".json")
        .filter(|k| !k.starts_with('.'))
        .map(|k| k.replace('+', "/"))
}

/// What a manifest-like blob points at, parsed once (content never changes under a digest).
#[derive(Clone, Debug)]
struct Summary {
    children: Vec<Descriptor>,
    subject: Option<Digest>,
}

/// Parsed manifests by digest, kept between [`Repos::holdings`] calls: a blob's content never
/// changes, so entries never go stale.
#[derive(Debug, Default)]
pub struct NodeCache {
    nodes: HashMap<Digest, Summary>,
}

impl NodeCache {
    fn summary(&mut self, store: &Store, descriptor: &Descriptor) -> Result<Option<Summary>> {
        let digest = Digest::from_oci(descriptor.digest())?;
        if let Some(found) = self.nodes.get(&digest) {
            return Ok(Some(found.clone()));
        }
        if !is_node(descriptor.media_type()) || !store.blobs().has(&digest) {
            return Ok(None);
        }
        let node = store.read_node(descriptor)?;
        let summary = Summary {
            children: node.children(),
            subject: node.subject(),
        };
        self.nodes.insert(digest, summary.clone());
        Ok(Some(summary))
    }
}

/// What one repository holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Held {
    /// Manifests held directly: tagged, pushed, or referrers of what it holds.
    pub roots: BTreeMap<Digest, MediaType>,
    /// Every manifest held: the roots and the manifests they reference.
    pub manifests: HashSet<Digest>,
    /// Every other blob held: referenced by a held manifest, or uploaded into the repository.
    pub blobs: HashSet<Digest>,
    /// The roots held only because their subject is (referrers attached in the store).
    pub derived: HashSet<Digest>,
}

/// Who holds what, for every repository of a store (see [`Repos::holdings`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Holdings {
    repos: BTreeMap<String, Held>,
}

impl Holdings {
    /// What `repository` (a full name) holds; None when nothing.
    pub fn get(&self, repository: &str) -> Option<&Held> {
        self.repos.get(repository)
    }

    /// Does `repository` hold the manifest `digest`?
    pub fn holds_manifest(&self, repository: &str, digest: &Digest) -> bool {
        self.get(repository)
            .is_some_and(|h| h.manifests.contains(digest))
    }

    /// Does `repository` hold the blob (or manifest) `digest`?
    pub fn holds_blob(&self, repository: &str, digest: &Digest) -> bool {
        self.get(repository)
            .is_some_and(|h| h.blobs.contains(digest) || h.manifests.contains(digest))
    }

    /// The repositories holding `digest` (as manifest or blob), sorted.
    pub fn holders(&self, digest: &Digest) -> Vec<&str> {
        self.repos
            .iter()
            .filter(|(_, h)| h.blobs.contains(digest) || h.manifests.contains(digest))
            .map(|(name, _)| name.as_str())
            .collect()
    }

    /// Every repository holding something, sorted.
    pub fn repositories(&self) -> impl Iterator<Item = &str> {
        self.repos.keys().map(String::as_str)
    }
}

/// The repositories' membership records (see the module docs). Made by [`Store::repos`].
#[derive(Clone, Copy, Debug)]
pub struct Repos<'a> {
    pub(crate) store: &'a Store,
}

impl<'a> Repos<'a> {
    pub(crate) fn new(store: &'a Store) -> Self {
        Repos { store }
    }

    /// `.strata/repos`, the membership records.
    pub fn dir(&self) -> PathBuf {
        self.store.root().join(".strata").join("repos")
    }

    /// The record of `repository` (a full name); empty when it has none.
    pub fn record(&self, repository: &str) -> Result<RepoRecord> {
        let path = self.dir().join(file_name(repository));
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| Error::Json {
                what: path.display().to_string(),
                source,
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(RepoRecord::default()),
            Err(e) => Err(io_err(path)(e)),
        }
    }

    /// Every record, by repository.
    pub fn records(&self) -> Result<BTreeMap<String, RepoRecord>> {
        let dir = self.dir();
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
            Err(e) => return Err(io_err(&dir)(e)),
        };
        let mut records = BTreeMap::new();
        for entry in entries {
            let entry = entry.map_err(io_err(&dir))?;
            let Some(key) = entry.file_name().to_str().and_then(key_of) else {
                continue;
            };
            let record = self.record(&key)?;
            records.insert(key, record);
        }
        Ok(records)
    }

    /// Write (or, when empty, remove) the record of `repository`. Callers hold the index lock.
    pub(crate) fn write_record(&self, repository: &str, record: &RepoRecord) -> Result<()> {
        let dir = self.dir();
        let path = dir.join(file_name(repository));
        if record.is_empty() {
            crate::fault::point(crate::fault::Op::Unlink);
            return match fs::remove_file(&path) {
                Ok(()) => crate::layout::sync_dir(&dir),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(io_err(path)(e)),
            };
        }
        fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let bytes = serde_json::to_vec(record).map_err(|source| Error::Json {
            what: path.display().to_string(),
            source,
        })?;
        atomic_write(&path, &bytes)
    }

    /// Edit `index.json` and the record of `repository` (a short or full name) together, under
    /// the index lock. `update` gets the index, the repository's record, and the holdings as they
    /// are before the edit; it returns whether it changed the index, and a value to pass back. The
    /// record is written first (when changed), then the index.
    pub fn update<T>(
        &self,
        repository: &str,
        cache: &mut NodeCache,
        update: impl FnOnce(&mut ImageIndex, &mut RepoRecord, &Holdings) -> Result<(bool, T)>,
    ) -> Result<T> {
        let key = repository_key(repository)?;
        self.store.refs().update(|index| {
            let records = self.records()?;
            let holdings = self.holdings_of(index, &records, cache)?;
            let mut record = records.get(&key).cloned().unwrap_or_default();
            let before = record.clone();
            let (changed, value) = update(index, &mut record, &holdings)?;
            if record != before {
                self.write_record(&key, &record)?;
            }
            Ok((changed, value))
        })
    }

    /// Who holds what, from `index.json` and the records (see the module docs).
    pub fn holdings(&self, cache: &mut NodeCache) -> Result<Holdings> {
        let index = self.store.refs().index()?;
        let records = self.records()?;
        self.holdings_of(&index, &records, cache)
    }

    pub(crate) fn holdings_of(
        &self,
        index: &ImageIndex,
        records: &BTreeMap<String, RepoRecord>,
        cache: &mut NodeCache,
    ) -> Result<Holdings> {
        let mut repos: BTreeMap<String, Held> = BTreeMap::new();
        let recorded: HashSet<&Digest> =
            records.values().flat_map(|r| r.manifests.keys()).collect();
        let mut referrers: Vec<(Digest, Descriptor)> = Vec::new();
        for entry in index.manifests() {
            let digest = Digest::from_oci(entry.digest())?;
            match ref_name(entry).map(Reference::parse) {
                Some(Ok(reference)) => {
                    repos
                        .entry(reference.name())
                        .or_default()
                        .roots
                        .insert(digest, entry.media_type().clone());
                }
                Some(Err(_)) => {} // a short name another tool wrote: no repository
                None if recorded.contains(&digest) => {}
                None => {
                    if let Some(subject) = cache.summary(self.store, entry)?.and_then(|s| s.subject)
                    {
                        referrers.push((subject, entry.clone()));
                    }
                }
            }
        }
        for (key, record) in records {
            let held = repos.entry(key.clone()).or_default();
            for (digest, media_type) in &record.manifests {
                held.roots
                    .insert(digest.clone(), MediaType::from(media_type.as_str()));
            }
            held.blobs.extend(record.blobs.iter().cloned());
        }
        for held in repos.values_mut() {
            let roots: Vec<Descriptor> = held
                .roots
                .iter()
                .map(|(d, m)| Descriptor::new(m.clone(), 0, d.to_oci()))
                .collect();
            self.close_over(held, roots, cache)?;
        }
        // Referrers attached in the store go with their subject, and may be subjects themselves.
        loop {
            let mut progress = false;
            for (subject, entry) in &referrers {
                let digest = Digest::from_oci(entry.digest())?;
                for held in repos.values_mut() {
                    if held.manifests.contains(subject) && !held.manifests.contains(&digest) {
                        held.roots
                            .insert(digest.clone(), entry.media_type().clone());
                        held.derived.insert(digest.clone());
                        self.close_over(held, vec![entry.clone()], cache)?;
                        progress = true;
                    }
                }
            }
            if !progress {
                break;
            }
        }
        Ok(Holdings { repos })
    }

    fn close_over(
        &self,
        held: &mut Held,
        mut stack: Vec<Descriptor>,
        cache: &mut NodeCache,
    ) -> Result<()> {
        while let Some(descriptor) = stack.pop() {
            let digest = Digest::from_oci(descriptor.digest())?;
            if is_node(descriptor.media_type()) {
                if !held.manifests.insert(digest) {
                    continue;
                }
                if let Some(summary) = cache.summary(self.store, &descriptor)? {
                    stack.extend(summary.children);
                }
            } else {
                held.blobs.insert(digest);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_file_names() {
        assert_eq!(repository_key("acme/app").unwrap(), "localhost/acme/app");
        assert_eq!(
            repository_key("docker.io/library/busybox").unwrap(),
            "docker.io/library/busybox"
        );
        let key = "localhost/acme/app";
        assert_eq!(key_of(&file_name(key)).as_deref(), Some(key));
        assert_eq!(key_of(".tmp-x.json"), None);
    }
}
