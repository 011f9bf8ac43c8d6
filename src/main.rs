//! The `grainbench` command line: parses arguments, sets up logging and signals, calls the
//! library, and maps failures to exit codes (1 run error, 2 bad input, 130 interrupted).

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use grainbench::plan::{self, Architecture};
use grainbench::report::render_summary;
use grainbench::run::{self, RunError, RunOptions};
use grainbench::scenario::{self, ScenarioSource};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(
    name = "grainbench",
    version,
    about = "What does the finer cut cost? Deploys one scenario as nanoservices, microservices and a monolith on real processes and measures them side by side."
)]
struct Cli {
    /// More log output (-v info, -vv debug); GRAINBENCH_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Deploy each architecture in turn, drive open-loop load, write results.json and print a summary.
    Run {
        /// Scenario files (TOML).
        #[arg(required = true)]
        scenarios: Vec<PathBuf>,
        /// Architectures to run, comma-separated.
        #[arg(long, value_delimiter = ',', default_values = ["nano", "micro", "monolith"])]
        arch: Vec<Architecture>,
        /// Short steps (3 s measured after 1 s warm-up) for a full comparison in about a minute.
        #[arg(long)]
        quick: bool,
        /// Output directory (default: reports/<scenario>/; with several scenarios, DIR/<scenario>/).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Seed of the request parameters (default: the scenario's `seed`).
        #[arg(long)]
        seed: Option<u64>,
        /// Marks every unit's command line (lets tests find this run's processes).
        #[arg(long, hide = true)]
        run_id: Option<String>,
    },
    /// Parse and check scenario files without running anything.
    Validate {
        #[arg(required = true)]
        scenarios: Vec<PathBuf>,
    },
    /// Print the units of an architecture, what each hosts, and the static hops per entrypoint.
    Plan {
        scenario: PathBuf,
        #[arg(long, default_value = "nano")]
        arch: Architecture,
    },
    /// Deploy an architecture and keep it running until Ctrl-C, printing each entrypoint's URL.
    Up {
        scenario: PathBuf,
        #[arg(long, default_value = "nano")]
        arch: Architecture,
    },
    /// Serve one unit (how the harness starts units).
    #[command(hide = true)]
    Unit {
        /// The unit's spec, JSON.
        #[arg(long)]
        spec: String,
        /// The run this unit belongs to (identifies its processes).
        #[arg(long)]
        run_id: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Unit { spec, .. } = &cli.command {
        init_tracing("GRAINBENCH_UNIT_LOG", 0);
        return match grainbench::unit::serve(spec) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("grainbench unit: {error}");
                ExitCode::FAILURE
            }
        };
    }
    init_tracing("GRAINBENCH_LOG", cli.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(cli.command)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(env_var: &str, verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env(env_var)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

async fn dispatch(command: Command) -> Result<ExitCode> {
    match command {
        Command::Run {
            scenarios,
            arch,
            quick,
            out,
            seed,
            run_id,
        } => run_scenarios(&scenarios, arch, quick, out, seed, run_id).await,
        Command::Validate { scenarios } => Ok(validate(&scenarios)),
        Command::Plan { scenario, arch } => {
            let Some(source) = load_or_report(&scenario) else {
                return Ok(ExitCode::from(2));
            };
            print!("{}", describe_plan(&source, arch));
            Ok(ExitCode::SUCCESS)
        }
        Command::Up { scenario, arch } => up(&scenario, arch).await,
        Command::Unit { .. } => unreachable!("handled before the runtime starts"),
    }
}

fn load_or_report(path: &Path) -> Option<ScenarioSource> {
    match scenario::load(path) {
        Ok(source) => Some(source),
        Err(error) => {
            eprintln!("{error}");
            None
        }
    }
}

fn validate(paths: &[PathBuf]) -> ExitCode {
    let mut ok = true;
    for path in paths {
        match load_or_report(path) {
            Some(source) => {
                let s = &source.scenario;
                println!(
                    "{}: ok — {} services, {} operations, {} entrypoints, {} load steps",
                    path.display(),
                    s.services.len(),
                    s.operations.len(),
                    s.entrypoints.len(),
                    s.load.rates.len()
                );
            }
            None => ok = false,
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    }
}

fn describe_plan(source: &ScenarioSource, arch: Architecture) -> String {
    let deployment = plan::plan(&source.scenario, arch);
    let mut out = format!(
        "{} as {}: {} units\n",
        source.scenario.name,
        arch,
        deployment.units.len()
    );
    for unit in &deployment.units {
        let role = if unit.is_state() {
            "state  "
        } else {
            "service"
        };
        out.push_str(&format!(
            "  {role} {:<28} {}\n",
            unit.name,
            unit.hosts.join(", ")
        ));
    }
    out.push_str("static hops per request (driver → entry included):\n");
    for (entry, hops) in &deployment.static_hops {
        out.push_str(&format!(
            "  {entry:<20} {:>3} = {} service + {} state\n",
            hops.total(),
            hops.service,
            hops.state
        ));
    }
    out
}

/// Cancels `token` on the first Ctrl-C or SIGTERM; a second Ctrl-C exits at once.
fn cancel_on_signals(token: CancellationToken) {
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut term) = signal(SignalKind::terminate()) else {
            return;
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        eprintln!(
            "\ninterrupted: stopping units and writing partial results (Ctrl-C again to quit now)"
        );
        token.cancel();
        let _ = tokio::signal::ctrl_c().await;
        std::process::exit(130);
    });
}

fn unit_binary() -> Result<PathBuf> {
    std::env::current_exe().context("cannot find the grainbench binary to start units with")
}

async fn run_scenarios(
    paths: &[PathBuf],
    arch: Vec<Architecture>,
    quick: bool,
    out: Option<PathBuf>,
    seed: Option<u64>,
    run_id: Option<String>,
) -> Result<ExitCode> {
    let mut sources = Vec::new();
    for path in paths {
        match load_or_report(path) {
            Some(source) => sources.push(source),
            None => return Ok(ExitCode::from(2)),
        }
    }
    let cancel = CancellationToken::new();
    cancel_on_signals(cancel.clone());
    let binary = unit_binary()?;
    let several = sources.len() > 1;
    let mut code = ExitCode::SUCCESS;
    for source in &sources {
        let name = &source.scenario.name;
        let mut options = RunOptions::new(name, binary.clone());
        options.architectures = arch.clone();
        options.quick = quick;
        options.seed = seed;
        options.show_progress = true;
        if let Some(id) = &run_id {
            options.run_id = id.clone();
        }
        if let Some(dir) = &out {
            options.out_dir = if several { dir.join(name) } else { dir.clone() };
        }
        eprintln!(
            "running {} ({}) → {}",
            name,
            source.path.display(),
            options.out_dir.display()
        );
        let outcome = run::run(source, &options, &cancel).await;
        println!("{}", render_summary(&outcome.results));
        if let Some(path) = &outcome.results_path {
            println!("results: {}", path.display());
        }
        if let Some(error) = &outcome.write_error {
            eprintln!("error: {error}");
            code = ExitCode::FAILURE;
        }
        match outcome.error {
            None => {}
            Some(RunError::Interrupted) => return Ok(ExitCode::from(130)),
            Some(error) => {
                eprintln!("error: {error}");
                code = ExitCode::FAILURE;
            }
        }
    }
    Ok(code)
}

async fn up(path: &Path, arch: Architecture) -> Result<ExitCode> {
    let Some(source) = load_or_report(path) else {
        return Ok(ExitCode::from(2));
    };
    let deployment = plan::plan(&source.scenario, arch);
    let options = grainbench::launch::LaunchOptions {
        unit_binary: unit_binary()?,
        run_id: format!("up-{}", std::process::id()),
        work_iterations_per_us: grain_runtime::work::calibrate(),
        ready_timeout: std::time::Duration::from_secs(20),
    };
    let live = match grainbench::launch::launch(&deployment, &options).await {
        Ok(live) => live,
        Err(error) => bail!("{arch}: {error}"),
    };
    println!(
        "{} as {arch}: {} units ready in {:.1} ms",
        source.scenario.name,
        live.units.len(),
        live.cold_start.as_secs_f64() * 1e3
    );
    for entry in &source.scenario.entrypoints {
        let addr = live.addr_of(&entry.op).unwrap_or_default();
        let size = source
            .scenario
            .operation(&entry.op)
            .map_or(0, |op| op.request_bytes);
        let example = String::from_utf8_lossy(&grain_runtime::wire::encode_request(
            &Default::default(),
            size.min(64),
        ))
        .into_owned();
        println!("  {}  POST http://{addr}/op/{}", entry.op, entry.op);
        println!("      curl -s -D- -X POST http://{addr}/op/{} -H 'content-type: application/json' -d '{example}'", entry.op);
    }
    println!("Ctrl-C to stop.");
    let _ = tokio::signal::ctrl_c().await;
    live.shutdown().await;
    Ok(ExitCode::SUCCESS)
}
