//! The driver's efficiency benchmark (`grainbench calibrate`): a minimal unit (one
//! operation, no work, small bodies) is started as a real process, the load engine drives
//! it open loop at a fixed rate, and its send lag and CPU per request are measured; when
//! `wrk` is installed it is run against the same endpoint in the same session and its CPU
//! per request (from the kernel's child accounting) is put beside ours as a ratio.

use crate::driver::engine::Schedule;
use crate::driver::requests::RequestGen;
use crate::driver::{self, StepConfig, StepMeasurement, Target};
use crate::launch::{self, LaunchError, LaunchOptions, LiveDeployment};
use crate::plan::{Architecture, Deployment, PlannedUnit};
use crate::results::Percentiles;
use crate::scenario::{Distribution, Entrypoint, LoadProfile, Param, Scenario, Service};
use grain_runtime::model::{OperationDef, UnitRole};
use grain_runtime::network::NetworkModel;
use grain_runtime::wire::{encode_request, Hops};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const PING: &str = "ping";
const BODY_BYTES: usize = 64;

/// How to calibrate.
#[derive(Debug, Clone)]
pub struct CalibrateOptions {
    pub unit_binary: PathBuf,
    pub run_id: String,
    pub rate: u32,
    pub duration: Duration,
    /// Connections wrk uses (closed loop, as fast as it can).
    pub wrk_connections: usize,
    /// The engine's spin window before each send.
    pub spin: Duration,
    /// Load threads (`None`: from the rate and the cores).
    pub threads: Option<usize>,
    /// Also ramp to the driver's capacity (about 1.3 s per rate from 1 000 req/s, ×1.5).
    pub capacity: bool,
}

/// What the calibration measured.
#[derive(Debug, Clone, Serialize)]
pub struct Calibration {
    pub rate: u32,
    pub duration_s: f64,
    pub spin_us: u64,
    pub connections: usize,
    pub achieved_rps: f64,
    pub send_lag_us: Percentiles,
    pub latency_us: Percentiles,
    pub driver_cpu_us_per_request: f64,
    /// The spin window the open loop learned, µs, and the share of its CPU spent spinning.
    pub spin_window_us: f64,
    pub spin_share: f64,
    /// The driver in closed loop with wrk's connection count, for a like-for-like CPU figure.
    pub driver_closed_loop_rps: f64,
    pub driver_closed_loop_threads: usize,
    pub driver_closed_loop_cpu_us_per_request: f64,
    pub wrk: Option<WrkFigures>,
    /// Why wrk figures are missing, when they are.
    pub wrk_note: Option<String>,
    /// The highest open-loop rate the driver holds against the same endpoint.
    pub capacity: Option<crate::capacity::Capacity>,
    /// Why the capacity is missing, when it is.
    pub capacity_note: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct WrkFigures {
    pub connections: usize,
    /// wrk's threads: the same as the driver's closed loop.
    pub threads: usize,
    pub requests: u64,
    pub rps: f64,
    pub cpu_us_per_request: f64,
    /// Our closed-loop CPU per request divided by wrk's (1.0 = as cheap as wrk).
    pub driver_to_wrk_cpu_ratio: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum CalibrateError {
    #[error(transparent)]
    Launch(#[from] LaunchError),
    #[error(transparent)]
    Driver(#[from] driver::DriverError),
}

/// The one-operation scenario calibration drives.
fn ping_scenario() -> Scenario {
    Scenario {
        name: "calibrate".into(),
        description: "minimal endpoint".into(),
        seed: 1,
        params: vec![Param {
            name: "n".into(),
            distribution: Distribution::Sequence,
        }],
        services: vec![Service {
            name: "ping".into(),
            operations: vec![PING.into()],
            data: Vec::new(),
            replicas: 1,
        }],
        operations: vec![OperationDef {
            name: PING.into(),
            service: "ping".into(),
            cpu_us: 0,
            request_bytes: BODY_BYTES,
            response_bytes: BODY_BYTES,
            reads: Vec::new(),
            writes: Vec::new(),
            write_bytes: 0,
            calls: Vec::new(),
        }],
        entrypoints: vec![Entrypoint {
            op: PING.into(),
            weight: 1,
        }],
        load: LoadProfile {
            rates: vec![1],
            duration: Duration::from_secs(1),
            warmup: Duration::ZERO,
            timeout: Duration::from_secs(2),
            p99_budget: None,
        },
        network: NetworkModel::loopback(),
        cuts: Vec::new(),
        security: Default::default(),
        resilience: Default::default(),
        faults: Vec::new(),
    }
}

fn ping_deployment(scenario: &Scenario) -> Deployment {
    Deployment {
        architecture: Architecture::Monolith,
        security: Default::default(),
        units: vec![PlannedUnit {
            name: "calibrate-ping".into(),
            hosts: vec![PING.into()],
            role: UnitRole::Service {
                operations: scenario.operations.clone(),
                embedded_stores: Vec::new(),
                remote_request_bytes: BTreeMap::new(),
            },
            replicas: 1,
        }],
        op_unit: BTreeMap::from([(PING.to_string(), 0)]),
        store_unit: BTreeMap::new(),
        static_hops: BTreeMap::from([(
            PING.to_string(),
            Hops {
                service: 1,
                state: 0,
            },
        )]),
        critical_path_hops: BTreeMap::from([(PING.to_string(), 1)]),
    }
}

/// Starts the minimal unit (one operation, no work, nothing downstream).
pub(crate) async fn launch_ping(
    unit_binary: &Path,
    run_id: &str,
) -> Result<LiveDeployment, LaunchError> {
    let mut launch_options = LaunchOptions::new(unit_binary.to_path_buf(), run_id.to_string(), 1.0);
    // Half the machine, so that the endpoint is not what saturates first: with a unit's
    // usual 2 threads it held ~120 000 req/s closed loop on a 16-core machine, and an
    // open-loop step at 100 000 req/s measured the endpoint (p99 35 ms), not the driver.
    launch_options.worker_threads = Some(ping_worker_threads());
    launch::launch(&ping_deployment(&ping_scenario()), &launch_options).await
}

/// Threads of the minimal endpoint's runtime: half the cores, at least 2.
fn ping_worker_threads() -> usize {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    (cores / 2).max(2)
}

/// Runs the calibration.
pub async fn calibrate(options: &CalibrateOptions) -> Result<Calibration, CalibrateError> {
    let live = launch_ping(&options.unit_binary, &options.run_id).await?;
    let addr = live.units[0].addr.clone();
    let mut result = measure(options, &addr).await;
    if let (Ok(calibration), true) = (result.as_mut(), options.capacity) {
        match crate::capacity::measure_at(&addr, &CancellationToken::new()).await {
            Ok(capacity) => calibration.capacity = Some(capacity),
            Err(error) => calibration.capacity_note = Some(error.to_string()),
        }
    }
    live.shutdown().await;
    result
}

/// A step against the ping unit: 500 ms warm-up, 2 s timeout, no in-flight cap to speak of.
pub(crate) fn ping_step_config(
    schedule: Schedule,
    duration: Duration,
    spin: Duration,
    network: NetworkModel,
) -> StepConfig {
    StepConfig {
        schedule,
        warmup: Duration::from_millis(500),
        duration,
        timeout: Duration::from_secs(2),
        in_flight_cap: 10_000,
        spin,
        network,
        keep_samples: false,
        threads: crate::driver::auto_threads(schedule),
    }
}

/// Runs one step of `config` against the ping unit at `addr` with request stream `seed`.
pub(crate) async fn run_ping_step(
    addr: &str,
    config: &StepConfig,
    seed: u64,
    cancel: &CancellationToken,
) -> Result<StepMeasurement, driver::DriverError> {
    let targets = [Target::new(PING, addr, BODY_BYTES)?];
    let generator = RequestGen::new(&ping_scenario(), seed);
    driver::run_step(&targets, generator, config, None, cancel).await
}

async fn measure(options: &CalibrateOptions, addr: &str) -> Result<Calibration, CalibrateError> {
    let cancel = CancellationToken::new();
    let step = |schedule| {
        let mut config = ping_step_config(
            schedule,
            options.duration,
            options.spin,
            NetworkModel::loopback(),
        );
        config.threads = options.threads.unwrap_or(config.threads);
        config
    };
    let open_config = step(Schedule::OpenLoop { rate: options.rate });
    let open = run_ping_step(addr, &open_config, 1, &cancel).await?;
    let closed_config = step(Schedule::ClosedLoop {
        connections: options.wrk_connections,
    });
    let closed = run_ping_step(addr, &closed_config, 2, &cancel).await?;
    let closed_threads = closed.threads;
    let per_request = |m: &driver::StepMeasurement| {
        if m.engine.sent == 0 {
            0.0
        } else {
            m.engine.cpu.as_secs_f64() * 1e6 / m.engine.sent as f64
        }
    };
    let closed_cpu = per_request(&closed);
    let (wrk, wrk_note) = match run_wrk(
        addr,
        options.wrk_connections,
        closed_threads,
        options.duration,
    ) {
        Ok(mut figures) => {
            figures.driver_to_wrk_cpu_ratio =
                round2(closed_cpu / figures.cpu_us_per_request.max(1e-9));
            (Some(figures), None)
        }
        Err(note) => (None, Some(note)),
    };
    Ok(Calibration {
        rate: options.rate,
        duration_s: options.duration.as_secs_f64(),
        spin_us: options.spin.as_micros() as u64,
        connections: options.wrk_connections,
        achieved_rps: round2(open.achieved_rps),
        send_lag_us: Percentiles::of(&open.send_lag),
        latency_us: Percentiles::of(&open.overall.corrected),
        driver_cpu_us_per_request: round2(per_request(&open)),
        spin_window_us: round2(open.engine.spin_window.as_secs_f64() * 1e6),
        spin_share: round2(
            (open.engine.spinning.as_secs_f64() / open.engine.cpu.as_secs_f64().max(1e-9)).min(1.0),
        ),
        driver_closed_loop_rps: round2(closed.achieved_rps),
        driver_closed_loop_threads: closed_threads,
        driver_closed_loop_cpu_us_per_request: round2(closed_cpu),
        wrk,
        wrk_note,
        capacity: None,
        capacity_note: None,
    })
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Runs wrk against the ping endpoint with as many threads as the driver's closed loop had
/// (at most one per connection); returns its figures or why it could not.
fn run_wrk(
    addr: &str,
    connections: usize,
    threads: usize,
    duration: Duration,
) -> Result<WrkFigures, String> {
    let threads = threads.clamp(1, connections.max(1));
    let wrk = find_on_path("wrk")
        .ok_or("wrk is not installed (apt-get install wrk, or scripts/install-wrk.sh)")?;
    let dir = PrivateDir::create()?;
    let script = dir.0.join("post.lua");
    let body = String::from_utf8_lossy(&encode_request(
        &BTreeMap::from([("n".to_string(), 1)]),
        BODY_BYTES,
    ))
    .into_owned();
    let lua = format!(
        "wrk.method = \"POST\"\nwrk.body = [[{body}]]\nwrk.headers[\"Content-Type\"] = \"application/json\"\n"
    );
    std::fs::write(&script, lua).map_err(|e| format!("cannot write the wrk script: {e}"))?;
    let seconds = duration.as_secs().max(1);
    let before = children_cpu();
    let started = Instant::now();
    let output = std::process::Command::new(wrk)
        .args([
            &format!("-t{threads}"),
            &format!("-c{connections}"),
            &format!("-d{seconds}s"),
            "-s",
        ])
        .arg(&script)
        .arg(format!("http://{addr}/op/{PING}"))
        .output()
        .map_err(|e| format!("cannot run wrk: {e}"))?;
    drop(dir);
    let cpu = children_cpu().saturating_sub(before);
    let elapsed = started.elapsed();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let requests =
        parse_wrk_requests(&stdout).ok_or_else(|| format!("cannot read wrk's output: {stdout}"))?;
    Ok(WrkFigures {
        connections,
        threads,
        requests,
        rps: round2(requests as f64 / elapsed.as_secs_f64()),
        cpu_us_per_request: round2(cpu.as_secs_f64() * 1e6 / requests.max(1) as f64),
        driver_to_wrk_cpu_ratio: 0.0,
    })
}

/// "  123456 requests in 5.00s, ..." → 123456.
fn parse_wrk_requests(output: &str) -> Option<u64> {
    output
        .lines()
        .find(|line| line.contains(" requests in "))
        .and_then(|line| line.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// User + system CPU of all waited-for children of this process.
fn children_cpu() -> Duration {
    // SAFETY: getrusage fills the zeroed struct we own.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, (t.tv_usec as u32) * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    })
}

/// A directory of our own under the temp dir: a name nobody can predict or take first
/// (created exclusively, mode 0700), removed with everything in it when dropped, on
/// every path out.
struct PrivateDir(PathBuf);

impl PrivateDir {
    fn create() -> Result<Self, String> {
        use std::os::unix::fs::DirBuilderExt as _;
        let mut last_error = None;
        for attempt in 0..16u32 {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            let name = format!("grainbench-wrk-{}-{nanos:x}-{attempt}", std::process::id());
            let dir = std::env::temp_dir().join(name);
            match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
                Ok(()) => return Ok(PrivateDir(dir)),
                Err(error) => last_error = Some(error),
            }
        }
        Err(format!(
            "cannot create a private temp directory: {}",
            last_error.map_or_else(String::new, |e| e.to_string())
        ))
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Renders the calibration for the terminal.
pub fn render(c: &Calibration) -> String {
    let mut out = format!(
        "open loop at {} req/s for {:.0} s (spin at most {} µs, learned {:.0} µs): achieved {:.1} req/s\n  send lag  p50 {} µs  p99 {} µs  p99.9 {} µs  max {} µs\n  latency   p50 {} µs  p99 {} µs\n  driver CPU {:.2} µs per request, {:.0} % of it spinning before sends\nclosed loop ({} connections, {} threads): {:.0} req/s, driver CPU {:.2} µs per request\n",
        c.rate, c.duration_s, c.spin_us, c.spin_window_us, c.achieved_rps,
        c.send_lag_us.p50, c.send_lag_us.p99, c.send_lag_us.p999, c.send_lag_us.max,
        c.latency_us.p50, c.latency_us.p99, c.driver_cpu_us_per_request, c.spin_share * 100.0,
        c.connections, c.driver_closed_loop_threads, c.driver_closed_loop_rps,
        c.driver_closed_loop_cpu_us_per_request,
    );
    match (&c.wrk, &c.wrk_note) {
        (Some(w), _) => out.push_str(&format!(
            "wrk ({} connections, {} threads, same endpoint): {:.0} req/s, {:.2} µs CPU per request\ndriver / wrk CPU per request: {:.2}×\n",
            w.connections, w.threads, w.rps, w.cpu_us_per_request, w.driver_to_wrk_cpu_ratio
        )),
        (None, Some(note)) => out.push_str(&format!("wrk: not measured — {note}\n")),
        (None, None) => {}
    }
    match (&c.capacity, &c.capacity_note) {
        (Some(capacity), _) => out.push_str(&render_capacity(capacity)),
        (None, Some(note)) => out.push_str(&format!("capacity: not measured — {note}\n")),
        (None, None) => {}
    }
    out
}

fn render_capacity(c: &crate::capacity::Capacity) -> String {
    let rate = |r: Option<u32>| {
        r.map_or("none of the ramp's rates".to_string(), |r| {
            format!("{r} req/s")
        })
    };
    let mut out = format!(
        "capacity (open loop, ramp from 1 000 req/s ×1.5, 1 s steps): {} with send lag p99 ≤ {} µs and ≥ {:.0} % achieved; valid steps (send lag p99 ≤ 1 ms, ≥ 95 %) up to {}{}\n",
        rate(c.strict_rps),
        crate::capacity::STRICT_SEND_LAG_P99_US,
        crate::capacity::STRICT_ACHIEVED_SHARE * 100.0,
        rate(c.valid_rps),
        if c.reached_limit { " (the ramp reached the rate limit)" } else { "" },
    );
    for p in &c.probes {
        out.push_str(&format!(
            "  {:>7} req/s on {} thread(s): achieved {:.0}, send lag p99 {} µs\n",
            p.rate, p.threads, p.achieved_rps, p.send_lag_p99_us
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_temp_dirs_are_unique_owner_only_and_removed() {
        use std::os::unix::fs::PermissionsExt as _;
        let (a, b) = (PrivateDir::create().unwrap(), PrivateDir::create().unwrap());
        assert_ne!(a.0, b.0);
        let mode = std::fs::metadata(&a.0).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        let path = a.0.clone();
        std::fs::write(path.join("post.lua"), "x").unwrap();
        drop(a);
        assert!(!path.exists());
    }

    #[test]
    fn reads_wrk_request_count() {
        let out = "Running 5s test @ http://127.0.0.1:1/op/ping\n  1 threads and 16 connections\n  98765 requests in 5.00s, 12.3MB read\nRequests/sec:  19753.00\n";
        assert_eq!(parse_wrk_requests(out), Some(98765));
        assert_eq!(parse_wrk_requests("nothing"), None);
    }

    #[test]
    fn ping_deployment_hosts_the_ping_operation() {
        let s = ping_scenario();
        let d = ping_deployment(&s);
        assert_eq!(d.unit_of(PING), Some(0));
    }
}
