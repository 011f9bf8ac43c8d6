//! What a unit-to-unit hop speaks: the [`Transport`] of a deployment, the client a unit
//! calls through ([`UnitClient`]), and the one way a call that did not arrive as HTTP/1.1
//! reaches the unit's handlers ([`dispatch`]).
//!
//! - `http1-json`: HTTP/1.1 with JSON bodies through hyper and axum (the default, and what
//!   the driver always speaks to an entry unit, as an external client reaches a gateway);
//! - `grpc`: gRPC (HTTP/2, protobuf messages) through tonic and prost ([`grpc`]);
//! - `binary`: length-prefixed postcard frames over one multiplexed TCP connection per
//!   caller–callee pair, with request ids ([`binary`]): the leanest RPC a team could write.
//!
//! A unit serves every transport on its one port: gRPC's HTTP/2 preface and the binary
//! transport's magic are told apart from HTTP/1.1 when a connection opens. Whatever the
//! transport, a call is an operation or state path, a body in the transport's [`codec`],
//! and a reply carrying status, hops, retries, digest and the blamed unit; those reach the
//! same handlers, token check and fault injection as an HTTP call, so digests and hop
//! counts cannot depend on the transport.

pub mod binary;
pub mod codec;
pub mod grpc;
pub mod sniff;

use crate::client::{hops_from_headers, retries_from_headers, CallError, HttpClient, Reply};
use crate::model::Endpoint;
use crate::network::NetworkModel;
use crate::security::{Credentials, SecurityError};
use crate::wire::{Hops, DIGEST_HEADER, FAILED_UNIT_HEADER};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

pub use codec::Codec;

/// What every unit-to-unit hop of a deployment speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Transport {
    /// HTTP/1.1 with JSON bodies (the default).
    #[default]
    Http1Json,
    /// gRPC: HTTP/2 with protobuf messages (tonic, prost).
    Grpc,
    /// Length-prefixed postcard frames over one multiplexed connection per pair.
    Binary,
}

impl Transport {
    pub const ALL: [Transport; 3] = [Transport::Http1Json, Transport::Grpc, Transport::Binary];

    pub fn name(self) -> &'static str {
        match self {
            Transport::Http1Json => "http1-json",
            Transport::Grpc => "grpc",
            Transport::Binary => "binary",
        }
    }

    /// How it is described in reports: `HTTP/1.1 + JSON`.
    pub fn describe(self) -> &'static str {
        match self {
            Transport::Http1Json => "HTTP/1.1 + JSON (hyper, axum)",
            Transport::Grpc => "gRPC: HTTP/2 + protobuf (tonic, prost)",
            Transport::Binary => {
                "binary: length-prefixed postcard frames, one multiplexed TCP connection per pair"
            }
        }
    }

    /// Its short name in sentences: `HTTP/1.1 + JSON`, `gRPC`, `binary frames`.
    pub fn title(self) -> &'static str {
        match self {
            Transport::Http1Json => "HTTP/1.1 + JSON",
            Transport::Grpc => "gRPC",
            Transport::Binary => "binary frames",
        }
    }

    /// The encoding of its bodies.
    pub fn codec(self) -> Codec {
        match self {
            Transport::Http1Json => Codec::Json,
            Transport::Grpc => Codec::Protobuf,
            Transport::Binary => Codec::Postcard,
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Transport {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Transport::ALL
            .into_iter()
            .find(|t| t.name() == text.trim())
            .ok_or_else(|| {
                let names: Vec<&str> = Transport::ALL.iter().map(|t| t.name()).collect();
                format!("unknown transport '{text}': one of {}", names.join(", "))
            })
    }
}

impl Serialize for Transport {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Transport {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A call as the non-HTTP/1.1 transports carry it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Call {
    /// The operation's or state's path (`/op/checkout`, `/get`).
    pub path: String,
    /// The bearer token for this call, under a token mode.
    pub token: Option<String>,
    /// The request body in the transport's codec.
    pub body: Bytes,
}

/// A reply as the non-HTTP/1.1 transports carry it: what an HTTP reply's status, hop,
/// retry, digest and failed-unit headers say, and its body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallReply {
    pub status: u16,
    pub hops: Hops,
    pub retries: u32,
    pub digest: Option<String>,
    pub failed_unit: Option<String>,
    pub body: Bytes,
}

impl CallReply {
    /// A reply made by the transport itself (the handler was never reached).
    pub fn failure(status: u16, message: String) -> Self {
        CallReply {
            status,
            hops: Hops::default(),
            retries: 0,
            digest: None,
            failed_unit: None,
            body: Bytes::from(message),
        }
    }

    /// The caller's view: a [`Reply`] for a 200, the [`CallError::Status`] otherwise.
    pub fn into_result(self, addr: &str) -> Result<Reply, CallError> {
        if self.status != 200 {
            return Err(CallError::Status {
                addr: addr.to_string(),
                status: self.status,
                body: String::from_utf8_lossy(&self.body)
                    .chars()
                    .take(300)
                    .collect(),
                failed_unit: self.failed_unit,
                hops: self.hops,
                retries: self.retries,
            });
        }
        Ok(Reply {
            downstream_hops: self.hops,
            downstream_retries: self.retries,
            digest: self.digest,
            body: self.body,
        })
    }
}

/// Hands `call` to a unit's handlers (`app`, with its token check and fault injection)
/// as the HTTP request it stands for, and the handlers' response back as a reply. `peer`:
/// the caller's TLS identity, for the token check under mutual TLS.
pub async fn dispatch(
    app: axum::Router,
    call: Call,
    codec: Codec,
    peer: Option<crate::host::TlsPeer>,
) -> CallReply {
    use tower::ServiceExt as _;
    let mut request = axum::http::Request::post(call.path.as_str())
        .header(axum::http::header::CONTENT_TYPE, codec.content_type());
    if let Some(token) = &call.token {
        request = request.header(axum::http::header::AUTHORIZATION, format!("Bearer {token}"));
    }
    if let Some(peer) = peer {
        request = request.extension(axum::extract::ConnectInfo(peer));
    }
    let request = match request.body(axum::body::Body::from(call.body)) {
        Ok(request) => request,
        Err(error) => return CallReply::failure(400, format!("bad call: {error}")),
    };
    let response = match app.oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    let (parts, body) = response.into_parts();
    let body = match http_body_util::BodyExt::collect(body).await {
        Ok(collected) => collected.to_bytes(),
        Err(error) => return CallReply::failure(500, format!("reply body failed: {error}")),
    };
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    CallReply {
        status: parts.status.as_u16(),
        hops: hops_from_headers(&parts.headers),
        retries: retries_from_headers(&parts.headers),
        digest: header(DIGEST_HEADER),
        failed_unit: header(FAILED_UNIT_HEADER),
        body,
    }
}

/// The client a unit calls other units through, speaking its deployment's transport.
#[derive(Clone)]
pub enum UnitClient {
    Http1(HttpClient),
    Grpc(grpc::GrpcClient),
    Binary(binary::BinaryClient),
}

impl From<HttpClient> for UnitClient {
    fn from(client: HttpClient) -> Self {
        UnitClient::Http1(client)
    }
}

impl UnitClient {
    /// A client speaking `transport`, under `security` (plaintext without it).
    pub fn new(
        transport: Transport,
        timeout: Duration,
        security: Option<&Credentials>,
        keepalive: bool,
    ) -> Result<Self, SecurityError> {
        Ok(match transport {
            Transport::Http1Json => {
                UnitClient::Http1(HttpClient::secured(timeout, security, keepalive)?)
            }
            Transport::Grpc => {
                UnitClient::Grpc(grpc::GrpcClient::new(timeout, security, keepalive)?)
            }
            Transport::Binary => {
                UnitClient::Binary(binary::BinaryClient::new(timeout, security, keepalive)?)
            }
        })
    }

    /// What its calls speak.
    pub fn transport(&self) -> Transport {
        match self {
            UnitClient::Http1(_) => Transport::Http1Json,
            UnitClient::Grpc(_) => Transport::Grpc,
            UnitClient::Binary(_) => Transport::Binary,
        }
    }

    /// Calls `path` on `to` with `body` (in this transport's codec) across `network`: the
    /// request waits one sampled one-way delay before it leaves and the reply another
    /// before it is returned; the timeout covers both.
    pub async fn post_across(
        &self,
        network: &NetworkModel,
        to: &Endpoint,
        path: &str,
        body: Bytes,
    ) -> Result<Reply, CallError> {
        match self {
            UnitClient::Http1(client) => client.post_across(network, to, path, body).await,
            UnitClient::Grpc(client) => client.post_across(network, to, path, body).await,
            UnitClient::Binary(client) => client.post_across(network, to, path, body).await,
        }
    }
}

/// The token for a call to `to`'s unit at `path`, under a token mode (shared by every
/// transport's client).
pub(crate) fn call_token(
    token: Option<&(crate::security::TokenKey, String)>,
    to: &Endpoint,
    path: &str,
) -> Option<String> {
    let (key, caller) = token?;
    let callee = crate::model::unit_of_process(&to.unit);
    Some(key.sign(
        caller,
        callee,
        path,
        crate::security::unix_now() + crate::security::TOKEN_LIFETIME_S,
    ))
}

/// Runs `exchange` across `network` within `timeout`: one sampled one-way delay before
/// it and one after (shared by every transport's client).
pub(crate) async fn across<F>(
    network: &NetworkModel,
    timeout: Duration,
    addr: &str,
    exchange: F,
) -> Result<Reply, CallError>
where
    F: std::future::Future<Output = Result<Reply, CallError>>,
{
    let round_trip = async {
        network.delay_message().await;
        let reply = exchange.await;
        network.delay_message().await;
        reply
    };
    match tokio::time::timeout(timeout, round_trip).await {
        Ok(result) => result,
        Err(_) => Err(CallError::Timeout {
            addr: addr.to_string(),
            timeout,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transports_parse_by_name_and_name_the_choices_otherwise() {
        for t in Transport::ALL {
            assert_eq!(t.name().parse::<Transport>(), Ok(t));
        }
        let error = "http3".parse::<Transport>().unwrap_err();
        assert!(error.contains("http1-json, grpc, binary"), "{error}");
        assert_eq!(Transport::default(), Transport::Http1Json);
    }
}
