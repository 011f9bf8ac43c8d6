//! Replacing a deployment's units under load, the way a redeploy of changed code does:
//! at once for a unit that runs as one process, one replica at a time for a replicated one.

use super::{LaunchError, LiveDeployment, DRAIN_TIMEOUT};
use std::time::{Duration, Instant};

/// How long the old processes keep serving after every caller was sent the new routes,
/// before they are told to drain: the units apply routes from their stdin on their own
/// time, as Kubernetes' endpoints reach every proxy a moment after a pod is ready (what a
/// preStop sleep covers).
pub const ROUTE_PROPAGATION: Duration = Duration::from_millis(100);

/// How a redeploy of some units went.
#[derive(Debug, Clone)]
pub struct Redeployed {
    /// Units replaced, by name.
    pub units: Vec<String>,
    /// Pids of the processes that were stopped.
    pub old_pids: Vec<u32>,
    /// How each stopped process ended (`exit code 0` after a graceful drain).
    pub old_endings: Vec<String>,
    /// Waves of the rolling update: 1 when every unit runs one process, else the most
    /// replicas of any unit replaced.
    pub waves: usize,
    /// From the first SIGTERM to the last wave's old processes having drained and exited.
    pub drained_after: Duration,
    /// From the first SIGTERM to every replacement ready and routed.
    pub ready_after: Duration,
    /// When the redeploy began.
    pub started: Instant,
}

impl LiveDeployment {
    /// Replaces the units at `planned` the way a rolling update with surge does: new
    /// processes of the same spec start beside the old ones, each ready before anyone is
    /// routed to it; every caller is then routed to them, and only then are the old ones
    /// told to drain (SIGTERM: stop accepting, finish in-flight requests, exit). Nothing is
    /// sent to a process that is going away, so a redeploy fails no request. A unit that
    /// runs as one process is replaced at once; a replicated one one replica at a time
    /// (replica `r` of every unit in wave `r`), its other replicas serving meanwhile.
    /// `rerouted` runs after each wave's routing, before its drain, for callers outside the
    /// units (the driver).
    pub async fn redeploy(
        &mut self,
        planned: &[usize],
        mut rerouted: impl FnMut(&LiveDeployment),
    ) -> Result<Redeployed, LaunchError> {
        let started = Instant::now();
        let waves = self.waves(planned);
        let (mut old_pids, mut old_endings) = (Vec::new(), Vec::new());
        let mut drained_after = Duration::ZERO;
        let mut ready_after = Duration::ZERO;
        for wave in &waves {
            let old = self.replace(wave).await?;
            ready_after = started.elapsed();
            rerouted(self);
            tokio::time::sleep(ROUTE_PROPAGATION).await;
            old_pids.extend(old.iter().map(|unit| unit.pid));
            old_endings.extend(drain(old).await);
            drained_after = started.elapsed();
        }
        Ok(Redeployed {
            units: waves
                .iter()
                .flatten()
                .map(|&i| self.units[i].name.clone())
                .collect(),
            old_pids,
            old_endings,
            waves: waves.len(),
            drained_after,
            ready_after,
            started,
        })
    }

    /// The processes of the units at `planned`, replica `r` of each in wave `r`.
    fn waves(&self, planned: &[usize]) -> Vec<Vec<usize>> {
        let mut waves: Vec<Vec<usize>> = Vec::new();
        for index in self.processes_of(planned) {
            let replica = self.units[index].replica as usize;
            if waves.len() <= replica {
                waves.resize(replica + 1, Vec::new());
            }
            waves[replica].push(index);
        }
        waves.retain(|wave| !wave.is_empty());
        waves
    }
}

/// SIGTERMs `units` (replaced, no longer routed to) and waits for each to drain and exit
/// (killing it after [`DRAIN_TIMEOUT`]); how each ended.
async fn drain(mut units: Vec<super::RunningUnit>) -> Vec<String> {
    for unit in &units {
        // SAFETY: sending SIGTERM to a child process we started and still own.
        unsafe { libc::kill(unit.pid as libc::pid_t, libc::SIGTERM) };
    }
    let killed = format!("killed after not draining within {DRAIN_TIMEOUT:?}");
    let deadline = tokio::time::Instant::now() + DRAIN_TIMEOUT;
    let mut endings = Vec::new();
    for unit in &mut units {
        endings.push(unit.exit_by(deadline, &killed).await);
    }
    endings
}
