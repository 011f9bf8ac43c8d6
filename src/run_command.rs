//! `grainbench run`: loads every scenario and resolves the options against each once,
//! before anything is deployed; runs them one after another with their results, page and
//! progress bars as outputs; prints each summary; and gates on `--fail-if` thresholds at
//! the end, from the results in memory.

use crate::cli::RunArgs;
use crate::commands::{gate, load, read_results, unit_binary};
use crate::terminal::{self, note, note_part, say};
use crate::{bad_input, Failure};
use anyhow::Context as _;
use grainbench::outputs::{run_resolved, RunOutcome};
use grainbench::results::RunResults;
use grainbench::run::{self, Resolved, RunError};
use grainbench::scenario::{self, ScenarioSource};
use std::path::Path;
use tokio_util::sync::CancellationToken;

/// Where `run --all` looks for scenarios.
const SCENARIO_DIR: &str = "scenarios";

/// Loads every scenario and resolves the options against each before anything is deployed.
fn prepare(args: &RunArgs) -> Result<Vec<(ScenarioSource, Resolved)>, Failure> {
    let mut paths = args.scenarios.clone();
    if args.all {
        let found = scenario::discover(Path::new(SCENARIO_DIR))
            .with_context(|| format!("cannot list {SCENARIO_DIR}/"))?;
        paths.extend(found);
    }
    let binary = unit_binary()?;
    let mut prepared = Vec::new();
    for path in &paths {
        let source = load(path)?;
        let mut options = args.options(&source.scenario.name, binary.clone(), paths.len() > 1);
        if let Some(file) = &args.endpoints {
            let endpoints = run::endpoints::Endpoints::read(file, &source.scenario)
                .map_err(|e| bad_input(e.into()))?;
            options.endpoints = Some(endpoints);
        }
        prepared.push((source, options));
    }
    let runs: Vec<_> = prepared.iter().map(|(s, o)| (s, o)).collect();
    let resolved = run::preflight(&runs).map_err(|e| bad_input(e.into()))?;
    Ok(prepared
        .into_iter()
        .map(|(source, _)| source)
        .zip(resolved)
        .collect())
}

/// Runs every scenario; prints the brief summary (the full tables too when `verbose`).
pub(crate) async fn run_scenarios(args: RunArgs, verbose: bool) -> Result<(), Failure> {
    let prepared = prepare(&args)?;
    let baseline = args.baseline.as_deref().map(read_results).transpose()?;
    let cancel = CancellationToken::new();
    terminal::cancel_on_signals(cancel.clone());
    let mut failure = None;
    let mut finished: Vec<(&str, RunResults)> = Vec::new();
    for (source, resolved) in &prepared {
        note!(
            "running {} ({}) → {}",
            source.scenario.name,
            source.path.display(),
            resolved.options.out_dir.display()
        );
        // Every cut's static figures before any load: what the measurements will be read against.
        if verbose {
            note_part!(
                "{}",
                grainbench::plan::outline_table(&source.scenario, &resolved.cut_plans())
            );
        }
        let first = match args.aa {
            true => match first_of_two(source, resolved, &cancel).await {
                Ok(first) => Some(first),
                Err(Failure::Interrupted) => return Err(Failure::Interrupted),
                Err(failed) => {
                    failure = Some(failed);
                    continue;
                }
            },
            false => None,
        };
        let against = first.as_ref().or(baseline.as_ref());
        let bars = crate::progress::Bars::default();
        let outcome = run_resolved(source, resolved, against, &bars, &cancel).await;
        drop(bars);
        terminal::print_summary(&outcome.results, against, verbose);
        if let Some(first) = &first {
            say!("{}", aa_verdict(&outcome.results, first));
        }
        match said(outcome) {
            Ok(results) => finished.push((&source.scenario.name, results)),
            Err(Failure::Interrupted) => return Err(Failure::Interrupted),
            Err(failed) => failure = Some(failed),
        }
    }
    if failure.is_none() {
        for (name, results) in &finished {
            if let Err(broken) = gate(results, baseline.as_ref(), &args.fail_if) {
                note!("{name}: thresholds broken");
                failure = Some(broken);
            }
        }
    }
    failure.map_or(Ok(()), Err)
}

/// The first run of an A/A check: the same run, its outputs under `aa-first/`.
async fn first_of_two(
    source: &ScenarioSource,
    resolved: &Resolved,
    cancel: &CancellationToken,
) -> Result<RunResults, Failure> {
    let mut first = resolved.clone();
    first.options.out_dir = resolved.options.out_dir.join("aa-first");
    note!(
        "A/A check: the first of two identical runs → {}",
        first.options.out_dir.display()
    );
    let bars = crate::progress::Bars::default();
    let outcome = run_resolved(source, &first, None, &bars, cancel).await;
    drop(bars);
    let results = said(outcome)?;
    note!("A/A check: the second run, compared with the first");
    Ok(results)
}

/// What an A/A check found: how many of the figures compared changed beyond noise.
fn aa_verdict(second: &RunResults, first: &RunResults) -> String {
    let comparison = grainbench::analysis::baseline::changes(second, first);
    format!(
        "A/A check: {} of {} figures changed beyond noise between two identical runs at a 5 % false discovery rate. Nothing changed, so each one flagged is the machine's noise or the method's error: none or very few is what a comparison on this machine can be trusted with.",
        comparison.discovered(),
        comparison.changes.len()
    )
}

/// Says where the outputs went and what went wrong; the results when nothing did.
fn said(outcome: RunOutcome) -> Result<RunResults, Failure> {
    for (label, path) in [
        ("results:", &outcome.results_path),
        ("report: ", &outcome.report_path),
    ] {
        if let Some(path) = path {
            say!("{label} {}", path.display());
        }
    }
    let write_errors = [
        outcome.report_error.map(anyhow::Error::msg),
        outcome.write_error.map(anyhow::Error::from),
    ];
    let mut failure = None;
    for error in write_errors.into_iter().flatten() {
        note!("error: {}", terminal::render_error(&error));
        failure = Some(Failure::Run(None));
    }
    match outcome.error {
        None => failure.map_or(Ok(outcome.results), Err),
        Some(RunError::Interrupted) => Err(Failure::Interrupted),
        Some(error) => {
            note!("error: {}", terminal::render_error(&error.into()));
            Err(Failure::Run(None))
        }
    }
}
