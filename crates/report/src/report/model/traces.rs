//! What the traces say, under `run --trace`: whether every traced request's spans added
//! up (one tree, the measured hops), and where the time of each cut's requests goes along
//! their critical path, at the comparison rate.

use crate::results::{ArchitectureResult, RunResults, TimeBreakdown, TraceSummary};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TraceSection {
    /// The rate the table and the waterfalls are at (req/s).
    pub rate: u32,
    /// "1 %" of the load's requests.
    pub sample: String,
    /// Per deployment: how its traced requests added up.
    pub checks: Vec<String>,
    /// Whether every traced request of every deployment added up.
    pub all_add_up: bool,
    pub rows: Vec<TimeRow>,
    /// Where the spans are, and where else they went.
    pub file: String,
    pub method: String,
}

/// One deployment's entrypoint: its traced requests' mean latency, and each part's share.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimeRow {
    pub deployment: String,
    pub entrypoint: String,
    pub requests: u64,
    pub latency_us: String,
    pub work: String,
    pub handling: String,
    pub network: String,
    pub wire: String,
    pub driver: String,
    /// Shares in %, in the order above, for the stacked bar.
    pub shares: [f64; 5],
}

/// The parts' names, as the table's headers and the bar's legend say them.
pub const PARTS: [&str; 5] = [
    "work",
    "units' handling",
    "network model",
    "transport, kernel, queues",
    "driver",
];

/// The section, when the run traced requests.
pub fn traces(results: &RunResults, comparison_rate: Option<u32>) -> Option<TraceSection> {
    let info = results.traces.as_ref()?;
    let traced: Vec<(&ArchitectureResult, &TraceSummary)> = results
        .architectures
        .iter()
        .filter_map(|a| a.traces.as_ref().map(|t| (a, t)))
        .collect();
    let rate = table_rate(&traced, comparison_rate)?;
    let rows = traced
        .iter()
        .flat_map(|(arch, summary)| {
            summary
                .breakdown
                .iter()
                .filter(move |b| b.rate_rps == f64::from(rate))
                .map(move |b| time_row(&arch.label(), b))
        })
        .collect();
    let mut file = match &info.file_error {
        None => format!(
            "every span is in {} (OTLP JSON, one TracesData per line)",
            info.file
        ),
        Some(error) => format!("{} is incomplete: writing it failed ({error})", info.file),
    };
    if let Some(relay) = &info.relay {
        file.push_str(&format!(
            "; forwarded to {}: {} batches sent, {} failed, {} dropped",
            relay.endpoint, relay.batches_sent, relay.batches_failed, relay.batches_dropped
        ));
    }
    Some(TraceSection {
        rate,
        sample: percent(info.sample),
        checks: traced.iter().map(|(a, t)| check(&a.label(), t)).collect(),
        all_add_up: traced.iter().all(|(_, t)| adds_up(t)),
        rows,
        file,
        method: METHOD.into(),
    })
}

const METHOD: &str = "Each traced request's latency is split along its critical path, walked back from the end of the driver's span (as Jaeger's critical path is): in each span, the child that ended last is on the path, and the span's own time around it is counted by what the span was doing. Measured: the spans' start and end and their events, on this host's one wall clock (every unit and the driver run here). Work: the operations' calibrated CPU work (work.start to work.end in a server span). Units' handling: the rest of a server span (decoding, routing, the calls' fan-out and join, encoding). Network model: the delay the model held a call or a reply (zero on loopback). Transport, kernel, queues: a call's time outside both units' handlers (the transport's client and server stacks, the kernel, a request waiting for its handler). Driver: between the time a request was to leave and its sending (the load generator's send lag). Means over the traced successes at this rate; a traced request carries a traceparent and its units build spans, which the untraced do not.";

/// The comparison rate when the traces have it, else the rate with the most traced requests.
fn table_rate(
    traced: &[(&ArchitectureResult, &TraceSummary)],
    comparison: Option<u32>,
) -> Option<u32> {
    // Open-loop steps run at whole req/s.
    let rates: Vec<(u32, u64)> = traced
        .iter()
        .flat_map(|(_, t)| t.breakdown.iter())
        .map(|b| (b.rate_rps.round() as u32, b.requests))
        .collect();
    if let Some(rate) = comparison {
        if rates.iter().any(|(r, _)| *r == rate) {
            return Some(rate);
        }
    }
    rates
        .iter()
        .max_by_key(|(rate, requests)| (*requests, *rate))
        .map(|(r, _)| *r)
}

fn adds_up(t: &TraceSummary) -> bool {
    t.problems.is_empty() && t.complete == t.requests
}

/// How a deployment's traced requests added up, in a sentence.
fn check(label: &str, t: &TraceSummary) -> String {
    if adds_up(t) {
        return format!(
            "{label}: {} traced requests, each one tree with the measured hops",
            t.requests
        );
    }
    let first = t
        .problems
        .first()
        .map(|p| {
            format!(
                " (first: trace {} of {}: {})",
                p.trace_id, p.entrypoint, p.problem
            )
        })
        .unwrap_or_default();
    format!(
        "{label}: of {} traced requests, {} formed one tree and {} showed the measured hops{first}",
        t.requests, t.complete, t.hops_matched
    )
}

fn time_row(label: &str, b: &TimeBreakdown) -> TimeRow {
    let parts = [
        b.work_us,
        b.handling_us,
        b.network_us,
        b.wire_us,
        b.driver_us,
    ];
    let total = b.latency_us.max(f64::MIN_POSITIVE);
    let shares = parts.map(|p| 100.0 * p / total);
    let cell = |i: usize| format!("{:.0} % ({:.0} µs)", shares[i], parts[i]);
    TimeRow {
        deployment: label.to_string(),
        entrypoint: b.entrypoint.clone(),
        requests: b.requests,
        latency_us: format!("{:.0}", b.latency_us),
        work: cell(0),
        handling: cell(1),
        network: cell(2),
        wire: cell(3),
        driver: cell(4),
        shares,
    }
}

fn percent(share: f64) -> String {
    let p = share * 100.0;
    if p >= 10.0 || p.fract() == 0.0 {
        format!("{p:.0} %")
    } else {
        format!("{p:.1} %")
    }
}

/// One sentence for the verdict: where the largest part of the finest traced cut's time
/// goes, and whether the traces added up.
pub fn sentence(section: &TraceSection) -> Option<String> {
    let row = section
        .rows
        .iter()
        .max_by(|a, b| a.shares[3].total_cmp(&b.shares[3]))?;
    let checks = if section.all_add_up {
        "every traced request's spans formed one tree with the measured hops"
    } else {
        "some traced requests' spans did not add up (see Traces)"
    };
    Some(format!(
        "Traced ({} of requests, {checks}): at {} req/s, {}'s {} spends {:.0} % of its latency in the transport, kernel and queues between units, {:.0} % in the units' own handling and {:.0} % in work.",
        section.sample, section.rate, row.deployment, row.entrypoint, row.shares[3], row.shares[1], row.shares[0]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::{TraceProblem, TraceRunInfo};

    fn summary(rate: f64, problems: Vec<TraceProblem>) -> TraceSummary {
        TraceSummary {
            requests: 10,
            complete: 10,
            hops_matched: 10,
            problems,
            breakdown: vec![TimeBreakdown {
                entrypoint: "buy".into(),
                rate_rps: rate,
                requests: 10,
                latency_us: 1000.0,
                work_us: 100.0,
                handling_us: 200.0,
                network_us: 0.0,
                wire_us: 650.0,
                driver_us: 50.0,
            }],
            waterfalls: Vec::new(),
        }
    }

    fn results(problems: Vec<TraceProblem>) -> RunResults {
        let mut results: RunResults = serde_json::from_str(include_str!(
            "../../../../../tests/fixtures/results-tiny.json"
        ))
        .unwrap();
        results.traces = Some(TraceRunInfo {
            sample: 0.01,
            file: "traces.jsonl".into(),
            ..Default::default()
        });
        results.architectures.truncate(1);
        results.architectures[0].traces = Some(summary(200.0, problems));
        results
    }

    #[test]
    fn the_table_splits_each_latency_into_shares_that_add_up() {
        let section = traces(&results(Vec::new()), Some(200)).unwrap();
        assert_eq!(section.rate, 200);
        assert_eq!(section.sample, "1 %");
        let row = &section.rows[0];
        assert_eq!(row.wire, "65 % (650 µs)");
        assert!((row.shares.iter().sum::<f64>() - 100.0).abs() < 1e-9);
        assert!(section.all_add_up);
        let sentence = sentence(&section).unwrap();
        assert!(
            sentence.contains("65 % of its latency in the transport"),
            "{sentence}"
        );
        // Not traced at the comparison rate: the rate the traces have.
        assert_eq!(traces(&results(Vec::new()), Some(400)).unwrap().rate, 200);
    }

    #[test]
    fn a_trace_that_does_not_add_up_is_named() {
        let problem = TraceProblem {
            trace_id: "ab".into(),
            entrypoint: "buy".into(),
            problem: "its spans show 2 service and 0 state hops".into(),
        };
        let section = traces(&results(vec![problem]), Some(200)).unwrap();
        assert!(!section.all_add_up);
        assert!(
            section.checks[0].contains("first: trace ab of buy"),
            "{:?}",
            section.checks
        );
        assert!(traces(&RunResults::default(), Some(200)).is_none());
        let mut unwritten = results(Vec::new());
        unwritten.traces.as_mut().unwrap().file_error = Some("No space left on device".into());
        let file = traces(&unwritten, Some(200)).unwrap().file;
        assert!(
            file.contains("incomplete: writing it failed (No space"),
            "{file}"
        );
    }
}
