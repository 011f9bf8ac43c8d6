//! The load driver against real units on loopback: coordinated-omission correction shows a
//! stall that the uncorrected view hides, a step whose rate cannot be reached is marked
//! invalid with a reason, and histograms survive the trip through results.json.

mod common;

use common::*;
use grainbench::results::{decode_histogram, Percentiles, StepResult};
use grainbench::scenario;
use std::time::Duration;

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
async fn payloads_above_two_mib_cross_every_hop_in_every_architecture() {
    // Before the units declared their body limit, axum's 2 MiB default answered 413 on
    // the hops between units: nano and micro failed where the monolith succeeded.
    let source = scenario::load(&fixture("large-payloads.toml")).unwrap();
    for architecture in grainbench::plan::Architecture::ALL {
        let live = deploy(&source.scenario, architecture.clone(), "large-payloads").await;
        let mut config = open_loop(5, 0, 800, 100);
        config.timeout = Duration::from_secs(10);
        let m = step_on(&live, &source.scenario, &config, 1).await;
        live.shutdown().await;
        assert_eq!(
            m.overall.errors.total(),
            0,
            "{architecture}: {:?}",
            m.overall.errors
        );
        assert!(m.overall.ok >= 3, "{architecture}: {} ok", m.overall.ok);
    }
}

fn closed_loop(
    connections: usize,
    duration_ms: u64,
    timeout_ms: u64,
) -> grainbench::driver::StepConfig {
    let mut config = open_loop(1, 0, duration_ms, 10_000);
    config.schedule = grainbench::driver::engine::Schedule::ClosedLoop { connections };
    config.timeout = Duration::from_millis(timeout_ms);
    config
}

fn step_result(m: &grainbench::driver::StepMeasurement, op: &str) -> StepResult {
    StepResult::from_measurement(m, &[op.to_string()], &Default::default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_loop_whose_every_request_times_out_keeps_sending_and_is_invalid() {
    // Each request burns 20 ms of CPU and times out after 5 ms. Before failed requests
    // gave their slot back, both slots were gone after the first two timeouts and the
    // step sent nothing more, reporting the silence as the architecture's throughput.
    let source = scenario::load(&fixture("slow.toml")).unwrap();
    let live = deploy_monolith(&source.scenario, "closed-timeouts").await;
    let m = step_on(&live, &source.scenario, &closed_loop(2, 1_500, 5), 1).await;
    live.shutdown().await;
    assert_eq!(m.overall.ok, 0);
    assert_eq!(m.overall.errors.timeout, m.overall.errors.total());
    assert!(
        m.engine.sent >= 20,
        "sending went on after the first timeouts: {} sent",
        m.engine.sent
    );
    let last_second = m.timeline.last().expect("a timeline");
    assert!(
        last_second.errors > 0,
        "requests were still made in the last second"
    );
    let step = step_result(&m, "crunch");
    assert!(!step.valid);
    let reason = step.invalid_reason.unwrap();
    assert!(
        reason.contains("closed loop with") && reason.contains("timeout"),
        "{reason}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_loop_goes_on_after_its_entry_unit_dies_and_is_invalid() {
    let source = scenario::load(&fixture("tiny.toml")).unwrap();
    let live = deploy_monolith(&source.scenario, "closed-kill").await;
    let pid = live.units[0].pid as i32;
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(600));
        // SAFETY: signals a child process of this test, by pid.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    });
    let m = step_on(&live, &source.scenario, &closed_loop(4, 2_000, 1_000), 1).await;
    killer.join().unwrap();
    live.shutdown().await;
    assert!(m.overall.ok > 0, "requests succeeded before the kill");
    assert!(m.overall.errors.total() > 4, "{:?}", m.overall.errors);
    let last_second = m.timeline.last().expect("a timeline");
    assert!(
        last_second.errors > 0,
        "requests were still made a second after the kill: {:?}",
        m.timeline
            .iter()
            .map(|s| (s.ok, s.errors))
            .collect::<Vec<_>>()
    );
    let step = step_result(&m, "buy");
    assert!(!step.valid, "a closed loop with failures is invalid");
}
