//! How a run was set up, as results.json writes it: the network model, the callers'
//! resilience policy and the faults injected. These are the contract's own plain types,
//! not the runtime's or the scenario's: those convert into them when a run records its
//! settings (`From` here for the runtime's, beside the scenario's fault for faults), so a
//! change there changes the file only through a change here.

use serde::{Deserialize, Serialize};
use std::fmt;

/// How the jitter of the modelled network's delays was drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Jitter {
    #[default]
    None,
    Uniform,
    Normal,
    Exponential,
}

/// The network model of a run: the one-way delay added to every message between processes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetworkModel {
    pub name: String,
    /// The fixed part of every one-way delay, µs.
    pub one_way_us: f64,
    /// The jitter's scale, µs (its meaning depends on `jitter`).
    pub jitter_us: f64,
    pub jitter: Jitter,
    /// The share of messages lost, each one resent after `retransmit_us`.
    pub loss: f64,
    pub retransmit_us: f64,
    /// Where the model's numbers come from.
    pub source: String,
}

impl Default for NetworkModel {
    /// Raw loopback, the model of a file that names none.
    fn default() -> Self {
        NetworkModel::from(&grain_runtime::network::NetworkModel::loopback())
    }
}

impl NetworkModel {
    /// Whether this model added anything at all.
    pub fn adds_delay(&self) -> bool {
        self.one_way_us > 0.0
            || (self.jitter_us > 0.0 && self.jitter != Jitter::None)
            || self.loss > 0.0
    }

    /// The model in words, e.g. "250 µs one way, exponential jitter (mean 25 µs), no loss".
    pub fn describe(&self) -> String {
        if !self.adds_delay() {
            return "raw loopback (127.0.0.1), no added delay".into();
        }
        let jitter = match self.jitter {
            _ if self.jitter_us <= 0.0 => "no jitter".to_string(),
            Jitter::None => "no jitter".to_string(),
            Jitter::Uniform => format!("uniform jitter (±{} µs)", self.jitter_us),
            Jitter::Normal => format!("normal jitter (σ {} µs)", self.jitter_us),
            Jitter::Exponential => format!("exponential jitter (mean {} µs)", self.jitter_us),
        };
        let loss = if self.loss > 0.0 {
            format!(
                "{}% of messages lost, each resent after {} ms",
                self.loss * 100.0,
                self.retransmit_us / 1000.0
            )
        } else {
            "no loss".into()
        };
        format!("{} µs one way, {jitter}, {loss}", self.one_way_us)
    }

    /// The mean one-way delay this model adds, µs (what a round trip should grow by, halved).
    pub fn mean_one_way_us(&self) -> f64 {
        let jitter_mean = match self.jitter {
            Jitter::Exponential => self.jitter_us,
            _ => 0.0,
        };
        self.one_way_us + jitter_mean + self.loss * self.retransmit_us
    }
}

impl From<&grain_runtime::network::NetworkModel> for NetworkModel {
    fn from(model: &grain_runtime::network::NetworkModel) -> Self {
        use grain_runtime::network::JitterDistribution as Runtime;
        NetworkModel {
            name: model.name.clone(),
            one_way_us: model.one_way_us,
            jitter_us: model.jitter_us,
            jitter: match model.jitter {
                Runtime::None => Jitter::None,
                Runtime::Uniform => Jitter::Uniform,
                Runtime::Normal => Jitter::Normal,
                Runtime::Exponential => Jitter::Exponential,
            },
            loss: model.loss,
            retransmit_us: model.retransmit_us,
            source: model.source.clone(),
        }
    }
}

/// How units called each other, the same in every unit of a run (the scenario's
/// `[resilience]`). A file without it (schema < 5) is read with the defaults of then.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Resilience {
    /// Each attempt's timeout, the modelled network's delays included (ms).
    pub timeout_ms: u64,
    /// Retries after a failed attempt.
    pub retries: u32,
    /// Retries allowed as a share of calls (%); `None`: no budget.
    pub retry_budget_percent: Option<f64>,
    /// The first retry's backoff bound, doubling per retry (ms).
    pub backoff_ms: f64,
    /// The longest backoff bound (ms).
    pub backoff_max_ms: f64,
    /// Consecutive failures of a callee that open its breaker (0: no breaker).
    pub breaker_failures: u32,
    /// How long an open breaker fails calls at once (ms).
    pub breaker_open_ms: u64,
}

impl Default for Resilience {
    /// The policy of schema 4 and older files, which had no `[resilience]`: every caller
    /// then used these.
    fn default() -> Self {
        Resilience {
            timeout_ms: 10_000,
            retries: 0,
            retry_budget_percent: Some(10.0),
            backoff_ms: 10.0,
            backoff_max_ms: 200.0,
            breaker_failures: 0,
            breaker_open_ms: 1_000,
        }
    }
}

impl From<&grain_runtime::resilience::Resilience> for Resilience {
    fn from(policy: &grain_runtime::resilience::Resilience) -> Self {
        Resilience {
            timeout_ms: policy.timeout_ms,
            retries: policy.retries,
            retry_budget_percent: policy.retry_budget_percent,
            backoff_ms: policy.backoff_ms,
            backoff_max_ms: policy.backoff_max_ms,
            breaker_failures: policy.breaker_failures,
            breaker_open_ms: policy.breaker_open_ms,
        }
    }
}

/// What a fault did to its process.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum FaultKind {
    /// SIGKILL, then a new process once the fault's length was over.
    Kill,
    /// SIGSTOP for the fault's length, then SIGCONT.
    Freeze,
    /// Every reply delayed by this much while the fault lasted.
    Slow { delay_ms: f64 },
    /// Calls answered 503 with this probability while the fault lasted.
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

/// One fault as asked: what, on which operation's unit, when (from the start of the
/// measured window) and for how long.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fault {
    #[serde(flatten)]
    pub kind: FaultKind,
    pub operation: String,
    pub at_s: f64,
    pub for_s: f64,
}

impl fmt::Display for Fault {
    /// The fault as `--fault` takes it: `slow:get_item@2s+3s=50ms`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}@{}+{}",
            self.kind.name(),
            self.operation,
            seconds(self.at_s),
            seconds(self.for_s)
        )?;
        match self.kind {
            FaultKind::Slow { delay_ms } => write!(f, "={delay_ms}ms"),
            FaultKind::Fail { probability } => write!(f, "={probability}"),
            FaultKind::Kill | FaultKind::Freeze => Ok(()),
        }
    }
}

fn seconds(s: f64) -> String {
    if s < 1.0 && s > 0.0 {
        format!("{}ms", (s * 1e3).round())
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use grain_runtime::network::JitterDistribution;

    #[test]
    fn descriptions_say_delay_jitter_and_loss() {
        assert_eq!(
            NetworkModel::default().describe(),
            "raw loopback (127.0.0.1), no added delay"
        );
        let model = NetworkModel::from(&grain_runtime::network::NetworkModel {
            one_way_us: 250.0,
            jitter_us: 25.0,
            jitter: JitterDistribution::Exponential,
            loss: 0.001,
            ..grain_runtime::network::NetworkModel::loopback()
        });
        assert_eq!(
            model.describe(),
            "250 µs one way, exponential jitter (mean 25 µs), 0.1% of messages lost, each resent after 200 ms"
        );
    }

    #[test]
    fn the_mean_one_way_delay_is_what_the_runtime_samples() {
        let mut rng = rand::rng();
        for jitter in JitterDistribution::ALL {
            let runtime = grain_runtime::network::NetworkModel {
                one_way_us: 200.0,
                jitter_us: 50.0,
                jitter,
                loss: 0.001,
                retransmit_us: 2_000.0,
                ..grain_runtime::network::NetworkModel::loopback()
            };
            let n = 40_000;
            let mean = (0..n)
                .map(|_| runtime.sample_one_way(&mut rng).as_secs_f64() * 1e6)
                .sum::<f64>()
                / f64::from(n);
            let expected = NetworkModel::from(&runtime).mean_one_way_us();
            assert!(
                (mean - expected).abs() < 6.0,
                "{jitter:?}: {mean} vs {expected}"
            );
        }
    }

    #[test]
    fn the_contract_reads_and_writes_what_the_runtime_types_wrote() {
        // Files written before these types existed held the runtime's own serde form.
        let runtime = grain_runtime::resilience::Resilience {
            retries: 2,
            retry_budget_percent: None,
            ..Default::default()
        };
        let written = serde_json::to_value(&runtime).unwrap();
        assert_eq!(
            written,
            serde_json::to_value(Resilience::from(&runtime)).unwrap()
        );
        let model =
            grain_runtime::network::NetworkModel::fixed("x", std::time::Duration::from_micros(5));
        assert_eq!(
            serde_json::to_value(&model).unwrap(),
            serde_json::to_value(NetworkModel::from(&model)).unwrap()
        );
        let fault: Fault = serde_json::from_str(
            r#"{"kind":"slow","delay_ms":50.0,"operation":"get","at_s":2.0,"for_s":0.5}"#,
        )
        .unwrap();
        assert_eq!(fault.to_string(), "slow:get@2s+500ms=50ms");
    }
}
