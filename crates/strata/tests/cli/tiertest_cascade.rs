//! Tier tests gate `strata build`: an image whose tests fail never becomes current, nothing is
//! built on it, and the failure names the test and the owning team.

#![allow(clippy::print_stderr)]

use std::path::Path;

use assert_cmd::cargo::cargo_bin_cmd;
use serde_json::Value;
use strata_testutil::is_root;

fn strata(dir: &Path) -> assert_cmd::Command {
    let mut cmd = cargo_bin_cmd!("strata");
    cmd.arg("-C").arg(dir);
    cmd
}

const CHAIN: &str = r#"name = "acme"
[teams.operations]
[teams.middleware]
[teams.development]
[[image]]
name = "base"
owner = "operations"
source = { rootfs = "base/rootfs.tar" }
[[image]]
name = "corebuild"
owner = "operations"
context = "corebuild"
test = "corebuild/structure-test.yaml"
[[image]]
name = "php"
owner = "middleware"
context = "php"
[[image]]
name = "app"
owner = "development"
context = "app"
"#;

const CORE_TESTS: &str = r#"schemaVersion: "2.0.0"
commandTests:
  - name: motd readable by the operations user
    command: cat
    args: ["/etc/motd"]
    expectedOutput: ["^Welcome to acme"]
fileContentTests:
  - name: motd
    path: /etc/motd
    expectedContents: ["^Welcome to acme"]
metadataTest:
  labels:
    - key: tier
      value: corebuild
"#;

/// A chain base → corebuild (tested) → php → app; None when this machine cannot run it.
fn chain() -> Option<tempfile::TempDir> {
    if !is_root() {
        assert!(!strata_testutil::in_ci(), "CI runs as root");
        eprintln!("skipping: RUN steps need root");
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("base")).unwrap();
    strata_testutil::busybox_rootfs_tar(&d.join("base/rootfs.tar"))?;
    let files = [
        ("strata.toml", CHAIN),
        (
            "corebuild/Dockerfile",
            "FROM acme/base\nLABEL tier=corebuild\nRUN echo 'Welcome to acme' > /etc/motd\n",
        ),
        ("corebuild/structure-test.yaml", CORE_TESTS),
        (
            "php/Dockerfile",
            "FROM acme/corebuild\nRUN echo php > /php\n",
        ),
        ("app/Dockerfile", "FROM acme/php\nRUN echo app > /app\n"),
    ];
    for (path, content) in files {
        let p = d.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
    Some(dir)
}

fn build(dir: &Path) -> (bool, Value) {
    let out = strata(dir).args(["build", "--json"]).output().unwrap();
    let summary = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON summary ({e}); stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.success(), summary)
}

fn image<'a>(summary: &'a Value, name: &str) -> &'a Value {
    summary["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["image"] == name)
        .unwrap_or_else(|| panic!("{name} not in {summary}"))
}

fn digest_of(dir: &Path, reference: &str) -> Option<String> {
    let out = strata(dir).args(["images", "--json"]).output().unwrap();
    let images: Value = serde_json::from_slice(&out.stdout).unwrap();
    images
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["reference"] == reference)
        .map(|i| i["digest"].as_str().unwrap().to_string())
}

#[test]
fn a_failing_corebuild_test_stops_the_cascade_and_keeps_the_last_good_images() {
    let Some(dir) = chain() else { return };
    let d = dir.path();
    let (ok, first) = build(d);
    assert!(ok, "{first}");
    for name in ["base", "corebuild", "php", "app"] {
        assert_eq!(image(&first, name)["result"], "built", "{first}");
    }
    let good_core = digest_of(d, "localhost/acme/corebuild:latest").unwrap();
    let good_php = digest_of(d, "localhost/acme/php:latest").unwrap();
    assert_eq!(
        digest_of(d, "localhost/acme/corebuild:1").as_deref(),
        Some(good_core.as_str())
    );

    // operations breaks the promise its tests state.
    std::fs::write(
        d.join("corebuild/Dockerfile"),
        "FROM acme/base\nLABEL tier=corebuild\nRUN echo 'maintenance' > /etc/motd\n",
    )
    .unwrap();
    let (ok, second) = build(d);
    assert!(!ok, "a failing tier test fails the build: {second}");
    let core = image(&second, "corebuild");
    assert_eq!(core["result"], "failed", "{second}");
    let message = core["message"].as_str().unwrap();
    assert!(message.contains("tier test failed"), "{message}");
    assert!(message.contains("owner operations"), "{message}");
    assert!(
        message.contains("Command Test: motd readable by the operations user"),
        "{message}"
    );
    assert!(
        message.contains(&format!(
            "localhost/acme/corebuild:latest stays on {good_core}"
        )),
        "{message}"
    );
    assert_eq!(image(&second, "php")["result"], "skipped");
    assert_eq!(image(&second, "php")["because"], "parent corebuild failed");
    assert_eq!(image(&second, "app")["result"], "skipped");

    // The last good images stay current; the failed build got no tag and no number.
    assert_eq!(
        digest_of(d, "localhost/acme/corebuild:latest").as_deref(),
        Some(good_core.as_str())
    );
    assert_eq!(
        digest_of(d, "localhost/acme/php:latest").as_deref(),
        Some(good_php.as_str())
    );
    assert_eq!(digest_of(d, "localhost/acme/corebuild:2"), None);
    strata(d)
        .args(["run", "acme/corebuild", "--", "cat", "/etc/motd"])
        .assert()
        .success()
        .stdout("Welcome to acme\n");

    // The text summary names the owner; the log records the test results.
    let out = strata(d).arg("build").output().unwrap();
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines().any(|l| l.starts_with("corebuild")
            && l.contains("operations")
            && l.contains("FAILED")),
        "{text}"
    );
    let log = strata(d).arg("log").output().unwrap();
    let log = String::from_utf8_lossy(&log.stdout);
    assert!(log.contains("operations tested corebuild"), "{log}");
    assert!(
        log.lines()
            .any(|l| l.contains("operations FAILED the tests of corebuild")
                && l.contains("Command Test: motd readable by the operations user")),
        "{log}"
    );
    let events = strata(d).args(["log", "--json"]).output().unwrap();
    let events: Value = serde_json::from_slice(&events.stdout).unwrap();
    let failed_test = events
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "test" && e["result"] == "failed")
        .expect("a failed test event");
    assert_eq!(failed_test["team"], "operations");
    assert_eq!(failed_test["detail"]["failed"], 2, "{failed_test}");
    assert_eq!(failed_test["detail"]["passed"], 1, "{failed_test}");

    // `strata test` finds the chain image's test file by itself, and the current image passes.
    strata(d)
        .args(["test", "corebuild"])
        .assert()
        .success()
        .stdout(predicates::str::contains("3 passed, 0 failed"));

    // Fixed: the cascade goes on from corebuild.
    std::fs::write(
        d.join("corebuild/Dockerfile"),
        "FROM acme/base\nLABEL tier=corebuild\nRUN echo 'Welcome to acme, patched' > /etc/motd\n",
    )
    .unwrap();
    let (ok, third) = build(d);
    assert!(ok, "{third}");
    assert_eq!(image(&third, "corebuild")["result"], "built");
    assert_eq!(image(&third, "corebuild")["number"], 2);
    assert_eq!(image(&third, "app")["result"], "built");
    assert_ne!(
        digest_of(d, "localhost/acme/corebuild:latest").as_deref(),
        Some(good_core.as_str())
    );
}
