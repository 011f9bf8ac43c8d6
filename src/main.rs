//! The `grainbench` command line: parses arguments (clap checks every range), sets up
//! logging and signals, calls the library, and maps failures to exit codes in one place
//! ([`Failure::exit_code`]: 2 bad input, 1 run error, 130 interrupted).

mod cli;
mod run_command;
mod terminal;

use anyhow::Context as _;
use clap::Parser as _;
use cli::{Cli, Command};
use grainbench::launch::container::ContainerRun;
use grainbench::plan::Series;
use grainbench::scenario::{self, ScenarioSource};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use terminal::{note, say};

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

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Unit { spec, routes, .. } = &cli.command {
        terminal::init_tracing("GRAINBENCH_UNIT_LOG", 0);
        return match grainbench::unit::serve(spec, routes.as_deref()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                note!("grainbench unit: {error}");
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
        .and_then(|runtime| runtime.block_on(dispatch(cli.command, cli.verbose)));
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

async fn dispatch(command: Command, verbose: u8) -> Result<(), Failure> {
    match command {
        Command::Run(args) => run_command::run_scenarios(*args, verbose > 0).await,
        Command::Validate { scenarios } => validate(&scenarios),
        Command::New { name, dir } => {
            let path = scenario::write_new(&dir, &name).map_err(|e| bad_input(e.into()))?;
            let me = invoked_as();
            say!(
                "wrote {}\nnext: {me} validate {0} && {me} run {0} --quick",
                path.display()
            );
            Ok(())
        }
        Command::Report {
            results,
            baseline,
            out,
            fail_if,
            p99_budget,
        } => {
            let mut current = read_results(&results)?;
            if let Some(budget) = p99_budget {
                current.meta.p99_budget_us = Some(budget.as_secs_f64() * 1e6);
            }
            let old = baseline.as_deref().map(read_results).transpose()?;
            let out = out.unwrap_or_else(|| results.with_file_name("index.html"));
            let path = grainbench::report::write_html(&current, old.as_ref(), &out)
                .map_err(anyhow::Error::from)?;
            terminal::print_summary(&current, old.as_ref(), verbose > 0);
            say!("report: {}", path.display());
            gate(&current, old.as_ref(), &fail_if)
        }
        Command::Schema => {
            let schema = serde_json::to_string_pretty(&scenario::json_schema())
                .map_err(anyhow::Error::from)?;
            say!("{schema}");
            Ok(())
        }
        Command::Plan {
            scenario,
            arch,
            sweep,
            sweep_by,
        } => {
            let source = load(&scenario)?;
            let described = match sweep {
                Some(count) => {
                    let series = sweep_by.map_or_else(|| Series::ALL.to_vec(), |s| vec![s]);
                    let count = (count > 0).then_some(count as usize);
                    grainbench::plan::describe_sweep(&source.scenario, &series, count)
                }
                None => grainbench::plan::describe(&source.scenario, &arch),
            };
            print!("{}", described.map_err(|e| bad_input(e.into()))?);
            Ok(())
        }
        Command::Up(args) => up(&args).await,
        Command::Export(args) => export(&args),
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

pub(crate) fn read_results(path: &Path) -> Result<grainbench::results::RunResults, Failure> {
    grainbench::results::RunResults::read(path).map_err(|e| bad_input(e.into()))
}

/// Checks `--fail-if` thresholds, saying each broken one.
pub(crate) fn gate(
    results: &grainbench::results::RunResults,
    baseline: Option<&grainbench::results::RunResults>,
    thresholds: &[grainbench::report::gate::Threshold],
) -> Result<(), Failure> {
    let broken = grainbench::report::gate::violations(results, baseline, thresholds);
    for violation in &broken {
        note!("threshold broken: {violation}");
    }
    broken.is_empty().then_some(()).ok_or(Failure::Threshold)
}

pub(crate) fn bad_input(error: anyhow::Error) -> Failure {
    Failure::BadInput(Some(error))
}

/// Loads a scenario; its errors (every issue, located) are printed as they are.
pub(crate) fn load(path: &Path) -> Result<ScenarioSource, Failure> {
    scenario::load(path).map_err(|error| {
        note!("{error}");
        Failure::BadInput(None)
    })
}

fn validate(paths: &[PathBuf]) -> Result<(), Failure> {
    let mut ok = true;
    for path in paths {
        match load(path) {
            Ok(source) => say!("{}: ok — {}", path.display(), source.scenario.outline()),
            Err(_) => ok = false,
        }
    }
    ok.then_some(()).ok_or(Failure::BadInput(None))
}

fn export(args: &cli::ExportArgs) -> Result<(), Failure> {
    use grainbench::export::{Export, Format};
    use grainbench::launch::container;
    let source = load(&args.scenario)?;
    let mut scenario = source.scenario.clone();
    if let Some(n) = args.replicas {
        scenario.services.iter_mut().for_each(|s| s.replicas = n);
    }
    let plan = grainbench::plan::plan(&scenario, &args.cut).map_err(|e| bad_input(e.into()))?;
    let binary = unit_binary()?;
    let image = match (&args.image, args.build_image) {
        (Some(image), _) => image.clone(),
        (None, true) => {
            let tag = container::image_tag(&binary);
            let (image, bytes) = container::build_image(&binary, &tag, "export", None)
                .map_err(anyhow::Error::from)?;
            say!("built {image} ({bytes} bytes)");
            image
        }
        (None, false) => format!("grainbench-unit:{}", container::image_tag(&binary)),
    };
    let measured = match &args.results {
        Some(path) => {
            Some(grainbench::results::RunResults::read(path).map_err(anyhow::Error::from)?)
        }
        None => None,
    };
    let arch = measured.as_ref().and_then(|r| {
        r.architectures.iter().find(|a| {
            a.architecture == args.cut && a.security == grainbench::plan::SecurityMode::None
        })
    });
    if args.results.is_some() && arch.is_none() {
        note!(
            "note: {} has no plaintext run of {}: no resource requests",
            args.results
                .as_ref()
                .map_or(String::new(), |p| p.display().to_string()),
            args.cut
        );
    }
    let export = Export {
        scenario: &scenario,
        plan: &plan,
        image,
        resilience: scenario.resilience.clone(),
        work_iterations_per_us: grain_runtime::work::measure_iterations_per_us(),
        measured: arch,
    };
    let format = match args.format {
        cli::ExportFormatArg::K8s => Format::Kubernetes,
        cli::ExportFormatArg::Compose => Format::Compose,
    };
    let written = export
        .write(format, &args.dir)
        .map_err(anyhow::Error::from)?;
    say!(
        "{} files under {} for {} as {} ({}):",
        written.len(),
        args.dir.display(),
        scenario.name,
        args.cut,
        export.image
    );
    for file in &written {
        say!("  {}", file.display());
    }
    Ok(())
}

pub(crate) fn unit_binary() -> anyhow::Result<PathBuf> {
    std::env::current_exe().context("cannot find the grainbench binary to start units with")
}

async fn up(args: &cli::UpArgs) -> Result<(), Failure> {
    let source = load(&args.scenario)?;
    let arch = &args.arch;
    let deployment =
        grainbench::plan::plan(&source.scenario, arch).map_err(|e| bad_input(e.into()))?;
    let mut options = grainbench::up::UpOptions::new(unit_binary()?);
    options.network = args.network.as_deref().cloned();
    options.security = args.security;
    options.keepalive = !args.no_keepalive;
    // Held while the units run: dropping it removes their containers and network.
    let containers = match args.containers() {
        Some(container) => Some(
            ContainerRun::prepare(&options.unit_binary, &grainbench::up::run_id(), &container)
                .map_err(anyhow::Error::from)?,
        ),
        None => None,
    };
    options.container = containers.as_ref().map(|c| c.target.clone());
    let live = grainbench::up::start(&source, &deployment, &options)
        .await
        .with_context(|| format!("{arch}"))?;
    print!("{}", grainbench::up::describe(&source, &live));
    say!("Ctrl-C to stop.");
    let _ = tokio::signal::ctrl_c().await;
    live.shutdown().await;
    drop(containers);
    Ok(())
}

/// How the user called this binary, for a hint they can paste: `grainbench` when it came
/// from the PATH, else the path they typed (`target/release/grainbench` after `cargo run`).
fn invoked_as() -> String {
    let argv0 = std::env::args().next().unwrap_or_default();
    if argv0.is_empty() || !argv0.contains('/') {
        "grainbench".to_owned()
    } else {
        argv0
    }
}
