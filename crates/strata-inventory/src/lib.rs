//! What packages an image holds, and which layer — and so which tier, team and build — put each
//! there.
//!
//! - Readers of the package databases, parsed as hostile data (sizes, counts, offsets bounded;
//!   typed errors naming the file and the place in it): [`dpkg`] (`/var/lib/dpkg/status`,
//!   distroless `status.d/`), [`apk`] (`/lib/apk/db/installed`), [`rpm`] (the sqlite
//!   `rpmdb.sqlite`, and the BerkeleyDB `Packages` of RHEL 7/8, read by hand, and the rpm header
//!   blobs both hold).
//! - [`Databases`]: the database files of one filesystem state and the [`Package`]s they list.
//! - [`inventory()`]: an image's layers walked bottom first, each package credited to the layer
//!   whose database first added it and the last that upgraded it, with that layer's chain image
//!   (tier), team, build and instruction as `strata layers` knows them ([`Inventory`]).
//! - [`version`]: each ecosystem's version order (dpkg, `rpmvercmp`, apk), for advisories.
//! - [`index`]: the package index beside the store, so that questions over thousands of images
//!   (`strata affected`) read each image's layers once, not at every run ([`index::Inventories`]).
//!
//! ```no_run
//! use strata_inspect::Catalog;
//! use strata_oci::Store;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = Store::open(".strata/store")?;
//! let catalog = Catalog::load(&store)?;
//! let image = catalog.find(&store, "acme/httpd-php")?;
//! let inventory = strata_inventory::inventory(&store, &catalog, image)?;
//! let apache = inventory.packages.iter().find(|p| p.package.name == "apache2").unwrap();
//! assert_eq!(apache.installed_by.chain_image.as_deref(), Some("acme/httpd-php"));
//! # Ok(())
//! # }
//! ```

#![deny(missing_docs)]

pub mod apk;
pub mod attribution;
pub mod databases;
pub mod dpkg;
pub mod error;
pub mod index;
pub mod limits;
pub mod osv;
pub mod package;
pub mod rpm;
pub mod sbom;
pub mod version;

pub use attribution::{
    InstalledPackage, Inventory, LayerCredit, LayerPackages, PrefixMemo, inventory,
    inventory_of_layers, inventory_with,
};
pub use databases::Databases;
pub use error::{InventoryError, Result};
pub use package::{Distro, Ecosystem, Package};
