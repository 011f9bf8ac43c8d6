//! A unit's plaintext listener. Without the binary transport it hands every accepted
//! connection to axum as it comes. With it, each new connection's first bytes are peeked
//! (in a task of its own, within the handshake timeout): a connection opening with the
//! binary transport's magic is served as binary frames, any other goes to axum (HTTP/1.1,
//! or HTTP/2 for gRPC) with its bytes unread.

use super::binary::{serve_connection, MAGIC};
use std::net::SocketAddr;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_util::task::TaskTracker;

/// What serves the binary connections: their tracker (drained at stop), the unit's
/// handlers and the stop signal.
pub type BinaryServing = (TaskTracker, super::Handlers, watch::Receiver<bool>);

pub struct Sniffing {
    inner: Inner,
    local: SocketAddr,
}

enum Inner {
    Direct(TcpListener),
    Sniffed(mpsc::Receiver<(TcpStream, SocketAddr)>),
}

impl Sniffing {
    pub fn new(listener: TcpListener, binary: Option<BinaryServing>) -> Self {
        let local = listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)));
        let inner = match binary {
            None => Inner::Direct(listener),
            Some(serving) => Inner::Sniffed(sniff_each(listener, serving)),
        };
        Sniffing { inner, local }
    }
}

/// Accepts on `listener` for good, routing each connection by its first bytes.
fn sniff_each(
    listener: TcpListener,
    (tracker, handlers, stop): BinaryServing,
) -> mpsc::Receiver<(TcpStream, SocketAddr)> {
    let (tx, http) = mpsc::channel(1024);
    tokio::spawn(async move {
        loop {
            let (tcp, peer) = crate::listen::accept_nodelay(&listener).await;
            let (tx, tracker2, handlers, stop) =
                (tx.clone(), tracker.clone(), handlers.clone(), stop.clone());
            tokio::spawn(async move {
                let mut first = [0u8; 4];
                let peeked = tokio::time::timeout(
                    crate::tls_listener::HANDSHAKE_TIMEOUT,
                    peek_exact(&tcp, &mut first),
                )
                .await;
                match peeked {
                    Ok(Ok(())) if &first == MAGIC => {
                        let mut tcp = tcp;
                        if tcp.read_exact(&mut first).await.is_ok() {
                            tracker2.spawn(serve_connection(tcp, handlers, None, stop));
                        }
                    }
                    // Not binary (or closed early): axum answers, or sees the close.
                    Ok(_) => {
                        let _ = tx.send((tcp, peer)).await;
                    }
                    Err(_) => tracing::info!(%peer, "connection said nothing: dropped"),
                }
            });
        }
    });
    http
}

/// Waits until `buf.len()` bytes can be peeked (fewer at the stream's end).
async fn peek_exact(tcp: &TcpStream, buf: &mut [u8]) -> std::io::Result<()> {
    loop {
        let n = tcp.peek(buf).await?;
        if n == 0 || n >= buf.len() {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_micros(50)).await;
    }
}

impl axum::serve::Listener for Sniffing {
    type Io = TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match &mut self.inner {
            Inner::Direct(listener) => {
                // axum's own accept for a TCP listener: it waits out failed accepts.
                let (tcp, peer) = axum::serve::Listener::accept(listener).await;
                let _ = tcp.set_nodelay(true);
                (tcp, peer)
            }
            Inner::Sniffed(ready) => match ready.recv().await {
                Some(ready) => ready,
                // The accept task never ends while the unit serves.
                None => std::future::pending().await,
            },
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}
