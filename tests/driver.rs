//! The load driver against real units on loopback: coordinated-omission correction shows a
//! stall that the uncorrected view hides, a step whose rate cannot be reached is marked
//! invalid with a reason, and histograms survive the trip through results.json.

mod common;

use common::*;
use grainbench::results::{decode_histogram, Percentiles, StepResult};
use grainbench::scenario;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stall_shows_in_corrected_latency_but_not_in_uncorrected() {
    let source = scenario::load(&fixture("tiny.toml")).unwrap();
    let live = deploy_monolith(&source.scenario, "stall").await;
    let pid = live.units[0].pid as i32;
    // One connection: requests scheduled during the stall wait to be sent, as with a
    // connection-bound generator; only the corrected view charges them the wait.
    let config = open_loop(300, 200, 4_000, 1);
    let stall = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1_700));
        unsafe { libc::kill(pid, libc::SIGSTOP) };
        std::thread::sleep(Duration::from_millis(500));
        unsafe { libc::kill(pid, libc::SIGCONT) };
    });
    let m = step_on(&live, &source.scenario, &config, 1).await;
    stall.join().unwrap();
    live.shutdown().await;

    let corrected = Percentiles::of(&m.overall.corrected);
    let uncorrected = Percentiles::of(&m.overall.uncorrected);
    assert!(m.overall.ok > 1_000, "{} requests", m.overall.ok);
    assert!(
        corrected.p999 > 5 * uncorrected.p999,
        "corrected p99.9 {} µs should dwarf uncorrected p99.9 {} µs",
        corrected.p999,
        uncorrected.p999
    );
    assert!(corrected.max >= uncorrected.max);
    assert!(
        corrected.p999 * 2 >= uncorrected.max,
        "the corrected tail carries the stall: {corrected:?} vs {uncorrected:?}"
    );
    assert!(
        m.engine.in_flight_cap_hits > 0,
        "requests waited for the one slot during the stall"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_the_units_cannot_keep_up_with_is_invalid() {
    let source = scenario::load(&fixture("slow.toml")).unwrap();
    let live = deploy_monolith(&source.scenario, "unreachable-rate").await;
    let mut config = open_loop(400, 0, 1_000, 2);
    config.timeout = Duration::from_secs(1);
    let m = step_on(&live, &source.scenario, &config, 1).await;
    live.shutdown().await;
    let step = StepResult::from_measurement(&m, &["crunch".to_string()], &Default::default());
    assert!(!step.valid);
    let reason = step.invalid_reason.unwrap();
    assert!(
        reason.contains("achieved") && reason.contains("of 400 req/s"),
        "{reason}"
    );
    assert!(step.achieved_rps < 400.0 * 0.95);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn histograms_round_trip_through_results_json() {
    let source = scenario::load(&fixture("tiny.toml")).unwrap();
    let live = deploy_monolith(&source.scenario, "roundtrip").await;
    let config = open_loop(200, 100, 1_000, 100);
    let names: Vec<String> = source
        .scenario
        .entrypoints
        .iter()
        .map(|e| e.op.clone())
        .collect();
    let m = step_on(&live, &source.scenario, &config, 3).await;
    live.shutdown().await;
    let step = StepResult::from_measurement(&m, &names, &Default::default());

    let json = serde_json::to_string(&step).unwrap();
    let parsed: StepResult = serde_json::from_str(&json).unwrap();
    assert_eq!(parsed, step);
    let corrected = decode_histogram(&parsed.histograms.corrected).unwrap();
    let uncorrected = decode_histogram(&parsed.histograms.uncorrected).unwrap();
    assert_eq!(corrected.len(), m.overall.corrected.len());
    assert_eq!(Percentiles::of(&corrected), step.latency_us);
    assert_eq!(Percentiles::of(&uncorrected), step.latency_uncorrected_us);
    for (entry, measured) in parsed.entrypoints.iter().zip(&m.per_entry) {
        let h = decode_histogram(&entry.histograms.corrected).unwrap();
        assert_eq!(h.len(), measured.ok);
        assert_eq!(
            h.value_at_quantile(0.99),
            measured.corrected.value_at_quantile(0.99)
        );
    }
    let lag = decode_histogram(&parsed.generator.send_lag_histogram).unwrap();
    assert_eq!(lag.len(), m.send_lag.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_landing_while_the_engine_waits_out_a_send_are_read_at_once() {
    let source = scenario::load(&fixture("tiny.toml")).unwrap();
    let live = deploy_monolith(&source.scenario, "busy-poll").await;
    let normal = open_loop(100, 200, 1_000, 10_000);
    // A spin longer than the send interval: the engine is always in its last stretch
    // before the next send, so every reply lands while it waits for a send time.
    let mut always_waiting = normal.clone();
    always_waiting.spin = Duration::from_millis(20);
    let base = step_on(&live, &source.scenario, &normal, 1).await;
    let waiting = step_on(&live, &source.scenario, &always_waiting, 2).await;
    live.shutdown().await;
    let (base, waiting) = (
        Percentiles::of(&base.overall.corrected),
        Percentiles::of(&waiting.overall.corrected),
    );
    // Read only after the next send, replies would wait ~5 ms (half the 10 ms interval).
    assert!(
        waiting.p50 < 3 * base.p50 + 1_000,
        "p50 {} µs while always waiting for a send vs {} µs normally",
        waiting.p50,
        base.p50
    );
}
