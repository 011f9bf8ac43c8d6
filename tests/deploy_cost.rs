//! Deploy cost on real processes: CPU per request adds up over units, RSS comes from the
//! units' own /proc entries (a unit made to grow shows it), blast radius follows the plan,
//! and a nano unit redeployed under load drains, restarts and leaves nothing behind.

mod common;

use common::*;
use grainbench::cost;
use grainbench::plan::{self, Architecture};
use grainbench::run::{self, LoadMode, RedeployPolicy, RunOptions};
use grainbench::scenario;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

async fn run_ok(source: &scenario::ScenarioSource, options: &RunOptions) -> run::RunOutcome {
    let outcome = run::run(source, options, &CancellationToken::new()).await;
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
    assert!(deploy.artifact_bytes_per_unit > 0);
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
    assert!(redeploy.window_failed <= redeploy.window_requests);
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
