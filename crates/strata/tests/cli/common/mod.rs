//! Helpers shared by the CLI's integration-test binaries (each `tests/*.rs` that needs one says
//! `mod common;`). Not every binary uses every helper.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
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
        let mut child = Command::new(assert_cmd::cargo::cargo_bin!("strata"))
            .envs(env.iter().copied())
            .env_remove("STRATA_STORE")
            .env_remove("STRATA_CHAIN")
            .arg("--store")
            .arg(store)
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
