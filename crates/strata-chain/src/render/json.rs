//! The chain as JSON, schema `strata.chain/v1`, documented in docs/chain.md. Keys are stable; new
//! keys may be added, none removed or renamed without a new schema name.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use crate::chain::Chain;
use crate::graph::UseKind;
use crate::manifest::Build;
use crate::status::{Status, Statuses};

/// The schema name in the document's `schema` key.
pub const JSON_SCHEMA: &str = "strata.chain/v1";

/// The whole document.
#[derive(Serialize)]
pub struct ChainDoc<'a> {
    schema: &'static str,
    chain: &'a str,
    registry: Option<&'a str>,
    require_signatures: bool,
    teams: Vec<TeamDoc<'a>>,
    images: Vec<ImageDoc<'a>>,
    external: Vec<ExternalDoc<'a>>,
    order: Vec<&'a str>,
}

#[derive(Serialize)]
struct TeamDoc<'a> {
    name: &'a str,
    description: Option<&'a str>,
    contact: Option<&'a str>,
    keys: Vec<String>,
    images: Vec<&'a str>,
}

#[derive(Serialize)]
struct ImageDoc<'a> {
    name: &'a str,
    owner: &'a str,
    tier: Option<&'a str>,
    build: BuildDoc<'a>,
    args: &'a BTreeMap<String, String>,
    tags: &'a [String],
    test: Option<String>,
    squash: &'static str,
    platform: Option<&'a str>,
    parents: Vec<&'a str>,
    children: Vec<&'a str>,
    external: Vec<&'a str>,
    uses: Vec<UseDoc<'a>>,
    wave: usize,
    status: &'a Status,
}

#[derive(Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
enum BuildDoc<'a> {
    Dockerfile { context: String, dockerfile: String },
    Rootfs { rootfs: String },
    Image { image: &'a str },
}

#[derive(Serialize)]
struct UseDoc<'a> {
    kind: UseKind,
    line: usize,
    reference: &'a str,
    image: Option<&'a str>,
}

#[derive(Serialize)]
struct ExternalDoc<'a> {
    reference: &'a str,
    used_by: Vec<UserDoc<'a>>,
}

#[derive(Serialize)]
struct UserDoc<'a> {
    image: &'a str,
    kind: UseKind,
    line: usize,
}

/// The chain as a serializable document (serialize it with serde_json; keys in schema order).
pub fn document<'a>(chain: &'a Chain, statuses: &'a Statuses) -> ChainDoc<'a> {
    let graph = chain.graph();
    let file = &chain.file;
    let rel = |p: &std::path::Path| file.relative(p).display().to_string();
    let images = file
        .images
        .iter()
        .enumerate()
        .map(|(i, image)| {
            let parents = graph.parents(i);
            let mut uses: Vec<UseDoc<'a>> = Vec::new();
            for &p in &parents {
                for site in graph.uses(p, i) {
                    uses.push(UseDoc {
                        kind: site.kind,
                        line: site.line,
                        reference: &site.reference,
                        image: Some(graph.name(p)),
                    });
                }
            }
            for site in graph.external_uses(i) {
                uses.push(UseDoc {
                    kind: site.kind,
                    line: site.line,
                    reference: &site.reference,
                    image: None,
                });
            }
            uses.sort_by_key(|u| u.line);
            ImageDoc {
                name: &image.name,
                owner: &image.owner,
                tier: image.tier.as_deref(),
                build: match &image.build {
                    Build::Dockerfile {
                        context,
                        dockerfile,
                    } => BuildDoc::Dockerfile {
                        context: rel(context),
                        dockerfile: rel(dockerfile),
                    },
                    Build::Rootfs { path } => BuildDoc::Rootfs { rootfs: rel(path) },
                    Build::Image { reference, .. } => BuildDoc::Image { image: reference },
                },
                args: &image.args,
                tags: &image.tags,
                test: image.test.as_deref().map(rel),
                squash: image.squash.as_str(),
                platform: image.platform.as_deref(),
                parents: parents.iter().map(|&p| graph.name(p)).collect(),
                children: graph
                    .children(i)
                    .into_iter()
                    .map(|c| graph.name(c))
                    .collect(),
                external: graph.external_of(i),
                uses,
                wave: graph.wave(i) + 1,
                status: statuses.get(i),
            }
        })
        .collect();
    let mut team_images: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for image in &file.images {
        team_images
            .entry(&image.owner)
            .or_default()
            .push(&image.name);
    }
    let teams = file
        .teams
        .values()
        .map(|t| TeamDoc {
            name: &t.name,
            description: t.description.as_deref(),
            contact: t.contact.as_deref(),
            keys: t.keys.iter().map(|k| rel(k)).collect(),
            images: team_images.remove(t.name.as_str()).unwrap_or_default(),
        })
        .collect();
    let external = graph
        .external()
        .iter()
        .map(|(reference, users)| ExternalDoc {
            reference,
            used_by: users
                .iter()
                .map(|(i, site)| UserDoc {
                    image: graph.name(*i),
                    kind: site.kind,
                    line: site.line,
                })
                .collect(),
        })
        .collect();
    ChainDoc {
        schema: JSON_SCHEMA,
        chain: &file.name,
        registry: file.registry.as_deref(),
        require_signatures: file.require_signatures,
        teams,
        images,
        external,
        order: graph.order().iter().map(|&i| graph.name(i)).collect(),
    }
}

/// The chain as a JSON value: images (file order) with owner, tier, parents, children, external
/// references, wave and status; teams; external roots; build order.
pub fn json(chain: &Chain, statuses: &Statuses) -> Value {
    serde_json::to_value(document(chain, statuses)).expect("the chain document serializes")
}
