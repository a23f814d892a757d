//! `strata push IMAGE [REF]`: a store image (and its referrers) to a registry.

use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use strata_remote::{Location, RemoteRef};

use super::copy::{ClientArgs, print_report};
use crate::global::GlobalArgs;

/// Arguments of `strata push`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The image in the store (`acme/corebuild`, `acme/corebuild:1`).
    image: String,
    /// Where to: `HOST[:PORT]/NAME[:TAG]` (default: the chain's `registry` + the image's name).
    reference: Option<String>,
    #[command(flatten)]
    client: ClientArgs,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// Push.
pub fn run(args: Args, global: &GlobalArgs) -> Result<ExitCode> {
    let store = global.store_path()?;
    let given = strata_oci::Reference::parse(&args.image)?;
    let path = global.chain_path()?;
    let chain = if path.exists() {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        Some(strata_chain::ChainFile::parse_with(
            &path,
            &text,
            &mut super::graph::git_cache(global, strata_chain::GitMode::Lock)?,
        )?)
    } else {
        None
    };
    let registry = chain.as_ref().and_then(|c| c.registry.clone());
    let opened = strata_oci::Store::open(&store)
        .with_context(|| format!("cannot open the store {}", store.display()))?;
    // With a `registry`, the chain's images are stored under it (`REGISTRY/acme/base`): a short
    // name the store does not have means that one.
    let source = match &registry {
        Some(registry)
            if given.registry() == strata_oci::reference::DEFAULT_REGISTRY
                && !args.image.starts_with("localhost/")
                && opened.refs().resolve(&args.image).is_err()
                && opened
                    .refs()
                    .resolve(&format!("{registry}/{}", args.image))
                    .is_ok() =>
        {
            format!("{registry}/{}", args.image)
        }
        // Otherwise the names every command takes (`wordpress`, `corebuild@3`, a digest).
        _ => super::reference::store_reference(&opened, &args.image)?,
    };
    let image = strata_oci::Reference::parse(&source)?;
    let destination = match &args.reference {
        Some(r) => r.clone(),
        None => {
            let Some(registry) = registry else {
                bail!(
                    "push {}: name the destination (HOST/NAME:TAG), or set `registry` in {}",
                    args.image,
                    path.display()
                );
            };
            format!(
                "{registry}/{}:{}",
                image.repository(),
                image.tag().unwrap_or("latest")
            )
        }
    };
    let remote = RemoteRef::parse(&destination)?;
    let src = Location::Layout {
        dir: store,
        reference: source,
    };
    let client = args.client.client()?;
    let outcome = strata_remote::copy(&client, &src, &Location::Remote(remote.clone()));
    // A chain image's push is on record as its owner team's (`operations pushed …`).
    let owner = chain.as_ref().and_then(|c| {
        let repository = image.repository();
        c.images
            .iter()
            .find(|i| repository == format!("{}/{}", c.name, i.name))
            .map(|i| i.owner.as_str())
    });
    super::copy::record_for(
        global,
        strata_events::Kind::Push,
        &remote.to_string(),
        owner,
        &outcome,
    );
    let report = outcome.with_context(|| format!("cannot push {} to {remote}", args.image))?;
    print_report(&report, &remote.to_string(), args.json)?;
    Ok(ExitCode::SUCCESS)
}
