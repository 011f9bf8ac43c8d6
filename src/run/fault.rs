//! A fault injected under load: the driver holds the redeploy's steady rate while one
//! process (the first replica of the unit serving the fault's operation) is killed and
//! restarted, frozen and continued, slowed or made to fail; every request due in the step
//! is kept, and the window arithmetic below turns them into the fault's figures.

use super::arch::{retarget, unit_pids, ArchRun};
use super::RunError;
use crate::driver::engine::Schedule;
use crate::driver::{Sample, Target};
use crate::launch::{LaunchError, LiveDeployment};
use crate::plan::Deployment;
use crate::results::{EntryAvailability, FaultResult, FaultSecond, StepResult, WindowFigures};
use crate::scenario::fault::{Fault, FaultKind};
use grain_runtime::model::ReplyFault;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// How long the step runs on after the fault ended, so recovery can be seen.
const RECOVERY_TAIL: Duration = Duration::from_secs(3);
/// The success ratio a window must reach again for the cut to count as recovered.
pub const RECOVERED_RATIO: f64 = 0.99;
/// The window recovery is judged over, and the step it slides by.
const RECOVERY_WINDOW: Duration = Duration::from_secs(1);
const RECOVERY_SLIDE: Duration = Duration::from_millis(100);

/// What the injection did, by the clock.
struct Injected {
    process: String,
    replicas: u32,
    started: Instant,
    ended: Instant,
    restart: Option<Duration>,
    killed_ending: Option<String>,
}

impl ArchRun<'_> {
    /// Runs one fault step: steady load, the fault injected `fault.at` into the measured
    /// window and lifted after `fault.for`, then [`RECOVERY_TAIL`] more.
    pub(super) async fn fault_under_load(
        &self,
        live: &mut LiveDeployment,
        targets: &[Target],
        fault: &Fault,
        index: u64,
    ) -> Result<FaultResult, RunError> {
        let architecture = live.plan.architecture.clone();
        let launch_error = |source| RunError::Launch {
            architecture: architecture.clone(),
            source,
        };
        let planned = live
            .plan
            .unit_of(&fault.operation)
            .ok_or_else(|| launch_error(LaunchError::NoUnitFor(fault.operation.clone())))?;
        let process = live.processes_of(&[planned])[0];
        let rate = self.resolved.redeploy_rate;
        let mut config = self.step_config(Schedule::OpenLoop { rate });
        config.trace_sample = self.trace_sample(&live.plan);
        config.keep_samples = true;
        // Room for the fault, a restart's start-up, and the recovery after it.
        config.duration = config
            .duration
            .max(fault.at() + fault.length() + RECOVERY_TAIL + Duration::from_secs(1));
        let inject_at = config.warmup + fault.at();
        // Shared with the injection: a restarted process's CPU and memory count too.
        let pids = crate::cost::UnitPids::new(unit_pids(live));
        let step = self.measured_step(architecture.clone(), pids.clone(), targets, &config, index);
        let cancel = self.cancel;
        let inject = async {
            // Ctrl-C or SIGTERM before the fault: nothing injected; during it: lifted at
            // once, never waited out (a 600 s freeze held the harness for its length).
            if !wait_or_cancel(inject_at, cancel).await {
                return Ok(None);
            }
            inject(live, targets, process, fault, cancel, &pids)
                .await
                .map(Some)
        };
        let (measured, injected) = tokio::join!(step, inject);
        let (measurement, usage, noise) = measured?;
        let injected = injected.map_err(launch_error)?;
        let Some(injected) = injected.filter(|_| !cancel.is_cancelled()) else {
            return Err(RunError::Interrupted);
        };
        let mut step = crate::cost::with_units(self.step_result(&live.plan, &measurement), usage);
        step.noise = noise;
        let entries = self.entry_names();
        if let Some(traces) = self.traces {
            // Checked like any other (a retry's attempts are hops too), but kept out of the
            // steady state's time split and waterfalls.
            traces.record_step(&entries, f64::from(rate), &measurement.traced, false);
        }
        let measure_from = measurement.started + measurement.warmup;
        let end = measure_from + measurement.duration;
        let window = Windows {
            measure_from,
            started: injected.started,
            ended: injected.ended,
            end,
        };
        Ok(window.result(
            fault,
            injected,
            rate,
            &measurement.samples,
            &entries,
            &live.plan,
            step,
        ))
    }
}

/// Sleeps `length`, or less when `cancel` fires first; whether it slept the whole length.
async fn wait_or_cancel(length: Duration, cancel: &CancellationToken) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(length) => true,
        _ = cancel.cancelled() => false,
    }
}

/// Injects `fault` into process `index` of `live`, waits it out (or until cancelled) and
/// lifts it: a frozen process is thawed and reply faults cleared either way; a killed
/// one is only restarted when the run goes on.
async fn inject(
    live: &mut LiveDeployment,
    targets: &[Target],
    index: usize,
    fault: &Fault,
    cancel: &CancellationToken,
    pids: &crate::cost::UnitPids,
) -> Result<Injected, LaunchError> {
    let name = live.units[index].name.clone();
    let replicas = live.plan.units[live.units[index].planned].replicas.max(1);
    let started = Instant::now();
    let (mut restart, mut killed_ending) = (None, None);
    tracing::info!(%fault, process = %name, "injecting a fault");
    match fault.kind {
        FaultKind::Kill => {
            live.signal(index, libc::SIGKILL);
            killed_ending = Some(live.reap(index).await);
            let rest = fault.length().saturating_sub(started.elapsed());
            if wait_or_cancel(rest, cancel).await {
                live.respawn(&[index]).await?;
                retarget(live, targets);
                pids.set_all(unit_pids(live));
                restart = Some(started.elapsed());
            }
        }
        FaultKind::Freeze => {
            live.signal(index, libc::SIGSTOP);
            wait_or_cancel(fault.length(), cancel).await;
            live.signal(index, libc::SIGCONT);
        }
        FaultKind::Slow { .. } | FaultKind::Fail { .. } => {
            let reply_fault = match fault.kind {
                FaultKind::Slow { delay_ms } => ReplyFault {
                    delay_ms,
                    fail_probability: 0.0,
                },
                FaultKind::Fail { probability } => ReplyFault {
                    delay_ms: 0.0,
                    fail_probability: probability,
                },
                FaultKind::Kill | FaultKind::Freeze => ReplyFault::default(),
            };
            live.set_faults(BTreeMap::from([(name.clone(), reply_fault)]))
                .await?;
            wait_or_cancel(fault.length(), cancel).await;
            live.set_faults(BTreeMap::new()).await?;
        }
    }
    Ok(Injected {
        process: name,
        replicas,
        started,
        ended: Instant::now(),
        restart,
        killed_ending,
    })
}

/// The instants that cut a fault step's requests into windows, by due time.
#[derive(Debug, Clone, Copy)]
struct Windows {
    measure_from: Instant,
    started: Instant,
    ended: Instant,
    end: Instant,
}

/// Requests of one window, being counted.
#[derive(Default)]
struct Tally {
    requests: u64,
    ok: u64,
    hops: u64,
    latencies: Vec<u64>,
}

impl Tally {
    fn add(&mut self, sample: &Sample) {
        self.requests += 1;
        if sample.ok {
            self.ok += 1;
            self.hops += u64::from(sample.hops.total());
            self.latencies.push(sample.latency_us);
        }
    }

    fn figures(mut self) -> WindowFigures {
        self.latencies.sort_unstable();
        WindowFigures {
            requests: self.requests,
            ok: self.ok,
            p50_us: quantile(&self.latencies, 0.50),
            p99_us: quantile(&self.latencies, 0.99),
            hops_per_ok: (self.ok > 0).then(|| self.hops as f64 / self.ok as f64),
        }
    }
}

/// The `q` quantile of sorted values (nearest rank).
fn quantile(sorted: &[u64], q: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

impl Windows {
    fn secs(&self, at: Instant) -> f64 {
        at.saturating_duration_since(self.measure_from)
            .as_secs_f64()
    }

    /// Every figure of the fault step.
    #[allow(clippy::too_many_arguments)]
    fn result(
        &self,
        fault: &Fault,
        injected: Injected,
        rate: u32,
        samples: &[Sample],
        entries: &[String],
        plan: &Deployment,
        step: StepResult,
    ) -> FaultResult {
        let measured: Vec<&Sample> = samples
            .iter()
            .filter(|s| s.intended >= self.measure_from && s.intended < self.end)
            .collect();
        let (mut before, mut during, mut after) =
            (Tally::default(), Tally::default(), Tally::default());
        let mut per_entry = vec![(0u64, 0u64); entries.len()];
        let mut blamed = BTreeMap::new();
        let (mut unblamed, mut planned_hops) = (0, 0u64);
        for sample in &measured {
            if sample.intended < self.started {
                before.add(sample);
            } else if sample.intended < self.ended {
                during.add(sample);
                if let Some(counts) = per_entry.get_mut(sample.entry) {
                    counts.0 += 1;
                    counts.1 += u64::from(!sample.ok);
                }
                if sample.ok {
                    let entry = entries.get(sample.entry);
                    let hops = entry.and_then(|e| plan.static_hops.get(e));
                    planned_hops += u64::from(hops.map_or(0, |h| h.total()));
                } else {
                    match &sample.blame {
                        Some(process) => *blamed.entry(process.to_string()).or_default() += 1,
                        None => unblamed += 1,
                    }
                }
            } else {
                after.add(sample);
            }
        }
        let during = during.figures();
        FaultResult {
            fault: crate::results::Fault::from(fault),
            process: injected.process,
            replicas: injected.replicas,
            rate_rps: rate,
            started_s: self.secs(self.started),
            ended_s: self.secs(self.ended),
            restart_ms: injected.restart.map(|d| d.as_secs_f64() * 1e3),
            killed_ending: injected.killed_ending,
            timeline: self.timeline(&measured),
            before: before.figures(),
            static_hops_per_ok: (during.ok > 0).then(|| planned_hops as f64 / during.ok as f64),
            during,
            after: after.figures(),
            entrypoints: entries
                .iter()
                .zip(per_entry)
                .map(|(entry, (requests, failed))| EntryAvailability {
                    entrypoint: entry.clone(),
                    requests,
                    failed,
                })
                .collect(),
            blamed,
            unblamed,
            recovery_s: self.recovery(&measured),
            step: Box::new(step),
        }
    }

    /// Per second of the measured window: requests, successes, p99.
    fn timeline(&self, measured: &[&Sample]) -> Vec<FaultSecond> {
        let seconds = self
            .end
            .saturating_duration_since(self.measure_from)
            .as_secs_f64();
        let mut tallies: Vec<Tally> = (0..seconds.ceil() as usize)
            .map(|_| Tally::default())
            .collect();
        for sample in measured {
            let second = self.secs(sample.intended) as usize;
            if let Some(tally) = tallies.get_mut(second) {
                tally.add(sample);
            }
        }
        tallies
            .into_iter()
            .enumerate()
            .map(|(t, tally)| {
                let figures = tally.figures();
                FaultSecond {
                    t_s: t as f64,
                    requests: figures.requests,
                    ok: figures.ok,
                    p99_us: figures.p99_us,
                }
            })
            .collect()
    }

    /// From the fault's start, the first window of [`RECOVERY_WINDOW`] (sliding by
    /// [`RECOVERY_SLIDE`]) whose success ratio is below [`RECOVERED_RATIO`] marks an
    /// outage; the recovery is then the time from the fault's end to the start of the
    /// first full window at or above it again. No outage: 0.
    fn recovery(&self, measured: &[&Sample]) -> Option<f64> {
        let ratio = |from: Instant| {
            let to = from + RECOVERY_WINDOW;
            let (mut n, mut ok) = (0u64, 0u64);
            for sample in measured
                .iter()
                .filter(|s| s.intended >= from && s.intended < to)
            {
                n += 1;
                ok += u64::from(sample.ok);
            }
            (n > 0).then(|| ok as f64 / n as f64)
        };
        let mut at = self.started;
        let mut outage = false;
        while at + RECOVERY_WINDOW <= self.end {
            let below = ratio(at).is_some_and(|r| r < RECOVERED_RATIO);
            if at < self.ended {
                outage |= below;
            } else if !outage {
                return Some(0.0);
            } else if !below && ratio(at).is_some() {
                return Some(at.saturating_duration_since(self.ended).as_secs_f64());
            }
            at += RECOVERY_SLIDE;
        }
        (!outage).then_some(0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use grain_runtime::wire::Hops;
    use std::sync::Arc;

    fn sample(t0: Instant, ms: u64, entry: usize, ok: bool) -> Sample {
        Sample {
            intended: t0 + Duration::from_millis(ms),
            latency_us: if ok { 1_000 + ms } else { 5 },
            ok,
            entry,
            hops: if ok {
                Hops {
                    service: 3,
                    state: 0,
                }
            } else {
                Hops::default()
            },
            blame: (!ok).then(|| Arc::from("nano-b")),
        }
    }

    fn windows(t0: Instant) -> Windows {
        Windows {
            measure_from: t0,
            started: t0 + Duration::from_secs(2),
            ended: t0 + Duration::from_secs(3),
            end: t0 + Duration::from_secs(6),
        }
    }

    /// Every 10 ms, two entrypoints; entry 1 fails from `fail_from` to `fail_to` (ms).
    fn step(t0: Instant, fail_from: u64, fail_to: u64) -> Vec<Sample> {
        (0..600)
            .flat_map(|i| {
                let ms = i * 10;
                let failing = ms >= fail_from && ms < fail_to;
                [sample(t0, ms, 0, true), sample(t0, ms, 1, !failing)]
            })
            .collect()
    }

    #[test]
    fn a_fault_window_counts_entrypoints_culprits_and_recovery() {
        let t0 = Instant::now();
        let w = windows(t0);
        // Entry 1 fails from the fault's start until 500 ms after its end.
        let samples = step(t0, 2_000, 3_500);
        let measured: Vec<&Sample> = samples.iter().collect();
        let (before, during) = {
            let (mut b, mut d) = (Tally::default(), Tally::default());
            for s in &measured {
                if s.intended < w.started {
                    b.add(s)
                } else if s.intended < w.ended {
                    d.add(s)
                }
            }
            (b.figures(), d.figures())
        };
        assert_eq!(before.success_ratio(), Some(1.0));
        assert_eq!(during.success_ratio(), Some(0.5));
        assert_eq!(during.hops_per_ok, Some(3.0));
        let recovery = w.recovery(&measured).unwrap();
        assert!((recovery - 0.5).abs() < 1e-9, "{recovery}");
        let timeline = w.timeline(&measured);
        assert_eq!(timeline.len(), 6);
        assert_eq!(timeline[2].success_ratio(), Some(0.5));
        assert_eq!(timeline[0].success_ratio(), Some(1.0));
    }

    #[test]
    fn no_outage_means_no_recovery_time_and_a_lasting_one_means_none() {
        let t0 = Instant::now();
        let w = windows(t0);
        let healthy = step(t0, 0, 0);
        let measured: Vec<&Sample> = healthy.iter().collect();
        assert_eq!(w.recovery(&measured), Some(0.0));
        let broken = step(t0, 2_000, 6_000);
        let measured: Vec<&Sample> = broken.iter().collect();
        assert_eq!(
            w.recovery(&measured),
            None,
            "never recovered within the step"
        );
    }

    #[test]
    fn quantiles_take_the_nearest_rank() {
        let values: Vec<u64> = (1..=100).collect();
        assert_eq!(quantile(&values, 0.99), Some(99));
        assert_eq!(quantile(&values, 0.5), Some(50));
        assert_eq!(quantile(&[], 0.5), None);
    }
}
