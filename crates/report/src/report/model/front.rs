//! The Pareto front of the cuts in words: at the comparison rate, each measured cut's p99,
//! units' CPU per request, units, redeploy blast radius and idle memory; whether it is on
//! the front; and, with a p99 budget, the recommendation. The figures and the rule are
//! [`crate::analysis::front`]'s.

use crate::analysis::front::{FrontAnalysis, FrontCut, FrontRule, Standing};
use crate::report::format::{self, mib};
use crate::results::{Estimate, RunResults};
use serde::Serialize;

/// The front at one rate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Front {
    pub rate: u32,
    /// Every cut with a p99 at the rate, finest first.
    pub rows: Vec<FrontRow>,
    /// The budget, in words (`2.0 ms`), if the run has one.
    pub budget: Option<String>,
    /// The recommendation, or why there is none; absent without a budget.
    pub recommendation: Option<String>,
    /// The cut recommended.
    pub recommended: Option<String>,
    /// How "on the front" was decided, in a sentence.
    pub rule: String,
}

/// One cut on the front's table and chart.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FrontRow {
    pub arch: String,
    pub colour: String,
    pub service_units: usize,
    pub state_units: usize,
    /// `1234 [1180–1290]`.
    pub p99_us: String,
    #[serde(skip)]
    pub p99: Estimate,
    /// The p99 per round, for the comparisons.
    #[serde(skip)]
    pub p99_rounds: Vec<(usize, f64)>,
    /// The units' CPU per request, µs, with its interval ("not measured" without).
    pub cpu_us_per_request: String,
    #[serde(skip)]
    pub cpu: Option<Estimate>,
    #[serde(skip)]
    pub cpu_rounds: Vec<(usize, f64)>,
    /// Operations restarted per changed operation, on average.
    pub blast_radius: String,
    /// Idle RSS over every unit, MiB ("–" when not measured).
    pub idle_rss_mib: String,
    /// The last rate a rate sweep held ("–" without a sweep).
    pub knee_rps: String,
    pub on_front: bool,
    /// Against the budget: `meets`, `within noise`, `misses` (empty without a budget).
    pub budget: String,
}

const POINTS_RULE: &str = "On the front: no other cut has a p99 and a CPU per request no higher and at least as many service units, and is better on one (geometric means over the rounds; with three cuts or fewer, no correction, so two cuts whose intervals overlap may swap places).";

/// How a finer cut did, in a sentence about the budget.
fn phrase(standing: Standing) -> &'static str {
    match standing {
        Standing::Meets => "meets it",
        Standing::WithinNoise => "is within noise of it",
        Standing::Misses => "misses it",
    }
}

fn word(standing: Standing) -> &'static str {
    match standing {
        Standing::Meets => "meets",
        Standing::WithinNoise => "within noise",
        Standing::Misses => "misses",
    }
}

/// The front of `results` in words.
pub fn front(analysis: &FrontAnalysis, results: &RunResults) -> Front {
    let rate = analysis.rate;
    let rows = analysis
        .cuts
        .iter()
        .map(|cut| row(cut, results, rate))
        .collect();
    let rule = match analysis.rule {
        FrontRule::Points => POINTS_RULE.to_string(),
        FrontRule::Discoveries { cuts, comparisons } => format!(
            "On the front: no other cut is at least as good on p99, CPU per request and service units and better on one. With {cuts} cuts, better or worse on p99 and CPU means beyond noise: Benjamini–Hochberg over the {comparisons} pairwise comparisons at a {:.0} % false discovery rate (ratios paired over the rounds), so a cut within noise of another stays on the front.",
            crate::stats::FALSE_DISCOVERY_RATE * 100.0
        ),
    };
    Front {
        rate,
        rows,
        budget: analysis.budget_us.map(budget_words),
        recommendation: analysis
            .budget_us
            .map(|budget| recommend(&analysis.cuts, analysis.recommended, budget, rate)),
        recommended: analysis
            .recommended
            .map(|at| analysis.cuts[at].label.clone()),
        rule,
    }
}

fn row(cut: &FrontCut, results: &RunResults, rate: u32) -> FrontRow {
    let a = &results.architectures[cut.index];
    FrontRow {
        colour: super::colour(&cut.label).into(),
        arch: cut.label.clone(),
        service_units: cut.service_units,
        state_units: cut.state_units,
        p99_us: format::estimate(&cut.p99, 0),
        p99: cut.p99,
        p99_rounds: cut.p99_rounds.clone(),
        cpu_us_per_request: super::units_cpu_text(a, rate),
        cpu: cut.cpu,
        cpu_rounds: cut.cpu_rounds.clone(),
        blast_radius: format!("{:.1}", cut.blast_radius),
        idle_rss_mib: a
            .deploy
            .as_ref()
            .map_or("–".into(), |d| mib(d.idle_rss_bytes_total)),
        knee_rps: a
            .knee
            .as_ref()
            .and_then(|k| k.last_good_rps)
            .map_or("–".into(), |r| r.to_string()),
        on_front: cut.on_front,
        budget: cut.standing.map_or(String::new(), |s| word(s).into()),
    }
}

/// `1 service unit`, `9 service units`.
fn units(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

fn budget_words(us: f64) -> String {
    if us >= 1000.0 {
        format!("{} ms", trim(us / 1000.0))
    } else {
        format!("{} µs", trim(us))
    }
}

fn trim(v: f64) -> String {
    let text = format!("{v:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// The recommendation in words: the finest cut whose whole p99 interval is within the
/// budget (`recommended`), and what the finer cuts did; `cuts` are finest first.
fn recommend(cuts: &[FrontCut], recommended: Option<usize>, budget_us: f64, rate: u32) -> String {
    let budget = budget_words(budget_us);
    let Some(at) = recommended else {
        let lowest = cuts
            .iter()
            .min_by(|a, b| a.p99.point.total_cmp(&b.p99.point));
        let lowest = lowest.map_or(String::new(), |c| {
            format!(
                " The lowest p99 is {}'s, {}.",
                c.label,
                format::estimate_in(&c.p99, 0, "µs")
            )
        });
        return format!("No cut surely meets a p99 budget of {budget} at {rate} req/s (its whole interval within it).{lowest}");
    };
    let chosen = &cuts[at];
    let finer: Vec<String> = cuts[..at]
        .iter()
        .filter(|c| c.service_units > chosen.service_units)
        .map(|c| {
            format!(
                "{} ({}) {}: {}",
                c.label,
                units(c.service_units, "service unit"),
                c.standing.map(phrase).unwrap_or_default(),
                format::estimate_in(&c.p99, 0, "µs")
            )
        })
        .collect();
    let one_round = if chosen.p99.interval().is_none() {
        " One round: no interval, so this is not certain; run with --repeat 3 or more."
    } else {
        ""
    };
    let mut sentence = format!(
        "With a p99 budget of {budget} at {rate} req/s, the finest cut that meets it is {} ({} + {} state, blast radius {:.1}): p99 {}.{one_round}",
        chosen.label,
        units(chosen.service_units, "service unit"),
        chosen.state_units,
        chosen.blast_radius,
        format::estimate_in(&chosen.p99, 0, "µs")
    );
    if !finer.is_empty() {
        sentence.push_str(&format!(" Finer: {}.", format::join_clauses(&finer)));
    }
    sentence
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::front::{stand, test_cut};

    fn cut(label: &str, units: usize, p99: (f64, f64, f64)) -> FrontCut {
        test_cut(label, units, &[p99.0], &[50.0], Some((p99.1, p99.2)))
    }

    #[test]
    fn the_recommendation_is_the_finest_cut_whose_whole_interval_meets_the_budget() {
        let mut cuts = vec![
            cut("nano", 17, (2500.0, 2300.0, 2700.0)),
            cut("sweep-9", 9, (1900.0, 1700.0, 2100.0)),
            cut("micro", 9, (1500.0, 1400.0, 1600.0)),
            cut("monolith", 1, (400.0, 350.0, 450.0)),
        ];
        let at = stand(&mut cuts, 2000.0);
        assert_eq!(at.map(|i| cuts[i].label.as_str()), Some("micro"));
        let sentence = recommend(&cuts, at, 2000.0, 200);
        assert!(
            sentence.contains("nano (17 service units) misses it: 2500"),
            "{sentence}"
        );
        assert!(
            !sentence.contains("sweep-9 (9 service units)"),
            "same units is not finer: {sentence}"
        );
        assert!(
            sentence.contains("is micro (9 service units + 0 state"),
            "{sentence}"
        );
        let mut single = vec![cuts[3].clone(), cuts[3].clone()];
        let at = stand(&mut single, 2000.0);
        let sentence = recommend(&single, at, 2000.0, 200);
        assert!(
            sentence.contains("monolith (1 service unit + 0 state"),
            "{sentence}"
        );
        assert_eq!(stand(&mut cuts, 100.0), None);
        let sentence = recommend(&cuts, None, 100.0, 200);
        assert!(sentence.contains("No cut surely meets"), "{sentence}");
        assert!(sentence.contains("monolith's"), "{sentence}");
    }

    #[test]
    fn budgets_are_written_in_their_unit() {
        assert_eq!(budget_words(2000.0), "2 ms");
        assert_eq!(budget_words(800.0), "800 µs");
    }
}
