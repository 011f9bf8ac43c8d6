//! Confidence intervals over repeated rounds (Georges, Buytaert & Eeckhout, "Statistically
//! rigorous Java performance evaluation", OOPSLA 2007; Kalibera & Jones, "Rigorous
//! benchmarking in reasonable time", ISMM 2013): a figure is measured once per round, and
//! its interval is Student's t over the rounds.
//!
//! Why rounds and not requests: the requests of one step share that step's machine
//! weather (another tenant, a noisy phase, where the scheduler put the units), so they are
//! not independent, and an interval over requests would be far too narrow. Each round's
//! figure (a p99 over thousands of requests, say) already carries the within-round
//! sampling noise, so the spread of the per-round figures holds both levels of variation;
//! the t interval over them is the two-level interval, exact for normal per-round figures
//! and deterministic (the same results.json always gives the same interval).
//!
//! Latency, CPU and other positive, right-skewed figures are estimated on the log scale
//! ([`geometric`]): the geometric mean over the rounds, with the t interval of the logs
//! taken back, so an interval never reaches below zero and is wider above the point than
//! below it, as a skewed figure's should be (Limpert, Stahel & Abbt, "Log-normal
//! distributions across the sciences", BioScience 2001). Counts and differences (hops, the
//! added latency of a hop) keep the arithmetic mean ([`estimate`]).
//!
//! Ratios between architectures are taken per round (the rounds interleave the
//! architectures, so round r of each shares its weather) and their interval is computed on
//! the log scale, so "3×" and "⅓×" are symmetric. A ratio or change whose interval holds 1
//! (0 %) is "no clear difference". With one round there is no interval, and nothing is
//! claimed.

pub use crate::results::Estimate;
use crate::results::{
    ArchitectureResult, EntryResult, EntrySummary, RateSummary, StepMode, StepNoise, StepResult,
};

/// Two-sided 95 % quantiles of Student's t for 1..=30 degrees of freedom.
const T_975: [f64; 30] = [
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
    2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
    2.052, 2.048, 2.045, 2.042,
];

/// The 97.5 % quantile of Student's t with `df` degrees of freedom.
pub fn t_975(df: usize) -> f64 {
    match df {
        0 => f64::INFINITY,
        1..=30 => T_975[df - 1],
        31..=60 => 2.000,
        61..=120 => 1.980,
        _ => 1.960,
    }
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

fn variance(values: &[f64]) -> f64 {
    let m = mean(values);
    values.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (values.len() as f64 - 1.0)
}

/// The mean of per-round values and its 95 % t interval. `None` without values.
pub fn estimate(values: &[f64]) -> Option<Estimate> {
    let values: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    if values.is_empty() {
        return None;
    }
    let point = mean(&values);
    let (low, high) = if values.len() >= 2 {
        let half = t_975(values.len() - 1) * (variance(&values) / values.len() as f64).sqrt();
        (Some(point - half), Some(point + half))
    } else {
        (None, None)
    };
    Some(Estimate {
        point,
        low,
        high,
        rounds: values.len(),
    })
}

/// The geometric mean of positive per-round values and its 95 % interval: Student's t on
/// their logarithms, taken back. `0 < low ≤ point ≤ high` always; non-positive values are
/// left out (a figure that can be zero or negative is a difference: use [`estimate`]).
pub fn geometric(values: &[f64]) -> Option<Estimate> {
    let on_logs = estimate(&logs(values))?;
    Some(Estimate {
        point: on_logs.point.exp(),
        low: on_logs.low.map(f64::exp),
        high: on_logs.high.map(f64::exp),
        rounds: on_logs.rounds,
    })
}

/// The logarithms of the positive values (ratios and changes are taken on the log scale).
fn logs(values: &[f64]) -> Vec<f64> {
    values
        .iter()
        .filter(|x| **x > 0.0)
        .map(|x| x.ln())
        .collect()
}

/// `a / b` with its interval. Paired round by round when both have the same rounds (the
/// interleaved rounds share their weather), unpaired otherwise (Welch's interval on the
/// log scale). Non-positive values are left out.
pub fn ratio(a: &[f64], b: &[f64]) -> Option<Estimate> {
    let (la, lb) = (logs(a), logs(b));
    if la.is_empty() || lb.is_empty() {
        return None;
    }
    let log_estimate = if la.len() == lb.len() && la.len() == a.len() && lb.len() == b.len() {
        let diffs: Vec<f64> = la.iter().zip(&lb).map(|(x, y)| x - y).collect();
        estimate(&diffs)?
    } else {
        welch_difference(&la, &lb)
    };
    Some(Estimate {
        point: log_estimate.point.exp(),
        low: log_estimate.low.map(f64::exp),
        high: log_estimate.high.map(f64::exp),
        rounds: log_estimate.rounds,
    })
}

/// The difference of two means with Welch's interval (unequal variances).
fn welch_difference(a: &[f64], b: &[f64]) -> Estimate {
    let point = mean(a) - mean(b);
    let rounds = a.len().min(b.len());
    if a.len() < 2 || b.len() < 2 {
        return Estimate {
            point,
            low: None,
            high: None,
            rounds,
        };
    }
    let (se, df) = welch_se_df(a, b);
    let half = t_975(df.floor().max(1.0) as usize) * se;
    Estimate {
        point,
        low: Some(point - half),
        high: Some(point + half),
        rounds,
    }
}

/// The standard error of `mean(a) − mean(b)` and its Welch–Satterthwaite degrees of
/// freedom (both sides need two values or more).
fn welch_se_df(a: &[f64], b: &[f64]) -> (f64, f64) {
    let (va, vb) = (variance(a) / a.len() as f64, variance(b) / b.len() as f64);
    let se = (va + vb).sqrt();
    let df = if se == 0.0 {
        (a.len() + b.len() - 2) as f64
    } else {
        (va + vb).powi(2)
            / (va.powi(2) / (a.len() as f64 - 1.0) + vb.powi(2) / (b.len() as f64 - 1.0))
    };
    (se, df)
}

/// The relative change from `before` to `after` in percent, with its interval (Welch on
/// the log scale: the runs being compared are independent).
pub fn change_percent(before: &[f64], after: &[f64]) -> Option<Estimate> {
    let (lb, la) = (logs(before), logs(after));
    if lb.is_empty() || la.is_empty() {
        return None;
    }
    let d = welch_difference(&la, &lb);
    let pct = |x: f64| (x.exp() - 1.0) * 100.0;
    Some(Estimate {
        point: pct(d.point),
        low: d.low.map(pct),
        high: d.high.map(pct),
        rounds: d.rounds,
    })
}

/// The two-sided p-value of "no change" between two independent runs' figures (Welch's t
/// on the logarithms, as [`change_percent`]); `None` with fewer than two rounds on a side.
pub fn change_p_value(before: &[f64], after: &[f64]) -> Option<f64> {
    let (lb, la) = (logs(before), logs(after));
    if lb.len() < 2 || la.len() < 2 {
        return None;
    }
    let (se, df) = welch_se_df(&la, &lb);
    two_sided_p(mean(&la) - mean(&lb), se, df)
}

/// The two-sided p-value of `difference` being 0, given its standard error and Student's t
/// degrees of freedom (a difference with no spread is certain either way).
fn two_sided_p(difference: f64, se: f64, df: f64) -> Option<f64> {
    if se == 0.0 {
        return Some(if difference == 0.0 { 1.0 } else { 0.0 });
    }
    use statrs::distribution::{ContinuousCDF as _, StudentsT};
    let t = StudentsT::new(0.0, 1.0, df).ok()?;
    Some((2.0 * t.sf((difference / se).abs())).min(1.0))
}

/// The two-sided p-value of "no difference" between paired positive figures (round r of
/// each shared its weather): Student's t on the per-round log ratios. `None` with fewer
/// than two pairs.
pub fn paired_ratio_p_value(a: &[f64], b: &[f64]) -> Option<f64> {
    let diffs: Vec<f64> = a
        .iter()
        .zip(b)
        .filter(|(x, y)| **x > 0.0 && **y > 0.0)
        .map(|(x, y)| x.ln() - y.ln())
        .collect();
    if diffs.len() < 2 {
        return None;
    }
    let se = (variance(&diffs) / diffs.len() as f64).sqrt();
    two_sided_p(mean(&diffs), se, (diffs.len() - 1) as f64)
}

/// The two-sided p-value of "no difference" from paired differences (round r of each
/// shared its weather): Student's t on them. `None` with fewer than two.
pub fn paired_difference_p_value(diffs: &[f64]) -> Option<f64> {
    if diffs.len() < 2 {
        return None;
    }
    let se = (variance(diffs) / diffs.len() as f64).sqrt();
    two_sided_p(mean(diffs), se, (diffs.len() - 1) as f64)
}

/// The two-sided p-value of "the same success rate" for `ok_a` of `n_a` against `ok_b` of
/// `n_b` (the pooled two-proportion z test). It takes the requests as independent, which
/// requests of one window sharing its timing are not: an optimistic test, for a step that
/// runs once. `None` without requests on either side.
pub fn two_proportion_p_value(ok_a: u64, n_a: u64, ok_b: u64, n_b: u64) -> Option<f64> {
    if n_a == 0 || n_b == 0 {
        return None;
    }
    let (n_a, n_b) = (n_a as f64, n_b as f64);
    let (p_a, p_b) = (ok_a as f64 / n_a, ok_b as f64 / n_b);
    let pooled = (ok_a + ok_b) as f64 / (n_a + n_b);
    let se = (pooled * (1.0 - pooled) * (1.0 / n_a + 1.0 / n_b)).sqrt();
    if se == 0.0 {
        return Some(1.0); // all succeeded, or all failed, on both sides
    }
    use statrs::distribution::{ContinuousCDF as _, Normal};
    let normal = Normal::new(0.0, 1.0).ok()?;
    Some((2.0 * normal.sf(((p_a - p_b) / se).abs())).min(1.0))
}

/// The false discovery rate the comparisons of many figures are held to.
pub const FALSE_DISCOVERY_RATE: f64 = 0.05;

/// Benjamini–Hochberg at `q`: which of the tests are discoveries (a test without a
/// p-value never is). Controls the expected share of false discoveries among them
/// (Benjamini & Hochberg, JRSS B 1995).
pub fn benjamini_hochberg(p_values: &[Option<f64>], q: f64) -> Vec<bool> {
    let m = p_values.len();
    let mut order: Vec<(usize, f64)> = p_values
        .iter()
        .enumerate()
        .filter_map(|(i, p)| p.map(|p| (i, p)))
        .collect();
    order.sort_by(|a, b| a.1.total_cmp(&b.1));
    // The largest rank k with p(k) <= k q / m; every test up to it is a discovery.
    let cutoff = order
        .iter()
        .enumerate()
        .rev()
        .find(|(rank, (_, p))| *p <= (rank + 1) as f64 * q / m as f64)
        .map_or(0, |(rank, _)| rank + 1);
    let mut discovered = vec![false; m];
    for &(index, _) in &order[..cutoff] {
        discovered[index] = true;
    }
    discovered
}

/// `(round, figure)` of every valid open-loop step of `arch` at `rate`.
pub fn per_round(
    arch: &ArchitectureResult,
    rate: u32,
    figure: impl Fn(&StepResult) -> Option<f64>,
) -> Vec<(usize, f64)> {
    arch.steps
        .iter()
        .filter(|s| s.is_valid_open_at(rate))
        .filter_map(|s| figure(s).map(|v| (s.round, v)))
        .collect()
}

/// The figures of the rounds both have, side by side.
pub fn paired_rounds(a: &[(usize, f64)], b: &[(usize, f64)]) -> Vec<(f64, f64)> {
    a.iter()
        .filter_map(|(round, x)| b.iter().find(|(r, _)| r == round).map(|(_, y)| (*x, *y)))
        .collect()
}

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
        .map(|a| per_round(a, rate, p99))
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
    let p50s: Vec<f64> = per_round(arch, rate, |s| Some(s.latency_us.p50 as f64))
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

/// `arch`'s per-rate summary, computed from its rounds with this grainbench's estimators
/// (so a file written by an older one, whose stored summary used the arithmetic mean, reads
/// the same as a new one), with the noise flags the run stored (the flags set against the
/// run's other architectures need them all).
pub fn summary_of(arch: &ArchitectureResult) -> Vec<RateSummary> {
    let mut fresh = summarize(arch);
    for summary in &mut fresh {
        let stored = arch
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
    /// The worked example of Benjamini & Hochberg's paper (15 tests, q = 0.05): the four
    /// smallest p-values are discoveries, though uncorrected the first nine are below 0.05.
    #[test]
    fn benjamini_hochberg_finds_the_paper_s_four_discoveries() {
        let p = [
            0.0001, 0.0004, 0.0019, 0.0095, 0.0201, 0.0278, 0.0298, 0.0344, 0.0459, 0.3240, 0.4262,
            0.5719, 0.6528, 0.7590, 1.0,
        ];
        let tests: Vec<Option<f64>> = p.iter().map(|&p| Some(p)).collect();
        let found = benjamini_hochberg(&tests, 0.05);
        assert_eq!(found.iter().filter(|d| **d).count(), 4);
        assert!(found[..4].iter().all(|d| *d));
        assert!(!benjamini_hochberg(&[None, Some(0.001)], 0.05)[0]);
    }

    #[test]
    fn a_change_s_p_value_agrees_with_its_interval() {
        // Far apart: a tiny p-value, and the interval excludes no change.
        let (before, after) = ([100.0, 102.0, 98.0], [150.0, 149.0, 152.0]);
        let p = change_p_value(&before, &after).unwrap();
        assert!(p < 0.001, "{p}");
        assert!(!change_percent(&before, &after).unwrap().contains(0.0));
        // Overlapping: a large one, and the interval holds no change.
        let (before, after) = ([100.0, 120.0, 90.0], [105.0, 95.0, 115.0]);
        let p = change_p_value(&before, &after).unwrap();
        assert!(p > 0.5, "{p}");
        assert!(change_percent(&before, &after).unwrap().contains(0.0));
        assert_eq!(change_p_value(&[1.0], &[2.0, 3.0]), None);
    }

    /// A skewed p99 over three rounds: the arithmetic interval reaches below zero, the
    /// log-scale one stays positive, holds its point and leans upwards.
    #[test]
    fn geometric_intervals_stay_positive_and_hold_their_point() {
        let rounds = [420.0, 510.0, 3100.0];
        let linear = estimate(&rounds).unwrap();
        assert!(linear.low.unwrap() < 0.0, "{linear:?}");
        let g = geometric(&rounds).unwrap();
        let (low, high) = g.interval().unwrap();
        assert!(0.0 < low && low <= g.point && g.point <= high, "{g:?}");
        assert!(high - g.point > g.point - low, "skewed upwards: {g:?}");
        let expected = (rounds.iter().map(|x: &f64| x.ln()).sum::<f64>() / 3.0).exp();
        assert!((g.point - expected).abs() < 1e-9);
        assert_eq!(geometric(&[0.0, -1.0]), None, "only positive figures");
        assert_eq!(geometric(&[7.0]).unwrap().interval(), None);
    }

    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use rand_distr::{Distribution, Exp, Normal};

    /// One round's p50 over `n` requests drawn from Exp(mean 1000) plus the round's own
    /// shift: the two levels of variation a real step has.
    fn round_p50(rng: &mut ChaCha8Rng, n: usize, round_sd: f64) -> f64 {
        let shift = Normal::new(0.0, round_sd).unwrap().sample(rng);
        let exp = Exp::new(1.0 / 1000.0).unwrap();
        let mut requests: Vec<f64> = (0..n).map(|_| exp.sample(rng) + shift).collect();
        requests.sort_by(f64::total_cmp);
        requests[n / 2]
    }

    #[test]
    fn t_quantiles() {
        assert_eq!(t_975(1), 12.706);
        assert_eq!(t_975(4), 2.776);
        assert_eq!(t_975(1000), 1.96);
        assert!(t_975(0).is_infinite());
    }

    #[test]
    fn one_round_has_no_interval_and_claims_nothing() {
        let e = estimate(&[5.0]).unwrap();
        assert_eq!((e.point, e.interval()), (5.0, None));
        assert!(e.contains(1e9));
        assert!(estimate(&[]).is_none());
        assert_eq!(ratio(&[2.0], &[1.0]).unwrap().interval(), None);
    }

    #[test]
    fn intervals_cover_the_true_value_about_95_percent_of_the_time() {
        // True p50 of Exp(mean 1000) shifted by a zero-mean round effect: 1000·ln 2.
        let truth = 1000.0 * std::f64::consts::LN_2;
        let mut rng = ChaCha8Rng::seed_from_u64(2007);
        let trials = 1000;
        let covered = (0..trials)
            .filter(|_| {
                let rounds: Vec<f64> = (0..5).map(|_| round_p50(&mut rng, 2000, 40.0)).collect();
                estimate(&rounds).unwrap().contains(truth)
            })
            .count();
        let share = covered as f64 / trials as f64;
        assert!((0.93..=0.97).contains(&share), "coverage {share}");
    }

    #[test]
    fn a_ratio_of_identical_distributions_is_no_clear_difference_at_least_90_percent() {
        let mut rng = ChaCha8Rng::seed_from_u64(2013);
        let trials = 1000;
        let unclear = (0..trials)
            .filter(|_| {
                let a: Vec<f64> = (0..3).map(|_| round_p50(&mut rng, 1000, 40.0)).collect();
                let b: Vec<f64> = (0..3).map(|_| round_p50(&mut rng, 1000, 40.0)).collect();
                ratio(&a, &b).unwrap().contains(1.0)
            })
            .count();
        assert!(
            unclear as f64 / trials as f64 >= 0.90,
            "{unclear} of {trials}"
        );
    }

    #[test]
    fn a_real_difference_is_found_and_its_ratio_interval_covers_the_truth() {
        let mut rng = ChaCha8Rng::seed_from_u64(42);
        let slow: Vec<f64> = (0..3)
            .map(|_| 3.0 * round_p50(&mut rng, 2000, 10.0))
            .collect();
        let fast: Vec<f64> = (0..3).map(|_| round_p50(&mut rng, 2000, 10.0)).collect();
        let r = ratio(&slow, &fast).unwrap();
        assert!(!r.contains(1.0), "{r:?}");
        assert!(r.contains(3.0), "{r:?}");
        let c = change_percent(&fast, &slow).unwrap();
        assert!(c.low.unwrap() > 100.0, "{c:?}");
        let same = change_percent(&fast, &fast.iter().map(|x| x * 1.0001).collect::<Vec<_>>());
        assert!(same.unwrap().contains(0.0));
        let _ = rng.random::<u8>();
    }

    /// `n` rounds of a positive figure whose logarithm is normal around ln(`truth`) with
    /// standard deviation `sigma`: what round-to-round noise does to a p50 or a CPU figure.
    fn log_normal_rounds(rng: &mut ChaCha8Rng, truth: f64, sigma: f64, n: usize) -> Vec<f64> {
        let noise = Normal::new(0.0, sigma).unwrap();
        (0..n).map(|_| truth * noise.sample(rng).exp()).collect()
    }

    /// 1 000 seeded trials of 3 rounds each: the log-scale interval covers the true
    /// geometric mean 93–97 % of the time and never reaches zero.
    #[test]
    fn log_intervals_cover_the_geometric_mean_and_stay_positive() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let (trials, truth) = (1000, 800.0);
        let mut covered = 0;
        for _ in 0..trials {
            let e = geometric(&log_normal_rounds(&mut rng, truth, 0.3, 3)).unwrap();
            let (low, high) = e.interval().unwrap();
            assert!(low > 0.0 && low <= e.point && e.point <= high, "{e:?}");
            covered += usize::from(e.contains(truth));
        }
        let share = covered as f64 / trials as f64;
        assert!((0.93..=0.97).contains(&share), "coverage {share}");
    }

    /// Two runs of `rounds` rounds of `figures` figures (5 % round-to-round noise),
    /// `changed` of them truly 30 % higher in the second: how many of the changed and of
    /// the unchanged are discoveries under Benjamini–Hochberg at 5 %.
    fn discoveries(
        rng: &mut ChaCha8Rng,
        figures: usize,
        changed: usize,
        rounds: usize,
    ) -> (usize, usize) {
        let p_values: Vec<Option<f64>> = (0..figures)
            .map(|i| {
                let factor = if i < changed { 1.3 } else { 1.0 };
                let before = log_normal_rounds(rng, 1000.0, 0.05, rounds);
                let after = log_normal_rounds(rng, 1000.0 * factor, 0.05, rounds);
                change_p_value(&before, &after)
            })
            .collect();
        let found = benjamini_hochberg(&p_values, FALSE_DISCOVERY_RATE);
        let true_found = found[..changed].iter().filter(|f| **f).count();
        let false_found = found[changed..].iter().filter(|f| **f).count();
        (true_found, false_found)
    }

    /// 85 figures compared, none changed, 1 000 seeded trials: the share of trials that
    /// flag any figure (with no true change, the false discovery rate) stays at 5 %, within
    /// two Monte Carlo standard errors (0.7 % each), where 85 uncorrected tests at 95 %
    /// would flag one in almost every trial.
    #[test]
    fn with_no_true_change_benjamini_hochberg_keeps_false_discoveries_at_5_percent() {
        let mut rng = ChaCha8Rng::seed_from_u64(85);
        let trials = 1000;
        let flagged = (0..trials)
            .filter(|_| discoveries(&mut rng, 85, 0, 3).1 > 0)
            .count();
        let rate = flagged as f64 / trials as f64;
        eprintln!("chance that any of 85 unchanged figures is flagged: {rate:.3}");
        assert!(rate <= 0.05 + 2.0 * 0.0069, "false discovery rate {rate}");
    }

    /// 10 of 85 figures truly 30 % higher, 5 % round-to-round noise, 5 rounds a run, 1 000
    /// seeded trials: at least 80 % of them are found (about all), and the false
    /// discoveries stay few. With 3 rounds a run (the default) the same noise hides most of
    /// them (about 27 % found: Welch's t has 4 degrees of freedom, and 85 comparisons ask
    /// for a small p-value): why `--repeat 5` is worth it before comparing many figures.
    #[test]
    fn ten_true_changes_of_30_percent_among_85_are_found_with_5_rounds() {
        let mut rng = ChaCha8Rng::seed_from_u64(30);
        let three: usize = (0..200).map(|_| discoveries(&mut rng, 85, 10, 3).0).sum();
        eprintln!(
            "3 rounds: found {:.3} of the true changes",
            three as f64 / 2000.0
        );
        let trials = 1000;
        let (mut found, mut false_found, mut discovered) = (0, 0, 0);
        for _ in 0..trials {
            let (t, f) = discoveries(&mut rng, 85, 10, 5);
            found += t;
            false_found += f;
            discovered += t + f;
        }
        let power = found as f64 / (10 * trials) as f64;
        let fdp = false_found as f64 / discovered.max(1) as f64;
        eprintln!("found {power:.3} of the true changes; false share of discoveries {fdp:.3}");
        assert!(power >= 0.80, "power {power}");
        assert!(fdp <= 0.05 + 0.01, "false discovery proportion {fdp}");
    }

    /// Stein's two-stage rule with a 3-round pilot, 4 000 seeded trials at each of five
    /// per-round noises (2 % to 30 %), under the run's rule (at least as many rounds after
    /// the pilot as in it, `run::Precision::least_rounds`, at most the default
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
        let least = crate::run::Precision::least_rounds(pilot);
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
