//! `strata serve`: the store as an OCI registry.

use crate::out::errln;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use strata_registry::{AuthConfig, Registry, ServerOptions, TlsConfig};

use crate::global::GlobalArgs;

/// Arguments of `strata serve`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1:5000")]
    listen: SocketAddr,
    /// The auth file (TOML: users, teams, pull policy, owners; see docs/registry.md).
    #[arg(long, value_name = "FILE")]
    auth: Option<PathBuf>,
    /// Serve HTTPS with this PEM certificate chain (needs --tls-key).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Drop upload sessions idle this many seconds.
    #[arg(long, default_value_t = 900, value_name = "SECONDS")]
    upload_timeout: u64,
    /// Drop connections that move no byte either way for this many seconds (half-sent requests).
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    idle_timeout: u64,
    /// Drop a connection whose request head (request line and headers) has not arrived whole
    /// this many seconds after the server started waiting for it, however its bytes trickle in.
    #[arg(long, default_value_t = 10, value_name = "SECONDS")]
    header_timeout: u64,
    /// Serve at most this many connections at once (more wait to be accepted).
    #[arg(long, default_value_t = 512, value_name = "N")]
    max_connections: usize,
}

/// Serve the store until interrupted.
pub fn run(args: Args, global: &GlobalArgs) -> Result<ExitCode> {
    let store_path = global.store_path()?;
    let store = strata_oci::Store::init(&store_path)
        .with_context(|| format!("cannot open the store {}", store_path.display()))?;
    let mut auth = match &args.auth {
        Some(path) => Some(AuthConfig::load(path)?),
        None => None,
    };
    if let Some(auth) = &mut auth {
        let (registry, owners) = chain_owners(global)?;
        for (repository, team) in owners {
            auth.owners.entry(repository).or_insert(team);
        }
        // Names under the chain's registry are the same repositories (one normalisation).
        if auth.registry.is_none() {
            auth.registry = registry;
        }
    } else if !args.listen.ip().is_loopback() {
        bail!(
            "refusing to serve {} without --auth: anyone could push; give an auth file or listen on 127.0.0.1",
            args.listen
        );
    }
    let events = crate::global::state_dir_of(&store_path).join("events.db");
    let options = ServerOptions {
        auth,
        events: Some(events),
        upload_timeout: Duration::from_secs(args.upload_timeout.max(1)),
        idle_timeout: Duration::from_secs(args.idle_timeout.max(1)),
        header_timeout: Duration::from_secs(args.header_timeout.max(1)),
        max_connections: args.max_connections.max(1),
        tls: match (&args.tls_cert, &args.tls_key) {
            (Some(cert), Some(key)) => Some(TlsConfig::from_pem_files(cert, key)?),
            _ => None,
        },
        ..ServerOptions::default()
    };
    let scheme = if options.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let registry = Registry::new(store, options)?;
    // The web pages beside the registry, under its read rule (docs/ui.md).
    let chain = global.chain_path()?;
    // Told when the server stops, so the web pages' live feeds end and do not hold it open.
    let (closing, closing_rx) = tokio::sync::watch::channel(false);
    let ui = strata_ui::router(
        strata_ui::UiConfig {
            store: store_path.clone(),
            state_dir: crate::global::state_dir_of(&store_path),
            chain: chain.exists().then_some(chain),
        },
        registry.clone(),
        closing_rx,
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let addr = listener.local_addr()?;
        errln!(
            "serving {} as an OCI registry on {scheme}://{addr}",
            store_path.display()
        );
        errln!("web pages on {scheme}://{addr}/ui/");
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .context("cannot watch for SIGTERM")?;
        // SIGINT or SIGTERM: stop accepting, finish requests in flight, drop open uploads
        // (their temp files go with them).
        strata_registry::serve_with(registry, ui, listener, async move {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = terminate.recv() => {}
            }
            let _ = closing.send(true);
        })
        .await
        .context("the registry server failed")
    })?;
    Ok(ExitCode::SUCCESS)
}

/// `<chain>/<image>` → owning team.
type Owners = Vec<(String, String)>;

/// The chain's `registry`, and its owners, from strata.toml when there is one.
fn chain_owners(global: &GlobalArgs) -> Result<(Option<String>, Owners)> {
    let path = global.chain_path()?;
    if !path.exists() {
        return Ok((None, Vec::new()));
    }
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let chain = strata_chain::ChainFile::parse_with(
        &path,
        &text,
        &mut super::graph::git_cache(global, strata_chain::GitMode::Lock)?,
    )?;
    let owners = chain
        .images
        .iter()
        .map(|image| {
            (
                format!("{}/{}", chain.name, image.name),
                image.owner.clone(),
            )
        })
        .collect();
    Ok((chain.registry, owners))
}
