//! The generated series of cuts between nano and monolith, by agglomeration: start with
//! one unit per operation and merge two units at a time, always the pair whose merge
//! removes the most traffic-weighted hops per request, until one unit is left.
//!
//! The traffic of a call is how often it runs per request: entrypoint weights pushed down
//! the call graph (each call a caller makes per invocation counts once). Merging two units
//! removes every call between them (a service hop each), and, once every operation of a
//! service shares one unit, that service's state hops (its store becomes embedded). Ties go
//! to the smaller merged unit, then to the units whose first operations come first in the
//! file, so the series is the same on every run.
//!
//! [`Series::Services`] only merges inside services until each service is one unit (the
//! micro cut), then merges services the same way.

use super::cut::Series;
use crate::scenario::graph::CallGraph;
use crate::scenario::Scenario;
use std::collections::{BTreeMap, HashMap};

/// Most operations a series is generated for (each merge scans the calls between units).
pub const MAX_SWEEP_OPERATIONS: usize = 5_000;

/// Why a series cannot be generated or has no such cut.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SweepError {
    #[error("{operations} operations: a sweep is generated for at most {MAX_SWEEP_OPERATIONS}; name the cuts to compare in [[cut]] tables instead")]
    TooLarge { operations: usize },
    #[error("{series}{units}: the series has cuts with 1 to {operations} service units")]
    NoSuchCut {
        series: &'static str,
        units: usize,
        operations: usize,
    },
}

/// A generated series: the merges in order, replayed to give the cut with any number of
/// units.
#[derive(Debug, Clone)]
pub struct SweepSeries {
    pub series: Series,
    operations: usize,
    /// Each merge joins the units whose first operations have these indices.
    merges: Vec<(usize, usize)>,
    /// Traffic-weighted hops each merge removed, in units of entrypoint weight.
    pub gains: Vec<u64>,
}

impl SweepSeries {
    /// Generates `series` for `scenario`.
    pub fn generate(scenario: &Scenario, series: Series) -> Result<Self, SweepError> {
        let n = scenario.operations.len();
        if n > MAX_SWEEP_OPERATIONS {
            return Err(SweepError::TooLarge { operations: n });
        }
        let mut state = Agglomeration::new(scenario);
        let mut merges = Vec::with_capacity(n.saturating_sub(1));
        let mut gains = Vec::with_capacity(n.saturating_sub(1));
        while state.alive() > 1 {
            let within_services = series == Series::Services && !state.services_whole();
            let Some((a, b, gain)) = state.best_pair(within_services) else {
                break;
            };
            state.merge(a, b);
            merges.push((a, b));
            gains.push(gain);
        }
        Ok(SweepSeries {
            series,
            operations: n,
            merges,
            gains,
        })
    }

    /// Operations: the number of units of the series' finest cut.
    pub fn len(&self) -> usize {
        self.operations
    }

    pub fn is_empty(&self) -> bool {
        self.operations == 0
    }

    /// The cut with `units` service units: groups of operation indices, each group in
    /// file order and the groups ordered by their first operation.
    pub fn partition(&self, units: usize) -> Result<Vec<Vec<usize>>, SweepError> {
        if units == 0 || units > self.operations {
            return Err(SweepError::NoSuchCut {
                series: self.series.prefix(),
                units,
                operations: self.operations,
            });
        }
        let mut leader: Vec<usize> = (0..self.operations).collect();
        fn find(leader: &mut [usize], mut x: usize) -> usize {
            while leader[x] != x {
                leader[x] = leader[leader[x]];
                x = leader[x];
            }
            x
        }
        for &(a, b) in &self.merges[..self.operations - units] {
            let (ra, rb) = (find(&mut leader, a), find(&mut leader, b));
            leader[ra.max(rb)] = ra.min(rb);
        }
        let mut groups: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for op in 0..self.operations {
            let root = find(&mut leader, op);
            groups.entry(root).or_default().push(op);
        }
        Ok(groups.into_values().collect())
    }
}

/// The merging state: units by their first operation's index, the traffic between them,
/// and where each service's operations are.
struct Agglomeration {
    /// Unit (its first operation's index) → its operations; `None` once merged away.
    members: Vec<Option<Vec<usize>>>,
    /// Service of each operation (index into `service_gain`).
    service_of: Vec<usize>,
    /// (unit, unit), lower first → calls per request between them, weight-scaled.
    traffic: HashMap<(usize, usize), u64>,
    /// Per service: its units → operations in each.
    service_units: Vec<BTreeMap<usize, usize>>,
    /// Per service: the state hops per request its operations make while its store is
    /// remote, weight-scaled.
    service_gain: Vec<u64>,
}

impl Agglomeration {
    fn new(scenario: &Scenario) -> Self {
        let ops = &scenario.operations;
        let edges: Vec<(&str, Vec<&str>)> = ops
            .iter()
            .map(|op| {
                let callees = op.calls.iter().flat_map(|s| s.callees());
                (op.name.as_str(), callees.map(String::as_str).collect())
            })
            .collect();
        let graph = CallGraph::new(&edges);
        let invocations = invocations(scenario, &graph);
        let mut traffic: HashMap<(usize, usize), u64> = HashMap::new();
        for (caller, &count) in invocations.iter().enumerate() {
            for &callee in graph.callees(caller) {
                if callee != caller {
                    let key = (caller.min(callee), caller.max(callee));
                    let entry = traffic.entry(key).or_default();
                    *entry = entry.saturating_add(count);
                }
            }
        }
        let service_index = by_name(&scenario.services, |s| s.name.as_str());
        let service_of: Vec<usize> = ops
            .iter()
            .map(|op| service_index.get(op.service.as_str()).copied().unwrap_or(0))
            .collect();
        let mut service_units = vec![BTreeMap::new(); scenario.services.len().max(1)];
        let mut service_gain = vec![0u64; scenario.services.len().max(1)];
        for (op, def) in ops.iter().enumerate() {
            service_units[service_of[op]].insert(op, 1);
            let state_hops = u64::from(!def.reads.is_empty()) + u64::from(!def.writes.is_empty());
            let gain = &mut service_gain[service_of[op]];
            *gain = gain.saturating_add(invocations[op].saturating_mul(state_hops));
        }
        Agglomeration {
            members: (0..ops.len()).map(|op| Some(vec![op])).collect(),
            service_of,
            traffic,
            service_units,
            service_gain,
        }
    }

    fn alive(&self) -> usize {
        self.members.iter().filter(|m| m.is_some()).count()
    }

    fn size(&self, unit: usize) -> usize {
        self.members[unit].as_ref().map_or(0, Vec::len)
    }

    /// Whether every service's operations share one unit (the micro cut reached).
    fn services_whole(&self) -> bool {
        self.service_units.iter().all(|units| units.len() <= 1)
    }

    /// Whether `a` and `b` hold operations of one service only, the same one.
    fn same_service(&self, a: usize, b: usize) -> bool {
        let service = |unit: usize| {
            let ops = self.members[unit].as_deref().unwrap_or_default();
            let first = ops.first().map(|&op| self.service_of[op]);
            ops.iter()
                .all(|&op| Some(self.service_of[op]) == first)
                .then_some(first)
                .flatten()
        };
        service(a).is_some() && service(a) == service(b)
    }

    /// The pair to merge next and the hops its merge removes: the largest gain, then the
    /// smallest merged unit, then the earliest units.
    fn best_pair(&self, within_services: bool) -> Option<(usize, usize, u64)> {
        // Merging the last two units of a service with data embeds its store.
        let mut embeds: HashMap<(usize, usize), u64> = HashMap::new();
        for (service, units) in self.service_units.iter().enumerate() {
            if units.len() == 2 && self.service_gain[service] > 0 {
                let mut pair = units.keys().copied();
                if let (Some(a), Some(b)) = (pair.next(), pair.next()) {
                    let entry = embeds.entry((a, b)).or_default();
                    *entry = entry.saturating_add(self.service_gain[service]);
                }
            }
        }
        let calls = self.traffic.iter().map(|(&pair, &traffic)| {
            let embedded = embeds.get(&pair).copied().unwrap_or(0);
            (pair, traffic.saturating_add(embedded))
        });
        let embeds_only = embeds
            .iter()
            .filter(|(pair, _)| !self.traffic.contains_key(pair))
            .map(|(&pair, &gain)| (pair, gain));
        let rank = |&((a, b), gain): &((usize, usize), u64)| {
            (std::cmp::Reverse(gain), self.size(a) + self.size(b), a, b)
        };
        let best = calls
            .chain(embeds_only)
            .filter(|&((a, b), gain)| gain > 0 && (!within_services || self.same_service(a, b)))
            .min_by_key(rank);
        best.map(|((a, b), gain)| (a, b, gain))
            .or_else(|| self.smallest_pair(within_services))
    }

    /// Where no merge removes a hop: the two smallest units (of one service, when merging
    /// inside services).
    fn smallest_pair(&self, within_services: bool) -> Option<(usize, usize, u64)> {
        let mut units: Vec<usize> = (0..self.members.len())
            .filter(|&u| self.members[u].is_some())
            .collect();
        units.sort_by_key(|&u| (self.size(u), u));
        let mut best: Option<(usize, usize, usize)> = None;
        for (i, &a) in units.iter().enumerate() {
            for &b in &units[i + 1..] {
                if within_services && !self.same_service(a, b) {
                    continue;
                }
                let key = (self.size(a) + self.size(b), a.min(b), a.max(b));
                if best.is_none_or(|current| key < current) {
                    best = Some(key);
                }
                break;
            }
        }
        best.map(|(_, a, b)| (a, b, 0))
    }

    /// Merges `b` into `a` (into the one with the earlier first operation).
    fn merge(&mut self, a: usize, b: usize) {
        let (keep, gone) = (a.min(b), a.max(b));
        let moved = self.members[gone].take().unwrap_or_default();
        for &op in &moved {
            let units = &mut self.service_units[self.service_of[op]];
            if let Some(count) = units.remove(&gone) {
                *units.entry(keep).or_default() += count;
            }
        }
        if let Some(ops) = self.members[keep].as_mut() {
            ops.extend(moved);
            ops.sort_unstable();
        }
        let old = std::mem::take(&mut self.traffic);
        for ((x, y), t) in old {
            let (x, y) = (
                if x == gone { keep } else { x },
                if y == gone { keep } else { y },
            );
            if x != y {
                let entry = self.traffic.entry((x.min(y), x.max(y))).or_default();
                *entry = entry.saturating_add(t);
            }
        }
    }
}

/// Name → index of `items`.
fn by_name<'a, T>(items: &'a [T], name: impl Fn(&'a T) -> &'a str) -> HashMap<&'a str, usize> {
    items
        .iter()
        .enumerate()
        .map(|(i, item)| (name(item), i))
        .collect()
}

/// How often each operation runs per request, scaled by the entrypoint weights: each
/// entrypoint's weight, pushed down the call graph callers first.
fn invocations(scenario: &Scenario, graph: &CallGraph) -> Vec<u64> {
    let index = by_name(&scenario.operations, |op| op.name.as_str());
    let mut count = vec![0u64; scenario.operations.len()];
    for entry in &scenario.entrypoints {
        if let Some(&op) = index.get(entry.op.as_str()) {
            count[op] = count[op].saturating_add(u64::from(entry.weight));
        }
    }
    let (_, order) = graph.walk();
    for &op in order.iter().rev() {
        for &callee in graph.callees(op) {
            count[callee] = count[callee].saturating_add(count[op]);
        }
    }
    count
}

/// `count` cuts for a run, spread evenly by number of service units: nano, micro and
/// monolith always (even where `count` is below 3), then the series' cuts farthest in unit
/// count from those already picked (ties to the finer cut), finest first. A series cut with
/// micro's grouping is micro, and the series' one-unit cut is monolith.
pub fn choose(scenario: &Scenario, sweep: &SweepSeries, count: usize) -> Vec<super::Architecture> {
    use super::Architecture;
    let micro_units = scenario.services.len();
    let micro_partition: Vec<Vec<usize>> = {
        let index = by_name(&scenario.operations, |op| op.name.as_str());
        let mut groups: Vec<Vec<usize>> = scenario
            .services
            .iter()
            .map(|s| {
                let mut ops: Vec<usize> = s
                    .operations
                    .iter()
                    .filter_map(|o| index.get(o.as_str()).copied())
                    .collect();
                ops.sort_unstable();
                ops
            })
            .collect();
        groups.sort();
        groups
    };
    let mut picked: Vec<(usize, Architecture)> = vec![
        (sweep.len(), Architecture::Nano),
        (micro_units, Architecture::Micro),
        (1, Architecture::Monolith),
    ];
    let mut candidates: Vec<usize> = (2..sweep.len()).rev().collect();
    if let Ok(same) = sweep.partition(micro_units) {
        if same == micro_partition {
            candidates.retain(|&k| k != micro_units);
        }
    }
    while picked.len() < count && !candidates.is_empty() {
        let distance = |k: usize| picked.iter().map(|(u, _)| u.abs_diff(k)).min().unwrap_or(0);
        let Some((at, &units)) = candidates
            .iter()
            .enumerate()
            .max_by_key(|&(_, &k)| (distance(k), k))
        else {
            break;
        };
        candidates.remove(at);
        picked.push((
            units,
            Architecture::Sweep {
                series: sweep.series,
                units,
            },
        ));
    }
    picked.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    picked.into_iter().map(|(_, cut)| cut).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{outline, plan, Architecture};

    fn checkout() -> Scenario {
        crate::scenario::checkout_for_tests()
    }

    /// Hops per request of the series' cut with `units` units, weight-scaled (×Σ weights).
    fn scaled_hops(scenario: &Scenario, series: Series, units: usize) -> f64 {
        let weights: u32 = scenario.entrypoints.iter().map(|e| e.weight).sum();
        let cut = Architecture::Sweep { series, units };
        let deployment = plan(scenario, &cut).unwrap();
        outline(scenario, &deployment).hops_per_request * f64::from(weights)
    }

    #[test]
    fn each_merge_removes_the_hops_it_claims_and_hops_never_rise() {
        let s = checkout();
        for series in Series::ALL {
            let sweep = SweepSeries::generate(&s, series).unwrap();
            assert_eq!(sweep.gains.len(), s.operations.len() - 1);
            for (i, &gain) in sweep.gains.iter().enumerate() {
                let units = s.operations.len() - i;
                let removed = scaled_hops(&s, series, units) - scaled_hops(&s, series, units - 1);
                assert!(
                    (removed - gain as f64).abs() < 1e-6,
                    "{series:?} {units}→{}: plan says {removed}, merge claimed {gain}",
                    units - 1
                );
            }
        }
    }

    #[test]
    fn the_hops_series_takes_the_best_merge_first() {
        let s = checkout();
        let sweep = SweepSeries::generate(&s, Series::Hops).unwrap();
        let n = s.operations.len();
        // No single merge from the finest cut removes more than the first one does.
        let finest = sweep.partition(n).unwrap();
        assert_eq!(finest.len(), n);
        assert!(sweep.gains[0] >= *sweep.gains.iter().max().unwrap() / 4);
        assert!(sweep.gains[0] > 0);
        assert_eq!(sweep.partition(1).unwrap().len(), 1, "ends as one unit");
        assert!(sweep.partition(0).is_err() && sweep.partition(n + 1).is_err());
    }

    #[test]
    fn the_services_series_passes_through_micro() {
        let s = checkout();
        let sweep = SweepSeries::generate(&s, Series::Services).unwrap();
        let micro = plan(&s, &Architecture::Micro).unwrap();
        let cut = Architecture::Sweep {
            series: Series::Services,
            units: s.services.len(),
        };
        let at_micro = plan(&s, &cut).unwrap();
        let groups = |d: &crate::plan::Deployment| {
            let mut g: Vec<Vec<String>> = d
                .units
                .iter()
                .filter(|u| !u.is_state())
                .map(|u| {
                    let mut h = u.hosts.clone();
                    h.sort();
                    h
                })
                .collect();
            g.sort();
            g
        };
        assert_eq!(groups(&at_micro), groups(&micro));
        assert_eq!(at_micro.static_hops, micro.static_hops);
        // Before micro, no unit mixes two services.
        for units in s.services.len()..=s.operations.len() {
            for group in sweep.partition(units).unwrap() {
                let first = &s.operations[group[0]].service;
                assert!(group.iter().all(|&op| &s.operations[op].service == first));
            }
        }
    }

    #[test]
    fn series_are_deterministic() {
        let s = checkout();
        let a = SweepSeries::generate(&s, Series::Hops).unwrap();
        let b = SweepSeries::generate(&s, Series::Hops).unwrap();
        assert_eq!(a.merges, b.merges);
    }

    #[test]
    fn choose_spreads_cuts_by_units_and_always_keeps_the_built_ins() {
        let s = checkout();
        let sweep = SweepSeries::generate(&s, Series::Hops).unwrap();
        for count in [1, 3, 6, 10, 100] {
            let cuts = choose(&s, &sweep, count);
            for builtin in Architecture::ALL {
                assert!(cuts.contains(&builtin), "{count}: {cuts:?}");
            }
            assert_eq!(
                cuts.len(),
                count.clamp(3, s.operations.len() + 1),
                "{cuts:?}"
            );
            assert_eq!(cuts.first(), Some(&Architecture::Nano), "finest first");
            assert_eq!(cuts.last(), Some(&Architecture::Monolith));
        }
        let six = choose(&s, &sweep, 6);
        let units: Vec<usize> = six
            .iter()
            .map(|c| match c {
                Architecture::Sweep { units, .. } => *units,
                Architecture::Nano => s.operations.len(),
                Architecture::Micro => s.services.len(),
                _ => 1,
            })
            .collect();
        // Evenly spread: no two picks closer than 2 units on a 17-operation scenario.
        for pair in units.windows(2) {
            assert!(pair[0] >= pair[1] + 2, "{units:?}");
        }
    }

    #[test]
    fn a_scenario_too_large_to_sweep_is_refused() {
        let mut s = checkout();
        let op = s.operations[0].clone();
        s.operations = (0..=MAX_SWEEP_OPERATIONS)
            .map(|i| grain_runtime::model::OperationDef {
                name: format!("op{i}"),
                ..op.clone()
            })
            .collect();
        let error = SweepSeries::generate(&s, Series::Hops).unwrap_err();
        assert!(error.to_string().contains("[[cut]]"), "{error}");
    }
}
