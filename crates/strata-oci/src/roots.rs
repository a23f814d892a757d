//! Extra gc roots: manifests that something outside `index.json` still needs, such as what a
//! deployment runs or may roll back to after its tag moved on.
//!
//! Each holder (a name of its own choosing, `deploy-acme-prod-wordpress`) owns one file
//! `.strata/roots/<holder>` listing manifest digests, one a line; [`Roots::set`] replaces it
//! atomically, an empty list removes it. [`crate::Maintenance::gc`] keeps every manifest listed
//! (and what it references, and its referrers: signatures and attestations) as long as the file
//! lists it. The store knows nothing about the holders: this is the whole contract.

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;

use crate::digest::Digest;
use crate::error::{Error, Result, io_err};
use crate::layout::{Store, atomic_write};

/// The extra gc roots of a store. Made by [`Store::roots`].
#[derive(Clone, Copy, Debug)]
pub struct Roots<'a> {
    store: &'a Store,
}

impl<'a> Roots<'a> {
    pub(crate) fn new(store: &'a Store) -> Self {
        Roots { store }
    }

    /// `.strata/roots`, one file per holder.
    pub fn dir(&self) -> PathBuf {
        self.store.root().join(".strata").join("roots")
    }

    /// Replace `holder`'s roots with `digests` (none: remove its file). A holder name is
    /// `[A-Za-z0-9][A-Za-z0-9._-]*`, so it stays a file name inside the roots directory.
    pub fn set(&self, holder: &str, digests: &[Digest]) -> Result<()> {
        let valid = holder.len() <= 200
            && holder
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric())
            && holder
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if !valid {
            return Err(Error::InvalidReference {
                input: holder.to_string(),
                reason: "a gc root holder is [A-Za-z0-9][A-Za-z0-9._-]*".into(),
            });
        }
        let dir = self.dir();
        let path = dir.join(holder);
        if digests.is_empty() {
            return match fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_err(&path)(e)),
                _ => Ok(()),
            };
        }
        fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let mut text = String::new();
        for d in digests {
            text.push_str(&d.to_string());
            text.push('\n');
        }
        atomic_write(&path, text.as_bytes())
    }

    /// Every holder's roots. A line that is not a digest is an error naming the file (gc then
    /// stops before removing anything); files whose names start with `.` (a writer's temp file)
    /// are skipped.
    pub fn list(&self) -> Result<BTreeMap<String, Vec<Digest>>> {
        let dir = self.dir();
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
            Err(e) => return Err(io_err(&dir)(e)),
        };
        let mut all = BTreeMap::new();
        for entry in entries {
            let entry = entry.map_err(io_err(&dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let path = entry.path();
            let text = fs::read_to_string(&path).map_err(io_err(&path))?;
            let digests = text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(|l| {
                    l.parse::<Digest>().map_err(|_| Error::InvalidImage {
                        image: l.to_string(),
                        reason: format!("not a digest in gc roots {}", path.display()),
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            all.insert(name, digests);
        }
        Ok(all)
    }
}
