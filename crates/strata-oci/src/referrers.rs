//! Referrers: manifests whose `subject` points at another manifest (signatures, SBOMs,
//! provenance).
//!
//! They are kept reachable as untagged `index.json` entries (no `ref.name`), which the OCI layout
//! allows and skopeo/umoci ignore when resolving tags. gc keeps one exactly as long as its subject
//! is live.

use oci_spec::image::{Descriptor, ImageManifest, MediaType};

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::index::{is_index, is_manifest};
use crate::layout::Store;
use crate::walk::Node;

impl Store {
    /// Store a manifest that has a `subject` and add it to `index.json` as an untagged root.
    pub fn put_referrer(&self, manifest: &ImageManifest) -> Result<Descriptor> {
        let Some(subject) = manifest.subject() else {
            return Err(Error::InvalidImage {
                image: "(referrer)".into(),
                reason: "a referrer manifest needs a subject".into(),
            });
        };
        let subject_digest = Digest::from_oci(subject.digest())?;
        if !self.blobs().has(&subject_digest) {
            return Err(Error::BlobNotFound(subject_digest));
        }
        let descriptor = self.blobs().put_manifest(manifest)?;
        self.refs().add_root(&descriptor)?;
        Ok(descriptor)
    }

    /// The manifests and image indexes in `index.json` (and in the repositories' membership
    /// records) whose `subject` is `subject`, optionally only those of `artifact_type`, described
    /// as the OCI referrers API does: each entry with the referrer's own media type, its
    /// `artifactType` (for an image manifest without one, its config's media type) and its
    /// annotations. Sorted by digest.
    pub fn referrers(
        &self,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Vec<Descriptor>> {
        let mut candidates: Vec<Descriptor> = self.refs().index()?.manifests().clone();
        for record in self.repos().records()?.values() {
            for (digest, media_type) in &record.manifests {
                let bytes = match self.blobs().size(digest) {
                    Ok(size) => size,
                    Err(Error::BlobNotFound(_)) => continue,
                    Err(e) => return Err(e),
                };
                candidates.push(Descriptor::new(
                    MediaType::from(media_type.as_str()),
                    bytes,
                    digest.to_oci(),
                ));
            }
        }
        let mut found = Vec::new();
        for entry in candidates {
            if !is_manifest(entry.media_type()) && !is_index(entry.media_type()) {
                continue;
            }
            let digest = Digest::from_oci(entry.digest())?;
            if !self.blobs().has(&digest) {
                continue;
            }
            let node = self.read_node(&entry)?;
            if node.subject().as_ref() != Some(subject) {
                continue;
            }
            let (media_type, kind, annotations) = match node {
                Node::Manifest(manifest) => (
                    manifest
                        .media_type()
                        .clone()
                        .unwrap_or_else(|| entry.media_type().clone()),
                    Some(
                        manifest
                            .artifact_type()
                            .clone()
                            .unwrap_or_else(|| manifest.config().media_type().clone()),
                    ),
                    manifest.annotations().clone(),
                ),
                Node::Index(index) => (
                    index
                        .media_type()
                        .clone()
                        .unwrap_or_else(|| entry.media_type().clone()),
                    index.artifact_type().clone(),
                    index.annotations().clone(),
                ),
                Node::Leaf => continue,
            };
            if artifact_type.is_some_and(|wanted| {
                kind.as_ref().map(|k| k.to_string()).as_deref() != Some(wanted)
            }) {
                continue;
            }
            let mut descriptor = Descriptor::new(media_type, entry.size(), entry.digest().clone());
            descriptor.set_artifact_type(kind);
            descriptor.set_annotations(annotations);
            found.push(descriptor);
        }
        found.sort_by(|a, b| a.digest().as_ref().cmp(b.digest().as_ref()));
        found.dedup_by(|a, b| a.digest() == b.digest());
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::add_root_entry;

    // Issue 14: the referrers list skipped image indexes with a subject and hard-coded the
    // entry's media type.
    #[test]
    fn an_index_with_a_subject_is_listed_with_its_own_media_type_and_annotations() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::init(dir.path()).unwrap();
        let subject = crate::random::image(&store, 1, 100).unwrap();
        store
            .refs()
            .tag("acme/app:1", subject.descriptor())
            .unwrap();
        let index = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "artifactType": "application/vnd.example.sbom",
            "manifests": [],
            "subject": {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": subject.digest().to_string(),
                "size": subject.descriptor().size(),
            },
            "annotations": {"org.example": "yes"},
        });
        let bytes = serde_json::to_vec(&index).unwrap();
        let info = store.blobs().put(&bytes).unwrap();
        store
            .refs()
            .update(|i| {
                Ok((
                    add_root_entry(i, info.descriptor(MediaType::ImageIndex)),
                    (),
                ))
            })
            .unwrap();
        let found = store.referrers(&subject.digest(), None).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].media_type(), &MediaType::ImageIndex);
        assert_eq!(
            found[0]
                .artifact_type()
                .as_ref()
                .map(|t| t.to_string())
                .as_deref(),
            Some("application/vnd.example.sbom")
        );
        assert_eq!(
            found[0].annotations().as_ref().unwrap()["org.example"],
            "yes"
        );
        assert_eq!(
            store
                .referrers(&subject.digest(), Some("application/vnd.example.sbom"))
                .unwrap()
                .len(),
            1
        );
        assert!(
            store
                .referrers(&subject.digest(), Some("application/vnd.other"))
                .unwrap()
                .is_empty()
        );
    }
}
