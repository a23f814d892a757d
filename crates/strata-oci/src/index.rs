//! Tags and roots: the layout's `index.json`.
//!
//! A tag is an `index.json` entry annotated `org.opencontainers.image.ref.name` with a FULL reference
//! (`localhost/acme/corebuild:latest`), so `podman load` and skopeo name images right. Entries
//! without that annotation are untagged roots (e.g. referrers: signatures, attestations).
//!
//! Every update takes an exclusive lock (`.strata/index.lock`), re-reads `index.json`, modifies it
//! and replaces it atomically: concurrent taggers never lose a tag, and a crash leaves the old or
//! the new index.

use std::path::PathBuf;

use oci_spec::image::{ANNOTATION_REF_NAME, Descriptor, ImageIndex, MediaType};

use crate::digest::Digest;
use crate::error::{Error, Result, io_err};
use crate::layout::{Store, atomic_write, canonical_json, open_lock_file};
use crate::reference::Reference;

/// A tag in `index.json`: its `ref.name` annotation and the descriptor it points to.
#[derive(Clone, Debug, PartialEq)]
pub struct Tag {
    /// The `org.opencontainers.image.ref.name` value, as written (a full reference for tags strata
    /// wrote; other tools may have written short names such as `latest`).
    pub name: String,
    /// The tagged manifest or index.
    pub descriptor: Descriptor,
}

impl Tag {
    /// The tagged digest.
    pub fn digest(&self) -> Result<Digest> {
        Digest::from_oci(self.descriptor.digest())
    }
}

/// The `ref.name` of an index entry, if any.
pub fn ref_name(descriptor: &Descriptor) -> Option<&str> {
    descriptor
        .annotations()
        .as_ref()
        .and_then(|a| a.get(ANNOTATION_REF_NAME))
        .map(String::as_str)
}

/// True for OCI and Docker image manifest media types.
pub fn is_manifest(media_type: &MediaType) -> bool {
    matches!(media_type, MediaType::ImageManifest)
        || media_type.to_string() == "application/vnd.docker.distribution.manifest.v2+json"
}

/// True for OCI image index and Docker manifest list media types.
pub fn is_index(media_type: &MediaType) -> bool {
    matches!(media_type, MediaType::ImageIndex)
        || media_type.to_string() == "application/vnd.docker.distribution.manifest.list.v2+json"
}

/// Point the tag `parsed` at `entry` (a descriptor carrying the tag's `ref.name`, as
/// [`Refs::tag_entry`] makes it) in an index being edited: the tag's old entry goes, and an
/// untagged root of the same digest (now tagged).
pub fn set_tag_entry(index: &mut ImageIndex, parsed: &Reference, entry: Descriptor) {
    let mut norm = |name: &str| Reference::parse(name).ok().map(|r| r.to_string());
    let mut list = index.manifests().clone();
    set_tag_entry_with(&mut list, parsed, entry, &mut norm);
    index.set_manifests(list);
}

/// [`set_tag_entry`] with `norm` giving a `ref.name`'s normal form (the store remembers them).
fn set_tag_entry_with(
    list: &mut Vec<Descriptor>,
    parsed: &Reference,
    entry: Descriptor,
    norm: &mut dyn FnMut(&str) -> Option<String>,
) {
    let full = parsed.to_string();
    list.retain(|d| match ref_name(d) {
        Some(name) => !(name == full || norm(name).as_deref() == Some(full.as_str())),
        None => d.digest() != entry.digest(),
    });
    list.push(entry);
}

/// Remove the tag `reference` (as written, or `parsed`'s normal form) from an index being
/// edited; true when one was there.
pub fn remove_tag_entry(index: &mut ImageIndex, reference: &str, parsed: &Reference) -> bool {
    let mut norm = |name: &str| Reference::parse(name).ok().map(|r| r.to_string());
    let mut list = index.manifests().clone();
    let removed = remove_tag_entry_with(&mut list, reference, parsed, &mut norm);
    index.set_manifests(list);
    removed
}

/// [`remove_tag_entry`] with `norm` giving a `ref.name`'s normal form.
fn remove_tag_entry_with(
    list: &mut Vec<Descriptor>,
    reference: &str,
    parsed: &Reference,
    norm: &mut dyn FnMut(&str) -> Option<String>,
) -> bool {
    let full = parsed.to_string();
    let before = list.len();
    list.retain(|d| {
        ref_name(d)
            .is_none_or(|name| !(name == reference || norm(name).as_deref() == Some(full.as_str())))
    });
    list.len() != before
}

/// Add `entry` (no `ref.name`) as an untagged root of an index being edited, unless an entry
/// already points at its digest; true when added.
pub fn add_root_entry(index: &mut ImageIndex, entry: Descriptor) -> bool {
    let mut list = index.manifests().clone();
    if list.iter().any(|d| d.digest() == entry.digest()) {
        return false;
    }
    list.push(entry);
    index.set_manifests(list);
    true
}

/// Remove the untagged root entries of `digest` from an index being edited; true when one was
/// there.
pub fn remove_root_entry(index: &mut ImageIndex, digest: &Digest) -> bool {
    let oci = digest.to_oci();
    let mut list = index.manifests().clone();
    let before = list.len();
    list.retain(|d| ref_name(d).is_some() || *d.digest() != oci);
    let removed = list.len() != before;
    index.set_manifests(list);
    removed
}

/// The store's references: tags and untagged roots in `index.json`. Made by [`Store::refs`].
#[derive(Clone, Copy, Debug)]
pub struct Refs<'a> {
    pub(crate) store: &'a Store,
}

impl<'a> Refs<'a> {
    pub(crate) fn new(store: &'a Store) -> Self {
        Refs { store }
    }

    /// `index.json`.
    pub fn path(&self) -> PathBuf {
        self.store.root().join("index.json")
    }

    /// Read `index.json`.
    pub fn index(&self) -> Result<ImageIndex> {
        Ok(self.store.index_view()?.index())
    }

    /// Read-modify-write `index.json` under the exclusive index lock. `update` returns whether it
    /// changed the index (only then is it written) and a value to pass back.
    pub fn update<T>(
        &self,
        update: impl FnOnce(&mut ImageIndex) -> Result<(bool, T)>,
    ) -> Result<T> {
        // This process's batched edits first: `update` may write other files that must agree
        // with the index on disk.
        self.store.flush_index()?;
        let lock_path = self.store.lock_path("index.lock");
        let lock = open_lock_file(&lock_path)?;
        lock.lock().map_err(io_err(&lock_path))?;
        let mut index = self.index()?;
        let (changed, value) = update(&mut index)?;
        if changed {
            atomic_write(&self.path(), &canonical_json(&index, "index.json")?)?;
            self.store.index_written(index);
        }
        drop(lock);
        Ok(value)
    }

    /// Point the tag `reference` (short forms are normalised) at `descriptor`, replacing the tag's
    /// previous target. Returns the full reference written. The blob must already be stored.
    pub fn tag(&self, reference: &str, descriptor: &Descriptor) -> Result<Reference> {
        let (parsed, entry) = self.tag_entry(reference, descriptor)?;
        self.store.edit_index(|index, norm| {
            set_tag_entry_with(index, &parsed, entry, norm);
            (true, ())
        })?;
        Ok(parsed)
    }

    /// The descriptor [`Refs::tag`] would write for `reference` (checked against the stored
    /// blob), and the parsed reference; for callers that edit `index.json` themselves under
    /// [`Refs::update`] with [`set_tag_entry`].
    pub fn tag_entry(
        &self,
        reference: &str,
        descriptor: &Descriptor,
    ) -> Result<(Reference, Descriptor)> {
        let parsed = Reference::parse(reference)?;
        if parsed.digest().is_some() {
            return Err(Error::InvalidReference {
                input: reference.to_string(),
                reason: "a tag cannot contain a digest".into(),
            });
        }
        let digest = Digest::from_oci(descriptor.digest())?;
        let size = self.store.blobs().size(&digest)?;
        if size != descriptor.size() {
            return Err(Error::SizeMismatch {
                digest,
                expected: descriptor.size(),
                actual: size,
            });
        }
        let mut entry = descriptor.clone();
        let mut annotations = entry.annotations().clone().unwrap_or_default();
        annotations.insert(ANNOTATION_REF_NAME.to_string(), parsed.to_string());
        entry.set_annotations(Some(annotations));
        Ok((parsed, entry))
    }

    /// Remove a tag. Returns false when there was no such tag. The blobs stay until `gc`.
    pub fn untag(&self, reference: &str) -> Result<bool> {
        let parsed = Reference::parse(reference)?;
        self.store.edit_index(|index, norm| {
            let removed = remove_tag_entry_with(index, reference, &parsed, norm);
            (removed, removed)
        })
    }

    /// Add `descriptor` to `index.json` as an untagged root (no `ref.name`), e.g. a referrer. A
    /// no-op when an entry already points at the digest.
    pub fn add_root(&self, descriptor: &Descriptor) -> Result<()> {
        let digest = Digest::from_oci(descriptor.digest())?;
        if !self.store.blobs().has(&digest) {
            return Err(Error::BlobNotFound(digest));
        }
        let mut entry = descriptor.clone();
        if let Some(mut annotations) = entry.annotations().clone() {
            annotations.remove(ANNOTATION_REF_NAME);
            entry.set_annotations((!annotations.is_empty()).then_some(annotations));
        }
        self.store.edit_index(|list, _| {
            if list.iter().any(|d| d.digest() == entry.digest()) {
                return (false, ());
            }
            list.push(entry);
            (true, ())
        })
    }

    /// Remove the untagged root entries for `digest`. Returns whether one was removed.
    pub fn remove_root(&self, digest: &Digest) -> Result<bool> {
        let oci = digest.to_oci();
        self.store.edit_index(|list, _| {
            let before = list.len();
            list.retain(|d| ref_name(d).is_some() || *d.digest() != oci);
            let removed = list.len() != before;
            (removed, removed)
        })
    }

    /// Every tag in `index.json`, in index order.
    pub fn list(&self) -> Result<Vec<Tag>> {
        Ok(self
            .store
            .index_view()?
            .manifests
            .iter()
            .filter_map(|d| {
                ref_name(d).map(|name| Tag {
                    name: name.to_string(),
                    descriptor: d.clone(),
                })
            })
            .collect())
    }

    /// Find the manifest (or image index) a reference names: a full or short tag
    /// (`acme/corebuild` means `localhost/acme/corebuild:latest`), `name@sha256:...` (or
    /// `@sha512:...`), or a bare `sha256:...`/`sha512:...` digest of a manifest in the store.
    pub fn resolve(&self, reference: &str) -> Result<Descriptor> {
        let view = self.store.index_view()?;
        // Exact ref.name first: other tools may have written short names such as `latest`.
        if let Some(d) = self.store.find_exact(&view, reference) {
            return Ok(d);
        }
        if reference.starts_with("sha256:") || reference.starts_with("sha512:") {
            let digest: Digest = reference.parse()?;
            return self.resolve_digest(&view.manifests, &digest, reference);
        }
        let parsed = Reference::parse(reference)?;
        if let Some(digest) = parsed.digest() {
            return self.resolve_digest(&view.manifests, digest, &parsed.to_string());
        }
        self.store
            .find_normal(&view, &parsed)
            .ok_or_else(|| Error::ImageNotFound(parsed.to_string()))
    }

    /// The `ref.name`s that start with `prefix`, in index order (e.g. one repository's tags,
    /// `localhost/acme/app:`), without copying the rest of the index.
    pub fn names_with_prefix(&self, prefix: &str) -> Result<Vec<String>> {
        Ok(self
            .store
            .index_view()?
            .manifests
            .iter()
            .filter_map(ref_name)
            .filter(|name| name.starts_with(prefix))
            .map(str::to_string)
            .collect())
    }

    fn resolve_digest(
        &self,
        manifests: &[Descriptor],
        digest: &Digest,
        reference: &str,
    ) -> Result<Descriptor> {
        let oci = digest.to_oci();
        if let Some(d) = manifests.iter().find(|d| *d.digest() == oci) {
            let mut d = d.clone();
            d.set_annotations(None);
            return Ok(d);
        }
        if !self.store.blobs().has(digest) {
            return Err(Error::ImageNotFound(reference.to_string()));
        }
        // A manifest that is only referenced from an image index: describe it from its content.
        let bytes = self.store.blobs().read(digest)?;
        let value: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|source| Error::Json {
                what: format!("manifest {digest}"),
                source,
            })?;
        let media_type = value
            .get("mediaType")
            .and_then(|m| m.as_str())
            .map(MediaType::from)
            .unwrap_or(MediaType::ImageManifest);
        if !is_manifest(&media_type) && !is_index(&media_type) {
            return Err(Error::ImageNotFound(format!(
                "{reference} (blob is {media_type}, not a manifest)"
            )));
        }
        Ok(Descriptor::new(
            media_type,
            bytes.len() as u64,
            digest.to_oci(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store_with_manifest(content: &[u8]) -> (tempfile::TempDir, Store, Descriptor) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::init(dir.path()).unwrap();
        let d = store
            .blobs()
            .put(content)
            .unwrap()
            .descriptor(MediaType::ImageManifest);
        (dir, store, d)
    }

    #[test]
    fn tag_resolve_untag() {
        let (_dir, store, d) = store_with_manifest(br#"{"schemaVersion":2}"#);
        let full = store.refs().tag("acme/corebuild", &d).unwrap();
        assert_eq!(full.to_string(), "localhost/acme/corebuild:latest");
        let on_disk = std::fs::read_to_string(store.refs().path()).unwrap();
        assert!(
            on_disk.contains(
                r#""org.opencontainers.image.ref.name":"localhost/acme/corebuild:latest""#
            ),
            "{on_disk}"
        );
        for form in [
            "localhost/acme/corebuild:latest",
            "acme/corebuild:latest",
            "acme/corebuild",
        ] {
            assert_eq!(
                store.refs().resolve(form).unwrap().digest(),
                d.digest(),
                "{form}"
            );
        }
        let by_digest = format!("acme/corebuild@{}", d.digest());
        assert_eq!(
            store.refs().resolve(&by_digest).unwrap().digest(),
            d.digest()
        );
        assert_eq!(
            store.refs().resolve(d.digest().as_ref()).unwrap().digest(),
            d.digest()
        );
        let err = store.refs().resolve("acme/corebuild:other").unwrap_err();
        assert_eq!(
            err.to_string(),
            "image localhost/acme/corebuild:other is not in the store"
        );
        let tags = store.refs().list().unwrap();
        assert_eq!(tags.len(), 1);
        assert_eq!(tags[0].name, "localhost/acme/corebuild:latest");
        assert!(store.refs().untag("acme/corebuild:latest").unwrap());
        assert!(!store.refs().untag("acme/corebuild:latest").unwrap());
        assert!(store.refs().list().unwrap().is_empty());
        assert!(store.refs().resolve("acme/corebuild").is_err());
    }

    #[test]
    fn retag_moves_the_tag() {
        let (_dir, store, a) = store_with_manifest(b"{\"a\":1}");
        let b = store
            .blobs()
            .put(b"{\"b\":1}")
            .unwrap()
            .descriptor(MediaType::ImageManifest);
        store.refs().tag("x/y:1", &a).unwrap();
        store.refs().tag("x/y:2", &a).unwrap();
        store.refs().tag("localhost/x/y:1", &b).unwrap();
        let tags = store.refs().list().unwrap();
        assert_eq!(tags.len(), 2);
        assert_eq!(store.refs().resolve("x/y:1").unwrap().digest(), b.digest());
        assert_eq!(store.refs().resolve("x/y:2").unwrap().digest(), a.digest());
    }

    #[test]
    fn tag_refuses_missing_blobs_and_digest_refs() {
        let (_dir, store, d) = store_with_manifest(b"{}");
        let missing = Descriptor::new(MediaType::ImageManifest, 3, Digest::of(b"zzz").to_oci());
        assert!(matches!(
            store.refs().tag("a/b", &missing),
            Err(Error::BlobNotFound(_))
        ));
        let mut wrong_size = d.clone();
        wrong_size.set_size(99);
        assert!(matches!(
            store.refs().tag("a/b", &wrong_size),
            Err(Error::SizeMismatch { .. })
        ));
        assert!(
            store
                .refs()
                .tag(&format!("a/b@{}", d.digest()), &d)
                .is_err()
        );
    }

    #[test]
    fn untagged_roots() {
        let (_dir, store, d) = store_with_manifest(b"{}");
        store.refs().add_root(&d).unwrap();
        store.refs().add_root(&d).unwrap();
        let index = store.refs().index().unwrap();
        assert_eq!(index.manifests().len(), 1);
        assert!(ref_name(&index.manifests()[0]).is_none());
        assert!(store.refs().list().unwrap().is_empty());
        // Tagging it replaces the untagged entry.
        store.refs().tag("a/b", &d).unwrap();
        assert_eq!(store.refs().index().unwrap().manifests().len(), 1);
        store.refs().untag("a/b").unwrap();
        store.refs().add_root(&d).unwrap();
        assert!(
            store
                .refs()
                .remove_root(&Digest::from_oci(d.digest()).unwrap())
                .unwrap()
        );
        assert!(store.refs().index().unwrap().manifests().is_empty());
    }

    #[test]
    fn short_names_written_by_other_tools_resolve() {
        let (_dir, store, d) = store_with_manifest(b"{}");
        let mut entry = d.clone();
        entry.set_annotations(Some(
            [(ANNOTATION_REF_NAME.to_string(), "latest".to_string())].into(),
        ));
        store
            .refs()
            .update(|index| {
                let mut list = index.manifests().clone();
                list.push(entry);
                index.set_manifests(list);
                Ok((true, ()))
            })
            .unwrap();
        assert_eq!(store.refs().resolve("latest").unwrap().digest(), d.digest());
    }

    #[test]
    fn concurrent_taggers_never_lose_a_tag() {
        let (_dir, store, d) = store_with_manifest(b"{}");
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let store = store.clone();
                let d = d.clone();
                std::thread::spawn(move || {
                    for i in 0..25 {
                        store.refs().tag(&format!("t{t}/img:v{i}"), &d).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(store.refs().list().unwrap().len(), 200);
    }
}
