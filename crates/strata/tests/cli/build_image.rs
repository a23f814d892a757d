//! `strata build-image` end to end: images built by strata are checked by tools we did not write
//! (skopeo, umoci, podman), rebuilt reproducibly and from the cache, and hostile inputs never write
//! outside the image.
//!
//! Every test works in its own temporary directory. Paths carry no component starting with a dot:
//! podman cannot read an `oci:` path that has one.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command as StdCommand;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use assert_cmd::Command;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use strata_testutil::{busybox_rootfs_tar, require_tool, run_ok};

/// The busybox base every FROM-image test builds on.
const BASE: &str = "localhost/acme/base:latest";
/// What the base's /etc/passwd holds (strata_testutil's busybox rootfs).
const PASSWD_HAS: &str = "www-data:x:33:33:";

/// A temporary directory whose path podman accepts in `oci:` references: no component starting
/// with a dot, no upper-case letter (podman derives a lower-case image name from the path).
fn tempdir() -> tempfile::TempDir {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    tempfile::Builder::new()
        .prefix(&format!("strata-build-{}-{n}", std::process::id()))
        .rand_bytes(0)
        .tempdir()
        .unwrap()
}

fn strata(store: &Path) -> Command {
    let mut cmd = Command::cargo_bin("strata").unwrap();
    cmd.env_remove("STRATA_STORE")
        .env_remove("STRATA_CHAIN")
        .env_remove("SOURCE_DATE_EPOCH")
        .arg("--store")
        .arg(store);
    cmd
}

/// Build `context` (with extra arguments), expecting success; returns the `--json` result.
fn build(store: &Path, context: &Path, args: &[&str]) -> Value {
    build_env(store, context, args, &[])
}

fn build_env(store: &Path, context: &Path, args: &[&str], env: &[(&str, &str)]) -> Value {
    let mut cmd = strata(store);
    cmd.arg("build-image").arg(context).args(args).arg("--json");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "build of {} failed:\n{}",
        context.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Build `context` expecting failure; returns the one `error:` line of stderr.
fn build_error(store: &Path, context: &Path, args: &[&str]) -> String {
    let out = strata(store)
        .arg("build-image")
        .arg(context)
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "build should fail:\n{stderr}");
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "one error line expected:\n{stderr}");
    // Nothing follows the error line: the message is whole on it.
    assert_eq!(
        stderr.trim_end().lines().last(),
        Some(errors[0]),
        "{stderr}"
    );
    errors[0].to_string()
}

/// Write `content` at `dir/rel`, creating parents, mode 0644.
fn write(dir: &Path, rel: &str, content: &str) -> PathBuf {
    let path = dir.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(&path, content).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    path
}

fn symlink(target: &str, link: &Path) {
    fs::create_dir_all(link.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(target, link).unwrap();
}

/// A context for the busybox base: `FROM scratch`, `ADD rootfs.tar /`, `CMD ["/bin/sh"]`, plus
/// extra files copied in. None when busybox is missing.
fn base_context(dir: &Path, extra: &[(&str, &str)]) -> Option<PathBuf> {
    let ctx = dir.join("base");
    fs::create_dir_all(&ctx).unwrap();
    busybox_rootfs_tar(&ctx.join("rootfs.tar"))?;
    let mut dockerfile = String::from("FROM scratch\nADD rootfs.tar /\n");
    for (path, content) in extra {
        write(&ctx, &format!("extra/{path}"), content);
        dockerfile.push_str(&format!("COPY extra/{path} /{path}\n"));
    }
    dockerfile.push_str("CMD [\"/bin/sh\"]\n");
    write(&ctx, "Dockerfile", &dockerfile);
    Some(ctx)
}

/// Build the busybox base into `store` as [`BASE`]; returns its digest.
fn build_base(store: &Path, dir: &Path) -> Option<String> {
    let ctx = base_context(dir, &[])?;
    let out = build(store, &ctx, &["-t", BASE]);
    Some(out["digest"].as_str().unwrap().to_string())
}

/// A context directory holding `Dockerfile` and `files`.
fn context(dir: &Path, name: &str, dockerfile: &str, files: &[(&str, &str)]) -> PathBuf {
    let ctx = dir.join(name);
    fs::create_dir_all(&ctx).unwrap();
    write(&ctx, "Dockerfile", dockerfile);
    for (path, content) in files {
        write(&ctx, path, content);
    }
    ctx
}

fn oci(store: &Path, reference: &str) -> String {
    format!("oci:{}:{reference}", store.display())
}

fn skopeo(args: &[&str]) -> Value {
    let out = run_ok(StdCommand::new("skopeo").arg("inspect").args(args));
    serde_json::from_str(&out).unwrap()
}

/// The image config blob, as skopeo reads it (raw: skopeo's parsed view drops Docker's
/// extensions such as OnBuild and Healthcheck).
fn config_of(store: &Path, reference: &str) -> Value {
    skopeo(&["--config", "--raw", &oci(store, reference)])
}

/// The manifest, as skopeo reads it.
fn manifest_of(store: &Path, reference: &str) -> Value {
    skopeo(&["--raw", &oci(store, reference)])
}

fn layer_digests(manifest: &Value) -> Vec<String> {
    manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect()
}

/// Unpack the image with umoci; returns its root filesystem.
fn unpack(store: &Path, reference: &str, dir: &Path) -> PathBuf {
    let bundle = dir.join(format!("bundle-{}", reference.replace(['/', ':'], "-")));
    run_ok(
        StdCommand::new("umoci")
            .arg("unpack")
            .arg("--image")
            .arg(format!("{}:{reference}", store.display()))
            .arg(&bundle),
    );
    bundle.join("rootfs")
}

/// Every path under `root`, relative, sorted (directories included).
fn tree(root: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            out.push(
                path.strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned(),
            );
            if entry.file_type().unwrap().is_dir() {
                walk(root, &path, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

/// (mode & 0o7777, uid, gid) of a path, not following a final symlink.
fn stat(path: &Path) -> (u32, u32, u32) {
    let m = fs::symlink_metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (m.mode() & 0o7777, m.uid(), m.gid())
}

/// Run the image with podman in private storage; returns stdout.
fn podman_run(dir: &Path, store: &Path, reference: &str, args: &[&str]) -> String {
    run_ok(
        StdCommand::new("podman")
            .arg("--root")
            .arg(dir.join("podman-root"))
            .arg("--runroot")
            .arg(dir.join("podman-run"))
            .args(["--storage-driver", "vfs", "run", "--rm", "--quiet"])
            .args(["--runtime", "runc", "--network", "none"])
            .args([
                "--ulimit",
                "nofile=20000:20000",
                "--ulimit",
                "nproc=1024:1024",
            ])
            .arg(oci(store, reference))
            .args(args),
    )
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

// ---------------------------------------------------------------------------------------------
// 1. skopeo reads the config, history and annotations.

const APP_DOCKERFILE: &str = r#"FROM localhost/acme/base:latest
LABEL org.example.team=platform version="1.0"
ENV APP_HOME=/srv/app GREETING="hello world"
WORKDIR $APP_HOME
COPY index.html ./
USER nobody
EXPOSE 8080/tcp 53/udp
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["cat index.html"]
"#;

#[test]
fn skopeo_shows_config_history_and_annotations() {
    let Some(_) = require_tool("skopeo") else {
        return;
    };
    let dir = tempdir();
    let store = dir.path().join("store");
    let Some(base_digest) = build_base(&store, dir.path()) else {
        return;
    };
    let ctx = context(
        dir.path(),
        "app",
        APP_DOCKERFILE,
        &[("index.html", "<h1>hi</h1>\n")],
    );
    build(&store, &ctx, &["-t", "localhost/acme/app:latest"]);

    let config = config_of(&store, "localhost/acme/app:latest");
    let c = &config["config"];
    assert_eq!(
        c["Env"],
        json!([
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "APP_HOME=/srv/app",
            "GREETING=hello world"
        ])
    );
    assert_eq!(
        c["Labels"],
        json!({"org.example.team": "platform", "version": "1.0"})
    );
    assert_eq!(c["ExposedPorts"], json!({"8080/tcp": {}, "53/udp": {}}));
    assert_eq!(c["User"], "nobody");
    assert_eq!(c["WorkingDir"], "/srv/app");
    assert_eq!(c["Entrypoint"], json!(["/bin/sh", "-c"]));
    assert_eq!(c["Cmd"], json!(["cat index.html"]));
    assert_eq!(config["created"], "1970-01-01T00:00:00Z");
    assert_eq!(config["os"], "linux");

    // One history entry per step, the base's first; metadata steps are empty layers.
    let history: Vec<(String, bool)> = config["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["created_by"].as_str().unwrap().to_string(),
                h["empty_layer"].as_bool().unwrap_or(false),
            )
        })
        .collect();
    let expected: Vec<(String, bool)> = [
        ("ADD rootfs.tar /", false),
        ("CMD [\"/bin/sh\"]", true),
        ("LABEL org.example.team=platform version=1.0", true),
        ("ENV APP_HOME=/srv/app GREETING=\"hello world\"", true),
        ("WORKDIR /srv/app", false),
        ("COPY index.html ./", false),
        ("USER nobody", true),
        ("EXPOSE 8080/tcp 53/udp", true),
        ("ENTRYPOINT [\"/bin/sh\", \"-c\"]", true),
        ("CMD [\"cat index.html\"]", true),
    ]
    .iter()
    .map(|(s, e)| (s.to_string(), *e))
    .collect();
    assert_eq!(history, expected);
    let non_empty = history.iter().filter(|(_, empty)| !empty).count();
    assert_eq!(
        non_empty,
        config["rootfs"]["diff_ids"].as_array().unwrap().len()
    );

    let manifest = manifest_of(&store, "localhost/acme/app:latest");
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    let annotations = &manifest["annotations"];
    assert_eq!(annotations["org.opencontainers.image.base.name"], BASE);
    assert_eq!(
        annotations["org.opencontainers.image.base.digest"],
        base_digest.as_str()
    );
    assert_eq!(
        annotations["org.opencontainers.image.created"],
        "1970-01-01T00:00:00Z"
    );
    assert_eq!(layer_digests(&manifest).len(), non_empty);

    // skopeo's summary view agrees.
    let summary = skopeo(&[&oci(&store, "localhost/acme/app:latest")]);
    assert_eq!(summary["Labels"]["version"], "1.0");
    assert_eq!(summary["Layers"].as_array().unwrap().len(), non_empty);
    assert!(
        summary["Env"]
            .as_array()
            .unwrap()
            .contains(&json!("GREETING=hello world"))
    );
}

#[test]
fn skopeo_shows_every_metadata_instruction() {
    let Some(_) = require_tool("skopeo") else {
        return;
    };
    let dir = tempdir();
    let store = dir.path().join("store");
    let ctx = context(
        dir.path(),
        "app",
        "FROM scratch\n\
         MAINTAINER ops@example.com\n\
         SHELL [\"/bin/sh\", \"-ec\"]\n\
         VOLUME [\"/logs\", \"/cache\"]\n\
         VOLUME /data\n\
         EXPOSE 80 1000-1001/udp\n\
         STOPSIGNAL SIGQUIT\n\
         HEALTHCHECK --interval=30s --timeout=5s --retries=3 CMD wget -q -O- http://localhost/\n\
         ARG VERSION=1.2\n\
         LABEL version=$VERSION\n\
         CMD echo through the shell\n",
        &[],
    );
    build(&store, &ctx, &["-t", "localhost/acme/meta:latest"]);
    let config = config_of(&store, "localhost/acme/meta:latest");
    assert_eq!(config["author"], "ops@example.com");
    let c = &config["config"];
    assert_eq!(c["Shell"], json!(["/bin/sh", "-ec"]));
    assert_eq!(
        c["Cmd"],
        json!(["/bin/sh", "-ec", "echo through the shell"])
    );
    assert_eq!(
        c["Volumes"],
        json!({"/logs": {}, "/cache": {}, "/data": {}})
    );
    assert_eq!(
        c["ExposedPorts"],
        json!({"80/tcp": {}, "1000/udp": {}, "1001/udp": {}})
    );
    assert_eq!(c["StopSignal"], "SIGQUIT");
    assert_eq!(
        c["Healthcheck"],
        json!({
            "Test": ["CMD-SHELL", "wget -q -O- http://localhost/"],
            "Interval": 30_000_000_000u64,
            "Timeout": 5_000_000_000u64,
            "Retries": 3
        })
    );
    assert_eq!(c["Labels"], json!({"version": "1.2"}));
    // FROM scratch: no layer at all, every step an empty layer; ARG has its entry (as BuildKit
    // and buildah write it), and history shows expanded values.
    assert_eq!(config["rootfs"]["diff_ids"], json!([]));
    let history = config["history"].as_array().unwrap();
    assert_eq!(history.len(), 10);
    assert!(history.iter().all(|h| h["empty_layer"] == true));
    let created_by: Vec<&str> = history
        .iter()
        .map(|h| h["created_by"].as_str().unwrap())
        .collect();
    assert_eq!(created_by[7..9], ["ARG VERSION=1.2", "LABEL version=1.2"]);
}

// ---------------------------------------------------------------------------------------------
// 2. umoci unpacks exact files, modes and owners.

#[test]
fn umoci_shows_exact_files_modes_and_owners() {
    let Some(_) = require_tool("umoci") else {
        return;
    };
    let dir = tempdir();
    let store = dir.path().join("store");
    if build_base(&store, dir.path()).is_none() {
        return;
    }
    let ctx = context(
        dir.path(),
        "app",
        "FROM localhost/acme/base:latest\n\
         COPY --chmod=4755 tool /usr/local/bin/tool\n\
         COPY --chown=1234:5678 data.txt /data/numeric.txt\n\
         COPY --chown=www-data site /srv/site/\n\
         COPY --chown=nobody:www-data data.txt /srv/mixed.txt\n\
         COPY alias.txt /srv/\n\
         WORKDIR /srv/work\n",
        &[
            ("tool", "#!/bin/sh\necho tool\n"),
            ("data.txt", "data\n"),
            ("site/index.html", "<h1>site</h1>\n"),
            ("site/css/main.css", "body{}\n"),
            ("site/private/key", "secret\n"),
        ],
    );
    fs::set_permissions(ctx.join("site/private"), fs::Permissions::from_mode(0o750)).unwrap();
    fs::set_permissions(
        ctx.join("site/private/key"),
        fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    symlink("index.html", &ctx.join("site/home.html"));
    symlink("data.txt", &ctx.join("alias.txt"));
    build(&store, &ctx, &["-t", "localhost/acme/app:latest"]);

    let root = unpack(&store, "localhost/acme/app:latest", dir.path());
    let tool = root.join("usr/local/bin/tool");
    assert_eq!(stat(&tool), (0o4755, 0, 0));
    assert_eq!(fs::read_to_string(&tool).unwrap(), "#!/bin/sh\necho tool\n");
    // Created parents are 0755 root-owned without --chown.
    assert_eq!(stat(&root.join("usr/local")), (0o755, 0, 0));
    assert_eq!(stat(&root.join("data")), (0o755, 1234, 5678));
    assert_eq!(stat(&root.join("data/numeric.txt")), (0o644, 1234, 5678));

    // A directory source copies its contents; modes kept; owner by name through /etc/passwd.
    let site: Vec<String> = tree(&root.join("srv/site"));
    assert_eq!(
        site,
        [
            "css",
            "css/main.css",
            "home.html",
            "index.html",
            "private",
            "private/key"
        ]
    );
    assert_eq!(stat(&root.join("srv/site")), (0o755, 33, 33));
    assert_eq!(stat(&root.join("srv/site/private")), (0o750, 33, 33));
    assert_eq!(stat(&root.join("srv/site/private/key")), (0o600, 33, 33));
    assert_eq!(stat(&root.join("srv/site/css/main.css")), (0o644, 33, 33));
    // A symlink inside a copied directory stays a symlink.
    let home = root.join("srv/site/home.html");
    assert!(
        fs::symlink_metadata(&home)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(fs::read_link(&home).unwrap(), Path::new("index.html"));
    // user:group by names: nobody is 65534, the group www-data 33.
    assert_eq!(stat(&root.join("srv/mixed.txt")), (0o644, 65534, 33));
    // A symlink named as a source is followed (Docker's rule): a file under the link's own name.
    let alias = root.join("srv/alias.txt");
    assert!(fs::symlink_metadata(&alias).unwrap().file_type().is_file());
    assert_eq!(fs::read_to_string(&alias).unwrap(), "data\n");
    assert!(!root.join("srv/data.txt").exists());
    // WORKDIR created its directory.
    assert_eq!(stat(&root.join("srv/work")), (0o755, 0, 0));
    // The base is intact underneath.
    assert!(
        fs::read_to_string(root.join("etc/passwd"))
            .unwrap()
            .contains(PASSWD_HAS)
    );
    assert_eq!(stat(&root.join("bin/busybox")).0, 0o755);
}

// ---------------------------------------------------------------------------------------------
// 3. podman runs what strata built.

#[test]
fn podman_runs_cmd_and_entrypoint_with_dockers_reset_rule() {
    let Some(_) = require_tool("podman") else {
        return;
    };
    let Some(_) = require_tool("skopeo") else {
        return;
    };
    let dir = tempdir();
    let store = dir.path().join("store");
    if build_base(&store, dir.path()).is_none() {
        return;
    }
    let app = context(
        dir.path(),
        "app",
        "FROM localhost/acme/base:latest\n\
         COPY --chown=www-data hello.txt /srv/hello.txt\n\
         WORKDIR /srv\n\
         USER www-data\n\
         CMD [\"sh\", \"-c\", \"id -u; pwd; cat hello.txt\"]\n",
        &[("hello.txt", "hello from strata\n")],
    );
    build(&store, &app, &["-t", "localhost/acme/app:latest"]);
    assert_eq!(
        podman_run(dir.path(), &store, "localhost/acme/app:latest", &[]),
        "33\n/srv\nhello from strata\n"
    );

    // A child's ENTRYPOINT resets the inherited CMD: `echo entry`, not `echo entry sh -c ...`.
    let child = context(
        dir.path(),
        "child",
        "FROM localhost/acme/app:latest\nENTRYPOINT [\"echo\", \"entry\"]\n",
        &[],
    );
    build(&store, &child, &["-t", "localhost/acme/child:latest"]);
    assert!(config_of(&store, "localhost/acme/child:latest")["config"]["Cmd"].is_null());
    assert_eq!(
        podman_run(dir.path(), &store, "localhost/acme/child:latest", &[]),
        "entry\n"
    );

    // A CMD set in the same stage before the ENTRYPOINT is kept.
    let both = context(
        dir.path(),
        "both",
        "FROM localhost/acme/app:latest\nCMD [\"from\", \"cmd\"]\nENTRYPOINT [\"echo\"]\n",
        &[],
    );
    build(&store, &both, &["-t", "localhost/acme/both:latest"]);
    assert_eq!(
        podman_run(dir.path(), &store, "localhost/acme/both:latest", &[]),
        "from cmd\n"
    );
    // Shell-form ENTRYPOINT runs through /bin/sh -c and sees the image's environment.
    let shell = context(
        dir.path(),
        "shell",
        "FROM localhost/acme/base:latest\nENV WHO=world\nENTRYPOINT echo hello $WHO\n",
        &[],
    );
    build(&store, &shell, &["-t", "localhost/acme/shell:latest"]);
    assert_eq!(
        config_of(&store, "localhost/acme/shell:latest")["config"]["Entrypoint"],
        json!(["/bin/sh", "-c", "echo hello $WHO"])
    );
    assert_eq!(
        podman_run(dir.path(), &store, "localhost/acme/shell:latest", &[]),
        "hello world\n"
    );
}

// ---------------------------------------------------------------------------------------------
// 4. Reproducible builds.

/// Set the mtime of every file and directory under `root`.
fn set_mtimes(root: &Path, time: SystemTime) {
    for rel in tree(root) {
        let path = root.join(&rel);
        if fs::symlink_metadata(&path)
            .unwrap()
            .file_type()
            .is_symlink()
        {
            continue;
        }
        fs::File::open(&path).unwrap().set_modified(time).unwrap();
    }
}

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for rel in tree(from) {
        let src = from.join(&rel);
        let dst = to.join(&rel);
        let meta = fs::symlink_metadata(&src).unwrap();
        if meta.file_type().is_symlink() {
            symlink(fs::read_link(&src).unwrap().to_str().unwrap(), &dst);
        } else if meta.is_dir() {
            fs::create_dir_all(&dst).unwrap();
            fs::set_permissions(&dst, meta.permissions()).unwrap();
        } else {
            fs::copy(&src, &dst).unwrap();
        }
    }
}

#[test]
fn same_context_in_two_places_and_times_gives_the_same_digest() {
    let dir = tempdir();
    let Some(base_ctx) = base_context(dir.path(), &[]) else {
        return;
    };
    let app = context(
        dir.path(),
        "app",
        "FROM localhost/acme/base:latest\n\
         ENV MODE=prod\n\
         WORKDIR /srv\n\
         COPY site/ ./site/\n\
         COPY --chown=33:33 --chmod=0600 conf.ini /etc/app/conf.ini\n\
         ADD bundle.tar /opt/\n\
         CMD [\"cat\", \"/srv/site/index.html\"]\n",
        &[
            ("site/index.html", "<h1>hi</h1>\n"),
            ("site/img/logo.svg", "<svg/>\n"),
            ("conf.ini", "[app]\nx=1\n"),
        ],
    );
    symlink("index.html", &app.join("site/default.html"));
    // A plain tar with its own mtimes, owners and modes.
    let mut tar = tar::Builder::new(fs::File::create(app.join("bundle.tar")).unwrap());
    let mut h = tar::Header::new_gnu();
    h.set_size(6);
    h.set_mode(0o755);
    h.set_uid(7);
    h.set_gid(8);
    h.set_mtime(1_234_567_890);
    h.set_entry_type(tar::EntryType::Regular);
    tar.append_data(&mut h, "bundle/run.sh", &b"run!!\n"[..])
        .unwrap();
    tar.finish().unwrap();
    drop(tar);

    let digests: Vec<(String, String)> = (0..2)
        .map(|i| {
            // Each build: the contexts copied to a different place with different mtimes, a
            // different store (and so a different cache), a different wall-clock time.
            let place = dir.path().join(format!("place-{i}/nested-{i}"));
            let base_copy = place.join("base-context");
            let app_copy = place.join(format!("app-context-{i}"));
            copy_tree(&base_ctx, &base_copy);
            copy_tree(&app, &app_copy);
            let when = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000 + i * 86_400_000);
            set_mtimes(&base_copy, when);
            set_mtimes(&app_copy, when);
            let store = dir.path().join(format!("store-{i}/images"));
            let base = build(&store, &base_copy, &["-t", BASE]);
            let out = build(&store, &app_copy, &["-t", "localhost/acme/app:latest"]);
            assert_eq!(out["builtSteps"], 4, "{out}");
            if i == 0 {
                std::thread::sleep(Duration::from_millis(1100));
            }
            (
                base["digest"].as_str().unwrap().to_string(),
                out["digest"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(digests[0], digests[1]);
    assert_ne!(digests[0].0, digests[0].1);
}

#[test]
fn source_date_epoch_sets_created_times_and_layer_mtimes() {
    let Some(_) = require_tool("skopeo") else {
        return;
    };
    let Some(_) = require_tool("umoci") else {
        return;
    };
    let dir = tempdir();
    let store = dir.path().join("store");
    let ctx = context(
        dir.path(),
        "app",
        "FROM scratch\nCOPY file.txt /file.txt\nLABEL a=b\n",
        &[("file.txt", "x\n")],
    );
    let plain = build(&store, &ctx, &["-t", "localhost/acme/plain:latest"]);
    let dated = build_env(
        &store,
        &ctx,
        &["-t", "localhost/acme/dated:latest"],
        &[("SOURCE_DATE_EPOCH", "1700000000")],
    );
    assert_ne!(plain["digest"], dated["digest"]);
    let config = config_of(&store, "localhost/acme/dated:latest");
    let when = "2023-11-14T22:13:20Z";
    assert_eq!(config["created"], when);
    for h in config["history"].as_array().unwrap() {
        assert_eq!(h["created"], when, "{h}");
    }
    let manifest = manifest_of(&store, "localhost/acme/dated:latest");
    assert_eq!(
        manifest["annotations"]["org.opencontainers.image.created"],
        when
    );
    let root = unpack(&store, "localhost/acme/dated:latest", dir.path());
    assert_eq!(
        fs::metadata(root.join("file.txt")).unwrap().mtime(),
        1_700_000_000
    );
    // Without it, everything is at the epoch.
    let root = unpack(&store, "localhost/acme/plain:latest", dir.path());
    assert_eq!(fs::metadata(root.join("file.txt")).unwrap().mtime(), 0);
}

// ---------------------------------------------------------------------------------------------
// 5. The step cache.

#[test]
fn unchanged_rebuild_builds_nothing_and_changed_file_rebuilds_one_step() {
    let dir = tempdir();
    let store = dir.path().join("store");
    if build_base(&store, dir.path()).is_none() {
        return;
    }
    let ctx = context(
        dir.path(),
        "app",
        "FROM localhost/acme/base:latest\n\
         WORKDIR /srv\n\
         COPY a.txt ./\n\
         COPY b.txt ./\n\
         CMD [\"cat\", \"a.txt\"]\n",
        &[("a.txt", "a\n"), ("b.txt", "b\n")],
    );
    let first = build(&store, &ctx, &["-t", "localhost/acme/app:latest"]);
    assert_eq!(first["builtSteps"], 3, "{first}");
    assert_eq!(first["cachedSteps"], 0, "{first}");
    let second = build(&store, &ctx, &["-t", "localhost/acme/app:latest"]);
    assert_eq!(second["builtSteps"], 0, "{second}");
    assert_eq!(second["cachedSteps"], 3, "{second}");
    assert_eq!(first["digest"], second["digest"]);

    write(&ctx, "b.txt", "b changed\n");
    let third = build(&store, &ctx, &["-t", "localhost/acme/app:latest"]);
    assert_eq!(third["builtSteps"], 1, "{third}");
    assert_eq!(third["cachedSteps"], 2, "{third}");
    assert_ne!(third["digest"], first["digest"]);

    // --no-cache writes every layer again, and the bytes are the same.
    let fresh = build(
        &store,
        &ctx,
        &["-t", "localhost/acme/app:latest", "--no-cache"],
    );
    assert_eq!(fresh["builtSteps"], 3, "{fresh}");
    assert_eq!(fresh["digest"], third["digest"]);
}

#[test]
fn copy_layers_are_reused_when_the_base_changes() {
    let Some(_) = require_tool("skopeo") else {
        return;
    };
    let dir = tempdir();
    let store = dir.path().join("store");
    let Some(base_digest) = build_base(&store, dir.path()) else {
        return;
    };
    let ctx = context(
        dir.path(),
        "app",
        "FROM localhost/acme/base:latest\n\
         WORKDIR /srv\n\
         COPY site/ ./site/\n\
         COPY --chown=www-data a.txt /srv/a.txt\n",
        &[
            ("site/index.html", "<h1>hi</h1>\n"),
            ("site/x/y.txt", "y\n"),
            ("a.txt", "a\n"),
        ],
    );
    let first = build(&store, &ctx, &["-t", "localhost/acme/app:latest"]);
    let before = layer_digests(&manifest_of(&store, "localhost/acme/app:latest"));
    assert_eq!(before.len(), 4);

    // The base gains a file; the app's own layers do not depend on it.
    let base2 = dir.path().join("base2");
    let ctx2 = base_context(&base2, &[("extra.txt", "new in the base\n")]).unwrap();
    let rebuilt_base = build(&store, &ctx2, &["-t", BASE]);
    assert_ne!(rebuilt_base["digest"].as_str().unwrap(), base_digest);
    let second = build(&store, &ctx, &["-t", "localhost/acme/app:latest"]);
    assert_ne!(first["digest"], second["digest"]);
    assert_eq!(second["builtSteps"], 0, "{second}");
    assert_eq!(second["cachedSteps"], 3, "{second}");
    let after = layer_digests(&manifest_of(&store, "localhost/acme/app:latest"));
    assert_eq!(after.len(), 5);
    assert_eq!(before[1..], after[2..], "the app's own layers are reused");
    assert_eq!(before[0], after[0]);
    let manifest = manifest_of(&store, "localhost/acme/app:latest");
    assert_eq!(
        manifest["annotations"]["org.opencontainers.image.base.digest"],
        rebuilt_base["digest"]
    );
}

// ---------------------------------------------------------------------------------------------
// 6. Security: nothing is written outside the image.

/// Append an entry whose name is written raw into the header (the tar crate refuses `..` and
/// absolute names, which is what a hostile archive has).
fn raw_entry(
    builder: &mut tar::Builder<fs::File>,
    name: &str,
    kind: tar::EntryType,
    link: Option<&str>,
    data: &[u8],
) {
    let mut h = tar::Header::new_gnu();
    h.as_mut_bytes()[..100].fill(0);
    h.as_mut_bytes()[..name.len()].copy_from_slice(name.as_bytes());
    h.set_entry_type(kind);
    h.set_mode(if kind == tar::EntryType::Directory {
        0o755
    } else {
        0o644
    });
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_size(data.len() as u64);
    if let Some(link) = link {
        h.set_link_name(link).unwrap();
    }
    h.set_cksum();
    builder.append(&h, data).unwrap();
}

/// Every path below `root` whose file name is `name`.
fn find_named(root: &Path, name: &str) -> Vec<String> {
    tree(root)
        .into_iter()
        .filter(|p| Path::new(p).file_name().is_some_and(|n| n == name))
        .collect()
}

/// One archive entry: name (raw), type, link target, content.
type Raw<'a> = (&'a str, tar::EntryType, Option<&'a str>, &'a [u8]);

fn hostile_tar(path: &Path, entries: &[Raw]) {
    let mut b = tar::Builder::new(fs::File::create(path).unwrap());
    for (name, kind, link, data) in entries {
        raw_entry(&mut b, name, *kind, *link, data);
    }
    b.finish().unwrap();
}

#[test]
fn hostile_add_tarballs_never_write_outside_the_image() {
    let Some(_) = require_tool("umoci") else {
        return;
    };
    use tar::EntryType::{Link, Regular, Symlink};
    let dir = tempdir();
    let store = dir.path().join("store");
    // The host directory a symlink in an archive points at.
    let host = dir.path().join("host-target");
    fs::create_dir(&host).unwrap();
    let host_str = host.to_str().unwrap().to_string();
    let abs = format!("/strata-abs-test-{}/evil", std::process::id());
    let ctx = dir.path().join("deep/er/app");
    fs::create_dir_all(&ctx).unwrap();
    let host_passwd = fs::read("/etc/passwd").unwrap();

    // Refused: a located error naming the archive and the entry.
    let refused: [(&str, Vec<Raw>, &str); 5] = [
        (
            "dotdot",
            vec![("../evil", Regular, None, b"evil\n")],
            "\"../evil\": path climbs above the root",
        ),
        (
            "deep-dotdot",
            vec![("a/../../../../../evil", Regular, None, b"evil\n")],
            "path climbs above the root",
        ),
        (
            "hardlink-up",
            vec![("pl", Link, Some("../../../../../../etc/passwd"), b"")],
            "path climbs above the root",
        ),
        (
            "hardlink-host",
            vec![("pl", Link, Some("/etc/passwd"), b"")],
            "hard link target /etc/passwd is not inside the root",
        ),
        (
            "hardlink-via-symlink",
            vec![
                ("a", Symlink, Some("/etc"), b""),
                ("pl", Link, Some("a/passwd"), b""),
            ],
            "hard link target a/passwd is not inside the root",
        ),
    ];
    for (name, entries, reason) in &refused {
        hostile_tar(&ctx.join(format!("{name}.tar")), entries);
        write(
            &ctx,
            "Dockerfile",
            &format!("FROM scratch\nADD {name}.tar /x/\n"),
        );
        let error = build_error(&store, &ctx, &[]);
        assert!(
            error.contains(&format!("Dockerfile:2: ADD {name}.tar /x/")),
            "{error}"
        );
        assert!(
            error.contains(&format!("{name}.tar: cannot extract archive")),
            "{error}"
        );
        assert!(error.contains(reason), "{name}: {error}");
    }

    // Contained: absolute names and symlinked parents land inside the image root.
    let contained: [(&str, Vec<Raw>, &str); 4] = [
        ("absolute", vec![(&abs, Regular, None, b"evil-abs\n")], ""),
        (
            "symlink-abs",
            vec![
                ("a", Symlink, Some(&host_str), b""),
                ("a/evil", Regular, None, b"evil-link\n"),
            ],
            "",
        ),
        (
            "symlink-up",
            vec![
                ("up", Symlink, Some("../../../.."), b""),
                ("up/evil", Regular, None, b"evil-up\n"),
            ],
            "",
        ),
        (
            "hardlink-own",
            vec![
                ("etc/passwd", Regular, None, b"the archive's own\n"),
                ("pl", Link, Some("/etc/passwd"), b""),
            ],
            "",
        ),
    ];
    for (name, entries, _) in &contained {
        hostile_tar(&ctx.join(format!("{name}.tar")), entries);
        write(
            &ctx,
            "Dockerfile",
            &format!("FROM scratch\nADD {name}.tar /x/\n"),
        );
        build(
            &store,
            &ctx,
            &["-t", &format!("localhost/acme/{name}:latest")],
        );
    }
    // Nothing reached the host, before anything is unpacked for inspection.
    assert!(!Path::new(&abs).exists());
    assert!(!Path::new(&abs).parent().unwrap().exists());
    assert_eq!(
        fs::read_dir(&host).unwrap().count(),
        0,
        "the symlink target"
    );
    assert_eq!(find_named(dir.path(), "evil"), Vec::<String>::new());
    assert!(!dir.path().join("deep/er/evil").exists());

    let unpacked = |name: &str| {
        let root = unpack(&store, &format!("localhost/acme/{name}:latest"), dir.path());
        let listed: Vec<String> = tree(&root)
            .into_iter()
            .filter(|p| !fs::symlink_metadata(root.join(p)).is_ok_and(|m| m.is_dir()))
            .collect();
        (root, listed)
    };
    let (root, files) = unpacked("absolute");
    let inside = format!("x{abs}");
    assert_eq!(files, std::slice::from_ref(&inside));
    assert_eq!(
        fs::read_to_string(root.join(&inside)).unwrap(),
        "evil-abs\n"
    );

    let (root, files) = unpacked("symlink-abs");
    let inside = format!("x{host_str}/evil");
    assert_eq!(files, ["x/a".to_string(), inside.clone()]);
    assert_eq!(fs::read_link(root.join("x/a")).unwrap(), host);
    assert_eq!(
        fs::read_to_string(root.join(&inside)).unwrap(),
        "evil-link\n"
    );

    let (root, files) = unpacked("symlink-up");
    assert_eq!(files, ["x/evil", "x/up"]);
    assert_eq!(
        fs::read_to_string(root.join("x/evil")).unwrap(),
        "evil-up\n"
    );

    let (root, files) = unpacked("hardlink-own");
    assert_eq!(files, ["x/etc/passwd", "x/pl"]);
    let linked = fs::read(root.join("x/pl")).unwrap();
    assert_eq!(linked, b"the archive's own\n");
    assert_ne!(linked, host_passwd);
    assert_eq!(fs::read_dir(&host).unwrap().count(), 0);
}

#[test]
fn context_symlinks_cannot_reach_the_host() {
    let Some(_) = require_tool("umoci") else {
        return;
    };
    let dir = tempdir();
    let store = dir.path().join("store");
    let ctx = context(
        dir.path(),
        "app",
        "FROM scratch\nCOPY etc-link/passwd /x\n",
        &[],
    );
    symlink("/etc", &ctx.join("etc-link"));
    let error = build_error(&store, &ctx, &[]);
    assert!(error.contains("Dockerfile:2"), "{error}");
    assert!(error.contains("etc-link/passwd"), "{error}");
    assert!(error.contains("not found in the build context"), "{error}");

    // With its own etc/passwd, the link resolves to the context's file, not the host's.
    write(&ctx, "etc/passwd", "the context's own\n");
    build(&store, &ctx, &["-t", "localhost/acme/ctx:latest"]);
    let root = unpack(&store, "localhost/acme/ctx:latest", dir.path());
    assert_eq!(
        fs::read_to_string(root.join("x")).unwrap(),
        "the context's own\n"
    );

    // A symlink inside a copied directory is copied as a link, never as the host file it names.
    let ctx3 = context(
        dir.path(),
        "app3",
        "FROM scratch\nCOPY tree/ /tree/\n",
        &[("tree/real.txt", "real\n")],
    );
    symlink("/etc/passwd", &ctx3.join("tree/passwd-link"));
    build(&store, &ctx3, &["-t", "localhost/acme/ctx3:latest"]);
    let root = unpack(&store, "localhost/acme/ctx3:latest", dir.path());
    let link = root.join("tree/passwd-link");
    assert!(
        fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(fs::read_link(&link).unwrap(), Path::new("/etc/passwd"));

    // `..` in a source is clamped at the context root.
    let ctx2 = context(
        dir.path(),
        "app2",
        "FROM scratch\nCOPY ../../../../etc/passwd /y\n",
        &[],
    );
    let error = build_error(&store, &ctx2, &[]);
    assert!(error.contains("Dockerfile:2"), "{error}");
    assert!(error.contains("not found in the build context"), "{error}");
}

#[test]
fn copy_destination_through_an_image_symlink_stays_in_the_image() {
    let Some(_) = require_tool("umoci") else {
        return;
    };
    let dir = tempdir();
    let store = dir.path().join("store");
    let unique = format!(
        "strata-owned-{}-{}",
        std::process::id(),
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let ctx = context(
        dir.path(),
        "app",
        &format!(
            "FROM scratch\n\
             COPY links/ /\n\
             COPY owned.txt /escape/tmp/{unique}\n\
             COPY owned.txt /abs/tmp/{unique}-abs\n\
             COPY owned.txt /escape/../../../tmp/{unique}-dots\n"
        ),
        &[("owned.txt", "owned\n")],
    );
    symlink("../../..", &ctx.join("links/escape"));
    symlink("/", &ctx.join("links/abs"));
    build(&store, &ctx, &["-t", "localhost/acme/escape:latest"]);
    for suffix in ["", "-abs", "-dots"] {
        assert!(
            !Path::new(&format!("/tmp/{unique}{suffix}")).exists(),
            "written on the host"
        );
    }
    let root = unpack(&store, "localhost/acme/escape:latest", dir.path());
    for suffix in ["", "-abs", "-dots"] {
        assert_eq!(
            fs::read_to_string(root.join(format!("tmp/{unique}{suffix}"))).unwrap(),
            "owned\n"
        );
    }
    // The links themselves are kept as they were.
    assert_eq!(
        fs::read_link(root.join("escape")).unwrap(),
        Path::new("../../..")
    );
}

// ---------------------------------------------------------------------------------------------
// 7. Features.

#[test]
fn dockerignore_follows_dockers_rules() {
    let Some(_) = require_tool("umoci") else {
        return;
    };
    let dir = tempdir();
    let store = dir.path().join("store");
    let ctx = context(
        dir.path(),
        "app",
        "FROM scratch\nCOPY . /ctx/\n",
        &[
            (".dockerignore", "**/*.log\n!keep.log\nsecret\n"),
            ("a.log", "a"),
            ("keep.log", "keep"),
            ("keep.txt", "keep"),
            ("sub/b.log", "b"),
            (
                "sub/keep.log",
                "not re-included: !keep.log is top-level only",
            ),
            ("sub/c.txt", "c"),
            ("secret/key", "k"),
            ("deep/er/d.log", "d"),
        ],
    );
    build(&store, &ctx, &["-t", "localhost/acme/ignore:latest"]);
    let root = unpack(&store, "localhost/acme/ignore:latest", dir.path());
    assert_eq!(
        tree(&root.join("ctx")),
        [
            ".dockerignore",
            "Dockerfile",
            "deep",
            "deep/er",
            "keep.log",
            "keep.txt",
            "sub",
            "sub/c.txt"
        ]
    );
    // An excluded file named as a source is not found.
    write(&ctx, "Dockerfile", "FROM scratch\nCOPY secret/key /key\n");
    let error = build_error(&store, &ctx, &[]);
    assert!(error.contains("Dockerfile:2"), "{error}");
    assert!(error.contains("secret/key"), "{error}");

    // `-f elsewhere/app.Dockerfile` takes `app.Dockerfile.dockerignore` beside it (BuildKit) over
    // the context's own .dockerignore.
    let other = dir.path().join("dockerfiles");
    write(&other, "app.Dockerfile", "FROM scratch\nCOPY . /ctx/\n");
    write(&other, "app.Dockerfile.dockerignore", "sub\nkeep.txt\n");
    let dockerfile = other.join("app.Dockerfile");
    build(
        &store,
        &ctx,
        &[
            "-f",
            dockerfile.to_str().unwrap(),
            "-t",
            "localhost/acme/ignore2:latest",
        ],
    );
    let root = unpack(&store, "localhost/acme/ignore2:latest", dir.path());
    let top: Vec<String> = fs::read_dir(root.join("ctx"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(
        top,
        [
            ".dockerignore",
            "Dockerfile",
            "a.log",
            "deep",
            "keep.log",
            "secret"
        ]
    );
}

#[test]
fn multi_stage_copy_from_and_target() {
    let Some(_) = require_tool("umoci") else {
        return;
    };
    let Some(_) = require_tool("skopeo") else {
        return;
    };
    let dir = tempdir();
    let store = dir.path().join("store");
    if build_base(&store, dir.path()).is_none() {
        return;
    }
    let ctx = context(
        dir.path(),
        "app",
        "FROM localhost/acme/base:latest AS builder\n\
         COPY src/ /build/\n\
         WORKDIR /build\n\
         FROM builder AS tested\n\
         COPY test.txt /build/test.txt\n\
         FROM scratch\n\
         COPY --from=builder /build/ /app/\n\
         COPY --from=0 /build/main.txt /by-index.txt\n\
         COPY --from=localhost/acme/base:latest /etc/passwd /copied-passwd\n",
        &[
            ("src/main.txt", "main\n"),
            ("src/lib/util.txt", "util\n"),
            ("test.txt", "test\n"),
        ],
    );
    build(&store, &ctx, &["-t", "localhost/acme/final:latest"]);
    let root = unpack(&store, "localhost/acme/final:latest", dir.path());
    assert_eq!(
        tree(&root),
        [
            "app",
            "app/lib",
            "app/lib/util.txt",
            "app/main.txt",
            "by-index.txt",
            "copied-passwd"
        ]
    );
    assert_eq!(
        fs::read_to_string(root.join("by-index.txt")).unwrap(),
        "main\n"
    );
    assert!(
        fs::read_to_string(root.join("copied-passwd"))
            .unwrap()
            .contains(PASSWD_HAS)
    );
    let manifest = manifest_of(&store, "localhost/acme/final:latest");
    assert!(manifest["annotations"]["org.opencontainers.image.base.name"].is_null());

    build(
        &store,
        &ctx,
        &["-t", "localhost/acme/tested:latest", "--target", "tested"],
    );
    let root = unpack(&store, "localhost/acme/tested:latest", dir.path());
    assert_eq!(
        fs::read_to_string(root.join("build/test.txt")).unwrap(),
        "test\n"
    );
    assert_eq!(
        fs::read_to_string(root.join("build/main.txt")).unwrap(),
        "main\n"
    );
    assert!(root.join("bin/busybox").is_file());
    let config = config_of(&store, "localhost/acme/tested:latest");
    assert_eq!(config["config"]["WorkingDir"], "/build");
    let manifest = manifest_of(&store, "localhost/acme/tested:latest");
    assert_eq!(
        manifest["annotations"]["org.opencontainers.image.base.name"],
        BASE
    );

    let error = build_error(&store, &ctx, &["--target", "nosuchstage"]);
    assert!(error.contains("nosuchstage"), "{error}");
}

#[test]
fn onbuild_triggers_run_in_the_child() {
    let Some(_) = require_tool("umoci") else {
        return;
    };
    let Some(_) = require_tool("skopeo") else {
        return;
    };
    let dir = tempdir();
    let store = dir.path().join("store");
    if build_base(&store, dir.path()).is_none() {
        return;
    }
    let parent = context(
        dir.path(),
        "parent",
        "FROM localhost/acme/base:latest\n\
         ONBUILD COPY trigger.txt /from-trigger.txt\n\
         ONBUILD ENV TRIGGERED=yes\n",
        &[("trigger.txt", "the parent's own, never copied\n")],
    );
    build(&store, &parent, &["-t", "localhost/acme/parent:latest"]);
    let config = config_of(&store, "localhost/acme/parent:latest");
    assert_eq!(
        config["config"]["OnBuild"],
        json!(["COPY trigger.txt /from-trigger.txt", "ENV TRIGGERED=yes"])
    );
    let root = unpack(&store, "localhost/acme/parent:latest", dir.path());
    assert!(!root.join("from-trigger.txt").exists());

    let child = context(
        dir.path(),
        "child",
        "FROM localhost/acme/parent:latest\nCOPY own.txt /own.txt\n",
        &[
            ("trigger.txt", "from the child's context\n"),
            ("own.txt", "own\n"),
        ],
    );
    build(&store, &child, &["-t", "localhost/acme/child:latest"]);
    let config = config_of(&store, "localhost/acme/child:latest");
    assert!(
        config["config"]["OnBuild"].is_null() || config["config"]["OnBuild"] == json!([]),
        "{}",
        config["config"]
    );
    assert!(
        config["config"]["Env"]
            .as_array()
            .unwrap()
            .contains(&json!("TRIGGERED=yes"))
    );
    let root = unpack(&store, "localhost/acme/child:latest", dir.path());
    assert_eq!(
        fs::read_to_string(root.join("from-trigger.txt")).unwrap(),
        "from the child's context\n"
    );
    assert_eq!(fs::read_to_string(root.join("own.txt")).unwrap(), "own\n");

    // A grandchild does not run the triggers again.
    let grandchild = context(
        dir.path(),
        "grandchild",
        "FROM localhost/acme/child:latest\nLABEL g=1\n",
        &[],
    );
    build(
        &store,
        &grandchild,
        &["-t", "localhost/acme/grandchild:latest"],
    );
    let child_layers = layer_digests(&manifest_of(&store, "localhost/acme/child:latest"));
    let grand_layers = layer_digests(&manifest_of(&store, "localhost/acme/grandchild:latest"));
    assert_eq!(child_layers, grand_layers);

    // A missing trigger source is reported.
    let orphan = context(
        dir.path(),
        "orphan",
        "FROM localhost/acme/parent:latest\n",
        &[],
    );
    let error = build_error(&store, &orphan, &[]);
    assert!(error.contains("trigger.txt"), "{error}");
}

/// A tarball with a directory, an executable owned by 1000:1000 and a plain file.
fn archive_bytes(marker: &str) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Directory);
    h.set_mode(0o755);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_size(0);
    b.append_data(&mut h, "pkg/bin", std::io::empty()).unwrap();
    let run = format!("#!/bin/sh\necho {marker}\n");
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o755);
    h.set_uid(1000);
    h.set_gid(1000);
    h.set_mtime(0);
    h.set_size(run.len() as u64);
    b.append_data(&mut h, "pkg/bin/run", run.as_bytes())
        .unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_size(marker.len() as u64);
    b.append_data(&mut h, "pkg/README", marker.as_bytes())
        .unwrap();
    b.into_inner().unwrap()
}

#[test]
fn add_extracts_local_gzip_and_xz_archives() {
    let Some(_) = require_tool("umoci") else {
        return;
    };
    let dir = tempdir();
    let store = dir.path().join("store");
    let ctx = context(
        dir.path(),
        "app",
        "FROM scratch\n\
         ADD gz.tar.gz /opt/\n\
         ADD data.tar.xz /data\n\
         ADD notes.tar.gz /notes.tar.gz\n",
        &[("notes.tar.gz", "not really an archive\n")],
    );
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&archive_bytes("gzip")).unwrap();
    fs::write(ctx.join("gz.tar.gz"), gz.finish().unwrap()).unwrap();
    let mut xz = xz2::write::XzEncoder::new(Vec::new(), 6);
    xz.write_all(&archive_bytes("xz")).unwrap();
    fs::write(ctx.join("data.tar.xz"), xz.finish().unwrap()).unwrap();
    build(&store, &ctx, &["-t", "localhost/acme/archives:latest"]);
    let root = unpack(&store, "localhost/acme/archives:latest", dir.path());
    assert_eq!(
        tree(&root),
        [
            "data",
            "data/pkg",
            "data/pkg/README",
            "data/pkg/bin",
            "data/pkg/bin/run",
            "notes.tar.gz",
            "opt",
            "opt/pkg",
            "opt/pkg/README",
            "opt/pkg/bin",
            "opt/pkg/bin/run"
        ]
    );
    assert_eq!(
        fs::read_to_string(root.join("opt/pkg/README")).unwrap(),
        "gzip"
    );
    assert_eq!(
        fs::read_to_string(root.join("data/pkg/README")).unwrap(),
        "xz"
    );
    // Owners and modes from the archive are kept.
    assert_eq!(stat(&root.join("opt/pkg/bin/run")), (0o755, 1000, 1000));
    assert_eq!(stat(&root.join("data/pkg/bin/run")), (0o755, 1000, 1000));
    // A file that only looks like an archive by name is copied as is.
    assert_eq!(
        fs::read_to_string(root.join("notes.tar.gz")).unwrap(),
        "not really an archive\n"
    );
}

/// Serve `body` on 127.0.0.1 from a thread (404 for paths holding "missing"); returns the base
/// URL.
fn serve(body: &'static [u8]) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request = String::new();
            let _ = reader.read_line(&mut request);
            // Read the rest of the request head up to its blank line.
            let mut line = String::new();
            while reader.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
                if line == "\r\n" || line == "\n" {
                    break;
                }
                line.clear();
            }
            let (status, body) = if request.contains("missing") {
                ("404 Not Found", &b"no such file\n"[..])
            } else {
                ("200 OK", body)
            };
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(body);
        }
    });
    format!("http://{addr}")
}

#[test]
fn add_url_honours_checksum() {
    let Some(_) = require_tool("umoci") else {
        return;
    };
    const BODY: &[u8] = b"remote payload\n";
    let url = serve(BODY);
    let good = format!("sha256:{}", sha256_hex(BODY));
    let bad = format!("sha256:{}", sha256_hex(b"something else"));
    let dir = tempdir();
    let store = dir.path().join("store");
    let ctx = context(
        dir.path(),
        "app",
        &format!(
            "FROM scratch\n\
             ADD --checksum={good} {url}/files/payload.txt /downloads/\n\
             ADD {url}/files/other.txt?x=1 /named.txt\n"
        ),
        &[],
    );
    build(&store, &ctx, &["-t", "localhost/acme/url:latest"]);
    let root = unpack(&store, "localhost/acme/url:latest", dir.path());
    let payload = root.join("downloads/payload.txt");
    assert_eq!(fs::read(&payload).unwrap(), BODY);
    assert_eq!(stat(&payload), (0o600, 0, 0));
    assert_eq!(fs::read(root.join("named.txt")).unwrap(), BODY);
    assert_eq!(stat(&root.join("named.txt")).0, 0o600);

    write(
        &ctx,
        "Dockerfile",
        &format!("FROM scratch\n\nADD --checksum={bad} {url}/files/payload.txt /downloads/\n"),
    );
    let error = build_error(&store, &ctx, &["--no-cache"]);
    assert!(error.contains("Dockerfile:3"), "{error}");
    assert!(error.contains(&good), "names the actual checksum: {error}");
    assert!(error.contains(&bad), "names the expected checksum: {error}");
    assert!(error.contains("/files/payload.txt"), "{error}");

    // A server error names the URL and the status.
    write(
        &ctx,
        "Dockerfile",
        &format!("FROM scratch\nADD {url}/files/missing.txt /x\n"),
    );
    let error = build_error(&store, &ctx, &[]);
    assert!(error.contains("Dockerfile:2"), "{error}");
    assert!(
        error.contains(&format!("downloading {url}/files/missing.txt")),
        "{error}"
    );
    assert!(error.contains("404"), "{error}");
}

#[test]
fn heredoc_copy_writes_inline_files() {
    let Some(_) = require_tool("umoci") else {
        return;
    };
    let dir = tempdir();
    let store = dir.path().join("store");
    let ctx = context(
        dir.path(),
        "app",
        "FROM scratch\n\
         COPY <<EOF /etc/greeting\n\
         hello from a heredoc\n\
         second line\n\
         EOF\n\
         COPY --chmod=0755 <<one.sh <<two.txt /multi/\n\
         #!/bin/sh\n\
         one.sh\n\
         second file\n\
         two.txt\n",
        &[],
    );
    build(&store, &ctx, &["-t", "localhost/acme/heredoc:latest"]);
    let root = unpack(&store, "localhost/acme/heredoc:latest", dir.path());
    assert_eq!(
        fs::read_to_string(root.join("etc/greeting")).unwrap(),
        "hello from a heredoc\nsecond line\n"
    );
    assert_eq!(stat(&root.join("etc/greeting")).0, 0o644);
    assert_eq!(
        fs::read_to_string(root.join("multi/one.sh")).unwrap(),
        "#!/bin/sh\n"
    );
    assert_eq!(stat(&root.join("multi/one.sh")).0, 0o755);
    assert_eq!(
        fs::read_to_string(root.join("multi/two.txt")).unwrap(),
        "second file\n"
    );
}

#[test]
fn squash_and_squash_all_still_run_in_podman() {
    let Some(_) = require_tool("podman") else {
        return;
    };
    let Some(_) = require_tool("skopeo") else {
        return;
    };
    let dir = tempdir();
    let store = dir.path().join("store");
    if build_base(&store, dir.path()).is_none() {
        return;
    }
    let ctx = context(
        dir.path(),
        "app",
        "FROM localhost/acme/base:latest\n\
         COPY one.txt /srv/one.txt\n\
         COPY two.txt /srv/two.txt\n\
         COPY one-v2.txt /srv/one.txt\n\
         LABEL squashed=maybe\n\
         CMD [\"cat\", \"/srv/one.txt\", \"/srv/two.txt\"]\n",
        &[
            ("one.txt", "one\n"),
            ("two.txt", "two\n"),
            ("one-v2.txt", "one v2\n"),
        ],
    );
    build(&store, &ctx, &["-t", "localhost/acme/layers:latest"]);
    build(
        &store,
        &ctx,
        &["-t", "localhost/acme/squash:latest", "--squash"],
    );
    build(
        &store,
        &ctx,
        &["-t", "localhost/acme/squashall:latest", "--squash-all"],
    );
    let base = layer_digests(&manifest_of(&store, BASE));
    let layered = layer_digests(&manifest_of(&store, "localhost/acme/layers:latest"));
    let squashed = layer_digests(&manifest_of(&store, "localhost/acme/squash:latest"));
    let all = layer_digests(&manifest_of(&store, "localhost/acme/squashall:latest"));
    assert_eq!(layered.len(), base.len() + 3);
    assert_eq!(squashed.len(), base.len() + 1);
    assert_eq!(squashed[..base.len()], base[..]);
    assert_eq!(all.len(), 1);
    for (reference, layers) in [
        ("localhost/acme/squash:latest", squashed.len()),
        ("localhost/acme/squashall:latest", 1),
    ] {
        let config = config_of(&store, reference);
        assert_eq!(
            config["rootfs"]["diff_ids"].as_array().unwrap().len(),
            layers
        );
        let non_empty = config["history"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|h| !h["empty_layer"].as_bool().unwrap_or(false))
            .count();
        assert_eq!(
            non_empty, layers,
            "history matches the layers of {reference}"
        );
        assert_eq!(config["config"]["Labels"]["squashed"], "maybe");
        assert_eq!(
            podman_run(dir.path(), &store, reference, &[]),
            "one v2\ntwo\n"
        );
    }
}

#[test]
fn squash_of_a_directory_replaced_by_a_file_runs_in_podman() {
    // A whiteout below a path that is now a file makes an invalid layer ("unlinkat /data/x: not a
    // directory" in podman): the squashed layer must only hold the file.
    let Some(_) = require_tool("podman") else {
        return;
    };
    let dir = tempdir();
    let store = dir.path().join("store");
    let Some(base) = base_context(dir.path(), &[("data/x", "x\n"), ("data/sub/y", "y\n")]) else {
        return;
    };
    build(&store, &base, &["-t", BASE]);
    let ctx = context(
        dir.path(),
        "app",
        "FROM localhost/acme/base:latest\n\
         COPY z.txt /z.txt\n\
         RUN rm -rf /data && echo now a file > /data\n\
         CMD [\"cat\", \"/data\", \"/z.txt\"]\n",
        &[("z.txt", "z\n")],
    );
    build(
        &store,
        &ctx,
        &["-t", "localhost/acme/replaced:latest", "--squash"],
    );
    let layers = layer_digests(&manifest_of(&store, "localhost/acme/replaced:latest"));
    assert_eq!(
        layers.len(),
        4,
        "the base's three layers and the squashed one"
    );
    let blob = store
        .join("blobs/sha256")
        .join(layers[3].trim_start_matches("sha256:"));
    let listed = run_ok(StdCommand::new("tar").arg("tzf").arg(&blob));
    assert_eq!(listed, "data\nz.txt\n");
    assert_eq!(
        podman_run(dir.path(), &store, "localhost/acme/replaced:latest", &[]),
        "now a file\nz\n"
    );
}

#[test]
fn zstd_layers_are_read_by_skopeo_and_podman() {
    // umoci 0.4 cannot read zstd layers ("blob is not correct mediatype"), so podman checks the
    // content; skopeo copies the image, which verifies every blob against its digest.
    let Some(_) = require_tool("skopeo") else {
        return;
    };
    let Some(_) = require_tool("podman") else {
        return;
    };
    let dir = tempdir();
    let store = dir.path().join("store");
    let Some(base_ctx) = base_context(dir.path(), &[]) else {
        return;
    };
    build(&store, &base_ctx, &["-t", BASE, "--compression", "zstd"]);
    let ctx = context(
        dir.path(),
        "app",
        "FROM localhost/acme/base:latest\nCOPY hello.txt /hello.txt\nCMD [\"cat\", \"/hello.txt\"]\n",
        &[("hello.txt", "zstd hello\n")],
    );
    build(
        &store,
        &ctx,
        &["-t", "localhost/acme/zstd:latest", "--compression", "zstd"],
    );
    let manifest = manifest_of(&store, "localhost/acme/zstd:latest");
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 2);
    for layer in layers {
        assert_eq!(
            layer["mediaType"],
            "application/vnd.oci.image.layer.v1.tar+zstd"
        );
    }
    let copy = dir.path().join("copied");
    run_ok(
        StdCommand::new("skopeo")
            .arg("copy")
            .arg(oci(&store, "localhost/acme/zstd:latest"))
            .arg(format!("dir:{}", copy.display())),
    );
    let digest = layers[1]["digest"].as_str().unwrap();
    let blob = fs::read(copy.join(digest.trim_start_matches("sha256:"))).unwrap();
    assert_eq!(&blob[..4], &[0x28, 0xb5, 0x2f, 0xfd], "a zstd frame");
    assert_eq!(
        podman_run(dir.path(), &store, "localhost/acme/zstd:latest", &[]),
        "zstd hello\n"
    );
}

// ---------------------------------------------------------------------------------------------
// 8. Errors: one line, located, non-zero exit.

#[test]
fn unknown_instruction_is_a_located_parse_error() {
    let dir = tempdir();
    let store = dir.path().join("store");
    let ctx = context(dir.path(), "app", "FROM scratch\nFROBNICATE now\n", &[]);
    let error = build_error(&store, &ctx, &[]);
    assert!(error.contains("Dockerfile:2"), "{error}");
    assert!(error.to_lowercase().contains("frobnicate"), "{error}");
}

#[test]
fn missing_copy_source_is_located() {
    let dir = tempdir();
    let store = dir.path().join("store");
    let ctx = context(
        dir.path(),
        "app",
        "FROM scratch\nCOPY here.txt /\nCOPY missing.txt /\n",
        &[("here.txt", "x")],
    );
    let error = build_error(&store, &ctx, &[]);
    assert!(error.contains("Dockerfile:3"), "{error}");
    assert!(error.contains("COPY missing.txt /"), "{error}");
    assert!(error.contains("not found in the build context"), "{error}");
}

#[test]
fn unknown_chown_user_is_located() {
    let dir = tempdir();
    let store = dir.path().join("store");
    if build_base(&store, dir.path()).is_none() {
        return;
    }
    let ctx = context(
        dir.path(),
        "app",
        "FROM localhost/acme/base:latest\nCOPY --chown=nosuchuser a.txt /a.txt\n",
        &[("a.txt", "x")],
    );
    let error = build_error(&store, &ctx, &[]);
    assert!(error.contains("Dockerfile:2"), "{error}");
    assert!(error.contains("nosuchuser"), "{error}");
    // FROM scratch has no /etc/passwd: a name cannot resolve, a number can.
    let ctx = context(
        dir.path(),
        "scratch",
        "FROM scratch\nCOPY --chown=www-data a.txt /a.txt\n",
        &[("a.txt", "x")],
    );
    let error = build_error(&store, &ctx, &[]);
    assert!(error.contains("Dockerfile:2"), "{error}");
    assert!(error.contains("www-data"), "{error}");
}

#[test]
fn base_not_in_the_store_is_located() {
    let dir = tempdir();
    let store = dir.path().join("store");
    let ctx = context(
        dir.path(),
        "app",
        "# the base was never built\nFROM localhost/acme/absent:1.0\nCOPY a /a\n",
        &[("a", "x")],
    );
    let error = build_error(&store, &ctx, &[]);
    assert!(error.contains("Dockerfile:2"), "{error}");
    assert!(error.contains("localhost/acme/absent:1.0"), "{error}");
    assert!(error.contains("not in the store"), "{error}");
}

#[test]
fn run_without_a_shell_is_located() {
    // RUN in the sandbox (issue 5): in a stage with no /bin/sh the shell form cannot start.
    let dir = tempdir();
    let store = dir.path().join("store");
    let ctx = context(
        dir.path(),
        "app",
        "FROM scratch\nCOPY a /a\nRUN echo hi\n",
        &[("a", "x")],
    );
    let error = build_error(&store, &ctx, &[]);
    assert!(error.contains("Dockerfile:3: RUN echo hi"), "{error}");
    assert!(error.contains("/bin/sh"), "{error}");
}

// ---------------------------------------------------------------------------------------------
// 9. Differential: buildah builds the same Dockerfiles to the same files.

/// `path type mode uid:gid link-target sha256` for every path of an unpacked root filesystem.
fn listing(root: &Path) -> Vec<String> {
    tree(root)
        .into_iter()
        .map(|rel| {
            let path = root.join(&rel);
            let meta = fs::symlink_metadata(&path).unwrap();
            let ft = meta.file_type();
            let (kind, extra) = if ft.is_symlink() {
                ("l", fs::read_link(&path).unwrap().display().to_string())
            } else if ft.is_dir() {
                ("d", String::new())
            } else {
                ("f", sha256_hex(&fs::read(&path).unwrap()))
            };
            format!(
                "{rel} {kind} {:o} {}:{} {extra}",
                meta.mode() & 0o7777,
                meta.uid(),
                meta.gid()
            )
        })
        .collect()
}

/// Build `(tag, context)` pairs in order with `buildah bud --layers` in private vfs storage under
/// `dir`, then return the listing of the last one, pushed to an OCI layout and unpacked by umoci.
fn buildah_listing(dir: &Path, builds: &[(&str, &Path)]) -> Vec<String> {
    let buildah = |args: &[&str]| {
        run_ok(
            StdCommand::new("buildah")
                .arg("--root")
                .arg(dir.join("buildah-root"))
                .arg("--runroot")
                .arg(dir.join("buildah-run"))
                .args(["--storage-driver", "vfs"])
                .args(args),
        )
    };
    for (tag, ctx) in builds {
        buildah(&[
            "bud",
            "--quiet",
            "--layers",
            "--isolation",
            "chroot",
            "--format",
            "oci",
            "-t",
            tag,
            ctx.to_str().unwrap(),
        ]);
    }
    let (last, _) = builds.last().expect("at least one build");
    let layout = dir.join("buildah-layout");
    buildah(&[
        "push",
        "--quiet",
        last,
        &format!("oci:{}:theirs", layout.display()),
    ]);
    listing(&unpack(&layout, "theirs", dir))
}

/// Assert two listings are equal, showing only the differing lines.
fn assert_same_listing(ours: &[String], theirs: &[String]) {
    let only_ours: Vec<&String> = ours.iter().filter(|l| !theirs.contains(l)).collect();
    let only_theirs: Vec<&String> = theirs.iter().filter(|l| !ours.contains(l)).collect();
    assert!(
        only_ours.is_empty() && only_theirs.is_empty(),
        "strata only: {only_ours:#?}\nbuildah only: {only_theirs:#?}"
    );
}

#[test]
fn buildah_builds_the_same_files_from_the_same_dockerfile() {
    for tool in ["buildah", "umoci"] {
        if require_tool(tool).is_none() {
            return;
        }
    }
    let dir = tempdir();
    let store = dir.path().join("store");
    let ctx = context(
        dir.path(),
        "ctx",
        "FROM localhost/acme/base:latest\n\
         COPY --chmod=4755 tool /usr/local/bin/tool\n\
         COPY --chown=1234:5678 data.txt /data/numeric.txt\n\
         COPY --chown=www-data site /srv/site/\n\
         COPY --chown=www-data:root data.txt /srv/mixed.txt\n\
         COPY alias.txt /srv/\n\
         COPY alias.txt /srv/renamed.txt\n\
         COPY *.txt /glob/\n\
         WORKDIR /srv/work\n\
         COPY src .\n\
         COPY src/ ./src2\n\
         ADD pkg.tar.gz /opt/\n\
         COPY site/css /bin/\n\
         COPY . /ctx/\n\
         USER www-data\n\
         ENV HOME=/srv/work\n",
        &[
            ("tool", "#!/bin/sh\n"),
            ("data.txt", "data\n"),
            ("site/index.html", "<h1>hi</h1>\n"),
            ("site/css/main.css", "body{}\n"),
            ("site/private/key", "k\n"),
            ("src/a.txt", "a\n"),
            ("src/sub/c.txt", "c\n"),
            ("src/debug.log", "ignored\n"),
            (".dockerignore", "**/*.log\nbase-context\n"),
        ],
    );
    fs::set_permissions(ctx.join("site/private"), fs::Permissions::from_mode(0o750)).unwrap();
    symlink("index.html", &ctx.join("site/home.html"));
    symlink("data.txt", &ctx.join("alias.txt"));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&archive_bytes("pkg")).unwrap();
    fs::write(ctx.join("pkg.tar.gz"), gz.finish().unwrap()).unwrap();
    let Some(base_ctx) = base_context(&ctx.join("base-context"), &[]) else {
        return;
    };

    // strata
    build(&store, &base_ctx, &["-t", BASE]);
    build(&store, &ctx, &["-t", "localhost/acme/same:latest"]);
    let ours = listing(&unpack(&store, "localhost/acme/same:latest", dir.path()));

    let theirs = buildah_listing(
        dir.path(),
        &[(BASE, &base_ctx), ("localhost/acme/same:latest", &ctx)],
    );
    assert_same_listing(&ours, &theirs);
    // A meaningful comparison: the whole tree, the base included.
    assert!(ours.len() > 60, "{}", ours.len());
}

#[test]
fn buildah_agrees_on_multi_stage_copies_through_image_symlinks() {
    for tool in ["buildah", "umoci"] {
        if require_tool(tool).is_none() {
            return;
        }
    }
    let dir = tempdir();
    let store = dir.path().join("store");
    let ctx = context(
        dir.path(),
        "ctx",
        "FROM localhost/acme/base:latest AS b1\n\
         COPY links/ /\n\
         COPY f.txt /optlink/f.txt\n\
         COPY d /up/dd/\n\
         COPY d/e/g.txt /par/d/e/\n\
         FROM scratch\n\
         COPY --from=b1 /optlink /o2\n\
         COPY --from=b1 /opt/ /o3/\n\
         COPY --from=b1 /bin/sh /sh\n\
         COPY --from=b1 /etc /etc2\n\
         COPY --from=b1 /par /par\n\
         COPY --from=b1 /dd/ /x/\n",
        &[("f.txt", "f\n"), ("d/e/g.txt", "g\n")],
    );
    symlink("/opt", &ctx.join("links/optlink"));
    symlink("../../..", &ctx.join("links/up"));
    let Some(base_ctx) = base_context(dir.path(), &[]) else {
        return;
    };
    build(&store, &base_ctx, &["-t", BASE]);
    build(&store, &ctx, &["-t", "localhost/acme/multi:latest"]);
    let ours = listing(&unpack(&store, "localhost/acme/multi:latest", dir.path()));
    let theirs = buildah_listing(
        dir.path(),
        &[(BASE, &base_ctx), ("localhost/acme/multi:latest", &ctx)],
    );
    assert_same_listing(&ours, &theirs);
    // /optlink resolved to /opt inside the image; /up/dd landed at /dd.
    assert!(
        ours.iter().any(|l| l.starts_with("o2/f.txt f ")),
        "{ours:#?}"
    );
    assert!(
        ours.iter().any(|l| l.starts_with("x/e/g.txt f ")),
        "{ours:#?}"
    );
}

#[test]
fn buildah_agrees_on_dockerignore_patterns() {
    for tool in ["buildah", "umoci"] {
        if require_tool(tool).is_none() {
            return;
        }
    }
    let dir = tempdir();
    let store = dir.path().join("store");
    let files: Vec<(&str, &str)> = [
        "a.log",
        "keep.log",
        "sub/b.log",
        "sub/keep.log",
        "secret/pub.txt",
        "secret/priv.key",
        "secret/deep/x.txt",
        "temp1",
        "tempx/y",
        "somedir/temp.txt",
        "somedir/tempdir/z",
        "node_modules/m/i.js",
        "docs/readme.md",
        "docs/build/out.html",
        ".git/config",
        "vendor/v.go",
        "vendor/keep/k.go",
    ]
    .iter()
    .map(|f| (*f, "x\n"))
    .chain([(
        ".dockerignore",
        "# Docker's rules: order matters, the last match wins\n\
         **/*.log\n!keep.log\nsecret\n!secret/pub.txt\n!secret/deep\n*/temp*\ntemp?\n\
         /node_modules\n./docs/build/\n.git\nvendor/**\n!vendor/keep\n",
    )])
    .collect();
    let ctx = context(dir.path(), "ctx", "FROM scratch\nCOPY . /ctx/\n", &files);
    build(&store, &ctx, &["-t", "localhost/acme/ignore:latest"]);
    let ours = listing(&unpack(&store, "localhost/acme/ignore:latest", dir.path()));
    let theirs = buildah_listing(dir.path(), &[("localhost/acme/ignore:latest", &ctx)]);
    assert_same_listing(&ours, &theirs);
    let kept: Vec<&str> = ours
        .iter()
        .filter(|l| l.contains(" f "))
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    assert_eq!(
        kept,
        [
            "ctx/.dockerignore",
            "ctx/Dockerfile",
            "ctx/docs/readme.md",
            "ctx/keep.log",
            "ctx/secret/deep/x.txt",
            "ctx/secret/pub.txt",
            "ctx/vendor/keep/k.go"
        ]
    );
}

#[test]
fn labels_annotations_and_iidfile_as_buildah_gives_them() {
    let Some(_) = require_tool("skopeo") else {
        return;
    };
    let dir = tempdir();
    let store = dir.path().join("store");
    if build_base(&store, dir.path()).is_none() {
        return;
    }
    let app = context(
        dir.path(),
        "labelled",
        "FROM localhost/acme/base:latest\nLABEL tier=middleware stage=dockerfile\n",
        &[],
    );
    let iid = dir.path().join("iid");
    let out = build(
        &store,
        &app,
        &[
            "-t",
            "localhost/acme/labelled:latest",
            "--label",
            "org.opencontainers.image.revision=abc123",
            "--label",
            "stage=ci",
            "--annotation",
            "org.opencontainers.image.source=https://git.example/acme",
            "--iidfile",
            iid.to_str().unwrap(),
        ],
    );
    // The flags' labels join the Dockerfile's, and win on the same key.
    let config = config_of(&store, "localhost/acme/labelled:latest");
    let labels = &config["config"]["Labels"];
    assert_eq!(labels["org.opencontainers.image.revision"], "abc123");
    assert_eq!(labels["stage"], "ci");
    assert_eq!(labels["tier"], "middleware");
    let manifest = skopeo(&["--raw", &oci(&store, "localhost/acme/labelled:latest")]);
    assert_eq!(
        manifest["annotations"]["org.opencontainers.image.source"],
        "https://git.example/acme"
    );
    assert_eq!(
        fs::read_to_string(&iid).unwrap(),
        out["digest"].as_str().unwrap()
    );
    let err = build_error(&store, &app, &["--label", "novalue"]);
    assert!(err.contains("invalid --label \"novalue\""), "{err}");
}

#[test]
fn another_platform_fails_instead_of_building_this_machines() {
    let dir = tempdir();
    let store = dir.path().join("store");
    if build_base(&store, dir.path()).is_none() {
        return;
    }
    let host = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    let other = if host == "amd64" { "arm64" } else { "amd64" };
    // $BUILDPLATFORM and this machine's platform build; another platform is refused, on its line.
    for from in [
        "FROM --platform=$BUILDPLATFORM localhost/acme/base:latest".to_string(),
        format!("FROM --platform=linux/{host} localhost/acme/base:latest"),
    ] {
        let ctx = context(
            dir.path(),
            "same",
            &format!("{from}\nCMD [\"true\"]\n"),
            &[],
        );
        build(&store, &ctx, &[]);
    }
    let ctx = context(
        dir.path(),
        "cross",
        &format!("# a cross build\nFROM --platform=linux/{other} localhost/acme/base:latest\n"),
        &[],
    );
    let error = build_error(&store, &ctx, &[]);
    assert!(error.contains("Dockerfile:2"), "{error}");
    assert!(
        error.contains(&format!("--platform=linux/{other}")) && error.contains(host),
        "{error}"
    );
}
