//! The model's context: the network panel, the equivalence sentence, the methodology and
//! the comparison with a baseline run.

use super::{colour, valid_step_at, BaselineComparison, Change, Fact, NetworkPanel};
use crate::report::format::mib_f64;
use crate::results::{DelayErrorSummary, RunResults, StepMode};

pub(super) fn network_panel(results: &RunResults, rate: Option<u32>) -> NetworkPanel {
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

pub(super) fn equivalence(results: &RunResults) -> String {
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

pub(super) fn methodology(results: &RunResults) -> Vec<Fact> {
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

pub(super) fn compare(results: &RunResults, baseline: &RunResults) -> BaselineComparison {
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
                mib_f64(b.idle_rss_bytes_total),
                mib_f64(a.idle_rss_bytes_total),
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
