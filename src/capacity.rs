//! The load driver's own capacity: the highest open-loop rate it holds against the minimal
//! endpoint (one unit, one operation, no work), found by a ramp of short steps from
//! 1 000 req/s, ×1.5 each, until a step is no longer valid. `calibrate` reports it, and a
//! rate sweep (`run --rates auto`) stops there unless `--max-rate` says otherwise, so a
//! knee is never the driver's without the report saying so.

use crate::deploy::probe::{launch_ping, ping_step_config, run_ping_step};
use crate::driver::engine::Schedule;
use crate::driver::summarize::{MAX_SEND_LAG_P99_US, MIN_ACHIEVED_SHARE};
use crate::driver::{self, StepMeasurement};
use crate::launch::LaunchError;
use crate::results::Percentiles;
use crate::scenario::limits::MAX_RATE;
use grain_runtime::network::NetworkModel;
use serde::Serialize;
use std::path::Path;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The ramp's first rate.
const FIRST_RATE: u32 = 1_000;
/// Each rate of the ramp is the previous one times this.
const FACTOR: f64 = 1.5;
/// Measured time of each ramp step (after [`RAMP_WARMUP`]).
const RAMP_STEP: Duration = Duration::from_secs(1);
const RAMP_WARMUP: Duration = Duration::from_millis(300);
/// The strict criterion `calibrate` states: send lag p99 within this, µs …
pub const STRICT_SEND_LAG_P99_US: u64 = 50;
/// … and at least this share of the rate achieved.
pub const STRICT_ACHIEVED_SHARE: f64 = 0.99;

/// One step of the ramp.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Probe {
    pub rate: u32,
    pub threads: usize,
    pub achieved_rps: f64,
    pub send_lag_p99_us: u64,
}

impl Probe {
    fn of(rate: u32, m: &StepMeasurement) -> Probe {
        Probe {
            rate,
            threads: m.threads,
            achieved_rps: (m.achieved_rps * 10.0).round() / 10.0,
            send_lag_p99_us: Percentiles::of(&m.send_lag).p99,
        }
    }

    fn holds(&self, lag_us: u64, share: f64) -> bool {
        self.send_lag_p99_us <= lag_us && self.achieved_rps >= f64::from(self.rate) * share
    }

    /// Whether a step at this rate is valid (the rule every measured step follows).
    pub fn valid(&self) -> bool {
        self.holds(MAX_SEND_LAG_P99_US, MIN_ACHIEVED_SHARE)
    }

    /// Whether it holds the strict criterion (send lag p99 ≤ 50 µs, ≥ 99 % achieved).
    pub fn strict(&self) -> bool {
        self.holds(STRICT_SEND_LAG_P99_US, STRICT_ACHIEVED_SHARE)
    }
}

/// What the ramp found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Capacity {
    /// The highest rate held with send lag p99 ≤ 50 µs and ≥ 99 % achieved.
    pub strict_rps: Option<u32>,
    /// The highest rate at which a step is valid (send lag p99 ≤ 1 ms, ≥ 95 % achieved):
    /// where a rate sweep stops.
    pub valid_rps: Option<u32>,
    /// Whether the ramp stopped at the scenario's rate limit rather than at a failure.
    pub reached_limit: bool,
    pub probes: Vec<Probe>,
}

impl Capacity {
    /// The capacity from a ramp's probes, in rate order.
    pub fn of(probes: Vec<Probe>) -> Capacity {
        let highest = |ok: fn(&Probe) -> bool| {
            probes
                .iter()
                .take_while(|p| p.valid())
                .filter(|p| ok(p))
                .map(|p| p.rate)
                .max()
        };
        Capacity {
            strict_rps: highest(Probe::strict),
            valid_rps: highest(Probe::valid),
            reached_limit: probes.last().is_some_and(|p| p.valid()),
            probes,
        }
    }
}

/// The rates of the ramp, up to the scenario limit.
pub fn ramp() -> impl Iterator<Item = u32> {
    std::iter::successors(Some(FIRST_RATE), |&rate| {
        let next = (f64::from(rate) * FACTOR).round() as u32;
        (rate < MAX_RATE).then_some(next.min(MAX_RATE))
    })
}

/// Why the capacity could not be measured.
#[derive(Debug, thiserror::Error)]
pub enum CapacityError {
    #[error("cannot start the minimal endpoint: {0}")]
    Launch(#[from] LaunchError),
    #[error(transparent)]
    Driver(#[from] driver::DriverError),
    #[error("interrupted")]
    Interrupted,
}

/// Ramps against the ping unit at `addr` until a step is no longer valid.
pub async fn measure_at(addr: &str, cancel: &CancellationToken) -> Result<Capacity, CapacityError> {
    let mut probes = Vec::new();
    for (seed, rate) in ramp().enumerate() {
        if cancel.is_cancelled() {
            return Err(CapacityError::Interrupted);
        }
        let schedule = Schedule::OpenLoop { rate };
        let mut config = ping_step_config(
            schedule,
            RAMP_STEP,
            driver::DEFAULT_SPIN,
            NetworkModel::loopback(),
        );
        config.warmup = RAMP_WARMUP;
        let m = run_ping_step(addr, &config, 100 + seed as u64, cancel).await?;
        let probe = Probe::of(rate, &m);
        tracing::info!(?probe, "driver capacity probe");
        let valid = probe.valid();
        probes.push(probe);
        if !valid {
            break;
        }
    }
    Ok(Capacity::of(probes))
}

/// Starts the minimal unit, ramps, and stops it.
pub async fn measure(
    unit_binary: &Path,
    run_id: &str,
    cancel: &CancellationToken,
) -> Result<Capacity, CapacityError> {
    let live = launch_ping(unit_binary, run_id, None).await?;
    let addr = live.units[0].addr.clone();
    let capacity = measure_at(&addr, cancel).await;
    live.shutdown().await;
    capacity
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(rate: u32, lag: u64, achieved: f64) -> Probe {
        Probe {
            rate,
            threads: 1,
            achieved_rps: achieved,
            send_lag_p99_us: lag,
        }
    }

    #[test]
    fn the_capacity_is_the_last_rate_that_held_each_criterion() {
        let capacity = Capacity::of(vec![
            probe(1_000, 10, 1_000.0),
            probe(1_500, 40, 1_500.0),
            probe(2_250, 300, 2_250.0),
            probe(3_375, 5_000, 3_000.0),
        ]);
        assert_eq!(capacity.strict_rps, Some(1_500));
        assert_eq!(capacity.valid_rps, Some(2_250));
        assert!(!capacity.reached_limit);
        let none = Capacity::of(vec![probe(1_000, 5_000, 500.0)]);
        assert_eq!((none.strict_rps, none.valid_rps), (None, None));
    }

    #[test]
    fn the_ramp_rises_by_half_up_to_the_rate_limit() {
        let rates: Vec<u32> = ramp().collect();
        assert_eq!(&rates[..3], &[1_000, 1_500, 2_250]);
        assert!(rates.iter().all(|&r| r <= MAX_RATE));
        assert_eq!(
            *rates.last().unwrap(),
            MAX_RATE,
            "the limit itself is probed last"
        );
        let below = rates[rates.len() - 2];
        assert!(f64::from(below) * FACTOR > f64::from(MAX_RATE));
    }
}
