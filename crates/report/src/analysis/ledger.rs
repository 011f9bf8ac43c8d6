//! What one hop costs ("the hop ledger"), in numbers. At the comparison rate, each cut is
//! set against the cut of the same mechanism (security mode, transport, mesh) that makes
//! the fewest hops (the monolith, when the run has it), round by round: the extra p50
//! latency and the extra units' CPU per request, each divided by the extra hops per
//! request (all three measured in that round), give what one more hop costs; the mean
//! over the rounds gets its 95 % interval (arithmetic: a difference can be near zero).
//!
//! The denominators are this machine's, from the same run: the bare hop's round trip (the
//! driver against a unit that does nothing) and the least hop's CPU (the least client
//! against the least server, `results.network.hop_calibration.floor`). The units' CPU per
//! hop is split into the kernel's part (system time) and the body codec's part.

use super::rounds;
use crate::results::{ArchitectureResult, Estimate, RunResults, StepResult};
use crate::stats;

/// Fewer extra hops than this per request: too few to divide by.
const MIN_EXTRA_HOPS: f64 = 0.5;

/// The ledger at the comparison rate.
#[derive(Debug, Clone, PartialEq)]
pub struct HopCosts<'a> {
    pub rate: u32,
    /// The bare hop's round trip p50, µs, from the same run.
    pub round_trip_floor_us: Option<f64>,
    /// The least hop's CPU per request (client and server), µs, when it held its rate.
    pub cpu_floor_us: Option<f64>,
    pub hops: Vec<HopCost<'a>>,
}

/// What one more hop costs `cut`, against `reference`.
#[derive(Debug, Clone, PartialEq)]
pub struct HopCost<'a> {
    pub cut: &'a ArchitectureResult,
    pub reference: &'a ArchitectureResult,
    /// Extra hops per request over the reference (mean over the rounds).
    pub extra_hops: f64,
    /// Per extra hop, µs: added p50, added units' CPU per request, of it the kernel's and
    /// the body codec's.
    pub latency_us: Option<Estimate>,
    pub cpu_us: Option<Estimate>,
    pub kernel_cpu_us: Option<Estimate>,
    pub codec_cpu_us: Option<Estimate>,
}

/// The floors of `results`: the bare hop's round trip p50 and the least hop's CPU, µs.
fn floors(results: &RunResults) -> (Option<f64>, Option<f64>) {
    let calibration = results.network.hop_calibration.as_ref();
    let round_trip = calibration.map(|c| {
        c.loopback_p50_over_rounds
            .as_ref()
            .map_or(c.loopback_us.p50 as f64, |e| e.point)
    });
    let cpu = calibration
        .and_then(|c| c.floor.as_ref())
        .filter(|f| f.held())
        .map(|f| f.cpu_us());
    (round_trip, cpu)
}

/// The ledger of `results` at `rate`; `None` when no cut makes enough more hops than
/// another of its mechanism.
pub fn hop_costs(results: &RunResults, rate: u32) -> Option<HopCosts<'_>> {
    let (round_trip_floor_us, cpu_floor_us) = floors(results);
    let hops: Vec<HopCost> = results
        .architectures
        .iter()
        .filter_map(|cut| hop_cost(cut, reference_of(results, cut, rate)?, rate))
        .collect();
    (!hops.is_empty()).then_some(HopCosts {
        rate,
        round_trip_floor_us,
        cpu_floor_us,
        hops,
    })
}

/// The cut of `arch`'s mechanism with the fewest hops per request at `rate`.
fn reference_of<'a>(
    results: &'a RunResults,
    arch: &ArchitectureResult,
    rate: u32,
) -> Option<&'a ArchitectureResult> {
    let hops = |a: &ArchitectureResult| rounds::mean_over_rounds(&hops_per_round(a, rate));
    results
        .architectures
        .iter()
        .filter(|a| a.same_mechanism(arch) && !a.same_deployment(arch))
        .filter_map(|a| hops(a).map(|h| (a, h.point)))
        .min_by(|x, y| x.1.total_cmp(&y.1))
        .map(|(a, _)| a)
}

fn hops_per_round(arch: &ArchitectureResult, rate: u32) -> Vec<(usize, f64)> {
    arch.per_round(rate, |s| Some(s.hops.mean_total))
}

/// Per round both ran: (figure difference) / (extra hops); the extra hops' mean.
fn per_hop(
    arch: &ArchitectureResult,
    reference: &ArchitectureResult,
    rate: u32,
    figure: impl Fn(&StepResult) -> Option<f64> + Copy,
) -> (Vec<f64>, f64) {
    let (a_hops, r_hops) = (hops_per_round(arch, rate), hops_per_round(reference, rate));
    let (a_fig, r_fig) = (
        arch.per_round(rate, figure),
        reference.per_round(rate, figure),
    );
    let at =
        |xs: &[(usize, f64)], round: usize| xs.iter().find(|(r, _)| *r == round).map(|(_, v)| *v);
    let mut per = Vec::new();
    let mut extras = Vec::new();
    for &(round, hops) in &a_hops {
        let Some(extra) = at(&r_hops, round).map(|h| hops - h) else {
            continue;
        };
        extras.push(extra);
        if let (Some(x), Some(y)) = (at(&a_fig, round), at(&r_fig, round)) {
            if extra >= MIN_EXTRA_HOPS {
                per.push((x - y) / extra);
            }
        }
    }
    let mean = extras.iter().sum::<f64>() / extras.len().max(1) as f64;
    (per, mean)
}

fn hop_cost<'a>(
    cut: &'a ArchitectureResult,
    reference: &'a ArchitectureResult,
    rate: u32,
) -> Option<HopCost<'a>> {
    let (latency, extra_hops) = per_hop(cut, reference, rate, |s| Some(s.latency_us.p50 as f64));
    if extra_hops < MIN_EXTRA_HOPS {
        return None;
    }
    let of = |figure: fn(&StepResult) -> Option<f64>| {
        stats::estimate(&per_hop(cut, reference, rate, figure).0)
    };
    Some(HopCost {
        cut,
        reference,
        extra_hops,
        latency_us: stats::estimate(&latency),
        cpu_us: of(|s| s.units_cpu_us_per_request),
        kernel_cpu_us: of(|s| s.units_system_cpu_us_per_request),
        codec_cpu_us: of(|s| s.units_codec_cpu_us_per_request),
    })
}
