//! Launching a deployment: every planned unit becomes an OS process of the units' binary
//! (`grainbench-unit unit`), binds 127.0.0.1 on a port the OS picks and announces it on
//! stdout; once all listen, each gets its routes on stdin and is polled on `/health`.
//!
//! No orphans: units run in their own process group (a terminal's Ctrl-C reaches only the
//! harness, which tears down in order), are killed when their handle is dropped (error or
//! panic), and exit by themselves when their stdin closes — which the kernel does for us
//! when the harness dies, even by SIGKILL.
//!
//! This file holds the deployment as a whole (start, reroute, respawn, faults, shutdown);
//! `options.rs` how units are started (binary, network, security, transport, mesh);
//! `process.rs` one unit from spawn to ready; `redeploy.rs` replacing units under load;
//! `container.rs` the same units as containers; `pki.rs` the run's certificates;
//! `sidecar/` the proxies of a mesh and `mesh.rs` putting them beside the units;
//! `cores.rs` the cores units may run on (`--unit-cpus`).

pub mod container;
pub mod cores;
mod mesh;
mod options;
pub mod pki;
mod process;
mod redeploy;
pub mod sidecar;

use crate::plan::{Deployment, Mesh};
use grain_runtime::model::{Endpoint, ReplyFault, Routes, UnitSpec};
use grain_runtime::network::NetworkModel;
use mesh::start_pods;
use process::{describe_status, spawn_unit, wait_for_address, wait_until_healthy, PodSlot};
pub use redeploy::Redeployed;
use std::collections::BTreeMap;
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::process::{Child, ChildStdin};

/// How long a unit gets to drain and exit after its stdin closes.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

pub use grain_runtime::host::raise_open_files_limit;
pub use options::{LaunchOptions, DEFAULT_READY_TIMEOUT, SPEC_ON_STDIN};

/// Why a deployment could not be started or kept running; always names the unit.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("cannot secure the deployment's hops: {0}")]
    Security(String),
    #[error("no unit serves operation {0}")]
    NoUnitFor(String),
    #[error("unit {unit}: {source}")]
    Container {
        unit: String,
        source: container::ContainerError,
    },
    #[error("unit {unit}: cannot start {}: {source}", binary.display())]
    Spawn {
        unit: String,
        binary: PathBuf,
        source: std::io::Error,
    },
    #[error("unit {unit} exited ({status}) {when}{}", stderr_suffix(stderr))]
    Crashed {
        unit: String,
        status: String,
        when: &'static str,
        stderr: String,
    },
    #[error(
        "unit {unit} did not announce a listening address within {timeout:?}{}",
        stderr_suffix(stderr)
    )]
    NotListening {
        unit: String,
        timeout: Duration,
        stderr: String,
    },
    #[error("unit {unit} did not become ready within {timeout:?}: {detail}")]
    NotReady {
        unit: String,
        timeout: Duration,
        detail: String,
    },
    #[error("unit {unit}: cannot send routes on its stdin: {source}")]
    Routes {
        unit: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Sidecar(#[from] sidecar::SidecarError),
}

fn stderr_suffix(stderr: &str) -> String {
    if stderr.trim().is_empty() {
        String::new()
    } else {
        format!("; its last output:\n{}", stderr.trim_end())
    }
}

/// One running unit process (a unit with replicas runs several).
pub struct RunningUnit {
    /// The process's name: the unit's, or `unit#i` for replica `i`.
    pub name: String,
    /// Index in the plan's units of the unit it runs.
    pub planned: usize,
    pub replica: u32,
    /// The unit's own process (inside its container, as the host sees it).
    pub pid: u32,
    /// Where the harness and the driver reach it (`127.0.0.1:port`).
    pub addr: String,
    /// Where the other units reach it: `addr`, or its container's name on the network.
    pub route_addr: String,
    /// Its container's name, when it runs in one, and how it was run.
    pub container: Option<String>,
    container_target: Option<Arc<container::ContainerTarget>>,
    /// Its pod's sidecar container, when it joined one (`--mesh sidecar` as containers):
    /// the host reaches the unit through that container's published port.
    pod: Option<String>,
    /// From this unit's spawn to its announcing a listening address.
    pub listening_after: Duration,
    spawned_at: Instant,
    spec: UnitSpec,
    child: Child,
    stdin: Option<ChildStdin>,
    stderr_tail: Arc<Mutex<VecDeque<String>>>,
    /// Its sidecar proxy, under a mesh: `addr` and `route_addr` are then the sidecar's.
    pub sidecar: Option<sidecar::Sidecar>,
}

impl RunningUnit {
    /// The routes this process is sent: `routes` as they are, or, behind a sidecar, with
    /// every process it calls reached through its own sidecar's outbound listener.
    fn own_routes(&self, routes: &Routes) -> Routes {
        let Some(sidecar) = &self.sidecar else {
            return routes.clone();
        };
        let through = |addr: &String| {
            sidecar
                .outbound_to(addr)
                .map_or(addr.clone(), str::to_string)
        };
        let mut own = routes.clone();
        for endpoints in own.operations.values_mut() {
            for endpoint in endpoints {
                endpoint.addr = through(&endpoint.addr);
            }
        }
        for addr in own.stores.values_mut() {
            *addr = through(addr);
        }
        own
    }

    /// This process as the harness calls it (its name and the address the host reaches).
    pub fn endpoint(&self) -> grain_runtime::model::Endpoint {
        grain_runtime::model::Endpoint {
            unit: self.name.clone(),
            addr: self.addr.clone(),
        }
    }

    /// Waits until `deadline` for the process to exit, then kills it; how it ended
    /// (`killed` says how, when it had to be killed).
    async fn exit_by(&mut self, deadline: tokio::time::Instant, killed: &str) -> String {
        match tokio::time::timeout_at(deadline, self.child.wait()).await {
            Ok(Ok(status)) => describe_status(status),
            _ => {
                let _ = self.child.start_kill();
                let _ = self.child.wait().await;
                killed.to_string()
            }
        }
    }

    /// In a container: where the host reaches it (its published port) and its pid.
    async fn locate_container(&mut self) -> Result<(), LaunchError> {
        let (Some(target), Some(name)) = (self.container_target.clone(), self.container.clone())
        else {
            return Ok(());
        };
        let reached_by = self.pod.clone().unwrap_or_else(|| name.clone());
        let located = tokio::task::spawn_blocking(move || {
            Ok::<_, container::ContainerError>((target.published(&reached_by)?, target.pid(&name)?))
        })
        .await
        .unwrap_or_else(|e| {
            Err(container::ContainerError::Docker {
                command: "port/inspect".into(),
                detail: e.to_string(),
            })
        });
        let (addr, pid) = located.map_err(|source| LaunchError::Container {
            unit: self.name.clone(),
            source,
        })?;
        self.addr = addr;
        self.pid = pid;
        Ok(())
    }

    fn stderr_tail(&self) -> String {
        process::joined(&self.stderr_tail)
    }

    fn crashed(&mut self, when: &'static str) -> Option<LaunchError> {
        if let Some(error) = self.sidecar.as_mut().and_then(|s| s.exited(when)) {
            return Some(error.into());
        }
        match self.child.try_wait() {
            Ok(Some(status)) => Some(LaunchError::Crashed {
                unit: self.name.clone(),
                status: describe_status(status),
                when,
                stderr: self.stderr_tail(),
            }),
            _ => None,
        }
    }
}

/// A deployment whose units are all running and ready.
pub struct LiveDeployment {
    pub plan: Deployment,
    /// Every process, each unit's replicas together, in the plan's order.
    pub units: Vec<RunningUnit>,
    /// From spawning the first unit to every unit answering `/health`.
    pub cold_start: Duration,
    /// How its units were launched (a redeploy launches replacements the same way).
    pub options: LaunchOptions,
    /// Faults injected into processes' replies now, by process name.
    faults: BTreeMap<String, ReplyFault>,
}

impl LiveDeployment {
    /// The network the units' outgoing requests cross now.
    pub fn network(&self) -> &NetworkModel {
        &self.options.network
    }

    /// Puts every unit's outgoing requests across `network` from now on (requests already
    /// on their way finish under the old one).
    pub async fn set_network(&mut self, network: NetworkModel) -> Result<(), LaunchError> {
        self.options.network = network;
        self.resend_routes().await
    }

    /// Sends every unit the current addresses, network and faults.
    async fn resend_routes(&mut self) -> Result<(), LaunchError> {
        let routes = self.routes();
        send_routes(&mut self.units, &routes).await
    }

    /// The current addresses, network and faults, as every unit is sent them.
    fn routes(&self) -> Routes {
        let mut routes = self.plan.routes(&self.processes(), &self.options.network);
        routes.faults = self.faults.clone();
        routes
    }

    /// Each planned unit's processes, as callers reach them.
    pub fn processes(&self) -> Vec<Vec<Endpoint>> {
        let mut processes = vec![Vec::new(); self.plan.units.len()];
        for unit in &self.units {
            processes[unit.planned].push(Endpoint {
                unit: unit.name.clone(),
                addr: unit.route_addr.clone(),
            });
        }
        processes
    }

    /// Address of the (first replica of the) unit serving `op`.
    pub fn addr_of(&self, op: &str) -> Option<&str> {
        self.endpoints_of(op).first().map(|u| u.addr.as_str())
    }

    /// The first process serving `op`, as a caller names it (its unit and address).
    pub fn endpoint_of(&self, op: &str) -> Option<grain_runtime::model::Endpoint> {
        self.endpoints_of(op).first().map(|u| u.endpoint())
    }

    /// Every process of the unit serving `op`.
    pub fn endpoints_of(&self, op: &str) -> Vec<&RunningUnit> {
        let planned = self.plan.unit_of(op);
        self.units
            .iter()
            .filter(|u| Some(u.planned) == planned)
            .collect()
    }

    /// Indices in `units` of every process of the planned units at `planned`.
    pub fn processes_of(&self, planned: &[usize]) -> Vec<usize> {
        (0..self.units.len())
            .filter(|&i| planned.contains(&self.units[i].planned))
            .collect()
    }

    /// Injects `faults` into the named processes' replies from now on (none: lifts them).
    pub async fn set_faults(
        &mut self,
        faults: BTreeMap<String, ReplyFault>,
    ) -> Result<(), LaunchError> {
        self.faults = faults;
        self.resend_routes().await
    }

    /// Sends `signal` to unit process `index` (SIGKILL, SIGSTOP, SIGCONT in a fault
    /// step): the unit itself, in its container when it runs in one.
    pub fn signal(&mut self, index: usize, signal: i32) {
        let unit = &self.units[index];
        let pid = match unit.container {
            Some(_) => Some(unit.pid).filter(|&pid| pid > 0),
            None => unit.child.id(),
        };
        if let Some(pid) = pid {
            // SAFETY: signals a unit process this run started, by pid, while it holds it.
            unsafe { libc::kill(pid as libc::pid_t, signal) };
        }
    }

    /// Reaps process `index` after a SIGKILL; how it ended.
    pub async fn reap(&mut self, index: usize) -> String {
        match tokio::time::timeout(DRAIN_TIMEOUT, self.units[index].child.wait()).await {
            Ok(Ok(status)) => describe_status(status),
            _ => "not reaped".to_string(),
        }
    }

    /// Starts fresh processes in place of `indices` (already gone), routes every unit to
    /// them, and waits until they are ready: what an orchestrator does for a dead pod.
    pub async fn respawn(&mut self, indices: &[usize]) -> Result<(), LaunchError> {
        self.replace(indices).await.map(drop)
    }

    /// Starts fresh processes of the same spec for `indices`, puts them in their places,
    /// routes every unit to them once they are ready, and hands back the processes they
    /// replaced (still running, if they were: the caller drains them).
    pub async fn replace(&mut self, indices: &[usize]) -> Result<Vec<RunningUnit>, LaunchError> {
        let health = self.options.client(Duration::from_millis(500))?;
        let deadline = Instant::now() + self.options.ready_timeout;
        let mut replaced = Vec::with_capacity(indices.len());
        for &index in indices {
            let (spec, planned, replica) = {
                let old = &self.units[index];
                (old.spec.clone(), old.planned, old.replica)
            };
            // In a pod, the replacement joins its sidecar's namespace on the other port.
            let slot = self.units[index]
                .sidecar
                .as_ref()
                .and_then(|s| s.pod())
                .map(|pod| PodSlot {
                    sidecar: pod.container.clone(),
                    port: pod.next_port(),
                });
            let (mut unit, stdout) = spawn_unit(&spec, &self.options, slot.as_ref()).await?;
            (unit.planned, unit.replica) = (planned, replica);
            let mut fresh =
                wait_for_address(unit, stdout, deadline, self.options.ready_timeout).await?;
            // The sidecar stays: it moves to the replacement, still pointing at the old
            // process until the replacement is ready (a pod's is reached through its
            // staging listener meanwhile).
            fresh.sidecar = self.units[index].sidecar.take();
            if let Some(sidecar) = fresh.sidecar.as_ref().filter(|s| s.pod().is_some()) {
                fresh.addr = sidecar.stage_next().await?;
            }
            replaced.push(std::mem::replace(&mut self.units[index], fresh));
        }
        // Like an orchestrator's readiness gate: the replacements get their routes and
        // must answer /health (on their own address) before any other unit is routed to
        // them.
        let routes = self.routes();
        for &index in indices {
            send_routes(std::slice::from_mut(&mut self.units[index]), &routes).await?;
        }
        let health = match self.options.mesh {
            Mesh::Sidecar => self.options.private_client(Duration::from_millis(500))?,
            Mesh::None => health,
        };
        let replacements = self
            .units
            .iter_mut()
            .enumerate()
            .filter(|(i, _)| indices.contains(i))
            .map(|(_, unit)| unit);
        wait_until_healthy(&health, replacements, deadline, self.options.ready_timeout).await?;
        for &index in indices {
            let unit = &mut self.units[index];
            if let Some(sidecar) = &mut unit.sidecar {
                if sidecar.pod().is_some() {
                    // Callers already reach the pod by its sidecar's name.
                    sidecar.switch_to_next().await?;
                } else {
                    sidecar.point_at(&unit.addr).await?;
                    unit.route_addr = sidecar.inbound.clone();
                }
                unit.addr = sidecar.inbound.clone();
            }
        }
        self.resend_routes().await?;
        Ok(replaced)
    }

    /// The first unit found to have exited, if any.
    pub fn check_alive(&mut self) -> Result<(), LaunchError> {
        for unit in &mut self.units {
            if let Some(error) = unit.crashed("while serving") {
                return Err(error);
            }
        }
        Ok(())
    }

    /// Stops every unit gracefully (stdin closed → drain → exit), killing any that do not
    /// exit within the drain timeout. Returns each unit's name and how it ended.
    pub async fn shutdown(mut self) -> Vec<(String, String)> {
        // Every unit at once, under one deadline: stdin closed and SIGTERM (drain: stop
        // accepting, finish in-flight requests, exit), then SIGKILL for any still running.
        let deadline = tokio::time::Instant::now() + DRAIN_TIMEOUT;
        for unit in &mut self.units {
            unit.stdin.take();
            if let Some(pid) = unit.child.id() {
                // SAFETY: signals our own child process, by pid, while we still hold it.
                unsafe { libc::kill(pid as i32, libc::SIGTERM) };
            }
        }
        let killed = format!("killed: still running {DRAIN_TIMEOUT:?} after SIGTERM");
        let waits = self.units.iter_mut().map(|unit| {
            let killed = &killed;
            async move {
                let ending = unit.exit_by(deadline, killed).await;
                (unit.name.clone(), ending)
            }
        });
        let mut endings = futures_util::future::join_all(waits).await;
        // The sidecars once their units are gone (nothing is left for them to carry).
        let deadline = tokio::time::Instant::now() + DRAIN_TIMEOUT;
        for sidecar in self.units.iter_mut().filter_map(|u| u.sidecar.as_mut()) {
            let ending = sidecar.stop(deadline).await;
            endings.push((sidecar.name(), ending));
        }
        endings
    }

    /// Every unit's sidecar process, by name (`sidecar:<process>`), under a mesh.
    pub fn sidecar_pids(&self) -> Vec<(String, u32)> {
        self.units
            .iter()
            .filter_map(|u| u.sidecar.as_ref())
            .map(|s| (s.name(), s.pid))
            .collect()
    }
}

/// Starts every unit of `plan` and waits until all are ready.
pub async fn launch(
    plan: &Deployment,
    options: &LaunchOptions,
) -> Result<LiveDeployment, LaunchError> {
    // Credentials are issued before the clock starts: cold start is the units' own.
    let mut specs = Vec::new();
    for (index, planned) in plan.units.iter().enumerate() {
        for replica in 0..planned.replicas.max(1) {
            // Replicas share their unit's certificate name (a `#` has no place in one).
            // Under a mesh the sidecars hold the hops' security; the units speak
            // plaintext to them on loopback.
            let security = match &options.security {
                Some(_) if options.mesh == Mesh::Sidecar => None,
                Some(pki) => Some(
                    pki.issue(&planned.name)
                        .map_err(|e| LaunchError::Security(e.to_string()))?,
                ),
                None => None,
            };
            let spec = UnitSpec {
                name: planned.process_name(replica),
                role: planned.role.clone(),
                work_iterations_per_us: options.work_iterations_per_us,
                security,
                keepalive: options.keepalive,
                worker_threads: options.worker_threads,
                resilience: options.resilience.clone(),
                transport: options.transport,
                trace: options.trace.clone(),
                listen: Default::default(),
            };
            specs.push((spec, index, replica));
        }
    }
    let health = options.client(Duration::from_millis(500))?;
    let started = Instant::now();
    let deadline = started + options.ready_timeout;
    let pods = start_pods(&specs, options).await?;
    let mut units = Vec::with_capacity(specs.len());
    for (i, (spec, planned, replica)) in specs.iter().enumerate() {
        let slot = pods.get(i).map(|pod| PodSlot {
            sidecar: pod.container().to_string(),
            port: sidecar::pod::UNIT_PORTS[0],
        });
        let (mut unit, stdout) = spawn_unit(spec, options, slot.as_ref()).await?;
        (unit.planned, unit.replica) = (*planned, *replica);
        units.push((unit, stdout));
    }
    // Read every unit's announcement concurrently so each unit's start time is its own.
    let waits = units
        .into_iter()
        .map(|(unit, stdout)| wait_for_address(unit, stdout, deadline, options.ready_timeout));
    let announced = futures_util::future::try_join_all(waits).await?;
    let mut live = LiveDeployment {
        plan: plan.clone(),
        units: announced,
        cold_start: Duration::ZERO,
        options: options.clone(),
        faults: BTreeMap::new(),
    };
    if !pods.is_empty() {
        live.configure_pods(pods).await?;
    } else if options.mesh == Mesh::Sidecar {
        live.attach_sidecars().await?;
    }
    live.resend_routes().await?;
    wait_until_healthy(&health, &mut live.units, deadline, options.ready_timeout).await?;
    live.cold_start = started.elapsed();
    tracing::info!(
        architecture = %plan.architecture,
        units = live.units.len(),
        cold_start_ms = live.cold_start.as_secs_f64() * 1e3,
        "deployment ready"
    );
    Ok(live)
}

/// Sends `routes` to every unit (also used when a unit moves).
pub async fn send_routes(units: &mut [RunningUnit], routes: &Routes) -> Result<(), LaunchError> {
    for unit in units {
        // Routes are plain maps of strings; serializing them cannot fail.
        let mut line = serde_json::to_vec(&unit.own_routes(routes)).expect("routes serialize");
        line.push(b'\n');
        let Some(stdin) = unit.stdin.as_mut() else {
            continue;
        };
        let written = async {
            stdin.write_all(&line).await?;
            stdin.flush().await
        };
        written.await.map_err(|source| LaunchError::Routes {
            unit: unit.name.clone(),
            source,
        })?;
    }
    Ok(())
}
