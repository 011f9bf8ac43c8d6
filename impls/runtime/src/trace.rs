//! Traces of sampled requests: W3C trace context on every hop, OpenTelemetry spans in
//! every unit, exported over OTLP/HTTP (protobuf) in batches off the request path.
//!
//! The driver decides which requests are traced: a sampled request carries a
//! `traceparent` with the sampled flag, every other request carries none. A unit builds
//! spans only for a sampled request and only when the harness installed an exporter
//! ([`install`]), so an untraced request costs one header lookup and nothing more.
//!
//! A traced request's unit spans:
//! - a **server span** per request a unit serves (its parent: the caller's client span, or
//!   the driver's span at the entry unit), from the moment the unit's router has the
//!   request until its reply is built, with events marking its phases: `decoded`,
//!   `work.start`/`work.end` (the operation's CPU work), `calls.start`/`calls.end` (each
//!   step of downstream calls) and `encoded`;
//! - a **client span** per attempt of a call to another unit (its parent: the server
//!   span), with the attempt number, the hop's kind (service or state), the error if it
//!   failed, and, under a network model that adds delay, events `delay.start` and
//!   `delay.end` around each stretch the model held the request or its reply.

use crate::digest::hex;
use opentelemetry::trace::{
    Span as _, SpanContext, SpanId, SpanKind, Status, TraceContextExt as _, TraceFlags, TraceId,
    TraceState, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, SdkTracer, SdkTracerProvider,
};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

/// The W3C trace context header.
pub const TRACEPARENT: &str = "traceparent";

/// How often a unit sends its batched spans.
const EXPORT_EVERY: Duration = Duration::from_millis(200);
/// Most spans a unit holds before it drops new ones. The SDK allocates the whole queue up
/// front (65 536 spans cost each unit ~24 MiB of RSS); a unit makes two spans per hop it
/// serves, so 4 096 hold a 200 ms batch of 100 % sampling at 10 000 hops per second.
const MAX_QUEUED_SPANS: usize = 4096;

/// Attribute keys every span of grainbench uses (the report and the checks read them).
pub mod key {
    /// `service` or `state`: what kind of hop a client span is.
    pub const HOP: &str = "grain.hop";
    /// 1 for a call's first attempt, 2 for its first retry, …
    pub const ATTEMPT: &str = "grain.attempt";
    /// The unit a client span calls (its process, with a replica suffix).
    pub const CALLEE: &str = "grain.callee";
    /// Whether a client span's attempt reached the callee (a refused connection did not:
    /// it is no hop).
    pub const REACHED: &str = "grain.reached";
    /// The operation or state path a span serves or calls.
    pub const PATH: &str = "grain.path";
    /// An error's class on a failed span.
    pub const ERROR_TYPE: &str = "error.type";
    /// The reply's status on a server span.
    pub const STATUS: &str = "grain.status";
    /// Hops the driver measured for the request (its root span).
    pub const SERVICE_HOPS: &str = "grain.hops.service";
    pub const STATE_HOPS: &str = "grain.hops.state";
}

/// A `traceparent` header: whose trace, which span is the parent, whether it is sampled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceParent {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub sampled: bool,
}

impl TraceParent {
    /// Parses version 00 of the header (`00-<32 hex>-<16 hex>-<2 hex>`); `None` for
    /// anything else, all-zero ids included, as the W3C specification asks.
    pub fn parse(text: &str) -> Option<Self> {
        let mut parts = text.trim().split('-');
        let (version, trace, span, flags) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || version != "00" {
            return None;
        }
        let trace_id: [u8; 16] = hex_bytes(trace)?;
        let span_id: [u8; 8] = hex_bytes(span)?;
        let [flags]: [u8; 1] = hex_bytes(flags)?;
        if trace_id == [0; 16] || span_id == [0; 8] {
            return None;
        }
        Some(TraceParent {
            trace_id,
            span_id,
            sampled: flags & 1 == 1,
        })
    }

    /// The header's text.
    pub fn header(&self) -> String {
        format!(
            "00-{}-{}-{:02x}",
            hex(&self.trace_id),
            hex(&self.span_id),
            u8::from(self.sampled)
        )
    }

    fn context(&self) -> Context {
        let flags = if self.sampled {
            TraceFlags::SAMPLED
        } else {
            TraceFlags::default()
        };
        let parent = SpanContext::new(
            TraceId::from_bytes(self.trace_id),
            SpanId::from_bytes(self.span_id),
            flags,
            true,
            TraceState::default(),
        );
        Context::new().with_remote_span_context(parent)
    }

    fn of(context: &SpanContext) -> Self {
        TraceParent {
            trace_id: context.trace_id().to_bytes(),
            span_id: context.span_id().to_bytes(),
            sampled: context.is_sampled(),
        }
    }
}

fn hex_bytes<const N: usize>(text: &str) -> Option<[u8; N]> {
    if text.len() != 2 * N || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; N];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// Where a unit sends its spans, and what every one of them says about the deployment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceExport {
    /// The OTLP/HTTP traces endpoint (`http://127.0.0.1:PORT/v1/traces`).
    pub endpoint: String,
    /// Resource attributes beside `service.name` (the deployment, cut, transport, …).
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
}

/// Why a unit could not start exporting spans.
#[derive(Debug, thiserror::Error)]
#[error("cannot export spans to {endpoint}: {detail}")]
pub struct TraceError {
    endpoint: String,
    detail: String,
}

struct Tracing {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
}

static TRACING: OnceLock<Tracing> = OnceLock::new();

fn tracer() -> Option<&'static SdkTracer> {
    TRACING.get().map(|t| &t.tracer)
}

/// Whether this process exports spans ([`install`] was called).
pub fn exporting() -> bool {
    TRACING.get().is_some()
}

/// Starts exporting this process's spans as `service` (`service.name`) to `export`: a
/// batch processor on a thread of its own sends them every 200 ms. Call [`shutdown`]
/// before the process exits, or the last batch is lost. A second call changes nothing.
pub fn install(service: &str, export: &TraceExport) -> Result<(), TraceError> {
    let failed = |detail: String| TraceError {
        endpoint: export.endpoint.clone(),
        detail,
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .with_endpoint(export.endpoint.clone())
        .with_timeout(Duration::from_secs(2))
        .build()
        .map_err(|e| failed(e.to_string()))?;
    let batches = BatchConfigBuilder::default()
        .with_scheduled_delay(EXPORT_EVERY)
        .with_max_queue_size(MAX_QUEUED_SPANS)
        .with_max_export_batch_size(512)
        .build();
    let processor = BatchSpanProcessor::builder(exporter)
        .with_batch_config(batches)
        .build();
    let attributes = export
        .attributes
        .iter()
        .map(|(k, v)| KeyValue::new(k.clone(), v.clone()));
    let resource = opentelemetry_sdk::Resource::builder_empty()
        .with_service_name(service.to_string())
        .with_attributes(attributes)
        .build();
    let provider = SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_resource(resource)
        // A span is recorded only under a sampled parent: the driver decides.
        .with_sampler(opentelemetry_sdk::trace::Sampler::ParentBased(Box::new(
            opentelemetry_sdk::trace::Sampler::AlwaysOff,
        )))
        .build();
    let tracer = provider.tracer("grainbench");
    let _ = TRACING.set(Tracing { provider, tracer });
    Ok(())
}

/// Sends every span still batched and stops exporting (at a unit's exit).
pub fn shutdown() {
    if let Some(tracing) = TRACING.get() {
        if let Err(error) = tracing.provider.shutdown() {
            tracing::debug!(%error, "span export did not shut down cleanly");
        }
    }
}

/// The server span of the request a task is serving, while it serves it.
struct ServerScope {
    span: RefCell<opentelemetry_sdk::trace::Span>,
    context: SpanContext,
}

/// The client span of the call attempt a task is making, while it makes it.
struct CallScope {
    traceparent: String,
    /// When the network model held it (out, then back).
    held: RefCell<Vec<(SystemTime, SystemTime)>>,
}

tokio::task_local! {
    static SERVER: ServerScope;
    static CALL: CallScope;
}

/// The parent of a request to trace: its sampled `traceparent`, when spans are exported
/// here at all (checked first, so an untraced unit reads no header).
pub fn sampled_parent(headers: &axum::http::HeaderMap) -> Option<TraceParent> {
    tracer()?;
    sampled_parent_of(headers.get(TRACEPARENT)?.to_str().ok())
}

/// [`sampled_parent`] of a call that carries its `traceparent` outside HTTP headers.
pub fn sampled_parent_of(traceparent: Option<&str>) -> Option<TraceParent> {
    tracer()?;
    TraceParent::parse(traceparent?).filter(|p| p.sampled)
}

/// Serves a request (`serve`) inside a server span under `parent` (see
/// [`sampled_parent`]). `name`: the span's name (the path served); `status`: the status
/// of what `serve` answered.
pub async fn serve_traced<F, R>(
    parent: TraceParent,
    name: String,
    serve: F,
    status: impl FnOnce(&R) -> u16,
) -> R
where
    F: std::future::Future<Output = R>,
{
    let Some(tracer) = tracer() else {
        return serve.await;
    };
    let span = tracer
        .span_builder(name.clone())
        .with_kind(SpanKind::Server)
        .with_start_time(SystemTime::now())
        .with_attributes([KeyValue::new(key::PATH, name)])
        .start_with_context(tracer, &parent.context());
    let context = span.span_context().clone();
    let scope = ServerScope {
        span: RefCell::new(span),
        context,
    };
    SERVER
        .scope(scope, async move {
            let response = serve.await;
            SERVER.with(|scope| {
                let mut span = scope.span.borrow_mut();
                let status = status(&response);
                span.set_attribute(KeyValue::new(key::STATUS, i64::from(status)));
                if status != 200 {
                    span.set_status(Status::error(format!("status {status}")));
                }
                span.end_with_timestamp(SystemTime::now());
            });
            response
        })
        .await
}

/// Marks `name` now on the server span of the request being served, if it is traced.
pub fn event(name: &'static str) {
    let _ = SERVER.try_with(|scope| {
        scope
            .span
            .borrow_mut()
            .add_event_with_timestamp(name, SystemTime::now(), Vec::new());
    });
}

/// Runs `call` (a request made through one of this crate's clients) sending
/// `traceparent`: how a caller outside any unit (the driver's equivalence check) traces a
/// request of its own.
pub async fn sending<F: std::future::Future>(traceparent: String, call: F) -> F::Output {
    let scope = CallScope {
        traceparent,
        held: RefCell::new(Vec::new()),
    };
    CALL.scope(scope, call).await
}

/// The `traceparent` the call attempt being made sends, if it is traced.
pub fn outgoing() -> Option<String> {
    CALL.try_with(|call| call.traceparent.clone()).ok()
}

/// Runs `delay`, the network model holding the call attempt being made (its request on
/// the way out, or its reply on the way back); `adds_delay`: whether the model adds any.
/// A traced attempt notes when the hold began and ended.
pub(crate) async fn held(adds_delay: bool, delay: impl std::future::Future<Output = ()>) {
    let traced = adds_delay && CALL.try_with(|_| ()).is_ok();
    let from = traced.then(SystemTime::now);
    delay.await;
    if let Some(from) = from {
        let _ = CALL.try_with(|call| call.held.borrow_mut().push((from, SystemTime::now())));
    }
}

/// One attempt of a call to another unit, traced when the request being served is.
pub struct Attempt {
    span: Option<opentelemetry_sdk::trace::Span>,
}

/// What kind of hop an attempt is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HopKind {
    Service,
    State,
}

impl HopKind {
    pub fn name(self) -> &'static str {
        match self {
            HopKind::Service => "service",
            HopKind::State => "state",
        }
    }
}

impl Attempt {
    /// Starts attempt number `attempt` (1 = the first) of a call to `callee`'s `path`.
    pub fn start(callee: &str, path: &str, hop: HopKind, attempt: u32) -> Self {
        let span = SERVER
            .try_with(|server| {
                let tracer = tracer()?;
                let parent = Context::new().with_remote_span_context(server.context.clone());
                Some(
                    tracer
                        .span_builder(path.to_string())
                        .with_kind(SpanKind::Client)
                        .with_start_time(SystemTime::now())
                        .with_attributes([
                            KeyValue::new(key::CALLEE, callee.to_string()),
                            KeyValue::new(key::PATH, path.to_string()),
                            KeyValue::new(key::HOP, hop.name()),
                            KeyValue::new(key::ATTEMPT, i64::from(attempt)),
                        ])
                        .start_with_context(tracer, &parent),
                )
            })
            .ok()
            .flatten();
        Attempt { span }
    }

    /// Runs the attempt's call with its `traceparent` for the client to send; ends the
    /// span with `failure` (`None`: answered; `Some((class, reached))`: failed, and
    /// whether it reached the callee).
    pub async fn run<F, T>(self, call: F, failure: impl FnOnce(&T) -> Option<(String, bool)>) -> T
    where
        F: std::future::Future<Output = T>,
    {
        let Some(mut span) = self.span else {
            return call.await;
        };
        let scope = CallScope {
            traceparent: TraceParent::of(span.span_context()).header(),
            held: RefCell::new(Vec::new()),
        };
        // Boxed: a traced call is sampled and builds a span anyway, and unboxed its scope
        // would hold a second copy of the call's state in every untraced call's future.
        let (result, held) = Box::pin(CALL.scope(scope, async {
            let result = call.await;
            (result, CALL.with(|c| c.held.take()))
        }))
        .await;
        for (from, until) in held {
            span.add_event_with_timestamp("delay.start", from, Vec::new());
            span.add_event_with_timestamp("delay.end", until, Vec::new());
        }
        let reached = match failure(&result) {
            None => true,
            Some((class, reached)) => {
                span.set_attribute(KeyValue::new(key::ERROR_TYPE, class.clone()));
                span.set_status(Status::error(class));
                reached
            }
        };
        span.set_attribute(KeyValue::new(key::REACHED, reached));
        span.end_with_timestamp(SystemTime::now());
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_traceparent_reads_back_as_written_and_nonsense_is_none() {
        let tp = TraceParent {
            trace_id: [0xab; 16],
            span_id: [0x01; 8],
            sampled: true,
        };
        let text = tp.header();
        assert_eq!(
            text,
            "00-abababababababababababababababab-0101010101010101-01"
        );
        assert_eq!(TraceParent::parse(&text), Some(tp));
        let unsampled = "00-abababababababababababababababab-0101010101010101-00";
        assert!(!TraceParent::parse(unsampled).unwrap().sampled);
        for bad in [
            "",
            "01-abababababababababababababababab-0101010101010101-01",
            "00-00000000000000000000000000000000-0101010101010101-01",
            "00-abababababababababababababababab-0000000000000000-01",
            "00-abab-0101010101010101-01",
            "00-abababababababababababababababab-0101010101010101-01-x",
            "00-zzababababababababababababababab-0101010101010101-01",
        ] {
            assert_eq!(TraceParent::parse(bad), None, "{bad}");
        }
    }

    #[tokio::test]
    async fn without_an_exporter_nothing_is_traced() {
        let header = "00-abababababababababababababababab-0101010101010101-01";
        let mut headers = axum::http::HeaderMap::new();
        headers.insert(TRACEPARENT, header.parse().unwrap());
        assert_eq!(
            sampled_parent(&headers),
            None,
            "no exporter: no parent is read"
        );
        let parent = TraceParent::parse(header).unwrap();
        let response = serve_traced(
            parent,
            "/op/x".into(),
            async {
                assert!(SERVER.try_with(|_| ()).is_err(), "no server span is built");
                let attempt = Attempt::start("b", "/op/y", HopKind::Service, 1);
                assert!(attempt.span.is_none());
                let sent = attempt.run(async { outgoing() }, |_| None).await;
                assert_eq!(sent, None, "no traceparent is sent");
                axum::response::IntoResponse::into_response("ok")
            },
            |response| response.status().as_u16(),
        )
        .await;
        assert_eq!(response.status(), 200);
    }
}
