//! `strata init`, `strata graph`, `strata plan` end to end through the binary.

use std::path::Path;
use std::process::Command;

use assert_cmd::prelude::*;

fn strata() -> Command {
    Command::cargo_bin("strata").unwrap()
}

/// `strata init DIR` with the real busybox; None (skip) when busybox-static is missing.
fn init(dir: &Path) -> Option<()> {
    if !Path::new("/bin/busybox").is_file() {
        strata_testutil::require_tool("busybox")?;
    }
    let out = strata().arg("init").arg(dir).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(())
}

fn stdout(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Run expecting failure; the stderr.
fn failure(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(!out.status.success(), "{cmd:?} should fail");
    String::from_utf8(out.stderr).unwrap()
}

#[test]
fn init_then_graph_and_plan() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("chain");
    if init(&dir).is_none() {
        return;
    }
    for f in [
        "strata.toml",
        "base/rootfs.tar",
        "corebuild/Dockerfile",
        "wordpress/index.php",
    ] {
        assert!(dir.join(f).is_file(), "{f}");
    }
    // --json names every file written, relative to the chain directory.
    let again = tmp.path().join("again");
    let listed: serde_json::Value =
        serde_json::from_str(&stdout(strata().arg("init").arg(&again).arg("--json"))).unwrap();
    assert_eq!(listed["dir"], again.display().to_string());
    let files = listed["files"].as_array().unwrap();
    assert!(
        files.contains(&serde_json::json!("strata.toml")),
        "{listed}"
    );
    for f in files {
        assert!(again.join(f.as_str().unwrap()).is_file(), "{f}");
    }
    let tree = stdout(strata().arg("-C").arg(&dir).arg("graph"));
    let lines: Vec<&str> = tree.lines().collect();
    assert_eq!(lines[0], "chain acme: 4 images, 3 teams");
    assert!(
        lines[1].starts_with("base ")
            && lines[1].contains("operations")
            && lines[1].ends_with("never built")
    );
    assert!(lines[2].starts_with("└── corebuild "));
    assert!(lines[3].starts_with("    └── httpd-php ") && lines[3].contains("middleware"));
    assert!(lines[4].starts_with("        └── wordpress ") && lines[4].contains("development"));

    let plan = stdout(
        strata()
            .arg("-C")
            .arg(&dir)
            .args(["plan", "--changed", "corebuild"]),
    );
    assert_eq!(
        plan.lines().next().unwrap(),
        "corebuild changed (operations) → rebuild httpd-php (middleware), wordpress (development)"
    );
    assert!(
        plan.contains("  3. wordpress  development  wave 3  parent httpd-php rebuilt\n"),
        "{plan}"
    );

    let json: serde_json::Value = serde_json::from_str(&stdout(
        strata().arg("-C").arg(&dir).args(["plan", "--json"]),
    ))
    .unwrap();
    let order: Vec<&str> = json["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["image"].as_str().unwrap())
        .collect();
    assert_eq!(order, ["base", "corebuild", "httpd-php", "wordpress"]);
    assert_eq!(json["steps"][0]["reasons"][0]["kind"], "never-built");

    let graph: serde_json::Value = serde_json::from_str(&stdout(
        strata()
            .arg("-C")
            .arg(&dir)
            .args(["graph", "--format", "json"]),
    ))
    .unwrap();
    assert_eq!(graph["schema"], "strata.chain/v1");
    assert_eq!(
        graph["order"],
        serde_json::json!(["base", "corebuild", "httpd-php", "wordpress"])
    );

    // --chain and STRATA_CHAIN name the file from elsewhere
    let via_flag = stdout(
        strata()
            .arg("--chain")
            .arg(dir.join("strata.toml"))
            .arg("graph"),
    );
    assert_eq!(via_flag, tree);
    let via_env = stdout(
        strata()
            .env("STRATA_CHAIN", dir.join("strata.toml"))
            .arg("graph"),
    );
    assert_eq!(via_env, tree);

    // init never overwrites a chain
    let err = failure(strata().arg("init").arg(&dir));
    assert!(
        err.contains("strata.toml already exists: not overwriting it"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn graph_dot_renders_with_graphviz() {
    let Some(dot) = strata_testutil::require_tool("dot") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("chain");
    if init(&dir).is_none() {
        return;
    }
    let text = stdout(
        strata()
            .arg("-C")
            .arg(&dir)
            .args(["graph", "--format", "dot"]),
    );
    // strata graph --format dot | dot -Tsvg
    let mut child = Command::new(dot)
        .arg("-Tsvg")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "dot: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Graphviz writes `-` as `&#45;` in SVG text
    let svg = String::from_utf8(out.stdout).unwrap().replace("&#45;", "-");
    assert!(svg.contains("<svg"), "{svg}");
    for name in [
        "corebuild",
        "httpd-php",
        "wordpress",
        "operations",
        "middleware",
        "development",
    ] {
        assert!(svg.contains(name), "{name} not in the SVG");
    }
}

#[test]
fn chain_errors_are_one_line_with_the_file_line() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::create_dir(dir.join("app")).unwrap();
    std::fs::write(dir.join("app/Dockerfile"), "FROM scratch\n").unwrap();
    std::fs::write(
        dir.join("strata.toml"),
        "name = \"acme\"\n[teams.dev]\n\n[[image]]\nname = \"app\"\nowner = \"ops\"\ncontext = \"app\"\n",
    )
    .unwrap();
    let err = failure(strata().current_dir(dir).arg("graph"));
    assert_eq!(
        err,
        "error: strata.toml:6:9: field `image[1].owner`: unknown team \"ops\" (teams: dev)\n"
    );

    let err = failure(strata().current_dir(dir).args(["-C", "elsewhere", "plan"]));
    assert!(err.starts_with("error: no chain file at "), "{err}");
    assert!(err.contains("strata init"), "{err}");

    std::fs::write(dir.join("strata.toml"), "name = \"acme\"\n[teams.dev]\n\n[[image]]\nname = \"app\"\nowner = \"dev\"\ncontext = \"app\"\n")
        .unwrap();
    let err = failure(strata().current_dir(dir).args(["plan", "--changed", "db"]));
    assert_eq!(err, "error: unknown image \"db\" (the chain has: app)\n");
}

#[test]
fn init_explains_a_missing_busybox_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("chain");
    let err = failure(
        strata()
            .arg("init")
            .arg(&dir)
            .args(["--busybox", "/nonexistent/busybox"]),
    );
    assert!(
        err.contains("/nonexistent/busybox not found: install busybox-static (apt-get install busybox-static)"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(!dir.join("strata.toml").exists());
}

#[test]
fn rootfs_only_completes_a_checkout_of_the_example() {
    if !Path::new("/bin/busybox").is_file() && strata_testutil::require_tool("busybox").is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/three-tier");
    // copy the committed example without any generated rootfs
    for entry in walk(&example) {
        let rel = entry.strip_prefix(&example).unwrap();
        if rel == Path::new("base/rootfs.tar") {
            continue;
        }
        let dest = tmp.path().join(rel);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(&entry, dest).unwrap();
    }
    let err = failure(strata().arg("-C").arg(tmp.path()).arg("graph"));
    assert!(
        err.contains("field `image[1].source.rootfs`: no such file"),
        "{err}"
    );
    stdout(strata().arg("init").arg("--rootfs-only").arg(tmp.path()));
    assert!(tmp.path().join("base/rootfs.tar").is_file());
    let tree = stdout(strata().arg("-C").arg(tmp.path()).arg("graph"));
    assert!(tree.contains("wordpress"), "{tree}");
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// Run `args` with standard output a pipe whose reader is already gone, as in `strata ... | head -0`.
/// Issue 15: `strata images | head -1` and `dockerfile parse --json | head` panicked on the closed pipe.
fn run_into_closed_pipe(dir: &Path, args: &[&str]) -> std::process::Output {
    use std::process::Stdio;
    let mut child = strata()
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // the reader goes away before the first write
    child.wait_with_output().unwrap()
}

#[test]
fn a_closed_stdout_ends_every_command_quietly() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("chain");
    if init(&dir).is_none() {
        return;
    }
    // A Dockerfile whose JSON is far larger than a pipe's buffer.
    let mut big = String::from("FROM scratch\n");
    for i in 0..2000 {
        big.push_str(&format!("ENV V{i}=value{i}\n"));
    }
    std::fs::write(dir.join("Big.Dockerfile"), big).unwrap();
    for args in [
        &["dockerfile", "parse", "--json", "Big.Dockerfile"][..],
        &["dockerfile", "parse", "Big.Dockerfile"],
        &["graph"],
        &["graph", "--format", "json"],
        &["plan"],
        &["update", "--dry-run"],
        &["version"],
        &["init", "second"],
    ] {
        let out = run_into_closed_pipe(&dir, args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "strata {args:?} into a closed pipe: {:?}: {stderr}",
            out.status
        );
        assert!(!stderr.contains("panicked"), "strata {args:?}: {stderr}");
        assert!(stderr.is_empty(), "strata {args:?} said: {stderr}");
    }
}
