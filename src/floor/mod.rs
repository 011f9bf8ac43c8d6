//! The machine's floor under the driver's figure and under a hop. At a fixed open-loop
//! rate, with no driver at all:
//! - a thread that only sleeps until each due time: its CPU per wake-up and how late the
//!   wake-ups come;
//! - the least open-loop client: one keep-alive connection to the same endpoint; sleep
//!   until each due time, write the request, block until the whole reply is in, nothing
//!   recorded. It wakes twice per request (the due time, the reply), as the driver does.
//!
//! - the least hop ([`hop_floor`]): the least client against the least server, a thread
//!   that blocks on its one connection, reads each request and writes a canned reply: what
//!   one request costs a client and a server that do nothing else (the hop ledger's
//!   denominator; every run measures it beside its bare hop, at the start of each round);
//! - the least event-loop hop ([`event_loop_hop`]): the same, with the client and the server
//!   each on a current-thread tokio runtime: what an event loop adds to the least hop.
//!
//! All are read from the kernel's per-thread CPU clock, the clock of the driver's own
//! figure, so "driver / floor" says how much of the driver's CPU per request is its own
//! work and how much any client pays on this machine for waking up and using loopback TCP.
//! The least client's latency (its write to the reply's last byte) sits beside the
//! driver's own from the actual send: what any client waking for a reply would measure.

use crate::deploy::probe::{self, ping_body};
use crate::driver::engine::{parse_response, EngineTarget, Parsed};
use crate::driver::pacer::{thread_cpu_time, tighten_timer_slack};
use crate::driver::{new_histogram, Target};
use crate::results::{HopFloor, Percentiles};
use grain_runtime::wire::op_path;
use serde::Serialize;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

mod event_loop;
pub use event_loop::event_loop_hop;

/// Unmeasured requests the least client sends first (connection and endpoint warm).
const CLIENT_WARMUP: u64 = 200;
/// A reply slower than this ends the measurement with an error instead of hanging it.
const REPLY_TIMEOUT: Duration = Duration::from_secs(2);

/// What the floor measured.
#[derive(Debug, Clone, Serialize)]
pub struct Floor {
    pub rate: u32,
    pub duration_s: f64,
    /// CPU per wake-up of a thread that sleeps until each due time and does nothing else, µs.
    pub wake_cpu_us: f64,
    /// How late those wake-ups came, µs after the due time.
    pub wake_late_us: Percentiles,
    /// CPU per request of the least client (sleep, write, blocking read), µs.
    pub client_cpu_us: f64,
    /// Requests the least client measured, and the rate it held: with one request at a
    /// time it cannot keep a schedule faster than its round trip, and then its figures
    /// are not a floor for this rate (the terminal says so).
    pub client_requests: u64,
    pub client_achieved_rps: f64,
    /// The least client's latency, µs: from its write to the reply's last byte read.
    pub client_latency_us: Percentiles,
    /// The driver's open-loop CPU per request over the least client's (set by the caller;
    /// none when the least client could not keep the rate).
    pub driver_to_floor_ratio: Option<f64>,
    /// The least client against the least server: one hop's floor (none if it failed).
    pub hop: Option<HopFloor>,
    /// The same hop with the client and the server each on an event loop of its own (none
    /// if it failed): [`event_loop_hop`].
    pub event_loop_hop: Option<HopFloor>,
}

/// `x` to two decimals, as the calibration figures are shown.
pub(crate) fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Measures the floors at `rate` for `duration` each, on the calling thread (it blocks);
/// each part stops at twice its duration even if it fell behind.
pub fn measure(addr: &str, rate: u32, duration: Duration) -> Result<Floor, String> {
    tighten_timer_slack();
    let (interval, count) = paced(rate, duration);
    let (wake_cpu, late) = sleep_only(interval, count);
    let client = least_client(addr, interval, count, duration * 2)?;
    let per = |cpu: Duration, n: u64| round2(cpu.as_secs_f64() * 1e6 / n.max(1) as f64);
    Ok(Floor {
        rate,
        duration_s: duration.as_secs_f64(),
        wake_cpu_us: per(wake_cpu, count),
        wake_late_us: Percentiles::of(&late),
        client_cpu_us: per(client.cpu, client.latency.len()),
        client_requests: client.latency.len(),
        client_achieved_rps: round2(
            client.latency.len() as f64 / client.elapsed.as_secs_f64().max(1e-9),
        ),
        client_latency_us: Percentiles::of(&client.latency),
        driver_to_floor_ratio: None,
        hop: hop_floor(rate, duration).ok(),
        event_loop_hop: event_loop_hop(rate, duration).ok(),
    })
}

/// The least hop at `rate` for about `duration` (at most twice that): the least client
/// against the least server on 127.0.0.1, on two threads of this process (it blocks).
pub fn hop_floor(rate: u32, duration: Duration) -> Result<HopFloor, String> {
    let (interval, count) = paced(rate, duration);
    hop_floor_with(rate, |addr| {
        least_client(addr, interval, count, duration * 2)
    })
}

/// The least hop with `client` against the least server.
fn hop_floor_with(
    rate: u32,
    client: impl FnOnce(&str) -> Result<Client, String>,
) -> Result<HopFloor, String> {
    tighten_timer_slack();
    let (listener, addr) = listen("the least server")?;
    let server = std::thread::Builder::new()
        .name("grainbench-least-server".into())
        .spawn(move || least_server(&listener))
        .map_err(|e| format!("cannot start the least server: {e}"))?;
    let client = client(&addr);
    if client.is_err() {
        // A client that failed before it connected left the server waiting to accept: a
        // connection closed at once lets it return (after one that was served, it is never
        // accepted and costs nothing).
        let _ = TcpStream::connect(&addr);
    }
    // The client hung up (or never connected): the server returns.
    let served = server
        .join()
        .map_err(|_| "the least server panicked".to_string())??;
    Ok(hop_floor_of(rate, &client?, &served))
}

/// The hop's floor at `rate` from what its client and its server measured.
fn hop_floor_of(rate: u32, client: &Client, served: &Served) -> HopFloor {
    let requests = client.latency.len();
    let per = |cpu: Duration, n: u64| round2(cpu.as_secs_f64() * 1e6 / n.max(1) as f64);
    HopFloor {
        rate_rps: rate,
        requests,
        achieved_rps: round2(requests as f64 / client.elapsed.as_secs_f64().max(1e-9)),
        client_cpu_us: per(client.cpu, requests),
        client_exchange_cpu_us: Some(per(client.exchange_cpu, requests)),
        server_cpu_us: per(served.cpu, served.measured),
        round_trip_us: Percentiles::of(&client.latency),
    }
}

/// A listener on 127.0.0.1 for `who`, and its address.
fn listen(who: &str) -> Result<(TcpListener, String), String> {
    let listener =
        TcpListener::bind("127.0.0.1:0").map_err(|e| format!("{who} cannot listen: {e}"))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("{who} has no address: {e}"))?
        .to_string();
    Ok((listener, addr))
}

/// `rate` for `duration` as the interval between requests and their count.
fn paced(rate: u32, duration: Duration) -> (Duration, u64) {
    let interval = Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
    let count = (duration.as_secs_f64() * f64::from(rate)).round().max(1.0) as u64;
    (interval, count)
}

/// What the least server measured after the client's warm-up.
struct Served {
    cpu: Duration,
    measured: u64,
}

/// The canned reply: a 64-byte JSON body, as the ping unit answers.
fn canned_reply() -> Vec<u8> {
    let body = format!("{{\"ok\":\"{}\"}}", "x".repeat(probe::BODY_BYTES - 10));
    let mut reply = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    reply.extend_from_slice(body.as_bytes());
    reply
}

/// Serves one connection: reads each whole request (headers, then its Content-Length
/// body) and writes the canned reply; its thread's CPU counts from the first request after
/// the client's warm-up until the client hangs up.
fn least_server(listener: &TcpListener) -> Result<Served, String> {
    let (mut conn, _) = listener
        .accept()
        .map_err(|e| format!("the least server cannot accept: {e}"))?;
    let _ = conn.set_nodelay(true);
    let _ = conn.set_read_timeout(Some(REPLY_TIMEOUT * 2));
    let reply = canned_reply();
    let mut serving = Serving::new();
    let mut chunk = [0u8; 4096];
    loop {
        while serving.next_request() {
            conn.write_all(&reply)
                .map_err(|e| format!("the least server cannot reply: {e}"))?;
        }
        match conn.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => serving.read(&chunk[..n]),
        }
    }
    Ok(serving.done())
}

/// A least server's bookkeeping, blocking or on an event loop: the whole requests in what
/// it has read, counted, and its thread's CPU from the first request after the client's
/// warm-up.
struct Serving {
    buf: Vec<u8>,
    served: u64,
    cpu_from: Duration,
}

impl Serving {
    fn new() -> Self {
        Serving {
            buf: Vec::with_capacity(4096),
            served: 0,
            cpu_from: thread_cpu_time(),
        }
    }

    /// Takes the next whole request out of what was read, if one is in.
    fn next_request(&mut self) -> bool {
        let Some(length) = whole_request(&self.buf) else {
            return false;
        };
        self.buf.drain(..length);
        if self.served == CLIENT_WARMUP {
            self.cpu_from = thread_cpu_time();
        }
        self.served += 1;
        true
    }

    fn read(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// What it measured, once the client has hung up.
    fn done(self) -> Served {
        Served {
            cpu: thread_cpu_time().saturating_sub(self.cpu_from),
            measured: self.served.saturating_sub(CLIENT_WARMUP),
        }
    }
}

/// The length of the whole request at the start of `buf`, once it is all there.
fn whole_request(buf: &[u8]) -> Option<usize> {
    let mut headers = [httparse::EMPTY_HEADER; 16];
    let mut request = httparse::Request::new(&mut headers);
    let head = match request.parse(buf) {
        Ok(httparse::Status::Complete(head)) => head,
        _ => return None,
    };
    let body = request
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
        .and_then(|h| {
            std::str::from_utf8(h.value)
                .ok()?
                .trim()
                .parse::<usize>()
                .ok()
        })
        .unwrap_or(0);
    (buf.len() >= head + body).then_some(head + body)
}

impl Floor {
    /// Whether the least client kept the rate (≥ 99 % of it).
    pub fn client_held(&self) -> bool {
        self.client_achieved_rps >= 0.99 * f64::from(self.rate)
    }

    /// Whether the sleeping thread slept at all: once a wake-up comes later than the next
    /// due time, it runs behind and no longer sleeps, and its CPU is no wake-up's.
    pub fn wakes_held(&self) -> bool {
        (self.wake_late_us.p50 as f64) < 1e6 / f64::from(self.rate.max(1))
    }
}

/// Sleeps until each of `count` due times `interval` apart; returns the CPU it took and
/// each wake-up's lateness (µs).
fn sleep_only(interval: Duration, count: u64) -> (Duration, hdrhistogram::Histogram<u64>) {
    let mut late = new_histogram();
    let start = Instant::now() + interval;
    let cpu_before = thread_cpu_time();
    for i in 0..count {
        let due = start + interval.mul_f64(i as f64);
        sleep_until(due);
        let _ = late.record(Instant::now().saturating_duration_since(due).as_micros() as u64);
    }
    (thread_cpu_time().saturating_sub(cpu_before), late)
}

/// What the least client measured of its requests after [`CLIENT_WARMUP`].
struct Client {
    cpu: Duration,
    /// Of it, from just after each wake-up from its timer to the reply's last byte: the
    /// request's write and the wait for its reply.
    exchange_cpu: Duration,
    /// From the first measured request's due time to the last reply.
    elapsed: Duration,
    /// µs from each write to its reply's last byte.
    latency: hdrhistogram::Histogram<u64>,
}

/// Sends `count` requests `interval` apart on one blocking connection, each after the
/// previous reply, stopping early once `limit` has passed since the first measured one;
/// the CPU and latency of the measured ones (after [`CLIENT_WARMUP`]).
fn least_client(
    addr: &str,
    interval: Duration,
    count: u64,
    limit: Duration,
) -> Result<Client, String> {
    let fail = |what: &str, e: std::io::Error| format!("the least client could not {what}: {e}");
    let mut stream = TcpStream::connect(addr).map_err(|e| fail("connect", e))?;
    stream
        .set_nodelay(true)
        .map_err(|e| fail("set TCP_NODELAY", e))?;
    stream
        .set_read_timeout(Some(REPLY_TIMEOUT))
        .map_err(|e| fail("set a read timeout", e))?;
    let request = ping_request(addr)?;
    let mut reply = Vec::with_capacity(1024);
    let mut schedule = Schedule::new(interval, count, limit);
    while let Some(due) = schedule.next_due() {
        sleep_until(due);
        let woke = schedule.woke();
        stream.write_all(&request).map_err(|e| fail("send", e))?;
        read_reply(&mut stream, &mut reply)?;
        schedule.answered(woke);
    }
    Ok(schedule.done())
}

/// A least client's schedule and bookkeeping, blocking or on an event loop: [`CLIENT_WARMUP`]
/// unmeasured requests, then `count` measured ones `interval` apart, stopping early once
/// `limit` has passed since the first measured one; the thread's CPU over the measured
/// ones, and of it from each wake-up to the reply.
struct Schedule {
    interval: Duration,
    total: u64,
    limit: Duration,
    start: Instant,
    measured_from: Instant,
    next: u64,
    cpu_before: Duration,
    exchange_cpu: Duration,
    latency: hdrhistogram::Histogram<u64>,
}

/// Where a request's exchange began: the time and the thread's CPU just after its wake-up.
struct Woke {
    at: Instant,
    cpu: Duration,
}

impl Schedule {
    fn new(interval: Duration, count: u64, limit: Duration) -> Self {
        let start = Instant::now() + interval;
        Schedule {
            interval,
            total: CLIENT_WARMUP + count,
            limit,
            start,
            measured_from: start + interval.mul_f64(CLIENT_WARMUP as f64),
            next: 0,
            cpu_before: thread_cpu_time(),
            exchange_cpu: Duration::ZERO,
            latency: new_histogram(),
        }
    }

    /// The next request's due time; none once all are sent or the limit has passed.
    fn next_due(&mut self) -> Option<Instant> {
        let i = self.next;
        if i >= self.total || (i > CLIENT_WARMUP && self.measured_from.elapsed() > self.limit) {
            return None;
        }
        if i == CLIENT_WARMUP {
            self.cpu_before = thread_cpu_time();
        }
        self.next += 1;
        Some(self.start + self.interval.mul_f64(i as f64))
    }

    /// Just after waking for the request [`Schedule::next_due`] gave.
    fn woke(&self) -> Woke {
        Woke {
            at: Instant::now(),
            cpu: thread_cpu_time(),
        }
    }

    /// Its whole reply is in.
    fn answered(&mut self, woke: Woke) {
        if self.next > CLIENT_WARMUP {
            self.exchange_cpu += thread_cpu_time().saturating_sub(woke.cpu);
            let _ = self
                .latency
                .record(woke.at.elapsed().as_micros().max(1) as u64);
        }
    }

    fn done(self) -> Client {
        Client {
            cpu: thread_cpu_time().saturating_sub(self.cpu_before),
            exchange_cpu: self.exchange_cpu,
            elapsed: self.measured_from.elapsed(),
            latency: self.latency,
        }
    }
}

/// The calibration's request, byte for byte as the driver sends it.
fn ping_request(addr: &str) -> Result<Vec<u8>, String> {
    let target = Target::new(probe::PING, addr, probe::BODY_BYTES).map_err(|e| e.to_string())?;
    Ok(
        EngineTarget::new(target.addr, &op_path(probe::PING), target.request_bytes)
            .request(&ping_body(), None),
    )
}

/// Blocks until one whole reply (headers and Content-Length body) is in `buf`, parsed as
/// the driver parses it; a reply other than 200 is an error.
fn read_reply(stream: &mut impl Read, buf: &mut Vec<u8>) -> Result<(), String> {
    buf.clear();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream
            .read(&mut chunk)
            .map_err(|e| format!("the least client's reply failed: {e}"))?;
        if n == 0 {
            return Err("the endpoint closed the least client's connection".into());
        }
        buf.extend_from_slice(&chunk[..n]);
        if whole_reply(buf)? {
            return Ok(());
        }
    }
}

/// Whether `buf` holds one whole reply, parsed as the driver parses it; a reply other than
/// 200 is an error.
fn whole_reply(buf: &[u8]) -> Result<bool, String> {
    match parse_response(buf) {
        Parsed::Incomplete => Ok(false),
        Parsed::Complete(Ok(_), ..) => Ok(true),
        Parsed::Complete(Err(class), ..) => Err(format!("the endpoint's reply failed: {class:?}")),
        Parsed::Malformed => Err("the endpoint's reply is malformed".into()),
    }
}

/// One sleep to `due` (the thread's timer slack is 1 ns); no spinning.
fn sleep_until(due: Instant) {
    let now = Instant::now();
    if due > now {
        std::thread::sleep(due - now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn a_reply_is_whole_only_with_its_body() {
        let reply = b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nabcd";
        let head = reply.len() - 4;
        let read = |bytes: &[u8]| read_reply(&mut std::io::Cursor::new(bytes), &mut Vec::new());
        // Cut short (the headers, or the body), the reply is not whole: reading goes on
        // and meets the end of the stream.
        assert!(read(&reply[..head - 1]).unwrap_err().contains("closed"));
        assert!(read(&reply[..head + 2]).unwrap_err().contains("closed"));
        assert_eq!(read(reply), Ok(()));
        assert!(read(b"HTTP/1.1 503 No\r\ncontent-length: 0\r\n\r\n").is_err());
    }

    /// A reply split over two writes is read whole, and only once.
    #[test]
    fn the_least_client_sends_each_request_once_and_reads_each_reply() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let count = 20;
        let request = ping_request(&addr).unwrap();
        let server = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            conn.set_nodelay(true).unwrap(); // else the reply's second half waits for an ACK
            let mut seen = 0u64;
            let mut buf = vec![0u8; request.len()];
            while conn.read_exact(&mut buf).is_ok() {
                assert_eq!(buf, request);
                seen += 1;
                conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-le").unwrap();
                conn.flush().unwrap();
                conn.write_all(b"ngth: 2\r\n\r\nok").unwrap();
            }
            seen
        });
        let limit = Duration::from_secs(10);
        let client = least_client(&addr, Duration::from_micros(200), count, limit).unwrap();
        assert!(client.cpu > Duration::ZERO);
        assert_eq!(
            client.latency.len(),
            count,
            "one latency per measured request"
        );
        // The client hangs up when it returns; the server then counts what it served.
        assert_eq!(server.join().unwrap(), CLIENT_WARMUP + count);
    }

    /// Faster than one request at a time can go, it stops at its limit and says what it
    /// held.
    #[test]
    fn a_least_client_that_cannot_keep_the_rate_stops_and_says_so() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let request = ping_request(&addr).unwrap();
        std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            conn.set_nodelay(true).unwrap();
            let mut buf = vec![0u8; request.len()];
            while conn.read_exact(&mut buf).is_ok() {
                std::thread::sleep(Duration::from_millis(2)); // a 2 ms round trip
                let _ = conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
            }
        });
        // 10 000 req/s (100 µs apart) for 1 s, limited to 100 ms: about 50 replies.
        let interval = Duration::from_micros(100);
        let client = least_client(&addr, interval, 10_000, Duration::from_millis(100)).unwrap();
        let done = client.latency.len();
        assert!(done > 0 && done < 1_000, "{done}");
        let floor = Floor {
            rate: 10_000,
            duration_s: 1.0,
            wake_cpu_us: 0.0,
            wake_late_us: Percentiles::default(),
            client_cpu_us: 0.0,
            client_requests: done,
            client_achieved_rps: done as f64 / client.elapsed.as_secs_f64(),
            client_latency_us: Percentiles::default(),
            driver_to_floor_ratio: None,
            hop: None,
            event_loop_hop: None,
        };
        assert!(!floor.client_held(), "{}", floor.client_achieved_rps);
    }

    /// The least hop serves every request the least client sends, and both sides' CPU is
    /// measured: the floor is a measurement, never zero.
    #[test]
    fn the_least_hop_measures_both_sides_of_every_request() {
        let floor = hop_floor(500, Duration::from_millis(400)).unwrap();
        assert_eq!(floor.requests, 200, "{floor:?}");
        assert!(
            floor.client_cpu_us > 0.0 && floor.server_cpu_us > 0.0,
            "{floor:?}"
        );
        assert!(floor.round_trip_us.p50 > 0, "{floor:?}");
        assert_eq!(floor.cpu_us(), floor.client_cpu_us + floor.server_cpu_us);
    }

    /// A client that fails before it connects does not leave the least hop waiting for
    /// it: the error comes back (it used to block in the server's accept for ever).
    #[test]
    fn a_client_that_never_connects_ends_the_least_hop_with_its_error() {
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = done.send(hop_floor_with(500, |_| Err("no route".to_string())));
        });
        let outcome = finished
            .recv_timeout(Duration::from_secs(30))
            .expect("the least hop returned instead of waiting for a client");
        assert_eq!(outcome.unwrap_err(), "no route");
    }

    #[test]
    fn a_request_is_whole_only_with_its_body() {
        let request = b"POST /op/ping HTTP/1.1\r\ncontent-length: 3\r\n\r\nabc";
        assert_eq!(whole_request(&request[..request.len() - 1]), None);
        assert_eq!(whole_request(request), Some(request.len()));
        let mut two = request.to_vec();
        two.extend_from_slice(request);
        assert_eq!(whole_request(&two), Some(request.len()), "one at a time");
    }

    #[test]
    fn sleeping_only_wakes_once_per_due_time() {
        let (cpu, late) = sleep_only(Duration::from_micros(500), 50);
        assert_eq!(late.len(), 50);
        assert!(cpu > Duration::ZERO);
    }
}
