//! Helpers shared by the CLI's integration-test binaries (each `tests/*.rs` that needs one says
//! `mod common;`). Not every binary uses every helper.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// `strata serve` as a child process, killed on drop.
pub struct Serve {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub host: String,
}

impl Serve {
    /// Start `strata serve --listen 127.0.0.1:0` on `store`, with extra args.
    pub fn start(store: &Path, extra: &[&str]) -> Serve {
        Serve::start_with_env(store, extra, &[])
    }

    /// [`Serve::start`] with extra environment variables.
    pub fn start_with_env(store: &Path, extra: &[&str], env: &[(&str, &str)]) -> Serve {
        let mut command = Command::new(assert_cmd::cargo::cargo_bin!("strata"));
        command
            .envs(env.iter().copied())
            .env_remove("STRATA_STORE")
            .env_remove("STRATA_CHAIN")
            .arg("--store")
            .arg(store);
        Serve::spawn(command, extra)
    }

    /// Start `serve --listen 127.0.0.1:0` with extra args from `command`: the strata binary with
    /// its global options and environment set (a store, or a project's `-C DIR`).
    pub fn spawn(mut command: Command, extra: &[&str]) -> Serve {
        let mut child = command
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        stderr.read_line(&mut line).unwrap();
        let host = line
            .trim()
            .rsplit("://")
            .next()
            .unwrap_or_else(|| panic!("unexpected serve output {line:?}"))
            .to_string();
        assert!(host.starts_with("127.0.0.1:"), "serve said {line:?}");
        // Keep draining stderr so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut sink = String::new();
            while stderr.read_line(&mut sink).unwrap_or(0) > 0 {
                sink.clear();
            }
        });
        Serve { child, host }
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.host
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in {}", self.host))
    }

    /// `http://127.0.0.1:PORT` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.host)
    }

    /// The server's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The server's (current RSS, peak RSS) in KiB, from /proc.
    pub fn rss_kib(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
                .unwrap()
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    /// The server's exit status once it has exited (it is reaped then), None while it runs.
    pub fn try_status(&mut self) -> Option<std::process::ExitStatus> {
        // A server that died is reaped here; one that is exiting is waited for.
        self.child.try_wait().unwrap()
    }

    /// Wait for the server to exit (after the test signalled it).
    pub fn wait(&mut self) -> std::process::ExitStatus {
        self.child.wait().unwrap()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How long a watch may take to react before the test gives up (not a timing assertion: a
/// bound on a wait for a signal the watch prints).
pub const PATIENCE: Duration = Duration::from_secs(300);

/// `strata -C DIR ARGS` with nothing from the environment but `keys` (`STRATA_KEY_<TEAM>`).
pub fn strata(dir: &Path, keys: &[(&str, &Path)]) -> Command {
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin!("strata"));
    cmd.env_remove("STRATA_STORE")
        .env_remove("STRATA_CHAIN")
        .env_remove("STRATA_DEPLOY_FILE")
        .env_remove("RUST_LOG")
        .env("HOME", dir)
        .arg("-C")
        .arg(dir);
    for team in ["OPERATIONS", "MIDDLEWARE", "DEVELOPMENT"] {
        cmd.env_remove(format!("STRATA_KEY_{team}"));
    }
    for (team, key) in keys {
        cmd.env(format!("STRATA_KEY_{}", team.to_uppercase()), key);
    }
    cmd
}

/// Run `cmd`; its stdout, or a panic with both outputs when it fails.
pub fn ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `git -C DIR ARGS` (with an identity for commits), its stdout.
pub fn git(dir: &Path, args: &[&str]) -> String {
    ok(Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=mid", "-c", "user.email=mid@localhost"])
        .args(args))
}

/// A `strata watch` process whose stderr lines the test reads as its signals.
pub struct Watch {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
    name: &'static str,
}

impl Watch {
    /// Spawn `cmd watch --interval 1s --commit`.
    pub fn start(name: &'static str, mut cmd: Command) -> Watch {
        let mut child = cmd
            .args(["watch", "--interval", "1s", "--commit"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = BufReader::new(child.stderr.take().unwrap());
        let (send, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in stderr.lines() {
                let Ok(line) = line else { break };
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        Watch {
            child,
            lines,
            seen: Vec::new(),
            name,
        }
    }

    /// Read lines until one satisfies `wanted`; the lines read, that one last.
    #[allow(clippy::print_stderr)]
    pub fn until(&mut self, what: &str, wanted: impl Fn(&str) -> bool) -> Vec<String> {
        let give_up = Instant::now() + PATIENCE;
        let mut read = Vec::new();
        loop {
            let left = give_up.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    eprintln!("[{} watch] {line}", self.name);
                    self.seen.push(line.clone());
                    read.push(line.clone());
                    if wanted(&line) {
                        return read;
                    }
                }
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => panic!(
                    "{} watch: no {what}; it said:\n{}",
                    self.name,
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// SIGTERM, and the exit status is success.
    pub fn stop(mut self) {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
        assert!(self.child.wait().unwrap().success(), "{} watch", self.name);
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free TCP port on loopback (bound then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `GET PATH` on `127.0.0.1:PORT`: the body of a 200, trimmed, or why not.
pub fn http_get(port: u16, path: &str) -> Result<String, String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").map_err(|e| e.to_string())?;
    let mut body = String::new();
    s.read_to_string(&mut body).map_err(|e| e.to_string())?;
    if !body.starts_with("HTTP/1.") || !body.contains(" 200 ") {
        return Err(format!("not a 200: {body:?}"));
    }
    Ok(body
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .trim()
        .to_string())
}

/// A `Vec<u8>` as a blob to push.
struct Bytes(Vec<u8>);

impl strata_remote::client::BlobSource for Bytes {
    fn open_at(&self, offset: u64) -> strata_remote::Result<Box<dyn Read + '_>> {
        let start = usize::try_from(offset).unwrap().min(self.0.len());
        Ok(Box::new(&self.0[start..]))
    }
}

/// Push a cosign signature of `digest` (made with openssl and `key`, its files written in `dir`) to
/// the tag `sha256-HEX.sig` of `image` (`HOST/REPOSITORY`), its payload naming `image` and
/// `signed_digest`, as `cosign sign --key` would.
pub fn push_cosign_signature(
    dir: &Path,
    image: &str,
    digest: &str,
    signed_digest: &str,
    key: &Path,
) {
    let payload = serde_json::to_vec(&serde_json::json!({
        "critical": {
            "identity": {"docker-reference": image},
            "image": {"docker-manifest-digest": signed_digest},
            "type": "cosign container image signature",
        },
        "optional": null,
    }))
    .unwrap();
    let payload_file = dir.join("payload.json");
    std::fs::write(&payload_file, &payload).unwrap();
    let signature_file = dir.join("signature.der");
    strata_testutil::run_ok(
        Command::new("openssl")
            .args(["dgst", "-sha256", "-sign"])
            .arg(key)
            .arg("-out")
            .arg(&signature_file)
            .arg(&payload_file),
    );
    let signature = strata_testutil::run_ok(
        Command::new("openssl")
            .args(["base64", "-A", "-in"])
            .arg(&signature_file),
    )
    .trim()
    .to_string();
    let config =
        br#"{"architecture":"","os":"","config":{},"rootfs":{"type":"layers","diff_ids":[]}}"#
            .to_vec();
    let sha = |b: &[u8]| strata_oci::Digest::of(b);
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": sha(&config).to_string(),
            "size": config.len(),
        },
        "layers": [{
            "mediaType": "application/vnd.dev.cosign.simplesigning.v1+json",
            "digest": sha(&payload).to_string(),
            "size": payload.len(),
            "annotations": {"dev.cosignproject.cosign/signature": signature},
        }],
    }))
    .unwrap();
    let client = strata_remote::Client::new(strata_remote::ClientOptions::default()).unwrap();
    let tag = digest.replace(':', "-") + ".sig";
    let r = strata_remote::RemoteRef::parse(&format!("{image}:{tag}")).unwrap();
    for blob in [config, payload] {
        client
            .push_blob(
                &r,
                &sha(&blob),
                blob.len() as u64,
                &Bytes(blob.clone()),
                None,
            )
            .unwrap();
    }
    client
        .put_manifest(&r, &manifest, "application/vnd.oci.image.manifest.v1+json")
        .unwrap();
}

/// An openssl P-256 key pair: the private key file, and the public one (cosign's `cosign.pub`).
pub fn openssl_key(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let private = dir.join(format!("{name}.key"));
    let public = dir.join(format!("{name}.pub"));
    strata_testutil::run_ok(
        Command::new("openssl")
            .args([
                "ecparam",
                "-name",
                "prime256v1",
                "-genkey",
                "-noout",
                "-out",
            ])
            .arg(&private),
    );
    strata_testutil::run_ok(
        Command::new("openssl")
            .args(["ec", "-pubout", "-in"])
            .arg(&private)
            .arg("-out")
            .arg(&public),
    );
    (private, public)
}

/// `strata ARGS` run in a project directory (its `strata.toml` and store), with the
/// `STRATA_*` settings of the environment removed: the helpers the project tests share.
pub mod project {
    use std::path::Path;
    use std::process::Output;

    use serde_json::Value;

    /// `strata ARGS` in `dir`; its output, whatever the exit status.
    pub fn run(dir: &Path, args: &[&str]) -> Output {
        assert_cmd::cargo::cargo_bin_cmd!("strata")
            .current_dir(dir)
            .env_remove("STRATA_STORE")
            .env_remove("STRATA_CHAIN")
            .env_remove("STRATA_DEPLOY_FILE")
            .env_remove("STRATA_KEY_OPERATIONS")
            .args(args)
            .output()
            .unwrap()
    }

    /// `strata ARGS` in `dir`, which must succeed; its stdout.
    pub fn ok(dir: &Path, args: &[&str]) -> String {
        let out = run(dir, args);
        assert!(
            out.status.success(),
            "strata {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// `strata ARGS` in `dir`, which must succeed; its stdout as JSON.
    pub fn json(dir: &Path, args: &[&str]) -> Value {
        serde_json::from_str(&ok(dir, args)).unwrap()
    }

    /// `strata ARGS` in `dir`, which must fail with one line on stderr; that line.
    pub fn fails(dir: &Path, args: &[&str]) -> String {
        let out = run(dir, args);
        assert!(!out.status.success(), "strata {args:?} succeeded");
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
        stderr
    }
}
