//! Transports between units, on real unit processes: nano and micro over HTTP/1.1 + JSON,
//! gRPC and binary frames give the same digests and the plan's hops with no error, under
//! plaintext and under mutual TLS with tokens; an unknown transport is a clear error; and
//! nothing is left behind.

use crate::common::*;
use grain_runtime::security::SecurityMode;
use grainbench::plan::{Architecture, Transport};
use grainbench::scenario;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nano_and_micro_agree_over_every_transport() {
    let source = scenario::load(&fixture("tiny.toml")).unwrap();
    let out = tempfile::tempdir().unwrap();
    let mut options = short_run_options("transport-run", out.path());
    options.architectures = vec![Architecture::Nano, Architecture::Micro];
    options.deploy.transports = Transport::ALL.to_vec();
    let run_id = options.run_id.clone();
    let results = run_ok(&source, &options).await;
    let labels: Vec<String> = results.architectures.iter().map(|a| a.label()).collect();
    assert_eq!(
        labels,
        [
            "nano",
            "nano+grpc",
            "nano+binary",
            "micro",
            "micro+grpc",
            "micro+binary"
        ]
    );
    let transports: Vec<Transport> = results.architectures.iter().map(|a| a.transport).collect();
    assert_eq!(&transports[..3], &Transport::ALL);
    assert_same_business_and_hops(&results);
    // nano's hops include state hops: the state units spoke the transport too.
    let nano = &results.architectures[1];
    assert!(nano.static_hops.values().any(|h| h.state > 0));
    assert!(wait_for_no_processes(&run_id, Duration::from_secs(10)).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_and_binary_compose_with_mutual_tls_and_tokens() {
    let source = scenario::load(&fixture("tiny.toml")).unwrap();
    let out = tempfile::tempdir().unwrap();
    let mut options = short_run_options("transport-mtls", out.path());
    options.architectures = vec![Architecture::Nano];
    options.deploy.security = vec![SecurityMode::MtlsToken];
    options.deploy.transports = vec![Transport::Grpc, Transport::Binary];
    let run_id = options.run_id.clone();
    let results = run_ok(&source, &options).await;
    let labels: Vec<String> = results.architectures.iter().map(|a| a.label()).collect();
    assert_eq!(labels, ["nano+mtls+token+grpc", "nano+mtls+token+binary"]);
    assert_same_business_and_hops(&results);
    assert!(wait_for_no_processes(&run_id, Duration::from_secs(10)).is_empty());
}

#[test]
fn an_unknown_transport_is_a_clear_error() {
    let output = std::process::Command::new(grainbench_binary())
        .args(["run", "--transport", "grpc,http3"])
        .arg(fixture("tiny.toml"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "a usage error");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("unknown transport 'http3': one of http1-json, grpc, binary"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn up_and_export_take_one_transport() {
    for command in ["up", "export"] {
        let mut args = vec![command.to_string()];
        if command == "export" {
            args.push("k8s".into());
        }
        args.push(fixture("tiny.toml").display().to_string());
        if command == "export" {
            args.extend(["nano".to_string(), "/nonexistent/never-written".to_string()]);
        }
        args.extend(["--transport".to_string(), "grpc,binary".to_string()]);
        let output = std::process::Command::new(grainbench_binary())
            .args(&args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{command}: {stderr}");
        assert!(
            stderr.contains(&format!("`{command}` deploys one transport")),
            "{command}: {stderr}"
        );
    }
}
