//! Layer snapshots: each layer unpacked once into a directory in overlayfs' lower-layer form, keyed by
//! its diff_id and shared by every build and every image that has the layer.
//!
//! A snapshot is unpacked into a temp directory with OCI whiteouts kept as files, converted to
//! overlayfs form by the sandbox (`.wh.<name>` → a 0/0 character device, `.wh..wh..opq` → the
//! opaque attribute), then renamed into place, so a crash or a concurrent build never sees half a
//! snapshot.

use std::fs;
use std::path::{Path, PathBuf};

use strata_oci::tar::{UnpackOptions, Whiteouts};
use strata_oci::{Descriptor, Store};

use crate::error::StepError;

/// Where snapshots live.
#[derive(Debug, Clone)]
pub struct Snapshots {
    dir: PathBuf,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StepError + '_ {
    move |source| StepError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The directory name of a layer's snapshot: 16 hex digits of its diff_id, short so that many lower
/// directories fit in one overlay mount option.
pub fn snapshot_name(diff_id: &str) -> &str {
    let hex = diff_id.trim_start_matches("sha256:");
    &hex[..hex.len().min(16)]
}

impl Snapshots {
    /// Snapshots under `dir` (created when missing).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The snapshot directory of a layer, unpacking it the first time (named by [`snapshot_name`]).
    pub fn get(
        &self,
        store: &Store,
        layer: &Descriptor,
        diff_id: &str,
    ) -> Result<PathBuf, StepError> {
        let path = self.dir.join(snapshot_name(diff_id));
        if path.is_dir() {
            return Ok(path);
        }
        fs::create_dir_all(&self.dir).map_err(io(&self.dir))?;
        let tmp = tempfile::Builder::new()
            .prefix(".unpack-")
            .tempdir_in(&self.dir)
            .map_err(io(&self.dir))?;
        let options = UnpackOptions {
            whiteouts: Whiteouts::Keep,
            ..Default::default()
        };
        store.unpack_layer(layer, tmp.path(), &options)?;
        strata_sandbox::oci_whiteouts_to_overlay(
            tmp.path(),
            strata_sandbox::XattrNamespace::for_current_user(),
        )
        .map_err(|source| StepError::SandboxAt {
            what: format!("snapshot of layer {diff_id}"),
            source,
        })?;
        let staged = tmp.keep();
        match fs::rename(&staged, &path) {
            Ok(()) => Ok(path),
            // Another build finished the same snapshot first: use theirs.
            Err(_) if path.is_dir() => {
                let _ = fs::remove_dir_all(&staged);
                Ok(path)
            }
            Err(e) => Err(io(&path)(e)),
        }
    }
}
