//! Real sandboxes over a busybox root filesystem: these need root (overlayfs, namespaces).
//! Outside CI they are skipped when not root; under `CI=true` they must run.

#![allow(clippy::print_stderr)]

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::PathBuf;
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
        strata_testutil::busybox_rootfs_dir(&dir.path().join("lower"))?;
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

/// No mount of the sandbox is visible in the caller's namespace: none at or under the fixture, and
/// none on a sandbox state directory (`strata-sandbox-*`, which only a leak would show here). Only
/// these are compared, never the whole table, which changes whenever anything else mounts.
fn assert_no_leftover_mounts(fx: &Fixture, _before: &str) {
    assert_eq!(
        strata_testutil::mounts_under(fx.dir.path()),
        Vec::<std::path::PathBuf>::new(),
        "sandbox mounts left behind under the fixture"
    );
    for line in mountinfo().lines() {
        assert!(
            !line.contains("strata-sandbox-"),
            "sandbox mount left behind: {line}"
        );
    }
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
    assert_eq!(
        fs::read_dir(fx.path("work")).unwrap().count(),
        0,
        "per-run work dir left"
    );
    assert_no_leftover_mounts(&fx, &before);
}

#[test]
fn rm_rf_and_mkdir_makes_an_opaque_directory() {
    let Some(fx) = Fixture::new() else { return };
    fs::write(fx.path("lower/home/old"), "old").unwrap();
    let (_, outcome) =
        run_capture(&fx.spec("rm -rf /home && mkdir /home && touch /home/a")).unwrap();
    let changes = outcome.changes().unwrap();
    assert_eq!(summary(&changes), ["+home", "opaque home", "+home/a"]);
}

#[test]
fn a_failing_command_reports_code_and_tail_and_leaves_no_mount() {
    let Some(fx) = Fixture::new() else { return };
    let before = mountinfo();
    let mut spec = fx.spec("echo one; echo two >&2; echo three; exit 3");
    spec.tail_lines = 2;
    let err = run_capture(&spec).unwrap_err();
    let SandboxError::CommandFailed {
        command,
        status,
        tail,
    } = &err
    else {
        panic!("unexpected {err:?}")
    };
    assert!(command.starts_with("sh -c 'echo one;"), "{command}");
    assert_eq!(*status, strata_sandbox::ExitStatus::Code(3));
    assert_eq!(tail.len(), 2);
    assert!(tail.contains(&"three".to_string()), "{tail:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("exited with code 3") && msg.contains("three"),
        "{msg}"
    );
    assert_no_leftover_mounts(&fx, &before);
}

#[test]
fn setup_failures_are_clear() {
    let Some(fx) = Fixture::new() else { return };
    let mut spec = fx.spec("true");
    spec.cwd = "/no/such/dir".into();
    let e = run_capture(&spec).unwrap_err().to_string();
    assert!(
        e.contains("working directory /no/such/dir") && e.contains("No such file"),
        "{e}"
    );
    fx.reset();
    let mut spec = fx.spec("true");
    spec.argv = vec!["no-such-tool".into()];
    let e = run_capture(&spec).unwrap_err().to_string();
    assert!(e.contains("cannot execute no-such-tool"), "{e}");
}

#[test]
fn environment_hostname_and_identity_are_exact() {
    let Some(fx) = Fixture::new() else { return };
    let mut spec = fx.spec("env | sort; grep -c buildbox /etc/hosts; hostname; id -u; id -G; pwd");
    spec.env = vec![("A".into(), "1 2".into())];
    spec.hostname = "buildbox".into();
    spec.cwd = "/etc".into();
    let (out, _) = run_capture(&spec).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    // sh adds PWD, SHLVL; nothing from the host leaks in.
    assert!(lines.contains(&"A=1 2"), "{out}");
    assert!(lines.contains(&"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"));
    assert!(
        !out.contains("CARGO") && !out.contains("HOME=/root"),
        "{out}"
    );
    assert_eq!(
        &lines[lines.len() - 5..],
        ["1", "buildbox", "0", "0", "/etc"]
    );
}

#[test]
fn user_by_name_runs_with_its_ids() {
    let Some(fx) = Fixture::new() else { return };
    let user = resolve_user("www-data", &LayerView::new(&[fx.path("lower")])).unwrap();
    let mut spec = fx.spec("id -u; id -g; touch /tmp/mine; stat -c %u /tmp/mine");
    spec.user = user.identity;
    let (out, outcome) = run_capture(&spec).unwrap();
    assert_eq!(out, "33\n33\n33\n");
    let changes = outcome.changes().unwrap();
    let mine = changes
        .iter()
        .find(|c| c.path() == std::path::Path::new("tmp/mine"))
        .unwrap();
    assert!(matches!(
        mine,
        Change::Entry {
            uid: 33,
            gid: 33,
            ..
        }
    ));
}

#[test]
fn network_none_has_only_loopback_up() {
    let Some(fx) = Fixture::new() else { return };
    let mut spec = fx.spec("cat /proc/net/dev; cat /sys/class/net/lo/flags");
    spec.network = Network::None;
    let (out, _) = run_capture(&spec).unwrap();
    let ifaces: Vec<&str> = out
        .lines()
        .filter_map(|l| l.split_once(':').map(|(name, _)| name.trim()))
        .filter(|n| !n.contains('|'))
        .collect();
    assert_eq!(ifaces, ["lo"], "{out}");
    let flags = out.lines().last().unwrap().trim_start_matches("0x");
    assert_eq!(
        u32::from_str_radix(flags, 16).unwrap() & 1,
        1,
        "lo is down: {out}"
    );
    // The host network (an opt-in) has more than lo here.
    fx.reset();
    let mut spec = fx.spec("cat /proc/net/dev");
    spec.network = Network::Host;
    let (out, _) = run_capture(&spec).unwrap();
    let host = fs::read_to_string("/proc/net/dev").unwrap();
    assert_eq!(out.lines().count(), host.lines().count(), "{out}");
    assert!(
        host.lines().count() > 3,
        "the host has only lo: cannot tell namespaces apart"
    );
}

#[test]
fn a_cache_mount_persists_across_runs_and_stays_out_of_the_layer() {
    let Some(fx) = Fixture::new() else { return };
    let cache = fx.path("cache");
    let mut spec = fx.spec("echo v1 > /var/cache/app/state");
    spec.mounts = vec![ExtraMount::Cache {
        dir: cache.clone(),
        target: "/var/cache/app".into(),
    }];
    let (_, outcome) = run_capture(&spec).unwrap();
    let changes = outcome.changes().unwrap();
    assert!(
        changes
            .iter()
            .all(|c| !c.path().starts_with("var/cache/app")),
        "{:?}",
        summary(&changes)
    );
    assert_eq!(fs::read_to_string(cache.join("state")).unwrap(), "v1\n");
    fx.reset();
    spec.argv[2] = "cat /var/cache/app/state".into();
    let (out, _) = run_capture(&spec).unwrap();
    assert_eq!(out, "v1\n");
}

#[test]
fn secrets_tmpfs_and_readonly_binds_never_reach_the_layer() {
    let Some(fx) = Fixture::new() else { return };
    let ctx = fx.path("ctx");
    fs::create_dir(&ctx).unwrap();
    fs::write(ctx.join("input"), "from context").unwrap();
    let mut spec = fx.spec(
        "cat /run/secrets/token; echo; cat /src/input; echo; \
         echo t > /scratch/t; ls /scratch; \
         if echo x > /src/input 2>/dev/null; then echo WRITABLE; fi; \
         if echo x > /run/secrets/token 2>/dev/null; then echo WRITABLE; fi; \
         if echo x > /etc/resolv.conf 2>/dev/null; then echo WRITABLE; fi",
    );
    spec.mounts = vec![
        ExtraMount::Secret {
            id: "token".into(),
            content: SecretBytes(b"s3cr3t".to_vec()),
            target: None,
            uid: 0,
            gid: 0,
            mode: 0o400,
        },
        ExtraMount::Bind {
            source: ctx.clone(),
            target: "/src".into(),
            readonly: true,
        },
        ExtraMount::Tmpfs {
            target: "/scratch".into(),
            size: Some(1 << 20),
        },
    ];
    let (out, outcome) = run_capture(&spec).unwrap();
    assert_eq!(out, "s3cr3t\nfrom context\nt\n");
    assert_eq!(
        fs::read_to_string(ctx.join("input")).unwrap(),
        "from context"
    );
    assert!(
        outcome.changes().unwrap().is_empty(),
        "{:?}",
        summary(&outcome.changes().unwrap())
    );
    assert_eq!(fs::read_dir(fx.path("upper")).unwrap().count(), 0);
}

#[test]
fn pid_namespace_reaps_everything_when_the_command_ends() {
    let Some(fx) = Fixture::new() else { return };
    let marker = format!("{}", 100_000 + std::process::id() % 800_000);
    let spec = fx.spec(&format!("sleep {marker} & echo $$; echo $!"));
    let (out, _) = run_capture(&spec).unwrap();
    let pids: Vec<u32> = out.lines().map(|l| l.parse().unwrap()).collect();
    assert!(
        pids[0] <= 3 && pids[1] <= 4,
        "not in a fresh PID namespace: {pids:?}"
    );
    assert!(
        !sleeper_alive(&marker),
        "the backgrounded sleep survived the step"
    );
}

fn sleeper_alive(marker: &str) -> bool {
    let want = format!("sleep\0{marker}\0");
    fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .any(|e| fs::read(e.path().join("cmdline")).is_ok_and(|c| c == want.as_bytes()))
}

#[test]
fn cancelling_kills_the_sandbox_and_its_mounts() {
    let Some(fx) = Fixture::new() else { return };
    let before = mountinfo();
    let marker = format!("{}", 900_000 + std::process::id() % 90_000);
    // "ready" once the background sleep has exec'd; the foreground sleep then waits forever.
    let spec = fx.spec(&format!(
        "sleep {marker} & while ! grep -q '^sleep' /proc/$!/cmdline; do :; done; echo ready; sleep {marker}"
    ));
    let cancel = Cancel::new();
    let trigger = cancel.clone();
    let seen_alive = Arc::new(Mutex::new(None));
    let seen = seen_alive.clone();
    let probe_marker = marker.clone();
    let mut output = move |_: Stream, bytes: &[u8]| {
        if bytes.windows(5).any(|w| w == b"ready") {
            *seen.lock().unwrap() = Some(sleeper_alive(&probe_marker));
            trigger.cancel();
        }
    };
    let err = run(&spec, &mut output, &cancel).unwrap_err();
    assert_eq!(
        *seen_alive.lock().unwrap(),
        Some(true),
        "the host could not see the sleeper"
    );
    assert!(matches!(err, SandboxError::Cancelled { .. }), "{err:?}");
    assert!(
        !sleeper_alive(&marker),
        "a sandbox process survived cancellation"
    );
    assert_no_leftover_mounts(&fx, &before);
}

#[test]
fn nothing_is_written_to_the_host_outside_the_upper_layer() {
    let Some(fx) = Fixture::new() else { return };
    let name = format!("strata-sandbox-test-{}", std::process::id());
    let (_, outcome) =
        run_capture(&fx.spec(&format!("touch /tmp/{name}; echo x > /etc/passwd"))).unwrap();
    assert!(
        !std::path::Path::new("/tmp").join(&name).exists(),
        "wrote to the host's /tmp"
    );
    assert!(
        !fx.path("lower/tmp").join(&name).exists(),
        "wrote to the lower layer"
    );
    assert!(
        fs::read_to_string(fx.path("lower/etc/passwd"))
            .unwrap()
            .starts_with("root:")
    );
    assert!(fx.path("upper/tmp").join(&name).exists());
    // /etc was copied up (for /etc/passwd, its entries unchanged) through the mountpoints layer,
    // which holds etc/resolv.conf: it keeps the image's mode, owner and times.
    let (img, up) = (
        fs::metadata(fx.path("lower/etc")).unwrap(),
        fs::metadata(fx.path("upper/etc")).unwrap(),
    );
    assert_eq!(
        (up.mode(), up.uid(), up.mtime(), up.mtime_nsec()),
        (img.mode(), img.uid(), img.mtime(), img.mtime_nsec())
    );
    assert_eq!(
        summary(&outcome.changes().unwrap()),
        [
            "+etc",
            "+etc/passwd",
            "+tmp",
            format!("+tmp/{name}").as_str()
        ]
    );
}

#[test]
fn the_copy_fallback_reports_the_same_changes() {
    let Some(fx) = Fixture::new() else { return };
    let before = mountinfo();
    let mut spec = fx.spec(
        "echo hi > /new; rm /etc/group; mkdir -p /d; echo x > /bin/x; echo root:x:0: > /etc/passwd",
    );
    spec.strategy = Strategy::Copy;
    let (_, outcome) = run_capture(&spec).unwrap();
    assert_eq!(outcome.isolation.root, RootMode::Copy);
    // The copy's own mount points were made in place, then removed.
    let created: Vec<String> = outcome
        .created_mountpoints
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    assert!(
        created.contains(&"proc".to_string()) && created.contains(&"etc/resolv.conf".to_string()),
        "{created:?}"
    );
    assert!(!fx.path("upper/proc").exists());
    let changes = outcome.changes().unwrap();
    assert_eq!(
        summary(&changes),
        [
            "+bin",
            "+bin/x",
            "+d",
            "+etc",
            "-etc/group",
            "+etc/passwd",
            "+new"
        ]
    );
    assert_no_leftover_mounts(&fx, &before);
}

#[test]
fn a_directory_root_records_and_removes_its_mount_points() {
    let Some(fx) = Fixture::new() else { return };
    let root = fx.path("lower");
    let etc_before = fs::metadata(root.join("etc")).unwrap().modified().unwrap();
    let mut spec = fx.spec("echo made > /made");
    spec.rootfs = RootFs::Dir(root.clone());
    let (_, outcome) = run_capture(&spec).unwrap();
    assert_eq!(outcome.isolation.root, RootMode::Direct);
    assert_eq!(fs::read_to_string(root.join("made")).unwrap(), "made\n");
    let mut created: Vec<String> = outcome
        .created_mountpoints
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    created.sort();
    assert_eq!(
        created,
        ["dev", "etc/resolv.conf", "etc/hosts", "proc", "sys"]
            .map(String::from)
            .into_iter()
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect::<Vec<_>>()
    );
    for p in &created {
        assert!(!root.join(p).exists(), "{p} was left in the root");
    }
    assert_eq!(
        fs::metadata(root.join("etc")).unwrap().modified().unwrap(),
        etc_before
    );
    assert!(
        outcome.changes().is_err(),
        "a directory root has no change record"
    );
}

#[test]
fn the_command_cannot_mount_or_unmount() {
    let Some(fx) = Fixture::new() else { return };
    let (out, _) = run_capture(&fx.spec(
        "grep CapBnd /proc/self/status; \
         mount -t tmpfs t /tmp 2>/dev/null && echo MOUNTED; \
         umount /etc/resolv.conf 2>/dev/null && echo UNMOUNTED; \
         echo 1 > /proc/sys/kernel/hostname 2>/dev/null && echo SYSCTL; true",
    ))
    .unwrap();
    let mask: u64 = strata_sandbox::sys::KEPT_CAPS
        .iter()
        .map(|c| 1u64 << c)
        .sum();
    assert_eq!(out, format!("CapBnd:\t{mask:016x}\n"));
}

#[test]
fn a_seccomp_filter_refuses_new_user_namespaces_and_kernel_keyrings() {
    let Some(fx) = Fixture::new() else { return };
    // A user namespace would hand the command a full capability set again (inside it), and the
    // kernel keyring is not namespaced: Docker's default profile refuses both, and so do we.
    // Ordinary work (fork, exec, threads, files) goes on under the filter.
    let (out, _) = run_capture(&fx.spec(
        "grep '^Seccomp:' /proc/self/status; \
         unshare -U true 2>/dev/null && echo USERNS; \
         unshare -U -r true 2>/dev/null && echo USERNS_ROOT; \
         (echo sub | cat) && ls / >/dev/null && echo OK",
    ))
    .unwrap();
    assert_eq!(out, "Seccomp:\t2\nsub\nOK\n");
}

#[test]
fn many_layers_go_through_the_new_mount_api() {
    let Some(fx) = Fixture::new() else { return };
    // 80 layers of 64-character names: their lowerdir list exceeds a page even made relative.
    let mut lowers = vec![fx.path("lower")];
    for i in 0..80 {
        let l = fx.path("snapshots").join(format!("{i:064}"));
        fs::create_dir_all(l.join("layers")).unwrap();
        fs::write(l.join("layers").join(i.to_string()), "").unwrap();
        fs::write(l.join("top"), i.to_string()).unwrap();
        lowers.push(l);
    }
    let mut spec = fx.spec("cat /top; echo; ls /layers | wc -l; echo new > /layers/new");
    spec.rootfs = RootFs::Overlay {
        lowers,
        upper: fx.path("upper"),
        work: fx.path("work"),
    };
    let (out, outcome) = run_capture(&spec).unwrap();
    assert_eq!(out, "79\n80\n");
    assert_eq!(
        summary(&outcome.changes().unwrap()),
        ["+layers", "+layers/new"]
    );
}

#[test]
fn converted_oci_layers_stack_with_their_whiteouts() {
    let Some(fx) = Fixture::new() else { return };
    // A second layer as an OCI tar would extract it: /etc/group deleted, /home made opaque.
    let l1 = fx.path("l1");
    fs::create_dir_all(l1.join("etc")).unwrap();
    fs::create_dir_all(l1.join("home")).unwrap();
    fs::write(fx.path("lower/home/old"), "").unwrap();
    fs::write(l1.join("etc/.wh.group"), "").unwrap();
    fs::write(l1.join("home/.wh..wh..opq"), "").unwrap();
    fs::write(l1.join("home/new"), "").unwrap();
    let n = strata_sandbox::oci_whiteouts_to_overlay(&l1, strata_sandbox::XattrNamespace::Trusted)
        .unwrap();
    assert_eq!(n, 2);
    let mut spec = fx.spec("ls /home; test -e /etc/group && echo GROUP; ls /etc");
    spec.rootfs = RootFs::Overlay {
        lowers: vec![fx.path("lower"), l1],
        upper: fx.path("upper"),
        work: fx.path("work"),
    };
    let (out, _) = run_capture(&spec).unwrap();
    assert_eq!(out, "new\nhosts\npasswd\nresolv.conf\n");
}

#[test]
fn a_reused_upper_cannot_redirect_mounts_out_of_the_root() {
    let Some(fx) = Fixture::new() else { return };
    let before = mountinfo();
    // The upper from an earlier step replaced /etc with an absolute symlink.
    fs::create_dir_all(fx.path("upper")).unwrap();
    std::os::unix::fs::symlink("/elsewhere", fx.path("upper/etc")).unwrap();
    let (out, _) =
        run_capture(&fx.spec("readlink /etc; test -s /etc/hosts && echo HOSTS")).unwrap();
    assert_eq!(out, "/elsewhere\nHOSTS\n");
    assert!(!std::path::Path::new("/elsewhere").exists());
    assert_no_leftover_mounts(&fx, &before);
}

#[test]
fn stdin_is_null_or_the_callers() {
    let Some(fx) = Fixture::new() else { return };
    const INNER: &str = "STRATA_SANDBOX_STDIN_INNER";
    if std::env::var_os(INNER).is_some() {
        let mut spec = fx.spec("cat");
        spec.stdin = strata_sandbox::Stdin::Inherit;
        let (out, _) = run_capture(&spec).unwrap();
        assert_eq!(out, "piped in\n");
        return;
    }
    let (out, _) = run_capture(&fx.spec("cat; echo end")).unwrap();
    assert_eq!(out, "end\n", "stdin is /dev/null by default");
    // Re-run this test with a known standard input.
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "stdin_is_null_or_the_callers"])
        .env(INNER, "1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"piped in\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("1 passed"), "{text}");
}

#[test]
fn large_output_streams_completely_on_both_streams() {
    let Some(fx) = Fixture::new() else { return };
    let counts = Arc::new(Mutex::new([0usize; 2]));
    let sink = counts.clone();
    let mut output = move |s: Stream, b: &[u8]| sink.lock().unwrap()[s as usize] += b.len();
    let spec = fx.spec(
        "dd if=/dev/zero bs=65536 count=128 2>/dev/null; dd if=/dev/zero bs=65536 count=64 >&2 2>/dev/null",
    );
    run(&spec, &mut output, &Cancel::new()).unwrap();
    assert_eq!(*counts.lock().unwrap(), [8 << 20, 4 << 20]);
}

#[test]
fn an_overlay_the_kernel_refuses_falls_back_to_a_private_copy() {
    let Some(fx) = Fixture::new() else { return };
    // Upper on tmpfs, work on the fixture's filesystem: overlayfs refuses the pair.
    let shm = tempfile::tempdir_in("/dev/shm").unwrap();
    let root = |strategy| {
        let mut spec = fx.spec("echo hi > /new");
        spec.rootfs = RootFs::Overlay {
            lowers: vec![fx.path("lower")],
            upper: shm.path().join("upper"),
            work: fx.path("work"),
        };
        spec.strategy = strategy;
        spec
    };
    let err = run_capture(&root(Strategy::Overlay)).unwrap_err();
    assert!(matches!(err, SandboxError::RootMount { .. }), "{err:?}");
    let (_, outcome) = run_capture(&root(Strategy::Auto)).unwrap();
    assert_eq!(outcome.isolation.root, RootMode::Copy);
    assert_eq!(summary(&outcome.changes().unwrap()), ["+new"]);
}
