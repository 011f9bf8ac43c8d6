//! What a unit-to-unit hop speaks: the [`Transport`] of a deployment, the client a unit
//! calls through ([`UnitClient`]), and the one way a call that did not arrive as HTTP/1.1
//! reaches the unit's handlers ([`Handlers`]).
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
//! same handlers, token check and fault injection as an HTTP call (directly, without an
//! HTTP request: [`handlers`]), so digests and hop counts cannot depend on the transport.

pub mod binary;
pub mod codec;
pub mod grpc;
pub mod handlers;
pub mod sniff;

use crate::client::{CallError, HttpClient, Reply};
use crate::model::Endpoint;
use crate::network::NetworkModel;
use crate::security::{Credentials, SecurityError};
use crate::wire::Hops;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::time::Duration;

pub use crate::modes::Transport;
pub use codec::Codec;
pub use handlers::{DirectCalls, Handlers};

impl Transport {
    /// The encoding of its bodies.
    pub fn codec(self) -> Codec {
        match self {
            Transport::Http1Json => Codec::Json,
            Transport::Grpc => Codec::Protobuf,
            Transport::Binary => Codec::Postcard,
        }
    }
}

/// A call as the non-HTTP/1.1 transports carry it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Call {
    /// The operation's or state's path (`/op/checkout`, `/get`).
    pub path: String,
    /// The bearer token for this call, under a token mode.
    pub token: Option<String>,
    /// The W3C `traceparent` of a traced call.
    pub traceparent: Option<String>,
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
    /// A plain 200 carrying `body`, no hops, digest or blame (a state unit's answer).
    pub fn ok(body: Bytes) -> Self {
        CallReply {
            body,
            ..CallReply::failure(200, String::new())
        }
    }

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
            // Boxed: tonic's call is several KB of state, and unboxed it would make every
            // transport's call future (and each one around it) as large, moved by copying.
            UnitClient::Grpc(client) => Box::pin(client.post_across(network, to, path, body)).await,
            UnitClient::Binary(client) => client.post_across(network, to, path, body).await,
        }
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

/// Transport tests on real loopback sockets: a unit's handlers served by [`crate::host`]'s
/// listeners, called through each transport's client.
#[cfg(test)]
mod wire_tests {
    use super::*;
    use crate::wire::{DIGEST_HEADER, FAILED_UNIT_HEADER, SERVICE_HOPS_HEADER, STATE_HOPS_HEADER};
    use axum::routing::post;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// `/op/ok` echoes its body with a digest and hops; `/op/fail` is a 502 blaming `deep`
    /// after 2 service hops; `/op/slow` answers after 300 ms.
    fn handlers() -> axum::Router {
        axum::Router::new()
            .route(
                "/op/ok",
                post(|body: Bytes| async move {
                    (
                        [
                            (DIGEST_HEADER, "00ab"),
                            (SERVICE_HOPS_HEADER, "3"),
                            (STATE_HOPS_HEADER, "1"),
                        ],
                        body,
                    )
                }),
            )
            .route(
                "/op/fail",
                post(|| async {
                    (
                        axum::http::StatusCode::BAD_GATEWAY,
                        [(FAILED_UNIT_HEADER, "deep"), (SERVICE_HOPS_HEADER, "2")],
                        "unit mid: deep failed",
                    )
                }),
            )
            .route(
                "/op/slow",
                post(|| async {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    "late"
                }),
            )
    }

    /// Serves `handlers()` on loopback as a unit speaking `transport` does; the address
    /// and the count of TCP connections accepted.
    async fn serve(transport: Transport) -> (String, Arc<AtomicUsize>) {
        let (addr, accepted, _) = serve_counting(transport).await;
        (addr, accepted)
    }

    /// [`serve`], with the count of connections still open too.
    async fn serve_counting(transport: Transport) -> (String, Arc<AtomicUsize>, Arc<AtomicUsize>) {
        let listener = crate::listen::bind_loopback().unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let accepted = Arc::new(AtomicUsize::new(0));
        let open = Arc::new(AtomicUsize::new(0));
        let (counted, still_open) = (accepted.clone(), open.clone());
        let (_stop_tx, stop) = tokio::sync::watch::channel(false);
        let app = handlers();
        tokio::spawn(async move {
            let _keep = _stop_tx;
            loop {
                let (mut tcp, _) = listener.accept().await.unwrap();
                counted.fetch_add(1, Ordering::SeqCst);
                still_open.fetch_add(1, Ordering::SeqCst);
                let (app, stop, still_open) = (app.clone(), stop.clone(), still_open.clone());
                tokio::spawn(async move {
                    match transport {
                        Transport::Binary => {
                            use tokio::io::AsyncReadExt as _;
                            let mut magic = [0u8; 4];
                            tcp.read_exact(&mut magic).await.unwrap();
                            assert_eq!(&magic, binary::MAGIC);
                            binary::serve_connection(tcp, Handlers::router(app), None, stop).await;
                        }
                        _ => {
                            let app = app.route_service(
                                grpc::CALL_PATH,
                                grpc::GrpcEndpoint::new(Handlers::router(handlers())),
                            );
                            let service = hyper_util::service::TowerToHyperService::new(app);
                            let _ = hyper_util::server::conn::auto::Builder::new(
                                hyper_util::rt::TokioExecutor::new(),
                            )
                            .serve_connection(hyper_util::rt::TokioIo::new(tcp), service)
                            .await;
                        }
                    }
                    still_open.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        (addr, accepted, open)
    }

    fn endpoint(addr: &str) -> Endpoint {
        Endpoint {
            unit: "callee".into(),
            addr: addr.into(),
        }
    }

    const NON_HTTP: [Transport; 2] = [Transport::Grpc, Transport::Binary];

    #[tokio::test]
    async fn a_reply_carries_body_digest_and_hops_and_a_failure_its_blame() {
        for transport in NON_HTTP {
            let (addr, _) = serve(transport).await;
            let client = UnitClient::new(transport, Duration::from_secs(2), None, true).unwrap();
            let net = NetworkModel::loopback();
            let body = Bytes::from_static(b"payload");
            let reply = client
                .post_across(&net, &endpoint(&addr), "/op/ok", body.clone())
                .await
                .unwrap();
            assert_eq!(reply.body, body, "{transport}");
            assert_eq!(reply.digest.as_deref(), Some("00ab"));
            assert_eq!(
                reply.downstream_hops,
                Hops {
                    service: 3,
                    state: 1
                }
            );
            match client
                .post_across(&net, &endpoint(&addr), "/op/fail", Bytes::new())
                .await
            {
                Err(CallError::Status {
                    status,
                    failed_unit,
                    hops,
                    ..
                }) => {
                    assert_eq!(status, 502, "{transport}");
                    assert_eq!(failed_unit.as_deref(), Some("deep"));
                    assert_eq!(
                        hops,
                        Hops {
                            service: 2,
                            state: 0
                        }
                    );
                }
                other => panic!("{transport}: {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn concurrent_calls_share_one_connection() {
        for transport in NON_HTTP {
            let (addr, accepted) = serve(transport).await;
            let client = UnitClient::new(transport, Duration::from_secs(5), None, true).unwrap();
            let net = NetworkModel::loopback();
            let to = endpoint(&addr);
            // One call first, so the connection exists before the burst.
            client
                .post_across(&net, &to, "/op/ok", Bytes::new())
                .await
                .unwrap();
            let calls = (0..50u32).map(|i| {
                let (client, net, to) = (client.clone(), net.clone(), to.clone());
                async move {
                    let body = Bytes::from(i.to_string());
                    let reply = client.post_across(&net, &to, "/op/ok", body.clone()).await;
                    (body, reply)
                }
            });
            for (body, reply) in futures_util::future::join_all(calls).await {
                assert_eq!(
                    reply.unwrap().body,
                    body,
                    "{transport}: replies match their calls"
                );
            }
            assert_eq!(accepted.load(Ordering::SeqCst), 1, "{transport}");
        }
    }

    #[tokio::test]
    async fn a_refused_connection_is_a_connect_error_and_a_late_reply_a_timeout() {
        let closed = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().to_string()
        };
        for transport in NON_HTTP {
            let client =
                UnitClient::new(transport, Duration::from_millis(100), None, true).unwrap();
            let net = NetworkModel::loopback();
            let refused = client
                .post_across(&net, &endpoint(&closed), "/op/ok", Bytes::new())
                .await;
            assert!(
                matches!(refused, Err(CallError::Connect { .. })),
                "{transport}: {refused:?}"
            );
            let (addr, _) = serve(transport).await;
            let late = client
                .post_across(&net, &endpoint(&addr), "/op/slow", Bytes::new())
                .await;
            assert!(
                matches!(late, Err(CallError::Timeout { .. })),
                "{transport}: {late:?}"
            );
            // The connection outlives a timed-out call.
            let reply = client
                .post_across(&net, &endpoint(&addr), "/op/ok", Bytes::from_static(b"x"))
                .await
                .unwrap();
            assert_eq!(reply.body, Bytes::from_static(b"x"));
        }
        let binary = binary::BinaryClient::new(Duration::from_millis(100), None, true).unwrap();
        let (addr, _) = serve(Transport::Binary).await;
        let late = binary
            .post_across(
                &NetworkModel::loopback(),
                &endpoint(&addr),
                "/op/slow",
                Bytes::new(),
            )
            .await;
        assert!(matches!(late, Err(CallError::Timeout { .. })));
        assert_eq!(
            binary.pending_calls(),
            0,
            "a timed-out call leaves no reply slot"
        );
    }

    #[tokio::test]
    async fn without_keepalive_each_call_opens_a_connection_and_closes_it() {
        let (addr, accepted, open) = serve_counting(Transport::Binary).await;
        let client = binary::BinaryClient::new(Duration::from_secs(2), None, false).unwrap();
        let net = NetworkModel::loopback();
        for _ in 0..20 {
            client
                .post_across(&net, &endpoint(&addr), "/op/ok", Bytes::new())
                .await
                .unwrap();
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 20, "a connection per call");
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while open.load(Ordering::SeqCst) > 0 && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(
            open.load(Ordering::SeqCst),
            0,
            "every connection was closed"
        );
    }
}

/// A call's future is moved by copying at each layer that wraps it (the transport's
/// dispatch, the policy's attempt and its span, the operation that makes the call, the
/// handler that serves it), so its size is paid on every hop. One transport's large state
/// (tonic's call, 6 KB; a binary connection's opening, 3 KB) made every transport's call
/// 6.3 KB and the policy's 20 KB; those parts are boxed, and this keeps them so.
#[cfg(test)]
mod call_size {
    use super::*;

    #[tokio::test]
    async fn a_call_s_future_stays_small_in_every_transport() {
        let network = NetworkModel::loopback();
        let to = Endpoint {
            unit: "callee".into(),
            addr: "127.0.0.1:1".into(),
        };
        let replicas = [to.clone()];
        for transport in Transport::ALL {
            let client = UnitClient::new(transport, Duration::from_secs(1), None, true).unwrap();
            let call = client.post_across(&network, &to, "/op/x", Bytes::new());
            let dispatched = std::mem::size_of_val(&call);
            let caller = crate::resilience::Caller::new(client.clone(), Default::default());
            let attempt = caller.call(
                &network,
                "callee",
                &replicas,
                "/op/x",
                Bytes::new(),
                Hops::default(),
            );
            let policed = std::mem::size_of_val(&attempt);
            assert!(
                dispatched <= 3 * 1024,
                "{transport:?}: a call's future is {dispatched} bytes"
            );
            assert!(
                policed <= 7 * 1024,
                "{transport:?}: a policed call's future is {policed} bytes"
            );
        }
    }
}
