//! The store's in-memory view of `index.json`, and batched tag writes.
//!
//! Reading `index.json` for every lookup made a cascade quadratic: each of N images resolved its
//! parents and itself several times, and each read parsed an index that grows with N (and each
//! tag re-parsed every `ref.name` in it). The parsed index is kept here, with maps from tag names
//! to entries, and re-read only when the file on disk changed (another process replaced it: its
//! inode, size or times differ).
//!
//! A cascade also writes a tag or two per image, and each write serialises, fsyncs and renames the
//! whole index. Under an [`IndexBatch`] (see [`crate::Store::batch_index_writes`]) tag and root
//! edits apply to the in-memory index at once (this process sees them immediately) and reach the
//! disk together: at most [`FLUSH_INTERVAL`] later, when the batch ends, or before any other
//! index update. While edits are pending this process holds the index lock, so no other writer
//! can interleave and nothing has to be merged: a concurrent tagger waits (at most one interval),
//! then re-reads the index with the batch's tags in it. Every write is still the atomic
//! replacement of the whole file; a crash loses at most the last interval's tags (their blobs stay
//! until gc), never the index.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use oci_spec::image::{Descriptor, ImageIndex};

use crate::error::{Error, Result, io_err};
use crate::index::ref_name;
use crate::layout::{Store, atomic_write, canonical_json, empty_index, open_lock_file};
use crate::reference::Reference;

/// How long batched tag edits may stay in memory before they are written.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(500);

/// What identifies one version of `index.json` on disk: every write replaces the file (a new
/// inode), so a change of any of these means another content.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    fn of(meta: &std::fs::Metadata) -> Stamp {
        Stamp {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        }
    }
}

/// One version of the index, parsed, with lookup maps built on first use.
#[derive(Debug)]
pub(crate) struct View {
    /// The index less its entries (`ImageIndex` lends its list only by reference: edits would
    /// copy it whole).
    rest: ImageIndex,
    /// The entries.
    pub(crate) manifests: Vec<Descriptor>,
    maps: OnceLock<Maps>,
}

#[derive(Debug, Default)]
struct Maps {
    /// `ref.name` as written → position of its first entry.
    by_name: HashMap<String, usize>,
    /// Normal form of `ref.name` (as [`Reference`] prints it) → position of its first entry.
    by_norm: HashMap<String, usize>,
}

impl View {
    fn new(rest: ImageIndex, manifests: Vec<Descriptor>) -> View {
        View {
            rest,
            manifests,
            maps: OnceLock::new(),
        }
    }

    fn from_index(mut index: ImageIndex) -> View {
        let manifests = index.manifests().clone();
        index.set_manifests(Vec::new());
        View::new(index, manifests)
    }

    /// The whole index.
    pub(crate) fn index(&self) -> ImageIndex {
        let mut index = self.rest.clone();
        index.set_manifests(self.manifests.clone());
        index
    }

    fn maps(&self, norms: &Mutex<HashMap<String, Option<String>>>) -> &Maps {
        self.maps.get_or_init(|| {
            let mut norms = lock(norms);
            let mut maps = Maps::default();
            for (position, entry) in self.manifests.iter().enumerate() {
                let Some(name) = ref_name(entry) else {
                    continue;
                };
                maps.by_name.entry(name.to_string()).or_insert(position);
                if let Some(norm) = normal_form(&mut norms, name) {
                    maps.by_norm.entry(norm.to_string()).or_insert(position);
                }
            }
            maps
        })
    }
}

/// The normal form of a `ref.name`, parsed once per name and remembered.
fn normal_form<'a>(
    norms: &'a mut HashMap<String, Option<String>>,
    name: &str,
) -> Option<&'a String> {
    if !norms.contains_key(name) {
        let norm = Reference::parse(name).ok().map(|r| r.to_string());
        norms.insert(name.to_string(), norm);
    }
    norms.get(name).and_then(Option::as_ref)
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// The shared state behind every clone of one [`Store`].
#[derive(Default)]
pub(crate) struct IndexState {
    inner: Mutex<Inner>,
    /// Wakes the batch's flusher thread.
    wake: Condvar,
    /// Normal forms of the `ref.name`s seen (they are parsed once).
    norms: Mutex<HashMap<String, Option<String>>>,
}

impl std::fmt::Debug for IndexState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IndexState")
    }
}

#[derive(Default)]
struct Inner {
    /// The last index read or written.
    view: Option<Arc<View>>,
    /// The version on disk `view` is (None: unknown, or edits are pending).
    stamp: Option<Stamp>,
    /// Open batches.
    batches: usize,
    /// The index lock, held while edits are pending.
    held: Option<File>,
    /// When the oldest pending edit was made.
    dirty_since: Option<Instant>,
    /// Set when the last batch ends: the flusher stops.
    stop: bool,
    /// The flusher thread, while a batch is open.
    flusher: Option<std::thread::JoinHandle<()>>,
}

impl Store {
    /// The current index (re-read only when the file changed), with this process's pending
    /// batched edits in it.
    pub(crate) fn index_view(&self) -> Result<Arc<View>> {
        let mut inner = lock(&self.index_state.inner);
        self.current_view(&mut inner)
    }

    fn current_view(&self, inner: &mut Inner) -> Result<Arc<View>> {
        if inner.held.is_some()
            && let Some(view) = &inner.view
        {
            // Edits are pending under our lock: nobody else wrote.
            return Ok(view.clone());
        }
        let path = self.refs().path();
        let stamp = match std::fs::metadata(&path) {
            Ok(meta) => Some(Stamp::of(&meta)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(io_err(&path)(e)),
        };
        if let (Some(view), Some(stamp)) = (&inner.view, stamp)
            && inner.stamp == Some(stamp)
        {
            return Ok(view.clone());
        }
        let (index, stamp) = read_index(&path)?;
        let view = Arc::new(View::from_index(index));
        inner.view = Some(view.clone());
        inner.stamp = stamp;
        Ok(view)
    }

    /// Remember `index` as what is on disk now (just written by this process under the lock).
    pub(crate) fn index_written(&self, index: ImageIndex) {
        let stamp = std::fs::metadata(self.refs().path())
            .ok()
            .map(|m| Stamp::of(&m));
        let mut inner = lock(&self.index_state.inner);
        if inner.held.is_none() {
            inner.view = Some(Arc::new(View::from_index(index)));
            inner.stamp = stamp;
        }
    }

    /// Write pending batched edits now (before an update that does not batch).
    pub(crate) fn flush_index(&self) -> Result<()> {
        let mut inner = lock(&self.index_state.inner);
        self.flush_locked(&mut inner)
    }

    fn flush_locked(&self, inner: &mut Inner) -> Result<()> {
        if inner.held.is_none() {
            return Ok(());
        }
        if inner.dirty_since.is_some()
            && let Some(view) = &inner.view
        {
            let path = self.refs().path();
            atomic_write(&path, &canonical_json(&view.index(), "index.json")?)?;
            inner.stamp = std::fs::metadata(&path).ok().map(|m| Stamp::of(&m));
        }
        inner.dirty_since = None;
        inner.held = None;
        Ok(())
    }

    /// The first entry whose `ref.name` is exactly `name`, from `view`.
    pub(crate) fn find_exact(&self, view: &View, name: &str) -> Option<Descriptor> {
        let maps = view.maps(&self.index_state.norms);
        let position = *maps.by_name.get(name)?;
        view.manifests.get(position).cloned()
    }

    /// The first entry whose `ref.name` names the same image as `wanted`, from `view`.
    pub(crate) fn find_normal(&self, view: &View, wanted: &Reference) -> Option<Descriptor> {
        let maps = view.maps(&self.index_state.norms);
        let position = *maps.by_norm.get(&wanted.to_string())?;
        view.manifests.get(position).cloned()
    }

    /// Apply a tag or root edit: at once (read, edit, write under the lock), or, in a batch, to
    /// the in-memory index, written with the batch's next flush.
    pub(crate) fn edit_index<T>(
        &self,
        edit: impl FnOnce(&mut Vec<Descriptor>, &mut dyn FnMut(&str) -> Option<String>) -> (bool, T),
    ) -> Result<T> {
        let state = &self.index_state;
        let mut inner = lock(&state.inner);
        let mut acquired = None;
        if inner.held.is_none() {
            // Not under the mutex: the thread holding the lock may need it to let go.
            drop(inner);
            let lock_path = self.lock_path("index.lock");
            let file = open_lock_file(&lock_path)?;
            file.lock().map_err(io_err(&lock_path))?;
            acquired = Some(file);
            // Holding the lock, no thread of ours has edits pending (they hold it while they do).
            inner = lock(&state.inner);
        }
        drop(self.current_view(&mut inner)?);
        // Edited in place when no reader holds the view (the usual case), else copied.
        let (rest, mut list) = match inner.view.take().map(Arc::try_unwrap) {
            Some(Ok(view)) => (view.rest, view.manifests),
            Some(Err(shared)) => (shared.rest.clone(), shared.manifests.clone()),
            None => (empty_index(), Vec::new()),
        };
        let stamp = inner.stamp.take();
        let (changed, value) = {
            let mut norms = lock(&state.norms);
            let mut norm = |name: &str| normal_form(&mut norms, name).cloned();
            edit(&mut list, &mut norm)
        };
        let view = Arc::new(View::new(rest, list));
        if !changed {
            inner.view = Some(view);
            inner.stamp = stamp;
            return Ok(value);
        }
        if inner.batches == 0 {
            let path = self.refs().path();
            atomic_write(&path, &canonical_json(&view.index(), "index.json")?)?;
            inner.stamp = std::fs::metadata(&path).ok().map(|m| Stamp::of(&m));
            inner.view = Some(view);
            inner.held = None;
            inner.dirty_since = None;
            drop(acquired);
            return Ok(value);
        }
        inner.view = Some(view);
        inner.stamp = None;
        if let Some(file) = acquired {
            inner.held = Some(file);
        }
        let since = *inner.dirty_since.get_or_insert_with(Instant::now);
        if since.elapsed() >= FLUSH_INTERVAL {
            self.flush_locked(&mut inner)?;
        } else {
            state.wake.notify_all();
        }
        Ok(value)
    }

    /// Batch this process's tag and root edits until the returned guard is finished or dropped
    /// (see the module docs of `index_cache`): for a run that tags many images, so the index is
    /// written a few times a second rather than once per tag. Lookups in this process see the
    /// edits at once; other processes see them within [`FLUSH_INTERVAL`].
    pub fn batch_index_writes(&self) -> IndexBatch {
        let mut inner = lock(&self.index_state.inner);
        inner.batches += 1;
        if inner.flusher.is_none() {
            inner.stop = false;
            let store = self.clone();
            inner.flusher = Some(std::thread::spawn(move || store.flusher()));
        }
        IndexBatch {
            store: self.clone(),
            finished: false,
        }
    }

    /// The batch's flusher: writes pending edits once they are [`FLUSH_INTERVAL`] old.
    fn flusher(&self) {
        let state = &self.index_state;
        let mut inner = lock(&state.inner);
        while !inner.stop {
            let wait = match inner.dirty_since {
                Some(since) => FLUSH_INTERVAL.saturating_sub(since.elapsed()),
                None => FLUSH_INTERVAL,
            };
            if inner.dirty_since.is_some() && wait.is_zero() {
                if let Err(e) = self.flush_locked(&mut inner) {
                    tracing::warn!("cannot write {}: {}", self.refs().path().display(), e);
                    // Tried again an interval later, not at once.
                    inner.dirty_since = Some(Instant::now());
                }
                continue;
            }
            inner = state
                .wake
                .wait_timeout(inner, wait)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    fn end_batch(&self) -> Result<()> {
        let mut inner = lock(&self.index_state.inner);
        inner.batches = inner.batches.saturating_sub(1);
        let result = self.flush_locked(&mut inner);
        if inner.batches == 0 {
            inner.stop = true;
            self.index_state.wake.notify_all();
            let flusher = inner.flusher.take();
            drop(inner);
            if let Some(flusher) = flusher {
                let _ = flusher.join();
            }
        }
        result
    }
}

/// Batched tag writes, from [`Store::batch_index_writes`]: pending edits are written by
/// [`IndexBatch::finish`] (which reports a failed write) or on drop.
#[derive(Debug)]
#[must_use = "the batch ends (and its edits are written) when this is finished or dropped"]
pub struct IndexBatch {
    store: Store,
    finished: bool,
}

impl IndexBatch {
    /// End the batch and write its pending edits.
    pub fn finish(mut self) -> Result<()> {
        self.finished = true;
        self.store.end_batch()
    }
}

impl Drop for IndexBatch {
    fn drop(&mut self) {
        if !self.finished
            && let Err(e) = self.store.end_batch()
        {
            tracing::warn!("cannot write {}: {}", self.store.refs().path().display(), e);
        }
    }
}

/// Read and parse `path` (a missing file is the empty index), with the stamp of what was read.
fn read_index(path: &Path) -> Result<(ImageIndex, Option<Stamp>)> {
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((empty_index(), None)),
        Err(e) => return Err(io_err(path)(e)),
    };
    let stamp = file.metadata().map_err(io_err(path))?;
    let mut bytes = Vec::with_capacity(usize::try_from(stamp.len()).unwrap_or(0));
    std::io::Read::read_to_end(&mut file, &mut bytes).map_err(io_err(path))?;
    let index = serde_json::from_slice(&bytes).map_err(|source| Error::Json {
        what: path.display().to_string(),
        source,
    })?;
    Ok((index, Some(Stamp::of(&stamp))))
}

#[cfg(test)]
mod tests {
    use oci_spec::image::MediaType;

    use super::*;

    fn manifest(store: &Store, n: usize) -> Descriptor {
        let bytes = format!("{{\"schemaVersion\":2,\"n\":{n}}}");
        store
            .blobs()
            .put(bytes.as_bytes())
            .unwrap()
            .descriptor(MediaType::ImageManifest)
    }

    fn tags_on_disk(store: &Store) -> Vec<String> {
        let bytes = std::fs::read(store.refs().path()).unwrap();
        let index: ImageIndex = serde_json::from_slice(&bytes).unwrap();
        let mut tags: Vec<String> = index
            .manifests()
            .iter()
            .filter_map(ref_name)
            .map(str::to_string)
            .collect();
        tags.sort();
        tags
    }

    #[test]
    fn another_process_write_is_seen() {
        let dir = tempfile::tempdir().unwrap();
        let ours = Store::init(dir.path()).unwrap();
        let theirs = Store::open(dir.path()).unwrap();
        let d = manifest(&ours, 1);
        assert!(ours.refs().resolve("acme/app").is_err());
        // `theirs` shares nothing in memory with `ours`, as another process would.
        theirs.refs().tag("acme/app", &d).unwrap();
        assert_eq!(
            ours.refs().resolve("acme/app").unwrap().digest(),
            d.digest()
        );
        theirs.refs().untag("acme/app").unwrap();
        assert!(ours.refs().resolve("localhost/acme/app:latest").is_err());
    }

    #[test]
    fn batched_tags_are_seen_at_once_and_written_at_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::init(dir.path()).unwrap();
        let batch = store.batch_index_writes();
        for n in 0..20 {
            let d = manifest(&store, n);
            store
                .refs()
                .tag(&format!("acme/app{n}:latest"), &d)
                .unwrap();
            store.refs().tag(&format!("acme/app{n}:1"), &d).unwrap();
            assert_eq!(
                store
                    .refs()
                    .resolve(&format!("acme/app{n}"))
                    .unwrap()
                    .digest(),
                d.digest()
            );
        }
        batch.finish().unwrap();
        assert_eq!(tags_on_disk(&store).len(), 40);
    }

    #[test]
    fn a_concurrent_tagger_during_a_batch_loses_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::init(dir.path()).unwrap();
        let other = Store::open(dir.path()).unwrap();
        let ours = manifest(&store, 1);
        let theirs = manifest(&store, 2);
        let batch = store.batch_index_writes();
        store.refs().tag("acme/ours:1", &ours).unwrap();
        // The other writer waits for the batch's lock, then tags into the index with ours in it.
        let tagger = std::thread::spawn(move || other.refs().tag("acme/theirs:1", &theirs));
        store.refs().tag("acme/ours:2", &ours).unwrap();
        tagger.join().unwrap().unwrap();
        store.refs().tag("acme/ours:3", &ours).unwrap();
        batch.finish().unwrap();
        assert_eq!(
            tags_on_disk(&store),
            [
                "localhost/acme/ours:1",
                "localhost/acme/ours:2",
                "localhost/acme/ours:3",
                "localhost/acme/theirs:1"
            ]
        );
    }

    #[test]
    fn an_update_during_a_batch_writes_the_pending_tags_first() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::init(dir.path()).unwrap();
        let d = manifest(&store, 1);
        let _batch = store.batch_index_writes();
        store.refs().tag("acme/app:1", &d).unwrap();
        // `update` may write files that must agree with the index on disk (membership records).
        store.refs().update(|_| Ok((false, ()))).unwrap();
        assert_eq!(tags_on_disk(&store), ["localhost/acme/app:1"]);
    }
}
