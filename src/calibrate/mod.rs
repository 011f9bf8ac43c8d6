//! The driver's efficiency benchmark (`grainbench calibrate`): a minimal unit (one
//! operation, no work, small bodies) is started as a real process, the load engine drives
//! it open loop at a fixed rate, and its send lag and CPU per request are measured; when
//! `wrk` is installed it is run against the same endpoint in the same session and its CPU
//! per request (from the kernel's child accounting) is put beside ours as a ratio
//! (`wrk.rs`). Beneath the driver's open-loop figure sits the machine's own floor at the
//! same rate (`crate::floor`): what a bare wake-up and the least possible client cost here.

mod wrk;

pub use crate::floor::Floor;
use crate::floor::{self, round2};
pub use wrk::WrkFigures;

use crate::deploy::probe;
use crate::driver::engine::Schedule;
use crate::driver::{self, StepMeasurement};
use crate::launch::LaunchError;
use crate::results::Percentiles;
use grain_runtime::network::NetworkModel;
use serde::Serialize;
use std::path::PathBuf;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

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
    /// From each request's intended send time (what every step reports).
    pub latency_us: Percentiles,
    /// From its actual send: the figure the least client's latency compares with.
    pub latency_from_send_us: Percentiles,
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
    /// What waking up and the least client cost on this machine at the open-loop rate.
    pub floor: Option<Floor>,
    /// Why the floor is missing, when it is.
    pub floor_note: Option<String>,
    /// The highest open-loop rate the driver holds against the same endpoint.
    pub capacity: Option<crate::capacity::Capacity>,
    /// Why the capacity is missing, when it is.
    pub capacity_note: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum CalibrateError {
    #[error(transparent)]
    Launch(#[from] LaunchError),
    #[error(transparent)]
    Driver(#[from] driver::DriverError),
}

/// Runs the calibration.
pub async fn calibrate(options: &CalibrateOptions) -> Result<Calibration, CalibrateError> {
    let live = probe::launch_ping(&options.unit_binary, &options.run_id, None).await?;
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

async fn measure(options: &CalibrateOptions, addr: &str) -> Result<Calibration, CalibrateError> {
    let cancel = CancellationToken::new();
    let step = |schedule| {
        let mut config = probe::ping_step_config(
            schedule,
            options.duration,
            options.spin,
            NetworkModel::loopback(),
        );
        config.threads = options.threads.unwrap_or(config.threads);
        config
    };
    let open_config = step(Schedule::OpenLoop { rate: options.rate });
    let open = probe::run_ping_step(addr, &open_config, 1, &cancel).await?;
    let open_cpu = per_request(&open);
    let (floor, floor_note) = match measure_floor(addr, options).await {
        Ok(mut floor) => {
            floor.driver_to_floor_ratio = floor
                .client_held()
                .then(|| round2(open_cpu / floor.client_cpu_us.max(1e-9)));
            (Some(floor), None)
        }
        Err(note) => (None, Some(note)),
    };
    let closed_config = step(Schedule::ClosedLoop {
        connections: options.wrk_connections,
    });
    let closed = probe::run_ping_step(addr, &closed_config, 2, &cancel).await?;
    let closed_threads = closed.threads;
    let closed_cpu = per_request(&closed);
    let (wrk, wrk_note) = match wrk::run_wrk(
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
        latency_from_send_us: Percentiles::of(&open.overall.uncorrected),
        driver_cpu_us_per_request: round2(open_cpu),
        spin_window_us: round2(open.engine.spin_window.as_secs_f64() * 1e6),
        spin_share: round2(
            (open.engine.spinning.as_secs_f64() / open.engine.cpu.as_secs_f64().max(1e-9)).min(1.0),
        ),
        driver_closed_loop_rps: round2(closed.achieved_rps),
        driver_closed_loop_threads: closed_threads,
        driver_closed_loop_cpu_us_per_request: round2(closed_cpu),
        wrk,
        wrk_note,
        floor,
        floor_note,
        capacity: None,
        capacity_note: None,
    })
}

/// The step's driver CPU per request sent, µs.
fn per_request(m: &StepMeasurement) -> f64 {
    if m.engine.sent == 0 {
        0.0
    } else {
        m.engine.cpu.as_secs_f64() * 1e6 / m.engine.sent as f64
    }
}

/// The floor at the open-loop rate, on a thread of its own (it blocks), for at most 2 s
/// per part.
async fn measure_floor(addr: &str, options: &CalibrateOptions) -> Result<Floor, String> {
    let addr = addr.to_string();
    let (rate, duration) = (options.rate, options.duration.min(FLOOR_DURATION));
    tokio::task::spawn_blocking(move || floor::measure(&addr, rate, duration))
        .await
        .map_err(|e| format!("the floor's thread failed: {e}"))?
}

/// Longest each part of the floor runs.
const FLOOR_DURATION: Duration = Duration::from_secs(2);

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
    match (&c.floor, &c.floor_note) {
        (Some(f), _) => out.push_str(&render_floor(f, c)),
        (None, Some(note)) => out.push_str(&format!("floor: not measured — {note}\n")),
        (None, None) => {}
    }
    match (&c.capacity, &c.capacity_note) {
        (Some(capacity), _) => out.push_str(&render_capacity(capacity)),
        (None, Some(note)) => out.push_str(&format!("capacity: not measured — {note}\n")),
        (None, None) => {}
    }
    out
}

fn render_floor(f: &Floor, c: &Calibration) -> String {
    let wakes = if f.wakes_held() {
        ""
    } else {
        ": later than the next due time, so it ran behind and hardly slept"
    };
    let (held, ratio) = match f.driver_to_floor_ratio {
        Some(ratio) => (
            String::new(),
            format!(
                "{ratio:.2}× ({:.2} against {:.2} µs)",
                c.driver_cpu_us_per_request, f.client_cpu_us
            ),
        ),
        None => (
            format!(
                " — but it held only {:.0} req/s (one request at a time), so at this rate it is no floor",
                f.client_achieved_rps
            ),
            "not comparable at this rate".to_string(),
        ),
    };
    format!(
        "this machine's floor at {} req/s (no driver; {:.0} s each): a thread that only sleeps until each due time spends {:.2} µs of CPU per wake-up (late p50 {} µs, p99 {} µs{wakes}); the least client (one connection: sleep, write, block for the reply) spends {:.2} µs per request{held}\n  driver open loop / least client: {ratio}\n  latency from the actual send: driver p50 {} µs, p99 {} µs; least client p50 {} µs, p99 {} µs\n",
        f.rate, f.duration_s, f.wake_cpu_us, f.wake_late_us.p50, f.wake_late_us.p99,
        f.client_cpu_us,
        c.latency_from_send_us.p50, c.latency_from_send_us.p99,
        f.client_latency_us.p50, f.client_latency_us.p99,
    ) + &render_hop_floor(f.hop.as_ref())
        + &render_event_loop_hop(f.event_loop_hop.as_ref(), f.hop.as_ref())
        + &render_placed_hops(f)
}

/// The least hop pinned to one core and across two: what a wake-up across cores costs.
fn render_placed_hops(f: &crate::floor::Floor) -> String {
    use crate::floor::Placement;
    let one = |placement: Placement, hop: Option<&crate::results::HopFloor>| {
        let Some(h) = hop else {
            return format!(
                "  the least hop {} could not be measured\n",
                placement.describe()
            );
        };
        format!(
            "  the least hop pinned {}: {}, round trip p50 {} µs{}\n",
            placement.describe(),
            cpu_split(h),
            h.round_trip_us.p50,
            held_only(h),
        )
    };
    one(Placement::OneCore, f.hop_one_core.as_ref())
        + &one(Placement::AcrossCores, f.hop_across_cores.as_ref())
}

/// The least hop: the denominator a run's hop ledger divides by.
fn render_hop_floor(hop: Option<&crate::results::HopFloor>) -> String {
    let Some(h) = hop else {
        return "  the least hop (least client against least server) could not be measured\n"
            .into();
    };
    format!(
        "  one hop's floor (the least client against the least server, a thread that reads each request and writes a canned reply, {} req/s): {}{}\n",
        h.rate_rps,
        figures(h),
        no_floor(h),
    )
}

/// `41.00 µs of CPU per request (36.00 client, of it 7.10 from its wake-up to the reply +
/// 5.00 server)`: a least hop's CPU, split.
fn cpu_split(h: &crate::results::HopFloor) -> String {
    let exchange = h
        .client_exchange_cpu_us
        .map(|us| format!(", of it {us:.2} from its wake-up to the reply"))
        .unwrap_or_default();
    format!(
        "{:.2} µs of CPU per request ({:.2} client{exchange} + {:.2} server)",
        h.cpu_us(),
        h.client_cpu_us,
        h.server_cpu_us
    )
}

/// A least hop's CPU, split, and its round trip's p50 and p99.
fn figures(h: &crate::results::HopFloor) -> String {
    format!(
        "{}, round trip p50 {} µs, p99 {} µs",
        cpu_split(h),
        h.round_trip_us.p50,
        h.round_trip_us.p99
    )
}

/// ` — but it held only 480 req/s` when the hop fell behind its rate.
fn held_only(h: &crate::results::HopFloor) -> String {
    match h.held() {
        true => String::new(),
        false => format!(" — but it held only {:.0} req/s", h.achieved_rps),
    }
}

/// [`held_only`], and that it is then no floor.
fn no_floor(h: &crate::results::HopFloor) -> String {
    match h.held() {
        true => String::new(),
        false => format!("{}, so at this rate it is no floor", held_only(h)),
    }
}

/// The least event-loop hop, and what it costs over the least hop.
fn render_event_loop_hop(
    hop: Option<&crate::results::HopFloor>,
    least: Option<&crate::results::HopFloor>,
) -> String {
    let Some(h) = hop else {
        return "  the least event-loop hop could not be measured\n".into();
    };
    let over = match least.filter(|l| l.held() && h.held() && l.cpu_us() > 0.0) {
        Some(l) => format!(", {:.2}× the least hop's CPU", h.cpu_us() / l.cpu_us()),
        None => no_floor(h),
    };
    format!(
        "  the same hop on event loops (client and server each on a current-thread tokio runtime, no HTTP library): {}{over}\n",
        figures(h),
    )
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
