//! `strata dockerfile parse FILE [--json] [--build-arg K=V] [--target STAGE]`.

use crate::out::outln;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow, bail};
use strata_dockerfile::{Base, Document, Resolved};

use crate::global::GlobalArgs;

/// Arguments of `strata dockerfile`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Sub,
}

#[derive(Debug, clap::Subcommand)]
enum Sub {
    /// Parse a Dockerfile and print its stages, instructions and external images.
    Parse(ParseArgs),
}

/// Arguments of `strata dockerfile parse`.
#[derive(Debug, clap::Args)]
struct ParseArgs {
    /// The Dockerfile.
    file: std::path::PathBuf,
    /// Print the JSON document (see docs/dockerfile-json.md).
    #[arg(long)]
    json: bool,
    /// A build argument, KEY=VALUE (repeatable).
    #[arg(long = "build-arg", value_name = "KEY=VALUE")]
    build_args: Vec<String>,
    /// The stage to build (default: the last).
    #[arg(long, value_name = "STAGE")]
    target: Option<String>,
}

/// Run `strata dockerfile ...`.
pub fn run(args: Args, global: &GlobalArgs) -> Result<ExitCode> {
    match args.command {
        Sub::Parse(a) => parse(a, global),
    }
}

fn build_args(raw: &[String]) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for kv in raw {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| anyhow!("--build-arg {kv:?}: expected KEY=VALUE"))?;
        if k.is_empty() {
            bail!("--build-arg {kv:?}: the name is empty");
        }
        out.insert(k.to_string(), v.to_string());
    }
    Ok(out)
}

fn parse(args: ParseArgs, global: &GlobalArgs) -> Result<ExitCode> {
    let path = global.workdir()?.join(&args.file);
    let shown = args.file.display().to_string();
    // Bytes: a comment may hold non-UTF-8 bytes (BuildKit accepts them); the parser decides.
    let bytes =
        std::fs::read(&path).with_context(|| format!("{shown}: cannot read the Dockerfile"))?;
    let build_args = build_args(&args.build_args)?;
    let dockerfile = strata_dockerfile::parse_bytes(&bytes).map_err(|e| anyhow!("{shown}:{e}"))?;
    let resolved = dockerfile
        .resolve(&build_args, args.target.as_deref())
        .map_err(|e| anyhow!("{shown}:{e}"))?;
    if args.json {
        let doc = Document::new(&shown, &dockerfile, &resolved);
        outln!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        crate::out::write_stdout(&render(&shown, &dockerfile, &resolved))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The human-readable listing.
fn render(file: &str, df: &strata_dockerfile::Dockerfile, r: &Resolved) -> String {
    let mut out = String::new();
    let target = &r.stages[r.target];
    let _ = writeln!(
        out,
        "{file}: {} stage(s), target {}{}",
        r.stages.len(),
        r.target,
        target
            .name
            .as_deref()
            .map(|n| format!(" ({n})"))
            .unwrap_or_default()
    );
    if let Some(s) = &df.directives.syntax {
        let _ = writeln!(out, "syntax: {s}");
    }
    if df.directives.escape != '\\' {
        let _ = writeln!(out, "escape: {}", df.directives.escape);
    }
    for w in &df.warnings {
        let _ = writeln!(out, "warning: {file}:{}: {}", w.line, w.message);
    }
    for s in &r.stages {
        let base = match &s.base {
            Base::Scratch => "scratch".to_string(),
            Base::Stage(i) => format!("stage {i}"),
            Base::Image(img) => format!("image {img}"),
        };
        let _ = writeln!(
            out,
            "\nstage {}{}: {} ({base}){}{}",
            s.index,
            s.name
                .as_deref()
                .map(|n| format!(" {n}"))
                .unwrap_or_default(),
            s.from.command,
            s.platform
                .as_deref()
                .map(|p| format!(" platform {p}"))
                .unwrap_or_default(),
            if s.needed { "" } else { " [not needed]" }
        );
        for ri in &s.instructions {
            let i = &ri.instruction;
            let lines = if i.start_line == i.end_line {
                format!("{}", i.start_line)
            } else {
                format!("{}-{}", i.start_line, i.end_line)
            };
            let text = i.command.to_string();
            let first = text.lines().next().unwrap_or_default();
            let more = if text.lines().nth(1).is_some() {
                " …"
            } else {
                ""
            };
            let _ = writeln!(out, "  {lines:>7}  {first}{more}");
        }
    }
    let deps = r.dependencies();
    if !deps.is_empty() {
        let _ = writeln!(out, "\nexternal images:");
        for d in deps {
            let kind = match d.kind {
                strata_dockerfile::DependencyKind::From => "FROM",
                strata_dockerfile::DependencyKind::CopyFrom => "COPY --from",
                strata_dockerfile::DependencyKind::MountFrom => "RUN --mount from",
            };
            let _ = writeln!(
                out,
                "  {}  ({kind}, line {}, stage {})",
                d.reference, d.line, d.stage
            );
        }
    }
    if !r.unused_build_args.is_empty() {
        let _ = writeln!(
            out,
            "\nwarning: build args not consumed: {}",
            r.unused_build_args.join(", ")
        );
    }
    out
}
