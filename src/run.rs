//! The whole pipeline for one scenario: calibrate, then for each architecture plan →
//! launch → equivalence check → load steps → tear down, writing results.json after each
//! architecture so that an error or an interrupt never loses what was measured.

use crate::driver::{self, requests::RequestGen, StepConfig, Target};
use crate::launch::{self, LaunchError, LaunchOptions, LiveDeployment};
use crate::plan::{self, Architecture};
use crate::report::{
    ArchitectureResult, EquivalenceSummary, RunMeta, RunResults, ScenarioInfo, StepResult,
    SCHEMA_VERSION,
};
use crate::scenario::{LoadProfile, ScenarioSource};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use sha2::{Digest as _, Sha256};
use std::path::PathBuf;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Requests in the equivalence check, sent one at a time to every architecture.
pub const DEFAULT_EQUIVALENCE_REQUESTS: usize = 30;

/// How to run a scenario.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub architectures: Vec<Architecture>,
    pub quick: bool,
    /// Overrides the scenario's seed.
    pub seed: Option<u64>,
    pub out_dir: PathBuf,
    /// The `grainbench` binary that serves units.
    pub unit_binary: PathBuf,
    pub equivalence_requests: usize,
    pub in_flight_cap: usize,
    pub ready_timeout: Duration,
    pub show_progress: bool,
    /// Written on every unit's command line (`--run-id`) so this run's processes can be found.
    pub run_id: String,
}

impl RunOptions {
    /// Defaults for `scenario`: every architecture, results under `reports/<name>/`.
    pub fn new(scenario_name: &str, unit_binary: PathBuf) -> Self {
        RunOptions {
            architectures: Architecture::ALL.to_vec(),
            quick: false,
            seed: None,
            out_dir: PathBuf::from("reports").join(scenario_name),
            unit_binary,
            equivalence_requests: DEFAULT_EQUIVALENCE_REQUESTS,
            in_flight_cap: 10_000,
            ready_timeout: Duration::from_secs(20),
            show_progress: false,
            run_id: new_run_id(),
        }
    }
}

/// Why a run stopped early.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
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
        reference: Architecture,
        index: usize,
        entrypoint: String,
        params: std::collections::BTreeMap<String, u64>,
        got: String,
        expected: String,
    },
    #[error("interrupted")]
    Interrupted,
}

/// What a run produced: results (complete or partial), where they were written, and the
/// error that stopped it, if any.
pub struct RunOutcome {
    pub results: RunResults,
    pub results_path: Option<PathBuf>,
    pub write_error: Option<crate::report::ResultsError>,
    pub error: Option<RunError>,
}

/// Runs `source` in every requested architecture. Never panics on a failed unit or an
/// interrupt: the outcome carries partial results, already written to disk.
pub async fn run(
    source: &ScenarioSource,
    options: &RunOptions,
    cancel: &CancellationToken,
) -> RunOutcome {
    let scenario = &source.scenario;
    let seed = options.seed.unwrap_or(scenario.seed);
    let load = if options.quick {
        scenario.load.quick()
    } else {
        scenario.load.clone()
    };
    let work_iterations_per_us = grain_runtime::work::calibrate();
    let mut results = RunResults {
        schema_version: SCHEMA_VERSION,
        meta: RunMeta {
            grainbench_version: env!("CARGO_PKG_VERSION").to_string(),
            git_commit: git_commit(),
            host_cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            started_at: now_rfc3339(),
            seed,
            quick: options.quick,
            work_iterations_per_us,
        },
        scenario: ScenarioInfo {
            name: scenario.name.clone(),
            description: scenario.description.clone(),
            file: source.path.clone(),
            sha256: hex(&Sha256::digest(source.text.as_bytes())),
            text: source.text.clone(),
        },
        architectures: Vec::new(),
        equivalence: None,
        complete: false,
        errors: Vec::new(),
    };
    let launch_options = LaunchOptions {
        unit_binary: options.unit_binary.clone(),
        run_id: options.run_id.clone(),
        work_iterations_per_us,
        ready_timeout: options.ready_timeout,
    };
    let mut outcome = RunOutcome {
        results_path: None,
        write_error: None,
        error: None,
        results: results.clone(),
    };
    for &architecture in &options.architectures {
        let deployment = plan::plan(scenario, architecture);
        let mut arch_result = ArchitectureResult::planned(&deployment);
        let error = run_architecture(
            source,
            options,
            &launch_options,
            &load,
            seed,
            &deployment,
            &mut arch_result,
            &mut results,
            cancel,
        )
        .await;
        if let Some(error) = &error {
            arch_result.error = Some(error.to_string());
            results.errors.push(error.to_string());
        }
        results.architectures.push(arch_result);
        record(&mut outcome, &results, options);
        if error.is_some() {
            outcome.error = error;
            return outcome;
        }
    }
    results.complete = true;
    record(&mut outcome, &results, options);
    outcome
}

fn record(outcome: &mut RunOutcome, results: &RunResults, options: &RunOptions) {
    outcome.results = results.clone();
    match results.write(&options.out_dir) {
        Ok(path) => {
            outcome.results_path = Some(path);
            outcome.write_error = None;
        }
        Err(error) => outcome.write_error = Some(error),
    }
}

#[allow(clippy::too_many_arguments)]
async fn run_architecture(
    source: &ScenarioSource,
    options: &RunOptions,
    launch_options: &LaunchOptions,
    load: &LoadProfile,
    seed: u64,
    deployment: &plan::Deployment,
    arch_result: &mut ArchitectureResult,
    results: &mut RunResults,
    cancel: &CancellationToken,
) -> Option<RunError> {
    let architecture = deployment.architecture;
    tracing::info!(%architecture, units = deployment.units.len(), "deploying");
    let launched = tokio::select! {
        launched = launch::launch(deployment, launch_options) => launched,
        _ = cancel.cancelled() => return Some(RunError::Interrupted),
    };
    let mut live = match launched {
        Ok(live) => live,
        Err(source) => {
            return Some(RunError::Launch {
                architecture,
                source,
            })
        }
    };
    arch_result.cold_start_ms = Some(live.cold_start.as_secs_f64() * 1e3);
    let error = measure(
        source,
        options,
        load,
        seed,
        &mut live,
        arch_result,
        results,
        cancel,
    )
    .await;
    let endings = live.shutdown().await;
    tracing::debug!(?endings, "units stopped");
    error
}

#[allow(clippy::too_many_arguments)]
async fn measure(
    source: &ScenarioSource,
    options: &RunOptions,
    load: &LoadProfile,
    seed: u64,
    live: &mut LiveDeployment,
    arch_result: &mut ArchitectureResult,
    results: &mut RunResults,
    cancel: &CancellationToken,
) -> Option<RunError> {
    let scenario = &source.scenario;
    let architecture = live.plan.architecture;
    let targets = targets(live, scenario);
    let check = tokio::select! {
        check = check_equivalence(&targets, scenario, seed, options, architecture, load, results) => check,
        _ = cancel.cancelled() => Err(RunError::Interrupted),
    };
    if let Err(error) = check {
        return Some(error);
    }
    let entry_names: Vec<String> = scenario.entrypoints.iter().map(|e| e.op.clone()).collect();
    for (index, &rate) in load.rates.iter().enumerate() {
        let config = StepConfig {
            rate,
            warmup: load.warmup,
            duration: load.duration,
            timeout: load.timeout,
            in_flight_cap: options.in_flight_cap,
        };
        let generator = RequestGen::new(scenario, seed.wrapping_add(index as u64 + 1));
        let bar = progress_bar(options.show_progress, architecture, &config);
        let measurement = driver::run_step(&targets, generator, &config, bar.clone(), cancel).await;
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        let mut step =
            StepResult::from_measurement(&measurement, &entry_names, &live.plan.static_hops);
        if cancel.is_cancelled() {
            step.valid = false;
            step.invalid_reason = Some("interrupted before the step finished".into());
        }
        tracing::info!(%architecture, rate, achieved = step.achieved_rps, p50_us = step.latency_us.p50, p99_us = step.latency_us.p99, "step done");
        arch_result.steps.push(step);
        if let Err(source) = live.check_alive() {
            return Some(RunError::Launch {
                architecture,
                source,
            });
        }
        if cancel.is_cancelled() {
            return Some(RunError::Interrupted);
        }
    }
    None
}

fn targets(live: &LiveDeployment, scenario: &crate::scenario::Scenario) -> Vec<Target> {
    scenario
        .entrypoints
        .iter()
        .map(|entry| Target {
            op: entry.op.clone(),
            addr: live.addr_of(&entry.op).unwrap_or_default().to_string(),
            request_bytes: scenario
                .operation(&entry.op)
                .map_or(0, |op| op.request_bytes),
        })
        .collect()
}

/// Sends the fixed request sequence and compares digests with the first architecture's.
async fn check_equivalence(
    targets: &[Target],
    scenario: &crate::scenario::Scenario,
    seed: u64,
    options: &RunOptions,
    architecture: Architecture,
    load: &LoadProfile,
    results: &mut RunResults,
) -> Result<(), RunError> {
    let generator = RequestGen::new(scenario, seed);
    let digests = driver::equivalence_digests(
        targets,
        generator,
        options.equivalence_requests,
        load.timeout,
    )
    .await
    .map_err(|source| RunError::Equivalence {
        architecture,
        source,
    })?;
    let Some(summary) = results.equivalence.as_mut() else {
        results.equivalence = Some(EquivalenceSummary {
            requests: digests.len(),
            reference: architecture,
            agreed: vec![architecture],
            digests,
        });
        return Ok(());
    };
    for (index, (got, expected)) in digests.iter().zip(&summary.digests).enumerate() {
        if got.digest != expected.digest {
            return Err(RunError::Mismatch {
                architecture,
                reference: summary.reference,
                index,
                entrypoint: got.entrypoint.clone(),
                params: got.params.clone(),
                got: got.digest.clone(),
                expected: expected.digest.clone(),
            });
        }
    }
    summary.agreed.push(architecture);
    Ok(())
}

fn progress_bar(
    show: bool,
    architecture: Architecture,
    config: &StepConfig,
) -> Option<ProgressBar> {
    if !show {
        return None;
    }
    let total_ms = (config.warmup + config.duration).as_millis() as u64;
    let bar = ProgressBar::with_draw_target(Some(total_ms), ProgressDrawTarget::stderr());
    let style =
        ProgressStyle::with_template("{prefix:>10} {msg:>12} [{bar:30}] {elapsed}/{duration}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
    bar.set_style(style);
    bar.set_prefix(architecture.name());
    bar.set_message(format!("{} req/s", config.rate));
    Some(bar)
}

fn git_commit() -> Option<String> {
    let output = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// A run id unique on this machine: harness pid and start time.
pub fn new_run_id() -> String {
    format!(
        "{}-{}",
        std::process::id(),
        time::OffsetDateTime::now_utc().unix_timestamp_nanos()
    )
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
