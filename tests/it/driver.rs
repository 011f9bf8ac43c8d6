//! The load driver against real units on loopback: coordinated-omission correction shows a
//! stall that the uncorrected view hides, a step whose rate cannot be reached is marked
//! invalid with a reason, and histograms survive the trip through results.json.

use crate::common::*;
use grainbench::driver::requests::RequestGen;
use grainbench::results::{decode_histogram, Percentiles, StepResult};
use grainbench::scenario;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_the_units_cannot_keep_up_with_is_invalid() {
    let source = scenario::load(&fixture("slow.toml")).unwrap();
    let live = deploy_monolith(&source.scenario, "unreachable-rate").await;
    let mut config = open_loop(400, 0, 1_000, 2);
    config.timeout = Duration::from_secs(1);
    let m = step_on(&live, &source.scenario, &config, 1).await;
    live.shutdown().await;
    let step = grainbench::driver::summarize::step_result(
        &m,
        &["crunch".to_string()],
        &Default::default(),
    );
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
    let step = grainbench::driver::summarize::step_result(&m, &names, &Default::default());

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
    grainbench::driver::summarize::step_result(m, &[op.to_string()], &Default::default())
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

/// One step of `config` with every entrypoint sent to the server at `addr`.
async fn step_against(
    addr: std::net::SocketAddr,
    scenario: &grainbench::scenario::Scenario,
    config: &grainbench::driver::StepConfig,
) -> grainbench::driver::StepMeasurement {
    let targets: Vec<_> = scenario
        .entrypoints
        .iter()
        .map(|e| grainbench::driver::Target::new(&e.op, &addr.to_string(), 8).unwrap())
        .collect();
    grainbench::driver::run_step(
        &targets,
        RequestGen::new(scenario, 1),
        config,
        None,
        &CancellationToken::new(),
    )
    .await
    .unwrap()
}

/// A server that accepts every connection at once and answers each request after `delay`:
/// replies slow, accept queue drained.
async fn slow_server(delay: Duration) -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = grain_runtime::host::bind_loopback().unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    // One request: headers, then Content-Length bytes of body.
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                        match socket.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                    let length: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    while buf.len() < end + 4 + length {
                        match socket.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    buf.drain(..end + 4 + length);
                    tokio::time::sleep(delay).await;
                    let reply = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
                    if socket.write_all(reply).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_replies_at_a_rate_their_connections_cannot_carry_never_open_a_burst_of_connections() {
    use grainbench::driver::engine::connect::{CONNECTS_PER_SECOND, CONNECT_BURST};
    use grainbench::driver::netstat::TcpCounters;
    let addr = slow_server(Duration::from_millis(300)).await;
    let source = scenario::load(&fixture("tiny.toml")).unwrap();
    let scenario = &source.scenario;
    // Every entrypoint goes to the slow server.
    // 20 000 req/s for 0.4 s against 300 ms replies: 8 000 requests, 6 000 of them due
    // before the first connection is free again; unbounded, each would open one.
    let config = open_loop(20_000, 0, 400, 10_000);
    let before = TcpCounters::read();
    let started = std::time::Instant::now();
    let m = step_against(addr, scenario, &config).await;
    let elapsed = started.elapsed().as_secs_f64();
    let overflows = TcpCounters::read()
        .zip(before)
        .map(|(after, before)| after.since(before).listen_overflows);
    let bound = CONNECT_BURST + CONNECTS_PER_SECOND * elapsed;
    assert!(
        (m.engine.connections_opened as f64) <= bound,
        "{} connections in {elapsed:.2} s (bound {bound:.0})",
        m.engine.connections_opened
    );
    assert!(m.engine.connection_waits > 0, "the bound engaged");
    assert_eq!(m.engine.connect_stalls, 0, "no handshake stalled");
    assert_eq!(overflows, Some(0), "no accept queue overflowed");
    let lag = grainbench::results::Percentiles::of(&m.send_lag);
    assert!(
        lag.max < 1_000_000,
        "no one-second stall: send lag max {} µs",
        lag.max
    );
    assert_eq!(m.overall.ok, 8_000, "every request answered");
}

/// A handshake that waits for TCP's SYN retransmission is the load generator's failure:
/// its request is a generator error and the step is invalid, saying why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_stalls_in_its_handshake_is_a_generator_error() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    // Accept queue of 1, drained once every 200 ms: SYNs beyond it are dropped and
    // resent after TCP's 1 s initial timeout.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(1).unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                // Each request fits one read here (tiny bodies); answer it after 300 ms.
                while let Ok(n) = socket.read(&mut buf).await {
                    if n == 0 {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    let reply = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
                    if socket.write_all(reply).await.is_err() {
                        return;
                    }
                }
            });
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    let source = scenario::load(&fixture("tiny.toml")).unwrap();
    let scenario = &source.scenario;
    // 100 req/s of 300 ms replies wants ~30 connections in the first 300 ms.
    let config = open_loop(100, 0, 500, 10_000);
    let m = step_against(addr, scenario, &config).await;
    assert!(
        m.engine.connect_stalls > 0,
        "some handshakes waited for a resent SYN"
    );
    assert!(m.overall.errors.generator >= m.engine.connect_stalls);
    let result = step_result(&m, "buy");
    let reason = result.invalid_reason.unwrap_or_default();
    assert!(reason.contains("took over 100 ms to open"), "{reason}");
    assert_eq!(result.generator.connect_stalls, m.engine.connect_stalls);
}

/// Three load threads send the whole schedule, each request once, and their figures merge
/// into one step.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_on_several_load_threads_sends_the_whole_schedule_once() {
    let source = scenario::load(&fixture("tiny.toml")).unwrap();
    let live = deploy_monolith(&source.scenario, "threads").await;
    let mut config = open_loop(300, 0, 1_000, 10_000);
    config.threads = 3;
    let m = step_on(&live, &source.scenario, &config, 1).await;
    live.shutdown().await;
    assert_eq!(m.threads, 3);
    assert_eq!(m.engine.sent, 300, "every due time once");
    assert_eq!(m.overall.ok + m.overall.errors.total(), 300);
    assert_eq!(m.overall.corrected.len(), m.overall.ok);
    let per_entry: u64 = m.per_entry.iter().map(|e| e.ok).sum();
    assert_eq!(per_entry, m.overall.ok);
    assert_eq!(
        m.timeline.iter().map(|s| s.ok + s.errors).sum::<u64>(),
        300,
        "the per-second timeline holds every thread's requests"
    );
    assert!(
        m.engine.connections_opened >= 3,
        "each thread has its own connections"
    );
}

/// N requests at rate R for D seconds means R × D in the measured window, exactly: the
/// request due at the end of the warm-up belongs to the window (with a truncated interval
/// it fell just before it, and every 300 req/s step counted 599 of 600).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_300_per_second_step_of_2_s_schedules_exactly_600_requests_in_its_window() {
    let source = scenario::load(&fixture("tiny.toml")).unwrap();
    let live = deploy_monolith(&source.scenario, "exact").await;
    let config = open_loop(300, 1_000, 2_000, 10_000);
    let m = step_on(&live, &source.scenario, &config, 1).await;
    live.shutdown().await;
    assert_eq!(m.engine.sent, 900, "warm-up and window together");
    assert_eq!(
        m.overall.ok + m.overall.errors.total(),
        600,
        "the window holds rate × duration"
    );
}
