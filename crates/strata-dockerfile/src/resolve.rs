//! Stages, ARG/ENV scoping and expansion: from a parsed [`Dockerfile`] to [`Resolved`] stages,
//! with BuildKit's rules (`dockerfile2llb/convert.go`).

use std::cell::Cell;
use std::collections::BTreeMap;

use serde::Serialize;

use crate::instruction::*;
use crate::mount::parse_mount;
use crate::reference::{validate_platform, validate_reference};
use crate::run_env::{EnvChain, RunEnv};
use crate::shell::{Lexer, ShellError};
use crate::{Dockerfile, Error, Warning};

/// The most bytes one resolve may produce by expansion (and copy between stages). BuildKit has
/// no limit; without one, a Dockerfile of repeated `ENV A=$A$A` or of many stages could
/// exhaust memory.
pub const MAX_RESOLVED: usize = 256 << 20;

/// A lexer counting what it produces against the resolve's [`MAX_RESOLVED`] budget.
struct Expander<'a> {
    lex: Lexer,
    used: &'a Cell<usize>,
}

impl Expander<'_> {
    fn expand<E: crate::shell::Env + ?Sized>(
        &self,
        word: &str,
        env: &E,
    ) -> Result<String, ShellError> {
        let out = self.lex.expand(word, env)?;
        self.spend(out.len())?;
        Ok(out)
    }

    fn expand_words<E: crate::shell::Env + ?Sized>(
        &self,
        word: &str,
        env: &E,
    ) -> Result<Vec<String>, ShellError> {
        let out = self.lex.expand_words(word, env)?;
        self.spend(out.iter().map(String::len).sum())?;
        Ok(out)
    }

    fn spend(&self, bytes: usize) -> Result<(), ShellError> {
        let total = self.used.get().saturating_add(bytes);
        self.used.set(total);
        if total > MAX_RESOLVED {
            return Err(ShellError(format!(
                "the expanded Dockerfile is larger than {} MiB",
                MAX_RESOLVED >> 20
            )));
        }
        Ok(())
    }

    /// Another lexer sharing this budget.
    fn with(&self, lex: Lexer) -> Expander<'_> {
        Expander {
            lex,
            used: self.used,
        }
    }
}

/// The `PATH` BuildKit gives a stage whose base has none (non-Windows).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Build args that reach RUN without an ARG declaration (BuildKit's proxy variables).
const PROXY_ARGS: [&str; 8] = [
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
];

/// What `resolve` needs beyond the Dockerfile. Pure data: the caller reads images, not us.
#[derive(Debug, Clone, Default)]
pub struct ResolveOptions {
    /// `--build-arg` values; they override ARG defaults.
    pub build_args: BTreeMap<String, String>,
    /// The stage to build (by name); None: the last stage.
    pub target: Option<String>,
    /// The config `Env` (`KEY=VALUE` pairs) of external base images, keyed by the reference as
    /// it appears after expansion. A stage on an image missing here starts with only `PATH`.
    pub base_env: BTreeMap<String, Vec<(String, String)>>,
    /// The target platform (`os/arch[/variant]`); None: the build platform.
    pub platform: Option<String>,
    /// The build platform (`os/arch[/variant]`); None: the host's (`linux/<arch>`).
    pub build_platform: Option<String>,
    /// The ONBUILD triggers of external base images (their config's `OnBuild`), keyed like
    /// `base_env`. A stage on such an image runs them first, as BuildKit does; errors in
    /// them point at the stage's FROM line (the Dockerfile's own lines keep their numbers).
    pub base_onbuild: BTreeMap<String, Vec<String>>,
}

/// A stage's base.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Base {
    /// `FROM scratch`: empty.
    Scratch,
    /// An earlier stage, by index.
    Stage(usize),
    /// An external image reference.
    Image(String),
}

/// A Dockerfile with every stage's instructions expanded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Resolved {
    /// The stages, in order.
    pub stages: Vec<Stage>,
    /// The index of the stage to build.
    pub target: usize,
    /// The global ARGs (declared before the first FROM, plus BuildKit's platform ARGs) and
    /// their values.
    pub global_args: Vec<(String, String)>,
    /// Build args no ARG declared (BuildKit warns about these), except the proxy variables.
    pub unused_build_args: Vec<String>,
    /// Instructions of stages the target does not need that failed to expand: BuildKit skips
    /// such stages, so they are kept unexpanded and reported here instead of failing.
    pub warnings: Vec<Warning>,
}

/// One stage after expansion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stage {
    /// Its index (`COPY --from=0` names it).
    pub index: usize,
    /// `AS name`, lower case.
    pub name: Option<String>,
    /// What it starts from.
    pub base: Base,
    /// `--platform`, expanded.
    pub platform: Option<String>,
    /// The FROM instruction, its image expanded.
    pub from: Instruction,
    /// The instructions after FROM, expanded, in order.
    pub instructions: Vec<ResolvedInstruction>,
    /// The image config `Env` at the end of the stage: the base's (an earlier stage's, or the
    /// caller's `base_env`, `PATH` added when missing) then ENV instructions. ARGs excluded.
    pub env: Vec<(String, String)>,
    /// Whether the target needs this stage (it is the target, or a base, `--from` or mount
    /// source of a needed stage).
    pub needed: bool,
}

/// An expanded instruction and what the builder needs to execute it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResolvedInstruction {
    /// The instruction with ADD, COPY, ENV, EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR,
    /// ARG defaults and RUN mounts expanded. RUN/CMD/ENTRYPOINT/SHELL/HEALTHCHECK text is left
    /// to the shell; ONBUILD triggers are kept for the child build.
    #[serde(flatten)]
    pub instruction: Instruction,
    /// RUN only: the process environment, in order: the stage env, ARG values in scope, and
    /// proxy build args (the image config env is [`Stage::env`]). Shared with the other RUNs
    /// ([`RunEnv::vars`] lists it); serialised as the id of its `run_envs` entry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub env: Option<RunEnv>,
    /// COPY `--from`: the stage or image it names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub copy_from: Option<Base>,
    /// RUN: for each mount, in order, the stage or image its `from=` names (None: no `from=`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mount_from: Vec<Option<Base>>,
    /// An ONBUILD trigger of the stage's base, run before the stage's own instructions (its
    /// lines are the FROM's, its `original` the trigger text).
    #[serde(skip_serializing_if = "is_false")]
    pub onbuild: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// An external image the Dockerfile depends on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dependency {
    /// The reference, after substitution.
    pub reference: String,
    /// Where it is used.
    pub kind: DependencyKind,
    /// The 1-based line of the instruction.
    pub line: usize,
    /// The index of the stage using it.
    pub stage: usize,
}

/// How an external image is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DependencyKind {
    /// A stage's base (`FROM image`).
    From,
    /// `COPY --from=image`.
    CopyFrom,
    /// `RUN --mount=...,from=image`.
    MountFrom,
}

fn host_platform() -> (String, String, String) {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        "arm" => "arm",
        other => other,
    };
    let variant = if arch == "arm" { "v7" } else { "" };
    ("linux".into(), arch.into(), variant.into())
}

fn platform_parts(p: &str) -> (String, String, String) {
    let mut it = p.split('/');
    let os = it.next().unwrap_or_default().to_string();
    let arch = it.next().unwrap_or_default().to_string();
    let variant = it.next().unwrap_or_default().to_string();
    (os, arch, variant)
}

fn format_platform(os: &str, arch: &str, variant: &str) -> String {
    if variant.is_empty() {
        format!("{os}/{arch}")
    } else {
        format!("{os}/{arch}/{variant}")
    }
}

/// Set `key` in an ordered env list, replacing an earlier value in place.
fn set(env: &mut Vec<(String, String)>, key: &str, value: String) {
    match env.iter_mut().find(|(k, _)| k == key) {
        Some(slot) => slot.1 = value,
        None => env.push((key.to_string(), value)),
    }
}

fn err_at(inst: &Instruction, needle: Option<&str>, msg: impl Into<String>) -> Error {
    let text = &inst.locator.text;
    let after_kw = text.find(char::is_whitespace).unwrap_or(text.len());
    let (l, c) = needle
        .and_then(|n| inst.locator.find(n, after_kw))
        .unwrap_or_else(|| inst.locator.position(0));
    Error::new(l, c, Some(inst.keyword()), msg)
}

/// Stage name → index (names are lower case). A name used twice names its latest stage, as
/// in BuildKit (for `--target`, `--from` and mounts: the latest in the file; for a FROM, the
/// latest before it, since `names` is then the earlier stages only).
fn find_stage(names: &[Option<String>], name: &str) -> Option<usize> {
    let lower = name.to_ascii_lowercase();
    names
        .iter()
        .rposition(|n| n.as_deref() == Some(lower.as_str()))
}

pub(crate) fn resolve(df: &Dockerfile, opts: &ResolveOptions) -> Result<Resolved, Error> {
    let used = Cell::new(0);
    let lex = Expander {
        lex: Lexer::new(df.directives.escape),
        used: &used,
    };
    let build_args = &opts.build_args;
    let mut declared: Vec<String> = Vec::new();

    // BuildKit's automatic platform ARGs, overridable by build args
    let (bos, barch, bvar) = match &opts.build_platform {
        Some(p) => platform_parts(p),
        None => host_platform(),
    };
    let (tos, tarch, tvar) = match &opts.platform {
        Some(p) => platform_parts(p),
        None => (bos.clone(), barch.clone(), bvar.clone()),
    };
    let stage_names: Vec<Option<String>> = df
        .instructions
        .iter()
        .filter_map(|i| match &i.command {
            Command::From(f) => Some(f.name.clone()),
            _ => None,
        })
        .collect();
    if stage_names.is_empty() {
        let line = df.instructions.last().map_or(1, |i| i.start_line);
        return Err(Error::new(
            line,
            1,
            None,
            "dockerfile contains no stages to build (no FROM)",
        ));
    }
    let target_stage = match &opts.target {
        None => stage_names.len().saturating_sub(1),
        Some(t) => match find_stage(&stage_names, t) {
            Some(i) => i,
            None => {
                let first_from = df
                    .instructions
                    .iter()
                    .find(|i| matches!(i.command, Command::From(_)));
                let names: Vec<&str> = stage_names.iter().flatten().map(String::as_str).collect();
                let msg = format!(
                    "target stage {t:?} could not be found (stages: {})",
                    if names.is_empty() {
                        "none named".to_string()
                    } else {
                        names.join(", ")
                    }
                );
                return Err(match first_from {
                    Some(i) => Error::new(i.start_line, 1, Some("FROM"), msg),
                    None => Error::new(1, 1, None, msg),
                });
            }
        },
    };
    let target_name = opts.target.clone().unwrap_or_else(|| {
        stage_names
            .get(target_stage)
            .cloned()
            .flatten()
            .unwrap_or_default()
    });
    let mut global: Vec<(String, String)> = vec![
        ("BUILDPLATFORM".into(), format_platform(&bos, &barch, &bvar)),
        ("BUILDOS".into(), bos.clone()),
        ("BUILDOSVERSION".into(), String::new()),
        ("BUILDARCH".into(), barch.clone()),
        ("BUILDVARIANT".into(), bvar.clone()),
        (
            "TARGETPLATFORM".into(),
            format_platform(&tos, &tarch, &tvar),
        ),
        ("TARGETOS".into(), tos.clone()),
        ("TARGETOSVERSION".into(), String::new()),
        ("TARGETARCH".into(), tarch),
        ("TARGETVARIANT".into(), tvar),
        ("TARGETSTAGE".into(), target_name),
    ];
    let target_os = build_args.get("TARGETOS").cloned().unwrap_or(tos);
    for (k, v) in global.iter_mut() {
        if let Some(o) = build_args.get(k.as_str()) {
            *v = o.clone();
        }
    }

    // 1. global ARGs: everything before the first FROM
    let mut headers: Vec<(&Instruction, &From)> = Vec::new();
    let mut bodies: Vec<Vec<&Instruction>> = Vec::new();
    for inst in &df.instructions {
        match &inst.command {
            Command::Arg(a) if headers.is_empty() => {
                for decl in &a.args {
                    declared.push(decl.name.clone());
                    if let Some(v) = build_args.get(&decl.name) {
                        set(&mut global, &decl.name, v.clone());
                    } else if let Some(d) = &decl.value {
                        let v = lex
                            .expand(d, &global)
                            .map_err(|e| err_at(inst, Some(d), e.0))?;
                        set(&mut global, &decl.name, v);
                    }
                }
            }
            Command::From(f) => {
                headers.push((inst, f));
                bodies.push(Vec::new());
            }
            _ => {
                if let Some(body) = bodies.last_mut() {
                    body.push(inst);
                }
            }
        }
    }

    // 2. every stage's base (BuildKit evaluates all FROM lines, needed or not)
    let mut bases = Vec::with_capacity(headers.len());
    for (index, (inst, f)) in headers.iter().enumerate() {
        bases.push(stage_base(inst, f, &lex, &global, &stage_names[..index])?);
    }

    // errors BuildKit raises for every stage, needed or not
    for body in &bodies {
        for inst in body {
            if let Command::Copy(Copy { from: Some(f), .. }) = &inst.command {
                check_copy_from(inst, f, &lex, stage_names.len())?;
            }
        }
    }

    // ONBUILD triggers each stage runs first (BuildKit's initOnBuildTriggers): its base
    // stage's ONBUILD instructions, or the caller's for an image base, parsed afresh
    let triggers: Vec<Vec<Result<Instruction, Error>>> = headers
        .iter()
        .zip(&bases)
        .map(|((from, _), (_, _, base))| {
            let texts: Vec<&str> = match base {
                Base::Stage(b) => bodies[*b]
                    .iter()
                    .filter_map(|i| match &i.command {
                        Command::Onbuild(o) => Some(o.expression.as_str()),
                        _ => None,
                    })
                    .collect(),
                Base::Image(r) => opts
                    .base_onbuild
                    .get(r)
                    .map(|t| t.iter().map(String::as_str).collect())
                    .unwrap_or_default(),
                Base::Scratch => Vec::new(),
            };
            texts
                .into_iter()
                .map(|t| {
                    // every child gets its own copy of its base's triggers: count them
                    lex.spend(t.len()).map_err(|e| err_at(from, None, e.0))?;
                    trigger_instruction(from, t)
                })
                .collect()
        })
        .collect();

    // 3. which stages the target needs: bases, `--from` and mount `from=` (never expanded),
    // the base's ONBUILD triggers' included
    let mut needed = vec![false; headers.len()];
    let mut todo = vec![target_stage];
    while let Some(i) = todo.pop() {
        if std::mem::replace(&mut needed[i], true) {
            continue;
        }
        if let Base::Stage(b) = bases[i].2 {
            todo.push(b);
        }
        let own = bodies[i].iter().copied();
        for inst in own.chain(triggers[i].iter().filter_map(|t| t.as_ref().ok())) {
            let refs: Vec<&str> = match &inst.command {
                Command::Copy(c) => c.from.iter().map(String::as_str).collect(),
                Command::Run(r) => r.mounts.iter().filter_map(|m| m.from.as_deref()).collect(),
                _ => Vec::new(),
            };
            let by_index = matches!(inst.command, Command::Copy(_));
            for r in refs {
                let idx = match r.parse::<usize>() {
                    Ok(n) if by_index => Some(n).filter(|n| *n < headers.len()),
                    _ => find_stage(&stage_names, r),
                };
                todo.extend(idx);
            }
        }
    }

    // 4. the stages, in order
    let mut stages: Vec<Stage> = Vec::new();
    let mut warnings = Vec::new();
    // per stage: the process env (ENV + ARG values) at its end, as a list and as a chain
    let mut stage_state: Vec<(Vec<(String, String)>, EnvChain)> = Vec::new();
    let mut env_ids = 0;
    for (index, ((from_inst, f), (image, platform, base))) in headers.iter().zip(bases).enumerate()
    {
        let (mut state, mut env, mut chain) = match &base {
            Base::Stage(i) => {
                // a stage on another copies its environment: count it
                let size = |v: &[(String, String)]| -> usize {
                    v.iter().map(|(k, v)| k.len() + v.len()).sum()
                };
                lex.spend(size(&stage_state[*i].0) + size(&stages[*i].env))
                    .map_err(|e| err_at(from_inst, None, e.0))?;
                (
                    stage_state[*i].0.clone(),
                    stages[*i].env.clone(),
                    stage_state[*i].1.clone(),
                )
            }
            Base::Scratch | Base::Image(_) => {
                let mut env = match &base {
                    Base::Image(r) => opts.base_env.get(r).cloned().unwrap_or_default(),
                    _ => Vec::new(),
                };
                // BuildKit leaves PATH to the OS on Windows
                let os = platform
                    .as_deref()
                    .map_or(target_os.as_str(), |p| p.split('/').next().unwrap_or(""));
                if os != "windows" && !env.iter().any(|(k, _)| k == "PATH") {
                    env.push(("PATH".into(), DEFAULT_PATH.into()));
                }
                (env.clone(), env.clone(), EnvChain::starting_with(env))
            }
        };
        let mut instructions = Vec::with_capacity(bodies[index].len());
        let trigger_items = triggers[index].iter().map(|t| (t.as_ref(), true));
        let own_items = bodies[index].iter().map(|i| (Ok(*i), false));
        for (item, onbuild) in trigger_items.chain(own_items) {
            let inst = match item {
                Ok(i) => i,
                Err(e) if !needed[index] => {
                    warnings.push(Warning {
                        line: e.line(),
                        message: format!(
                            "stage {index} is not needed for the target, so this is not an error: {e}"
                        ),
                    });
                    continue;
                }
                Err(e) => return Err(e.clone()),
            };
            let result = expand_instruction(
                inst,
                &lex,
                &mut state,
                &mut env,
                (&mut chain, &mut env_ids),
                &global,
                build_args,
                &stage_names,
                index,
                &mut declared,
            )
            .map(|ri| ResolvedInstruction { onbuild, ..ri })
            .map_err(|e| if onbuild { at_from(inst, &e) } else { e });
            match result {
                Ok(ri) => instructions.push(ri),
                // BuildKit never dispatches a stage the target does not need
                Err(e) if !needed[index] => {
                    warnings.push(Warning {
                        line: e.line(),
                        message: format!(
                            "stage {index} is not needed for the target, so this is not an error: {e}"
                        ),
                    });
                    // still say which stages and images it names, for the dependencies
                    let lenient = |r: &str, by_index| {
                        stage_or_image(inst, r, &stage_names, index, by_index).ok()
                    };
                    let (copy_from, mount_from) = match &inst.command {
                        Command::Copy(c) => {
                            (c.from.as_deref().and_then(|r| lenient(r, true)), Vec::new())
                        }
                        Command::Run(r) => (
                            None,
                            r.mounts
                                .iter()
                                .map(|m| m.from.as_deref().and_then(|f| lenient(f, false)))
                                .collect(),
                        ),
                        _ => (None, Vec::new()),
                    };
                    instructions.push(ResolvedInstruction {
                        instruction: inst.clone(),
                        env: None,
                        copy_from,
                        mount_from,
                        onbuild,
                    });
                }
                Err(e) => return Err(e),
            }
        }
        let mut from = (*from_inst).clone();
        from.command = Command::From(From {
            image,
            name: f.name.clone(),
            platform: platform.clone(),
        });
        stages.push(Stage {
            index,
            name: f.name.clone(),
            base,
            platform,
            from,
            instructions,
            env,
            needed: needed[index],
        });
        stage_state.push((state, chain.sealed(&mut env_ids)));
    }

    let builtin = |k: &str| PROXY_ARGS.contains(&k) || global.iter().take(11).any(|(g, _)| g == k);
    let unused_build_args = build_args
        .keys()
        .filter(|k| !declared.contains(k) && !builtin(k))
        .cloned()
        .collect();
    Ok(Resolved {
        stages,
        warnings,
        target: target_stage,
        global_args: global,
        unused_build_args,
    })
}

/// An ONBUILD trigger of the base of the stage starting at `from`, parsed as BuildKit parses
/// it when the stage runs, placed at the FROM's lines.
fn trigger_instruction(from: &Instruction, text: &str) -> Result<Instruction, Error> {
    let mut inst = crate::parse::parse_trigger(text).map_err(|e| at_from(from, &e))?;
    inst.start_line = from.start_line;
    inst.end_line = from.end_line;
    inst.original = text.to_string();
    inst.locator.segments = vec![crate::lexer::Segment {
        offset: 0,
        line: from.start_line,
        column: 1,
    }];
    Ok(inst)
}

/// An error inside an ONBUILD trigger, placed at the FROM line that runs it, as BuildKit
/// places it.
fn at_from(inst: &Instruction, e: &Error) -> Error {
    Error::new(
        inst.start_line,
        1,
        e.instruction(),
        format!("{} (in an ONBUILD trigger of the base)", e.message()),
    )
}

/// `COPY --from` takes no variables, and a number must name an existing stage.
fn check_copy_from(
    inst: &Instruction,
    from: &str,
    lex: &Expander,
    stages: usize,
) -> Result<(), Error> {
    let plain = lex
        .expand(from, &crate::shell::NoEnv)
        .map_err(|e| err_at(inst, Some(from), e.0))?;
    if plain != from {
        return Err(err_at(
            inst,
            Some(from),
            "variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround",
        ));
    }
    if let Ok(i) = from.parse::<usize>()
        && i >= stages
    {
        return Err(err_at(
            inst,
            Some(from),
            format!("invalid stage index {i}: the Dockerfile has {stages} stages"),
        ));
    }
    Ok(())
}

/// A stage's FROM: the image expanded with the global ARGs, the platform, and the base.
fn stage_base(
    inst: &Instruction,
    f: &From,
    lex: &Expander,
    global: &[(String, String)],
    earlier: &[Option<String>],
) -> Result<(String, Option<String>, Base), Error> {
    let image = lex
        .expand(&f.image, global)
        .map_err(|e| err_at(inst, Some(&f.image), e.0))?;
    if image.is_empty() {
        return Err(err_at(
            inst,
            Some(&f.image),
            format!("base name ({}) should not be blank", f.image),
        ));
    }
    let platform = match &f.platform {
        None => None,
        Some(p) => {
            let v = lex
                .expand(p, global)
                .map_err(|e| err_at(inst, Some(p), e.0))?;
            if v.is_empty() {
                return Err(err_at(
                    inst,
                    Some(p),
                    format!("empty platform value from expression {p}"),
                ));
            }
            validate_platform(&v)
                .map_err(|e| err_at(inst, Some(p), format!("failed to parse platform {v}: {e}")))?;
            Some(v)
        }
    };
    // BuildKit looks the base name up as written after expansion (case included)
    let base = if let Some(i) = earlier
        .iter()
        .rposition(|n| n.as_deref() == Some(image.as_str()))
    {
        Base::Stage(i)
    } else if image == "scratch" {
        Base::Scratch
    } else {
        validate_reference(&image).map_err(|e| {
            err_at(
                inst,
                Some(&f.image),
                format!("invalid reference format: {e}: {image:?}"),
            )
        })?;
        Base::Image(image.clone())
    };
    Ok((image, platform, base))
}

/// Resolve a `--from` (`by_index`: a number names a stage) or mount `from=` value to a stage
/// or an image, as BuildKit does.
fn stage_or_image(
    inst: &Instruction,
    value: &str,
    names: &[Option<String>],
    current: usize,
    by_index: bool,
) -> Result<Base, Error> {
    let idx = if by_index {
        match value.parse::<usize>() {
            Ok(i) => {
                if i >= names.len() {
                    return Err(err_at(
                        inst,
                        Some(value),
                        format!(
                            "invalid stage index {i}: the Dockerfile has {} stages",
                            names.len()
                        ),
                    ));
                }
                Some(i)
            }
            Err(_) if value.starts_with('-') && value[1..].parse::<usize>().is_ok() => {
                return Err(err_at(
                    inst,
                    Some(value),
                    format!("invalid stage index {value}"),
                ));
            }
            Err(_) => find_stage(names, value),
        }
    } else {
        find_stage(names, value)
    };
    match idx {
        Some(i) if i >= current => {
            let msg = if by_index {
                format!(
                    "cannot copy from stage {value:?}, it needs to be defined before current stage {:?}",
                    names[current]
                        .clone()
                        .unwrap_or_else(|| format!("stage-{current}"))
                )
            } else {
                format!(
                    "cannot mount from stage {value:?}, stage needs to be defined before current command"
                )
            };
            Err(err_at(inst, Some(value), msg))
        }
        Some(i) => Ok(Base::Stage(i)),
        None if value == "scratch" => Ok(Base::Scratch),
        None => {
            validate_reference(value).map_err(|e| {
                err_at(
                    inst,
                    Some(value),
                    format!("{value:?} names no stage and is not a valid image reference: {e}"),
                )
            })?;
            Ok(Base::Image(value.to_string()))
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn expand_instruction(
    inst: &Instruction,
    lex: &Expander,
    state: &mut Vec<(String, String)>,
    config_env: &mut Vec<(String, String)>,
    (chain, env_ids): (&mut EnvChain, &mut usize),
    global: &[(String, String)],
    build_args: &BTreeMap<String, String>,
    names: &[Option<String>],
    current: usize,
    declared: &mut Vec<String>,
) -> Result<ResolvedInstruction, Error> {
    let word = |w: &str| -> Result<String, Error> {
        lex.expand(w, &*state)
            .map_err(|e| err_at(inst, Some(w), e.0))
    };
    let opt = |w: &Option<String>| -> Result<Option<String>, Error> {
        w.as_deref().map(word).transpose()
    };
    let mut out = ResolvedInstruction {
        instruction: inst.clone(),
        env: None,
        copy_from: None,
        mount_from: Vec::new(),
        onbuild: false,
    };
    let command = match &inst.command {
        Command::Env(e) => {
            let mut vars = Vec::new();
            for kv in &e.vars {
                vars.push(KeyValue {
                    key: word(&kv.key)?,
                    value: word(&kv.value)?,
                    legacy: kv.legacy,
                });
            }
            // the whole instruction is expanded before any of it takes effect
            for kv in &vars {
                set(state, &kv.key, kv.value.clone());
                chain.set(&kv.key, &kv.value);
                set(config_env, &kv.key, kv.value.clone());
            }
            Command::Env(Env { vars })
        }
        Command::Label(l) => {
            let mut labels = Vec::new();
            for kv in &l.labels {
                labels.push(KeyValue {
                    key: word(&kv.key)?,
                    value: word(&kv.value)?,
                    legacy: kv.legacy,
                });
            }
            Command::Label(Label { labels })
        }
        Command::Arg(a) => {
            let mut args = Vec::new();
            for decl in &a.args {
                declared.push(decl.name.clone());
                let value = if let Some(v) = build_args.get(&decl.name) {
                    Some(v.clone())
                } else if let Some(d) = &decl.value {
                    Some(
                        lex.expand(d, &*state)
                            .map_err(|e| err_at(inst, Some(d), e.0))?,
                    )
                } else {
                    crate::shell::Env::get(global, &decl.name).map(str::to_string)
                };
                if let Some(v) = &value {
                    set(state, &decl.name, v.clone());
                    chain.set(&decl.name, v);
                }
                args.push(ArgDecl {
                    name: decl.name.clone(),
                    value,
                });
            }
            Command::Arg(Arg { args })
        }
        Command::Copy(c) => {
            let copy_from = match &c.from {
                None => None,
                Some(f) => {
                    check_copy_from(inst, f, lex, names.len())?;
                    Some(stage_or_image(inst, f, names, current, true)?)
                }
            };
            out.copy_from = copy_from;
            Command::Copy(Copy {
                sources: expand_sources(inst, &c.sources, lex, state)?,
                dest: word(&c.dest)?,
                from: c.from.clone(),
                chown: opt(&c.chown)?,
                chmod: opt(&c.chmod)?,
                link: c.link,
                parents: c.parents,
                exclude: c.exclude.clone(),
            })
        }
        Command::Add(a) => Command::Add(Add {
            sources: expand_sources(inst, &a.sources, lex, state)?,
            dest: word(&a.dest)?,
            chown: opt(&a.chown)?,
            chmod: opt(&a.chmod)?,
            link: a.link,
            keep_git_dir: a.keep_git_dir,
            checksum: opt(&a.checksum)?,
            unpack: a.unpack,
            exclude: a.exclude.clone(),
        }),
        Command::Workdir(w) => Command::Workdir(Workdir {
            path: word(&w.path)?,
        }),
        Command::User(u) => Command::User(User {
            user: word(&u.user)?,
        }),
        Command::StopSignal(s) => Command::StopSignal(StopSignal {
            signal: word(&s.signal)?,
        }),
        Command::Volume(v) => Command::Volume(Volume {
            paths: v.paths.iter().map(|p| word(p)).collect::<Result<_, _>>()?,
        }),
        Command::Expose(e) => {
            let mut ports = Vec::new();
            for p in &e.ports {
                let words = lex
                    .expand_words(p, &*state)
                    .map_err(|er| err_at(inst, Some(p), er.0))?;
                for w in words {
                    let spec = port_spec(&w).map_err(|m| err_at(inst, Some(p), m))?;
                    lex.spend(spec.iter().map(String::len).sum())
                        .map_err(|er| err_at(inst, Some(p), er.0))?;
                    ports.extend(spec);
                }
            }
            Command::Expose(Expose { ports })
        }
        Command::Run(r) => {
            let mut mounts = Vec::new();
            for (spec, flag_at) in &inst.mount_specs {
                let mut ex = |v: &str| lex.expand(v, &*state).map_err(|e| e.0);
                let m = parse_mount(spec, &mut ex, false).map_err(|e| {
                    let (l, c) = inst.locator.position(*flag_at);
                    Error::new(l, c, Some("RUN"), e)
                })?;
                let base = match &m.from {
                    None => None,
                    Some(f) => Some(stage_or_image(inst, f, names, current, false)?),
                };
                out.mount_from.push(base);
                mounts.push(m);
            }
            let mut proxies = Vec::new();
            for p in PROXY_ARGS {
                if let Some(v) = build_args.get(p)
                    && crate::shell::Env::get(state.as_slice(), p).is_none()
                {
                    proxies.push((p.to_string(), v.clone()));
                }
            }
            out.env = Some(chain.snapshot(env_ids, proxies));
            Command::Run(Run {
                mounts,
                ..r.clone()
            })
        }
        other => other.clone(),
    };
    out.instruction.command = command;
    Ok(out)
}

fn expand_sources(
    inst: &Instruction,
    sources: &[Source],
    lex: &Expander,
    state: &[(String, String)],
) -> Result<Vec<Source>, Error> {
    let raw = lex.with(Lexer {
        skip_quotes: true,
        ..Lexer::new('\\')
    });
    sources
        .iter()
        .map(|s| match s {
            Source::Path(p) => Ok(Source::Path(
                lex.expand(p, state)
                    .map_err(|e| err_at(inst, Some(p), e.0))?,
            )),
            Source::Heredoc {
                name,
                content,
                expand,
            } => Ok(Source::Heredoc {
                name: name.clone(),
                content: if *expand {
                    raw.expand(content, state)
                        .map_err(|e| err_at(inst, Some(name), e.0))?
                } else {
                    content.clone()
                },
                expand: *expand,
            }),
        })
        .collect()
}

/// `[ip:][hostport:]port[-end][/proto]` → `port/proto` entries (ranges expanded), as BuildKit
/// records exposed ports.
fn port_spec(raw: &str) -> Result<Vec<String>, String> {
    let (port_part, proto) = match raw.rsplit_once('/') {
        Some((p, proto)) => (p, proto.to_ascii_lowercase()),
        None => (raw, "tcp".to_string()),
    };
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!("invalid port: {raw:?}: invalid proto: {proto}"));
    }
    let container = port_part.rsplit(':').next().unwrap_or(port_part);
    let bad = || format!("invalid containerPort: {container}");
    let (start, end) = match container.split_once('-') {
        Some((a, b)) => (
            a.parse::<u16>().map_err(|_| bad())?,
            b.parse::<u16>().map_err(|_| bad())?,
        ),
        None => {
            let p = container.parse::<u16>().map_err(|_| bad())?;
            (p, p)
        }
    };
    if end < start {
        return Err(bad());
    }
    Ok((start..=end).map(|p| format!("{p}/{proto}")).collect())
}

impl Dockerfile {
    /// Every external image reference: each stage's FROM that names neither an earlier stage
    /// nor `scratch`, `COPY --from=<image>` and `RUN --mount=...,from=<image>`, after
    /// substitution, in file order (a reference used twice is listed twice).
    pub fn dependencies(
        &self,
        build_args: &BTreeMap<String, String>,
    ) -> Result<Vec<Dependency>, Error> {
        let resolved = self.resolve(build_args, None)?;
        Ok(resolved.dependencies())
    }
}

impl Resolved {
    /// The external images these stages use (see [`Dockerfile::dependencies`]).
    pub fn dependencies(&self) -> Vec<Dependency> {
        let mut out = Vec::new();
        for s in &self.stages {
            if let Base::Image(r) = &s.base {
                out.push(Dependency {
                    reference: r.clone(),
                    kind: DependencyKind::From,
                    line: s.from.start_line,
                    stage: s.index,
                });
            }
            for ri in &s.instructions {
                if let Some(Base::Image(r)) = &ri.copy_from {
                    out.push(Dependency {
                        reference: r.clone(),
                        kind: DependencyKind::CopyFrom,
                        line: ri.instruction.start_line,
                        stage: s.index,
                    });
                }
                for b in ri.mount_from.iter().flatten() {
                    if let Base::Image(r) = b {
                        out.push(Dependency {
                            reference: r.clone(),
                            kind: DependencyKind::MountFrom,
                            line: ri.instruction.start_line,
                            stage: s.index,
                        });
                    }
                }
            }
        }
        out
    }

    /// The target stage.
    pub fn target_stage(&self) -> &Stage {
        &self.stages[self.target]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports() {
        assert_eq!(port_spec("80").unwrap(), vec!["80/tcp"]);
        assert_eq!(port_spec("53/UDP").unwrap(), vec!["53/udp"]);
        assert_eq!(
            port_spec("8000-8002").unwrap(),
            vec!["8000/tcp", "8001/tcp", "8002/tcp"]
        );
        assert!(port_spec("http").is_err());
        assert!(port_spec("80/xyz").is_err());
    }
}
