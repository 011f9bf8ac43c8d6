//! Run metadata and progress: the run id, git commit, start time, scenario hash, and the
//! per-step progress bar.

use crate::driver::engine::Schedule;
use crate::driver::StepConfig;
use crate::plan::Architecture;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

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

/// A spinner saying what the run is doing where there is no step to show (deploying and
/// timing cold starts, the equivalence check); none unless progress is shown.
pub(super) fn spinner(show: bool, what: String) -> Option<ProgressBar> {
    if !show {
        return None;
    }
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
        .unwrap_or_else(|_| ProgressStyle::default_spinner());
    bar.set_style(style);
    bar.set_message(what);
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    Some(bar)
}

pub(super) fn progress_bar(
    show: bool,
    architecture: &Architecture,
    config: &StepConfig,
    place: StepPlace,
) -> Option<ProgressBar> {
    if !show {
        return None;
    }
    let total_ms = (config.warmup + config.duration).as_millis() as u64;
    let bar = ProgressBar::with_draw_target(Some(total_ms), ProgressDrawTarget::stderr());
    let style =
        ProgressStyle::with_template("{prefix:>18} {msg:>12} [{bar:30}] {elapsed}/{duration}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
    bar.set_style(style);
    bar.set_prefix(format!(
        "{} round {}/{}",
        architecture.name(),
        place.round,
        place.rounds
    ));
    bar.set_message(match config.schedule {
        Schedule::OpenLoop { rate } => format!("{rate} req/s"),
        Schedule::ClosedLoop { connections } => format!("{connections} conns"),
    });
    Some(bar)
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

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
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
