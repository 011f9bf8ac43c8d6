//! Precise waiting for the open-loop schedule: sleep with the thread's timer slack set to
//! 1 ns until just before the deadline, then spin the last few microseconds. Accurate to a
//! few µs without burning a core (tokio's timer has 1 ms resolution, far too coarse).

use std::time::{Duration, Instant};

/// The final stretch before a deadline that is spun rather than slept.
const SPIN_WINDOW: Duration = Duration::from_micros(40);

/// Lowers this thread's timer slack to 1 ns (Linux default: 50 µs) so sleeps end on time.
pub fn tighten_timer_slack() {
    // SAFETY: PR_SET_TIMERSLACK only changes a per-thread scheduling attribute; it takes
    // plain integer arguments and touches no memory of ours.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong, 0, 0, 0);
    }
}

/// How the load thread is scheduled, recorded so results say what the driver ran with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheduling {
    /// SCHED_FIFO: the thread preempts the units' CPU work the moment its timer fires.
    RealTime,
    /// The default policy: a wake-up may wait behind units burning CPU on the same cores.
    Normal,
}

impl Scheduling {
    pub fn name(self) -> &'static str {
        match self {
            Scheduling::RealTime => "SCHED_FIFO",
            Scheduling::Normal => "SCHED_OTHER",
        }
    }
}

/// With `GRAINBENCH_RT=1`, asks for SCHED_FIFO (lowest real-time priority) for this
/// thread, so send times do not wait behind the units' CPU work; falls back to the normal
/// policy when not permitted. Off by default: measured here, it did not clearly lower send
/// lag under load, and in closed loop it cost ~50 % more driver CPU per request (every
/// reply preempts a unit at once, so fewer replies are handled per wake-up).
pub fn prefer_real_time() -> Scheduling {
    if std::env::var_os("GRAINBENCH_RT").is_none_or(|v| v != "1") {
        return Scheduling::Normal;
    }
    let param = libc::sched_param { sched_priority: 1 };
    // SAFETY: sched_setscheduler on the calling thread (pid 0) with a valid param struct.
    let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) };
    if rc == 0 {
        Scheduling::RealTime
    } else {
        Scheduling::Normal
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
    while Instant::now() < deadline {
        std::hint::spin_loop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_returns_early() {
        tighten_timer_slack();
        for micros in [0u64, 10, 100, 1000] {
            let deadline = Instant::now() + Duration::from_micros(micros);
            wait_until(deadline);
            assert!(Instant::now() >= deadline);
        }
    }
}
