//! What a run was asked to do ([`RunOptions`]), and the same options resolved once against
//! a scenario ([`Resolved`]): the deployments (the scenario with its overrides, each cut
//! once per security mode), the load profile, seed and redeploy target every later stage
//! reads, so none of them recomputes a default.

use crate::deploy::{DeployOverrides, DeploySpec, DeployTarget};
use crate::plan::SecurityMode;
use crate::plan::{self, sweep, Architecture, Deployment, PlanError, Series, Tracing};
use crate::scenario::fault::Fault;
use crate::scenario::{LoadProfile, Scenario, ScenarioSource};
use grain_runtime::network::NetworkModel;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Requests in the equivalence check, sent one at a time to every architecture.
pub const DEFAULT_EQUIVALENCE_REQUESTS: usize = 30;
/// Most requests in flight at once, by default.
pub const DEFAULT_IN_FLIGHT_CAP: usize = 10_000;
/// Rounds per run, by default (`--quick` too): enough for an interval.
pub const DEFAULT_ROUNDS: usize = 3;
/// The fastest rate the hop floor is measured at: one request at a time on loopback holds
/// about this much on a small machine, and no faster floor is needed to read a hop.
pub const MAX_FLOOR_RATE: u32 = 5_000;
/// Deployments timed for cold start per architecture, by default.
pub const DEFAULT_COLD_STARTS: usize = 5;

/// How to run a scenario.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The cuts to run, by name (built-in, the scenario's `[[cut]]`s, or `sweep-K`); empty
    /// means nano, micro, monolith and every `[[cut]]` of the scenario.
    pub architectures: Vec<Architecture>,
    /// Cuts of a generated series added to `architectures` (`--sweep N`).
    pub sweep: Option<SweepRequest>,
    pub quick: bool,
    /// Overrides the scenario's seed.
    pub seed: Option<u64>,
    pub out_dir: PathBuf,
    /// The `grainbench` binary that serves units.
    pub unit_binary: PathBuf,
    pub equivalence_requests: usize,
    /// Most requests in flight at once (at least 1).
    pub in_flight_cap: usize,
    pub load: LoadMode,
    /// Deployments timed for cold start (at least 1; the last one is measured under load).
    pub cold_starts: usize,
    /// Which operation's change is redeployed under load after the steps.
    pub redeploy: RedeployPolicy,
    /// Overrides the measured time per step.
    pub duration: Option<Duration>,
    /// Overrides the warm-up per step.
    pub warmup: Option<Duration>,
    /// Written on every unit's command line (`--run-id`) so this run's processes can be found.
    pub run_id: String,
    /// Rounds: every round runs every architecture's steps, in a seeded shuffled order.
    pub repeat: usize,
    /// Overrides the scenario's `[load] p99_budget_ms`.
    pub p99_budget: Option<Duration>,
    /// Rounds until sure (`--precision`): after the `repeat` pilot rounds (at least 3),
    /// as many more as every verdict ratio's interval needs to be within the target.
    pub precision: Option<Precision>,
    /// Load threads per step (`--threads`); `None`: from the rate and the cores.
    pub threads: Option<usize>,
    /// Drive this deployment instead of launching any (`--endpoints FILE`).
    pub endpoints: Option<super::endpoints::Endpoints>,
    /// Faults injected in a fault step of every cut (`--fault`), besides the scenario's
    /// `[[fault]]`s.
    pub faults: Vec<Fault>,
    /// The per-deployment knobs over the scenario's own (replicas, network, resilience,
    /// security modes, keep-alive): the same for every command that deploys.
    pub deploy: DeployOverrides,
    /// Where units run (`--target`): local processes, or containers on a bridge network.
    pub target: DeployTarget,
    /// Trace a share of the load's requests (`--trace`), and where spans also go.
    pub trace: Option<crate::traces::TraceOptions>,
    /// The cores every unit process is confined to (`--unit-cpus`; none: anywhere).
    pub unit_cores: Option<crate::launch::cores::UnitCores>,
}

impl RunOptions {
    /// Defaults for `scenario`: every architecture, results under `reports/<name>/`.
    pub fn new(scenario_name: &str, unit_binary: PathBuf) -> Self {
        RunOptions {
            architectures: Vec::new(),
            sweep: None,
            quick: false,
            seed: None,
            out_dir: PathBuf::from("reports").join(scenario_name),
            unit_binary,
            equivalence_requests: DEFAULT_EQUIVALENCE_REQUESTS,
            in_flight_cap: DEFAULT_IN_FLIGHT_CAP,
            load: LoadMode::ScenarioRates,
            cold_starts: DEFAULT_COLD_STARTS,
            redeploy: RedeployPolicy::FirstEntrypoint,
            duration: None,
            warmup: None,
            run_id: super::meta::new_run_id(),
            repeat: DEFAULT_ROUNDS,
            p99_budget: None,
            precision: None,
            threads: None,
            endpoints: None,
            faults: Vec::new(),
            deploy: DeployOverrides::default(),
            target: DeployTarget::Processes,
            trace: None,
            unit_cores: None,
        }
    }

    /// The scenario's faults then `--fault`'s, each on an operation the scenario has.
    fn faults(&self, scenario: &Scenario) -> Result<Vec<Fault>, OptionsError> {
        for fault in &self.faults {
            if scenario.operation(&fault.operation).is_none() {
                return Err(OptionsError::UnknownFaultOperation {
                    fault: fault.to_string(),
                    scenario: scenario.name.clone(),
                });
            }
        }
        Ok(scenario
            .faults
            .iter()
            .chain(&self.faults)
            .cloned()
            .collect())
    }

    /// These options applied to `scenario`, or why they cannot be.
    pub fn resolve(&self, scenario: &Scenario) -> Result<Resolved, OptionsError> {
        let mut load = if self.quick {
            scenario.load.quick()
        } else {
            scenario.load.clone()
        };
        load.duration = self.duration.unwrap_or(load.duration);
        load.warmup = self.warmup.unwrap_or(load.warmup);
        let redeploy = match &self.redeploy {
            RedeployPolicy::Off => None,
            RedeployPolicy::FirstEntrypoint => scenario.entrypoints.first().map(|e| e.op.clone()),
            RedeployPolicy::Operation(op) if scenario.operation(op).is_some() => Some(op.clone()),
            RedeployPolicy::Operation(op) => {
                return Err(OptionsError::UnknownChange {
                    op: op.clone(),
                    scenario: scenario.name.clone(),
                })
            }
        };
        let first_rate = match &self.load {
            LoadMode::Rates(rates) => rates.first(),
            _ => load.rates.first(),
        };
        // A deployment grainbench did not start: its cut's plan, plaintext, no redeploy, and
        // no modelled delay (its network is its own).
        let external = self.endpoints.as_ref();
        let mut applied = self.deploy.apply(scenario);
        if external.is_some() {
            applied.network = NetworkModel::loopback();
            applied.security.modes = vec![SecurityMode::None];
            applied.security.keepalive = true;
            applied.transports = vec![Default::default()];
        }
        let applied = Arc::new(applied);
        let specs = match external {
            Some(endpoints) => external_specs(&applied, endpoints),
            None => DeploySpec::each_mode(&applied, &self.cuts(&applied)?, &self.tracings())
                .map_err(OptionsError::Cut)?,
        };
        let faults = self.faults(scenario)?;
        if external.is_some() && !faults.is_empty() {
            return Err(OptionsError::FaultsNeedUnits);
        }
        if self.trace.is_some() {
            if external.is_some() {
                return Err(OptionsError::TraceNeedsUnits);
            }
            if !matches!(self.target, DeployTarget::Processes) {
                return Err(OptionsError::TraceInContainers);
            }
        }
        Ok(Resolved {
            options: self.clone(),
            scenario: applied,
            specs,
            faults,
            seed: self.seed.unwrap_or(scenario.seed),
            redeploy_rate: first_rate.copied().unwrap_or(100),
            redeploy: redeploy.filter(|_| external.is_none()),
            load,
        })
    }
}

/// An outside deployment's plan: its cut's, named by its label. The endpoints file was
/// checked against this scenario when it was read.
fn external_specs(
    scenario: &Arc<Scenario>,
    endpoints: &super::endpoints::Endpoints,
) -> Vec<DeploySpec> {
    let mut plans: Vec<Deployment> = plan::plan(scenario, &endpoints.cut).into_iter().collect();
    for plan in &mut plans {
        plan.architecture = Architecture::Named(endpoints.label.clone());
    }
    plans
        .into_iter()
        .map(|plan| DeploySpec::of_plan(scenario.clone(), plan))
        .collect()
}

impl RunOptions {
    /// The cores the driver's load threads run on: with the units confined, the cores they
    /// leave (none: wherever the scheduler puts them).
    pub fn driver_cores(&self) -> Option<crate::launch::cores::UnitCores> {
        self.unit_cores.as_ref().and_then(|units| units.rest())
    }

    /// How each cut is traced: not at all, traced (`--trace`), or both ways
    /// (`--trace-overhead`).
    pub fn tracings(&self) -> Vec<Tracing> {
        match &self.trace {
            None => vec![Tracing::Off],
            Some(trace) if trace.overhead => vec![Tracing::Off, Tracing::Traced],
            Some(_) => vec![Tracing::Traced],
        }
    }

    /// Every cut to run, in order and without repeats: the named ones, then the sweep's
    /// picks.
    fn cuts(&self, scenario: &Scenario) -> Result<Vec<Architecture>, OptionsError> {
        let mut cuts = self.architectures.clone();
        if cuts.is_empty() {
            cuts = Architecture::ALL.to_vec();
            cuts.extend(
                scenario
                    .cuts
                    .iter()
                    .map(|c| Architecture::Named(c.name.clone())),
            );
        }
        if let Some(request) = &self.sweep {
            let series =
                sweep::SweepSeries::generate(scenario, request.series).map_err(|source| {
                    OptionsError::Cut(PlanError::Sweep {
                        scenario: scenario.name.clone(),
                        source,
                    })
                })?;
            cuts.extend(sweep::choose(scenario, &series, request.count));
        }
        let mut seen = std::collections::BTreeSet::new();
        cuts.retain(|cut| seen.insert(cut.clone()));
        Ok(cuts)
    }
}

/// `--sweep N`: that many cuts of a generated series, spread by unit count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SweepRequest {
    pub series: Series,
    pub count: usize,
}

/// Checks a batch of runs before anything is deployed and resolves each once: the
/// options fit each scenario, no two runs write the same directory, and every directory
/// is writable.
pub fn preflight(runs: &[(&ScenarioSource, &RunOptions)]) -> Result<Vec<Resolved>, PreflightError> {
    let mut resolved = Vec::with_capacity(runs.len());
    for (index, (source, options)) in runs.iter().enumerate() {
        resolved.push(options.resolve(&source.scenario)?);
        if let Some((other, _)) = runs[..index]
            .iter()
            .find(|(_, o)| o.out_dir == options.out_dir)
        {
            return Err(PreflightError::SameOutput {
                first: other.path.clone(),
                second: source.path.clone(),
                dir: options.out_dir.clone(),
            });
        }
        crate::results::check_out_dir(&options.out_dir)?;
    }
    Ok(resolved)
}

/// Why a batch of runs cannot start.
#[derive(Debug, thiserror::Error)]
pub enum PreflightError {
    #[error(transparent)]
    Options(#[from] OptionsError),
    #[error(
        "{} and {} would both write {}: give the scenarios different names or --out directories",
        first.display(),
        second.display(),
        dir.display()
    )]
    SameOutput {
        first: PathBuf,
        second: PathBuf,
        dir: PathBuf,
    },
    #[error(transparent)]
    OutDir(#[from] crate::results::ResultsError),
}

/// Options that do not fit the scenario they are applied to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OptionsError {
    #[error("--change {op}: scenario {scenario} has no operation {op:?}")]
    UnknownChange { op: String, scenario: String },
    #[error("--arch: {0}")]
    Cut(#[source] PlanError),
    #[error("--fault {fault}: scenario {scenario} has no such operation")]
    UnknownFaultOperation { fault: String, scenario: String },
    #[error("--fault with --endpoints: grainbench can only inject faults into units it started")]
    FaultsNeedUnits,
    #[error("--trace with --endpoints: grainbench traces only units it started")]
    TraceNeedsUnits,
    #[error(
        "--trace with --target compose is not supported: containers would have to reach \
         the run's span receiver on this host's loopback; trace with local processes"
    )]
    TraceInContainers,
}

/// [`RunOptions`] applied to one scenario, once.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// What was asked.
    pub options: RunOptions,
    /// The scenario with the options' overrides applied (replicas, network, resilience,
    /// security, keep-alive): what every deployment is built from.
    pub scenario: Arc<Scenario>,
    /// Every deployment to run, in the order asked: each cut once per security mode.
    pub specs: Vec<DeploySpec>,
    /// The seed of the request parameters.
    pub seed: u64,
    /// Rates, warm-up, measured time and timeout of every step.
    pub load: LoadProfile,
    /// The operation whose change is redeployed live, if any.
    pub redeploy: Option<String>,
    /// The steady rate the redeploy and the fault steps run at: the first rate this run
    /// uses.
    pub redeploy_rate: u32,
    /// Faults, each injected in a fault step of every cut (last round).
    pub faults: Vec<Fault>,
}

impl Resolved {
    /// The cuts to run, in the order asked, each once.
    pub fn cuts(&self) -> Vec<Architecture> {
        self.cut_plans()
            .into_iter()
            .map(|plan| plan.architecture)
            .collect()
    }

    /// One plan per cut (its first mode's): what the static outline describes.
    pub fn cut_plans(&self) -> Vec<Deployment> {
        let mut plans: Vec<Deployment> = Vec::new();
        for plan in self.specs.iter().map(DeploySpec::plan) {
            if !plans.iter().any(|p| p.architecture == plan.architecture) {
                plans.push(plan.clone());
            }
        }
        plans
    }

    /// Every measured step the run will take (load steps of every round, then each
    /// deployment's redeploy and fault steps), when it is known before the run: a rate
    /// sweep stops where each deployment saturates.
    pub fn planned_steps(&self) -> Option<usize> {
        let rates = match &self.options.load {
            LoadMode::Rates(rates) => rates.len(),
            LoadMode::ScenarioRates => self.load.rates.len(),
            LoadMode::Closed { .. } => 1,
            LoadMode::Sweep(_) => return None,
        };
        if self.options.precision.is_some() {
            return None; // the pilot decides how many rounds
        }
        let per_deployment = rates * self.options.repeat.max(1)
            + usize::from(self.redeploy.is_some())
            + self.faults.len();
        Some(self.specs.len() * per_deployment)
    }

    /// The rate this machine's floor for a hop is measured at: the highest open-loop rate
    /// the run asks for (where the comparison usually falls), else the bare hop's.
    pub fn floor_rate(&self) -> u32 {
        let asked = match &self.options.load {
            LoadMode::Rates(rates) => rates.iter().max(),
            LoadMode::ScenarioRates => self.load.rates.iter().max(),
            LoadMode::Closed { .. } | LoadMode::Sweep(_) => None,
        };
        asked
            .copied()
            .unwrap_or(crate::delays::HOP_CALIBRATION_RATE)
            .min(MAX_FLOOR_RATE)
    }

    /// The network every hop crosses.
    pub fn network(&self) -> &NetworkModel {
        &self.scenario.network
    }

    /// The security modes the run compares, in the order asked.
    pub fn modes(&self) -> Vec<SecurityMode> {
        let mut modes = Vec::new();
        for plan in self.specs.iter().map(DeploySpec::plan) {
            if !modes.contains(&plan.security) {
                modes.push(plan.security);
            }
        }
        modes
    }
}

/// `--precision 10%` with `--max-rounds`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Precision {
    /// The half-width every verdict ratio's interval should have, as a fraction (0.10).
    pub target: f64,
    /// The most rounds the run may take, pilot included.
    pub max_rounds: usize,
    /// The most wall time the rounds may take (`--time-budget`).
    pub time_budget: Option<std::time::Duration>,
}

impl RunOptions {
    /// The pilot's rounds under `--precision` (at least 3), else the rounds asked.
    pub fn pilot_rounds(&self) -> usize {
        match self.precision {
            Some(_) => self.repeat.max(3),
            None => self.repeat.max(1),
        }
    }

    /// The most rounds this run may take: under `--precision`, at least as many after the
    /// pilot as in it ([`crate::stats::least_rounds`]).
    pub fn most_rounds(&self) -> usize {
        match self.precision {
            Some(p) => p
                .max_rounds
                .max(crate::stats::least_rounds(self.pilot_rounds())),
            None => self.repeat.max(1),
        }
    }
}

/// Which operation's change is redeployed live after the load steps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedeployPolicy {
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
    /// The highest rate the sweep runs, and where that limit comes from.
    pub max_rps: u32,
    pub max_source: SweepMax,
    /// Saturated once the step's p99 exceeds this (µs).
    pub p99_bound_us: u64,
}

/// Where a sweep's highest rate comes from: never a constant of ours.
#[derive(Debug, Clone, PartialEq)]
pub enum SweepMax {
    /// The driver's capacity, measured before the run (the default; `max_rps` is the
    /// scenario's rate limit until it is measured).
    DriverCapacity { measured: bool },
    /// `--max-rate`.
    Flag,
}

impl SweepLimits {
    /// Where the sweep stops, in words (for the knee's reason).
    pub fn max_in_words(&self) -> String {
        match self.max_source {
            SweepMax::DriverCapacity { measured: true } => format!(
                "the driver's capacity ({} req/s, measured against a minimal endpoint before the run)",
                self.max_rps
            ),
            SweepMax::DriverCapacity { measured: false } => format!(
                "the scenario rate limit of {} req/s (the driver's capacity could not be measured)",
                self.max_rps
            ),
            SweepMax::Flag => format!("--max-rate {} req/s", self.max_rps),
        }
    }
}

impl Default for SweepLimits {
    fn default() -> Self {
        SweepLimits {
            start_rps: 50,
            factor: 1.5,
            max_rps: crate::scenario::limits::MAX_RATE,
            max_source: SweepMax::DriverCapacity { measured: false },
            p99_bound_us: 50_000,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario() -> Scenario {
        let text = include_str!("../../tests/fixtures/tiny.toml");
        crate::scenario::parse(text).unwrap()
    }

    #[test]
    fn resolve_applies_quick_overrides_and_the_first_rate() {
        let scenario = scenario();
        let mut options = RunOptions::new("tiny", PathBuf::from("grainbench"));
        options.quick = true;
        options.warmup = Some(Duration::ZERO);
        options.load = LoadMode::Rates(vec![70, 90]);
        let resolved = options.resolve(&scenario).unwrap();
        assert_eq!(resolved.load.warmup, Duration::ZERO);
        assert!(resolved.load.duration <= Duration::from_secs(3));
        assert_eq!(resolved.redeploy_rate, 70);
        assert_eq!(resolved.seed, scenario.seed);
        assert_eq!(
            resolved.redeploy.as_deref(),
            Some(scenario.entrypoints[0].op.as_str())
        );
    }

    #[test]
    fn preflight_refuses_two_runs_into_one_directory_and_an_unwritable_one() {
        let text = include_str!("../../tests/fixtures/tiny.toml").to_string();
        let source = |path: &str| ScenarioSource {
            path: PathBuf::from(path),
            text: text.clone(),
            scenario: scenario(),
        };
        let (a, b) = (source("a.toml"), source("b.toml"));
        let dir = tempfile::tempdir().unwrap();
        let mut options = RunOptions::new("tiny", PathBuf::from("grainbench"));
        options.out_dir = dir.path().join("out");
        assert_eq!(preflight(&[(&a, &options)]).unwrap().len(), 1);
        let error = preflight(&[(&a, &options), (&b, &options)]).unwrap_err();
        assert!(
            matches!(error, PreflightError::SameOutput { .. }),
            "{error}"
        );
        assert!(error.to_string().contains("a.toml and b.toml"), "{error}");

        let file = dir.path().join("a-file");
        std::fs::write(&file, "").unwrap();
        options.out_dir = file.join("out");
        let error = preflight(&[(&a, &options)]).unwrap_err();
        assert!(matches!(error, PreflightError::OutDir(_)), "{error}");
    }

    #[test]
    fn an_unknown_change_is_refused() {
        let mut options = RunOptions::new("tiny", PathBuf::from("grainbench"));
        options.redeploy = RedeployPolicy::Operation("nope".into());
        let error = options.resolve(&scenario()).unwrap_err();
        assert!(
            error.to_string().contains("no operation \"nope\""),
            "{error}"
        );
        options.redeploy = RedeployPolicy::Off;
        assert_eq!(options.resolve(&scenario()).unwrap().redeploy, None);
    }
}
