//! One way to name a stored image, for every command: what `strata inspect` accepts (a full or
//! short tag, a chain image's bare name such as `wordpress`, `NAME@N` for build N, `name@sha256:…`,
//! a bare digest) becomes the reference the libraries resolve. An ambiguous name is an error that
//! lists the candidates; an unknown one says how to list the images.

use anyhow::Result;
use strata_inspect::Catalog;
use strata_oci::Store;

/// The store reference `name` means: `name` itself when the store resolves it directly, else the
/// tag [`Catalog::find_tagged`] matched it to (`wordpress` → `localhost/acme/wordpress:latest`).
pub(super) fn store_reference(store: &Store, name: &str) -> Result<String> {
    match store.refs().resolve(name) {
        Ok(_) => return Ok(name.to_string()),
        Err(strata_oci::Error::ImageNotFound(_) | strata_oci::Error::InvalidReference { .. }) => {}
        Err(other) => return Err(other.into()),
    }
    let catalog = Catalog::load(store)?;
    let (image, tag) = catalog.find_tagged(store, name)?;
    Ok(match tag {
        Some(tag) => tag.to_string(),
        None => image.digest.to_string(),
    })
}
