//! The reference graph: what a manifest or image index points to.

use oci_spec::image::{Descriptor, ImageIndex, ImageManifest, MediaType};

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::gc::Maintenance;
use crate::index::{is_index, is_manifest};
use crate::layout::Store;

/// A parsed manifest-like blob.
pub(crate) enum Node {
    /// An image (or artifact) manifest.
    Manifest(Box<ImageManifest>),
    /// An image index.
    Index(Box<ImageIndex>),
    /// A blob that points to nothing (config, layer, unknown type).
    Leaf,
}

impl Node {
    /// The descriptors this node references (not its `subject`).
    pub(crate) fn children(&self) -> Vec<Descriptor> {
        match self {
            Node::Manifest(m) => std::iter::once(m.config().clone())
                .chain(m.layers().iter().cloned())
                .collect(),
            Node::Index(i) => i.manifests().clone(),
            Node::Leaf => Vec::new(),
        }
    }

    /// The `subject` digest, for referrers.
    pub(crate) fn subject(&self) -> Option<Digest> {
        let subject = match self {
            Node::Manifest(m) => m.subject().as_ref(),
            Node::Index(i) => i.subject().as_ref(),
            Node::Leaf => None,
        }?;
        Digest::from_oci(subject.digest()).ok()
    }
}

/// Whether a media type names a manifest or index, whose content must be parsed to walk on.
pub(crate) fn is_node(media_type: &MediaType) -> bool {
    is_manifest(media_type) || is_index(media_type)
}

impl Store {
    /// Read (verifying its digest) and parse the blob a descriptor points to.
    pub(crate) fn read_node(&self, descriptor: &Descriptor) -> Result<Node> {
        let media_type = descriptor.media_type();
        if !is_node(media_type) {
            return Ok(Node::Leaf);
        }
        let digest = Digest::from_oci(descriptor.digest())?;
        let bytes = self.blobs().read(&digest)?;
        let json = |source| Error::Json {
            what: format!("{media_type} {digest}"),
            source,
        };
        if is_index(media_type) {
            Ok(Node::Index(Box::new(
                serde_json::from_slice(&bytes).map_err(json)?,
            )))
        } else {
            Ok(Node::Manifest(Box::new(
                serde_json::from_slice(&bytes).map_err(json)?,
            )))
        }
    }
}

/// Whether a config media type is an image configuration (OCI or Docker), not an artifact's.
fn is_image_config(media_type: &MediaType) -> bool {
    matches!(media_type, MediaType::ImageConfig)
        || media_type.to_string() == "application/vnd.docker.container.image.v1+json"
}

impl Maintenance<'_> {
    /// The layer chain (diff_ids, bottom first) of every image manifest reachable from
    /// `index.json`, through image indexes; artifacts (attestations) have none. Blobs missing from
    /// the store are passed over (fsck reports them). Caches derived from layers use this to know
    /// which of their entries an image still needs.
    pub fn layer_chains(&self) -> Result<Vec<Vec<Digest>>> {
        let mut chains = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut stack: Vec<Descriptor> = self.store.refs().index()?.manifests().clone();
        while let Some(descriptor) = stack.pop() {
            let digest = Digest::from_oci(descriptor.digest())?;
            if !seen.insert(digest.clone()) || !self.store.blobs().has(&digest) {
                continue;
            }
            match self.store.read_node(&descriptor)? {
                Node::Index(index) => stack.extend(index.manifests().iter().cloned()),
                Node::Manifest(manifest) => {
                    let config = manifest.config();
                    let config_digest = Digest::from_oci(config.digest())?;
                    if !is_image_config(config.media_type())
                        || !self.store.blobs().has(&config_digest)
                    {
                        continue;
                    }
                    let bytes = self.store.blobs().read_descriptor(config)?;
                    let parsed: oci_spec::image::ImageConfiguration =
                        serde_json::from_slice(&bytes).map_err(|source| Error::Json {
                            what: format!("config {config_digest}"),
                            source,
                        })?;
                    let chain = parsed
                        .rootfs()
                        .diff_ids()
                        .iter()
                        .map(|d| d.parse())
                        .collect::<Result<Vec<Digest>>>()?;
                    chains.push(chain);
                }
                Node::Leaf => {}
            }
        }
        Ok(chains)
    }
}
