//! The Pareto front of the cuts at the comparison rate, in numbers: each measured cut's
//! p99 and units' CPU per request over the rounds, its service units; which cuts no other
//! cut beats on p99, CPU and units at once; and, with a p99 budget, how each cut stands
//! against it and the finest cut that surely meets it.
//!
//! The front is taken on the geometric means over the rounds. A cut is dominated when
//! another has a p99 and a CPU per request no higher and at least as many service units,
//! and is strictly better on one. With more than [`super::MAX_UNCORRECTED_CUTS`] cuts,
//! "better" on p99 and CPU is a discovery: Benjamini–Hochberg over every pairwise
//! comparison of the two, at the false discovery rate, so a many-cut front is not thinned
//! by chance. A cut meets the budget when its whole p99 interval is within it; one whose
//! mean is within and interval is not is within noise of the budget, and is never
//! recommended.

use super::rounds;
use crate::modes::cut::mean_blast_radius;
use crate::results::{Estimate, RunResults, UnitKind};

/// The front at one rate.
#[derive(Debug, Clone, PartialEq)]
pub struct FrontAnalysis {
    pub rate: u32,
    /// Every cut with a p99 at the rate, finest first (most service units; then lowest p99).
    pub cuts: Vec<FrontCut>,
    /// How "better" was decided.
    pub rule: FrontRule,
    /// The run's p99 budget, µs, if it has one.
    pub budget_us: Option<f64>,
    /// With a budget: the index in `cuts` of the finest cut that surely meets it.
    pub recommended: Option<usize>,
}

/// One cut's figures on the front.
#[derive(Debug, Clone, PartialEq)]
pub struct FrontCut {
    /// Its position in the run's deployments.
    pub index: usize,
    pub label: String,
    pub service_units: usize,
    pub state_units: usize,
    pub p99: Estimate,
    /// The p99 per round, for the comparisons.
    pub p99_rounds: Vec<(usize, f64)>,
    pub cpu: Option<Estimate>,
    pub cpu_rounds: Vec<(usize, f64)>,
    /// Operations restarted per changed operation, on average.
    pub blast_radius: f64,
    pub on_front: bool,
    /// Against the budget (none without one).
    pub standing: Option<Standing>,
}

/// How "on the front" was decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrontRule {
    /// On the geometric means (three cuts or fewer, no correction).
    Points,
    /// Better beyond noise: Benjamini–Hochberg over this many pairwise comparisons of
    /// `cuts` cuts.
    Discoveries { cuts: usize, comparisons: usize },
}

/// How a cut's p99 stands against the budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// The whole interval within it.
    Meets,
    /// The mean within it, the interval across it.
    WithinNoise,
    Misses,
}

impl Standing {
    pub fn of(p99: &Estimate, budget_us: f64) -> Standing {
        let high = p99.high.unwrap_or(p99.point);
        if high <= budget_us {
            Standing::Meets
        } else if p99.point <= budget_us {
            Standing::WithinNoise
        } else {
            Standing::Misses
        }
    }
}

/// The front of `results` at `rate`; `None` when fewer than two cuts have a p99 there.
pub fn front(results: &RunResults, rate: u32) -> Option<FrontAnalysis> {
    let mut cuts: Vec<FrontCut> = results
        .architectures
        .iter()
        .enumerate()
        .filter_map(|(index, a)| {
            let p99_rounds = a.per_round(rate, |s| Some(s.latency_us.p99 as f64));
            let p99 = rounds::over_rounds(&p99_rounds)?;
            let cpu_rounds = a.per_round(rate, |s| s.units_cpu_us_per_request);
            let service_sizes = a
                .units
                .iter()
                .filter(|u| u.role == UnitKind::Service)
                .map(|u| u.hosts.len());
            Some(FrontCut {
                index,
                label: a.label(),
                service_units: a.unit_count - a.state_unit_count,
                state_units: a.state_unit_count,
                p99,
                p99_rounds,
                cpu: rounds::over_rounds(&cpu_rounds),
                cpu_rounds,
                blast_radius: mean_blast_radius(service_sizes),
                on_front: false,
                standing: None,
            })
        })
        .collect();
    if cuts.len() < 2 {
        return None;
    }
    cuts.sort_by(|a, b| {
        b.service_units
            .cmp(&a.service_units)
            .then(a.p99.point.total_cmp(&b.p99.point))
    });
    let (better, rule) = if cuts.len() > super::MAX_UNCORRECTED_CUTS {
        discoveries(&cuts)
    } else {
        (by_points(&cuts), FrontRule::Points)
    };
    let dominated: Vec<bool> = (0..cuts.len())
        .map(|j| (0..cuts.len()).any(|i| dominates(&cuts, &better, i, j)))
        .collect();
    for (cut, dominated) in cuts.iter_mut().zip(dominated) {
        cut.on_front = !dominated;
    }
    let budget_us = results.meta.p99_budget_us.filter(|b| *b > 0.0);
    let recommended = budget_us.and_then(|budget| stand(&mut cuts, budget));
    Some(FrontAnalysis {
        rate,
        cuts,
        rule,
        budget_us,
        recommended,
    })
}

/// Sets each cut's standing against `budget_us`; the index of the finest that surely meets
/// it (`cuts` finest first).
pub fn stand(cuts: &mut [FrontCut], budget_us: f64) -> Option<usize> {
    for cut in cuts.iter_mut() {
        cut.standing = Some(Standing::of(&cut.p99, budget_us));
    }
    cuts.iter()
        .position(|c| c.standing == Some(Standing::Meets))
}

/// `p99[i][j]`: cut `i` is better than cut `j` on p99; `cpu[i][j]` the same on CPU per
/// request (false both ways where either lacks it).
struct Better {
    p99: Vec<Vec<bool>>,
    cpu: Vec<Vec<bool>>,
}

/// Better on the geometric means (three cuts or fewer).
fn by_points(cuts: &[FrontCut]) -> Better {
    let grid = |lower: &dyn Fn(&FrontCut, &FrontCut) -> bool| {
        cuts.iter()
            .map(|a| cuts.iter().map(|b| lower(a, b)).collect())
            .collect()
    };
    Better {
        p99: grid(&|a, b| a.p99.point < b.p99.point),
        cpu: grid(&|a, b| match (&a.cpu, &b.cpu) {
            (Some(x), Some(y)) => x.point < y.point,
            _ => false,
        }),
    }
}

/// Better beyond noise: every pair's p99 and CPU ratios (paired over the rounds) tested
/// together, Benjamini–Hochberg at the false discovery rate; the discoveries, in the
/// direction of their estimates.
fn discoveries(cuts: &[FrontCut]) -> (Better, FrontRule) {
    let n = cuts.len();
    let mut tests: Vec<(usize, usize, bool, Option<f64>)> = Vec::new();
    for i in 0..n {
        for j in i + 1..n {
            let (a, b) = (&cuts[i], &cuts[j]);
            tests.push((
                i,
                j,
                true,
                rounds::ratio_p_value(&a.p99_rounds, &b.p99_rounds),
            ));
            if a.cpu.is_some() && b.cpu.is_some() {
                tests.push((
                    i,
                    j,
                    false,
                    rounds::ratio_p_value(&a.cpu_rounds, &b.cpu_rounds),
                ));
            }
        }
    }
    let p_values: Vec<Option<f64>> = tests.iter().map(|t| t.3).collect();
    let found = crate::stats::benjamini_hochberg(&p_values, crate::stats::FALSE_DISCOVERY_RATE);
    let points = by_points(cuts);
    let mut better = Better {
        p99: vec![vec![false; n]; n],
        cpu: vec![vec![false; n]; n],
    };
    for (&(i, j, p99, _), found) in tests.iter().zip(found) {
        let (grid, lower) = if p99 {
            (&mut better.p99, &points.p99)
        } else {
            (&mut better.cpu, &points.cpu)
        };
        grid[i][j] = found && lower[i][j];
        grid[j][i] = found && lower[j][i];
    }
    let rule = FrontRule::Discoveries {
        cuts: n,
        comparisons: tests.len(),
    };
    (better, rule)
}

/// Whether cut `i` dominates cut `j`: no worse on p99, CPU per request and service units,
/// and better on one of them.
fn dominates(cuts: &[FrontCut], better: &Better, i: usize, j: usize) -> bool {
    let (a, b) = (&cuts[i], &cuts[j]);
    let no_worse = !better.p99[j][i] && !better.cpu[j][i] && a.service_units >= b.service_units;
    let improves = better.p99[i][j] || better.cpu[i][j] || a.service_units > b.service_units;
    i != j && no_worse && improves
}

/// A cut with `units` service units, its p99 and CPU per round, and `interval` in place of
/// its p99's own interval (tests).
#[cfg(test)]
pub(crate) fn test_cut(
    label: &str,
    units: usize,
    p99: &[f64],
    cpu: &[f64],
    interval: Option<(f64, f64)>,
) -> FrontCut {
    let rounds = |xs: &[f64]| xs.iter().copied().enumerate().collect::<Vec<_>>();
    let p99_estimate = rounds::over_rounds(&rounds(p99)).unwrap();
    FrontCut {
        index: 0,
        label: label.into(),
        service_units: units,
        state_units: 0,
        p99: Estimate {
            low: interval.map(|i| i.0).or(p99_estimate.low),
            high: interval.map(|i| i.1).or(p99_estimate.high),
            ..p99_estimate
        },
        p99_rounds: rounds(p99),
        cpu: rounds::over_rounds(&rounds(cpu)),
        cpu_rounds: rounds(cpu),
        blast_radius: 1.0,
        on_front: false,
        standing: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cut(label: &str, units: usize, p99: (f64, f64, f64), cpu: f64) -> FrontCut {
        test_cut(label, units, &[p99.0], &[cpu], Some((p99.1, p99.2)))
    }

    #[test]
    fn a_cut_worse_on_every_axis_is_off_the_front() {
        let cuts = vec![
            cut("fine", 10, (900.0, 800.0, 1000.0), 50.0),
            cut("worse", 8, (1200.0, 1100.0, 1300.0), 60.0),
            cut("coarse", 1, (300.0, 250.0, 350.0), 10.0),
        ];
        let better = by_points(&cuts);
        assert!(dominates(&cuts, &better, 0, 1));
        assert!(!dominates(&cuts, &better, 0, 2) && !dominates(&cuts, &better, 2, 0));
        assert!(!dominates(&cuts, &better, 0, 0), "nothing dominates itself");
    }

    /// With more than three cuts, a cut a little worse on the means but within noise stays
    /// on the front; one clearly worse (every round, by far) is still taken off it.
    #[test]
    fn with_many_cuts_only_a_difference_beyond_noise_takes_a_cut_off_the_front() {
        let noisy = [1000.0, 1300.0, 800.0, 1150.0, 900.0];
        let cuts = vec![
            test_cut("a", 9, &noisy, &[50.0, 60.0, 45.0, 55.0, 52.0], None),
            test_cut(
                "b",
                9,
                &[1150.0, 900.0, 1300.0, 1000.0, 1250.0],
                &[58.0, 50.0, 57.0, 48.0, 60.0],
                None,
            ),
            test_cut(
                "c",
                9,
                &noisy.map(|x| x * 3.0),
                &[150.0, 180.0, 135.0, 165.0, 156.0],
                None,
            ),
            test_cut(
                "d",
                1,
                &[300.0, 320.0, 290.0, 310.0, 305.0],
                &[10.0, 11.0, 9.0, 10.5, 10.2],
                None,
            ),
        ];
        let by_means = by_points(&cuts);
        assert!(
            dominates(&cuts, &by_means, 0, 1),
            "a's means are lower than b's"
        );
        let (better, rule) = discoveries(&cuts);
        assert!(!dominates(&cuts, &better, 0, 1), "but not beyond noise");
        assert!(dominates(&cuts, &better, 0, 2), "c is clearly worse");
        assert_eq!(
            rule,
            FrontRule::Discoveries {
                cuts: 4,
                comparisons: 12
            }
        );
        let front: Vec<&str> = (0..cuts.len())
            .filter(|&j| !(0..cuts.len()).any(|i| dominates(&cuts, &better, i, j)))
            .map(|j| cuts[j].label.as_str())
            .collect();
        assert_eq!(front, ["a", "b", "d"]);
    }

    #[test]
    fn a_mean_within_the_budget_with_an_interval_across_it_is_within_noise() {
        let p99 = |point, low, high| Estimate {
            point,
            low: Some(low),
            high: Some(high),
            rounds: 3,
        };
        assert_eq!(
            Standing::of(&p99(900.0, 800.0, 990.0), 1000.0),
            Standing::Meets
        );
        assert_eq!(
            Standing::of(&p99(900.0, 800.0, 1100.0), 1000.0),
            Standing::WithinNoise
        );
        assert_eq!(
            Standing::of(&p99(1100.0, 900.0, 1300.0), 1000.0),
            Standing::Misses
        );
    }
}
