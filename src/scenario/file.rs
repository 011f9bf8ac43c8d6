//! The scenario file exactly as written (TOML), with source spans kept on every field that
//! validation may complain about. Unknown fields are rejected at parse time.

use serde::Deserialize;
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawScenario {
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
    pub load: Spanned<RawLoad>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawParam {
    pub name: Spanned<String>,
    pub dist: Spanned<RawDistribution>,
    #[serde(default)]
    pub count: Option<Spanned<u64>>,
    #[serde(default)]
    pub exponent: Option<Spanned<f64>>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RawDistribution {
    Uniform,
    Zipf,
    Sequence,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawService {
    pub name: Spanned<String>,
    pub operations: Spanned<Vec<Spanned<String>>>,
    #[serde(default)]
    pub data: Vec<RawData>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawData {
    pub key_prefix: Spanned<String>,
    pub count: Spanned<u64>,
    #[serde(default = "default_value_bytes")]
    pub value_bytes: usize,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOperation {
    pub name: Spanned<String>,
    #[serde(default)]
    pub cpu_us: u64,
    #[serde(default = "default_request_bytes")]
    pub request_bytes: usize,
    #[serde(default = "default_response_bytes")]
    pub response_bytes: usize,
    #[serde(default)]
    pub reads: Vec<Spanned<String>>,
    #[serde(default)]
    pub writes: Vec<Spanned<String>>,
    #[serde(default = "default_value_bytes")]
    pub write_bytes: usize,
    #[serde(default)]
    pub calls: Vec<Spanned<RawCall>>,
}

/// `{ op = "x" }` or `{ parallel = ["x", "y"] }`; exactly one of the two.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCall {
    #[serde(default)]
    pub op: Option<Spanned<String>>,
    #[serde(default)]
    pub parallel: Option<Vec<Spanned<String>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEntrypoint {
    pub op: Spanned<String>,
    #[serde(default = "default_weight")]
    pub weight: Spanned<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLoad {
    pub rates: Spanned<Vec<Spanned<u32>>>,
    pub duration_s: Spanned<f64>,
    #[serde(default)]
    pub warmup_s: Option<Spanned<f64>>,
    #[serde(default)]
    pub timeout_ms: Option<Spanned<u64>>,
}

fn default_request_bytes() -> usize {
    256
}

fn default_response_bytes() -> usize {
    256
}

fn default_value_bytes() -> usize {
    64
}

fn default_weight() -> Spanned<u32> {
    Spanned::new(0..0, 1)
}
