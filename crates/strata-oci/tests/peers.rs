//! Images written by strata-oci, checked by tools we did not write: skopeo and umoci; and its
//! unpacker, checked against GNU tar extracting the same archive.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use oci_spec::image::{Arch, Config, ImageConfiguration, Os, RootFs};
use strata_oci::tar::{Entry, LayerOptions, Metadata, collect_tree};
use strata_oci::{Compression, Digest, Image, Store, validate};
use strata_testutil::{require_tool, run_ok};

const REF: &str = "acme/e2e:1";
const FULL_REF: &str = "localhost/acme/e2e:1";

fn meta(mode: u32, uid: u64, gid: u64) -> Metadata {
    Metadata::new(mode, uid, gid)
}

/// A source tree on disk with the interesting cases; mtimes are "now", so clamping matters.
fn make_source(dir: &Path) {
    fs::create_dir_all(dir.join("app/data")).unwrap();
    fs::write(dir.join("app/tool"), "#!/bin/sh\necho tool\n").unwrap();
    fs::write(dir.join("app/data/config.txt"), "key=value\n").unwrap();
    fs::hard_link(dir.join("app/tool"), dir.join("app/tool-hardlink")).unwrap();
    std::os::unix::fs::symlink("tool", dir.join("app/tool-symlink")).unwrap();
    // 3 MB: the gzip layer has several members (one per MiB), which every reader must join.
    let big: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    fs::write(dir.join("app/data/big.bin"), big).unwrap();
}

/// Build the image: a layer collected from disk (owners and setuid rewritten, as COPY --chown
/// does), plus a hand-made metadata layer; tag it in `store`.
fn build(store: &Store, src: &Path, compression: Compression) -> Image {
    let mut entries = collect_tree(src, Path::new("/")).unwrap();
    for e in &mut entries {
        e.meta.uid = 1000;
        e.meta.gid = 1000;
        e.meta.xattrs.clear();
        if e.path == Path::new("app/tool") {
            e.meta.mode = 0o4755;
        } else if e.path == Path::new("app/data") {
            e.meta.mode = 0o750;
        } else if e.path.starts_with("app/data/") {
            e.meta.mode = 0o640;
        } else if e.path == Path::new("app") {
            e.meta.mode = 0o755;
        }
    }
    let options = LayerOptions {
        compression,
        source_date_epoch: 0,
    };
    let mut w = store.layer_writer(options).unwrap();
    w.append_all(entries).unwrap();
    let layer1 = w.finish().unwrap();
    let mut w = store.layer_writer(options).unwrap();
    w.append_all(vec![
        Entry::dir("etc", meta(0o755, 0, 0)),
        Entry::file_bytes("etc/motd", "welcome\n", meta(0o644, 0, 0)),
        Entry::dir("tmp", meta(0o1777, 0, 0)),
    ])
    .unwrap();
    let layer2 = w.finish().unwrap();

    let mut runtime = Config::default();
    runtime.set_env(Some(vec![
        "PATH=/usr/bin:/bin".into(),
        "GREETING=hi".into(),
    ]));
    runtime.set_cmd(Some(vec!["/app/tool".into()]));
    runtime.set_working_dir(Some("/app".into()));
    let mut rootfs = RootFs::default();
    rootfs.set_diff_ids(vec![layer1.diff_id.to_string(), layer2.diff_id.to_string()]);
    let mut config = ImageConfiguration::default();
    config.set_architecture(Arch::Amd64);
    config.set_os(Os::Linux);
    config.set_created(Some("1970-01-01T00:00:00Z".into()));
    config.set_config(Some(runtime));
    config.set_rootfs(rootfs);
    let image = store
        .write_image(&config, &[layer1.descriptor, layer2.descriptor], None)
        .unwrap();
    store.refs().tag(REF, image.descriptor()).unwrap();
    image
}

#[test]
fn skopeo_and_umoci_read_our_images() {
    let Some(_) = require_tool("skopeo") else {
        return;
    };
    let Some(_) = require_tool("umoci") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    make_source(&src);
    let store = Store::init(dir.path().join("store")).unwrap();
    let image = build(&store, &src, Compression::Gzip);
    validate::image(&store, REF).unwrap();
    let layout = store.root().to_str().unwrap();

    // skopeo inspect shows the config and the manifest digest.
    let out = run_ok(Command::new("skopeo").args(["inspect", &format!("oci:{layout}:{FULL_REF}")]));
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["Digest"], image.digest().to_string());
    assert_eq!(json["Architecture"], "amd64");
    assert_eq!(json["Os"], "linux");
    assert_eq!(json["Env"][1], "GREETING=hi");
    assert_eq!(json["Layers"].as_array().unwrap().len(), 2);
    let config = run_ok(Command::new("skopeo").args([
        "inspect",
        "--config",
        &format!("oci:{layout}:{FULL_REF}"),
    ]));
    let config: serde_json::Value = serde_json::from_str(&config).unwrap();
    assert_eq!(config["config"]["Cmd"][0], "/app/tool");
    assert_eq!(config["config"]["WorkingDir"], "/app");

    // umoci unpacks exact files, modes and owners.
    let bundle = dir.path().join("bundle");
    run_ok(
        Command::new("umoci")
            .args(["unpack", "--image", &format!("{layout}:{FULL_REF}")])
            .arg(&bundle),
    );
    let rootfs = bundle.join("rootfs");
    let stat = |p: &str| fs::symlink_metadata(rootfs.join(p)).unwrap();
    let tool = stat("app/tool");
    assert_eq!(tool.permissions().mode() & 0o7777, 0o4755);
    assert_eq!((tool.uid(), tool.gid()), (1000, 1000));
    assert_eq!(
        fs::read_to_string(rootfs.join("app/tool")).unwrap(),
        "#!/bin/sh\necho tool\n"
    );
    assert_eq!(
        stat("app/tool-hardlink").ino(),
        tool.ino(),
        "hard link kept"
    );
    assert_eq!(
        fs::read_link(rootfs.join("app/tool-symlink")).unwrap(),
        Path::new("tool")
    );
    assert_eq!(stat("app/tool-symlink").uid(), 1000);
    let data = stat("app/data");
    assert!(data.is_dir());
    assert_eq!(data.permissions().mode() & 0o7777, 0o750);
    assert_eq!((data.uid(), data.gid()), (1000, 1000));
    assert_eq!(
        stat("app/data/config.txt").permissions().mode() & 0o7777,
        0o640
    );
    assert_eq!(stat("tmp").permissions().mode() & 0o7777, 0o1777);
    assert_eq!(
        fs::read_to_string(rootfs.join("etc/motd")).unwrap(),
        "welcome\n"
    );
    assert_eq!(tool.mtime(), 0, "mtime clamped to SOURCE_DATE_EPOCH=0");

    // skopeo copies it to another layout without changing a byte.
    let copy = dir.path().join("copy");
    run_ok(Command::new("skopeo").args([
        "copy",
        &format!("oci:{layout}:{FULL_REF}"),
        &format!("oci:{}:{FULL_REF}", copy.display()),
    ]));
    let copied = Store::open(&copy).unwrap();
    assert_eq!(copied.image(REF).unwrap().digest(), image.digest());
    assert!(copied.maintenance().fsck().unwrap().is_ok());
}

#[test]
fn skopeo_reads_zstd_layers() {
    let Some(_) = require_tool("skopeo") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    make_source(&src);
    let store = Store::init(dir.path().join("store")).unwrap();
    let image = build(&store, &src, Compression::Zstd);
    assert!(
        image.layers()[0]
            .media_type()
            .to_string()
            .ends_with("tar+zstd")
    );
    validate::image(&store, REF).unwrap();
    let out = run_ok(Command::new("skopeo").args([
        "inspect",
        &format!("oci:{}:{FULL_REF}", store.root().display()),
    ]));
    assert!(out.contains(&image.digest().to_string()), "{out}");
}

#[test]
fn same_inputs_same_manifest_digest() {
    let dir = tempfile::tempdir().unwrap();
    let mut digests: Vec<Digest> = Vec::new();
    for (i, compression) in [Compression::Gzip, Compression::Gzip].iter().enumerate() {
        // Different directories, different mtimes on disk.
        let src = dir.path().join(format!("src-{i}"));
        make_source(&src);
        if i == 1 {
            run_ok(
                Command::new("touch")
                    .args(["-h", "-d", "@1234567890"])
                    .arg(src.join("app/tool")),
            );
            run_ok(
                Command::new("touch")
                    .args(["-h", "-d", "@42"])
                    .arg(src.join("app")),
            );
        }
        let store = Store::init(dir.path().join(format!("store-{i}"))).unwrap();
        digests.push(build(&store, &src, *compression).digest());
    }
    assert_eq!(digests[0], digests[1]);
}

#[test]
fn podman_load_names_the_image_from_ref_name() {
    let Some(_) = require_tool("podman") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    make_source(&src);
    let store = Store::init(dir.path().join("store")).unwrap();
    let image = build(&store, &src, Compression::Gzip);
    // An oci-archive is the layout, tarred (strata's private .strata/ directory left out).
    let archive = dir.path().join("image.tar");
    run_ok(
        Command::new("tar")
            .arg("-C")
            .arg(store.root())
            .args(["--exclude", "./.strata", "-cf"])
            .arg(&archive)
            .arg("."),
    );
    // Private podman storage: the test leaves the machine's images alone.
    let podman = |args: &[&str]| {
        let mut cmd = Command::new("podman");
        cmd.arg("--root")
            .arg(dir.path().join("podman-root"))
            .arg("--runroot")
            .arg(dir.path().join("podman-run"))
            .args(["--storage-driver", "vfs"])
            .args(args);
        run_ok(&mut cmd)
    };
    let out = podman(&["load", "-i", archive.to_str().unwrap()]);
    assert!(out.contains(FULL_REF), "{out}");
    let listed = podman(&["images", "--format", "{{.Repository}}:{{.Tag}} {{.Digest}}"]);
    assert!(
        listed.contains(&format!("{FULL_REF} {}", image.digest())),
        "{listed}"
    );
}

/// What one path of an extracted tree is, as `lstat` and `readlink` show it: type and mode,
/// owners, size, mtime, device number, the link target or the content, and the xattrs.
fn describe(path: &Path) -> String {
    let md = fs::symlink_metadata(path).unwrap();
    let what = if md.file_type().is_symlink() {
        format!("-> {}", fs::read_link(path).unwrap().display())
    } else if md.is_file() {
        let content = fs::read(path).unwrap();
        format!("{} bytes, sha256 {}", content.len(), Digest::of(&content))
    } else {
        String::new()
    };
    let mut xattrs = strata_testutil::xattrs(path);
    xattrs.remove("security.selinux");
    // Symlinks' own mode and mtime are the link's, which neither extractor sets alike.
    let (mode, mtime) = if md.file_type().is_symlink() {
        (0, 0)
    } else {
        (md.mode(), md.mtime())
    };
    format!(
        "mode {mode:o} owner {}:{} mtime {mtime} rdev {} {what} {xattrs:?}",
        md.uid(),
        md.gid(),
        md.rdev()
    )
}

/// Every path under `root` (relative), described, with its hard-link group (the first path
/// sharing its inode).
fn tree(root: &Path) -> std::collections::BTreeMap<String, String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, u64, String)>) {
        for item in fs::read_dir(dir).unwrap() {
            let path = item.unwrap().path();
            let md = fs::symlink_metadata(&path).unwrap();
            let rel = path.strip_prefix(root).unwrap().display().to_string();
            out.push((rel, md.ino(), describe(&path)));
            if md.is_dir() {
                walk(root, &path, out);
            }
        }
    }
    let mut entries = Vec::new();
    walk(root, root, &mut entries);
    entries.sort();
    let mut first_of_inode = std::collections::HashMap::new();
    entries
        .into_iter()
        .map(|(rel, ino, described)| {
            let group = first_of_inode
                .entry(ino)
                .or_insert_with(|| rel.clone())
                .clone();
            (rel, format!("{described} link-group {group}"))
        })
        .collect()
}

#[test]
fn the_debian_base_unpacks_as_gnu_tar_extracts_it() {
    // Owners and device nodes need root, for GNU tar as for strata.
    if !strata_testutil::is_root() {
        assert!(!strata_testutil::in_ci(), "CI runs as root");
        return;
    }
    let Some(tar) = require_tool("tar") else {
        return;
    };
    let Some(rootfs) = strata_testutil::debian_rootfs_tar() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (ours, gnu) = (dir.path().join("ours"), dir.path().join("gnu"));
    fs::create_dir(&ours).unwrap();
    fs::create_dir(&gnu).unwrap();
    let options = strata_oci::tar::UnpackOptions {
        whiteouts: strata_oci::tar::Whiteouts::Refuse,
        ..Default::default()
    };
    let report =
        strata_oci::tar::unpack_layer(fs::File::open(&rootfs).unwrap(), &ours, &options).unwrap();
    assert!(report.entries > 5000, "{} entries", report.entries);
    assert!(
        report.skipped_devices.is_empty(),
        "{:?}",
        report.skipped_devices
    );
    run_ok(
        Command::new(tar)
            .args([
                "--extract",
                "--same-owner",
                "--preserve-permissions",
                "--numeric-owner",
                "--xattrs",
                "--xattrs-include=*",
                "--file",
            ])
            .arg(&rootfs)
            .arg("--directory")
            .arg(&gnu),
    );

    let (ours, gnu) = (tree(&ours), tree(&gnu));
    assert_eq!(ours.len(), gnu.len(), "the same number of paths");
    let differing: Vec<_> = gnu
        .iter()
        .filter(|(path, described)| ours.get(*path) != Some(described))
        .take(5)
        .map(|(path, described)| {
            format!("{path}:\n  gnu:  {described}\n  ours: {:?}", ours.get(path))
        })
        .collect();
    assert!(
        differing.is_empty(),
        "paths that differ:\n{}",
        differing.join("\n")
    );
}
