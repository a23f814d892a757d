//! The package index: a persistent cache, beside the store (`STORE/.strata/packages.db`), of
//! each image's final package list by manifest digest, so that commands over many images
//! (`strata affected`, `strata advisories`) read neither every image's manifest and config nor
//! its layers again: [`Inventories`].
//!
//! A manifest digest names immutable content: its layers, and so its package databases, never
//! change. What can change is which of the bases it was built on are still in the store (gc
//! removes an untagged one, a pull brings it back), and with them the lineage that credits each
//! package to a tier; and the names (first tags) of those builds. So an entry records the lineage
//! it was computed with (the manifest digests of its levels, and the base found missing below
//! them), and is used only while those levels are all in the store and that base still is not;
//! build names are never stored but looked up in the tags at every use. Package lists are stored
//! once per distinct content, keyed by the sha256 of their bytes (checked at every read), so the
//! 5,000 builds of applications that install nothing share the one list of their middleware.
//!
//! The index is only a cache of what the layers say, filled on first use: a missing, corrupt or
//! other-version file is rebuilt, an entry that does not verify is computed again from the
//! layers, and when the file cannot be opened or written (a read-only store, a busy writer) the
//! images are read as if there were no index. Nothing fails, or answers differently, because of
//! it. Rows of images whose manifest is gone (after gc) are pruned whenever new rows are written;
//! until then they are never looked up, since only digests the tags name are asked for.
//!
//! Why SQLite (rusqlite, already linked for rpm databases) rather than one file replaced
//! atomically: a run that reads one new image adds two rows instead of rewriting every entry, a
//! run reads only the rows it needs, and concurrent runs never lose each other's rows.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OptionalExtension, TransactionBehavior, params};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use strata_inspect::{Catalog, Lineage};
use strata_oci::{Digest, Store};

use crate::attribution::{InstalledPackage, LayerCredit, PrefixMemo, inventory_with};
use crate::error::{InventoryError, Result};
use crate::package::{Distro, Package};

/// The index's file name, under the store's `.strata/` directory.
pub const INDEX_FILE: &str = "packages.db";

/// What the stored lists were made by: a row written by another strata version (whose readers
/// may have parsed differently) is not used; the tables are emptied and filled again.
const FORMAT: &str = concat!("1 strata-inventory ", env!("CARGO_PKG_VERSION"));

/// Images read through [`Catalog::load_lineage`] (their own lineage only) before a run reads the
/// whole catalog once instead: a few new builds should not cost the reading of 5,000 manifests,
/// a cold index should not cost a lineage load (which lists every tag) per image.
const LINEAGE_LOADS: usize = 8;

/// How long a write waits for another writer.
const BUSY_TIMEOUT: Duration = Duration::from_secs(2);

const META: &str =
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL);";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS images (
    digest TEXT PRIMARY KEY NOT NULL,
    package_set TEXT NOT NULL,
    levels TEXT NOT NULL,
    absent_base TEXT
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS package_sets (
    hash TEXT PRIMARY KEY NOT NULL,
    body BLOB NOT NULL
) WITHOUT ROWID;
";

/// Where the package index of `store` lives (`STORE/.strata/packages.db`).
pub fn index_path(store: &Store) -> PathBuf {
    store.state_dir().join(INDEX_FILE)
}

/// An image's final packages with who installed them: what [`crate::Inventory`] holds but its
/// per-layer changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageSet {
    /// The distribution (os-release of the final filesystem).
    pub distro: Option<Distro>,
    /// Every package, sorted by ecosystem, name, architecture, with the layers (and so the tier,
    /// team and build) that installed and last upgraded it.
    pub packages: Vec<InstalledPackage>,
}

/// One image's packages, from the index or its layers.
#[derive(Debug, Clone)]
pub struct IndexedInventory {
    /// The image's name (its first tag, else `@sha256:<short>`), as [`crate::Inventory`] names it.
    pub image: String,
    /// Its manifest digest.
    pub digest: Digest,
    /// Its packages, shared with the other images that have the same list.
    pub packages: Arc<PackageSet>,
}

/// How a run's images were answered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IndexStats {
    /// Images answered from the index.
    pub from_index: usize,
    /// Images whose layers were read (and which were then added to the index).
    pub from_layers: usize,
}

/// The packages of a store's images by manifest digest, from the package index where it holds a
/// valid entry, else read from the layers (as [`crate::inventory()`] reads them) and added to it.
/// The store's tags are read once, when it is opened; the manifests and configs only for images
/// the index lacks. New entries are written by [`Inventories::save`] (or on drop).
///
/// ```no_run
/// use strata_inventory::index::Inventories;
/// use strata_oci::Store;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store = Store::open(".strata/store")?;
/// let mut inventories = Inventories::open(&store)?;
/// for (tag, digest) in inventories.tags().to_vec() {
///     let image = inventories.get(&digest)?;
///     for p in image.packages.packages.iter().filter(|p| p.package.source_name == "openssl") {
///         println!("{tag}: {} {}", p.package.name, p.package.version);
///     }
/// }
/// inventories.save();
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Inventories<'s> {
    store: &'s Store,
    path: PathBuf,
    /// Every tag in index order, with the manifest digest it names.
    tags: Vec<(String, Digest)>,
    /// Manifest digest (as text) → its first tag.
    names: HashMap<String, String>,
    /// The index; `None` when it cannot be used in this run.
    db: Option<Connection>,
    /// The file turned out corrupt while reading it: it is recreated by `save`.
    rebuild: bool,
    /// Package lists read or made in this run, by hash, with build names filled in.
    sets: HashMap<String, Arc<PackageSet>>,
    /// Images answered in this run.
    done: HashMap<Digest, IndexedInventory>,
    /// Blobs known to be in the store (or not).
    present: HashMap<Digest, bool>,
    pending_images: Vec<Row>,
    pending_sets: HashMap<String, Vec<u8>>,
    /// The whole catalog, once enough images missed the index.
    catalog: Option<Catalog>,
    lineage_loads: usize,
    memo: PrefixMemo,
    stats: IndexStats,
}

/// One image's row.
#[derive(Debug)]
struct Row {
    digest: String,
    set: String,
    /// The lineage's manifest digests, bottom first, separated by spaces.
    levels: String,
    /// The base the bottom level names that was not in the store.
    absent: Option<String>,
}

/// A package list as stored: the credits without build names (they are looked up in the tags),
/// each credit once, the packages pointing at them.
#[derive(Debug, Serialize, Deserialize)]
struct StoredSet {
    distro: Option<Distro>,
    credits: Vec<LayerCredit>,
    /// (package, its `installed_by` credit, its `upgraded_by` credit).
    packages: Vec<(Package, usize, Option<usize>)>,
}

impl StoredSet {
    fn of(distro: Option<Distro>, packages: &[InstalledPackage]) -> StoredSet {
        let mut credits: Vec<LayerCredit> = Vec::new();
        let mut position = |credit: &LayerCredit| {
            let credit = LayerCredit {
                build: None,
                ..credit.clone()
            };
            match credits.iter().position(|c| *c == credit) {
                Some(i) => i,
                None => {
                    credits.push(credit);
                    credits.len() - 1
                }
            }
        };
        let packages = packages
            .iter()
            .map(|p| {
                (
                    p.package.clone(),
                    position(&p.installed_by),
                    p.upgraded_by.as_ref().map(&mut position),
                )
            })
            .collect();
        StoredSet {
            distro,
            credits,
            packages,
        }
    }

    /// The list with build names from `names`; `None` when a package points at no credit.
    fn resolve(&self, names: &HashMap<String, String>) -> Option<PackageSet> {
        let credit = |i: usize| {
            let mut credit = self.credits.get(i)?.clone();
            credit.build = credit
                .build_digest
                .as_deref()
                .map(|d| display_name(names, d));
            Some(credit)
        };
        let packages = self
            .packages
            .iter()
            .map(|(package, installed, upgraded)| {
                Some(InstalledPackage {
                    package: package.clone(),
                    installed_by: credit(*installed)?,
                    upgraded_by: match upgraded {
                        Some(u) => Some(credit(*u)?),
                        None => None,
                    },
                })
            })
            .collect::<Option<Vec<_>>>()?;
        Some(PackageSet {
            distro: self.distro.clone(),
            packages,
        })
    }
}

/// An image's display name as the catalog gives it: its first tag, else `@sha256:<short>`.
fn display_name(names: &HashMap<String, String>, digest: &str) -> String {
    if let Some(name) = names.get(digest) {
        return name.clone();
    }
    match digest.parse::<Digest>() {
        Ok(d) => format!("@{}:{}", d.algorithm(), d.short()),
        Err(_) => digest.to_string(),
    }
}

fn images_err(source: strata_inspect::InspectError) -> InventoryError {
    InventoryError::Images { source }
}

impl<'s> Inventories<'s> {
    /// Read the store's tags and open (creating, or rebuilding when corrupt) its package index.
    /// Fails only when the tags cannot be read; the index never makes it fail.
    pub fn open(store: &'s Store) -> Result<Inventories<'s>> {
        let tags = strata_inspect::catalog::tagged_digests(store).map_err(images_err)?;
        let mut names = HashMap::new();
        for (name, digest) in &tags {
            names
                .entry(digest.to_string())
                .or_insert_with(|| name.clone());
        }
        let path = index_path(store);
        let db = open_db(&path);
        Ok(Inventories {
            store,
            path,
            tags,
            names,
            db,
            rebuild: false,
            sets: HashMap::new(),
            done: HashMap::new(),
            present: HashMap::new(),
            pending_images: Vec::new(),
            pending_sets: HashMap::new(),
            catalog: None,
            lineage_loads: 0,
            memo: PrefixMemo::default(),
            stats: IndexStats::default(),
        })
    }

    /// Every tag of the store in index order, with the manifest digest it names (for a
    /// multi-platform index, this machine's manifest).
    pub fn tags(&self) -> &[(String, Digest)] {
        &self.tags
    }

    /// The display name of the image `digest`: its first tag, else `@sha256:<short>`.
    pub fn name(&self, digest: &Digest) -> String {
        display_name(&self.names, &digest.to_string())
    }

    /// How this run's images were answered so far.
    pub fn stats(&self) -> IndexStats {
        self.stats
    }

    /// The packages of the image with manifest digest `digest`: from the index when it holds a
    /// valid entry, else from the image's layers. Fails as [`crate::inventory()`] does for an
    /// image whose layers cannot be read or whose databases are malformed, and when the store
    /// has no such image.
    pub fn get(&mut self, digest: &Digest) -> Result<IndexedInventory> {
        if let Some(found) = self.done.get(digest) {
            return Ok(found.clone());
        }
        let found = match self.lookup(digest) {
            Some(found) => {
                self.stats.from_index += 1;
                found
            }
            None => {
                self.stats.from_layers += 1;
                self.compute(digest)?
            }
        };
        self.done.insert(digest.clone(), found.clone());
        Ok(found)
    }

    /// Write the entries this run added (pruning rows of images no longer in the store). Never
    /// fails: an index that cannot be written is left as it was, with a warning.
    pub fn save(&mut self) {
        if self.pending_images.is_empty() {
            return;
        }
        let rows = std::mem::take(&mut self.pending_images);
        let sets = std::mem::take(&mut self.pending_sets);
        if self.rebuild {
            self.db = None;
            remove_db(&self.path);
            self.db = open_db(&self.path);
            self.rebuild = false;
        }
        let Some(conn) = self.db.as_mut() else {
            return;
        };
        if let Err(e) = write(conn, self.store, &rows, &sets) {
            tracing::warn!(
                "package index {}: cannot write it: {e}",
                self.path.display()
            );
            if is_corrupt(&e) {
                self.db = None;
                remove_db(&self.path);
            }
        }
    }

    /// The index's entry for `digest`, when it has one that still holds.
    fn lookup(&mut self, digest: &Digest) -> Option<IndexedInventory> {
        let key = digest.to_string();
        let row = {
            let conn = self.db.as_ref()?;
            conn.prepare_cached(
                "SELECT package_set, levels, absent_base FROM images WHERE digest = ?1",
            )
            .and_then(|mut statement| {
                statement
                    .query_row([&key], |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, Option<String>>(2)?,
                        ))
                    })
                    .optional()
            })
        };
        let (set, levels, absent) = match row {
            Ok(row) => row?,
            Err(e) => {
                self.failed(&e);
                return None;
            }
        };
        // The lineage it was computed with must be the one the store gives now.
        let levels: Vec<Digest> = levels
            .split(' ')
            .map(str::parse)
            .collect::<std::result::Result<_, _>>()
            .ok()?;
        if levels.last() != Some(digest) || !levels.iter().all(|l| self.present(l)) {
            return None;
        }
        if let Some(absent) = absent {
            let absent: Digest = absent.parse().ok()?;
            if self.present(&absent) {
                return None;
            }
        }
        let packages = self.set(&set)?;
        Some(IndexedInventory {
            image: display_name(&self.names, &key),
            digest: digest.clone(),
            packages,
        })
    }

    /// The package list stored under `hash`, when it is there and hashes to it.
    fn set(&mut self, hash: &str) -> Option<Arc<PackageSet>> {
        if let Some(set) = self.sets.get(hash) {
            return Some(set.clone());
        }
        let body = {
            let conn = self.db.as_ref()?;
            conn.prepare_cached("SELECT body FROM package_sets WHERE hash = ?1")
                .and_then(|mut statement| {
                    statement
                        .query_row([hash], |r| r.get::<_, Vec<u8>>(0))
                        .optional()
                })
        };
        let body = match body {
            Ok(body) => body?,
            Err(e) => {
                self.failed(&e);
                return None;
            }
        };
        if hex::encode(Sha256::digest(&body)) != hash {
            return None;
        }
        let stored: StoredSet = serde_json::from_slice(&body).ok()?;
        let set = Arc::new(stored.resolve(&self.names)?);
        self.sets.insert(hash.to_string(), set.clone());
        Some(set)
    }

    /// Read `digest`'s packages from its layers and queue its entry.
    fn compute(&mut self, digest: &Digest) -> Result<IndexedInventory> {
        let store = self.store;
        if self.catalog.is_none() && self.lineage_loads >= LINEAGE_LOADS {
            self.catalog = Some(Catalog::load(store).map_err(images_err)?);
        }
        let lineage_catalog;
        let catalog = match &self.catalog {
            Some(catalog) if catalog.get(digest).is_some() => catalog,
            _ => {
                self.lineage_loads += 1;
                lineage_catalog = Catalog::load_lineage(store, digest).map_err(images_err)?;
                &lineage_catalog
            }
        };
        let image = catalog.get(digest).ok_or_else(|| InventoryError::NoImage {
            digest: digest.to_string(),
        })?;
        let inventory = inventory_with(store, catalog, image, &mut self.memo)?;
        let lineage = Lineage::of(catalog, image);
        let levels: Vec<String> = lineage
            .levels
            .iter()
            .map(|l| l.digest.to_string())
            .collect();
        // The walk stopped at the bottom level: because its base is not in the store (recorded:
        // the entry holds until that base arrives), or for a reason its content fixes.
        let absent = lineage
            .levels
            .first()
            .and_then(|bottom| catalog.get(&bottom.digest))
            .and_then(|bottom| bottom.base_digest())
            .filter(|base| catalog.get(base).is_none());
        let stored = StoredSet::of(inventory.distro, &inventory.packages);
        let resolve = |stored: &StoredSet, names| {
            stored
                .resolve(names)
                .map(Arc::new)
                .ok_or_else(|| InventoryError::NoImage {
                    digest: digest.to_string(),
                })
        };
        let set = match serde_json::to_vec(&stored) {
            Ok(body) => {
                let hash = hex::encode(Sha256::digest(&body));
                // Images with the same list share one copy (5,000 builds on one middleware
                // would otherwise hold 5,000).
                let set = match self.sets.get(&hash) {
                    Some(set) => set.clone(),
                    None => {
                        let set = resolve(&stored, &self.names)?;
                        self.sets.insert(hash.clone(), set.clone());
                        set
                    }
                };
                self.pending_sets.entry(hash.clone()).or_insert(body);
                self.pending_images.push(Row {
                    digest: digest.to_string(),
                    set: hash,
                    levels: levels.join(" "),
                    absent: absent.map(|d| d.to_string()),
                });
                set
            }
            Err(_) => resolve(&stored, &self.names)?,
        };
        Ok(IndexedInventory {
            image: display_name(&self.names, &digest.to_string()),
            digest: digest.clone(),
            packages: set,
        })
    }

    fn present(&mut self, digest: &Digest) -> bool {
        let store = self.store;
        *self
            .present
            .entry(digest.clone())
            .or_insert_with(|| store.blobs().has(digest))
    }

    /// Stop using the index for this run; a corrupt one is recreated by `save`.
    fn failed(&mut self, e: &rusqlite::Error) {
        tracing::warn!(
            "package index {}: {e}; reading the layers instead",
            self.path.display()
        );
        self.db = None;
        self.rebuild |= is_corrupt(e);
    }
}

impl Drop for Inventories<'_> {
    fn drop(&mut self) {
        self.save();
    }
}

fn is_corrupt(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase)
    )
}

/// Open the index, recreating a corrupt one; `None` when it cannot be used (a read-only store, a
/// writer holding it too long), which only costs speed.
fn open_db(path: &Path) -> Option<Connection> {
    match connect(path) {
        Ok(conn) => Some(conn),
        Err(e) if is_corrupt(&e) => {
            tracing::warn!("package index {}: {e}; rebuilding it", path.display());
            remove_db(path);
            connect(path)
                .inspect_err(|e| {
                    tracing::warn!("package index {}: cannot create it: {e}", path.display())
                })
                .ok()
        }
        Err(e) => {
            tracing::info!("package index {}: not used: {e}", path.display());
            None
        }
    }
}

fn connect(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.execute_batch(META)?;
    let format: Option<String> = conn
        .query_row("SELECT value FROM meta WHERE key = 'format'", [], |r| {
            r.get(0)
        })
        .optional()?;
    if format.as_deref() != Some(FORMAT) {
        let tx = conn.unchecked_transaction()?;
        tx.execute_batch(&format!(
            "DROP TABLE IF EXISTS images; DROP TABLE IF EXISTS package_sets; {SCHEMA}"
        ))?;
        tx.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('format', ?1)",
            [FORMAT],
        )?;
        tx.commit()?;
    }
    Ok(conn)
}

/// Remove the index and its WAL files (only ever when it is corrupt).
fn remove_db(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(name));
    }
}

/// Add `rows` and `sets`, and drop the rows of images whose manifest left the store (and the
/// lists no row uses), in one transaction.
fn write(
    conn: &mut Connection,
    store: &Store,
    rows: &[Row],
    sets: &HashMap<String, Vec<u8>>,
) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    {
        let mut put_set =
            tx.prepare("INSERT OR REPLACE INTO package_sets (hash, body) VALUES (?1, ?2)")?;
        for (hash, body) in sets {
            put_set.execute(params![hash, body])?;
        }
        let mut put = tx.prepare(
            "INSERT OR REPLACE INTO images (digest, package_set, levels, absent_base) \
             VALUES (?1, ?2, ?3, ?4)",
        )?;
        for row in rows {
            put.execute(params![row.digest, row.set, row.levels, row.absent])?;
        }
        let all: Vec<String> = tx
            .prepare("SELECT digest FROM images")?
            .query_map([], |r| r.get::<_, String>(0))?
            .collect::<rusqlite::Result<_>>()?;
        let mut delete = tx.prepare("DELETE FROM images WHERE digest = ?1")?;
        for digest in all {
            if !digest
                .parse::<Digest>()
                .is_ok_and(|d| store.blobs().has(&d))
            {
                delete.execute([&digest])?;
            }
        }
        tx.execute(
            "DELETE FROM package_sets WHERE hash NOT IN (SELECT package_set FROM images)",
            [],
        )?;
    }
    tx.commit()
}
