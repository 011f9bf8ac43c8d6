//! The network model on real units over loopback, checked by counts rather than timings
//! (timing comparisons live in the comparative suite, `tests/comparative.rs`): every
//! delayed message is accounted for, only calls between units are delayed inside a
//! deployment, and a run under a model records the model, the bare hop and every
//! injected-delay error in results.json and on the page.

use crate::common::*;
use grain_runtime::network::NetworkModel;
use grainbench::delays;
use grainbench::plan::Architecture;
use grainbench::results::RunResults;
use grainbench::run::LoadMode;
use grainbench::scenario;
use std::time::Duration;

fn delay_250us() -> NetworkModel {
    NetworkModel::fixed("250us", Duration::from_micros(250))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_delayed_message_is_accounted_for_and_only_hops_are_delayed() {
    let source = scenario::load(&fixture("tiny.toml")).unwrap();
    for architecture in Architecture::ALL {
        let mut live = deploy(&source.scenario, architecture.clone(), "delay-counts").await;
        let loopback = step_on(&live, &source.scenario, &open_loop(200, 0, 500, 10_000), 1).await;
        assert!(
            loopback.delay_error.is_empty(),
            "loopback holds nothing back"
        );

        live.set_network(delay_250us()).await.unwrap();
        delays::take_unit_delay_errors(&live).await.unwrap();
        let mut config = open_loop(200, 0, 500, 10_000);
        config.network = delay_250us();
        let m = step_on(&live, &source.scenario, &config, 2).await;
        assert_eq!(m.overall.errors.total(), 0, "{:?}", m.overall.errors);
        assert_eq!(
            m.delay_error.len(),
            2 * m.engine.sent,
            "{architecture}: every request was held on its way out and its reply on the way back"
        );
        let units = delays::take_unit_delay_errors(&live).await.unwrap();
        // Each hop past the driver's own is a call between units: its request and its
        // reply are each held once.
        let between_units: u64 = m
            .overall
            .hops
            .iter()
            .map(|(hops, requests)| 2 * u64::from(hops.total() - 1) * requests)
            .sum();
        assert_eq!(
            units.len(),
            between_units,
            "{architecture}: units delay their calls to other units, and only those"
        );
        assert_eq!(between_units == 0, architecture == Architecture::Monolith);
        live.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_under_a_model_records_the_model_the_bare_hop_and_every_delay_error() {
    let source = scenario::load(&fixture("tiny.toml")).unwrap();
    let out = tempfile::tempdir().unwrap();
    let mut options = test_run_options("net-run", out.path());
    options.load = LoadMode::Rates(vec![100]);
    options.duration = Some(Duration::from_secs(1));
    options.warmup = Some(Duration::from_millis(300));
    options.deploy.network = Some(delay_250us());
    run_ok(&source, &options).await;
    let results = RunResults::read(&out.path().join("results.json")).unwrap();

    assert_eq!(results.network.model, (&delay_250us()).into());
    let hop = results
        .network
        .hop_calibration
        .as_ref()
        .expect("hop measured");
    assert!(hop.modelled_us.is_some() && hop.delay_error.is_some());
    assert_eq!(hop.expected_added_us, 500.0);
    for arch in &results.architectures {
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
    let page = std::fs::read_to_string(out.path().join("index.html")).unwrap();
    assert!(page.contains("Network: 250us: 250 µs one way"));
    assert_eq!(
        wait_for_no_processes(&options.run_id, Duration::from_secs(5)),
        Vec::<u32>::new()
    );
}
