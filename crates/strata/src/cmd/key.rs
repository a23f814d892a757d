//! `strata key generate --team T [--out DIR] [--ed25519] [--json]`: a team's signing key pair.

use crate::out::outln;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use strata_attest::keys::{KeyKind, PASSWORD_ENV, PrivateKey, write_key_pair};

use crate::global::GlobalArgs;

/// Arguments of `strata key`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: KeyCommand,
}

#[derive(Debug, clap::Subcommand)]
enum KeyCommand {
    /// Write a new key pair: `<team>.key` (private, mode 0600, encrypted when STRATA_KEY_PASSWORD is
    /// set) and `<team>.pub` (list it under `[teams.<team>] keys` in strata.toml).
    Generate(GenerateArgs),
}

#[derive(Debug, clap::Args)]
struct GenerateArgs {
    /// The team the key signs for.
    #[arg(long)]
    team: String,
    /// The directory to write the key files in (default: the working directory).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// An Ed25519 key instead of ECDSA P-256.
    #[arg(long)]
    ed25519: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Run `strata key`.
pub fn run(args: Args, global: &GlobalArgs) -> Result<ExitCode> {
    match args.command {
        KeyCommand::Generate(args) => generate(args, global),
    }
}

fn generate(args: GenerateArgs, global: &GlobalArgs) -> Result<ExitCode> {
    let workdir = global.workdir()?;
    let dir = match &args.out {
        Some(out) => workdir.join(out),
        None => workdir,
    };
    let kind = if args.ed25519 {
        KeyKind::Ed25519
    } else {
        KeyKind::EcdsaP256
    };
    let passphrase = std::env::var(PASSWORD_ENV).ok().filter(|p| !p.is_empty());
    let key = PrivateKey::generate(kind).context("cannot generate a key")?;
    let files = write_key_pair(&dir, &args.team, &key, passphrase.as_deref())
        .with_context(|| format!("cannot write the key pair of team {}", args.team))?;
    if args.json {
        let mut value = serde_json::to_value(&files)?;
        value["team"] = serde_json::Value::String(args.team.clone());
        outln!("{value}");
    } else {
        outln!("{}", files.key_id);
        outln!(
            "wrote {} ({kind}, {}) and {}",
            files.private_key.display(),
            if files.encrypted {
                "encrypted with STRATA_KEY_PASSWORD"
            } else {
                "not encrypted: set STRATA_KEY_PASSWORD to encrypt"
            },
            files.public_key.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
