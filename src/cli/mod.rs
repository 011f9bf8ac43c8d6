//! The command line's arguments. clap checks every range and format here, so a bad flag
//! is refused before anything runs ([`values`] holds the value parsers). `run`'s flags
//! and how they become the library's `RunOptions` are [`run`]'s.

mod run;
mod values;

pub use run::RunArgs;
pub use values::RetryBudget;
use values::*;

use clap::{Args, Parser, Subcommand};
use grain_runtime::network::NetworkModel;
use grainbench::deploy::{DeployOverrides, DeployTarget, ResilienceOverrides};
use grainbench::launch::container::ContainerOptions;
use grainbench::launch::cores::UnitCores;
use grainbench::plan::{Architecture, Mesh, SecurityMode, Series, Transport};
use grainbench::report::gate::Threshold;
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
            unit_cores: self.placement.unit_cpus.clone(),
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
    /// container from an image built offline from grainbench-unit, on a bridge network made
    /// for the run; needs a running Docker daemon).
    #[arg(long, value_enum, default_value = "processes")]
    pub target: TargetArg,
    /// With `--target compose`: CPUs of every unit's container (`docker run --cpus`).
    #[arg(long, requires = "target")]
    pub cpus: Option<f64>,
    /// With `--target compose`: memory limit of every unit's container, e.g. `256m`.
    #[arg(long, requires = "target")]
    pub memory: Option<String>,
    /// Confine every unit process (and its sidecar) to these cores, as `taskset -c` reads
    /// them (`0`, `0,2-3`); the driver's load threads run on the cores left, if any, and the
    /// harness stays free. On a virtual machine a wake-up across cores can cost several
    /// times one on the same core, and so can a hop. With `--target compose`: every unit's
    /// (and sidecar's) container gets them as its cpuset (`docker run --cpuset-cpus`).
    #[arg(long, value_name = "CORES", value_parser = unit_cores_arg)]
    pub unit_cpus: Option<UnitCores>,
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
                sidecar_proxy: None,
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
    /// Build that image now from grainbench-unit (needs Docker; nothing is pulled).
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
