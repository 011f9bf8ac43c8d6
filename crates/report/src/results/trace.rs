//! What the traces of a run say (results.json `traces` and `architectures[].traces`):
//! how many traced requests formed one tree whose hops match the measured hops, where
//! their time went along the critical path, and the spans of a median and a p99 request
//! for the page's waterfalls.

use serde::{Deserialize, Serialize};

/// The run's tracing: how requests were sampled and where their spans went.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TraceRunInfo {
    /// The share of load requests traced (0..=1).
    pub sample: f64,
    /// The OTLP JSON file beside results.json (one `TracesData` per line).
    pub file: String,
    /// Why the file is incomplete, when writing it failed (the analysis still ran).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_error: Option<String>,
    /// Spans the run's receiver got from the units, and the driver's own.
    pub spans_received: u64,
    /// Batches the receiver could not read (malformed OTLP).
    pub batches_refused: u64,
    /// Where every batch was also sent (`--otlp`), and how that went.
    #[serde(default)]
    pub relay: Option<TraceRelay>,
}

/// Forwarding to the user's collector: counted, never fatal.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TraceRelay {
    pub endpoint: String,
    pub batches_sent: u64,
    /// Batches the collector refused or could not be reached for.
    pub batches_failed: u64,
    /// Batches dropped because the collector fell behind (the queue was full).
    pub batches_dropped: u64,
}

/// One deployment's traced requests, over every round.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TraceSummary {
    /// Traced requests that got a reply.
    pub requests: u64,
    /// … whose spans formed one tree under the driver's span (every parent present, one
    /// root).
    pub complete: u64,
    /// … that were successes and whose service and state hops counted from the client
    /// spans equal the hops the reply reported.
    pub hops_matched: u64,
    /// The first few that did not add up, and why.
    pub problems: Vec<TraceProblem>,
    /// Where the time of the successful complete traces went, per entrypoint and rate.
    pub breakdown: Vec<TimeBreakdown>,
    /// A median and a p99 request per entrypoint and rate, span by span.
    pub waterfalls: Vec<Waterfall>,
}

/// A traced request whose spans do not add up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceProblem {
    pub trace_id: String,
    pub entrypoint: String,
    pub problem: String,
}

/// The mean critical-path split of successful traced requests' end-to-end latency (µs):
/// `work + handling + network + wire + driver` is the mean latency.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TimeBreakdown {
    pub entrypoint: String,
    pub rate_rps: f64,
    pub requests: u64,
    /// From the intended send time to the reply handed back.
    pub latency_us: f64,
    /// The operations' calibrated CPU work.
    pub work_us: f64,
    /// The units' own handling: in a server span, outside the work and the calls.
    pub handling_us: f64,
    /// The network model's delay (held before a call left and after its reply came).
    pub network_us: f64,
    /// In a call but in neither unit: the transport's client and server stacks, the
    /// kernel, queues before a handler runs.
    pub wire_us: f64,
    /// At the driver: between the intended send time and the actual send, and between the
    /// entry unit's reply and the driver's reading of it.
    pub driver_us: f64,
}

/// Which request of a rate a waterfall shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WaterfallPick {
    Median,
    P99,
}

/// One traced request, span by span, times in µs from its intended send time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Waterfall {
    pub entrypoint: String,
    pub rate_rps: f64,
    pub pick: WaterfallPick,
    pub trace_id: String,
    pub latency_us: f64,
    /// Depth-first, a parent before its children, children by start time.
    pub spans: Vec<WaterfallSpan>,
}

/// Which side of a hop a span is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SpanRole {
    /// The driver's span: the whole request.
    Driver,
    /// A unit serving a request.
    Server,
    /// A unit calling another.
    Client,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WaterfallSpan {
    /// The unit (process) it ran in; `driver` for the root.
    pub unit: String,
    pub name: String,
    pub role: SpanRole,
    pub depth: usize,
    pub start_us: f64,
    pub end_us: f64,
    /// Shaded stretches: the work in a server span, the network model's delay in a client
    /// span, the wait before sending in the driver's.
    pub shaded: Vec<[f64; 2]>,
    pub error: bool,
}
