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
//!   each on a current-thread tokio runtime: what an event loop adds to the least hop;
//! - the least hop pinned on one core and across two ([`Placement`]): what a wake-up that
//!   crosses cores costs (every run measures the one across two cores too).
//!
//! All are read from the kernel's per-thread CPU clock, the clock of the driver's own
//! figure, so "driver / floor" says how much of the driver's CPU per request is its own
//! work and how much any client pays on this machine for waking up and using loopback TCP.
//! The least client's latency (its write to the reply's last byte) sits beside the
//! driver's own from the actual send: what any client waking for a reply would measure.

use crate::driver::new_histogram;
use crate::driver::pacer::{thread_cpu_time, tighten_timer_slack};
use crate::results::{HopFloor, Percentiles};
use serde::Serialize;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

mod event_loop;
mod least;
mod placement;
pub use event_loop::event_loop_hop;
use least::{
    canned_reply, hop_floor_of, listen, paced, ping_request, whole_reply, Client, Schedule, Served,
    Serving,
};
use placement::pin_this_thread;
pub use placement::Placement;

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
    /// The least hop with its client and server pinned to one core (none if it failed).
    pub hop_one_core: Option<HopFloor>,
    /// The same pinned to two cores (none if it failed, or with one core): set against
    /// [`Self::hop_one_core`], what a wake-up across cores costs on this machine.
    pub hop_across_cores: Option<HopFloor>,
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
        hop: hop_floor(rate, duration, Placement::Free).ok(),
        hop_one_core: hop_floor(rate, duration, Placement::OneCore).ok(),
        hop_across_cores: hop_floor(rate, duration, Placement::AcrossCores).ok(),
        event_loop_hop: event_loop_hop(rate, duration).ok(),
    })
}

/// The least hop at `rate` for about `duration` (at most twice that): the least client
/// against the least server on 127.0.0.1, on two threads of this process placed as
/// `placement` says (it blocks).
pub fn hop_floor(rate: u32, duration: Duration, placement: Placement) -> Result<HopFloor, String> {
    let (interval, count) = paced(rate, duration);
    hop_floor_with(rate, placement, move |addr| {
        least_client(addr, interval, count, duration * 2)
    })
}

/// The least hop with `client` against the least server, placed as `placement` says.
fn hop_floor_with(
    rate: u32,
    placement: Placement,
    client: impl FnOnce(&str) -> Result<Client, String> + Send + 'static,
) -> Result<HopFloor, String> {
    let cores = placement.cores()?;
    let (listener, addr) = listen("the least server")?;
    let server = std::thread::Builder::new()
        .name("grainbench-least-server".into())
        .spawn(move || {
            if let Some((_, core)) = cores {
                pin_this_thread(core)?;
            }
            least_server(&listener)
        })
        .map_err(|e| format!("cannot start the least server: {e}"))?;
    // The client has a thread of its own, so that pinning it leaves the caller's alone.
    let client_addr = addr.clone();
    let client = std::thread::Builder::new()
        .name("grainbench-least-client".into())
        .spawn(move || {
            tighten_timer_slack();
            if let Some((core, _)) = cores {
                pin_this_thread(core)?;
            }
            client(&client_addr)
        })
        .map_err(|e| format!("cannot start the least client: {e}"))?
        .join()
        .map_err(|_| "the least client panicked".to_string())
        .and_then(|client| client);
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

/// One sleep to `due` (the thread's timer slack is 1 ns); no spinning.
fn sleep_until(due: Instant) {
    let now = Instant::now();
    if due > now {
        std::thread::sleep(due - now);
    }
}

#[cfg(test)]
mod tests {
    use super::least::CLIENT_WARMUP;
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
            hop_one_core: None,
            hop_across_cores: None,
        };
        assert!(!floor.client_held(), "{}", floor.client_achieved_rps);
    }

    /// The least hop serves every request the least client sends, and both sides' CPU is
    /// measured: the floor is a measurement, never zero.
    #[test]
    fn the_least_hop_measures_both_sides_of_every_request() {
        let floor = hop_floor(500, Duration::from_millis(400), Placement::Free).unwrap();
        assert_eq!(floor.requests, 200, "{floor:?}");
        assert!(
            floor.client_cpu_us > 0.0 && floor.server_cpu_us > 0.0,
            "{floor:?}"
        );
        assert!(floor.round_trip_us.p50 > 0, "{floor:?}");
        assert_eq!(floor.cpu_us(), floor.client_cpu_us + floor.server_cpu_us);
    }

    /// Placed on one core or across two, the least client runs pinned to its core (and the
    /// hop is measured); with one core only, the hop across two is an error, not a hop
    /// measured on one core.
    #[test]
    fn a_placed_least_hop_pins_its_client() {
        let cores = placement::allowed_cores().unwrap();
        for placement in [Placement::OneCore, Placement::AcrossCores] {
            let first = cores[0];
            let measured = hop_floor_with(500, placement, move |addr| {
                let pinned = placement::allowed_cores().map_err(|e| e.to_string())?;
                assert_eq!(pinned, [first], "{placement:?}");
                least_client(addr, Duration::from_millis(2), 50, Duration::from_secs(1))
            });
            match (placement, cores.len()) {
                (Placement::AcrossCores, 1) => assert!(measured.is_err()),
                _ => assert_eq!(measured.unwrap().requests, 50, "{placement:?}"),
            }
        }
    }

    /// A client that fails before it connects does not leave the least hop waiting for
    /// it: the error comes back (it used to block in the server's accept for ever).
    #[test]
    fn a_client_that_never_connects_ends_the_least_hop_with_its_error() {
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = done.send(hop_floor_with(500, Placement::Free, |_| {
                Err("no route".to_string())
            }));
        });
        let outcome = finished
            .recv_timeout(Duration::from_secs(30))
            .expect("the least hop returned instead of waiting for a client");
        assert_eq!(outcome.unwrap_err(), "no route");
    }

    #[test]
    fn sleeping_only_wakes_once_per_due_time() {
        let (cpu, late) = sleep_only(Duration::from_micros(500), 50);
        assert_eq!(late.len(), 50);
        assert!(cpu > Duration::ZERO);
    }
}
