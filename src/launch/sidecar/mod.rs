//! Sidecar proxies (`--mesh sidecar`): an HAProxy process beside every unit process, the
//! way a service mesh puts an Envoy beside every pod.
//!
//! - Inbound: the unit's public address is the sidecar's; it forwards to the unit on the
//!   unit's own (private) loopback port. The driver, the harness and every caller's
//!   sidecar reach the unit this way.
//! - Outbound: the unit's routes point at its own sidecar, one loopback listener per
//!   process it calls; each forwards to that process's inbound sidecar. A hop between two
//!   units crosses two proxies; the driver's request crosses one.
//! - Security: under `tls` and `mtls` the sidecars terminate it (the unit and its sidecar
//!   speak plaintext on loopback, sidecar to sidecar speaks TLS with the run's CA, each
//!   sidecar presenting its unit's certificate), as Istio does.
//!
//! Nothing touches the disk: the harness binds every listener (so it knows every address
//! before any proxy starts, with no port race) and hands them to HAProxy as inherited
//! descriptors (`bind fd@N`); the configuration, the certificate and its key are written
//! to memory-only files (`memfd`) HAProxy reads as `/dev/fd/N`. The admin socket (HAProxy's
//! runtime API, also an inherited listener) repoints a sidecar at its unit's replacement,
//! so a sidecar outlives its unit being replaced, as in Kubernetes.
//!
//! No orphans: each proxy runs in its own process group, is killed when its handle drops,
//! and gets SIGKILL from the kernel when the harness dies (`PR_SET_PDEATHSIG`). Each
//! carries `GRAINBENCH_RUN=<run id>` in its environment, so a run's proxies can be found.
//!
//! Under `--target compose` each sidecar is a container that owns its unit's network
//! namespace instead, the unit's container joining it: see [`pod`]. Both kinds are one
//! [`Sidecar`] to the rest of the harness (its address, its admin socket, its pid).

pub mod pod;

use super::process::die_with_parent;
use grain_runtime::security::{Credentials, SecurityMode};
use std::collections::{BTreeMap, VecDeque};
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

/// The proxy every sidecar runs (Debian's `haproxy`).
pub const HAPROXY: &str = "haproxy";

/// The environment variable naming the run on every sidecar process.
pub const RUN_ENV: &str = "GRAINBENCH_RUN";

/// How the harness names a sidecar among the processes it samples: `sidecar:<process>`.
pub const SIDECAR_PREFIX: &str = "sidecar:";

/// Threads of each proxy: one, as a sidecar gets a small CPU share beside its unit.
pub const PROXY_THREADS: usize = 1;

/// Why a sidecar could not be started, repointed or read.
#[derive(Debug, thiserror::Error)]
pub enum SidecarError {
    #[error(
        "--mesh sidecar needs HAProxy (`apt-get install haproxy`): cannot run `{HAPROXY} -v`: {0}"
    )]
    Missing(std::io::Error),
    #[error("sidecar of {process}: {what}: {source}")]
    Io {
        process: String,
        what: &'static str,
        source: std::io::Error,
    },
    #[error("sidecar of {process} exited ({status}) {when}{}", tail(stderr))]
    Exited {
        process: String,
        status: String,
        when: &'static str,
        stderr: String,
    },
    #[error("sidecar of {process}: its admin socket answered {reply:?} to {command:?}")]
    Admin {
        process: String,
        command: String,
        reply: String,
    },
}

/// What a failed I/O step of the sidecar of `process` reports: `what` and its cause.
fn io_error(process: &str, what: &'static str) -> impl FnOnce(std::io::Error) -> SidecarError {
    let process = process.to_string();
    move |source| SidecarError::Io {
        process,
        what,
        source,
    }
}

fn tail(stderr: &str) -> String {
    if stderr.trim().is_empty() {
        String::new()
    } else {
        format!("; its last output:\n{}", stderr.trim_end())
    }
}

/// Where the proxy's binary is (on the PATH), for what a sidecar ships.
pub fn proxy_binary() -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| std::path::Path::new(dir).join(HAPROXY))
        .find(|path| path.is_file())
}

/// The proxy's name and version as it states them (`HAProxy version 2.6.12-1+deb12u3`).
pub fn proxy_version() -> Result<String, SidecarError> {
    let output = std::process::Command::new(HAPROXY)
        .arg("-v")
        .stdin(Stdio::null())
        .output()
        .map_err(SidecarError::Missing)?;
    let text = String::from_utf8_lossy(&output.stdout);
    let first = text.lines().next().unwrap_or("").trim();
    // "HAProxy version 2.6.12-1+deb12u3 2025/10/03 - https://haproxy.org/"
    let words: Vec<&str> = first.split_whitespace().take(3).collect();
    if words.len() < 3 {
        return Err(SidecarError::Missing(std::io::Error::other(format!(
            "unexpected version line {first:?}"
        ))));
    }
    Ok(words.join(" "))
}

/// How a sidecar secures the hops it carries (from the unit's credentials).
#[derive(Clone)]
pub struct SidecarTls {
    pub mode: SecurityMode,
    pub credentials: Arc<Credentials>,
}

impl SidecarTls {
    /// The certificate and its key, in one PEM file, as HAProxy's `crt` reads them.
    fn cert_with_key(&self) -> String {
        format!("{}{}", self.credentials.cert_pem, self.credentials.key_pem)
    }

    /// The host name every peer's certificate carries (what a sidecar checks).
    fn member_name(&self) -> String {
        format!("member.{}.grainbench.invalid", self.credentials.run)
    }
}

/// A sidecar whose listeners are bound and whose proxy has not started yet.
pub struct BoundSidecar {
    process: String,
    inbound: TcpListener,
    /// Each process the unit calls, by name, and the listener its calls to it leave by.
    outbound: Vec<(String, TcpListener)>,
    admin: TcpListener,
}

fn loopback_listener() -> std::io::Result<TcpListener> {
    TcpListener::bind("127.0.0.1:0")
}

fn addr_of(listener: &TcpListener) -> std::io::Result<SocketAddr> {
    listener.local_addr()
}

impl BoundSidecar {
    /// Binds the sidecar of `process`: its public (inbound) listener, one outbound
    /// listener per process in `callees`, and its admin socket.
    pub fn bind(process: &str, callees: Vec<String>) -> Result<Self, SidecarError> {
        let io = |what| io_error(process, what);
        let inbound = loopback_listener().map_err(io("cannot bind its inbound listener"))?;
        let admin = loopback_listener().map_err(io("cannot bind its admin socket"))?;
        let outbound = callees
            .into_iter()
            .map(|callee| Ok((callee, loopback_listener()?)))
            .collect::<std::io::Result<Vec<_>>>()
            .map_err(io("cannot bind an outbound listener"))?;
        Ok(BoundSidecar {
            process: process.to_string(),
            inbound,
            outbound,
            admin,
        })
    }

    /// Where the unit is reached from now on: the sidecar's inbound listener.
    pub fn inbound_addr(&self) -> Result<String, SidecarError> {
        addr_of(&self.inbound)
            .map(|a| a.to_string())
            .map_err(io_error(&self.process, "cannot read its inbound address"))
    }

    /// Starts the proxy: inbound to the unit at `unit_addr`; each outbound listener to
    /// the inbound sidecar of its process in `inbound_of` (process → address).
    pub fn start(
        self,
        unit_addr: &str,
        inbound_of: &BTreeMap<String, String>,
        tls: Option<&SidecarTls>,
        run_id: &str,
        cores: Option<&crate::launch::cores::UnitCores>,
    ) -> Result<Sidecar, SidecarError> {
        let process = self.process.clone();
        let io = |what| io_error(&process, what);
        let inbound = self.inbound_addr()?;
        let admin = addr_of(&self.admin).map_err(io("cannot read its admin address"))?;
        let mut routes = Vec::new();
        let mut outbound = BTreeMap::new();
        for (callee, listener) in &self.outbound {
            let local = addr_of(listener).map_err(io("cannot read an outbound address"))?;
            let Some(target) = inbound_of.get(callee) else {
                continue;
            };
            outbound.insert(target.clone(), local.to_string());
            routes.push((callee.clone(), target.clone(), listener.as_raw_fd()));
        }
        let pem = tls.map(|t| (t.cert_with_key(), t.credentials.ca_pem.clone()));
        let (cert_fd, ca_fd) = match &pem {
            Some((cert, ca)) => (
                Some(memfd("grainbench-cert", cert).map_err(io("cannot hold its certificate"))?),
                Some(memfd("grainbench-ca", ca).map_err(io("cannot hold the run's CA"))?),
            ),
            None => (None, None),
        };
        // Every inherited descriptor lands above every one the harness holds, so moving
        // one into place never overwrites another before it is moved.
        let mut sources: Vec<RawFd> = vec![self.inbound.as_raw_fd(), self.admin.as_raw_fd()];
        sources.extend(routes.iter().map(|r| r.2));
        sources.extend(cert_fd.iter().chain(ca_fd.iter()).map(|f| f.as_raw_fd()));
        let base = highest_open_fd().max(*sources.iter().max().unwrap_or(&2)) + 1;
        let config_target = base + sources.len() as RawFd;
        let slot =
            |source: RawFd| base + sources.iter().position(|&s| s == source).unwrap_or(0) as RawFd;
        let path = |fd: &OwnedFd| format!("/dev/fd/{}", slot(fd.as_raw_fd()));
        let files = ProxyFiles {
            inbound: format!("fd@{}", slot(self.inbound.as_raw_fd())),
            admin: format!("fd@{}", slot(self.admin.as_raw_fd())),
            cert: cert_fd.as_ref().map(path),
            ca: ca_fd.as_ref().map(path),
            staging: None,
        };
        let outbound_slots: Vec<(String, String, String)> = routes
            .iter()
            .map(|(callee, target, fd)| {
                (callee.clone(), target.clone(), format!("fd@{}", slot(*fd)))
            })
            .collect();
        let text = config(&self.process, unit_addr, &outbound_slots, &files, tls);
        let config_fd =
            memfd("grainbench-haproxy.cfg", &text).map_err(io("cannot hold its configuration"))?;
        let mut moves: Vec<(RawFd, RawFd)> = sources.iter().map(|&s| (s, slot(s))).collect();
        moves.push((config_fd.as_raw_fd(), config_target));
        let mut command = Command::new(HAPROXY);
        command
            .args(["-db", "-f", &format!("/dev/fd/{config_target}")])
            .env(RUN_ENV, run_id)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let harness = std::process::id();
        let cores = cores.map(|c| c.cpu_set());
        // SAFETY: the closure runs in the forked child before exec and only makes
        // async-signal-safe system calls (dup2, sched_setaffinity, prctl, getppid).
        unsafe {
            command.pre_exec(move || {
                for &(from, to) in &moves {
                    if libc::dup2(from, to) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                if let Some(cores) = &cores {
                    crate::launch::cores::confine(cores)?;
                }
                die_with_parent(harness)
            });
        }
        let mut child = command.spawn().map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => SidecarError::Missing(e),
            _ => io("cannot start haproxy")(e),
        })?;
        let stderr_tail = Arc::new(Mutex::new(VecDeque::new()));
        if let Some(stderr) = child.stderr.take() {
            tokio::spawn(super::process::keep_stderr_tail(
                format!("{SIDECAR_PREFIX}{}", self.process),
                stderr,
                stderr_tail.clone(),
            ));
        }
        // The proxy holds its own copies now; the harness's close with `self` and the
        // memory files here.
        Ok(Sidecar {
            pid: child.id().unwrap_or(0),
            process: self.process,
            inbound,
            admin,
            outbound,
            child,
            stderr_tail,
            pod: None,
        })
    }
}

/// Where a proxy listens and finds its files, as its configuration names them: inherited
/// descriptors (`fd@5`, `/dev/fd/7`) for a sidecar process, addresses in its pod's network
/// namespace for a sidecar container.
pub(super) struct ProxyFiles {
    /// The inbound listener (`fd@5`, `0.0.0.0:8080`).
    pub(super) inbound: String,
    /// The admin socket (`fd@6`, `ipv4@0.0.0.0:8081`).
    pub(super) admin: String,
    /// The certificate with its key, and the run's CA, as paths.
    pub(super) cert: Option<String>,
    pub(super) ca: Option<String>,
    /// A container's second way in, to a replacement on its other port before it is
    /// routed to (the readiness gate): its listener and where it forwards.
    pub(super) staging: Option<(String, String)>,
}

/// The highest descriptor this process has open (from `/proc/self/fd`).
fn highest_open_fd() -> RawFd {
    std::fs::read_dir("/proc/self/fd")
        .map(|dir| {
            dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<RawFd>().ok())
                .max()
                .unwrap_or(2)
        })
        .unwrap_or(1024)
}

/// A memory-only file holding `text` (closed on exec; the proxy gets a copy by `dup2`).
fn memfd(name: &str, text: &str) -> std::io::Result<OwnedFd> {
    memfd_with(name, text, libc::MFD_CLOEXEC)
}

/// A memory-only file holding `text`, created with `flags` (`0`: a child inherits it).
fn memfd_with(name: &str, text: &str, flags: libc::c_uint) -> std::io::Result<OwnedFd> {
    let name = std::ffi::CString::new(name).map_err(std::io::Error::other)?;
    // SAFETY: memfd_create with a valid C string; the descriptor is owned at once.
    let fd = unsafe { libc::memfd_create(name.as_ptr(), flags) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` was just created and is owned by nothing else.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut file = std::fs::File::from(owned);
    std::io::Write::write_all(&mut file, text.as_bytes())?;
    Ok(OwnedFd::from(file))
}

/// One sidecar's HAProxy configuration. `outbound`: each callee process, its inbound
/// sidecar's address and where the listener its calls leave by is (`fd@8`,
/// `127.0.0.1:10000`).
pub(super) fn config(
    process: &str,
    unit_addr: &str,
    outbound: &[(String, String, String)],
    files: &ProxyFiles,
    tls: Option<&SidecarTls>,
) -> String {
    let mut text = format!(
        "# sidecar of {process}, generated by grainbench\n\
         global\n  nbthread {PROXY_THREADS}\n  maxconn 4096\n  stats socket {} level admin\n\n\
         defaults\n  mode http\n  option http-keep-alive\n  timeout connect 2s\n  timeout client 60s\n  timeout server 60s\n  timeout http-keep-alive 60s\n\n",
        files.admin
    );
    // Inbound: TLS ends here when the hops are secured; mutual TLS asks for the caller's
    // certificate, signed by the run's CA.
    let server_side = match (tls, &files.cert, &files.ca) {
        (Some(t), Some(cert), Some(ca)) if t.mode == SecurityMode::Mtls => {
            format!(" ssl crt {cert} ca-file {ca} verify required")
        }
        (Some(_), Some(cert), _) => format!(" ssl crt {cert}"),
        _ => String::new(),
    };
    text.push_str(&format!(
        "frontend inbound\n  bind {}{server_side}\n  default_backend unit\n\nbackend unit\n  server unit {unit_addr}\n\n",
        files.inbound
    ));
    if let Some((bind, next)) = &files.staging {
        text.push_str(&format!(
            "# a replacement, before it is routed to\nfrontend staging\n  bind {bind}\n  default_backend next\n\nbackend next\n  server next {next}\n\n"
        ));
    }
    // Outbound: to the callee's sidecar, checking its certificate against the run's CA
    // and, under mutual TLS, presenting this unit's.
    let client_side = match (tls, &files.cert, &files.ca) {
        (Some(t), Some(cert), Some(ca)) => {
            let own = if t.mode == SecurityMode::Mtls {
                format!(" crt {cert}")
            } else {
                String::new()
            };
            let name = t.member_name();
            format!(" ssl verify required ca-file {ca} verifyhost {name} sni str({name}){own}")
        }
        _ => String::new(),
    };
    for (i, (callee, target, bind)) in outbound.iter().enumerate() {
        text.push_str(&format!(
            "# to {callee}\nfrontend out{i}\n  bind {bind}\n  default_backend to{i}\n\nbackend to{i}\n  server peer {target}{client_side}\n\n"
        ));
    }
    text
}

/// A running sidecar.
pub struct Sidecar {
    /// The unit process it stands beside.
    pub process: String,
    pub pid: u32,
    /// Its public address: where the unit is reached.
    pub inbound: String,
    admin: SocketAddr,
    /// Each callee's inbound address → the local listener the unit reaches it by.
    outbound: BTreeMap<String, String>,
    /// The proxy, or for a sidecar container the `docker run` client that holds it.
    child: Child,
    stderr_tail: Arc<Mutex<VecDeque<String>>>,
    /// A sidecar container's pod (`None`: a process beside its unit).
    pod: Option<pod::Pod>,
}

impl Sidecar {
    /// How the harness names it: `sidecar:<process>`.
    pub fn name(&self) -> String {
        format!("{SIDECAR_PREFIX}{}", self.process)
    }

    /// Where the unit reaches `addr` (a process's public address) through this sidecar;
    /// `None` for an address it has no listener for (a process the unit never calls).
    pub fn outbound_to(&self, addr: &str) -> Option<&str> {
        self.outbound.get(addr).map(String::as_str)
    }

    /// One command on the admin socket, and its answer.
    async fn admin(&self, command: &str) -> Result<String, SidecarError> {
        let io = |what| io_error(&self.process, what);
        let exchange = async {
            let mut stream = tokio::net::TcpStream::connect(self.admin).await?;
            stream.write_all(format!("{command}\n").as_bytes()).await?;
            let mut reply = String::new();
            stream.read_to_string(&mut reply).await?;
            Ok::<_, std::io::Error>(reply)
        };
        match tokio::time::timeout(Duration::from_secs(5), exchange).await {
            Ok(reply) => reply.map_err(io("its admin socket failed")),
            Err(_) => Err(io("its admin socket did not answer within 5 s")(
                std::io::ErrorKind::TimedOut.into(),
            )),
        }
    }

    /// Waits until the proxy answers on its admin socket (it has read its configuration
    /// and owns its listeners), or says why it exited.
    pub async fn wait_ready(&mut self) -> Result<(), SidecarError> {
        let reply = self.admin("show info").await;
        match reply {
            Ok(info) if info.contains("Name:") => Ok(()),
            outcome => Err(self
                .exited("while starting")
                .unwrap_or_else(|| SidecarError::Admin {
                    process: self.process.clone(),
                    command: "show info".into(),
                    reply: match outcome {
                        Ok(reply) => reply,
                        Err(error) => error.to_string(),
                    },
                })),
        }
    }

    /// Points its inbound side at the unit's new process, at `unit_addr` (a replacement:
    /// the sidecar stays). Connections already open finish on the old one.
    pub async fn point_at(&self, unit_addr: &str) -> Result<(), SidecarError> {
        self.set_server("unit/unit", unit_addr).await
    }

    /// Points `server` (`backend/server`) at `addr` through the admin socket.
    async fn set_server(&self, server: &str, addr: &str) -> Result<(), SidecarError> {
        let (ip, port) = addr.rsplit_once(':').unwrap_or((addr, "0"));
        let command = format!("set server {server} addr {ip} port {port}");
        let reply = self.admin(&command).await?;
        if reply.contains("changed") || reply.contains("no need to change") {
            Ok(())
        } else {
            Err(SidecarError::Admin {
                process: self.process.clone(),
                command,
                reply: reply.trim().to_string(),
            })
        }
    }

    /// Its exit, if it has exited.
    pub fn exited(&mut self, when: &'static str) -> Option<SidecarError> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(SidecarError::Exited {
                process: self.process.clone(),
                status: super::process::describe_status(status),
                when,
                stderr: super::process::joined(&self.stderr_tail),
            }),
            _ => None,
        }
    }

    /// Stops the proxy (SIGTERM: it closes at once; its unit has already drained), then
    /// SIGKILL if it is still there at `deadline`; how it ended.
    pub async fn stop(&mut self, deadline: tokio::time::Instant) -> String {
        // A sidecar container's supervisor stops its proxy when its stdin closes.
        self.close_pod();
        if let Some(pid) = self.child.id().filter(|_| self.pod.is_none()) {
            // SAFETY: signals our own child process, by pid, while we still hold it.
            unsafe { libc::kill(pid as i32, libc::SIGTERM) };
        }
        match tokio::time::timeout_at(deadline, self.child.wait()).await {
            Ok(Ok(status)) => super::process::describe_status(status),
            _ => {
                let _ = self.child.start_kill();
                let _ = self.child.wait().await;
                "killed: still running after SIGTERM".to_string()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files() -> ProxyFiles {
        ProxyFiles {
            inbound: "fd@20".into(),
            admin: "fd@21".into(),
            cert: Some("/dev/fd/22".into()),
            ca: Some("/dev/fd/23".into()),
            staging: None,
        }
    }

    #[test]
    fn a_plaintext_sidecar_forwards_inbound_to_its_unit_and_each_outbound_to_a_peer() {
        let text = config(
            "nano-checkout",
            "127.0.0.1:4000",
            &[("nano-pay".into(), "127.0.0.1:5000".into(), "fd@24".into())],
            &ProxyFiles {
                cert: None,
                ca: None,
                ..files()
            },
            None,
        );
        assert!(text.contains("stats socket fd@21 level admin"), "{text}");
        assert!(text.contains("bind fd@20\n"), "{text}");
        assert!(text.contains("server unit 127.0.0.1:4000\n"), "{text}");
        assert!(
            text.contains("# to nano-pay\nfrontend out0\n  bind fd@24\n"),
            "{text}"
        );
        assert!(text.contains("server peer 127.0.0.1:5000\n"), "{text}");
        assert!(!text.contains("ssl"), "{text}");
        assert!(text.contains(&format!("nbthread {PROXY_THREADS}")));
    }

    #[test]
    fn under_mutual_tls_sidecars_ask_for_and_present_certificates() {
        let pki = crate::launch::pki::RunPki::new(SecurityMode::Mtls, "run7").unwrap();
        let tls = SidecarTls {
            mode: SecurityMode::Mtls,
            credentials: Arc::new(pki.issue("nano-checkout").unwrap()),
        };
        let text = config(
            "nano-checkout",
            "127.0.0.1:4000",
            &[("nano-pay".into(), "127.0.0.1:5000".into(), "fd@24".into())],
            &files(),
            Some(&tls),
        );
        assert!(
            text.contains("bind fd@20 ssl crt /dev/fd/22 ca-file /dev/fd/23 verify required"),
            "{text}"
        );
        assert!(
            text.contains("server peer 127.0.0.1:5000 ssl verify required ca-file /dev/fd/23 verifyhost member.run7.grainbench.invalid sni str(member.run7.grainbench.invalid) crt /dev/fd/22"),
            "{text}"
        );
        assert!(
            !text.contains("BEGIN"),
            "no key or certificate in the configuration"
        );
        let one_way = SidecarTls {
            mode: SecurityMode::Tls,
            ..tls
        };
        let text = config("a", "127.0.0.1:1", &[], &files(), Some(&one_way));
        assert!(text.contains("bind fd@20 ssl crt /dev/fd/22\n"), "{text}");
    }
}
