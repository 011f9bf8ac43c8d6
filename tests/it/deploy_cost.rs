//! Deploy cost on real processes: CPU per request adds up over units, RSS comes from the
//! units' own /proc entries (a unit made to grow shows it), blast radius follows the plan,
//! a nano unit redeployed under load drains, restarts and leaves nothing behind, and a
//! replicated unit is replaced one replica at a time.

use crate::common::*;
use grainbench::cost;
use grainbench::plan::{self, Architecture};
use grainbench::run::{LoadMode, RedeployPolicy, RunOptions};
use grainbench::scenario;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

async fn run_ok(
    source: &scenario::ScenarioSource,
    options: &RunOptions,
) -> grainbench::outputs::RunOutcome {
    let outcome = grainbench::outputs::run(source, options, &CancellationToken::new())
        .await
        .expect("options fit the scenario");
    if let Some(error) = &outcome.error {
        panic!("the run failed: {error}");
    }
    outcome
}

fn options(test: &str, out: &std::path::Path) -> RunOptions {
    let mut options = test_run_options(test, out);
    options.equivalence_requests = 4;
    options.cold_starts = 2;
    options.redeploy = RedeployPolicy::FirstEntrypoint;
    options
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nano_redeploy_under_load_drains_restarts_and_counts() {
    let source = scenario::load(&fixture("tiny.toml")).unwrap();
    let out = tempfile::tempdir().unwrap();
    let mut options = options("redeploy", out.path());
    options.architectures = vec![Architecture::Nano];
    options.load = LoadMode::Rates(vec![100]);
    options.redeploy = RedeployPolicy::Operation("lookup".into());
    let outcome = run_ok(&source, &options).await;

    let arch = &outcome.results.architectures[0];
    let deploy = arch.deploy.as_ref().expect("deploy cost measured");
    assert_eq!(deploy.cold_start.samples_ms.len(), 2);
    assert!(
        deploy.cold_start.min_ms <= deploy.cold_start.median_ms
            && deploy.cold_start.median_ms <= deploy.cold_start.max_ms
    );
    assert_eq!(deploy.service_units + deploy.state_units, arch.unit_count);
    assert_eq!(
        deploy.artifact_bytes_total,
        deploy.artifact_bytes_per_unit * arch.unit_count as u64
    );
    assert_eq!(
        deploy.artifact_bytes_per_unit,
        std::fs::metadata(unit_binary()).unwrap().len(),
        "a unit's artifact is the units' binary"
    );
    assert!(
        deploy.idle_rss_bytes.values().all(|&rss| rss > 0),
        "{:?}",
        deploy.idle_rss_bytes
    );

    // Blast radius in the results is the plan's, for every operation.
    let plan = plan::plan(&source.scenario, &Architecture::Nano).unwrap();
    for op in &source.scenario.operations {
        let expected: Vec<String> = cost::blast_radius(&plan, &op.name)
            .iter()
            .map(|&i| plan.units[i].name.clone())
            .collect();
        assert_eq!(deploy.blast_radius[&op.name], expected);
        assert_eq!(expected, vec![format!("nano-{}", op.name)]);
    }

    // CPU per request: positive, and the units' figures add up to the total.
    let step = &arch.steps[0];
    let units = step.units.as_ref().expect("units sampled");
    let sum: f64 = units.cpu_ms.values().sum();
    assert!((sum - units.cpu_ms_total).abs() < 1e-6);
    assert!(step.units_cpu_us_per_request.unwrap() > 0.0);
    assert_eq!(units.cpu_ms.len(), arch.unit_count);

    let redeploy = deploy.redeploy.as_ref().expect("redeploy ran");
    assert_eq!(redeploy.units, vec!["nano-lookup".to_string()]);
    assert_eq!(redeploy.old_processes_left, 0);
    assert_eq!(
        redeploy.old_endings,
        vec!["exit code 0".to_string()],
        "drained gracefully, not killed"
    );
    assert!(redeploy.window_requests > 0);
    // Replacements are routed before the old process drains: nothing is lost (draining
    // first failed 1-2 requests of every redeploy).
    assert_eq!(redeploy.window_failed, 0, "{:?}", redeploy.step.errors);
    assert!(
        redeploy.ready_ms <= redeploy.drained_ms,
        "surge: ready, then drained"
    );
    assert!(
        redeploy.step.ok > 0,
        "the driver kept running through the redeploy"
    );
    assert_eq!(
        redeploy.step.error_total,
        redeploy.step.errors.connect
            + redeploy.step.errors.timeout
            + redeploy.step.errors.status.values().sum::<u64>()
            + redeploy.step.errors.other
    );
    assert!(redeploy.latency_before_us.count > 0);
    assert_eq!(
        wait_for_no_processes(&options.run_id, Duration::from_secs(5)),
        Vec::<u32>::new()
    );
}

/// A replicated unit is replaced one replica at a time: after the first wave, replica 0
/// runs a new process while replica 1's original one still serves; the second wave
/// replaces it. Replacing every replica at once (as before) leaves no original running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replicated_unit_is_redeployed_one_replica_at_a_time() {
    let mut source = scenario::load(&fixture("tiny.toml")).unwrap();
    for service in &mut source.scenario.services {
        service.replicas = if service.name == "back" { 2 } else { 1 };
    }
    let mut live = deploy(&source.scenario, Architecture::Micro, "rolling").await;
    let back = live.plan.unit_of("lookup").expect("back's unit");
    let replicas = |live: &grainbench::launch::LiveDeployment| -> Vec<(u32, u32)> {
        let mut found: Vec<(u32, u32)> = live
            .units
            .iter()
            .filter(|u| u.planned == back)
            .map(|u| (u.replica, u.pid))
            .collect();
        found.sort();
        found
    };
    let original = replicas(&live);
    assert_eq!(original.len(), 2, "{original:?}");
    let mut after_each_wave = Vec::new();
    let redeployed = live
        .redeploy(&[back], |live| {
            let now = replicas(live);
            let originals_alive: Vec<bool> = original
                .iter()
                .map(|&(_, pid)| cost::usage(pid).is_some())
                .collect();
            after_each_wave.push((now, originals_alive));
        })
        .await
        .expect("the redeploy succeeds");
    assert_eq!(redeployed.waves, 2);
    assert_eq!(redeployed.old_endings, ["exit code 0", "exit code 0"]);
    assert_eq!(after_each_wave.len(), 2, "{after_each_wave:?}");
    let (first, alive) = &after_each_wave[0];
    assert_ne!(
        first[0].1, original[0].1,
        "replica 0 replaced in the first wave"
    );
    assert_eq!(
        first[1].1, original[1].1,
        "replica 1 untouched in the first wave"
    );
    assert_eq!(
        alive,
        &[true, true],
        "surge: the replacement is routed before the original drains"
    );
    let (second, alive) = &after_each_wave[1];
    assert_ne!(
        second[1].1, original[1].1,
        "replica 1 replaced in the second wave"
    );
    assert_eq!(
        alive,
        &[false, true],
        "replica 0's original drained after wave 1"
    );
    assert!(
        original.iter().all(|&(_, pid)| cost::usage(pid).is_none()),
        "every original drained by the end"
    );
    // Both replacements serve.
    let client = grain_runtime::client::HttpClient::new(Duration::from_secs(2));
    for unit in live.units.iter().filter(|u| u.planned == back) {
        let status = client
            .get_status(&unit.addr, grain_runtime::wire::HEALTH_PATH)
            .await
            .unwrap();
        assert!(status.is_success(), "{}: {status}", unit.name);
    }
    let run_id = live.options.run_id.clone();
    live.shutdown().await;
    assert!(wait_for_no_processes(&run_id, Duration::from_secs(5)).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unit_that_grows_shows_a_higher_peak_rss_than_idle() {
    let source = scenario::load(&fixture("grow.toml")).unwrap();
    let out = tempfile::tempdir().unwrap();
    let mut options = options("grow", out.path());
    options.architectures = vec![Architecture::Monolith];
    options.redeploy = RedeployPolicy::Off;
    let outcome = run_ok(&source, &options).await;
    let arch = &outcome.results.architectures[0];
    let idle = arch.deploy.as_ref().unwrap().idle_rss_bytes["monolith"];
    let peak = arch.steps[0].units.as_ref().unwrap().peak_rss_bytes["monolith"];
    // ~400 requests × 256 KiB stored: the peak must be well above the idle figure.
    assert!(peak > 2 * idle, "idle {idle} B, peak {peak} B");
}
