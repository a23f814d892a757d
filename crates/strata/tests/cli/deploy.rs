//! `strata deploy` and `strata watch` with real podman (issue 17): busybox images built by strata
//! serving a page with `busybox httpd`, deployed behind the deployment's front listener. Each test
//! uses its own deploy name (the containers' prefix), its own podman storage and store, and removes
//! its containers and listeners at the end.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use strata_testutil::{busybox_rootfs_tar, require_tool, run_ok};

use crate::common::{free_port, http_get};

/// One test's world: a store, a podman storage, a deploy file, a public port.
struct World {
    dir: tempfile::TempDir,
    store: PathBuf,
    name: String,
    port: u16,
    podman_args: String,
    /// How long a new container has to pass its health check.
    health_timeout: &'static str,
    /// The store `strata deploy` uses (the build store unless a test says otherwise).
    deploy_store: PathBuf,
    /// The image the deployment follows.
    image: String,
    /// The deployment's `network`.
    network: &'static str,
}

const RUN_ARGS: &str = "--runtime runc --ulimit nofile=20000:20000 --ulimit nproc=1024:1024";

impl World {
    /// None when podman or busybox is missing (outside CI).
    fn new(test: &str) -> Option<World> {
        require_tool("podman")?;
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("base");
        std::fs::create_dir_all(&base).unwrap();
        busybox_rootfs_tar(&base.join("rootfs.tar"))?;
        std::fs::write(base.join("Dockerfile"), "FROM scratch\nADD rootfs.tar /\n").unwrap();
        let store = dir.path().join("store");
        let world = World {
            podman_args: format!(
                "--root {} --runroot {} --storage-driver vfs",
                dir.path().join("podman-root").display(),
                dir.path().join("podman-run").display()
            ),
            name: format!("t{}-{test}", std::process::id()),
            port: free_port(),
            health_timeout: "60s",
            deploy_store: store.clone(),
            image: "acme/web".into(),
            network: "none",
            store,
            dir,
        };
        // The teams and the keys the chain file trusts: development owns the deployments.
        let mut chain = String::from("name = \"acme\"\n");
        for team in ["development", "operations"] {
            run_ok(
                world
                    .strata()
                    .args(["key", "generate", "--team", team, "--out", "keys"]),
            );
            chain.push_str(&format!("[teams.{team}]\nkeys = [\"keys/{team}.pub\"]\n"));
        }
        std::fs::write(world.dir.path().join("strata.toml"), chain).unwrap();
        world.build_image(&base, "localhost/acme/base:latest");
        Some(world)
    }

    fn strata(&self) -> Command {
        let mut c = Command::new(assert_cmd::cargo::cargo_bin!("strata"));
        c.env_remove("STRATA_CHAIN")
            .env("STRATA_STORE", &self.deploy_store)
            .env("STRATA_DEPLOY_FILE", self.dir.path().join("deploy.toml"))
            .env("STRATA_PODMAN_ARGS", &self.podman_args)
            .env("STRATA_PODMAN_RUN_ARGS", RUN_ARGS)
            .env("STRATA_TEAM", "development")
            .env(
                "STRATA_KEY_DEVELOPMENT",
                self.dir.path().join("keys/development.key"),
            )
            .env(
                "STRATA_KEY_OPERATIONS",
                self.dir.path().join("keys/operations.key"),
            )
            .current_dir(self.dir.path());
        c
    }

    fn build_image(&self, context: &Path, tag: &str) -> String {
        let out = run_ok(
            self.strata()
                .arg("--store")
                .arg(&self.store)
                .arg("build-image")
                .arg(context)
                .args(["-t", tag, "--json"]),
        );
        let v: Value = serde_json::from_str(&out).unwrap();
        v["digest"].as_str().unwrap().to_string()
    }

    /// Build `localhost/acme/web:latest` serving `page` (or, `healthy = false`, serving nothing);
    /// returns its digest.
    fn web(&self, page: &str, cmd: &str) -> String {
        let ctx = self
            .dir
            .path()
            .join(format!("web-{}", page.replace(' ', "-")));
        std::fs::create_dir_all(ctx.join("www")).unwrap();
        std::fs::write(ctx.join("www/index.html"), format!("{page}\n")).unwrap();
        std::fs::write(
            ctx.join("Dockerfile"),
            format!(
                "FROM localhost/acme/base:latest\nCOPY www /www\nCMD [\"/bin/sh\", \"-c\", \"{cmd}\"]\n"
            ),
        )
        .unwrap();
        self.build_image(&ctx, "localhost/acme/web:latest")
    }

    fn good(&self, page: &str) -> String {
        self.web(page, "exec /bin/busybox httpd -f -p 8080 -h /www")
    }

    fn write_deploy(&self, extra: &str) {
        std::fs::write(
            self.dir.path().join("deploy.toml"),
            format!(
                "name = \"{}\"\nowner = \"development\"\n[[deployment]]\nname = \"web\"\n\
                 image = \"{}\"\nports = [\"127.0.0.1:{}:8080\"]\n\
                 health = {{ http = \"/index.html\", port = 8080, timeout = \"{}\" }}\n\
                 stop_grace = \"1s\"\nnetwork = \"{}\"\n{extra}",
                self.name, self.image, self.port, self.health_timeout, self.network
            ),
        )
        .unwrap();
    }

    /// `strata deploy ARGS --json`: (success, stdout as JSON).
    fn deploy(&self, args: &[&str]) -> (bool, Value) {
        let out = self
            .strata()
            .arg("deploy")
            .args(args)
            .arg("--json")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
            panic!(
                "deploy {args:?}: {e}: {stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (out.status.success(), value)
    }

    fn status(&self) -> Value {
        self.deploy(&["status"]).1[0].clone()
    }

    fn running(&self) -> Option<String> {
        self.status()["running"]["digest"]
            .as_str()
            .map(str::to_string)
    }

    /// The page the public port serves.
    fn page(&self) -> String {
        http_get(self.port, "/index.html").unwrap_or_else(|e| panic!("GET: {e}"))
    }

    fn podman(&self) -> Command {
        let mut c = Command::new("podman");
        c.args(self.podman_args.split_whitespace());
        c
    }

    /// This test's containers: (name, running).
    fn containers(&self) -> Vec<(String, bool)> {
        let out = run_ok(self.podman().args([
            "ps",
            "-a",
            "--filter",
            &format!("label=dev.strata.deploy={}/web", self.name),
            "--format",
            "{{.Names}} {{.State}}",
        ]));
        out.lines()
            .filter_map(|l| l.split_once(' '))
            .map(|(n, s)| (n.to_string(), s.starts_with("Up") || s == "running"))
            .collect()
    }

    fn events(&self, result: &str) -> Vec<Value> {
        let out = run_ok(self.strata().args(["log", "--json"]));
        let all: Vec<Value> = serde_json::from_str(&out)
            .or_else(|_| {
                out.lines()
                    .map(serde_json::from_str)
                    .collect::<Result<Vec<Value>, _>>()
            })
            .unwrap();
        all.into_iter()
            .filter(|e| e["kind"] == "deploy" && e["result"] == result)
            .collect()
    }

    fn watch(&self) -> Child {
        self.strata()
            .args(["watch", "--interval", "1s", "--json"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = self.strata().args(["deploy", "down", "web"]).output();
        // The podman storage is this test's own: whatever `down` left goes too.
        let _ = self
            .podman()
            .args(["rm", "--all", "--force", "-t", "0"])
            .output();
    }
}

/// Wait for `done` to hold (a state another process reaches), failing after a generous deadline.
fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !done() {
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn auto_trigger_rolls_out_each_new_digest_by_digest_behind_one_public_port() {
    let Some(mut w) = World::new("auto") else {
        return;
    };
    // podman's default network (the others use "none")
    w.network = "bridge";
    let v1 = w.good("hello v1");
    w.write_deploy("");
    let (ok, out) = w.deploy(&[]);
    assert!(ok, "{out}");
    assert_eq!(out[0]["result"], "deployed", "{out}");
    assert_eq!(w.page(), "hello v1");
    assert_eq!(w.running().as_deref(), Some(v1.as_str()));

    // nothing new: nothing done
    let (ok, out) = w.deploy(&[]);
    assert!(ok);
    assert_eq!(out[0]["result"], "up-to-date", "{out}");

    let v2 = w.good("hello v2");
    let (ok, out) = w.deploy(&["web"]);
    assert!(ok, "{out}");
    assert_eq!(out[0]["result"], "deployed");
    assert!(
        out[0]["message"]
            .as_str()
            .unwrap()
            .contains(&format!("replacing {v1}")),
        "{out}"
    );
    assert_eq!(w.page(), "hello v2");
    assert_eq!(w.running().as_deref(), Some(v2.as_str()));
    let containers = w.containers();
    assert_eq!(containers.len(), 1, "{containers:?}");
    assert!(containers[0].1);
    // podman runs the digest, not the tag
    let inspect = run_ok(w.podman().args([
        "inspect",
        &containers[0].0,
        "--format",
        "{{index .Config.Labels \"dev.strata.deploy.digest\"}}",
    ]));
    assert_eq!(inspect.trim(), v2);

    let (_, history) = w.deploy(&["history", "web"]);
    let digests: Vec<_> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["digest"].clone())
        .collect();
    assert_eq!(digests, [Value::from(v1.clone()), Value::from(v2.clone())]);
    let deployed = w.events("ok");
    assert_eq!(deployed.len(), 2, "{deployed:?}");
    assert_eq!(deployed.last().unwrap()["oldDigest"], Value::from(v1));
}

#[test]
fn manual_trigger_waits_for_approve() {
    let Some(w) = World::new("manual") else {
        return;
    };
    let v1 = w.good("manual v1");
    w.write_deploy("trigger = \"manual\"\n");
    let (_, out) = w.deploy(&[]);
    assert_eq!(out[0]["result"], "pending", "{out}");
    assert!(w.containers().is_empty());
    assert_eq!(w.status()["pending"]["digest"], Value::from(v1.clone()));

    let (ok, out) = w.deploy(&["approve", "web"]);
    assert!(ok, "{out}");
    assert_eq!(out[0]["result"], "deployed", "{out}");
    assert_eq!(w.page(), "manual v1");

    let v2 = w.good("manual v2");
    let (_, out) = w.deploy(&[]);
    assert_eq!(out[0]["result"], "pending", "{out}");
    assert_eq!(w.page(), "manual v1");
    // approving some other digest is refused
    let out = w
        .strata()
        .args(["deploy", "approve", "web", &v1])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let (ok, out) = w.deploy(&["approve", "web", &v2]);
    assert!(ok, "{out}");
    assert_eq!(w.page(), "manual v2");
    assert_eq!(w.events("approved").len(), 2);
}

#[test]
fn a_failing_health_check_rolls_back_and_the_bad_digest_is_not_retried() {
    let Some(mut w) = World::new("health") else {
        return;
    };
    w.health_timeout = "5s";
    let v1 = w.good("stable v1");
    w.write_deploy("");
    assert!(w.deploy(&[]).0);
    // serves nothing: the health check fails
    let bad = w.web("broken", "exec /bin/busybox sleep 600");
    let (ok, out) = w.deploy(&[]);
    assert!(!ok, "{out}");
    assert_eq!(out[0]["result"], "rolled-back", "{out}");
    assert_eq!(w.page(), "stable v1");
    assert_eq!(w.running().as_deref(), Some(v1.as_str()));
    assert_eq!(w.status()["bad"], serde_json::json!([bad]));
    assert_eq!(w.containers().len(), 1);

    // not retried: no new container, no new history
    let history = w.deploy(&["history", "web"]).1.as_array().unwrap().len();
    let (ok, out) = w.deploy(&[]);
    assert!(ok, "{out}");
    assert_eq!(out[0]["result"], "known-bad");
    assert_eq!(
        w.deploy(&["history", "web"]).1.as_array().unwrap().len(),
        history
    );

    // a newer digest goes out
    let v3 = w.good("fixed v3");
    let (ok, out) = w.deploy(&[]);
    assert!(ok, "{out}");
    assert_eq!(w.page(), "fixed v3");
    assert_eq!(w.running(), Some(v3));
}

#[test]
fn a_hold_survives_a_hundred_reconciles_and_new_images_and_a_rollback_holds() {
    let Some(w) = World::new("hold") else { return };
    let v1 = w.good("held v1");
    w.write_deploy("");
    assert!(w.deploy(&[]).0);
    assert!(w.deploy(&["hold", "web"]).0);
    let v2 = w.good("new v2");
    for n in 0..100 {
        if n == 50 {
            w.good("newer v3");
        }
        let (ok, out) = w.deploy(&[]);
        assert!(ok && out[0]["result"] == "held", "{n}: {out}");
    }
    assert_eq!(w.page(), "held v1");
    assert_eq!(w.running().as_deref(), Some(v1.as_str()));
    assert!(w.deploy(&["release", "web"]).0);
    let (_, out) = w.deploy(&[]);
    assert_eq!(out[0]["result"], "deployed", "{out}");
    assert_eq!(w.page(), "newer v3");

    // a manual rollback holds: the next image does not overwrite it (Flux's and Argo's complaint)
    let (ok, out) = w.deploy(&["rollback", "web", "--to", "1"]);
    assert!(ok, "{out}");
    assert_eq!(w.page(), "held v1");
    w.good("even newer v4");
    let (_, out) = w.deploy(&[]);
    assert_eq!(out[0]["result"], "held", "{out}");
    assert_eq!(w.page(), "held v1");
    assert_ne!(w.running(), Some(v2));
}

#[test]
fn kill_9_of_watch_mid_rollout_converges_to_one_running_version() {
    let Some(w) = World::new("kill") else { return };
    w.good("before v1");
    w.write_deploy("");
    assert!(w.deploy(&[]).0);
    // v2 takes a while to answer, so the rollout is caught in the middle
    let v2 = w.web(
        "after v2",
        "sleep 4; exec /bin/busybox httpd -f -p 8080 -h /www",
    );
    w.write_deploy("");
    let mut watch = w.watch();
    let state = w
        .deploy_store
        .join(".strata/deploy")
        .join(&w.name)
        .join("web.json");
    // the new container is made (it answers only after 4 s): the rollout is in the middle
    wait_for("the rollout to start", || w.containers().len() == 2);
    watch.kill().unwrap();
    watch.wait().unwrap();
    assert!(
        std::fs::read_to_string(&state)
            .unwrap()
            .contains("\"inFlight\": {")
    );

    let mut watch = w.watch();
    wait_for("convergence on v2", || {
        w.running().as_deref() == Some(v2.as_str())
    });
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(watch.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert!(watch.wait().unwrap().success());
    let containers = w.containers();
    assert_eq!(containers.len(), 1, "{containers:?}");
    assert!(containers[0].1);
    assert_eq!(w.page(), "after v2");
}

#[test]
fn an_unverified_image_is_refused_and_the_running_version_stays() {
    let Some(w) = World::new("verify") else {
        return;
    };
    let v1 = w.good("trusted v1");
    w.write_deploy("");
    assert!(w.deploy(&[]).0);
    std::fs::write(
        w.dir.path().join("strata.toml"),
        "name = \"acme\"\n[teams.development]\n",
    )
    .unwrap();
    w.write_deploy("require = { verified = true }\n");
    let v2 = w.good("unsigned v2");
    for _ in 0..2 {
        let out = w
            .strata()
            .env("STRATA_CHAIN", w.dir.path().join("strata.toml"))
            .args(["deploy", "--json"])
            .output()
            .unwrap();
        assert!(!out.status.success());
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v[0]["result"], "refused", "{v}");
    }
    assert_eq!(w.page(), "trusted v1");
    assert_eq!(w.running(), Some(v1));
    // on record, once
    let refused = w.events("refused");
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0]["newDigest"], Value::from(v2));
}

#[test]
fn a_replace_loses_no_request() {
    let Some(w) = World::new("nodrop") else {
        return;
    };
    w.good("steady v1");
    w.write_deploy("");
    assert!(w.deploy(&[]).0);
    w.good("steady v2");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let port = w.port;
    let client = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let (mut sent, mut failed, mut pages) =
                (0, Vec::new(), std::collections::BTreeSet::new());
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                sent += 1;
                match http_get(port, "/index.html") {
                    Ok(page) => {
                        pages.insert(page);
                    }
                    Err(e) => failed.push(e),
                }
            }
            (sent, failed, pages)
        })
    };
    let (ok, out) = w.deploy(&[]);
    // a few more requests on the new version, then stop
    assert!(ok && out[0]["result"] == "deployed", "{out}");
    assert_eq!(w.page(), "steady v2");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (sent, failed, pages) = client.join().unwrap();
    assert!(
        failed.is_empty(),
        "{} of {sent} requests failed: {:?}",
        failed.len(),
        &failed[..failed.len().min(3)]
    );
    assert!(
        pages.contains("steady v1") && pages.contains("steady v2"),
        "{pages:?}"
    );
    assert_eq!(w.containers().len(), 1);
}

#[test]
fn a_burst_of_new_digests_under_watch_coalesces_and_ends_on_the_last() {
    let Some(w) = World::new("burst") else { return };
    let mut digests = Vec::new();
    for n in 0..10 {
        digests.push(w.good(&format!("burst {n}")));
        run_ok(w.strata().args([
            "copy",
            "localhost/acme/web:latest",
            &format!("localhost/acme/web:{n}"),
        ]));
    }
    run_ok(
        w.strata()
            .args(["copy", "localhost/acme/web:0", "localhost/acme/web:latest"]),
    );
    w.write_deploy("");
    assert!(w.deploy(&[]).0);
    let mut watch = w.watch();
    // ten new digests, one after another as fast as strata tags them
    for n in 1..10 {
        run_ok(w.strata().args([
            "copy",
            &format!("localhost/acme/web:{n}"),
            "localhost/acme/web:latest",
        ]));
    }
    let last = digests[9].clone();
    wait_for("the last digest", || {
        w.running().as_deref() == Some(last.as_str())
    });
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(watch.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert!(watch.wait().unwrap().success());
    let history = w.deploy(&["history", "web"]).1;
    let rollouts = history.as_array().unwrap().len() - 1;
    assert!(
        (1..=2).contains(&rollouts),
        "{rollouts} rollouts: {history}"
    );
    assert_eq!(w.page(), "burst 9");
}

/// Stops a deploy file's deployments and removes its private podman storage's containers on drop.
struct Teardown {
    strata: Command,
    podman_args: String,
}

impl Drop for Teardown {
    fn drop(&mut self) {
        let _ = self.strata.output();
        let _ = Command::new("podman")
            .args(self.podman_args.split_whitespace())
            .args(["rm", "--all", "--force", "-t", "0"])
            .output();
    }
}

/// The README's main job, to its end: the example chain, signed, deployed from a deploy file in
/// another directory with `require.verified`, then operations patches the corebuild and the patch
/// cascades to the running application through `strata watch`, with no manual deploy step.
#[test]
fn the_example_chain_is_deployed_and_an_operations_patch_reaches_it_by_trigger() {
    if require_tool("podman").is_none() || !strata_testutil::can_build_example() {
        return;
    }
    let dir = strata_testutil::init_example(assert_cmd::cargo::cargo_bin!("strata"));
    let d = dir.path();
    let teams = ["operations", "middleware", "development"];
    let mut chain = std::fs::read_to_string(d.join("strata.toml")).unwrap();
    for team in teams {
        run_ok(
            Command::new(assert_cmd::cargo::cargo_bin!("strata"))
                .args(["key", "generate", "--team", team, "--out"])
                .arg(d.join("keys")),
        );
        chain = chain.replace(
            &format!("[teams.{team}]\n"),
            &format!("[teams.{team}]\nkeys = [\"keys/{team}.pub\"]\n"),
        );
    }
    std::fs::write(d.join("strata.toml"), chain).unwrap();
    let podman_args = format!(
        "--root {} --runroot {} --storage-driver vfs",
        d.join("podman-root").display(),
        d.join("podman-run").display()
    );
    let releases = d.join("releases");
    std::fs::create_dir_all(&releases).unwrap();
    let port = free_port();
    let name = format!("acme-prod-{}", std::process::id());
    std::fs::write(
        releases.join("deploy.toml"),
        format!(
            "name = \"{name}\"\nowner = \"development\"\n[[deployment]]\nname = \"wordpress\"\n\
             image = \"acme/wordpress:latest\"\ntrigger = \"auto\"\ntarget = \"local\"\n\
             ports = [\"127.0.0.1:{port}:8080\"]\n\
             health = {{ http = \"/index.php\", port = 8080, timeout = \"30s\" }}\n\
             require = {{ verified = true }}\nstop_grace = \"1s\"\nnetwork = \"none\"\n"
        ),
    )
    .unwrap();
    let strata = || {
        let mut c = Command::new(assert_cmd::cargo::cargo_bin!("strata"));
        c.arg("-C")
            .arg(d)
            .env_remove("STRATA_STORE")
            .env_remove("STRATA_CHAIN")
            .env("STRATA_DEPLOY_FILE", releases.join("deploy.toml"))
            .env("STRATA_PODMAN_ARGS", &podman_args)
            .env("STRATA_PODMAN_RUN_ARGS", RUN_ARGS);
        for team in teams {
            c.env(
                format!("STRATA_KEY_{}", team.to_uppercase()),
                d.join(format!("keys/{team}.key")),
            );
        }
        c
    };
    let _teardown = Teardown {
        strata: {
            let mut c = strata();
            c.args(["deploy", "down", "wordpress"]);
            c
        },
        podman_args: podman_args.clone(),
    };
    let digest_of = |image: &str| {
        let out = run_ok(strata().args(["inspect", image, "--format", "json"]));
        let v: Value = serde_json::from_str(&out).unwrap();
        v["digest"].as_str().unwrap().to_string()
    };
    let running = || {
        let out = run_ok(strata().args(["deploy", "status", "--json"]));
        let v: Value = serde_json::from_str(&out).unwrap();
        v[0]["running"]["digest"].as_str().map(str::to_string)
    };

    run_ok(strata().arg("build"));
    let out = run_ok(strata().args(["deploy", "--json"]));
    assert!(out.contains("\"deployed\""), "{out}");
    assert_eq!(running(), Some(digest_of("acme/wordpress")));
    let page = http_get(port, "/index.php").unwrap();

    // operations patches the corebuild; `strata watch` takes it to the running application
    let mut watch = strata()
        .args(["watch", "--interval", "2s"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let motd = d.join("corebuild/motd");
    let patched = std::fs::read_to_string(&motd).unwrap() + "patched by operations\n";
    std::fs::write(&motd, patched).unwrap();
    run_ok(strata().arg("build"));
    let new = digest_of("acme/wordpress");
    wait_for("the patched wordpress to run", || {
        running().as_deref() == Some(new.as_str())
    });
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(watch.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert!(watch.wait().unwrap().success());
    assert_eq!(http_get(port, "/index.php").unwrap(), page);
    let status: Value =
        serde_json::from_str(&run_ok(strata().args(["deploy", "status", "--json"]))).unwrap();
    let container = status[0]["running"]["container"].as_str().unwrap();
    let motd_inside = run_ok(
        Command::new("podman")
            .args(podman_args.split_whitespace())
            .args(["exec", container, "cat", "/etc/motd"]),
    );
    assert!(
        motd_inside.contains("patched by operations"),
        "{motd_inside}"
    );
    // on record, with its cause
    let log: Vec<Value> = serde_json::from_str(&run_ok(strata().args(["log", "--json"]))).unwrap();
    let deployed = log
        .iter()
        .rfind(|e| e["kind"] == "deploy" && e["result"] == "ok")
        .unwrap();
    assert_eq!(deployed["newDigest"], Value::from(new));
    let reason = deployed["reason"].as_str().unwrap();
    assert!(
        reason.contains("corebuild") && reason.contains("by operations"),
        "{reason}"
    );
    assert!(reason.contains("replacing sha256:"), "{reason}");
    // and `strata log` reads it as a sentence
    let text = run_ok(strata().arg("log"));
    let line = text
        .lines()
        .rfind(|l| l.contains(&format!("{name}/wordpress: deployed sha256:")))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        line.contains("→ httpd-php → wordpress), healthy in "),
        "{line}"
    );
}

#[test]
fn a_bad_deploy_file_is_one_line_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("deploy.toml"),
        "name = \"prod\"\n[[deployment]]\nname = \"web\"\nimage = \"acme/web\"\nreplicas = 3\n",
    )
    .unwrap();
    let out = Command::new(assert_cmd::cargo::cargo_bin!("strata"))
        .current_dir(dir.path())
        .env_remove("STRATA_DEPLOY_FILE")
        .env("STRATA_STORE", dir.path().join("store"))
        .args(["deploy", "status"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("deploy.toml:5:1: unknown field `replicas`"),
        "{stderr}"
    );
    // an unknown deployment is named with the ones there are
    strata_oci::Store::init(dir.path().join("store")).unwrap();
    std::fs::write(
        dir.path().join("deploy.toml"),
        "name = \"prod\"\n[[deployment]]\nname = \"web\"\nimage = \"acme/web\"\n",
    )
    .unwrap();
    let out = Command::new(assert_cmd::cargo::cargo_bin!("strata"))
        .current_dir(dir.path())
        .env_remove("STRATA_DEPLOY_FILE")
        .env("STRATA_STORE", dir.path().join("store"))
        .args(["deploy", "hold", "wbe", "--team", "development"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no deployment named \"wbe\" (it has: web)"),
        "{stderr}"
    );
}

#[test]
fn a_registry_reference_is_pulled_by_digest_and_followed() {
    let Some(mut w) = World::new("registry") else {
        return;
    };
    let v1 = w.good("remote v1");
    let serve = crate::common::Serve::start(&w.store, &[]);
    // the deploying side has a store of its own: the image comes through the registry
    w.deploy_store = w.dir.path().join("deploy-store");
    strata_oci::Store::init(&w.deploy_store).unwrap();
    w.image = format!("{}/acme/web:latest", serve.host);
    w.write_deploy("");
    let (ok, out) = w.deploy(&[]);
    assert!(ok, "{out}");
    assert_eq!(out[0]["desired"], Value::from(v1.clone()));
    assert_eq!(w.page(), "remote v1");
    let v2 = w.good("remote v2");
    let (ok, out) = w.deploy(&[]);
    assert!(ok && out[0]["result"] == "deployed", "{out}");
    assert_eq!(w.running(), Some(v2));
    assert_eq!(w.page(), "remote v2");
}

#[test]
fn an_oci_layout_reference_is_followed_and_rolled_back() {
    let Some(mut w) = World::new("layout") else {
        return;
    };
    let layout = w.dir.path().join("layout");
    let copy_out = |w: &World| {
        run_ok(w.strata().args([
            "copy",
            "localhost/acme/web:latest",
            &format!("oci:{}:web", layout.display()),
        ]));
    };
    let v1 = w.good("layout v1");
    copy_out(&w);
    w.image = format!("oci:{}:web", layout.display());
    w.write_deploy("");
    assert!(w.deploy(&[]).0);
    assert_eq!(w.page(), "layout v1");
    w.good("layout v2");
    copy_out(&w);
    let (ok, out) = w.deploy(&[]);
    assert!(ok && out[0]["result"] == "deployed", "{out}");
    assert_eq!(w.page(), "layout v2");
    let (ok, out) = w.deploy(&["rollback", "web"]);
    assert!(ok, "{out}");
    assert_eq!(w.running(), Some(v1));
    assert_eq!(w.page(), "layout v1");
}

/// `strata deploy ARGS` as `team`: (success, stderr).
fn deploy_as(w: &World, team: &str, args: &[&str]) -> (bool, String) {
    let out = w
        .strata()
        .env("STRATA_TEAM", team)
        .arg("deploy")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn only_the_owner_team_proven_by_its_key_may_approve_hold_release_and_roll_back() {
    let Some(w) = World::new("owner") else {
        return;
    };
    let v1 = w.good("owner v1");
    w.write_deploy("trigger = \"manual\"\n");
    w.deploy(&[]);
    assert!(w.deploy(&["approve", "web"]).0);
    let v2 = w.good("owner v2");
    w.deploy(&[]);
    let before = w.status();
    assert_eq!(before["pending"]["digest"], Value::from(v2.clone()));
    let state_file = w
        .deploy_store
        .join(".strata/deploy")
        .join(&w.name)
        .join("web.json");
    let state = std::fs::read(&state_file).unwrap();
    let events = w.events("held").len() + w.events("approved").len();

    // operations holds a key the chain trusts, but it is not the owner
    for args in [
        &["approve", "web"][..],
        &["hold", "web"],
        &["release", "web"],
        &["rollback", "web", "--to", "1"],
    ] {
        let (ok, stderr) = deploy_as(&w, "operations", args);
        assert!(!ok, "{args:?}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(
            stderr.contains("team operations may not")
                && stderr.contains("only its owner, development, may"),
            "{args:?}: {stderr}"
        );
    }
    // development without its key, or with a key the chain does not trust for it
    let (ok, stderr) = {
        let out = w
            .strata()
            .env_remove("STRATA_KEY_DEVELOPMENT")
            .args(["deploy", "hold", "web"])
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    assert!(!ok);
    assert!(
        stderr
            .contains("cannot act as team development: no signing key: set STRATA_KEY_DEVELOPMENT"),
        "{stderr}"
    );
    let out = w
        .strata()
        .env(
            "STRATA_KEY_DEVELOPMENT",
            w.dir.path().join("keys/operations.key"),
        )
        .args(["deploy", "approve", "web"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("cannot act as team development: key ")
            && stderr.contains("is not one the chain file trusts for development"),
        "{stderr}"
    );
    // nothing changed: the state, the page, the record
    assert_eq!(std::fs::read(&state_file).unwrap(), state);
    assert_eq!(w.page(), "owner v1");
    assert_eq!(w.running(), Some(v1));
    assert_eq!(w.events("held").len() + w.events("approved").len(), events);

    // the owner, proven by its key, may; who acted is on record
    let (ok, stderr) = deploy_as(&w, "development", &["hold", "web"]);
    assert!(ok, "{stderr}");
    let hold = &w.status()["hold"];
    assert!(
        hold["by"]
            .as_str()
            .unwrap()
            .starts_with("development (key "),
        "{hold}"
    );
    let held = w.events("held");
    assert_eq!(held.len(), 1);
    assert_eq!(held[0]["team"], "development", "{held:?}");
    assert!(
        held[0]["user"]
            .as_str()
            .unwrap()
            .starts_with("development (key "),
        "{held:?}"
    );
    assert!(deploy_as(&w, "development", &["release", "web"]).0);
    let (ok, stderr) = deploy_as(&w, "development", &["approve", "web"]);
    assert!(ok, "{stderr}");
    assert_eq!(w.page(), "owner v2");
}

#[test]
fn gc_keeps_what_a_deployment_runs_and_may_roll_back_to() {
    let Some(w) = World::new("gc") else { return };
    let v1 = w.good("gc v1");
    w.write_deploy("");
    assert!(w.deploy(&[]).0);
    // the tag moves on: v1 is no longer tagged, only the deployment's history names it
    let v2 = w.good("gc v2");
    assert!(w.deploy(&[]).0);
    assert_eq!(w.page(), "gc v2");
    let out = run_ok(w.strata().args(["store", "gc", "--json"]));
    let report: Value = serde_json::from_str(&out).unwrap();
    assert!(
        !out.contains(v1.trim_start_matches("sha256:")),
        "gc removed a blob of the rollback target: {report}"
    );
    // the rollback target is still whole: the rollback runs it
    let (ok, out) = w.deploy(&["rollback", "web"]);
    assert!(ok, "{out}");
    assert_eq!(w.running(), Some(v1));
    assert_eq!(w.page(), "gc v1");
    // and what runs now (v1) and the one before (v2) stay through another gc
    run_ok(w.strata().args(["store", "gc"]));
    assert!(w.deploy(&["rollback", "web", "--to", &v2]).0);
    assert_eq!(w.page(), "gc v2");
}

#[test]
fn watch_reads_a_changed_deploy_file_and_keeps_the_last_good_one_on_a_bad_edit() {
    let Some(mut w) = World::new("reload") else {
        return;
    };
    let v1 = w.good("reload v1");
    w.write_deploy("");
    let log = w.dir.path().join("watch.err");
    let mut watch = w
        .strata()
        .args(["watch", "--interval", "1s"])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    wait_for("v1 to run", || w.running().as_deref() == Some(v1.as_str()));
    // a bad edit: one line naming the file and line; the last good file goes on being used
    let deploy_file = w.dir.path().join("deploy.toml");
    let good = std::fs::read_to_string(&deploy_file).unwrap();
    std::fs::write(&deploy_file, format!("{good}replicas = 3\n")).unwrap();
    wait_for("the bad edit to be reported", || {
        std::fs::read_to_string(&log).unwrap().contains("replicas")
    });
    // (`strata deploy status` reads the file too, and refuses it: the state file tells)
    let state = w
        .deploy_store
        .join(".strata/deploy")
        .join(&w.name)
        .join("web.json");
    let v2 = w.good("reload v2");
    wait_for("v2 to run under the last good file", || {
        let v: Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
        v["running"]["digest"].as_str() == Some(v2.as_str())
    });
    assert_eq!(w.page(), "reload v2");
    // a good edit: the deployment follows another image, without a restart
    let other = w.dir.path().join("other");
    std::fs::create_dir_all(other.join("www")).unwrap();
    std::fs::write(other.join("www/index.html"), "other v1\n").unwrap();
    std::fs::write(
        other.join("Dockerfile"),
        "FROM localhost/acme/base:latest\nCOPY www /www\n\
         CMD [\"/bin/busybox\", \"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/www\"]\n",
    )
    .unwrap();
    let o1 = w.build_image(&other, "localhost/acme/other:latest");
    w.image = "acme/other".into();
    w.write_deploy("");
    wait_for("the other image to run", || {
        w.running().as_deref() == Some(o1.as_str())
    });
    assert_eq!(w.page(), "other v1");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(watch.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert!(watch.wait().unwrap().success());
    let stderr = std::fs::read_to_string(&log).unwrap();
    let bad: Vec<_> = stderr.lines().filter(|l| l.contains("replicas")).collect();
    assert_eq!(bad.len(), 1, "{stderr}");
    assert!(
        bad[0].contains("deploy.toml:10:1: unknown field `replicas`")
            && bad[0].contains("last good"),
        "{stderr}"
    );
}

/// A deployment taken out of deploy.toml keeps running and is named at every status and deploy
/// pass (never silently removed); `prune --dry-run` changes nothing; `prune` stops its container
/// and its front listener (the port is free again), removes its gc root, keeps its history; the
/// same deployment name under another deploy file is not touched.
#[test]
fn a_deployment_taken_out_of_the_file_is_named_and_pruned_only_when_asked() {
    let Some(w) = World::new("orphan") else {
        return;
    };
    w.good("orphan v1");
    w.write_deploy("");
    assert!(w.deploy(&[]).0);
    assert_eq!(w.page(), "orphan v1");
    // Another deploy file, same podman storage, a deployment also named web.
    let other_name = format!("{}-b", w.name);
    let other_port = free_port();
    let other_file = w.dir.path().join("other.toml");
    std::fs::write(
        &other_file,
        format!(
            "name = \"{other_name}\"\n[[deployment]]\nname = \"web\"\nimage = \"acme/web\"\n\
             ports = [\"127.0.0.1:{other_port}:8080\"]\n\
             health = {{ http = \"/index.html\", port = 8080, timeout = \"60s\" }}\n\
             stop_grace = \"1s\"\nnetwork = \"none\"\n"
        ),
    )
    .unwrap();
    let other = || {
        let mut c = w.strata();
        c.env("STRATA_DEPLOY_FILE", &other_file);
        c
    };
    let mut down_other = other();
    down_other.args(["deploy", "down", "web"]);
    let _teardown = Teardown {
        strata: down_other,
        podman_args: w.podman_args.clone(),
    };
    run_ok(other().args(["deploy"]));
    let other_label = format!("label=dev.strata.deploy={other_name}/web");
    let other_running = || {
        run_ok(
            w.podman()
                .args(["ps", "--filter", &other_label, "--format", "{{.Names}}"]),
        )
        .lines()
        .count()
    };
    assert_eq!(other_running(), 1);
    let root = w
        .deploy_store
        .join(".strata/roots")
        .join(format!("deploy-{}-web", w.name));
    assert!(root.is_file());

    // web goes out of the file
    std::fs::write(
        w.dir.path().join("deploy.toml"),
        format!("name = \"{}\"\nowner = \"development\"\n", w.name),
    )
    .unwrap();
    let (ok, status) = w.deploy(&["status"]);
    assert!(ok, "{status}");
    let orphan = status
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "web")
        .unwrap_or_else(|| panic!("status does not name the orphan: {status}"))
        .clone();
    assert_eq!(orphan["orphan"], true, "{orphan}");
    assert_eq!(
        orphan["containers"].as_array().unwrap().len(),
        1,
        "{orphan}"
    );
    let listen = format!("127.0.0.1:{}", w.port);
    assert_eq!(orphan["listening"][0], listen.as_str(), "{orphan}");
    let text = run_ok(w.strata().args(["deploy", "status"]));
    assert!(
        text.contains("web: orphan: deployment web is no longer in deploy.toml but still runs")
            && text.contains(&listen)
            && text.contains("strata deploy prune"),
        "{text}"
    );
    // a deploy pass names it too, and leaves it running
    let out = w.strata().arg("deploy").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(
        stderr
            .matches("deployment web is no longer in deploy.toml")
            .count(),
        1,
        "{stderr}"
    );
    assert_eq!(w.containers().len(), 1);
    assert!(w.containers()[0].1, "the orphan still runs");
    assert_eq!(w.page(), "orphan v1");
    // so does watch, on stderr
    let mut watch = w
        .strata()
        .args(["watch", "--interval", "1s"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = watch.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if line.contains("deployment web is no longer in deploy.toml") {
                let _ = tx.send(line);
            }
        }
    });
    let told = rx.recv_timeout(Duration::from_secs(120));
    let _ = watch.kill();
    let _ = watch.wait();
    assert!(told.is_ok(), "watch did not name the orphan");
    assert_eq!(w.containers().len(), 1);

    // --dry-run changes nothing
    let (ok, dry) = w.deploy(&["prune", "--dry-run"]);
    assert!(ok, "{dry}");
    assert_eq!(dry[0]["result"], "would-prune", "{dry}");
    assert!(w.containers()[0].1);
    assert_eq!(w.page(), "orphan v1");
    assert!(root.is_file());

    // a name never deployed is refused naming the file
    let (ok, text) = deploy_as(&w, "development", &["prune", "never"]);
    assert!(
        !ok && text.contains("deploy.toml") && text.contains("never"),
        "{text}"
    );

    // prune: container and listener gone, port free, root gone, history kept
    let (ok, pruned) = w.deploy(&["prune"]);
    assert!(ok, "{pruned}");
    assert_eq!(pruned[0]["deployment"], "web", "{pruned}");
    assert_eq!(pruned[0]["result"], "pruned", "{pruned}");
    assert!(w.containers().is_empty(), "{:?}", w.containers());
    std::net::TcpListener::bind(&listen).expect("the orphan's port is free again");
    assert!(!root.exists(), "the gc root of the orphan stays");
    let (ok, history) = w.deploy(&["history", "web"]);
    assert!(ok, "{history}");
    assert!(!history.as_array().unwrap().is_empty(), "{history}");
    let events = w.events("pruned");
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(events[0]["user"].as_str().is_some_and(|u| !u.is_empty()));
    // nothing left to name or prune
    let (_, status) = w.deploy(&["status"]);
    assert!(status.as_array().unwrap().is_empty(), "{status}");
    let (ok, again) = w.deploy(&["prune"]);
    assert!(ok && again.as_array().unwrap().is_empty(), "{again}");

    // the other deploy file's web still runs and serves
    assert_eq!(other_running(), 1);
    assert_eq!(http_get(other_port, "/index.html").unwrap(), "orphan v1");
}
