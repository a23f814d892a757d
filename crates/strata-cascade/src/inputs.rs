//! What an image is built from, and the build key that hashes it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use strata_build::context::{BuildContext, StatCache};
use strata_chain::{Build, Chain, StaleReason};
use strata_oci::Store;

use crate::error::CascadeError;
use crate::refs;
use crate::upstream::Upstreams;

/// The builder's format version: a new version makes every image stale.
pub const BUILDER_VERSION: &str = "strata-build/1";

/// Everything an image's content depends on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildInputs {
    /// [`BUILDER_VERSION`].
    pub builder: String,
    /// sha256 of the Dockerfile's bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dockerfile: Option<String>,
    /// The context's tree digest after `.dockerignore`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// A git context's repository and commit, `URL@commit`: a moved branch changes the key even
    /// when the context's files did not change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git: Option<String>,
    /// The build args.
    #[serde(default)]
    pub args: BTreeMap<String, String>,
    /// A bought image's source: the rootfs tarball's sha256, or the pinned reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Every FROM / COPY --from / mount image, as written → the manifest digest used.
    #[serde(default)]
    pub parents: BTreeMap<String, String>,
    /// Options that change the result (squash, platform).
    #[serde(default)]
    pub options: String,
}

impl BuildInputs {
    /// The build key: sha256 of the inputs' canonical JSON.
    pub fn key(&self) -> String {
        let json = serde_json::to_vec(self).expect("inputs serialize");
        format!("sha256:{}", hex::encode(Sha256::digest(&json)))
    }

    /// What changed from `old` to `self`, in words the planner shows.
    pub fn changes_since(
        &self,
        old: &BuildInputs,
        parent_names: &BTreeMap<String, String>,
    ) -> Vec<StaleReason> {
        let mut reasons = Vec::new();
        if self.builder != old.builder {
            reasons.push(StaleReason::BuilderChanged);
        }
        if self.dockerfile != old.dockerfile {
            reasons.push(StaleReason::DockerfileChanged);
        }
        if self.context != old.context || self.git != old.git {
            reasons.push(StaleReason::ContextChanged);
        }
        if self.args != old.args || self.options != old.options {
            reasons.push(StaleReason::ArgsChanged);
        }
        if self.source != old.source {
            reasons.push(StaleReason::SourceChanged);
        }
        for (reference, digest) in &self.parents {
            if old.parents.get(reference) != Some(digest) {
                let parent = parent_names
                    .get(reference)
                    .cloned()
                    .unwrap_or_else(|| reference.clone());
                reasons.push(StaleReason::ParentChanged { parent });
            }
        }
        if reasons.is_empty() && self != old {
            reasons.push(StaleReason::ParentChanged {
                parent: "(a parent was removed)".to_string(),
            });
        }
        reasons
    }
}

/// Inputs of one image, plus what the builder needs to use exactly those parents.
#[derive(Debug, Clone)]
pub struct ResolvedInputs {
    /// The inputs.
    pub inputs: BuildInputs,
    /// Dockerfile reference → pinned store reference (`localhost/acme/base@sha256:...`).
    pub overrides: BTreeMap<String, String>,
    /// Dockerfile reference → chain image name, for chain parents.
    pub parent_names: BTreeMap<String, String>,
}

/// Computes [`BuildInputs`] against the store's current images; hashes contexts through a shared
/// stat cache.
#[derive(Debug)]
pub struct InputsResolver<'a> {
    chain: &'a Chain,
    store: &'a Store,
    stat: Arc<Mutex<StatCache>>,
    stat_path: Option<PathBuf>,
    upstreams: Option<&'a Upstreams>,
}

impl<'a> InputsResolver<'a> {
    /// A resolver; `stat_path` is where the context stat cache is kept (None: in memory only).
    pub fn new(chain: &'a Chain, store: &'a Store, stat_path: Option<PathBuf>) -> Self {
        let stat = stat_path
            .as_deref()
            .map(StatCache::load)
            .unwrap_or_default();
        Self {
            chain,
            store,
            stat: Arc::new(Mutex::new(stat)),
            stat_path,
            upstreams: None,
        }
    }

    /// Read upstreams at the digests `upstreams` locks them to rather than at the store's tags.
    pub fn with_upstreams(mut self, upstreams: &'a Upstreams) -> Self {
        self.upstreams = Some(upstreams);
        self
    }

    /// The context stat cache, for the builds of this run to share (saved by [`Self::save`]).
    pub fn stat_cache(&self) -> Arc<Mutex<StatCache>> {
        self.stat.clone()
    }

    /// Write the stat cache back.
    pub fn save(&self) {
        if let Some(path) = &self.stat_path {
            let mut stat = self.stat.lock().unwrap_or_else(|e| e.into_inner());
            if let Err(e) = stat.save(path) {
                tracing::warn!("cannot save the stat cache {}: {e}", path.display());
            }
        }
    }

    fn err(&self, i: usize, message: impl std::fmt::Display) -> CascadeError {
        CascadeError::Inputs {
            image: self.chain.file.images[i].name.clone(),
            message: message.to_string(),
        }
    }

    /// The inputs of image `i` given the store as it is now.
    pub fn resolve(&self, i: usize) -> Result<ResolvedInputs, CascadeError> {
        let image = &self.chain.file.images[i];
        let mut inputs = BuildInputs {
            builder: BUILDER_VERSION.to_string(),
            dockerfile: None,
            context: None,
            git: image
                .git
                .as_ref()
                .map(|g| format!("{}@{}", g.url, g.commit)),
            args: image.args.clone(),
            source: None,
            parents: BTreeMap::new(),
            options: format!(
                "squash={} platform={}",
                image.squash.as_str(),
                image.platform.as_deref().unwrap_or("")
            ),
        };
        let mut overrides = BTreeMap::new();
        let mut parent_names = BTreeMap::new();
        match &image.build {
            Build::Rootfs { path } => {
                let meta = std::fs::metadata(path)
                    .map_err(|e| self.err(i, format!("{}: {e}", path.display())))?;
                let mut stat = self.stat.lock().unwrap_or_else(|e| e.into_inner());
                let hash = stat
                    .file_hash(path, &meta)
                    .map_err(|e| self.err(i, strata_oci::report(&e)))?;
                inputs.source = Some(format!("rootfs sha256:{hash}"));
            }
            Build::Image { reference, .. } => {
                inputs.source = Some(format!("image {reference}"));
            }
            Build::Dockerfile {
                context,
                dockerfile,
            } => {
                // Never read through a symlink leaving the context (a parse error would echo it).
                let text = strata_build::context::read_context_file(context, dockerfile)
                    .map_err(|e| self.err(i, strata_oci::report(&e)))?
                    .ok_or_else(|| self.err(i, format!("{}: no such file", dockerfile.display())))?
                    .into_bytes();
                inputs.dockerfile = Some(format!("sha256:{}", hex::encode(Sha256::digest(&text))));
                let ctx = BuildContext::open(context, Some(dockerfile))
                    .map_err(|e| self.err(i, strata_oci::report(&e)))?;
                {
                    let mut stat = self.stat.lock().unwrap_or_else(|e| e.into_inner());
                    inputs.context = Some(
                        ctx.tree_digest(&mut stat)
                            .map_err(|e| self.err(i, strata_oci::report(&e)))?,
                    );
                }
                let parsed = strata_dockerfile::parse(&String::from_utf8_lossy(&text))
                    .map_err(|e| self.err(i, format!("{}:{e}", dockerfile.display())))?;
                let deps = parsed
                    .dependencies(&image.args)
                    .map_err(|e| self.err(i, format!("{}:{e}", dockerfile.display())))?;
                for dep in deps {
                    let (store_ref, name) = match self.chain.resolve(&dep.reference) {
                        Some(p) => (
                            refs::tagged(self.chain, p, "latest"),
                            Some(self.chain.file.images[p].name.clone()),
                        ),
                        None => (dep.reference.clone(), None),
                    };
                    // A locked upstream is read at its locked digest, whatever its tag names now
                    // (the build pulls it by digest when the store lacks it).
                    let locked = name
                        .is_none()
                        .then(|| self.upstreams.and_then(|u| u.pinned(&dep.reference)))
                        .flatten();
                    if let Some(digest) = locked {
                        let repo = strata_oci::Reference::parse(&dep.reference)
                            .map(|r| r.name())
                            .unwrap_or_else(|_| dep.reference.clone());
                        overrides.insert(dep.reference.clone(), format!("{repo}@{digest}"));
                        inputs.parents.insert(dep.reference, digest);
                        continue;
                    }
                    let descriptor = self.store.refs().resolve(&store_ref).map_err(|_| {
                        self.err(
                            i,
                            match &name {
                                Some(n) => format!("its parent {n} has not been built"),
                                None => format!(
                                    "external image {} is not in the store (pull or import it)",
                                    dep.reference
                                ),
                            },
                        )
                    })?;
                    let digest = descriptor.digest().to_string();
                    let repo = strata_oci::Reference::parse(&store_ref)
                        .map(|r| r.name())
                        .unwrap_or_else(|_| store_ref.clone());
                    overrides.insert(dep.reference.clone(), format!("{repo}@{digest}"));
                    if let Some(n) = name {
                        parent_names.insert(dep.reference.clone(), n);
                    }
                    inputs.parents.insert(dep.reference, digest);
                }
            }
        }
        Ok(ResolvedInputs {
            inputs,
            overrides,
            parent_names,
        })
    }

    /// The inputs recorded in the stored `:latest` image of `i`, with its digest, if there is one.
    pub fn stored(&self, i: usize) -> Result<Option<(String, Option<BuildInputs>)>, CascadeError> {
        let reference = refs::tagged(self.chain, i, "latest");
        let Ok(descriptor) = self.store.refs().resolve(&reference) else {
            return Ok(None);
        };
        let digest = strata_oci::Digest::from_oci(descriptor.digest())?;
        let manifest = self.store.blobs().read_manifest(&digest)?;
        let inputs = manifest
            .annotations()
            .as_ref()
            .and_then(|a| a.get(strata_oci::annotations::ANNOTATION_BUILD_INPUTS))
            .and_then(|json| serde_json::from_str(json).ok());
        Ok(Some((digest.to_string(), inputs)))
    }
}
