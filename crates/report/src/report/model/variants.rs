//! What a hop's mechanism costs, in words: each [`Dimension`]'s comparisons
//! ([`crate::analysis::variants`]) as a section of rows and sentences. Added latency, the
//! share of the variant's latency it is, the added cost per hop, the units' and the
//! driver's CPU, connections (handshakes) per request and memory. The mesh's rows add what
//! the sidecars themselves cost (their CPU, apart from the units', their memory, the cold
//! start), beside the figures their makers publish.

pub use crate::analysis::variants::Dimension;
use crate::analysis::variants::{SidecarCost, VariantComparison};
use crate::report::format;
use crate::results::{Estimate, RunResults};
use serde::Serialize;

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

/// The section of `dimension` at `rate` from its `comparisons`; `None` without any.
pub fn section(
    results: &RunResults,
    dimension: Dimension,
    rate: u32,
    comparisons: &[VariantComparison],
) -> Option<VariantSection> {
    if comparisons.is_empty() {
        return None;
    }
    let (rows, sentences) = comparisons
        .iter()
        .map(|c| {
            let row = row(dimension, c);
            let sentence = sentence(dimension, c, row.sidecars.as_ref(), rate);
            (row, sentence)
        })
        .unzip();
    let mesh = dimension == Dimension::Mesh;
    Some(VariantSection {
        dimension,
        rate,
        base: dimension.base().into(),
        keepalive: if results.meta.keepalive {
            "Units reused connections (keep-alive)".into()
        } else {
            "Units opened a connection per call (--no-keepalive)".into()
        },
        rows,
        sentences,
        proxy: results.meta.sidecar_proxy.clone().filter(|_| mesh),
        published: if mesh {
            PUBLISHED_SIDECARS.iter().map(|s| s.to_string()).collect()
        } else {
            Vec::new()
        },
    })
}

/// What a CPU figure shows when /proc's 10 ms ticks do not resolve it in every round.
const UNRESOLVED_CPU: &str = "under /proc's tick resolution (longer steps)";

fn signed(e: &Estimate, unit: &str) -> String {
    match e.interval() {
        Some((low, high)) => format!("{:+.0} [{low:+.0}, {high:+.0}] {unit}", e.point),
        None => format!("{:+.0} {unit} (one round: no interval)", e.point),
    }
}

fn mib(bytes: f64) -> f64 {
    bytes / (1024.0 * 1024.0)
}

fn row(dimension: Dimension, c: &VariantComparison) -> VariantRow {
    let cpu = |f: &dyn Fn(&crate::analysis::variants::CpuChange) -> Option<String>| {
        c.units_cpu
            .as_ref()
            .map_or(UNRESOLVED_CPU.into(), |cpu| f(cpu).unwrap_or("–".into()))
    };
    VariantRow {
        arch: c.variant.label(),
        variant: dimension.value(c.variant),
        added_p50_us: signed(&c.added_p50_us, "µs"),
        added_p99_us: c.added_p99_us.map_or("–".into(), |e| signed(&e, "µs")),
        p50_changed: c.p50_changed(),
        share_of_p50: format!("{:.0} %", c.share_of_p50() * 100.0),
        hops: format!("{:.1}", c.hops),
        added_p50_per_hop_us: format!("{:+.1}", c.added_p50_per_hop_us()),
        units_cpu_ratio: cpu(&|cpu| cpu.ratio.map(|r| format::ratio_estimate(&r))),
        units_cpu_ratio_estimate: c.units_cpu.and_then(|cpu| cpu.ratio),
        units_cpu_added_us: cpu(&|cpu| cpu.added_us.map(|e| signed(&e, "µs"))),
        driver_tls_us_per_request: c
            .driver_tls_us_per_request
            .map_or("–".into(), |v| format!("{v:.1}")),
        connections_per_request: c
            .connections_per_request
            .map_or("–".into(), |(v, b)| format!("{v:.2} ({b:.2})")),
        idle_rss_added_mib: c
            .idle_rss_added_bytes
            .map_or("–".into(), |b| format!("{:+.1}", mib(b))),
        sidecars: c.sidecars.as_ref().map(sidecar_figures),
    }
}

/// One sentence: how much of the cut's latency and CPU the variant changes (`sidecars`: its
/// row's sidecar figures, under a mesh).
fn sentence(
    dimension: Dimension,
    c: &VariantComparison,
    sidecars: Option<&SidecarFigures>,
    rate: u32,
) -> String {
    let mut cpu_clause = c
        .units_cpu
        .and_then(|cpu| cpu.ratio)
        .map_or(String::new(), |r| {
            format!(
                "; its units' CPU per request: {}",
                format::ratio_estimate(&r)
            )
        });
    let measured = c.sidecars.is_some_and(|s| s.cpu_us_per_request.is_some());
    if let Some(figures) = sidecars.filter(|_| measured) {
        cpu_clause.push_str(&format!(
            "; the sidecars burn {} µs of CPU per request besides, {} µs for each of the {} proxies a request crosses",
            figures.cpu_us_per_request, figures.cpu_us_per_crossing, figures.crossings_per_request
        ));
    }
    let against = dimension.base();
    let added = &c.added_p50_us;
    let latency = if added.interval().is_some() && added.contains(0.0) {
        format!(
            "shows no clear change in p50 against {against} ({})",
            signed(added, "µs")
        )
    } else if let (Some((false, compared)), Some(_)) = (c.discovery, added.interval()) {
        format!(
            "shows no clear change in p50 against {against} over {compared} comparisons ({}, not a discovery at a {:.0} % false discovery rate)",
            signed(added, "µs"),
            crate::stats::FALSE_DISCOVERY_RATE * 100.0
        )
    } else {
        format!(
            "changes p50 by {} against {against}: {:.0} % of its p50, {:+.1} µs for each of its {:.1} hops",
            signed(added, "µs"),
            c.share_of_p50() * 100.0,
            c.added_p50_per_hop_us(),
            c.hops
        )
    };
    let cut = c.base.label();
    let phrase = dimension.phrase(c.variant);
    format!("At {rate} req/s, {cut} {phrase} {latency}{cpu_clause}.")
}

fn sidecar_figures(s: &SidecarCost) -> SidecarFigures {
    let cpu = |e: &Option<Estimate>| e.map_or(UNRESOLVED_CPU.into(), |e| format::estimate(&e, 0));
    SidecarFigures {
        cpu_us_per_request: cpu(&s.cpu_us_per_request),
        crossings_per_request: format!("{:.1}", s.crossings_per_request),
        cpu_us_per_crossing: cpu(&s.cpu_us_per_crossing),
        count: s.count.to_string(),
        idle_rss_mib: s
            .idle_rss_bytes
            .map_or("–".into(), |b| format!("{:.1}", mib(b as f64))),
        idle_rss_each_mib: match (s.idle_rss_bytes, s.count) {
            (Some(b), n) if n > 0 => format!("{:.1}", mib(b as f64) / n as f64),
            _ => "–".into(),
        },
        cold_start_added_ms: s
            .cold_start_added_ms
            .map_or("–".into(), |ms| format!("{ms:+.1}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::rounds;
    use crate::modes::{Architecture, Mesh, SecurityMode};
    use crate::results::{ArchitectureResult, StepResult};

    /// The section of `dimension`, as the model builds it.
    fn of(
        dimension: Dimension,
        results: &RunResults,
        rate: u32,
        keepalive: bool,
    ) -> Option<VariantSection> {
        let mut results = results.clone();
        results.meta.keepalive = keepalive;
        let comparisons = crate::analysis::variants::comparisons(
            &results,
            dimension,
            rate,
            super::super::MAX_UNCORRECTED_CUTS,
        );
        section(&results, dimension, rate, &comparisons)
    }

    fn security(results: &RunResults, rate: u32, keepalive: bool) -> Option<VariantSection> {
        of(Dimension::Security, results, rate, keepalive)
    }

    fn mesh(results: &RunResults, rate: u32, keepalive: bool) -> Option<VariantSection> {
        of(Dimension::Mesh, results, rate, keepalive)
    }

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
        let results: RunResults = serde_json::from_str(include_str!(
            "../../../../../tests/fixtures/results-tiny.json"
        ))
        .unwrap();
        let mut arch = results.architectures[0].clone();
        arch.architecture = Architecture::Micro;
        arch.security = mode;
        let template: StepResult =
            serde_json::from_str(include_str!("../../../../../tests/fixtures/step.json")).unwrap();
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
        let mut results: RunResults = serde_json::from_str(include_str!(
            "../../../../../tests/fixtures/results-tiny.json"
        ))
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
        let mut results: RunResults = serde_json::from_str(include_str!(
            "../../../../../tests/fixtures/results-tiny.json"
        ))
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
        let mut results: RunResults = serde_json::from_str(include_str!(
            "../../../../../tests/fixtures/results-tiny.json"
        ))
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
