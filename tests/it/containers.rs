//! Units as containers (`--target compose`) on a real Docker daemon: micro and monolith of
//! a small scenario run as containers built offline from grainbench-unit, agree on every
//! digest, make exactly the plan's hops over the run's bridge network, and leave no
//! container, network or (asked to remove it) image behind. Where Docker cannot run, the
//! test says "skipped: no Docker" (CI installs and starts it, so there it runs).
// The Docker tests hold the Docker lock (`docker_or_skip`) for their whole length, awaits
// included: serializing them is its purpose.
#![allow(clippy::await_holding_lock)]

use crate::common::*;
use grainbench::deploy::DeployTarget;
use grainbench::launch::container::{self, ContainerOptions, RUN_LABEL};
use grainbench::plan::Architecture;
use grainbench::scenario;

fn docker_lines(args: &[&str]) -> Vec<String> {
    container::docker(args)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .filter(|l| !l.trim().is_empty())
        .collect()
}

/// No container, network or image of the run `filter` selects is left.
fn assert_nothing_left(filter: &str) {
    for what in [
        &["ps", "-aq"][..],
        &["network", "ls", "-q"],
        &["images", "-q"],
    ] {
        let mut args = what.to_vec();
        args.extend(["--filter", filter]);
        assert_eq!(docker_lines(&args), Vec::<String>::new(), "{what:?} left");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn micro_and_monolith_run_as_containers_and_leave_nothing_behind() {
    let Some(_docker) = docker_or_skip() else {
        return;
    };
    let source = scenario::load(&fixture("tiny.toml")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut options = short_run_options("containers", &dir.path().join("out"));
    options.architectures = vec![Architecture::Micro, Architecture::Monolith];
    options.target = DeployTarget::Compose(ContainerOptions {
        cpus: None,
        memory: Some("256m".into()),
        remove_image: true,
        sidecar_proxy: None,
    });
    let run_id = options.run_id.clone();
    let results = run_ok(&source, &options).await;

    let info = results
        .meta
        .containers
        .as_ref()
        .expect("a container run says so");
    assert!(info.image.starts_with("grainbench-unit:"), "{}", info.image);
    assert!(info.image_bytes > 0);
    let eq = results.equivalence.as_ref().expect("equivalence ran");
    let mut agreed = eq.agreed.clone();
    agreed.sort();
    assert_eq!(agreed, ["micro", "monolith"], "identical digests");
    for arch in &results.architectures {
        let deploy = arch.deploy.as_ref().expect("deployed");
        assert_eq!(
            deploy.artifact_bytes_per_unit, info.image_bytes,
            "the image is the artifact"
        );
        assert!(
            deploy.idle_rss_bytes.values().all(|&rss| rss > 0),
            "memory read from each container's process: {:?}",
            deploy.idle_rss_bytes
        );
        for step in &arch.steps {
            assert!(
                step.ok > 0 && step.error_total == 0,
                "{}: {:?}",
                arch.architecture,
                step.errors
            );
            for entry in &step.entrypoints {
                assert!(
                    entry.hops_match_static,
                    "{} {}: measured {:?} vs static {:?}",
                    arch.architecture, entry.entrypoint, entry.hops, entry.static_hops
                );
            }
        }
    }
    let label = format!("label={RUN_LABEL}={run_id}");
    assert_eq!(
        docker_lines(&["ps", "-aq", "--filter", &label]),
        Vec::<String>::new(),
        "no container left"
    );
    assert_eq!(
        docker_lines(&["network", "ls", "-q", "--filter", &label]),
        Vec::<String>::new(),
        "no network left"
    );
    assert_eq!(
        docker_lines(&["images", "-q", &info.image]),
        Vec::<String>::new(),
        "the image was removed as asked"
    );
}

/// Containers reach each other by name, so under TLS each unit's certificate must name its
/// container too (it named only the run's own names at first: every call between
/// containers failed its handshake).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secured_hops_between_containers_verify_by_container_name() {
    let Some(_docker) = docker_or_skip() else {
        return;
    };
    let source = scenario::load(&fixture("tiny.toml")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut options = short_run_options("containers-mtls", &dir.path().join("out"));
    options.architectures = vec![Architecture::Micro];
    options.deploy.security = vec![grain_runtime::security::SecurityMode::Mtls];
    // Its image goes at the end (the default kept a 278 MB image after every test run).
    options.target = DeployTarget::Compose(ContainerOptions {
        remove_image: true,
        ..ContainerOptions::default()
    });
    let results = run_ok(&source, &options).await;
    let micro = &results.architectures[0];
    assert_eq!(micro.label(), "micro+mtls");
    let step = &micro.steps[0];
    assert!(step.ok > 0 && step.error_total == 0, "{:?}", step.errors);
}

/// Two runs of one binary share the image's name but each runs its own tag of its own
/// build: one run removing the image (`--remove-image`) leaves the other's in place, and
/// the other's containers still start from it (`--pull never`: nothing is fetched).
#[test]
fn one_run_removing_the_image_leaves_another_runs_image() {
    let Some(_docker) = docker_or_skip() else {
        return;
    };
    let remove = ContainerOptions {
        remove_image: true,
        ..ContainerOptions::default()
    };
    let a =
        container::ContainerRun::prepare(&unit_binary(), &unique_run_id("img-a"), &remove).unwrap();
    let b =
        container::ContainerRun::prepare(&unit_binary(), &unique_run_id("img-b"), &remove).unwrap();
    assert_eq!(a.target.image, b.target.image, "one name for one build");
    assert_ne!(
        a.target.run_image, b.target.run_image,
        "each run its own tag"
    );
    let b_image = b.target.run_image.clone();
    drop(a);
    assert!(
        container::docker(&["image", "inspect", &b_image]).is_ok(),
        "the other run's image is still there"
    );
    let mut args: Vec<String> = vec!["run".into(), "--rm".into(), "--pull".into(), "never".into()];
    args.push(b_image.clone());
    args.push("--help".into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    container::docker(&args).expect("its containers still start");
    drop(b);
    assert!(
        container::docker(&["image", "inspect", &b_image]).is_err(),
        "the last run removes it"
    );
}

/// A second Ctrl-C quits at once but still removes the run's containers and network (it
/// called exit(130) and skipped every cleanup: the network, and a frozen container, stayed).
#[test]
fn a_second_ctrl_c_still_removes_the_runs_containers_and_network() {
    let Some(_docker) = docker_or_skip() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let run_id = unique_run_id("double-sigint-compose");
    let (mut child, filter) = start_compose_run(dir.path(), &run_id, &[], 2);
    // SAFETY: signals our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    std::thread::sleep(std::time::Duration::from_millis(50));
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    assert_eq!(child.wait().unwrap().code(), Some(130));
    assert!(
        docker_lines(&["ps", "-aq", "--filter", &filter]).is_empty(),
        "containers left"
    );
    assert!(
        docker_lines(&["network", "ls", "-q", "--filter", &filter]).is_empty(),
        "network left"
    );
    assert!(
        docker_lines(&["images", "-q", "--filter", &filter]).is_empty(),
        "image left (--remove-image was asked)"
    );
}

/// Behind sidecars as containers (the pod pattern: each unit joins its sidecar
/// container's network namespace), under mutual TLS held by the sidecars, nano and micro
/// agree on every digest and make the plan's hops with no error; each unit process has
/// its sidecar, measured apart from it; the live redeploy through a pod (the replacement
/// on the pod's other port, the sidecar repointed) fails nothing; and nothing is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sidecar_containers_share_their_units_pods_and_leave_nothing_behind() {
    let Some(_docker) = docker_or_skip() else {
        return;
    };
    if !haproxy_or_skip() {
        return;
    }
    let source = scenario::load(&fixture("tiny.toml")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut options = short_run_options("pods", &dir.path().join("out"));
    options.architectures = vec![Architecture::Nano, Architecture::Micro];
    options.deploy.meshes = vec![grainbench::plan::Mesh::Sidecar];
    options.deploy.security = vec![grain_runtime::security::SecurityMode::Mtls];
    options.redeploy = grainbench::run::RedeployPolicy::FirstEntrypoint;
    options.target = DeployTarget::Compose(ContainerOptions {
        remove_image: true,
        ..ContainerOptions::default()
    });
    let run_id = options.run_id.clone();
    let results = run_ok(&source, &options).await;
    let labels: Vec<String> = results.architectures.iter().map(|a| a.label()).collect();
    assert_eq!(labels, ["nano+mtls+sidecar", "micro+mtls+sidecar"]);
    assert_same_business_and_hops(&results);
    let info = results.meta.containers.as_ref().unwrap();
    let sidecar_image = info.sidecar_image_bytes.expect("a sidecar image was built");
    for arch in &results.architectures {
        let deploy = arch.deploy.as_ref().unwrap();
        assert_eq!(deploy.sidecars, Some(deploy.processes), "{}", arch.label());
        // Each unit ships its image and its sidecar's.
        assert_eq!(
            deploy.artifact_bytes_per_unit,
            info.image_bytes + sidecar_image
        );
        assert!(deploy.sidecar_idle_rss_bytes_total.unwrap() > 0);
        let redeploy = deploy.redeploy.as_ref().expect("a redeploy ran");
        assert_eq!(redeploy.window_failed, 0, "{}: {redeploy:?}", arch.label());
        for step in &arch.steps {
            let sidecars = step.sidecars.as_ref().expect("sidecars sampled");
            assert_eq!(sidecars.peak_rss_bytes.len(), deploy.processes);
            assert!(sidecars.peak_rss_bytes.values().all(|&rss| rss > 0));
        }
    }
    assert_nothing_left(&format!("label={RUN_LABEL}={run_id}"));
}

/// A harness killed with SIGKILL behind sidecar containers: every container goes (the
/// `docker run` clients die with the harness, the supervisors' stdin closes, they stop
/// their proxies and exit, and `--rm` removes them), HAProxy never watching stdin itself.
#[test]
fn sigkill_of_the_harness_leaves_no_sidecar_container_behind() {
    let Some(_docker) = docker_or_skip() else {
        return;
    };
    if !haproxy_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let run_id = unique_run_id("pods-sigkill");
    // Micro's two units and their two sidecars, running.
    let (mut child, filter) = start_compose_run(dir.path(), &run_id, &["--mesh", "sidecar"], 4);
    child.kill().unwrap(); // SIGKILL: no chance to clean up
    child.wait().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut left = docker_lines(&["ps", "-aq", "--filter", &filter]);
    while !left.is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(200));
        left = docker_lines(&["ps", "-aq", "--filter", &filter]);
    }
    // What a killed harness cannot remove itself: its network (swept by the next run)
    // and its images; removed here so the test leaves nothing.
    let network = docker_lines(&["network", "ls", "-q", "--filter", &filter]);
    container::remove_run(&run_id, network.first().map(String::as_str));
    for image in docker_lines(&["images", "-q", "--filter", &filter]) {
        let _ = container::docker(&["rmi", "-f", &image]);
    }
    assert_eq!(
        left,
        Vec::<String>::new(),
        "containers outlived the harness"
    );
}

/// `--unit-cpus` with containers: every unit's container (and, behind sidecars, every
/// sidecar's) gets the cores as its cpuset, and every thread of its process runs only there;
/// one Ctrl-C then leaves no container, network or image (the flag was refused with
/// `--target` before).
#[test]
fn unit_containers_given_cores_run_only_there() {
    let Some(_docker) = docker_or_skip() else {
        return;
    };
    let last = grainbench::launch::cores::allowed_cores()
        .unwrap()
        .last()
        .unwrap()
        .to_string();
    let mut extra = vec!["--unit-cpus", last.as_str()];
    // Micro's two units, and their two sidecars where HAProxy is at hand.
    let containers = match haproxy_or_skip() {
        true => {
            extra.extend(["--mesh", "sidecar"]);
            4
        }
        false => 2,
    };
    let dir = tempfile::tempdir().unwrap();
    let run_id = unique_run_id("cores-compose");
    let (mut child, filter) = start_compose_run(dir.path(), &run_id, &extra, containers);
    let running = docker_lines(&["ps", "-q", "--filter", &filter]);
    assert_eq!(running.len(), containers, "{running:?}");
    for id in &running {
        let inspected = docker_lines(&[
            "inspect",
            "--format",
            "{{.Name}} {{.HostConfig.CpusetCpus}} {{.State.Pid}}",
            id,
        ]);
        let fields: Vec<&str> = inspected[0].split_whitespace().collect();
        assert_eq!(fields[1], last, "{}: the container's cpuset", fields[0]);
        let threads = cores_of_threads(fields[2].parse().unwrap());
        assert!(
            !threads.is_empty() && threads.iter().all(|c| *c == last),
            "{}: {threads:?}",
            fields[0]
        );
    }
    // SAFETY: signals our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    child.wait().unwrap();
    assert_nothing_left(&filter);
}

/// Starts a CLI run of micro as containers (`extra` arguments added) with 60-second steps,
/// and waits until `containers` of its containers run; the run's label filter with it.
fn start_compose_run(
    dir: &std::path::Path,
    run_id: &str,
    extra: &[&str],
    containers: usize,
) -> (std::process::Child, String) {
    let (long, _) = long_tiny(dir);
    let mut child = std::process::Command::new(grainbench_binary())
        .args([
            "run",
            "--arch",
            "micro",
            "--cold-starts",
            "1",
            "--no-redeploy",
        ])
        .args(["--target", "compose", "--remove-image"])
        .args(extra)
        .args(["--run-id", run_id, "--out"])
        .arg(dir.join("results"))
        .arg(&long)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let filter = format!("label={RUN_LABEL}={run_id}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while docker_lines(&["ps", "-q", "--filter", &filter]).len() < containers {
        if std::time::Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            container::remove_run(run_id, None);
            panic!("the run's containers never came up");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    (child, filter)
}
