//! The plain-text summary printed at the end of a run: deployments side by side, then
//! latency and hops per entrypoint, step and architecture, with invalid steps called out.

use crate::results::{RunResults, StepResult};
use std::fmt::Write;

/// Renders the terminal summary of `results`.
pub fn render_summary(results: &RunResults) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n{} — {} architecture(s){}",
        results.scenario.name,
        results.architectures.len(),
        if results.meta.quick {
            ", quick run"
        } else {
            ""
        }
    );
    render_network(&mut out, results);
    let _ = writeln!(
        out,
        "\n{:<10} {:>6} {:>12} {:>12}",
        "arch", "units", "state units", "cold start"
    );
    for arch in &results.architectures {
        let cold = arch
            .cold_start_ms
            .map_or("-".to_string(), |ms| format!("{ms:.1} ms"));
        let _ = writeln!(
            out,
            "{:<10} {:>6} {:>12} {:>12}",
            arch.architecture.name(),
            arch.unit_count,
            arch.state_unit_count,
            cold
        );
    }
    render_deploy_cost(&mut out, results);
    let _ = writeln!(
        out,
        "\n{:<18} {:<9} {:>6} {:>9} {:>8} {:>8} {:>9} {:>16} {:>7}",
        "entrypoint",
        "arch",
        "rate",
        "achieved",
        "p50 µs",
        "p99 µs",
        "max µs",
        "hops (static)",
        "errors"
    );
    let entrypoints: Vec<&str> = results
        .architectures
        .iter()
        .flat_map(|a| a.static_hops.keys().map(String::as_str))
        .fold(Vec::new(), |mut names, name| {
            if !names.contains(&name) {
                names.push(name);
            }
            names
        });
    for entry in entrypoints {
        for arch in &results.architectures {
            for step in &arch.steps {
                let Some(e) = step.entrypoints.iter().find(|e| e.entrypoint == entry) else {
                    continue;
                };
                let hops = format!(
                    "{:.1} ({}){}",
                    e.hops.mean_total,
                    e.static_hops.total(),
                    if e.hops_match_static { "" } else { " ≠" }
                );
                let _ = writeln!(
                    out,
                    "{:<18} {:<9} {:>6} {:>9.1} {:>8} {:>8} {:>9} {:>16} {:>7}{}",
                    entry,
                    arch.architecture.name(),
                    step_label(step),
                    step.achieved_rps,
                    e.latency_us.p50,
                    e.latency_us.p99,
                    e.latency_us.max,
                    hops,
                    e.errors.total(),
                    if step.valid { "" } else { "  (invalid step)" }
                );
            }
        }
    }
    let _ = writeln!(
        out,
        "\nload generator: {:<9} {:>6} {:>9} {:>13} {:>14} {:>9} {:>26}",
        "arch",
        "rate",
        "achieved",
        "send lag p99",
        "CPU µs/req",
        "cap waits",
        "delay error p99 drv/units"
    );
    for arch in &results.architectures {
        for step in &arch.steps {
            let g = &step.generator;
            let _ = writeln!(
                out,
                "                {:<9} {:>6} {:>9.1} {:>10} µs {:>14.1} {:>9} {:>26}{}",
                arch.architecture.name(),
                step_label(step),
                step.achieved_rps,
                g.send_lag_us.p99,
                g.driver_cpu_us_per_request,
                g.in_flight_cap_hits,
                delay_errors(step),
                if step.valid { "" } else { "  invalid" }
            );
        }
        if let Some(knee) = &arch.knee {
            let good = knee
                .last_good_rps
                .map_or("none".to_string(), |r| format!("{r} req/s"));
            let _ = writeln!(
                out,
                "                {} knee: holds {good}, saturates at {} req/s ({})",
                arch.architecture.name(),
                knee.saturated_at_rps,
                knee.reason
            );
        }
    }
    let invalid: Vec<(&str, &StepResult)> = results
        .architectures
        .iter()
        .flat_map(|a| {
            a.steps
                .iter()
                .filter(|s| !s.valid)
                .map(move |s| (a.architecture.name(), s))
        })
        .collect();
    if !invalid.is_empty() {
        let _ = writeln!(out, "\nInvalid steps (excluded from any verdict):");
        for (arch, step) in invalid {
            let reason = step.invalid_reason.as_deref().unwrap_or("unknown");
            let _ = writeln!(out, "  {arch} at {}: {reason}", step_label(step));
        }
    }
    if let Some(eq) = &results.equivalence {
        let _ = writeln!(
            out,
            "\nEquivalence: {} requests, digests identical for {} (reference {})",
            eq.requests,
            eq.agreed
                .iter()
                .map(|a| a.name())
                .collect::<Vec<_>>()
                .join(", "),
            eq.reference.name()
        );
    }
    let _ = writeln!(out, "Latency is measured from each request's intended send time (open loop, coordinated omission corrected).");
    for error in &results.errors {
        let _ = writeln!(out, "\nRun stopped early: {error}");
    }
    out
}

/// The network model and the bare hop measured without and with it.
fn render_network(out: &mut String, results: &RunResults) {
    let network = &results.network;
    let _ = writeln!(
        out,
        "network: {}: {}",
        network.model.name,
        network.model.describe()
    );
    if let Some(hop) = &network.hop_calibration {
        let modelled = match (&hop.modelled_us, hop.measured_added_p50_us) {
            (Some(m), Some(added)) => format!(
                ", {} µs under the model ({added:+.0} µs measured vs {:.0} µs modelled)",
                m.p50, hop.expected_added_us
            ),
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "bare hop round trip p50: {} µs on loopback{modelled}",
            hop.loopback_us.p50
        );
    }
}

/// `0.5/155.6 µs`: p99 of the driver's and the units' injected-delay errors.
fn delay_errors(step: &StepResult) -> String {
    let Some(injected) = &step.injected_delay_error else {
        return "-".into();
    };
    let p99 = |e: Option<&crate::results::DelayErrorSummary>| {
        e.map_or("-".to_string(), |e| format!("{:.1}", e.p99_us))
    };
    format!(
        "{}/{} µs",
        p99(injected.driver.as_ref()),
        p99(injected.units.as_ref())
    )
}

/// `400` for an open-loop step at 400 req/s, `c=16` for a closed-loop step.
fn step_label(step: &StepResult) -> String {
    match step.connections {
        Some(connections) => format!("c={connections}"),
        None => step.target_rps.to_string(),
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// The deploy-cost table: units, artifact, cold start, memory, CPU per request, redeploy.
fn render_deploy_cost(out: &mut String, results: &RunResults) {
    let _ = writeln!(
        out,
        "\ndeploy cost      {:>10} {:>10} {:>11} {:>22} {:>10} {:>10} {:>13} {:>22}",
        "units",
        "endpoints",
        "artifact",
        "cold start med [min-max]",
        "idle RSS",
        "peak RSS",
        "CPU µs/req",
        "redeploy"
    );
    for arch in &results.architectures {
        let Some(d) = &arch.deploy else {
            let _ = writeln!(out, "  {:<14} not deployed", arch.architecture.name());
            continue;
        };
        let last_step = arch.steps.last();
        let peak = last_step
            .and_then(|s| s.units.as_ref())
            .map_or("-".into(), |u| mib(u.peak_rss_bytes_total));
        let cpu = last_step
            .and_then(|s| s.units_cpu_us_per_request)
            .map_or("-".into(), |c| format!("{c:.0}"));
        let redeploy = d.redeploy.as_ref().map_or("-".into(), |r| {
            format!(
                "{} unit(s) {:.0} ms, {} failed",
                r.units.len(),
                r.ready_ms,
                r.window_failed
            )
        });
        let _ = writeln!(
            out,
            "  {:<14} {:>10} {:>10} {:>11} {:>22} {:>10} {:>10} {:>13} {:>22}",
            arch.architecture.name(),
            format!("{}+{}", d.service_units, d.state_units),
            d.endpoints,
            mib(d.artifact_bytes_total),
            format!(
                "{:.1} [{:.1}-{:.1}] ms",
                d.cold_start.median_ms, d.cold_start.min_ms, d.cold_start.max_ms
            ),
            mib(d.idle_rss_bytes_total),
            peak,
            cpu,
            redeploy
        );
    }
    let _ = writeln!(out, "  (units: service+state; peak RSS and CPU/request at the highest step; CPU from /proc, units only)");
}
