//! The network model on real units over loopback: a one-way delay adds about one round
//! trip to a single-hop request, every delayed message is accounted for, and the added
//! latency grows with the hops on the critical path (nano > micro > monolith), within a
//! factor of two of what the model predicts for that path.

mod common;

use common::*;
use grain_runtime::network::NetworkModel;
use grainbench::driver::new_histogram;
use grainbench::plan::Architecture;
use grainbench::report::{Percentiles, RunResults};
use grainbench::run::{self, LoadMode, RunOptions};
use grainbench::scenario;
use std::path::Path;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const ONE_WAY_US: u64 = 250;

/// These tests compare latencies, so they take turns rather than load the cores together.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn delay_250us() -> NetworkModel {
    NetworkModel::fixed("250us", Duration::from_micros(ONE_WAY_US))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_way_delay_adds_about_one_round_trip_to_a_single_hop() {
    let _turn = ONE_AT_A_TIME.lock().await;
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

fn checkout_options(name: &str, out: &Path, network: Option<NetworkModel>) -> RunOptions {
    let mut options = test_run_options(name, out);
    options.equivalence_requests = 5;
    options.load = LoadMode::Rates(vec![100]);
    options.duration = Some(Duration::from_secs(2));
    options.warmup = Some(Duration::from_millis(500));
    options.network = network;
    options
}

async fn run_checkout(name: &str, network: Option<NetworkModel>) -> RunResults {
    let source = scenario::load(Path::new("scenarios/checkout.toml")).unwrap();
    let out = tempfile::tempdir().unwrap();
    let options = checkout_options(name, out.path(), network);
    let outcome = run::run(&source, &options, &CancellationToken::new()).await;
    assert!(
        outcome.error.is_none(),
        "{name}: {:?}",
        outcome.error.map(|e| e.to_string())
    );
    assert_eq!(
        wait_for_no_processes(&options.run_id, Duration::from_secs(5)),
        Vec::<u32>::new()
    );
    outcome.results
}

fn p50_of(results: &RunResults, architecture: Architecture, entry: &str) -> i64 {
    let arch = results
        .architectures
        .iter()
        .find(|a| a.architecture == architecture)
        .unwrap();
    let entry = arch.steps[0]
        .entrypoints
        .iter()
        .find(|e| e.entrypoint == entry)
        .unwrap();
    entry.latency_us.p50 as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_hops_on_the_critical_path_add_more_delay() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let bare = run_checkout("net-bare", None).await;
    let delayed = run_checkout("net-250us", Some(delay_250us())).await;

    assert_eq!(bare.network.model.name, "loopback");
    assert_eq!(delayed.network.model.name, "250us");
    let hop = delayed
        .network
        .hop_calibration
        .as_ref()
        .expect("hop measured");
    assert!(hop.modelled_us.is_some() && hop.delay_error.is_some());
    assert_eq!(hop.expected_added_us, 500.0);

    let scenario = scenario::load(Path::new("scenarios/checkout.toml")).unwrap();
    for entry in &scenario.scenario.entrypoints {
        let added = |arch| p50_of(&delayed, arch, &entry.op) - p50_of(&bare, arch, &entry.op);
        let (nano, micro, mono) = (
            added(Architecture::Nano),
            added(Architecture::Micro),
            added(Architecture::Monolith),
        );
        eprintln!(
            "{}: p50 added: nano {nano} µs, micro {micro} µs, monolith {mono} µs",
            entry.op
        );
        assert!(
            nano > micro && micro > mono && mono > 0,
            "{}: p50 added by the delay: nano {nano} µs, micro {micro} µs, monolith {mono} µs",
            entry.op
        );
        for arch in Architecture::ALL {
            // What the model should add: two one-way delays per round trip on the
            // critical path.
            let round_trips = delayed
                .architectures
                .iter()
                .find(|a| a.architecture == arch)
                .unwrap()
                .critical_path_hops[&entry.op];
            let modelled = i64::from(round_trips) * 2 * ONE_WAY_US as i64;
            let measured = added(arch);
            assert!(
                (modelled / 2..=modelled * 2).contains(&measured),
                "{} {arch}: p50 added {measured} µs, modelled {modelled} µs ({round_trips} round trips)",
                entry.op
            );
        }
    }
    for arch in &delayed.architectures {
        let injected = arch.steps[0]
            .injected_delay_error
            .as_ref()
            .expect("delays recorded");
        assert!(injected.driver.as_ref().is_some_and(|d| d.count > 0));
        let between_units = arch.architecture != Architecture::Monolith;
        assert_eq!(
            injected.units.as_ref().is_some_and(|u| u.count > 0),
            between_units,
            "{}: {:?}",
            arch.architecture,
            injected.units_error
        );
    }
}
