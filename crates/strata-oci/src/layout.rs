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

use oci_spec::image::{
    Descriptor, ImageConfiguration, ImageIndex, ImageManifest, MediaType, SCHEMA_VERSION,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::digest::{Algorithm, Digest};
use crate::error::{Error, Result, io_err};

/// The content of `oci-layout`.
pub const OCI_LAYOUT: &str = r#"{"imageLayoutVersion":"1.0.0"}"#;

/// An OCI image layout on disk. Cheap to clone: it is a path.
#[derive(Clone, Debug)]
pub struct Store {
    root: PathBuf,
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
        Ok(Store { root })
    }

    /// Open the layout at `dir`, creating it (and its parents) when it does not exist yet.
    pub fn init(dir: impl AsRef<Path>) -> Result<Store> {
        let root = dir.as_ref().to_path_buf();
        if root.join("oci-layout").exists() {
            return Store::open(root);
        }
        let store = Store { root };
        store.ensure_private_dirs()?;
        // Under the index lock: a concurrent init must not replace an index another process has
        // already started tagging into.
        let lock_path = store.lock_path("index.lock");
        let lock = open_lock_file(&lock_path)?;
        lock.lock().map_err(io_err(&lock_path))?;
        if !store.index_path().exists() {
            let empty = empty_index();
            atomic_write(&store.index_path(), &canonical_json(&empty, "index.json")?)?;
        }
        let layout = store.root.join("oci-layout");
        if !layout.exists() {
            atomic_write(&layout, OCI_LAYOUT.as_bytes())?;
        }
        drop(lock);
        Ok(store)
    }

    fn ensure_private_dirs(&self) -> Result<()> {
        for dir in [self.blobs_dir(), self.tmp_dir()] {
            fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        }
        Ok(())
    }

    /// The layout's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `blobs/sha256`, where strata's own blobs go.
    pub fn blobs_dir(&self) -> PathBuf {
        self.blobs_dir_for(Algorithm::Sha256)
    }

    /// `blobs/<algorithm>`.
    pub fn blobs_dir_for(&self, algorithm: Algorithm) -> PathBuf {
        self.root.join("blobs").join(algorithm.name())
    }

    /// Where a blob lives (whether or not it exists): `blobs/<algorithm>/<hex>`.
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.blobs_dir_for(digest.algorithm()).join(digest.hex())
    }

    /// `index.json`.
    pub fn index_path(&self) -> PathBuf {
        self.root.join("index.json")
    }

    /// The directory for temp files (same file system as the blobs, so renames are atomic).
    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join(".strata").join("tmp")
    }

    pub(crate) fn lock_path(&self, name: &str) -> PathBuf {
        self.root.join(".strata").join(name)
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

    /// Every blob file name under `blobs/sha256` and `blobs/sha512` that is a valid digest,
    /// sorted; other names are returned separately. A missing `blobs/sha512` holds nothing.
    pub fn list_blobs(&self) -> Result<(Vec<Digest>, Vec<PathBuf>)> {
        let mut digests = Vec::new();
        let mut strays = Vec::new();
        for algorithm in Algorithm::ALL {
            let dir = self.blobs_dir_for(algorithm);
            let entries = match fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) if e.kind() == io::ErrorKind::NotFound && algorithm != Algorithm::Sha256 => {
                    continue;
                }
                Err(e) => return Err(io_err(&dir)(e)),
            };
            for entry in entries {
                let entry = entry.map_err(io_err(&dir))?;
                let name = entry.file_name();
                match name.to_str().map(|hex| Digest::from_parts(algorithm, hex)) {
                    Some(Ok(digest)) => digests.push(digest),
                    _ => strays.push(entry.path()),
                }
            }
        }
        digests.sort();
        strays.sort();
        Ok((digests, strays))
    }

    /// Store a JSON document canonically (sorted keys, no whitespace) and describe it.
    pub fn put_json<T: Serialize>(&self, value: &T, media_type: MediaType) -> Result<Descriptor> {
        let bytes = canonical_json(value, media_type.as_ref())?;
        Ok(self.put_blob(&bytes)?.descriptor(media_type))
    }

    /// Store an image manifest. The descriptor carries the manifest's `artifactType` when set.
    pub fn put_manifest(&self, manifest: &ImageManifest) -> Result<Descriptor> {
        let mut descriptor = self.put_json(manifest, MediaType::ImageManifest)?;
        if let Some(artifact_type) = manifest.artifact_type() {
            descriptor.set_artifact_type(Some(artifact_type.clone()));
        }
        Ok(descriptor)
    }

    /// Store an image configuration.
    pub fn put_config(&self, config: &ImageConfiguration) -> Result<Descriptor> {
        self.put_json(config, MediaType::ImageConfig)
    }

    /// Store an image index (a multi-platform image, not the layout's `index.json`).
    pub fn put_index(&self, index: &ImageIndex) -> Result<Descriptor> {
        self.put_json(index, MediaType::ImageIndex)
    }

    /// Read and parse a JSON blob, checking its digest.
    pub fn read_json<T: DeserializeOwned>(&self, digest: &Digest, what: &str) -> Result<T> {
        let bytes = self.read_blob_verified(digest)?;
        serde_json::from_slice(&bytes).map_err(|source| Error::Json {
            what: format!("{what} {digest}"),
            source,
        })
    }

    /// Read an image manifest blob.
    pub fn read_manifest(&self, digest: &Digest) -> Result<ImageManifest> {
        self.read_json(digest, "manifest")
    }

    /// Read an image configuration blob.
    pub fn read_config(&self, digest: &Digest) -> Result<ImageConfiguration> {
        self.read_json(digest, "config")
    }

    /// Read an image index blob.
    pub fn read_image_index(&self, digest: &Digest) -> Result<ImageIndex> {
        self.read_json(digest, "image index")
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

/// Write `bytes` to `path` atomically: temp file beside it, fsync, rename, fsync the directory.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .map_err(io_err(dir))?;
    tmp.write_all(bytes).map_err(io_err(tmp.path()))?;
    tmp.as_file().sync_all().map_err(io_err(tmp.path()))?;
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o644))
            .map_err(io_err(tmp.path()))?;
    }
    tmp.persist(path)
        .map_err(|e| e.error)
        .map_err(io_err(path))?;
    sync_dir(dir)
}

/// fsync a directory so a rename in it is durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
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
        store.put_blob(b"x").unwrap();
        // init on an existing layout keeps its content.
        let again = Store::init(&root).unwrap();
        assert!(again.has_blob(&Digest::of(b"x")));
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
                        .put_blob(b"{}")
                        .unwrap()
                        .descriptor(MediaType::ImageManifest);
                    store.tag(&format!("t/{i}"), &d).unwrap();
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(Store::open(&root).unwrap().list().unwrap().len(), 8);
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
        let a = store.put_blob(b"a").unwrap().digest;
        let b = store.put_blob(b"b").unwrap().digest;
        fs::write(store.blobs_dir().join("junk"), b"").unwrap();
        let (digests, strays) = store.list_blobs().unwrap();
        let mut expected = vec![a.clone(), b.clone()];
        expected.sort();
        assert_eq!(digests, expected);
        assert_eq!(strays, vec![store.blobs_dir().join("junk")]);
        // sha512 blobs are listed from their own directory; a sha256 name there is a stray.
        let c = Digest::of_with(Algorithm::Sha512, b"c");
        let mut w = store.blob_writer().unwrap();
        w.write_all(b"c").unwrap();
        w.commit(Some(&c)).unwrap();
        fs::write(store.blobs_dir_for(Algorithm::Sha512).join(a.hex()), b"a").unwrap();
        let (digests, strays) = store.list_blobs().unwrap();
        expected.push(c);
        expected.sort();
        assert_eq!(digests, expected);
        assert_eq!(strays.len(), 2, "{strays:?}");
    }
}
