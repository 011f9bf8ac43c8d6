//! `grainbench run`: loads every scenario and checks the options against each before
//! anything is deployed, runs them one after another, prints each summary, and gates on
//! `--fail-if` thresholds at the end.

use crate::cli::RunArgs;
use crate::terminal::{note, note_part, say};
use crate::{bad_input, gate, load, read_results, terminal, unit_binary, Failure};
use anyhow::Context as _;
use grainbench::run::{self, RunError, RunOptions};
use grainbench::scenario::{self, ScenarioSource};
use std::path::Path;
use tokio_util::sync::CancellationToken;

/// Where `run --all` looks for scenarios.
const SCENARIO_DIR: &str = "scenarios";

/// Loads every scenario and checks the options against each before anything is deployed.
fn prepare(args: &RunArgs) -> Result<Vec<(ScenarioSource, RunOptions)>, Failure> {
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
    run::preflight(&runs).map_err(|e| bad_input(e.into()))?;
    Ok(prepared)
}

/// Runs every scenario; prints the brief summary (the full tables too when `verbose`).
pub(crate) async fn run_scenarios(args: RunArgs, verbose: bool) -> Result<(), Failure> {
    let prepared = prepare(&args)?;
    let baseline = args.baseline.as_deref().map(read_results).transpose()?;
    let cancel = CancellationToken::new();
    terminal::cancel_on_signals(cancel.clone());
    let mut failure = None;
    for (source, options) in &prepared {
        note!(
            "running {} ({}) → {}",
            source.scenario.name,
            source.path.display(),
            options.out_dir.display()
        );
        // Every cut's static figures before any load: what the measurements will be read against.
        if let Some(resolved) = verbose
            .then(|| options.resolve(&source.scenario).ok())
            .flatten()
        {
            note_part!(
                "{}",
                grainbench::plan::outline_table(&source.scenario, &resolved.cut_plans())
            );
        }
        let outcome = run::run(source, options, &cancel).await;
        terminal::print_summary(&outcome.results, baseline.as_ref(), verbose);
        if let (Some(old), Some(page)) = (&baseline, &outcome.report_path) {
            if let Err(error) = grainbench::report::write_html(&outcome.results, Some(old), page) {
                note!("error: {}", terminal::render_error(&error.into()));
            }
        }
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
        for error in write_errors.into_iter().flatten() {
            note!("error: {}", terminal::render_error(&error));
            failure = Some(Failure::Run(None));
        }
        match outcome.error {
            None => {}
            Some(RunError::Interrupted) => return Err(Failure::Interrupted),
            Some(RunError::Options(error)) => return Err(bad_input(error.into())),
            Some(error) => {
                let error = anyhow::Error::from(error);
                note!("error: {}", terminal::render_error(&error));
                failure = Some(Failure::Run(None));
            }
        }
    }
    if failure.is_none() {
        for (source, options) in &prepared {
            let path = options.out_dir.join("results.json");
            if let Ok(results) = grainbench::results::RunResults::read(&path) {
                if let Err(broken) = gate(&results, baseline.as_ref(), &args.fail_if) {
                    note!("{}: thresholds broken", source.scenario.name);
                    failure = Some(broken);
                }
            }
        }
    }
    failure.map_or(Ok(()), Err)
}
