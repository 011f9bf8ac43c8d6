//! `[[cut]]` checks: a well-formed name no built-in or generated cut uses, at least one
//! group, no empty group, only defined operations, none listed twice. Operations no group
//! lists get a unit of their own, in file order.

use super::Checker;
use crate::scenario::cut::Architecture;
use crate::scenario::file::{RawCut, RawScenario};
use crate::scenario::CutDef;
use std::collections::{BTreeMap, BTreeSet};

pub(super) fn cuts(checker: &mut Checker, raw: &RawScenario) -> Vec<CutDef> {
    checker.check_unique(raw.cuts.iter().map(|c| &c.name), "cut");
    let defined: BTreeSet<&str> = raw
        .operations
        .iter()
        .map(|o| o.name.get_ref().as_str())
        .collect();
    raw.cuts
        .iter()
        .map(|cut| one_cut(checker, cut, raw, &defined))
        .collect()
}

fn one_cut(
    checker: &mut Checker,
    cut: &RawCut,
    raw: &RawScenario,
    defined: &BTreeSet<&str>,
) -> CutDef {
    let name = cut.name.get_ref();
    checker.check_name(&cut.name, &format!("cut[{name}].name"));
    if Architecture::is_reserved(name) {
        checker.flag(
            cut.name.span(),
            format!("cut[{name}].name"),
            format!("{name:?} is reserved for a built-in or generated cut (nano, micro, monolith, sweep-K, sweep-svc-K): choose another name"),
        );
    }
    if cut.units.get_ref().is_empty() {
        checker.flag(
            cut.units.span(),
            format!("cut[{name}].units"),
            "a cut needs at least one group of operations (operations in no group get a unit of their own)",
        );
    }
    let mut placed: BTreeMap<&str, usize> = BTreeMap::new();
    let mut units = Vec::new();
    for (index, group) in cut.units.get_ref().iter().enumerate() {
        let field = format!("cut[{name}].units[{index}]");
        if group.get_ref().is_empty() {
            checker.flag(
                group.span(),
                &field,
                "an empty group: each group is one unit and needs at least one operation",
            );
            continue;
        }
        let mut ops = Vec::new();
        for op in group.get_ref() {
            let op_name = op.get_ref().as_str();
            if !defined.contains(op_name) {
                checker.flag(
                    op.span(),
                    &field,
                    format!(
                        "unknown operation {op_name:?}: list operations defined in [[operation]] tables{}",
                        crate::scenario::words::did_you_mean(op_name, defined.iter().copied())
                    ),
                );
            } else if let Some(first) = placed.get(op_name) {
                checker.flag(
                    op.span(),
                    &field,
                    format!("operation {op_name:?} is already in group {first} of this cut: each operation is in exactly one unit"),
                );
            } else {
                placed.insert(op_name, index);
                ops.push(op_name.to_string());
            }
        }
        units.push(ops);
    }
    for op in &raw.operations {
        let op_name = op.name.get_ref().as_str();
        if !placed.contains_key(op_name) {
            units.push(vec![op_name.to_string()]);
        }
    }
    CutDef {
        name: name.clone(),
        units,
    }
}
