//! The chain as JSON, schema `strata.chain/v1`, documented in docs/chain.md. Keys are stable; new
//! keys may be added, none removed or renamed without a new schema name.

use serde_json::{Value, json};

use crate::chain::Chain;
use crate::manifest::Build;
use crate::status::Statuses;

/// The schema name in the document's `schema` key.
pub const JSON_SCHEMA: &str = "strata.chain/v1";

/// The chain as a JSON document: images (file order) with owner, tier, parents, children,
/// external references, wave and status; teams; external roots; build order.
pub fn json(chain: &Chain, statuses: &Statuses) -> Value {
    let graph = chain.graph();
    let file = &chain.file;
    let rel = |p: &std::path::Path| file.relative(p).display().to_string();
    let images: Vec<Value> = file
        .images
        .iter()
        .enumerate()
        .map(|(i, image)| {
            let build = match &image.build {
                Build::Dockerfile { context, dockerfile } => {
                    json!({ "kind": "dockerfile", "context": rel(context), "dockerfile": rel(dockerfile) })
                }
                Build::Rootfs { path } => json!({ "kind": "rootfs", "rootfs": rel(path) }),
                Build::Image { reference } => json!({ "kind": "image", "image": reference }),
            };
            let mut uses: Vec<Value> = Vec::new();
            for p in graph.parents(i) {
                for site in graph.uses(p, i) {
                    uses.push(json!({
                        "kind": site.kind, "line": site.line, "reference": site.reference,
                        "image": graph.name(p),
                    }));
                }
            }
            for site in graph.external_uses(i) {
                uses.push(json!({
                    "kind": site.kind, "line": site.line, "reference": site.reference, "image": null,
                }));
            }
            uses.sort_by_key(|u| u["line"].as_u64());
            json!({
                "name": image.name,
                "owner": image.owner,
                "tier": image.tier,
                "build": build,
                "args": image.args,
                "tags": image.tags,
                "test": image.test.as_deref().map(rel),
                "squash": image.squash.as_str(),
                "platform": image.platform,
                "parents": graph.parents(i).into_iter().map(|p| graph.name(p)).collect::<Vec<_>>(),
                "children": graph.children(i).into_iter().map(|c| graph.name(c)).collect::<Vec<_>>(),
                "external": graph.external_of(i),
                "uses": uses,
                "wave": graph.wave(i) + 1,
                "status": statuses.get(i),
            })
        })
        .collect();
    let teams: Vec<Value> = file
        .teams
        .values()
        .map(|t| {
            json!({
                "name": t.name,
                "description": t.description,
                "contact": t.contact,
                "keys": t.keys.iter().map(|k| rel(k)).collect::<Vec<_>>(),
                "images": file.images.iter().filter(|i| i.owner == t.name).map(|i| i.name.as_str()).collect::<Vec<_>>(),
            })
        })
        .collect();
    let external: Vec<Value> = graph
        .external()
        .iter()
        .map(|(reference, users)| {
            json!({
                "reference": reference,
                "used_by": users.iter().map(|(i, site)| json!({
                    "image": graph.name(*i), "kind": site.kind, "line": site.line,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "schema": JSON_SCHEMA,
        "chain": file.name,
        "registry": file.registry,
        "require_signatures": file.require_signatures,
        "teams": teams,
        "images": images,
        "external": external,
        "order": graph.order().iter().map(|&i| graph.name(i)).collect::<Vec<_>>(),
    })
}
