//! Helpers shared by the integration tests: fixture paths, finding a run's processes, and
//! driving steps against a deployed monolith.

#![allow(dead_code)] // each test binary uses its own subset

use grainbench::driver::engine::Schedule;
use grainbench::driver::requests::RequestGen;
use grainbench::driver::{self, StepConfig, Target, DEFAULT_SPIN};
use grainbench::launch::{self, LaunchOptions, LiveDeployment};
use grainbench::plan::{self, Architecture};
use grainbench::run::{self, RunOptions};
use grainbench::scenario::Scenario;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

pub fn grainbench_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_grainbench"))
}

/// The units' binary (`grainbench-unit`), built beside `grainbench` for the tests.
pub fn unit_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_grainbench-unit"))
}

/// A run id no other test uses.
pub fn unique_run_id(test: &str) -> String {
    format!(
        "test-{test}-{}-{}",
        std::process::id(),
        Instant::now().elapsed().as_nanos() ^ rand_suffix()
    )
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

/// Pids of live (non-zombie) processes whose command line carries `--run-id <run_id>`,
/// and the run's sidecar proxies.
pub fn processes_of_run(run_id: &str) -> Vec<u32> {
    let mut pids = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return pids;
    };
    for entry in entries.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        let is_unit_of_run = args
            .windows(2)
            .any(|w| w[0] == b"--run-id" && w[1] == run_id.as_bytes())
            && args.iter().any(|a| *a == b"unit");
        if (is_unit_of_run || is_sidecar_of_run(pid, run_id)) && !is_zombie(pid) {
            pids.push(pid);
        }
    }
    pids
}

/// Whether `pid` is a sidecar proxy of `run_id` (it carries `GRAINBENCH_RUN=<run_id>`).
fn is_sidecar_of_run(pid: u32, run_id: &str) -> bool {
    let marker = format!("{}={run_id}", grainbench::launch::sidecar::RUN_ENV);
    std::fs::read(format!("/proc/{pid}/environ"))
        .map(|env| env.split(|b| *b == 0).any(|v| v == marker.as_bytes()))
        .unwrap_or(false)
}

fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            stat.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(true)
}

/// Waits until no process of `run_id` is left, up to `limit`; returns those still alive.
pub fn wait_for_no_processes(run_id: &str, limit: Duration) -> Vec<u32> {
    let deadline = Instant::now() + limit;
    loop {
        let left = processes_of_run(run_id);
        if left.is_empty() || Instant::now() >= deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until at least `count` processes of `run_id` are alive.
pub fn wait_for_processes(run_id: &str, count: usize, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if processes_of_run(run_id).len() >= count {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

pub async fn deploy(scenario: &Scenario, architecture: Architecture, test: &str) -> LiveDeployment {
    let options = LaunchOptions::new(
        unit_binary(),
        unique_run_id(test),
        grain_runtime::work::measure_iterations_per_us(),
    )
    .with_network(scenario.network.clone());
    launch::launch(
        &plan::plan(scenario, &architecture).expect("the cut plans"),
        &options,
    )
    .await
    .unwrap_or_else(|error| panic!("{architecture} starts: {error}"))
}

pub async fn deploy_monolith(scenario: &Scenario, test: &str) -> LiveDeployment {
    deploy(scenario, Architecture::Monolith, test).await
}

pub fn targets(live: &LiveDeployment, scenario: &Scenario) -> Vec<Target> {
    scenario
        .entrypoints
        .iter()
        .map(|e| {
            Target::new(
                &e.op,
                live.addr_of(&e.op).unwrap(),
                scenario.operation(&e.op).unwrap().request_bytes,
            )
            .unwrap()
        })
        .collect()
}

/// Runs one step of `config` against `live`, with request stream `seed`.
pub async fn step_on(
    live: &LiveDeployment,
    scenario: &Scenario,
    config: &StepConfig,
    seed: u64,
) -> driver::StepMeasurement {
    let generator = RequestGen::new(scenario, seed);
    driver::run_step(
        &targets(live, scenario),
        generator,
        config,
        None,
        &CancellationToken::new(),
    )
    .await
    .expect("the step runs")
}

pub fn open_loop(rate: u32, warmup_ms: u64, duration_ms: u64, in_flight_cap: usize) -> StepConfig {
    StepConfig {
        schedule: Schedule::OpenLoop { rate },
        warmup: Duration::from_millis(warmup_ms),
        duration: Duration::from_millis(duration_ms),
        timeout: Duration::from_secs(5),
        in_flight_cap,
        spin: DEFAULT_SPIN,
        network: grain_runtime::network::NetworkModel::loopback(),
        keep_samples: false,
        trace_sample: 0.0,
        threads: 1,
        load_cores: None,
    }
}

/// Run options for a test: results in `out`, its own run id, one cold start, no redeploy,
/// a short equivalence check, one round. Tests change what they exercise.
pub fn test_run_options(name: &str, out: &std::path::Path) -> RunOptions {
    let mut options = RunOptions::new(name, unit_binary());
    options.out_dir = out.to_path_buf();
    options.run_id = unique_run_id(name);
    options.equivalence_requests = 12;
    options.cold_starts = 1;
    options.redeploy = run::RedeployPolicy::Off;
    options.repeat = 1;
    options
}

/// Options for a short run at one rate (50 req/s, 200 ms warm-up, 600 ms measured) on
/// top of [`test_run_options`].
pub fn short_run_options(name: &str, out: &std::path::Path) -> RunOptions {
    let mut options = test_run_options(name, out);
    options.load = run::LoadMode::Rates(vec![50]);
    options.duration = Some(Duration::from_millis(600));
    options.warmup = Some(Duration::from_millis(200));
    options
}

/// Runs `source` with `options`; the run must finish without error.
pub async fn run_ok(
    source: &grainbench::scenario::ScenarioSource,
    options: &RunOptions,
) -> grainbench::results::RunResults {
    let outcome = grainbench::outputs::run(source, options, &CancellationToken::new())
        .await
        .expect("options fit the scenario");
    assert!(
        outcome.error.is_none(),
        "{:?}",
        outcome.error.map(|e| e.to_string())
    );
    outcome.results
}

/// Every key path of a JSON document (`a.b[].c`), arrays collapsed: the shape of a
/// results file without its values.
pub fn key_paths(value: &serde_json::Value) -> std::collections::BTreeSet<String> {
    fn walk(value: &serde_json::Value, path: &str, out: &mut std::collections::BTreeSet<String>) {
        match value {
            serde_json::Value::Object(map) => {
                for (key, child) in map {
                    let child_path = if path.is_empty() {
                        key.clone()
                    } else {
                        format!("{path}.{key}")
                    };
                    out.insert(child_path.clone());
                    walk(child, &child_path, out);
                }
            }
            serde_json::Value::Array(items) => {
                for item in items {
                    walk(item, &format!("{path}[]"), out);
                }
            }
            _ => {}
        }
    }
    let mut out = std::collections::BTreeSet::new();
    walk(value, "", &mut out);
    out
}

/// Whether a Docker daemon answers; without one, says "skipped: no Docker" for the test
/// that asked (CI starts one, so there the container tests run).
pub fn docker_or_skip() -> Option<std::sync::MutexGuard<'static, ()>> {
    // The Docker tests run one at a time (all tests share one binary): two of them
    // building and removing images at once race in the daemon's build cache (a removed
    // image takes the cached layers another build is reusing). Runs in separate processes
    // are not serialized by this; see the closing note of the change that added it.
    static DOCKER: std::sync::Mutex<()> = std::sync::Mutex::new(());
    match grainbench::launch::container::docker_available() {
        Ok(()) => Some(DOCKER.lock().unwrap_or_else(|p| p.into_inner())),
        Err(error) => {
            eprintln!("skipped: no Docker ({error})");
            None
        }
    }
}

/// Every deployment of `results` agreed with the reference, answered every request, and
/// made the plan's hops per request at every step.
pub fn assert_same_business_and_hops(results: &grainbench::results::RunResults) {
    assert!(results.complete);
    let labels: Vec<String> = results.architectures.iter().map(|a| a.label()).collect();
    let mut agreed = results.equivalence.as_ref().unwrap().agreed.clone();
    agreed.sort();
    let mut expected = labels.clone();
    expected.sort();
    assert_eq!(agreed, expected, "every transport gave the same digests");
    for arch in &results.architectures {
        assert!(!arch.steps.is_empty(), "{}", arch.label());
        for step in &arch.steps {
            assert!(
                step.ok > 0 && step.error_total == 0,
                "{}: {step:?}",
                arch.label()
            );
            for entry in &step.entrypoints {
                assert!(
                    entry.hops_match_static,
                    "{} {}: {:?} against the plan's {:?}",
                    arch.label(),
                    entry.entrypoint,
                    entry.hops,
                    arch.static_hops.get(&entry.entrypoint)
                );
            }
        }
    }
}

/// `tiny.toml` with 60-second steps, written into `dir` (a run that is still loading when a
/// test interrupts or kills it), and how many units its nano cut has.
pub fn long_tiny(dir: &std::path::Path) -> (std::path::PathBuf, usize) {
    let long = dir.join("long.toml");
    let text = std::fs::read_to_string(fixture("tiny.toml"))
        .unwrap()
        .replace("duration_s = 1", "duration_s = 60");
    std::fs::write(&long, text).unwrap();
    let source = grainbench::scenario::load(&long).unwrap();
    let units = grainbench::plan::plan(&source.scenario, &grainbench::plan::Architecture::Nano)
        .unwrap()
        .units
        .len();
    (long, units)
}

/// Whether HAProxy is here; the tests say they were skipped without it.
pub fn haproxy_or_skip() -> bool {
    match grainbench::launch::sidecar::proxy_version() {
        Ok(_) => true,
        Err(error) => {
            eprintln!("skipped: no HAProxy ({error})");
            false
        }
    }
}

/// The cores each thread of process `pid` may run on (`Cpus_allowed_list`).
pub fn cores_of_threads(pid: u32) -> Vec<String> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).unwrap();
    tasks
        .map(|task| cores_of_task(&task.unwrap().path()))
        .collect()
}

/// The cores the thread whose `/proc/PID/task/TID` directory is `task` may run on.
pub fn cores_of_task(task: &std::path::Path) -> String {
    let status = std::fs::read_to_string(task.join("status")).unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with("Cpus_allowed_list:"))
        .unwrap();
    line.split_whitespace().nth(1).unwrap().to_string()
}
