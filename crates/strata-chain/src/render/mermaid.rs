//! Mermaid `graph TD`: one subgraph per team, external references as stadium nodes, non-FROM
//! edges dotted and labelled.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::chain::Chain;

/// Text safe inside a Mermaid `"..."` label.
fn label(s: &str) -> String {
    s.replace('"', "#quot;")
        .replace('<', "#lt;")
        .replace('>', "#gt;")
}

/// The chain as a Mermaid flowchart.
pub fn mermaid(chain: &Chain) -> String {
    let graph = chain.graph();
    let images = &chain.file.images;
    let mut out = String::from("graph TD\n");
    let mut by_team: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, image) in images.iter().enumerate() {
        by_team.entry(image.owner.as_str()).or_default().push(i);
    }
    for (k, (team, members)) in by_team.iter().enumerate() {
        let _ = writeln!(out, "  subgraph team{k}[\"{}\"]", label(team));
        for &i in members {
            let image = &images[i];
            let text = match &image.tier {
                Some(tier) => format!("{}<br/>{}", label(&image.name), label(tier)),
                None => label(&image.name),
            };
            let _ = writeln!(out, "    i{i}[\"{text}\"]");
        }
        out.push_str("  end\n");
    }
    let external: Vec<&String> = graph.external().keys().collect();
    for (k, reference) in external.iter().enumerate() {
        let _ = writeln!(out, "  x{k}([\"{} (external)\"])", label(reference));
    }
    for (k, users) in graph.external().values().enumerate() {
        for (i, sites) in super::by_image(users) {
            edge(
                &mut out,
                &format!("x{k}"),
                &format!("i{i}"),
                super::edge_note(&sites),
            );
        }
    }
    for &i in graph.order() {
        for c in graph.children(i) {
            edge(
                &mut out,
                &format!("i{i}"),
                &format!("i{c}"),
                super::edge_note(graph.uses(i, c)),
            );
        }
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
        let _ = writeln!(out, "  classDef t{k} fill:{fill},stroke:#555555");
        let ids: Vec<String> = members.iter().map(|i| format!("i{i}")).collect();
        let _ = writeln!(out, "  class {} t{k}", ids.join(","));
    }
    out
}

fn edge(out: &mut String, from: &str, to: &str, note: Option<&str>) {
    match note {
        Some(n) => {
            let _ = writeln!(out, "  {from} -.->|{n}| {to}");
        }
        None => {
            let _ = writeln!(out, "  {from} --> {to}");
        }
    }
}
