//! `strata save`: write an image as a `docker save` archive or an OCI archive, as `podman save`
//! does.

use crate::out::outln;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use strata_oci::archive::{ArchiveFormat, export};

use crate::global::GlobalArgs;

/// Arguments of `strata save`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The image (`acme/corebuild`, `localhost/acme/corebuild:3`, `name@sha256:...`).
    pub image: String,
    /// `docker-archive` (what `docker load` / `podman load` read) or `oci-archive`.
    #[arg(long, value_parser = ["oci-archive", "docker-archive"], default_value = "oci-archive")]
    pub format: String,
    /// The archive to write.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: PathBuf,
}

/// Write the archive; print what was written.
pub fn run(args: Args, global: &GlobalArgs) -> Result<ExitCode> {
    let store_path = global.store_path()?;
    let store = strata_oci::Store::open(&store_path)
        .with_context(|| format!("cannot open the store {}", store_path.display()))?;
    let format: ArchiveFormat = args.format.parse().map_err(anyhow::Error::msg)?;
    let output = global.workdir()?.join(&args.output);
    let reference = super::reference::store_reference(&store, &args.image)?;
    let report = export(&store, &reference, format, &output)
        .with_context(|| format!("strata save {}", args.image))?;
    outln!(
        "{} {} → {} ({} bytes)",
        args.format,
        report.tag.as_deref().unwrap_or(&report.digest),
        args.output.display(),
        report.size
    );
    Ok(ExitCode::SUCCESS)
}
