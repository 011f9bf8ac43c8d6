//! The load driver: open-loop steps at a target rate, and the equivalence check.
//!
//! A pacing thread walks the schedule (request `i` is due at `start + i / rate`), waits
//! precisely for each due time and hands the request to the async runtime; a late reply
//! never delays the next send. Latency is recorded twice in HdrHistograms (µs): from the
//! intended send time (coordinated omission corrected) and from the actual send time.
//! Hop counts come from the reply headers, i.e. from what actually crossed the network.

pub mod pacer;
pub mod requests;

use bytes::Bytes;
use grain_runtime::client::{CallError, HttpClient};
use grain_runtime::wire::{encode_request, op_path, Hops};
use hdrhistogram::Histogram;
use indicatif::ProgressBar;
use requests::RequestGen;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Highest latency a histogram records (larger values are clamped): one minute, in µs.
const MAX_TRACKED_US: u64 = 60_000_000;

/// A new latency histogram: 1 µs .. 60 s, 3 significant digits, fixed memory.
pub fn new_histogram() -> Histogram<u64> {
    // Bounds are constants that satisfy HdrHistogram's constraints (low ≥ 1, high ≥ 2·low).
    Histogram::new_with_bounds(1, MAX_TRACKED_US, 3).expect("valid histogram bounds")
}

fn record(histogram: &mut Histogram<u64>, duration: Duration) {
    let micros = (duration.as_micros() as u64).clamp(1, MAX_TRACKED_US);
    histogram.saturating_record(micros);
}

/// Errors by class.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorCounts {
    pub connect: u64,
    pub timeout: u64,
    /// HTTP status → count.
    pub status: BTreeMap<u16, u64>,
    /// Other transport failures (reset connections, malformed replies).
    pub other: u64,
    /// Requests not sent because the in-flight cap was reached.
    pub in_flight_cap: u64,
}

impl ErrorCounts {
    pub fn total(&self) -> u64 {
        self.connect
            + self.timeout
            + self.status.values().sum::<u64>()
            + self.other
            + self.in_flight_cap
    }

    fn count(&mut self, error: &RequestError) {
        match error {
            RequestError::Call(CallError::Connect { .. }) => self.connect += 1,
            RequestError::Call(CallError::Timeout { .. }) => self.timeout += 1,
            RequestError::Call(CallError::Status { status, .. }) => {
                *self.status.entry(*status).or_default() += 1
            }
            RequestError::Call(CallError::Io { .. }) => self.other += 1,
            RequestError::InFlightCap => self.in_flight_cap += 1,
        }
    }

    fn merge(&mut self, other: &ErrorCounts) {
        self.connect += other.connect;
        self.timeout += other.timeout;
        for (status, count) in &other.status {
            *self.status.entry(*status).or_default() += count;
        }
        self.other += other.other;
        self.in_flight_cap += other.in_flight_cap;
    }
}

#[derive(Debug)]
enum RequestError {
    Call(CallError),
    InFlightCap,
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
    fn new() -> Self {
        EntryMeasurement {
            ok: 0,
            errors: ErrorCounts::default(),
            corrected: new_histogram(),
            uncorrected: new_histogram(),
            hops: BTreeMap::new(),
        }
    }

    fn merge(&mut self, other: &EntryMeasurement) {
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

/// What one open-loop step measured.
#[derive(Debug, Clone)]
pub struct StepMeasurement {
    pub target_rps: u32,
    pub warmup: Duration,
    pub duration: Duration,
    /// Requests scheduled in the measured window.
    pub scheduled: u64,
    /// Successful replies per second over the measured window.
    pub achieved_rps: f64,
    /// Actual − intended send time of every request (µs).
    pub send_lag: Histogram<u64>,
    /// Per entrypoint, in scenario order.
    pub per_entry: Vec<EntryMeasurement>,
    /// All entrypoints together.
    pub overall: EntryMeasurement,
}

/// An entrypoint as the driver sees it.
#[derive(Debug, Clone)]
pub struct Target {
    pub op: String,
    pub addr: String,
    pub request_bytes: usize,
}

/// How one step runs.
#[derive(Debug, Clone)]
pub struct StepConfig {
    pub rate: u32,
    pub warmup: Duration,
    pub duration: Duration,
    pub timeout: Duration,
    /// Most requests in flight at once; reaching it is counted as an error, never silent.
    pub in_flight_cap: usize,
}

struct Completion {
    entry: usize,
    intended: Instant,
    sent: Instant,
    done: Instant,
    outcome: Result<Hops, RequestError>,
}

/// Runs one open-loop step against `targets` (indexed like the scenario's entrypoints).
pub async fn run_step(
    targets: &[Target],
    generator: RequestGen,
    config: &StepConfig,
    progress: Option<ProgressBar>,
    cancel: &CancellationToken,
) -> StepMeasurement {
    let client = HttpClient::new(config.timeout);
    let (tx, rx) = mpsc::unbounded_channel();
    let start = Instant::now() + Duration::from_millis(5);
    let measure_from = start + config.warmup;
    let total =
        ((config.warmup + config.duration).as_secs_f64() * f64::from(config.rate)).round() as u64;
    let pacer = {
        let targets = targets.to_vec();
        let config = config.clone();
        let handle = tokio::runtime::Handle::current();
        let cancel = cancel.clone();
        std::thread::Builder::new()
            .name("grainbench-pacer".into())
            .spawn(move || {
                pace(
                    handle, client, targets, generator, config, start, total, tx, progress, cancel,
                )
            })
    };
    let collected = collect(rx, targets.len(), measure_from).await;
    // The collector only finishes once the pacer dropped its sender, i.e. returned.
    match pacer.map(|thread| thread.join()) {
        Ok(Ok(())) => {}
        Ok(Err(_)) => tracing::error!("the pacing thread panicked; the step is incomplete"),
        Err(error) => tracing::error!(%error, "cannot start the pacing thread; nothing was sent"),
    }
    let scheduled = total - (config.warmup.as_secs_f64() * f64::from(config.rate)).round() as u64;
    let span = config
        .duration
        .max(collected.last_sent.saturating_duration_since(measure_from));
    let mut overall = EntryMeasurement::new();
    for entry in &collected.per_entry {
        overall.merge(entry);
    }
    StepMeasurement {
        target_rps: config.rate,
        warmup: config.warmup,
        duration: config.duration,
        scheduled,
        achieved_rps: overall.ok as f64 / span.as_secs_f64(),
        send_lag: collected.send_lag,
        per_entry: collected.per_entry,
        overall,
    }
}

#[allow(clippy::too_many_arguments)]
fn pace(
    handle: tokio::runtime::Handle,
    client: HttpClient,
    targets: Vec<Target>,
    mut generator: RequestGen,
    config: StepConfig,
    start: Instant,
    total: u64,
    tx: mpsc::UnboundedSender<Completion>,
    progress: Option<ProgressBar>,
    cancel: CancellationToken,
) {
    pacer::tighten_timer_slack();
    let interval = Duration::from_secs_f64(1.0 / f64::from(config.rate));
    let in_flight = Arc::new(AtomicUsize::new(0));
    let targets = Arc::new(targets);
    for i in 0..total {
        if cancel.is_cancelled() {
            break;
        }
        let request = generator.next_request();
        let target = &targets[request.entry];
        let body = Bytes::from(encode_request(&request.params, target.request_bytes));
        let intended = start + interval.mul_f64(i as f64);
        pacer::wait_until(intended);
        if in_flight.load(Ordering::Relaxed) >= config.in_flight_cap {
            let now = Instant::now();
            let _ = tx.send(Completion {
                entry: request.entry,
                intended,
                sent: now,
                done: now,
                outcome: Err(RequestError::InFlightCap),
            });
            continue;
        }
        in_flight.fetch_add(1, Ordering::Relaxed);
        let (client, targets, tx, in_flight) = (
            client.clone(),
            targets.clone(),
            tx.clone(),
            in_flight.clone(),
        );
        handle.spawn(async move {
            let target = &targets[request.entry];
            let sent = Instant::now();
            let outcome = client
                .post(&target.addr, &op_path(&target.op), body)
                .await
                .map(|reply| {
                    let mut hops = reply.downstream_hops;
                    hops.service += 1; // the driver's own request
                    hops
                })
                .map_err(RequestError::Call);
            let done = Instant::now();
            in_flight.fetch_sub(1, Ordering::Relaxed);
            let _ = tx.send(Completion {
                entry: request.entry,
                intended,
                sent,
                done,
                outcome,
            });
        });
        if i % 64 == 0 {
            if let Some(bar) = &progress {
                bar.set_position(start.elapsed().as_millis() as u64);
            }
        }
    }
}

struct Collected {
    per_entry: Vec<EntryMeasurement>,
    send_lag: Histogram<u64>,
    last_sent: Instant,
}

async fn collect(
    mut rx: mpsc::UnboundedReceiver<Completion>,
    entries: usize,
    measure_from: Instant,
) -> Collected {
    let mut per_entry: Vec<EntryMeasurement> =
        (0..entries).map(|_| EntryMeasurement::new()).collect();
    let mut send_lag = new_histogram();
    let mut last_sent = measure_from;
    while let Some(completion) = rx.recv().await {
        record(
            &mut send_lag,
            completion
                .sent
                .saturating_duration_since(completion.intended),
        );
        if completion.intended < measure_from {
            continue; // warm-up
        }
        last_sent = last_sent.max(completion.sent);
        let entry = &mut per_entry[completion.entry];
        match completion.outcome {
            Ok(hops) => {
                entry.ok += 1;
                record(&mut entry.corrected, completion.done - completion.intended);
                record(&mut entry.uncorrected, completion.done - completion.sent);
                *entry.hops.entry(hops).or_default() += 1;
            }
            Err(error) => entry.errors.count(&error),
        }
    }
    Collected {
        per_entry,
        send_lag,
        last_sent,
    }
}

/// One request of the equivalence check and the digest an architecture answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DigestRecord {
    pub entrypoint: String,
    pub params: BTreeMap<String, u64>,
    pub digest: String,
}

/// Why the equivalence sequence could not be sent.
#[derive(Debug, thiserror::Error)]
#[error("equivalence request {index} ({entrypoint} {params:?}) failed: {source}")]
pub struct EquivalenceError {
    pub index: usize,
    pub entrypoint: String,
    pub params: BTreeMap<String, u64>,
    pub source: CallError,
}

/// Sends `count` requests of the seeded stream one at a time and returns their digests.
pub async fn equivalence_digests(
    targets: &[Target],
    mut generator: RequestGen,
    count: usize,
    timeout: Duration,
) -> Result<Vec<DigestRecord>, EquivalenceError> {
    let client = HttpClient::new(timeout);
    let mut records = Vec::with_capacity(count);
    for index in 0..count {
        let request = generator.next_request();
        let target = &targets[request.entry];
        let body = Bytes::from(encode_request(&request.params, target.request_bytes));
        let reply = client
            .post(&target.addr, &op_path(&target.op), body)
            .await
            .map_err(|source| EquivalenceError {
                index,
                entrypoint: target.op.clone(),
                params: request.params.clone(),
                source,
            })?;
        records.push(DigestRecord {
            entrypoint: target.op.clone(),
            params: request.params,
            digest: reply.digest.unwrap_or_default(),
        });
    }
    Ok(records)
}
