//! The deployment layer between [`crate::plan`] and [`crate::launch`]: every command that
//! deploys a cut (`run`, `up`, `export`, `calibrate`, the driver's capacity ramp and the
//! bare-hop calibration) builds it here, so each per-deployment knob exists once.
//!
//! - [`DeployOverrides`]: the knobs a command line sets over the scenario's own (replicas,
//!   network, resilience, security modes, keep-alive), applied to the scenario once;
//! - [`DeploySpec`]: one deployment: the scenario with its overrides, the cut and the
//!   security mode, with its [`DeploySpec::plan`], [`DeploySpec::launch_options`] and
//!   [`DeploySpec::start`];
//! - [`DeployEnv`]: what the deployments of one command share: the unit binary, the run
//!   id, the work calibration (measured once), one throw-away PKI per security mode (in
//!   memory only) and, under `--target compose`, the run's image and network;
//! - [`probe`]: the minimal one-operation unit the calibrations drive.

pub mod probe;

use crate::launch::container::{ContainerError, ContainerOptions, ContainerRun, ContainerTarget};
use crate::launch::pki::{PkiError, RunPki};
use crate::launch::{self, LaunchError, LaunchOptions, LiveDeployment};
use crate::plan::{
    self, Architecture, Deployment, Mesh, PlanError, SecurityMode, Tracing, Transport,
};
use crate::scenario::Scenario;
use grain_runtime::network::NetworkModel;
use grain_runtime::resilience::Resilience;
use grain_runtime::trace::TraceExport;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// Where units run.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum DeployTarget {
    /// Processes on this machine, on 127.0.0.1 (the default).
    #[default]
    Processes,
    /// Containers built from the units' binary, one bridge network for the run (`--target
    /// compose`), each sized as the options say.
    Compose(ContainerOptions),
}

/// Command-line overrides of the callers' policy.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResilienceOverrides {
    pub retries: Option<u32>,
    /// `Some(None)`: no budget.
    pub retry_budget_percent: Option<Option<f64>>,
    pub timeout_ms: Option<u64>,
}

impl ResilienceOverrides {
    /// `base` with these overrides applied.
    pub fn apply(&self, base: &Resilience) -> Resilience {
        let mut policy = base.clone();
        policy.retries = self.retries.unwrap_or(policy.retries);
        if let Some(budget) = self.retry_budget_percent {
            policy.retry_budget_percent = budget;
        }
        policy.timeout_ms = self.timeout_ms.unwrap_or(policy.timeout_ms);
        policy
    }
}

/// The per-deployment knobs a command sets over the scenario's own. Every command that
/// deploys takes these, so a knob added here exists for `run`, `up` and `export` alike.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeployOverrides {
    /// Processes per service unit, for every service (`--replicas`).
    pub replicas: Option<u32>,
    /// The network every hop crosses (`--network`).
    pub network: Option<NetworkModel>,
    /// The callers' policy (`--retries`, `--retry-budget`, `--call-timeout`).
    pub resilience: ResilienceOverrides,
    /// What the hops speak, each cut deployed once per mode (`--security`); empty: the
    /// scenario's `[security] modes`.
    pub security: Vec<SecurityMode>,
    /// What unit-to-unit hops speak, each cut deployed once per transport
    /// (`--transport`); empty: the scenario's `[transport] modes`.
    pub transports: Vec<Transport>,
    /// Whether units run behind sidecar proxies, each cut deployed once per mode
    /// (`--mesh`); empty: the scenario's `[mesh] modes`.
    pub meshes: Vec<Mesh>,
    /// Whether units reuse connections for their calls (`--no-keepalive`).
    pub keepalive: Option<bool>,
}

impl DeployOverrides {
    /// `scenario` with these overrides applied: what every deployment of it is built from.
    pub fn apply(&self, scenario: &Scenario) -> Scenario {
        let mut scenario = scenario.clone();
        if let Some(n) = self.replicas {
            scenario.services.iter_mut().for_each(|s| s.replicas = n);
        }
        if let Some(network) = &self.network {
            scenario.network = network.clone();
        }
        scenario.resilience = self.resilience.apply(&scenario.resilience);
        if !self.security.is_empty() {
            scenario.security.modes = self.security.clone();
        }
        if !self.transports.is_empty() {
            scenario.transports = self.transports.clone();
        }
        if !self.meshes.is_empty() {
            scenario.meshes = self.meshes.clone();
        }
        if let Some(keepalive) = self.keepalive {
            scenario.security.keepalive = keepalive;
        }
        scenario
    }
}

/// One deployment: a cut of a scenario (its overrides applied), secured by one mode.
#[derive(Debug, Clone)]
pub struct DeploySpec {
    scenario: Arc<Scenario>,
    plan: Deployment,
}

impl DeploySpec {
    /// The deployment of `cut` of `scenario` under `security`, speaking the scenario's
    /// first transport behind its first mesh mode, or why it cannot be planned.
    pub fn new(
        scenario: Arc<Scenario>,
        cut: &Architecture,
        security: SecurityMode,
    ) -> Result<Self, PlanError> {
        let transport = scenario.transports.first().copied().unwrap_or_default();
        let mesh = scenario.meshes.first().copied().unwrap_or_default();
        let plan = plan::plan(&scenario, cut)?
            .secured(security)
            .speaking(transport)
            .meshed(mesh)?;
        Ok(DeploySpec { scenario, plan })
    }

    /// A deployment whose plan is already made (the calibrations' probe).
    pub fn of_plan(scenario: Arc<Scenario>, plan: Deployment) -> Self {
        DeploySpec { scenario, plan }
    }

    /// Every cut of `cuts` once per security mode, transport and mesh mode of the
    /// scenario and per tracing mode of `tracings`, a cut's variants together (run back to
    /// back in each round); an unsupported combination is an error that names it.
    pub fn each_mode(
        scenario: &Arc<Scenario>,
        cuts: &[Architecture],
        tracings: &[Tracing],
    ) -> Result<Vec<DeploySpec>, PlanError> {
        let mut specs = Vec::new();
        for cut in cuts {
            let plan = plan::plan(scenario, cut)?;
            for &mode in &scenario.security.modes {
                for &transport in &scenario.transports {
                    for &mesh in &scenario.meshes {
                        for &tracing in tracings {
                            let variant = plan
                                .clone()
                                .secured(mode)
                                .speaking(transport)
                                .meshed(mesh)?
                                .traced(tracing);
                            specs.push(DeploySpec::of_plan(scenario.clone(), variant));
                        }
                    }
                }
            }
        }
        Ok(specs)
    }

    /// The units, routes and static hops of this deployment.
    pub fn plan(&self) -> &Deployment {
        &self.plan
    }

    /// The scenario it deploys, its overrides applied.
    pub fn scenario(&self) -> &Scenario {
        &self.scenario
    }

    /// How its units are started in `env`: the scenario's network, resilience and
    /// keep-alive, the mode's PKI, the run's containers.
    pub fn launch_options(&self, env: &DeployEnv) -> Result<LaunchOptions, PkiError> {
        let security = &self.scenario.security;
        let mut options = LaunchOptions::new(
            env.unit_binary.clone(),
            env.run_id.clone(),
            env.work_iterations_per_us,
        )
        .with_network(self.scenario.network.clone())
        .with_resilience(self.scenario.resilience.clone())
        .with_security(env.pki(self.plan.security)?, security.keepalive)
        .speaking(self.plan.transport)
        .meshed(self.plan.mesh)
        .in_containers(env.container_target());
        options.worker_threads = env.worker_threads;
        options.unit_cores = env.unit_cores.clone();
        options.trace = env
            .trace_endpoint
            .as_ref()
            .filter(|_| self.plan.tracing == Tracing::Traced)
            .map(|endpoint| TraceExport {
                endpoint: endpoint.clone(),
                attributes: self.trace_attributes(&env.run_id),
            });
        Ok(options)
    }

    /// What every span of this deployment says about it (OTLP resource attributes).
    pub fn trace_attributes(&self, run_id: &str) -> BTreeMap<String, String> {
        let plan = &self.plan;
        [
            ("grain.run", run_id.to_string()),
            ("grain.deployment", plan.label()),
            ("grain.cut", plan.architecture.to_string()),
            ("grain.transport", plan.transport.to_string()),
            ("grain.security", plan.security.to_string()),
            ("grain.mesh", plan.mesh.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// Starts it in `env`; the caller stops it with [`LiveDeployment::shutdown`].
    pub async fn start(&self, env: &DeployEnv) -> Result<LiveDeployment, LaunchError> {
        let options = self
            .launch_options(env)
            .map_err(|e| LaunchError::Security(e.to_string()))?;
        launch::launch(&self.plan, &options).await
    }
}

/// What the deployments of one command share. Dropping it removes the run's containers
/// and network (under `--target compose`).
pub struct DeployEnv {
    /// The `grainbench` binary that serves units.
    pub unit_binary: PathBuf,
    /// Written on every unit's command line, so this run's processes can be found.
    pub run_id: String,
    /// CPU work calibration handed to every unit (measured once per command).
    pub work_iterations_per_us: f64,
    /// Threads of each unit's async runtime (`None`: the units' default).
    pub worker_threads: Option<usize>,
    /// The OTLP/HTTP traces endpoint units send spans to (none: untraced).
    pub trace_endpoint: Option<String>,
    /// The cores every unit process is confined to (`--unit-cpus`; none: anywhere).
    pub unit_cores: Option<crate::launch::cores::UnitCores>,
    pkis: Mutex<Vec<(SecurityMode, Arc<RunPki>)>>,
    containers: Option<ContainerRun>,
}

impl DeployEnv {
    /// Units served by `unit_binary` for run `run_id`, as processes; the work calibration
    /// is measured here, once.
    pub fn new(unit_binary: PathBuf, run_id: String) -> Self {
        let work = grain_runtime::work::measure_iterations_per_us();
        Self::with_work(unit_binary, run_id, work)
    }

    /// The same with a given work calibration (units that do no work need none).
    pub fn with_work(unit_binary: PathBuf, run_id: String, work_iterations_per_us: f64) -> Self {
        DeployEnv {
            unit_binary,
            run_id,
            work_iterations_per_us,
            worker_threads: None,
            trace_endpoint: None,
            unit_cores: None,
            pkis: Mutex::new(Vec::new()),
            containers: None,
        }
    }

    /// Places units on `target`: for containers, checks Docker, builds the run's image
    /// (and, when any of `specs` runs behind sidecars, the sidecar image) and creates its
    /// network (held until this is dropped).
    pub fn place(
        mut self,
        target: &DeployTarget,
        specs: &[&DeploySpec],
    ) -> Result<Self, ContainerError> {
        if let DeployTarget::Compose(options) = target {
            let meshed = specs.iter().any(|s| s.plan.mesh == Mesh::Sidecar);
            let sidecar_proxy = match meshed {
                true => Some(crate::launch::sidecar::proxy_binary().ok_or_else(|| {
                    ContainerError::NoDocker(
                        "--mesh sidecar needs HAProxy on this machine to build the sidecar image (apt-get install haproxy)".into(),
                    )
                })?),
                false => None,
            };
            let options = ContainerOptions {
                sidecar_proxy,
                ..options.clone()
            };
            self.containers = Some(ContainerRun::prepare(
                &self.unit_binary,
                &self.run_id,
                &options,
            )?);
        }
        Ok(self)
    }

    /// The run's containers, when units are containers.
    pub fn container_target(&self) -> Option<Arc<ContainerTarget>> {
        self.containers.as_ref().map(|c| c.target.clone())
    }

    /// The PKI of `mode` (none for plaintext), made the first time it is asked for.
    pub fn pki(&self, mode: SecurityMode) -> Result<Option<Arc<RunPki>>, PkiError> {
        if mode == SecurityMode::None {
            return Ok(None);
        }
        let mut pkis = self.pkis.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, pki)) = pkis.iter().find(|(m, _)| *m == mode) {
            return Ok(Some(pki.clone()));
        }
        let pki = Arc::new(RunPki::new(mode, &self.run_id)?);
        pkis.push((mode, pki.clone()));
        Ok(Some(pki))
    }

    /// What each unit ships: the image as containers, the binary as processes.
    pub fn artifact_bytes(&self) -> u64 {
        match &self.containers {
            Some(run) => run.target.image_bytes,
            None => crate::cost::artifact_bytes(&self.unit_binary),
        }
    }

    /// What each unit's sidecar ships, behind a mesh: the sidecar image as containers,
    /// HAProxy's binary as processes (0 where it cannot be found).
    pub fn sidecar_artifact_bytes(&self) -> u64 {
        match &self.containers {
            Some(run) => run.target.sidecar_image.as_ref().map_or(0, |i| i.bytes),
            None => crate::launch::sidecar::proxy_binary()
                .map_or(0, |path| crate::cost::artifact_bytes(&path)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario() -> Scenario {
        crate::scenario::parse(include_str!("../../tests/fixtures/tiny.toml")).unwrap()
    }

    #[test]
    fn overrides_apply_every_knob_and_leave_the_rest() {
        let base = scenario();
        assert_eq!(DeployOverrides::default().apply(&base), base);
        let overrides = DeployOverrides {
            replicas: Some(3),
            network: Some(crate::scenario::presets::parse("dc").unwrap()),
            resilience: ResilienceOverrides {
                retries: Some(2),
                retry_budget_percent: Some(None),
                timeout_ms: Some(900),
            },
            security: vec![SecurityMode::Mtls, SecurityMode::None],
            transports: vec![Transport::Binary],
            meshes: vec![Mesh::Sidecar],
            keepalive: Some(false),
        };
        let applied = overrides.apply(&base);
        assert!(applied.services.iter().all(|s| s.replicas == 3));
        assert_eq!(applied.network.name, "dc");
        assert_eq!(applied.resilience.retries, 2);
        assert_eq!(applied.resilience.retry_budget_percent, None);
        assert_eq!(applied.resilience.timeout_ms, 900);
        assert_eq!(
            applied.security.modes,
            [SecurityMode::Mtls, SecurityMode::None]
        );
        assert!(!applied.security.keepalive);
        assert_eq!(applied.transports, [Transport::Binary]);
        assert_eq!(applied.meshes, [Mesh::Sidecar]);
        assert_eq!(applied.operations, base.operations);
    }

    #[test]
    fn a_spec_per_cut_and_mode_with_a_mode_s_pki_made_once() {
        let mut base = scenario();
        base.security.modes = vec![SecurityMode::None, SecurityMode::Tls];
        let base = Arc::new(base);
        let cuts = [Architecture::Nano, Architecture::Monolith];
        let specs = DeploySpec::each_mode(&base, &cuts, &[Tracing::Off]).unwrap();
        let labels: Vec<_> = specs.iter().map(|s| s.plan().label()).collect();
        assert_eq!(labels, ["nano", "nano+tls", "monolith", "monolith+tls"]);
        let env = DeployEnv::with_work("grainbench".into(), "test".into(), 1.0);
        let plain = specs[0].launch_options(&env).unwrap();
        assert!(plain.security.is_none());
        let first = specs[1].launch_options(&env).unwrap().security.unwrap();
        let again = specs[3].launch_options(&env).unwrap().security.unwrap();
        assert!(Arc::ptr_eq(&first, &again), "one PKI per mode for the run");
    }

    #[test]
    fn a_spec_per_cut_mode_and_transport_a_cut_s_variants_together() {
        let mut base = scenario();
        base.security.modes = vec![SecurityMode::None, SecurityMode::Tls];
        base.transports = vec![Transport::Http1Json, Transport::Grpc];
        let base = Arc::new(base);
        let specs = DeploySpec::each_mode(
            &base,
            &[Architecture::Nano, Architecture::Micro],
            &[Tracing::Off],
        )
        .unwrap();
        let labels: Vec<_> = specs.iter().map(|s| s.plan().label()).collect();
        assert_eq!(
            labels,
            [
                "nano",
                "nano+grpc",
                "nano+tls",
                "nano+tls+grpc",
                "micro",
                "micro+grpc",
                "micro+tls",
                "micro+tls+grpc"
            ]
        );
        let env = DeployEnv::with_work("grainbench".into(), "test".into(), 1.0);
        let options = specs[3].launch_options(&env).unwrap();
        assert_eq!(
            options.transport,
            Transport::Grpc,
            "the units are told their transport"
        );
    }

    #[test]
    fn mesh_modes_multiply_the_variants_and_an_unsupported_pairing_is_named() {
        let mut base = scenario();
        base.security.modes = vec![SecurityMode::None, SecurityMode::Mtls];
        base.meshes = vec![Mesh::None, Mesh::Sidecar];
        let specs = DeploySpec::each_mode(
            &Arc::new(base.clone()),
            &[Architecture::Nano],
            &[Tracing::Off],
        )
        .unwrap();
        let labels: Vec<_> = specs.iter().map(|s| s.plan().label()).collect();
        assert_eq!(
            labels,
            ["nano", "nano+sidecar", "nano+mtls", "nano+mtls+sidecar"]
        );
        let env = DeployEnv::with_work("grainbench".into(), "test".into(), 1.0);
        assert_eq!(specs[3].launch_options(&env).unwrap().mesh, Mesh::Sidecar);
        base.transports = vec![Transport::Grpc];
        let error = DeploySpec::each_mode(&Arc::new(base), &[Architecture::Nano], &[Tracing::Off])
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "nano+grpc+sidecar cannot be deployed: the sidecars proxy HTTP/1.1 only, not gRPC"
        );
    }
}
