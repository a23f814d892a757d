//! `gc`: remove blobs nothing live references, and stale temp files.
//!
//! Live: everything reachable from `index.json` entries, where an untagged entry whose manifest has
//! a `subject` (a referrer: signature, attestation) is live only while its subject is. Dangling
//! referrer entries are dropped from `index.json`, which is written before any blob is removed (a
//! crash between leaves only unreferenced blobs). `.strata/tmp/build-*` directories of killed
//! builds are swept when no build holds the store's build lock, and so are `.tmp-*` files of
//! atomic writes that died (beside `index.json` and the membership records). What the
//! repositories' membership records hold (see [`crate::membership`]) is live too, and so is what
//! the extra roots list (see [`crate::roots`]: what a deployment runs). gc holds the
//! index lock throughout and refuses to run while any [`crate::Lease`] is held (a build writing
//! blobs not tagged yet). When a live manifest cannot be read, gc stops without deleting
//! anything.

use std::collections::HashSet;
use std::fs;
use std::path::PathBuf;

use oci_spec::image::Descriptor;

use crate::blob::BlobInfo;
use crate::digest::Digest;
use crate::error::{Error, Result, io_err};
use crate::index::ref_name;
use crate::layout::{Store, atomic_write, canonical_json, open_lock_file};

/// Options of [`Maintenance::gc`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GcOptions {
    /// Report what would be removed, remove nothing.
    pub dry_run: bool,
}

/// What [`Maintenance::gc`] removed (or would remove, in a dry run).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct GcReport {
    /// Whether this was a dry run.
    pub dry_run: bool,
    /// Unreferenced blobs removed.
    pub removed: Vec<BlobInfo>,
    /// Their total size.
    pub removed_bytes: u64,
    /// Blobs kept.
    pub kept: usize,
    /// Stale temp files removed.
    pub temp_files: Vec<PathBuf>,
    /// Untagged referrers dropped from `index.json` because their subject is gone.
    pub dangling_referrers: Vec<Digest>,
}

/// Keeping the store sound: [`Maintenance::gc`] removes what nothing live references,
/// [`Maintenance::fsck`] checks every blob and reference, [`Maintenance::repair`] mends what a
/// crash left. Made by [`Store::maintenance`].
#[derive(Clone, Copy, Debug)]
pub struct Maintenance<'a> {
    pub(crate) store: &'a Store,
}

impl<'a> Maintenance<'a> {
    pub(crate) fn new(store: &'a Store) -> Self {
        Maintenance { store }
    }

    /// Mark from `index.json`, sweep the rest. See the module docs.
    pub fn gc(&self, options: &GcOptions) -> Result<GcReport> {
        self.gc_then(options, |_| ()).map(|(report, ())| report)
    }

    /// [`Maintenance::gc`], then `after` while gc still holds the store exclusively (no build, import or
    /// push can take a lease meanwhile), so caches derived from blobs (unpacked layers, header
    /// indexes) can be swept against the same state. `after` gets gc's report: in a dry run the
    /// blobs it lists as removed are still on disk.
    pub fn gc_then<T>(
        &self,
        options: &GcOptions,
        after: impl FnOnce(&GcReport) -> T,
    ) -> Result<(GcReport, T)> {
        let lock_path = self.store.lock_path("gc.lock");
        let gc_lock = open_lock_file(&lock_path)?;
        if gc_lock.try_lock().is_err() {
            return Err(Error::Busy {
                path: self.store.root().to_path_buf(),
                reason: "a build or blob write holds a lease; try again when it is done".into(),
            });
        }
        let report = self.store.refs().update(|index| {
            let mut live: HashSet<Digest> = HashSet::new();
            let mut pending: Vec<(Digest, Descriptor)> = Vec::new();
            for entry in index.manifests() {
                let digest = Digest::from_oci(entry.digest())?;
                if ref_name(entry).is_none()
                    && self.store.blobs().has(&digest)
                    && let Some(subject) = self.store.read_node(entry)?.subject()
                {
                    pending.push((subject, entry.clone()));
                    continue;
                }
                self.mark(entry, &mut live)?;
            }
            // What a repository's membership record holds is live while it holds it.
            for record in self.store.repos().records()?.values() {
                for (digest, media_type) in &record.manifests {
                    let root = Descriptor::new(
                        oci_spec::image::MediaType::from(media_type.as_str()),
                        0,
                        digest.to_oci(),
                    );
                    self.mark(&root, &mut live)?;
                }
                live.extend(record.blobs.iter().cloned());
            }
            // Extra roots (see [`crate::roots`]): what a deployment runs or may roll back to.
            for digests in self.store.roots().list()?.values() {
                for digest in digests {
                    if let Some(root) = self.root_descriptor(digest)? {
                        self.mark(&root, &mut live)?;
                    }
                }
            }
            // Referrers of live subjects are live; they may themselves be subjects.
            loop {
                let before = pending.len();
                let mut still = Vec::new();
                for (subject, entry) in pending {
                    if live.contains(&subject) {
                        self.mark(&entry, &mut live)?;
                    } else {
                        still.push((subject, entry));
                    }
                }
                pending = still;
                if pending.len() == before {
                    break;
                }
            }
            // A referrer a membership record holds is not dangling.
            let mut pending: Vec<(Digest, Descriptor)> = pending
                .into_iter()
                .filter(|(_, e)| Digest::from_oci(e.digest()).is_ok_and(|d| !live.contains(&d)))
                .collect();
            pending.sort_by(|a, b| a.1.digest().as_ref().cmp(b.1.digest().as_ref()));
            let mut report = GcReport {
                dry_run: options.dry_run,
                ..GcReport::default()
            };
            let dangling: HashSet<_> = pending.iter().map(|(_, e)| e.digest().clone()).collect();
            for (_, entry) in &pending {
                report
                    .dangling_referrers
                    .push(Digest::from_oci(entry.digest())?);
            }
            let (digests, _strays) = self.store.blobs().list()?;
            for digest in digests {
                if live.contains(&digest) {
                    report.kept += 1;
                    continue;
                }
                let path = self.store.blobs().path(&digest);
                let size = fs::symlink_metadata(&path).map_err(io_err(&path))?.len();
                report.removed_bytes += size;
                report.removed.push(BlobInfo { digest, size });
            }
            // No lease is held, so every temp file belongs to a writer that died.
            let tmp_dir = self.store.tmp_dir();
            let mut temps: Vec<PathBuf> = match fs::read_dir(&tmp_dir) {
                Ok(entries) => entries.filter_map(|e| e.ok().map(|e| e.path())).collect(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
                Err(e) => return Err(io_err(&tmp_dir)(e)),
            };
            // Atomic writes (index.json, membership records) run under the index lock, held
            // here: a `.tmp-*` file beside them belongs to a writer that died.
            for dir in [self.store.root().to_path_buf(), self.store.repos().dir()] {
                let entries = match fs::read_dir(&dir) {
                    Ok(entries) => entries,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(io_err(&dir)(e)),
                };
                temps.extend(
                    entries
                        .filter_map(|e| e.ok())
                        .filter(|e| e.file_name().to_string_lossy().starts_with(".tmp-"))
                        .map(|e| e.path()),
                );
            }
            temps.sort();
            // A killed build leaves its `build-*` directory: swept only when no build holds the
            // build lock (held meanwhile, so none starts).
            let build_lock = if temps.iter().any(|t| t.is_dir()) {
                self.store.try_lock_named("build")?
            } else {
                None
            };
            temps.retain(|t| !t.is_dir() || build_lock.is_some());
            report.temp_files = temps;
            if options.dry_run {
                return Ok((false, report));
            }
            // The new index first, then the blobs: a crash in between leaves unreferenced blobs
            // (the next gc takes them), never an index entry whose blob is gone.
            if !dangling.is_empty() {
                let mut list = index.manifests().clone();
                list.retain(|d| ref_name(d).is_some() || !dangling.contains(d.digest()));
                index.set_manifests(list);
                atomic_write(
                    &self.store.refs().path(),
                    &canonical_json(&*index, "index.json")?,
                )?;
            }
            for blob in &report.removed {
                let path = self.store.blobs().path(&blob.digest);
                crate::fault::point(crate::fault::Op::Unlink);
                match fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io_err(&path)(e)),
                }
            }
            for temp in &report.temp_files {
                crate::fault::point(crate::fault::Op::Unlink);
                let removed = if temp.is_dir() {
                    fs::remove_dir_all(temp)
                } else {
                    fs::remove_file(temp)
                };
                match removed {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io_err(temp)(e)),
                }
            }
            drop(build_lock);
            // Written above, under the same lock: nothing left for update_index to write.
            Ok((false, report))
        })?;
        let extra = after(&report);
        drop(gc_lock);
        Ok((report, extra))
    }

    /// A descriptor for the manifest or index `digest` named by an extra root, its media type read
    /// from the blob; `None` when the blob is gone (nothing to keep).
    fn root_descriptor(&self, digest: &Digest) -> Result<Option<Descriptor>> {
        if !self.store.blobs().has(digest) {
            return Ok(None);
        }
        let bytes = self.store.blobs().read(digest)?;
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Probe {
            media_type: Option<String>,
            manifests: Option<serde_json::Value>,
        }
        let probe: Probe = serde_json::from_slice(&bytes).map_err(|source| Error::Json {
            what: format!("gc root {digest}"),
            source,
        })?;
        let media_type = match (probe.media_type, probe.manifests) {
            (Some(m), _) => oci_spec::image::MediaType::from(m.as_str()),
            (None, Some(_)) => oci_spec::image::MediaType::ImageIndex,
            (None, None) => oci_spec::image::MediaType::ImageManifest,
        };
        let size = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
        Ok(Some(Descriptor::new(media_type, size, digest.to_oci())))
    }

    /// Mark `root` and everything it references live. Unreadable manifests abort the gc.
    fn mark(&self, root: &Descriptor, live: &mut HashSet<Digest>) -> Result<()> {
        let mut stack = vec![root.clone()];
        while let Some(descriptor) = stack.pop() {
            let digest = Digest::from_oci(descriptor.digest())?;
            if !live.insert(digest.clone()) {
                continue;
            }
            if !self.store.blobs().has(&digest) {
                continue; // missing: nothing to keep, nothing below it to find (fsck reports it)
            }
            let node = self
                .store
                .read_node(&descriptor)
                .map_err(|e| Error::InvalidImage {
                    image: digest.to_string(),
                    reason: format!(
                        "gc stopped, nothing removed: cannot read it ({}); run fsck",
                        crate::error::report(&e)
                    ),
                })?;
            stack.extend(node.children());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Issue 14: a killed build's `.strata/tmp/build-*` directory made every later gc fail with
    // "Is a directory".
    #[test]
    fn a_killed_builds_directory_is_swept_when_no_build_holds_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::init(dir.path()).unwrap();
        let leftover = store.tmp_dir().join("build-1234");
        fs::create_dir_all(leftover.join("rootfs/etc")).unwrap();
        fs::write(leftover.join("rootfs/etc/passwd"), b"x").unwrap();
        // A running build holds the lock: its directory stays, and gc still succeeds.
        let build = store.try_lock_named("build").unwrap().unwrap();
        let report = store.maintenance().gc(&GcOptions::default()).unwrap();
        assert!(report.temp_files.is_empty(), "{report:?}");
        assert!(leftover.is_dir());
        drop(build);
        let report = store.maintenance().gc(&GcOptions::default()).unwrap();
        assert_eq!(report.temp_files, vec![leftover.clone()]);
        assert!(!leftover.exists());
    }

    // Issue 17: an untagged image a deployment still runs (or may roll back to) survives gc while
    // a gc root lists it, and goes once the list lets go of it.
    #[test]
    fn an_extra_root_keeps_an_untagged_image_until_its_holder_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::init(dir.path()).unwrap();
        let image = crate::random::image(&store, 2, 300).unwrap();
        store.refs().tag("acme/web", image.descriptor()).unwrap();
        store.refs().untag("acme/web").unwrap();
        store
            .roots()
            .set("deploy-acme-web", &[image.digest()])
            .unwrap();
        let report = store.maintenance().gc(&GcOptions::default()).unwrap();
        assert!(report.removed.is_empty(), "{report:?}");
        assert_eq!(report.kept, 4, "manifest, config, 2 layers");
        store.roots().set("deploy-acme-web", &[]).unwrap();
        let report = store.maintenance().gc(&GcOptions::default()).unwrap();
        assert_eq!(report.removed.len(), 4);
        assert!(!store.blobs().has(&image.digest()));
        // A holder cannot name a file outside the roots directory.
        assert!(store.roots().set("../index.json", &[]).is_err());
    }
}
