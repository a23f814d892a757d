//! `strata`: the command-line front of the strata libraries.
//!
//! Each subcommand lives in its own module under `cmd/`, reads its flags and makes one library call;
//! the libraries never print or exit. Errors are reported here, on one line, with a non-zero exit.

mod cmd;
mod global;
mod out;

use std::process::ExitCode;

use clap::Parser;

/// strata: build, verify and ship a company's container supply chain, daemonless.
#[derive(Debug, Parser)]
#[command(name = "strata", version, about, long_about = None)]
struct Cli {
    #[command(flatten)]
    global: global::GlobalArgs,
    #[command(subcommand)]
    command: cmd::Command,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    global::init_tracing(cli.global.verbose);
    match cmd::run(cli.command, &cli.global) {
        Ok(code) => code,
        // The reader went away (`strata images | head -1`): nothing more to say, as `head` expects.
        Err(err) if err.downcast_ref::<out::StdoutClosed>().is_some() => ExitCode::SUCCESS,
        Err(err) => {
            out::errln!("error: {}", one_line(&err));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes on one line, outermost first (`a: b: c`). Each error's message holds
/// only its own text; its cause comes from `source()`, so nothing is printed twice.
fn one_line(err: &anyhow::Error) -> String {
    let line = err
        .chain()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(": ");
    // A failed RUN's output tail follows the error line, indented.
    line.replace('\n', "\n  ")
}
