//! From logical lines to typed [`Instruction`]s: keyword, builder flags, per-instruction
//! argument rules (BuildKit's `line_parsers.go` and `instructions/parse.go`).

use std::collections::BTreeMap;

use crate::instruction::*;
use crate::lexer::{self, HeredocSpec, Locator, Scanner};
use crate::mount::parse_mount;
use crate::words::{Json, extract_flags, parse_json, parse_words, split_whitespace};
use crate::{Dockerfile, Error};

/// Every keyword BuildKit knows.
const KEYWORDS: [&str; 18] = [
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

/// Parse a whole Dockerfile.
pub(crate) fn parse(text: &str) -> Result<Dockerfile, Error> {
    let (mut scanner, instructions) = parse_instructions(text, true)?;
    // `syntax` and `check` are read by BuildKit's frontend, which skips a `#!` first line
    // (`escape` is the parser's: after a `#!` line it is not a directive)
    let mut directives = scanner.directives().clone();
    let front = lexer::frontend_directives(text);
    directives.syntax = front.syntax.map(|(v, _)| v);
    if let Some((value, line)) = front.check {
        let first_word = value.split(' ').next().unwrap_or_default();
        let options = lexer::CheckOptions::parse(first_word).map_err(|e| {
            Error::new(line, 1, None, format!("failed to parse check options: {e}"))
        })?;
        directives.check = Some(value);
        directives.check_options = Some(options);
    } else {
        directives.check = None;
    }
    Ok(Dockerfile {
        directives,
        instructions,
        warnings: std::mem::take(&mut scanner.warnings),
    })
}

/// Parse an ONBUILD trigger as BuildKit does when a child build runs it: a fresh parse of the
/// trigger text (default escape character) that must hold exactly one instruction, neither
/// ONBUILD, FROM nor MAINTAINER.
pub(crate) fn parse_trigger(text: &str) -> Result<Instruction, Error> {
    let (_, mut instructions) = parse_instructions(text, false)?;
    if instructions.len() != 1 {
        return Err(Error::new(
            1,
            1,
            None,
            "onbuild trigger should be a single expression",
        ));
    }
    let inst = instructions.remove(0);
    if let kw @ ("ONBUILD" | "FROM" | "MAINTAINER") = inst.keyword() {
        return Err(Error::new(
            1,
            1,
            None,
            format!("{kw} isn't allowed as an ONBUILD trigger"),
        ));
    }
    Ok(inst)
}

/// The instructions of `text`; `require_from`: only ARG may come before the first FROM.
fn parse_instructions(
    text: &str,
    require_from: bool,
) -> Result<(Scanner<'_>, Vec<Instruction>), Error> {
    check_line_lengths(text)?;
    let mut scanner = Scanner::new(text);
    let mut instructions = Vec::new();
    let mut seen_from = false;
    while let Some(line) = scanner.next_line()? {
        let escape = scanner.escape();
        // heredocs: RUN/COPY/ADD (also as an ONBUILD trigger) in shell form
        let mut heredocs = Vec::new();
        if line.locator.text.contains("<<") {
            let split = split_command(&line.locator.text, escape);
            let keyword = split.keyword.to_ascii_uppercase();
            let heredoc_kw = if keyword == "ONBUILD" {
                split_command(split.args, escape)
                    .keyword
                    .to_ascii_uppercase()
            } else {
                keyword.clone()
            };
            if matches!(heredoc_kw.as_str(), "RUN" | "COPY" | "ADD")
                && !is_json_form(&line.locator.text, &keyword, escape)
            {
                let specs = lexer::heredocs_in(&line.locator.text)
                    .map_err(|m| Error::new(line.start_line, 1, Some(&keyword), m))?;
                for spec in specs {
                    let body = scanner.heredoc_body(&spec, line.start_line, &keyword)?;
                    heredocs.push((spec, body));
                }
            }
        }
        let end_line = if heredocs.is_empty() {
            line.end_line
        } else {
            scanner.line()
        };
        let original = scanner.source(line.start_line, end_line).to_string();
        let ctx = Ctx {
            locator: &line.locator,
            start_line: line.start_line,
            escape,
        };
        let mut inst = parse_instruction(&ctx, 0, &heredocs)?;
        inst.end_line = end_line;
        inst.original = original;
        if let Command::Onbuild(Onbuild {
            trigger: Some(t), ..
        }) = &mut inst.command
        {
            t.end_line = end_line;
        }
        // the logical line starts with the keyword (leading blanks are not part of it)
        let keyword_at = line.locator.position(0);
        inst.locator = line.locator;
        match inst.command {
            Command::From(_) => seen_from = true,
            Command::Arg(_) => {}
            _ if !seen_from && require_from => {
                let (l, c) = keyword_at;
                return Err(Error::new(
                    l,
                    c,
                    Some(inst.keyword()),
                    "no build stage in current context (an instruction before the first FROM)",
                ));
            }
            _ => {}
        }
        instructions.push(inst);
    }
    if instructions.is_empty() {
        return Err(Error::new(
            scanner.line().max(1),
            1,
            None,
            "file with no instructions",
        ));
    }
    Ok((scanner, instructions))
}

/// The longest line BuildKit reads (its line scanner's buffer is 64 KiB, newline included).
pub const MAX_LINE: usize = 65_535;

/// BuildKit refuses a file with a line longer than [`MAX_LINE`] bytes (heredoc bodies and
/// comments included); so do we, naming the line.
fn check_line_lengths(text: &str) -> Result<(), Error> {
    for (i, line) in text.split('\n').enumerate() {
        if line.len() > MAX_LINE {
            return Err(Error::new(
                i + 1,
                1,
                None,
                format!(
                    "dockerfile line greater than max allowed size of {MAX_LINE} bytes ({} bytes)",
                    line.len()
                ),
            ));
        }
    }
    Ok(())
}

/// Whether the instruction's arguments are in JSON form (heredocs are not looked for then).
fn is_json_form(text: &str, keyword: &str, escape: char) -> bool {
    let split = split_command(text, escape);
    if keyword == "ONBUILD" {
        let inner = split_command(split.args, escape);
        return matches!(parse_json(inner.args), Json::Strings(_));
    }
    matches!(parse_json(split.args), Json::Strings(_))
}

struct Split<'a> {
    keyword: &'a str,
    keyword_offset: usize,
    flags: Vec<(String, usize)>,
    args: &'a str,
    args_offset: usize,
}

/// BuildKit's `splitCommand`: the keyword, the builder flags, the rest (trimmed).
fn split_command(text: &str, escape: char) -> Split<'_> {
    let trimmed = text.trim_start();
    let base = text.len() - trimmed.len();
    let trimmed = trimmed.trim_end();
    let is_ws = |c: char| matches!(c, '\t' | '\u{b}' | '\u{c}' | '\r' | ' ');
    let kw_end = trimmed.find(is_ws).unwrap_or(trimmed.len());
    let keyword = &trimmed[..kw_end];
    let after = trimmed[kw_end..].trim_start_matches(is_ws);
    let after_off = base + (trimmed.len() - after.len());
    let (flags, rest_at) = extract_flags(after, escape);
    let flags = flags.into_iter().map(|(f, o)| (f, after_off + o)).collect();
    let rest = &after[rest_at..];
    let args = rest.trim();
    let args_offset = after_off + rest_at + (rest.len() - rest.trim_start().len());
    Split {
        keyword,
        keyword_offset: base,
        flags,
        args,
        args_offset,
    }
}

/// Where we are: the logical line, for positions.
struct Ctx<'a> {
    locator: &'a Locator,
    start_line: usize,
    escape: char,
}

impl Ctx<'_> {
    fn err(&self, offset: usize, keyword: &str, msg: impl Into<String>) -> Error {
        let (l, c) = self.locator.position(offset);
        Error::new(l, c, Some(keyword), msg)
    }
}

/// A flag's declared type.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Bool,
    Str,
    Strings,
}

/// Flag values after checking them against the instruction's declared flags.
#[derive(Default)]
struct Flags {
    bools: BTreeMap<&'static str, bool>,
    strs: BTreeMap<&'static str, (String, usize)>,
    lists: BTreeMap<&'static str, Vec<(String, usize)>>,
}

impl Flags {
    fn bool(&self, name: &str) -> bool {
        self.bools.get(name).copied().unwrap_or(false)
    }
    fn opt_bool(&self, name: &str) -> Option<bool> {
        self.bools.get(name).copied()
    }
    /// A string flag's value; an explicitly empty one (`--from=`) means unset, as in BuildKit.
    fn nonempty(&self, name: &str) -> Option<String> {
        self.strs
            .get(name)
            .filter(|(s, _)| !s.is_empty())
            .map(|(s, _)| s.clone())
    }
    fn list(&self, name: &str) -> Vec<String> {
        self.lists
            .get(name)
            .map(|v| v.iter().map(|(s, _)| s.clone()).collect())
            .unwrap_or_default()
    }
}

/// BuildKit's `BFlags.Parse`.
fn check_flags(
    ctx: &Ctx,
    keyword: &str,
    given: &[(String, usize)],
    declared: &[(&'static str, Kind)],
) -> Result<Flags, Error> {
    let mut out = Flags::default();
    let mut used: Vec<&str> = Vec::new();
    for (arg, off) in given {
        if arg == "--" {
            break;
        }
        let Some(body) = arg.strip_prefix("--") else {
            return Err(ctx.err(*off, keyword, format!("arg should start with -- : {arg}")));
        };
        let (name, value) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (body, None),
        };
        let flag_name = format!("--{name}");
        let Some(&(decl, kind)) = declared.iter().find(|(d, _)| *d == name) else {
            let mut msg = format!("unknown flag: {flag_name}");
            let names: Vec<&str> = declared.iter().map(|(d, _)| *d).collect();
            if let Some(s) = suggest(name, &names) {
                msg.push_str(&format!(" (did you mean --{s}?)"));
            }
            return Err(ctx.err(*off, keyword, msg));
        };
        if used.contains(&decl) && kind != Kind::Strings {
            return Err(ctx.err(
                *off,
                keyword,
                format!("duplicate flag specified: {flag_name}"),
            ));
        }
        used.push(decl);
        match kind {
            Kind::Bool => {
                if value == Some("") {
                    return Err(ctx.err(
                        *off,
                        keyword,
                        format!("missing a value on flag: {flag_name}"),
                    ));
                }
                let v = match value.map(str::to_ascii_lowercase).as_deref() {
                    None | Some("true") => true,
                    Some("false") => false,
                    Some(_) => {
                        return Err(ctx.err(
                            *off,
                            keyword,
                            format!(
                                "expecting boolean value for flag {flag_name}, not: {}",
                                value.unwrap_or_default()
                            ),
                        ));
                    }
                };
                out.bools.insert(decl, v);
            }
            Kind::Str | Kind::Strings => {
                let Some(v) = value else {
                    return Err(ctx.err(
                        *off,
                        keyword,
                        format!("missing a value on flag: {flag_name}"),
                    ));
                };
                if kind == Kind::Str {
                    out.strs.insert(decl, (v.to_string(), *off));
                } else {
                    out.lists
                        .entry(decl)
                        .or_default()
                        .push((v.to_string(), *off));
                }
            }
        }
    }
    Ok(out)
}

/// The closest name within edit distance 2, for "did you mean" hints.
fn suggest<'a>(word: &str, names: &[&'a str]) -> Option<&'a str> {
    let word = word.to_ascii_lowercase();
    names
        .iter()
        .map(|n| (levenshtein(&word, &n.to_ascii_lowercase()), *n))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, n)| n)
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Arguments as the line parser splits them, with byte offsets in the logical line.
struct Args {
    items: Vec<(String, usize)>,
    json: bool,
}

impl Args {
    fn strings(&self) -> Vec<String> {
        self.items.iter().map(|(s, _)| s.clone()).collect()
    }
}

fn json_or<F>(ctx: &Ctx, keyword: &str, args: &str, off: usize, fallback: F) -> Result<Args, Error>
where
    F: FnOnce() -> Vec<(String, usize)>,
{
    match parse_json(args) {
        Json::Strings(v) => Ok(Args {
            items: v.into_iter().map(|s| (s, off)).collect(),
            json: true,
        }),
        Json::NotStrings => Err(ctx.err(
            off,
            keyword,
            "when using JSON array syntax, arrays must be comprised of strings only",
        )),
        Json::Shell => Ok(Args {
            items: fallback(),
            json: false,
        }),
    }
}

/// `parseMaybeJSON`: JSON array, or the whole text as one argument.
fn maybe_json(ctx: &Ctx, keyword: &str, args: &str, off: usize) -> Result<Args, Error> {
    if args.is_empty() {
        return Ok(Args {
            items: Vec::new(),
            json: false,
        });
    }
    json_or(ctx, keyword, args, off, || vec![(args.to_string(), off)])
}

/// `parseMaybeJSONToList`: JSON array, or whitespace-separated words.
fn maybe_json_list(ctx: &Ctx, keyword: &str, args: &str, off: usize) -> Result<Args, Error> {
    json_or(ctx, keyword, args, off, || {
        shift(split_whitespace(args), off)
    })
}

fn shift(v: Vec<(String, usize)>, off: usize) -> Vec<(String, usize)> {
    v.into_iter().map(|(s, o)| (s, o + off)).collect()
}

fn command_line(args: &Args) -> CommandLine {
    if args.json {
        CommandLine::Exec(args.strings())
    } else {
        CommandLine::Shell(args.strings().join(" "))
    }
}

/// Parse the instruction starting at byte `at` of the logical line.
fn parse_instruction(
    ctx: &Ctx,
    at: usize,
    heredocs: &[(HeredocSpec, String)],
) -> Result<Instruction, Error> {
    let text = &ctx.locator.text[at..];
    let split = split_command(text, ctx.escape);
    let kw_off = at + split.keyword_offset;
    let args_off = at + split.args_offset;
    let keyword_raw = split.keyword;
    let args = split.args;
    let flags: Vec<(String, usize)> = split.flags.into_iter().map(|(f, o)| (f, at + o)).collect();
    let keyword = keyword_raw.to_ascii_uppercase();
    let kw = keyword.as_str();
    let at_least_one = |a: &Args| -> Result<(), Error> {
        if a.items.is_empty() {
            return Err(ctx.err(kw_off, kw, format!("{kw} requires at least one argument")));
        }
        Ok(())
    };
    let exactly_one = |a: &Args| -> Result<(), Error> {
        if a.items.len() != 1 {
            return Err(ctx.err(kw_off, kw, format!("{kw} requires exactly one argument")));
        }
        Ok(())
    };
    let string_arg = || Args {
        items: if args.is_empty() {
            Vec::new()
        } else {
            vec![(args.to_string(), args_off)]
        },
        json: false,
    };
    let mut mount_specs = Vec::new();
    let command = match kw {
        "FROM" => {
            let a = Args {
                items: shift(split_whitespace(args), args_off),
                json: false,
            };
            let items = a.strings();
            let name = match items.len() {
                3 if items[1].eq_ignore_ascii_case("as") => {
                    let name = items[2].to_ascii_lowercase();
                    if !valid_stage_name(&name) {
                        return Err(ctx.err(
                            a.items[2].1,
                            kw,
                            format!("invalid name for build stage: {:?}, name can't start with a number or contain symbols", items[2]),
                        ));
                    }
                    Some(name)
                }
                1 => None,
                _ => {
                    return Err(ctx.err(kw_off, kw, "FROM requires either one or three arguments"));
                }
            };
            let f = check_flags(ctx, kw, &flags, &[("platform", Kind::Str)])?;
            Command::From(From {
                image: items[0].clone(),
                name,
                // an explicitly empty `--platform=` is unset, as in BuildKit
                platform: f.nonempty("platform"),
            })
        }
        "RUN" => {
            let f = check_flags(
                ctx,
                kw,
                &flags,
                &[
                    ("mount", Kind::Strings),
                    ("network", Kind::Str),
                    ("security", Kind::Str),
                    ("device", Kind::Strings),
                ],
            )?;
            // BuildKit accepts an empty RUN and `RUN []` (they fail, if at all, when run)
            let a = maybe_json(ctx, kw, args, args_off)?;
            let network = match f.strs.get("network") {
                None => None,
                Some((v, off)) => Some(match v.as_str() {
                    "default" => Network::Default,
                    "none" => Network::None,
                    "host" => Network::Host,
                    _ => return Err(ctx.err(*off, kw, format!("invalid network mode {v:?}"))),
                }),
            };
            let security = match f.strs.get("security") {
                None => None,
                Some((v, off)) => Some(match v.as_str() {
                    "sandbox" => Security::Sandbox,
                    "insecure" => Security::Insecure,
                    _ => return Err(ctx.err(*off, kw, format!("security {v:?} is not valid"))),
                }),
            };
            let mut mounts = Vec::new();
            for (spec, off) in f.lists.get("mount").cloned().unwrap_or_default() {
                let m = parse_mount(&spec, &mut |v| Ok(v.to_string()), true)
                    .map_err(|e| ctx.err(off, kw, e))?;
                mounts.push(m);
                mount_specs.push((spec, off));
            }
            Command::Run(Run {
                command: command_line(&a),
                heredocs: heredocs
                    .iter()
                    .map(|(s, body)| Heredoc {
                        name: s.name.clone(),
                        content: body.clone(),
                        expand: s.expand,
                        chomp: s.chomp,
                        fd: s.fd,
                    })
                    .collect(),
                mounts,
                network,
                security,
                devices: f.list("device"),
            })
        }
        "CMD" => {
            check_flags(ctx, kw, &flags, &[])?;
            let a = maybe_json(ctx, kw, args, args_off)?;
            Command::Cmd(Cmd {
                command: command_line(&a),
            })
        }
        "ENTRYPOINT" => {
            check_flags(ctx, kw, &flags, &[])?;
            // a bare ENTRYPOINT is the shell form of "" (`[/bin/sh -c ""]`), `ENTRYPOINT []`
            // the empty exec form
            let a = maybe_json(ctx, kw, args, args_off)?;
            Command::Entrypoint(Entrypoint {
                command: command_line(&a),
            })
        }
        "SHELL" => {
            check_flags(ctx, kw, &flags, &[])?;
            let a = maybe_json(ctx, kw, args, args_off)?;
            at_least_one(&a)?;
            if !a.json {
                return Err(ctx.err(
                    args_off,
                    kw,
                    "SHELL requires the arguments to be in JSON form",
                ));
            }
            Command::Shell(Shell { shell: a.strings() })
        }
        "ENV" | "LABEL" => {
            check_flags(ctx, kw, &flags, &[])?;
            let pairs = name_values(ctx, kw, kw_off, args, args_off)?;
            if kw == "ENV" {
                Command::Env(Env { vars: pairs })
            } else {
                Command::Label(Label { labels: pairs })
            }
        }
        "ARG" => {
            check_flags(ctx, kw, &flags, &[])?;
            let words = shift(parse_words(args, ctx.escape), args_off);
            if words.is_empty() {
                return Err(ctx.err(kw_off, kw, "ARG requires at least one argument"));
            }
            let mut decls = Vec::new();
            for (w, off) in words {
                let decl = match w.split_once('=') {
                    Some((k, v)) => {
                        if k.is_empty() {
                            return Err(ctx.err(off, kw, "ARG names can not be blank"));
                        }
                        ArgDecl {
                            name: k.to_string(),
                            value: Some(v.to_string()),
                        }
                    }
                    None => ArgDecl {
                        name: w,
                        value: None,
                    },
                };
                decls.push(decl);
            }
            Command::Arg(Arg { args: decls })
        }
        "COPY" | "ADD" => {
            let a = maybe_json_list(ctx, kw, args, args_off)?;
            if a.items.len() < 2 {
                return Err(ctx.err(
                    kw_off,
                    kw,
                    format!("{kw} requires at least two arguments, but only one was provided. Destination could not be determined"),
                ));
            }
            let f = if kw == "COPY" {
                check_flags(
                    ctx,
                    kw,
                    &flags,
                    &[
                        ("chown", Kind::Str),
                        ("from", Kind::Str),
                        ("chmod", Kind::Str),
                        ("link", Kind::Bool),
                        ("exclude", Kind::Strings),
                        ("parents", Kind::Bool),
                    ],
                )?
            } else {
                check_flags(
                    ctx,
                    kw,
                    &flags,
                    &[
                        ("chown", Kind::Str),
                        ("chmod", Kind::Str),
                        ("link", Kind::Bool),
                        ("keep-git-dir", Kind::Bool),
                        ("checksum", Kind::Str),
                        ("unpack", Kind::Bool),
                        ("exclude", Kind::Strings),
                    ],
                )?
            };
            let (dest, dest_off) = a.items[a.items.len() - 1].clone();
            if !a.json && matches!(lexer::heredoc_word(&dest), Ok(Some(_))) {
                return Err(ctx.err(
                    dest_off,
                    kw,
                    format!("{kw} cannot accept a heredoc as a destination"),
                ));
            }
            let mut sources = Vec::new();
            for (src, _) in &a.items[..a.items.len() - 1] {
                let spec = if a.json {
                    None
                } else {
                    lexer::heredoc_word(src).ok().flatten()
                };
                match spec {
                    Some(spec) => {
                        let body = heredocs
                            .iter()
                            .find(|(h, _)| h.name == spec.name)
                            .map(|(_, b)| b.as_str())
                            .unwrap_or("");
                        let content = if spec.chomp {
                            lexer::chomp(body)
                        } else {
                            body.to_string()
                        };
                        sources.push(Source::Heredoc {
                            name: spec.name,
                            content,
                            expand: spec.expand,
                        });
                    }
                    None => sources.push(Source::Path(src.clone())),
                }
            }
            if kw == "COPY" {
                Command::Copy(Copy {
                    sources,
                    dest,
                    from: f.nonempty("from"),
                    chown: f.nonempty("chown"),
                    chmod: f.nonempty("chmod"),
                    link: f.bool("link"),
                    parents: f.bool("parents"),
                    exclude: f.list("exclude"),
                })
            } else {
                Command::Add(Add {
                    sources,
                    dest,
                    chown: f.nonempty("chown"),
                    chmod: f.nonempty("chmod"),
                    link: f.bool("link"),
                    keep_git_dir: f.opt_bool("keep-git-dir"),
                    checksum: f.nonempty("checksum"),
                    unpack: f.opt_bool("unpack"),
                    exclude: f.list("exclude"),
                })
            }
        }
        "WORKDIR" | "USER" | "MAINTAINER" => {
            let a = string_arg();
            exactly_one(&a)?;
            check_flags(ctx, kw, &flags, &[])?;
            let v = a.items[0].0.clone();
            match kw {
                "WORKDIR" => Command::Workdir(Workdir { path: v }),
                "USER" => Command::User(User { user: v }),
                _ => Command::Maintainer(Maintainer { name: v }),
            }
        }
        "STOPSIGNAL" => {
            // BuildKit does not check STOPSIGNAL's flags
            let a = string_arg();
            exactly_one(&a)?;
            Command::StopSignal(StopSignal {
                signal: a.items[0].0.clone(),
            })
        }
        "EXPOSE" => {
            let a = Args {
                items: shift(split_whitespace(args), args_off),
                json: false,
            };
            at_least_one(&a)?;
            check_flags(ctx, kw, &flags, &[])?;
            let mut ports = a.strings();
            ports.sort();
            Command::Expose(Expose { ports })
        }
        "VOLUME" => {
            let a = maybe_json_list(ctx, kw, args, args_off)?;
            at_least_one(&a)?;
            check_flags(ctx, kw, &flags, &[])?;
            let mut paths = Vec::new();
            for (v, off) in &a.items {
                let v = v.trim();
                if v.is_empty() {
                    return Err(ctx.err(*off, kw, "VOLUME specified can not be an empty string"));
                }
                paths.push(v.to_string());
            }
            Command::Volume(Volume { paths })
        }
        "HEALTHCHECK" => healthcheck(ctx, kw_off, &flags, args, args_off)?,
        "ONBUILD" => {
            if args.is_empty() {
                return Err(ctx.err(kw_off, kw, "ONBUILD requires at least one argument"));
            }
            check_flags(ctx, kw, &flags, &[])?;
            let inner = split_command(args, ctx.escape);
            let trigger_kw = inner.keyword.to_ascii_uppercase();
            match trigger_kw.as_str() {
                "ONBUILD" => {
                    return Err(ctx.err(
                        args_off,
                        kw,
                        "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed",
                    ));
                }
                "MAINTAINER" | "FROM" => {
                    return Err(ctx.err(
                        args_off,
                        kw,
                        format!("{trigger_kw} isn't allowed as an ONBUILD trigger"),
                    ));
                }
                _ => {}
            }
            let mut expression = args.to_string();
            for (spec, body) in heredocs {
                expression.push('\n');
                expression.push_str(body);
                expression.push_str(&spec.name);
            }
            // BuildKit checks a trigger only when a child build runs it (`ONBUILD foo` is
            // accepted): a trigger that does not parse is kept as text, unless BuildKit's line
            // parser (which does run on it) refuses it
            let trigger = match parse_instruction(ctx, args_off, heredocs) {
                Ok(mut t) => {
                    t.original = expression.clone();
                    t.locator = ctx.locator.clone();
                    Some(Box::new(t))
                }
                Err(_) => {
                    trigger_line_check(ctx, args, args_off)?;
                    None
                }
            };
            Command::Onbuild(Onbuild {
                expression,
                trigger,
            })
        }
        _ => {
            let mut msg = "unknown instruction".to_string();
            if let Some(s) = suggest(kw, &KEYWORDS) {
                msg.push_str(&format!(" (did you mean {s}?)"));
            }
            let shown = if keyword_raw.is_empty() {
                "?"
            } else {
                keyword_raw
            };
            let (l, c) = ctx.locator.position(kw_off);
            return Err(Error::new(l, c, Some(&shown.to_ascii_uppercase()), msg));
        }
    };
    Ok(Instruction {
        start_line: ctx.start_line,
        end_line: ctx.start_line,
        original: String::new(),
        command,
        // the caller moves the logical line in (ONBUILD triggers get a copy)
        locator: Locator::default(),
        mount_specs,
    })
}

/// The checks BuildKit's line parser makes on an ONBUILD trigger in the parent (the rest
/// waits for the child): `ENV`/`LABEL` pairs, and JSON arrays holding other than strings.
fn trigger_line_check(ctx: &Ctx, text: &str, at: usize) -> Result<(), Error> {
    let split = split_command(text, ctx.escape);
    let kw = split.keyword.to_ascii_uppercase();
    let args = split.args;
    let args_off = at + split.args_offset;
    let not_strings = |a: &str| matches!(parse_json(a), Json::NotStrings);
    match kw.as_str() {
        "ENV" | "LABEL" => {
            let words = parse_words(args, ctx.escape);
            let Some((first, _)) = words.first() else {
                return Ok(());
            };
            if !first.contains('=') {
                if split_whitespace(args).len() < 2 {
                    return Err(ctx.err(
                        args_off,
                        "ONBUILD",
                        format!("{kw} must have two arguments"),
                    ));
                }
                return Ok(());
            }
            if let Some((w, off)) = words.iter().find(|(w, _)| !w.contains('=')) {
                return Err(ctx.err(
                    args_off + off,
                    "ONBUILD",
                    format!(
                        "Syntax error - can't find = in {w:?}. Must be of the form: name=value"
                    ),
                ));
            }
            Ok(())
        }
        "RUN" | "CMD" | "ENTRYPOINT" | "SHELL" | "ADD" | "COPY" | "VOLUME" if not_strings(args) => {
            Err(ctx.err(
                args_off,
                "ONBUILD",
                "when using JSON array syntax, arrays must be comprised of strings only",
            ))
        }
        "HEALTHCHECK" => {
            let rest = args
                .split_once(char::is_whitespace)
                .map_or("", |(_, r)| r.trim_start());
            if not_strings(rest) {
                return Err(ctx.err(
                    args_off,
                    "ONBUILD",
                    "when using JSON array syntax, arrays must be comprised of strings only",
                ));
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn valid_stage_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some('a'..='z'))
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '-' | '_' | '.'))
}

/// `parseNameVal`: `k=v k2="v 2"` or the legacy `k v w`.
fn name_values(
    ctx: &Ctx,
    kw: &str,
    kw_off: usize,
    args: &str,
    args_off: usize,
) -> Result<Vec<KeyValue>, Error> {
    let words = shift(parse_words(args, ctx.escape), args_off);
    if words.is_empty() {
        return Err(ctx.err(kw_off, kw, format!("{kw} requires at least one argument")));
    }
    if !words[0].0.contains('=') {
        let parts = split_whitespace(args);
        if parts.len() < 2 {
            return Err(ctx.err(kw_off, kw, format!("{kw} must have two arguments")));
        }
        let is_ws = |c: char| matches!(c, '\t' | '\u{b}' | '\u{c}' | '\r' | ' ');
        let key = parts[0].0.clone();
        let value = args[parts[0].1 + parts[0].0.len()..]
            .trim_start_matches(is_ws)
            .to_string();
        return Ok(vec![KeyValue {
            key,
            value,
            legacy: true,
        }]);
    }
    let mut out = Vec::new();
    for (w, off) in words {
        let Some((k, v)) = w.split_once('=') else {
            return Err(ctx.err(
                off,
                kw,
                format!("Syntax error - can't find = in {w:?}. Must be of the form: name=value"),
            ));
        };
        if k.is_empty() {
            return Err(ctx.err(off, kw, format!("{kw} names can not be blank")));
        }
        out.push(KeyValue {
            key: k.to_string(),
            value: v.to_string(),
            legacy: false,
        });
    }
    Ok(out)
}

fn healthcheck(
    ctx: &Ctx,
    kw_off: usize,
    flags: &[(String, usize)],
    args: &str,
    args_off: usize,
) -> Result<Command, Error> {
    let kw = "HEALTHCHECK";
    let sep = args.find(|c: char| c.is_whitespace()).unwrap_or(args.len());
    if sep == 0 {
        return Err(ctx.err(kw_off, kw, "HEALTHCHECK requires at least one argument"));
    }
    let typ = args[..sep].to_ascii_uppercase();
    let rest = args[sep..].trim_start();
    let rest_off = args_off + (args.len() - rest.len());
    if typ == "NONE" {
        if !rest.is_empty() {
            return Err(ctx.err(rest_off, kw, "HEALTHCHECK NONE takes no arguments"));
        }
        return Ok(Command::Healthcheck(Healthcheck { check: None }));
    }
    let f = check_flags(
        ctx,
        kw,
        flags,
        &[
            ("interval", Kind::Str),
            ("timeout", Kind::Str),
            ("start-period", Kind::Str),
            ("start-interval", Kind::Str),
            ("retries", Kind::Str),
        ],
    )?;
    if typ != "CMD" {
        return Err(ctx.err(
            args_off,
            kw,
            format!("Unknown type {:?} in HEALTHCHECK (try CMD)", &args[..sep]),
        ));
    }
    let a = maybe_json(ctx, kw, rest, rest_off)?;
    if a.items.is_empty() {
        return Err(ctx.err(args_off, kw, "Missing command after HEALTHCHECK CMD"));
    }
    let duration = |name: &'static str| -> Result<Option<u64>, Error> {
        let Some((v, off)) = f.strs.get(name) else {
            return Ok(None);
        };
        if v.is_empty() {
            return Ok(None);
        }
        let ns = parse_go_duration(v).map_err(|e| ctx.err(*off, kw, e))?;
        if ns != 0 && ns < 1_000_000 {
            return Err(ctx.err(
                *off,
                kw,
                format!("Interval {name:?} cannot be less than 1ms"),
            ));
        }
        Ok(Some(ns.max(0) as u64))
    };
    let retries = match f.strs.get("retries") {
        None => None,
        Some((v, _)) if v.is_empty() => None,
        Some((v, off)) => {
            let n: i64 = v.parse().map_err(|_| {
                ctx.err(
                    *off,
                    kw,
                    format!("strconv.ParseInt: parsing {v:?}: invalid syntax"),
                )
            })?;
            if n < 0 {
                return Err(ctx.err(*off, kw, format!("--retries cannot be negative ({n})")));
            }
            Some(
                u32::try_from(n)
                    .map_err(|_| ctx.err(*off, kw, format!("--retries out of range ({n})")))?,
            )
        }
    };
    Ok(Command::Healthcheck(Healthcheck {
        check: Some(HealthCheck {
            command: command_line(&a),
            interval_ns: duration("interval")?,
            timeout_ns: duration("timeout")?,
            start_period_ns: duration("start-period")?,
            start_interval_ns: duration("start-interval")?,
            retries,
        }),
    }))
}

/// Go's `time.ParseDuration`, in nanoseconds (negative allowed).
pub(crate) fn parse_go_duration(s: &str) -> Result<i128, String> {
    let bad = || format!("time: invalid duration {s:?}");
    let (neg, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(rest.len());
        let num = &rest[..num_end];
        if num.is_empty() || num == "." || num.matches('.').count() > 1 {
            return Err(bad());
        }
        let n: f64 = num.parse().map_err(|_| bad())?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_end];
        let mult: f64 = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "" => return Err(format!("time: missing unit in duration {s:?}")),
            _ => return Err(format!("time: unknown unit {unit:?} in duration {s:?}")),
        };
        total += n * mult;
        rest = &rest[unit_end..];
    }
    if total > i64::MAX as f64 {
        return Err(bad());
    }
    let ns = total.round() as i128;
    Ok(if neg { -ns } else { ns })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_go_duration("30s"), Ok(30_000_000_000));
        assert_eq!(parse_go_duration("1m30s"), Ok(90_000_000_000));
        assert_eq!(parse_go_duration("1.5h"), Ok(5_400_000_000_000));
        assert_eq!(parse_go_duration("100ms"), Ok(100_000_000));
        assert_eq!(parse_go_duration("0"), Ok(0));
        assert!(
            parse_go_duration("10")
                .unwrap_err()
                .contains("missing unit")
        );
        assert!(
            parse_go_duration("5x")
                .unwrap_err()
                .contains("unknown unit")
        );
        assert!(parse_go_duration("").is_err());
    }

    #[test]
    fn split() {
        let s = split_command("  copy --from=a  --link  src dst ", '\\');
        assert_eq!(s.keyword, "copy");
        assert_eq!(s.keyword_offset, 2);
        assert_eq!(s.args, "src dst");
        assert_eq!(s.args_offset, 25);
        assert_eq!(s.flags[1], ("--link".to_string(), 17));
    }

    #[test]
    fn suggestions() {
        assert_eq!(suggest("RUNN", &KEYWORDS), Some("RUN"));
        assert_eq!(suggest("XYZZYQ", &KEYWORDS), None);
    }
}
