//! What the modelled network holds back: requests waiting out their one-way delay before
//! they leave, and replies waiting theirs before they are handed back, in one deadline
//! heap (earliest first, ties in arrival order) served by the engine's timerfd.

use crate::driver::record::{Outcome, TraceIds};
use grain_runtime::network::NetworkModel;
use rand::rngs::SmallRng;
use rand::SeedableRng;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

/// A request ready to leave (or waiting for a free slot at the in-flight cap).
pub(super) struct Queued {
    pub(super) entry: usize,
    pub(super) bytes: Vec<u8>,
    /// When it was due: latency counts from here.
    pub(super) intended: Instant,
    /// When it was to leave: `intended` plus the modelled one-way delay.
    pub(super) leave_at: Instant,
    /// Replicas already refused it (each refusal sends it to the next one).
    pub(super) refused: usize,
    /// Its trace, when it is traced.
    pub(super) trace: Option<TraceIds>,
}

/// A reply that arrived and waits out the modelled one-way delay back.
pub(super) struct HeldReply {
    pub(super) entry: usize,
    pub(super) intended: Instant,
    pub(super) sent: Option<Instant>,
    pub(super) outcome: Outcome,
    /// A failure's culprit, as the reply named it.
    pub(super) blame: Option<std::sync::Arc<str>>,
    pub(super) trace: Option<TraceIds>,
    /// When the request was to leave, and when its reply arrived (a traced request's
    /// network-model stretches).
    pub(super) leave_at: Instant,
    pub(super) arrived: Instant,
}

/// Something the modelled network holds until its deadline.
pub(super) enum Held {
    Request(Queued),
    Reply(HeldReply),
}

/// A held item in the deadline heap (ordered by deadline, then arrival).
pub(super) struct Timed {
    pub(super) at: Instant,
    pub(super) seq: u64,
    pub(super) held: Held,
}

impl PartialEq for Timed {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Timed {}
impl PartialOrd for Timed {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Timed {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// The modelled network between the driver and the entry units.
pub(super) struct ModelledNetwork {
    pub(super) model: NetworkModel,
    pub(super) rng: SmallRng,
    pub(super) held: BinaryHeap<Reverse<Timed>>,
    pub(super) next_seq: u64,
}

impl ModelledNetwork {
    pub(super) fn new(model: &NetworkModel) -> Self {
        ModelledNetwork {
            model: model.clone(),
            rng: SmallRng::from_os_rng(),
            held: BinaryHeap::new(),
            next_seq: 0,
        }
    }

    pub(super) fn one_way(&mut self) -> Duration {
        self.model.sample_one_way(&mut self.rng)
    }

    pub(super) fn hold(&mut self, at: Instant, held: Held) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.held.push(Reverse(Timed { at, seq, held }));
    }

    pub(super) fn earliest(&self) -> Option<Instant> {
        self.held.peek().map(|Reverse(timed)| timed.at)
    }

    /// The next held item whose deadline is at or before `now`.
    pub(super) fn pop_due(&mut self, now: Instant) -> Option<Timed> {
        if self.earliest()? > now {
            return None;
        }
        self.held.pop().map(|Reverse(timed)| timed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::record::ErrorClass;

    #[test]
    fn the_modelled_network_lets_go_in_deadline_order_and_never_early() {
        let mut network =
            ModelledNetwork::new(&NetworkModel::fixed("1ms", Duration::from_millis(1)));
        assert_eq!(network.one_way(), Duration::from_millis(1));
        let now = Instant::now();
        let held = |entry| {
            Held::Reply(HeldReply {
                entry,
                intended: now,
                sent: None,
                outcome: Err(ErrorClass::Other),
                blame: None,
                trace: None,
                leave_at: now,
                arrived: now,
            })
        };
        for (entry, after_us) in [(0, 300), (1, 100), (2, 200), (3, 100)] {
            network.hold(now + Duration::from_micros(after_us), held(entry));
        }
        assert!(network.pop_due(now).is_none());
        let released: Vec<usize> =
            std::iter::from_fn(|| network.pop_due(now + Duration::from_micros(200)))
                .map(|timed| match timed.held {
                    Held::Reply(reply) => reply.entry,
                    Held::Request(_) => unreachable!(),
                })
                .collect();
        assert_eq!(released, [1, 3, 2], "by deadline, ties in arrival order");
        assert_eq!(network.earliest(), Some(now + Duration::from_micros(300)));
    }
}
