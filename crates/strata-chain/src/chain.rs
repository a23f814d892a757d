//! [`Chain`]: the chain file, every Dockerfile's references, and the graph they make.

use std::path::Path;

pub use crate::dockerfile::uses as dockerfile_uses;
use crate::error::ChainError;
use crate::git::GitCheckouts;
use crate::graph::{GraphDefect, ImageGraph, Resolver, Use};
use crate::manifest::{Build, ChainFile};
use crate::plan::Plan;
use crate::status::{StatusSource, Statuses};

/// A loaded chain: the checked chain file and its image graph (acyclic).
#[derive(Debug, Clone)]
pub struct Chain {
    /// The chain file.
    pub file: ChainFile,
    graph: ImageGraph,
    resolver: Resolver,
}

impl Chain {
    /// Read `path` (a `strata.toml`) and every Dockerfile it names, and build the graph.
    ///
    /// Errors name the file and line at fault: ``strata.toml:7:9: field `image[2].owner`: ...``,
    /// `corebuild/Dockerfile:3:1: FROM: ...`, or the cycle `a → b → a`.
    pub fn load(path: &Path) -> Result<Chain, ChainError> {
        Chain::load_with(path, &mut crate::git::NoGit)
    }

    /// [`Chain::load`], checking out git contexts with `git`.
    pub fn load_with(path: &Path, git: &mut dyn GitCheckouts) -> Result<Chain, ChainError> {
        let text = std::fs::read_to_string(path).map_err(|source| ChainError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let file = ChainFile::parse_with(path, &text, git)?;
        let mut uses = Vec::new();
        for (i, image) in file.images.iter().enumerate() {
            if let Build::Dockerfile {
                context,
                dockerfile,
            } = &image.build
            {
                // Never read through a symlink leaving the context: a parse error would echo
                // the host file it points at.
                let read_err = |source| ChainError::Read {
                    path: dockerfile.clone(),
                    source,
                };
                let bytes = strata_oci::rootdir::read_inside(context, dockerfile, 16 << 20)
                    .map_err(|e| read_err(std::io::Error::other(e)))?
                    .ok_or_else(|| read_err(std::io::ErrorKind::NotFound.into()))?;
                let text = String::from_utf8(bytes).map_err(|_| {
                    read_err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        "not UTF-8 text",
                    ))
                })?;
                uses.extend(
                    crate::dockerfile::uses(i, &text, &image.args).map_err(|error| {
                        ChainError::Dockerfile {
                            path: dockerfile.clone(),
                            error,
                        }
                    })?,
                );
            }
        }
        Chain::from_uses(file, uses)
    }

    /// Build the chain from a checked chain file and its Dockerfiles' references.
    pub fn from_uses(file: ChainFile, uses: Vec<Use>) -> Result<Chain, ChainError> {
        let mut resolver = Resolver::new(
            &file.name,
            file.registry.as_deref(),
            file.images.iter().map(|i| i.name.as_str()),
        );
        for (i, image) in file.images.iter().enumerate() {
            if let Build::Image { reference, .. } = &image.build {
                resolver.add_pinned(reference, i);
            }
        }
        let graph =
            ImageGraph::build(&file.images, uses, &resolver).map_err(|d| defect_error(&file, d))?;
        Ok(Chain {
            file,
            graph,
            resolver,
        })
    }

    /// The chain image a Dockerfile reference names (`acme/corebuild:7`, `corebuild`, a bought
    /// image's pinned reference), or None for an external image. The builder uses it to give a
    /// `FROM` the chain image's current digest.
    pub fn resolve(&self, reference: &str) -> Option<usize> {
        self.resolver.resolve(reference)
    }

    /// The image graph (node `i` is `file.images[i]`).
    pub fn graph(&self) -> &ImageGraph {
        &self.graph
    }

    /// The index of the image named `name`.
    pub fn index(&self, name: &str) -> Option<usize> {
        self.file.images.iter().position(|i| i.name == name)
    }

    /// The status of every image, from `source`.
    pub fn statuses<S: StatusSource>(&self, source: &S) -> Result<Statuses, S::Error> {
        (0..self.file.images.len())
            .map(|i| source.status(self, i))
            .collect::<Result<Vec<_>, _>>()
            .map(Statuses)
    }

    /// Plan the rebuild: from `changed` when not empty (what they cascade to), else from `statuses`.
    pub fn plan(&self, changed: &[String], statuses: &Statuses) -> Result<Plan, ChainError> {
        crate::plan::plan(self, changed, statuses)
    }

    /// The upstreams the chain's Dockerfiles name (external references naming a registry, the
    /// ones `strata.lock` locks), each with where it is first named: `corebuild/Dockerfile:1`.
    pub fn upstreams(&self) -> std::collections::BTreeMap<String, String> {
        self.graph
            .external()
            .iter()
            .filter(|(reference, _)| crate::lock::is_upstream(reference))
            .filter_map(|(reference, users)| {
                let (image, site) = users.first()?;
                let label = Chain::dockerfile_label(&self.file, *image);
                Some((reference.clone(), format!("{label}:{}", site.line)))
            })
            .collect()
    }

    /// The commit each git context of the chain resolved to: (url, rev) → commit, for the
    /// `[[git]]` entries of `strata.lock`. A rev that is a commit id needs no lock entry.
    pub fn git_commits(&self) -> std::collections::BTreeMap<(String, String), String> {
        self.file
            .images
            .iter()
            .filter_map(|i| i.git.as_ref())
            .filter(|g| !crate::git::is_commit_id(&g.rev))
            .map(|g| ((g.url.clone(), g.rev.clone()), g.commit.clone()))
            .collect()
    }

    /// The lock file's path: `strata.lock` beside the chain file.
    pub fn lock_path(&self) -> std::path::PathBuf {
        self.file.dir.join(crate::lock::LOCK_FILE)
    }

    /// The image's Dockerfile, relative to the chain directory, for messages.
    fn dockerfile_label(file: &ChainFile, i: usize) -> String {
        match &file.images[i].build {
            Build::Dockerfile { dockerfile, .. } => file.relative(dockerfile).display().to_string(),
            _ => file.images[i].name.clone(),
        }
    }
}

fn defect_error(file: &ChainFile, defect: GraphDefect) -> ChainError {
    match defect {
        GraphDefect::SelfReference { image, site } => ChainError::SelfReference {
            location: file.images[image].declared_at.clone(),
            image: file.images[image].name.clone(),
            site: format!(
                "{}:{} {} {}",
                Chain::dockerfile_label(file, image),
                site.line,
                site.kind.instruction(),
                site.reference
            ),
        },
        GraphDefect::UnknownChainImage { image, site } => {
            let repository = crate::names::split_reference(&site.reference).repository;
            let wanted = repository.rsplit('/').next().unwrap_or(repository);
            let names: Vec<&str> = file.images.iter().map(|i| i.name.as_str()).collect();
            let hint = match closest(wanted, &names) {
                Some(name) => format!(" (did you mean {name}?)"),
                None => format!(" (its images: {})", names.join(", ")),
            };
            ChainError::UnknownChainImage {
                site: format!(
                    "{}:{} {}",
                    Chain::dockerfile_label(file, image),
                    site.line,
                    site.kind.instruction()
                ),
                reference: site.reference,
                chain: file.name.clone(),
                hint,
            }
        }
        GraphDefect::Cycle(cycle) => ChainError::Cycle {
            location: file.images[cycle[0]].declared_at.clone(),
            image: file.images[cycle[0]].name.clone(),
            cycle: cycle.iter().map(|&i| file.images[i].name.clone()).collect(),
        },
    }
}

/// The name in `names` closest to `wanted` by edit distance, when it is close (at most a third of
/// the name's length, and at least one edit away).
fn closest<'a>(wanted: &str, names: &[&'a str]) -> Option<&'a str> {
    names
        .iter()
        .map(|n| (strsim::levenshtein(wanted, n), *n))
        .filter(|(d, n)| *d > 0 && *d <= n.len().div_ceil(3).max(1))
        .min()
        .map(|(_, n)| n)
}
