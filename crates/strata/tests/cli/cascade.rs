//! `strata build` over a chain: exactly the necessary work, in order, in parallel, on record, and
//! resumable after an interrupt.

#![allow(clippy::print_stderr)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::cargo::cargo_bin_cmd;
use serde_json::Value;

/// A chain directory made by `strata init` (None when this machine cannot run the example).
pub(crate) fn example() -> Option<tempfile::TempDir> {
    strata_testutil::can_build_example()
        .then(|| strata_testutil::init_example(assert_cmd::cargo::cargo_bin!("strata")))
}

fn strata(dir: &Path) -> assert_cmd::Command {
    let mut cmd = cargo_bin_cmd!("strata");
    cmd.arg("-C").arg(dir);
    cmd
}

/// Run `strata build --json ARGS`; returns (success, summary).
pub(crate) fn build(dir: &Path, args: &[&str]) -> (bool, Value) {
    let out = strata(dir)
        .arg("build")
        .arg("--json")
        .args(args)
        .output()
        .unwrap();
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON summary ({e}); stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.success(), summary)
}

/// (image, result) in the summary's order.
fn results(summary: &Value) -> Vec<(String, String)> {
    summary["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["image"].as_str().unwrap().to_string(),
                i["result"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn built(summary: &Value) -> Vec<String> {
    results(summary)
        .into_iter()
        .filter(|(_, r)| r == "built")
        .map(|(i, _)| i)
        .collect()
}

fn append(path: PathBuf, text: &str) {
    let mut content = std::fs::read_to_string(&path).unwrap();
    content.push_str(text);
    std::fs::write(path, content).unwrap();
}

#[test]
fn a_noop_rebuild_does_nothing_and_changes_rebuild_exactly_what_they_affect() {
    let Some(dir) = example() else { return };
    let d = dir.path();
    let (ok, first) = build(d, &[]);
    assert!(ok, "{first}");
    assert_eq!(
        built(&first),
        ["base", "corebuild", "httpd-php", "wordpress"]
    );

    // No-op: nothing is rebuilt, every image is up to date.
    let (ok, second) = build(d, &[]);
    assert!(ok);
    assert!(built(&second).is_empty(), "{second}");
    assert!(results(&second).iter().all(|(_, r)| r == "up-to-date"));

    // An application change rebuilds only the application.
    append(d.join("wordpress/index.php"), "<?php // v2\n");
    let (ok, app) = build(d, &[]);
    assert!(ok);
    assert_eq!(built(&app), ["wordpress"]);

    // An operations patch rebuilds the corebuild and everything above it, in order.
    append(d.join("corebuild/motd"), "patched\n");
    let (ok, patch) = build(d, &[]);
    assert!(ok);
    assert_eq!(built(&patch), ["corebuild", "httpd-php", "wordpress"]);
    let reasons: Vec<String> = patch["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["reasons"].to_string())
        .collect();
    assert!(reasons[1].contains("context changed"), "{reasons:?}");
    assert!(
        reasons[2].contains("parent corebuild rebuilt"),
        "{reasons:?}"
    );
    assert!(
        reasons[3].contains("parent httpd-php rebuilt"),
        "{reasons:?}"
    );

    // Each build got a number; earlier versions stay for rollback and diff.
    let images = strata(d).args(["images", "--json"]).output().unwrap();
    let images: Value = serde_json::from_slice(&images.stdout).unwrap();
    let refs: Vec<&str> = images
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["reference"].as_str().unwrap())
        .collect();
    for r in [
        "localhost/acme/corebuild:1",
        "localhost/acme/corebuild:2",
        "localhost/acme/wordpress:3",
        "localhost/acme/wordpress:6.4",
    ] {
        assert!(refs.contains(&r), "{r} missing from {refs:?}");
    }

    // The log tells the story: who rebuilt what, why, and what it cascaded to.
    let log = strata(d).arg("log").output().unwrap();
    let log = String::from_utf8_lossy(&log.stdout);
    assert!(
        log.lines()
            .any(|l| l.contains("operations rebuilt corebuild")
                && l.contains("context changed")
                && l.contains("cascaded to httpd-php, wordpress")),
        "{log}"
    );
    assert!(log.contains("development rebuilt wordpress"), "{log}");

    // plan and graph agree with the store: everything is up to date now.
    strata(d)
        .arg("graph")
        .assert()
        .success()
        .stdout(predicates::str::contains("up to date"))
        .stdout(predicates::str::contains("never built").not());
}

use predicates::prelude::PredicateBooleanExt;

/// A diamond: two middleware images on one corebuild, an app using both via COPY --from.
fn diamond(dir: &Path, php_run: &str) {
    std::fs::create_dir_all(dir.join("base")).unwrap();
    strata_testutil::busybox_rootfs_tar(&dir.join("base/rootfs.tar")).unwrap();
    let files: &[(&str, String)] = &[
        (
            "strata.toml",
            r#"name = "acme"
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
[[image]]
name = "php"
owner = "middleware"
context = "php"
[[image]]
name = "jvm"
owner = "middleware"
context = "jvm"
[[image]]
name = "app"
owner = "development"
context = "app"
"#
            .to_string(),
        ),
        (
            "corebuild/Dockerfile",
            "FROM acme/base\nRUN echo core > /core\n".to_string(),
        ),
        (
            "php/Dockerfile",
            format!("FROM acme/corebuild\nRUN {php_run}\nRUN echo php > /php\n"),
        ),
        (
            "jvm/Dockerfile",
            "FROM acme/corebuild\nRUN sleep 1 && echo jvm > /jvm\n".to_string(),
        ),
        (
            "app/Dockerfile",
            "FROM acme/php\nCOPY --from=acme/jvm /jvm /jvm\nRUN cat /php /jvm > /app\n".to_string(),
        ),
    ];
    for (path, content) in files {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
}

#[test]
fn a_diamond_builds_its_middle_images_in_parallel() {
    if example().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    diamond(dir.path(), "sleep 1");
    let (ok, summary) = build(dir.path(), &["--jobs", "2"]);
    assert!(ok, "{summary}");
    let order = built(&summary);
    assert_eq!(order.first().map(String::as_str), Some("base"));
    assert_eq!(order.last().map(String::as_str), Some("app"));
    // The events log has each build's start time and duration: php and jvm overlap.
    let log = strata(dir.path()).args(["log", "--json"]).output().unwrap();
    let events: Value = serde_json::from_slice(&log.stdout).unwrap();
    let span = |name: &str| -> (String, i64) {
        let e = events
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["image"] == name && e["result"] == "ok")
            .unwrap();
        (
            e["time"].as_str().unwrap().to_string(),
            e["durationMs"].as_i64().unwrap(),
        )
    };
    let (php_start, php_ms) = span("php");
    let (jvm_start, jvm_ms) = span("jvm");
    let ms = |t: &str| chrono_like_ms(t);
    let (a, b) = (ms(&php_start), ms(&jvm_start));
    assert!(
        a < b + jvm_ms && b < a + php_ms,
        "php [{php_start} +{php_ms}ms] and jvm [{jvm_start} +{jvm_ms}ms] did not overlap"
    );
    // The app really got both parents' files.
    strata(dir.path())
        .args(["run", "acme/app", "--", "cat", "/app"])
        .assert()
        .success()
        .stdout("php\njvm\n");
}

/// Milliseconds since midnight of an RFC 3339 time `YYYY-MM-DDTHH:MM:SS.mmmZ` (same-day spans).
fn chrono_like_ms(t: &str) -> i64 {
    let time = &t[11..23];
    let h: i64 = time[0..2].parse().unwrap();
    let m: i64 = time[3..5].parse().unwrap();
    let s: i64 = time[6..8].parse().unwrap();
    let ms: i64 = time[9..12].parse().unwrap();
    ((h * 60 + m) * 60 + s) * 1000 + ms
}

#[test]
fn a_failing_middleware_image_stops_only_its_descendants() {
    if example().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    diamond(dir.path(), "echo php is broken >&2; exit 3");
    let (ok, summary) = build(dir.path(), &[]);
    assert!(!ok, "the build must fail");
    let results = results(&summary);
    let of = |name: &str| results.iter().find(|(i, _)| i == name).unwrap().1.clone();
    assert_eq!(of("php"), "failed");
    assert_eq!(of("jvm"), "built", "a sibling goes on");
    assert_eq!(of("app"), "skipped");
    let app = summary["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["image"] == "app")
        .unwrap();
    assert_eq!(app["because"], "parent php failed");
    let php = summary["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["image"] == "php")
        .unwrap();
    assert!(
        php["message"].as_str().unwrap().contains("php is broken"),
        "{php}"
    );
    // The text summary names the owners; the exit code is non-zero.
    let out = strata(dir.path()).arg("build").output().unwrap();
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines()
            .any(|l| l.starts_with("php") && l.contains("middleware") && l.contains("FAILED")),
        "{text}"
    );
    // The log records the failure and the skip.
    let log = strata(dir.path()).arg("log").output().unwrap();
    let log = String::from_utf8_lossy(&log.stdout);
    assert!(log.contains("middleware FAILED to build php"), "{log}");
    assert!(log.contains("development skipped app"), "{log}");
    // Retried after a failure, the reason names the failure without repeating it (it used to
    // nest the previous message, growing at every retry); the graph keeps one line per image.
    let (_, again) = build(dir.path(), &[]);
    let php = again["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["image"] == "php")
        .unwrap()
        .clone();
    assert_eq!(
        php["reasons"],
        serde_json::json!(["last build failed"]),
        "{php}"
    );
    assert_eq!(
        php["message"]
            .as_str()
            .unwrap()
            .matches("exited with code 3")
            .count(),
        1,
        "{php}"
    );
    let graph = strata(dir.path()).arg("graph").output().unwrap();
    let graph = String::from_utf8_lossy(&graph.stdout);
    let php_line = graph.lines().find(|l| l.contains("php ")).unwrap();
    assert!(php_line.contains("failed: "), "{graph}");
    assert!(
        !graph.lines().any(|l| l.trim() == "php is broken"),
        "{graph}"
    );
}

/// Put a slow `RUN sleep 30` into httpd-php's Dockerfile, start `strata build` in `d`, and return
/// once that step runs: the child and the Dockerfile (for [`remove_the_slow_step`]).
fn build_until_the_slow_middleware_step(d: &Path) -> (std::process::Child, PathBuf) {
    let dockerfile = d.join("httpd-php/Dockerfile");
    let text = std::fs::read_to_string(&dockerfile).unwrap();
    std::fs::write(
        &dockerfile,
        text.replacen("RUN mkdir", "RUN sleep 30\nRUN mkdir", 1),
    )
    .unwrap();
    let mut child = Command::new(assert_cmd::cargo::cargo_bin!("strata"))
        .arg("-C")
        .arg(d)
        .arg("build")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        let mut seen = Vec::new();
        for line in std::io::BufReader::new(stderr).lines() {
            let line = line.unwrap();
            let slow = line.contains("httpd-php: step") && line.contains("sleep 30");
            seen.push(line);
            if slow {
                return (true, seen);
            }
        }
        (false, seen)
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    while !reader.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let (reached, seen) = reader.join().unwrap();
    assert!(reached, "the slow step never started: {seen:?}");
    (child, dockerfile)
}

/// Take the slow step back out of the Dockerfile.
fn remove_the_slow_step(dockerfile: &Path) {
    let text = std::fs::read_to_string(dockerfile).unwrap();
    std::fs::write(dockerfile, text.replacen("RUN sleep 30\n", "", 1)).unwrap();
}

#[test]
fn an_interrupted_build_resumes_where_it_stopped() {
    let Some(dir) = example() else { return };
    let d = dir.path();
    // Make the middleware tier slow so the interrupt lands inside it.
    let (mut child, dockerfile) = build_until_the_slow_middleware_step(d);
    std::thread::sleep(Duration::from_millis(300));
    nix_kill(child.id(), 2);
    let status = child.wait().unwrap();
    assert!(!status.success(), "an interrupted build exits non-zero");
    assert_eq!(
        strata_testutil::mounts_under(d),
        Vec::<std::path::PathBuf>::new(),
        "the interrupted build left mounts behind"
    );
    // The store is consistent.
    strata(d).args(["store", "fsck"]).assert().success();
    // The next run resumes: finished images are up to date.
    remove_the_slow_step(&dockerfile);
    let (ok, summary) = build(d, &[]);
    assert!(ok, "{summary}");
    let results = results(&summary);
    assert_eq!(
        results,
        [
            ("base".to_string(), "up-to-date".to_string()),
            ("corebuild".to_string(), "up-to-date".to_string()),
            ("httpd-php".to_string(), "built".to_string()),
            ("wordpress".to_string(), "built".to_string()),
        ]
    );
}

fn nix_kill(pid: u32, signal: i32) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn two_builds_at_once_take_turns_and_distinct_build_numbers() {
    let Some(dir) = example() else { return };
    let d = dir.path();
    let (ok, _) = build(d, &[]);
    assert!(ok);
    // Two forced rebuilds of the corebuild started together: the second waits for the first.
    let spawn = || {
        Command::new(assert_cmd::cargo::cargo_bin!("strata"))
            .arg("-C")
            .arg(d)
            .args(["build", "--json", "--force", "corebuild"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let children = [spawn(), spawn()];
    let mut numbers = Vec::new();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
        let core = summary["images"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["image"] == "corebuild")
            .unwrap()
            .clone();
        assert_eq!(core["result"], "built", "{core}");
        numbers.push(core["number"].as_u64().unwrap());
    }
    numbers.sort_unstable();
    assert_eq!(numbers, [2, 3], "each build got its own number");
    let images = strata(d).args(["images", "--json"]).output().unwrap();
    let images = String::from_utf8_lossy(&images.stdout);
    for tag in ["acme/corebuild:2\"", "acme/corebuild:3\""] {
        assert!(images.contains(tag), "{tag} missing: {images}");
    }
}

#[test]
fn dry_run_and_targets() {
    let Some(dir) = example() else { return };
    let d = dir.path();
    let (ok, dry) = build(d, &["--dry-run"]);
    assert!(ok);
    assert!(
        results(&dry).iter().all(|(_, r)| r == "would-build"),
        "{dry}"
    );
    let index = d.join(".strata/store/index.json");
    assert!(
        !index.exists() || !std::fs::read_to_string(&index).unwrap().contains("acme/"),
        "a dry run builds nothing"
    );
    // Naming an image builds it and what it needs, not what is above it.
    let (ok, partial) = build(d, &["httpd-php"]);
    assert!(ok);
    assert_eq!(built(&partial), ["base", "corebuild", "httpd-php"]);
    // --force rebuilds an up-to-date image.
    let (ok, forced) = build(d, &["--force", "corebuild", "corebuild"]);
    assert!(ok);
    assert_eq!(built(&forced), ["corebuild"]);
    // An unknown image is a clear error.
    strata(d)
        .args(["build", "nosuch"])
        .assert()
        .failure()
        .stderr(predicates::str::contains(
            "nosuch: no such image in the chain",
        ));
}

// Issue 14: a SIGKILLed build left no trace in `strata log`. Its start is recorded, and the next
// run marks it interrupted.
#[test]
fn a_killed_build_is_marked_interrupted_by_the_next_run() {
    let Some(dir) = example() else { return };
    let d = dir.path();
    let (mut child, dockerfile) = build_until_the_slow_middleware_step(d);
    nix_kill(child.id(), 9);
    let _ = child.wait().unwrap();
    // A kill -9 mid-step leaves a store that fsck finds clean.
    strata(d).args(["store", "fsck"]).assert().success();
    remove_the_slow_step(&dockerfile);
    let (ok, summary) = build(d, &[]);
    assert!(ok, "{summary}");
    strata(d).args(["store", "fsck"]).assert().success();
    let log = strata(d).args(["log", "--json"]).output().unwrap();
    let events: Value = serde_json::from_slice(&log.stdout).unwrap();
    let interrupted: Vec<&Value> = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "build" && e["result"] == "interrupted")
        .collect();
    assert_eq!(interrupted.len(), 1, "{events}");
    assert_eq!(interrupted[0]["image"], "httpd-php");
    let text = String::from_utf8_lossy(&strata(d).arg("log").output().unwrap().stdout).into_owned();
    assert!(
        text.contains("was INTERRUPTED building httpd-php"),
        "{text}"
    );
}

/// A chain of one-COPY images on a busybox base, no RUN step: `names` each `FROM acme/base`.
fn copy_chain(dir: &Path, names: &[&str]) {
    std::fs::create_dir_all(dir.join("base")).unwrap();
    strata_testutil::busybox_rootfs_tar(&dir.join("base/rootfs.tar")).unwrap();
    let mut toml = String::from(
        "name = \"acme\"\n[teams.ops]\n[[image]]\nname = \"base\"\nowner = \"ops\"\n\
         source = { rootfs = \"base/rootfs.tar\" }\n",
    );
    for name in names {
        let ctx = dir.join(name);
        std::fs::create_dir_all(&ctx).unwrap();
        std::fs::write(
            ctx.join("Dockerfile"),
            format!("FROM acme/base\nCOPY file /srv/{name}\n"),
        )
        .unwrap();
        std::fs::write(ctx.join("file"), format!("{name} v1\n")).unwrap();
        toml.push_str(&format!(
            "[[image]]\nname = \"{name}\"\nowner = \"ops\"\ncontext = \"{name}\"\n"
        ));
    }
    std::fs::write(dir.join("strata.toml"), toml).unwrap();
}

/// Run `strata -C dir ARGS` with its stdout and stderr on a pseudo-terminal (120 columns);
/// returns whether it succeeded and everything it wrote there.
fn on_a_terminal(dir: &Path, args: &[&str]) -> (bool, String) {
    use std::io::Read;
    let size = nix::pty::Winsize {
        ws_row: 40,
        ws_col: 120,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let pty = nix::pty::openpty(Some(&size), None).unwrap();
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin!("strata"));
    cmd.arg("-C")
        .arg(dir)
        .args(args)
        .env("TERM", "xterm")
        .stdin(Stdio::null())
        .stdout(Stdio::from(pty.slave.try_clone().unwrap()))
        .stderr(Stdio::from(pty.slave));
    let mut child = cmd.spawn().unwrap();
    // The parent's copies of the terminal's slave side close here, so reading the master side
    // ends (EIO) once the child has exited.
    drop(cmd);
    let mut master = std::fs::File::from(pty.master);
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match master.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    let ok = child.wait().unwrap().success();
    (ok, String::from_utf8_lossy(&out).into_owned())
}

// Issue 22: on a terminal, `strata build` ended with a summary line per image, up-to-date ones
// included (5,000 lines for a no-op of a 5,000-image chain). There it names what was built and
// counts what was up to date; piped, it keeps one line per image.
#[test]
fn on_a_terminal_the_summary_names_the_built_images_and_counts_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    copy_chain(d, &["keepa", "keepb", "keepc", "changed"]);
    let (ok, first) = build(d, &[]);
    assert!(ok, "{first}");
    std::fs::write(d.join("changed/file"), "changed v2\n").unwrap();

    let (ok, text) = on_a_terminal(d, &["build", "--jobs", "1"]);
    assert!(ok, "{text}");
    let summary: Vec<&str> = text.lines().filter(|l| l.contains("built")).collect();
    assert!(
        summary
            .iter()
            .any(|l| l.contains("changed") && l.contains("built") && l.contains("#2")),
        "{text}"
    );
    assert!(
        text.contains("1 built, 4 up to date, 0 failed, 0 skipped"),
        "{text}"
    );
    // The up-to-date images are counted, never named: not by the progress, not by the summary
    // (the base's name shows only in the built image's FROM step).
    for quiet in ["keepa", "keepb", "keepc"] {
        assert!(
            !text.contains(quiet),
            "{quiet} named on the terminal:\n{text}"
        );
    }
    assert!(!text.contains("up to date  sha256:"), "{text}");

    // Piped, the summary still has one line per image.
    let out = strata(d).arg("build").output().unwrap();
    assert!(out.status.success());
    let plain = String::from_utf8_lossy(&out.stdout);
    for image in ["base", "keepa", "keepb", "keepc", "changed"] {
        assert!(
            plain
                .lines()
                .any(|l| l.starts_with(image) && l.contains("up to date")),
            "{image}:\n{plain}"
        );
    }
    assert!(plain.contains("0 built, 5 up to date"), "{plain}");
}
