//! Plans: cut × scenario → the units to deploy, what each hosts, where each service's data
//! lives, and the hops each entrypoint makes, computed statically from the call graph.
//! Every cut is a grouping of operations into units over the same unit code; only the
//! grouping and the state placement differ.
//!
//! - [`cut`]: which cut (built-in, named in the scenario, or generated), by name (defined
//!   beside the scenario, whose `[[cut]]`s it names; re-exported here)
//! - [`sweep`]: the generated series between nano and monolith
//! - `hops`: the static hops and critical path of every operation under a plan
//! - `outline`: what a cut costs statically (units, hops, critical path, blast radius)

pub use grain_report::modes::cut;
mod hops;
mod outline;
mod units;
use units::{builtin_groups, named_groups, plan_grouping, Index};
pub mod sweep;

pub use cut::{Architecture, Series};
pub use outline::{
    describe, describe_sweep, mean_blast_radius, outline, outline_table, CutOutline, OUTLINE_NOTE,
};

use crate::scenario::{Scenario, Service};
pub use grain_report::modes::{variant_label, Mesh, Tracing};
use grain_runtime::model::{Endpoint, OperationDef, Routes, StoreDef, UnitRole};
use grain_runtime::network::NetworkModel;
pub use grain_runtime::security::SecurityMode;
pub use grain_runtime::transport::Transport;
use grain_runtime::wire::Hops;
use hops::HopTable;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// Where services keep their data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StatePlacement {
    /// Each service's store lives in the unit hosting all of its operations.
    Embedded,
    /// Units are stateless; each service with data gets a state unit.
    StateUnits,
}

/// One unit to deploy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedUnit {
    pub name: String,
    /// Operations served (service units) or the service whose store is served (state units).
    pub hosts: Vec<String>,
    pub role: UnitRole,
    /// Processes running it: above 1 its services' data lives in state units the replicas
    /// share (state units themselves run once, as a database would).
    #[serde(default = "one_replica")]
    pub replicas: u32,
}

fn one_replica() -> u32 {
    1
}

impl PlannedUnit {
    /// The name of replica `i`'s process: the unit's own when it runs once, `unit#i`
    /// otherwise.
    pub fn process_name(&self, replica: u32) -> String {
        if self.replicas <= 1 {
            self.name.clone()
        } else {
            format!("{}#{replica}", self.name)
        }
    }

    pub fn is_state(&self) -> bool {
        matches!(self.role, UnitRole::State { .. })
    }
}

/// A complete deployment plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deployment {
    pub architecture: Architecture,
    /// What every hop speaks (plaintext unless the run asks for more): a run with several
    /// modes deploys each cut once per mode.
    #[serde(default)]
    pub security: SecurityMode,
    /// What every unit-to-unit hop speaks: a run with several transports deploys each cut
    /// once per transport.
    #[serde(default)]
    pub transport: Transport,
    /// Whether every unit runs behind a sidecar proxy: a run with several mesh modes
    /// deploys each cut once per mode.
    #[serde(default)]
    pub mesh: Mesh,
    /// Whether its requests are traced (`--trace`; both ways under `--trace-overhead`).
    #[serde(default)]
    pub tracing: Tracing,
    pub units: Vec<PlannedUnit>,
    /// Operation → index in `units` of the unit serving it.
    pub op_unit: BTreeMap<String, usize>,
    /// Service → index in `units` of its state unit (only where data is not embedded).
    pub store_unit: BTreeMap<String, usize>,
    /// Entrypoint operation → hops one request makes, the driver's request included.
    pub static_hops: BTreeMap<String, Hops>,
    /// Entrypoint operation → round trips on its longest chain of requests made one after
    /// another, the driver's included: what a per-hop delay adds to its latency.
    pub critical_path_hops: BTreeMap<String, u32>,
}

impl Deployment {
    /// The cut, the mode when hops are secured and the transport when not HTTP/1.1 +
    /// JSON: `micro`, `micro+mtls`, `micro+grpc`.
    pub fn label(&self) -> String {
        variant_label(
            &self.architecture,
            self.security,
            self.transport,
            self.mesh,
            self.tracing,
        )
    }

    /// The same plan with every unit behind `mesh`, or why that combination is not
    /// supported: sidecars proxy HTTP/1.1 and terminate TLS and mutual TLS themselves;
    /// tokens (checked by the units) and the gRPC and binary transports are not proxied.
    pub fn meshed(mut self, mesh: Mesh) -> Result<Self, PlanError> {
        if mesh == Mesh::Sidecar {
            let unsupported = |what: String| PlanError::Unsupported {
                label: variant_label(
                    &self.architecture,
                    self.security,
                    self.transport,
                    mesh,
                    self.tracing,
                ),
                what,
            };
            if self.transport != Transport::Http1Json {
                return Err(unsupported(format!(
                    "the sidecars proxy HTTP/1.1 only, not {}",
                    self.transport.title()
                )));
            }
            if matches!(self.security, SecurityMode::Token | SecurityMode::MtlsToken) {
                return Err(unsupported(format!(
                    "under a mesh the sidecars terminate TLS and mutual TLS; {} needs the units to check tokens, which is not built",
                    self.security
                )));
            }
        }
        self.mesh = mesh;
        Ok(self)
    }

    /// The units that unit `unit` calls over the network: the units serving the
    /// operations it calls and do not host, and the state units of the stores its
    /// operations read or write.
    pub fn callees(&self, unit: usize) -> BTreeSet<usize> {
        let UnitRole::Service {
            operations,
            remote_request_bytes,
            ..
        } = &self.units[unit].role
        else {
            return BTreeSet::new();
        };
        let remote = remote_request_bytes
            .keys()
            .filter_map(|op| self.op_unit.get(op).copied());
        let stores = operations
            .iter()
            .filter(|op| !op.reads.is_empty() || !op.writes.is_empty())
            .filter_map(|op| self.store_unit.get(&op.service).copied());
        remote.chain(stores).filter(|&u| u != unit).collect()
    }

    /// The same plan with every hop speaking `security`.
    pub fn secured(mut self, security: SecurityMode) -> Self {
        self.security = security;
        self
    }

    /// The same plan with its requests traced or not.
    pub fn traced(mut self, tracing: Tracing) -> Self {
        self.tracing = tracing;
        self
    }

    /// The same plan with every unit-to-unit hop speaking `transport`.
    pub fn speaking(mut self, transport: Transport) -> Self {
        self.transport = transport;
        self
    }

    /// Routes every unit needs, given each unit's processes (same order as `units`) and
    /// the network between them.
    pub fn routes(&self, processes: &[Vec<Endpoint>], network: &NetworkModel) -> Routes {
        let first = |i: usize| {
            processes[i]
                .first()
                .map_or(String::new(), |e| e.addr.clone())
        };
        Routes {
            network: network.clone(),
            operations: self
                .op_unit
                .iter()
                .map(|(op, &i)| (op.clone(), processes[i].clone()))
                .collect(),
            stores: self
                .store_unit
                .iter()
                .map(|(s, &i)| (s.clone(), first(i)))
                .collect(),
            faults: BTreeMap::new(),
        }
    }

    /// Every process the plan runs (each unit's replicas counted).
    pub fn process_count(&self) -> usize {
        self.units.iter().map(|u| u.replicas.max(1) as usize).sum()
    }

    /// Index of the unit serving `op`.
    pub fn unit_of(&self, op: &str) -> Option<usize> {
        self.op_unit.get(op).copied()
    }
}

/// Why a cut cannot be planned for a scenario.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("scenario {scenario} has no cut {name:?}; its cuts: {}", available.join(", "))]
    UnknownCut {
        name: String,
        scenario: String,
        available: Vec<String>,
    },
    #[error("{label} cannot be deployed: {what}")]
    Unsupported { label: String, what: String },
    #[error("scenario {scenario}: {source}")]
    Sweep {
        scenario: String,
        source: sweep::SweepError,
    },
}

/// Every cut name `scenario` accepts besides the generated series': the built-ins and its
/// `[[cut]]`s.
pub fn cut_names(scenario: &Scenario) -> Vec<String> {
    Architecture::ALL
        .iter()
        .map(Architecture::name)
        .chain(scenario.cuts.iter().map(|c| c.name.clone()))
        .collect()
}

/// Plans `architecture` for `scenario`.
pub fn plan(scenario: &Scenario, architecture: &Architecture) -> Result<Deployment, PlanError> {
    let (groups, placement) = match architecture {
        Architecture::Named(name) => {
            let cut = scenario.cut(name).ok_or_else(|| PlanError::UnknownCut {
                name: name.clone(),
                scenario: scenario.name.clone(),
                available: cut_names(scenario),
            })?;
            (named_groups(name, &cut.units), StatePlacement::Embedded)
        }
        Architecture::Sweep { series, units } => {
            let sweep_error = |source| PlanError::Sweep {
                scenario: scenario.name.clone(),
                source,
            };
            let partition = sweep::SweepSeries::generate(scenario, *series)
                .and_then(|s| s.partition(*units))
                .map_err(sweep_error)?;
            let groups: Vec<Vec<String>> = partition
                .into_iter()
                .map(|g| {
                    g.into_iter()
                        .map(|op| scenario.operations[op].name.clone())
                        .collect()
                })
                .collect();
            (
                named_groups(&architecture.name(), &groups),
                StatePlacement::Embedded,
            )
        }
        builtin => builtin_groups(scenario, builtin),
    };
    Ok(plan_grouping(
        scenario,
        architecture.clone(),
        groups,
        placement,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario() -> Scenario {
        crate::scenario::checkout_for_tests()
    }

    #[test]
    fn critical_paths_count_parallel_calls_once_and_never_exceed_all_hops() {
        let s = scenario();
        let critical = |arch| {
            let d = plan(&s, &arch).unwrap();
            for (entry, hops) in &d.static_hops {
                let on_path = d.critical_path_hops[entry];
                assert!(on_path >= 1 && on_path <= hops.total(), "{arch} {entry}");
            }
            d.critical_path_hops
        };
        let (nano, micro, mono) = (
            critical(Architecture::Nano),
            critical(Architecture::Micro),
            critical(Architecture::Monolith),
        );
        assert!(mono.values().all(|&h| h == 1), "one hop: the driver's");
        // checkout calls in parallel: fewer round trips on its path than hops in all.
        let checkout_nano = plan(&s, &Architecture::Nano).unwrap().static_hops["checkout"].total();
        assert!(nano["checkout"] < checkout_nano);
        for entry in nano.keys() {
            assert!(nano[entry] >= micro[entry] && micro[entry] >= mono[entry]);
        }
    }

    #[test]
    fn nano_has_one_unit_per_operation_plus_state_units() {
        let s = scenario();
        let d = plan(&s, &Architecture::Nano).unwrap();
        let service_units = d.units.iter().filter(|u| !u.is_state()).count();
        assert_eq!(service_units, s.operations.len());
        for unit in d.units.iter().filter(|u| !u.is_state()) {
            match &unit.role {
                UnitRole::Service {
                    embedded_stores, ..
                } => assert!(embedded_stores.is_empty()),
                UnitRole::State { .. } => unreachable!(),
            }
        }
        assert!(d.units.iter().any(|u| u.is_state()));
    }

    #[test]
    fn micro_embeds_each_service_store_and_monolith_is_one_unit() {
        let s = scenario();
        let micro = plan(&s, &Architecture::Micro).unwrap();
        assert_eq!(micro.units.len(), s.services.len());
        assert!(micro.store_unit.is_empty());
        let mono = plan(&s, &Architecture::Monolith).unwrap();
        assert_eq!(mono.units.len(), 1);
        for hops in mono.static_hops.values() {
            assert_eq!(
                *hops,
                Hops {
                    service: 1,
                    state: 0
                }
            );
        }
    }

    #[test]
    fn static_hops_order_nano_over_micro_over_monolith() {
        let s = scenario();
        let [nano, micro, mono] = Architecture::ALL.map(|a| plan(&s, &a).unwrap());
        for entry in &s.entrypoints {
            let n = nano.static_hops[&entry.op].total();
            let m = micro.static_hops[&entry.op].total();
            let o = mono.static_hops[&entry.op].total();
            assert!(
                n > m && m > o && o == 1,
                "{}: nano {n}, micro {m}, monolith {o}",
                entry.op
            );
        }
    }

    #[test]
    fn routes_point_every_operation_at_its_unit() {
        let s = scenario();
        let d = plan(&s, &Architecture::Micro).unwrap();
        let addrs: Vec<Vec<Endpoint>> = (0..d.units.len())
            .map(|i| {
                let endpoint = |r: usize| Endpoint {
                    unit: format!("u{i}#{r}"),
                    addr: format!("127.0.0.1:{}", 1000 + 10 * i + r),
                };
                vec![endpoint(0), endpoint(1)]
            })
            .collect();
        let network = NetworkModel::fixed("1ms", std::time::Duration::from_millis(1));
        let routes = d.routes(&addrs, &network);
        assert_eq!(
            routes.network, network,
            "the network travels with the routes"
        );
        assert_eq!(routes.operations.len(), s.operations.len());
        let i = d.unit_of("checkout").unwrap();
        assert_eq!(routes.operations["checkout"], addrs[i], "every replica");
    }

    #[test]
    fn replicated_units_share_their_data_through_a_state_unit() {
        let mut s = scenario();
        let micro = plan(&s, &Architecture::Micro).unwrap();
        for service in &mut s.services {
            if service.name == "catalogue" {
                service.replicas = 3;
            }
        }
        let replicated = plan(&s, &Architecture::Micro).unwrap();
        let catalogue = &replicated.units[replicated.unit_of("get_item").unwrap()];
        assert_eq!(catalogue.replicas, 3);
        assert_eq!(catalogue.process_name(2), "micro-catalogue#2");
        assert!(replicated.store_unit.contains_key("catalogue"));
        assert_eq!(replicated.store_unit.len(), 1, "the others stay embedded");
        assert_eq!(replicated.process_count(), micro.units.len() + 2 + 1);
        // Its reads now cross a state hop; the request's service hops do not change.
        let (before, after) = (
            micro.static_hops["view_product"],
            replicated.static_hops["view_product"],
        );
        assert_eq!(before.service, after.service);
        assert!(after.state > before.state);
        // The monolith with replicas: every store in a state unit, the unit run twice.
        for service in &mut s.services {
            service.replicas = 2;
        }
        let mono = plan(&s, &Architecture::Monolith).unwrap();
        assert_eq!(mono.units[0].replicas, 2);
        assert!(mono.units[1..]
            .iter()
            .all(|u| u.is_state() && u.replicas == 1));
    }
}
