//! `strata inspect IMAGE`: manifest, config, annotations (base name and digest), tags, build key,
//! size. Also the helpers the other store views share (history, diff, layers, images --tree).

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::{Context, Result};
use strata_inspect::Catalog;
use strata_inspect::render::Paint;

use super::graph::write_stdout;
use crate::global::GlobalArgs;

/// Output formats of the store views.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Text for a terminal (100 columns, colour on a TTY).
    Text,
    /// JSON.
    Json,
}

/// `--format text|json` and its shorthand `--json`, shared by the store views.
#[derive(Debug, clap::Args)]
pub struct OutputArgs {
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    /// Same as `--format json`.
    #[arg(long)]
    json: bool,
}

impl OutputArgs {
    /// Whether JSON was asked for, either way.
    pub fn is_json(&self) -> bool {
        self.json || self.format == Format::Json
    }
}

/// Arguments of `strata inspect`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The image: a tag (`acme/corebuild`), `sha256:…`, or `NAME@N` (build number N).
    image: String,
    #[command(flatten)]
    output: OutputArgs,
}

/// Print what the store knows about one image.
pub fn run(args: Args, global: &GlobalArgs) -> Result<ExitCode> {
    let (store, catalog) = open(global)?;
    let image = catalog.find(&store, &args.image)?;
    let inspection = strata_inspect::inspect(&store, &catalog, image, &args.image)
        .with_context(|| format!("cannot inspect {}", args.image))?;
    if args.output.is_json() {
        write_stdout(&(serde_json::to_string_pretty(&inspection)? + "\n"))?;
    } else {
        let (width, paint) = terminal();
        write_stdout(&strata_inspect::text::inspect(&inspection, width, paint))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Open the store and read its images.
pub(super) fn open(global: &GlobalArgs) -> Result<(strata_oci::Store, Catalog)> {
    let path = global.store_path()?;
    let store = strata_oci::Store::open(&path)
        .with_context(|| format!("cannot open the store {}", path.display()))?;
    let catalog = Catalog::load(&store)
        .with_context(|| format!("cannot read the images of {}", path.display()))?;
    Ok((store, catalog))
}

/// The terminal's width (`COLUMNS`, else 100) and colours (only when stdout is a terminal and
/// `NO_COLOR` is unset).
pub(super) fn terminal() -> (usize, Paint) {
    let width = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse::<usize>().ok())
        .filter(|&c| c >= 40)
        .unwrap_or(100);
    let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    (width, Paint::new(color))
}
