//! `strata advisories --osv DIR [IMAGE...]`: the OSV advisories that affect the store's images, each
//! with the package, the tier and team that installed it, and the fixed version.
//!
//! `strata affected PACKAGE[@RANGE]` / `strata affected CVE-ID --osv DIR`: who must patch. The
//! images carrying the package (or an advisory's packages), the tier and team that brought it in,
//! whether a newer build of the image already dropped it, and what a fix in that tier rebuilds
//! (the `strata plan --changed TIER` of the chain file, when there is one).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use serde::Serialize;
use strata_inspect::Catalog;
use strata_inventory::InstalledPackage;
use strata_inventory::index::{IndexedInventory, Inventories};
use strata_inventory::osv::{self, OsvRecord};
use strata_inventory::sbom::tier_of;
use strata_oci::{Digest, Reference, Store};

use super::graph::{load_chain, write_stdout};
use crate::global::GlobalArgs;

/// Arguments of `strata advisories`.
#[derive(Debug, clap::Args)]
pub struct AdvisoriesArgs {
    /// A directory of OSV records (JSON files, as osv.dev exports them).
    #[arg(long, value_name = "DIR")]
    osv: PathBuf,
    /// The images to check (default: every tagged image's latest build).
    images: Vec<String>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Arguments of `strata affected`.
#[derive(Debug, clap::Args)]
pub struct AffectedArgs {
    /// `PACKAGE[@RANGE]` (binary or source package; RANGE: `VERSION`, or `<V`, `<=V`, `>V`,
    /// `>=V`, `=V` joined by `,`), or an advisory id (`CVE-2023-5678`, `DSA-5532-1`) with `--osv`.
    target: String,
    /// A directory of OSV records, to look an advisory id up in.
    #[arg(long, value_name = "DIR")]
    osv: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Run `strata advisories`.
pub fn advisories(args: AdvisoriesArgs, global: &GlobalArgs) -> Result<ExitCode> {
    let records = osv::load_dir(&args.osv).context("cannot load the OSV records")?;
    let (store, path) = open_store(global)?;
    let mut inventories = open_inventories(&store, &path)?;
    let images: Vec<Digest> = if args.images.is_empty() {
        latest_builds(inventories.tags()).into_values().collect()
    } else {
        // Names as every command reads them (short names, `NAME@N`): through the catalog.
        let catalog = Catalog::load(&store)
            .with_context(|| format!("cannot read the images of {}", path.display()))?;
        args.images
            .iter()
            .map(|i| catalog.find(&store, i).map(|image| image.digest.clone()))
            .collect::<Result<_, _>>()?
    };
    let mut findings = Vec::new();
    let mut seen = BTreeSet::new();
    for digest in images {
        if !seen.insert(digest.clone()) {
            continue;
        }
        let image = read_inventory(&mut inventories, &digest)?;
        findings.extend(osv::match_indexed(&records, &image));
    }
    inventories.save();
    let text = if args.json {
        serde_json::to_string_pretty(&findings)? + "\n"
    } else {
        let mut out = String::new();
        for f in &findings {
            let p = &f.package;
            let _ = writeln!(
                out,
                "{}{} {}: {} {} (source {} {}) installed by {}; {}",
                f.id,
                if f.aliases.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", f.aliases.join(", "))
                },
                f.image,
                p.package.name,
                p.package.version,
                p.package.source_name,
                p.package.source_version,
                who(p),
                f.fixed
                    .as_deref()
                    .map(|v| format!("fixed in {v}"))
                    .unwrap_or_else(|| "no fix yet".to_string()),
            );
        }
        let _ = writeln!(out, "{} findings", findings.len());
        out
    };
    write_stdout(&text)?;
    Ok(ExitCode::SUCCESS)
}

/// What `strata affected` found in one repository (chain image).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct RepoReport {
    /// The repository (`localhost/acme/wordpress`).
    repository: String,
    /// Its latest build's tag and digest.
    latest: String,
    /// The latest build's matching packages (empty: it does not carry the package).
    packages: Vec<Hit>,
    /// Older builds that carried it when the latest does not: a newer build already fixed it.
    fixed_since: Vec<String>,
}

/// One matching package of an image.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct Hit {
    #[serde(flatten)]
    package: InstalledPackage,
    /// The advisory that names it (advisory mode).
    #[serde(skip_serializing_if = "Option::is_none")]
    advisory: Option<String>,
    /// The version that fixes it, when the advisory names one.
    #[serde(skip_serializing_if = "Option::is_none")]
    fixed: Option<String>,
}

/// What a fix in one tier rebuilds.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct TierFix {
    /// The tier (chain image) that brought the package in.
    tier: String,
    /// Its owner team.
    team: Option<String>,
    /// `strata plan --changed TIER` (absent without a chain file naming the tier).
    #[serde(skip_serializing_if = "Option::is_none")]
    plan: Option<strata_chain::plan::Plan>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct AffectedReport {
    target: String,
    images: Vec<RepoReport>,
    fixes: Vec<TierFix>,
}

/// What to look for.
enum Matcher {
    Package {
        name: String,
        range: Vec<(std::cmp::Ordering, bool, String)>,
    },
    Advisory(Vec<OsvRecord>),
}

impl Matcher {
    fn hits(&self, image: &IndexedInventory) -> Vec<Hit> {
        match self {
            Matcher::Package { name, range } => image
                .packages
                .packages
                .iter()
                .filter(|p| &p.package.name == name || &p.package.source_name == name)
                .filter(|p| {
                    // A range names the binary's version, or the source's when the name is a source.
                    let v = if &p.package.name == name {
                        &p.package.version
                    } else {
                        &p.package.source_version
                    };
                    range.iter().all(|(ord, or_equal, bound)| {
                        let c = p.package.ecosystem.compare(v, bound);
                        c == *ord || (*or_equal && c == std::cmp::Ordering::Equal)
                    })
                })
                .map(|p| Hit {
                    package: p.clone(),
                    advisory: None,
                    fixed: None,
                })
                .collect(),
            Matcher::Advisory(records) => osv::match_indexed(records, image)
                .into_iter()
                .map(|f| Hit {
                    package: f.package,
                    advisory: Some(f.id),
                    fixed: f.fixed,
                })
                .collect(),
        }
    }
}

/// `PACKAGE[@RANGE]` read.
fn parse_package(target: &str) -> Result<Matcher> {
    use std::cmp::Ordering::*;
    let (name, range) = match target.split_once('@') {
        Some((n, r)) => (n, Some(r)),
        None => (target, None),
    };
    if name.is_empty() {
        bail!("{target}: no package name");
    }
    let mut out = Vec::new();
    for part in range.into_iter().flat_map(|r| r.split(',')) {
        let part = part.trim();
        let (ord, or_equal, v) = if let Some(v) = part.strip_prefix("<=") {
            (Less, true, v)
        } else if let Some(v) = part.strip_prefix(">=") {
            (Greater, true, v)
        } else if let Some(v) = part.strip_prefix('<') {
            (Less, false, v)
        } else if let Some(v) = part.strip_prefix('>') {
            (Greater, false, v)
        } else {
            (Equal, true, part.strip_prefix('=').unwrap_or(part))
        };
        if v.is_empty() {
            bail!("{target}: an empty version in the range");
        }
        out.push((ord, or_equal, v.to_string()));
    }
    Ok(Matcher::Package {
        name: name.to_string(),
        range: out,
    })
}

/// Whether `target` reads as an advisory id (`CVE-2023-5678`, `DSA-5532-1`, `GHSA-…`).
fn is_advisory_id(target: &str) -> bool {
    let mut parts = target.split('-');
    let prefix = parts.next().unwrap_or("");
    !prefix.is_empty()
        && prefix.bytes().all(|b| b.is_ascii_uppercase())
        && parts.next().is_some()
        && !target.contains('@')
}

/// Run `strata affected`.
pub fn affected(args: AffectedArgs, global: &GlobalArgs) -> Result<ExitCode> {
    let matcher = if is_advisory_id(&args.target) {
        let Some(dir) = &args.osv else {
            bail!(
                "{}: an advisory id needs --osv DIR (a directory of OSV records)",
                args.target
            );
        };
        let records: Vec<OsvRecord> = osv::load_dir(dir)
            .context("cannot load the OSV records")?
            .into_iter()
            .filter(|r| r.is_named(&args.target))
            .collect();
        if records.is_empty() {
            bail!("{}: no OSV record under {}", args.target, dir.display());
        }
        Matcher::Advisory(records)
    } else {
        parse_package(&args.target)?
    };
    // Tags and the package index: no image's manifest, config or layers are read unless the
    // index lacks it (docs/inspect.md).
    let (store, path) = open_store(global)?;
    let mut inventories = open_inventories(&store, &path)?;
    let tags = inventories.tags().to_vec();
    let mut memo: HashMap<Digest, Vec<Hit>> = HashMap::new();
    let mut hits_of = |memo: &mut HashMap<Digest, Vec<Hit>>, digest: &Digest| -> Result<usize> {
        if !memo.contains_key(digest) {
            let image = read_inventory(&mut inventories, digest)?;
            memo.insert(digest.clone(), matcher.hits(&image));
        }
        Ok(memo[digest].len())
    };
    let mut reports = Vec::new();
    for (repository, builds) in builds_by_repository(&tags) {
        let Some(&(ref latest_tag, latest)) = builds.last() else {
            continue;
        };
        let carried = hits_of(&mut memo, latest)?;
        let mut fixed_since = Vec::new();
        if carried == 0 {
            for &(ref tag, image) in &builds[..builds.len() - 1] {
                if hits_of(&mut memo, image)? > 0 {
                    fixed_since.push(tag.clone());
                }
            }
            if fixed_since.is_empty() {
                continue;
            }
        }
        reports.push(RepoReport {
            repository,
            latest: format!("{latest_tag}@{latest}"),
            packages: memo.get(latest).cloned().unwrap_or_default(),
            fixed_since,
        });
    }
    inventories.save();
    // The tiers that brought it into the latest builds, and what a fix there rebuilds.
    let mut tiers: BTreeMap<String, Option<String>> = BTreeMap::new();
    for r in &reports {
        for h in &r.packages {
            tiers.insert(
                tier_of(&h.package.installed_by),
                h.package.installed_by.owner.clone(),
            );
        }
    }
    let chain = load_chain(global).ok();
    let fixes: Vec<TierFix> = tiers
        .into_iter()
        .map(|(tier, team)| {
            let plan = chain.as_ref().and_then(|chain| {
                let short = tier.rsplit('/').next().unwrap_or(&tier);
                let name = [tier.as_str(), short]
                    .into_iter()
                    .find(|n| chain.index(n).is_some())?;
                strata_chain::plan::plan(
                    chain,
                    &[name.to_string()],
                    &strata_chain::Statuses(Vec::new()),
                )
                .ok()
            });
            TierFix { tier, team, plan }
        })
        .collect();
    let report = AffectedReport {
        target: args.target.clone(),
        images: reports,
        fixes,
    };
    let text = if args.json {
        serde_json::to_string_pretty(&report)? + "\n"
    } else {
        render(&report)
    };
    write_stdout(&text)?;
    Ok(ExitCode::SUCCESS)
}

fn render(report: &AffectedReport) -> String {
    let mut out = String::new();
    if report.images.is_empty() {
        let _ = writeln!(out, "{}: no image carries it", report.target);
        return out;
    }
    for r in &report.images {
        if r.packages.is_empty() {
            let _ = writeln!(
                out,
                "{}: fixed in the latest build {} (carried by {})",
                r.repository,
                r.latest,
                r.fixed_since.join(", ")
            );
            continue;
        }
        for h in &r.packages {
            let p = &h.package.package;
            let _ = writeln!(
                out,
                "{}: {} {} (source {} {}) installed by {}{}{}",
                r.repository,
                p.name,
                p.version,
                p.source_name,
                p.source_version,
                who(&h.package),
                h.advisory
                    .as_deref()
                    .map(|a| format!("; {a}"))
                    .unwrap_or_default(),
                h.fixed
                    .as_deref()
                    .map(|v| format!(", fixed in {v}"))
                    .unwrap_or_default(),
            );
        }
    }
    for fix in &report.fixes {
        let team = fix
            .team
            .as_deref()
            .map(|t| format!(" ({t})"))
            .unwrap_or_default();
        let rebuilds = match &fix.plan {
            Some(plan) => plan
                .steps
                .iter()
                .map(|s| match &s.tier {
                    Some(tier) => format!("{} ({}, {tier})", s.image, s.owner),
                    None => format!("{} ({})", s.image, s.owner),
                })
                .collect::<Vec<_>>()
                .join(", "),
            None => "(no chain file names this tier)".to_string(),
        };
        let _ = writeln!(
            out,
            "{} comes from {}{team}; patching it rebuilds {rebuilds}",
            report.target, fix.tier
        );
    }
    out
}

/// `acme/corebuild (operations)`.
fn who(p: &InstalledPackage) -> String {
    let tier = tier_of(&p.installed_by);
    match &p.installed_by.owner {
        Some(team) => format!("{tier} ({team})"),
        None => tier,
    }
}

/// The store, and its path for messages.
fn open_store(global: &GlobalArgs) -> Result<(Store, PathBuf)> {
    let path = global.store_path()?;
    let store =
        Store::open(&path).with_context(|| format!("cannot open the store {}", path.display()))?;
    Ok((store, path))
}

fn open_inventories<'s>(store: &'s Store, path: &std::path::Path) -> Result<Inventories<'s>> {
    Inventories::open(store)
        .with_context(|| format!("cannot read the images of {}", path.display()))
}

fn read_inventory(inventories: &mut Inventories<'_>, digest: &Digest) -> Result<IndexedInventory> {
    inventories
        .get(digest)
        .with_context(|| format!("cannot read the packages of {}", inventories.name(digest)))
}

/// Each repository's tagged builds (tag, manifest digest), oldest first, the latest last:
/// numbered tags (`:3`) by number, then the `latest` tag's image when it is not already the
/// highest-numbered.
fn builds_by_repository(tags: &[(String, Digest)]) -> BTreeMap<String, Vec<(String, &Digest)>> {
    // Images in the order of their first tag, each with its tags in index order (the catalog's
    // order, which decides between two tags of one repository that are neither numbers nor
    // `latest`).
    let mut order: Vec<(&Digest, Vec<&String>)> = Vec::new();
    let mut position: HashMap<&Digest, usize> = HashMap::new();
    for (tag, digest) in tags {
        let i = *position.entry(digest).or_insert_with(|| {
            order.push((digest, Vec::new()));
            order.len() - 1
        });
        order[i].1.push(tag);
    }
    let mut numbered: BTreeMap<String, BTreeMap<u64, (String, &Digest)>> = BTreeMap::new();
    let mut latest: BTreeMap<String, (String, &Digest)> = BTreeMap::new();
    let mut other: BTreeMap<String, (String, &Digest)> = BTreeMap::new();
    for (image, tags) in order {
        for tag in tags {
            let Ok(r) = Reference::parse(tag) else {
                continue;
            };
            let repo = format!("{}/{}", r.registry(), r.repository());
            match r.tag() {
                Some(t) if t.bytes().all(|b| b.is_ascii_digit()) && !t.is_empty() => {
                    if let Ok(n) = t.parse::<u64>() {
                        numbered
                            .entry(repo)
                            .or_default()
                            .insert(n, (tag.clone(), image));
                    }
                }
                Some("latest") => {
                    latest.insert(repo, (tag.clone(), image));
                }
                _ => {
                    other.entry(repo).or_insert((tag.clone(), image));
                }
            }
        }
    }
    let mut out: BTreeMap<String, Vec<(String, &Digest)>> = BTreeMap::new();
    for (repo, builds) in numbered {
        out.insert(repo, builds.into_values().collect());
    }
    for (repo, build) in latest {
        let list = out.entry(repo).or_default();
        // `latest` is the newest build; moved back to an older one, it is still the one in use.
        list.retain(|(_, i)| *i != build.1);
        list.push(build);
    }
    for (repo, build) in other {
        out.entry(repo).or_insert_with(|| vec![build]);
    }
    out
}

/// Each repository's latest build.
fn latest_builds(tags: &[(String, Digest)]) -> BTreeMap<String, Digest> {
    builds_by_repository(tags)
        .into_iter()
        .filter_map(|(repo, builds)| builds.last().map(|(_, i)| (repo, (*i).clone())))
        .collect()
}
