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
            format!("no clear difference ({})", ratio_compact(e))
        }
        Some(_) => ratio_compact(e),
        None => format!("{:.1}× (one round: no interval)", e.point),
    }
}

/// A ratio and its interval in few columns, for a table that says elsewhere what an
/// interval holding 1 means: `1.03× [0.52–2.02]`, `3.2× [2.9–3.6]`, `1.2× (1 round)`.
pub fn ratio_compact(e: &Estimate) -> String {
    match e.interval() {
        Some((low, high)) if low <= 1.0 && 1.0 <= high => {
            format!("{:.2}× [{low:.2}–{high:.2}]", e.point)
        }
        Some((low, high)) => format!("{:.1}× [{low:.1}–{high:.1}]", e.point),
        None => format!("{:.1}× (1 round)", e.point),
    }
}

/// The smallest relative change (%) a comparison with interval `e` would have flagged:
/// its half-width on the log scale (where the change's interval is symmetric), taken
/// back. `None` without an interval.
pub fn detectable_change(e: &Estimate) -> Option<f64> {
    let (low, high) = e.interval()?;
    let (low, high) = (1.0 + low / 100.0, 1.0 + high / 100.0);
    (low > 0.0 && high > 0.0).then(|| (((high.ln() - low.ln()) / 2.0).exp() - 1.0) * 100.0)
}

/// A relative change and its interval: `+12.3 % [+5.1, +19.9]`, or `no change beyond noise
/// (+2.1 % [−4.0, +8.7]); this run could see ±6.4 %` when the interval holds 0.
pub fn change_estimate(e: &Estimate) -> String {
    match e.interval() {
        Some((low, high)) if low <= 0.0 && 0.0 <= high => format!(
            "no change beyond noise ({:+.1} % [{low:+.1}, {high:+.1}]){}",
            e.point,
            detectable_change(e)
                .map_or(String::new(), |d| format!("; this run could see ±{d:.0} %"))
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
        // [-10 %, +11.1 %] is ±0.105 on the log scale: the run could see ±11 %.
        let wide = e(0.0, -10.0, 100.0 / 9.0);
        assert!((detectable_change(&wide).unwrap() - 100.0 / 9.0).abs() < 1e-9);
        assert!(
            change_estimate(&wide).ends_with("; this run could see ±11 %"),
            "{}",
            change_estimate(&wide)
        );
        let one_round = Estimate {
            point: 1.0,
            low: None,
            high: None,
            rounds: 1,
        };
        assert_eq!(detectable_change(&one_round), None);
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
