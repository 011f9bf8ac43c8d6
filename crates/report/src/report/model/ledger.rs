//! What one hop costs ("the hop ledger"), in words: each cut's per-hop latency and CPU
//! against the fewest-hop cut of its mechanism, and their ratios to this machine's floors
//! ([`crate::analysis::ledger`] has the figures and how they are taken).
//!
//! Measured: latency, hops and CPU per round, and the floors at the start of every round.
//! Derived: the per-hop figures (differences over extra hops) and their ratios to the
//! floors, each round's over its own round's floor (older runs measured the floor once,
//! and their ratios take it as exact). The units' CPU per hop is split into
//! the kernel's part (system time, `/proc/PID/stat`) and the rest, user space, and the
//! body codec's part (the units time one encode or decode in 8 on the thread's CPU clock).

use crate::analysis::ledger::{HopCost, HopCosts};
use crate::results::{Estimate, HopFloor, RunResults};
use serde::Serialize;

/// The ledger at the comparison rate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HopLedger {
    pub rate: u32,
    /// The transports its rows' hops spoke (`HTTP/1.1 + JSON, gRPC`).
    pub transport: String,
    /// The bare hop's round trip p50, µs, and the least hop's CPU per request (client and
    /// server), µs, as sentences.
    pub floor: Vec<String>,
    pub rows: Vec<LedgerRow>,
    /// How the figures were obtained.
    pub method: String,
}

/// One cut against its reference.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LedgerRow {
    pub cut: String,
    pub reference: String,
    /// What its unit-to-unit hops went through (`HTTP/1.1 + JSON`, `gRPC under mtls`,
    /// `HTTP/1.1 + JSON through sidecars`): each cut is set against one of the same.
    pub transport: String,
    /// Extra hops per request over the reference (mean over the rounds).
    pub extra_hops: String,
    /// Added p50 latency per extra hop, µs, with its interval.
    pub latency: String,
    /// Added units' CPU per request per extra hop, µs, with its interval.
    pub cpu: String,
    /// Of it, the units' time in the kernel (system time), µs per extra hop, with its
    /// interval; the rest is user space.
    pub kernel_cpu: String,
    /// Of it, the units' body codec (encode and decode), µs per extra hop, with its
    /// interval.
    pub codec_cpu: String,
    /// `latency` over the bare hop's round trip, `cpu` over the least hop's CPU.
    pub latency_to_bare_hop: String,
    pub cpu_to_floor: String,
    /// `cpu` over the least exchange's CPU, and over the least hop's across two cores.
    pub cpu_to_exchange: String,
    pub cpu_to_across: String,
    #[serde(skip)]
    pub latency_us: Option<Estimate>,
    #[serde(skip)]
    pub cpu_us: Option<Estimate>,
    #[serde(skip)]
    pub extra: f64,
}

/// The ledger in words.
pub fn ledger(costs: &HopCosts, results: &RunResults) -> HopLedger {
    let rate = costs.rate;
    let rows: Vec<LedgerRow> = costs.hops.iter().map(row).collect();
    let transport = transports(&rows).join(", ");
    let ratios = if costs.floors_per_round {
        "each round's per-hop figure over the floor measured at the start of the same round, with the 95 % interval of those ratios (it carries the floor's own noise)"
    } else {
        "the per-hop figure and its interval over the floor, which this run measured once and the ratio takes as exact"
    };
    HopLedger {
        rate,
        floor: floor_sentences(costs, results),
        rows,
        method: format!("Each cut against the cut of its security mode and transport with the fewest hops per request, round by round at {rate} req/s: (p50 − its p50) / (hops − its hops), and the same for the units' CPU per request; arithmetic means over the rounds (a difference can be near zero) with 95 % intervals (Student's t). The ratios to this machine's floor: {ratios}. The driver spoke HTTP/1.1 + JSON to the entry unit; unit-to-unit hops spoke {transport}, as each row's deployment says."),
        transport,
    }
}

/// The floors as sentences: the bare hop's round trip and the least hop's CPU.
fn floor_sentences(costs: &HopCosts, results: &RunResults) -> Vec<String> {
    let mut floor = Vec::new();
    let per_round = costs.floors_per_round;
    if let Some(e) = &costs.round_trip_floor_us {
        floor.push(format!(
            "the bare hop's round trip (the driver against a unit that does nothing): p50 {}{}",
            floor_figure(e, 0),
            floor_taken(e, per_round)
        ));
    }
    let least: Vec<&HopFloor> = match costs.floors_per_round {
        true => results
            .network
            .floors
            .iter()
            .filter_map(|f| f.least_hop.as_ref())
            .collect(),
        false => results
            .network
            .hop_calibration
            .iter()
            .filter_map(|c| c.floor.as_ref())
            .collect(),
    };
    let held: Vec<&HopFloor> = least.iter().copied().filter(|f| f.held()).collect();
    match (&costs.cpu_floor_us, held.first(), least.first()) {
        (Some(e), Some(f), _) => {
            let mean = |of: fn(&HopFloor) -> f64| mean_of(&held, of);
            let missed = least.len() - held.len();
            floor.push(format!(
                "the least hop (a client and a server that do nothing else, {} req/s{}): {} of CPU per request ({:.1} client + {:.1} server{}), round trip p50 {:.0} µs{}{}",
                f.rate_rps,
                if f.rate_rps == costs.rate { "" } else { ", not the comparison's rate: CPU per request grows as the rate falls, each wake-up costing more" },
                floor_figure(e, 1),
                mean(|f| f.client_cpu_us),
                mean(|f| f.server_cpu_us),
                if held.len() > 1 { "; means over the rounds" } else { "" },
                mean(|f| f.round_trip_us.p50 as f64),
                floor_taken(e, per_round),
                match missed {
                    0 => String::new(),
                    n => format!("; in {n} more round(s) it did not hold its rate, and those rounds have no CPU ratio"),
                }
            ));
        }
        (_, _, Some(f)) => floor.push(format!(
            "the least hop held only {:.0} of {} req/s: no CPU floor",
            f.achieved_rps, f.rate_rps
        )),
        _ => floor.push("the least hop's CPU was not measured in this run".into()),
    }
    if let Some(e) = &costs.exchange_floor_us {
        floor.push(format!(
            "of it, the least exchange (the least client from just after its timer woke it to the reply's last byte, and the least server; a call between units is woken by a request, not a timer, so this is the closer floor for a hop between units): {}{}",
            floor_figure(e, 1),
            floor_taken(e, costs.floors_per_round)
        ));
    }
    if let Some(e) = &costs.across_floor_us {
        let held: Vec<&HopFloor> = results
            .network
            .floors
            .iter()
            .filter_map(|f| f.least_hop_across_cores.as_ref().filter(|h| h.held()))
            .collect();
        floor.push(format!(
            "the least hop across two cores (the same, its client and its server pinned to two different cores, so that every wake-up crosses cores, as one between units on different cores does): {} of CPU per request, round trip p50 {:.0} µs{}",
            floor_figure(e, 1),
            mean_of(&held, |h| h.round_trip_us.p50 as f64),
            floor_taken(e, costs.floors_per_round)
        ));
    }
    floor
}

/// The mean of a figure of least hops that held their rate (0 for none).
fn mean_of(held: &[&HopFloor], of: fn(&HopFloor) -> f64) -> f64 {
    held.iter().map(|h| of(h)).sum::<f64>() / held.len().max(1) as f64
}

/// A floor: `70 [64–77] µs`, `70 µs`.
fn floor_figure(e: &Estimate, decimals: usize) -> String {
    match e.interval() {
        Some((low, high)) => format!("{:.d$} [{low:.d$}–{high:.d$}] µs", e.point, d = decimals),
        None => format!("{:.d$} µs", e.point, d = decimals),
    }
}

/// How a floor was taken, to end its sentence.
fn floor_taken(e: &Estimate, per_round: bool) -> String {
    match (per_round, e.rounds) {
        (false, _) => " — measured before the rounds".into(),
        (true, 1) => " — measured at the start of the one round".into(),
        (true, n) => format!(" — geometric mean of {n} rounds, each measured at its start"),
    }
}

fn row(hop: &HopCost) -> LedgerRow {
    let text = |e: &Option<Estimate>| e.as_ref().map_or("–".into(), signed);
    LedgerRow {
        cut: hop.cut.label(),
        reference: hop.reference.label(),
        transport: hop.cut.mechanism(),
        extra_hops: format!("{:.1}", hop.extra_hops),
        latency: text(&hop.latency_us),
        cpu: text(&hop.cpu_us),
        kernel_cpu: text(&hop.kernel_cpu_us),
        codec_cpu: text(&hop.codec_cpu_us),
        latency_to_bare_hop: times(hop.latency_to_floor.as_ref()),
        cpu_to_floor: times(hop.cpu_to_floor.as_ref()),
        cpu_to_exchange: times(hop.cpu_to_exchange.as_ref()),
        cpu_to_across: times(hop.cpu_to_across.as_ref()),
        latency_us: hop.latency_us,
        cpu_us: hop.cpu_us,
        extra: hop.extra_hops,
    }
}

/// `146 [120–172]`, the interval's ends as they are (a hop can cost nothing: a low end
/// below zero is shown, not clamped).
fn signed(e: &Estimate) -> String {
    match e.interval() {
        Some((low, high)) => format!("{:.0} [{low:.0}–{high:.0}]", e.point),
        None => format!("{:.0} (one round)", e.point),
    }
}

/// `146 [120–172] µs`, or `146 µs (one round)`.
fn micros(e: &Estimate) -> String {
    match e.interval() {
        Some((low, high)) => format!("{:.0} [{low:.0}–{high:.0}] µs", e.point),
        None => format!("{:.0} µs (one round)", e.point),
    }
}

/// A ratio to a floor: `2.1× [1.8–2.4]`, or `2.1×` from one round.
fn times(e: Option<&Estimate>) -> String {
    let Some(e) = e else {
        return "–".into();
    };
    match e.interval() {
        // A low end that rounds to zero is shown as 0.0, not -0.0.
        Some((low, high)) => {
            // (-0.0 + 0.0 is 0.0.)
            let low = (low * 10.0).round() / 10.0 + 0.0;
            format!("{:.1}× [{low:.1}–{high:.1}]", e.point)
        }
        None => format!("{:.1}×", e.point),
    }
}

/// The transports of `rows`, each once, in their order.
fn transports(rows: &[LedgerRow]) -> Vec<&str> {
    let mut transports: Vec<&str> = Vec::new();
    for row in rows {
        if !transports.contains(&row.transport.as_str()) {
            transports.push(&row.transport);
        }
    }
    transports
}

/// The verdict's sentence: per transport, the row with the most extra hops (the tightest
/// division), the first transport's in full and the others' after it.
pub fn sentence(ledger: &HopLedger) -> Option<String> {
    let widest = |transport: &str| {
        ledger
            .rows
            .iter()
            .filter(|r| r.transport == transport && r.cpu_us.is_some() && r.latency_us.is_some())
            .max_by(|a, b| a.extra.total_cmp(&b.extra))
    };
    let mut rows = transports(&ledger.rows).into_iter().filter_map(widest);
    let first = sentence_of(ledger.rate, rows.next()?)?;
    let others: Vec<String> = rows.filter_map(clause_of).collect();
    if others.is_empty() {
        return Some(first);
    }
    Some(format!(
        "{first} Per hop, each against the fewest-hop cut of its own mechanism: {}.",
        others.join("; ")
    ))
}

/// `gRPC: 120 µs of CPU and 90 µs of p50 (nano+grpc against monolith+grpc, 2.1× the
/// floor, 5.3× the least exchange's)`.
fn clause_of(row: &LedgerRow) -> Option<String> {
    let (cpu, latency) = (row.cpu_us.as_ref()?, row.latency_us.as_ref()?);
    let floor: String = [
        (&row.cpu_to_floor, "the floor"),
        (&row.cpu_to_exchange, "the least exchange's"),
        (&row.cpu_to_across, "the least hop's across cores"),
    ]
    .into_iter()
    .filter(|(x, _)| x.as_str() != "–")
    .map(|(x, of)| format!(", {x} {of}"))
    .collect();
    Some(format!(
        "{}: {} of CPU and {} of p50 ({} against {}{floor})",
        row.transport,
        micros(cpu),
        micros(latency),
        row.cut,
        row.reference
    ))
}

fn sentence_of(rate: u32, row: &LedgerRow) -> Option<String> {
    let (cpu, latency) = (row.cpu_us.as_ref()?, row.latency_us.as_ref()?);
    let shown = |x: &String| x.as_str() != "–";
    let cpu_ratios: Vec<String> = [
        (&row.cpu_to_floor, "this machine's floor"),
        (&row.cpu_to_exchange, "the least exchange's"),
        (&row.cpu_to_across, "the least hop's across two cores"),
    ]
    .into_iter()
    .filter(|(x, _)| shown(x))
    .map(|(x, of)| format!("{x} {of}"))
    .collect();
    let cpu_x = match cpu_ratios.as_slice() {
        [] => None,
        [one] => Some(format!("CPU {one}")),
        [first @ .., last] => Some(format!("CPU {} and {last}", first.join(", "))),
    };
    let lat_x = shown(&row.latency_to_bare_hop).then(|| {
        format!(
            "latency {} the bare hop's round trip",
            row.latency_to_bare_hop
        )
    });
    let ratios: Vec<String> = cpu_x.into_iter().chain(lat_x).collect();
    let floor = match ratios.is_empty() {
        true => String::new(),
        false => format!(" ({})", ratios.join(", ")),
    };
    Some(format!(
        "At {rate} req/s a hop costs {} of the units' CPU and {} of p50 latency over {}{floor}: {} against {}, {} more hops per request.",
        micros(cpu), micros(latency), row.transport, row.cut, row.reference, row.extra_hops
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The ledger of `results` at `rate`, as the model builds it.
    fn of(results: &RunResults, rate: u32) -> Option<HopLedger> {
        crate::analysis::ledger::hop_costs(results, rate).map(|costs| ledger(&costs, results))
    }

    /// A run of plaintext and mtls, with and without sidecars: four ledgers' worth of rows,
    /// each cut against the fewest-hop cut of its own mechanism, and the headline names
    /// each mechanism apart (plaintext and mtls used to share one, "HTTP/1.1 + JSON").
    #[test]
    fn each_cut_is_set_against_the_fewest_hop_cut_of_its_own_mechanism() {
        use crate::modes::{Mesh, SecurityMode};
        let mut results: RunResults = serde_json::from_str(include_str!(
            "../../../../../tests/fixtures/results-rounds.json"
        ))
        .unwrap();
        let rate = super::super::verdict_rate(&results).unwrap();
        let plain = results.architectures.clone();
        for (security, mesh) in [
            (SecurityMode::Mtls, Mesh::None),
            (SecurityMode::None, Mesh::Sidecar),
        ] {
            results
                .architectures
                .extend(plain.iter().cloned().map(|mut a| {
                    a.security = security;
                    a.mesh = mesh;
                    a
                }));
        }
        let ledger = of(&results, rate).unwrap();
        let row = |cut: &str| ledger.rows.iter().find(|r| r.cut == cut).unwrap();
        assert_eq!(row("nano+mtls").reference, "monolith+mtls");
        assert_eq!(row("nano+mtls").transport, "HTTP/1.1 + JSON under mtls");
        assert_eq!(row("nano+sidecar").reference, "monolith+sidecar");
        assert_eq!(
            row("nano+sidecar").transport,
            "HTTP/1.1 + JSON through sidecars"
        );
        let headline = sentence(&ledger).unwrap();
        assert!(
            headline.contains(
                "each against the fewest-hop cut of its own mechanism: HTTP/1.1 + JSON under mtls:"
            ) && headline.contains("; HTTP/1.1 + JSON through sidecars:"),
            "{headline}"
        );
    }

    #[test]
    fn per_hop_figures_divide_each_round_s_difference_by_its_extra_hops() {
        let results: RunResults = serde_json::from_str(include_str!(
            "../../../../../tests/fixtures/results-rounds.json"
        ))
        .unwrap();
        let rate = super::super::verdict_rate(&results).unwrap();
        let ledger = of(&results, rate).expect("nano makes more hops than the monolith");
        let nano = ledger.rows.iter().find(|r| r.cut == "nano").unwrap();
        assert_eq!(nano.reference, "monolith");
        // Recomputed by hand from the fixture's rounds.
        let arch = |name: &str| {
            results
                .architectures
                .iter()
                .find(|a| a.label() == name)
                .unwrap()
        };
        let (n, m) = (arch("nano"), arch("monolith"));
        let mut expected = Vec::new();
        for s in n.steps.iter().filter(|s| s.is_valid_open_at(rate)) {
            let r = m
                .steps
                .iter()
                .find(|t| t.is_valid_open_at(rate) && t.round == s.round)
                .unwrap();
            expected.push(
                (s.latency_us.p50 as f64 - r.latency_us.p50 as f64)
                    / (s.hops.mean_total - r.hops.mean_total),
            );
        }
        let mean = expected.iter().sum::<f64>() / expected.len() as f64;
        let got = nano.latency_us.as_ref().unwrap();
        assert!((got.point - mean).abs() < 1e-9, "{got:?} vs {mean}");
        assert_eq!(got.rounds, expected.len());
        assert!(sentence(&ledger).unwrap().contains("a hop costs"));
    }

    #[test]
    fn a_ratio_to_the_floor_shows_its_interval() {
        let e = Estimate {
            point: 2.0,
            low: Some(1.6),
            high: Some(2.4),
            rounds: 3,
        };
        assert_eq!(times(Some(&e)), "2.0× [1.6–2.4]");
        assert_eq!(times(None), "–");
        let one = Estimate {
            low: None,
            high: None,
            rounds: 1,
            ..e
        };
        assert_eq!(times(Some(&one)), "2.0×");
        let near_zero = Estimate {
            low: Some(-0.01),
            ..e
        };
        assert_eq!(times(Some(&near_zero)), "2.0× [0.0–2.4]");
        let below = Estimate {
            point: 2.0,
            low: Some(-5.0),
            high: Some(9.0),
            rounds: 3,
        };
        assert_eq!(signed(&below), "2 [-5–9]", "a low end below zero is kept");
    }
}
