//! What a hostile command cannot reach (issue 13): device nodes shipped in a layer, the host's
//! network, raw sockets, io_uring, and the machine's process table (a fork bomb). These need root
//! (overlayfs, namespaces, cgroups); outside CI they are skipped when not root, under `CI=true`
//! they must run.

#![allow(clippy::print_stderr, clippy::print_stdout)]

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use strata_sandbox::{
    Cancel, ExtraMount, Network, RootFs, SandboxError, SandboxSpec, Strategy, Stream, run,
};

const NETWORKS: [Network; 3] = [Network::Private, Network::Host, Network::None];

/// A temp dir with `lower` (busybox), `upper`, `work`; None when skipped.
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Option<Fixture> {
        if !strata_testutil::is_root() {
            assert!(
                !strata_testutil::in_ci(),
                "the sandbox tests need root under CI"
            );
            eprintln!("skipping: the sandbox tests need root");
            return None;
        }
        // The default network needs slirp4netns (scripts/install-test-deps installs it).
        strata_testutil::require_tool("slirp4netns")?;
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

    fn reset(&self) {
        for d in ["upper", "work"] {
            let _ = fs::remove_dir_all(self.path(d));
        }
    }
}

/// Run and collect stdout and stderr together.
fn run_capture(spec: &SandboxSpec) -> Result<String, SandboxError> {
    let out = Arc::new(Mutex::new(Vec::new()));
    let sink = out.clone();
    let mut output = move |_: Stream, bytes: &[u8]| sink.lock().unwrap().extend_from_slice(bytes);
    run(spec, &mut output, &Cancel::new())?;
    let text = String::from_utf8_lossy(&out.lock().unwrap()).into_owned();
    Ok(text)
}

fn mknod(path: &Path, kind: libc::mode_t, major: u32, minor: u32) {
    nix::sys::stat::mknod(
        path,
        nix::sys::stat::SFlag::from_bits_truncate(kind),
        nix::sys::stat::Mode::from_bits_truncate(0o666),
        nix::sys::stat::makedev(major.into(), minor.into()),
    )
    .unwrap();
}

/// The device nodes a hostile base ships: a loop device (the host's disk behind it), fuse, mem.
const DEVICES: [&str; 3] = ["/loop0", "/tmp/fuse", "/mem"];

fn make_devices(root: &Path) {
    mknod(&root.join("loop0"), libc::S_IFBLK, 7, 0);
    mknod(&root.join("tmp/fuse"), libc::S_IFCHR, 10, 229);
    mknod(&root.join("mem"), libc::S_IFCHR, 1, 1);
}

/// Open each device for reading, then for reading and writing (never writing a byte): prints
/// `OPENED <path>` for each that opens, `KEPT` when the nodes are still there, and whether the
/// sandbox's own /dev/null still works.
fn device_script(devices: &[&str]) -> String {
    let list = devices.join(" ");
    format!(
        "for d in {list}; do \
           (exec 3<$d) 2>/dev/null && echo OPENED $d; \
           (exec 3<>$d) 2>/dev/null && echo OPENED_RW $d; \
         done; \
         test -b /loop0 && test -c /mem && echo KEPT; \
         echo x > /dev/null && head -c 4 /dev/zero | wc -c; \
         busybox mknod /tmp/newloop b 7 0 2>/dev/null && echo MKNOD; true"
    )
}

// See issue 13: "Device nodes in an image are live."
#[test]
fn device_nodes_in_a_layer_cannot_be_opened_whatever_the_network_or_root() {
    let Some(fx) = Fixture::new() else { return };
    make_devices(&fx.path("lower"));
    let expected = "KEPT\n4\n";
    for network in NETWORKS {
        fx.reset();
        let mut spec = fx.spec(&device_script(&DEVICES));
        spec.network = network;
        assert_eq!(run_capture(&spec).unwrap(), expected, "{network:?}");
    }
    // The private-copy fallback, and a directory used in place.
    fx.reset();
    let mut spec = fx.spec(&device_script(&DEVICES));
    spec.strategy = Strategy::Copy;
    assert_eq!(run_capture(&spec).unwrap(), expected, "copy");
    let mut spec = fx.spec(&device_script(&DEVICES));
    spec.rootfs = RootFs::Dir(fx.path("lower"));
    assert_eq!(run_capture(&spec).unwrap(), expected, "directory root");
    // The nodes stay in the image.
    use std::os::unix::fs::FileTypeExt;
    assert!(
        fs::symlink_metadata(fx.path("lower/loop0"))
            .unwrap()
            .file_type()
            .is_block_device()
    );
}

#[test]
fn device_nodes_in_bind_and_cache_mounts_cannot_be_opened() {
    let Some(fx) = Fixture::new() else { return };
    let (rw, ro, cache) = (fx.path("rw"), fx.path("ro"), fx.path("cache"));
    for d in [&rw, &ro, &cache] {
        fs::create_dir(d).unwrap();
        mknod(&d.join("loop0"), libc::S_IFBLK, 7, 0);
    }
    let mut spec = fx.spec(
        "for d in /rw/loop0 /ro/loop0 /cache/loop0; do \
           test -b $d || echo MISSING $d; (exec 3<$d) 2>/dev/null && echo OPENED $d; \
         done; echo done",
    );
    spec.mounts = vec![
        ExtraMount::Bind {
            source: rw,
            target: "/rw".into(),
            readonly: false,
        },
        ExtraMount::Bind {
            source: ro,
            target: "/ro".into(),
            readonly: true,
        },
        ExtraMount::Cache {
            dir: cache,
            target: "/cache".into(),
        },
    ];
    assert_eq!(run_capture(&spec).unwrap(), "done\n");
}

/// The name of the run's cgroup in `controller` (v1), from a `/proc/<pid>/cgroup` text.
fn cgroup_of(text: &str, controller: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let mut parts = l.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        controllers
            .split(',')
            .any(|c| c == controller)
            .then(|| path.to_string())
    })
}

#[test]
fn a_v1_device_cgroup_allows_only_the_default_list_and_goes_away() {
    let Some(fx) = Fixture::new() else { return };
    let devices = Path::new("/sys/fs/cgroup/devices");
    if !devices.join("devices.list").exists() {
        eprintln!("skipping: no cgroup v1 devices hierarchy here (nodev is the defence)");
        return;
    }
    // The step prints its cgroups and waits; the test reads the device list while it runs,
    // then cancels it.
    let spec = fx.spec("cat /proc/self/cgroup; echo READY; sleep 600");
    let cancel = Cancel::new();
    let trigger = cancel.clone();
    // (output so far, the step's devices cgroup, its devices.list)
    let seen: Arc<Mutex<(String, Option<String>, String)>> = Arc::default();
    let sink = seen.clone();
    let mut reading = move |_: Stream, bytes: &[u8]| {
        let mut seen = sink.lock().unwrap();
        seen.0.push_str(&String::from_utf8_lossy(bytes));
        if seen.0.contains("READY") && seen.1.is_none() {
            let path = cgroup_of(&seen.0, "devices").unwrap_or_default();
            let file = devices
                .join(path.trim_start_matches('/'))
                .join("devices.list");
            seen.2 = fs::read_to_string(file).unwrap_or_default();
            seen.1 = Some(path);
            trigger.cancel();
        }
    };
    let err = run(&spec, &mut reading, &cancel).unwrap_err();
    assert!(matches!(err, SandboxError::Cancelled { .. }), "{err:?}");
    let (_, path, list) = seen.lock().unwrap().clone();
    let path = path.unwrap();
    assert!(
        path.contains("strata-step-"),
        "not in a step cgroup: {path}"
    );
    let mut rules: Vec<String> = list.lines().map(String::from).collect();
    rules.sort();
    let mut want: Vec<String> = strata_sandbox::DEVICE_ALLOW
        .iter()
        .map(|r| r.to_string())
        .collect();
    want.sort();
    assert_eq!(rules, want);
    assert!(
        !devices.join(path.trim_start_matches('/')).exists(),
        "the step's cgroup was left behind"
    );
}

/// A TCP listener on the host's 127.0.0.1 that counts the connections it accepts (and closes
/// each at once).
struct HostListener {
    port: u16,
    accepted: Arc<std::sync::atomic::AtomicUsize>,
}

impl HostListener {
    fn new() -> HostListener {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = accepted.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                drop(stream);
            }
        });
        HostListener { port, accepted }
    }

    fn port(&self) -> u16 {
        self.port
    }

    /// Whether anything connected.
    fn was_reached(&self) -> bool {
        self.accepted.load(std::sync::atomic::Ordering::SeqCst) > 0
    }
}

// See issue 13: "The default RUN / `strata run` network is the host's."
#[test]
fn the_default_network_cannot_reach_the_hosts_loopback() {
    let Some(fx) = Fixture::new() else { return };
    let host = HostListener::new();
    let port = host.port();
    let spec = fx.spec(&format!(
        "busybox nc -w 5 127.0.0.1 {port} </dev/null 2>/dev/null && echo REACHED_LO; \
         busybox nc -w 5 10.0.2.2 {port} </dev/null 2>/dev/null && echo REACHED_GW; \
         cat /etc/resolv.conf | grep nameserver; \
         grep -c tap0 /proc/net/dev; true"
    ));
    let out = run_capture(&spec).unwrap();
    assert_eq!(out, "nameserver 10.0.2.3\n1\n");
    assert!(!host.was_reached(), "a step reached the host's 127.0.0.1");
    // The explicit opt-in still does.
    fx.reset();
    let mut spec = fx.spec(&format!(
        "echo hi | busybox nc -w 5 127.0.0.1 {port} >/dev/null && echo REACHED_LO"
    ));
    spec.network = Network::Host;
    assert_eq!(run_capture(&spec).unwrap(), "REACHED_LO\n");
    assert!(host.was_reached());
}

#[test]
fn no_network_mode_opens_raw_sockets() {
    let Some(fx) = Fixture::new() else { return };
    // arping needs an AF_PACKET socket and traceroute a raw one: both need CAP_NET_RAW.
    for network in NETWORKS {
        fx.reset();
        let mut spec = fx.spec(
            "grep CapBnd /proc/self/status; \
             busybox arping -c 1 -w 1 -I lo 127.0.0.1 >/dev/null 2>&1 && echo RAW_PACKET; \
             busybox traceroute -m 1 -w 1 127.0.0.1 >/dev/null 2>&1 && echo RAW_IP; true",
        );
        spec.network = network;
        let out = run_capture(&spec).unwrap();
        assert!(
            !out.contains("RAW_"),
            "{network:?}: a raw socket opened: {out}"
        );
        let mask = out
            .trim()
            .strip_prefix("CapBnd:\t")
            .unwrap_or_else(|| panic!("{network:?}: {out}"));
        let caps = u64::from_str_radix(mask, 16).unwrap();
        assert_eq!(caps & (1 << 13), 0, "{network:?}: CAP_NET_RAW kept");
    }
}

/// A network namespace with a veth pair to the host and a busybox httpd inside: a stand-in for
/// a package mirror. Removed on drop (also when the test fails).
struct Mirror {
    netns: String,
    veth: String,
    server: Option<Child>,
    address: String,
    _root: tempfile::TempDir,
}

impl Mirror {
    fn start() -> Option<Mirror> {
        let ip = strata_testutil::require_tool("ip")?;
        let busybox = strata_testutil::require_tool("busybox")?;
        let id = std::process::id();
        // 10.254.N.0/30 per test process, so parallel test runs do not collide.
        let n = 1 + id % 250;
        let mut mirror = Mirror {
            netns: format!("strata-mirror-{id}"),
            veth: format!("smv{}", id % 100_000),
            server: None,
            address: format!("10.254.{n}.2"),
            _root: tempfile::tempdir().unwrap(),
        };
        let peer = format!("{}p", mirror.veth);
        let run = |args: &[&str]| {
            strata_testutil::run_ok(Command::new(&ip).args(args));
        };
        run(&["netns", "add", &mirror.netns]);
        run(&[
            "link",
            "add",
            &mirror.veth,
            "type",
            "veth",
            "peer",
            "name",
            &peer,
        ]);
        run(&["link", "set", &peer, "netns", &mirror.netns]);
        run(&[
            "addr",
            "add",
            &format!("10.254.{n}.1/30"),
            "dev",
            &mirror.veth,
        ]);
        run(&["link", "set", &mirror.veth, "up"]);
        let inside = |args: &[&str]| {
            let mut all = vec!["netns", "exec", &mirror.netns, "ip"];
            all.extend_from_slice(args);
            strata_testutil::run_ok(Command::new(&ip).args(&all));
        };
        inside(&["addr", "add", &format!("10.254.{n}.2/30"), "dev", &peer]);
        inside(&["link", "set", &peer, "up"]);
        inside(&["link", "set", "lo", "up"]);
        let www = mirror._root.path();
        fs::write(www.join("index.html"), "mirror says hi\n").unwrap();
        mirror.server = Some(
            Command::new(&ip)
                .args(["netns", "exec", &mirror.netns])
                .arg(&busybox)
                .args(["httpd", "-f", "-p"])
                .arg(format!("{}:8080", mirror.address))
                .arg("-h")
                .arg(www)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        // Ready when it accepts a connection (from the host, through the veth).
        let deadline = Instant::now() + Duration::from_secs(30);
        let addr: std::net::SocketAddr = format!("{}:8080", mirror.address).parse().unwrap();
        while std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err() {
            assert!(Instant::now() < deadline, "the mirror never came up");
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(mirror)
    }
}

impl Drop for Mirror {
    fn drop(&mut self) {
        if let Some(mut server) = self.server.take() {
            let _ = server.kill();
            let _ = server.wait();
        }
        // Deleting the namespace deletes the veth pair with it; the host end too, to be sure.
        let _ = Command::new("ip")
            .args(["link", "del", &self.veth])
            .stderr(Stdio::null())
            .status();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.netns])
            .status();
    }
}

#[test]
fn the_default_network_reaches_a_mirror_in_another_namespace() {
    let Some(fx) = Fixture::new() else { return };
    let Some(mirror) = Mirror::start() else {
        return;
    };
    // A plain HTTP request through nc (the static busybox's wget needs the C library's NSS).
    let get = format!(
        "printf 'GET /index.html HTTP/1.0\\r\\n\\r\\n' | busybox nc -w 20 {} 8080",
        mirror.address
    );
    let out = run_capture(&fx.spec(&get)).unwrap();
    assert!(
        out.starts_with("HTTP/1.") && out.ends_with("\r\n\r\nmirror says hi\n"),
        "{out:?}"
    );
    // With no network it cannot.
    fx.reset();
    let mut spec = fx.spec(&format!("{get} 2>/dev/null || echo UNREACHABLE"));
    spec.network = Network::None;
    assert_eq!(run_capture(&spec).unwrap(), "UNREACHABLE\n");
}

#[test]
fn a_missing_slirp4netns_fails_with_one_clear_line() {
    const INNER: &str = "STRATA_SANDBOX_NO_SLIRP_LOWER";
    if let Some(lower) = std::env::var_os(INNER) {
        // Re-run with a PATH without slirp4netns, over the outer run's busybox root.
        let lower = PathBuf::from(lower);
        let t = tempfile::tempdir().unwrap();
        let spec = |script: &str| {
            SandboxSpec::new(
                RootFs::Overlay {
                    lowers: vec![lower.clone()],
                    upper: t.path().join(format!("upper-{}", script.len())),
                    work: t.path().join(format!("work-{}", script.len())),
                },
                vec!["sh".into(), "-c".into(), script.into()],
            )
        };
        let err = run_capture(&spec("true")).unwrap_err();
        assert!(matches!(err, SandboxError::NoSlirp), "{err:?}");
        assert_eq!(
            err.to_string(),
            "the default network needs slirp4netns (Debian package slirp4netns); \
             or use --network none|host"
        );
        let mut spec = spec("echo fine");
        spec.network = Network::None;
        assert_eq!(run_capture(&spec).unwrap(), "fine\n");
        return;
    }
    let Some(fx) = Fixture::new() else { return };
    let empty = tempfile::tempdir().unwrap();
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "a_missing_slirp4netns_fails_with_one_clear_line"])
        .env(INNER, fx.path("lower"))
        .env("PATH", empty.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("1 passed"),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn io_uring_setup_fails_with_eperm_in_a_step() {
    const INNER: &str = "STRATA_SANDBOX_IO_URING_PROBE";
    if std::env::var_os(INNER).is_some() {
        // Inside the sandbox: io_uring_setup(1, params) and report the errno.
        let mut params = [0u8; 120];
        // SAFETY: io_uring_setup with a zeroed io_uring_params of the kernel's size.
        let r = unsafe { libc::syscall(libc::SYS_io_uring_setup, 1, params.as_mut_ptr()) };
        let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
        println!("IO_URING {r} {errno}");
        return;
    }
    let Some(fx) = Fixture::new() else { return };
    // This test binary, with the host's libraries, bound into the busybox root.
    let exe = std::env::current_exe().unwrap();
    let mut mounts = vec![ExtraMount::Bind {
        source: exe,
        target: "/probe".into(),
        readonly: true,
    }];
    for lib in ["/usr/lib", "/usr/lib64", "/lib", "/lib64"] {
        let p = Path::new(lib);
        if p.is_dir() && !fs::symlink_metadata(p).unwrap().file_type().is_symlink() {
            mounts.push(ExtraMount::Bind {
                source: p.into(),
                target: lib.into(),
                readonly: true,
            });
        }
    }
    for (link, target) in [("lib", "usr/lib"), ("lib64", "usr/lib64")] {
        let l = fx.path("lower").join(link);
        if Path::new("/").join(link).is_symlink() && !l.exists() {
            std::os::unix::fs::symlink(target, l).unwrap();
        }
    }
    let mut spec = fx.spec("unused");
    spec.argv = vec![
        "/probe".into(),
        "--exact".into(),
        "io_uring_setup_fails_with_eperm_in_a_step".into(),
        "--nocapture".into(),
        "--test-threads=1".into(),
    ];
    spec.env = vec![(INNER.into(), "1".into())];
    spec.mounts = mounts;
    let out = run_capture(&spec).unwrap();
    let line = out
        .lines()
        .find_map(|l| l.find("IO_URING ").map(|at| &l[at..]))
        .unwrap_or_else(|| panic!("no probe output: {out}"));
    assert_eq!(line, format!("IO_URING -1 {}", libc::EPERM));
    // Outside the sandbox the kernel has it (else this proves nothing).
    let mut params = [0u8; 120];
    // SAFETY: as above; the returned descriptor is closed.
    let r = unsafe { libc::syscall(libc::SYS_io_uring_setup, 1, params.as_mut_ptr()) };
    if r >= 0 {
        // SAFETY: closing the ring descriptor just made.
        unsafe { libc::close(r as libc::c_int) };
    } else {
        eprintln!(
            "note: io_uring is unavailable on this host too ({})",
            std::io::Error::last_os_error()
        );
    }
}

/// The step cgroups named in a `/proc/self/cgroup` text that still exist on the host.
fn leftover_step_cgroups(cgroup_text: &str) -> Vec<PathBuf> {
    let mut left = Vec::new();
    for (controller, root) in [
        ("pids", "/sys/fs/cgroup/pids"),
        ("devices", "/sys/fs/cgroup/devices"),
        ("", "/sys/fs/cgroup"),
    ] {
        if let Some(path) = cgroup_of(cgroup_text, controller)
            && path.contains("strata-step-")
        {
            let dir = Path::new(root).join(path.trim_start_matches('/'));
            if dir.exists() {
                left.push(dir);
            }
        }
    }
    left
}

fn has_pids_controller() -> bool {
    Path::new("/sys/fs/cgroup/pids/cgroup.procs").exists()
        || fs::read_to_string("/sys/fs/cgroup/cgroup.controllers")
            .is_ok_and(|c| c.split_whitespace().any(|w| w == "pids"))
}

#[test]
fn a_fork_bomb_under_the_pids_limit_fails_the_run_cleanly() {
    let Some(fx) = Fixture::new() else { return };
    if !has_pids_controller() {
        assert!(
            !strata_testutil::in_ci(),
            "CI needs a pids cgroup controller"
        );
        eprintln!("skipping: no pids cgroup controller here");
        return;
    }
    // A binary tree of shells 9 deep (at most ~1000 processes even unlimited), each leaf gone
    // after 3 seconds: bounded, so a broken limit cannot take the machine down.
    let mut spec = fx.spec(
        "cat /proc/self/cgroup; \
         b() { if [ $1 -gt 0 ]; then b $(($1-1)) & b $(($1-1)) & wait; else sleep 3; fi; }; \
         b 9; echo SURVIVED",
    );
    spec.pids_limit = Some(64);
    let started = Instant::now();
    let out = Arc::new(Mutex::new(Vec::new()));
    let sink = out.clone();
    let mut output = move |_: Stream, bytes: &[u8]| sink.lock().unwrap().extend_from_slice(bytes);
    let err = run(&spec, &mut output, &Cancel::new()).unwrap_err();
    let SandboxError::PidsLimit { limit, .. } = &err else {
        panic!("expected the pids limit, got {err:?}")
    };
    assert_eq!(*limit, 64);
    assert!(
        err.to_string()
            .contains("reached its limit of 64 processes"),
        "{err}"
    );
    eprintln!("the bomb ended after {:?}", started.elapsed());
    let text = String::from_utf8_lossy(&out.lock().unwrap()).into_owned();
    assert!(text.contains("strata-step-"), "{text}");
    assert!(
        leftover_step_cgroups(&text).is_empty(),
        "{:?}",
        leftover_step_cgroups(&text)
    );
    // An ordinary step with more processes than that runs under the default limit.
    fx.reset();
    let spec = fx.spec(
        "cat /proc/self/cgroup; i=0; while [ $i -lt 100 ]; do sleep 1 & i=$((i+1)); done; \
         wait; echo ok",
    );
    let out = run_capture(&spec).unwrap();
    assert!(out.ends_with("\nok\n"), "{out}");
    assert!(leftover_step_cgroups(&out).is_empty());
}

#[test]
fn a_step_runs_in_its_own_pids_cgroup_with_the_limit() {
    let Some(fx) = Fixture::new() else { return };
    if !Path::new("/sys/fs/cgroup/pids/cgroup.procs").exists() {
        eprintln!("skipping: no cgroup v1 pids hierarchy here");
        return;
    }
    let mut spec = fx.spec("cat /proc/self/cgroup");
    spec.pids_limit = Some(300);
    let out = run_capture(&spec).unwrap();
    let path = cgroup_of(&out, "pids").unwrap();
    assert!(path.contains("strata-step-"), "{out}");
    assert!(
        !Path::new("/sys/fs/cgroup/pids")
            .join(path.trim_start_matches('/'))
            .exists(),
        "the step's cgroup was left behind"
    );
}

/// A tmpfs at `path` (created), for the test's own mounts; unmounted on drop.
struct OwnMount(PathBuf);

impl OwnMount {
    fn tmpfs(path: &Path) -> OwnMount {
        fs::create_dir_all(path).unwrap();
        nix::mount::mount(
            Some("strata-test"),
            path,
            Some("tmpfs"),
            nix::mount::MsFlags::empty(),
            Some("size=64k"),
        )
        .unwrap();
        OwnMount(path.to_path_buf())
    }

    fn make_shared(&self) {
        nix::mount::mount(
            None::<&str>,
            &self.0,
            None::<&str>,
            nix::mount::MsFlags::MS_SHARED,
            None::<&str>,
        )
        .unwrap();
    }

    /// Still a mount point: on another device than its parent directory.
    fn is_mounted(&self) -> bool {
        use std::os::unix::fs::MetadataExt;
        let here = fs::metadata(&self.0).map(|m| m.dev());
        let parent = fs::metadata(self.0.parent().unwrap()).map(|m| m.dev());
        matches!((here, parent), (Ok(a), Ok(b)) if a != b)
    }
}

impl Drop for OwnMount {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
    }
}

// A run on the default network unmounted the host's mounts under any shared mount (podman's
// `/run/netns/*` among them): slirp4netns's `--enable-sandbox` makes only `/` private before it
// pivots and lazily unmounts the old root, and the unmounts propagated to the host's peers.
#[test]
fn the_default_network_unmounts_nothing_on_the_host() {
    let Some(fx) = Fixture::new() else { return };
    let parent = OwnMount::tmpfs(&fx.path("shared"));
    parent.make_shared();
    let child = OwnMount::tmpfs(&fx.path("shared/child"));
    assert!(child.is_mounted());
    let mut spec = fx.spec("ip -o link show tap0 >/dev/null && echo UP");
    spec.network = Network::Private;
    assert_eq!(run_capture(&spec).unwrap(), "UP\n");
    assert!(
        child.is_mounted(),
        "the run unmounted {} on the host",
        child.0.display()
    );
    drop(child);
    drop(parent);
}
