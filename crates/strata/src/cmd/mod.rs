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
}

/// Run one subcommand.
pub fn run(command: Command, global: &GlobalArgs) -> Result<ExitCode> {
    match command {
        Command::Version(args) => version::run(args, global),
    }
}

mod version;
