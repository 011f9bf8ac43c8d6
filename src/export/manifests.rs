//! A cut's manifests for an engine that runs it elsewhere, from the same deployment `run`
//! starts. Each unit runs the units' image as `grainbench-unit unit
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
//! CPU work is this machine's; the network model, replicas, resilience and keep-alive are
//! the deployment's.

use crate::deploy::DeploySpec;
use crate::launch::container::UNIT_USER;
use crate::plan::Deployment;
use crate::results::{ArchitectureResult, StepMode};
use crate::scenario::Scenario;
use grain_runtime::model::{Endpoint, Listen, Routes, UnitSpec};
use k8s_openapi::api::apps::v1::{Deployment as K8sDeployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMap, ConfigMapVolumeSource, Container, ContainerPort, HTTPGetAction,
    PodSecurityContext, PodSpec, PodTemplateSpec, Probe, ResourceRequirements, SeccompProfile,
    SecurityContext, Service, ServicePort, ServiceSpec, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use sha2::Digest as _;
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
    #[error(
        "unit `{unit}`: its ConfigMap would hold {bytes} bytes, over Kubernetes' limit of \
         {CONFIG_MAP_LIMIT} (1 MiB); a cut with fewer operations per unit fits"
    )]
    ConfigMapTooLarge { unit: String, bytes: usize },
    #[error("cannot encode {what}: {source}")]
    Encode {
        what: String,
        source: serde_json::Error,
    },
}

/// What to export: the deployment, and the image its units run.
pub struct Export<'a> {
    pub spec: &'a DeploySpec,
    pub image: String,
    pub work_iterations_per_us: f64,
    /// A run of this cut, whose measured CPU and memory become resource requests.
    pub measured: Option<&'a ArchitectureResult>,
}

/// Kubernetes' limit on a ConfigMap's data.
pub const CONFIG_MAP_LIMIT: usize = 1024 * 1024;
/// Hex digits of the hash that tells colliding names apart.
const SUFFIX_HEX: usize = 8;

/// A name as a DNS-1035 label (what a Service's name must be, and fits every other
/// object): lowercase letters, digits and `-`, at most 63, starting with a letter.
fn dns_label_1035(name: &str) -> String {
    let label = grain_runtime::security::dns_label(name);
    if label.starts_with(|c: char| c.is_ascii_lowercase()) {
        label
    } else {
        // `2tier-buy` is refused by `kubectl apply`; `u-2tier-buy` is not.
        grain_runtime::security::dns_label(&format!("u-{label}"))
    }
}

/// Every unit's DNS name, one per unit and all distinct: a name's label where no other
/// unit's maps to the same; otherwise the label cut short with `-` and a hash of the
/// original name (`get_item` and `get-item`, `Front` and `front`, two long names sharing
/// their first 63 characters). Routes, objects and files all use these names.
pub fn dns_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let names: Vec<&str> = names.into_iter().collect();
    let labels: Vec<String> = names.iter().map(|n| dns_label_1035(n)).collect();
    let mut count: BTreeMap<&str, usize> = BTreeMap::new();
    for label in &labels {
        *count.entry(label.as_str()).or_default() += 1;
    }
    names
        .iter()
        .zip(&labels)
        .map(|(name, label)| {
            if count[label.as_str()] == 1 {
                return label.clone();
            }
            let hash = sha2::Sha256::digest(name.as_bytes());
            let suffix: String = hash.iter().map(|b| format!("{b:02x}")).collect();
            let stem: String = label.chars().take(63 - SUFFIX_HEX - 1).collect();
            format!("{}-{}", stem.trim_end_matches('-'), &suffix[..SUFFIX_HEX])
        })
        .collect()
}

/// A label value: at most 63 characters of letters, digits and `-` (may start with a digit).
fn label_value(text: &str) -> String {
    grain_runtime::security::dns_label(text)
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

/// `value` as compact JSON (the units' config: it counts against the ConfigMap limit).
fn compact<T: serde::Serialize>(what: &str, value: &T) -> Result<String, ExportError> {
    serde_json::to_string(value).map_err(|source| ExportError::Encode {
        what: what.to_string(),
        source,
    })
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
    fn scenario(&self) -> &Scenario {
        self.spec.scenario()
    }

    fn plan(&self) -> &Deployment {
        self.spec.plan()
    }

    /// Writes the cut for `format` under `dir`; returns the files written.
    pub fn write(&self, format: Format, dir: &Path) -> Result<Vec<PathBuf>, ExportError> {
        match format {
            Format::Kubernetes => self.kubernetes(dir),
            Format::Compose => self.compose(dir),
        }
    }

    /// Every unit's DNS name, by unit index (see [`dns_names`]).
    pub fn names(&self) -> Vec<String> {
        dns_names(self.plan().units.iter().map(|u| u.name.as_str()))
    }

    /// Every unit reaches the others by their service names, on [`PORT`].
    fn routes(&self, names: &[String]) -> Routes {
        let processes: Vec<Vec<Endpoint>> = self
            .plan()
            .units
            .iter()
            .zip(names)
            .map(|(unit, name)| {
                vec![Endpoint {
                    unit: unit.name.clone(),
                    addr: format!("{name}:{PORT}"),
                }]
            })
            .collect();
        self.plan().routes(&processes, &self.scenario().network)
    }

    fn specs(&self, names: &[String]) -> Vec<(String, UnitSpec)> {
        self.plan()
            .units
            .iter()
            .zip(names)
            .map(|(unit, name)| {
                let spec = UnitSpec {
                    name: unit.name.clone(),
                    role: unit.role.clone(),
                    work_iterations_per_us: self.work_iterations_per_us,
                    security: None,
                    keepalive: self.scenario().security.keepalive,
                    worker_threads: None,
                    resilience: self.scenario().resilience.clone(),
                    transport: self.plan().transport,
                    trace: None,
                    listen: Listen {
                        bind: Some(format!("0.0.0.0:{PORT}")),
                        advertise: None,
                        routes: None,
                    },
                };
                (name.clone(), spec)
            })
            .collect()
    }

    /// The config each unit mounts, by unit index: `routes.json` and its `spec-NAME.json`,
    /// compact JSON.
    fn config(&self, names: &[String]) -> Result<Vec<BTreeMap<String, String>>, ExportError> {
        let routes = compact("routes", &self.routes(names))?;
        self.specs(names)
            .into_iter()
            .map(|(name, spec)| {
                Ok(BTreeMap::from([
                    ("routes.json".to_string(), routes.clone()),
                    (format!("spec-{name}.json"), compact(&name, &spec)?),
                ]))
            })
            .collect()
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
        self.scenario()
            .entrypoints
            .iter()
            .any(|e| self.plan().unit_of(&e.op) == Some(unit))
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

    /// Per unit: a ConfigMap (its spec and the routes; one per unit, so a big cut does not
    /// put every spec in one object over the 1 MiB limit), a Deployment and a Service.
    fn kubernetes(&self, dir: &Path) -> Result<Vec<PathBuf>, ExportError> {
        let names = self.names();
        let configs = self.config(&names)?;
        let mut written = Vec::new();
        for ((unit, name), data) in self.plan().units.iter().zip(&names).zip(configs) {
            let bytes: usize = data.iter().map(|(k, v)| k.len() + v.len()).sum();
            if bytes > CONFIG_MAP_LIMIT {
                return Err(ExportError::ConfigMapTooLarge {
                    unit: unit.name.clone(),
                    bytes,
                });
            }
            let config_name = format!("{name}-config");
            let config = ConfigMap {
                metadata: ObjectMeta {
                    name: Some(config_name.clone()),
                    labels: Some(self.labels(Some(name))),
                    ..Default::default()
                },
                data: Some(data),
                ..Default::default()
            };
            let deployment = self.k8s_deployment(name, unit.replicas, &config_name, &unit.name);
            let service = self.k8s_service(name);
            for (kind, bytes) in [
                ("config", json(name, &config)?),
                ("deployment", json(name, &deployment)?),
                ("service", json(name, &service)?),
            ] {
                written.push(write(&dir.join(format!("{name}-{kind}.json")), &bytes)?);
            }
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
                label_value(&self.scenario().name),
            ),
            (
                "grainbench/cut".to_string(),
                label_value(&self.plan().label()),
            ),
        ]);
        if let Some(unit) = unit {
            labels.insert("app.kubernetes.io/name".to_string(), unit.to_string());
        }
        labels
    }

    /// What selects a unit's pods: its name, scenario and cut, so two cuts or scenarios in
    /// one namespace (both with `state-orders`) never select each other's pods.
    fn selector(&self, name: &str) -> BTreeMap<String, String> {
        let mut labels = self.labels(Some(name));
        labels.remove("app.kubernetes.io/part-of");
        labels
    }

    fn k8s_deployment(&self, name: &str, replicas: u32, config: &str, unit: &str) -> K8sDeployment {
        let selector = self.selector(name);
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
            security_context: Some(SecurityContext {
                allow_privilege_escalation: Some(false),
                read_only_root_filesystem: Some(true),
                run_as_non_root: Some(true),
                capabilities: Some(Capabilities {
                    drop: Some(vec!["ALL".into()]),
                    ..Default::default()
                }),
                ..Default::default()
            }),
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
                        // The Pod Security "restricted" profile: not root, by number (the
                        // image has no passwd), the runtime's default seccomp filter.
                        security_context: Some(PodSecurityContext {
                            run_as_non_root: Some(true),
                            run_as_user: Some(i64::from(UNIT_USER)),
                            run_as_group: Some(i64::from(UNIT_USER)),
                            seccomp_profile: Some(SeccompProfile {
                                type_: "RuntimeDefault".into(),
                                ..Default::default()
                            }),
                            ..Default::default()
                        }),
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
                selector: Some(self.selector(name)),
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
        let names = self.names();
        let mut written = Vec::new();
        for data in self.config(&names)? {
            for (file, text) in data {
                let path = dir.join("config").join(file);
                if !written.contains(&path) {
                    written.push(write(&path, text.as_bytes())?);
                }
            }
        }
        let services: serde_json::Map<String, serde_json::Value> = names
            .iter()
            .zip(&self.plan().units)
            .enumerate()
            .map(|(i, (name, unit))| {
                let mut service = serde_json::json!({
                    "image": self.image,
                    "command": Self::args(name),
                    "volumes": [format!("./config:{CONFIG_DIR}:ro")],
                    "deploy": { "replicas": unit.replicas.max(1) },
                    "user": format!("{UNIT_USER}:{UNIT_USER}"),
                    "read_only": true,
                    "cap_drop": ["ALL"],
                    "security_opt": ["no-new-privileges:true"],
                });
                if self.is_entry(i) {
                    service["ports"] = serde_json::json!([format!("127.0.0.1::{PORT}")]);
                }
                (name.clone(), service)
            })
            .collect();
        let compose = serde_json::json!({
            "name": dns_label_1035(&format!("grainbench-{}-{}", self.scenario().name, self.plan().label())),
            "services": services,
        });
        written.push(write(
            &dir.join("compose.json"),
            &json("compose", &compose)?,
        )?);
        Ok(written)
    }
}
