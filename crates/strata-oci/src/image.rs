//! `Image`: an immutable view of a stored image (manifest + config + layer descriptors).
//!
//! Images are read from the store with [`Store::image`] and written with [`Store::write_image`];
//! there are no setters. To derive an image, build a new config and layer list and write it.

use std::collections::HashMap;

use oci_spec::image::{
    Descriptor, ImageConfiguration, ImageManifest, ImageManifestBuilder, MediaType, SCHEMA_VERSION,
};

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::index::{is_index, is_manifest};
use crate::layout::Store;

/// A stored image: its manifest descriptor, manifest and config.
#[derive(Clone, Debug)]
pub struct Image {
    descriptor: Descriptor,
    manifest: ImageManifest,
    config: ImageConfiguration,
}

impl Image {
    /// The manifest's digest: the image's identity.
    pub fn digest(&self) -> Digest {
        Digest::from_oci(self.descriptor.digest()).expect("manifest digests are checked on read")
    }

    /// The manifest's descriptor (media type, digest, size).
    pub fn descriptor(&self) -> &Descriptor {
        &self.descriptor
    }

    /// The manifest.
    pub fn manifest(&self) -> &ImageManifest {
        &self.manifest
    }

    /// The config.
    pub fn config(&self) -> &ImageConfiguration {
        &self.config
    }

    /// The config blob's descriptor.
    pub fn config_descriptor(&self) -> &Descriptor {
        self.manifest.config()
    }

    /// The layer descriptors, base first.
    pub fn layers(&self) -> &[Descriptor] {
        self.manifest.layers()
    }

    /// The uncompressed layer digests from the config (`rootfs.diff_ids`), base first.
    pub fn diff_ids(&self) -> Result<Vec<Digest>> {
        self.config
            .rootfs()
            .diff_ids()
            .iter()
            .map(|d| d.parse())
            .collect()
    }

    /// Manifest + config + layers, in bytes.
    pub fn size(&self) -> u64 {
        self.descriptor.size()
            + self.manifest.config().size()
            + self.manifest.layers().iter().map(|l| l.size()).sum::<u64>()
    }
}

/// A manifest (schema 2, OCI media type) over `config` and `layers`, without annotations.
pub fn new_manifest(config: Descriptor, layers: Vec<Descriptor>) -> ImageManifest {
    ImageManifestBuilder::default()
        .schema_version(SCHEMA_VERSION)
        .media_type(MediaType::ImageManifest)
        .config(config)
        .layers(layers)
        .build()
        .expect("every required manifest field is set")
}

/// Whether `platform` (`os/arch[/variant]`) is this machine's: `linux/<host_architecture>`.
pub fn is_host_platform(platform: &str) -> bool {
    let mut parts = platform.split('/');
    parts.next() == Some("linux") && parts.next() == Some(host_architecture())
}

/// The Go architecture name of this machine (`amd64`, `arm64`, ...).
pub fn host_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

impl Store {
    /// Read the image a reference names (see [`Refs::resolve`](crate::Refs::resolve)). A multi-platform index yields its
    /// linux manifest for this machine's architecture, or its first manifest.
    pub fn image(&self, reference: &str) -> Result<Image> {
        let descriptor = self.refs().resolve(reference)?;
        self.image_from_descriptor(&descriptor)
    }

    /// Read the image a manifest (or image index) descriptor points to.
    pub fn image_from_descriptor(&self, descriptor: &Descriptor) -> Result<Image> {
        let digest = Digest::from_oci(descriptor.digest())?;
        let media_type = descriptor.media_type();
        if is_index(media_type) {
            let index = self.blobs().read_image_index(&digest)?;
            let manifests = index.manifests();
            let chosen = manifests
                .iter()
                .find(|m| {
                    m.platform().as_ref().is_some_and(|p| {
                        p.os().to_string() == "linux"
                            && p.architecture().to_string() == host_architecture()
                    })
                })
                .or_else(|| manifests.first())
                .ok_or_else(|| Error::InvalidImage {
                    image: digest.to_string(),
                    reason: "the image index lists no manifests".into(),
                })?;
            return self.image_from_descriptor(chosen);
        }
        if !is_manifest(media_type) {
            return Err(Error::UnsupportedMediaType {
                digest,
                media_type: media_type.to_string(),
            });
        }
        let bytes = self.blobs().read_descriptor(descriptor)?;
        let manifest: ImageManifest =
            serde_json::from_slice(&bytes).map_err(|source| Error::Json {
                what: format!("manifest {digest}"),
                source,
            })?;
        let config_bytes = self.blobs().read_descriptor(manifest.config())?;
        let config: ImageConfiguration =
            serde_json::from_slice(&config_bytes).map_err(|source| Error::Json {
                what: format!("config {} of image {digest}", manifest.config().digest()),
                source,
            })?;
        let mut descriptor = descriptor.clone();
        descriptor.set_annotations(None);
        Ok(Image {
            descriptor,
            manifest,
            config,
        })
    }

    /// Write an image: `config` (its `rootfs.diff_ids` must match `layers`), then a manifest over
    /// it and the (already stored) `layers`, with optional manifest annotations. Nothing is
    /// tagged; call [`Refs::tag`](crate::Refs::tag) with the returned image's descriptor.
    pub fn write_image(
        &self,
        config: &ImageConfiguration,
        layers: &[Descriptor],
        annotations: Option<HashMap<String, String>>,
    ) -> Result<Image> {
        if config.rootfs().diff_ids().len() != layers.len() {
            return Err(Error::InvalidImage {
                image: "(new image)".into(),
                reason: format!(
                    "config lists {} diff_ids for {} layers",
                    config.rootfs().diff_ids().len(),
                    layers.len()
                ),
            });
        }
        for layer in layers {
            let digest = Digest::from_oci(layer.digest())?;
            if !self.blobs().has(&digest) {
                return Err(Error::BlobNotFound(digest));
            }
        }
        let config_descriptor = self.blobs().put_config(config)?;
        let mut manifest = new_manifest(config_descriptor, layers.to_vec());
        manifest.set_annotations(annotations.filter(|a| !a.is_empty()));
        let descriptor = self.blobs().put_manifest(&manifest)?;
        Ok(Image {
            descriptor,
            manifest,
            config: config.clone(),
        })
    }
}
