//! The engine's TLS: rustls driven from the event loop through its non-blocking API
//! (`read_tls` / `process_new_packets` / `write_tls`). The time spent in rustls's own
//! work (key shares, encrypting, decrypting) is summed apart, so the driver's TLS CPU is
//! reported beside its total; the socket reads and writes it would make anyway are not
//! counted in it.

use mio::net::TcpStream;
use rustls::ClientConnection;
use std::io::{self, Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One connection's TLS session.
pub(super) struct TlsIo {
    session: ClientConnection,
}

/// Why a TLS read failed.
pub(super) enum TlsFailure {
    /// The handshake or a record was refused (a certificate, an alert).
    Protocol,
    /// The socket failed.
    Io,
}

impl TlsIo {
    /// A session to a unit on 127.0.0.1; its ClientHello waits to be flushed.
    pub(super) fn new(
        config: &Arc<rustls::ClientConfig>,
        spent: &mut Duration,
    ) -> Result<Self, rustls::Error> {
        let started = Instant::now();
        let session = ClientConnection::new(
            config.clone(),
            grain_runtime::security::loopback_server_name(),
        );
        *spent += started.elapsed();
        Ok(TlsIo { session: session? })
    }

    /// Encrypts `plain` (held until the handshake is done, then sent with it).
    pub(super) fn write_plain(&mut self, plain: &[u8], spent: &mut Duration) -> io::Result<()> {
        let started = Instant::now();
        let written = self.session.writer().write_all(plain);
        *spent += started.elapsed();
        written
    }

    /// Sends the pending records: `Ok(true)` when all went, `Ok(false)` when the socket is
    /// full (wait for it to be writable).
    pub(super) fn flush(&mut self, stream: &mut TcpStream) -> io::Result<bool> {
        while self.session.wants_write() {
            match self.session.write_tls(stream) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// Reads what the socket holds, decrypts it and appends the plaintext to `inbuf`;
    /// `Ok(true)` when the peer closed.
    pub(super) fn read(
        &mut self,
        stream: &mut TcpStream,
        inbuf: &mut Vec<u8>,
        spent: &mut Duration,
    ) -> Result<bool, TlsFailure> {
        let mut closed = false;
        loop {
            match self.session.read_tls(stream) {
                Ok(0) => {
                    closed = true;
                    break;
                }
                Ok(_) => {
                    let started = Instant::now();
                    let processed = self.session.process_new_packets();
                    let mut chunk = [0u8; 16 * 1024];
                    let drained = processed.is_ok() && self.drain_plain(&mut chunk, inbuf);
                    *spent += started.elapsed();
                    if processed.is_err() {
                        return Err(TlsFailure::Protocol);
                    }
                    if drained {
                        closed = true;
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Err(TlsFailure::Io),
            }
        }
        Ok(closed)
    }

    /// Moves decrypted bytes into `inbuf`; true when the peer sent close_notify.
    fn drain_plain(&mut self, chunk: &mut [u8], inbuf: &mut Vec<u8>) -> bool {
        loop {
            match self.session.reader().read(chunk) {
                Ok(0) => return true,
                Ok(n) => inbuf.extend_from_slice(&chunk[..n]),
                Err(_) => return false, // WouldBlock: nothing more for now
            }
        }
    }

    /// Whether the handshake is still under way.
    pub(super) fn handshaking(&self) -> bool {
        self.session.is_handshaking()
    }
}
