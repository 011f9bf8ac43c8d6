//! What a cut costs before any load runs, from its plan alone: units, hops per request and
//! round trips on the critical path (both weighted by the entrypoints' weights), and the
//! redeploy blast radius (operations restarted per changed operation). `grainbench plan`
//! prints one cut ([`describe`]) or a generated series ([`describe_sweep`]).

use super::sweep::{self, SweepSeries};
use super::{plan, Architecture, Deployment, PlanError, Series};
pub use crate::scenario::cut::mean_blast_radius;
use crate::scenario::Scenario;
use serde::Serialize;
use std::fmt::Write as _;

/// A cut's static figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CutOutline {
    pub cut: Architecture,
    pub service_units: usize,
    pub state_units: usize,
    /// Mean hops per request over the entrypoints, by weight; the driver's included.
    pub hops_per_request: f64,
    /// Mean round trips on the critical path over the entrypoints, by weight.
    pub critical_path: f64,
    /// Operations restarted, on average, when one operation changes.
    pub blast_radius: f64,
}

/// The static figures of `deployment`, a plan of `scenario`.
pub fn outline(scenario: &Scenario, deployment: &Deployment) -> CutOutline {
    let weighted = |figure: &dyn Fn(&str) -> f64| {
        let total: f64 = scenario
            .entrypoints
            .iter()
            .map(|e| f64::from(e.weight))
            .sum();
        let sum: f64 = scenario
            .entrypoints
            .iter()
            .map(|e| f64::from(e.weight) * figure(&e.op))
            .sum();
        if total > 0.0 {
            sum / total
        } else {
            0.0
        }
    };
    let service_units: Vec<usize> = deployment
        .units
        .iter()
        .filter(|u| !u.is_state())
        .map(|u| u.hosts.len())
        .collect();
    CutOutline {
        cut: deployment.architecture.clone(),
        service_units: service_units.len(),
        state_units: deployment.units.len() - service_units.len(),
        hops_per_request: weighted(&|op| {
            deployment
                .static_hops
                .get(op)
                .map_or(0.0, |h| f64::from(h.total()))
        }),
        critical_path: weighted(&|op| {
            deployment
                .critical_path_hops
                .get(op)
                .map_or(0.0, |&h| f64::from(h))
        }),
        blast_radius: mean_blast_radius(service_units),
    }
}

/// What `grainbench plan --arch CUT` prints: the units of the cut, what each hosts, and
/// the static hops and critical-path round trips per entrypoint.
pub fn describe(scenario: &Scenario, architecture: &Architecture) -> Result<String, PlanError> {
    let deployment = plan(scenario, architecture)?;
    let outline = outline(scenario, &deployment);
    let mut out = format!(
        "{} as {}: {} units ({} service, {} state); blast radius {:.1} operations restarted per changed operation\n",
        scenario.name,
        architecture,
        deployment.units.len(),
        outline.service_units,
        outline.state_units,
        outline.blast_radius,
    );
    for unit in &deployment.units {
        let role = if unit.is_state() {
            "state  "
        } else {
            "service"
        };
        let _ = writeln!(out, "  {role} {:<28} {}", unit.name, unit.hosts.join(", "));
    }
    out.push_str("static hops per request (driver → entry included), and round trips on the critical path:\n");
    for (entry, hops) in &deployment.static_hops {
        let critical = deployment
            .critical_path_hops
            .get(entry)
            .copied()
            .unwrap_or(0);
        let _ = writeln!(
            out,
            "  {entry:<20} {:>3} = {} service + {} state; {critical} on the critical path",
            hops.total(),
            hops.service,
            hops.state,
        );
    }
    Ok(out)
}

/// Most cuts `plan --sweep` lists per series without a count.
const MAX_LISTED: usize = 40;

/// What `grainbench plan --sweep [N]` prints: for each series, every cut from nano to
/// monolith (or the `count` a run would pick), each with its static figures and the
/// groups of more than one operation.
pub fn describe_sweep(
    scenario: &Scenario,
    series: &[Series],
    count: Option<usize>,
) -> Result<String, PlanError> {
    let mut out = String::new();
    for &series in series {
        let generated =
            SweepSeries::generate(scenario, series).map_err(|source| PlanError::Sweep {
                scenario: scenario.name.clone(),
                source,
            })?;
        let cuts = match count {
            Some(count) => sweep::choose(scenario, &generated, count),
            None => all_cuts(scenario, &generated),
        };
        let _ = writeln!(
            out,
            "{} series of {} ({}): {} cuts{}",
            series_label(series),
            scenario.name,
            series_rule(series),
            cuts.len(),
            count.map_or(String::new(), |n| format!(
                " (of {}, picked for `run --sweep {n}`)",
                generated.len() + 1
            )),
        );
        let deployments = cuts
            .iter()
            .map(|cut| plan(scenario, cut))
            .collect::<Result<Vec<_>, _>>()?;
        out.push_str(&outline_table(scenario, &deployments));
        out.push('\n');
    }
    out.push_str(OUTLINE_NOTE);
    Ok(out)
}

/// What the columns of [`outline_table`] mean.
pub const OUTLINE_NOTE: &str = "hops/req and critical: means over the entrypoints by weight, the driver's hop included; blast: operations restarted per changed operation.\n";

/// One line per cut: its service and state units, hops per request, critical path, blast
/// radius and the units holding more than one operation.
pub fn outline_table(scenario: &Scenario, deployments: &[Deployment]) -> String {
    let mut out = format!(
        "  {:<16} {:>7} {:>6} {:>9} {:>9} {:>7}  merged units\n",
        "cut", "service", "state", "hops/req", "critical", "blast"
    );
    for deployment in deployments {
        let o = outline(scenario, deployment);
        let _ = writeln!(
            out,
            "  {:<16} {:>7} {:>6} {:>9.2} {:>9.2} {:>7.1}  {}",
            o.cut.name(),
            o.service_units,
            o.state_units,
            o.hops_per_request,
            o.critical_path,
            o.blast_radius,
            merged_groups(deployment),
        );
    }
    out
}

fn series_label(series: Series) -> &'static str {
    match series {
        Series::Hops => "hops",
        Series::Services => "services",
    }
}

fn series_rule(series: Series) -> &'static str {
    match series {
        Series::Hops => "each merge removes the most traffic-weighted hops per request",
        Series::Services => "merges inside services first (nano → micro), then between them",
    }
}

/// Nano, then the series from its finest cut to monolith; a list too long to read is cut
/// down to an even spread of [`MAX_LISTED`].
fn all_cuts(scenario: &Scenario, generated: &SweepSeries) -> Vec<Architecture> {
    if generated.len() + 1 > MAX_LISTED {
        return sweep::choose(scenario, generated, MAX_LISTED);
    }
    let mut cuts = vec![Architecture::Nano];
    cuts.extend(
        (2..=generated.len())
            .rev()
            .map(|units| Architecture::Sweep {
                series: generated.series,
                units,
            }),
    );
    cuts.push(Architecture::Monolith);
    cuts
}

/// `[a b] [c d e] + 4 single`: the units hosting more than one operation.
fn merged_groups(deployment: &Deployment) -> String {
    let service: Vec<&super::PlannedUnit> =
        deployment.units.iter().filter(|u| !u.is_state()).collect();
    let merged: Vec<String> = service
        .iter()
        .filter(|u| u.hosts.len() > 1)
        .map(|u| format!("[{}]", u.hosts.join(" ")))
        .collect();
    let single = service.len() - merged.len();
    match (merged.is_empty(), single) {
        (true, _) => "(one operation per unit)".into(),
        (false, 0) => merged.join(" "),
        (false, n) => format!("{} + {n} single", merged.join(" ")),
    }
}
