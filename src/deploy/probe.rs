//! The minimal endpoint the calibrations drive: one unit serving one operation that does
//! no work and calls nothing (`calibrate`, the driver's capacity ramp, the bare-hop
//! calibration of every run), and one load step against it.

use super::{DeployEnv, DeploySpec};
use crate::driver::engine::Schedule;
use crate::driver::requests::RequestGen;
use crate::driver::{self, StepConfig, StepMeasurement, Target};
use crate::launch::cores::UnitCores;
use crate::launch::{LaunchError, LiveDeployment};
use crate::plan::{Architecture, Deployment, PlannedUnit};
use crate::scenario::{Distribution, Entrypoint, LoadProfile, Param, Scenario, Service};
use grain_runtime::model::{OperationDef, UnitRole};
use grain_runtime::network::NetworkModel;
use grain_runtime::wire::{encode_request, Hops};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The probe's one operation.
pub const PING: &str = "ping";
/// Its request and response size.
pub const BODY_BYTES: usize = 64;

/// The one-operation scenario calibration drives.
pub fn ping_scenario() -> Scenario {
    Scenario {
        name: "calibrate".into(),
        description: "minimal endpoint".into(),
        seed: 1,
        params: vec![Param {
            name: "n".into(),
            distribution: Distribution::Sequence,
        }],
        services: vec![Service {
            name: "ping".into(),
            operations: vec![PING.into()],
            data: Vec::new(),
            replicas: 1,
        }],
        operations: vec![OperationDef {
            name: PING.into(),
            service: "ping".into(),
            cpu_us: 0,
            request_bytes: BODY_BYTES,
            response_bytes: BODY_BYTES,
            reads: Vec::new(),
            writes: Vec::new(),
            write_bytes: 0,
            calls: Vec::new(),
        }],
        entrypoints: vec![Entrypoint {
            op: PING.into(),
            weight: 1,
        }],
        load: LoadProfile {
            rates: vec![1],
            duration: Duration::from_secs(1),
            warmup: Duration::ZERO,
            timeout: Duration::from_secs(2),
            p99_budget: None,
        },
        network: NetworkModel::loopback(),
        cuts: Vec::new(),
        security: Default::default(),
        transports: vec![Default::default()],
        meshes: vec![Default::default()],
        resilience: Default::default(),
        faults: Vec::new(),
    }
}

pub fn ping_deployment(scenario: &Scenario) -> Deployment {
    Deployment {
        architecture: Architecture::Monolith,
        security: Default::default(),
        transport: Default::default(),
        mesh: Default::default(),
        tracing: Default::default(),
        units: vec![PlannedUnit {
            name: "calibrate-ping".into(),
            hosts: vec![PING.into()],
            role: UnitRole::Service {
                operations: scenario.operations.clone(),
                embedded_stores: Vec::new(),
                remote_request_bytes: BTreeMap::new(),
            },
            replicas: 1,
        }],
        op_unit: BTreeMap::from([(PING.to_string(), 0)]),
        store_unit: BTreeMap::new(),
        static_hops: BTreeMap::from([(
            PING.to_string(),
            Hops {
                service: 1,
                state: 0,
            },
        )]),
        critical_path_hops: BTreeMap::from([(PING.to_string(), 1)]),
    }
}

/// The body of every calibration request (the one the driver's stream draws first).
pub fn ping_body() -> Vec<u8> {
    encode_request(&BTreeMap::from([("n".to_string(), 1)]), BODY_BYTES)
}

/// Starts the minimal unit (one operation, no work, nothing downstream) for run `run_id`,
/// confined to `cores` when given (as a run's units are under `--unit-cpus`).
pub async fn launch_ping(
    unit_binary: &Path,
    run_id: &str,
    cores: Option<&UnitCores>,
) -> Result<LiveDeployment, LaunchError> {
    let mut env = DeployEnv::with_work(unit_binary.to_path_buf(), run_id.to_string(), 1.0);
    env.unit_cores = cores.cloned();
    // Half the machine, so that the endpoint is not what saturates first: with a unit's
    // usual 2 threads it held ~120 000 req/s closed loop on a 16-core machine, and an
    // open-loop step at 100 000 req/s measured the endpoint (p99 35 ms), not the driver.
    env.worker_threads = Some(ping_worker_threads());
    let scenario = Arc::new(ping_scenario());
    let plan = ping_deployment(&scenario);
    DeploySpec::of_plan(scenario, plan).start(&env).await
}

/// Threads of the minimal endpoint's runtime: half the cores, at least 2.
fn ping_worker_threads() -> usize {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    (cores / 2).max(2)
}

/// A step against the ping unit: 500 ms warm-up, 2 s timeout, no in-flight cap to speak of.
pub fn ping_step_config(
    schedule: Schedule,
    duration: Duration,
    spin: Duration,
    network: NetworkModel,
) -> StepConfig {
    StepConfig {
        schedule,
        warmup: Duration::from_millis(500),
        duration,
        timeout: Duration::from_secs(2),
        in_flight_cap: 10_000,
        spin,
        network,
        keep_samples: false,
        trace_sample: 0.0,
        threads: crate::driver::auto_threads(schedule),
        load_cores: None,
    }
}

/// Runs one step of `config` against the ping unit at `addr` with request stream `seed`.
pub async fn run_ping_step(
    addr: &str,
    config: &StepConfig,
    seed: u64,
    cancel: &CancellationToken,
) -> Result<StepMeasurement, driver::DriverError> {
    let targets = [Target::new(PING, addr, BODY_BYTES)?];
    let generator = RequestGen::new(&ping_scenario(), seed);
    driver::run_step(&targets, generator, config, None, cancel).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ping_deployment_hosts_the_ping_operation() {
        let s = ping_scenario();
        let d = ping_deployment(&s);
        assert_eq!(d.unit_of(PING), Some(0));
    }
}
