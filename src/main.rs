//! The `grainbench` command line: parses arguments (clap checks every range), sets up
//! logging and signals, calls the library, and maps failures to exit codes in one place
//! ([`Failure::exit_code`]: 2 bad input, 1 run error, 130 interrupted).

mod cli;
mod terminal;

use anyhow::Context as _;
use clap::Parser as _;
use cli::{Cli, Command, RunArgs};
use grainbench::report::render_summary;
use grainbench::run::{self, RunError, RunOptions};
use grainbench::scenario::{self, ScenarioSource};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use tokio_util::sync::CancellationToken;

/// Where `run --all` looks for scenarios.
const SCENARIO_DIR: &str = "scenarios";

/// Why a command failed.
enum Failure {
    /// A scenario file or an option is wrong (already explained on stderr when `None`).
    BadInput(Option<anyhow::Error>),
    /// The run itself failed (already explained on stderr when `None`).
    Run(Option<anyhow::Error>),
    /// Ctrl-C or SIGTERM.
    Interrupted,
    /// A `--fail-if` threshold was broken (each already said on stderr).
    Threshold,
}

impl From<anyhow::Error> for Failure {
    fn from(error: anyhow::Error) -> Self {
        Failure::Run(Some(error))
    }
}

impl Failure {
    fn exit_code(&self) -> ExitCode {
        match self {
            Failure::BadInput(_) => ExitCode::from(2),
            Failure::Run(_) => ExitCode::FAILURE,
            Failure::Interrupted => ExitCode::from(130),
            Failure::Threshold => ExitCode::from(3),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Unit { spec, .. } = &cli.command {
        terminal::init_tracing("GRAINBENCH_UNIT_LOG", 0);
        return match grainbench::unit::serve(spec) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("grainbench unit: {error}");
                ExitCode::FAILURE
            }
        };
    }
    terminal::init_tracing("GRAINBENCH_LOG", cli.verbose);
    grainbench::launch::raise_open_files_limit();
    let outcome = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
        .map_err(Failure::from)
        .and_then(|runtime| runtime.block_on(dispatch(cli.command)));
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            if let Failure::BadInput(Some(error)) | Failure::Run(Some(error)) = &failure {
                eprintln!("error: {}", terminal::render_error(error));
            }
            failure.exit_code()
        }
    }
}

async fn dispatch(command: Command) -> Result<(), Failure> {
    match command {
        Command::Run(args) => run_scenarios(args).await,
        Command::Validate { scenarios } => validate(&scenarios),
        Command::New { name, dir } => {
            let path = scenario::write_new(&dir, &name).map_err(|e| bad_input(e.into()))?;
            println!(
                "wrote {}\nnext: grainbench validate {0} && grainbench run {0} --quick",
                path.display()
            );
            Ok(())
        }
        Command::Report {
            results,
            baseline,
            out,
            fail_if,
        } => {
            let current = read_results(&results)?;
            let old = baseline.as_deref().map(read_results).transpose()?;
            let out = out.unwrap_or_else(|| results.with_file_name("index.html"));
            let path = grainbench::report::write_html(&current, old.as_ref(), &out)
                .map_err(anyhow::Error::from)?;
            println!("report: {}", path.display());
            gate(&current, old.as_ref(), &fail_if)
        }
        Command::Schema => {
            let schema = serde_json::to_string_pretty(&scenario::json_schema())
                .map_err(anyhow::Error::from)?;
            println!("{schema}");
            Ok(())
        }
        Command::Plan { scenario, arch } => {
            let source = load(&scenario)?;
            print!("{}", grainbench::plan::describe(&source.scenario, arch));
            Ok(())
        }
        Command::Up {
            scenario,
            arch,
            network,
        } => up(&scenario, arch, network.map(|n| *n)).await,
        Command::Calibrate(args) => {
            let options = args.options(unit_binary()?);
            let calibration = grainbench::calibrate::calibrate(&options)
                .await
                .map_err(anyhow::Error::from)?;
            print!("{}", grainbench::calibrate::render(&calibration));
            if let Some(path) = args.json {
                let json = serde_json::to_vec_pretty(&calibration).map_err(anyhow::Error::from)?;
                std::fs::write(&path, json)
                    .with_context(|| format!("cannot write {}", path.display()))?;
            }
            Ok(())
        }
        Command::Unit { .. } => unreachable!("handled before the runtime starts"),
    }
}

fn read_results(path: &Path) -> Result<grainbench::results::RunResults, Failure> {
    grainbench::results::RunResults::read(path).map_err(|e| bad_input(e.into()))
}

/// Checks `--fail-if` thresholds, saying each broken one.
fn gate(
    results: &grainbench::results::RunResults,
    baseline: Option<&grainbench::results::RunResults>,
    thresholds: &[grainbench::report::gate::Threshold],
) -> Result<(), Failure> {
    let broken = grainbench::report::gate::violations(results, baseline, thresholds);
    for violation in &broken {
        eprintln!("threshold broken: {violation}");
    }
    broken.is_empty().then_some(()).ok_or(Failure::Threshold)
}

fn bad_input(error: anyhow::Error) -> Failure {
    Failure::BadInput(Some(error))
}

/// Loads a scenario; its errors (every issue, located) are printed as they are.
fn load(path: &Path) -> Result<ScenarioSource, Failure> {
    scenario::load(path).map_err(|error| {
        eprintln!("{error}");
        Failure::BadInput(None)
    })
}

fn validate(paths: &[PathBuf]) -> Result<(), Failure> {
    let mut ok = true;
    for path in paths {
        match load(path) {
            Ok(source) => println!("{}: ok — {}", path.display(), source.scenario.outline()),
            Err(_) => ok = false,
        }
    }
    ok.then_some(()).ok_or(Failure::BadInput(None))
}

fn unit_binary() -> anyhow::Result<PathBuf> {
    std::env::current_exe().context("cannot find the grainbench binary to start units with")
}

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
        let options = args.options(&source.scenario.name, binary.clone(), paths.len() > 1);
        prepared.push((source, options));
    }
    let runs: Vec<_> = prepared.iter().map(|(s, o)| (s, o)).collect();
    run::preflight(&runs).map_err(|e| bad_input(e.into()))?;
    Ok(prepared)
}

async fn run_scenarios(args: RunArgs) -> Result<(), Failure> {
    let prepared = prepare(&args)?;
    let baseline = args.baseline.as_deref().map(read_results).transpose()?;
    let cancel = CancellationToken::new();
    terminal::cancel_on_signals(cancel.clone());
    let mut failure = None;
    for (source, options) in &prepared {
        eprintln!(
            "running {} ({}) → {}",
            source.scenario.name,
            source.path.display(),
            options.out_dir.display()
        );
        let outcome = run::run(source, options, &cancel).await;
        println!("{}", render_summary(&outcome.results, baseline.as_ref()));
        if let (Some(old), Some(page)) = (&baseline, &outcome.report_path) {
            if let Err(error) = grainbench::report::write_html(&outcome.results, Some(old), page) {
                eprintln!("error: {}", terminal::render_error(&error.into()));
            }
        }
        for (label, path) in [
            ("results:", &outcome.results_path),
            ("report: ", &outcome.report_path),
        ] {
            if let Some(path) = path {
                println!("{label} {}", path.display());
            }
        }
        let write_errors = [
            outcome.report_error.map(anyhow::Error::msg),
            outcome.write_error.map(anyhow::Error::from),
        ];
        for error in write_errors.into_iter().flatten() {
            eprintln!("error: {}", terminal::render_error(&error));
            failure = Some(Failure::Run(None));
        }
        match outcome.error {
            None => {}
            Some(RunError::Interrupted) => return Err(Failure::Interrupted),
            Some(RunError::Options(error)) => return Err(bad_input(error.into())),
            Some(error) => {
                let error = anyhow::Error::from(error);
                eprintln!("error: {}", terminal::render_error(&error));
                failure = Some(Failure::Run(None));
            }
        }
    }
    if failure.is_none() {
        for (source, options) in &prepared {
            let path = options.out_dir.join("results.json");
            if let Ok(results) = grainbench::results::RunResults::read(&path) {
                if let Err(broken) = gate(&results, baseline.as_ref(), &args.fail_if) {
                    eprintln!("{}: thresholds broken", source.scenario.name);
                    failure = Some(broken);
                }
            }
        }
    }
    failure.map_or(Ok(()), Err)
}

async fn up(
    path: &Path,
    arch: grainbench::plan::Architecture,
    network: Option<grain_runtime::network::NetworkModel>,
) -> Result<(), Failure> {
    let source = load(path)?;
    let live = grainbench::up::start(&source, arch, network, unit_binary()?)
        .await
        .with_context(|| format!("{arch}"))?;
    print!("{}", grainbench::up::describe(&source, &live));
    println!("Ctrl-C to stop.");
    let _ = tokio::signal::ctrl_c().await;
    live.shutdown().await;
    Ok(())
}
