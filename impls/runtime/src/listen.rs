//! The sockets a unit's servers listen on: bound with a deep accept queue, each accepted
//! connection without Nagle's delay, and the stop signal every accept loop watches. The
//! lowest layer of hosting: the TLS listener, the transports' own listeners and the host
//! all build on it.

use tokio::sync::watch;

/// Accept queue of every unit's listening socket. tokio's default is 1 024; a load step
/// that opens connections faster than a unit accepts them overflows it, and each dropped
/// SYN is retried only after TCP's 1 s initial retransmission timeout (measured on a
/// 16-core machine: 1 394 listen overflows, send lag p99 1.03 s). The kernel caps it at
/// `net.core.somaxconn` (4 096 on current kernels).
pub const LISTEN_BACKLOG: u32 = 65_535;

/// Binds 127.0.0.1 on a port the OS picks, with a [`LISTEN_BACKLOG`]-deep accept queue.
pub fn bind_loopback() -> std::io::Result<tokio::net::TcpListener> {
    bind(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
}

/// Binds `addr` with a [`LISTEN_BACKLOG`]-deep accept queue.
pub fn bind(addr: std::net::SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// The next connection on `listener`, without Nagle's delay; a failed accept (a peer gone
/// before it was taken, no descriptor left) is logged and retried 5 ms later.
pub(crate) async fn accept_nodelay(
    listener: &tokio::net::TcpListener,
) -> (tokio::net::TcpStream, std::net::SocketAddr) {
    loop {
        match listener.accept().await {
            Ok((tcp, peer)) => {
                let _ = tcp.set_nodelay(true);
                return (tcp, peer);
            }
            Err(error) => {
                tracing::debug!(%error, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        }
    }
}

/// Returns once `stop` is true (or its sender is gone).
pub(crate) async fn stopped(stop: &mut watch::Receiver<bool>) {
    while !*stop.borrow() {
        if stop.changed().await.is_err() {
            return;
        }
    }
}
