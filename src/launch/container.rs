//! Units as containers (`--target compose`): one image built offline from this very
//! binary, one bridge network made for the run, one container per unit process on it.
//!
//! - The image is `FROM scratch` with the `grainbench` binary and exactly the shared
//!   libraries `ldd` says it needs (plus glibc's name-service modules and an
//!   `nsswitch.conf`, so container names resolve through Docker's DNS). Nothing is pulled.
//! - Each unit runs as `docker run -i --rm` from the harness, so its spec and routes still
//!   travel on stdin and its address on stdout: it binds `0.0.0.0:8080`, announces its
//!   container name, and the others reach it by that name. Its port is published on
//!   127.0.0.1 only, for the driver and the harness.
//! - No orphans: every container and the network carry the run's label; the docker client
//!   dies with the harness (stdin closes, the unit exits, `--rm` removes it), and the
//!   network's guard removes whatever is left, containers first, when dropped.

use sha2::{Digest as _, Sha256};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

/// The port every unit listens on inside its container.
pub const CONTAINER_PORT: u16 = 8080;
/// Label on every container, network and image of a run: `grainbench.run=<run id>`.
pub const RUN_LABEL: &str = "grainbench.run";

/// Why units cannot run as containers.
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error("Docker is not usable here ({0}): install docker.io and start dockerd, or run without --target compose")]
    NoDocker(String),
    #[error("`docker {command}` failed: {detail}")]
    Docker { command: String, detail: String },
    #[error("cannot prepare the image's files: {0}")]
    Context(std::io::Error),
}

/// How units run as containers.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerTarget {
    pub image: String,
    /// The image's size, as Docker reports it: the artifact each container ships.
    pub image_bytes: u64,
    pub network: String,
    pub run_id: String,
    /// `--cpus` and `--memory` of every unit container (a pod's size), if given.
    pub cpus: Option<f64>,
    pub memory: Option<String>,
}

/// Runs `docker args…` and returns its stdout.
pub fn docker(args: &[&str]) -> Result<String, ContainerError> {
    let output = Command::new("docker")
        .args(args)
        .output()
        .map_err(|e| ContainerError::NoDocker(format!("cannot run docker: {e}")))?;
    if !output.status.success() {
        return Err(ContainerError::Docker {
            command: args.join(" "),
            detail: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// Whether a Docker daemon answers.
pub fn docker_available() -> Result<(), ContainerError> {
    docker(&["info", "--format", "{{.ServerVersion}}"])
        .map(|_| ())
        .map_err(|e| ContainerError::NoDocker(e.to_string()))
}

/// The shared libraries `binary` loads, by absolute path (empty for a static binary).
fn libraries(binary: &Path) -> Result<Vec<PathBuf>, ContainerError> {
    let output = Command::new("ldd")
        .arg(binary)
        .output()
        .map_err(ContainerError::Context)?;
    let text = String::from_utf8_lossy(&output.stdout);
    Ok(text
        .lines()
        .filter_map(|line| {
            // `libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)` or `/lib64/ld-linux… (0x…)`
            let path = match line.split_once("=>") {
                Some((_, rest)) => rest.split_whitespace().next()?,
                None => line.split_whitespace().next()?,
            };
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect())
}

/// Builds the units' image from `binary`, tagged `grainbench-unit:<tag>`, offline.
pub fn build_image(
    binary: &Path,
    tag: &str,
    run_id: &str,
) -> Result<(String, u64), ContainerError> {
    let context = tempfile::tempdir().map_err(ContainerError::Context)?;
    let root = context.path().join("root");
    let copy = |from: &Path| -> Result<(), ContainerError> {
        let to = root.join(from.strip_prefix("/").unwrap_or(from));
        if let Some(dir) = to.parent() {
            std::fs::create_dir_all(dir).map_err(ContainerError::Context)?;
        }
        std::fs::copy(from, &to)
            .map(|_| ())
            .map_err(ContainerError::Context)
    };
    std::fs::create_dir_all(root.join("etc")).map_err(ContainerError::Context)?;
    std::fs::copy(binary, root.join("grainbench")).map_err(ContainerError::Context)?;
    let mut libs = libraries(binary)?;
    if !libs.is_empty() {
        // Name resolution by files, then DNS (Docker's, which knows the containers' names).
        for module in ["libnss_files.so.2", "libnss_dns.so.2"] {
            if let Some(dir) = libs.iter().find_map(|l| {
                (l.file_name()? == "libc.so.6").then(|| l.parent().map(Path::to_path_buf))?
            }) {
                let path = dir.join(module);
                if path.exists() {
                    libs.push(path);
                }
            }
        }
    }
    for lib in &libs {
        copy(lib)?;
    }
    std::fs::write(root.join("etc/nsswitch.conf"), "hosts: files dns\n")
        .map_err(ContainerError::Context)?;
    let dockerfile = "FROM scratch\nCOPY root/ /\nENTRYPOINT [\"/grainbench\"]\n";
    std::fs::write(context.path().join("Dockerfile"), dockerfile)
        .map_err(ContainerError::Context)?;
    let image = format!("grainbench-unit:{tag}");
    let label = format!("{RUN_LABEL}={run_id}");
    let dir = context.path().to_string_lossy().to_string();
    docker(&["build", "-q", "--label", &label, "-t", &image, &dir])?;
    let bytes = docker(&["image", "inspect", "--format", "{{.Size}}", &image])?
        .parse()
        .unwrap_or(0);
    Ok((image, bytes))
}

/// The run's bridge network; dropping it removes every container of the run, then it.
pub struct RunNetwork {
    pub name: String,
    run_id: String,
}

impl RunNetwork {
    pub fn create(run_id: &str) -> Result<Self, ContainerError> {
        let name = format!("grainbench-{}", short_hash(run_id));
        let label = format!("{RUN_LABEL}={run_id}");
        docker(&[
            "network", "create", "--driver", "bridge", "--label", &label, &name,
        ])?;
        Ok(RunNetwork {
            name,
            run_id: run_id.to_string(),
        })
    }
}

impl Drop for RunNetwork {
    fn drop(&mut self) {
        remove_run(&self.run_id, Some(&self.name));
    }
}

/// Removes every container of `run_id` (and its network, if named). Best effort: what
/// cannot be removed is logged.
pub fn remove_run(run_id: &str, network: Option<&str>) {
    let filter = format!("label={RUN_LABEL}={run_id}");
    if let Ok(ids) = docker(&["ps", "-aq", "--filter", &filter]) {
        let ids: Vec<&str> = ids.split_whitespace().collect();
        if !ids.is_empty() {
            let mut args = vec!["rm", "-f"];
            args.extend(ids);
            if let Err(error) = docker(&args) {
                tracing::warn!(%error, "cannot remove the run's containers");
            }
        }
    }
    if let Some(network) = network {
        if let Err(error) = docker(&["network", "rm", network]) {
            tracing::warn!(%error, "cannot remove the run's network");
        }
    }
}

/// Sizes of every unit's container, and whether the image goes at the end.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContainerOptions {
    pub cpus: Option<f64>,
    pub memory: Option<String>,
    pub remove_image: bool,
}

/// What a run (or `up`) whose units are containers holds until it ends: dropping it
/// removes the run's containers and network, and the image if asked.
pub struct ContainerRun {
    pub target: Arc<ContainerTarget>,
    remove_image: bool,
    // Dropped after the image is removed: containers and network go last.
    _network: RunNetwork,
}

impl ContainerRun {
    /// Checks Docker, removes networks earlier runs left (a harness killed by SIGKILL
    /// cannot remove its own; a network still in use is not removed), builds the image and
    /// creates the run's network.
    pub fn prepare(
        binary: &Path,
        run_id: &str,
        options: &ContainerOptions,
    ) -> Result<Self, ContainerError> {
        docker_available()?;
        sweep_stale_networks();
        let (image, image_bytes) = build_image(binary, &image_tag(binary), run_id)?;
        let network = RunNetwork::create(run_id)?;
        tracing::info!(%image, image_bytes, network = %network.name, "units run as containers");
        Ok(ContainerRun {
            target: Arc::new(ContainerTarget {
                image,
                image_bytes,
                network: network.name.clone(),
                run_id: run_id.to_string(),
                cpus: options.cpus,
                memory: options.memory.clone(),
            }),
            remove_image: options.remove_image,
            _network: network,
        })
    }
}

impl Drop for ContainerRun {
    fn drop(&mut self) {
        remove_run(&self.target.run_id, None);
        if self.remove_image {
            if let Err(error) = docker(&["rmi", "-f", &self.target.image]) {
                tracing::warn!(%error, "cannot remove the run's image");
            }
        }
    }
}

/// Removes every network an earlier run left behind; one with containers attached (a run
/// still going) refuses, and is left alone.
fn sweep_stale_networks() {
    let filter = format!("label={RUN_LABEL}");
    if let Ok(names) = docker(&["network", "ls", "-q", "--filter", &filter]) {
        for id in names.split_whitespace() {
            let _ = docker(&["network", "rm", id]);
        }
    }
}

/// `<commit>-<binary hash>`: the commit it was built from, and which build exactly.
pub fn image_tag(binary: &Path) -> String {
    let commit = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| "nogit".into());
    let hash = std::fs::read(binary)
        .map(|bytes| {
            Sha256::digest(&bytes)[..4]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        })
        .unwrap_or_else(|_| "unknown".into());
    format!("{commit}-{hash}")
}

/// A container's name on the run's network: short (a DNS label), unique, readable.
pub fn container_name(run_id: &str, index: usize, unit: &str) -> String {
    grain_runtime::security::dns_label(&format!("gb{}-{index}-{unit}", short_hash(run_id)))
}

fn short_hash(text: &str) -> String {
    // FNV-1a, 32 bits: stable and short.
    let hash = text.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    format!("{hash:08x}")
}

impl ContainerTarget {
    /// `docker run` arguments for one unit process (the unit's own arguments follow).
    pub fn run_args(&self, name: &str, unit: &str) -> Vec<String> {
        let mut args: Vec<String> = [
            "run",
            "-i",
            "--rm",
            "--name",
            name,
            "--hostname",
            name,
            "--network",
            &self.network,
            "--label",
            &format!("{RUN_LABEL}={}", self.run_id),
            "--label",
            &format!("grainbench.unit={unit}"),
            "--publish",
            &format!("127.0.0.1::{CONTAINER_PORT}"),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        if let Some(cpus) = self.cpus {
            args.extend(["--cpus".into(), cpus.to_string()]);
        }
        if let Some(memory) = &self.memory {
            args.extend(["--memory".into(), memory.clone()]);
        }
        args.push(self.image.clone());
        args
    }

    /// Where the host reaches container `name`'s unit: its published port on 127.0.0.1.
    pub fn published(&self, name: &str) -> Result<String, ContainerError> {
        let port = format!("{CONTAINER_PORT}/tcp");
        let out = docker(&["port", name, &port])?;
        out.lines()
            .find(|l| l.starts_with("127.0.0.1:"))
            .map(str::to_string)
            .ok_or_else(|| ContainerError::Docker {
                command: format!("port {name} {port}"),
                detail: format!("no port published on 127.0.0.1: {out:?}"),
            })
    }

    /// The host pid of container `name`'s unit (for /proc: CPU, memory, signals).
    pub fn pid(&self, name: &str) -> Result<u32, ContainerError> {
        let out = docker(&["inspect", "--format", "{{.State.Pid}}", name])?;
        out.parse().map_err(|_| ContainerError::Docker {
            command: format!("inspect {name}"),
            detail: format!("no pid: {out:?}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_names_are_dns_labels() {
        let name = container_name("test-run-1234-5678", 12, "nano-authorize_payment#1");
        assert!(
            name.starts_with("gb") && name.ends_with("-12-nano-authorize-payment-1"),
            "{name}"
        );
        let long = container_name("r", 1, &"x".repeat(200));
        assert!(long.len() <= 63);
        assert!(long.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
    }
}
