//! The sandbox without root: a user namespace mapping the caller to root, overlayfs with
//! `userxattr` (or the private copy). Run as root, the test re-runs itself as `nobody`.

#![allow(clippy::print_stderr)]

use std::fs;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::{Arc, Mutex};

use strata_sandbox::{
    Cancel, Change, Identity, Network, RootFs, RootMode, SandboxError, SandboxSpec, Strategy,
    Stream, run,
};

const INNER: &str = "STRATA_SANDBOX_ROOTLESS_INNER";

#[test]
fn rootless_runs_in_a_user_namespace() {
    if std::env::var_os(INNER).is_some() || !nix::unistd::geteuid().is_root() {
        inner();
        return;
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "rootless_runs_in_a_user_namespace",
            "--nocapture",
        ])
        .env(INNER, "1")
        .env("TMPDIR", "/tmp")
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "as nobody:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 passed"));
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
}

fn summary(changes: &[Change]) -> Vec<String> {
    changes
        .iter()
        .map(|c| match c {
            Change::Entry { path, uid, gid, .. } => {
                assert_eq!((*uid, *gid), (0, 0), "{} not owned by root", path.display());
                format!("+{}", path.display())
            }
            Change::Whiteout(p) => format!("-{}", p.display()),
            Change::Opaque(p) => format!("opaque {}", p.display()),
        })
        .collect()
}

fn inner() {
    let caps = strata_sandbox::probe::capabilities();
    if !caps.namespaces {
        assert!(
            !strata_testutil::in_ci(),
            "user namespaces are needed under CI"
        );
        eprintln!("skipping: no unprivileged user namespaces here");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let lower = dir.path().join("lower");
    let Some(()) = strata_testutil::busybox_rootfs_dir(&lower) else {
        return;
    };
    // A second layer with an OCI whiteout, converted for a user-namespace overlay.
    let l1 = dir.path().join("l1");
    fs::create_dir_all(l1.join("bin")).unwrap();
    fs::write(l1.join("bin/.wh.vi"), "").unwrap();
    let ns = strata_sandbox::XattrNamespace::for_current_user();
    assert_eq!(
        strata_sandbox::oci_whiteouts_to_overlay(&l1, ns).unwrap(),
        1
    );

    let script =
        "id -u; echo hi > /new; rm /etc/group; rm -rf /home && mkdir /home && touch /home/a";
    for (n, strategy) in [Strategy::Auto, Strategy::Copy].into_iter().enumerate() {
        let mut spec = SandboxSpec::new(
            RootFs::Overlay {
                lowers: vec![lower.clone(), l1.clone()],
                upper: dir.path().join(format!("upper{n}")),
                work: dir.path().join(format!("work{n}")),
            },
            vec!["sh".into(), "-c".into(), script.into()],
        );
        spec.strategy = strategy;
        // The host's network, as before the private default (tried separately below).
        spec.network = Network::Host;
        let out = Arc::new(Mutex::new(Vec::new()));
        let sink = out.clone();
        let mut output = move |s: Stream, b: &[u8]| {
            if s == Stream::Stdout {
                sink.lock().unwrap().extend_from_slice(b);
            }
        };
        let outcome = run(&spec, &mut output, &Cancel::new()).unwrap();
        assert_eq!(
            String::from_utf8(out.lock().unwrap().clone()).unwrap(),
            "0\n"
        );
        assert!(outcome.isolation.user_namespace);
        let changes = summary(&outcome.changes().unwrap());
        if outcome.isolation.root == RootMode::Overlay {
            assert_eq!(
                changes,
                [
                    "+etc",
                    "-etc/group",
                    "+home",
                    "opaque home",
                    "+home/a",
                    "+new"
                ]
            );
        } else {
            assert_eq!(outcome.isolation.root, RootMode::Copy);
            assert_eq!(changes, ["+etc", "-etc/group", "+home", "+home/a", "+new"]);
        }
        eprintln!("rootless {:?}: {changes:?}", outcome.isolation);
        let work = dir.path().join(format!("work{n}"));
        assert!(
            !work.exists() || fs::read_dir(&work).unwrap().count() == 0,
            "work dir left"
        );
        if strategy == Strategy::Auto {
            assert_eq!(outcome.isolation.root, RootMode::Overlay, "probe: {caps:?}");
        }

        // Only root exists in the namespace.
        spec.user = Identity {
            uid: 33,
            gid: 33,
            groups: vec![33],
        };
        let e = run(&spec, &mut strata_sandbox::Discard, &Cancel::new()).unwrap_err();
        assert!(matches!(e, SandboxError::Unsupported(_)), "{e:?}");
    }
    // The default network works rootless where /dev/net/tun is open to the caller; elsewhere
    // it fails with a clear message pointing at --network host.
    if strata_testutil::which("slirp4netns").is_some() {
        let spec = SandboxSpec::new(
            RootFs::Overlay {
                lowers: vec![lower.clone()],
                upper: dir.path().join("upper-net"),
                work: dir.path().join("work-net"),
            },
            vec![
                "sh".into(),
                "-c".into(),
                "grep -c tap0 /proc/net/dev".into(),
            ],
        );
        match run(&spec, &mut strata_sandbox::Discard, &Cancel::new()) {
            Ok(_) => eprintln!("rootless default network: up"),
            Err(SandboxError::Network { message }) => {
                assert!(message.contains("--network host"), "{message}");
                eprintln!("rootless default network unavailable here: {message}");
            }
            Err(e) => panic!("{e:?}"),
        }
    }
    assert_eq!(
        strata_testutil::mounts_under(dir.path()),
        Vec::<std::path::PathBuf>::new(),
        "mounts left behind"
    );
    assert!(
        !fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .contains("strata-sandbox-"),
        "a sandbox state directory is still mounted"
    );
}
