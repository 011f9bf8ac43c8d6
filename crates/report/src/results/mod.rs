//! The results contract: the types of `results.json` (versioned by [`SCHEMA_VERSION`]),
//! written by `run` and only read by `report`. Plain data: this module depends on nothing
//! but serde, the shared wire and histogram types and the deployments' names
//! ([`crate::modes`]); the run's settings have plain types of their own ([`setup`]).
//! How measurements become these figures lives beside the code that measures (`driver`,
//! `cost`, `network`); reading and writing the file is in [`file`].

mod fault;
mod file;
pub mod setup;
mod step;
mod trace;

pub use fault::*;
pub use file::{check_out_dir, write_atomic, ResultsError};
pub use grain_runtime::histogram::{decode as decode_histogram, encode as encode_histogram};
pub use setup::{Fault, FaultKind, Jitter, NetworkModel, Resilience};
pub use step::*;
pub use trace::*;

use crate::modes::{Architecture, Mesh, SecurityMode, Tracing, Transport};
use grain_runtime::wire::Hops;
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Version of the results.json schema; bumped on any incompatible change. A file with
/// another version is refused when read. Version 3: architectures may be any cut's name
/// (`sweep-7`, a scenario's `[[cut]]`), and the run may carry a p99 budget. Version 4:
/// security modes. Version 5: replicas, the callers' resilience policy and fault steps.
/// Version 6: the transport between units. Version 7: sidecar proxies (the mesh).
pub const SCHEMA_VERSION: u32 = 7;
/// The oldest schema version still read: version 1 files (one round, no summaries) are read
/// as a single round.
pub const OLDEST_READ_VERSION: u32 = 1;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
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
    /// How requests were traced, under `--trace` (absent: none was).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traces: Option<TraceRunInfo>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunMeta {
    /// Rounds run: every round runs every architecture, in an order shuffled per round.
    #[serde(default = "one")]
    pub rounds: usize,
    /// The order of the architectures in each round.
    #[serde(default)]
    pub round_orders: Vec<Vec<Architecture>>,
    pub grainbench_version: String,
    pub git_commit: Option<String>,
    pub host_cpus: usize,
    /// RFC 3339, UTC.
    pub started_at: String,
    pub seed: u64,
    pub quick: bool,
    /// CPU-work calibration handed to every unit (busy-loop iterations per µs).
    pub work_iterations_per_us: f64,
    /// The p99 a cut must meet at the comparison rate, µs (`--p99-budget` or the scenario's
    /// `[load] p99_budget_ms`); the report then recommends the finest cut that meets it.
    #[serde(default)]
    pub p99_budget_us: Option<f64>,
    /// With `--rates auto`: the highest open-loop rate the driver held validly against a
    /// minimal endpoint before the run, where the sweep stopped.
    #[serde(default)]
    pub driver_capacity_rps: Option<u32>,
    /// Whether units reused connections for their calls (`--no-keepalive`: false).
    #[serde(default = "keepalive_default")]
    pub keepalive: bool,
    /// The endpoints file of a deployment grainbench drove but did not start
    /// (`run --endpoints`); its cold start, memory and units' CPU are not measured.
    #[serde(default)]
    pub endpoints: Option<PathBuf>,
    /// How units called each other: timeout, retries, budget, backoff, breaker (schema 5;
    /// older files: the defaults of then, which are today's).
    #[serde(default)]
    pub resilience: Resilience,
    /// With `--target compose`: the units' image and the run's network (schema 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub containers: Option<ContainerInfo>,
    /// With `--precision`: how the rounds were decided (schema 6).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precision: Option<PrecisionRecord>,
    /// Under a mesh: the sidecars' proxy and version, as it states them (schema 7).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sidecar_proxy: Option<String>,
    /// With `--unit-cpus`: the cores every unit process (and sidecar) was confined to, as
    /// `taskset -c` writes them (`0`, `0,2-3`); absent: wherever the scheduler put them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit_cores: Option<String>,
    /// With `--unit-cpus`: the cores left, which the driver's load threads ran on (absent:
    /// wherever the scheduler put them, as without `--unit-cpus` or with no core left).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver_cores: Option<String>,
}

/// How a run with `--precision` decided its rounds: from a pilot, once (Stein's
/// two-stage rule), never by peeking again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrecisionRecord {
    /// The half-width asked of every verdict ratio's interval, percent.
    pub target_percent: f64,
    pub pilot_rounds: usize,
    pub max_rounds: usize,
    /// What the pilot's ratios asked for, uncapped (absent: the pilot could not say).
    pub asked_rounds: Option<usize>,
    /// The rounds decided, pilot included.
    pub rounds: usize,
    /// `--time-budget`, seconds, if the run had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_budget_s: Option<f64>,
    /// Why the run took that many rounds, in words.
    pub reason: String,
}

/// How a run's units ran as containers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerInfo {
    /// `grainbench-unit:<commit>-<binary hash>`, built offline `FROM scratch`.
    pub image: String,
    /// Its size as Docker reports it: what each unit ships in this mode.
    pub image_bytes: u64,
    /// Behind sidecars: the sidecar image's size, what each unit's sidecar ships.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sidecar_image_bytes: Option<u64>,
    pub network: String,
    pub cpus: Option<f64>,
    pub memory: Option<String>,
}

fn keepalive_default() -> bool {
    true
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
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
    /// The hop ledger's denominators, measured again at the start of every round, so that
    /// each round's per-hop figures are set against the floor of their own moment (absent
    /// from runs before they were measured per round: those measured the least hop once,
    /// `hop_calibration.floor`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub floors: Vec<RoundFloor>,
}

/// This machine's floors at the start of one round: the bare hop's round trip (the driver
/// against a unit that does nothing) and the least hop (a client and a server that do
/// nothing else), where the scheduler places it and across two cores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoundFloor {
    /// The round (from 0) it was measured at the start of.
    pub round: usize,
    /// The bare hop's round trip p50 on raw loopback, µs (none if it failed).
    pub bare_hop_p50_us: Option<f64>,
    /// The least hop (none if it failed).
    pub least_hop: Option<HopFloor>,
    /// The least hop with its client and its server pinned to two different cores: every
    /// wake-up crosses cores, as a hop between units on different cores does (none if it
    /// failed, with one core, or in runs from before it was measured).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub least_hop_across_cores: Option<HopFloor>,
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
    /// The calibration is repeated at the start of every round (older runs repeated it up
    /// to three times before the first): its loopback p50 and the p50 the model added, over
    /// those repetitions, with their intervals.
    #[serde(default)]
    pub loopback_p50_over_rounds: Option<Estimate>,
    #[serde(default)]
    pub added_p50_over_rounds: Option<Estimate>,
    /// This machine's floor for one hop, measured once in the same run: the least client
    /// and the least server (runs since the floors are measured every round have them in
    /// [`NetworkInfo::floors`] instead).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub floor: Option<HopFloor>,
}

/// What one request costs a client and a server that do nothing else, on this machine,
/// at a fixed rate: the denominator of the hop ledger. The least client sleeps until each
/// due time, writes the request and blocks for the reply; the least server blocks on its
/// one connection, reads the request and writes a canned reply. Each one's CPU is its
/// thread's CPU clock; the round trip is from the client's write to the reply's last byte.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HopFloor {
    pub rate_rps: u32,
    /// Requests measured (after a warm-up), and the rate held: one request at a time
    /// cannot keep a schedule faster than its round trip.
    pub requests: u64,
    pub achieved_rps: f64,
    /// CPU per request, µs.
    pub client_cpu_us: f64,
    /// Of the client's, from just after each wake-up from its timer to the reply's last
    /// byte (the write and the wait for the reply), µs; the rest is its sleep to the due
    /// time and the wake-up, which a call between units, woken by a request instead of a
    /// timer, does not pay (absent from runs before it was measured).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_exchange_cpu_us: Option<f64>,
    pub server_cpu_us: f64,
    /// Round trip, µs.
    pub round_trip_us: Percentiles,
}

impl HopFloor {
    /// Client and server CPU per request together, µs.
    pub fn cpu_us(&self) -> f64 {
        self.client_cpu_us + self.server_cpu_us
    }

    /// Of it, the exchange's: the client's from its wake-up to the reply and the server's,
    /// µs (none from runs before the client's part was measured).
    pub fn exchange_cpu_us(&self) -> Option<f64> {
        Some(self.client_exchange_cpu_us? + self.server_cpu_us)
    }

    /// Whether it held the rate (≥ 99 %); if not, its figures are no floor for it.
    pub fn held(&self) -> bool {
        self.achieved_rps >= 0.99 * f64::from(self.rate_rps)
    }
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
    pub role: UnitKind,
    pub hosts: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArchitectureResult {
    pub architecture: Architecture,
    /// What every hop spoke (schema 4; absent in older files: plaintext).
    #[serde(default)]
    pub security: SecurityMode,
    /// What every unit-to-unit hop spoke (schema 6; absent in older files: HTTP/1.1 +
    /// JSON). The driver spoke HTTP/1.1 + JSON to the entry unit whatever this is.
    #[serde(default)]
    pub transport: Transport,
    /// Whether its requests were traced (`traced` under `--trace`; absent: not).
    #[serde(default, skip_serializing_if = "Tracing::is_off")]
    pub tracing: Tracing,
    /// Whether every unit ran behind a sidecar proxy (schema 7; absent: no mesh).
    #[serde(default)]
    pub mesh: Mesh,
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
    /// Per open-loop rate, every figure over the valid rounds with its interval.
    #[serde(default)]
    pub summary: Vec<RateSummary>,
    /// Processes per unit, where a unit runs more than one (schema 5).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub replicas: BTreeMap<String, u32>,
    /// One fault step per fault the run injects (schema 5).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub faults: Vec<FaultResult>,
    /// What its traced requests' spans say, under `--trace`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traces: Option<TraceSummary>,
}

/// Deploy cost of one architecture, from the kernel's own accounting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeployCost {
    pub service_units: usize,
    pub state_units: usize,
    /// Processes running the units, replicas counted (schema 5; older files: one per unit).
    #[serde(default)]
    pub processes: usize,
    /// Business endpoints over all units (operations; get and put of state units).
    pub endpoints: usize,
    /// What each unit ships: the `grainbench` binary (as containers, its image), and
    /// behind sidecars its sidecar's too (HAProxy's binary, or the sidecar image).
    pub artifact_bytes_per_unit: u64,
    /// What the deployment ships if every process is packaged on its own.
    pub artifact_bytes_total: u64,
    pub cold_start: ColdStart,
    /// Unit → RSS right after readiness, before any request (bytes).
    pub idle_rss_bytes: BTreeMap<String, u64>,
    pub idle_rss_bytes_total: u64,
    /// The same moment's proportional set size over every unit (each shared page divided
    /// among the processes mapping it: the units share the binary's code, which RSS counts
    /// once per unit), bytes; absent where /proc has no `smaps_rollup`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_pss_bytes_total: Option<u64>,
    /// The same moment's private memory over every unit (pages no other process maps),
    /// bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_private_bytes_total: Option<u64>,
    /// Under a mesh: every sidecar's RSS once deployed and idle, added up (bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sidecar_idle_rss_bytes_total: Option<u64>,
    /// Under a mesh: the sidecar processes (one per unit process).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sidecars: Option<usize>,
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
    /// Seconds into the step's measured window when the redeploy began (replacements
    /// started beside the old processes).
    pub at_s: f64,
    /// Start → old processes drained and exited (they are told to drain once the
    /// replacements are ready and routed).
    pub drained_ms: f64,
    /// Start → replacements ready and routed.
    pub ready_ms: f64,
    /// Requests due from the start until one second after the later of the two.
    pub window_requests: u64,
    pub window_failed: u64,
    /// Corrected latency of requests due before the redeploy, and during its window.
    pub latency_before_us: Percentiles,
    pub latency_during_us: Percentiles,
    /// Old unit processes still alive afterwards (should be 0).
    pub old_processes_left: usize,
    /// How each old process ended (`exit code 0` after a graceful drain).
    pub old_endings: Vec<String>,
    /// Waves of the replacement: 1 when each unit runs one process (all replaced at once),
    /// else one per replica (a rolling update). Files from before it say nothing: 1.
    #[serde(default = "one_wave")]
    pub waves: usize,
    /// The step the redeploy ran in.
    pub step: Box<StepResult>,
}

fn one_wave() -> usize {
    1
}

/// The saturation point of a rate sweep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Knee {
    /// The highest rate that held (none if even the first step saturated).
    pub last_good_rps: Option<u32>,
    /// The rate at which it saturated.
    pub saturated_at_rps: u32,
    pub reason: String,
    /// What saturated (absent in files from before it was told).
    #[serde(default)]
    pub cause: Option<KneeCause>,
}

/// What a rate sweep ran into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KneeCause {
    /// The architecture: a step missed its rate, its p99 bound, or its units kept the
    /// driver from its schedule while the driver itself was not busy.
    Architecture,
    /// The load driver: its threads were busy nearly the whole step.
    Driver,
    /// The sweep's highest rate (the driver's capacity or `--max-rate`), not saturated.
    Limit,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EquivalenceSummary {
    pub requests: usize,
    /// The deployment (cut, `+mode` when secured) whose digests the others were compared with.
    pub reference: String,
    /// Deployments whose digests matched the reference's for every request.
    pub agreed: Vec<String>,
    pub digests: Vec<DigestRecord>,
}

impl RunResults {
    /// This run's deployment of the same cut and mechanism as `arch` (of another run).
    pub fn same_deployment_as(&self, arch: &ArchitectureResult) -> Option<&ArchitectureResult> {
        self.architectures.iter().find(|b| b.same_deployment(arch))
    }
}

impl ArchitectureResult {
    /// The cut and, when its hops were secured, the mode: `micro`, `micro+mtls`. Every
    /// report names a deployment by it.
    pub fn label(&self) -> String {
        crate::modes::variant_label(
            &self.architecture,
            self.security,
            self.transport,
            self.mesh,
            self.tracing,
        )
    }

    /// Whether `figure` has a value in every valid open-loop step at `rate` (a CPU figure
    /// that /proc's ticks resolve in every round: `StepResult::resolved_*`).
    pub fn all_rounds_have(&self, rate: u32, figure: impl Fn(&StepResult) -> Option<f64>) -> bool {
        self.steps
            .iter()
            .filter(|s| s.is_valid_open_at(rate))
            .all(|s| figure(s).is_some())
    }

    /// Whether both are the same cut under the same security and transport.
    pub fn same_deployment(&self, other: &ArchitectureResult) -> bool {
        self.architecture == other.architecture && self.same_mechanism(other)
    }

    /// What its hops spoke, in words: `HTTP/1.1 + JSON under mtls through sidecars`.
    pub fn mechanism(&self) -> String {
        let mut words = self.transport.title().to_string();
        if self.security != crate::modes::SecurityMode::None {
            words.push_str(&format!(" under {}", self.security));
        }
        if self.mesh == crate::modes::Mesh::Sidecar {
            words.push_str(" through sidecars");
        }
        if self.tracing == Tracing::Traced {
            words.push_str(", traced");
        }
        words
    }

    /// How far its mechanism is from the base one (plaintext HTTP/1.1 + JSON, no mesh):
    /// the number of dimensions off their base.
    pub fn mechanism_distance(&self) -> usize {
        usize::from(self.security != crate::modes::SecurityMode::None)
            + usize::from(self.transport != crate::modes::Transport::Http1Json)
            + usize::from(self.mesh != crate::modes::Mesh::None)
            + usize::from(self.tracing != Tracing::Off)
    }

    /// Whether both hops spoke the same: the same security mode, transport and mesh.
    pub fn same_mechanism(&self, other: &ArchitectureResult) -> bool {
        self.security == other.security
            && self.transport == other.transport
            && self.mesh == other.mesh
            && self.tracing == other.tracing
    }

    /// The distinct rates of its open-loop steps, lowest first (`valid_only`: of the valid
    /// ones only).
    pub fn open_rates(&self, valid_only: bool) -> Vec<u32> {
        let mut rates: Vec<u32> = self
            .steps
            .iter()
            .filter(|s| s.mode == StepMode::Open && (s.valid || !valid_only))
            .map(|s| s.target_rps)
            .collect();
        rates.sort_unstable();
        rates.dedup();
        rates
    }
}

fn one() -> usize {
    1
}

/// Whether a unit hosts operations or a service's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnitKind {
    Service,
    State,
}

/// Cold start figures over repeated deployments.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ColdStart {
    /// Spawn of the first unit → every unit ready, one per deployment (ms).
    pub samples_ms: Vec<f64>,
    pub median_ms: f64,
    pub min_ms: f64,
    pub max_ms: f64,
    /// Unit → median of its own spawn → listening time (ms).
    pub per_unit_median_ms: BTreeMap<String, f64>,
}

/// One request of the equivalence check and the digest an architecture answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DigestRecord {
    pub entrypoint: String,
    pub params: BTreeMap<String, u64>,
    pub digest: String,
}
