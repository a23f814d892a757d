//! Layer snapshots: each layer unpacked once into a directory in overlayfs' lower-layer form, keyed by
//! its diff_id and shared by every build and every image that has the layer.
//!
//! A snapshot is unpacked into a temp directory with OCI whiteouts kept as files, converted to
//! overlayfs form by the sandbox (`.wh.<name>` → a 0/0 character device, `.wh..wh..opq` → the
//! opaque attribute), then renamed into place, so a crash or a concurrent build never sees half a
//! snapshot.
//!
//! A directory a step already wrote needs no unpacking: a RUN step's overlay upper directory
//! (after its layer is written from it) and an ADD's extracted archive at `/` of an empty stage
//! hold exactly the layer's tree. [`Snapshots::adopt`] settles such a directory into the
//! unpacker's form ([`strata_sandbox::settle_as_lower`]: clamped mtimes, no extended attributes
//! but the layer's own and overlay's opaque marks, no sockets), checks that it has as many
//! entries as the layer, and renames it into place: the same atomic rename, so the cache never
//! holds half a snapshot.

use std::fs;
use std::path::{Path, PathBuf};

use strata_oci::tar::{UnpackOptions, Whiteouts};
use strata_oci::{Descriptor, Store};

use crate::error::StepError;

thread_local! {
    /// Layers unpacked into snapshots on this thread (a build runs on its caller's thread).
    static UNPACKED: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// How many layers this thread has unpacked into snapshots so far: tests observe with it that an
/// adopted snapshot is not unpacked again.
pub fn unpacked_on_this_thread() -> u64 {
    UNPACKED.with(std::cell::Cell::get)
}

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

/// What [`Snapshots::adopt`] did with a directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Adopted {
    /// It is now the layer's snapshot.
    Adopted,
    /// The layer already had a snapshot; the directory is left for the caller to remove.
    Present,
    /// It does not hold exactly the layer's entries (or cannot be renamed into the cache, on
    /// another filesystem): left for the caller to remove; the layer is unpacked when needed.
    Refused,
}

impl Snapshots {
    /// Snapshots under `dir` (created when missing).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// Where the snapshot of layer `diff_id` is (it may not exist).
    pub fn path(&self, diff_id: &str) -> PathBuf {
        self.dir.join(snapshot_name(diff_id))
    }

    /// Make `dir`, a tree a step wrote that holds the layer `diff_id` was written from, that
    /// layer's snapshot (see the module docs). `entries` is the number of entries of the layer
    /// (whiteouts included, opaque markers not): a tree with another number is refused, as is
    /// one with a name or link target that is not UTF-8 when `utf8` is asked (the COPY planner
    /// reads names as text). Only as root: rootless runs map owners, which the tree does not
    /// show.
    pub fn adopt(
        &self,
        dir: &Path,
        diff_id: &str,
        form: &strata_sandbox::LowerForm,
        entries: u64,
        utf8: bool,
    ) -> Result<Adopted, StepError> {
        let path = self.path(diff_id);
        if path.is_dir() {
            return Ok(Adopted::Present);
        }
        if strata_sandbox::XattrNamespace::for_current_user()
            != strata_sandbox::XattrNamespace::Trusted
        {
            return Ok(Adopted::Refused);
        }
        let report =
            strata_sandbox::settle_as_lower(dir, form).map_err(|source| StepError::SandboxAt {
                what: format!("snapshot of layer {diff_id}"),
                source,
            })?;
        if report.entries != entries || (utf8 && !report.utf8) {
            tracing::debug!(
                "not adopting {} as the snapshot of {diff_id}: {} entries for {entries} in the layer",
                dir.display(),
                report.entries
            );
            return Ok(Adopted::Refused);
        }
        fs::create_dir_all(&self.dir).map_err(io(&self.dir))?;
        match fs::rename(dir, &path) {
            Ok(()) => Ok(Adopted::Adopted),
            // Another build finished the same snapshot first: use theirs.
            Err(_) if path.is_dir() => Ok(Adopted::Present),
            Err(e) => {
                tracing::debug!("not adopting {}: {e}", dir.display());
                Ok(Adopted::Refused)
            }
        }
    }

    /// The snapshot directory of a layer, unpacking it the first time (named by [`snapshot_name`]).
    pub fn get(
        &self,
        store: &Store,
        layer: &Descriptor,
        diff_id: &str,
    ) -> Result<PathBuf, StepError> {
        let path = self.path(diff_id);
        if path.is_dir() {
            return Ok(path);
        }
        UNPACKED.with(|n| n.set(n.get() + 1));
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
