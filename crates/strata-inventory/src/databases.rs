//! The package database files of one filesystem state, and the packages they list.

use std::collections::BTreeMap;

use crate::error::Result;
use crate::limits::MAX_STATUS_D_FILES;
use crate::package::{Distro, Package};
use crate::{apk, dpkg, rpm};

/// dpkg's status file.
pub const DPKG_STATUS: &str = "/var/lib/dpkg/status";
/// distroless's per-package status directory.
pub const DPKG_STATUS_D: &str = "/var/lib/dpkg/status.d";
/// apk's installed database.
pub const APK_INSTALLED: &str = "/lib/apk/db/installed";
/// The rpm databases, in the order they are preferred when more than one is present (on Fedora
/// and RHEL 9 `/var/lib/rpm` is a symlink to `/usr/lib/sysimage/rpm`).
pub const RPM_DATABASES: [&str; 4] = [
    "/usr/lib/sysimage/rpm/rpmdb.sqlite",
    "/var/lib/rpm/rpmdb.sqlite",
    "/usr/lib/sysimage/rpm/Packages",
    "/var/lib/rpm/Packages",
];
/// os-release, preferred first.
pub const OS_RELEASE: [&str; 2] = ["/etc/os-release", "/usr/lib/os-release"];

/// The database files of one filesystem state, by absolute path: what a layer walk tracks.
///
/// ```
/// use strata_inventory::Databases;
///
/// let mut dbs = Databases::default();
/// dbs.insert(
///     "/var/lib/dpkg/status",
///     b"Package: libssl3\nStatus: install ok installed\nArchitecture: amd64\n\
///       Source: openssl\nVersion: 3.0.11-1~deb12u2\n"
///         .to_vec(),
/// );
/// dbs.insert("/etc/os-release", b"ID=debian\nVERSION_ID=\"12\"\n".to_vec());
/// let packages = dbs.packages().unwrap();
/// assert_eq!(packages[0].name, "libssl3");
/// assert_eq!(packages[0].source_name, "openssl");
/// assert_eq!(dbs.distro().unwrap().version_id, "12");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Databases {
    /// Shared, so the state after a base's layers is cloned cheaply for each build on it.
    files: BTreeMap<String, std::sync::Arc<[u8]>>,
}

impl Databases {
    /// Is `path` (absolute, normalised) a file this crate reads?
    pub fn is_tracked(path: &str) -> bool {
        if path == DPKG_STATUS
            || path == APK_INSTALLED
            || RPM_DATABASES.contains(&path)
            || OS_RELEASE.contains(&path)
        {
            return true;
        }
        path.strip_prefix(DPKG_STATUS_D)
            .and_then(|rest| rest.strip_prefix('/'))
            .is_some_and(|name| !name.is_empty() && !name.contains('/'))
    }

    /// Set a tracked file's content (untracked paths are ignored).
    pub fn insert(&mut self, path: &str, content: Vec<u8>) {
        if Self::is_tracked(path) {
            self.files.insert(path.to_string(), content.into());
        }
    }

    /// A tracked file's content.
    pub fn get(&self, path: &str) -> Option<&[u8]> {
        self.files.get(path).map(|c| &**c)
    }

    /// Remove `path` and everything under it; whether anything was removed.
    pub fn remove_tree(&mut self, path: &str) -> bool {
        let before = self.files.len();
        let prefix = if path == "/" {
            "/".to_string()
        } else {
            format!("{path}/")
        };
        self.files
            .retain(|p, _| p != path && !p.starts_with(&prefix));
        before != self.files.len()
    }

    /// Remove everything strictly under directory `dir` (an opaque directory); whether anything
    /// was removed.
    pub fn clear_dir(&mut self, dir: &str) -> bool {
        let before = self.files.len();
        let prefix = if dir == "/" {
            "/".to_string()
        } else {
            format!("{dir}/")
        };
        self.files.retain(|p, _| !p.starts_with(&prefix));
        before != self.files.len()
    }

    /// The number of tracked files.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// Whether no file is tracked.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// The bytes of all tracked files.
    pub fn total_bytes(&self) -> u64 {
        self.files.values().map(|c| c.len() as u64).sum()
    }

    /// Does it hold a package database (not only os-release)?
    pub fn has_package_database(&self) -> bool {
        self.files.keys().any(|p| !OS_RELEASE.contains(&p.as_str()))
    }

    /// The distribution, from os-release.
    pub fn distro(&self) -> Option<Distro> {
        OS_RELEASE
            .iter()
            .find_map(|p| self.get(p))
            .and_then(|text| Distro::parse(&String::from_utf8_lossy(text)))
    }

    /// Every package every database lists, sorted (ecosystem, name, architecture, version).
    pub fn packages(&self) -> Result<Vec<Package>> {
        let mut out = Vec::new();
        if let Some(status) = self.get(DPKG_STATUS) {
            out.extend(dpkg::parse_status(DPKG_STATUS, status)?);
        }
        let status_d: Vec<(&String, &std::sync::Arc<[u8]>)> = self
            .files
            .iter()
            .filter(|(p, _)| p.starts_with(DPKG_STATUS_D) && !p.ends_with(".md5sums"))
            .collect();
        if status_d.len() > MAX_STATUS_D_FILES {
            return Err(crate::error::too_large(
                DPKG_STATUS_D,
                "files",
                status_d.len() as u64,
                MAX_STATUS_D_FILES as u64,
            ));
        }
        for (path, data) in status_d {
            out.extend(dpkg::parse_status_d(path, data)?);
        }
        if let Some(installed) = self.get(APK_INSTALLED) {
            out.extend(apk::parse_installed(APK_INSTALLED, installed)?);
        }
        if let Some(path) = RPM_DATABASES.iter().find(|p| self.files.contains_key(**p)) {
            let data = &self.files[*path];
            out.extend(if path.ends_with(".sqlite") {
                rpm::sqlite::parse(path, data)?
            } else {
                rpm::bdb::parse(path, data)?
            });
        }
        out.sort();
        out.dedup();
        Ok(out)
    }
}
