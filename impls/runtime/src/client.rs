//! The HTTP client units and the harness use: hyper over pooled loopback connections,
//! returning status, hop counts and digest of each reply. A client given a network model
//! delays each request before it leaves and each reply before it is handed back.

use crate::model::Endpoint;
use crate::network::NetworkModel;
use crate::security::{
    client_config, unix_now, Credentials, SecurityError, SecurityMode, TokenKey, TOKEN_LIFETIME_S,
};
use crate::wire::{
    Hops, DIGEST_HEADER, FAILED_UNIT_HEADER, RETRIES_HEADER, SERVICE_HOPS_HEADER, STATE_HOPS_HEADER,
};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Uri;
use hyper::{HeaderMap, Method, Request, StatusCode};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder, MaybeHttpsStream};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

/// What a connector's failure is, as hyper-util takes it.
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why a call failed, by class (the driver counts errors per class).
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("cannot connect to {addr}: {detail}")]
    Connect { addr: String, detail: String },
    #[error("no reply from {addr} within {timeout:?}")]
    Timeout { addr: String, timeout: Duration },
    #[error("{addr} answered HTTP {status}: {body}")]
    Status {
        addr: String,
        status: u16,
        body: String,
        /// The process the reply blames ([`FAILED_UNIT_HEADER`]), when it names one.
        failed_unit: Option<String>,
        /// Hops the callee made downstream before it failed (its hop headers; none: 0).
        hops: Hops,
        /// Retries the callee and its callees made before it failed.
        retries: u32,
    },
    #[error("request to {addr} failed: {detail}")]
    Io { addr: String, detail: String },
}

impl CallError {
    /// Its class in a word (a failed span's `error.type`): `connect`, `timeout`,
    /// `status-503`, `io`.
    pub fn class(&self) -> String {
        match self {
            CallError::Connect { .. } => "connect".into(),
            CallError::Timeout { .. } => "timeout".into(),
            CallError::Status { status, .. } => format!("status-{status}"),
            CallError::Io { .. } => "io".into(),
        }
    }
}

/// A successful reply.
#[derive(Debug, Clone)]
pub struct Reply {
    /// Hops the callee made downstream (not counting the hop that reached it).
    pub downstream_hops: Hops,
    /// Retries the callee and its callees made for it.
    pub downstream_retries: u32,
    pub digest: Option<String>,
    pub body: Bytes,
}

/// Pooled HTTP/1.1 client, plaintext or over the run's TLS; cheap to clone.
#[derive(Clone)]
pub struct HttpClient {
    inner: Client<Connector, Full<Bytes>>,
    timeout: Duration,
    network: Arc<NetworkModel>,
    mode: SecurityMode,
    /// With tokens: the key and the identity every call's token names as its caller.
    token: CallerToken,
}

impl HttpClient {
    /// A plaintext client with keep-alive.
    pub fn new(timeout: Duration) -> Self {
        Self::build(timeout, None, true).expect("a plaintext client needs no credentials")
    }

    /// A client speaking `security`'s mode (plaintext without it); with `keepalive` off,
    /// every call opens a connection of its own (and pays its handshake).
    pub fn secured(
        timeout: Duration,
        security: Option<&Credentials>,
        keepalive: bool,
    ) -> Result<Self, SecurityError> {
        Self::build(timeout, security, keepalive)
    }

    fn build(
        timeout: Duration,
        security: Option<&Credentials>,
        keepalive: bool,
    ) -> Result<Self, SecurityError> {
        let inner = pooled(Client::builder(TokioExecutor::new()), keepalive)
            .build(connector(security, Http::One)?);
        Ok(HttpClient {
            inner,
            timeout,
            network: Arc::new(NetworkModel::loopback()),
            mode: security.map_or(SecurityMode::None, |c| c.mode),
            token: caller_token(security)?,
        })
    }

    fn url(&self, addr: &str, path: &str) -> String {
        format!("{}://{addr}{path}", self.mode.scheme())
    }

    /// The same client with every POST crossing `network` (both ways).
    pub fn with_network(mut self, network: NetworkModel) -> Self {
        self.network = Arc::new(network);
        self
    }

    /// POSTs `body` to `http://{to.addr}{path}` across this client's network; any status
    /// but 200 is an error. A token, if any, is for `to`'s unit and `path` alone.
    pub async fn post(&self, to: &Endpoint, path: &str, body: Bytes) -> Result<Reply, CallError> {
        self.post_across(&self.network, to, path, body).await
    }

    /// POSTs across `network`: the request waits one sampled one-way delay before it
    /// leaves and the reply another before it is returned; the timeout covers both.
    pub async fn post_across(
        &self,
        network: &NetworkModel,
        to: &Endpoint,
        path: &str,
        body: Bytes,
    ) -> Result<Reply, CallError> {
        let addr = to.addr.as_str();
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(self.url(addr, path))
            .header(hyper::header::CONTENT_TYPE, "application/json");
        if let Some(signed) = call_token(self.token.as_deref(), to, path) {
            request = request.header(hyper::header::AUTHORIZATION, format!("Bearer {signed}"));
        }
        if let Some(traceparent) = crate::trace::outgoing() {
            request = request.header(crate::trace::TRACEPARENT, traceparent);
        }
        let request = request.body(Full::new(body)).map_err(|e| CallError::Io {
            addr: addr.to_string(),
            detail: e.to_string(),
        })?;
        across(network, self.timeout, addr, self.exchange(addr, request)).await
    }

    /// GETs `http://{addr}{path}` and returns its status (used for readiness checks).
    pub async fn get_status(&self, addr: &str, path: &str) -> Result<StatusCode, CallError> {
        let request = Request::builder()
            .uri(self.url(addr, path))
            .body(Full::new(Bytes::new()))
            .map_err(|e| CallError::Io {
                addr: addr.to_string(),
                detail: e.to_string(),
            })?;
        let call = self.inner.request(request);
        match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(response)) => Ok(response.status()),
            Ok(Err(e)) => Err(classify(addr, &e)),
            Err(_) => Err(CallError::Timeout {
                addr: addr.to_string(),
                timeout: self.timeout,
            }),
        }
    }

    async fn exchange(
        &self,
        addr: &str,
        request: Request<Full<Bytes>>,
    ) -> Result<Reply, CallError> {
        let response = self
            .inner
            .request(request)
            .await
            .map_err(|e| classify(addr, &e))?;
        let (parts, body) = response.into_parts();
        let body = body
            .collect()
            .await
            .map_err(|e| CallError::Io {
                addr: addr.to_string(),
                detail: e.to_string(),
            })?
            .to_bytes();
        if parts.status != StatusCode::OK {
            return Err(CallError::Status {
                addr: addr.to_string(),
                status: parts.status.as_u16(),
                body: String::from_utf8_lossy(&body).chars().take(300).collect(),
                failed_unit: header_str(&parts.headers, FAILED_UNIT_HEADER).map(str::to_string),
                hops: hops_from_headers(&parts.headers),
                retries: retries_from_headers(&parts.headers),
            });
        }
        Ok(Reply {
            downstream_hops: hops_from_headers(&parts.headers),
            downstream_retries: retries_from_headers(&parts.headers),
            digest: header_str(&parts.headers, DIGEST_HEADER).map(str::to_string),
            body,
        })
    }
}

/// Runs `exchange` across `network` within `timeout`: one sampled one-way delay before
/// it and one after (every transport's client).
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
        crate::trace::held(network.adds_delay(), network.delay_message()).await;
        let reply = exchange.await;
        crate::trace::held(network.adds_delay(), network.delay_message()).await;
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

/// Which HTTP a caller's connections speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Http {
    One,
    Two,
}

/// A caller's connector: TCP without Nagle, under TLS ([`Connector::Tls`]) or not. A
/// plaintext caller builds no TLS configuration at all: that code then never runs, nor is
/// it mapped into the unit's memory at start.
#[derive(Clone)]
pub(crate) enum Connector {
    Plain(HttpConnector),
    Tls(HttpsConnector<HttpConnector>),
}

impl tower::Service<Uri> for Connector {
    type Response = MaybeHttpsStream<TokioIo<tokio::net::TcpStream>>;
    type Error = BoxError;
    type Future = <HttpsConnector<HttpConnector> as tower::Service<Uri>>::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        match self {
            Connector::Plain(tcp) => tcp.poll_ready(cx).map_err(Into::into),
            Connector::Tls(tls) => tls.poll_ready(cx),
        }
    }

    fn call(&mut self, to: Uri) -> Self::Future {
        match self {
            Connector::Plain(tcp) => {
                let connecting = tcp.call(to);
                Box::pin(async move { Ok(MaybeHttpsStream::Http(connecting.await?)) })
            }
            Connector::Tls(tls) => tls.call(to),
        }
    }
}

/// A caller's connector under `security`'s TLS (plaintext without it), offering `http`
/// (by ALPN under TLS).
pub(crate) fn connector(
    security: Option<&Credentials>,
    http: Http,
) -> Result<Connector, SecurityError> {
    let mut tcp = HttpConnector::new();
    tcp.set_nodelay(true);
    tcp.enforce_http(false);
    let Some(credentials) = security.filter(|c| c.mode.tls()) else {
        return Ok(Connector::Plain(tcp));
    };
    let builder = HttpsConnectorBuilder::new()
        .with_tls_config((*client_config(credentials)?).clone())
        .https_or_http();
    Ok(Connector::Tls(match http {
        Http::One => builder.enable_http1().wrap_connector(tcp),
        Http::Two => builder.enable_http2().wrap_connector(tcp),
    }))
}

/// A client builder's pool: idle connections kept 30 s, or none without keep-alive.
pub(crate) fn pooled(
    mut builder: hyper_util::client::legacy::Builder,
    keepalive: bool,
) -> hyper_util::client::legacy::Builder {
    builder
        .pool_idle_timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(if keepalive { usize::MAX } else { 0 });
    builder
}

/// What a caller signs its calls' tokens with, under a token mode: the key and the
/// identity every token names as its caller.
pub(crate) type CallerToken = Option<Arc<(TokenKey, String)>>;

/// The caller's token signer under `security` (none without a token mode).
pub(crate) fn caller_token(security: Option<&Credentials>) -> Result<CallerToken, SecurityError> {
    Ok(match security {
        Some(c) => TokenKey::of(c)?.map(|key| Arc::new((key, c.identity.clone()))),
        None => None,
    })
}

/// The token for a call to `to`'s unit at `path`, under a token mode (every transport's).
pub(crate) fn call_token(
    token: Option<&(TokenKey, String)>,
    to: &Endpoint,
    path: &str,
) -> Option<String> {
    let (key, caller) = token?;
    let callee = crate::model::unit_of_process(&to.unit);
    Some(key.sign(caller, callee, path, unix_now() + TOKEN_LIFETIME_S))
}

fn classify(addr: &str, error: &hyper_util::client::legacy::Error) -> CallError {
    let detail = std::error::Error::source(error)
        .map(|source| format!("{error}: {source}"))
        .unwrap_or_else(|| error.to_string());
    if error.is_connect() {
        CallError::Connect {
            addr: addr.to_string(),
            detail,
        }
    } else {
        CallError::Io {
            addr: addr.to_string(),
            detail,
        }
    }
}

/// A reply header's value, when it is text.
pub(crate) fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

/// Reads the retries header of a reply; absent, none.
pub fn retries_from_headers(headers: &HeaderMap) -> u32 {
    header_str(headers, RETRIES_HEADER)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Reads the hop headers of a reply; absent headers count as zero hops.
pub fn hops_from_headers(headers: &HeaderMap) -> Hops {
    let read = |name| {
        header_str(headers, name)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Hops {
        service: read(SERVICE_HOPS_HEADER),
        state: read(STATE_HOPS_HEADER),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credentials(mode: SecurityMode) -> Credentials {
        Credentials {
            mode,
            run: "r".into(),
            identity: "u".into(),
            ca_pem: String::new(),
            cert_pem: String::new(),
            key_pem: String::new(),
            token_key: String::new(),
        }
    }

    /// A plaintext caller (no security, or tokens alone) builds no TLS configuration; a
    /// TLS mode does (here from empty PEMs, so it fails: it was tried).
    #[test]
    fn only_a_tls_mode_builds_a_tls_connector() {
        for security in [None, Some(credentials(SecurityMode::Token))] {
            for http in [Http::One, Http::Two] {
                let built = connector(security.as_ref(), http).expect("plaintext builds");
                assert!(matches!(built, Connector::Plain(_)), "{security:?}");
            }
        }
        for mode in [
            SecurityMode::Tls,
            SecurityMode::Mtls,
            SecurityMode::MtlsToken,
        ] {
            assert!(
                connector(Some(&credentials(mode)), Http::One).is_err(),
                "{mode:?}"
            );
        }
    }
}
