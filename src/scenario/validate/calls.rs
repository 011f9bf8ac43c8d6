//! Checks of the call graph as a whole: no call closes a cycle, and no entrypoint makes
//! more hops per request than the documented limit in any architecture (nano, where every
//! call and every state access is a hop, makes the most). Both walk the graph once
//! ([`crate::scenario::graph`]), whatever its depth or sharing.

use super::Checker;
use crate::scenario::file::{RawOperation, RawScenario};
use crate::scenario::graph::CallGraph;
use crate::scenario::limits::MAX_HOPS_PER_REQUEST;
use std::collections::{BTreeSet, HashSet};
use toml::Spanned;

/// Flags every call that closes a cycle and, on an acyclic graph, every entrypoint whose
/// requests would make more than [`MAX_HOPS_PER_REQUEST`] hops.
pub(super) fn check_calls(checker: &mut Checker, raw: &RawScenario) {
    let names: HashSet<&str> = raw
        .operations
        .iter()
        .map(|op| op.name.get_ref().as_str())
        .collect();
    // Each operation's calls to known operations, in call order (the graph's indices).
    let calls: Vec<Vec<&Spanned<String>>> = raw
        .operations
        .iter()
        .map(|op| {
            callees_of(op)
                .filter(|c| names.contains(c.get_ref().as_str()))
                .collect()
        })
        .collect();
    let edges: Vec<(&str, Vec<&str>)> = raw
        .operations
        .iter()
        .zip(&calls)
        .map(|(op, calls)| {
            let callees = calls.iter().map(|c| c.get_ref().as_str()).collect();
            (op.name.get_ref().as_str(), callees)
        })
        .collect();
    let graph = CallGraph::new(&edges);
    let (cycles, order) = graph.walk();
    // The same cycle can close at several calls: report each set of members once.
    let mut reported = BTreeSet::new();
    for cycle in &cycles {
        let members: BTreeSet<usize> = cycle.path.iter().copied().collect();
        if !reported.insert(members) {
            continue;
        }
        let path: Vec<&str> = cycle.path.iter().map(|&i| edges[i].0).collect();
        checker.flag(
            calls[cycle.from][cycle.call].span(),
            format!("operation[{}].calls", edges[cycle.from].0),
            format!(
                "call cycle: {}; calls must form a tree or DAG",
                path.join(" → ")
            ),
        );
    }
    if cycles.is_empty() {
        check_hops(checker, raw, &graph, &order);
    }
}

fn callees_of(op: &RawOperation) -> impl Iterator<Item = &Spanned<String>> {
    op.calls.iter().flat_map(|call| {
        let call = call.get_ref();
        call.op.iter().chain(call.parallel.iter().flatten())
    })
}

/// Hops a request to each operation makes downstream as nano: one per call, plus one per
/// state access (its reads, its writes), all the way down; saturating, never wrapping.
fn nano_hops(raw: &RawScenario, graph: &CallGraph, order: &[usize]) -> Vec<u64> {
    graph.fold(order, |op, callees: &[&u64]| {
        let def = &raw.operations[op];
        let state = u64::from(!def.reads.is_empty()) + u64::from(!def.writes.is_empty());
        callees.iter().fold(state, |sum, hops| {
            sum.saturating_add(1).saturating_add(**hops)
        })
    })
}

fn check_hops(checker: &mut Checker, raw: &RawScenario, graph: &CallGraph, order: &[usize]) {
    let hops = nano_hops(raw, graph, order);
    let index_of: std::collections::HashMap<&str, usize> = raw
        .operations
        .iter()
        .enumerate()
        .map(|(i, op)| (op.name.get_ref().as_str(), i))
        .collect();
    for entry in &raw.entrypoints {
        let name = entry.op.get_ref();
        let Some(&index) = index_of.get(name.as_str()) else {
            continue;
        };
        // The driver's own request to the entry unit is a hop too.
        let total = hops[index].saturating_add(1);
        if total > MAX_HOPS_PER_REQUEST {
            let shown = if total == u64::MAX {
                "more than 18 quintillion".to_string()
            } else {
                total.to_string()
            };
            checker.flag(
                entry.op.span(),
                "entrypoint.op",
                format!(
                    "a request to {name:?} makes {shown} hops as nano (every call and state access \
                     a hop); the limit is {MAX_HOPS_PER_REQUEST} hops per request: call fewer \
                     operations, or share callees less deeply"
                ),
            );
        }
    }
}
