//! Snapshot tests over the corpus in `testdata/<case>/`: each `Dockerfile` (with optional
//! `build-args`, one `KEY=VALUE` a line, and `target`) is parsed, resolved and its JSON
//! document compared with `tests/snapshots/corpus__<case>.snap`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use strata_dockerfile::{Document, ResolveOptions, parse};

fn case_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(name)
}

fn build_args(dir: &Path) -> BTreeMap<String, String> {
    let Ok(text) = std::fs::read_to_string(dir.join("build-args")) else {
        return BTreeMap::new();
    };
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let (k, v) = l.split_once('=').expect("build-args lines are KEY=VALUE");
            (k.to_string(), v.to_string())
        })
        .collect()
}

fn snapshot(name: &str) {
    let dir = case_dir(name);
    let text = std::fs::read_to_string(dir.join("Dockerfile")).unwrap();
    let target = std::fs::read_to_string(dir.join("target"))
        .ok()
        .map(|t| t.trim().to_string());
    let df = parse(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
    // pinned platforms keep the snapshots the same on every machine
    let options = ResolveOptions {
        build_args: build_args(&dir),
        target,
        platform: Some("linux/amd64".into()),
        build_platform: Some("linux/amd64".into()),
        ..ResolveOptions::default()
    };
    let resolved = df
        .resolve_with(&options)
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let file = format!("{name}/Dockerfile");
    let doc = Document::new(&file, &df, &resolved);
    insta::assert_json_snapshot!(name, doc);
}

#[test]
fn every_case_has_a_test() {
    let mut dirs: Vec<String> = std::fs::read_dir(case_dir(""))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    dirs.sort();
    assert_eq!(
        dirs,
        [
            "arg-in-from",
            "backtick-escape",
            "corebuild-onbuild",
            "go-multistage",
            "heredocs",
            "java-maven",
            "php-httpd",
            "substitution",
            "wordpress-app"
        ]
    );
}

#[test]
fn arg_in_from() {
    snapshot("arg-in-from");
}

#[test]
fn backtick_escape() {
    snapshot("backtick-escape");
}

#[test]
fn corebuild_onbuild() {
    snapshot("corebuild-onbuild");
}

#[test]
fn go_multistage() {
    snapshot("go-multistage");
}

#[test]
fn heredocs() {
    snapshot("heredocs");
}

#[test]
fn java_maven() {
    snapshot("java-maven");
}

#[test]
fn php_httpd() {
    snapshot("php-httpd");
}

#[test]
fn substitution() {
    snapshot("substitution");
}

#[test]
fn wordpress_app() {
    snapshot("wordpress-app");
}
