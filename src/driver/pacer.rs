//! Pacing the load thread: the precise waiting it shares with the units
//! ([`grain_runtime::precise`]) and its optional real-time scheduling.

use std::time::Duration;

pub use grain_runtime::precise::{tighten_timer_slack, wait_until};

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

/// Shortest stretch spun before a send: what a timer that fires on time still needs.
const MIN_SPIN: Duration = Duration::from_micros(5);

/// How long before a due time the load loop stops sleeping and busy-polls, learned from
/// how late its timer actually wakes it. On this machine's VM a timerfd wakes the loop a
/// steady 33–39 µs late (p99 56 µs), so a fixed 100 µs spin burned ~60 µs of CPU per
/// request: the window is instead the 90th percentile of the observed lateness (tracked by
/// stochastic approximation, steps proportional to the estimate) plus [`MIN_SPIN`], within
/// the ceiling. It starts at the ceiling, so the first sends are as precise as a fixed
/// window, and shrinks only as the wake-ups prove punctual; a loaded machine, whose
/// wake-ups come late, keeps it wide.
#[derive(Debug, Clone)]
pub struct SpinWindow {
    estimate_ns: f64,
    ceiling: Duration,
}

/// The quantile of the wake-up lateness the window covers.
const SPIN_QUANTILE: f64 = 0.9;

impl SpinWindow {
    pub fn new(ceiling: Duration) -> Self {
        SpinWindow {
            estimate_ns: ceiling.as_nanos() as f64,
            ceiling,
        }
    }

    /// Folds in one wake-up, `late` after the instant the timer was armed for.
    pub fn observe(&mut self, late: Duration) {
        let step = (self.estimate_ns / 32.0).max(500.0);
        if late.as_nanos() as f64 > self.estimate_ns {
            self.estimate_ns += step * SPIN_QUANTILE;
        } else {
            self.estimate_ns -= step * (1.0 - SPIN_QUANTILE);
        }
        let ceiling = self.ceiling.as_nanos() as f64;
        self.estimate_ns = self.estimate_ns.clamp(0.0, ceiling);
    }

    /// The stretch to spin before the next due time.
    pub fn window(&self) -> Duration {
        (Duration::from_nanos(self.estimate_ns as u64) + MIN_SPIN).min(self.ceiling)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spin_window_learns_the_wake_up_lateness() {
        let ceiling = Duration::from_micros(100);
        let mut spin = SpinWindow::new(ceiling);
        assert_eq!(spin.window(), ceiling, "starts at the ceiling");
        // Wake-ups 30–39 µs late: the window settles near their 90th percentile.
        for i in 0..5_000u64 {
            spin.observe(Duration::from_micros(30 + i % 10));
        }
        let settled = spin.window();
        assert!(
            settled >= Duration::from_micros(38) && settled <= Duration::from_micros(48),
            "{settled:?}"
        );
        // Later wake-ups widen it within a few hundred, never past the ceiling.
        for _ in 0..300 {
            spin.observe(Duration::from_millis(1));
        }
        assert_eq!(spin.window(), ceiling);
    }
}
