//! The parser and resolver never panic, whatever the input: every input gives Ok or Err.
//!
//! `fuzz_mutated_corpus` is the fuzz target of issue 15: it mutates the real Dockerfiles of
//! `testdata/` (insertions of tricky fragments, deletions, duplications, byte flips, line
//! swaps) and runs the parser, the resolver, the JSON document and the expander over each.
//! It is bounded: `STRATA_FUZZ_CASES` cases (default 1500), stopping early after
//! `STRATA_FUZZ_SECONDS` seconds (default 20). `scripts/test` runs it with more cases.

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use strata_dockerfile::shell::Lexer;

fn run(text: &str) {
    if let Ok(df) = strata_dockerfile::parse(text) {
        let _ = df.resolve(&BTreeMap::new(), None);
        let _ = df.resolve(&BTreeMap::new(), Some("x"));
        let _ = df.dependencies(&BTreeMap::new());
        let args: BTreeMap<String, String> = [("A", "a b"), ("HTTP_PROXY", "p"), ("V", "1")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        if let Ok(r) = df.resolve(&args, None) {
            let doc = strata_dockerfile::Document::new("Dockerfile", &df, &r);
            let _ = serde_json::to_string(&doc);
        }
        for i in &df.instructions {
            let _ = i.command.to_string();
            if let strata_dockerfile::Command::Run(r) = &i.command {
                let _ = r.script();
            }
        }
    }
}

/// The expander alone, on every line, both escape characters, with a small environment.
fn expand_lines(text: &str) {
    let env: Vec<(String, String)> = [("a", "x"), ("E", ""), ("P", "/usr/local/bin/a.tar.gz")]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    for line in text.lines() {
        for escape in ['\\', '`'] {
            let lex = Lexer::new(escape);
            let _ = lex.expand(line, &env);
            let _ = lex.expand_words(line, &env);
            let raw = Lexer {
                raw_quotes: true,
                raw_escapes: true,
                skip_unset: true,
                ..lex
            };
            let _ = raw.expand_words(line, &env);
        }
    }
}

/// Fragments that exercise every path: keywords, flags, quotes, heredocs, expansions.
fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("FROM ".to_string()),
        Just("RUN ".to_string()),
        Just("COPY ".to_string()),
        Just("ADD ".to_string()),
        Just("ENV ".to_string()),
        Just("ARG ".to_string()),
        Just("LABEL ".to_string()),
        Just("ONBUILD ".to_string()),
        Just("HEALTHCHECK ".to_string()),
        Just("EXPOSE ".to_string()),
        Just("SHELL ".to_string()),
        Just("CMD ".to_string()),
        Just(" AS ".to_string()),
        Just("--from=".to_string()),
        Just("--mount=type=cache,target=".to_string()),
        Just("--interval=".to_string()),
        Just("<<EOF".to_string()),
        Just("<<-'EOF'".to_string()),
        Just("EOF".to_string()),
        Just("\n".to_string()),
        Just("\t".to_string()),
        Just("\\\n".to_string()),
        Just("`\n".to_string()),
        Just("# escape=`\n".to_string()),
        Just("${A:-".to_string()),
        Just("${A%%".to_string()),
        Just("${A//".to_string()),
        Just("}".to_string()),
        Just("$".to_string()),
        Just("\"".to_string()),
        Just("'".to_string()),
        Just("[\"a\", ".to_string()),
        Just("]".to_string()),
        Just("=".to_string()),
        Just("0".to_string()),
        "[a-z0-9./:_-]{1,8}",
        any::<char>().prop_map(|c| c.to_string()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 2000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn arbitrary_strings(text in any::<String>()) {
        run(&text);
    }

    #[test]
    fn arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = strata_dockerfile::parse_bytes(&bytes);
        run(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn dockerfile_like(parts in proptest::collection::vec(fragment(), 0..60)) {
        let text = format!("FROM a\n{}", parts.concat());
        run(&text);
        run(&parts.concat());
    }
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Whether the fuzz time budget is spent (then the remaining cases do nothing).
fn over_budget() -> bool {
    static START: OnceLock<Instant> = OnceLock::new();
    let start = START.get_or_init(Instant::now);
    start.elapsed() > Duration::from_secs(env_number("STRATA_FUZZ_SECONDS", 20))
}

/// The real Dockerfiles of `testdata/`.
fn corpus() -> &'static [String] {
    static CORPUS: OnceLock<Vec<String>> = OnceLock::new();
    CORPUS.get_or_init(|| {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
        let mut dirs: Vec<_> = std::fs::read_dir(&root)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        dirs.sort();
        let texts: Vec<String> = dirs
            .iter()
            .map(|d| std::fs::read_to_string(d.join("Dockerfile")).unwrap())
            .collect();
        assert!(texts.len() >= 5, "the corpus went missing");
        texts
    })
}

/// One edit of a Dockerfile; positions are taken modulo the text's length.
#[derive(Debug, Clone)]
enum Mutation {
    Insert(usize, String),
    Delete(usize, usize),
    Duplicate(usize, usize),
    Flip(usize, u8),
    SwapLines(usize, usize),
}

/// Fragments that reach the parser's and expander's corners, big ones included.
fn tricky() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => fragment(),
        1 => (1usize..5000).prop_map(|n| format!("{}x{}", "${a:-".repeat(n), "}".repeat(n))),
        1 => (1usize..12_000).prop_map(|n| "[".repeat(n)),
        1 => Just("#!/bin/sh\n# check=skip=all;error=true\n".to_string()),
        1 => Just("ONBUILD ".to_string()),
        1 => Just("COPY --from=0 ".to_string()),
        1 => Just("FROM --platform=linux/amd64 a AS b\n".to_string()),
        1 => Just("@sha256:".to_string()),
        1 => Just("${P##*/}${P%.*}${P//a/b}${E:?x}".to_string()),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => (any::<usize>(), tricky()).prop_map(|(p, f)| Mutation::Insert(p, f)),
        1 => (any::<usize>(), 1usize..40).prop_map(|(p, n)| Mutation::Delete(p, n)),
        1 => (any::<usize>(), 1usize..200).prop_map(|(p, n)| Mutation::Duplicate(p, n)),
        1 => (any::<usize>(), any::<u8>()).prop_map(|(p, b)| Mutation::Flip(p, b)),
        1 => (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
    ]
}

/// The char boundary at or before `pos % (len + 1)`.
fn boundary(text: &str, pos: usize) -> usize {
    let mut p = pos % (text.len() + 1);
    while !text.is_char_boundary(p) {
        p -= 1;
    }
    p
}

fn apply(text: &mut String, m: &Mutation) {
    match m {
        Mutation::Insert(p, f) => {
            let at = boundary(text, *p);
            text.insert_str(at, f);
        }
        Mutation::Delete(p, n) => {
            let a = boundary(text, *p);
            let b = boundary(text, (a + n).min(text.len()));
            text.replace_range(a.min(b)..b.max(a), "");
        }
        Mutation::Duplicate(p, n) => {
            let a = boundary(text, *p);
            let b = boundary(text, (a + n).min(text.len()));
            let piece = text[a.min(b)..b.max(a)].to_string();
            text.insert_str(a.min(b), &piece);
        }
        Mutation::Flip(p, byte) => {
            let a = boundary(text, *p);
            let c = char::from(*byte);
            let end = text[a..].chars().next().map_or(a, |ch| a + ch.len_utf8());
            text.replace_range(a..end, c.encode_utf8(&mut [0; 4]));
        }
        Mutation::SwapLines(i, j) => {
            let mut lines: Vec<&str> = text.split('\n').collect();
            let (i, j) = (i % lines.len(), j % lines.len());
            lines.swap(i, j);
            *text = lines.join("\n");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: u32::try_from(env_number("STRATA_FUZZ_CASES", 1500)).unwrap_or(u32::MAX),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    // Issue 15: a fuzz target over mutated real Dockerfiles (parser, resolver, expander).
    #[test]
    fn fuzz_mutated_corpus(
        which in any::<usize>(),
        mutations in proptest::collection::vec(mutation(), 1..12),
    ) {
        if !over_budget() {
            let corpus = corpus();
            let mut text = corpus[which % corpus.len()].clone();
            for m in &mutations {
                apply(&mut text, m);
            }
            run(&text);
            expand_lines(&text);
        }
    }
}
