//! Sidecars beside a live deployment's units (`--mesh sidecar`): as processes, each bound
//! and started beside its unit once the units are up; as containers, each pod's sidecar
//! started before its unit (which joins its network namespace) and configured once the
//! units are up. Either way, every sidecar's outbound listeners lead to the sidecars of
//! the processes its unit calls, and its hops are secured with the unit's credentials.

use super::sidecar::{self, pod::PendingPod};
use super::{LaunchError, LaunchOptions, LiveDeployment, RunningUnit};
use crate::plan::Mesh;
use grain_runtime::model::{Endpoint, UnitSpec};
use std::collections::BTreeMap;
use std::sync::Arc;

impl LiveDeployment {
    /// Every process `unit` calls (each process of each unit its operations call), as
    /// callers reach them in `processes`.
    fn callee_processes<'a>(
        &self,
        unit: &RunningUnit,
        processes: &'a [Vec<Endpoint>],
    ) -> impl Iterator<Item = &'a Endpoint> + 'a {
        let callees = self.plan.callees(unit.planned);
        callees
            .into_iter()
            .flat_map(move |callee| processes[callee].iter())
    }

    /// Configures the sidecar container of every unit's pod (started before the units,
    /// which joined them): inbound to its unit, outbound to the sidecars of the
    /// processes it calls, by name on the run's network; waits until each listens.
    pub(super) async fn configure_pods(
        &mut self,
        pending: Vec<PendingPod>,
    ) -> Result<(), LaunchError> {
        let Some(target) = self.options.container.clone() else {
            return Ok(());
        };
        let processes = self.processes();
        let mut configures = Vec::with_capacity(pending.len());
        for (unit, pod) in self.units.iter().zip(pending) {
            let callees: Vec<(String, String)> = self
                .callee_processes(unit, &processes)
                .map(|e| (e.unit.clone(), e.addr.clone()))
                .collect();
            let tls = sidecar_tls(&self.options, &self.plan.units[unit.planned].name)?;
            let timeout = self.options.ready_timeout;
            let target = target.clone();
            configures.push(async move {
                pod.configure(&target, &callees, tls.as_ref(), timeout)
                    .await
            });
        }
        let configured = futures_util::future::try_join_all(configures).await?;
        for (unit, sidecar) in self.units.iter_mut().zip(configured) {
            unit.addr = sidecar.inbound.clone();
            unit.sidecar = Some(sidecar);
        }
        Ok(())
    }

    /// Puts a sidecar beside every unit process: binds them all (every address known
    /// before any proxy starts), starts each, waits until each answers, and makes its
    /// inbound listener the unit's address.
    pub(super) async fn attach_sidecars(&mut self) -> Result<(), LaunchError> {
        let processes = self.processes();
        let mut bound = Vec::with_capacity(self.units.len());
        let mut inbound_of = BTreeMap::new();
        for unit in &self.units {
            let callees = self
                .callee_processes(unit, &processes)
                .map(|e| e.unit.clone())
                .collect();
            let sidecar = sidecar::BoundSidecar::bind(&unit.name, callees)?;
            inbound_of.insert(unit.name.clone(), sidecar.inbound_addr()?);
            bound.push(sidecar);
        }
        for (unit, sidecar) in self.units.iter_mut().zip(bound) {
            let tls = sidecar_tls(&self.options, &self.plan.units[unit.planned].name)?;
            let started = sidecar.start(
                &unit.addr,
                &inbound_of,
                tls.as_ref(),
                &self.options.run_id,
                self.options.unit_cores.as_ref(),
            )?;
            unit.addr = started.inbound.clone();
            unit.route_addr = started.inbound.clone();
            unit.sidecar = Some(started);
        }
        for sidecar in self.units.iter_mut().filter_map(|u| u.sidecar.as_mut()) {
            sidecar.wait_ready().await?;
        }
        Ok(())
    }
}

/// How the sidecar of a process of `unit` secures its hops (`None`: plaintext).
fn sidecar_tls(
    options: &LaunchOptions,
    unit: &str,
) -> Result<Option<sidecar::SidecarTls>, LaunchError> {
    let Some(pki) = &options.security else {
        return Ok(None);
    };
    let credentials = pki
        .issue(unit)
        .map_err(|e| LaunchError::Security(e.to_string()))?;
    Ok(Some(sidecar::SidecarTls {
        mode: pki.mode(),
        credentials: Arc::new(credentials),
    }))
}

/// Starts the sidecar container of every process of `specs` (in containers behind a
/// mesh: each owns its unit's pod, so it starts first); none otherwise.
pub(super) async fn start_pods(
    specs: &[(UnitSpec, usize, u32)],
    options: &LaunchOptions,
) -> Result<Vec<PendingPod>, LaunchError> {
    let Some(target) = options
        .container
        .as_ref()
        .filter(|_| options.mesh == Mesh::Sidecar)
    else {
        return Ok(Vec::new());
    };
    let cores = options.unit_cores.as_ref();
    let starts =
        specs.iter().map(|(spec, _, _)| {
            let name = sidecar::pod::container_name(target, &spec.name);
            async move {
                PendingPod::start(target, &name, &spec.name, cores, options.ready_timeout).await
            }
        });
    Ok(futures_util::future::try_join_all(starts).await?)
}
