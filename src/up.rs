//! `grainbench up`: deploy one architecture and keep it running for outside tools (wrk, k6,
//! curl), with each entrypoint's URL and an example request.

use crate::deploy::{DeployEnv, DeployOverrides, DeploySpec, DeployTarget};
use crate::driver::requests::RequestGen;
use crate::launch::container::ContainerError;
use crate::launch::{LaunchError, LiveDeployment};
use crate::plan::{Architecture, PlanError, SecurityMode};
use crate::scenario::ScenarioSource;
use grain_runtime::security::{unix_now, TokenKey};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

/// What `up` was asked to deploy.
#[derive(Debug, Clone)]
pub struct UpRequest {
    pub cut: Architecture,
    /// The knobs over the scenario's own (the same as `run`'s).
    pub overrides: DeployOverrides,
    /// What every hop speaks (with a PKI made for this deployment, held in memory only).
    pub security: SecurityMode,
    /// Processes, or containers on a network made for this deployment.
    pub target: DeployTarget,
    /// The cores every unit process is confined to (`--unit-cpus`; none: anywhere).
    pub unit_cores: Option<crate::launch::cores::UnitCores>,
}

/// Why `up` could not deploy.
#[derive(Debug, thiserror::Error)]
pub enum UpError {
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error("--target compose: {0}")]
    Containers(#[from] ContainerError),
    #[error("{cut}: {source}")]
    Launch {
        cut: Architecture,
        source: LaunchError,
    },
}

/// A deployment `up` started; [`Up::stop`] (or dropping it) takes it down, containers and
/// network included.
pub struct Up {
    pub live: LiveDeployment,
    // Dropped after the units: removes the containers and the network.
    _env: DeployEnv,
}

impl Up {
    /// Deploys `request` of `source` with units served by `unit_binary`.
    pub async fn start(
        source: &ScenarioSource,
        request: &UpRequest,
        unit_binary: PathBuf,
    ) -> Result<Up, UpError> {
        let scenario = Arc::new(request.overrides.apply(&source.scenario));
        let spec = DeploySpec::new(scenario, &request.cut, request.security)?;
        let mut env = DeployEnv::new(unit_binary, run_id()).place(&request.target, &[&spec])?;
        env.unit_cores = request.unit_cores.clone();
        let live = spec.start(&env).await.map_err(|source| UpError::Launch {
            cut: request.cut.clone(),
            source,
        })?;
        Ok(Up { live, _env: env })
    }

    /// Stops the units, then removes their containers and network.
    pub async fn stop(self) {
        self.live.shutdown().await;
    }
}

/// The run id every `up` of this process uses: the run's unique id (pid and start time,
/// so two `up`s in different PID namespaces never share one), made once.
pub fn run_id() -> String {
    static RUN_ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    RUN_ID
        .get_or_init(|| format!("up-{}", crate::run::new_run_id()))
        .clone()
}

/// How long the bearer token `up` prints is valid.
const UP_TOKEN_LIFETIME_S: u64 = 3_600;

/// What a caller needs under `live`'s security: the PEM text to save (nothing is written
/// to disk), and the curl flags that use it.
fn credentials_for_curl(live: &LiveDeployment, out: &mut String) -> String {
    let Some(driver) = live.options.driver_credentials() else {
        return String::new();
    };
    let mode = driver.mode;
    let mut flags = String::new();
    if mode.tls() {
        let _ = writeln!(
            out,
            "hops speak {mode}: the units' certificates come from a CA made for this deployment and held in memory only. Nothing was written to disk; to call a unit, save the PEM below as ca.pem"
        );
        let _ = write!(out, "{}", driver.ca_pem);
        flags.push_str(" --cacert ca.pem");
    }
    if mode.client_certificates() {
        let _ = writeln!(
            out,
            "and, as a caller the units accept (valid for this deployment only), client.pem and client-key.pem"
        );
        let _ = write!(out, "{}{}", driver.cert_pem, driver.key_pem);
        flags.push_str(" --cert client.pem --key client-key.pem");
    }
    if mode.token() {
        let _ = writeln!(
            out,
            "every call needs a bearer token; each entrypoint's below is valid for an hour"
        );
    }
    flags
}

/// What `up` prints once the units are ready: how many, the network between them, and
/// each entrypoint's URL with an example `curl`.
pub fn describe(source: &ScenarioSource, live: &LiveDeployment) -> String {
    let scenario = &source.scenario;
    let mut out = format!(
        "{} as {}: {} units ready in {:.1} ms\n",
        scenario.name,
        live.plan.label(),
        live.units.len(),
        live.cold_start.as_secs_f64() * 1e3
    );
    let sidecars = live.sidecar_pids();
    if !sidecars.is_empty() {
        let _ = writeln!(
            out,
            "behind {} HAProxy sidecars: the addresses below are the entry units' sidecars, and every call between units crosses two",
            sidecars.len()
        );
    }
    let network = live.network();
    let bridge = match &live.options.container {
        Some(target) => format!(
            "containers of {} on the bridge network {}, and on top of it ",
            target.image, target.network
        ),
        None => String::new(),
    };
    let _ = writeln!(
        out,
        "network between units: {bridge}{}: {} (your own requests to the entry unit are not delayed)",
        network.name,
        crate::results::NetworkModel::from(network).describe()
    );
    let params = RequestGen::new(scenario, scenario.seed)
        .next_request()
        .params;
    let example =
        String::from_utf8_lossy(&grain_runtime::wire::encode_request(&params, 0)).into_owned();
    let flags = credentials_for_curl(live, &mut out);
    let driver = live.options.driver_credentials();
    let scheme = live.options.mode().scheme();
    for entry in &scenario.entrypoints {
        let addr = live.addr_of(&entry.op).unwrap_or_default();
        let path = grain_runtime::wire::op_path(&entry.op);
        let callee = live
            .endpoint_of(&entry.op)
            .map(|e| e.unit)
            .unwrap_or_default();
        let callee = grain_runtime::resilience::unit_of_process(&callee);
        let token = match driver.as_deref().map(TokenKey::of) {
            Some(Ok(Some(key))) => format!(
                " -H 'authorization: Bearer {}'",
                key.sign(
                    &driver
                        .as_ref()
                        .map_or(String::new(), |d| d.identity.clone()),
                    callee,
                    &path,
                    unix_now() + UP_TOKEN_LIFETIME_S
                )
            ),
            _ => String::new(),
        };
        let _ = writeln!(out, "  {}  POST {scheme}://{addr}{path}", entry.op);
        let _ = writeln!(
            out,
            "      curl -s -D- -X POST {scheme}://{addr}{path}{flags}{token} -H 'content-type: application/json' -d '{example}'",
        );
    }
    out
}
