//! The `grpc` transport: every unit-to-unit call is the unary gRPC method
//! [`CALL_PATH`] over HTTP/2 (cleartext with prior knowledge, or TLS with ALPN `h2`),
//! through tonic with prost's codec. Its request carries the operation or state path and
//! the protobuf-encoded body; its reply the status, hops, retries, digest and blamed unit
//! a failed or successful call reports (so a failed operation is an OK gRPC call whose
//! reply says 502, as the HTTP/1.1 transport's is a 502 with headers). A token travels in
//! the call's `authorization` metadata. Callers share one HTTP/2 connection per callee
//! address (hyper's pool), multiplexing their calls over it.

use super::{Call, CallReply, Codec, Handlers};
use crate::client::{
    across, call_token, caller_token, connector, pooled, CallerToken, Connector, Http,
};
use crate::client::{CallError, Reply};
use crate::model::Endpoint;
use crate::network::NetworkModel;
use crate::security::{Credentials, SecurityError};
use crate::tls_listener::TlsPeer;
use crate::wire::Hops;
use bytes::Bytes;
use futures_util::future::BoxFuture;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::convert::Infallible;
use std::task::{Context, Poll};
use std::time::Duration;
use tonic_prost::ProstCodec;

/// The one gRPC method units serve to each other.
pub const CALL_PATH: &str = "/grain.v1.Unit/Call";

/// `grain.v1.CallRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct CallRequest {
    #[prost(string, tag = "1")]
    pub path: String,
    #[prost(bytes = "bytes", tag = "2")]
    pub body: Bytes,
}

/// `grain.v1.CallReply`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct CallReplyMessage {
    #[prost(uint32, tag = "1")]
    pub status: u32,
    #[prost(uint32, tag = "2")]
    pub service_hops: u32,
    #[prost(uint32, tag = "3")]
    pub state_hops: u32,
    #[prost(uint32, tag = "4")]
    pub retries: u32,
    #[prost(string, optional, tag = "5")]
    pub digest: Option<String>,
    #[prost(string, optional, tag = "6")]
    pub failed_unit: Option<String>,
    #[prost(bytes = "bytes", tag = "7")]
    pub body: Bytes,
}

impl From<CallReply> for CallReplyMessage {
    fn from(reply: CallReply) -> Self {
        CallReplyMessage {
            status: u32::from(reply.status),
            service_hops: reply.hops.service,
            state_hops: reply.hops.state,
            retries: reply.retries,
            digest: reply.digest,
            failed_unit: reply.failed_unit,
            body: reply.body,
        }
    }
}

impl From<CallReplyMessage> for CallReply {
    fn from(m: CallReplyMessage) -> Self {
        CallReply {
            status: u16::try_from(m.status).unwrap_or(500),
            hops: Hops {
                service: m.service_hops,
                state: m.state_hops,
            },
            retries: m.retries,
            digest: m.digest,
            failed_unit: m.failed_unit,
            body: m.body,
        }
    }
}

/// The unit's gRPC endpoint, mounted at [`CALL_PATH`] beside its HTTP routes: decodes a
/// call with tonic and hands it to the unit's handlers (with their token check and faults).
#[derive(Clone)]
pub struct GrpcEndpoint {
    handlers: Handlers,
}

impl GrpcEndpoint {
    pub fn new(handlers: Handlers) -> Self {
        GrpcEndpoint { handlers }
    }
}

impl tower::Service<axum::extract::Request> for GrpcEndpoint {
    type Response = axum::response::Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: axum::extract::Request) -> Self::Future {
        let peer = request
            .extensions()
            .get::<axum::extract::ConnectInfo<TlsPeer>>()
            .map(|info| info.0.clone());
        let calls = UnitCalls {
            handlers: self.handlers.clone(),
            peer,
        };
        Box::pin(async move {
            let codec = ProstCodec::<CallReplyMessage, CallRequest>::default();
            let response = tonic::server::Grpc::new(codec).unary(calls, request).await;
            Ok(response.map(axum::body::Body::new))
        })
    }
}

struct UnitCalls {
    handlers: Handlers,
    peer: Option<TlsPeer>,
}

impl tonic::server::UnaryService<CallRequest> for UnitCalls {
    type Response = CallReplyMessage;
    type Future = BoxFuture<'static, Result<tonic::Response<CallReplyMessage>, tonic::Status>>;

    fn call(&mut self, request: tonic::Request<CallRequest>) -> Self::Future {
        let token = request
            .metadata()
            .get("authorization")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::to_string);
        let traceparent = request
            .metadata()
            .get(crate::trace::TRACEPARENT)
            .and_then(|value| value.to_str().ok())
            .map(str::to_string);
        let message = request.into_inner();
        let call = Call {
            path: message.path,
            token,
            traceparent,
            body: message.body,
        };
        let (handlers, peer) = (self.handlers.clone(), self.peer.clone());
        Box::pin(async move {
            let reply = handlers.call(call, Codec::Protobuf, peer).await;
            Ok(tonic::Response::new(CallReplyMessage::from(reply)))
        })
    }
}

/// The `grpc` transport's caller side; cheap to clone.
#[derive(Clone)]
pub struct GrpcClient {
    http: Client<Connector, tonic::body::Body>,
    scheme: &'static str,
    timeout: Duration,
    token: CallerToken,
}

impl GrpcClient {
    pub fn new(
        timeout: Duration,
        security: Option<&Credentials>,
        keepalive: bool,
    ) -> Result<Self, SecurityError> {
        let http = pooled(Client::builder(TokioExecutor::new()), keepalive)
            .http2_only(true)
            .build(connector(security, Http::Two)?);
        let token = caller_token(security)?;
        Ok(GrpcClient {
            http,
            scheme: security
                .map_or(crate::security::SecurityMode::None, |c| c.mode)
                .scheme(),
            timeout,
            token,
        })
    }

    /// Calls `path` on `to` across `network` (see [`super::UnitClient::post_across`]).
    pub async fn post_across(
        &self,
        network: &NetworkModel,
        to: &Endpoint,
        path: &str,
        body: Bytes,
    ) -> Result<Reply, CallError> {
        let token = call_token(self.token.as_deref(), to, path);
        let request = CallRequest {
            path: path.to_string(),
            body,
        };
        across(
            network,
            self.timeout,
            &to.addr,
            self.exchange(&to.addr, request, token),
        )
        .await
    }

    async fn exchange(
        &self,
        addr: &str,
        message: CallRequest,
        token: Option<String>,
    ) -> Result<Reply, CallError> {
        let io_error = |detail: String| CallError::Io {
            addr: addr.to_string(),
            detail,
        };
        let origin = format!("{}://{addr}", self.scheme)
            .parse()
            .map_err(|e| io_error(format!("bad address: {e}")))?;
        let mut grpc = tonic::client::Grpc::with_origin(self.http.clone(), origin);
        grpc.ready()
            .await
            .map_err(|e| io_error(format!("not ready: {e}")))?;
        let mut request = tonic::Request::new(message);
        if let Some(token) = token {
            let value = format!("Bearer {token}")
                .parse()
                .map_err(|e| io_error(format!("token is not metadata: {e}")))?;
            request.metadata_mut().insert("authorization", value);
        }
        if let Some(traceparent) = crate::trace::outgoing() {
            let value = traceparent
                .parse()
                .map_err(|e| io_error(format!("traceparent is not metadata: {e}")))?;
            request
                .metadata_mut()
                .insert(crate::trace::TRACEPARENT, value);
        }
        let path = http::uri::PathAndQuery::from_static(CALL_PATH);
        let codec = ProstCodec::<CallRequest, CallReplyMessage>::default();
        match grpc.unary(request, path, codec).await {
            Ok(response) => CallReply::from(response.into_inner()).into_result(addr),
            Err(status) => Err(classify(addr, &status)),
        }
    }
}

/// A failed gRPC call as the callers' policy sees it: refused when no connection could
/// be made (nothing was sent), an I/O failure otherwise.
fn classify(addr: &str, status: &tonic::Status) -> CallError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(status);
    while let Some(error) = source {
        if let Some(e) = error.downcast_ref::<hyper_util::client::legacy::Error>() {
            if e.is_connect() {
                return CallError::Connect {
                    addr: addr.to_string(),
                    detail: status.message().to_string(),
                };
            }
        }
        source = error.source();
    }
    CallError::Io {
        addr: addr.to_string(),
        detail: format!("gRPC {:?}: {}", status.code(), status.message()),
    }
}
