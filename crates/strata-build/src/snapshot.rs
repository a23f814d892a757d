//! Layer snapshots: each layer unpacked once into a directory in overlayfs' lower-layer form, keyed by
//! its diff_id and shared by every build and every image that has the layer.
//!
//! A snapshot is unpacked into a temp directory with OCI whiteouts kept as files, converted (a
//! `.wh.<name>` file becomes a 0/0 character device `<name>`, a `.wh..wh..opq` marker becomes the
//! `trusted.overlay.opaque=y` attribute of its directory), then renamed into place, so a crash or a
//! concurrent build never sees half a snapshot.

use std::ffi::CString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use strata_oci::tar::UnpackOptions;
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

impl Snapshots {
    /// Snapshots under `dir` (created when missing).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The snapshot directory of a layer, unpacking it the first time. Names are short (16 hex
    /// digits of the diff_id) so that many lower directories fit in one overlay mount option.
    pub fn get(
        &self,
        store: &Store,
        layer: &Descriptor,
        diff_id: &str,
    ) -> Result<PathBuf, StepError> {
        let hex = diff_id.trim_start_matches("sha256:");
        let short = &hex[..hex.len().min(16)];
        let path = self.dir.join(short);
        if path.is_dir() {
            return Ok(path);
        }
        fs::create_dir_all(&self.dir).map_err(io(&self.dir))?;
        let tmp = tempfile::Builder::new()
            .prefix(".unpack-")
            .tempdir_in(&self.dir)
            .map_err(io(&self.dir))?;
        let options = UnpackOptions {
            whiteouts: false,
            ..Default::default()
        };
        store.unpack_layer(layer, tmp.path(), &options)?;
        convert_whiteouts(tmp.path())?;
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

/// Turn OCI whiteout files under `root` into overlayfs whiteouts, depth first.
pub fn convert_whiteouts(root: &Path) -> Result<(), StepError> {
    let mut names: Vec<_> = fs::read_dir(root)
        .map_err(io(root))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<Result<_, _>>()
        .map_err(io(root))?;
    names.sort();
    for name in names {
        let path = root.join(&name);
        let name = name.to_string_lossy().into_owned();
        if name == ".wh..wh..opq" {
            fs::remove_file(&path).map_err(io(&path))?;
            set_xattr(root, "trusted.overlay.opaque", b"y")?;
        } else if let Some(hidden) = name.strip_prefix(".wh.") {
            fs::remove_file(&path).map_err(io(&path))?;
            let target = root.join(hidden);
            let _ = fs::remove_dir_all(&target).or_else(|_| fs::remove_file(&target));
            mknod_whiteout(&target)?;
        } else {
            let meta = fs::symlink_metadata(&path).map_err(io(&path))?;
            if meta.is_dir() {
                convert_whiteouts(&path)?;
            }
        }
    }
    Ok(())
}

fn mknod_whiteout(path: &Path) -> Result<(), StepError> {
    nix::sys::stat::mknod(
        path,
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::empty(),
        0,
    )
    .map_err(|e| io(path)(std::io::Error::from(e)))
}

fn set_xattr(path: &Path, name: &str, value: &[u8]) -> Result<(), StepError> {
    let c_path = CString::new(path.as_os_str().as_bytes()).map_err(|e| io(path)(e.into()))?;
    let c_name = CString::new(name).map_err(|e| io(path)(e.into()))?;
    // SAFETY: both strings are NUL-terminated and live across the call; value is a valid slice.
    let rc = unsafe {
        libc::lsetxattr(
            c_path.as_ptr(),
            c_name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if rc != 0 {
        return Err(io(path)(std::io::Error::last_os_error()));
    }
    Ok(())
}
