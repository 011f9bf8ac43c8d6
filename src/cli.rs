//! The command line's arguments. clap checks every range and format here, so a bad flag
//! is refused before anything runs; `RunArgs::options` turns `run`'s flags into the
//! library's [`RunOptions`] in one place.

use clap::{Args, Parser, Subcommand};
use grain_runtime::network::NetworkModel;
use grainbench::deploy::{DeployOverrides, DeployTarget, ResilienceOverrides};
use grainbench::launch::container::ContainerOptions;
use grainbench::plan::{Architecture, Mesh, SecurityMode, Series, Transport};
use grainbench::report::gate::Threshold;
use grainbench::run::{LoadMode, RedeployPolicy, RunOptions, SweepLimits, SweepMax, SweepRequest};
use grainbench::scenario::fault::{Fault, FaultSyntaxError};
use grainbench::scenario::limits::{MAX_RATE, MAX_REPLICAS, MAX_RETRIES, MAX_TIMEOUT_MS};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "grainbench",
    version,
    about = "What does the finer cut cost? Deploys one scenario as nanoservices, microservices and a monolith on real processes and measures them side by side."
)]
pub struct Cli {
    /// More log output (-v info, -vv debug); GRAINBENCH_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Deploy each architecture in turn, drive open-loop load, write results.json and print a summary.
    Run(Box<RunArgs>),
    /// Render the HTML comparison report from saved results, without running anything.
    Report {
        results: PathBuf,
        /// An earlier results.json: the page shows each figure's change since it.
        #[arg(long)]
        baseline: Option<PathBuf>,
        /// Where to write the page (default: index.html beside RESULTS).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Exit with code 3 if a threshold is broken: `p99 > 5ms`, `p50 > 800us`, or
        /// `regression > 10%` (against --baseline; only changes beyond noise count).
        #[arg(long = "fail-if", value_name = "THRESHOLD")]
        fail_if: Vec<Threshold>,
        /// The p99 a cut must meet (e.g. 3ms), overriding the run's: the page names the
        /// finest cut that meets it.
        #[arg(long, value_parser = budget_arg)]
        p99_budget: Option<Duration>,
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
    /// Print the units of a cut, what each hosts, and the static hops per entrypoint; with
    /// --sweep, the generated series of cuts from nano to monolith.
    Plan {
        scenario: PathBuf,
        /// A cut: nano, micro, monolith, one of the scenario's [[cut]]s, sweep-K or sweep-svc-K.
        #[arg(long, default_value = "nano", conflicts_with = "sweep")]
        arch: Architecture,
        /// List the generated series (every cut, or the N that `run --sweep N` would pick)
        /// with their units, hops, critical path and blast radius; nothing is deployed.
        #[arg(long, num_args = 0..=1, default_missing_value = "0",
              value_parser = clap::value_parser!(u32).range(0..=1000))]
        sweep: Option<u32>,
        /// Which series: `hops` (merge the most-called pairs first) or `services` (inside
        /// services first, then between them); both when left out.
        #[arg(long, requires = "sweep")]
        sweep_by: Option<Series>,
    },
    /// Deploy a cut and keep it running until Ctrl-C, printing each entrypoint's URL.
    Up(UpArgs),
    /// Measure the load driver itself: send lag and CPU per request against a minimal
    /// local endpoint, with wrk's CPU per request beside it when wrk is installed.
    Calibrate(CalibrateArgs),
    /// Write a cut as Kubernetes manifests (`k8s`) or a compose file (`compose`) that run
    /// the units' image elsewhere: `grainbench export k8s SCENARIO micro DIR`
    Export(ExportArgs),
    /// Serve one unit (how the harness starts units).
    #[command(hide = true)]
    Unit {
        /// The unit's spec, JSON, or `-`: the first line of stdin (how the harness sends it),
        /// or `@FILE`.
        #[arg(long)]
        spec: String,
        /// Standalone (an exported deployment, no harness): the routes are read from this
        /// file, stdin is not watched, and only SIGTERM stops the unit.
        #[arg(long)]
        routes: Option<PathBuf>,
        /// The run this unit belongs to (identifies its processes).
        #[arg(long)]
        run_id: Option<String>,
        /// The unit's name, for `ps` and tests (the spec carries it too).
        #[arg(long)]
        unit: Option<String>,
    },
    /// Supervise a sidecar's proxy inside its container (how a pod's sidecar runs under
    /// `--mesh sidecar --target compose`): its configuration on stdin, stopped when stdin
    /// closes.
    #[command(hide = true)]
    SidecarProxy {
        /// The run this sidecar belongs to (identifies its processes).
        #[arg(long)]
        run_id: Option<String>,
    },
}

#[derive(Args)]
#[command(group(clap::ArgGroup::new("tracing").multiple(true)))]
pub struct RunArgs {
    /// Scenario files (TOML).
    #[arg(required_unless_present = "all")]
    pub scenarios: Vec<PathBuf>,
    /// Run every scenario in scenarios/.
    #[arg(long)]
    pub all: bool,
    /// Cuts to run, comma-separated: nano, micro, monolith, the scenario's [[cut]] names,
    /// sweep-K or sweep-svc-K (default: nano, micro, monolith and the scenario's cuts).
    #[arg(long, value_delimiter = ',')]
    pub arch: Vec<Architecture>,
    /// Also run N cuts of a generated series between nano and monolith (default 6), spread
    /// by unit count; nano, micro and monolith are always among them.
    #[arg(long, num_args = 0..=1, default_missing_value = "6",
          value_parser = clap::value_parser!(u32).range(1..=100))]
    pub sweep: Option<u32>,
    /// The series --sweep picks from: `hops` (merge the most-called pairs first) or
    /// `services` (inside services first, then between them).
    #[arg(long, default_value = "hops", requires = "sweep")]
    pub sweep_by: Series,
    /// The p99 a cut must meet at the comparison rate (e.g. 3ms; default: the scenario's
    /// `[load] p99_budget_ms`): the report names the finest cut that meets it.
    #[arg(long, value_parser = budget_arg)]
    pub p99_budget: Option<Duration>,
    /// Short steps (2 s measured after 1 s warm-up, in each round) for a full comparison
    /// in about two minutes.
    #[arg(long)]
    pub quick: bool,
    /// Rounds: each runs every architecture's steps, in an order shuffled per round with
    /// the seed; every figure gets a 95 % interval over the rounds (at least 2 for one).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=50))]
    pub repeat: u32,
    /// Rounds until sure: after the --repeat pilot rounds (at least 3), as many more as every
    /// verdict ratio's 95 % interval needs to be within this of its estimate, `10%`
    /// (0.5 % to 100 %), decided once from the pilot (Stein's two-stage rule) and never by
    /// peeking again; at least as many rounds after the pilot as in it, at most --max-rounds.
    #[arg(long, value_parser = precision_arg, conflicts_with_all = ["connections", "endpoints"])]
    pub precision: Option<f64>,
    /// With --precision: the most rounds the run may take, pilot included (6 to 50).
    #[arg(long, default_value_t = 10, requires = "precision", value_parser = clap::value_parser!(u32).range(6..=50))]
    pub max_rounds: u32,
    /// With --precision: the most wall time the rounds may take, `45m`, `2h`, `600s` (1 min
    /// to 24 h); the rounds that fit are decided with the rest, from the pilot's round time.
    #[arg(long, requires = "precision", value_parser = time_budget_arg)]
    pub time_budget: Option<Duration>,
    /// Output directory (default: reports/<scenario>/; with several scenarios, DIR/<scenario>/).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Seed of the request parameters (default: the scenario's `seed`).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Load steps: `auto` sweeps rising rates until each architecture saturates and
    /// records the knee; a comma-separated list of req/s replaces the scenario's rates.
    #[arg(long, conflicts_with = "connections", value_parser = rates_arg)]
    pub rates: Option<LoadMode>,
    /// With `--rates auto`: the highest rate the sweep runs (default: the driver's
    /// capacity, measured against a minimal endpoint before the run).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_RATE)))]
    pub max_rate: Option<u32>,
    /// Closed loop instead: this many connections, each sending as fast as replies come.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub connections: Option<u32>,
    /// Measured seconds per step, 0.001 to 3600 (overrides the scenario and --quick).
    #[arg(long, value_parser = measured_seconds_arg)]
    pub duration: Option<Duration>,
    /// Warm-up seconds per step, 0 to 3600 (overrides the scenario and --quick).
    #[arg(long, value_parser = warmup_seconds_arg)]
    pub warmup: Option<Duration>,
    /// Load threads per step, each with its slice of the schedule, its own connections and
    /// histograms (default: one per 20 000 req/s open loop, half the cores closed loop).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub threads: Option<u32>,
    /// Most requests in flight at once; requests due beyond it wait (and are counted).
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub in_flight_cap: u32,
    /// Deployments timed for cold start per architecture (median, min, max reported).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub cold_starts: u32,
    /// The operation whose change is redeployed under load after the steps
    /// (default: the first entrypoint's operation).
    #[arg(long, conflicts_with = "no_redeploy")]
    pub change: Option<String>,
    /// Skip the live redeploy.
    #[arg(long)]
    pub no_redeploy: bool,
    /// An earlier results.json: the page and summary show each figure's change since it,
    /// with its interval ("no change beyond noise" where the interval holds 0).
    #[arg(long)]
    pub baseline: Option<PathBuf>,
    /// An A/A check: run each scenario twice, the same way, and compare the second run
    /// with the first as with --baseline. Nothing changed, so a sound method on a quiet
    /// machine flags no figure, or very few; run it before trusting a comparison. The
    /// first run's outputs go to `aa-first/` under the output directory.
    #[arg(long, conflicts_with_all = ["baseline", "endpoints"])]
    pub aa: bool,
    /// Exit with code 3 if a threshold is broken: `p99 > 5ms`, `p50 > 800us`, or
    /// `regression > 10%` (against --baseline; only changes beyond noise count).
    #[arg(long = "fail-if", value_name = "THRESHOLD")]
    pub fail_if: Vec<Threshold>,
    /// What every hop speaks, overriding the scenario's [security]: a list of `none`,
    /// `tls`, `mtls`, `token`, `mtls+token`; each cut is deployed once per mode, and the
    /// report sets each mode's cost against `none`'s.
    #[arg(long, value_delimiter = ',', value_parser = security_arg)]
    pub security: Vec<SecurityMode>,
    /// Drive a deployment grainbench did not start: a TOML file naming its cut and each
    /// entrypoint's URL (`cut = "micro"`, `[entrypoints] checkout = "http://host:port"`).
    /// Cold start, memory, the units' CPU and the redeploy are then not measured.
    #[arg(long, conflicts_with_all = ["arch", "sweep", "security", "transport", "no_keepalive", "all", "replicas"])]
    pub endpoints: Option<PathBuf>,
    /// A fault injected in a fault step of every cut, after its load steps (repeatable):
    /// `kill:OP@2s[+1s]` (restarted after 1 s), `freeze:OP@2s+1s`, `slow:OP@2s+3s=50ms`,
    /// `fail:OP@2s+3s=0.2`; it hits the first replica of the unit serving OP.
    #[arg(long = "fault", value_name = "FAULT", value_parser = fault_arg)]
    pub faults: Vec<Fault>,
    /// Trace a share of the load's requests (default 1%; `--trace 100%` traces every
    /// one): W3C trace context on every hop, every unit's spans written to traces.jsonl
    /// (OTLP JSON) beside results.json, each traced request checked (one tree, hops equal
    /// to the measured hops), and the page shows where the time goes and waterfalls.
    #[arg(long, num_args = 0..=1, default_missing_value = "1%", value_name = "SHARE",
          value_parser = trace_sample_arg, conflicts_with = "endpoints", group = "tracing")]
    pub trace: Option<f64>,
    /// Measure what tracing costs: deploy each cut untraced and traced (`+traced`, at
    /// --trace's share, default 1%), back to back in every round; the report sets each
    /// traced cut against the same cut untraced (added p50, p99, units' CPU, paired by round).
    #[arg(long, conflicts_with = "endpoints", group = "tracing")]
    pub trace_overhead: bool,
    /// Also send every span to this OTLP/HTTP collector (`http://127.0.0.1:4318`: Jaeger,
    /// Tempo, an OpenTelemetry Collector); one that is down costs counted export
    /// failures, never the run.
    #[arg(long, value_name = "URL", requires = "tracing")]
    pub otlp: Option<String>,
    #[command(flatten)]
    pub deploy: DeployArgs,
    #[command(flatten)]
    pub placement: PlacementArgs,
    /// With `--target compose`: remove the units' image at the end (kept by default, since
    /// its tag names the build it holds).
    #[arg(long, requires = "target")]
    pub remove_image: bool,
    /// Marks every unit's command line (lets tests find this run's processes).
    #[arg(long, hide = true)]
    pub run_id: Option<String>,
}

#[derive(Args)]
pub struct UpArgs {
    pub scenario: PathBuf,
    /// A cut: nano, micro, monolith, one of the scenario's [[cut]]s, sweep-K or sweep-svc-K.
    #[arg(long, default_value = "nano")]
    pub arch: Architecture,
    /// What every hop speaks: none, tls, mtls, token or mtls+token (see `run --security`);
    /// prints what curl needs to call the units.
    #[arg(long, default_value = "none", value_parser = security_arg)]
    pub security: SecurityMode,
    #[command(flatten)]
    pub deploy: DeployArgs,
    #[command(flatten)]
    pub placement: PlacementArgs,
}

impl UpArgs {
    /// The library's request.
    pub fn request(&self) -> grainbench::up::UpRequest {
        grainbench::up::UpRequest {
            cut: self.arch.clone(),
            overrides: self.deploy.overrides(Vec::new()),
            security: self.security,
            target: self.placement.target(false),
        }
    }
}

/// The per-deployment knobs over the scenario's own: the same flags for `run`, `up` and
/// `export` (each becomes one field of the library's `DeployOverrides`).
#[derive(Args)]
pub struct DeployArgs {
    /// Network every hop crosses, overriding the scenario's [network]: `loopback` (no
    /// added delay), `dc` (250 µs one way), `cross-zone` (1 ms one way), or a fixed
    /// one-way delay such as `250us` or `1ms`. Each hop then adds a round trip.
    #[arg(long, value_parser = network_arg)]
    pub network: Option<Box<NetworkModel>>,
    /// Units open a connection (and pay its handshake) per call instead of reusing one.
    #[arg(long)]
    pub no_keepalive: bool,
    /// Processes per service unit, for every service (overrides each `[[service]]`'s
    /// `replicas`). Above 1, a service's data moves to a state unit its replicas share,
    /// and callers balance across replicas round robin.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_REPLICAS)))]
    pub replicas: Option<u32>,
    /// Retries after a failed call between units (overrides `[resilience] retries`).
    #[arg(long, value_parser = clap::value_parser!(u32).range(0..=i64::from(MAX_RETRIES)))]
    pub retries: Option<u32>,
    /// Retries allowed as a share of calls, `10%`, or `none` for no budget (overrides
    /// `[resilience] retry_budget`).
    #[arg(long, value_parser = retry_budget_arg)]
    pub retry_budget: Option<RetryBudget>,
    /// Each call attempt's timeout between units, ms (overrides `[resilience] timeout_ms`).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=MAX_TIMEOUT_MS))]
    pub call_timeout: Option<u64>,
    /// What every unit-to-unit hop speaks, overriding the scenario's [transport]: a list
    /// of `http1-json`, `grpc` (HTTP/2 + protobuf), `binary` (length-prefixed frames);
    /// `run` deploys each cut once per transport, `up` and `export` take one. The driver
    /// always speaks HTTP/1.1 + JSON to the entry unit.
    #[arg(long, value_delimiter = ',', value_parser = transport_arg)]
    pub transport: Vec<Transport>,
    /// Whether units run behind sidecar proxies, overriding the scenario's [mesh]: a list
    /// of `none`, `sidecar` (an HAProxy beside every unit process; with --security tls or
    /// mtls the sidecars terminate it); `run` deploys each cut once per mode.
    #[arg(long, value_delimiter = ',', value_parser = mesh_arg)]
    pub mesh: Vec<Mesh>,
}

impl DeployArgs {
    /// The library's overrides, with `security` (each cut once per mode; empty: the
    /// scenario's).
    pub fn overrides(&self, security: Vec<SecurityMode>) -> DeployOverrides {
        DeployOverrides {
            replicas: self.replicas,
            network: self.network.as_deref().cloned(),
            resilience: ResilienceOverrides {
                retries: self.retries,
                retry_budget_percent: self.retry_budget.map(|b| b.0),
                timeout_ms: self.call_timeout,
            },
            security,
            transports: self.transport.clone(),
            meshes: self.mesh.clone(),
            keepalive: self.no_keepalive.then_some(false),
        }
    }
}

/// Where units run, and how big their containers are (`run` and `up` alike).
#[derive(Args)]
pub struct PlacementArgs {
    /// Where units run: `processes` (on 127.0.0.1, the default) or `compose` (each unit a
    /// container from an image built offline from this binary, on a bridge network made
    /// for the run; needs a running Docker daemon).
    #[arg(long, value_enum, default_value = "processes")]
    pub target: TargetArg,
    /// With `--target compose`: CPUs of every unit's container (`docker run --cpus`).
    #[arg(long, requires = "target")]
    pub cpus: Option<f64>,
    /// With `--target compose`: memory limit of every unit's container, e.g. `256m`.
    #[arg(long, requires = "target")]
    pub memory: Option<String>,
}

impl PlacementArgs {
    /// Where units run: containers of these sizes with `--target compose`.
    fn target(&self, remove_image: bool) -> DeployTarget {
        match self.target {
            TargetArg::Processes => DeployTarget::Processes,
            TargetArg::Compose => DeployTarget::Compose(ContainerOptions {
                cpus: self.cpus,
                memory: self.memory.clone(),
                remove_image,
                // Set where the deployments are known (`DeployEnv::place`).
                sidecars: false,
            }),
        }
    }
}

#[derive(Args)]
pub struct ExportArgs {
    /// `k8s` or `compose`.
    #[arg(value_enum)]
    pub format: ExportFormatArg,
    pub scenario: PathBuf,
    /// The cut: nano, micro, monolith, one of the scenario's [[cut]]s, sweep-K or sweep-svc-K.
    pub cut: Architecture,
    /// Where to write the files (created if missing).
    pub dir: PathBuf,
    #[command(flatten)]
    pub deploy: DeployArgs,
    /// A results.json with a run of this cut: its measured CPU and memory become each
    /// Deployment's resource requests.
    #[arg(long)]
    pub results: Option<PathBuf>,
    /// The image the units run (default: `grainbench-unit:<commit>-<binary hash>`, the tag
    /// `run --target compose` builds).
    #[arg(long)]
    pub image: Option<String>,
    /// Build that image now from this binary (needs Docker; nothing is pulled).
    #[arg(long, conflicts_with = "image")]
    pub build_image: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormatArg {
    K8s,
    Compose,
}

/// `--target`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TargetArg {
    Processes,
    Compose,
}

impl ExportArgs {
    /// The library's request.
    pub fn request(&self) -> grainbench::export::ExportRequest {
        grainbench::export::ExportRequest {
            format: match self.format {
                ExportFormatArg::K8s => grainbench::export::Format::Kubernetes,
                ExportFormatArg::Compose => grainbench::export::Format::Compose,
            },
            cut: self.cut.clone(),
            dir: self.dir.clone(),
            overrides: self.deploy.overrides(Vec::new()),
            results: self.results.clone(),
            image: self.image.clone(),
            build_image: self.build_image,
        }
    }
}

/// `--retry-budget`: a share of calls, or none.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryBudget(pub Option<f64>);

fn retry_budget_arg(text: &str) -> Result<RetryBudget, String> {
    grainbench::scenario::fault::parse_budget(text).map(RetryBudget)
}

fn fault_arg(text: &str) -> Result<Fault, String> {
    text.parse().map_err(|e: FaultSyntaxError| e.to_string())
}

fn precision_arg(text: &str) -> Result<f64, String> {
    let number = text.trim().strip_suffix('%').unwrap_or(text.trim());
    match number.trim().parse::<f64>() {
        Ok(percent) if (0.5..=100.0).contains(&percent) => Ok(percent / 100.0),
        Ok(percent) => Err(format!("{percent} % is out of range: 0.5 % to 100 %")),
        Err(_) => Err(format!("'{text}' is not a percentage such as 10%")),
    }
}

/// Parses the share of requests `--trace` traces: `1%`, `100%`, or a fraction `0.05`.
fn trace_sample_arg(text: &str) -> Result<f64, String> {
    let text = text.trim();
    let share = match text.strip_suffix('%') {
        Some(percent) => percent.trim().parse::<f64>().map(|p| p / 100.0),
        None => text.parse::<f64>(),
    };
    match share {
        Ok(share) if share > 0.0 && share <= 1.0 => Ok(share),
        Ok(_) => Err(format!(
            "{text} is out of range: more than 0 %, at most 100 %"
        )),
        Err(_) => Err(format!("'{text}' is not a share such as 1% or 0.01")),
    }
}

fn time_budget_arg(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| c.is_ascii_alphabetic())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let scale = match unit.trim() {
        "s" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        _ => return Err(format!("a time such as 45m, 2h or 600s, not {text:?}")),
    };
    match number.trim().parse::<f64>() {
        Ok(n) if (60.0..=86_400.0).contains(&(n * scale)) => Ok(Duration::from_secs_f64(n * scale)),
        Ok(_) => Err(format!("{text} is out of range: 1 min to 24 h")),
        Err(_) => Err(format!("a time such as 45m, 2h or 600s, not {text:?}")),
    }
}

fn security_arg(text: &str) -> Result<SecurityMode, String> {
    text.parse()
}

fn transport_arg(text: &str) -> Result<Transport, String> {
    text.parse()
}

fn mesh_arg(text: &str) -> Result<Mesh, String> {
    text.parse()
}

impl RunArgs {
    /// The library's options for one scenario of this command (`several`: more than one
    /// scenario in the run, so each gets its own directory under `--out`).
    pub fn options(&self, name: &str, unit_binary: PathBuf, several: bool) -> RunOptions {
        let mut options = RunOptions::new(name, unit_binary);
        options.architectures = self.arch.clone();
        options.sweep = self.sweep.map(|count| SweepRequest {
            series: self.sweep_by,
            count: count as usize,
        });
        options.p99_budget = self.p99_budget;
        options.quick = self.quick;
        options.repeat = self.repeat as usize;
        options.precision = self.precision.map(|target| grainbench::run::Precision {
            target,
            max_rounds: self.max_rounds as usize,
            time_budget: self.time_budget,
        });
        options.seed = self.seed;
        options.load = match (&self.rates, self.connections) {
            (_, Some(connections)) => LoadMode::Closed {
                connections: connections as usize,
            },
            (Some(LoadMode::Sweep(limits)), None) => {
                let mut limits = limits.clone();
                if let Some(max) = self.max_rate {
                    limits.max_rps = max;
                    limits.max_source = SweepMax::Flag;
                }
                LoadMode::Sweep(limits)
            }
            (Some(mode), None) => mode.clone(),
            (None, None) => LoadMode::ScenarioRates,
        };
        options.duration = self.duration;
        options.warmup = self.warmup;
        options.cold_starts = self.cold_starts as usize;
        options.in_flight_cap = self.in_flight_cap as usize;
        options.threads = self.threads.map(|t| t as usize);
        options.redeploy = match (&self.change, self.no_redeploy) {
            (_, true) => RedeployPolicy::Off,
            (Some(op), false) => RedeployPolicy::Operation(op.clone()),
            (None, false) => RedeployPolicy::FirstEntrypoint,
        };
        options.faults = self.faults.clone();
        options.deploy = self.deploy.overrides(self.security.clone());
        options.target = self.placement.target(self.remove_image);
        options.trace = (self.trace.is_some() || self.trace_overhead).then(|| {
            grainbench::traces::TraceOptions {
                sample: self.trace.unwrap_or(grainbench::traces::DEFAULT_SAMPLE),
                otlp: self.otlp.clone(),
                overhead: self.trace_overhead,
            }
        });
        if let Some(id) = &self.run_id {
            options.run_id = id.clone();
        }
        if let Some(dir) = &self.out {
            options.out_dir = if several { dir.join(name) } else { dir.clone() };
        }
        options
    }
}

#[derive(Args)]
pub struct CalibrateArgs {
    /// Open-loop rate (req/s).
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_RATE)))]
    pub rate: u32,
    /// Measured seconds per phase.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub duration: u64,
    /// Connections for the closed-loop phase and for wrk.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub connections: u32,
    /// Spin window before each send (µs): more is more precise and costs more CPU.
    #[arg(long, default_value_t = grainbench::driver::DEFAULT_SPIN.as_micros() as u64,
          value_parser = clap::value_parser!(u64).range(0..=100_000))]
    pub spin_us: u64,
    /// Also write the figures as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Load threads (default: one per 20 000 req/s open loop, half the cores closed loop).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub threads: Option<u32>,
    /// Skip the ramp to the driver's capacity (the highest open-loop rate it holds).
    #[arg(long)]
    pub no_capacity: bool,
}

impl CalibrateArgs {
    pub fn options(&self, unit_binary: PathBuf) -> grainbench::calibrate::CalibrateOptions {
        grainbench::calibrate::CalibrateOptions {
            unit_binary,
            run_id: grainbench::run::new_run_id(),
            rate: self.rate,
            duration: Duration::from_secs(self.duration),
            wrk_connections: self.connections as usize,
            spin: Duration::from_micros(self.spin_us),
            threads: self.threads.map(|t| t as usize),
            capacity: !self.no_capacity,
        }
    }
}

/// Parses `--network` (boxed: the model is large next to the other arguments).
fn network_arg(text: &str) -> Result<Box<NetworkModel>, String> {
    grainbench::scenario::presets::parse(text).map(Box::new)
}

/// Parses `--rates`: `auto`, or req/s separated by commas, each 1 to the scenario limit.
fn rates_arg(text: &str) -> Result<LoadMode, String> {
    if text == "auto" {
        return Ok(LoadMode::Sweep(SweepLimits::default()));
    }
    let max = MAX_RATE;
    let rates: Option<Vec<u32>> = text
        .split(',')
        .map(|r| r.trim().parse().ok().filter(|r| (1..=max).contains(r)))
        .collect();
    match rates {
        Some(rates) if !rates.is_empty() => Ok(LoadMode::Rates(rates)),
        _ => Err(format!(
            "takes `auto` or req/s from 1 to {max} separated by commas, not {text:?}"
        )),
    }
}

/// Parses a latency budget: `3ms`, `800us`, `0.5s`.
fn budget_arg(text: &str) -> Result<Duration, String> {
    grainbench::report::gate::duration_us(text)
        .map(|us| Duration::from_secs_f64(us / 1e6))
        .ok_or_else(|| format!("a duration such as 3ms, 800us or 0.5s, not {text:?}"))
}

fn seconds_arg(text: &str, min: f64) -> Result<Duration, String> {
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= min && v <= 3600.0 => Ok(Duration::from_secs_f64(v)),
        _ => Err(format!("seconds from {min} to 3600, not {text:?}")),
    }
}

fn measured_seconds_arg(text: &str) -> Result<Duration, String> {
    seconds_arg(text, 0.001)
}

fn warmup_seconds_arg(text: &str) -> Result<Duration, String> {
    seconds_arg(text, 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_out_of_range_are_refused_by_the_parser() {
        for args in [
            &["grainbench", "run", "x.toml", "--duration", "1e-10"][..],
            &["grainbench", "run", "x.toml", "--rates", "0,100"],
            &["grainbench", "run", "x.toml", "--connections", "0"],
            &["grainbench", "run", "x.toml", "--cold-starts", "0"],
            &["grainbench", "run", "x.toml", "--warmup", "nan"],
            &["grainbench", "run", "x.toml", "--precision", "0%"],
            &["grainbench", "run", "x.toml", "--precision", "ten"],
            &["grainbench", "run", "x.toml", "--max-rounds", "8"],
            &[
                "grainbench",
                "run",
                "x.toml",
                "--precision",
                "5%",
                "--max-rounds",
                "5",
            ],
            &["grainbench", "run", "x.toml", "--time-budget", "30m"],
            &[
                "grainbench",
                "run",
                "x.toml",
                "--precision",
                "5%",
                "--time-budget",
                "30",
            ],
            &[
                "grainbench",
                "run",
                "x.toml",
                "--aa",
                "--baseline",
                "old.json",
            ],
            &["grainbench", "run", "x.toml", "--transport", "http2"],
        ] {
            assert!(Cli::try_parse_from(args).is_err(), "{args:?}");
        }
        assert!(Cli::try_parse_from(["grainbench", "run", "x.toml", "--rates", "auto"]).is_ok());
        assert_eq!(precision_arg("10%"), Ok(0.1));
        assert_eq!(precision_arg(" 2.5 % "), Ok(0.025));
        assert!(precision_arg("0.1%")
            .unwrap_err()
            .contains("out of range: 0.5 % to 100 %"));
        assert_eq!(time_budget_arg("45m"), Ok(Duration::from_secs(2700)));
        assert_eq!(time_budget_arg(" 2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(time_budget_arg("600s"), Ok(Duration::from_secs(600)));
        assert!(time_budget_arg("30s")
            .unwrap_err()
            .contains("1 min to 24 h"));
        assert!(time_budget_arg("2d").is_err());
    }

    /// The per-deployment knobs are one set of flags: `up` and `export` take every one
    /// `run` does, and each lands in the same field of the library's overrides.
    #[test]
    fn run_up_and_export_take_the_same_deployment_knobs() {
        let knobs = [
            "--replicas",
            "2",
            "--network",
            "dc",
            "--retries",
            "1",
            "--retry-budget",
            "none",
            "--call-timeout",
            "900",
            "--transport",
            "grpc",
            "--no-keepalive",
        ];
        let parse = |head: &[&str]| {
            let args: Vec<&str> = head.iter().chain(&knobs).copied().collect();
            Cli::try_parse_from(args).unwrap().command
        };
        let overrides = [
            match parse(&["grainbench", "run", "x.toml"]) {
                Command::Run(args) => args.options("x", "g".into(), false).deploy,
                _ => unreachable!(),
            },
            match parse(&["grainbench", "up", "x.toml"]) {
                Command::Up(args) => args.request().overrides,
                _ => unreachable!(),
            },
            match parse(&["grainbench", "export", "k8s", "x.toml", "micro", "out"]) {
                Command::Export(args) => args.request().overrides,
                _ => unreachable!(),
            },
        ];
        for o in &overrides {
            assert_eq!(o.replicas, Some(2));
            assert_eq!(o.network.as_ref().map(|n| n.name.as_str()), Some("dc"));
            assert_eq!(o.resilience.retries, Some(1));
            assert_eq!(o.resilience.retry_budget_percent, Some(None));
            assert_eq!(o.resilience.timeout_ms, Some(900));
            assert_eq!(o.keepalive, Some(false));
            assert_eq!(o.transports, [Transport::Grpc]);
        }
    }
}
