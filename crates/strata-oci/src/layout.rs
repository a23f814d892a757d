//! The store: an OCI image layout directory.
//!
//! ```text
//! STORE/oci-layout            {"imageLayoutVersion":"1.0.0"}
//! STORE/index.json            the tags and other roots (see `index`)
//! STORE/blobs/sha256/<hex>    content-addressed blobs (what strata writes)
//! STORE/blobs/sha512/<hex>    blobs pushed or pulled under a sha512 digest
//! STORE/.strata/tmp/          temp files of blobs being written (removed by gc when stale)
//! STORE/.strata/index.lock    exclusive lock taken by index.json updates
//! STORE/.strata/gc.lock       shared by writers ("leases"), exclusive for gc
//! ```
//!
//! skopeo, umoci and podman read the directory as `oci:STORE:REF`; they ignore `.strata/`.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use oci_spec::image::{ImageIndex, MediaType, SCHEMA_VERSION};
use serde::Serialize;

use crate::blob::Blobs;
use crate::error::{Error, Result, io_err};
use crate::gc::Maintenance;
use crate::index::Refs;
use crate::membership::Repos;

/// The content of `oci-layout`.
pub const OCI_LAYOUT: &str = r#"{"imageLayoutVersion":"1.0.0"}"#;

/// An OCI image layout on disk. Cheap to clone: it is a path.
///
/// The store's jobs are split into views, each in its own module: [`Store::blobs`] (content-addressed
/// blobs, [`crate::blob`]), [`Store::refs`] (tags and roots in `index.json`, [`crate::index`]),
/// [`Store::repos`] (which repository holds what, [`crate::membership`]) and
/// [`Store::maintenance`] (gc and fsck, [`crate::gc`], [`crate::fsck`]). Images and referrers,
/// which use all of them, are read and written on the store itself.
///
/// ```
/// use strata_oci::{GcOptions, ImageConfiguration, Store};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let store = Store::init(dir.path().join("store"))?;
///
/// // A blob is stored once under its digest, and checked against it when read.
/// let scratch = store.blobs().put(b"scratch")?;
/// assert_eq!(store.blobs().read(&scratch.digest)?, b"scratch");
///
/// // An image (here without layers) is a config and a manifest; a tag makes it a root.
/// let image = store.write_image(&ImageConfiguration::default(), &[], None)?;
/// store.refs().tag("acme/hello:1", image.descriptor())?;
/// assert_eq!(store.image("localhost/acme/hello:1")?.digest(), image.digest());
///
/// // gc removes what no root reaches; fsck finds nothing wrong.
/// let report = store.maintenance().gc(&GcOptions::default())?;
/// assert_eq!(report.removed.len(), 1);
/// assert!(!store.blobs().has(&scratch.digest));
/// assert!(store.maintenance().fsck()?.is_ok());
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct Store {
    root: PathBuf,
    /// The parsed `index.json` and batched tag edits, shared by the store's clones.
    pub(crate) index_state: std::sync::Arc<crate::index_cache::IndexState>,
}

/// A shared hold on the store that keeps `gc` away: take one before writing blobs that are not yet
/// referenced from `index.json`, and drop it after tagging them.
#[derive(Debug)]
pub struct Lease {
    _file: File,
}

/// An exclusive hold on one of the store's named locks (see [`Store::try_lock_named`]), released
/// when dropped (or when the process dies: the kernel drops `flock` locks with the file).
#[derive(Debug)]
pub struct NamedLock {
    _file: File,
}

impl Store {
    /// Open an existing layout; fails with [`Error::NotALayout`] when `oci-layout` is missing or
    /// names another version.
    pub fn open(dir: impl AsRef<Path>) -> Result<Store> {
        let root = dir.as_ref().to_path_buf();
        let layout_file = root.join("oci-layout");
        let text = match fs::read_to_string(&layout_file) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(Error::NotALayout {
                    path: root,
                    reason: "no oci-layout file".into(),
                });
            }
            Err(e) => return Err(io_err(layout_file)(e)),
        };
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|source| Error::Json {
                what: layout_file.display().to_string(),
                source,
            })?;
        if value.get("imageLayoutVersion").and_then(|v| v.as_str()) != Some("1.0.0") {
            return Err(Error::NotALayout {
                path: root,
                reason: format!("unsupported oci-layout {text}"),
            });
        }
        // Nothing is created on open: fsck and reads work on a read-only store.
        Ok(Store {
            root,
            index_state: Default::default(),
        })
    }

    /// Open the layout at `dir`, creating it (and its parents) when it does not exist yet.
    pub fn init(dir: impl AsRef<Path>) -> Result<Store> {
        let root = dir.as_ref().to_path_buf();
        if root.join("oci-layout").exists() {
            return Store::open(root);
        }
        let store = Store {
            root,
            index_state: Default::default(),
        };
        store.ensure_private_dirs()?;
        // Under the index lock: a concurrent init must not replace an index another process has
        // already started tagging into.
        let lock_path = store.lock_path("index.lock");
        let lock = open_lock_file(&lock_path)?;
        lock.lock().map_err(io_err(&lock_path))?;
        if !store.refs().path().exists() {
            let empty = empty_index();
            atomic_write(&store.refs().path(), &canonical_json(&empty, "index.json")?)?;
        }
        let layout = store.root.join("oci-layout");
        if !layout.exists() {
            atomic_write(&layout, OCI_LAYOUT.as_bytes())?;
        }
        drop(lock);
        Ok(store)
    }

    fn ensure_private_dirs(&self) -> Result<()> {
        for dir in [self.blobs().dir(), self.tmp_dir()] {
            fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        }
        Ok(())
    }

    /// The layout's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The content-addressed blobs (`blobs/sha256/`): write, read and verify them.
    pub fn blobs(&self) -> Blobs<'_> {
        Blobs::new(self)
    }

    /// The references: tags and untagged roots in `index.json`.
    pub fn refs(&self) -> Refs<'_> {
        Refs::new(self)
    }

    /// The repositories' membership records: which repository holds which manifests and blobs.
    pub fn repos(&self) -> Repos<'_> {
        Repos::new(self)
    }

    /// The extra gc roots (`.strata/roots/`): manifests kept though no tag names them.
    pub fn roots(&self) -> crate::roots::Roots<'_> {
        crate::roots::Roots::new(self)
    }

    /// Maintenance: `gc`, `fsck` and repair.
    pub fn maintenance(&self) -> Maintenance<'_> {
        Maintenance::new(self)
    }

    /// The store's own state beside the layout (`STORE/.strata`): locks, temp files and the
    /// caches derived from the blobs (layer headers, gzip members, the package index).
    pub fn state_dir(&self) -> PathBuf {
        self.root.join(".strata")
    }

    /// The directory for temp files (same file system as the blobs, so renames are atomic).
    pub fn tmp_dir(&self) -> PathBuf {
        self.state_dir().join("tmp")
    }

    pub(crate) fn lock_path(&self, name: &str) -> PathBuf {
        self.state_dir().join(name)
    }

    /// Take a shared lease: `gc` waits for (or refuses while) any lease is held.
    pub fn lease(&self) -> Result<Lease> {
        let path = self.lock_path("gc.lock");
        let file = open_lock_file(&path)?;
        file.lock_shared().map_err(io_err(&path))?;
        Ok(Lease { _file: file })
    }

    /// Try to take the store's lock `name` (`.strata/<name>.lock`) exclusively, for work two
    /// processes must not do at once on this store (a chain's cascade build). `None` when another
    /// process holds it; the caller decides whether and how to wait.
    pub fn try_lock_named(&self, name: &str) -> Result<Option<NamedLock>> {
        let path = self.lock_path(&format!("{name}.lock"));
        let file = open_lock_file(&path)?;
        Ok(file.try_lock().is_ok().then_some(NamedLock { _file: file }))
    }
}

/// An empty `index.json`.
pub(crate) fn empty_index() -> ImageIndex {
    let mut index = ImageIndex::default();
    index.set_schema_version(SCHEMA_VERSION);
    index.set_media_type(Some(MediaType::ImageIndex));
    index.set_manifests(Vec::new());
    index
}

/// Serialize canonically: object keys sorted (maps in oci-spec types are `HashMap`s), compact.
pub fn canonical_json<T: Serialize>(value: &T, what: &str) -> Result<Vec<u8>> {
    let json_err = |source| Error::Json {
        what: what.to_string(),
        source,
    };
    let mut value = serde_json::to_value(value).map_err(json_err)?;
    value.sort_all_objects();
    serde_json::to_vec(&value).map_err(json_err)
}

/// Read a cache file the store or the builder wrote: a regular file of at most `max` bytes, opened
/// without following a symbolic link. `None` for anything else (missing, a link, a FIFO or device,
/// too large): a cache entry that is not what its writer made is a miss, never a hang or a flood.
pub fn read_cache_file(path: &Path, max: u64) -> Option<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .ok()?;
    let meta = file.metadata().ok()?;
    if !meta.is_file() || meta.len() > max {
        return None;
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(max.saturating_add(1))
        .read_to_end(&mut bytes)
        .ok()?;
    (bytes.len() as u64 <= max).then_some(bytes)
}

/// Write `bytes` to `path` atomically: temp file beside it, fsync, rename, fsync the directory.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .map_err(io_err(dir))?;
    tmp.write_all(bytes).map_err(io_err(tmp.path()))?;
    crate::fault::point(crate::fault::Op::Fsync);
    tmp.as_file().sync_all().map_err(io_err(tmp.path()))?;
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o644))
            .map_err(io_err(tmp.path()))?;
    }
    crate::fault::point(crate::fault::Op::Rename);
    tmp.persist(path)
        .map_err(|e| e.error)
        .map_err(io_err(path))?;
    sync_dir(dir)
}

/// fsync a directory so a rename in it is durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    crate::fault::point(crate::fault::Op::Fsync);
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

pub(crate) fn open_lock_file(path: &Path) -> Result<File> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
    }
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(io_err(path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::{Algorithm, Digest};

    #[test]
    fn cache_files_are_read_only_when_regular_small_and_not_through_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("entry");
        fs::write(&file, b"twelve bytes").unwrap();
        assert_eq!(
            read_cache_file(&file, 12).as_deref(),
            Some(&b"twelve bytes"[..])
        );
        assert_eq!(read_cache_file(&file, 11), None, "over the bound");
        assert_eq!(read_cache_file(&dir.path().join("missing"), 12), None);
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        assert_eq!(read_cache_file(&link, 12), None, "a link is not followed");
        // A FIFO would block a plain read for ever; here it is refused at once.
        let to_fifo = dir.path().join("to-fifo");
        strata_testutil::link_to_fifo(&to_fifo);
        assert_eq!(read_cache_file(&to_fifo, 12), None);
        assert_eq!(read_cache_file(&to_fifo.with_extension("fifo"), 12), None);
        assert_eq!(read_cache_file(dir.path(), 12), None, "a directory");
    }

    #[test]
    fn init_creates_a_layout_and_open_reads_it() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("a/b/store");
        let store = Store::init(&root).unwrap();
        assert_eq!(
            fs::read_to_string(root.join("oci-layout")).unwrap(),
            OCI_LAYOUT
        );
        assert_eq!(
            fs::read_to_string(root.join("index.json")).unwrap(),
            r#"{"manifests":[],"mediaType":"application/vnd.oci.image.index.v1+json","schemaVersion":2}"#
        );
        assert!(root.join("blobs/sha256").is_dir());
        store.blobs().put(b"x").unwrap();
        // init on an existing layout keeps its content.
        let again = Store::init(&root).unwrap();
        assert!(again.blobs().has(&Digest::of(b"x")));
        Store::open(&root).unwrap();
    }

    #[test]
    fn concurrent_inits_lose_no_tag() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("fresh");
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let root = root.clone();
                std::thread::spawn(move || {
                    let store = Store::init(&root).unwrap();
                    let d = store
                        .blobs()
                        .put(b"{}")
                        .unwrap()
                        .descriptor(MediaType::ImageManifest);
                    store.refs().tag(&format!("t/{i}"), &d).unwrap();
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(Store::open(&root).unwrap().refs().list().unwrap().len(), 8);
    }

    #[test]
    fn open_refuses_non_layouts() {
        let dir = tempfile::tempdir().unwrap();
        let err = Store::open(dir.path()).unwrap_err();
        assert!(matches!(err, Error::NotALayout { .. }), "{err}");
        fs::write(
            dir.path().join("oci-layout"),
            r#"{"imageLayoutVersion":"9"}"#,
        )
        .unwrap();
        let err = Store::open(dir.path()).unwrap_err();
        assert!(err.to_string().contains("unsupported oci-layout"), "{err}");
    }

    #[test]
    fn canonical_json_sorts_map_keys() {
        let mut map = std::collections::HashMap::new();
        for key in ["zeta", "alpha", "mid", "beta", "omega"] {
            map.insert(key.to_string(), "v".to_string());
        }
        let bytes = canonical_json(&map, "test").unwrap();
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            r#"{"alpha":"v","beta":"v","mid":"v","omega":"v","zeta":"v"}"#
        );
    }

    #[test]
    fn list_blobs_separates_strays() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::init(dir.path()).unwrap();
        let a = store.blobs().put(b"a").unwrap().digest;
        let b = store.blobs().put(b"b").unwrap().digest;
        fs::write(store.blobs().dir().join("junk"), b"").unwrap();
        let (digests, strays) = store.blobs().list().unwrap();
        let mut expected = vec![a.clone(), b.clone()];
        expected.sort();
        assert_eq!(digests, expected);
        assert_eq!(strays, vec![store.blobs().dir().join("junk")]);
        // sha512 blobs are listed from their own directory; a sha256 name there is a stray.
        let c = Digest::of_with(Algorithm::Sha512, b"c");
        let mut w = store.blobs().writer().unwrap();
        w.write_all(b"c").unwrap();
        w.commit(Some(&c)).unwrap();
        fs::write(store.blobs().dir_for(Algorithm::Sha512).join(a.hex()), b"a").unwrap();
        let (digests, strays) = store.blobs().list().unwrap();
        expected.push(c);
        expected.sort();
        assert_eq!(digests, expected);
        assert_eq!(strays.len(), 2, "{strays:?}");
    }
}
