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
use grain_runtime::transport::{Codec, Transport, UnitClient};
use grain_runtime::wire::{
    op_path, Hops, OpRequest, StateGet, StatePut, StateValues, DIGEST_HEADER, FAILED_UNIT_HEADER,
    RETRIES_HEADER, SERVICE_HOPS_HEADER, STATE_GET_PATH, STATE_HOPS_HEADER, STATE_PUT_PATH,
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

    /// Serves this unit, listening where `listen` says, until told to stop.
    pub async fn run(self, listen: &Listen) -> Result<(), HostError> {
        let name = self.name.clone();
        let routes = self.routes.clone();
        let security = self.security.clone();
        let transport = self.transport;
        let app = self.router();
        serve_unit(&name, routes, app, security.as_ref(), transport, listen).await
    }

    /// One `POST /op/{name}` route per hosted operation.
    pub fn router(self) -> Router {
        let unit = Arc::new(self);
        let mut router = Router::new();
        for op in unit.hosted.keys() {
            let op_name = op.clone();
            router =
                router.route(
                    &op_path(op),
                    post(
                        move |State(unit): State<Arc<ServiceUnit>>,
                              headers: HeaderMap,
                              body: Bytes| async move {
                            unit.handle(&op_name, Codec::of_headers(&headers), &body)
                                .await
                        },
                    ),
                );
        }
        router.with_state(unit)
    }

    /// Serves one call to `op` whose body is in `codec` (JSON from the driver, the
    /// transport's codec from another unit); answers in the same codec.
    async fn handle(self: &Arc<Self>, op: &str, codec: Codec, body: &[u8]) -> Response {
        let request: OpRequest = match codec.decode(body) {
            Ok(request) => request,
            Err(error) => {
                let message = format!("unit {}: malformed request to {op}: {error}", self.name);
                return (StatusCode::BAD_REQUEST, message).into_response();
            }
        };
        trace::event("decoded");
        // Hops made before a failure are still reported, so callers that retry count
        // what the failed attempt cost downstream.
        let mut spent = Spent::default();
        match self.execute(op, &request.params, &mut spent).await {
            Ok(digest) => {
                let reply = reply(op, &self.hosted[op], codec, digest, spent);
                trace::event("encoded");
                reply
            }
            Err(error) => {
                tracing::debug!(unit = %self.name, %error, "operation failed");
                let blamed = match &error {
                    OpError::Downstream { failed, .. } => failed.failed_unit.clone(),
                    _ => self.name.clone(),
                };
                let message = format!("unit {}: {error}", self.name);
                let mut headers = hop_headers(spent);
                if let Ok(value) = HeaderValue::from_str(&blamed) {
                    headers.insert(FAILED_UNIT_HEADER, value);
                }
                (StatusCode::BAD_GATEWAY, headers, message).into_response()
            }
        }
    }

    /// Calls `op`: locally when hosted here, otherwise over HTTP (one service hop); adds
    /// the hops (and retries) it made to `spent`, whether it succeeds or not. Its result's digest.
    fn invoke<'a>(
        self: &'a Arc<Self>,
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
        self: &Arc<Self>,
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

/// The hop headers every reply carries, a failure's included (and the retries, when any).
fn hop_headers(spent: Spent) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(SERVICE_HOPS_HEADER, HeaderValue::from(spent.hops.service));
    headers.insert(STATE_HOPS_HEADER, HeaderValue::from(spent.hops.state));
    if spent.retries > 0 {
        headers.insert(RETRIES_HEADER, HeaderValue::from(spent.retries));
    }
    headers
}

/// A successful reply: the business result's `digest` (identical whether the call was
/// local or remote) and the hops made for it.
fn reply(op: &str, def: &OperationDef, codec: Codec, digest: u64, spent: Spent) -> Response {
    let hex = format!("{digest:016x}");
    let body = codec.encode_response(hex.clone(), def.response_bytes);
    let mut headers = hop_headers(spent);
    headers.insert(
        axum::http::header::CONTENT_TYPE,
        HeaderValue::from_static(codec.content_type()),
    );
    if let Ok(value) = HeaderValue::from_str(&hex) {
        headers.insert(DIGEST_HEADER, value);
    }
    tracing::trace!(op, hops = spent.hops.total(), "served");
    (StatusCode::OK, headers, body).into_response()
}
