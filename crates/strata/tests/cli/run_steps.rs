//! RUN in the sandbox, end to end: what a RUN changes becomes a layer that tools we did not write
//! (umoci, podman, tar) read back exactly; failures, network isolation, cache mounts, USER, and
//! `strata run`.

#![allow(clippy::print_stderr)]

use std::path::{Path, PathBuf};
use std::process::Command;

use assert_cmd::cargo::cargo_bin_cmd;
use strata_testutil::is_root;
use strata_testutil::{busybox_rootfs_tar, require_tool, run_ok};

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    /// A temp dir with a store holding `acme/base` (busybox), or None when busybox is missing.
    fn new() -> Option<Env> {
        if !is_root() {
            eprintln!("skipping: RUN tests need root (overlay mounts and namespaces)");
            assert!(!strata_testutil::in_ci(), "CI runs as root");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let env = Env { dir };
        let base = env.path("base");
        std::fs::create_dir_all(&base).unwrap();
        busybox_rootfs_tar(&base.join("rootfs.tar"))?;
        std::fs::write(
            base.join("Dockerfile"),
            "FROM scratch\nADD rootfs.tar /\nCMD [\"/bin/sh\"]\n",
        )
        .unwrap();
        env.build("base", "acme/base").success();
        Some(env)
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn store(&self) -> PathBuf {
        self.path("store")
    }

    fn strata(&self) -> assert_cmd::Command {
        let mut cmd = cargo_bin_cmd!("strata");
        cmd.arg("--store")
            .arg(self.store())
            .current_dir(self.dir.path());
        cmd
    }

    fn context(&self, name: &str, dockerfile: &str, files: &[(&str, &str)]) {
        let dir = self.path(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("Dockerfile"), dockerfile).unwrap();
        for (f, content) in files {
            std::fs::write(dir.join(f), content).unwrap();
        }
    }

    fn build(&self, context: &str, tag: &str) -> assert_cmd::assert::Assert {
        self.strata()
            .args(["build-image", context, "-t", tag])
            .assert()
    }

    /// `umoci unpack` the image; returns the rootfs path.
    fn unpack(&self, tag: &str) -> Option<PathBuf> {
        let umoci = require_tool("umoci")?;
        let bundle = self.path(&format!("bundle-{}", tag.replace(['/', ':'], "-")));
        let _ = std::fs::remove_dir_all(&bundle);
        run_ok(
            Command::new(umoci)
                .arg("unpack")
                .arg("--image")
                .arg(format!("{}:localhost/{tag}:latest", self.store().display()))
                .arg(&bundle),
        );
        Some(bundle.join("rootfs"))
    }

    /// The entries of the image's last layer, as GNU tar lists them.
    fn last_layer_entries(&self, tag: &str) -> Vec<String> {
        let out = self.strata().args(["images", "--json"]).output().unwrap();
        assert!(out.status.success());
        let index: serde_json::Value =
            serde_json::from_slice(&std::fs::read(self.store().join("index.json")).unwrap())
                .unwrap();
        let wanted = format!("localhost/{tag}:latest");
        let manifest_digest = index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == wanted.as_str())
            .unwrap()["digest"]
            .as_str()
            .unwrap()
            .to_string();
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(blob(&self.store(), &manifest_digest)).unwrap())
                .unwrap();
        let last = manifest["layers"].as_array().unwrap().last().unwrap()["digest"]
            .as_str()
            .unwrap()
            .to_string();
        let listing = run_ok(
            Command::new("tar")
                .arg("-tzf")
                .arg(blob(&self.store(), &last)),
        );
        listing.lines().map(str::to_string).collect()
    }
}

fn blob(store: &Path, digest: &str) -> PathBuf {
    store
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"))
}

fn podman_run(store: &Path, tag: &str, args: &[&str]) -> Option<String> {
    let podman = require_tool("podman")?;
    Some(run_ok(
        Command::new(podman)
            .args(["run", "--rm", "--runtime", "runc", "--network", "host"])
            .args([
                "--ulimit",
                "nofile=20000:20000",
                "--ulimit",
                "nproc=1024:1024",
            ])
            .arg(format!(
                "oci:{}:localhost/{tag}:latest",
                strata_testutil::podman_safe_path(store).display()
            ))
            .args(args),
    ))
}

#[test]
fn run_creates_modifies_and_deletes_files_of_the_parent() {
    let Some(env) = Env::new() else { return };
    env.context(
        "app",
        "FROM acme/base\n\
         COPY old /home/old\n\
         RUN echo created > /new && echo 'extra:x:99:99::/:/bin/sh' >> /etc/passwd && rm /etc/group\n\
         RUN rm -rf /home && mkdir /home && touch /home/a\n",
        &[("old", "old file\n")],
    );
    env.build("app", "acme/app").success();
    let Some(root) = env.unpack("acme/app") else {
        return;
    };
    assert_eq!(
        std::fs::read_to_string(root.join("new")).unwrap(),
        "created\n"
    );
    assert!(
        std::fs::read_to_string(root.join("etc/passwd"))
            .unwrap()
            .contains("extra:x:99")
    );
    assert!(!root.join("etc/group").exists(), "deleted by RUN");
    assert!(root.join("home/a").exists());
    assert!(
        !root.join("home/old").exists(),
        "the opaque /home hides the parent's file"
    );
    // The layer itself carries OCI whiteouts.
    let entries = env.last_layer_entries("acme/app");
    assert!(
        entries
            .iter()
            .any(|e| e.trim_end_matches('/') == "home/.wh..wh..opq"),
        "{entries:?}"
    );
    // The RUN before it deleted /etc/group with a whiteout and left no mount points behind.
    let Some(out) = podman_run(
        &env.store(),
        "acme/app",
        &["sh", "-c", "cat /new; ls /etc; ls /home"],
    ) else {
        return;
    };
    assert!(out.contains("created"), "{out}");
    assert!(!out.contains("group"), "{out}");
    assert!(out.contains('a'), "{out}");
}

#[test]
fn run_layer_has_no_sandbox_mount_points() {
    let Some(env) = Env::new() else { return };
    env.context("app", "FROM acme/base\nRUN touch /marker\n", &[]);
    env.build("app", "acme/app").success();
    let entries = env.last_layer_entries("acme/app");
    assert_eq!(entries, ["marker"], "only what the command wrote");
}

#[test]
fn a_failing_run_names_the_step_and_leaves_no_image() {
    let Some(env) = Env::new() else { return };
    env.context(
        "bad",
        "FROM acme/base\nRUN echo first line\nRUN echo doomed >&2; exit 7\n",
        &[],
    );
    let assert = env.build("bad", "acme/bad").failure();
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    assert!(stderr.contains("Dockerfile:3: RUN echo doomed"), "{stderr}");
    assert!(stderr.contains("exited with code 7"), "{stderr}");
    assert!(
        stderr.contains("doomed"),
        "the output tail is shown: {stderr}"
    );
    let index = std::fs::read_to_string(env.store().join("index.json")).unwrap();
    assert!(!index.contains("acme/bad"), "no image for a failed build");
    assert_eq!(
        strata_testutil::mounts_under(env.dir.path()),
        Vec::<std::path::PathBuf>::new(),
        "mounts left behind"
    );
}

#[test]
fn network_none_has_only_loopback() {
    let Some(env) = Env::new() else { return };
    env.context(
        "net",
        "FROM acme/base\nRUN --network=none cat /proc/net/dev > /none.txt\nRUN --network=host cat /proc/net/dev > /host.txt\nRUN cat /proc/net/dev > /private.txt\n",
        &[],
    );
    env.build("net", "acme/net").success();
    let Some(root) = env.unpack("acme/net") else {
        return;
    };
    let none = std::fs::read_to_string(root.join("none.txt")).unwrap();
    let interfaces: Vec<&str> = none
        .lines()
        .skip(2)
        .map(|l| l.split(':').next().unwrap().trim())
        .collect();
    assert_eq!(interfaces, ["lo"]);
    let host = std::fs::read_to_string(root.join("host.txt")).unwrap();
    assert!(
        host.lines().count() > 3,
        "the host network has more than lo: {host}"
    );
    // The default: a namespace of its own, with lo and slirp4netns' tap0.
    let private = std::fs::read_to_string(root.join("private.txt")).unwrap();
    let interfaces: Vec<&str> = private
        .lines()
        .skip(2)
        .map(|l| l.split(':').next().unwrap().trim())
        .collect();
    assert_eq!(interfaces, ["lo", "tap0"], "{private}");
    // The build's --network none is the default of every RUN that does not choose; a RUN that
    // says --network=host keeps the host's.
    env.context(
        "net2",
        "FROM acme/base
RUN cat /proc/net/dev > /default.txt
RUN --network=host cat /proc/net/dev > /host.txt
",
        &[],
    );
    env.strata()
        .args([
            "build-image",
            "net2",
            "-t",
            "acme/net2",
            "--network",
            "none",
        ])
        .assert()
        .success();
    let Some(root) = env.unpack("acme/net2") else {
        return;
    };
    let default = std::fs::read_to_string(root.join("default.txt")).unwrap();
    assert_eq!(default.lines().count(), 3, "only lo: {default}");
    let host = std::fs::read_to_string(root.join("host.txt")).unwrap();
    assert!(host.lines().count() > 3, "{host}");
}

#[test]
fn cache_mounts_persist_across_builds() {
    let Some(env) = Env::new() else { return };
    let dockerfile = "FROM acme/base\nARG N\nRUN --mount=type=cache,target=/var/cache/pkg sh -c 'echo run-$N >> /var/cache/pkg/log; cp /var/cache/pkg/log /seen'\n";
    env.context("c", dockerfile, &[]);
    env.strata()
        .args(["build-image", "c", "-t", "acme/c", "--build-arg", "N=1"])
        .assert()
        .success();
    env.strata()
        .args(["build-image", "c", "-t", "acme/c", "--build-arg", "N=2"])
        .assert()
        .success();
    let Some(root) = env.unpack("acme/c") else {
        return;
    };
    assert_eq!(
        std::fs::read_to_string(root.join("seen")).unwrap(),
        "run-1\nrun-2\n"
    );
    assert!(
        !root.join("var/cache/pkg/log").exists(),
        "the cache never lands in a layer"
    );
}

#[test]
fn user_by_name_runs_with_its_ids() {
    let Some(env) = Env::new() else { return };
    env.context(
        "u",
        "FROM acme/base\nUSER www-data\nRUN id -u > /tmp/uid && id -g > /tmp/gid && touch /tmp/mine\n",
        &[],
    );
    env.build("u", "acme/u").success();
    let Some(root) = env.unpack("acme/u") else {
        return;
    };
    assert_eq!(
        std::fs::read_to_string(root.join("tmp/uid")).unwrap(),
        "33\n"
    );
    assert_eq!(
        std::fs::read_to_string(root.join("tmp/gid")).unwrap(),
        "33\n"
    );
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(root.join("tmp/mine")).unwrap().uid(), 33);
}

#[test]
fn unchanged_run_steps_come_from_the_cache() {
    let Some(env) = Env::new() else { return };
    env.context(
        "app",
        "FROM acme/base\nRUN cat /proc/sys/kernel/random/uuid > /stamp\n",
        &[],
    );
    let first = env
        .strata()
        .args(["build-image", "app", "-t", "acme/app", "--json"])
        .output()
        .unwrap();
    let second = env
        .strata()
        .args(["build-image", "app", "-t", "acme/app", "--json"])
        .output()
        .unwrap();
    let a: serde_json::Value = serde_json::from_slice(&first.stdout).unwrap();
    let b: serde_json::Value = serde_json::from_slice(&second.stdout).unwrap();
    assert_eq!(
        a["digest"], b["digest"],
        "the cached RUN gives the same image"
    );
    assert_eq!(b["builtSteps"], 0);
    let third = env
        .strata()
        .args([
            "build-image",
            "app",
            "-t",
            "acme/app",
            "--json",
            "--no-cache",
        ])
        .output()
        .unwrap();
    let c: serde_json::Value = serde_json::from_slice(&third.stdout).unwrap();
    assert_ne!(
        a["digest"], c["digest"],
        "--no-cache really runs the step again"
    );
}

#[test]
fn strata_run_uses_the_image_and_returns_the_exit_code() {
    let Some(env) = Env::new() else { return };
    env.context(
        "app",
        "FROM acme/base\nUSER www-data\nWORKDIR /tmp\nENV GREETING=hello\nCMD [\"sh\", \"-c\", \"echo $GREETING from $(pwd) as $(id -un)\"]\n",
        &[],
    );
    env.build("app", "acme/app").success();
    env.strata()
        .args(["run", "acme/app"])
        .assert()
        .success()
        .stdout("hello from /tmp as www-data\n");
    env.strata()
        .args([
            "run",
            "-u",
            "root",
            "-e",
            "GREETING=hi",
            "acme/app",
            "--",
            "sh",
            "-c",
            "echo $GREETING $(id -u); exit 5",
        ])
        .assert()
        .code(5)
        .stdout("hi 0\n");
    // Changes are thrown away.
    env.strata()
        .args(["run", "acme/app", "--", "touch", "/tmp/x"])
        .assert()
        .success();
    env.strata()
        .args(["run", "acme/app", "--", "test", "-e", "/tmp/x"])
        .assert()
        .code(1);
    // -i hands the command strata's stdin; without it the command reads /dev/null.
    env.strata()
        .args([
            "run",
            "-i",
            "acme/app",
            "--",
            "sh",
            "-c",
            "wc -l; read x || echo EOF",
        ])
        .write_stdin("one\ntwo\n")
        .assert()
        .success()
        .stdout("2\nEOF\n");
    env.strata()
        .args(["run", "acme/app", "--", "wc", "-c"])
        .write_stdin("ignored\n")
        .assert()
        .success()
        .stdout("0\n");
}

#[test]
fn build_secrets_reach_run_steps_and_never_a_layer() {
    let Some(env) = Env::new() else { return };
    // A file secret at /run/secrets/<id>, an env-var secret as a file at a chosen target, and a
    // secret as an environment variable (Dockerfile 1.10's env=), each checked inside the step
    // against its md5 (the Dockerfile's text lands in the history, so it must not hold a value).
    env.context(
        "s",
        "FROM acme/base\n\
         RUN --mount=type=secret,id=tok test \"$(md5sum < /run/secrets/tok)\" = \"2ab96390c7dbe3439de74d0c9b0b1767  -\" \
             && echo file-ok > /file-ok\n\
         RUN --mount=type=secret,id=api,target=/etc/api-key,required=true \
             test \"$(md5sum < /etc/api-key)\" = \"22896225cb88048713402ae0a9e139e8  -\" && echo target-ok > /target-ok\n\
         RUN --mount=type=secret,id=tok,env=TOKEN test \"$(printf %s \"$TOKEN\" | md5sum)\" = \"2ab96390c7dbe3439de74d0c9b0b1767  -\" \
             && test ! -e /run/secrets/tok && echo env-ok > /env-ok\n\
         RUN --mount=type=secret,id=absent test ! -e /run/secrets/absent && echo optional-ok > /optional-ok\n",
        &[("tok.txt", "hunter2")],
    );
    env.strata()
        .env("STRATA_TEST_API_SECRET", "from-env")
        .args([
            "build-image",
            "s",
            "-t",
            "acme/s",
            "--secret",
            "id=tok,src=s/tok.txt",
            "--secret",
            "id=api,env=STRATA_TEST_API_SECRET",
        ])
        .assert()
        .success();
    let Some(root) = env.unpack("acme/s") else {
        return;
    };
    for (file, text) in [
        ("file-ok", "file-ok\n"),
        ("target-ok", "target-ok\n"),
        ("env-ok", "env-ok\n"),
        ("optional-ok", "optional-ok\n"),
    ] {
        assert_eq!(
            std::fs::read_to_string(root.join(file)).unwrap(),
            text,
            "{file}"
        );
    }
    assert!(!root.join("run/secrets/tok").exists());
    assert_eq!(
        std::fs::metadata(root.join("etc/api-key"))
            .ok()
            .map(|m| m.len()),
        None
    );
    // No blob holds a secret's value: not a layer, not the config, not the history.
    for entry in std::fs::read_dir(env.store().join("blobs/sha256")).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        // Layers are gzip: look inside them; other blobs (JSON) as they are.
        let mut text = Vec::new();
        if std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut text)
            .is_err()
        {
            text = bytes;
        }
        for secret in [&b"hunter2"[..], b"from-env"] {
            assert!(
                !text.windows(secret.len()).any(|w| w == secret),
                "{} holds a secret",
                path.display()
            );
        }
    }
    // A required secret that is not given fails the step, naming the flag to give it.
    env.context(
        "r",
        "FROM acme/base\nRUN --mount=type=secret,id=deploy-key,required=true true\n",
        &[],
    );
    env.build("r", "acme/r")
        .failure()
        .stderr(predicates::str::contains("--secret id=deploy-key"));
    // A secret from an unset variable fails the build with the variable's name.
    env.strata()
        .env_remove("STRATA_TEST_UNSET_SECRET")
        .args([
            "build-image",
            "r",
            "-t",
            "acme/r",
            "--secret",
            "id=deploy-key,env=STRATA_TEST_UNSET_SECRET",
        ])
        .assert()
        .failure()
        .stderr(predicates::str::contains(
            "environment variable STRATA_TEST_UNSET_SECRET is not set",
        ));
    // A malformed flag is refused before anything is built.
    env.strata()
        .args([
            "build-image",
            "r",
            "-t",
            "acme/r",
            "--secret",
            "id=x,colour=red",
        ])
        .assert()
        .failure()
        .stderr(predicates::str::contains("invalid --secret"));
}

#[test]
fn strata_run_t_gives_the_command_a_terminal() {
    let Some(env) = Env::new() else { return };
    env.context("tty", "FROM acme/base\n", &[]);
    env.build("tty", "acme/tty").success();
    // -t: stdin, stdout and stderr are a terminal that is the command's controlling one
    // (/dev/tty opens), 24x80 when strata itself has none, TERM set.
    let out = env
        .strata()
        .args([
            "run",
            "-t",
            "acme/tty",
            "--",
            "sh",
            "-c",
            "test -t 0 && test -t 1 && test -t 2 && echo TTY; stty size; echo ctty > /dev/tty; echo $TERM",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "TTY\r\n24 80\r\nctty\r\nxterm\r\n"
    );
    // -it: what strata reads is typed into the terminal; the exit code comes back.
    env.strata()
        .args([
            "run",
            "-it",
            "acme/tty",
            "--",
            "sh",
            "-c",
            "read x; echo got:$x; exit 4",
        ])
        .write_stdin("abc\n")
        .assert()
        .code(4)
        .stdout(predicates::str::contains("got:abc\r\n"));
    // On a real terminal (script(1) gives strata one): keys arrive as typed, echoed once by the
    // command's terminal, and strata's own terminal is raw meanwhile.
    let Some(script) = require_tool("script") else {
        return;
    };
    let strata_bin = assert_cmd::cargo::cargo_bin!("strata");
    let mut child = Command::new(script)
        .arg("-qec")
        .arg(format!(
            "{} --store {} run -it acme/tty -- sh -c 'echo ready; read x; echo got:$x'",
            strata_bin.display(),
            env.store().display()
        ))
        .arg("/dev/null")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let reader = {
        let seen = seen.clone();
        let mut stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 256];
            while let Ok(n) = std::io::Read::read(&mut stdout, &mut buf) {
                if n == 0 {
                    break;
                }
                seen.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        })
    };
    // Type only once the command is reading (strata's terminal is raw by then).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !String::from_utf8_lossy(&seen.lock().unwrap()).contains("ready") {
        assert!(
            std::time::Instant::now() < deadline,
            "the command never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let mut stdin = child.stdin.take().unwrap();
    std::io::Write::write_all(&mut stdin, b"abc\r").unwrap();
    let status = child.wait().unwrap();
    drop(stdin);
    reader.join().unwrap();
    assert!(status.success());
    assert_eq!(
        String::from_utf8_lossy(&seen.lock().unwrap()),
        "ready\r\nabc\r\ngot:abc\r\n"
    );
}

/// A bought base whose rootfs tarball ships device nodes (a loop device, fuse, mem) beside
/// busybox, as a hostile vendor's might, imported as `acme/devbase`.
fn device_base(env: &Env) {
    let busybox = env.path("busybox.tar");
    busybox_rootfs_tar(&busybox).unwrap();
    let tarball = env.path("devbase.tar");
    let mut builder = tar::Builder::new(std::fs::File::create(&tarball).unwrap());
    let mut archive = tar::Archive::new(std::fs::File::open(&busybox).unwrap());
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let mut header = entry.header().clone();
        let path = entry.path().unwrap().into_owned();
        if header.entry_type() == tar::EntryType::Symlink {
            let target = entry.link_name().unwrap().unwrap().into_owned();
            builder.append_link(&mut header, &path, target).unwrap();
        } else {
            builder.append_data(&mut header, &path, &mut entry).unwrap();
        }
    }
    for (name, kind, major, minor) in [
        ("loop0", tar::EntryType::Block, 7, 0),
        ("tmp/fuse", tar::EntryType::Char, 10, 229),
        ("mem", tar::EntryType::Char, 1, 1),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(0o666);
        h.set_size(0);
        h.set_device_major(major).unwrap();
        h.set_device_minor(minor).unwrap();
        builder.append_data(&mut h, name, std::io::empty()).unwrap();
    }
    builder.into_inner().unwrap().sync_all().unwrap();
    let store = strata_oci::Store::open(env.store()).unwrap();
    strata_build::import::import_rootfs(
        &store,
        &tarball,
        &strata_build::import::ImportOptions {
            tags: vec!["localhost/acme/devbase:latest".into()],
            ..Default::default()
        },
    )
    .unwrap();
}

/// Fails (exit 1, naming the node) when a device node opens; checks the nodes are still there.
const OPEN_DEVICES: &str = "for d in /loop0 /tmp/fuse /mem; do \
      if (exec 3<$d) 2>/dev/null || (exec 3<>$d) 2>/dev/null; then echo OPENED $d; exit 1; fi; \
    done; test -b /loop0 && test -c /mem && test -c /tmp/fuse && echo closed";

// See issue 13: "Device nodes in an image are live."
#[test]
fn device_nodes_of_a_base_cannot_be_opened_in_run_or_strata_run() {
    let Some(env) = Env::new() else { return };
    if require_tool("slirp4netns").is_none() {
        return;
    }
    device_base(&env);
    for network in ["default", "host", "none"] {
        env.context(
            &format!("dev-{network}"),
            &format!("FROM acme/devbase\nRUN {OPEN_DEVICES} > /result\n"),
            &[],
        );
        env.strata()
            .args([
                "build-image",
                &format!("dev-{network}"),
                "-t",
                &format!("acme/dev-{network}"),
                "--network",
                network,
            ])
            .assert()
            .success();
        env.strata()
            .args([
                "run",
                "--network",
                network,
                "acme/devbase",
                "--",
                "sh",
                "-c",
                OPEN_DEVICES,
            ])
            .assert()
            .success()
            .stdout("closed\n");
    }
}

// See issue 13: "The default RUN / `strata run` network is the host's."
#[test]
fn run_steps_cannot_reach_the_hosts_loopback_unless_told_host() {
    let Some(env) = Env::new() else { return };
    if require_tool("slirp4netns").is_none() {
        return;
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = accepted.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            drop(stream);
        }
    });
    let probe = format!(
        "if busybox nc -w 5 127.0.0.1 {port} </dev/null; then echo reached; else echo refused; fi"
    );
    env.context(
        "lo",
        &format!("FROM acme/base\nRUN {probe} > /result\n"),
        &[],
    );
    env.build("lo", "acme/lo").success();
    env.strata()
        .args(["run", "acme/lo", "--", "cat", "/result"])
        .assert()
        .success()
        .stdout("refused\n");
    env.strata()
        .args(["run", "acme/base", "--", "sh", "-c", &probe])
        .assert()
        .success()
        .stdout("refused\n");
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 0);
    // The explicit opt-in reaches it.
    env.strata()
        .args([
            "run",
            "--network",
            "host",
            "acme/base",
            "--",
            "sh",
            "-c",
            &probe,
        ])
        .assert()
        .success()
        .stdout("reached\n");
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 1);
}

#[test]
fn a_fork_bomb_under_pids_limit_fails_the_build_cleanly() {
    let Some(env) = Env::new() else { return };
    if !std::path::Path::new("/sys/fs/cgroup/pids/cgroup.procs").exists()
        && !std::fs::read_to_string("/sys/fs/cgroup/cgroup.controllers")
            .is_ok_and(|c| c.contains("pids"))
    {
        assert!(
            !strata_testutil::in_ci(),
            "CI needs a pids cgroup controller"
        );
        eprintln!("skipping: no pids cgroup controller here");
        return;
    }
    // Bounded: a binary tree 9 deep whose leaves end after 3 seconds (~1000 processes at most).
    env.context(
        "bomb",
        "FROM acme/base\n\
         RUN b() { if [ $1 -gt 0 ]; then b $(($1-1)) & b $(($1-1)) & wait; else sleep 3; fi; }; b 9\n",
        &[],
    );
    let assert = env
        .strata()
        .args([
            "build-image",
            "bomb",
            "-t",
            "acme/bomb",
            "--pids-limit",
            "64",
        ])
        .assert()
        .failure();
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    assert!(
        stderr.contains("reached its limit of 64 processes"),
        "{stderr}"
    );
    let index = std::fs::read_to_string(env.store().join("index.json")).unwrap();
    assert!(!index.contains("acme/bomb"), "no image for a failed build");
    assert_eq!(
        strata_testutil::mounts_under(env.dir.path()),
        Vec::<std::path::PathBuf>::new(),
        "mounts left behind"
    );
    // The machine is still usable: the same store builds and runs.
    env.strata()
        .args([
            "run",
            "--pids-limit",
            "-1",
            "acme/base",
            "--",
            "echo",
            "fine",
        ])
        .assert()
        .success()
        .stdout("fine\n");
}
