//! The text tree: roots (bought bases, images with no parent, external references) at the top,
//! children indented with tree glyphs, one line per image with owner, tier and status. An image
//! with several parents appears under each; the second time it reads `(see above)`.

use crate::chain::Chain;
use crate::status::Statuses;

struct Line {
    prefix: String,
    label: String,
    columns: Option<[String; 3]>,
}

/// The chain as a tree, one line per image: name, owner, tier, status.
pub fn tree(chain: &Chain, statuses: &Statuses) -> String {
    tree_with_notes(chain, statuses, &[])
}

/// [`tree`] with a note per image (by image index) beside its owner, e.g. its own layer count
/// and size (`strata graph --layers`). Missing entries print nothing.
pub fn tree_with_notes(chain: &Chain, statuses: &Statuses, notes: &[String]) -> String {
    let graph = chain.graph();
    let images = &chain.file.images;
    let mut lines: Vec<Line> = Vec::new();
    let mut shown = vec![false; images.len()];

    let mut roots: Vec<usize> = (0..images.len())
        .filter(|&i| graph.parents(i).is_empty() && graph.external_of(i).is_empty())
        .collect();
    roots.sort_by(|a, b| images[*a].name.cmp(&images[*b].name));
    for i in roots {
        walk(chain, statuses, i, "", "", None, &mut shown, &mut lines);
    }
    for (reference, users) in graph.external() {
        lines.push(Line {
            prefix: String::new(),
            label: format!("{reference} (external)"),
            columns: None,
        });
        let mut children = super::by_image(users);
        children.sort_by(|a, b| images[a.0].name.cmp(&images[b.0].name));
        for (k, (c, sites)) in children.iter().enumerate() {
            let c = *c;
            let last = k + 1 == children.len();
            let note = super::edge_note(sites);
            let (glyph, indent) = if last {
                ("└── ", "    ")
            } else {
                ("├── ", "│   ")
            };
            walk(
                chain, statuses, c, glyph, indent, note, &mut shown, &mut lines,
            );
        }
    }

    let width = lines
        .iter()
        .filter(|l| l.columns.is_some())
        .map(|l| l.prefix.chars().count() + l.label.chars().count())
        .max()
        .unwrap_or(0);
    let owner_width = images
        .iter()
        .map(|i| i.owner.chars().count())
        .max()
        .unwrap_or(0);
    let tier_width = images
        .iter()
        .map(|i| i.tier.as_deref().unwrap_or("-").chars().count())
        .max()
        .unwrap_or(0);
    let note_width = notes.iter().map(|n| n.chars().count()).max().unwrap_or(0);
    let note_of = |label: &str| {
        let name = label.split(' ').next().unwrap_or(label);
        images
            .iter()
            .position(|i| i.name == name)
            .and_then(|i| notes.get(i))
            .map(String::as_str)
            .unwrap_or("")
    };
    let mut out = String::new();
    let teams = images
        .iter()
        .map(|i| i.owner.as_str())
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    out.push_str(&format!(
        "chain {}: {} image{}, {} team{}\n",
        chain.file.name,
        images.len(),
        plural(images.len()),
        teams,
        plural(teams)
    ));
    for l in lines {
        let head = format!("{}{}", l.prefix, l.label);
        match l.columns {
            Some([owner, tier, status]) => {
                let pad = width - head.chars().count();
                let note = if note_width > 0 {
                    format!("  {:note_width$}", note_of(&l.label))
                } else {
                    String::new()
                };
                out.push_str(&format!(
                    "{head}{:pad$}  {owner:owner_width$}{note}  {tier:tier_width$}  {status}\n",
                    ""
                ));
            }
            None => {
                out.push_str(&head);
                out.push('\n');
            }
        }
    }
    out
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Depth first from `root`, iteratively (a chain can be thousands of images deep).
#[allow(clippy::too_many_arguments)]
fn walk(
    chain: &Chain,
    statuses: &Statuses,
    root: usize,
    glyph: &str,
    indent: &str,
    note: Option<&str>,
    shown: &mut [bool],
    lines: &mut Vec<Line>,
) {
    let graph = chain.graph();
    let mut stack: Vec<(usize, String, String, Option<&str>)> =
        vec![(root, glyph.to_string(), indent.to_string(), note)];
    while let Some((i, glyph, indent, note)) = stack.pop() {
        let image = &chain.file.images[i];
        let note = note.map(|n| format!(" (via {n})")).unwrap_or_default();
        if shown[i] {
            lines.push(Line {
                prefix: glyph,
                label: format!("{}{note} (see above)", image.name),
                columns: None,
            });
            continue;
        }
        shown[i] = true;
        lines.push(Line {
            prefix: glyph,
            label: format!("{}{note}", image.name),
            columns: Some([
                image.owner.clone(),
                image.tier.clone().unwrap_or_else(|| "-".to_string()),
                one_line(&statuses.get(i).to_string()),
            ]),
        });
        let children = graph.children(i);
        for (k, &c) in children.iter().enumerate().rev() {
            let last = k + 1 == children.len();
            let (g, more) = if last {
                ("└── ", "    ")
            } else {
                ("├── ", "│   ")
            };
            stack.push((
                c,
                format!("{indent}{g}"),
                format!("{indent}{more}"),
                super::edge_note(graph.uses(i, c)),
            ));
        }
    }
}

/// A status on one line: a failure's captured output stays in `strata log` and `--json`.
fn one_line(status: &str) -> String {
    let first = status.lines().next().unwrap_or("");
    first
        .strip_suffix("; last output:")
        .unwrap_or(first)
        .to_string()
}
