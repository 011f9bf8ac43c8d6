//! Step-level results: one load step's latency, hops, errors, generator health and the
//! units' usage.

use super::InjectedDelayError;
use grain_runtime::wire::Hops;
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A figure with its 95 % confidence interval over `rounds` rounds; `low` and `high`
/// are absent with fewer than two rounds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    /// The mean over rounds.
    pub point: f64,
    pub low: Option<f64>,
    pub high: Option<f64>,
    pub rounds: usize,
}

impl Estimate {
    /// The interval, when there is one.
    pub fn interval(&self) -> Option<(f64, f64)> {
        self.low.zip(self.high)
    }

    /// True when the interval holds `value` (or there is no interval).
    pub fn contains(&self, value: f64) -> bool {
        self.interval()
            .is_none_or(|(low, high)| low <= value && value <= high)
    }
}

/// One rate of one architecture over every round that held it validly: each figure with
/// its 95 % interval over the rounds (see `stats`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RateSummary {
    pub target_rps: u32,
    /// Rounds run at this rate, and the valid ones the figures come from.
    pub rounds_run: usize,
    pub rounds_valid: usize,
    pub p50_us: Estimate,
    pub p99_us: Estimate,
    /// Units' CPU per completed request, µs (absent when not measured).
    pub units_cpu_us_per_request: Option<Estimate>,
    pub entrypoints: Vec<EntrySummary>,
    /// Why this rate's figures are less trustworthy than the run's others, if they are.
    #[serde(default)]
    pub noise_flags: Vec<String>,
}

/// One entrypoint at one rate, over the valid rounds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EntrySummary {
    pub entrypoint: String,
    pub p50_us: Estimate,
    pub p99_us: Estimate,
    pub hops: Estimate,
}

/// What else the machine did during a step, from the kernel (`/proc/stat`, `/proc/<pid>`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StepNoise {
    /// CPU time stolen by the hypervisor, as a share of the machine's CPU time.
    pub steal_share: f64,
    /// CPU time spent by processes other than grainbench's (harness and units), in cores.
    pub other_cores: f64,
}

/// How a step's load was shaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StepMode {
    /// Requests sent at a scheduled rate whatever the replies do.
    Open,
    /// A fixed number of connections, each sending as soon as its reply arrives.
    Closed,
}

/// Errors by class.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorCounts {
    pub connect: u64,
    /// Requests the load generator itself could not make (it ran out of file descriptors
    /// or ports): never counted against the architecture, and the step is invalid.
    #[serde(default)]
    pub generator: u64,
    pub timeout: u64,
    /// HTTP status → count.
    pub status: BTreeMap<u16, u64>,
    /// Other transport failures (reset connections, malformed replies).
    pub other: u64,
}

impl ErrorCounts {
    pub fn total(&self) -> u64 {
        self.connect
            + self.generator
            + self.timeout
            + self.status.values().sum::<u64>()
            + self.other
    }

    pub fn merge(&mut self, other: &ErrorCounts) {
        self.connect += other.connect;
        self.generator += other.generator;
        self.timeout += other.timeout;
        for (status, count) in &other.status {
            *self.status.entry(*status).or_default() += count;
        }
        self.other += other.other;
    }
}

/// Per-unit CPU used and peak RSS seen over a sampling period.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UnitsUsage {
    /// Unit → CPU time (ms) spent during the period.
    pub cpu_ms: BTreeMap<String, f64>,
    pub cpu_ms_total: f64,
    /// Of `cpu_ms_total`, the time in the kernel (system time; absent in older files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_cpu_ms_total: Option<f64>,
    /// Unit → its time in the kernel (ms; schema 7).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub system_cpu_ms: BTreeMap<String, f64>,
    /// Unit → highest RSS sampled (bytes).
    pub peak_rss_bytes: BTreeMap<String, u64>,
    pub peak_rss_bytes_total: u64,
}

/// Latency percentiles in µs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    pub count: u64,
    pub mean: f64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
}

impl Percentiles {
    pub fn of(histogram: &Histogram<u64>) -> Self {
        if histogram.is_empty() {
            return Percentiles::default();
        }
        Percentiles {
            count: histogram.len(),
            mean: (histogram.mean() * 10.0).round() / 10.0,
            p50: histogram.value_at_quantile(0.50),
            p90: histogram.value_at_quantile(0.90),
            p99: histogram.value_at_quantile(0.99),
            p999: histogram.value_at_quantile(0.999),
            max: histogram.max(),
        }
    }
}

/// Hops measured per request, from reply headers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HopSummary {
    pub mean_service: f64,
    pub mean_state: f64,
    pub mean_total: f64,
    /// Every distinct hop count seen and how many requests made it.
    pub distribution: Vec<HopCount>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HopCount {
    pub service: u32,
    pub state: u32,
    pub requests: u64,
}

impl HopSummary {
    pub fn of(hops: &BTreeMap<Hops, u64>) -> Self {
        let requests: u64 = hops.values().sum();
        if requests == 0 {
            return HopSummary::default();
        }
        let mean = |f: fn(&Hops) -> u32| {
            let sum: u64 = hops.iter().map(|(h, n)| u64::from(f(h)) * n).sum();
            sum as f64 / requests as f64
        };
        HopSummary {
            mean_service: mean(|h| h.service),
            mean_state: mean(|h| h.state),
            mean_total: mean(Hops::total),
            distribution: hops
                .iter()
                .map(|(h, &requests)| HopCount {
                    service: h.service,
                    state: h.state,
                    requests,
                })
                .collect(),
        }
    }

    /// True when every request made exactly `expected` hops.
    pub fn all_equal(&self, expected: Hops) -> bool {
        !self.distribution.is_empty()
            && self
                .distribution
                .iter()
                .all(|c| c.service == expected.service && c.state == expected.state)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EntryResult {
    pub entrypoint: String,
    pub ok: u64,
    pub errors: ErrorCounts,
    pub latency_us: Percentiles,
    pub latency_uncorrected_us: Percentiles,
    pub histograms: HistogramPair,
    pub hops: HopSummary,
    pub static_hops: Hops,
    /// Every measured request made exactly the plan's static hop count.
    pub hops_match_static: bool,
}

/// Latency histograms in the standard HdrHistogram V2 compressed form (deflate, base64),
/// readable by other HdrHistogram tools and mergeable across runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistogramPair {
    pub corrected: String,
    pub uncorrected: String,
}

/// One second of a step (by intended send time).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SecondResult {
    pub second: usize,
    pub warmup: bool,
    pub ok: u64,
    pub errors: u64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
}

/// How well the load generator kept to its schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GeneratorHealth {
    /// Actual − intended send time.
    pub send_lag_us: Percentiles,
    pub send_lag_histogram: String,
    /// CPU time of the driver's load thread during the step (never mixed with the units').
    pub driver_cpu_ms: f64,
    pub driver_cpu_us_per_request: f64,
    pub requests_sent: u64,
    pub in_flight_cap_hits: u64,
    pub max_in_flight: usize,
    pub connections_opened: u64,
    /// Scheduling policy of the load thread (`SCHED_FIFO` when permitted).
    #[serde(default)]
    pub scheduling: String,
    /// Share of the driver's CPU time spent busy-polling before send times (0–1).
    #[serde(default)]
    pub spin_share: f64,
    /// The spin window before each send at the end of the step, µs, learned from how late
    /// the timer woke the load loop.
    #[serde(default)]
    pub spin_window_us: f64,
    /// Requests that waited for a connection to be opened (connections open at a bounded
    /// rate, so a step never opens thousands at once).
    #[serde(default)]
    pub connection_waits: u64,
    /// Connections whose handshake took over 100 ms (a lost SYN); each one's request is a
    /// generator error and the step is invalid.
    #[serde(default)]
    pub connect_stalls: u64,
    /// How much the machine's TCP `ListenOverflows` and `TCPSynRetrans` counters rose during
    /// the step (whole machine; absent where `/proc/net/netstat` is not readable).
    #[serde(default)]
    pub listen_overflows: Option<u64>,
    #[serde(default)]
    pub syn_retransmits: Option<u64>,
    /// Load threads the step ran on (their figures merged: CPU summed, histograms added).
    #[serde(default = "one_thread")]
    pub threads: usize,
    /// Of `driver_cpu_ms`, the time spent in rustls's own work (key shares, encryption,
    /// decryption) when the units speak TLS; the socket I/O it would do anyway is not in it.
    #[serde(default)]
    pub driver_tls_ms: f64,
    /// TLS handshakes the driver completed.
    #[serde(default)]
    pub driver_handshakes: u64,
    /// Connections opened on the whole machine during the step (the kernel's
    /// `Tcp: ActiveOpens`: the driver's and every unit's; under TLS each is a handshake).
    #[serde(default)]
    pub connections_opened_machine: Option<u64>,
}

fn one_thread() -> usize {
    1
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepResult {
    /// The round this step belongs to (0-based; every round runs every architecture).
    #[serde(default)]
    pub round: usize,
    pub mode: StepMode,
    /// Open loop: the scheduled rate; closed loop: 0.
    pub target_rps: u32,
    /// Closed loop: the number of connections.
    pub connections: Option<usize>,
    pub achieved_rps: f64,
    pub warmup_s: f64,
    pub duration_s: f64,
    /// Requests scheduled in the measured window.
    pub scheduled: u64,
    pub ok: u64,
    pub errors: ErrorCounts,
    pub error_total: u64,
    /// From intended send time (coordinated omission corrected).
    pub latency_us: Percentiles,
    /// From actual send time.
    pub latency_uncorrected_us: Percentiles,
    pub histograms: HistogramPair,
    pub generator: GeneratorHealth,
    pub hops: HopSummary,
    pub entrypoints: Vec<EntryResult>,
    pub timeline: Vec<SecondResult>,
    /// CPU time and peak RSS of the units during the step (never the driver's).
    pub units: Option<UnitsUsage>,
    /// Units' CPU time per completed request (µs).
    pub units_cpu_us_per_request: Option<f64>,
    /// Of it, the units' time in the kernel (system time) per completed request (µs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub units_system_cpu_us_per_request: Option<f64>,
    /// Of it, the units' body codec (encoding and decoding operation and state bodies),
    /// per completed request (µs): one call in 8 timed on the thread's CPU clock, scaled
    /// to all of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub units_codec_cpu_us_per_request: Option<f64>,
    /// Under a mesh: the sidecar proxies' CPU time and peak RSS during the step, apart from
    /// the units' (from /proc, like theirs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sidecars: Option<UnitsUsage>,
    /// The sidecars' CPU time per completed request, all of them (µs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sidecars_cpu_us_per_request: Option<f64>,
    /// Retries the units made for the step's requests (warm-up included), as their replies
    /// reported them: each caller's retries and its callees', summed up the call tree.
    #[serde(default)]
    pub unit_retries: u64,
    /// How precisely the network model's delays were applied (absent on loopback).
    #[serde(default)]
    pub injected_delay_error: Option<InjectedDelayError>,
    /// What else the machine did meanwhile (absent when it could not be read).
    #[serde(default)]
    pub noise: Option<StepNoise>,
    /// False when the generator fell behind its schedule; then `invalid_reason` says how.
    pub valid: bool,
    pub invalid_reason: Option<String>,
}

/// `figure`, when the tick rounding of `usage`'s processes is under [`MAX_CPU_ROUNDING`]
/// of their CPU (see [`StepResult::resolved_units_cpu_us_per_request`]).
fn resolved(usage: &UnitsUsage, figure: f64) -> Option<f64> {
    (rounding_share(usage) <= MAX_CPU_ROUNDING).then_some(figure)
}

/// The RMS tick rounding of `usage`'s CPU over its processes (√(n/6) ticks), as a share of
/// that CPU (infinite for none).
fn rounding_share(usage: &UnitsUsage) -> f64 {
    let processes = usage.cpu_ms.len().max(1) as f64;
    let rounding_ms = (processes / 6.0).sqrt() * CPU_TICK_MS;
    if usage.cpu_ms_total > 0.0 {
        rounding_ms / usage.cpu_ms_total
    } else {
        f64::INFINITY
    }
}

/// What /proc counts CPU time in: whole ticks of USER_HZ, 100 per second on Linux.
pub const CPU_TICK_MS: f64 = 10.0;

/// The largest share of a step's units' CPU its tick rounding may be (RMS) for the figure
/// to be compared with another run's.
pub const MAX_CPU_ROUNDING: f64 = 0.05;

impl StepResult {
    /// The units' CPU per request, when /proc's tick rounding is small beside it. Each
    /// process's CPU over the step is the difference of two tick counts, off by up to a
    /// tick (triangular, RMS tick/√6); over n processes, √(n/6) ticks. Where that is more
    /// than [`MAX_CPU_ROUNDING`] of the units' CPU (a short step of a light cut), rounds
    /// can agree to the tick by chance and a change test would see no spread at all: such
    /// a figure is withheld from comparisons (`None`).
    pub fn resolved_units_cpu_us_per_request(&self) -> Option<f64> {
        resolved(self.units.as_ref()?, self.units_cpu_us_per_request?)
    }

    /// How much /proc's 10 ms ticks round the units' CPU of this step (RMS, as a share of
    /// it); `None` without a reading.
    pub fn units_cpu_rounding(&self) -> Option<f64> {
        self.units.as_ref().map(rounding_share)
    }

    /// The sidecars' CPU per request under the same rule.
    pub fn resolved_sidecars_cpu_us_per_request(&self) -> Option<f64> {
        resolved(self.sidecars.as_ref()?, self.sidecars_cpu_us_per_request?)
    }

    /// True for a valid open-loop step at `rate`.
    pub fn is_valid_open_at(&self, rate: u32) -> bool {
        self.is_valid_open() && self.target_rps == rate
    }

    /// True for a valid open-loop step.
    pub fn is_valid_open(&self) -> bool {
        self.mode == StepMode::Open && self.valid
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An A/A check of checkout --quick flagged "monolith unit CPU per request at 100
    /// req/s: -20.0 % [-20.0, -20.0]": 300 requests of a light unit are 1 or 2 ticks of
    /// /proc's 10 ms, so every round of each run read the same value and the change test
    /// saw no spread. Such a step's figure is withheld; a step with enough CPU keeps it.
    #[test]
    fn units_cpu_within_a_few_ticks_is_withheld_from_comparisons() {
        let mut step: StepResult =
            serde_json::from_str(include_str!("../../../../tests/fixtures/step.json")).unwrap();
        let usage = |ms: f64, processes: usize| UnitsUsage {
            cpu_ms: (0..processes)
                .map(|i| (format!("u{i}"), ms / processes as f64))
                .collect(),
            cpu_ms_total: ms,
            ..UnitsUsage::default()
        };
        step.units_cpu_us_per_request = Some(50.0);
        step.units = Some(usage(15.0, 1));
        assert_eq!(step.resolved_units_cpu_us_per_request(), None);
        step.units = Some(usage(600.0, 1));
        assert_eq!(step.resolved_units_cpu_us_per_request(), Some(50.0));
        // Many processes round independently: 25 of them need more CPU than one.
        step.units = Some(usage(300.0, 25));
        assert_eq!(step.resolved_units_cpu_us_per_request(), None);
        step.units = Some(usage(1_500.0, 25));
        assert_eq!(step.resolved_units_cpu_us_per_request(), Some(50.0));
    }

    #[test]
    fn percentiles_of_a_histogram() {
        let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
        for v in 1..=1000u64 {
            h.record(v).unwrap();
        }
        let p = Percentiles::of(&h);
        assert_eq!(p.count, 1000);
        assert!((495..=505).contains(&p.p50), "{p:?}");
        assert!((985..=995).contains(&p.p99), "{p:?}");
        let empty = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
        assert_eq!(Percentiles::of(&empty), Percentiles::default());
    }

    #[test]
    fn hop_summary_checks_every_request() {
        let three_two = Hops {
            service: 3,
            state: 2,
        };
        let mut hops = BTreeMap::from([(three_two, 10)]);
        assert!(HopSummary::of(&hops).all_equal(three_two));
        hops.insert(
            Hops {
                service: 2,
                state: 2,
            },
            1,
        );
        assert!(!HopSummary::of(&hops).all_equal(three_two));
        assert!(!HopSummary::default().all_equal(Hops::default()));
    }

    #[test]
    fn modes_keep_their_json_names() {
        assert_eq!(serde_json::to_string(&StepMode::Open).unwrap(), "\"open\"");
        assert_eq!(
            serde_json::to_string(&StepMode::Closed).unwrap(),
            "\"closed\""
        );
    }
}
