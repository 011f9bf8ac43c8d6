//! Circuit breakers, one per callee process (a replica): after `threshold` failures in a
//! row it opens and refuses calls at once for `open_for`; then it lets exactly one trial
//! call through (half open), whose outcome closes or reopens it.
//!
//! Each call holds a [`Permit`] naming the breaker's generation when it started; an
//! outcome from an older generation (a call that started before the breaker opened) is
//! ignored, so a slow success from before an outage cannot close the breaker. Only a
//! callee's failures count: a 4xx answer is the caller's fault and counts as an answer.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What a call through a breaker came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The callee answered (a 2xx, or a 4xx: the request's fault, not the callee's).
    Answered,
    /// The callee failed: a 5xx, a timeout, a broken connection.
    Failed,
}

/// Leave to make one call: which breaker generation it started in, and whether it is the
/// half-open breaker's one trial.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Permit {
    generation: u64,
    trial: bool,
}

#[derive(Debug, Clone, Copy)]
enum State {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
    },
    /// One trial is out; another is let through only if it has not come back by `until`
    /// (its caller may have been dropped).
    HalfOpen {
        until: Instant,
    },
}

#[derive(Debug, Clone, Copy)]
struct Breaker {
    state: State,
    /// Bumped each time the breaker opens.
    generation: u64,
}

impl Default for Breaker {
    fn default() -> Self {
        Breaker {
            state: State::Closed { failures: 0 },
            generation: 0,
        }
    }
}

/// Every callee process's breaker, for one caller.
#[derive(Debug)]
pub struct Breakers {
    threshold: u32,
    open_for: Duration,
    map: Mutex<HashMap<String, Breaker>>,
}

impl Breakers {
    /// Breakers that open after `threshold` failures in a row (0: never) for `open_for`.
    pub fn new(threshold: u32, open_for: Duration) -> Self {
        Breakers {
            threshold,
            open_for,
            map: Mutex::new(HashMap::new()),
        }
    }

    fn enabled(&self) -> bool {
        self.threshold > 0
    }

    fn with<T>(&self, process: &str, f: impl FnOnce(&mut Breaker) -> T) -> T {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        match map.get_mut(process) {
            Some(breaker) => f(breaker),
            None => f(map.entry(process.to_string()).or_default()),
        }
    }

    /// Leave to call `process` now, or `None` while its breaker refuses. Without breakers
    /// the clock is not even read (this is on every call's path).
    pub fn allow(&self, process: &str) -> Option<Permit> {
        if !self.enabled() {
            return Some(Permit {
                generation: 0,
                trial: false,
            });
        }
        self.allow_at(process, Instant::now())
    }

    /// Gives back a permit whose call was never made (a trial frees the way for another).
    pub fn release(&self, process: &str, permit: Permit) {
        if self.enabled() && permit.trial {
            self.release_at(process, permit, Instant::now());
        }
    }

    /// Records how the call made under `permit` ended.
    pub fn record(&self, process: &str, permit: Permit, outcome: Outcome) {
        if self.enabled() {
            self.record_at(process, permit, outcome, Instant::now());
        }
    }

    /// [`Breakers::allow`] at `now`.
    fn allow_at(&self, process: &str, now: Instant) -> Option<Permit> {
        if !self.enabled() {
            return Some(Permit {
                generation: 0,
                trial: false,
            });
        }
        let open_for = self.open_for;
        self.with(process, |b| {
            let trial = match b.state {
                State::Closed { .. } => false,
                State::Open { until } | State::HalfOpen { until } if now < until => return None,
                State::Open { .. } | State::HalfOpen { .. } => {
                    b.state = State::HalfOpen {
                        until: now + open_for,
                    };
                    true
                }
            };
            Some(Permit {
                generation: b.generation,
                trial,
            })
        })
    }

    /// [`Breakers::release`] at `now`.
    fn release_at(&self, process: &str, permit: Permit, now: Instant) {
        if !self.enabled() || !permit.trial {
            return;
        }
        self.with(process, |b| {
            if b.generation == permit.generation {
                if let State::HalfOpen { .. } = b.state {
                    b.state = State::Open { until: now };
                }
            }
        });
    }

    /// [`Breakers::record`] at `now`.
    fn record_at(&self, process: &str, permit: Permit, outcome: Outcome, now: Instant) {
        if !self.enabled() {
            return;
        }
        let (threshold, open_for) = (self.threshold, self.open_for);
        self.with(process, |b| {
            if b.generation != permit.generation {
                return; // started before the breaker last opened
            }
            let open = |b: &mut Breaker| {
                b.generation += 1;
                b.state = State::Open {
                    until: now + open_for,
                };
            };
            match (b.state, outcome) {
                (State::Closed { .. }, Outcome::Answered) => {
                    b.state = State::Closed { failures: 0 };
                }
                (State::Closed { failures }, Outcome::Failed) => {
                    if failures + 1 >= threshold {
                        open(b);
                    } else {
                        b.state = State::Closed {
                            failures: failures + 1,
                        };
                    }
                }
                (State::HalfOpen { .. }, Outcome::Answered) if permit.trial => {
                    b.state = State::Closed { failures: 0 };
                }
                (State::HalfOpen { .. }, Outcome::Failed) if permit.trial => open(b),
                // A call let through while closed, ending while half open, in the same
                // generation cannot happen (opening bumps it); nothing else to learn.
                _ => {}
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPEN: Duration = Duration::from_millis(100);

    fn fail(b: &Breakers, p: &str, now: Instant) {
        let permit = b.allow_at(p, now).expect("closed");
        b.record_at(p, permit, Outcome::Failed, now);
    }

    #[test]
    fn half_open_lets_exactly_one_trial_through() {
        let b = Breakers::new(2, OPEN);
        let t0 = Instant::now();
        fail(&b, "u", t0);
        fail(&b, "u", t0);
        assert!(b.allow_at("u", t0).is_none(), "open");
        let later = t0 + OPEN;
        let trial = b.allow_at("u", later).expect("the trial");
        assert!(
            b.allow_at("u", later).is_none(),
            "a second call waits for the trial"
        );
        assert!(b.allow_at("u", later + OPEN / 2).is_none());
        b.record_at("u", trial, Outcome::Answered, later);
        assert!(b.allow_at("u", later).is_some(), "the trial closed it");
    }

    #[test]
    fn a_failed_trial_reopens_and_a_lost_one_is_replaced_in_time() {
        let b = Breakers::new(1, OPEN);
        let t0 = Instant::now();
        fail(&b, "u", t0);
        let trial = b.allow_at("u", t0 + OPEN).unwrap();
        b.record_at("u", trial, Outcome::Failed, t0 + OPEN);
        assert!(b.allow_at("u", t0 + OPEN).is_none(), "open again");
        let lost = b.allow_at("u", t0 + 2 * OPEN).unwrap(); // its caller goes away
        let _ = lost;
        assert!(b.allow_at("u", t0 + 2 * OPEN).is_none());
        assert!(
            b.allow_at("u", t0 + 3 * OPEN).is_some(),
            "another trial once it is overdue"
        );
    }

    #[test]
    fn a_success_that_started_before_the_breaker_opened_does_not_close_it() {
        let b = Breakers::new(2, OPEN);
        let t0 = Instant::now();
        let slow = b.allow_at("u", t0).unwrap(); // a call that will succeed late
        fail(&b, "u", t0);
        fail(&b, "u", t0);
        b.record_at("u", slow, Outcome::Answered, t0);
        assert!(b.allow_at("u", t0).is_none(), "still open");
    }

    #[test]
    fn breakers_are_per_process_and_a_released_trial_frees_the_way() {
        let b = Breakers::new(1, OPEN);
        let t0 = Instant::now();
        fail(&b, "u#0", t0);
        assert!(b.allow_at("u#0", t0).is_none());
        assert!(
            b.allow_at("u#1", t0).is_some(),
            "the other replica is not blamed"
        );
        let trial = b.allow_at("u#0", t0 + OPEN).unwrap();
        b.release_at("u#0", trial, t0 + OPEN);
        assert!(
            b.allow_at("u#0", t0 + OPEN).is_some(),
            "never made, so another may try"
        );
    }

    #[test]
    fn no_threshold_means_no_breaker() {
        let b = Breakers::new(0, OPEN);
        let t0 = Instant::now();
        for _ in 0..10 {
            fail(&b, "u", t0);
        }
        assert!(b.allow_at("u", t0).is_some());
    }
}
