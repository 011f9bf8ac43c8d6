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
//! - `modes`: the [`modes::Transport`] a unit spec names
//! - `listen`: the sockets servers listen on (deep accept queue, no Nagle, the stop signal)
//! - `host`: serving one unit process (bind, announce, routes on stdin, graceful stop) and
//!   the layers around its handlers (span, injected fault, token check);
//!   `tls_listener`: its TLS accept loop (handshake timeout, the peer's certificate)
//! - `resilience`: how callers call: replicas round robin, timeout, retries within a
//!   budget (`budget`), backoff with jitter, an optional circuit breaker per callee
//!   process (`breaker`)
//! - `transport`: what unit-to-unit hops speak (HTTP/1.1 + JSON, gRPC, binary frames),
//!   each transport's client, codec and serving on the unit's one port, and the handlers
//!   a gRPC or binary call is served by directly
//! - `trace`: W3C trace context on every hop and OpenTelemetry spans of sampled requests,
//!   exported over OTLP/HTTP
//! - `security`: TLS, mutual TLS and signed tokens per hop (modes, configs, tokens)
//! - [`named_modes!`]: a mode enum's name in text, JSON and errors, written once

pub mod breaker;
mod budget;
pub mod client;
pub mod digest;
pub mod histogram;
pub mod host;
mod listen;
pub mod model;
pub mod modes;
pub mod network;
pub mod policy;
pub mod precise;
pub mod resilience;
pub mod security;
pub mod store;
mod tls_listener;
pub mod trace;
pub mod transport;
pub mod wire;
pub mod work;

/// Gives a mode enum with `ALL` (every mode) and `name()` (its word) the rest of its
/// text form, once: `Display` and `serde` write the name, `FromStr` and `serde` read it,
/// and an unknown word is an error naming every mode (`unknown transport 'x': one of
/// http1-json, grpc, binary`). `$what` is what a mode is called in that error.
#[macro_export]
macro_rules! named_modes {
    ($mode:ty, $what:literal) => {
        impl ::std::fmt::Display for $mode {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.name())
            }
        }

        impl ::std::str::FromStr for $mode {
            type Err = String;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                <$mode>::ALL
                    .into_iter()
                    .find(|mode| mode.name() == text.trim())
                    .ok_or_else(|| {
                        let names: Vec<&str> = <$mode>::ALL.iter().map(|m| m.name()).collect();
                        format!("unknown {} '{text}': one of {}", $what, names.join(", "))
                    })
            }
        }

        impl ::serde::Serialize for $mode {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.name())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $mode {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = <String as ::serde::Deserialize>::deserialize(d)?;
                text.parse()
                    .map_err(<D::Error as ::serde::de::Error>::custom)
            }
        }
    };
}
