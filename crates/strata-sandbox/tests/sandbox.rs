//! Real sandboxes over a busybox root filesystem: these need root (overlayfs, namespaces).
//! Outside CI they are skipped when not root; under `CI=true` they must run.

#![allow(clippy::print_stderr)]

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use strata_sandbox::{
    Cancel, Change, ExtraMount, LayerView, Network, RootFs, RootMode, SandboxError, SandboxSpec,
    SecretBytes, Strategy, Stream, resolve_user, run,
};

fn require_root() -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    assert!(
        !strata_testutil::in_ci(),
        "the sandbox integration tests need root under CI"
    );
    eprintln!("skipping: the sandbox integration tests need root");
    false
}

/// A temp dir with `lower` (busybox), `upper`, `work`.
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Option<Fixture> {
        if !require_root() {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let tar = dir.path().join("rootfs.tar");
        strata_testutil::busybox_rootfs_tar(&tar)?;
        let lower = dir.path().join("lower");
        fs::create_dir(&lower).unwrap();
        strata_testutil::run_ok(
            Command::new("tar")
                .arg("-xf")
                .arg(&tar)
                .arg("-C")
                .arg(&lower),
        );
        Some(Fixture { dir })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn spec(&self, script: &str) -> SandboxSpec {
        SandboxSpec::new(
            RootFs::Overlay {
                lowers: vec![self.path("lower")],
                upper: self.path("upper"),
                work: self.path("work"),
            },
            vec!["sh".into(), "-c".into(), script.into()],
        )
    }

    /// Start over with an empty upper layer.
    fn reset(&self) {
        for d in ["upper", "work"] {
            let _ = fs::remove_dir_all(self.path(d));
        }
    }
}

/// Run and collect stdout.
fn run_capture(spec: &SandboxSpec) -> Result<(String, strata_sandbox::RunOutcome), SandboxError> {
    let out = Arc::new(Mutex::new(Vec::new()));
    let sink = out.clone();
    let mut output = move |stream: Stream, bytes: &[u8]| {
        if stream == Stream::Stdout {
            sink.lock().unwrap().extend_from_slice(bytes);
        }
    };
    let outcome = run(spec, &mut output, &Cancel::new())?;
    let text = String::from_utf8(out.lock().unwrap().clone()).unwrap();
    Ok((text, outcome))
}

fn summary(changes: &[Change]) -> Vec<String> {
    changes
        .iter()
        .map(|c| match c {
            Change::Entry { path, .. } => format!("+{}", path.display()),
            Change::Whiteout(p) => format!("-{}", p.display()),
            Change::Opaque(p) => format!("opaque {}", p.display()),
        })
        .collect()
}

fn mountinfo() -> String {
    fs::read_to_string("/proc/self/mountinfo").unwrap()
}

#[test]
fn changes_become_entries_and_whiteouts() {
    let Some(fx) = Fixture::new() else { return };
    let before = mountinfo();
    let (_, outcome) =
        run_capture(&fx.spec("echo hi > /new; rm /etc/group; mkdir -p /d; echo x > /bin/x"))
            .unwrap();
    assert_eq!(outcome.isolation.root, RootMode::Overlay);
    assert!(outcome.created_mountpoints.is_empty());
    let changes = outcome.changes().unwrap();
    assert_eq!(
        summary(&changes),
        ["+bin", "+bin/x", "+d", "+etc", "-etc/group", "+new"]
    );
    let Change::Entry {
        source, metadata, ..
    } = &changes[5]
    else {
        panic!()
    };
    assert_eq!(fs::read_to_string(source).unwrap(), "hi\n");
    assert!(metadata.is_file());
    // Nothing of the sandbox's own mount points reached the upper layer.
    for p in ["proc", "dev", "sys", "etc/resolv.conf", "etc/hosts"] {
        assert!(
            !fx.path("upper").join(p).exists(),
            "{p} leaked into the upper layer"
        );
    }
    let wh = fs::symlink_metadata(fx.path("upper/etc/group")).unwrap();
    assert!(wh.file_type().is_char_device() && wh.rdev() == 0);
    assert_eq!(mountinfo(), before, "mounts left behind");
}
