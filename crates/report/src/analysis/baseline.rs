//! A run set against a baseline run: every figure both measured, per deployment, its
//! relative change with a 95 % interval (Welch over the two runs' rounds, on the logs),
//! and which changes are discoveries (Benjamini–Hochberg over every figure compared, at
//! the false discovery rate, with an interval that excludes no change).

use super::rounds;
use crate::results::{
    ArchitectureResult, DeployCost, EntryResult, Estimate, RunResults, StepResult,
};
use crate::stats;
use std::fmt;

/// Which figure of a deployment changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Figure {
    /// The step's p50 or p99 (all entrypoints) at a rate, µs.
    Latency { percentile: u8, rate: u32 },
    /// The units' CPU per request at a rate, µs.
    UnitsCpu { rate: u32 },
    /// One entrypoint's p50 or p99 at a rate, µs.
    EntryLatency {
        entrypoint: String,
        percentile: u8,
        rate: u32,
    },
    /// Spawn → every unit ready, ms.
    ColdStart,
    /// Every unit's resident memory at rest, MiB.
    IdleRss,
}

impl Figure {
    /// The figure's unit, as the tables write it.
    pub fn unit(&self) -> &'static str {
        match self {
            Figure::ColdStart => "ms",
            Figure::IdleRss => "MiB",
            _ => "µs",
        }
    }
}

impl fmt::Display for Figure {
    /// `p99 at 200 req/s`, `checkout p50 at 200 req/s`, `cold start`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Figure::Latency { percentile, rate } => write!(f, "p{percentile} at {rate} req/s"),
            Figure::UnitsCpu { rate } => write!(f, "unit CPU per request at {rate} req/s"),
            Figure::EntryLatency {
                entrypoint,
                percentile,
                rate,
            } => write!(f, "{entrypoint} p{percentile} at {rate} req/s"),
            Figure::ColdStart => f.write_str("cold start"),
            Figure::IdleRss => f.write_str("idle RSS"),
        }
    }
}

/// One figure of one deployment in both runs.
#[derive(Debug, Clone, PartialEq)]
pub struct FigureChange<'a> {
    pub deployment: &'a ArchitectureResult,
    pub figure: Figure,
    /// Means over the rounds with their intervals, in the figure's unit.
    pub before: Estimate,
    pub after: Estimate,
    /// The relative change in percent with its interval.
    pub change: Option<Estimate>,
    /// The two-sided p-value of no change (Welch on the logs).
    pub p_value: Option<f64>,
    /// A Benjamini–Hochberg discovery over every figure compared.
    pub discovery: bool,
}

impl FigureChange<'_> {
    /// Whether the interval of the change excludes no change.
    pub fn beyond_interval(&self) -> bool {
        self.change
            .is_some_and(|e| e.interval().is_some() && !e.contains(0.0))
    }

    /// A change beyond noise: a discovery whose interval excludes no change.
    pub fn significant(&self) -> bool {
        self.discovery && self.beyond_interval()
    }
}

/// Every figure of a run against a baseline's.
#[derive(Debug, Clone, PartialEq)]
pub struct BaselineChanges<'a> {
    pub baseline: &'a RunResults,
    pub changes: Vec<FigureChange<'a>>,
}

impl BaselineChanges<'_> {
    /// How many changes are beyond noise.
    pub fn discovered(&self) -> usize {
        self.changes.iter().filter(|c| c.significant()).count()
    }
}

/// Every figure of `results` set against `baseline`'s, deployment by deployment.
pub fn changes<'a>(results: &'a RunResults, baseline: &'a RunResults) -> BaselineChanges<'a> {
    let mut changes = Vec::new();
    for arch in &results.architectures {
        let Some(old) = baseline.same_deployment_as(arch) else {
            continue;
        };
        let mut push = |figure: Figure, before: &[(usize, f64)], after: &[(usize, f64)]| {
            let (Some(b), Some(a)) = (rounds::over_rounds(before), rounds::over_rounds(after))
            else {
                return;
            };
            changes.push(FigureChange {
                deployment: arch,
                figure,
                before: b,
                after: a,
                change: rounds::change(before, after),
                p_value: rounds::change_p_value(before, after),
                discovery: false,
            });
        };
        for rate in arch.open_rates(true) {
            for (figure, of) in step_figures(old, arch, rate) {
                push(figure, &old.per_round(rate, of), &arch.per_round(rate, of));
            }
            for entrypoint in entrypoints_at(arch, rate) {
                let entry_figures: [(u8, EntryFigure); 2] = [
                    (50, |e| e.latency_us.p50 as f64),
                    (99, |e| e.latency_us.p99 as f64),
                ];
                for (percentile, of) in entry_figures {
                    push(
                        Figure::EntryLatency {
                            entrypoint: entrypoint.clone(),
                            percentile,
                            rate,
                        },
                        &rounds::per_round_entry(old, rate, &entrypoint, of),
                        &rounds::per_round_entry(arch, rate, &entrypoint, of),
                    );
                }
            }
        }
        if let (Some(b), Some(a)) = (&old.deploy, &arch.deploy) {
            push(Figure::ColdStart, &cold_starts(b), &cold_starts(a));
            let rss = |d: &DeployCost| [(0, d.idle_rss_bytes_total as f64 / (1024.0 * 1024.0))];
            push(Figure::IdleRss, &rss(b), &rss(a));
        }
    }
    let p_values: Vec<Option<f64>> = changes.iter().map(|c| c.p_value).collect();
    let found = stats::benjamini_hochberg(&p_values, stats::FALSE_DISCOVERY_RATE);
    for (change, found) in changes.iter_mut().zip(found) {
        change.discovery = found;
    }
    BaselineChanges { baseline, changes }
}

/// A figure read from a step, and from one entrypoint of a step.
type StepFigure = fn(&StepResult) -> Option<f64>;
type EntryFigure = fn(&EntryResult) -> f64;

/// The step figures `old` and `new` both have at `rate`: the units' CPU only where
/// /proc's ticks resolve it in every round of both runs (withheld as a whole, so that no
/// round is kept for using more CPU).
fn step_figures(
    old: &ArchitectureResult,
    new: &ArchitectureResult,
    rate: u32,
) -> Vec<(Figure, StepFigure)> {
    let resolved = StepResult::resolved_units_cpu_us_per_request;
    let cpu_resolved = old.all_rounds_have(rate, resolved) && new.all_rounds_have(rate, resolved);
    let mut figures: Vec<(Figure, StepFigure)> = vec![
        (
            Figure::Latency {
                percentile: 50,
                rate,
            },
            |s| Some(s.latency_us.p50 as f64),
        ),
        (
            Figure::Latency {
                percentile: 99,
                rate,
            },
            |s| Some(s.latency_us.p99 as f64),
        ),
    ];
    if cpu_resolved {
        figures.push((Figure::UnitsCpu { rate }, |s| s.units_cpu_us_per_request));
    }
    figures
}

/// The entrypoints of `arch`'s first valid step at `rate`.
fn entrypoints_at(arch: &ArchitectureResult, rate: u32) -> Vec<String> {
    arch.steps
        .iter()
        .find(|s| s.is_valid_open_at(rate))
        .map(|s| s.entrypoints.iter().map(|e| e.entrypoint.clone()).collect())
        .unwrap_or_default()
}

fn cold_starts(d: &DeployCost) -> Vec<(usize, f64)> {
    d.cold_start
        .samples_ms
        .iter()
        .copied()
        .enumerate()
        .collect()
}
