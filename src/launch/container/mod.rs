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
//! - Behind a mesh, a second image holds HAProxy and the same binary (its supervisor):
//!   each unit's sidecar container owns the unit's network namespace (`sidecar::pod`).
//! - No orphans: every container and the network carry the run's label; the docker client
//!   dies with the harness (stdin closes, the unit exits, `--rm` removes it), and the
//!   network's guard removes whatever is left, containers first, when dropped.

mod image;

pub use image::{build_image, build_sidecar_image, image_tag};

use crate::launch::cores::UnitCores;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

/// The port every unit listens on inside its container.
pub const CONTAINER_PORT: u16 = 8080;
/// The numeric user (and group) a unit runs as in its container: never root, as the Pod
/// Security "restricted" profile asks (65532 is distroless's `nonroot`).
pub const UNIT_USER: u32 = 65532;
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
    /// The image under its shared name (`grainbench-unit:<commit>-<hash>`), as results and
    /// exports name it.
    pub image: String,
    /// This run's own tag of it, which its containers run.
    pub run_image: String,
    /// The image's size, as Docker reports it: the artifact each container ships.
    pub image_bytes: u64,
    pub network: String,
    pub run_id: String,
    /// `--cpus` and `--memory` of every unit container (a pod's size), if given.
    pub cpus: Option<f64>,
    pub memory: Option<String>,
    /// This run's sidecar image (HAProxy and its supervisor), when a deployment runs
    /// behind sidecars.
    pub sidecar_image: Option<BuiltImage>,
}

/// Where a container of the run sits on the network.
#[derive(Debug, Clone, Copy)]
pub enum Placement<'a> {
    /// On the run's network under its own name, these ports published on the host's
    /// 127.0.0.1 only.
    OnNetwork(&'a [u16]),
    /// In a pod: the named (sidecar) container's network namespace, which holds the pod's
    /// name and published ports.
    InPod(&'a str),
}

/// An image this run built: its tag, and its size as Docker reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct BuiltImage {
    pub tag: String,
    pub bytes: u64,
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

/// The run's bridge network; dropping it removes every container of the run, then it.
pub struct RunNetwork {
    pub name: String,
    run_id: String,
}

/// A container run of this process, as a quick exit (a second Ctrl-C) must still remove
/// it: its containers and network, its own image tag, and the shared name if asked.
struct LiveRun {
    run_id: String,
    network: String,
    run_image: String,
    shared: Option<String>,
    sidecar_image: Option<String>,
}

static LIVE_RUNS: std::sync::Mutex<Vec<LiveRun>> = std::sync::Mutex::new(Vec::new());

fn live_runs() -> std::sync::MutexGuard<'static, Vec<LiveRun>> {
    LIVE_RUNS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Removes every container and network of this process's runs now, and their images as
/// their runs would have, for an exit that skips the usual teardown (a frozen container
/// would otherwise outlive it).
pub fn remove_live_runs() {
    for run in std::mem::take(&mut *live_runs()) {
        remove_run(&run.run_id, Some(&run.network));
        remove_images(&run.run_image, run.shared.as_deref());
        remove_sidecar_image(run.sidecar_image.as_deref());
    }
}

/// Removes a run's own tag of the image, then (without force) the shared name if asked.
fn remove_images(run_image: &str, shared: Option<&str>) {
    // Untags only while the shared tag (or another run's) remains.
    if let Err(error) = docker(&["rmi", run_image]) {
        tracing::warn!(%error, "cannot remove the run's image tag");
    }
    // Without force: an image another run's containers use stays (Docker refuses), and
    // one another run has tagged loses only the shared name.
    if let Some(shared) = shared {
        if let Err(error) = docker(&["rmi", shared]) {
            tracing::info!(%error, "the image stays: another run uses it");
        }
    }
}

/// Removes a run's own sidecar image, if it built one.
fn remove_sidecar_image(image: Option<&str>) {
    if let Some(image) = image {
        if let Err(error) = docker(&["rmi", image]) {
            tracing::warn!(%error, "cannot remove the run's sidecar image");
        }
    }
}

impl RunNetwork {
    pub fn create(run_id: &str) -> Result<Self, ContainerError> {
        let name = format!("grainbench-{}", short_hash(run_id));
        let label = format!("{RUN_LABEL}={run_id}");
        let owner = owner_of(std::process::id()).unwrap_or_default();
        let owner = format!("{OWNER_LABEL}={owner}");
        docker(&[
            "network", "create", "--driver", "bridge", "--label", &label, "--label", &owner, &name,
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
    // `--rm` containers may still be going away after `rm -f` returns ("removal already in
    // progress"); wait, so the image they ran is free to remove without force.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::time::Instant::now() < deadline
        && docker(&["ps", "-aq", "--filter", &filter]).is_ok_and(|ids| !ids.trim().is_empty())
    {
        std::thread::sleep(std::time::Duration::from_millis(50));
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
    /// When a deployment runs behind sidecars: the proxy's binary, for the sidecar image.
    pub sidecar_proxy: Option<PathBuf>,
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
        // The run's own tag of the image: its containers use it, so another run that builds
        // the same tag or removes it (`--remove-image`) never takes the image from this one.
        let tag = image_tag(binary);
        let run_image = format!("grainbench-unit:{tag}-r{}", short_hash(run_id));
        let (image, image_bytes) = build_image(binary, &tag, run_id, Some(&run_image))?;
        let sidecar_image = match &options.sidecar_proxy {
            Some(proxy) => {
                let tag = format!("{tag}-r{}", short_hash(run_id));
                Some(build_sidecar_image(binary, proxy, &tag, run_id)?)
            }
            None => None,
        };
        let network = RunNetwork::create(run_id)?;
        live_runs().push(LiveRun {
            run_id: run_id.to_string(),
            network: network.name.clone(),
            run_image: run_image.clone(),
            shared: options.remove_image.then(|| image.clone()),
            sidecar_image: sidecar_image.as_ref().map(|i| i.tag.clone()),
        });
        tracing::info!(%image, image_bytes, network = %network.name, "units run as containers");
        Ok(ContainerRun {
            target: Arc::new(ContainerTarget {
                image,
                run_image,
                image_bytes,
                network: network.name.clone(),
                run_id: run_id.to_string(),
                cpus: options.cpus,
                memory: options.memory.clone(),
                sidecar_image,
            }),
            remove_image: options.remove_image,
            _network: network,
        })
    }
}

impl Drop for ContainerRun {
    fn drop(&mut self) {
        remove_run(&self.target.run_id, None);
        live_runs().retain(|run| run.run_id != self.target.run_id);
        let shared = self.remove_image.then_some(self.target.image.as_str());
        remove_images(&self.target.run_image, shared);
        remove_sidecar_image(self.target.sidecar_image.as_ref().map(|i| i.tag.as_str()));
    }
}

/// Label on a run's network naming the harness that owns it: `<pid>-<start time>`, so a
/// network is only swept once that very process is gone (a pid alone may be reused).
const OWNER_LABEL: &str = "grainbench.owner";

/// This process as an owner: its pid and its start time in clock ticks since boot.
fn owner_of(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces), closed by the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let start = rest.split_whitespace().nth(19)?;
    Some(format!("{pid}-{start}"))
}

/// Whether the owner a network names is gone: its pid is not running, or runs another
/// process. A network with no owner label (from an older grainbench) counts as gone.
fn owner_gone(owner: &str) -> bool {
    let Some(pid) = owner.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
        return true;
    };
    owner_of(pid).as_deref() != Some(owner)
}

/// Removes every network an earlier run left behind whose harness is gone (one killed by
/// SIGKILL cannot remove its own). A concurrent run's network is left alone, even between
/// its cold starts when no container is attached.
fn sweep_stale_networks() {
    let filter = format!("label={RUN_LABEL}");
    let format = format!("{{{{.ID}}}} {{{{.Label \"{OWNER_LABEL}\"}}}}");
    if let Ok(rows) = docker(&["network", "ls", "--filter", &filter, "--format", &format]) {
        for row in rows.lines() {
            let mut fields = row.split_whitespace();
            let (Some(id), owner) = (fields.next(), fields.next().unwrap_or("")) else {
                continue;
            };
            if owner_gone(owner) {
                let _ = docker(&["network", "rm", id]);
            }
        }
    }
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
    /// `docker run` arguments for one container of the run, `name`, of `unit`, running
    /// `image` (its own arguments follow), placed as `placement` says, on `cores` when
    /// given (`--cpuset-cpus`: every process of the container, and every thread it makes).
    pub fn run_args(
        &self,
        name: &str,
        unit: &str,
        placement: Placement<'_>,
        image: &str,
        cores: Option<&UnitCores>,
    ) -> Vec<String> {
        let network = match placement {
            Placement::InPod(sidecar) => {
                vec!["--network".to_string(), format!("container:{sidecar}")]
            }
            Placement::OnNetwork(ports) => {
                let mut args = vec![
                    "--hostname".to_string(),
                    name.to_string(),
                    "--network".to_string(),
                    self.network.clone(),
                ];
                for port in ports {
                    args.extend(["--publish".to_string(), format!("127.0.0.1::{port}")]);
                }
                args
            }
        };
        let mut args: Vec<String> = ["run", "-i", "--rm", "--pull", "never", "--name", name]
            .iter()
            .map(|s| s.to_string())
            .chain(network)
            .collect();
        args.extend(
            [
                "--label",
                &format!("{RUN_LABEL}={}", self.run_id),
                "--label",
                &format!("grainbench.unit={unit}"),
                // What a restricted cluster enforces: not root, nothing written, no privileges.
                "--user",
                &format!("{UNIT_USER}:{UNIT_USER}"),
                "--read-only",
                "--cap-drop",
                "ALL",
                "--security-opt",
                "no-new-privileges",
            ]
            .iter()
            .map(|s| s.to_string()),
        );
        if let Some(cpus) = self.cpus {
            args.extend(["--cpus".into(), cpus.to_string()]);
        }
        if let Some(memory) = &self.memory {
            args.extend(["--memory".into(), memory.clone()]);
        }
        if let Some(cores) = cores {
            args.extend(["--cpuset-cpus".into(), cores.to_string()]);
        }
        args.push(image.to_string());
        args
    }

    /// Where the host reaches container `name`'s unit: its published port on 127.0.0.1.
    pub fn published(&self, name: &str) -> Result<String, ContainerError> {
        self.published_port(name, CONTAINER_PORT)
    }

    /// Where the host reaches container `name`'s `port`, published on 127.0.0.1.
    pub fn published_port(&self, name: &str, port: u16) -> Result<String, ContainerError> {
        let port = format!("{port}/tcp");
        let out = docker(&["port", name, &port])?;
        out.lines()
            .find(|l| l.starts_with("127.0.0.1:"))
            .map(str::to_string)
            .ok_or_else(|| ContainerError::Docker {
                command: format!("port {name} {port}"),
                detail: format!("no port published on 127.0.0.1: {out:?}"),
            })
    }

    /// The host pid of the process running `command` in container `name` (a sidecar's
    /// proxy, beside its supervisor).
    pub fn pid_of_command(&self, name: &str, command: &str) -> Result<u32, ContainerError> {
        let out = docker(&["top", name, "-eo", "pid,comm"])?;
        out.lines()
            .filter_map(|line| {
                let (pid, comm) = line.trim().split_once(char::is_whitespace)?;
                (comm.trim() == command).then(|| pid.parse().ok())?
            })
            .next()
            .ok_or_else(|| ContainerError::Docker {
                command: format!("top {name}"),
                detail: format!("no {command} process: {out:?}"),
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

    /// A network is swept only once the harness that owns it is gone: this process owns
    /// networks it would keep; a pid that no longer runs, or runs another process (another
    /// start time), owns nothing.
    #[test]
    fn only_a_gone_owners_networks_are_stale() {
        let me = owner_of(std::process::id()).expect("this process has a /proc entry");
        assert!(!owner_gone(&me), "a running harness keeps its network");
        let (pid, start) = me.split_once('-').unwrap();
        let reused = format!("{pid}-{}", start.parse::<u64>().unwrap() + 1);
        assert!(owner_gone(&reused), "the same pid, started at another time");
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = owner_of(child.id()).unwrap_or_else(|| format!("{}-0", child.id()));
        child.wait().unwrap();
        assert!(owner_gone(&dead), "a harness that has exited");
        assert!(
            owner_gone(""),
            "an older grainbench's network has no owner label"
        );
    }

    /// The image's tag names the build's own commit (embedded at build time), not the
    /// repository of the directory a run starts in (from /tmp it was tagged otherwise, so
    /// `export` could name an image `run` never built).
    #[test]
    fn the_image_tag_names_the_builds_commit() {
        let tag = image_tag(&std::env::current_exe().unwrap());
        match crate::BUILD_COMMIT {
            Some(commit) => assert!(tag.starts_with(&commit[..12]), "{tag}"),
            None => assert!(tag.starts_with("nogit-"), "{tag}"),
        }
    }

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
