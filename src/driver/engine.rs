//! The load engine: one thread, one epoll loop (mio), a `timerfd` for the schedule and
//! keep-alive HTTP/1.1 connections written and parsed in place (httparse).
//!
//! Why not tokio + hyper here: tokio's timer has 1 ms resolution and waking a parked
//! worker from another thread costs ~100 µs on this machine, both of which would show up
//! as false latency in every corrected measurement. A timerfd is armed at each send time
//! with nanosecond resolution and no timer slack, the loop spins only the last few µs,
//! and sending is a `write(2)` on an already open connection from the same thread. Like
//! wrk, one request is outstanding per connection; unlike wrk, a late reply never delays
//! the next send: a new connection is opened when none is idle. Only the in-flight cap
//! bounds this: a request due while the cap is reached waits in a queue for a free slot
//! (its latency still counts from its intended send time) and the wait is counted.

use super::record::{ErrorClass, Outcome, Recorder};
use super::requests::RequestGen;
use super::StepConfig;
use grain_runtime::wire::{encode_request, Hops, SERVICE_HOPS_HEADER, STATE_HOPS_HEADER};
use mio::net::TcpStream;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use slab::Slab;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const TIMER: Token = Token(usize::MAX - 1);
/// How often in-flight requests are checked against their timeout.
const TIMEOUT_SWEEP: Duration = Duration::from_millis(10);
/// Longest single wait in the loop, so cancellation is noticed promptly.
const MAX_POLL_WAIT: Duration = Duration::from_millis(20);

/// One entrypoint as the engine sends it.
#[derive(Debug, Clone)]
pub struct EngineTarget {
    /// Read at every new connection, so a redeployed entry unit is found at its new address.
    pub addr: super::TargetAddr,
    /// Request line and headers up to `Content-Length: ` (the length and body follow).
    head: Vec<u8>,
    pub request_bytes: usize,
}

impl EngineTarget {
    pub fn new(addr: super::TargetAddr, path: &str, request_bytes: usize) -> Self {
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: "
        )
        .into_bytes();
        EngineTarget {
            addr,
            head,
            request_bytes,
        }
    }

    fn request(&self, body: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.head.len() + 8 + body.len());
        out.extend_from_slice(&self.head);
        out.extend_from_slice(body.len().to_string().as_bytes());
        out.extend_from_slice(b"\r\n\r\n");
        out.extend_from_slice(body);
        out
    }
}

/// When requests are sent.
#[derive(Debug, Clone, Copy)]
pub enum Schedule {
    /// Request `i` is due at `start + i / rate`, whatever the replies do.
    OpenLoop { rate: u32 },
    /// `connections` connections each send the next request as soon as the previous reply
    /// arrives, as fast as possible.
    ClosedLoop { connections: usize },
}

/// What the engine did besides the recorder's measurements.
#[derive(Debug, Clone, Default)]
pub struct EngineStats {
    /// CPU time (user + system) of the engine thread.
    pub cpu: Duration,
    /// Requests handed to the network.
    pub sent: u64,
    /// Requests that had to wait for a free slot because the in-flight cap was reached.
    pub in_flight_cap_hits: u64,
    pub connections_opened: u64,
    pub max_in_flight: usize,
}

/// A request due while the in-flight cap was reached.
struct Queued {
    entry: usize,
    bytes: Vec<u8>,
    intended: Instant,
}

struct InFlight {
    entry: usize,
    intended: Instant,
    sent: Option<Instant>,
    deadline: Instant,
}

struct Conn {
    stream: TcpStream,
    target: usize,
    connected: bool,
    out: Vec<u8>,
    out_pos: usize,
    inbuf: Vec<u8>,
    request: Option<InFlight>,
}

/// A CLOCK_MONOTONIC timerfd.
struct TimerFd(OwnedFd);

impl TimerFd {
    fn new() -> io::Result<Self> {
        // SAFETY: timerfd_create takes plain flags and returns a new fd or -1.
        let fd = unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a freshly created descriptor that nothing else owns.
        Ok(TimerFd(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// Fires once after `delay` (at least 1 ns: zero would disarm).
    fn arm_in(&self, delay: Duration) -> io::Result<()> {
        let delay = delay.max(Duration::from_nanos(1));
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: delay.as_secs() as libc::time_t,
                tv_nsec: delay.subsec_nanos() as libc::c_long,
            },
        };
        // SAFETY: the fd is a valid timerfd and `spec` a valid itimerspec for the call.
        let rc =
            unsafe { libc::timerfd_settime(self.0.as_raw_fd(), 0, &spec, std::ptr::null_mut()) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    fn clear(&self) {
        let mut expirations = [0u8; 8];
        // SAFETY: reading 8 bytes into an 8-byte buffer from our own non-blocking timerfd.
        unsafe { libc::read(self.0.as_raw_fd(), expirations.as_mut_ptr().cast(), 8) };
    }
}

/// CPU time consumed so far by the calling thread.
pub fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into the valid pointer we pass.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// The engine: runs one step on the calling thread.
pub struct Engine<'a> {
    poll: Poll,
    timer: TimerFd,
    conns: Slab<Conn>,
    idle: Vec<Vec<usize>>,
    targets: &'a [EngineTarget],
    config: &'a StepConfig,
    in_flight: usize,
    queued: std::collections::VecDeque<Queued>,
    stats: EngineStats,
}

impl<'a> Engine<'a> {
    pub fn new(targets: &'a [EngineTarget], config: &'a StepConfig) -> io::Result<Self> {
        let poll = Poll::new()?;
        let timer = TimerFd::new()?;
        poll.registry().register(
            &mut SourceFd(&timer.0.as_raw_fd()),
            TIMER,
            Interest::READABLE,
        )?;
        Ok(Engine {
            poll,
            timer,
            conns: Slab::new(),
            idle: vec![Vec::new(); targets.len()],
            targets,
            config,
            in_flight: 0,
            queued: std::collections::VecDeque::new(),
            stats: EngineStats::default(),
        })
    }

    /// Runs the step: sends on schedule, records every outcome, and returns once every
    /// request has finished (bounded by the timeout) or after cancellation.
    pub fn run(
        mut self,
        generator: &mut RequestGen,
        recorder: &mut Recorder,
        start: Instant,
        cancel: &CancellationToken,
        mut on_progress: impl FnMut(Instant),
    ) -> EngineStats {
        let cpu_before = thread_cpu_time();
        let end = start + self.config.warmup + self.config.duration;
        let total = match self.config.schedule {
            Schedule::OpenLoop { rate } => {
                ((self.config.warmup + self.config.duration).as_secs_f64() * f64::from(rate))
                    .round() as u64
            }
            Schedule::ClosedLoop { .. } => u64::MAX,
        };
        let interval = match self.config.schedule {
            Schedule::OpenLoop { rate } => Duration::from_secs_f64(1.0 / f64::from(rate)),
            Schedule::ClosedLoop { .. } => Duration::ZERO,
        };
        let mut events = Events::with_capacity(1024);
        let mut next = 0u64;
        let mut next_sweep = start;
        let mut next_progress = start;
        if let Schedule::ClosedLoop { connections } = self.config.schedule {
            super::pacer::wait_until(start);
            for _ in 0..connections {
                self.dispatch(generator, recorder, Instant::now());
            }
            next = total; // nothing scheduled: conns re-send on completion
        }
        loop {
            let now = Instant::now();
            let mut stopping = cancel.is_cancelled();
            while next < total && !stopping {
                let due = start + interval.mul_f64(next as f64);
                if due > now {
                    break;
                }
                self.dispatch(generator, recorder, due);
                next += 1;
                stopping = cancel.is_cancelled();
            }
            if now >= next_sweep {
                self.expire(recorder, now);
                next_sweep = now + TIMEOUT_SWEEP;
            }
            if now >= next_progress {
                on_progress(now);
                next_progress = now + Duration::from_millis(100);
            }
            let closed_loop_running = matches!(self.config.schedule, Schedule::ClosedLoop { .. })
                && now < end
                && !stopping;
            let schedule_done = (next >= total || stopping) && !closed_loop_running;
            if schedule_done && self.in_flight == 0 && self.queued.is_empty() {
                break;
            }
            let wait = MAX_POLL_WAIT.min(next_sweep.saturating_duration_since(now));
            if next < total && !stopping {
                let due = start + interval.mul_f64(next as f64);
                let until_due = due.saturating_duration_since(now);
                if until_due <= self.config.spin {
                    super::pacer::wait_until(due);
                    continue;
                }
                // The timer wakes the poll below at µs precision; its own timeout is coarse.
                let _ = self.timer.arm_in(until_due - self.config.spin);
            }
            if self.poll.poll(&mut events, Some(wait)).is_err() {
                continue; // EINTR: go round again
            }
            for event in events.iter() {
                if event.token() == TIMER {
                    self.timer.clear();
                    continue;
                }
                let key = event.token().0;
                if event.is_writable() {
                    self.on_writable(key, recorder);
                }
                if event.is_readable() || event.is_read_closed() || event.is_error() {
                    self.on_readable(key, generator, recorder, end, cancel);
                }
            }
            self.drain_queue(recorder);
        }
        for mut conn in self.conns.drain() {
            let _ = self.poll.registry().deregister(&mut conn.stream);
        }
        self.stats.cpu = thread_cpu_time().saturating_sub(cpu_before);
        self.stats
    }

    /// Sends the next request of the stream, due at `intended` (or queues it at the cap).
    fn dispatch(&mut self, generator: &mut RequestGen, recorder: &mut Recorder, intended: Instant) {
        let request = generator.next_request();
        let target = &self.targets[request.entry];
        let body = encode_request(&request.params, target.request_bytes);
        let queued = Queued {
            entry: request.entry,
            bytes: target.request(&body),
            intended,
        };
        if self.in_flight >= self.config.in_flight_cap {
            self.stats.in_flight_cap_hits += 1;
            self.queued.push_back(queued);
            return;
        }
        self.send(queued, recorder);
    }

    /// Sends queued requests while slots are free.
    fn drain_queue(&mut self, recorder: &mut Recorder) {
        while self.in_flight < self.config.in_flight_cap {
            let Some(queued) = self.queued.pop_front() else {
                break;
            };
            self.send(queued, recorder);
        }
    }

    fn send(&mut self, request: Queued, recorder: &mut Recorder) {
        let Queued {
            entry,
            bytes,
            intended,
        } = request;
        let key = match self.idle[entry].pop() {
            Some(key) => key,
            None => match self.connect(entry) {
                Ok(key) => key,
                Err(_) => {
                    let now = Instant::now();
                    recorder.finished(entry, intended, None, now, Err(ErrorClass::Connect));
                    return;
                }
            },
        };
        let conn = &mut self.conns[key];
        conn.out = bytes;
        conn.out_pos = 0;
        conn.inbuf.clear();
        conn.request = Some(InFlight {
            entry,
            intended,
            sent: None,
            deadline: intended + self.config.timeout,
        });
        self.in_flight += 1;
        self.stats.max_in_flight = self.stats.max_in_flight.max(self.in_flight);
        if conn.connected {
            self.flush(key, recorder);
        }
    }

    fn connect(&mut self, target: usize) -> io::Result<usize> {
        let stream = TcpStream::connect(self.targets[target].addr.get())?;
        stream.set_nodelay(true)?;
        let entry = self.conns.vacant_entry();
        let key = entry.key();
        let mut conn = Conn {
            stream,
            target,
            connected: false,
            out: Vec::new(),
            out_pos: 0,
            inbuf: Vec::with_capacity(4096),
            request: None,
        };
        self.poll.registry().register(
            &mut conn.stream,
            Token(key),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        entry.insert(conn);
        self.stats.connections_opened += 1;
        Ok(key)
    }

    fn on_writable(&mut self, key: usize, recorder: &mut Recorder) {
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
    fn flush(&mut self, key: usize, recorder: &mut Recorder) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
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
                            recorder.sent(request.intended, now);
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

    fn on_readable(
        &mut self,
        key: usize,
        generator: &mut RequestGen,
        recorder: &mut Recorder,
        end: Instant,
        cancel: &CancellationToken,
    ) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let mut closed = false;
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
        if conn.request.is_some() {
            match parse_response(&conn.inbuf) {
                Parsed::Complete(outcome) => {
                    self.complete(key, recorder, outcome);
                    if closed {
                        self.close(key);
                        return;
                    }
                    if let Schedule::ClosedLoop { .. } = self.config.schedule {
                        let now = Instant::now();
                        if now < end && !cancel.is_cancelled() {
                            self.dispatch(generator, recorder, now);
                        }
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

    fn complete(&mut self, key: usize, recorder: &mut Recorder, outcome: Outcome) {
        let done = Instant::now();
        let conn = &mut self.conns[key];
        if let Some(request) = conn.request.take() {
            self.in_flight -= 1;
            recorder.finished(request.entry, request.intended, request.sent, done, outcome);
        }
        conn.inbuf.clear();
        let target = conn.target;
        self.idle[target].push(key);
    }

    /// Ends the request on `key` with an error and drops the connection.
    fn fail(&mut self, key: usize, recorder: &mut Recorder, class: ErrorClass) {
        if let Some(conn) = self.conns.get_mut(key) {
            if let Some(request) = conn.request.take() {
                self.in_flight -= 1;
                recorder.finished(
                    request.entry,
                    request.intended,
                    request.sent,
                    Instant::now(),
                    Err(class),
                );
            }
        }
        self.close(key);
    }

    fn close(&mut self, key: usize) {
        if let Some(mut conn) = self.conns.try_remove(key) {
            let _ = self.poll.registry().deregister(&mut conn.stream);
            self.idle[conn.target].retain(|k| *k != key);
        }
    }

    fn expire(&mut self, recorder: &mut Recorder, now: Instant) {
        while self
            .queued
            .front()
            .is_some_and(|q| q.intended + self.config.timeout <= now)
        {
            if let Some(q) = self.queued.pop_front() {
                recorder.finished(q.entry, q.intended, None, now, Err(ErrorClass::Timeout));
            }
        }
        let expired: Vec<usize> = self
            .conns
            .iter()
            .filter(|(_, c)| c.request.as_ref().is_some_and(|r| r.deadline <= now))
            .map(|(key, _)| key)
            .collect();
        for key in expired {
            self.fail(key, recorder, ErrorClass::Timeout);
        }
    }
}

enum Parsed {
    Complete(Outcome),
    Incomplete,
    Malformed,
}

/// Parses one HTTP/1.1 response with a Content-Length body.
fn parse_response(buf: &[u8]) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; 24];
    let mut response = httparse::Response::new(&mut headers);
    let header_len = match response.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Parsed::Incomplete,
        Err(_) => return Parsed::Malformed,
    };
    let mut content_length = 0usize;
    let mut hops = Hops::default();
    for header in response.headers.iter() {
        let value = || {
            std::str::from_utf8(header.value)
                .ok()
                .and_then(|v| v.trim().parse::<u32>().ok())
                .unwrap_or(0)
        };
        if header.name.eq_ignore_ascii_case("content-length") {
            content_length = value() as usize;
        } else if header.name.eq_ignore_ascii_case(SERVICE_HOPS_HEADER) {
            hops.service = value();
        } else if header.name.eq_ignore_ascii_case(STATE_HOPS_HEADER) {
            hops.state = value();
        }
    }
    if buf.len() < header_len + content_length {
        return Parsed::Incomplete;
    }
    let status = response.code.unwrap_or(0);
    if status == 200 {
        hops.service += 1; // the driver's own request
        Parsed::Complete(Ok(hops))
    } else {
        Parsed::Complete(Err(ErrorClass::Status(status)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hops_and_waits_for_the_whole_body() {
        let full = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nx-grain-service-hops: 3\r\nx-grain-state-hops: 2\r\n\r\nhello";
        match parse_response(full) {
            Parsed::Complete(Ok(hops)) => assert_eq!(
                hops,
                Hops {
                    service: 4,
                    state: 2
                }
            ),
            _ => panic!("expected a complete reply"),
        }
        assert!(matches!(
            parse_response(&full[..full.len() - 1]),
            Parsed::Incomplete
        ));
        assert!(matches!(parse_response(&full[..20]), Parsed::Incomplete));
        let error = b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n";
        assert!(matches!(
            parse_response(error),
            Parsed::Complete(Err(ErrorClass::Status(502)))
        ));
        assert!(matches!(
            parse_response(b"garbage\r\n\r\n"),
            Parsed::Malformed
        ));
    }

    #[test]
    fn request_bytes_carry_the_body_length() {
        let target = EngineTarget::new(
            super::super::Target::new("x", "127.0.0.1:9", 10)
                .unwrap()
                .addr,
            "/op/x",
            10,
        );
        let bytes = target.request(b"{\"a\":1}");
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.starts_with("POST /op/x HTTP/1.1\r\n"));
        assert!(text.ends_with("Content-Length: 7\r\n\r\n{\"a\":1}"));
    }
}
