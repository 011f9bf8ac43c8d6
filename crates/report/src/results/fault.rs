//! The fault step's results (schema 5): one fault injected into one process of a cut
//! under steady open-loop load, and what every request due around it saw.

use super::{Fault, StepResult};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One fault under load, in one cut.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultResult {
    /// What was injected, as asked.
    pub fault: Fault,
    /// The process hit (the first replica of the unit serving the fault's operation).
    pub process: String,
    /// Processes running that unit (the hit one included).
    pub replicas: u32,
    pub rate_rps: u32,
    /// Seconds into the step's measured window when the fault began.
    pub started_s: f64,
    /// Seconds into the measured window when it ended: the killed process's replacement
    /// ready and routed, the frozen one continued, the slow or failing one healed.
    pub ended_s: f64,
    /// Kill: SIGKILL → replacement ready and routed (ms).
    pub restart_ms: Option<f64>,
    /// Kill: how the killed process ended, as the kernel reported it.
    pub killed_ending: Option<String>,
    /// Per second of the measured window, by due time.
    pub timeline: Vec<FaultSecond>,
    /// Requests due in the measured window before the fault.
    pub before: WindowFigures,
    /// Requests due while the fault lasted.
    pub during: WindowFigures,
    /// Requests due after it ended.
    pub after: WindowFigures,
    /// Per entrypoint, requests due while the fault lasted.
    pub entrypoints: Vec<EntryAvailability>,
    /// Failed requests due while the fault lasted, by the process they were blamed on (the
    /// failing unit names itself in a reply header its callers pass upstream).
    pub blamed: BTreeMap<String, u64>,
    /// Failed requests due while the fault lasted that named no process.
    pub unblamed: u64,
    /// Hops per successful request the plan predicts for the requests that succeeded
    /// during the fault (their entrypoint mix).
    pub static_hops_per_ok: Option<f64>,
    /// From the fault's end to the first second-long window with ≥ 99 % success (s); 0
    /// when the success ratio never fell below it; absent when it never recovered within
    /// the step.
    pub recovery_s: Option<f64>,
    /// The whole step, as every other step is reported.
    pub step: Box<StepResult>,
}

impl FaultResult {
    /// Hops per successful request during the fault against the plan's: above 1 when
    /// retries (or failovers that reached a process) added hops.
    pub fn amplification(&self) -> Option<f64> {
        match (self.during.hops_per_ok, self.static_hops_per_ok) {
            (Some(measured), Some(planned)) if planned > 0.0 => Some(measured / planned),
            _ => None,
        }
    }

    /// Entrypoints every request of which succeeded while the fault lasted.
    pub fn fully_available(&self) -> Vec<&str> {
        self.entrypoints
            .iter()
            .filter(|e| e.requests > 0 && e.failed == 0)
            .map(|e| e.entrypoint.as_str())
            .collect()
    }
}

/// One second of a fault step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultSecond {
    /// Start of the second, from the measured window's start (s).
    pub t_s: f64,
    pub requests: u64,
    pub ok: u64,
    /// p99 of the successful requests' corrected latency (µs; absent: none succeeded).
    pub p99_us: Option<u64>,
}

impl FaultSecond {
    pub fn success_ratio(&self) -> Option<f64> {
        (self.requests > 0).then(|| self.ok as f64 / self.requests as f64)
    }
}

/// Requests due in one window of a fault step.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WindowFigures {
    pub requests: u64,
    pub ok: u64,
    /// Percentiles of the successful requests' corrected latency (µs).
    pub p50_us: Option<u64>,
    pub p99_us: Option<u64>,
    /// Measured hops per successful request.
    pub hops_per_ok: Option<f64>,
}

impl WindowFigures {
    pub fn success_ratio(&self) -> Option<f64> {
        (self.requests > 0).then(|| self.ok as f64 / self.requests as f64)
    }
}

/// One entrypoint while a fault lasted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EntryAvailability {
    pub entrypoint: String,
    pub requests: u64,
    pub failed: u64,
}
