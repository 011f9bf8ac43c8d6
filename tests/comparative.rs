//! The comparative suite: tests that compare two latencies measured on this machine, so a
//! noisy neighbour can move them. They are `#[ignore]`d in the default `cargo test` (which
//! must be fast and mean a bug when red) and run as their own CI step:
//!
//! ```sh
//! cargo test --test comparative -- --ignored --test-threads 1
//! ```
//!
//! Each compares figures from the same run, repeats by design (alternating rounds) and
//! asserts on the aggregate; none retries until it passes.

mod common;

use common::*;
use grain_runtime::network::NetworkModel;
use grainbench::delays;
use grainbench::driver::new_histogram;
use grainbench::plan::{self, Architecture};
use grainbench::results::Percentiles;
use grainbench::scenario;
use grainbench::traces::TraceOptions;
use std::path::Path;
use std::time::Duration;

const ONE_WAY_US: u64 = 250;
/// Alternating rounds per comparison of the critical-path test.
const ROUNDS: u64 = 5;

fn delay_250us() -> NetworkModel {
    NetworkModel::fixed("250us", Duration::from_micros(ONE_WAY_US))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "comparative: cargo test --test comparative -- --ignored"]
async fn a_one_way_delay_adds_about_one_round_trip_to_a_single_hop() {
    let source = scenario::load(&fixture("tiny.toml")).unwrap();
    let live = deploy_monolith(&source.scenario, "hop-delay").await;
    let mut bare = new_histogram();
    let mut delayed = new_histogram();
    // Alternating rounds, so both conditions see the same machine weather; 500 req/s keeps
    // the cores from idling between requests (waking an idle vCPU costs ~100 µs here).
    for round in 0..3 {
        let mut config = open_loop(500, 300, 1_500, 10_000);
        let m = step_on(&live, &source.scenario, &config, round).await;
        assert!(m.delay_error.is_empty(), "loopback holds nothing back");
        bare.add(&m.per_entry[0].corrected).unwrap();

        config.network = delay_250us();
        let m = step_on(&live, &source.scenario, &config, round).await;
        delayed.add(&m.per_entry[0].corrected).unwrap();
        assert_eq!(m.overall.errors.total(), 0, "{:?}", m.overall.errors);
        assert_eq!(
            m.delay_error.len(),
            2 * m.engine.sent,
            "every request was held on its way out and its reply on the way back"
        );
    }
    live.shutdown().await;

    let (bare, delayed) = (Percentiles::of(&bare), Percentiles::of(&delayed));
    let increase = delayed.p50 as i64 - bare.p50 as i64;
    eprintln!(
        "single hop p50: {} µs bare, {} µs delayed",
        bare.p50, delayed.p50
    );
    let expected = 2 * ONE_WAY_US as i64;
    assert!(
        (expected * 3 / 4..=expected * 3 / 2).contains(&increase),
        "p50 rose by {increase} µs ({} → {}), expected about {expected} µs \
         (1.5× to 3× the one-way delay)",
        bare.p50,
        delayed.p50
    );
}

/// p50 of each entrypoint's requests over alternating rounds of `steps` on loopback and
/// under the 250 µs model, on one deployment of `architecture`.
async fn added_p50_per_entrypoint(
    source: &scenario::ScenarioSource,
    architecture: Architecture,
) -> Vec<(String, i64)> {
    let scenario = &source.scenario;
    let mut live = deploy(scenario, architecture.clone(), "critical-path").await;
    let entries = scenario.entrypoints.len();
    let mut bare: Vec<_> = (0..entries).map(|_| new_histogram()).collect();
    let mut delayed: Vec<_> = (0..entries).map(|_| new_histogram()).collect();
    // Alternating on one deployment, so both conditions see the same machine weather; the
    // p50 is taken over all rounds together, so one stall of this shared VM (a burst of
    // steal time) cannot move it on its own. The repetition is the design, not a retry.
    for round in 0..ROUNDS {
        for (network, into) in [
            (NetworkModel::loopback(), &mut bare),
            (delay_250us(), &mut delayed),
        ] {
            live.set_network(network.clone()).await.unwrap();
            let mut config = open_loop(400, 300, 800, 10_000);
            config.network = network;
            let m = step_on(&live, scenario, &config, round).await;
            assert_eq!(
                m.overall.errors.total(),
                0,
                "{architecture}: {:?}",
                m.overall.errors
            );
            for (histogram, entry) in into.iter_mut().zip(&m.per_entry) {
                histogram.add(&entry.corrected).unwrap();
            }
        }
    }
    let units_delays = delays::take_unit_delay_errors(&live).await.unwrap();
    assert_eq!(
        !units_delays.is_empty(),
        architecture != Architecture::Monolith,
        "{architecture}: units delay their calls to other units, and only those"
    );
    live.shutdown().await;
    scenario
        .entrypoints
        .iter()
        .zip(bare.iter().zip(&delayed))
        .map(|(entry, (bare, delayed))| {
            let p50 = |h| Percentiles::of(h).p50 as i64;
            (entry.op.clone(), p50(delayed) - p50(bare))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "comparative: cargo test --test comparative -- --ignored"]
async fn more_hops_on_the_critical_path_add_more_delay() {
    let source = scenario::load(Path::new("scenarios/checkout.toml")).unwrap();
    let mut added = Vec::new();
    for architecture in Architecture::ALL {
        added.push(added_p50_per_entrypoint(&source, architecture).await);
    }
    if let Err(failure) = check_added_delay(&source, &added) {
        panic!("{failure}");
    }
}

/// nano > micro > monolith for every entrypoint, each within 2× of what the model adds
/// over its critical path. `added[a][e]` is architecture `a`'s p50 added to entrypoint `e`.
fn check_added_delay(
    source: &scenario::ScenarioSource,
    added: &[Vec<(String, i64)>],
) -> Result<(), String> {
    for (index, entry) in source.scenario.entrypoints.iter().enumerate() {
        let (nano, micro, mono) = (added[0][index].1, added[1][index].1, added[2][index].1);
        eprintln!(
            "{}: p50 added: nano {nano} µs, micro {micro} µs, monolith {mono} µs",
            entry.op
        );
        if !(nano > micro && micro > mono && mono > 0) {
            return Err(format!(
                "{}: p50 added by the delay: nano {nano} µs, micro {micro} µs, monolith {mono} µs",
                entry.op
            ));
        }
        for (architecture, added) in Architecture::ALL.into_iter().zip(added) {
            // What the model should add: two one-way delays per round trip on the path.
            let round_trips = plan::plan(&source.scenario, &architecture)
                .unwrap()
                .critical_path_hops[&entry.op];
            let modelled = i64::from(round_trips) * 2 * ONE_WAY_US as i64;
            let measured = added[index].1;
            if !(modelled / 2..=modelled * 2).contains(&measured) {
                return Err(format!(
                    "{} {architecture}: p50 added {measured} µs, modelled {modelled} µs ({round_trips} round trips)",
                    entry.op
                ));
            }
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "comparative: cargo test --test comparative -- --ignored"]
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
#[ignore = "comparative: cargo test --test comparative -- --ignored"]
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

#[test]
#[ignore = "comparative: cargo test --test comparative -- --ignored"]
fn a_planted_slowdown_shows_where_it_is_and_nowhere_else() {
    // The same scenario twice, the second with one operation's CPU × 4, compared with
    // --baseline: the entrypoint that calls it rises beyond noise; the one that does not
    // shows no change beyond noise.
    let dir = tempfile::tempdir().unwrap();
    let base = fixture("planted.toml");
    let text = std::fs::read_to_string(&base).unwrap();
    assert!(text.contains("cpu_us = 400"));
    let slower = dir.path().join("planted.toml");
    std::fs::write(&slower, text.replace("cpu_us = 400", "cpu_us = 1600")).unwrap();
    let run = |scenario: &Path, out: &str, extra: &[&str]| {
        let status = std::process::Command::new(grainbench_binary())
            .args([
                "run",
                "--arch",
                "nano",
                "--repeat",
                "6",
                "--cold-starts",
                "1",
            ])
            .args(["--no-redeploy", "--out"])
            .arg(dir.path().join(out))
            .args(extra)
            .arg(scenario)
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        status.code()
    };
    assert_eq!(run(&base, "before", &[]), Some(0));
    let baseline = dir.path().join("before/results.json");
    let baseline_arg = baseline.to_str().unwrap();
    // A 10 % regression gate breaks (exit code 3) on the planted slowdown.
    assert_eq!(
        run(
            &slower,
            "after",
            &["--baseline", baseline_arg, "--fail-if", "regression > 10%"]
        ),
        Some(3)
    );
    let before = grainbench::results::RunResults::read(&baseline).unwrap();
    let after =
        grainbench::results::RunResults::read(&dir.path().join("after/results.json")).unwrap();
    let model = grainbench::report::model::build(&after, Some(&before));
    let changes = model.baseline.expect("compared").changes;
    let change = |figure: &str| {
        changes
            .iter()
            .find(|c| c.figure == figure)
            .unwrap_or_else(|| {
                panic!(
                    "no {figure}: {:?}",
                    changes.iter().map(|c| &c.figure).collect::<Vec<_>>()
                )
            })
    };
    let report = change("report p50 at 100 req/s");
    eprintln!("report p50: {}", report.change);
    assert!(
        report.significant && report.estimate.unwrap().point > 50.0,
        "{}",
        report.change
    );
    let ping = change("ping p50 at 100 req/s");
    eprintln!("ping p50: {}", ping.change);
    // Where the slowed operation is not called, the change is within noise, or at most a
    // machine-wide shift far smaller than the planted one: a busier machine wakes its
    // idle cores sooner, which moved this p50 by 7–28 % in either direction in trials on
    // this VM (beyond noise in one of five at 60 req/s), and by -25 % against a planted
    // +93 % on another (2026-12-03, at 100 req/s). The runs being compared are
    // sequential, so the rounds cannot pair them away.
    let planted = report.estimate.unwrap().point;
    let elsewhere = ping.estimate.unwrap().point.abs();
    assert!(
        !ping.significant || elsewhere < planted / 3.0,
        "ping p50 {} against the planted report p50 {}",
        ping.change,
        report.change
    );
}

/// `--trace-overhead` deploys each cut untraced and traced, back to back, and the report
/// compares each traced cut with the same cut untraced. The comparison needs rounds in
/// which both steps are valid, which a machine loaded by the other tests running beside it
/// did not give (2026-12-03: all but two of 16 steps invalid, the generator's send lag p99
/// 1.5-17 ms), so it runs here, alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "comparative: cargo test --test comparative -- --ignored"]
async fn trace_overhead_deploys_each_cut_untraced_and_traced_and_compares_them() {
    let source = scenario::load(&fixture("tiny.toml")).unwrap();
    let out = tempfile::tempdir().unwrap();
    let mut options = short_run_options("traces-overhead", out.path());
    options.architectures = vec![Architecture::Nano, Architecture::Monolith];
    // Each comparison needs one round in which both its deployments' steps are valid. A
    // step of 30 requests is invalid after a single 1 ms stall of the generator, common
    // while the other tests load the machine: with 2 rounds, a pair sometimes had none
    // (the section was missing); 4 rounds leave room by design. It still failed so on a
    // noisier machine (2026-12-03: monolith+traced valid in none of 4 rounds), so each step
    // is 200 requests, whose p99 send lag one stall does not decide. At 200 req/s it failed
    // so again (the hypervisor took 10 % of this VM's time in stalls of several ms, each
    // delaying every request due within it): at 100 req/s a stall shorter than 10 ms
    // delays one request at most, and a step's p99 allows two.
    options.repeat = 4;
    options.load = grainbench::run::LoadMode::Rates(vec![100]);
    options.duration = Some(Duration::from_secs(2));
    options.trace = Some(TraceOptions {
        sample: 0.5,
        otlp: None,
        overhead: true,
    });
    let run_id = options.run_id.clone();
    let results = run_ok(&source, &options).await;
    let labels: Vec<String> = results.architectures.iter().map(|a| a.label()).collect();
    assert_eq!(
        labels,
        ["nano", "nano+traced", "monolith", "monolith+traced"]
    );
    for arch in &results.architectures {
        let traced = arch.label().ends_with("+traced");
        assert_eq!(arch.traces.is_some(), traced, "{}", arch.label());
    }
    assert_same_business_and_hops(&results);
    let model = grainbench::report::model::build(&results, None);
    let invalid: Vec<String> = (results.architectures.iter())
        .flat_map(|a| a.steps.iter().map(move |s| (a.label(), s)))
        .filter(|(_, step)| !step.valid)
        .map(|(label, step)| format!("{label} round {}: {:?}", step.round, step.invalid_reason))
        .collect();
    let section =
        (model.tracing).unwrap_or_else(|| panic!("no section on what tracing costs; {invalid:?}"));
    let compared: Vec<&str> = section.rows.iter().map(|r| r.arch.as_str()).collect();
    assert_eq!(compared, ["nano+traced", "monolith+traced"]);
    // The verdict compares the cuts untraced; tracing is a mechanism set against them.
    assert!(model.verdict.sentences[0].contains("of the cuts over HTTP/1.1 + JSON,"));
    assert!(wait_for_no_processes(&run_id, Duration::from_secs(10)).is_empty());
}
