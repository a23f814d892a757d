//! `strata run`: run a command in an image with the build sandbox, throwing its changes away.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::{Context, Result, bail};
use strata_build::exec::{ExecRequest, exec};
use strata_sandbox::Stream;

use crate::global::GlobalArgs;

/// Arguments of `strata run`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The image (`acme/corebuild`, `localhost/acme/corebuild:3`, `name@sha256:...`).
    image: String,
    /// Run as this user (`name`, `uid`, `user:group`).
    #[arg(long, short = 'u')]
    user: Option<String>,
    /// Working directory.
    #[arg(long, short = 'w')]
    workdir: Option<String>,
    /// Environment variable (repeatable): `KEY=VALUE`.
    #[arg(long = "env", short = 'e', value_name = "KEY=VALUE")]
    env: Vec<String>,
    /// Replace the image's ENTRYPOINT (a single executable).
    #[arg(long)]
    entrypoint: Option<String>,
    /// Run without network (the same as `--network none`).
    #[arg(long)]
    no_network: bool,
    #[command(flatten)]
    sandbox: super::sandbox_args::SandboxArgs,
    /// Keep stdin open: the command reads strata's standard input (as `podman run -i`).
    #[arg(long, short = 'i')]
    interactive: bool,
    /// Give the command a terminal (as `podman run -t`); with `-i` on a terminal, keys go to
    /// the command as typed (Ctrl-C included) until it ends.
    #[arg(long, short = 't')]
    tty: bool,
    /// The command and its arguments (default: the image's ENTRYPOINT and CMD).
    #[arg(last = true)]
    command: Vec<String>,
}

/// Run the command; strata exits with its exit code.
pub fn run(args: Args, global: &GlobalArgs) -> Result<ExitCode> {
    let store_path = global.store_path()?;
    let store = strata_oci::Store::open(&store_path)
        .with_context(|| format!("cannot open the store {}", store_path.display()))?;
    let mut env = Vec::new();
    for kv in &args.env {
        match kv.split_once('=') {
            Some((k, v)) if !k.is_empty() => env.push((k.to_string(), v.to_string())),
            _ => bail!("invalid --env {kv:?}: expected KEY=VALUE"),
        }
    }
    let request = ExecRequest {
        argv: args.command,
        entrypoint: args.entrypoint.map(|e| vec![e]),
        user: args.user,
        workdir: args.workdir,
        env,
        network: if args.no_network {
            strata_sandbox::Network::None
        } else {
            args.sandbox.network()
        },
        pids_limit: args.sandbox.pids_limit(),
        interactive: args.interactive,
        tty: args.tty,
    };
    let work_dir = crate::global::state_dir_of(&store_path).join("cache");
    let mut output = |stream: Stream, bytes: &[u8]| {
        let _ = match stream {
            Stream::Stdout => std::io::stdout().write_all(bytes),
            Stream::Stderr => std::io::stderr().write_all(bytes),
        };
    };
    // Typed keys go to the command's terminal unprocessed; restored however the run ends.
    let _raw = (args.tty && args.interactive)
        .then(RawTerminal::enter)
        .flatten();
    let reference = super::reference::store_reference(&store, &args.image)?;
    let outcome = exec(
        &store,
        &reference,
        &request,
        &work_dir,
        &mut output,
        Arc::new(AtomicBool::new(false)),
    )
    .with_context(|| format!("strata run {}", args.image))?;
    Ok(ExitCode::from(
        u8::try_from(outcome.code.clamp(0, 255)).unwrap_or(1),
    ))
}

/// This process's terminal in raw mode, restored on drop.
struct RawTerminal {
    saved: nix::sys::termios::Termios,
}

impl RawTerminal {
    /// Raw mode on stdin when it is a terminal (None otherwise).
    fn enter() -> Option<Self> {
        use nix::sys::termios::{SetArg, cfmakeraw, tcgetattr, tcsetattr};
        let stdin = std::io::stdin();
        let saved = tcgetattr(&stdin).ok()?;
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        tcsetattr(&stdin, SetArg::TCSANOW, &raw).ok()?;
        Some(Self { saved })
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        let _ = nix::sys::termios::tcsetattr(
            std::io::stdin(),
            nix::sys::termios::SetArg::TCSANOW,
            &self.saved,
        );
    }
}
