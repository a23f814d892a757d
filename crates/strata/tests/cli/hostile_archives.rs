//! Hostile archives never reach the host (issue 13), end to end, through the four ways strata
//! unpacks an archive somebody else made: `ADD t.tar /out/` in `strata build-image`; a bought
//! base (`source = { rootfs = "t.tar" }`) built with `strata build`; a layer pushed to
//! `strata serve`, pulled and run with `strata run`; and a child build's RUN on a hostile base.
//!
//! Each case is a tarball made here. A canary directory outside every store (a file, and a
//! subdirectory `sub` with mode 0755 and an old mtime) is recorded before and compared after each
//! path: its listing, modes, mtimes and contents must not change, and nothing new may appear
//! beside it.

#![allow(clippy::print_stderr)]

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use strata_oci::{ImageConfiguration, MediaType, Store};
use strata_testutil::{busybox_rootfs_tar, is_root};

use crate::common::Serve;

/// One raw tar entry, written verbatim (no normalisation).
struct Raw<'a> {
    name: &'a str,
    ty: tar::EntryType,
    link: &'a str,
    mode: u32,
    data: &'a [u8],
}

fn push_entry(out: &mut Vec<u8>, e: &Raw<'_>) {
    let mut h = tar::Header::new_gnu();
    h.as_old_mut().name[..e.name.len()].copy_from_slice(e.name.as_bytes());
    h.as_old_mut().linkname[..e.link.len()].copy_from_slice(e.link.as_bytes());
    h.set_entry_type(e.ty);
    h.set_mode(e.mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_000_000);
    h.set_size(e.data.len() as u64);
    h.set_cksum();
    out.extend_from_slice(h.as_bytes());
    out.extend_from_slice(e.data);
    out.resize(out.len().div_ceil(512) * 512, 0);
}

fn tarball(entries: &[Raw<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        push_entry(&mut out, e);
    }
    out.extend_from_slice(&[0; 1024]);
    out
}

/// The hostile cases: name, tarball, and whether the unpack succeeds (with everything kept
/// inside) or is refused.
fn cases(canary: &Path) -> Vec<(&'static str, Vec<u8>, bool)> {
    let canary = canary.to_str().unwrap();
    let victim = format!("{canary}/victim");
    let dir = |name, mode| Raw {
        name,
        ty: tar::EntryType::Directory,
        link: "",
        mode,
        data: b"",
    };
    // `x/`, `x/sub/` (0777), then `x` a symlink to the canary: the end-of-unpack pass used to
    // chmod the canary's `sub` through it.
    let replaced_parent = tarball(&[
        dir("x", 0o755),
        dir("x/sub", 0o777),
        Raw {
            name: "x",
            ty: tar::EntryType::Symlink,
            link: canary,
            mode: 0o777,
            data: b"",
        },
    ]);
    // A PAX `path` record climbing out with `..`.
    let record = |len: usize| format!("{len} path=../canary/evil\n");
    let mut len = record(0).len();
    while record(len).len() != len {
        len = record(len).len();
    }
    let mut pax = Vec::new();
    push_entry(
        &mut pax,
        &Raw {
            name: "PaxHeader",
            ty: tar::EntryType::XHeader,
            link: "",
            mode: 0o644,
            data: record(len).as_bytes(),
        },
    );
    push_entry(
        &mut pax,
        &Raw {
            name: "dummy",
            ty: tar::EntryType::Regular,
            link: "",
            mode: 0o644,
            data: b"pwned",
        },
    );
    pax.extend_from_slice(&[0; 1024]);
    // A hard link to the canary's file by its absolute host path.
    let hardlink = tarball(&[Raw {
        name: "h",
        ty: tar::EntryType::Link,
        link: &victim,
        mode: 0o644,
        data: b"",
    }]);
    vec![
        ("replaced-parent", replaced_parent, true),
        ("pax-dotdot", pax, false),
        ("outside-hardlink", hardlink, false),
    ]
}

/// A recorded tree: path → (kind, mode, mtime, content or link target).
type TreeState = BTreeMap<PathBuf, (&'static str, u32, i64, Vec<u8>)>;

fn record(dir: &Path) -> TreeState {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(path) = todo.pop() {
        let md = fs::symlink_metadata(&path).unwrap();
        let (kind, content) = if md.is_dir() {
            for e in fs::read_dir(&path).unwrap() {
                todo.push(e.unwrap().path());
            }
            ("dir", Vec::new())
        } else if md.file_type().is_symlink() {
            (
                "symlink",
                fs::read_link(&path)
                    .unwrap()
                    .into_os_string()
                    .into_encoded_bytes(),
            )
        } else {
            ("file", fs::read(&path).unwrap())
        };
        out.insert(
            path.strip_prefix(dir).unwrap().to_path_buf(),
            (kind, md.mode(), md.mtime(), content),
        );
    }
    out
}

/// The test's directory: the canary, and one directory per path and case.
struct World {
    dir: tempfile::TempDir,
    canary: PathBuf,
    before: TreeState,
}

impl World {
    fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        let canary = dir.path().join("canary");
        fs::create_dir_all(canary.join("sub")).unwrap();
        fs::write(canary.join("victim"), "original").unwrap();
        fs::write(canary.join("sub/file"), "canary").unwrap();
        fs::set_permissions(canary.join("sub"), fs::Permissions::from_mode(0o755)).unwrap();
        let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(500_000);
        for p in ["victim", "sub/file", "sub", ""] {
            fs::File::open(canary.join(p))
                .unwrap()
                .set_times(fs::FileTimes::new().set_modified(old).set_accessed(old))
                .unwrap();
        }
        let before = record(&canary);
        World {
            dir,
            canary,
            before,
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// The canary is as it was, and the test's directory holds only what the test made.
    fn assert_untouched(&self, what: &str, made: &[String]) {
        assert_eq!(
            record(&self.canary),
            self.before,
            "{what}: the canary changed"
        );
        let mut names: Vec<String> = fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        let mut expected: Vec<String> = made.to_vec();
        expected.push("canary".into());
        expected.sort();
        assert_eq!(names, expected, "{what}: something new beside the canary");
    }
}

fn strata(store: &Path) -> Command {
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin!("strata"));
    cmd.env_remove("STRATA_STORE")
        .env_remove("STRATA_CHAIN")
        .env_remove("SOURCE_DATE_EPOCH")
        .arg("--store")
        .arg(store);
    cmd
}

/// Run `cmd`; check it succeeds or fails as expected; returns stderr.
fn expect(cmd: &mut Command, ok: bool, what: &str) -> String {
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.success(),
        ok,
        "{what}: expected {}:\n{stderr}",
        if ok { "success" } else { "a refusal" }
    );
    stderr
}

#[test]
fn add_of_a_hostile_archive_stays_inside() {
    let world = World::new();
    let mut made = Vec::new();
    for (name, tar, ok) in cases(&world.canary) {
        // The store's caches live beside it: everything in one directory per case.
        let work = world.path(&format!("add-{name}"));
        let ctx = work.join("context");
        fs::create_dir_all(&ctx).unwrap();
        fs::write(ctx.join("t.tar"), &tar).unwrap();
        fs::write(ctx.join("Dockerfile"), "FROM scratch\nADD t.tar /out/\n").unwrap();
        let store = work.join("store");
        let stderr = expect(
            strata(&store).arg("build-image").arg(&ctx),
            ok,
            &format!("ADD {name}"),
        );
        if !ok {
            assert!(stderr.contains("unsafe archive entry"), "{stderr}");
        }
        made.push(format!("add-{name}"));
        world.assert_untouched(&format!("ADD {name}"), &made);
    }
}

#[test]
fn a_hostile_bought_base_stays_inside() {
    let world = World::new();
    let mut made = Vec::new();
    for (name, tar, ok) in cases(&world.canary) {
        let work = world.path(&format!("chain-{name}"));
        let chain = work.join("chain");
        fs::create_dir_all(&chain).unwrap();
        fs::write(chain.join("t.tar"), &tar).unwrap();
        fs::write(
            chain.join("strata.toml"),
            "name = \"acme\"\n\n[teams.operations]\ndescription = \"buys bases\"\n\
             contact = \"ops@acme.example\"\n\n[[image]]\nname = \"base\"\n\
             owner = \"operations\"\ntier = \"base\"\nsource = { rootfs = \"t.tar\" }\n",
        )
        .unwrap();
        let store = work.join("store");
        let stderr = expect(
            strata(&store).arg("-C").arg(&chain).arg("build"),
            ok,
            &format!("bought base {name}"),
        );
        if !ok {
            assert!(stderr.contains("unsafe archive entry"), "{stderr}");
        }
        made.push(format!("chain-{name}"));
        world.assert_untouched(&format!("bought base {name}"), &made);
    }
}

/// Write an image of two layers into `store` as `localhost/acme/hostile:latest`: the layer of
/// `localhost/acme/base` (busybox, built by strata) and `hostile`, stored as given.
fn hostile_image(store: &Path, hostile: &[u8]) {
    let store = Store::open(store).unwrap();
    let base = store.refs().resolve("localhost/acme/base:latest").unwrap();
    let base = store.image_from_descriptor(&base).unwrap();
    let mut descriptors = base.layers().to_vec();
    let mut diff_ids: Vec<String> = base
        .diff_ids()
        .unwrap()
        .iter()
        .map(|d| d.to_string())
        .collect();
    let info = store.blobs().put(hostile).unwrap();
    let descriptor = info.descriptor(MediaType::ImageLayer);
    diff_ids.push(descriptor.digest().to_string());
    descriptors.push(descriptor);
    // oci-spec's default configuration is linux/amd64, this test machine's platform.
    let mut config = ImageConfiguration::default();
    let mut rootfs = config.rootfs().clone();
    rootfs.set_diff_ids(diff_ids);
    config.set_rootfs(rootfs);
    let image = store.write_image(&config, &descriptors, None).unwrap();
    store
        .refs()
        .tag("localhost/acme/hostile:latest", image.descriptor())
        .unwrap();
}

#[test]
fn hostile_layers_pulled_and_run_or_built_on_stay_inside() {
    if !is_root() {
        eprintln!("skipping: RUN and strata run need root (overlay mounts and namespaces)");
        assert!(!strata_testutil::in_ci(), "CI runs as root");
        return;
    }
    let world = World::new();
    let base = world.path("base");
    fs::create_dir_all(&base).unwrap();
    if busybox_rootfs_tar(&base.join("rootfs.tar")).is_none() {
        return;
    }
    fs::write(base.join("Dockerfile"), "FROM scratch\nADD rootfs.tar /\n").unwrap();
    let mut made = vec!["base".to_string()];
    for (name, tar, ok) in cases(&world.canary) {
        // A child build's RUN on the hostile base.
        let work = world.path(&format!("run-{name}"));
        let store = work.join("store");
        fs::create_dir_all(&work).unwrap();
        expect(
            strata(&store)
                .arg("build-image")
                .arg(&base)
                .args(["-t", "localhost/acme/base"]),
            true,
            "the busybox base",
        );
        hostile_image(&store, &tar);
        let ctx = work.join("child");
        fs::create_dir_all(&ctx).unwrap();
        fs::write(
            ctx.join("Dockerfile"),
            "FROM localhost/acme/hostile\nRUN true\n",
        )
        .unwrap();
        let stderr = expect(
            strata(&store).arg("build-image").arg(&ctx),
            ok,
            &format!("RUN on {name}"),
        );
        if !ok {
            assert!(stderr.contains("unsafe archive entry"), "{stderr}");
        }
        made.push(format!("run-{name}"));
        world.assert_untouched(&format!("RUN on {name}"), &made);

        // Pushed to strata serve, pulled into a fresh store, run.
        let remote_work = world.path(&format!("registry-{name}"));
        let served = remote_work.join("served");
        fs::create_dir_all(&served).unwrap();
        let server = Serve::start(&served, &[]);
        let remote = format!("{}/acme/hostile:latest", server.host);
        expect(
            strata(&store).args(["push", "acme/hostile", &remote]),
            true,
            &format!("push {name}"),
        );
        let pulled = remote_work.join("pulled");
        expect(
            strata(&pulled).args(["pull", &remote]),
            true,
            &format!("pull {name}"),
        );
        let stderr = expect(
            strata(&pulled).args(["run", &remote, "--", "true"]),
            ok,
            &format!("strata run {name}"),
        );
        if !ok {
            assert!(stderr.contains("unsafe archive entry"), "{stderr}");
        }
        drop(server);
        made.push(format!("registry-{name}"));
        world.assert_untouched(&format!("pulled and run {name}"), &made);
    }
}

// Issue 13: a context whose Dockerfile or .dockerignore is a symlink to a host file printed
// that file's content in the parse error.
#[test]
fn context_files_leading_outside_the_context_are_named_never_read() {
    let world = World::new();
    let secret = world.path("secret");
    fs::create_dir_all(&secret).unwrap();
    let secret_file = secret.join("shadow");
    fs::write(&secret_file, "root:TOPSECRET-HASH:19000:0:99999:7:::\n").unwrap();
    let mut made = vec!["secret".to_string()];
    for (name, linked) in [("dockerfile", "Dockerfile"), ("ignore", ".dockerignore")] {
        let ctx = world.path(&format!("context-{name}"));
        fs::create_dir_all(&ctx).unwrap();
        if linked != "Dockerfile" {
            fs::write(ctx.join("Dockerfile"), "FROM scratch\nCOPY Dockerfile /\n").unwrap();
        }
        std::os::unix::fs::symlink(&secret_file, ctx.join(linked)).unwrap();
        let store = world.path(&format!("context-{name}/store"));
        let out = strata(&store)
            .arg("build-image")
            .arg(&ctx)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{linked}: the build must fail");
        assert!(
            !stdout.contains("TOPSECRET") && !stderr.contains("TOPSECRET"),
            "{linked}: host content echoed:\n{stdout}\n{stderr}"
        );
        assert!(stderr.contains(linked), "{linked}: not named:\n{stderr}");
        assert!(stderr.contains("points outside"), "{linked}:\n{stderr}");
        made.push(format!("context-{name}"));
    }
    // A chain image's Dockerfile, read when the chain is loaded.
    let chain = world.path("chain");
    fs::create_dir_all(chain.join("corebuild")).unwrap();
    fs::write(
        chain.join("strata.toml"),
        "name = \"acme\"\n\n[teams.operations]\ndescription = \"builds\"\n\
         contact = \"ops@acme.example\"\n\n[[image]]\nname = \"corebuild\"\n\
         owner = \"operations\"\ncontext = \"corebuild\"\n",
    )
    .unwrap();
    std::os::unix::fs::symlink(&secret_file, chain.join("corebuild/Dockerfile")).unwrap();
    let out = strata(&chain.join("store"))
        .arg("-C")
        .arg(&chain)
        .arg("build")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the chain build must fail");
    assert!(
        !stdout.contains("TOPSECRET") && !stderr.contains("TOPSECRET"),
        "chain: host content echoed:\n{stdout}\n{stderr}"
    );
    assert!(stderr.contains("corebuild/Dockerfile"), "{stderr}");
    assert!(stderr.contains("points outside"), "{stderr}");
    made.push("chain".into());

    // A symlink that stays inside the context keeps working.
    let ctx = world.path("context-inside");
    fs::create_dir_all(ctx.join("docker")).unwrap();
    fs::write(
        ctx.join("docker/Dockerfile.real"),
        "FROM scratch\nCOPY docker /d/\n",
    )
    .unwrap();
    std::os::unix::fs::symlink("docker/Dockerfile.real", ctx.join("Dockerfile")).unwrap();
    expect(
        strata(&ctx.join("store")).arg("build-image").arg(&ctx),
        true,
        "a Dockerfile symlink inside the context",
    );
    made.push("context-inside".into());
    world.assert_untouched("context files", &made);
}
