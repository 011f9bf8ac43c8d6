//! The model's tables: per-entrypoint comparison at the verdict rate, every step of every
//! architecture, deploy cost, redeploy and load generator health.

use super::{
    colour, rounds, valid_step_at, DeployRow, EntryRow, EntryTable, GeneratorRow, RateRow,
    RedeployRow,
};
use crate::analysis::Analysis;
use crate::report::format::{self, mib, ratio, step_label};
use crate::results::{
    ArchitectureResult, DelayErrorSummary, EntryResult, InjectedDelayError, KneeCause, RunResults,
    StepMode, StepResult,
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
        .map(|entry| entry_table(results, rate, &entry.entrypoint))
        .collect()
}

/// One entrypoint at `rate`: every architecture over its valid rounds there.
fn entry_table(results: &RunResults, rate: u32, entry: &str) -> EntryTable {
    let p99 = |a: &ArchitectureResult| {
        rounds::per_round_entry(a, rate, entry, |e| e.latency_us.p99 as f64)
    };
    let cells: Vec<(&ArchitectureResult, Vec<&EntryResult>)> = results
        .architectures
        .iter()
        .map(|a| {
            let per_round = a
                .steps
                .iter()
                .filter(|s| s.is_valid_open_at(rate))
                .filter_map(|s| s.entrypoints.iter().find(|e| e.entrypoint == entry))
                .collect();
            (a, per_round)
        })
        .filter(|(_, rounds)| !Vec::is_empty(rounds))
        .collect();
    let best = cells
        .iter()
        .filter_map(|(a, _)| rounds::over_rounds(&p99(a)).map(|e| (*a, e.point)))
        .min_by(|x, y| x.1.total_cmp(&y.1))
        .map(|(a, _)| a);
    let best_hops = cells
        .iter()
        .filter_map(|(_, r)| r.first().map(|e| e.hops.mean_total))
        .fold(f64::INFINITY, f64::min);
    let rows = cells
        .iter()
        .map(|(a, per_round)| entry_row(results, rate, entry, a, per_round, best, best_hops))
        .collect();
    EntryTable {
        entrypoint: entry.to_string(),
        rate,
        rows,
    }
}

fn entry_row(
    results: &RunResults,
    rate: u32,
    entry: &str,
    a: &ArchitectureResult,
    per_round: &[&EntryResult],
    best: Option<&ArchitectureResult>,
    best_hops: f64,
) -> EntryRow {
    let arch = a.label();
    let figure = |f: fn(&EntryResult) -> f64| rounds::per_round_entry(a, rate, entry, f);
    let mean = |f: fn(&EntryResult) -> f64| {
        let values: Vec<f64> = per_round.iter().map(|e| f(e)).collect();
        crate::stats::geometric(&values).map_or(0, |e| e.point.round() as u64)
    };
    let p99_ratio = match best {
        Some(b) if b.same_deployment(a) => "best".to_string(),
        Some(b) => {
            let theirs = rounds::per_round_entry(b, rate, entry, |e| e.latency_us.p99 as f64);
            rounds::ratio(&figure(|e| e.latency_us.p99 as f64), &theirs)
                .map_or("–".into(), |r| format::ratio_estimate(&r))
        }
        None => "–".into(),
    };
    let critical_hops = a.critical_path_hops.get(entry).copied().unwrap_or(0);
    let latest = per_round[per_round.len() - 1];
    let rounds_run = a
        .steps
        .iter()
        .filter(|s| s.mode == StepMode::Open && s.target_rps == rate)
        .count();
    EntryRow {
        arch: arch.to_string(),
        colour: colour(arch).into(),
        rounds: format!("{} of {rounds_run}", per_round.len()),
        ok: per_round.iter().map(|e| e.ok).sum(),
        errors: per_round.iter().map(|e| e.errors.total()).sum(),
        p50_us: rounds::over_rounds(&figure(|e| e.latency_us.p50 as f64))
            .map_or("–".into(), |e| format::estimate(&e, 0)),
        p90_us: mean(|e| e.latency_us.p90 as f64),
        p99_us: rounds::over_rounds(&figure(|e| e.latency_us.p99 as f64))
            .map_or("–".into(), |e| format::estimate(&e, 0)),
        p999_us: mean(|e| e.latency_us.p999 as f64),
        max_us: per_round
            .iter()
            .map(|e| e.latency_us.max)
            .max()
            .unwrap_or(0),
        p99_ratio,
        hops_service: latest.hops.mean_service,
        hops_state: latest.hops.mean_state,
        hops_static: latest.static_hops.total(),
        hops_match_static: per_round.iter().all(|e| e.hops_match_static),
        hops_ratio: ratio(latest.hops.mean_total, best_hops),
        critical_hops,
        modelled_network_us: modelled_network(&results.network.model, critical_hops),
    }
}

pub(super) fn deploy_rows(results: &RunResults, rate: Option<u32>) -> Vec<DeployRow> {
    let cpu_at = |a: &ArchitectureResult| rate.and_then(|r| super::units_cpu(a, r));
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
    let best_cpu = min_of(&|a| cpu_at(a).map_or(0.0, |c| c.point));
    deployed
        .iter()
        .filter_map(|a| {
            let d = a.deploy.as_ref()?;
            let name = a.label();
            let peak = a
                .steps
                .iter()
                .filter_map(|s| s.units.as_ref().map(|u| u.peak_rss_bytes_total))
                .max();
            let cpu = cpu_at(a);
            Some(DeployRow {
                arch: name.clone(),
                colour: colour(&name).into(),
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
                idle_pss_mib: d.idle_pss_bytes_total.map_or("–".into(), mib),
                idle_private_mib: d.idle_private_bytes_total.map_or("–".into(), mib),
                peak_rss_mib: peak.map_or("not measured".into(), mib),
                cpu_us_per_request: rate
                    .map_or("not measured".into(), |r| super::units_cpu_text(a, r)),
                cpu_ratio: cpu.map_or("–".into(), |c| ratio(c.point, best_cpu)),
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
            let name = a.label();
            Some(RedeployRow {
                arch: name.clone(),
                colour: colour(&name).into(),
                operation: r.operation.clone(),
                units: r.units.join(", "),
                processes: r.units.len(),
                rollout: match r.waves {
                    0 | 1 => "all at once".into(),
                    waves => format!("rolling: one replica at a time, {waves} waves"),
                },
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
            let name = a.label();
            a.steps.iter().map(move |s| GeneratorRow {
                arch: name.clone(),
                colour: colour(&name).into(),
                step: format!("round {}, {}", s.round + 1, step_label(s)),
                target_rps: s.target_rps,
                achieved_rps: s.achieved_rps,
                send_lag_p50_us: s.generator.send_lag_us.p50,
                send_lag_p99_us: s.generator.send_lag_us.p99,
                driver_cpu_us_per_request: s.generator.driver_cpu_us_per_request,
                spin: if s.generator.spin_window_us > 0.0 {
                    format!(
                        "{:.0} µs, {:.0} %",
                        s.generator.spin_window_us,
                        s.generator.spin_share * 100.0
                    )
                } else {
                    "–".into()
                },
                in_flight_cap_hits: s.generator.in_flight_cap_hits,
                delay_error_driver_p99_us: delay_error_p99(s, |e| e.driver.as_ref()),
                delay_error_units_p99_us: delay_error_p99(s, |e| e.units.as_ref()),
                steal_pct: s
                    .noise
                    .as_ref()
                    .map_or("–".into(), |n| format!("{:.1}", n.steal_share * 100.0)),
                other_cores: s
                    .noise
                    .as_ref()
                    .map_or("–".into(), |n| format!("{:.2}", n.other_cores)),
                valid: s.valid,
                invalid_reason: s.invalid_reason.clone().unwrap_or_default(),
            })
        })
        .collect()
}

/// What `model` adds over `round_trips` sequential round trips, µs, or "–" if nothing.
fn modelled_network(model: &crate::results::NetworkModel, round_trips: u32) -> String {
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

/// Every open-loop rate of every architecture over its rounds, entrypoint by entrypoint
/// (first seen order).
pub(super) fn rate_rows(results: &RunResults) -> Vec<RateRow> {
    // The scenario's order, as the steps record it (the page's order too); then any
    // entrypoint only the static hops name.
    let mut entrypoints: Vec<&str> = Vec::new();
    let measured = results
        .architectures
        .iter()
        .flat_map(|a| a.steps.iter().flat_map(|s| &s.entrypoints))
        .map(|e| &e.entrypoint);
    let planned = results
        .architectures
        .iter()
        .flat_map(|a| a.static_hops.keys());
    for name in measured.chain(planned) {
        if !entrypoints.contains(&name.as_str()) {
            entrypoints.push(name);
        }
    }
    let mut rows = Vec::new();
    for entry in entrypoints {
        for arch in &results.architectures {
            let rates = arch.open_rates(false);
            rows.extend(
                rates
                    .into_iter()
                    .filter_map(|rate| rate_row(arch, entry, rate)),
            );
        }
    }
    rows
}

fn rate_row(arch: &ArchitectureResult, entry: &str, rate: u32) -> Option<RateRow> {
    let at_rate: Vec<&StepResult> = arch
        .steps
        .iter()
        .filter(|s| s.mode == StepMode::Open && s.target_rps == rate)
        .collect();
    let entries: Vec<(&StepResult, &EntryResult)> = at_rate
        .iter()
        .filter_map(|s| {
            s.entrypoints
                .iter()
                .find(|e| e.entrypoint == entry)
                .map(|e| (*s, e))
        })
        .collect();
    let (_, any) = entries.first()?;
    let estimate = |f: fn(&EntryResult) -> f64| {
        rounds::over_rounds(&rounds::per_round_entry(arch, rate, entry, f))
            .map_or("no valid round".to_string(), |e| format::estimate(&e, 0))
    };
    let valid = at_rate.iter().filter(|s| s.valid).count();
    let noise = arch
        .summary
        .iter()
        .find(|s| s.target_rps == rate)
        .map(|s| s.noise_flags.join("; "))
        .unwrap_or_default();
    Some(RateRow {
        entrypoint: entry.to_string(),
        arch: arch.label(),
        rate,
        rounds: format!("{valid} of {}", at_rate.len()),
        p50_us: estimate(|e| e.latency_us.p50 as f64),
        p99_us: estimate(|e| e.latency_us.p99 as f64),
        hops_mean: any.hops.mean_total,
        hops_static: any.static_hops.total(),
        hops_match_static: entries.iter().all(|(_, e)| e.hops_match_static),
        errors: entries.iter().map(|(_, e)| e.errors.total()).sum(),
        noise,
    })
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
            let what = match knee.cause {
                Some(KneeCause::Architecture) => "the architecture saturates",
                Some(KneeCause::Driver) => "the driver, not the architecture, saturates",
                Some(KneeCause::Limit) => "the sweep stopped, unsaturated,",
                None => "saturates",
            };
            Some(format!(
                "{} knee: holds {good}, {what} at {} req/s ({})",
                a.label(),
                knee.saturated_at_rps,
                knee.reason
            ))
        })
        .collect()
}

/// Every rate flagged as noisy, in words: `nano at 400 req/s: round 2: …`.
pub(super) fn noise(analysis: &Analysis) -> Vec<String> {
    analysis
        .results
        .architectures
        .iter()
        .zip(&analysis.summaries)
        .flat_map(|(a, summary)| {
            summary.iter().flat_map(move |s| {
                s.noise_flags
                    .iter()
                    .map(move |flag| format!("{} at {} req/s: {flag}", a.label(), s.target_rps))
            })
        })
        .collect()
}
