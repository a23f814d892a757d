//! Sign what the cascade builds: SLSA provenance per image, with the owning team's key, attached to
//! the image in the store; and the trust configuration `strata verify` checks against.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use strata_attest::provenance::{
    DockerfileBuild, DockerfileParameters, GitSource, ImportBuild, ImportParameters,
    InternalParameters, Run,
};
use strata_attest::{PrivateKey, TrustConfig};
use strata_chain::{Build, Chain};
use strata_events::{Event, EventLog, Kind};
use strata_oci::{Digest, Store};

use crate::error::{CascadeError, ImageError};
use crate::inputs::ResolvedInputs;
use crate::refs;

/// The signing key of image `i`'s owner: `--key TEAM=FILE`, else `STRATA_KEY_<TEAM>`. Errors when
/// the chain requires signatures and there is none.
pub(crate) fn key_for(
    chain: &Chain,
    i: usize,
    keys: &BTreeMap<String, PathBuf>,
) -> Result<Option<PrivateKey>, ImageError> {
    let team = &chain.file.images[i].owner;
    let key = strata_attest::keys::signing_key_for_team(
        team,
        keys.get(team).map(PathBuf::as_path),
        |var| std::env::var(var).ok(),
    )
    .map_err(|source| ImageError::SigningKey {
        team: team.clone(),
        source: Box::new(source),
    })?;
    if key.is_none() && chain.file.require_signatures {
        return Err(ImageError::KeyRequired {
            team: team.clone(),
            variable: strata_attest::keys::team_key_env(team),
        });
    }
    Ok(key)
}

/// What the build of one image produced, for its provenance.
pub(crate) struct Built<'a> {
    pub(crate) digest: &'a str,
    /// The final stage's base as the builder saw it: (name, digest).
    pub(crate) base: Option<(String, Digest)>,
    pub(crate) inputs: Option<&'a ResolvedInputs>,
    pub(crate) started: DateTime<Utc>,
    pub(crate) run_id: &'a str,
}

/// Sign and attach the provenance of chain image `i`; records a sign event. Returns the key id.
pub(crate) fn sign(
    store: &Store,
    chain: &Chain,
    i: usize,
    key: &PrivateKey,
    built: &Built<'_>,
    events: Option<&Mutex<EventLog>>,
) -> Result<String, ImageError> {
    let image = &chain.file.images[i];
    let file = &chain.file;
    let rel = |p: &Path| file.relative(p).display().to_string();
    let internal = InternalParameters {
        owner: image.owner.clone(),
        tier: image.tier.clone(),
        chain: Some(file.name.clone()),
        squash: image.squash.as_str().to_string(),
        platform: image.platform.clone(),
        ..InternalParameters::default()
    };
    let run = Run {
        invocation_id: format!("{}/{}", built.run_id, image.name),
        started_on: built.started,
        finished_on: Utc::now(),
    };
    let digest: Digest = built.digest.parse()?;
    let provenance = match &image.build {
        Build::Dockerfile {
            context,
            dockerfile,
        } => {
            let inputs = built.inputs.ok_or_else(|| {
                ImageError::Cascade(CascadeError::Options(format!(
                    "{}: no build inputs to sign",
                    image.name
                )))
            })?;
            // The base is named as the chain knows it, so verifiers find its owner.
            let base = built.base.as_ref().map(|(name, d)| {
                let chain_name = inputs
                    .inputs
                    .parents
                    .iter()
                    .find(|(_, pd)| **pd == d.to_string())
                    .and_then(|(reference, _)| chain.resolve(reference))
                    .map(|p| refs::tagged(chain, p, "latest"));
                (chain_name.unwrap_or_else(|| name.clone()), d.clone())
            });
            let other_images = inputs
                .inputs
                .parents
                .iter()
                .filter(|(_, d)| base.as_ref().is_none_or(|(_, bd)| bd.to_string() != **d))
                .filter_map(|(reference, d)| {
                    Some((reference.clone(), reference.clone(), d.parse().ok()?))
                })
                .collect();
            DockerfileBuild {
                parameters: DockerfileParameters {
                    // A git context's paths are the repository's, not the cache's.
                    dockerfile: match &image.git {
                        Some(g) => g
                            .dir
                            .join(dockerfile.strip_prefix(context).unwrap_or(dockerfile))
                            .display()
                            .to_string(),
                        None => rel(dockerfile),
                    },
                    context: match &image.git {
                        Some(g) => g.dir.display().to_string(),
                        None => rel(context),
                    },
                    target: None,
                    build_args: image.args.clone(),
                },
                internal,
                base,
                other_images,
                context_digest: inputs
                    .inputs
                    .context
                    .as_deref()
                    .and_then(|c| c.parse().ok()),
                // A git context names its repository and commit; a local one the work tree's.
                git: match &image.git {
                    Some(g) => Some(GitSource {
                        repository: g.url.clone(),
                        commit: g.commit.clone(),
                    }),
                    None => git_source(context),
                },
                builder_version: env!("CARGO_PKG_VERSION").to_string(),
                run,
            }
            .provenance()
        }
        Build::Rootfs { path } => ImportBuild {
            parameters: ImportParameters {
                source: "rootfs".to_string(),
                location: rel(path),
            },
            internal,
            source_digest: Digest::from_hex(&strata_build::context::hash_file(path).map_err(
                |source| ImageError::Provenance {
                    image: image.name.clone(),
                    source: Box::new(source),
                },
            )?)?,
            builder_version: env!("CARGO_PKG_VERSION").to_string(),
            run,
        }
        .provenance(),
        Build::Image { reference, .. } => ImportBuild {
            parameters: ImportParameters {
                source: "image".to_string(),
                location: reference.clone(),
            },
            internal,
            source_digest: digest.clone(),
            builder_version: env!("CARGO_PKG_VERSION").to_string(),
            run,
        }
        .provenance(),
    };
    let descriptor = store
        .refs()
        .resolve(&format!("{}@{digest}", refs::repository(chain, i)))?;
    let name = refs::repository(chain, i);
    let (attestation, _) =
        strata_attest::attest_provenance(store, &descriptor, &name, &provenance, key)
            .map_err(|e| ImageError::Sign(Box::new(e)))?;
    attest_sbom(store, &digest, &name, key, built.started);
    let key_id = key.id().to_string();
    if let Some(events) = events {
        let log = events.lock().unwrap_or_else(|e| e.into_inner());
        let _ = log.record(&Event {
            kind: Some(Kind::Sign),
            image: image.name.clone(),
            team: Some(image.owner.clone()),
            user: Some(strata_events::current_user()),
            new_digest: Some(digest.to_string()),
            reason: Some(format!("SLSA provenance signed by key {key_id}")),
            run_id: Some(built.run_id.to_string()),
            result: "ok".to_string(),
            detail: Some(serde_json::json!({
                "keyId": key_id,
                "attestation": attestation.digest().to_string(),
            })),
            ..Event::default()
        });
    }
    Ok(key_id)
}

/// Sign and attach the image's SBOMs (SPDX and CycloneDX) beside its provenance. An image whose
/// package databases cannot be read still ships, signed: the failure is logged, and
/// `strata sbom --verify` then reports the SBOM missing.
fn attest_sbom(
    store: &Store,
    digest: &Digest,
    name: &str,
    key: &PrivateKey,
    created: DateTime<Utc>,
) {
    // This image and its bases only: loading the whole store per signed image would make a
    // cascade's cost grow with the square of the chain.
    let result = strata_inspect::Catalog::load_lineage(store, digest)
        .map_err(|e| e.to_string())
        .and_then(|catalog| {
            let image = catalog
                .get(digest)
                .ok_or_else(|| format!("{digest} is not in the store"))?;
            let info = strata_inventory::sbom::SbomInfo {
                created,
                tool_version: env!("CARGO_PKG_VERSION").to_string(),
            };
            strata_inventory::sbom::attest(store, &catalog, image, name, key, &info)
                .map_err(|e| strata_oci::report(&e))
        });
    if let Err(reason) = result {
        tracing::warn!("{name}: no SBOM attached: {reason}");
    }
}

/// The git repository and commit holding `dir`, when it is in a git work tree.
fn git_source(dir: &Path) -> Option<GitSource> {
    let git = |args: &[&str]| -> Option<String> {
        let out = std::process::Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
            .filter(|s| !s.is_empty())
    };
    let commit = git(&["rev-parse", "HEAD"])?;
    let repository = git(&["config", "--get", "remote.origin.url"])
        .or_else(|| git(&["rev-parse", "--show-toplevel"]).map(|t| format!("file://{t}")))?;
    Some(GitSource { repository, commit })
}

/// The trust `strata verify` checks against: each team's public keys, each image's owner and
/// tier, the owners of other projects' images (`[owners]`), and the vendor keys of bought bases
/// (`signed_by`), from the chain file.
pub fn trust_config(chain: &Chain) -> Result<TrustConfig, strata_attest::KeyError> {
    let mut trust = TrustConfig::new();
    for (name, team) in &chain.file.teams {
        trust.add_key_files(name, &team.keys)?;
    }
    for image in &chain.file.images {
        trust.set_owner(
            &format!("{}/{}", chain.file.name, image.name),
            &image.owner,
            image.tier.as_deref(),
        );
    }
    for (rule, team) in &chain.file.owners {
        trust.set_external_owner(rule, team);
    }
    // Bought bases with `signed_by`: their vendor signature, kept in the store, is checked again.
    for image in &chain.file.images {
        if let Build::Image {
            reference,
            signed_by: Some(signed_by),
        } = &image.build
        {
            trust.add_vendor_key_file(
                &format!("{}/{}", chain.file.name, image.name),
                reference,
                &signed_by.key,
                &chain.file.relative(&signed_by.key).display().to_string(),
            )?;
        }
    }
    Ok(trust)
}
