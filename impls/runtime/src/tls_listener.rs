//! A unit's TLS listener: each accepted socket's handshake in a task of its own, bounded by
//! a timeout, and the peer (its address and, under mutual TLS, its certificate) handed to
//! the handlers as connection info.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_rustls::server::TlsStream;

/// TLS handshakes completed by this unit's server (what a caller without keep-alive pays
/// per call).
pub static HANDSHAKES: AtomicU64 = AtomicU64::new(0);

/// Longest a TLS handshake may take before its connection is dropped (a caller that opens
/// a socket and says nothing would otherwise hold a task for good).
pub const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Who is at the other end of a TLS connection: its address and, under mutual TLS, the
/// certificate it presented (verified by the handshake).
#[derive(Debug, Clone)]
pub struct TlsPeer {
    pub addr: std::net::SocketAddr,
    pub certificate: Option<Arc<rustls::pki_types::CertificateDer<'static>>>,
}

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, TlsListener>>
    for TlsPeer
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, TlsListener>) -> Self {
        stream.remote_addr().clone()
    }
}

/// A listener whose connections are TLS streams: each accepted socket's handshake runs in
/// a task of its own, so a slow or failed handshake never holds up the next accept; a
/// failed one (a caller without a certificate, or with a foreign one) or one that takes
/// over [`HANDSHAKE_TIMEOUT`] is dropped and logged.
/// What serves a TLS connection that asked for `alpn` (the binary transport's), apart from
/// the HTTP server.
#[derive(Clone)]
pub(crate) struct BinaryHook {
    pub alpn: &'static [u8],
    pub serve: Arc<dyn Fn(TlsStream<tokio::net::TcpStream>, TlsPeer) + Send + Sync>,
}

pub(crate) struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<tokio::net::TcpStream>, TlsPeer)>,
    local: TlsPeer,
}

impl TlsListener {
    pub(crate) fn new(
        listener: tokio::net::TcpListener,
        config: Arc<rustls::ServerConfig>,
        binary: Option<BinaryHook>,
    ) -> Self {
        let local = TlsPeer {
            addr: listener
                .local_addr()
                .unwrap_or_else(|_| std::net::SocketAddr::from(([127, 0, 0, 1], 0))),
            certificate: None,
        };
        let (tx, ready) = mpsc::channel(1024);
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        tokio::spawn(async move {
            loop {
                let (tcp, peer) = crate::listen::accept_nodelay(&listener).await;
                let (acceptor, tx, binary) = (acceptor.clone(), tx.clone(), binary.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => {
                            HANDSHAKES.fetch_add(1, Ordering::Relaxed);
                            let certificate = stream
                                .get_ref()
                                .1
                                .peer_certificates()
                                .and_then(|chain| chain.first())
                                .map(|c| Arc::new(c.clone().into_owned()));
                            let peer = TlsPeer {
                                addr: peer,
                                certificate,
                            };
                            let alpn = stream.get_ref().1.alpn_protocol();
                            match binary {
                                Some(hook) if alpn == Some(hook.alpn) => (hook.serve)(stream, peer),
                                _ => {
                                    let _ = tx.send((stream, peer)).await;
                                }
                            }
                        }
                        Ok(Err(error)) => tracing::info!(%peer, %error, "TLS handshake refused"),
                        Err(_) => tracing::info!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        TlsListener { ready, local }
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<tokio::net::TcpStream>;
    type Addr = TlsPeer;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(ready) => ready,
            // The accept task never ends while the unit serves.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local.clone())
    }
}
