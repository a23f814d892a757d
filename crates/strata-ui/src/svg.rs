//! The chain drawn as SVG on the server: a layered layout, one row per depth (wave) of the graph
//! so tiers read top to bottom, nodes in a row ordered by the mean position of their parents
//! (one barycentre pass keeps most edges short), each node coloured by its team, outlined by its
//! status, and a link to its image page. Every text goes through maud's escaping.

use maud::{Markup, html};

use crate::model::{ChainView, NodeView};

/// Node box width and height, and the gaps between them.
const W: usize = 220;
const H: usize = 80;
const GAP_X: usize = 24;
const GAP_Y: usize = 56;
const MARGIN: usize = 16;

/// A team's colour: a fixed palette, in the chain file's team order.
pub fn team_colour(teams: &[String], team: &str) -> &'static str {
    const PALETTE: [&str; 8] = [
        "#cfe3ff", "#d7f5d0", "#ffe3c2", "#eedcff", "#ffd6dc", "#d2f4f4", "#f4f0c4", "#e0e0e0",
    ];
    let i = teams
        .iter()
        .position(|t| t == team)
        .unwrap_or(PALETTE.len() - 1);
    PALETTE[i % PALETTE.len()]
}

/// The outline colour of a status.
pub fn status_colour(state: &str) -> &'static str {
    match state {
        "up-to-date" => "#2e7d32",
        "stale" => "#e6a100",
        "building" => "#1565c0",
        "failed" => "#c62828",
        "tests-failing" => "#ad1457",
        _ => "#777777",
    }
}

/// Positions of `nodes` (indexes into `view.nodes`): rows by wave, ordered by parents' positions.
fn layout(view: &ChainView, nodes: &[usize]) -> (Vec<(usize, usize)>, usize, usize) {
    let mut rows: std::collections::BTreeMap<usize, Vec<usize>> = Default::default();
    for &n in nodes {
        rows.entry(view.nodes[n].wave).or_default().push(n);
    }
    let mut x_of: std::collections::HashMap<usize, f64> = Default::default();
    let mut pos = vec![(0, 0); view.nodes.len()];
    let widest = rows.values().map(Vec::len).max().unwrap_or(0);
    for (row, (_, members)) in rows.iter_mut().enumerate() {
        let key = |n: &usize| {
            let parents: Vec<f64> = view
                .edges
                .iter()
                .filter(|(_, c)| c == n)
                .filter_map(|(p, _)| x_of.get(p).copied())
                .collect();
            if parents.is_empty() {
                f64::MAX
            } else {
                parents.iter().sum::<f64>() / parents.len() as f64
            }
        };
        let mut keyed: Vec<(f64, usize)> = members.iter().map(|n| (key(n), *n)).collect();
        keyed.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        // Centre each row under the widest one.
        let offset = (widest - keyed.len()) * (W + GAP_X) / 2;
        for (i, (_, n)) in keyed.into_iter().enumerate() {
            let x = MARGIN + offset + i * (W + GAP_X);
            let y = MARGIN + row * (H + GAP_Y);
            pos[n] = (x, y);
            x_of.insert(n, x as f64);
        }
    }
    let width = 2 * MARGIN + widest.max(1) * (W + GAP_X);
    let height = 2 * MARGIN + rows.len().max(1) * (H + GAP_Y);
    (pos, width, height)
}

/// The graph of `nodes` (indexes into `view.nodes`; edges between them only).
pub fn graph(view: &ChainView, nodes: &[usize]) -> Markup {
    let (pos, width, height) = layout(view, nodes);
    let shown: std::collections::HashSet<usize> = nodes.iter().copied().collect();
    html! {
        svg xmlns="http://www.w3.org/2000/svg" class="chain" role="img"
            aria-label="the chain's images, by tier"
            width=(width) height=(height) viewBox={ "0 0 " (width) " " (height) } {
            defs {
                marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7"
                    markerHeight="7" orient="auto-start-reverse" {
                    path d="M 0 0 L 10 5 L 0 10 z" fill="#888" {}
                }
            }
            @for (p, c) in &view.edges {
                @if shown.contains(p) && shown.contains(c) {
                    @let (px, py) = pos[*p];
                    @let (cx, cy) = pos[*c];
                    line x1=(px + W / 2) y1=(py + H) x2=(cx + W / 2) y2=(cy)
                        stroke="#888" stroke-width="1.5" marker-end="url(#arrow)" {}
                }
            }
            @for &n in nodes {
                (node(view, &view.nodes[n], pos[n]))
            }
        }
    }
}

fn node(view: &ChainView, n: &NodeView, (x, y): (usize, usize)) -> Markup {
    let fill = team_colour(&view.teams, &n.owner);
    let stroke = status_colour(&n.status.state);
    let short = n
        .digest
        .as_deref()
        .map(|d| d.get(..19).unwrap_or(d))
        .unwrap_or("not built");
    let build = n.build.map(|b| format!(" #{b}")).unwrap_or_default();
    let why = n.status.why.as_deref().unwrap_or("");
    html! {
        a href={ "/ui/image/" (crate::pages::path_segment(&n.name)) } class="node"
            data-image=(n.name) data-team=(n.owner) data-status=(n.status.state) {
            title { (n.name) " (" (n.owner) "): " (n.status.state) " " (why) }
            rect x=(x) y=(y) width=(W) height=(H) rx="8" fill=(fill) stroke=(stroke)
                stroke-width="3" {}
            text x=(x + 10) y=(y + 18) class="name" { (clip(&n.name, 24)) (build) }
            text x=(x + 10) y=(y + 34) class="team" {
                (clip(&n.owner, 14)) " · " (clip(n.tier.as_deref().unwrap_or("-"), 12))
            }
            text x=(x + 10) y=(y + 50) class="digest" { (short) " · " (n.status.state) }
            @if !why.is_empty() {
                text x=(x + 10) y=(y + 66) class="why" { (clip(why, 34)) }
            }
        }
    }
}

/// At most `n` characters of `s`, with an ellipsis when cut.
pub fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(n.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}
