//! The sidecar mesh on real processes: nano and micro behind HAProxy sidecars give the
//! same digests and the plan's hops as without, with no error, and the sidecars' CPU and
//! memory are measured apart from the units'; under mutual TLS at the sidecars, a caller
//! that skips its own sidecar (plaintext, or TLS without the run's certificate) is
//! refused by the callee's; and no proxy outlives the harness, even killed.

use crate::common::*;
use grain_runtime::security::SecurityMode;
use grainbench::launch::{self, LaunchOptions};
use grainbench::plan::{self, Architecture, Mesh};
use grainbench::scenario;
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nano_and_micro_behind_sidecars_agree_with_no_mesh_and_measure_the_proxies() {
    if !haproxy_or_skip() {
        return;
    }
    let source = scenario::load(&fixture("tiny.toml")).unwrap();
    let out = tempfile::tempdir().unwrap();
    let mut options = short_run_options("mesh-run", out.path());
    options.architectures = vec![Architecture::Nano, Architecture::Micro];
    options.deploy.meshes = vec![Mesh::None, Mesh::Sidecar];
    let run_id = options.run_id.clone();
    let results = run_ok(&source, &options).await;
    let labels: Vec<String> = results.architectures.iter().map(|a| a.label()).collect();
    assert_eq!(labels, ["nano", "nano+sidecar", "micro", "micro+sidecar"]);
    assert_same_business_and_hops(&results);
    assert!(results
        .meta
        .sidecar_proxy
        .as_deref()
        .is_some_and(|p| p.starts_with("HAProxy version")));
    for arch in &results.architectures {
        let deploy = arch.deploy.as_ref().unwrap();
        let meshed = arch.mesh == Mesh::Sidecar;
        assert_eq!(deploy.sidecars.is_some(), meshed, "{}", arch.label());
        if meshed {
            // One sidecar per unit process, each with memory of its own, and HAProxy's
            // binary shipped beside the unit's.
            assert_eq!(deploy.sidecars, Some(deploy.processes));
            let base = results
                .architectures
                .iter()
                .find(|a| a.architecture == arch.architecture && a.mesh == Mesh::None)
                .unwrap();
            let unit_only = base.deploy.as_ref().unwrap().artifact_bytes_per_unit;
            assert!(
                deploy.artifact_bytes_per_unit > unit_only,
                "{}",
                arch.label()
            );
            assert!(deploy.sidecar_idle_rss_bytes_total.unwrap() > 0);
            assert!(
                !deploy
                    .idle_rss_bytes
                    .keys()
                    .any(|k| k.starts_with("sidecar:")),
                "the units' memory is theirs alone"
            );
        }
        for step in &arch.steps {
            assert_eq!(
                step.sidecars_cpu_us_per_request.is_some(),
                meshed,
                "{}",
                arch.label()
            );
            if meshed {
                // Every sidecar followed, apart from the units. (Not its CPU's size: 30
                // requests are a tick or none of /proc's 10 ms, so 0 is a fair reading.)
                let sidecars = step.sidecars.as_ref().unwrap();
                assert_eq!(sidecars.peak_rss_bytes.len(), deploy.processes);
                assert!(sidecars.peak_rss_bytes.values().all(|&rss| rss > 0));
                assert!(step.sidecars_cpu_us_per_request.unwrap() >= 0.0);
                let units = step.units.as_ref().unwrap();
                assert!(!units.cpu_ms.keys().any(|k| k.starts_with("sidecar:")));
            }
        }
    }
    assert!(wait_for_no_processes(&run_id, Duration::from_secs(10)).is_empty());
}

/// A unit killed under load behind its sidecar is restarted and the sidecar, which stays,
/// carries every request to the new process; the redeploy replaces units the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_unit_s_sidecar_stays_and_reaches_its_replacement() {
    if !haproxy_or_skip() {
        return;
    }
    let source = scenario::load(&fixture("tiny.toml")).unwrap();
    let out = tempfile::tempdir().unwrap();
    let mut options = short_run_options("mesh-fault", out.path());
    options.architectures = vec![Architecture::Nano];
    options.deploy.meshes = vec![Mesh::Sidecar];
    options.faults = vec!["kill:price@1s+500ms".parse().unwrap()];
    options.redeploy = grainbench::run::RedeployPolicy::FirstEntrypoint;
    let run_id = options.run_id.clone();
    let results = run_ok(&source, &options).await;
    let nano = &results.architectures[0];
    assert_eq!(nano.label(), "nano+sidecar");
    let fault = &nano.faults[0];
    assert_eq!(fault.killed_ending.as_deref(), Some("killed by signal 9"));
    assert!(fault.restart_ms.is_some(), "the killed unit was restarted");
    assert!(
        fault.after.requests > 0 && fault.after.ok == fault.after.requests,
        "after the restart every request got through the same sidecar: {:?}",
        fault.after
    );
    let redeploy = nano.deploy.as_ref().and_then(|d| d.redeploy.as_ref());
    let redeploy = redeploy.expect("the redeploy ran behind the sidecars");
    assert!(
        !redeploy.units.is_empty() && redeploy.window_requests > 0,
        "{redeploy:?}"
    );
    assert!(wait_for_no_processes(&run_id, Duration::from_secs(10)).is_empty());
}

/// One request on a fresh connection to `addr`, plaintext; what came back (empty when the
/// connection was closed on it).
fn plaintext_request(addr: &str) -> String {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let _ = stream.write_all(b"GET /health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
    let mut reply = Vec::new();
    let _ = stream.read_to_end(&mut reply);
    String::from_utf8_lossy(&reply).into_owned()
}

/// The same over TLS that trusts `ca_pem` but presents no client certificate.
fn tls_request_without_certificate(addr: &str, ca_pem: &str, run_id: &str) -> String {
    use rustls::pki_types::{pem::PemObject, CertificateDer, ServerName};
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap())
        .unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = ServerName::try_from(format!("member.{run_id}.grainbench.invalid")).unwrap();
    let connection = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let socket = std::net::TcpStream::connect(addr).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut tls = rustls::StreamOwned::new(connection, socket);
    let _ = tls.write_all(b"GET /health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
    let mut reply = Vec::new();
    let _ = tls.read_to_end(&mut reply);
    String::from_utf8_lossy(&reply).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_mutual_tls_a_caller_that_skips_its_sidecar_is_refused() {
    if !haproxy_or_skip() {
        return;
    }
    let source = scenario::load(&fixture("tiny.toml")).unwrap();
    let run_id = unique_run_id("mesh-mtls");
    let pki = Arc::new(launch::pki::RunPki::new(SecurityMode::Mtls, &run_id).unwrap());
    let options = LaunchOptions::new(unit_binary(), run_id.clone(), 1.0)
        .with_security(Some(pki.clone()), true)
        .meshed(Mesh::Sidecar);
    let deployment = plan::plan(&source.scenario, &Architecture::Nano)
        .unwrap()
        .secured(SecurityMode::Mtls)
        .meshed(Mesh::Sidecar)
        .unwrap();
    let live = launch::launch(&deployment, &options).await.unwrap();
    let callee = live.units.last().unwrap();
    assert!(callee.sidecar.is_some());
    // Plaintext to a sidecar's public listener: the TLS listener does not answer HTTP.
    let reply = plaintext_request(&callee.addr);
    assert!(
        !reply.contains("200 OK"),
        "plaintext reached the unit: {reply}"
    );
    // TLS that trusts the run's CA but presents no certificate: refused.
    let reply = tls_request_without_certificate(&callee.addr, &pki.driver().ca_pem, &run_id);
    assert!(
        !reply.contains("200 OK"),
        "an anonymous caller reached the unit: {reply}"
    );
    // The driver's certificate is the run's: the same sidecar serves it.
    let driver = live.options.client(Duration::from_secs(2)).unwrap();
    let status = driver.get_status(&callee.addr, "/health").await.unwrap();
    assert!(status.is_success());
    live.shutdown().await;
    assert!(wait_for_no_processes(&run_id, Duration::from_secs(10)).is_empty());
}

#[test]
fn sigkill_of_the_harness_leaves_no_sidecar_behind() {
    if !haproxy_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let run_id = unique_run_id("mesh-sigkill");
    let (long, units) = long_tiny(dir.path());
    let mut child = Command::new(grainbench_binary())
        .args([
            "run",
            "--arch",
            "nano",
            "--mesh",
            "sidecar",
            "--cold-starts",
            "1",
        ])
        .args(["--no-redeploy", "--run-id", &run_id, "--out"])
        .arg(dir.path().join("results"))
        .arg(&long)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Every unit and its sidecar up.
    assert!(
        wait_for_processes(&run_id, 2 * units, Duration::from_secs(30)),
        "the units and their sidecars never came up"
    );
    child.kill().unwrap(); // SIGKILL: no chance to clean up
    child.wait().unwrap();
    assert_eq!(
        wait_for_no_processes(&run_id, Duration::from_secs(10)),
        Vec::<u32>::new()
    );
}
