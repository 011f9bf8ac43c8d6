//! The state unit: one service's key-value store served over HTTP (or another unit
//! transport), so that nano units can stay stateless. `POST /get` reads a batch of keys,
//! `POST /put` writes a batch; bodies in the codec the request's content type names.

use axum::{
    extract::State,
    http::{header::CONTENT_TYPE, HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    routing::post,
    Router,
};
use bytes::Bytes;
use grain_runtime::host::{serve_unit, HostError, RouteTable};
use grain_runtime::model::{Listen, StoreDef};
use grain_runtime::security::Credentials;
use grain_runtime::store::Store;
use grain_runtime::transport::{Codec, Transport};
use grain_runtime::wire::{StateGet, StatePut, StateValues, STATE_GET_PATH, STATE_PUT_PATH};
use std::sync::Arc;

/// Serves `store` as unit `unit` until told to stop, speaking `security` when given,
/// answering calls in `transport` and listening where `listen` says.
pub async fn run(
    unit: &str,
    store: &StoreDef,
    security: Option<&Credentials>,
    transport: Transport,
    listen: &Listen,
) -> Result<(), HostError> {
    let routes = Arc::new(RouteTable::default());
    serve_unit(unit, routes, router(store), security, transport, listen).await
}

/// The state unit's HTTP API over a freshly seeded store.
pub fn router(def: &StoreDef) -> Router {
    let store = Arc::new(Store::seeded(def));
    Router::new()
        .route(STATE_GET_PATH, post(get_many))
        .route(STATE_PUT_PATH, post(put_many))
        .with_state(store)
}

fn malformed(error: impl std::fmt::Display) -> Response {
    (StatusCode::BAD_REQUEST, error.to_string()).into_response()
}

async fn get_many(State(store): State<Arc<Store>>, headers: HeaderMap, body: Bytes) -> Response {
    let codec = Codec::of_headers(&headers);
    let request: StateGet = match codec.decode(&body) {
        Ok(request) => request,
        Err(error) => return malformed(error),
    };
    let values = store
        .get_many(&request.keys)
        .into_iter()
        .map(|value| value.map(|bytes| String::from_utf8_lossy(&bytes).into_owned()))
        .collect();
    encoded(codec, &StateValues { values })
}

async fn put_many(State(store): State<Arc<Store>>, headers: HeaderMap, body: Bytes) -> Response {
    let request: StatePut = match Codec::of_headers(&headers).decode(&body) {
        Ok(request) => request,
        Err(error) => return malformed(error),
    };
    store.put_many(
        request
            .entries
            .into_iter()
            .map(|(key, value)| (key, Bytes::from(value)))
            .collect(),
    );
    StatusCode::OK.into_response()
}

fn encoded(codec: Codec, message: &StateValues) -> Response {
    let content_type = HeaderValue::from_static(codec.content_type());
    ([(CONTENT_TYPE, content_type)], codec.encode(message)).into_response()
}
