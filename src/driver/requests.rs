//! Seeded request generation: which entrypoint each request goes to (by weight) and the
//! values of its parameters (uniform, Zipf or sequence), reproducible from the seed.

use crate::scenario::{Distribution, Scenario};
use rand::distr::weighted::WeightedIndex;
use rand::distr::Distribution as _;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;

#[derive(Clone)]
enum Sampler {
    Uniform(u64),
    Zipf(rand_distr::Zipf<f64>),
    Sequence,
}

/// One request to send: the entrypoint's index and the parameter values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedRequest {
    pub entry: usize,
    pub params: BTreeMap<String, u64>,
}

/// Generates the request stream of a scenario.
#[derive(Clone)]
pub struct RequestGen {
    rng: ChaCha8Rng,
    samplers: Vec<(String, Sampler)>,
    entries: Option<WeightedIndex<u32>>,
    sequence: u64,
}

impl RequestGen {
    pub fn new(scenario: &Scenario, seed: u64) -> Self {
        let samplers = scenario
            .params
            .iter()
            .map(|param| {
                let sampler = match param.distribution {
                    Distribution::Uniform { count } => Sampler::Uniform(count),
                    Distribution::Zipf { count, exponent } => {
                        rand_distr::Zipf::new(count as f64, exponent)
                            .map(Sampler::Zipf)
                            // Validation guarantees count ≥ 1 and exponent > 0, which Zipf accepts.
                            .unwrap_or(Sampler::Uniform(count))
                    }
                    Distribution::Sequence => Sampler::Sequence,
                };
                (param.name.clone(), sampler)
            })
            .collect();
        let weights: Vec<u32> = scenario.entrypoints.iter().map(|e| e.weight).collect();
        RequestGen {
            rng: ChaCha8Rng::seed_from_u64(seed),
            samplers,
            entries: WeightedIndex::new(weights).ok(),
            sequence: 0,
        }
    }

    pub fn next_request(&mut self) -> GeneratedRequest {
        let entry = self.entries.as_ref().map_or(0, |w| w.sample(&mut self.rng));
        let mut params = BTreeMap::new();
        for i in 0..self.samplers.len() {
            let value = self.draw(i);
            params.insert(self.samplers[i].0.clone(), value);
        }
        self.sequence += 1;
        GeneratedRequest { entry, params }
    }

    /// Passes over the next `count` requests of the stream without building them: the
    /// same draws, so the request after them is the one [`next_request`](Self::next_request)
    /// would have given. A load thread that sends every N-th request skips the others.
    pub fn skip(&mut self, count: u64) {
        for _ in 0..count {
            if let Some(w) = self.entries.as_ref() {
                w.sample(&mut self.rng);
            }
            for i in 0..self.samplers.len() {
                self.draw(i);
            }
            self.sequence += 1;
        }
    }

    /// The next value of parameter `i`.
    fn draw(&mut self, i: usize) -> u64 {
        match &self.samplers[i].1 {
            Sampler::Uniform(count) => self.rng.random_range(0..*count),
            Sampler::Zipf(zipf) => (zipf.sample(&mut self.rng) as u64).saturating_sub(1),
            Sampler::Sequence => self.sequence,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skipping_requests_lands_where_generating_them_would() {
        let s = scenario();
        let mut whole = RequestGen::new(&s, 9);
        let stream: Vec<GeneratedRequest> = (0..20).map(|_| whole.next_request()).collect();
        // Three threads, each sending every third request of the one stream.
        for thread in 0..3u64 {
            let mut own = RequestGen::new(&s, 9);
            own.skip(thread);
            for i in (thread as usize..20).step_by(3) {
                assert_eq!(
                    own.next_request(),
                    stream[i],
                    "thread {thread}, request {i}"
                );
                own.skip(2);
            }
        }
    }

    fn scenario() -> Scenario {
        crate::scenario::checkout_for_tests()
    }

    #[test]
    fn same_seed_same_stream_and_values_in_range() {
        let s = scenario();
        let mut a = RequestGen::new(&s, 7);
        let mut b = RequestGen::new(&s, 7);
        for i in 0..500 {
            let (x, y) = (a.next_request(), b.next_request());
            assert_eq!(x, y);
            assert!(x.params["user"] < 1000 && x.params["item"] < 500);
            assert_eq!(x.params["order"], i);
        }
        let mut c = RequestGen::new(&s, 8);
        let differs = (0..50).any(|_| a.next_request() != c.next_request());
        assert!(differs);
    }

    #[test]
    fn entrypoints_follow_their_weights() {
        let s = scenario();
        let mut gen = RequestGen::new(&s, 1);
        let mut counts = vec![0u32; s.entrypoints.len()];
        for _ in 0..10_000 {
            counts[gen.next_request().entry] += 1;
        }
        // view_product 60%, view_cart 25%, checkout 15%: wide margins.
        assert!(counts[0] > 5_000 && counts[0] < 7_000, "{counts:?}");
        assert!(counts[2] > 1_000 && counts[2] < 2_000, "{counts:?}");
    }
}
