//! `grainbench up`: deploy one architecture and keep it running for outside tools (wrk, k6,
//! curl), with each entrypoint's URL and an example request.

use crate::driver::requests::RequestGen;
use crate::launch::{self, LaunchError, LaunchOptions, LiveDeployment};
use crate::plan::Deployment;
use crate::scenario::ScenarioSource;
use grain_runtime::network::NetworkModel;
use std::fmt::Write as _;
use std::path::PathBuf;

/// Deploys `deployment`, a plan of `source`, with `network` between its units (the
/// scenario's when `None`); the caller stops it with [`LiveDeployment::shutdown`].
pub async fn start(
    source: &ScenarioSource,
    deployment: &Deployment,
    network: Option<NetworkModel>,
    unit_binary: PathBuf,
) -> Result<LiveDeployment, LaunchError> {
    let options = LaunchOptions::new(
        unit_binary,
        format!("up-{}", std::process::id()),
        grain_runtime::work::measure_iterations_per_us(),
    )
    .with_network(network.unwrap_or_else(|| source.scenario.network.clone()));
    launch::launch(deployment, &options).await
}

/// What `up` prints once the units are ready: how many, the network between them, and
/// each entrypoint's URL with an example `curl`.
pub fn describe(source: &ScenarioSource, live: &LiveDeployment) -> String {
    let scenario = &source.scenario;
    let mut out = format!(
        "{} as {}: {} units ready in {:.1} ms\n",
        scenario.name,
        live.plan.architecture,
        live.units.len(),
        live.cold_start.as_secs_f64() * 1e3
    );
    let network = live.network();
    let _ = writeln!(
        out,
        "network between units: {}: {} (your own requests to the entry unit are not delayed)",
        network.name,
        network.describe()
    );
    let params = RequestGen::new(scenario, scenario.seed)
        .next_request()
        .params;
    let example =
        String::from_utf8_lossy(&grain_runtime::wire::encode_request(&params, 0)).into_owned();
    for entry in &scenario.entrypoints {
        let addr = live.addr_of(&entry.op).unwrap_or_default();
        let _ = writeln!(out, "  {}  POST http://{addr}/op/{}", entry.op, entry.op);
        let _ = writeln!(
            out,
            "      curl -s -D- -X POST http://{addr}/op/{} -H 'content-type: application/json' -d '{example}'",
            entry.op
        );
    }
    out
}
