//! The report model: every number and sentence the HTML page shows, computed from
//! results.json (and a baseline run, if given). The page template only lays it out, so
//! this model is what the golden test pins down.

use crate::results::{
    ArchitectureResult, DelayErrorSummary, EntryResult, InjectedDelayError, Percentiles,
    RunResults, StepMode, StepResult,
};
use serde::Serialize;

/// One colour per architecture, used everywhere on the page.
pub fn colour(architecture: &str) -> &'static str {
    match architecture {
        "nano" => "#d9480f",
        "micro" => "#1c7ed6",
        "monolith" => "#2b8a3e",
        _ => "#495057",
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReportModel {
    pub scenario: String,
    pub description: String,
    /// The network the measurements were taken on (shown on the first screen).
    pub network: NetworkPanel,
    pub complete: bool,
    pub errors: Vec<String>,
    pub verdict: Verdict,
    pub architectures: Vec<ArchLegend>,
    pub entry_tables: Vec<EntryTable>,
    pub deploy_rows: Vec<DeployRow>,
    pub redeploy_rows: Vec<RedeployRow>,
    pub generator_rows: Vec<GeneratorRow>,
    pub equivalence: String,
    pub methodology: Vec<Fact>,
    pub scenario_file: String,
    pub baseline: Option<BaselineComparison>,
    /// Figures this run did not measure, said instead of drawing empty charts.
    pub missing: Vec<String>,
}

/// The network model, what a bare hop measured with and without it, and how precisely
/// its delays were applied.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NetworkPanel {
    /// Name and description, e.g. "dc: 250 µs one way, exponential jitter (mean 25 µs), no loss".
    pub model: String,
    /// Where the model's numbers come from.
    pub source: String,
    /// Modelled vs measured: a bare hop's round trip without and with the model.
    pub hop: Option<String>,
    /// The injected delays' error per architecture at the verdict rate.
    pub precision: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ArchLegend {
    pub name: String,
    pub colour: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    /// The rate the verdict compares at: the highest rate every architecture held validly.
    pub rate: Option<u32>,
    pub best: Option<String>,
    pub sentences: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EntryTable {
    pub entrypoint: String,
    pub rate: u32,
    pub rows: Vec<EntryRow>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EntryRow {
    pub arch: String,
    pub colour: String,
    pub ok: u64,
    pub errors: u64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
    /// This row's p99 over the best row's p99.
    pub p99_ratio: String,
    pub hops_service: f64,
    pub hops_state: f64,
    pub hops_static: u32,
    pub hops_match_static: bool,
    pub hops_ratio: String,
    /// Round trips on the critical path (from the plan), the driver's included.
    pub critical_hops: u32,
    /// What the network model adds to a request: critical round trips × two mean one-way
    /// delays, µs ("–" on loopback).
    pub modelled_network_us: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeployRow {
    pub arch: String,
    pub colour: String,
    pub service_units: usize,
    pub state_units: usize,
    pub units_ratio: String,
    pub endpoints: usize,
    pub artifact_mib: String,
    pub cold_start_ms: String,
    pub cold_start_ratio: String,
    pub idle_rss_mib: String,
    pub peak_rss_mib: String,
    pub cpu_us_per_request: String,
    pub cpu_ratio: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RedeployRow {
    pub arch: String,
    pub colour: String,
    pub operation: String,
    pub units: String,
    pub rate: u32,
    pub drained_ms: String,
    pub ready_ms: String,
    pub window_requests: u64,
    pub window_failed: u64,
    pub p99_before_us: u64,
    pub p99_during_us: u64,
    pub old_processes_left: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GeneratorRow {
    pub arch: String,
    pub colour: String,
    pub step: String,
    pub target_rps: u32,
    pub achieved_rps: f64,
    pub send_lag_p50_us: u64,
    pub send_lag_p99_us: u64,
    pub driver_cpu_us_per_request: f64,
    pub in_flight_cap_hits: u64,
    /// p99 of the injected delays' error (actual − intended), µs; "–" when none applied.
    pub delay_error_driver_p99_us: String,
    pub delay_error_units_p99_us: String,
    pub valid: bool,
    pub invalid_reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fact {
    pub label: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BaselineComparison {
    pub started_at: String,
    pub git_commit: String,
    pub changes: Vec<Change>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    pub arch: String,
    pub colour: String,
    pub figure: String,
    pub before: String,
    pub after: String,
    pub change: String,
}

/// The highest open-loop rate at which every architecture has a valid step.
pub fn verdict_rate(results: &RunResults) -> Option<u32> {
    let mut rates: Vec<u32> = results
        .architectures
        .first()?
        .steps
        .iter()
        .filter(|s| s.is_valid_open())
        .map(|s| s.target_rps)
        .collect();
    rates.sort_unstable();
    rates.into_iter().rev().find(|&rate| {
        results
            .architectures
            .iter()
            .all(|a| valid_step_at(a, rate).is_some())
    })
}

/// The valid open-loop step of `arch` at `rate`.
pub fn valid_step_at(arch: &ArchitectureResult, rate: u32) -> Option<&StepResult> {
    arch.steps.iter().find(|s| s.is_valid_open_at(rate))
}

fn ratio(value: f64, best: f64) -> String {
    if best <= 0.0 || value <= 0.0 {
        return "–".into();
    }
    format!("{:.1}×", value / best)
}

fn mib(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / (1024.0 * 1024.0))
}

/// Builds the report model from results (and an optional baseline).
pub fn build(results: &RunResults, baseline: Option<&RunResults>) -> ReportModel {
    let rate = verdict_rate(results);
    let mut missing = Vec::new();
    if rate.is_none() {
        missing.push("No rate at which every architecture's step was valid: no verdict, summary tables or percentile chart (see Load generator health).".into());
    }
    if results.architectures.iter().all(|a| a.deploy.is_none()) {
        missing.push("Deploy cost was not measured in this run.".into());
    }
    if results
        .architectures
        .iter()
        .all(|a| a.deploy.as_ref().is_none_or(|d| d.redeploy.is_none()))
    {
        missing.push("No live redeploy was measured in this run.".into());
    }
    ReportModel {
        scenario: results.scenario.name.clone(),
        description: results.scenario.description.clone(),
        network: network_panel(results, rate),
        complete: results.complete,
        errors: results.errors.clone(),
        verdict: verdict(results, rate),
        architectures: results
            .architectures
            .iter()
            .map(|a| ArchLegend {
                name: a.architecture.name().into(),
                colour: colour(a.architecture.name()).into(),
            })
            .collect(),
        entry_tables: rate.map_or_else(Vec::new, |rate| entry_tables(results, rate)),
        deploy_rows: deploy_rows(results, rate),
        redeploy_rows: redeploy_rows(results),
        generator_rows: generator_rows(results),
        equivalence: equivalence(results),
        methodology: methodology(results),
        scenario_file: results.scenario.text.clone(),
        baseline: baseline.map(|b| compare(results, b)),
        missing,
    }
}

fn verdict(results: &RunResults, rate: Option<u32>) -> Verdict {
    let Some(rate) = rate else {
        return Verdict {
            rate: None,
            best: None,
            sentences: vec!["No verdict: no rate was held validly by every architecture.".into()],
        };
    };
    let steps: Vec<(&ArchitectureResult, &StepResult)> = results
        .architectures
        .iter()
        .filter_map(|a| valid_step_at(a, rate).map(|s| (a, s)))
        .collect();
    let Some(&(best_arch, best_step)) = steps.iter().min_by_key(|(_, s)| s.latency_us.p99) else {
        return Verdict {
            rate: Some(rate),
            best: None,
            sentences: Vec::new(),
        };
    };
    let best = best_arch.architecture.name();
    let mut sentences = vec![format!(
        "At {rate} req/s {best} has the lowest p99: {} µs (p50 {} µs) with {:.1} hops per request.",
        best_step.latency_us.p99, best_step.latency_us.p50, best_step.hops.mean_total
    )];
    for (arch, step) in &steps {
        if arch.architecture == best_arch.architecture {
            continue;
        }
        let cpu = |s: &StepResult| s.units_cpu_us_per_request.unwrap_or(0.0);
        let mut clauses = vec![format!(
            "it makes {} the hops",
            ratio(step.hops.mean_total, best_step.hops.mean_total)
        )];
        if cpu(step) > 0.0 && cpu(best_step) > 0.0 {
            clauses.push(format!(
                "burns {} the CPU per request",
                ratio(cpu(step), cpu(best_step))
            ));
        }
        clauses.push(format!(
            "deploys {} the units",
            ratio(arch.unit_count as f64, best_arch.unit_count as f64)
        ));
        sentences.push(format!(
            "At {rate} req/s {}'s p99 is {} {best}'s ({} µs); {}.",
            arch.architecture.name(),
            ratio(step.latency_us.p99 as f64, best_step.latency_us.p99 as f64),
            step.latency_us.p99,
            join_clauses(&clauses)
        ));
    }
    Verdict {
        rate: Some(rate),
        best: Some(best.into()),
        sentences,
    }
}

fn join_clauses(clauses: &[String]) -> String {
    match clauses {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

fn entry_tables(results: &RunResults, rate: u32) -> Vec<EntryTable> {
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

fn deploy_rows(results: &RunResults, rate: Option<u32>) -> Vec<DeployRow> {
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

fn redeploy_rows(results: &RunResults) -> Vec<RedeployRow> {
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

fn generator_rows(results: &RunResults) -> Vec<GeneratorRow> {
    results
        .architectures
        .iter()
        .flat_map(|a| {
            let name = a.architecture.name();
            a.steps.iter().map(move |s| GeneratorRow {
                arch: name.into(),
                colour: colour(name).into(),
                step: s
                    .connections
                    .map_or(format!("{} req/s", s.target_rps), |c| {
                        format!("closed, {c} connections")
                    }),
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

fn network_panel(results: &RunResults, rate: Option<u32>) -> NetworkPanel {
    let network = &results.network;
    let model = &network.model;
    let hop = match (&network.hop_calibration, &network.hop_calibration_error) {
        (Some(hop), _) => Some(match (&hop.modelled_us, hop.measured_added_p50_us) {
            (Some(modelled), Some(added)) => format!(
                "A bare hop's round trip at {} req/s: p50 {} µs on raw loopback, {} µs under the model — {:+.0} µs measured against {:.0} µs modelled (two mean one-way delays); p99 {} → {} µs.",
                hop.rate_rps, hop.loopback_us.p50, modelled.p50, added, hop.expected_added_us, hop.loopback_us.p99, modelled.p99
            ),
            _ => format!(
                "A bare hop's round trip at {} req/s on raw loopback: p50 {} µs, p99 {} µs.",
                hop.rate_rps, hop.loopback_us.p50, hop.loopback_us.p99
            ),
        }),
        (None, Some(error)) => Some(format!("The bare-hop calibration failed: {error}")),
        (None, None) => None,
    };
    let precision = results
        .architectures
        .iter()
        .filter_map(|arch| {
            let step = match rate {
                Some(rate) => valid_step_at(arch, rate),
                None => arch.steps.first(),
            }?;
            let injected = step.injected_delay_error.as_ref()?;
            let side = |name: &str, e: Option<&DelayErrorSummary>| {
                e.map(|e| {
                    format!(
                        "{name} p50 {:.1} µs, p99 {:.1} µs over {} delays",
                        e.p50_us, e.p99_us, e.count
                    )
                })
            };
            let parts: Vec<String> = [
                side("driver", injected.driver.as_ref()),
                side("units", injected.units.as_ref()),
                injected.units_error.clone(),
            ]
            .into_iter()
            .flatten()
            .collect();
            Some(format!(
                "{} at {} req/s: injected delays late by {}.",
                arch.architecture.name(),
                step.target_rps,
                parts.join("; ")
            ))
        })
        .collect();
    NetworkPanel {
        model: format!("{}: {}", model.name, model.describe()),
        source: model.source.clone(),
        hop,
        precision,
    }
}

fn equivalence(results: &RunResults) -> String {
    match &results.equivalence {
        Some(eq) => format!(
            "{} requests sent one at a time to every architecture before load; digests of the business result identical for {} (reference: {}).",
            eq.requests,
            eq.agreed.iter().map(|a| a.name()).collect::<Vec<_>>().join(", "),
            eq.reference.name()
        ),
        None => "The equivalence check did not run.".into(),
    }
}

fn fact(label: &str, value: impl Into<String>) -> Fact {
    Fact {
        label: label.into(),
        value: value.into(),
    }
}

fn methodology(results: &RunResults) -> Vec<Fact> {
    let m = &results.meta;
    vec![
        fact("Latency", "Open loop: requests are scheduled at the target rate and sent then, whatever earlier replies do. Latency is measured from each request's intended send time (coordinated omission corrected); the uncorrected figure, from the actual send, is kept in results.json. HdrHistogram, µs resolution; warm-up excluded."),
        fact("Hop", "One HTTP request between two processes, the driver's request to the entry unit included. Each unit reports the hops it made downstream in response headers; the figures shown are what crossed the network, checked against the plan's static count."),
        fact("Memory and CPU", "RSS and user+system CPU time of every unit process, read from /proc/<pid>/stat by the harness (RSS sampled 10 times a second during each step). The load driver's own CPU is reported separately and never mixed in."),
        fact("Cold start", "Spawn of the first unit to every unit answering /health with its routes, repeated deployments (median, min, max)."),
        fact("Redeploy", "The units running one operation are sent SIGTERM (stop accepting, finish in-flight requests, exit), restarted and rerouted while the driver holds a steady rate; requests due from SIGTERM until 1 s after the replacements were ready form the window."),
        fact("Generator health", "A step whose achieved rate is below 95 % of its target, or whose send lag p99 exceeds 1 ms, is invalid and excluded from the verdict."),
        fact("Network", network_method(&results.network.model)),
        fact("Machine", format!("{} CPUs", m.host_cpus)),
        fact("grainbench", format!("{} (commit {})", m.grainbench_version, m.git_commit.as_deref().unwrap_or("unknown"))),
        fact("Run started", m.started_at.clone()),
        fact("Seed", m.seed.to_string()),
        fact("CPU calibration", format!("{:.1} busy-loop iterations per µs", m.work_iterations_per_us)),
        fact("Scenario file", format!("{} (sha256 {})", results.scenario.file.display(), results.scenario.sha256)),
    ]
}

fn network_method(model: &grain_runtime::network::NetworkModel) -> String {
    let shared = "Every process runs on this one machine over 127.0.0.1 and shares its cores.";
    if !model.adds_delay() {
        return format!("Raw loopback: no delay added to any hop. {shared}");
    }
    format!(
        "Model {}: {}. The delay is injected by grainbench itself, on every hop including the driver's: the sender holds each request one sampled one-way delay before it leaves and each reply one more before it is handed back, so a hop adds a round trip. The driver holds them in a deadline heap on its timerfd (spinning the last µs); units wait on pooled timerfds in tokio's reactor, armed early by a learned wake-up lead. Each delay's lateness (actual − intended) is recorded: the driver's per step, the units' collected from every unit after each step. Kernel emulation (netem) is not used. {shared}",
        model.name,
        model.describe()
    )
}

fn compare(results: &RunResults, baseline: &RunResults) -> BaselineComparison {
    let mut changes = Vec::new();
    for arch in &results.architectures {
        let Some(old) = baseline
            .architectures
            .iter()
            .find(|b| b.architecture == arch.architecture)
        else {
            continue;
        };
        let name = arch.architecture.name();
        let mut push = |figure: String, before: f64, after: f64, unit: &str| {
            let change = if before > 0.0 {
                format!("{:+.1} %", (after - before) / before * 100.0)
            } else {
                "–".into()
            };
            changes.push(Change {
                arch: name.into(),
                colour: colour(name).into(),
                figure,
                before: format!("{before:.1} {unit}"),
                after: format!("{after:.1} {unit}"),
                change,
            });
        };
        for step in arch.steps.iter().filter(|s| s.mode == StepMode::Open) {
            let Some(before) = old
                .steps
                .iter()
                .find(|s| s.mode == StepMode::Open && s.target_rps == step.target_rps)
            else {
                continue;
            };
            let rate = step.target_rps;
            push(
                format!("p50 at {rate} req/s"),
                before.latency_us.p50 as f64,
                step.latency_us.p50 as f64,
                "µs",
            );
            push(
                format!("p99 at {rate} req/s"),
                before.latency_us.p99 as f64,
                step.latency_us.p99 as f64,
                "µs",
            );
            push(
                format!("hops at {rate} req/s"),
                before.hops.mean_total,
                step.hops.mean_total,
                "",
            );
            if let (Some(b), Some(a)) = (
                before.units_cpu_us_per_request,
                step.units_cpu_us_per_request,
            ) {
                push(format!("unit CPU per request at {rate} req/s"), b, a, "µs");
            }
        }
        if let (Some(b), Some(a)) = (&old.deploy, &arch.deploy) {
            push(
                "cold start (median)".into(),
                b.cold_start.median_ms,
                a.cold_start.median_ms,
                "ms",
            );
            push(
                "idle RSS".into(),
                b.idle_rss_bytes_total as f64 / 1048576.0,
                a.idle_rss_bytes_total as f64 / 1048576.0,
                "MiB",
            );
        }
    }
    BaselineComparison {
        started_at: baseline.meta.started_at.clone(),
        git_commit: baseline
            .meta
            .git_commit
            .clone()
            .unwrap_or_else(|| "unknown".into()),
        changes,
    }
}

/// p50 … p99.99 and max of a latency view, for the percentile spectrum chart.
pub fn spectrum_points(p: &Percentiles) -> Vec<(f64, u64)> {
    vec![
        (50.0, p.p50),
        (90.0, p.p90),
        (99.0, p.p99),
        (99.9, p.p999),
        (100.0, p.max),
    ]
}
