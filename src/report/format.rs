//! Number formatting shared by every renderer, so the terminal and the page print the same
//! figure the same way.

use crate::results::StepResult;

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
    }
}
