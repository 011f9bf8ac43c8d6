//! The report model: every number and sentence the reports show, put in words once from
//! the run's analysis ([`crate::analysis`]: results.json and a baseline run, if given, in
//! numbers). The HTML page and the terminal summary only lay it out, so this model is what
//! the golden test pins down.
//!
//! - `tables`: the per-entrypoint, per-step, deploy, redeploy and generator rows
//! - `context`: the network panel, equivalence, methodology and baseline comparison
//! - [`faults`]: which cut stays available under each injected fault
//! - [`front`]: the Pareto front of the cuts and the recommendation under a p99 budget
//! - [`ledger`]: what one hop costs, against this machine's floor
//! - [`traces`]: under `--trace`, whether the spans added up and where the time goes

mod context;
pub mod faults;
pub mod front;
pub mod ledger;
mod tables;
pub mod traces;
pub mod variants;

use context::{compare, equivalence, methodology, network_panel};
use tables::{deploy_rows, entry_tables, generator_rows, knees, noise, rate_rows, redeploy_rows};

use super::format::{self, join_clauses, one_decimal, ratio};
use crate::analysis::verdict::{AgainstBest, Best, CutComparison};
pub use crate::analysis::{rounds, MAX_UNCORRECTED_CUTS};
use crate::analysis::{Analysis, Dimension};
use crate::results::{ArchitectureResult, Estimate, Percentiles, RunResults, StepResult};
use serde::Serialize;

/// One colour per cut, used everywhere on the page: fixed for the built-in cuts, and for
/// any other cut one of a palette picked by its name (so it keeps its colour across runs).
pub fn colour(architecture: impl AsRef<str>) -> &'static str {
    const PALETTE: [&str; 8] = [
        "#7048e8", "#0c8599", "#e8590c", "#c2255c", "#5c940d", "#364fc7", "#862e9c", "#a61e4d",
    ];
    match architecture.as_ref() {
        "nano" => "#d9480f",
        "micro" => "#1c7ed6",
        "monolith" => "#2b8a3e",
        name => {
            // FNV-1a: stable across runs and platforms, unlike the std hasher.
            let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
            });
            PALETTE[(hash % PALETTE.len() as u64) as usize]
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReportModel {
    pub scenario: String,
    /// The cuts compared: `nano vs micro vs monolith`.
    pub title: String,
    pub description: String,
    /// A `--quick` run (short steps).
    pub quick: bool,
    /// The network the measurements were taken on (shown on the first screen).
    pub network: NetworkPanel,
    pub complete: bool,
    pub errors: Vec<String>,
    pub verdict: Verdict,
    /// The cuts' Pareto front at the verdict rate (with two or more cuts measured there).
    pub front: Option<front::Front>,
    /// What one hop costs at the verdict rate (when a cut makes more hops than another).
    pub ledger: Option<ledger::HopLedger>,
    /// What each hop's security cost, against the same cut in plaintext (when a run
    /// compared security modes).
    pub security: Option<variants::VariantSection>,
    /// What each transport costs, against the same cut over HTTP/1.1 + JSON (when a run
    /// compared transports).
    pub transport: Option<variants::VariantSection>,
    /// What sidecar proxies cost, against the same cut without a mesh (when a run
    /// compared mesh modes).
    pub mesh: Option<variants::VariantSection>,
    /// What tracing costs, against the same cut untraced (under `--trace-overhead`).
    pub tracing: Option<variants::VariantSection>,
    /// Which cut stayed available under each injected fault (when the run injected any).
    pub faults: Option<faults::FaultsSection>,
    /// Under `--trace`: the traces' checks and where the time goes.
    pub traces: Option<traces::TraceSection>,
    pub architectures: Vec<ArchLegend>,
    pub entry_tables: Vec<EntryTable>,
    /// Every rate of every architecture over the rounds, per entrypoint.
    pub rate_rows: Vec<RateRow>,
    /// Where each rate sweep saturated, in words.
    pub knees: Vec<String>,
    /// Rates whose figures are less trustworthy than the run's others, and why.
    pub noise: Vec<String>,
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
    pub units: usize,
    pub state_units: usize,
    /// Spawn → every unit ready, ms, of the deployment measured ("–" if none started).
    pub cold_start_ms: String,
}

/// One entrypoint at one rate of one architecture, over the rounds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RateRow {
    pub entrypoint: String,
    pub arch: String,
    pub rate: u32,
    /// Valid rounds of those run (`3 of 3`).
    pub rounds: String,
    /// Means over the valid rounds with their 95 % intervals.
    pub p50_us: String,
    pub p99_us: String,
    pub hops_mean: f64,
    pub hops_static: u32,
    pub hops_match_static: bool,
    /// Over every round, valid or not.
    pub errors: u64,
    /// Why this rate's figures are less trustworthy than the run's others, if they are.
    pub noise: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    /// The rate the verdict compares at: the highest rate every architecture held validly.
    pub rate: Option<u32>,
    pub best: Option<String>,
    /// With several mechanisms, the one whose cuts the verdict compares, in words (the
    /// others are set against the same cut in their sections); `None`: every deployment.
    pub mechanism: Option<String>,
    /// The deployments it compares (labels).
    pub compared: Vec<String>,
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
    /// Valid rounds at this rate, of those run (`3 of 3`).
    pub rounds: String,
    /// Over the valid rounds.
    pub ok: u64,
    pub errors: u64,
    /// Mean over the valid rounds with its 95 % interval (`1234 [1180–1290]`).
    pub p50_us: String,
    /// Mean over the valid rounds.
    pub p90_us: u64,
    /// Mean over the valid rounds with its 95 % interval.
    pub p99_us: String,
    /// Mean over the valid rounds.
    pub p999_us: u64,
    /// Highest over the valid rounds.
    pub max_us: u64,
    /// This row's p99 over the best row's, paired by round, with its interval ("best" for
    /// the best row; "no clear difference (…)" when the interval holds 1).
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
    /// The same moment's PSS and private memory over the units ("–" where not read):
    /// RSS counts the code the units share once per unit.
    pub idle_pss_mib: String,
    pub idle_private_mib: String,
    pub peak_rss_mib: String,
    pub cpu_us_per_request: String,
    pub cpu_ratio: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RedeployRow {
    pub arch: String,
    pub colour: String,
    pub operation: String,
    /// The processes replaced, by name.
    pub units: String,
    pub processes: usize,
    /// "all at once", or how many waves a rolling update of replicas took.
    pub rollout: String,
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
    /// The learned spin window before sends and the share of the driver's CPU it took
    /// (`42 µs, 19 %`; "–" in files from before it was measured).
    pub spin: String,
    pub in_flight_cap_hits: u64,
    /// p99 of the injected delays' error (actual − intended), µs; "–" when none applied.
    pub delay_error_driver_p99_us: String,
    pub delay_error_units_p99_us: String,
    /// The hypervisor's steal over the step, % of all CPU time ("–" when not measured).
    pub steal_pct: String,
    /// Cores other processes kept busy during the step ("–" when not measured).
    pub other_cores: String,
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
    /// "N figures compared; K changed beyond noise at a 5 % false discovery rate".
    pub summary: String,
    pub compared: usize,
    pub discovered: usize,
    pub started_at: String,
    pub git_commit: String,
    pub changes: Vec<Change>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    pub arch: String,
    pub colour: String,
    pub figure: String,
    /// Means over the rounds with their intervals.
    pub before: String,
    pub after: String,
    /// `+12.3 % [+5.1, +19.9]`, or `no change beyond noise (…)` when the interval holds 0.
    pub change: String,
    /// A discovery: Benjamini–Hochberg over every figure compared at a 5 % false
    /// discovery rate, and an interval that excludes no change.
    pub significant: bool,
    /// The relative change in percent with its interval (Welch over the two runs' rounds).
    pub estimate: Option<Estimate>,
    /// The two-sided p-value of no change (Welch on the logs).
    #[serde(skip)]
    pub p_value: Option<f64>,
}

/// The highest open-loop rate at which every architecture has a valid step.
pub fn verdict_rate(results: &RunResults) -> Option<u32> {
    crate::stats::verdict_rate(&results.architectures)
}

/// The units' CPU per request of `arch` at `rate`: the mean over its valid rounds with its
/// interval, the one estimate every table and chart shows (they took one round each).
pub fn units_cpu(arch: &ArchitectureResult, rate: u32) -> Option<Estimate> {
    rounds::over_rounds(&arch.per_round(rate, |s| s.units_cpu_us_per_request))
}

/// The units' CPU per request of `arch` at `rate` as every table shows it: the estimate
/// with its interval; or, where the interval is narrower than /proc's 10 ms ticks can
/// tell (a light cut's short step: its rounds agree to the tick, and the interval shrinks
/// to nothing), the mean with the ticks' rounding instead (`187 (±3 %, 10 ms ticks)`).
pub fn units_cpu_text(arch: &ArchitectureResult, rate: u32) -> String {
    let Some(e) = units_cpu(arch, rate) else {
        return "not measured".into();
    };
    let roundings: Vec<f64> = arch
        .steps
        .iter()
        .filter(|s| s.is_valid_open_at(rate))
        .filter_map(StepResult::units_cpu_rounding)
        .collect();
    // A round whose units used no whole tick has no figure: the estimate is the others'.
    let unticked = roundings.iter().filter(|r| r.is_infinite()).count();
    if unticked > 0 {
        return format!(
            "{:.0} ({unticked} of {} rounds under one 10 ms tick)",
            e.point,
            roundings.len()
        );
    }
    let rounding = roundings.into_iter().fold(0.0, f64::max);
    let half_width = e
        .high
        .map_or(0.0, |high| high / e.point.max(f64::MIN_POSITIVE) - 1.0);
    if e.interval().is_some() && half_width < rounding {
        format!("{:.0} (±{:.0} %, 10 ms ticks)", e.point, rounding * 100.0)
    } else {
        format::estimate(&e, 0)
    }
}

/// The cold start of `arch`: the deploy measurement's median over its repeats where there
/// is one (the figure the deploy table shows), else the single launch's.
pub fn cold_start_ms(arch: &ArchitectureResult) -> Option<f64> {
    arch.deploy
        .as_ref()
        .map(|d| d.cold_start.median_ms)
        .or(arch.cold_start_ms)
}

/// The valid open-loop step of `arch` at `rate`.
pub fn valid_step_at(arch: &ArchitectureResult, rate: u32) -> Option<&StepResult> {
    arch.steps.iter().find(|s| s.is_valid_open_at(rate))
}

/// Builds the report model from results (and an optional baseline).
pub fn build(results: &RunResults, baseline: Option<&RunResults>) -> ReportModel {
    of(&Analysis::of(results, baseline))
}

/// The report model of a run's analysis: its figures in words.
pub fn of(analysis: &Analysis) -> ReportModel {
    let results = analysis.results;
    let rate = analysis.rate;
    let hop_ledger = analysis
        .hop_costs
        .as_ref()
        .map(|costs| ledger::ledger(costs, results));
    let trace_section = traces::traces(results, rate);
    let mut missing = Vec::new();
    if rate.is_none() {
        missing.push("No rate at which every architecture's step was valid: no verdict, summary tables or percentile chart (see Load generator health).".into());
    }
    if let Some(file) = &results.meta.endpoints {
        missing.push(format!(
            "This run drove a deployment grainbench did not start ({}): its cold start, memory, units' CPU and redeploy are not measured; latency, hops and digests are.",
            file.display()
        ));
    } else if results.architectures.iter().all(|a| a.deploy.is_none()) {
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
        title: results
            .architectures
            .iter()
            .map(|a| a.label())
            .collect::<Vec<_>>()
            .join(" vs "),
        description: results.scenario.description.clone(),
        quick: results.meta.quick,
        network: network_panel(results, rate),
        complete: results.complete,
        errors: results.errors.clone(),
        verdict: with_rounds(
            with_traces(
                with_ledger(verdict(analysis.verdict.as_ref()), hop_ledger.as_ref()),
                trace_section.as_ref(),
            ),
            results,
        ),
        front: analysis.front.as_ref().map(|f| front::front(f, results)),
        ledger: hop_ledger,
        security: variant_section(analysis, Dimension::Security),
        transport: variant_section(analysis, Dimension::Transport),
        mesh: variant_section(analysis, Dimension::Mesh),
        tracing: variant_section(analysis, Dimension::Tracing),
        faults: faults::faults(results, &analysis.faults),
        traces: trace_section,
        architectures: results
            .architectures
            .iter()
            .map(|a| ArchLegend {
                name: a.label(),
                colour: colour(a.label()).into(),
                units: a.unit_count,
                state_units: a.state_unit_count,
                cold_start_ms: one_decimal(cold_start_ms(a)),
            })
            .collect(),
        entry_tables: rate.map_or_else(Vec::new, |rate| entry_tables(results, rate)),
        rate_rows: rate_rows(results),
        knees: knees(results),
        noise: noise(analysis),
        deploy_rows: deploy_rows(results, rate),
        redeploy_rows: redeploy_rows(results),
        generator_rows: generator_rows(results),
        equivalence: equivalence(results),
        methodology: methodology(results),
        scenario_file: results.scenario.text.clone(),
        baseline: analysis.baseline.as_ref().map(compare),
        missing,
    }
}

/// The section of `dimension`'s variants, when the run has some at the comparison rate.
fn variant_section(analysis: &Analysis, dimension: Dimension) -> Option<variants::VariantSection> {
    let rate = analysis.rate?;
    variants::section(
        analysis.results,
        dimension,
        rate,
        analysis.variants(dimension),
    )
}

/// The verdict with, under `--precision`, how many rounds the run took and why.
fn with_rounds(mut verdict: Verdict, results: &RunResults) -> Verdict {
    if let Some(precision) = &results.meta.precision {
        verdict
            .sentences
            .push(format!("Rounds: {}.", precision.reason));
    }
    verdict
}

/// The verdict with where the traced requests' time goes.
fn with_traces(mut verdict: Verdict, section: Option<&traces::TraceSection>) -> Verdict {
    verdict.sentences.extend(section.and_then(traces::sentence));
    verdict
}

/// The verdict with what one hop costs said last.
fn with_ledger(mut verdict: Verdict, ledger: Option<&ledger::HopLedger>) -> Verdict {
    verdict.sentences.extend(ledger.and_then(ledger::sentence));
    verdict
}

/// The verdict in words: the cut with the lowest p99, then every other cut against it.
fn verdict(comparison: Option<&CutComparison>) -> Verdict {
    let Some(comparison) = comparison else {
        return Verdict {
            rate: None,
            best: None,
            mechanism: None,
            compared: Vec::new(),
            sentences: vec!["No verdict: no rate was held validly by every architecture.".into()],
        };
    };
    let rate = comparison.rate;
    let mechanism = comparison.mechanism.clone();
    let labels: Vec<String> = comparison.compared.iter().map(|a| a.label()).collect();
    let Some(best_cut) = &comparison.best else {
        return Verdict {
            rate: Some(rate),
            best: None,
            mechanism,
            compared: labels,
            sentences: Vec::new(),
        };
    };
    let best = best_cut.arch.label();
    let best_p99 = &best_cut.p99_us;
    let rounds_note = match best_p99.rounds {
        1 => " One round: no interval, so no difference below is certain; run with --repeat 3 or more.".to_string(),
        n => format!(" Figures are geometric means over {n} rounds with 95 % intervals."),
    };
    let among = mechanism
        .as_ref()
        .map_or(String::new(), |m| format!(", of the cuts over {m},"));
    let mut sentences = vec![format!(
        "At {rate} req/s{among} {best} has the lowest p99: {} (p50 {}) with {:.1} hops per request.{rounds_note}",
        format::estimate_in(best_p99, 0, "µs"),
        best_cut.p50_us.map_or("–".into(), |e| format::estimate_in(&e, 0, "µs")),
        best_cut.hops,
    )];
    for other in &best_cut.others {
        sentences.push(against_best(other, best_cut, rate));
    }
    Verdict {
        rate: Some(rate),
        best: Some(best),
        mechanism,
        compared: labels,
        sentences,
    }
}

/// One cut against the verdict's best, in a sentence.
fn against_best(other: &AgainstBest, best_cut: &Best, rate: u32) -> String {
    let (name, best) = (other.arch.label(), best_cut.arch.label());
    let (arch_p99, best_p99, p99_ratio) = (&other.p99_us, &best_cut.p99_us, &other.p99_ratio);
    let has_interval = p99_ratio.interval().is_some();
    if other.discovered == Some(false) && has_interval && !p99_ratio.contains(1.0) {
        return format!(
            "At {rate} req/s {name} and {best}: no clear difference in p99 once the {} comparisons with {best} are held to a {:.0} % false discovery rate ({} against {}; ratio {}).",
            best_cut.measured - 1,
            crate::stats::FALSE_DISCOVERY_RATE * 100.0,
            format::estimate_in(arch_p99, 0, "µs"),
            format::estimate_in(best_p99, 0, "µs"),
            format::ratio_estimate(p99_ratio),
        );
    }
    if p99_ratio.contains(1.0) && has_interval {
        return format!(
            "At {rate} req/s {name} and {best}: no clear difference in p99 ({} against {}; the ratio's interval, {:.2}–{:.2}×, holds 1).",
            format::estimate_in(arch_p99, 0, "µs"),
            format::estimate_in(best_p99, 0, "µs"),
            p99_ratio.low.unwrap_or(0.0),
            p99_ratio.high.unwrap_or(0.0),
        );
    }
    let mut clauses = vec![format!(
        "it makes {} the hops",
        other
            .hops_ratio
            .map_or("–".into(), |r| format!("{:.1}×", r.point))
    )];
    if let Some(cpu_ratio) = &other.cpu_ratio {
        let unclear = cpu_ratio.interval().is_some() && cpu_ratio.contains(1.0);
        clauses.push(if unclear {
            format!(
                "shows {} in CPU per request",
                format::ratio_estimate(cpu_ratio)
            )
        } else {
            format!(
                "burns {} the CPU per request",
                format::ratio_estimate(cpu_ratio)
            )
        });
    }
    clauses.push(format!(
        "deploys {} the units",
        ratio(
            other.arch.unit_count as f64,
            best_cut.arch.unit_count as f64
        )
    ));
    format!(
        "At {rate} req/s {name}'s p99 is {} {best}'s ({}); {}.",
        format::ratio_estimate(p99_ratio),
        format::estimate_in(arch_p99, 0, "µs"),
        join_clauses(&clauses)
    )
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
