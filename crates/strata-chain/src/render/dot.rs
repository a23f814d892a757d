//! Graphviz DOT: one cluster per team (filled with the team's colour), external references as
//! dashed ellipses, non-FROM edges dashed and labelled. Renders with `dot -Tsvg`.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::chain::Chain;

/// A DOT string literal: quoted, with `"` and `\` escaped and newlines as `\n`.
fn q(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The chain as a Graphviz digraph.
pub fn dot(chain: &Chain) -> String {
    let graph = chain.graph();
    let images = &chain.file.images;
    let mut out = String::new();
    let _ = writeln!(out, "digraph {} {{", q(&chain.file.name));
    out.push_str("  graph [rankdir=TB, fontname=\"Helvetica\"];\n");
    out.push_str("  node [shape=box, style=\"rounded,filled\", fontname=\"Helvetica\"];\n");
    out.push_str("  edge [fontname=\"Helvetica\", fontsize=10];\n");
    let mut by_team: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, image) in images.iter().enumerate() {
        by_team.entry(image.owner.as_str()).or_default().push(i);
    }
    let colour: BTreeMap<&str, &str> = chain
        .file
        .teams
        .keys()
        .enumerate()
        .map(|(k, t)| (t.as_str(), super::PALETTE[k % super::PALETTE.len()]))
        .collect();
    for (k, (team, members)) in by_team.iter().enumerate() {
        let fill = colour.get(team).copied().unwrap_or("#eeeeee");
        let _ = writeln!(out, "  subgraph {} {{", q(&format!("cluster_{k}")));
        let _ = writeln!(
            out,
            "    label={}; style=\"rounded,dashed\"; color=\"#888888\";",
            q(team)
        );
        for &i in members {
            let image = &images[i];
            let label = match &image.tier {
                Some(tier) => format!("{}\n{tier}", image.name),
                None => image.name.clone(),
            };
            let _ = writeln!(
                out,
                "    {} [label={}, fillcolor={}];",
                q(&format!("image:{}", image.name)),
                q(&label),
                q(fill)
            );
        }
        out.push_str("  }\n");
    }
    for reference in graph.external().keys() {
        let _ = writeln!(
            out,
            "  {} [label={}, shape=ellipse, style=dashed];",
            q(&format!("external:{reference}")),
            q(&format!("{reference}\n(external)"))
        );
    }
    for (reference, users) in graph.external() {
        for (i, sites) in super::by_image(users) {
            edge(
                &mut out,
                &format!("external:{reference}"),
                &format!("image:{}", images[i].name),
                super::edge_note(&sites),
            );
        }
    }
    for &i in graph.order() {
        for c in graph.children(i) {
            edge(
                &mut out,
                &format!("image:{}", images[i].name),
                &format!("image:{}", images[c].name),
                super::edge_note(graph.uses(i, c)),
            );
        }
    }
    out.push_str("}\n");
    out
}

fn edge(out: &mut String, from: &str, to: &str, note: Option<&str>) {
    match note {
        Some(n) => {
            let _ = writeln!(
                out,
                "  {} -> {} [style=dashed, label={}];",
                q(from),
                q(to),
                q(n)
            );
        }
        None => {
            let _ = writeln!(out, "  {} -> {};", q(from), q(to));
        }
    }
}
