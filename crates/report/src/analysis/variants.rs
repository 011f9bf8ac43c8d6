//! What a hop's mechanism costs, from the same run: a cut deployed under another
//! security mode, transport, mesh or tracing is set against the same cut on the base
//! mechanism (plaintext; HTTP/1.1 + JSON; no mesh; untraced) at the comparison rate,
//! round by round (a cut's variants run back to back in each round, so each pair shares
//! its moment). Each dimension of the mechanism is one [`Dimension`]; every comparison is
//! made the same way, as numbers with their intervals ([`VariantComparison`]); the report
//! puts them in words.

use super::rounds;
use crate::modes::{Mesh, SecurityMode, Tracing, Transport};
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
    pub fn value(self, arch: &ArchitectureResult) -> String {
        match self {
            Dimension::Security => arch.security.name().into(),
            Dimension::Transport => arch.transport.name().into(),
            Dimension::Mesh => arch.mesh.name().into(),
            Dimension::Tracing => arch.tracing.name().into(),
        }
    }

    /// `under mtls`, `over grpc`.
    pub fn phrase(self, arch: &ArchitectureResult) -> String {
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

/// One variant against its base at the comparison rate.
#[derive(Debug, Clone, PartialEq)]
pub struct VariantComparison<'a> {
    pub variant: &'a ArchitectureResult,
    pub base: &'a ArchitectureResult,
    /// Added p50 and p99, µs, paired over the rounds.
    pub added_p50_us: Estimate,
    pub added_p99_us: Option<Estimate>,
    /// The variant's own p50, µs.
    pub variant_p50_us: Estimate,
    /// Among more than three comparisons of the dimension: whether the added p50 is a
    /// Benjamini–Hochberg discovery, and over how many comparisons (`None`: few enough to
    /// take as they are).
    pub discovery: Option<(bool, usize)>,
    /// The variant's hops per request (measured; the mechanism must not change them).
    pub hops: f64,
    /// The units' CPU per request, variant against base; `None` where /proc's ticks do
    /// not resolve it in every round of both.
    pub units_cpu: Option<CpuChange>,
    /// The driver's CPU per request spent in rustls, µs (mean over the rounds).
    pub driver_tls_us_per_request: Option<f64>,
    /// Connections opened on the machine per request: variant, base.
    pub connections_per_request: Option<(f64, f64)>,
    /// Idle RSS of all units, variant minus base, bytes.
    pub idle_rss_added_bytes: Option<f64>,
    /// Mesh only: what the sidecars themselves cost.
    pub sidecars: Option<SidecarCost>,
}

/// The units' CPU per request of a variant against its base.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CpuChange {
    pub ratio: Option<Estimate>,
    pub added_us: Option<Estimate>,
}

/// What a mesh variant's sidecars cost, from /proc like the units' figures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SidecarCost {
    /// All sidecars' CPU per request, µs (`None`: under /proc's tick resolution).
    pub cpu_us_per_request: Option<Estimate>,
    /// Proxies a request crosses: two per unit-to-unit hop, one for the driver's request.
    pub crossings_per_request: f64,
    /// The sidecars' CPU per request over the crossings: one proxy's share of a request.
    pub cpu_us_per_crossing: Option<Estimate>,
    pub count: usize,
    /// Idle RSS of all sidecars, bytes.
    pub idle_rss_bytes: Option<u64>,
    /// Cold start (median of the deployments) with sidecars minus without, ms.
    pub cold_start_added_ms: Option<f64>,
}

impl VariantComparison<'_> {
    /// Whether the added p50 is a change beyond noise: its interval excludes 0 and, among
    /// more than three comparisons, it is a Benjamini–Hochberg discovery.
    pub fn p50_changed(&self) -> bool {
        self.added_p50_us.interval().is_some()
            && !self.added_p50_us.contains(0.0)
            && self.discovery.is_none_or(|(found, _)| found)
    }

    /// The added p50 over the variant's p50.
    pub fn share_of_p50(&self) -> f64 {
        self.added_p50_us.point / self.variant_p50_us.point.max(1.0)
    }

    /// The added p50 per hop, µs.
    pub fn added_p50_per_hop_us(&self) -> f64 {
        self.added_p50_us.point / self.hops.max(1.0)
    }
}

/// Every variant of `dimension` in `results` against its base at `rate`, in the run's
/// order; with more than `uncorrected` of them, each added p50 is a discovery only under
/// Benjamini–Hochberg over all of them.
pub fn comparisons(
    results: &RunResults,
    dimension: Dimension,
    rate: u32,
    uncorrected: usize,
) -> Vec<VariantComparison<'_>> {
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
    let p50 = |s: &StepResult| Some(s.latency_us.p50 as f64);
    let decisions: Vec<Option<bool>> = if pairs.len() > uncorrected {
        let p_values: Vec<Option<f64>> = pairs
            .iter()
            .map(|(v, b)| {
                rounds::difference_p_value(&v.per_round(rate, p50), &b.per_round(rate, p50))
            })
            .collect();
        crate::stats::benjamini_hochberg(&p_values, crate::stats::FALSE_DISCOVERY_RATE)
            .into_iter()
            .map(Some)
            .collect()
    } else {
        vec![None; pairs.len()]
    };
    let compared = pairs.len();
    pairs
        .into_iter()
        .zip(decisions)
        .filter_map(|((variant, base), found)| {
            let discovery = found.map(|found| (found, compared));
            compare(dimension, variant, base, rate, discovery)
        })
        .collect()
}

/// A CPU figure's rounds, when /proc's ticks resolve it in every valid round of `arch`
/// at `rate` (`resolved`); else none, so that no interval claims a certainty the
/// ticks cannot give.
fn resolved_cpu(
    arch: &ArchitectureResult,
    rate: u32,
    resolved: impl Fn(&StepResult) -> Option<f64>,
) -> Option<Vec<(usize, f64)>> {
    arch.all_rounds_have(rate, &resolved)
        .then(|| arch.per_round(rate, resolved))
}

fn compare<'a>(
    dimension: Dimension,
    variant: &'a ArchitectureResult,
    base: &'a ArchitectureResult,
    rate: u32,
    discovery: Option<(bool, usize)>,
) -> Option<VariantComparison<'a>> {
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
    let mean = |a: &ArchitectureResult, f: &dyn Fn(&StepResult) -> Option<f64>| {
        rounds::over_rounds(&a.per_round(rate, f)).map(|e| e.point)
    };
    let added_p50_us =
        rounds::difference(&variant.per_round(rate, p50), &base.per_round(rate, p50))?;
    let variant_p50_us = rounds::over_rounds(&variant.per_round(rate, p50))?;
    let hops = rounds::mean_over_rounds(&variant.per_round(rate, hops)).map_or(0.0, |e| e.point);
    let units_cpu = |a| resolved_cpu(a, rate, StepResult::resolved_units_cpu_us_per_request);
    let rss = |a: &ArchitectureResult| a.deploy.as_ref().map(|d| d.idle_rss_bytes_total as f64);
    Some(VariantComparison {
        variant,
        base,
        added_p50_us,
        added_p99_us: rounds::difference(&variant.per_round(rate, p99), &base.per_round(rate, p99)),
        variant_p50_us,
        discovery,
        hops,
        units_cpu: match (units_cpu(variant), units_cpu(base)) {
            (Some(v), Some(b)) => Some(CpuChange {
                ratio: rounds::ratio(&v, &b),
                added_us: rounds::difference(&v, &b),
            }),
            _ => None,
        },
        driver_tls_us_per_request: mean(variant, &tls),
        connections_per_request: mean(variant, &opened).zip(mean(base, &opened)),
        idle_rss_added_bytes: rss(variant).zip(rss(base)).map(|(v, b)| v - b),
        sidecars: (dimension == Dimension::Mesh).then(|| sidecar_cost(variant, base, rate, hops)),
    })
}

/// What the sidecars of `variant` cost at `rate`: their CPU per request in all and per
/// proxy crossed (`hops` per request, the driver's included: 2·hops − 1 crossings), their
/// idle memory, and the cold start against `base`.
fn sidecar_cost(
    variant: &ArchitectureResult,
    base: &ArchitectureResult,
    rate: u32,
    hops: f64,
) -> SidecarCost {
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
    let cold = |a: &ArchitectureResult| a.deploy.as_ref().map(|d| d.cold_start.median_ms);
    SidecarCost {
        cpu_us_per_request: cpu,
        crossings_per_request: crossings,
        cpu_us_per_crossing: per_crossing,
        count: deploy.and_then(|d| d.sidecars).unwrap_or(0),
        idle_rss_bytes: deploy.and_then(|d| d.sidecar_idle_rss_bytes_total),
        cold_start_added_ms: cold(variant).zip(cold(base)).map(|(v, b)| v - b),
    }
}
