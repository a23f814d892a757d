//! The subcommands. Each module holds one command's clap arguments and its `run`.
//!
//! To add a command: a module here, a variant in [`Command`], an arm in [`run`].

use std::process::ExitCode;

use anyhow::Result;

use crate::global::GlobalArgs;

/// Every `strata` subcommand.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Print strata's version and build facts.
    Version(version::Args),
    /// Read Dockerfiles as BuildKit does: `strata dockerfile parse FILE`.
    Dockerfile(dockerfile::Args),
    /// List the images in the store.
    Images(images::Args),
    /// Check (`fsck`) and clean (`gc`) the content store.
    Store(store::Args),
}

/// Run one subcommand.
pub fn run(command: Command, global: &GlobalArgs) -> Result<ExitCode> {
    match command {
        Command::Version(args) => version::run(args, global),
        Command::Dockerfile(args) => dockerfile::run(args, global),
        Command::Images(args) => images::run(args, global),
        Command::Store(args) => store::run(args, global),
    }
}

mod dockerfile;
mod images;
mod store;
mod version;
