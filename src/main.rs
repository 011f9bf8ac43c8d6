//! The `grainbench` command line: parses arguments, sets up logging and signals, calls the
//! library, and maps failures to exit codes (1 run error, 2 bad input, 130 interrupted).

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use grain_runtime::network::NetworkModel;
use grainbench::driver::requests::RequestGen;
use grainbench::plan::{self, Architecture};
use grainbench::report::render_summary;
use grainbench::run::{self, LoadMode, Redeploy, RunError, RunOptions, SweepLimits};
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
        #[arg(required_unless_present = "all")]
        scenarios: Vec<PathBuf>,
        /// Run every scenario in scenarios/.
        #[arg(long)]
        all: bool,
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
        /// Load steps: `auto` sweeps rising rates until each architecture saturates and
        /// records the knee; a comma-separated list replaces the scenario's rates.
        #[arg(long, conflicts_with = "connections")]
        rates: Option<String>,
        /// Closed loop instead: this many connections, each sending as fast as replies come.
        #[arg(long)]
        connections: Option<usize>,
        /// Measured seconds per step (overrides the scenario and --quick).
        #[arg(long)]
        duration: Option<f64>,
        /// Warm-up seconds per step (overrides the scenario and --quick).
        #[arg(long)]
        warmup: Option<f64>,
        /// Most requests in flight at once; requests due beyond it wait (and are counted).
        #[arg(long, default_value_t = 10_000)]
        in_flight_cap: usize,
        /// Deployments timed for cold start per architecture (median, min, max reported).
        #[arg(long, default_value_t = 5)]
        cold_starts: usize,
        /// The operation whose change is redeployed under load after the steps
        /// (default: the first entrypoint's operation).
        #[arg(long, conflicts_with = "no_redeploy")]
        change: Option<String>,
        /// Skip the live redeploy.
        #[arg(long)]
        no_redeploy: bool,
        /// Network every hop crosses, overriding the scenario's [network]: `loopback` (no
        /// added delay), `dc` (250 µs one way), `cross-zone` (1 ms one way), or a fixed
        /// one-way delay such as `250us` or `1ms`. Each hop then adds a round trip.
        #[arg(long, value_parser = network_arg)]
        network: Option<Box<NetworkModel>>,
        /// Marks every unit's command line (lets tests find this run's processes).
        #[arg(long, hide = true)]
        run_id: Option<String>,
    },
    /// Render the HTML comparison report from saved results, without running anything.
    Report {
        results: PathBuf,
        /// An earlier results.json: the page shows each figure's change since it.
        #[arg(long)]
        baseline: Option<PathBuf>,
        /// Where to write the page (default: index.html beside RESULTS).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Write scenarios/NAME.toml: a commented, valid, runnable starting point.
    New {
        name: String,
        /// Directory to write into.
        #[arg(long, default_value = "scenarios")]
        dir: PathBuf,
    },
    /// Print the JSON Schema of the scenario format (for editor completion).
    Schema,
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
        /// Network every hop crosses, overriding the scenario's [network]: `loopback` (no
        /// added delay), `dc` (250 µs one way), `cross-zone` (1 ms one way), or a fixed
        /// one-way delay such as `250us` or `1ms`. Each hop then adds a round trip.
        #[arg(long, value_parser = network_arg)]
        network: Option<Box<NetworkModel>>,
    },
    /// Measure the load driver itself: send lag and CPU per request against a minimal
    /// local endpoint, with wrk's CPU per request beside it when wrk is installed.
    Calibrate {
        /// Open-loop rate (req/s).
        #[arg(long, default_value_t = 2000)]
        rate: u32,
        /// Measured seconds per phase.
        #[arg(long, default_value_t = 5)]
        duration: u64,
        /// Connections for the closed-loop phase and for wrk.
        #[arg(long, default_value_t = 16)]
        connections: usize,
        /// Spin window before each send (µs): more is more precise and costs more CPU.
        #[arg(long, default_value_t = grainbench::driver::DEFAULT_SPIN.as_micros() as u64)]
        spin_us: u64,
        /// Also write the figures as JSON to this file.
        #[arg(long)]
        json: Option<PathBuf>,
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

/// Parses `--network` (boxed: the model is large next to the other arguments).
fn network_arg(text: &str) -> Result<Box<NetworkModel>, String> {
    scenario::network::parse(text).map(Box::new)
}

/// Where `run --all` looks for scenarios.
const SCENARIO_DIR: &str = "scenarios";

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
            mut scenarios,
            all,
            arch,
            quick,
            out,
            seed,
            rates,
            connections,
            in_flight_cap,
            duration,
            warmup,
            cold_starts,
            change,
            no_redeploy,
            network,
            run_id,
        } => {
            let redeploy = match (change, no_redeploy) {
                (_, true) => Redeploy::Off,
                (Some(op), false) => Redeploy::Operation(op),
                (None, false) => Redeploy::FirstEntrypoint,
            };
            let seconds = |value: Option<f64>, flag: &str, allow_zero: bool| match value {
                None => Ok(None),
                Some(v)
                    if v.is_finite() && (v > 0.0 || (allow_zero && v == 0.0)) && v <= 3600.0 =>
                {
                    Ok(Some(std::time::Duration::from_secs_f64(v)))
                }
                Some(v) => Err(format!(
                    "--{flag} must be between 0 and 3600 seconds, not {v}"
                )),
            };
            let (duration, warmup) = match (
                seconds(duration, "duration", false),
                seconds(warmup, "warmup", true),
            ) {
                (Ok(d), Ok(w)) => (d, w),
                (Err(e), _) | (_, Err(e)) => {
                    eprintln!("error: {e}");
                    return Ok(ExitCode::from(2));
                }
            };
            let load = match (rates.as_deref(), connections) {
                (_, Some(connections)) => LoadMode::Closed {
                    connections: connections.max(1),
                },
                (Some("auto"), None) => LoadMode::Sweep(SweepLimits::default()),
                (Some(list), None) => match parse_rates(list) {
                    Some(rates) => LoadMode::Rates(rates),
                    None => {
                        eprintln!("error: --rates takes `auto` or positive integers separated by commas, not {list:?}");
                        return Ok(ExitCode::from(2));
                    }
                },
                (None, None) => LoadMode::ScenarioRates,
            };
            if all {
                scenarios.extend(
                    grainbench::scenario::discover(Path::new(SCENARIO_DIR))
                        .with_context(|| format!("cannot list {SCENARIO_DIR}/"))?,
                );
            }
            let settings = RunSettings {
                cold_starts,
                redeploy,
                duration,
                warmup,
                arch,
                quick,
                out,
                seed,
                load,
                in_flight_cap,
                network,
                run_id,
            };
            run_scenarios(&scenarios, settings).await
        }
        Command::Validate { scenarios } => Ok(validate(&scenarios)),
        Command::New { name, dir } => {
            let path = scenario::write_new(&dir, &name)?;
            println!(
                "wrote {}\nnext: grainbench validate {0} && grainbench run {0} --quick",
                path.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Report {
            results,
            baseline,
            out,
        } => {
            let current = grainbench::report::RunResults::read(&results)?;
            let old = baseline
                .as_deref()
                .map(grainbench::report::RunResults::read)
                .transpose()?;
            let out = out.unwrap_or_else(|| results.with_file_name("index.html"));
            let path = grainbench::report::write_html(&current, old.as_ref(), &out)?;
            println!("report: {}", path.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Schema => {
            println!(
                "{}",
                serde_json::to_string_pretty(&scenario::json_schema())?
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Plan { scenario, arch } => {
            let Some(source) = load_or_report(&scenario) else {
                return Ok(ExitCode::from(2));
            };
            print!("{}", describe_plan(&source, arch));
            Ok(ExitCode::SUCCESS)
        }
        Command::Up {
            scenario,
            arch,
            network,
        } => up(&scenario, arch, network).await,
        Command::Calibrate {
            rate,
            duration,
            connections,
            spin_us,
            json,
        } => {
            let options = grainbench::calibrate::CalibrateOptions {
                unit_binary: unit_binary()?,
                run_id: grainbench::run::new_run_id(),
                rate,
                duration: std::time::Duration::from_secs(duration.max(1)),
                wrk_connections: connections.max(1),
                spin: std::time::Duration::from_micros(spin_us),
            };
            let calibration = grainbench::calibrate::calibrate(&options).await?;
            print!("{}", grainbench::calibrate::render(&calibration));
            if let Some(path) = json {
                std::fs::write(&path, serde_json::to_vec_pretty(&calibration)?)
                    .with_context(|| format!("cannot write {}", path.display()))?;
            }
            Ok(ExitCode::SUCCESS)
        }
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
    out.push_str("static hops per request (driver → entry included), and round trips on the critical path:\n");
    for (entry, hops) in &deployment.static_hops {
        out.push_str(&format!(
            "  {entry:<20} {:>3} = {} service + {} state; {} on the critical path\n",
            hops.total(),
            hops.service,
            hops.state,
            deployment
                .critical_path_hops
                .get(entry)
                .copied()
                .unwrap_or(0)
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

/// What `grainbench run` was asked to do, besides which scenarios.
struct RunSettings {
    cold_starts: usize,
    redeploy: Redeploy,
    duration: Option<std::time::Duration>,
    warmup: Option<std::time::Duration>,
    arch: Vec<Architecture>,
    quick: bool,
    out: Option<PathBuf>,
    seed: Option<u64>,
    load: LoadMode,
    in_flight_cap: usize,
    network: Option<Box<NetworkModel>>,
    run_id: Option<String>,
}

fn parse_rates(list: &str) -> Option<Vec<u32>> {
    let rates: Option<Vec<u32>> = list
        .split(',')
        .map(|r| r.trim().parse().ok().filter(|&r| r > 0))
        .collect();
    rates.filter(|r| !r.is_empty())
}

async fn run_scenarios(paths: &[PathBuf], settings: RunSettings) -> Result<ExitCode> {
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
        options.architectures = settings.arch.clone();
        options.quick = settings.quick;
        options.seed = settings.seed;
        options.show_progress = true;
        options.load = settings.load.clone();
        options.duration = settings.duration;
        options.cold_starts = settings.cold_starts.max(1);
        options.redeploy = settings.redeploy.clone();
        if let Redeploy::Operation(op) = &options.redeploy {
            if source.scenario.operation(op).is_none() {
                eprintln!(
                    "error: --change {op}: {} has no operation {op:?}",
                    source.path.display()
                );
                return Ok(ExitCode::from(2));
            }
        }
        options.warmup = settings.warmup;
        options.in_flight_cap = settings.in_flight_cap.max(1);
        options.network = settings.network.as_deref().cloned();
        if let Some(id) = &settings.run_id {
            options.run_id = id.clone();
        }
        if let Some(dir) = &settings.out {
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
        if let Some(path) = &outcome.report_path {
            println!("report:  {}", path.display());
        }
        if let Some(error) = &outcome.report_error {
            eprintln!("error: {error}");
            code = ExitCode::FAILURE;
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

async fn up(
    path: &Path,
    arch: Architecture,
    network: Option<Box<NetworkModel>>,
) -> Result<ExitCode> {
    let Some(source) = load_or_report(path) else {
        return Ok(ExitCode::from(2));
    };
    let deployment = plan::plan(&source.scenario, arch);
    let options = grainbench::launch::LaunchOptions {
        unit_binary: unit_binary()?,
        run_id: format!("up-{}", std::process::id()),
        work_iterations_per_us: grain_runtime::work::calibrate(),
        ready_timeout: std::time::Duration::from_secs(20),
        network: network.map_or_else(|| source.scenario.network.clone(), |n| *n),
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
    let network = live.network();
    println!(
        "network between units: {}: {} (your own requests to the entry unit are not delayed)",
        network.name,
        network.describe()
    );
    let params = RequestGen::new(&source.scenario, source.scenario.seed)
        .next_request()
        .params;
    let example =
        String::from_utf8_lossy(&grain_runtime::wire::encode_request(&params, 0)).into_owned();
    for entry in &source.scenario.entrypoints {
        let addr = live.addr_of(&entry.op).unwrap_or_default();
        println!("  {}  POST http://{addr}/op/{}", entry.op, entry.op);
        println!("      curl -s -D- -X POST http://{addr}/op/{} -H 'content-type: application/json' -d '{example}'", entry.op);
    }
    println!("Ctrl-C to stop.");
    let _ = tokio::signal::ctrl_c().await;
    live.shutdown().await;
    Ok(ExitCode::SUCCESS)
}
