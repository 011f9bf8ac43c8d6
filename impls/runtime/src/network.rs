//! The network model: the one-way delay grainbench adds to every network hop, since this
//! machine's loopback is far faster than any real network (and its kernel has no `netem`).
//!
//! The sender of every message waits one sampled one-way delay before the message leaves,
//! so a request/reply hop adds two. A delay is a fixed part plus jitter drawn from a
//! declared distribution, plus — with the loss probability — one retransmission timeout,
//! which is how TCP turns a lost segment into delay. Every applied delay's error (actual −
//! intended wait) is recorded so results can show how precisely the model was applied.

use crate::precise;
use hdrhistogram::Histogram;
use rand::Rng;
use rand_distr::{Distribution, Exp, Normal};
use serde::{Deserialize, Serialize};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Linux's minimum TCP retransmission timeout (`TCP_RTO_MIN`, 200 ms): what a lost
/// segment costs on an otherwise idle connection.
pub const DEFAULT_RETRANSMIT_US: f64 = 200_000.0;

/// How jitter is distributed around the fixed one-way delay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JitterDistribution {
    /// No jitter: every message waits exactly the fixed delay.
    #[default]
    None,
    /// Uniform in `[-jitter, +jitter]`.
    Uniform,
    /// Normal with standard deviation `jitter` (a negative total is cut at zero).
    Normal,
    /// Exponential with mean `jitter`, added on top: a one-sided, queueing-like tail.
    Exponential,
}

impl JitterDistribution {
    pub const ALL: [JitterDistribution; 4] = [
        JitterDistribution::None,
        JitterDistribution::Uniform,
        JitterDistribution::Normal,
        JitterDistribution::Exponential,
    ];

    pub fn name(self) -> &'static str {
        match self {
            JitterDistribution::None => "none",
            JitterDistribution::Uniform => "uniform",
            JitterDistribution::Normal => "normal",
            JitterDistribution::Exponential => "exponential",
        }
    }
}

/// The delay added to every network hop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetworkModel {
    /// Short name: a preset's name, a fixed delay such as `250us`, `<preset>, adjusted`
    /// or `scenario` for a scenario's own values.
    pub name: String,
    /// Fixed one-way delay per message, µs.
    pub one_way_us: f64,
    /// Jitter size, µs (its meaning depends on the distribution).
    pub jitter_us: f64,
    pub jitter: JitterDistribution,
    /// Probability that a message is lost and resent after `retransmit_us`.
    pub loss: f64,
    pub retransmit_us: f64,
    /// Where the numbers come from.
    pub source: String,
}

impl Default for NetworkModel {
    fn default() -> Self {
        NetworkModel::loopback()
    }
}

impl NetworkModel {
    /// Raw loopback: nothing added.
    pub fn loopback() -> Self {
        NetworkModel {
            name: "loopback".into(),
            one_way_us: 0.0,
            jitter_us: 0.0,
            jitter: JitterDistribution::None,
            loss: 0.0,
            retransmit_us: DEFAULT_RETRANSMIT_US,
            source: "no delay added: raw 127.0.0.1 between processes on this machine".into(),
        }
    }

    /// A fixed one-way delay, no jitter, no loss.
    pub fn fixed(name: &str, one_way: Duration) -> Self {
        NetworkModel {
            name: name.into(),
            one_way_us: one_way.as_secs_f64() * 1e6,
            source: "fixed delay given on the command line".into(),
            ..NetworkModel::loopback()
        }
    }

    /// Whether this model adds anything at all.
    pub fn adds_delay(&self) -> bool {
        self.one_way_us > 0.0
            || (self.jitter_us > 0.0 && self.jitter != JitterDistribution::None)
            || self.loss > 0.0
    }

    /// One sampled one-way delay.
    pub fn sample_one_way(&self, rng: &mut impl Rng) -> Duration {
        let jitter = match self.jitter {
            JitterDistribution::None => 0.0,
            _ if self.jitter_us <= 0.0 => 0.0,
            JitterDistribution::Uniform => rng.random_range(-self.jitter_us..=self.jitter_us),
            JitterDistribution::Normal => Normal::new(0.0, self.jitter_us)
                .map(|normal| normal.sample(rng))
                .unwrap_or(0.0),
            JitterDistribution::Exponential => Exp::new(1.0 / self.jitter_us)
                .map(|exp| exp.sample(rng))
                .unwrap_or(0.0),
        };
        let lost = self.loss > 0.0 && rng.random_bool(self.loss.clamp(0.0, 1.0));
        let retransmit = if lost { self.retransmit_us } else { 0.0 };
        let micros = (self.one_way_us + jitter).max(0.0) + retransmit;
        Duration::from_nanos((micros * 1000.0).round() as u64)
    }

    /// Waits one sampled one-way delay (nothing under loopback), recording its error.
    pub async fn delay_message(&self) {
        if !self.adds_delay() {
            return;
        }
        let intended = self.sample_one_way(&mut rand::rng());
        let start = Instant::now();
        let resumed = precise::sleep_until(start + intended).await;
        DelayErrors::global().record(resumed - start, intended);
    }
}

/// Lowest and highest error a delay-error histogram tracks, in ns (1 ns .. 60 s).
const MAX_ERROR_NS: u64 = 60_000_000_000;

/// A histogram of injected-delay errors (actual − intended wait), in ns.
pub fn new_error_histogram() -> Histogram<u64> {
    // Constant bounds that satisfy HdrHistogram's constraints (low ≥ 1, high ≥ 2·low).
    Histogram::new_with_bounds(1, MAX_ERROR_NS, 3).expect("valid histogram bounds")
}

/// Records one applied delay's error (`actual` − `intended`, never negative).
pub fn record_error(histogram: &mut Histogram<u64>, actual: Duration, intended: Duration) {
    let error = actual.saturating_sub(intended).as_nanos() as u64;
    histogram.saturating_record(error.min(MAX_ERROR_NS));
}

/// The delay errors of this process since they were last taken.
pub struct DelayErrors {
    histogram: Mutex<Histogram<u64>>,
}

impl DelayErrors {
    pub fn global() -> &'static DelayErrors {
        static ERRORS: OnceLock<DelayErrors> = OnceLock::new();
        ERRORS.get_or_init(|| DelayErrors {
            histogram: Mutex::new(new_error_histogram()),
        })
    }

    pub fn record(&self, actual: Duration, intended: Duration) {
        let mut histogram = self
            .histogram
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        record_error(&mut histogram, actual, intended);
    }

    /// Returns the errors recorded so far and starts afresh.
    pub fn take(&self) -> Histogram<u64> {
        let mut histogram = self
            .histogram
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        std::mem::replace(&mut *histogram, new_error_histogram())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn rng() -> rand::rngs::StdRng {
        rand::rngs::StdRng::seed_from_u64(7)
    }

    fn mean_of(model: &NetworkModel, n: u32) -> f64 {
        let mut rng = rng();
        (0..n)
            .map(|_| model.sample_one_way(&mut rng).as_secs_f64() * 1e6)
            .sum::<f64>()
            / f64::from(n)
    }

    #[test]
    fn loopback_adds_nothing() {
        let model = NetworkModel::loopback();
        assert!(!model.adds_delay());
        assert_eq!(model.sample_one_way(&mut rng()), Duration::ZERO);
    }

    #[test]
    fn fixed_delay_is_exact() {
        let model = NetworkModel::fixed("250us", Duration::from_micros(250));
        assert!(model.adds_delay());
        for _ in 0..10 {
            assert_eq!(model.sample_one_way(&mut rng()), Duration::from_micros(250));
        }
    }

    #[test]
    fn jitter_distributions_have_their_declared_means_and_bounds() {
        let with = |jitter| NetworkModel {
            one_way_us: 200.0,
            jitter_us: 50.0,
            jitter,
            ..NetworkModel::loopback()
        };
        for jitter in [JitterDistribution::Uniform, JitterDistribution::Normal] {
            let mean = mean_of(&with(jitter), 20_000);
            assert!((mean - 200.0).abs() < 5.0, "{jitter:?}: mean {mean}");
        }
        let exponential = with(JitterDistribution::Exponential);
        let mean = mean_of(&exponential, 20_000);
        // The exponential jitter adds its mean.
        assert!((mean - 250.0).abs() < 5.0, "{mean}");
        let mut rng = rng();
        let uniform = with(JitterDistribution::Uniform);
        for _ in 0..1000 {
            let micros = uniform.sample_one_way(&mut rng).as_secs_f64() * 1e6;
            assert!((150.0..=250.0).contains(&micros), "{micros}");
        }
    }

    #[test]
    fn loss_adds_a_retransmission_timeout_at_its_rate() {
        let model = NetworkModel {
            one_way_us: 100.0,
            loss: 0.1,
            retransmit_us: 10_000.0,
            ..NetworkModel::loopback()
        };
        let mut rng = rng();
        let lost = (0..10_000)
            .filter(|_| model.sample_one_way(&mut rng) > Duration::from_micros(5_000))
            .count();
        assert!((800..1200).contains(&lost), "{lost} of 10000 lost");
    }

    #[test]
    fn error_histograms_round_trip_and_take_resets() {
        let errors = DelayErrors {
            histogram: Mutex::new(new_error_histogram()),
        };
        errors.record(Duration::from_micros(260), Duration::from_micros(250));
        errors.record(Duration::from_micros(250), Duration::from_micros(250));
        let taken = errors.take();
        assert_eq!(taken.len(), 2);
        assert!(errors.take().is_empty());
        let back = crate::histogram::decode(&crate::histogram::encode(&taken)).unwrap();
        assert_eq!(back.len(), 2);
        assert!((9_990..=10_010).contains(&back.max()), "{}", back.max());
    }
}
