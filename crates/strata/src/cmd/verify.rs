//! `strata verify`: walk an image's chain of custody from the image down to its base, into other
//! projects' images through the registries they came from.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use strata_attest::Policy;
use strata_attest::custody::Upstream;

use super::copy::ClientArgs;
use super::graph::{load_chain, write_stdout};
use super::upstream::Registries;
use crate::global::GlobalArgs;

/// Arguments of `strata verify`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The image (`acme/wordpress`, `localhost/acme/wordpress:3`, `name@sha256:...`).
    image: String,
    /// A policy file demanding more (allowed base digests, teams per tier, maximum age).
    #[arg(long)]
    policy: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Never ask a registry: another project's image whose attestation (or parent) is not in
    /// the store breaks the chain.
    #[arg(long)]
    offline: bool,
    #[command(flatten)]
    client: ClientArgs,
}

/// Verify; exit non-zero at the first broken link, naming it.
pub fn run(args: Args, global: &GlobalArgs) -> Result<ExitCode> {
    let chain = load_chain(global)?;
    let store_path = global.store_path()?;
    let store = strata_oci::Store::open(&store_path)
        .with_context(|| format!("cannot open the store {}", store_path.display()))?;
    let trust = strata_cascade::trust_config(&chain)?;
    let policy = match &args.policy {
        Some(path) => Policy::load(&global.workdir()?.join(path))?,
        None => Policy::default(),
    };
    let registries = if args.offline {
        None
    } else {
        Some(Registries::new(args.client.client()?))
    };
    let reference = super::reference::store_reference(&store, &args.image)?;
    let report = strata_attest::verify_chain_with(
        &store,
        &reference,
        &trust,
        &policy,
        chrono::Utc::now(),
        registries.as_ref().map(|r| r as &dyn Upstream),
    )
    .with_context(|| format!("strata verify {}", args.image))?;
    if args.json {
        write_stdout(&(serde_json::to_string_pretty(&report)? + "\n"))?;
    } else {
        write_stdout(&format!("{report}\n"))?;
    }
    Ok(if report.broken().is_some() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
