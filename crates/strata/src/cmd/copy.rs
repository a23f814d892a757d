//! `strata copy SRC DST`: an image and its referrers between the store, OCI layout directories
//! and registries.

use crate::out::outln;
use std::process::ExitCode;

use anyhow::{Context, Result};
use strata_remote::copy::CopyReport;
use strata_remote::{Client, ClientOptions, Credentials, Location};

use crate::global::GlobalArgs;

/// Registry client options shared by `pull`, `push` and `copy`.
#[derive(Debug, clap::Args)]
pub struct ClientArgs {
    /// Credentials for the registry, USER:PASSWORD (default: ~/.docker/config.json and its
    /// credential helpers).
    #[arg(
        long,
        value_name = "USER:PASSWORD",
        env = "STRATA_CREDS",
        hide_env_values = true
    )]
    creds: Option<String>,
    /// Use plain HTTP for every registry (always used for localhost and 127.0.0.1).
    #[arg(long)]
    insecure: bool,
    /// Trust the CA certificates in this PEM file for HTTPS, instead of the public roots.
    #[arg(long, value_name = "FILE")]
    ca_cert: Vec<std::path::PathBuf>,
    /// Upload blobs larger than this many MiB in chunks of that size.
    #[arg(long, default_value_t = 64, value_name = "MIB")]
    chunk_size: u64,
    /// Retry a request that failed for a temporary reason (connection refused or reset, 5xx) this
    /// many times, waiting longer each time.
    #[arg(long, default_value_t = 3, value_name = "N")]
    retries: u32,
}

impl ClientArgs {
    /// The client these options describe.
    pub fn client(&self) -> Result<Client> {
        let credentials = self.creds.as_deref().map(Credentials::parse).transpose()?;
        Ok(Client::new(ClientOptions {
            credentials,
            insecure: self.insecure,
            chunk_size: self.chunk_size.max(1) << 20,
            ca_certs: self.ca_cert.clone(),
            retries: self.retries,
            ..ClientOptions::default()
        })?)
    }
}

/// Arguments of `strata copy`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// From: a store reference (`acme/app:1`), `oci:DIR:REF`, or `HOST[:PORT]/NAME[:TAG]`.
    src: String,
    /// To: the same forms.
    dst: String,
    #[command(flatten)]
    client: ClientArgs,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// Copy.
pub fn run(args: Args, global: &GlobalArgs) -> Result<ExitCode> {
    let store = global.store_path()?;
    let src = Location::parse(&args.src, &store)?;
    let dst = Location::parse(&args.dst, &store)?;
    let client = args.client.client()?;
    let report = strata_remote::copy(&client, &src, &dst)
        .with_context(|| format!("cannot copy {src} to {dst}"))?;
    print_report(&report, &dst.to_string(), args.json)?;
    Ok(ExitCode::SUCCESS)
}

/// Record a push or pull (done or failed) in the events log beside the store. A log that cannot
/// be written is a warning: the transfer itself already happened or failed.
pub fn record(
    global: &GlobalArgs,
    kind: strata_events::Kind,
    image: &str,
    outcome: &std::result::Result<CopyReport, strata_remote::RegistryError>,
) {
    record_for(global, kind, image, None, outcome);
}

/// [`record`], naming the team that owns the image (a chain image pushed by `strata watch`).
pub fn record_for(
    global: &GlobalArgs,
    kind: strata_events::Kind,
    image: &str,
    team: Option<&str>,
    outcome: &std::result::Result<CopyReport, strata_remote::RegistryError>,
) {
    let Ok(store) = global.store_path() else {
        return;
    };
    let path = crate::global::state_dir_of(&store).join("events.db");
    let event = strata_events::Event {
        time: strata_events::now(),
        kind: Some(kind),
        image: image.to_string(),
        team: team.map(str::to_string),
        user: Some(strata_events::current_user()),
        new_digest: outcome.as_ref().ok().map(|r| r.digest.clone()),
        result: if outcome.is_ok() { "ok" } else { "failed" }.into(),
        reason: outcome.as_ref().err().map(|e| strata_oci::report(e)),
        detail: outcome
            .as_ref()
            .ok()
            .and_then(|r| serde_json::to_value(r).ok()),
        ..strata_events::Event::default()
    };
    let recorded = strata_events::EventLog::open(&path).and_then(|log| log.record(&event));
    if let Err(error) = recorded {
        tracing::warn!(%error, "could not record the {image} transfer in the events log");
    }
}

/// One line (or JSON) about a finished copy.
pub fn print_report(report: &CopyReport, dst: &str, json: bool) -> Result<()> {
    if json {
        outln!("{}", serde_json::to_string(report)?);
    } else {
        outln!(
            "{dst}: {} ({} blobs copied, {} present, {} mounted, {:.1} MB, {} referrers)",
            report.digest,
            report.blobs_copied,
            report.blobs_skipped,
            report.blobs_mounted,
            report.bytes as f64 / 1e6,
            report.referrers
        );
    }
    Ok(())
}
