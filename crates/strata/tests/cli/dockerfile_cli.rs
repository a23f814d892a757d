//! `strata dockerfile parse`: text and JSON output, build args, targets, and errors.

use assert_cmd::Command;
use predicates::prelude::*;

const DOCKERFILE: &str = "\
ARG REGISTRY=registry.example.com
FROM ${REGISTRY}/ops/corebuild:2.1 AS base
ARG VERSION=dev
RUN echo building $VERSION \\
    && true

FROM golang:1.23 AS build
COPY --from=registry.example.com/tools/x:1 /x /x

FROM base
COPY --from=build /out /app
ENV APP_VERSION=$VERSION
CMD [\"/app/server\"]
";

fn write(dir: &tempfile::TempDir, text: &str) -> std::path::PathBuf {
    let path = dir.path().join("Dockerfile");
    std::fs::write(&path, text).unwrap();
    path
}

fn strata() -> Command {
    Command::cargo_bin("strata").unwrap()
}

#[test]
fn text_lists_stages_instructions_and_images() {
    let dir = tempfile::tempdir().unwrap();
    write(&dir, DOCKERFILE);
    strata()
        .current_dir(dir.path())
        .args(["dockerfile", "parse", "Dockerfile"])
        .assert()
        .success()
        .stdout(predicate::str::contains("Dockerfile: 3 stage(s), target 2"))
        .stdout(predicate::str::contains(
            "stage 0 base: FROM registry.example.com/ops/corebuild:2.1 AS base",
        ))
        .stdout(predicate::str::contains(
            "    4-5  RUN echo building $VERSION",
        ))
        .stdout(predicate::str::contains(
            "registry.example.com/tools/x:1  (COPY --from, line 8, stage 1)",
        ))
        .stdout(predicate::str::contains("stage 2: FROM base (stage 0)"));
}

#[test]
fn json_document_with_build_args_and_target() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, DOCKERFILE);
    let out = strata()
        .args([
            "dockerfile",
            "parse",
            "--json",
            "--build-arg",
            "REGISTRY=mirror.local:5000",
        ])
        .args(["--build-arg", "VERSION=1.2", "--target", "base"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["schema"], "strata.dockerfile/v2");
    assert_eq!(doc["target"], 0);
    let stages = doc["stages"].as_array().unwrap();
    assert_eq!(stages.len(), 3);
    assert_eq!(
        stages[0]["base"]["image"],
        "mirror.local:5000/ops/corebuild:2.1"
    );
    assert_eq!(stages[0]["needed"], true);
    assert_eq!(stages[2]["needed"], false);
    let run = &stages[0]["instructions"][1];
    assert_eq!(run["instruction"], "RUN");
    assert_eq!(run["start_line"], 4);
    assert_eq!(run["end_line"], 5);
    assert_eq!(
        run["original"],
        "RUN echo building $VERSION \\\n    && true"
    );
    // the RUN's environment is an entry of `run_envs`, a delta over its parent's
    let mut vars = Vec::new();
    let mut id = run["env"].as_u64();
    while let Some(i) = id {
        let entry = doc["run_envs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["id"] == i)
            .unwrap();
        vars.extend(entry["vars"].as_array().unwrap().iter().cloned());
        id = entry["parent"].as_u64();
    }
    assert!(vars.contains(&serde_json::json!(["VERSION", "1.2"])));
    let deps: Vec<&str> = doc["dependencies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["reference"].as_str().unwrap())
        .collect();
    assert_eq!(
        deps,
        [
            "mirror.local:5000/ops/corebuild:2.1",
            "golang:1.23",
            "registry.example.com/tools/x:1"
        ]
    );
}

#[test]
fn a_syntax_error_names_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    write(&dir, "FROM alpine:3.20\nCOPY --form=build /out /app\n");
    strata()
        .current_dir(dir.path())
        .args(["dockerfile", "parse", "Dockerfile"])
        .assert()
        .failure()
        .stdout(predicate::str::is_empty())
        .stderr(predicate::str::contains(
            "Dockerfile:2:6: COPY: unknown flag: --form (did you mean --from?)",
        ));
}

#[test]
fn a_resolution_error_and_a_missing_file_fail_too() {
    let dir = tempfile::tempdir().unwrap();
    write(&dir, "FROM alpine:3.20 AS base\n");
    strata()
        .current_dir(dir.path())
        .args(["dockerfile", "parse", "Dockerfile", "--target", "prod"])
        .assert()
        .failure()
        .stderr(predicate::str::contains(
            "Dockerfile:1:1: FROM: target stage \"prod\" could not be found (stages: base)",
        ));
    strata()
        .current_dir(dir.path())
        .args([
            "dockerfile",
            "parse",
            "Dockerfile",
            "--build-arg",
            "NOEQUALS",
        ])
        .assert()
        .failure()
        .stderr(predicate::str::contains(
            "--build-arg \"NOEQUALS\": expected KEY=VALUE",
        ));
    strata()
        .current_dir(dir.path())
        .args(["dockerfile", "parse", "Missing.Dockerfile"])
        .assert()
        .failure()
        .stderr(predicate::str::contains(
            "Missing.Dockerfile: cannot read the Dockerfile",
        ));
}
