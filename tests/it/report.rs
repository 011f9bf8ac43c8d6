//! The HTML report: its model (every number the page shows) built from a fixed
//! results.json matches a golden file; untrusted names are escaped; results missing
//! optional sections still render; a malformed results.json is a clear error.
//! Set UPDATE_GOLDEN=1 to rewrite the golden file after an intended change.

use crate::common::*;
use grainbench::analysis::Analysis;
use grainbench::report::{model, render_html};
use grainbench::results::RunResults;
use std::path::PathBuf;

fn fixture_results() -> RunResults {
    RunResults::read(&fixture("results-tiny.json")).expect("fixture parses")
}

#[test]
fn report_model_matches_the_golden_file() {
    let model = model::build(&fixture_results(), None);
    let actual = serde_json::to_string_pretty(&model).unwrap() + "\n";
    assert_golden("report-model.json", &actual);
}

/// A traced run (tiny, nano and monolith, 20 % traced, 2 rounds): its model, with the
/// traces' checks and where the time goes, is pinned too, and the page draws a waterfall
/// per cut, entrypoint and pick.
#[test]
fn a_traced_runs_model_matches_its_golden_file_and_the_page_draws_waterfalls() {
    let results = RunResults::read(&fixture("results-traces.json")).expect("fixture parses");
    let model = model::build(&results, None);
    let traces = model
        .traces
        .as_ref()
        .expect("a traced run has a traces section");
    assert!(traces.all_add_up, "{:?}", traces.checks);
    let actual = serde_json::to_string_pretty(&model).unwrap() + "\n";
    assert_golden("report-model-traces.json", &actual);
    let page = render_html(&results, None).unwrap();
    let waterfalls: usize = results
        .architectures
        .iter()
        .filter_map(|a| a.traces.as_ref())
        .map(|t| {
            t.waterfalls
                .iter()
                .filter(|w| w.rate_rps == f64::from(traces.rate))
                .count()
        })
        .sum();
    assert!(waterfalls >= 4, "a median and a p99 per cut");
    assert_eq!(
        page.matches("µs from the intended send time").count(),
        waterfalls
    );
    assert!(page.contains("Where the time goes: traces"));
    // One group per entrypoint, every cut's waterfalls in it.
    for entry in ["buy", "browse"] {
        let groups = page.matches(&format!("Waterfalls of {entry}:")).count();
        assert_eq!(groups, 1, "{entry}");
    }
}

#[test]
fn the_verdict_compares_architectures_at_a_valid_rate() {
    let results = fixture_results();
    let model = model::build(&results, None);
    let rate = model
        .verdict
        .rate
        .expect("the fixture has a rate valid for all");
    for arch in &results.architectures {
        assert!(model::valid_step_at(arch, rate).is_some());
    }
    // One sentence per architecture, then what one hop costs.
    let ledger = usize::from(model.ledger.is_some());
    assert_eq!(
        model.verdict.sentences.len(),
        results.architectures.len() + ledger
    );
    let (comparisons, hop) = model.verdict.sentences[1..].split_at(results.architectures.len() - 1);
    assert!(comparisons
        .iter()
        .all(|s| s.contains("× ") && s.contains("the hops")));
    assert!(hop.iter().all(|s| s.contains("a hop costs")), "{hop:?}");
}

#[test]
fn every_chart_is_drawn_and_the_page_is_self_contained() {
    let html = render_html(&fixture_results(), None).unwrap();
    assert!(
        html.matches("<svg").count() >= 8,
        "spectrum, rate curve, hops, timelines, deploy, redeploy"
    );
    for forbidden in ["<script", "src=\"http", "href=\"http", "@import", "url("] {
        assert!(
            !html.contains(forbidden),
            "the page must not fetch anything: found {forbidden}"
        );
    }
    assert!(html.contains("Network: 250us: 250 µs one way"));
    assert!(html.contains("+485 µs measured against 500 µs modelled"));
    assert!(html.contains("<th>delay error p99 µs, driver</th>"));
}

#[test]
fn untrusted_scenario_text_is_escaped() {
    let mut results = fixture_results();
    let evil = r#"<script>alert("x")</script> & 'quoted'"#;
    results.scenario.name = evil.into();
    results.scenario.description = evil.into();
    results.scenario.text = evil.into();
    results.errors.push(evil.into());
    results.complete = false;
    let html = render_html(&results, None).unwrap();
    assert!(!html.contains("<script>"), "raw script tag in the page");
    assert!(html.contains("&lt;script&gt;alert("));
    assert!(html.contains("&amp; "));
    assert!(
        !html.contains("'quoted'")
            || html.contains("&#x27;quoted&#x27;")
            || html.contains("&#39;quoted&#39;")
    );
}

#[test]
fn results_missing_optional_sections_still_render() {
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("results-tiny.json")).unwrap())
            .unwrap();
    json.as_object_mut().unwrap().remove("equivalence");
    json.as_object_mut().unwrap().remove("network");
    for arch in json["architectures"].as_array_mut().unwrap() {
        let arch = arch.as_object_mut().unwrap();
        arch.remove("deploy");
        arch.remove("knee");
        arch.remove("cold_start_ms");
        for step in arch.get_mut("steps").unwrap().as_array_mut().unwrap() {
            step.as_object_mut().unwrap().remove("units");
            step.as_object_mut()
                .unwrap()
                .remove("units_cpu_us_per_request");
            step.as_object_mut().unwrap().remove("injected_delay_error");
        }
    }
    let results: RunResults =
        serde_json::from_value(json).expect("optional sections may be absent");
    let html = render_html(&results, None).unwrap();
    assert!(html.contains("Deploy cost was not measured in this run."));
    assert!(html.contains("Redeploy impact: not measured in this run."));
    assert!(html.contains("The equivalence check did not run."));
    assert!(
        html.contains("Network: loopback: raw loopback (127.0.0.1), no added delay"),
        "results from before the network model read as raw loopback"
    );
}

#[test]
fn a_malformed_results_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("results.json");
    std::fs::write(&path, "{ \"schema_version\": 1, \"meta\": 42 }").unwrap();
    let error = RunResults::read(&path).unwrap_err().to_string();
    assert!(
        error.contains("results.json") && error.contains("not a grainbench results file"),
        "{error}"
    );
    let output = std::process::Command::new(grainbench_binary())
        .arg("report")
        .arg(&path)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("not a grainbench results file") && !stderr.contains("panicked"),
        "{stderr}"
    );
}

#[test]
fn a_baseline_adds_changes() {
    let results = fixture_results();
    let model = model::build(&results, Some(&results));
    let baseline = model.baseline.expect("baseline section");
    assert!(!baseline.changes.is_empty());
    assert!(
        baseline.changes.iter().all(|c| !c.significant),
        "a file compared with itself changed nothing"
    );
    let p99 = baseline
        .changes
        .iter()
        .find(|c| c.figure.starts_with("p99 at"))
        .unwrap();
    assert_eq!(
        p99.change, "+0.0 % (one round each: no interval)",
        "a version-1 file is one round: no interval, no claim"
    );
}

/// A real three-round run of tests/fixtures/tiny.toml (schema version 2).
fn rounds_results() -> RunResults {
    RunResults::read(&fixture("results-rounds.json")).expect("fixture parses")
}

fn assert_golden(name: &str, actual: &str) {
    let golden = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&golden, actual).unwrap();
    }
    let expected = std::fs::read_to_string(&golden).expect("UPDATE_GOLDEN=1 writes it");
    assert!(
        actual == expected,
        "{} changed (UPDATE_GOLDEN=1 if intended)",
        golden.display()
    );
}

#[test]
fn a_run_of_several_rounds_states_every_figure_with_its_interval() {
    let results = rounds_results();
    assert_eq!(results.meta.rounds, 3);
    let model = model::build(&results, None);
    assert_golden(
        "report-model-rounds.json",
        &(serde_json::to_string_pretty(&model).unwrap() + "\n"),
    );
    assert_golden(
        "summary-rounds.txt",
        &grainbench::report::render_summary(&results, None),
    );
    // Every comparison in the verdict carries an interval or says there is no difference.
    for sentence in model.verdict.sentences.iter().skip(1) {
        assert!(
            sentence.contains("no clear difference") || sentence.contains("× ["),
            "{sentence}"
        );
    }
    for row in model.entry_tables.iter().flat_map(|t| &t.rows) {
        assert!(
            row.p50_us.contains('[') && row.p99_us.contains('['),
            "{row:?}"
        );
        assert_eq!(row.rounds, "3 of 3");
    }
    let html = render_html(&results, None).unwrap();
    assert!(html.contains("95 % CI"));
}

#[test]
fn a_run_compared_with_itself_shows_no_change_beyond_noise() {
    let results = rounds_results();
    let model = model::build(&results, Some(&results));
    let changes = model.baseline.expect("baseline section").changes;
    assert!(changes.len() > 10);
    for change in &changes {
        assert!(!change.significant, "{change:?}");
        let single = change.figure == "idle RSS"; // one measurement per run
        assert!(
            change.change.starts_with("no change beyond noise") || single,
            "{}: {}",
            change.figure,
            change.change
        );
    }
}

#[test]
fn the_terminal_summary_is_laid_out_from_the_same_model() {
    let results = fixture_results();
    let model = model::build(&results, None);
    let text = grainbench::report::render_summary(&results, None);
    let golden = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/summary.txt");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&golden, &text).unwrap();
    }
    let expected = std::fs::read_to_string(&golden).expect("UPDATE_GOLDEN=1 writes it");
    assert!(
        text == expected,
        "summary changed; diff {} (UPDATE_GOLDEN=1 if intended)",
        golden.display()
    );
    // The same figures as the page, not recomputed: every verdict sentence and the
    // equivalence sentence appear as the model has them.
    for sentence in &model.verdict.sentences {
        assert!(text.contains(sentence.as_str()), "{sentence}");
    }
    assert!(text.contains(&model.equivalence));
    for row in &model.deploy_rows {
        assert!(text.contains(&row.cold_start_ms), "{}", row.cold_start_ms);
    }
}

#[test]
fn a_p99_budget_names_the_finest_cut_whose_whole_interval_meets_it() {
    let mut results = rounds_results();
    let front = model::build(&results, None)
        .front
        .expect("three cuts: a front");
    assert!(
        front.recommendation.is_none(),
        "no budget, no recommendation"
    );
    // Rows are finest first; a budget just above the second-finest cut's upper bound
    // recommends it unless the finest one meets it too.
    let highs: Vec<f64> = front
        .rows
        .iter()
        .map(|r| r.p99.high.expect("three rounds: an interval"))
        .collect();
    let budget = highs[1] + 1.0;
    results.meta.p99_budget_us = Some(budget);
    let front = model::build(&results, None).front.unwrap();
    let expected = if highs[0] <= budget {
        &front.rows[0].arch
    } else {
        &front.rows[1].arch
    };
    assert_eq!(front.recommended.as_ref(), Some(expected));
    let sentence = front.recommendation.clone().unwrap();
    assert!(
        sentence.contains(&format!("finest cut that meets it is {expected}")),
        "{sentence}"
    );
    assert!(front.rows.iter().all(|r| !r.budget.is_empty()));
    // The terminal says the same sentence.
    assert!(grainbench::report::render_summary(&results, None).contains(&sentence));
    // A budget below every p99 recommends nothing, and says so.
    results.meta.p99_budget_us = Some(1.0);
    let front = model::build(&results, None).front.unwrap();
    assert_eq!(front.recommended, None);
    assert!(front
        .recommendation
        .unwrap()
        .starts_with("No cut surely meets"));
}

#[test]
fn any_cut_name_reads_renders_and_gets_a_colour_of_its_own() {
    let mut results = rounds_results();
    let sweep: grainbench::plan::Architecture = "sweep-3".parse().unwrap();
    results.architectures[1].architecture = sweep.clone();
    for order in &mut results.meta.round_orders {
        for cut in order.iter_mut() {
            if *cut == grainbench::plan::Architecture::Micro {
                *cut = sweep.clone();
            }
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let path = results.write(dir.path()).unwrap();
    let read = RunResults::read(&path).unwrap();
    assert_eq!(read.architectures[1].architecture, sweep);
    let model = model::build(&read, None);
    assert!(model.title.contains("sweep-3"), "{}", model.title);
    let colour = model::colour("sweep-3");
    assert!(!["#d9480f", "#1c7ed6", "#2b8a3e"].contains(&colour));
    assert_eq!(colour, model::colour("sweep-3"), "stable");
    let html = render_html(&read, None).unwrap();
    assert!(html.contains("sweep-3"));
}

#[test]
fn a_cpu_ratio_within_noise_is_said_plainly_in_the_verdict() {
    let mut results = rounds_results();
    // Every architecture burns the same CPU per request in each round: a ratio of 1.
    for arch in &mut results.architectures {
        for step in &mut arch.steps {
            step.units_cpu_us_per_request = Some(100.0 + 10.0 * step.round as f64);
        }
    }
    let model = model::build(&results, None);
    let sentences = model.verdict.sentences.join("\n");
    assert!(
        !sentences.contains("burns no clear difference"),
        "{sentences}"
    );
    assert!(
        sentences.contains("shows no clear difference"),
        "{sentences}"
    );
}

/// A real run of tests/fixtures/tiny.toml with `--fault kill:price@1s+500ms` (schema 5):
/// nano, micro and monolith, one round.
fn fault_results() -> RunResults {
    RunResults::read(&fixture("results-faults.json")).expect("fixture parses")
}

#[test]
fn the_faults_section_puts_every_cut_side_by_side_under_the_same_fault() {
    let results = fault_results();
    let model = model::build(&results, None);
    let faults = model
        .faults
        .as_ref()
        .expect("a run with faults has the section");
    assert_golden(
        "report-model-faults.json",
        &(serde_json::to_string_pretty(faults).unwrap() + "\n"),
    );
    let group = &faults.groups[0];
    assert_eq!(group.fault, "kill:price@1s+500ms");
    let row = |arch: &str| group.rows.iter().find(|r| r.arch == arch).unwrap();
    // Only nano keeps an entrypoint whose calls never reach `price`'s unit.
    assert!(
        row("nano").available.starts_with("1 of 2: browse"),
        "{:?}",
        row("nano")
    );
    assert_eq!(row("monolith").available, "0 of 2");
    assert!(
        group.verdict.contains("Most available: nano."),
        "{}",
        group.verdict
    );
    // The page carries the section and a chart per figure.
    let page = render_html(&results, None).unwrap();
    assert!(page.contains("Success ratio per second under kill:price@1s+500ms"));
    assert!(page.contains("p99 per second under kill:price@1s+500ms"));
}

/// "Most available" is held to the evidence: a cut whose success rate under the fault is
/// not clearly below the best's (two-proportion test, Benjamini–Hochberg) is named.
#[test]
fn the_most_available_cut_is_only_claimed_where_the_counts_show_it() {
    let mut results = fault_results();
    let verdict = |results: &RunResults| {
        model::build(results, None).faults.unwrap().groups[0]
            .verdict
            .clone()
    };
    assert!(verdict(&results).contains("Most available: nano."));
    // micro now answers 9 of 26 during the kill, against nano's 10 of 26.
    let micro = results
        .architectures
        .iter_mut()
        .find(|a| a.label() == "micro")
        .unwrap();
    micro.faults[0].during.ok = 9;
    let text = verdict(&results);
    assert!(
        text.contains("Most available: nano, though not clearly above micro ("),
        "{text}"
    );
    // And with monolith as close too, no cut is clearly more available.
    let monolith = results
        .architectures
        .iter_mut()
        .find(|a| a.label() == "monolith")
        .unwrap();
    monolith.faults[0].during.ok = 9;
    let text = verdict(&results);
    assert!(
        text.contains("No cut clearly more available than the others (nano highest;"),
        "{text}"
    );
}

/// The brief summary of `results` at each (width, most lines), checked: no more lines, no
/// line over the width, the verdict's last sentence ending the output.
fn brief_fits(results: &RunResults, fits: [(usize, usize); 2]) -> String {
    let model = model::build(results, None);
    for (width, max_lines) in fits {
        let text = grainbench::report::render_brief(results, None, width);
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines.len() <= max_lines,
            "{} lines at {width}:\n{text}",
            lines.len()
        );
        for line in &lines {
            assert!(line.chars().count() <= width, "over {width}: {line:?}");
        }
        // The last lines are the verdict: its last sentence ends the output.
        let last = model.verdict.sentences.last().unwrap();
        let tail = lines[lines.len().saturating_sub(5)..].join(" ");
        let last_words = |text: &str| {
            let words: Vec<&str> = text.split_whitespace().rev().take(4).collect();
            words.join(" ")
        };
        assert_eq!(
            last_words(last),
            last_words(&tail),
            "verdict last at {width}:\n{text}"
        );
    }
    grainbench::report::render_brief(results, None, 100)
}

/// The default terminal output of a three-round run: short, within the width, the verdict
/// last (a quick run printed ~90 lines up to 180 columns, ending in a 27-row table).
#[test]
fn the_brief_summary_fits_a_screen_and_ends_with_the_verdict() {
    let text = brief_fits(&rounds_results(), [(100, 40), (80, 40)]);
    assert_golden("brief-rounds.txt", &text);
}

/// Three cuts over three transports: the brief compares the cuts once, over the base
/// transport, and sets each other transport against the same cut in one compact table
/// (it printed a sentence per variant and a verdict against every deployment, 78 lines).
#[test]
fn with_many_mechanisms_the_brief_compares_the_cuts_once() {
    use grainbench::plan::Transport;
    let mut results = rounds_results();
    let plain = results.architectures.clone();
    for transport in [Transport::Grpc, Transport::Binary] {
        results
            .architectures
            .extend(plain.iter().cloned().map(|mut a| {
                a.transport = transport;
                a
            }));
    }
    // Nine deployments take a few more lines than three; wrapped at 80, a few more again.
    let text = brief_fits(&results, [(100, 45), (80, 50)]);
    let model = model::build(&results, None);
    assert_eq!(
        model.verdict.mechanism.as_deref(),
        Some("HTTP/1.1 + JSON"),
        "{text}"
    );
    assert_eq!(model.verdict.compared.len(), plain.len());
    // Each variant once, in the transport table; none in the verdict.
    for variant in ["nano+grpc", "micro+binary"] {
        let rows = text
            .lines()
            .filter(|l| l.trim_start().starts_with(&format!("{variant} ")))
            .count();
        assert_eq!(rows, 1, "{variant}:\n{text}");
        assert!(!text.contains(&format!("{variant}'s p99")), "{text}");
    }
    assert!(text.contains("front of all 9 deployments"), "{text}");
}

/// One estimate per quantity: the p99 and the units' CPU per request of a cut at the
/// comparison rate are the same text in the terminal, the page model and the chart data,
/// and the cold start the same in the brief summary and the page.
#[test]
fn every_output_shows_the_same_estimate_of_a_quantity() {
    let results = rounds_results();
    let model = model::build(&results, None);
    let brief = grainbench::report::render_brief(&results, None, 100);
    let front = model.front.as_ref().expect("a front");
    for row in &front.rows {
        let line = brief
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{} ", row.arch)))
            .unwrap_or_else(|| panic!("{} in\n{brief}", row.arch));
        assert!(line.contains(&row.p99_us), "{line} / {}", row.p99_us);
        assert!(
            line.contains(&row.cpu_us_per_request),
            "{line} / {}",
            row.cpu_us_per_request
        );
    }
    for d in &model.deploy_rows {
        assert!(brief.contains(&d.cold_start_ms), "{}", d.cold_start_ms);
        // The deploy table's CPU is the front's estimate (it showed one round's figure).
        let row = front.rows.iter().find(|r| r.arch == d.arch).unwrap();
        assert_eq!(d.cpu_us_per_request, row.cpu_us_per_request, "{}", d.arch);
        // The units table's cold start is the deploy table's median.
        let legend = model
            .architectures
            .iter()
            .find(|a| a.name == d.arch)
            .unwrap();
        assert!(
            d.cold_start_ms.starts_with(&legend.cold_start_ms),
            "{}",
            d.arch
        );
    }
}

/// Against a baseline, every figure compared is one test: a planted 4× p50 on one cut is a
/// discovery; a run compared with itself discovers nothing; and the comparison says how
/// many figures it compared and how many changed at a 5 % false discovery rate.
#[test]
fn baseline_changes_are_discoveries_at_a_five_percent_false_discovery_rate() {
    let baseline = rounds_results();
    let comparison_of = |results, baseline| {
        model::of(&Analysis::of(results, Some(baseline)))
            .baseline
            .unwrap()
    };
    let same = comparison_of(&baseline, &baseline);
    assert_eq!(same.discovered, 0);
    assert!(same.compared > 10, "{}", same.compared);
    assert!(same
        .summary
        .starts_with(&format!("{} figures compared; 0 changed", same.compared)));

    let mut planted = baseline.clone();
    let nano = planted
        .architectures
        .iter_mut()
        .find(|a| a.label() == "nano")
        .unwrap();
    let rate = nano.steps[0].target_rps;
    for step in nano.steps.iter_mut().filter(|s| s.target_rps == rate) {
        step.latency_us.p50 *= 4;
    }
    let comparison = comparison_of(&planted, &baseline);
    let found: Vec<_> = comparison
        .changes
        .iter()
        .filter(|c| c.significant)
        .map(|c| format!("{} {}", c.arch, c.figure))
        .collect();
    assert_eq!(
        found,
        [format!("nano p50 at {rate} req/s")],
        "{:#?}",
        comparison.changes
    );
    assert_eq!(comparison.discovered, 1);
    // The gate counts the same discovery, and nothing else.
    let gate = grainbench::report::gate::violations(
        &Analysis::of(&planted, Some(&baseline)),
        &["regression > 10%".parse().unwrap()],
    );
    assert_eq!(gate.len(), 1, "{gate:?}");
}

/// With more than three cuts, each p99 comparison with the best is one of many: a cut
/// whose ratio's interval just excludes 1 (p ≈ 0.035) is not a discovery at a 5 % false
/// discovery rate among four comparisons, and the verdict says so; nano's 4.7× still is.
#[test]
fn with_more_than_three_cuts_the_verdict_corrects_for_its_comparisons() {
    let mut results = rounds_results();
    let rate = model::verdict_rate(&results).unwrap();
    let monolith = results
        .architectures
        .iter()
        .find(|a| a.label() == "monolith")
        .unwrap()
        .clone();
    let micro = results
        .architectures
        .iter()
        .find(|a| a.label() == "micro")
        .unwrap()
        .clone();
    let mut close = monolith.clone();
    close.architecture = grainbench::plan::Architecture::Named("close".into());
    let log_ratios = [0.15, 0.3, 0.225];
    for step in close.steps.iter_mut().filter(|s| s.is_valid_open_at(rate)) {
        let base = step.latency_us.p99 as f64;
        step.latency_us.p99 = (base * f64::exp(log_ratios[step.round])).round() as u64;
    }
    let mut twin = micro;
    twin.architecture = grainbench::plan::Architecture::Named("twin".into());
    results.architectures.push(close);
    results.architectures.push(twin);
    let verdict = model::build(&results, None).verdict;
    let said = |name: &str| {
        verdict
            .sentences
            .iter()
            .find(|s| s.contains(&format!(" {name} ")) || s.contains(&format!(" {name}'s")))
            .cloned()
            .unwrap_or_default()
    };
    assert!(
        said("close").contains("no clear difference in p99 once the 4 comparisons"),
        "{:#?}",
        verdict.sentences
    );
    assert!(said("nano").contains("4.7×"), "{:#?}", verdict.sentences);
}

/// Rounds that agree to /proc's tick (a light monolith over a short step: 15 ticks each)
/// gave "187 [187–187]", an interval claiming a certainty the ticks cannot give; the
/// figure now says how much the ticks round it, in every table that shows it.
#[test]
fn cpu_rounds_that_agree_to_the_tick_show_the_ticks_rounding_not_a_zero_interval() {
    let mut results = rounds_results();
    let rate = model::verdict_rate(&results).unwrap();
    let monolith = results
        .architectures
        .iter_mut()
        .find(|a| a.label() == "monolith")
        .unwrap();
    for step in monolith
        .steps
        .iter_mut()
        .filter(|s| s.is_valid_open_at(rate))
    {
        step.units_cpu_us_per_request = Some(187.0);
        let units = step.units.get_or_insert_with(Default::default);
        units.cpu_ms = [("monolith".to_string(), 150.0)].into_iter().collect();
        units.cpu_ms_total = 150.0;
    }
    let model = model::build(&results, None);
    let front = model.front.as_ref().unwrap();
    let row = front.rows.iter().find(|r| r.arch == "monolith").unwrap();
    assert_eq!(row.cpu_us_per_request, "187 (±3 %, 10 ms ticks)");
    let deploy = model
        .deploy_rows
        .iter()
        .find(|d| d.arch == "monolith")
        .unwrap();
    assert_eq!(deploy.cpu_us_per_request, row.cpu_us_per_request);
    // A cut whose rounds differ beyond the ticks keeps its interval.
    let nano = front.rows.iter().find(|r| r.arch == "nano").unwrap();
    assert!(
        nano.cpu_us_per_request.contains('['),
        "{}",
        nano.cpu_us_per_request
    );
}

/// A round whose units used no whole /proc tick has no CPU figure; the estimate is the
/// other rounds', and the text says how many rounds read nothing instead of an infinite
/// tick rounding ("±inf %").
#[test]
fn rounds_under_one_cpu_tick_are_counted_not_an_infinite_rounding() {
    let mut results = rounds_results();
    let rate = model::verdict_rate(&results).unwrap();
    let arch = &mut results.architectures[0];
    let valid: Vec<usize> = (0..arch.steps.len())
        .filter(|&i| arch.steps[i].is_valid_open_at(rate) && arch.steps[i].units.is_some())
        .collect();
    assert!(valid.len() >= 2, "the fixture has rounds with units' CPU");
    let step = &mut arch.steps[valid[0]];
    let units = step.units.as_mut().unwrap();
    units.cpu_ms_total = 0.0;
    units.cpu_ms.values_mut().for_each(|ms| *ms = 0.0);
    step.units_cpu_us_per_request = Some(0.0);
    let text = model::units_cpu_text(&results.architectures[0], rate);
    assert!(
        text.ends_with(&format!(
            "(1 of {} rounds under one 10 ms tick)",
            valid.len()
        )),
        "{text}"
    );
    assert!(!text.contains("inf"), "{text}");
}
