//! Faults injected during a measured step (`[[fault]]` in the scenario, `--fault` on the
//! command line), each hitting one process: the first replica of the unit that serves an
//! operation, in whatever cut is running.
//!
//! The command-line form is `KIND:OPERATION@AT[+FOR][=AMOUNT]`, times in `ms` or `s`:
//! `kill:create_order@2s` (SIGKILL; the harness restarts it after FOR, 1 s by default),
//! `freeze:create_order@2s+1s` (SIGSTOP for FOR, then SIGCONT),
//! `slow:get_item@2s+3s=50ms` (every reply of the unit FOR long gets AMOUNT added),
//! `fail:get_item@2s+3s=0.2` (FOR long the unit answers 503 with probability AMOUNT).
//! Also the retry budget's text form, which `[resilience]` and `--retry-budget` share.

use grain_report::results;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

/// How long a fault lasts when it does not say: a killed unit is restarted after it.
pub const DEFAULT_FAULT_LENGTH: Duration = Duration::from_secs(1);
/// The latest a fault may start or last (s): a fault step is at most a few minutes.
pub const MAX_FAULT_S: f64 = 600.0;
/// The most a `slow` fault adds to a reply (ms).
pub const MAX_SLOW_MS: f64 = 60_000.0;

/// What a fault does to its process.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum FaultKind {
    /// SIGKILL; restarted (a new process, rerouted) once the fault's length is over.
    Kill,
    /// SIGSTOP for the fault's length, then SIGCONT: a GC pause or a frozen VM.
    Freeze,
    /// Every reply delayed by this much while the fault lasts.
    Slow { delay_ms: f64 },
    /// Calls answered 503 with this probability while the fault lasts.
    Fail { probability: f64 },
}

impl FaultKind {
    pub fn name(&self) -> &'static str {
        match self {
            FaultKind::Kill => "kill",
            FaultKind::Freeze => "freeze",
            FaultKind::Slow { .. } => "slow",
            FaultKind::Fail { .. } => "fail",
        }
    }
}

/// One fault: what, on which operation's unit, when (from the start of the measured
/// window) and for how long.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fault {
    #[serde(flatten)]
    pub kind: FaultKind,
    pub operation: String,
    pub at_s: f64,
    pub for_s: f64,
}

impl Fault {
    pub fn at(&self) -> Duration {
        Duration::from_secs_f64(self.at_s)
    }

    pub fn length(&self) -> Duration {
        Duration::from_secs_f64(self.for_s)
    }
}

/// The fault as results.json records it (its own plain type: the contract changes only
/// where it is defined).
impl From<&Fault> for results::Fault {
    fn from(fault: &Fault) -> Self {
        results::Fault {
            kind: match fault.kind {
                FaultKind::Kill => results::FaultKind::Kill,
                FaultKind::Freeze => results::FaultKind::Freeze,
                FaultKind::Slow { delay_ms } => results::FaultKind::Slow { delay_ms },
                FaultKind::Fail { probability } => results::FaultKind::Fail { probability },
            },
            operation: fault.operation.clone(),
            at_s: fault.at_s,
            for_s: fault.for_s,
        }
    }
}

impl fmt::Display for Fault {
    /// As `--fault` takes it (written once, by the results' fault).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&results::Fault::from(self), f)
    }
}

/// Why a `--fault` value cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--fault {text:?}: {reason} (form: KIND:OPERATION@AT[+FOR][=AMOUNT], e.g. kill:create_order@2s, freeze:create_order@2s+1s, slow:get_item@2s+3s=50ms, fail:get_item@2s+3s=0.2)")]
pub struct FaultSyntaxError {
    pub text: String,
    pub reason: String,
}

/// A time such as `2s`, `1.5s` or `500ms`, in seconds (no spaces).
fn parse_time(text: &str) -> Option<f64> {
    let value = match text.strip_suffix("ms") {
        Some(ms) => ms.parse::<f64>().ok()? / 1e3,
        None => text.strip_suffix('s')?.parse::<f64>().ok()?,
    };
    value.is_finite().then_some(value)
}

impl std::str::FromStr for Fault {
    type Err = FaultSyntaxError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let error = |reason: &str| FaultSyntaxError {
            text: text.to_string(),
            reason: reason.to_string(),
        };
        if text.chars().any(char::is_whitespace) {
            return Err(error("no spaces allowed"));
        }
        let (kind, rest) = text.split_once(':').ok_or_else(|| error("no KIND:"))?;
        let (operation, when) = rest.split_once('@').ok_or_else(|| error("no @AT"))?;
        let (when, amount) = match when.split_once('=') {
            Some((when, amount)) => (when, Some(amount)),
            None => (when, None),
        };
        let (at, length) = match when.split_once('+') {
            Some((at, length)) => (at, Some(length)),
            None => (when, None),
        };
        let at_s = parse_time(at).ok_or_else(|| error("AT is not a time such as 2s or 500ms"))?;
        let for_s = match length {
            Some(length) => {
                parse_time(length).ok_or_else(|| error("FOR is not a time such as 1s"))?
            }
            None => DEFAULT_FAULT_LENGTH.as_secs_f64(),
        };
        let kind = match (kind, amount) {
            ("kill", None) => FaultKind::Kill,
            ("freeze", None) => FaultKind::Freeze,
            ("slow", Some(amount)) => FaultKind::Slow {
                delay_ms: parse_time(amount)
                    .ok_or_else(|| error("slow's AMOUNT is a time such as 50ms"))?
                    * 1e3,
            },
            ("fail", Some(amount)) => FaultKind::Fail {
                probability: amount
                    .parse()
                    .map_err(|_| error("fail's AMOUNT is a probability such as 0.2"))?,
            },
            ("kill" | "freeze", Some(_)) => return Err(error("kill and freeze take no =AMOUNT")),
            ("slow" | "fail", None) => return Err(error("slow and fail need =AMOUNT")),
            _ => return Err(error("KIND is kill, freeze, slow or fail")),
        };
        let fault = Fault {
            kind,
            operation: operation.to_string(),
            at_s,
            for_s,
        };
        fault.check().map_err(|bound| error(&bound.message))?;
        Ok(fault)
    }
}

/// Which part of a fault is out of bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultPart {
    /// When it begins (`AT`, `at_s`).
    At,
    /// How long it lasts (`FOR`, `for_s`).
    For,
    /// How much (`AMOUNT`: `delay_ms` or `probability`).
    Amount,
}

/// A fault outside its bounds: which part, and the allowed range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultBound {
    pub part: FaultPart,
    pub message: String,
}

impl Fault {
    /// The bounds every fault keeps, whichever way it was written.
    pub fn check(&self) -> Result<(), FaultBound> {
        let out = |part, message: String| Err(FaultBound { part, message });
        if !(0.0..=MAX_FAULT_S).contains(&self.at_s) {
            return out(FaultPart::At, format!("AT must be 0 s to {MAX_FAULT_S} s"));
        }
        if !(0.001..=MAX_FAULT_S).contains(&self.for_s) {
            return out(
                FaultPart::For,
                format!("FOR must be 1 ms to {MAX_FAULT_S} s"),
            );
        }
        match self.kind {
            FaultKind::Slow { delay_ms } if !(0.0..=MAX_SLOW_MS).contains(&delay_ms) => out(
                FaultPart::Amount,
                format!("slow's AMOUNT must be 0 ms to {MAX_SLOW_MS} ms"),
            ),
            FaultKind::Fail { probability } if !(0.0..=1.0).contains(&probability) => out(
                FaultPart::Amount,
                "fail's AMOUNT must be a probability, 0 to 1".into(),
            ),
            _ => Ok(()),
        }
    }
}

/// `"10%"` → 10, `"none"` → no budget.
/// The retry budget's text form (`[resilience] retry_budget`, `--retry-budget`).
pub fn parse_budget(text: &str) -> Result<Option<f64>, String> {
    if text.trim() == "none" {
        return Ok(None);
    }
    let percent = text
        .trim()
        .strip_suffix('%')
        .and_then(|p| p.trim().parse::<f64>().ok())
        .filter(|p| (0.0..=1000.0).contains(p));
    match percent {
        Some(percent) => Ok(Some(percent)),
        None => Err(format!(
            "{text:?} is not a budget: a share of calls from \"0%\" to \"1000%\", or \"none\""
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fault_with_spaces_is_refused() {
        for text in [
            "kill:leaf@ 1 s",
            "kill:leaf@1s +1s",
            " kill:leaf@1s",
            "slow:leaf@1s=5 ms",
        ] {
            let error = text.parse::<Fault>().unwrap_err();
            assert_eq!(error.reason, "no spaces allowed", "{text}");
        }
        assert!("kill:leaf@1s+500ms".parse::<Fault>().is_ok());
    }

    #[test]
    fn budgets_are_a_share_or_none() {
        assert_eq!(parse_budget("10%"), Ok(Some(10.0)));
        assert_eq!(parse_budget("none"), Ok(None));
        assert!(parse_budget("ten").unwrap_err().contains("\"none\""));
        assert!(parse_budget("-5%").is_err());
    }

    #[test]
    fn every_kind_parses_and_prints_back() {
        for (text, printed) in [
            ("kill:create_order@2s", "kill:create_order@2s+1s"),
            (
                "freeze:create_order@2s+500ms",
                "freeze:create_order@2s+500ms",
            ),
            ("slow:get_item@1.5s+3s=50ms", "slow:get_item@1.5s+3s=50ms"),
            ("fail:get_item@0s+2s=0.2", "fail:get_item@0s+2s=0.2"),
        ] {
            let fault: Fault = text.parse().unwrap();
            assert_eq!(fault.to_string(), printed);
            assert_eq!(printed.parse::<Fault>().unwrap(), fault);
        }
        let slow: Fault = "slow:x@1s+2s=0.05s".parse().unwrap();
        assert_eq!(slow.kind, FaultKind::Slow { delay_ms: 50.0 });
    }

    #[test]
    fn bad_faults_say_what_is_wrong() {
        for (text, says) in [
            ("kill", "no KIND:"),
            ("kill:x", "no @AT"),
            ("boom:x@1s", "KIND is kill"),
            ("kill:x@soon", "AT is not a time"),
            ("kill:x@1s=3", "no =AMOUNT"),
            ("slow:x@1s", "need =AMOUNT"),
            ("fail:x@1s+1s=2", "probability, 0 to 1"),
            ("freeze:x@1s+0s", "FOR must be"),
            ("kill:x@-1s", "AT must be"),
        ] {
            let error = text.parse::<Fault>().unwrap_err().to_string();
            assert!(error.contains(says), "{text}: {error}");
        }
    }
}
