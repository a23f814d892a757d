//! The images of a store, read once: manifests, configs (as [`ImageConfig`]) and
//! tags, plus the untagged bases tagged images were built on.

use std::collections::{BTreeMap, HashMap};

use oci_spec::image::{Descriptor, ImageManifest};
use strata_oci::annotations::{
    ANNOTATION_BASE_IMAGE_DIGEST, ANNOTATION_BASE_IMAGE_NAME, ANNOTATION_BUILD_KEY,
    ANNOTATION_CHAIN_IMAGE, ANNOTATION_OWNER,
};
use strata_oci::image_config::ImageConfig;
use strata_oci::index::is_index;
use strata_oci::{Digest, Reference, Store};

use crate::error::{InspectError, Result};

/// One stored image: its manifest, config and the tags pointing to it.
#[derive(Debug, Clone)]
pub struct StoredImage {
    /// The manifest digest: the image's identity.
    pub digest: Digest,
    /// The manifest descriptor (without `index.json` annotations).
    pub descriptor: Descriptor,
    /// The manifest.
    pub manifest: ImageManifest,
    /// The config, read as the builder writes it.
    pub config: ImageConfig,
    /// The config's `rootfs.diff_ids`, base first.
    pub diff_ids: Vec<Digest>,
    /// Full references tagging it (`localhost/acme/corebuild:latest`), in index order.
    pub tags: Vec<String>,
}

impl StoredImage {
    /// A manifest annotation.
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.manifest
            .annotations()
            .as_ref()
            .and_then(|a| a.get(key))
            .map(String::as_str)
    }

    /// Every manifest annotation, sorted.
    pub fn annotations(&self) -> BTreeMap<String, String> {
        self.manifest
            .annotations()
            .as_ref()
            .map(|a| a.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default()
    }

    /// The chain image that built it (`acme/corebuild`), from `dev.strata.chain.image`.
    pub fn chain_image(&self) -> Option<&str> {
        self.annotation(ANNOTATION_CHAIN_IMAGE)
    }

    /// The owning team, from `dev.strata.chain.owner`.
    pub fn owner(&self) -> Option<&str> {
        self.annotation(ANNOTATION_OWNER)
    }

    /// The build key, from `dev.strata.build.key`.
    pub fn build_key(&self) -> Option<&str> {
        self.annotation(ANNOTATION_BUILD_KEY)
    }

    /// The base image's name (`org.opencontainers.image.base.name`).
    pub fn base_name(&self) -> Option<&str> {
        self.annotation(ANNOTATION_BASE_IMAGE_NAME)
    }

    /// The base image's manifest digest (`org.opencontainers.image.base.digest`), when valid.
    pub fn base_digest(&self) -> Option<Digest> {
        self.annotation(ANNOTATION_BASE_IMAGE_DIGEST)?.parse().ok()
    }

    /// The layer descriptors, base first.
    pub fn layers(&self) -> &[Descriptor] {
        self.manifest.layers()
    }

    /// Manifest + config + layers, in bytes.
    pub fn size(&self) -> u64 {
        self.descriptor.size()
            + self.manifest.config().size()
            + self.layers().iter().map(Descriptor::size).sum::<u64>()
    }

    /// A name for display: its first tag, else `@sha256:<short>`.
    pub fn name(&self) -> String {
        self.tags
            .first()
            .cloned()
            .unwrap_or_else(|| format!("@{}:{}", self.digest.algorithm(), self.digest.short()))
    }

    /// The `created_by` of each layer (history entries that are not `empty_layer`, in order);
    /// `None` where the history is shorter than the layer list.
    pub fn layer_created_by(&self) -> Vec<Option<String>> {
        let mut out: Vec<Option<String>> = self
            .config
            .history
            .iter()
            .filter(|h| !h.empty_layer)
            .map(|h| h.created_by.clone())
            .take(self.diff_ids.len())
            .collect();
        out.resize(self.diff_ids.len(), None);
        out
    }
}

/// Every tagged image of a store, and the bases they name that the store holds.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    images: Vec<StoredImage>,
    by_digest: HashMap<Digest, usize>,
}

impl Catalog {
    /// Read the store's tags, their manifests and configs, then (repeatedly) the untagged bases
    /// named by `org.opencontainers.image.base.digest` that are in the store. A multi-platform
    /// index contributes the manifest `Store::image_from_descriptor` picks for this machine.
    pub fn load(store: &Store) -> Result<Catalog> {
        let mut catalog = Catalog::default();
        for (name, descriptor, digest) in tagged_manifests(store)? {
            let i = match catalog.by_digest.get(&digest) {
                Some(&i) => i,
                None => catalog.insert(read_image(store, &descriptor, &name)?),
            };
            catalog.images[i].tags.push(name);
        }
        let mut next = 0;
        while next < catalog.images.len() {
            let base = catalog.images[next].base_digest();
            next += 1;
            let Some(base) = base else { continue };
            if catalog.by_digest.contains_key(&base) || !store.blobs().has(&base) {
                continue;
            }
            let image = read_image(store, &untagged(store, &base)?, &base.to_string())?;
            catalog.insert(image);
        }
        Ok(catalog)
    }

    /// The catalog of the image `digest` and the bases under it (with their tags, as
    /// [`Catalog::load`] gives them), and nothing else: what one image's [`crate::Lineage`]
    /// needs, read without reading every image of the store. Empty when `digest` is not in the
    /// store.
    pub fn load_lineage(store: &Store, digest: &Digest) -> Result<Catalog> {
        let tagged = tagged_manifests(store)?;
        let mut catalog = Catalog::default();
        let mut next = Some(digest.clone());
        while let Some(digest) = next.take() {
            if catalog.by_digest.contains_key(&digest) || !store.blobs().has(&digest) {
                break;
            }
            let tags: Vec<&(String, Descriptor, Digest)> =
                tagged.iter().filter(|(_, _, d)| *d == digest).collect();
            let image = match tags.first() {
                Some((name, descriptor, _)) => read_image(store, descriptor, name)?,
                None => read_image(store, &untagged(store, &digest)?, &digest.to_string())?,
            };
            next = image.base_digest();
            let i = catalog.insert(image);
            catalog.images[i].tags = tags.iter().map(|(name, _, _)| name.clone()).collect();
        }
        Ok(catalog)
    }

    fn insert(&mut self, image: StoredImage) -> usize {
        self.by_digest
            .insert(image.digest.clone(), self.images.len());
        self.images.push(image);
        self.images.len() - 1
    }

    /// Every image: tagged ones in index order, then untagged bases.
    pub fn images(&self) -> &[StoredImage] {
        &self.images
    }

    /// The tagged images.
    pub fn tagged(&self) -> impl Iterator<Item = &StoredImage> {
        self.images.iter().filter(|i| !i.tags.is_empty())
    }

    /// The image with manifest digest `digest`.
    pub fn get(&self, digest: &Digest) -> Option<&StoredImage> {
        self.by_digest.get(digest).map(|&i| &self.images[i])
    }

    /// Find an image by reference: a tag (full or short: `acme/corebuild`, `localhost/acme/corebuild:3`),
    /// `sha256:…`, `name@sha256:…`, or `NAME@N`: build number N of the chain image whose repository is
    /// or ends in `/NAME` (`corebuild@3` means the tag `…/corebuild:3`). A bare `NAME[:TAG]` that
    /// is not a tag of the store's default registry names such a repository too (`corebuild` is
    /// `localhost/acme/corebuild:latest` when only one repository ends in `/corebuild`).
    pub fn find(&self, store: &Store, reference: &str) -> Result<&StoredImage> {
        self.find_tagged(store, reference).map(|(image, _)| image)
    }

    /// [`Catalog::find`], with the full tag the reference was matched to when it named a chain
    /// image by its short name or build number (`corebuild@3` → `localhost/acme/corebuild:3`);
    /// `None` when the store resolved the reference as written.
    pub fn find_tagged(
        &self,
        store: &Store,
        reference: &str,
    ) -> Result<(&StoredImage, Option<&str>)> {
        if let Some((name, number)) = reference.rsplit_once('@')
            && !number.is_empty()
            && number.bytes().all(|b| b.is_ascii_digit())
        {
            return self
                .find_build(reference, name, number)
                .map(|(tag, image)| (image, Some(tag)));
        }
        let descriptor = match store.refs().resolve(reference) {
            Ok(descriptor) => descriptor,
            // A chain image's bare name (`corebuild`, `corebuild:2`) names the repository ending
            // in `/corebuild`.
            Err(strata_oci::Error::ImageNotFound(_)) if !reference.contains('/') => {
                let (name, tag) = reference.split_once(':').unwrap_or((reference, "latest"));
                return self
                    .find_build(reference, name, tag)
                    .map(|(tag, image)| (image, Some(tag)));
            }
            Err(strata_oci::Error::ImageNotFound(_)) => return Err(self.not_found(reference)),
            Err(other) => return Err(other.into()),
        };
        let descriptor = if is_index(descriptor.media_type()) {
            store
                .image_from_descriptor(&descriptor)?
                .descriptor()
                .clone()
        } else {
            descriptor
        };
        let digest = Digest::from_oci(descriptor.digest())?;
        let image = self.get(&digest).ok_or_else(|| self.not_found(reference))?;
        Ok((image, None))
    }

    /// The image tagged `tag` in the one repository named or ending in `/name`, with that tag.
    fn find_build(&self, reference: &str, name: &str, tag: &str) -> Result<(&str, &StoredImage)> {
        let number = tag;
        let mut found: Vec<(&str, &StoredImage)> = Vec::new();
        for image in &self.images {
            for tag in &image.tags {
                let Ok(parsed) = Reference::parse(tag) else {
                    continue;
                };
                let repo = parsed.repository();
                let full = format!("{}/{}", parsed.registry(), repo);
                let matches = repo == name
                    || full == name
                    || repo.ends_with(&format!("/{name}"))
                    || repo.rsplit('/').next() == Some(name);
                if matches && parsed.tag() == Some(number) {
                    found.push((tag.as_str(), image));
                }
            }
        }
        match found.as_slice() {
            [(tag, image)] => Ok((tag, image)),
            [] => {
                let builds: Vec<String> = self
                    .images
                    .iter()
                    .flat_map(|i| i.tags.iter())
                    .filter_map(|t| Reference::parse(t).ok())
                    .filter(|r| r.repository().rsplit('/').next() == Some(name))
                    .filter_map(|r| r.tag().map(str::to_string))
                    .filter(|t| t.bytes().all(|b| b.is_ascii_digit()))
                    .collect();
                if !number.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(self.not_found(reference));
                }
                Err(InspectError::NotFound {
                    reference: reference.to_string(),
                    hint: if builds.is_empty() {
                        format!(" (no build-number tags of {name})")
                    } else {
                        format!(" (builds of {name}: {})", builds.join(", "))
                    },
                })
            }
            many => {
                let first = many[0].1.digest.clone();
                if many.iter().all(|(_, i)| i.digest == first) {
                    return Ok(many[0]);
                }
                Err(InspectError::Ambiguous {
                    reference: reference.to_string(),
                    candidates: many.iter().map(|(t, _)| t.to_string()).collect(),
                })
            }
        }
    }

    fn not_found(&self, reference: &str) -> InspectError {
        let count = self.tagged().count();
        InspectError::NotFound {
            reference: reference.to_string(),
            hint: if count == 0 {
                " (the store holds no tagged images)".to_string()
            } else {
                " (list them with `strata images`)".to_string()
            },
        }
    }
}

/// Each tag of the store in index order with the digest of the image manifest it names (for a
/// multi-platform index, the manifest `Store::image_from_descriptor` picks for this machine): the
/// tags [`Catalog::load`] starts from, read without any manifest or config, for callers that need
/// only tags and digests (an image's display name is its first tag here, as in the catalog).
pub fn tagged_digests(store: &Store) -> Result<Vec<(String, Digest)>> {
    Ok(tagged_manifests(store)?
        .into_iter()
        .map(|(name, _, digest)| (name, digest))
        .collect())
}

/// Each tag of the store in index order: its name, the image manifest it names (for a
/// multi-platform index, the manifest `Store::image_from_descriptor` picks for this machine) and
/// that manifest's digest.
fn tagged_manifests(store: &Store) -> Result<Vec<(String, Descriptor, Digest)>> {
    let mut tagged = Vec::new();
    for tag in store.refs().list()? {
        let descriptor = if is_index(tag.descriptor.media_type()) {
            store
                .image_from_descriptor(&tag.descriptor)?
                .descriptor()
                .clone()
        } else {
            tag.descriptor.clone()
        };
        let digest = Digest::from_oci(descriptor.digest())?;
        tagged.push((tag.name, descriptor, digest));
    }
    Ok(tagged)
}

/// The descriptor of an untagged manifest in the store (a base named by a child's annotation).
/// Not through `Refs::resolve`: that reads the index for every base.
fn untagged(store: &Store, digest: &Digest) -> Result<Descriptor> {
    Ok(Descriptor::new(
        oci_spec::image::MediaType::ImageManifest,
        store.blobs().size(digest)?,
        digest.to_oci(),
    ))
}

/// Read one image's manifest and config; `name` is for error messages.
fn read_image(store: &Store, descriptor: &Descriptor, name: &str) -> Result<StoredImage> {
    let at = |source| InspectError::Image {
        image: name.to_string(),
        source,
    };
    let digest = Digest::from_oci(descriptor.digest()).map_err(at)?;
    let bytes = store.blobs().read_descriptor(descriptor).map_err(at)?;
    let manifest: ImageManifest =
        serde_json::from_slice(&bytes).map_err(|source| InspectError::Json {
            what: format!("manifest {digest} of {name}"),
            source,
        })?;
    let config_bytes = store
        .blobs()
        .read_descriptor(manifest.config())
        .map_err(at)?;
    let config: ImageConfig =
        serde_json::from_slice(&config_bytes).map_err(|source| InspectError::Json {
            what: format!("config {} of {name}", manifest.config().digest()),
            source,
        })?;
    let diff_ids = config
        .rootfs
        .diff_ids
        .iter()
        .map(|d| d.parse())
        .collect::<std::result::Result<Vec<Digest>, _>>()
        .map_err(at)?;
    if diff_ids.len() != manifest.layers().len() {
        return Err(InspectError::Invalid {
            image: name.to_string(),
            reason: format!(
                "its config lists {} diff_ids for {} layers",
                diff_ids.len(),
                manifest.layers().len()
            ),
        });
    }
    let mut descriptor = descriptor.clone();
    descriptor.set_annotations(None);
    Ok(StoredImage {
        digest,
        descriptor,
        manifest,
        config,
        diff_ids,
        tags: Vec::new(),
    })
}
