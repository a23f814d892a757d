//! One way to name a stored image, for every command: what `strata inspect` accepts (a full or
//! short tag, a chain image's bare name such as `wordpress`, `NAME@N` for build N, `name@sha256:…`,
//! a bare digest) becomes the reference the libraries resolve. An ambiguous name is an error that
//! lists the candidates; an unknown one says how to list the images.

use anyhow::Result;
use strata_inspect::Catalog;
use strata_oci::{Reference, Store};

/// The store reference `name` means: `name` itself when the store resolves it directly, else the
/// tag of the image [`Catalog::find`] picks (the tag the user asked for, else its first tag), else
/// its digest.
pub(super) fn store_reference(store: &Store, name: &str) -> Result<String> {
    match store.resolve(name) {
        Ok(_) => return Ok(name.to_string()),
        Err(strata_oci::Error::ImageNotFound(_) | strata_oci::Error::InvalidReference { .. }) => {}
        Err(other) => return Err(other.into()),
    }
    let catalog = Catalog::load(store)?;
    let image = catalog.find(store, name)?;
    // `corebuild@3` asks for tag 3, `corebuild:dev` for dev, `corebuild` for latest.
    let wanted = match name.rsplit_once('@') {
        Some((_, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => n,
        _ => match name.rsplit_once(':') {
            Some((_, tag)) if !tag.contains('/') => tag,
            _ => "latest",
        },
    };
    let tag = image
        .tags
        .iter()
        .find(|t| Reference::parse(t).is_ok_and(|r| r.tag() == Some(wanted)))
        .or_else(|| image.tags.first());
    Ok(match tag {
        Some(tag) => tag.clone(),
        None => image.digest.to_string(),
    })
}
