//! Upstreams are locked (`strata.lock`), and a move is a visible change: a tag moved on the
//! upstream's registry (a real `strata serve`) changes nothing until `strata update` moves the
//! lock; `strata plan` names the images and teams it rebuilds; `--locked` refuses a lock that does
//! not cover the Dockerfiles.

use std::path::Path;

use crate::common::project::{json, ok, run};
use serde_json::Value;

use crate::common::Serve;

/// `image → result` of a `strata build --json` summary.
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

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

/// The operations project: its own chain `ops` whose corebuild is signed by operations' key.
fn operations(dir: &Path, motd: &str) {
    std::fs::create_dir_all(dir.join("corebuild")).unwrap();
    std::fs::write(
        dir.join("strata.toml"),
        "name = \"ops\"\n[teams.operations]\n\
         [[image]]\nname = \"corebuild\"\nowner = \"operations\"\ncontext = \"corebuild\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("corebuild/Dockerfile"),
        "FROM scratch\nCOPY motd /etc/motd\n",
    )
    .unwrap();
    std::fs::write(dir.join("corebuild/motd"), motd).unwrap();
    ok(dir, &["build", "--key", "operations=keys/operations.key"]);
}

/// The manifest digest of `reference` in the store of the chain at `dir`.
fn digest_of(dir: &Path, reference: &str) -> String {
    let store = strata_oci::Store::open(dir.join(".strata/store")).unwrap();
    store
        .refs()
        .resolve(reference)
        .unwrap()
        .digest()
        .to_string()
}

#[test]
fn a_moved_upstream_shows_in_update_and_plan_and_rebuilds_only_once_the_lock_moves() {
    let dir = tempfile::tempdir().unwrap();
    let ops = dir.path().join("ops");
    std::fs::create_dir_all(&ops).unwrap();
    ok(
        &ops,
        &["key", "generate", "--team", "operations", "--out", "keys"],
    );
    operations(&ops, "acme 1\n");
    let first = digest_of(&ops, "ops/corebuild:latest");
    let server = Serve::start(&ops.join(".strata/store"), &[]);
    let upstream = format!("{}/ops/corebuild:latest", server.host);

    // The middleware project: its images on operations' corebuild, two teams.
    let mw = dir.path().join("mw");
    for d in ["httpd-php", "wordpress"] {
        std::fs::create_dir_all(mw.join(d)).unwrap();
    }
    std::fs::copy(ops.join("keys/operations.pub"), mw.join("operations.pub")).unwrap();
    std::fs::write(
        mw.join("strata.toml"),
        "name = \"mw\"\n[teams.middleware]\n[teams.development]\n\
         [teams.operations]\nkeys = [\"operations.pub\"]\n\
         [[image]]\nname = \"httpd-php\"\nowner = \"middleware\"\ncontext = \"httpd-php\"\n\
         [[image]]\nname = \"wordpress\"\nowner = \"development\"\ncontext = \"wordpress\"\n",
    )
    .unwrap();
    std::fs::write(
        mw.join("httpd-php/Dockerfile"),
        "ARG CORE=corebuild\nFROM ${REGISTRY}/ops/${CORE}:latest\nCOPY php.ini /etc/php.ini\n"
            .replace("${REGISTRY}", &server.host),
    )
    .unwrap();
    std::fs::write(mw.join("httpd-php/php.ini"), "memory_limit=1G\n").unwrap();
    std::fs::write(
        mw.join("wordpress/Dockerfile"),
        "FROM mw/httpd-php\nCOPY index.php /var/www/index.php\n",
    )
    .unwrap();
    std::fs::write(mw.join("wordpress/index.php"), "<?php echo 1;\n").unwrap();

    // --locked without a lock refuses, naming strata.lock.
    let out = run(&mw, &["build", "--locked"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("strata.lock: no lock file"),
        "one clear line: {stderr}"
    );

    // The first build resolves the upstream and locks it, with the provenance operations signed.
    let summary = json(&mw, &["build", "--json"]);
    assert_eq!(
        results(&summary),
        pairs(&[("httpd-php", "built"), ("wordpress", "built")])
    );
    let lock_text = std::fs::read_to_string(mw.join("strata.lock")).unwrap();
    assert!(lock_text.starts_with("# strata.lock"), "{lock_text}");
    let lock: toml::Value = toml::from_str(&lock_text).unwrap();
    let entry = &lock["upstream"][0];
    assert_eq!(entry["reference"].as_str(), Some(upstream.as_str()));
    assert_eq!(entry["digest"].as_str(), Some(first.as_str()));
    assert_eq!(entry["registry"].as_str(), Some(server.host.as_str()));
    assert_eq!(
        entry["built-by"].as_str(),
        Some("operations"),
        "{lock_text}"
    );
    assert!(entry.get("key").is_some() && entry.get("built").is_some());
    // Built on the locked digest; the lock does not change when nothing moved.
    ok(&mw, &["build", "--locked"]);
    assert_eq!(
        std::fs::read_to_string(mw.join("strata.lock")).unwrap(),
        lock_text
    );

    // Operations patches corebuild: the tag moves on the registry.
    operations(&ops, "acme 2 (motd patched)\n");
    let second = digest_of(&ops, "ops/corebuild:latest");
    assert_ne!(first, second);

    // Nothing rebuilds until the lock moves, even with the new digest one HEAD away.
    let summary = json(&mw, &["build", "--json"]);
    assert_eq!(
        results(&summary),
        pairs(&[("httpd-php", "up-to-date"), ("wordpress", "up-to-date")])
    );
    assert_eq!(
        std::fs::read_to_string(mw.join("strata.lock")).unwrap(),
        lock_text
    );
    let plan = json(&mw, &["plan", "--json"]);
    assert_eq!(plan["steps"].as_array().unwrap().len(), 0, "{plan}");

    // plan --update: what the move would rebuild, and whose images, before anyone builds.
    let plan = json(&mw, &["plan", "--update", "--json"]);
    let steps: Vec<&str> = plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["image"].as_str().unwrap())
        .collect();
    assert_eq!(steps, ["httpd-php", "wordpress"], "{plan}");
    assert_eq!(
        plan["teams"],
        serde_json::json!(["middleware", "development"])
    );
    assert_eq!(
        plan["upstream_moves"][0]["to"].as_str(),
        Some(second.as_str())
    );

    // update --dry-run shows the move and writes nothing.
    let report = json(&mw, &["update", "--dry-run", "--json"]);
    assert_eq!(report["written"], false);
    assert_eq!(report["moves"][0]["from"].as_str(), Some(first.as_str()));
    assert_eq!(report["moves"][0]["to"].as_str(), Some(second.as_str()));
    assert_eq!(
        std::fs::read_to_string(mw.join("strata.lock")).unwrap(),
        lock_text
    );

    // update moves the lock, saying who rebuilt it, and downloads no layer.
    let said = ok(&mw, &["update"]);
    let short = |d: &str| d[.."sha256:".len() + 12].to_string();
    assert!(
        said.starts_with(&format!(
            "{upstream}: {}… → {}…, rebuilt by operations ",
            short(&first),
            short(&second)
        )),
        "{said}"
    );
    let moved = std::fs::read_to_string(mw.join("strata.lock")).unwrap();
    assert!(
        moved.contains(&second) && !moved.contains(&first),
        "{moved}"
    );
    let store = strata_oci::Store::open(mw.join(".strata/store")).unwrap();
    assert!(
        !store.blobs().has(&second.parse().unwrap()),
        "update fetched no manifest or layer into the store"
    );
    assert_eq!(
        ok(&mw, &["update"]),
        format!("{}: nothing moved\n", "strata.lock")
    );

    // plan now names the images on the moved upstream and their teams.
    let plan = ok(&mw, &["plan"]);
    assert!(
        plan.contains("teams affected: middleware, development"),
        "{plan}"
    );
    assert!(
        plan.contains(&upstream),
        "the reason names the upstream: {plan}"
    );

    // build --locked rebuilds them on the new digest, pulled by digest.
    let summary = json(&mw, &["build", "--locked", "--json"]);
    assert_eq!(
        results(&summary),
        pairs(&[("httpd-php", "built"), ("wordpress", "built")])
    );
    let image = store.image("mw/httpd-php").unwrap();
    let ops_store = strata_oci::Store::open(ops.join(".strata/store")).unwrap();
    let patched = ops_store.image("ops/corebuild").unwrap();
    assert_eq!(
        image.layers()[..patched.layers().len()],
        patched.layers()[..],
        "httpd-php is built on the patched corebuild"
    );
    drop(server);
}

#[test]
fn locked_refuses_a_lock_that_does_not_match_the_dockerfiles_and_a_bad_lock_names_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("app")).unwrap();
    std::fs::write(
        d.join("strata.toml"),
        "name = \"acme\"\n[teams.web]\n\
         [[image]]\nname = \"app\"\nowner = \"web\"\ncontext = \"app\"\n",
    )
    .unwrap();
    let upstream = "registry.invalid/ops/corebuild:7";
    std::fs::write(
        d.join("app/Dockerfile"),
        format!("FROM {upstream}\nCOPY . /app\n"),
    )
    .unwrap();
    let digest = format!("sha256:{}", "ab".repeat(32));
    let entry = |reference: &str| {
        format!(
            "[[upstream]]\nreference = \"{reference}\"\ndigest = \"{digest}\"\n\
             registry = \"registry.invalid\"\nresolved = \"2026-12-06T14:02:00Z\"\n"
        )
    };
    let refuse = |lock: &str, wanted: &str| {
        std::fs::write(d.join("strata.lock"), lock).unwrap();
        let out = run(d, &["build", "--locked"]);
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(wanted), "wanted {wanted:?}: {stderr}");
        assert_eq!(
            std::fs::read_to_string(d.join("strata.lock")).unwrap(),
            lock,
            "--locked never writes the lock"
        );
    };
    // A lock of another upstream: the Dockerfile's is not locked.
    refuse(
        &format!("version = 1\n{}", entry("registry.invalid/ops/corebuild:6")),
        &format!("app/Dockerfile:1: {upstream} is not locked in strata.lock"),
    );
    // A lock with an entry no Dockerfile names.
    refuse(
        &format!(
            "version = 1\n{}{}",
            entry(upstream),
            entry("registry.invalid/gone:1")
        ),
        "strata.lock:7:1: registry.invalid/gone:1 is locked but no Dockerfile names it",
    );
    // A bad digest: the file and line, and plan says it too.
    let bad = format!("version = 1\n{}", entry(upstream)).replace(&digest, "sha256:zz");
    refuse(
        &bad,
        "strata.lock:2:1: upstream registry.invalid/ops/corebuild:7: digest",
    );
    let out = run(d, &["plan"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("strata.lock:2:1:"));
    // update of something the chain does not name says which upstreams it has.
    std::fs::remove_file(d.join("strata.lock")).unwrap();
    let out = run(d, &["update", "other/thing"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!(
            "other/thing is not an upstream of chain \"acme\" (its upstreams: {upstream})"
        )),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
