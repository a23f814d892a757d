//! `strata images`: list the tagged images in the store.

use crate::out::outln;
use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::global::GlobalArgs;

/// Arguments of `strata images`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print JSON: an array of {reference, digest, mediaType, size}.
    #[arg(long)]
    json: bool,
    /// Show every image as a tree of shared layers (like `dockviz images -t`).
    #[arg(long)]
    tree: bool,
    /// With --tree: output format.
    #[arg(long, value_enum, default_value = "text", requires = "tree")]
    format: TreeFormat,
    /// With --tree: each layer's own size instead of the cumulative size.
    #[arg(long, requires = "tree")]
    incremental: bool,
    /// With --tree: only this image's layers and the images built on it.
    #[arg(requires = "tree")]
    image: Option<String>,
}

/// Output formats of `strata images --tree`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TreeFormat {
    /// `layer:` and `img:` lines (100 columns, colour on a TTY).
    Text,
    /// Graphviz DOT (render with `dot -Tsvg`).
    Dot,
    /// JSON, schema strata.layer-tree/v1 (docs/inspect.md).
    Json,
}

/// One listed image.
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Row {
    reference: String,
    digest: String,
    media_type: String,
    /// Manifest + config + layers, in bytes (absent when the image cannot be read).
    size: Option<u64>,
}

/// List the store's tags.
pub fn run(args: Args, global: &GlobalArgs) -> Result<ExitCode> {
    if args.tree {
        return tree(&args, global);
    }
    let path = global.store_path()?;
    let store = strata_oci::Store::open(&path)
        .with_context(|| format!("cannot open the store {}", path.display()))?;
    let tags = store
        .refs()
        .list()
        .with_context(|| format!("cannot read {}", store.refs().path().display()))?;
    let rows: Vec<Row> = tags
        .iter()
        .map(|tag| Row {
            reference: tag.name.clone(),
            digest: tag.descriptor.digest().to_string(),
            media_type: tag.descriptor.media_type().to_string(),
            size: store
                .image_from_descriptor(&tag.descriptor)
                .ok()
                .map(|i| i.size()),
        })
        .collect();
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(ExitCode::SUCCESS);
    }
    let width = rows
        .iter()
        .map(|r| r.reference.len())
        .max()
        .unwrap_or(0)
        .max("REFERENCE".len());
    outln!("{:<width$}  {:<19}  SIZE", "REFERENCE", "DIGEST");
    for row in &rows {
        let digest = row
            .digest
            .strip_prefix("sha256:")
            .map(|hex| format!("sha256:{}", &hex[..hex.len().min(12)]))
            .unwrap_or_else(|| row.digest.clone());
        let size = row
            .size
            .map(strata_inspect::size::human)
            .unwrap_or_else(|| "unreadable".into());
        outln!("{:<width$}  {digest:<19}  {size}", row.reference);
    }
    Ok(ExitCode::SUCCESS)
}

/// `strata images --tree`: the store's layer tree.
fn tree(args: &Args, global: &GlobalArgs) -> Result<ExitCode> {
    use strata_inspect::render;
    let (store, catalog) = super::inspect::open(global)?;
    let only = args
        .image
        .as_deref()
        .map(|i| catalog.find(&store, i))
        .transpose()?;
    let tree = strata_inspect::LayerTree::build(&catalog, only);
    let text = match (args.json, args.format) {
        (true, _) | (_, TreeFormat::Json) => {
            serde_json::to_string_pretty(&render::tree_json(&tree))? + "\n"
        }
        (_, TreeFormat::Dot) => render::tree_dot(&tree, args.incremental),
        (_, TreeFormat::Text) => {
            let (width, paint) = super::inspect::terminal();
            let options = render::TextOptions {
                width,
                color: paint.is_on(),
                incremental: args.incremental,
            };
            render::tree_text(&tree, &options)
        }
    };
    super::graph::write_stdout(&text)?;
    Ok(ExitCode::SUCCESS)
}
