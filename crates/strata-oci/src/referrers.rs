//! Referrers: manifests whose `subject` points at another manifest (signatures, SBOMs,
//! provenance).
//!
//! They are kept reachable as untagged `index.json` entries (no `ref.name`), which the OCI layout
//! allows and skopeo/umoci ignore when resolving tags. gc keeps one exactly as long as its subject
//! is live.

use oci_spec::image::{Descriptor, ImageManifest, MediaType};

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::index::is_manifest;
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
        if !self.has_blob(&subject_digest) {
            return Err(Error::BlobNotFound(subject_digest));
        }
        let descriptor = self.put_manifest(manifest)?;
        self.add_manifest(&descriptor)?;
        Ok(descriptor)
    }

    /// The manifests in `index.json` whose `subject` is `subject`, optionally only those of
    /// `artifact_type`, described as the OCI referrers API does (artifactType set: the manifest's
    /// `artifactType`, else its config's media type; the manifest's annotations). Sorted by
    /// digest.
    pub fn referrers(
        &self,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Vec<Descriptor>> {
        let mut found = Vec::new();
        for entry in self.index()?.manifests() {
            if !is_manifest(entry.media_type()) {
                continue;
            }
            let digest = Digest::from_oci(entry.digest())?;
            if !self.has_blob(&digest) {
                continue;
            }
            let node = self.read_node(entry)?;
            if node.subject().as_ref() != Some(subject) {
                continue;
            }
            let Node::Manifest(manifest) = node else {
                continue;
            };
            let kind: MediaType = manifest
                .artifact_type()
                .clone()
                .unwrap_or_else(|| manifest.config().media_type().clone());
            if artifact_type.is_some_and(|wanted| kind.to_string() != wanted) {
                continue;
            }
            let mut descriptor = Descriptor::new(
                MediaType::ImageManifest,
                entry.size(),
                entry.digest().clone(),
            );
            descriptor.set_artifact_type(Some(kind));
            descriptor.set_annotations(manifest.annotations().clone());
            found.push(descriptor);
        }
        found.sort_by(|a, b| a.digest().as_ref().cmp(b.digest().as_ref()));
        found.dedup_by(|a, b| a.digest() == b.digest());
        Ok(found)
    }
}
