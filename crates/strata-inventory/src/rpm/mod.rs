//! rpm's databases: the sqlite `rpmdb.sqlite` (rpm ≥ 4.16: Fedora 33+, RHEL 9) and the BerkeleyDB
//! hash file `Packages` (RHEL 7 and 8). Both hold one rpm header blob per installed package
//! ([`header`]).

pub mod bdb;
pub mod header;
pub mod sqlite;

use crate::error::{InventoryError, Result};
use crate::limits::MAX_PACKAGES;
use crate::package::Package;

/// The packages of a list of header blobs (`gpg-pubkey` pseudo-packages, which are imported keys,
/// are left out).
pub(crate) fn packages_of<'a>(
    file: &str,
    blobs: impl IntoIterator<Item = (String, &'a [u8])>,
) -> Result<Vec<Package>> {
    let mut out = Vec::new();
    for (at, blob) in blobs {
        let header = header::Header::parse(blob).map_err(|reason| InventoryError::Malformed {
            file: file.to_string(),
            at,
            reason,
        })?;
        if let Some(package) = header.package() {
            if out.len() >= MAX_PACKAGES {
                return Err(crate::error::too_large(
                    file,
                    "packages",
                    out.len() as u64 + 1,
                    MAX_PACKAGES as u64,
                ));
            }
            out.push(package);
        }
    }
    Ok(out)
}
