//! `cargo bench`: every scenario in `scenarios/` × every architecture × every entrypoint,
//! as criterion benchmarks with ids `scenario/entrypoint/architecture` (so criterion's report
//! puts the three architectures of one entrypoint side by side, and its baselines compare
//! across commits). Units are real processes, deployed once per scenario × architecture;
//! each iteration is one request, one at a time. Afterwards the grainbench comparison
//! (open-loop steps, results.json and the HTML report) of each scenario is written under
//! `reports/bench/<scenario>/`.
//!
//! Every hop crosses the scenario's `[network]` (raw loopback when it has none), the
//! benchmark's own request included.
//!
//! `GRAINBENCH_BENCH_QUICK=1` shortens everything (for CI or a smoke test).

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion};
use grain_runtime::client::HttpClient;
use grain_runtime::wire::{encode_request, op_path};
use grainbench::deploy::{DeployEnv, DeploySpec};
use grainbench::driver::requests::RequestGen;
use grainbench::launch::LiveDeployment;
use grainbench::plan::{Architecture, SecurityMode};
use grainbench::run::{self, RunOptions, RunReport, StepStart};
use grainbench::scenario::{self, ScenarioSource};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[path = "common/mod.rs"]
mod common;

/// Request bodies cycled through per entrypoint (pre-built so the loop only sends).
const BODIES_PER_ENTRYPOINT: usize = 256;

fn config() -> Criterion {
    common::config(
        [Duration::from_millis(200), Duration::from_millis(500)],
        [Duration::from_secs(1), Duration::from_secs(2)],
    )
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn scenarios() -> Vec<ScenarioSource> {
    let files = scenario::discover(&root().join("scenarios")).expect("scenarios/ is readable");
    files
        .iter()
        .map(|path| scenario::load(path).unwrap_or_else(|error| panic!("{error}")))
        .collect()
}

/// One cut of the scenario, as every command deploys it (plaintext: the bench's client
/// speaks HTTP/1.1 without TLS).
async fn deploy(
    source: &ScenarioSource,
    architecture: Architecture,
    env: &DeployEnv,
) -> LiveDeployment {
    let scenario = Arc::new(source.scenario.clone());
    DeploySpec::new(scenario, &architecture, SecurityMode::None)
        .expect("the cut plans")
        .start(env)
        .await
        .unwrap_or_else(|error| panic!("{}: {architecture}: {error}", source.scenario.name))
}

/// The comparison's progress, one line per step (the bench draws no bars).
struct Lines<'a>(&'a str);

impl RunReport for Lines<'_> {
    fn step_started(&self, step: &StepStart) -> Option<grainbench::driver::Progress> {
        let of = step.steps.map_or(String::new(), |n| format!("/{n}"));
        eprintln!(
            "grainbench comparison of {}: step {}{of}, {} round {}/{}",
            self.0, step.step, step.label, step.round, step.rounds
        );
        None
    }
}

/// Request bodies for `entry`, drawn from the scenario's seeded parameter stream.
fn bodies(source: &ScenarioSource, entry: usize) -> Vec<Bytes> {
    let scenario = &source.scenario;
    let size = scenario
        .operation(&scenario.entrypoints[entry].op)
        .map_or(0, |op| op.request_bytes);
    let mut generator = RequestGen::new(scenario, scenario.seed);
    (0..BODIES_PER_ENTRYPOINT)
        .map(|_| Bytes::from(encode_request(&generator.next_request().params, size)))
        .collect()
}

fn bench_scenario(
    c: &mut Criterion,
    runtime: &tokio::runtime::Runtime,
    source: &ScenarioSource,
    env: &DeployEnv,
) {
    let deployments: Vec<(Architecture, LiveDeployment)> = Architecture::ALL
        .into_iter()
        .map(|arch| {
            let live = runtime.block_on(deploy(source, arch.clone(), env));
            (arch, live)
        })
        .collect();
    // The bench's request to the entry unit is a hop too: it crosses the scenario's network.
    let client =
        HttpClient::new(Duration::from_secs(5)).with_network(source.scenario.network.clone());
    for (index, entry) in source.scenario.entrypoints.iter().enumerate() {
        let bodies = bodies(source, index);
        let path = op_path(&entry.op);
        let mut group = c.benchmark_group(format!("{}/{}", source.scenario.name, entry.op));
        for (arch, live) in &deployments {
            let addr = live
                .endpoint_of(&entry.op)
                .expect("every entrypoint is deployed");
            let next = AtomicUsize::new(0);
            group.bench_function(arch.name(), |b| {
                b.to_async(runtime).iter(|| {
                    let body = bodies[next.fetch_add(1, Ordering::Relaxed) % bodies.len()].clone();
                    let (client, addr, path) = (&client, &addr, &path);
                    async move {
                        client
                            .post(addr, path, body)
                            .await
                            .expect("request succeeds");
                    }
                })
            });
        }
        group.finish();
    }
    for (_, live) in deployments {
        runtime.block_on(live.shutdown());
    }
}

/// The grainbench comparison of one scenario, written under reports/bench/<scenario>/.
fn compare(runtime: &tokio::runtime::Runtime, source: &ScenarioSource, out: &Path) {
    let mut options = RunOptions::new(
        &source.scenario.name,
        PathBuf::from(env!("CARGO_BIN_EXE_grainbench-unit")),
    );
    options.quick = true;
    options.cold_starts = 3;
    options.out_dir = out.to_path_buf();
    if common::quick() {
        options.load =
            run::LoadMode::Rates(source.scenario.load.rates.iter().take(1).copied().collect());
        options.repeat = 2; // the fewest rounds that still give an interval
    }
    let resolved = options
        .resolve(&source.scenario)
        .expect("options fit the scenario");
    let lines = Lines(&source.scenario.name);
    let outcome = runtime.block_on(grainbench::outputs::run_resolved(
        source,
        &resolved,
        None,
        &lines,
        &CancellationToken::new(),
    ));
    match (&outcome.error, &outcome.results_path) {
        (None, Some(path)) => println!(
            "grainbench comparison of {}: {}",
            source.scenario.name,
            path.display()
        ),
        (error, _) => eprintln!(
            "grainbench comparison of {} incomplete: {error:?}",
            source.scenario.name
        ),
    }
}

fn benches(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let env = DeployEnv::new(
        PathBuf::from(env!("CARGO_BIN_EXE_grainbench-unit")),
        run::new_run_id(),
    );
    let sources = scenarios();
    for source in &sources {
        bench_scenario(c, &runtime, source, &env);
    }
    for source in &sources {
        compare(
            &runtime,
            source,
            &root().join("reports/bench").join(&source.scenario.name),
        );
    }
}

criterion_group! {
    name = scenario_benches;
    config = config();
    targets = benches
}
criterion_main!(scenario_benches);
