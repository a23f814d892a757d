//! `strata build-image` builds what buildah and BuildKit build (issue 15, builder part): each test
//! builds a Dockerfile with strata, unpacks the image with umoci and, where buildah can build the
//! same Dockerfile here, compares with buildah's image of it.
//!
//! Every test works in its own temporary directory and a private buildah storage.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command as StdCommand;
use std::time::{Duration, SystemTime};

use assert_cmd::Command;
use strata_testutil::{busybox_rootfs_tar, debian_rootfs_tar, require_tool, run_ok};

fn strata(store: &Path) -> Command {
    let mut cmd = Command::cargo_bin("strata").unwrap();
    cmd.env_remove("STRATA_STORE")
        .env_remove("STRATA_CHAIN")
        .env_remove("SOURCE_DATE_EPOCH")
        .arg("--store")
        .arg(store);
    cmd
}

/// Build `context` as `tag` with strata (extra environment), expecting success.
fn build(store: &Path, context: &Path, tag: &str, env: &[(&str, &str)]) {
    let mut cmd = strata(store);
    cmd.arg("build-image").arg(context).args(["-t", tag]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "strata build of {} failed:\n{}",
        context.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Build `context` with buildah (chroot isolation, private storage under `dir`) and push it to
/// the OCI layout `layout` as `tag`.
fn buildah_build(buildah: &Path, dir: &Path, context: &Path, layout: &Path, tag: &str) {
    let storage = |c: &mut StdCommand| {
        c.arg("--root")
            .arg(dir.join("buildah-root"))
            .arg("--runroot")
            .arg(dir.join("buildah-run"))
            .args(["--storage-driver", "vfs"]);
    };
    let name = format!("localhost/fidelity/{tag}:latest");
    let mut bud = StdCommand::new(buildah);
    storage(&mut bud);
    bud.args(["bud", "--isolation", "chroot", "-q", "--pull=never", "-t"])
        .arg(&name)
        .arg(context);
    run_ok(&mut bud);
    let mut push = StdCommand::new(buildah);
    storage(&mut push);
    push.arg("push")
        .arg(&name)
        .arg(format!("oci:{}:{tag}", layout.display()));
    run_ok(&mut push);
}

/// Unpack `reference` of the layout `store` with umoci; returns its root filesystem.
fn unpack(store: &Path, reference: &str, dir: &Path) -> PathBuf {
    let bundle = dir.join(format!(
        "bundle-{}-{}",
        store.file_name().unwrap().to_string_lossy(),
        reference.replace(['/', ':'], "-")
    ));
    run_ok(
        StdCommand::new("umoci")
            .arg("unpack")
            .arg("--image")
            .arg(format!("{}:{reference}", store.display()))
            .arg(&bundle),
    );
    bundle.join("rootfs")
}

/// (mode & 0o7777, uid, gid) of a path, not following a final symlink.
fn stat(path: &Path) -> (u32, u32, u32) {
    let m = fs::symlink_metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (m.mode() & 0o7777, m.uid(), m.gid())
}

/// A tar holding `bin/` and `bin/tool` (0755), both owned by `uid:gid`.
fn owned_tar(path: &Path, uid: u64, gid: u64) {
    let mut b = tar::Builder::new(fs::File::create(path).unwrap());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Directory);
    h.set_mode(0o755);
    h.set_uid(uid);
    h.set_gid(gid);
    h.set_size(0);
    h.set_mtime(0);
    b.append_data(&mut h, "bin", std::io::empty()).unwrap();
    let data = b"#!/bin/sh\necho tool\n";
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o755);
    h.set_uid(uid);
    h.set_gid(gid);
    h.set_size(data.len() as u64);
    h.set_mtime(0);
    b.append_data(&mut h, "bin/tool", &data[..]).unwrap();
    b.finish().unwrap();
}

// Issue 15, item 1: `COPY --from` a stage keeps the source's owner (BuildKit and buildah do);
// from the context, files belong to root.
#[test]
fn copy_from_a_stage_keeps_the_owner_as_buildah_does() {
    let (Some(_), Some(buildah)) = (require_tool("umoci"), require_tool("buildah")) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let ctx = dir.path().join("ctx");
    fs::create_dir_all(&ctx).unwrap();
    owned_tar(&ctx.join("owned.tar"), 1000, 50);
    fs::write(ctx.join("plain.txt"), "plain\n").unwrap();
    fs::write(
        ctx.join("Dockerfile"),
        "FROM scratch AS build\n\
         ADD owned.tar /\n\
         FROM scratch\n\
         COPY --from=build /bin/tool /tool\n\
         COPY --from=build /bin /bindir\n\
         COPY --from=build --chown=7:8 /bin/tool /chowned\n\
         COPY plain.txt /plain.txt\n",
    )
    .unwrap();
    let store = dir.path().join("store");
    build(&store, &ctx, "localhost/acme/owned:latest", &[]);
    let ours = unpack(&store, "localhost/acme/owned:latest", dir.path());
    let theirs_layout = dir.path().join("buildah-layout");
    buildah_build(&buildah, dir.path(), &ctx, &theirs_layout, "owned");
    let theirs = unpack(&theirs_layout, "owned", dir.path());
    for (path, want) in [
        ("tool", (0o755, 1000, 50)),
        ("bindir/tool", (0o755, 1000, 50)),
        ("chowned", (0o755, 7, 8)),
        ("plain.txt", (0o644, 0, 0)),
    ] {
        assert_eq!(stat(&theirs.join(path)), want, "buildah's {path}");
        assert_eq!(stat(&ours.join(path)), want, "strata's {path}");
    }
}

// Issue 15, item 5: with SOURCE_DATE_EPOCH, COPY/ADD clamp mtimes to it (BuildKit's
// rewrite-timestamp): an older file keeps its time, a newer one gets the epoch.
#[test]
fn source_date_epoch_clamps_copy_mtimes_instead_of_setting_them() {
    let Some(_) = require_tool("umoci") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let ctx = dir.path().join("ctx");
    fs::create_dir_all(&ctx).unwrap();
    fs::write(
        ctx.join("Dockerfile"),
        "FROM scratch\nCOPY old.txt new.txt /\n",
    )
    .unwrap();
    let old = ctx.join("old.txt");
    fs::write(&old, "from 2001\n").unwrap();
    fs::write(ctx.join("new.txt"), "from now\n").unwrap();
    let in_2001 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    fs::File::options()
        .write(true)
        .open(&old)
        .unwrap()
        .set_modified(in_2001)
        .unwrap();
    let store = dir.path().join("store");
    let epoch = [("SOURCE_DATE_EPOCH", "1500000000")];
    build(&store, &ctx, "localhost/acme/dated:latest", &epoch);
    let root = unpack(&store, "localhost/acme/dated:latest", dir.path());
    let mtime = |p: &str| fs::symlink_metadata(root.join(p)).unwrap().mtime();
    assert_eq!(mtime("old.txt"), 1_000_000_000);
    assert_eq!(mtime("new.txt"), 1_500_000_000);

    // The old file's time is part of the layer: touching it (content unchanged) rebuilds.
    let in_2002 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_020_000_000);
    fs::File::options()
        .write(true)
        .open(&old)
        .unwrap()
        .set_modified(in_2002)
        .unwrap();
    build(&store, &ctx, "localhost/acme/dated2:latest", &epoch);
    let root = unpack(&store, "localhost/acme/dated2:latest", dir.path());
    assert_eq!(
        fs::symlink_metadata(root.join("old.txt")).unwrap().mtime(),
        1_020_000_000
    );
}

// Issue 15, item 4: RUN gets HOME from the step user's passwd entry as runc sets it (`/` for a
// user without one), unless ENV sets it; `cd ~` works.
#[test]
fn run_sets_home_from_the_step_user() {
    let (Some(_), Some(buildah)) = (require_tool("umoci"), require_tool("buildah")) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base");
    fs::create_dir_all(&base).unwrap();
    if busybox_rootfs_tar(&base.join("rootfs.tar")).is_none() {
        return;
    }
    fs::write(
        base.join("Dockerfile"),
        "FROM scratch\n\
         ADD rootfs.tar /\n\
         RUN cd ~ && pwd > /root-home\n\
         USER www-data\n\
         RUN echo \"$HOME\" > /tmp/www-home\n\
         USER 4242\n\
         RUN echo \"$HOME\" > /tmp/nobody-home\n\
         USER root\n\
         ENV HOME=/set\n\
         RUN echo \"$HOME\" > /env-home\n",
    )
    .unwrap();
    let store = dir.path().join("store");
    build(&store, &base, "localhost/acme/home:latest", &[]);
    let ours = unpack(&store, "localhost/acme/home:latest", dir.path());
    let theirs_layout = dir.path().join("buildah-layout");
    buildah_build(&buildah, dir.path(), &base, &theirs_layout, "home");
    let theirs = unpack(&theirs_layout, "home", dir.path());
    for (path, want) in [
        ("root-home", "/root\n"),
        ("tmp/www-home", "/var/www\n"),
        ("tmp/nobody-home", "/\n"),
        ("env-home", "/set\n"),
    ] {
        assert_eq!(
            fs::read_to_string(theirs.join(path)).unwrap(),
            want,
            "buildah's {path}"
        );
        assert_eq!(
            fs::read_to_string(ours.join(path)).unwrap(),
            want,
            "strata's {path}"
        );
    }
}

/// A busybox base context (`FROM scratch`, `ADD rootfs.tar /`) built into `store` as `tag`;
/// false when busybox is missing (outside CI).
fn build_busybox_base(store: &Path, dir: &Path, tag: &str) -> bool {
    let base = dir.join("busybox-base");
    fs::create_dir_all(&base).unwrap();
    if busybox_rootfs_tar(&base.join("rootfs.tar")).is_none() {
        return false;
    }
    fs::write(base.join("Dockerfile"), "FROM scratch\nADD rootfs.tar /\n").unwrap();
    build(store, &base, tag, &[]);
    true
}

// Issue 15, items 3 and 9: a RUN's bind mount from the context is keyed on the mounted content
// (BuildKit's way), so a changed file reruns the step; and a single file can be bound `rw`.
#[test]
fn bind_mounted_context_files_key_the_step_and_a_file_binds_rw() {
    let Some(_) = require_tool("umoci") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    if !build_busybox_base(&store, dir.path(), "localhost/acme/base:latest") {
        return;
    }
    let ctx = dir.path().join("ctx");
    fs::create_dir_all(ctx.join("conf")).unwrap();
    fs::write(
        ctx.join("Dockerfile"),
        "FROM localhost/acme/base:latest\n\
         RUN --mount=type=bind,source=data.txt,target=/data.txt cat /data.txt > /out\n\
         RUN --mount=type=bind,source=conf,target=/conf cat /conf/a > /out-dir\n\
         RUN --mount=type=bind,source=data.txt,target=/rw.txt,rw \
             sh -c 'echo more >> /rw.txt && cat /rw.txt > /out-rw'\n",
    )
    .unwrap();
    fs::write(ctx.join("data.txt"), "one\n").unwrap();
    fs::write(ctx.join("conf/a"), "a1\n").unwrap();
    build(&store, &ctx, "localhost/acme/bind:latest", &[]);
    let root = unpack(&store, "localhost/acme/bind:latest", dir.path());
    assert_eq!(fs::read_to_string(root.join("out")).unwrap(), "one\n");
    assert_eq!(fs::read_to_string(root.join("out-dir")).unwrap(), "a1\n");
    assert_eq!(
        fs::read_to_string(root.join("out-rw")).unwrap(),
        "one\nmore\n"
    );
    // The writable bind wrote to a copy, never to the context.
    assert_eq!(fs::read_to_string(ctx.join("data.txt")).unwrap(), "one\n");

    fs::write(ctx.join("data.txt"), "two\n").unwrap();
    fs::write(ctx.join("conf/a"), "a2\n").unwrap();
    build(&store, &ctx, "localhost/acme/bind2:latest", &[]);
    let root = unpack(&store, "localhost/acme/bind2:latest", dir.path());
    assert_eq!(fs::read_to_string(root.join("out")).unwrap(), "two\n");
    assert_eq!(fs::read_to_string(root.join("out-dir")).unwrap(), "a2\n");
    assert_eq!(
        fs::read_to_string(root.join("out-rw")).unwrap(),
        "two\nmore\n"
    );
}

// Issue 15, item 6: ARG has its history entry (an empty layer, as buildah and BuildKit write
// it) and the history shows expanded values, never `${...}`; a --build-arg value stays out.
#[test]
fn history_has_arg_entries_and_expanded_values() {
    let (Some(_), Some(buildah)) = (require_tool("skopeo"), require_tool("buildah")) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let ctx = dir.path().join("ctx");
    fs::create_dir_all(&ctx).unwrap();
    fs::write(
        ctx.join("Dockerfile"),
        "FROM scratch\n\
         ARG A=1\n\
         ARG C=${A}x\n\
         ENV E=${C}\n\
         LABEL l=${A}\n",
    )
    .unwrap();
    let history = |layout: &Path, reference: &str| -> Vec<(String, bool)> {
        let out = run_ok(StdCommand::new("skopeo").args([
            "inspect",
            "--config",
            "--raw",
            &format!("oci:{}:{reference}", layout.display()),
        ]));
        let config: serde_json::Value = serde_json::from_str(&out).unwrap();
        config["history"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| {
                (
                    h["created_by"].as_str().unwrap().to_string(),
                    h["empty_layer"].as_bool().unwrap_or(false),
                )
            })
            .collect()
    };
    let store = dir.path().join("store");
    build(&store, &ctx, "localhost/acme/hist:latest", &[]);
    let ours = history(&store, "localhost/acme/hist:latest");
    let theirs_layout = dir.path().join("buildah-layout");
    buildah_build(&buildah, dir.path(), &ctx, &theirs_layout, "hist");
    let theirs = history(&theirs_layout, "hist");
    // buildah writes one empty-layer entry per instruction, ARG included (its text is
    // `/bin/sh -c #(nop) ARG A`); strata writes BuildKit's text, expanded.
    assert_eq!(theirs.len(), 4, "{theirs:?}");
    assert!(theirs[0].0.ends_with("ARG A"), "{theirs:?}");
    // (its last entry is the commit, which it never marks empty)
    assert!(theirs[..3].iter().all(|(_, empty)| *empty), "{theirs:?}");
    let want: Vec<(String, bool)> = ["ARG A=1", "ARG C=1x", "ENV E=1x", "LABEL l=1"]
        .iter()
        .map(|s| (s.to_string(), true))
        .collect();
    assert_eq!(ours, want);

    // A --build-arg value never reaches the history.
    let mut cmd = strata(&store);
    cmd.arg("build-image").arg(&ctx).args([
        "-t",
        "localhost/acme/hist2:latest",
        "--build-arg",
        "A=s3cret",
    ]);
    assert!(cmd.output().unwrap().status.success());
    let ours = history(&store, "localhost/acme/hist2:latest");
    assert_eq!(ours[0].0, "ARG A");
    assert_eq!(ours[1].0, "ARG C=s3cretx");
}

/// Build `context` expecting failure; returns stderr.
fn build_fails(store: &Path, context: &Path) -> String {
    let out = strata(store)
        .arg("build-image")
        .arg(context)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "build should fail:\n{stderr}");
    stderr
}

// Issue 15, item 10: a base image's ONBUILD triggers run first in the child without shifting
// the child's line numbers (they were spliced into the text); a stage built on a stage does
// not inherit its ONBUILD list (BuildKit clears it); a comment with non-UTF-8 bytes parses.
#[test]
fn onbuild_triggers_keep_line_numbers_and_are_not_inherited() {
    let Some(_) = require_tool("skopeo") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let parent = dir.path().join("parent");
    fs::create_dir_all(&parent).unwrap();
    fs::write(
        parent.join("Dockerfile"),
        "FROM scratch\nONBUILD LABEL one=1\nONBUILD LABEL two=2\nONBUILD LABEL three=3\n",
    )
    .unwrap();
    build(&store, &parent, "localhost/acme/parent:latest", &[]);

    let child = dir.path().join("child");
    fs::create_dir_all(&child).unwrap();
    fs::write(
        child.join("Dockerfile"),
        "FROM localhost/acme/parent:latest\nLABEL x=y\nCOPY missing.txt /x\n",
    )
    .unwrap();
    let stderr = build_fails(&store, &child);
    assert!(stderr.contains("Dockerfile:3:"), "{stderr}");
    assert!(!stderr.contains("Dockerfile:6:"), "{stderr}");

    // The triggers ran (their labels are set) and the child's config has no ONBUILD.
    fs::write(
        child.join("Dockerfile"),
        "FROM localhost/acme/parent:latest\nLABEL x=y\n",
    )
    .unwrap();
    build(&store, &child, "localhost/acme/child:latest", &[]);
    let config = |reference: &str| -> serde_json::Value {
        let out = run_ok(StdCommand::new("skopeo").args([
            "inspect",
            "--config",
            "--raw",
            &format!("oci:{}:{reference}", store.display()),
        ]));
        serde_json::from_str(&out).unwrap()
    };
    let c = config("localhost/acme/child:latest");
    assert_eq!(c["config"]["Labels"]["three"], "3", "{c}");
    assert!(c["config"]["OnBuild"].is_null(), "{c}");

    // Stage on stage: the parent stage's trigger runs in the child stage, and is not inherited.
    let stages = dir.path().join("stages");
    fs::create_dir_all(&stages).unwrap();
    fs::write(
        stages.join("Dockerfile"),
        b"# caf\xe9: a Latin-1 comment\nFROM scratch AS p\nONBUILD LABEL t=1\nFROM p\nLABEL x=y\n",
    )
    .unwrap();
    build(&store, &stages, "localhost/acme/stages:latest", &[]);
    let c = config("localhost/acme/stages:latest");
    assert_eq!(c["config"]["Labels"]["t"], "1", "{c}");
    assert!(c["config"]["OnBuild"].is_null(), "{c}");

    // The CLI's parser reads the same bytes.
    let out = strata(&store)
        .current_dir(&stages)
        .args(["dockerfile", "parse", "Dockerfile"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Append a header-only entry (device, fifo, hard link) to `b`.
fn special(
    b: &mut tar::Builder<fs::File>,
    name: &str,
    kind: tar::EntryType,
    setup: impl Fn(&mut tar::Header),
) {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(0o600);
    h.set_size(0);
    h.set_mtime(0);
    setup(&mut h);
    h.set_path(name).unwrap();
    h.set_cksum();
    b.append(&h, std::io::empty()).unwrap();
}

/// A tar with `dev/console` (c 5 1), `dev/fifo`, `hello` and its hard link `hello-hard`.
fn rootfs_like_tar(path: &Path) {
    let mut b = tar::Builder::new(fs::File::create(path).unwrap());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Directory);
    h.set_mode(0o755);
    h.set_size(0);
    h.set_mtime(0);
    b.append_data(&mut h, "dev", std::io::empty()).unwrap();
    special(&mut b, "dev/console", tar::EntryType::Char, |h| {
        h.set_device_major(5).unwrap();
        h.set_device_minor(1).unwrap();
    });
    special(&mut b, "dev/fifo", tar::EntryType::Fifo, |_| {});
    let data = b"hello\n";
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_size(data.len() as u64);
    h.set_mtime(0);
    b.append_data(&mut h, "hello", &data[..]).unwrap();
    special(&mut b, "hello-hard", tar::EntryType::Link, |h| {
        h.set_link_name("hello").unwrap();
        h.set_mode(0o644);
    });
    b.finish().unwrap();
}

// Issue 15, items 2 and 7: hard-link groups stay hard links within a layer (COPY from the
// context, ADD of an archive) and an archive's device nodes and fifos are kept, as buildah
// writes them.
#[test]
fn hardlinks_and_device_nodes_survive_copy_and_add_as_in_buildah() {
    let (Some(_), Some(buildah)) = (require_tool("umoci"), require_tool("buildah")) else {
        return;
    };
    use std::os::unix::fs::FileTypeExt;
    let dir = tempfile::tempdir().unwrap();
    let ctx = dir.path().join("ctx");
    fs::create_dir_all(ctx.join("data")).unwrap();
    fs::write(ctx.join("data/a"), "shared bytes\n").unwrap();
    fs::hard_link(ctx.join("data/a"), ctx.join("data/b")).unwrap();
    fs::write(ctx.join("data/c"), "alone\n").unwrap();
    rootfs_like_tar(&ctx.join("tree.tar"));
    fs::write(
        ctx.join("Dockerfile"),
        "FROM scratch\nCOPY data /data\nADD tree.tar /t/\n",
    )
    .unwrap();
    let store = dir.path().join("store");
    build(&store, &ctx, "localhost/acme/links:latest", &[]);
    let ours = unpack(&store, "localhost/acme/links:latest", dir.path());
    let theirs_layout = dir.path().join("buildah-layout");
    buildah_build(&buildah, dir.path(), &ctx, &theirs_layout, "links");
    let theirs = unpack(&theirs_layout, "links", dir.path());
    for (who, root) in [("buildah", &theirs), ("strata", &ours)] {
        let ino = |p: &str| fs::symlink_metadata(root.join(p)).unwrap().ino();
        assert_eq!(ino("data/a"), ino("data/b"), "{who}: data/a and data/b");
        assert_ne!(ino("data/a"), ino("data/c"), "{who}");
        assert_eq!(ino("t/hello"), ino("t/hello-hard"), "{who}: hello-hard");
        assert_eq!(
            fs::read_to_string(root.join("t/hello-hard")).unwrap(),
            "hello\n"
        );
        let console = fs::symlink_metadata(root.join("t/dev/console")).unwrap();
        assert!(console.file_type().is_char_device(), "{who}: dev/console");
        assert_eq!(console.rdev(), (5 << 8) | 1, "{who}: dev/console 5:1");
        let fifo = fs::symlink_metadata(root.join("t/dev/fifo")).unwrap();
        assert!(fifo.file_type().is_fifo(), "{who}: dev/fifo");
    }
}

/// gzip of `data`.
fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut e, data).unwrap();
    e.finish().unwrap()
}

// Issue 15, item 8: ADD decides "archive" as BuildKit does, by decompressing and looking for a
// tar header: a gzip file that is not a tar and an empty gzip stream are copied as they are, a
// V7 tar (no ustar magic) is extracted.
#[test]
fn add_copies_compressed_non_tars_and_extracts_v7_tars() {
    let Some(_) = require_tool("umoci") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let ctx = dir.path().join("ctx");
    fs::create_dir_all(&ctx).unwrap();
    let plain = gzip(b"just text, not a tar\n");
    fs::write(ctx.join("plain.gz"), &plain).unwrap();
    let empty = gzip(b"");
    fs::write(ctx.join("empty.gz"), &empty).unwrap();
    {
        let mut b = tar::Builder::new(fs::File::create(ctx.join("v7.tar")).unwrap());
        let data = b"old format\n";
        let mut h = tar::Header::new_old();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        h.set_mtime(0);
        b.append_data(&mut h, "v7file", &data[..]).unwrap();
        b.finish().unwrap();
    }
    fs::write(
        ctx.join("Dockerfile"),
        "FROM scratch\nADD plain.gz /plain.gz\nADD empty.gz /empty.gz\nADD v7.tar /v7/\n",
    )
    .unwrap();
    let store = dir.path().join("store");
    build(&store, &ctx, "localhost/acme/archives:latest", &[]);
    let root = unpack(&store, "localhost/acme/archives:latest", dir.path());
    assert_eq!(fs::read(root.join("plain.gz")).unwrap(), plain);
    assert_eq!(fs::read(root.join("empty.gz")).unwrap(), empty);
    assert_eq!(
        fs::read_to_string(root.join("v7/v7file")).unwrap(),
        "old format\n"
    );
}

// Issue 15, item 11: the Debian base made the official way (`FROM scratch`, `ADD rootfs.tar /`,
// `CMD ["bash"]` over a debootstrap tarball) builds, with its device nodes and hard links.
#[test]
fn debian_base_from_a_debootstrap_tarball_builds() {
    let Some(_) = require_tool("umoci") else {
        return;
    };
    let Some(tarball) = debian_rootfs_tar() else {
        return;
    };
    use std::os::unix::fs::FileTypeExt;
    let dir = tempfile::tempdir().unwrap();
    let ctx = dir.path().join("ctx");
    fs::create_dir_all(&ctx).unwrap();
    fs::copy(&tarball, ctx.join("rootfs.tar")).unwrap();
    fs::write(
        ctx.join("Dockerfile"),
        "FROM scratch\nADD rootfs.tar /\nCMD [\"bash\"]\n",
    )
    .unwrap();
    let store = dir.path().join("store");
    build(&store, &ctx, "localhost/acme/debian:bookworm", &[]);
    let root = unpack(&store, "localhost/acme/debian:bookworm", dir.path());
    let console = fs::symlink_metadata(root.join("dev/console")).unwrap();
    assert!(console.file_type().is_char_device(), "dev/console");
    let bash = fs::metadata(root.join("bin/bash")).unwrap();
    assert!(bash.is_file() && bash.mode() & 0o111 != 0, "bin/bash");
}

// Issue 15, item 2 (RUN layers): a hard-link group a step makes is written as one file and
// hard links to it, as buildah writes it.
#[test]
fn run_layers_keep_hard_links_as_buildah_does() {
    let (Some(_), Some(buildah)) = (require_tool("umoci"), require_tool("buildah")) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let ctx = dir.path().join("ctx");
    fs::create_dir_all(&ctx).unwrap();
    if busybox_rootfs_tar(&ctx.join("rootfs.tar")).is_none() {
        return;
    }
    fs::write(
        ctx.join("Dockerfile"),
        "FROM scratch\n\
         ADD rootfs.tar /\n\
         RUN mkdir -p /h/sub && echo linked > /h/z && ln /h/z /h/a && ln /h/z /h/sub/b \
             && echo alone > /h/c\n",
    )
    .unwrap();
    let store = dir.path().join("store");
    build(&store, &ctx, "localhost/acme/runlinks:latest", &[]);
    let ours = unpack(&store, "localhost/acme/runlinks:latest", dir.path());
    let theirs_layout = dir.path().join("buildah-layout");
    buildah_build(&buildah, dir.path(), &ctx, &theirs_layout, "runlinks");
    let theirs = unpack(&theirs_layout, "runlinks", dir.path());
    for (who, root) in [("buildah", &theirs), ("strata", &ours)] {
        let ino = |p: &str| fs::symlink_metadata(root.join(p)).unwrap().ino();
        assert_eq!(ino("h/a"), ino("h/z"), "{who}: h/a");
        assert_eq!(ino("h/sub/b"), ino("h/z"), "{who}: h/sub/b");
        assert_ne!(ino("h/c"), ino("h/z"), "{who}: h/c");
        assert_eq!(
            fs::read_to_string(root.join("h/sub/b")).unwrap(),
            "linked\n"
        );
    }
}
