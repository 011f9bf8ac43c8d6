//! One architecture of a run: deploy it (timing cold starts), record its deploy cost,
//! check equivalence, run the planned load steps with the units' CPU and memory sampled
//! alongside, then the live redeploy.

use super::endpoints::Endpoints;
use super::options::{Resolved, RunOptions};
use super::report::{RunReport, StepStart};
use super::steps::StepPlanner;
use super::RunError;
use crate::cost::{self, Sampler};
use crate::delays;
use crate::deploy::{DeployEnv, DeploySpec};
use crate::driver::engine::Schedule;
use crate::driver::{self, requests::RequestGen, StepConfig, Target};
use crate::launch::{LaunchError, LiveDeployment};
use crate::plan::{self, Architecture, Deployment};
use crate::results::{
    ArchitectureResult, ColdStart, DeployCost, RunResults, StepNoise, StepResult, UnitInfo,
    UnitKind,
};
use crate::scenario::Scenario;
use crate::scenario::ScenarioSource;
use tokio_util::sync::CancellationToken;

/// What a round measures: units this run launched, or a deployment it did not start
/// (`run --endpoints`), whose processes it cannot see.
pub(super) enum Deployed<'a> {
    Live(&'a mut LiveDeployment),
    External(&'a plan::Deployment, &'a Endpoints),
}

impl Deployed<'_> {
    fn plan(&self) -> &plan::Deployment {
        match self {
            Deployed::Live(live) => &live.plan,
            Deployed::External(plan, _) => plan,
        }
    }

    /// The units' processes (none of an outside deployment's are visible).
    fn pids(&self) -> Vec<(String, u32)> {
        match self {
            Deployed::Live(live) => unit_pids(live),
            Deployed::External(..) => Vec::new(),
        }
    }

    fn check_alive(&mut self) -> Result<(), LaunchError> {
        match self {
            Deployed::Live(live) => live.check_alive(),
            Deployed::External(..) => Ok(()),
        }
    }

    fn live(&self) -> Option<&LiveDeployment> {
        match self {
            Deployed::Live(live) => Some(live),
            Deployed::External(..) => None,
        }
    }

    /// The driver's targets: each entrypoint's unit, as the driver reaches it.
    fn targets(&self, scenario: &Scenario) -> Result<Vec<Target>, driver::DriverError> {
        scenario
            .entrypoints
            .iter()
            .map(|entry| {
                let size = scenario
                    .operation(&entry.op)
                    .map_or(0, |op| op.request_bytes);
                match self {
                    Deployed::Live(live) => {
                        let replicas = entry_replicas(live, &entry.op)?;
                        let target = Target::replicated(&entry.op, replicas, size);
                        Ok(target.secured(live.options.driver_credentials()))
                    }
                    Deployed::External(_, endpoints) => {
                        let addr = endpoints
                            .addrs
                            .get(&entry.op)
                            .map_or(String::new(), |a| a.to_string());
                        let target = Target::new(&entry.op, &addr, size)?;
                        Ok(match endpoints.hosts.get(&entry.op) {
                            Some(host) => target.with_host(host),
                            None => target,
                        })
                    }
                }
            })
            .collect()
    }
}

/// What every architecture of one run shares.
pub(super) struct ArchRun<'a> {
    pub source: &'a ScenarioSource,
    pub options: &'a RunOptions,
    pub resolved: &'a Resolved,
    /// What every deployment of the run shares (binary, PKIs, containers).
    pub env: &'a DeployEnv,
    pub report: &'a dyn RunReport,
    /// Measured steps taken so far in the run (every deployment's).
    pub steps_taken: &'a std::cell::Cell<usize>,
    /// Rounds the run takes as far as it knows (under `--precision`, the most it may take
    /// until the pilot decides): the redeploy and fault steps run in the last.
    pub rounds: usize,
    pub cancel: &'a CancellationToken,
    /// The run's tracing, under `--trace`: each step's traced requests go to it.
    pub traces: Option<&'a crate::traces::TraceSession>,
}

impl ArchRun<'_> {
    /// Deploys one architecture and measures it; hands back the deployment (if it started)
    /// for the caller to stop once the results are written.
    /// `index` is the deployment's place in the run's specs and in `results.architectures`.
    pub(super) async fn run(
        &self,
        round: usize,
        spec: &DeploySpec,
        index: usize,
        results: &mut RunResults,
    ) -> (Option<RunError>, Option<LiveDeployment>) {
        let deployment = spec.plan();
        let architecture = deployment.architecture.clone();
        if let Some(endpoints) = &self.options.endpoints {
            let mut deployed = Deployed::External(deployment, endpoints);
            return (
                self.measure(round, &mut deployed, index, results).await,
                None,
            );
        }
        tracing::info!(%architecture, units = deployment.units.len(), "deploying");
        self.report.activity(Some(&format!(
            "round {}/{}: deploying {} ({} units) and timing its cold starts",
            round + 1,
            self.rounds,
            deployment.label(),
            deployment.units.len()
        )));
        let launched = tokio::select! {
            launched = self.deploy(spec) => Some(launched),
            _ = self.cancel.cancelled() => None,
        };
        self.report.activity(None);
        let Some(launched) = launched else {
            return (Some(RunError::Interrupted), None);
        };
        let arch_result = &mut results.architectures[index];
        let (mut live, cold_start) = match launched {
            Ok(launched) => launched,
            Err(source) => {
                let error = RunError::Launch {
                    architecture,
                    source,
                };
                return (Some(error), None);
            }
        };
        match arch_result.deploy.as_mut() {
            // Later rounds add their cold starts to the first round's deploy cost.
            Some(deploy) => {
                let mut samples = std::mem::take(&mut deploy.cold_start.samples_ms);
                samples.extend(&cold_start.samples_ms);
                let per_unit = std::mem::take(&mut deploy.cold_start.per_unit_median_ms);
                deploy.cold_start = cost::cold_start(samples, Default::default());
                deploy.cold_start.per_unit_median_ms = per_unit;
            }
            None => {
                arch_result.cold_start_ms = Some(live.cold_start.as_secs_f64() * 1e3);
                arch_result.deploy = Some(self.deploy_cost(&live, cold_start));
            }
        }
        let error = self
            .measure(round, &mut Deployed::Live(&mut live), index, results)
            .await;
        (error, Some(live))
    }

    /// Measures cold start over repeated deployments, the last of which is kept running.
    async fn deploy(&self, spec: &DeploySpec) -> Result<(LiveDeployment, ColdStart), LaunchError> {
        // The cold starts are spread over the rounds, so they are interleaved too.
        let per_round = self
            .options
            .cold_starts
            .div_ceil(self.options.repeat.max(1));
        let launch = spec
            .launch_options(self.env)
            .map_err(|e| LaunchError::Security(e.to_string()))?;
        cost::deploy_timed(spec.plan(), &launch, per_round.max(1)).await
    }

    fn deploy_cost(&self, live: &LiveDeployment, cold_start: ColdStart) -> DeployCost {
        let plan = &live.plan;
        // As containers, what each unit ships is the image; as processes, the binary; and
        // behind sidecars, its sidecar's too.
        let sidecar = match plan.mesh {
            crate::plan::Mesh::Sidecar => self.env.sidecar_artifact_bytes(),
            crate::plan::Mesh::None => 0,
        };
        let artifact = self.env.artifact_bytes() + sidecar;
        let mut idle_rss_bytes = cost::rss_now(&unit_pids(live));
        let sidecar_rss = cost::rss_now(&live.sidecar_pids());
        idle_rss_bytes.retain(|name, _| !sidecar_rss.contains_key(name));
        let mut memory = cost::memory_now(&unit_pids(live));
        memory.retain(|name, _| idle_rss_bytes.contains_key(name));
        // Only when every unit's could be read: a part of the units is no total.
        let split = (memory.len() == idle_rss_bytes.len()).then_some(&memory);
        let total = |f: fn(&cost::Memory) -> u64| split.map(|m| m.values().map(f).sum());
        DeployCost {
            sidecar_idle_rss_bytes_total: (!sidecar_rss.is_empty())
                .then(|| sidecar_rss.values().sum()),
            sidecars: (!sidecar_rss.is_empty()).then_some(sidecar_rss.len()),
            service_units: plan.units.iter().filter(|u| !u.is_state()).count(),
            state_units: plan.units.iter().filter(|u| u.is_state()).count(),
            processes: live.units.len(),
            endpoints: plan.units.iter().map(|u| cost::endpoints(&u.role)).sum(),
            artifact_bytes_per_unit: artifact,
            artifact_bytes_total: artifact * live.units.len() as u64,
            cold_start,
            idle_rss_bytes_total: idle_rss_bytes.values().sum(),
            idle_pss_bytes_total: total(|m| m.pss),
            idle_private_bytes_total: total(|m| m.private),
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

    /// The share of `plan`'s requests traced: the run's sample when it is traced, else none.
    pub(super) fn trace_sample(&self, plan: &plan::Deployment) -> f64 {
        match (plan.tracing, &self.options.trace) {
            (plan::Tracing::Traced, Some(trace)) => trace.sample,
            _ => 0.0,
        }
    }

    pub(super) fn step_config(&self, schedule: Schedule) -> StepConfig {
        StepConfig {
            schedule,
            warmup: self.resolved.load.warmup,
            duration: self.resolved.load.duration,
            timeout: self.resolved.load.timeout,
            in_flight_cap: self.options.in_flight_cap,
            spin: driver::DEFAULT_SPIN,
            network: self.resolved.network().clone(),
            keep_samples: false,
            // Set per deployment: only a traced one's requests carry a traceparent.
            trace_sample: 0.0,
            threads: self
                .options
                .threads
                .unwrap_or_else(|| driver::auto_threads(schedule)),
            load_cores: self.options.driver_cores(),
        }
    }

    async fn measure(
        &self,
        round: usize,
        deployed: &mut Deployed<'_>,
        slot: usize,
        results: &mut RunResults,
    ) -> Option<RunError> {
        let scenario = &self.source.scenario;
        let architecture = deployed.plan().architecture.clone();
        let targets = match deployed.targets(scenario) {
            Ok(targets) => targets,
            Err(source) => {
                return Some(RunError::Driver {
                    architecture,
                    source,
                })
            }
        };
        if round == 0 {
            self.report.activity(Some(&format!(
                "{}: equivalence check ({} requests, one at a time)",
                deployed.plan().label(),
                self.options.equivalence_requests
            )));
            let check = tokio::select! {
                check = self.check_equivalence(&targets, deployed.plan(), results) => check,
                _ = self.cancel.cancelled() => Err(RunError::Interrupted),
            };
            self.report.activity(None);
            if let Err(error) = check {
                return Some(error);
            }
        }
        let mut sweep = StepPlanner::new(&self.options.load, &self.resolved.load);
        // Each round's requests are a stream of their own, the same for every architecture.
        let mut index = (round as u64) << 32;
        let mut last: Option<StepResult> = None;
        while let Some(schedule) = sweep.next_schedule(last.as_ref()) {
            index += 1;
            let mut config = self.step_config(schedule);
            config.trace_sample = self.trace_sample(deployed.plan());
            let mut step = match self.step(deployed, &targets, &config, index).await {
                Ok(step) => step,
                Err(error) => return Some(error),
            };
            step.round = round;
            last = Some(step.clone());
            tracing::info!(%architecture, rate = step.target_rps, achieved = step.achieved_rps, p50_us = step.latency_us.p50, p99_us = step.latency_us.p99, "step done");
            results.architectures[slot].steps.push(step);
            self.report.step_done(results);
            if let Err(source) = deployed.check_alive() {
                return Some(RunError::Launch {
                    architecture,
                    source,
                });
            }
            if self.cancel.is_cancelled() {
                return Some(RunError::Interrupted);
            }
        }
        let arch_result = &mut results.architectures[slot];
        if round == 0 {
            arch_result.knee = sweep.knee();
        }
        let last_round = round + 1 == self.rounds;
        let change = self.resolved.redeploy.as_ref().filter(|_| last_round);
        if let (Some(change), Deployed::Live(live)) = (change, &mut *deployed) {
            let index = index + 1;
            match self
                .redeploy_under_load(live, &targets, change, index)
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
        if let (true, Deployed::Live(live)) = (last_round, deployed) {
            for (n, fault) in self.resolved.faults.iter().enumerate() {
                let index = index + 2 + n as u64;
                match self.fault_under_load(live, &targets, fault, index).await {
                    Ok(result) => results.architectures[slot].faults.push(result),
                    Err(error) => return Some(error),
                }
                self.report.step_done(results);
                if self.cancel.is_cancelled() {
                    return Some(RunError::Interrupted);
                }
            }
        }
        None
    }

    /// One load step with the units' CPU and memory sampled alongside.
    async fn step(
        &self,
        deployed: &Deployed<'_>,
        targets: &[Target],
        config: &StepConfig,
        index: u64,
    ) -> Result<StepResult, RunError> {
        let architecture = deployed.plan().architecture.clone();
        // Only units this run started report the delays they injected.
        let delaying = deployed.live().filter(|_| config.network.adds_delay());
        if let Some(live) = delaying {
            // Start the step's count afresh: the equivalence check and earlier steps
            // delayed messages too.
            if let Err(error) = delays::take_unit_delay_errors(live).await {
                tracing::warn!(%error, "cannot reset the units' injected-delay errors");
            }
        }
        if let Some(live) = deployed.live() {
            // The step's count starts afresh, as the delays' does.
            if let Err(error) = cost::take_codec_time(live).await {
                tracing::warn!(%error, "cannot reset the units' codec time");
            }
        }
        let (measurement, usage, noise) = self
            .measured_step(
                architecture.clone(),
                cost::UnitPids::new(deployed.pids()),
                targets,
                config,
                index,
            )
            .await?;
        let mut step = self.step_result(deployed.plan(), &measurement);
        if let Some(traces) = self.traces {
            let rate = f64::from(step.target_rps);
            traces.record_step(&self.entry_names(), rate, &measurement.traced, true);
        }
        if let Some(live) = deployed.live() {
            // An outside deployment's processes are not visible: its CPU is not measured.
            step = cost::with_units(step, usage);
            match cost::take_codec_time(live).await {
                Ok(time) => step = cost::with_codec_time(step, time),
                Err(error) => tracing::warn!(%error, "cannot take the units' codec time"),
            }
        }
        step.noise = noise;
        if let Some(live) = delaying {
            delays::attach_unit_delay_errors(&mut step, live).await;
        }
        Ok(step)
    }

    pub(super) async fn measured_step(
        &self,
        architecture: Architecture,
        pids: cost::UnitPids,
        targets: &[Target],
        config: &StepConfig,
        index: u64,
    ) -> Result<(driver::StepMeasurement, cost::UnitsUsage, Option<StepNoise>), RunError> {
        let scenario = &self.source.scenario;
        let generator = RequestGen::new(scenario, self.resolved.seed.wrapping_add(index));
        let place = super::meta::StepPlace::of_index(index, self.rounds);
        self.steps_taken.set(self.steps_taken.get() + 1);
        let progress = self.report.step_started(&StepStart {
            label: architecture.name().to_string(),
            round: place.round,
            rounds: place.rounds,
            schedule: config.schedule,
            total: config.warmup + config.duration,
            step: self.steps_taken.get(),
            steps: self.resolved.planned_steps(),
        });
        let machine_before = cost::MachineTimes::now();
        let sampler = Sampler::start(pids);
        let measured = driver::run_step(targets, generator, config, progress, self.cancel).await;
        let usage = sampler.stop();
        let noise = machine_before.and_then(|before| before.noise_since(usage.cpu_ms_total));
        let measurement = measured.map_err(|source| RunError::Driver {
            architecture,
            source,
        })?;
        Ok((measurement, usage, noise))
    }

    /// The entrypoints' operations, in scenario order (the order of a step's entries).
    pub(super) fn entry_names(&self) -> Vec<String> {
        let entrypoints = &self.source.scenario.entrypoints;
        entrypoints.iter().map(|e| e.op.clone()).collect()
    }

    pub(super) fn step_result(
        &self,
        plan: &plan::Deployment,
        measurement: &driver::StepMeasurement,
    ) -> StepResult {
        let entry_names = self.entry_names();
        let mut step =
            crate::driver::summarize::step_result(measurement, &entry_names, &plan.static_hops);
        if self.cancel.is_cancelled() {
            step.valid = false;
            step.invalid_reason = Some("interrupted before the step finished".into());
        }
        step
    }
}

/// Every process serving entrypoint `op`, as the driver reaches it.
pub(super) fn entry_replicas(
    live: &LiveDeployment,
    op: &str,
) -> Result<Vec<driver::Replica>, driver::DriverError> {
    live.endpoints_of(op)
        .into_iter()
        .map(|unit| {
            let addr = unit
                .addr
                .parse()
                .map_err(|_| driver::DriverError::BadAddress {
                    op: op.to_string(),
                    addr: unit.addr.clone(),
                })?;
            Ok(driver::Replica {
                addr,
                process: std::sync::Arc::from(unit.name.as_str()),
            })
        })
        .collect()
}

/// Points every target at the processes now serving its entrypoint (after a redeploy or
/// a restart moved some).
pub(super) fn retarget(live: &LiveDeployment, targets: &[Target]) {
    for target in targets {
        if let Ok(replicas) = entry_replicas(live, &target.op) {
            target.addr.set_all(replicas);
        }
    }
}

/// Every unit process, then (under a mesh) every sidecar, as the sampler follows them:
/// the same names in the same order when a unit is replaced (its sidecar stays).
pub(super) fn unit_pids(live: &LiveDeployment) -> Vec<(String, u32)> {
    let units = live.units.iter().map(|u| (u.name.clone(), u.pid));
    units.chain(live.sidecar_pids()).collect()
}

/// The result of a deployment before anything ran.
pub(super) fn planned(plan: &Deployment) -> ArchitectureResult {
    ArchitectureResult {
        architecture: plan.architecture.clone(),
        security: plan.security,
        transport: plan.transport,
        mesh: plan.mesh,
        tracing: plan.tracing,
        units: plan
            .units
            .iter()
            .map(|unit| UnitInfo {
                name: unit.name.clone(),
                role: if unit.is_state() {
                    UnitKind::State
                } else {
                    UnitKind::Service
                },
                hosts: unit.hosts.clone(),
            })
            .collect(),
        unit_count: plan.units.len(),
        state_unit_count: plan.units.iter().filter(|u| u.is_state()).count(),
        cold_start_ms: None,
        static_hops: plan.static_hops.clone(),
        critical_path_hops: plan.critical_path_hops.clone(),
        steps: Vec::new(),
        knee: None,
        deploy: None,
        error: None,
        summary: Vec::new(),
        replicas: plan
            .units
            .iter()
            .filter(|u| u.replicas > 1)
            .map(|u| (u.name.clone(), u.replicas))
            .collect(),
        faults: Vec::new(),
        traces: None,
    }
}
