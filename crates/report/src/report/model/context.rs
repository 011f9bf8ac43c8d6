//! The model's context: the network panel, the equivalence sentence, the methodology and
//! the comparison with a baseline run.

use super::{colour, valid_step_at, BaselineComparison, Change, Fact, NetworkPanel};
use crate::analysis::baseline::BaselineChanges;
use crate::report::format;
use crate::results::{DelayErrorSummary, RunResults};
use crate::stats;

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
    let hop = hop.map(|sentence| {
        let Some(c) = &network.hop_calibration else {
            return sentence;
        };
        // Measured at the start of every round; older runs repeated it before the first.
        let repetitions = match network.floors.is_empty() {
            true => "repetitions",
            false => "rounds (measured at the start of each)",
        };
        let repeated = |label: &str, e: &Option<crate::results::Estimate>| {
            e.filter(|e| e.rounds > 1)
                .map(|e| {
                    format!(
                        " {label} over {} {repetitions}: {} µs.",
                        e.rounds,
                        format::estimate(&e, 0)
                    )
                })
                .unwrap_or_default()
        };
        format!(
            "{sentence}{}{}",
            repeated("Loopback p50", &c.loopback_p50_over_rounds),
            repeated("Added p50", &c.added_p50_over_rounds)
        )
    });
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
                arch.label(),
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
        Some(eq) => {
            let every = eq.agreed.len() == results.architectures.len();
            let agreed = if every && eq.agreed.len() > 4 {
                format!("all {} deployments", eq.agreed.len())
            } else {
                eq.agreed.join(", ")
            };
            format!(
                "{} requests sent one at a time to every architecture before load; digests of the business result identical for {agreed} (reference: {}).",
                eq.requests, eq.reference
            )
        }
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
    let mut facts = vec![
        fact("Latency", "Open loop: requests are scheduled at the target rate and sent then, whatever earlier replies do. Latency is measured from each request's intended send time (coordinated omission corrected); the uncorrected figure, from the actual send, is kept in results.json. HdrHistogram, µs resolution; warm-up excluded."),
        fact("Hop", "One HTTP request between two processes, the driver's request to the entry unit included. Each unit reports the hops it made downstream in response headers; the figures shown are what crossed the network, checked against the plan's static count."),
        fact("Memory and CPU", "RSS and user+system CPU time of every unit process, read from /proc/<pid>/stat by the harness (RSS sampled 10 times a second during each step); idle memory also split by /proc/<pid>/smaps_rollup into PSS (shared pages divided among the processes mapping them) and private pages, since RSS counts the code every unit shares once per unit. The load driver's own CPU is reported separately and never mixed in."),
        fact("Cold start", "Spawn of the first unit to every unit answering /health with its routes, repeated deployments (median, min, max)."),
        fact("Redeploy", "The units running one operation are replaced while the driver holds a steady rate, as a rolling update with surge: replacements start beside the old processes, every caller is rerouted once they are ready, then the old ones get SIGTERM (stop accepting, finish in-flight requests, exit); requests due from the start until 1 s after the old processes have drained form the window."),
        fact("Rounds and intervals", format!("{} round(s); each runs every architecture's steps, in an order shuffled per round with the seed, so drift over the run spreads over every architecture; a cut's variants (security modes, transports) run back to back, their order rotated each round so that none always runs first. A latency or CPU figure is its geometric mean over the rounds whose step was valid, with a 95 % confidence interval from Student's t on the logarithms of those rounds' figures, taken back: such figures are positive and right-skewed, so the interval never reaches below zero and is wider above the point than below (Limpert et al., BioScience 2001); each round's figure already carries its requests' sampling noise, so the spread between rounds holds both levels of variation (Georges et al., OOPSLA 2007; Kalibera & Jones, ISMM 2013). Counts (hops) and differences (what a hop or a security mode adds) use the arithmetic mean and Student's t. Ratios between architectures are taken round by round (round r of each shared its weather) and their interval is computed on the log scale; a ratio or change whose interval holds 1 (0 %) is stated as no clear difference. Changes against a baseline run use Welch's interval over the two runs' rounds. Per-round figures stay in results.json. Noise: each step records the hypervisor's steal and the cores other processes used (/proc/stat less grainbench's own processes); rates with noisy rounds or rounds that disagree far more than the run's others are flagged.", results.meta.rounds)),
        fact("Generator health", "A step whose achieved rate is below 95 % of its target, or whose send lag p99 exceeds 1 ms, is invalid and excluded from the verdict."),
        fact("Network", network_method(&results.network.model, m.containers.is_some())),
        fact("Machine", machine(m)),
        fact("grainbench", format!("{} (commit {})", m.grainbench_version, m.git_commit.as_deref().unwrap_or("unknown"))),
        fact("Run started", m.started_at.clone()),
        fact("Seed", m.seed.to_string()),
        fact("CPU calibration", format!("{:.1} busy-loop iterations per µs", m.work_iterations_per_us)),
        fact("Scenario file", format!("{} (sha256 {})", results.scenario.file.display(), results.scenario.sha256)),
    ];
    if let Some(c) = &m.containers {
        let limits = match (c.cpus, &c.memory) {
            (None, None) => "no CPU or memory limit".to_string(),
            (cpus, memory) => format!(
                "limits: {} CPUs, {} memory",
                cpus.map_or("no".into(), |c| c.to_string()),
                memory.as_deref().unwrap_or("no")
            ),
        };
        facts.push(fact("Deployment", format!("Every unit process ran as a container of {} ({:.1} MiB, built FROM scratch from the units' binary and the libraries it loads), on the bridge network {} made for the run, reaching the others by container name; the driver reached the entry units through ports published on 127.0.0.1. Cold start is docker run to /health ready; memory and CPU come from /proc of each container's process; {limits}.", c.image, c.image_bytes as f64 / 1048576.0, c.network)));
    }
    facts
}

/// The machine line: its CPUs, and where the units and the driver ran when they were
/// placed (`--unit-cpus`).
fn machine(m: &crate::results::RunMeta) -> String {
    let cpus = m.host_cpus;
    let Some(units) = &m.unit_cores else {
        return format!("{cpus} CPUs");
    };
    let driver = match &m.driver_cores {
        None => "the driver and the harness not".to_string(),
        Some(driver) => {
            format!("the driver's load threads to the rest, core(s) {driver}; the harness not")
        }
    };
    format!("{cpus} CPUs; every unit process (and sidecar) confined to core(s) {units} (--unit-cpus), {driver}")
}

fn network_method(model: &crate::results::NetworkModel, containers: bool) -> String {
    let shared = if containers {
        "Every unit runs in a container on this one machine, over a Docker bridge network, and shares its cores."
    } else {
        "Every process runs on this one machine over 127.0.0.1 and shares its cores."
    };
    if !model.adds_delay() {
        return format!("Raw loopback: no delay added to any hop. {shared}");
    }
    format!(
        "Model {}: {}. The delay is injected by grainbench itself, on every hop including the driver's: the sender holds each request one sampled one-way delay before it leaves and each reply one more before it is handed back, so a hop adds a round trip. The driver holds them in a deadline heap on its timerfd (spinning the last µs); units wait on pooled timerfds in tokio's reactor, armed early by a learned wake-up lead. Each delay's lateness (actual − intended) is recorded: the driver's per step, the units' collected from every unit after each step. Kernel emulation (netem) is not used. {shared}",
        model.name,
        model.describe()
    )
}

/// ` Changes smaller than about ±12 % (nano), ±8 % (micro) could not be seen: the median
/// over each deployment's figures of the smallest change its comparison would flag.`
fn detectable_by_cut(changes: &[Change]) -> String {
    let mut by_cut: Vec<(String, Vec<f64>)> = Vec::new();
    for change in changes {
        let Some(d) = change.estimate.as_ref().and_then(format::detectable_change) else {
            continue;
        };
        match by_cut.iter_mut().find(|(arch, _)| *arch == change.arch) {
            Some((_, values)) => values.push(d),
            None => by_cut.push((change.arch.clone(), vec![d])),
        }
    }
    if by_cut.is_empty() {
        return String::new();
    }
    let typical: Vec<String> = by_cut
        .into_iter()
        .map(|(arch, mut values)| {
            values.sort_by(f64::total_cmp);
            format!("±{:.0} % ({arch})", values[values.len() / 2])
        })
        .collect();
    format!(
        " This run could see changes of about {}: the median over each deployment's figures of the smallest change its comparison would flag.",
        format::join_clauses(&typical)
    )
}

/// The baseline comparison in words: each change, and which are discoveries
/// (Benjamini–Hochberg over every figure compared, and an interval that excludes no
/// change).
pub(super) fn compare(analysis: &BaselineChanges) -> BaselineComparison {
    let compared = analysis.changes.len();
    let changes: Vec<Change> = analysis
        .changes
        .iter()
        .map(|c| {
            let name = c.deployment.label();
            let unit = c.figure.unit();
            Change {
                colour: colour(&name).into(),
                arch: name,
                figure: c.figure.to_string(),
                before: format::estimate_in(&c.before, 1, unit),
                after: format::estimate_in(&c.after, 1, unit),
                change: match c.change {
                    None => "–".into(),
                    Some(e) if c.beyond_interval() && !c.discovery => format!(
                        "no change beyond noise over {compared} figures ({}, not a discovery at a {:.0} % false discovery rate)",
                        format::change_estimate(&e),
                        stats::FALSE_DISCOVERY_RATE * 100.0
                    ),
                    Some(e) => format::change_estimate(&e),
                },
                significant: c.significant(),
                estimate: c.change,
                p_value: c.p_value,
            }
        })
        .collect();
    let discovered = analysis.discovered();
    let baseline = analysis.baseline;
    BaselineComparison {
        summary: format!(
            "{compared} figures compared; {discovered} changed beyond noise at a {:.0} % false discovery rate (Benjamini–Hochberg over all of them, so that chance alone does not flag a few of many). Units' CPU is compared only where /proc's 10 ms ticks round it by under {:.0} %.{}",
            stats::FALSE_DISCOVERY_RATE * 100.0,
            crate::results::MAX_CPU_ROUNDING * 100.0,
            detectable_by_cut(&changes)
        ),
        compared,
        discovered,
        started_at: baseline.meta.started_at.clone(),
        git_commit: baseline
            .meta
            .git_commit
            .clone()
            .unwrap_or_else(|| "unknown".into()),
        changes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The machine line says when the units were confined to some cores (`--unit-cpus`),
    /// and says nothing of it when they were not.
    #[test]
    fn the_machine_line_names_the_cores_units_were_confined_to() {
        let mut results: RunResults = serde_json::from_str(include_str!(
            "../../../../../tests/fixtures/results-rounds.json"
        ))
        .unwrap();
        let machine = |results: &RunResults| {
            methodology(results)
                .into_iter()
                .find(|f| f.label == "Machine")
                .unwrap()
                .value
        };
        assert!(!machine(&results).contains("confined"));
        results.meta.unit_cores = Some("1".into());
        let line = machine(&results);
        assert!(
            line.contains("confined to core(s) 1 (--unit-cpus), the driver and the harness not"),
            "{line}"
        );
        results.meta.driver_cores = Some("0".into());
        let line = machine(&results);
        assert!(
            line.contains("the driver's load threads to the rest, core(s) 0"),
            "{line}"
        );
    }
}
