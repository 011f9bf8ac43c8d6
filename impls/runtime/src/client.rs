//! The HTTP client units and the harness use: hyper over pooled loopback connections,
//! returning status, hop counts and digest of each reply. A client given a network model
//! delays each request before it leaves and each reply before it is handed back.

use crate::network::NetworkModel;
use crate::wire::{Hops, DIGEST_HEADER, SERVICE_HOPS_HEADER, STATE_HOPS_HEADER};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{HeaderMap, Method, Request, StatusCode};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use std::sync::Arc;
use std::time::Duration;

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
    },
    #[error("request to {addr} failed: {detail}")]
    Io { addr: String, detail: String },
}

/// A successful reply.
#[derive(Debug, Clone)]
pub struct Reply {
    /// Hops the callee made downstream (not counting the hop that reached it).
    pub downstream_hops: Hops,
    pub digest: Option<String>,
    pub body: Bytes,
}

/// Pooled HTTP/1.1 client; cheap to clone.
#[derive(Clone)]
pub struct HttpClient {
    inner: Client<HttpConnector, Full<Bytes>>,
    timeout: Duration,
    network: Arc<NetworkModel>,
}

impl HttpClient {
    pub fn new(timeout: Duration) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let inner = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(usize::MAX)
            .build(connector);
        HttpClient {
            inner,
            timeout,
            network: Arc::new(NetworkModel::loopback()),
        }
    }

    /// The same client with every POST crossing `network` (both ways).
    pub fn with_network(mut self, network: NetworkModel) -> Self {
        self.network = Arc::new(network);
        self
    }

    /// POSTs `body` to `http://{addr}{path}` across this client's network; any status but
    /// 200 is an error.
    pub async fn post(&self, addr: &str, path: &str, body: Bytes) -> Result<Reply, CallError> {
        self.post_across(&self.network, addr, path, body).await
    }

    /// POSTs across `network`: the request waits one sampled one-way delay before it
    /// leaves and the reply another before it is returned; the timeout covers both.
    pub async fn post_across(
        &self,
        network: &NetworkModel,
        addr: &str,
        path: &str,
        body: Bytes,
    ) -> Result<Reply, CallError> {
        let request = Request::builder()
            .method(Method::POST)
            .uri(format!("http://{addr}{path}"))
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(body))
            .map_err(|e| CallError::Io {
                addr: addr.to_string(),
                detail: e.to_string(),
            })?;
        let round_trip = async {
            network.delay_message().await;
            let reply = self.exchange(addr, request).await;
            network.delay_message().await;
            reply
        };
        match tokio::time::timeout(self.timeout, round_trip).await {
            Ok(result) => result,
            Err(_) => Err(CallError::Timeout {
                addr: addr.to_string(),
                timeout: self.timeout,
            }),
        }
    }

    /// GETs `http://{addr}{path}` and returns its status (used for readiness checks).
    pub async fn get_status(&self, addr: &str, path: &str) -> Result<StatusCode, CallError> {
        let request = Request::builder()
            .uri(format!("http://{addr}{path}"))
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
            });
        }
        Ok(Reply {
            downstream_hops: hops_from_headers(&parts.headers),
            digest: header_str(&parts.headers, DIGEST_HEADER).map(str::to_string),
            body,
        })
    }
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

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|value| value.to_str().ok())
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
