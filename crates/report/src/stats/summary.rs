//! A run's figures over its rounds: each rate's summary with its intervals and noise
//! flags, the rate the verdict compares the cuts at, and the rounds `--precision` needs.

use super::{estimate, geometric, mean, paired_rounds, t_975, variance};
use crate::results::{
    ArchitectureResult, EntryResult, EntrySummary, RateSummary, StepMode, StepNoise, StepResult,
};

/// The highest open-loop rate at which every architecture has a valid step: where the
/// verdict compares them.
pub fn verdict_rate(architectures: &[ArchitectureResult]) -> Option<u32> {
    let rates = architectures.first()?.open_rates(true);
    rates.into_iter().rev().find(|&rate| {
        architectures
            .iter()
            .all(|a| a.steps.iter().any(|s| s.is_valid_open_at(rate)))
    })
}

/// The fewest rounds a run with a pilot of `pilot` rounds takes under
/// [`rounds_for_precision`]: as many again after it. The final intervals reuse the pilot's
/// rounds, and a pilot quiet by chance would otherwise end the run with an interval too
/// narrow: with one round after a 3-round pilot they cover 92.7 % in the seeded
/// simulation, with three 94.5–95 %
/// (`tests::rounds_decided_from_a_pilot_keep_the_final_interval_s_coverage`).
pub fn least_rounds(pilot: usize) -> usize {
    2 * pilot
}

/// The rounds a run needs so that every verdict ratio's 95 % interval is within
/// ±`precision` of its estimate (a ratio whose interval's ends are within a factor
/// 1 + `precision` of it), decided once from the pilot rounds run so far, by Stein's
/// two-stage rule: n = ⌈(t · s / d)²⌉ for each ratio, s the standard deviation of its
/// per-round log ratios over the pilot, t Student's 97.5 % quantile with the pilot's
/// degrees of freedom and d = ln(1 + precision); the most any ratio needs, at least the
/// pilot's rounds (Stein, Annals of Mathematical Statistics 1945).
/// The ratios are the verdict's: each deployment's p99 against the lowest p99, at the
/// verdict rate. `None` when the pilot cannot say (under two rounds, no common rate).
pub fn rounds_for_precision(
    architectures: &[ArchitectureResult],
    precision: f64,
) -> Option<RoundsNeeded> {
    let rate = verdict_rate(architectures)?;
    let p99 = |s: &StepResult| (s.latency_us.p99 > 0).then_some(s.latency_us.p99 as f64);
    let per_arch: Vec<Vec<(usize, f64)>> = architectures
        .iter()
        .map(|a| a.per_round(rate, p99))
        .collect();
    let pilot = per_arch.iter().map(Vec::len).min()?;
    if pilot < 2 {
        return None;
    }
    let gm = |xs: &[(usize, f64)]| mean(&xs.iter().map(|(_, x)| x.ln()).collect::<Vec<_>>());
    let best =
        (0..per_arch.len()).min_by(|&i, &j| gm(&per_arch[i]).total_cmp(&gm(&per_arch[j])))?;
    let d = (1.0 + precision).ln();
    let mut needed = pilot;
    let mut widest = None;
    for (i, rounds) in per_arch.iter().enumerate().filter(|(i, _)| *i != best) {
        let logs: Vec<f64> = paired_rounds(rounds, &per_arch[best])
            .into_iter()
            .map(|(x, y)| x.ln() - y.ln())
            .collect();
        if logs.len() < 2 {
            continue;
        }
        let t = t_975(logs.len() - 1);
        let n = ((t * variance(&logs).sqrt() / d).powi(2)).ceil() as usize;
        if n > needed {
            needed = n;
            widest = Some(architectures[i].label());
        }
    }
    Some(RoundsNeeded {
        pilot,
        asked: needed,
        widest,
    })
}

/// What the pilot decided (see [`rounds_for_precision`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoundsNeeded {
    /// Valid rounds every deployment had in the pilot.
    pub pilot: usize,
    /// What the ratios asked for, pilot included (the run caps it).
    pub asked: usize,
    /// The deployment whose ratio asked for the most rounds, if any asked for more than
    /// the pilot.
    pub widest: Option<String>,
}

/// Per open-loop rate of `arch`, every figure over the rounds whose step there was valid,
/// with its interval; flags rates whose rounds disagree far more than the run's others or
/// that ran while other load held the machine.
pub fn summarize(arch: &ArchitectureResult) -> Vec<RateSummary> {
    arch.open_rates(false)
        .into_iter()
        .filter_map(|rate| rate_summary(arch, rate))
        .collect()
}

fn rate_summary(arch: &ArchitectureResult, rate: u32) -> Option<RateSummary> {
    let at_rate: Vec<&StepResult> = arch
        .steps
        .iter()
        .filter(|s| s.mode == StepMode::Open && s.target_rps == rate)
        .collect();
    let valid: Vec<&StepResult> = at_rate.iter().copied().filter(|s| s.valid).collect();
    let per_round =
        |f: &dyn Fn(&StepResult) -> f64| -> Vec<f64> { valid.iter().map(|s| f(s)).collect() };
    let cpu: Vec<f64> = valid
        .iter()
        .filter_map(|s| s.units_cpu_us_per_request)
        .collect();
    let entrypoints = valid
        .first()?
        .entrypoints
        .iter()
        .filter_map(|first| {
            let of = |f: &dyn Fn(&EntryResult) -> f64| -> Vec<f64> {
                valid
                    .iter()
                    .filter_map(|s| {
                        s.entrypoints
                            .iter()
                            .find(|e| e.entrypoint == first.entrypoint)
                    })
                    .map(f)
                    .collect()
            };
            Some(EntrySummary {
                entrypoint: first.entrypoint.clone(),
                p50_us: geometric(&of(&|e| e.latency_us.p50 as f64))?,
                p99_us: geometric(&of(&|e| e.latency_us.p99 as f64))?,
                hops: estimate(&of(&|e| e.hops.mean_total))?,
            })
        })
        .collect();
    let noise_flags = valid
        .iter()
        .filter_map(|s| s.noise.as_ref().map(|n| (s.round, n)))
        .filter_map(|(round, n)| noise_flag(round, n))
        .collect();
    Some(RateSummary {
        target_rps: rate,
        rounds_run: at_rate.len(),
        rounds_valid: valid.len(),
        p50_us: geometric(&per_round(&|s| s.latency_us.p50 as f64))?,
        p99_us: geometric(&per_round(&|s| s.latency_us.p99 as f64))?,
        units_cpu_us_per_request: geometric(&cpu),
        entrypoints,
        noise_flags,
    })
}

/// Steal above this share of the machine's CPU time marks a step as noisy.
pub const NOISY_STEAL_SHARE: f64 = 0.05;
/// Other processes using this many cores or more mark a step as noisy.
pub const NOISY_OTHER_CORES: f64 = 0.5;
/// Rounds whose p50s spread (max − min, over the mean) this many times wider than the
/// run's typical spread, and by more than [`NOISY_MIN_SPREAD`], mark a rate as noisy.
pub const NOISY_SPREAD_FACTOR: f64 = 3.0;
pub const NOISY_MIN_SPREAD: f64 = 0.2;

fn noise_flag(round: usize, noise: &StepNoise) -> Option<String> {
    if noise.steal_share > NOISY_STEAL_SHARE {
        return Some(format!(
            "round {}: the hypervisor stole {:.0} % of the CPU time",
            round + 1,
            noise.steal_share * 100.0
        ));
    }
    (noise.other_cores >= NOISY_OTHER_CORES).then(|| {
        format!(
            "round {}: other processes used {:.1} cores",
            round + 1,
            noise.other_cores
        )
    })
}

/// The spread of a rate's per-round p50s: (max − min) / mean.
fn spread(arch: &ArchitectureResult, rate: u32) -> Option<f64> {
    let p50s: Vec<f64> = arch
        .per_round(rate, |s| Some(s.latency_us.p50 as f64))
        .into_iter()
        .map(|(_, p50)| p50)
        .collect();
    if p50s.len() < 2 {
        return None;
    }
    let (min, max) = p50s.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), v| {
        (lo.min(*v), hi.max(*v))
    });
    Some((max - min) / mean(&p50s))
}

impl ArchitectureResult {
    /// The per-rate summary, computed from the rounds with this grainbench's estimators
    /// (so a file written by an older one, whose stored summary used the arithmetic mean,
    /// reads the same as a new one), with the noise flags the run stored (the flags set
    /// against the run's other architectures need them all).
    pub fn rate_summaries(&self) -> Vec<RateSummary> {
        let mut fresh = summarize(self);
        for summary in &mut fresh {
            let stored = self
                .summary
                .iter()
                .find(|s| s.target_rps == summary.target_rps);
            for flag in stored.into_iter().flat_map(|s| &s.noise_flags) {
                if !summary.noise_flags.contains(flag) {
                    summary.noise_flags.push(flag.clone());
                }
            }
        }
        fresh
    }
}

/// Summaries of every architecture of a run, with the rates whose rounds disagree far more
/// than the run's other rates flagged.
pub fn summarize_run(architectures: &mut [ArchitectureResult]) {
    for arch in architectures.iter_mut() {
        arch.summary = summarize(arch);
    }
    let spreads: Vec<(usize, usize, f64)> = architectures
        .iter()
        .enumerate()
        .flat_map(|(a, arch)| {
            arch.summary
                .iter()
                .enumerate()
                .filter_map(move |(r, s)| spread(arch, s.target_rps).map(|v| (a, r, v)))
        })
        .collect();
    let mut sorted: Vec<f64> = spreads.iter().map(|(_, _, v)| *v).collect();
    sorted.sort_by(f64::total_cmp);
    let Some(&typical) = sorted.get(sorted.len() / 2) else {
        return;
    };
    for (a, r, value) in spreads {
        if value > NOISY_MIN_SPREAD && value > NOISY_SPREAD_FACTOR * typical {
            architectures[a].summary[r].noise_flags.push(format!(
                "its rounds disagree: p50 spread {:.0} % against {:.0} % typical in this run",
                value * 100.0,
                typical * 100.0
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use rand_distr::{Distribution, Normal};

    /// Stein's two-stage rule with a 3-round pilot, 4 000 seeded trials at each of five
    /// per-round noises (2 % to 30 %), under the run's rule (at least as many rounds after
    /// the pilot as in it, [`least_rounds`], at most the default
    /// `--max-rounds` 10): at low noise the rounds it decides reach the asked precision,
    /// and at every noise the final interval over every
    /// round (pilot included, the usual t interval, which is what the report computes)
    /// covers the true ratio 93–97 % of the time. The pilot's rounds decide how many follow
    /// and are reused in the final interval, so a pilot that looked quiet by chance would
    /// end the run early with an interval too narrow: with only one round after the pilot
    /// the coverage fell to 92.7 % (at 10 % noise); the rounds after the pilot at least
    /// as many as its own is what keeps it at 94–95 % (and 93.4–95 % with up to 40 rounds,
    /// simulated over 40 000 trials).
    #[test]
    fn rounds_decided_from_a_pilot_keep_the_final_interval_s_coverage() {
        let mut rng = ChaCha8Rng::seed_from_u64(1945);
        let (trials, truth, precision, pilot) = (4000, 2.5f64, 0.10, 3);
        let least = least_rounds(pilot);
        let d = (1.0f64 + precision).ln();
        for sigma in [0.02, 0.05, 0.10, 0.15, 0.30] {
            let noise = Normal::new(0.0, sigma).unwrap();
            let (mut covered, mut precise, mut uncapped, mut total_rounds) = (0, 0, 0, 0);
            for _ in 0..trials {
                let mut logs: Vec<f64> = (0..pilot)
                    .map(|_| truth.ln() + noise.sample(&mut rng))
                    .collect();
                let t = t_975(pilot - 1);
                let asked = ((t * variance(&logs).sqrt() / d).powi(2)).ceil() as usize;
                let n = asked.clamp(least, 10);
                while logs.len() < n {
                    logs.push(truth.ln() + noise.sample(&mut rng));
                }
                total_rounds += n;
                let e = estimate(&logs).unwrap();
                covered += usize::from(e.contains(truth.ln()));
                if asked <= 10 {
                    let (low, high) = e.interval().unwrap();
                    uncapped += 1;
                    precise += usize::from((high - low) / 2.0 <= d);
                }
            }
            let coverage = covered as f64 / trials as f64;
            let precise = precise as f64 / uncapped.max(1) as f64;
            eprintln!(
                "noise {sigma}: coverage {coverage:.3}, precise {precise:.3} of {uncapped} under the cap, mean rounds {:.1}",
                total_rounds as f64 / trials as f64
            );
            assert!(
                (0.93..=0.97).contains(&coverage),
                "noise {sigma}: coverage {coverage}"
            );
            // Where the cap seldom binds, the asked precision is reached; above it, the
            // intervals are as wide as 10 rounds leave them (and the run says so).
            if sigma <= 0.05 {
                assert!(precise >= 0.95, "noise {sigma}: {precise} precise");
            }
        }
    }
}
