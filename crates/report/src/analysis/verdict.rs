//! The verdict in numbers: at the comparison rate, the cut with the lowest p99 and every
//! other cut against it, ratios paired over the rounds (p99, hops, units' CPU per request)
//! and, with more than [`super::MAX_UNCORRECTED_CUTS`] cuts, whether each p99 difference
//! is a Benjamini–Hochberg discovery among the comparisons with the best.

use super::rounds;
use crate::results::{ArchitectureResult, Estimate, RunResults};

/// The cuts the verdict compares, at one rate.
#[derive(Debug, Clone, PartialEq)]
pub struct CutComparison<'a> {
    pub rate: u32,
    /// With several mechanisms, the one whose cuts are compared, in words.
    pub mechanism: Option<String>,
    /// The deployments compared.
    pub compared: Vec<&'a ArchitectureResult>,
    /// The lowest p99 and the others against it (`None`: no cut has a p99 there).
    pub best: Option<Best<'a>>,
}

/// The cut with the lowest p99, and every other measured cut against it.
#[derive(Debug, Clone, PartialEq)]
pub struct Best<'a> {
    pub arch: &'a ArchitectureResult,
    pub p99_us: Estimate,
    pub p50_us: Option<Estimate>,
    /// Its hops per request in its first valid round.
    pub hops: f64,
    /// The cuts with a p99 at the rate, the best included.
    pub measured: usize,
    pub others: Vec<AgainstBest<'a>>,
}

/// One cut against the best.
#[derive(Debug, Clone, PartialEq)]
pub struct AgainstBest<'a> {
    pub arch: &'a ArchitectureResult,
    pub p99_us: Estimate,
    /// Its p99 over the best's, paired over the rounds.
    pub p99_ratio: Estimate,
    /// Among more than three cuts: whether the p99 ratio is a discovery (`None`: few
    /// enough to take as it is).
    pub discovered: Option<bool>,
    pub hops_ratio: Option<Estimate>,
    pub cpu_ratio: Option<Estimate>,
}

/// The deployments the verdict sets against each other. With one mechanism (what hops
/// speak: transport, security mode, mesh), every one. With several, the cuts of the
/// mechanism nearest the base (plaintext HTTP/1.1 + JSON, no mesh; the first listed on a
/// tie), named in words: each other mechanism is set against the same cut in its own
/// section, so the verdict compares cuts, once.
pub fn verdict_deployments(results: &RunResults) -> (Vec<&ArchitectureResult>, Option<String>) {
    let all = &results.architectures;
    let Some(reference) = all.iter().min_by_key(|a| a.mechanism_distance()) else {
        return (Vec::new(), None);
    };
    if all.iter().all(|a| a.same_mechanism(reference)) {
        return (all.iter().collect(), None);
    }
    let compared = all.iter().filter(|a| a.same_mechanism(reference)).collect();
    (compared, Some(reference.mechanism()))
}

/// The verdict's cuts of `results` compared at `rate`.
pub fn compare(results: &RunResults, rate: u32) -> CutComparison<'_> {
    let (compared, mechanism) = verdict_deployments(results);
    CutComparison {
        rate,
        best: best(&compared, rate),
        mechanism,
        compared,
    }
}

fn best<'a>(compared: &[&'a ArchitectureResult], rate: u32) -> Option<Best<'a>> {
    let p99 = |a: &ArchitectureResult| a.per_round(rate, |s| Some(s.latency_us.p99 as f64));
    let p50 = |a: &ArchitectureResult| a.per_round(rate, |s| Some(s.latency_us.p50 as f64));
    let hops = |a: &ArchitectureResult| a.per_round(rate, |s| Some(s.hops.mean_total));
    let cpu = |a: &ArchitectureResult| a.per_round(rate, |s| s.units_cpu_us_per_request);
    let measured: Vec<(&ArchitectureResult, Estimate)> = compared
        .iter()
        .filter_map(|a| rounds::over_rounds(&p99(a)).map(|e| (*a, e)))
        .collect();
    let &(best, best_p99) = measured
        .iter()
        .min_by(|(_, x), (_, y)| x.point.total_cmp(&y.point))?;
    let others: Vec<&(&ArchitectureResult, Estimate)> = measured
        .iter()
        .filter(|(a, _)| !a.same_deployment(best))
        .collect();
    let corrected = measured.len() > super::MAX_UNCORRECTED_CUTS;
    let discovered = crate::stats::benjamini_hochberg(
        &others
            .iter()
            .map(|(a, _)| rounds::ratio_p_value(&p99(a), &p99(best)))
            .collect::<Vec<_>>(),
        crate::stats::FALSE_DISCOVERY_RATE,
    );
    let others = others
        .into_iter()
        .zip(discovered)
        .filter_map(|(&(arch, arch_p99), discovered)| {
            Some(AgainstBest {
                arch,
                p99_us: arch_p99,
                p99_ratio: rounds::ratio(&p99(arch), &p99(best))?,
                discovered: corrected.then_some(discovered),
                hops_ratio: rounds::ratio(&hops(arch), &hops(best)),
                cpu_ratio: rounds::ratio(&cpu(arch), &cpu(best)),
            })
        })
        .collect();
    Some(Best {
        arch: best,
        p99_us: best_p99,
        p50_us: rounds::over_rounds(&p50(best)),
        hops: hops(best).first().map_or(0.0, |(_, h)| *h),
        measured: measured.len(),
        others,
    })
}
