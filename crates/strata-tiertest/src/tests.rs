//! File, content and metadata checks against an image written by hand: two layers,
//! whiteouts, symlinks (relative and absolute), a hard link, a setuid file, owners.

use std::collections::BTreeMap;
use std::path::Path;

use strata_oci::tar::{Entry, LayerOptions, Metadata};
use strata_oci::{Compression, Store};

use crate::spec::parse;
use crate::{ImageView, RunOptions, run};

fn meta(mode: u32, uid: u64, gid: u64) -> Metadata {
    Metadata::new(mode, uid, gid)
}

/// A store with `t/img:1`: a lower layer and an upper one that deletes and replaces.
fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::init(dir.path().join("store")).unwrap();
    let options = LayerOptions {
        compression: Compression::Gzip,
        source_date_epoch: 0,
    };
    let mut lower = store.layer_writer(options).unwrap();
    lower
        .append_all(vec![
            Entry::dir("bin", meta(0o755, 0, 0)),
            Entry::file_bytes(
                "bin/tool",
                b"#!/bin/sh\necho tool\n".to_vec(),
                meta(0o4755, 0, 0),
            ),
            Entry::symlink("bin/sh", "tool", meta(0o777, 0, 0)),
            Entry::dir("etc", meta(0o755, 0, 0)),
            Entry::file_bytes(
                "etc/passwd",
                b"root:x:0:0::/root:/bin/sh\n".to_vec(),
                meta(0o644, 0, 0),
            ),
            Entry::file_bytes("etc/old", b"old".to_vec(), meta(0o644, 0, 0)),
            Entry::symlink("etc/alt", "/etc/passwd", meta(0o777, 0, 0)),
            Entry::dir("tmp", meta(0o1777, 0, 0)),
            Entry::dir("home", meta(0o755, 0, 0)),
            Entry::dir("home/app", meta(0o750, 33, 33)),
            Entry::file_bytes("home/app/notes", b"secret\n".to_vec(), meta(0o640, 33, 34)),
            Entry::dir("usr", meta(0o755, 0, 0)),
            Entry::symlink("usr/lib", "/home", meta(0o777, 0, 0)),
            Entry::hardlink("bin/tool2", "bin/tool", meta(0o4755, 0, 0)),
            Entry::dir("usr/share", meta(0o755, 0, 0)),
            Entry::dir("usr/share/doc", meta(0o755, 0, 0)),
            Entry::dir("usr/share/doc/libfine", meta(0o755, 0, 0)),
            Entry::file_bytes(
                "usr/share/doc/libfine/copyright",
                b"MIT".to_vec(),
                meta(0o644, 0, 0),
            ),
            Entry::dir("usr/share/doc/libgnutls30", meta(0o755, 0, 0)),
        ])
        .unwrap();
    let lower = lower.finish().unwrap();
    let mut upper = store.layer_writer(options).unwrap();
    upper
        .append_all(vec![
            Entry::whiteout("etc/old").unwrap(),
            Entry::file_bytes(
                "etc/motd",
                b"Welcome\nto acme\n".to_vec(),
                meta(0o644, 0, 0),
            ),
        ])
        .unwrap();
    let upper = upper.finish().unwrap();
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "Env": ["PATH=/bin", "HOME_DIR=/home/app"],
            "Cmd": ["/bin/sh"],
            "ExposedPorts": {"80/tcp": {}},
            "Volumes": {"/data": {}},
            "WorkingDir": "/home/app",
            "User": "33",
            "Labels": {"tier": "corebuild"},
        },
        "rootfs": {"type": "layers", "diff_ids": [lower.diff_id.to_string(), upper.diff_id.to_string()]},
    });
    let config: strata_oci::ImageConfiguration = serde_json::from_value(config).unwrap();
    let image = store
        .write_image(&config, &[lower.descriptor, upper.descriptor], None)
        .unwrap();
    store.refs().tag("t/img:1", image.descriptor()).unwrap();
    (dir, store)
}

#[test]
fn the_view_merges_layers_and_resolves_links_inside_the_image() {
    let (_dir, store) = store();
    let view = ImageView::open(&store, "t/img:1").unwrap();
    assert!(view.lstat("/etc/old").is_none(), "whited out");
    assert_eq!(view.read_file("/etc/motd").unwrap(), b"Welcome\nto acme\n");
    assert_eq!(
        view.read_file("/etc/alt").unwrap(),
        b"root:x:0:0::/root:/bin/sh\n"
    );
    assert_eq!(view.read_file("bin/sh").unwrap(), b"#!/bin/sh\necho tool\n");
    assert_eq!(
        view.read_file("/bin/tool2").unwrap(),
        b"#!/bin/sh\necho tool\n"
    );
    // A parent symlink is followed inside the image: /usr/lib → /home.
    assert_eq!(view.lstat("/usr/lib/app/notes").unwrap().uid, 33);
    assert!(
        view.read_file("/tmp")
            .unwrap_err()
            .to_string()
            .contains("is a directory")
    );
    assert!(
        view.read_file("/nope")
            .unwrap_err()
            .to_string()
            .contains("no such file")
    );
    let names: Vec<String> = view
        .read_dir("/usr/share/doc")
        .unwrap()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(names, ["libfine", "libgnutls30"]);
    assert_eq!(view.config().config.user.as_deref(), Some("33"));
}

const TESTS: &str = r#"schemaVersion: "2.0.0"
fileExistenceTests:
  - name: setuid tool
    path: /bin/tool
    permissions: "urwxr-xr-x"
    isExecutableBy: other
  - name: link
    path: /bin/sh
    permissions: "Lrwxrwxrwx"
  - name: tmp
    path: /tmp
    permissions: "dtrwxrwxrwx"
  - name: owners through the environment
    path: $HOME_DIR/notes
    uid: 33
    gid: 34
    permissions: "-rw-r-----"
  - name: deleted by the upper layer
    path: /etc/old
    shouldExist: false
  - name: wrong owner
    path: /home/app/notes
    uid: 0
  - name: not executable
    path: /etc/passwd
    isExecutableBy: any
fileContentTests:
  - name: motd
    path: /etc/motd
    expectedContents: ["(?m)^to acme$", "^Welcome"]
    # ^ and $ are the text's ends unless (?m): the first does not match, the second does.
    excludedContents: ["^to acme", "(?m)^to acme$"]
licenseTests:
  - debian: true
    files: ["/etc/motd"]
metadataTest:
  envVars: [{key: PATH, value: /bin}]
  cmd: ["/bin/sh"]
  entrypoint: []
  exposedPorts: ["80"]
  volumes: ["/data"]
  workdir: /home/app
  user: "33"
  labels: [{key: tier, value: "^core", isRegex: true}]
"#;

#[test]
fn checks_pass_and_fail_with_reasons() {
    let (_dir, store) = store();
    let file = parse(Path::new("t.yaml"), TESTS).unwrap();
    let report = run(&store, "t/img:1", &file, &RunOptions::default()).unwrap();
    let verdicts: BTreeMap<String, (bool, Vec<String>)> = report
        .results
        .iter()
        .map(|r| (r.display_name(), (r.pass, r.errors.clone())))
        .collect();
    let failing: Vec<&str> = verdicts
        .iter()
        .filter(|(_, (pass, _))| !pass)
        .map(|(n, _)| n.as_str())
        .collect();
    assert_eq!(
        failing,
        [
            "File Content Test: motd",
            "File Existence Test: not executable",
            "File Existence Test: wrong owner",
        ],
        "{verdicts:?}"
    );
    assert_eq!(
        verdicts["File Existence Test: wrong owner"].1,
        ["/home/app/notes has incorrect user ownership. Expected: 0, Actual: 33"]
    );
    assert_eq!(
        verdicts["File Content Test: motd"].1,
        ["Excluded string '(?m)^to acme$' found in file content string 'Welcome\nto acme\n'"]
    );
    assert_eq!(
        verdicts["File Existence Test: not executable"].1,
        [
            "/etc/passwd has incorrect executable bit. Expected to be executable by any, Actual: -rw-r--r--"
        ]
    );
    // The allow-listed package has no copyright file and is not reported.
    assert!(verdicts["License Test"].0);
    assert!(verdicts["Metadata Test"].0, "{verdicts:?}");
    assert_eq!(report.passed(), 7);
    assert!(!report.success());
}

/// A sandbox that records what it was asked and answers from the setup it saw.
#[derive(Default)]
struct FakeSandbox {
    calls: std::sync::Mutex<Vec<String>>,
}

impl crate::Sandbox for FakeSandbox {
    fn exec(
        &self,
        request: &crate::sandbox::ExecRequest<'_>,
    ) -> Result<crate::sandbox::Captured, crate::SandboxError> {
        self.calls.lock().unwrap().push(format!(
            "exec {} {:?} {:?}",
            request.image, request.argv, request.env
        ));
        Ok(crate::sandbox::Captured {
            code: 3,
            stdout: b"hello from the fake\n".to_vec(),
            stderr: Vec::new(),
        })
    }

    fn build(
        &self,
        request: &crate::sandbox::BuildRequest<'_>,
    ) -> Result<String, crate::SandboxError> {
        let dockerfile = std::fs::read_to_string(request.dockerfile).unwrap();
        self.calls.lock().unwrap().push(format!(
            "build {:?} {:?}",
            dockerfile.lines().collect::<Vec<_>>(),
            request.base_overrides
        ));
        Ok(format!("sha256:{}", "b".repeat(64)))
    }
}

const COMMAND_TESTS: &str = r#"
schemaVersion: 2.0.0
commandTests:
  - name: greets
    setup: [["touch", "/ready"]]
    envVars: [{key: WHO, value: "$HOME_DIR"}]
    command: greet
    args: ["$HOME_DIR"]
    expectedOutput: ["hello from"]
    exitCode: 3
"#;

#[test]
fn command_tests_run_through_the_sandbox_given() {
    let (_dir, store) = store();
    let file = parse(Path::new("t.yaml"), COMMAND_TESTS).unwrap();
    let sandbox = std::sync::Arc::new(FakeSandbox::default());
    let options = RunOptions {
        sandbox: Some(sandbox.clone()),
        ..RunOptions::default()
    };
    let report = run(&store, "t/img:1", &file, &options).unwrap();
    assert!(report.success(), "{:?}", report.first_failure());
    let digest = store
        .refs()
        .resolve("t/img:1")
        .unwrap()
        .digest()
        .to_string();
    let calls = sandbox.calls.lock().unwrap();
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert_eq!(
        calls[0],
        format!(
            "build [\"FROM strata-tiertest-under-test\", \"ARG WHO\", \"RUN [\\\"touch\\\",\\\"/ready\\\"]\"] \
             [(\"strata-tiertest-under-test\", \"localhost/t/img@{digest}\")]"
        )
    );
    assert_eq!(
        calls[1],
        format!(
            "exec localhost/t/img@sha256:{} [\"greet\", \"/home/app\"] [(\"WHO\", \"/home/app\")]",
            "b".repeat(64)
        )
    );
}

#[test]
fn command_tests_without_a_sandbox_are_refused() {
    let (_dir, store) = store();
    let file = parse(Path::new("t.yaml"), COMMAND_TESTS).unwrap();
    let err = run(&store, "t/img:1", &file, &RunOptions::default()).unwrap_err();
    assert!(matches!(err, crate::TierTestError::NoSandbox), "{err}");
}
