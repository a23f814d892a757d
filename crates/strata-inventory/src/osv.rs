//! Advisories: OSV records (<https://ossf.github.io/osv-schema/>), as osv.dev exports them (a
//! directory of JSON files, one record each), matched against inventories.
//!
//! A record's `affected[]` entries name a package by ecosystem and name; Debian's, Ubuntu's and
//! Alpine's records name the *source* package (one advisory for `openssl` covers `libssl3` and
//! `openssl`), so those are matched on the installed package's source name and source version;
//! RPM distributions' records name binary packages. Versions compare by the ecosystem's own order
//! ([`Ecosystem::compare`]), `ranges[].events` evaluated as the schema's pseudo-code does
//! (`introduced` ≤ v, `fixed` ≤ v, `last_affected` < v), and `versions[]` as exact matches.
//!
//! The files are hostile input: each is bounded in size ([`MAX_OSV_FILE`]), the directory in
//! count ([`MAX_OSV_FILES`]), a record in its `affected` and `events` entries; only regular files
//! named `*.json` are read (symbolic links are not followed). A file over a bound or not an OSV
//! record fails the load with one error naming it.

use std::cmp::Ordering;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::attribution::{InstalledPackage, Inventory};
use crate::index::IndexedInventory;
use crate::package::{Distro, Ecosystem, Package};

/// The largest OSV file read (osv.dev's largest records are a few hundred KiB).
pub const MAX_OSV_FILE: u64 = 8 << 20;
/// The most files read from one directory tree.
pub const MAX_OSV_FILES: usize = 2_000_000;
/// The most `affected` entries of one record, and `events`/`versions` of one entry.
pub const MAX_OSV_ENTRIES: usize = 100_000;

/// Why OSV records could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OsvError {
    /// A file or directory could not be read.
    #[error("{path}: cannot read")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file is over a bound.
    #[error("{path}: {what} is over the limit of {limit}")]
    TooLarge {
        /// The file or directory.
        path: PathBuf,
        /// What is over.
        what: &'static str,
        /// The bound.
        limit: u64,
    },
    /// A file is not an OSV record.
    #[error("{path}: not an OSV record")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// The JSON error.
        source: serde_json::Error,
    },
}

/// One OSV record (the fields matching needs).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OsvRecord {
    /// `DSA-5532-1`, `CVE-2023-5678`, `DEBIAN-CVE-2023-5678`.
    pub id: String,
    /// Other identifiers (CVE ids).
    #[serde(default)]
    pub aliases: Vec<String>,
    /// Related identifiers.
    #[serde(default)]
    pub upstream: Vec<String>,
    /// A one-line summary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// What it affects.
    #[serde(default)]
    pub affected: Vec<OsvAffected>,
}

/// One `affected[]` entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OsvAffected {
    /// The package.
    pub package: OsvPackage,
    /// Version ranges.
    #[serde(default)]
    pub ranges: Vec<OsvRange>,
    /// Exact affected versions.
    #[serde(default)]
    pub versions: Vec<String>,
}

/// `affected[].package`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OsvPackage {
    /// `Debian:12`, `Alpine:v3.20`, `Red Hat`, …
    pub ecosystem: String,
    /// The package's name (for Debian, Ubuntu and Alpine: the source package).
    pub name: String,
    /// Its purl, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purl: Option<String>,
}

/// `affected[].ranges[]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OsvRange {
    /// `ECOSYSTEM`, `SEMVER` or `GIT` (only the first two are matched).
    #[serde(rename = "type")]
    pub type_: String,
    /// The events.
    #[serde(default)]
    pub events: Vec<OsvEvent>,
}

/// One event: exactly one field is set.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct OsvEvent {
    /// Affected from this version on (`0`: from the first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub introduced: Option<String>,
    /// Fixed in this version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixed: Option<String>,
    /// Affected up to and including this version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_affected: Option<String>,
    /// A limit (git ranges); ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<String>,
}

impl OsvRecord {
    /// Whether `id` is this record's id or one of its aliases (case-insensitive).
    pub fn is_named(&self, id: &str) -> bool {
        self.id.eq_ignore_ascii_case(id)
            || self
                .aliases
                .iter()
                .chain(&self.upstream)
                .any(|a| a.eq_ignore_ascii_case(id))
    }

    fn check_bounds(&self, path: &Path) -> Result<(), OsvError> {
        let too = |what| OsvError::TooLarge {
            path: path.to_path_buf(),
            what,
            limit: MAX_OSV_ENTRIES as u64,
        };
        if self.affected.len() > MAX_OSV_ENTRIES {
            return Err(too("the number of affected entries"));
        }
        for a in &self.affected {
            if a.versions.len() > MAX_OSV_ENTRIES {
                return Err(too("the number of versions of an affected entry"));
            }
            if a.ranges.iter().map(|r| r.events.len()).sum::<usize>() > MAX_OSV_ENTRIES {
                return Err(too("the number of range events of an affected entry"));
            }
        }
        Ok(())
    }
}

/// Read one OSV file, bounded.
pub fn read_record(path: &Path) -> Result<OsvRecord, OsvError> {
    let io = |source| OsvError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let mut bytes = Vec::new();
    file.take(MAX_OSV_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > MAX_OSV_FILE {
        return Err(OsvError::TooLarge {
            path: path.to_path_buf(),
            what: "its size",
            limit: MAX_OSV_FILE,
        });
    }
    let record: OsvRecord =
        serde_json::from_slice(&bytes).map_err(|source| OsvError::Malformed {
            path: path.to_path_buf(),
            source,
        })?;
    record.check_bounds(path)?;
    Ok(record)
}

/// Every record under `dir` (recursively; regular `*.json` files only, in path order).
pub fn load_dir(dir: &Path) -> Result<Vec<OsvRecord>, OsvError> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).map_err(|source| OsvError::Io {
            path: d.clone(),
            source,
        })?;
        for entry in entries {
            let entry = entry.map_err(|source| OsvError::Io {
                path: d.clone(),
                source,
            })?;
            let kind = entry.file_type().map_err(|source| OsvError::Io {
                path: entry.path(),
                source,
            })?;
            let path = entry.path();
            if kind.is_dir() {
                stack.push(path);
            } else if kind.is_file() && path.extension().is_some_and(|e| e == "json") {
                if files.len() >= MAX_OSV_FILES {
                    return Err(OsvError::TooLarge {
                        path: dir.to_path_buf(),
                        what: "the number of files",
                        limit: MAX_OSV_FILES as u64,
                    });
                }
                files.push(path);
            }
        }
    }
    files.sort();
    files.iter().map(|p| read_record(p)).collect()
}

/// An OSV ecosystem string read: the packaging system, the distribution it names (`debian`,
/// `ubuntu`, `alpine`, or none for RPM distributions matched by name only) and its release.
fn parse_ecosystem(s: &str) -> Option<(Ecosystem, Option<&'static str>, Option<&str>)> {
    let (name, release) = match s.split_once(':') {
        Some((n, r)) => (n, Some(r)),
        None => (s, None),
    };
    match name {
        "Debian" => Some((Ecosystem::Deb, Some("debian"), release)),
        "Ubuntu" => Some((
            Ecosystem::Deb,
            Some("ubuntu"),
            release.map(|r| r.split(':').next().unwrap_or(r)),
        )),
        "Alpine" => Some((
            Ecosystem::Apk,
            Some("alpine"),
            release.map(|r| r.trim_start_matches('v')),
        )),
        "Red Hat" | "Rocky Linux" | "AlmaLinux" | "openSUSE" | "SUSE" | "Mageia" | "openEuler" => {
            Some((Ecosystem::Rpm, None, release))
        }
        _ => None,
    }
}

/// Whether an OSV release (`12`, `3.20`, `22.04`) names the image's distribution release
/// (`VERSION_ID` `12`, `3.20.1`, `22.04`).
fn release_matches(osv: &str, version_id: &str) -> bool {
    version_id == osv
        || version_id
            .strip_prefix(osv)
            .is_some_and(|rest| rest.starts_with('.'))
}

/// Whether version `v` falls in `affected`, by `ecosystem`'s order; and the lowest `fixed`
/// version above `v` when one is named.
pub fn affects(ecosystem: Ecosystem, affected: &OsvAffected, v: &str) -> (bool, Option<String>) {
    let cmp = |a: &str, b: &str| -> Ordering {
        match (a == "0", b == "0") {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Less,
            (false, true) => Ordering::Greater,
            _ => ecosystem.compare(a, b),
        }
    };
    let mut hit = affected.versions.iter().any(|x| x == v);
    let mut fix: Option<String> = None;
    for range in &affected.ranges {
        if range.type_ != "ECOSYSTEM" && range.type_ != "SEMVER" {
            continue;
        }
        let mut events: Vec<(&str, u8)> = range
            .events
            .iter()
            .filter_map(|e| {
                e.introduced
                    .as_deref()
                    .map(|x| (x, 0))
                    .or(e.fixed.as_deref().map(|x| (x, 1)))
                    .or(e.last_affected.as_deref().map(|x| (x, 2)))
            })
            .collect();
        events.sort_by(|a, b| cmp(a.0, b.0).then(a.1.cmp(&b.1)));
        let mut in_range = false;
        for (x, kind) in &events {
            match kind {
                0 if cmp(x, v) != Ordering::Greater => in_range = true,
                1 if cmp(x, v) != Ordering::Greater => in_range = false,
                2 if cmp(x, v) == Ordering::Less => in_range = false,
                _ => {}
            }
        }
        if in_range {
            hit = true;
            for (x, kind) in &events {
                if *kind == 1
                    && cmp(x, v) == Ordering::Greater
                    && fix.as_deref().is_none_or(|f| cmp(x, f) == Ordering::Less)
                {
                    fix = Some(x.to_string());
                }
            }
        }
    }
    (hit, fix)
}

/// One package of one image an advisory affects.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    /// The record's id.
    pub id: String,
    /// Its aliases (CVE ids).
    pub aliases: Vec<String>,
    /// Its summary.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// The image.
    pub image: String,
    /// Its manifest digest.
    pub digest: String,
    /// The installed package, with the layer (tier, team, build) that installed it.
    pub package: InstalledPackage,
    /// The version that fixes it, when the record names one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fixed: Option<String>,
}

/// Whether `affected` names `package` of an image on `distro`; the version to compare.
fn names<'a>(
    affected: &OsvAffected,
    package: &'a Package,
    distro: Option<&Distro>,
) -> Option<&'a str> {
    let (ecosystem, distro_id, release) = parse_ecosystem(&affected.package.ecosystem)?;
    if ecosystem != package.ecosystem {
        return None;
    }
    if let Some(id) = distro_id {
        // A distribution-specific record matches only that distribution (and release).
        if let Some(d) = distro {
            if !d.id.eq_ignore_ascii_case(id) {
                return None;
            }
            if let Some(r) = release
                && !release_matches(r, &d.version_id)
            {
                return None;
            }
        }
        (package.source_name == affected.package.name).then_some(package.source_version.as_str())
    } else {
        (package.name == affected.package.name).then_some(package.version.as_str())
    }
}

/// The findings of `records` in `inventory`.
pub fn match_inventory(records: &[OsvRecord], inventory: &Inventory) -> Vec<Finding> {
    match_packages(
        records,
        &inventory.image,
        &inventory.digest,
        inventory.distro.as_ref(),
        &inventory.packages,
    )
}

/// The findings of `records` in an image from the package index ([`crate::index`]).
pub fn match_indexed(records: &[OsvRecord], image: &IndexedInventory) -> Vec<Finding> {
    match_packages(
        records,
        &image.image,
        &image.digest.to_string(),
        image.packages.distro.as_ref(),
        &image.packages.packages,
    )
}

/// The findings of `records` in the packages of image `image` (manifest digest `digest`) on
/// `distro`.
fn match_packages(
    records: &[OsvRecord],
    image: &str,
    digest: &str,
    distro: Option<&Distro>,
    packages: &[InstalledPackage],
) -> Vec<Finding> {
    let mut out = Vec::new();
    for record in records {
        for p in packages {
            let mut hit = false;
            let mut fixed = None;
            for a in &record.affected {
                let Some(version) = names(a, &p.package, distro) else {
                    continue;
                };
                let (h, f) = affects(p.package.ecosystem, a, version);
                if h {
                    hit = true;
                    fixed = fixed.or(f);
                }
            }
            if hit {
                out.push(Finding {
                    id: record.id.clone(),
                    aliases: record.aliases.clone(),
                    summary: record.summary.clone(),
                    image: image.to_string(),
                    digest: digest.to_string(),
                    package: p.clone(),
                    fixed,
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn affected(eco: &str, name: &str, events: &[(&str, &str)]) -> OsvAffected {
        OsvAffected {
            package: OsvPackage {
                ecosystem: eco.into(),
                name: name.into(),
                purl: None,
            },
            ranges: vec![OsvRange {
                type_: "ECOSYSTEM".into(),
                events: events
                    .iter()
                    .map(|(k, v)| {
                        let mut e = OsvEvent::default();
                        match *k {
                            "introduced" => e.introduced = Some(v.to_string()),
                            "fixed" => e.fixed = Some(v.to_string()),
                            _ => e.last_affected = Some(v.to_string()),
                        }
                        e
                    })
                    .collect(),
            }],
            versions: Vec::new(),
        }
    }

    #[test]
    fn ranges_use_the_ecosystem_order() {
        let a = affected(
            "Debian:12",
            "openssl",
            &[("introduced", "0"), ("fixed", "3.0.11-1~deb12u2")],
        );
        // `~` sorts before the end: 3.0.11-1~deb12u1 < 3.0.11-1~deb12u2 < 3.0.11-1.
        assert_eq!(
            affects(Ecosystem::Deb, &a, "3.0.11-1~deb12u1"),
            (true, Some("3.0.11-1~deb12u2".into()))
        );
        assert!(!affects(Ecosystem::Deb, &a, "3.0.11-1~deb12u2").0);
        assert!(!affects(Ecosystem::Deb, &a, "3.0.11-1").0);
        // An epoch wins over everything.
        assert!(!affects(Ecosystem::Deb, &a, "1:1.0-1").0);
        let last = affected(
            "Alpine:v3.20",
            "openssl",
            &[("introduced", "3.0.0-r0"), ("last_affected", "3.3.1-r0")],
        );
        assert!(affects(Ecosystem::Apk, &last, "3.3.1-r0").0);
        assert!(!affects(Ecosystem::Apk, &last, "3.3.1-r1").0);
        assert!(!affects(Ecosystem::Apk, &last, "1.1.1-r0").0);
    }

    #[test]
    fn releases_match_by_prefix() {
        assert!(release_matches("3.20", "3.20.1"));
        assert!(!release_matches("3.2", "3.20.1"));
        assert!(release_matches("12", "12"));
    }
}
