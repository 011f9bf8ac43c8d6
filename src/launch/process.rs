//! One unit process from spawn to ready: the command (the binary itself, or `docker run`
//! for a container), dying with the harness, the spec over stdin, the announced address
//! read from stdout, the stderr tail kept to explain a failure, and the wait for `/health`.

use super::{container, LaunchError, LaunchOptions, RunningUnit, SPEC_ON_STDIN};
use grain_runtime::client::HttpClient;
use grain_runtime::model::UnitSpec;
use grain_runtime::wire::{HEALTH_PATH, LISTENING_PREFIX};
use std::collections::VecDeque;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

/// Lines of a unit's stderr kept to explain its failure.
const STDERR_TAIL_LINES: usize = 20;

pub(super) fn describe_status(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        _ => status.to_string(),
    }
}

/// In a unit's process before exec: the kernel sends it SIGKILL when the harness dies,
/// however the harness dies (a backstop to stdin's end, which the unit also watches). If the
/// harness died before this ran, the unit is not started.
pub(super) fn die_with_parent(harness: u32) -> std::io::Result<()> {
    // SAFETY: prctl(PR_SET_PDEATHSIG) and getppid have no memory effects.
    unsafe {
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        if libc::getppid() as u32 != harness {
            return Err(std::io::Error::other(
                "the harness exited before the unit started",
            ));
        }
    }
    Ok(())
}

/// Numbers every container of this harness, so a replacement never takes a name still
/// being removed.
pub(super) fn next_container() -> usize {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// Where a unit container joins a pod: its sidecar container (whose network namespace,
/// name and published ports it shares) and the port it listens on in that namespace.
pub(super) struct PodSlot {
    pub sidecar: String,
    pub port: u16,
}

pub(super) async fn spawn_unit(
    spec: &UnitSpec,
    options: &LaunchOptions,
    pod: Option<&PodSlot>,
) -> Result<(RunningUnit, tokio::process::ChildStdout), LaunchError> {
    let spawn_error = |source| LaunchError::Spawn {
        unit: spec.name.clone(),
        binary: options.unit_binary.clone(),
        source,
    };
    let mut spec = spec.clone();
    let container = options.container.as_ref().map(|target| {
        let name = container::container_name(&target.run_id, next_container(), &spec.name);
        // In a pod, callers reach the unit by its sidecar's name, through the sidecar.
        let (bind, reached_as) = match pod {
            Some(pod) => (format!("127.0.0.1:{}", pod.port), pod.sidecar.clone()),
            None => (
                format!("0.0.0.0:{}", container::CONTAINER_PORT),
                name.clone(),
            ),
        };
        spec.listen = grain_runtime::model::Listen {
            bind: Some(bind),
            advertise: Some(format!("{reached_as}:{}", container::CONTAINER_PORT)),
            routes: None,
        };
        (target.clone(), name)
    });
    // Callers reach a container by its name, so its certificate must name it too.
    if let (Some((_, name)), Some(pki), Some(_)) = (&container, &options.security, &spec.security) {
        let identity = grain_runtime::resilience::unit_of_process(&spec.name).to_string();
        let issued = pki
            .issue_for_host(&identity, name)
            .map_err(|e| spawn_error(std::io::Error::other(e.to_string())))?;
        spec.security = Some(issued);
    }
    let spec = &spec;
    let spec_json =
        serde_json::to_string(spec).map_err(|e| spawn_error(std::io::Error::other(e)))?;
    let mut command = match &container {
        Some((target, name)) => {
            let mut command = Command::new("docker");
            let placement = match pod {
                Some(pod) => container::Placement::InPod(&pod.sidecar),
                None => container::Placement::OnNetwork(&[container::CONTAINER_PORT]),
            };
            let cores = options.unit_cores.as_ref();
            command.args(target.run_args(name, &spec.name, placement, &target.run_image, cores));
            command
        }
        None => Command::new(&options.unit_binary),
    };
    let harness = std::process::id();
    // A container's cores are its cpuset (above); its `docker run` client runs anywhere.
    let cores = (options.unit_cores.as_ref())
        .filter(|_| container.is_none())
        .map(|c| c.cpu_set());
    // SAFETY: the closure runs in the forked child before exec and only makes
    // async-signal-safe system calls (sched_setaffinity, prctl, getppid).
    unsafe {
        command.pre_exec(move || {
            if let Some(cores) = &cores {
                super::cores::confine(cores)?;
            }
            die_with_parent(harness)
        });
    }
    let mut child = command
        .arg("unit")
        .arg("--run-id")
        .arg(&options.run_id)
        // The spec goes over stdin, not argv: one argument may be at most 128 KiB
        // (MAX_ARG_STRLEN), and a large monolith's spec is megabytes.
        .args(["--spec", SPEC_ON_STDIN, "--unit", &spec.name])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(spawn_error)?;
    let missing = |what: &str| spawn_error(std::io::Error::other(format!("no {what} pipe")));
    let stdout = child.stdout.take().ok_or_else(|| missing("stdout"))?;
    let stderr = child.stderr.take().ok_or_else(|| missing("stderr"))?;
    let mut stdin = child.stdin.take().ok_or_else(|| missing("stdin"))?;
    let mut line = spec_json.into_bytes();
    line.push(b'\n');
    // A unit that died at once closed its stdin: its exit status and stderr, read while
    // waiting for its address, say why far better than the broken pipe would.
    if let Err(error) = async {
        stdin.write_all(&line).await?;
        stdin.flush().await
    }
    .await
    {
        tracing::debug!(unit = %spec.name, %error, "cannot send the unit its spec");
    }
    let stderr_tail = Arc::new(Mutex::new(VecDeque::new()));
    tokio::spawn(keep_stderr_tail(
        spec.name.clone(),
        stderr,
        stderr_tail.clone(),
    ));
    let unit = RunningUnit {
        name: spec.name.clone(),
        planned: 0,
        replica: 0,
        pid: child.id().unwrap_or(0),
        addr: String::new(),
        route_addr: String::new(),
        container_target: container.as_ref().map(|(target, _)| target.clone()),
        container: container.map(|(_, name)| name),
        pod: pod.map(|p| p.sidecar.clone()),
        listening_after: Duration::ZERO,
        spawned_at: Instant::now(),
        spec: spec.clone(),
        child,
        stdin: Some(stdin),
        stderr_tail,
        sidecar: None,
    };
    Ok((unit, stdout))
}

/// The lines a process last wrote to stderr (kept by [`keep_stderr_tail`]), joined.
pub(super) fn joined(tail: &Mutex<VecDeque<String>>) -> String {
    tail.lock()
        .map(|t| t.iter().cloned().collect::<Vec<_>>().join("\n"))
        .unwrap_or_default()
}

pub(super) async fn keep_stderr_tail(
    unit: String,
    stderr: tokio::process::ChildStderr,
    tail: Arc<Mutex<VecDeque<String>>>,
) {
    let mut lines = BufReader::new(stderr).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        tracing::debug!(unit = %unit, "{line}");
        if let Ok(mut tail) = tail.lock() {
            if tail.len() == STDERR_TAIL_LINES {
                tail.pop_front();
            }
            tail.push_back(line);
        }
    }
}

pub(super) async fn wait_for_address(
    mut unit: RunningUnit,
    stdout: tokio::process::ChildStdout,
    deadline: Instant,
    timeout: Duration,
) -> Result<RunningUnit, LaunchError> {
    let mut lines = BufReader::new(stdout).lines();
    let remaining = deadline.saturating_duration_since(Instant::now());
    let found = tokio::time::timeout(remaining, async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(addr) = line.strip_prefix(LISTENING_PREFIX) {
                return Some(addr.trim().to_string());
            }
        }
        None
    })
    .await;
    match found {
        Ok(Some(addr)) if unit.container.is_some() && addr.rsplit_once(':').is_some() => {
            unit.listening_after = unit.spawned_at.elapsed();
            unit.route_addr = addr;
            unit.locate_container().await?;
            Ok(unit)
        }
        Ok(Some(addr)) if addr.parse::<std::net::SocketAddr>().is_ok() => {
            unit.addr = addr.clone();
            unit.route_addr = addr;
            unit.listening_after = unit.spawned_at.elapsed();
            Ok(unit)
        }
        Ok(Some(addr)) => Err(LaunchError::Crashed {
            unit: unit.name.clone(),
            status: format!("announced an invalid address {addr:?}"),
            when: "while starting",
            stderr: unit.stderr_tail(),
        }),
        Ok(None) => {
            // stdout closed without an address: the unit exited; give it a moment to be reaped.
            let status = tokio::time::timeout(Duration::from_secs(2), unit.child.wait()).await;
            tokio::time::sleep(Duration::from_millis(20)).await; // let the stderr tail fill
            Err(LaunchError::Crashed {
                unit: unit.name.clone(),
                status: match status {
                    Ok(Ok(status)) => describe_status(status),
                    _ => "closed its stdout".to_string(),
                },
                when: "before listening",
                stderr: unit.stderr_tail(),
            })
        }
        Err(_) => Err(LaunchError::NotListening {
            unit: unit.name.clone(),
            timeout,
            stderr: unit.stderr_tail(),
        }),
    }
}

pub(super) async fn wait_until_healthy<'a>(
    client: &HttpClient,
    units: impl IntoIterator<Item = &'a mut RunningUnit>,
    deadline: Instant,
    timeout: Duration,
) -> Result<(), LaunchError> {
    for unit in units {
        loop {
            match client.get_status(&unit.addr, HEALTH_PATH).await {
                Ok(status) if status.is_success() => break,
                outcome => {
                    if let Some(error) = unit.crashed("before becoming ready") {
                        return Err(error);
                    }
                    if Instant::now() >= deadline {
                        let detail = match outcome {
                            Ok(status) => format!("/health answers {status}"),
                            Err(error) => error.to_string(),
                        };
                        return Err(LaunchError::NotReady {
                            unit: unit.name.clone(),
                            timeout,
                            detail,
                        });
                    }
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
        }
    }
    Ok(())
}
