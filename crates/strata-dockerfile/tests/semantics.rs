//! Focused tests of the public API: continuations, substitution, ARG/ENV scoping, stages,
//! dependencies, heredocs and error positions.

use std::collections::BTreeMap;

use strata_dockerfile::{
    Base, Command, CommandLine, DependencyKind, ResolveOptions, RunScript, Source, parse,
};

fn args(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
    kv.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn run_text(c: &Command) -> &str {
    match c {
        Command::Run(r) => match &r.command {
            CommandLine::Shell(s) => s,
            CommandLine::Exec(_) => panic!("exec form"),
        },
        other => panic!("not RUN: {other:?}"),
    }
}

#[test]
fn continuation_keeps_inner_whitespace_and_line_ranges() {
    let df =
        parse("FROM a\nRUN echo a \\\n  # a comment inside\n\n    b \\\n\tc\nRUN d\n").unwrap();
    let run = &df.instructions[1];
    assert_eq!(run_text(&run.command), "echo a     b \tc");
    assert_eq!((run.start_line, run.end_line), (2, 6));
    assert_eq!(
        run.original,
        "RUN echo a \\\n  # a comment inside\n\n    b \\\n\tc"
    );
    assert_eq!(
        df.warnings.len(),
        1,
        "the empty continuation line is warned about"
    );
    assert_eq!(df.instructions[2].start_line, 7);
}

#[test]
fn escape_directive_changes_continuation_and_escapes() {
    let df = parse("# escape=`\nFROM a\nRUN dir C:\\ `\n  /s\nENV P=C:\\x Q=`$HOME\n").unwrap();
    assert_eq!(df.directives.escape, '`');
    assert_eq!(run_text(&df.instructions[1].command), "dir C:\\   /s");
    let r = df.resolve(&BTreeMap::new(), None).unwrap();
    let Command::Env(env) = &r.stages[0].instructions[1].instruction.command else {
        panic!()
    };
    assert_eq!(env.vars[0].value, "C:\\x");
    assert_eq!(env.vars[1].value, "$HOME");
}

#[test]
fn keywords_are_case_insensitive() {
    let df = parse("from alpine as Build\nrun true\nCoPy --FROM=build a b\n").unwrap_err();
    // flag names are case-sensitive in BuildKit
    assert_eq!(
        df.to_string(),
        "3:6: COPY: unknown flag: --FROM (did you mean --from?)"
    );
    let df = parse("from alpine as Build\nrun true\n").unwrap();
    let Command::From(f) = &df.instructions[0].command else {
        panic!()
    };
    assert_eq!(f.name.as_deref(), Some("build"));
}

#[test]
fn global_args_need_redeclaring_in_a_stage() {
    let df = parse("ARG V=1\nFROM alpine:$V\nWORKDIR /a$V\nARG V\nWORKDIR /b$V\n").unwrap();
    let r = df.resolve(&BTreeMap::new(), None).unwrap();
    assert_eq!(r.stages[0].base, Base::Image("alpine:1".into()));
    let dirs: Vec<String> = r.stages[0]
        .instructions
        .iter()
        .filter_map(|i| match &i.instruction.command {
            Command::Workdir(w) => Some(w.path.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(dirs, ["/a", "/b1"]);
    let r = df.resolve(&args(&[("V", "2")]), None).unwrap();
    assert_eq!(r.stages[0].base, Base::Image("alpine:2".into()));
}

#[test]
fn env_is_visible_to_later_instructions_and_child_stages() {
    let df =
        parse("FROM scratch AS base\nENV A=1 B=$A\nENV C=$A$B\nFROM base\nWORKDIR /$C\nRUN true\n")
            .unwrap();
    let r = df.resolve(&BTreeMap::new(), None).unwrap();
    let env = &r.stages[1].env;
    assert!(
        env.contains(&("B".into(), "".into())),
        "B sees A only after the ENV: {env:?}"
    );
    assert!(env.contains(&("C".into(), "1".into())));
    let Command::Workdir(w) = &r.stages[1].instructions[0].instruction.command else {
        panic!()
    };
    assert_eq!(w.path, "/1");
    let run_env = r.stages[1].instructions[1].env.as_ref().unwrap().vars();
    assert_eq!(
        run_env.iter().find(|(k, _)| k == "PATH").unwrap().1,
        strata_dockerfile::DEFAULT_PATH
    );
}

#[test]
fn build_args_override_defaults_and_arg_values_reach_run_only() {
    let df = parse("FROM a\nARG X=default\nARG Y\nRUN echo\n").unwrap();
    let r = df
        .resolve(
            &args(&[
                ("X", "given"),
                ("HTTP_PROXY", "http://proxy:3128"),
                ("Z", "z"),
            ]),
            None,
        )
        .unwrap();
    let s = &r.stages[0];
    let env = s.instructions[2].env.as_ref().unwrap().vars();
    assert!(env.contains(&("X".into(), "given".into())));
    assert!(
        !env.iter().any(|(k, _)| k == "Y"),
        "an ARG without value is unset"
    );
    assert!(env.contains(&("HTTP_PROXY".into(), "http://proxy:3128".into())));
    assert!(
        !s.env.iter().any(|(k, _)| k == "X"),
        "ARG is not image config env"
    );
    assert_eq!(r.unused_build_args, ["Z"]);
}

#[test]
fn base_image_env_feeds_expansion() {
    let df = parse("FROM golang:1.23\nENV PATH=/app/bin:$PATH\nWORKDIR $GOPATH/src\n").unwrap();
    let mut opts = ResolveOptions::default();
    opts.base_env.insert(
        "golang:1.23".into(),
        vec![
            ("PATH".into(), "/usr/local/go/bin:/usr/bin".into()),
            ("GOPATH".into(), "/go".into()),
        ],
    );
    let r = df.resolve_with(&opts).unwrap();
    let s = &r.stages[0];
    assert_eq!(
        s.env[0],
        ("PATH".into(), "/app/bin:/usr/local/go/bin:/usr/bin".into())
    );
    let Command::Workdir(w) = &s.instructions[1].instruction.command else {
        panic!()
    };
    assert_eq!(w.path, "/go/src");
}

#[test]
fn stages_targets_and_dependencies() {
    let text = "\
ARG REG=registry.example.com
FROM $REG/base:1 AS base
FROM golang:1.23 AS build
COPY --from=base /etc/passwd /tmp/
COPY --from=registry.example.com/tools/x:2 /x /x
RUN --mount=type=bind,from=alpine:3.20,target=/a --mount=type=cache,target=/c true
FROM scratch AS out
COPY --from=build /out /
FROM base AS other
";
    let df = parse(text).unwrap();
    let deps = df.dependencies(&BTreeMap::new()).unwrap();
    let got: Vec<(&str, DependencyKind, usize, usize)> = deps
        .iter()
        .map(|d| (d.reference.as_str(), d.kind, d.line, d.stage))
        .collect();
    assert_eq!(
        got,
        [
            ("registry.example.com/base:1", DependencyKind::From, 2, 0),
            ("golang:1.23", DependencyKind::From, 3, 1),
            (
                "registry.example.com/tools/x:2",
                DependencyKind::CopyFrom,
                5,
                1
            ),
            ("alpine:3.20", DependencyKind::MountFrom, 6, 1),
        ]
    );
    let r = df.resolve(&BTreeMap::new(), Some("out")).unwrap();
    assert_eq!(r.target, 2);
    assert_eq!(r.stages[2].base, Base::Scratch);
    assert_eq!(r.stages[3].base, Base::Stage(0));
    let needed: Vec<bool> = r.stages.iter().map(|s| s.needed).collect();
    assert_eq!(needed, [true, true, true, false]);
    let r = df.resolve(&BTreeMap::new(), None).unwrap();
    assert_eq!(r.target, 3);
    let needed: Vec<bool> = r.stages.iter().map(|s| s.needed).collect();
    assert_eq!(needed, [true, false, false, true]);
}

#[test]
fn heredoc_forms() {
    let text = "FROM a\nARG N=x\nRUN <<EOF\n#!/bin/sh\necho $N\nEOF\nRUN python3 <<'PY' && cat <<-T\nprint(1)\nPY\n\tt\n\tT\nCOPY <<EOF <<'RAW' /d/\n$N\nEOF\n$N\nRAW\n";
    let df = parse(text).unwrap();
    let Command::Run(r1) = &df.instructions[2].command else {
        panic!()
    };
    assert_eq!(
        r1.script(),
        RunScript::ShebangFile {
            name: "EOF".into(),
            content: "#!/bin/sh\necho $N\n".into()
        }
    );
    let Command::Run(r2) = &df.instructions[3].command else {
        panic!()
    };
    assert_eq!(r2.heredocs.len(), 2);
    assert!(!r2.heredocs[0].expand && r2.heredocs[1].chomp);
    assert_eq!(
        r2.script(),
        RunScript::Shell("python3 <<'PY' && cat <<-T\nprint(1)\nPY\n\tt\nT".into())
    );
    assert_eq!(
        (df.instructions[3].start_line, df.instructions[3].end_line),
        (7, 11)
    );
    let r = df.resolve(&BTreeMap::new(), None).unwrap();
    let Command::Copy(c) = &r.stages[0].instructions[3].instruction.command else {
        panic!()
    };
    assert_eq!(
        c.sources,
        [
            Source::Heredoc {
                name: "EOF".into(),
                content: "x\n".into(),
                expand: true
            },
            Source::Heredoc {
                name: "RAW".into(),
                content: "$N\n".into(),
                expand: false
            },
        ]
    );
    // a JSON-form RUN never has heredocs
    let df = parse("FROM a\nRUN [\"sh\", \"-c\", \"cat <<EOF\"]\nRUN true\n").unwrap();
    assert_eq!(df.instructions.len(), 3);
}

#[test]
fn onbuild_keeps_its_trigger_unexpanded() {
    let df = parse("FROM a\nARG X=1\nONBUILD COPY --chown=$X . /app\n").unwrap();
    let r = df.resolve(&BTreeMap::new(), None).unwrap();
    let Command::Onbuild(o) = &r.stages[0].instructions[1].instruction.command else {
        panic!()
    };
    assert_eq!(o.expression, "COPY --chown=$X . /app");
    let Command::Copy(c) = &o.trigger.as_ref().unwrap().command else {
        panic!()
    };
    assert_eq!(c.chown.as_deref(), Some("$X"));
}

#[test]
fn json_and_shell_forms() {
    let df = parse("FROM a\nCMD [\"a\", \"b c\"]\nCMD [\"unterminated\"\nENTRYPOINT []\nVOLUME /a /b\nVOLUME [\"/c d\"]\nCOPY [\"a b\", \"/c d/\"]\n").unwrap();
    let cmds: Vec<String> = df.instructions[1..]
        .iter()
        .map(|i| i.command.to_string())
        .collect();
    assert_eq!(
        cmds,
        [
            "CMD [\"a\",\"b c\"]",
            "CMD [\"unterminated\"",
            "ENTRYPOINT []",
            "VOLUME [\"/a\",\"/b\"]",
            "VOLUME [\"/c d\"]",
            "COPY \"a b\" \"/c d/\"",
        ]
    );
}

#[test]
fn error_columns_point_at_the_fault() {
    let e = parse("FROM a\n  COPY --chown=1 \\\n     --bogus a b\n").unwrap_err();
    assert_eq!((e.line(), e.column()), (3, 6));
    assert_eq!(e.instruction(), Some("COPY"));
    let e = parse("FROM a\nRUN --mount=type=cache,uid=x true\n")
        .and_then(|d| d.resolve(&BTreeMap::new(), None))
        .unwrap_err();
    assert_eq!(e.to_string(), "2:5: RUN: invalid value x for uid");
}

#[test]
fn mounts_expand_with_the_stage_environment() {
    let df =
        parse("FROM a\nARG UID=1000\nRUN --mount=type=cache,target=/c,uid=$UID,id=c-${UID} true\n")
            .unwrap();
    let Command::Run(raw) = &df.instructions[2].command else {
        panic!()
    };
    assert_eq!(raw.mounts[0].uid, None, "not known before resolution");
    let r = df.resolve(&args(&[("UID", "33")]), None).unwrap();
    let Command::Run(run) = &r.stages[0].instructions[1].instruction.command else {
        panic!()
    };
    assert_eq!(run.mounts[0].uid, Some(33));
    assert_eq!(run.mounts[0].id.as_deref(), Some("c-33"));
}

#[test]
fn crlf_and_byte_order_mark() {
    let df = parse(
        "\u{feff}# escape=`\r\nFROM a\r\nRUN echo a `\r\n  b\r\nCOPY <<EOF /x\r\nline\r\nEOF\r\n",
    )
    .unwrap();
    assert_eq!(df.directives.escape, '`');
    assert_eq!(run_text(&df.instructions[1].command), "echo a   b");
    let Command::Copy(c) = &df.instructions[2].command else {
        panic!()
    };
    // heredoc bodies are kept byte for byte, as BuildKit keeps them
    assert_eq!(
        c.sources,
        [Source::Heredoc {
            name: "EOF".into(),
            content: "line\r\n".into(),
            expand: true
        }]
    );
}

#[test]
fn mount_from_a_later_stage_is_an_error() {
    let e = parse("FROM a AS one\nRUN --mount=from=two,target=/t true\nFROM b AS two\n")
        .and_then(|d| d.resolve(&BTreeMap::new(), Some("one")))
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "2:18: RUN: cannot mount from stage \"two\", stage needs to be defined before current command"
    );
}

#[test]
fn windows_stages_get_no_default_path() {
    let df = parse("FROM --platform=windows/amd64 mcr.microsoft.com/windows/nanoserver:ltsc2022\nFROM scratch\n").unwrap();
    let r = df.resolve(&BTreeMap::new(), None).unwrap();
    assert!(r.stages[0].env.is_empty());
    assert_eq!(
        r.stages[1].env,
        [(
            "PATH".to_string(),
            strata_dockerfile::DEFAULT_PATH.to_string()
        )]
    );
    let opts = ResolveOptions {
        platform: Some("windows/amd64".into()),
        ..ResolveOptions::default()
    };
    let r = df.resolve_with(&opts).unwrap();
    assert!(r.stages[1].env.is_empty());
}

#[test]
fn failures_in_stages_the_target_does_not_need_are_warnings() {
    let text = "FROM alpine:3.20 AS release\nWORKDIR /${VERSION:?set VERSION for releases}\nFROM alpine:3.20 AS dev\nRUN true\n";
    let df = parse(text).unwrap();
    let r = df.resolve(&BTreeMap::new(), Some("dev")).unwrap();
    assert!(!r.stages[0].needed);
    assert_eq!(r.warnings.len(), 1);
    assert_eq!(r.warnings[0].line, 2);
    assert!(
        r.warnings[0]
            .message
            .contains("VERSION: set VERSION for releases"),
        "{:?}",
        r.warnings
    );
    let Command::Workdir(w) = &r.stages[0].instructions[0].instruction.command else {
        panic!()
    };
    assert_eq!(
        w.path, "/${VERSION:?set VERSION for releases}",
        "kept unexpanded"
    );
    // the same stage as target fails
    let e = df.resolve(&BTreeMap::new(), Some("release")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "2:9: WORKDIR: failed to process \"/${VERSION:?set VERSION for releases}\": VERSION: set VERSION for releases"
    );
    // BuildKit checks stage indexes and --from variables in every stage
    let df = parse("FROM a AS x\nCOPY --from=7 /a /a\nFROM b\n").unwrap();
    assert_eq!(
        df.resolve(&BTreeMap::new(), None).unwrap_err().to_string(),
        "2:13: COPY: invalid stage index 7: the Dockerfile has 2 stages"
    );
}

#[test]
fn dependencies_survive_failures_in_unneeded_stages() {
    let text = "FROM alpine:3.20 AS tools\nRUN --mount=from=registry.example.com/wp-cli:2,target=/w,uid=$NOPE true\nFROM alpine:3.20\n";
    let df = parse(text).unwrap();
    let deps: Vec<String> = df
        .dependencies(&BTreeMap::new())
        .unwrap()
        .into_iter()
        .map(|d| d.reference)
        .collect();
    assert_eq!(
        deps,
        [
            "alpine:3.20",
            "registry.example.com/wp-cli:2",
            "alpine:3.20"
        ]
    );
}
