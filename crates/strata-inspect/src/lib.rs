//! See the supply chain: what is inside a store of layered images, which layers images share,
//! which chain image (and team) added each layer, what changed between two versions, and the space
//! wasted by files later layers overwrite or delete — DockViz and dive, for OCI.
//!
//! The main type is [`Catalog`]: every tagged image of a [`strata_oci::Store`] (manifest, config read
//! as [`strata_oci::image_config::ImageConfig`], tags) plus the untagged bases they were built on. The
//! key decision: ownership comes from the store alone. strata's cascade annotates each manifest with
//! the chain image and team that built it (`dev.strata.chain.image`, `dev.strata.chain.owner`) and
//! with its base (`org.opencontainers.image.base.digest`); an image's *own* layers are those after
//! its base's layers, so following base digests down gives every layer and history step an owner
//! ([`Lineage`]).
//!
//! Views, each a plain value the CLI prints as text, DOT or JSON: [`LayerTree`] (`strata images
//! --tree`), [`history()`] (`strata history`), [`inspect()`] (`strata inspect`), [`diff()`] (`strata
//! diff`) and [`layers()`] (`strata layers`). Nothing here prints or exits.

#![deny(missing_docs)]

pub mod catalog;
pub mod diff;
pub mod error;
pub mod fsview;
pub mod history;
pub mod inspect;
pub mod layers;
pub mod lineage;
pub mod render;
pub mod size;
pub mod text;
pub mod tree;

pub use catalog::{Catalog, StoredImage};
pub use diff::{Change, FileChange, ImageDiff, LayerRef, diff};
pub use error::{InspectError, Result};
pub use fsview::FileState;
pub use history::{HistoryRow, history};
pub use inspect::{AttestationSummary, Inspection, Provenance, inspect};
pub use layers::{Fate, Inefficiency, LayerFile, LayerReport, LayersReport, layers};
pub use lineage::{Level, Lineage, OwnLayers, own_layers};
pub use tree::{LayerTree, TreeImage, TreeNode};
