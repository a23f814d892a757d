//! Parse Dockerfiles exactly as BuildKit reads them: directives, heredocs, substitution, stages.
//!
//! [`parse`] turns text into a [`Dockerfile`]: the parser directives and a list of typed
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
//!   environment recorded in [`ResolvedInstruction::env`] for each RUN) and ONBUILD triggers.
//!   `COPY --from` and mount `from=` are never expanded (BuildKit rejects variables there).
//! - [`ResolvedInstruction::env`] on each RUN is the process environment: the stage env (base
//!   env, ENV, ARG values in scope) plus proxy build args (`HTTP_PROXY`...).
//!   [`Stage::env`] is the image config env at the end of the stage.
//! - [`Run::script`] says how BuildKit executes a RUN with heredocs (a `#!` script file, the
//!   body through the shell, or the heredocs appended for the shell to read).
//!
//! # Known differences from BuildKit
//! - Stages the target does not need are resolved too (for [`Dockerfile::dependencies`]); an
//!   instruction of theirs that fails to expand is kept unexpanded and reported in
//!   [`Resolved::warnings`], since BuildKit never dispatches such stages. [`Stage::needed`]
//!   tells which stages to build.
//! - ONBUILD triggers are parsed, and their syntax checked, with the parent Dockerfile
//!   (BuildKit checks them only when a child build runs them).
//! - The `# syntax=` and `# check=` directives are recorded, not acted upon; lint warnings
//!   other than empty continuation lines are not produced.
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

pub use document::Document;
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
