//! The least event-loop hop: the least hop's request and canned reply, with the client and
//! the server each on a current-thread tokio runtime of its own (one thread each, the
//! leanest event loop tokio has). The client sleeps on tokio's timer until each due time,
//! writes the request and awaits the reply; the server awaits each request on its one
//! connection and writes the reply. Nothing else: no HTTP library, router or codec.
//!
//! Beside the least hop (blocking threads, [`super::hop_floor`]) it splits a unit's hop
//! into what any event loop pays on this machine (readiness polling, the reactor's extra
//! system calls and wake-ups, the timer) and what the units' own stack adds over it. Each
//! side's CPU is its thread's CPU clock: a current-thread runtime drives its I/O and its
//! timer on the thread that blocks on it.

use super::{canned_reply, ping_request, whole_request, Client, Served, CLIENT_WARMUP};
use crate::driver::engine::{parse_response, Parsed};
use crate::driver::new_histogram;
use crate::driver::pacer::{thread_cpu_time, tighten_timer_slack};
use crate::results::HopFloor;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{timeout, Instant};

/// How long the server waits for the client's connection, and either side for the other.
const WAIT: Duration = Duration::from_secs(2);

/// The least event-loop hop at `rate` for about `duration` (at most twice that), on two
/// threads of this process (it blocks).
pub fn event_loop_hop(rate: u32, duration: Duration) -> Result<HopFloor, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| format!("the least event-loop server cannot listen: {e}"))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("the least event-loop server has no address: {e}"))?
        .to_string();
    let server = std::thread::Builder::new()
        .name("grainbench-least-async-server".into())
        .spawn(move || on_own_runtime(|| serve(listener)))
        .map_err(|e| format!("cannot start the least event-loop server: {e}"))?;
    let interval = Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
    let count = (duration.as_secs_f64() * f64::from(rate)).round().max(1.0) as u64;
    let client = std::thread::Builder::new()
        .name("grainbench-least-async-client".into())
        .spawn(move || on_own_runtime(|| request(&addr, interval, count, duration * 2)))
        .map_err(|e| format!("cannot start the least event-loop client: {e}"))?
        .join()
        .map_err(|_| "the least event-loop client panicked".to_string())?;
    // The client hung up (or never connected, and the server gave up waiting): it returns.
    let served = server
        .join()
        .map_err(|_| "the least event-loop server panicked".to_string())??;
    Ok(super::hop_floor_of(rate, &client?, &served))
}

/// Runs `task` on a current-thread runtime built on the calling thread.
fn on_own_runtime<T, F>(task: impl FnOnce() -> F) -> Result<T, String>
where
    F: std::future::Future<Output = Result<T, String>>,
{
    tighten_timer_slack();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot build an event loop: {e}"))?
        .block_on(task())
}

/// Serves one connection as the least server does, awaiting instead of blocking.
async fn serve(listener: std::net::TcpListener) -> Result<Served, String> {
    let fail = |what: &str, e: std::io::Error| format!("the least event-loop server {what}: {e}");
    listener
        .set_nonblocking(true)
        .map_err(|e| fail("cannot listen", e))?;
    let listener = TcpListener::from_std(listener).map_err(|e| fail("cannot listen", e))?;
    let (mut conn, _) = timeout(WAIT, listener.accept())
        .await
        .map_err(|_| "the least event-loop client never connected".to_string())?
        .map_err(|e| fail("cannot accept", e))?;
    let _ = conn.set_nodelay(true);
    let reply = canned_reply();
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    let (mut served, mut cpu_from) = (0u64, thread_cpu_time());
    loop {
        while let Some(length) = whole_request(&buf) {
            buf.drain(..length);
            if served == CLIENT_WARMUP {
                cpu_from = thread_cpu_time();
            }
            conn.write_all(&reply)
                .await
                .map_err(|e| fail("cannot reply", e))?;
            served += 1;
        }
        match timeout(WAIT * 2, conn.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    Ok(Served {
        cpu: thread_cpu_time().saturating_sub(cpu_from),
        measured: served.saturating_sub(CLIENT_WARMUP),
    })
}

/// The least client's schedule on the event loop: sleep on tokio's timer until each due
/// time, write, await the whole reply; stops early once `limit` has passed since the first
/// measured request.
async fn request(
    addr: &str,
    interval: Duration,
    count: u64,
    limit: Duration,
) -> Result<Client, String> {
    let fail = |what: &str, e: std::io::Error| {
        format!("the least event-loop client could not {what}: {e}")
    };
    let mut stream = TcpStream::connect(addr)
        .await
        .map_err(|e| fail("connect", e))?;
    stream
        .set_nodelay(true)
        .map_err(|e| fail("set TCP_NODELAY", e))?;
    let request = ping_request(addr)?;
    let mut reply = Vec::with_capacity(1024);
    let mut latency = new_histogram();
    let start = Instant::now() + interval;
    let measured_from = start + interval.mul_f64(CLIENT_WARMUP as f64);
    let mut cpu_before = thread_cpu_time();
    let mut exchange_cpu = Duration::ZERO;
    for i in 0..CLIENT_WARMUP + count {
        if i == CLIENT_WARMUP {
            cpu_before = thread_cpu_time();
        }
        if i > CLIENT_WARMUP && measured_from.elapsed() > limit {
            break;
        }
        tokio::time::sleep_until(start + interval.mul_f64(i as f64)).await;
        let (sent, woke) = (Instant::now(), thread_cpu_time());
        stream
            .write_all(&request)
            .await
            .map_err(|e| fail("send", e))?;
        timeout(WAIT, read_reply(&mut stream, &mut reply))
            .await
            .map_err(|_| "the least event-loop client's reply did not come".to_string())??;
        if i >= CLIENT_WARMUP {
            exchange_cpu += thread_cpu_time().saturating_sub(woke);
            let _ = latency.record(sent.elapsed().as_micros().max(1) as u64);
        }
    }
    Ok(Client {
        cpu: thread_cpu_time().saturating_sub(cpu_before),
        exchange_cpu,
        elapsed: measured_from.elapsed(),
        latency,
    })
}

/// Awaits one whole reply in `buf`, parsed as the driver parses it.
async fn read_reply(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<(), String> {
    buf.clear();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream
            .read(&mut chunk)
            .await
            .map_err(|e| format!("the least event-loop client's reply failed: {e}"))?;
        if n == 0 {
            return Err("the least event-loop server closed the connection".into());
        }
        buf.extend_from_slice(&chunk[..n]);
        match parse_response(buf) {
            Parsed::Incomplete => {}
            Parsed::Complete(Ok(_), ..) => return Ok(()),
            Parsed::Complete(Err(class), ..) => {
                return Err(format!(
                    "the least event-loop server's reply failed: {class:?}"
                ))
            }
            Parsed::Malformed => {
                return Err("the least event-loop server's reply is malformed".into())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every request the client sends is served, both sides' CPU is measured (never zero),
    /// and the hop is the least hop's shape: a HopFloor at the asked rate.
    #[test]
    fn the_least_event_loop_hop_measures_both_sides_of_every_request() {
        let floor = event_loop_hop(500, Duration::from_millis(400)).unwrap();
        assert_eq!(floor.requests, 200, "{floor:?}");
        assert_eq!(floor.rate_rps, 500);
        assert!(
            floor.client_cpu_us > 0.0 && floor.server_cpu_us > 0.0,
            "{floor:?}"
        );
        assert!(floor.round_trip_us.p50 > 0, "{floor:?}");
    }
}
