//! `[resilience]` (the callers' policy) and `[[fault]]` (faults injected in a fault step):
//! every number within its range, every fault on a defined operation.

use super::Checker;
use crate::scenario::fault::{parse_budget, Fault, FaultKind, FaultPart, DEFAULT_FAULT_LENGTH};
use crate::scenario::file::{RawFault, RawResilience};
use crate::scenario::limits::{MAX_RETRIES, MAX_TIMEOUT_MS};
use grain_runtime::resilience::Resilience;
use std::collections::BTreeSet;
use toml::Spanned;

/// `[resilience]` over the defaults.
pub(super) fn resilience(checker: &mut Checker, raw: &RawResilience) -> Resilience {
    let mut policy = Resilience::default();
    if let Some(timeout) = &raw.timeout_ms {
        policy.timeout_ms = within(checker, timeout, "resilience.timeout_ms", 1, MAX_TIMEOUT_MS);
    }
    if let Some(retries) = &raw.retries {
        policy.retries = within(checker, retries, "resilience.retries", 0, MAX_RETRIES);
    }
    if let Some(budget) = &raw.retry_budget {
        policy.retry_budget_percent = match parse_budget(budget.get_ref()) {
            Ok(budget) => budget,
            Err(message) => {
                checker.flag(budget.span(), "resilience.retry_budget", message);
                policy.retry_budget_percent
            }
        };
    }
    let max_ms = MAX_TIMEOUT_MS as f64;
    if let Some(backoff) = &raw.backoff_ms {
        policy.backoff_ms = within_f(checker, backoff, "resilience.backoff_ms", 0.0, max_ms);
    }
    if let Some(most) = &raw.backoff_max_ms {
        policy.backoff_max_ms = within_f(checker, most, "resilience.backoff_max_ms", 0.0, max_ms);
    }
    if let Some(failures) = &raw.breaker_failures {
        let field = "resilience.breaker_failures";
        policy.breaker_failures = within(checker, failures, field, 0, 1_000_000);
    }
    if let Some(open) = &raw.breaker_open_ms {
        let field = "resilience.breaker_open_ms";
        policy.breaker_open_ms = within(checker, open, field, 1, MAX_TIMEOUT_MS);
    }
    policy
}

fn within<T: Copy + PartialOrd + std::fmt::Display>(
    checker: &mut Checker,
    value: &Spanned<T>,
    field: &str,
    low: T,
    high: T,
) -> T {
    let v = *value.get_ref();
    if v < low || v > high {
        checker.flag(
            value.span(),
            field,
            format!("{v} is out of range: {low} to {high}"),
        );
    }
    v
}

fn within_f(checker: &mut Checker, value: &Spanned<f64>, field: &str, low: f64, high: f64) -> f64 {
    let v = *value.get_ref();
    if !(v.is_finite() && (low..=high).contains(&v)) {
        checker.flag(
            value.span(),
            field,
            format!("{v} is out of range: {low} to {high}"),
        );
    }
    v
}

/// `[[fault]]`s: a known kind on a defined operation, with its amount and bounds.
pub(super) fn faults(checker: &mut Checker, raw: &[RawFault], ops: &BTreeSet<&str>) -> Vec<Fault> {
    raw.iter()
        .enumerate()
        .filter_map(|(i, raw)| fault(checker, i, raw, ops))
        .collect()
}

fn fault(checker: &mut Checker, i: usize, raw: &RawFault, ops: &BTreeSet<&str>) -> Option<Fault> {
    let field = |f: &str| format!("fault[{i}].{f}");
    let operation = raw.operation.get_ref();
    if !ops.contains(operation.as_str()) {
        let message = format!(
            "no operation {operation:?} in this scenario{}",
            crate::scenario::words::did_you_mean(operation, ops.iter().copied())
        );
        checker.flag(raw.operation.span(), field("operation"), message);
    }
    let amount = |value: &Option<Spanned<f64>>, name: &str, checker: &mut Checker| match value {
        Some(v) => Some(*v.get_ref()),
        None => {
            let message = format!("{} needs `{name}`", raw.kind.get_ref());
            checker.flag(raw.kind.span(), field(name), message);
            None
        }
    };
    let kind = match raw.kind.get_ref().as_str() {
        "kill" => FaultKind::Kill,
        "freeze" => FaultKind::Freeze,
        "slow" => FaultKind::Slow {
            delay_ms: amount(&raw.delay_ms, "delay_ms", checker)?,
        },
        "fail" => FaultKind::Fail {
            probability: amount(&raw.probability, "probability", checker)?,
        },
        other => {
            let message = format!("unknown kind {other:?}: kill, freeze, slow or fail");
            checker.flag(raw.kind.span(), field("kind"), message);
            return None;
        }
    };
    let fault = Fault {
        kind,
        operation: operation.clone(),
        at_s: *raw.at_s.get_ref(),
        for_s: raw
            .for_s
            .as_ref()
            .map_or(DEFAULT_FAULT_LENGTH.as_secs_f64(), |f| *f.get_ref()),
    };
    if let Err(bound) = fault.check() {
        // The field that is out of bounds, not always `at_s`.
        let (span, name) = match bound.part {
            FaultPart::At => (raw.at_s.span(), "at_s"),
            FaultPart::For => (
                raw.for_s.as_ref().map_or(raw.at_s.span(), |f| f.span()),
                "for_s",
            ),
            FaultPart::Amount => match (&raw.delay_ms, &raw.probability) {
                (Some(d), _) if matches!(fault.kind, FaultKind::Slow { .. }) => {
                    (d.span(), "delay_ms")
                }
                (_, Some(p)) => (p.span(), "probability"),
                _ => (raw.kind.span(), "kind"),
            },
        };
        checker.flag(span, field(name), bound.message);
        return None;
    }
    Some(fault)
}
