//! Typed instructions: every Dockerfile instruction with its flags and arguments.
//!
//! The same types describe an instruction as written ([`crate::Dockerfile`]) and after ARG/ENV
//! expansion ([`crate::Resolved`]); only the string contents differ.

use serde::Serialize;

use crate::lexer::Locator;
use crate::mount::Mount;

/// One instruction with its place in the source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Instruction {
    /// The first line (1-based).
    pub start_line: usize,
    /// The last line, heredoc bodies included (1-based, inclusive).
    pub end_line: usize,
    /// The exact source text of lines `start_line..=end_line`.
    pub original: String,
    /// What the instruction says.
    #[serde(flatten)]
    pub command: Command,
    #[serde(skip)]
    pub(crate) locator: Locator,
    /// Raw `--mount` values with their byte offsets, parsed again by `resolve`.
    #[serde(skip)]
    pub(crate) mount_specs: Vec<(String, usize)>,
}

impl Instruction {
    /// The upper-case keyword (`RUN`, `COPY`, ...).
    pub fn keyword(&self) -> &'static str {
        self.command.keyword()
    }

    /// The logical line: continuations joined, comments dropped, heredoc bodies excluded.
    pub fn logical_line(&self) -> &str {
        &self.locator.text
    }
}

/// An instruction's meaning, one variant per keyword.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "instruction", rename_all = "UPPERCASE")]
pub enum Command {
    /// `FROM [--platform=P] IMAGE [AS NAME]`: starts a stage.
    From(From),
    /// `RUN`: run a command in the stage's filesystem.
    Run(Run),
    /// `CMD`: the default command.
    Cmd(Cmd),
    /// `ENTRYPOINT`: the entrypoint.
    Entrypoint(Entrypoint),
    /// `SHELL ["exe", "arg"...]`: the shell for later shell forms.
    Shell(Shell),
    /// `ENV k=v ...` (or legacy `ENV k v`).
    Env(Env),
    /// `LABEL k=v ...` (or legacy `LABEL k v`).
    Label(Label),
    /// `ARG name[=default] ...`.
    Arg(Arg),
    /// `COPY`.
    Copy(Copy),
    /// `ADD`.
    Add(Add),
    /// `WORKDIR path`.
    Workdir(Workdir),
    /// `USER user[:group]`.
    User(User),
    /// `EXPOSE port[/proto] ...`.
    Expose(Expose),
    /// `VOLUME path ...` or JSON list.
    Volume(Volume),
    /// `STOPSIGNAL signal`.
    StopSignal(StopSignal),
    /// `HEALTHCHECK NONE` or `HEALTHCHECK [opts] CMD ...`.
    Healthcheck(Healthcheck),
    /// `ONBUILD INSTRUCTION`: a trigger for images built FROM this one.
    Onbuild(Onbuild),
    /// `MAINTAINER name` (deprecated; accepted).
    Maintainer(Maintainer),
}

impl Command {
    /// The upper-case keyword.
    pub fn keyword(&self) -> &'static str {
        match self {
            Command::From(_) => "FROM",
            Command::Run(_) => "RUN",
            Command::Cmd(_) => "CMD",
            Command::Entrypoint(_) => "ENTRYPOINT",
            Command::Shell(_) => "SHELL",
            Command::Env(_) => "ENV",
            Command::Label(_) => "LABEL",
            Command::Arg(_) => "ARG",
            Command::Copy(_) => "COPY",
            Command::Add(_) => "ADD",
            Command::Workdir(_) => "WORKDIR",
            Command::User(_) => "USER",
            Command::Expose(_) => "EXPOSE",
            Command::Volume(_) => "VOLUME",
            Command::StopSignal(_) => "STOPSIGNAL",
            Command::Healthcheck(_) => "HEALTHCHECK",
            Command::Onbuild(_) => "ONBUILD",
            Command::Maintainer(_) => "MAINTAINER",
        }
    }
}

/// A command in shell form (run by the stage's SHELL) or exec form (a JSON array).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CommandLine {
    /// The text after the keyword and flags, given to the shell as one argument.
    Shell(String),
    /// The argv, from a JSON array.
    Exec(Vec<String>),
}

/// `FROM`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct From {
    /// The base: an image reference, an earlier stage's name, or `scratch`.
    pub image: String,
    /// `AS name`, lower-cased as BuildKit does.
    pub name: Option<String>,
    /// `--platform`.
    pub platform: Option<String>,
}

/// A heredoc body attached to RUN (or COPY/ADD, see [`Source::Heredoc`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Heredoc {
    /// The delimiter word, quotes removed.
    pub name: String,
    /// The body as written, each line with its newline; leading tabs are kept even for `<<-`
    /// (see `chomp`), because BuildKit hands several heredocs to the shell verbatim.
    pub content: String,
    /// False when the delimiter was quoted: the body is not expanded.
    pub expand: bool,
    /// `<<-`: leading tabs are to be stripped from each line.
    pub chomp: bool,
    /// The file descriptor before `<<` (`3<<EOF`), 0 when absent.
    pub fd: u32,
}

impl Heredoc {
    /// The body with leading tabs stripped when `chomp` is set.
    pub fn chomped(&self) -> String {
        if self.chomp {
            crate::lexer::chomp(&self.content)
        } else {
            self.content.clone()
        }
    }
}

/// `RUN --network=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Network {
    /// The default network.
    Default,
    /// No network.
    None,
    /// The host's network.
    Host,
}

/// `RUN --security=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Security {
    /// The default sandbox.
    Sandbox,
    /// Privileged (needs the `security.insecure` entitlement).
    Insecure,
}

/// `RUN`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Run {
    /// The command. For heredocs see [`Run::script`].
    pub command: CommandLine,
    /// Heredoc bodies, in the order declared.
    pub heredocs: Vec<Heredoc>,
    /// `--mount` (repeatable). In [`crate::Dockerfile`] values holding `$` are not yet expanded
    /// (and numeric ones not yet converted); [`crate::Resolved`] holds the final mounts.
    pub mounts: Vec<Mount>,
    /// `--network` (None: not given, i.e. default).
    pub network: Option<Network>,
    /// `--security` (None: not given, i.e. sandbox).
    pub security: Option<Security>,
    /// `--device` (repeatable; CDI device names, kept as written).
    pub devices: Vec<String>,
}

/// How BuildKit turns a RUN with heredocs into a process (see [`Run::script`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunScript {
    /// Run through the shell: `SHELL... <text>`.
    Shell(String),
    /// Run the argv directly (exec form).
    Exec(Vec<String>),
    /// `RUN <<EOF` whose body starts with `#!`: write the body to a file and execute it.
    ShebangFile {
        /// The heredoc name (the file name BuildKit uses).
        name: String,
        /// The body (chomped when `<<-`).
        content: String,
    },
}

impl Run {
    /// What to execute, as BuildKit's `dispatchRun` decides it: a sole `<<EOF` heredoc runs its
    /// body (as a script file when it starts with `#!`, otherwise through the shell); other
    /// heredocs are appended to the shell text as `\n<body><name>` so the shell reads them.
    pub fn script(&self) -> RunScript {
        match &self.command {
            CommandLine::Exec(argv) => RunScript::Exec(argv.clone()),
            CommandLine::Shell(text) => {
                let Some(first) = self.heredocs.first() else {
                    return RunScript::Shell(text.clone());
                };
                if let Ok(Some(_)) = crate::lexer::heredoc_word(text) {
                    let body = first.chomped();
                    if body.starts_with("#!") {
                        return RunScript::ShebangFile {
                            name: first.name.clone(),
                            content: body,
                        };
                    }
                    return RunScript::Shell(body);
                }
                let mut s = text.clone();
                for h in &self.heredocs {
                    s.push('\n');
                    s.push_str(&h.content);
                    s.push_str(&h.name);
                }
                RunScript::Shell(s)
            }
        }
    }
}

/// `CMD`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cmd {
    /// The command (an empty shell string when CMD has no argument).
    pub command: CommandLine,
}

/// `ENTRYPOINT`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entrypoint {
    /// The entrypoint (`Exec([])` for `ENTRYPOINT []` or an empty ENTRYPOINT, which resets it).
    pub command: CommandLine,
}

/// `SHELL`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Shell {
    /// The shell's argv; the command text is appended as the last argument.
    pub shell: Vec<String>,
}

/// A `key=value` pair of ENV or LABEL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyValue {
    /// The key.
    pub key: String,
    /// The value (quotes still present before expansion, removed after).
    pub value: String,
    /// Written in the legacy `KEY name value` form.
    pub legacy: bool,
}

/// `ENV`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Env {
    /// The variables, in order.
    pub vars: Vec<KeyValue>,
}

/// `LABEL`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Label {
    /// The labels, in order.
    pub labels: Vec<KeyValue>,
}

/// One declaration of an `ARG`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArgDecl {
    /// The name.
    pub name: String,
    /// The default (`ARG name=default`), or the value in effect after resolution.
    pub value: Option<String>,
}

/// `ARG`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Arg {
    /// The declarations, in order.
    pub args: Vec<ArgDecl>,
}

/// A COPY/ADD source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// A path (context, stage or image), URL or git reference.
    Path(String),
    /// An inline file from a heredoc (`COPY <<EOF /dest`).
    Heredoc {
        /// The delimiter word: the file's name.
        name: String,
        /// The content (chomped for `<<-`; expanded after resolution unless quoted).
        content: String,
        /// Whether the content is subject to expansion.
        expand: bool,
    },
}

/// `COPY`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Copy {
    /// Sources, in order.
    pub sources: Vec<Source>,
    /// Destination.
    pub dest: String,
    /// `--from`: a stage name or index, or an image reference.
    pub from: Option<String>,
    /// `--chown`.
    pub chown: Option<String>,
    /// `--chmod`.
    pub chmod: Option<String>,
    /// `--link`.
    pub link: bool,
    /// `--parents`.
    pub parents: bool,
    /// `--exclude` (repeatable).
    pub exclude: Vec<String>,
}

/// `ADD`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Add {
    /// Sources, in order (paths, URLs, git references, heredocs).
    pub sources: Vec<Source>,
    /// Destination.
    pub dest: String,
    /// `--chown`.
    pub chown: Option<String>,
    /// `--chmod`.
    pub chmod: Option<String>,
    /// `--link`.
    pub link: bool,
    /// `--keep-git-dir` (None: not given).
    pub keep_git_dir: Option<bool>,
    /// `--checksum` of a remote source.
    pub checksum: Option<String>,
    /// `--unpack` (None: not given, i.e. local archives are unpacked).
    pub unpack: Option<bool>,
    /// `--exclude` (repeatable).
    pub exclude: Vec<String>,
}

/// `WORKDIR`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Workdir {
    /// The directory.
    pub path: String,
}

/// `USER`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    /// `user[:group]`.
    pub user: String,
}

/// `EXPOSE`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Expose {
    /// Port specs: `80`, `80/tcp`, `8000-8010/udp` (normalised to `port/proto` after
    /// resolution; BuildKit sorts them as written).
    pub ports: Vec<String>,
}

/// `VOLUME`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Volume {
    /// The mount points.
    pub paths: Vec<String>,
}

/// `STOPSIGNAL`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StopSignal {
    /// The signal name or number.
    pub signal: String,
}

/// `HEALTHCHECK`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Healthcheck {
    /// `NONE` (disable the base image's check) or the check.
    pub check: Option<HealthCheck>,
}

/// The check of `HEALTHCHECK CMD`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HealthCheck {
    /// The test command (shell form is OCI's `CMD-SHELL`, exec form `CMD`).
    pub command: CommandLine,
    /// `--interval`, nanoseconds.
    pub interval_ns: Option<u64>,
    /// `--timeout`, nanoseconds.
    pub timeout_ns: Option<u64>,
    /// `--start-period`, nanoseconds.
    pub start_period_ns: Option<u64>,
    /// `--start-interval`, nanoseconds.
    pub start_interval_ns: Option<u64>,
    /// `--retries`.
    pub retries: Option<u32>,
}

/// `ONBUILD`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Onbuild {
    /// The trigger's text as BuildKit stores it in the image config (`OnBuild`): the logical
    /// line without `ONBUILD`, heredoc bodies appended.
    pub expression: String,
    /// The trigger parsed (not expanded: it runs, expanded, in the child build); None when it
    /// does not parse (BuildKit checks a trigger only when a child build runs it).
    pub trigger: Option<Box<Instruction>>,
}

/// `MAINTAINER`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Maintainer {
    /// The text.
    pub name: String,
}

/// Quote `s` as a JSON string when it would not read back as one word.
fn word(s: &str) -> String {
    if !s.is_empty()
        && !s
            .chars()
            .any(|c| c.is_whitespace() || c == '"' || c == '\'')
    {
        s.to_string()
    } else {
        serde_json::to_string(s).unwrap_or_default()
    }
}

/// The serde name of a unit variant (`cache`, `host`, ...).
fn name<T: Serialize>(v: T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// A duration as Go prints it (`1m30s`, `500ms`).
fn go_duration(ns: u64) -> String {
    if ns == 0 {
        return "0s".into();
    }
    if ns < 1_000_000_000 {
        return match ns {
            n if n % 1_000_000 == 0 => format!("{}ms", n / 1_000_000),
            n if n % 1_000 == 0 => format!("{}µs", n / 1_000),
            n => format!("{n}ns"),
        };
    }
    let (h, rest) = (ns / 3_600_000_000_000, ns % 3_600_000_000_000);
    let (m, rest) = (rest / 60_000_000_000, rest % 60_000_000_000);
    let secs = rest as f64 / 1e9;
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if h > 0 || m > 0 {
        out.push_str(&format!("{m}m"));
    }
    out.push_str(&format!("{secs}s"));
    out
}

fn json_array(v: &[String]) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

impl std::fmt::Display for CommandLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CommandLine::Shell(s) => f.write_str(s),
            CommandLine::Exec(v) => f.write_str(&json_array(v)),
        }
    }
}

impl std::fmt::Display for Command {
    /// One line in Dockerfile syntax, flags first (heredoc bodies and mounts' options are
    /// shown by name only): `COPY --from=build --chown=app /out /app`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts: Vec<String> = vec![self.keyword().to_string()];
        let flag = |parts: &mut Vec<String>, name: &str, v: &Option<String>| {
            if let Some(v) = v {
                parts.push(format!("--{name}={}", word(v)));
            }
        };
        let kvs = |parts: &mut Vec<String>, kv: &[KeyValue]| {
            for p in kv {
                parts.push(format!("{}={}", word(&p.key), word(&p.value)));
            }
        };
        let sources = |parts: &mut Vec<String>, s: &[Source]| {
            for s in s {
                parts.push(match s {
                    Source::Path(p) => word(p),
                    Source::Heredoc { name, .. } => format!("<<{name}"),
                });
            }
        };
        match self {
            Command::From(x) => {
                flag(&mut parts, "platform", &x.platform);
                parts.push(word(&x.image));
                if let Some(n) = &x.name {
                    parts.push(format!("AS {n}"));
                }
            }
            Command::Run(x) => {
                for m in &x.mounts {
                    let mut s = format!("--mount=type={}", name(m.kind));
                    for (k, v) in [("id", &m.id), ("source", &m.source), ("target", &m.target)] {
                        if let Some(v) = v {
                            s.push_str(&format!(",{k}={v}"));
                        }
                    }
                    if let Some(t) = &m.from {
                        s.push_str(&format!(",from={t}"));
                    }
                    parts.push(s);
                }
                if let Some(n) = x.network {
                    parts.push(format!("--network={}", name(n)));
                }
                if let Some(n) = x.security {
                    parts.push(format!("--security={}", name(n)));
                }
                parts.push(x.command.to_string());
            }
            Command::Cmd(x) => parts.push(x.command.to_string()),
            Command::Entrypoint(x) => parts.push(x.command.to_string()),
            Command::Shell(x) => parts.push(json_array(&x.shell)),
            Command::Env(x) => kvs(&mut parts, &x.vars),
            Command::Label(x) => kvs(&mut parts, &x.labels),
            Command::Arg(x) => {
                for a in &x.args {
                    parts.push(match &a.value {
                        Some(v) => format!("{}={}", a.name, word(v)),
                        None => a.name.clone(),
                    });
                }
            }
            Command::Copy(x) => {
                flag(&mut parts, "from", &x.from);
                flag(&mut parts, "chown", &x.chown);
                flag(&mut parts, "chmod", &x.chmod);
                if x.link {
                    parts.push("--link".into());
                }
                if x.parents {
                    parts.push("--parents".into());
                }
                for e in &x.exclude {
                    parts.push(format!("--exclude={}", word(e)));
                }
                sources(&mut parts, &x.sources);
                parts.push(word(&x.dest));
            }
            Command::Add(x) => {
                flag(&mut parts, "chown", &x.chown);
                flag(&mut parts, "chmod", &x.chmod);
                flag(&mut parts, "checksum", &x.checksum);
                if x.link {
                    parts.push("--link".into());
                }
                if let Some(k) = x.keep_git_dir {
                    parts.push(format!("--keep-git-dir={k}"));
                }
                if let Some(u) = x.unpack {
                    parts.push(format!("--unpack={u}"));
                }
                for e in &x.exclude {
                    parts.push(format!("--exclude={}", word(e)));
                }
                sources(&mut parts, &x.sources);
                parts.push(word(&x.dest));
            }
            Command::Workdir(x) => parts.push(word(&x.path)),
            Command::User(x) => parts.push(word(&x.user)),
            Command::Expose(x) => parts.extend(x.ports.iter().cloned()),
            Command::Volume(x) => parts.push(json_array(&x.paths)),
            Command::StopSignal(x) => parts.push(x.signal.clone()),
            Command::Healthcheck(x) => match &x.check {
                None => parts.push("NONE".into()),
                Some(c) => {
                    for (name, v) in [
                        ("interval", c.interval_ns),
                        ("timeout", c.timeout_ns),
                        ("start-period", c.start_period_ns),
                        ("start-interval", c.start_interval_ns),
                    ] {
                        if let Some(ns) = v {
                            parts.push(format!("--{name}={}", go_duration(ns)));
                        }
                    }
                    if let Some(r) = c.retries {
                        parts.push(format!("--retries={r}"));
                    }
                    parts.push("CMD".into());
                    parts.push(c.command.to_string());
                }
            },
            Command::Onbuild(x) => match &x.trigger {
                Some(t) => parts.push(t.command.to_string()),
                None => parts.push(x.expression.clone()),
            },
            Command::Maintainer(x) => parts.push(x.name.clone()),
        }
        f.write_str(&parts.join(" "))
    }
}
