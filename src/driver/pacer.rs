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
