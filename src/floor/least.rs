//! What the least client and the least server keep, whichever way they wait (blocking
//! threads in [`super`], event loops in [`super::event_loop`]): the request and the canned
//! reply, where a whole request or reply ends, the client's schedule with its warm-up and
//! its CPU split at each wake-up, the server's count and CPU, and the hop's floor made of
//! the two.

use super::round2;
use crate::deploy::probe::{self, ping_body};
use crate::driver::engine::{parse_response, EngineTarget, Parsed};
use crate::driver::pacer::thread_cpu_time;
use crate::driver::{new_histogram, Target};
use crate::results::{HopFloor, Percentiles};
use grain_runtime::wire::op_path;
use std::net::TcpListener;
use std::time::{Duration, Instant};

/// Unmeasured requests the least client sends first (connection and endpoint warm).
pub(super) const CLIENT_WARMUP: u64 = 200;
/// The warm-up's requests are at most this far apart, whatever the rate: at 10 req/s, 200
/// requests at the rate would take 20 s per floor, before a round of a 1 s step.
const WARMUP_INTERVAL: Duration = Duration::from_millis(1);

/// The hop's floor at `rate` from what its client and its server measured.
pub(super) fn hop_floor_of(rate: u32, client: &Client, served: &Served) -> HopFloor {
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
pub(super) fn listen(who: &str) -> Result<(TcpListener, String), String> {
    let listener =
        TcpListener::bind("127.0.0.1:0").map_err(|e| format!("{who} cannot listen: {e}"))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("{who} has no address: {e}"))?
        .to_string();
    Ok((listener, addr))
}

/// `rate` for `duration` as the interval between requests and their count.
pub(super) fn paced(rate: u32, duration: Duration) -> (Duration, u64) {
    let interval = Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
    let count = (duration.as_secs_f64() * f64::from(rate)).round().max(1.0) as u64;
    (interval, count)
}

/// What the least server measured after the client's warm-up.
pub(super) struct Served {
    cpu: Duration,
    measured: u64,
}

/// The canned reply: a 64-byte JSON body, as the ping unit answers.
pub(super) fn canned_reply() -> Vec<u8> {
    let body = format!("{{\"ok\":\"{}\"}}", "x".repeat(probe::BODY_BYTES - 10));
    let mut reply = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    reply.extend_from_slice(body.as_bytes());
    reply
}

/// A least server's bookkeeping, blocking or on an event loop: the whole requests in what
/// it has read, counted, and its thread's CPU from the first request after the client's
/// warm-up.
pub(super) struct Serving {
    buf: Vec<u8>,
    served: u64,
    cpu_from: Duration,
}

impl Serving {
    pub(super) fn new() -> Self {
        Serving {
            buf: Vec::with_capacity(4096),
            served: 0,
            cpu_from: thread_cpu_time(),
        }
    }

    /// Takes the next whole request out of what was read, if one is in.
    pub(super) fn next_request(&mut self) -> bool {
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

    pub(super) fn read(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// What it measured, once the client has hung up.
    pub(super) fn done(self) -> Served {
        Served {
            cpu: thread_cpu_time().saturating_sub(self.cpu_from),
            measured: self.served.saturating_sub(CLIENT_WARMUP),
        }
    }
}

/// The length of the whole request at the start of `buf`, once it is all there.
pub(super) fn whole_request(buf: &[u8]) -> Option<usize> {
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

/// What the least client measured of its requests after [`CLIENT_WARMUP`].
pub(super) struct Client {
    pub(super) cpu: Duration,
    /// Of it, from just after each wake-up from its timer to the reply's last byte: the
    /// request's write and the wait for its reply.
    pub(super) exchange_cpu: Duration,
    /// From the first measured request's due time to the last reply.
    pub(super) elapsed: Duration,
    /// µs from each write to its reply's last byte.
    pub(super) latency: hdrhistogram::Histogram<u64>,
}

/// A least client's schedule and bookkeeping, blocking or on an event loop: [`CLIENT_WARMUP`]
/// unmeasured requests (at most [`WARMUP_INTERVAL`] apart), then `count` measured ones
/// `interval` apart, stopping early once `limit` has passed since the first measured one;
/// the thread's CPU over the measured ones, and of it from each wake-up to the reply.
pub(super) struct Schedule {
    interval: Duration,
    warmup: Duration,
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
pub(super) struct Woke {
    at: Instant,
    cpu: Duration,
}

impl Schedule {
    pub(super) fn new(interval: Duration, count: u64, limit: Duration) -> Self {
        let warmup = interval.min(WARMUP_INTERVAL);
        let start = Instant::now() + warmup;
        Schedule {
            interval,
            warmup,
            total: CLIENT_WARMUP + count,
            limit,
            start,
            measured_from: start + warmup.mul_f64(CLIENT_WARMUP as f64),
            next: 0,
            cpu_before: thread_cpu_time(),
            exchange_cpu: Duration::ZERO,
            latency: new_histogram(),
        }
    }

    /// The next request's due time; none once all are sent or the limit has passed.
    pub(super) fn next_due(&mut self) -> Option<Instant> {
        let i = self.next;
        if i >= self.total || (i > CLIENT_WARMUP && self.measured_from.elapsed() > self.limit) {
            return None;
        }
        if i == CLIENT_WARMUP {
            self.cpu_before = thread_cpu_time();
        }
        self.next += 1;
        Some(match i.checked_sub(CLIENT_WARMUP) {
            None => self.start + self.warmup.mul_f64(i as f64),
            Some(measured) => self.measured_from + self.interval.mul_f64(measured as f64),
        })
    }

    /// Just after waking for the request [`Schedule::next_due`] gave.
    pub(super) fn woke(&self) -> Woke {
        Woke {
            at: Instant::now(),
            cpu: thread_cpu_time(),
        }
    }

    /// Its whole reply is in.
    pub(super) fn answered(&mut self, woke: Woke) {
        if self.next > CLIENT_WARMUP {
            self.exchange_cpu += thread_cpu_time().saturating_sub(woke.cpu);
            let _ = self
                .latency
                .record(woke.at.elapsed().as_micros().max(1) as u64);
        }
    }

    pub(super) fn done(self) -> Client {
        Client {
            cpu: thread_cpu_time().saturating_sub(self.cpu_before),
            exchange_cpu: self.exchange_cpu,
            elapsed: self.measured_from.elapsed(),
            latency: self.latency,
        }
    }
}

/// The calibration's request, byte for byte as the driver sends it.
pub(super) fn ping_request(addr: &str) -> Result<Vec<u8>, String> {
    let target = Target::new(probe::PING, addr, probe::BODY_BYTES).map_err(|e| e.to_string())?;
    Ok(
        EngineTarget::new(target.addr, &op_path(probe::PING), target.request_bytes)
            .request(&ping_body(), None),
    )
}

/// Whether `buf` holds one whole reply, parsed as the driver parses it; a reply other than
/// 200 is an error.
pub(super) fn whole_reply(buf: &[u8]) -> Result<bool, String> {
    match parse_response(buf) {
        Parsed::Incomplete => Ok(false),
        Parsed::Complete(Ok(_), ..) => Ok(true),
        Parsed::Complete(Err(class), ..) => Err(format!("the endpoint's reply failed: {class:?}")),
        Parsed::Malformed => Err("the endpoint's reply is malformed".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// At a slow rate the warm-up still takes a fifth of a second, not 200 intervals (at
    /// 10 req/s a least hop took 22 s, and a round's three floors over a minute); the
    /// measured requests keep the rate.
    #[test]
    fn the_warm_up_is_quick_whatever_the_rate() {
        let interval = Duration::from_millis(100);
        let mut schedule = Schedule::new(interval, 3, Duration::from_secs(10));
        let dues: Vec<Instant> = std::iter::from_fn(|| schedule.next_due()).collect();
        assert_eq!(dues.len(), CLIENT_WARMUP as usize + 3);
        let warm = CLIENT_WARMUP as usize;
        assert!(
            dues[warm] - dues[0] <= Duration::from_millis(201),
            "{:?}",
            dues[warm] - dues[0]
        );
        for pair in dues[warm..].windows(2) {
            let apart = pair[1] - pair[0];
            assert!(
                apart.abs_diff(interval) < Duration::from_micros(1),
                "{apart:?}"
            );
        }
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
}
