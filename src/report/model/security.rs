//! What each hop's security cost, from the same run: every cut deployed under a secured
//! mode is set against the same cut in plaintext at the verdict rate, round by round (a
//! cut's modes run back to back in each round, so each pair shares its moment). Added
//! latency, the share of the secured latency it is, the added cost per hop, the units' and
//! the driver's CPU, connections (handshakes) per request and memory.

use super::rounds;
use crate::plan::SecurityMode;
use crate::report::format;
use crate::results::{ArchitectureResult, Estimate, RunResults, StepResult};
use serde::Serialize;

/// The section: one row per secured deployment whose cut also ran in plaintext.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SecuritySection {
    pub rate: u32,
    /// Whether units reused connections (`[security] keepalive`, `--no-keepalive`).
    pub keepalive: String,
    pub rows: Vec<SecurityRow>,
    /// One sentence per row: how much of the cut's latency and CPU is security.
    pub sentences: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SecurityRow {
    pub arch: String,
    pub mode: String,
    /// Added p50 and p99 against plaintext, µs, paired over the rounds.
    pub added_p50_us: String,
    pub added_p99_us: String,
    /// The added p50 over the secured p50.
    pub share_of_p50: String,
    /// Hops per request (measured; security must not change them) and the added p50 per hop.
    pub hops: String,
    pub added_p50_per_hop_us: String,
    /// Units' CPU per request, secured against plaintext, as a ratio.
    pub units_cpu_ratio: String,
    pub units_cpu_added_us: String,
    /// Driver's CPU per request spent in rustls, µs.
    pub driver_tls_us_per_request: String,
    /// Connections opened on the machine per request, secured (plaintext): under TLS, each
    /// is a handshake.
    pub connections_per_request: String,
    /// Idle RSS of all units, secured minus plaintext, MiB.
    pub idle_rss_added_mib: String,
}

/// The section, when some cut ran both in plaintext and under a secured mode at `rate`.
pub fn security(results: &RunResults, rate: u32, keepalive: bool) -> Option<SecuritySection> {
    let mut rows = Vec::new();
    let mut sentences = Vec::new();
    for secured in results
        .architectures
        .iter()
        .filter(|a| a.security != SecurityMode::None)
    {
        let Some(plain) = results
            .architectures
            .iter()
            .find(|a| a.architecture == secured.architecture && a.security == SecurityMode::None)
        else {
            continue;
        };
        if let Some((row, sentence)) = compare(secured, plain, rate) {
            rows.push(row);
            sentences.push(sentence);
        }
    }
    (!rows.is_empty()).then(|| SecuritySection {
        rate,
        keepalive: if keepalive {
            "Units reused connections (keep-alive)".into()
        } else {
            "Units opened a connection per call (--no-keepalive)".into()
        },
        rows,
        sentences,
    })
}

fn figure(
    arch: &ArchitectureResult,
    rate: u32,
    f: impl Fn(&StepResult) -> Option<f64>,
) -> Vec<(usize, f64)> {
    rounds::per_round(arch, rate, f)
}

fn signed(e: &Estimate, unit: &str) -> String {
    match e.interval() {
        Some((low, high)) => format!("{:+.0} [{low:+.0}, {high:+.0}] {unit}", e.point),
        None => format!("{:+.0} {unit} (one round: no interval)", e.point),
    }
}

fn compare(
    secured: &ArchitectureResult,
    plain: &ArchitectureResult,
    rate: u32,
) -> Option<(SecurityRow, String)> {
    let p50 = |s: &StepResult| Some(s.latency_us.p50 as f64);
    let p99 = |s: &StepResult| Some(s.latency_us.p99 as f64);
    let cpu = |s: &StepResult| s.units_cpu_us_per_request;
    let hops = |s: &StepResult| Some(s.hops.mean_total);
    let per_request = |s: &StepResult, x: f64| {
        (s.generator.requests_sent > 0).then(|| x / s.generator.requests_sent as f64)
    };
    let tls = |s: &StepResult| per_request(s, s.generator.driver_tls_ms * 1e3);
    let opened = |s: &StepResult| {
        s.generator
            .connections_opened_machine
            .and_then(|n| per_request(s, n as f64))
    };
    let added_p50 = rounds::difference(&figure(secured, rate, p50), &figure(plain, rate, p50))?;
    let added_p99 = rounds::difference(&figure(secured, rate, p99), &figure(plain, rate, p99));
    let secured_p50 = rounds::over_rounds(&figure(secured, rate, p50))?;
    let hops_mean = rounds::mean_over_rounds(&figure(secured, rate, hops)).map_or(0.0, |e| e.point);
    let cpu_ratio = rounds::ratio(&figure(secured, rate, cpu), &figure(plain, rate, cpu));
    let cpu_added = rounds::difference(&figure(secured, rate, cpu), &figure(plain, rate, cpu));
    let mean = |a: &ArchitectureResult, f: &dyn Fn(&StepResult) -> Option<f64>| {
        rounds::over_rounds(&rounds::per_round(a, rate, f)).map(|e| e.point)
    };
    let share = added_p50.point / secured_p50.point.max(1.0);
    let per_hop = added_p50.point / hops_mean.max(1.0);
    let rss = |a: &ArchitectureResult| a.deploy.as_ref().map(|d| d.idle_rss_bytes_total as f64);
    let mode = secured.security.name();
    let arch = secured.architecture.name();
    let row = SecurityRow {
        arch: arch.clone(),
        mode: mode.to_string(),
        added_p50_us: signed(&added_p50, "µs"),
        added_p99_us: added_p99.map_or("–".into(), |e| signed(&e, "µs")),
        share_of_p50: format!("{:.0} %", share * 100.0),
        hops: format!("{hops_mean:.1}"),
        added_p50_per_hop_us: format!("{per_hop:+.1}"),
        units_cpu_ratio: cpu_ratio.map_or("–".into(), |r| format::ratio_estimate(&r)),
        units_cpu_added_us: cpu_added.map_or("–".into(), |e| signed(&e, "µs")),
        driver_tls_us_per_request: mean(secured, &tls).map_or("–".into(), |v| format!("{v:.1}")),
        connections_per_request: match (mean(secured, &opened), mean(plain, &opened)) {
            (Some(s), Some(p)) => format!("{s:.2} ({p:.2})"),
            _ => "–".into(),
        },
        idle_rss_added_mib: match (rss(secured), rss(plain)) {
            (Some(s), Some(p)) => format!("{:+.1}", (s - p) / (1024.0 * 1024.0)),
            _ => "–".into(),
        },
    };
    let cpu_clause = cpu_ratio.map_or(String::new(), |r| {
        format!(
            "; its units' CPU per request: {}",
            format::ratio_estimate(&r)
        )
    });
    let latency = if added_p50.interval().is_some() && added_p50.contains(0.0) {
        format!(
            "shows no clear change in p50 against plaintext ({})",
            signed(&added_p50, "µs")
        )
    } else {
        format!(
            "changes p50 by {} against plaintext: {:.0} % of its secured p50, {per_hop:+.1} µs for each of its {hops_mean:.1} hops",
            signed(&added_p50, "µs"),
            share * 100.0
        )
    };
    let sentence = format!("At {rate} req/s, {arch} under {mode} {latency}{cpu_clause}.");
    Some((row, sentence))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Architecture;

    /// `micro` in `mode` with one valid step per round at 100 req/s: p50s and units' CPU.
    fn deployment(mode: SecurityMode, p50s: &[u64], cpu: f64) -> ArchitectureResult {
        let results: RunResults =
            serde_json::from_str(include_str!("../../../tests/fixtures/results-tiny.json"))
                .unwrap();
        let mut arch = results.architectures[0].clone();
        arch.architecture = Architecture::Micro;
        arch.security = mode;
        let template: StepResult =
            serde_json::from_str(include_str!("../../../tests/fixtures/step.json")).unwrap();
        arch.steps = p50s
            .iter()
            .enumerate()
            .map(|(round, &p50)| {
                let mut step = template.clone();
                step.round = round;
                step.target_rps = 100;
                step.valid = true;
                step.latency_us.p50 = p50;
                step.latency_us.p99 = p50 * 2;
                step.hops.mean_total = 4.0;
                step.units_cpu_us_per_request = Some(cpu + round as f64);
                step
            })
            .collect();
        arch
    }

    #[test]
    fn a_secured_cut_is_set_against_the_same_cut_in_plaintext() {
        let mut results: RunResults =
            serde_json::from_str(include_str!("../../../tests/fixtures/results-tiny.json"))
                .unwrap();
        results.architectures = vec![
            deployment(SecurityMode::None, &[1_000, 1_010, 990], 100.0),
            deployment(SecurityMode::Mtls, &[1_300, 1_320, 1_290], 130.0),
        ];
        let section = security(&results, 100, false).expect("a secured cut beside plaintext");
        assert_eq!(section.rows.len(), 1);
        let row = &section.rows[0];
        assert_eq!((row.arch.as_str(), row.mode.as_str()), ("micro", "mtls"));
        assert!(
            row.added_p50_us.starts_with("+303 ["),
            "{}",
            row.added_p50_us
        );
        assert_eq!(row.added_p50_per_hop_us, "+75.8");
        assert_eq!(row.share_of_p50, "23 %");
        assert!(
            row.units_cpu_ratio.starts_with("1.3×"),
            "{}",
            row.units_cpu_ratio
        );
        assert!(section.keepalive.contains("--no-keepalive"));
        let sentence = &section.sentences[0];
        assert!(
            sentence.starts_with("At 100 req/s, micro under mtls changes p50 by +303 ["),
            "{sentence}"
        );
        // Without the plaintext deployment there is nothing to compare.
        results.architectures.remove(0);
        assert!(security(&results, 100, true).is_none());
    }

    #[test]
    fn differences_pair_rounds_and_keep_their_sign() {
        let secured = [(0, 1_300.0), (1, 1_350.0), (2, 1_280.0)];
        let plain = [(0, 1_000.0), (2, 990.0)];
        let d = rounds::difference(&secured, &plain).unwrap();
        assert_eq!(d.rounds, 2);
        assert!((d.point - 295.0).abs() < 1e-9, "{d:?}");
        assert!(
            signed(&d, "µs").starts_with("+295 ["),
            "{}",
            signed(&d, "µs")
        );
        let one = rounds::difference(&[(0, 90.0)], &[(0, 100.0)]).unwrap();
        assert_eq!(signed(&one, "µs"), "-10 µs (one round: no interval)");
    }
}
