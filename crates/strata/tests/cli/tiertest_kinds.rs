//! Tier tests (`strata test`): every kind of container-structure-test test, passing and failing,
//! against an image built FROM a busybox base; reports in text, JSON and JUnit; located errors.

#![allow(clippy::print_stderr)]

use std::path::PathBuf;

use assert_cmd::cargo::cargo_bin_cmd;
use serde_json::Value;
use strata_testutil::is_root;

/// A temp dir with a store holding `acme/base` (busybox) and `acme/app` on top of it.
struct Env {
    dir: tempfile::TempDir,
}

const APP: &str = r#"FROM acme/base
RUN echo hello > /greeting && chmod 4755 /greeting \
 && mkdir -p /usr/share/doc/good /usr/share/doc/bad /data \
 && echo "License: GPL-2+" > /usr/share/doc/good/copyright \
 && echo "Licensed under the Affero GPL (AGPL-3)" > /usr/share/doc/bad/copyright \
 && echo secret > /home/notes && chown 33:33 /home/notes && chmod 0640 /home/notes \
 && ln -s /greeting /home/link
ENV APP_HOME=/srv GREETING=hello
EXPOSE 80 443/udp
VOLUME /data
LABEL tier=app org.example.version=1.2.3
WORKDIR /srv
USER www-data
CMD ["/bin/sh"]
"#;

impl Env {
    fn new() -> Option<Env> {
        if !is_root() {
            assert!(!strata_testutil::in_ci(), "CI runs as root");
            eprintln!("skipping: command tests need root (overlay mounts and namespaces)");
            return None;
        }
        let env = Env {
            dir: tempfile::tempdir().unwrap(),
        };
        let base = env.path("base");
        std::fs::create_dir_all(&base).unwrap();
        strata_testutil::busybox_rootfs_tar(&base.join("rootfs.tar"))?;
        std::fs::write(
            base.join("Dockerfile"),
            "FROM scratch\nADD rootfs.tar /\nENV PATH=/bin\nCMD [\"/bin/sh\"]\n",
        )
        .unwrap();
        env.strata()
            .args(["build-image", "base", "-t", "acme/base"])
            .assert()
            .success();
        std::fs::create_dir_all(env.path("app")).unwrap();
        std::fs::write(env.path("app/Dockerfile"), APP).unwrap();
        env.strata()
            .args(["build-image", "app", "-t", "acme/app"])
            .assert()
            .success();
        Some(env)
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn strata(&self) -> assert_cmd::Command {
        let mut cmd = cargo_bin_cmd!("strata");
        cmd.arg("--store")
            .arg(self.path("store"))
            .current_dir(self.dir.path());
        cmd
    }

    /// `strata test acme/app --config NAME --format json` with `yaml`: (exit ok, report).
    fn test_json(&self, name: &str, yaml: &str) -> (bool, Value) {
        std::fs::write(self.path(name), yaml).unwrap();
        let out = self
            .strata()
            .args(["test", "acme/app", "--format", "json", "--config", name])
            .output()
            .unwrap();
        let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "no JSON report ({e}); stderr: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (out.status.success(), report)
    }
}

/// (name → (pass, errors joined)) of a JSON report.
fn verdicts(report: &Value) -> Vec<(String, bool, String)> {
    report["Results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let errors: Vec<String> = r["Errors"]
                .as_array()
                .map(|a| a.iter().map(|e| e.as_str().unwrap().to_string()).collect())
                .unwrap_or_default();
            (
                r["Name"].as_str().unwrap().to_string(),
                r["Pass"].as_bool().unwrap(),
                errors.join("\n"),
            )
        })
        .collect()
}

const PASSING: &str = r#"schemaVersion: "2.0.0"
globalEnvVars:
  - key: TARGET
    value: "world from $APP_HOME"
commandTests:
  - name: output, error and exit code
    command: sh
    args: ["-c", "echo hi $TARGET; echo warning >&2; exit 3"]
    expectedOutput: ["^hi world from /srv\n$"]
    excludedOutput: ["bye"]
    expectedError: ["warn"]
    excludedError: ["fatal"]
    exitCode: 3
  - name: setup changes are seen, envVars are set
    setup: [["touch", "/tmp/made-by-setup"], ["sh", "-c", "echo two >> /tmp/made-by-setup"]]
    teardown: [["rm", "/tmp/made-by-setup"]]
    envVars:
      - key: EXTRA
        value: "extra-$GREETING"
    command: sh
    args: ["-c", "cat /tmp/made-by-setup; env"]
    expectedOutput: ["(?m)^two$", "(?m)^EXTRA=extra-hello$", "(?m)^TARGET=world from /srv$"]
  - name: runs as the image's user in its workdir
    command: sh
    args: ["-c", "id -u; pwd"]
    expectedOutput: ["^33\n/srv\n$"]
fileExistenceTests:
  - name: setuid file
    path: /greeting
    shouldExist: true
    permissions: "urwxr-xr-x"
    uid: 0
    gid: 0
    isExecutableBy: other
  - name: owned file
    path: /home/notes
    permissions: "-rw-r-----"
    uid: 33
    gid: 33
  - name: symlink itself
    path: /home/link
    permissions: "Lrwxrwxrwx"
  - name: sticky tmp
    path: /tmp
    permissions: "dtrwxrwxrwx"
    isExecutableBy: any
  - name: path from the environment
    path: $APP_HOME
  - name: absent
    path: /etc/shadow
    shouldExist: false
fileContentTests:
  - name: greeting
    path: /greeting
    expectedContents: ["^hello\n$"]
    excludedContents: ["bye"]
  - name: through a symlink
    path: /home/link
    expectedContents: ["hello"]
  - name: passwd
    path: /etc/passwd
    expectedContents: ["(?m)^www-data:x:33:33:"]
metadataTest:
  envVars:
    - key: APP_HOME
      value: /srv
    - key: PATH
      value: "^/bin$"
      isRegex: true
  unboundEnvVars:
    - key: TARGET
  labels:
    - key: tier
      value: app
    - key: org.example.version
      value: '^\d+\.\d+\.\d+$'
      isRegex: true
  entrypoint: []
  cmd: ["/bin/sh"]
  exposedPorts: ["80", "443"]
  unexposedPorts: ["22"]
  volumes: ["/data"]
  unmountedVolumes: ["/srv"]
  workdir: /srv
  user: www-data
licenseTests:
  - debian: false
    files: ["/usr/share/doc/good/copyright"]
"#;

#[test]
fn every_kind_passes() {
    let Some(env) = Env::new() else { return };
    let (ok, report) = env.test_json("pass.yaml", PASSING);
    let verdicts = verdicts(&report);
    for (name, pass, errors) in &verdicts {
        assert!(pass, "{name} failed: {errors}");
    }
    assert!(ok, "{report}");
    assert_eq!(report["Total"], 14);
    assert_eq!(report["Pass"], 14);
    // container-structure-test's order: command, file content, file existence, license, metadata.
    let names: Vec<&str> = verdicts.iter().map(|(n, _, _)| n.as_str()).collect();
    assert_eq!(names[0], "Command Test: output, error and exit code");
    assert_eq!(names[3], "File Content Test: greeting");
    assert_eq!(names[6], "File Existence Test: setuid file");
    assert_eq!(names[12], "License Test");
    assert_eq!(names[13], "Metadata Test");
    // The command's output is in the report.
    assert_eq!(report["Results"][0]["Stdout"], "hi world from /srv\n");
    assert_eq!(report["Results"][0]["Stderr"], "warning\n");
}

const FAILING: &str = r#"schemaVersion: "2.0.0"
commandTests:
  - name: wrong output and code
    command: sh
    args: ["-c", "echo hi; echo oops >&2"]
    expectedOutput: ["bye"]
    excludedOutput: ["hi"]
    expectedError: ["fine"]
    excludedError: ["oops"]
    exitCode: 1
  - name: failing setup
    setup: [["sh", "-c", "exit 7"]]
    command: "true"
  - name: no such command
    command: /bin/not-there
fileExistenceTests:
  - name: missing
    path: /etc/motd
  - name: present
    path: /greeting
    shouldExist: false
  - name: wrong mode and owners
    path: /home/notes
    permissions: "-rwxr-xr-x"
    uid: 0
    gid: 1
    isExecutableBy: owner
fileContentTests:
  - name: wrong content
    path: /greeting
    expectedContents: ["^bye"]
    excludedContents: ["hel+o"]
  - name: not a file
    path: /tmp
    expectedContents: ["x"]
  - name: no such file
    path: /nowhere
metadataTest:
  envVars:
    - key: APP_HOME
      value: /opt
    - key: MISSING
      value: x
  unboundEnvVars:
    - key: GREETING
  labels:
    - key: tier
      value: "^z"
      isRegex: true
  entrypoint: ["/bin/sh"]
  cmd: ["/bin/bash"]
  exposedPorts: ["8080"]
  unexposedPorts: ["80"]
  volumes: ["/srv"]
  unmountedVolumes: ["/data"]
  workdir: /app
  user: root
licenseTests:
  - debian: true
"#;

#[test]
fn every_kind_fails_with_its_reason() {
    let Some(env) = Env::new() else { return };
    let (ok, report) = env.test_json("fail.yaml", FAILING);
    assert!(!ok, "a failing test exits non-zero");
    let verdicts = verdicts(&report);
    assert_eq!(report["Fail"], 11, "{report}");
    for (name, pass, _) in &verdicts {
        assert!(!pass, "{name} should fail");
    }
    let errors = |name: &str| -> String {
        verdicts
            .iter()
            .find(|(n, _, _)| n == name)
            .unwrap_or_else(|| panic!("no result {name}"))
            .2
            .clone()
    };
    let command = errors("Command Test: wrong output and code");
    for want in [
        "Expected string 'bye' not found in output 'hi\n'",
        "Excluded string 'hi' found in output 'hi\n'",
        "Expected string 'fine' not found in error 'oops\n'",
        "Excluded string 'oops' found in error 'oops\n'",
        "exited with incorrect error code. Expected: 1, Actual: 0",
    ] {
        assert!(command.contains(want), "{want:?} missing from {command}");
    }
    assert!(
        errors("Command Test: failing setup").starts_with("error in setup:"),
        "{}",
        errors("Command Test: failing setup")
    );
    let missing = errors("Command Test: no such command");
    assert!(!missing.is_empty());
    assert_eq!(
        errors("File Existence Test: missing"),
        "File /etc/motd should exist but does not"
    );
    assert_eq!(
        errors("File Existence Test: present"),
        "File /greeting should not exist but does"
    );
    assert_eq!(
        errors("File Existence Test: wrong mode and owners"),
        "/home/notes has incorrect permissions. Expected: -rwxr-xr-x, Actual: -rw-r-----\n\
         /home/notes has incorrect executable bit. Expected to be executable by owner, Actual: -rw-r-----\n\
         /home/notes has incorrect user ownership. Expected: 0, Actual: 33\n\
         /home/notes has incorrect group ownership. Expected: 1, Actual: 33"
    );
    assert_eq!(
        errors("File Content Test: wrong content"),
        "Expected string '^bye' not found in file content string 'hello\n'\n\
         Excluded string 'hel+o' found in file content string 'hello\n'"
    );
    assert!(errors("File Content Test: not a file").contains("/tmp is a directory"));
    assert!(errors("File Content Test: no such file").contains("no such file"));
    let metadata = errors("Metadata Test");
    for want in [
        "env var APP_HOME value /srv does not match expected value: /opt",
        "variable MISSING not found in image env",
        "env variable GREETING should not be present in image metadata",
        "label tier value app does not match expected value: ^z",
        "Image entrypoint [] does not match expected entrypoint: [\"/bin/sh\"]",
        "Image Cmd [\"/bin/sh\"] does not match expected Cmd: [\"/bin/bash\"]",
        "Port 8080 not found in config",
        "Port 80 should not be exposed",
        "Volume /srv not found in config",
        "Volume /data should not be mounted",
        "Image workdir /srv does not match config workdir: /app",
        "Image user www-data does not match config user: root",
    ] {
        assert!(metadata.contains(want), "{want:?} missing from {metadata}");
    }
    assert_eq!(
        errors("License Test"),
        "Invalid license for /usr/share/doc/bad/copyright, license contains AGPL"
    );
}

#[test]
fn text_and_junit_reports() {
    let Some(env) = Env::new() else { return };
    let yaml = "schemaVersion: '2.0.0'\nfileExistenceTests:\n  - name: sh\n    path: /bin/sh\n  - name: motd\n    path: /etc/motd\n";
    std::fs::write(env.path("t.yaml"), yaml).unwrap();
    let out = env
        .strata()
        .args(["test", "acme/app", "--config", "t.yaml"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("  PASS  File Existence Test: sh"), "{text}");
    assert!(text.contains("  FAIL  File Existence Test: motd"), "{text}");
    assert!(
        text.contains("- File /etc/motd should exist but does not"),
        "{text}"
    );
    assert!(text.contains("1 passed, 1 failed (2 tests"), "{text}");
    let out = env
        .strata()
        .args([
            "test", "acme/app", "--config", "t.yaml", "--format", "junit",
        ])
        .output()
        .unwrap();
    let xml = String::from_utf8_lossy(&out.stdout);
    assert!(
        xml.starts_with(
            r#"<?xml version="1.0" encoding="UTF-8"?><testsuites failures="1" tests="2" time=""#
        ),
        "{xml}"
    );
    assert!(xml.contains(r#"<testsuite name="container-structure-test.test"><testcase name="File Existence Test: sh""#), "{xml}");
    assert!(
        xml.contains("<failure>File /etc/motd should exist but does not</failure>"),
        "{xml}"
    );
}

#[test]
fn bad_files_are_located_errors() {
    let Some(env) = Env::new() else { return };
    let cases = [
        (
            "schemaVersion: '2.0.0'\nfileExistenceTests:\n  - name: a\n    path: /a\n    shouldexist: true\n",
            "unknown.yaml:5:5: unknown field `shouldexist`",
        ),
        (
            "schemaVersion: '2.0.0'\nfileContentTests:\n  - name: a\n    path: /a\n    expectedContents: ['a[']\n",
            "regex.yaml:5:24: fileContentTests[0]: invalid regular expression \"a[\"",
        ),
        (
            "schemaVersion: '2.0.0'\ncommandTests:\n  - name: a\n    command: x\n    exitCode: [1]\n",
            "type.yaml:5:15: ",
        ),
    ];
    for (yaml, want) in cases {
        let file = want.split(':').next().unwrap();
        std::fs::write(env.path(file), yaml).unwrap();
        let out = env
            .strata()
            .args(["test", "acme/app", "--config", file])
            .output()
            .unwrap();
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        let located = format!(
            "{}:{}",
            env.path(file).display(),
            want.split_once(':').unwrap().1
        );
        assert!(stderr.contains(&located), "{located:?} not in {stderr}");
    }
}
