//! Plans: architecture × scenario → the units to deploy, what each hosts, where each
//! service's data lives, and the hops each entrypoint makes, computed statically from the
//! call graph. Every architecture is a grouping of operations into units over the same
//! unit code; only the grouping and the state placement differ.

use crate::scenario::Scenario;
use grain_runtime::model::{OperationDef, Routes, StoreDef, UnitRole};
use grain_runtime::network::NetworkModel;
use grain_runtime::wire::Hops;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How finely the scenario is cut into deployable units.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Architecture {
    /// One unit per operation; stateless, data in one state unit per service.
    Nano,
    /// One unit per service, embedding that service's store.
    Micro,
    /// One unit for everything, one embedded store per service.
    Monolith,
}

impl Architecture {
    pub const ALL: [Architecture; 3] = [
        Architecture::Nano,
        Architecture::Micro,
        Architecture::Monolith,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Architecture::Nano => "nano",
            Architecture::Micro => "micro",
            Architecture::Monolith => "monolith",
        }
    }
}

impl std::fmt::Display for Architecture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

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
}

impl PlannedUnit {
    pub fn is_state(&self) -> bool {
        matches!(self.role, UnitRole::State { .. })
    }
}

/// A complete deployment plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deployment {
    pub architecture: Architecture,
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
    /// Routes every unit needs, given each unit's listening address (same order as `units`)
    /// and the network between them.
    pub fn routes(&self, addrs: &[String], network: &NetworkModel) -> Routes {
        Routes {
            network: network.clone(),
            operations: self
                .op_unit
                .iter()
                .map(|(op, &i)| (op.clone(), addrs[i].clone()))
                .collect(),
            stores: self
                .store_unit
                .iter()
                .map(|(s, &i)| (s.clone(), addrs[i].clone()))
                .collect(),
        }
    }

    /// Index of the unit serving `op`.
    pub fn unit_of(&self, op: &str) -> Option<usize> {
        self.op_unit.get(op).copied()
    }
}

/// Plans `architecture` for `scenario`.
pub fn plan(scenario: &Scenario, architecture: Architecture) -> Deployment {
    let (groups, placement) = match architecture {
        Architecture::Nano => (
            scenario
                .operations
                .iter()
                .map(|op| (format!("nano-{}", op.name), vec![op.name.clone()]))
                .collect(),
            StatePlacement::StateUnits,
        ),
        Architecture::Micro => (
            scenario
                .services
                .iter()
                .map(|s| (format!("micro-{}", s.name), s.operations.clone()))
                .collect(),
            StatePlacement::Embedded,
        ),
        Architecture::Monolith => (
            vec![(
                "monolith".to_string(),
                scenario
                    .operations
                    .iter()
                    .map(|op| op.name.clone())
                    .collect(),
            )],
            StatePlacement::Embedded,
        ),
    };
    plan_grouping(scenario, architecture, groups, placement)
}

fn plan_grouping(
    scenario: &Scenario,
    architecture: Architecture,
    groups: Vec<(String, Vec<String>)>,
    placement: StatePlacement,
) -> Deployment {
    let mut op_unit = BTreeMap::new();
    for (index, (_, ops)) in groups.iter().enumerate() {
        for op in ops {
            op_unit.insert(op.clone(), index);
        }
    }
    let embedded_in = |service: &str| -> Option<usize> {
        if placement == StatePlacement::StateUnits {
            return None;
        }
        let owner_units: Vec<usize> = scenario
            .operations
            .iter()
            .filter(|op| op.service == service)
            .map(|op| op_unit[&op.name])
            .collect();
        let first = *owner_units.first()?;
        owner_units.iter().all(|&u| u == first).then_some(first)
    };

    let mut units: Vec<PlannedUnit> = groups
        .iter()
        .enumerate()
        .map(|(index, (name, ops))| {
            let operations: Vec<OperationDef> = ops
                .iter()
                .filter_map(|op| scenario.operation(op).cloned())
                .collect();
            let embedded_stores = scenario
                .services
                .iter()
                .filter(|s| embedded_in(&s.name) == Some(index))
                .map(|s| store_def(scenario, &s.name))
                .collect();
            let remote_request_bytes = operations
                .iter()
                .flat_map(|op| op.calls.iter().flat_map(|step| step.callees()))
                .filter(|callee| !ops.contains(callee))
                .filter_map(|callee| scenario.operation(callee))
                .map(|callee| (callee.name.clone(), callee.request_bytes))
                .collect();
            PlannedUnit {
                name: name.clone(),
                hosts: ops.clone(),
                role: UnitRole::Service {
                    operations,
                    embedded_stores,
                    remote_request_bytes,
                },
            }
        })
        .collect();

    let mut store_unit = BTreeMap::new();
    for service in &scenario.services {
        if embedded_in(&service.name).is_some() || !has_data(scenario, &service.name) {
            continue;
        }
        store_unit.insert(service.name.clone(), units.len());
        units.push(PlannedUnit {
            name: format!("state-{}", service.name),
            hosts: vec![format!("store of {}", service.name)],
            role: UnitRole::State {
                store: store_def(scenario, &service.name),
            },
        });
    }

    let mut deployment = Deployment {
        architecture,
        units,
        op_unit,
        store_unit,
        static_hops: BTreeMap::new(),
        critical_path_hops: BTreeMap::new(),
    };
    for entry in &scenario.entrypoints {
        // Both count the driver's request to the entry unit.
        let mut hops = downstream_hops(scenario, &deployment, &entry.op);
        hops.service += 1;
        deployment.static_hops.insert(entry.op.clone(), hops);
        let critical = 1 + critical_path_hops(scenario, &deployment, &entry.op);
        deployment
            .critical_path_hops
            .insert(entry.op.clone(), critical);
    }
    deployment
}

fn store_def(scenario: &Scenario, service: &str) -> StoreDef {
    StoreDef {
        service: service.to_string(),
        seeds: scenario
            .service(service)
            .map(|s| s.data.clone())
            .unwrap_or_default(),
    }
}

/// Whether a service has data: seeded keys, or operations that read or write.
fn has_data(scenario: &Scenario, service: &str) -> bool {
    let seeded = scenario
        .service(service)
        .is_some_and(|s| !s.data.is_empty());
    seeded
        || scenario
            .operations
            .iter()
            .any(|op| op.service == service && (!op.reads.is_empty() || !op.writes.is_empty()))
}

/// Hops `op` makes downstream when served by its unit in `deployment` (mirrors what the
/// service unit does: one state hop for its reads, one for its writes when the store is
/// remote, one service hop per call to an operation on another unit).
pub fn downstream_hops(scenario: &Scenario, deployment: &Deployment, op: &str) -> Hops {
    let Some(def) = scenario.operation(op) else {
        return Hops::default();
    };
    let mut hops = Hops::default();
    if deployment.store_unit.contains_key(&def.service) {
        hops.state += u32::from(!def.reads.is_empty()) + u32::from(!def.writes.is_empty());
    }
    let here = deployment.unit_of(op);
    for callee in def.calls.iter().flat_map(|step| step.callees()) {
        if deployment.unit_of(callee) != here {
            hops.service += 1;
        }
        hops += downstream_hops(scenario, deployment, callee);
    }
    hops
}

/// Round trips on the longest chain of requests `op` makes one after another downstream
/// (mirrors the service unit: its reads, then its call steps in order — the slowest callee
/// of a parallel step — then its writes; a read or write batch to a remote store and a
/// call to another unit are one round trip each).
pub fn critical_path_hops(scenario: &Scenario, deployment: &Deployment, op: &str) -> u32 {
    let Some(def) = scenario.operation(op) else {
        return 0;
    };
    let mut hops = 0;
    if deployment.store_unit.contains_key(&def.service) {
        hops += u32::from(!def.reads.is_empty()) + u32::from(!def.writes.is_empty());
    }
    let here = deployment.unit_of(op);
    for step in &def.calls {
        hops += step
            .callees()
            .iter()
            .map(|callee| {
                u32::from(deployment.unit_of(callee) != here)
                    + critical_path_hops(scenario, deployment, callee)
            })
            .max()
            .unwrap_or(0);
    }
    hops
}

/// What `grainbench plan` prints: the units of `architecture`, what each hosts, and the
/// static hops and critical-path round trips per entrypoint.
pub fn describe(scenario: &Scenario, architecture: Architecture) -> String {
    use std::fmt::Write as _;
    let deployment = plan(scenario, architecture);
    let mut out = format!(
        "{} as {}: {} units\n",
        scenario.name,
        architecture,
        deployment.units.len()
    );
    for unit in &deployment.units {
        let role = if unit.is_state() {
            "state  "
        } else {
            "service"
        };
        let _ = writeln!(out, "  {role} {:<28} {}", unit.name, unit.hosts.join(", "));
    }
    out.push_str("static hops per request (driver → entry included), and round trips on the critical path:\n");
    for (entry, hops) in &deployment.static_hops {
        let critical = deployment
            .critical_path_hops
            .get(entry)
            .copied()
            .unwrap_or(0);
        let _ = writeln!(
            out,
            "  {entry:<20} {:>3} = {} service + {} state; {critical} on the critical path",
            hops.total(),
            hops.service,
            hops.state,
        );
    }
    out
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
            let d = plan(&s, arch);
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
        let checkout_nano = plan(&s, Architecture::Nano).static_hops["checkout"].total();
        assert!(nano["checkout"] < checkout_nano);
        for entry in nano.keys() {
            assert!(nano[entry] >= micro[entry] && micro[entry] >= mono[entry]);
        }
    }

    #[test]
    fn nano_has_one_unit_per_operation_plus_state_units() {
        let s = scenario();
        let d = plan(&s, Architecture::Nano);
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
        let micro = plan(&s, Architecture::Micro);
        assert_eq!(micro.units.len(), s.services.len());
        assert!(micro.store_unit.is_empty());
        let mono = plan(&s, Architecture::Monolith);
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
        let [nano, micro, mono] = Architecture::ALL.map(|a| plan(&s, a));
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
        let d = plan(&s, Architecture::Micro);
        let addrs: Vec<String> = (0..d.units.len())
            .map(|i| format!("127.0.0.1:{}", 1000 + i))
            .collect();
        let network = NetworkModel::fixed("1ms", std::time::Duration::from_millis(1));
        let routes = d.routes(&addrs, &network);
        assert_eq!(
            routes.network, network,
            "the network travels with the routes"
        );
        assert_eq!(routes.operations.len(), s.operations.len());
        let i = d.unit_of("checkout").unwrap();
        assert_eq!(routes.operations["checkout"], addrs[i]);
    }
}
