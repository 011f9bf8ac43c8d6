//! The run's own OTLP/HTTP receiver on loopback: units export their spans to it (protobuf,
//! `POST /v1/traces`), the driver adds its own, and every batch is
//! - written to `traces.jsonl` as one OTLP JSON `TracesData` line (the OTLP file
//!   exporter's format, so any tool that reads OTLP JSON loads it);
//! - kept, by trace id, for the analysis at the end of each deployment;
//! - with `--otlp`, forwarded as it came to the user's collector from a task of its own,
//!   through a bounded queue: a collector that is down or slow costs counted failures and
//!   drops, never an error in the measurement.

use super::spans::SpanRecord;
use crate::results::{TraceRelay, TraceRunInfo};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, TracesData};
use prost::Message as _;
use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// The OTLP/HTTP path for traces.
pub const TRACES_PATH: &str = "/v1/traces";
/// Batches waiting to be forwarded before new ones are dropped.
const RELAY_QUEUE: usize = 1024;
const PROTOBUF: &str = "application/x-protobuf";

/// Why the receiver could not start.
#[derive(Debug, thiserror::Error)]
pub enum CollectorError {
    #[error("cannot listen for spans on loopback: {0}")]
    Bind(std::io::Error),
    #[error("cannot write {path}: {source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("--otlp {0:?} is not an http:// URL (such as http://127.0.0.1:4318)")]
    Endpoint(String),
}

/// What the receiver shares with its handler.
struct Shared {
    file: Mutex<std::io::BufWriter<std::fs::File>>,
    file_error: Mutex<Option<String>>,
    by_trace: Mutex<HashMap<[u8; 16], Vec<SpanRecord>>>,
    spans: AtomicU64,
    refused: AtomicU64,
    last_batch: Mutex<Instant>,
    relay: Option<Relay>,
}

/// Forwarding to the user's collector.
struct Relay {
    endpoint: String,
    queue: mpsc::Sender<Bytes>,
    counts: Arc<RelayCounts>,
}

#[derive(Default)]
struct RelayCounts {
    sent: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
}

/// The receiver; stops serving when dropped.
pub struct Collector {
    endpoint: String,
    path: PathBuf,
    shared: Arc<Shared>,
    serving: tokio::task::JoinHandle<()>,
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.serving.abort();
    }
}

impl Collector {
    /// Listens on 127.0.0.1 (a port the OS picks), writing `file`; forwards every batch
    /// to `otlp` (an OTLP/HTTP base URL or its `/v1/traces` endpoint) when given.
    pub async fn start(file: &Path, otlp: Option<&str>) -> Result<Self, CollectorError> {
        let create = || {
            if let Some(dir) = file.parent() {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::File::create(file)
        };
        let opened = create().map_err(|source| CollectorError::File {
            path: file.to_path_buf(),
            source,
        })?;
        let relay = otlp.map(Relay::start).transpose()?;
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(CollectorError::Bind)?;
        let addr = listener.local_addr().map_err(CollectorError::Bind)?;
        let shared = Arc::new(Shared {
            file: Mutex::new(std::io::BufWriter::new(opened)),
            file_error: Mutex::new(None),
            by_trace: Mutex::new(HashMap::new()),
            spans: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            last_batch: Mutex::new(Instant::now()),
            relay,
        });
        let app = axum::Router::new()
            .route(TRACES_PATH, axum::routing::post(receive))
            .layer(axum::extract::DefaultBodyLimit::max(64 << 20))
            .with_state(shared.clone());
        let serving = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Collector {
            endpoint: format!("http://{addr}{TRACES_PATH}"),
            path: file.to_path_buf(),
            shared,
            serving,
        })
    }

    /// Where units send their spans.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Writes and forwards spans made here (the driver's) as received ones are; they are
    /// not kept for the analysis, which has them as the driver's records already.
    pub fn add(&self, batch: ExportTraceServiceRequest) {
        let bytes = Bytes::from(batch.encode_to_vec());
        self.shared.accept(batch.resource_spans, bytes, false);
    }

    /// Waits until no batch has arrived for `quiet`, at most `most` (units send theirs
    /// every 200 ms, and the last one as they exit).
    pub async fn settle(&self, quiet: Duration, most: Duration) {
        let deadline = Instant::now() + most;
        loop {
            let last = *lock(&self.shared.last_batch);
            let now = Instant::now();
            if now >= deadline || now.duration_since(last) >= quiet {
                return;
            }
            tokio::time::sleep((last + quiet).min(deadline) - now).await;
        }
    }

    /// Takes the spans of `trace` (they are not kept twice).
    pub fn take(&self, trace: &[u8; 16]) -> Vec<SpanRecord> {
        lock(&self.shared.by_trace)
            .remove(trace)
            .unwrap_or_default()
    }

    /// Drops every span still kept (a deployment's spans whose request the driver did
    /// not record: its warm-up, a failure without a reply).
    pub fn forget(&self) {
        lock(&self.shared.by_trace).clear();
    }

    /// What the run's results say about tracing so far; flushes the file.
    pub fn info(&self, sample: f64) -> TraceRunInfo {
        if let Err(error) = lock(&self.shared.file).flush() {
            self.shared.file_failed(error);
        }
        TraceRunInfo {
            sample,
            file: self
                .path
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
            file_error: lock(&self.shared.file_error).clone(),
            spans_received: self.shared.spans.load(Ordering::Relaxed),
            batches_refused: self.shared.refused.load(Ordering::Relaxed),
            relay: self.shared.relay.as_ref().map(|relay| TraceRelay {
                endpoint: relay.endpoint.clone(),
                batches_sent: relay.counts.sent.load(Ordering::Relaxed),
                batches_failed: relay.counts.failed.load(Ordering::Relaxed),
                batches_dropped: relay.counts.dropped.load(Ordering::Relaxed),
            }),
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    /// Writes and forwards a batch; `keep`: indexes its spans for the analysis too.
    fn accept(&self, resource_spans: Vec<ResourceSpans>, raw: Bytes, keep: bool) {
        *lock(&self.last_batch) = Instant::now();
        if let Some(relay) = &self.relay {
            relay.forward(raw);
        }
        let data = TracesData { resource_spans };
        let line = serde_json::to_string(&data).expect("OTLP JSON always serializes");
        {
            let mut file = lock(&self.file);
            if let Err(error) = file
                .write_all(line.as_bytes())
                .and_then(|_| file.write_all(b"\n"))
            {
                drop(file);
                self.file_failed(error);
            }
        }
        let spans = data.resource_spans.iter().flat_map(|r| &r.scope_spans);
        let spans: usize = spans.map(|s| s.spans.len()).sum();
        self.spans.fetch_add(spans as u64, Ordering::Relaxed);
        if !keep {
            return;
        }
        let records = super::spans::records(&data.resource_spans);
        let mut by_trace = lock(&self.by_trace);
        for record in records {
            by_trace.entry(record.trace_id).or_default().push(record);
        }
    }

    fn file_failed(&self, error: std::io::Error) {
        let mut first = lock(&self.file_error);
        if first.is_none() {
            tracing::warn!(%error, "cannot write traces.jsonl");
            *first = Some(error.to_string());
        }
    }
}

async fn receive(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let decoded = if json {
        serde_json::from_slice::<ExportTraceServiceRequest>(&body).map_err(|e| e.to_string())
    } else {
        ExportTraceServiceRequest::decode(body.clone()).map_err(|e| e.to_string())
    };
    match decoded {
        Ok(request) => {
            let raw = if json {
                Bytes::from(request.encode_to_vec())
            } else {
                body
            };
            shared.accept(request.resource_spans, raw, true);
            let reply = ExportTraceServiceResponse::default().encode_to_vec();
            ([(header::CONTENT_TYPE, PROTOBUF)], reply).into_response()
        }
        Err(error) => {
            shared.refused.fetch_add(1, Ordering::Relaxed);
            (
                StatusCode::BAD_REQUEST,
                format!("not an OTLP trace export: {error}"),
            )
                .into_response()
        }
    }
}

impl Relay {
    /// Starts forwarding to `otlp`.
    fn start(otlp: &str) -> Result<Relay, CollectorError> {
        let endpoint = relay_endpoint(otlp)?;
        let (queue, mut batches) = mpsc::channel::<Bytes>(RELAY_QUEUE);
        let counts = Arc::new(RelayCounts::default());
        let (target, counted) = (endpoint.clone(), counts.clone());
        tokio::spawn(async move {
            let client =
                hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                    .build_http::<http_body_util::Full<Bytes>>();
            while let Some(batch) = batches.recv().await {
                let sent = forward_one(&client, &target, batch).await;
                let count = if sent { &counted.sent } else { &counted.failed };
                count.fetch_add(1, Ordering::Relaxed);
            }
        });
        Ok(Relay {
            endpoint,
            queue,
            counts,
        })
    }

    fn forward(&self, batch: Bytes) {
        if self.queue.try_send(batch).is_err() {
            self.counts.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// `--otlp`'s traces endpoint: the URL as given when it names `/v1/traces`, else that
/// path under it (as OTEL_EXPORTER_OTLP_ENDPOINT is read).
fn relay_endpoint(otlp: &str) -> Result<String, CollectorError> {
    let trimmed = otlp.trim().trim_end_matches('/');
    if !trimmed.starts_with("http://") || trimmed.len() <= "http://".len() {
        return Err(CollectorError::Endpoint(otlp.to_string()));
    }
    if trimmed.ends_with(TRACES_PATH) {
        Ok(trimmed.to_string())
    } else {
        Ok(format!("{trimmed}{TRACES_PATH}"))
    }
}

/// Posts one batch; whether the collector took it (2xx within 5 s).
async fn forward_one(
    client: &hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        http_body_util::Full<Bytes>,
    >,
    endpoint: &str,
    batch: Bytes,
) -> bool {
    let Ok(request) = axum::http::Request::post(endpoint)
        .header(header::CONTENT_TYPE, PROTOBUF)
        .body(http_body_util::Full::new(batch))
    else {
        return false;
    };
    match tokio::time::timeout(Duration::from_secs(5), client.request(request)).await {
        Ok(Ok(response)) => response.status().is_success(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_relay_endpoint_is_the_traces_path_under_the_url() {
        assert_eq!(
            relay_endpoint("http://127.0.0.1:4318").unwrap(),
            "http://127.0.0.1:4318/v1/traces"
        );
        assert_eq!(
            relay_endpoint("http://127.0.0.1:4318/v1/traces/").unwrap(),
            "http://127.0.0.1:4318/v1/traces"
        );
        for bad in ["127.0.0.1:4318", "https://x:4318", "http://", ""] {
            assert!(relay_endpoint(bad).is_err(), "{bad}");
        }
    }
}
