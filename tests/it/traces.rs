//! Traces on real unit processes: every traced request's spans form one tree under the
//! driver's span and show the hops its reply reported — for nano, micro and a `[[cut]]`,
//! with replicas and with retries, over every transport; traces.jsonl is OTLP JSON (read
//! with the OpenTelemetry protocol types); `--otlp` gets the same spans; a collector that
//! is down costs counted export failures and no error; nothing is left behind.

use crate::common::*;
use grainbench::plan::{Architecture, Transport};
use grainbench::results::{RunResults, WaterfallPick};
use grainbench::scenario::{self, fault::Fault};
use grainbench::traces::{TraceOptions, TRACES_FILE};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::TracesData;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn every_request(otlp: Option<String>) -> Option<TraceOptions> {
    Some(TraceOptions {
        sample: 1.0,
        otlp,
        overhead: false,
    })
}

/// Every deployment traced requests, and each one's spans added up.
fn assert_every_trace_adds_up(results: &RunResults) {
    for arch in &results.architectures {
        let label = arch.label();
        let traces = arch
            .traces
            .as_ref()
            .unwrap_or_else(|| panic!("{label}: no traces"));
        assert!(traces.requests > 10, "{label}: {} traced", traces.requests);
        assert!(traces.problems.is_empty(), "{label}: {:?}", traces.problems);
        assert_eq!(traces.complete, traces.requests, "{label}: one tree each");
        assert!(traces.hops_matched > 0, "{label}");
        let picks: BTreeSet<_> = traces.waterfalls.iter().map(|w| w.pick).collect();
        assert_eq!(
            picks,
            BTreeSet::from([WaterfallPick::Median, WaterfallPick::P99])
        );
        for split in &traces.breakdown {
            let sum = split.work_us
                + split.handling_us
                + split.network_us
                + split.wire_us
                + split.driver_us;
            assert!((sum - split.latency_us).abs() < 1.0, "{label}: {split:?}");
        }
    }
}

/// Every span of the run's traces.jsonl, read as OTLP JSON `TracesData` lines.
fn spans_in_file(
    results_dir: &std::path::Path,
) -> Vec<opentelemetry_proto::tonic::trace::v1::Span> {
    let text = std::fs::read_to_string(results_dir.join(TRACES_FILE)).unwrap();
    text.lines()
        .flat_map(|line| {
            let data: TracesData =
                serde_json::from_str(line).expect("an OTLP JSON TracesData line");
            data.resource_spans
                .into_iter()
                .flat_map(|r| r.scope_spans)
                .flat_map(|s| s.spans)
        })
        .collect()
}

fn int_attr(span: &opentelemetry_proto::tonic::trace::v1::Span, key: &str) -> Option<i64> {
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
            Value::IntValue(v) => Some(*v),
            _ => None,
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traces_add_up_for_every_cut_with_replicas_and_retries() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = std::fs::read_to_string(fixture("tiny.toml")).unwrap();
    text.push_str("\n[[cut]]\nname = \"pair\"\nunits = [[\"buy\", \"browse\"], [\"lookup\", \"price\", \"store\"]]\n");
    let path = dir.path().join("tiny-cut.toml");
    std::fs::write(&path, text).unwrap();
    let source = scenario::load(&path).unwrap();
    let out = dir.path().join("out");
    let mut options = short_run_options("traces-cuts", &out);
    options.architectures = vec![
        Architecture::Nano,
        Architecture::Micro,
        Architecture::Named("pair".into()),
    ];
    options.deploy.replicas = Some(2);
    options.deploy.resilience.retries = Some(2);
    options.faults = vec!["fail:lookup@0.2s+0.6s=0.3".parse::<Fault>().unwrap()];
    options.trace = every_request(None);
    let run_id = options.run_id.clone();
    let results = run_ok(&source, &options).await;
    assert_every_trace_adds_up(&results);

    let spans = spans_in_file(&out);
    let info = results.traces.as_ref().unwrap();
    assert_eq!(
        spans.len() as u64,
        info.spans_received,
        "the file holds every span"
    );
    assert_eq!(info.batches_refused, 0);
    let retried = spans
        .iter()
        .filter(|s| int_attr(s, "grain.attempt").is_some_and(|a| a >= 2))
        .count();
    assert!(
        retried > 0,
        "the fault made the callers retry, and the retries were traced"
    );
    assert!(wait_for_no_processes(&run_id, Duration::from_secs(10)).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_trace_crosses_grpc_and_binary_hops() {
    let source = scenario::load(&fixture("tiny.toml")).unwrap();
    let out = tempfile::tempdir().unwrap();
    let mut options = short_run_options("traces-transports", out.path());
    options.architectures = vec![Architecture::Nano];
    options.deploy.transports = vec![Transport::Grpc, Transport::Binary];
    options.trace = every_request(None);
    let run_id = options.run_id.clone();
    let results = run_ok(&source, &options).await;
    assert_eq!(results.architectures.len(), 2);
    assert_every_trace_adds_up(&results);
    assert!(wait_for_no_processes(&run_id, Duration::from_secs(10)).is_empty());
}

/// A loopback OTLP/HTTP receiver: every span id it was sent.
async fn receiver() -> (String, Arc<Mutex<Vec<Vec<u8>>>>) {
    use prost::Message as _;
    let got = Arc::new(Mutex::new(Vec::new()));
    let kept = got.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: axum::body::Bytes| {
            let kept = kept.clone();
            async move {
                let request = ExportTraceServiceRequest::decode(body).unwrap();
                let ids = request
                    .resource_spans
                    .into_iter()
                    .flat_map(|r| r.scope_spans)
                    .flat_map(|s| s.spans)
                    .map(|s| s.span_id);
                kept.lock().unwrap().extend(ids);
                ""
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), got)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_users_collector_gets_the_same_spans() {
    let (url, got) = receiver().await;
    let source = scenario::load(&fixture("tiny.toml")).unwrap();
    let out = tempfile::tempdir().unwrap();
    let mut options = short_run_options("traces-otlp", out.path());
    options.architectures = vec![Architecture::Micro];
    options.trace = every_request(Some(url.clone()));
    let results = run_ok(&source, &options).await;
    let relay = results.traces.as_ref().unwrap().relay.clone().unwrap();
    assert_eq!(relay.endpoint, format!("{url}/v1/traces"));
    assert_eq!((relay.batches_failed, relay.batches_dropped), (0, 0));
    assert!(relay.batches_sent > 0);
    // The relay sends from a task of its own: give its last batch a moment.
    let in_file: BTreeSet<Vec<u8>> = spans_in_file(out.path())
        .into_iter()
        .map(|s| s.span_id)
        .collect();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while got.lock().unwrap().len() < in_file.len() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let received: BTreeSet<Vec<u8>> = got.lock().unwrap().iter().cloned().collect();
    assert_eq!(received, in_file);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_that_is_down_costs_counted_failures_and_no_error() {
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let source = scenario::load(&fixture("tiny.toml")).unwrap();
    let out = tempfile::tempdir().unwrap();
    let mut options = short_run_options("traces-down", out.path());
    options.architectures = vec![Architecture::Micro];
    options.trace = every_request(Some(format!("http://{closed}")));
    let results = run_ok(&source, &options).await;
    let relay = results.traces.as_ref().unwrap().relay.clone().unwrap();
    assert_eq!(relay.batches_sent, 0);
    assert!(relay.batches_failed > 0, "{relay:?}");
    for step in &results.architectures[0].steps {
        assert_eq!(
            step.errors.total(),
            0,
            "a down collector is no failed request"
        );
    }
    assert_every_trace_adds_up(&results);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_of_the_equivalence_check_is_traced_whatever_the_sample() {
    let source = scenario::load(&fixture("tiny.toml")).unwrap();
    let out = tempfile::tempdir().unwrap();
    let mut options = short_run_options("traces-equivalence", out.path());
    options.architectures = vec![Architecture::Nano, Architecture::Micro];
    // One load request in a million: the load's requests go untraced.
    options.trace = Some(TraceOptions {
        sample: 1e-6,
        otlp: None,
        overhead: false,
    });
    let results = run_ok(&source, &options).await;
    for arch in &results.architectures {
        let traces = arch.traces.as_ref().unwrap();
        let expected = options.equivalence_requests as u64;
        assert_eq!(traces.requests, expected, "{}", arch.label());
        assert_eq!(traces.complete, expected);
        assert_eq!(traces.hops_matched, expected, "{:?}", traces.problems);
        // Not load: no time split, no waterfall.
        assert!(traces.breakdown.is_empty() && traces.waterfalls.is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_trace_nothing_is_traced_or_written() {
    let source = scenario::load(&fixture("tiny.toml")).unwrap();
    let out = tempfile::tempdir().unwrap();
    let mut options = short_run_options("traces-off", out.path());
    options.architectures = vec![Architecture::Micro];
    let results = run_ok(&source, &options).await;
    assert!(results.traces.is_none());
    assert!(results.architectures[0].traces.is_none());
    assert!(!out.path().join(TRACES_FILE).exists());
}

#[test]
fn trace_options_that_cannot_work_are_clear_errors() {
    let cases: [(&[&str], &str); 3] = [
        (&["--trace", "0%"], "out of range"),
        (&["--otlp", "http://127.0.0.1:4318"], "--trace"),
        (
            &["--trace", "--target", "compose"],
            "--trace with --target compose is not supported",
        ),
    ];
    for (args, expected) in cases {
        let output = std::process::Command::new(grainbench_binary())
            .arg("run")
            .args(args)
            .arg(fixture("tiny.toml"))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_ne!(output.status.code(), Some(0), "{args:?}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}
