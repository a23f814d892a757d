//! `strata export`: hand the chain to an engine (`openshift`, `tekton`, `kubernetes`), or, as
//! before `strata save` existed, write an image archive (deprecated: `strata save` does that, as
//! in podman).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;

use crate::global::GlobalArgs;

/// Arguments of `strata export`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// An image to write as an archive (deprecated: use `strata save`).
    target: String,
    /// With an image: `docker-archive` or `oci-archive` (deprecated: use `strata save`).
    #[arg(long, value_parser = ["oci-archive", "docker-archive"], default_value = "oci-archive")]
    format: String,
    /// With an image: the archive to write.
    #[arg(long, short = 'o', value_name = "PATH")]
    output: Option<PathBuf>,
}

/// Export; an image archive goes through `strata save`, with a note saying so.
pub fn run(args: Args, global: &GlobalArgs) -> Result<ExitCode> {
    let Some(output) = args.output else {
        anyhow::bail!("strata export {}: -o FILE is required", args.target);
    };
    crate::out::errln!(
        "note: `strata export IMAGE --format` is deprecated; use `strata save {} --format {} -o {}`",
        args.target,
        args.format,
        output.display()
    );
    super::save::run(
        super::save::Args {
            image: args.target,
            format: args.format,
            output,
        },
        global,
    )
}
