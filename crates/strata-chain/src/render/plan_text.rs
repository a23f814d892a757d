//! The plan as text: a headline ("corebuild changed (operations) → rebuild httpd-php
//! (middleware), wordpress (development)"), the teams affected, the build order with reasons, and
//! the waves.

use std::fmt::Write;

use crate::plan::{Plan, Reason, Step};

/// Lists longer than this are cut with "… and N more".
const LIST_MAX: usize = 8;

fn list(items: Vec<String>) -> String {
    let n = items.len();
    if n <= LIST_MAX {
        return items.join(", ");
    }
    let mut s = items[..LIST_MAX].join(", ");
    let _ = write!(s, ", … and {} more", n - LIST_MAX);
    s
}

fn with_owner(s: &Step) -> String {
    format!("{} ({})", s.image, s.owner)
}

fn is_seed(s: &Step) -> bool {
    !s.reasons
        .iter()
        .all(|r| matches!(r, Reason::ParentRebuilt { .. }))
}

/// The headline: what triggers the plan and what it rebuilds.
pub fn headline(plan: &Plan) -> String {
    if plan.is_empty() {
        return "nothing to build: every image is up to date".to_string();
    }
    let seeds: Vec<&Step> = plan.steps.iter().filter(|s| is_seed(s)).collect();
    let downstream: Vec<String> = plan
        .steps
        .iter()
        .filter(|s| !is_seed(s))
        .map(with_owner)
        .collect();
    let trigger = if !plan.changed.is_empty() {
        list(
            seeds
                .iter()
                .map(|s| format!("{} changed ({})", s.image, s.owner))
                .collect(),
        )
    } else {
        // group the seeds by reason, in order of first appearance
        let mut groups: Vec<(String, Vec<&Step>)> = Vec::new();
        for s in &seeds {
            let why = s
                .reasons
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ");
            match groups.iter_mut().find(|(w, _)| *w == why) {
                Some((_, members)) => members.push(s),
                None => groups.push((why, vec![s])),
            }
        }
        groups
            .into_iter()
            .map(|(why, members)| match members.as_slice() {
                [one] => format!("{} {why} ({})", one.image, one.owner),
                many => format!(
                    "{} images {why}: {}",
                    many.len(),
                    list(many.iter().map(|s| with_owner(s)).collect())
                ),
            })
            .collect::<Vec<_>>()
            .join("; ")
    };
    if downstream.is_empty() && plan.changed.is_empty() {
        trigger
    } else if downstream.is_empty() {
        format!("{trigger} → nothing downstream to rebuild")
    } else {
        format!("{trigger} → rebuild {}", list(downstream))
    }
}

/// The whole plan as text.
pub fn plan_text(plan: &Plan) -> String {
    let mut out = headline(plan);
    out.push('\n');
    if plan.is_empty() {
        return out;
    }
    let _ = writeln!(out, "teams affected: {}", plan.teams.join(", "));
    out.push_str("\nbuild order:\n");
    let digits = plan.steps.len().to_string().len();
    let name_w = plan
        .steps
        .iter()
        .map(|s| s.image.chars().count())
        .max()
        .unwrap_or(0);
    let owner_w = plan
        .steps
        .iter()
        .map(|s| s.owner.chars().count())
        .max()
        .unwrap_or(0);
    for (k, s) in plan.steps.iter().enumerate() {
        let why = s
            .reasons
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        let _ = writeln!(
            out,
            "  {:>digits$}. {:name_w$}  {:owner_w$}  wave {}  {why}",
            k + 1,
            s.image,
            s.owner,
            s.wave
        );
    }
    out.push_str("\nwaves (the images of one wave can build in parallel):\n");
    for (w, members) in plan.waves.iter().enumerate() {
        let _ = writeln!(out, "  {}: {}", w + 1, members.join(", "));
    }
    out
}
