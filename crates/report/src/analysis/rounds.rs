//! Per-round figures of a run, read from its steps, and the intervals the model states:
//! every figure over the valid rounds at a rate, and ratios between two architectures
//! paired round by round (the rounds interleave the architectures, so round r of each
//! shares its weather). The statistics themselves are in [`crate::stats`].

use crate::results::{ArchitectureResult, EntryResult, Estimate};
use crate::stats;

/// `(round, figure)` of one entrypoint in every valid open-loop step of `arch` at `rate`.
pub fn per_round_entry(
    arch: &ArchitectureResult,
    rate: u32,
    entrypoint: &str,
    figure: impl Fn(&EntryResult) -> f64,
) -> Vec<(usize, f64)> {
    arch.per_round(rate, |s| {
        s.entrypoints
            .iter()
            .find(|e| e.entrypoint == entrypoint)
            .map(&figure)
    })
}

fn values(rounds: &[(usize, f64)]) -> Vec<f64> {
    rounds.iter().map(|(_, v)| *v).collect()
}

/// A positive figure (latency, CPU) over the rounds: its geometric mean and log-scale
/// interval.
pub fn over_rounds(rounds: &[(usize, f64)]) -> Option<Estimate> {
    stats::geometric(&values(rounds))
}

/// A count (hops) over the rounds: its arithmetic mean and interval.
pub fn mean_over_rounds(rounds: &[(usize, f64)]) -> Option<Estimate> {
    stats::estimate(&values(rounds))
}

/// `a / b` with its interval: paired over the rounds both have, unpaired if they share
/// none.
pub fn ratio(a: &[(usize, f64)], b: &[(usize, f64)]) -> Option<Estimate> {
    let paired = stats::paired_rounds(a, b);
    if paired.is_empty() {
        return stats::ratio(&values(a), &values(b));
    }
    let (xs, ys): (Vec<f64>, Vec<f64>) = paired.into_iter().unzip();
    stats::ratio(&xs, &ys)
}

/// The p-value of "no difference" behind [`ratio`]: paired over the rounds both have,
/// unpaired (Welch on the logs) if they share none.
pub fn ratio_p_value(a: &[(usize, f64)], b: &[(usize, f64)]) -> Option<f64> {
    let paired = stats::paired_rounds(a, b);
    if paired.is_empty() {
        return stats::change_p_value(&values(b), &values(a));
    }
    let (xs, ys): (Vec<f64>, Vec<f64>) = paired.into_iter().unzip();
    stats::paired_ratio_p_value(&xs, &ys)
}

/// `a − b` with its interval, paired over the rounds both have.
pub fn difference(a: &[(usize, f64)], b: &[(usize, f64)]) -> Option<Estimate> {
    let diffs: Vec<f64> = stats::paired_rounds(a, b)
        .into_iter()
        .map(|(x, y)| x - y)
        .collect();
    stats::estimate(&diffs)
}

/// The p-value of "no difference" behind [`difference`] (paired t).
pub fn difference_p_value(a: &[(usize, f64)], b: &[(usize, f64)]) -> Option<f64> {
    let diffs: Vec<f64> = stats::paired_rounds(a, b)
        .into_iter()
        .map(|(x, y)| x - y)
        .collect();
    stats::paired_difference_p_value(&diffs)
}

/// The p-value of no change between two runs' rounds (independent of each other).
pub fn change_p_value(before: &[(usize, f64)], after: &[(usize, f64)]) -> Option<f64> {
    stats::change_p_value(&values(before), &values(after))
}

/// Every figure of every round, for comparing two runs (independent of each other).
pub fn change(before: &[(usize, f64)], after: &[(usize, f64)]) -> Option<Estimate> {
    stats::change_percent(&values(before), &values(after))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_pair_the_rounds_both_ran() {
        // Round 1 is missing on one side: rounds 0 and 2 are paired.
        let a = [(0, 200.0), (1, 900.0), (2, 220.0)];
        let b = [(0, 100.0), (2, 110.0)];
        let r = ratio(&a, &b).unwrap();
        assert!((r.point - 2.0).abs() < 1e-9, "{r:?}");
        assert_eq!(r.rounds, 2);
    }
}
