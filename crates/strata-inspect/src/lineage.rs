//! Who added what: an image's ancestry through `org.opencontainers.image.base.digest`, and the
//! range of layers and history steps each ancestor added.

use strata_oci::Digest;

use crate::catalog::{Catalog, StoredImage};

/// One image of a lineage and what it added on top of the level below.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Level {
    /// The image's manifest digest.
    pub digest: Digest,
    /// Its display name (first tag, or `@sha256:<short>`).
    pub name: String,
    /// The chain image that built it (`acme/corebuild`), when annotated.
    pub chain_image: Option<String>,
    /// Its owning team, when annotated.
    pub owner: Option<String>,
    /// Its own layers: indexes `layers.0 .. layers.1` of the top image's layer list.
    pub layers: (usize, usize),
    /// Its own history steps: indexes `history.0 .. history.1` of the top image's history.
    pub history: (usize, usize),
}

/// An image's ancestry, base first: each level owns the layers after its base's layers.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Lineage {
    /// Bottom (the first base found in the store) to top (the image itself).
    pub levels: Vec<Level>,
}

impl Lineage {
    /// Follow `image`'s base digests down through the catalog. A base whose layers are not a
    /// prefix of its child's (a squashed build) ends the walk there: that child owns all its
    /// layers.
    pub fn of(catalog: &Catalog, image: &StoredImage) -> Lineage {
        let mut chain: Vec<&StoredImage> = vec![image];
        let mut current = image;
        while let Some(base) = current.base_digest().and_then(|d| catalog.get(&d)) {
            if chain.iter().any(|i| i.digest == base.digest) || !is_prefix(base, current) {
                break;
            }
            chain.push(base);
            current = base;
        }
        chain.reverse();
        let mut levels = Vec::with_capacity(chain.len());
        let (mut layer_start, mut history_start) = (0, 0);
        for (k, level) in chain.iter().enumerate() {
            let layer_end = if k + 1 == chain.len() {
                image.diff_ids.len()
            } else {
                level.diff_ids.len()
            };
            let history_end = if k + 1 == chain.len() {
                image.config.history.len()
            } else {
                level.config.history.len().min(image.config.history.len())
            };
            levels.push(Level {
                digest: level.digest.clone(),
                name: level.name(),
                chain_image: level.chain_image().map(str::to_string),
                owner: level.owner().map(str::to_string),
                layers: (layer_start, layer_end.max(layer_start)),
                history: (history_start, history_end.max(history_start)),
            });
            layer_start = layer_end.max(layer_start);
            history_start = history_end.max(history_start);
        }
        Lineage { levels }
    }

    /// The level that added layer `index` of the top image.
    pub fn layer_owner(&self, index: usize) -> Option<&Level> {
        self.levels
            .iter()
            .find(|l| (l.layers.0..l.layers.1).contains(&index))
    }

    /// The level that added history step `index` of the top image.
    pub fn history_owner(&self, index: usize) -> Option<&Level> {
        self.levels
            .iter()
            .find(|l| (l.history.0..l.history.1).contains(&index))
    }

    /// The number of layers the top image inherits from its base (its first own layer).
    pub fn own_layers_start(&self) -> usize {
        self.levels.last().map(|l| l.layers.0).unwrap_or(0)
    }
}

/// Are `base`'s layers a prefix of `child`'s?
fn is_prefix(base: &StoredImage, child: &StoredImage) -> bool {
    base.diff_ids.len() <= child.diff_ids.len()
        && base.diff_ids[..] == child.diff_ids[..base.diff_ids.len()]
}

/// The layers an image added on top of its base.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct OwnLayers {
    /// How many.
    pub count: usize,
    /// Their blob sizes, in bytes.
    pub size: u64,
}

/// The layers `image` added itself (those after its base's layers).
pub fn own_layers(catalog: &Catalog, image: &StoredImage) -> OwnLayers {
    let start = Lineage::of(catalog, image).own_layers_start();
    let own = &image.layers()[start.min(image.layers().len())..];
    OwnLayers {
        count: own.len(),
        size: own.iter().map(|l| l.size()).sum(),
    }
}
