//! The business model every unit executes, and the spec a unit is started with.
//!
//! These types are produced by the harness (scenario → plan) and consumed by units, so
//! they are plain serde types shared by both sides.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One step of an operation's call list: a single call, or several calls issued together.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallStep {
    /// Call one operation and wait for it.
    Op(String),
    /// Call all these operations concurrently and wait for all of them.
    Parallel(Vec<String>),
}

impl CallStep {
    /// The operations this step calls, in declared order.
    pub fn callees(&self) -> &[String] {
        match self {
            CallStep::Op(op) => std::slice::from_ref(op),
            CallStep::Parallel(ops) => ops,
        }
    }
}

/// A store key with `{param}` placeholders, e.g. `cart:{user}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct KeyTemplate(pub String);

impl KeyTemplate {
    /// The placeholder names in the template, in order.
    pub fn placeholders(&self) -> Vec<&str> {
        let mut names = Vec::new();
        let mut rest = self.0.as_str();
        while let Some(open) = rest.find('{') {
            let after = &rest[open + 1..];
            match after.find('}') {
                Some(close) => {
                    names.push(&after[..close]);
                    rest = &after[close + 1..];
                }
                None => break,
            }
        }
        names
    }

    /// Substitutes request parameters into the template; a missing parameter renders as `?`.
    pub fn render(&self, params: &BTreeMap<String, u64>) -> String {
        let mut out = String::with_capacity(self.0.len() + 8);
        let mut rest = self.0.as_str();
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            match after.find('}') {
                Some(close) => {
                    match params.get(&after[..close]) {
                        Some(value) => out.push_str(&value.to_string()),
                        None => out.push('?'),
                    }
                    rest = &after[close + 1..];
                }
                None => {
                    out.push('{');
                    rest = after;
                }
            }
        }
        out.push_str(rest);
        out
    }
}

/// One business operation: the unit of work nanoservices deploy one by one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OperationDef {
    pub name: String,
    /// The service that owns this operation (and whose store it reads and writes).
    pub service: String,
    /// Calibrated CPU work per call, in microseconds of this machine's CPU.
    pub cpu_us: u64,
    /// Size of the JSON request body this operation receives.
    pub request_bytes: usize,
    /// Size of the JSON response body this operation returns.
    pub response_bytes: usize,
    /// Keys read from the owning service's store, before the calls.
    pub reads: Vec<KeyTemplate>,
    /// Keys written to the owning service's store, after the calls.
    pub writes: Vec<KeyTemplate>,
    /// Size of each value written.
    pub write_bytes: usize,
    /// Downstream calls, in order.
    pub calls: Vec<CallStep>,
}

/// Initial data a service's store is loaded with: keys `{prefix}0 .. {prefix}{count-1}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataSeed {
    pub key_prefix: String,
    pub count: u64,
    pub value_bytes: usize,
}

/// A service's store, as a unit embeds or serves it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreDef {
    pub service: String,
    pub seeds: Vec<DataSeed>,
}

/// What a unit is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnitRole {
    /// Serves `POST /op/{name}` for each hosted operation. Operations it does not host are
    /// reached over HTTP; stores it does not embed are reached through state units.
    Service {
        operations: Vec<OperationDef>,
        embedded_stores: Vec<StoreDef>,
        /// Request body size of every operation this unit calls over the network.
        remote_request_bytes: BTreeMap<String, usize>,
    },
    /// Serves one service's store over HTTP (`POST /get`, `POST /put`).
    State { store: StoreDef },
}

/// Everything a unit process needs to start, passed as `grainbench-unit unit --spec <json>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnitSpec {
    /// Unit name, unique within a deployment (used in logs and errors).
    pub name: String,
    pub role: UnitRole,
    /// Busy-loop iterations per microsecond of CPU, calibrated once by the harness so every
    /// unit of every architecture does exactly the same work.
    pub work_iterations_per_us: f64,
    /// The hops' security: this unit's credentials (none: plaintext).
    #[serde(default)]
    pub security: Option<crate::security::Credentials>,
    /// Whether the unit's calls reuse connections (off: a connection, and so a handshake,
    /// per call).
    #[serde(default = "keepalive_default")]
    pub keepalive: bool,
    /// Threads of the unit's async runtime (`None`: the units' default, 2).
    #[serde(default)]
    pub worker_threads: Option<usize>,
    /// How the unit's calls to other units time out, retry and break.
    #[serde(default)]
    pub resilience: crate::policy::Resilience,
    /// What its calls to other units speak (it answers calls in it too).
    #[serde(default)]
    pub transport: crate::modes::Transport,
    /// Where it sends the spans of traced requests (none: it builds no span).
    #[serde(default)]
    pub trace: Option<crate::trace::TraceExport>,
    /// Where it listens and what address it announces (default: 127.0.0.1 on a port the
    /// OS picks, announced as bound).
    #[serde(default)]
    pub listen: Listen,
}

/// Where a unit listens, and the address its callers reach it at.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Listen {
    /// `ip:port` to bind (`None`: 127.0.0.1, a port the OS picks). In a container,
    /// `0.0.0.0:8080`.
    #[serde(default)]
    pub bind: Option<String>,
    /// `host:port` announced instead of the bound address: in a container, its name on
    /// the run's network.
    #[serde(default)]
    pub advertise: Option<String>,
    /// Standalone (no harness, as in an exported deployment): these routes for good,
    /// stdin not read, only SIGTERM stops the unit. Never part of a spec sent to a unit.
    #[serde(skip)]
    pub routes: Option<Routes>,
}

fn keepalive_default() -> bool {
    true
}

/// One process serving a unit: its name (the unit's, with `#i` for a replica) and where
/// callers reach it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    pub unit: String,
    pub addr: String,
}

/// A fault injected into one unit's replies while a fault step runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ReplyFault {
    /// Added before every reply of the unit's operations (ms).
    #[serde(default)]
    pub delay_ms: f64,
    /// Probability that a call is answered 503 at once, naming the unit.
    #[serde(default)]
    pub fail_probability: f64,
}

/// Where a unit finds what it does not host and what network lies in between, sent to it
/// on stdin once all units listen, and again whenever a unit moves, the network changes or
/// a fault is injected or lifted.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Routes {
    /// Operation name → the processes serving it (several when its unit has replicas;
    /// callers balance across them round robin).
    pub operations: BTreeMap<String, Vec<Endpoint>>,
    /// Service name → `host:port` of the state unit serving its store.
    pub stores: BTreeMap<String, String>,
    /// The network this unit's outgoing requests cross (raw loopback by default); it can
    /// change while the unit runs, like the addresses.
    #[serde(default)]
    pub network: crate::network::NetworkModel,
    /// Faults injected now, by process name ([`Endpoint::unit`]); each unit applies its own.
    #[serde(default)]
    pub faults: BTreeMap<String, ReplyFault>,
}

/// The unit a replica's process belongs to: `micro-orders#1` → `micro-orders`.
pub fn unit_of_process(process: &str) -> &str {
    process.split_once('#').map_or(process, |(unit, _)| unit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_template_renders_params_and_marks_missing_ones() {
        let key = KeyTemplate("cart:{user}:{item}".into());
        let params = BTreeMap::from([("user".to_string(), 7), ("item".to_string(), 42)]);
        assert_eq!(key.render(&params), "cart:7:42");
        assert_eq!(key.render(&BTreeMap::new()), "cart:?:?");
        assert_eq!(key.placeholders(), vec!["user", "item"]);
    }

    #[test]
    fn call_step_lists_callees() {
        assert_eq!(CallStep::Op("a".into()).callees(), ["a".to_string()]);
        let par = CallStep::Parallel(vec!["a".into(), "b".into()]);
        assert_eq!(par.callees().len(), 2);
    }
}
