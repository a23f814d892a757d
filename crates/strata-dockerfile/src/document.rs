//! The stable JSON document of `strata dockerfile parse --json` (see docs/dockerfile-json.md).

use std::collections::HashSet;

use serde::Serialize;

use crate::run_env::EnvLink;
use crate::{Dependency, Directives, Dockerfile, Resolved, Stage, Warning};

/// The schema name and version written in every document. v2: a RUN's `env` is the id of an
/// entry of `run_envs` (v1 repeated the whole environment in every RUN, which made documents
/// grow with the square of the file's length).
pub const SCHEMA: &str = "strata.dockerfile/v2";

/// One entry of [`Document::run_envs`]: variables set on top of the `parent` entry.
#[derive(Debug, Clone, Serialize)]
pub struct RunEnvEntry<'a> {
    /// The id RUN instructions give as their `env`.
    pub id: usize,
    /// The entry this one adds to (None: it starts from nothing).
    pub parent: Option<usize>,
    /// `[name, value]` set after the parent's, in order (a name set again keeps its place).
    pub vars: &'a [(String, String)],
}

/// Everything known about one Dockerfile after resolution, ready to serialise.
#[derive(Debug, Clone, Serialize)]
pub struct Document<'a> {
    /// Always [`SCHEMA`].
    pub schema: &'static str,
    /// The file name as given by the caller.
    pub file: &'a str,
    /// The parser directives.
    pub directives: &'a Directives,
    /// Parser warnings, then resolution warnings (failures in stages the target does not need).
    pub warnings: Vec<Warning>,
    /// Global ARGs and their values, in order.
    pub global_args: &'a [(String, String)],
    /// Build args no ARG declared.
    pub unused_build_args: &'a [String],
    /// The index of the target stage.
    pub target: usize,
    /// The stages, expanded.
    pub stages: &'a [Stage],
    /// The external images the Dockerfile depends on (all stages).
    pub dependencies: Vec<Dependency>,
    /// The process environments of the RUN instructions, by id, as deltas over a parent.
    pub run_envs: Vec<RunEnvEntry<'a>>,
}

impl<'a> Document<'a> {
    /// The document for `dockerfile` resolved as `resolved`, read from `file`.
    pub fn new(file: &'a str, dockerfile: &'a Dockerfile, resolved: &'a Resolved) -> Self {
        Document {
            schema: SCHEMA,
            file,
            directives: &dockerfile.directives,
            warnings: dockerfile
                .warnings
                .iter()
                .chain(&resolved.warnings)
                .cloned()
                .collect(),
            global_args: &resolved.global_args,
            unused_build_args: &resolved.unused_build_args,
            target: resolved.target,
            stages: &resolved.stages,
            dependencies: resolved.dependencies(),
            run_envs: run_envs(&resolved.stages),
        }
    }
}

/// Every link of every RUN's environment chain, once each, by id.
fn run_envs(stages: &[Stage]) -> Vec<RunEnvEntry<'_>> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for ri in stages.iter().flat_map(|s| &s.instructions) {
        let mut link: Option<&EnvLink> = ri.env.as_ref().map(|e| &*e.0);
        while let Some(l) = link {
            if !seen.insert(l.id) {
                break;
            }
            out.push(RunEnvEntry {
                id: l.id,
                parent: l.parent.as_ref().map(|p| p.id),
                vars: &l.vars,
            });
            link = l.parent.as_deref();
        }
    }
    out.sort_by_key(|e| e.id);
    out
}
