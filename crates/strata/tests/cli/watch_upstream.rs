//! Build triggers (issue 18): `strata watch` in a chain project follows its upstreams. Project ops
//! pushes corebuild to a shared registry (`strata serve`); project mid (httpd-php FROM the
//! registry's ops/corebuild) and project dev (wordpress FROM the registry's mid/httpd-php) each
//! run `strata watch`. When ops pushes a patch, without any other command mid's lock moves,
//! httpd-php is rebuilt, signed and pushed, then dev does the same for wordpress; two patches
//! pushed back to back are taken in at most two cascades, ending on the last; a restarted watch
//! finds everything done. Checked with skopeo (the registry's digests) and `strata verify`.

#![allow(clippy::print_stderr)]

use std::path::{Path, PathBuf};
use std::process::Command;

use assert_cmd::cargo::cargo_bin_cmd;
use serde_json::Value;

use crate::common::{Serve, Watch, git, ok, strata};

/// The registry's digest of `reference`, as skopeo reads it.
pub(crate) fn registry_digest(reference: &str) -> String {
    let out = ok(Command::new("skopeo").args([
        "inspect",
        "--tls-verify=false",
        "--raw",
        &format!("docker://{reference}"),
    ]));
    let digest = sha2_hex(out.as_bytes());
    format!("sha256:{digest}")
}

fn sha2_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// The store digest of `reference` in the project at `dir`.
pub(crate) fn stored(dir: &Path, reference: &str) -> String {
    let store = strata_oci::Store::open(dir.join(".strata/store")).unwrap();
    store
        .refs()
        .resolve(reference)
        .unwrap()
        .digest()
        .to_string()
}

/// The world: a registry, the teams' keys, and three projects.
struct World {
    _dir: tempfile::TempDir,
    _server: Serve,
    host: String,
    keys: PathBuf,
    ops: PathBuf,
    mid: PathBuf,
    dev: PathBuf,
}

impl World {
    fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_path_buf();
        let registry = d.join("registry");
        strata_oci::Store::init(&registry).unwrap();
        let server = Serve::start(&registry, &[]);
        let host = server.host.clone();
        let keys = d.join("keys");
        for team in ["operations", "middleware", "development"] {
            let out = cargo_bin_cmd!("strata")
                .args(["key", "generate", "--team", team, "--out"])
                .arg(&keys)
                .output()
                .unwrap();
            assert!(out.status.success(), "{out:?}");
        }
        let trust = |project: &Path, teams: &[&str]| {
            let mut text = String::new();
            std::fs::create_dir_all(project.join("trusted")).unwrap();
            for team in teams {
                std::fs::copy(
                    keys.join(format!("{team}.pub")),
                    project.join(format!("trusted/{team}.pub")),
                )
                .unwrap();
                text.push_str(&format!(
                    "[teams.{team}]\nkeys = [\"trusted/{team}.pub\"]\n"
                ));
            }
            text
        };
        // ops: corebuild (COPY only), pushed by hand.
        let ops = d.join("ops");
        std::fs::create_dir_all(ops.join("corebuild")).unwrap();
        let teams = trust(&ops, &["operations"]);
        std::fs::write(
            ops.join("strata.toml"),
            format!(
                "name = \"ops\"\nregistry = \"{host}\"\n{teams}\
                 [[image]]\nname = \"corebuild\"\nowner = \"operations\"\ntier = \"corebuild\"\n\
                 context = \"corebuild\"\n"
            ),
        )
        .unwrap();
        std::fs::write(
            ops.join("corebuild/Dockerfile"),
            "FROM scratch\nCOPY motd /etc/motd\n",
        )
        .unwrap();
        // mid: httpd-php on the registry's corebuild; a git repository.
        let mid = d.join("mid");
        std::fs::create_dir_all(mid.join("httpd-php")).unwrap();
        let teams = trust(&mid, &["operations", "middleware"]);
        std::fs::write(
            mid.join("strata.toml"),
            format!(
                "name = \"mid\"\nregistry = \"{host}\"\n{teams}\
                 [owners]\n\"{host}/ops/*\" = \"operations\"\n\
                 [[image]]\nname = \"httpd-php\"\nowner = \"middleware\"\ntier = \"middleware\"\n\
                 context = \"httpd-php\"\n"
            ),
        )
        .unwrap();
        std::fs::write(
            mid.join("httpd-php/Dockerfile"),
            format!("FROM {host}/ops/corebuild:latest\nCOPY php.ini /etc/php.ini\n"),
        )
        .unwrap();
        std::fs::write(mid.join("httpd-php/php.ini"), "memory_limit=1G\n").unwrap();
        std::fs::write(mid.join(".gitignore"), ".strata/\n").unwrap();
        git(&mid, &["init", "-q"]);
        // The watch commits as the repository's configured identity.
        git(&mid, &["config", "user.name", "middleware bot"]);
        git(&mid, &["config", "user.email", "mw@localhost"]);
        git(&mid, &["add", "."]);
        git(&mid, &["commit", "-qm", "httpd-php"]);
        // dev: wordpress on the registry's mid/httpd-php.
        let dev = d.join("dev");
        std::fs::create_dir_all(dev.join("wordpress")).unwrap();
        let teams = trust(&dev, &["operations", "middleware", "development"]);
        std::fs::write(
            dev.join("strata.toml"),
            format!(
                "name = \"dev\"\nregistry = \"{host}\"\n{teams}\
                 [owners]\n\"{host}/ops/*\" = \"operations\"\n\"{host}/mid/*\" = \"middleware\"\n\
                 [[image]]\nname = \"wordpress\"\nowner = \"development\"\n\
                 tier = \"application\"\ncontext = \"wordpress\"\n"
            ),
        )
        .unwrap();
        std::fs::write(
            dev.join("wordpress/Dockerfile"),
            format!("FROM {host}/mid/httpd-php:latest\nCOPY index.php /var/www/index.php\n"),
        )
        .unwrap();
        std::fs::write(dev.join("wordpress/index.php"), "<?php echo 1;\n").unwrap();
        World {
            _dir: dir,
            _server: server,
            host,
            keys,
            ops,
            mid,
            dev,
        }
    }

    fn key(&self, team: &str) -> PathBuf {
        self.keys.join(format!("{team}.key"))
    }

    /// ops builds corebuild with `motd`, signed, and pushes it; its new digest.
    fn ops_pushes(&self, motd: &str) -> String {
        self.ops_pushes_signed(motd, true)
    }

    /// ops' corebuild with `motd` pushed; signed by operations' key or not at all.
    fn ops_pushes_signed(&self, motd: &str, signed: bool) -> String {
        std::fs::write(self.ops.join("corebuild/motd"), motd).unwrap();
        let key = self.key("operations");
        let keys: &[(&str, &Path)] = if signed { &[("operations", &key)] } else { &[] };
        ok(strata(&self.ops, keys).arg("build"));
        ok(strata(&self.ops, &[]).args(["push", "corebuild"]));
        stored(&self.ops, &format!("{}/ops/corebuild:latest", self.host))
    }

    fn watch(&self, name: &'static str, dir: &Path, team: &str) -> Watch {
        let key = self.key(team);
        Watch::start(name, strata(dir, &[(team, &key)]))
    }

    /// `strata log --json` of a project.
    fn log(&self, dir: &Path) -> Vec<Value> {
        let out = ok(strata(dir, &[]).args(["log", "--json"]));
        serde_json::from_str(&out).unwrap()
    }
}

fn short(digest: &str) -> &str {
    &digest[.."sha256:".len() + 12]
}

/// A "watch: pushed HOST/NAME:latest: DIGEST" line for `repository`: its digest.
pub(crate) fn pushed<'a>(line: &'a str, repository: &str) -> Option<&'a str> {
    let rest = line.strip_prefix(&format!("watch: pushed {repository}:latest: "))?;
    rest.split_whitespace().next()
}

fn time_of(event: &Value) -> chrono::DateTime<chrono::Utc> {
    event["time"].as_str().unwrap().parse().unwrap()
}

#[test]
fn watch_follows_an_upstream_push_rebuilds_signs_and_pushes_and_the_next_project_follows() {
    if strata_testutil::require_tool("skopeo").is_none() {
        return;
    }
    let w = World::new();
    let host = w.host.clone();
    let corebuild = format!("{host}/ops/corebuild");
    let httpd = format!("{host}/mid/httpd-php");
    let wordpress = format!("{host}/dev/wordpress");
    let first = w.ops_pushes("acme 1\n");

    // mid's watch locks the upstream, builds httpd-php on it and pushes it; dev's follows that.
    let mut mid = w.watch("mid", &w.mid, "middleware");
    mid.until("first push", |l| pushed(l, &httpd).is_some());
    mid.until("idle pass", |l| l.starts_with("watch: up to date"));
    let mut dev = w.watch("dev", &w.dev, "development");
    dev.until("first push", |l| pushed(l, &wordpress).is_some());
    dev.until("idle pass", |l| l.starts_with("watch: up to date"));
    let lock = std::fs::read_to_string(w.mid.join("strata.lock")).unwrap();
    assert!(lock.contains(&first), "{lock}");

    // ops pushes a patch; nothing else is run.
    let second = w.ops_pushes("acme 2 (motd patched)\n");
    let said = mid.until("push of the patched httpd-php", |l| {
        pushed(l, &httpd).is_some()
    });
    let moved = format!(
        "strata.lock: {corebuild}:latest: {}… → {}…, rebuilt by operations ",
        short(&first),
        short(&second)
    );
    assert!(
        said.iter()
            .any(|l| l.starts_with("watch: ") && l.contains(&moved)),
        "{said:#?}"
    );
    let mid_digest = stored(&w.mid, &format!("{httpd}:latest"));
    assert_eq!(
        pushed(said.last().unwrap(), &httpd),
        Some(mid_digest.as_str())
    );
    // The registry has it (skopeo says), built on the patched corebuild.
    assert_eq!(registry_digest(&format!("{httpd}:latest")), mid_digest);
    let lock = std::fs::read_to_string(w.mid.join("strata.lock")).unwrap();
    assert!(lock.contains(&second) && !lock.contains(&first), "{lock}");
    let built_on = |store: &Path, image: &str, base: &str| {
        let image = strata_oci::Store::open(store.join(".strata/store"))
            .unwrap()
            .image(image)
            .unwrap();
        let base = strata_oci::Store::open(w.ops.join(".strata/store"))
            .unwrap()
            .image(base)
            .unwrap();
        assert_eq!(
            image.layers()[..1],
            base.layers()[..],
            "{image:?} on {base:?}"
        );
    };
    built_on(
        &w.mid,
        &format!("{httpd}:latest"),
        &format!("{corebuild}:latest"),
    );
    // Signed by middleware, verified down through the registry to operations' corebuild.
    let out = ok(strata(&w.mid, &[]).args(["verify", &format!("{httpd}:latest")]));
    assert!(out.contains("verified: 2 tiers"), "{out}");
    // The lock move was committed, naming the upstream change.
    let subject = git(&w.mid, &["log", "-1", "--format=%s"]);
    assert!(
        subject.starts_with(&format!(
            "strata.lock: {corebuild}:latest: {}… → {}…",
            short(&first),
            short(&second)
        )),
        "{subject}"
    );
    assert_eq!(git(&w.mid, &["status", "--porcelain"]), "");
    // `strata log` in mid tells it: the lock move, the rebuild, the signature, the push.
    let log = ok(strata(&w.mid, &[]).arg("log"));
    eprintln!("mid's log:\n{log}");
    for wanted in [
        format!(
            "operations {corebuild}:latest: strata.lock moved: {}…",
            short(&first)
        ),
        "middleware rebuilt httpd-php".to_string(),
        "middleware signed the provenance of httpd-php".to_string(),
        format!("middleware pushed {httpd}:latest"),
    ] {
        assert!(log.contains(&wanted), "{wanted}: {log}");
    }

    // dev sees mid's push and does the same.
    let said = dev.until("push of the rebuilt wordpress", |l| {
        pushed(l, &wordpress).is_some()
    });
    assert!(
        said.iter()
            .any(|l| l.contains(&format!("{httpd}:latest: ")) && l.contains(short(&mid_digest))),
        "{said:#?}"
    );
    let dev_digest = stored(&w.dev, &format!("{wordpress}:latest"));
    assert_eq!(registry_digest(&format!("{wordpress}:latest")), dev_digest);
    let out = ok(strata(&w.dev, &[]).args(["verify", &format!("{wordpress}:latest")]));
    assert!(out.contains("verified: 3 tiers"), "{out}");

    // Time from ops' push to mid's and to dev's, from the events logs.
    let push_time = |log: &[Value], repository: &str| {
        log.iter()
            .rev()
            .find(|e| {
                e["kind"] == "push"
                    && e["result"] == "ok"
                    && e["image"].as_str().unwrap().starts_with(repository)
            })
            .map(time_of)
            .unwrap()
    };
    let t_ops = push_time(&w.log(&w.ops), &corebuild);
    let t_mid = push_time(&w.log(&w.mid), &httpd);
    let t_dev = push_time(&w.log(&w.dev), &wordpress);
    eprintln!(
        "measured: ops push → mid push {} ms, → dev push {} ms (interval 1s)",
        (t_mid - t_ops).num_milliseconds(),
        (t_dev - t_ops).num_milliseconds()
    );

    // Two more patches pushed while a cascade runs (held at the store's build lock, as another
    // `strata build` would hold it): after it, one more cascade, on the last; the middle patch
    // is never built.
    mid.until("idle pass", |l| l.starts_with("watch: up to date"));
    let store = strata_oci::Store::open(w.mid.join(".strata/store")).unwrap();
    let held = store.try_lock_named("build").unwrap().unwrap();
    let third = w.ops_pushes("acme 3\n");
    let mut said = mid.until("the cascade waiting", |l| l.contains("waiting for it"));
    let fourth = w.ops_pushes("acme 4\n");
    let fifth = w.ops_pushes("acme 5\n");
    drop(held);
    said.extend(mid.until("the lock on the last patch, built and pushed", {
        let fifth = fifth.clone();
        let httpd = httpd.clone();
        let on_last = std::cell::Cell::new(false);
        move |l: &str| {
            if l.contains(&format!("→ {}…", short(&fifth))) {
                on_last.set(true);
            }
            on_last.get() && pushed(l, &httpd).is_some()
        }
    }));
    let cascades = said
        .iter()
        .filter(|l| l.starts_with("watch: cascading"))
        .count();
    assert_eq!(cascades, 2, "{said:#?}");
    let moves: Vec<&String> = said
        .iter()
        .filter(|l| {
            l.starts_with("watch: ") && !l.starts_with("watch: committed") && l.contains(" → ")
        })
        .collect();
    assert_eq!(moves.len(), 2, "{said:#?}");
    assert!(
        moves[0].contains(&format!("→ {}…", short(&third))),
        "{said:#?}"
    );
    assert!(
        moves[1].contains(&format!("{}… → {}…", short(&third), short(&fifth))),
        "the middle patch is skipped: {said:#?}"
    );
    // What the first cascade built was stale when it ended: only the last one is pushed.
    let pushes = said.iter().filter(|l| pushed(l, &httpd).is_some()).count();
    assert_eq!(pushes, 1, "{said:#?}");
    assert!(
        !said.iter().any(|l| l.contains(short(&fourth))),
        "{said:#?}"
    );
    let lock = std::fs::read_to_string(w.mid.join("strata.lock")).unwrap();
    assert!(lock.contains(&fifth), "{lock}");
    let final_digest = stored(&w.mid, &format!("{httpd}:latest"));
    assert_eq!(registry_digest(&format!("{httpd}:latest")), final_digest);
    built_on(
        &w.mid,
        &format!("{httpd}:latest"),
        &format!("{corebuild}:latest"),
    );
    mid.until("idle pass", |l| l.starts_with("watch: up to date"));

    // A restarted watch finds the lock moved and the image pushed: it does nothing again.
    let events = w.log(&w.mid).len();
    mid.stop();
    let mut again = w.watch("mid again", &w.mid, "middleware");
    let said = again.until("idle pass", |l| l.starts_with("watch: up to date"));
    assert!(
        !said.iter().any(|l| l.starts_with("watch: cascading")
            || l.starts_with("watch: pushed")
            || l.contains(" → ")),
        "nothing done again: {said:#?}"
    );
    assert_eq!(w.log(&w.mid).len(), events, "nothing recorded again");
    again.stop();
    dev.stop();
}

/// A failure stops only what it reaches and keeps the last good image current (in the store and
/// on the registry), and is not retried until the lock moves again; a push of corebuild that
/// operations did not sign (someone with write access to the registry, not the team's key) is
/// refused: the lock stays and nothing is rebuilt or pushed.
#[test]
fn watch_keeps_the_last_good_image_on_a_failure_and_refuses_an_upstream_its_owner_did_not_sign() {
    if strata_testutil::require_tool("skopeo").is_none() {
        return;
    }
    let w = World::new();
    let host = w.host.clone();
    let corebuild = format!("{host}/ops/corebuild");
    let httpd = format!("{host}/mid/httpd-php");
    let fpm = format!("{host}/mid/php-fpm");
    // mid gets a second image on corebuild, beside httpd-php.
    std::fs::create_dir_all(w.mid.join("php-fpm")).unwrap();
    std::fs::write(
        w.mid.join("php-fpm/Dockerfile"),
        format!("FROM {corebuild}:latest\nCOPY fpm.conf /etc/fpm.conf\n"),
    )
    .unwrap();
    std::fs::write(w.mid.join("php-fpm/fpm.conf"), "workers=4\n").unwrap();
    let chain = w.mid.join("strata.toml");
    let text = std::fs::read_to_string(&chain).unwrap()
        + "[[image]]\nname = \"php-fpm\"\nowner = \"middleware\"\ncontext = \"php-fpm\"\n";
    std::fs::write(&chain, text).unwrap();
    let first = w.ops_pushes("acme 1\n");
    let mut mid = w.watch("mid", &w.mid, "middleware");
    mid.until("idle pass", |l| l.starts_with("watch: up to date"));
    let good_httpd = registry_digest(&format!("{httpd}:latest"));
    let good_fpm = registry_digest(&format!("{fpm}:latest"));
    let lock = std::fs::read_to_string(w.mid.join("strata.lock")).unwrap();

    // An unsigned corebuild pushed over operations' tag: refused, the lock stays.
    let rogue = w.ops_pushes_signed("rogue\n", false);
    let said = mid.until("the refusal, then an idle pass", |l| {
        l.starts_with("watch: up to date")
    });
    let refused = format!(
        "watch: refused: {corebuild}:latest moved to {rogue} but it is not signed by its owner \
         operations (no signed provenance verifies with a key this chain trusts); \
         strata.lock not moved"
    );
    assert!(said.contains(&refused), "{said:#?}");
    assert!(
        !said
            .iter()
            .any(|l| l.starts_with("watch: cascading") || l.starts_with("watch: pushed")),
        "{said:#?}"
    );
    assert_eq!(
        std::fs::read_to_string(w.mid.join("strata.lock")).unwrap(),
        lock
    );
    assert_eq!(registry_digest(&format!("{httpd}:latest")), good_httpd);
    let log = ok(strata(&w.mid, &[]).arg("log"));
    assert!(
        log.contains(&format!(
            "operations {corebuild}:latest: REFUSED: moved to {rogue} but it is not signed"
        )),
        "{log}"
    );

    // php-fpm breaks (its team removed a file); operations pushes a signed patch: httpd-php
    // is rebuilt and pushed, php-fpm fails and its last good image stays, and the watch waits.
    std::fs::remove_file(w.mid.join("php-fpm/fpm.conf")).unwrap();
    let second = w.ops_pushes("acme 2\n");
    let said = mid.until("the wait after the failure", |l| {
        l.starts_with("watch: php-fpm not rebuilt")
    });
    assert!(
        said.iter()
            .any(|l| l.contains(&format!("{}… → {}…", short(&first), short(&second)))),
        "{said:#?}"
    );
    assert!(
        said.iter().any(|l| l.contains("php-fpm: FAILED")),
        "{said:#?}"
    );
    let new_httpd = stored(&w.mid, &format!("{httpd}:latest"));
    assert_ne!(new_httpd, good_httpd);
    assert_eq!(registry_digest(&format!("{httpd}:latest")), new_httpd);
    assert_eq!(registry_digest(&format!("{fpm}:latest")), good_fpm);
    assert_eq!(stored(&w.mid, &format!("{fpm}:latest")), good_fpm);

    // Fixed, and the next patch: php-fpm is built and pushed again, its failure tried once.
    std::fs::write(w.mid.join("php-fpm/fpm.conf"), "workers=8\n").unwrap();
    w.ops_pushes("acme 3\n");
    mid.until("php-fpm pushed", |l| pushed(l, &fpm).is_some());
    let new_fpm = stored(&w.mid, &format!("{fpm}:latest"));
    assert_ne!(new_fpm, good_fpm);
    assert_eq!(registry_digest(&format!("{fpm}:latest")), new_fpm);
    let failures = w
        .log(&w.mid)
        .iter()
        .filter(|e| e["kind"] == "build" && e["image"] == "php-fpm" && e["result"] == "failed")
        .count();
    assert_eq!(
        failures, 1,
        "a failed cascade is not retried on the same lock"
    );
    mid.stop();
}

/// With a deploy file beside the chain, both loops run: the upstreams are followed while the
/// deploy file is watched (a bad edit is one line, and following goes on).
#[test]
fn watch_follows_upstreams_beside_a_deploy_file() {
    if strata_testutil::require_tool("skopeo").is_none() {
        return;
    }
    let w = World::new();
    let httpd = format!("{}/mid/httpd-php", w.host);
    w.ops_pushes("acme 1\n");
    let deploy = w.mid.join("deploy.toml");
    std::fs::write(&deploy, "name = \"mid-prod\"\n").unwrap();
    let mut mid = w.watch("mid", &w.mid, "middleware");
    mid.until("first push", |l| pushed(l, &httpd).is_some());
    std::fs::write(&deploy, "name = \"mid-prod\"\nreplicas = 3\n").unwrap();
    let said = mid.until("the bad edit reported", |l| l.contains("replicas"));
    assert!(
        said.last().unwrap().contains("deploy.toml:2:1"),
        "{said:#?}"
    );
    w.ops_pushes("acme 2\n");
    mid.until("the patched httpd-php pushed", |l| {
        pushed(l, &httpd).is_some()
    });
    let digest = stored(&w.mid, &format!("{httpd}:latest"));
    assert_eq!(registry_digest(&format!("{httpd}:latest")), digest);
    mid.stop();
}

/// A watch that died right after moving the lock (here: `strata update` moved it and nothing
/// else ran) is level-triggered when it starts again: the images on the moved upstream are stale,
/// so they are rebuilt and pushed, without the lock moving a second time.
#[test]
fn a_lock_moved_before_a_crash_is_built_and_pushed_by_the_next_watch() {
    if strata_testutil::require_tool("skopeo").is_none() {
        return;
    }
    let w = World::new();
    let httpd = format!("{}/mid/httpd-php", w.host);
    w.ops_pushes("acme 1\n");
    let key = w.key("middleware");
    ok(strata(&w.mid, &[("middleware", &key)]).arg("build"));
    ok(strata(&w.mid, &[]).args(["push", "httpd-php"]));
    let before = registry_digest(&format!("{httpd}:latest"));
    let second = w.ops_pushes("acme 2\n");
    ok(strata(&w.mid, &[]).arg("update"));
    let lock = std::fs::read_to_string(w.mid.join("strata.lock")).unwrap();
    assert!(lock.contains(&second), "{lock}");

    let mut mid = w.watch("mid", &w.mid, "middleware");
    let said = mid.until("the push", |l| pushed(l, &httpd).is_some());
    assert!(!said.iter().any(|l| l.contains(" → ")), "{said:#?}");
    assert!(
        said.iter()
            .any(|l| l.starts_with("watch: cascading from httpd-php"))
    );
    let after = stored(&w.mid, &format!("{httpd}:latest"));
    assert_ne!(after, before);
    assert_eq!(registry_digest(&format!("{httpd}:latest")), after);
    assert_eq!(
        std::fs::read_to_string(w.mid.join("strata.lock")).unwrap(),
        lock
    );
    mid.stop();
}
