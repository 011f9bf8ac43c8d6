//! How a step's measurement becomes its entry in results.json, and the validity rules: a
//! step whose generator fell behind its schedule is never reported as valid.

use super::engine::Schedule;
use super::{EntryMeasurement, ErrorCounts, Second, StepMeasurement};
use crate::results::{
    encode_histogram, DelayErrorSummary, EntryResult, GeneratorHealth, HistogramPair, HopSummary,
    InjectedDelayError, Percentiles, SecondResult, StepMode, StepResult,
};
use grain_runtime::wire::Hops;
use std::collections::BTreeMap;

/// A step is invalid when fewer than this share of the target rate was achieved.
pub const MIN_ACHIEVED_SHARE: f64 = 0.95;
/// A step is invalid when the generator's send lag p99 exceeds this (µs).
pub const MAX_SEND_LAG_P99_US: u64 = 1_000;

/// A step's measurement as its entry in results.json.
pub fn step_result(
    m: &StepMeasurement,
    entrypoints: &[String],
    static_hops: &BTreeMap<String, Hops>,
) -> StepResult {
    let entries = entrypoints
        .iter()
        .zip(&m.per_entry)
        .map(|(op, e)| entry_result(op, e, static_hops.get(op).copied().unwrap_or_default()))
        .collect();
    let send_lag = Percentiles::of(&m.send_lag);
    let (mode, target_rps, connections) = match m.schedule {
        Schedule::OpenLoop { rate } => (StepMode::Open, rate, None),
        Schedule::ClosedLoop { connections } => (StepMode::Closed, 0, Some(connections)),
    };
    let mut invalid_reason =
        invalid_reason(m.schedule, m.achieved_rps, &send_lag, &m.overall.errors);
    if let Some(stalls) = connect_stalls(m) {
        invalid_reason = Some(invalid_reason.map_or(stalls.clone(), |r| format!("{stalls}; {r}")));
    }
    let cpu_ms = m.engine.cpu.as_secs_f64() * 1e3;
    StepResult {
        round: 0,
        noise: None,
        mode,
        target_rps,
        connections,
        achieved_rps: (m.achieved_rps * 10.0).round() / 10.0,
        warmup_s: m.warmup.as_secs_f64(),
        duration_s: m.duration.as_secs_f64(),
        scheduled: m.scheduled,
        ok: m.overall.ok,
        unit_retries: m.engine.unit_retries,
        error_total: m.overall.errors.total(),
        errors: m.overall.errors.clone(),
        latency_us: Percentiles::of(&m.overall.corrected),
        latency_uncorrected_us: Percentiles::of(&m.overall.uncorrected),
        histograms: histogram_pair(&m.overall),
        generator: GeneratorHealth {
            send_lag_us: send_lag,
            send_lag_histogram: encode_histogram(&m.send_lag),
            driver_cpu_ms: (cpu_ms * 100.0).round() / 100.0,
            driver_cpu_us_per_request: if m.engine.sent == 0 {
                0.0
            } else {
                ((cpu_ms * 1e3 / m.engine.sent as f64) * 100.0).round() / 100.0
            },
            requests_sent: m.engine.sent,
            in_flight_cap_hits: m.engine.in_flight_cap_hits,
            max_in_flight: m.engine.max_in_flight,
            connections_opened: m.engine.connections_opened,
            scheduling: m.scheduling.name().to_string(),
            spin_share: if m.engine.cpu.is_zero() {
                0.0
            } else {
                let share = m.engine.spinning.as_secs_f64() / m.engine.cpu.as_secs_f64();
                (share.min(1.0) * 1000.0).round() / 1000.0
            },
            spin_window_us: (m.engine.spin_window.as_secs_f64() * 1e7).round() / 10.0,
            connection_waits: m.engine.connection_waits,
            connect_stalls: m.engine.connect_stalls,
            listen_overflows: m.kernel.map(|k| k.listen_overflows),
            syn_retransmits: m.kernel.map(|k| k.syn_retransmits),
            threads: m.threads,
            driver_tls_ms: (m.engine.tls.as_secs_f64() * 1e5).round() / 100.0,
            driver_handshakes: m.engine.handshakes,
            connections_opened_machine: m.kernel.map(|k| k.active_opens),
        },
        hops: HopSummary::of(&m.overall.hops),
        entrypoints: entries,
        timeline: m
            .timeline
            .iter()
            .enumerate()
            .map(|(i, s)| second_result(i, s))
            .collect(),
        units: None,
        units_cpu_us_per_request: None,
        units_system_cpu_us_per_request: None,
        units_codec_cpu_us_per_request: None,
        sidecars: None,
        sidecars_cpu_us_per_request: None,
        injected_delay_error: DelayErrorSummary::of(&m.delay_error).map(|driver| {
            InjectedDelayError {
                driver: Some(driver),
                ..InjectedDelayError::default()
            }
        }),
        valid: invalid_reason.is_none(),
        invalid_reason,
    }
}

fn entry_result(op: &str, e: &EntryMeasurement, static_hops: Hops) -> EntryResult {
    let hops = HopSummary::of(&e.hops);
    EntryResult {
        entrypoint: op.to_string(),
        ok: e.ok,
        errors: e.errors.clone(),
        latency_us: Percentiles::of(&e.corrected),
        latency_uncorrected_us: Percentiles::of(&e.uncorrected),
        histograms: histogram_pair(e),
        hops_match_static: hops.all_equal(static_hops),
        hops,
        static_hops,
    }
}

fn histogram_pair(m: &EntryMeasurement) -> HistogramPair {
    HistogramPair {
        corrected: encode_histogram(&m.corrected),
        uncorrected: encode_histogram(&m.uncorrected),
    }
}

fn second_result(second: usize, s: &Second) -> SecondResult {
    let p = Percentiles::of(&s.corrected);
    SecondResult {
        second,
        warmup: s.warmup,
        ok: s.ok,
        errors: s.errors,
        p50_us: p.p50,
        p99_us: p.p99,
        max_us: p.max,
    }
}

/// A step whose connections stalled in their handshake measured the generator's lost SYNs,
/// not the architecture: say so, with the machine's counters.
fn connect_stalls(m: &StepMeasurement) -> Option<String> {
    if m.engine.connect_stalls == 0 {
        return None;
    }
    let kernel = m.kernel.map_or(String::new(), |k| {
        format!(
            "; during the step the machine's listen overflows rose by {} and SYN retransmissions by {}",
            k.listen_overflows, k.syn_retransmits
        )
    });
    Some(format!(
        "{} of the load generator's connections took over {} ms to open (a SYN was lost and resent after TCP's 1 s timeout; their requests count as generator errors){kernel}",
        m.engine.connect_stalls,
        super::engine::CONNECT_STALL.as_millis()
    ))
}

/// Why a step is not a valid measurement of the architecture, if it is not: an open loop
/// that missed its rate or whose generator fell behind its schedule; any step in which the
/// generator itself could not make requests; a closed loop with failed requests (its
/// throughput would be the failures', not the architecture's).
fn invalid_reason(
    schedule: Schedule,
    achieved_rps: f64,
    send_lag: &Percentiles,
    errors: &ErrorCounts,
) -> Option<String> {
    let mut reasons = Vec::new();
    if let Schedule::OpenLoop { rate } = schedule {
        if achieved_rps.is_nan() || achieved_rps < f64::from(rate) * MIN_ACHIEVED_SHARE {
            reasons.push(format!(
                "achieved {achieved_rps:.1} of {rate} req/s (below {:.0}%)",
                MIN_ACHIEVED_SHARE * 100.0
            ));
        }
        if send_lag.p99 > MAX_SEND_LAG_P99_US {
            reasons.push(format!(
                "load generator fell behind its schedule: send lag p99 {} µs > {MAX_SEND_LAG_P99_US} µs",
                send_lag.p99
            ));
        }
    }
    if errors.generator > 0 {
        reasons.push(format!(
            "the load generator could not make {} requests itself (out of file descriptors or \
             ports, or its backlog of requests waiting for an in-flight slot was full)",
            errors.generator
        ));
    }
    if matches!(schedule, Schedule::ClosedLoop { .. }) && errors.total() > 0 {
        reasons.push(format!(
            "closed loop with {} failed requests (connect {}, timeout {}, HTTP status {}, other {}): \
             its throughput is not the architecture's",
            errors.total(),
            errors.connect,
            errors.timeout,
            errors.status.values().sum::<u64>(),
            errors.other
        ));
    }
    (!reasons.is_empty()).then(|| reasons.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_that_missed_its_rate_is_invalid() {
        let lag = Percentiles {
            p99: 10,
            ..Default::default()
        };
        let open = Schedule::OpenLoop { rate: 100 };
        let none = ErrorCounts::default();
        assert!(invalid_reason(open, 99.0, &lag, &none).is_none());
        let reason = invalid_reason(open, 50.0, &lag, &none).unwrap();
        assert!(reason.contains("achieved 50.0 of 100"), "{reason}");
        assert!(invalid_reason(open, f64::NAN, &lag, &none).is_some());
        let late = Percentiles {
            p99: 5_000,
            ..Default::default()
        };
        assert!(invalid_reason(open, 100.0, &late, &none)
            .unwrap()
            .contains("send lag"));
    }

    #[test]
    fn a_closed_loop_with_failures_or_a_starved_generator_is_invalid() {
        let closed = Schedule::ClosedLoop { connections: 4 };
        let lag = Percentiles::default();
        assert!(invalid_reason(closed, 10.0, &lag, &ErrorCounts::default()).is_none());
        let timeouts = ErrorCounts {
            timeout: 3,
            ..ErrorCounts::default()
        };
        let reason = invalid_reason(closed, 10.0, &lag, &timeouts).unwrap();
        assert!(
            reason.contains("closed loop with 3 failed requests (connect 0, timeout 3"),
            "{reason}"
        );
        let starved = ErrorCounts {
            generator: 2,
            ..ErrorCounts::default()
        };
        let open = Schedule::OpenLoop { rate: 10 };
        let reason = invalid_reason(open, 10.0, &lag, &starved).unwrap();
        assert!(
            reason.contains("could not make 2 requests itself"),
            "{reason}"
        );
    }
}
