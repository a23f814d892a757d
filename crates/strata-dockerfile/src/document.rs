//! The stable JSON document of `strata dockerfile parse --json` (see docs/dockerfile-json.md).

use serde::Serialize;

use crate::{Dependency, Directives, Dockerfile, Resolved, Stage, Warning};

/// The schema name and version written in every document.
pub const SCHEMA: &str = "strata.dockerfile/v1";

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
        }
    }
}
