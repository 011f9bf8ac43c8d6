//! Run metadata: the run id, git commit, start time, scenario hash, the rounds' orders and
//! where a step stands in the run.

use crate::plan::Architecture;

/// Where a step stands in the run, for its progress bar: round `round` (from 1) of
/// `rounds`.
#[derive(Debug, Clone, Copy)]
pub(super) struct StepPlace {
    pub round: usize,
    pub rounds: usize,
}

impl StepPlace {
    /// The place a step's seed index encodes (its round in the high 32 bits).
    pub(super) fn of_index(index: u64, rounds: usize) -> Self {
        StepPlace {
            round: (index >> 32) as usize + 1,
            rounds: rounds.max(1),
        }
    }
}

/// The commit the binary was built from (not the working directory's).
pub(super) fn git_commit() -> Option<String> {
    crate::BUILD_COMMIT.map(str::to_owned)
}

pub(super) fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// A run id unique on this machine: harness pid and start time.
pub fn new_run_id() -> String {
    format!(
        "{}-{}",
        std::process::id(),
        time::OffsetDateTime::now_utc().unix_timestamp_nanos()
    )
}

/// The order of the architectures in each of `rounds` rounds, shuffled per round with the
/// run's seed, so drift over the run (another tenant, a noisy phase) spreads over every
/// architecture instead of landing on the one that ran then.
pub(super) fn round_orders(
    architectures: &[Architecture],
    rounds: usize,
    seed: u64,
) -> Vec<Vec<Architecture>> {
    use rand::seq::SliceRandom as _;
    use rand::SeedableRng as _;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0x726f_756e_6473);
    (0..rounds.max(1))
        .map(|_| {
            let mut order = architectures.to_vec();
            order.shuffle(&mut rng);
            order
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_round_runs_every_architecture_in_a_seeded_order() {
        let all = Architecture::ALL.to_vec();
        let orders = round_orders(&all, 12, 7);
        assert_eq!(orders.len(), 12);
        for order in &orders {
            let mut sorted = order.clone();
            sorted.sort();
            assert_eq!(sorted, all);
        }
        assert!(orders.iter().any(|o| o != &all), "shuffled: {orders:?}");
        assert_eq!(orders, round_orders(&all, 12, 7), "same seed, same orders");
        assert_eq!(round_orders(&all, 0, 7).len(), 1, "at least one round");
    }
}
