//! `--unit-cpus` on real processes: every unit process, every thread it makes and every
//! sidecar runs only on the cores given, while the harness stays free; and nothing is left
//! behind.

use crate::common::*;
use grainbench::launch::cores::{allowed_cores, UnitCores};
use grainbench::launch::{self, LaunchOptions};
use grainbench::plan::{self, Architecture, Mesh};
use grainbench::scenario;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn units_and_sidecars_confined_to_a_core_run_only_there() {
    let source = scenario::load(&fixture("tiny.toml")).unwrap();
    let allowed = allowed_cores().unwrap();
    let last = *allowed.last().unwrap();
    let meshes = match haproxy_or_skip() {
        true => vec![Mesh::None, Mesh::Sidecar],
        false => vec![Mesh::None],
    };
    for mesh in meshes {
        let run_id = unique_run_id("unit-cores");
        let mut options = LaunchOptions::new(unit_binary(), run_id.clone(), 1.0).meshed(mesh);
        options.unit_cores = Some(UnitCores::one(last));
        let deployment = plan::plan(&source.scenario, &Architecture::Nano)
            .unwrap()
            .meshed(mesh)
            .unwrap();
        let live = launch::launch(&deployment, &options).await.unwrap();
        let units = live.units.iter().map(|u| (u.name.clone(), u.pid));
        let processes: Vec<(String, u32)> = units.chain(live.sidecar_pids()).collect();
        assert_eq!(
            processes.len(),
            live.units.len() * (1 + usize::from(mesh == Mesh::Sidecar))
        );
        for (name, pid) in processes {
            let threads = cores_of_threads(pid);
            assert!(
                !threads.is_empty() && threads.iter().all(|c| *c == last.to_string()),
                "{name} ({mesh:?}): {threads:?}"
            );
        }
        assert_eq!(allowed_cores().unwrap(), allowed, "the harness stays free");
        live.shutdown().await;
        assert!(wait_for_no_processes(&run_id, Duration::from_secs(10)).is_empty());
    }
}

/// The unit a run's bare hop is measured against runs on the cores the run's units are
/// given, so the "× bare hop" ratio compares like with like (it ran wherever the scheduler
/// put it before).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bare_hops_unit_runs_on_the_units_cores() {
    let last = *allowed_cores().unwrap().last().unwrap();
    let run_id = unique_run_id("ping-cores");
    let cores = UnitCores::one(last);
    let live = grainbench::deploy::probe::launch_ping(&unit_binary(), &run_id, Some(&cores))
        .await
        .unwrap();
    let threads = cores_of_threads(live.units[0].pid);
    assert!(
        !threads.is_empty() && threads.iter().all(|c| *c == last.to_string()),
        "{threads:?}"
    );
    live.shutdown().await;
    assert!(wait_for_no_processes(&run_id, Duration::from_secs(10)).is_empty());
}

/// The cores each load thread of this process may run on, by thread name.
fn load_threads_cores() -> Vec<(String, String)> {
    let tasks = std::fs::read_dir("/proc/self/task").unwrap();
    tasks
        .filter_map(|task| {
            let path = task.unwrap().path();
            let name = std::fs::read_to_string(path.join("comm")).ok()?;
            let name = name.trim().to_string();
            name.starts_with("grainbench-load")
                .then(|| (name, cores_of_task(&path)))
        })
        .collect()
}

/// With the units confined to a core, the driver's load threads (both of a two-thread
/// step) run on the cores left, so they never compete with the units for theirs (they
/// ran anywhere, the units' core included, and a load thread spinning before its sends
/// there fell behind its schedule as the units slowed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_load_threads_run_on_the_cores_the_units_leave() {
    let allowed = allowed_cores().unwrap();
    let Some(&last) = allowed.last().filter(|_| allowed.len() > 1) else {
        eprintln!("skipped: one core, none left to the driver");
        return;
    };
    let units = UnitCores::one(last);
    let rest = units.rest().expect("cores are left");
    let source = scenario::load(&fixture("tiny.toml")).unwrap();
    let run_id = unique_run_id("load-cores");
    let mut options = LaunchOptions::new(unit_binary(), run_id.clone(), 1.0);
    options.unit_cores = Some(units);
    let deployment = plan::plan(&source.scenario, &Architecture::Monolith).unwrap();
    let live = launch::launch(&deployment, &options).await.unwrap();
    let mut config = open_loop(100, 100, 400, 1_000);
    config.threads = 2;
    config.load_cores = Some(rest.clone());
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let progress: grainbench::driver::Progress = {
        let seen = seen.clone();
        Box::new(move |into| {
            let mut seen = seen.lock().unwrap();
            if seen.is_empty() && into > Duration::from_millis(200) {
                *seen = load_threads_cores();
            }
        })
    };
    let generator = grainbench::driver::requests::RequestGen::new(&source.scenario, 1);
    let step = grainbench::driver::run_step(
        &targets(&live, &source.scenario),
        generator,
        &config,
        Some(progress),
        &tokio_util::sync::CancellationToken::new(),
    )
    .await
    .unwrap();
    live.shutdown().await;
    assert!(step.overall.ok > 0);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "both load threads seen: {seen:?}");
    for (name, cores) in seen {
        assert_eq!(cores, rest.to_string(), "{name}");
    }
    assert_eq!(allowed_cores().unwrap(), allowed, "the harness stays free");
    assert!(wait_for_no_processes(&run_id, Duration::from_secs(10)).is_empty());
}
