//! `strata watch`: the trigger loop. Reconciles every deployment of a `deploy.toml` at once, when
//! the store changes (a build, a push to `strata serve`), and every `--interval` (which also polls
//! registry references), until SIGINT or SIGTERM.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context as _, Result};

use super::deploy::{DeployContext, DeployOptions, print_outcomes};
use crate::global::GlobalArgs;
use crate::out::errln;

/// Arguments of `strata watch`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Reconcile at least this often (`30s`, `2m`).
    #[arg(long, default_value = "30s")]
    interval: String,
    #[command(flatten)]
    options: DeployOptions,
}

/// Watch until stopped.
pub fn run(args: Args, global: &GlobalArgs) -> Result<ExitCode> {
    let interval = strata_deploy::config::parse_duration(&args.interval)
        .map_err(anyhow::Error::msg)
        .context("--interval")?;
    let mut ctx = DeployContext::load(&args.options, global)?;
    ctx.need_trust()?;
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, stop.clone())
            .context("cannot install the signal handler")?;
    }
    let json = args.options.json;
    let path = global.workdir()?.join(&args.options.file);
    // The deploy file as last read (good or bad): a change to it is read again once, and a bad
    // edit is reported once while the last good file goes on being used.
    let mut seen = std::fs::read(&path).ok();
    let mut closed = None;
    // Only news: a deployment's line is printed when its result or desired digest changes, not at
    // every pass (a digest waiting for approval or refused stays so until something happens).
    let mut last: std::collections::HashMap<String, (String, String)> = Default::default();
    while !stop.load(Ordering::Relaxed) {
        let mut changed = false;
        ctx.deployer().watch(
            interval,
            &stop,
            |pass| match pass {
                Ok(outcomes) => {
                    let news: Vec<_> = outcomes
                        .into_iter()
                        .filter(|o| {
                            let now = (o.result.clone(), o.desired.clone());
                            last.insert(o.deployment.clone(), now.clone()) != Some(now)
                        })
                        .collect();
                    if !news.is_empty()
                        && let Err(e) = print_outcomes(&news, json)
                    {
                        closed = Some(e);
                        stop.store(true, Ordering::Relaxed);
                    }
                }
                Err(e) => errln!("error: {}", strata_oci::report(&e)),
            },
            || {
                let now = std::fs::read(&path).ok();
                changed = now.is_some() && now != seen;
                if changed {
                    seen = now;
                }
                changed
            },
        );
        if changed {
            match ctx.reload(global) {
                Ok(()) => errln!("watch: {} changed: read again", path.display()),
                Err(e) => errln!(
                    "error: {e:#} (watch goes on with the last good {})",
                    path.display()
                ),
            }
        }
    }
    match closed {
        Some(e) => Err(e),
        None => Ok(ExitCode::SUCCESS),
    }
}
