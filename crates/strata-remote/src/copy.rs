//! Copy an image, with its children (index entries) and referrers, between the store, OCI layout
//! directories and registries.
//!
//! Locations ([`Location::parse`]): `oci:DIR:REF` (an OCI layout directory), `docker://HOST/NAME:TAG`
//! or `HOST[:PORT]/NAME[:TAG]` whose first component is a host (a registry), anything else a store
//! reference (`acme/app:1`). Every blob is checked against its digest on the way in (a store
//! commits only content that hashes right; content read from a registry goes through a verifying
//! reader). Blobs the target has are skipped (HEAD), and on one registry mounted across
//! repositories. Referrers (signatures, attestations) follow their subject; a registry without the
//! referrers API gets the `sha256-<hex>` tag scheme.

use std::collections::HashSet;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;

use oci_spec::image::{ImageIndex, MediaType};
use strata_oci::{Descriptor, Digest, Store, VerifyingReader};

use crate::client::{BlobPush, BlobSource, Client, RemoteRef};
use crate::error::{RegistryError, Result};
use crate::media::{self, ParsedManifest};

/// Where an image is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// A reference in an OCI layout directory (strata's store is one).
    Layout {
        /// The directory.
        dir: PathBuf,
        /// A tag (short forms normalised as the store does) or digest.
        reference: String,
    },
    /// A registry.
    Remote(RemoteRef),
}

impl Location {
    /// Parse `oci:DIR[:REF]`, `docker://REF`, `HOST/NAME[:TAG]` (the first component a registry
    /// host by the reference grammar's rule, other than `localhost`), or a reference in `store`.
    pub fn parse(text: &str, store: &std::path::Path) -> Result<Location> {
        if let Some(rest) = text.strip_prefix("oci:") {
            let (dir, reference) = match rest.rsplit_once(':') {
                Some((dir, r)) if !r.contains('/') && !dir.is_empty() => (dir, r.to_string()),
                _ => (rest, "latest".to_string()),
            };
            return Ok(Location::Layout {
                dir: PathBuf::from(dir),
                reference,
            });
        }
        if text.starts_with("docker://") {
            return Ok(Location::Remote(RemoteRef::parse(text)?));
        }
        // A name whose first component is a registry host is remote, except strata's own
        // `localhost/...`, which is the store's.
        let (domain, _) = strata_reference::split_domain(strata_reference::split(text).name);
        if domain.is_some_and(|d| d != strata_oci::reference::DEFAULT_REGISTRY) {
            return Ok(Location::Remote(RemoteRef::parse(text)?));
        }
        Ok(Location::Layout {
            dir: store.to_path_buf(),
            reference: text.to_string(),
        })
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Layout { dir, reference } => write!(f, "oci:{}:{reference}", dir.display()),
            Location::Remote(r) => write!(f, "{r}"),
        }
    }
}

/// What a copy did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct CopyReport {
    /// The root manifest's digest.
    pub digest: String,
    /// Manifests written (root, children, referrers).
    pub manifests: usize,
    /// Blobs transferred.
    pub blobs_copied: usize,
    /// Blobs the target had already.
    pub blobs_skipped: usize,
    /// Blobs mounted from another repository of the target registry.
    pub blobs_mounted: usize,
    /// Bytes transferred.
    pub bytes: u64,
    /// Referrers copied.
    pub referrers: usize,
}

/// Copy the image at `src` to `dst`, with its referrers. Returns what was done.
///
/// Between two OCI layouts no registry is needed (the client is used only for remote ends):
///
/// ```
/// use strata_oci::{ImageConfiguration, Store};
/// use strata_remote::{Client, ClientOptions, Location, copy};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let source = Store::init(dir.path().join("source"))?;
/// let image = source.write_image(&ImageConfiguration::default(), &[], None)?;
/// source.refs().tag("acme/hello:1", image.descriptor())?;
///
/// let client = Client::new(ClientOptions { docker_config: false, ..ClientOptions::default() })?;
/// let src = Location::Layout {
///     dir: source.root().to_path_buf(),
///     reference: "acme/hello:1".into(),
/// };
/// let target = dir.path().join("target");
/// let dst = Location::Layout { dir: target.clone(), reference: "acme/hello:copy".into() };
/// let report = copy(&client, &src, &dst)?;
/// assert_eq!(report.digest, image.digest().to_string());
/// assert_eq!((report.manifests, report.blobs_copied), (1, 1));
///
/// // The target layout (created by the copy) holds the same image under the new tag.
/// let copied = Store::open(&target)?.image("acme/hello:copy")?;
/// assert_eq!(copied.digest(), image.digest());
/// # Ok(())
/// # }
/// ```
pub fn copy(client: &Client, src: &Location, dst: &Location) -> Result<CopyReport> {
    let source = Endpoint::open(src, false)?;
    let target = Endpoint::open(dst, true)?;
    let root = source.root(client)?;
    let mut copier = Copier {
        client,
        source: &source,
        target: &target,
        report: CopyReport {
            digest: root.digest.to_string(),
            ..CopyReport::default()
        },
        done: HashSet::new(),
        blobs: HashSet::new(),
    };
    // The root goes up under the target's tag (by digest when it has none), then its referrers.
    let tag = match &target {
        Endpoint::Store { reference, .. } => Some(reference.clone()),
        Endpoint::Remote(r) => r.tag.clone(),
    }
    .filter(|t| !t.starts_with("sha256:") && !t.starts_with("sha512:") && !t.contains('@'));
    copier.manifest(&root, tag.as_deref())?;
    copier.referrers_of(&root.digest)?;
    Ok(copier.report)
}

enum Endpoint {
    Store { store: Store, reference: String },
    Remote(RemoteRef),
}

struct Fetched {
    bytes: Vec<u8>,
    media_type: String,
    digest: Digest,
}

impl Endpoint {
    fn open(location: &Location, write: bool) -> Result<Endpoint> {
        Ok(match location {
            Location::Layout { dir, reference } => Endpoint::Store {
                store: if write {
                    Store::init(dir)?
                } else {
                    Store::open(dir)?
                },
                reference: reference.clone(),
            },
            Location::Remote(r) => Endpoint::Remote(r.clone()),
        })
    }

    fn root(&self, client: &Client) -> Result<Fetched> {
        match self {
            Endpoint::Store { store, reference } => {
                let descriptor = store.refs().resolve(reference)?;
                let digest = Digest::from_oci(descriptor.digest())?;
                let bytes = store.blobs().read(&digest)?;
                let media_type = media::media_type_of(&bytes)
                    .unwrap_or_else(|| descriptor.media_type().to_string());
                Ok(Fetched {
                    bytes,
                    media_type,
                    digest,
                })
            }
            Endpoint::Remote(r) => {
                let m = client.get_manifest(r)?;
                Ok(Fetched {
                    bytes: m.bytes,
                    media_type: m.media_type,
                    digest: m.digest,
                })
            }
        }
    }

    fn manifest(&self, client: &Client, digest: &Digest) -> Result<Fetched> {
        match self {
            Endpoint::Store { store, .. } => {
                let bytes = store.blobs().read(digest)?;
                let media_type =
                    media::media_type_of(&bytes).unwrap_or_else(|| media::OCI_MANIFEST.into());
                Ok(Fetched {
                    bytes,
                    media_type,
                    digest: digest.clone(),
                })
            }
            Endpoint::Remote(r) => {
                let m = client.get_manifest(&r.with_reference(&digest.to_string()))?;
                Ok(Fetched {
                    bytes: m.bytes,
                    media_type: m.media_type,
                    digest: m.digest,
                })
            }
        }
    }

    fn referrers(&self, client: &Client, digest: &Digest) -> Result<Vec<Descriptor>> {
        match self {
            Endpoint::Store { store, .. } => Ok(store.referrers(digest, None)?),
            Endpoint::Remote(r) => client.referrers_or_tag(r, digest),
        }
    }
}

struct StoreBlob<'a> {
    store: &'a Store,
    digest: &'a Digest,
}

impl BlobSource for StoreBlob<'_> {
    fn open_at(&self, offset: u64) -> Result<Box<dyn Read + '_>> {
        let path = self.store.blobs().path(self.digest);
        let mut file = std::fs::File::open(&path).map_err(|source| RegistryError::Io {
            path: path.clone(),
            source,
        })?;
        file.seek(SeekFrom::Start(offset))
            .map_err(|source| RegistryError::Io { path, source })?;
        Ok(Box::new(file))
    }
}

struct RemoteBlob<'a> {
    client: &'a Client,
    r: &'a RemoteRef,
    digest: &'a Digest,
}

impl BlobSource for RemoteBlob<'_> {
    fn open_at(&self, offset: u64) -> Result<Box<dyn Read + '_>> {
        Ok(Box::new(self.client.get_blob(
            self.r,
            self.digest,
            offset,
        )?))
    }
}

struct Copier<'a> {
    client: &'a Client,
    source: &'a Endpoint,
    target: &'a Endpoint,
    report: CopyReport,
    /// Manifests copied.
    done: HashSet<Digest>,
    /// Blobs copied or found present.
    blobs: HashSet<Digest>,
}

impl Copier<'_> {
    /// Copy a manifest's content, then the manifest, under `tag` or by digest.
    fn manifest(&mut self, m: &Fetched, tag: Option<&str>) -> Result<()> {
        if !self.done.insert(m.digest.clone()) {
            return Ok(());
        }
        let parsed = ParsedManifest::parse(&m.bytes, Some(&m.media_type)).map_err(|source| {
            RegistryError::Manifest {
                digest: m.digest.clone(),
                source,
            }
        })?;
        if media::is_index_type(&parsed.media_type) {
            for (child, _) in &parsed.children {
                let fetched = self.source.manifest(self.client, child)?;
                self.manifest(&fetched, None)?;
            }
        } else {
            let sizes = descriptor_sizes(&m.bytes);
            for digest in &parsed.references {
                let size = sizes
                    .iter()
                    .find(|(d, _)| d == digest)
                    .map(|(_, s)| *s)
                    .unwrap_or(0);
                self.blob(digest, size)?;
            }
        }
        self.put_manifest(m, tag, parsed.subject.is_some())?;
        Ok(())
    }

    fn blob(&mut self, digest: &Digest, size: u64) -> Result<()> {
        if !self.blobs.insert(digest.clone()) {
            return Ok(());
        }
        match (self.source, self.target) {
            (Endpoint::Store { store: from, .. }, Endpoint::Store { store: to, .. }) => {
                if to.blobs().has(digest) {
                    self.report.blobs_skipped += 1;
                    return Ok(());
                }
                let mut reader = from.blobs().open(digest)?;
                let n = write_blob(to, digest, &mut reader)?;
                self.report.blobs_copied += 1;
                self.report.bytes += n;
            }
            (Endpoint::Remote(r), Endpoint::Store { store: to, .. }) => {
                if to.blobs().has(digest) {
                    self.report.blobs_skipped += 1;
                    return Ok(());
                }
                let body = self.client.get_blob(r, digest, 0)?;
                let mut reader = VerifyingReader::new(body, digest.clone(), Some(size));
                let n = write_blob(to, digest, &mut reader)?;
                self.report.blobs_copied += 1;
                self.report.bytes += n;
            }
            (Endpoint::Store { store: from, .. }, Endpoint::Remote(to)) => {
                let size = from.blobs().size(digest)?;
                let source = StoreBlob {
                    store: from,
                    digest,
                };
                let outcome = self.client.push_blob(to, digest, size, &source, None)?;
                self.count(outcome, size);
            }
            (Endpoint::Remote(from), Endpoint::Remote(to)) => {
                let mount = (from.registry == to.registry).then_some(from.repository.as_str());
                let source = RemoteBlob {
                    client: self.client,
                    r: from,
                    digest,
                };
                let outcome = self.client.push_blob(to, digest, size, &source, mount)?;
                self.count(outcome, size);
            }
        }
        Ok(())
    }

    fn count(&mut self, outcome: BlobPush, size: u64) {
        match outcome {
            BlobPush::Present => self.report.blobs_skipped += 1,
            BlobPush::Mounted => self.report.blobs_mounted += 1,
            BlobPush::Uploaded => {
                self.report.blobs_copied += 1;
                self.report.bytes += size;
            }
        }
    }

    /// Write a manifest to the target, by digest (tag None) or under a tag.
    fn put_manifest(&mut self, m: &Fetched, tag: Option<&str>, has_subject: bool) -> Result<()> {
        match self.target {
            Endpoint::Store { store, .. } => {
                let info = store.blobs().put_as(&m.bytes, m.digest.algorithm())?;
                let mut descriptor = info.descriptor(MediaType::from(m.media_type.as_str()));
                if let Ok(parsed) = ParsedManifest::parse(&m.bytes, Some(&m.media_type))
                    && let Some(t) = parsed.artifact_type
                {
                    descriptor.set_artifact_type(Some(MediaType::from(t.as_str())));
                }
                match tag {
                    Some(tag) => {
                        store.refs().tag(tag, &descriptor)?;
                    }
                    None => store.refs().add_root(&descriptor)?,
                }
            }
            Endpoint::Remote(r) => {
                // A registry hashes a manifest pushed by tag with sha256: a sha512 one goes up by
                // its digest first, so the registry keeps that digest for the tag too.
                if tag.is_some() && m.digest.algorithm() != strata_oci::Algorithm::Sha256 {
                    let by_digest = r.with_reference(&m.digest.to_string());
                    self.client
                        .put_manifest(&by_digest, &m.bytes, &m.media_type)?;
                }
                let target = match tag {
                    Some(tag) => r.with_reference(tag),
                    None => r.with_reference(&m.digest.to_string()),
                };
                let (_, subject_processed) =
                    self.client.put_manifest(&target, &m.bytes, &m.media_type)?;
                if has_subject && !subject_processed {
                    self.referrers_tag(r, m)?;
                }
            }
        }
        self.report.manifests += 1;
        Ok(())
    }

    /// The referrers tag scheme: add `m` to the index tagged `<algorithm>-<subject hex>`.
    fn referrers_tag(&self, r: &RemoteRef, m: &Fetched) -> Result<()> {
        let parsed = ParsedManifest::parse(&m.bytes, Some(&m.media_type)).map_err(|source| {
            RegistryError::Manifest {
                digest: m.digest.clone(),
                source,
            }
        })?;
        let Some(subject) = parsed.subject else {
            return Ok(());
        };
        let tag = r.with_reference(&referrers_tag(&subject));
        let mut manifests: Vec<Descriptor> = match self.client.get_manifest(&tag) {
            Ok(existing) => serde_json::from_slice::<ImageIndex>(&existing.bytes)
                .map(|i| i.manifests().clone())
                .unwrap_or_default(),
            Err(e) if e.status() == Some(404) => Vec::new(),
            Err(e) => return Err(e),
        };
        if manifests
            .iter()
            .any(|d| d.digest().as_ref() == m.digest.to_string())
        {
            return Ok(());
        }
        let mut descriptor = Descriptor::new(
            MediaType::from(m.media_type.as_str()),
            m.bytes.len() as u64,
            m.digest.to_oci(),
        );
        if let Some(t) = parsed.artifact_type {
            descriptor.set_artifact_type(Some(MediaType::from(t.as_str())));
        }
        manifests.push(descriptor);
        let index = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": media::OCI_INDEX,
            "manifests": manifests,
        });
        let bytes =
            serde_json::to_vec(&index).map_err(|e| RegistryError::Invalid(e.to_string()))?;
        self.client.put_manifest(&tag, &bytes, media::OCI_INDEX)?;
        Ok(())
    }

    /// Copy the referrers of `subject` (and theirs, recursively).
    fn referrers_of(&mut self, subject: &Digest) -> Result<()> {
        for descriptor in self.source.referrers(self.client, subject)? {
            let digest = Digest::from_oci(descriptor.digest())?;
            if self.done.contains(&digest) {
                continue;
            }
            let fetched = self.source.manifest(self.client, &digest)?;
            self.manifest(&fetched, None)?;
            self.report.referrers += 1;
            self.referrers_of(&digest)?;
        }
        Ok(())
    }
}

/// The referrers tag of a subject (distribution-spec's tag schema): its algorithm, `-`, and its
/// encoded part truncated to 64 characters (`sha512-<first 64 hex>`).
pub(crate) fn referrers_tag(subject: &Digest) -> String {
    let hex = subject.hex();
    format!("{}-{}", subject.algorithm(), &hex[..hex.len().min(64)])
}

/// Stream a blob into the store; the writer commits only if it hashes to `digest`.
fn write_blob(store: &Store, digest: &Digest, reader: &mut dyn Read) -> Result<u64> {
    let mut writer = store.blobs().writer_for(digest.algorithm())?;
    let path = store.blobs().path(digest);
    let n = std::io::copy(reader, &mut writer).map_err(|source| {
        match source.downcast::<strata_oci::Error>() {
            Ok(inner) => RegistryError::Store(inner),
            Err(source) => RegistryError::Io {
                path: path.clone(),
                source,
            },
        }
    })?;
    writer
        .flush()
        .map_err(|source| RegistryError::Io { path, source })?;
    writer.commit(Some(digest))?;
    Ok(n)
}

/// The (digest, size) of every descriptor in a manifest's config, layers and blobs.
fn descriptor_sizes(bytes: &[u8]) -> Vec<(Digest, u64)> {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut push = |d: &serde_json::Value| {
        if let (Some(digest), Some(size)) = (
            d.get("digest")
                .and_then(|x| x.as_str())
                .and_then(|x| x.parse().ok()),
            d.get("size").and_then(|x| x.as_u64()),
        ) {
            out.push((digest, size));
        }
    };
    if let Some(c) = value.get("config") {
        push(c);
    }
    for key in ["layers", "blobs"] {
        for d in value
            .get(key)
            .and_then(|l| l.as_array())
            .into_iter()
            .flatten()
        {
            push(d);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn locations() {
        let store = Path::new("/s");
        assert_eq!(
            Location::parse("oci:/tmp/x:app", store).unwrap(),
            Location::Layout {
                dir: "/tmp/x".into(),
                reference: "app".into()
            }
        );
        assert_eq!(
            Location::parse("oci:/tmp/x", store).unwrap(),
            Location::Layout {
                dir: "/tmp/x".into(),
                reference: "latest".into()
            }
        );
        assert!(matches!(
            Location::parse("127.0.0.1:5000/acme/app:1", store).unwrap(),
            Location::Remote(r) if r.repository == "acme/app"
        ));
        assert!(matches!(
            Location::parse("docker://localhost/acme/app", store).unwrap(),
            Location::Remote(_)
        ));
        assert_eq!(
            Location::parse("localhost/acme/app:1", store).unwrap(),
            Location::Layout {
                dir: "/s".into(),
                reference: "localhost/acme/app:1".into()
            }
        );
        assert!(matches!(
            Location::parse("localhost:5000/acme/app", store).unwrap(),
            Location::Remote(r) if r.registry == "localhost:5000"
        ));
        assert_eq!(
            Location::parse("acme/app:1", store).unwrap(),
            Location::Layout {
                dir: "/s".into(),
                reference: "acme/app:1".into()
            }
        );
    }
}
