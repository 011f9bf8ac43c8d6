//! Number formatting shared by every renderer, so the terminal and the page print the same
//! figure the same way.

use crate::results::{Estimate, StepResult};

const MIB: f64 = 1024.0 * 1024.0;

/// Bytes as MiB with one decimal, without the unit: `12.3`.
pub fn mib(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / MIB)
}

/// Bytes as MiB as a float, for charts and comparisons.
pub fn mib_f64(bytes: u64) -> f64 {
    bytes as f64 / MIB
}

/// `value / best` as `2.5×`, or `–` when either is not positive.
pub fn ratio(value: f64, best: f64) -> String {
    if best <= 0.0 || value <= 0.0 {
        return "–".into();
    }
    format!("{:.1}×", value / best)
}

/// A figure and its interval, rounded to `decimals`: `1234 [1180–1290]`, or `1234 (one
/// round: no interval)`.
pub fn estimate(e: &Estimate, decimals: usize) -> String {
    match e.interval() {
        Some((low, high)) => format!(
            "{:.d$} [{:.d$}–{:.d$}]",
            e.point,
            low.max(0.0),
            high,
            d = decimals
        ),
        None => format!("{:.d$} (one round: no interval)", e.point, d = decimals),
    }
}

/// [`estimate`] with its unit, which goes before any parenthesis: `4487 [4100–4900] µs`,
/// `4487 µs (one round: no interval)`.
pub fn estimate_in(e: &Estimate, decimals: usize, unit: &str) -> String {
    let text = estimate(e, decimals);
    match text.split_once(" (") {
        Some((figure, note)) => format!("{figure} {unit} ({note}"),
        None => format!("{text} {unit}"),
    }
}

/// A ratio and its interval: `3.2× [2.9–3.6]`; `no clear difference (1.1× [0.8–1.5])` when
/// the interval holds 1; `1.2× (one round: no interval)` without one.
pub fn ratio_estimate(e: &Estimate) -> String {
    match e.interval() {
        Some((low, high)) if low <= 1.0 && 1.0 <= high => {
            format!("no clear difference ({:.2}× [{low:.2}–{high:.2}])", e.point)
        }
        Some((low, high)) => format!("{:.1}× [{low:.1}–{high:.1}]", e.point),
        None => format!("{:.1}× (one round: no interval)", e.point),
    }
}

/// A relative change and its interval: `+12.3 % [+5.1, +19.9]`, or `no change beyond noise
/// (+2.1 % [−4.0, +8.7])` when the interval holds 0.
pub fn change_estimate(e: &Estimate) -> String {
    match e.interval() {
        Some((low, high)) if low <= 0.0 && 0.0 <= high => format!(
            "no change beyond noise ({:+.1} % [{low:+.1}, {high:+.1}])",
            e.point
        ),
        Some((low, high)) => format!("{:+.1} % [{low:+.1}, {high:+.1}]", e.point),
        None => format!("{:+.1} % (one round each: no interval)", e.point),
    }
}

/// One decimal, or `–` when absent.
pub fn one_decimal(value: Option<f64>) -> String {
    value.map_or_else(|| "–".into(), |v| format!("{v:.1}"))
}

/// `400 req/s` for an open-loop step, `closed, 16 connections` for a closed-loop one.
pub fn step_label(step: &StepResult) -> String {
    match step.connections {
        Some(connections) => format!("closed, {connections} connections"),
        None => format!("{} req/s", step.target_rps),
    }
}

/// Joins clauses as prose: `a`, `a and b`, `a, b and c`.
pub fn join_clauses(clauses: &[String]) -> String {
    match clauses {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_and_sizes() {
        assert_eq!(ratio(3.0, 1.5), "2.0×");
        assert_eq!(ratio(3.0, 0.0), "–");
        assert_eq!(mib(3 * 1024 * 1024 / 2), "1.5");
        assert_eq!(one_decimal(None), "–");
        assert_eq!(
            join_clauses(&["a".into(), "b".into(), "c".into()]),
            "a, b and c"
        );
        let e = |point, low, high| Estimate {
            point,
            low: Some(low),
            high: Some(high),
            rounds: 3,
        };
        assert_eq!(ratio_estimate(&e(3.2, 2.9, 3.6)), "3.2× [2.9–3.6]");
        assert!(ratio_estimate(&e(1.1, 0.8, 1.5)).starts_with("no clear difference"));
        assert!(change_estimate(&e(2.0, -4.0, 8.0)).starts_with("no change beyond noise"));
        assert_eq!(
            change_estimate(&e(12.34, 5.1, 19.9)),
            "+12.3 % [+5.1, +19.9]"
        );
        assert_eq!(estimate(&e(1234.4, 1180.0, 1290.2), 0), "1234 [1180–1290]");
        assert_eq!(
            estimate_in(&e(1234.4, 1180.0, 1290.2), 0, "µs"),
            "1234 [1180–1290] µs"
        );
        let one_round = Estimate {
            point: 4487.0,
            low: None,
            high: None,
            rounds: 1,
        };
        assert_eq!(
            estimate_in(&one_round, 0, "µs"),
            "4487 µs (one round: no interval)"
        );
    }
}
