//! `strata.lock`: the digest every upstream image a chain's Dockerfiles name was resolved to.
//!
//! An upstream is an external reference (not one of the chain's own images) that names a registry
//! (`registry.acme.example/ops/corebuild:7`, `docker.io/library/debian:12`): the images strata
//! pulls. Builds read an upstream at its locked digest, so a build is reproducible anywhere and an
//! image's build key changes only when the lock moves (`strata update`). This module is the pure
//! model: parse (errors name `strata.lock:LINE:COL`), serialize (sorted, stable, with a header
//! comment), check that a lock covers what the Dockerfiles name, and diff two locks. Resolving and
//! writing are the cascade's and the CLI's.
//!
//! Git contexts (`context = { git = URL, rev = "main" }`) are locked the same way in `[[git]]`
//! entries: URL and rev → the commit (see [`crate::git`]). The format stays version 1: the table is
//! optional, so every lock written before reads as before; a strata that predates it refuses a
//! lock with `[[git]]` as an unknown field, naming its line.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::error::Location;

/// The lock file's name, beside `strata.toml`.
pub const LOCK_FILE: &str = "strata.lock";

/// The format version written and read.
pub const LOCK_VERSION: u32 = 1;

const HEADER: &str = "\
# strata.lock: the digest each upstream image this chain's Dockerfiles name was resolved to,
# and the commit each git context's rev was resolved to. Builds use these digests and commits. Written by `strata build` (new upstreams) and `strata update`
# (moved ones); commit it beside strata.toml. Do not edit by hand.
";

/// True when `reference` names an upstream strata locks: it parses and names a registry other than
/// `localhost` (strata's own local names). References without a registry are the store's.
pub fn is_upstream(reference: &str) -> bool {
    strata_reference::parse(reference)
        .ok()
        .and_then(|r| r.domain().map(|d| d != "localhost"))
        .unwrap_or(false)
}

/// One upstream, as resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Locked {
    /// The reference as the Dockerfile names it (after build args).
    pub reference: String,
    /// The manifest digest it resolved to.
    pub digest: String,
    /// The registry it came from (`registry.acme.example`, `127.0.0.1:5000`).
    pub registry: String,
    /// When it was resolved (RFC 3339, UTC).
    pub resolved: String,
    /// The team whose key signed the upstream's provenance (a team of this chain's `[teams]`),
    /// when the image has a provenance attestation that a trusted key verifies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub built_by: Option<String>,
    /// The id of the key that signed that provenance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// When the provenance says the image was built (its `finishedOn`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub built: Option<String>,
}

/// One git context's revision, as resolved (`[[git]]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct GitLocked {
    /// The repository URL, as `strata.toml` names it.
    pub url: String,
    /// The revision asked for (a branch or a tag).
    pub rev: String,
    /// The commit it resolved to (hex).
    pub commit: String,
    /// When it was resolved (RFC 3339, UTC).
    pub resolved: String,
}

/// How one git context's commit differs between two locks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GitMove {
    /// The repository URL.
    pub url: String,
    /// The revision.
    pub rev: String,
    /// The commit before (None: newly locked).
    pub from: Option<String>,
    /// The commit after (None: no longer locked).
    pub to: Option<String>,
}

impl fmt::Display for GitMove {
    /// `https://git.example/mw.git main: abc123def456 → 0123456789ab`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let short = |c: &Option<String>| match c {
            Some(c) => c[..c.len().min(12)].to_string(),
            None => "(none)".to_string(),
        };
        match (&self.from, &self.to) {
            (None, to) => write!(f, "{} {}: locked at {}", self.url, self.rev, short(to)),
            (from, None) => write!(
                f,
                "{} {}: no longer named, unlocked (was {})",
                self.url,
                self.rev,
                short(from)
            ),
            (from, to) => write!(
                f,
                "{} {}: {} → {}",
                self.url,
                self.rev,
                short(from),
                short(to)
            ),
        }
    }
}

/// The lock: upstream reference → what it resolved to, and git (url, rev) → commit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lock {
    entries: BTreeMap<String, Locked>,
    git: BTreeMap<(String, String), GitLocked>,
    /// Where each entry was read (line of its `[[upstream]]`), for errors; empty for a new lock.
    lines: BTreeMap<String, usize>,
}

/// Why a lock could not be read, or does not fit the chain.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LockError {
    /// The lock file could not be read.
    #[error("{}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The lock is not valid TOML or does not fit the schema.
    #[error("{location}: {message}")]
    Syntax {
        /// Where.
        location: Location,
        /// What (one line).
        message: String,
    },
    /// An entry is wrong: a bad digest, a reference that is not an upstream, a duplicate.
    #[error("{location}: upstream {reference}: {message}")]
    Entry {
        /// Where the entry is.
        location: Location,
        /// The entry's reference.
        reference: String,
        /// What is wrong.
        message: String,
    },
    /// A Dockerfile names an upstream the lock does not lock (`strata build --locked`).
    #[error("{site}: {reference} is not locked in {}: run `strata update {reference}`", path.display())]
    Missing {
        /// The lock file.
        path: PathBuf,
        /// The reference.
        reference: String,
        /// Where it is named: `corebuild/Dockerfile:1`.
        site: String,
    },
    /// The lock locks an upstream no Dockerfile names any more (`strata build --locked`).
    #[error("{location}: {reference} is locked but no Dockerfile names it: run `strata update`")]
    Unused {
        /// Where the entry is.
        location: Location,
        /// The reference.
        reference: String,
    },
    /// There is no lock at all (`strata build --locked`).
    #[error("{}: no lock file: run `strata update` (or a build without --locked) to write it", path.display())]
    NoLock {
        /// The lock file that is missing.
        path: PathBuf,
    },
}

/// How one upstream differs between two locks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Move {
    /// The reference.
    pub reference: String,
    /// The digest before (None: newly locked).
    pub from: Option<String>,
    /// The digest after (None: no longer locked).
    pub to: Option<String>,
    /// The entry after, with its provenance, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entry: Option<Locked>,
}

impl fmt::Display for Move {
    /// `ops/corebuild: sha256:ab12… → sha256:cd34…, rebuilt by operations 2026-12-06T14:02:00Z`;
    /// `…: locked at sha256:…` for a new entry, `…: no longer named, unlocked (was sha256:…)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let short = |d: &Option<String>| match d {
            Some(d) => {
                let end = d.len().min("sha256:".len() + 12);
                format!("{}…", &d[..end])
            }
            None => "(none)".to_string(),
        };
        match (&self.from, &self.to) {
            (None, to) => write!(f, "{}: locked at {}", self.reference, short(to))?,
            (from, None) => write!(
                f,
                "{}: no longer named, unlocked (was {})",
                self.reference,
                short(from)
            )?,
            (from, to) => write!(f, "{}: {} → {}", self.reference, short(from), short(to))?,
        }
        if let Some(Locked {
            built_by: Some(team),
            built,
            ..
        }) = &self.entry
        {
            write!(f, ", rebuilt by {team}")?;
            if let Some(at) = built {
                write!(f, " {at}")?;
            }
        }
        Ok(())
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLock {
    version: Spanned<u32>,
    #[serde(default)]
    upstream: Vec<Spanned<Locked>>,
    #[serde(default)]
    git: Vec<Spanned<GitLocked>>,
}

#[derive(Serialize)]
struct OutLock<'a> {
    version: u32,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    upstream: Vec<&'a Locked>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    git: Vec<&'a GitLocked>,
}

impl Lock {
    /// An empty lock.
    pub fn new() -> Lock {
        Lock::default()
    }

    /// Read the lock at `path`; None when there is none.
    pub fn load(path: &Path) -> Result<Option<Lock>, LockError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Lock::parse(path, &text).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(LockError::Read {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// Parse `text`, the lock at `path` (named in errors).
    pub fn parse(path: &Path, text: &str) -> Result<Lock, LockError> {
        let at = |offset: usize| Location::at_offset(path, text, offset);
        let raw: RawLock = toml::from_str(text).map_err(|e| LockError::Syntax {
            location: at(e.span().map_or(0, |s| s.start)),
            message: e.message().trim().to_string(),
        })?;
        if *raw.version.get_ref() != LOCK_VERSION {
            return Err(LockError::Syntax {
                location: at(raw.version.span().start),
                message: format!(
                    "version {} is not supported (this strata reads version {LOCK_VERSION})",
                    raw.version.get_ref()
                ),
            });
        }
        let mut lock = Lock::new();
        for spanned in raw.upstream {
            let location = at(spanned.span().start);
            let entry = spanned.into_inner();
            let bad = |message: String| LockError::Entry {
                location: location.clone(),
                reference: entry.reference.clone(),
                message,
            };
            if !is_upstream(&entry.reference) {
                return Err(bad(
                    "not an upstream reference (HOST/NAME[:TAG][@DIGEST])".into()
                ));
            }
            if let Err(e) = strata_reference::check_digest(&entry.digest) {
                return Err(bad(format!("digest {:?}: {e}", entry.digest)));
            }
            if lock.entries.contains_key(&entry.reference) {
                return Err(bad("locked twice".into()));
            }
            lock.lines.insert(entry.reference.clone(), location.line);
            lock.entries.insert(entry.reference.clone(), entry);
        }
        for spanned in raw.git {
            let location = at(spanned.span().start);
            let entry = spanned.into_inner();
            let bad = |message: String| LockError::Entry {
                location: location.clone(),
                reference: format!("{} {}", entry.url, entry.rev),
                message,
            };
            if let Err(e) = crate::git::check_url(&entry.url) {
                return Err(bad(e.to_string()));
            }
            if let Err(e) = crate::git::check_rev(&entry.rev) {
                return Err(bad(e.to_string()));
            }
            if !crate::git::is_commit_id(&entry.commit) {
                return Err(bad(format!(
                    "commit {:?} is not a full commit id (40 or 64 lowercase hex)",
                    entry.commit
                )));
            }
            let key = (entry.url.clone(), entry.rev.clone());
            if lock.git.contains_key(&key) {
                return Err(bad("locked twice".into()));
            }
            lock.git.insert(key, entry);
        }
        Ok(lock)
    }

    /// The lock as TOML: a header comment, the version, one `[[upstream]]` per reference, sorted.
    pub fn to_toml(&self) -> String {
        let out = OutLock {
            version: LOCK_VERSION,
            upstream: self.entries.values().collect(),
            git: self.git.values().collect(),
        };
        let body = toml::to_string(&out).expect("a lock serializes");
        format!("{HEADER}{body}")
    }

    /// The entry for `reference`.
    pub fn get(&self, reference: &str) -> Option<&Locked> {
        self.entries.get(reference)
    }

    /// Every entry, sorted by reference.
    pub fn entries(&self) -> impl Iterator<Item = &Locked> {
        self.entries.values()
    }

    /// Lock (or relock) an upstream.
    pub fn insert(&mut self, entry: Locked) {
        self.entries.insert(entry.reference.clone(), entry);
    }

    /// Keep only the entries whose reference `keep` accepts.
    pub fn retain(&mut self, keep: impl Fn(&str) -> bool) {
        self.entries.retain(|r, _| keep(r));
    }

    /// True when nothing is locked.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty() && self.git.is_empty()
    }

    /// The git contexts locked: (url, rev) → commit.
    pub fn git_commits(&self) -> BTreeMap<(String, String), String> {
        self.git
            .iter()
            .map(|(k, e)| (k.clone(), e.commit.clone()))
            .collect()
    }

    /// Every `[[git]]` entry, sorted by URL and rev.
    pub fn git_entries(&self) -> impl Iterator<Item = &GitLocked> {
        self.git.values()
    }

    /// The `[[git]]` entry of `url` at `rev`.
    pub fn git_entry(&self, url: &str, rev: &str) -> Option<&GitLocked> {
        self.git.get(&(url.to_string(), rev.to_string()))
    }

    /// Lock (or relock) a git context.
    pub fn insert_git(&mut self, entry: GitLocked) {
        self.git
            .insert((entry.url.clone(), entry.rev.clone()), entry);
    }

    /// Unlock the git context `url` at `rev`.
    pub fn remove_git(&mut self, url: &str, rev: &str) {
        self.git.remove(&(url.to_string(), rev.to_string()));
    }

    /// Set the git contexts to exactly `commits` ((url, rev) → commit): an entry whose commit did
    /// not change keeps its resolution time; the others are new; the rest are dropped.
    pub fn set_git(&mut self, commits: &BTreeMap<(String, String), String>) {
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let old = std::mem::take(&mut self.git);
        for ((url, rev), commit) in commits {
            let key = (url.clone(), rev.clone());
            let entry = match old.get(&key) {
                Some(e) if e.commit == *commit => e.clone(),
                _ => GitLocked {
                    url: url.clone(),
                    rev: rev.clone(),
                    commit: commit.clone(),
                    resolved: now.clone(),
                },
            };
            self.git.insert(key, entry);
        }
    }

    /// What differs in the git contexts from `old` to `self`, sorted by URL and rev.
    pub fn git_diff(&self, old: &Lock) -> Vec<GitMove> {
        let mut moves = Vec::new();
        for (key, entry) in &self.git {
            let from = old.git.get(key).map(|e| e.commit.clone());
            if from.as_deref() != Some(entry.commit.as_str()) {
                moves.push(GitMove {
                    url: key.0.clone(),
                    rev: key.1.clone(),
                    from,
                    to: Some(entry.commit.clone()),
                });
            }
        }
        for (key, entry) in &old.git {
            if !self.git.contains_key(key) {
                moves.push(GitMove {
                    url: key.0.clone(),
                    rev: key.1.clone(),
                    from: Some(entry.commit.clone()),
                    to: None,
                });
            }
        }
        moves.sort_by(|a, b| (&a.url, &a.rev).cmp(&(&b.url, &b.rev)));
        moves
    }

    /// Check that the lock at `path` locks exactly the upstreams `named` (reference → where a
    /// Dockerfile names it, `corebuild/Dockerfile:1`): what `strata build --locked` requires.
    pub fn check_covers(
        &self,
        path: &Path,
        named: &BTreeMap<String, String>,
    ) -> Result<(), LockError> {
        for (reference, site) in named {
            if !self.entries.contains_key(reference) {
                return Err(LockError::Missing {
                    path: path.to_path_buf(),
                    reference: reference.clone(),
                    site: site.clone(),
                });
            }
        }
        if let Some(reference) = self.entries.keys().find(|r| !named.contains_key(*r)) {
            return Err(LockError::Unused {
                location: Location {
                    path: path.to_path_buf(),
                    line: self.lines.get(reference).copied().unwrap_or(1),
                    column: 1,
                },
                reference: reference.clone(),
            });
        }
        Ok(())
    }

    /// What differs from `old` to `self`: upstreams locked anew, moved, or no longer locked,
    /// sorted by reference. A re-resolution to the same digest is not a move.
    pub fn diff(&self, old: &Lock) -> Vec<Move> {
        let mut moves = Vec::new();
        for (reference, entry) in &self.entries {
            let from = old.entries.get(reference).map(|e| e.digest.clone());
            if from.as_deref() != Some(entry.digest.as_str()) {
                moves.push(Move {
                    reference: reference.clone(),
                    from,
                    to: Some(entry.digest.clone()),
                    entry: Some(entry.clone()),
                });
            }
        }
        for (reference, entry) in &old.entries {
            if !self.entries.contains_key(reference) {
                moves.push(Move {
                    reference: reference.clone(),
                    from: Some(entry.digest.clone()),
                    to: None,
                    entry: None,
                });
            }
        }
        moves.sort_by(|a, b| a.reference.cmp(&b.reference));
        moves
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(reference: &str, hex: char) -> Locked {
        Locked {
            reference: reference.into(),
            digest: format!("sha256:{}", hex.to_string().repeat(64)),
            registry: reference.split('/').next().unwrap().into(),
            resolved: "2026-12-06T14:02:00Z".into(),
            built_by: None,
            key: None,
            built: None,
        }
    }

    #[test]
    fn a_lock_round_trips_sorted_with_its_header() {
        let mut lock = Lock::new();
        lock.insert(entry("registry.acme.example/ops/corebuild:7", 'b'));
        let mut signed = entry("docker.io/library/debian:12", 'a');
        signed.built_by = Some("operations".into());
        signed.key = Some("3f1c".into());
        signed.built = Some("2026-12-06T14:00:00Z".into());
        lock.insert(signed);
        let text = lock.to_toml();
        assert!(text.starts_with("# strata.lock"), "{text}");
        let debian = text.find("debian").unwrap();
        let core = text.find("corebuild").unwrap();
        assert!(debian < core, "sorted by reference:\n{text}");
        assert!(text.contains("built-by = \"operations\""), "{text}");
        assert!(
            !text[core..].contains("built-by"),
            "absent fields stay absent"
        );
        let back = Lock::parse(Path::new("strata.lock"), &text).unwrap();
        assert_eq!(back.to_toml(), text, "stable");
        assert_eq!(back.entries().count(), 2);
    }

    #[test]
    fn git_entries_round_trip_move_and_are_checked() {
        let url = "https://git.example/mw.git";
        let (a, b) = ("a".repeat(40), "b".repeat(40));
        let mut lock = Lock::new();
        lock.insert(entry("r.example/a:1", 'c'));
        lock.set_git(&BTreeMap::from([((url.into(), "main".into()), a.clone())]));
        let text = lock.to_toml();
        assert!(text.contains("[[git]]"), "{text}");
        let back = Lock::parse(Path::new("strata.lock"), &text).unwrap();
        assert_eq!(back.to_toml(), text);
        let mut moved = back.clone();
        moved.set_git(&BTreeMap::from([((url.into(), "main".into()), b.clone())]));
        let moves = moved.git_diff(&back);
        assert_eq!(moves.len(), 1);
        assert_eq!(
            moves[0].to_string(),
            format!("{url} main: {} → {}", &a[..12], &b[..12])
        );
        // An unchanged commit keeps its entry (and its resolution time).
        let mut same = back.clone();
        same.set_git(&back.git_commits());
        assert_eq!(same, back);
        let err = |text: &str| {
            Lock::parse(Path::new("strata.lock"), text)
                .unwrap_err()
                .to_string()
        };
        let bad_url = text.replace(url, "ext::sh -c id");
        assert!(err(&bad_url).contains("is refused"), "{}", err(&bad_url));
        let bad_commit = text.replace(&a, "main");
        let e = err(&bad_commit);
        assert!(e.starts_with("strata.lock:"), "{e}");
        assert!(e.contains("not a full commit id"), "{e}");
    }

    #[test]
    fn a_bad_lock_names_file_and_line() {
        let path = Path::new("chain/strata.lock");
        let err = |text: &str| Lock::parse(path, text).unwrap_err().to_string();
        let good = entry("r.example/a:1", 'c');
        let mut text = Lock {
            entries: [(good.reference.clone(), good)].into(),
            git: BTreeMap::new(),
            lines: BTreeMap::new(),
        }
        .to_toml();
        text = text.replace(&"c".repeat(64), "zz");
        let e = err(&text);
        assert!(e.starts_with("chain/strata.lock:6:"), "{e}");
        assert!(e.contains("upstream r.example/a:1: digest"), "{e}");
        let e = err("version = 2\n");
        assert!(e.starts_with("chain/strata.lock:1:11: version 2"), "{e}");
        let e = err("version = 1\n[[upstream]]\nreference = \"x\"\n");
        assert!(e.starts_with("chain/strata.lock:2:"), "{e}");
        let e = err(
            "version = 1\n[[upstream]]\nreference = \"busybox\"\ndigest = \"sha256:00\"\n\
             registry = \"\"\nresolved = \"\"\n",
        );
        assert!(e.contains("not an upstream"), "{e}");
        let e = err("version = 1\nextra = true\n");
        assert!(e.starts_with("chain/strata.lock:2:1: unknown field"), "{e}");
    }

    #[test]
    fn coverage_and_diff() {
        let path = Path::new("strata.lock");
        let mut old = Lock::new();
        old.insert(entry("r.example/ops/corebuild:7", 'a'));
        old.insert(entry("r.example/gone:1", 'b'));
        let named: BTreeMap<String, String> = [
            ("r.example/ops/corebuild:7".into(), "a/Dockerfile:1".into()),
            ("r.example/new:2".into(), "b/Dockerfile:3".into()),
        ]
        .into();
        let e = old.check_covers(path, &named).unwrap_err().to_string();
        assert_eq!(
            e,
            "b/Dockerfile:3: r.example/new:2 is not locked in strata.lock: run `strata update r.example/new:2`"
        );
        let parsed = Lock::parse(path, &old.to_toml()).unwrap();
        let mut named2 = named.clone();
        named2.remove("r.example/new:2");
        let e = parsed.check_covers(path, &named2).unwrap_err().to_string();
        assert!(
            e.starts_with("strata.lock:") && e.contains("r.example/gone:1 is locked but no"),
            "{e}"
        );

        let mut new = old.clone();
        new.retain(|r| r != "r.example/gone:1");
        let mut moved = entry("r.example/ops/corebuild:7", 'c');
        moved.built_by = Some("operations".into());
        moved.built = Some("14:02".into());
        new.insert(moved);
        new.insert(entry("r.example/new:2", 'd'));
        let moves = new.diff(&old);
        let shown: Vec<String> = moves.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "r.example/gone:1: no longer named, unlocked (was sha256:bbbbbbbbbbbb…)",
                "r.example/new:2: locked at sha256:dddddddddddd…",
                "r.example/ops/corebuild:7: sha256:aaaaaaaaaaaa… → sha256:cccccccccccc…, rebuilt by operations 14:02",
            ]
        );
        assert!(old.diff(&old).is_empty());
    }

    #[test]
    fn upstreams_name_a_registry() {
        assert!(is_upstream("registry.acme.example/ops/corebuild"));
        assert!(is_upstream("127.0.0.1:5000/vendor/busybox:1"));
        assert!(is_upstream("docker.io/library/debian:12"));
        assert!(!is_upstream("busybox"));
        assert!(!is_upstream("localhost/acme/base"));
        assert!(!is_upstream("not a reference"));
    }
}
