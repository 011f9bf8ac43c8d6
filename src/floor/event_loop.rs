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

use super::least::{
    canned_reply, hop_floor_of, listen, paced, ping_request, whole_reply, Client, Schedule, Served,
    Serving,
};
use crate::driver::pacer::tighten_timer_slack;
use crate::results::HopFloor;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

/// How long the server waits for the client's connection, and either side for the other.
const WAIT: Duration = Duration::from_secs(2);

/// The least event-loop hop at `rate` for about `duration` (at most twice that), on two
/// threads of this process (it blocks).
pub fn event_loop_hop(rate: u32, duration: Duration) -> Result<HopFloor, String> {
    let (listener, addr) = listen("the least event-loop server")?;
    let server = std::thread::Builder::new()
        .name("grainbench-least-async-server".into())
        .spawn(move || on_own_runtime(|| serve(listener)))
        .map_err(|e| format!("cannot start the least event-loop server: {e}"))?;
    let (interval, count) = paced(rate, duration);
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
    Ok(hop_floor_of(rate, &client?, &served))
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
    let mut serving = Serving::new();
    let mut chunk = [0u8; 4096];
    loop {
        while serving.next_request() {
            conn.write_all(&reply)
                .await
                .map_err(|e| fail("cannot reply", e))?;
        }
        match timeout(WAIT * 2, conn.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => serving.read(&chunk[..n]),
        }
    }
    Ok(serving.done())
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
    let mut schedule = Schedule::new(interval, count, limit);
    while let Some(due) = schedule.next_due() {
        tokio::time::sleep_until(due.into()).await;
        let woke = schedule.woke();
        stream
            .write_all(&request)
            .await
            .map_err(|e| fail("send", e))?;
        timeout(WAIT, read_reply(&mut stream, &mut reply))
            .await
            .map_err(|_| "the least event-loop client's reply did not come".to_string())??;
        schedule.answered(woke);
    }
    Ok(schedule.done())
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
        if whole_reply(buf)? {
            return Ok(());
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
