//! Hosting one unit process: bind 127.0.0.1 on a port the OS picks, announce it on
//! stdout, take routes from stdin, answer `/health` once routed, and shut down gracefully
//! (stop accepting, finish in-flight requests) on SIGTERM or when stdin closes — which is
//! also how a unit notices that the harness died, even by SIGKILL. Every unit also hands
//! out the injected-delay errors it recorded (`POST /grain/delay-errors/take`). The layers
//! every call passes through (a trace span, the token check, injected faults) are
//! [`layers`]'s.

mod layers;

use crate::listen::stopped;
pub use crate::listen::{bind, bind_loopback, LISTEN_BACKLOG};

pub use layers::Layers;

use crate::model::{Listen, Routes};
use crate::network::DelayErrors;
use crate::security::{server_config, Credentials, TokenKey};
use crate::tls_listener::TlsListener;
pub use crate::tls_listener::{TlsPeer, HANDSHAKES, HANDSHAKE_TIMEOUT};
use crate::transport::{DirectCalls, Handlers, Transport};
use crate::wire::{
    DelayErrorsReply, CODEC_TIME_PATH, DELAY_ERRORS_PATH, HEALTH_PATH, LISTENING_PREFIX,
};
use axum::{
    extract::State,
    http::StatusCode,
    routing::{get, post},
    Json, Router,
};
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use tokio::io::AsyncBufReadExt;
use tokio::sync::{mpsc, watch};

/// Errors that stop a unit from serving.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("unit {unit}: cannot bind its listening address: {source}")]
    Bind {
        unit: String,
        source: std::io::Error,
    },
    #[error("unit {unit}: cannot announce its address on stdout: {source}")]
    Announce {
        unit: String,
        source: std::io::Error,
    },
    #[error("unit {unit}: server failed: {source}")]
    Serve {
        unit: String,
        source: std::io::Error,
    },
    #[error("unit {unit}: {source}")]
    Security {
        unit: String,
        source: crate::security::SecurityError,
    },
}

/// The routes a unit currently knows, replaced whenever the harness sends new ones.
#[derive(Debug, Default)]
pub struct RouteTable {
    current: RwLock<Arc<Routes>>,
    routed: AtomicBool,
    /// Whether the routes inject a fault into some unit's replies (checked on every call
    /// before any lock is taken).
    faulted: AtomicBool,
}

impl RouteTable {
    pub fn current(&self) -> Arc<Routes> {
        // Writers only swap the Arc, so a poisoned lock still holds a whole table.
        self.current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    pub fn replace(&self, routes: Routes) {
        self.faulted
            .store(!routes.faults.is_empty(), Ordering::Release);
        *self
            .current
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(routes);
        self.routed.store(true, Ordering::Release);
    }

    pub fn is_routed(&self) -> bool {
        self.routed.load(Ordering::Acquire)
    }

    /// Whether a fault is injected into some unit's replies now.
    pub fn is_faulted(&self) -> bool {
        self.faulted.load(Ordering::Acquire)
    }
}

/// Binds where `listen` says (127.0.0.1 on a port the OS picks by default).
fn bind_as(listen: &Listen) -> std::io::Result<tokio::net::TcpListener> {
    match &listen.bind {
        Some(text) => {
            let addr = text
                .parse()
                .map_err(|_| std::io::Error::other(format!("{text:?} is not ip:port")))?;
            bind(addr)
        }
        None => bind_loopback(),
    }
}

/// Serves `app` (plus `/health`) until SIGTERM or stdin EOF, then drains and returns;
/// under `security`, over TLS and with every call to `app` checked for its token. Calls
/// from other units may come in `transport` too (see [`crate::transport`]); those to the
/// paths `direct` serves are handed to it without an HTTP request.
pub async fn serve_unit(
    unit: &str,
    routes: Arc<RouteTable>,
    app: Router,
    direct: Option<Arc<dyn DirectCalls>>,
    security: Option<&Credentials>,
    transport: Transport,
    listen: &Listen,
) -> Result<(), HostError> {
    let secured = |source| HostError::Security {
        unit: unit.to_string(),
        source,
    };
    let tls = match security.filter(|c| c.mode.tls()) {
        Some(c) => {
            let mut config = (*server_config(c).map_err(secured)?).clone();
            config.alpn_protocols = alpn(transport);
            Some(Arc::new(config))
        }
        None => None,
    };
    // The harness's own control route sits behind the token check too: any local process
    // could otherwise empty the delay-error counters a measurement reads.
    let app = app.merge(
        Router::new()
            .route(DELAY_ERRORS_PATH, post(take_delay_errors))
            .route(CODEC_TIME_PATH, post(take_codec_time)),
    );
    let token = security
        .map(|c| TokenKey::of(c).map(|key| key.map(|key| (key, c))))
        .transpose()
        .map_err(secured)?
        .flatten()
        // Under mtls+token, a token's issuer must be the caller's certificate.
        .map(|(key, c)| (key, c.mode.client_certificates().then(|| c.run.clone())));
    // Untraced units (no `--trace`) get no tracing layer at all: nothing per request.
    let layers = Arc::new(Layers::new(
        unit,
        routes.clone(),
        token,
        crate::trace::exporting(),
    ));
    let app = layers.around_router(app);
    let body_limit = axum::extract::DefaultBodyLimit::max(crate::wire::MAX_BODY_BYTES);
    // What a call in another transport is handed to: the same handlers, token check
    // and faults as an HTTP call.
    let routed = app.clone().layer(body_limit);
    let handlers = match direct {
        Some(direct) => Handlers::new(routed, direct, layers),
        None => Handlers::router(routed),
    };
    let listener = bind_as(listen).map_err(|source| HostError::Bind {
        unit: unit.to_string(),
        source,
    })?;
    let addr = listener.local_addr().map_err(|source| HostError::Bind {
        unit: unit.to_string(),
        source,
    })?;
    let announced = listen.advertise.clone().unwrap_or_else(|| addr.to_string());
    announce(&format!("{LISTENING_PREFIX}{announced}")).map_err(|source| HostError::Announce {
        unit: unit.to_string(),
        source,
    })?;

    let (stop_tx, stop_rx) = watch::channel(false);
    match &listen.routes {
        // Standalone: routed for good; only SIGTERM stops it.
        Some(fixed) => routes.replace(fixed.clone()),
        None => {
            tokio::spawn(read_routes_until_eof(
                unit.to_string(),
                routes.clone(),
                stop_tx.clone(),
            ));
        }
    }
    tokio::spawn(stop_on_sigterm(stop_tx));

    let health_route = Router::new()
        .route(HEALTH_PATH, get(health))
        .with_state(routes);
    let mut app = app.merge(health_route).layer(body_limit);
    if transport == Transport::Grpc {
        app = app.route_service(
            crate::transport::grpc::CALL_PATH,
            crate::transport::grpc::GrpcEndpoint::new(handlers.clone()),
        );
    }
    // Binary connections are served beside axum's, and drained after them.
    let binary = (transport == Transport::Binary).then(tokio_util::task::TaskTracker::new);
    let served = match tls {
        Some(config) => {
            let hook = binary.clone().map(|tracker| {
                let (handlers, stop) = (handlers.clone(), stop_rx.clone());
                crate::tls_listener::BinaryHook {
                    alpn: crate::transport::binary::ALPN,
                    serve: Arc::new(move |stream, peer| {
                        let serving = crate::transport::binary::serve_connection(
                            stream,
                            handlers.clone(),
                            Some(peer),
                            stop.clone(),
                        );
                        tracker.spawn(serving);
                    }),
                }
            });
            let listener = TlsListener::new(listener, config, hook);
            let app = app.into_make_service_with_connect_info::<TlsPeer>();
            axum::serve(listener, app)
                .with_graceful_shutdown(wait_for_stop(stop_rx))
                .await
        }
        None => {
            let listener = crate::transport::sniff::Sniffing::new(
                listener,
                binary
                    .clone()
                    .map(|tracker| (tracker, handlers, stop_rx.clone())),
            );
            axum::serve(listener, app)
                .with_graceful_shutdown(wait_for_stop(stop_rx))
                .await
        }
    };
    served.map_err(|source| HostError::Serve {
        unit: unit.to_string(),
        source,
    })?;
    if let Some(tracker) = binary {
        tracker.close();
        tracker.wait().await;
    }
    tracing::debug!(unit, "drained and stopped");
    Ok(())
}

/// The ALPN protocols a unit's TLS server offers: what its callers' transport asks for.
fn alpn(transport: Transport) -> Vec<Vec<u8>> {
    match transport {
        Transport::Http1Json => Vec::new(),
        Transport::Grpc => vec![b"h2".to_vec(), b"http/1.1".to_vec()],
        Transport::Binary => vec![
            crate::transport::binary::ALPN.to_vec(),
            b"http/1.1".to_vec(),
        ],
    }
}

fn announce(line: &str) -> std::io::Result<()> {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{line}")?;
    stdout.flush()
}

async fn health(State(routes): State<Arc<RouteTable>>) -> StatusCode {
    if routes.is_routed() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    }
}

async fn take_codec_time() -> Json<crate::transport::codec::CodecTime> {
    Json(crate::transport::codec::take_codec_time())
}

async fn take_delay_errors() -> Json<DelayErrorsReply> {
    let histogram = DelayErrors::global().take();
    Json(DelayErrorsReply {
        histogram: crate::histogram::encode(&histogram),
    })
}

/// Lines read from stdin by [`watch_stdin`]'s thread, for the server to take once it runs.
static STDIN_LINES: OnceLock<Mutex<Option<mpsc::UnboundedReceiver<String>>>> = OnceLock::new();
/// Set once the unit serves: from then on stdin's end means drain and stop, not exit.
static SERVING: AtomicBool = AtomicBool::new(false);

/// Watches stdin from the unit's first instant, on a thread of its own, so the unit
/// notices that the harness is gone even while it seeds a large store or burns CPU
/// (stdin closes when the harness exits, however it exits). Before the unit serves there
/// is nothing to drain: the end of stdin exits the process at once. Once it serves, the
/// lines are its routes and the end of stdin stops it gracefully.
pub fn watch_stdin() {
    let (tx, rx) = mpsc::unbounded_channel();
    if STDIN_LINES.set(Mutex::new(Some(rx))).is_err() {
        return; // already watching
    }
    std::thread::spawn(move || {
        use std::io::BufRead as _;
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
        if !SERVING.load(Ordering::Acquire) {
            std::process::exit(0);
        }
    });
}

/// The next line of stdin, read by [`watch_stdin`]'s thread (blocking; call it before any
/// async runtime starts). `None` when stdin was not watched or has ended.
pub fn next_stdin_line() -> Option<String> {
    let lines = STDIN_LINES.get()?;
    let mut guard = lines.lock().ok()?;
    guard.as_mut()?.blocking_recv()
}

async fn read_routes_until_eof(unit: String, routes: Arc<RouteTable>, stop: watch::Sender<bool>) {
    let watched = STDIN_LINES
        .get()
        .and_then(|lines| lines.lock().ok()?.take());
    let Some(mut lines) = watched else {
        // Not watched from the start (a unit hosted in a test): read stdin here.
        let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            apply_routes(&unit, &routes, &line);
        }
        tracing::debug!(unit, "stdin closed: the harness is gone or done, stopping");
        let _ = stop.send(true);
        return;
    };
    SERVING.store(true, Ordering::Release);
    while let Some(line) = lines.recv().await {
        apply_routes(&unit, &routes, &line);
    }
    tracing::debug!(unit, "stdin closed: the harness is gone or done, stopping");
    let _ = stop.send(true);
}

fn apply_routes(unit: &str, routes: &RouteTable, line: &str) {
    if line.trim().is_empty() {
        return;
    }
    match serde_json::from_str::<Routes>(line) {
        Ok(table) => routes.replace(table),
        Err(error) => tracing::error!(unit, %error, "ignoring malformed routes line"),
    }
}

/// Lifts this process's soft limit on open files to its hard limit and returns the soft
/// limit now in force: the harness so that a saturated step runs out of the
/// architecture's capacity before its own descriptors, a unit because under a network
/// model every pending delay holds a timerfd on top of its connections.
pub fn raise_open_files_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed by pointer.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 0;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
    }
    limit.rlim_cur
}

async fn stop_on_sigterm(stop: watch::Sender<bool>) {
    use tokio::signal::unix::{signal, SignalKind};
    if let Ok(mut sigterm) = signal(SignalKind::terminate()) {
        sigterm.recv().await;
        let _ = stop.send(true);
    }
}

async fn wait_for_stop(mut stop: watch::Receiver<bool>) {
    stopped(&mut stop).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::unix_now;
    use std::sync::atomic::AtomicUsize;
    use tower::ServiceExt as _;

    async fn call(app: &Router, token: Option<&str>) -> StatusCode {
        let mut request = axum::http::Request::post("/op/work");
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let request = request.body(axum::body::Body::empty()).unwrap();
        app.clone().oneshot(request).await.unwrap().status()
    }

    #[tokio::test]
    async fn a_bad_token_gets_401_before_any_work() {
        let work = Arc::new(AtomicUsize::new(0));
        let counter = work.clone();
        let app = Router::new().route(
            "/op/work",
            post(move || async move {
                counter.fetch_add(1, Ordering::SeqCst);
                StatusCode::OK
            }),
        );
        let key = TokenKey::new(vec![3; 32]);
        let layers = Layers::new(
            "u#1",
            Arc::new(RouteTable::default()),
            Some((key.clone(), None)),
            false,
        );
        let app = Arc::new(layers).around_router(app);
        let valid = key.sign("driver", "u", "/op/work", unix_now() + 60);
        let expired = key.sign("driver", "u", "/op/work", unix_now() - 1);
        let elsewhere = key.sign("driver", "u", "/op/other", unix_now() + 60);
        let other_unit = key.sign("driver", "v", "/op/work", unix_now() + 60);
        let foreign = TokenKey::new(vec![4; 32]).sign("driver", "u", "/op/work", unix_now() + 60);
        let tampered = format!("{}x", &valid[..valid.len() - 1]);
        for bad in [
            Some(expired.as_str()),
            Some(&elsewhere),
            Some(&other_unit),
            Some(&foreign),
            Some(&tampered),
            None,
        ] {
            assert_eq!(call(&app, bad).await, StatusCode::UNAUTHORIZED, "{bad:?}");
        }
        assert_eq!(
            work.load(Ordering::SeqCst),
            0,
            "no refused call did any work"
        );
        assert_eq!(call(&app, Some(&valid)).await, StatusCode::OK);
        assert_eq!(work.load(Ordering::SeqCst), 1);
    }
}
