//! `strata test`: run an image's tier tests (a container-structure-test file) without a daemon.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::{Context, Result, bail};
use strata_tiertest::RunOptions;

use super::graph::{load_chain, write_stdout};
use crate::global::GlobalArgs;

/// Arguments of `strata test`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The image: a chain image name (`corebuild`) or a store reference (`acme/corebuild:3`).
    image: String,
    /// The test file (default: the chain image's `test` in strata.toml).
    #[arg(long, short = 'c', value_name = "FILE")]
    config: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_parser = ["text", "json", "junit"], default_value = "text")]
    format: String,
    /// The JUnit suite name.
    #[arg(long, default_value = "container-structure-test.test")]
    junit_suite_name: String,
}

/// Run the tests; exit 1 when any fails (or none ran).
pub fn run(args: Args, global: &GlobalArgs) -> Result<ExitCode> {
    let store_path = global.store_path()?;
    let store = strata_oci::Store::open(&store_path)
        .with_context(|| format!("cannot open the store {}", store_path.display()))?;
    // With --config the chain is optional (it only names the image for the events log).
    let chain = if args.config.is_none() {
        Some(load_chain(global)?)
    } else {
        load_chain(global).ok()
    };
    // The chain image the argument names, if any: its test file, store reference and owner.
    let chain_image = chain
        .as_ref()
        .and_then(|c| c.resolve(&args.image).map(|i| (c, i)));
    let config = match (&args.config, chain_image) {
        (Some(file), _) => global.workdir()?.join(file),
        (None, Some((c, i))) => match &c.file.images[i].test {
            Some(test) => test.clone(),
            None => bail!(
                "image {} has no `test` in {}: give --config FILE",
                c.file.images[i].name,
                c.file.path.display()
            ),
        },
        (None, None) => bail!(
            "{} is not an image of the chain: give the test file with --config FILE",
            args.image
        ),
    };
    let reference = match chain_image {
        Some((c, i)) if store.refs().resolve(&args.image).is_err() => {
            strata_cascade::refs::tagged(c, i, "latest")
        }
        _ => super::reference::store_reference(&store, &args.image)?,
    };
    let cancel = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, cancel.clone())
            .context("cannot install the interrupt handler")?;
    }
    let options = RunOptions {
        work_dir: Some(crate::global::state_dir_of(&store_path).join("cache")),
        cancel,
        sandbox: Some(Arc::new(strata_cascade::BuilderSandbox)),
    };
    let report = strata_tiertest::run_file(&store, &reference, &config, &options)
        .with_context(|| format!("strata test {reference}"))?;
    if let Some((c, i)) = chain_image {
        let events_path = crate::global::state_dir_of(&store_path).join("events.db");
        let image = &c.file.images[i];
        if let Err(e) = strata_events::EventLog::open(&events_path)
            .and_then(|log| log.record(&report.to_event(&image.name, &image.owner, None)))
        {
            tracing::warn!("cannot record the test of {}: {e}", image.name);
        }
    }
    let text = match args.format.as_str() {
        "json" => format!("{}\n", report.to_json()),
        "junit" => report.to_junit(&args.junit_suite_name),
        _ => report.to_text(),
    };
    write_stdout(&text)?;
    Ok(if report.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
