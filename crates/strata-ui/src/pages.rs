//! The HTML pages, rendered with maud: every value interpolated is escaped (image names, labels,
//! Dockerfile text and commit messages are hostile input), links are built from percent-encoded
//! path segments and query values, and the pages work without JavaScript (only the timeline's
//! live feed needs it).

use std::collections::BTreeMap;

use maud::{DOCTYPE, Markup, html};
use strata_events::Event;

use crate::data::kind_name;
use crate::model::{
    ChainView, DeploymentView, DeploymentsView, ImageView, NodeView, TimelineFilter, TimelineView,
};
use crate::svg;

/// Above this many images the chain page groups them by team and tier instead of drawing each.
pub const GRAPH_LIMIT: usize = 150;
/// In the grouped view, at most this many images needing attention are listed per team and tier.
const ATTENTION_PER_GROUP: usize = 12;

/// `s` percent-encoded as one URL path segment: slashes too, so a name such as `../../x` stays
/// one segment a browser does not resolve against the page (the server decodes it and looks the
/// name up; it is never a path).
pub fn path_segment(s: &str) -> String {
    encode(s)
}

/// `s` percent-encoded for a query value.
pub fn query_value(s: &str) -> String {
    encode(s)
}

fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The page frame: title, navigation, the stylesheet.
fn frame(title: &str, current: &str, body: Markup) -> Markup {
    let nav = [
        ("/ui/", "chain"),
        ("/ui/timeline", "timeline"),
        ("/ui/deployments", "deployments"),
    ];
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · strata" }
                link rel="stylesheet" href="/ui/assets/ui.css";
            }
            body {
                header {
                    strong { "strata" }
                    nav {
                        @for (href, name) in nav {
                            @if name == current {
                                a href=(href) aria-current="page" { (name) }
                            } @else {
                                a href=(href) { (name) }
                            }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// An error page.
pub fn error_page(status: u16, message: &str) -> Markup {
    frame(
        "error",
        "",
        html! {
            h1 { "Error " (status) }
            p.error { (message) }
        },
    )
}

fn status_badge(state: &str, why: Option<&str>) -> Markup {
    html! {
        span.badge style={ "border-color:" (svg::status_colour(state)) } title=[why] { (state) }
    }
}

fn short(digest: &str) -> &str {
    digest.get(..19).unwrap_or(digest)
}

fn human(bytes: u64) -> String {
    strata_inspect::size::human(bytes)
}

/// The chain page; `team` narrows it to one team's images.
pub fn chain_page(view: &ChainView, team: Option<&str>) -> Markup {
    let nodes: Vec<usize> = (0..view.nodes.len())
        .filter(|&i| team.is_none_or(|t| view.nodes[i].owner == t))
        .collect();
    let title = match team {
        Some(t) => format!("chain {} · team {t}", view.chain),
        None => format!("chain {}", view.chain),
    };
    let body = html! {
        h1 { (title) }
        @if view.nodes.is_empty() {
            p { "No chain file beside the store: nothing to draw." }
        } @else {
            (legend(view))
            @if nodes.len() <= GRAPH_LIMIT {
                details open {
                    summary { (nodes.len()) " images by tier" }
                    div.graph { (svg::graph(view, &nodes)) }
                }
                (node_table(view, &nodes))
            } @else {
                (grouped(view, &nodes, team))
            }
        }
    };
    frame(&title, "chain", body)
}

fn legend(view: &ChainView) -> Markup {
    html! {
        p.legend {
            "Teams: "
            @for t in &view.teams {
                a.team href={ "/ui/?team=" (query_value(t)) }
                    style={ "background:" (svg::team_colour(&view.teams, t)) } { (t) }
                " "
            }
            " Status: "
            @for s in ["up-to-date", "stale", "building", "failed", "tests-failing", "never-built"] {
                (status_badge(s, None)) " "
            }
        }
    }
}

fn node_table(view: &ChainView, nodes: &[usize]) -> Markup {
    html! {
        table.nodes {
            thead { tr { th { "image" } th { "team" } th { "tier" } th { "status" } th { "build" } th { "digest" } } }
            tbody {
                @for &i in nodes {
                    @let n = &view.nodes[i];
                    (node_row(n))
                }
            }
        }
    }
}

fn node_row(n: &NodeView) -> Markup {
    html! {
        tr data-image=(n.name) {
            td { a href={ "/ui/image/" (path_segment(&n.name)) } { (n.name) } }
            td { (n.owner) }
            td { (n.tier.as_deref().unwrap_or("")) }
            td { (status_badge(&n.status.state, n.status.why.as_deref())) " " small { (n.status.why.as_deref().unwrap_or("")) } }
            td { @if let Some(b) = n.build { "#" (b) } }
            td.mono { (n.digest.as_deref().map(short).unwrap_or("")) }
        }
    }
}

/// A big chain: per team and tier, counts by status and the images needing attention; each
/// team collapsible, its full list one click away (`?team=`).
fn grouped(view: &ChainView, nodes: &[usize], team: Option<&str>) -> Markup {
    // team → tier → node indexes
    let mut groups: BTreeMap<&str, BTreeMap<String, Vec<usize>>> = BTreeMap::new();
    for &i in nodes {
        let n = &view.nodes[i];
        let tier = n
            .tier
            .clone()
            .unwrap_or_else(|| format!("depth {}", n.wave));
        groups
            .entry(n.owner.as_str())
            .or_default()
            .entry(tier)
            .or_default()
            .push(i);
    }
    let counts = |members: &[usize]| {
        let mut c: BTreeMap<&str, usize> = BTreeMap::new();
        for &i in members {
            *c.entry(view.nodes[i].status.state.as_str()).or_default() += 1;
        }
        c
    };
    html! {
        p { (nodes.len()) " images: grouped by team and tier (more than " (GRAPH_LIMIT) " to draw one by one)." }
        @for (t, tiers) in &groups {
            @let total: usize = tiers.values().map(Vec::len).sum();
            details open[team.is_some()] {
                summary {
                    span.team style={ "background:" (svg::team_colour(&view.teams, t)) } { (t) }
                    " " (total) " images"
                    @for (state, n) in counts(&tiers.values().flatten().copied().collect::<Vec<_>>()) {
                        " " (status_badge(state, None)) " " (n)
                    }
                }
                @if team.is_none() {
                    p { a href={ "/ui/?team=" (query_value(t)) } { "every image of " (t) } }
                }
                table.groups {
                    @for (tier, members) in tiers {
                        tr {
                            th { (tier) }
                            td {
                                @for (state, n) in counts(members) { (status_badge(state, None)) " " (n) " " }
                            }
                            td {
                                @let listed: Vec<usize> = if team.is_some() {
                                    members.clone()
                                } else {
                                    members.iter().copied().filter(|&i| view.nodes[i].status.state != "up-to-date").collect()
                                };
                                @let cap = if team.is_some() { usize::MAX } else { ATTENTION_PER_GROUP };
                                @for &i in listed.iter().take(cap) {
                                    @let n = &view.nodes[i];
                                    a href={ "/ui/image/" (path_segment(&n.name)) }
                                        style={ "border-color:" (svg::status_colour(&n.status.state)) }
                                        class="chip" title=(n.status.state) { (n.name) }
                                    " "
                                }
                                @if listed.len() > cap { "and " (listed.len() - cap) " more" }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The image page.
pub fn image_page(view: &ImageView) -> Markup {
    let body = html! {
        h1 { "image " (view.name) }
        p {
            span.mono { (view.reference) } br;
            "digest " span.mono { (view.digest) } " · " (human(view.size)) " in " (view.layers.len()) " layers · "
            (human(view.wasted_bytes)) " wasted"
            @if let Some(n) = &view.node {
                br; "team " strong { (n.owner) } " · tier " (n.tier.as_deref().unwrap_or("-")) " · "
                (status_badge(&n.status.state, n.status.why.as_deref()))
                " " (n.status.why.as_deref().unwrap_or(""))
            }
        }
        section #custody {
            h2 { "Chain of custody" }
            @if let Some(report) = &view.custody {
                p.verdict data-verified=(report.verified) {
                    @if report.verified { "✔ " } @else { "✘ " } (report.summary())
                }
                table {
                    thead { tr { th { "tier" } th { "image" } th { "team" } th { "signing key" } th { "verdict" } th { "built" } } }
                    tbody {
                        @for link in &report.links {
                            tr.link {
                                td { (link.tier.as_deref().unwrap_or("")) }
                                td { (link.image.as_deref().unwrap_or("")) br; span.mono { (short(&link.digest.to_string())) } }
                                td { (link.team.as_deref().unwrap_or("")) }
                                td.mono { (link.key_id.as_ref().map(|k| { let k = k.to_string(); k.get(..16).unwrap_or(&k).to_string() }).unwrap_or_default()) }
                                td {
                                    (format!("{:?}", link.verdict).to_lowercase())
                                    @for p in &link.problems { br; small { (p.to_string()) } }
                                }
                                td { (link.built.as_deref().unwrap_or("")) }
                            }
                        }
                    }
                }
            } @else {
                p { "Not checked: " (view.custody_error.as_deref().unwrap_or("")) }
            }
        }
        section #layers {
            h2 { "Layers" }
            table.layers {
                thead { tr { th { "#" } th { "team" } th { "image" } th { "instruction" } th { "size" } th { "wasted" } } }
                tbody {
                    @for l in view.layers.iter().rev() {
                        tr.layer data-team=[l.owner.as_deref()] {
                            td { (l.index) }
                            td { (l.owner.as_deref().unwrap_or("?")) }
                            td { (l.chain_image.as_deref().unwrap_or("")) }
                            td.mono { (svg::clip(l.created_by.as_deref().unwrap_or(""), 160)) }
                            td { (human(l.size)) }
                            td { @if l.wasted_bytes > 0 { (human(l.wasted_bytes)) } }
                        }
                    }
                }
            }
        }
        section #builds {
            h2 { "Tags and builds" }
            @let builds: Vec<&str> = view.tags.iter().filter(|t| t.build.is_some()).map(|t| t.tag.as_str()).collect();
            form method="get" {
                table {
                    thead { tr { th { "tag" } th { "digest" } th { "diff a" } th { "diff b" } } }
                    tbody {
                        @for t in &view.tags {
                            tr {
                                td { (t.tag) }
                                td.mono { (short(&t.digest)) }
                                td { input type="radio" name="a" value=(t.tag) checked[builds.get(1) == Some(&t.tag.as_str())]; }
                                td { input type="radio" name="b" value=(t.tag) checked[builds.first() == Some(&t.tag.as_str())]; }
                            }
                        }
                    }
                }
                @if view.tags.len() > 1 { button type="submit" { "diff" } }
            }
            @if let Some(d) = &view.diff {
                h3 { "Diff " (d.a) " → " (d.b) }
                p { (d.diff.common_prefix) " layers in common; " (d.diff.added.len()) " added, " (d.diff.removed.len()) " removed; "
                    (d.diff.files.len() + d.files_left_out) " paths differ" }
                ul.mono {
                    @for l in &d.diff.removed { li { "− layer " (l.index) " " (svg::clip(l.created_by.as_deref().unwrap_or(""), 120)) } }
                    @for l in &d.diff.added { li { "+ layer " (l.index) " " (svg::clip(l.created_by.as_deref().unwrap_or(""), 120)) } }
                }
                ul.mono.files {
                    @for f in &d.diff.files { li { (format!("{:?}", f.change).to_lowercase()) " " (f.path) } }
                    @if d.files_left_out > 0 { li { "and " (d.files_left_out) " more" } }
                }
            }
        }
        section #dockerfile {
            h2 { "Dockerfile" }
            @if let Some(f) = &view.dockerfile {
                p.mono { (f.path) @if f.truncated { " (cut)" } }
                pre.dockerfile { (f.text) }
            } @else {
                p { "None (not built from a Dockerfile of the chain)." }
            }
        }
        section #tests {
            h2 { "Tier tests" }
            @if view.tests.is_empty() { p { "No test recorded." } }
            ul { @for e in &view.tests { li { (event_line(e)) } } }
        }
        section #deployed {
            h2 { "Deployed" }
            @if view.deployed.is_empty() { p { "Not deployed." } }
            @for d in &view.deployed { (deployment(d)) }
        }
        section #packages {
            h2 { "Packages" }
            @if let Some(inv) = &view.packages {
                @if inv.packages.is_empty() {
                    p { "No package database (dpkg, rpm, apk) in this image." }
                } @else {
                    p {
                        (inv.packages.len()) " packages"
                        @if let Some(d) = &inv.distro { " on " (d.id) " " (d.version_id) }
                        ", by the tier that brought each in: "
                        @for (tier, n) in packages_per_tier(inv) { (tier) " " (n) "; " }
                    }
                    table.packages {
                        thead { tr { th { "package" } th { "version" } th { "tier" } th { "team" } th { "layer" } th { "upgraded by" } } }
                        tbody {
                            @for p in inv.packages.iter().take(MAX_PACKAGE_ROWS) {
                                tr.package data-team=[p.installed_by.owner.as_deref()] {
                                    td { (p.package.name) }
                                    td.mono { (p.package.version) }
                                    td { (p.installed_by.chain_image.as_deref().unwrap_or("?")) }
                                    td { (p.installed_by.owner.as_deref().unwrap_or("?")) }
                                    td { (p.installed_by.index) }
                                    td { @if let Some(u) = &p.upgraded_by { (u.chain_image.as_deref().unwrap_or("?")) " (layer " (u.index) ")" } }
                                }
                            }
                        }
                    }
                    @if inv.packages.len() > MAX_PACKAGE_ROWS {
                        p { "and " (inv.packages.len() - MAX_PACKAGE_ROWS) " more (all in the JSON twin)" }
                    }
                }
            } @else {
                p { "Not read: " (view.packages_error.as_deref().unwrap_or("")) }
            }
        }
    };
    frame(&format!("image {}", view.name), "", body)
}

/// The image page lists at most this many packages (the JSON twin has them all).
const MAX_PACKAGE_ROWS: usize = 1000;

/// How many packages each tier (chain image) brought in, bottom tier first.
fn packages_per_tier(inv: &strata_inventory::Inventory) -> Vec<(String, usize)> {
    let mut tiers: Vec<(String, usize)> = Vec::new();
    let mut sorted: Vec<&strata_inventory::InstalledPackage> = inv.packages.iter().collect();
    sorted.sort_by_key(|p| p.installed_by.index);
    for p in sorted {
        let tier = p
            .installed_by
            .chain_image
            .clone()
            .unwrap_or_else(|| "?".into());
        match tiers.last_mut() {
            Some((t, n)) if *t == tier => *n += 1,
            _ => tiers.push((tier, 1)),
        }
    }
    tiers
}

/// One event as a line: time, team, what, image, result, why.
pub fn event_line(e: &Event) -> Markup {
    let time = e.time.get(..19).unwrap_or(&e.time).replace('T', " ");
    let kind = e.kind.map(kind_name).unwrap_or("event");
    html! {
        span.event data-id=(e.id) data-kind=(kind) data-result=(e.result) {
            time { (time) } " "
            span.team { (e.team.as_deref().unwrap_or("?")) } " "
            span.kind { (kind) } " "
            a href={ "/ui/image/" (path_segment(&e.image)) } { (e.image) } " "
            span.result { (e.result) }
            @if let Some(d) = &e.new_digest { " " span.mono { (short(d)) } }
            @if let Some(u) = &e.user { " [" (u) "]" }
            @if let Some(r) = &e.reason { " — " small { (svg::clip(r.lines().next().unwrap_or(""), 200)) } }
        }
    }
}

/// The timeline page: filters, stories, the next page link; the live feed appends to it.
pub fn timeline_page(view: &TimelineView) -> Markup {
    let f = &view.filter;
    let next = view.next_before.map(|before| {
        let mut q = format!("/ui/timeline?before={before}");
        for (k, v) in [("team", &f.team), ("image", &f.image), ("kind", &f.kind)] {
            if let Some(v) = v {
                q.push_str(&format!("&{k}={}", query_value(v)));
            }
        }
        q
    });
    let body = html! {
        h1 { "Timeline" }
        (filter_form(f))
        p #live data-after=(view.last_id) data-live=(f.before.is_none())
            data-team=[f.team.as_deref()] data-image=[f.image.as_deref()] data-kind=[f.kind.as_deref()] {
            @if f.before.is_none() { "Live: new events appear at the top (needs JavaScript; reload otherwise)." }
        }
        ol #stories {
            @for (i, s) in view.stories.iter().enumerate() {
                li.story data-run=[s.run_id.as_deref()] {
                    @if s.events.len() > 1 {
                        details open[i == 0] {
                            summary { (s.headline) }
                            ol { @for e in &s.events { li { (event_line(e)) } } }
                        }
                    } @else {
                        @for e in &s.events { (event_line(e)) }
                    }
                }
            }
        }
        @if view.stories.is_empty() { p { "No events." } }
        @if let Some(next) = next { p { a href=(next) rel="next" { "older events" } } }
        script src="/ui/assets/live.js" defer {}
    };
    frame("timeline", "timeline", body)
}

fn filter_form(f: &TimelineFilter) -> Markup {
    html! {
        form.filters method="get" action="/ui/timeline" {
            label { "team " input name="team" value=[f.team.as_deref()]; } " "
            label { "image " input name="image" value=[f.image.as_deref()]; } " "
            label { "kind "
                select name="kind" {
                    option value="" { "any" }
                    @for k in ["build", "test", "sign", "import", "push", "pull", "delete", "deploy", "update"] {
                        option value=(k) selected[f.kind.as_deref() == Some(k)] { (k) }
                    }
                }
            } " "
            button type="submit" { "filter" }
        }
    }
}

fn deployment(d: &DeploymentView) -> Markup {
    let s = &d.state;
    html! {
        div.deployment data-name=(d.name) {
            h3 { (d.name) " " small { "(" (d.file) ")" } }
            @if let Some(r) = &s.running {
                p {
                    "runs " @if let Some(i) = &d.image { a href={ "/ui/image/" (path_segment(i)) } { (i) } " " }
                    span.mono { (short(&r.digest)) } " since " (r.since) " · "
                    @if r.healthy { span.ok { "healthy" } } @else { span.bad { "unhealthy" } }
                }
            } @else { p { "nothing running" } }
            @if let Some(p) = &s.pending { p.pending { "waiting for approval: " span.mono { (short(&p.digest)) } " since " (p.since) } }
            @if let Some(h) = &s.hold { p.hold { "held at " span.mono { (short(&h.digest)) } " by " (h.by) " since " (h.since) " (" (h.reason) ")" } }
            @if let Some(r) = &s.refused { p.bad { "refused " span.mono { (short(&r.digest)) } ": " (r.reason) } }
            @if !s.history.is_empty() {
                details {
                    summary { (s.history.len()) " revisions" }
                    ol { @for r in s.history.iter().rev().take(20) { li { (r.time) " " (r.action) " " span.mono { (short(&r.digest)) } " " (r.result) @if let Some(c) = &r.cause { " — " (c) } } } }
                }
            }
        }
    }
}

/// The deployments page.
pub fn deployments_page(view: &DeploymentsView) -> Markup {
    let body = html! {
        h1 { "Deployments" }
        @if view.deployments.is_empty() { p { "No deployment has state in this store." } }
        @for d in &view.deployments { (deployment(d)) }
    };
    frame("deployments", "deployments", body)
}
