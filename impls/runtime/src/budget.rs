//! The retry budget: a token bucket where every call earns `percent / 100` of a retry,
//! every retry spends one, and at most [`BUDGET_CAPACITY`] are banked; without a budget,
//! every retry goes through.

use crate::policy::BUDGET_CAPACITY;
use std::sync::Mutex;

/// The retry budget's token bucket.
#[derive(Debug)]
pub(crate) struct Budget {
    per_call: Option<f64>,
    pub(crate) tokens: Mutex<f64>,
}

impl Budget {
    pub(crate) fn new(percent: Option<f64>) -> Self {
        Budget {
            per_call: percent.map(|p| (p / 100.0).max(0.0)),
            tokens: Mutex::new(0.0),
        }
    }

    pub(crate) fn earn(&self) {
        if let Some(share) = self.per_call {
            let mut tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
            *tokens = (*tokens + share).min(BUDGET_CAPACITY);
        }
    }

    pub(crate) fn spend(&self) -> bool {
        if self.per_call.is_none() {
            return true;
        }
        let mut tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_allows_its_share_of_calls_and_banks_at_most_its_capacity() {
        let budget = Budget::new(Some(10.0));
        assert!(!budget.spend(), "nothing earned yet");
        for _ in 0..20 {
            budget.earn();
        }
        assert!(budget.spend() && budget.spend());
        assert!(!budget.spend(), "20 calls at 10 % earn 2 retries");
        for _ in 0..10_000 {
            budget.earn();
        }
        let banked = (0..100).filter(|_| budget.spend()).count();
        assert_eq!(banked, BUDGET_CAPACITY as usize);
        let unlimited = Budget::new(None);
        assert!((0..1000).all(|_| unlimited.spend()));
    }
}
