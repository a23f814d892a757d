//! The layer tree of a store (`strata images --tree`): images as paths of diff_ids from the root,
//! shared prefixes merged, so a layer that several images share appears once.

use std::collections::HashMap;

use serde::Serialize;
use strata_oci::Digest;

use crate::catalog::{Catalog, StoredImage};
use crate::lineage::Lineage;

/// One layer node: a diff_id reached through a given prefix of layers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TreeNode {
    /// The uncompressed layer digest (`rootfs.diff_ids`).
    pub diff_id: Digest,
    /// The layer blob's digest (as stored, usually compressed).
    pub blob: String,
    /// The layer blob's size in bytes.
    pub size: u64,
    /// The size of this layer and every layer below it.
    pub cumulative_size: u64,
    /// The history step that made the layer.
    pub created_by: Option<String>,
    /// The chain image that added it (`acme/corebuild`), from the manifest annotations of the image
    /// whose own layer it is.
    pub chain_image: Option<String>,
    /// The team that owns that chain image.
    pub owner: Option<String>,
    /// Images whose last layer this is.
    pub images: Vec<TreeImage>,
    /// Child layer nodes (indexes into [`LayerTree::nodes`]).
    #[serde(skip)]
    pub children: Vec<usize>,
    /// The depth: 0 for a bottom layer.
    pub depth: usize,
}

/// An image ending at a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TreeImage {
    /// Manifest digest.
    pub digest: Digest,
    /// Full references tagging it.
    pub tags: Vec<String>,
    /// Manifest + config + layers, in bytes.
    pub size: u64,
}

/// Every tagged image as a path of layers; nodes shared by several images appear once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LayerTree {
    /// Every node; parents come before their children.
    pub nodes: Vec<TreeNode>,
    /// Bottom layers (indexes into `nodes`), sorted.
    pub roots: Vec<usize>,
    /// Tagged images without layers (they have no place in the tree).
    pub empty: Vec<TreeImage>,
}

impl LayerTree {
    /// The tree of every tagged image, or, with `only`, of that image and the images built on
    /// it (those whose layers start with its layers).
    pub fn build(catalog: &Catalog, only: Option<&StoredImage>) -> LayerTree {
        let mut tree = LayerTree::default();
        let mut index: HashMap<(Option<usize>, &Digest), usize> = HashMap::new();
        for image in catalog.tagged() {
            if let Some(only) = only
                && !image.diff_ids.starts_with(&only.diff_ids)
            {
                continue;
            }
            let entry = TreeImage {
                digest: image.digest.clone(),
                tags: image.tags.clone(),
                size: image.size(),
            };
            if image.diff_ids.is_empty() {
                tree.empty.push(entry);
                continue;
            }
            let lineage = Lineage::of(catalog, image);
            let created_by = image.layer_created_by();
            let mut parent = None;
            let mut cumulative = 0;
            for (d, diff_id) in image.diff_ids.iter().enumerate() {
                let layer = &image.layers()[d];
                cumulative += layer.size();
                let node = *index.entry((parent, diff_id)).or_insert_with(|| {
                    tree.nodes.push(TreeNode {
                        diff_id: diff_id.clone(),
                        blob: layer.digest().to_string(),
                        size: layer.size(),
                        cumulative_size: cumulative,
                        created_by: None,
                        chain_image: None,
                        owner: None,
                        images: Vec::new(),
                        children: Vec::new(),
                        depth: d,
                    });
                    let id = tree.nodes.len() - 1;
                    match parent {
                        Some(p) => tree.nodes[p].children.push(id),
                        None => tree.roots.push(id),
                    }
                    id
                });
                let n = &mut tree.nodes[node];
                if n.created_by.is_none() {
                    n.created_by.clone_from(&created_by[d]);
                }
                if n.chain_image.is_none()
                    && let Some(level) = lineage.layer_owner(d)
                    && level.chain_image.is_some()
                {
                    n.chain_image.clone_from(&level.chain_image);
                    n.owner.clone_from(&level.owner);
                }
                parent = Some(node);
            }
            if let Some(last) = parent {
                tree.nodes[last].images.push(entry);
            }
        }
        let nodes = &tree.nodes;
        let key = |&i: &usize| (nodes[i].chain_image.clone(), nodes[i].diff_id.clone());
        tree.roots.sort_by_key(key);
        let mut sorted: Vec<Vec<usize>> = Vec::with_capacity(nodes.len());
        for n in nodes {
            let mut children = n.children.clone();
            children.sort_by_key(key);
            sorted.push(children);
        }
        for (n, children) in tree.nodes.iter_mut().zip(sorted) {
            n.children = children;
        }
        tree
    }

    /// How many images the tree shows.
    pub fn image_count(&self) -> usize {
        self.nodes.iter().map(|n| n.images.len()).sum::<usize>() + self.empty.len()
    }
}
