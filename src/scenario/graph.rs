//! The call graph of a scenario's operations, walked without recursion and without
//! re-walking shared callees: cycle detection and the callees-first order are one
//! iterative depth-first search (linear in operations + calls), and every per-operation
//! figure (hops, critical path) is computed once per operation in that order. A
//! 100 000-operation chain or a 26-level diamond costs what its edges cost, never a
//! stack overflow or an exponential walk.

use std::collections::HashMap;

/// Operations by index and, for each, the indices of what it calls, in call order (a
/// callee called twice appears twice: each call is a hop).
#[derive(Debug, Clone)]
pub struct CallGraph {
    callees: Vec<Vec<usize>>,
}

/// A call that closes a cycle: operation `from` calls `to` (its `call`-th callee), and
/// `path` is the cycle, starting and ending at `to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cycle {
    pub from: usize,
    pub call: usize,
    pub path: Vec<usize>,
}

impl CallGraph {
    /// The graph of `operations`, each given as its name and its callees' names in call
    /// order. Calls to names that are not operations are left out (validation reports them).
    pub fn new<'a>(operations: &[(&'a str, Vec<&'a str>)]) -> Self {
        let index: HashMap<&str, usize> = operations
            .iter()
            .enumerate()
            .map(|(i, (name, _))| (*name, i))
            .collect();
        let callees = operations
            .iter()
            .map(|(_, calls)| calls.iter().filter_map(|c| index.get(c).copied()).collect())
            .collect();
        CallGraph { callees }
    }

    pub fn len(&self) -> usize {
        self.callees.len()
    }

    pub fn is_empty(&self) -> bool {
        self.callees.is_empty()
    }

    /// The indices `op` calls, in call order.
    pub fn callees(&self, op: usize) -> &[usize] {
        &self.callees[op]
    }

    /// Every call that closes a cycle, and the order in which each operation's callees
    /// come before it (complete only when there is no cycle).
    pub fn walk(&self) -> (Vec<Cycle>, Vec<usize>) {
        #[derive(Clone, Copy, PartialEq)]
        enum State {
            New,
            OnPath(usize),
            Done,
        }
        let mut state = vec![State::New; self.len()];
        let mut order = Vec::with_capacity(self.len());
        let mut cycles = Vec::new();
        // The current path: (operation, next call to follow).
        let mut path: Vec<(usize, usize)> = Vec::new();
        for root in 0..self.len() {
            if state[root] != State::New {
                continue;
            }
            state[root] = State::OnPath(0);
            path.push((root, 0));
            while let Some(&mut (op, ref mut next)) = path.last_mut() {
                let Some(&callee) = self.callees[op].get(*next) else {
                    state[op] = State::Done;
                    order.push(op);
                    path.pop();
                    continue;
                };
                let call = *next;
                *next += 1;
                match state[callee] {
                    State::New => {
                        state[callee] = State::OnPath(path.len());
                        path.push((callee, 0));
                    }
                    State::OnPath(depth) => {
                        let mut cycle: Vec<usize> = path[depth..].iter().map(|(o, _)| *o).collect();
                        cycle.push(callee);
                        cycles.push(Cycle {
                            from: op,
                            call,
                            path: cycle,
                        });
                    }
                    State::Done => {}
                }
            }
        }
        (cycles, order)
    }

    /// `value(op, callee_values)` for every operation, callees first, each computed once.
    /// `order` is [`CallGraph::walk`]'s (the graph must be acyclic).
    pub fn fold<T: Clone + Default>(
        &self,
        order: &[usize],
        mut value: impl FnMut(usize, &[&T]) -> T,
    ) -> Vec<T> {
        let mut values = vec![T::default(); self.len()];
        for &op in order {
            let callee_values: Vec<&T> = self.callees[op].iter().map(|&c| &values[c]).collect();
            let computed = value(op, &callee_values);
            values[op] = computed;
        }
        values
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(edges: &[(&'static str, &[&'static str])]) -> CallGraph {
        let ops: Vec<(&str, Vec<&str>)> = edges.iter().map(|(n, c)| (*n, c.to_vec())).collect();
        CallGraph::new(&ops)
    }

    #[test]
    fn callees_come_first_and_cycles_are_found_once_each() {
        let g = graph(&[("a", &["b", "c"]), ("b", &["c"]), ("c", &[])]);
        let (cycles, order) = g.walk();
        assert!(cycles.is_empty());
        assert_eq!(order, [2, 1, 0]);

        let g = graph(&[("a", &["b"]), ("b", &["c"]), ("c", &["a"]), ("d", &["d"])]);
        let (cycles, _) = g.walk();
        assert_eq!(cycles.len(), 2, "{cycles:?}");
        assert_eq!(cycles[0].path, [0, 1, 2, 0]);
        assert_eq!((cycles[0].from, cycles[0].call), (2, 0));
        assert_eq!(cycles[1].path, [3, 3]);
    }

    #[test]
    fn a_long_chain_and_a_deep_diamond_are_linear() {
        let names: Vec<String> = (0..200_000).map(|i| format!("op{i}")).collect();
        let ops: Vec<(&str, Vec<&str>)> = names
            .iter()
            .enumerate()
            .map(|(i, n)| {
                (
                    n.as_str(),
                    names
                        .get(i + 1)
                        .map(|c| vec![c.as_str(), c.as_str()])
                        .unwrap_or_default(),
                )
            })
            .collect();
        let g = CallGraph::new(&ops);
        let (cycles, order) = g.walk();
        assert!(cycles.is_empty());
        assert_eq!(order.len(), names.len());
        // Each operation calls the next twice: 2^200000 calls, counted without walking them.
        let calls = g.fold(&order, |_, callees: &[&u64]| {
            callees
                .iter()
                .fold(0u64, |sum, c| sum.saturating_add(1).saturating_add(**c))
        });
        assert_eq!(calls[0], u64::MAX);
        assert_eq!(calls[names.len() - 2], 2);
    }
}
