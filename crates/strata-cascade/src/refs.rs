//! The store references of chain images: `<registry or localhost>/<chain>/<image>:<tag>`.

use strata_chain::Chain;
use strata_oci::Store;

/// The repository of chain image `i` (`localhost/acme/corebuild`).
pub fn repository(chain: &Chain, i: usize) -> String {
    let file = &chain.file;
    format!(
        "{}/{}/{}",
        file.registry.as_deref().unwrap_or("localhost"),
        file.name,
        file.images[i].name
    )
}

/// The reference of chain image `i` with `tag`.
pub fn tagged(chain: &Chain, i: usize, tag: &str) -> String {
    format!("{}:{tag}", repository(chain, i))
}

/// The next build number of chain image `i`: one more than the highest numeric tag in the store.
pub fn next_build_number(store: &Store, chain: &Chain, i: usize) -> Result<u64, strata_oci::Error> {
    let prefix = format!("{}:", repository(chain, i));
    let highest = store
        .refs()
        .names_with_prefix(&prefix)?
        .iter()
        .filter_map(|name| name.strip_prefix(&prefix))
        .filter_map(|tag| tag.parse::<u64>().ok())
        .max()
        .unwrap_or(0);
    Ok(highest + 1)
}
