//! Every command but `run`, each a thin call into the library: load what it names, call
//! the library once, print what came back.

use crate::cli::{CalibrateArgs, ExportArgs, UpArgs};
use crate::terminal::{self, note, say};
use crate::{bad_input, Failure};
use anyhow::Context as _;
use grainbench::deploy::DeployOverrides;
use grainbench::plan::{Architecture, Series};
use grainbench::report::gate::Threshold;
use grainbench::results::RunResults;
use grainbench::scenario::{self, ScenarioSource};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub(crate) fn read_results(path: &Path) -> Result<RunResults, Failure> {
    RunResults::read(path).map_err(|e| bad_input(e.into()))
}

/// Checks `--fail-if` thresholds, saying each broken one.
pub(crate) fn gate(
    results: &RunResults,
    baseline: Option<&RunResults>,
    thresholds: &[Threshold],
) -> Result<(), Failure> {
    let analysis = grainbench::analysis::Analysis::of(results, baseline);
    let broken = grainbench::report::gate::violations(&analysis, thresholds);
    for violation in &broken {
        note!("threshold broken: {violation}");
    }
    broken.is_empty().then_some(()).ok_or(Failure::Threshold)
}

/// Loads a scenario; its errors (every issue, located) are printed as they are.
pub(crate) fn load(path: &Path) -> Result<ScenarioSource, Failure> {
    scenario::load(path).map_err(|error| {
        note!("{error}");
        Failure::BadInput(None)
    })
}

/// The units' binary (`grainbench-unit`, beside this one, from the same sources).
pub(crate) fn unit_binary() -> anyhow::Result<PathBuf> {
    let harness = std::env::current_exe().context("cannot find the grainbench binary")?;
    Ok(grainbench::unit::binary_beside(&harness)?)
}

pub(crate) fn validate(paths: &[PathBuf]) -> Result<(), Failure> {
    let mut ok = true;
    for path in paths {
        match load(path) {
            Ok(source) => say!("{}: ok — {}", path.display(), source.scenario.outline()),
            Err(_) => ok = false,
        }
    }
    ok.then_some(()).ok_or(Failure::BadInput(None))
}

pub(crate) fn new(name: &str, dir: &Path) -> Result<(), Failure> {
    let path = scenario::write_new(dir, name).map_err(|e| bad_input(e.into()))?;
    let me = invoked_as();
    say!(
        "wrote {}\nnext: {me} validate {0} && {me} run {0} --quick",
        path.display()
    );
    Ok(())
}

pub(crate) fn schema() -> Result<(), Failure> {
    let schema =
        serde_json::to_string_pretty(&scenario::json_schema()).map_err(anyhow::Error::from)?;
    say!("{schema}");
    Ok(())
}

/// `report`: the page of saved results.
pub(crate) struct PageRequest {
    pub results: PathBuf,
    pub baseline: Option<PathBuf>,
    pub out: Option<PathBuf>,
    pub p99_budget: Option<Duration>,
}

pub(crate) fn report(
    request: &PageRequest,
    fail_if: &[Threshold],
    verbose: bool,
) -> Result<(), Failure> {
    let mut current = read_results(&request.results)?;
    if let Some(budget) = request.p99_budget {
        current.meta.p99_budget_us = Some(budget.as_secs_f64() * 1e6);
    }
    let old = request.baseline.as_deref().map(read_results).transpose()?;
    let out = (request.out.clone()).unwrap_or_else(|| request.results.with_file_name("index.html"));
    let path = grainbench::report::write_html(&current, old.as_ref(), &out)
        .map_err(anyhow::Error::from)?;
    terminal::print_summary(&current, old.as_ref(), verbose);
    say!("report: {}", path.display());
    gate(&current, old.as_ref(), fail_if)
}

pub(crate) fn plan(
    path: &Path,
    arch: &Architecture,
    sweep: Option<u32>,
    sweep_by: Option<Series>,
) -> Result<(), Failure> {
    let source = load(path)?;
    let described = match sweep {
        Some(count) => {
            let series = sweep_by.map_or_else(|| Series::ALL.to_vec(), |s| vec![s]);
            let count = (count > 0).then_some(count as usize);
            grainbench::plan::describe_sweep(&source.scenario, &series, count)
        }
        None => grainbench::plan::describe(&source.scenario, arch),
    };
    print!("{}", described.map_err(|e| bad_input(e.into()))?);
    Ok(())
}

/// `up` and `export` deploy one transport and one mesh mode: several given is a usage
/// error; `export` writes no sidecars.
fn one_transport(command: &str, overrides: &DeployOverrides) -> Result<(), Failure> {
    if overrides.transports.len() > 1 {
        let names: Vec<&str> = overrides.transports.iter().map(|t| t.name()).collect();
        return Err(bad_input(anyhow::anyhow!(
            "`{command}` deploys one transport; --transport gave {}: give one",
            names.join(", ")
        )));
    }
    if overrides.meshes.len() > 1 {
        let names: Vec<&str> = overrides.meshes.iter().map(|m| m.name()).collect();
        return Err(bad_input(anyhow::anyhow!(
            "`{command}` deploys one mesh mode; --mesh gave {}: give one",
            names.join(", ")
        )));
    }
    if command == "export" && overrides.meshes.contains(&grainbench::plan::Mesh::Sidecar) {
        return Err(bad_input(anyhow::anyhow!(
            "`export` writes no sidecar proxies: --mesh sidecar is for `run` and `up` (a mesh in Kubernetes injects its own)"
        )));
    }
    Ok(())
}

pub(crate) async fn up(args: &UpArgs) -> Result<(), Failure> {
    use grainbench::up::{Up, UpError};
    one_transport("up", &args.request().overrides)?;
    let source = load(&args.scenario)?;
    let up = Up::start(&source, &args.request(), unit_binary()?)
        .await
        .map_err(|error| match error {
            UpError::Plan(_) => bad_input(error.into()),
            error => Failure::Run(Some(error.into())),
        })?;
    print!("{}", grainbench::up::describe(&source, &up.live));
    say!("Ctrl-C to stop.");
    let _ = tokio::signal::ctrl_c().await;
    up.stop().await;
    Ok(())
}

pub(crate) fn export(args: &ExportArgs) -> Result<(), Failure> {
    let request = args.request();
    one_transport("export", &request.overrides)?;
    let source = load(&args.scenario)?;
    let exported = grainbench::export::export(&source.scenario, &request, &unit_binary()?)
        .map_err(|error| match error.is_bad_input() {
            true => bad_input(error.into()),
            false => Failure::Run(Some(error.into())),
        })?;
    if let Some(bytes) = exported.built_bytes {
        say!("built {} ({bytes} bytes)", exported.image);
    }
    if let (true, Some(path)) = (exported.no_measured_run, &request.results) {
        note!(
            "note: {} has no plaintext run of {}: no resource requests",
            path.display(),
            request.cut
        );
    }
    say!(
        "{} files under {} for {} as {} ({}):",
        exported.files.len(),
        request.dir.display(),
        source.scenario.name,
        request.cut,
        exported.image
    );
    for file in &exported.files {
        say!("  {}", file.display());
    }
    Ok(())
}

pub(crate) async fn calibrate(args: &CalibrateArgs) -> Result<(), Failure> {
    let options = args.options(unit_binary()?);
    let calibration = grainbench::calibrate::calibrate(&options)
        .await
        .map_err(anyhow::Error::from)?;
    print!("{}", grainbench::calibrate::render(&calibration));
    if let Some(path) = &args.json {
        let json = serde_json::to_vec_pretty(&calibration).map_err(anyhow::Error::from)?;
        std::fs::write(path, json).with_context(|| format!("cannot write {}", path.display()))?;
    }
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
