//! Which cut stays available when a process dies, freezes, slows down or fails: one group
//! per fault the run injected, one row per cut, and a verdict sentence. Every figure is a
//! count over the requests due while the fault lasted in one fault step (the run's last
//! round), so each is shown with its counts rather than an interval.

use crate::analysis::faults::{FaultComparison, MostAvailable};
use crate::report::format::one_decimal;
use crate::results::Resilience;
use crate::results::{ArchitectureResult, FaultResult, RunResults, UnitKind};
use serde::Serialize;

/// The section: present when the run injected faults.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FaultsSection {
    pub groups: Vec<FaultGroup>,
    /// The callers' policy, in words.
    pub policy: String,
    /// Which units ran replicas, and where their data lived.
    pub replicas: String,
}

/// One fault, every cut it was injected into.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FaultGroup {
    /// As written: `kill:create_order@2s+1s`.
    pub fault: String,
    /// What it did, in words.
    pub action: String,
    pub rate: u32,
    pub rows: Vec<FaultRow>,
    pub verdict: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FaultRow {
    pub arch: String,
    pub colour: String,
    /// The process hit, and of how many replicas.
    pub process: String,
    /// Success ratio while the fault lasted, with its counts.
    pub success: String,
    /// Entrypoints every request of which succeeded while it lasted.
    pub available: String,
    /// Failures by the process they were blamed on.
    pub blamed: String,
    /// p50 and p99 of the successful requests before and during (ms).
    pub p99_before_ms: String,
    pub p99_during_ms: String,
    /// Hops per successful request during the fault against the plan's.
    pub amplification: String,
    /// Retries the units made over the fault step (warm-up to recovery), as they reported.
    pub retries: u64,
    /// Fault's end → a full second at ≥ 99 % success again.
    pub recovery: String,
    /// Kill: SIGKILL → replacement ready (ms).
    pub restart_ms: String,
}

/// The section, when some cut ran a fault step.
pub fn faults(results: &RunResults, comparisons: &[FaultComparison]) -> Option<FaultsSection> {
    if comparisons.is_empty() {
        return None;
    }
    Some(FaultsSection {
        groups: comparisons.iter().map(group).collect(),
        policy: policy(&results.meta.resilience),
        replicas: replicas(results),
    })
}

fn group(comparison: &FaultComparison) -> FaultGroup {
    let fault = comparison.fault;
    FaultGroup {
        fault: fault.fault.to_string(),
        action: action(fault),
        rate: fault.rate_rps,
        rows: comparison.cuts.iter().map(|(a, f)| row(a, f)).collect(),
        verdict: verdict(comparison),
    }
}

fn action(fault: &FaultResult) -> String {
    use crate::results::FaultKind;
    let (at, length) = (fault.fault.at_s, fault.fault.for_s);
    let op = &fault.fault.operation;
    let what = match fault.fault.kind {
        FaultKind::Kill => {
            format!("SIGKILL at {at} s, restarted (new process, rerouted) after {length} s")
        }
        FaultKind::Freeze => format!("SIGSTOP at {at} s, SIGCONT {length} s later"),
        FaultKind::Slow { delay_ms } => {
            format!("{delay_ms} ms added to every reply from {at} s for {length} s")
        }
        FaultKind::Fail { probability } => {
            format!("503 with probability {probability} from {at} s for {length} s")
        }
    };
    format!(
        "the first process of the unit serving {op}: {what}, at {} req/s",
        fault.rate_rps
    )
}

fn percent(ratio: Option<f64>) -> String {
    ratio.map_or("–".into(), |r| format!("{:.1} %", r * 100.0))
}

fn ms(us: Option<u64>) -> String {
    us.map_or("–".into(), |us| format!("{:.2}", us as f64 / 1e3))
}

fn row(a: &ArchitectureResult, f: &FaultResult) -> FaultRow {
    let during = &f.during;
    let available = f.fully_available();
    let mut blamed: Vec<String> = f
        .blamed
        .iter()
        .map(|(process, n)| format!("{process} {n}"))
        .collect();
    if f.unblamed > 0 {
        blamed.push(format!("unnamed {}", f.unblamed));
    }
    FaultRow {
        arch: a.label(),
        colour: super::colour(a.label()).into(),
        process: if f.replicas > 1 {
            format!("{} (1 of {})", f.process, f.replicas)
        } else {
            f.process.clone()
        },
        success: format!(
            "{} ({} of {})",
            percent(during.success_ratio()),
            during.ok,
            during.requests
        ),
        available: match available.len() {
            n if n == f.entrypoints.len() => format!("all {n}"),
            0 => format!("0 of {}", f.entrypoints.len()),
            n => format!("{n} of {}: {}", f.entrypoints.len(), available.join(", ")),
        },
        blamed: if blamed.is_empty() {
            "none failed".into()
        } else {
            blamed.join(", ")
        },
        p99_before_ms: ms(f.before.p99_us),
        p99_during_ms: ms(during.p99_us),
        amplification: f.amplification().map_or("–".into(), |x| format!("{x:.2}×")),
        retries: f.step.unit_retries,
        recovery: recovery(f),
        restart_ms: one_decimal(f.restart_ms),
    }
}

fn recovery(f: &FaultResult) -> String {
    match f.recovery_s {
        Some(0.0) => "no outage".into(),
        Some(s) => format!("{s:.1} s"),
        None => "not within the step".into(),
    }
}

/// Who stayed most available, who lost everything, and how fast each came back.
fn verdict(comparison: &FaultComparison) -> String {
    let (fault, results) = (comparison.fault, &comparison.cuts);
    let clauses: Vec<String> = results
        .iter()
        .map(|(a, f)| {
            let available = f.fully_available().len();
            let entries = f.entrypoints.len();
            let kept = match available {
                0 => "kept no entrypoint fully available".to_string(),
                n if n == entries => "kept every entrypoint available".to_string(),
                n => format!("kept {n} of {entries} entrypoints fully available"),
            };
            let latency = match f.during.p99_us {
                Some(during) => format!(
                    "; p99 of successes {} → {} ms",
                    ms(f.before.p99_us),
                    ms(Some(during))
                ),
                None => String::new(),
            };
            format!(
                "{} {kept} ({} of requests succeeded{latency})",
                a.label(),
                percent(f.during.success_ratio()),
            )
        })
        .collect();
    let mut sentence = format!("Under {}: {}.", fault.fault, clauses.join("; "));
    match &comparison.most_available {
        Some(MostAvailable::Tied(ties)) => {
            sentence.push_str(&format!(" Most available: {}.", ties.join(" and ")));
        }
        Some(MostAvailable::Best { best, unclear }) => {
            sentence.push_str(&most_available(best, unclear, results.len()));
        }
        None => {}
    }
    let amplified: Vec<String> = results
        .iter()
        .filter_map(|(a, f)| {
            let x = f.amplification()?;
            (x > 1.05).then(|| format!("{} {x:.2}×", a.label()))
        })
        .collect();
    if !amplified.is_empty() {
        sentence.push_str(&format!(
            " Retries raised hops per successful request: {}.",
            amplified.join(", ")
        ));
    }
    let lasting: Vec<String> = results
        .iter()
        .filter(|(_, f)| f.recovery_s.is_none())
        .map(|(a, _)| a.label())
        .collect();
    if !lasting.is_empty() {
        sentence.push_str(&format!(
            " Not back at ≥ 99 % success before the step ended: {}.",
            lasting.join(", ")
        ));
    }
    sentence
}

/// ` Most available: nano.`, held to the evidence: the cuts not clearly below `best`
/// (`unclear`, of `cuts` in all) are named, or none is clearly more available.
fn most_available(best: &str, unclear: &[String], cuts: usize) -> String {
    const HOW: &str = "two-proportion tests over the fault window's requests, Benjamini–Hochberg at 5 %; one window, so optimistic";
    if unclear.is_empty() {
        format!(" Most available: {best}.")
    } else if unclear.len() + 1 == cuts {
        format!(" No cut clearly more available than the others ({best} highest; {HOW}).")
    } else {
        format!(
            " Most available: {best}, though not clearly above {} ({HOW}).",
            unclear.join(" and ")
        )
    }
}

fn policy(policy: &Resilience) -> String {
    let retries = match (policy.retries, policy.retry_budget_percent) {
        (0, _) => "no retries".to_string(),
        (n, Some(budget)) => format!("up to {n} retries within a {budget} % budget, backoff up to {} ms doubling to {} ms with full jitter", policy.backoff_ms, policy.backoff_max_ms),
        (n, None) => format!("up to {n} retries with no budget (a retry storm can start), backoff up to {} ms doubling to {} ms with full jitter", policy.backoff_ms, policy.backoff_max_ms),
    };
    let breaker = match policy.breaker_failures {
        0 => "no circuit breaker".to_string(),
        n => format!(
            "a circuit breaker opening for {} ms after {n} consecutive failures",
            policy.breaker_open_ms
        ),
    };
    format!(
        "Callers: {} ms timeout per attempt, {retries}, {breaker}; a refused connection goes to the next replica at once (nothing was sent).",
        policy.timeout_ms
    )
}

fn replicas(results: &RunResults) -> String {
    let replicated: Vec<String> = results
        .architectures
        .iter()
        .filter(|a| !a.replicas.is_empty())
        .map(|a| {
            let service_units = a
                .units
                .iter()
                .filter(|u| u.role == UnitKind::Service)
                .count();
            let counts: std::collections::BTreeSet<u32> = a.replicas.values().copied().collect();
            match counts.iter().next() {
                Some(n) if counts.len() == 1 && a.replicas.len() == service_units => {
                    format!("{} every service unit ×{n}", a.label())
                }
                _ => {
                    let units: Vec<String> = a
                        .replicas
                        .iter()
                        .map(|(unit, n)| format!("{unit} ×{n}"))
                        .collect();
                    format!("{} {}", a.label(), units.join(", "))
                }
            }
        })
        .collect();
    if replicated.is_empty() {
        return "Every unit ran as one process, so a fault hit the unit as a whole.".into();
    }
    format!(
        "Replicas: {}. A replicated unit's services keep their data in a state unit the replicas share (one process, as a database would be), in every cut; callers and the driver balance over replicas round robin.",
        replicated.join("; ")
    )
}
