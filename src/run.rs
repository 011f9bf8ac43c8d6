//! The whole pipeline for one scenario: calibrate, then for each architecture plan →
//! launch → equivalence check → load steps → tear down, writing results.json after each
//! architecture so that an error or an interrupt never loses what was measured.

use crate::cost::{self, ColdStart, Sampler};
use crate::driver::engine::Schedule;
use crate::driver::{self, requests::RequestGen, StepConfig, Target};
use crate::launch::{self, LaunchError, LaunchOptions, LiveDeployment};
use crate::network::{self, HopCalibrationOptions};
use crate::plan::{self, Architecture};
use crate::report::{
    ArchitectureResult, DeployCost, EquivalenceSummary, HopCalibration, Knee, NetworkInfo,
    Percentiles, RedeployResult, RunMeta, RunResults, ScenarioInfo, StepResult, SCHEMA_VERSION,
};
use crate::scenario::{LoadProfile, ScenarioSource};
use grain_runtime::network::NetworkModel;
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
    pub load: LoadMode,
    /// Deployments timed for cold start (the last one is the one measured under load).
    pub cold_starts: usize,
    /// Which operation's change is redeployed under load after the steps.
    pub redeploy: Redeploy,
    /// Overrides the measured time per step.
    pub duration: Option<Duration>,
    /// Overrides the warm-up per step.
    pub warmup: Option<Duration>,
    pub show_progress: bool,
    /// Written on every unit's command line (`--run-id`) so this run's processes can be found.
    pub run_id: String,
    /// Overrides the scenario's network model (`--network`).
    pub network: Option<NetworkModel>,
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
            load: LoadMode::ScenarioRates,
            cold_starts: 5,
            redeploy: Redeploy::FirstEntrypoint,
            duration: None,
            warmup: None,
            ready_timeout: Duration::from_secs(20),
            show_progress: false,
            run_id: new_run_id(),
            network: None,
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
    #[error("{architecture}: {source}")]
    Driver {
        architecture: Architecture,
        source: driver::DriverError,
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
    let scenario = &source.scenario;
    let seed = options.seed.unwrap_or(scenario.seed);
    let mut load = if options.quick {
        scenario.load.quick()
    } else {
        scenario.load.clone()
    };
    load.duration = options.duration.unwrap_or(load.duration);
    load.warmup = options.warmup.unwrap_or(load.warmup);
    let work_iterations_per_us = grain_runtime::work::calibrate();
    let network = options
        .network
        .clone()
        .unwrap_or_else(|| scenario.network.clone());
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
        network: NetworkInfo {
            model: network.clone(),
            ..NetworkInfo::default()
        },
        complete: false,
        errors: Vec::new(),
    };
    let launch_options = LaunchOptions {
        unit_binary: options.unit_binary.clone(),
        run_id: options.run_id.clone(),
        work_iterations_per_us,
        ready_timeout: options.ready_timeout,
        network: network.clone(),
    };
    let mut outcome = RunOutcome {
        results_path: None,
        write_error: None,
        report_path: None,
        report_error: None,
        error: None,
        results: results.clone(),
    };
    match calibrate_hop(&network, options, cancel).await {
        Ok(calibration) => results.network.hop_calibration = Some(calibration),
        Err(error) => {
            tracing::warn!(%error, "bare-hop calibration failed; the run goes on without it");
            results.network.hop_calibration_error = Some(error.to_string());
        }
    }
    if cancel.is_cancelled() {
        record(&mut outcome, &results, options);
        outcome.error = Some(RunError::Interrupted);
        return outcome;
    }
    let context = ArchRun {
        source,
        options,
        launch: &launch_options,
        load: &load,
        seed,
        cancel,
    };
    for &architecture in &options.architectures {
        let deployment = plan::plan(scenario, architecture);
        let mut arch_result = ArchitectureResult::planned(&deployment);
        let error = context
            .run(&deployment, &mut arch_result, &mut results)
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

/// Measures a bare hop without and with `network` before the architectures run.
async fn calibrate_hop(
    network: &NetworkModel,
    options: &RunOptions,
    cancel: &CancellationToken,
) -> Result<HopCalibration, network::NetworkError> {
    tracing::info!(network = %network.name, "measuring a bare hop's round trip");
    let hop_options = HopCalibrationOptions {
        unit_binary: options.unit_binary.clone(),
        run_id: options.run_id.clone(),
    };
    tokio::select! {
        calibrated = network::calibrate_hop(network, &hop_options, cancel) => calibrated,
        // The unit is killed on drop; the caller notices the cancellation.
        _ = cancel.cancelled() => Err(network::NetworkError::Interrupted),
    }
}

/// Writes results.json and the HTML report beside it (after every architecture, so an
/// interrupted run still leaves both).
fn record(outcome: &mut RunOutcome, results: &RunResults, options: &RunOptions) {
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

/// What every architecture of one run shares.
struct ArchRun<'a> {
    source: &'a ScenarioSource,
    options: &'a RunOptions,
    launch: &'a LaunchOptions,
    load: &'a LoadProfile,
    seed: u64,
    cancel: &'a CancellationToken,
}

impl ArchRun<'_> {
    /// Deploys one architecture, measures it and tears it down.
    async fn run(
        &self,
        deployment: &plan::Deployment,
        arch_result: &mut ArchitectureResult,
        results: &mut RunResults,
    ) -> Option<RunError> {
        let architecture = deployment.architecture;
        tracing::info!(%architecture, units = deployment.units.len(), "deploying");
        let launched = tokio::select! {
            launched = self.deploy(deployment) => launched,
            _ = self.cancel.cancelled() => return Some(RunError::Interrupted),
        };
        let (mut live, cold_start) = match launched {
            Ok(launched) => launched,
            Err(source) => {
                return Some(RunError::Launch {
                    architecture,
                    source,
                })
            }
        };
        arch_result.cold_start_ms = Some(live.cold_start.as_secs_f64() * 1e3);
        arch_result.deploy = Some(self.deploy_cost(&live, cold_start));
        let error = self.measure(&mut live, arch_result, results).await;
        let endings = live.shutdown().await;
        tracing::debug!(?endings, "units stopped");
        error
    }

    /// Measures cold start over repeated deployments, the last of which is kept running.
    async fn deploy(
        &self,
        deployment: &plan::Deployment,
    ) -> Result<(LiveDeployment, ColdStart), LaunchError> {
        cost::deploy_timed(deployment, self.launch, self.options.cold_starts).await
    }

    fn deploy_cost(&self, live: &LiveDeployment, cold_start: ColdStart) -> DeployCost {
        let plan = &live.plan;
        let artifact = cost::artifact_bytes(&self.options.unit_binary);
        let idle_rss_bytes = cost::rss_now(&unit_pids(live));
        DeployCost {
            service_units: plan.units.iter().filter(|u| !u.is_state()).count(),
            state_units: plan.units.iter().filter(|u| u.is_state()).count(),
            endpoints: plan.units.iter().map(|u| cost::endpoints(&u.role)).sum(),
            artifact_bytes_per_unit: artifact,
            artifact_bytes_total: artifact * plan.units.len() as u64,
            cold_start,
            idle_rss_bytes_total: idle_rss_bytes.values().sum(),
            idle_rss_bytes,
            blast_radius: self
                .source
                .scenario
                .operations
                .iter()
                .map(|op| {
                    let units = cost::blast_radius(plan, &op.name);
                    (
                        op.name.clone(),
                        units.iter().map(|&i| plan.units[i].name.clone()).collect(),
                    )
                })
                .collect(),
            redeploy: None,
        }
    }

    fn step_config(&self, schedule: Schedule) -> StepConfig {
        StepConfig {
            schedule,
            warmup: self.load.warmup,
            duration: self.load.duration,
            timeout: self.load.timeout,
            in_flight_cap: self.options.in_flight_cap,
            spin: driver::DEFAULT_SPIN,
            network: self.launch.network.clone(),
        }
    }

    async fn measure(
        &self,
        live: &mut LiveDeployment,
        arch_result: &mut ArchitectureResult,
        results: &mut RunResults,
    ) -> Option<RunError> {
        let scenario = &self.source.scenario;
        let architecture = live.plan.architecture;
        let targets = match targets(live, scenario) {
            Ok(targets) => targets,
            Err(source) => {
                return Some(RunError::Driver {
                    architecture,
                    source,
                })
            }
        };
        let check = tokio::select! {
            check = check_equivalence(&targets, scenario, self.seed, self.options, architecture, self.load, results) => check,
            _ = self.cancel.cancelled() => Err(RunError::Interrupted),
        };
        if let Err(error) = check {
            return Some(error);
        }
        let mut sweep = StepPlanner::new(&self.options.load, self.load);
        let mut index = 0u64;
        while let Some(schedule) = sweep.next_schedule(arch_result.steps.last()) {
            index += 1;
            let config = self.step_config(schedule);
            let step = match self.step(live, &targets, &config, index).await {
                Ok(step) => step,
                Err(error) => return Some(error),
            };
            tracing::info!(%architecture, rate = step.target_rps, achieved = step.achieved_rps, p50_us = step.latency_us.p50, p99_us = step.latency_us.p99, "step done");
            arch_result.steps.push(step);
            if let Err(source) = live.check_alive() {
                return Some(RunError::Launch {
                    architecture,
                    source,
                });
            }
            if self.cancel.is_cancelled() {
                return Some(RunError::Interrupted);
            }
        }
        arch_result.knee = sweep.knee();
        if let Some(change) = self.redeploy_target() {
            let index = index + 1;
            match self
                .redeploy_under_load(live, &targets, &change, index)
                .await
            {
                Ok(redeploy) => {
                    if let Some(deploy) = arch_result.deploy.as_mut() {
                        deploy.redeploy = Some(redeploy);
                    }
                }
                Err(error) => return Some(error),
            }
        }
        None
    }

    /// One load step with the units' CPU and memory sampled alongside.
    async fn step(
        &self,
        live: &LiveDeployment,
        targets: &[Target],
        config: &StepConfig,
        index: u64,
    ) -> Result<StepResult, RunError> {
        let architecture = live.plan.architecture;
        let delaying = config.network.adds_delay();
        if delaying {
            // Start the step's count afresh: the equivalence check and earlier steps
            // delayed messages too.
            if let Err(error) = network::take_unit_delay_errors(live).await {
                tracing::warn!(%error, "cannot reset the units' injected-delay errors");
            }
        }
        let (measurement, usage) = self
            .measured_step(architecture, unit_pids(live), targets, config, index)
            .await?;
        let mut step = self.step_result(live, &measurement).with_units(usage);
        if delaying {
            network::attach_unit_delay_errors(&mut step, live).await;
        }
        Ok(step)
    }

    async fn measured_step(
        &self,
        architecture: Architecture,
        pids: Vec<(String, u32)>,
        targets: &[Target],
        config: &StepConfig,
        index: u64,
    ) -> Result<(driver::StepMeasurement, cost::UnitsUsage), RunError> {
        let scenario = &self.source.scenario;
        let generator = RequestGen::new(scenario, self.seed.wrapping_add(index));
        let bar = progress_bar(self.options.show_progress, architecture, config);
        let sampler = Sampler::start(pids);
        let measured = driver::run_step(targets, generator, config, bar.clone(), self.cancel).await;
        let usage = sampler.stop();
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        let measurement = measured.map_err(|source| RunError::Driver {
            architecture,
            source,
        })?;
        Ok((measurement, usage))
    }

    fn step_result(
        &self,
        live: &LiveDeployment,
        measurement: &driver::StepMeasurement,
    ) -> StepResult {
        let entry_names: Vec<String> = self
            .source
            .scenario
            .entrypoints
            .iter()
            .map(|e| e.op.clone())
            .collect();
        let mut step =
            StepResult::from_measurement(measurement, &entry_names, &live.plan.static_hops);
        if self.cancel.is_cancelled() {
            step.valid = false;
            step.invalid_reason = Some("interrupted before the step finished".into());
        }
        step
    }

    /// The steady rate the redeploy runs at: the first rate this run uses.
    fn redeploy_rate(&self) -> u32 {
        let rates = match &self.options.load {
            LoadMode::Rates(rates) => rates.as_slice(),
            _ => self.load.rates.as_slice(),
        };
        rates.first().copied().unwrap_or(100)
    }

    /// The operation whose change is redeployed live, if any.
    fn redeploy_target(&self) -> Option<String> {
        match &self.options.redeploy {
            Redeploy::Off => None,
            Redeploy::Operation(op) => Some(op.clone()),
            Redeploy::FirstEntrypoint => self
                .source
                .scenario
                .entrypoints
                .first()
                .map(|e| e.op.clone()),
        }
    }

    /// Holds a steady rate while the units running `change` are redeployed (drained with
    /// SIGTERM, restarted, rerouted), and compares the requests due during the redeploy
    /// window with those before it.
    async fn redeploy_under_load(
        &self,
        live: &mut LiveDeployment,
        targets: &[Target],
        change: &str,
        index: u64,
    ) -> Result<RedeployResult, RunError> {
        let architecture = live.plan.architecture;
        let rate = self.redeploy_rate();
        let mut config = self.step_config(Schedule::OpenLoop { rate });
        config.duration = config.duration.max(REDEPLOY_MIN_STEP);
        let units = cost::blast_radius(&live.plan, change);
        let redeploy_after = config.warmup + config.duration / 3;
        let pids = unit_pids(live);
        let step = self.measured_step(architecture, pids, targets, &config, index);
        let redeploy = async {
            tokio::time::sleep(redeploy_after).await;
            let redeploy = live.redeploy(&units).await?;
            // The driver's next connections to a moved entrypoint go to its new address.
            for target in targets {
                if let Some(addr) = live.addr_of(&target.op).and_then(|a| a.parse().ok()) {
                    target.addr.set(addr);
                }
            }
            Ok::<_, LaunchError>(redeploy)
        };
        let (measured, redeployed) = tokio::join!(step, redeploy);
        let (measurement, usage) = measured?;
        let redeploy = redeployed.map_err(|source| RunError::Launch {
            architecture,
            source,
        })?;
        let step = self.step_result(live, &measurement).with_units(usage);
        Ok(redeploy_result(change, rate, &measurement, &redeploy, step))
    }
}

/// How long after the replacements are ready the redeploy window still runs.
const REDEPLOY_SETTLE: Duration = Duration::from_secs(1);

fn redeploy_result(
    change: &str,
    rate: u32,
    measurement: &driver::StepMeasurement,
    redeploy: &launch::Redeploy,
    step: StepResult,
) -> RedeployResult {
    let window_end = redeploy.started + redeploy.ready_after + REDEPLOY_SETTLE;
    let measure_from = measurement.started + measurement.warmup;
    let mut before = driver::new_histogram();
    let mut during = driver::new_histogram();
    let (mut window_requests, mut window_failed) = (0, 0);
    for sample in &measurement.samples {
        if sample.intended >= measure_from && sample.intended < redeploy.started && sample.ok {
            let _ = before.record(sample.latency_us.max(1));
        } else if sample.intended >= redeploy.started && sample.intended < window_end {
            window_requests += 1;
            if sample.ok {
                let _ = during.record(sample.latency_us.max(1));
            } else {
                window_failed += 1;
            }
        }
    }
    RedeployResult {
        operation: change.to_string(),
        units: redeploy.units.clone(),
        rate_rps: rate,
        at_s: redeploy
            .started
            .saturating_duration_since(measure_from)
            .as_secs_f64(),
        drained_ms: redeploy.drained_after.as_secs_f64() * 1e3,
        ready_ms: redeploy.ready_after.as_secs_f64() * 1e3,
        window_requests,
        window_failed,
        latency_before_us: Percentiles::of(&before),
        latency_during_us: Percentiles::of(&during),
        old_processes_left: redeploy
            .old_pids
            .iter()
            .filter(|pid| cost::usage(**pid).is_some())
            .count(),
        old_endings: redeploy.old_endings.clone(),
        step: Box::new(step),
    }
}

fn unit_pids(live: &LiveDeployment) -> Vec<(String, u32)> {
    live.units.iter().map(|u| (u.name.clone(), u.pid)).collect()
}

/// A redeploy step lasts at least this long, so there is a before and an after.
const REDEPLOY_MIN_STEP: Duration = Duration::from_secs(6);

/// Which operation's change is redeployed live after the load steps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redeploy {
    Off,
    /// The first entrypoint's operation (visible to every architecture's traffic).
    FirstEntrypoint,
    Operation(String),
}

/// How the load of each architecture is shaped.
#[derive(Debug, Clone, PartialEq)]
pub enum LoadMode {
    /// The scenario's `[load] rates`, one open-loop step each.
    ScenarioRates,
    /// These rates instead of the scenario's.
    Rates(Vec<u32>),
    /// One closed-loop step: this many connections, as fast as possible.
    Closed { connections: usize },
    /// Open-loop steps at rising rates until the architecture saturates.
    Sweep(SweepLimits),
}

/// Bounds of a rate sweep.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepLimits {
    pub start_rps: u32,
    /// Each step's rate is the previous one times this.
    pub factor: f64,
    pub max_rps: u32,
    /// Saturated once the step's p99 exceeds this (µs).
    pub p99_bound_us: u64,
}

impl Default for SweepLimits {
    fn default() -> Self {
        SweepLimits {
            start_rps: 50,
            factor: 1.5,
            max_rps: 20_000,
            p99_bound_us: 50_000,
        }
    }
}

/// Decides the next step's schedule from the steps so far.
struct StepPlanner {
    mode: LoadMode,
    rates: Vec<u32>,
    issued: usize,
    knee: Option<Knee>,
}

impl StepPlanner {
    fn new(mode: &LoadMode, load: &LoadProfile) -> Self {
        let rates = match mode {
            LoadMode::Rates(rates) => rates.clone(),
            LoadMode::Sweep(_) => Vec::new(), // filled with the rates that held
            _ => load.rates.clone(),
        };
        StepPlanner {
            mode: mode.clone(),
            rates,
            issued: 0,
            knee: None,
        }
    }

    fn next_schedule(&mut self, last: Option<&StepResult>) -> Option<Schedule> {
        let schedule = match &self.mode {
            LoadMode::ScenarioRates | LoadMode::Rates(_) => self
                .rates
                .get(self.issued)
                .map(|&rate| Schedule::OpenLoop { rate }),
            LoadMode::Closed { connections } => {
                (self.issued == 0).then_some(Schedule::ClosedLoop {
                    connections: *connections,
                })
            }
            LoadMode::Sweep(limits) => self
                .next_sweep_rate(limits.clone(), last)
                .map(|rate| Schedule::OpenLoop { rate }),
        };
        self.issued += usize::from(schedule.is_some());
        schedule
    }

    fn next_sweep_rate(&mut self, limits: SweepLimits, last: Option<&StepResult>) -> Option<u32> {
        let Some(last) = last else {
            return Some(limits.start_rps);
        };
        let saturated = if !last.valid {
            Some(last.invalid_reason.clone().unwrap_or_default())
        } else if last.latency_us.p99 > limits.p99_bound_us {
            Some(format!(
                "p99 {} µs above the bound of {} µs",
                last.latency_us.p99, limits.p99_bound_us
            ))
        } else {
            None
        };
        if let Some(reason) = saturated {
            self.knee = Some(Knee {
                last_good_rps: self.rates.last().copied(),
                saturated_at_rps: last.target_rps,
                reason,
            });
            return None;
        }
        self.rates.push(last.target_rps);
        let next =
            ((f64::from(last.target_rps) * limits.factor).ceil() as u32).max(last.target_rps + 1);
        if next > limits.max_rps {
            self.knee = Some(Knee {
                last_good_rps: Some(last.target_rps),
                saturated_at_rps: last.target_rps,
                reason: format!(
                    "not saturated up to the sweep's limit of {} req/s",
                    limits.max_rps
                ),
            });
            return None;
        }
        Some(next)
    }

    fn knee(&self) -> Option<Knee> {
        self.knee.clone()
    }
}

fn targets(
    live: &LiveDeployment,
    scenario: &crate::scenario::Scenario,
) -> Result<Vec<Target>, driver::DriverError> {
    scenario
        .entrypoints
        .iter()
        .map(|entry| {
            let size = scenario
                .operation(&entry.op)
                .map_or(0, |op| op.request_bytes);
            Target::new(&entry.op, live.addr_of(&entry.op).unwrap_or_default(), size)
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
    bar.set_message(match config.schedule {
        Schedule::OpenLoop { rate } => format!("{rate} req/s"),
        Schedule::ClosedLoop { connections } => format!("{connections} conns"),
    });
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
