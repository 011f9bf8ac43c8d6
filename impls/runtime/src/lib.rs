//! # grain-runtime — what every grainbench unit is made of
//!
//! - `model`: operations, call steps, key templates, the unit spec and routes
//! - `work`: calibrated CPU work
//! - `digest`: deterministic digests of business results
//! - `store`: the in-memory key-value store a service owns
//! - `wire`: the HTTP protocol (paths, hop and digest headers, padded JSON bodies)
//! - `client`: the pooled HTTP client units and the driver share
//! - `precise`: µs-precise waiting, blocking and async (pooled timerfds in tokio's reactor)
//! - `network`: the network model, the per-hop delay it injects and its measured error
//! - `histogram`: HdrHistograms as base64 text
//! - `host`: serving one unit process (bind, announce, routes on stdin, graceful stop);
//!   `tls_listener`: its TLS accept loop (handshake timeout, the peer's certificate)
//! - `resilience`: how callers call: replicas round robin, timeout, retries within a
//!   budget (`budget`), backoff with jitter, an optional circuit breaker per callee
//!   process (`breaker`)
//! - `transport`: what unit-to-unit hops speak (HTTP/1.1 + JSON, gRPC, binary frames),
//!   each transport's client, codec and serving on the unit's one port
//! - `security`: TLS, mutual TLS and signed tokens per hop (modes, configs, tokens)

pub mod breaker;
mod budget;
pub mod client;
pub mod digest;
pub mod histogram;
pub mod host;
pub mod model;
pub mod network;
pub mod policy;
pub mod precise;
pub mod resilience;
pub mod security;
pub mod store;
mod tls_listener;
pub mod transport;
pub mod wire;
pub mod work;
