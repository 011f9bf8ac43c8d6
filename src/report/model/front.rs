//! The Pareto front of the cuts: at the comparison rate, each measured cut's p99, units'
//! CPU per request, units, redeploy blast radius and idle memory; the cuts no other cut
//! beats on p99, CPU and units at once; and, with a p99 budget, the finest cut that meets
//! it.
//!
//! The front is taken on the geometric means over the rounds. A cut is dominated when another has
//! a p99 and a CPU per request no higher and at least as many service units, and is
//! strictly better on one. A cut meets the budget when its whole p99 interval is within
//! it; one whose mean is within and interval is not is "within noise of the budget", and
//! is never recommended.

use super::rounds;
use crate::plan::mean_blast_radius;
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
    /// The units' CPU per request, µs, with its interval ("not measured" without).
    pub cpu_us_per_request: String,
    #[serde(skip)]
    pub cpu: Option<Estimate>,
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
    let dominated: Vec<bool> = rows
        .iter()
        .map(|r| rows.iter().any(|other| dominates(other, r)))
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
    })
}

fn row(a: &ArchitectureResult, rate: u32) -> Option<FrontRow> {
    let p99 = rounds::over_rounds(&rounds::per_round(a, rate, |s| {
        Some(s.latency_us.p99 as f64)
    }))?;
    let cpu = rounds::over_rounds(&rounds::per_round(a, rate, |s| s.units_cpu_us_per_request));
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
        cpu_us_per_request: cpu
            .as_ref()
            .map_or("not measured".into(), |c| format::estimate(c, 0)),
        cpu,
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

/// Whether `a` is at least as good as `b` on p99, CPU per request (where both have it)
/// and service units, and better on one.
fn dominates(a: &FrontRow, b: &FrontRow) -> bool {
    let cpu = match (&a.cpu, &b.cpu) {
        (Some(x), Some(y)) => Some((x.point, y.point)),
        _ => None,
    };
    let no_worse = a.p99.point <= b.p99.point
        && cpu.is_none_or(|(x, y)| x <= y)
        && a.service_units >= b.service_units;
    let better = a.p99.point < b.p99.point
        || cpu.is_some_and(|(x, y)| x < y)
        || a.service_units > b.service_units;
    no_worse && better
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
        FrontRow {
            arch: arch.into(),
            colour: String::new(),
            service_units: units,
            state_units: 0,
            p99_us: format!("{}", p99.0),
            p99: Estimate {
                point: p99.0,
                low: Some(p99.1),
                high: Some(p99.2),
                rounds: 3,
            },
            cpu_us_per_request: String::new(),
            cpu: Some(Estimate {
                point: cpu,
                low: None,
                high: None,
                rounds: 3,
            }),
            blast_radius: "1.0".into(),
            idle_rss_mib: String::new(),
            knee_rps: String::new(),
            on_front: false,
            budget: String::new(),
        }
    }

    #[test]
    fn a_cut_worse_on_every_axis_is_off_the_front() {
        let fine = row("fine", 10, (900.0, 800.0, 1000.0), 50.0);
        let worse = row("worse", 8, (1200.0, 1100.0, 1300.0), 60.0);
        let coarse = row("coarse", 1, (300.0, 250.0, 350.0), 10.0);
        assert!(dominates(&fine, &worse));
        assert!(!dominates(&fine, &coarse) && !dominates(&coarse, &fine));
        assert!(!dominates(&fine, &fine), "nothing dominates itself");
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
