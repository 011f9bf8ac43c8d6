//! What the load engine records while a step runs: per-entrypoint latency histograms
//! (corrected and uncorrected), hop counts, errors by class, the send-lag histogram and a
//! per-second timeline. Warm-up requests go to the timeline only.

use crate::results::ErrorCounts;
use grain_runtime::client::CallError;
use grain_runtime::network::{new_error_histogram, record_error};
use grain_runtime::wire::Hops;
use hdrhistogram::Histogram;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Highest latency a histogram records (larger values are clamped): one minute, in µs.
const MAX_TRACKED_US: u64 = 60_000_000;

/// A new latency histogram: 1 µs .. 60 s, 3 significant digits, fixed memory.
pub fn new_histogram() -> Histogram<u64> {
    // Bounds are constants that satisfy HdrHistogram's constraints (low ≥ 1, high ≥ 2·low).
    Histogram::new_with_bounds(1, MAX_TRACKED_US, 3).expect("valid histogram bounds")
}

/// Records `duration` in µs, clamped into the histogram's range.
pub fn record(histogram: &mut Histogram<u64>, duration: Duration) {
    let micros = (duration.as_micros() as u64).clamp(1, MAX_TRACKED_US);
    histogram.saturating_record(micros);
}

/// The class of a failed request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    Connect,
    /// The load generator could not make the request itself (out of descriptors or ports).
    Generator,
    Timeout,
    Status(u16),
    Other,
}

impl ErrorClass {
    /// A failed `connect(2)`: the generator's own exhaustion (descriptors, ports, memory)
    /// is not the architecture's failure to accept.
    pub fn of_connect_error(error: &std::io::Error) -> Self {
        match error.raw_os_error() {
            Some(
                libc::EMFILE | libc::ENFILE | libc::EADDRNOTAVAIL | libc::ENOBUFS | libc::ENOMEM,
            ) => ErrorClass::Generator,
            _ => ErrorClass::Connect,
        }
    }

    pub fn of_call_error(error: &CallError) -> Self {
        match error {
            CallError::Connect { .. } => ErrorClass::Connect,
            CallError::Timeout { .. } => ErrorClass::Timeout,
            CallError::Status { status, .. } => ErrorClass::Status(*status),
            CallError::Io { .. } => ErrorClass::Other,
        }
    }
}

/// Counts one failed request in `counts` by its class.
pub fn count_error(counts: &mut ErrorCounts, class: ErrorClass) {
    match class {
        ErrorClass::Connect => counts.connect += 1,
        ErrorClass::Generator => counts.generator += 1,
        ErrorClass::Timeout => counts.timeout += 1,
        ErrorClass::Status(status) => *counts.status.entry(status).or_default() += 1,
        ErrorClass::Other => counts.other += 1,
    }
}

/// Measurements of one entrypoint (or of all together) during a step's measured window.
#[derive(Debug, Clone)]
pub struct EntryMeasurement {
    pub ok: u64,
    pub errors: ErrorCounts,
    /// From intended send time to reply (coordinated omission corrected).
    pub corrected: Histogram<u64>,
    /// From actual send time to reply.
    pub uncorrected: Histogram<u64>,
    /// Hops per successful request → number of requests.
    pub hops: BTreeMap<Hops, u64>,
}

impl EntryMeasurement {
    pub fn new() -> Self {
        EntryMeasurement {
            ok: 0,
            errors: ErrorCounts::default(),
            corrected: new_histogram(),
            uncorrected: new_histogram(),
            hops: BTreeMap::new(),
        }
    }

    pub fn merge(&mut self, other: &EntryMeasurement) {
        self.ok += other.ok;
        self.errors.merge(&other.errors);
        // Both histograms share the same bounds, so adding cannot fail.
        let _ = self.corrected.add(&other.corrected);
        let _ = self.uncorrected.add(&other.uncorrected);
        for (hops, count) in &other.hops {
            *self.hops.entry(*hops).or_default() += count;
        }
    }
}

impl Default for EntryMeasurement {
    fn default() -> Self {
        Self::new()
    }
}

/// One second of a step, by intended send time.
#[derive(Debug, Clone)]
pub struct Second {
    pub warmup: bool,
    pub ok: u64,
    pub errors: u64,
    pub corrected: Histogram<u64>,
}

/// How one request ended.
pub type Outcome = Result<Hops, ErrorClass>;

/// The ids a traced request carries: its trace, and the driver's own span in it (the
/// entry unit's parent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceIds {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
}

impl TraceIds {
    /// Its `traceparent` header value, sampled.
    pub fn traceparent(&self) -> String {
        grain_runtime::trace::TraceParent {
            trace_id: self.trace_id,
            span_id: self.span_id,
            sampled: true,
        }
        .header()
    }
}

/// Decides which requests are traced: each with probability `sample`, on a random
/// stream of its own (so the choice is independent of the request's position), with
/// random ids. Off (`sample` 0) it draws nothing.
pub struct TraceSampler {
    sample: f64,
    rng: rand::rngs::SmallRng,
}

impl TraceSampler {
    pub fn new(sample: f64) -> Self {
        TraceSampler {
            sample: sample.clamp(0.0, 1.0),
            rng: rand::SeedableRng::from_os_rng(),
        }
    }

    /// The next request's trace, if it is traced.
    pub fn draw(&mut self) -> Option<TraceIds> {
        use rand::Rng as _;
        if self.sample <= 0.0 || !self.rng.random_bool(self.sample) {
            return None;
        }
        // All-zero ids are invalid: draw again in that (2^-64) case.
        loop {
            let ids = TraceIds {
                trace_id: self.rng.random(),
                span_id: self.rng.random(),
            };
            if ids.trace_id != [0; 16] && ids.span_id != [0; 8] {
                return Some(ids);
            }
        }
    }
}

/// A traced request that got a reply, as the driver saw it.
#[derive(Debug, Clone)]
pub struct TracedRequest {
    pub ids: TraceIds,
    pub entry: usize,
    pub intended: Instant,
    /// `intended` plus the network model's one-way delay out.
    pub leave_at: Instant,
    pub sent: Option<Instant>,
    /// When its reply arrived, and when it was handed back (after the model's delay back).
    pub arrived: Instant,
    pub done: Instant,
    pub outcome: Outcome,
}

/// One request of the step, kept so any window of it can be looked at afterwards
/// (e.g. a redeploy): when it was due, its corrected latency, and whether it succeeded.
#[derive(Debug, Clone)]
pub struct Sample {
    pub intended: Instant,
    pub latency_us: u64,
    pub ok: bool,
    /// The entrypoint (index in scenario order).
    pub entry: usize,
    /// Hops the request made (successes only).
    pub hops: Hops,
    /// A failure's culprit: the process its reply named, or the entry process the driver
    /// could not reach (none: the failure names no one).
    pub blame: Option<Arc<str>>,
}

/// Accumulates a step's measurements.
pub struct Recorder {
    start: Instant,
    measure_from: Instant,
    pub per_entry: Vec<EntryMeasurement>,
    pub send_lag: Histogram<u64>,
    /// How late the modelled network let each held request or reply go (ns).
    pub delay_error: Histogram<u64>,
    pub timeline: Vec<Second>,
    /// Latest actual send time of a measured request.
    pub last_sent: Instant,
    /// Every request of the step, warm-up included, in completion order — kept only when
    /// asked for (a redeploy step looks at a window of it); otherwise a step's memory does
    /// not grow with its request count.
    pub samples: Option<Vec<Sample>>,
    /// The measured window's traced requests that got a reply.
    pub traced: Vec<TracedRequest>,
}

impl Recorder {
    pub fn new(entries: usize, start: Instant, warmup: Duration, keep_samples: bool) -> Self {
        Recorder {
            start,
            measure_from: start + warmup,
            per_entry: (0..entries).map(|_| EntryMeasurement::new()).collect(),
            send_lag: new_histogram(),
            delay_error: new_error_histogram(),
            timeline: Vec::new(),
            last_sent: start + warmup,
            samples: keep_samples.then(Vec::new),
            traced: Vec::new(),
        }
    }

    pub fn measure_from(&self) -> Instant {
        self.measure_from
    }

    /// A request left at `sent`, scheduled for `intended`. Only measured requests count in
    /// the send lag, as in every other figure: the warm-up is there to absorb a cold start
    /// (a unit's first replies on fresh connections, connections opened as its replies
    /// lag), and a schedule still behind once the measured window opens shows in it.
    pub fn sent(&mut self, intended: Instant, sent: Instant) {
        if intended >= self.measure_from {
            record(&mut self.send_lag, sent.saturating_duration_since(intended));
            self.last_sent = self.last_sent.max(sent);
        }
    }

    /// A traced request got its reply (kept when it was due in the measured window).
    pub fn traced(&mut self, request: TracedRequest) {
        if request.intended >= self.measure_from {
            self.traced.push(request);
        }
    }

    /// The modelled network let a request or reply go at `released`, due at `deadline`.
    pub fn delay_released(&mut self, deadline: Instant, released: Instant) {
        let lateness = released.saturating_duration_since(deadline);
        record_error(&mut self.delay_error, lateness, Duration::ZERO);
    }

    /// A request finished (`sent` is `None` for one that never left).
    pub fn finished(
        &mut self,
        entry: usize,
        intended: Instant,
        sent: Option<Instant>,
        done: Instant,
        outcome: Outcome,
    ) {
        self.finished_blaming(entry, intended, sent, done, outcome, None);
    }

    /// A request finished, a failure blamed on `blame` (kept in its sample).
    pub fn finished_blaming(
        &mut self,
        entry: usize,
        intended: Instant,
        sent: Option<Instant>,
        done: Instant,
        outcome: Outcome,
        blame: Option<Arc<str>>,
    ) {
        if let Some(samples) = self.samples.as_mut() {
            samples.push(Sample {
                intended,
                latency_us: done.saturating_duration_since(intended).as_micros() as u64,
                ok: outcome.is_ok(),
                entry,
                hops: outcome.unwrap_or_default(),
                blame: blame.filter(|_| outcome.is_err()),
            });
        }
        let second = self.second(intended);
        match outcome {
            Ok(_) => {
                second.ok += 1;
                record(
                    &mut second.corrected,
                    done.saturating_duration_since(intended),
                );
            }
            Err(_) => second.errors += 1,
        }
        if intended < self.measure_from {
            return;
        }
        let entry = &mut self.per_entry[entry];
        match outcome {
            Ok(hops) => {
                entry.ok += 1;
                record(
                    &mut entry.corrected,
                    done.saturating_duration_since(intended),
                );
                record(
                    &mut entry.uncorrected,
                    done.saturating_duration_since(sent.unwrap_or(intended)),
                );
                *entry.hops.entry(hops).or_default() += 1;
            }
            Err(class) => count_error(&mut entry.errors, class),
        }
    }

    /// Adds what another load thread of the same step recorded (same start and warm-up):
    /// histograms add, counts sum, per-second figures add second by second.
    pub fn merge(&mut self, other: Recorder) {
        for (mine, theirs) in self.per_entry.iter_mut().zip(&other.per_entry) {
            mine.merge(theirs);
        }
        // Same bounds everywhere, so adding cannot fail.
        let _ = self.send_lag.add(&other.send_lag);
        let _ = self.delay_error.add(&other.delay_error);
        for (index, theirs) in other.timeline.into_iter().enumerate() {
            let begins = self.start + Duration::from_secs(index as u64);
            let mine = self.second(begins);
            mine.ok += theirs.ok;
            mine.errors += theirs.errors;
            let _ = mine.corrected.add(&theirs.corrected);
        }
        self.last_sent = self.last_sent.max(other.last_sent);
        if let (Some(mine), Some(theirs)) = (self.samples.as_mut(), other.samples) {
            mine.extend(theirs);
        }
        self.traced.extend(other.traced);
    }

    fn second(&mut self, intended: Instant) -> &mut Second {
        let index = intended.saturating_duration_since(self.start).as_secs() as usize;
        while self.timeline.len() <= index {
            let begins = self.start + Duration::from_secs(self.timeline.len() as u64);
            self.timeline.push(Second {
                warmup: begins < self.measure_from,
                ok: 0,
                errors: 0,
                corrected: new_histogram(),
            });
        }
        &mut self.timeline[index]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_recorders_hold_the_sum_of_their_histograms_and_counts() {
        let start = Instant::now();
        let hops = Hops {
            service: 2,
            state: 1,
        };
        let fill = |recorder: &mut Recorder, from_ms: u64, latency_ms: u64, n: u64| {
            for i in 0..n {
                let at = start + Duration::from_millis(from_ms + i * 10);
                recorder.sent(at, at);
                let done = at + Duration::from_millis(latency_ms);
                recorder.finished(0, at, Some(at), done, Ok(hops));
            }
        };
        let (mut a, mut b) = (
            Recorder::new(1, start, Duration::ZERO, true),
            Recorder::new(1, start, Duration::ZERO, true),
        );
        fill(&mut a, 0, 2, 50);
        fill(&mut b, 1_500, 9, 30);
        let mut expected = a.per_entry[0].corrected.clone();
        expected.add(&b.per_entry[0].corrected).unwrap();
        let b_seconds = b.timeline.len();
        a.merge(b);
        let merged = &a.per_entry[0];
        assert_eq!(merged.ok, 80);
        assert_eq!(merged.corrected, expected);
        assert_eq!(merged.hops[&hops], 80);
        assert_eq!(a.send_lag.len(), 80);
        assert_eq!(a.timeline.len(), b_seconds.max(1));
        assert_eq!(a.timeline.iter().map(|s| s.ok).sum::<u64>(), 80);
        assert_eq!(a.samples.as_ref().map(Vec::len), Some(80));
    }

    #[test]
    fn warmup_requests_reach_only_the_timeline() {
        let start = Instant::now();
        let mut recorder = Recorder::new(1, start, Duration::from_secs(1), false);
        let early = start + Duration::from_millis(500);
        let late = start + Duration::from_millis(1500);
        // A warm-up request sent 40 ms late leaves no trace in the send lag.
        recorder.sent(early, early + Duration::from_millis(40));
        recorder.sent(late, late + Duration::from_micros(7));
        assert_eq!(recorder.send_lag.len(), 1);
        assert_eq!(recorder.send_lag.max(), 7);
        let hops = Hops {
            service: 1,
            state: 0,
        };
        recorder.finished(
            0,
            early,
            Some(early),
            early + Duration::from_millis(2),
            Ok(hops),
        );
        recorder.finished(
            0,
            late,
            Some(late),
            late + Duration::from_millis(3),
            Ok(hops),
        );
        recorder.finished(0, late, None, late, Err(ErrorClass::Timeout));
        assert_eq!(recorder.per_entry[0].ok, 1);
        assert_eq!(recorder.per_entry[0].errors.timeout, 1);
        assert_eq!(recorder.timeline.len(), 2);
        assert!(recorder.timeline[0].warmup && !recorder.timeline[1].warmup);
        assert_eq!(
            (recorder.timeline[1].ok, recorder.timeline[1].errors),
            (1, 1)
        );
    }
}
