//! Attribution: walk an image's layers bottom first, keep the package database files as each layer
//! leaves them (whiteouts, opaque directories, replaced parents applied), read the databases after
//! every layer that touched them, and credit each package to the first layer whose database adds it
//! (`installed_by`) and the last one that changed its version (`upgraded_by`).
//!
//! Scanners that credit a package to the last layer that wrote the database (syft#645) blame the
//! application tier for everything a base installed; here an `apt-get install` in the app tier
//! rewrites `/var/lib/dpkg/status` but is credited only with what it added or upgraded.

use std::collections::HashMap;
use std::io::Read;

use oci_spec::image::Descriptor;
use serde::{Deserialize, Serialize};
use strata_inspect::{Catalog, Lineage, StoredImage};
use strata_oci::Store;
use strata_oci::fsindex::normalise;
use strata_oci::tar::{OPAQUE_WHITEOUT, WHITEOUT_PREFIX};

use crate::databases::{DPKG_STATUS_D, Databases, OS_RELEASE, RPM_DATABASES};
use crate::error::{InventoryError, Result};
use crate::limits::{MAX_DB_FILE, MAX_STATUS_D_FILES, MAX_TOTAL_DB_BYTES};
use crate::package::{Distro, Ecosystem, Package};

/// Who made one layer: its place, the step that made it, and the chain image (tier), team and
/// build that added it, as `strata layers` attributes layers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LayerCredit {
    /// Position in the image, 0 = bottom.
    pub index: usize,
    /// The layer blob's digest.
    pub digest: String,
    /// The history step (Dockerfile instruction) that made it.
    pub created_by: Option<String>,
    /// The chain image (tier) that added it (`acme/corebuild`).
    pub chain_image: Option<String>,
    /// Its owning team.
    pub owner: Option<String>,
    /// The build that added it: that image's name (first tag) in the store.
    pub build: Option<String>,
    /// That build's manifest digest.
    pub build_digest: Option<String>,
}

/// A package of the image with the layers that installed and last upgraded it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InstalledPackage {
    /// The package as the final database lists it.
    #[serde(flatten)]
    pub package: Package,
    /// The first layer whose database added it.
    pub installed_by: LayerCredit,
    /// The last layer that changed its version, when one did after it was installed.
    pub upgraded_by: Option<LayerCredit>,
}

/// What one layer did to the package set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LayerPackages {
    /// The layer.
    pub layer: LayerCredit,
    /// Whether it wrote or deleted a package database file.
    pub touched_databases: bool,
    /// Packages it added.
    pub added: Vec<Package>,
    /// Packages whose version it changed: (before, after).
    pub upgraded: Vec<(Package, Package)>,
    /// Packages it removed.
    pub removed: Vec<Package>,
}

/// What packages an image holds and which layer put each there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Inventory {
    /// The image's name.
    pub image: String,
    /// Its manifest digest.
    pub digest: String,
    /// Its distribution (os-release of the final filesystem).
    pub distro: Option<Distro>,
    /// Every package, sorted by ecosystem, name, architecture.
    pub packages: Vec<InstalledPackage>,
    /// Per layer, bottom first, what it changed.
    pub layers: Vec<LayerPackages>,
}

impl Inventory {
    /// The packages whose source package is `source` (what an advisory names).
    pub fn by_source<'a>(&'a self, source: &'a str) -> impl Iterator<Item = &'a InstalledPackage> {
        self.packages
            .iter()
            .filter(move |p| p.package.source_name == source)
    }
}

/// The inventory of a stored image, its layers credited through the catalog's lineage.
///
/// ```no_run
/// use strata_inspect::Catalog;
/// use strata_oci::Store;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store = Store::open(".strata/store")?;
/// let catalog = Catalog::load(&store)?;
/// let image = catalog.find(&store, "acme/wordpress")?;
/// let inventory = strata_inventory::inventory(&store, &catalog, image)?;
/// for p in inventory.by_source("openssl") {
///     println!(
///         "{} {} installed by {} ({})",
///         p.package.name,
///         p.package.version,
///         p.installed_by.chain_image.as_deref().unwrap_or("?"),
///         p.installed_by.owner.as_deref().unwrap_or("?"),
///     );
/// }
/// # Ok(())
/// # }
/// ```
pub fn inventory(store: &Store, catalog: &Catalog, image: &StoredImage) -> Result<Inventory> {
    inventory_with(store, catalog, image, &mut PrefixMemo::default())
}

/// The database states after prefixes of layers that images share (a base's layers under its
/// builds), so that the inventories of many images on one base read the base's layers once:
/// [`inventory_with`]. Only proper prefixes of the images walked are kept, so its memory grows
/// with the number of distinct bases, not of images.
#[derive(Debug, Default)]
pub struct PrefixMemo {
    states: HashMap<String, Walk>,
}

/// The walk's state after some layers.
#[derive(Debug, Clone, Default)]
struct Walk {
    dbs: Databases,
    current: HashMap<PackageKey, Credited>,
    per_layer: Vec<LayerPackages>,
}

/// [`inventory()`], reusing (and filling) `memo`: the layers an image shares with images already
/// walked are not read again. The result is the same as [`inventory()`]'s.
pub fn inventory_with(
    store: &Store,
    catalog: &Catalog,
    image: &StoredImage,
    memo: &mut PrefixMemo,
) -> Result<Inventory> {
    let lineage = Lineage::of(catalog, image);
    let created = image.layer_created_by();
    let credits = image
        .layers()
        .iter()
        .enumerate()
        .map(|(index, layer)| {
            let level = lineage.layer_owner(index);
            LayerCredit {
                index,
                digest: layer.digest().to_string(),
                created_by: created.get(index).cloned().flatten(),
                chain_image: level.and_then(|l| l.chain_image.clone()),
                owner: level.and_then(|l| l.owner.clone()),
                build: level.map(|l| l.name.clone()),
                build_digest: level.map(|l| l.digest.to_string()),
            }
        })
        .collect();
    walk(
        store,
        &image.name(),
        &image.digest.to_string(),
        image.layers(),
        credits,
        Some(memo),
    )
}

/// The inventory of any list of stored layers, each credited as `credits` says (one per layer).
pub fn inventory_of_layers(
    store: &Store,
    image: &str,
    digest: &str,
    layers: &[Descriptor],
    credits: Vec<LayerCredit>,
) -> Result<Inventory> {
    walk(store, image, digest, layers, credits, None)
}

/// The memo key of the first `n` layers: their digests and their credits (the same layers credited
/// to other builds are another prefix).
fn prefix_key(layers: &[Descriptor], credits: &[LayerCredit], n: usize) -> String {
    let mut key = String::new();
    for (layer, credit) in layers[..n].iter().zip(credits) {
        key.push_str(layer.digest().as_ref());
        key.push('|');
        key.push_str(credit.build_digest.as_deref().unwrap_or(""));
        key.push(';');
    }
    key
}

fn walk(
    store: &Store,
    image: &str,
    digest: &str,
    layers: &[Descriptor],
    credits: Vec<LayerCredit>,
    mut memo: Option<&mut PrefixMemo>,
) -> Result<Inventory> {
    // Resume after the longest proper prefix already walked.
    let mut start = 0;
    let mut state = Walk::default();
    if let Some(memo) = memo.as_deref() {
        for n in (1..layers.len()).rev() {
            if let Some(found) = memo.states.get(&prefix_key(layers, &credits, n)) {
                state = found.clone();
                start = n;
                break;
            }
        }
    }
    let Walk {
        mut dbs,
        mut current,
        mut per_layer,
    } = state;
    for (index, (layer, credit)) in layers.iter().zip(credits.iter()).enumerate().skip(start) {
        if index > start
            && let Some(memo) = memo.as_deref_mut()
        {
            let key = prefix_key(layers, &credits, index);
            memo.states.entry(key).or_insert_with(|| Walk {
                dbs: dbs.clone(),
                current: current.clone(),
                per_layer: per_layer.clone(),
            });
        }
        let touched = apply_layer(store, image, index, layer, &mut dbs)?;
        let mut changes = LayerPackages {
            layer: credit.clone(),
            touched_databases: touched,
            added: Vec::new(),
            upgraded: Vec::new(),
            removed: Vec::new(),
        };
        if touched {
            let packages = dbs.packages().map_err(|e| InventoryError::InLayer {
                image: image.to_string(),
                index,
                source: Box::new(e),
            })?;
            let mut next = HashMap::with_capacity(packages.len());
            for package in packages {
                let key = (
                    package.ecosystem,
                    package.name.clone(),
                    package.arch.clone(),
                );
                let entry = match current.remove(&key) {
                    Some((old, installed, upgraded)) => {
                        if old.version != package.version {
                            changes.upgraded.push((old, package.clone()));
                            (package, installed, Some(index))
                        } else {
                            (package, installed, upgraded)
                        }
                    }
                    None => {
                        changes.added.push(package.clone());
                        (package, index, None)
                    }
                };
                next.insert(key, entry);
            }
            changes.removed = current.into_values().map(|(p, _, _)| p).collect();
            changes.removed.sort();
            current = next;
        }
        per_layer.push(changes);
    }
    let mut packages: Vec<InstalledPackage> = current
        .into_values()
        .map(|(package, installed, upgraded)| InstalledPackage {
            package,
            installed_by: credits[installed].clone(),
            upgraded_by: upgraded.map(|u| credits[u].clone()),
        })
        .collect();
    packages.sort_by(|a, b| a.package.cmp(&b.package));
    Ok(Inventory {
        image: image.to_string(),
        digest: digest.to_string(),
        distro: dbs.distro(),
        packages,
        layers: per_layer,
    })
}

/// A package's identity across versions: ecosystem, name, architecture.
type PackageKey = (Ecosystem, String, String);
/// A package with the layers that installed and last upgraded it.
type Credited = (Package, usize, Option<usize>);

enum Write {
    Content(Vec<u8>),
    Link(String),
    Replace,
}

/// Apply one layer to the tracked files; whether it changed any.
fn apply_layer(
    store: &Store,
    image: &str,
    index: usize,
    layer: &Descriptor,
    dbs: &mut Databases,
) -> Result<bool> {
    let digest = layer.digest().to_string();
    let store_err = |source| InventoryError::Layer {
        image: image.to_string(),
        index,
        digest: digest.clone(),
        source,
    };
    let stream_err = |source| InventoryError::LayerStream {
        image: image.to_string(),
        index,
        digest: digest.clone(),
        source,
    };
    let mut archive = store.open_layer(layer).map_err(store_err)?;
    let mut deletions: Vec<(String, bool)> = Vec::new();
    let mut writes: Vec<(String, Write)> = Vec::new();
    let mut budget = MAX_TOTAL_DB_BYTES.saturating_sub(dbs.total_bytes());
    let mut tracked_writes = 0usize;
    for entry in archive.entries().map_err(stream_err)? {
        let mut entry = entry.map_err(stream_err)?;
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        if raw.split('/').any(|c| c == "..") {
            continue; // never a database path; the unpacker refuses it anyway
        }
        let path = normalise(&raw);
        let (dir, name) = match path.rfind('/') {
            Some(0) => ("/".to_string(), path[1..].to_string()),
            Some(i) => (path[..i].to_string(), path[i + 1..].to_string()),
            None => ("/".to_string(), path.clone()),
        };
        if name == OPAQUE_WHITEOUT {
            deletions.push((dir, true));
            continue;
        }
        if let Some(hidden) = name.strip_prefix(WHITEOUT_PREFIX) {
            let target = if dir == "/" {
                format!("/{hidden}")
            } else {
                format!("{dir}/{hidden}")
            };
            deletions.push((target, false));
            continue;
        }
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            continue;
        }
        if Databases::is_tracked(&path) && (kind.is_file() || kind == tar::EntryType::Continuous) {
            let size = entry.size();
            let in_layer = |source| InventoryError::InLayer {
                image: image.to_string(),
                index,
                source: Box::new(source),
            };
            if size > MAX_DB_FILE {
                return Err(in_layer(crate::error::too_large(
                    &path,
                    "size",
                    size,
                    MAX_DB_FILE,
                )));
            }
            if size > budget {
                return Err(in_layer(crate::error::too_large(
                    &path,
                    "the size of the package database files together",
                    MAX_TOTAL_DB_BYTES - budget + size,
                    MAX_TOTAL_DB_BYTES,
                )));
            }
            budget -= size;
            tracked_writes += 1;
            if tracked_writes > MAX_STATUS_D_FILES + OS_RELEASE.len() + RPM_DATABASES.len() + 2 {
                return Err(in_layer(crate::error::too_large(
                    DPKG_STATUS_D,
                    "files",
                    tracked_writes as u64,
                    MAX_STATUS_D_FILES as u64,
                )));
            }
            let mut content = Vec::with_capacity(size as usize);
            (&mut entry)
                .take(MAX_DB_FILE)
                .read_to_end(&mut content)
                .map_err(stream_err)?;
            writes.push((path, Write::Content(content)));
        } else if Databases::is_tracked(&path) && kind.is_hard_link() {
            let target = entry
                .link_name_bytes()
                .map(|l| normalise(&String::from_utf8_lossy(&l)))
                .unwrap_or_default();
            writes.push((path, Write::Link(target)));
        } else {
            // Any other entry replaces what was at its path, and a directory's contents with it.
            writes.push((path, Write::Replace));
        }
    }
    // Read to the end so the blob's digest is checked.
    let reader = archive.into_inner().into_inner();
    reader.finish().map_err(store_err)?;

    let mut changed = false;
    for (path, opaque) in deletions {
        changed |= if opaque {
            dbs.clear_dir(&path)
        } else {
            dbs.remove_tree(&path)
        };
    }
    for (path, write) in writes {
        match write {
            Write::Content(content) => {
                dbs.remove_tree(&path);
                dbs.insert(&path, content);
                changed = true;
            }
            Write::Link(target) => {
                let content = dbs.get(&target).map(<[u8]>::to_vec);
                changed |= dbs.remove_tree(&path);
                if let Some(content) = content {
                    dbs.insert(&path, content);
                    changed = true;
                }
            }
            Write::Replace => changed |= dbs.remove_tree(&path),
        }
    }
    Ok(changed)
}
