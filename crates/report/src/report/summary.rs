//! The plain-text summary printed at the end of a run, laid out from the same view model
//! as the page: the network, the verdict, deployments side by side, latency and hops per
//! entrypoint, step and architecture, generator health with invalid steps called out.

use super::model::variants::{Dimension, VariantSection};
use super::model::{self, ReportModel};
use crate::results::RunResults;
use std::fmt::Write;

/// Renders the terminal summary of `results`, with changes since `baseline` if given.
pub fn render_summary(results: &RunResults, baseline: Option<&RunResults>) -> String {
    render(&model::build(results, baseline))
}

/// Lays out `m` as text.
pub fn render(m: &ReportModel) -> String {
    let w = arch_width(m);
    let mut out = String::new();
    let quick = if m.quick { ", quick run" } else { "" };
    let _ = writeln!(
        out,
        "\n{} — {} architecture(s){quick}",
        m.scenario,
        m.architectures.len()
    );
    let _ = writeln!(out, "network: {}", m.network.model);
    if let Some(hop) = &m.network.hop {
        let _ = writeln!(out, "{hop}");
    }
    for sentence in &m.verdict.sentences {
        let _ = writeln!(out, "{sentence}");
    }
    render_units(&mut out, m);
    render_deploy_cost(&mut out, m);
    render_front(&mut out, m);
    render_ledger(&mut out, m);
    render_traces(&mut out, m);
    render_security(&mut out, m);
    render_faults(&mut out, m);
    render_steps(&mut out, m);
    render_generator(&mut out, m);
    if let Some(b) = &m.baseline {
        let _ = writeln!(
            out,
            "\nchange since the baseline ({}, commit {}): {}",
            b.started_at, b.git_commit, b.summary
        );
        for c in &b.changes {
            let _ = writeln!(out, "  {:<w$} {:<36} {}", c.arch, c.figure, c.change);
        }
    }
    for note in m.missing.iter().filter(|n| n.contains("did not start")) {
        let _ = writeln!(out, "\n{note}");
    }
    let _ = writeln!(out, "\nEquivalence: {}", m.equivalence);
    let _ = writeln!(out, "Latency is measured from each request's intended send time (open loop, coordinated omission corrected).");
    for error in &m.errors {
        let _ = writeln!(out, "\nRun stopped early: {error}");
    }
    out
}

fn render_units(out: &mut String, m: &ReportModel) {
    let w = arch_width(m);
    let _ = writeln!(
        out,
        "\n{:<w$} {:>14} {:>15}",
        "arch", "units (svc+st)", "cold start ms"
    );
    for a in &m.architectures {
        let units = format!("{}+{}", a.units - a.state_units, a.state_units);
        let _ = writeln!(out, "{:<w$} {:>14} {:>15}", a.name, units, a.cold_start_ms);
    }
}

/// The deploy-cost table: units, artifact, cold start, memory, CPU per request, redeploy.
fn render_deploy_cost(out: &mut String, m: &ReportModel) {
    let w = arch_width(m).max(14);
    let _ = writeln!(
        out,
        "\ndeploy cost      {:>8} {:>10} {:>13} {:>24} {:>13} {:>13} {:>13} {:>16} {:>26}",
        "units",
        "endpoints",
        "artifact MiB",
        "cold start ms med [range]",
        "idle RSS MiB",
        "PSS/private",
        "peak RSS MiB",
        "CPU µs/req [CI]",
        "redeploy"
    );
    for d in &m.deploy_rows {
        let redeploy =
            m.redeploy_rows
                .iter()
                .find(|r| r.arch == d.arch)
                .map_or("-".to_string(), |r| {
                    format!(
                        "{} unit(s) {} ms, {} failed",
                        r.processes, r.ready_ms, r.window_failed
                    )
                });
        let _ = writeln!(
            out,
            "  {:<w$} {:>8} {:>10} {:>13} {:>24} {:>13} {:>13} {:>13} {:>16} {:>26}",
            d.arch,
            format!("{}+{}", d.service_units, d.state_units),
            d.endpoints,
            d.artifact_mib,
            d.cold_start_ms,
            d.idle_rss_mib,
            format!("{}/{}", d.idle_pss_mib, d.idle_private_mib),
            d.peak_rss_mib,
            d.cpu_us_per_request,
            redeploy
        );
    }
    let _ = writeln!(out, "  (units: service+state; idle PSS/private: RSS less the code the units share, see the page; peak RSS over all steps; CPU per request at the verdict rate, units only, from /proc, geometric mean over the rounds)");
}

/// The cuts' front at the verdict rate, and the recommendation under the budget.
fn render_front(out: &mut String, m: &ReportModel) {
    let w = arch_width(m).max(14);
    let Some(front) = &m.front else {
        return;
    };
    let budget = if front.budget.is_some() { "budget" } else { "" };
    let header = format!(
        "\ncuts at {} req/s {:>8} {:>24} {:>22} {:>6} {:>9} {:>6} {:>6}",
        front.rate,
        "units",
        "p99 µs [95 % CI]",
        "CPU µs/req [95 % CI]",
        "blast",
        "idle MiB",
        "front",
        budget,
    );
    let _ = writeln!(out, "{}", header.trim_end());
    for r in &front.rows {
        let line = format!(
            "  {:<w$} {:>8} {:>24} {:>22} {:>6} {:>9} {:>6} {:>6}",
            r.arch,
            format!("{}+{}", r.service_units, r.state_units),
            r.p99_us,
            r.cpu_us_per_request,
            r.blast_radius,
            r.idle_rss_mib,
            if r.on_front { "yes" } else { "no" },
            r.budget,
        );
        let _ = writeln!(out, "{}", line.trim_end());
    }
    let _ = writeln!(
        out,
        "  ({} Blast: operations restarted per changed operation.)",
        front.rule
    );
    match &front.recommendation {
        Some(sentence) => {
            let _ = writeln!(out, "{sentence}");
        }
        None => {
            let _ = writeln!(
                out,
                "No p99 budget given (--p99-budget 3ms or [load] p99_budget_ms): no cut recommended."
            );
        }
    }
}

/// What one hop costs, cut by cut, against the floor: each column as wide as its widest
/// cell, and a figure's column only where some row has it (a run without system time or
/// codec time has none).
fn render_ledger(out: &mut String, m: &ReportModel) {
    let Some(ledger) = &m.ledger else {
        return;
    };
    let _ = writeln!(
        out,
        "\nwhat one hop costs at {} req/s ({}):",
        ledger.rate, ledger.transport
    );
    type Cell = fn(&super::model::ledger::LedgerRow) -> &str;
    let columns: [(&str, Cell, bool); 11] = [
        ("cut", |r| &r.cut, true),
        ("against", |r| &r.reference, true),
        ("+hops", |r| &r.extra_hops, false),
        ("p50 µs/hop", |r| &r.latency, false),
        ("× bare hop", |r| &r.latency_to_bare_hop, false),
        ("CPU µs/hop", |r| &r.cpu, false),
        ("of it kernel", |r| &r.kernel_cpu, false),
        ("of it codec", |r| &r.codec_cpu, false),
        ("× least hop", |r| &r.cpu_to_floor, false),
        ("× exchange", |r| &r.cpu_to_exchange, false),
        ("× across cores", |r| &r.cpu_to_across, false),
    ];
    let shown: Vec<(&str, Cell, bool, usize)> = columns
        .into_iter()
        .filter(|(_, cell, left)| *left || ledger.rows.iter().any(|r| cell(r) != "–"))
        .map(|(head, cell, left)| {
            let widest = ledger.rows.iter().map(|r| cell(r).chars().count());
            let width = widest.chain([head.chars().count()]).max().unwrap_or(0);
            (head, cell, left, width)
        })
        .collect();
    let line = |texts: Vec<&str>| {
        let cells: Vec<String> = texts
            .iter()
            .zip(&shown)
            .map(|(text, (_, _, left, width))| match left {
                true => format!("{text:<width$}"),
                false => format!("{text:>width$}"),
            })
            .collect();
        format!("  {}", cells.join("  ").trim_end())
    };
    let _ = writeln!(out, "{}", line(shown.iter().map(|c| c.0).collect()));
    for r in &ledger.rows {
        let _ = writeln!(out, "{}", line(shown.iter().map(|c| (c.1)(r)).collect()));
    }
    for floor in &ledger.floor {
        let _ = writeln!(out, "  floor: {floor}");
    }
}

/// Under `--trace`: how the traces added up, and each cut's latency split along the
/// critical path.
fn render_traces(out: &mut String, m: &ReportModel) {
    let Some(traces) = &m.traces else {
        return;
    };
    let _ = writeln!(
        out,
        "\nwhere the time goes at {} req/s ({} of requests traced):",
        traces.rate, traces.sample
    );
    for check in &traces.checks {
        let _ = writeln!(out, "  {check}");
    }
    // Shares only, so the table fits 80 columns; the page gives the µs too.
    let w = arch_width(m);
    let _ = writeln!(
        out,
        "  {:<w$} {:<14} {:>7} {:>5} {:>8} {:>7} {:>9} {:>6}",
        "cut", "entrypoint", "mean µs", "work", "handling", "network", "transport", "driver"
    );
    for r in &traces.rows {
        let [work, handling, network, wire, driver] = r.shares.map(|s| format!("{s:.0} %"));
        let _ = writeln!(
            out,
            "  {:<w$} {:<14} {:>7} {work:>5} {handling:>8} {network:>7} {wire:>9} {driver:>6}",
            r.deployment, r.entrypoint, r.latency_us
        );
    }
    let _ = writeln!(
        out,
        "  (shares of the mean latency along the critical path; transport: the transport,\n   kernel and queues between units)"
    );
    let _ = writeln!(out, "  {}", traces.file);
}

fn render_security(out: &mut String, m: &ReportModel) {
    for section in [&m.security, &m.transport, &m.mesh, &m.tracing]
        .into_iter()
        .flatten()
    {
        render_variants(out, section);
    }
}

/// Each variant (a security mode, a transport) against the same cut on the base.
fn render_variants(out: &mut String, section: &VariantSection) {
    let w = section
        .rows
        .iter()
        .map(|r| r.arch.chars().count())
        .max()
        .unwrap_or(0)
        .max(12);
    let (title, column) = match section.dimension {
        Dimension::Security => ("security", "mode"),
        Dimension::Transport => ("transport between units", "transport"),
        Dimension::Mesh => ("sidecar mesh", "mesh"),
        Dimension::Tracing => ("tracing", "tracing"),
    };
    let _ = writeln!(
        out,
        "\n{title} at {} req/s, against {} ({}):",
        section.rate,
        section.base,
        section.keepalive.to_lowercase()
    );
    let line = |out: &mut String, cells: [&str; 8]| {
        let [cut, mode, p50, p99, hops, per_hop, cpu, conns] = cells;
        let _ = writeln!(
            out,
            "  {cut:<w$} {mode:<10} {p50:>26} {p99:>26} {hops:>6} {per_hop:>8} {cpu:>24} {conns:>16}"
        );
    };
    line(
        out,
        [
            "cut",
            column,
            "added p50 [95 % CI]",
            "added p99 [95 % CI]",
            "hops",
            "µs/hop",
            "units' CPU vs base",
            "conns/req (base)",
        ],
    );
    for r in &section.rows {
        line(
            out,
            [
                &r.arch,
                &r.variant,
                &r.added_p50_us,
                &r.added_p99_us,
                &r.hops,
                &r.added_p50_per_hop_us,
                &r.units_cpu_ratio,
                &r.connections_per_request,
            ],
        );
    }
    for r in &section.rows {
        if let Some(s) = &r.sidecars {
            let _ = writeln!(
                out,
                "  {}: {} sidecars, CPU {} µs/req ({} µs per crossing, {} crossings), idle RSS {} MiB ({} each), cold start {} ms",
                r.arch,
                s.count,
                s.cpu_us_per_request,
                s.cpu_us_per_crossing,
                s.crossings_per_request,
                s.idle_rss_mib,
                s.idle_rss_each_mib,
                s.cold_start_added_ms
            );
        }
    }
    if let Some(proxy) = &section.proxy {
        let _ = writeln!(out, "  (sidecars: {proxy}, one thread each)");
    }
    for published in &section.published {
        let _ = writeln!(out, "  {published}");
    }
    for sentence in &section.sentences {
        let _ = writeln!(out, "{sentence}");
    }
}

/// Each fault: one line per cut, then the verdict.
fn render_faults(out: &mut String, m: &ReportModel) {
    let w = arch_width(m);
    let Some(faults) = &m.faults else {
        return;
    };
    let _ = writeln!(out, "\nfaults ({})", faults.replicas.to_lowercase());
    for g in &faults.groups {
        let _ = writeln!(out, "  {} at {} req/s:", g.fault, g.rate);
        let line = |out: &mut String, cells: [&str; 6]| {
            let [cut, success, available, blamed, hops, recovery] = cells;
            let _ = writeln!(
                out,
                "    {cut:<w$} {success:>22} {available:<40} {blamed:<32} {hops:>7} {recovery:>20}"
            );
        };
        let header = [
            "cut",
            "succeeded during",
            "entrypoints fully available",
            "failures blamed on",
            "hops×",
            "recovery",
        ];
        line(out, header);
        for r in &g.rows {
            let cells = [
                r.arch.as_str(),
                &r.success,
                &r.available,
                &r.blamed,
                &r.amplification,
                &r.recovery,
            ];
            line(out, cells);
        }
        let _ = writeln!(out, "  {}", g.verdict);
    }
    let _ = writeln!(out, "  {}", faults.policy);
}

fn render_steps(out: &mut String, m: &ReportModel) {
    let w = arch_width(m);
    let _ = writeln!(
        out,
        "\n{:<16} {:<w$} {:>6} {:>7} {:>22} {:>22} {:>14} {:>7}",
        "entrypoint",
        "arch",
        "req/s",
        "rounds",
        "p50 µs [95 % CI]",
        "p99 µs [95 % CI]",
        "hops (static)",
        "errors"
    );
    for r in &m.rate_rows {
        let hops = format!(
            "{:.1} ({}){}",
            r.hops_mean,
            r.hops_static,
            if r.hops_match_static { "" } else { " ≠" }
        );
        let noise = if r.noise.is_empty() {
            String::new()
        } else {
            format!("  noisy: {}", r.noise)
        };
        let _ = writeln!(
            out,
            "{:<16} {:<w$} {:>6} {:>7} {:>22} {:>22} {:>14} {:>7}{noise}",
            r.entrypoint, r.arch, r.rate, r.rounds, r.p50_us, r.p99_us, hops, r.errors
        );
    }
    let _ = writeln!(
        out,
        "  (geometric means over the valid rounds with their 95 % intervals, t on the logs)"
    );
}

fn render_generator(out: &mut String, m: &ReportModel) {
    let w = arch_width(m);
    let _ = writeln!(
        out,
        "\nload generator: {:<w$} {:>16} {:>9} {:>13} {:>11} {:>9} {:>26}",
        "arch",
        "step",
        "achieved",
        "send lag p99",
        "CPU µs/req",
        "cap waits",
        "delay error p99 µs drv/units"
    );
    for g in &m.generator_rows {
        let _ = writeln!(
            out,
            "                {:<w$} {:>16} {:>9.1} {:>10} µs {:>11.1} {:>9} {:>26}{}",
            g.arch,
            g.step,
            g.achieved_rps,
            g.send_lag_p99_us,
            g.driver_cpu_us_per_request,
            g.in_flight_cap_hits,
            format!(
                "{}/{}",
                g.delay_error_driver_p99_us, g.delay_error_units_p99_us
            ),
            if g.valid { "" } else { "  invalid" }
        );
    }
    for knee in &m.knees {
        let _ = writeln!(out, "                {knee}");
    }
    if !m.noise.is_empty() {
        let _ = writeln!(
            out,
            "\nNoisy figures (less trustworthy than the run's others):"
        );
        for n in &m.noise {
            let _ = writeln!(out, "  {n}");
        }
    }
    let invalid: Vec<_> = m.generator_rows.iter().filter(|g| !g.valid).collect();
    if !invalid.is_empty() {
        let _ = writeln!(out, "\nInvalid steps (excluded from any verdict):");
        for g in invalid {
            let _ = writeln!(out, "  {} at {}: {}", g.arch, g.step, g.invalid_reason);
        }
    }
}

/// The width of the deployment column: the longest label (`monolith+binary`), at least 12.
fn arch_width(m: &ReportModel) -> usize {
    m.architectures
        .iter()
        .map(|entry| entry.name.chars().count())
        .max()
        .unwrap_or(0)
        .max(12)
}
