//! Which cut stays available when a process dies, freezes, slows down or fails: per fault
//! the run injected, every cut it was injected into, and which cut was most available,
//! held to the evidence (each other cut's success rate against the best's by a
//! two-proportion test over the fault window's requests, Benjamini–Hochberg at the false
//! discovery rate over those comparisons). The per-cut figures (success ratio, entrypoints
//! kept, hop amplification, recovery) are the fault results' own.

use crate::results::{ArchitectureResult, FaultResult, RunResults};

/// One fault and every cut it was injected into.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultComparison<'a> {
    /// The fault as the first cut ran it.
    pub fault: &'a FaultResult,
    pub cuts: Vec<(&'a ArchitectureResult, &'a FaultResult)>,
    /// Which cut kept the most requests succeeding; `None` when every cut did equally
    /// well (or none has a success ratio).
    pub most_available: Option<MostAvailable>,
}

/// The cut(s) with the highest success ratio while the fault lasted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MostAvailable {
    /// Several cuts share the highest ratio (but not all of them).
    Tied(Vec<String>),
    /// One cut has the highest ratio; `unclear` are the others not clearly below it.
    Best { best: String, unclear: Vec<String> },
}

/// Every fault of the run, in the order injected; empty without fault steps.
pub fn faults(results: &RunResults) -> Vec<FaultComparison<'_>> {
    let with_faults: Vec<&ArchitectureResult> = results
        .architectures
        .iter()
        .filter(|a| !a.faults.is_empty())
        .collect();
    let Some(first) = with_faults.first() else {
        return Vec::new();
    };
    first
        .faults
        .iter()
        .enumerate()
        .map(|(i, fault)| {
            let cuts: Vec<(&ArchitectureResult, &FaultResult)> = with_faults
                .iter()
                .filter_map(|a| a.faults.get(i).map(|f| (*a, f)))
                .collect();
            FaultComparison {
                fault,
                most_available: most_available(&cuts),
                cuts,
            }
        })
        .collect()
}

fn most_available(cuts: &[(&ArchitectureResult, &FaultResult)]) -> Option<MostAvailable> {
    let (best, ratio) = cuts
        .iter()
        .filter_map(|pair| Some((pair, pair.1.during.success_ratio()?)))
        .max_by(|x, y| x.1.total_cmp(&y.1))?;
    let ties: Vec<String> = cuts
        .iter()
        .filter(|(_, f)| f.during.success_ratio() == Some(ratio))
        .map(|(a, _)| a.label())
        .collect();
    match ties.len() {
        1 => Some(MostAvailable::Best {
            best: best.0.label(),
            unclear: not_clearly_below(best, cuts),
        }),
        n if n < cuts.len() => Some(MostAvailable::Tied(ties)),
        _ => None,
    }
}

/// The cuts whose success rate is not clearly below `best`'s.
fn not_clearly_below(
    (best, top): &(&ArchitectureResult, &FaultResult),
    cuts: &[(&ArchitectureResult, &FaultResult)],
) -> Vec<String> {
    let others: Vec<(String, Option<f64>)> = cuts
        .iter()
        .filter(|(a, f)| !a.same_deployment(best) && f.during.success_ratio().is_some())
        .map(|(a, f)| {
            let (d, t) = (&f.during, &top.during);
            let p = crate::stats::two_proportion_p_value(d.ok, d.requests, t.ok, t.requests);
            (a.label(), p)
        })
        .collect();
    let p_values: Vec<Option<f64>> = others.iter().map(|(_, p)| *p).collect();
    let below = crate::stats::benjamini_hochberg(&p_values, crate::stats::FALSE_DISCOVERY_RATE);
    others
        .into_iter()
        .zip(below)
        .filter(|(_, below)| !below)
        .map(|((name, _), _)| name)
        .collect()
}
