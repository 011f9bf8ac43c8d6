//! The Pareto front of the cuts: at the comparison rate, each measured cut's p99, units'
//! CPU per request, units, redeploy blast radius and idle memory; the cuts no other cut
//! beats on p99, CPU and units at once; and, with a p99 budget, the finest cut that meets
//! it.
//!
//! The front is taken on the geometric means over the rounds. A cut is dominated when another has
//! a p99 and a CPU per request no higher and at least as many service units, and is
//! strictly better on one. With more than [`super::MAX_UNCORRECTED_CUTS`] cuts, "better"
//! on p99 and CPU is a discovery: Benjamini–Hochberg over every pairwise comparison of the
//! two, at the false discovery rate, so a many-cut front is not thinned by chance. A cut meets the budget when its whole p99 interval is within
//! it; one whose mean is within and interval is not is "within noise of the budget", and
//! is never recommended.

use super::rounds;
use crate::modes::cut::mean_blast_radius;
use crate::report::format::{self, mib};
use crate::results::{ArchitectureResult, Estimate, RunResults, UnitKind};
use serde::Serialize;

/// The front at one rate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Front {
    pub rate: u32,
    /// Every cut with a p99 at the rate, finest first.
    pub rows: Vec<FrontRow>,
    /// The budget, in words (`2.0 ms`), if the run has one.
    pub budget: Option<String>,
    /// The recommendation, or why there is none; absent without a budget.
    pub recommendation: Option<String>,
    /// The cut recommended.
    pub recommended: Option<String>,
    /// How "on the front" was decided, in a sentence.
    pub rule: String,
}

/// One cut on the front's table and chart.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FrontRow {
    pub arch: String,
    pub colour: String,
    pub service_units: usize,
    pub state_units: usize,
    /// `1234 [1180–1290]`.
    pub p99_us: String,
    #[serde(skip)]
    pub p99: Estimate,
    /// The p99 per round, for the comparisons.
    #[serde(skip)]
    pub p99_rounds: Vec<(usize, f64)>,
    /// The units' CPU per request, µs, with its interval ("not measured" without).
    pub cpu_us_per_request: String,
    #[serde(skip)]
    pub cpu: Option<Estimate>,
    #[serde(skip)]
    pub cpu_rounds: Vec<(usize, f64)>,
    /// Operations restarted per changed operation, on average.
    pub blast_radius: String,
    /// Idle RSS over every unit, MiB ("–" when not measured).
    pub idle_rss_mib: String,
    /// The last rate a rate sweep held ("–" without a sweep).
    pub knee_rps: String,
    pub on_front: bool,
    /// Against the budget: `meets`, `within noise`, `misses` (empty without a budget).
    pub budget: String,
}

/// How a cut's p99 stands against the budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Standing {
    Meets,
    WithinNoise,
    Misses,
}

impl Standing {
    fn of(p99: &Estimate, budget_us: f64) -> Standing {
        let high = p99.high.unwrap_or(p99.point);
        if high <= budget_us {
            Standing::Meets
        } else if p99.point <= budget_us {
            Standing::WithinNoise
        } else {
            Standing::Misses
        }
    }

    /// How a finer cut did, in a sentence about the budget.
    fn phrase(self) -> &'static str {
        match self {
            Standing::Meets => "meets it",
            Standing::WithinNoise => "is within noise of it",
            Standing::Misses => "misses it",
        }
    }

    fn word(self) -> &'static str {
        match self {
            Standing::Meets => "meets",
            Standing::WithinNoise => "within noise",
            Standing::Misses => "misses",
        }
    }
}

/// The front of `results` at `rate`; `None` when fewer than two cuts have a p99 there.
pub fn front(results: &RunResults, rate: u32) -> Option<Front> {
    let mut rows: Vec<FrontRow> = results
        .architectures
        .iter()
        .filter_map(|a| row(a, rate))
        .collect();
    if rows.len() < 2 {
        return None;
    }
    rows.sort_by(|a, b| {
        b.service_units
            .cmp(&a.service_units)
            .then(a.p99.point.total_cmp(&b.p99.point))
    });
    let (better, rule) = if rows.len() > super::MAX_UNCORRECTED_CUTS {
        discoveries(&rows)
    } else {
        (by_points(&rows), POINTS_RULE.to_string())
    };
    let dominated: Vec<bool> = (0..rows.len())
        .map(|j| (0..rows.len()).any(|i| dominates(&rows, &better, i, j)))
        .collect();
    for (row, dominated) in rows.iter_mut().zip(dominated) {
        row.on_front = !dominated;
    }
    let budget_us = results.meta.p99_budget_us.filter(|b| *b > 0.0);
    let (recommendation, recommended) = match budget_us {
        Some(budget) => {
            for row in &mut rows {
                row.budget = Standing::of(&row.p99, budget).word().into();
            }
            let (sentence, cut) = recommend(&rows, budget, rate);
            (Some(sentence), cut)
        }
        None => (None, None),
    };
    Some(Front {
        rate,
        rows,
        budget: budget_us.map(budget_words),
        recommendation,
        recommended,
        rule,
    })
}

fn row(a: &ArchitectureResult, rate: u32) -> Option<FrontRow> {
    let p99_rounds = rounds::per_round(a, rate, |s| Some(s.latency_us.p99 as f64));
    let p99 = rounds::over_rounds(&p99_rounds)?;
    let cpu_rounds = rounds::per_round(a, rate, |s| s.units_cpu_us_per_request);
    let cpu = rounds::over_rounds(&cpu_rounds);
    let name = a.label();
    let service_sizes = a
        .units
        .iter()
        .filter(|u| u.role == UnitKind::Service)
        .map(|u| u.hosts.len());
    Some(FrontRow {
        colour: super::colour(&name).into(),
        arch: name,
        service_units: a.unit_count - a.state_unit_count,
        state_units: a.state_unit_count,
        p99_us: format::estimate(&p99, 0),
        p99,
        p99_rounds,
        cpu_us_per_request: super::units_cpu_text(a, rate),
        cpu,
        cpu_rounds,
        blast_radius: format!("{:.1}", mean_blast_radius(service_sizes)),
        idle_rss_mib: a
            .deploy
            .as_ref()
            .map_or("–".into(), |d| mib(d.idle_rss_bytes_total)),
        knee_rps: a
            .knee
            .as_ref()
            .and_then(|k| k.last_good_rps)
            .map_or("–".into(), |r| r.to_string()),
        on_front: false,
        budget: String::new(),
    })
}

/// `p99[i][j]`: cut `i` is better than cut `j` on p99; `cpu[i][j]` the same on CPU per
/// request (false both ways where either lacks it).
struct Better {
    p99: Vec<Vec<bool>>,
    cpu: Vec<Vec<bool>>,
}

const POINTS_RULE: &str = "On the front: no other cut has a p99 and a CPU per request no higher and at least as many service units, and is better on one (geometric means over the rounds; with three cuts or fewer, no correction, so two cuts whose intervals overlap may swap places).";

/// Better on the geometric means (three cuts or fewer).
fn by_points(rows: &[FrontRow]) -> Better {
    let grid = |lower: &dyn Fn(&FrontRow, &FrontRow) -> bool| {
        rows.iter()
            .map(|a| rows.iter().map(|b| lower(a, b)).collect())
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
fn discoveries(rows: &[FrontRow]) -> (Better, String) {
    let n = rows.len();
    let mut tests: Vec<(usize, usize, bool, Option<f64>)> = Vec::new();
    for i in 0..n {
        for j in i + 1..n {
            let (a, b) = (&rows[i], &rows[j]);
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
    let points = by_points(rows);
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
    let rule = format!(
        "On the front: no other cut is at least as good on p99, CPU per request and service units and better on one. With {n} cuts, better or worse on p99 and CPU means beyond noise: Benjamini–Hochberg over the {} pairwise comparisons at a {:.0} % false discovery rate (ratios paired over the rounds), so a cut within noise of another stays on the front.",
        tests.len(),
        crate::stats::FALSE_DISCOVERY_RATE * 100.0
    );
    (better, rule)
}

/// Whether cut `i` dominates cut `j`: no worse on p99, CPU per request and service units,
/// and better on one of them.
fn dominates(rows: &[FrontRow], better: &Better, i: usize, j: usize) -> bool {
    let (a, b) = (&rows[i], &rows[j]);
    let no_worse = !better.p99[j][i] && !better.cpu[j][i] && a.service_units >= b.service_units;
    let improves = better.p99[i][j] || better.cpu[i][j] || a.service_units > b.service_units;
    i != j && no_worse && improves
}

/// `1 service unit`, `9 service units`.
fn units(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

fn budget_words(us: f64) -> String {
    if us >= 1000.0 {
        format!("{} ms", trim(us / 1000.0))
    } else {
        format!("{} µs", trim(us))
    }
}

fn trim(v: f64) -> String {
    let text = format!("{v:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// The finest cut whose whole p99 interval is within the budget, and what the finer cuts
/// did; `rows` are finest first.
fn recommend(rows: &[FrontRow], budget_us: f64, rate: u32) -> (String, Option<String>) {
    let budget = budget_words(budget_us);
    let meets = rows
        .iter()
        .position(|r| Standing::of(&r.p99, budget_us) == Standing::Meets);
    let Some(at) = meets else {
        let lowest = rows
            .iter()
            .min_by(|a, b| a.p99.point.total_cmp(&b.p99.point));
        let lowest = lowest.map_or(String::new(), |r| {
            format!(
                " The lowest p99 is {}'s, {}.",
                r.arch,
                format::estimate_in(&r.p99, 0, "µs")
            )
        });
        return (
            format!("No cut surely meets a p99 budget of {budget} at {rate} req/s (its whole interval within it).{lowest}"),
            None,
        );
    };
    let chosen = &rows[at];
    let finer: Vec<String> = rows[..at]
        .iter()
        .filter(|r| r.service_units > chosen.service_units)
        .map(|r| {
            format!(
                "{} ({}) {}: {}",
                r.arch,
                units(r.service_units, "service unit"),
                Standing::of(&r.p99, budget_us).phrase(),
                format::estimate_in(&r.p99, 0, "µs")
            )
        })
        .collect();
    let one_round = if chosen.p99.interval().is_none() {
        " One round: no interval, so this is not certain; run with --repeat 3 or more."
    } else {
        ""
    };
    let mut sentence = format!(
        "With a p99 budget of {budget} at {rate} req/s, the finest cut that meets it is {} ({} + {} state, blast radius {}): p99 {}.{one_round}",
        chosen.arch,
        units(chosen.service_units, "service unit"),
        chosen.state_units,
        chosen.blast_radius,
        format::estimate_in(&chosen.p99, 0, "µs")
    );
    if !finer.is_empty() {
        sentence.push_str(&format!(" Finer: {}.", format::join_clauses(&finer)));
    }
    (sentence, Some(chosen.arch.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(arch: &str, units: usize, p99: (f64, f64, f64), cpu: f64) -> FrontRow {
        rounds_row(arch, units, &[p99.0], &[cpu], Some((p99.1, p99.2)))
    }

    fn rounds_row(
        arch: &str,
        units: usize,
        p99: &[f64],
        cpu: &[f64],
        interval: Option<(f64, f64)>,
    ) -> FrontRow {
        let rounds = |xs: &[f64]| xs.iter().copied().enumerate().collect::<Vec<_>>();
        let p99_estimate = rounds::over_rounds(&rounds(p99)).unwrap();
        FrontRow {
            arch: arch.into(),
            colour: String::new(),
            service_units: units,
            state_units: 0,
            p99_us: String::new(),
            p99: Estimate {
                low: interval.map(|i| i.0).or(p99_estimate.low),
                high: interval.map(|i| i.1).or(p99_estimate.high),
                ..p99_estimate
            },
            p99_rounds: rounds(p99),
            cpu_us_per_request: String::new(),
            cpu: rounds::over_rounds(&rounds(cpu)),
            cpu_rounds: rounds(cpu),
            blast_radius: "1.0".into(),
            idle_rss_mib: String::new(),
            knee_rps: String::new(),
            on_front: false,
            budget: String::new(),
        }
    }

    #[test]
    fn a_cut_worse_on_every_axis_is_off_the_front() {
        let rows = vec![
            row("fine", 10, (900.0, 800.0, 1000.0), 50.0),
            row("worse", 8, (1200.0, 1100.0, 1300.0), 60.0),
            row("coarse", 1, (300.0, 250.0, 350.0), 10.0),
        ];
        let better = by_points(&rows);
        assert!(dominates(&rows, &better, 0, 1));
        assert!(!dominates(&rows, &better, 0, 2) && !dominates(&rows, &better, 2, 0));
        assert!(!dominates(&rows, &better, 0, 0), "nothing dominates itself");
    }

    /// With more than three cuts, a cut a little worse on the means but within noise stays
    /// on the front; one clearly worse (every round, by far) is still taken off it.
    #[test]
    fn with_many_cuts_only_a_difference_beyond_noise_takes_a_cut_off_the_front() {
        let noisy = [1000.0, 1300.0, 800.0, 1150.0, 900.0];
        let rows = vec![
            rounds_row("a", 9, &noisy, &[50.0, 60.0, 45.0, 55.0, 52.0], None),
            rounds_row(
                "b",
                9,
                &[1150.0, 900.0, 1300.0, 1000.0, 1250.0],
                &[58.0, 50.0, 57.0, 48.0, 60.0],
                None,
            ),
            rounds_row(
                "c",
                9,
                &noisy.map(|x| x * 3.0),
                &[150.0, 180.0, 135.0, 165.0, 156.0],
                None,
            ),
            rounds_row(
                "d",
                1,
                &[300.0, 320.0, 290.0, 310.0, 305.0],
                &[10.0, 11.0, 9.0, 10.5, 10.2],
                None,
            ),
        ];
        let by_means = by_points(&rows);
        assert!(
            dominates(&rows, &by_means, 0, 1),
            "a's means are lower than b's"
        );
        let (better, rule) = discoveries(&rows);
        assert!(!dominates(&rows, &better, 0, 1), "but not beyond noise");
        assert!(dominates(&rows, &better, 0, 2), "c is clearly worse");
        assert!(rule.contains("12 pairwise comparisons"), "{rule}");
        let front = rows_on_front(&rows, &better);
        assert_eq!(front, ["a", "b", "d"]);
    }

    fn rows_on_front<'a>(rows: &'a [FrontRow], better: &Better) -> Vec<&'a str> {
        (0..rows.len())
            .filter(|&j| !(0..rows.len()).any(|i| dominates(rows, better, i, j)))
            .map(|j| rows[j].arch.as_str())
            .collect()
    }

    #[test]
    fn the_recommendation_is_the_finest_cut_whose_whole_interval_meets_the_budget() {
        let rows = vec![
            row("nano", 17, (2500.0, 2300.0, 2700.0), 90.0),
            row("sweep-9", 9, (1900.0, 1700.0, 2100.0), 60.0),
            row("micro", 9, (1500.0, 1400.0, 1600.0), 55.0),
            row("monolith", 1, (400.0, 350.0, 450.0), 20.0),
        ];
        let (sentence, cut) = recommend(&rows, 2000.0, 200);
        assert_eq!(cut.as_deref(), Some("micro"), "{sentence}");
        assert!(
            sentence.contains("nano (17 service units) misses it: 2500"),
            "{sentence}"
        );
        assert!(
            !sentence.contains("sweep-9 (9 service units)"),
            "same units is not finer: {sentence}"
        );
        assert!(
            sentence.contains("is micro (9 service units + 0 state"),
            "{sentence}"
        );
        let single = vec![rows[3].clone(), rows[3].clone()];
        let (sentence, _) = recommend(&single, 2000.0, 200);
        assert!(
            sentence.contains("monolith (1 service unit + 0 state"),
            "{sentence}"
        );
        let (sentence, cut) = recommend(&rows, 100.0, 200);
        assert_eq!(cut, None);
        assert!(sentence.contains("No cut surely meets"), "{sentence}");
        assert!(sentence.contains("monolith's"), "{sentence}");
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
        assert_eq!(budget_words(2000.0), "2 ms");
        assert_eq!(budget_words(800.0), "800 µs");
    }
}
