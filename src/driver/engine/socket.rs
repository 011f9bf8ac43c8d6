//! The engine's socket I/O: a connection becoming writable (connected), requests written
//! (plain or through rustls, stamping each one's actual send time), and replies read and
//! parsed until a whole one completes its request.

use super::http::{parse_response, Parsed};
use super::tls::TlsFailure;
use super::{Engine, ErrorClass, Recorder, CONNECT_STALL};
use mio::{Interest, Token};
use std::io::{self, Read, Write};
use std::time::Instant;

impl Engine<'_> {
    pub(super) fn on_writable(&mut self, key: usize, recorder: &mut Recorder) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if !conn.connected {
            match conn.stream.take_error() {
                Ok(None) if conn.stream.peer_addr().is_ok() => {
                    conn.connected = true;
                    // Writable edges would otherwise wake the loop after every send.
                    let _ = self.poll.registry().reregister(
                        &mut conn.stream,
                        Token(key),
                        Interest::READABLE,
                    );
                    if conn.opened.elapsed() > CONNECT_STALL {
                        self.connect_stalled(key, recorder);
                        return;
                    }
                }
                Ok(None) => return, // not connected yet
                _ => {
                    self.fail(key, recorder, ErrorClass::Connect);
                    return;
                }
            }
        }
        self.flush(key, recorder);
    }

    /// Writes what is pending on `key`, stamping the actual send time on the first byte.
    pub(super) fn flush(&mut self, key: usize, recorder: &mut Recorder) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if conn.tls.is_some() {
            self.flush_tls(key, recorder);
            return;
        }
        while conn.out_pos < conn.out.len() {
            let now = Instant::now();
            match conn.stream.write(&conn.out[conn.out_pos..]) {
                Ok(0) => {
                    self.fail(key, recorder, ErrorClass::Other);
                    return;
                }
                Ok(n) => {
                    if conn.out_pos == 0 {
                        if let Some(request) = conn.request.as_mut() {
                            request.sent = Some(now);
                            recorder.sent(request.leave_at, now);
                            self.stats.sent += 1;
                        }
                    }
                    conn.out_pos += n;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // Rare on loopback: ask to be told when the rest can go.
                    let interest = Interest::READABLE | Interest::WRITABLE;
                    let _ = self
                        .poll
                        .registry()
                        .reregister(&mut conn.stream, Token(key), interest);
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    self.fail(key, recorder, ErrorClass::Other);
                    return;
                }
            }
        }
    }

    /// Under TLS: hands the pending request to rustls (stamping its send time) and sends
    /// every pending record, the handshake's included.
    pub(super) fn flush_tls(&mut self, key: usize, recorder: &mut Recorder) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let Some(tls) = conn.tls.as_mut() else {
            return;
        };
        if conn.out_pos < conn.out.len() {
            let now = Instant::now();
            if tls
                .write_plain(&conn.out[conn.out_pos..], &mut self.stats.tls)
                .is_err()
            {
                self.fail(key, recorder, ErrorClass::Other);
                return;
            }
            if conn.out_pos == 0 {
                if let Some(request) = conn.request.as_mut() {
                    request.sent = Some(now);
                    recorder.sent(request.leave_at, now);
                    self.stats.sent += 1;
                }
            }
            conn.out_pos = conn.out.len();
        }
        match tls.flush(&mut conn.stream) {
            Ok(true) => {}
            Ok(false) => {
                let interest = Interest::READABLE | Interest::WRITABLE;
                let _ = self
                    .poll
                    .registry()
                    .reregister(&mut conn.stream, Token(key), interest);
            }
            Err(_) => self.fail(key, recorder, ErrorClass::Other),
        }
    }

    pub(super) fn on_readable(&mut self, key: usize, recorder: &mut Recorder) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let mut closed = false;
        if let Some(tls) = conn.tls.as_mut() {
            let handshaking = tls.handshaking();
            match tls.read(&mut conn.stream, &mut conn.inbuf, &mut self.stats.tls) {
                Ok(peer_closed) => closed = peer_closed,
                Err(failure) => {
                    // A refused handshake is a failure to connect; a later one is the reply's.
                    let class = match failure {
                        TlsFailure::Protocol | TlsFailure::Io if handshaking => ErrorClass::Connect,
                        _ => ErrorClass::Other,
                    };
                    self.fail(key, recorder, class);
                    return;
                }
            }
            if handshaking && !tls.handshaking() {
                self.stats.handshakes += 1;
            }
            // The handshake's next flight, and any request rustls held until it was done.
            self.flush_tls(key, recorder);
            if let Some(waiting) = self.conns.get(key).map(|c| c.request.is_some()) {
                self.after_read(key, recorder, closed, waiting);
            }
            return;
        }
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match conn.stream.read(&mut chunk) {
                Ok(0) => {
                    closed = true;
                    break;
                }
                Ok(n) => conn.inbuf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let class = if conn.connected {
                        ErrorClass::Other
                    } else {
                        ErrorClass::Connect
                    };
                    let _ = e;
                    self.fail(key, recorder, class);
                    return;
                }
            }
        }
        let waiting = conn.request.is_some();
        self.after_read(key, recorder, closed, waiting);
    }

    /// What was read on `key`: a whole reply completes its request; a closed connection goes.
    pub(super) fn after_read(
        &mut self,
        key: usize,
        recorder: &mut Recorder,
        closed: bool,
        waiting: bool,
    ) {
        if waiting {
            match parse_response(&self.conns[key].inbuf) {
                Parsed::Complete(outcome, blame, retries) => {
                    self.stats.unit_retries += u64::from(retries);
                    self.complete(key, recorder, outcome, blame);
                    if closed {
                        self.close(key);
                    }
                    return;
                }
                Parsed::Incomplete if !closed => return,
                Parsed::Incomplete | Parsed::Malformed => {
                    self.fail(key, recorder, ErrorClass::Other);
                    return;
                }
            }
        }
        if closed {
            self.close(key);
        }
    }
}
