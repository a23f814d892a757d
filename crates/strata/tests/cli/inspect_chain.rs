//! The store views over the example chain built for real (`strata init` + `strata build`): the
//! layer tree with a second application on the same middleware, history and inspect with owners,
//! the diff of two corebuild builds, wasted space, `graph --layers`, and DOT that Graphviz renders.

#![allow(clippy::print_stderr)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use assert_cmd::cargo::cargo_bin_cmd;
use serde_json::Value;

/// The example chain plus `blog`, a second application on httpd-php, built (None when this
/// machine cannot run the example: not root, or no busybox outside CI).
fn built_example() -> Option<tempfile::TempDir> {
    if !strata_testutil::can_build_example() {
        return None;
    }
    let dir = strata_testutil::init_example(assert_cmd::cargo::cargo_bin!("strata"));
    let d = dir.path();
    let mut toml = std::fs::OpenOptions::new()
        .append(true)
        .open(d.join("strata.toml"))
        .unwrap();
    toml.write_all(
        b"\n[[image]]\nname = \"blog\"\nowner = \"development\"\ntier = \"application\"\ncontext = \"blog\"\n",
    )
    .unwrap();
    std::fs::create_dir(d.join("blog")).unwrap();
    std::fs::write(
        d.join("blog/Dockerfile"),
        "FROM acme/httpd-php\nCOPY blog.html /var/www/\n",
    )
    .unwrap();
    std::fs::write(d.join("blog/blog.html"), "<h1>blog</h1>\n").unwrap();
    build(d);
    Some(dir)
}

fn build(dir: &Path) {
    let out = strata(dir).arg("build").output().unwrap();
    assert!(
        out.status.success(),
        "strata build: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn strata(dir: &Path) -> assert_cmd::Command {
    let mut cmd = cargo_bin_cmd!("strata");
    cmd.arg("-C").arg(dir);
    cmd
}

fn text(dir: &Path, args: &[&str]) -> String {
    let out = strata(dir).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "strata {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn json(dir: &Path, args: &[&str]) -> Value {
    serde_json::from_str(&text(dir, args)).unwrap()
}

/// Every layer node of a JSON tree, depth first.
fn nodes(tree: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    let mut stack: Vec<&Value> = tree["roots"].as_array().unwrap().iter().collect();
    while let Some(n) = stack.pop() {
        out.push(n);
        stack.extend(n["children"].as_array().unwrap());
    }
    out
}

fn tags(node: &Value) -> Vec<String> {
    node["images"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|i| i["tags"].as_array().unwrap().iter())
        .map(|t| t.as_str().unwrap().to_string())
        .collect()
}

fn wide_lines(text: &str) -> Vec<&str> {
    text.lines().filter(|l| l.chars().count() > 100).collect()
}

#[test]
fn the_tree_of_the_chain_shares_prefixes_and_names_owners() {
    let Some(dir) = built_example() else { return };
    let d = dir.path();
    let tree = json(d, &["images", "--tree", "--format", "json"]);
    assert_eq!(tree["images"], 5);
    let all = nodes(&tree);
    // Every layer appears once: the base, corebuild and httpd-php layers are shared.
    let mut diff_ids: Vec<&str> = all.iter().map(|n| n["diffId"].as_str().unwrap()).collect();
    let count = diff_ids.len();
    diff_ids.sort_unstable();
    diff_ids.dedup();
    assert_eq!(
        diff_ids.len(),
        count,
        "a shared layer appears more than once"
    );
    assert_eq!(tree["roots"].as_array().unwrap().len(), 1);
    let root = &tree["roots"][0];
    assert_eq!(root["chainImage"], "acme/base");
    assert_eq!(root["owner"], "operations");
    // The middleware's last layer carries its image and branches to both applications.
    let middleware = all
        .iter()
        .find(|n| tags(n).contains(&"localhost/acme/httpd-php:latest".to_string()))
        .expect("httpd-php ends at a node");
    assert_eq!(middleware["chainImage"], "acme/httpd-php");
    assert_eq!(middleware["owner"], "middleware");
    let apps: Vec<(&str, &str, Vec<String>)> = middleware["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["chainImage"].as_str().unwrap(),
                c["owner"].as_str().unwrap(),
                tags(c),
            )
        })
        .collect();
    assert_eq!(apps.len(), 2, "{apps:?}");
    assert_eq!(apps[0].0, "acme/blog");
    assert_eq!(apps[0].1, "development");
    assert!(
        apps[0]
            .2
            .contains(&"localhost/acme/blog:latest".to_string())
    );
    assert_eq!(apps[1].0, "acme/wordpress");
    assert!(
        apps[1]
            .2
            .contains(&"localhost/acme/wordpress:6.4".to_string())
    );
    // corebuild's own layers belong to operations, created by its Dockerfile's steps.
    let motd = all
        .iter()
        .find(|n| n["createdBy"] == "COPY motd /etc/motd")
        .unwrap();
    assert_eq!(motd["chainImage"], "acme/corebuild");
    assert_eq!(motd["owner"], "operations");

    // The text tree: each shared layer on one line, img: and layer: lines, 100 columns.
    let out = text(d, &["images", "--tree"]);
    let base_short = &root["diffId"].as_str().unwrap()[7..19];
    assert_eq!(out.matches(base_short).count(), 1, "{out}");
    assert!(out.contains("img: localhost/acme/blog:latest"), "{out}");
    assert!(out.contains("layer: "), "{out}");
    assert!(wide_lines(&out).is_empty(), "{out}");
    assert!(
        !out.contains('\x1b'),
        "no colour when stdout is not a terminal"
    );
    // Incremental sizes: the wordpress COPY layer is small; cumulative it includes busybox.
    let incremental = text(d, &["images", "--tree", "--incremental"]);
    assert_ne!(incremental, out);

    // Only corebuild's branch: everything is built on it except the base's own label.
    let branch = json(d, &["images", "--tree", "--json", "corebuild"]);
    assert_eq!(branch["images"], 4);
}

#[test]
fn the_dot_tree_renders_with_graphviz() {
    let Some(dot) = strata_testutil::require_tool("dot") else {
        return;
    };
    let Some(dir) = built_example() else { return };
    let source = text(dir.path(), &["images", "--tree", "--format", "dot"]);
    assert!(source.contains("img: localhost/acme/blog:latest"));
    let mut child = Command::new(dot)
        .arg("-Tsvg")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(source.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "dot: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let svg = String::from_utf8(out.stdout).unwrap();
    assert!(svg.contains("<svg"), "{svg}");
    // Graphviz writes `-` as `&#45;`.
    assert!(svg.contains("acme/httpd&#45;php (middleware)"), "{svg}");
}

#[test]
fn history_inspect_layers_and_graph_name_owners() {
    let Some(dir) = built_example() else { return };
    let d = dir.path();
    let history = json(d, &["history", "wordpress", "--json"]);
    let rows = history.as_array().unwrap();
    let motd = rows
        .iter()
        .find(|r| r["createdBy"] == "COPY motd /etc/motd")
        .unwrap();
    assert_eq!(motd["chainImage"], "acme/corebuild");
    assert_eq!(motd["owner"], "operations");
    assert_eq!(motd["emptyLayer"], false);
    let user = rows
        .iter()
        .find(|r| r["createdBy"] == "USER www-data")
        .unwrap();
    assert_eq!(user["emptyLayer"], true);
    assert_eq!(user["owner"], "middleware");
    let last = rows.last().unwrap();
    assert_eq!(last["chainImage"], "acme/wordpress");
    assert_eq!(last["owner"], "development");
    assert!(wide_lines(&text(d, &["history", "wordpress"])).is_empty());

    let base = json(d, &["inspect", "acme/base", "--json"]);
    let core = json(d, &["inspect", "acme/corebuild", "--format", "json"]);
    assert_eq!(core["base"]["digest"], base["digest"]);
    assert_eq!(core["base"]["inStore"], true);
    assert!(
        core["base"]["tags"]
            .as_array()
            .unwrap()
            .contains(&"localhost/acme/base:latest".into())
    );
    assert!(
        core["tags"]
            .as_array()
            .unwrap()
            .contains(&"localhost/acme/corebuild:1".into())
    );
    assert!(core["buildKey"].as_str().unwrap().starts_with("sha256:"));
    assert_eq!(core["chainImage"], "acme/corebuild");
    // Built without team keys: nothing is attached, and inspect says so.
    assert_eq!(core["provenance"]["status"], "none");
    // The manifest and config as stored.
    assert_eq!(core["manifest"]["layers"].as_array().unwrap().len(), 3);
    assert_eq!(
        core["config"]["rootfs"]["diff_ids"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    let own: Vec<bool> = core["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["own"].as_bool().unwrap())
        .collect();
    assert_eq!(own, [false, true, true]);

    // corebuild's hardening step rewrites /bin/busybox (chmod u-s) and deletes /bin/wget: the
    // base layer's busybox bytes are wasted.
    let layers = json(d, &["layers", "corebuild", "--json"]);
    assert!(layers["layers"][0]["wastedBytes"].as_u64().unwrap() > 100_000);
    assert!(
        layers["layers"][2]["deleted"]
            .as_array()
            .unwrap()
            .contains(&"/bin/wget".into())
    );
    assert!(layers["efficiency"].as_f64().unwrap() < 1.0);

    let graph = text(d, &["graph", "--layers"]);
    let line = graph.lines().find(|l| l.contains("corebuild")).unwrap();
    assert!(
        line.contains("operations") && line.contains("2 layers"),
        "{graph}"
    );
}

#[test]
fn the_diff_of_two_corebuild_builds_shows_the_changed_file_only() {
    let Some(dir) = built_example() else { return };
    let d = dir.path();
    let motd = d.join("corebuild/motd");
    let mut content = std::fs::read_to_string(&motd).unwrap();
    content.push_str("Patched: CVE-2026-0001\n");
    std::fs::write(&motd, content).unwrap();
    build(d);
    let diff = json(d, &["diff", "corebuild@1", "corebuild@2", "--json"]);
    let files = diff["files"].as_array().unwrap();
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(files[0]["path"], "/etc/motd");
    assert_eq!(files[0]["change"], "modified");
    assert_ne!(
        files[0]["before"]["contentDigest"],
        files[0]["after"]["contentDigest"]
    );
    // The base layer is shared; the COPY layer was replaced.
    assert_eq!(diff["commonPrefix"], 1);
    assert_eq!(diff["removed"].as_array().unwrap().len(), 1);
    assert_eq!(diff["added"].as_array().unwrap().len(), 1);
    assert_eq!(diff["added"][0]["createdBy"], "COPY motd /etc/motd");

    let out = text(d, &["diff", "corebuild@1", "corebuild@2"]);
    assert!(out.contains("M /etc/motd"), "{out}");
    assert!(
        !out.contains("/etc/passwd"),
        "unchanged files are not listed: {out}"
    );
    assert!(wide_lines(&out).is_empty(), "{out}");

    let missing = strata(d)
        .args(["diff", "corebuild@1", "corebuild@9"])
        .output()
        .unwrap();
    assert!(!missing.status.success());
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(err.contains("corebuild@9") && err.contains("1, 2"), "{err}");
}
