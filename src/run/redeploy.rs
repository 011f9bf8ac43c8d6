//! A live redeploy under load: the units running one operation are drained, restarted and
//! rerouted while the driver holds a steady rate; requests due in the redeploy window are
//! compared with those before it.

use super::arch::ArchRun;
use super::RunError;
use crate::cost;
use crate::driver::engine::Schedule;
use crate::driver::{self, Sample, Target};
use crate::launch::{LiveDeployment, Redeployed};
use crate::results::{Percentiles, RedeployResult, StepResult};
use std::time::{Duration, Instant};

/// How long after the replacements are ready the redeploy window still runs.
const REDEPLOY_SETTLE: Duration = Duration::from_secs(1);

/// A redeploy step lasts at least this long, so there is a before and an after.
const REDEPLOY_MIN_STEP: Duration = Duration::from_secs(6);

impl ArchRun<'_> {
    /// Holds a steady rate while the units running `change` are redeployed (replacements
    /// started and routed, then the old processes drained), and compares the requests due during the redeploy
    /// window with those before it.
    pub(super) async fn redeploy_under_load(
        &self,
        live: &mut LiveDeployment,
        targets: &[Target],
        change: &str,
        index: u64,
    ) -> Result<RedeployResult, RunError> {
        let architecture = live.plan.architecture.clone();
        let rate = self.resolved.redeploy_rate;
        let mut config = self.step_config(Schedule::OpenLoop { rate });
        config.duration = config.duration.max(REDEPLOY_MIN_STEP);
        config.keep_samples = true; // the redeploy window is cut out of them
        let units = cost::blast_radius(&live.plan, change);
        let redeploy_after = config.warmup + config.duration / 3;
        // Shared with the redeploy: the replacements' CPU and memory count from their start.
        let pids = cost::UnitPids::new(super::arch::unit_pids(live));
        let step = self.measured_step(architecture.clone(), pids.clone(), targets, &config, index);
        let redeploy = async {
            tokio::time::sleep(redeploy_after).await;
            // After each wave the driver's next connections to a moved entrypoint go to
            // its new address.
            live.redeploy(&units, |live| {
                super::arch::retarget(live, targets);
                pids.set_all(super::arch::unit_pids(live));
            })
            .await
        };
        let (measured, redeployed) = tokio::join!(step, redeploy);
        let (measurement, usage, noise) = measured?;
        let redeploy = redeployed.map_err(|source| RunError::Launch {
            architecture,
            source,
        })?;
        let mut step = cost::with_units(self.step_result(&live.plan, &measurement), usage);
        step.noise = noise;
        Ok(redeploy_result(change, rate, &measurement, &redeploy, step))
    }
}

/// Requests of a redeploy step split by when they were due: before the redeploy (measured
/// window only, successes), and in the redeploy window (all, failures counted).
#[derive(Debug)]
struct Window {
    before: Percentiles,
    during: Percentiles,
    requests: u64,
    failed: u64,
}

impl Window {
    /// Splits `samples`: before = due in `[measure_from, started)`, during = due in
    /// `[started, end)`.
    fn split(samples: &[Sample], measure_from: Instant, started: Instant, end: Instant) -> Self {
        let mut before = driver::new_histogram();
        let mut during = driver::new_histogram();
        let (mut requests, mut failed) = (0, 0);
        for sample in samples {
            if sample.intended >= measure_from && sample.intended < started && sample.ok {
                let _ = before.record(sample.latency_us.max(1));
            } else if sample.intended >= started && sample.intended < end {
                requests += 1;
                if sample.ok {
                    let _ = during.record(sample.latency_us.max(1));
                } else {
                    failed += 1;
                }
            }
        }
        Window {
            before: Percentiles::of(&before),
            during: Percentiles::of(&during),
            requests,
            failed,
        }
    }
}

fn redeploy_result(
    change: &str,
    rate: u32,
    measurement: &driver::StepMeasurement,
    redeploy: &Redeployed,
    step: StepResult,
) -> RedeployResult {
    let settled = redeploy.ready_after.max(redeploy.drained_after);
    let window_end = redeploy.started + settled + REDEPLOY_SETTLE;
    let measure_from = measurement.started + measurement.warmup;
    let window = Window::split(
        &measurement.samples,
        measure_from,
        redeploy.started,
        window_end,
    );
    RedeployResult {
        operation: change.to_string(),
        units: redeploy.units.clone(),
        rate_rps: rate,
        at_s: redeploy
            .started
            .saturating_duration_since(measure_from)
            .as_secs_f64(),
        drained_ms: redeploy.drained_after.as_secs_f64() * 1e3,
        ready_ms: redeploy.ready_after.as_secs_f64() * 1e3,
        window_requests: window.requests,
        window_failed: window.failed,
        latency_before_us: window.before,
        latency_during_us: window.during,
        old_processes_left: redeploy
            .old_pids
            .iter()
            .filter(|pid| cost::usage(**pid).is_some())
            .count(),
        old_endings: redeploy.old_endings.clone(),
        waves: redeploy.waves,
        step: Box::new(step),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_splits_samples_by_due_time() {
        let t0 = Instant::now();
        let at = |ms: u64, latency_us: u64, ok: bool| Sample {
            intended: t0 + Duration::from_millis(ms),
            latency_us,
            ok,
            entry: 0,
            hops: Default::default(),
            blame: None,
        };
        let samples = [
            at(0, 9_999, true),    // warm-up: in neither
            at(100, 100, true),    // before
            at(150, 200, false),   // before, failed: not counted
            at(200, 300, true),    // during (starts at 200 inclusive)
            at(250, 5_000, false), // during, failed
            at(299, 400, true),    // during
            at(300, 10, true),     // after the window (end exclusive)
        ];
        let w = Window::split(
            &samples,
            t0 + Duration::from_millis(100),
            t0 + Duration::from_millis(200),
            t0 + Duration::from_millis(300),
        );
        assert_eq!(w.before.count, 1);
        assert_eq!(w.before.max, 100);
        assert_eq!((w.requests, w.failed), (3, 1));
        assert_eq!(w.during.count, 2);
        assert!((399..=401).contains(&w.during.max), "{:?}", w.during);
    }
}
