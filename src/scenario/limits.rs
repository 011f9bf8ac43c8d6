//! The bounds on every number in a scenario file, each chosen from what one machine can do.
//! Validation refuses a file outside them with a file:line error naming the limit; the
//! JSON Schema and the README list the same numbers.

/// Highest request rate of one step (req/s): above what a 16-core machine's driver sends
/// (the per-step request bound below keeps such a step under 10 s).
pub const MAX_RATE: u32 = 1_000_000;
/// Most requests one step may schedule (rate × (warm-up + measured time)); the driver keeps
/// a few dozen bytes per request, so this bounds its memory to a few hundred MiB.
pub const MAX_REQUESTS_PER_STEP: u64 = 10_000_000;
/// Shortest measured time of a step (s): below it no rate is measurable.
pub const MIN_DURATION_S: f64 = 0.001;
/// Longest warm-up or measured time of a step (s).
pub const MAX_DURATION_S: f64 = 3_600.0;
/// Longest request timeout (ms).
pub const MAX_TIMEOUT_MS: u64 = 60_000;
/// Largest request or response body (bytes): the units' body limit.
pub const MAX_PAYLOAD_BYTES: u64 = grain_runtime::wire::MAX_BODY_BYTES as u64 / 4;
/// Most CPU one operation burns per call (µs).
pub const MAX_CPU_US: u64 = 1_000_000;
/// Most keys one data set seeds.
pub const MAX_KEYS: u64 = 10_000_000;
/// Largest value (bytes).
pub const MAX_VALUE_BYTES: u64 = 1024 * 1024;
/// Most bytes all data sets together seed (before per-key overhead).
pub const MAX_STORE_BYTES: u64 = 4 * 1024 * 1024 * 1024;
/// Most hops (service and state) one request may make in any architecture.
pub const MAX_HOPS_PER_REQUEST: u64 = 10_000;
/// Entrypoint weights must sum to at most this.
pub const MAX_WEIGHT_SUM: u64 = u32::MAX as u64;
/// Most operations, services or parameters in one scenario.
pub const MAX_ITEMS: usize = 100_000;
/// Most processes one unit may run as replicas.
pub const MAX_REPLICAS: u32 = 16;
/// Most retries a caller makes after a failed attempt.
pub const MAX_RETRIES: u32 = 10;
