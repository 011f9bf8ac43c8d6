//! Opening connections without a burst. One request is outstanding per connection, so a
//! step whose replies slow down wants a new connection for every request due meanwhile:
//! on a 16-core machine a cold step at 14 760 req/s opened 10 372 in well under a second,
//! the units' accept queues overflowed (1 394 listen overflows), and every dropped SYN was
//! retried after TCP's 1 s initial retransmission timeout: a one-second stall that looked
//! like the architecture's.
//!
//! So connections are opened from a token bucket ([`CONNECTS_PER_SECOND`], bursts of
//! [`CONNECT_BURST`]); a request due while no connection is idle and no token is left
//! waits in the engine's queue (its latency still counts from its due time) and the wait
//! is counted. A pool is opened before the schedule starts, sized from the rate, so a
//! steady step never waits. A connection whose handshake takes longer than
//! [`CONNECT_STALL`] is a load-generator failure: its request is counted as the
//! generator's error, and the step is invalid.

use super::tls::TlsIo;
use super::{Conn, Engine, Recorder, Schedule};
use mio::net::TcpStream;
use mio::{Interest, Token};
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// New connections per second the engine may open, once its burst is spent: far above a
/// steady step's needs, far below what overflows a unit's accept queue.
pub const CONNECTS_PER_SECOND: f64 = 5_000.0;
/// Connections the engine may open at once.
pub const CONNECT_BURST: f64 = 256.0;
/// A handshake slower than this on loopback or a bridge lost a SYN (TCP retries after 1 s).
pub const CONNECT_STALL: Duration = Duration::from_millis(100);
/// Most connections opened per target before the schedule starts.
const MAX_POOL: usize = 128;

/// A token bucket of connection openings.
#[derive(Debug, Clone)]
pub struct ConnectBudget {
    tokens: f64,
    last: Instant,
    /// This load thread's share of the rate and the burst (1 / threads).
    share: f64,
}

impl ConnectBudget {
    /// The budget of one of `threads` load threads: its share of the rate and burst.
    pub fn new(now: Instant, threads: usize) -> Self {
        let share = 1.0 / threads.max(1) as f64;
        ConnectBudget {
            tokens: (CONNECT_BURST * share).max(1.0),
            last: now,
            share,
        }
    }

    fn rate(&self) -> f64 {
        CONNECTS_PER_SECOND * self.share
    }

    fn refill(&mut self, now: Instant) {
        let earned = now.saturating_duration_since(self.last).as_secs_f64() * self.rate();
        self.tokens = (self.tokens + earned).min((CONNECT_BURST * self.share).max(1.0));
        self.last = now;
    }

    /// Takes a token if one is left at `now`.
    pub fn try_take(&mut self, now: Instant) -> bool {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// How long from `now` until the next token.
    pub fn next_token_in(&self, now: Instant) -> Duration {
        let earned = now.saturating_duration_since(self.last).as_secs_f64() * self.rate();
        let missing = (1.0 - self.tokens - earned).max(0.0);
        Duration::from_secs_f64(missing / self.rate())
    }
}

/// Connections to open per target before the schedule starts: what the rate keeps busy
/// at a 2 ms reply (at least one), or every closed-loop connection; within the burst.
pub fn pool_size(schedule: Schedule, targets: usize) -> usize {
    let targets = targets.max(1);
    let wanted = match schedule {
        Schedule::OpenLoop { rate } => (f64::from(rate) * 0.002 / targets as f64).ceil() as usize,
        Schedule::ClosedLoop { connections } => connections.div_ceil(targets),
    };
    let burst_share = CONNECT_BURST as usize / targets;
    wanted.clamp(1, MAX_POOL.min(burst_share.max(1)))
}

impl Engine<'_> {
    /// Opens the pool the schedule starts with (see [`connect::pool_size`]).
    pub(super) fn open_pool(&mut self) {
        let whole = pool_size(self.config.schedule, self.targets.len());
        let per_target = self.slice.share(whole).max(1);
        for target in 0..self.targets.len() {
            for _ in 0..per_target {
                if !self.connect.try_take(Instant::now()) {
                    return;
                }
                if let Ok(key) = self.connect(target) {
                    self.idle[target].push(key);
                }
            }
        }
    }

    /// Opens a connection to the replica of `target` whose turn it is; a failure names
    /// the replica.
    pub(super) fn connect(&mut self, target: usize) -> Result<usize, (io::Error, Arc<str>)> {
        // Read before the replica: a move in between costs one needless reconnect, never a
        // connection to a replaced process taken for a current one.
        let generation = self.targets[target].addr.generation();
        let Some(replica) = self.targets[target].addr.next() else {
            let error = io::Error::new(io::ErrorKind::NotConnected, "no replica");
            return Err((error, Arc::from("no replica")));
        };
        let failed = |error| (error, replica.process.clone());
        let tls = match &self.targets[target].tls {
            Some(config) => Some(
                TlsIo::new(config, &mut self.stats.tls)
                    .map_err(io::Error::other)
                    .map_err(failed)?,
            ),
            None => None,
        };
        let stream = TcpStream::connect(replica.addr).map_err(failed)?;
        stream.set_nodelay(true).map_err(failed)?;
        let entry = self.conns.vacant_entry();
        let key = entry.key();
        let mut conn = Conn {
            stream,
            tls,
            target,
            process: replica.process.clone(),
            generation,
            connected: false,
            opened: Instant::now(),
            out: Vec::new(),
            out_pos: 0,
            inbuf: Vec::with_capacity(4096),
            request: None,
        };
        self.poll
            .registry()
            .register(
                &mut conn.stream,
                Token(key),
                Interest::READABLE | Interest::WRITABLE,
            )
            .map_err(failed)?;
        entry.insert(conn);
        self.stats.connections_opened += 1;
        Ok(key)
    }

    /// `key` took longer than [`CONNECT_STALL`] to connect: a SYN was lost (an accept queue
    /// overflowed). The request it carried is the generator's failure, not the
    /// architecture's; the connection, now open, serves the next one.
    pub(super) fn connect_stalled(&mut self, key: usize, recorder: &mut Recorder) {
        self.stats.connect_stalls += 1;
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if let Some(request) = conn.request.take() {
            conn.out.clear();
            conn.out_pos = 0;
            let target = conn.target;
            self.in_flight -= 1;
            self.idle[target].push(key);
            self.generator_error(recorder, request.entry, request.intended);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_allows_a_burst_then_its_rate() {
        let t0 = Instant::now();
        let mut budget = ConnectBudget::new(t0, 1);
        let burst = (0..1_000).filter(|_| budget.try_take(t0)).count();
        assert_eq!(burst, CONNECT_BURST as usize);
        assert!(!budget.try_take(t0));
        let wait = budget.next_token_in(t0);
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_micros(201),
            "{wait:?}"
        );
        // One second later: the rate's worth, never more than a burst.
        let later = t0 + Duration::from_secs(1);
        let opened = (0..100_000).filter(|_| budget.try_take(later)).count();
        assert_eq!(opened, CONNECT_BURST as usize);
    }

    #[test]
    fn threads_share_the_budget() {
        let t0 = Instant::now();
        let mut quarter = ConnectBudget::new(t0, 4);
        let burst = (0..1_000).filter(|_| quarter.try_take(t0)).count();
        assert_eq!(burst, CONNECT_BURST as usize / 4);
    }

    #[test]
    fn the_pool_follows_the_rate_within_bounds() {
        assert_eq!(pool_size(Schedule::OpenLoop { rate: 100 }, 2), 1);
        assert_eq!(pool_size(Schedule::OpenLoop { rate: 10_000 }, 1), 20);
        assert_eq!(
            pool_size(Schedule::OpenLoop { rate: 1_000_000 }, 1),
            MAX_POOL
        );
        assert_eq!(pool_size(Schedule::ClosedLoop { connections: 16 }, 2), 8);
    }
}
