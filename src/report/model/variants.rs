//! What a hop's mechanism costs, from the same run: a cut deployed under another
//! security mode or transport is set against the same cut over the base mechanism
//! (plaintext; HTTP/1.1 + JSON) at the verdict rate, round by round (a cut's variants run
//! back to back in each round, so each pair shares its moment). Added latency, the share
//! of the variant's latency it is, the added cost per hop, the units' and the driver's
//! CPU, connections (handshakes) per request and memory. Each dimension of the mechanism
//! is one [`Dimension`]; its section is built the same way. The mesh's rows add what the
//! sidecars themselves cost (their CPU, apart from the units', their memory, the cold
//! start), beside the figures their makers publish.

use super::rounds;
use crate::plan::{Mesh, SecurityMode, Tracing, Transport};
use crate::report::format;
use crate::results::{ArchitectureResult, Estimate, RunResults, StepResult};
use serde::Serialize;

/// A dimension of what hops speak, compared against its base.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Dimension {
    /// Security modes against plaintext.
    Security,
    /// Transports against HTTP/1.1 + JSON.
    Transport,
    /// Sidecar proxies against none.
    Mesh,
    /// Traced requests against untraced (`--trace-overhead`).
    Tracing,
}

impl Dimension {
    pub const ALL: [Dimension; 4] = [
        Dimension::Security,
        Dimension::Transport,
        Dimension::Mesh,
        Dimension::Tracing,
    ];

    /// Whether `arch` is a variant of this dimension: off its base here, and on the other
    /// dimension's base (so each comparison changes one thing).
    fn is_variant(self, arch: &ArchitectureResult) -> bool {
        match self {
            Dimension::Security => arch.security != SecurityMode::None,
            Dimension::Transport => arch.transport != Transport::Http1Json,
            Dimension::Mesh => arch.mesh != Mesh::None,
            Dimension::Tracing => arch.tracing != Tracing::Off,
        }
    }

    /// The deployment `variant` is set against: the same cut, this dimension at its base,
    /// every other dimension as in `variant`.
    fn is_base_of(self, base: &ArchitectureResult, variant: &ArchitectureResult) -> bool {
        // Every dimension but this one as in the variant.
        let same = |d: Dimension| d == self || d.value(base) == d.value(variant);
        base.architecture == variant.architecture
            && !self.is_variant(base)
            && Dimension::ALL.into_iter().all(same)
    }

    /// The variant's value on this dimension (`mtls`, `grpc`).
    fn value(self, arch: &ArchitectureResult) -> String {
        match self {
            Dimension::Security => arch.security.name().into(),
            Dimension::Transport => arch.transport.name().into(),
            Dimension::Mesh => arch.mesh.name().into(),
            Dimension::Tracing => arch.tracing.name().into(),
        }
    }

    /// `under mtls`, `over grpc`.
    fn phrase(self, arch: &ArchitectureResult) -> String {
        match self {
            Dimension::Security => format!("under {}", arch.security),
            Dimension::Transport => format!("over {}", arch.transport.title()),
            Dimension::Mesh => "behind sidecars".into(),
            Dimension::Tracing => "traced".into(),
        }
    }

    /// What the variants are set against, in words.
    pub fn base(self) -> &'static str {
        match self {
            Dimension::Security => "plaintext",
            Dimension::Transport => "HTTP/1.1 + JSON",
            Dimension::Mesh => "no mesh",
            Dimension::Tracing => "no tracing",
        }
    }
}

/// What the meshes' makers publish per sidecar (cited, not measured here), shown beside
/// the sidecars measured.
pub const PUBLISHED_SIDECARS: [&str; 3] = [
    "Istio 1.16 (Envoy), as published: 0.35 vCPU and 40 MB per sidecar per 1 000 req/s (350 µs of CPU per request through a sidecar), +2.65 ms p90 per client–server pair.",
    "Dapr, as published: 0.48 vCPU and 23 MB per sidecar at 1 000 req/s (480 µs per request), +1.40 ms p90 and +2.10 ms p99 per pair (mTLS and tracing on).",
    "Linkerd's benchmark, as published: +6 ms median at 2 000 req/s.",
];

/// The section: one row per variant whose cut also ran on the base mechanism.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VariantSection {
    pub dimension: Dimension,
    pub rate: u32,
    /// What the variants are set against (`plaintext`).
    pub base: String,
    /// Whether units reused connections (`[security] keepalive`, `--no-keepalive`).
    pub keepalive: String,
    pub rows: Vec<VariantRow>,
    /// One sentence per row: how much of the cut's latency and CPU the variant changes.
    pub sentences: Vec<String>,
    /// Mesh only: the proxy the sidecars ran (`HAProxy version 2.6.12`) and what the
    /// meshes' makers publish.
    pub proxy: Option<String>,
    pub published: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VariantRow {
    /// The variant's deployment label (`micro+grpc`).
    pub arch: String,
    /// Its value on the dimension (`mtls`, `grpc`).
    pub variant: String,
    /// Added p50 and p99 against the base, µs, paired over the rounds.
    pub added_p50_us: String,
    pub added_p99_us: String,
    /// Whether the added p50 is a change beyond noise: its interval excludes 0 and, among
    /// more than three comparisons, it is a Benjamini–Hochberg discovery.
    pub p50_changed: bool,
    /// The added p50 over the variant's p50.
    pub share_of_p50: String,
    /// Hops per request (measured; the mechanism must not change them) and the added p50
    /// per hop.
    pub hops: String,
    pub added_p50_per_hop_us: String,
    /// Units' CPU per request, variant against base, as a ratio, and the difference.
    pub units_cpu_ratio: String,
    pub units_cpu_added_us: String,
    /// The ratio as a number, for the brief's compact table (`None`: unresolved).
    #[serde(skip)]
    pub units_cpu_ratio_estimate: Option<Estimate>,
    /// Driver's CPU per request spent in rustls, µs.
    pub driver_tls_us_per_request: String,
    /// Connections opened on the machine per request, variant (base): under TLS, each is
    /// a handshake.
    pub connections_per_request: String,
    /// Idle RSS of all units, variant minus base, MiB.
    pub idle_rss_added_mib: String,
    /// Mesh only: what the sidecars themselves cost.
    pub sidecars: Option<SidecarFigures>,
}

/// The sidecars of a mesh row, from /proc like the units' figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SidecarFigures {
    /// All sidecars' CPU per request, µs, geometric mean over the rounds with its interval.
    pub cpu_us_per_request: String,
    /// Proxies a request crosses: two per unit-to-unit hop, one for the driver's request.
    pub crossings_per_request: String,
    /// The sidecars' CPU per request over the crossings: one proxy's share of a request.
    pub cpu_us_per_crossing: String,
    /// How many sidecars, and their idle RSS in all and each, MiB.
    pub count: String,
    pub idle_rss_mib: String,
    pub idle_rss_each_mib: String,
    /// Cold start (median of the deployments) with sidecars minus without, ms.
    pub cold_start_added_ms: String,
}

/// What each security mode costs against plaintext at `rate`, when some cut ran both.
pub fn security(results: &RunResults, rate: u32, keepalive: bool) -> Option<VariantSection> {
    section(results, Dimension::Security, rate, keepalive)
}

/// What each transport costs against HTTP/1.1 + JSON at `rate`, when some cut ran both.
pub fn transport(results: &RunResults, rate: u32, keepalive: bool) -> Option<VariantSection> {
    section(results, Dimension::Transport, rate, keepalive)
}

/// What tracing costs against none at `rate`, when some cut ran both
/// (`--trace-overhead`).
pub fn tracing(results: &RunResults, rate: u32, keepalive: bool) -> Option<VariantSection> {
    section(results, Dimension::Tracing, rate, keepalive)
}

/// What sidecars cost against no mesh at `rate`, when some cut ran both.
pub fn mesh(results: &RunResults, rate: u32, keepalive: bool) -> Option<VariantSection> {
    let mut section = section(results, Dimension::Mesh, rate, keepalive)?;
    section.proxy = results.meta.sidecar_proxy.clone();
    section.published = PUBLISHED_SIDECARS.iter().map(|s| s.to_string()).collect();
    Some(section)
}

fn section(
    results: &RunResults,
    dimension: Dimension,
    rate: u32,
    keepalive: bool,
) -> Option<VariantSection> {
    let pairs: Vec<(&ArchitectureResult, &ArchitectureResult)> = results
        .architectures
        .iter()
        .filter(|a| dimension.is_variant(a))
        .filter_map(|variant| {
            let base = results
                .architectures
                .iter()
                .find(|a| dimension.is_base_of(a, variant))?;
            Some((variant, base))
        })
        .collect();
    // Many comparisons: each added p50 is a discovery only under Benjamini–Hochberg.
    let p50 = |s: &StepResult| Some(s.latency_us.p50 as f64);
    let decisions: Vec<Option<bool>> = if pairs.len() > super::MAX_UNCORRECTED_CUTS {
        let p_values: Vec<Option<f64>> = pairs
            .iter()
            .map(|(v, b)| rounds::difference_p_value(&figure(v, rate, p50), &figure(b, rate, p50)))
            .collect();
        crate::stats::benjamini_hochberg(&p_values, crate::stats::FALSE_DISCOVERY_RATE)
            .into_iter()
            .map(Some)
            .collect()
    } else {
        vec![None; pairs.len()]
    };
    let compared = pairs.len();
    let mut rows = Vec::new();
    let mut sentences = Vec::new();
    for ((variant, base), discovery) in pairs.into_iter().zip(decisions) {
        let corrected = discovery.map(|found| (found, compared));
        if let Some((row, sentence)) = compare(dimension, variant, base, rate, corrected) {
            rows.push(row);
            sentences.push(sentence);
        }
    }
    (!rows.is_empty()).then(|| VariantSection {
        dimension,
        rate,
        base: dimension.base().into(),
        keepalive: if keepalive {
            "Units reused connections (keep-alive)".into()
        } else {
            "Units opened a connection per call (--no-keepalive)".into()
        },
        rows,
        sentences,
        proxy: None,
        published: Vec::new(),
    })
}

fn figure(
    arch: &ArchitectureResult,
    rate: u32,
    f: impl Fn(&StepResult) -> Option<f64>,
) -> Vec<(usize, f64)> {
    rounds::per_round(arch, rate, f)
}

/// What a CPU figure shows when /proc's 10 ms ticks do not resolve it in every round.
const UNRESOLVED_CPU: &str = "under /proc's tick resolution (longer steps)";

/// A CPU figure's rounds, when /proc's ticks resolve it in every valid round of `arch`
/// at `rate` (`resolved`); else none, so that no interval claims a certainty the
/// ticks cannot give.
fn resolved_cpu(
    arch: &ArchitectureResult,
    rate: u32,
    resolved: impl Fn(&StepResult) -> Option<f64>,
) -> Option<Vec<(usize, f64)>> {
    arch.all_rounds_have(rate, &resolved)
        .then(|| figure(arch, rate, resolved))
}

fn signed(e: &Estimate, unit: &str) -> String {
    match e.interval() {
        Some((low, high)) => format!("{:+.0} [{low:+.0}, {high:+.0}] {unit}", e.point),
        None => format!("{:+.0} {unit} (one round: no interval)", e.point),
    }
}

/// One variant against its base; `corrected`: whether its added p50 is a discovery under
/// Benjamini–Hochberg over that many comparisons (`None`: few enough to take as they are).
fn compare(
    dimension: Dimension,
    variant: &ArchitectureResult,
    base: &ArchitectureResult,
    rate: u32,
    corrected: Option<(bool, usize)>,
) -> Option<(VariantRow, String)> {
    let p50 = |s: &StepResult| Some(s.latency_us.p50 as f64);
    let p99 = |s: &StepResult| Some(s.latency_us.p99 as f64);
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
    let added_p50 = rounds::difference(&figure(variant, rate, p50), &figure(base, rate, p50))?;
    let added_p99 = rounds::difference(&figure(variant, rate, p99), &figure(base, rate, p99));
    let variant_p50 = rounds::over_rounds(&figure(variant, rate, p50))?;
    let hops_mean = rounds::mean_over_rounds(&figure(variant, rate, hops)).map_or(0.0, |e| e.point);
    let units_cpu = |a| resolved_cpu(a, rate, StepResult::resolved_units_cpu_us_per_request);
    let (cpu_ratio, cpu_added, cpu_resolved) = match (units_cpu(variant), units_cpu(base)) {
        (Some(v), Some(b)) => (rounds::ratio(&v, &b), rounds::difference(&v, &b), true),
        _ => (None, None, false),
    };
    let unresolved = |text: String| {
        if cpu_resolved {
            text
        } else {
            UNRESOLVED_CPU.into()
        }
    };
    let mean = |a: &ArchitectureResult, f: &dyn Fn(&StepResult) -> Option<f64>| {
        rounds::over_rounds(&rounds::per_round(a, rate, f)).map(|e| e.point)
    };
    let share = added_p50.point / variant_p50.point.max(1.0);
    let per_hop = added_p50.point / hops_mean.max(1.0);
    let rss = |a: &ArchitectureResult| a.deploy.as_ref().map(|d| d.idle_rss_bytes_total as f64);
    let arch = variant.label();
    let p50_changed = added_p50.interval().is_some()
        && !added_p50.contains(0.0)
        && corrected.is_none_or(|(found, _)| found);
    let row = VariantRow {
        arch: arch.clone(),
        variant: dimension.value(variant),
        added_p50_us: signed(&added_p50, "µs"),
        added_p99_us: added_p99.map_or("–".into(), |e| signed(&e, "µs")),
        p50_changed,
        share_of_p50: format!("{:.0} %", share * 100.0),
        hops: format!("{hops_mean:.1}"),
        added_p50_per_hop_us: format!("{per_hop:+.1}"),
        units_cpu_ratio: unresolved(cpu_ratio.map_or("–".into(), |r| format::ratio_estimate(&r))),
        units_cpu_ratio_estimate: cpu_ratio.filter(|_| cpu_resolved),
        units_cpu_added_us: unresolved(cpu_added.map_or("–".into(), |e| signed(&e, "µs"))),
        driver_tls_us_per_request: mean(variant, &tls).map_or("–".into(), |v| format!("{v:.1}")),
        connections_per_request: match (mean(variant, &opened), mean(base, &opened)) {
            (Some(s), Some(p)) => format!("{s:.2} ({p:.2})"),
            _ => "–".into(),
        },
        idle_rss_added_mib: match (rss(variant), rss(base)) {
            (Some(s), Some(p)) => format!("{:+.1}", (s - p) / (1024.0 * 1024.0)),
            _ => "–".into(),
        },
        sidecars: (dimension == Dimension::Mesh)
            .then(|| sidecar_figures(variant, base, rate, hops_mean)),
    };
    let mut cpu_clause = cpu_ratio.map_or(String::new(), |r| {
        format!(
            "; its units' CPU per request: {}",
            format::ratio_estimate(&r)
        )
    });
    if let Some(s) = row
        .sidecars
        .as_ref()
        .filter(|s| s.cpu_us_per_request != UNRESOLVED_CPU)
    {
        cpu_clause.push_str(&format!(
            "; the sidecars burn {} µs of CPU per request besides, {} µs for each of the {} proxies a request crosses",
            s.cpu_us_per_request, s.cpu_us_per_crossing, s.crossings_per_request
        ));
    }
    let against = dimension.base();
    let latency = if added_p50.interval().is_some() && added_p50.contains(0.0) {
        format!(
            "shows no clear change in p50 against {against} ({})",
            signed(&added_p50, "µs")
        )
    } else if let (Some((false, compared)), Some(_)) = (corrected, added_p50.interval()) {
        format!(
            "shows no clear change in p50 against {against} over {compared} comparisons ({}, not a discovery at a {:.0} % false discovery rate)",
            signed(&added_p50, "µs"),
            crate::stats::FALSE_DISCOVERY_RATE * 100.0
        )
    } else {
        format!(
            "changes p50 by {} against {against}: {:.0} % of its p50, {per_hop:+.1} µs for each of its {hops_mean:.1} hops",
            signed(&added_p50, "µs"),
            share * 100.0
        )
    };
    let cut = base.label();
    let phrase = dimension.phrase(variant);
    let sentence = format!("At {rate} req/s, {cut} {phrase} {latency}{cpu_clause}.");
    Some((row, sentence))
}

/// What the sidecars of `variant` cost at `rate`: their CPU per request in all and per
/// proxy crossed (`hops` per request, the driver's included: 2·hops − 1 crossings), their
/// idle memory, and the cold start against `base`.
fn sidecar_figures(
    variant: &ArchitectureResult,
    base: &ArchitectureResult,
    rate: u32,
    hops: f64,
) -> SidecarFigures {
    let crossings = (2.0 * hops - 1.0).max(1.0);
    let cpu = resolved_cpu(
        variant,
        rate,
        StepResult::resolved_sidecars_cpu_us_per_request,
    )
    .and_then(|rounds| rounds::over_rounds(&rounds));
    let per_crossing = cpu.as_ref().map(|e| Estimate {
        point: e.point / crossings,
        low: e.low.map(|v| v / crossings),
        high: e.high.map(|v| v / crossings),
        rounds: e.rounds,
    });
    let deploy = variant.deploy.as_ref();
    let count = deploy.and_then(|d| d.sidecars).unwrap_or(0);
    let rss = deploy.and_then(|d| d.sidecar_idle_rss_bytes_total);
    let mib = |bytes: f64| bytes / (1024.0 * 1024.0);
    let cold = |a: &ArchitectureResult| a.deploy.as_ref().map(|d| d.cold_start.median_ms);
    SidecarFigures {
        cpu_us_per_request: cpu.map_or(UNRESOLVED_CPU.into(), |e| format::estimate(&e, 0)),
        crossings_per_request: format!("{crossings:.1}"),
        cpu_us_per_crossing: per_crossing
            .map_or(UNRESOLVED_CPU.into(), |e| format::estimate(&e, 0)),
        count: count.to_string(),
        idle_rss_mib: rss.map_or("–".into(), |b| format!("{:.1}", mib(b as f64))),
        idle_rss_each_mib: match (rss, count) {
            (Some(b), n) if n > 0 => format!("{:.1}", mib(b as f64) / n as f64),
            _ => "–".into(),
        },
        cold_start_added_ms: match (cold(variant), cold(base)) {
            (Some(v), Some(b)) => format!("{:+.1}", v - b),
            _ => "–".into(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Architecture;

    /// Three processes' usage over a step: `ms` of CPU in all.
    fn busy(ms: f64) -> crate::results::UnitsUsage {
        crate::results::UnitsUsage {
            cpu_ms: (0..3).map(|i| (format!("u{i}"), ms / 3.0)).collect(),
            cpu_ms_total: ms,
            ..Default::default()
        }
    }

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
                step.units = Some(busy(1_000.0));
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
        assert_eq!(
            (row.arch.as_str(), row.variant.as_str()),
            ("micro+mtls", "mtls")
        );
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
    fn with_more_than_three_rows_a_borderline_difference_is_not_a_discovery() {
        let mut results: RunResults =
            serde_json::from_str(include_str!("../../../tests/fixtures/results-tiny.json"))
                .unwrap();
        let base = deployment(SecurityMode::None, &[1_000, 1_010, 990], 100.0);
        // +10, +20, +12 µs: an interval that just excludes 0 (paired t, p about 0.04).
        let borderline = deployment(SecurityMode::Tls, &[1_010, 1_030, 1_002], 100.0);
        results.architectures = vec![base.clone(), borderline.clone()];
        let alone = security(&results, 100, true).unwrap();
        assert!(
            alone.sentences[0].contains("changes p50 by +14 ["),
            "one comparison is taken as it is: {}",
            alone.sentences[0]
        );
        let unchanged = |mode, p50s: &[u64]| deployment(mode, p50s, 100.0);
        results.architectures = vec![
            base,
            borderline,
            unchanged(SecurityMode::Mtls, &[1_005, 1_005, 991]),
            unchanged(SecurityMode::Token, &[995, 1_016, 990]),
            unchanged(SecurityMode::MtlsToken, &[1_002, 1_004, 996]),
        ];
        let many = security(&results, 100, true).unwrap();
        assert_eq!(many.rows.len(), 4);
        assert!(
            many.sentences[0]
                .contains("no clear change in p50 against plaintext over 4 comparisons")
                && many.sentences[0].contains("not a discovery at a 5 % false discovery rate"),
            "{}",
            many.sentences[0]
        );
    }

    /// A cut behind sidecars is set against the same cut without a mesh (and its secured
    /// variant against its secured base, never across), with the sidecars' own figures.
    #[test]
    fn a_meshed_cut_is_set_against_the_same_cut_without_and_its_sidecars_are_counted() {
        let mut results: RunResults =
            serde_json::from_str(include_str!("../../../tests/fixtures/results-tiny.json"))
                .unwrap();
        results.meta.sidecar_proxy = Some("HAProxy version 2.6.12".into());
        let meshed = |mode, p50s: &[u64]| {
            let mut arch = deployment(mode, p50s, 104.0);
            arch.mesh = Mesh::Sidecar;
            for step in &mut arch.steps {
                step.sidecars_cpu_us_per_request = Some(490.0);
                step.sidecars = Some(busy(600.0));
            }
            let deploy = arch.deploy.as_mut().expect("the fixture has a deploy cost");
            deploy.sidecars = Some(3);
            deploy.sidecar_idle_rss_bytes_total = Some(3 * 14 * 1024 * 1024);
            deploy.cold_start.median_ms += 90.0;
            arch
        };
        results.architectures = vec![
            deployment(SecurityMode::None, &[1_000, 1_010, 990], 100.0),
            meshed(SecurityMode::None, &[1_400, 1_420, 1_390]),
            deployment(SecurityMode::Mtls, &[1_100, 1_110, 1_090], 100.0),
            meshed(SecurityMode::Mtls, &[1_600, 1_630, 1_580]),
        ];
        let section = mesh(&results, 100, true).expect("meshed cuts beside their bases");
        let arches: Vec<&str> = section.rows.iter().map(|r| r.arch.as_str()).collect();
        assert_eq!(arches, ["micro+sidecar", "micro+mtls+sidecar"]);
        assert!(
            section.rows[0].added_p50_us.starts_with("+403 ["),
            "{:?}",
            section.rows[0]
        );
        assert!(
            section.rows[1].added_p50_us.starts_with("+503 ["),
            "{:?}",
            section.rows[1]
        );
        let sidecars = section.rows[0].sidecars.as_ref().unwrap();
        // 4 hops, the driver's included: 2 proxies for each of 3 unit-to-unit hops, 1 for
        // the driver's request.
        assert_eq!(sidecars.crossings_per_request, "7.0");
        assert!(
            sidecars.cpu_us_per_crossing.starts_with("70"),
            "{sidecars:?}"
        );
        assert_eq!(
            (sidecars.count.as_str(), sidecars.idle_rss_each_mib.as_str()),
            ("3", "14.0")
        );
        assert_eq!(sidecars.cold_start_added_ms, "+90.0");
        assert!(
            section.sentences[0].contains("the sidecars burn 490"),
            "{}",
            section.sentences[0]
        );
        assert_eq!(section.proxy.as_deref(), Some("HAProxy version 2.6.12"));
        assert_eq!(section.published.len(), PUBLISHED_SIDECARS.len());
        // Sidecars that used a few ticks of CPU in a round: no figure, and no interval
        // that claims a certainty the ticks cannot give.
        results.architectures[1].steps[0].sidecars = Some(busy(20.0));
        let section = mesh(&results, 100, true).unwrap();
        let sidecars = section.rows[0].sidecars.as_ref().unwrap();
        assert_eq!(sidecars.cpu_us_per_request, UNRESOLVED_CPU);
        assert!(
            !section.sentences[0].contains("the sidecars burn"),
            "{}",
            section.sentences[0]
        );
        // Security rows compare within a mesh mode: micro+mtls+sidecar against
        // micro+sidecar (+200), never against micro.
        let security = security(&results, 100, true).unwrap();
        let secured: Vec<(&str, &str)> = security
            .rows
            .iter()
            .map(|r| (r.arch.as_str(), r.added_p50_us.split(' ').next().unwrap()))
            .collect();
        assert_eq!(
            secured,
            [("micro+mtls", "+100"), ("micro+mtls+sidecar", "+200")]
        );
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
