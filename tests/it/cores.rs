//! `--unit-cpus` on real processes: every unit process, every thread it makes and every
//! sidecar runs only on the cores given, while the harness stays free; and nothing is left
//! behind.

use crate::common::*;
use grainbench::launch::cores::{allowed_cores, UnitCores};
use grainbench::launch::{self, LaunchOptions};
use grainbench::plan::{self, Architecture, Mesh};
use grainbench::scenario;
use std::time::Duration;

/// The cores each thread of process `pid` may run on (`Cpus_allowed_list`).
fn cores_of_threads(pid: u32) -> Vec<String> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).unwrap();
    tasks
        .map(|task| {
            let status = std::fs::read_to_string(task.unwrap().path().join("status")).unwrap();
            let line = status
                .lines()
                .find(|l| l.starts_with("Cpus_allowed_list:"))
                .unwrap();
            line.split_whitespace().nth(1).unwrap().to_string()
        })
        .collect()
}

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
