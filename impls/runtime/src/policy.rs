//! The callers' policy as data: timeouts, retries, their budget, backoff and breaker
//! settings, the same in every unit of a run (the scenario's `[resilience]`). How a caller
//! applies it is the `resilience` module's.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Most retries a caller banks under a budget.
pub const BUDGET_CAPACITY: f64 = 10.0;

/// The callers' policy, the same in every unit of a run (the scenario's `[resilience]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Resilience {
    /// Each attempt's timeout, the modelled network's delays included (ms).
    pub timeout_ms: u64,
    /// Retries after a failed attempt (a 5xx reply, a timeout, a broken connection).
    pub retries: u32,
    /// Retries allowed as a share of calls (%); `None`: no budget, every retry allowed.
    pub retry_budget_percent: Option<f64>,
    /// The first retry waits a uniform random time up to this; each next one up to twice
    /// as long (ms).
    pub backoff_ms: f64,
    /// The longest backoff bound (ms).
    pub backoff_max_ms: f64,
    /// Consecutive failures of a callee that open its breaker (0: no breaker).
    pub breaker_failures: u32,
    /// How long an open breaker fails calls at once before letting one through (ms).
    pub breaker_open_ms: u64,
}

impl Default for Resilience {
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

impl Resilience {
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    /// The bound of the wait before retry `n` (1-based): `backoff_ms · 2^(n-1)`, capped.
    pub fn backoff_bound(&self, retry: u32) -> Duration {
        let doubled = self.backoff_ms * 2f64.powi(retry.saturating_sub(1).min(30) as i32);
        Duration::from_secs_f64(doubled.min(self.backoff_max_ms).max(0.0) / 1e3)
    }
}
