//! The `grainbench` command line: parses arguments (clap checks every range), sets up
//! logging and signals, dispatches to the command's module, and maps failures to exit
//! codes in one place ([`Failure::exit_code`]: 2 bad input, 1 run error, 130 interrupted,
//! 3 a broken threshold).
//!
//! - `cli`: the arguments;
//! - `run_command`: `run` (every scenario, its outputs and the gate);
//! - `commands`: every other command, each a thin call into the library;
//! - `progress`: the run's progress bars; `terminal`: stdio, signals and errors.

mod cli;
mod commands;
mod progress;
mod run_command;
mod terminal;

use anyhow::Context as _;
use clap::Parser as _;
use cli::{Cli, Command};
use std::process::ExitCode;
use terminal::note;

/// Why a command failed.
pub(crate) enum Failure {
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

pub(crate) fn bad_input(error: anyhow::Error) -> Failure {
    Failure::BadInput(Some(error))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    terminal::init_tracing("GRAINBENCH_LOG", cli.verbose);
    grainbench::launch::raise_open_files_limit();
    let outcome = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
        .map_err(Failure::from)
        .and_then(|runtime| runtime.block_on(dispatch(cli.command, cli.verbose > 0)));
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            if let Failure::BadInput(Some(error)) | Failure::Run(Some(error)) = &failure {
                note!("error: {}", terminal::render_error(error));
            }
            failure.exit_code()
        }
    }
}

async fn dispatch(command: Command, verbose: bool) -> Result<(), Failure> {
    match command {
        Command::Run(args) => run_command::run_scenarios(*args, verbose).await,
        Command::Validate { scenarios } => commands::validate(&scenarios),
        Command::New { name, dir } => commands::new(&name, &dir),
        Command::Report {
            results,
            baseline,
            out,
            fail_if,
            p99_budget,
        } => {
            let page = commands::PageRequest {
                results,
                baseline,
                out,
                p99_budget,
            };
            commands::report(&page, &fail_if, verbose)
        }
        Command::Schema => commands::schema(),
        Command::Plan {
            scenario,
            arch,
            sweep,
            sweep_by,
        } => commands::plan(&scenario, &arch, sweep, sweep_by),
        Command::Up(args) => commands::up(&args).await,
        Command::Export(args) => commands::export(&args),
        Command::Calibrate(args) => commands::calibrate(&args).await,
    }
}
