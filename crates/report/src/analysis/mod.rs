//! The analysis of a run, in numbers: built once from results.json (and a baseline run),
//! read by every renderer. It holds the figures and their estimates, never words: the
//! rate the cuts are compared at, each deployment's per-rate summaries, each mechanism's
//! variants against their bases, and the changes against a baseline. The report model,
//! the terminal's tables, the charts and the `--fail-if` gate put these in words and
//! pictures themselves.
//!
//! - [`verdict`]: the cut with the lowest p99 and every other cut against it
//! - [`rounds`]: per-round figures of a deployment and the intervals over them
//! - [`variants`]: each [`Dimension`] of the mechanism, its variants against their bases
//! - [`faults`]: per injected fault, every cut it hit and which stayed most available
//! - [`front`]: the cuts' Pareto front, their standing against a p99 budget
//! - [`baseline`]: every figure against a baseline run's, and which changed beyond noise

pub mod baseline;
pub mod faults;
pub mod front;
pub mod rounds;
pub mod variants;
pub mod verdict;

use crate::results::{RateSummary, RunResults};
pub use variants::Dimension;
use variants::VariantComparison;

/// With more comparisons than this, a family of them (the verdict's cuts, a dimension's
/// variants) is corrected for their number (Benjamini–Hochberg at the false discovery
/// rate).
pub const MAX_UNCORRECTED_CUTS: usize = 3;

/// A run's analysis; see the module's documentation.
#[derive(Debug, Clone, PartialEq)]
pub struct Analysis<'a> {
    pub results: &'a RunResults,
    /// The highest open-loop rate at which every deployment has a valid step: where the
    /// cuts are compared (`None`: no such rate).
    pub rate: Option<u32>,
    /// The verdict's cuts compared at the rate.
    pub verdict: Option<verdict::CutComparison<'a>>,
    /// Each deployment's per-rate summaries, in the run's order, computed from its rounds
    /// with this grainbench's estimators ([`crate::stats::summary_of`]).
    pub summaries: Vec<Vec<RateSummary>>,
    /// The cuts' Pareto front at the rate (with two or more cuts measured there).
    pub front: Option<front::FrontAnalysis>,
    /// Per fault the run injected, every cut it was injected into.
    pub faults: Vec<faults::FaultComparison<'a>>,
    /// Per dimension of the mechanism (in [`Dimension::ALL`]'s order), its variants
    /// against their bases at the rate (empty without a rate or variants).
    pub variants: Vec<(Dimension, Vec<VariantComparison<'a>>)>,
    /// Against the baseline run, when there is one.
    pub baseline: Option<baseline::BaselineChanges<'a>>,
}

impl<'a> Analysis<'a> {
    /// Analyses `results`, against `baseline` when given.
    pub fn of(results: &'a RunResults, baseline: Option<&'a RunResults>) -> Self {
        let rate = crate::stats::verdict_rate(&results.architectures);
        let variants = Dimension::ALL
            .into_iter()
            .map(|dimension| {
                let comparisons = rate.map_or_else(Vec::new, |rate| {
                    variants::comparisons(results, dimension, rate, MAX_UNCORRECTED_CUTS)
                });
                (dimension, comparisons)
            })
            .collect();
        Analysis {
            results,
            rate,
            summaries: results
                .architectures
                .iter()
                .map(crate::stats::summary_of)
                .collect(),
            verdict: rate.map(|rate| verdict::compare(results, rate)),
            front: rate.and_then(|rate| front::front(results, rate)),
            faults: faults::faults(results),
            variants,
            baseline: baseline.map(|b| baseline::changes(results, b)),
        }
    }

    /// The variants of `dimension` against their bases.
    pub fn variants(&self, dimension: Dimension) -> &[VariantComparison<'a>] {
        self.variants
            .iter()
            .find(|(d, _)| *d == dimension)
            .map_or(&[], |(_, comparisons)| comparisons)
    }
}
