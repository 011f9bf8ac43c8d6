//! Traces of sampled requests (`run --trace`): the driver puts a sampled W3C
//! `traceparent` on a share of its requests, every unit continues the trace and exports
//! its spans over OTLP/HTTP (see `grain_runtime::trace`), and this stage
//! - receives them on loopback and writes `traces.jsonl` ([`collector`]), forwarding to
//!   the user's collector under `--otlp`;
//! - adds the driver's span of each traced request, from its intended send time
//!   ([`spans`]);
//! - once a deployment's units have stopped (and sent their last spans), checks each
//!   traced request's spans and splits its latency ([`analysis`]), and sums that up per
//!   deployment for results.json ([`TraceSummary`]).

pub mod analysis;
pub mod collector;
pub mod spans;

use crate::driver::record::{TraceIds, TracedRequest};
use crate::results::{
    TimeBreakdown, TraceProblem, TraceRunInfo, TraceSummary, Waterfall, WaterfallPick,
};
use analysis::Analysed;
pub use collector::{Collector, CollectorError};
use grain_runtime::wire::Hops;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

/// The file beside results.json that holds every span, OTLP JSON.
pub const TRACES_FILE: &str = "traces.jsonl";
/// The default share of requests traced under load.
pub const DEFAULT_SAMPLE: f64 = 0.01;
/// Problems kept per deployment (the count is exact, the list is a sample).
const PROBLEMS_KEPT: usize = 5;

/// What `--trace` asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceOptions {
    /// The share of load requests traced (0 < sample ≤ 1).
    pub sample: f64,
    /// The user's OTLP/HTTP collector, which gets every batch too.
    pub otlp: Option<String>,
    /// Deploy each cut untraced and traced, back to back in every round, to measure what
    /// tracing costs (`--trace-overhead`).
    pub overhead: bool,
}

/// A traced request as the analysis sees it: the driver's record with wall-clock times.
#[derive(Debug, Clone, PartialEq)]
pub struct DriverRecord {
    pub ids: TraceIds,
    pub entrypoint: String,
    pub rate_rps: f64,
    pub intended_ns: u64,
    /// `intended_ns` plus the network model's delay out.
    pub leave_ns: u64,
    pub sent_ns: Option<u64>,
    /// When the reply arrived (`done_ns` less the model's delay back).
    pub arrived_ns: u64,
    pub done_ns: u64,
    pub ok: bool,
    /// The hops its reply reported (successes).
    pub hops: Option<Hops>,
    /// From a load step (not a fault step).
    pub steady: bool,
}

impl DriverRecord {
    /// Its span's events, in time order: the network model's hold on the way out
    /// (`delay.start`/`delay.end`, under a model that adds delay), `sent`, and the hold of
    /// the reply on the way back.
    pub fn events(&self) -> Vec<(&'static str, u64)> {
        let mut events = Vec::new();
        if self.leave_ns > self.intended_ns {
            events.extend([
                ("delay.start", self.intended_ns),
                ("delay.end", self.leave_ns),
            ]);
        }
        if let Some(sent) = self.sent_ns {
            events.push(("sent", sent));
        }
        if self.done_ns > self.arrived_ns {
            events.extend([
                ("delay.start", self.arrived_ns),
                ("delay.end", self.done_ns),
            ]);
        }
        events
    }
}

/// A run's tracing: the receiver, the driver's records waiting for their deployment to
/// stop, and every deployment's analysed requests so far.
pub struct TraceSession {
    collector: Collector,
    sample: f64,
    pending: Mutex<Vec<DriverRecord>>,
    analysed: Mutex<BTreeMap<usize, Vec<Analysed>>>,
}

impl TraceSession {
    /// Starts the receiver, writing `out_dir/traces.jsonl`.
    pub async fn start(options: &TraceOptions, out_dir: &Path) -> Result<Self, CollectorError> {
        let collector =
            Collector::start(&out_dir.join(TRACES_FILE), options.otlp.as_deref()).await?;
        Ok(TraceSession {
            collector,
            sample: options.sample,
            pending: Mutex::new(Vec::new()),
            analysed: Mutex::new(BTreeMap::new()),
        })
    }

    /// Where units send their spans.
    pub fn endpoint(&self) -> &str {
        self.collector.endpoint()
    }

    /// The share of load requests traced.
    pub fn sample(&self) -> f64 {
        self.sample
    }

    /// Keeps a step's traced requests (`entrypoints` by index) until their deployment stops;
    /// `steady`: a load step (a fault step's requests are checked, not split or drawn).
    pub fn record_step(
        &self,
        entrypoints: &[String],
        rate_rps: f64,
        traced: &[TracedRequest],
        steady: bool,
    ) {
        let clock = WallClock::now();
        let records = traced.iter().map(|t| DriverRecord {
            ids: t.ids,
            entrypoint: entrypoints.get(t.entry).cloned().unwrap_or_default(),
            rate_rps,
            intended_ns: clock.ns(t.intended),
            leave_ns: clock.ns(t.leave_at),
            sent_ns: t.sent.map(|s| clock.ns(s)),
            arrived_ns: clock.ns(t.arrived),
            done_ns: clock.ns(t.done),
            ok: t.outcome.is_ok(),
            hops: t.outcome.ok(),
            steady,
        });
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(records);
    }

    /// Once deployment `index` (`resource`: what its spans say about it) has stopped:
    /// waits for its last spans, sends the driver's, analyses every request recorded since,
    /// and returns the deployment's summary over all its rounds so far.
    pub async fn settle(&self, index: usize, resource: &[(String, String)]) -> TraceSummary {
        self.collector
            .settle(Duration::from_millis(400), Duration::from_secs(3))
            .await;
        let pending = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|p| p.into_inner()));
        if !pending.is_empty() {
            self.collector.add(spans::driver_batch(resource, &pending));
        }
        let mut analysed = self.analysed.lock().unwrap_or_else(|p| p.into_inner());
        let mine = analysed.entry(index).or_default();
        for request in &pending {
            let unit_spans = self.collector.take(&request.ids.trace_id);
            mine.push(analysis::analyse(request, unit_spans));
        }
        self.collector.forget();
        summarize(mine)
    }

    /// The run's tracing, for results.json.
    pub fn info(&self) -> TraceRunInfo {
        self.collector.info(self.sample)
    }
}

/// Converts the driver's monotonic instants to wall-clock ns (the units' spans use the
/// wall clock; all run on this host, so one clock).
struct WallClock {
    wall: SystemTime,
    mono: Instant,
}

impl WallClock {
    fn now() -> Self {
        WallClock {
            wall: SystemTime::now(),
            mono: Instant::now(),
        }
    }

    fn ns(&self, at: Instant) -> u64 {
        let wall = match at.checked_duration_since(self.mono) {
            Some(after) => self.wall + after,
            None => self.wall - self.mono.duration_since(at),
        };
        wall.duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
    }
}

/// A deployment's summary from its analysed requests.
pub fn summarize(analysed: &[Analysed]) -> TraceSummary {
    let problems = analysed
        .iter()
        .filter_map(|a| {
            a.problem.as_ref().map(|problem| TraceProblem {
                trace_id: a.trace_id.clone(),
                entrypoint: a.entrypoint.clone(),
                problem: problem.clone(),
            })
        })
        .take(PROBLEMS_KEPT)
        .collect();
    let mut groups: BTreeMap<(String, u64), Vec<&Analysed>> = BTreeMap::new();
    for a in analysed.iter().filter(|a| a.steady) {
        groups
            .entry((a.entrypoint.clone(), a.rate_rps.to_bits()))
            .or_default()
            .push(a);
    }
    let mut breakdown = Vec::new();
    let mut waterfalls = Vec::new();
    for ((entrypoint, rate), group) in groups {
        let rate_rps = f64::from_bits(rate);
        if let Some(b) = breakdown_of(&entrypoint, rate_rps, &group) {
            breakdown.push(b);
        }
        waterfalls.extend(picks(&entrypoint, rate_rps, &group));
    }
    TraceSummary {
        requests: analysed.len() as u64,
        complete: analysed.iter().filter(|a| a.complete).count() as u64,
        hops_matched: analysed
            .iter()
            .filter(|a| a.hops_match == Some(true))
            .count() as u64,
        problems,
        breakdown,
        waterfalls,
    }
}

/// The mean split of the group's complete successes.
fn breakdown_of(entrypoint: &str, rate_rps: f64, group: &[&Analysed]) -> Option<TimeBreakdown> {
    let split: Vec<(f64, analysis::Parts)> = group
        .iter()
        .filter_map(|a| a.parts.map(|p| (a.latency_us, p)))
        .collect();
    if split.is_empty() {
        return None;
    }
    let n = split.len() as f64;
    let mean = |f: fn(&analysis::Parts) -> f64| split.iter().map(|(_, p)| f(p)).sum::<f64>() / n;
    Some(TimeBreakdown {
        entrypoint: entrypoint.to_string(),
        rate_rps,
        requests: split.len() as u64,
        latency_us: split.iter().map(|(l, _)| l).sum::<f64>() / n,
        work_us: mean(|p| p.work),
        handling_us: mean(|p| p.handling),
        network_us: mean(|p| p.network),
        wire_us: mean(|p| p.wire),
        driver_us: mean(|p| p.driver),
    })
}

/// The complete successes at the median and the 99th percentile of latency.
fn picks(entrypoint: &str, rate_rps: f64, group: &[&Analysed]) -> Vec<Waterfall> {
    let mut ok: Vec<&&Analysed> = group.iter().filter(|a| a.parts.is_some()).collect();
    if ok.is_empty() {
        return Vec::new();
    }
    ok.sort_by(|a, b| a.latency_us.total_cmp(&b.latency_us));
    let at = |q: f64| ok[((ok.len() - 1) as f64 * q).round() as usize];
    [(WaterfallPick::Median, 0.5), (WaterfallPick::P99, 0.99)]
        .into_iter()
        .map(|(pick, q)| {
            let a = at(q);
            Waterfall {
                entrypoint: entrypoint.to_string(),
                rate_rps,
                pick,
                trace_id: a.trace_id.clone(),
                latency_us: a.latency_us,
                spans: a.waterfall.clone(),
            }
        })
        .collect()
}
