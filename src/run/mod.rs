//! The whole pipeline for one scenario, in one screen: options resolved once, a bare hop
//! calibrated, then for each architecture plan → launch → equivalence check → load steps →
//! redeploy → results written → tear down. Results (and the page) are written after every
//! architecture, before its units are stopped, so an error or an interrupt never loses
//! what was measured.
//!
//! - [`options`]: what was asked, and the same resolved against the scenario
//! - `arch`: one architecture's deployment, deploy cost and load steps
//! - `steps`: the step planner (scenario rates, `--rates`, closed loop, rate sweep)
//! - `redeploy`: the live redeploy under load and its window arithmetic
//! - `fault`: a fault injected under load, and what the requests due around it saw
//! - `equivalence`: identical business digests across architectures
//! - `meta`: run id, git commit, time, progress bars

mod arch;
pub mod endpoints;
mod equivalence;
mod fault;
mod meta;
pub mod options;
mod redeploy;
mod steps;

pub use meta::new_run_id;
pub use options::{
    preflight, DeployTarget, LoadMode, OptionsError, PreflightError, RedeployPolicy,
    ResilienceOverrides, Resolved, RunOptions, SweepLimits, SweepMax, SweepRequest,
    DEFAULT_EQUIVALENCE_REQUESTS,
};

use crate::delays::{self, HopCalibrationOptions};
use crate::driver;
use crate::launch::container::ContainerRun;
use crate::launch::pki::RunPki;
use crate::launch::{LaunchError, LaunchOptions};
use crate::plan::{Architecture, SecurityMode};
use crate::results::{
    ContainerInfo, HopCalibration, NetworkInfo, ResultsError, RunMeta, RunResults, ScenarioInfo,
    SCHEMA_VERSION,
};
use crate::scenario::ScenarioSource;
use arch::ArchRun;
use grain_runtime::network::NetworkModel;
use sha2::{Digest as _, Sha256};
use std::path::PathBuf;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Why a run stopped early.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Security(#[from] crate::launch::pki::PkiError),
    #[error("--target compose: {0}")]
    Containers(crate::launch::container::ContainerError),
    #[error("{architecture}: {source}")]
    Launch {
        architecture: Architecture,
        source: LaunchError,
    },
    #[error("{architecture}: {source}")]
    Equivalence {
        architecture: Architecture,
        source: driver::EquivalenceError,
    },
    #[error(
        "{architecture} and {reference} disagree on equivalence request {index} \
         ({entrypoint} {params:?}): digest {got} vs {expected}"
    )]
    Mismatch {
        architecture: Architecture,
        reference: String,
        index: usize,
        entrypoint: String,
        params: std::collections::BTreeMap<String, u64>,
        got: String,
        expected: String,
    },
    #[error("{architecture}: {source}")]
    Driver {
        architecture: Architecture,
        source: driver::DriverError,
    },
    #[error(transparent)]
    Options(#[from] OptionsError),
    #[error("interrupted")]
    Interrupted,
}

/// What a run produced: results (complete or partial), where they were written, and the
/// error that stopped it, if any.
pub struct RunOutcome {
    pub results: RunResults,
    pub results_path: Option<PathBuf>,
    pub write_error: Option<ResultsError>,
    /// The HTML report written beside results.json, or why it could not be.
    pub report_path: Option<PathBuf>,
    pub report_error: Option<String>,
    pub error: Option<RunError>,
}

/// Runs `source` in every requested architecture. Never panics on a failed unit or an
/// interrupt: the outcome carries partial results, already written to disk.
pub async fn run(
    source: &ScenarioSource,
    options: &RunOptions,
    cancel: &CancellationToken,
) -> RunOutcome {
    let mut outcome = RunOutcome {
        results: RunResults::default(),
        results_path: None,
        write_error: None,
        report_path: None,
        report_error: None,
        error: None,
    };
    let resolved = match options.resolve(&source.scenario) {
        Ok(resolved) => resolved,
        Err(error) => {
            outcome.error = Some(error.into());
            return outcome;
        }
    };
    let work_iterations_per_us = grain_runtime::work::measure_iterations_per_us();
    let mut results = new_results(source, options, &resolved, work_iterations_per_us);
    // Held to the end: dropping it removes the run's containers and network.
    let prepared = match &options.target {
        DeployTarget::Compose(container) => {
            ContainerRun::prepare(&options.unit_binary, &options.run_id, container).map(Some)
        }
        DeployTarget::Processes => Ok(None),
    };
    let containers = match prepared {
        Ok(prepared) => prepared,
        Err(error) => {
            results.errors.push(error.to_string());
            record(&mut outcome, &mut results, options);
            outcome.error = Some(RunError::Containers(error));
            return outcome;
        }
    };
    results.meta.containers = containers.as_ref().map(|c| container_info(&c.target));
    let launch = LaunchOptions::new(
        options.unit_binary.clone(),
        options.run_id.clone(),
        work_iterations_per_us,
    )
    .with_network(resolved.network.clone())
    .with_resilience(resolved.resilience.clone())
    .in_containers(containers.as_ref().map(|c| c.target.clone()));
    match measure_bare_hop(&resolved.network, options, cancel).await {
        Ok(calibration) => results.network.hop_calibration = Some(calibration),
        Err(error) => {
            tracing::warn!(%error, "bare-hop calibration failed; the run goes on without it");
            results.network.hop_calibration_error = Some(error.to_string());
        }
    }
    let with_capacity = sweep_up_to_capacity(options, &mut results, cancel).await;
    let options = with_capacity.as_ref().unwrap_or(options);
    if cancel.is_cancelled() {
        record(&mut outcome, &mut results, options);
        outcome.error = Some(RunError::Interrupted);
        return outcome;
    }
    let launches = match secured_launches(&launch, &resolved, &options.run_id) {
        Ok(launches) => launches,
        Err(error) => {
            results.errors.push(error.to_string());
            record(&mut outcome, &mut results, options);
            outcome.error = Some(RunError::Security(error));
            return outcome;
        }
    };
    let context = ArchRun {
        source,
        options,
        resolved: &resolved,
        launches: &launches,
        cancel,
    };
    let plans = &resolved.plans;
    results.architectures = plans.iter().map(arch::planned).collect();
    let orders = &results.meta.round_orders.clone();
    for (round, order) in orders.iter().enumerate() {
        // A cut's security modes run back to back, so their comparison shares the moment.
        let order: Vec<usize> = order
            .iter()
            .flat_map(|architecture| {
                (0..plans.len()).filter(move |&i| plans[i].architecture == *architecture)
            })
            .collect();
        for (position, &index) in order.iter().enumerate() {
            let label = plans[index].label();
            tracing::info!(round = round + 1, %label, "round");
            let mut arch_result = std::mem::replace(
                &mut results.architectures[index],
                arch::planned(&plans[index]),
            );
            let (error, live) = context
                .run(round, &plans[index], &mut arch_result, &mut results)
                .await;
            if let Some(error) = &error {
                arch_result.error = Some(error.to_string());
                results.errors.push(error.to_string());
            }
            results.architectures[index] = arch_result;
            let last = round + 1 == orders.len() && position + 1 == order.len();
            results.complete = error.is_none() && last;
            // Written before the units stop: a slow teardown or a second Ctrl-C loses nothing.
            record(&mut outcome, &mut results, options);
            if let Some(live) = live {
                let endings = live.shutdown().await;
                tracing::debug!(?endings, "units stopped");
            }
            if error.is_some() {
                outcome.error = error;
                return outcome;
            }
        }
    }
    outcome
}

/// What results.json says of a run's containers.
fn container_info(target: &crate::launch::container::ContainerTarget) -> ContainerInfo {
    ContainerInfo {
        image: target.image.clone(),
        image_bytes: target.image_bytes,
        network: target.network.clone(),
        cpus: target.cpus,
        memory: target.memory.clone(),
    }
}

/// The launch options of each security mode the run compares (plaintext first when it is
/// among them): one throw-away PKI per secured mode, held in memory for the run only.
fn secured_launches(
    plain: &LaunchOptions,
    resolved: &Resolved,
    run_id: &str,
) -> Result<Vec<LaunchOptions>, crate::launch::pki::PkiError> {
    resolved
        .modes()
        .into_iter()
        .map(|mode| {
            let pki = match mode {
                SecurityMode::None => None,
                mode => Some(Arc::new(RunPki::new(mode, run_id)?)),
            };
            Ok(plain.clone().with_security(pki, resolved.keepalive))
        })
        .collect()
}

/// The results of a run before anything was measured.
fn new_results(
    source: &ScenarioSource,
    options: &RunOptions,
    resolved: &Resolved,
    work_iterations_per_us: f64,
) -> RunResults {
    let scenario = &source.scenario;
    RunResults {
        schema_version: SCHEMA_VERSION,
        meta: RunMeta {
            rounds: options.repeat.max(1),
            round_orders: meta::round_orders(&resolved.cuts(), options.repeat, resolved.seed),
            grainbench_version: env!("CARGO_PKG_VERSION").to_string(),
            git_commit: meta::git_commit(),
            host_cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            started_at: meta::now_rfc3339(),
            seed: resolved.seed,
            quick: options.quick,
            work_iterations_per_us,
            p99_budget_us: options
                .p99_budget
                .or(scenario.load.p99_budget)
                .map(|budget| budget.as_secs_f64() * 1e6),
            driver_capacity_rps: None,
            keepalive: resolved.keepalive,
            endpoints: options.endpoints.as_ref().map(|e| e.file.clone()),
            resilience: resolved.resilience.clone(),
            containers: None,
        },
        scenario: ScenarioInfo {
            name: scenario.name.clone(),
            description: scenario.description.clone(),
            file: source.path.clone(),
            sha256: meta::hex(&Sha256::digest(source.text.as_bytes())),
            text: source.text.clone(),
        },
        architectures: Vec::new(),
        equivalence: None,
        network: NetworkInfo {
            model: resolved.network.clone(),
            ..NetworkInfo::default()
        },
        complete: false,
        errors: Vec::new(),
    }
}

/// Measures a bare hop without and with `network` before the architectures run.
async fn measure_bare_hop(
    network: &NetworkModel,
    options: &RunOptions,
    cancel: &CancellationToken,
) -> Result<HopCalibration, delays::NetworkError> {
    tracing::info!(network = %network.name, "measuring a bare hop's round trip");
    let hop_options = HopCalibrationOptions {
        unit_binary: options.unit_binary.clone(),
        run_id: options.run_id.clone(),
    };
    let repetitions = options.repeat.clamp(1, MAX_HOP_REPETITIONS);
    let mut calibrations = Vec::with_capacity(repetitions);
    for _ in 0..repetitions {
        let calibrated = tokio::select! {
            calibrated = delays::measure_bare_hop(network, &hop_options, cancel) => calibrated,
            // The unit is killed on drop; the caller notices the cancellation.
            _ = cancel.cancelled() => Err(delays::NetworkError::Interrupted),
        };
        calibrations.push(calibrated?);
    }
    let loopback: Vec<f64> = calibrations
        .iter()
        .map(|c| c.loopback_us.p50 as f64)
        .collect();
    let added: Vec<f64> = calibrations
        .iter()
        .filter_map(|c| c.measured_added_p50_us)
        .collect();
    let mut first = calibrations.swap_remove(0);
    first.loopback_p50_over_rounds = crate::stats::estimate(&loopback);
    first.added_p50_over_rounds = crate::stats::estimate(&added);
    Ok(first)
}

/// A rate sweep stops at the driver's capacity unless `--max-rate` says where: measured
/// here, before any architecture, and recorded. `None` when the options need no change.
async fn sweep_up_to_capacity(
    options: &RunOptions,
    results: &mut RunResults,
    cancel: &CancellationToken,
) -> Option<RunOptions> {
    let LoadMode::Sweep(limits) = &options.load else {
        return None;
    };
    if limits.max_source != (SweepMax::DriverCapacity { measured: false }) {
        return None;
    }
    tracing::info!("measuring the driver's capacity: the rate sweep stops there");
    let measured = crate::capacity::measure(&options.unit_binary, &options.run_id, cancel).await;
    let mut limits = limits.clone();
    match measured {
        Ok(capacity) => {
            results.meta.driver_capacity_rps = capacity.valid_rps;
            if let Some(rate) = capacity.valid_rps {
                limits.max_rps = rate;
                limits.max_source = SweepMax::DriverCapacity { measured: true };
            }
        }
        // The knee's reason says the sweep stopped at the scenario rate limit instead.
        Err(error) => tracing::warn!(%error, "the driver's capacity could not be measured"),
    }
    let mut adjusted = options.clone();
    adjusted.load = LoadMode::Sweep(limits);
    Some(adjusted)
}

/// The bare-hop calibration is repeated once per round, up to this many times.
const MAX_HOP_REPETITIONS: usize = 3;

/// Writes results.json and the HTML report beside it (after every architecture, so an
/// interrupted run still leaves both).
fn record(outcome: &mut RunOutcome, results: &mut RunResults, options: &RunOptions) {
    crate::stats::summarize_run(&mut results.architectures);
    outcome.results = results.clone();
    match results.write(&options.out_dir) {
        Ok(path) => {
            outcome.results_path = Some(path);
            outcome.write_error = None;
        }
        Err(error) => outcome.write_error = Some(error),
    }
    let page = options.out_dir.join("index.html");
    match crate::report::write_html(results, None, &page) {
        Ok(path) => {
            outcome.report_path = Some(path);
            outcome.report_error = None;
        }
        Err(error) => outcome.report_error = Some(error.to_string()),
    }
}
