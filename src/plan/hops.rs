//! Static hops of a plan: per operation, the hops a request to it makes downstream and
//! the round trips on its critical path, from the call graph and where each operation runs.

use super::{Deployment, Index};
use crate::scenario::graph::CallGraph;
use crate::scenario::Scenario;
use grain_runtime::wire::Hops;

/// Per operation (by index): the hops a request to it makes downstream, and the round
/// trips on its critical path, computed once each, callees first (mirrors what the service
/// unit does: one state hop for its reads and one for its writes when the store is remote,
/// one service hop per call to another unit; on the critical path its reads, then each
/// call step in order — the slowest callee of a parallel step — then its writes).
pub(super) struct HopTable {
    pub(super) downstream: Vec<Hops>,
    pub(super) critical: Vec<u32>,
}

impl HopTable {
    pub(super) fn of(scenario: &Scenario, index: &Index, deployment: &Deployment) -> Self {
        let edges: Vec<(&str, Vec<&str>)> = scenario
            .operations
            .iter()
            .map(|op| {
                let callees = op
                    .calls
                    .iter()
                    .flat_map(|s| s.callees())
                    .map(String::as_str);
                (op.name.as_str(), callees.collect())
            })
            .collect();
        let (_, order) = CallGraph::new(&edges).walk();
        let n = scenario.operations.len();
        let mut downstream = vec![Hops::default(); n];
        let mut critical = vec![0u32; n];
        for op in order {
            let def = &scenario.operations[op];
            let here = deployment.unit_of(&def.name);
            let state = if deployment.store_unit.contains_key(&def.service) {
                u32::from(!def.reads.is_empty()) + u32::from(!def.writes.is_empty())
            } else {
                0
            };
            let mut hops = Hops { service: 0, state };
            let mut path = state;
            for step in &def.calls {
                let mut slowest = 0u32;
                for callee in step.callees() {
                    let Some(&c) = index.by_name.get(callee.as_str()) else {
                        continue;
                    };
                    let remote = u32::from(deployment.unit_of(callee) != here);
                    hops.service = hops.service.saturating_add(remote);
                    hops.service = hops.service.saturating_add(downstream[c].service);
                    hops.state = hops.state.saturating_add(downstream[c].state);
                    slowest = slowest.max(remote.saturating_add(critical[c]));
                }
                path = path.saturating_add(slowest);
            }
            downstream[op] = hops;
            critical[op] = path;
        }
        HopTable {
            downstream,
            critical,
        }
    }
}
