//! Faults under load, on real unit processes: a killed unit fails only the entrypoints
//! whose calls reach it, its failures are blamed on it, it is restarted, and nothing is
//! left behind; replicas with retries mask the same kill; a freeze shorter than the call
//! timeout costs latency, not requests; a failure's reply reports the hops made before it;
//! SIGTERM in a long fault stops the run at once.

use crate::common::*;
use grainbench::plan::Architecture;
use grainbench::results::FaultResult;
use grainbench::scenario::{self, fault::Fault};
use std::process::{Command, Stdio};
use std::time::Duration;

fn fault(text: &str) -> Fault {
    text.parse().unwrap()
}

fn only_fault(results: &grainbench::results::RunResults, arch: &str) -> FaultResult {
    let a = results
        .architectures
        .iter()
        .find(|a| a.architecture.name() == arch)
        .unwrap_or_else(|| panic!("{arch} ran"));
    assert_eq!(a.faults.len(), 1, "{arch}: one fault step");
    a.faults[0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_unit_fails_only_what_reaches_it_is_blamed_and_restarted() {
    let source = scenario::load(&fixture("tiny.toml")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut options = short_run_options("fault-kill", &dir.path().join("out"));
    options.architectures = vec![Architecture::Nano];
    // `price` is reached by `buy` only; `browse` calls `lookup`.
    options.faults = vec![fault("kill:price@1s+500ms")];
    let run_id = options.run_id.clone();
    let results = run_ok(&source, &options).await;
    let f = only_fault(&results, "nano");
    assert_eq!(f.process, "nano-price");
    let entry = |name: &str| f.entrypoints.iter().find(|e| e.entrypoint == name).unwrap();
    let (buy, browse) = (entry("buy"), entry("browse"));
    assert!(buy.requests > 0 && buy.failed == buy.requests, "{buy:?}");
    assert!(browse.requests > 0 && browse.failed == 0, "{browse:?}");
    assert_eq!(f.fully_available(), ["browse"]);
    assert_eq!(
        f.blamed.get("nano-price").copied(),
        Some(buy.failed),
        "every failure blamed on the killed unit: {:?}, unnamed {}",
        f.blamed,
        f.unblamed
    );
    assert_eq!(f.killed_ending.as_deref(), Some("killed by signal 9"));
    assert!(f.restart_ms.is_some(), "the killed unit was restarted");
    assert_eq!(
        f.after.ok, f.after.requests,
        "after the restart every request succeeds: {:?}",
        f.after
    );
    assert!(f.recovery_s.is_some(), "recovered within the step");
    assert!(
        wait_for_no_processes(&run_id, Duration::from_secs(10)).is_empty(),
        "no process of the run (the restarted one included) outlives it"
    );
    // The page shows the section.
    let page = std::fs::read_to_string(dir.path().join("out").join("index.html")).unwrap();
    assert!(page.contains("Faults: which cut stays available"));
    assert!(page.contains("kill:price@1s+500ms"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_with_retries_mask_the_same_kill() {
    let source = scenario::load(&fixture("tiny.toml")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut options = short_run_options("fault-replicas", &dir.path().join("out"));
    options.architectures = vec![Architecture::Nano, Architecture::Micro];
    options.deploy.replicas = Some(2);
    options.deploy.resilience.retries = Some(2);
    options.faults = vec![fault("kill:price@1s+1s")];
    let run_id = options.run_id.clone();
    let results = run_ok(&source, &options).await;
    let (mut requests, mut ok) = (0, 0);
    for arch in ["nano", "micro"] {
        let f = only_fault(&results, arch);
        assert_eq!(f.replicas, 2, "{arch}");
        assert!(f.process.ends_with("#0"), "{arch}: {}", f.process);
        requests += f.during.requests;
        ok += f.during.ok;
    }
    let micro = results
        .architectures
        .iter()
        .find(|a| a.architecture == Architecture::Micro)
        .unwrap();
    assert_eq!(
        micro.deploy.as_ref().unwrap().processes,
        2 * 2 + 1,
        "two units twice, and the shared state unit"
    );
    assert!(requests > 0);
    let ratio = ok as f64 / requests as f64;
    assert!(
        ratio >= 0.99,
        "{ok} of {requests} succeeded during the kill"
    );
    assert!(wait_for_no_processes(&run_id, Duration::from_secs(10)).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_freeze_shorter_than_the_timeout_costs_latency_not_requests() {
    let source = scenario::load(&fixture("tiny.toml")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut options = short_run_options("fault-freeze", &dir.path().join("out"));
    options.architectures = vec![Architecture::Micro];
    options.faults = vec![fault("freeze:price@1s+500ms")];
    let results = run_ok(&source, &options).await;
    let f = only_fault(&results, "micro");
    assert_eq!(f.during.ok, f.during.requests, "no request failed: {f:?}");
    let (before, during) = (f.before.p99_us.unwrap(), f.during.p99_us.unwrap());
    assert!(
        during > 5 * before,
        "requests due during the freeze wait for it: p99 {before} µs before, {during} µs during"
    );
    assert_eq!(f.recovery_s, Some(0.0), "no outage: nothing failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_without_a_budget_amplify_hops_and_a_budget_holds_them_back() {
    let source = scenario::load(&fixture("tiny.toml")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let run = |name: &str, budget: Option<f64>| {
        let mut options = short_run_options(name, &dir.path().join(name));
        options.architectures = vec![Architecture::Nano];
        options.deploy.resilience.retries = Some(3);
        options.deploy.resilience.retry_budget_percent = Some(budget);
        // Half of `lookup`'s replies fail for 2 s; every entrypoint calls it.
        options.faults = vec![fault("fail:lookup@1s+2s=0.5")];
        options
    };
    let (storm, budgeted) = (run("fault-storm", None), run("fault-budget", Some(10.0)));
    let (storm, budgeted) = tokio::join!(run_ok(&source, &storm), run_ok(&source, &budgeted));
    let (storm, budgeted) = (only_fault(&storm, "nano"), only_fault(&budgeted, "nano"));
    let amplification = |f: &FaultResult| f.amplification().expect("some requests succeeded");
    // Each failed call to `lookup` is retried (15 in 16 succeed within 3 retries): about
    // 0.7 extra hops per request that succeeds, on some 5.7 planned.
    assert!(
        amplification(&storm) > 1.05,
        "without a budget retries add hops: {:.2}×",
        amplification(&storm)
    );
    assert!(
        amplification(&budgeted) < amplification(&storm),
        "a 10 % budget holds them back: {:.2}× against {:.2}×",
        amplification(&budgeted),
        amplification(&storm)
    );
    assert!(
        storm.during.success_ratio() > budgeted.during.success_ratio(),
        "and costs requests: {:?} against {:?}",
        budgeted.during,
        storm.during
    );
    // The retries are reported, not only seen as hops: the units' reply headers add up.
    assert!(storm.step.unit_retries > 0, "retries reported");
    assert!(
        storm.step.unit_retries > budgeted.step.unit_retries,
        "{} retries without a budget against {} with one",
        storm.step.unit_retries,
        budgeted.step.unit_retries
    );
    assert!(
        storm.blamed.keys().all(|p| p == "nano-lookup"),
        "failures are blamed on the failing unit: {:?}",
        storm.blamed
    );
}

/// A request that fails downstream still reports the hops made before the failure, so a
/// caller that retries it counts what the failed attempt cost: `buy` (nano) calls `lookup`
/// (which reads its state), then `price` (which reads its state) and `store` in parallel;
/// `store` fails, so `buy` answers 502 having made 3 service and 2 state hops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_reply_reports_the_hops_made_before_it() {
    use grain_runtime::client::{CallError, HttpClient};
    use grain_runtime::model::ReplyFault;
    use grain_runtime::wire::{encode_request, op_path, Hops};
    let source = scenario::load(&fixture("tiny.toml")).unwrap();
    let mut live = deploy(&source.scenario, Architecture::Nano, "failure-hops").await;
    let always = ReplyFault {
        delay_ms: 0.0,
        fail_probability: 1.0,
    };
    live.set_faults([("nano-store".to_string(), always)].into())
        .await
        .unwrap();
    let params = [("user".to_string(), 1), ("order".to_string(), 1)].into();
    let client = HttpClient::new(Duration::from_secs(5));
    let failed = client
        .post(
            &live.endpoint_of("buy").unwrap(),
            &op_path("buy"),
            encode_request(&params, 300).into(),
        )
        .await
        .expect_err("store always fails");
    match failed {
        CallError::Status {
            status,
            failed_unit,
            hops,
            ..
        } => {
            assert_eq!(status, 502);
            assert_eq!(failed_unit.as_deref(), Some("nano-store"));
            assert_eq!(
                hops,
                Hops {
                    service: 3,
                    state: 2
                },
                "lookup, price and the failed store call; lookup's and price's reads"
            );
        }
        other => panic!("expected a 502, got {other}"),
    }
    let run_id = live.options.run_id.clone();
    live.shutdown().await;
    assert!(wait_for_no_processes(&run_id, Duration::from_secs(5)).is_empty());
}

/// Whether a process of `run_id` is stopped (SIGSTOP: a freeze fault is on).
fn a_process_is_frozen(run_id: &str) -> bool {
    processes_of_run(run_id).into_iter().any(|pid| {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
            stat.rfind(')')
                .and_then(|end| stat[end + 1..].split_whitespace().next())
                == Some("T")
        })
    })
}

/// SIGTERM during a 600 s freeze stops the run at once: the fault is raced against the
/// cancellation and lifted, not waited out. With stderr a closed pipe too: the signal task
/// printed before it cancelled, so the print's panic killed it and the run went on for the
/// whole fault (still running 7 minutes later).
#[test]
fn sigterm_in_a_fault_step_stops_at_once_even_with_stderr_closed() {
    let dir = tempfile::tempdir().unwrap();
    let run_id = unique_run_id("fault-sigterm");
    let mut child = Command::new(grainbench_binary())
        .args([
            "run",
            "--arch",
            "monolith",
            "--cold-starts",
            "1",
            "--no-redeploy",
        ])
        .args([
            "--repeat",
            "1",
            "--rates",
            "50",
            "--warmup",
            "0",
            "--duration",
            "0.5",
        ])
        .args([
            "--fault",
            "freeze:lookup@1s+600s",
            "--run-id",
            &run_id,
            "--out",
        ])
        .arg(dir.path().join("results"))
        .arg(fixture("tiny.toml"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stderr.take()); // a closed pipe: every later write to stderr fails
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !a_process_is_frozen(&run_id) {
        if std::time::Instant::now() >= deadline {
            let _ = child.kill();
            panic!("the freeze never began");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: signals our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() >= deadline {
            let _ = child.kill();
            panic!("the harness was still running 20 s after SIGTERM in a 600 s freeze");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(130));
    assert_eq!(
        wait_for_no_processes(&run_id, Duration::from_secs(5)),
        Vec::<u32>::new()
    );
}
