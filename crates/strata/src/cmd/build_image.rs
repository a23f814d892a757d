//! `strata build-image`: build one image from a Dockerfile, like `buildah bud`.

use crate::out::{errln, outln};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use strata_build::builder::{BuildEvent, BuildOptions, BuildSink};
use strata_build::secret::{SecretSource, parse_secret, process_env_is_set};
use strata_oci::Squash;

use crate::global::GlobalArgs;

/// Arguments of `strata build-image`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The build context directory.
    context: PathBuf,
    /// The Dockerfile (default: CONTEXT/Dockerfile).
    #[arg(short = 'f', long = "file")]
    dockerfile: Option<PathBuf>,
    /// Tag the image (repeatable): `name:tag`, `registry/name:tag`.
    #[arg(short = 't', long = "tag")]
    tags: Vec<String>,
    /// A build argument (repeatable): `KEY=VALUE`, or `KEY` to take it from the environment.
    #[arg(long = "build-arg", value_name = "KEY=VALUE")]
    build_args: Vec<String>,
    /// Build this stage instead of the last.
    #[arg(long)]
    target: Option<String>,
    /// Squash the layers this Dockerfile adds into one.
    #[arg(long, conflicts_with = "squash_all")]
    squash: bool,
    /// Squash every layer, the base's included, into one.
    #[arg(long)]
    squash_all: bool,
    /// Layer compression.
    #[arg(long, value_parser = ["gzip", "zstd", "none"], default_value = "gzip")]
    compression: String,
    /// Do not reuse cached steps.
    #[arg(long)]
    no_cache: bool,
    /// A secret for `RUN --mount=type=secret` (repeatable), as BuildKit spells it:
    /// `id=ID,src=FILE`, `id=ID,env=VAR`, or `id=ID` (the variable ID if set, else the file ID).
    #[arg(long, value_name = "id=ID,src=FILE|env=VAR")]
    secret: Vec<String>,
    /// A label on the image's config (repeatable): `KEY=VALUE`; it wins over a LABEL of the
    /// same key.
    #[arg(long, value_name = "KEY=VALUE")]
    label: Vec<String>,
    /// An annotation on the image's manifest (repeatable): `KEY=VALUE`.
    #[arg(long, value_name = "KEY=VALUE")]
    annotation: Vec<String>,
    #[command(flatten)]
    sandbox: super::sandbox_args::SandboxArgs,
    /// When to pull the images FROM lines name from their registry: `missing` (not in the
    /// store), `always` (see a moved tag), `never`. `localhost/...` names are never pulled.
    #[arg(long, value_parser = ["missing", "always", "never"], default_value = "missing")]
    pull: String,
    /// Write the image's manifest digest (`sha256:...`, usable as `NAME@DIGEST`) to FILE.
    #[arg(long, value_name = "FILE")]
    iidfile: Option<PathBuf>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
    /// Time each step: the RUN commands' own time and strata's phases (snapshot, diff, tar,
    /// compress, hash, store), as a table on stderr and as JSON in `.strata/timings/<time>.json`
    /// (and in `--json`'s output).
    #[arg(long)]
    timings: bool,
}

/// Parse `KEY=VALUE` (or `KEY`, taken from the environment) build arguments.
pub fn parse_build_args(args: &[String]) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for arg in args {
        match arg.split_once('=') {
            Some((k, v)) if !k.is_empty() => {
                out.insert(k.to_string(), v.to_string());
            }
            Some(_) => bail!("invalid --build-arg {arg:?}: expected KEY=VALUE"),
            None => {
                if let Ok(v) = std::env::var(arg) {
                    out.insert(arg.clone(), v);
                }
            }
        }
    }
    Ok(out)
}

/// The `--pull` policy by name.
pub fn pull_policy(name: &str) -> strata_remote::PullPolicy {
    match name {
        "always" => strata_remote::PullPolicy::Always,
        "never" => strata_remote::PullPolicy::Never,
        _ => strata_remote::PullPolicy::Missing,
    }
}

/// Parse repeated `KEY=VALUE` flags (`--label`, `--annotation`).
fn parse_pairs(flag: &str, values: &[String]) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for value in values {
        match value.split_once('=') {
            Some((key, v)) if !key.is_empty() => {
                out.insert(key.to_string(), v.to_string());
            }
            _ => bail!("invalid --{flag} {value:?}: expected KEY=VALUE"),
        }
    }
    Ok(out)
}

/// Parse `--secret` values; relative files are taken from `workdir` (the `-C` directory).
pub fn parse_secrets(
    specs: &[String],
    workdir: &std::path::Path,
) -> Result<BTreeMap<String, SecretSource>> {
    let mut out = BTreeMap::new();
    for spec in specs {
        let (id, source) = parse_secret(spec, process_env_is_set)?;
        let source = match source {
            SecretSource::File(path) => SecretSource::File(workdir.join(path)),
            env => env,
        };
        if out.insert(id.clone(), source).is_some() {
            bail!("--secret id={id} is given twice");
        }
    }
    Ok(out)
}

/// `SOURCE_DATE_EPOCH` from the environment (default 0).
pub fn source_date_epoch() -> Result<u64> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) if !v.is_empty() => v
            .parse()
            .with_context(|| format!("SOURCE_DATE_EPOCH={v:?} is not a number of seconds")),
        _ => Ok(0),
    }
}

/// Prints each step on stderr, as `buildah bud` does.
struct StepPrinter;

impl BuildSink for StepPrinter {
    fn event(&self, event: BuildEvent<'_>) {
        match event {
            BuildEvent::Step {
                number,
                total,
                text,
            } => {
                let first = text.lines().next().unwrap_or("");
                errln!("[{number}/{total}] {first}");
            }
            BuildEvent::Cached => errln!("  --> cached"),
            BuildEvent::Output(line) => errln!("  | {line}"),
            BuildEvent::Stage { .. } => {}
        }
    }
}

/// Build the image.
pub fn run(args: Args, global: &GlobalArgs) -> Result<ExitCode> {
    let workdir = global.workdir()?;
    let store_path = global.store_path()?;
    let store = strata_oci::Store::init(&store_path)
        .with_context(|| format!("cannot open the store {}", store_path.display()))?;
    let mut options = BuildOptions::new(workdir.join(&args.context));
    options.dockerfile = args.dockerfile.map(|f| workdir.join(f));
    options.tags = args.tags.clone();
    options.build_args = parse_build_args(&args.build_args)?;
    options.secrets = parse_secrets(&args.secret, &workdir)?;
    options.labels = parse_pairs("label", &args.label)?;
    options.network = args.sandbox.network();
    options.pids_limit = args.sandbox.pids_limit();
    options.annotations = parse_pairs("annotation", &args.annotation)?;
    options.target = args.target;
    options.squash = match (args.squash, args.squash_all) {
        (true, _) => Squash::Own,
        (_, true) => Squash::All,
        _ => Squash::None,
    };
    options.compression = match args.compression.as_str() {
        "zstd" => strata_oci::Compression::Zstd,
        "none" => strata_oci::Compression::None,
        _ => strata_oci::Compression::Gzip,
    };
    options.source_date_epoch = source_date_epoch()?;
    if !args.no_cache {
        options.cache_dir = Some(crate::global::state_dir_of(&store_path).join("cache"));
    }
    let dockerfile = options
        .dockerfile
        .clone()
        .unwrap_or_else(|| options.context.join("Dockerfile"));
    // The bases FROM lines name, pulled as buildah does (strata's own `localhost/...` never).
    let puller = strata_cascade::pull::BasePuller::new(pull_policy(&args.pull));
    for reference in puller.pull_dockerfile(
        &store,
        &options.context,
        &dockerfile,
        &options.build_args,
        |_| false,
        None,
    )? {
        errln!("pulled {reference}");
    }
    let timings = args
        .timings
        .then(|| std::sync::Arc::new(strata_build::timings::Timings::new()));
    options.timings = timings.clone();
    let result = strata_build::builder::build(&store, &options, &StepPrinter)?;
    let timing = timings.map(|t| t.report());
    let name = args
        .tags
        .first()
        .cloned()
        .unwrap_or_else(|| args.context.display().to_string());
    let run_timings = timing.as_ref().map(|timing| {
        super::timings::RunTimings::new(vec![super::timings::NamedTiming {
            image: &name,
            timing,
        }])
    });
    if let Some(timings) = &run_timings {
        let path = timings.write(&crate::global::state_dir_of(&store_path))?;
        errln!("{}wrote {}", timings.table(), path.display());
    }
    if let Some(file) = &args.iidfile {
        let file = workdir.join(file);
        strata_oci::layout::atomic_write(&file, result.digest.to_string().as_bytes())
            .with_context(|| format!("cannot write --iidfile {}", file.display()))?;
    }
    if args.json {
        let mut json = serde_json::json!({
            "digest": result.digest.to_string(),
            "tags": result.tags.iter().map(|t| t.to_string()).collect::<Vec<_>>(),
            "cachedSteps": result.cached_steps,
            "builtSteps": result.built_steps,
        });
        if let (Some(timings), Some(map)) = (&run_timings, json.as_object_mut()) {
            map.insert("timings".into(), serde_json::to_value(timings)?);
        }
        outln!("{}", serde_json::to_string_pretty(&json)?);
    } else {
        for tag in &result.tags {
            outln!("{tag}");
        }
        outln!("{}", result.digest);
    }
    Ok(ExitCode::SUCCESS)
}
