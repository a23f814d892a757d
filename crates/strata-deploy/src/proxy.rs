//! The front listener: it owns a deployment's public port and forwards each new connection to the
//! backend address written in a file, so a replace switches the file, not the port, and no
//! connection is refused meanwhile. Connections already open stay on the old backend until they
//! close (the drain); the old container is stopped after that, with its grace period.

use std::io;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Serve `listener` forever, forwarding each connection to the address in `backend_file`.
/// `ready` is called once the listener is up (the helper prints its readiness line there).
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
    let server = TcpStream::connect_timeout(
        &backend
            .trim()
            .parse()
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad backend address"))?,
        Duration::from_secs(5),
    )?;
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
