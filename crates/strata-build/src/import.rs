//! Import a root filesystem tarball as a one-layer image: how a chain's bought base enters the store.
//!
//! The tarball is extracted with the store's safe unpacker (nothing lands outside the temp root)
//! and re-written with the deterministic layer writer, so the same tarball always gives the same
//! image, whatever its own entry order, timestamps or compression.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use strata_oci::tar::LayerOptions;
use strata_oci::{Compression, Digest, MediaType, Store};

use crate::builder::BuildResult;
use crate::error::{BuildError, StepError};
use strata_oci::annotations::{ANNOTATION_CREATED, ANNOTATION_SOURCE_DIGEST};
use strata_oci::image_config::{History, ImageConfig};

/// How to import.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// References to tag the image with.
    pub tags: Vec<String>,
    /// Layer compression.
    pub compression: Compression,
    /// Timestamps are clamped to this.
    pub source_date_epoch: u64,
    /// Extra manifest annotations.
    pub annotations: BTreeMap<String, String>,
}

/// Import `tarball` (plain, gzip, bzip2, xz or zstd tar) as a one-layer image.
pub fn import_rootfs(
    store: &Store,
    tarball: &Path,
    options: &ImportOptions,
) -> Result<BuildResult, BuildError> {
    let step = |source: StepError| BuildError::Step {
        file: tarball.display().to_string(),
        line: 0,
        instruction: "import".to_string(),
        source: Box::new(source),
    };
    let _lease = store.lease()?;
    let kind = crate::add::archive_kind(tarball).ok_or_else(|| {
        step(StepError::Unsupported(
            "not a tar archive (plain, gzip, bzip2, xz or zstd)".to_string(),
        ))
    })?;
    let source_digest = crate::context::hash_file(tarball).map_err(|e| step(e.into()))?;
    let tmp_root = store.tmp_dir();
    let dir = tempfile::Builder::new()
        .prefix("import-")
        .tempdir_in(&tmp_root)
        .map_err(|source| {
            step(StepError::Io {
                path: tmp_root.clone(),
                source,
            })
        })?;
    crate::add::extract_archive(tarball, kind, dir.path()).map_err(step)?;
    let mut entries = strata_oci::tar::collect_tree(dir.path(), Path::new(""))?;
    entries.retain(|e| !e.path.as_os_str().is_empty() && e.path != Path::new("."));
    for e in &mut entries {
        e.meta.mtime = options.source_date_epoch;
    }
    let layer = crate::layer::write_entries(
        store,
        entries,
        LayerOptions {
            compression: options.compression,
            source_date_epoch: options.source_date_epoch,
        },
    )
    .map_err(step)?;
    let created =
        chrono::DateTime::from_timestamp(i64::try_from(options.source_date_epoch).unwrap_or(0), 0)
            .unwrap_or_default()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut config = ImageConfig::scratch();
    config.env_set("PATH", strata_dockerfile::DEFAULT_PATH);
    config.created = Some(created.clone());
    config.rootfs.diff_ids.push(layer.diff_id.clone());
    config.history.push(History {
        created: Some(created.clone()),
        created_by: Some(format!(
            "strata import {}",
            tarball.file_name().unwrap_or_default().to_string_lossy()
        )),
        comment: Some(format!("rootfs sha256:{source_digest}")),
        ..History::default()
    });
    let config_descriptor = store.blobs().put_json(&config, MediaType::ImageConfig)?;
    let mut manifest = strata_oci::image::new_manifest(config_descriptor, vec![layer.descriptor]);
    let mut annotations: HashMap<String, String> = options
        .annotations
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    annotations.insert(ANNOTATION_CREATED.to_string(), created);
    annotations.insert(
        ANNOTATION_SOURCE_DIGEST.to_string(),
        format!("sha256:{source_digest}"),
    );
    manifest.set_annotations(Some(annotations));
    let descriptor = store.blobs().put_manifest(&manifest)?;
    let digest = Digest::from_oci(descriptor.digest())?;
    let mut tags = Vec::new();
    for tag in &options.tags {
        tags.push(store.refs().tag(tag, &descriptor)?);
    }
    Ok(BuildResult {
        descriptor,
        digest,
        tags,
        cached_steps: 0,
        built_steps: 1,
        base: None,
    })
}
