//! `strata init [DIR]`: scaffold the article's three-tier chain, runnable offline.

use crate::out::outln;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use strata_scaffold::rootfs::DEFAULT_BUSYBOX;
use strata_scaffold::scaffold;

use crate::global::GlobalArgs;

/// Arguments of `strata init`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The directory to create the chain in (default: the working directory).
    dir: Option<PathBuf>,
    /// Only (re)write the example's base root filesystem, DIR/base/rootfs.tar (for a checkout of
    /// examples/three-tier, where it is not committed).
    #[arg(long)]
    rootfs_only: bool,
    /// The statically linked busybox to build the base from.
    #[arg(long, value_name = "FILE", default_value = DEFAULT_BUSYBOX)]
    busybox: PathBuf,
    /// Print what was written as JSON: `{"dir": ..., "files": [...]}` (paths relative to dir).
    #[arg(long)]
    json: bool,
}

/// Write the example chain.
pub fn run(args: Args, global: &GlobalArgs) -> Result<ExitCode> {
    let workdir = global.workdir()?;
    let dir = match &args.dir {
        Some(d) => workdir.join(d),
        None => workdir,
    };
    let shown = display(&dir);
    if args.rootfs_only {
        let path = scaffold::init_rootfs(&dir, &args.busybox)
            .with_context(|| format!("cannot write the base rootfs in {shown}"))?;
        if args.json {
            let files = [path.strip_prefix(&dir).unwrap_or(&path).to_path_buf()];
            outln!("{}", serde_json::json!({ "dir": dir, "files": files }));
        } else {
            outln!("wrote {}", display(&path));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let files = scaffold::init_example(&dir, &args.busybox)
        .with_context(|| format!("cannot create the example chain in {shown}"))?;
    if args.json {
        outln!("{}", serde_json::json!({ "dir": dir, "files": files }));
        return Ok(ExitCode::SUCCESS);
    }
    outln!("created the three-tier example chain in {shown}:");
    for f in files {
        outln!("  {}", f.display());
    }
    let c = if args.dir.is_some() {
        format!(" -C {shown}")
    } else {
        String::new()
    };
    outln!("next: strata{c} graph, strata{c} plan --changed corebuild");
    Ok(ExitCode::SUCCESS)
}

/// `path` relative to the current directory when inside it.
fn display(path: &Path) -> String {
    std::env::current_dir()
        .ok()
        .and_then(|cwd| path.strip_prefix(cwd).ok().map(Path::to_path_buf))
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| path.to_path_buf())
        .display()
        .to_string()
}
