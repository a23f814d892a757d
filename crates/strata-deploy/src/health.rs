//! Health probes: an HTTP GET, a TCP connect or a command in the container, repeated until one
//! passes or the timeout runs out.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::config::{Health, Probe};
use crate::error::DeployError;
use crate::target::Target;

/// How long one probe attempt may take, at most.
const ATTEMPT: Duration = Duration::from_secs(2);
/// Pause between attempts.
const PAUSE: Duration = Duration::from_millis(100);

/// Probe until healthy or `health.timeout`; whether it passed. `ports` maps container ports to the
/// private host ports the container publishes.
pub fn wait_healthy(
    target: &dyn Target,
    deployment: &str,
    container: &str,
    health: &Health,
    ports: &[(u16, u16)],
) -> Result<bool, DeployError> {
    let deadline = Instant::now() + health.timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let attempt = left.min(ATTEMPT).max(Duration::from_millis(50));
        let ok = match &health.probe {
            Probe::Http { path, port } => {
                host_port(ports, *port).is_some_and(|p| http_ok(p, path, attempt))
            }
            Probe::Tcp { port } => host_port(ports, *port).is_some_and(|p| {
                TcpStream::connect_timeout(&SocketAddr::from(([127, 0, 0, 1], p)), attempt).is_ok()
            }),
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

fn host_port(ports: &[(u16, u16)], container: u16) -> Option<u16> {
    ports.iter().find(|(c, _)| *c == container).map(|(_, h)| *h)
}

/// `GET path` on 127.0.0.1:port answers 2xx or 3xx within `timeout`.
pub fn http_ok(port: u16, path: &str, timeout: Duration) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, timeout) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(timeout));
    let _ = stream.set_write_timeout(Some(timeout));
    let request =
        format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
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
