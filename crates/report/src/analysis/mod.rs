//! The analysis of a run, in numbers: built once from results.json (and a baseline run),
//! read by every renderer. It holds the figures and their estimates, never words: the
//! rate the cuts are compared at, each deployment's per-rate summaries, the verdict's
//! comparisons, the front, what one hop costs, the faults, each mechanism's variants
//! against their bases, and the changes against a baseline. The report model (and through
//! it the terminal and the page), the charts and the `--fail-if` gate put these in words
//! and pictures themselves.
//!
//! - [`verdict`]: the cut with the lowest p99 and every other cut against it
//! - [`rounds`]: per-round figures of a deployment and the intervals over them
//! - [`variants`]: each [`Dimension`] of the mechanism, its variants against their bases
//! - [`faults`]: per injected fault, every cut it hit and which stayed most available
//! - [`front`]: the cuts' Pareto front, their standing against a p99 budget
//! - [`ledger`]: what one more hop costs each cut, against this machine's floors
//! - [`baseline`]: every figure against a baseline run's, and which changed beyond noise

pub mod baseline;
pub mod faults;
pub mod front;
pub mod ledger;
pub mod rounds;
pub mod variants;
pub mod verdict;

use crate::results::{ArchitectureResult, RateSummary, RunResults};
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
    /// with this grainbench's estimators ([`ArchitectureResult::rate_summaries`]).
    pub summaries: Vec<Vec<RateSummary>>,
    /// The cuts' Pareto front at the rate (with two or more cuts measured there).
    pub front: Option<front::FrontAnalysis>,
    /// What one hop costs at the rate (when a cut makes more hops than another of its
    /// mechanism).
    pub hop_costs: Option<ledger::HopCosts<'a>>,
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
                .map(ArchitectureResult::rate_summaries)
                .collect(),
            verdict: rate.map(|rate| verdict::compare(results, rate)),
            front: rate.and_then(|rate| front::front(results, rate)),
            hop_costs: rate.and_then(|rate| ledger::hop_costs(results, rate)),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The three-round fixture, as the analysis's tests (and its submodules') read it.
    pub(super) fn rounds_fixture() -> RunResults {
        serde_json::from_str(include_str!(
            "../../../../tests/fixtures/results-rounds.json"
        ))
        .unwrap()
    }

    /// One analysis holds what every renderer reads, computed from the same rounds: the
    /// verdict's best is the front's lowest p99, the summaries are one per deployment,
    /// and a run against itself changed nothing.
    #[test]
    fn the_analysis_agrees_with_itself_across_its_parts() {
        let results = rounds_fixture();
        let analysis = Analysis::of(&results, Some(&results));
        let rate = analysis.rate.expect("the fixture has a comparison rate");
        assert_eq!(analysis.summaries.len(), results.architectures.len());
        let best = analysis.verdict.as_ref().unwrap().best.as_ref().unwrap();
        let front = analysis.front.as_ref().unwrap();
        assert_eq!(front.rate, rate);
        let lowest = front
            .cuts
            .iter()
            .min_by(|a, b| a.p99.point.total_cmp(&b.p99.point))
            .unwrap();
        assert_eq!(lowest.label, best.arch.label());
        assert_eq!(lowest.p99, best.p99_us);
        assert_eq!(best.others.len() + 1, best.measured);
        let baseline = analysis.baseline.as_ref().unwrap();
        assert!(!baseline.changes.is_empty());
        assert_eq!(baseline.discovered(), 0, "a run against itself");
        assert!(Dimension::ALL
            .into_iter()
            .all(|d| analysis.variants(d).is_empty()));
        let costs = analysis.hop_costs.as_ref().expect("nano makes more hops");
        assert!(costs.hops.iter().all(|h| h.extra_hops >= 0.5));
    }

    #[test]
    fn without_a_valid_rate_nothing_is_compared() {
        let mut results = rounds_fixture();
        for arch in &mut results.architectures {
            for step in &mut arch.steps {
                step.valid = false;
            }
        }
        let analysis = Analysis::of(&results, None);
        assert_eq!(analysis.rate, None);
        assert!(analysis.verdict.is_none() && analysis.front.is_none());
        assert!(analysis.hop_costs.is_none() && analysis.baseline.is_none());
    }
}
