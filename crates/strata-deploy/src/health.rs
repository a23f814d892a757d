//! Health probes: an HTTP GET, a TCP connect or a command in the container, repeated until one
//! passes or the timeout runs out.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use crate::config::{Health, Probe};
use crate::error::DeployError;
use crate::proxy::connect;
use crate::target::Target;

/// How long one probe attempt may take, at most.
const ATTEMPT: Duration = Duration::from_secs(2);
/// Pause between attempts.
const PAUSE: Duration = Duration::from_millis(100);

/// Probe until healthy or `health.timeout`; whether it passed. `ports` maps container ports to
/// their endpoints ([`crate::proxy::Endpoint`]).
pub fn wait_healthy(
    target: &dyn Target,
    deployment: &str,
    container: &str,
    health: &Health,
    ports: &[(u16, String)],
) -> Result<bool, DeployError> {
    let deadline = Instant::now() + health.timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let attempt = left.min(ATTEMPT).max(Duration::from_millis(50));
        let ok = match &health.probe {
            Probe::Http { path, port } => {
                endpoint(ports, *port).is_some_and(|e| http_ok(e, path, attempt))
            }
            Probe::Tcp { port } => {
                endpoint(ports, *port).is_some_and(|e| connect(e, attempt).is_ok())
            }
            Probe::Exec { command } => target.exec(deployment, container, command)?,
        };
        if ok {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        std::thread::sleep(PAUSE.min(deadline.saturating_duration_since(Instant::now())));
    }
}

fn endpoint(ports: &[(u16, String)], container: u16) -> Option<&str> {
    ports
        .iter()
        .find(|(c, _)| *c == container)
        .map(|(_, e)| e.as_str())
}

/// `GET path` on an endpoint answers 2xx or 3xx within `timeout`.
pub fn http_ok(endpoint: &str, path: &str, timeout: Duration) -> bool {
    let Ok(mut stream) = connect(endpoint, timeout) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(timeout));
    let _ = stream.set_write_timeout(Some(timeout));
    let request = format!("GET {path} HTTP/1.0\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    let mut got = 0;
    while got < head.len() {
        match stream.read(&mut head[got..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    let line = String::from_utf8_lossy(&head[..got]);
    line.starts_with("HTTP/")
        && line
            .split_whitespace()
            .nth(1)
            .is_some_and(|code| code.starts_with('2') || code.starts_with('3'))
}
