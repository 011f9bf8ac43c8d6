//! Semantic checks on a parsed scenario file, turning it into a `Scenario`: names unique
//! and well-formed, every operation in exactly one non-empty service, calls to defined
//! operations without cycles, keys using declared parameters, positive rates and durations,
//! entrypoint weights that do not sum to zero, cuts that place every operation once. All issues are collected, not just the first.

use super::file::{RawCall, RawDistribution, RawLoad, RawOperation, RawParam, RawScenario};
use super::{
    line_column, Distribution, Entrypoint, Issue, LoadProfile, Param, Scenario, SecurityProfile,
    Service,
};
use crate::scenario::mesh::Mesh;
use grain_runtime::model::{CallStep, DataSeed, KeyTemplate, OperationDef};
use grain_runtime::network::NetworkModel;
use grain_runtime::transport::Transport;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::time::Duration;
use toml::Spanned;

const DEFAULT_SEED: u64 = 42;
const DEFAULT_WARMUP_S: f64 = 2.0;
const DEFAULT_TIMEOUT_MS: u64 = 2_000;

mod bounds;
mod calls;
mod cuts;
mod network;
mod resilience;

use super::limits::{MAX_DURATION_S, MAX_REPLICAS, MAX_TIMEOUT_MS, MIN_DURATION_S};
use super::words::did_you_mean;
use network::network;

pub(super) struct Checker<'a> {
    text: &'a str,
    issues: Vec<Issue>,
}

impl Checker<'_> {
    pub(super) fn flag(
        &mut self,
        span: Range<usize>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) {
        let (line, column) = line_column(self.text, span.start);
        self.issues.push(Issue {
            line,
            column,
            field: field.into(),
            message: message.into(),
        });
    }

    fn check_name(&mut self, name: &Spanned<String>, field: &str) {
        let valid = !name.get_ref().is_empty()
            && name
                .get_ref()
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !valid {
            self.flag(
                name.span(),
                field,
                format!(
                    "invalid name {:?}: use letters, digits, `_` and `-` only (it becomes a URL path)",
                    name.get_ref()
                ),
            );
        }
    }

    fn check_unique<'n>(&mut self, names: impl Iterator<Item = &'n Spanned<String>>, what: &str) {
        let mut seen = BTreeSet::new();
        for name in names {
            if !seen.insert(name.get_ref().as_str()) {
                self.flag(
                    name.span(),
                    format!("{what}.name"),
                    format!(
                        "duplicate {what} name {:?}: names must be unique",
                        name.get_ref()
                    ),
                );
            }
        }
    }
}

pub(super) fn validate(raw: RawScenario, text: &str) -> Result<Scenario, Vec<Issue>> {
    let mut checker = Checker {
        text,
        issues: Vec::new(),
    };
    checker.check_name(&raw.name, "name");
    checker.check_unique(raw.params.iter().map(|p| &p.name), "param");
    checker.check_unique(raw.services.iter().map(|s| &s.name), "service");
    checker.check_unique(raw.operations.iter().map(|o| &o.name), "operation");

    let params: Vec<Param> = raw
        .params
        .iter()
        .filter_map(|p| param(&mut checker, p))
        .collect();
    let param_names: BTreeSet<&str> = raw
        .params
        .iter()
        .map(|p| p.name.get_ref().as_str())
        .collect();
    let owners = service_owners(&mut checker, &raw);
    let op_names: BTreeSet<&str> = raw
        .operations
        .iter()
        .map(|o| o.name.get_ref().as_str())
        .collect();

    let operations: Vec<OperationDef> = raw
        .operations
        .iter()
        .map(|op| operation(&mut checker, op, &owners, &op_names, &param_names))
        .collect();
    calls::check_calls(&mut checker, &raw);
    bounds::check_bounds(&mut checker, &raw);
    let entrypoints = entrypoints(&mut checker, &raw, &op_names);
    let load = load_profile(&mut checker, &raw.load);
    let cuts = cuts::cuts(&mut checker, &raw);
    let network = raw
        .network
        .as_ref()
        .map_or_else(NetworkModel::loopback, |n| network(&mut checker, n));
    let security = raw
        .security
        .as_ref()
        .map_or_else(SecurityProfile::default, |s| security(&mut checker, s));
    let transports = raw
        .transport
        .as_ref()
        .map_or_else(Vec::new, |t| transports(&mut checker, t));
    let meshes = raw.mesh.as_ref().map_or_else(Vec::new, |m| {
        modes(&mut checker, &m.modes, "mesh.modes", "none or sidecar")
    });
    let resilience = raw.resilience.as_ref().map_or_else(Default::default, |r| {
        resilience::resilience(&mut checker, r)
    });
    let faults = resilience::faults(&mut checker, &raw.faults, &op_names);

    let services = raw
        .services
        .iter()
        .map(|service| Service {
            name: service.name.get_ref().clone(),
            operations: service
                .operations
                .get_ref()
                .iter()
                .map(|o| o.get_ref().clone())
                .collect(),
            data: service
                .data
                .iter()
                .map(|data| {
                    if *data.count.get_ref() == 0 {
                        checker.flag(
                            data.count.span(),
                            format!("service[{}].data.count", service.name.get_ref()),
                            "must be at least 1 (number of keys to load)",
                        );
                    }
                    DataSeed {
                        key_prefix: data.key_prefix.get_ref().clone(),
                        count: *data.count.get_ref(),
                        value_bytes: *data.value_bytes.get_ref() as usize,
                    }
                })
                .collect(),
            replicas: service.replicas.as_ref().map_or(1, |replicas| {
                let n = *replicas.get_ref();
                if !(1..=MAX_REPLICAS).contains(&n) {
                    checker.flag(
                        replicas.span(),
                        format!("service[{}].replicas", service.name.get_ref()),
                        format!("{n} is out of range: 1 to {MAX_REPLICAS}"),
                    );
                }
                n
            }),
        })
        .collect();

    if !checker.issues.is_empty() {
        checker
            .issues
            .sort_by_key(|issue| (issue.line, issue.column));
        return Err(checker.issues);
    }
    Ok(Scenario {
        name: raw.name.into_inner(),
        description: raw.description,
        seed: raw.seed.unwrap_or(DEFAULT_SEED),
        params,
        services,
        operations,
        entrypoints,
        load,
        network,
        cuts,
        security,
        transports: if transports.is_empty() {
            vec![Transport::default()]
        } else {
            transports
        },
        meshes: if meshes.is_empty() {
            vec![Mesh::default()]
        } else {
            meshes
        },
        resilience,
        faults,
    })
}

/// `[security]`: known modes, each once, at least one.
fn security(checker: &mut Checker, raw: &crate::scenario::file::RawSecurity) -> SecurityProfile {
    let choices = "none, tls, mtls, token or mtls+token";
    SecurityProfile {
        modes: modes(checker, &raw.modes, "security.modes", choices),
        keepalive: raw.keepalive.unwrap_or(true),
    }
}

/// `[transport]`: known transports, each once, at least one.
fn transports(checker: &mut Checker, raw: &crate::scenario::file::RawTransport) -> Vec<Transport> {
    let choices = "http1-json, grpc or binary";
    modes(checker, &raw.modes, "transport.modes", choices)
}

/// A section's `modes` list: each one known (`FromStr` says why not), each once, at least
/// one (of `choices`).
fn modes<T>(
    checker: &mut Checker,
    raw: &Spanned<Vec<Spanned<String>>>,
    field: &str,
    choices: &str,
) -> Vec<T>
where
    T: std::str::FromStr<Err = String> + PartialEq + std::fmt::Display,
{
    let mut modes: Vec<T> = Vec::new();
    for (i, text) in raw.get_ref().iter().enumerate() {
        let at = format!("{field}[{i}]");
        match text.get_ref().parse::<T>() {
            Ok(mode) if modes.contains(&mode) => {
                checker.flag(text.span(), &at, format!("{mode} is listed twice"))
            }
            Ok(mode) => modes.push(mode),
            Err(message) => checker.flag(text.span(), &at, message),
        }
    }
    if raw.get_ref().is_empty() {
        checker.flag(raw.span(), field, format!("at least one: {choices}"));
    }
    modes
}

fn param(checker: &mut Checker, raw: &RawParam) -> Option<Param> {
    let field = |f: &str| format!("param[{}].{f}", raw.name.get_ref());
    checker.check_name(&raw.name, &field("name"));
    let distribution = match raw.dist.get_ref() {
        RawDistribution::Sequence => Distribution::Sequence,
        RawDistribution::Uniform | RawDistribution::Zipf => {
            let count = match &raw.count {
                Some(count) if *count.get_ref() > 0 => *count.get_ref(),
                Some(count) => {
                    checker.flag(
                        count.span(),
                        field("count"),
                        "must be at least 1 (values are drawn from 0..count)",
                    );
                    return None;
                }
                None => {
                    checker.flag(
                        raw.dist.span(),
                        field("count"),
                        "missing: uniform and zipf need `count`, the size of the key space",
                    );
                    return None;
                }
            };
            match raw.dist.get_ref() {
                RawDistribution::Zipf => {
                    let exponent = raw.exponent.as_ref().map_or(1.0, |e| *e.get_ref());
                    if !(exponent.is_finite() && exponent > 0.0) {
                        let span = raw.exponent.as_ref().map_or(raw.dist.span(), |e| e.span());
                        checker.flag(
                            span,
                            field("exponent"),
                            "must be a positive number (1.0 is classic Zipf)",
                        );
                        return None;
                    }
                    Distribution::Zipf { count, exponent }
                }
                _ => Distribution::Uniform { count },
            }
        }
    };
    Some(Param {
        name: raw.name.get_ref().clone(),
        distribution,
    })
}

/// Operation name → owning service, flagging operations in no service, in two, or unknown.
fn service_owners(checker: &mut Checker, raw: &RawScenario) -> BTreeMap<String, String> {
    let defined: BTreeSet<&str> = raw
        .operations
        .iter()
        .map(|o| o.name.get_ref().as_str())
        .collect();
    let mut owners: BTreeMap<String, String> = BTreeMap::new();
    for service in &raw.services {
        let name = service.name.get_ref();
        checker.check_name(&service.name, &format!("service[{name}].name"));
        if service.operations.get_ref().is_empty() {
            checker.flag(
                service.operations.span(),
                format!("service[{name}].operations"),
                "a service needs at least one operation",
            );
        }
        for op in service.operations.get_ref() {
            let field = format!("service[{name}].operations");
            if !defined.contains(op.get_ref().as_str()) {
                checker.flag(
                    op.span(),
                    field,
                    format!(
                        "unknown operation {:?}: define it in an [[operation]] table{}",
                        op.get_ref(),
                        did_you_mean(op.get_ref(), defined.iter().copied())
                    ),
                );
            } else if let Some(first) = owners.get(op.get_ref()) {
                checker.flag(
                    op.span(),
                    field,
                    format!("operation {:?} is already in service {first:?}: each operation belongs to exactly one service", op.get_ref()),
                );
            } else {
                owners.insert(op.get_ref().clone(), name.clone());
            }
        }
    }
    for op in &raw.operations {
        if defined.contains(op.name.get_ref().as_str()) && !owners.contains_key(op.name.get_ref()) {
            checker.flag(
                op.name.span(),
                format!("operation[{}]", op.name.get_ref()),
                "this operation is in no service: list it in one [[service]]'s `operations`",
            );
        }
    }
    owners
}

fn operation(
    checker: &mut Checker,
    raw: &RawOperation,
    owners: &BTreeMap<String, String>,
    op_names: &BTreeSet<&str>,
    param_names: &BTreeSet<&str>,
) -> OperationDef {
    let name = raw.name.get_ref();
    checker.check_name(&raw.name, &format!("operation[{name}].name"));
    for (list, keys) in [("reads", &raw.reads), ("writes", &raw.writes)] {
        for key in keys {
            for placeholder in KeyTemplate(key.get_ref().clone()).placeholders() {
                if !param_names.contains(placeholder) {
                    checker.flag(
                        key.span(),
                        format!("operation[{name}].{list}"),
                        format!(
                            "key {:?} uses {{{placeholder}}}, which is not a declared [[param]]",
                            key.get_ref()
                        ),
                    );
                }
            }
        }
    }
    let calls = raw
        .calls
        .iter()
        .enumerate()
        .filter_map(|(index, call)| call_step(checker, name, index, call, op_names))
        .collect();
    OperationDef {
        name: name.clone(),
        service: owners.get(name).cloned().unwrap_or_default(),
        cpu_us: *raw.cpu_us.get_ref(),
        request_bytes: *raw.request_bytes.get_ref() as usize,
        response_bytes: *raw.response_bytes.get_ref() as usize,
        reads: raw
            .reads
            .iter()
            .map(|k| KeyTemplate(k.get_ref().clone()))
            .collect(),
        writes: raw
            .writes
            .iter()
            .map(|k| KeyTemplate(k.get_ref().clone()))
            .collect(),
        write_bytes: *raw.write_bytes.get_ref() as usize,
        calls,
    }
}

fn call_step(
    checker: &mut Checker,
    caller: &str,
    index: usize,
    call: &Spanned<RawCall>,
    op_names: &BTreeSet<&str>,
) -> Option<CallStep> {
    let field = format!("operation[{caller}].calls[{index}]");
    let check_callee = |checker: &mut Checker, callee: &Spanned<String>, field: String| {
        if !op_names.contains(callee.get_ref().as_str()) {
            checker.flag(
                callee.span(),
                field,
                format!(
                    "call to undefined operation {:?}{}",
                    callee.get_ref(),
                    did_you_mean(callee.get_ref(), op_names.iter().copied())
                ),
            );
        }
    };
    match (&call.get_ref().op, &call.get_ref().parallel) {
        (Some(op), None) => {
            check_callee(checker, op, format!("{field}.op"));
            Some(CallStep::Op(op.get_ref().clone()))
        }
        (None, Some(ops)) if !ops.is_empty() => {
            for op in ops {
                check_callee(checker, op, format!("{field}.parallel"));
            }
            Some(CallStep::Parallel(
                ops.iter().map(|o| o.get_ref().clone()).collect(),
            ))
        }
        (None, Some(_)) => {
            checker.flag(
                call.span(),
                format!("{field}.parallel"),
                "`parallel` needs at least one operation",
            );
            None
        }
        _ => {
            checker.flag(
                call.span(),
                field,
                "a call is either { op = \"name\" } or { parallel = [\"a\", \"b\"] }, exactly one of the two",
            );
            None
        }
    }
}

fn entrypoints(
    checker: &mut Checker,
    raw: &RawScenario,
    op_names: &BTreeSet<&str>,
) -> Vec<Entrypoint> {
    if raw.entrypoints.is_empty() {
        checker.flag(
            raw.name.span(),
            "entrypoint",
            "no [[entrypoint]]: declare at least one operation the driver calls",
        );
    }
    let mut seen = BTreeSet::new();
    for entry in &raw.entrypoints {
        let op = entry.op.get_ref();
        if !op_names.contains(op.as_str()) {
            checker.flag(
                entry.op.span(),
                "entrypoint.op",
                format!(
                    "unknown operation {op:?}{}",
                    did_you_mean(op, op_names.iter().copied())
                ),
            );
        } else if !seen.insert(op.as_str()) {
            checker.flag(
                entry.op.span(),
                "entrypoint.op",
                format!("operation {op:?} is already an entrypoint"),
            );
        }
    }
    let total: u64 = raw
        .entrypoints
        .iter()
        .map(|e| u64::from(*e.weight.get_ref()))
        .sum();
    if !raw.entrypoints.is_empty() && total == 0 {
        let span = raw.entrypoints[0].weight.span();
        checker.flag(
            span,
            "entrypoint.weight",
            "weights sum to zero: at least one entrypoint needs a positive weight",
        );
    }
    raw.entrypoints
        .iter()
        .map(|e| Entrypoint {
            op: e.op.get_ref().clone(),
            weight: *e.weight.get_ref(),
        })
        .collect()
}

fn load_profile(checker: &mut Checker, raw: &Spanned<RawLoad>) -> LoadProfile {
    let load = raw.get_ref();
    if load.rates.get_ref().is_empty() {
        checker.flag(
            load.rates.span(),
            "load.rates",
            "at least one rate (requests per second) is needed",
        );
    }
    for rate in load.rates.get_ref() {
        if *rate.get_ref() == 0 {
            checker.flag(
                rate.span(),
                "load.rates",
                "rates must be positive requests per second",
            );
        }
    }
    let mut seconds = |value: &Spanned<f64>, field: &str, min: f64| {
        let v = *value.get_ref();
        if !(v.is_finite() && v >= min && v <= MAX_DURATION_S) {
            checker.flag(
                value.span(),
                field,
                format!("must be from {min} to {MAX_DURATION_S} seconds; got {v}"),
            );
            return Duration::ZERO;
        }
        Duration::from_secs_f64(v)
    };
    let duration = seconds(&load.duration_s, "load.duration_s", MIN_DURATION_S);
    let warmup = match &load.warmup_s {
        Some(warmup) => seconds(warmup, "load.warmup_s", 0.0),
        None => Duration::from_secs_f64(DEFAULT_WARMUP_S),
    };
    let timeout_ms = load
        .timeout_ms
        .as_ref()
        .map_or(DEFAULT_TIMEOUT_MS, |t| *t.get_ref());
    if timeout_ms == 0 {
        if let Some(timeout) = &load.timeout_ms {
            checker.flag(
                timeout.span(),
                "load.timeout_ms",
                "must be at least 1 millisecond",
            );
        }
    }
    let p99_budget = load.p99_budget_ms.as_ref().and_then(|budget| {
        let ms = *budget.get_ref();
        let max = MAX_TIMEOUT_MS as f64;
        if ms.is_finite() && ms >= 0.001 && ms <= max {
            Some(Duration::from_secs_f64(ms / 1e3))
        } else {
            checker.flag(
                budget.span(),
                "load.p99_budget_ms",
                format!("must be from 0.001 to {max} milliseconds; got {ms}"),
            );
            None
        }
    });
    LoadProfile {
        rates: load.rates.get_ref().iter().map(|r| *r.get_ref()).collect(),
        duration,
        warmup,
        timeout: Duration::from_millis(timeout_ms.max(1)),
        p99_budget,
    }
}
