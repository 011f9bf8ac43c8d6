//! The scenario file exactly as written (TOML), with source spans kept on every field that
//! validation may complain about. Unknown fields are rejected at parse time. The JSON
//! Schema of the format (`grainbench schema`) is derived from these types.

use super::limits;
use schemars::JsonSchema;
use serde::Deserialize;
use toml::Spanned;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawScenario {
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    #[serde(default)]
    pub description: String,
    /// Seed of the request parameter generator (overridden by `--seed`).
    #[serde(default)]
    pub seed: Option<u64>,
    #[serde(default, rename = "param")]
    pub params: Vec<RawParam>,
    #[serde(default, rename = "service")]
    pub services: Vec<RawService>,
    #[serde(default, rename = "operation")]
    pub operations: Vec<RawOperation>,
    #[serde(default, rename = "entrypoint")]
    pub entrypoints: Vec<RawEntrypoint>,
    #[schemars(with = "RawLoad")]
    pub load: Spanned<RawLoad>,
    /// The network every hop crosses; absent means raw loopback.
    #[serde(default)]
    pub network: Option<RawNetwork>,
    /// Named cuts: groupings of the operations into units, beside nano, micro and monolith.
    #[serde(default, rename = "cut")]
    pub cuts: Vec<RawCut>,
    /// What every hop speaks; absent means plaintext.
    #[serde(default)]
    pub security: Option<RawSecurity>,
    /// What unit-to-unit hops speak; absent means HTTP/1.1 + JSON.
    #[serde(default)]
    pub transport: Option<RawTransport>,
    pub mesh: Option<RawMesh>,
    /// How units call each other: timeout, retries, backoff, circuit breaker.
    #[serde(default)]
    pub resilience: Option<RawResilience>,
    /// Faults injected during a fault step of every cut, after its load steps.
    #[serde(default, rename = "fault")]
    pub faults: Vec<RawFault>,
}

/// `[resilience]`: the callers' policy, the same in every unit (defaults: 10 000 ms
/// timeout, no retries, a 10 % retry budget, 10 ms backoff doubling up to 200 ms, no
/// circuit breaker).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawResilience {
    /// Each call attempt's timeout (ms).
    #[serde(default)]
    #[schemars(with = "Option<u64>", range(min = 1, max = limits::MAX_TIMEOUT_MS))]
    pub timeout_ms: Option<Spanned<u64>>,
    /// Retries after a failed attempt (a 5xx, a timeout, a broken connection).
    #[serde(default)]
    #[schemars(with = "Option<u32>", range(max = limits::MAX_RETRIES))]
    pub retries: Option<Spanned<u32>>,
    /// Retries allowed as a share of calls, such as `"10%"`, or `"none"` for no budget.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub retry_budget: Option<Spanned<String>>,
    /// Bound of the first retry's random wait (ms); each next bound doubles.
    #[serde(default)]
    #[schemars(with = "Option<f64>", range(min = 0, max = limits::MAX_TIMEOUT_MS))]
    pub backoff_ms: Option<Spanned<f64>>,
    /// The largest backoff bound (ms).
    #[serde(default)]
    #[schemars(with = "Option<f64>", range(min = 0, max = limits::MAX_TIMEOUT_MS))]
    pub backoff_max_ms: Option<Spanned<f64>>,
    /// Consecutive failures of a callee that open its circuit breaker (0: none).
    #[serde(default)]
    #[schemars(with = "Option<u32>", range(max = 1_000_000))]
    pub breaker_failures: Option<Spanned<u32>>,
    /// How long an open breaker fails calls at once (ms).
    #[serde(default)]
    #[schemars(with = "Option<u64>", range(min = 1, max = limits::MAX_TIMEOUT_MS))]
    pub breaker_open_ms: Option<Spanned<u64>>,
}

/// `[[fault]]`: one fault injected into the first replica of the unit serving `operation`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawFault {
    /// `kill`, `freeze`, `slow` or `fail`.
    #[schemars(with = "String")]
    pub kind: Spanned<String>,
    #[schemars(with = "String")]
    pub operation: Spanned<String>,
    /// When, from the start of the fault step's measured window (s).
    #[schemars(with = "f64")]
    pub at_s: Spanned<f64>,
    /// How long (s; a killed unit is restarted after it). Default 1.
    #[serde(default)]
    #[schemars(with = "Option<f64>")]
    pub for_s: Option<Spanned<f64>>,
    /// `slow`: added to every reply (ms).
    #[serde(default)]
    #[schemars(with = "Option<f64>")]
    pub delay_ms: Option<Spanned<f64>>,
    /// `fail`: probability of a 503.
    #[serde(default)]
    #[schemars(with = "Option<f64>")]
    pub probability: Option<Spanned<f64>>,
}

/// `[security]`: the modes to compare (each cut is deployed once per mode) and whether
/// units reuse connections for their calls.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSecurity {
    /// Any of `none`, `tls`, `mtls`, `token`, `mtls+token`.
    #[schemars(with = "Vec<String>", length(min = 1))]
    pub modes: Spanned<Vec<Spanned<String>>>,
    /// Units pool their connections (default true); false opens one, and pays its
    /// handshake, per call.
    #[serde(default)]
    pub keepalive: Option<bool>,
}

/// `[transport]`: the transports to compare between units (each cut is deployed once
/// per transport); the driver always speaks HTTP/1.1 to the entry unit.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawTransport {
    /// Any of `http1-json`, `grpc`, `binary`.
    #[schemars(with = "Vec<String>", length(min = 1))]
    pub modes: Spanned<Vec<Spanned<String>>>,
}

/// `[mesh]`: whether units run behind sidecar proxies (each cut is deployed once per
/// mode).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawMesh {
    /// Any of `none`, `sidecar`.
    #[schemars(with = "Vec<String>", length(min = 1))]
    pub modes: Spanned<Vec<Spanned<String>>>,
}

/// `[[cut]]`: a name and the units as groups of operations. Every operation is in at most
/// one group; an operation no group lists gets a unit of its own.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawCut {
    /// Letters, digits, `_` and `-`; not `nano`, `micro`, `monolith` nor `sweep-…`.
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    /// One group of operation names per unit, e.g. `[["checkout", "create_order"], ["pay"]]`.
    #[schemars(with = "Vec<Vec<String>>", length(min = 1))]
    pub units: Spanned<Vec<Spanned<Vec<Spanned<String>>>>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawParam {
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    #[schemars(with = "RawDistribution")]
    pub dist: Spanned<RawDistribution>,
    #[serde(default)]
    #[schemars(with = "Option<u64>")]
    pub count: Option<Spanned<u64>>,
    #[serde(default)]
    #[schemars(with = "Option<f64>")]
    pub exponent: Option<Spanned<f64>>,
}

#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RawDistribution {
    Uniform,
    Zipf,
    Sequence,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawService {
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    #[schemars(with = "Vec<String>")]
    pub operations: Spanned<Vec<Spanned<String>>>,
    #[serde(default)]
    pub data: Vec<RawData>,
    /// Processes per unit hosting this service's operations (default 1); above 1 the
    /// service's data moves to a state unit the replicas share.
    #[serde(default)]
    #[schemars(with = "Option<u32>", range(min = 1, max = limits::MAX_REPLICAS))]
    pub replicas: Option<Spanned<u32>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawData {
    #[schemars(with = "String")]
    pub key_prefix: Spanned<String>,
    #[schemars(with = "u64", range(min = 1, max = limits::MAX_KEYS))]
    pub count: Spanned<u64>,
    #[serde(default = "default_value_bytes")]
    #[schemars(with = "u64", range(max = limits::MAX_VALUE_BYTES))]
    pub value_bytes: Spanned<u64>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawOperation {
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    #[serde(default = "default_zero")]
    #[schemars(with = "u64", range(max = limits::MAX_CPU_US))]
    pub cpu_us: Spanned<u64>,
    #[serde(default = "default_request_bytes")]
    #[schemars(with = "u64", range(max = limits::MAX_PAYLOAD_BYTES))]
    pub request_bytes: Spanned<u64>,
    #[serde(default = "default_response_bytes")]
    #[schemars(with = "u64", range(max = limits::MAX_PAYLOAD_BYTES))]
    pub response_bytes: Spanned<u64>,
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub reads: Vec<Spanned<String>>,
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub writes: Vec<Spanned<String>>,
    #[serde(default = "default_value_bytes")]
    #[schemars(with = "u64", range(max = limits::MAX_VALUE_BYTES))]
    pub write_bytes: Spanned<u64>,
    #[serde(default)]
    #[schemars(with = "Vec<RawCall>")]
    pub calls: Vec<Spanned<RawCall>>,
}

/// `{ op = "x" }` or `{ parallel = ["x", "y"] }`; exactly one of the two.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawCall {
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub op: Option<Spanned<String>>,
    #[serde(default)]
    #[schemars(with = "Option<Vec<String>>")]
    pub parallel: Option<Vec<Spanned<String>>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawEntrypoint {
    #[schemars(with = "String")]
    pub op: Spanned<String>,
    #[serde(default = "default_weight")]
    #[schemars(with = "u32")]
    pub weight: Spanned<u32>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawLoad {
    #[schemars(with = "Vec<u32>", inner(range(min = 1, max = limits::MAX_RATE)))]
    pub rates: Spanned<Vec<Spanned<u32>>>,
    #[schemars(with = "f64", range(min = limits::MIN_DURATION_S, max = limits::MAX_DURATION_S))]
    pub duration_s: Spanned<f64>,
    #[serde(default)]
    #[schemars(with = "Option<f64>", range(min = 0.0, max = limits::MAX_DURATION_S))]
    pub warmup_s: Option<Spanned<f64>>,
    #[serde(default)]
    #[schemars(with = "Option<u64>", range(min = 1, max = limits::MAX_TIMEOUT_MS))]
    pub timeout_ms: Option<Spanned<u64>>,
    /// The p99 (ms) a cut must meet at the comparison rate: the report then recommends the
    /// finest cut that meets it (overridden by `--p99-budget`).
    #[serde(default)]
    #[schemars(with = "Option<f64>", range(min = 0.001, max = limits::MAX_TIMEOUT_MS))]
    pub p99_budget_ms: Option<Spanned<f64>>,
}

/// `[network]`: a preset and/or explicit values (explicit values override the preset's).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawNetwork {
    /// `loopback`, `dc`, `cross-zone`, or a fixed one-way delay such as `250us` or `1ms`.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub preset: Option<Spanned<String>>,
    /// Fixed one-way delay per message, µs (each hop is a request and a reply: two).
    #[serde(default, alias = "hop_latency_us")]
    #[schemars(with = "Option<f64>")]
    pub one_way_us: Option<Spanned<f64>>,
    /// Jitter size, µs: half-width (uniform), standard deviation (normal) or mean (exponential).
    #[serde(default)]
    #[schemars(with = "Option<f64>")]
    pub jitter_us: Option<Spanned<f64>>,
    /// Jitter distribution: `none`, `uniform`, `normal` or `exponential`.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub jitter: Option<Spanned<String>>,
    /// Probability (0 ≤ p < 1) that a message is lost and resent after `retransmit_ms`.
    #[serde(default)]
    #[schemars(with = "Option<f64>")]
    pub loss: Option<Spanned<f64>>,
    /// What a lost message costs, ms (default 200, Linux's minimum TCP retransmission timeout).
    #[serde(default)]
    #[schemars(with = "Option<f64>")]
    pub retransmit_ms: Option<Spanned<f64>>,
}

// Defaults carry an empty span: a default is always within its bounds, so no issue ever
// points at it.
fn default_zero() -> Spanned<u64> {
    Spanned::new(0..0, 0)
}

fn default_request_bytes() -> Spanned<u64> {
    Spanned::new(0..0, 256)
}

fn default_response_bytes() -> Spanned<u64> {
    Spanned::new(0..0, 256)
}

fn default_value_bytes() -> Spanned<u64> {
    Spanned::new(0..0, 64)
}

fn default_weight() -> Spanned<u32> {
    Spanned::new(0..0, 1)
}
