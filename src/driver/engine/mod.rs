//! The load engine: one thread, one epoll loop (mio), a `timerfd` for the schedule and
//! keep-alive HTTP/1.1 connections written and parsed in place (httparse).
//!
//! Why not tokio + hyper here: tokio's timer has 1 ms resolution and waking a parked
//! worker from another thread costs ~100 µs on this machine, both of which would show up
//! as false latency in every corrected measurement. A timerfd is armed at each send time
//! with nanosecond resolution and no timer slack, the loop busy-polls only the last few µs
//! (so replies landing then are read at once, not after the send; how long is learned from
//! how late the timer wakes it, see [`SpinWindow`]), and sending is a
//! `write(2)` on an already open connection from the same thread. Like
//! wrk, one request is outstanding per connection; unlike wrk, a late reply never delays
//! the next send: a new connection is opened when none is idle. Only the in-flight cap
//! bounds this: a request due while the cap is reached waits in a queue for a free slot
//! (its latency still counts from its intended send time) and the wait is counted.
//!
//! Under a network model every request also crosses a modelled network: it leaves one
//! sampled one-way delay after it was due, and its reply is handed back one more delay
//! after it arrived (a hop is a round trip). Both wait in one deadline heap served by the
//! same timerfd and spin as the schedule; latency still counts from the due time, and each
//! release's lateness against its deadline is recorded as the injected delay's error.
//!
//! When the units speak TLS, each connection carries a rustls session driven from the same
//! loop (`engine/tls.rs`); the socket reads and writes are in `engine/socket.rs`.

pub mod connect;
mod held;
mod http;
mod schedule;
mod slice;
mod socket;
mod stats;
mod tls;

pub use super::pacer::thread_cpu_time;
use super::pacer::SpinWindow;
use super::record::{ErrorClass, Outcome, Recorder, TraceIds, TraceSampler, TracedRequest};
use super::requests::RequestGen;
use super::StepConfig;
use connect::ConnectBudget;
pub use connect::CONNECT_STALL;
use grain_runtime::precise::TimerFd;
use grain_runtime::wire::encode_request;
use held::{Held, HeldReply, ModelledNetwork, Queued};
pub use http::EngineTarget;
pub(crate) use http::{parse_response, Parsed};
use mio::net::TcpStream;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
pub use schedule::Schedule;
use slab::Slab;
pub use slice::Slice;
pub use stats::EngineStats;
use std::collections::VecDeque;
use std::io;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const TIMER: Token = Token(usize::MAX - 1);
/// How often in-flight requests are checked against their timeout.
const TIMEOUT_SWEEP: Duration = Duration::from_millis(10);
/// Most requests waiting for an in-flight slot (each holds its request bytes); past it
/// the generator is hopelessly behind its schedule and stops queueing.
pub const MAX_BACKLOG: usize = 100_000;
/// Longest single wait in the loop, so cancellation is noticed promptly.
const MAX_POLL_WAIT: Duration = Duration::from_millis(20);

struct InFlight {
    entry: usize,
    intended: Instant,
    leave_at: Instant,
    /// Replicas that refused it before this connection.
    refused: usize,
    sent: Option<Instant>,
    deadline: Instant,
    trace: Option<TraceIds>,
}

struct Conn {
    stream: TcpStream,
    /// The TLS session, when the units speak TLS.
    tls: Option<tls::TlsIo>,
    target: usize,
    /// The process it reaches (blamed when it fails).
    process: std::sync::Arc<str>,
    /// The target's generation when it was opened (see `TargetAddr::generation`).
    generation: u64,
    connected: bool,
    opened: Instant,
    out: Vec<u8>,
    out_pos: usize,
    inbuf: Vec<u8>,
    request: Option<InFlight>,
}

/// The engine: runs one step on the calling thread.
pub struct Engine<'a> {
    poll: Poll,
    timer: TimerFd,
    conns: Slab<Conn>,
    idle: Vec<Vec<usize>>,
    targets: &'a [EngineTarget],
    config: &'a StepConfig,
    slice: Slice,
    /// This thread's share of the in-flight cap.
    in_flight_cap: usize,
    in_flight: usize,
    queued: VecDeque<Queued>,
    network: ModelledNetwork,
    /// Closed loop: replies handed back whose connection's next request is still to send.
    owed: usize,
    connect: ConnectBudget,
    stats: EngineStats,
    /// Which requests carry a sampled `traceparent`.
    trace_sampler: TraceSampler,
}

impl<'a> Engine<'a> {
    pub fn new(
        targets: &'a [EngineTarget],
        config: &'a StepConfig,
        slice: Slice,
    ) -> io::Result<Self> {
        let poll = Poll::new()?;
        let timer = TimerFd::new()?;
        poll.registry()
            .register(&mut SourceFd(&timer.as_raw_fd()), TIMER, Interest::READABLE)?;
        Ok(Engine {
            poll,
            timer,
            conns: Slab::new(),
            idle: vec![Vec::new(); targets.len()],
            targets,
            config,
            slice,
            in_flight_cap: slice.share(config.in_flight_cap).max(1),
            in_flight: 0,
            queued: VecDeque::new(),
            network: ModelledNetwork::new(&config.network),
            owed: 0,
            connect: ConnectBudget::new(Instant::now(), slice.of),
            stats: EngineStats::default(),
            trace_sampler: TraceSampler::new(config.trace_sample),
        })
    }

    /// Runs the step: sends on schedule, records every outcome, and returns once every
    /// request has finished (bounded by the timeout), or at once when cancelled.
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
        let schedule = self.config.schedule;
        let total = schedule.scheduled_in(self.config.warmup + self.config.duration);
        let closed_loop = matches!(self.config.schedule, Schedule::ClosedLoop { .. });
        // Under a delaying network a due time only starts the one-way wait, so it needs
        // no spin; the releases from the deadline heap do.
        let dues_are_precise = !self.config.network.adds_delay();
        let mut events = Events::with_capacity(1024);
        let mut spin = SpinWindow::new(self.config.spin);
        // The instant the timer was last armed for, to learn how late it wakes the loop.
        let mut armed_for: Option<Instant> = None;
        let stride = self.slice.of.max(1) as u64;
        let mut next = self.slice.index as u64;
        // This thread's requests of the one stream: its first, then every `stride`-th.
        generator.skip(next);
        let mut next_sweep = start;
        let mut next_progress = start;
        self.open_pool();
        if let Schedule::ClosedLoop { connections } = self.config.schedule {
            super::pacer::wait_until(start);
            self.owed = self.slice.share(connections);
            next = total; // nothing scheduled: each handed-back reply owes the next request
        }
        loop {
            let now = Instant::now();
            let mut stopping = cancel.is_cancelled();
            // Earlier requests first: slots freed and tokens earned since the last turn.
            self.drain_queue(recorder);
            while next < total && !stopping {
                let due = start + schedule.due_after_start(next);
                if due > now {
                    break;
                }
                self.dispatch(generator, recorder, due);
                generator.skip(stride - 1);
                next += stride;
                stopping = cancel.is_cancelled();
            }
            self.release_held(recorder, now);
            if closed_loop && now < end && !stopping {
                // Only what is owed now: a request that fails at once (a refused
                // connection) owes its next one to the next turn, after the poll below.
                for _ in 0..std::mem::take(&mut self.owed) {
                    self.dispatch(generator, recorder, Instant::now());
                    generator.skip(stride - 1);
                }
            }
            if now >= next_sweep {
                self.expire(recorder, now);
                next_sweep = now + TIMEOUT_SWEEP;
            }
            if now >= next_progress {
                on_progress(now);
                next_progress = now + Duration::from_millis(100);
            }
            let closed_loop_running = closed_loop && now < end;
            let schedule_done = next >= total && !closed_loop_running;
            let drained =
                self.in_flight == 0 && self.queued.is_empty() && self.network.earliest().is_none();
            // Cancelled: stop now, not after the slowest request's timeout; the step is
            // reported as interrupted (invalid), so its unfinished requests are not counted.
            if stopping || (schedule_done && drained) {
                break;
            }
            let mut precise = self.network.earliest();
            let mut coarse = None;
            if next < total && !stopping {
                let due = start + schedule.due_after_start(next);
                if dues_are_precise {
                    precise = Some(precise.map_or(due, |at| at.min(due)));
                } else {
                    coarse = Some(due);
                }
            }
            let mut wake = coarse;
            let mut wait = MAX_POLL_WAIT.min(next_sweep.saturating_duration_since(now));
            if !self.queued.is_empty() && self.in_flight < self.in_flight_cap {
                // Waiting for a connection token, not for a slot: look again when one is due.
                wait = wait.min(self.connect.next_token_in(now));
            }
            let window = spin.window();
            if let Some(at) = precise {
                if at.saturating_duration_since(now) <= window {
                    // The last stretch: poll without sleeping until `at`, so replies that
                    // arrive meanwhile are still read the moment they land.
                    wait = Duration::ZERO;
                    wake = None;
                } else {
                    let spin_from = at - window;
                    wake = Some(wake.map_or(spin_from, |w| w.min(spin_from)));
                }
            }
            if let Some(at) = wake {
                // The timer wakes the poll below at µs precision; its own timeout is coarse.
                // Re-armed every turn, even for the same instant: skipping that left 1 % of
                // sends ~1.8 ms late while units burned CPU (the comparative planted-slowdown
                // test caught it; why exactly was not pinned down).
                let _ = self.timer.arm_in(at.saturating_duration_since(now));
                armed_for = Some(at);
            }
            if self.poll.poll(&mut events, Some(wait)).is_err() {
                continue; // EINTR: go round again
            }
            if wait.is_zero() && events.is_empty() {
                self.stats.spinning += now.elapsed();
            }
            for event in events.iter() {
                if event.token() == TIMER {
                    self.timer.take_expiration();
                    if let Some(at) = armed_for.take() {
                        spin.observe(Instant::now().saturating_duration_since(at));
                    }
                    continue;
                }
                let key = event.token().0;
                if event.is_writable() {
                    self.on_writable(key, recorder);
                }
                if event.is_readable() || event.is_read_closed() || event.is_error() {
                    self.on_readable(key, recorder);
                }
            }
            self.drain_queue(recorder);
        }
        for mut conn in self.conns.drain() {
            let _ = self.poll.registry().deregister(&mut conn.stream);
        }
        self.stats.cpu = thread_cpu_time().saturating_sub(cpu_before);
        self.stats.spin_window = spin.window();
        self.stats
    }

    /// Builds the next request of the stream, due at `intended`, and sends it after the
    /// modelled one-way delay (at once on loopback).
    fn dispatch(&mut self, generator: &mut RequestGen, recorder: &mut Recorder, intended: Instant) {
        let request = generator.next_request();
        let target = &self.targets[request.entry];
        let body = encode_request(&request.params, target.request_bytes);
        let delay = self.network.one_way();
        let trace = self.trace_sampler.draw();
        let traceparent = trace.map(|ids| ids.traceparent());
        let queued = Queued {
            entry: request.entry,
            bytes: target.request(&body, traceparent.as_deref()),
            intended,
            leave_at: intended + delay,
            refused: 0,
            trace,
        };
        if delay.is_zero() {
            self.send_or_queue(queued, recorder);
        } else {
            self.network.hold(queued.leave_at, Held::Request(queued));
        }
    }

    /// Lets go of every held request and reply whose modelled delay is over, recording how
    /// late each release was against its deadline.
    fn release_held(&mut self, recorder: &mut Recorder, now: Instant) {
        while let Some(timed) = self.network.pop_due(now) {
            let released = Instant::now();
            recorder.delay_released(timed.at, released);
            match timed.held {
                Held::Request(queued) => self.send_or_queue(queued, recorder),
                Held::Reply(reply) => self.hand_back(reply, recorder, released),
            }
        }
    }

    /// Sends `queued` now, or queues it when the in-flight cap is reached or no connection
    /// can be had yet (behind any request already waiting). A backlog
    /// already [`MAX_BACKLOG`] long means the generator has given up on its schedule: the
    /// request is counted as one the generator could not make (the step is then invalid)
    /// instead of growing the queue without bound.
    fn send_or_queue(&mut self, queued: Queued, recorder: &mut Recorder) {
        let waiting = if self.in_flight >= self.in_flight_cap {
            self.stats.in_flight_cap_hits += 1;
            queued
        } else if !self.queued.is_empty() {
            // Earlier requests are waiting for a connection: this one goes behind them.
            self.stats.connection_waits += 1;
            queued
        } else {
            let Some(waiting) = self.send(queued, recorder) else {
                return;
            };
            self.stats.connection_waits += 1;
            waiting
        };
        if self.queued.len() >= MAX_BACKLOG {
            self.generator_error(recorder, waiting.entry, waiting.intended);
            return;
        }
        self.queued.push_back(waiting);
    }

    /// A request's reply reached the caller: it is finished.
    fn hand_back(&mut self, reply: HeldReply, recorder: &mut Recorder, done: Instant) {
        self.in_flight -= 1;
        let HeldReply {
            entry,
            intended,
            sent,
            outcome,
            blame,
            trace,
            leave_at,
            arrived,
        } = reply;
        if let Some(ids) = trace {
            recorder.traced(TracedRequest {
                ids,
                entry,
                intended,
                leave_at,
                sent,
                arrived,
                done,
                outcome,
            });
        }
        self.finish(recorder, entry, intended, sent, done, outcome, blame);
    }

    /// Records how a request ended, whichever way it did (reply, error, timeout, refused
    /// connection, expired in the queue). In closed loop its connection slot is owed its
    /// next request either way: a failure never takes a slot out of the step.
    #[allow(clippy::too_many_arguments)]
    fn finish(
        &mut self,
        recorder: &mut Recorder,
        entry: usize,
        intended: Instant,
        sent: Option<Instant>,
        done: Instant,
        outcome: Outcome,
        blame: Option<std::sync::Arc<str>>,
    ) {
        recorder.finished_blaming(entry, intended, sent, done, outcome, blame);
        if matches!(self.config.schedule, Schedule::ClosedLoop { .. }) {
            self.owed += 1;
        }
    }

    /// Sends queued requests while slots are free and connections can be had.
    fn drain_queue(&mut self, recorder: &mut Recorder) {
        while self.in_flight < self.in_flight_cap {
            let Some(queued) = self.queued.pop_front() else {
                break;
            };
            if let Some(waiting) = self.send(queued, recorder) {
                self.queued.push_front(waiting);
                break;
            }
        }
    }

    /// Sends `request` on an idle connection or a new one; hands it back when there is
    /// none and the connect budget is spent. A replica that refuses the connection passes
    /// the request to the next one (nothing was sent), as a load balancer does.
    fn send(&mut self, mut request: Queued, recorder: &mut Recorder) -> Option<Queued> {
        let entry = request.entry;
        let key = match self.idle_connection(entry) {
            Some(key) => key,
            None if !self.connect.try_take(Instant::now()) => return Some(request),
            None => loop {
                match self.connect(entry) {
                    Ok(key) => break key,
                    Err((error, process)) => {
                        let class = ErrorClass::of_connect_error(&error);
                        let replicas = self.targets[entry].addr.replicas();
                        if class == ErrorClass::Connect && request.refused + 1 < replicas {
                            request.refused += 1;
                            continue;
                        }
                        let (intended, now) = (request.intended, Instant::now());
                        let blame = Some(process);
                        self.finish(recorder, entry, intended, None, now, Err(class), blame);
                        return None;
                    }
                }
            },
        };
        let Queued {
            entry,
            bytes,
            intended,
            leave_at,
            refused,
            trace,
        } = request;
        let conn = &mut self.conns[key];
        conn.out = bytes;
        conn.out_pos = 0;
        conn.inbuf.clear();
        conn.request = Some(InFlight {
            entry,
            intended,
            leave_at,
            refused,
            sent: None,
            deadline: intended + self.config.timeout,
            trace,
        });
        self.in_flight += 1;
        self.stats.max_in_flight = self.stats.max_in_flight.max(self.in_flight);
        if conn.connected {
            self.flush(key, recorder);
        }
        None
    }

    /// An idle connection to `entry`'s current replicas; one to a replaced process is
    /// closed instead (it drains and closes it: a request written then would be lost).
    fn idle_connection(&mut self, entry: usize) -> Option<usize> {
        let current = self.targets[entry].addr.generation();
        while let Some(key) = self.idle[entry].pop() {
            if self.conns[key].generation == current {
                return Some(key);
            }
            self.close(key);
        }
        None
    }

    /// A reply arrived on `key`: the connection is free again, and the reply reaches the
    /// caller after the modelled one-way delay (at once on loopback).
    fn complete(
        &mut self,
        key: usize,
        recorder: &mut Recorder,
        outcome: Outcome,
        blame: Option<std::sync::Arc<str>>,
    ) {
        let arrived = Instant::now();
        let conn = &mut self.conns[key];
        let request = conn.request.take();
        conn.inbuf.clear();
        let target = conn.target;
        self.idle[target].push(key);
        let Some(request) = request else {
            return;
        };
        let reply = HeldReply {
            entry: request.entry,
            intended: request.intended,
            sent: request.sent,
            outcome,
            blame,
            trace: request.trace,
            leave_at: request.leave_at,
            arrived,
        };
        let delay = self.network.one_way();
        if delay.is_zero() {
            self.hand_back(reply, recorder, arrived);
        } else {
            self.network.hold(arrived + delay, Held::Reply(reply));
        }
    }

    /// A request the load generator itself could not make (or whose connection stalled):
    /// the step's own failure, not the architecture's.
    fn generator_error(&mut self, recorder: &mut Recorder, entry: usize, intended: Instant) {
        let now = Instant::now();
        let failed = Err(ErrorClass::Generator);
        self.finish(recorder, entry, intended, None, now, failed, None);
    }

    /// Ends the request on `key` with an error, blaming the process the connection
    /// reaches, and drops the connection. A refused connection whose request was never
    /// sent passes it to the next replica instead, when there is one it has not tried.
    fn fail(&mut self, key: usize, recorder: &mut Recorder, class: ErrorClass) {
        if let Some(conn) = self.conns.get_mut(key) {
            if let Some(request) = conn.request.take() {
                self.in_flight -= 1;
                let replicas = self.targets[conn.target].addr.replicas();
                let unsent = request.sent.is_none() && conn.out_pos == 0;
                if class == ErrorClass::Connect && unsent && request.refused + 1 < replicas {
                    let retry = Queued {
                        entry: request.entry,
                        bytes: std::mem::take(&mut conn.out),
                        intended: request.intended,
                        leave_at: request.leave_at,
                        refused: request.refused + 1,
                        trace: request.trace,
                    };
                    self.close(key);
                    self.queued.push_front(retry);
                    return;
                }
                let (entry, intended, sent) = (request.entry, request.intended, request.sent);
                let blame = Some(conn.process.clone());
                let now = Instant::now();
                self.finish(recorder, entry, intended, sent, now, Err(class), blame);
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
                let timed_out = Err(ErrorClass::Timeout);
                self.finish(recorder, q.entry, q.intended, None, now, timed_out, None);
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
