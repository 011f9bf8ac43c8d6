//! Upper bounds on every number of a scenario ([`crate::scenario::limits`]): rates and the
//! requests one step schedules, timeouts, CPU and payload sizes per operation, keys and
//! value sizes per data set, the whole store against this machine's memory, weights, and
//! how many items a file declares. Each issue names the limit it passed.

use super::Checker;
use crate::scenario::file::{RawLoad, RawScenario};
use crate::scenario::limits::*;
use std::ops::Range;
use toml::Spanned;

/// Per-key overhead of a seeded store beyond the value (key string, map entry), bytes:
/// an estimate used only to check the store against available memory.
const KEY_OVERHEAD_BYTES: u64 = 96;

pub(super) fn check_bounds(checker: &mut Checker, raw: &RawScenario) {
    check_counts(checker, raw);
    check_load(checker, raw.load.get_ref());
    for op in &raw.operations {
        let field = |f: &str| format!("operation[{}].{f}", op.name.get_ref());
        at_most(
            checker,
            &op.cpu_us,
            field("cpu_us"),
            MAX_CPU_US,
            "µs of CPU per call",
        );
        for (name, value) in [
            ("request_bytes", &op.request_bytes),
            ("response_bytes", &op.response_bytes),
        ] {
            at_most(
                checker,
                value,
                field(name),
                MAX_PAYLOAD_BYTES,
                "bytes (the units' body limit allows no more)",
            );
        }
        at_most(
            checker,
            &op.write_bytes,
            field("write_bytes"),
            MAX_VALUE_BYTES,
            "bytes per value",
        );
        let written = (op.writes.len() as u64).saturating_mul(*op.write_bytes.get_ref());
        if written > MAX_PAYLOAD_BYTES {
            checker.flag(
                op.write_bytes.span(),
                field("write_bytes"),
                format!(
                    "{} keys × {} bytes = {written} bytes written per call; at most {MAX_PAYLOAD_BYTES} bytes",
                    op.writes.len(),
                    op.write_bytes.get_ref()
                ),
            );
        }
    }
    check_store(checker, raw);
    check_weights(checker, raw);
}

/// Flags `value` above `max`, naming the limit.
fn at_most(checker: &mut Checker, value: &Spanned<u64>, field: String, max: u64, what: &str) {
    let v = *value.get_ref();
    if v > max {
        checker.flag(
            value.span(),
            field,
            format!("{v} is above the limit of {max} {what}"),
        );
    }
}

fn check_counts(checker: &mut Checker, raw: &RawScenario) {
    let counts: [(&str, usize, Range<usize>); 4] = [
        (
            "operation",
            raw.operations.len(),
            span_of(raw.operations.first().map(|o| o.name.span())),
        ),
        (
            "service",
            raw.services.len(),
            span_of(raw.services.first().map(|s| s.name.span())),
        ),
        (
            "param",
            raw.params.len(),
            span_of(raw.params.first().map(|p| p.name.span())),
        ),
        (
            "entrypoint",
            raw.entrypoints.len(),
            span_of(raw.entrypoints.first().map(|e| e.op.span())),
        ),
    ];
    for (what, count, span) in counts {
        if count > MAX_ITEMS {
            checker.flag(
                span,
                what,
                format!("{count} [[{what}]] tables; the limit is {MAX_ITEMS}"),
            );
        }
    }
}

fn span_of(span: Option<Range<usize>>) -> Range<usize> {
    span.unwrap_or(0..0)
}

fn check_load(checker: &mut Checker, load: &RawLoad) {
    for rate in load.rates.get_ref() {
        let r = *rate.get_ref();
        if r > MAX_RATE {
            checker.flag(
                rate.span(),
                "load.rates",
                format!("{r} req/s is above the limit of {MAX_RATE} req/s"),
            );
        }
    }
    if let Some(timeout) = &load.timeout_ms {
        at_most(
            checker,
            timeout,
            "load.timeout_ms".into(),
            MAX_TIMEOUT_MS,
            "ms",
        );
    }
    let warmup = load.warmup_s.as_ref().map_or(0.0, |w| *w.get_ref());
    let seconds = *load.duration_s.get_ref() + warmup;
    let Some(highest) = load.rates.get_ref().iter().max_by_key(|r| *r.get_ref()) else {
        return;
    };
    let requests = f64::from(*highest.get_ref()) * seconds;
    if seconds.is_finite() && requests > MAX_REQUESTS_PER_STEP as f64 {
        checker.flag(
            highest.span(),
            "load.rates",
            format!(
                "{} req/s for {seconds} s (warm-up included) schedules {requests:.0} requests in one \
                 step; the limit is {MAX_REQUESTS_PER_STEP}: lower the rate or shorten the step",
                highest.get_ref()
            ),
        );
    }
}

/// Keys and value sizes per data set, and every store together against the limit and
/// against this machine's available memory (each architecture seeds one copy at a time).
fn check_store(checker: &mut Checker, raw: &RawScenario) {
    let mut total: u64 = 0;
    let mut largest: Option<(Range<usize>, String)> = None;
    for service in &raw.services {
        for data in &service.data {
            let field = |f: &str| format!("service[{}].data.{f}", service.name.get_ref());
            at_most(checker, &data.count, field("count"), MAX_KEYS, "keys");
            at_most(
                checker,
                &data.value_bytes,
                field("value_bytes"),
                MAX_VALUE_BYTES,
                "bytes per value",
            );
            let bytes = data.count.get_ref().saturating_mul(
                data.value_bytes
                    .get_ref()
                    .saturating_add(KEY_OVERHEAD_BYTES),
            );
            total = total.saturating_add(bytes);
            largest = Some((data.count.span(), field("count")));
        }
    }
    let Some((span, field)) = largest else { return };
    let limit = match available_memory_bytes() {
        Some(available) => MAX_STORE_BYTES.min(available / 2),
        None => MAX_STORE_BYTES,
    };
    if total > limit {
        checker.flag(
            span,
            field,
            format!(
                "the data sets hold about {} MiB (keys × (value_bytes + {KEY_OVERHEAD_BYTES} bytes per key)); \
                 the limit is {} MiB: at most {} MiB, and at most half of this machine's available memory",
                total >> 20,
                limit >> 20,
                MAX_STORE_BYTES >> 20
            ),
        );
    }
}

/// `MemAvailable` from /proc/meminfo, bytes.
fn available_memory_bytes() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = meminfo.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib.saturating_mul(1024))
}

fn check_weights(checker: &mut Checker, raw: &RawScenario) {
    let total: u64 = raw
        .entrypoints
        .iter()
        .map(|e| u64::from(*e.weight.get_ref()))
        .sum();
    if total > MAX_WEIGHT_SUM {
        if let Some(last) = raw.entrypoints.last() {
            checker.flag(
                last.weight.span(),
                "entrypoint.weight",
                format!("the weights sum to {total}; the limit is {MAX_WEIGHT_SUM}: they are relative, so scale them down"),
            );
        }
    }
}
