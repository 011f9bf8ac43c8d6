//! `grainbench export`: Kubernetes manifests read back into k8s-openapi's types hold one
//! Deployment and one Service per unit, with the plan's replicas and a readiness probe;
//! and the units of a compose export, started as containers from its files alone (no
//! harness), answer with the plan's hops.

mod common;

use common::*;
use grainbench::export::{dns_name, Export, Format};
use grainbench::launch::container::{self, ContainerOptions, ContainerRun};
use grainbench::plan::{self, Architecture};
use grainbench::scenario;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use std::collections::BTreeSet;

fn export<'a>(
    scenario: &'a grainbench::scenario::Scenario,
    plan: &'a grainbench::plan::Deployment,
    image: &str,
) -> Export<'a> {
    Export {
        scenario,
        plan,
        image: image.to_string(),
        resilience: scenario.resilience.clone(),
        work_iterations_per_us: 100.0,
        measured: None,
    }
}

#[test]
fn kubernetes_manifests_read_back_as_one_deployment_and_service_per_unit() {
    let mut source = scenario::load(
        &std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios/checkout.toml"),
    )
    .unwrap();
    for service in &mut source.scenario.services {
        if service.name == "catalogue" {
            service.replicas = 3;
        }
    }
    let plan = plan::plan(&source.scenario, &Architecture::Micro).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let written = export(&source.scenario, &plan, "grainbench-unit:test")
        .write(Format::Kubernetes, dir.path())
        .unwrap();
    let (mut deployments, mut services, mut maps) = (Vec::new(), Vec::new(), Vec::new());
    for file in &written {
        let text = std::fs::read_to_string(file).unwrap();
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        match value["kind"].as_str() {
            Some("Deployment") => {
                deployments.push(serde_json::from_str::<Deployment>(&text).unwrap())
            }
            Some("Service") => services.push(serde_json::from_str::<Service>(&text).unwrap()),
            Some("ConfigMap") => maps.push(serde_json::from_str::<ConfigMap>(&text).unwrap()),
            other => panic!("{}: unexpected kind {other:?}", file.display()),
        }
    }
    let units: BTreeSet<String> = plan.units.iter().map(|u| dns_name(&u.name)).collect();
    let names = |items: Vec<Option<String>>| items.into_iter().flatten().collect::<BTreeSet<_>>();
    assert_eq!(
        names(
            deployments
                .iter()
                .map(|d| d.metadata.name.clone())
                .collect()
        ),
        units
    );
    assert_eq!(
        names(services.iter().map(|s| s.metadata.name.clone()).collect()),
        units
    );
    assert_eq!(
        maps.len(),
        1,
        "one ConfigMap with the routes and every spec"
    );
    let data = maps[0].data.as_ref().unwrap();
    assert!(data.contains_key("routes.json"));
    for unit in &units {
        assert!(data.contains_key(&format!("spec-{unit}.json")), "{unit}");
    }
    for d in &deployments {
        let spec = d.spec.as_ref().unwrap();
        let name = d.metadata.name.as_deref().unwrap();
        let planned = plan
            .units
            .iter()
            .find(|u| dns_name(&u.name) == name)
            .unwrap();
        assert_eq!(spec.replicas, Some(planned.replicas as i32), "{name}");
        let pod = spec.template.spec.as_ref().unwrap();
        let probe = pod.containers[0].readiness_probe.as_ref().unwrap();
        assert_eq!(
            probe.http_get.as_ref().unwrap().path.as_deref(),
            Some("/health")
        );
    }
    // A replicated service keeps its data in a state unit, exported like any unit.
    assert!(units.contains("state-catalogue"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compose_export_runs_from_its_files_alone() {
    if !docker_or_skip() {
        return;
    }
    let source = scenario::load(&fixture("tiny.toml")).unwrap();
    let plan = plan::plan(&source.scenario, &Architecture::Micro).unwrap();
    let run_id = unique_run_id("export");
    // The image and a network, as a run would make them (removed when dropped).
    let run = ContainerRun::prepare(
        &grainbench_binary(),
        &run_id,
        &ContainerOptions {
            remove_image: true,
            ..Default::default()
        },
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    export(&source.scenario, &plan, &run.target.image)
        .write(Format::Compose, dir.path())
        .unwrap();
    let compose: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("compose.json")).unwrap())
            .unwrap();
    let config = dir.path().join("config");
    let label = format!("{}={run_id}", container::RUN_LABEL);
    // What `docker compose up` does with the file: one container per service, named as
    // the service, the config mounted, the entry unit published on 127.0.0.1.
    for (name, service) in compose["services"].as_object().unwrap() {
        let mut args = vec![
            "run".to_string(),
            "-d".into(),
            "--name".into(),
            name.clone(),
            "--network".into(),
            run.target.network.clone(),
            "--label".into(),
            label.clone(),
            "-v".into(),
            format!("{}:/config:ro", config.display()),
        ];
        if let Some(ports) = service["ports"].as_array() {
            args.extend(["-p".to_string(), ports[0].as_str().unwrap().to_string()]);
        }
        args.push(service["image"].as_str().unwrap().to_string());
        args.extend(
            service["command"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c.as_str().unwrap().to_string()),
        );
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        container::docker(&args).unwrap();
    }
    let entry = dns_name(&plan.units[plan.unit_of("buy").unwrap()].name);
    let addr = run.target.published(&entry).unwrap();
    let client = grain_runtime::client::HttpClient::new(std::time::Duration::from_secs(5));
    let body = bytes::Bytes::from(grain_runtime::wire::encode_request(
        &std::collections::BTreeMap::from([("user".to_string(), 3), ("order".to_string(), 1)]),
        300,
    ));
    let mut reply = None;
    for _ in 0..100 {
        match client.post(&addr, "/op/buy", body.clone()).await {
            Ok(answer) => {
                reply = Some(answer);
                break;
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
        }
    }
    let reply = reply.expect("the exported units answer");
    let mut hops = reply.downstream_hops;
    hops.service += 1;
    assert_eq!(
        hops, plan.static_hops["buy"],
        "the plan's hops, by service name"
    );
    drop(run);
    let filter = format!("label={label}");
    assert!(container::docker(&["ps", "-aq", "--filter", &filter])
        .unwrap()
        .is_empty());
}
