//! Archives of one stored image, for `strata export`: `docker save`'s layout (what `podman load`,
//! `docker load` and container-structure-test's tar driver read) and an OCI layout in a tar.
//!
//! Both are written to a temp file beside the destination, fsynced and renamed. A docker archive
//! holds uncompressed layers, as `docker save` writes them; each is checked against the config's
//! `diff_id` while it is decompressed.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::{Reference, Store};
use sha2::{Digest as _, Sha256};

/// Which archive to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveFormat {
    /// A tar of an OCI image layout holding only this image (`oci-archive:`).
    OciArchive,
    /// `docker save`'s layout: `manifest.json`, the config, uncompressed layer tars
    /// (`docker-archive:`).
    DockerArchive,
}

impl FromStr for ArchiveFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "oci-archive" => Ok(ArchiveFormat::OciArchive),
            "docker-archive" => Ok(ArchiveFormat::DockerArchive),
            other => Err(format!(
                "unknown archive format {other:?} (expected oci-archive or docker-archive)"
            )),
        }
    }
}

/// Why an image could not be exported.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// The image or one of its blobs could not be read from the store.
    #[error("image {image}: {source}")]
    Store {
        /// The image reference.
        image: String,
        /// The store's error.
        source: crate::Error,
    },
    /// The image's config or a layer is malformed.
    #[error("image {image}: {message}")]
    Image {
        /// The image reference.
        image: String,
        /// What is wrong.
        message: String,
    },
    /// Writing the archive failed.
    #[error("{path}: {source}")]
    Write {
        /// The file being written.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

impl ExportError {
    fn store(image: &str) -> impl FnOnce(crate::Error) -> ExportError + '_ {
        move |source| ExportError::Store {
            image: image.to_string(),
            source,
        }
    }
}

/// What was written.
#[derive(Debug, Clone)]
pub struct ExportReport {
    /// The archive.
    pub path: PathBuf,
    /// The exported manifest's digest.
    pub digest: String,
    /// The name recorded in the archive (`RepoTags` / `ref.name`), if the reference had a tag.
    pub tag: Option<String>,
    /// The archive's size in bytes.
    pub size: u64,
}

/// Write image `reference` as a `format` archive at `dest`.
pub fn export(
    store: &Store,
    reference: &str,
    format: ArchiveFormat,
    dest: &Path,
) -> Result<ExportReport, ExportError> {
    let image = store
        .image(reference)
        .map_err(ExportError::store(reference))?;
    let tag = Reference::parse(reference)
        .ok()
        .filter(|r| r.digest().is_none())
        .map(|r| r.to_string());
    let dir = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let write_err = |source: io::Error| ExportError::Write {
        path: dest.to_path_buf(),
        source,
    };
    let tmp = tempfile::Builder::new()
        .prefix(".strata-export-")
        .tempfile_in(&dir)
        .map_err(write_err)?;
    let mut builder = tar::Builder::new(io::BufWriter::new(tmp));
    match format {
        ArchiveFormat::DockerArchive => {
            docker(store, reference, &image, tag.as_deref(), &mut builder, &dir)?
        }
        ArchiveFormat::OciArchive => oci(store, reference, &image, tag.as_deref(), &mut builder)?,
    }
    let tmp = builder
        .into_inner()
        .map_err(write_err)?
        .into_inner()
        .map_err(|e| write_err(e.into_error()))?;
    // tempfile creates 0600; an archive is an ordinary file.
    tmp.as_file()
        .set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))
        .map_err(write_err)?;
    tmp.as_file().sync_all().map_err(write_err)?;
    let size = tmp.as_file().metadata().map_err(write_err)?.len();
    tmp.persist(dest).map_err(|e| write_err(e.error))?;
    if let Ok(d) = File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(ExportReport {
        path: dest.to_path_buf(),
        digest: image.digest().to_string(),
        tag,
        size,
    })
}

type Tar = tar::Builder<io::BufWriter<tempfile::NamedTempFile>>;

fn header(size: u64, dir: bool) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(if dir {
        tar::EntryType::Directory
    } else {
        tar::EntryType::Regular
    });
    h.set_mode(if dir { 0o755 } else { 0o644 });
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_size(size);
    h
}

fn add_bytes(tar: &mut Tar, path: &str, bytes: &[u8], dest: &Path) -> Result<(), ExportError> {
    let mut h = header(bytes.len() as u64, false);
    tar.append_data(&mut h, path, bytes)
        .map_err(|source| ExportError::Write {
            path: dest.to_path_buf(),
            source,
        })
}

fn add_dir(tar: &mut Tar, path: &str) -> Result<(), ExportError> {
    let mut h = header(0, true);
    tar.append_data(&mut h, path, io::empty())
        .map_err(|source| ExportError::Write {
            path: PathBuf::from(path),
            source,
        })
}

fn docker(
    store: &Store,
    reference: &str,
    image: &crate::Image,
    tag: Option<&str>,
    tar: &mut Tar,
    scratch: &Path,
) -> Result<(), ExportError> {
    let diff_ids = image.diff_ids().map_err(ExportError::store(reference))?;
    if diff_ids.len() != image.layers().len() {
        return Err(ExportError::Image {
            image: reference.to_string(),
            message: format!(
                "config lists {} diff_ids for {} layers",
                diff_ids.len(),
                image.layers().len()
            ),
        });
    }
    let config_digest = crate::Digest::from_oci(image.config_descriptor().digest())
        .map_err(ExportError::store(reference))?;
    let config_bytes = store
        .blobs()
        .read_descriptor(image.config_descriptor())
        .map_err(ExportError::store(reference))?;
    let config_name = format!("{}.json", config_digest.hex());
    let mut layer_names = Vec::new();
    for (layer, diff_id) in image.layers().iter().zip(&diff_ids) {
        let name = format!("{}/layer.tar", diff_id.hex());
        if layer_names.contains(&name) {
            layer_names.push(name);
            continue;
        }
        // Decompress to a temp file first: a tar entry's size goes in its header.
        let mut plain = tempfile::tempfile_in(scratch).map_err(|source| ExportError::Write {
            path: scratch.to_path_buf(),
            source,
        })?;
        let digest =
            crate::Digest::from_oci(layer.digest()).map_err(ExportError::store(reference))?;
        let blob = store
            .blobs()
            .open(&digest)
            .map_err(ExportError::store(reference))?;
        let read_err = |e: io::Error| ExportError::Image {
            image: reference.to_string(),
            message: format!("layer {digest}: {e}"),
        };
        let mut decoder = crate::compress::Decoder::detect(blob).map_err(read_err)?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 256 * 1024];
        let mut size = 0u64;
        loop {
            let n = decoder.read(&mut buf).map_err(read_err)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            plain
                .write_all(&buf[..n])
                .map_err(|source| ExportError::Write {
                    path: scratch.to_path_buf(),
                    source,
                })?;
            size += n as u64;
        }
        let actual = format!("sha256:{}", hex::encode(hasher.finalize()));
        if actual != diff_id.to_string() {
            return Err(ExportError::Image {
                image: reference.to_string(),
                message: format!(
                    "layer {digest} uncompresses to {actual}, but the config says {diff_id}"
                ),
            });
        }
        plain
            .seek(SeekFrom::Start(0))
            .map_err(|source| ExportError::Write {
                path: scratch.to_path_buf(),
                source,
            })?;
        add_dir(tar, &format!("{}/", diff_id.hex()))?;
        let mut h = header(size, false);
        tar.append_data(&mut h, &name, plain)
            .map_err(|source| ExportError::Write {
                path: PathBuf::from(&name),
                source,
            })?;
        layer_names.push(name);
    }
    add_bytes(tar, &config_name, &config_bytes, Path::new(&config_name))?;
    let manifest = serde_json::json!([{
        "Config": config_name,
        "RepoTags": tag.map(|t| vec![t.to_string()]).unwrap_or_default(),
        "Layers": layer_names,
    }]);
    add_bytes(
        tar,
        "manifest.json",
        manifest.to_string().as_bytes(),
        Path::new("manifest.json"),
    )?;
    if let (Some(tag), Some(last)) = (tag, diff_ids.last())
        && let Ok(parsed) = Reference::parse(tag)
        && let Some(t) = parsed.tag()
    {
        let repositories = serde_json::json!({ parsed.name(): { t: last.hex() } });
        add_bytes(
            tar,
            "repositories",
            repositories.to_string().as_bytes(),
            Path::new("repositories"),
        )?;
    }
    Ok(())
}

fn oci(
    store: &Store,
    reference: &str,
    image: &crate::Image,
    tag: Option<&str>,
    tar: &mut Tar,
) -> Result<(), ExportError> {
    add_bytes(
        tar,
        "oci-layout",
        crate::layout::OCI_LAYOUT.as_bytes(),
        Path::new("oci-layout"),
    )?;
    let mut descriptor = image.descriptor().clone();
    if let Some(tag) = tag {
        descriptor.set_annotations(Some(
            [(
                crate::annotations::ANNOTATION_REF_NAME.to_string(),
                tag.to_string(),
            )]
            .into(),
        ));
    }
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [descriptor],
    });
    add_bytes(
        tar,
        "index.json",
        index.to_string().as_bytes(),
        Path::new("index.json"),
    )?;
    add_dir(tar, "blobs/")?;
    add_dir(tar, "blobs/sha256/")?;
    let mut blobs = vec![
        image.descriptor().clone(),
        image.config_descriptor().clone(),
    ];
    blobs.extend(image.layers().iter().cloned());
    let mut seen = Vec::new();
    for d in blobs {
        let digest = crate::Digest::from_oci(d.digest()).map_err(ExportError::store(reference))?;
        if seen.contains(&digest) {
            continue;
        }
        let size = store
            .blobs()
            .size(&digest)
            .map_err(ExportError::store(reference))?;
        let reader = store
            .blobs()
            .open(&digest)
            .map_err(ExportError::store(reference))?;
        let name = format!("blobs/{}/{}", digest.algorithm(), digest.hex());
        let mut h = header(size, false);
        // The verifying reader fails the copy if the blob does not match its digest.
        tar.append_data(&mut h, &name, reader)
            .map_err(|source| ExportError::Write {
                path: PathBuf::from(&name),
                source,
            })?;
        seen.push(digest);
    }
    Ok(())
}
