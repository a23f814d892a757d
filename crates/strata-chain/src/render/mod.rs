//! Views of a chain and a plan: a text tree, Graphviz DOT, Mermaid, JSON, and the plan's text.
//!
//! Every function returns a value (a `String` or JSON); printing is the CLI's job.

mod dot;
mod json;
mod mermaid;
mod plan_text;
mod tree;

pub use dot::dot;
pub use json::{ChainDoc, JSON_SCHEMA, document, json};
pub use mermaid::mermaid;
pub use plan_text::{headline, plan_text};
pub use tree::{tree, tree_with_notes};

use crate::graph::UseSite;

/// A short note for an edge that is not a FROM: `COPY --from`, `RUN --mount`.
fn edge_note(uses: &[UseSite]) -> Option<&'static str> {
    use crate::graph::UseKind;
    if uses.is_empty() || uses.iter().any(|u| u.kind == UseKind::From) {
        return None;
    }
    if uses.iter().any(|u| u.kind == UseKind::CopyFrom) {
        Some("COPY --from")
    } else {
        Some("RUN --mount")
    }
}

/// The users of one external reference grouped by image: (image, its uses), in image order.
/// `users` is sorted by image (as [`crate::ImageGraph::external`] keeps it).
fn by_image(users: &[(usize, UseSite)]) -> Vec<(usize, Vec<UseSite>)> {
    users
        .chunk_by(|a, b| a.0 == b.0)
        .map(|group| (group[0].0, group.iter().map(|(_, s)| s.clone()).collect()))
        .collect()
}

/// Colours for teams, cycled in team-name order.
const PALETTE: &[&str] = &[
    "#cfe2f3", "#d9ead3", "#fff2cc", "#f4cccc", "#d9d2e9", "#fce5cd", "#d0e0e3", "#ead1dc",
];
