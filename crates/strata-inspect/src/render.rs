//! The layer tree as text (like `dockviz images -t`), Graphviz DOT and JSON. Functions return
//! strings or values; printing is the CLI's job.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::size::{fit, human};
use crate::tree::{LayerTree, TreeImage, TreeNode};

/// The JSON schema name of [`tree_json`]'s document.
pub const TREE_SCHEMA: &str = "strata.layer-tree/v1";

/// How to draw text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextOptions {
    /// Columns available (lines are fitted to it; 100 is the target).
    pub width: usize,
    /// ANSI colours (only on a terminal).
    pub color: bool,
    /// Each layer's own size instead of the cumulative size.
    pub incremental: bool,
}

impl Default for TextOptions {
    fn default() -> Self {
        TextOptions {
            width: 100,
            color: false,
            incremental: false,
        }
    }
}

/// ANSI styles, or nothing.
#[derive(Clone, Copy)]
pub struct Paint(bool);

impl Paint {
    /// Paint when `on`.
    pub fn new(on: bool) -> Paint {
        Paint(on)
    }

    /// Whether colours are on.
    pub fn is_on(self) -> bool {
        self.0
    }

    fn wrap(self, code: &str, text: &str) -> String {
        if self.0 {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    /// Bold green: images.
    pub fn image(self, text: &str) -> String {
        self.wrap("1;32", text)
    }

    /// Yellow: digests.
    pub fn digest(self, text: &str) -> String {
        self.wrap("33", text)
    }

    /// Cyan: owners.
    pub fn owner(self, text: &str) -> String {
        self.wrap("36", text)
    }

    /// Dim: secondary text.
    pub fn dim(self, text: &str) -> String {
        self.wrap("2", text)
    }

    /// Red: removals and waste.
    pub fn bad(self, text: &str) -> String {
        self.wrap("31", text)
    }

    /// Green: additions.
    pub fn good(self, text: &str) -> String {
        self.wrap("32", text)
    }
}

/// `localhost/acme/corebuild:latest, :3` — tags of one repository share the name.
pub fn tag_label(image: &TreeImage) -> String {
    if image.tags.is_empty() {
        return format!("@{}:{}", image.digest.algorithm(), image.digest.short());
    }
    let mut out = String::new();
    let mut last_repo: Option<&str> = None;
    for tag in &image.tags {
        let (repo, t) = split_tag(tag);
        if !out.is_empty() {
            out.push_str(", ");
        }
        match (last_repo, t) {
            (Some(prev), Some(t)) if prev == repo => {
                out.push(':');
                out.push_str(t);
            }
            _ => out.push_str(tag),
        }
        last_repo = Some(repo);
    }
    out
}

/// Split `host/repo:tag` at the tag's colon (not a registry port's).
fn split_tag(reference: &str) -> (&str, Option<&str>) {
    match reference.rfind(':') {
        Some(i) if !reference[i..].contains('/') => (&reference[..i], Some(&reference[i + 1..])),
        _ => (reference, None),
    }
}

/// The owner column: `acme/corebuild (operations)`, or `-`.
fn owner_label(node: &TreeNode) -> String {
    match (&node.chain_image, &node.owner) {
        (Some(image), Some(team)) => format!("{image} ({team})"),
        (Some(image), None) => image.clone(),
        _ => "-".to_string(),
    }
}

/// The tree as text: `layer:` lines with short diff_id, size, owner and created_by; `img:` lines
/// where images end. Each line fits `options.width` columns.
pub fn tree_text(tree: &LayerTree, options: &TextOptions) -> String {
    let paint = Paint::new(options.color);
    let mut out = String::new();
    let owner_width = tree
        .nodes
        .iter()
        .map(|n| owner_label(n).chars().count())
        .max()
        .unwrap_or(1)
        .min(32);
    // Iterative depth-first walk: (node, prefix for the node, prefix for its children).
    let mut stack: Vec<(usize, String, String)> = Vec::new();
    let roots = &tree.roots;
    for (k, &r) in roots.iter().enumerate().rev() {
        let last = k + 1 == roots.len();
        stack.push((
            r,
            (if last { "└─" } else { "├─" }).to_string(),
            (if last { "  " } else { "│ " }).to_string(),
        ));
    }
    while let Some((i, glyph, indent)) = stack.pop() {
        let node = &tree.nodes[i];
        let size = if options.incremental {
            node.size
        } else {
            node.cumulative_size
        };
        // Fixed part: glyph, `layer: `, short digest, size; then the owner and created_by share
        // what is left of the width (the owner column shrinks before the line overflows).
        let fixed = glyph.chars().count() + 7 + 12 + 2 + 8 + 2;
        let owner_room = owner_width.min(options.width.saturating_sub(fixed + 2));
        let owner = fit(&owner_label(node), owner_room);
        let room = options.width.saturating_sub(fixed + owner_room + 2);
        let created = fit(node.created_by.as_deref().unwrap_or(""), room);
        let line = format!(
            "{glyph}layer: {}  {:>8}  {}  {}",
            paint.digest(node.diff_id.short()),
            human(size),
            paint.owner(&format!("{owner:<owner_room$}")),
            paint.dim(&created)
        );
        let _ = writeln!(out, "{}", line.trim_end());
        let count = node.images.len() + node.children.len();
        for (k, image) in node.images.iter().enumerate() {
            let last = k + 1 == count;
            let g = if last { "└─" } else { "├─" };
            let label = tag_label(image);
            let room = options
                .width
                .saturating_sub(indent.chars().count() + 7 + human(image.size).len() + 2);
            let _ = writeln!(
                out,
                "{indent}{g}{} {}  {}",
                paint.image("img:"),
                paint.image(&fit(&label, room)),
                paint.dim(&human(image.size))
            );
        }
        for (k, &c) in node.children.iter().enumerate().rev() {
            let last = node.images.len() + k + 1 == count;
            let (g, more) = if last {
                ("└─", "  ")
            } else {
                ("├─", "│ ")
            };
            stack.push((c, format!("{indent}{g}"), format!("{indent}{more}")));
        }
    }
    for image in &tree.empty {
        let _ = writeln!(
            out,
            "{} {}  (no layers)",
            paint.image("img:"),
            paint.image(&tag_label(image))
        );
    }
    out
}

/// Escape a DOT string.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' | '\r' | '\t' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Colours for teams, cycled in team-name order (as `strata graph --format dot`).
const PALETTE: &[&str] = &[
    "#cfe2f3", "#d9ead3", "#fff2cc", "#f4cccc", "#d9d2e9", "#fce5cd", "#d0e0e3", "#ead1dc",
];

/// The tree as Graphviz DOT (`dot -Tsvg`): `layer:` ellipses filled by team, `img:` boxes.
pub fn tree_dot(tree: &LayerTree, incremental: bool) -> String {
    let teams: BTreeMap<&str, &str> = {
        let mut names: Vec<&str> = tree
            .nodes
            .iter()
            .filter_map(|n| n.owner.as_deref())
            .collect();
        names.sort_unstable();
        names.dedup();
        names
            .into_iter()
            .enumerate()
            .map(|(k, t)| (t, PALETTE[k % PALETTE.len()]))
            .collect()
    };
    let mut out = String::from(
        "digraph layers {\n  rankdir=TB;\n  node [fontname=\"monospace\", fontsize=10];\n",
    );
    let mut image_id = 0;
    for (i, node) in tree.nodes.iter().enumerate() {
        let size = if incremental {
            node.size
        } else {
            node.cumulative_size
        };
        let mut label = format!("layer: {}\\n{}", node.diff_id.short(), human(size));
        if let Some(created) = &node.created_by {
            label.push_str("\\n");
            label.push_str(&esc(&fit(created, 48)));
        }
        if node.chain_image.is_some() {
            label.push_str("\\n");
            label.push_str(&esc(&owner_label(node)));
        }
        let fill = node
            .owner
            .as_deref()
            .and_then(|t| teams.get(t))
            .copied()
            .unwrap_or("#eeeeee");
        let _ = writeln!(
            out,
            "  l{i} [shape=ellipse, style=filled, fillcolor=\"{fill}\", label=\"{label}\"];"
        );
        for &c in &node.children {
            let _ = writeln!(out, "  l{i} -> l{c};");
        }
        for image in &node.images {
            let _ = writeln!(
                out,
                "  i{image_id} [shape=box, style=\"filled,bold\", fillcolor=\"#ffffff\", label=\"img: {}\\n{}\"];",
                esc(&tag_label(image)),
                human(image.size)
            );
            let _ = writeln!(out, "  l{i} -> i{image_id} [style=dashed, arrowhead=none];");
            image_id += 1;
        }
    }
    for image in &tree.empty {
        let _ = writeln!(
            out,
            "  i{image_id} [shape=box, label=\"img: {} (no layers)\"];",
            esc(&tag_label(image))
        );
        image_id += 1;
    }
    out.push_str("}\n");
    out
}

/// The tree as JSON (schema [`TREE_SCHEMA`]): nested `layer` nodes with `children`, `images` where
/// images end, sizes in bytes (`size` incremental, `cumulativeSize`).
pub fn tree_json(tree: &LayerTree) -> Value {
    fn node(tree: &LayerTree, i: usize) -> Value {
        let n = &tree.nodes[i];
        let mut v = serde_json::to_value(n).expect("tree nodes serialize");
        v["kind"] = json!("layer");
        v["children"] = Value::Array(n.children.iter().map(|&c| node(tree, c)).collect());
        v
    }
    json!({
        "schema": TREE_SCHEMA,
        "images": tree.image_count(),
        "layers": tree.nodes.len(),
        "roots": tree.roots.iter().map(|&r| node(tree, r)).collect::<Vec<_>>(),
        "empty": tree.empty,
    })
}
