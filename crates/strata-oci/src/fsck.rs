//! `fsck`: verify every blob's digest and every reference from `index.json` down.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt;
use std::fs::File;
use std::io;
use std::path::PathBuf;

use crate::digest::{Digest, HashingReader};
use crate::error::{Error, Result, io_err};
use crate::gc::Maintenance;
use crate::index::ref_name;

/// What is wrong with a blob.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProblemKind {
    /// The blob's content does not hash to its name.
    Corrupt,
    /// A referenced blob is not in the store.
    Missing,
    /// The blob's size differs from its descriptor's.
    SizeMismatch,
    /// A manifest or index blob is not valid JSON of its type.
    InvalidManifest,
    /// A file in `blobs/sha256` or `blobs/sha512` whose name is not a digest.
    StrayFile,
}

/// One problem found by fsck.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    /// What is wrong.
    pub kind: ProblemKind,
    /// The blob at fault (absent for stray files).
    pub digest: Option<Digest>,
    /// The file at fault, for stray files.
    pub path: Option<PathBuf>,
    /// The images (tags, or `untagged sha256:...` roots) that reference the blob.
    pub referenced_by: Vec<String>,
    /// Details (e.g. the digest the content actually has).
    pub detail: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            ProblemKind::Corrupt => "corrupt blob",
            ProblemKind::Missing => "missing blob",
            ProblemKind::SizeMismatch => "wrong size",
            ProblemKind::InvalidManifest => "invalid manifest",
            ProblemKind::StrayFile => "stray file",
        };
        write!(f, "{kind}")?;
        if let Some(digest) = &self.digest {
            write!(f, " {digest}")?;
        }
        if let Some(path) = &self.path {
            write!(f, " {}", path.display())?;
        }
        if !self.referenced_by.is_empty() {
            write!(f, " (used by {})", self.referenced_by.join(", "))?;
        }
        write!(f, ": {}", self.detail)
    }
}

/// The result of [`Maintenance::fsck`].
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct FsckReport {
    /// Blobs hashed.
    pub blobs: usize,
    /// Bytes hashed.
    pub bytes: u64,
    /// Entries in `index.json` walked.
    pub roots: usize,
    /// Everything wrong, sorted by kind then digest.
    pub problems: Vec<Problem>,
}

impl FsckReport {
    /// True when nothing is wrong.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

#[derive(Default)]
struct Found {
    detail: String,
    users: BTreeSet<String>,
}

impl Maintenance<'_> {
    /// Hash every blob, then walk every `index.json` entry down to configs and layers, reporting
    /// corrupt, missing and mis-sized blobs with the images that use them.
    pub fn fsck(&self) -> Result<FsckReport> {
        let mut report = FsckReport::default();
        let mut problems: BTreeMap<(ProblemKind, Digest), Found> = BTreeMap::new();
        let (digests, strays) = self.store.blobs().list()?;
        let mut sizes = BTreeMap::new();
        for digest in &digests {
            let path = self.store.blobs().path(digest);
            let file = File::open(&path).map_err(io_err(&path))?;
            let mut reader = HashingReader::with_algorithm(file, digest.algorithm());
            io::copy(&mut reader, &mut io::sink()).map_err(io_err(&path))?;
            let (actual, size) = reader.finish();
            report.blobs += 1;
            report.bytes += size;
            sizes.insert(digest.clone(), size);
            if actual != *digest {
                problems
                    .entry((ProblemKind::Corrupt, digest.clone()))
                    .or_default()
                    .detail = format!("content hashes to {actual}");
            }
        }
        let corrupt: HashSet<Digest> = problems.keys().map(|(_, d)| d.clone()).collect();

        let index = self.store.refs().index()?;
        let mut roots: Vec<(String, oci_spec::image::Descriptor)> = index
            .manifests()
            .iter()
            .map(|root| {
                let label = match ref_name(root) {
                    Some(name) => name.to_string(),
                    None => format!("untagged {}", root.digest()),
                };
                (label, root.clone())
            })
            .collect();
        // What the repositories' membership records hold must be there too.
        for (repository, record) in self.store.repos().records()? {
            for (digest, media_type) in &record.manifests {
                let size = sizes.get(digest).copied().unwrap_or(0);
                roots.push((
                    format!("repository {repository}"),
                    oci_spec::image::Descriptor::new(
                        oci_spec::image::MediaType::from(media_type.as_str()),
                        size,
                        digest.to_oci(),
                    ),
                ));
            }
            for digest in &record.blobs {
                if !sizes.contains_key(digest) {
                    let found = problems
                        .entry((ProblemKind::Missing, digest.clone()))
                        .or_default();
                    found.detail = format!("not in blobs/{}", digest.algorithm());
                    found.users.insert(format!("repository {repository}"));
                }
            }
        }
        report.roots = roots.len();
        for (label, root) in &roots {
            let label = label.clone();
            let mut seen = HashSet::new();
            let mut stack = vec![root.clone()];
            while let Some(descriptor) = stack.pop() {
                let digest = match Digest::from_oci(descriptor.digest()) {
                    Ok(d) => d,
                    Err(e) => {
                        // Not a sha256 or sha512 digest: report against the root.
                        let found = problems
                            .entry((ProblemKind::InvalidManifest, Digest::of(label.as_bytes())))
                            .or_default();
                        found.detail = e.to_string();
                        found.users.insert(label.clone());
                        continue;
                    }
                };
                if !seen.insert(digest.clone()) {
                    continue;
                }
                let Some(&size) = sizes.get(&digest) else {
                    let detail = format!("not in blobs/{}", digest.algorithm());
                    let found = problems.entry((ProblemKind::Missing, digest)).or_default();
                    found.detail = detail;
                    found.users.insert(label.clone());
                    continue;
                };
                if corrupt.contains(&digest) {
                    if let Some(found) = problems.get_mut(&(ProblemKind::Corrupt, digest)) {
                        found.users.insert(label.clone());
                    }
                    continue;
                }
                if size != descriptor.size() {
                    let found = problems
                        .entry((ProblemKind::SizeMismatch, digest))
                        .or_default();
                    found.detail = format!(
                        "{size} bytes on disk, {} in its descriptor",
                        descriptor.size()
                    );
                    found.users.insert(label.clone());
                    continue;
                }
                match self.store.read_node(&descriptor) {
                    Ok(node) => stack.extend(node.children()),
                    Err(Error::Json { source, .. }) => {
                        let found = problems
                            .entry((ProblemKind::InvalidManifest, digest))
                            .or_default();
                        found.detail = source.to_string();
                        found.users.insert(label.clone());
                    }
                    Err(e) => return Err(e),
                }
            }
        }

        report.problems = problems
            .into_iter()
            .map(|((kind, digest), found)| Problem {
                kind,
                digest: Some(digest),
                path: None,
                referenced_by: found.users.into_iter().collect(),
                detail: found.detail,
            })
            .collect();
        report
            .problems
            .extend(strays.into_iter().map(|path| Problem {
                kind: ProblemKind::StrayFile,
                digest: None,
                path: Some(path),
                referenced_by: Vec::new(),
                detail: "not named by a sha256 or sha512 digest".into(),
            }));
        Ok(report)
    }
}

/// What [`Maintenance::repair`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct RepairReport {
    /// `index.json` entries dropped because a blob they reach is missing (tags, or
    /// `untagged sha256:...`).
    pub dropped_entries: Vec<String>,
    /// Membership-record links dropped for the same reason (`REPOSITORY DIGEST`).
    pub dropped_links: Vec<String>,
    /// Orphaned temp files and killed builds' directories removed.
    pub temp_files: Vec<PathBuf>,
}

impl RepairReport {
    /// True when nothing needed repairing.
    pub fn is_empty(&self) -> bool {
        self.dropped_entries.is_empty()
            && self.dropped_links.is_empty()
            && self.temp_files.is_empty()
    }
}

impl Maintenance<'_> {
    /// Repair what a crash (or an older strata) left: drop `index.json` entries and
    /// membership-record links that reach a missing blob, and remove orphaned temp files (under
    /// the gc lock: refused with [`Error::Busy`] while a build or upload holds a lease). Corrupt
    /// blobs are not touched: fsck reports them. Blobs no longer referenced go with the next gc.
    pub fn repair(&self) -> Result<RepairReport> {
        let report = self
            .gc_then(&crate::gc::GcOptions { dry_run: true }, |_| ())?
            .0;
        let mut repair = RepairReport::default();
        self.store.refs().update(|index| {
            let missing = |root: &oci_spec::image::Descriptor| -> Result<bool> {
                let mut stack = vec![root.clone()];
                let mut seen = HashSet::new();
                while let Some(d) = stack.pop() {
                    let digest = Digest::from_oci(d.digest())?;
                    if !seen.insert(digest.clone()) {
                        continue;
                    }
                    if !self.store.blobs().has(&digest) {
                        return Ok(true);
                    }
                    match self.store.read_node(&d) {
                        Ok(node) => stack.extend(node.children()),
                        Err(Error::Json { .. }) => {}
                        Err(e) => return Err(e),
                    }
                }
                Ok(false)
            };
            let mut keep = Vec::new();
            for entry in index.manifests() {
                if missing(entry)? {
                    repair.dropped_entries.push(match ref_name(entry) {
                        Some(name) => name.to_string(),
                        None => format!("untagged {}", entry.digest()),
                    });
                } else {
                    keep.push(entry.clone());
                }
            }
            for (repository, mut record) in self.store.repos().records()? {
                let before = record.clone();
                let mut gone = Vec::new();
                for (digest, media_type) in &record.manifests {
                    let root = oci_spec::image::Descriptor::new(
                        oci_spec::image::MediaType::from(media_type.as_str()),
                        0,
                        digest.to_oci(),
                    );
                    if missing(&root)? {
                        gone.push(digest.clone());
                    }
                }
                for digest in gone {
                    record.manifests.remove(&digest);
                    repair.dropped_links.push(format!("{repository} {digest}"));
                }
                let blobs: Vec<Digest> = record
                    .blobs
                    .iter()
                    .filter(|d| !self.store.blobs().has(d))
                    .cloned()
                    .collect();
                for digest in blobs {
                    record.blobs.remove(&digest);
                    repair.dropped_links.push(format!("{repository} {digest}"));
                }
                if record != before {
                    self.store.repos().write_record(&repository, &record)?;
                }
            }
            let changed = keep.len() != index.manifests().len();
            index.set_manifests(keep);
            Ok((changed, ()))
        })?;
        // The temp files gc would remove (no lease is held: their writers are gone).
        let (_, removed) = self.gc_then(&crate::gc::GcOptions { dry_run: true }, |_| {
            let mut removed = Vec::new();
            for temp in &report.temp_files {
                crate::fault::point(crate::fault::Op::Unlink);
                let result = if temp.is_dir() {
                    std::fs::remove_dir_all(temp)
                } else {
                    std::fs::remove_file(temp)
                };
                match result {
                    Ok(()) => removed.push(temp.clone()),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io_err(temp)(e)),
                }
            }
            Ok(removed)
        })?;
        repair.temp_files = removed?;
        Ok(repair)
    }
}
