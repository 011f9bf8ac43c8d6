//! The service unit: hosts a set of operations behind one endpoint each
//! (`POST /op/{name}`). The architecture is only in what it hosts and embeds:
//! a nano unit hosts one operation and no store, a micro unit one service's operations and
//! that service's store, the monolith every operation and every store. Calls to hosted
//! operations are plain function calls; all others are HTTP requests, and so are store
//! accesses for stores the unit does not embed; they cross the network model the routes
//! name. Each reply carries its digest and the hops made downstream to serve it.

use axum::{
    body::Bytes,
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    routing::post,
    Router,
};
use futures_util::future::{join_all, BoxFuture};
use grain_runtime::client::HttpClient;
use grain_runtime::digest::Digest;
use grain_runtime::host::{serve_unit, HostError, RouteTable};
use grain_runtime::model::{Endpoint, Listen, OperationDef, StoreDef};
use grain_runtime::resilience::{Caller, Failed, Resilience};
use grain_runtime::security::{Credentials, SecurityError};
use grain_runtime::store::{filler_value, Store};
use grain_runtime::transport::{CallReply, Codec, DirectCalls, Transport, UnitClient};
use grain_runtime::wire::{
    op_path, Hops, OpRequest, StateGet, StatePut, StateValues, DIGEST_HEADER, FAILED_UNIT_HEADER,
    OP_PATH_PREFIX, RETRIES_HEADER, SERVICE_HOPS_HEADER, STATE_GET_PATH, STATE_HOPS_HEADER,
    STATE_PUT_PATH,
};
use grain_runtime::{trace, work};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// Why an operation failed; answered as HTTP 502 naming the unit and the cause, and the
/// process blamed for it in [`FAILED_UNIT_HEADER`].
#[derive(Debug, thiserror::Error)]
pub enum OpError {
    #[error("operation {op}: no route to {target}")]
    NoRoute { op: String, target: String },
    #[error("operation {op}: {}", failed.error)]
    Downstream { op: String, failed: Failed },
    #[error("operation {op}: malformed reply from {target}: {detail}")]
    BadReply {
        op: String,
        target: String,
        detail: String,
    },
}

/// What a service unit hosts, and how it reaches the rest.
pub struct ServiceUnit {
    name: String,
    hosted: HashMap<String, OperationDef>,
    embedded: HashMap<String, Store>,
    remote_request_bytes: BTreeMap<String, usize>,
    routes: Arc<RouteTable>,
    caller: Caller,
    iterations_per_us: f64,
    security: Option<Credentials>,
    /// What its calls to other units speak.
    transport: Transport,
}

const SERVICE_HOP: Hops = Hops {
    service: 1,
    state: 0,
};
const STATE_HOP: Hops = Hops {
    service: 0,
    state: 1,
};

/// What serving one request cost downstream: the hops made and the retries made (by this
/// unit and everything it called), failed attempts included; reported in the reply's
/// headers so every caller up to the driver can add it up.
#[derive(Debug, Clone, Copy, Default)]
struct Spent {
    hops: Hops,
    retries: u32,
}

impl std::ops::AddAssign for Spent {
    fn add_assign(&mut self, other: Spent) {
        self.hops += other.hops;
        self.retries += other.retries;
    }
}

impl ServiceUnit {
    pub fn new(
        name: &str,
        operations: &[OperationDef],
        embedded_stores: &[StoreDef],
        remote_request_bytes: &BTreeMap<String, usize>,
        iterations_per_us: f64,
    ) -> Self {
        ServiceUnit {
            name: name.to_string(),
            hosted: operations
                .iter()
                .map(|op| (op.name.clone(), op.clone()))
                .collect(),
            embedded: embedded_stores
                .iter()
                .map(|def| (def.service.clone(), Store::seeded(def)))
                .collect(),
            remote_request_bytes: remote_request_bytes.clone(),
            routes: Arc::new(RouteTable::default()),
            caller: Caller::new(
                HttpClient::new(Resilience::default().timeout()),
                Resilience::default(),
            ),
            iterations_per_us,
            security: None,
            transport: Transport::default(),
        }
    }

    /// The same unit serving and calling under `security` (plaintext without it), its
    /// calls speaking `transport`, reusing connections or not and following `policy`.
    pub fn with_calls(
        mut self,
        security: Option<Credentials>,
        keepalive: bool,
        policy: Resilience,
        transport: Transport,
    ) -> Result<Self, SecurityError> {
        let client = UnitClient::new(transport, policy.timeout(), security.as_ref(), keepalive)?;
        self.caller = Caller::new(client, policy);
        self.security = security;
        self.transport = transport;
        Ok(self)
    }

    /// Serves this unit, listening where `listen` says, until told to stop. Calls from
    /// other units in a non-HTTP transport reach [`Self::handle`] directly.
    pub async fn run(self, listen: &Listen) -> Result<(), HostError> {
        let name = self.name.clone();
        let routes = self.routes.clone();
        let security = self.security.clone();
        let transport = self.transport;
        let unit = Arc::new(self);
        let app = router(&unit);
        let direct: Arc<dyn DirectCalls> = unit;
        serve_unit(
            &name,
            routes,
            app,
            Some(direct),
            security.as_ref(),
            transport,
            listen,
        )
        .await
    }

    /// Serves one call to `op` whose body is in `codec` (JSON from the driver, the
    /// transport's codec from another unit); answers in the same codec.
    async fn handle(&self, op: &str, codec: Codec, body: &[u8]) -> CallReply {
        let request: OpRequest = match codec.decode(body) {
            Ok(request) => request,
            Err(error) => {
                let message = format!("unit {}: malformed request to {op}: {error}", self.name);
                return CallReply::failure(StatusCode::BAD_REQUEST.as_u16(), message);
            }
        };
        trace::event("decoded");
        // Hops made before a failure are still reported, so callers that retry count
        // what the failed attempt cost downstream.
        let mut spent = Spent::default();
        match self.execute(op, &request.params, &mut spent).await {
            Ok(digest) => {
                let hex = format!("{digest:016x}");
                let body = codec.encode_response(hex.clone(), self.hosted[op].response_bytes);
                tracing::trace!(op, hops = spent.hops.total(), "served");
                trace::event("encoded");
                CallReply {
                    status: StatusCode::OK.as_u16(),
                    hops: spent.hops,
                    retries: spent.retries,
                    digest: Some(hex),
                    failed_unit: None,
                    body: Bytes::from(body),
                }
            }
            Err(error) => {
                tracing::debug!(unit = %self.name, %error, "operation failed");
                let blamed = match &error {
                    OpError::Downstream { failed, .. } => failed.failed_unit.clone(),
                    _ => self.name.clone(),
                };
                CallReply {
                    status: StatusCode::BAD_GATEWAY.as_u16(),
                    hops: spent.hops,
                    retries: spent.retries,
                    digest: None,
                    failed_unit: Some(blamed),
                    body: Bytes::from(format!("unit {}: {error}", self.name)),
                }
            }
        }
    }

    /// Calls `op`: locally when hosted here, otherwise over HTTP (one service hop); adds
    /// the hops (and retries) it made to `spent`, whether it succeeds or not. Its result's digest.
    fn invoke<'a>(
        &'a self,
        caller: &'a str,
        op: &'a str,
        params: &'a BTreeMap<String, u64>,
        spent: &'a mut Spent,
    ) -> BoxFuture<'a, Result<u64, OpError>> {
        Box::pin(async move {
            if self.hosted.contains_key(op) {
                return self.execute(op, params, spent).await;
            }
            let routes = self.routes.current();
            let replicas = routes.operations.get(op).ok_or_else(|| OpError::NoRoute {
                op: caller.to_string(),
                target: op.to_string(),
            })?;
            let size = self.remote_request_bytes.get(op).copied().unwrap_or(0);
            let body = Bytes::from(self.transport.codec().encode_request(params, size));
            let network = &routes.network;
            let answered = self
                .caller
                .call(network, op, replicas, &op_path(op), body, SERVICE_HOP)
                .await
                .map_err(|failed| {
                    spent.hops += failed.wasted;
                    spent.retries += failed.retries;
                    OpError::Downstream {
                        op: caller.to_string(),
                        failed,
                    }
                })?;
            let reply = answered.reply;
            spent.hops += reply.downstream_hops;
            spent.hops += SERVICE_HOP;
            spent.hops += answered.wasted;
            spent.retries += answered.retries + reply.downstream_retries;
            reply
                .digest
                .and_then(|hex| u64::from_str_radix(&hex, 16).ok())
                .ok_or_else(|| OpError::BadReply {
                    op: caller.to_string(),
                    target: op.to_string(),
                    detail: "missing or malformed digest header".into(),
                })
        })
    }

    /// Runs a hosted operation: reads, CPU work, downstream calls, writes.
    /// Adds every hop and retry it makes to `spent`, those before a failure included; its digest.
    async fn execute(
        &self,
        op: &str,
        params: &BTreeMap<String, u64>,
        spent: &mut Spent,
    ) -> Result<u64, OpError> {
        let def = &self.hosted[op];
        let mut digest = Digest::new();
        digest.add(op.as_bytes());
        for (name, value) in params {
            digest.add(name.as_bytes()).add(&value.to_le_bytes());
        }

        let keys: Vec<String> = def.reads.iter().map(|key| key.render(params)).collect();
        for (key, value) in keys.iter().zip(self.read(def, &keys, spent).await?) {
            digest.add(key.as_bytes());
            digest.add(value.as_deref().unwrap_or("\u{2205}").as_bytes());
        }

        trace::event("work.start");
        std::hint::black_box(work::burn(def.cpu_us, self.iterations_per_us));
        trace::event("work.end");

        for step in &def.calls {
            trace::event("calls.start");
            let callees = step.callees();
            let mut made = vec![Spent::default(); callees.len()];
            let calls = callees
                .iter()
                .zip(made.iter_mut())
                .map(|(callee, made)| self.invoke(op, callee, params, made));
            let results = join_all(calls).await;
            // Parallel calls all ran: their hops count even when one of them failed.
            trace::event("calls.end");
            for made in made {
                *spent += made;
            }
            for result in results {
                digest.add(&result?.to_le_bytes());
            }
        }

        if !def.writes.is_empty() {
            let seed = digest.hex();
            let entries = def
                .writes
                .iter()
                .map(|key| {
                    let key = key.render(params);
                    let value = filler_value(&format!("{seed}{key}"), def.write_bytes);
                    (key, value)
                })
                .collect();
            self.write(def, entries, spent).await?;
        }
        Ok(digest.value())
    }

    async fn read(
        &self,
        def: &OperationDef,
        keys: &[String],
        spent: &mut Spent,
    ) -> Result<Vec<Option<String>>, OpError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        if let Some(store) = self.embedded.get(&def.service) {
            let values = store.get_many(keys);
            return Ok(values
                .into_iter()
                .map(|v| v.map(|bytes| String::from_utf8_lossy(&bytes).into_owned()))
                .collect());
        }
        let request = StateGet {
            keys: keys.to_vec(),
        };
        let reply = self
            .state_call(def, STATE_GET_PATH, &request, spent)
            .await?;
        let values: StateValues =
            self.transport
                .codec()
                .decode(&reply)
                .map_err(|error| OpError::BadReply {
                    op: def.name.clone(),
                    target: format!("state of {}", def.service),
                    detail: error.to_string(),
                })?;
        Ok(values.values)
    }

    async fn write(
        &self,
        def: &OperationDef,
        entries: Vec<(String, bytes::Bytes)>,
        spent: &mut Spent,
    ) -> Result<(), OpError> {
        if let Some(store) = self.embedded.get(&def.service) {
            store.put_many(entries);
            return Ok(());
        }
        let request = StatePut {
            entries: entries
                .into_iter()
                .map(|(key, value)| (key, String::from_utf8_lossy(&value).into_owned()))
                .collect(),
        };
        self.state_call(def, STATE_PUT_PATH, &request, spent)
            .await?;
        Ok(())
    }

    /// One request to the state unit of the operation's service (one state hop).
    async fn state_call<T: grain_runtime::transport::codec::Message>(
        &self,
        def: &OperationDef,
        path: &str,
        request: &T,
        spent: &mut Spent,
    ) -> Result<Bytes, OpError> {
        let routes = self.routes.current();
        let state = format!("state-{}", def.service);
        let addr = routes
            .stores
            .get(&def.service)
            .ok_or_else(|| OpError::NoRoute {
                op: def.name.clone(),
                target: format!("state of {}", def.service),
            })?;
        let replicas = [Endpoint {
            unit: state.clone(),
            addr: addr.clone(),
        }];
        let body = self.transport.codec().encode(request);
        let network = &routes.network;
        let answered = self
            .caller
            .call(
                network,
                &state,
                &replicas,
                path,
                Bytes::from(body),
                STATE_HOP,
            )
            .await
            .map_err(|failed| {
                spent.hops += failed.wasted;
                spent.retries += failed.retries;
                OpError::Downstream {
                    op: def.name.clone(),
                    failed,
                }
            })?;
        spent.hops += STATE_HOP;
        spent.hops += answered.wasted;
        spent.retries += answered.retries;
        Ok(answered.reply.body)
    }
}

impl DirectCalls for ServiceUnit {
    fn serves(&self, path: &str) -> bool {
        hosted_op(path).is_some_and(|op| self.hosted.contains_key(op))
    }

    fn serve<'a>(&'a self, path: &'a str, codec: Codec, body: Bytes) -> BoxFuture<'a, CallReply> {
        Box::pin(async move {
            let op = hosted_op(path).unwrap_or(path);
            self.handle(op, codec, &body).await
        })
    }
}

/// The operation a `/op/{name}` path calls.
fn hosted_op(path: &str) -> Option<&str> {
    path.strip_prefix(OP_PATH_PREFIX)
}

/// One `POST /op/{name}` route per operation `unit` hosts.
pub fn router(unit: &Arc<ServiceUnit>) -> Router {
    let mut router = Router::new();
    for op in unit.hosted.keys() {
        let op_name = op.clone();
        router = router.route(
            &op_path(op),
            post(
                move |State(unit): State<Arc<ServiceUnit>>, headers: HeaderMap, body: Bytes| async move {
                    let codec = Codec::of_headers(&headers);
                    let reply = unit.handle(&op_name, codec, &body).await;
                    http_reply(reply, codec)
                },
            ),
        );
    }
    router.with_state(unit.clone())
}

/// A reply as HTTP: its status, the hop headers every reply carries (a failure's
/// included; the retries when any), its digest and blamed unit, the body in `codec` for a
/// success and as text otherwise.
fn http_reply(reply: CallReply, codec: Codec) -> Response {
    let mut headers = HeaderMap::with_capacity(6);
    headers.insert(SERVICE_HOPS_HEADER, HeaderValue::from(reply.hops.service));
    headers.insert(STATE_HOPS_HEADER, HeaderValue::from(reply.hops.state));
    if reply.retries > 0 {
        headers.insert(RETRIES_HEADER, HeaderValue::from(reply.retries));
    }
    let content_type = if reply.status == StatusCode::OK.as_u16() {
        codec.content_type()
    } else {
        "text/plain; charset=utf-8"
    };
    headers.insert(
        axum::http::header::CONTENT_TYPE,
        HeaderValue::from_static(content_type),
    );
    for (name, value) in [
        (DIGEST_HEADER, &reply.digest),
        (FAILED_UNIT_HEADER, &reply.failed_unit),
    ] {
        if let Some(value) = value.as_deref().and_then(|v| HeaderValue::from_str(v).ok()) {
            headers.insert(name, value);
        }
    }
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, headers, reply.body).into_response()
}
