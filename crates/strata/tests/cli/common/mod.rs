//! Helpers shared by the CLI's integration-test binaries (each `tests/*.rs` that needs one says
//! `mod common;`). Not every binary uses every helper.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

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
