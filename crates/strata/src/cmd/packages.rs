//! `strata packages IMAGE [--json] [--layer]`: the packages an image holds (dpkg, rpm, apk), each
//! with the tier (chain image) and team whose layer installed it; `--layer` shows, layer by layer,
//! what each added, upgraded and removed.

use std::fmt::Write as _;
use std::process::ExitCode;

use anyhow::{Context, Result};
use strata_inventory::{Inventory, LayerCredit};

use super::graph::write_stdout;
use super::inspect::{OutputArgs, open};
use crate::global::GlobalArgs;

/// Arguments of `strata packages`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The image: a tag (`acme/corebuild`), `sha256:…`, or `NAME@N` (build number N).
    image: String,
    /// Per layer: the packages it added, upgraded and removed.
    #[arg(long)]
    layer: bool,
    #[command(flatten)]
    output: OutputArgs,
}

/// Print an image's package inventory.
pub fn run(args: Args, global: &GlobalArgs) -> Result<ExitCode> {
    let (store, catalog) = open(global)?;
    let image = catalog.find(&store, &args.image)?;
    let inventory = strata_inventory::inventory(&store, &catalog, image)
        .with_context(|| format!("cannot read the packages of {}", args.image))?;
    let out = if args.output.is_json() {
        if args.layer {
            serde_json::to_string_pretty(&inventory.layers)? + "\n"
        } else {
            serde_json::to_string_pretty(&inventory)? + "\n"
        }
    } else if args.layer {
        by_layer(&inventory)
    } else {
        table(&inventory)
    };
    write_stdout(&out)?;
    Ok(ExitCode::SUCCESS)
}

/// `acme/corebuild (operations)`, or the layer's place when no chain image is recorded.
fn who(credit: &LayerCredit) -> String {
    let tier = credit
        .chain_image
        .clone()
        .or_else(|| credit.build.clone())
        .unwrap_or_else(|| format!("layer {}", credit.index));
    match &credit.owner {
        Some(team) => format!("{tier} ({team})"),
        None => tier,
    }
}

fn source(p: &strata_inventory::Package) -> String {
    if p.source_version == p.version {
        p.source_name.clone()
    } else {
        format!("{} ({})", p.source_name, p.source_version)
    }
}

fn table(inv: &Inventory) -> String {
    let mut rows = vec![[
        "NAME".to_string(),
        "VERSION".to_string(),
        "ARCH".to_string(),
        "SOURCE".to_string(),
        "INSTALLED BY".to_string(),
        "UPGRADED BY".to_string(),
    ]];
    for p in &inv.packages {
        rows.push([
            p.package.name.clone(),
            p.package.version.clone(),
            p.package.arch.clone(),
            source(&p.package),
            who(&p.installed_by),
            p.upgraded_by.as_ref().map(who).unwrap_or_default(),
        ]);
    }
    let mut widths = [0usize; 6];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let distro = inv
        .distro
        .as_ref()
        .map(|d| format!(" on {} {}", d.id, d.version_id))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "{}: {} packages{distro}",
        inv.image,
        inv.packages.len()
    );
    for row in &rows {
        let mut line = String::new();
        for (k, (cell, w)) in row.iter().zip(widths).enumerate() {
            if k + 1 == row.len() {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<w$}  ");
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn by_layer(inv: &Inventory) -> String {
    let mut out = String::new();
    for l in &inv.layers {
        let step = l.layer.created_by.as_deref().unwrap_or("-");
        let _ = writeln!(out, "layer {}  {}  {}", l.layer.index, who(&l.layer), step);
        if !l.touched_databases {
            continue;
        }
        for p in &l.added {
            let _ = writeln!(out, "  + {} {} {}", p.name, p.version, p.arch);
        }
        for (old, new) in &l.upgraded {
            let _ = writeln!(
                out,
                "  ^ {} {} -> {} {}",
                new.name, old.version, new.version, new.arch
            );
        }
        for p in &l.removed {
            let _ = writeln!(out, "  - {} {} {}", p.name, p.version, p.arch);
        }
    }
    out
}
