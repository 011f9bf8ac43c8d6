//! The `binary` transport: each frame is a big-endian `u32` length and a postcard-encoded
//! message, a request ([`Call`] and an id) or a reply ([`CallReply`] and the id it
//! answers). A caller keeps one TCP connection per callee address and multiplexes every
//! concurrent call over it; the callee serves each request in a task of its own and
//! writes replies as they finish, in any order.
//!
//! A plaintext connection opens with [`MAGIC`], so a unit tells it from HTTP on its one
//! port; under TLS the caller asks for it by ALPN ([`ALPN`]) instead.

use super::{Call, CallReply, Codec, Handlers};
use crate::client::{across, call_token, caller_token, CallerToken};
use crate::client::{CallError, Reply};
use crate::model::Endpoint;
use crate::network::NetworkModel;
use crate::security::{client_config, Credentials, SecurityError};
use crate::tls_listener::TlsPeer;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, BufWriter};
use tokio::sync::{mpsc, oneshot, watch};

/// First bytes of a plaintext binary connection.
pub const MAGIC: &[u8; 4] = b"GRB1";
/// ALPN protocol of a binary connection under TLS.
pub const ALPN: &[u8] = b"grain-bin/1";
/// Largest frame either side accepts: the largest body and room for the envelope.
const MAX_FRAME: usize = crate::wire::MAX_BODY_BYTES + 64 * 1024;

#[derive(Debug, Serialize, Deserialize)]
struct RequestFrame {
    id: u64,
    call: Call,
}

#[derive(Debug, Serialize, Deserialize)]
struct ReplyFrame {
    id: u64,
    reply: CallReply,
}

fn frame<T: Serialize>(message: &T) -> Vec<u8> {
    let mut body = postcard::to_extend(message, vec![0; 4]).expect("frames always serialize");
    let len = (body.len() - 4) as u32;
    body[..4].copy_from_slice(&len.to_be_bytes());
    body
}

/// The next frame's payload; `None` at a clean end of the stream.
async fn read_frame<R: AsyncRead + Unpin>(reader: &mut R) -> std::io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 4];
    match reader.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(std::io::Error::other(format!(
            "frame of {len} bytes is over the {MAX_FRAME}-byte limit"
        )));
    }
    let mut payload = vec![0u8; len];
    reader.read_exact(&mut payload).await?;
    Ok(Some(payload))
}

/// Writes queued frames, flushing whenever the queue is empty; shuts the stream's write
/// side down once every sender is gone.
async fn write_frames<W: AsyncWrite + Unpin>(
    writer: W,
    mut frames: mpsc::UnboundedReceiver<Vec<u8>>,
) {
    let mut writer = BufWriter::new(writer);
    while let Some(frame) = frames.recv().await {
        if writer.write_all(&frame).await.is_err() {
            return;
        }
        while let Ok(frame) = frames.try_recv() {
            if writer.write_all(&frame).await.is_err() {
                return;
            }
        }
        if writer.flush().await.is_err() {
            return;
        }
    }
    let _ = writer.shutdown().await;
}

/// Serves one binary connection (its magic already read): each request handed to
/// `handlers` in a task of its own, each reply written when it is ready. Stops reading when `stop`
/// turns true, answers what it has read, and closes.
pub async fn serve_connection<IO>(
    io: IO,
    handlers: Handlers,
    peer: Option<TlsPeer>,
    mut stop: watch::Receiver<bool>,
) where
    IO: AsyncRead + AsyncWrite + Send + 'static,
{
    let (reader, writer) = tokio::io::split(io);
    let (replies, queue) = mpsc::unbounded_channel();
    let writing = tokio::spawn(write_frames(writer, queue));
    let mut reader = BufReader::new(reader);
    loop {
        let payload = tokio::select! {
            payload = read_frame(&mut reader) => payload,
            _ = crate::listen::stopped(&mut stop) => break,
        };
        let request: RequestFrame = match payload {
            Ok(Some(payload)) => match postcard::from_bytes(&payload) {
                Ok(request) => request,
                Err(error) => {
                    tracing::debug!(%error, "malformed binary frame: closing the connection");
                    break;
                }
            },
            Ok(None) => break,
            Err(error) => {
                tracing::debug!(%error, "binary connection failed");
                break;
            }
        };
        let (handlers, peer, replies) = (handlers.clone(), peer.clone(), replies.clone());
        tokio::spawn(async move {
            let reply = handlers.call(request.call, Codec::Postcard, peer).await;
            let _ = replies.send(frame(&ReplyFrame {
                id: request.id,
                reply,
            }));
        });
    }
    // The writer ends once every request in flight has sent its reply.
    drop(replies);
    let _ = writing.await;
}

/// One multiplexed connection to a callee.
struct Connection {
    next_id: AtomicU64,
    pending: Mutex<HashMap<u64, oneshot::Sender<CallReply>>>,
    frames: mpsc::UnboundedSender<Vec<u8>>,
    closed: AtomicBool,
}

impl Connection {
    fn pending(&self) -> std::sync::MutexGuard<'_, HashMap<u64, oneshot::Sender<CallReply>>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Removes a call's reply slot when the call ends, answered or not (a timed-out call
/// must not leave its slot behind).
struct Slot<'a> {
    connection: &'a Connection,
    id: u64,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.connection.pending().remove(&self.id);
    }
}

/// The `binary` transport's caller side: one connection per callee address, opened on
/// the first call (or one per call without keep-alive); cheap to clone.
#[derive(Clone)]
pub struct BinaryClient {
    connections: Arc<Mutex<HashMap<String, Arc<Connection>>>>,
    tls: Option<tokio_rustls::TlsConnector>,
    timeout: Duration,
    keepalive: bool,
    token: CallerToken,
}

impl BinaryClient {
    pub fn new(
        timeout: Duration,
        security: Option<&Credentials>,
        keepalive: bool,
    ) -> Result<Self, SecurityError> {
        let tls = match security.filter(|c| c.mode.tls()) {
            Some(c) => {
                let mut config = (*client_config(c)?).clone();
                config.alpn_protocols = vec![ALPN.to_vec()];
                Some(tokio_rustls::TlsConnector::from(Arc::new(config)))
            }
            None => None,
        };
        let token = caller_token(security)?;
        Ok(BinaryClient {
            connections: Arc::new(Mutex::new(HashMap::new())),
            tls,
            timeout,
            keepalive,
            token,
        })
    }

    /// Calls `path` on `to` across `network` (see [`super::UnitClient::post_across`]).
    pub async fn post_across(
        &self,
        network: &NetworkModel,
        to: &Endpoint,
        path: &str,
        body: Bytes,
    ) -> Result<Reply, CallError> {
        let call = Call {
            path: path.to_string(),
            token: call_token(self.token.as_deref(), to, path),
            traceparent: crate::trace::outgoing(),
            body,
        };
        across(
            network,
            self.timeout,
            &to.addr,
            self.exchange(&to.addr, call),
        )
        .await
    }

    async fn exchange(&self, addr: &str, call: Call) -> Result<Reply, CallError> {
        let io_error = |detail: &str| CallError::Io {
            addr: addr.to_string(),
            detail: detail.to_string(),
        };
        let connection = self.connection(addr).await?;
        let id = connection.next_id.fetch_add(1, Ordering::Relaxed);
        let (answer, answered) = oneshot::channel();
        connection.pending().insert(id, answer);
        let _slot = Slot {
            connection: &connection,
            id,
        };
        if connection.closed.load(Ordering::Acquire)
            || connection
                .frames
                .send(frame(&RequestFrame { id, call }))
                .is_err()
        {
            return Err(io_error("connection closed before the call was sent"));
        }
        match answered.await {
            Ok(reply) => reply.into_result(addr),
            Err(_) => Err(io_error("connection closed before the reply")),
        }
    }

    /// Calls waiting for their reply, over every open connection.
    #[cfg(test)]
    pub(crate) fn pending_calls(&self) -> usize {
        let open = self.connections.lock().unwrap_or_else(|p| p.into_inner());
        open.values().map(|c| c.pending().len()).sum()
    }

    /// The open connection to `addr`, opened now if there is none (or a fresh one per
    /// call without keep-alive).
    async fn connection(&self, addr: &str) -> Result<Arc<Connection>, CallError> {
        if self.keepalive {
            let open = self.connections.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(c) = open.get(addr).filter(|c| !c.closed.load(Ordering::Acquire)) {
                return Ok(c.clone());
            }
        }
        // Boxed: the opening (and a TLS handshake) is rare, and its state would otherwise
        // make every call's future as large as the handshake's.
        let connection = Box::pin(self.open(addr)).await?;
        if self.keepalive {
            let mut open = self.connections.lock().unwrap_or_else(|p| p.into_inner());
            // Two first calls may race to open: the first one stored is kept.
            let kept = match open.get(addr) {
                Some(c) if !c.closed.load(Ordering::Acquire) => c.clone(),
                _ => {
                    open.insert(addr.to_string(), connection.clone());
                    connection
                }
            };
            return Ok(kept);
        }
        Ok(connection)
    }

    async fn open(&self, addr: &str) -> Result<Arc<Connection>, CallError> {
        let refused = |detail: String| CallError::Connect {
            addr: addr.to_string(),
            detail,
        };
        let tcp = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| refused(e.to_string()))?;
        let _ = tcp.set_nodelay(true);
        match &self.tls {
            None => {
                let mut tcp = tcp;
                tcp.write_all(MAGIC)
                    .await
                    .map_err(|e| refused(e.to_string()))?;
                Ok(start(tcp))
            }
            Some(connector) => {
                let name = server_name(addr).map_err(refused)?;
                let tls = connector
                    .connect(name, tcp)
                    .await
                    .map_err(|e| refused(format!("TLS handshake: {e}")))?;
                Ok(start(tls))
            }
        }
    }
}

/// The name a unit's certificate is checked against: its address's host.
fn server_name(addr: &str) -> Result<rustls::pki_types::ServerName<'static>, String> {
    let host = addr
        .rsplit_once(':')
        .map_or(addr, |(host, _)| host)
        .trim_matches(['[', ']']);
    rustls::pki_types::ServerName::try_from(host.to_string())
        .map_err(|e| format!("{host} is not a server name: {e}"))
}

/// Starts the reader and writer of a freshly opened connection.
fn start<IO>(io: IO) -> Arc<Connection>
where
    IO: AsyncRead + AsyncWrite + Send + 'static,
{
    let (reader, writer) = tokio::io::split(io);
    let (frames, queue) = mpsc::unbounded_channel();
    let connection = Arc::new(Connection {
        next_id: AtomicU64::new(0),
        pending: Mutex::new(HashMap::new()),
        frames,
        closed: AtomicBool::new(false),
    });
    tokio::spawn(write_frames(writer, queue));
    let reading = Arc::downgrade(&connection);
    tokio::spawn(async move {
        let mut reader = BufReader::new(reader);
        while let Ok(Some(payload)) = read_frame(&mut reader).await {
            let Ok(frame) = postcard::from_bytes::<ReplyFrame>(&payload) else {
                break;
            };
            let Some(connection) = reading.upgrade() else {
                return;
            };
            let answer = connection.pending().remove(&frame.id);
            if let Some(answer) = answer {
                let _ = answer.send(frame.reply);
            }
        }
        // Closed or broken: every call still waiting fails now, and the next call opens
        // a new connection.
        if let Some(connection) = reading.upgrade() {
            connection.closed.store(true, Ordering::Release);
            connection.pending().clear();
        }
    });
    connection
}
