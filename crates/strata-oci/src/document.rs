//! JSON documents stored as blobs: manifests, configs and image indexes, written canonically
//! (sorted keys, no whitespace) so equal documents get equal digests, and parsed when read.

use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex, ImageManifest, MediaType};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::blob::Blobs;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::layout::canonical_json;

impl Blobs<'_> {
    /// Store a JSON document canonically (sorted keys, no whitespace) and describe it.
    pub fn put_json<T: Serialize>(&self, value: &T, media_type: MediaType) -> Result<Descriptor> {
        let bytes = canonical_json(value, media_type.as_ref())?;
        Ok(self.put(&bytes)?.descriptor(media_type))
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
        let bytes = self.read(digest)?;
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
