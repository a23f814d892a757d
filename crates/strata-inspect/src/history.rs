//! `strata history`: each history step of an image with its layer and owner.

use serde::Serialize;

use crate::catalog::{Catalog, StoredImage};
use crate::lineage::Lineage;

/// One history step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryRow {
    /// RFC 3339 time of the step.
    pub created: Option<String>,
    /// The instruction that made it.
    pub created_by: Option<String>,
    /// Free text.
    pub comment: Option<String>,
    /// True when the step added no layer.
    pub empty_layer: bool,
    /// The layer it made: index in the image's layer list.
    pub layer: Option<usize>,
    /// That layer's blob digest.
    pub digest: Option<String>,
    /// That layer's blob size in bytes (0 for empty steps).
    pub size: u64,
    /// The stored image the step belongs to (its own steps are after its base's).
    pub image: Option<String>,
    /// The chain image that added the step (`acme/corebuild`).
    pub chain_image: Option<String>,
    /// The team owning that chain image.
    pub owner: Option<String>,
}

/// The history of `image`, oldest step first. Layers are matched to the steps that are not
/// `empty_layer`, in order.
pub fn history(catalog: &Catalog, image: &StoredImage) -> Vec<HistoryRow> {
    let lineage = Lineage::of(catalog, image);
    let mut next_layer = 0;
    image
        .config
        .history
        .iter()
        .enumerate()
        .map(|(i, step)| {
            let layer = (!step.empty_layer && next_layer < image.layers().len()).then(|| {
                next_layer += 1;
                next_layer - 1
            });
            let descriptor = layer.map(|l| &image.layers()[l]);
            let level = lineage.history_owner(i);
            HistoryRow {
                created: step.created.clone(),
                created_by: step.created_by.clone(),
                comment: step.comment.clone(),
                empty_layer: step.empty_layer,
                layer,
                digest: descriptor.map(|d| d.digest().to_string()),
                size: descriptor.map(|d| d.size()).unwrap_or(0),
                image: level.map(|l| l.name.clone()),
                chain_image: level.and_then(|l| l.chain_image.clone()),
                owner: level.and_then(|l| l.owner.clone()),
            }
        })
        .collect()
}
