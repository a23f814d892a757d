//! Options every subcommand shares: where the chain file and the store are.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// Options accepted before or after any subcommand.
#[derive(Debug, clap::Args)]
pub struct GlobalArgs {
    /// Run as if strata was started in DIR.
    #[arg(short = 'C', global = true, value_name = "DIR")]
    pub directory: Option<PathBuf>,
    /// The chain file (default: strata.toml in the working directory).
    #[arg(
        long = "chain",
        global = true,
        env = "STRATA_CHAIN",
        value_name = "FILE"
    )]
    pub chain: Option<PathBuf>,
    /// The content store (default: .strata/store beside the chain file).
    #[arg(
        long = "store",
        global = true,
        env = "STRATA_STORE",
        value_name = "DIR"
    )]
    pub store: Option<PathBuf>,
    /// More log output (-v info, -vv debug, -vvv trace).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
}

impl GlobalArgs {
    /// The directory strata works in: `-C DIR`, or the current directory.
    pub fn workdir(&self) -> Result<PathBuf> {
        let cwd = std::env::current_dir().context("cannot read the current directory")?;
        Ok(match &self.directory {
            Some(dir) => cwd.join(dir),
            None => cwd,
        })
    }

    /// The chain file: `--chain`, `STRATA_CHAIN`, or `strata.toml` in the working directory.
    pub fn chain_path(&self) -> Result<PathBuf> {
        let workdir = self.workdir()?;
        Ok(match &self.chain {
            Some(path) => workdir.join(path),
            None => workdir.join("strata.toml"),
        })
    }

    /// The store directory: `--store`, `STRATA_STORE`, or `.strata/store` beside the chain file.
    pub fn store_path(&self) -> Result<PathBuf> {
        let workdir = self.workdir()?;
        if let Some(store) = &self.store {
            return Ok(workdir.join(store));
        }
        let chain = self.chain_path()?;
        let beside = chain.parent().map(Path::to_path_buf).unwrap_or(workdir);
        Ok(beside.join(".strata").join("store"))
    }

    // The store's own files (events log, caches): `state_dir_of(store_path)`.
}

/// Where the store's own files beside its blobs live (events log, builder caches): the chain's
/// `.strata/` for the default layout (`.strata/store`), else the store's own `.strata/`, so two
/// stores under one parent (`--store /x/a`, `--store /x/b`) never share them.
pub fn state_dir_of(store: &Path) -> PathBuf {
    let default_layout = store.file_name().is_some_and(|n| n == "store")
        && store
            .parent()
            .and_then(Path::file_name)
            .is_some_and(|n| n == ".strata");
    match store.parent() {
        Some(parent) if default_layout => parent.to_path_buf(),
        _ => store.join(".strata"),
    }
}

/// Logs go to stderr; `RUST_LOG` overrides the `-v` level.
pub fn init_tracing(verbose: u8) {
    let level = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    // Colour only on a terminal (and not under NO_COLOR); timestamps only when asked for detail,
    // so a default run's warnings read as plain lines in CI logs.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(ansi);
    let _ = if verbose == 0 {
        builder.without_time().try_init()
    } else {
        builder.try_init()
    };
}
