//! `strata deploy`: reconcile the deployments of a `deploy.toml` once, and the manual controls
//! (status, history, rollback, hold, release, approve, down). The front listener helper
//! (`strata deploy proxy`) is started by a rollout, not by hand.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use strata_deploy::{DeployFile, Deployer, Podman, RollbackTo, StateDir};

use super::copy::ClientArgs;
use crate::global::GlobalArgs;
use crate::out::{errln, outln};

/// Options every deploy command shares.
#[derive(Debug, clap::Args)]
pub struct DeployOptions {
    /// The deploy file.
    #[arg(
        long = "file",
        short = 'f',
        global = true,
        env = "STRATA_DEPLOY_FILE",
        default_value = "deploy.toml",
        value_name = "FILE"
    )]
    pub file: PathBuf,
    /// Options given to podman before its subcommand (`--root DIR --storage-driver vfs`),
    /// separated by white space.
    #[arg(
        long,
        global = true,
        env = "STRATA_PODMAN_ARGS",
        value_name = "ARGS",
        allow_hyphen_values = true
    )]
    pub podman_args: Option<String>,
    /// Extra options of `podman run` (`--runtime runc --ulimit nofile=20000:20000`), separated by
    /// white space.
    #[arg(
        long,
        global = true,
        env = "STRATA_PODMAN_RUN_ARGS",
        value_name = "ARGS",
        allow_hyphen_values = true
    )]
    pub podman_run_args: Option<String>,
    /// Print JSON.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(flatten)]
    pub client: ClientArgs,
}

/// Arguments of `strata deploy`.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Args {
    #[command(subcommand)]
    command: Option<Sub>,
    /// Reconcile only these deployments (default: all).
    names: Vec<String>,
    #[command(flatten)]
    options: DeployOptions,
}

#[derive(Debug, clap::Subcommand)]
enum Sub {
    /// What runs, which digest, since when, healthy or not, holds, pending approvals.
    Status {
        /// Only these deployments.
        names: Vec<String>,
    },
    /// A deployment's rollouts, rollbacks and failures, numbered.
    History {
        /// The deployment.
        name: String,
    },
    /// Go back to the previous healthy digest (or `--to N` / `--to sha256:...`) and hold there.
    Rollback {
        /// The deployment.
        name: String,
        /// A revision number from `history`, or a digest.
        #[arg(long)]
        to: Option<String>,
        /// The team acting: the deploy file's owner, proven by its key (`STRATA_KEY_<TEAM>`, one
        /// the chain file trusts for it).
        #[arg(long, env = "STRATA_TEAM", value_name = "TEAM")]
        team: String,
    },
    /// Pin the running digest: new images wait until `release`.
    Hold {
        /// The deployment.
        name: String,
        /// The team acting: the deploy file's owner, proven by its key (`STRATA_KEY_<TEAM>`, one
        /// the chain file trusts for it).
        #[arg(long, env = "STRATA_TEAM", value_name = "TEAM")]
        team: String,
    },
    /// Remove a hold; the deployment follows its image again.
    Release {
        /// The deployment.
        name: String,
        /// The team acting: the deploy file's owner, proven by its key (`STRATA_KEY_<TEAM>`, one
        /// the chain file trusts for it).
        #[arg(long, env = "STRATA_TEAM", value_name = "TEAM")]
        team: String,
    },
    /// Let the digest waiting for approval (manual trigger) in, and roll it out.
    Approve {
        /// The deployment.
        name: String,
        /// The digest (default: the one waiting).
        digest: Option<String>,
        /// The team acting: the deploy file's owner, proven by its key (`STRATA_KEY_<TEAM>`, one
        /// the chain file trusts for it).
        #[arg(long, env = "STRATA_TEAM", value_name = "TEAM")]
        team: String,
    },
    /// Stop a deployment's containers and front listeners (its state and history stay); for a
    /// deployment taken out of the deploy file, the same as `prune NAME`.
    Down {
        /// The deployment.
        name: String,
    },
    /// Stop and remove deployments taken out of the deploy file (or renamed): their containers,
    /// front listeners and gc roots; their state and history stay, marked removed.
    Prune {
        /// Only these orphans (default: all).
        names: Vec<String>,
        /// Say what would be removed, and remove nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// The front listener of a published port (started by rollouts).
    #[command(hide = true)]
    Proxy {
        /// `IP:PORT` to listen on.
        #[arg(long)]
        listen: String,
        /// The file holding the backend's `IP:PORT`.
        #[arg(long)]
        backend_file: PathBuf,
    },
}

/// What a deploy command works with, built from the flags.
pub struct DeployContext {
    /// The deploy file.
    pub file: DeployFile,
    /// The store.
    pub store: strata_oci::Store,
    /// The events log.
    pub events: Option<strata_events::EventLog>,
    /// The trust configuration of the chain, when a deployment requires verified images.
    pub trust: Option<strata_attest::TrustConfig>,
    /// Why the trust configuration could not be read, when it was needed.
    pub trust_error: Option<anyhow::Error>,
    /// The registry client.
    pub client: Option<strata_remote::Client>,
    /// Other projects' images and attestations, read from their registries for
    /// `require.verified` (the same walk as `strata verify`).
    pub upstream: Option<super::upstream::Registries>,
    /// The target.
    pub podman: Podman,
    /// The state directory.
    pub state_root: PathBuf,
}

impl DeployContext {
    /// Read the deploy file, open the store, the events log and (if needed) the chain's trust.
    pub fn load(options: &DeployOptions, global: &GlobalArgs) -> Result<DeployContext> {
        let path = global.workdir()?.join(&options.file);
        let file = DeployFile::load(&path)?;
        let store_path = global.store_path()?;
        let store = strata_oci::Store::open(&store_path)
            .with_context(|| format!("cannot open the store {}", store_path.display()))?;
        let state_root = crate::global::state_dir_of(&store_path);
        let events = match strata_events::EventLog::open(&state_root.join("events.db")) {
            Ok(log) => Some(log),
            Err(e) => {
                tracing::warn!("deployments will not be recorded: {e}");
                None
            }
        };
        // Only a rollout needs the trust: `status`, `hold`... work without the chain file.
        let (trust, trust_error) = if file.deployments.iter().any(|d| d.require_verified) {
            match super::graph::load_chain(global)
                .and_then(|chain| Ok(strata_cascade::trust_config(&chain)?))
            {
                Ok(trust) => (Some(trust), None),
                Err(e) => (
                    None,
                    Some(e.context("require.verified needs the chain's teams and keys")),
                ),
            }
        } else {
            (None, None)
        };
        let split = |s: &Option<String>| {
            s.as_deref()
                .unwrap_or_default()
                .split_whitespace()
                .map(str::to_string)
                .collect::<Vec<_>>()
        };
        Ok(DeployContext {
            file,
            store,
            events,
            trust,
            trust_error,
            client: options.client.client().ok(),
            upstream: options
                .client
                .client()
                .ok()
                .map(super::upstream::Registries::new),
            podman: Podman {
                program: PathBuf::from("podman"),
                global_args: split(&options.podman_args),
                run_args: split(&options.podman_run_args),
            },
            state_root,
        })
    }

    /// Read the deploy file again (it changed under `strata watch`), and the chain's trust if the
    /// new file needs it; on any error the context keeps the file it had.
    pub fn reload(&mut self, global: &GlobalArgs) -> Result<()> {
        let file = DeployFile::load(&self.file.path)?;
        if self.trust.is_none() && file.deployments.iter().any(|d| d.require_verified) {
            let chain = super::graph::load_chain(global)
                .context("require.verified needs the chain's teams and keys")?;
            self.trust = Some(strata_cascade::trust_config(&chain)?);
        }
        self.file = file;
        Ok(())
    }

    /// Fail when a rollout would need the trust configuration and it could not be read.
    pub fn need_trust(&mut self) -> Result<()> {
        match self.trust_error.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// The team `team` acting on deployments, proven by its signing key against the keys the
    /// chain file trusts for it (the chain file is read here when `require.verified` did not).
    pub fn actor(&self, team: &str, global: &GlobalArgs) -> Result<strata_deploy::Actor> {
        let env = |var: &str| std::env::var(var).ok();
        let actor = match &self.trust {
            Some(trust) => strata_deploy::Actor::prove(team, trust, env)?,
            None => {
                let chain = super::graph::load_chain(global).with_context(|| {
                    format!(
                        "cannot act as team {team}: its keys are trusted through the chain file"
                    )
                })?;
                let trust = strata_cascade::trust_config(&chain)?;
                strata_deploy::Actor::prove(team, &trust, env)?
            }
        };
        Ok(actor)
    }

    /// The deployer over this context.
    pub fn deployer(&self) -> Deployer<'_> {
        Deployer {
            file: &self.file,
            store: &self.store,
            states: StateDir::new(&self.state_root, &self.file.name),
            target: &self.podman,
            events: self.events.as_ref(),
            trust: self.trust.as_ref(),
            client: self.client.as_ref(),
            upstream: self
                .upstream
                .as_ref()
                .map(|r| r as &dyn strata_attest::custody::Upstream),
            proxy_program: std::env::current_exe().ok(),
        }
    }
}

/// Run `strata deploy`.
pub fn run(args: Args, global: &GlobalArgs) -> Result<ExitCode> {
    if let Some(Sub::Proxy {
        listen,
        backend_file,
    }) = &args.command
    {
        return proxy(listen, backend_file);
    }
    let mut ctx = DeployContext::load(&args.options, global)?;
    if matches!(
        args.command,
        None | Some(Sub::Rollback { .. } | Sub::Approve { .. })
    ) {
        ctx.need_trust()?;
    }
    let deployer = ctx.deployer();
    let json = args.options.json;
    match args.command {
        None => {
            let outcomes = deployer.reconcile(&args.names)?;
            print_outcomes(&outcomes, json)?;
            warn_orphans(&deployer);
            let failed = outcomes
                .iter()
                .any(|o| matches!(o.result.as_str(), "failed" | "rolled-back" | "refused"));
            Ok(if failed {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
        Some(Sub::Status { names }) => {
            // Names the file no longer has are shown as the orphans they are.
            let orphans: Vec<_> = deployer
                .orphans()?
                .into_iter()
                .filter(|o| names.is_empty() || names.contains(&o.name))
                .collect();
            let asked: Vec<String> = names
                .iter()
                .filter(|n| !orphans.iter().any(|o| &o.name == *n))
                .cloned()
                .collect();
            let status = if asked.is_empty() && !names.is_empty() {
                Vec::new()
            } else {
                deployer.status(&asked)?
            };
            if json {
                let mut all = serde_json::to_value(&status)?;
                if let Some(list) = all.as_array_mut() {
                    for o in &orphans {
                        list.push(serde_json::to_value(o)?);
                    }
                }
                outln!("{}", serde_json::to_string_pretty(&all)?);
            } else {
                for o in &orphans {
                    outln!("{}: orphan: {}", o.name, o.message);
                }
                for s in status {
                    let st = &s.state;
                    let running = st.running.as_ref().map_or("-".to_string(), |r| {
                        format!(
                            "{} since {} ({})",
                            r.digest,
                            r.since,
                            if r.healthy { "healthy" } else { "unhealthy" }
                        )
                    });
                    outln!("{}: {} → {}", s.name, s.image, running);
                    if let Some(place) = &s.place {
                        outln!(
                            "  runs at: {}",
                            st.running
                                .as_ref()
                                .map_or(place.as_str(), |r| r.container.as_str())
                        );
                    }
                    if let Some(h) = &st.hold {
                        outln!(
                            "  held at {} by {} since {} ({})",
                            h.digest,
                            h.by,
                            h.since,
                            h.reason
                        );
                    }
                    if let Some(p) = &st.pending {
                        outln!("  waiting for approval: {} since {}", p.digest, p.since);
                    }
                    if let Some(r) = &st.refused {
                        outln!("  refused: {}: {}", r.digest, r.reason);
                    }
                    for b in &st.bad {
                        outln!("  bad (failed its health check): {b}");
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Some(Sub::History { name }) => {
            // A deployment taken out of the file keeps its history.
            let history = match deployer.status(std::slice::from_ref(&name)) {
                Ok(mut status) => status.remove(0).state.history,
                Err(e) => {
                    if !deployer.states.names()?.contains(&name) {
                        return Err(e.into());
                    }
                    deployer.states.load(&name)?.history
                }
            };
            let history = &history;
            if json {
                outln!("{}", serde_json::to_string_pretty(history)?);
            } else {
                for r in history {
                    outln!(
                        "{:>3}  {}  {:<8} {:<6} {}{}",
                        r.n,
                        r.time,
                        r.action,
                        r.result,
                        r.digest,
                        r.cause
                            .as_deref()
                            .map(|c| format!("  ({c})"))
                            .unwrap_or_default()
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Some(Sub::Rollback { name, to, team }) => {
            let to = match to {
                None => RollbackTo::Previous,
                Some(t) if t.starts_with("sha256:") => RollbackTo::Digest(t),
                Some(t) => RollbackTo::Revision(t.parse().with_context(|| {
                    format!("--to {t}: neither a revision number nor a sha256: digest")
                })?),
            };
            deployer.authorize(&name, &team, "roll back")?;
            let actor = ctx.actor(&team, global)?;
            let outcome = deployer.rollback(&name, &to, &actor)?;
            print_outcomes(std::slice::from_ref(&outcome), json)?;
            Ok(ExitCode::SUCCESS)
        }
        Some(Sub::Hold { name, team }) => {
            deployer.authorize(&name, &team, "hold")?;
            let state = deployer.hold(&name, &ctx.actor(&team, global)?)?;
            print_state(&name, "held", &state, json)
        }
        Some(Sub::Release { name, team }) => {
            deployer.authorize(&name, &team, "release")?;
            let state = deployer.release(&name, &ctx.actor(&team, global)?)?;
            print_state(&name, "released", &state, json)
        }
        Some(Sub::Approve { name, digest, team }) => {
            deployer.authorize(&name, &team, "approve")?;
            let actor = ctx.actor(&team, global)?;
            let outcome = deployer.approve(&name, digest.as_deref(), &actor)?;
            print_outcomes(std::slice::from_ref(&outcome), json)?;
            Ok(
                if outcome.result == "deployed" || outcome.result == "up-to-date" {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                },
            )
        }
        Some(Sub::Down { name }) => {
            deployer.down(&name)?;
            if json {
                outln!(
                    "{}",
                    serde_json::json!({ "deployment": name, "result": "down" })
                );
            } else {
                outln!("{name}: down");
            }
            Ok(ExitCode::SUCCESS)
        }
        Some(Sub::Prune { names, dry_run }) => {
            let pruned = deployer.prune(&names, dry_run)?;
            if json {
                outln!("{}", serde_json::to_string(&pruned)?);
            } else if pruned.is_empty() {
                outln!("nothing to prune");
            } else {
                for p in &pruned {
                    outln!("{}: {}: {}", p.deployment, p.result, p.message);
                }
            }
            Ok(if pruned.iter().any(|p| p.result == "refused") {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
        Some(Sub::Proxy { .. }) => unreachable!("handled above"),
    }
}

/// Name, on stderr, the deployments the deploy file no longer has that still run or hold state.
pub fn warn_orphans(deployer: &Deployer<'_>) -> Vec<String> {
    match deployer.orphans() {
        Ok(orphans) => orphans
            .into_iter()
            .map(|o| {
                errln!("warning: {}", o.message);
                o.message
            })
            .collect(),
        Err(e) => {
            errln!(
                "warning: cannot look for deployments no longer in the deploy file: {}",
                strata_oci::report(&e)
            );
            Vec::new()
        }
    }
}

fn print_state(
    name: &str,
    what: &str,
    state: &strata_deploy::DeploymentState,
    json: bool,
) -> Result<ExitCode> {
    if json {
        outln!("{}", serde_json::to_string_pretty(state)?);
    } else {
        let at = state.running.as_ref().map_or("-", |r| r.digest.as_str());
        outln!("{name}: {what} (running {at})");
    }
    Ok(ExitCode::SUCCESS)
}

/// Print reconcile outcomes: one line each, or a JSON array.
pub fn print_outcomes(outcomes: &[strata_deploy::Outcome], json: bool) -> Result<()> {
    if json {
        outln!("{}", serde_json::to_string(outcomes)?);
    } else {
        for o in outcomes {
            outln!("{}: {}: {}", o.deployment, o.result, o.message);
        }
    }
    Ok(())
}

/// The front listener: bind, say `ready` on stdout, forward until killed.
fn proxy(listen: &str, backend_file: &std::path::Path) -> Result<ExitCode> {
    let listener = match std::net::TcpListener::bind(listen) {
        Ok(l) => l,
        Err(e) => {
            outln!("cannot listen on {listen}: {e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    outln!("ready");
    strata_deploy::proxy::serve(listener, backend_file)?;
    Ok(ExitCode::SUCCESS)
}
