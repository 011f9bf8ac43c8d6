//! What one hop costs ("the hop ledger"), in numbers. At the comparison rate, each cut is
//! set against the cut of the same mechanism (security mode, transport, mesh) that makes
//! the fewest hops (the monolith, when the run has it), round by round: the extra p50
//! latency and the extra units' CPU per request, each divided by the extra hops per
//! request (all three measured in that round), give what one more hop costs; the mean
//! over the rounds gets its 95 % interval (arithmetic: a difference can be near zero).
//!
//! The denominators are this machine's, from the same run: the bare hop's round trip (the
//! driver against a unit that does nothing) and the least hop's CPU (the least client
//! against the least server), both measured at the start of every round
//! (`results.network.floors`). Each round's per-hop figure is divided by its own round's
//! floor, and the ratio's interval is taken over those per-round ratios: it carries the
//! floor's noise, and a machine slower in one round is slower for both. Runs from before
//! the floors were measured per round measured them once; their ratios take that floor
//! as exact ([`HopCosts::floors_per_round`] says which). Of the least hop's CPU, the least
//! exchange's is a floor of its own: the least client from just after its timer woke it
//! to the reply, and the least server. A call between units is woken by a request, not by
//! a timer, and on this kind of machine a timer's wake-up is most of the least client's
//! CPU. The least hop pinned across two cores is a floor of its own too: each of its
//! wake-ups crosses cores, as a hop between units on different cores does, and on a
//! virtual machine that can cost several times the hop the scheduler places on one core.
//! The units' CPU per hop is split into the kernel's part (system time) and the body
//! codec's part.

use super::rounds;
use crate::results::{ArchitectureResult, Estimate, HopFloor, RoundFloor, RunResults, StepResult};
use crate::stats;

/// Fewer extra hops than this per request: too few to divide by.
const MIN_EXTRA_HOPS: f64 = 0.5;

/// The ledger at the comparison rate.
#[derive(Debug, Clone, PartialEq)]
pub struct HopCosts<'a> {
    pub rate: u32,
    /// The bare hop's round trip p50, µs, over the rounds (geometric mean).
    pub round_trip_floor_us: Option<Estimate>,
    /// The least hop's CPU per request (client and server), µs, over the rounds in which
    /// it held its rate (geometric mean).
    pub cpu_floor_us: Option<Estimate>,
    /// Of it, the least exchange's: the least client's CPU from its wake-up to the reply
    /// and the least server's, µs (geometric mean over the rounds). A call between units is
    /// woken by a request, not by a timer, so this is the floor a hop between units is
    /// measured against most closely (absent from runs before it was measured).
    pub exchange_floor_us: Option<Estimate>,
    /// The least hop's CPU per request with its client and server pinned to two cores, µs
    /// (geometric mean over the rounds in which it held its rate; absent from runs before
    /// it was measured, and on one core).
    pub across_floor_us: Option<Estimate>,
    /// Whether the floors were measured in every round (the ratios are per round, their
    /// intervals carry the floors' noise) or once (the ratios take that floor as exact).
    pub floors_per_round: bool,
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
    /// The added p50 over the bare hop's round trip, and the added CPU over the least
    /// hop's, each round's over its own round's floor.
    pub latency_to_floor: Option<Estimate>,
    pub cpu_to_floor: Option<Estimate>,
    /// The added CPU over the least exchange's, and over the least hop's across two
    /// cores, each round's over its own round's.
    pub cpu_to_exchange: Option<Estimate>,
    pub cpu_to_across: Option<Estimate>,
}

/// One of this machine's floors, µs.
#[derive(Debug, Clone, PartialEq)]
enum Floor {
    /// Measured at the start of each of these rounds.
    PerRound(Vec<(usize, f64)>),
    /// Measured once, before the rounds (older runs).
    Once(f64),
}

impl Floor {
    /// Its value for `round`.
    fn at(&self, round: usize) -> Option<f64> {
        match self {
            Floor::PerRound(values) => at(values, round),
            Floor::Once(value) => Some(*value),
        }
    }

    /// Over the rounds: the geometric mean (a floor is positive) with its interval.
    fn over_rounds(&self) -> Option<Estimate> {
        match self {
            Floor::PerRound(values) => {
                stats::geometric(&values.iter().map(|(_, v)| *v).collect::<Vec<_>>())
            }
            Floor::Once(value) => Some(Estimate {
                point: *value,
                low: None,
                high: None,
                rounds: 1,
            }),
        }
    }
}

/// This machine's floors in a run.
#[derive(Debug, Clone, PartialEq)]
struct Floors {
    /// The bare hop's round trip p50.
    round_trip: Option<Floor>,
    /// The least hop's CPU per request (when it held its rate), and of it the least
    /// exchange's (without the least client's sleep and timer wake-up).
    cpu: Option<Floor>,
    exchange: Option<Floor>,
    /// The least hop's CPU across two cores (when it held its rate).
    across: Option<Floor>,
    /// Measured in every round, or (older runs) once.
    per_round: bool,
}

/// A least hop, unless it fell behind its rate (then it is no floor).
fn held(hop: &Option<HopFloor>) -> Option<&HopFloor> {
    hop.as_ref().filter(|h| h.held())
}

/// The floors of `results`, measured in every round, or (older runs) once.
fn floors(results: &RunResults) -> Floors {
    let network = &results.network;
    if !network.floors.is_empty() {
        let per_round = |value: &dyn Fn(&RoundFloor) -> Option<f64>| {
            let values: Vec<(usize, f64)> = network
                .floors
                .iter()
                .filter_map(|f| Some((f.round, value(f)?)))
                .collect();
            (!values.is_empty()).then_some(Floor::PerRound(values))
        };
        return Floors {
            round_trip: per_round(&|f| f.bare_hop_p50_us),
            cpu: per_round(&|f| Some(held(&f.least_hop)?.cpu_us())),
            exchange: per_round(&|f| held(&f.least_hop)?.exchange_cpu_us()),
            across: per_round(&|f| Some(held(&f.least_hop_across_cores)?.cpu_us())),
            per_round: true,
        };
    }
    let calibration = network.hop_calibration.as_ref();
    let round_trip = calibration.map(|c| {
        c.loopback_p50_over_rounds
            .as_ref()
            .map_or(c.loopback_us.p50 as f64, |e| e.point)
    });
    let cpu = calibration
        .and_then(|c| c.floor.as_ref())
        .filter(|f| f.held())
        .map(|f| f.cpu_us());
    Floors {
        round_trip: round_trip.map(Floor::Once),
        cpu: cpu.map(Floor::Once),
        exchange: None,
        across: None,
        per_round: false,
    }
}

/// `figures` over `floor`, round by round (the rounds that have both), with its interval.
fn ratio(figures: &[(usize, f64)], floor: Option<&Floor>) -> Option<Estimate> {
    let floor = floor?;
    let ratios: Vec<(usize, f64)> = figures
        .iter()
        .filter_map(|&(round, x)| Some((round, x / floor.at(round).filter(|f| *f > 0.0)?)))
        .collect();
    estimate(&ratios)
}

/// The value of `round` in `xs`.
fn at(xs: &[(usize, f64)], round: usize) -> Option<f64> {
    xs.iter().find(|(r, _)| *r == round).map(|(_, v)| *v)
}

/// The ledger of `results` at `rate`; `None` when no cut makes enough more hops than
/// another of its mechanism.
pub fn hop_costs(results: &RunResults, rate: u32) -> Option<HopCosts<'_>> {
    let floors = floors(results);
    let hops: Vec<HopCost> = results
        .architectures
        .iter()
        .filter_map(|cut| hop_cost(cut, reference_of(results, cut, rate)?, rate, &floors))
        .collect();
    let over_rounds = |floor: &Option<Floor>| floor.as_ref().and_then(Floor::over_rounds);
    (!hops.is_empty()).then(|| HopCosts {
        rate,
        round_trip_floor_us: over_rounds(&floors.round_trip),
        cpu_floor_us: over_rounds(&floors.cpu),
        exchange_floor_us: over_rounds(&floors.exchange),
        across_floor_us: over_rounds(&floors.across),
        floors_per_round: floors.per_round,
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

/// Per round both ran: (round, figure difference / extra hops); the extra hops' mean.
fn per_hop(
    arch: &ArchitectureResult,
    reference: &ArchitectureResult,
    rate: u32,
    figure: impl Fn(&StepResult) -> Option<f64> + Copy,
) -> (Vec<(usize, f64)>, f64) {
    let (a_hops, r_hops) = (hops_per_round(arch, rate), hops_per_round(reference, rate));
    let (a_fig, r_fig) = (
        arch.per_round(rate, figure),
        reference.per_round(rate, figure),
    );
    let mut per = Vec::new();
    let mut extras = Vec::new();
    for &(round, hops) in &a_hops {
        let Some(extra) = at(&r_hops, round).map(|h| hops - h) else {
            continue;
        };
        extras.push(extra);
        if let (Some(x), Some(y)) = (at(&a_fig, round), at(&r_fig, round)) {
            if extra >= MIN_EXTRA_HOPS {
                per.push((round, (x - y) / extra));
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
    floors: &Floors,
) -> Option<HopCost<'a>> {
    let (latency, extra_hops) = per_hop(cut, reference, rate, |s| Some(s.latency_us.p50 as f64));
    if extra_hops < MIN_EXTRA_HOPS {
        return None;
    }
    let (cpu, _) = per_hop(cut, reference, rate, |s| s.units_cpu_us_per_request);
    let of =
        |figure: fn(&StepResult) -> Option<f64>| estimate(&per_hop(cut, reference, rate, figure).0);
    Some(HopCost {
        cut,
        reference,
        extra_hops,
        latency_us: estimate(&latency),
        cpu_us: estimate(&cpu),
        kernel_cpu_us: of(|s| s.units_system_cpu_us_per_request),
        codec_cpu_us: of(|s| s.units_codec_cpu_us_per_request),
        latency_to_floor: ratio(&latency, floors.round_trip.as_ref()),
        cpu_to_floor: ratio(&cpu, floors.cpu.as_ref()),
        cpu_to_exchange: ratio(&cpu, floors.exchange.as_ref()),
        cpu_to_across: ratio(&cpu, floors.across.as_ref()),
    })
}

/// The mean over the rounds of per-round figures, with its interval.
fn estimate(per_round: &[(usize, f64)]) -> Option<Estimate> {
    let values: Vec<f64> = per_round.iter().map(|(_, v)| *v).collect();
    stats::estimate(&values)
}

#[cfg(test)]
mod tests {
    use super::super::tests::rounds_fixture;
    use super::*;
    use crate::results::Percentiles;

    fn least_hop(cpu_us: f64, achieved_rps: f64) -> HopFloor {
        HopFloor {
            rate_rps: 200,
            requests: 400,
            achieved_rps,
            client_cpu_us: cpu_us / 2.0,
            client_exchange_cpu_us: None,
            server_cpu_us: cpu_us / 2.0,
            round_trip_us: Percentiles::default(),
        }
    }

    /// Each round's per-hop CPU over the floor of the same round: a floor that moves with
    /// the machine (here in proportion to nano's per-hop CPU) gives the same ratio every
    /// round, an interval of width zero, where dividing by one floor for all rounds would
    /// have kept the rounds' spread.
    #[test]
    fn each_round_is_divided_by_its_own_round_s_floor() {
        let mut results = rounds_fixture();
        let rate = crate::stats::verdict_rate(&results.architectures).unwrap();
        let (cpu, spread) = {
            let once = hop_costs(&results, rate).unwrap();
            assert!(!once.floors_per_round);
            let nano = once.hops.iter().find(|h| h.cut.label() == "nano").unwrap();
            let (cpu, _) = per_hop(nano.cut, nano.reference, rate, |s| {
                s.units_cpu_us_per_request
            });
            (cpu, nano.cpu_to_floor.unwrap())
        };
        assert!(cpu.len() >= 2, "the fixture has rounds: {cpu:?}");
        assert!(spread.high > spread.low, "{spread:?}");
        results.network.floors = cpu
            .iter()
            .map(|&(round, per_hop)| RoundFloor {
                round,
                bare_hop_p50_us: Some(70.0 + round as f64),
                least_hop: Some(least_hop(per_hop / 2.5, 200.0)),
                least_hop_across_cores: None,
            })
            .collect();
        let paired = hop_costs(&results, rate).unwrap();
        assert!(paired.floors_per_round);
        let nano = paired
            .hops
            .iter()
            .find(|h| h.cut.label() == "nano")
            .unwrap();
        let ratio = nano.cpu_to_floor.unwrap();
        assert!((ratio.point - 2.5).abs() < 1e-9, "{ratio:?}");
        let (low, high) = ratio.interval().unwrap();
        assert!((high - low).abs() < 1e-9, "{ratio:?}");
        assert_eq!(paired.cpu_floor_us.unwrap().rounds, cpu.len());
        assert_eq!(paired.round_trip_floor_us.unwrap().rounds, cpu.len());
    }

    /// The least exchange (the least client from its wake-up to the reply, and the least
    /// server) is a floor of its own, paired by round like the least hop's; a run without
    /// it has no such ratio.
    #[test]
    fn the_least_exchange_is_a_floor_of_its_own() {
        let mut results = rounds_fixture();
        let rate = crate::stats::verdict_rate(&results.architectures).unwrap();
        let with_exchange = |exchange: Option<f64>| {
            (0..3)
                .map(|round| RoundFloor {
                    round,
                    bare_hop_p50_us: Some(70.0),
                    least_hop: Some(HopFloor {
                        client_exchange_cpu_us: exchange,
                        ..least_hop(40.0, 200.0)
                    }),
                    least_hop_across_cores: None,
                })
                .collect()
        };
        results.network.floors = with_exchange(None);
        let costs = hop_costs(&results, rate).unwrap();
        assert!(costs.exchange_floor_us.is_none());
        assert!(costs.hops.iter().all(|h| h.cpu_to_exchange.is_none()));
        results.network.floors = with_exchange(Some(5.0));
        let costs = hop_costs(&results, rate).unwrap();
        // 5 µs of the client's 20, and the server's 20.
        let floor = costs.exchange_floor_us.unwrap();
        assert!((floor.point - 25.0).abs() < 1e-9, "{floor:?}");
        let nano = costs.hops.iter().find(|h| h.cut.label() == "nano").unwrap();
        let (to_hop, to_exchange) = (nano.cpu_to_floor.unwrap(), nano.cpu_to_exchange.unwrap());
        assert!((to_exchange.point - to_hop.point * 40.0 / 25.0).abs() < 1e-9);
    }

    /// The least hop across two cores is a floor of its own, paired by round; a round in
    /// which it fell behind, or did not run (one core), has no such ratio, and the least
    /// hop's own ratio is untouched by it.
    #[test]
    fn the_least_hop_across_cores_is_a_floor_of_its_own() {
        let mut results = rounds_fixture();
        let rate = crate::stats::verdict_rate(&results.architectures).unwrap();
        let across = |round: usize| match round {
            0 => None,
            1 => Some(least_hop(160.0, 150.0)),
            _ => Some(least_hop(160.0, 200.0)),
        };
        results.network.floors = (0..3)
            .map(|round| RoundFloor {
                round,
                bare_hop_p50_us: Some(70.0),
                least_hop: Some(least_hop(40.0, 200.0)),
                least_hop_across_cores: across(round),
            })
            .collect();
        let costs = hop_costs(&results, rate).unwrap();
        let floor = costs.across_floor_us.unwrap();
        assert_eq!(floor.rounds, 1, "only the round where it held: {floor:?}");
        assert!((floor.point - 160.0).abs() < 1e-9, "{floor:?}");
        let nano = costs.hops.iter().find(|h| h.cut.label() == "nano").unwrap();
        let (cpu, _) = per_hop(nano.cut, nano.reference, rate, |s| {
            s.units_cpu_us_per_request
        });
        let in_round_2 = at(&cpu, 2).expect("the fixture has a third round");
        let to_across = nano.cpu_to_across.unwrap();
        assert_eq!(to_across.rounds, 1);
        assert!((to_across.point - in_round_2 / 160.0).abs() < 1e-9);
        assert_eq!(nano.cpu_to_floor.unwrap().rounds, 3);
        results
            .network
            .floors
            .iter_mut()
            .for_each(|f| f.least_hop_across_cores = None);
        let costs = hop_costs(&results, rate).unwrap();
        assert!(costs.across_floor_us.is_none());
        assert!(costs.hops.iter().all(|h| h.cpu_to_across.is_none()));
    }

    /// A round whose least hop fell behind its rate has no CPU floor: its ratio is left
    /// out, not divided by a floor that is no floor.
    #[test]
    fn a_round_whose_least_hop_fell_behind_has_no_ratio() {
        let mut results = rounds_fixture();
        let rate = crate::stats::verdict_rate(&results.architectures).unwrap();
        results.network.floors = (0..3)
            .map(|round| RoundFloor {
                round,
                bare_hop_p50_us: None,
                least_hop: Some(least_hop(40.0, if round == 1 { 150.0 } else { 200.0 })),
                least_hop_across_cores: None,
            })
            .collect();
        let costs = hop_costs(&results, rate).unwrap();
        assert_eq!(costs.cpu_floor_us.unwrap().rounds, 2);
        assert!(costs.round_trip_floor_us.is_none());
        let nano = costs.hops.iter().find(|h| h.cut.label() == "nano").unwrap();
        assert!(nano.latency_to_floor.is_none());
        assert_eq!(nano.cpu_to_floor.unwrap().rounds, 2);
    }
}
