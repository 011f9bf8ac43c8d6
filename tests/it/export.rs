//! `grainbench export`: Kubernetes manifests read back into k8s-openapi's types hold one
//! Deployment and one Service per unit, with the plan's replicas and a readiness probe;
//! and the units of a compose export, started as containers from its files alone (no
//! harness), answer with the plan's hops.
// The Docker tests hold the Docker lock (`docker_or_skip`) for their whole length, awaits
// included: serializing them is its purpose.
#![allow(clippy::await_holding_lock)]

use crate::common::*;
use grainbench::deploy::DeploySpec;
use grainbench::export::{dns_names, Export, ExportError, Format, CONFIG_MAP_LIMIT};
use grainbench::launch::container::{self, ContainerOptions, ContainerRun};
use grainbench::plan::{self, Architecture};
use grainbench::scenario;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

/// A plan to export with `image`.
struct Exporting {
    spec: DeploySpec,
    image: String,
}

impl Exporting {
    fn write(&self, format: Format, dir: &std::path::Path) -> Result<Vec<PathBuf>, ExportError> {
        let export = Export {
            spec: &self.spec,
            image: self.image.clone(),
            work_iterations_per_us: 100.0,
            measured: None,
        };
        export.write(format, dir)
    }
}

fn export(
    scenario: &grainbench::scenario::Scenario,
    plan: &grainbench::plan::Deployment,
    image: &str,
) -> Exporting {
    Exporting {
        spec: DeploySpec::of_plan(Arc::new(scenario.clone()), plan.clone()),
        image: image.to_string(),
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
    let names = dns_names(plan.units.iter().map(|u| u.name.as_str()));
    let units: BTreeSet<String> = names.iter().cloned().collect();
    let set = |items: Vec<Option<String>>| items.into_iter().flatten().collect::<BTreeSet<_>>();
    assert_eq!(
        set(deployments
            .iter()
            .map(|d| d.metadata.name.clone())
            .collect()),
        units
    );
    assert_eq!(
        set(services.iter().map(|s| s.metadata.name.clone()).collect()),
        units
    );
    assert_eq!(maps.len(), units.len(), "one ConfigMap per unit");
    for map in &maps {
        let data = map.data.as_ref().unwrap();
        assert!(data.contains_key("routes.json"));
        let unit = map
            .metadata
            .name
            .as_deref()
            .unwrap()
            .trim_end_matches("-config");
        assert!(data.contains_key(&format!("spec-{unit}.json")), "{unit}");
        assert!(
            !data["routes.json"].contains("\n  "),
            "compact JSON, not pretty"
        );
    }
    for d in &deployments {
        let spec = d.spec.as_ref().unwrap();
        let name = d.metadata.name.as_deref().unwrap();
        let planned = &plan.units[names.iter().position(|n| n == name).unwrap()];
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

/// Reads every written manifest back as `(kind, JSON)`.
fn manifests(written: &[std::path::PathBuf]) -> Vec<(String, serde_json::Value)> {
    written
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "json"))
        .map(|f| {
            let value: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(f).unwrap()).unwrap();
            (value["kind"].as_str().unwrap_or("").to_string(), value)
        })
        .collect()
}

/// A scenario file from its operations' names: one service each, all called by the first.
fn scenario_of(dir: &std::path::Path, cut: &str, ops: &[&str]) -> scenario::ScenarioSource {
    let mut text = String::from("name = \"names\"\n");
    for (i, op) in ops.iter().enumerate() {
        text += &format!("[[service]]\nname = \"s{i}\"\noperations = [\"{op}\"]\n");
    }
    let calls: Vec<String> = ops[1..]
        .iter()
        .map(|op| format!("{{ op = \"{op}\" }}"))
        .collect();
    text += &format!(
        "[[operation]]\nname = \"{}\"\ncpu_us = 1\ncalls = [{}]\n",
        ops[0],
        calls.join(", ")
    );
    for op in &ops[1..] {
        text += &format!("[[operation]]\nname = \"{op}\"\ncpu_us = 1\n");
    }
    text += &format!(
        "[[entrypoint]]\nop = \"{}\"\nweight = 1\n[[cut]]\nname = \"{cut}\"\nunits = [[\"{}\"]]\n",
        ops[0], ops[0]
    );
    text += "[load]\nrates = [10]\nduration_s = 1\nwarmup_s = 0\n";
    let path = dir.join("names.toml");
    std::fs::write(&path, text).unwrap();
    scenario::load(&path).unwrap()
}

/// `get_item` and `get-item`, `Front` and `front`, two long names sharing their first 63
/// characters, and a cut named `2tier`: every object keeps its own name, each a DNS-1035
/// label, and routes send each operation to the unit that serves it. (Before, one
/// Deployment silently overwrote another and `2tier-…` was refused by `kubectl apply`.)
#[test]
fn colliding_unit_names_get_distinct_dns_names_and_routes_follow_them() {
    let long = "x".repeat(70);
    let (long_a, long_b) = (format!("{long}_a"), format!("{long}_b"));
    let ops = ["get_item", "get-item", "Front", "front", &long_a, &long_b];
    let dir = tempfile::tempdir().unwrap();
    let source = scenario_of(dir.path(), "2tier", &ops);
    let plan = plan::plan(&source.scenario, &Architecture::Nano).unwrap();
    let out = tempfile::tempdir().unwrap();
    let written = export(&source.scenario, &plan, "grainbench-unit:test")
        .write(Format::Kubernetes, out.path())
        .unwrap();
    let on_disk = std::fs::read_dir(out.path()).unwrap().count();
    assert_eq!(on_disk, written.len(), "no file overwrote another");
    assert_eq!(written.len(), plan.units.len() * 3);
    let names = dns_names(plan.units.iter().map(|u| u.name.as_str()));
    let distinct: BTreeSet<&String> = names.iter().collect();
    assert_eq!(distinct.len(), names.len(), "{names:?}");
    for name in &names {
        assert!(name.len() <= 63, "{name}");
        assert!(name.starts_with(|c: char| c.is_ascii_lowercase()), "{name}");
        assert!(
            name.ends_with(|c: char| c.is_ascii_alphanumeric()),
            "{name}"
        );
        assert!(name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'));
    }
    // The routes send each operation to the unit (by its unique name) that serves it.
    let kinds = manifests(&written);
    let (_, config) = kinds.iter().find(|(k, _)| k == "ConfigMap").unwrap();
    let routes: grain_runtime::model::Routes =
        serde_json::from_str(config["data"]["routes.json"].as_str().unwrap()).unwrap();
    let routes = serde_json::to_value(&routes).unwrap();
    for (i, unit) in plan.units.iter().enumerate() {
        let text = routes.to_string();
        assert!(
            text.contains(&format!("\"{}:8080\"", names[i])),
            "{} is routed to {}",
            unit.name,
            names[i]
        );
    }
    // The cut's own name `2tier` reaches no object name unprefixed.
    for (_, value) in &kinds {
        let name = value["metadata"]["name"].as_str().unwrap();
        assert!(!name.starts_with('2'), "{name}");
    }
}

/// Every Deployment passes the Pod Security "restricted" profile's checks, and selects its
/// pods by unit, scenario and cut, so two cuts in one namespace never share pods.
#[test]
fn kubernetes_pods_are_restricted_and_selected_by_scenario_and_cut() {
    let source = scenario::load(&fixture("tiny.toml")).unwrap();
    let out = tempfile::tempdir().unwrap();
    let mut selectors = Vec::new();
    for arch in [Architecture::Micro, Architecture::Monolith] {
        let plan = plan::plan(&source.scenario, &arch).unwrap();
        let written = export(&source.scenario, &plan, "grainbench-unit:test")
            .write(Format::Kubernetes, &out.path().join(plan.label()))
            .unwrap();
        for (kind, value) in manifests(&written) {
            match kind.as_str() {
                "Deployment" => {
                    let spec = &value["spec"];
                    let selector = &spec["selector"]["matchLabels"];
                    assert_eq!(selector["grainbench/cut"], plan.label().as_str());
                    assert_eq!(selector["grainbench/scenario"], "tiny");
                    assert_eq!(&spec["template"]["metadata"]["labels"], selector);
                    selectors.push(selector.clone());
                    let pod = &spec["template"]["spec"];
                    let sc = &pod["securityContext"];
                    assert_eq!(sc["runAsNonRoot"], true);
                    assert!(sc["runAsUser"].as_i64().unwrap() > 0);
                    assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault");
                    let c = &pod["containers"][0]["securityContext"];
                    assert_eq!(c["allowPrivilegeEscalation"], false);
                    assert_eq!(c["readOnlyRootFilesystem"], true);
                    assert_eq!(c["capabilities"]["drop"], serde_json::json!(["ALL"]));
                }
                "Service" => {
                    let selector = &value["spec"]["selector"];
                    assert_eq!(selector["grainbench/cut"], plan.label().as_str());
                }
                _ => {}
            }
        }
    }
    let distinct: BTreeSet<String> = selectors.iter().map(|s| s.to_string()).collect();
    assert_eq!(
        distinct.len(),
        selectors.len(),
        "no two Deployments select alike"
    );
}

/// A monolith of thousands of operations cannot fit its spec in one ConfigMap: a clear
/// error naming the unit and the limit, not a manifest Kubernetes refuses (it wrote a
/// 2.1 MB ConfigMap and exited 0). The same scenario cut finer exports, every map within.
#[test]
fn a_config_map_over_one_mib_is_a_clear_error() {
    let names: Vec<String> = (0..6_000)
        .map(|i| format!("operation_with_a_rather_long_descriptive_name_{i:05}"))
        .collect();
    let ops: Vec<&str> = names.iter().map(String::as_str).collect();
    let dir = tempfile::tempdir().unwrap();
    let source = scenario_of(dir.path(), "one", &ops);
    let out = tempfile::tempdir().unwrap();
    let monolith = plan::plan(&source.scenario, &Architecture::Monolith).unwrap();
    let error = export(&source.scenario, &monolith, "grainbench-unit:test")
        .write(Format::Kubernetes, out.path())
        .unwrap_err()
        .to_string();
    assert!(
        error.contains(&CONFIG_MAP_LIMIT.to_string()) && error.contains("monolith"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compose_export_runs_from_its_files_alone() {
    let Some(_docker) = docker_or_skip() else {
        return;
    };
    let source = scenario::load(&fixture("tiny.toml")).unwrap();
    let plan = plan::plan(&source.scenario, &Architecture::Micro).unwrap();
    let run_id = unique_run_id("export");
    // The image and a network, as a run would make them (removed when dropped).
    let run = ContainerRun::prepare(
        &unit_binary(),
        &run_id,
        &ContainerOptions {
            remove_image: true,
            ..Default::default()
        },
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    // The units run as a non-root user: the mounted config must be readable to others,
    // as an export directory made with the usual umask is (a temp dir is 0700).
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
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
    let entry =
        dns_names(plan.units.iter().map(|u| u.name.as_str()))[plan.unit_of("buy").unwrap()].clone();
    let addr = run.target.published(&entry).unwrap();
    let to = grain_runtime::model::Endpoint {
        unit: entry.clone(),
        addr,
    };
    let client = grain_runtime::client::HttpClient::new(std::time::Duration::from_secs(5));
    let body = bytes::Bytes::from(grain_runtime::wire::encode_request(
        &std::collections::BTreeMap::from([("user".to_string(), 3), ("order".to_string(), 1)]),
        300,
    ));
    let mut reply = None;
    for _ in 0..100 {
        match client.post(&to, "/op/buy", body.clone()).await {
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

/// `export` builds its deployment like `run` and `up`: the knobs on its command line
/// (network, replicas, resilience, keep-alive) reach the exported units' spec and routes.
#[test]
fn export_applies_the_same_deployment_knobs_as_run() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(grainbench_binary())
        .args(["export", "compose"])
        .arg(fixture("tiny.toml"))
        .args(["micro"])
        .arg(dir.path())
        .args(["--network", "dc", "--replicas", "2", "--retries", "2"])
        .args(["--no-keepalive", "--image", "grainbench-unit:test"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let config = dir.path().join("config");
    let routes: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(config.join("routes.json")).unwrap())
            .unwrap();
    assert_eq!(routes["network"]["name"], "dc", "{routes}");
    let spec = std::fs::read_dir(&config)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("spec-")
        })
        .unwrap();
    let spec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(spec).unwrap()).unwrap();
    assert_eq!(spec["resilience"]["retries"], 2, "{spec}");
    assert_eq!(spec["keepalive"], false, "{spec}");
    let compose: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("compose.json")).unwrap())
            .unwrap();
    let replicated = compose["services"]
        .as_object()
        .unwrap()
        .values()
        .filter(|s| s["deploy"]["replicas"] == 2)
        .count();
    assert!(
        replicated > 0,
        "--replicas 2 reaches the service units: {compose}"
    );
}
