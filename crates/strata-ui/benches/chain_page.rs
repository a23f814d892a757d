//! The chain page of a 5,000-image store: its size and how long it takes to render, printed
//! (no timed assertion anywhere: speed goes here). Run with `cargo bench -p strata-ui`.

#![allow(clippy::print_stdout)]

use std::time::Instant;

use strata_ui::model::{ChainView, NodeStatus, NodeView};

/// A chain of `n` images: 8 teams, 4 tiers (base, corebuild, middleware, app), each image the
/// child of one of the tier above; a tenth stale, a few building, failed or failing tests.
fn big_chain(n: usize) -> ChainView {
    let teams: Vec<String> = (0..8).map(|t| format!("team-{t}")).collect();
    let tiers = ["base", "corebuild", "middleware", "app"];
    let per_tier = [4, 40, 400];
    let mut nodes = Vec::with_capacity(n);
    let mut edges = Vec::new();
    let mut first_of_tier = [0usize; 4];
    for i in 0..n {
        let tier = match i {
            _ if i < per_tier[0] => 0,
            _ if i < per_tier[0] + per_tier[1] => 1,
            _ if i < per_tier[0] + per_tier[1] + per_tier[2] => 2,
            _ => 3,
        };
        if i == 0 || nodes.last().is_some_and(|n: &NodeView| n.wave != tier) {
            first_of_tier[tier] = i;
        }
        if tier > 0 {
            let above = first_of_tier[tier - 1];
            let width = first_of_tier[tier] - above;
            edges.push((above + i % width.max(1), i));
        }
        let state = match i % 50 {
            0..=4 => "stale",
            5 => "building",
            6 => "failed",
            7 => "tests-failing",
            _ => "up-to-date",
        };
        nodes.push(NodeView {
            name: format!("{}-{i:05}", tiers[tier]),
            owner: teams[i % teams.len()].clone(),
            tier: Some(tiers[tier].to_string()),
            wave: tier,
            status: NodeStatus {
                state: state.into(),
                why: (state == "stale").then(|| "stale (parent corebuild-00005 changed)".into()),
            },
            digest: Some(format!("sha256:{:064x}", i * 7919)),
            build: Some((i % 97) as u64 + 1),
        });
    }
    ChainView {
        chain: "acme".into(),
        teams,
        nodes,
        edges,
    }
}

fn main() {
    for n in [4, 150, 5_000] {
        let view = big_chain(n);
        // Warm up once, then the best of five.
        let _ = strata_ui::pages::chain_page(&view, None).into_string();
        let mut best = f64::MAX;
        let mut size = 0;
        for _ in 0..5 {
            let start = Instant::now();
            let html = strata_ui::pages::chain_page(&view, None).into_string();
            best = best.min(start.elapsed().as_secs_f64() * 1000.0);
            size = html.len();
        }
        let start = Instant::now();
        let json = serde_json::to_string(&view).unwrap_or_default();
        let json_ms = start.elapsed().as_secs_f64() * 1000.0;
        println!(
            "chain page, {n:>5} images: {:>7.1} KB HTML in {best:>6.2} ms (JSON twin {:>7.1} KB in {json_ms:.2} ms)",
            size as f64 / 1024.0,
            json.len() as f64 / 1024.0
        );
    }
}
