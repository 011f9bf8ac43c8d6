//! The results model written to `results.json` (versioned, see `SCHEMA_VERSION`) and how
//! driver measurements become it.

use crate::driver::engine::Schedule;
use crate::driver::{DigestRecord, EntryMeasurement, ErrorCounts, Second, StepMeasurement};
use crate::plan::{Architecture, Deployment};
pub use grain_runtime::histogram::{decode as decode_histogram, encode as encode_histogram};
use grain_runtime::network::NetworkModel;
use grain_runtime::wire::Hops;
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Version of the results.json schema; bumped on any incompatible change.
pub const SCHEMA_VERSION: u32 = 1;

/// A step is invalid when fewer than this share of the target rate was achieved.
pub const MIN_ACHIEVED_SHARE: f64 = 0.95;
/// A step is invalid when the generator's send lag p99 exceeds this (µs).
pub const MAX_SEND_LAG_P99_US: u64 = 1_000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunResults {
    pub schema_version: u32,
    pub meta: RunMeta,
    pub scenario: ScenarioInfo,
    pub architectures: Vec<ArchitectureResult>,
    pub equivalence: Option<EquivalenceSummary>,
    /// The network model every hop crossed, and how a bare hop measured with and without it.
    #[serde(default)]
    pub network: NetworkInfo,
    /// False when the run stopped early (error or interrupt); `errors` says why.
    pub complete: bool,
    pub errors: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunMeta {
    pub grainbench_version: String,
    pub git_commit: Option<String>,
    pub host_cpus: usize,
    /// RFC 3339, UTC.
    pub started_at: String,
    pub seed: u64,
    pub quick: bool,
    /// CPU-work calibration handed to every unit (busy-loop iterations per µs).
    pub work_iterations_per_us: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScenarioInfo {
    pub name: String,
    pub description: String,
    pub file: PathBuf,
    /// SHA-256 of the scenario file, hex.
    pub sha256: String,
    /// The scenario file itself, so the results say exactly what was measured.
    pub text: String,
}

/// The network model of a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NetworkInfo {
    pub model: NetworkModel,
    /// A bare hop's round trip measured without and with the model.
    pub hop_calibration: Option<HopCalibration>,
    /// Why the hop calibration is missing, when it is.
    pub hop_calibration_error: Option<String>,
}

/// One bare hop (driver → a unit that does nothing → driver), measured open loop on raw
/// loopback and then under the model, in the same run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HopCalibration {
    pub rate_rps: u32,
    pub duration_s: f64,
    /// Round trip on raw loopback, µs.
    pub loopback_us: Percentiles,
    /// Round trip under the model, µs (absent when the model adds nothing).
    pub modelled_us: Option<Percentiles>,
    /// What the model should add to one round trip: two mean one-way delays, µs.
    pub expected_added_us: f64,
    /// What it added at the median (modelled p50 − loopback p50), µs.
    pub measured_added_p50_us: Option<f64>,
    /// How late the driver released the modelled hop's delayed messages.
    pub delay_error: Option<DelayErrorSummary>,
}

/// Errors of injected delays (actual − intended wait, never negative), in µs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DelayErrorSummary {
    /// Delays applied.
    pub count: u64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
    /// The errors in ns, HdrHistogram V2 (deflate, base64).
    pub histogram: String,
}

impl DelayErrorSummary {
    /// Summarizes a histogram of errors in ns; `None` when no delay was applied.
    pub fn of(errors_ns: &Histogram<u64>) -> Option<Self> {
        if errors_ns.is_empty() {
            return None;
        }
        let us = |ns: u64| (ns as f64 / 100.0).round() / 10.0;
        Some(DelayErrorSummary {
            count: errors_ns.len(),
            p50_us: us(errors_ns.value_at_quantile(0.50)),
            p99_us: us(errors_ns.value_at_quantile(0.99)),
            p999_us: us(errors_ns.value_at_quantile(0.999)),
            max_us: us(errors_ns.max()),
            histogram: encode_histogram(errors_ns),
        })
    }
}

/// How precisely a step's modelled network delays were applied.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InjectedDelayError {
    /// The driver's delays (its requests out, the replies back).
    pub driver: Option<DelayErrorSummary>,
    /// The units' delays (every request between units, both ways), all units together.
    pub units: Option<DelayErrorSummary>,
    /// Why the units' errors are missing, when they are.
    pub units_error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnitInfo {
    pub name: String,
    /// `service` or `state`.
    pub role: String,
    pub hosts: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArchitectureResult {
    pub architecture: Architecture,
    pub units: Vec<UnitInfo>,
    pub unit_count: usize,
    pub state_unit_count: usize,
    /// Spawn of the first unit → every unit ready, ms (absent if the launch failed).
    pub cold_start_ms: Option<f64>,
    /// Entrypoint → hops per request computed from the plan.
    pub static_hops: BTreeMap<String, Hops>,
    /// Entrypoint → round trips on its longest sequential chain of hops (from the plan):
    /// what a per-hop network delay adds to its latency.
    #[serde(default)]
    pub critical_path_hops: BTreeMap<String, u32>,
    pub steps: Vec<StepResult>,
    /// Where a rate sweep (`--rates auto`) found the architecture saturating.
    pub knee: Option<Knee>,
    /// What deploying this architecture costs (absent if it never deployed).
    pub deploy: Option<DeployCost>,
    /// Why this architecture's run stopped early, if it did.
    pub error: Option<String>,
}

impl ArchitectureResult {
    /// The result of a deployment before anything ran.
    pub fn planned(plan: &Deployment) -> Self {
        ArchitectureResult {
            architecture: plan.architecture,
            units: plan
                .units
                .iter()
                .map(|unit| UnitInfo {
                    name: unit.name.clone(),
                    role: if unit.is_state() { "state" } else { "service" }.to_string(),
                    hosts: unit.hosts.clone(),
                })
                .collect(),
            unit_count: plan.units.len(),
            state_unit_count: plan.units.iter().filter(|u| u.is_state()).count(),
            cold_start_ms: None,
            static_hops: plan.static_hops.clone(),
            critical_path_hops: plan.critical_path_hops.clone(),
            steps: Vec::new(),
            knee: None,
            deploy: None,
            error: None,
        }
    }
}

/// Deploy cost of one architecture, from the kernel's own accounting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeployCost {
    pub service_units: usize,
    pub state_units: usize,
    /// Business endpoints over all units (operations; get and put of state units).
    pub endpoints: usize,
    /// What each unit ships: the `grainbench` binary.
    pub artifact_bytes_per_unit: u64,
    /// What the deployment ships if every unit is packaged on its own.
    pub artifact_bytes_total: u64,
    pub cold_start: crate::cost::ColdStart,
    /// Unit → RSS right after readiness, before any request (bytes).
    pub idle_rss_bytes: BTreeMap<String, u64>,
    pub idle_rss_bytes_total: u64,
    /// Operation → units that must restart when its code changes.
    pub blast_radius: BTreeMap<String, Vec<String>>,
    pub redeploy: Option<RedeployResult>,
}

/// A live redeploy of the units running one operation, under steady load.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RedeployResult {
    pub operation: String,
    pub units: Vec<String>,
    pub rate_rps: u32,
    /// Seconds into the step's measured window when SIGTERM was sent.
    pub at_s: f64,
    /// SIGTERM → old processes drained and exited.
    pub drained_ms: f64,
    /// SIGTERM → replacements ready and routed.
    pub ready_ms: f64,
    /// Requests due from SIGTERM until one second after the replacements were ready.
    pub window_requests: u64,
    pub window_failed: u64,
    /// Corrected latency of requests due before the redeploy, and during its window.
    pub latency_before_us: Percentiles,
    pub latency_during_us: Percentiles,
    /// Old unit processes still alive afterwards (should be 0).
    pub old_processes_left: usize,
    /// How each old process ended (`exit code 0` after a graceful drain).
    pub old_endings: Vec<String>,
    /// The step the redeploy ran in.
    pub step: Box<StepResult>,
}

/// The saturation point of a rate sweep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Knee {
    /// The highest rate that held (none if even the first step saturated).
    pub last_good_rps: Option<u32>,
    /// The rate at which it saturated.
    pub saturated_at_rps: u32,
    pub reason: String,
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
    fn of(hops: &BTreeMap<Hops, u64>) -> Self {
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
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepResult {
    /// `open` (scheduled rate) or `closed` (fixed connections, as fast as possible).
    pub mode: String,
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
    pub units: Option<crate::cost::UnitsUsage>,
    /// Units' CPU time per completed request (µs).
    pub units_cpu_us_per_request: Option<f64>,
    /// How precisely the network model's delays were applied (absent on loopback).
    #[serde(default)]
    pub injected_delay_error: Option<InjectedDelayError>,
    /// False when the generator fell behind its schedule; then `invalid_reason` says how.
    pub valid: bool,
    pub invalid_reason: Option<String>,
}

impl StepResult {
    pub fn from_measurement(
        m: &StepMeasurement,
        entrypoints: &[String],
        static_hops: &BTreeMap<String, Hops>,
    ) -> Self {
        let entries = entrypoints
            .iter()
            .zip(&m.per_entry)
            .map(|(op, e)| entry_result(op, e, static_hops.get(op).copied().unwrap_or_default()))
            .collect();
        let send_lag = Percentiles::of(&m.send_lag);
        let (mode, target_rps, connections) = match m.schedule {
            Schedule::OpenLoop { rate } => ("open", rate, None),
            Schedule::ClosedLoop { connections } => ("closed", 0, Some(connections)),
        };
        let invalid_reason = match m.schedule {
            Schedule::OpenLoop { rate } => invalid_reason(rate, m.achieved_rps, &send_lag),
            Schedule::ClosedLoop { .. } => None,
        };
        let cpu_ms = m.engine.cpu.as_secs_f64() * 1e3;
        StepResult {
            mode: mode.to_string(),
            target_rps,
            connections,
            achieved_rps: (m.achieved_rps * 10.0).round() / 10.0,
            warmup_s: m.warmup.as_secs_f64(),
            duration_s: m.duration.as_secs_f64(),
            scheduled: m.scheduled,
            ok: m.overall.ok,
            error_total: m.overall.errors.total(),
            errors: m.overall.errors.clone(),
            latency_us: Percentiles::of(&m.overall.corrected),
            latency_uncorrected_us: Percentiles::of(&m.overall.uncorrected),
            histograms: HistogramPair::of(&m.overall),
            generator: GeneratorHealth {
                send_lag_us: send_lag,
                send_lag_histogram: encode_histogram(&m.send_lag),
                driver_cpu_ms: (cpu_ms * 100.0).round() / 100.0,
                driver_cpu_us_per_request: if m.engine.sent == 0 {
                    0.0
                } else {
                    ((cpu_ms * 1e3 / m.engine.sent as f64) * 100.0).round() / 100.0
                },
                requests_sent: m.engine.sent,
                in_flight_cap_hits: m.engine.in_flight_cap_hits,
                max_in_flight: m.engine.max_in_flight,
                connections_opened: m.engine.connections_opened,
                scheduling: m.scheduling.name().to_string(),
            },
            hops: HopSummary::of(&m.overall.hops),
            entrypoints: entries,
            timeline: m
                .timeline
                .iter()
                .enumerate()
                .map(|(i, s)| SecondResult::of(i, s))
                .collect(),
            units: None,
            units_cpu_us_per_request: None,
            injected_delay_error: DelayErrorSummary::of(&m.delay_error).map(|driver| {
                InjectedDelayError {
                    driver: Some(driver),
                    ..InjectedDelayError::default()
                }
            }),
            valid: invalid_reason.is_none(),
            invalid_reason,
        }
    }
}

fn entry_result(op: &str, e: &EntryMeasurement, static_hops: Hops) -> EntryResult {
    let hops = HopSummary::of(&e.hops);
    EntryResult {
        entrypoint: op.to_string(),
        ok: e.ok,
        errors: e.errors.clone(),
        latency_us: Percentiles::of(&e.corrected),
        latency_uncorrected_us: Percentiles::of(&e.uncorrected),
        histograms: HistogramPair::of(e),
        hops_match_static: hops.all_equal(static_hops),
        hops,
        static_hops,
    }
}

impl StepResult {
    /// Attaches the units' CPU and memory during this step.
    pub fn with_units(mut self, usage: crate::cost::UnitsUsage) -> Self {
        let completed = self.ok + self.error_total;
        self.units_cpu_us_per_request = (completed > 0)
            .then(|| ((usage.cpu_ms_total * 1e3 / completed as f64) * 100.0).round() / 100.0);
        self.units = Some(usage);
        self
    }
}

impl HistogramPair {
    fn of(m: &EntryMeasurement) -> Self {
        HistogramPair {
            corrected: encode_histogram(&m.corrected),
            uncorrected: encode_histogram(&m.uncorrected),
        }
    }
}

impl SecondResult {
    fn of(second: usize, s: &Second) -> Self {
        let p = Percentiles::of(&s.corrected);
        SecondResult {
            second,
            warmup: s.warmup,
            ok: s.ok,
            errors: s.errors,
            p50_us: p.p50,
            p99_us: p.p99,
            max_us: p.max,
        }
    }
}

fn invalid_reason(target_rps: u32, achieved_rps: f64, send_lag: &Percentiles) -> Option<String> {
    let mut reasons = Vec::new();
    if achieved_rps < f64::from(target_rps) * MIN_ACHIEVED_SHARE {
        reasons.push(format!(
            "achieved {achieved_rps:.1} of {target_rps} req/s (below {:.0}%)",
            MIN_ACHIEVED_SHARE * 100.0
        ));
    }
    if send_lag.p99 > MAX_SEND_LAG_P99_US {
        reasons.push(format!(
            "load generator fell behind its schedule: send lag p99 {} µs > {MAX_SEND_LAG_P99_US} µs",
            send_lag.p99
        ));
    }
    (!reasons.is_empty()).then(|| reasons.join("; "))
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EquivalenceSummary {
    pub requests: usize,
    /// The architecture whose digests the others were compared with.
    pub reference: Architecture,
    /// Architectures whose digests matched the reference's for every request.
    pub agreed: Vec<Architecture>,
    pub digests: Vec<DigestRecord>,
}

/// Why results could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} is not a grainbench results file: {source}", path.display())]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
}

impl RunResults {
    /// Writes `dir/results.json` atomically (temp file + rename), creating `dir`.
    pub fn write(&self, dir: &Path) -> Result<PathBuf, ResultsError> {
        let path = dir.join("results.json");
        let write_error = |source| ResultsError::Write {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(write_error)?;
        let json =
            serde_json::to_vec_pretty(self).map_err(|e| write_error(std::io::Error::other(e)))?;
        let temp = dir.join(".results.json.tmp");
        std::fs::write(&temp, json).map_err(write_error)?;
        std::fs::rename(&temp, &path).map_err(write_error)?;
        Ok(path)
    }

    pub fn read(path: &Path) -> Result<Self, ResultsError> {
        let text = std::fs::read_to_string(path).map_err(|source| ResultsError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        serde_json::from_str(&text).map_err(|source| ResultsError::Parse {
            path: path.to_path_buf(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_histogram() {
        let mut h = crate::driver::new_histogram();
        for v in 1..=1000u64 {
            h.record(v).unwrap();
        }
        let p = Percentiles::of(&h);
        assert_eq!(p.count, 1000);
        assert!((495..=505).contains(&p.p50), "{p:?}");
        assert!((985..=995).contains(&p.p99), "{p:?}");
        assert_eq!(
            Percentiles::of(&crate::driver::new_histogram()),
            Percentiles::default()
        );
    }

    #[test]
    fn a_step_that_missed_its_rate_is_invalid() {
        let lag = Percentiles {
            p99: 10,
            ..Default::default()
        };
        assert!(invalid_reason(100, 99.0, &lag).is_none());
        let reason = invalid_reason(100, 50.0, &lag).unwrap();
        assert!(reason.contains("achieved 50.0 of 100"), "{reason}");
        let late = Percentiles {
            p99: 5_000,
            ..Default::default()
        };
        assert!(invalid_reason(100, 100.0, &late)
            .unwrap()
            .contains("send lag"));
    }

    #[test]
    fn hop_summary_checks_every_request() {
        let mut hops = BTreeMap::new();
        hops.insert(
            Hops {
                service: 3,
                state: 2,
            },
            10,
        );
        let summary = HopSummary::of(&hops);
        assert!(summary.all_equal(Hops {
            service: 3,
            state: 2
        }));
        hops.insert(
            Hops {
                service: 2,
                state: 2,
            },
            1,
        );
        assert!(!HopSummary::of(&hops).all_equal(Hops {
            service: 3,
            state: 2
        }));
        assert!(!HopSummary::default().all_equal(Hops::default()));
    }
}
