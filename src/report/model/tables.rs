//! The model's tables: per-entrypoint comparison at the verdict rate, every step of every
//! architecture, deploy cost, redeploy and load generator health.

use super::{
    colour, valid_step_at, DeployRow, EntryRow, EntryTable, GeneratorRow, RedeployRow, StepRow,
};
use crate::report::format::{mib, ratio, step_label};
use crate::results::{
    ArchitectureResult, DelayErrorSummary, EntryResult, InjectedDelayError, RunResults, StepResult,
};

pub(super) fn entry_tables(results: &RunResults, rate: u32) -> Vec<EntryTable> {
    let Some(first) = results
        .architectures
        .first()
        .and_then(|a| valid_step_at(a, rate))
    else {
        return Vec::new();
    };
    first
        .entrypoints
        .iter()
        .map(|entry| {
            let cells: Vec<(&ArchitectureResult, &EntryResult)> = results
                .architectures
                .iter()
                .filter_map(|a| {
                    let step = valid_step_at(a, rate)?;
                    let e = step
                        .entrypoints
                        .iter()
                        .find(|e| e.entrypoint == entry.entrypoint)?;
                    Some((a, e))
                })
                .collect();
            let best_p99 = cells
                .iter()
                .map(|(_, e)| e.latency_us.p99)
                .min()
                .unwrap_or(0) as f64;
            let best_hops = cells
                .iter()
                .map(|(_, e)| e.hops.mean_total)
                .fold(f64::INFINITY, f64::min);
            EntryTable {
                entrypoint: entry.entrypoint.clone(),
                rate,
                rows: cells
                    .iter()
                    .map(|(a, e)| {
                        let arch = a.architecture.name();
                        let critical_hops = a
                            .critical_path_hops
                            .get(&entry.entrypoint)
                            .copied()
                            .unwrap_or(0);
                        EntryRow {
                            arch: arch.to_string(),
                            colour: colour(arch).into(),
                            ok: e.ok,
                            errors: e.errors.total(),
                            p50_us: e.latency_us.p50,
                            p90_us: e.latency_us.p90,
                            p99_us: e.latency_us.p99,
                            p999_us: e.latency_us.p999,
                            max_us: e.latency_us.max,
                            p99_ratio: ratio(e.latency_us.p99 as f64, best_p99),
                            hops_service: e.hops.mean_service,
                            hops_state: e.hops.mean_state,
                            hops_static: e.static_hops.total(),
                            hops_match_static: e.hops_match_static,
                            hops_ratio: ratio(e.hops.mean_total, best_hops),
                            critical_hops,
                            modelled_network_us: modelled_network(
                                &results.network.model,
                                critical_hops,
                            ),
                        }
                    })
                    .collect(),
            }
        })
        .collect()
}

pub(super) fn deploy_rows(results: &RunResults, rate: Option<u32>) -> Vec<DeployRow> {
    let cpu_at = |a: &ArchitectureResult| {
        rate.and_then(|r| valid_step_at(a, r))
            .or(a.steps.last())
            .and_then(|s| s.units_cpu_us_per_request)
    };
    let deployed: Vec<&ArchitectureResult> = results
        .architectures
        .iter()
        .filter(|a| a.deploy.is_some())
        .collect();
    let min_of = |f: &dyn Fn(&ArchitectureResult) -> f64| {
        deployed
            .iter()
            .map(|a| f(a))
            .filter(|v| *v > 0.0)
            .fold(f64::INFINITY, f64::min)
    };
    let best_units = min_of(&|a| a.unit_count as f64);
    let best_cold = min_of(&|a| a.deploy.as_ref().map_or(0.0, |d| d.cold_start.median_ms));
    let best_cpu = min_of(&|a| cpu_at(a).unwrap_or(0.0));
    deployed
        .iter()
        .filter_map(|a| {
            let d = a.deploy.as_ref()?;
            let name = a.architecture.name();
            let peak = a
                .steps
                .iter()
                .filter_map(|s| s.units.as_ref().map(|u| u.peak_rss_bytes_total))
                .max();
            let cpu = cpu_at(a);
            Some(DeployRow {
                arch: name.into(),
                colour: colour(name).into(),
                service_units: d.service_units,
                state_units: d.state_units,
                units_ratio: ratio(a.unit_count as f64, best_units),
                endpoints: d.endpoints,
                artifact_mib: mib(d.artifact_bytes_total),
                cold_start_ms: format!(
                    "{:.1} [{:.1}–{:.1}]",
                    d.cold_start.median_ms, d.cold_start.min_ms, d.cold_start.max_ms
                ),
                cold_start_ratio: ratio(d.cold_start.median_ms, best_cold),
                idle_rss_mib: mib(d.idle_rss_bytes_total),
                peak_rss_mib: peak.map_or("not measured".into(), mib),
                cpu_us_per_request: cpu.map_or("not measured".into(), |c| format!("{c:.0}")),
                cpu_ratio: cpu.map_or("–".into(), |c| ratio(c, best_cpu)),
            })
        })
        .collect()
}

pub(super) fn redeploy_rows(results: &RunResults) -> Vec<RedeployRow> {
    results
        .architectures
        .iter()
        .filter_map(|a| {
            let r = a.deploy.as_ref()?.redeploy.as_ref()?;
            let name = a.architecture.name();
            Some(RedeployRow {
                arch: name.into(),
                colour: colour(name).into(),
                operation: r.operation.clone(),
                units: r.units.join(", "),
                rate: r.rate_rps,
                drained_ms: format!("{:.1}", r.drained_ms),
                ready_ms: format!("{:.1}", r.ready_ms),
                window_requests: r.window_requests,
                window_failed: r.window_failed,
                p99_before_us: r.latency_before_us.p99,
                p99_during_us: r.latency_during_us.p99,
                old_processes_left: r.old_processes_left,
            })
        })
        .collect()
}

pub(super) fn generator_rows(results: &RunResults) -> Vec<GeneratorRow> {
    results
        .architectures
        .iter()
        .flat_map(|a| {
            let name = a.architecture.name();
            a.steps.iter().map(move |s| GeneratorRow {
                arch: name.into(),
                colour: colour(name).into(),
                step: step_label(s),
                target_rps: s.target_rps,
                achieved_rps: s.achieved_rps,
                send_lag_p50_us: s.generator.send_lag_us.p50,
                send_lag_p99_us: s.generator.send_lag_us.p99,
                driver_cpu_us_per_request: s.generator.driver_cpu_us_per_request,
                in_flight_cap_hits: s.generator.in_flight_cap_hits,
                delay_error_driver_p99_us: delay_error_p99(s, |e| e.driver.as_ref()),
                delay_error_units_p99_us: delay_error_p99(s, |e| e.units.as_ref()),
                valid: s.valid,
                invalid_reason: s.invalid_reason.clone().unwrap_or_default(),
            })
        })
        .collect()
}

/// What `model` adds over `round_trips` sequential round trips, µs, or "–" if nothing.
fn modelled_network(model: &grain_runtime::network::NetworkModel, round_trips: u32) -> String {
    if !model.adds_delay() || round_trips == 0 {
        return "–".into();
    }
    format!(
        "{:.0}",
        f64::from(round_trips) * 2.0 * model.mean_one_way_us()
    )
}

fn delay_error_p99(
    step: &StepResult,
    side: impl Fn(&InjectedDelayError) -> Option<&DelayErrorSummary>,
) -> String {
    step.injected_delay_error
        .as_ref()
        .and_then(side)
        .map_or_else(|| "–".into(), |e| format!("{:.1}", e.p99_us))
}

/// Every step of every architecture, entrypoint by entrypoint (first seen order).
pub(super) fn step_rows(results: &RunResults) -> Vec<StepRow> {
    let mut entrypoints: Vec<&str> = Vec::new();
    for name in results
        .architectures
        .iter()
        .flat_map(|a| a.static_hops.keys())
    {
        if !entrypoints.contains(&name.as_str()) {
            entrypoints.push(name);
        }
    }
    let mut rows = Vec::new();
    for entry in entrypoints {
        for arch in &results.architectures {
            for step in &arch.steps {
                if let Some(e) = step.entrypoints.iter().find(|e| e.entrypoint == entry) {
                    rows.push(step_row(arch, step, e));
                }
            }
        }
    }
    rows
}

fn step_row(arch: &ArchitectureResult, step: &StepResult, e: &EntryResult) -> StepRow {
    StepRow {
        entrypoint: e.entrypoint.clone(),
        arch: arch.architecture.name().into(),
        step: step_label(step),
        achieved_rps: step.achieved_rps,
        p50_us: e.latency_us.p50,
        p99_us: e.latency_us.p99,
        max_us: e.latency_us.max,
        hops_mean: e.hops.mean_total,
        hops_static: e.static_hops.total(),
        hops_match_static: e.hops_match_static,
        errors: e.errors.total(),
        valid: step.valid,
    }
}

/// Where each architecture's rate sweep saturated, in words.
pub(super) fn knees(results: &RunResults) -> Vec<String> {
    results
        .architectures
        .iter()
        .filter_map(|a| {
            let knee = a.knee.as_ref()?;
            let good = knee
                .last_good_rps
                .map_or("none".to_string(), |r| format!("{r} req/s"));
            Some(format!(
                "{} knee: holds {good}, saturates at {} req/s ({})",
                a.architecture.name(),
                knee.saturated_at_rps,
                knee.reason
            ))
        })
        .collect()
}
