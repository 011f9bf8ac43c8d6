//! Security per hop, on real unit processes: mutual TLS refuses callers without the run's
//! certificate, tokens are checked before any work, and a secured run gives the same
//! digests and hops as plaintext while writing no certificate or key anywhere.

use crate::common::*;
use bytes::Bytes;
use grain_runtime::client::{CallError, HttpClient};
use grain_runtime::security::{Credentials, SecurityMode, TokenKey};
use grain_runtime::wire::{encode_request, op_path};
use grainbench::launch::pki::{RunPki, DRIVER};
use grainbench::launch::{self, LaunchOptions, LiveDeployment};
use grainbench::plan::{self, Architecture};
use grainbench::scenario;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

async fn deploy_secured(mode: SecurityMode, test: &str) -> (LiveDeployment, Arc<RunPki>) {
    let source = scenario::load(&fixture("tiny.toml")).unwrap();
    let run_id = unique_run_id(test);
    let pki = Arc::new(RunPki::new(mode, &run_id).unwrap());
    let options = LaunchOptions::new(
        unit_binary(),
        run_id,
        grain_runtime::work::measure_iterations_per_us(),
    )
    .with_security(Some(pki.clone()), true);
    let plan = plan::plan(&source.scenario, &Architecture::Micro).unwrap();
    let live = launch::launch(&plan, &options)
        .await
        .unwrap_or_else(|e| panic!("a secured micro starts: {e}"));
    (live, pki)
}

async fn browse(live: &LiveDeployment, caller: Option<&Credentials>) -> Result<(), CallError> {
    let client = HttpClient::secured(Duration::from_secs(5), caller, true).unwrap();
    let body = Bytes::from(encode_request(
        &BTreeMap::from([("user".to_string(), 3)]),
        64,
    ));
    client
        .post(
            &live.endpoint_of("browse").unwrap(),
            &op_path("browse"),
            body,
        )
        .await
        .map(|_| ())
}

/// Under mtls+token a token's issuer must be the party the caller's certificate names:
/// the driver's certificate with a token signed in a unit's name is refused (every party
/// holds the one token key, so any could sign as another).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_mtls_and_tokens_a_token_must_be_issued_by_the_certificates_party() {
    let (live, pki) = deploy_secured(SecurityMode::MtlsToken, "mtls-token-iss").await;
    let driver = Credentials::clone(pki.driver());
    browse(&live, Some(&driver))
        .await
        .expect("the driver's own token and certificate are let in");
    let posing = Credentials {
        identity: "micro-back".into(),
        ..driver.clone()
    };
    match browse(&live, Some(&posing)).await {
        Err(CallError::Status {
            status: 401, body, ..
        }) => {
            assert!(body.contains("issuer"), "{body}")
        }
        other => panic!("a token in another party's name is refused: {other:?}"),
    }
    live.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_refuses_callers_without_the_runs_certificate() {
    let (live, pki) = deploy_secured(SecurityMode::Mtls, "mtls-refuses").await;
    let driver = Credentials::clone(pki.driver());
    browse(&live, Some(&driver))
        .await
        .expect("the run's driver is let in");

    // TLS that trusts the units, but presents no certificate.
    let anonymous = Credentials {
        mode: SecurityMode::Tls,
        ..driver.clone()
    };
    let refused = browse(&live, Some(&anonymous)).await;
    assert!(refused.is_err(), "no client certificate: {refused:?}");

    // A certificate from another run's CA, presented to a caller that trusts the units.
    let foreign = RunPki::new(SecurityMode::Mtls, "another-run")
        .unwrap()
        .issue(DRIVER)
        .unwrap();
    let impostor = Credentials {
        ca_pem: driver.ca_pem.clone(),
        ..foreign
    };
    let refused = browse(&live, Some(&impostor)).await;
    assert!(refused.is_err(), "a foreign CA's certificate: {refused:?}");

    // Plaintext never reaches an operation either.
    assert!(browse(&live, None).await.is_err());
    live.shutdown().await;
}

/// POSTs to `path` of `addr` over plain TCP with `token`, and returns the status code.
fn post_with_token(addr: &str, path: &str, token: Option<&str>) -> u16 {
    let body = encode_request(&BTreeMap::from([("user".to_string(), 3)]), 64);
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n{auth}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    stream.write_all(&body).unwrap();
    let mut reply = String::new();
    let _ = stream.read_to_string(&mut reply);
    reply
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unit_answers_401_to_an_expired_or_tampered_token() {
    let (live, pki) = deploy_secured(SecurityMode::Token, "token-refuses").await;
    let driver = pki.driver();
    let key = TokenKey::of(driver).unwrap().expect("token mode has a key");
    let addr = live.addr_of("browse").unwrap().to_string();
    let path = op_path("browse");
    let now = grain_runtime::security::unix_now();
    let unit_of = |op: &str| {
        let process = live.endpoint_of(op).unwrap().unit;
        grain_runtime::resilience::unit_of_process(&process).to_string()
    };
    let (callee, other) = (unit_of("browse"), unit_of("lookup"));
    assert_ne!(callee, other, "micro serves them in two units");
    let valid = key.sign(DRIVER, &callee, &path, now + 60);
    let expired = key.sign(DRIVER, &callee, &path, now - 1);
    let tampered = valid.replacen('.', ".e", 1);
    let for_another_path = key.sign(DRIVER, &callee, &op_path("buy"), now + 60);
    // Same path, another unit: the audience was the path, so every state unit's /get
    // took every other's tokens.
    let for_another_unit = key.sign(DRIVER, &other, &path, now + 60);
    let control = grain_runtime::wire::DELAY_ERRORS_PATH;
    let addr2 = addr.clone();
    let statuses = tokio::task::spawn_blocking(move || {
        [
            post_with_token(&addr2, &path, Some(&valid)),
            post_with_token(&addr2, &path, Some(&expired)),
            post_with_token(&addr2, &path, Some(&tampered)),
            post_with_token(&addr2, &path, Some(&for_another_path)),
            post_with_token(&addr2, &path, Some(&for_another_unit)),
            post_with_token(&addr2, &path, None),
            // The harness's control route: emptying the measurement counters needs a token.
            post_with_token(&addr2, control, None),
        ]
    })
    .await
    .unwrap();
    assert_eq!(
        statuses,
        [200, 401, 401, 401, 401, 401, 401],
        "valid, expired, tampered, wrong path, wrong unit, none, control route without one"
    );
    live.shutdown().await;
}

/// Files under `dir` (a few levels down) changed since `since` whose text holds a PEM
/// certificate or key.
fn pem_files(dir: &std::path::Path, since: SystemTime, depth: usize) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(meta) = entry.metadata() else { continue };
        if meta.is_dir() && depth > 0 {
            found.extend(pem_files(&path, since, depth - 1));
        } else if meta.is_file()
            && meta.len() < 50_000_000
            && meta.modified().is_ok_and(|m| m >= since)
        {
            let text = std::fs::read(&path).unwrap_or_default();
            let text = String::from_utf8_lossy(&text);
            if text.contains("PRIVATE KEY-----") || text.contains("BEGIN CERTIFICATE-----") {
                found.push(path);
            }
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_under_mtls_and_tokens_matches_plaintext_and_leaves_no_key() {
    let started = SystemTime::now();
    let source = scenario::load(&fixture("tiny.toml")).unwrap();
    let out = tempfile::tempdir().unwrap();
    let mut options = short_run_options("security-run", out.path());
    options.architectures = vec![Architecture::Nano, Architecture::Monolith];
    options.deploy.security = vec![SecurityMode::None, SecurityMode::MtlsToken];
    let run_id = options.run_id.clone();
    let results = run_ok(&source, &options).await;
    assert!(results.complete);
    let labels: Vec<String> = results.architectures.iter().map(|a| a.label()).collect();
    assert_eq!(
        labels,
        ["nano", "nano+mtls+token", "monolith", "monolith+mtls+token"]
    );
    // Every deployment gave the reference's digests (a mismatch stops the run).
    let mut agreed = results.equivalence.as_ref().unwrap().agreed.clone();
    agreed.sort();
    let mut expected = labels.clone();
    expected.sort();
    assert_eq!(agreed, expected);
    // Security changes no hop: each secured step made the plaintext step's hops, the
    // plan's static hops.
    for pair in results.architectures.chunks(2) {
        let (plain, secured) = (&pair[0], &pair[1]);
        assert_eq!(secured.security, SecurityMode::MtlsToken);
        assert_eq!(plain.static_hops, secured.static_hops);
        for (p, s) in plain.steps.iter().zip(&secured.steps) {
            assert!(s.ok > 0 && s.error_total == 0, "{}: {s:?}", secured.label());
            for (pe, se) in p.entrypoints.iter().zip(&s.entrypoints) {
                assert_eq!(pe.entrypoint, se.entrypoint);
                assert!(se.hops_match_static && pe.hops_match_static);
                assert_eq!(
                    pe.hops.mean_total,
                    se.hops.mean_total,
                    "{}",
                    secured.label()
                );
            }
        }
        let tls_steps = secured
            .steps
            .iter()
            .filter(|s| s.generator.driver_tls_ms > 0.0);
        assert!(tls_steps.count() > 0, "the driver spoke TLS");
    }
    // No certificate or key anywhere: not in the results, not in the temp directory.
    assert_eq!(
        pem_files(out.path(), started, 4),
        Vec::<std::path::PathBuf>::new()
    );
    assert_eq!(
        pem_files(&std::env::temp_dir(), started, 3),
        Vec::<std::path::PathBuf>::new()
    );
    assert!(wait_for_no_processes(&run_id, Duration::from_secs(10)).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_under_mtls_and_tokens_prints_what_curl_needs() {
    let source = scenario::load(&fixture("tiny.toml")).unwrap();
    let request = grainbench::up::UpRequest {
        cut: Architecture::Monolith,
        overrides: Default::default(),
        security: SecurityMode::MtlsToken,
        target: Default::default(),
        unit_cores: None,
    };
    let up = grainbench::up::Up::start(&source, &request, unit_binary())
        .await
        .expect("a secured monolith comes up");
    let live = &up.live;
    let text = grainbench::up::describe(&source, live);
    for needed in [
        "https://127.0.0.1:",
        "-----BEGIN CERTIFICATE-----",
        "PRIVATE KEY-----",
        "--cacert ca.pem --cert client.pem --key client-key.pem -H 'authorization: Bearer ",
    ] {
        assert!(text.contains(needed), "{needed:?} missing from:\n{text}");
    }
    let driver = live.options.driver_credentials().unwrap();
    browse(live, Some(&driver))
        .await
        .expect("the printed caller is let in");
    up.stop().await;
}

/// A caller that opens a TLS connection and never says a word is dropped after the
/// handshake timeout (it held a task and a socket for good).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_tls_caller_is_dropped_after_the_handshake_timeout() {
    let (live, _pki) = deploy_secured(SecurityMode::Tls, "tls-silent").await;
    let addr = live.addr_of("browse").unwrap().to_string();
    let limit = grain_runtime::host::HANDSHAKE_TIMEOUT + Duration::from_secs(10);
    let closed = tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(&addr).unwrap();
        stream.set_read_timeout(Some(limit)).unwrap();
        let mut buf = [0u8; 64];
        // EOF (0 bytes) or a reset: the server closed it; a timeout: it never did.
        match stream.read(&mut buf) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => !matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
        }
    })
    .await
    .unwrap();
    assert!(
        closed,
        "the unit closed a connection that never began its handshake"
    );
    live.shutdown().await;
}
