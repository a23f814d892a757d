//! Which layers an image keeps: the chain file's `squash` and the builder's `--squash` /
//! `--squash-all`, one type for both.

use serde::{Deserialize, Serialize};

/// How layers are squashed at the end of a build.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Squash {
    /// Keep every layer (the default).
    #[default]
    None,
    /// The layers this Dockerfile added become one on top of its parent's (`--squash`,
    /// buildah's meaning).
    Own,
    /// All layers, the base's included, become one (`--squash-all`).
    All,
}

impl Squash {
    /// The name used in `strata.toml`.
    pub fn as_str(self) -> &'static str {
        match self {
            Squash::None => "none",
            Squash::Own => "own",
            Squash::All => "all",
        }
    }
}
