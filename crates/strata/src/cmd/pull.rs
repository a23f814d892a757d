//! `strata pull REF`: an image (and its referrers) from a registry into the store.

use std::process::ExitCode;

use anyhow::{Context, Result};
use strata_remote::{Location, RemoteRef};

use super::copy::{ClientArgs, print_report};
use crate::global::GlobalArgs;

/// Arguments of `strata pull`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// `HOST[:PORT]/NAME[:TAG][@sha256:...]`; stored under the same name.
    reference: String,
    #[command(flatten)]
    client: ClientArgs,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// Pull.
pub fn run(args: Args, global: &GlobalArgs) -> Result<ExitCode> {
    let remote = RemoteRef::parse(&args.reference)?;
    let store = global.store_path()?;
    let stored_as = match (&remote.tag, &remote.digest) {
        (Some(tag), _) => format!("{}/{}:{tag}", remote.registry, remote.repository),
        (None, Some(digest)) => digest.to_string(),
        (None, None) => format!("{}/{}:latest", remote.registry, remote.repository),
    };
    let dst = Location::Layout {
        dir: store,
        reference: stored_as.clone(),
    };
    let client = args.client.client()?;
    let outcome = strata_remote::copy(&client, &Location::Remote(remote.clone()), &dst);
    super::copy::record(
        global,
        strata_events::Kind::Pull,
        &remote.to_string(),
        &outcome,
    );
    let report = outcome.with_context(|| format!("cannot pull {remote}"))?;
    if let Some(want) = &remote.digest
        && report.digest != want.to_string()
    {
        anyhow::bail!("pulled {remote} but got {}", report.digest);
    }
    print_report(&report, &stored_as, args.json)?;
    Ok(ExitCode::SUCCESS)
}
