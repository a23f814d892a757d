//! `strata watch`: the trigger loop, until SIGINT or SIGTERM. In a chain project (a chain file),
//! it follows the chain's upstreams every `--interval` ([`super::follow`]: move the lock, cascade,
//! push). With a deploy file, it reconciles every deployment at once, when the store changes (a
//! build, a push to `strata serve`, the follower's cascade), and every `--interval` (which also
//! polls registry references). Both run side by side, each in its own thread.

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
    /// Commit each move of strata.lock to the chain's git repository, naming the upstream change.
    #[arg(long)]
    commit: bool,
    #[command(flatten)]
    options: DeployOptions,
}

/// Watch until stopped.
pub fn run(args: Args, global: &GlobalArgs) -> Result<ExitCode> {
    let interval = strata_deploy::config::parse_duration(&args.interval)
        .map_err(anyhow::Error::msg)
        .context("--interval")?;
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, stop.clone())
            .context("cannot install the signal handler")?;
    }
    let follow = global.chain_path()?.exists();
    let deploy_file = global.workdir()?.join(&args.options.file);
    if args.commit && !follow {
        anyhow::bail!(
            "--commit commits strata.lock: it needs a chain file ({})",
            global.chain_path()?.display()
        );
    }
    let mut follower = None;
    if follow {
        // The chain must load now: a bad chain file is one line and an exit, not a loop of them
        // (with a deploy file, the deployments are watched without it, as before chains had
        // upstreams).
        match super::graph::load_chain(global) {
            Ok(chain) => {
                // The follower builds into the store: it exists from the start, for the
                // deployments' loop too.
                let store = global.store_path()?;
                strata_oci::Store::init(&store)
                    .with_context(|| format!("cannot open the store {}", store.display()))?;
                errln!(
                    "watch: following the upstreams ({}) and git contexts ({}) of chain {} every {}",
                    chain.upstreams().len(),
                    chain.git_commits().len(),
                    chain.file.name,
                    args.interval
                );
                follower = Some(super::follow::Follower::new(
                    args.options.client.client()?,
                    args.commit,
                    stop.clone(),
                ));
            }
            Err(e) if deploy_file.exists() && !args.commit => {
                errln!("watch: error: {e:#} (upstreams not followed; deployments watched)")
            }
            Err(e) => return Err(e),
        }
    }
    // Without a deploy file, a chain project is watched for its upstreams only; without either,
    // the deploy file's error says what is missing.
    if let Some(follower) = &mut follower
        && !deploy_file.exists()
    {
        follower.run(global, interval);
        return Ok(ExitCode::SUCCESS);
    }
    std::thread::scope(|scope| {
        if let Some(mut follower) = follower {
            scope.spawn(move || follower.run(global, interval));
        }
        let result = deployments(&args, global, interval, &stop);
        // The follower ends with the deployments' loop (an error there stops both).
        stop.store(true, Ordering::Relaxed);
        result
    })
}

/// Reconcile the deploy file's deployments until `stop`.
fn deployments(
    args: &Args,
    global: &GlobalArgs,
    interval: std::time::Duration,
    stop: &Arc<AtomicBool>,
) -> Result<ExitCode> {
    let mut ctx = DeployContext::load(&args.options, global)?;
    ctx.need_trust()?;
    let json = args.options.json;
    let path = global.workdir()?.join(&args.options.file);
    // The deploy file as last read (good or bad): a change to it is read again once, and a bad
    // edit is reported once while the last good file goes on being used.
    let mut seen = std::fs::read(&path).ok();
    let mut closed = None;
    // Only news: a deployment's line is printed when its result or desired digest changes, not at
    // every pass (a digest waiting for approval or refused stays so until something happens).
    let mut last: std::collections::HashMap<String, (String, String)> = Default::default();
    // The deployments the file no longer has: named when watch starts and again when the file
    // changes (and with it the set), not at every pass.
    let mut orphans_told: Option<Vec<String>> = None;
    while !stop.load(Ordering::Relaxed) {
        let mut changed = false;
        let deployer = ctx.deployer();
        let names: Vec<String> = deployer
            .orphans()
            .map(|o| o.into_iter().map(|o| o.message).collect())
            .unwrap_or_default();
        if orphans_told.as_ref() != Some(&names) {
            super::deploy::warn_orphans(&deployer);
            orphans_told = Some(names);
        }
        drop(deployer);
        ctx.deployer().watch(
            interval,
            stop,
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
