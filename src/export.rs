//! `grainbench export compose|k8s`: a cut written out for an engine that runs it elsewhere,
//! from the same plan `run` deploys. Each unit runs the units' image as `grainbench unit
//! --spec @/config/spec-UNIT.json --routes /config/routes.json`: standalone, listening on
//! 0.0.0.0:8080, reaching the other units by their service names.
//!
//! - Kubernetes: per unit a Deployment (its replicas, a readiness probe on `/health`,
//!   resource requests from a run's measured CPU and memory when one is given) and a
//!   Service, plus one ConfigMap holding every unit's spec and the routes. The objects are
//!   built from `k8s-openapi`'s typed API structs, so they are schema-correct by
//!   construction, and written one JSON file each (`kubectl apply -f DIR`).
//! - Compose: one service per unit (its replicas, the config directory mounted read only,
//!   the entry units' port published on 127.0.0.1), in `compose.json` (JSON is YAML).
//!
//! Hops are plaintext (the run's in-memory PKI does not outlive a run); the calibrated
//! CPU work is this machine's.

use crate::plan::Deployment;
use crate::results::{ArchitectureResult, StepMode};
use crate::scenario::Scenario;
use grain_runtime::model::{Endpoint, Listen, Routes, UnitSpec};
use grain_runtime::resilience::Resilience;
use k8s_openapi::api::apps::v1::{Deployment as K8sDeployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{
    ConfigMap, ConfigMapVolumeSource, Container, ContainerPort, HTTPGetAction, PodSpec,
    PodTemplateSpec, Probe, ResourceRequirements, Service, ServicePort, ServiceSpec, Volume,
    VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The port every exported unit listens on.
pub const PORT: u16 = 8080;
/// Where the config is mounted in every unit's container.
const CONFIG_DIR: &str = "/config";

/// Which engine to write for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Compose,
    Kubernetes,
}

/// Why a cut cannot be exported.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot encode {what}: {source}")]
    Encode {
        what: String,
        source: serde_json::Error,
    },
}

/// What to export: the plan, the image its units run, and how they call each other.
pub struct Export<'a> {
    pub scenario: &'a Scenario,
    pub plan: &'a Deployment,
    pub image: String,
    pub resilience: Resilience,
    pub work_iterations_per_us: f64,
    /// A run of this cut, whose measured CPU and memory become resource requests.
    pub measured: Option<&'a ArchitectureResult>,
}

/// A unit's name as a DNS label (Services, Deployments and compose services).
pub fn dns_name(unit: &str) -> String {
    grain_runtime::security::dns_label(unit)
}

fn write(path: &Path, bytes: &[u8]) -> Result<PathBuf, ExportError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| ExportError::Write {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    std::fs::write(path, bytes).map_err(|source| ExportError::Write {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(path.to_path_buf())
}

fn json<T: serde::Serialize>(what: &str, value: &T) -> Result<Vec<u8>, ExportError> {
    let mut bytes = serde_json::to_vec_pretty(value).map_err(|source| ExportError::Encode {
        what: what.to_string(),
        source,
    })?;
    bytes.push(b'\n');
    Ok(bytes)
}

impl Export<'_> {
    /// Writes the cut for `format` under `dir`; returns the files written.
    pub fn write(&self, format: Format, dir: &Path) -> Result<Vec<PathBuf>, ExportError> {
        match format {
            Format::Kubernetes => self.kubernetes(dir),
            Format::Compose => self.compose(dir),
        }
    }

    /// Every unit reaches the others by their service names, on [`PORT`].
    fn routes(&self) -> Routes {
        let processes: Vec<Vec<Endpoint>> = self
            .plan
            .units
            .iter()
            .map(|unit| {
                vec![Endpoint {
                    unit: unit.name.clone(),
                    addr: format!("{}:{PORT}", dns_name(&unit.name)),
                }]
            })
            .collect();
        self.plan.routes(
            &processes,
            &grain_runtime::network::NetworkModel::loopback(),
        )
    }

    fn specs(&self) -> Vec<(String, UnitSpec)> {
        self.plan
            .units
            .iter()
            .map(|unit| {
                let spec = UnitSpec {
                    name: unit.name.clone(),
                    role: unit.role.clone(),
                    work_iterations_per_us: self.work_iterations_per_us,
                    security: None,
                    keepalive: true,
                    worker_threads: None,
                    resilience: self.resilience.clone(),
                    listen: Listen {
                        bind: Some(format!("0.0.0.0:{PORT}")),
                        advertise: None,
                        routes: None,
                    },
                };
                (dns_name(&unit.name), spec)
            })
            .collect()
    }

    /// The config every unit mounts: `routes.json` and each unit's `spec-NAME.json`.
    fn config(&self) -> Result<BTreeMap<String, String>, ExportError> {
        let mut files = BTreeMap::new();
        let text = |bytes: Vec<u8>| String::from_utf8_lossy(&bytes).into_owned();
        files.insert(
            "routes.json".to_string(),
            text(json("routes", &self.routes())?),
        );
        for (name, spec) in self.specs() {
            files.insert(format!("spec-{name}.json"), text(json(&name, &spec)?));
        }
        Ok(files)
    }

    fn args(name: &str) -> Vec<String> {
        vec![
            "unit".into(),
            "--spec".into(),
            format!("@{CONFIG_DIR}/spec-{name}.json"),
            "--routes".into(),
            format!("{CONFIG_DIR}/routes.json"),
            "--unit".into(),
            name.into(),
        ]
    }

    /// The entry units: those serving an entrypoint.
    fn is_entry(&self, unit: usize) -> bool {
        self.scenario
            .entrypoints
            .iter()
            .any(|e| self.plan.unit_of(&e.op) == Some(unit))
    }

    /// Requests from the measured run: CPU over its busiest open-loop step, peak memory.
    fn requests(&self, unit: &str) -> Option<BTreeMap<String, Quantity>> {
        let measured = self.measured?;
        let step = measured
            .steps
            .iter()
            .filter(|s| s.mode == StepMode::Open && s.valid && s.units.is_some())
            .max_by_key(|s| s.target_rps)?;
        let usage = step.units.as_ref()?;
        let of = |name: &str| name == unit || name.starts_with(&format!("{unit}#"));
        let seconds = (step.warmup_s + step.duration_s).max(1e-3);
        let cpu_ms = usage
            .cpu_ms
            .iter()
            .filter(|(name, _)| of(name))
            .map(|(_, ms)| *ms)
            .fold(0.0, f64::max);
        let rss = usage
            .peak_rss_bytes
            .iter()
            .filter(|(name, _)| of(name))
            .map(|(_, bytes)| *bytes)
            .max()?;
        let millicores = (cpu_ms / seconds).ceil().max(1.0) as u64;
        let mebibytes = rss.div_ceil(1024 * 1024).max(1);
        Some(BTreeMap::from([
            ("cpu".to_string(), Quantity(format!("{millicores}m"))),
            ("memory".to_string(), Quantity(format!("{mebibytes}Mi"))),
        ]))
    }

    fn kubernetes(&self, dir: &Path) -> Result<Vec<PathBuf>, ExportError> {
        let config_name = format!(
            "grainbench-{}-{}",
            dns_name(&self.scenario.name),
            dns_name(&self.plan.label())
        );
        let config = ConfigMap {
            metadata: ObjectMeta {
                name: Some(config_name.clone()),
                labels: Some(self.labels(None)),
                ..Default::default()
            },
            data: Some(self.config()?),
            ..Default::default()
        };
        let mut written = vec![write(
            &dir.join("configmap.json"),
            &json("the config map", &config)?,
        )?];
        for unit in &self.plan.units {
            let name = dns_name(&unit.name);
            let deployment = self.k8s_deployment(&name, unit.replicas, &config_name, &unit.name);
            let service = self.k8s_service(&name);
            written.push(write(
                &dir.join(format!("{name}-deployment.json")),
                &json(&name, &deployment)?,
            )?);
            written.push(write(
                &dir.join(format!("{name}-service.json")),
                &json(&name, &service)?,
            )?);
        }
        Ok(written)
    }

    fn labels(&self, unit: Option<&str>) -> BTreeMap<String, String> {
        let mut labels = BTreeMap::from([
            (
                "app.kubernetes.io/part-of".to_string(),
                "grainbench".to_string(),
            ),
            (
                "grainbench/scenario".to_string(),
                dns_name(&self.scenario.name),
            ),
            ("grainbench/cut".to_string(), dns_name(&self.plan.label())),
        ]);
        if let Some(unit) = unit {
            labels.insert("app.kubernetes.io/name".to_string(), unit.to_string());
        }
        labels
    }

    fn k8s_deployment(&self, name: &str, replicas: u32, config: &str, unit: &str) -> K8sDeployment {
        let selector = BTreeMap::from([("app.kubernetes.io/name".to_string(), name.to_string())]);
        let container = Container {
            name: "unit".into(),
            image: Some(self.image.clone()),
            image_pull_policy: Some("IfNotPresent".into()),
            args: Some(Self::args(name)),
            ports: Some(vec![ContainerPort {
                container_port: i32::from(PORT),
                name: Some("http".into()),
                ..Default::default()
            }]),
            readiness_probe: Some(Probe {
                http_get: Some(HTTPGetAction {
                    path: Some(grain_runtime::wire::HEALTH_PATH.into()),
                    port: IntOrString::Int(i32::from(PORT)),
                    ..Default::default()
                }),
                period_seconds: Some(2),
                ..Default::default()
            }),
            resources: self.requests(unit).map(|requests| ResourceRequirements {
                requests: Some(requests),
                ..Default::default()
            }),
            volume_mounts: Some(vec![VolumeMount {
                name: "config".into(),
                mount_path: CONFIG_DIR.into(),
                read_only: Some(true),
                ..Default::default()
            }]),
            ..Default::default()
        };
        K8sDeployment {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                labels: Some(self.labels(Some(name))),
                ..Default::default()
            },
            spec: Some(DeploymentSpec {
                replicas: Some(i32::try_from(replicas.max(1)).unwrap_or(1)),
                selector: LabelSelector {
                    match_labels: Some(selector.clone()),
                    ..Default::default()
                },
                template: PodTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: Some(selector),
                        ..Default::default()
                    }),
                    spec: Some(PodSpec {
                        containers: vec![container],
                        volumes: Some(vec![Volume {
                            name: "config".into(),
                            config_map: Some(ConfigMapVolumeSource {
                                name: config.to_string(),
                                ..Default::default()
                            }),
                            ..Default::default()
                        }]),
                        ..Default::default()
                    }),
                },
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn k8s_service(&self, name: &str) -> Service {
        Service {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                labels: Some(self.labels(Some(name))),
                ..Default::default()
            },
            spec: Some(ServiceSpec {
                selector: Some(BTreeMap::from([(
                    "app.kubernetes.io/name".to_string(),
                    name.to_string(),
                )])),
                ports: Some(vec![ServicePort {
                    name: Some("http".into()),
                    port: i32::from(PORT),
                    target_port: Some(IntOrString::Int(i32::from(PORT))),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn compose(&self, dir: &Path) -> Result<Vec<PathBuf>, ExportError> {
        let mut written = Vec::new();
        for (file, text) in self.config()? {
            written.push(write(&dir.join("config").join(file), text.as_bytes())?);
        }
        let services: serde_json::Map<String, serde_json::Value> = self
            .plan
            .units
            .iter()
            .enumerate()
            .map(|(i, unit)| {
                let name = dns_name(&unit.name);
                let mut service = serde_json::json!({
                    "image": self.image,
                    "command": Self::args(&name),
                    "volumes": [format!("./config:{CONFIG_DIR}:ro")],
                    "deploy": { "replicas": unit.replicas.max(1) },
                });
                if self.is_entry(i) {
                    service["ports"] = serde_json::json!([format!("127.0.0.1::{PORT}")]);
                }
                (name, service)
            })
            .collect();
        let compose = serde_json::json!({
            "name": format!("grainbench-{}-{}", dns_name(&self.scenario.name), dns_name(&self.plan.label())),
            "services": services,
        });
        written.push(write(
            &dir.join("compose.json"),
            &json("compose", &compose)?,
        )?);
        Ok(written)
    }
}
