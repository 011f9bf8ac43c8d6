//! Microsecond-precise waiting, shared by the load driver and the units.
//!
//! - [`wait_until`] blocks the calling thread: it sleeps with the thread's timer slack at
//!   1 ns until just before the deadline, then spins the last few µs.
//! - [`sleep_until`] is the async counterpart for code running on tokio, whose own timer
//!   has 1 ms resolution. Each pending sleep arms a `timerfd` (nanosecond resolution, no
//!   timer slack) registered with tokio's reactor, so the worker parked in epoll wakes
//!   directly when it fires; timerfds are pooled and reused, so a sleep costs two syscalls
//!   and no thread of its own. A woken task still takes some µs to run, so timers are
//!   armed early by a lead learned from the wake-ups observed, and a task that resumes
//!   just before its deadline spins the small remainder. A sleep never ends before its
//!   deadline; with thousands pending, nothing spins but the last few µs of each.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// The final stretch before a deadline that is spun rather than slept.
const SPIN_WINDOW: Duration = Duration::from_micros(40);

/// Longest remainder a resumed task spins in place rather than waiting again: a second
/// wait costs a wake-up (~10–20 µs of CPU here), a spin costs what it lasts.
const TASK_SPIN_LIMIT: Duration = Duration::from_micros(15);

/// Upper bound of the learned wake-up lead.
const MAX_LEAD: Duration = Duration::from_micros(50);

/// Lowers this thread's timer slack to 1 ns (Linux default: 50 µs) so sleeps end on time.
pub fn tighten_timer_slack() {
    // SAFETY: PR_SET_TIMERSLACK only changes a per-thread scheduling attribute; it takes
    // plain integer arguments and touches no memory of ours.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong, 0, 0, 0);
    }
}

/// Blocks the current thread until `deadline`; returns at once if it has passed.
pub fn wait_until(deadline: Instant) {
    let now = Instant::now();
    if deadline <= now {
        return;
    }
    let remaining = deadline - now;
    if remaining > SPIN_WINDOW {
        std::thread::sleep(remaining - SPIN_WINDOW);
    }
    spin_until(deadline);
}

fn spin_until(deadline: Instant) {
    while Instant::now() < deadline {
        std::hint::spin_loop();
    }
}

/// Waits asynchronously until `deadline` with µs precision, on a tokio runtime with I/O
/// enabled; resolves to the instant it actually resumed (never before `deadline`).
pub async fn sleep_until(deadline: Instant) -> Instant {
    let mut now = Instant::now();
    while now < deadline {
        let remaining = deadline - now;
        if remaining <= TASK_SPIN_LIMIT {
            spin_until(deadline);
            return Instant::now();
        }
        let wake_at = deadline - WAKE_LEAD.get().min(remaining - TASK_SPIN_LIMIT / 2);
        match ReactorTimer::take() {
            Ok(timer) => {
                if timer.wait_until(wake_at).await {
                    timer.give_back();
                }
            }
            Err(error) => {
                // Out of descriptors: tokio's own timer is late by up to 1 ms, but still
                // never early; the recorded error shows it.
                static WARNED: AtomicBool = AtomicBool::new(false);
                if !WARNED.swap(true, Ordering::Relaxed) {
                    tracing::warn!(%error, "no timerfd for a precise sleep; using tokio's timer");
                }
                tokio::time::sleep_until(deadline.into()).await;
            }
        }
        now = Instant::now();
        if now >= wake_at {
            WAKE_LEAD.learn(now - wake_at);
        }
    }
    now
}

/// How long a woken task takes to run after its timer fires (an exponentially weighted
/// mean, capped): timers are armed that much early.
struct WakeLead(AtomicU64);

static WAKE_LEAD: WakeLead = WakeLead(AtomicU64::new(0));

impl WakeLead {
    fn get(&self) -> Duration {
        Duration::from_nanos(self.0.load(Ordering::Relaxed))
    }

    /// Folds one observed wake-up latency in (weight 1/16).
    fn learn(&self, latency: Duration) {
        let sample = latency.min(MAX_LEAD).as_nanos() as u64;
        let old = self.0.load(Ordering::Relaxed);
        self.0
            .store(old - old / 16 + sample / 16, Ordering::Relaxed);
    }
}

/// A timerfd registered with tokio's reactor, reused across sleeps: when it fires, the
/// worker parked in epoll wakes directly, with no timer thread in between.
struct ReactorTimer(AsyncFd<TimerFd>);

/// Idle reactor timers, reused so a sleep costs two syscalls, not six.
static IDLE_TIMERS: Mutex<Vec<ReactorTimer>> = Mutex::new(Vec::new());

impl ReactorTimer {
    fn take() -> io::Result<ReactorTimer> {
        let idle = IDLE_TIMERS
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .pop();
        match idle {
            Some(timer) => Ok(timer),
            None => {
                // SAFETY: a TimerFd owns its descriptor, which stays open and the same for
                // the TimerFd's whole life; `as_raw_fd` always returns it.
                let registered =
                    unsafe { AsyncFd::register_with_interest(TimerFd::new()?, Interest::READABLE) };
                registered.map(ReactorTimer).map_err(io::Error::from)
            }
        }
    }

    fn give_back(self) {
        IDLE_TIMERS
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(self);
    }

    /// Waits until the timer fires at `at`; false when the timer is unusable (its runtime
    /// is gone, or it cannot be armed) and must not be reused.
    async fn wait_until(&self, at: Instant) -> bool {
        let now = Instant::now();
        if at <= now {
            return true;
        }
        if self.0.get_ref().arm_in(at - now).is_err() {
            return false;
        }
        // A reused timer may carry a stale readiness: only a real expiration ends the wait.
        loop {
            match self.0.readable().await {
                Ok(mut ready) => {
                    if self.0.get_ref().take_expiration() {
                        return true;
                    }
                    ready.clear_ready();
                }
                Err(_) => return false,
            }
        }
    }
}

/// A CLOCK_MONOTONIC timerfd.
pub struct TimerFd(OwnedFd);

impl TimerFd {
    pub fn new() -> io::Result<Self> {
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
    pub fn arm_in(&self, delay: Duration) -> io::Result<()> {
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

    /// Reads (and so resets) the expiration count; true when the timer had fired.
    pub fn take_expiration(&self) -> bool {
        let mut expirations = [0u8; 8];
        // SAFETY: reading 8 bytes into an 8-byte buffer from our own non-blocking timerfd.
        let n = unsafe { libc::read(self.0.as_raw_fd(), expirations.as_mut_ptr().cast(), 8) };
        n == 8
    }
}

impl AsRawFd for TimerFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocking_wait_never_returns_early() {
        tighten_timer_slack();
        for micros in [0u64, 10, 100, 1000] {
            let deadline = Instant::now() + Duration::from_micros(micros);
            wait_until(deadline);
            assert!(Instant::now() >= deadline);
        }
    }

    /// The timer pool is process-wide: tests that use it take turns.
    static POOL_TESTS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn async_sleeps_never_end_early_and_all_end() {
        let _turn = POOL_TESTS.lock().await;
        let start = Instant::now();
        let sleeps: Vec<_> = (0..300u64)
            .map(|i| {
                let deadline = start + Duration::from_micros(5 + (i * 37) % 2000);
                tokio::spawn(async move { (deadline, sleep_until(deadline).await) })
            })
            .collect();
        for sleep in sleeps {
            let (deadline, resumed) = sleep.await.expect("sleep task");
            assert!(resumed >= deadline);
        }
        // A sleep long enough to need a timer (however late the tasks above started on a
        // loaded machine, when every one of them may have spun instead) gives it back to
        // the pool, where the next sleep finds it.
        let deadline = Instant::now() + Duration::from_millis(5);
        assert!(sleep_until(deadline).await >= deadline);
        assert!(!IDLE_TIMERS.lock().unwrap().is_empty());
        let deadline = Instant::now() + Duration::from_micros(300);
        assert!(sleep_until(deadline).await >= deadline);
    }

    #[test]
    fn sleeps_survive_their_runtime_going_away() {
        let _turn = POOL_TESTS.blocking_lock();
        for _ in 0..3 {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let deadline = Instant::now() + Duration::from_micros(500);
            assert!(runtime.block_on(sleep_until(deadline)) >= deadline);
        }
    }
}
