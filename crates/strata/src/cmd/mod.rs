//! The subcommands. Each module holds one command's clap arguments and its `run`.
//!
//! To add a command: a module here, a variant in [`Command`], an arm in [`run()`].

use std::process::ExitCode;

use anyhow::Result;

use crate::global::GlobalArgs;

/// Every `strata` subcommand.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Print strata's version and build facts.
    Version(version::Args),
    /// Team signing keys: `strata key generate --team T [--out DIR] [--ed25519]`.
    Key(key::Args),
    /// Read Dockerfiles as BuildKit does: `strata dockerfile parse FILE`.
    Dockerfile(dockerfile::Args),
    /// Show the chain's image graph: `--format text|dot|json|mermaid`.
    Graph(graph::Args),
    /// What a change rebuilds, in order, why, and which teams it affects.
    Plan(plan::Args),
    /// Re-resolve the chain's upstreams, move strata.lock and print what moved.
    Update(update::Args),
    /// Scaffold the three-tier example chain (base → corebuild → httpd-php → wordpress).
    Init(init::Args),
    /// List the images in the store.
    Images(images::Args),
    /// Check (`fsck`) and clean (`gc`) the content store.
    Store(store::Args),
    /// Remove tags from the store, as `podman rmi` (blobs go at the next `strata store gc`).
    Rmi(rmi::Args),
    /// Build one image from a Dockerfile, natively (like `buildah bud`).
    BuildImage(build_image::Args),
    /// Run a command in an image with the build sandbox; its changes are thrown away.
    Run(run::Args),
    /// Rebuild what changed in the chain and everything above it, in order, in parallel.
    Build(build::Args),
    /// The timeline: who rebuilt what, when, why, and what it cascaded to.
    Log(log::Args),
    /// Verify an image's chain of custody, tier by tier, down to its base.
    Verify(verify::Args),
    /// Run an image's tier tests (container-structure-test files), without a daemon.
    Test(test::Args),
    /// Write an image as a docker-archive or oci-archive tarball, as `podman save`.
    Save(save::Args),
    /// Write an image archive (deprecated form of `strata save`).
    Export(export::Args),
    /// Read an engine export back into a project: `strata import openshift|tekton|kubernetes DIR`.
    Import(import::Args),
    /// Serve the store as an OCI registry (distribution spec v1.1), with team-owned pushes.
    Serve(serve::Args),
    /// Pull an image and its referrers from a registry into the store.
    Pull(pull::Args),
    /// Push a store image and its referrers to a registry.
    Push(push::Args),
    /// Copy an image between the store, OCI layout directories and registries.
    Copy(copy::Args),
    /// An image's history: each step's instruction, size, time, owning image and team.
    History(history::Args),
    /// An image's manifest, config, annotations, base, tags, build key and size.
    Inspect(inspect::Args),
    /// Compare two images (`corebuild@3 corebuild@4`): layers, then files added/removed/modified.
    Diff(diff::Args),
    /// Per layer: files, bytes wasted by later overwrites and deletes, dive's efficiency score.
    Layers(layers::Args),
    /// The packages an image holds (dpkg, rpm, apk) and the tier and team that installed each.
    Packages(packages::Args),
    /// An image's SBOM: SPDX 2.3 or CycloneDX 1.6 JSON (`--verify`: the signed one of its build).
    Sbom(sbom::Args),
    /// The OSV advisories affecting the store's images, and the tier and team that must patch.
    Advisories(advisories::AdvisoriesArgs),
    /// Who must patch: the images carrying a package or advisory, the tier that brought it in,
    /// and what patching that tier rebuilds.
    Affected(advisories::AffectedArgs),
    /// Reconcile the deployments of a deploy.toml once; `status`, `history`, `rollback`, `hold`,
    /// `release`, `approve`, `down`.
    Deploy(deploy::Args),
    /// The trigger loop: follow the chain's upstreams (move the lock, cascade, push) and reconcile
    /// every deployment when the store changes, and periodically.
    Watch(watch::Args),
}

/// Run one subcommand.
pub fn run(command: Command, global: &GlobalArgs) -> Result<ExitCode> {
    match command {
        Command::Version(args) => version::run(args, global),
        Command::Key(args) => key::run(args, global),
        Command::Dockerfile(args) => dockerfile::run(args, global),
        Command::Graph(args) => graph::run(args, global),
        Command::Plan(args) => plan::run(args, global),
        Command::Update(args) => update::run(args, global),
        Command::Init(args) => init::run(args, global),
        Command::Images(args) => images::run(args, global),
        Command::Store(args) => store::run(args, global),
        Command::Rmi(args) => rmi::run(args, global),
        Command::BuildImage(args) => build_image::run(args, global),
        Command::Run(args) => run::run(args, global),
        Command::Build(args) => build::run(args, global),
        Command::Log(args) => log::run(args, global),
        Command::Verify(args) => verify::run(args, global),
        Command::Test(args) => test::run(args, global),
        Command::Save(args) => save::run(args, global),
        Command::Export(args) => export::run(args, global),
        Command::Import(args) => import::run(args, global),
        Command::Serve(args) => serve::run(args, global),
        Command::Pull(args) => pull::run(args, global),
        Command::Push(args) => push::run(args, global),
        Command::Copy(args) => copy::run(args, global),
        Command::History(args) => history::run(args, global),
        Command::Inspect(args) => inspect::run(args, global),
        Command::Diff(args) => diff::run(args, global),
        Command::Layers(args) => layers::run(args, global),
        Command::Packages(args) => packages::run(args, global),
        Command::Sbom(args) => sbom::run(args, global),
        Command::Advisories(args) => advisories::advisories(args, global),
        Command::Affected(args) => advisories::affected(args, global),
        Command::Deploy(args) => deploy::run(args, global),
        Command::Watch(args) => watch::run(args, global),
    }
}

mod advisories;
mod build;
mod build_image;
mod copy;
mod deploy;
mod diff;
mod dockerfile;
mod export;
mod follow;
mod graph;
mod history;
mod images;
mod import;
mod init;
mod inspect;
mod key;
mod layers;
mod log;
mod packages;
mod plan;
mod pull;
mod push;
mod reference;
mod rmi;
mod run;
mod sandbox_args;
mod save;
mod sbom;
mod serve;
mod store;
mod test;
mod timings;
mod update;
mod upstream;
mod verify;
mod version;
mod watch;
