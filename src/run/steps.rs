//! The step planner: which load step comes next (the scenario's rates, `--rates`, one
//! closed-loop step, or a rate sweep that stops at the knee), decided from the steps so far.

#[cfg(test)]
use super::options::SweepMax;
use super::options::{LoadMode, SweepLimits};
use crate::driver::engine::Schedule;
use crate::results::{Knee, KneeCause, StepResult};

/// A saturated step whose load threads were busy at least this share of it (spinning
/// aside) saturated the driver, not the architecture.
const DRIVER_SATURATED: f64 = 0.9;

/// The share of the step the driver's load threads were busy, not counting spinning.
fn driver_busy(step: &StepResult) -> Option<f64> {
    let g = &step.generator;
    let wall_ms = (step.warmup_s + step.duration_s) * 1e3 * g.threads.max(1) as f64;
    (wall_ms > 0.0).then(|| g.driver_cpu_ms * (1.0 - g.spin_share) / wall_ms)
}
use crate::scenario::LoadProfile;

/// Decides the next step's schedule from the steps so far.
pub(crate) struct StepPlanner {
    mode: LoadMode,
    rates: Vec<u32>,
    issued: usize,
    knee: Option<Knee>,
    /// A sweep's rate that saturated once and is being run again: a knee is recorded only
    /// when the repeat saturates too, so one hiccup (a late wake-up in a 200-request step)
    /// cannot end a sweep at 113 req/s, as it once did on a 16-core machine.
    repeating: Option<u32>,
}

impl StepPlanner {
    pub(crate) fn new(mode: &LoadMode, load: &LoadProfile) -> Self {
        let rates = match mode {
            LoadMode::Rates(rates) => rates.clone(),
            LoadMode::Sweep(_) => Vec::new(), // filled with the rates that held
            _ => load.rates.clone(),
        };
        StepPlanner {
            mode: mode.clone(),
            rates,
            issued: 0,
            knee: None,
            repeating: None,
        }
    }

    pub(crate) fn next_schedule(&mut self, last: Option<&StepResult>) -> Option<Schedule> {
        let schedule = match &self.mode {
            LoadMode::ScenarioRates | LoadMode::Rates(_) => self
                .rates
                .get(self.issued)
                .map(|&rate| Schedule::OpenLoop { rate }),
            LoadMode::Closed { connections } => {
                (self.issued == 0).then_some(Schedule::ClosedLoop {
                    connections: *connections,
                })
            }
            LoadMode::Sweep(limits) => self
                .next_sweep_rate(limits.clone(), last)
                .map(|rate| Schedule::OpenLoop { rate }),
        };
        self.issued += usize::from(schedule.is_some());
        schedule
    }

    fn next_sweep_rate(&mut self, limits: SweepLimits, last: Option<&StepResult>) -> Option<u32> {
        let Some(last) = last else {
            return Some(limits.start_rps);
        };
        let saturated = if !last.valid {
            Some(last.invalid_reason.clone().unwrap_or_default())
        } else if last.latency_us.p99 > limits.p99_bound_us {
            Some(format!(
                "p99 {} µs above the bound of {} µs",
                last.latency_us.p99, limits.p99_bound_us
            ))
        } else {
            None
        };
        if let Some(reason) = saturated {
            if self.repeating != Some(last.target_rps) {
                self.repeating = Some(last.target_rps);
                return Some(last.target_rps);
            }
            let reason = format!("{reason}; saturated twice in a row");
            let (cause, reason) = match driver_busy(last) {
                Some(busy) if busy >= DRIVER_SATURATED => (
                    KneeCause::Driver,
                    format!(
                        "the driver saturated: its load threads were busy {:.0} % of the step, spinning aside; {reason}",
                        busy * 100.0
                    ),
                ),
                _ => (KneeCause::Architecture, reason),
            };
            self.knee = Some(Knee {
                last_good_rps: self.rates.last().copied(),
                saturated_at_rps: last.target_rps,
                reason,
                cause: Some(cause),
            });
            return None;
        }
        self.repeating = None;
        self.rates.push(last.target_rps);
        let next =
            ((f64::from(last.target_rps) * limits.factor).ceil() as u32).max(last.target_rps + 1);
        if next > limits.max_rps {
            self.knee = Some(Knee {
                last_good_rps: Some(last.target_rps),
                saturated_at_rps: last.target_rps,
                reason: format!("not saturated up to {}", limits.max_in_words()),
                cause: Some(KneeCause::Limit),
            });
            return None;
        }
        Some(next)
    }

    pub(crate) fn knee(&self) -> Option<Knee> {
        self.knee.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::Percentiles;
    use std::time::Duration;

    fn profile() -> LoadProfile {
        LoadProfile {
            rates: vec![100, 200],
            duration: Duration::from_secs(1),
            warmup: Duration::ZERO,
            timeout: Duration::from_secs(1),
            p99_budget: None,
        }
    }

    /// A finished open-loop step at `rate` with `p99` µs, valid or not.
    fn step(rate: u32, p99: u64, valid: bool) -> StepResult {
        let mut step: StepResult =
            serde_json::from_str(include_str!("../../tests/fixtures/step.json")).unwrap();
        step.target_rps = rate;
        step.latency_us = Percentiles {
            p99,
            ..Percentiles::default()
        };
        step.valid = valid;
        step.invalid_reason = (!valid).then(|| "achieved 10 of 100 req/s".into());
        step
    }

    /// Sweep limits set by flag: from `start`, ×`factor`, up to `max`, p99 bound `p99_us`.
    fn limits(start: u32, factor: f64, max: u32, p99_us: u64) -> SweepLimits {
        SweepLimits {
            start_rps: start,
            factor,
            max_rps: max,
            max_source: SweepMax::Flag,
            p99_bound_us: p99_us,
        }
    }

    fn rates(
        planner: &mut StepPlanner,
        steps: &mut Vec<StepResult>,
        p99: impl Fn(u32) -> (u64, bool),
    ) -> Vec<u32> {
        let mut issued = Vec::new();
        while let Some(schedule) = planner.next_schedule(steps.last()) {
            let Schedule::OpenLoop { rate } = schedule else {
                panic!("sweeps are open loop")
            };
            issued.push(rate);
            let (p99, valid) = p99(rate);
            steps.push(step(rate, p99, valid));
            assert!(issued.len() < 100, "the sweep ends");
        }
        issued
    }

    #[test]
    fn scenario_rates_and_explicit_rates_are_issued_once_each() {
        let mut planner = StepPlanner::new(&LoadMode::ScenarioRates, &profile());
        assert_eq!(
            rates(&mut planner, &mut Vec::new(), |_| (10, true)),
            [100, 200]
        );
        let mut planner = StepPlanner::new(&LoadMode::Rates(vec![7]), &profile());
        assert_eq!(rates(&mut planner, &mut Vec::new(), |_| (10, true)), [7]);
        assert!(planner.knee().is_none());
    }

    #[test]
    fn closed_loop_is_one_step() {
        let mut planner = StepPlanner::new(&LoadMode::Closed { connections: 4 }, &profile());
        assert_eq!(
            planner.next_schedule(None),
            Some(Schedule::ClosedLoop { connections: 4 })
        );
        assert_eq!(planner.next_schedule(Some(&step(0, 1, true))), None);
    }

    #[test]
    fn a_sweep_rises_by_its_factor_and_stops_at_the_first_invalid_step() {
        let limits = limits(100, 2.0, 10_000, 50_000);
        let mut planner = StepPlanner::new(&LoadMode::Sweep(limits), &profile());
        let issued = rates(&mut planner, &mut Vec::new(), |rate| (10, rate < 800));
        assert_eq!(issued, [100, 200, 400, 800, 800], "the knee is confirmed");
        let knee = planner.knee().unwrap();
        assert_eq!(knee.last_good_rps, Some(400));
        assert_eq!(knee.saturated_at_rps, 800);
        assert!(knee.reason.contains("achieved"), "{}", knee.reason);
        assert_eq!(knee.cause, Some(KneeCause::Architecture));
    }

    #[test]
    fn a_sweep_stops_when_p99_passes_its_bound_or_at_its_limit() {
        let limits = limits(100, 1.5, 10_000, 1_000);
        let mut planner = StepPlanner::new(&LoadMode::Sweep(limits.clone()), &profile());
        let issued = rates(&mut planner, &mut Vec::new(), |rate| {
            (if rate > 200 { 5_000 } else { 10 }, true)
        });
        assert_eq!(issued, [100, 150, 225, 225]);
        let knee = planner.knee().unwrap();
        assert_eq!(
            (knee.last_good_rps, knee.saturated_at_rps),
            (Some(150), 225)
        );
        assert!(knee.reason.contains("p99 5000 µs"), "{}", knee.reason);
        assert!(knee.reason.ends_with("twice in a row"), "{}", knee.reason);

        let capped = SweepLimits {
            max_rps: 300,
            ..limits
        };
        let mut planner = StepPlanner::new(&LoadMode::Sweep(capped), &profile());
        let issued = rates(&mut planner, &mut Vec::new(), |_| (10, true));
        assert_eq!(issued, [100, 150, 225]);
        let knee = planner.knee().unwrap();
        assert_eq!(knee.last_good_rps, Some(225));
        assert!(
            knee.reason.contains("not saturated up to --max-rate 300"),
            "{}",
            knee.reason
        );
        assert_eq!(knee.cause, Some(KneeCause::Limit));
    }

    #[test]
    fn a_knee_whose_load_threads_were_busy_is_the_drivers() {
        let limits = SweepLimits::default();
        let mut planner = StepPlanner::new(&LoadMode::Sweep(limits), &profile());
        let first = planner.next_schedule(None);
        assert_eq!(first, Some(Schedule::OpenLoop { rate: 50 }));
        let mut saturated = step(50, 10, false);
        let wall_ms = (saturated.warmup_s + saturated.duration_s) * 1e3;
        // Busy 95 % of the step, 10 % of that spinning: 85.5 % of real work, not the driver.
        saturated.generator.threads = 1;
        saturated.generator.driver_cpu_ms = wall_ms * 0.95;
        saturated.generator.spin_share = 0.1;
        assert_eq!(planner.next_schedule(Some(&saturated)), first, "repeated");
        assert_eq!(planner.next_schedule(Some(&saturated)), None);
        assert_eq!(planner.knee().unwrap().cause, Some(KneeCause::Architecture));
        // Busy 97 % with 2 % spinning: the driver.
        let mut planner = StepPlanner::new(&LoadMode::Sweep(SweepLimits::default()), &profile());
        planner.next_schedule(None);
        saturated.generator.driver_cpu_ms = wall_ms * 0.97;
        saturated.generator.spin_share = 0.02;
        planner.next_schedule(Some(&saturated));
        assert_eq!(planner.next_schedule(Some(&saturated)), None);
        let knee = planner.knee().unwrap();
        assert_eq!(knee.cause, Some(KneeCause::Driver));
        assert!(
            knee.reason.starts_with("the driver saturated"),
            "{}",
            knee.reason
        );
    }

    #[test]
    fn a_step_that_saturates_once_is_repeated_and_the_sweep_goes_on_when_the_repeat_holds() {
        let limits = limits(100, 2.0, 10_000, 50_000);
        let mut planner = StepPlanner::new(&LoadMode::Sweep(limits), &profile());
        let attempts_at_200 = std::cell::Cell::new(0);
        let issued = rates(&mut planner, &mut Vec::new(), |rate| {
            if rate == 200 {
                attempts_at_200.set(attempts_at_200.get() + 1);
            }
            // 200 req/s fails its first attempt only; 1600 fails every time.
            (
                10,
                !(rate == 200 && attempts_at_200.get() == 1) && rate < 1_600,
            )
        });
        assert_eq!(issued, [100, 200, 200, 400, 800, 1_600, 1_600]);
        let knee = planner.knee().unwrap();
        assert_eq!(
            (knee.last_good_rps, knee.saturated_at_rps),
            (Some(800), 1_600)
        );
    }

    #[test]
    fn a_sweep_always_rises_even_with_a_factor_near_one() {
        let limits = limits(1, 1.0001, 5, 50_000);
        let mut planner = StepPlanner::new(&LoadMode::Sweep(limits), &profile());
        assert_eq!(
            rates(&mut planner, &mut Vec::new(), |_| (10, true)),
            [1, 2, 3, 4, 5]
        );
    }
}
