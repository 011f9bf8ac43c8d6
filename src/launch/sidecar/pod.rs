//! Sidecars as containers (`--mesh sidecar --target compose`): the pod pattern. Each unit
//! process gets a sidecar container that owns the network namespace (as a pod's pause
//! container does), and the unit's container joins it (`--network container:SIDECAR`),
//! so the two share `127.0.0.1` and nothing else.
//!
//! - The sidecar container carries the unit's name on the run's network: callers (their
//!   own sidecars) reach `SIDECAR:8080`, its HAProxy, which forwards to the unit on
//!   `127.0.0.1:9090` inside the namespace. The unit's calls leave by one loopback
//!   listener per process it calls (`127.0.0.1:10000`, …), each forwarding to that
//!   process's sidecar by name. Its inbound, admin and staging ports are published on the
//!   host's 127.0.0.1 only, for the driver and the harness.
//! - A replacement unit joins the same namespace on the other port (9091), is checked
//!   through the staging listener, then the sidecar is repointed at it: the sidecar stays
//!   while its unit is replaced, as in a pod.
//! - Inside the container, `grainbench-unit sidecar-proxy` supervises HAProxy: it takes its
//!   configuration and files on stdin (written to memory-only files, nothing on disk),
//!   starts the proxy with the parent-death signal, says `ready` once the proxy listens,
//!   and stops it when its stdin closes. The harness holds that stdin through
//!   `docker run -i`, so a harness that dies (even by SIGKILL) takes the proxy, and with
//!   `--rm` the container, with it: HAProxy itself does not watch stdin.

use super::{io_error, ProxyFiles, Sidecar, SidecarError, SidecarTls, HAPROXY, SIDECAR_PREFIX};
use crate::launch::container::{self, ContainerTarget, Placement, CONTAINER_PORT};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, Write};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// The admin socket's port in a pod (published on the host's 127.0.0.1).
pub const ADMIN_PORT: u16 = 8081;
/// The staging listener's port: a replacement, reached before it is routed to.
pub const STAGING_PORT: u16 = 8082;
/// The two ports a pod's unit takes in turn on 127.0.0.1, so a replacement can start
/// while the process it replaces still drains.
pub const UNIT_PORTS: [u16; 2] = [9090, 9091];
/// The first of the unit's outbound listeners, one per process it calls.
pub const FIRST_OUTBOUND_PORT: u16 = 10000;
/// Where HAProxy is in the sidecar image.
pub const PROXY_IN_IMAGE: &str = "/haproxy";
/// What the supervisor prints once it can take its order, and once the proxy listens.
const STARTED: &str = "started";
const READY: &str = "ready";

/// The supervisor's order: HAProxy's configuration, and the files it names as
/// `{file:NAME}` (the certificate and its key, the run's CA), held in memory.
#[derive(Debug, Serialize, Deserialize)]
pub struct ProxyOrder {
    pub config: String,
    pub files: Vec<(String, String)>,
}

/// The pod's side of a sidecar container: its name, the supervisor's stdin (closing it
/// stops the proxy), the staging address the host reaches, and which of
/// [`UNIT_PORTS`] the unit serves on now.
pub struct Pod {
    pub container: String,
    stdin: Option<ChildStdin>,
    staging: String,
    port: usize,
}

impl Pod {
    /// The port a replacement takes: the other one.
    pub fn next_port(&self) -> u16 {
        UNIT_PORTS[1 - self.port]
    }

    /// Where a replacement listens, in the pod's namespace.
    fn next_addr(&self) -> String {
        format!("127.0.0.1:{}", self.next_port())
    }
}

/// A sidecar container started and waiting for its order.
pub struct PendingPod {
    process: String,
    container: String,
    child: Child,
    stdin: ChildStdin,
    stdout: tokio::io::Lines<BufReader<ChildStdout>>,
    stderr_tail: Arc<Mutex<VecDeque<String>>>,
}

fn docker_error(
    process: &str,
    what: &'static str,
) -> impl FnOnce(container::ContainerError) -> SidecarError {
    let process = process.to_string();
    move |e| SidecarError::Io {
        process,
        what,
        source: std::io::Error::other(e.to_string()),
    }
}

/// The name of the sidecar container of unit process `process`: the name callers reach
/// the unit by.
pub fn container_name(target: &ContainerTarget, process: &str) -> String {
    container::container_name(
        &target.run_id,
        crate::launch::process::next_container(),
        &format!("sc-{process}"),
    )
}

impl PendingPod {
    /// The sidecar container's name: the pod's name on the run's network.
    pub fn container(&self) -> &str {
        &self.container
    }

    /// Starts the sidecar container `name` of `process` (it owns the pod's network
    /// namespace), on `cores` when given, and waits until its supervisor can take an order.
    pub async fn start(
        target: &ContainerTarget,
        name: &str,
        process: &str,
        cores: Option<&crate::launch::cores::UnitCores>,
        timeout: Duration,
    ) -> Result<Self, SidecarError> {
        let Some(image) = &target.sidecar_image else {
            return Err(SidecarError::Io {
                process: process.into(),
                what: "no sidecar image was built for this run",
                source: std::io::ErrorKind::NotFound.into(),
            });
        };
        let ports = [CONTAINER_PORT, ADMIN_PORT, STAGING_PORT];
        let args = target.run_args(
            name,
            &format!("{SIDECAR_PREFIX}{process}"),
            Placement::OnNetwork(&ports),
            &image.tag,
            cores,
        );
        let harness = std::process::id();
        let mut command = Command::new("docker");
        command
            .args(&args)
            .args(["sidecar-proxy", "--run-id", &target.run_id])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        // SAFETY: the closure runs in the forked child before exec and only makes
        // async-signal-safe system calls (prctl, getppid).
        unsafe {
            command.pre_exec(move || crate::launch::process::die_with_parent(harness));
        }
        let mut child = command
            .spawn()
            .map_err(io_error(process, "cannot run docker"))?;
        let stdin = child.stdin.take().expect("piped");
        let stdout = BufReader::new(child.stdout.take().expect("piped")).lines();
        let stderr_tail = Arc::new(Mutex::new(VecDeque::new()));
        if let Some(stderr) = child.stderr.take() {
            tokio::spawn(crate::launch::process::keep_stderr_tail(
                format!("{SIDECAR_PREFIX}{process}"),
                stderr,
                stderr_tail.clone(),
            ));
        }
        let mut pending = PendingPod {
            process: process.to_string(),
            container: name.to_string(),
            child,
            stdin,
            stdout,
            stderr_tail,
        };
        pending.expect(STARTED, timeout, "while starting").await?;
        Ok(pending)
    }

    /// Waits for the supervisor's `line`, or says why it never came.
    async fn expect(
        &mut self,
        line: &str,
        timeout: Duration,
        when: &'static str,
    ) -> Result<(), SidecarError> {
        let found = tokio::time::timeout(timeout, async {
            while let Ok(Some(got)) = self.stdout.next_line().await {
                if got.trim() == line {
                    return true;
                }
            }
            false
        })
        .await;
        if found == Ok(true) {
            return Ok(());
        }
        let status = match tokio::time::timeout(Duration::from_secs(2), self.child.wait()).await {
            Ok(Ok(status)) => crate::launch::process::describe_status(status),
            _ => format!("did not say {line:?} within {timeout:?}"),
        };
        tokio::time::sleep(Duration::from_millis(20)).await; // let the stderr tail fill
        Err(SidecarError::Exited {
            process: self.process.clone(),
            status,
            when,
            stderr: crate::launch::process::joined(&self.stderr_tail),
        })
    }

    /// Sends the proxy its configuration: inbound to the unit on the pod's first port,
    /// each outbound listener to the sidecar of its process in `callees` (process →
    /// address on the run's network), secured by `tls`; waits until it listens.
    pub async fn configure(
        mut self,
        target: &ContainerTarget,
        callees: &[(String, String)],
        tls: Option<&SidecarTls>,
        timeout: Duration,
    ) -> Result<Sidecar, SidecarError> {
        let outbound: Vec<(String, String, String)> = callees
            .iter()
            .zip(FIRST_OUTBOUND_PORT..)
            .map(|((callee, addr), port)| {
                (callee.clone(), addr.clone(), format!("127.0.0.1:{port}"))
            })
            .collect();
        let files = ProxyFiles {
            inbound: format!("0.0.0.0:{CONTAINER_PORT}"),
            admin: format!("ipv4@0.0.0.0:{ADMIN_PORT}"),
            cert: tls.map(|_| "{file:cert}".to_string()),
            ca: tls.map(|_| "{file:ca}".to_string()),
            staging: Some((
                format!("0.0.0.0:{STAGING_PORT}"),
                format!("127.0.0.1:{}", UNIT_PORTS[1]),
            )),
        };
        let unit_addr = format!("127.0.0.1:{}", UNIT_PORTS[0]);
        let order = ProxyOrder {
            config: super::config(&self.process, &unit_addr, &outbound, &files, tls),
            files: tls
                .map(|t| {
                    vec![
                        ("cert".to_string(), t.cert_with_key()),
                        ("ca".to_string(), t.credentials.ca_pem.clone()),
                    ]
                })
                .unwrap_or_default(),
        };
        let mut line = serde_json::to_vec(&order).expect("an order serializes");
        line.push(b'\n');
        let sent = async {
            self.stdin.write_all(&line).await?;
            self.stdin.flush().await
        };
        sent.await
            .map_err(io_error(&self.process, "cannot send its configuration"))?;
        self.expect(READY, timeout, "while starting its proxy")
            .await?;
        let located = located(target.clone(), self.container.clone()).await;
        let (inbound, admin, staging, pid) =
            located.map_err(docker_error(&self.process, "cannot locate its container"))?;
        let admin = admin.parse().map_err(|e| {
            io_error(&self.process, "cannot read its admin address")(std::io::Error::other(e))
        })?;
        Ok(Sidecar {
            process: self.process,
            pid,
            inbound,
            admin,
            outbound: outbound
                .into_iter()
                .map(|(_, addr, local)| (addr, local))
                .collect::<BTreeMap<_, _>>(),
            child: self.child,
            stderr_tail: self.stderr_tail,
            pod: Some(Pod {
                container: self.container,
                stdin: Some(self.stdin),
                staging,
                port: 0,
            }),
        })
    }
}

/// The host's addresses of pod `name`'s inbound, admin and staging ports, and its proxy's
/// host pid (for /proc).
async fn located(
    target: ContainerTarget,
    name: String,
) -> Result<(String, String, String, u32), container::ContainerError> {
    tokio::task::spawn_blocking(move || {
        let inbound = target.published_port(&name, CONTAINER_PORT)?;
        let admin = target.published_port(&name, ADMIN_PORT)?;
        let staging = target.published_port(&name, STAGING_PORT)?;
        let pid = target.pid_of_command(&name, HAPROXY)?;
        Ok((inbound, admin, staging, pid))
    })
    .await
    .unwrap_or_else(|e| {
        Err(container::ContainerError::Docker {
            command: "port/top".into(),
            detail: e.to_string(),
        })
    })
}

impl Sidecar {
    /// The pod of a sidecar container (`None` for a sidecar process).
    pub fn pod(&self) -> Option<&Pod> {
        self.pod.as_ref()
    }

    /// Points the staging listener at a replacement on the pod's other port; the host
    /// reaches it at the returned address, before any caller is routed to it.
    pub async fn stage_next(&self) -> Result<String, SidecarError> {
        let Some(pod) = &self.pod else {
            return Err(SidecarError::Io {
                process: self.process.clone(),
                what: "has no pod to stage a replacement in",
                source: std::io::ErrorKind::Unsupported.into(),
            });
        };
        self.set_server("next/next", &pod.next_addr()).await?;
        Ok(pod.staging.clone())
    }

    /// Points the proxy at the replacement staged on the pod's other port.
    pub async fn switch_to_next(&mut self) -> Result<(), SidecarError> {
        let Some(next) = self.pod.as_ref().map(Pod::next_addr) else {
            return Ok(());
        };
        self.point_at(&next).await?;
        if let Some(pod) = &mut self.pod {
            pod.port = 1 - pod.port;
        }
        Ok(())
    }

    /// Closes the supervisor's stdin: it stops the proxy and exits, and `--rm` removes
    /// the container.
    pub(super) fn close_pod(&mut self) {
        if let Some(pod) = &mut self.pod {
            pod.stdin.take();
        }
    }
}

/// The `grainbench-unit sidecar-proxy` entry, inside a sidecar container: takes the order on
/// stdin, runs HAProxy from memory-only files, says `ready` once it listens, and stops it
/// when stdin closes (the harness is gone or done) or exits with it.
pub fn supervise() -> Result<(), SupervisorError> {
    let mut out = std::io::stdout();
    writeln!(out, "{STARTED}").and_then(|_| out.flush())?;
    let mut line = String::new();
    // The lock goes at once: the watcher below reads the rest of stdin.
    if std::io::stdin().lock().read_line(&mut line)? == 0 {
        return Ok(()); // the harness went away before sending anything
    }
    let order: ProxyOrder = serde_json::from_str(&line)?;
    let mut config = order.config;
    // Every file a memory-only descriptor the proxy inherits (not closed on exec).
    let mut held = Vec::new();
    for (name, text) in &order.files {
        let fd = memfd_inherited(name, text)?;
        config = config.replace(
            &format!("{{file:{name}}}"),
            &format!("/dev/fd/{}", raw(&fd)),
        );
        held.push(fd);
    }
    let config_fd = memfd_inherited("haproxy.cfg", &config)?;
    let me = std::process::id();
    let mut proxy = std::process::Command::new(PROXY_IN_IMAGE);
    proxy
        .args(["-db", "-f", &format!("/dev/fd/{}", raw(&config_fd))])
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    // SAFETY: the closure runs in the forked child before exec and only makes
    // async-signal-safe system calls (prctl, getppid).
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut proxy, move || {
            crate::launch::process::die_with_parent(me)
        });
    }
    let mut child = proxy.spawn()?;
    let listening = wait_listening(&mut child, Duration::from_secs(10));
    if !listening {
        let status = child.try_wait()?;
        let _ = child.kill();
        return Err(SupervisorError::NotListening(format!("{status:?}")));
    }
    writeln!(out, "{READY}").and_then(|_| out.flush())?;
    // Stdin's end (the harness closed it, or died) stops the proxy; so does its own exit.
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut rest = String::new();
        while std::io::stdin()
            .lock()
            .read_line(&mut rest)
            .is_ok_and(|n| n > 0)
        {
            rest.clear();
        }
        let _ = done_tx.send(());
    });
    loop {
        if let Some(status) = child.try_wait()? {
            return Err(SupervisorError::ProxyExited(format!("{status}")));
        }
        if done_rx.recv_timeout(Duration::from_millis(100)).is_ok() {
            // SAFETY: signals our own child by pid while we hold it.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let deadline = std::time::Instant::now() + Duration::from_secs(2);
            while child.try_wait()?.is_none() && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
            drop(held);
            return Ok(());
        }
    }
}

/// Whether the proxy accepts on the inbound port within `timeout` (false: it exited, or
/// never listened).
fn wait_listening(child: &mut std::process::Child, timeout: Duration) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], CONTAINER_PORT));
    while std::time::Instant::now() < deadline {
        if child.try_wait().ok().flatten().is_some() {
            return false;
        }
        if std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

fn raw(fd: &std::os::fd::OwnedFd) -> i32 {
    std::os::fd::AsRawFd::as_raw_fd(fd)
}

/// A memory-only file holding `text` that a child inherits (no close-on-exec).
fn memfd_inherited(name: &str, text: &str) -> std::io::Result<std::os::fd::OwnedFd> {
    super::memfd_with(name, text, 0)
}

/// Why the supervisor stopped.
#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("malformed order on stdin: {0}")]
    Order(#[from] serde_json::Error),
    #[error("haproxy never listened on port {CONTAINER_PORT} (exit: {0})")]
    NotListening(String),
    #[error("haproxy exited ({0})")]
    ProxyExited(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pod's proxy listens on the container's addresses (no inherited descriptors),
    /// keeps a staging way in to the unit's other port, and names its files by
    /// placeholder for the supervisor to fill.
    #[test]
    fn a_pod_s_configuration_binds_in_its_namespace() {
        let files = ProxyFiles {
            inbound: format!("0.0.0.0:{CONTAINER_PORT}"),
            admin: format!("ipv4@0.0.0.0:{ADMIN_PORT}"),
            cert: Some("{file:cert}".into()),
            ca: Some("{file:ca}".into()),
            staging: Some(("0.0.0.0:8082".into(), "127.0.0.1:9091".into())),
        };
        let text = super::super::config(
            "nano-checkout",
            "127.0.0.1:9090",
            &[(
                "nano-pay".into(),
                "gb1-sc-nano-pay:8080".into(),
                "127.0.0.1:10000".into(),
            )],
            &files,
            None,
        );
        assert!(
            text.contains("stats socket ipv4@0.0.0.0:8081 level admin"),
            "{text}"
        );
        assert!(text.contains("bind 0.0.0.0:8080\n"), "{text}");
        assert!(text.contains("server unit 127.0.0.1:9090\n"), "{text}");
        assert!(
            text.contains("frontend staging\n  bind 0.0.0.0:8082\n"),
            "{text}"
        );
        assert!(text.contains("server next 127.0.0.1:9091\n"), "{text}");
        assert!(text.contains("bind 127.0.0.1:10000\n"), "{text}");
        assert!(
            text.contains("server peer gb1-sc-nano-pay:8080\n"),
            "{text}"
        );
    }
}
