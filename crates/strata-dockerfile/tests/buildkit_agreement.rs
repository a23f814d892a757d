//! Issue 15 (parser part): where strata read a Dockerfile differently from BuildKit, or crashed.
//! Each test names the BuildKit behaviour it checks.

use std::collections::BTreeMap;

use strata_dockerfile::{Base, Command, CommandLine, parse, shell::MAX_NESTING};

fn resolve(text: &str) -> Result<strata_dockerfile::Resolved, strata_dockerfile::Error> {
    parse(text)?.resolve(&BTreeMap::new(), None)
}

fn resolve_target(
    text: &str,
    target: &str,
) -> Result<strata_dockerfile::Resolved, strata_dockerfile::Error> {
    parse(text)?.resolve(&BTreeMap::new(), Some(target))
}

/// `${a:-${a:-...x}}` nested `depth` times.
fn nested(depth: usize) -> String {
    format!("{}x{}", "${a:-".repeat(depth), "}".repeat(depth))
}

/// Run `f` on a thread with the 2 MiB stack test threads get by default.
fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(f)
        .unwrap()
        .join()
        .expect("the thread did not overflow its stack")
}

// Issue 15: 9,700 nested substitutions overflowed the stack (SIGABRT).
#[test]
fn deep_substitution_nesting_is_an_error_not_a_crash() {
    on_small_stack(|| {
        let text = format!("FROM a\nWORKDIR /{}\n", nested(9_700));
        let e = resolve(&text).unwrap_err();
        assert_eq!(e.line(), 2);
        assert!(
            e.message().contains("nested deeper than"),
            "{}",
            e.message()
        );
        // the same inside a heredoc declaration line and a FROM line
        let e = resolve(&format!("FROM {}\n", nested(9_700))).unwrap_err();
        assert!(e.message().contains("nested deeper than"), "{e}");
        // BuildKit would find the heredoc: say why we cannot rather than read it differently
        let e = parse(&format!("FROM a\nRUN {} <<EOF\nx\nEOF\n", nested(9_700))).unwrap_err();
        assert!(e.message().contains("nested deeper than"), "{e}");
    });
}

// The bound is generous and fits a 2 MiB stack in a debug build: the deepest accepted nesting
// expands as BuildKit expands it.
#[test]
fn deepest_allowed_nesting_expands_on_a_small_stack() {
    on_small_stack(|| {
        let text = format!("FROM a\nWORKDIR /{}\n", nested(MAX_NESTING));
        let r = resolve(&text).unwrap();
        let Command::Workdir(w) = &r.stages[0].instructions[0].instruction.command else {
            panic!()
        };
        assert_eq!(w.path, "/x");
        let quoted = format!(
            "FROM a\nENV A=\"{}x{}\"\n",
            "${a:-\"".repeat(MAX_NESTING),
            "\"}".repeat(MAX_NESTING)
        );
        assert!(resolve(&quoted).is_ok());
        assert!(resolve(&format!("FROM a\nWORKDIR /{}\n", nested(MAX_NESTING + 1))).is_err());
    });
}

// BuildKit's scanner refuses lines over 65,535 bytes ("dockerfile line greater than max allowed
// size of 65535"); strata accepted any length.
#[test]
fn lines_over_65535_bytes_are_refused_with_their_line_number() {
    let ok = format!(
        "FROM a\nLABEL a={}\n",
        "b".repeat(strata_dockerfile::MAX_LINE - 8)
    );
    assert!(parse(&ok).is_ok());
    let long = format!(
        "FROM a\n# {}\nRUN x\n",
        "b".repeat(strata_dockerfile::MAX_LINE - 1)
    );
    let e = parse(&long).unwrap_err();
    assert_eq!(e.line(), 2);
    assert!(
        e.message()
            .contains("greater than max allowed size of 65535"),
        "{e}"
    );
    // heredoc bodies are lines too
    let body = format!("FROM a\nRUN <<EOF\n{}\nEOF\n", "x".repeat(70_000));
    assert_eq!(parse(&body).unwrap_err().line(), 3);
}

fn command_of(text: &str, index: usize) -> Command {
    parse(text).unwrap().instructions[index].command.clone()
}

// BuildKit: a bare ENTRYPOINT is the shell form of "" (`[/bin/sh -c ""]`); strata reset it.
#[test]
fn bare_entrypoint_is_shell_form() {
    let Command::Entrypoint(e) = command_of("FROM a\nENTRYPOINT\n", 1) else {
        panic!()
    };
    assert_eq!(e.command, CommandLine::Shell(String::new()));
    let Command::Entrypoint(e) = command_of("FROM a\nENTRYPOINT []\n", 1) else {
        panic!()
    };
    assert_eq!(e.command, CommandLine::Exec(Vec::new()));
}

// BuildKit accepts an empty RUN and `RUN []`; strata refused both.
#[test]
fn empty_run_and_empty_exec_run_are_accepted() {
    let Command::Run(r) = command_of("FROM a\nRUN\n", 1) else {
        panic!()
    };
    assert_eq!(r.command, CommandLine::Shell(String::new()));
    let Command::Run(r) = command_of("FROM a\nRUN []\n", 1) else {
        panic!()
    };
    assert_eq!(r.command, CommandLine::Exec(Vec::new()));
    assert!(resolve("FROM a\nRUN --network=none\n").is_ok());
}

// BuildKit refuses only ONBUILD, FROM and MAINTAINER as triggers; any other text is kept for
// the child build, which checks it.
#[test]
fn onbuild_accepts_unknown_triggers() {
    let Command::Onbuild(o) = command_of("FROM a\nONBUILD foo bar\n", 1) else {
        panic!()
    };
    assert_eq!(o.expression, "foo bar");
    assert!(o.trigger.is_none());
    assert!(resolve("FROM a\nONBUILD COPY onlyone\nONBUILD WORKDIR\nONBUILD ENV\n").is_ok());
    // BuildKit's line parser still runs on a trigger in the parent: these it refuses
    for bad in [
        "ONBUILD ONBUILD RUN x",
        "ONBUILD FROM b",
        "ONBUILD maintainer me",
        "ONBUILD ENV lonely",
        "ONBUILD LABEL a=b c",
        "ONBUILD CMD [\"a\", 1]",
        "ONBUILD HEALTHCHECK CMD [[\"x\"]]",
    ] {
        assert!(parse(&format!("FROM a\n{bad}\n")).is_err(), "{bad}");
    }
}

// BuildKit reads an explicitly empty `--platform=`, `--from=` (and mount `from=`) as unset.
#[test]
fn empty_platform_and_from_flags_mean_unset() {
    let r = resolve(
        "FROM --platform= a AS b\nCOPY --from= x y\nRUN --mount=type=bind,from=,target=/t true\n",
    )
    .unwrap();
    assert_eq!(r.stages[0].platform, None);
    let ins = &r.stages[0].instructions;
    let Command::Copy(c) = &ins[0].instruction.command else {
        panic!()
    };
    assert_eq!(c.from, None);
    assert_eq!(ins[0].copy_from, None);
    let Command::Run(run) = &ins[1].instruction.command else {
        panic!()
    };
    assert_eq!(run.mounts[0].from, None);
    assert_eq!(ins[1].mount_from, vec![None]);
}

// BuildKit checks `--mount` options (other than CSV syntax and `from=`) only when it runs the
// stage: a bad mount in a stage the target does not need is no error.
#[test]
fn mount_options_are_checked_only_in_needed_stages() {
    let text = "FROM a AS unused\nRUN --mount=type=nfs,target=/x true\nFROM b\nRUN true\n";
    let r = resolve(text).unwrap();
    assert!(!r.stages[0].needed);
    assert_eq!(r.warnings.len(), 1, "{:?}", r.warnings);
    let e = resolve_target(text, "unused").unwrap_err();
    assert_eq!(e.line(), 2);
    assert!(
        e.message().contains("unsupported mount type \"nfs\""),
        "{e}"
    );
    // CSV syntax and variables in from= are checked at parse time, as BuildKit does
    assert!(parse("FROM a AS u\nRUN --mount='\"a' true\nFROM b\n").is_err());
    assert!(parse("FROM a AS u\nRUN --mount=from=$X,target=/t true\nFROM b\n").is_err());
}

// BuildKit keeps the latest stage of a duplicated name: `--target`, `COPY --from` and a later
// FROM all mean the last one defined (a FROM: the last one before it).
#[test]
fn duplicate_stage_names_mean_the_latest_stage() {
    let text = "FROM a AS x\nFROM b AS x\nFROM x AS y\nCOPY --from=x /a /b\nRUN --mount=from=x,target=/m true\n";
    let r = resolve(text).unwrap();
    assert_eq!(r.stages[2].base, Base::Stage(1));
    let ins = &r.stages[2].instructions;
    assert_eq!(ins[0].copy_from, Some(Base::Stage(1)));
    assert_eq!(ins[1].mount_from, vec![Some(Base::Stage(1))]);
    assert!(!r.stages[0].needed);
    assert_eq!(resolve_target(text, "x").unwrap().target, 1);
    // a name defined again later: `--from` names the later stage, not yet built when y runs,
    // which BuildKit refuses ("cannot copy from stage")
    let later = "FROM a AS x\nFROM b AS y\nCOPY --from=x /a /b\nFROM c AS x\n";
    let e = resolve_target(later, "y").unwrap_err();
    assert!(e.message().contains("cannot copy from stage \"x\""), "{e}");
    assert_eq!(resolve_target(later, "x").unwrap().target, 2);
}

/// `[[[...]]]` nested `depth` deep.
fn nested_array(depth: usize) -> String {
    format!("{}{}", "[".repeat(depth), "]".repeat(depth))
}

// Go's encoding/json parses arrays nested up to 10,000 deep: BuildKit then refuses them as
// "not strings"; deeper, Go fails and BuildKit takes the shell form. strata's serde_json gave
// up at 128 and took the shell form.
#[test]
fn deeply_nested_json_arrays_are_read_as_buildkit_reads_them() {
    on_small_stack(|| {
        for depth in [2, 129, 10_000] {
            let e = parse(&format!("FROM a\nCMD {}\n", nested_array(depth))).unwrap_err();
            assert!(
                e.message().contains("must be comprised of strings only"),
                "{depth}: {e}"
            );
        }
        let Command::Cmd(c) = command_of(&format!("FROM a\nCMD {}\n", nested_array(10_001)), 1)
        else {
            panic!()
        };
        assert_eq!(c.command, CommandLine::Shell(nested_array(10_001)));
        // a huge nesting within the 64 KiB line cap: no stack overflow
        assert!(parse(&format!("FROM a\nRUN {}\n", nested_array(32_000))).is_ok());
    });
}

// go-digest (through BuildKit's reference parser) refuses digests of the wrong length, with
// upper-case hex or of an unknown algorithm; strata took any 32+ hex digits.
#[test]
fn bad_digests_are_refused() {
    let good = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    assert!(resolve(&format!("FROM alpine@sha256:{good}\n")).is_ok());
    for bad in [
        format!("sha256:{}", &good[..32]),
        format!("sha256:{}", good.to_ascii_uppercase()),
        format!("md5:{}", &good[..32]),
        format!("sha512:{good}"),
    ] {
        let e = resolve(&format!("FROM alpine@{bad}\n")).unwrap_err();
        assert!(
            e.message().contains("invalid reference format"),
            "{bad}: {e}"
        );
        let e = resolve(&format!("FROM a\nCOPY --from=alpine@{bad} /a /b\n")).unwrap_err();
        assert_eq!(e.line(), 2, "{bad}: {e}");
    }
}

// BuildKit parses `FROM --platform=` with containerd's platforms.Parse; strata took anything.
#[test]
fn bad_platforms_are_refused() {
    for good in ["linux/amd64", "linux/arm64/v8", "linux", "$BUILDPLATFORM"] {
        assert!(
            resolve(&format!("FROM --platform={good} a\n")).is_ok(),
            "{good}"
        );
    }
    for bad in [
        "nonsense",
        "linux/",
        "linux/amd64/v8/extra",
        "linux/*",
        "a b/c",
    ] {
        let e = resolve(&format!("ARG P=\"{bad}\"\nFROM --platform=$P a\n")).unwrap_err();
        assert_eq!(e.line(), 2, "{bad}: {e}");
        assert!(
            e.message().contains("failed to parse platform"),
            "{bad}: {e}"
        );
    }
}

// BuildKit's frontend reads `syntax` and `check` after a `#!` first line (its parser does not
// honour `escape` there); strata stopped at the `#!` line.
#[test]
fn directives_after_a_shebang_line() {
    let df = parse(
        "#!/usr/bin/env buildctl\n# syntax=docker/dockerfile:1\n# check=skip=all;error=true\n# escape=`\nFROM a\nRUN a \\\n b\n",
    )
    .unwrap();
    assert_eq!(df.directives.syntax.as_deref(), Some("docker/dockerfile:1"));
    let check = df.directives.check_options.clone().unwrap();
    assert!(check.skip_all && check.error);
    assert_eq!(df.directives.escape, '\\');
    assert_eq!(df.instructions.len(), 2);
}

// `# check=` is parsed as BuildKit's linter parses it, and bad options fail the build.
#[test]
fn check_directive_options() {
    let df = parse("# check=skip=JSONArgsRecommended,StageNameCasing;experimental=all\nFROM a\n")
        .unwrap();
    let c = df.directives.check_options.unwrap();
    assert_eq!(c.skip, ["JSONArgsRecommended", "StageNameCasing"]);
    assert!(c.experimental_all && !c.error && !c.skip_all);
    // BuildKit reads only the first word of the value
    let df = parse("# check=skip=A, B;error=true\nFROM a\n").unwrap();
    let c = df.directives.check_options.unwrap();
    assert_eq!(c.skip, ["A", ""]);
    assert!(!c.error);
    for (bad, why) in [
        ("bogus=1", "invalid check option \"bogus\""),
        ("skip", "invalid check option \"skip\""),
        ("error=maybe", "strconv.ParseBool"),
    ] {
        let e = parse(&format!("# syntax=x\n# check={bad}\nFROM a\n")).unwrap_err();
        assert_eq!(e.line(), 2, "{bad}");
        assert!(e.message().contains(why), "{bad}: {e}");
    }
    assert_eq!(parse("FROM a\n").unwrap().directives.check_options, None);
}

// BuildKit runs the ONBUILD triggers of a stage used as a base later in the same file, first
// in the child stage; their `COPY --from` makes stages needed. strata ignored them.
#[test]
fn onbuild_triggers_of_a_stage_run_in_its_children() {
    let text = "FROM alpine AS base\nONBUILD COPY --from=assets /a /a\nONBUILD RUN echo $X\nFROM busybox AS assets\nRUN true\nFROM base\nENV X=1\n";
    let r = resolve(text).unwrap();
    assert!(
        r.stages[1].needed,
        "the trigger's --from makes assets needed"
    );
    let child = &r.stages[2].instructions;
    assert_eq!(child.len(), 3);
    assert!(child[0].onbuild && child[1].onbuild && !child[2].onbuild);
    assert_eq!(child[0].copy_from, Some(Base::Stage(1)));
    assert_eq!(child[0].instruction.original, "COPY --from=assets /a /a");
    assert_eq!(
        (
            child[0].instruction.start_line,
            child[0].instruction.end_line
        ),
        (6, 6)
    );
    assert!(matches!(child[1].instruction.command, Command::Run(_)));
    // the base stage itself does not run its own triggers
    assert_eq!(r.stages[0].instructions.len(), 2);
    assert!(r.stages[0].instructions.iter().all(|i| !i.onbuild));
    // a bad trigger fails the child (at its FROM line), not the stage declaring it
    let bad = "FROM alpine AS base\nONBUILD COPY onlyone\nFROM base\nRUN true\n";
    let e = resolve(bad).unwrap_err();
    assert_eq!(e.line(), 3, "{e}");
    assert!(
        e.message().contains("requires at least two arguments"),
        "{e}"
    );
    assert!(resolve_target(bad, "base").is_ok());
}

// Triggers of an image base (from its config) run through the library, so the Dockerfile's own
// lines keep their numbers: splicing two triggers into the text moved an error on line 2 to 4.
#[test]
fn image_onbuild_triggers_keep_the_dockerfile_line_numbers() {
    let df = parse("FROM registry.example.com/base:1\nWORKDIR ${X:?X must be set}\n").unwrap();
    let mut options = strata_dockerfile::ResolveOptions::default();
    options.base_onbuild.insert(
        "registry.example.com/base:1".into(),
        vec!["ARG X=1".into(), "RUN echo one".into()],
    );
    let r = df.resolve_with(&options).unwrap();
    let ins = &r.stages[0].instructions;
    assert_eq!(ins.len(), 3);
    assert!(ins[0].onbuild && ins[1].onbuild);
    assert_eq!(ins[2].instruction.start_line, 2);
    options.base_onbuild.insert(
        "registry.example.com/base:1".into(),
        vec!["RUN one".into(), "RUN two".into()],
    );
    let e = df.resolve_with(&options).unwrap_err();
    assert_eq!(e.line(), 2, "{e}");
    assert!(e.message().contains("X must be set"), "{e}");
    // an error inside a trigger is reported at the FROM line, as BuildKit reports it
    options.base_onbuild.insert(
        "registry.example.com/base:1".into(),
        vec!["COPY --bogus a b".into()],
    );
    let e = df.resolve_with(&options).unwrap_err();
    assert_eq!(e.line(), 1, "{e}");
    assert!(e.message().contains("unknown flag: --bogus"), "{e}");
}

// BuildKit reads Dockerfiles as bytes: a comment in Latin-1 is fine. strata took only UTF-8.
#[test]
fn non_utf8_bytes_in_comments_are_accepted() {
    let df = strata_dockerfile::parse_bytes(
        b"# caf\xe9\nFROM a\n  # \xff\xfe\nRUN echo \\\n# \xe9\n  x\n",
    )
    .unwrap();
    assert_eq!(df.instructions.len(), 2);
    let Command::Run(r) = &df.instructions[1].command else {
        panic!()
    };
    assert_eq!(r.command, CommandLine::Shell("echo   x".into()));
    // elsewhere they are an error naming the line (strata's strings are UTF-8)
    let e = strata_dockerfile::parse_bytes(b"FROM a\nRUN echo \xe9\n").unwrap_err();
    assert_eq!((e.line(), e.column()), (2, 10));
    // a heredoc line that looks like a comment is content, not a comment
    let e = strata_dockerfile::parse_bytes(b"FROM a\nRUN <<EOF\n# \xe9\nEOF\n").unwrap_err();
    assert_eq!(e.line(), 3, "{e}");
}

// No input may exhaust memory: `ENV A=$A$A...` doubles a value per line (BuildKit would grow it
// until the machine gives up); one expansion is capped at 16 MiB.
#[test]
fn exponential_expansion_is_an_error_not_an_out_of_memory_abort() {
    let mut text = format!("FROM a\nENV A={}\n", "x".repeat(1_000));
    for _ in 0..12 {
        text.push_str("ENV A=$A$A$A$A$A$A$A$A\n");
    }
    let e = resolve(&text).unwrap_err();
    assert!(e.message().contains("larger than 16 MiB"), "{e}");
    assert_eq!(
        e.line(),
        7,
        "1000 * 8^4 bytes is the first value over 16 MiB"
    );
}

// ... and one resolve produces at most 256 MiB (expansions, and environments copied into each
// stage built on another).
#[test]
fn a_resolve_is_bounded_in_memory() {
    let mut text = format!(
        "FROM a AS s0\nARG A={}\nENV B={}\n",
        "x".repeat(60_000),
        "$A".repeat(16)
    );
    for i in 1..400 {
        text.push_str(&format!("FROM s{} AS s{i}\n", i - 1));
    }
    let e = resolve(&text).unwrap_err();
    assert!(e.message().contains("larger than 256 MiB"), "{e}");
    assert!(e.line() > 4, "{e}");
}

// Pattern substitutions are quadratic in the value's length: a leading `*` that matches nowhere
// stops the search (same result), and one expansion's matching work is bounded, so no line
// hangs the parser.
#[test]
fn pattern_substitution_on_long_values_is_bounded() {
    let long = "a".repeat(60_000);
    let r = resolve(&format!("FROM a\nENV A={long}\nWORKDIR /${{A//*b/x}}\n")).unwrap();
    let Command::Workdir(w) = &r.stages[0].instructions[1].instruction.command else {
        panic!()
    };
    assert_eq!(w.path.len(), 60_001);
    let e = resolve(&format!("FROM a\nENV A={long}\nWORKDIR /${{A//a*b/x}}\n")).unwrap_err();
    assert_eq!(e.line(), 3);
    assert!(e.message().contains("too expensive"), "{e}");
    // ordinary values are unaffected
    let r =
        resolve("FROM a\nENV P=/usr/local/bin/app.tar.gz\nWORKDIR ${P//*\\//}-${P%%.*}\n").unwrap();
    let Command::Workdir(w) = &r.stages[0].instructions[1].instruction.command else {
        panic!()
    };
    assert_eq!(w.path, "app.tar.gz-/usr/local/bin/app");
}
