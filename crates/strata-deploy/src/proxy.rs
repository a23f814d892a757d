//! The front listener: it owns a deployment's public port and forwards each new connection to the
//! backend address written in a file, so a replace switches the file, not the port, and no
//! connection is refused meanwhile. Connections already open stay on the old backend until they
//! close (the drain); the old container is stopped after that, with its grace period.

use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Serve `listener` forever, forwarding each connection to the address in `backend_file`.
pub fn serve(listener: TcpListener, backend_file: &Path) -> io::Result<()> {
    let backend_file: Arc<Path> = Arc::from(backend_file);
    for client in listener.incoming() {
        let Ok(client) = client else { continue };
        let backend_file = backend_file.clone();
        std::thread::spawn(move || {
            let _ = forward(client, &backend_file);
        });
    }
    Ok(())
}

fn forward(client: TcpStream, backend_file: &Path) -> io::Result<()> {
    let backend = std::fs::read_to_string(backend_file)?;
    let server = connect(backend.trim(), Duration::from_secs(5))?;
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (mut c_read, mut s_write) = (client.try_clone()?, server.try_clone()?);
    let upstream = std::thread::spawn(move || {
        let _ = io::copy(&mut c_read, &mut s_write);
        let _ = s_write.shutdown(Shutdown::Write);
    });
    let (mut s_read, mut c_write) = (server, client);
    let _ = io::copy(&mut s_read, &mut c_write);
    let _ = c_write.shutdown(Shutdown::Write);
    let _ = upstream.join();
    Ok(())
}

/// Where a container port is reached: `127.0.0.1:PORT` (a port podman publishes on the host's
/// loopback) or `netns:PID:INODE:PORT` (the container has no host-visible network: the connection is
/// made from inside the network namespace of process PID, the container's first process, and only
/// while that namespace is still INODE: a pid reused by another process is refused, never followed
/// into the host's network).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// A loopback port of this machine.
    Host(u16),
    /// A port on the loopback of the network namespace of a process.
    Netns {
        /// The container's process.
        pid: u32,
        /// The inode of its network namespace when the container started.
        ns: u64,
        /// The container port.
        port: u16,
    },
}

impl Endpoint {
    /// Parse what `Endpoint`'s `Display` wrote.
    pub fn parse(text: &str) -> Option<Endpoint> {
        if let Some(rest) = text.strip_prefix("netns:") {
            let mut parts = rest.split(':');
            let (pid, ns, port) = (parts.next()?, parts.next()?, parts.next()?);
            if parts.next().is_some() {
                return None;
            }
            return Some(Endpoint::Netns {
                pid: pid.parse().ok()?,
                ns: ns.parse().ok()?,
                port: port.parse().ok()?,
            });
        }
        let port = text.strip_prefix("127.0.0.1:")?;
        Some(Endpoint::Host(port.parse().ok()?))
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Host(port) => write!(f, "127.0.0.1:{port}"),
            Endpoint::Netns { pid, ns, port } => write!(f, "netns:{pid}:{ns}:{port}"),
        }
    }
}

/// The inode of the network namespace of process `pid`.
pub fn netns_of(pid: u32) -> io::Result<u64> {
    Ok(std::fs::metadata(format!("/proc/{pid}/ns/net"))?.ino())
}

/// Connect to an endpoint (see [`Endpoint`]) within `timeout`.
pub fn connect(endpoint: &str, timeout: Duration) -> io::Result<TcpStream> {
    let bad = || {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("bad backend {endpoint:?}"),
        )
    };
    match Endpoint::parse(endpoint).ok_or_else(bad)? {
        Endpoint::Host(port) => {
            TcpStream::connect_timeout(&SocketAddr::from(([127, 0, 0, 1], port)), timeout)
        }
        Endpoint::Netns { pid, ns, port } => {
            let netns = std::fs::File::open(format!("/proc/{pid}/ns/net"))?;
            let found = netns.metadata()?.ino();
            if found != ns {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("process {pid} is no longer in the container's network namespace"),
                ));
            }
            // setns(2) changes the calling thread only: a thread of its own makes the socket
            // inside the container's namespace (a socket keeps the namespace it was made in).
            std::thread::spawn(move || {
                nix::sched::setns(&netns, nix::sched::CloneFlags::CLONE_NEWNET)
                    .map_err(io::Error::from)?;
                TcpStream::connect_timeout(&SocketAddr::from(([127, 0, 0, 1], port)), timeout)
            })
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("connect thread panicked")))
        }
    }
}

/// Wait until no established TCP connection goes to one of `endpoints` (the old container's, which
/// only the front listeners connect to), or `limit`.
pub fn drain(endpoints: &[String], limit: Duration) {
    let deadline = Instant::now() + limit;
    let endpoints: Vec<Endpoint> = endpoints
        .iter()
        .filter_map(|e| Endpoint::parse(e))
        .collect();
    while Instant::now() < deadline && endpoints.iter().any(|e| open_connections(*e) > 0) {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Established connections to an endpoint: from `/proc/net/tcp`, connections to 127.0.0.1:PORT;
/// from the container's `/proc/PID/net/tcp`, connections accepted on its PORT.
pub fn open_connections(endpoint: Endpoint) -> usize {
    let (table, column, port) = match endpoint {
        Endpoint::Host(port) => ("/proc/net/tcp".to_string(), 2, port),
        Endpoint::Netns { pid, ns, port } => {
            if netns_of(pid).ok() != Some(ns) {
                return 0;
            }
            (format!("/proc/{pid}/net/tcp"), 1, port)
        }
    };
    let Ok(table) = std::fs::read_to_string(table) else {
        return 0;
    };
    table
        .lines()
        .skip(1)
        .filter(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // sl local_address rem_address st ...: addresses are HEXIP:HEXPORT, st 01 established
            fields.len() > 3
                && fields[3] == "01"
                && fields[column].split_once(':').is_some_and(|(ip, p)| {
                    (column == 1 || ip == "0100007F")
                        && u16::from_str_radix(p, 16).is_ok_and(|p| p == port)
                })
        })
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_connections_counts_connections_to_a_port_until_they_close() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let host = Endpoint::Host(port);
        assert_eq!(open_connections(host), 0);
        let client = connect(&host.to_string(), Duration::from_secs(5)).unwrap();
        let (server, _) = listener.accept().unwrap();
        assert_eq!(open_connections(host), 1);
        // the same socket seen from the accepting side, in this process's own namespace
        let own = Endpoint::Netns {
            pid: std::process::id(),
            ns: netns_of(std::process::id()).unwrap(),
            port,
        };
        assert_eq!(open_connections(own), 1);
        drop(client);
        drop(server);
        drain(&[host.to_string()], Duration::from_secs(30));
        assert_eq!(open_connections(host), 0);
    }

    #[test]
    fn endpoints_round_trip_and_nonsense_is_refused() {
        for e in [
            Endpoint::Host(8080),
            Endpoint::Netns {
                pid: 42,
                ns: 4026531840,
                port: 80,
            },
        ] {
            assert_eq!(Endpoint::parse(&e.to_string()), Some(e));
        }
        assert_eq!(Endpoint::parse("10.0.0.1:80"), None);
        assert_eq!(Endpoint::parse("netns:x:1:80"), None);
        assert_eq!(Endpoint::parse("netns:1:80"), None);
    }

    #[test]
    fn a_namespace_that_changed_under_a_pid_is_refused() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let pid = std::process::id();
        let ns = netns_of(pid).unwrap();
        let right = Endpoint::Netns { pid, ns, port };
        // setns(2), even into one's own namespace, needs CAP_SYS_ADMIN
        if nix::unistd::geteuid().is_root() {
            assert!(connect(&right.to_string(), Duration::from_secs(5)).is_ok());
        }
        // as if the container's process had died and its pid gone to a process of the host
        let reused = Endpoint::Netns {
            pid,
            ns: ns + 1,
            port,
        };
        let err = connect(&reused.to_string(), Duration::from_secs(5)).unwrap_err();
        assert!(err.to_string().contains("no longer"), "{err}");
        assert_eq!(open_connections(reused), 0);
    }
}
