//! Spans as the analysis reads them ([`SpanRecord`], from OTLP's protobuf types), and the
//! driver's own span of a traced request, built as OTLP data.

use super::DriverRecord;
use grain_runtime::trace::key;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::{Event, SpanKind};
use opentelemetry_proto::tonic::trace::v1::{status, ResourceSpans, ScopeSpans, Span, Status};

/// The service name of the driver's spans.
pub const DRIVER_SERVICE: &str = "grainbench-driver";

/// What kind of hop a client span is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hop {
    Service,
    State,
}

/// A span, with what the analysis needs of it.
#[derive(Debug, Clone, PartialEq)]
pub struct SpanRecord {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub parent: Option<[u8; 8]>,
    /// `service.name` of its resource: the unit process, or the driver.
    pub service: String,
    pub name: String,
    pub kind: SpanKind,
    pub start_ns: u64,
    pub end_ns: u64,
    /// Events by name and time (ns).
    pub events: Vec<(String, u64)>,
    /// A client span's hop kind.
    pub hop: Option<Hop>,
    /// A client span's attempt reached its callee (is a hop).
    pub reached: bool,
    pub error: bool,
}

impl SpanRecord {
    /// The time of its first event called `name`.
    pub fn event(&self, name: &str) -> Option<u64> {
        self.events_named(name).next()
    }

    /// The times of its events called `name`, in order.
    pub fn events_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = u64> + 'a {
        self.events
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, t)| *t)
    }
}

/// Every well-formed span of `batch` (spans with ids of the wrong length are skipped).
pub fn records(batch: &[ResourceSpans]) -> Vec<SpanRecord> {
    let mut out = Vec::new();
    for resource_spans in batch {
        let service = resource_spans
            .resource
            .as_ref()
            .and_then(|r| string_attr(&r.attributes, "service.name"))
            .unwrap_or_default();
        for span in resource_spans.scope_spans.iter().flat_map(|s| &s.spans) {
            if let Some(record) = record(&service, span) {
                out.push(record);
            }
        }
    }
    out
}

fn record(service: &str, span: &Span) -> Option<SpanRecord> {
    let trace_id: [u8; 16] = span.trace_id.as_slice().try_into().ok()?;
    let span_id: [u8; 8] = span.span_id.as_slice().try_into().ok()?;
    let parent = match span.parent_span_id.as_slice() {
        [] => None,
        bytes => Some(bytes.try_into().ok()?),
    };
    let hop = match string_attr(&span.attributes, key::HOP).as_deref() {
        Some("service") => Some(Hop::Service),
        Some("state") => Some(Hop::State),
        _ => None,
    };
    let reached = matches!(
        attr(&span.attributes, key::REACHED),
        Some(any_value::Value::BoolValue(true))
    );
    let error = span
        .status
        .as_ref()
        .is_some_and(|s| s.code == status::StatusCode::Error as i32);
    Some(SpanRecord {
        trace_id,
        span_id,
        parent,
        service: service.to_string(),
        name: span.name.clone(),
        kind: SpanKind::try_from(span.kind).unwrap_or(SpanKind::Unspecified),
        start_ns: span.start_time_unix_nano,
        end_ns: span.end_time_unix_nano,
        events: span
            .events
            .iter()
            .map(|e| (e.name.clone(), e.time_unix_nano))
            .collect(),
        hop,
        reached,
        error,
    })
}

fn attr<'a>(attributes: &'a [KeyValue], name: &str) -> Option<&'a any_value::Value> {
    attributes
        .iter()
        .find(|kv| kv.key == name)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| v.value.as_ref())
}

fn string_attr(attributes: &[KeyValue], name: &str) -> Option<String> {
    match attr(attributes, name) {
        Some(any_value::Value::StringValue(s)) => Some(s.clone()),
        _ => None,
    }
}

fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

fn text(key: &str, value: &str) -> KeyValue {
    kv(key, any_value::Value::StringValue(value.to_string()))
}

/// The driver's spans of `requests` (all of one deployment, `resource`: its attributes),
/// as one OTLP export.
pub fn driver_batch(
    resource: &[(String, String)],
    requests: &[DriverRecord],
) -> ExportTraceServiceRequest {
    let mut attributes = vec![text("service.name", DRIVER_SERVICE)];
    attributes.extend(resource.iter().map(|(k, v)| text(k, v)));
    let spans = requests.iter().map(driver_span).collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes,
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "grainbench".into(),
                    version: env!("CARGO_PKG_VERSION").into(),
                    ..Default::default()
                }),
                spans,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

/// A traced request's root span: from its intended send time to its reply handed back,
/// an event where it was actually sent, the hops its reply reported.
fn driver_span(request: &DriverRecord) -> Span {
    let mut attributes = vec![
        text("grain.entrypoint", &request.entrypoint),
        kv(
            "grain.rate_rps",
            any_value::Value::DoubleValue(request.rate_rps),
        ),
    ];
    if let Some(hops) = request.hops {
        attributes.push(kv(
            key::SERVICE_HOPS,
            any_value::Value::IntValue(i64::from(hops.service)),
        ));
        attributes.push(kv(
            key::STATE_HOPS,
            any_value::Value::IntValue(i64::from(hops.state)),
        ));
    }
    let events = request
        .events()
        .into_iter()
        .map(|(name, at)| Event {
            time_unix_nano: at,
            name: name.into(),
            ..Default::default()
        })
        .collect();
    Span {
        trace_id: request.ids.trace_id.to_vec(),
        span_id: request.ids.span_id.to_vec(),
        name: format!("POST /op/{}", request.entrypoint),
        kind: SpanKind::Client as i32,
        start_time_unix_nano: request.intended_ns,
        end_time_unix_nano: request.done_ns,
        attributes,
        events,
        status: (!request.ok).then(|| Status {
            message: "the request failed".into(),
            code: status::StatusCode::Error as i32,
        }),
        ..Default::default()
    }
}
