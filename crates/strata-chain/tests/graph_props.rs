//! Properties of the graph algorithms on random chains: the order respects every edge and breaks
//! ties by name, waves are tight, plans are downstream closures, and a reported cycle is a cycle.

use proptest::prelude::*;
use strata_chain::graph::{GraphDefect, ImageGraph, Resolver, Use, UseKind};

/// `n` images with shuffled names; edges (parent, child) with parent < child in a hidden rank, so
/// the graph is acyclic.
fn dag() -> impl Strategy<Value = (Vec<String>, Vec<(usize, usize)>)> {
    (2usize..25).prop_flat_map(|n| {
        let names = Just((0..n).map(|i| format!("img-{i:02}")).collect::<Vec<_>>()).prop_shuffle();
        let edges = proptest::collection::vec((0..n, 0..n), 0..(n * 2));
        (names, edges).prop_map(|(names, edges)| {
            let edges = edges.into_iter().filter(|(a, b)| a < b).collect();
            (names, edges)
        })
    })
}

fn build(names: &[String], edges: &[(usize, usize)]) -> Result<ImageGraph, GraphDefect> {
    let uses = edges
        .iter()
        .map(|&(p, c)| Use {
            image: c,
            reference: names[p].clone(),
            kind: UseKind::From,
            line: 1,
        })
        .collect();
    let resolver = Resolver::new("acme", None, names.iter().map(String::as_str));
    ImageGraph::build(names, uses, &resolver)
}

proptest! {
    #[test]
    fn order_and_waves((names, edges) in dag()) {
        let g = build(&names, &edges).unwrap();
        let order = g.order();
        let mut pos = vec![usize::MAX; names.len()];
        for (k, &i) in order.iter().enumerate() {
            pos[i] = k;
        }
        prop_assert!(pos.iter().all(|&p| p != usize::MAX), "every image is ordered");
        for &(p, c) in &edges {
            prop_assert!(pos[p] < pos[c]);
            prop_assert!(g.wave(c) > g.wave(p));
        }
        // the reference: repeatedly take the smallest ready name
        let mut done = vec![false; names.len()];
        for &i in order {
            let ready_min = (0..names.len())
                .filter(|&j| !done[j] && edges.iter().all(|&(p, c)| c != j || done[p]))
                .min_by(|a, b| names[*a].cmp(&names[*b]))
                .unwrap();
            prop_assert_eq!(i, ready_min);
            done[i] = true;
        }
        // waves are tight: a non-zero wave has a parent in the wave before
        for i in 0..names.len() {
            if g.wave(i) > 0 {
                prop_assert!(g.parents(i).iter().any(|&p| g.wave(p) + 1 == g.wave(i)));
            }
        }
    }

    #[test]
    fn downstream_is_the_closure((names, edges) in dag(), seed in 0usize..25) {
        let g = build(&names, &edges).unwrap();
        let seed = seed % names.len();
        let down = g.downstream(&[seed]);
        let mut reach = vec![false; names.len()];
        reach[seed] = true;
        let mut changed = true;
        while changed {
            changed = false;
            for &(p, c) in &edges {
                if reach[p] && !reach[c] {
                    reach[c] = true;
                    changed = true;
                }
            }
        }
        let mut expected: Vec<usize> = (0..names.len()).filter(|&i| reach[i]).collect();
        let mut got = down.clone();
        expected.sort();
        got.sort();
        prop_assert_eq!(got, expected);
        // and in build order
        let order = g.order();
        let pos = |i: usize| order.iter().position(|&x| x == i).unwrap();
        prop_assert!(down.windows(2).all(|w| pos(w[0]) < pos(w[1])));
        // waves of the plan: every member's in-plan parents are in earlier waves
        let waves = g.waves(&down);
        let wave_of = |i: usize| waves.iter().position(|w| w.contains(&i)).unwrap();
        for &(p, c) in &edges {
            if reach[p] && reach[c] {
                prop_assert!(wave_of(p) < wave_of(c));
            }
        }
    }

    #[test]
    fn a_back_edge_is_reported_as_a_real_cycle((names, edges) in dag(), pick in 0usize..50) {
        prop_assume!(!edges.is_empty());
        let (a, b) = edges[pick % edges.len()];
        let mut with_back = edges.clone();
        with_back.push((b, a));
        match build(&names, &with_back) {
            Err(GraphDefect::Cycle(cycle)) => {
                prop_assert!(cycle.len() >= 3);
                prop_assert_eq!(cycle.first(), cycle.last());
                for w in cycle.windows(2) {
                    prop_assert!(with_back.contains(&(w[0], w[1])), "{:?} is not an edge", w);
                }
            }
            other => prop_assert!(false, "expected a cycle, got {:?}", other.map(|_| ())),
        }
    }
}
