//! Text views of history, inspection, diff and layer accounting, fitted to a terminal width.

use std::fmt::Write as _;

use crate::diff::{Change, FileChange, ImageDiff, LayerRef};
use crate::fsview::FileState;
use crate::history::HistoryRow;
use crate::inspect::{Inspection, Provenance};
use crate::layers::{Fate, LayersReport};
use crate::render::Paint;
use crate::size::{fit, human};

/// `sha256:<12 hex>` of a `sha256:<64 hex>` string, else the string.
pub fn short(digest: &str) -> String {
    match digest.strip_prefix("sha256:") {
        Some(hex) if hex.len() > 12 => format!("sha256:{}", &hex[..12]),
        _ => digest.to_string(),
    }
}

fn owner(chain_image: Option<&str>, team: Option<&str>) -> String {
    match (chain_image, team) {
        (Some(i), Some(t)) => format!("{i} ({t})"),
        (Some(i), None) => i.to_string(),
        (None, Some(t)) => format!("({t})"),
        (None, None) => "-".to_string(),
    }
}

/// The owner cells of a table's rows and the column's width (5 to 30 characters).
fn owner_column<'a>(
    rows: impl Iterator<Item = (Option<&'a str>, Option<&'a str>)>,
) -> (Vec<String>, usize) {
    let owners: Vec<String> = rows.map(|(image, team)| owner(image, team)).collect();
    let width = owners
        .iter()
        .map(|o| o.chars().count())
        .max()
        .unwrap_or(5)
        .clamp(5, 30);
    (owners, width)
}

/// `strata history` as a table: step, created, size, owner, created_by (fitted; the layer
/// digests are in the JSON form).
pub fn history(image: &str, rows: &[HistoryRow], width: usize, paint: Paint) -> String {
    let (owners, ow) = owner_column(
        rows.iter()
            .map(|r| (r.chain_image.as_deref(), r.owner.as_deref())),
    );
    let created: Vec<String> = rows
        .iter()
        .map(|r| compact_time(r.created.as_deref().unwrap_or("-")))
        .collect();
    let cw = created.iter().map(String::len).max().unwrap_or(7).max(7);
    let mut out = format!("{}\n", paint.image(image));
    let head = format!(
        "{:<4}  {:<cw$}  {:>8}  {:<ow$}  ",
        "STEP", "CREATED", "SIZE", "OWNER"
    );
    let room = width.saturating_sub(head.chars().count());
    let _ = writeln!(out, "{}", paint.dim(&format!("{head}CREATED BY")));
    for (i, ((row, own), created)) in rows.iter().zip(&owners).zip(&created).enumerate() {
        let size = if row.empty_layer {
            "empty".to_string()
        } else {
            human(row.size)
        };
        let _ = writeln!(
            out,
            "{i:<4}  {created:<cw$}  {size:>8}  {}  {}",
            paint.owner(&format!("{:<ow$}", fit(own, ow))),
            fit(row.created_by.as_deref().unwrap_or(""), room)
        );
    }
    out
}

/// `2026-11-23T21:30:43Z` → `2026-11-23 21:30`; other text unchanged.
fn compact_time(rfc3339: &str) -> String {
    let b = rfc3339.as_bytes();
    if b.len() >= 16 && b[10] == b'T' && b[13] == b':' {
        format!("{} {}", &rfc3339[..10], &rfc3339[11..16])
    } else {
        rfc3339.to_string()
    }
}

/// `strata inspect` as text: identity, chain facts, base, provenance, annotations, layers and
/// the config's runtime settings (the whole manifest and config are in the JSON form).
pub fn inspect(i: &Inspection, width: usize, paint: Paint) -> String {
    let mut out = String::new();
    let field = |out: &mut String, name: &str, value: &str| {
        let _ = writeln!(
            out,
            "{:<13}{}",
            format!("{name}:"),
            fit(value, width.saturating_sub(13))
        );
    };
    let _ = writeln!(out, "{}", paint.image(&i.reference));
    field(&mut out, "Digest", &i.digest);
    field(&mut out, "Media type", &i.media_type);
    field(
        &mut out,
        "Tags",
        &if i.tags.is_empty() {
            "(untagged)".to_string()
        } else {
            i.tags.join(", ")
        },
    );
    let own = i.layers.iter().filter(|l| l.own).count();
    field(
        &mut out,
        "Size",
        &format!("{} ({} layers, {own} own)", human(i.size), i.layers.len()),
    );
    field(
        &mut out,
        "Chain image",
        &owner(i.chain_image.as_deref(), i.owner.as_deref()),
    );
    field(&mut out, "Build key", i.build_key.as_deref().unwrap_or("-"));
    match &i.base {
        Some(base) => {
            field(&mut out, "Base", base.name.as_deref().unwrap_or("-"));
            let where_ = if !base.in_store {
                "not in the store".to_string()
            } else if base.tags.is_empty() {
                "in the store, untagged".to_string()
            } else {
                format!("in the store as {}", base.tags.join(", "))
            };
            field(
                &mut out,
                "Base digest",
                &format!("{} ({where_})", base.digest.as_deref().unwrap_or("-")),
            );
        }
        None => field(&mut out, "Base", "- (no base annotations)"),
    }
    match &i.provenance {
        Provenance::None => field(&mut out, "Provenance", "none attached"),
        Provenance::Attested { attestations } => {
            for a in attestations {
                let keys: Vec<&str> = a.key_ids.iter().map(|k| &k[..k.len().min(12)]).collect();
                let text = match &a.unreadable {
                    Some(why) => format!("unreadable attestation: {why}"),
                    None => format!(
                        "owner {} tier {} from {} finished {} key {} (signature checked by `strata verify`)",
                        a.owner.as_deref().unwrap_or("-"),
                        a.tier.as_deref().unwrap_or("-"),
                        a.base.as_deref().unwrap_or("-"),
                        a.finished_on.as_deref().unwrap_or("-"),
                        keys.join(",")
                    ),
                };
                field(
                    &mut out,
                    "Provenance",
                    &fit(&text, width.saturating_sub(16)),
                );
            }
        }
    }
    if !i.annotations.is_empty() {
        let _ = writeln!(out, "Annotations:");
        for (k, v) in &i.annotations {
            let line = format!("  {k}={v}");
            let _ = writeln!(out, "{}", fit(&line, width));
        }
    }
    let _ = writeln!(out, "Layers:");
    for (n, l) in i.layers.iter().enumerate() {
        let _ = writeln!(
            out,
            "  {n:<3} {}  {:>8}  {}",
            paint.digest(&short(&l.digest)),
            human(l.size),
            if l.own { "own" } else { "inherited" }
        );
    }
    let config = &i.config["config"];
    let settings = [
        ("User", "User"),
        ("WorkingDir", "WorkingDir"),
        ("Entrypoint", "Entrypoint"),
        ("Cmd", "Cmd"),
        ("ExposedPorts", "ExposedPorts"),
        ("Env", "Env"),
        ("Labels", "Labels"),
    ];
    let present: Vec<_> = settings
        .iter()
        .filter(|(k, _)| !config[*k].is_null())
        .collect();
    if !present.is_empty() {
        let _ = writeln!(out, "Config:");
        for (key, label) in present {
            let line = format!("  {label}: {}", config[*key]);
            let _ = writeln!(out, "{}", fit(&line, width));
        }
    }
    out
}

fn layer_line(mark: &str, l: &LayerRef, width: usize, paint: Paint) -> String {
    let head = format!(
        "  {mark} {:<3} {}  {:>8}  ",
        l.index,
        short(&l.diff_id),
        human(l.size)
    );
    let room = width.saturating_sub(head.chars().count());
    let mark = match mark {
        "+" => paint.good(mark),
        "-" => paint.bad(mark),
        m => m.to_string(),
    };
    format!(
        "  {mark} {:<3} {}  {:>8}  {}\n",
        l.index,
        paint.digest(&short(&l.diff_id)),
        human(l.size),
        fit(l.created_by.as_deref().unwrap_or(""), room)
    )
}

fn state(s: &FileState) -> String {
    let mut out = format!("{} {:04o} {}:{}", s.kind, s.mode, s.uid, s.gid);
    if s.kind == "file" {
        let _ = write!(out, " {}", human(s.size));
        if let Some(d) = &s.content_digest {
            let _ = write!(out, " {}", short(d));
        }
    }
    if let Some(link) = &s.link {
        let _ = write!(out, " -> {link}");
    }
    out
}

/// What differs between two states of a path: `size 40 B → 48 B, content sha256:… → sha256:…`.
pub fn changes(before: &FileState, after: &FileState) -> String {
    let mut parts = Vec::new();
    if before.kind != after.kind {
        parts.push(format!("kind {} → {}", before.kind, after.kind));
    }
    if before.size != after.size {
        parts.push(format!(
            "size {} → {}",
            human(before.size),
            human(after.size)
        ));
    }
    if before.mode != after.mode {
        parts.push(format!("mode {:04o} → {:04o}", before.mode, after.mode));
    }
    if (before.uid, before.gid) != (after.uid, after.gid) {
        parts.push(format!(
            "owner {}:{} → {}:{}",
            before.uid, before.gid, after.uid, after.gid
        ));
    }
    if before.content_digest != after.content_digest {
        let d = |s: &FileState| s.content_digest.as_deref().map(short).unwrap_or("-".into());
        parts.push(format!("content {} → {}", d(before), d(after)));
    }
    if before.link != after.link {
        let l = |s: &FileState| s.link.clone().unwrap_or_else(|| "-".into());
        parts.push(format!("link {} → {}", l(before), l(after)));
    }
    parts.join(", ")
}

fn file_line(c: &FileChange, width: usize, paint: Paint) -> String {
    let (mark, detail) = match (c.change, &c.before, &c.after) {
        (Change::Added, _, Some(a)) => (paint.good("A"), state(a)),
        (Change::Removed, Some(b), _) => (paint.bad("D"), state(b)),
        (Change::Modified, Some(b), Some(a)) => ("M".to_string(), changes(b, a)),
        _ => ("?".to_string(), String::new()),
    };
    let room = width.saturating_sub(4 + c.path.chars().count() + 2);
    format!("  {mark} {}  {}\n", c.path, fit(&detail, room))
}

/// `strata diff` as text: the layers, then the files that differ.
pub fn diff(d: &ImageDiff, width: usize, paint: Paint) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "A: {} ({})", paint.image(&d.a.0), short(&d.a.1));
    let _ = writeln!(out, "B: {} ({})", paint.image(&d.b.0), short(&d.b.1));
    let _ = writeln!(
        out,
        "Layers: {} shared ({} in a common base), {} removed, {} added",
        d.shared.len(),
        d.common_prefix,
        d.removed.len(),
        d.added.len()
    );
    for l in &d.shared {
        out.push_str(&layer_line("=", l, width, paint));
    }
    for l in &d.removed {
        out.push_str(&layer_line("-", l, width, paint));
    }
    for l in &d.added {
        out.push_str(&layer_line("+", l, width, paint));
    }
    let count = |c: Change| d.files.iter().filter(|f| f.change == c).count();
    let _ = writeln!(
        out,
        "Files: {} added, {} removed, {} modified",
        count(Change::Added),
        count(Change::Removed),
        count(Change::Modified)
    );
    for c in &d.files {
        out.push_str(&file_line(c, width, paint));
    }
    out
}

/// `strata layers` as text: a row per layer (and its files with `files`), totals, then the
/// paths stored more than once.
pub fn layers(r: &LayersReport, files: bool, width: usize, paint: Paint) -> String {
    let mut out = format!("{} ({})\n", paint.image(&r.image), short(&r.digest));
    let (owners, ow) = owner_column(
        r.layers
            .iter()
            .map(|l| (l.chain_image.as_deref(), l.owner.as_deref())),
    );
    let head = format!(
        "{:<5}  {:<12}  {:>8}  {:>8}  {:>8}  {:<ow$}  ",
        "LAYER", "DIFF ID", "BLOB", "FILES", "WASTED", "OWNER"
    );
    let room = width.saturating_sub(head.chars().count());
    let _ = writeln!(out, "{}", paint.dim(&format!("{head}CREATED BY")));
    for (l, own) in r.layers.iter().zip(&owners) {
        let wasted = if l.wasted_bytes > 0 {
            paint.bad(&format!("{:>8}", human(l.wasted_bytes)))
        } else {
            format!("{:>8}", human(0))
        };
        let _ = writeln!(
            out,
            "{:<5}  {}  {:>8}  {:>8}  {wasted}  {}  {}",
            l.index,
            paint.digest(&short(&l.diff_id)[7..]),
            human(l.size),
            human(l.content_bytes),
            paint.owner(&format!("{:<ow$}", fit(own, ow))),
            fit(l.created_by.as_deref().unwrap_or(""), room)
        );
        for path in &l.deleted {
            let _ = writeln!(
                out,
                "       {} {}",
                paint.bad("deletes"),
                fit(path, width.saturating_sub(15))
            );
        }
        if files {
            for f in &l.files {
                let fate = match f.fate {
                    Fate::Kept => String::new(),
                    Fate::Overwritten { by } => paint.bad(&format!("  overwritten by layer {by}")),
                    Fate::Deleted { by } => paint.bad(&format!("  deleted by layer {by}")),
                };
                let _ = writeln!(
                    out,
                    "       {:<8} {:04o} {:>5}:{:<5} {:>8}  {}{fate}",
                    f.kind,
                    f.mode,
                    f.uid,
                    f.gid,
                    human(f.size),
                    fit(&f.path, width.saturating_sub(48)),
                );
            }
        }
    }
    let _ = writeln!(
        out,
        "Total: {} of files, {} wasted; efficiency {:.2} % (dive's score), potential wasted {}",
        human(r.content_bytes),
        human(r.wasted_bytes),
        r.efficiency * 100.0,
        human(r.potential_wasted_bytes)
    );
    if !r.inefficiencies.is_empty() {
        let _ = writeln!(out, "Paths stored more than once:");
        let _ = writeln!(
            out,
            "{}",
            paint.dim(&format!("  {:>5}  {:>8}  PATH", "COUNT", "TOTAL"))
        );
        for i in &r.inefficiencies {
            let _ = writeln!(
                out,
                "  {:>5}  {:>8}  {}",
                i.count,
                human(i.cumulative_size),
                fit(&i.path, width.saturating_sub(19))
            );
        }
    }
    out
}
