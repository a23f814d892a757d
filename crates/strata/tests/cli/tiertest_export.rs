//! `strata export` archives read by the tools we did not write (podman, skopeo), and the
//! cross-check: the real container-structure-test binary, on strata's docker-archive export,
//! reaches the same verdict as `strata test` for every file, content and metadata test.

#![allow(clippy::print_stderr)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use assert_cmd::cargo::cargo_bin_cmd;
use serde_json::Value;
use strata_testutil::{require_tool, run_ok};

/// A store with `acme/NAME` built FROM a busybox base (no RUN: no root needed).
struct Env {
    dir: tempfile::TempDir,
    /// `acme/NAME`: each test its own name, so parallel podman loads and removals never collide.
    name: String,
}

impl Env {
    fn new(name: &str) -> Option<Env> {
        let env = Env {
            dir: tempfile::tempdir().unwrap(),
            name: format!("acme/{name}"),
        };
        let base = env.path("base");
        std::fs::create_dir_all(&base).unwrap();
        strata_testutil::busybox_rootfs_tar(&base.join("rootfs.tar"))?;
        std::fs::write(
            base.join("Dockerfile"),
            "FROM scratch\nADD rootfs.tar /\nENV PATH=/bin\nCMD [\"/bin/sh\"]\n",
        )
        .unwrap();
        env.strata()
            .args(["build-image", "base", "-t", "acme/base"])
            .assert()
            .success();
        let app = env.path("app");
        std::fs::create_dir_all(&app).unwrap();
        std::fs::write(app.join("greeting"), "hello from strata\n").unwrap();
        std::fs::write(app.join("tool"), "#!/bin/sh\necho tool\n").unwrap();
        // podman keys images by config digest: a label unique to this test and this run keeps
        // the two tests' loads (and any leftover from an earlier run) from merging into one
        // podman image whose `.Digest` is the other archive's manifest.
        let nonce = env
            .dir
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        std::fs::write(
            app.join("Dockerfile"),
            format!(
                "FROM acme/base\nCOPY greeting /srv/greeting\nCOPY --chmod=0750 tool /usr/bin/tool\n\
                 ENV APP_HOME=/srv\nEXPOSE 8080/tcp\nVOLUME /data\nLABEL tier=app version=1.2.3\n\
                 LABEL strata.test.run={name}-{nonce}\n\
                 WORKDIR /srv\nCMD [\"cat\", \"/srv/greeting\"]\n"
            ),
        )
        .unwrap();
        env.strata()
            .args(["build-image", "app", "-t", &env.name])
            .assert()
            .success();
        Some(env)
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn strata(&self) -> assert_cmd::Command {
        let mut cmd = cargo_bin_cmd!("strata");
        cmd.arg("--store")
            .arg(self.path("store"))
            .current_dir(self.dir.path());
        cmd
    }

    fn export(&self, format: &str, file: &str) -> PathBuf {
        self.strata()
            .args(["save", &self.name, "--format", format, "-o", file])
            .assert()
            .success()
            .stdout(predicates::str::contains(self.full()));
        self.path(file)
    }

    /// `localhost/acme/NAME:latest`.
    fn full(&self) -> String {
        format!("localhost/{}:latest", self.name)
    }

    fn digest(&self) -> String {
        let out = self.strata().args(["images", "--json"]).output().unwrap();
        let images: Value = serde_json::from_slice(&out.stdout).unwrap();
        images
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["reference"] == self.full().as_str())
            .unwrap()["digest"]
            .as_str()
            .unwrap()
            .to_string()
    }
}

/// podman with a private storage under `env`'s directory: the images a test loads are its own,
/// and no other test or process on the machine can remove them meanwhile (or see them).
fn podman(env: &Env) -> Option<Command> {
    let podman = require_tool("podman")?;
    let mut cmd = Command::new(podman);
    cmd.arg("--root")
        .arg(env.path("podman-root"))
        .arg("--runroot")
        .arg(env.path("podman-run"))
        .args(["--storage-driver", "vfs"]);
    Some(cmd)
}

#[test]
fn podman_loads_and_runs_the_docker_archive() {
    let Some(env) = Env::new("app-docker") else {
        return;
    };
    let Some(_) = require_tool("podman") else {
        return;
    };
    let archive = env.export("docker-archive", "app-docker.tar");
    // The layout `docker save` writes: manifest.json, the config, uncompressed layer tars.
    let listing = run_ok(Command::new("tar").arg("tf").arg(&archive));
    assert!(listing.lines().any(|l| l == "manifest.json"), "{listing}");
    assert!(
        listing
            .lines()
            .filter(|l| l.ends_with("/layer.tar"))
            .count()
            >= 2,
        "{listing}"
    );
    let loaded = run_ok(podman(&env).unwrap().arg("load").arg("-i").arg(&archive));
    assert!(loaded.contains(&env.full()), "{loaded}");
    let out = run_ok(podman(&env).unwrap().args([
        "run",
        "--rm",
        "--runtime",
        "runc",
        "--ulimit",
        "nofile=20000:20000",
        "--ulimit",
        "nproc=1024:1024",
        "--network",
        "host",
        &env.full(),
    ]));
    assert_eq!(out, "hello from strata\n");
    let _ = podman(&env)
        .unwrap()
        .args(["rmi", "-f", &env.full()])
        .output();
}

#[test]
fn the_oci_archive_holds_exactly_this_image() {
    let Some(env) = Env::new("app-oci") else {
        return;
    };
    let Some(skopeo) = require_tool("skopeo") else {
        return;
    };
    let archive = env.export("oci-archive", "app-oci.tar");
    let raw = run_ok(
        Command::new(&skopeo)
            .args(["inspect", "--raw"])
            .arg(format!("oci-archive:{}", archive.display())),
    );
    let digest = format!(
        "sha256:{}",
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(raw.as_bytes()))
    );
    assert_eq!(
        digest,
        env.digest(),
        "the manifest is exported byte for byte"
    );
    let listing = run_ok(Command::new("tar").arg("tf").arg(&archive));
    let blobs = listing
        .lines()
        .filter(|l| l.starts_with("blobs/sha256/") && l.len() > "blobs/sha256/".len())
        .count();
    let manifest: Value = serde_json::from_str(&raw).unwrap();
    // Manifest + config + layers, no blob of acme/base's own manifest.
    assert_eq!(
        blobs,
        2 + manifest["layers"].as_array().unwrap().len(),
        "{listing}"
    );
    let config = run_ok(
        Command::new(&skopeo)
            .args(["inspect", "--config"])
            .arg(format!("oci-archive:{}", archive.display())),
    );
    assert!(config.contains("\"tier\": \"app\""), "{config}");
    let Some(mut podman) = podman(&env) else {
        return;
    };
    let loaded = run_ok(podman.arg("load").arg("-i").arg(&archive));
    assert!(loaded.contains(&env.full()), "{loaded}");
    let listed =
        run_ok(podman_cmd(&env).args(["image", "inspect", "--format", "{{.Digest}}", &env.full()]));
    assert_eq!(
        listed.trim(),
        env.digest(),
        "podman keeps the manifest digest"
    );
    let _ = podman_cmd(&env).args(["rmi", "-f", &env.full()]).output();
}

fn podman_cmd(env: &Env) -> Command {
    podman(env).expect("checked by the caller")
}

/// File, content and metadata tests, some passing, some failing, for both implementations.
/// (uid/gid are left out: the reference's tar driver cannot check owners, see docs/tier-tests.md.)
const SHARED: &str = r#"schemaVersion: "2.0.0"
fileExistenceTests:
  - name: greeting exists
    path: /srv/greeting
    permissions: "-rw-r--r--"
  - name: tool is executable by its group
    path: /usr/bin/tool
    permissions: "-rwxr-x---"
    isExecutableBy: group
  - name: tool is not executable by others
    path: /usr/bin/tool
    isExecutableBy: other
  - name: sh is a symlink
    path: /bin/sh
    permissions: "Lrwxrwxrwx"
  - name: sticky tmp
    path: /tmp
    permissions: "dtrwxrwxrwx"
  - name: wrong mode
    path: /srv/greeting
    permissions: "-rwxrwxrwx"
  - name: missing file
    path: /etc/motd
  - name: absent as promised
    path: /etc/shadow
    shouldExist: false
  - name: present but should not be
    path: /srv/greeting
    shouldExist: false
  - name: path from the environment
    path: $APP_HOME/greeting
fileContentTests:
  - name: greeting content
    path: /srv/greeting
    expectedContents: ["^hello from strata\n$", "(?m)^hello"]
    excludedContents: ["goodbye"]
  - name: wrong content
    path: /srv/greeting
    expectedContents: ["^goodbye"]
  - name: excluded content present
    path: /srv/greeting
    excludedContents: ["str[a-z]+"]
  - name: through a symlink
    path: /bin/sh
    expectedContents: ["BusyBox"]
  - name: content of a missing file
    path: /etc/motd
    expectedContents: ["x"]
metadataTest:
  envVars:
    - key: APP_HOME
      value: /srv
    - key: PATH
      value: "^/bin"
      isRegex: true
  labels:
    - key: tier
      value: app
    - key: version
      value: '^\d+\.\d+\.\d+$'
      isRegex: true
  cmd: ["cat", "/srv/greeting"]
  entrypoint: []
  exposedPorts: ["8080"]
  unexposedPorts: ["22"]
  volumes: ["/data"]
  workdir: /srv
"#;

const SHARED_BAD_METADATA: &str = r#"schemaVersion: "2.0.0"
metadataTest:
  envVars:
    - key: APP_HOME
      value: /opt
  labels:
    - key: tier
      value: "^mid"
      isRegex: true
  cmd: ["/bin/sh"]
  exposedPorts: ["80"]
  workdir: /app
"#;

/// Name → verdict from a container-structure-test JSON report.
fn verdicts(report: &Value) -> BTreeMap<String, bool> {
    report["Results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["Name"].as_str().unwrap().to_string(),
                r["Pass"].as_bool().unwrap(),
            )
        })
        .collect()
}

#[test]
fn container_structure_test_reaches_the_same_verdicts() {
    let Some(env) = Env::new("app") else { return };
    let Some(cst) = require_tool("container-structure-test") else {
        return;
    };
    let archive = env.export("docker-archive", "app.tar");
    for (file, yaml, expect_failures) in [
        ("shared.yaml", SHARED, 7),
        ("metadata.yaml", SHARED_BAD_METADATA, 1),
    ] {
        std::fs::write(env.path(file), yaml).unwrap();
        let theirs = Command::new(&cst)
            .args(["test", "--driver", "tar", "--output", "json", "--image"])
            .arg(&archive)
            .arg("--config")
            .arg(env.path(file))
            .output()
            .unwrap();
        let theirs: Value = serde_json::from_slice(&theirs.stdout).unwrap_or_else(|e| {
            panic!(
                "container-structure-test gave no JSON ({e}): {}",
                String::from_utf8_lossy(&theirs.stderr)
            )
        });
        let ours = env
            .strata()
            .args(["test", &env.name, "--format", "json", "--config", file])
            .output()
            .unwrap();
        let ours: Value = serde_json::from_slice(&ours.stdout).unwrap();
        let (theirs, ours_v) = (verdicts(&theirs), verdicts(&ours));
        assert_eq!(
            ours_v, theirs,
            "{file}: strata and container-structure-test disagree"
        );
        assert_eq!(
            ours["Fail"], expect_failures,
            "{file}: the cross-check must cover failing tests too: {ours}"
        );
    }
}

// `strata save` writes image archives, as podman has it; `strata export IMAGE --format` still
// works, says it is deprecated, and writes the same bytes.
#[test]
fn export_of_an_image_is_save_with_a_deprecation_note() {
    let Some(env) = Env::new("app-save") else {
        return;
    };
    let saved = env.export("oci-archive", "saved.tar");
    let out = env
        .strata()
        .args([
            "export",
            &env.name,
            "--format",
            "oci-archive",
            "-o",
            "exported.tar",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("deprecated; use `strata save"), "{stderr}");
    assert_eq!(
        std::fs::read(&saved).unwrap(),
        std::fs::read(env.path("exported.tar")).unwrap()
    );
}
