//! `run`'s arguments, and how they become the library's [`RunOptions`] in one place.

use super::values::*;
use super::{DeployArgs, PlacementArgs};
use clap::Args;
use grainbench::plan::{Architecture, SecurityMode, Series};
use grainbench::report::gate::Threshold;
use grainbench::run::{LoadMode, RedeployPolicy, RunOptions, SweepMax, SweepRequest};
use grainbench::scenario::fault::Fault;
use grainbench::scenario::limits::MAX_RATE;
use std::path::PathBuf;
use std::time::Duration;

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
        options.unit_cores = self.placement.unit_cpus.clone();
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
