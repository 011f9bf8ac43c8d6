//! When an open loop's requests fall due, exact to the request: each due time is computed
//! from its index, never by adding up a rounded interval.

use std::time::Duration;

/// When requests are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schedule {
    /// Request `i` is due at `start + i / rate`, whatever the replies do.
    OpenLoop { rate: u32 },
    /// `connections` connections each send the next request as soon as the previous reply
    /// arrives, as fast as possible.
    ClosedLoop { connections: usize },
}

impl Schedule {
    /// How many requests an open loop schedules in `span`: `rate × span`, rounded.
    /// A closed loop has no schedule (`u64::MAX`).
    pub fn scheduled_in(self, span: Duration) -> u64 {
        match self {
            Schedule::OpenLoop { rate } => {
                let exact = span.as_nanos() * u128::from(rate);
                u64::try_from((exact + 500_000_000) / 1_000_000_000).unwrap_or(u64::MAX)
            }
            Schedule::ClosedLoop { .. } => u64::MAX,
        }
    }

    /// When request `index` falls due after the start: `index / rate` seconds, computed
    /// from the index in whole nanoseconds (rounded up), so request `rate × s` is due at
    /// exactly `s` seconds. (Multiplying a truncated interval drifts early: at 300 req/s
    /// the request due at the end of the warm-up fell just before it and was lost.)
    pub fn due_after_start(self, index: u64) -> Duration {
        match self {
            Schedule::OpenLoop { rate } => {
                let rate = u128::from(rate.max(1));
                let nanos = (u128::from(index) * 1_000_000_000).div_ceil(rate);
                Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
            }
            Schedule::ClosedLoop { .. } => Duration::ZERO,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_schedules_rate_times_duration_and_the_window_starts_on_a_due_time() {
        let s = Schedule::OpenLoop { rate: 300 };
        // 1 s of warm-up + 2 s measured at 300 req/s.
        assert_eq!(s.scheduled_in(Duration::from_secs(3)), 900);
        // Request 300 is due at exactly 1 s, so it is the window's first, not warm-up's
        // last: the window holds 300..900, 600 requests.
        assert_eq!(s.due_after_start(300), Duration::from_secs(1));
        assert!(s.due_after_start(299) < Duration::from_secs(1));
        assert!(s.due_after_start(899) < Duration::from_secs(3));
        // The old way (a truncated interval times the index) put request 300 early.
        let truncated = Duration::from_secs_f64(1.0 / 300.0).mul_f64(300.0);
        assert!(truncated < Duration::from_secs(1));
    }

    #[test]
    fn due_times_never_drift_from_index_over_rate() {
        for rate in [1, 3, 7, 300, 333, 999, 40_000] {
            let s = Schedule::OpenLoop { rate };
            for index in [0u64, 1, 2, 1_000, 123_457, 10_000_000] {
                let exact = index as f64 / f64::from(rate);
                let due = s.due_after_start(index).as_secs_f64();
                assert!((due - exact).abs() < 2e-9, "{rate} req/s, #{index}");
                assert!(due >= exact - 1e-12, "never early");
            }
            assert_eq!(s.scheduled_in(Duration::from_millis(1_500)), {
                (f64::from(rate) * 1.5).round() as u64
            });
        }
    }

    #[test]
    fn a_closed_loop_has_no_schedule() {
        let s = Schedule::ClosedLoop { connections: 4 };
        assert_eq!(s.scheduled_in(Duration::from_secs(1)), u64::MAX);
        assert_eq!(s.due_after_start(10), Duration::ZERO);
    }
}
