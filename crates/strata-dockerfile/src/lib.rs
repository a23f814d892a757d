//! Parse Dockerfiles exactly as BuildKit reads them: directives, heredocs, substitution, stages.
//!
//! [`parse`] (or [`parse_bytes`]) turns text into a [`Dockerfile`]: the parser directives and a list of typed
//! [`Instruction`]s, each with its line range and original text. It checks syntax only (flags,
//! argument counts, JSON forms, heredocs) and never expands variables.
//! [`Dockerfile::resolve`] then applies BuildKit's meaning: it splits the instructions into
//! [`Stage`]s, resolves each stage's base (an earlier stage, `scratch` or an image), scopes
//! ARG and ENV, and expands the instructions BuildKit expands. [`Dockerfile::dependencies`]
//! lists the external images a Dockerfile needs (for the supply-chain graph).
//!
//! The key design decision, taken from BuildKit: lexing ([`lexer`]: directives,
//! continuations, heredoc bodies), typed instructions ([`instruction`]), shell-like expansion
//! ([`shell`]) and stage semantics ([`resolve`]) are separate modules. The crate is pure: text
//! in, values or [`Error`]s out, no I/O, never a panic on any input.
//!
//! # Expansion and scoping (what the builder relies on)
//! - Global ARGs (before the first FROM) and BuildKit's platform ARGs (`TARGETPLATFORM`,
//!   `TARGETARCH`, `BUILDPLATFORM`, ... `TARGETSTAGE`) are usable in FROM lines; a stage sees
//!   a global ARG only after re-declaring it (`ARG NAME`).
//! - `--build-arg` values replace ARG defaults; a stage ARG with neither a default nor a build
//!   arg takes the global value. ARG values and ENV share one environment, in order (a later
//!   ARG or ENV of the same name wins); ENV also goes to the image config, ARG does not.
//! - A stage built FROM an earlier stage inherits that stage's environment (ENV and ARG
//!   values). A stage FROM an image starts from that image's config env when the caller
//!   passes it ([`ResolveOptions::base_env`]); `PATH` is set to BuildKit's default when
//!   missing.
//! - Expanded: ADD, COPY (sources, dest, `--chown`, `--chmod`, `--checksum`, heredoc bodies
//!   with an unquoted delimiter), ENV (keys and values; one ENV instruction is expanded as a
//!   whole before it takes effect), LABEL, EXPOSE, VOLUME, WORKDIR, USER, STOPSIGNAL, ARG
//!   defaults, and RUN `--mount` values. Not expanded: the shell and exec forms of
//!   RUN/CMD/ENTRYPOINT/SHELL/HEALTHCHECK (the shell expands them at run time, with the
//!   environment recorded in [`ResolvedInstruction::env`] for each RUN) and the ONBUILD
//!   instructions a stage declares (they are for its children).
//! - A stage whose base is an earlier stage runs that stage's ONBUILD triggers first (and a
//!   stage on an image runs the triggers given in [`ResolveOptions::base_onbuild`]), parsed
//!   afresh and expanded like its own instructions, marked [`ResolvedInstruction::onbuild`],
//!   placed at its FROM line; their `COPY --from` make stages needed.
//! - A stage name used twice names its latest stage (`--target`, `--from`, mounts; a FROM:
//!   the latest before it).
//!   `COPY --from` and mount `from=` are never expanded (BuildKit rejects variables there).
//! - [`ResolvedInstruction::env`] on each RUN is the process environment: the stage env (base
//!   env, ENV, ARG values in scope) plus proxy build args (`HTTP_PROXY`...), shared between
//!   RUNs as a chain of deltas ([`RunEnv`]) so resolving stays linear in the file's length.
//!   [`Stage::env`] is the image config env at the end of the stage.
//! - [`Run::script`] says how BuildKit executes a RUN with heredocs (a `#!` script file, the
//!   body through the shell, or the heredocs appended for the shell to read).
//!
//! # Known differences from BuildKit
//! - Stages the target does not need are resolved too (for [`Dockerfile::dependencies`]); an
//!   instruction of theirs that fails to expand is kept unexpanded and reported in
//!   [`Resolved::warnings`], since BuildKit never dispatches such stages. [`Stage::needed`]
//!   tells which stages to build.
//! - `${...}` substitutions nested deeper than [`shell::MAX_NESTING`] are an error (BuildKit
//!   has no limit; strata would exhaust its stack). Lines are capped at [`MAX_LINE`] bytes,
//!   as in BuildKit. One expansion may produce at most [`shell::MAX_EXPANSION`] bytes and a
//!   resolve at most [`resolve::MAX_RESOLVED`] (BuildKit has no limit; `ENV A=$A$A` repeated
//!   would exhaust memory). Bytes that are not UTF-8 are accepted in comments only
//!   ([`parse_bytes`]).
//! - ONBUILD triggers are parsed with the parent Dockerfile when they can be; a trigger that
//!   does not parse is kept as text, as BuildKit keeps it, and fails the child that runs it
//!   (only what BuildKit's line parser checks fails the parent: `ENV`/`LABEL` pairs, JSON
//!   arrays of non-strings, ONBUILD/FROM/MAINTAINER as triggers).
//! - The `# syntax=` and `# check=` directives are recorded (`check` parsed into
//!   [`CheckOptions`]), not acted upon; lint warnings other than empty continuation lines are
//!   not produced.
//!
//! # How it was checked against BuildKit
//! Besides this crate's tests, the parser was run (outside the test suite, nothing copied)
//! over BuildKit's own parser test files, whose dumps it reproduces (EXPOSE lists come out
//! sorted, as BuildKit's instruction layer sorts them), over the shell lexer's
//! `envVarTest`/`wordsTest` vectors, which it passes, and over every Dockerfile of
//! moby/buildkit and docker-library's php, httpd, wordpress and golang repositories.

#![warn(missing_docs)]

pub mod document;
pub mod error;
pub mod instruction;
pub mod lexer;
pub mod mount;
mod parse;
pub mod reference;
pub mod resolve;
pub mod run_env;
pub mod shell;
mod words;

use std::collections::BTreeMap;

use serde::Serialize;

pub use document::{Document, RunEnvEntry};
pub use error::Error;
pub use instruction::{
    Add, Arg, ArgDecl, Cmd, Command, CommandLine, Copy, Entrypoint, Env, Expose, From, HealthCheck,
    Healthcheck, Heredoc, Instruction, KeyValue, Label, Maintainer, Network, Onbuild, Run,
    RunScript, Security, Shell, Source, StopSignal, User, Volume, Workdir,
};
pub use lexer::{CheckOptions, Directives, Warning};
pub use mount::{Mount, MountType, Sharing};
pub use parse::MAX_LINE;
pub use reference::{validate_platform, validate_reference};
pub use resolve::{
    Base, DEFAULT_PATH, Dependency, DependencyKind, ResolveOptions, Resolved, ResolvedInstruction,
    Stage,
};
pub use run_env::RunEnv;

/// A parsed Dockerfile: directives and instructions as written (nothing expanded).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dockerfile {
    /// The parser directives.
    pub directives: Directives,
    /// Every instruction, in order (global ARGs, then each FROM and its stage).
    pub instructions: Vec<Instruction>,
    /// Accepted oddities (empty continuation lines).
    pub warnings: Vec<Warning>,
}

/// Parse Dockerfile text (syntax only; see [`Dockerfile::resolve`] for meaning).
///
/// Lines are capped at [`MAX_LINE`] bytes, as in BuildKit.
pub fn parse(text: &str) -> Result<Dockerfile, Error> {
    parse::parse(text)
}

/// Parse Dockerfile bytes. As BuildKit does, comment lines may hold bytes that are not UTF-8
/// (they are read with U+FFFD in their place: comments mean nothing); anywhere else, heredoc
/// bodies included, such bytes are an error naming the line, since strata's strings are UTF-8.
pub fn parse_bytes(bytes: &[u8]) -> Result<Dockerfile, Error> {
    let mut text = String::with_capacity(bytes.len());
    let mut replaced = Vec::new();
    for (i, line) in bytes.split_inclusive(|b| *b == b'\n').enumerate() {
        match std::str::from_utf8(line) {
            Ok(s) => text.push_str(s),
            Err(e) => {
                let blank = line
                    .iter()
                    .take_while(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\x0b' | b'\x0c'))
                    .count();
                if line.get(blank) != Some(&b'#') {
                    let valid = String::from_utf8_lossy(&line[..e.valid_up_to()]);
                    return Err(Error::new(
                        i + 1,
                        valid.chars().count() + 1,
                        None,
                        "bytes that are not UTF-8 outside a comment",
                    ));
                }
                replaced.push(i + 1);
                text.push_str(&String::from_utf8_lossy(line));
            }
        }
    }
    let df = parse::parse(&text)?;
    // a comment-looking line inside a heredoc body is content: it must stay as written
    for inst in &df.instructions {
        let logical_end = inst
            .locator
            .segments
            .last()
            .map_or(inst.start_line, |s| s.line);
        if let Some(line) = replaced
            .iter()
            .find(|l| **l > logical_end && **l <= inst.end_line)
        {
            return Err(Error::new(
                *line,
                1,
                Some(inst.keyword()),
                "heredoc line holds bytes that are not UTF-8",
            ));
        }
    }
    Ok(df)
}

impl Dockerfile {
    /// The stages after ARG/ENV expansion with the given build args (BuildKit semantics).
    /// `target`: the stage to build, None for the last. Errors on an unknown target, an
    /// unknown `--from` stage index, a stage used before it is defined, bad references and
    /// failed substitutions (`${X:?msg}`).
    pub fn resolve(
        &self,
        build_args: &BTreeMap<String, String>,
        target: Option<&str>,
    ) -> Result<Resolved, Error> {
        self.resolve_with(&ResolveOptions {
            build_args: build_args.clone(),
            target: target.map(str::to_string),
            ..ResolveOptions::default()
        })
    }

    /// [`Dockerfile::resolve`] with every option (base image env, platform).
    pub fn resolve_with(&self, options: &ResolveOptions) -> Result<Resolved, Error> {
        resolve::resolve(self, options)
    }

    /// The names of the stages, in order (None for unnamed ones).
    pub fn stage_names(&self) -> Vec<Option<String>> {
        self.instructions
            .iter()
            .filter_map(|i| match &i.command {
                Command::From(f) => Some(f.name.clone()),
                _ => None,
            })
            .collect()
    }
}
