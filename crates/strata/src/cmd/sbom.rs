//! `strata sbom IMAGE --format spdx|cyclonedx [-o FILE] [--verify]`: an image's SBOM (SPDX 2.3 or
//! CycloneDX 1.6 JSON) with purls, source packages and the tier and team that installed each
//! package. `--verify` prints instead the SBOM attached to the image at build time, after checking
//! its signature against the owner team's keys in the chain file.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use strata_inventory::sbom::{self, Format, SbomInfo};

use super::graph::{load_chain, write_stdout};
use super::inspect::open;
use crate::global::GlobalArgs;

/// The SBOM formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum SbomFormat {
    /// SPDX 2.3 JSON.
    Spdx,
    /// CycloneDX 1.6 JSON.
    Cyclonedx,
}

/// Arguments of `strata sbom`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The image: a tag (`acme/corebuild`), `sha256:…`, or `NAME@N` (build number N).
    image: String,
    /// The format.
    #[arg(long, value_enum, default_value = "spdx")]
    format: SbomFormat,
    /// Write it to FILE (atomically) instead of stdout.
    #[arg(short = 'o', long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Print the SBOM signed and attached at build time, checked against the owner's keys.
    #[arg(long)]
    verify: bool,
}

/// Print or write an image's SBOM.
pub fn run(args: Args, global: &GlobalArgs) -> Result<ExitCode> {
    let (store, catalog) = open(global)?;
    let image = catalog.find(&store, &args.image)?;
    let format = match args.format {
        SbomFormat::Spdx => Format::Spdx,
        SbomFormat::Cyclonedx => Format::CycloneDx,
    };
    let document = if args.verify {
        let chain = load_chain(global)?;
        let trust = strata_cascade::trust_config(&chain)?;
        let team = image
            .tags
            .iter()
            .map(String::as_str)
            .chain(image.chain_image())
            .find_map(|n| trust.owner_of(n))
            .map(str::to_string);
        let Some(team) = team else {
            bail!(
                "{}: no image of the chain {} (its owner's keys are unknown)",
                args.image,
                chain.file.name
            );
        };
        sbom::verified(
            &store,
            &args.image,
            &image.digest,
            format,
            &team,
            trust.keys_of(&team),
        )?
    } else {
        let inventory = strata_inventory::inventory(&store, &catalog, image)
            .with_context(|| format!("cannot read the packages of {}", args.image))?;
        let created = image
            .config
            .created
            .as_deref()
            .and_then(|c| chrono::DateTime::parse_from_rfc3339(c).ok())
            .map(|c| c.with_timezone(&chrono::Utc))
            .unwrap_or_else(chrono::Utc::now);
        let info = SbomInfo {
            created,
            tool_version: env!("CARGO_PKG_VERSION").to_string(),
        };
        sbom::to_json(&inventory, format, &info)
    };
    let text = serde_json::to_string_pretty(&document)? + "\n";
    match &args.output {
        Some(path) => write_atomically(path, text.as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => write_stdout(&text)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Write `bytes` to `path` through a temporary file in the same directory, renamed into place.
fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => std::path::Path::new("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}
