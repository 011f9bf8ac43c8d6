//! The whole pipeline for one scenario, in one screen: options resolved once (before the
//! run, [`preflight`]), a bare hop calibrated, then for each deployment launch →
//! equivalence check → load steps → redeploy → reported → tear down. The run writes
//! nothing itself: it tells a [`RunReport`] of every step, every architecture (before its
//! units are stopped) and the end, so an error or an interrupt never loses what was
//! measured, and where the results go (results.json, the page, progress bars, a gate) is
//! the caller's choice.
//!
//! - [`options`]: what was asked, and the same resolved against the scenario
//! - [`report`]: the events a run reports, and the results file that checkpoints them
//! - `arch`: one architecture's deployment, deploy cost and load steps
//! - `steps`: the step planner (scenario rates, `--rates`, closed loop, rate sweep)
//! - `redeploy`: the live redeploy under load and its window arithmetic
//! - `fault`: a fault injected under load, and what the requests due around it saw
//! - `equivalence`: identical business digests across architectures
//! - `meta`: run id, git commit, time, where a step stands in the run

mod arch;
pub mod endpoints;
mod equivalence;
mod fault;
mod meta;
pub mod options;
mod redeploy;
pub mod report;
mod steps;

pub use meta::new_run_id;
pub use options::{
    preflight, LoadMode, OptionsError, Precision, PreflightError, RedeployPolicy, Resolved,
    RunOptions, SweepLimits, SweepMax, SweepRequest, DEFAULT_EQUIVALENCE_REQUESTS,
};
pub use report::{ResultsFile, RunReport, StepStart};

use crate::delays;
use crate::deploy::DeployEnv;
use crate::driver;
use crate::floor::Placement;
use crate::launch::LaunchError;
use crate::plan::Architecture;
use crate::results::{
    ContainerInfo, HopCalibration, NetworkInfo, RoundFloor, RunMeta, RunResults, ScenarioInfo,
    SCHEMA_VERSION,
};
use crate::scenario::ScenarioSource;
use arch::ArchRun;
use sha2::{Digest as _, Sha256};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Why a run stopped early.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Security(#[from] crate::launch::pki::PkiError),
    #[error("--target compose: {0}")]
    Containers(crate::launch::container::ContainerError),
    #[error("{architecture}: {source}")]
    Launch {
        architecture: Architecture,
        source: LaunchError,
    },
    #[error("{architecture}: {source}")]
    Equivalence {
        architecture: Architecture,
        source: driver::EquivalenceError,
    },
    #[error(
        "{architecture} and {reference} disagree on equivalence request {index} \
         ({entrypoint} {params:?}): digest {got} vs {expected}"
    )]
    Mismatch {
        architecture: Architecture,
        reference: String,
        index: usize,
        entrypoint: String,
        params: std::collections::BTreeMap<String, u64>,
        got: String,
        expected: String,
    },
    #[error("{architecture}: {source}")]
    Driver {
        architecture: Architecture,
        source: driver::DriverError,
    },
    #[error(transparent)]
    Sidecar(#[from] crate::launch::sidecar::SidecarError),
    #[error("--trace: {0}")]
    Traces(crate::traces::CollectorError),
    #[error("interrupted")]
    Interrupted,
}

/// A run that stopped early: what it measured before it stopped (already reported to its
/// outputs), and why it stopped.
#[derive(Debug)]
pub struct RunFailure {
    pub partial: Box<RunResults>,
    pub error: RunError,
}

/// Runs `source` in every deployment `resolved` names, telling `report` of every step,
/// every architecture and the end. Never panics on a failed unit or an interrupt: the
/// failure carries the partial results, which `report` has already been given.
pub async fn run(
    source: &ScenarioSource,
    resolved: &Resolved,
    report: &dyn RunReport,
    cancel: &CancellationToken,
) -> Result<RunResults, RunFailure> {
    let mut results = new_results(source, resolved, 0.0);
    let outcome = run_into(source, resolved, report, cancel, &mut results).await;
    results.complete = outcome.is_ok();
    crate::stats::summarize_run(&mut results.architectures);
    report.run_done(&results);
    match outcome {
        Ok(()) => Ok(results),
        Err(error) => Err(RunFailure {
            partial: Box::new(results),
            error,
        }),
    }
}

/// The run itself, filling `results` as it goes.
async fn run_into(
    source: &ScenarioSource,
    resolved: &Resolved,
    report: &dyn RunReport,
    cancel: &CancellationToken,
    results: &mut RunResults,
) -> Result<(), RunError> {
    let options = &resolved.options;
    // Held to the end: dropping it removes the run's containers and network.
    let mut env = DeployEnv::new(options.unit_binary.clone(), options.run_id.clone());
    env.unit_cores = options.unit_cores.clone();
    let traces = match &options.trace {
        Some(trace) => {
            let session = crate::traces::TraceSession::start(trace, &options.out_dir)
                .await
                .map_err(|error| {
                    results.errors.push(error.to_string());
                    RunError::Traces(error)
                })?;
            env.trace_endpoint = Some(session.endpoint().to_string());
            results.traces = Some(session.info());
            Some(session)
        }
        None => None,
    };
    results.meta.work_iterations_per_us = env.work_iterations_per_us;
    let specs: Vec<&crate::deploy::DeploySpec> = resolved.specs.iter().collect();
    let env = env.place(&options.target, &specs).map_err(|error| {
        results.errors.push(error.to_string());
        RunError::Containers(error)
    })?;
    results.meta.containers = env.container_target().map(|t| container_info(&t));
    let with_capacity = sweep_up_to_capacity(resolved, results, cancel).await;
    let resolved = with_capacity.as_ref().unwrap_or(resolved);
    if cancel.is_cancelled() {
        return Err(RunError::Interrupted);
    }
    // Every mode's PKI before anything is deployed, so a failure to make one stops the run
    // before it starts.
    for mode in resolved.modes() {
        env.pki(mode).map_err(|error| {
            results.errors.push(error.to_string());
            RunError::Security(error)
        })?;
    }
    let specs = &resolved.specs;
    // The proxy before anything is deployed, so a mesh run without HAProxy stops at once.
    if specs
        .iter()
        .any(|s| s.plan().mesh == crate::plan::Mesh::Sidecar)
    {
        let version = crate::launch::sidecar::proxy_version().map_err(|error| {
            results.errors.push(error.to_string());
            RunError::Sidecar(error)
        })?;
        results.meta.sidecar_proxy = Some(version);
    }
    results.architectures = specs.iter().map(|s| arch::planned(s.plan())).collect();
    let orders = results.meta.round_orders.clone();
    let steps_taken = std::cell::Cell::new(0);
    let mut rounds = options
        .precision
        .map_or(orders.len(), |_| options.most_rounds());
    let rounds_started = std::time::Instant::now();
    let mut calibrations = Vec::new();
    for (round, order) in orders.iter().enumerate() {
        if round >= rounds {
            break;
        }
        measure_floors(
            resolved,
            round,
            cancel,
            &mut calibrations,
            &mut results.network,
        )
        .await;
        if cancel.is_cancelled() {
            return Err(RunError::Interrupted);
        }
        let cuts: Vec<&Architecture> = specs.iter().map(|s| &s.plan().architecture).collect();
        let order = variant_order(&cuts, order, round);
        for &index in &order {
            tracing::info!(round = round + 1, label = %specs[index].plan().label(), "round");
            let context = ArchRun {
                source,
                options,
                resolved,
                env: &env,
                report,
                steps_taken: &steps_taken,
                rounds,
                cancel,
                traces: traces.as_ref(),
            };
            let (error, live) = context.run(round, &specs[index], index, results).await;
            if let Some(error) = &error {
                results.architectures[index].error = Some(error.to_string());
                results.errors.push(error.to_string());
            }
            crate::stats::summarize_run(&mut results.architectures);
            // Reported before the units stop: a slow teardown or a second Ctrl-C loses
            // nothing.
            report.architecture_done(results);
            if let Some(live) = live {
                let endings = live.shutdown().await;
                tracing::debug!(?endings, "units stopped");
            }
            let traced = specs[index].plan().tracing == crate::plan::Tracing::Traced;
            if let Some(traces) = traces.as_ref().filter(|_| traced) {
                // Its units have sent their last spans as they stopped.
                let resource: Vec<(String, String)> = specs[index]
                    .trace_attributes(&options.run_id)
                    .into_iter()
                    .collect();
                results.architectures[index].traces = Some(traces.settle(index, &resource).await);
                results.traces = Some(traces.info());
            }
            if let Some(error) = error {
                return Err(error);
            }
        }
        if let (Some(precision), true) = (options.precision, round + 1 == options.pilot_rounds()) {
            let affordable = precision
                .time_budget
                .map(|budget| affordable_rounds(budget, rounds_started.elapsed(), round + 1));
            let record = decide_rounds(&results.architectures, precision, options, affordable);
            tracing::info!(rounds = record.rounds, reason = %record.reason, "rounds decided");
            rounds = record.rounds;
            results.meta.rounds = rounds;
            results.meta.round_orders.truncate(rounds);
            results.meta.precision = Some(record);
        }
    }
    Ok(())
}

/// How many rounds fit in `budget` when the first `done` took `elapsed`: the rounds so
/// far and as many more as their mean time fits in what is left (at least one more, for
/// the redeploy and fault steps of the last round).
fn affordable_rounds(budget: Duration, elapsed: Duration, done: usize) -> usize {
    let per_round = elapsed.as_secs_f64() / done.max(1) as f64;
    let left = budget.saturating_sub(elapsed).as_secs_f64();
    let more = if per_round > 0.0 {
        (left / per_round).floor() as usize
    } else {
        usize::MAX - done
    };
    done + more.max(1)
}

/// Under `--precision`, once the pilot has run: how many rounds the run takes, and why
/// (Stein's two-stage rule, [`crate::stats::rounds_for_precision`]; at least
/// [`crate::stats::least_rounds`], at most `--max-rounds` and what `--time-budget` leaves
/// room for, `affordable`).
fn decide_rounds(
    architectures: &[crate::results::ArchitectureResult],
    precision: Precision,
    options: &RunOptions,
    affordable: Option<usize>,
) -> crate::results::PrecisionRecord {
    let (pilot, most) = (options.pilot_rounds(), options.most_rounds());
    let least = crate::stats::least_rounds(pilot);
    let target = precision.target * 100.0;
    let decided = crate::stats::rounds_for_precision(architectures, precision.target);
    let (wanted, asked, why) = match decided {
        None => (
            least,
            None,
            format!("the {pilot}-round pilot had no rate valid in every deployment, so it could not say how many rounds ±{target:.0} % needs; the run took the fewest a pilot allows"),
        ),
        Some(needed) => {
            let wanted = needed.asked.max(least).min(most);
            let why = match (&needed.widest, needed.asked > most) {
                (Some(widest), true) => format!("the {pilot}-round pilot asked for {} rounds ({widest}'s ratio is the noisiest), more than --max-rounds {most}: the intervals will be wider than ±{target:.0} %", needed.asked),
                (Some(widest), false) => format!("the {pilot}-round pilot asked for {} so that every verdict ratio's interval is within ±{target:.0} % ({widest}'s ratio the noisiest)", needed.asked),
                (None, _) => format!("the {pilot}-round pilot's ratios were already within ±{target:.0} %"),
            };
            let why = if wanted > needed.asked {
                format!("{why}; as many rounds again as the pilot's are the fewest it allows, so that a pilot quiet by chance does not narrow the intervals")
            } else {
                why
            };
            (wanted, Some(needed.asked), why)
        }
    };
    let (rounds, why) = match affordable {
        Some(fit) if fit < wanted => (
            fit,
            format!("{why}; --time-budget left room for {fit} rounds at the pilot's pace, so the run stopped there and its intervals are wider than asked (the stop depends on time, not on the figures)"),
        ),
        _ => (wanted, why),
    };
    crate::results::PrecisionRecord {
        target_percent: target,
        pilot_rounds: pilot,
        max_rounds: most,
        asked_rounds: asked,
        rounds,
        time_budget_s: precision.time_budget.map(|b| b.as_secs_f64()),
        reason: format!("{rounds} rounds: {why} (rounds decided once from the pilot by Stein's two-stage rule, never by peeking again)"),
    }
}

/// What results.json says of a run's containers.
fn container_info(target: &crate::launch::container::ContainerTarget) -> ContainerInfo {
    ContainerInfo {
        image: target.image.clone(),
        image_bytes: target.image_bytes,
        sidecar_image_bytes: target.sidecar_image.as_ref().map(|i| i.bytes),
        network: target.network.clone(),
        cpus: target.cpus,
        memory: target.memory.clone(),
    }
}

/// The results of a run before anything was measured.
fn new_results(
    source: &ScenarioSource,
    resolved: &Resolved,
    work_iterations_per_us: f64,
) -> RunResults {
    let scenario = &source.scenario;
    let options = &resolved.options;
    RunResults {
        schema_version: SCHEMA_VERSION,
        meta: RunMeta {
            rounds: options.pilot_rounds(),
            round_orders: meta::round_orders(
                &resolved.cuts(),
                options.most_rounds(),
                resolved.seed,
            ),
            grainbench_version: env!("CARGO_PKG_VERSION").to_string(),
            git_commit: meta::git_commit(),
            host_cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            started_at: meta::now_rfc3339(),
            seed: resolved.seed,
            quick: options.quick,
            work_iterations_per_us,
            p99_budget_us: options
                .p99_budget
                .or(scenario.load.p99_budget)
                .map(|budget| budget.as_secs_f64() * 1e6),
            driver_capacity_rps: None,
            keepalive: resolved.scenario.security.keepalive,
            endpoints: options.endpoints.as_ref().map(|e| e.file.clone()),
            resilience: (&resolved.scenario.resilience).into(),
            containers: None,
            precision: None,
            sidecar_proxy: None,
            unit_cores: options.unit_cores.as_ref().map(ToString::to_string),
            driver_cores: options.driver_cores().map(|cores| cores.to_string()),
        },
        scenario: ScenarioInfo {
            name: scenario.name.clone(),
            description: scenario.description.clone(),
            file: source.path.clone(),
            sha256: grain_runtime::digest::hex(&Sha256::digest(source.text.as_bytes())),
            text: source.text.clone(),
        },
        architectures: Vec::new(),
        equivalence: None,
        network: NetworkInfo {
            model: resolved.network().into(),
            ..NetworkInfo::default()
        },
        complete: false,
        errors: Vec::new(),
        traces: None,
    }
}

/// This machine's floors at the start of `round`, added to `network`: the bare hop,
/// measured without and with the network model (the first round's calibration is the
/// run's; every round's adds to its repetitions, `calibrations`), and the least hop. The
/// hop ledger divides each round's per-hop figures by the floors of the same round. The
/// least hop is measured twice: where the scheduler puts it, and pinned across two cores.
/// The run goes on without a floor that failed.
async fn measure_floors(
    resolved: &Resolved,
    round: usize,
    cancel: &CancellationToken,
    calibrations: &mut Vec<HopCalibration>,
    network: &mut NetworkInfo,
) {
    let options = &resolved.options;
    tracing::info!(round = round + 1, network = %resolved.network().name, "measuring this machine's floors: a bare hop, the least hop (free, and across two cores)");
    let calibrated = tokio::select! {
        calibrated = delays::measure_bare_hop(resolved.network(), &options.unit_binary, &options.run_id, options.unit_cores.as_ref(), cancel) => calibrated,
        // The unit is killed on drop; the caller notices the cancellation.
        _ = cancel.cancelled() => Err(delays::NetworkError::Interrupted),
    };
    let bare_hop_p50_us = match calibrated {
        Ok(calibration) => {
            let p50 = calibration.loopback_us.p50 as f64;
            calibrations.push(calibration);
            Some(p50)
        }
        Err(error) => {
            tracing::warn!(%error, "bare-hop calibration failed; the run goes on without it");
            if network.hop_calibration.is_none() {
                network.hop_calibration_error = Some(error.to_string());
            }
            None
        }
    };
    if let Some(first) = calibrations.first() {
        network.hop_calibration = Some(over_rounds(first, calibrations));
        network.hop_calibration_error = None;
    }
    let least_hop = |placement| async move {
        match cancel.is_cancelled() {
            true => None,
            false => measure_hop_floor(resolved.floor_rate(), placement).await,
        }
    };
    network.floors.push(RoundFloor {
        round,
        bare_hop_p50_us,
        least_hop: least_hop(Placement::Free).await,
        // With one core to run on there is nothing to measure (and nothing to warn of).
        least_hop_across_cores: match Placement::AcrossCores.possible() {
            true => least_hop(Placement::AcrossCores).await,
            false => None,
        },
    });
}

/// The first calibration with its loopback p50 and added p50 over all of them.
fn over_rounds(first: &HopCalibration, calibrations: &[HopCalibration]) -> HopCalibration {
    let loopback: Vec<f64> = calibrations
        .iter()
        .map(|c| c.loopback_us.p50 as f64)
        .collect();
    let added: Vec<f64> = calibrations
        .iter()
        .filter_map(|c| c.measured_added_p50_us)
        .collect();
    HopCalibration {
        loopback_p50_over_rounds: crate::stats::geometric(&loopback),
        added_p50_over_rounds: crate::stats::estimate(&added),
        ..first.clone()
    }
}

/// A rate sweep stops at the driver's capacity unless `--max-rate` says where: measured
/// here, before any architecture, and recorded. `None` when the options need no change.
async fn sweep_up_to_capacity(
    resolved: &Resolved,
    results: &mut RunResults,
    cancel: &CancellationToken,
) -> Option<Resolved> {
    let options = &resolved.options;
    let LoadMode::Sweep(limits) = &options.load else {
        return None;
    };
    if limits.max_source != (SweepMax::DriverCapacity { measured: false }) {
        return None;
    }
    tracing::info!("measuring the driver's capacity: the rate sweep stops there");
    let measured = crate::capacity::measure(&options.unit_binary, &options.run_id, cancel).await;
    let mut limits = limits.clone();
    match measured {
        Ok(capacity) => {
            results.meta.driver_capacity_rps = capacity.valid_rps;
            if let Some(rate) = capacity.valid_rps {
                limits.max_rps = rate;
                limits.max_source = SweepMax::DriverCapacity { measured: true };
            }
        }
        // The knee's reason says the sweep stopped at the scenario rate limit instead.
        Err(error) => tracing::warn!(%error, "the driver's capacity could not be measured"),
    }
    let mut adjusted = resolved.clone();
    adjusted.options.load = LoadMode::Sweep(limits);
    Some(adjusted)
}

/// This machine's floor for one hop at `rate`, placed as `placement` says (on threads of its
/// own: it blocks); the run goes on without it if it fails.
async fn measure_hop_floor(rate: u32, placement: Placement) -> Option<crate::results::HopFloor> {
    let duration = delays::HOP_CALIBRATION_DURATION;
    let measured =
        tokio::task::spawn_blocking(move || crate::floor::hop_floor(rate, duration, placement))
            .await
            .map_err(|e| e.to_string())
            .and_then(|floor| floor);
    match measured {
        Ok(floor) => Some(floor),
        Err(error) => {
            tracing::warn!(%error, placement = placement.describe(), "the hop floor could not be measured");
            None
        }
    }
}

/// The deployments of one round, in the round's order of cuts (`order`): a cut's variants
/// (security modes, transports) back to back, so their comparison shares the moment, in
/// an order rotated each round, so that none always runs first (or last) and a drift
/// within a round falls on each in turn. `cuts`: each deployment's cut, in spec order.
fn variant_order(cuts: &[&Architecture], order: &[Architecture], round: usize) -> Vec<usize> {
    order
        .iter()
        .flat_map(|architecture| {
            let mut variants: Vec<usize> = (0..cuts.len())
                .filter(|&i| cuts[i] == architecture)
                .collect();
            if !variants.is_empty() {
                let turn = round % variants.len();
                variants.rotate_left(turn);
            }
            variants
        })
        .collect()
}

#[cfg(test)]
mod order_tests {
    use super::*;

    #[test]
    fn a_cut_s_variants_run_together_each_first_in_turn() {
        let (nano, mono) = (Architecture::Nano, Architecture::Monolith);
        // nano, nano+grpc, nano+binary, monolith, monolith+grpc, monolith+binary.
        let cuts = [&nano, &nano, &nano, &mono, &mono, &mono];
        let order = [mono.clone(), nano.clone()];
        assert_eq!(variant_order(&cuts, &order, 0), [3, 4, 5, 0, 1, 2]);
        assert_eq!(variant_order(&cuts, &order, 1), [4, 5, 3, 1, 2, 0]);
        assert_eq!(variant_order(&cuts, &order, 2), [5, 3, 4, 2, 0, 1]);
        assert_eq!(variant_order(&cuts, &order, 3), [3, 4, 5, 0, 1, 2]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_time_budget_fits_the_rounds_its_pilot_s_pace_allows_and_always_one_more() {
        let minute = Duration::from_secs(60);
        // 3 rounds in 3 minutes, 10 allowed: 7 more fit.
        assert_eq!(affordable_rounds(10 * minute, 3 * minute, 3), 10);
        // 2.5 rounds' time left: 2 more, never a part round.
        assert_eq!(affordable_rounds(11 * minute / 2, 3 * minute, 3), 5);
        // The pilot alone overran the budget: still the one more round that runs the
        // redeploy and fault steps.
        assert_eq!(affordable_rounds(2 * minute, 3 * minute, 3), 4);
    }

    #[test]
    fn the_time_budget_caps_the_rounds_decided_and_says_so() {
        let mut options = RunOptions::new("x", "unit".into());
        let precision = Precision {
            target: 0.1,
            max_rounds: 10,
            time_budget: Some(Duration::from_secs(600)),
        };
        options.precision = Some(precision);
        let free = decide_rounds(&[], precision, &options, None);
        assert_eq!(free.rounds, 6, "{}", free.reason);
        let capped = decide_rounds(&[], precision, &options, Some(4));
        assert_eq!(capped.rounds, 4);
        assert!(
            capped
                .reason
                .contains("--time-budget left room for 4 rounds"),
            "{}",
            capped.reason
        );
        assert_eq!(capped.time_budget_s, Some(600.0));
    }
}
