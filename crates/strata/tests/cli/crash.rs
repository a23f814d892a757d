//! The store survives a crash anywhere (issue 14): `store gc`, both ends of a `push` to
//! `strata serve`, and a chain `build` are killed at their durable steps, and after each kill the
//! next command succeeds, `strata store fsck --json` is clean, and nothing committed before the
//! kill is lost (every tag that existed still resolves, and its manifest, config and layers
//! verify).
//!
//! The kills are fault injection (`STRATA_FAULT_AT`, see `strata_oci::fault`): the process sends
//! itself SIGKILL just before its Nth fsync, rename or unlink in the store, as a crash or `kill -9`
//! there would stop it. gc and the server are killed at every one of their points; a chain build
//! passes too many of them for a test, so it is killed at a seeded random sample (the seed is
//! printed; `STRATA_CRASH_SEED` replays it). The client end of a push holds no store lock and
//! writes nothing durable, so it is killed after a seeded random delay.

#![allow(clippy::print_stderr)]

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;
use strata_oci::{MediaType, Store, random};

use crate::common::Serve;

fn strata() -> Command {
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin!("strata"));
    cmd.env_remove("STRATA_STORE")
        .env_remove("STRATA_CHAIN")
        .env_remove(strata_oci::fault::ENV);
    cmd
}

fn on_store(store: &Path) -> Command {
    let mut cmd = strata();
    cmd.arg("--store").arg(store);
    cmd
}

fn text(out: &Output) -> String {
    format!(
        "{}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Run `cmd` killed at its `n`th durable step. True when it died there; false when it has fewer
/// steps and ran to the end (it must then have succeeded).
fn run_killed_at(cmd: &mut Command, n: u64) -> bool {
    let out = cmd
        .env(strata_oci::fault::ENV, format!("any:{n}"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    if out.status.signal() == Some(9) {
        return true;
    }
    assert!(out.status.success(), "not killed at {n}: {}", text(&out));
    false
}

/// The seed for the random choices of this run: `STRATA_CRASH_SEED`, or fresh (printed either way).
fn seed(test: &str) -> u64 {
    let seed = std::env::var("STRATA_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("{test}: STRATA_CRASH_SEED={seed}");
    seed
}

/// xorshift64: enough randomness to pick kill points.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// Every tag of the store and the digest it names.
fn tags(store: &Path) -> BTreeMap<String, String> {
    Store::open(store)
        .unwrap()
        .refs()
        .list()
        .unwrap()
        .into_iter()
        .map(|t| (t.name, t.descriptor.digest().to_string()))
        .collect()
}

/// fsck is clean, and every tag of `before` still resolves (to the same digest unless it is
/// `moving`) to an image whose manifest, config and layers verify.
fn assert_sound(store: &Path, before: &BTreeMap<String, String>, moving: &[&str], when: &str) {
    let out = on_store(store)
        .args(["store", "fsck", "--json"])
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{when}: fsck said no JSON ({e}): {}", text(&out)));
    assert!(
        out.status.success() && report["problems"].as_array().is_some_and(Vec::is_empty),
        "{when}: fsck: {}",
        text(&out)
    );
    let opened = Store::open(store).unwrap();
    for (name, digest) in before {
        let resolved = opened
            .refs()
            .resolve(name)
            .unwrap_or_else(|e| panic!("{when}: {name} was lost: {e}"));
        if !moving.contains(&name.as_str()) {
            assert_eq!(
                &resolved.digest().to_string(),
                digest,
                "{when}: {name} moved"
            );
        }
        let image = opened
            .image_from_descriptor(&resolved)
            .unwrap_or_else(|e| panic!("{when}: {name} does not read: {e}"));
        for layer in image.layers() {
            opened
                .blobs()
                .read_descriptor(layer)
                .unwrap_or_else(|e| panic!("{when}: a layer of {name}: {e}"));
        }
    }
}

/// Nothing a killed writer left behind survives the next `gc`: no temp file in `.strata/tmp`,
/// and no `.tmp-*` file of an atomic write anywhere in the store.
fn assert_no_leftovers(store: &Path, when: &str) {
    let mut left = Vec::new();
    let mut stack = vec![store.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            if entry.file_type().unwrap().is_dir() {
                stack.push(path.clone());
            }
            if entry.file_name().to_string_lossy().starts_with(".tmp-")
                || path.parent() == Some(&store.join(".strata/tmp"))
            {
                left.push(path);
            }
        }
    }
    assert_eq!(left, Vec::<PathBuf>::new(), "{when}: left behind");
}

fn copy_dir(from: &Path, to: &Path) {
    let status = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(status.success());
}

/// A store with two tagged images, and what gc removes: an untagged image, a referrer whose
/// subject is gone (its index entry goes first), loose blobs, a killed writer's temp file and a
/// killed build's directory.
fn store_with_garbage(root: &Path) -> Store {
    let store = Store::init(root).unwrap();
    for (i, tag) in ["acme/app:1", "acme/app:latest"].into_iter().enumerate() {
        let image = random::image_with_seed(&store, 2, 3000, i as u64).unwrap();
        store.refs().tag(tag, image.descriptor()).unwrap();
    }
    let gone = random::image_with_seed(&store, 2, 1000, 7).unwrap();
    store.refs().tag("acme/gone:1", gone.descriptor()).unwrap();
    let empty = store.blobs().put(b"{}").unwrap();
    let mut manifest = strata_oci::image::new_manifest(
        empty.descriptor(MediaType::from("application/vnd.oci.empty.v1+json")),
        Vec::new(),
    );
    manifest.set_subject(Some(gone.descriptor().clone()));
    store.put_referrer(&manifest).unwrap();
    store.refs().untag("acme/gone:1").unwrap();
    for i in 0..3 {
        store
            .blobs()
            .put(format!("garbage {i}").as_bytes())
            .unwrap();
    }
    std::fs::write(store.tmp_dir().join("blob-killed"), b"half").unwrap();
    std::fs::create_dir_all(store.tmp_dir().join("build-1/rootfs")).unwrap();
    store
}

// Issue 14: killing gc after it unlinked blobs but before it rewrote index.json left entries
// pointing at missing blobs. Killed at each of its steps, gc leaves a sound store, and the next
// gc finishes the job.
#[test]
fn gc_killed_at_each_step_leaves_a_sound_store_and_the_next_gc_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let template = dir.path().join("template");
    store_with_garbage(&template);
    let before = tags(&template);
    let mut killed = 0;
    for n in 1.. {
        let store = dir.path().join(format!("s{n}"));
        copy_dir(&template, &store);
        let mut gc = on_store(&store);
        gc.args(["store", "gc"]);
        if !run_killed_at(&mut gc, n) {
            break;
        }
        killed += 1;
        let when = format!("gc killed at step {n}");
        assert_sound(&store, &before, &[], &when);
        let out = on_store(&store).args(["store", "gc"]).output().unwrap();
        assert!(out.status.success(), "{when}, then gc: {}", text(&out));
        assert_sound(&store, &before, &[], &format!("{when}, then gc"));
        assert_no_leftovers(&store, &format!("{when}, then gc"));
        let opened = Store::open(&store).unwrap();
        let (blobs, _) = opened.blobs().list().unwrap();
        assert_eq!(
            blobs.len(),
            2 * (2 + 2),
            "{when}, then gc: only the tagged images stay"
        );
        std::fs::remove_dir_all(&store).unwrap();
    }
    eprintln!("gc killed at {killed} steps");
    // An index write, five blobs and two leftovers: every step was a kill point.
    assert!(killed >= 10, "gc passed only {killed} steps");
}

/// `strata push IMAGE DEST` from `source`, output collected. Not retried: a server killed under
/// it stays dead.
fn push(source: &Path, image: &str, dest: &str) -> Output {
    on_store(source)
        .env("HOME", source.parent().unwrap())
        .args(["push", "--retries", "0", image, dest])
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

// The server end of a push killed at each of its durable steps (a blob's fsync and rename, a
// membership record, index.json): the next push succeeds, and what an earlier push committed
// is intact.
#[test]
fn a_server_killed_at_each_step_of_a_push_loses_nothing_and_takes_the_next_push() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("source");
    let store = Store::init(&source).unwrap();
    let old = random::image_with_seed(&store, 1, 2000, 1).unwrap();
    store.refs().tag("acme/app:1", old.descriptor()).unwrap();
    let new = random::image_with_seed(&store, 3, 2000, 2).unwrap();
    store.refs().tag("acme/app:2", new.descriptor()).unwrap();
    // The served store already holds acme/app:1, pushed before.
    let template = dir.path().join("served");
    {
        let server = Serve::start(&template, &[]);
        let out = push(
            &source,
            "acme/app:1",
            &format!("{}/acme/app:1", server.host),
        );
        assert!(out.status.success(), "{}", text(&out));
    }
    let before = tags(&template);
    assert_eq!(before.len(), 1);
    let mut killed = 0;
    for n in 1.. {
        let served = dir.path().join(format!("served{n}"));
        copy_dir(&template, &served);
        let mut server = Serve::start_with_env(
            &served,
            &[],
            &[(strata_oci::fault::ENV, &format!("any:{n}"))],
        );
        let out = push(
            &source,
            "acme/app:2",
            &format!("{}/acme/app:2", server.host),
        );
        if out.status.success() && server.try_status().is_none() {
            // Past its last step: the server is alive and the push complete.
            break;
        }
        // The push failed because the server died at step n (it may be exiting still: a
        // SIGTERM does not stop a process being killed, and makes a live one exit cleanly).
        let _ = Command::new("kill")
            .args(["-TERM", &server.pid().to_string()])
            .status();
        let status = server.wait();
        assert_eq!(status.signal(), Some(9), "{status}: {}", text(&out));
        killed += 1;
        let when = format!("server killed at step {n} of a push");
        assert_sound(&served, &before, &[], &when);
        let server = Serve::start(&served, &[]);
        let out = push(
            &source,
            "acme/app:2",
            &format!("{}/acme/app:2", server.host),
        );
        assert!(out.status.success(), "{when}, then push: {}", text(&out));
        drop(server);
        let mut after = before.clone();
        after.insert(
            "localhost/acme/app:2".to_string(),
            new.descriptor().digest().to_string(),
        );
        assert_eq!(tags(&served), after, "{when}, then push");
        assert_sound(&served, &after, &[], &format!("{when}, then push"));
        let out = on_store(&served).args(["store", "gc"]).output().unwrap();
        assert!(out.status.success(), "{when}, then gc: {}", text(&out));
        assert_sound(&served, &after, &[], &format!("{when}, then gc"));
        assert_no_leftovers(&served, &format!("{when}, then gc"));
        std::fs::remove_dir_all(&served).unwrap();
    }
    eprintln!("the server killed at {killed} steps");
    // Five blobs, a record and the index: every step was a kill point.
    assert!(killed >= 10, "the server passed only {killed} steps");
}

// The client end of a push, killed (SIGKILL) after a seeded random delay within the time a push
// takes: the server and both stores stay sound, and the next push succeeds.
#[test]
fn a_push_client_killed_at_random_leaves_both_stores_sound() {
    let mut state = seed("a_push_client_killed_at_random_leaves_both_stores_sound") | 1;
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("source");
    let store = Store::init(&source).unwrap();
    let image = random::image_with_seed(&store, 4, 200_000, 3).unwrap();
    store.refs().tag("acme/app:1", image.descriptor()).unwrap();
    let served = dir.path().join("served");
    let server = Serve::start(&served, &[]);
    let dest = format!("{}/acme/app:1", server.host);
    let source_tags = tags(&source);
    let started = std::time::Instant::now();
    let out = push(
        &source,
        "acme/app:1",
        &format!("{}/acme/app:0", server.host),
    );
    assert!(out.status.success(), "{}", text(&out));
    let took = started.elapsed().as_micros().max(1) as u64;
    let before = tags(&served);
    for round in 0..8 {
        let delay = next(&mut state) % took;
        let mut child = on_store(&source)
            .env("HOME", dir.path())
            .args(["push", "acme/app:1", &dest])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Not synchronisation: the kill lands at a random moment of the push, on purpose.
        std::thread::sleep(std::time::Duration::from_micros(delay));
        let _ = child.kill();
        let _ = child.wait();
        let when = format!("push client killed after {delay} µs (round {round})");
        assert_sound(&served, &before, &[], &when);
        assert_sound(&source, &source_tags, &[], &when);
    }
    let out = push(&source, "acme/app:1", &dest);
    assert!(out.status.success(), "the next push: {}", text(&out));
    drop(server);
    let mut after = before.clone();
    after.insert(
        "localhost/acme/app:1".to_string(),
        image.descriptor().digest().to_string(),
    );
    assert_eq!(tags(&served), after);
    assert_sound(&served, &after, &[], "after the kills and a push");
}

// A chain build killed at seeded random steps among those it passes (blobs of layers, configs
// and manifests, tags): after each kill fsck is clean, every tag that existed still reads
// (build-number tags never move; `latest` and version tags may have moved forward), and the next
// build succeeds. Each round changes the middleware image, so the build writes new layers and
// rebuilds the app on top.
#[test]
fn a_chain_build_killed_at_random_steps_leaves_a_sound_store_and_the_next_build_succeeds() {
    let Some(dir) = crate::cascade::example() else {
        return;
    };
    let d = dir.path();
    let store = d.join(".strata/store");
    let (ok, summary) = crate::cascade::build(d, &[]);
    assert!(ok, "{summary}");
    let dockerfile = d.join("httpd-php/Dockerfile");
    let change = |round: &str| {
        let mut text = std::fs::read_to_string(&dockerfile).unwrap();
        text.push_str(&format!("RUN echo {round} > crash-round\n"));
        std::fs::write(&dockerfile, text).unwrap();
    };
    // How many steps such a build passes.
    change("count");
    let count = d.join("steps");
    let out = strata()
        .arg("-C")
        .arg(d)
        .arg("build")
        .env(strata_oci::fault::ENV, format!("count:{}", count.display()))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let steps = std::fs::read_to_string(&count).unwrap().lines().count() as u64;
    assert!(steps > 10, "a build passed only {steps} steps");
    let mut state = seed("a_chain_build_killed_at_random_steps") | 1;
    for round in 0..12 {
        change(&round.to_string());
        let n = 1 + next(&mut state) % steps;
        let before = tags(&store);
        let moving: Vec<String> = before
            .keys()
            .filter(|t| {
                !t.rsplit(':')
                    .next()
                    .is_some_and(|tag| tag.bytes().all(|b| b.is_ascii_digit()))
            })
            .cloned()
            .collect();
        let moving: Vec<&str> = moving.iter().map(String::as_str).collect();
        let mut cmd = strata();
        cmd.arg("-C").arg(d).arg("build");
        let killed = run_killed_at(&mut cmd, n);
        let when = format!("round {round}: build killed at step {n} of {steps} ({killed})");
        assert_sound(&store, &before, &moving, &when);
        let (ok, summary) = crate::cascade::build(d, &[]);
        assert!(ok, "{when}, then build: {summary}");
        assert_sound(&store, &before, &moving, &format!("{when}, then build"));
    }
}
