//! Thresholds a run must hold, for CI pipelines to gate on (in the spirit of k6
//! thresholds): `p99 > 5ms` fails when any architecture's mean p99 over the rounds, at any
//! valid rate, is above 5 ms; `regression > 10%` fails when, against a baseline run, any
//! figure rose by more than 10 % with its whole 95 % interval above 10 % (a change within
//! noise never fails a build).

use crate::analysis::Analysis;
use crate::results::RunResults;

/// One threshold of `--fail-if`.
#[derive(Debug, Clone, PartialEq)]
pub enum Threshold {
    /// A latency percentile (50 or 99) above this many µs.
    Latency { percentile: u8, limit_us: f64 },
    /// A significant increase over the baseline above this many percent.
    Regression { percent: f64 },
}

impl std::str::FromStr for Threshold {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let usage = || {
            format!(
                "{text:?}: a threshold is `p50 > DURATION`, `p99 > DURATION` (e.g. 5ms, 800us) \
                 or `regression > PERCENT` (e.g. 10%)"
            )
        };
        let (left, right) = text.split_once('>').ok_or_else(usage)?;
        let (left, right) = (left.trim(), right.trim());
        match left {
            "p50" | "p99" => {
                let limit_us = duration_us(right).ok_or_else(usage)?;
                let percentile = if left == "p50" { 50 } else { 99 };
                Ok(Threshold::Latency {
                    percentile,
                    limit_us,
                })
            }
            "regression" => {
                let percent: f64 = right
                    .strip_suffix('%')
                    .and_then(|p| p.trim().parse().ok())
                    .filter(|p: &f64| p.is_finite() && *p >= 0.0)
                    .ok_or_else(usage)?;
                Ok(Threshold::Regression { percent })
            }
            _ => Err(usage()),
        }
    }
}

/// A positive duration written `800us`, `800µs`, `3ms` or `0.5s`, in µs.
pub fn duration_us(text: &str) -> Option<f64> {
    let (number, scale) = if let Some(n) = text.strip_suffix("us") {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix("µs") {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix("ms") {
        (n, 1e3)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1e6)
    } else {
        return None;
    };
    let value: f64 = number.trim().parse().ok()?;
    (value.is_finite() && value > 0.0).then_some(value * scale)
}

/// Every threshold the analysed run breaks, in words (empty when all hold). A regression
/// threshold without a baseline is itself reported, never silently passed.
pub fn violations(analysis: &Analysis, thresholds: &[Threshold]) -> Vec<String> {
    let results = analysis.results;
    let mut broken = Vec::new();
    for threshold in thresholds {
        match *threshold {
            Threshold::Latency {
                percentile,
                limit_us,
            } => {
                for (arch, summary) in results.architectures.iter().zip(&analysis.summaries) {
                    for s in summary {
                        let e = if percentile == 50 { s.p50_us } else { s.p99_us };
                        if e.point > limit_us {
                            broken.push(format!(
                                "{} p{percentile} at {} req/s is {} µs, above {limit_us:.0} µs",
                                arch.label(),
                                s.target_rps,
                                super::format::estimate(&e, 0)
                            ));
                        }
                    }
                }
            }
            Threshold::Regression { percent } => {
                let Some(comparison) = &analysis.baseline else {
                    broken.push(format!(
                        "regression > {percent}% needs a baseline (--baseline OLD.json)"
                    ));
                    continue;
                };
                broken.extend(lost_rates(results, comparison.baseline));
                for change in &comparison.changes {
                    let Some(estimate) = change.change.filter(|_| change.significant()) else {
                        continue;
                    };
                    if estimate.low.is_some_and(|low| low > percent) {
                        broken.push(format!(
                            "{} {}: {} (more than {percent} %)",
                            change.deployment.label(),
                            change.figure,
                            super::format::change_estimate(&estimate)
                        ));
                    }
                }
            }
        }
    }
    broken
}

/// Rates a deployment held in the baseline and no longer holds: no valid step there now
/// (the load generator fell behind, or the step failed), so nothing there can show that it
/// did not regress; a regression gate is broken by it, never passed.
fn lost_rates(results: &RunResults, baseline: &RunResults) -> Vec<String> {
    let mut lost = Vec::new();
    for arch in &results.architectures {
        let Some(old) = baseline.same_deployment_as(arch) else {
            continue;
        };
        let now = arch.open_rates(true);
        for rate in old
            .open_rates(true)
            .into_iter()
            .filter(|r| !now.contains(r))
        {
            lost.push(format!(
                "{} at {rate} req/s: valid in the baseline, no valid step now (the load generator fell behind or the step failed), so no regression can be ruled out",
                arch.label()
            ));
        }
    }
    lost
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The planted-slowdown comparison once exited 0: a rate whose every step is invalid
    /// after the change is compared with nothing, and the gate passed.
    #[test]
    fn a_rate_valid_in_the_baseline_and_invalid_now_breaks_the_regression_gate() {
        let baseline: RunResults = serde_json::from_str(include_str!(
            "../../../../tests/fixtures/results-rounds.json"
        ))
        .unwrap();
        let gate = [Threshold::Regression { percent: 10.0 }];
        let violations = |results: &RunResults, baseline: Option<&RunResults>| {
            violations(&Analysis::of(results, baseline), &gate)
        };
        assert!(violations(&baseline, Some(&baseline)).is_empty());
        let mut worse = baseline.clone();
        let nano = &mut worse.architectures[0];
        let (label, rate) = (nano.label(), nano.open_rates(true)[0]);
        for step in nano.steps.iter_mut().filter(|s| s.target_rps == rate) {
            step.valid = false;
        }
        let broken = violations(&worse, Some(&baseline));
        assert_eq!(broken.len(), 1, "{broken:?}");
        assert!(
            broken[0].contains(&format!("{label} at {rate} req/s: valid in the baseline")),
            "{}",
            broken[0]
        );
    }

    #[test]
    fn thresholds_parse_and_bad_ones_say_why() {
        assert_eq!(
            "p99 > 5ms".parse(),
            Ok(Threshold::Latency {
                percentile: 99,
                limit_us: 5000.0
            })
        );
        assert_eq!(
            "p50>800us".parse(),
            Ok(Threshold::Latency {
                percentile: 50,
                limit_us: 800.0
            })
        );
        assert_eq!(
            "regression > 10%".parse(),
            Ok(Threshold::Regression { percent: 10.0 })
        );
        for bad in ["p99 > 5", "p95 > 1ms", "regression > ten", "latency"] {
            let error = bad.parse::<Threshold>().unwrap_err();
            assert!(error.contains("a threshold is"), "{error}");
        }
    }

    #[test]
    fn a_regression_gate_without_a_baseline_is_broken_not_passed() {
        let results = RunResults::default();
        let broken = violations(
            &Analysis::of(&results, None),
            &[Threshold::Regression { percent: 5.0 }],
        );
        assert_eq!(broken.len(), 1);
        assert!(broken[0].contains("needs a baseline"));
    }
}
