//! How a deployment's units are started: the binary that serves them, the run they
//! belong to, the work calibration, the network model, the callers' policy, and what their
//! hops speak (security, transport, mesh); and the HTTP clients that reach them.

use super::{container, pki, LaunchError};
use crate::plan::Mesh;
use grain_runtime::client::HttpClient;
use grain_runtime::network::NetworkModel;
use grain_runtime::resilience::Resilience;
use grain_runtime::security::SecurityMode;
use grain_runtime::transport::Transport;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// How to start units.
#[derive(Debug, Clone)]
pub struct LaunchOptions {
    /// The `grainbench` binary that serves units.
    pub unit_binary: PathBuf,
    /// Identifies this run's processes (`--run-id` on every unit's command line).
    pub run_id: String,
    /// CPU work calibration handed to every unit.
    pub work_iterations_per_us: f64,
    /// How long all units together may take to become ready.
    pub ready_timeout: Duration,
    /// The network every unit's outgoing requests cross (sent with the routes, so it can
    /// be changed while the units run: [`LiveDeployment::set_network`]).
    pub network: NetworkModel,
    /// The run's PKI when hops are secured: each unit gets its credentials in its spec.
    pub security: Option<Arc<pki::RunPki>>,
    /// Whether units reuse connections for their calls.
    pub keepalive: bool,
    /// Threads of each unit's async runtime (`None`: the units' default).
    pub worker_threads: Option<usize>,
    /// How units call each other (timeout, retries, breaker).
    pub resilience: Resilience,
    /// What units' calls to each other speak.
    pub transport: Transport,
    /// Whether every unit runs behind a sidecar proxy ([`sidecar`]).
    pub mesh: Mesh,
    /// Units as containers on the run's network instead of local processes.
    pub container: Option<Arc<container::ContainerTarget>>,
    /// Where units send the spans of traced requests (none: they build no span).
    pub trace: Option<grain_runtime::trace::TraceExport>,
    /// The cores every unit process (and its sidecar) is confined to (none: anywhere).
    /// Processes only: containers are not confined.
    pub unit_cores: Option<super::cores::UnitCores>,
}

/// `--spec` value telling a unit to read its spec from the first line of stdin.
pub const SPEC_ON_STDIN: &str = "-";

/// How long all units of a deployment together may take to become ready, by default.
pub const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(20);

impl LaunchOptions {
    /// Options for units of `run_id` served by `unit_binary`, with the default readiness
    /// timeout and raw loopback between units.
    pub fn new(unit_binary: PathBuf, run_id: String, work_iterations_per_us: f64) -> Self {
        LaunchOptions {
            unit_binary,
            run_id,
            work_iterations_per_us,
            ready_timeout: DEFAULT_READY_TIMEOUT,
            network: NetworkModel::default(),
            security: None,
            keepalive: true,
            worker_threads: None,
            resilience: Resilience::default(),
            transport: Transport::default(),
            mesh: Mesh::None,
            container: None,
            trace: None,
            unit_cores: None,
        }
    }

    /// The same options with every unit behind `mesh`.
    pub fn meshed(mut self, mesh: Mesh) -> Self {
        self.mesh = mesh;
        self
    }

    /// The client for a unit process's own (private) address: plaintext under a mesh,
    /// whose sidecars hold the hops' security, else the same as [`Self::client`].
    pub(super) fn private_client(&self, timeout: Duration) -> Result<HttpClient, LaunchError> {
        match self.mesh {
            Mesh::Sidecar => HttpClient::secured(timeout, None, true)
                .map_err(|e| LaunchError::Security(e.to_string())),
            Mesh::None => self.client(timeout),
        }
    }

    /// The same options with every unit a container of `target`.
    pub fn in_containers(mut self, target: Option<Arc<container::ContainerTarget>>) -> Self {
        self.container = target;
        self
    }

    /// The same options with units calling each other under `policy`.
    pub fn with_resilience(mut self, policy: Resilience) -> Self {
        self.resilience = policy;
        self
    }

    /// The same options with hops secured by `pki` (plaintext without it), and units
    /// reusing connections or not.
    pub fn with_security(mut self, pki: Option<Arc<pki::RunPki>>, keepalive: bool) -> Self {
        self.security = pki;
        self.keepalive = keepalive;
        self
    }

    /// The same options with units calling each other in `transport`.
    pub fn speaking(mut self, transport: Transport) -> Self {
        self.transport = transport;
        self
    }

    /// The driver's credentials, when the units' hops are secured.
    pub fn driver_credentials(&self) -> Option<Arc<grain_runtime::security::Credentials>> {
        self.security.as_ref().map(|p| p.driver().clone())
    }

    /// The mode the units speak.
    pub fn mode(&self) -> SecurityMode {
        self.security
            .as_ref()
            .map_or(SecurityMode::None, |p| p.mode())
    }

    /// A client for the harness's own calls to units (readiness, equivalence, figures),
    /// speaking their security as the driver.
    pub fn client(&self, timeout: Duration) -> Result<HttpClient, LaunchError> {
        let driver = self.security.as_ref().map(|p| p.driver().as_ref());
        HttpClient::secured(timeout, driver, true).map_err(|e| LaunchError::Security(e.to_string()))
    }

    /// The same options with `network` between the units.
    pub fn with_network(mut self, network: NetworkModel) -> Self {
        self.network = network;
        self
    }
}
